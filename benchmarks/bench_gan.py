"""Benchmark: an ensemble of GANs trained as one vmapped program versus a Python loop.

One run measures, on the same K training samples of N_train = 100 events from N(1, 1),
with the same keys, the same code and the same number of steps:

a. vmapped: ``jax.jit(jax.vmap(GAN().fit))`` on all K = 64 members at once;
b. loop: ``jax.jit(GAN().fit)`` called K times, one member after another (what a user
   without vmap would write: the same compiled training, 64 calls);

compile time (``lower().compile()``) is reported separately and excluded from the
training times; each timing is the median of ``--reps`` repetitions after one warm-up
call.  The ratio loop / vmapped is printed (target ≥ 10× on 2 CPU cores).  Then

c. the default-size ensemble: K = 256 members with the default steps, as
   ``jaxunc ensemble --surrogate gan`` trains it (compile and run seconds).

d. the ratio against the network width (``--widths``, K = 64, ``--scan-steps`` steps):
   with XLA's FLOP count of one training step (``cost_analysis``, the scan body is
   counted once) it shows how far the loop is from being overhead-bound, i.e. what
   ratio vmap can reach at all on this machine.

Sanity: the vmapped and looped parameters agree to float32 rounding amplified by
training (max |difference| of the generated means, reported).

    python benchmarks/bench_gan.py                      # full run
    python benchmarks/bench_gan.py --quick              # smoke run (100 steps, K = 8)
    python benchmarks/bench_gan.py --skip-large --widths 4,8,16,32   # with the scan
    python benchmarks/bench_gan.py --json benchmarks/results-gan-2026-11-23.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_toy import machine_info  # noqa: E402

N_TRAIN = 100


def _training_data(jax, members: int, n_train: int):
    key = jax.random.key(2026)
    data_key, fit_key = jax.random.split(key)
    data = 1.0 + jax.random.normal(data_key, (members, n_train))
    return jax.random.split(fit_key, members), data


def _timed(function, reps: int) -> tuple[list[float], Any]:
    """Warm-up call, then ``reps`` timed calls; returns the times and last result."""
    import jax

    jax.block_until_ready(function())
    times, result = [], None
    for _ in range(reps):
        start = time.perf_counter()
        result = jax.block_until_ready(function())
        times.append(time.perf_counter() - start)
    return times, result


def _compile(jitted, *args) -> tuple[Any, float]:
    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    return compiled, time.perf_counter() - start


def bench_vmap_vs_loop(gan, members: int, reps: int) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    keys, data = _training_data(jax, members, N_TRAIN)
    vmapped, vmapped_compile = _compile(jax.jit(jax.vmap(gan.fit)), keys, data)
    single, single_compile = _compile(jax.jit(gan.fit), keys[0], data[0])
    # XLA's FLOP count of one member's training step (the cost analysis counts the
    # body of the training scan once).
    analysis = single.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis

    def loop():
        return [single(keys[i], data[i]) for i in range(members)]

    vmapped_times, batched = _timed(lambda: vmapped(keys, data), reps)
    loop_times, looped = _timed(loop, reps)

    sample = jax.jit(jax.vmap(lambda p: gan.sample(jax.random.key(1), p, 10_000)))
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *looped)
    mean_difference = float(
        jnp.max(jnp.abs(sample(batched).mean(1) - sample(stacked).mean(1)))
    )
    vmapped_s = statistics.median(vmapped_times)
    loop_s = statistics.median(loop_times)
    return {
        "members": members,
        "n_train": N_TRAIN,
        "steps": gan.steps,
        "vmapped_compile_s": vmapped_compile,
        "loop_compile_s": single_compile,
        "vmapped_s": vmapped_s,
        "loop_s": loop_s,
        "vmapped_times_s": vmapped_times,
        "loop_times_s": loop_times,
        "speedup_loop_over_vmapped": loop_s / vmapped_s,
        "flops_per_member_step": float(analysis["flops"]),
        "max_abs_difference_of_generated_means": mean_difference,
    }


def bench_width_scan(widths, members: int, steps: int, reps: int) -> list[dict]:
    """Loop/vmapped ratio and achieved FLOP rates for GANs of several widths."""
    from jaxunc.surrogates import GAN

    rows = []
    for width in widths:
        gan = GAN(steps=steps, width=width, record_every=math.gcd(steps, 50))
        run = bench_vmap_vs_loop(gan, members, reps)
        flops = run["flops_per_member_step"] * members * steps
        row = {
            "width": width,
            "steps": steps,
            "members": members,
            "mflop_per_member_step": flops / members / steps / 1e6,
            "vmapped_us_per_member_step": 1e6 * run["vmapped_s"] / members / steps,
            "loop_us_per_member_step": 1e6 * run["loop_s"] / members / steps,
            "vmapped_gflops": flops / run["vmapped_s"] / 1e9,
            "loop_gflops": flops / run["loop_s"] / 1e9,
            "ratio": run["speedup_loop_over_vmapped"],
        }
        print(
            f"  width {width:3d}: {row['mflop_per_member_step']:.2f} MFLOP per "
            f"member-step; vmapped {row['vmapped_us_per_member_step']:.0f} us "
            f"({row['vmapped_gflops']:.1f} GFLOP/s), loop "
            f"{row['loop_us_per_member_step']:.0f} us ({row['loop_gflops']:.1f} "
            f"GFLOP/s); ratio {row['ratio']:.2f}x",
            flush=True,
        )
        rows.append(row)
    return rows


def bench_default_ensemble(gan, members: int) -> dict[str, Any]:
    import jax

    keys, data = _training_data(jax, members, N_TRAIN)
    compiled, compile_s = _compile(jax.jit(jax.vmap(gan.fit)), keys, data)
    start = time.perf_counter()
    jax.block_until_ready(compiled(keys, data))
    run_s = time.perf_counter() - start
    return {
        "members": members,
        "n_train": N_TRAIN,
        "steps": gan.steps,
        "compile_s": compile_s,
        "run_s": run_s,
        "seconds_per_step": run_s / gan.steps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--large", type=int, default=256, help="K of section c")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument(
        "--widths", default="", help="comma list of widths for the scan (section d)"
    )
    parser.add_argument("--scan-steps", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None, help="write all numbers")
    args = parser.parse_args(argv)

    from jaxunc.surrogates import GAN

    default = GAN()
    gan = GAN(steps=100) if args.quick else default
    members = 8 if args.quick else args.members
    info = machine_info()
    print("machine:", json.dumps(info))

    print(f"[a/b] K = {members} GANs, {gan.steps} steps, n_train = {N_TRAIN}")
    comparison = bench_vmap_vs_loop(gan, members, args.reps)
    print(
        f"  compile: vmapped {comparison['vmapped_compile_s']:.1f} s, "
        f"single {comparison['loop_compile_s']:.1f} s (excluded below)"
    )
    print(
        f"  vmapped {comparison['vmapped_s']:.2f} s   loop {comparison['loop_s']:.2f} s"
        f"   ratio loop/vmapped {comparison['speedup_loop_over_vmapped']:.1f}x"
    )
    print(
        "  max |difference| of generated means, vmapped vs loop: "
        f"{comparison['max_abs_difference_of_generated_means']:.2e}"
    )
    results: dict[str, Any] = {
        "machine": info,
        "gan": {k: getattr(gan, k) for k in gan.__dataclass_fields__},
        "vmap_vs_loop": comparison,
    }
    if not args.skip_large:
        large = 16 if args.quick else args.large
        print(f"[c] K = {large} GANs, default {gan.steps} steps")
        ensemble = bench_default_ensemble(gan, large)
        print(
            f"  compile {ensemble['compile_s']:.1f} s   run {ensemble['run_s']:.1f} s"
            f"   ({1e3 * ensemble['seconds_per_step']:.1f} ms per step)"
        )
        results["default_ensemble"] = ensemble
    if args.widths:
        widths = [int(w) for w in args.widths.split(",")]
        print(f"[d] ratio against width: K = {members}, {args.scan_steps} steps")
        results["width_scan"] = bench_width_scan(
            widths, members, args.scan_steps, args.reps
        )
    results["load_average_at_end"] = os.getloadavg()
    print(
        "load average at start / end:",
        info["load_average_at_start"],
        results["load_average_at_end"],
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print("wrote", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
