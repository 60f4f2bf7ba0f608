"""Faults of the environment: concurrent writers, full disks, signals, killed runs,
unexpected errors.  The output folder always holds exactly one run's complete result
(``jaxunc.outdir``); failures end with one paragraph and a documented exit code."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from jaxunc import cli
from jaxunc.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_FAILURE
from jaxunc.outdir import clean_leftovers, output_folder
from jaxunc.studies.registry import STUDIES

TOY = ["toy", "--pseudo-experiments", "4", "--n-gen", "3", "--quiet"]


def _run(argv, capsys):
    code = cli.main(argv)
    return code, capsys.readouterr().err


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------ folders replaced whole


def test_concurrent_runs_leave_one_complete_folder(tmp_path):
    """Two writers into one folder, with a delay between their files: the folder
    ends as exactly one writer's complete set, whatever the interleaving."""
    out = tmp_path / "out"
    names = ("summary.json", "fig4.png", "fig5.png")

    def writer(tag: str, delay: float) -> None:
        with output_folder(out, lambda folder: True) as staging:
            for name in names:
                (staging / name).write_text(tag)
                time.sleep(delay)

    for delays in ((0.02, 0.03), (0.03, 0.02), (0.0, 0.01)):
        threads = [
            threading.Thread(target=writer, args=(tag, delay))
            for tag, delay in zip("AB", delays, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        contents = {p.name: p.read_text() for p in out.iterdir()}
        assert sorted(contents) == sorted(names)
        assert len(set(contents.values())) == 1, contents
        assert _hidden(tmp_path) == []


def test_rerun_replaces_the_folder_whole(tmp_path, capsys):
    """A --no-plots rerun leaves no older figure; a folder of foreign files is
    refused, untouched."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}\n")
    (out / "fig4.png").write_text("an older run's figure")
    code, err = _run([*TOY, "--no-plots", "--out", str(out)], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert (out / "summary.json").read_text() != "{}\n"
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    code, err = _run([*TOY, "--no-plots", "--out", str(foreign)], capsys)
    assert code == EXIT_BAD_INPUT and "argument --out" in err and "did not" in err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert _hidden(tmp_path) == []


# ------------------------------------------------------------------ the boundary


def _failing_toy(monkeypatch, error: BaseException) -> None:
    """The toy study with a run that raises ``error`` after writing nothing."""

    def run(config, **options):
        raise error

    monkeypatch.setitem(STUDIES, "toy", dataclasses.replace(STUDIES["toy"], run=run))


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/x/y"), 3, "/x/y"),
        (KeyboardInterrupt(), 3, "interrupted by SIGINT"),
        (RuntimeError("boom"), 1, "--debug"),
        (MemoryError("big"), 3, "--memory-budget"),
    ],
    ids=["disk-full", "sigint", "bug", "memory"],
)
def test_failures_end_with_a_code_and_no_traceback(
    error, code, words, monkeypatch, tmp_path, capsys
):
    assert (EXIT_ENVIRONMENT, EXIT_FAILURE) == (3, 1)
    _failing_toy(monkeypatch, error)
    out = tmp_path / "out"
    got, err = _run([*TOY, "--out", str(out)], capsys)
    assert got == code and words in err and "Traceback" not in err, err
    assert not out.exists() and _hidden(tmp_path) == []
    got, err = _run(["--debug", *TOY, "--out", str(out)], capsys)
    assert got == code and "Traceback" in err


def test_disk_full_while_writing_leaves_nothing(monkeypatch, tmp_path, capsys):
    def full(path, result):
        path.write_text("{")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cli, "_write_json", full)
    out = tmp_path / "out"
    code, err = _run([*TOY, "--no-plots", "--out", str(out)], capsys)
    assert code == EXIT_ENVIRONMENT and "No space left" in err, err
    assert not out.exists() and _hidden(tmp_path) == []


# ----------------------------------------------------------------------- signals

_SLOW_FIGURES = textwrap.dedent(
    """
    import dataclasses, sys, time
    from pathlib import Path
    from jaxunc import cli
    from jaxunc.studies.registry import STUDIES

    def figures(result, folder):
        (folder / "fig4.png").write_text("half")
        print("writing", flush=True)
        # short sleeps, as real figure writing runs Python code all the time: the
        # kernel may deliver SIGTERM to one of JAX's threads, and CPython runs the
        # handler when the main thread next executes bytecode (one long sleep
        # would hide it for a minute under load)
        for _ in range(600):
            time.sleep(0.1)
        return []

    def run(config, **options):  # the real boundary and staging, no computation
        return {"config": config.to_json()}

    STUDIES["toy"] = dataclasses.replace(STUDIES["toy"], run=run, figures=figures)
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def test_sigterm_during_figures_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_FIGURES, *TOY, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout.readline().strip() == "writing"
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == EXIT_ENVIRONMENT, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert not out.exists() and _hidden(tmp_path) == []


def test_leftovers_of_a_killed_run_are_removed_and_reported(tmp_path):
    """SIGKILL leaves a staging folder (here: one named for a process that has
    exited); the next run into the same folder removes it and says so; another
    host's is reported and kept."""
    from jaxunc.outdir import _host

    out = tmp_path / "out"
    finished = subprocess.Popen(["true"])
    finished.wait()
    left = tmp_path / f".out.jaxunc-staging-{_host()}-{finished.pid}-dead"
    left.mkdir()
    (left / "summary.json").write_text("half")
    other = tmp_path / ".out.jaxunc-staging-elsewhere-1-abc"
    other.mkdir()
    reported = []
    with output_folder(out, report=reported.append) as staging:
        (staging / "summary.json").write_text("whole")
    assert (out / "summary.json").read_text() == "whole"
    assert _hidden(tmp_path) == [other.name]
    assert any("removed" in m and left.name in m for m in reported), reported
    assert any("elsewhere" in m and "in place" in m for m in reported), reported
    assert clean_leftovers(out) and _hidden(tmp_path) == [other.name]


def test_a_peer_that_never_arrives_ends_the_run(tmp_path):
    """Process 0 of a 2-process run whose peer never starts: exit 3 with one
    paragraph within --process-timeout (plus start-up), nothing written."""
    out = tmp_path / "out"
    with socket.socket() as probe:  # a free port on 127.0.0.1
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [*TOY, "--no-plots", "--out", str(out), "--coordinator"]
    argv += [f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", "0"]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "jaxunc", *argv[0:], "--process-timeout", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_ENVIRONMENT, done.stderr[-2000:]
    assert "--process-timeout 2 s" in done.stderr and "Traceback" not in done.stderr
    assert time.perf_counter() - start < 40
    assert not out.exists() and _hidden(tmp_path) == []


def test_checkpoint_temporaries_of_a_killed_write_are_removed(tmp_path):
    from jaxunc.engine.checkpoint import remove_temporaries

    state = tmp_path / "state-0-8.npz"
    leftover = tmp_path / ".state-0-8.npz-k1ll3d"
    leftover.write_bytes(b"half")
    other = tmp_path / ".state-8-16.npz-k1ll3d"  # another process's share
    other.write_bytes(b"half")
    assert remove_temporaries(state) == [leftover]
    assert _hidden(tmp_path) == [other.name]


def test_a_lost_peer_ends_the_survivor_and_a_rerun_resumes(tmp_path):
    """Process 1 of a 2-process run on 127.0.0.1, SIGKILLed once its checkpoint is
    written: process 0 ends with one paragraph and exit 3 within --process-timeout
    plus the grace (JAX alone would abort it with a C++ fatal log at its heartbeat
    timeout), leaves no staging folder; both started again with the same checkpoint
    give the summary of an uninterrupted single-process run, bit for bit."""
    from jaxunc.cli import PEER_LOST_GRACE
    from jaxunc.peers import jax_heartbeat_timeout

    # chunks of ~5M events: the victim is killed well before the end of its share
    toy = ["toy", "--pseudo-experiments", "2048", "--n-gen", "20000", "--quiet"]
    toy += ["--no-plots", "--chunk-size", "256"]
    checkpoint, out = tmp_path / "checkpoint", tmp_path / "out"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}

    def start(process: int, port: int, timeout: int) -> subprocess.Popen:
        argv = [*toy, "--out", str(out), "--checkpoint", str(checkpoint)]
        argv += ["--checkpoint-interval", "0", "--coordinator", f"127.0.0.1:{port}"]
        argv += ["--num-processes", "2", "--process-id", str(process)]
        argv += ["--process-timeout", str(timeout)]
        return subprocess.Popen(
            [sys.executable, "-m", "jaxunc", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    def free_port() -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    timeout = 3
    port = free_port()
    survivor, victim = start(0, port, timeout), start(1, port, timeout)
    try:
        deadline = time.monotonic() + 120
        while not list(checkpoint.glob("*/state-1024-*.npz")):  # process 1's share
            assert victim.poll() is None and survivor.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _, err = survivor.communicate(timeout=120)
        ended = time.monotonic() - killed
    finally:
        survivor.kill()
        victim.kill()
        victim.communicate()
    (state,) = checkpoint.glob("*/state-1024-*.npz")
    with np.load(state) as archive:
        assert 1024 < int(archive["o0.range"][1]) < 2048  # killed mid-share
    assert survivor.returncode == EXIT_ENVIRONMENT, err
    assert "--process-timeout 3 s" in err and "process 1" in err, err
    assert "Traceback" not in err and "client.h" not in err, err
    assert ended < timeout + PEER_LOST_GRACE + 10 < jax_heartbeat_timeout(timeout)
    assert not out.exists() and _hidden(tmp_path) == []
    port = free_port()
    jobs = [start(0, port, 120), start(1, port, 120)]
    for job in jobs:
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
    assert cli.main([*toy, "--out", str(tmp_path / "plain")]) == 0
    compared = ("truth", "surrogate", "training", "fitted", "n_gen")
    resumed, plain = (
        {
            k: v
            for k, v in json.loads((f / "summary.json").read_text()).items()
            if k in compared
        }
        for f in (out, tmp_path / "plain")
    )
    assert resumed == plain and len(resumed) == len(compared)
