"""Benchmark: the pathwise route's cost against training alone (jaxunc.bounds).

One run simulates the same M chains θ → D_train → fit → D_gen (same keys, same
surrogate) twice with ``jaxunc.bounds.simulate_summaries``:

a. training alone: ``pathwise=False`` (the summary of D_gen and the training score —
   what the score route needs);
b. pathwise: ``pathwise=True`` — the same plus ``jax.jacfwd`` of the summary through
   the model's sampler, the surrogate's whole training loop and its sampler (one
   tangent per component of θ).

The ratio b / a is printed (target ≤ 3 for one parameter).  Compile time is measured
by JAX's own compile-duration events and reported separately; every timing is the
median of ``--reps`` calls.  Also printed: the standard errors of J from both routes
at the same M (the pathwise route's reason to exist).

    python benchmarks/bench_bounds.py                   # GAN, M = 256
    python benchmarks/bench_bounds.py --quick           # KDE, M = 64
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_toy import machine_info  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--simulations", type=int, default=256)
    parser.add_argument("--n-gen", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import numpy as np

    import jaxunc
    from jaxunc import bounds

    compile_seconds = []

    def listener(event: str, duration: float, **_: object) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compile_seconds.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)

    model = jaxunc.Gaussian()
    theta = {"mu": jnp.float32(0.0), "sigma": jnp.float32(1.0)}
    if args.quick:
        surrogate, name, simulations = jaxunc.KDE(), "kde", 64
    else:
        surrogate, name, simulations = jaxunc.GAN(), "gan", args.simulations

    def simulate(pathwise: bool):
        return bounds.simulate_summaries(
            model,
            surrogate,
            theta,
            100,
            args.n_gen,
            bounds.mean_summary(),
            key=jax.random.key(0),
            simulations=simulations,
            params=("mu",),
            pathwise=pathwise,
        )

    rows = {}
    for pathwise in (False, True):
        runs, compiles = [], []
        for _ in range(args.reps):
            compile_seconds.clear()
            start = time.perf_counter()
            result = simulate(pathwise)
            total = time.perf_counter() - start
            compiles.append(sum(compile_seconds))
            runs.append(total - sum(compile_seconds))
        label = "pathwise" if pathwise else "training_alone"
        rows[label] = {
            "seconds": statistics.median(runs),
            "compile_seconds": statistics.median(compiles),
        }
        print(
            f"{label:>15}: {rows[label]['seconds']:.2f} s run, "
            f"{rows[label]['compile_seconds']:.2f} s compile "
            f"({name}, M = {simulations}, n_gen = {args.n_gen})"
        )
    ratio = rows["pathwise"]["seconds"] / rows["training_alone"]["seconds"]
    print(f"pathwise / training alone: {ratio:.2f}x (target <= 3)")
    path = bounds.summary_bound(result.values, result.scores, result.jacobians)
    score = bounds.summary_bound(result.values, result.scores)
    print(
        f"J = {path.jacobian[0, 0]:.4f} ± {path.jacobian_stderr[0, 0]:.2g} (pathwise)"
        f", {score.jacobian[0, 0]:.4f} ± {score.jacobian_stderr[0, 0]:.2g} (score)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine_info(),
                    "surrogate": name,
                    "simulations": simulations,
                    "n_gen": args.n_gen,
                    "rows": rows,
                    "ratio": ratio,
                    "jacobian_stderr": {
                        "pathwise": float(path.jacobian_stderr[0, 0]),
                        "score": float(score.jacobian_stderr[0, 0]),
                    },
                    "seconds_are": "median of --reps calls, compile excluded",
                    "numpy": np.__version__,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
