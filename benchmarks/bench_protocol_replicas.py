"""Benchmark: the validation protocol's bootstrap-replica GANs trained as one vmapped
program versus a Python loop of the same trainings (issue 13).

One vectorised step of ``jaxunc validate --surrogate gan``'s three-step protocol at
the command's defaults trains ``width × (replicas + 1)`` GANs: ``width`` pseudo-
experiments (``vector_width`` of ``protocol_events``, now that a training counts as
events), each fitting its nominal GAN and ``replicas`` GANs on bootstrap replicas of
its training sample (n_train = 100, camel back).  In the same run, on the same
replicas and keys:

a. vmapped: ``jax.jit(jax.vmap(GAN().fit))`` on all of them at once (what the
   protocol's ``jax.vmap`` over replicas inside the engine's vmap compiles to);
b. loop: ``jax.jit(GAN().fit)`` called once per replica.

Compile time (``lower().compile()``) is reported separately; each timing follows
one warm-up call (median of ``--reps``).  Prints the ratio loop / vmapped.

    cd REPO && PYTHONPATH=$PWD python benchmarks/bench_protocol_replicas.py \
        [--steps 1000] [--reps 1] [--json benchmarks/results-protocol-replicas.json]
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

from bench_gan import _compile, _timed  # noqa: E402
from bench_toy import machine_info  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import jax
    import jax.numpy as jnp

    from jaxunc.engine.plan import vector_width
    from jaxunc.models import CamelBack
    from jaxunc.studies.validate import ValidateConfig, protocol_events
    from jaxunc.surrogates import GAN

    gan = GAN(steps=args.steps)
    config = ValidateConfig(surrogate="gan")
    width = vector_width(protocol_events(config, gan))
    per_pseudo = config.replicas + 1
    members = width * per_pseudo
    key = jax.random.key(13)
    train_key, boot_key, fit_key = jax.random.split(key, 3)
    train = CamelBack().sample(train_key, {"mu": jnp.float32(0.0)}, width * 100)
    train = train.reshape(width, 100)
    index = jax.random.randint(boot_key, (width, per_pseudo, 100), 0, 100)
    index = index.at[:, 0].set(jnp.arange(100))  # row 0: the nominal GAN
    data = jnp.take_along_axis(train[:, None, :], index, axis=-1).reshape(members, 100)
    keys = jax.random.split(fit_key, members)

    vmapped, vmapped_compile = _compile(jax.jit(jax.vmap(gan.fit)), keys, data)
    single, single_compile = _compile(jax.jit(gan.fit), keys[0], data[0])
    start = time.perf_counter()
    vmapped_times, batched = _timed(lambda: vmapped(keys, data), args.reps)
    loop_times, looped = _timed(
        lambda: [single(keys[i], data[i]) for i in range(members)], args.reps
    )
    wall = time.perf_counter() - start
    draw = jax.jit(jax.vmap(lambda p: gan.sample(jax.random.key(1), p, 1000)))
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *looped)
    difference = float(jnp.max(jnp.abs(draw(batched).mean(1) - draw(stacked).mean(1))))
    vmapped_s, loop_s = statistics.median(vmapped_times), statistics.median(loop_times)
    result = {
        "machine": machine_info(),
        "steps": gan.steps,
        "pseudo_experiments_per_step": width,
        "trainings_per_pseudo_experiment": per_pseudo,
        "trainings": members,
        "vmapped_compile_s": vmapped_compile,
        "loop_compile_s": single_compile,
        "vmapped_s": vmapped_s,
        "loop_s": loop_s,
        "vmapped_times_s": vmapped_times,
        "loop_times_s": loop_times,
        "ratio_loop_over_vmapped": loop_s / vmapped_s,
        "max_abs_difference_of_generated_means": difference,
        "timed_wall_s": wall,
    }
    print(
        f"{members} GAN trainings ({width} pseudo-experiments x {per_pseudo}), "
        f"{gan.steps} steps: vmapped {vmapped_s:.2f} s (compile "
        f"{vmapped_compile:.1f} s), loop {loop_s:.2f} s (compile "
        f"{single_compile:.1f} s): ratio {loop_s / vmapped_s:.2f}x; max |difference| "
        f"of generated means {difference:.2g}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
