"""Amplification of every built-in surrogate on the camel back (issue 13): the
quantile-MSE amplification factor N_equiv/n_train at 10 true-quantile bins and the χ²
rejection rate of N_required = n_train generated events, each with its standard
error, for the ideal fit, the adaptive KDE (rule="lcv", the default), the flow and the
GAN at their registry defaults, and the bootstrap (resampling the training sample: a
surrogate worth exactly its training data, amplification 1 up to the N_gen term);
the true-sample control beside them.

Camel back (GANplify: unit Gaussian bumps at ±4), n_train = 100, N_gen = 10⁵ for the
amplification, N_required = 100 for the rejection rate (20 true-quantile bins,
α = 0.05), through the validation study without its protocol; the same seed, hence the
same training samples, for every surrogate.

    cd REPO && PYTHONPATH=$PWD python benchmarks/bench_amplification.py \
        [--pseudo-experiments 256] [--only gan,flow] [--model gaussian] [--json PATH]

Extra GAN and flow settings (``--gan "steps=2000,ema_decay=0.99"``, ``--flow
"steps=1000"``) are measured as further rows, labelled by their options.
``--model`` measures another registered model (default: the camel back); every
row then uses that model with the same n_train, N_gen and seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_toy import machine_info  # noqa: E402

SURROGATES = ("ideal", "kde", "flow", "gan", "bootstrap")


def _parse_options(text: str) -> dict:
    """``"steps=2000,ema_decay=0.99"`` -> ``{"steps": 2000, "ema_decay": 0.99}``."""
    options = {}
    for item in filter(None, text.split(",")):
        name, value = item.split("=")
        try:
            number = float(value)
        except ValueError:  # a word, e.g. schedule=cosine
            options[name.strip()] = value.strip()
            continue
        options[name.strip()] = (
            int(number)
            if number.is_integer() and "." not in value and "e" not in value
            else number
        )
    return options


def measure(
    surrogate, label: str, pseudo_experiments: int, seed: int, model="camelback"
) -> dict:
    """One validation run (no protocol, no figures) of ``surrogate`` on ``model``
    (default the camel back): the 10-quantile factor at N_gen = 10⁵ and the
    rejection rate at 100."""
    from jaxunc.studies.registry import model_spec
    from jaxunc.studies.validate import ValidateConfig, validate_surrogate

    spec = model_spec(model)
    config = ValidateConfig(
        model=model,
        surrogate=label,
        n_train=100,
        n_required=(100, 100_000),
        n_quantiles=(5, 10, 20, 50, 100),
        pseudo_experiments=pseudo_experiments,
        seed=seed,
    )
    start = time.perf_counter()
    result = validate_surrogate(
        spec.model,
        spec.theta,
        surrogate,
        config,
        progress=False,
        figures=False,
        protocol=False,
    )
    seconds = time.perf_counter() - start
    amplification = result.amplification
    ten = amplification["n_quantiles"].index(10)
    row = {
        "model": model,
        "surrogate": label,
        "repr": repr(surrogate),
        "factor_10q": amplification["factor"][1][ten],
        "factor_10q_stderr": amplification["factor_stderr"][1][ten],
        "factor_by_n_quantiles": dict(
            zip(
                map(str, amplification["n_quantiles"]),
                amplification["factor"][1],
                strict=True,
            )
        ),
        "factor_stderr_by_n_quantiles": dict(
            zip(
                map(str, amplification["n_quantiles"]),
                amplification["factor_stderr"][1],
                strict=True,
            )
        ),
        "rejection_rate_at_n_train": result.rejection_rate[0],
        "rejection_rate_at_n_train_stderr": result.rejection_rate_stderr[0],
        "truth_rejection_rate_at_n_train": result.truth["rejection_rate"][0],
        "truth_rejection_rate_at_n_train_stderr": result.truth["rejection_rate_stderr"][
            0
        ],
        "failures": result.failures,
        "seconds": seconds,
    }
    print(
        f"{label:28s} {seconds:5.0f} s  10 q: {row['factor_10q']:.3f} ± "
        f"{row['factor_10q_stderr']:.3f}  rejected at 100: "
        f"{row['rejection_rate_at_n_train']:.3f} ± "
        f"{row['rejection_rate_at_n_train_stderr']:.3f} (truth "
        f"{row['truth_rejection_rate_at_n_train']:.3f})",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pseudo-experiments", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default=",".join(SURROGATES))
    parser.add_argument("--gan", action="append", default=[])
    parser.add_argument("--flow", action="append", default=[])
    parser.add_argument("--model", default="camelback")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from jaxunc.studies.registry import make_surrogate, model_spec
    from jaxunc.surrogates.flow import Flow
    from jaxunc.surrogates.gan import GAN

    spec = model_spec(args.model)
    rows = []
    for name in filter(None, args.only.split(",")):
        rows.append(
            measure(
                make_surrogate(name, spec),
                name,
                args.pseudo_experiments,
                args.seed,
                args.model,
            )
        )
    for kind, settings in ((GAN, args.gan), (Flow, args.flow)):
        for options in settings:
            rows.append(
                measure(
                    kind(**_parse_options(options)),
                    f"{kind.__name__.lower()}({options})",
                    args.pseudo_experiments,
                    args.seed,
                    args.model,
                )
            )
    result = {
        "model": args.model,
        "machine": machine_info(),
        "pseudo_experiments": args.pseudo_experiments,
        "seed": args.seed,
        "rows": rows,
    }
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
