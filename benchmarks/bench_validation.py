"""Benchmark: jaxunc's validation kernels, vmapped over pseudo-experiments, against a
NumPy/scipy loop doing the same.

One run measures

1. the per-pseudo-experiment validation work of ``jaxunc validate`` on P samples of N
   float32 events (given to both sides, pre-generated): counts in 20 true-quantile
   bins and on a 100-quantile grid, the χ² statistic and its p-value, and the quantile
   MSE for N_q = 5, 10, 20, 50, 100 (sums of the fine grid).  jaxunc: one jitted
   ``vmap`` (bin = floor(100 Φ(x)) + scatter-add, as ``jaxunc validate`` bins a
   model with a cdf; ``chi2_test``, ``quantile_mse``);
   reference: a Python loop over pseudo-experiments with ``np.searchsorted`` +
   ``np.bincount``, ``scipy.stats.chisquare`` and the same MSE.  Both must agree:
   events within float32 rounding of an edge (~10⁻⁷ in Φ) may fall on either side,
   about one event in 5·10⁴, so at least 80% of the pseudo-experiments must give the
   same p-value (to 10⁻⁵ absolute) and the same MSEs (to 10⁻⁵ relative), and no
   p-value may differ by more than 0.02 (exit status 1 if not).  One
   warm-up call (its extra time is jaxunc's compile time, reported separately), then
   the median of ``--reps`` alternating repetitions;
2. whole process: ``jaxunc validate --model gaussian --surrogate ideal --quiet`` wall
   time (default options, figures included), median of ``--process-reps`` (skip with
   ``--process-reps 0``).  The target: under a minute on 2 CPU cores.

Every timed block records how many cores other processes kept busy (``Probe``).

    python benchmarks/bench_validation.py               # ~2 min on 2 cores
    python benchmarks/bench_validation.py --quick
    python benchmarks/bench_validation.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_toy import Probe, _jaxunc_command, _median, machine_info  # noqa: E402

BINS = 20
FINE = 100
QUANTILES = (5, 10, 20, 50, 100)


def _edges(levels: int) -> np.ndarray:
    from scipy.stats import norm

    interior = norm.ppf(np.arange(1, levels) / levels).astype(np.float32)
    return np.concatenate([[-np.inf], interior.astype(np.float64), [np.inf]])


def numpy_reference(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """p-values (P,) and quantile MSEs (P, len(QUANTILES)) by a loop."""
    import scipy.stats

    fine_interior = _edges(FINE)[1:-1].astype(np.float32)
    p = np.full(FINE, 1.0 / FINE)
    p_values = np.empty(len(samples))
    mse = np.empty((len(samples), len(QUANTILES)))
    for i, x in enumerate(samples):
        fine = np.bincount(
            np.searchsorted(fine_interior, x, side="right"), minlength=FINE
        )
        counts = fine.reshape(BINS, FINE // BINS).sum(axis=1)
        p_values[i] = scipy.stats.chisquare(counts, len(x) * np.full(BINS, 1 / BINS))[1]
        for j, q in enumerate(QUANTILES):
            fractions = fine.reshape(q, FINE // q).sum(axis=1) / len(x)
            mse[i, j] = np.mean((fractions - p[:q] * FINE / q) ** 2)
    return p_values, mse


def jaxunc_kernel():
    import jax
    import jax.numpy as jnp

    from jaxunc.validation import chi2_test, quantile_mse

    sums = {
        q: jnp.asarray(np.repeat(np.eye(q), FINE // q, axis=0), jnp.float32)
        for q in (BINS, *QUANTILES)
    }

    def one(x):
        # As jaxunc validate does for a model with a cdf: bin = floor(M F(x)).
        u = jax.scipy.special.ndtr(x)
        index = jnp.clip(jnp.floor(u * FINE).astype(jnp.int32), 0, FINE - 1)
        fine = jnp.zeros(FINE, jnp.float32).at[index].add(1.0)
        test = chi2_test(fine @ sums[BINS], jnp.full(BINS, 1 / BINS, jnp.float32))
        mse = jnp.stack(
            [
                quantile_mse(fine @ sums[q], jnp.full(q, 1 / q, jnp.float32))
                for q in QUANTILES
            ]
        )
        return test.p_value, mse

    return jax.jit(jax.vmap(one))


def bench_kernels(pseudo: int, events: int, reps: int) -> dict[str, Any]:
    import jax

    rng = np.random.default_rng(0)
    samples = rng.standard_normal((pseudo, events), dtype=np.float32)
    device_samples = jax.device_put(samples)
    kernel = jaxunc_kernel()

    with Probe() as first:
        jax.block_until_ready(kernel(device_samples))
    jaxunc_times, numpy_times, probes = [], [], []
    for _ in range(reps):
        with Probe() as probe:
            p_jax, mse_jax = jax.block_until_ready(kernel(device_samples))
        jaxunc_times.append(probe.wall)
        probes.append(probe.as_dict())
        with Probe() as probe:
            p_np, mse_np = numpy_reference(samples)
        numpy_times.append(probe.wall)
        probes.append(probe.as_dict())
    p_jax, mse_jax = np.asarray(p_jax, np.float64), np.asarray(mse_jax, np.float64)
    same_p = np.abs(p_jax - p_np) < 1e-5
    same_mse = np.all(np.abs(mse_jax - mse_np) <= 1e-5 * mse_np, axis=1)
    agree_p = bool(same_p.mean() >= 0.8 and np.abs(p_jax - p_np).max() < 0.02)
    agree_mse = bool(same_mse.mean() >= 0.8)
    jaxunc_median, numpy_median = _median(jaxunc_times), _median(numpy_times)
    return {
        "pseudo_experiments": pseudo,
        "events_per_pseudo_experiment": events,
        "jaxunc_seconds": jaxunc_median,
        "jaxunc_compile_seconds": max(first.wall - jaxunc_median, 0.0),
        "numpy_seconds": numpy_median,
        "speedup": numpy_median / jaxunc_median,
        "jaxunc_events_per_second": pseudo * events / jaxunc_median,
        "numpy_events_per_second": pseudo * events / numpy_median,
        "agree_p_values": agree_p,
        "agree_mse": agree_mse,
        "max_p_value_difference": float(np.max(np.abs(p_jax - p_np))),
        "fraction_identical_p_values": float(same_p.mean()),
        "fraction_identical_mse": float(same_mse.mean()),
        "probes": probes,
        "foreign_cores_max": max(p["foreign_cores"] for p in probes),
    }


def bench_process(reps: int) -> dict[str, Any]:
    command = _jaxunc_command()
    if subprocess.run([*command, "validate", "--help"], capture_output=True).returncode:
        return {"skipped": "jaxunc validate --help failed"}
    walls, probes = [], []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as out, Probe() as probe:
            subprocess.run(
                [
                    *command,
                    "validate",
                    "--model",
                    "gaussian",
                    "--surrogate",
                    "ideal",
                    "--quiet",
                    "--out",
                    out,
                ],
                check=True,
            )
        walls.append(probe.wall)
        probes.append(probe.as_dict())
    return {
        "command": "jaxunc validate --model gaussian --surrogate ideal --quiet",
        "seconds": _median(walls),
        "all_seconds": walls,
        "probes": probes,
        "foreign_cores_max": max(p["foreign_cores"] for p in probes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--process-reps", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    pseudo, events = (256, 2000) if args.quick else (1000, 10000)
    reps = 2 if args.quick else args.reps
    started = time.strftime("%Y-%m-%d")
    result: dict[str, Any] = {"machine": machine_info(), "date": started}
    kernels = bench_kernels(pseudo, events, reps)
    result["kernels"] = kernels
    print(
        f"validation kernels, {pseudo} pseudo-experiments × {events} events: "
        f"jaxunc {kernels['jaxunc_seconds']:.3f} s "
        f"(compile {kernels['jaxunc_compile_seconds']:.2f} s), "
        f"NumPy/scipy loop {kernels['numpy_seconds']:.3f} s, "
        f"ratio {kernels['speedup']:.1f}x; agree: p {kernels['agree_p_values']}, "
        f"MSE {kernels['agree_mse']}; other processes up to "
        f"{kernels['foreign_cores_max']:.1f} cores"
    )
    if args.process_reps > 0 and not args.quick:
        process = bench_process(args.process_reps)
        result["process"] = process
        if "seconds" in process:
            print(
                f"{process['command']}: {process['seconds']:.1f} s wall "
                f"(other processes up to {process['foreign_cores_max']:.1f} cores)"
            )
    path = args.json or HERE / f"results-validation-{started}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")
    return 0 if kernels["agree_p_values"] and kernels["agree_mse"] else 1


if __name__ == "__main__":
    sys.exit(main())
