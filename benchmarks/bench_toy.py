"""Benchmark: jaxunc's Appendix-A Gaussian toy against the NumPy reference.

One run measures

0. raw generation: float32 normals reduced to a mean (NumPy ``standard_normal``
   into a reused buffer and into a fresh array; ``jax.random.normal`` and
   ``jaxunc.random.normal`` under ``jit``), the "generation limit";
a. steady state at P = 10^5 in this process: ``run_toy`` (seconds without compile;
   compile time reported separately) vs ``run_reference``; warm-up, then the median
   of ``--reps`` alternating repetitions;
b. whole process at P = 10^6: ``jaxunc toy --no-plots --quiet`` vs
   ``python benchmarks/numpy_reference.py`` as subprocesses, wall time including
   imports and compilation, median of ``--process-reps`` alternating runs
   (target: jaxunc takes at most half of NumPy's time);
c. sanity: the truth and surrogate std of the sample mean per n_gen agree between
   jaxunc and NumPy within 5 combined standard errors (exit status 1 if not).

    python benchmarks/bench_toy.py                # full run, a few minutes on 2 cores
    python benchmarks/bench_toy.py --quick        # smoke run, well under a minute
    python benchmarks/bench_toy.py --json out.json

The environment is passed through unchanged (OPENBLAS_CORETYPE etc.: no BLAS here).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from numpy_reference import run_reference  # noqa: E402

TOLERANCE_SIGMAS = 5.0


def _source_hash() -> str:
    """SHA-256 of jaxunc's Python sources (ties numbers to a code version)."""
    import jaxunc

    digest = hashlib.sha256()
    root = Path(jaxunc.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def machine_info() -> dict[str, Any]:
    import jax

    model = platform.processor() or "unknown"
    try:
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    os_name = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "ram_gib": round(ram, 1),
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": len(jax.devices()),
        "jaxunc_source_sha256": _source_hash(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "load_average_at_start": os.getloadavg(),
    }


def _busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes), /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return float("nan")
    ticks = [int(f) for f in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Probe:
    """Wall time, own CPU and the CPU load of *other* processes over a block.

    ``foreign_cores``: average number of cores that other processes kept busy, so
    a noisy-neighbour measurement can be recognised (0 on an idle machine).
    """

    def __enter__(self) -> Probe:
        self._busy, self._own = _busy_cpu_seconds(), _own_cpu_seconds()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._start
        self.cpu = _own_cpu_seconds() - self._own
        busy = _busy_cpu_seconds() - self._busy
        self.cores_used = self.cpu / self.wall
        self.foreign_cores = max(0.0, (busy - self.cpu) / self.wall)

    def as_dict(self) -> dict[str, float]:
        return {
            "wall": self.wall,
            "cpu": self.cpu,
            "cores_used": self.cores_used,
            "foreign_cores": self.foreign_cores,
        }


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _fmt_rate(rate: float) -> str:
    return f"{rate / 1e6:8.1f} M/s"


# ----------------------------------------------------------------------------- raw


def raw_generation(n: int, reps: int) -> dict[str, Any]:
    """Float32 normals per second, ``n`` at a time, each reduced to its mean."""
    import jax
    import jax.numpy as jnp

    from jaxunc import random as fast_random

    rng = np.random.default_rng(0)
    buffer = np.empty(n, np.float32)

    def numpy_out() -> float:
        return float(rng.standard_normal(out=buffer, dtype=np.float32).mean())

    def numpy_fresh() -> float:
        return float(rng.standard_normal(n, dtype=np.float32).mean())

    jax_mean = jax.jit(lambda k: jnp.mean(jax.random.normal(k, (n,), jnp.float32)))
    fast_mean = jax.jit(lambda k: jnp.mean(fast_random.normal(k, (n,), jnp.float32)))
    keys = iter(jax.random.split(jax.random.key(0), 4 * reps + 8))

    candidates: dict[str, Callable[[], float]] = {
        "numpy standard_normal (out=buffer)": numpy_out,
        "numpy standard_normal (new array)": numpy_fresh,
        "jax.random.normal (jit)": lambda: float(jax_mean(next(keys))),
        "jaxunc.random.normal (jit)": lambda: float(fast_mean(next(keys))),
    }
    results = {}
    for name, fn in candidates.items():
        fn()  # warm-up (and compile)
        fn()
        times = []
        with Probe() as probe:
            for _ in range(reps):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
        seconds = _median(times)
        results[name] = {
            "seconds": seconds,
            "normals_per_second": n / seconds,
            "probe": probe.as_dict(),
        }
        print(
            f"  {name:36s} {_fmt_rate(n / seconds)}  ({seconds * 1e3:6.1f} ms; "
            f"{probe.cores_used:.2f} cores, other {probe.foreign_cores:.2f})"
        )
    return {"n": n, "reps": reps, "results": results}


# ----------------------------------------------------------------------------- steady


def _numpy_label(processes: int) -> str:
    return "numpy" if processes == 1 else f"numpy{processes}p"


def _paired(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    """Per-repetition ratios (rep i against rep i): median, min and max."""
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {
        "median": _median(ratios),
        "min": min(ratios),
        "max": max(ratios),
        "all": ratios,
    }


def steady_state(
    pseudo_experiments: int, reps: int, numpy_processes: tuple[int, ...]
) -> dict[str, Any]:
    """In-process: ``run_toy`` against ``run_reference`` with 1..p processes.

    The compared seconds are each tool's own ``runtime.seconds`` (jaxunc: the engine
    loop without compilation; NumPy: the loop, with p > 1 including the pool's start
    through a fork server and the merge).
    """
    from jaxunc.studies.toy import ToyConfig, run_toy

    config = ToyConfig(pseudo_experiments=pseudo_experiments)

    def jaxunc_once():
        result = run_toy(config, figures=False, progress=False)
        return result.to_json()

    def numpy_once(processes: int):
        # forkserver: this process runs JAX's threads, which make fork unsafe
        return lambda: run_reference(
            pseudo_experiments,
            seed=0,
            processes=processes,
            start_method="forkserver",
        )

    candidates = {"jaxunc": jaxunc_once}
    for processes in numpy_processes:
        candidates[_numpy_label(processes)] = numpy_once(processes)
    for once in candidates.values():  # warm-up
        once()
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in candidates}
    for rep in range(reps):  # alternate, so slow phases of a noisy machine hit all
        for name, once in candidates.items():
            with Probe() as probe:
                runs[name].append(once())
            runs[name][-1]["probe"] = probe.as_dict()
            print(
                f"  rep {rep + 1}/{reps}  {name:8s} "
                f"{runs[name][-1]['runtime']['seconds']:7.3f} s  "
                f"(call {probe.wall:.2f} s, {probe.cores_used:.2f} cores; "
                f"other processes {probe.foreign_cores:.2f} cores)"
            )
    seconds = {
        name: [r["runtime"]["seconds"] for r in results]
        for name, results in runs.items()
    }
    events = runs["jaxunc"][0]["runtime"]["events"]
    assert all(r[0]["runtime"]["events"] == events for r in runs.values())
    jax_seconds = _median(seconds["jaxunc"])
    compile_all = [r["runtime"]["compile_seconds"] for r in runs["jaxunc"]]
    out: dict[str, Any] = {
        "pseudo_experiments": pseudo_experiments,
        "events": events,
        "reps": reps,
        "jaxunc_seconds": jax_seconds,
        "jaxunc_seconds_all": seconds["jaxunc"],
        "jaxunc_compile_seconds": _median(compile_all),
        "jaxunc_compile_seconds_all": compile_all,
        "jaxunc_events_per_second": events / jax_seconds,
        "probes": {name: [r["probe"] for r in rs] for name, rs in runs.items()},
        "jaxunc_summary": runs["jaxunc"][-1],
    }
    print(
        f"  jaxunc    {jax_seconds:7.3f} s  {_fmt_rate(events / jax_seconds)} events"
        f"  (+ compile {out['jaxunc_compile_seconds']:.2f} s, not included)"
    )
    for processes in numpy_processes:
        name = _numpy_label(processes)
        numpy_seconds = _median(seconds[name])
        speedup = numpy_seconds / jax_seconds
        paired = _paired(seconds[name], seconds["jaxunc"])
        out[name] = {
            "processes": processes,
            "seconds": numpy_seconds,
            "seconds_all": seconds[name],
            "events_per_second": events / numpy_seconds,
            "speedup": speedup,
            "speedup_per_rep": paired,
            "summary": runs[name][-1],
        }
        print(
            f"  {name:9s} {numpy_seconds:7.3f} s  {_fmt_rate(events / numpy_seconds)}"
            f" events  -> jaxunc throughput {speedup:.2f}x (per rep "
            f"{paired['min']:.2f}-{paired['max']:.2f})"
        )
    if 1 in numpy_processes:  # the keys of earlier result files
        out["numpy_seconds"] = out["numpy"]["seconds"]
        out["numpy_seconds_all"] = out["numpy"]["seconds_all"]
        out["numpy_events_per_second"] = out["numpy"]["events_per_second"]
        out["speedup"] = out["numpy"]["speedup"]
    return out


# ----------------------------------------------------------------------------- process


def _jaxunc_command() -> list[str]:
    exe = shutil.which("jaxunc")
    return [exe] if exe else [sys.executable, "-m", "jaxunc.cli"]


# jaxunc at least this many times faster (whole process, P = 10^6) than NumPy on all
# cores (issue 15), and at most half of one-process NumPy's time (issue 1).
TARGET_SPEEDUP_ALL_CORES = 1.3
TARGET_TIME_RATIO_ONE_PROCESS = 0.5


def whole_process(
    pseudo_experiments: int,
    reps: int,
    workdir: Path,
    numpy_processes: tuple[int, ...],
    warmup: int,
) -> dict[str, Any]:
    """Wall time of whole processes (interpreter start, imports, jaxunc's compilation,
    the run, writing the output), alternating the order every repetition.

    ``warmup`` untimed runs of every command come first: they load the interpreter,
    the libraries and the data files into the OS page cache, a cost both tools pay
    once per machine boot, not per run.  jaxunc has no persistent compilation cache
    here: each timed jaxunc run compiles again (its ``compile_seconds`` are kept).
    """
    p = str(pseudo_experiments)
    commands = {
        "jaxunc": [
            *_jaxunc_command(),
            "toy",
            "--no-plots",
            "--quiet",
            "--pseudo-experiments",
            p,
            "--out",
            str(workdir / "jaxunc"),
        ],
    }
    for processes in numpy_processes:
        name = _numpy_label(processes)
        commands[name] = [
            sys.executable,
            str(HERE / "numpy_reference.py"),
            "--quiet",
            "--pseudo-experiments",
            p,
            "--processes",
            str(processes),
            "--out",
            str(workdir / f"{name}.json"),
        ]
    times: dict[str, list[float]] = {name: [] for name in commands}
    probes: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
    inner: dict[str, list[dict[str, Any]]] = {name: [] for name in commands}

    def run(name: str) -> Probe:
        with Probe() as probe:
            proc = subprocess.run(commands[name], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return probe

    for _ in range(warmup):
        for name in commands:
            probe = run(name)
            print(f"  warm-up {name:9s} {probe.wall:7.2f} s (not counted)")
    for rep in range(reps):
        order = list(commands) if rep % 2 == 0 else list(commands)[::-1]
        for name in order:
            probe = run(name)
            times[name].append(probe.wall)
            probes[name].append(probe.as_dict())
            output = (
                workdir / "jaxunc" / "summary.json"
                if name == "jaxunc"
                else workdir / f"{name}.json"
            )
            inner[name].append(json.loads(output.read_text())["runtime"])
            print(
                f"  run {rep + 1}/{reps}  {name:9s} {probe.wall:7.2f} s  "
                f"({probe.cores_used:.2f} cores; "
                f"other processes {probe.foreign_cores:.2f} cores)"
            )
    jax_summary = json.loads((workdir / "jaxunc" / "summary.json").read_text())
    jax_seconds = _median(times["jaxunc"])
    out: dict[str, Any] = {
        "pseudo_experiments": pseudo_experiments,
        "reps": reps,
        "warmup_runs": warmup,
        "commands": {k: " ".join(v) for k, v in commands.items()},
        "jaxunc_seconds": jax_seconds,
        "jaxunc_seconds_all": times["jaxunc"],
        "jaxunc_inner_all": inner["jaxunc"],
        "probes": probes,
        "jaxunc_inner": jax_summary["runtime"],
        "jaxunc_summary": jax_summary,
    }
    full_size = pseudo_experiments >= 1_000_000
    print(f"  median: jaxunc {jax_seconds:.2f} s")
    for processes in numpy_processes:
        name = _numpy_label(processes)
        numpy_seconds = _median(times[name])
        speedup = numpy_seconds / jax_seconds
        paired = _paired(times[name], times["jaxunc"])
        section = {
            "processes": processes,
            "seconds": numpy_seconds,
            "seconds_all": times[name],
            "inner_all": inner[name],
            "speedup": speedup,
            "speedup_per_rep": paired,
            "summary": json.loads((workdir / f"{name}.json").read_text()),
        }
        if processes == 1:
            met = jax_seconds / numpy_seconds <= TARGET_TIME_RATIO_ONE_PROCESS
            target = f"time ratio <= {TARGET_TIME_RATIO_ONE_PROCESS}"
        else:
            met = speedup >= TARGET_SPEEDUP_ALL_CORES
            target = f"speed-up >= {TARGET_SPEEDUP_ALL_CORES}"
        section["target"] = target
        section["target_met"] = met if full_size else None
        verdict = ("met" if met else "NOT met") if full_size else "target is at 10^6"
        out[name] = section
        print(
            f"  median: {name} {numpy_seconds:.2f} s; jaxunc speed-up "
            f"{speedup:.2f}x (per rep {paired['min']:.2f}-{paired['max']:.2f}), "
            f"time ratio {1 / speedup:.2f} ({target}: {verdict})"
        )
    if 1 in numpy_processes:  # the keys of earlier result files
        out["numpy_seconds"] = out["numpy"]["seconds"]
        out["numpy_seconds_all"] = out["numpy"]["seconds_all"]
        out["time_ratio"] = jax_seconds / out["numpy_seconds"]
        out["target_met"] = out["numpy"]["target_met"]
    return out


# ----------------------------------------------------------------------------- sanity


def agreement(label: str, a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, list]:
    """Truth and surrogate std per n_gen within TOLERANCE_SIGMAS combined SEs."""
    assert a["n_gen"] == b["n_gen"], (a["n_gen"], b["n_gen"])
    ok, rows = True, []
    print(f"  {label}")
    print("    kind       n_gen   jaxunc std  numpy std   pull (combined SE)")
    for kind in ("truth", "surrogate"):
        for i, n in enumerate(a["n_gen"]):
            sa, sb = a[kind]["std"][i], b[kind]["std"][i]
            ea, eb = a[kind]["std_stderr"][i], b[kind]["std_stderr"][i]
            pull = (sa - sb) / math.hypot(ea, eb)
            good = abs(pull) <= TOLERANCE_SIGMAS
            ok &= good
            rows.append(
                {"kind": kind, "n_gen": n, "jaxunc": sa, "numpy": sb, "pull": pull}
            )
            print(
                f"    {kind:9s} {n:6d}   {sa:.5f}     {sb:.5f}    {pull:+6.2f}"
                + ("" if good else "   <-- DISAGREE")
            )
    return ok, rows


# ----------------------------------------------------------------------------- main


def _process_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(part) for part in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N1,N2,..., got {text!r}") from None
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"process counts must be >= 1: {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small P: smoke run")
    parser.add_argument("--steady-pseudo-experiments", type=int, default=None)
    parser.add_argument("--process-pseudo-experiments", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None, help="steady-state reps")
    parser.add_argument("--process-reps", type=int, default=None)
    parser.add_argument(
        "--process-warmup",
        type=int,
        default=None,
        help="untimed whole-process runs of every command first (default 1; "
        "0 with --quick)",
    )
    parser.add_argument(
        "--numpy-processes",
        type=_process_counts,
        default=None,
        metavar="N1,N2,...",
        help="NumPy reference process counts to compare with (default: the cores "
        f"this process may use, {len(os.sched_getaffinity(0))}; add 1 for the "
        "one-process reference)",
    )
    parser.add_argument(
        "--skip-raw", action="store_true", help="skip the raw generation rates"
    )
    parser.add_argument(
        "--raw-normals",
        type=int,
        nargs="+",
        default=[2**24, 2**22],
        help="sizes for the raw generation rates (default: 2**24 and 2**22, "
        "the engine's chunk)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write all numbers")
    args = parser.parse_args(argv)
    steady_p = args.steady_pseudo_experiments or (10_000 if args.quick else 100_000)
    process_p = args.process_pseudo_experiments or (20_000 if args.quick else 1_000_000)
    reps = args.reps or (2 if args.quick else 3)
    process_reps = args.process_reps or (1 if args.quick else 3)
    warmup = args.process_warmup
    if warmup is None:
        warmup = 0 if args.quick else 1
    numpy_processes = args.numpy_processes or (len(os.sched_getaffinity(0)),)
    raw_sizes = [] if args.skip_raw else [2**20] if args.quick else args.raw_normals

    started = time.perf_counter()
    info = machine_info()
    info["proc_loadavg_at_start"] = Path("/proc/loadavg").read_text().strip()
    print("machine:", json.dumps(info))
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info,
        "numpy_processes": list(numpy_processes),
    }

    raw_reps = max(reps, 5)
    report["raw_generation"] = []
    for raw_n in raw_sizes:
        print(f"\n[0] raw generation: {raw_n} float32 normals -> mean, x{raw_reps}")
        report["raw_generation"].append(raw_generation(raw_n, raw_reps))

    print(f"\n[a] steady state, P = {steady_p}, median of {reps} (after warm-up)")
    report["steady_state"] = steady_state(steady_p, reps, numpy_processes)
    load_between = Path("/proc/loadavg").read_text().strip()
    report["machine"]["proc_loadavg_before_whole_process"] = load_between

    print(f"\n[b] whole process, P = {process_p}, median of {process_reps}")
    with tempfile.TemporaryDirectory(prefix="bench_toy-") as tmp:
        report["whole_process"] = whole_process(
            process_p, process_reps, Path(tmp), numpy_processes, warmup
        )

    print(f"\n[c] agreement (|pull| <= {TOLERANCE_SIGMAS:g})")
    ok, rows = True, {}
    s, w = report["steady_state"], report["whole_process"]
    for processes in numpy_processes:
        name = _numpy_label(processes)
        for label, section, p in (("steady", s, steady_p), ("process", w, process_p)):
            good, table = agreement(
                f"{label} P = {p}: jaxunc vs {name}",
                section["jaxunc_summary"],
                section[name]["summary"],
            )
            ok &= good
            rows[f"{label}_{name}"] = table
    report["agreement"] = {"ok": ok, **rows}
    report["total_seconds"] = time.perf_counter() - started
    report["machine"]["load_average_at_end"] = os.getloadavg()
    report["machine"]["proc_loadavg_at_end"] = Path("/proc/loadavg").read_text().strip()

    print("\nsummary")
    for processes in numpy_processes:
        name = _numpy_label(processes)
        print(
            f"  steady state P={steady_p}: "
            f"jaxunc {_fmt_rate(s['jaxunc_events_per_second'])} vs {name} "
            f"{_fmt_rate(s[name]['events_per_second'])} events "
            f"-> {s[name]['speedup']:.2f}x; compile "
            f"{s['jaxunc_compile_seconds']:.2f} s"
        )
    for processes in numpy_processes:
        name = _numpy_label(processes)
        wp = w[name]
        print(
            f"  whole process P={process_p}: jaxunc {w['jaxunc_seconds']:.2f} s vs "
            f"{name} {wp['seconds']:.2f} s -> jaxunc {wp['speedup']:.2f}x faster "
            f"(per rep {wp['speedup_per_rep']['min']:.2f}-"
            f"{wp['speedup_per_rep']['max']:.2f}; {wp['target']}: "
            f"{ {True: 'met', False: 'NOT met', None: 'n/a'}[wp['target_met']] })"
        )
    for raw in report["raw_generation"]:
        for name, value in raw["results"].items():
            rate = _fmt_rate(value["normals_per_second"])
            print(f"  raw n={raw['n']:<9d} {name:36s} {rate}")
    print(f"  agreement: {'OK' if ok else 'FAILED'}")
    print(
        f"  load: {info['proc_loadavg_at_start']} (start), {load_between} "
        f"(before [b]), {report['machine']['proc_loadavg_at_end']} (end)"
    )
    print(f"  total benchmark time {report['total_seconds']:.0f} s")
    if args.json is not None:
        keep = ("n_gen", "truth", "surrogate")
        for section in (s, w):  # keep the JSON small: drop the full summaries
            section["jaxunc_summary"] = {k: section["jaxunc_summary"][k] for k in keep}
            for processes in numpy_processes:
                sub = section[_numpy_label(processes)]
                sub["summary"] = {k: sub["summary"][k] for k in keep}
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
        print(f"  wrote {args.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
