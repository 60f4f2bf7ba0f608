"""Benchmark: the persistent compilation cache of the ``jaxunc`` command (issue 15).

Two identical ``jaxunc fisher`` runs, each in a fresh Python process, with an empty
cache folder before the first: the first run compiles every program and writes the
slow ones to the cache, the second loads them.  Per run it measures, from JAX's own
``jax.monitoring`` duration events (summed over every jitted program):

* ``backend_compile_seconds``: XLA compilation, or loading the executable from the
  persistent cache on a hit (``/jax/core/compile/backend_compile_duration``) — the
  part the cache can save;
* ``trace_seconds`` + ``lower_seconds``: tracing to a jaxpr and lowering to MLIR
  (``jaxpr_trace_duration``, ``jaxpr_to_mlir_module_duration``), paid on every run;
* ``compile_seconds``: the sum of the three (what "compile time" means here);
* ``cache_hits`` and ``cache_misses`` (``/jax/compilation_cache/*`` events), the
  whole-process wall time and the process's CPU time (user + system; less
  sensitive than wall time to other load on a shared machine).

Must show: the second run's ``compile_seconds`` at most 1/3 of the first's (exit
status 1 otherwise).  The cache is the command's default, found through
``XDG_CACHE_HOME`` (a temporary folder here; ``JAX_COMPILATION_CACHE_DIR`` and
``JAXUNC_NO_COMPILE_CACHE`` are removed from the runs' environment).

    python benchmarks/bench_compile_cache.py              # the default jaxunc fisher
    python benchmarks/bench_compile_cache.py --quick      # a small fisher run
    python benchmarks/bench_compile_cache.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

QUICK = ["--n-gen", "100,1000", "--outer", "64", "--simulations", "64"]
"""A small ``jaxunc fisher`` configuration (--quick): the same programs at
smaller sizes."""

_DRIVER = r"""
import json, sys, time
start = time.perf_counter()
import jax
from jax import monitoring

totals = {"backend_compile_seconds": 0.0, "trace_seconds": 0.0,
          "lower_seconds": 0.0, "programs": 0}
counts = {"cache_hits": 0, "cache_requests": 0}
EVENTS = {
    "/jax/core/compile/backend_compile_duration": "backend_compile_seconds",
    "/jax/core/compile/jaxpr_trace_duration": "trace_seconds",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_seconds",
}

def on_duration(event, seconds, **kwargs):
    name = EVENTS.get(event)
    if name is not None:
        totals[name] += seconds
        if name == "backend_compile_seconds":
            totals["programs"] += 1

def on_event(event, **kwargs):
    if event == "/jax/compilation_cache/cache_hits":
        counts["cache_hits"] += 1
    elif event == "/jax/compilation_cache/compile_requests_use_cache":
        counts["cache_requests"] += 1

monitoring.register_event_duration_secs_listener(on_duration)
monitoring.register_event_listener(on_event)
from jaxunc.cli import main
code = main(sys.argv[2:])
totals.update(counts)
totals["cache_misses"] = counts["cache_requests"] - counts["cache_hits"]
totals["exit_code"] = code
totals["process_seconds"] = time.perf_counter() - start
import resource
usage = resource.getrusage(resource.RUSAGE_SELF)
totals["process_cpu_seconds"] = usage.ru_utime + usage.ru_stime
totals["compile_seconds"] = (totals["backend_compile_seconds"]
                             + totals["trace_seconds"] + totals["lower_seconds"])
with open(sys.argv[1], "w") as handle:
    json.dump(totals, handle)
"""


def _run(argv: list[str], cache_home: Path, out: Path, record: Path) -> dict:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key
        not in (
            "JAX_COMPILATION_CACHE_DIR",
            "JAXUNC_NO_COMPILE_CACHE",
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
        )
    }
    environment["XDG_CACHE_HOME"] = str(cache_home)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    command = [sys.executable, "-c", _DRIVER, str(record), *argv, "--out", str(out)]
    start = time.perf_counter()
    subprocess.run(command, check=True, env=environment)
    wall = time.perf_counter() - start
    result = json.loads(record.read_text())
    result["wall_seconds"] = wall
    return result


def _cache_size(folder: Path) -> tuple[int, int]:
    files = [path for path in folder.rglob("*") if path.is_file()]
    return len(files), sum(path.stat().st_size for path in files)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small fisher run")
    parser.add_argument("--json", type=Path, help="write the numbers here")
    args = parser.parse_args()
    argv = ["fisher", "--no-plots", "--quiet", *(QUICK if args.quick else [])]
    with tempfile.TemporaryDirectory(prefix="jaxunc-bench-cache-") as scratch:
        scratch = Path(scratch)
        cache_home = scratch / "xdg"
        runs = []
        for index in range(2):
            runs.append(
                _run(
                    argv,
                    cache_home,
                    scratch / f"out{index}",
                    scratch / f"record{index}.json",
                )
            )
            if index == 0:
                files, size = _cache_size(cache_home / "jaxunc")
    first, second = runs
    ratio = second["compile_seconds"] / first["compile_seconds"]
    payload: dict[str, Any] = {
        "command": "jaxunc " + " ".join(argv),
        "load_average_before": os.getloadavg(),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "runs": runs,
        "cache_after_first_run": {"files": files, "bytes": size},
        "compile_ratio_second_over_first": ratio,
        "backend_compile_ratio": second["backend_compile_seconds"]
        / first["backend_compile_seconds"],
        "wall_ratio": second["wall_seconds"] / first["wall_seconds"],
        "cpu_seconds_saved": first["process_cpu_seconds"]
        - second["process_cpu_seconds"],
        "must_show": "second run's compile_seconds <= 1/3 of the first's",
        "passed": ratio <= 1 / 3,
    }
    import jax

    payload["machine"]["jax"] = jax.__version__
    for name, run in zip(("first", "second"), runs, strict=True):
        print(
            f"{name}: compile {run['compile_seconds']:.1f} s (XLA/cache load "
            f"{run['backend_compile_seconds']:.1f} s, trace "
            f"{run['trace_seconds']:.1f} s, lower {run['lower_seconds']:.1f} s; "
            f"{run['programs']} programs, {run['cache_hits']} cache hits), whole "
            f"process {run['wall_seconds']:.1f} s, CPU "
            f"{run['process_cpu_seconds']:.1f} s"
        )
    print(
        f"cache after the first run: {files} files, {size / 2**20:.1f} MiB; "
        f"second/first compile {ratio:.3f} (XLA/cache load "
        f"{payload['backend_compile_ratio']:.3f}), wall {payload['wall_ratio']:.3f}"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0 if payload["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
