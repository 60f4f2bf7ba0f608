"""NumPy reference of the Appendix-A Gaussian toy, the way it is done without jaxunc.

Float32 events from ``np.random.default_rng(seed)``, vectorised over
pseudo-experiments in chunks of a few million events; one process by default, or
``--processes N`` workers (``multiprocessing``, one share of the pseudo-experiments
and one spawned random stream each, moments merged at the end: the way to use every
core without jaxunc).  In each pseudo-experiment:
``n_train`` training events from N(mu, sigma); fit mean and std (ddof=0, maximum
likelihood); for each ``n_gen``, ``n_gen`` events from the truth and ``n_gen`` events
from the fitted Gaussian, and the sample mean of each.  Every event is generated and
transformed (no sufficient-statistics shortcut).  The spread over pseudo-experiments
(std, ddof=1) and its standard error come from streaming float64 moments with the
same formula as ``jaxunc.engine.moments_summary``.

This file deliberately does not import jax or jaxunc, so that whole-process timings
measure NumPy alone.

    python benchmarks/numpy_reference.py --pseudo-experiments 1000000 --out ref.json
    python benchmarks/numpy_reference.py --pseudo-experiments 1000000 --processes 2
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DEFAULT_EVENTS_PER_CHUNK", "run_reference"]

DEFAULT_EVENTS_PER_CHUNK = 2**22  # same target as jaxunc's engine: ~16 MiB of float32


# ----------------------------------------------------------------------------- moments
# Streaming count/mean/M2/M3/M4 (Chan et al. / Pébay 2008), float64, elementwise.


def _chunk_moments(values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Moments over axis 0 of ``values`` (items, *shape), as float64."""
    values = values.astype(np.float64)
    count = np.full(values.shape[1:], float(len(values)))
    mean = values.mean(axis=0)
    centered = values - mean
    squared = centered * centered
    return (
        count,
        mean,
        squared.sum(axis=0),
        (squared * centered).sum(axis=0),
        (squared * squared).sum(axis=0),
    )


Moments = tuple[np.ndarray, ...]


def _merge(a: Moments, b: Moments) -> Moments:
    na, mean_a, m2a, m3a, m4a = a
    nb, mean_b, m2b, m3b, m4b = b
    n = na + nb
    safe = np.maximum(n, 1.0)
    delta = mean_b - mean_a
    cross = na * nb
    mean = mean_a + delta * nb / safe
    m2 = m2a + m2b + delta**2 * cross / safe
    m3 = (
        m3a
        + m3b
        + delta**3 * cross * (na - nb) / safe**2
        + 3 * delta * (na * m2b - nb * m2a) / safe
    )
    m4 = (
        m4a
        + m4b
        + delta**4 * cross * (na**2 - cross + nb**2) / safe**3
        + 6 * delta**2 * (na**2 * m2b + nb**2 * m2a) / safe**2
        + 4 * delta * (na * m3b - nb * m3a) / safe
    )
    return n, mean, m2, m3, m4


def _summary(moments: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """Same formulas as ``jaxunc.engine.moments_summary``.

    std: ddof=1; Var(s²) ≈ (m₄ - s⁴ (n-3)/(n-1)) / n, SE(s) = SE(s²) / (2s).
    """
    n, mean, m2, _, m4 = moments
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = m2 / (n - 1)
        std = np.sqrt(variance)
        fourth = m4 / n
        var_of_variance = (fourth - variance**2 * (n - 3) / (n - 1)) / n
        std_stderr = np.sqrt(np.maximum(var_of_variance, 0.0)) / (2 * std)
        mean_stderr = std / np.sqrt(n)
    return {
        "mean": mean,
        "mean_stderr": mean_stderr,
        "std": std,
        "std_stderr": std_stderr,
    }


# ----------------------------------------------------------------------------- study


def events_per_pseudo_experiment(n_train: int, n_gen: tuple[int, ...]) -> int:
    """Training + generated + truth events (jaxunc counts the same)."""
    return n_train + 2 * sum(n_gen)


def default_chunk_size(pseudo_experiments: int, n_train: int, n_gen) -> int:
    per = events_per_pseudo_experiment(n_train, tuple(n_gen))
    return max(1, min(pseudo_experiments, DEFAULT_EVENTS_PER_CHUNK // per))


def _share_moments(
    pseudo_experiments: int,
    n_train: int,
    n_gen: tuple[int, ...],
    mu: float,
    sigma: float,
    rng: np.random.Generator,
    chunk_size: int,
) -> tuple[Moments, int]:
    """Streaming float64 moments of one share of the pseudo-experiments.

    Columns (1 + 2k,): the training mean, then the truth sample mean per n_gen, then
    the surrogate sample mean per n_gen.  Returns (moments, chunks).
    """
    dtype = np.float32
    mu32, sigma32 = dtype(mu), dtype(sigma)
    k = len(n_gen)
    # Reused buffers (``out=``): no fresh multi-MiB allocation per chunk and size.
    train_buffer = np.empty((chunk_size, n_train), dtype)
    buffers = {n: np.empty((chunk_size, n), dtype) for n in n_gen}
    moments = None
    done = 0
    chunks = 0
    while done < pseudo_experiments:
        c = min(chunk_size, pseudo_experiments - done)
        # column 0: training mean; 1..k: truth per n_gen; k+1..2k: surrogate per n_gen
        values = np.empty((c, 1 + 2 * k), np.float64)

        train = rng.standard_normal(out=train_buffer[:c], dtype=dtype)
        train *= sigma32
        train += mu32
        mu_hat = train.mean(axis=1, keepdims=True)
        sigma_hat = np.sqrt(np.square(train - mu_hat).mean(axis=1, keepdims=True))
        values[:, 0] = mu_hat[:, 0]

        for j, n in enumerate(n_gen):
            x = rng.standard_normal(out=buffers[n][:c], dtype=dtype)
            x *= sigma32
            x += mu32
            values[:, 1 + j] = x.mean(axis=1)

            x = rng.standard_normal(out=buffers[n][:c], dtype=dtype)
            x *= sigma_hat
            x += mu_hat
            values[:, 1 + k + j] = x.mean(axis=1)

        chunk = _chunk_moments(values)
        moments = chunk if moments is None else _merge(moments, chunk)
        done += c
        chunks += 1
    return moments, chunks


def _worker(job: tuple) -> tuple[Moments, int]:
    """One process's share: (P_share, n_train, n_gen, mu, sigma, SeedSequence, C)."""
    share, n_train, n_gen, mu, sigma, seed_sequence, chunk_size = job
    rng = np.random.default_rng(seed_sequence)
    return _share_moments(share, n_train, n_gen, mu, sigma, rng, chunk_size)


def shares(pseudo_experiments: int, processes: int) -> list[int]:
    """Near-equal split of the pseudo-experiments over processes (first ones +1)."""
    base, extra = divmod(pseudo_experiments, processes)
    return [base + (i < extra) for i in range(processes)]


def run_reference(
    pseudo_experiments: int = 100_000,
    n_train: int = 100,
    n_gen: tuple[int, ...] = (30, 100, 300, 1000),
    mu: float = 0.0,
    sigma: float = 1.0,
    seed: int = 0,
    chunk_size: int | None = None,
    processes: int = 1,
    start_method: str = "fork",
) -> dict[str, Any]:
    """Run the toy with NumPy; returns a summary dict shaped like jaxunc's summary.json.

    ``processes = 1``: one stream ``default_rng(seed)`` in this process.
    ``processes = p > 1``: the pseudo-experiments are split into p near-equal shares,
    each run in its own ``multiprocessing`` worker (``start_method``: ``fork``, the
    Linux default and the cheapest, for a process without threads; ``forkserver``
    from a process that has started JAX, whose threads make ``fork`` unsafe) with its
    own stream ``default_rng(SeedSequence(seed).spawn(p)[i])``; each worker returns
    its streaming moments and this process merges them with the same
    Chan/Pébay formulas (so the output reductions are identical; the random
    numbers differ from the one-process run, the statistics do not).

    ``truth``/``surrogate``: lists aligned with ``n_gen`` of mean, mean_stderr, std,
    std_stderr and predicted_std; ``training``: spread of the training-sample mean;
    ``runtime``: seconds (the loop, after imports; with p > 1 including the pool's
    start and the merge), events, events_per_second.
    """
    n_gen = tuple(int(n) for n in n_gen)
    if pseudo_experiments < 2:
        raise ValueError("pseudo_experiments must be >= 2")
    if n_train < 1 or not n_gen or min(n_gen) < 1:
        raise ValueError("n_train and every n_gen must be positive")
    if processes < 1 or processes > pseudo_experiments:
        raise ValueError("processes must be in 1..pseudo_experiments")
    split = shares(pseudo_experiments, processes)
    if chunk_size is None:
        chunk_size = default_chunk_size(split[0], n_train, n_gen)
    chunk_size = max(1, min(int(chunk_size), split[0]))
    k = len(n_gen)

    start = time.perf_counter()
    if processes == 1:
        rng = np.random.default_rng(seed)
        moments, chunks = _share_moments(
            pseudo_experiments, n_train, n_gen, mu, sigma, rng, chunk_size
        )
    else:
        streams = np.random.SeedSequence(seed).spawn(processes)
        jobs = [
            (share, n_train, n_gen, mu, sigma, stream, chunk_size)
            for share, stream in zip(split, streams, strict=True)
        ]
        with multiprocessing.get_context(start_method).Pool(processes) as pool:
            parts = pool.map(_worker, jobs, chunksize=1)
        moments, chunks = parts[0]
        for part, part_chunks in parts[1:]:
            moments = _merge(moments, part)
            chunks += part_chunks
    summary = _summary(moments)
    seconds = time.perf_counter() - start

    n_gen_array = np.asarray(n_gen, np.float64)
    predicted_truth = sigma / np.sqrt(n_gen_array)
    fitted_variance = sigma**2 * (n_train - 1) / n_train  # E[σ̂²], ddof=0
    predicted_surrogate = np.sqrt(sigma**2 / n_train + fitted_variance / n_gen_array)

    def lists(columns: slice, predicted: np.ndarray) -> dict[str, list[float]]:
        out = {name: summary[name][columns].tolist() for name in summary}
        out["predicted_std"] = predicted.tolist()
        return out

    events = pseudo_experiments * events_per_pseudo_experiment(n_train, n_gen)
    generator = "numpy.random.default_rng (PCG64), standard_normal float32"
    if processes > 1:
        generator += f"; SeedSequence(seed).spawn({processes}), one stream a process"
    return {
        "config": {
            "pseudo_experiments": pseudo_experiments,
            "n_train": n_train,
            "n_gen": list(n_gen),
            "mu": mu,
            "sigma": sigma,
            "fit": "mean-std",
            "ddof": 0,
            "seed": seed,
            "chunk_size": chunk_size,
            "processes": processes,
            "precision": "float32",
            "generator": generator,
        },
        "n_gen": list(n_gen),
        "truth": lists(slice(1, 1 + k), predicted_truth),
        "surrogate": lists(slice(1 + k, 1 + 2 * k), predicted_surrogate),
        "training": {
            "n_train": n_train,
            "std_of_sample_mean": float(summary["std"][0]),
            "std_of_sample_mean_stderr": float(summary["std_stderr"][0]),
            "predicted_std": sigma / math.sqrt(n_train),
        },
        "runtime": {
            "seconds": seconds,
            "events": events,
            "events_per_second": events / seconds if seconds > 0 else float("nan"),
            "events_per_pseudo_experiment": events_per_pseudo_experiment(
                n_train, n_gen
            ),
            "pseudo_experiments": pseudo_experiments,
            "chunk_size": chunk_size,
            "chunks": chunks,
            "processes": processes,
            "backend": "numpy",
            "numpy_version": np.__version__,
        },
    }


# ----------------------------------------------------------------------------- script


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N1,N2,..., got {text!r}") from None
    if not sizes or min(sizes) <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="NumPy reference of the Appendix-A Gaussian toy "
        "(mirrors `jaxunc toy --no-plots`)."
    )
    parser.add_argument("--pseudo-experiments", type=int, default=100_000, metavar="P")
    parser.add_argument("--n-train", type=int, default=100, metavar="N")
    parser.add_argument(
        "--n-gen", type=_sizes, default=(30, 100, 300, 1000), metavar="N1,N2,..."
    )
    parser.add_argument("--mu", type=float, default=0.0)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        metavar="C",
        help="pseudo-experiments per chunk (default: about 4M events per chunk)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="worker processes (default 1; 2 = both cores of this machine)",
    )
    parser.add_argument("--out", type=Path, default=None, metavar="FILE.json")
    parser.add_argument("--quiet", action="store_true", help="no summary table")
    args = parser.parse_args(argv)
    result = run_reference(
        args.pseudo_experiments,
        args.n_train,
        args.n_gen,
        args.mu,
        args.sigma,
        args.seed,
        args.chunk_size,
        args.processes,
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    if not args.quiet:
        t, s = result["truth"], result["surrogate"]
        print("n_gen  truth std            predicted  surrogate std        predicted")
        for i, n in enumerate(result["n_gen"]):
            print(
                f"{n:5d}  {t['std'][i]:.5f} ± {t['std_stderr'][i]:.5f}  "
                f"{t['predicted_std'][i]:.5f}    "
                f"{s['std'][i]:.5f} ± {s['std_stderr'][i]:.5f}  "
                f"{s['predicted_std'][i]:.5f}"
            )
        rt = result["runtime"]
        print(
            f"{rt['events']:.3g} events in {rt['seconds']:.2f} s "
            f"({rt['events_per_second']:.3g} events/s, numpy {np.__version__})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
