"""The ``jaxunc`` command line: argument parsing → studies → JSON + figures.

Exit codes: 0 success, 2 bad arguments (nothing is written), 1 any other failure
(nothing half-written: files are written to a temporary folder and moved into place).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import json
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxunc.errors import InvalidArgument

__all__ = ["main"]

TOY_FIGURES = (
    "fig4_training_samples.png",
    "fig5_sample_means.png",
    "fig6_std_vs_ngen.png",
    "fig7_funnels.png",
)
FISHER_FIGURES = ("fisher_vs_ngen.png",)
ENSEMBLE_FIGURES = ("ensemble_std_vs_ngen.png",)
VALIDATE_FIGURES = (
    "validate_histograms.png",
    "validate_p_values.png",
    "validate_amplification.png",
)


class _Parser(argparse.ArgumentParser):
    """argparse with errors that say which argument is wrong (exit code 2)."""

    def error(self, message: str) -> None:  # pragma: no cover - argparse calls exit
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _size_list(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not parts or any(not p for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of positive integers, got {text!r}"
        )
    sizes = []
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of positive integers, got {text!r}"
            ) from None
        if value <= 0:
            raise argparse.ArgumentTypeError(
                f"sizes must be positive integers, got {value}"
            )
        sizes.append(value)
    return tuple(sizes)


def _study_list(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in REPRODUCE_STUDIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list from {','.join(REPRODUCE_STUDIES)}, "
            f"got {text!r}"
        )
    return names


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [0, 2**63), got {text!r}"
        ) from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [0, 2**63), got {value}"
        )
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _pseudo_range(text: str) -> tuple[int, int]:
    parts = text.split(":")
    try:
        start, stop = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected START:STOP (two integers, 0 <= START < STOP), got {text!r}"
        ) from None
    if not 0 <= start < stop:
        raise argparse.ArgumentTypeError(
            f"expected 0 <= START < STOP, got {start}:{stop}"
        )
    return start, stop


def _non_negative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _memory_size(text: str) -> int:
    from jaxunc.engine import parse_memory

    try:
        return parse_memory(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(error.detail) from None


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """--chunk-size, --memory-budget, --checkpoint, --range and the multi-process
    flags: how the engine runs, never what it computes."""
    parser.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=None,
        metavar="C",
        help=(
            "pseudo-experiments per compiled call (default: about 4M events per "
            "chunk, less if --memory-budget asks for it); results do not depend on it"
        ),
    )
    parser.add_argument(
        "--memory-budget",
        type=_memory_size,
        default=None,
        metavar="SIZE",
        help=(
            "memory the engine may use, e.g. 2GiB or 500MB (default: half the "
            "device's memory, half the RAM on CPU); results do not depend on it"
        ),
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "save completed chunks' reductions under DIR and resume from them when "
            "the same command runs again (a different configuration is refused)"
        ),
    )
    parser.add_argument(
        "--checkpoint-interval",
        type=_non_negative_float,
        default=None,
        metavar="SECONDS",
        help="seconds between checkpoint writes (default: 10; 0: after every chunk)",
    )
    parser.add_argument(
        "--range",
        type=_pseudo_range,
        default=None,
        metavar="START:STOP",
        help=(
            "run only pseudo-experiments [START, STOP) of every engine run and "
            "write a partial result (OUT/partial.json and partial-*.npz, no "
            "summary or figures) for 'jaxunc merge'"
        ),
    )
    parser.add_argument(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help=(
            "multi-process run with jax.distributed: the coordinator's address "
            "(with --num-processes and --process-id; process 0 writes the output)"
        ),
    )
    parser.add_argument(
        "--num-processes", type=_positive_int, default=None, metavar="N"
    )
    parser.add_argument("--process-id", type=int, default=None, metavar="I")


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The engine options of a study command (``engine_options=`` of the studies):
    --checkpoint, --range, --memory-budget, --chunk-size, and the partial-result
    sink or merge source that ``main`` and ``jaxunc merge`` attach."""
    options: dict[str, Any] = {}
    for name, attribute in (
        ("checkpoint", "checkpoint"),
        ("checkpoint_interval", "checkpoint_interval"),
        ("pseudo_range", "range"),
        ("memory_budget", "memory_budget"),
        ("chunk_size", "chunk_size"),
        ("partials", "engine_partials"),
        ("merge", "engine_merge"),
    ):
        value = getattr(args, attribute, None)
        if value is not None:
            options[name] = value
    if "checkpoint" in options:
        from jaxunc.checkpoint import check_checkpoint_folder

        check_checkpoint_folder(options["checkpoint"])
    return options


def _add_run_arguments(
    parser: argparse.ArgumentParser,
    defaults: dict[str, Any],
    out_default: str,
    no_plots_help: str,
) -> None:
    """--seed, --precision, --out, --no-plots and --quiet: shared by every study."""
    from jaxunc.studies.options import PRECISIONS

    parser.add_argument(
        "--seed",
        type=_seed,
        default=defaults["seed"].default,
        help="root random seed (default: %(default)s)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=defaults["precision"].default,
        help="floating-point precision (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(out_default),
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    parser.add_argument("--no-plots", action="store_true", help=no_plots_help)
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar and no summary table"
    )
    _add_engine_arguments(parser)


def _add_toy_arguments(parser: argparse.ArgumentParser, out_default: str) -> None:
    from jaxunc.studies.toy import FIT_CHOICES, ToyConfig

    defaults = ToyConfig.__dataclass_fields__
    parser.add_argument(
        "--pseudo-experiments",
        type=_positive_int,
        default=defaults["pseudo_experiments"].default,
        metavar="P",
        help="number of pseudo-experiments (default: %(default)s)",
    )
    parser.add_argument(
        "--n-train",
        type=_positive_int,
        default=defaults["n_train"].default,
        metavar="N",
        help="training events per pseudo-experiment (default: %(default)s)",
    )
    parser.add_argument(
        "--n-gen",
        type=_size_list,
        default=defaults["n_gen"].default,
        metavar="N1,N2,...",
        help="generated-sample sizes (default: 30,100,300,1000)",
    )
    parser.add_argument(
        "--mu",
        type=_finite_float,
        default=defaults["mu"].default,
        help="true mean μ (default: %(default)s)",
    )
    parser.add_argument(
        "--sigma",
        type=_finite_float,
        default=defaults["sigma"].default,
        help="true standard deviation σ > 0 (default: %(default)s)",
    )
    parser.add_argument(
        "--fit",
        choices=sorted(FIT_CHOICES),
        default=defaults["fit"].default,
        help=(
            "what the ideal surrogate fits: mean and σ, or the mean with σ known "
            "(default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--ddof",
        type=int,
        choices=(0, 1),
        default=defaults["ddof"].default,
        help=(
            "σ̂² = Σ(x - x̄)²/(n - ddof); 0 is maximum likelihood (default: %(default)s)"
        ),
    )
    _add_run_arguments(
        parser,
        defaults,
        out_default,
        "skip the figures (and the extra runs behind Figures 4 and 7)",
    )


def _add_fisher_arguments(parser: argparse.ArgumentParser, out_default: str) -> None:
    from jaxunc.studies.fisher import MODELS, PARAMS, FisherConfig
    from jaxunc.studies.toy import FIT_CHOICES

    defaults = FisherConfig.__dataclass_fields__
    parser.add_argument(
        "--model",
        choices=MODELS,
        default=defaults["model"].default,
        help="the true model (default: %(default)s)",
    )
    parser.add_argument(
        "--n-train",
        type=_positive_int,
        default=defaults["n_train"].default,
        metavar="N",
        help="training events the surrogate is fitted to (default: %(default)s)",
    )
    parser.add_argument(
        "--n-gen",
        type=_size_list,
        default=defaults["n_gen"].default,
        metavar="N1,N2,...",
        help="generated-sample sizes (default: 10,100,1000,10000,100000)",
    )
    parser.add_argument(
        "--mu",
        type=_finite_float,
        default=defaults["mu"].default,
        help="true mean μ of the Gaussian (default: %(default)s)",
    )
    parser.add_argument(
        "--sigma",
        type=_finite_float,
        default=defaults["sigma"].default,
        help="true standard deviation σ > 0 of the Gaussian (default: %(default)s)",
    )
    parser.add_argument(
        "--rate",
        type=_finite_float,
        default=defaults["rate"].default,
        help="true rate λ > 0 of the exponential (default: %(default)s)",
    )
    parser.add_argument(
        "--fit",
        choices=sorted(FIT_CHOICES),
        default=defaults["fit"].default,
        help=(
            "what the ideal surrogate fits to a Gaussian: mean and σ, or the mean "
            "with σ known (default: %(default)s; the exponential's fit is its rate)"
        ),
    )
    parser.add_argument(
        "--params",
        choices=sorted({name for table in PARAMS.values() for name in table}),
        default=None,
        help=(
            "the parameters the information is about (default: mu for the "
            "Gaussian, rate for the exponential)"
        ),
    )
    parser.add_argument(
        "--outer",
        type=_positive_int,
        default=defaults["outer"].default,
        metavar="R",
        help=(
            "replicas of the chain per n_gen for I_gen, KL and mutual information "
            "(>= 2; default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--pseudo-experiments",
        type=_positive_int,
        default=defaults["pseudo_experiments"].default,
        metavar="P",
        help=(
            "pseudo-experiments for the estimator view 1/Var(θ̂) (default: %(default)s)"
        ),
    )
    _add_run_arguments(parser, defaults, out_default, f"skip {FISHER_FIGURES[0]}")


def _add_validate_arguments(parser: argparse.ArgumentParser, out_default: str) -> None:
    from jaxunc.studies.registry import MODELS, SURROGATES
    from jaxunc.studies.validate import ValidateConfig
    from jaxunc.validation import BINNINGS

    defaults = ValidateConfig.__dataclass_fields__
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        default=defaults["model"].default,
        help="the true model, from the registry (default: %(default)s)",
    )
    parser.add_argument(
        "--surrogate",
        choices=sorted(SURROGATES),
        default=defaults["surrogate"].default,
        help="the surrogate, from the registry (default: %(default)s)",
    )
    parser.add_argument(
        "--n-train",
        type=_positive_int,
        default=defaults["n_train"].default,
        metavar="N",
        help="training events per surrogate (default: %(default)s)",
    )
    parser.add_argument(
        "--n-required",
        type=_size_list,
        default=defaults["n_required"].default,
        metavar="N1,N2,...",
        help="generated-sample sizes to test, increasing "
        "(default: 100,1000,10000,100000)",
    )
    parser.add_argument(
        "--bins",
        type=_positive_int,
        default=defaults["bins"].default,
        metavar="K",
        help="histogram bins of the chi2 test, >= 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--binning",
        choices=BINNINGS,
        default=defaults["binning"].default,
        help="true-quantile or equal-width bins (default: %(default)s)",
    )
    parser.add_argument(
        "--pseudo-experiments",
        type=_positive_int,
        default=defaults["pseudo_experiments"].default,
        metavar="P",
        help="pseudo-experiments (training samples) (default: %(default)s)",
    )
    parser.add_argument(
        "--alpha",
        type=_finite_float,
        default=defaults["alpha"].default,
        help="test size: the horizon is where the median p-value drops below it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--n-quantiles",
        type=_size_list,
        default=defaults["n_quantiles"].default,
        metavar="Q1,Q2,...",
        help="quantile-bin counts of the amplification factor "
        "(default: 5,10,20,50,100)",
    )
    parser.add_argument(
        "--replicas",
        type=_positive_int,
        default=defaults["replicas"].default,
        metavar="B",
        help="bootstrap replicas of the protocol's uncertainty prediction "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--protocol-pseudo-experiments",
        type=_positive_int,
        default=defaults["protocol_pseudo_experiments"].default,
        metavar="P",
        help="pseudo-experiments of the three-step protocol (default: %(default)s)",
    )
    parser.add_argument(
        "--protocol-n-gen",
        type=_positive_int,
        default=None,
        metavar="N",
        help="generated events of the protocol's histograms (default: 10 × n_train)",
    )
    _add_run_arguments(parser, defaults, out_default, "skip the figures")


def _add_ensemble_arguments(parser: argparse.ArgumentParser, out_default: str) -> None:
    from jaxunc.studies.ensemble import EnsembleConfig
    from jaxunc.studies.registry import MODELS, SURROGATES

    defaults = EnsembleConfig.__dataclass_fields__
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        default=defaults["model"].default,
        help="the true model (default: %(default)s)",
    )
    parser.add_argument(
        "--surrogate",
        choices=sorted(SURROGATES),
        default=defaults["surrogate"].default,
        help=(
            "the surrogate trained by every member (default: %(default)s); the "
            "ideal fit also runs as a reference"
        ),
    )
    parser.add_argument(
        "--ensemble-size",
        type=_positive_int,
        default=defaults["ensemble_size"].default,
        metavar="K",
        help="members, each with its own training sample (>= 2; default: %(default)s)",
    )
    parser.add_argument(
        "--n-train",
        type=_positive_int,
        default=defaults["n_train"].default,
        metavar="N",
        help="training events per member (default: %(default)s)",
    )
    parser.add_argument(
        "--n-gen",
        type=_size_list,
        default=defaults["n_gen"].default,
        metavar="N1,N2,...",
        help="generated-sample sizes (default: 30,100,300,1000,10000)",
    )
    _add_run_arguments(parser, defaults, out_default, f"skip {ENSEMBLE_FIGURES[0]}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jaxunc",
        description=(
            "How much is a generated dataset worth? Pseudo-experiments of the "
            "chain θ → D_train → surrogate → D_gen → estimate."
        ),
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    toy = commands.add_parser(
        "toy",
        help="the Gaussian toy of Appendix A (Figures 4-7)",
        description=(
            "The Gaussian toy of Appendix A: spread of the sample mean for true "
            "and for generated events."
        ),
    )
    _add_toy_arguments(toy, "results/toy")
    fisher = commands.add_parser(
        "fisher",
        help="the information study of §3.2 (Fisher, KL, mutual information)",
        description=(
            "The information study of §3.2: Fisher information, KL divergence and "
            "mutual information about θ in the training data and in n_gen "
            "generated events, and the check I_gen ≤ I_train."
        ),
    )
    _add_fisher_arguments(fisher, "results/fisher")
    ensemble = commands.add_parser(
        "ensemble",
        help="train K surrogates on K training samples: Figure 6 for real surrogates",
        description=(
            "Ensemble study: each of K members draws n_train true events, trains "
            "its own surrogate and generates n_gen events; the spread of the "
            "maximum-likelihood estimate of the target over the members is "
            "compared with the ideal fit (run as well, as a reference) and with "
            "true events, and turned into N_eff = 1/(I_1 Var)."
        ),
    )
    _add_ensemble_arguments(ensemble, "results/ensemble")
    validate = commands.add_parser(
        "validate",
        help="is a generated sample of N_required events an adequate substitute? "
        "(chi2 horizon, amplification, three-step protocol)",
        description=(
            "Validation of a surrogate trained on n_train events (paper 001 §2.2, "
            "paper 000 §5-6): chi2 of N_required generated events against the truth "
            "and the robustness horizon, the quantile amplification factor, and the "
            "three-step protocol (predict, validate, demonstrate improvement)."
        ),
    )
    _add_validate_arguments(validate, "results/validate")
    reproduce = commands.add_parser(
        "reproduce",
        help="run every study with the paper's defaults into results/",
        description=(
            "Run the paper's studies with their defaults and write results and "
            "figures under --out: the toy of Appendix A (OUT/toy), the information "
            "study of §3.2 (OUT/fisher), surrogate ensembles (bootstrap, KDE, GAN, "
            "flow on the Gaussian and the camel back: OUT/ensemble/MODEL-SURROGATE) "
            "and validation of the ideal fit and the GAN (OUT/validate/NAME).  "
            "All of it takes tens of minutes on a laptop; --only picks studies."
        ),
    )
    reproduce.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    reproduce.add_argument(
        "--quiet", action="store_true", help="no progress bar and no summary table"
    )
    reproduce.add_argument(
        "--only",
        type=_study_list,
        default=None,
        metavar="STUDY,...",
        help=(
            "run only these studies, from "
            + ",".join(REPRODUCE_STUDIES)
            + " (default: all)"
        ),
    )
    merge = commands.add_parser(
        "merge",
        help="combine partial results of disjoint --range runs into one result",
        description=(
            "Combine the partial results of runs of one command with disjoint "
            "--range START:STOP covering every pseudo-experiment into the result of "
            "one run (bit for bit the same moments and histograms). Refuses "
            "overlaps, gaps and partial results of different configurations."
        ),
    )
    merge.add_argument(
        "parts", nargs="+", type=Path, metavar="PART", help="--out folders of the parts"
    )
    merge.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output folder of the merged result",
    )
    merge.add_argument(
        "--quiet", action="store_true", help="no progress bar and no summary table"
    )
    return parser


def _check_writable(out: Path) -> None:
    """Fail before any work if ``out`` cannot be created or written."""
    if out.exists() and not out.is_dir():
        raise InvalidArgument("out", f"{str(out)!r} exists and is not a folder")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidArgument("out", f"cannot write under {str(probe)!r}")


@contextlib.contextmanager
def _staging(out: Path):
    """A temporary folder next to ``out``; its files move into ``out`` only on
    success."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        yield staging
        out.mkdir(parents=True, exist_ok=True)
        for item in sorted(staging.iterdir()):
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_SCRATCH_OUTPUT = contextvars.ContextVar("jaxunc_scratch_output", default=False)
"""True while a command runs only for its engine runs' side effects (a --range part,
or a process other than 0): its files go to a scratch folder that is discarded, and
the statistics of a partial range may be NaN."""


def _write_json(path: Path, payload: dict) -> None:
    allow_nan = _SCRATCH_OUTPUT.get()
    text = json.dumps(payload, indent=2, default=_json_default, allow_nan=allow_nan)
    path.write_text(text + "\n")


def _print_toy_table(result) -> None:
    rows = [("n_gen", "truth std", "predicted", "surrogate std", "predicted")]
    for i, n in enumerate(result.n_gen):
        t, s = result.truth, result.surrogate
        rows.append(
            (
                str(n),
                f"{t['std'][i]:.5f} ± {t['std_stderr'][i]:.5f}",
                f"{t['predicted_std'][i]:.5f}",
                f"{s['std'][i]:.5f} ± {s['std_stderr'][i]:.5f}",
                f"{s['predicted_std'][i]:.5f}",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    rt = result.runtime
    print(
        f"{rt['events']:.3g} events in {rt['seconds']:.2f} s "
        f"({rt['events_per_second']:.3g} events/s, "
        f"compile {rt['compile_seconds']:.2f} s, "
        f"{rt['backend']} × {rt['device_count']})"
    )


def _run_toy(
    args: argparse.Namespace, out: Path, quiet: bool, figures: bool, **overrides
) -> None:
    from jaxunc.studies.toy import ToyConfig, run_toy

    config = ToyConfig(**overrides)
    _check_writable(out)
    result = run_toy(
        config,
        figures=figures,
        progress=not quiet,
        engine_options=_engine_options(args),
    )
    with _staging(out) as staging:
        _write_json(staging / "summary.json", result.to_json())
        if figures and not _SCRATCH_OUTPUT.get():
            from jaxunc import plots

            plots.save_toy_figures(result, staging)
    if not quiet:
        _print_toy_table(result)
        print(f"wrote {out / 'summary.json'}" + (" and Figures 4-7" if figures else ""))


def _toy(args: argparse.Namespace) -> None:
    _run_toy(
        args,
        args.out,
        args.quiet,
        not args.no_plots,
        pseudo_experiments=args.pseudo_experiments,
        n_train=args.n_train,
        n_gen=args.n_gen,
        mu=args.mu,
        sigma=args.sigma,
        fit=args.fit,
        ddof=args.ddof,
        seed=args.seed,
        precision=args.precision,
    )


LOW_ESS = 30.0  # below this effective sample size an importance-sampled value is shaky


def _ess_flag(ess: float | None) -> str:
    return "*" if ess is not None and ess < LOW_ESS else ""


def _divergence_ratio(data: dict, i: int) -> str:
    """``gen/train ± error`` for the KL or MI entry ``i``, over the exact training
    value where there is one (else over the Monte Carlo one, its error included)."""
    gen, gen_err = data["gen"][i], data["gen_stderr"][i]
    exact = data["train_exact"]
    train = exact if exact is not None else data["train"]
    train_err = 0.0 if exact is not None else data["train_stderr"]
    error = math.hypot(gen_err / train, gen * train_err / train**2)
    flags = _ess_flag(data["effective_sample_size"][i])
    return f"{gen / train:.3f} ± {error:.3f}{flags}" + (
        "" if data["holds"][i] else " !"
    )


def _print_fisher_table(payload: dict) -> None:
    names = payload["parameters"]
    kl, mi = payload["kl"], payload["mi"]
    exact = payload["I_train_exact"]
    train = ", ".join(
        f"{name} {payload['I_train'][i][i]:.4g} ± {payload['I_train_stderr'][i][i]:.2g}"
        + ("" if exact is None else f" (exact {exact[i][i]:.4g})")
        for i, name in enumerate(names)
    )
    print(f"I_train (diagonal): {train}")
    mi_exact = "" if mi["train_exact"] is None else f" (exact {mi['train_exact']:.4f})"
    print(
        f"KL_train = {kl['train']:.4f} ± {kl['train_stderr']:.4f} nats "
        f"(exact {kl['train_exact']:.4f}); "
        f"MI_train = {mi['train']:.4f} ± {mi['train_stderr']:.4f} nats{mi_exact}"
    )
    header = (
        "n_gen",
        *(f"I_gen/I_train [{name}]" for name in names),
        "margin σ",
        "holds",
        "KL_gen/KL_train",
        "MI_gen/MI_train",
    )
    rows = [header]
    for i, n in enumerate(payload["n_gen"]):
        fisher_flag = _ess_flag(payload["effective_sample_size"][i]) or " "
        ratio, ratio_err = (
            payload["ratio_to_train"][i],
            payload["ratio_to_train_stderr"][i],
        )
        rows.append(
            (
                str(n),
                *(
                    f"{ratio[j]:.3f} ± {ratio_err[j]:.3f}{fisher_flag}"
                    for j in range(len(names))
                ),
                f"{payload['margin_sigma'][i]:+.1f}",
                "yes" if payload["holds"][i] else "NO",
                _divergence_ratio(kl, i),
                _divergence_ratio(mi, i),
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    print(
        "margin σ: the smallest eigenvalue of I_train - I_gen in standard errors; "
        "holds:\n"
        f"  {payload['holds_convention']} (I_gen ≤ I_train, eq. 23)"
    )
    print("KL, MI: over the exact training value where known (eqs. 18, 14)")
    series = (
        payload["effective_sample_size"],
        *(d["effective_sample_size"] for d in (kl, mi)),
    )
    if any(_ess_flag(e) for values in series for e in values):
        print(
            f"* effective sample size < {LOW_ESS:g}: importance sampling is not to "
            "be trusted there"
        )
    if not all(kl["holds"]) or not all(mi["holds"]):
        print("! above the training value by more than 3 standard errors")
    rt = payload["runtime"]
    print(f"{rt['seconds']:.1f} s ({rt['backend']} × {rt['device_count']})")


def _run_fisher(
    args: argparse.Namespace, out: Path, quiet: bool, figures: bool, **overrides
) -> None:
    from jaxunc.information import LowEffectiveSampleSize
    from jaxunc.studies.fisher import FisherConfig, run_fisher

    config = FisherConfig(**overrides)
    _check_writable(out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LowEffectiveSampleSize)
        result = run_fisher(
            config, progress=not quiet, engine_options=_engine_options(args)
        )
    payload = result.to_json()
    with _staging(out) as staging:
        _write_json(staging / "fisher.json", payload)
        if figures and not _SCRATCH_OUTPUT.get():
            from jaxunc import plots

            plots.save_fisher_figures(result, staging)
    if not quiet:
        _print_fisher_table(payload)
        written = f" and {FISHER_FIGURES[0]}" if figures else ""
        print(f"wrote {out / 'fisher.json'}{written}")
    for warning in caught:
        if issubclass(warning.category, LowEffectiveSampleSize):
            print(f"jaxunc: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message,
                warning.category,
                warning.filename,
                warning.lineno,
            )


def _fisher(args: argparse.Namespace) -> None:
    _run_fisher(
        args,
        args.out,
        args.quiet,
        not args.no_plots,
        model=args.model,
        n_train=args.n_train,
        n_gen=args.n_gen,
        mu=args.mu,
        sigma=args.sigma,
        rate=args.rate,
        fit=args.fit,
        params=args.params,
        seed=args.seed,
        outer=args.outer,
        pseudo_experiments=args.pseudo_experiments,
        precision=args.precision,
    )


def _format_horizon(value: float | None, stderr: float | None, status: str) -> str:
    if status == "found":
        return f"{value:.4g} ± {stderr:.2g}"
    return {"below_grid": "below the smallest N", "beyond_grid": "none in range"}[
        status
    ]


def _print_validate_table(payload: dict) -> None:
    truth = payload["truth"]
    rows = [("N_required", "median p", "rejected", "truth median p", "truth rejected")]
    for i, n in enumerate(payload["n_required"]):
        rows.append(
            (
                str(n),
                f"{payload['p_value_median'][i]:.3f}",
                f"{payload['rejection_rate'][i]:.3f} ± "
                f"{payload['rejection_rate_stderr'][i]:.3f}",
                f"{truth['p_value_median'][i]:.3f}",
                f"{truth['rejection_rate'][i]:.3f} ± "
                f"{truth['rejection_rate_stderr'][i]:.3f}",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    alpha = payload["config"]["alpha"]
    print(
        f"robustness horizon (median p < {alpha}): "
        + _format_horizon(
            payload["horizon"], payload["horizon_stderr"], payload["horizon_status"]
        )
        + f"; truth: {_format_horizon(None, None, truth['horizon_status'])}"
    )
    amplification = payload["amplification"]
    last = len(amplification["n_gen"]) - 1
    factors = ", ".join(
        f"{q}: {f:.3g} ± {e:.2g}"
        for q, f, e in zip(
            amplification["n_quantiles"],
            amplification["factor"][last],
            amplification["factor_stderr"][last],
            strict=True,
        )
    )
    print(
        f"amplification N_equiv/n_train at N_gen = {amplification['n_gen'][last]} "
        f"(by N_quantiles) {factors}"
    )
    print(f"protocol: {payload['protocol']['verdict']}")
    rt = payload["runtime"]
    print(
        f"{rt['seconds']:.1f} s (compile {rt['compile_seconds']:.1f} s, "
        f"{rt['backend']} × {rt['device_count']})"
    )


def _run_validate(
    args: argparse.Namespace, out: Path, quiet: bool, figures: bool, **overrides
) -> None:
    from jaxunc.studies.validate import ValidateConfig, run_validate

    config = ValidateConfig(**overrides)
    _check_writable(out)
    figures = figures and not _SCRATCH_OUTPUT.get()
    result = run_validate(
        config,
        progress=not quiet,
        figures=figures,
        engine_options=_engine_options(args),
    )
    payload = result.to_json()
    with _staging(out) as staging:
        _write_json(staging / "validate.json", payload)
        if figures:
            from jaxunc import plots

            plots.save_validate_figures(result, staging)
    if not quiet:
        _print_validate_table(payload)
        written = " and " + ", ".join(VALIDATE_FIGURES) if figures else ""
        print(f"wrote {out / 'validate.json'}{written}")


def _validate(args: argparse.Namespace) -> None:
    _run_validate(
        args,
        args.out,
        args.quiet,
        not args.no_plots,
        model=args.model,
        surrogate=args.surrogate,
        n_train=args.n_train,
        n_required=args.n_required,
        bins=args.bins,
        binning=args.binning,
        pseudo_experiments=args.pseudo_experiments,
        alpha=args.alpha,
        n_quantiles=args.n_quantiles,
        replicas=args.replicas,
        protocol_pseudo_experiments=args.protocol_pseudo_experiments,
        protocol_n_gen=args.protocol_n_gen,
        seed=args.seed,
        precision=args.precision,
    )


REFERENCE_KEYS = (
    "estimate_mean",
    "estimate_std",
    "estimate_std_stderr",
    "excess_variance",
    "excess_variance_stderr",
    "n_eff",
    "n_eff_stderr",
    "n_eff_ratio",
    "n_eff_ratio_stderr",
    "failures",
)


def _cell(value: float | None, error: float | None, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if error is None:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}g} ± {error:.2g}"


def _print_ensemble_table(payload: dict) -> None:
    config = payload["config"]
    reference = payload.get("ideal_reference")
    floor = payload["training_floor"]["mle"]
    print(
        f"{config['model']}, surrogate {config['surrogate']}: std of the MLE of "
        f"{config['target']} over K = {config['ensemble_size']} members "
        f"(n_train = {config['n_train']}; training floor "
        f"{_cell(floor['std'], floor['std_stderr'])})"
    )
    header = (
        "n_gen",
        "surrogate std",
        "ideal std",
        "truth std",
        "N_eff",
        "N_eff/n_train",
    )
    rows = [header]
    for i, n in enumerate(payload["n_gen"]):
        ideal = (
            _cell(
                reference["estimate_std"]["mle"][i],
                reference["estimate_std_stderr"]["mle"][i],
            )
            if reference
            else "(same)"
        )
        rows.append(
            (
                str(n),
                _cell(
                    payload["estimate_std"]["mle"][i],
                    payload["estimate_std_stderr"]["mle"][i],
                ),
                ideal,
                _cell(
                    payload["truth_std"]["mle"][i],
                    payload["truth_std_stderr"]["mle"][i],
                ),
                _cell(payload["n_eff"][i], payload["n_eff_stderr"][i]),
                _cell(payload["n_eff_ratio"][i], payload["n_eff_ratio_stderr"][i], 3),
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    for row in rows:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    training = payload["training"]
    losses = ", ".join(
        f"{name} {_cell(v['mean'], v['stderr'])}"
        for name, v in training["final_losses"].items()
    )
    print(
        f"fit failures: {training['fit_failures']} of {training['members']}"
        + (f"; mean final losses: {losses}" if losses else "")
    )
    fisher = payload["fisher_per_event"]
    print(
        f"N_eff = 1/(I_1 Var), I_1 = {fisher['value']:.4g} per event "
        f"({fisher['method']}); runtime {payload['runtime']['seconds']:.1f} s"
    )


def _run_ensemble(
    args: argparse.Namespace, out: Path, quiet: bool, figures: bool, **overrides
) -> None:
    import dataclasses

    from jaxunc.studies.ensemble import EnsembleConfig, run_ensemble

    config = EnsembleConfig(**overrides)
    reference_config = (
        None
        if config.surrogate == "ideal"
        else dataclasses.replace(config, surrogate="ideal")
    )
    _check_writable(out)
    figures = figures and not _SCRATCH_OUTPUT.get()
    engine_options = _engine_options(args)
    result = run_ensemble(config, progress=not quiet, engine_options=engine_options)
    payload = result.to_json()
    if reference_config is not None:
        reference = run_ensemble(
            reference_config, progress=not quiet, engine_options=engine_options
        ).payload
        payload["ideal_reference"] = {key: reference[key] for key in REFERENCE_KEYS}
        payload["ideal_reference"]["runtime_seconds"] = reference["runtime"]["seconds"]
    with _staging(out) as staging:
        _write_json(staging / "ensemble.json", payload)
        if figures:
            from jaxunc import plots

            plots.save_ensemble_figures(payload, staging)
    if not quiet:
        _print_ensemble_table(payload)
        written = f" and {ENSEMBLE_FIGURES[0]}" if figures else ""
        print(f"wrote {out / 'ensemble.json'}{written}")


def _ensemble(args: argparse.Namespace) -> None:
    _run_ensemble(
        args,
        args.out,
        args.quiet,
        not args.no_plots,
        model=args.model,
        surrogate=args.surrogate,
        ensemble_size=args.ensemble_size,
        n_train=args.n_train,
        n_gen=args.n_gen,
        seed=args.seed,
        precision=args.precision,
    )


REPRODUCE_STUDIES = ("toy", "fisher", "ensemble", "validate")
"""The studies ``jaxunc reproduce`` runs, in order (``--only`` picks a subset)."""

REPRODUCE_ENSEMBLES: dict[str, dict[str, Any]] = {
    f"{model}-{surrogate}": {"model": model, "surrogate": surrogate}
    for model in ("gaussian", "camelback")
    for surrogate in ("bootstrap", "kde", "gan", "flow")
}
"""Ensemble runs of ``reproduce`` (issue 4): four surrogates on the Gaussian and the
camel back, each at the command's defaults (into OUT/ensemble/NAME)."""

REPRODUCE_VALIDATIONS: dict[str, dict[str, Any]] = {
    "ideal": {"surrogate": "ideal"},
    # 1,280 GAN trainings instead of the default 7,600: the protocol's bootstrap
    # replicas train one GAN each, for every pseudo-experiment.
    "gan": {
        "surrogate": "gan",
        "pseudo_experiments": 256,
        "replicas": 4,
        "protocol_pseudo_experiments": 256,
    },
}
"""Validation runs of ``reproduce`` (issue 5) on the Gaussian (into
OUT/validate/NAME)."""


def _reproduce(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    _check_writable(args.out)
    only = args.only or REPRODUCE_STUDIES
    if "toy" in only:
        _run_toy(args, args.out / "toy", args.quiet, True)
    if "fisher" in only:
        _run_fisher(args, args.out / "fisher", args.quiet, True)
    if "ensemble" in only:
        for name, options in REPRODUCE_ENSEMBLES.items():
            _run_ensemble(
                args, args.out / "ensemble" / name, args.quiet, True, **options
            )
    if "validate" in only:
        for name, options in REPRODUCE_VALIDATIONS.items():
            _run_validate(
                args, args.out / "validate" / name, args.quiet, True, **options
            )
    if not args.quiet:
        print(
            f"reproduce: done in {time.perf_counter() - start:.1f} s; "
            f"results under {args.out}/"
        )


_NOT_IDENTITY = frozenset(
    {
        "command",
        "out",
        "quiet",
        "range",
        "checkpoint",
        "checkpoint_interval",
        "memory_budget",
        "chunk_size",
        "coordinator",
        "num_processes",
        "process_id",
        "engine_partials",
        "engine_merge",
    }
)


def _partial_info(args: argparse.Namespace) -> dict[str, Any]:
    """The command and the arguments that fix its numbers (stored with a part)."""
    arguments = {}
    for name, value in sorted(vars(args).items()):
        if name in _NOT_IDENTITY:
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        arguments[name] = value
    return {"command": args.command, "arguments": arguments}


def _run_for_side_effects(args: argparse.Namespace) -> None:
    """Run the command with its output in a discarded scratch folder."""
    token = _SCRATCH_OUTPUT.set(True)
    try:
        with tempfile.TemporaryDirectory(prefix="jaxunc-scratch-") as scratch:
            args.out = Path(scratch) / "out"
            args.quiet = True
            COMMANDS[args.command](args)
    finally:
        _SCRATCH_OUTPUT.reset(token)


def _run_range(args: argparse.Namespace, writer: bool) -> None:
    from jaxunc.checkpoint import PartialResults

    out, quiet = args.out, args.quiet
    if writer:
        _check_writable(out)
    partials = PartialResults(_partial_info(args))
    args.engine_partials = partials
    _run_for_side_effects(args)
    if not writer:
        return
    with _staging(out) as staging:
        partials.save(staging)
    if not quiet:
        start, stop = args.range
        print(
            f"wrote the partial result of pseudo-experiments [{start}, {stop}) to "
            f"{out}/partial.json; combine the parts with 'jaxunc merge PART... "
            "--out DIR'"
        )


def _merge(args: argparse.Namespace) -> None:
    from jaxunc.checkpoint import PartialResults, describe_mismatch

    parts = [PartialResults.load(path, "parts") for path in args.parts]
    first = parts[0].info
    for path, part in zip(args.parts[1:], parts[1:], strict=True):
        if part.info != first:
            differing = describe_mismatch(
                {"command": first.get("command"), **first.get("arguments", {})},
                {"command": part.info.get("command"), **part.info.get("arguments", {})},
            )
            raise InvalidArgument(
                "parts",
                f"{str(path)!r} was made by another command or other arguments than "
                f"{str(args.parts[0])!r} (differ in: {differing})",
            )
    command = first.get("command")
    if command not in COMMANDS or command in ("merge", "reproduce"):
        raise InvalidArgument("parts", f"unknown command {command!r} in the parts")
    namespace = argparse.Namespace(
        **{name: None for name in _NOT_IDENTITY}, **first.get("arguments", {})
    )
    namespace.command = command
    namespace.out = args.out
    namespace.quiet = args.quiet
    namespace.engine_merge = parts
    with _precision_scope(namespace):
        COMMANDS[command](namespace)


COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "toy": _toy,
    "fisher": _fisher,
    "ensemble": _ensemble,
    "validate": _validate,
    "reproduce": _reproduce,
    "merge": _merge,
}

_POSITIONAL = {"parts": "PART"}


def _start_distributed(args: argparse.Namespace) -> bool:
    """``jax.distributed.initialize`` for --coordinator; whether this process writes
    the output (process 0, or a single-process run)."""
    flags = (args.coordinator, args.num_processes, args.process_id)
    if all(flag is None for flag in flags):
        return True
    if any(flag is None for flag in flags):
        raise InvalidArgument(
            "coordinator", "needs --coordinator, --num-processes and --process-id"
        )
    if not 0 <= args.process_id < args.num_processes:
        raise InvalidArgument(
            "process_id",
            f"must be in [0, {args.num_processes}) (got {args.process_id})",
        )
    import jax

    # CPU processes exchange their shares with Gloo (JAX's CPU collectives).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.num_processes,
        process_id=args.process_id,
    )
    return jax.process_index() == 0


def _precision_scope(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """64-bit JAX for the duration of a --precision float64 command only: the
    caller's global setting (e.g. of ``main`` called in-process) is left alone."""
    if getattr(args, "precision", "float32") != "float64":
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = parser._subparsers._group_actions[0].choices[args.command]
    try:
        writer = _start_distributed(args) if hasattr(args, "coordinator") else True
        with _precision_scope(args):
            if getattr(args, "range", None) is not None:
                _run_range(args, writer)
            elif not writer:
                _run_for_side_effects(args)
            else:
                COMMANDS[args.command](args)
    except InvalidArgument as error:
        command.print_usage(sys.stderr)
        flag = _POSITIONAL.get(error.argument) or "--" + error.argument.replace(
            "_", "-"
        )
        print(
            f"jaxunc {args.command}: error: argument {flag}: {error.detail}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("jaxunc: interrupted; nothing was written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
