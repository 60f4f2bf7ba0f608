"""Checkpoint and resume, --range and merge: identical bits to one uninterrupted run,
and clear refusals of other configurations, overlaps, gaps and corrupt files."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc import Estimate, model_from_functions, run_pseudo_experiments
from jaxunc.checkpoint import PartialResults
from jaxunc.cli import main
from jaxunc.engine import REDUCTION_BLOCK
from jaxunc.errors import InvalidArgument

N_PSEUDO = 3 * REDUCTION_BLOCK + 301
EDGES = {"generated": np.linspace(-1.0, 1.0, 31)}


def _user_model():
    """A model given as two functions: a Laplace location model."""

    def sample(k, theta, n):
        return theta["loc"] + theta["scale"] * jax.random.laplace(
            k, (n,), theta["loc"].dtype
        )

    def log_prob(x, theta):
        return -jnp.abs(x - theta["loc"]) / theta["scale"] - jnp.log(2 * theta["scale"])

    return model_from_functions(sample, log_prob)


MODEL = _user_model()
THETA = {"loc": np.float32(0.1), "scale": np.float32(1.3)}


def pseudo_experiment(key):
    k_train, k_gen = jax.random.split(key)
    train = MODEL.sample(k_train, THETA, 50)
    fit = {"loc": jnp.median(train), "scale": jnp.mean(jnp.abs(train - 0.1))}
    generated = MODEL.sample(k_gen, fit, 200)
    return {
        "fit": Estimate(jnp.stack([fit["loc"], fit["scale"]]), jnp.bool_(True)),
        "generated": Estimate(jnp.mean(generated)[None], fit["scale"] > 0.5),
    }


def run(key, **options):
    options = {"chunk_size": 512, **options}
    return run_pseudo_experiments(
        pseudo_experiment,
        key,
        options.pop("n_pseudo", N_PSEUDO),
        events_per_pseudo_experiment=250,
        histogram_edges=EDGES,
        progress=False,
        description="laplace",
        config={"test": "checkpoint"},
        **options,
    )


def assert_same_bits(a, b):
    assert sorted(a.outputs) == sorted(b.outputs)
    for name, fields in a.outputs.items():
        assert sorted(fields) == sorted(b.outputs[name])
        for field, value in fields.items():
            assert value.tobytes() == b.outputs[name][field].tobytes(), (name, field)


@pytest.fixture(scope="module")
def reference():
    return run(jax.random.key(3), chunk_size=2048)


def test_merged_ranges_equal_one_run(reference, tmp_path):
    """Ranges that cut reduction blocks anywhere, computed with other chunk sizes,
    saved, loaded and merged in any order: the same bits as one run."""
    key = jax.random.key(3)
    cuts = [0, 700, 1024, 1500, 2 * REDUCTION_BLOCK + 5, N_PSEUDO]
    folders = []
    for number, (start, stop) in enumerate(itertools.pairwise(cuts)):
        partials = PartialResults({"part": number})
        result = run(key, pseudo_range=(start, stop), partials=partials)
        assert result.stats.pseudo_experiments == stop - start
        assert int(result.outputs["fit"]["count"][0]) == stop - start
        folder = tmp_path / str(number)
        folder.mkdir()
        partials.save(folder)
        folders.append(folder)
    parts = [PartialResults.load(f) for f in reversed(folders)]
    merged = run(key, merge=parts)
    assert_same_bits(reference, merged)
    assert merged.stats.computed == 0

    with pytest.raises(InvalidArgument, match=r"gap"):
        run(key, merge=parts[:2] + parts[3:])
    overlap = PartialResults()
    run(key, pseudo_range=(600, 800), partials=overlap)
    with pytest.raises(InvalidArgument, match=r"\[600, 800\).*overlap"):
        run(key, merge=[*parts, overlap])
    with pytest.raises(InvalidArgument, match=r"different configuration.*key"):
        run(jax.random.key(4), merge=parts)


def test_checkpoint_resume_after_interruption(reference, tmp_path, monkeypatch):
    """Interrupted after two chunks, resumed with another chunk size: the same bits;
    a rerun of a finished checkpoint computes nothing."""
    key = jax.random.key(3)
    folder = tmp_path / "checkpoint"
    real_device_get, calls = jax.device_get, []

    def failing_device_get(value):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_device_get(value)

    monkeypatch.setattr(jax, "device_get", failing_device_get)
    with pytest.raises(KeyboardInterrupt):
        run(key, checkpoint=folder, checkpoint_interval=0)
    monkeypatch.setattr(jax, "device_get", real_device_get)
    resumed = run(key, checkpoint=folder, chunk_size=1024)
    assert resumed.stats.computed == N_PSEUDO - 2 * 512
    assert_same_bits(reference, resumed)
    again = run(key, checkpoint=folder)
    assert again.stats.computed == 0 and again.stats.chunks == 0
    assert_same_bits(reference, again)


def test_checkpoint_refuses_another_configuration_and_corruption(tmp_path):
    key = jax.random.key(3)
    folder = tmp_path / "checkpoint"
    run(key, checkpoint=folder, n_pseudo=600)
    with pytest.raises(InvalidArgument, match=r"different configuration.*n_pseudo"):
        run(key, checkpoint=folder, n_pseudo=700)
    (run_folder,) = folder.iterdir()
    (state,) = run_folder.glob("state-*.npz")
    state.write_bytes(state.read_bytes()[:100])
    with pytest.raises(InvalidArgument, match="corrupt"):
        run(key, checkpoint=folder, n_pseudo=600)
    (run_folder / "manifest.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match="corrupt"):
        run(key, checkpoint=folder, n_pseudo=600)


# ------------------------------------------------------------------ the command line

TOY = ["toy", "--pseudo-experiments", "24000", "--n-gen", "1000,3000", "--no-plots"]
COMPARED = ("truth", "surrogate", "training", "fitted", "n_gen")


def _summary(folder):
    payload = json.loads((folder / "summary.json").read_text())
    return {k: payload[k] for k in COMPARED}


def test_command_killed_with_sigkill_resumes_to_the_same_result(tmp_path, capsys):
    """`jaxunc toy --checkpoint DIR` killed with SIGKILL mid-run, then run again:
    the same summary as an uninterrupted run; other arguments are refused."""
    checkpoint = tmp_path / "checkpoint"
    command = [
        *TOY,
        "--quiet",
        "--checkpoint",
        str(checkpoint),
        "--checkpoint-interval",
        "0",
    ]
    job = subprocess.Popen(
        [sys.executable, "-m", "jaxunc", *command, "--out", str(tmp_path / "killed")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    while not list(checkpoint.glob("*/state-*.npz")):
        assert job.poll() is None, job.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(job.pid, signal.SIGKILL)
    job.wait(timeout=60)
    job.stderr.close()
    assert job.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed").exists()
    (state,) = checkpoint.glob("*/state-*.npz")
    with np.load(state) as archive:
        position = int(archive["o0.range"][1])
    assert 0 < position < 24000  # it was killed mid-run

    assert main([*command, "--out", str(tmp_path / "resumed")]) == 0
    assert main([*TOY, "--quiet", "--out", str(tmp_path / "plain")]) == 0
    assert _summary(tmp_path / "resumed") == _summary(tmp_path / "plain")

    capsys.readouterr()
    other = [*command[:4], "1000,3001", *command[5:]]
    assert main([*other, "--out", str(tmp_path / "other")]) == 2
    error = capsys.readouterr().err
    assert "argument --checkpoint" in error and "different configuration" in error
    assert "n_gen" in error
    assert not (tmp_path / "other").exists()


def test_command_ranges_merge_to_the_same_result(tmp_path, capsys):
    for name, span in (("a", "0:9000"), ("b", "9000:17001"), ("c", "17001:24000")):
        out = tmp_path / name
        assert main([*TOY, "--quiet", "--range", span, "--out", str(out)]) == 0
        assert (out / "partial.json").is_file()
        assert not (out / "summary.json").exists()
    parts = [str(tmp_path / n) for n in ("c", "a", "b")]
    assert main(["merge", *parts, "--quiet", "--out", str(tmp_path / "merged")]) == 0
    assert main([*TOY, "--quiet", "--out", str(tmp_path / "plain")]) == 0
    assert _summary(tmp_path / "merged") == _summary(tmp_path / "plain")

    capsys.readouterr()
    gap = ["merge", parts[0], parts[1], "--out", str(tmp_path / "gap")]
    assert main(gap) == 2
    error = capsys.readouterr().err
    assert "argument PART" in error and "[9000, 17001)" in error and "gap" in error
    assert not (tmp_path / "gap").exists()
    assert main(["merge", str(tmp_path / "plain"), "--out", str(tmp_path / "x")]) == 2
    assert "no partial result" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--range", "5:5", "START < STOP"),
        ("--range", "a:b", "START:STOP"),
        ("--memory-budget", "lots", "2GiB"),
        ("--checkpoint-interval", "-1", ">= 0"),
    ],
)
def test_engine_flags_reject_bad_values(flag, value, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*TOY, flag, value, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_lead_can_wire_engine_options():
    """_engine_options turns the shared flags into run_pseudo_experiments keywords."""
    from jaxunc.cli import _engine_options, build_parser

    args = build_parser().parse_args(
        [
            "fisher",
            "--checkpoint",
            "ck",
            "--range",
            "10:20",
            "--memory-budget",
            "1GiB",
            "--chunk-size",
            "256",
        ]
    )
    options = _engine_options(args)
    assert options == {
        "checkpoint": type(options["checkpoint"])("ck"),
        "pseudo_range": (10, 20),
        "memory_budget": 2**30,
        "chunk_size": 256,
    }
    assert math.isfinite(options["memory_budget"])


# ------------------------------------------- states that cannot have come from a run


def _rewrite(path, change, meta_change=None):
    """Rewrite the .npz state ``path`` (a valid archive, checksums and all) with
    ``change(arrays)`` applied to its arrays and ``meta_change(meta)`` to its meta."""
    with np.load(path) as archive:
        arrays = {name: archive[name].copy() for name in archive.files}
    change(arrays)
    if meta_change is not None:
        meta = json.loads(str(arrays["__meta__"]))
        meta_change(meta)
        arrays["__meta__"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)


def _each_output(field, function):
    def change(arrays):
        for name in [n for n in arrays if n.endswith("." + field)]:
            arrays[name] = function(arrays[name])

    return change


def _doubled(arrays):
    for field in ("failures", "failures_by_result", "folded_count", "histogram"):
        _each_output(field, lambda a: a * 2)(arrays)


def _rewound(arrays):
    _each_output("range", lambda a: a - np.array([0, REDUCTION_BLOCK]))(arrays)


def _set(name, index, value):
    def change(arrays):
        arrays[name][index] = value

    return change


# (name, change of the arrays, words of the refusal).  Outputs: o0 "fit" (2 values),
# o1 "generated" (1 value, histogram); a run from 0 of N_PSEUDO = 3 blocks + 301.
CORRUPTIONS = [
    (
        "rewound one block",
        _rewound,
        "count 3373 pseudo-experiments per element where "
        "its range [0, 2349) holds 2349",
    ),
    (
        "counts doubled",
        _doubled,
        "count 6746 pseudo-experiments per element where "
        "its range [0, 3373) holds 3373",
    ),
    ("negative variance", _set("o0.folded_m2", 1, -1.0), "negative sum of squares"),
    (
        "moments miscounted",
        _each_output("folded_count", lambda a: a + 1),
        "moments count",
    ),
    ("histogram miscounted", _set("o1.histogram", (0, 3), 10**6), "histogram"),
    ("failures miscounted", _set("o1.failures", 0, 7), "failures do not equal"),
    ("a row short", _each_output("range", lambda a: a - [0, 1]), "pending rows"),
    ("counts not counts", _set("o0.failures_by_result", (2, 0), -1), "not counts"),
]


@pytest.fixture(scope="module")
def finished_checkpoint(tmp_path_factory):
    """A checkpoint of a whole run from 0 (blocks folded, 301 pending rows)."""
    folder = tmp_path_factory.mktemp("finished") / "checkpoint"
    run(jax.random.key(3), checkpoint=folder)
    return folder


@pytest.mark.parametrize(
    ("change", "words"),
    [c[1:] for c in CORRUPTIONS],
    ids=[c[0] for c in CORRUPTIONS],
)
def test_inconsistent_checkpoint_is_refused(
    change, words, finished_checkpoint, reference, tmp_path
):
    """A state file with a valid archive but contents that contradict each other is
    refused, naming the file and what is wrong; the untouched copy resumes to the
    reference's bits (nothing computed)."""
    import shutil

    folder = tmp_path / "checkpoint"
    shutil.copytree(finished_checkpoint, folder)
    ((state,),) = [list(p.glob("state-*.npz")) for p in folder.iterdir()]
    _rewrite(state, lambda arrays: None)  # rewritten alone: still accepted
    again = run(jax.random.key(3), checkpoint=folder)
    assert again.stats.computed == 0
    assert_same_bits(reference, again)
    _rewrite(state, change)
    with pytest.raises(InvalidArgument, match="checkpoint") as error:
        run(jax.random.key(3), checkpoint=folder)
    assert str(state) in str(error.value) and words in str(error.value)
    assert "cannot have come from a run" in str(error.value)


def test_checkpoint_position_that_is_no_chunk_end_is_refused(
    finished_checkpoint, tmp_path
):
    """A consistent state of [0, 1300) put in place of a run of N_PSEUDO: 1300 is
    neither a multiple of the vectorised step nor the share's end."""
    key = jax.random.key(3)
    short = tmp_path / "short"
    run(key, checkpoint=short, n_pseudo=1300)
    ((source,),) = [list(p.glob("state-*.npz")) for p in short.iterdir()]
    folder = tmp_path / "checkpoint"
    import shutil

    shutil.copytree(finished_checkpoint, folder)
    ((target,),) = [list(p.glob("state-*.npz")) for p in folder.iterdir()]
    with np.load(target) as archive:
        meta = str(archive["__meta__"])
    shutil.copyfile(source, target)
    _rewrite(target, lambda arrays: arrays.update(__meta__=np.array(meta)))
    with pytest.raises(InvalidArgument, match=r"position 1300 is no chunk's end"):
        run(key, checkpoint=folder)


@pytest.fixture(scope="module")
def two_parts(tmp_path_factory):
    """Saved partial results of [0, 700) and [700, N_PSEUDO)."""
    key, folders = jax.random.key(3), []
    for start, stop in ((0, 700), (700, N_PSEUDO)):
        partials = PartialResults({"part": start})
        run(key, pseudo_range=(start, stop), partials=partials)
        folder = tmp_path_factory.mktemp(f"part{start}")
        partials.save(folder)
        folders.append(folder)
    return folders


def _stop_edited(meta):
    meta["stop"] += 1


PART_CORRUPTIONS = [
    ("index stop edited", "json", "stop is", "inconsistent with"),
    ("counts doubled", _doubled, None, "cannot have come from a run"),
    ("negative variance", _set("o0.blocks_m2", (0, 1), -1.0), None, "negative"),
    ("range past the end", None, _stop_edited, "not a range of the run's"),
]


@pytest.mark.parametrize(
    ("change", "meta_change", "words"),
    [c[1:] for c in PART_CORRUPTIONS],
    ids=[c[0] for c in PART_CORRUPTIONS],
)
def test_inconsistent_merge_part_is_refused(
    change, meta_change, words, two_parts, reference, tmp_path
):
    import shutil

    key = jax.random.key(3)
    parts = []
    for number, source in enumerate(two_parts):
        shutil.copytree(source, tmp_path / str(number))
        parts.append(tmp_path / str(number))
    assert_same_bits(reference, run(key, merge=[PartialResults.load(p) for p in parts]))
    index = parts[1] / "partial.json"
    (state,) = parts[1].glob("partial-*.npz")
    if change == "json":
        payload = json.loads(index.read_text())
        (entry,) = payload["runs"].values()
        entry["stop"] -= 1
        index.write_text(json.dumps(payload))
    else:
        _rewrite(state, change or (lambda arrays: None), meta_change)
    with pytest.raises(InvalidArgument, match="parts") as error:
        run(key, merge=[PartialResults.load(p) for p in parts])
    assert words in str(error.value)


def test_command_refuses_an_inconsistent_checkpoint(tmp_path, capsys):
    """The command line: exit 2 (the checkpoint is input given on the command line:
    a rerun cannot fix it), the flag and the file named, no traceback, no output."""
    from jaxunc.errors import EXIT_BAD_INPUT

    checkpoint = tmp_path / "checkpoint"
    command = ["toy", "--pseudo-experiments", "4", "--n-gen", "3", "--quiet"]
    command += ["--no-plots", "--checkpoint", str(checkpoint)]
    assert main([*command, "--out", str(tmp_path / "first")]) == 0
    (state,) = checkpoint.glob("*/state-*.npz")
    _rewrite(state, _doubled)
    capsys.readouterr()
    assert main([*command, "--out", str(tmp_path / "second")]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert "argument --checkpoint" in error and str(state) in error
    assert "cannot have come from a run" in error and "Traceback" not in error
    assert not (tmp_path / "second").exists()
