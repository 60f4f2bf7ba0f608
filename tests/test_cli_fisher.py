"""``jaxunc fisher``: fisher.json, its figure, the table, ``reproduce`` at the paper's
defaults and the paper's claim on that run, and bad input (exit 2, the flag named,
nothing written).

One real run of the study is shared by the module: ``jaxunc reproduce --only fisher``
at the study's defaults, which the issue asks for in any case (so no second, smaller
Gaussian run is paid for).  The other command-line paths replay its result through
a stand-in ``run_fisher`` that first checks the configuration the command built; one
tiny real run covers the exponential model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json

import jax
import pytest
from test_golden import golden  # the recorded cases (tests/golden/cases.py)

from jaxunc.bounds import (
    exponential_fit_generated_fisher,
    gaussian_fit_generated_fisher,
)
from jaxunc.cli import main
from jaxunc.plots.fisher import FILES
from jaxunc.report import REPORT_FILES
from jaxunc.studies import fisher as fisher_study
from jaxunc.studies import registry

FAST = ["--n-gen", "10,1000", "--outer", "32", "--pseudo-experiments", "300"]
DEFAULT_N_GEN = [10, 100, 1000, 10000, 100000]
REQUIRED_KEYS = {
    "config",
    "I_train",
    "I_train_exact",
    "n_gen",
    "I_gen",
    "I_gen_stderr",
    "I_gen_exact",
    "min_eigenvalue_margin",
    "margin_sigma",
    "holds",
    "kl",
    "mi",
}
PNG = b"\x89PNG\r\n\x1a\n"
FISHER_FIGURES = list(FILES)


def run_cli(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse exits for its own errors
        return int(exit_.code)


# The shared real run: the default study (ideal mean-and-σ fit of the Gaussian,
# n_train = 100, every quantity) at reduced sizes: the two ends of the default
# n_gen range (each n_gen compiles programs of its own; n_gen = 100 is pinned by
# the golden case), a quarter of the default replicas.  The full default run takes
# minutes on 2 cores; the defaults themselves are pinned by
# test_the_defaults_are_the_papers, and reproduce's use of them by
# test_reproduce_runs_toy_then_fisher.
SHARED = {
    "n_gen": (10, 100000),
    "outer": 64,
    "pseudo_experiments": 500,
    "simulations": 32,
}
SHARED_FLAGS = ["--n-gen", "10,100000", "--outer", "64"]
SHARED_FLAGS += ["--pseudo-experiments", "500", "--simulations", "32"]
SHARED_N_GEN = list(SHARED["n_gen"])


def default_run_only(patch, **config) -> None:
    """``reproduce`` runs only the study's main run, with ``config`` (its GAN and
    flow runs are checked in tests/test_fisher_bounds.py)."""
    only = dataclasses.replace(registry.STUDIES["fisher"], reproduce={"": config})
    patch.setitem(registry.STUDIES, "fisher", only)


def patch_run(patch, function) -> None:
    """Make the command call ``function`` instead of ``run_fisher`` (the registered
    study holds the function itself)."""
    patch.setattr(fisher_study, "run_fisher", function)
    study = dataclasses.replace(registry.STUDIES["fisher"], run=function)
    patch.setitem(registry.STUDIES, "fisher", study)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """``jaxunc reproduce --only fisher`` (the README's first Quick-start command for
    the §3.2 study: the figure, the table, the page) at the ``SHARED`` sizes, run
    once for real;
    returns the exit code, the study's output folder, what it printed and the
    study's result."""
    results_folder = tmp_path_factory.mktemp("fisher") / "results"
    out = results_folder / "fisher"
    results = []
    real = fisher_study.run_fisher

    def spy(config, **options):
        results.append(real(config, **options))
        return results[-1]

    stdout = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(stdout),
        jax.numpy_dtype_promotion("strict"),
    ):
        patch_run(patch, spy)
        default_run_only(patch, **SHARED)
        code = run_cli("reproduce", "--only", "fisher", "--out", str(results_folder))
    assert len(results) == 1
    assert sorted(p.name for p in results_folder.iterdir()) == sorted(
        ["fisher", *REPORT_FILES]  # no toy
    )
    return code, out, stdout.getvalue(), results[0]


def replay(monkeypatch, result, expected_config=None):
    """Make ``run_fisher`` return ``result`` after checking the config it is given;
    returns the list of configs it was called with."""
    calls = []

    def stand_in(config, **options):
        calls.append(config)
        assert config == (result.config if expected_config is None else expected_config)
        return result

    patch_run(monkeypatch, stand_in)
    return calls


def test_fisher_json_has_the_required_keys(real_run):
    code, out, _, result = real_run
    assert code == 0
    payload = json.loads((out / "fisher.json").read_text())
    provenance = payload.pop("provenance")  # the command line's addition
    assert provenance["command_line"].startswith("jaxunc reproduce --only fisher")
    assert payload == json.loads(json.dumps(result.to_json()))
    assert set(payload) >= REQUIRED_KEYS
    config = payload["config"]
    assert config["n_gen"] == SHARED_N_GEN and config["outer"] == 64
    assert config["pseudo_experiments"] == 500 and config["params"] == "mu"
    assert config["model"] == "gaussian" and config["fit"] == "mean-std"
    assert config["n_train"] == 100 and config["seed"] == 0
    assert payload["n_gen"] == SHARED_N_GEN
    assert payload["I_train_exact"] == [[pytest.approx(100.0)]]
    assert len(payload["I_train"]) == 1 and len(payload["I_train"][0]) == 1
    size = len(SHARED_N_GEN)
    for key in ("I_gen", "I_gen_stderr"):
        assert len(payload[key]) == size
        assert all(len(m) == 1 and len(m[0]) == 1 for m in payload[key])
    # σ is fitted: the μμ element by quadrature (bounds.gaussian_fit_generated_fisher)
    assert payload["I_gen_exact"] == [
        [[pytest.approx(gaussian_fit_generated_fisher(1.0, 100, g), rel=1e-12)]]
        for g in SHARED_N_GEN
    ]
    assert "gaussian_fit_generated_fisher" in payload["I_gen_exact_method"]
    for key in ("min_eigenvalue_margin", "margin_sigma", "holds"):
        assert len(payload[key]) == size
    assert all(isinstance(h, bool) for h in payload["holds"])
    for key in ("kl", "mi"):
        assert {"train", "train_stderr", "train_exact", "gen", "gen_stderr"} <= set(
            payload[key]
        )
        assert len(payload[key]["gen"]) == size
    # The inequality of eq. (23), clearly at n_gen = 10 ≪ n_train = 100.
    assert payload["I_gen"][0][0][0] < payload["I_train_exact"][0][0]
    assert payload["margin_sigma"][0] > 3 and all(payload["holds"])


def test_fisher_writes_the_figure_and_the_table(real_run):
    code, out, printed, _ = real_run
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["fisher.json", *FISHER_FIGURES, *REPORT_FILES]
    )
    from matplotlib.image import imread

    figure = out / FISHER_FIGURES[0]
    assert figure.read_bytes()[:8] == PNG
    height, width = imread(figure).shape[:2]
    assert height > 300 and width > 300
    for text in ("I_gen/I_train [mu]", "margin σ", "KL_gen/KL_train", "wrote"):
        assert text in printed
    assert printed.count("\n") >= 5
    assert "reproduce: done" in printed


def test_the_defaults_are_the_papers():
    """The study's defaults (what ``jaxunc fisher`` and ``reproduce`` run): §3.2's
    n_train = 100 events of N(0, 1), n_gen from 10 to 10⁵, the ideal mean-and-σ fit,
    information about μ, 256 importance-sampling replicas, 4000 pseudo-experiments
    for the estimator view, 512 chain draws for the bounds."""
    config = fisher_study.FisherConfig()
    assert list(config.n_gen) == DEFAULT_N_GEN and config.outer == 256
    assert config.pseudo_experiments == 4000 and config.params == "mu"
    assert config.model == "gaussian" and config.fit == "mean-std"
    assert (config.mu, config.sigma) == (0.0, 1.0)
    assert config.n_train == 100 and config.seed == 0 and config.simulations == 512


def test_the_paper_claim_holds_on_the_shared_run(real_run):
    """§3.2 (eq. 23): I_gen ≤ I_train within errors for every n_gen, and I_gen
    approaches I_train from below as n_gen grows; KL and MI too."""
    fisher = json.loads((real_run[1] / "fisher.json").read_text())
    assert fisher["n_gen"] == SHARED_N_GEN
    assert all(fisher["holds"])
    ratios = [r[0] for r in fisher["ratio_to_train"]]
    errors = [e[0] for e in fisher["ratio_to_train_stderr"]]
    assert all(r < 1 + 3 * e for r, e in zip(ratios, errors, strict=True))
    assert ratios[0] < 0.2 and ratios[-1] > 1 - 3 * errors[-1]
    increases = [b - a for a, b in itertools.pairwise(ratios)]
    steps = [3 * (ea**2 + eb**2) ** 0.5 for ea, eb in itertools.pairwise(errors)]
    assert all(d > -s for d, s in zip(increases, steps, strict=True))
    for key in ("kl", "mi"):  # never violated; null (undetermined) where ESS < 30
        holds, verdicts = fisher[key]["holds"], fisher[key]["verdict"]
        assert all(h is not False for h in holds)
        assert [h is None for h in holds] == [v == "undetermined" for v in verdicts]


def test_the_mean_and_sigma_fit_agrees_with_its_quadrature_reference(real_run):
    """Issue 12: on the shared run (ideal mean-and-σ fit), the importance-sampling
    I_gen agrees with the exact μμ element within 3 SE at every n_gen, and no
    lower bound exceeds it by more than 3 SE."""
    fisher = json.loads((real_run[1] / "fisher.json").read_text())
    for i, exact in enumerate(fisher["I_gen_exact"]):
        value, error = fisher["I_gen"][i][0][0], fisher["I_gen_stderr"][i][0][0]
        assert abs(value - exact[0][0]) < 3 * error, (i, value, error, exact)
        for routes in fisher["bounds"][i].values():
            for estimate in routes.values():
                if isinstance(estimate, str):
                    continue
                bound, stderr = estimate["value"][0][0], estimate["stderr"][0][0]
                assert bound < exact[0][0] + 3 * stderr, (i, bound, stderr, exact)
        lower, stderr = fisher["I_gen_lower"][i][0][0], fisher["I_gen_lower_stderr"][i]
        assert lower < exact[0][0] + 3 * stderr[0][0]


def test_no_plots_and_quiet(real_run, tmp_path, monkeypatch, capsys):
    _, out, _, result = real_run
    calls = replay(monkeypatch, result)
    target = tmp_path / "quiet"
    flags = [*SHARED_FLAGS, "--no-plots", "--quiet"]
    assert run_cli("fisher", *flags, "--out", str(target)) == 0
    assert len(calls) == 1
    assert [p.name for p in target.iterdir()] == ["fisher.json"]
    replayed, recorded = (
        json.loads((folder / "fisher.json").read_text()) for folder in (target, out)
    )
    assert replayed.pop("provenance")["command_line"].startswith("jaxunc fisher")
    recorded.pop("provenance")
    assert replayed == recorded
    assert capsys.readouterr().out == ""


def test_exponential_no_plots_quiet(tmp_path, capsys):
    """A second real run: the exponential model (its Fisher information has a closed
    form for D_train only), no figure, no output.  It is the command line of the
    golden case ``fisher-exponential`` (tests/golden/cases.py), so its numbers must
    be the recorded ones, and the suite compiles its programs once for both tests."""
    case = golden.CASES_BY_NAME["fisher-exponential"]
    out = tmp_path / "exponential"
    arguments = [*case.argv[1:], "--no-plots", "--quiet"]
    assert run_cli("fisher", *arguments, "--out", str(out)) == 0
    assert [p.name for p in out.iterdir()] == ["fisher.json"]
    assert capsys.readouterr().out == ""
    payload = json.loads((out / "fisher.json").read_text())
    assert set(payload) >= REQUIRED_KEYS
    assert payload["config"]["model"] == "exponential"
    assert payload["parameters"] == ["rate"] and payload["n_gen"] == [100]
    assert payload["I_train_exact"] == [[pytest.approx(100.0)]]  # n/λ², λ = 1
    # I_gen of the ideal rate fit by quadrature (the exact reference of issue 12)
    exact = exponential_fit_generated_fisher(1.0, 100, 100)
    assert len(payload["I_gen"]) == 1
    assert payload["I_gen_exact"] == [[[pytest.approx(exact, rel=1e-12)]]]
    assert payload["mi"]["train_exact"] is None and len(payload["kl"]["gen"]) == 1
    # The inequality on the exponential, beyond 3 standard errors at n_gen = n_train.
    assert all(payload["holds"]) and payload["margin_sigma"][0] > 3
    payload.pop("provenance")
    recorded = golden.load_recording(case)
    assert golden.compare(recorded, json.loads(golden.to_json_text(payload))) == []


FLAG_CASES = [
    ([], {"model": "gaussian", "params": "mu", "fit": "mean-std", "n_train": 100}),
    (
        ["--model", "exponential", "--rate", "2.5", "--n-train", "50"],
        {"model": "exponential", "params": "rate", "rate": 2.5, "n_train": 50},
    ),
    (
        ["--fit", "mean", "--mu", "1", "--sigma", "2", "--seed", "7"],
        {"fit": "mean", "params": "mu", "mu": 1.0, "sigma": 2.0, "seed": 7},
    ),
    (
        ["--params", "mu-sigma", "--n-gen", "5,50", "--outer", "8"],
        {"params": "mu-sigma", "n_gen": (5, 50), "outer": 8},
    ),
    (["--pseudo-experiments", "99"], {"pseudo_experiments": 99}),
    # the flags of the lower bounds on I_gen (issue 12)
    (
        ["--model", "camelback", "--surrogate", "flow"],
        {"params": "mu", "summaries": ("mean", "mle"), "simulations": 512},
    ),
    (
        ["--model", "spectrum", "--summaries", "mle,learned"],
        {"params": "mass", "summaries": ("mle", "learned")},
    ),
    (
        ["--surrogate", "gan", "--simulations", "64", "--quantile-bins", "5"],
        {"simulations": 64, "quantile_bins": 5, "pseudo_experiments": None},
    ),
    ([], {"surrogate": "ideal", "pseudo_experiments": 4000}),
    # --theta: any model's true parameters (issue 15); the Gaussian's land in its
    # own fields, another model's in its spec
    (
        ["--theta", "mu=1,sigma=2"],
        {"mu": 1.0, "sigma": 2.0, "theta": {"mu": 1.0, "sigma": 2.0}},
    ),
    (["--model", "exponential", "--theta", "rate=2.5"], {"rate": 2.5}),
]


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("arguments", "expected"), FLAG_CASES)
def test_flags_reach_the_config(arguments, expected, tmp_path, monkeypatch):
    seen = []

    def stand_in(config, **options):
        seen.append(config)
        raise _Stop

    patch_run(monkeypatch, stand_in)
    # the stand-in's exception ends at the command's boundary: exit 1 (a bug)
    assert run_cli("fisher", *arguments, "--out", str(tmp_path / "out")) == 1
    (config,) = seen
    for name, value in expected.items():
        assert getattr(config, name) == value, name
    assert list(tmp_path.iterdir()) == []


def test_reproduce_runs_toy_then_fisher(real_run, tmp_path, monkeypatch, capsys):
    """``jaxunc reproduce --only toy,fisher`` runs both, the study with its defaults
    into OUT/fisher (the toy is stubbed out here; tests/test_cli.py runs it)."""
    import jaxunc.cli

    _, _, _, result = real_run
    toy_calls = []
    run_study = jaxunc.cli._run_study

    def skip_toy(study, args, out, *rest, **options):
        if study.name == "toy":
            toy_calls.append(out)
            return None
        return run_study(study, args, out, *rest, **options)

    monkeypatch.setattr(jaxunc.cli, "_run_study", skip_toy)
    default_run_only(monkeypatch)
    calls = replay(monkeypatch, result, expected_config=fisher_study.FisherConfig())
    argv = ("reproduce", "--only", "toy,fisher", "--quiet", "--out", str(tmp_path))
    assert run_cli(*argv) == 0
    assert len(toy_calls) == 1 and len(calls) == 1
    assert toy_calls[0] == tmp_path / "toy"
    fisher_out = tmp_path / "fisher"
    assert sorted(p.name for p in fisher_out.iterdir()) == sorted(
        ["fisher.json", *FISHER_FIGURES, *REPORT_FILES]
    )
    assert capsys.readouterr().out == ""


BAD_ARGUMENTS = [
    (["--model", "foo"], "--model"),
    (["--params", "mu-sigma", "--fit", "mean"], "--params"),
    (["--params", "rate"], "--params"),
    (["--model", "exponential", "--params", "mu"], "--params"),
    (["--params", "theta"], "--params"),
    (["--sigma", "0"], "--sigma"),
    (["--sigma", "-1"], "--sigma"),
    (["--sigma", "nan"], "--sigma"),
    (["--mu", "inf"], "--mu"),
    (["--rate", "0"], "--rate"),
    (["--model", "exponential", "--rate", "-2"], "--rate"),
    (["--n-gen", "10,,x"], "--n-gen"),
    (["--n-gen", "0"], "--n-gen"),
    (["--n-gen", "-5,10"], "--n-gen"),
    (["--n-train", "0"], "--n-train"),
    (["--n-train", "1"], "--n-train"),
    (["--outer", "1"], "--outer"),
    (["--outer", "0"], "--outer"),
    (["--pseudo-experiments", "1"], "--pseudo-experiments"),
    (["--pseudo-experiments", "ten"], "--pseudo-experiments"),
    (["--fit", "median"], "--fit"),
    (["--seed", "-1"], "--seed"),
    (["--precision", "float16"], "--precision"),
    (["--theta", "rate=2"], "--theta"),
    (["--theta", "mu=1", "--mu", "2"], "--theta"),
    (["--theta", "sigma=0"], "--theta"),
    (["--model", "camelback", "--theta", "width=1"], "--theta"),
    (["--model", "camelback", "--theta", "mu=nan"], "--theta"),
    (["--theta", "mu"], "--theta"),
]


@pytest.mark.parametrize(("arguments", "flag"), BAD_ARGUMENTS)
def test_bad_input_exits_2_and_writes_nothing(arguments, flag, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("fisher", *arguments, "--out", str(out)) == 2
    error = capsys.readouterr().err
    assert f"argument {flag}" in error
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    assert run_cli("fisher", *FAST, "--out", str(target)) == 2
    assert "argument --out" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_theta_sets_another_models_true_parameters(tmp_path, monkeypatch):
    """``--theta`` reaches a registered model without flags of its own (the camel
    back): the configuration's values, its spec and the recorded ``config.theta``
    are the given ones; the default θ stays the model's own."""
    seen = []

    def stand_in(config, **options):
        seen.append(config)
        raise _Stop

    patch_run(monkeypatch, stand_in)
    argv = ["--model", "camelback", "--theta", "mu=0.5", "--out", str(tmp_path / "o")]
    assert run_cli("fisher", *argv) == 1
    assert run_cli("fisher", "--model", "camelback", "--out", str(tmp_path / "p")) == 1
    given, default = seen
    assert given.theta_values() == {"mu": pytest.approx(0.5)}
    assert given.spec.theta["mu"] == 0.5
    assert default.spec.theta["mu"] == registry.model_spec("camelback").theta["mu"]
    assert default.theta_values()["mu"] != given.theta_values()["mu"]
    assert given.to_json()["theta"] == {"mu": 0.5}  # the JSON's config.theta
