"""Benchmark: fit-bound toys, jaxunc's vmapped Newton fits vs per-toy iminuit, scipy.

Each pseudo-experiment draws N = 1000 events from N(μ=0, σ=1) (float32) and fits μ
and σ by unbinned maximum likelihood, starting from the same nominal point
(μ, σ) = (0.2, 1.3) in both implementations:

- **jaxunc**: ``MaximumLikelihood(Gaussian(), ..., use_closed_form=False,
  use_initial_params=False)`` (the generic autodiff Newton fit: no closed form and no
  data-driven start, which for the Gaussian *is* the closed form) inside
  ``run_pseudo_experiments`` (the engine: chunks, vmap, all local devices; this
  script asks for 2 host devices, one per core, unless ``XLA_FLAGS`` is set).
  Seconds exclude compilation, which is reported separately; the first run is a
  warm-up.
- **reference**: the loop users write today: for each toy,
  ``scipy.optimize.minimize(nll, x0, jac=True, method="BFGS")`` on a NumPy negative
  log-likelihood in (μ, log σ) with its analytic gradient, one toy at a time, in
  float64 on the same datasets (drawn by jaxunc from the same keys; drawing them is
  not counted against scipy).
- **iminuit** (what physicists fit with): for each toy ``Minuit(nll, mu=0.2,
  sigma=1.3)`` with ``errordef = Minuit.LIKELIHOOD``, σ limited to (0, ∞), then
  ``.migrad()`` (default strategy 1 and tolerance 0.1), on a vectorised NumPy
  -log L in (μ, σ) of the toy's events (float64, same datasets).  Two variants,
  both timed: MIGRAD's own numerical gradient (the usual way) and an analytic
  gradient (``grad=``); the speed-up target is checked against the faster one.

Agreement: on the first ``--reference-toys`` datasets the fitted (μ, log σ) of jaxunc
and of each reference must agree, per toy, within ``agreement_tolerance`` (derived
below from both convergence criteria and float32 rounding), and every MIGRAD
minimum must be valid; this is checked before any timing; exit status 1 if not.

Requires the benchmark extra: ``pip install ".[bench]"`` (scipy, iminuit).

    python benchmarks/bench_fits.py            # a few minutes on 2 cores
    python benchmarks/bench_fits.py --quick    # smoke run
    python benchmarks/bench_fits.py --json benchmarks/results-fits-DATE.json
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

import numpy as np

HERE = Path(__file__).resolve().parent
N_EVENTS = 1000
TRUTH = {"mu": 0.0, "sigma": 1.0}
START = {"mu": 0.2, "sigma": 1.3}
FREE = ("mu", "sigma")
GTOL = 1e-5  # scipy BFGS (its default): stop when max |∂(-log L)| <= GTOL
NEWTON_DECREMENT_FACTOR = 10  # jaxunc default: stop at g·H⁻¹·g/2 <= 10 eps
TERM_ROUNDINGS = 8  # roundings inside one event's Gaussian -log p and its gradient


# ------------------------------------------------------------------ NumPy reference


def gaussian_nll(v: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """-log L of N(μ, e^s) for events ``x`` and its gradient, v = (μ, s = log σ)."""
    mu, log_sigma = v
    z = (x - mu) * math.exp(-log_sigma)
    zz = float(np.dot(z, z))
    n = x.size
    value = 0.5 * zz + n * log_sigma + 0.5 * n * math.log(2 * math.pi)
    gradient = np.array([-z.sum() * math.exp(-log_sigma), n - zz])
    return value, gradient


def gaussian_nll_hessian(v: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Hessian of ``gaussian_nll`` in (μ, log σ)."""
    mu, log_sigma = v
    inv = math.exp(-log_sigma)
    z = (x - mu) * inv
    n = x.size
    cross = 2 * z.sum() * inv
    return np.array([[n * inv * inv, cross], [cross, 2 * float(np.dot(z, z))]])


def scipy_fit(x: np.ndarray, gtol: float = GTOL):
    """One toy: BFGS with the analytic gradient from START, in (μ, log σ)."""
    from scipy.optimize import minimize

    x0 = np.array([START["mu"], math.log(START["sigma"])])
    return minimize(
        gaussian_nll,
        x0,
        args=(x,),
        jac=True,
        method="BFGS",
        options={"gtol": gtol},
    )


IMINUIT_VARIANTS = ("numerical", "analytic")  # MIGRAD's gradient: its own / grad=


def gaussian_nll_sigma(x: np.ndarray):
    """(nll, grad) of N(μ, σ) for events ``x`` as functions of (μ, σ): the cost a
    physicist hands to Minuit, vectorised over the events with NumPy."""
    n = x.size
    constant = 0.5 * n * math.log(2 * math.pi)

    def nll(mu: float, sigma: float) -> float:
        z = (x - mu) / sigma
        return 0.5 * float(np.dot(z, z)) + n * math.log(sigma) + constant

    def grad(mu: float, sigma: float) -> np.ndarray:
        z = (x - mu) / sigma
        return np.array([-z.sum() / sigma, (n - float(np.dot(z, z))) / sigma])

    return nll, grad


def iminuit_fit(x: np.ndarray, variant: str = "numerical"):
    """One toy: MIGRAD from START with σ limited to (0, ∞); returns the Minuit."""
    from iminuit import Minuit

    nll, grad = gaussian_nll_sigma(x)
    minuit = Minuit(
        nll,
        mu=START["mu"],
        sigma=START["sigma"],
        grad=grad if variant == "analytic" else None,
    )
    minuit.errordef = Minuit.LIKELIHOOD
    minuit.limits["sigma"] = (0.0, None)
    minuit.migrad()
    return minuit


# ----------------------------------------------------------------------- tolerance


def agreement_tolerance(
    v_reference: np.ndarray,
    x: np.ndarray,
    eps: float,
    decrement_tolerance: float,
    roundings: int,
) -> float:
    """Largest allowed ‖v_jaxunc - v_reference‖_H for one toy (H: the float64 Hessian
    of -log L at the reference; the H-norm counts statistical standard errors).

    * jaxunc's Newton stops when the decrement g·H⁻¹·g/2 ≤ ``decrement_tolerance``;
      near the optimum the distance to it is √(g·H⁻¹·g) ≤ √(2 × tolerance);
    * the reference stops at a gradient g_ref, evaluated here exactly: its distance
      to the optimum is √(g_ref·H⁻¹·g_ref);
    * jaxunc's gradient is a float32 sum: each component is off by at most
      e_k = (roundings) · u · Σ_i |∂ℓ_i/∂v_k| (u = eps/2; ``roundings``: the pairwise
      sum's depth plus those inside one term), which moves the point where it
      vanishes by at most √(e·|H⁻¹|·e);
    * storing v in the working precision rounds each component by u·|v_k|, and σ is
      returned as exp(s) (one more u in log σ).
    """
    gradient = gaussian_nll(v_reference, x)[1]
    hessian = gaussian_nll_hessian(v_reference, x)
    inverse = np.linalg.inv(hessian)
    newton = math.sqrt(2 * decrement_tolerance)
    reference = math.sqrt(max(float(gradient @ inverse @ gradient), 0.0))
    mu, log_sigma = v_reference
    z = (x - mu) * math.exp(-log_sigma)
    per_event = np.abs(np.stack([z * math.exp(-log_sigma), 1 - z * z]))
    u = eps / 2
    error = roundings * u * per_event.sum(axis=1)
    rounding = math.sqrt(float(error @ np.abs(inverse) @ error))
    stored = u * (np.abs(v_reference) + np.array([0.0, 1.0]))
    storage = math.sqrt(float(stored @ np.abs(hessian) @ stored))
    return newton + reference + rounding + storage


def distance(v_a: np.ndarray, v_b: np.ndarray, x: np.ndarray) -> float:
    """‖v_a - v_b‖_H with H the Hessian of -log L at v_b."""
    delta = np.asarray(v_a, np.float64) - np.asarray(v_b, np.float64)
    return math.sqrt(max(float(delta @ gaussian_nll_hessian(v_b, x) @ delta), 0.0))


# -------------------------------------------------------------------------- jaxunc


def jaxunc_setup(precision: str = "float32"):
    """(pseudo_experiment, dataset, fit) for the benchmark's toys."""
    import jax.numpy as jnp

    from jaxunc import Gaussian, MaximumLikelihood

    model = Gaussian()
    dtype = jnp.dtype(precision)
    theta = {k: jnp.asarray(v, dtype) for k, v in TRUTH.items()}
    estimator = MaximumLikelihood(
        model, START, FREE, use_initial_params=False, use_closed_form=False
    )

    def dataset(key):
        return model.sample(key, theta, N_EVENTS)

    def pseudo_experiment(key):
        return {"fit": estimator.estimate(dataset(key))}

    return pseudo_experiment, dataset, estimator.fit


def jaxunc_run(pseudo_experiment, root, toys: int) -> dict[str, Any]:
    from jaxunc.engine import run_pseudo_experiments

    result = run_pseudo_experiments(
        pseudo_experiment,
        root,
        toys,
        events_per_pseudo_experiment=N_EVENTS,
        progress=False,
    )
    fit = result.outputs["fit"]
    return {
        "seconds": result.stats.seconds,
        "compile_seconds": result.stats.compile_seconds,
        "toys_per_second": toys / result.stats.seconds,
        "chunk_size": result.stats.chunk_size,
        "device_count": result.stats.device_count,
        "failures": fit["failures"].tolist(),
        "mean": fit["mean"].tolist(),
        "std": fit["std"].tolist(),
    }


def reference_data(dataset, fit, root, toys: int):
    """The first ``toys`` datasets (float64 copies) and jaxunc's fits of them, by
    the engine's keys (pseudo-experiment i gets fold_in(root, i))."""
    import jax
    import jax.numpy as jnp

    from jaxunc.engine import pseudo_experiment_key

    keys = jax.vmap(lambda i: pseudo_experiment_key(root, i))(
        jnp.arange(toys, dtype=jnp.uint32)
    )

    def one(key):
        x = dataset(key)
        result = fit(x)
        return x, result.theta, result.converged, result.iterations

    x, theta, converged, iterations = jax.jit(jax.vmap(one))(keys)
    v = np.stack(
        [
            np.asarray(theta["mu"], np.float64),
            np.log(np.asarray(theta["sigma"], np.float64)),
        ],
        axis=1,
    )
    return (
        np.asarray(x, np.float64),
        v,
        np.asarray(converged),
        np.asarray(iterations),
    )


def scipy_loop(datasets: np.ndarray) -> tuple[float, np.ndarray, list[int], list]:
    """Fit every dataset with ``scipy_fit``; (seconds, fitted v, iterations, the
    messages of the fits scipy flags as unsuccessful)."""
    start = time.perf_counter()
    results = [scipy_fit(x) for x in datasets]
    seconds = time.perf_counter() - start
    return (
        seconds,
        np.stack([r.x for r in results]),
        [int(r.nit) for r in results],
        [(i, r.message) for i, r in enumerate(results) if not r.success],
    )


def iminuit_loop(
    datasets: np.ndarray, variant: str
) -> tuple[float, np.ndarray, list[int], list[int]]:
    """Fit every dataset with ``iminuit_fit``; (seconds, fitted v = (μ, log σ),
    function calls per fit, indices of the fits whose minimum is not valid)."""
    start = time.perf_counter()
    results = [iminuit_fit(x, variant) for x in datasets]
    seconds = time.perf_counter() - start
    v = np.array(
        [[m.values["mu"], math.log(m.values["sigma"])] for m in results], np.float64
    )
    return (
        seconds,
        v,
        [int(m.nfcn) for m in results],
        [i for i, m in enumerate(results) if not m.valid],
    )


def check_agreement(
    label: str,
    datasets: np.ndarray,
    v_jax: np.ndarray,
    v_ref: np.ndarray,
    roundings: int,
    eps: float,
) -> dict[str, Any]:
    """Per toy ‖v_jax - v_ref‖_H against ``agreement_tolerance`` (reference: v_ref)."""
    distances, tolerances = [], []
    for x, a, b in zip(datasets, v_jax, v_ref, strict=True):
        distances.append(distance(a, b, x))
        tolerances.append(
            agreement_tolerance(b, x, eps, NEWTON_DECREMENT_FACTOR * eps, roundings)
        )
    distances, tolerances = np.array(distances), np.array(tolerances)
    max_abs = np.abs(v_jax - v_ref).max(axis=0)
    ok = bool(np.all(distances <= tolerances))
    print(
        f"  {label}: max |Δμ| = {max_abs[0]:.2e}, max |Δ log σ| = {max_abs[1]:.2e}; "
        f"H-norm distance max {distances.max():.2e} vs tolerance min "
        f"{tolerances.min():.2e} (ratio max {(distances / tolerances).max():.3f})"
        f" -> {'OK' if ok else 'FAILED'}"
    )
    return {
        "ok": ok,
        "max_abs_delta_mu": max_abs[0],
        "max_abs_delta_log_sigma": max_abs[1],
        "max_distance_over_tolerance": float((distances / tolerances).max()),
        "max_distance": float(distances.max()),
        "min_tolerance": float(tolerances.min()),
    }


# ----------------------------------------------------------------------------- main


TARGET_SCIPY = 100.0  # issue 2: jaxunc toys/s at least 100x the scipy loop's
TARGET_IMINUIT = 50.0  # issue 15: at least 50x the (faster) iminuit MIGRAD loop's


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--toys", type=int, default=None, help="jaxunc toys per run")
    parser.add_argument(
        "--reference-toys",
        type=int,
        default=None,
        help="toys in the scipy and iminuit loops",
    )
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write all numbers")
    args = parser.parse_args(argv)
    toys = args.toys or (8192 if args.quick else 65536)
    reference_toys = args.reference_toys or (128 if args.quick else 512)
    reps = args.reps or (2 if args.quick else 3)

    import iminuit
    import jax
    import jax.numpy as jnp
    import scipy

    sys.path.insert(0, str(HERE))
    from bench_toy import machine_info

    started_utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    info = machine_info()
    info["proc_loadavg_at_start"] = _loadavg()
    info["scipy"] = scipy.__version__
    info["iminuit"] = iminuit.__version__
    print("machine:", json.dumps(info))
    root = jax.random.key(2026)
    pseudo_experiment, dataset, fit = jaxunc_setup()

    print(f"\n[a] agreement on {reference_toys} toys (same datasets), before timing")
    datasets, v_jax, converged, iterations = reference_data(
        dataset, fit, root, reference_toys
    )
    # BFGS sometimes stops with "precision loss" just above gtol; the tolerance
    # uses the gradient it actually reached, so such toys still count.
    _, v_ref, scipy_iterations, scipy_flagged = scipy_loop(datasets)
    eps = float(jnp.finfo(jnp.float32).eps)
    from jaxunc.summation import pairwise_sum_depth

    roundings = pairwise_sum_depth(N_EVENTS) + TERM_ROUNDINGS
    worst_gradient = max(
        (
            np.abs(gaussian_nll(v_ref[i], datasets[i])[1]).max()
            for i, _ in scipy_flagged
        ),
        default=0.0,
    )
    print(
        f"  jaxunc converged: {bool(converged.all())}; Newton steps "
        f"{np.bincount(iterations).tolist()} (count by steps); scipy flagged "
        f"{len(scipy_flagged)}/{len(datasets)} fits (max |gradient| there "
        f"{worst_gradient:.2g}: {sorted({m for _, m in scipy_flagged})}), "
        f"BFGS iterations median {statistics.median(scipy_iterations)}"
    )
    agreement: dict[str, Any] = {
        "jaxunc_converged": bool(converged.all()),
        "newton_steps_histogram": np.bincount(iterations).tolist(),
        "scipy": {
            **check_agreement("scipy", datasets, v_jax, v_ref, roundings, eps),
            "bfgs_iterations_median": statistics.median(scipy_iterations),
            "flagged": [[i, m] for i, m in scipy_flagged],
            "flagged_max_abs_gradient": worst_gradient,
        },
    }
    for variant in IMINUIT_VARIANTS:
        _, v_min, calls, invalid = iminuit_loop(datasets, variant)
        result = check_agreement(
            f"iminuit ({variant} gradient)", datasets, v_jax, v_min, roundings, eps
        )
        result["ok"] = result["ok"] and not invalid
        result["invalid_minima"] = invalid
        result["function_calls_median"] = statistics.median(calls)
        print(
            f"    MIGRAD: {len(invalid)} invalid minima, median "
            f"{statistics.median(calls)} function calls"
        )
        agreement[f"iminuit_{variant}"] = result
    agree = agreement["jaxunc_converged"] and all(
        agreement[k]["ok"] for k in agreement if k.startswith(("scipy", "iminuit"))
    )
    if not agree:
        print("\nagreement FAILED: no timing")
        return 1

    print(f"\n[b] throughput: jaxunc {toys} toys/run vs loops over {reference_toys}")
    warm = jaxunc_run(pseudo_experiment, root, toys)
    print(f"  warm-up: compile {warm['compile_seconds']:.2f} s")
    references = {
        "scipy": lambda: scipy_loop(datasets)[0],
        **{
            f"iminuit_{v}": (lambda v=v: iminuit_loop(datasets, v)[0])
            for v in IMINUIT_VARIANTS
        },
    }
    for once in references.values():  # warm-up (imports, first calls)
        once()
    jax_runs: list[dict[str, Any]] = []
    rates: dict[str, list[float]] = {name: [] for name in references}
    for rep in range(reps):  # alternate, so slow phases of a shared machine hit all
        run = jaxunc_run(pseudo_experiment, root, toys)
        jax_runs.append(run)
        for name, once in references.items():
            rates[name].append(reference_toys / once())
        print(
            f"  rep {rep}: jaxunc {run['toys_per_second']:.4g} toys/s "
            f"(compile {run['compile_seconds']:.2f} s, {run['device_count']} "
            f"device(s)), "
            + ", ".join(f"{n} {r[-1]:.4g} toys/s" for n, r in rates.items())
        )
    jax_all = [r["toys_per_second"] for r in jax_runs]
    jax_rate = statistics.median(jax_all)
    medians = {name: statistics.median(r) for name, r in rates.items()}
    ratios = {name: jax_rate / rate for name, rate in medians.items()}
    per_rep = {
        name: [a / b for a, b in zip(jax_all, r, strict=True)]
        for name, r in rates.items()
    }
    fastest_iminuit = max(
        (n for n in medians if n.startswith("iminuit")), key=medians.__getitem__
    )
    met_scipy = ratios["scipy"] >= TARGET_SCIPY
    met_iminuit = ratios[fastest_iminuit] >= TARGET_IMINUIT
    print(f"\nsummary (one run; load {info['proc_loadavg_at_start']} -> {_loadavg()})")
    print(f"  jaxunc {jax_rate:.4g} toys/s (median of {reps})")
    for name in references:
        print(
            f"  {name:18s} {medians[name]:8.4g} toys/s -> jaxunc {ratios[name]:6.1f}x"
            f" (per rep {min(per_rep[name]):.1f}-{max(per_rep[name]):.1f})"
        )
    print(
        f"  targets: >= {TARGET_IMINUIT:g}x the faster iminuit loop ({fastest_iminuit})"
        f": {'met' if met_iminuit else 'NOT met'}; >= {TARGET_SCIPY:g}x scipy: "
        f"{'met' if met_scipy else 'NOT met'}; compile {warm['compile_seconds']:.2f} s"
        " (warm-up run; later runs hit the cache); agreement OK"
    )
    if args.json is not None:
        report = {
            "date": time.strftime("%Y-%m-%d"),
            "started_utc": started_utc,
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                **info,
                "load_average_at_end": os.getloadavg(),
                "proc_loadavg_at_end": _loadavg(),
            },
            "workload": {
                "events_per_toy": N_EVENTS,
                "truth": TRUTH,
                "start": START,
                "precision": "float32",
                "jaxunc_toys_per_run": toys,
                "reference_toys": reference_toys,
                "reps": reps,
                "scipy": {"method": "BFGS", "jac": "analytic", "gtol": GTOL},
                "iminuit": {
                    "call": "Minuit(nll, mu, sigma).migrad()",
                    "errordef": "LIKELIHOOD (0.5)",
                    "limits": {"sigma": [0.0, None]},
                    "strategy": 1,
                    "tol": 0.1,
                    "variants": list(IMINUIT_VARIANTS),
                },
            },
            "jaxunc_runs": jax_runs,
            "jaxunc_warmup_compile_seconds": warm["compile_seconds"],
            "jaxunc_toys_per_second_median": jax_rate,
            "reference_toys_per_second": rates,
            "reference_toys_per_second_median": medians,
            "ratios": ratios,
            "ratios_per_rep": per_rep,
            "fastest_iminuit": fastest_iminuit,
            "target_iminuit": {"ratio": TARGET_IMINUIT, "met": met_iminuit},
            "target_scipy": {"ratio": TARGET_SCIPY, "met": met_scipy},
            # keys of earlier result files
            "scipy_toys_per_second": rates["scipy"],
            "scipy_toys_per_second_median": medians["scipy"],
            "ratio": ratios["scipy"],
            "agreement": {"ok": agree, **agreement},
        }
        args.json.write_text(json.dumps(report, indent=2, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    # One XLA host device per core, so the engine shards chunks over both cores
    # (must be set before jax is imported; an explicit XLA_FLAGS wins).
    os.environ.setdefault(
        "XLA_FLAGS", f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
    )
    sys.exit(main())
