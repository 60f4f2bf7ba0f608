"""Bad input, every command and public entry point: a clear message naming the
argument, a non-zero exit code, and no half-written output.

The command-line table is generated: ``COMMANDS`` holds one row per command (a
minimal valid command line), ``BAD_VALUES`` one row per option (its bad values); every
command is fed every bad value of every option its parser has.  Adding a command
(``ensemble``, ``validate``, ...) is one row in ``COMMANDS``; adding an option is one
row in ``BAD_VALUES``.  Commands run in-process through ``jaxunc.cli.main``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc import cli
from jaxunc.engine import Chain, run_pseudo_experiments
from jaxunc.engine.checkpoint import FORMAT_VERSION
from jaxunc.errors import InvalidArgument
from jaxunc.estimators import Estimate, SampleMean, fit_model
from jaxunc.information import fisher_information, kl_divergence
from jaxunc.models import Exponential, Gaussian, check_params, model_from_functions
from jaxunc.studies.fisher import FisherConfig, run_fisher
from jaxunc.studies.toy import ToyConfig, run_toy
from jaxunc.surrogates import IdealFit

# A minimal valid command line per command, with OUT where the output folder goes.
COMMANDS: dict[str, list[str]] = {
    "toy": ["toy", "--pseudo-experiments", "4", "--n-gen", "3", "--no-plots"],
    "fisher": ["fisher", "--n-gen", "10", "--outer", "4", "--no-plots"],
    "validate": [
        "validate",
        "--pseudo-experiments",
        "4",
        "--n-required",
        "10",
        "--no-plots",
    ],
    "ensemble": [
        "ensemble",
        "--surrogate",
        "bootstrap",
        "--ensemble-size",
        "4",
        "--n-gen",
        "10",
        "--no-plots",
    ],
    "merge": ["merge", "PART"],
}

# Bad values per option: (value, words the message must contain besides the flag).
BAD_VALUES: dict[str, list[tuple[str, str]]] = {
    "--pseudo-experiments": [
        ("0", "positive"),
        ("-3", "positive"),
        ("2.5", "integer"),  # integral floats (1e5) are counts: tests/test_cli.py
        ("5000000000", "<= 4294967295"),
    ],
    "--n-train": [
        ("0", "positive"),
        ("1", ">= 2"),
        ("many", ""),
        ("3000000000", "<= 2147483647"),
    ],
    "--n-gen": [
        ("10,,x", "comma-separated"),
        ("0", "positive"),
        ("-5", "positive"),
        ("", "comma-separated"),
        ("10;20", ""),
    ],
    "--mu": [("nan", "finite"), ("inf", "finite"), ("one", "number")],
    "--sigma": [
        ("0", "> 0"),
        ("-1", "> 0"),
        ("-inf", "finite"),
        ("1e39", "too large for float32"),
        ("1e-46", "too small for float32"),
    ],
    "--rate": [("0", "> 0"), ("nan", "finite"), ("1e39", "too large for float32")],
    "--seed": [("-1", "[0, 2**63)"), ("2.5", ""), (str(2**63), "[0, 2**63)")],
    "--precision": [("float16", "invalid choice")],
    "--fit": [("median", "invalid choice")],
    "--ddof": [("2", "invalid choice")],
    "--model": [("cauchy", "invalid choice")],
    "--params": [("lambda", "invalid choice")],
    "--outer": [("1", ">= 2"), ("0", "positive")],
    "--chunk-size": [("0", "positive"), ("-8", "positive")],
    "--memory-budget": [
        ("lots", ""),
        ("0", ""),
        ("-1GiB", ""),
        ("1e400GB", "at most"),
    ],
    "--checkpoint-interval": [("-1", ">= 0"), ("nan", "finite")],
    "--range": [
        ("5:2", "START < STOP"),
        ("a:b", "START:STOP"),
        ("3", "START:STOP"),
        ("5000000:6000000", "selects none"),
    ],
    "--num-processes": [("0", "positive")],
    "--coordinator": [("not-a-host", "HOST:PORT"), ("host:0", "HOST:PORT")],
    "--process-timeout": [("0", "positive")],
    "--surrogate": [("vae", "invalid choice")],
    "--ensemble-size": [("0", "positive"), ("1", ">= 2")],
    "--n-required": [
        ("10,,x", "comma-separated"),
        ("0", "positive"),
        ("3000000000", "<= 2147483647"),
    ],
    "--bins": [("1", ">= 2"), ("0", "positive")],
    "--binning": [("log", "invalid choice")],
    "--alpha": [("0", ""), ("1.5", ""), ("nan", "finite")],
    "--n-quantiles": [
        ("5,,", "comma-separated"),
        ("0", "positive"),
        ("97,101,103,107", "fine grid"),
        (",".join(str(q) for q in range(2, 32)), "fine grid"),
    ],
    "--replicas": [("0", "positive")],
    "--protocol-pseudo-experiments": [("0", "positive")],
}


def _options(command: str) -> set[str]:
    parser = cli.build_parser()
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    sub = subparsers.choices[command]
    return {flag for action in sub._actions for flag in action.option_strings}


def _cli_cases():
    for command in COMMANDS:
        options = _options(command)
        for flag, values in BAD_VALUES.items():
            if flag not in options:
                continue
            for value, words in values:
                yield pytest.param(
                    command, flag, value, words, id=f"{command}{flag}={value}"
                )


def run_cli(argv: list[str], out: Path, capsys) -> tuple[int, str]:
    """``jaxunc.cli.main(argv)`` in-process: (exit code, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as stop:  # argparse errors exit
        code = stop.code
    assert not jax.config.jax_enable_x64, "the command left 64-bit JAX switched on"
    return code, capsys.readouterr().err


def assert_nothing_written(out: Path) -> None:
    """No output folder, and no staging folder or stray file next to it."""
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def command_line(command: str, tmp_path: Path, *extra: str) -> tuple[list[str], Path]:
    out = tmp_path / "results" / "out"
    argv = [str(tmp_path / "part") if a == "PART" else a for a in COMMANDS[command]]
    (tmp_path / "results").mkdir(exist_ok=True)
    return [*argv, "--out", str(out), "--quiet", *extra], out


@pytest.mark.parametrize(("command", "flag", "value", "words"), list(_cli_cases()))
def test_command_rejects_bad_value(command, flag, value, words, tmp_path, capsys):
    argv, out = command_line(command, tmp_path, f"{flag}={value}")
    code, err = run_cli(argv, out, capsys)
    assert code == 2, err
    assert f"argument {flag}" in err, err
    assert words in err, err
    assert "Traceback" not in err
    assert_nothing_written(out)


# Bad combinations: (command, extra arguments, the flag named, words).  Sizes are
# refused before any allocation (under --memory-budget 1GiB, within 10 s).
BAD_COMBINATIONS = [
    ("toy", ["--mu", "3e38", "--sigma", "3e38"], "--mu", "too large"),
    ("toy", ["--fit", "mean", "--ddof", "1"], "--ddof", "--fit mean"),
    ("fisher", ["--model", "exponential", "--fit", "mean"], "--fit", "Gaussian"),
    ("fisher", ["--outer", "100000000", "--memory-budget", "1GiB"], "--outer", "MiB"),
    (
        "validate",
        ["--n-quantiles", "2,3,5,7,11,13", "--memory-budget", "1MiB"],
        "--n-quantiles",
        "memory budget",
    ),
    ("toy", ["--num-processes", "2"], "--coordinator", "needs"),
]


@pytest.mark.parametrize(
    ("command", "extra", "flag", "words"),
    BAD_COMBINATIONS,
    ids=[f"{c}:{' '.join(e)}" for c, e, _, _ in BAD_COMBINATIONS],
)
def test_command_rejects_bad_combination(command, extra, flag, words, tmp_path, capsys):
    import resource
    import time

    argv, out = command_line(command, tmp_path, *extra)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    start = time.perf_counter()
    code, err = run_cli(argv, out, capsys)
    assert time.perf_counter() - start < 10.0
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown < 2**20, f"peak memory grew by {grown} KiB"
    assert code == 2, err
    assert f"argument {flag}" in err and words in err, err
    assert "Traceback" not in err
    assert_nothing_written(out)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_command_rejects_unknown_option(command, tmp_path, capsys):
    argv, out = command_line(command, tmp_path, "--n-gne", "10")
    code, err = run_cli(argv, out, capsys)
    assert code == 2 and "unrecognized arguments: --n-gne" in err
    assert_nothing_written(out)


def _unwritable_outs(tmp_path: Path) -> list[tuple[Path, str]]:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    cases = [(blocker, "not a folder"), (blocker / "below", "cannot write")]
    if os.geteuid() != 0:  # root may write anywhere: a read-only folder stops no one
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        cases.append((locked / "out", "cannot write"))
    return cases


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "merge"])
def test_command_rejects_unwritable_out(command, tmp_path, capsys):
    for out, words in _unwritable_outs(tmp_path):
        argv = [*COMMANDS[command], "--out", str(out), "--quiet"]
        code, err = run_cli(argv, out, capsys)
        assert code == 2, err
        assert "argument --out" in err and words in err, err
        if out.is_file():
            assert out.read_text() == "not a folder\n"
        else:
            assert not out.exists()


def test_merge_rejects_missing_and_corrupt_parts(tmp_path, capsys):
    out = tmp_path / "merged"
    missing = tmp_path / "missing"
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "partial.json").write_text('{"format": 1, "runs": ')
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "partial.json").write_text(json.dumps({"format": 1, "runs": []}))
    for part in (missing, empty, corrupt, wrong):
        code, err = run_cli(["merge", str(part), "--out", str(out)], out, capsys)
        assert code == 2, err
        assert "argument PART" in err and str(part) in err, err
        assert not out.exists()


def _part(folder: Path, arguments: dict) -> Path:
    """A partial result of no engine run with the given stored arguments."""
    folder.mkdir()
    info = {"command": "toy", "arguments": arguments}
    (folder / "partial.json").write_text(
        json.dumps({"format": FORMAT_VERSION, "info": info, "runs": {}})
    )
    return folder


def _toy_arguments(**changes) -> dict:
    """The arguments a ``toy --range`` part stores, with ``changes``."""
    config = ToyConfig()
    arguments = {name: getattr(config, name) for name in cli._cli_fields(ToyConfig)}
    arguments = {
        k: list(v) if isinstance(v, tuple) else v for k, v in arguments.items()
    }
    return {**arguments, "no_plots": True, **changes}


def test_merge_names_the_part_and_key(tmp_path, capsys):
    out = tmp_path / "merged"
    lacking = _toy_arguments()
    del lacking["sigma"]
    cases = [
        (_part(tmp_path / "lacking", lacking), "lacks the argument 'sigma'"),
        (
            _part(tmp_path / "bad", _toy_arguments(pseudo_experiments=0)),
            "bad value of the argument 'pseudo_experiments'",
        ),
        (_part(tmp_path / "nothing", {}), "lacks the argument"),
    ]
    for part, words in cases:
        code, err = run_cli(["merge", str(part), "--out", str(out)], out, capsys)
        assert code == 2, err
        assert "argument PART" in err and words in err, err
        assert str(part / "partial.json") in err, err
        assert "--pseudo-experiments" not in err and "Traceback" not in err
        assert not out.exists()


@pytest.mark.parametrize("command", ["toy", "fisher"])
def test_command_rejects_corrupt_checkpoint(command, tmp_path, capsys):
    from jaxunc.checkpoint import run_folder_name

    checkpoint = tmp_path / "checkpoint"
    # Every engine run of the study finds a manifest that is not JSON.
    descriptions = {"toy": ["toy"], "fisher": ["fisher estimator view"]}[command]
    for description in descriptions:
        run = checkpoint / run_folder_name(description)
        run.mkdir(parents=True)
        (run / "manifest.json").write_text("{ truncated")
    as_file = tmp_path / "checkpoint-file"
    as_file.write_text("x")
    for folder, words in ((checkpoint, "corrupt"), (as_file, "not a folder")):
        argv, out = command_line(command, tmp_path, "--checkpoint", str(folder))
        code, err = run_cli(argv, out, capsys)
        assert code == 2, err
        assert "argument --checkpoint" in err and words in err, err
        assert_nothing_written(out)


# ------------------------------------------------------------------ public functions


def _pe(key):
    return {"mean": Estimate(jnp.zeros(1), jnp.bool_(True))}


THETA = {"mu": 0.0, "sigma": 1.0}
X = np.linspace(-1.0, 1.0, 50, dtype=np.float32)
KEY = jax.random.key(0)

# (callable, what must be named in the message)
PUBLIC: dict[str, tuple] = {
    "ToyConfig pseudo_experiments=0": (
        lambda: ToyConfig(pseudo_experiments=0),
        "pseudo_experiments",
    ),
    "ToyConfig n_gen=()": (lambda: ToyConfig(n_gen=()), "n_gen"),
    "ToyConfig n_gen=(10, -1)": (lambda: ToyConfig(n_gen=(10, -1)), "n_gen"),
    "ToyConfig mu=nan": (lambda: ToyConfig(mu=math.nan), "mu"),
    "ToyConfig sigma=inf": (lambda: ToyConfig(sigma=math.inf), "sigma"),
    "ToyConfig fit=unknown": (lambda: ToyConfig(fit="median"), "fit"),
    "ToyConfig precision=unknown": (lambda: ToyConfig(precision="half"), "precision"),
    "ToyConfig seed=-1": (lambda: ToyConfig(seed=-1), "seed"),
    "run_toy config=dict": (lambda: run_toy({"pseudo_experiments": 2}), "config"),
    "FisherConfig model=unknown": (lambda: FisherConfig(model="cauchy"), "model"),
    "FisherConfig rate=0": (
        lambda: FisherConfig(model="exponential", rate=0.0),
        "rate",
    ),
    "FisherConfig outer=1": (lambda: FisherConfig(outer=1), "outer"),
    "FisherConfig n_gen=(0,)": (lambda: FisherConfig(n_gen=(0,)), "n_gen"),
    "run_fisher config=None": (lambda: run_fisher(None), "config"),
    "run_pseudo_experiments n_pseudo=0": (
        lambda: run_pseudo_experiments(_pe, KEY, 0, progress=False),
        "n_pseudo",
    ),
    "run_pseudo_experiments n_pseudo=-1": (
        lambda: run_pseudo_experiments(_pe, KEY, -1, progress=False),
        "n_pseudo",
    ),
    "run_pseudo_experiments chunk_size=0": (
        lambda: run_pseudo_experiments(_pe, KEY, 4, chunk_size=0, progress=False),
        "chunk_size",
    ),
    "run_pseudo_experiments edges=[1]": (
        lambda: run_pseudo_experiments(
            _pe, KEY, 4, histogram_edges={"mean": [1.0]}, progress=False
        ),
        "edges",
    ),
    "Chain n_train=0": (
        lambda: Chain(
            Gaussian(),
            THETA,
            IdealFit(Gaussian(), THETA, ("mu",)),
            SampleMean(),
            0,
            (5,),
        ),
        "n_train",
    ),
    "Chain theta nan": (
        lambda: Chain(
            Gaussian(),
            {"mu": math.nan, "sigma": 1.0},
            IdealFit(Gaussian(), THETA, ("mu",)),
            SampleMean(),
            5,
            (5,),
        ),
        "finite",
    ),
    "IdealFit free=unknown": (
        lambda: IdealFit(Gaussian(), THETA, ("tau",)),
        "free",
    ),
    "fit_model free=unknown": (
        lambda: fit_model(Gaussian(), X, THETA, ("tau",), use_closed_form=False),
        "free",
    ),
    "fit_model init missing a parameter": (
        lambda: fit_model(Gaussian(), X, {"mu": 0.0}, ("mu",), use_closed_form=False),
        "init",
    ),
    "fit_model init nan": (
        lambda: fit_model(
            Gaussian(),
            X,
            {"mu": math.nan, "sigma": 1.0},
            ("mu",),
            use_closed_form=False,
        ),
        "init",
    ),
    "fit_model ddof without closed form": (
        lambda: fit_model(Gaussian(), X, THETA, ("mu",), ddof=1, use_closed_form=False),
        "ddof",
    ),
    "fisher_information n_events=0": (
        lambda: fisher_information(Gaussian(), THETA, 0, key=KEY),
        "n_events",
    ),
    "fisher_information method=unknown": (
        lambda: fisher_information(Gaussian(), THETA, 1, key=KEY, method="hessian"),
        "method",
    ),
    "fisher_information theta inf": (
        lambda: fisher_information(Gaussian(), {"mu": math.inf, "sigma": 1.0}, key=KEY),
        "finite",
    ),
    "fisher_information params=unknown": (
        lambda: fisher_information(Gaussian(), THETA, 1, key=KEY, params=("tau",)),
        "tau",
    ),
    "kl_divergence monte_carlo_events=0": (
        lambda: kl_divergence(
            Gaussian(), THETA, {"mu": 1.0, "sigma": 1.0}, key=KEY, monte_carlo_events=0
        ),
        "monte_carlo_events",
    ),
    "Gaussian check_params sigma=0": (
        lambda: check_params(Gaussian(), {"mu": 0.0, "sigma": 0.0}),
        "sigma",
    ),
    "Gaussian check_params mu=nan": (
        lambda: check_params(Gaussian(), {"mu": math.nan, "sigma": 1.0}),
        "finite",
    ),
    "Gaussian check_params missing sigma": (
        lambda: Gaussian().check_params({"mu": 0.0}),
        "sigma",
    ),
    "Exponential check_params rate=-1": (
        lambda: Exponential().check_params({"rate": -1.0}),
        "rate",
    ),
    "model_from_functions not callable": (
        lambda: model_from_functions("sample", lambda x, t: x),
        "callable",
    ),
}


@pytest.mark.parametrize("case", list(PUBLIC))
def test_public_function_rejects_bad_input(case):
    call, named = PUBLIC[case]
    with pytest.raises((ValueError, TypeError)) as error:
        call()
    assert named in str(error.value), str(error.value)
    if isinstance(error.value, InvalidArgument):
        assert error.value.argument in str(error.value)
