"""The pseudo-experiment engine: keys, chunks, devices and streaming reductions.

A pseudo-experiment is a pure function ``key -> {name: Estimate}``.  The engine runs
``P`` of them.  Pseudo-experiment ``i`` always gets ``jax.random.fold_in(root, i)``,
whatever the chunk size or device count, and the host-side reductions (moments and
histograms) are computed over fixed blocks of ``REDUCTION_BLOCK`` consecutive
pseudo-experiments merged in index order, so results are identical bit for bit for any
chunk size.  Events never leave the device: a chunk returns only per-pseudo-experiment
estimates, so memory is bounded by the chunk, not by ``P × N_gen``.

``chain_pseudo_experiment`` builds the paper's chain θ → D_train → fit → D_gen →
estimate (plus the truth-only reference at each N_gen) for any model, surrogate and
estimator.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxunc.estimators import Estimate
from jaxunc.models import check_params

__all__ = [
    "REDUCTION_BLOCK",
    "Chain",
    "EngineResult",
    "Moments",
    "RunStats",
    "chain_pseudo_experiment",
    "pseudo_experiment_key",
    "run_chain",
    "run_pseudo_experiments",
]

REDUCTION_BLOCK = 1024
"""Pseudo-experiments per reduction block (fixes the floating-point summation order)."""

VECTOR_WIDTH = 256
"""Pseudo-experiments per vectorised step.  A chunk runs ``lax.map`` over steps of this
fixed width, so every pseudo-experiment is computed by the same compiled loop body
whatever the chunk size: XLA's code for a vmapped reduction (and so its rounding)
depends on the batch size, the loop body does not change with the trip count."""

MAX_PSEUDO_EXPERIMENTS = 2**32
DEFAULT_EVENTS_PER_CHUNK = 2**22  # ~16 MiB of float32 per chunk: stays in cache on CPU


def pseudo_experiment_key(root: jax.Array, index: int | jax.Array) -> jax.Array:
    """Key of pseudo-experiment ``index``: ``fold_in(root, index)``."""
    return jax.random.fold_in(root, index)


# ----------------------------------------------------------------------------- moments


class Moments(NamedTuple):
    """Count, mean and central moment sums M2, M3, M4 (float64, any common shape)."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    m3: np.ndarray
    m4: np.ndarray


def moments_init(shape: tuple[int, ...]) -> Moments:
    zeros = np.zeros(shape, np.float64)
    return Moments(zeros, zeros, zeros, zeros, zeros)


def block_moments(values: np.ndarray, mask: np.ndarray) -> Moments:
    """Moments of each block: ``values`` (blocks, items, *shape), ``mask`` same
    shape."""
    values = np.where(mask, values.astype(np.float64), 0.0)
    count = mask.sum(axis=1).astype(np.float64)
    mean = values.sum(axis=1) / np.maximum(count, 1.0)
    centered = np.where(mask, values - mean[:, None], 0.0)
    squared = centered * centered
    return Moments(
        count,
        mean,
        squared.sum(axis=1),
        (squared * centered).sum(axis=1),
        (squared * squared).sum(axis=1),
    )


def moments_merge(a: Moments, b: Moments) -> Moments:
    """Combine two sets of moments (Chan et al. / Pébay 2008), elementwise."""
    count = a.count + b.count
    safe = np.maximum(count, 1.0)
    delta = b.mean - a.mean
    cross = a.count * b.count
    mean = a.mean + delta * b.count / safe
    m2 = a.m2 + b.m2 + delta**2 * cross / safe
    m3 = (
        a.m3
        + b.m3
        + delta**3 * cross * (a.count - b.count) / safe**2
        + 3 * delta * (a.count * b.m2 - b.count * a.m2) / safe
    )
    m4 = (
        a.m4
        + b.m4
        + delta**4 * cross * (a.count**2 - cross + b.count**2) / safe**3
        + 6 * delta**2 * (a.count**2 * b.m2 + b.count**2 * a.m2) / safe**2
        + 4 * delta * (a.count * b.m3 - b.count * a.m3) / safe
    )
    return Moments(count, mean, m2, m3, m4)


def moments_summary(m: Moments) -> dict[str, np.ndarray]:
    """Mean, standard deviation (ddof=1) and their Monte Carlo standard errors.

    ``std_stderr`` uses Var(s²) ≈ (m₄ - s⁴ (n-3)/(n-1)) / n and SE(s) = SE(s²) / (2s),
    valid for any distribution with a finite fourth moment.
    """
    n = m.count
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = m.m2 / (n - 1)
        std = np.sqrt(variance)
        fourth = m.m4 / n
        var_of_variance = (fourth - variance**2 * (n - 3) / (n - 1)) / n
        std_stderr = np.sqrt(np.maximum(var_of_variance, 0.0)) / (2 * std)
        mean_stderr = std / np.sqrt(n)
    return {
        "count": n,
        "mean": m.mean,
        "mean_stderr": mean_stderr,
        "std": std,
        "std_stderr": std_stderr,
    }


# -------------------------------------------------------------------------- accumulator


@dataclasses.dataclass
class _Accumulator:
    """Host-side streaming reduction of one output (moments, failures, histogram).

    Values arrive in pseudo-experiment order; they are reduced in blocks of
    ``REDUCTION_BLOCK`` so the summation order depends only on pseudo-experiment
    indices, never on how they were chunked.
    """

    shape: tuple[int, ...]
    edges: np.ndarray | None
    moments: Moments = None
    failures: np.ndarray = None
    histogram: np.ndarray = None
    pending_values: np.ndarray = None
    pending_mask: np.ndarray = None

    def __post_init__(self) -> None:
        self.moments = moments_init(self.shape)
        self.failures = np.zeros(self.shape, np.int64)
        if self.edges is not None:
            self.histogram = np.zeros((*self.shape, len(self.edges) + 1), np.int64)
        self.pending_values = np.zeros((0, *self.shape), np.float32)
        self.pending_mask = np.zeros((0, *self.shape), bool)

    def update(self, values: np.ndarray, ok: np.ndarray) -> None:
        mask = np.broadcast_to(
            ok.reshape(ok.shape + (1,) * (values.ndim - ok.ndim)), values.shape
        )
        mask = mask & np.isfinite(values)
        self.failures += (~mask).sum(axis=0)
        if self.edges is not None:
            self._histogram_update(values, mask)
        self.pending_values = np.concatenate([self.pending_values, values])
        self.pending_mask = np.concatenate([self.pending_mask, mask])
        self._reduce_full_blocks(final=False)

    def _histogram_update(self, values: np.ndarray, mask: np.ndarray) -> None:
        lanes = math.prod(self.shape)
        bins = len(self.edges) + 1  # underflow, interior bins, overflow
        index = np.searchsorted(
            self.edges, values.reshape(len(values), lanes), side="right"
        )
        flat = (np.arange(lanes) * bins)[None, :] + index
        counts = np.bincount(
            flat[mask.reshape(len(values), lanes)], minlength=lanes * bins
        )
        self.histogram += counts.reshape(*self.shape, bins)

    def _reduce_full_blocks(self, final: bool) -> None:
        n_blocks, remainder = divmod(len(self.pending_values), REDUCTION_BLOCK)
        if final and remainder:
            blocks = [(n_blocks * REDUCTION_BLOCK, len(self.pending_values))]
        else:
            blocks = []
        used = n_blocks * REDUCTION_BLOCK
        if n_blocks:
            shaped = (n_blocks, REDUCTION_BLOCK, *self.shape)
            per_block = block_moments(
                self.pending_values[:used].reshape(shaped),
                self.pending_mask[:used].reshape(shaped),
            )
            for b in range(n_blocks):
                self.moments = moments_merge(
                    self.moments, Moments(*(f[b] for f in per_block))
                )
        for start, stop in blocks:
            tail = block_moments(
                self.pending_values[None, start:stop],
                self.pending_mask[None, start:stop],
            )
            self.moments = moments_merge(self.moments, Moments(*(f[0] for f in tail)))
            used = stop
        self.pending_values = self.pending_values[used:]
        self.pending_mask = self.pending_mask[used:]

    def finish(self) -> dict[str, np.ndarray]:
        self._reduce_full_blocks(final=True)
        summary = moments_summary(self.moments)
        summary["failures"] = self.failures
        if self.edges is not None:
            summary["histogram"] = self.histogram[..., 1:-1]
            summary["underflow"] = self.histogram[..., 0]
            summary["overflow"] = self.histogram[..., -1]
            summary["edges"] = self.edges
        return summary


# ----------------------------------------------------------------------------- engine


class RunStats(NamedTuple):
    """Throughput of a run (compile time reported separately, not included in
    seconds)."""

    seconds: float
    compile_seconds: float
    pseudo_experiments: int
    events: int
    events_per_second: float
    chunk_size: int
    chunks: int
    backend: str
    device_count: int
    jax_version: str


class EngineResult(NamedTuple):
    """``outputs[name]``: dict of numpy arrays (count, mean, mean_stderr, std,
    std_stderr, failures, and histogram/underflow/overflow/edges where edges were
    given)."""

    outputs: dict[str, dict[str, np.ndarray]]
    stats: RunStats


def _check_positive_int(name: str, value: Any, upper: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive integer (got {value!r})")
    if upper is not None and value > upper:
        raise ValueError(f"{name} must be <= {upper} (got {value!r})")
    return int(value)


def default_chunk_size(
    n_pseudo: int, events_per_pseudo_experiment: int, devices: int = 1
) -> int:
    """About 2**22 events per chunk, at most ``n_pseudo`` (before rounding up to whole
    vectorised steps per device)."""
    size = max(1, DEFAULT_EVENTS_PER_CHUNK // max(events_per_pseudo_experiment, 1))
    return min(size, n_pseudo)


def run_pseudo_experiments(
    pseudo_experiment: Callable[[jax.Array], Mapping[str, Estimate]],
    key: jax.Array,
    n_pseudo: int,
    *,
    chunk_size: int | None = None,
    events_per_pseudo_experiment: int = 0,
    histogram_edges: Mapping[str, np.ndarray] | None = None,
    progress: bool = True,
    devices: Sequence[jax.Device] | None = None,
    description: str = "pseudo-experiments",
) -> EngineResult:
    """Run ``n_pseudo`` pseudo-experiments and reduce their estimates on the fly.

    Args:
      pseudo_experiment: ``key -> {name: Estimate(value (..., d), ok (...))}``, pure.
      key: root key; pseudo-experiment ``i`` gets ``fold_in(key, i)``.
      n_pseudo: number of pseudo-experiments, 1 ≤ P < 2**32.
      chunk_size: pseudo-experiments per compiled call (default: about 2**22 events);
        rounded up to a multiple of ``VECTOR_WIDTH`` × device count; the last chunk is
        padded (its padding is computed and discarded: one compilation per run).
      events_per_pseudo_experiment: for the throughput report only.
      histogram_edges: optional bin edges per output name (histograms of the estimates).
      progress: show a progress bar on a terminal for runs longer than a second.
      devices: devices to shard chunks over (default: all local devices).

    Returns an ``EngineResult``.
    """
    from tqdm.auto import tqdm

    n_pseudo = _check_positive_int("n_pseudo", n_pseudo, MAX_PSEUDO_EXPERIMENTS - 1)
    devices = list(jax.local_devices() if devices is None else devices)
    if chunk_size is None:
        chunk_size = default_chunk_size(
            n_pseudo, events_per_pseudo_experiment, len(devices)
        )
    chunk_size = _check_positive_int("chunk_size", chunk_size)
    step = VECTOR_WIDTH * len(devices)
    chunk_size = -(-chunk_size // step) * step
    mesh = Mesh(np.array(devices), ("pseudo_experiments",))
    sharding = NamedSharding(mesh, PartitionSpec("pseudo_experiments", None))

    def chunk(root: jax.Array, start: jax.Array) -> dict[str, Estimate]:
        offsets = jnp.arange(chunk_size, dtype=jnp.uint32).reshape(-1, VECTOR_WIDTH)
        indices = jax.lax.with_sharding_constraint(start + offsets, sharding)
        keys = jax.vmap(
            jax.vmap(pseudo_experiment_key, in_axes=(None, 0)), in_axes=(None, 0)
        )(root, indices)
        outputs = jax.lax.map(jax.vmap(pseudo_experiment), keys)
        return jax.tree_util.tree_map(
            lambda a: a.reshape(chunk_size, *a.shape[2:]), outputs
        )

    compile_start = time.perf_counter()
    compiled = jax.jit(chunk).lower(key, jnp.uint32(0)).compile()
    compile_seconds = time.perf_counter() - compile_start

    n_chunks = -(-n_pseudo // chunk_size)
    accumulators: dict[str, _Accumulator] = {}
    edges = dict(histogram_edges or {})
    bar = tqdm(
        total=n_pseudo,
        desc=description,
        unit="PE",
        disable=None if progress else True,
        delay=1.0,
        mininterval=0.5,
    )
    start_time = time.perf_counter()
    in_flight = compiled(key, jnp.uint32(0))
    for index in range(n_chunks):
        current = in_flight
        if index + 1 < n_chunks:  # dispatch the next chunk before reducing this one
            in_flight = compiled(key, jnp.uint32((index + 1) * chunk_size))
        valid = min(chunk_size, n_pseudo - index * chunk_size)
        host = jax.device_get(current)
        for name, estimate in host.items():
            values = np.asarray(estimate.value)[:valid]
            ok = np.asarray(estimate.ok)[:valid]
            if name not in accumulators:
                accumulators[name] = _Accumulator(
                    values.shape[1:], _as_edges(edges.get(name))
                )
            accumulators[name].update(values, ok)
        bar.update(valid)
    outputs = {name: acc.finish() for name, acc in accumulators.items()}
    seconds = time.perf_counter() - start_time
    bar.close()
    events = n_pseudo * events_per_pseudo_experiment
    stats = RunStats(
        seconds=seconds,
        compile_seconds=compile_seconds,
        pseudo_experiments=n_pseudo,
        events=events,
        events_per_second=events / seconds if seconds > 0 else float("nan"),
        chunk_size=chunk_size,
        chunks=n_chunks,
        backend=devices[0].platform,
        device_count=len(devices),
        jax_version=jax.__version__,
    )
    return EngineResult(outputs, stats)


def _as_edges(edges: Any) -> np.ndarray | None:
    if edges is None:
        return None
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(
            "histogram edges must be a 1-D increasing array of >= 2 values"
        )
    return edges


# ---------------------------------------------------------------------------- the chain


@dataclasses.dataclass(frozen=True, eq=False)
class Chain:
    """The paper's chain θ → D_train → surrogate → D_gen → estimate.

    Attributes:
      model: true simulator (``sample``/``log_prob``).
      theta: true parameters (pytree, usually a dict).
      surrogate: ``fit(key, data)``/``sample(key, params, n)``.
      estimator: ``estimate(x) -> Estimate``.
      n_train: training events per pseudo-experiment.
      n_gen: generated-sample sizes; every one is drawn from the same fitted surrogate.
      truth: also estimate on ``n_gen`` fresh events from the true model (reference).
    """

    model: Any
    theta: Any
    surrogate: Any
    estimator: Any
    n_train: int
    n_gen: tuple[int, ...]
    truth: bool = True

    def __post_init__(self) -> None:
        _check_positive_int("n_train", self.n_train)
        if isinstance(self.n_gen, (int, np.integer)) or len(self.n_gen) == 0:
            raise ValueError(
                f"n_gen must be a non-empty sequence of sizes (got {self.n_gen!r})"
            )
        for value in self.n_gen:
            _check_positive_int("n_gen", value)
        object.__setattr__(self, "n_gen", tuple(int(v) for v in self.n_gen))
        minimum = getattr(self.surrogate, "min_train", 1)
        if self.n_train < minimum:
            raise ValueError(
                f"n_train must be >= {minimum} to fit this surrogate "
                f"(got {self.n_train})"
            )
        check_params(self.model, self.theta)

    @property
    def events_per_pseudo_experiment(self) -> int:
        """Events generated per pseudo-experiment (training + generated + truth)."""
        return self.n_train + sum(self.n_gen) * (2 if self.truth else 1)


def chain_pseudo_experiment(chain: Chain) -> Callable[[jax.Array], dict[str, Estimate]]:
    """One pseudo-experiment of ``chain`` as a pure ``key -> {name: Estimate}``.

    Outputs (K = len(n_gen), d = estimator dimension, p = fitted-parameter count):
      ``train``: estimate on D_train, value (d,);
      ``fit``: the surrogate's fitted parameters, flattened, value (p,) (when its params
        have a ``theta``);
      ``surrogate``: estimates on D_gen for each n_gen, value (K, d);
      ``truth``: estimates on n_gen true events, value (K, d) (if ``chain.truth``).
    Keys: ``split(key, 2 + 2K)`` → training, fit, generation per n_gen, truth per n_gen.
    """
    model, surrogate, estimator = chain.model, chain.surrogate, chain.estimator
    n_sizes = len(chain.n_gen)
    fit_converged = getattr(surrogate, "fit_converged", lambda params: jnp.bool_(True))

    def run(key: jax.Array) -> dict[str, Estimate]:
        keys = jax.random.split(key, 2 + 2 * n_sizes)
        train = model.sample(keys[0], chain.theta, chain.n_train)
        params = surrogate.fit(keys[1], train)
        fit_ok = fit_converged(params)
        outputs = {"train": estimator.estimate(train)}
        if hasattr(params, "theta"):
            flat, _ = ravel_pytree(params.theta)
            outputs["fit"] = Estimate(flat, fit_ok)
        generated = [
            estimator.estimate(surrogate.sample(keys[2 + j], params, n))
            for j, n in enumerate(chain.n_gen)
        ]
        outputs["surrogate"] = Estimate(
            jnp.stack([g.value for g in generated]),
            jnp.stack([g.ok for g in generated]) & fit_ok,
        )
        if chain.truth:
            true = [
                estimator.estimate(model.sample(keys[2 + n_sizes + j], chain.theta, n))
                for j, n in enumerate(chain.n_gen)
            ]
            outputs["truth"] = Estimate(
                jnp.stack([t.value for t in true]), jnp.stack([t.ok for t in true])
            )
        return outputs

    return run


def run_chain(
    chain: Chain,
    key: jax.Array,
    n_pseudo: int,
    *,
    chunk_size: int | None = None,
    histogram_edges: Mapping[str, np.ndarray] | None = None,
    progress: bool = True,
    description: str = "pseudo-experiments",
) -> EngineResult:
    """Run ``n_pseudo`` pseudo-experiments of ``chain`` (see
    ``chain_pseudo_experiment``)."""
    return run_pseudo_experiments(
        chain_pseudo_experiment(chain),
        key,
        n_pseudo,
        chunk_size=chunk_size,
        events_per_pseudo_experiment=chain.events_per_pseudo_experiment,
        histogram_edges=histogram_edges,
        progress=progress,
        description=description,
    )
