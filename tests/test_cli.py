"""The command line: outputs, reproducibility, and bad input (exit 2, nothing
written)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from report_page import missing_images, read_page, unreferenced_figures

from jaxunc.cli import main
from jaxunc.plots.toy import FILES as TOY_FIGURES
from jaxunc.report import REPORT_FILES, finding

SMALL = ["--pseudo-experiments", "3000", "--quiet"]


def run_cli(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse exits for its own errors
        return int(exit_.code)


def test_toy_writes_summary(tmp_path):
    out = tmp_path / "toy"
    assert (
        run_cli("toy", *SMALL, "--n-gen", "30,300", "--no-plots", "--out", str(out))
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    config = summary["config"]
    assert config["pseudo_experiments"] == 3000 and config["n_gen"] == [30, 300]
    assert config["fit"] == "mean-std" and config["ddof"] == 0 and config["seed"] == 0
    assert summary["n_gen"] == [30, 300]
    for part in ("truth", "surrogate"):
        for field in ("mean", "std", "std_stderr", "predicted_std"):
            assert len(summary[part][field]) == 2
    assert summary["truth"]["predicted_std"] == pytest.approx([30**-0.5, 300**-0.5])
    assert summary["surrogate"]["predicted_std"] == pytest.approx(
        [(0.01 + 0.99 / 30) ** 0.5, (0.01 + 0.99 / 300) ** 0.5]
    )
    runtime = summary["runtime"]
    for field in (
        "seconds",
        "events",
        "events_per_second",
        "backend",
        "device_count",
        "jax_version",
    ):
        assert field in runtime
    assert runtime["events"] == 3000 * (100 + 2 * 330)


def test_chunk_size_does_not_change_the_summary(tmp_path):
    summaries = []
    for chunk in ("128", "1000"):
        out = tmp_path / chunk
        assert (
            run_cli(
                "toy", *SMALL, "--no-plots", "--chunk-size", chunk, "--out", str(out)
            )
            == 0
        )
        summaries.append(json.loads((out / "summary.json").read_text()))
    for part in ("truth", "surrogate", "fitted", "training"):
        assert summaries[0][part] == summaries[1][part]


BAD_ARGUMENTS = [
    (["--sigma", "0"], "--sigma"),
    (["--sigma", "-1"], "--sigma"),
    (["--sigma", "nan"], "--sigma"),
    (["--mu", "inf"], "--mu"),
    (["--mu", "nan"], "--mu"),
    (["--n-train", "0"], "--n-train"),
    (["--n-train", "1"], "--n-train"),
    (["--fit", "mean", "--ddof", "1", "--n-train", "1"], "--n-train"),
    (["--n-gen", "0"], "--n-gen"),
    (["--n-gen", "-5,10"], "--n-gen"),
    (["--n-gen", "10,,x"], "--n-gen"),
    (["--pseudo-experiments", "0"], "--pseudo-experiments"),
    (["--pseudo-experiments", "1"], "--pseudo-experiments"),
    (["--pseudo-experiments", "ten"], "--pseudo-experiments"),
    (["--fit", "median"], "--fit"),
    (["--chunk-size", "0"], "--chunk-size"),
    (["--seed", "-1"], "--seed"),
    (["--precision", "float16"], "--precision"),
    (["--style", "talk"], "--style"),
]


@pytest.mark.parametrize(("arguments", "flag"), BAD_ARGUMENTS)
def test_bad_input_exits_2_and_writes_nothing(arguments, flag, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("toy", *arguments, "--out", str(out)) == 2
    error = capsys.readouterr().err
    assert f"argument {flag}" in error
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    assert run_cli("toy", *SMALL, "--out", str(target)) == 2
    assert "argument --out" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_real_process_exit_code_and_message(tmp_path):
    out = tmp_path / "out"
    process = subprocess.run(
        [sys.executable, "-m", "jaxunc", "toy", "--sigma", "-2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 2
    assert "argument --sigma: must be > 0" in process.stderr
    assert not out.exists()


def test_progress_bar_is_quiet_when_not_a_terminal(tmp_path):
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxunc",
            "toy",
            "--pseudo-experiments",
            "2000",
            "--no-plots",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        # without the suite's one-device setting (conftest.py): the command's own
        env={k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"},
    )
    assert process.returncode == 0, process.stderr
    assert "PE/s" not in process.stderr and "%|" not in process.stderr
    assert "events/s" in process.stdout  # the summary table still prints
    # The toy does not ask for one CPU device per core (XLA's threads fill them).
    runtime = json.loads((tmp_path / "summary.json").read_text())["runtime"]
    assert runtime["device_count"] == 1


_DEVICES_SCRIPT = """
import argparse, sys, jax
from jaxunc.cli import _one_cpu_device_per_core
_one_cpu_device_per_core(
    argparse.Namespace(command=sys.argv[2], coordinator=sys.argv[1] or None)
)
print(len(jax.devices("cpu")))
"""


@pytest.mark.parametrize(
    ("environment", "coordinator", "command", "expected"),
    [
        ({}, "", "validate", "cores"),
        ({}, "", "fisher", 1),
        ({"JAX_NUM_CPU_DEVICES": "1"}, "", "validate", 1),
        ({"XLA_FLAGS": "--xla_force_host_platform_device_count=3"}, "", "validate", 3),
        ({}, "127.0.0.1:1234", "validate", 1),
    ],
)
def test_one_cpu_device_per_core_unless_chosen(
    environment, coordinator, command, expected
):
    """The command's device default for a study that asks for it (validate), not
    for one that does not (fisher), and the user's choices that it leaves alone:
    JAX's own variable, the XLA flag, and a multi-process run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")
    }
    env.update(environment)
    process = subprocess.run(
        [sys.executable, "-c", _DEVICES_SCRIPT, coordinator, command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert process.returncode == 0, process.stderr
    cores = len(os.sched_getaffinity(0))
    assert int(process.stdout) == (cores if expected == "cores" else expected)


def test_device_default_leaves_a_running_jax_alone():
    """Called from Python after JAX has run (this test process), the command keeps
    JAX's devices instead of failing."""
    import argparse

    import jax

    from jaxunc.cli import _one_cpu_device_per_core

    before = len(jax.devices())
    _one_cpu_device_per_core(argparse.Namespace(command="validate"))
    assert len(jax.devices()) == before


def test_reproduce_runs_the_paper_toy_defaults(tmp_path):
    """The README's first Quick-start command (the installed part aside), for the toy
    of Appendix A at its defaults, and the command's check that Figures 4-7 are
    written (tests/test_plots.py checks they are readable PNGs);
    tests/test_cli_fisher.py runs the §3.2 study's defaults (another file, so the two
    run in parallel), and the ensembles and validations are checked at reduced size
    below."""
    assert run_cli("reproduce", "--only", "toy", "--quiet", "--out", str(tmp_path)) == 0
    toy = tmp_path / "toy"
    assert {p.name for p in toy.iterdir()} == {
        "summary.json",
        *TOY_FIGURES,
        *REPORT_FILES,
    }
    summary = json.loads((toy / "summary.json").read_text())
    # the report: every figure shown and found, the run's finding (REPORT.md and
    # index.html beside the results and in the root folder)
    page = tmp_path / "index.html"
    assert missing_images(page) == [] and unreferenced_figures(page) == []
    assert read_page(page).sections == {"toy": finding("toy", summary)[0]}
    assert summary["provenance"]["command_line"] == (
        f"jaxunc reproduce --only toy --quiet --out {tmp_path}"
    )
    assert summary["config"]["pseudo_experiments"] == 100_000
    assert summary["n_gen"] == [30, 100, 300, 1000]
    assert sum(summary["surrogate"]["failures"]) == 0
    assert not (tmp_path / "fisher").exists()


def test_reproduce_runs_every_study(tmp_path, monkeypatch, capsys):
    """``reproduce`` writes each study's output where the README says, at reduced
    sizes (the GAN/flow runs at the defaults take minutes each: see RESULTS.md)."""
    import dataclasses

    from jaxunc.studies.registry import STUDIES

    small = {"ensemble_size": 4, "n_gen": (30, 300), "n_train": 50}
    monkeypatch.setitem(
        STUDIES,
        "ensemble",
        dataclasses.replace(
            STUDIES["ensemble"],
            reproduce={
                "gaussian-kde": {"model": "gaussian", "surrogate": "kde", **small}
            },
        ),
    )
    monkeypatch.setitem(
        STUDIES,
        "validate",
        dataclasses.replace(
            STUDIES["validate"],
            reproduce={
                "ideal": {
                    "surrogate": "ideal",
                    "pseudo_experiments": 64,
                    "n_required": (100, 10000),
                    "n_quantiles": (5, 20),
                    "replicas": 4,
                    "protocol_pseudo_experiments": 16,
                }
            },
        ),
    )
    out = tmp_path / "results"
    assert (
        run_cli(
            "reproduce",
            "--only",
            "ensemble,validate",
            "--style",
            "hep",
            "--out",
            str(out),
        )
        == 0
    )
    ensemble = json.loads(
        (out / "ensemble" / "gaussian-kde" / "ensemble.json").read_text()
    )
    assert ensemble["n_gen"] == [30, 300] and "ideal_reference" in ensemble
    assert (out / "ensemble" / "gaussian-kde" / "ensemble_std_vs_ngen.png").exists()
    validate = json.loads((out / "validate" / "ideal" / "validate.json").read_text())
    assert validate["n_required"] == [100, 10000]
    assert not (out / "toy").exists() and not (out / "fisher").exists()
    printed = capsys.readouterr().out
    assert "reproduce: done" in printed
    assert "[1/2] ensemble gaussian-kde: running into" in printed
    assert printed.count("left in all)") == 2 and printed.count("left)") == 1


def test_every_reproduced_run_has_its_reference_time():
    from jaxunc.studies.registry import STUDIES

    for study in STUDIES.values():
        assert set(study.reproduce_seconds) == set(study.reproduce or ()), study.name


def test_remaining_time_scales_the_reference_by_the_observed_speed():
    from jaxunc.cli import remaining_seconds

    expected = [10.0, 30.0, 60.0]
    assert remaining_seconds(expected, 0, 0.0) == 100.0
    # the first stage ran twice as slow as on the reference machine
    assert remaining_seconds(expected, 1, 20.0) == 180.0
    assert remaining_seconds(expected, 2, 20.0) == 30.0  # then twice as fast
    assert remaining_seconds(expected, 3, 200.0) == 0.0


def test_hep_style_without_mplhep_is_refused_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "mplhep", None)  # import mplhep -> ImportError
    out = tmp_path / "out"
    assert run_cli("toy", "--style", "hep", "--out", str(out)) == 2
    error = capsys.readouterr().err
    assert "argument --style" in error and "mplhep" in error
    assert not out.exists()


def test_version_prints_the_package_version(capsys):
    import jaxunc

    assert run_cli("--version") == 0
    assert capsys.readouterr().out.startswith(f"jaxunc {jaxunc.__version__}")


def test_counts_accept_integral_floats_and_sizes_are_sorted_unique(capsys):
    from jaxunc.cli import build_parser
    from jaxunc.studies.toy import ToyConfig

    parser = build_parser()
    args = parser.parse_args(["toy", "--pseudo-experiments", "1e5", "--n-gen", "3e2"])
    assert args.pseudo_experiments == 100_000 and args.n_gen == (300,)
    args = parser.parse_args(["toy", "--n-gen", "300,30,300,100"])
    assert ToyConfig(n_gen=args.n_gen).n_gen == (30, 100, 300)
    # a count that is not an integer is still refused, naming the flag
    assert run_cli("toy", "--pseudo-experiments", "2.5e0") == 2
    assert "--pseudo-experiments" in capsys.readouterr().err
    # a list whose order the study reads is refused, saying how to give it
    assert run_cli("validate", "--n-required", "1000,100,1000", "--quiet") == 2
    error = capsys.readouterr().err
    assert "--n-required" in error and "e.g. 100,1000" in error


def test_p_value_quantiles_below_the_histogram_floor_are_bounds():
    """A quantile inside the first bin [0, floor) is reported as a bound (None and
    a flag), never as the interpolated number; one just above stays a number."""
    import numpy as np

    from jaxunc.studies.validate import P_VALUE_EDGES, P_VALUE_FLOOR
    from jaxunc.validation import bound_below_floor, histogram_quantiles

    counts = np.zeros((2, len(P_VALUE_EDGES) - 1))
    counts[0, 0] = 10  # every p-value below the floor
    counts[1, 1] = 10  # every p-value in the second bin [floor, ...)
    quantiles = histogram_quantiles(counts, P_VALUE_EDGES, (0.5,))
    assert 0 < quantiles[0, 0] < P_VALUE_FLOOR  # the interpolation artefact
    values, below = bound_below_floor(quantiles, P_VALUE_FLOOR)
    assert values[0] == [None] and below[0] == [True]
    assert values[1] == [quantiles[1, 0]] and below[1] == [False]
    assert values[1][0] >= P_VALUE_FLOOR


def test_theta_text_and_a_model_at_other_true_values():
    """The pieces of --theta: NAME=VALUE,... parsed and checked, and a registered
    model moved to other true values, refusing names and values it does not have."""
    import argparse
    import math

    from jaxunc.errors import InvalidArgument
    from jaxunc.studies.base import parse_theta
    from jaxunc.studies.registry import model_spec

    assert parse_theta("mu=1, sigma=2.5") == {"mu": 1.0, "sigma": 2.5}
    for bad in ("mu", "mu=x", "mu=1,mu=2", "1x=2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_theta(bad)
    assert math.isnan(parse_theta("mu=nan")["mu"])  # a number: the model refuses it
    spec = model_spec("gaussian")
    moved = spec.at({"mu": 2.0})
    assert moved.theta == {**spec.theta, "mu": 2.0} and spec.at(None) is spec
    with pytest.raises(
        InvalidArgument, match=r"'rate' is not a parameter.*mu \(default 0\), sigma"
    ):
        spec.at({"rate": 1.0})
    with pytest.raises(InvalidArgument, match="mu must be a finite number"):
        spec.at({"mu": math.nan})
    with pytest.raises(InvalidArgument) as caught:
        spec.at({"sigma": -1.0})
    assert caught.value.argument == "theta"
