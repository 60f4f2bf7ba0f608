"""Scale: identical bits for 1, 2 and 4 devices and for 1 and 2 processes
(jax.distributed on loopback); peak memory bounded by the chunk, not by N_gen."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from jaxunc.engine import EVENTS_PER_STEP, VECTOR_WIDTH, parse_memory, vector_width
from jaxunc.errors import InvalidArgument

# A user's own model (log-normal, given as two functions), fitted by the generic
# Newton path; histograms on the generated-sample estimates.  Runs as is in this
# process (the reference) and in the subprocesses.
WORKLOAD = textwrap.dedent(
    """
    import math
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jaxunc import (
        Estimate, IdealFit, model_from_functions, run_pseudo_experiments,
    )

    def sample(k, theta, n):
        z = jax.random.normal(k, (n,), theta["m"].dtype)
        return jnp.exp(theta["m"] + theta["s"] * z)

    def log_prob(x, theta):
        z = (jnp.log(x) - theta["m"]) / theta["s"]
        return -0.5 * z * z - jnp.log(theta["s"] * x) - 0.5 * math.log(2 * math.pi)

    model = model_from_functions(sample, log_prob)
    theta = {"m": np.float32(0.2), "s": np.float32(0.5)}
    N_TRAIN, N_GEN = 30, 40
    # The generic path: (m, s) fitted by autodiff Newton steps, whose compiled
    # code is the most sensitive to how XLA partitions the program.
    surrogate = IdealFit(model, theta, ("m", "s"))

    def pseudo_experiment(key):
        k_train, k_fit, k_gen = jax.random.split(key, 3)
        params = surrogate.fit(k_fit, model.sample(k_train, theta, N_TRAIN))
        generated = surrogate.sample(k_gen, params, N_GEN)
        return {
            "fit": Estimate(
                jnp.stack([params.theta["m"], params.theta["s"]]), jnp.bool_(True)
            ),
            "generated": Estimate(
                jnp.stack([jnp.mean(generated), jnp.mean(jnp.log(generated))]),
                surrogate.fit_converged(params),
            ),
        }

    EDGES = {"generated": np.linspace(0.5, 2.5, 41)}
    N_PSEUDO = 2 * 1024 + 517

    def run(**options):
        return run_pseudo_experiments(
            pseudo_experiment, jax.random.key(7), N_PSEUDO,
            events_per_pseudo_experiment=N_TRAIN + N_GEN,
            histogram_edges=EDGES, progress=False, description="scale test",
            config={"test": "scale"}, **options)

    def flat(result):
        return np.concatenate([
            np.asarray(result.outputs[name][field], np.float64).ravel()
            for name in sorted(result.outputs)
            for field in sorted(result.outputs[name])
        ])
    """
)

SUBPROCESS = (
    textwrap.dedent(
        """
    import sys
    import jax
    if sys.argv[2] != "-":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address="127.0.0.1:" + sys.argv[2],
            num_processes=2,
            process_id=int(sys.argv[3]),
        )
    """
    )
    + WORKLOAD
    + textwrap.dedent(
        """
    result = run(chunk_size=700, checkpoint=sys.argv[4], checkpoint_interval=0)
    assert result.stats.device_count == len(jax.devices()), result.stats
    np.save(sys.argv[1], flat(result))
    """
    )
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _spawn(args, devices: int) -> subprocess.Popen:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env.pop("JAX_NUM_CPU_DEVICES", None)  # the suite's default (conftest.py)
    return subprocess.Popen(
        [sys.executable, "-c", SUBPROCESS, *map(str, args)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_identical_bits_for_devices_and_processes(tmp_path):
    """1 device (this process) = 4 simulated devices = 2 processes on loopback (each
    computes its share; the shares are exchanged by JAX's collectives), for every
    moment and histogram bin; each process checkpoints its own share.  (1 = 2
    devices: tests/test_engine.py.)"""
    port = _free_port()
    jobs = {
        "4 devices": _spawn([tmp_path / "d4.npy", "-", 0, tmp_path / "c4"], 4),
        "process 0": _spawn([tmp_path / "p0.npy", port, 0, tmp_path / "cp"], 1),
        "process 1": _spawn([tmp_path / "p1.npy", port, 1, tmp_path / "cp"], 1),
    }
    namespace: dict = {}
    exec(WORKLOAD, namespace)  # the reference, in this process
    reference = namespace["flat"](namespace["run"](chunk_size=1024))
    for name, job in jobs.items():
        output, _ = job.communicate(timeout=300)
        assert job.returncode == 0, f"{name}:\n{output[-3000:]}"
    for name in ("d4", "p0", "p1"):
        got = np.load(tmp_path / f"{name}.npy")
        assert got.tobytes() == reference.tobytes(), name
    # Two processes, two shares: each wrote the state of its own contiguous range.
    (run_folder,) = (tmp_path / "cp").iterdir()
    states = sorted(p.name for p in run_folder.glob("state-*.npz"))
    assert len(states) == 2, states
    n_pseudo = namespace["N_PSEUDO"]
    bounds = sorted(int(v) for s in states for v in s[6:-4].split("-"))
    assert bounds[0] == 0 and bounds[-1] == n_pseudo and bounds[1] == bounds[2]


def test_memory_bounded_by_the_chunk_for_huge_n_gen(tmp_path):
    """N_gen = 10^7: a vectorised step of 256 such pseudo-experiments would hold
    ~20 GB; the width drops to 1 and the process stays under 2 GiB RSS."""
    assert vector_width(100 + 2 * 10_000_000) == 1
    script = textwrap.dedent(
        """
        import json, sys
        from jaxunc.cli import main
        code = main(sys.argv[2:])
        # VmHWM: this process's own peak. (ru_maxrss is not: Linux carries the
        # forking parent's resident size over exec, here the whole test session.)
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        peak = int(status.split()[0]) * 1024
        json.dump({"code": code, "peak": peak}, open(sys.argv[1], "w"))
        """
    )
    report = tmp_path / "rss.json"
    out = tmp_path / "toy"
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(report),
            "toy",
            "--pseudo-experiments",
            "3",
            "--n-gen",
            "10000000",
            "--no-plots",
            "--quiet",
            "--out",
            str(out),
        ],
        check=True,
        timeout=300,
    )
    measured = json.loads(report.read_text())
    assert measured["code"] == 0
    assert measured["peak"] < 2 * 2**30, measured
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runtime"]["pseudo_experiments"] == 3
    assert summary["truth"]["failures"] == [0]


def test_vector_width_is_a_function_of_the_events_only():
    assert vector_width(0) == VECTOR_WIDTH
    assert vector_width(2960) == VECTOR_WIDTH  # the paper's toy: unchanged
    for events in (70_000, 10**6, 10**7):
        width = vector_width(events)
        assert width * events <= EVENTS_PER_STEP < 2 * width * events
        assert width & (width - 1) == 0  # a power of two


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2GiB", 2 * 2**30), ("512 MiB", 512 * 2**20), ("1.5GB", 1_500_000_000)],
)
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["", "2 GiBs", "-1GiB", "lots", "10"])
def test_parse_memory_rejects(text):
    with pytest.raises(InvalidArgument, match="memory_budget"):
        parse_memory(text)


def test_memory_budget_too_small_for_one_step_is_refused(key):
    from jaxunc import Chain, Gaussian, IdealFit, SampleMean, run_chain

    theta = {"mu": np.float32(0), "sigma": np.float32(1)}
    chain = Chain(
        Gaussian(),
        theta,
        IdealFit(Gaussian(), theta, ("mu",)),
        SampleMean(),
        100,
        (1_000_000,),
    )
    with pytest.raises(InvalidArgument, match=r"memory_budget.*MiB"):
        run_chain(chain, key, 10, progress=False, memory_budget="2MiB")
