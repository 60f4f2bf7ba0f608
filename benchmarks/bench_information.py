"""Benchmark: jaxunc's information engine (Fisher information by autodiff).

One run measures

1. per-event throughput at 10^7 events: ``fisher_information`` for the Gaussian
   (μ = 0, σ = 1, float32, params mu and sigma) with each method (score outer product
   E[s sᵀ], negative Hessian -E[H]) against a NumPy reference that generates the same
   number of float32 events in chunks and evaluates the analytic per-event score
   (∂μ = (x-μ)/σ², ∂σ = ((x-μ)²-σ²)/σ³) or Hessian, accumulating the same means and
   standard errors. One warm-up call each, then the median of ``--reps`` alternating
   repetitions. Every ``fisher_information`` call compiles afresh (its jitted closure
   is new each call), so jaxunc's compile time (tracing + lowering + XLA compile, from
   ``jax.monitoring``) is reported separately and subtracted for its events/s. Both
   must agree with the exact information diag(1/σ², 2/σ²) within 5 standard errors
   (exit status 1 if not);
2. the D_gen Fisher estimate of the default information study: ``run_fisher(
   FisherConfig(), progress=False)`` (model gaussian, fit mean-std, params mu,
   n_train 100, outer 256) after a small warm-up study, median of ``--fisher-reps``.
   Inside it, every ``generated_fisher_information`` call (one per default n_gen,
   with the study's own keys) is timed with its compile time, proposal count and
   ESS; the other parts of the study are timed the same way (a thin wrapper around
   the functions ``jaxunc.studies.fisher`` calls), to show what dominates;
3. whole process: ``jaxunc fisher --no-plots --quiet --out TMP`` wall time, median
   of ``--process-reps``, if ``jaxunc fisher --help`` succeeds (else recorded as
   skipped). The target: under a minute on 2 CPU cores.

Every timed block records how many cores other processes kept busy (``Probe`` from
``bench_toy.py``), so a noisy-neighbour measurement can be recognised.

    python benchmarks/bench_information.py                # full run, ~5 min on 2 cores
    python benchmarks/bench_information.py --quick        # smoke run, under a minute
    python benchmarks/bench_information.py --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_toy import (  # noqa: E402
    Probe,
    _fmt_rate,
    _jaxunc_command,
    _median,
    machine_info,
)

TOLERANCE_SIGMAS = 5.0
CONTAMINATION_CORES = 0.1  # other processes above this: the block is flagged
NUMPY_CHUNK = 2**16  # events per NumPy chunk (fastest of 2^14..2^20 here)
ROUNDING = 1e-6  # relative slack for entries with zero standard error (float32)


# ----------------------------------------------------------------------------- clocks


class CompileClock:
    """Seconds JAX spent tracing, lowering and compiling while a block ran.

    Listens to ``jax.monitoring`` duration events (``/jax/core/compile/...``); blocks
    may nest (each open block receives every event).
    """

    _open: ClassVar[list[dict[str, float]]] = []
    _registered = False

    def __init__(self) -> None:
        if not CompileClock._registered:
            import jax.monitoring

            jax.monitoring.register_event_duration_secs_listener(self._listener)
            CompileClock._registered = True

    @staticmethod
    def _listener(event: str, duration: float, **_: Any) -> None:
        if event.startswith("/jax/core/compile/"):
            for block in CompileClock._open:
                block[event] = block.get(event, 0.0) + duration

    def __enter__(self) -> CompileClock:
        self.events: dict[str, float] = {}
        CompileClock._open.append(self.events)
        return self

    def __exit__(self, *exc: object) -> None:
        blocks = CompileClock._open  # by identity: equal dicts must not be confused
        del blocks[next(i for i, b in enumerate(blocks) if b is self.events)]
        self.seconds = sum(self.events.values())


def _flag(probes: list[dict[str, float]]) -> tuple[float, bool]:
    worst = max((p["foreign_cores"] for p in probes), default=0.0)
    return worst, worst > CONTAMINATION_CORES


# ----------------------------------------------------------------------------- numpy


def numpy_information(
    method: str,
    events: int,
    mu: float = 0.0,
    sigma: float = 1.0,
    seed: int = 0,
    chunk: int = NUMPY_CHUNK,
) -> dict[str, Any]:
    """The NumPy reference: analytic per-event score or Hessian of N(μ, σ²), float32.

    Generates ``events`` float32 events (``ceil(events/chunk)`` chunks) and
    accumulates, in float64 across chunks, the sums and sums of squares of the
    per-event terms: s_μ², s_μ s_σ, s_σ² (score outer product) or -H_μσ = 2r/σ³,
    -H_σσ = 3r²/σ⁴ - 1/σ² (negative Hessian; -H_μμ = 1/σ² is constant).  Returns the
    (2, 2) mean per event and its standard error, as ``fisher_information`` does.
    """
    rng = np.random.default_rng(seed)
    steps = -(-events // chunk)
    count = steps * chunk
    m, s = np.float32(mu), np.float32(sigma)
    x, r, a, b, t = (np.empty(chunk, np.float32) for _ in range(5))
    sums, squares = np.zeros(3), np.zeros(3)
    if method == "score_outer_product":
        inv_s2, inv_s3, s2 = np.float32(1 / sigma**2), np.float32(1 / sigma**3), s * s
    else:
        c_mu_sigma = np.float32(2 / sigma**3)
        c_sigma, inv_s2 = np.float32(3 / sigma**4), np.float32(1 / sigma**2)
    for _ in range(steps):
        rng.standard_normal(out=x, dtype=np.float32)
        x *= s  # the events x = μ + σ z
        x += m
        np.subtract(x, m, out=r)
        if method == "score_outer_product":
            np.multiply(r, inv_s2, out=a)  # ∂μ log p
            np.multiply(r, r, out=b)  # ∂σ log p = (r² - σ²)/σ³
            b -= s2
            b *= inv_s3
            pairs = ((a, a), (a, b), (b, b))
        else:
            np.multiply(r, c_mu_sigma, out=a)  # -H_μσ
            np.multiply(r, r, out=b)  # -H_σσ
            b *= c_sigma
            b -= inv_s2
            pairs = ((a, None), (b, None))
        for j, (p, q) in enumerate(pairs):
            term = p if q is None else np.multiply(p, q, out=t)
            sums[j] += float(term.sum())
            squares[j] += float(np.multiply(term, term, out=x).sum())
    mean, second = sums / count, squares / count
    variance = np.maximum(second - mean**2, 0.0) * count / (count - 1)
    stderr = np.sqrt(variance / count)
    if method == "score_outer_product":
        index = [[0, 1], [1, 2]]
        matrix, errors = mean[index], stderr[index]
    else:
        matrix = np.array([[1 / sigma**2, mean[0]], [mean[0], mean[1]]])
        errors = np.array([[0.0, stderr[0]], [stderr[0], stderr[1]]])
    return {"matrix": matrix, "stderr": errors, "events": count}


def exact_check(
    label: str, matrix: np.ndarray, stderr: np.ndarray, exact: np.ndarray
) -> dict[str, Any]:
    """Every entry within TOLERANCE_SIGMAS standard errors of the exact value.

    An entry with zero standard error (-H_μμ, constant per event) must be exact up
    to float32 rounding (ROUNDING relative).
    """
    difference = np.asarray(matrix) - exact
    slack = TOLERANCE_SIGMAS * np.asarray(stderr) + ROUNDING * np.maximum(
        1.0, np.abs(exact)
    )
    ok = bool(np.all(np.abs(difference) <= slack))
    with np.errstate(divide="ignore", invalid="ignore"):
        pulls = np.where(stderr > 0, difference / np.asarray(stderr), 0.0)
    worst = float(np.max(np.abs(pulls)))
    pairs = zip(np.ravel(matrix), np.ravel(stderr), strict=True)
    flat = ", ".join(f"{v:.5f}±{e:.5f}" for v, e in pairs)
    verdict = "OK" if ok else "DISAGREE"
    print(f"    {label:32s} [{flat}]  max |pull| {worst:.2f}  {verdict}")
    return {
        "label": label,
        "matrix": np.asarray(matrix).tolist(),
        "stderr": np.asarray(stderr).tolist(),
        "pulls": pulls.tolist(),
        "max_abs_pull": worst,
        "ok": ok,
    }


# ----------------------------------------------------------------------------- part 1


def per_event_throughput(events: int, reps: int) -> dict[str, Any]:
    import jax

    from jaxunc.information import METHODS, fisher_information
    from jaxunc.models import Gaussian

    model = Gaussian()
    theta = {"mu": np.float32(0), "sigma": np.float32(1)}
    exact = np.diag([1.0, 2.0])
    keys = iter(jax.random.split(jax.random.key(0), 2 * (reps + 1)))
    seeds = itertools.count(1)
    clock = CompileClock()
    out: dict[str, Any] = {"events_requested": events, "reps": reps, "methods": {}}
    for method in METHODS:

        def jaxunc_once(method: str = method) -> dict[str, Any]:
            with clock, Probe() as probe:
                result = fisher_information(
                    model,
                    theta,
                    key=next(keys),
                    method=method,
                    params=("mu", "sigma"),
                    monte_carlo_events=events,
                )
            compute = probe.wall - clock.seconds
            return {
                "seconds": probe.wall,
                "compile_seconds": clock.seconds,
                "compute_seconds": compute,
                "events": result.monte_carlo_events,
                "matrix": result.matrix,
                "stderr": result.stderr,
                "probe": probe.as_dict(),
            }

        def numpy_once(method: str = method) -> dict[str, Any]:
            with Probe() as probe:
                result = numpy_information(method, events, seed=next(seeds))
            return {"seconds": probe.wall, "probe": probe.as_dict(), **result}

        print(f"  {method}")
        jaxunc_once()  # warm-up
        numpy_once()
        runs: dict[str, list[dict[str, Any]]] = {"jaxunc": [], "numpy": []}
        for rep in range(reps):
            for name, once in (("jaxunc", jaxunc_once), ("numpy", numpy_once)):
                run = once()
                runs[name].append(run)
                extra = (
                    f" = compile {run['compile_seconds']:.3f} + compute "
                    f"{run['compute_seconds']:.3f}"
                    if name == "jaxunc"
                    else ""
                )
                print(
                    f"    rep {rep + 1}/{reps}  {name:6s} {run['seconds']:6.3f} s"
                    f"{extra}  ({run['probe']['cores_used']:.2f} cores; other "
                    f"processes {run['probe']['foreign_cores']:.2f} cores)"
                )
        count = runs["jaxunc"][0]["events"]
        assert count == runs["numpy"][0]["events"], "event counts differ"
        j_compute = _median([r["compute_seconds"] for r in runs["jaxunc"]])
        j_call = _median([r["seconds"] for r in runs["jaxunc"]])
        j_compile = _median([r["compile_seconds"] for r in runs["jaxunc"]])
        n_seconds = _median([r["seconds"] for r in runs["numpy"]])
        probes = [r["probe"] for rs in runs.values() for r in rs]
        worst, contaminated = _flag(probes)
        print(
            f"    jaxunc compute {j_compute:.3f} s {_fmt_rate(count / j_compute)} "
            f"events (call {j_call:.3f} s incl. compile {j_compile:.3f} s: "
            f"{_fmt_rate(count / j_call)})"
        )
        print(f"    numpy          {n_seconds:.3f} s {_fmt_rate(count / n_seconds)}")
        print(
            f"    jaxunc/numpy events/s: {n_seconds / j_compute:.2f}x (compute), "
            f"{n_seconds / j_call:.2f}x (whole call)"
        )
        checks = [
            exact_check(f"jaxunc rep {i + 1}", r["matrix"], r["stderr"], exact)
            for i, r in enumerate(runs["jaxunc"])
        ] + [
            exact_check(f"numpy rep {i + 1}", r["matrix"], r["stderr"], exact)
            for i, r in enumerate(runs["numpy"])
        ]
        out["methods"][method] = {
            "events": count,
            "jaxunc_compute_seconds": j_compute,
            "jaxunc_call_seconds": j_call,
            "jaxunc_compile_seconds": j_compile,
            "jaxunc_compute_seconds_all": [
                r["compute_seconds"] for r in runs["jaxunc"]
            ],
            "jaxunc_call_seconds_all": [r["seconds"] for r in runs["jaxunc"]],
            "jaxunc_compile_seconds_all": [
                r["compile_seconds"] for r in runs["jaxunc"]
            ],
            "jaxunc_events_per_second": count / j_compute,
            "jaxunc_events_per_second_with_compile": count / j_call,
            "numpy_seconds": n_seconds,
            "numpy_seconds_all": [r["seconds"] for r in runs["numpy"]],
            "numpy_events_per_second": count / n_seconds,
            "ratio_compute": n_seconds / j_compute,
            "ratio_call": n_seconds / j_call,
            "probes": {k: [r["probe"] for r in v] for k, v in runs.items()},
            "max_foreign_cores": worst,
            "contaminated": contaminated,
            "checks": checks,
            "ok": all(c["ok"] for c in checks),
        }
    return out


# ----------------------------------------------------------------------------- part 2

_STUDY_PARTS = (
    "fisher_information",
    "kl_divergence",
    "mutual_information",
    "generated_fisher_information",
    "generated_kl_divergence",
    "run_chain",
)


class _Instrument:
    """Times every call ``run_fisher`` makes to the functions in ``_STUDY_PARTS``
    (wall and compile seconds), by wrapping their names in jaxunc.studies.fisher."""

    def __init__(self) -> None:
        import jaxunc.studies.fisher as module

        self.module, self.calls = module, []
        self.originals = {name: getattr(module, name) for name in _STUDY_PARTS}

    def _wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with CompileClock() as clock:
                start = time.perf_counter()
                result = fn(*args, **kwargs)
                seconds = time.perf_counter() - start
            call = {"part": name, "seconds": seconds, "compile": clock.seconds}
            if name == "generated_fisher_information":
                call.update(
                    n_gen=result.n_gen,
                    proposals=result.proposals,
                    ess=result.effective_sample_size,
                    min_ess=result.min_effective_sample_size,
                    matrix=np.asarray(result.matrix).tolist(),
                    stderr=np.asarray(result.stderr).tolist(),
                )
            self.calls.append(call)
            return result

        return timed

    def __enter__(self) -> _Instrument:
        for name, fn in self.originals.items():
            setattr(self.module, name, self._wrap(name, fn))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self.originals.items():
            setattr(self.module, name, fn)


def _part_label(call: dict[str, Any], index: int) -> str:
    labels = {
        "fisher_information": ["I_train (score)", "I_train (Hessian)"],
        "kl_divergence": ["KL train"],
        "run_chain": ["estimator view (run_chain)"],
    }
    if call["part"] in labels:
        return labels[call["part"]][index]
    if call["part"] == "mutual_information" and index == 0:
        return "MI train"
    return {
        "mutual_information": "MI gen (all n_gen)",
        "generated_fisher_information": "I_gen (all n_gen)",
        "generated_kl_divergence": "KL gen (all n_gen)",
    }[call["part"]]


def _breakdown(calls: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    seen: dict[str, int] = {}
    parts: dict[str, dict[str, float]] = {}
    for call in calls:
        index = seen.get(call["part"], 0)
        seen[call["part"]] = index + 1
        label = _part_label(call, index)
        entry = parts.setdefault(label, {"seconds": 0.0, "compile": 0.0})
        entry["seconds"] += call["seconds"]
        entry["compile"] += call["compile"]
    return parts


def fisher_study(config: Any, reps: int) -> dict[str, Any]:
    from jaxunc.studies.fisher import FisherConfig, run_fisher

    warm = FisherConfig(n_gen=(config.n_gen[0],), pseudo_experiments=256, outer=16)
    with Probe() as probe:
        run_fisher(warm, progress=False)  # warm-up: imports, backend, first compiles
    warmup_seconds = probe.wall
    print(f"  warm-up (n_gen={warm.n_gen}, small) {warmup_seconds:.1f} s")
    runs = []
    for rep in range(reps):
        with _Instrument() as instrument, CompileClock() as clock, Probe() as probe:
            result = run_fisher(config, progress=False)
        runs.append(
            {
                "seconds": probe.wall,
                "compile_seconds": clock.seconds,
                "inner_seconds": result.to_json()["runtime"]["seconds"],
                "probe": probe.as_dict(),
                "calls": instrument.calls,
                "I_gen": result.to_json()["I_gen"],
                "effective_sample_size": result.to_json()["effective_sample_size"],
            }
        )
        print(
            f"  rep {rep + 1}/{reps}  run_fisher {probe.wall:6.1f} s (compile "
            f"{clock.seconds:.1f} s; {probe.cores_used:.2f} cores; other processes "
            f"{probe.foreign_cores:.2f} cores)"
        )
    per_n_gen = []
    for i, n_gen in enumerate(config.n_gen):
        calls = [
            [c for c in r["calls"] if c["part"] == "generated_fisher_information"][i]
            for r in runs
        ]
        assert all(c["n_gen"] == n_gen for c in calls)
        row = {
            "n_gen": n_gen,
            "seconds": _median([c["seconds"] for c in calls]),
            "seconds_all": [c["seconds"] for c in calls],
            "compile_seconds": _median([c["compile"] for c in calls]),
            "proposals": calls[0]["proposals"],
            "ess": calls[0]["ess"],
            "min_ess": calls[0]["min_ess"],
            "I_gen": calls[0]["matrix"],
            "I_gen_stderr": calls[0]["stderr"],
        }
        per_n_gen.append(row)
    breakdowns = [_breakdown(r["calls"]) for r in runs]
    parts = {
        label: {
            "seconds": _median([b[label]["seconds"] for b in breakdowns]),
            "compile": _median([b[label]["compile"] for b in breakdowns]),
        }
        for label in breakdowns[0]
    }
    seconds = _median([r["seconds"] for r in runs])
    compile_seconds = _median([r["compile_seconds"] for r in runs])
    worst, contaminated = _flag([r["probe"] for r in runs])
    print("  generated_fisher_information (inside run_fisher, median):")
    print("    n_gen    seconds  compile  proposals        ESS   min ESS   I_gen")
    for row in per_n_gen:
        print(
            f"    {row['n_gen']:6d}  {row['seconds']:7.2f}  "
            f"{row['compile_seconds']:7.2f}  {row['proposals']:9d}  "
            f"{row['ess']:9.0f}  {row['min_ess']:8.0f}"
            f"   {row['I_gen'][0][0]:.2f} ± {row['I_gen_stderr'][0][0]:.2f}"
        )
    print("  run_fisher parts (median seconds, of which compile):")
    for label, value in parts.items():
        print(f"    {label:28s} {value['seconds']:6.1f}  ({value['compile']:.1f})")
    verdict = "met" if seconds < 60 else "NOT met"
    print(
        f"  run_fisher median {seconds:.1f} s, compile {compile_seconds:.1f} s "
        f"(target < 60 s: {verdict})"
    )
    return {
        "config": config.to_json(),
        "reps": reps,
        "warmup_seconds": warmup_seconds,
        "seconds": seconds,
        "seconds_all": [r["seconds"] for r in runs],
        "compile_seconds": compile_seconds,
        "compile_seconds_all": [r["compile_seconds"] for r in runs],
        "inner_seconds_all": [r["inner_seconds"] for r in runs],
        "generated_fisher": per_n_gen,
        "parts": parts,
        "probes": [r["probe"] for r in runs],
        "max_foreign_cores": worst,
        "contaminated": contaminated,
        "target_met": seconds < 60,
    }


# ----------------------------------------------------------------------------- part 3


def whole_process(reps: int, workdir: Path) -> dict[str, Any]:
    base = _jaxunc_command()
    check = subprocess.run([*base, "fisher", "--help"], capture_output=True, text=True)
    if check.returncode != 0:
        reason = (check.stderr or check.stdout).strip().splitlines()[-1:]
        print(f"  skipped: `jaxunc fisher --help` failed ({' '.join(reason)})")
        return {"skipped": True, "reason": " ".join(reason)}
    command = [*base, "fisher", "--no-plots", "--quiet", "--out", str(workdir)]
    times, probes = [], []
    for rep in range(reps):
        with Probe() as probe:
            proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"jaxunc fisher failed ({proc.returncode}):\n{proc.stdout}\n"
                f"{proc.stderr}"
            )
        times.append(probe.wall)
        probes.append(probe.as_dict())
        print(
            f"  run {rep + 1}/{reps}  {probe.wall:7.2f} s  ({probe.cores_used:.2f} "
            f"cores; other processes {probe.foreign_cores:.2f} cores)"
        )
    seconds = _median(times)
    worst, contaminated = _flag(probes)
    verdict = "met" if seconds < 60 else "NOT met"
    print(f"  median {seconds:.2f} s (target < 60 s: {verdict})")
    return {
        "skipped": False,
        "command": " ".join(command),
        "reps": reps,
        "seconds": seconds,
        "seconds_all": times,
        "probes": probes,
        "max_foreign_cores": worst,
        "contaminated": contaminated,
        "target_met": seconds < 60,
    }


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: smoke run")
    parser.add_argument("--events", type=int, default=None, help="part 1 events")
    parser.add_argument("--reps", type=int, default=None, help="part 1 reps")
    parser.add_argument("--fisher-reps", type=int, default=None, help="run_fisher")
    parser.add_argument("--process-reps", type=int, default=None)
    parser.add_argument(
        "--skip-process", action="store_true", help="skip the `jaxunc fisher` runs"
    )
    parser.add_argument("--json", type=Path, default=None, help="write all numbers")
    args = parser.parse_args(argv)
    from jaxunc.studies.fisher import FisherConfig

    events = args.events or (1_000_000 if args.quick else 10_000_000)
    reps = args.reps or (2 if args.quick else 5)
    fisher_reps = args.fisher_reps or (1 if args.quick else 3)
    process_reps = args.process_reps or (1 if args.quick else 3)
    config = (
        FisherConfig(n_gen=(10, 1000), outer=32, pseudo_experiments=500)
        if args.quick
        else FisherConfig()
    )

    started = time.perf_counter()
    info = machine_info()
    print("machine:", json.dumps(info))
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "machine": info}

    print(f"\n[1] per-event throughput, {events} events, median of {reps}")
    report["per_event"] = per_event_throughput(events, reps)

    print(f"\n[2] run_fisher (n_gen {config.n_gen}), median of {fisher_reps}")
    report["fisher_study"] = fisher_study(config, fisher_reps)

    print(f"\n[3] whole process `jaxunc fisher`, median of {process_reps}")
    if args.skip_process:
        print("  skipped (--skip-process)")
        report["whole_process"] = {"skipped": True, "reason": "--skip-process"}
    elif args.quick:
        print("  skipped (--quick: the command runs the full default study)")
        report["whole_process"] = {"skipped": True, "reason": "--quick"}
    else:
        with tempfile.TemporaryDirectory(prefix="bench_information-") as tmp:
            report["whole_process"] = whole_process(process_reps, Path(tmp) / "out")

    report["total_seconds"] = time.perf_counter() - started
    report["machine"]["load_average_at_end"] = os.getloadavg()
    ok = all(m["ok"] for m in report["per_event"]["methods"].values())
    sections = [
        *report["per_event"]["methods"].values(),
        report["fisher_study"],
        report["whole_process"],
    ]
    worst = max(s.get("max_foreign_cores", 0.0) for s in sections)
    report["max_foreign_cores"] = worst
    report["contaminated"] = worst > CONTAMINATION_CORES
    report["agreement_ok"] = ok

    print("\nsummary")
    for method, m in report["per_event"]["methods"].items():
        print(
            f"  {method:20s} jaxunc {_fmt_rate(m['jaxunc_events_per_second'])} "
            f"(with compile {_fmt_rate(m['jaxunc_events_per_second_with_compile'])})"
            f" vs numpy {_fmt_rate(m['numpy_events_per_second'])} -> "
            f"{m['ratio_compute']:.2f}x compute, {m['ratio_call']:.2f}x call; "
            f"compile {m['jaxunc_compile_seconds']:.2f} s"
        )
    f = report["fisher_study"]
    print(
        "  I_gen seconds per n_gen: "
        + ", ".join(f"{r['n_gen']}: {r['seconds']:.1f}" for r in f["generated_fisher"])
    )
    print(f"  run_fisher {f['seconds']:.1f} s (compile {f['compile_seconds']:.1f} s)")
    w = report["whole_process"]
    if w.get("skipped"):
        print(f"  jaxunc fisher: skipped ({w['reason']})")
    else:
        print(f"  jaxunc fisher whole process {w['seconds']:.1f} s")
    print(f"  agreement with exact Fisher: {'OK' if ok else 'FAILED'}")
    state = "CONTAMINATED" if report["contaminated"] else "clean"
    print(f"  other processes: max {worst:.2f} cores in a timed block ({state})")
    print(f"  total benchmark time {report['total_seconds']:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
        print(f"  wrote {args.json}")
    return 0 if ok else 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return float(value)


if __name__ == "__main__":
    sys.exit(main())
