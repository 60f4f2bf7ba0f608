"""Benchmark: how the engine scales — events/s against chunk size, simulated host
devices and N_gen, and peak memory against N_gen.

Workload: the Appendix-A toy chain (n_train = 100, ideal mean-and-σ fit, sample
mean; truth and surrogate at each n_gen), as in ``bench_toy.py``.  Every timing is a
median of ``--reps`` runs after a warm-up run (compile time reported separately).
The NumPy reference (``numpy_reference.run_reference``) runs in the same process at
the default configuration, for the ratio.

1. chunk size: P = 60,000 at n_gen = (30, 100, 300, 1000), chunk sizes 256 … 16384;
2. devices: the same at the default chunk size, in subprocesses with
   ``XLA_FLAGS=--xla_force_host_platform_device_count=D`` for D = 1, 2, 4;
3. N_gen: one n_gen from 10^2 to 10^7 with P chosen for ~2·10^8 events, plus the
   peak RSS of ``jaxunc toy --pseudo-experiments 100 --n-gen 10000000 --no-plots``
   (a subprocess) — the memory bound of the engine.

    python benchmarks/bench_scaling.py            # a few minutes on 2 cores
    python benchmarks/bench_scaling.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_toy import Probe, machine_info  # noqa: E402
from numpy_reference import run_reference  # noqa: E402

N_GEN = (30, 100, 300, 1000)


def _toy_throughput(
    pseudo_experiments: int, n_gen: tuple[int, ...], chunk_size: int | None, reps: int
) -> dict[str, Any]:
    import jax

    from jaxunc.engine import run_chain
    from jaxunc.studies.toy import ToyConfig

    chain = ToyConfig(n_gen=n_gen).chain()
    key = jax.random.key(0)
    warm = run_chain(
        chain, key, pseudo_experiments, chunk_size=chunk_size, progress=False
    )
    walls, foreign = [], []
    for rep in range(reps):
        with Probe() as probe:
            run = run_chain(
                chain,
                jax.random.fold_in(key, rep),
                pseudo_experiments,
                chunk_size=chunk_size,
                progress=False,
            )
        walls.append(run.stats.seconds)
        foreign.append(probe.foreign_cores)
    seconds = statistics.median(walls)
    return {
        "pseudo_experiments": pseudo_experiments,
        "n_gen": list(n_gen),
        "events": run.stats.events,
        "chunk_size": run.stats.chunk_size,
        "vector_width": run.stats.vector_width,
        "device_count": run.stats.device_count,
        "compile_seconds": warm.stats.compile_seconds,
        "seconds": seconds,
        "events_per_second": run.stats.events / seconds,
        "foreign_cores_max": max(foreign),
    }


_DEVICE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from bench_scaling import _toy_throughput, N_GEN
    result = _toy_throughput(int(sys.argv[2]), N_GEN, None, int(sys.argv[3]))
    print("RESULT", json.dumps(result))
    """
)


def _devices(count: int, pseudo_experiments: int, reps: int) -> dict[str, Any]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={count}"
    output = subprocess.run(
        [
            sys.executable,
            "-c",
            _DEVICE_SCRIPT,
            str(HERE),
            str(pseudo_experiments),
            str(reps),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


_RSS_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from jaxunc.cli import main
    code = main(sys.argv[2:])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("RESULT", json.dumps({"code": code, "peak_kib": peak}))
    """
)


def _huge_n_gen_rss(pseudo_experiments: int, out: Path) -> dict[str, Any]:
    """Peak RSS (ru_maxrss of the process itself) of
    ``jaxunc toy --n-gen 10000000 --no-plots``."""
    arguments = [
        "toy",
        "--pseudo-experiments",
        str(pseudo_experiments),
        "--n-gen",
        "10000000",
        "--no-plots",
        "--quiet",
        "--out",
        str(out),
    ]
    with Probe() as probe:
        output = subprocess.run(
            [sys.executable, "-c", _RSS_SCRIPT, "-", *arguments],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(x for x in output.splitlines() if x.startswith("RESULT "))
    measured = json.loads(line[len("RESULT ") :])
    summary = json.loads((out / "summary.json").read_text())
    return {
        "command": "jaxunc " + " ".join(arguments[:-2]),
        "wall_seconds": probe.wall,
        "peak_rss_mib": measured["peak_kib"] / 1024,
        "events_per_second": summary["runtime"]["events_per_second"],
        "compile_seconds": summary["runtime"]["compile_seconds"],
        "foreign_cores": probe.foreign_cores,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--json", type=Path, default=HERE / "results-scaling-2026-11-23.json"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    reps = 1 if quick else args.reps
    pseudo = 6000 if quick else 60_000
    report: dict[str, Any] = {"machine": machine_info(), "quick": quick}

    with Probe() as probe:
        reference = run_reference(pseudo_experiments=pseudo, n_gen=N_GEN)
    report["numpy_reference"] = {
        "pseudo_experiments": pseudo,
        "seconds": probe.wall,
        "events_per_second": reference["runtime"]["events_per_second"],
        "foreign_cores": probe.foreign_cores,
    }
    report["chunk_size"] = [
        _toy_throughput(pseudo, N_GEN, chunk, reps)
        for chunk in ((256, 1536, 4096) if quick else (256, 512, 1536, 4096, 16384))
    ]
    baseline = _toy_throughput(pseudo, N_GEN, None, reps)
    report["default_chunk"] = baseline
    report["ratio_to_numpy"] = (
        baseline["events_per_second"] / report["numpy_reference"]["events_per_second"]
    )
    report["devices"] = [_devices(d, pseudo, reps) for d in (1, 2, 4)]
    sizes = (
        (100, 10_000, 1_000_000) if quick else (100, 10**3, 10**4, 10**5, 10**6, 10**7)
    )
    target = 2e7 if quick else 2e8
    report["n_gen"] = [
        _toy_throughput(max(4, int(target // (100 + 2 * n))), (n,), None, reps)
        for n in sizes
    ]
    out = Path(os.environ.get("TMPDIR", "/tmp")) / "jaxunc-bench-scaling"
    report["huge_n_gen"] = _huge_n_gen_rss(4 if quick else 100, out)

    print(f"NumPy reference: {report['numpy_reference']['events_per_second']:.3g} ev/s")
    print(
        f"jaxunc default chunk: {baseline['events_per_second']:.3g} ev/s "
        f"({report['ratio_to_numpy']:.2f}x NumPy)"
    )
    for row in report["chunk_size"]:
        print(f"chunk {row['chunk_size']:>6}: {row['events_per_second']:.3g} ev/s")
    for row in report["devices"]:
        print(f"devices {row['device_count']}: {row['events_per_second']:.3g} ev/s")
    for row in report["n_gen"]:
        print(
            f"n_gen {row['n_gen'][0]:>9} (P={row['pseudo_experiments']}, width "
            f"{row['vector_width']}): {row['events_per_second']:.3g} ev/s"
        )
    huge = report["huge_n_gen"]
    print(
        f"{huge['command']}: peak RSS {huge['peak_rss_mib']:.0f} MiB, "
        f"{huge['wall_seconds']:.1f} s"
    )
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
