"""Benchmark: ``jaxunc toy`` on two source trees (before and after a change).

Issue 14 asks for "no measurable slowdown of ``jaxunc toy``" from its fault handling
(one error boundary, output folders staged and swapped in whole, sizes and
parameters checked before work).  This script times the same ``toy`` command with
``PYTHONPATH`` pointed at each of two checkouts:

a. **whole process**: ``python -m jaxunc.cli toy --no-plots --quiet
   --pseudo-experiments P --out DIR`` as a subprocess (interpreter start, imports,
   argument checks, compilation, the run, staging and writing the output), the two
   trees alternating (order flipped every repetition), after one untimed warm-up
   run of each (the OS page cache: a cost both pay once, not per run);
b. **in-process steady state**: one long-lived worker process per tree calls
   ``jaxunc.cli.main([...same arguments...])`` again and again; the parent asks
   the two workers in alternation, each timing its own call (the first call of
   each, which compiles, is a warm-up and not counted).  Each call still writes its
   output folder, so the CLI's staging and swap are inside the timed call.

Reported: medians per tree, the ratio of medians (after / before) and the spread of
the per-repetition ratios (rep i of one tree against rep i of the other), plus
``/proc/loadavg`` at the start, between the parts and at the end.  Each worker
prints ``jaxunc.__file__`` first; the script refuses to time a tree that does not
import its own ``jaxunc``.

    git worktree add /tmp/before <commit>          # read-only checkout of "before"
    python benchmarks/bench_before_after.py --before /tmp/before --after .
    python benchmarks/bench_before_after.py --before /tmp/before --after . --quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORKER = r"""
import json, sys, time
import jaxunc, jaxunc.cli
print(json.dumps({"jaxunc": jaxunc.__file__}), flush=True)
argv = json.loads(sys.argv[1])
for line in sys.stdin:
    start = time.perf_counter()
    code = jaxunc.cli.main(argv)
    seconds = time.perf_counter() - start
    out = argv[argv.index("--out") + 1]
    with open(out + "/summary.json") as handle:
        runtime = json.load(handle)["runtime"]
    print(json.dumps({"code": code, "seconds": seconds, "runtime": runtime}),
          flush=True)
"""


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def _git_head(tree: Path) -> str | None:
    try:
        return subprocess.run(
            ["git", "-C", str(tree), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    return env


def _toy_args(pseudo_experiments: int, out: Path) -> list[str]:
    return [
        "toy",
        "--no-plots",
        "--quiet",
        "--pseudo-experiments",
        str(pseudo_experiments),
        "--out",
        str(out),
    ]


def _check_import(tree: Path, reported: str) -> None:
    if not Path(reported).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(
            f"bench_before_after: PYTHONPATH={tree} imported jaxunc from {reported}"
        )


def _stats(before: list[float], after: list[float]) -> dict[str, Any]:
    ratios = [a / b for a, b in zip(after, before, strict=True)]
    return {
        "before_seconds_all": before,
        "after_seconds_all": after,
        "before_median": statistics.median(before),
        "after_median": statistics.median(after),
        "ratio_of_medians": statistics.median(after) / statistics.median(before),
        "ratio_per_rep": ratios,
        "ratio_per_rep_median": statistics.median(ratios),
        "ratio_per_rep_min": min(ratios),
        "ratio_per_rep_max": max(ratios),
    }


def _print_stats(label: str, stats: dict[str, Any]) -> None:
    print(
        f"  {label}: before {stats['before_median']:.3f} s, after "
        f"{stats['after_median']:.3f} s (medians) -> after/before "
        f"{stats['ratio_of_medians']:.3f}; per-rep ratios median "
        f"{stats['ratio_per_rep_median']:.3f}, range "
        f"{stats['ratio_per_rep_min']:.3f}-{stats['ratio_per_rep_max']:.3f}"
    )


def whole_process(
    trees: dict[str, Path], pseudo_experiments: int, reps: int, workdir: Path
) -> dict[str, Any]:
    times: dict[str, list[float]] = {name: [] for name in trees}
    inner: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}

    def run(name: str) -> float:
        out = workdir / f"process-{name}"
        command = [
            sys.executable,
            "-m",
            "jaxunc.cli",
            *_toy_args(pseudo_experiments, out),
        ]
        start = time.perf_counter()
        proc = subprocess.run(  # cwd: not a tree (python puts the cwd first)
            command, env=_env(trees[name]), capture_output=True, text=True, cwd=workdir
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{name}: exit {proc.returncode}\n{proc.stderr}")
        inner[name].append(json.loads((out / "summary.json").read_text())["runtime"])
        return seconds

    for name in trees:
        print(f"  warm-up {name:6s} {run(name):6.2f} s (not counted)")
        inner[name].clear()
    for rep in range(reps):
        order = list(trees) if rep % 2 == 0 else list(trees)[::-1]
        for name in order:
            times[name].append(run(name))
            print(f"  run {rep + 1}/{reps} {name:6s} {times[name][-1]:6.2f} s")
    return {**_stats(times["before"], times["after"]), "inner": inner}


def in_process(
    trees: dict[str, Path], pseudo_experiments: int, reps: int, workdir: Path
) -> dict[str, Any]:
    workers = {}
    for name, tree in trees.items():
        argv = _toy_args(pseudo_experiments, workdir / f"inprocess-{name}")
        workers[name] = subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(argv)],
            env=_env(tree),
            cwd=workdir,  # not a tree: python puts the cwd first on sys.path
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    try:
        for name, worker in workers.items():
            _check_import(trees[name], json.loads(worker.stdout.readline())["jaxunc"])

        def call(name: str) -> dict[str, Any]:
            worker = workers[name]
            worker.stdin.write("run\n")
            worker.stdin.flush()
            reply = json.loads(worker.stdout.readline())
            if reply["code"] != 0:
                raise RuntimeError(f"{name}: jaxunc.cli.main returned {reply['code']}")
            return reply

        for name in trees:
            print(f"  warm-up {name:6s} {call(name)['seconds']:6.2f} s (compiles)")
        replies: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for rep in range(reps):
            order = list(trees) if rep % 2 == 0 else list(trees)[::-1]
            for name in order:
                replies[name].append(call(name))
                print(
                    f"  call {rep + 1}/{reps} {name:6s} "
                    f"{replies[name][-1]['seconds']:6.3f} s"
                )
    finally:
        for worker in workers.values():
            worker.stdin.close()
            worker.wait(timeout=60)
    seconds = {n: [r["seconds"] for r in rs] for n, rs in replies.items()}
    engine = {n: [r["runtime"]["seconds"] for r in rs] for n, rs in replies.items()}
    return {
        **_stats(seconds["before"], seconds["after"]),
        "engine_seconds": _stats(engine["before"], engine["after"]),
        "compile_seconds": {
            n: [r["runtime"]["compile_seconds"] for r in rs]
            for n, rs in replies.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree")
    parser.add_argument("--after", type=Path, required=True, help="source tree")
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--pseudo-experiments", type=int, default=None)
    parser.add_argument("--process-reps", type=int, default=None)
    parser.add_argument("--call-reps", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write all numbers")
    args = parser.parse_args(argv)
    p = args.pseudo_experiments or (10_000 if args.quick else 100_000)
    process_reps = args.process_reps or (2 if args.quick else 7)
    call_reps = args.call_reps or (3 if args.quick else 11)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for name, tree in trees.items():
        if not (tree / "jaxunc" / "cli.py").is_file():
            parser.error(f"--{name}: {tree} has no jaxunc/cli.py")

    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "trees": {
            n: {"path": str(t), "commit": _git_head(t)} for n, t in trees.items()
        },
        "command": "jaxunc " + " ".join(_toy_args(p, Path("DIR"))),
        "pseudo_experiments": p,
        "load": {"start": _loadavg()},
    }
    print(json.dumps(report["trees"]))
    with tempfile.TemporaryDirectory(prefix="bench_before_after-") as tmp:
        print(f"\n[a] in-process steady state, P = {p}, {call_reps} calls each")
        report["in_process"] = in_process(trees, p, call_reps, Path(tmp))
        report["load"]["between"] = _loadavg()
        print(f"\n[b] whole process, P = {p}, {process_reps} runs each")
        report["whole_process"] = whole_process(trees, p, process_reps, Path(tmp))
    report["load"]["end"] = _loadavg()
    print("\nsummary (after / before; > 1 means after is slower)")
    _print_stats("in-process call", report["in_process"])
    _print_stats("  engine loop  ", report["in_process"]["engine_seconds"])
    _print_stats("whole process  ", report["whole_process"])
    print(
        f"  load: {report['load']['start']} (start), {report['load']['between']}, "
        f"{report['load']['end']} (end)"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
