"""Cost of one flow training per member and step (issue 13's flow target): an
ensemble of M flows trained as one ``jax.jit(jax.vmap(flow.fit))`` on M camel-back
samples of n_train = 100 events, float32, CPU; the compile apart, the median of
``--reps`` calls; reported as µs per member-step (wall time / (M × steps)) and as
seconds per training of 100 events (wall time / M).

    cd REPO && PYTHONPATH=$PWD python benchmarks/bench_flow_training.py \
        [--members 64] [--reps 3] [--flow "steps=1000"] ... [--json PATH]

Every ``--flow`` option string is one row (``""``: the defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_amplification import _parse_options  # noqa: E402
from bench_toy import machine_info  # noqa: E402


def time_training(options: dict, members: int, reps: int, seed: int) -> dict:
    """Compile and run times of ``members`` vmapped trainings of ``Flow(**options)``."""
    import jax
    import numpy as np

    from jaxunc.studies.registry import model_spec
    from jaxunc.surrogates.flow import Flow

    flow = Flow(**options)
    spec = model_spec("camelback")
    data_key, fit_key = jax.random.split(jax.random.key(seed))
    data = jax.vmap(lambda k: spec.model.sample(k, spec.theta, 100))(
        jax.random.split(data_key, members)
    )
    keys = jax.random.split(fit_key, members)
    start = time.perf_counter()
    compiled = jax.jit(jax.vmap(flow.fit)).lower(keys, data).compile()
    compile_s = time.perf_counter() - start
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        jax.block_until_ready(compiled(keys, data))
        runs.append(time.perf_counter() - start)
    run_s = float(np.median(runs))
    return {
        "options": options,
        "repr": repr(flow),
        "members": members,
        "steps": flow.steps,
        "compile_s": compile_s,
        "run_s": run_s,
        "runs_s": runs,
        "us_per_member_step": 1e6 * run_s / (members * flow.steps),
        "s_per_training": run_s / members,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--flow", action="append", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    for text in args.flow if args.flow is not None else [""]:
        row = time_training(_parse_options(text), args.members, args.reps, args.seed)
        rows.append(row)
        print(
            f"flow({text}) compile {row['compile_s']:.1f} s, run {row['run_s']:.2f} s: "
            f"{row['us_per_member_step']:.1f} µs per member-step, "
            f"{1e3 * row['s_per_training']:.0f} ms per training",
            flush=True,
        )
    result = {"machine": machine_info(), "rows": rows}
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
