"""The pseudo-experiment engine: keys, chunks, devices and streaming reductions.

A pseudo-experiment is a pure function ``key -> {name: Estimate}``.  The engine runs
``P`` of them.  Pseudo-experiment ``i`` always gets ``jax.random.fold_in(root, i)``,
whatever the chunk size or device count, and the host-side reductions (moments and
histograms) are computed over fixed blocks of ``REDUCTION_BLOCK`` consecutive
pseudo-experiments merged in index order, so results are identical bit for bit for any
chunk size.  Events never leave the device: a chunk returns only per-pseudo-experiment
estimates, so memory is bounded by the chunk, not by ``P × N_gen``.

Scale: chunks are split over the local devices (one single-device program per
device) and, after ``jax.distributed.initialize``, over processes (contiguous shares,
exchanged with JAX's collectives); runs checkpoint and resume (``checkpoint=``), run a
range of pseudo-experiments (``pseudo_range=``) whose exact reductions
(``partials=``) merge into one run's result (``merge=``).  Every one of these gives
the same bits as one uninterrupted single-device run.  File formats:
``jaxunc.checkpoint``.

The chain itself (θ → D_train → fit → D_gen) is ``jaxunc.engine.chain``.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np

from jaxunc.checkpoint import (
    FORMAT_VERSION,
    PartialResults,
    PartialState,
    covering_order,
    describe_mismatch,
    identity_hash,
    open_checkpoint,
    read_state,
    write_state,
)
from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.estimators import Estimate

__all__ = [
    "EVENTS_PER_STEP",
    "REDUCTION_BLOCK",
    "EngineResult",
    "Moments",
    "RunStats",
    "default_memory_budget",
    "parse_memory",
    "pseudo_experiment_key",
    "run_pseudo_experiments",
    "vector_width",
]

REDUCTION_BLOCK = 1024
"""Pseudo-experiments per reduction block (fixes the floating-point summation order)."""

VECTOR_WIDTH = 256
"""Pseudo-experiments per vectorised step.  A chunk runs ``lax.map`` over steps of this
fixed width, so every pseudo-experiment is computed by the same compiled loop body
whatever the chunk size: XLA's code for a vmapped reduction (and so its rounding)
depends on the batch size, the loop body does not change with the trip count."""

EVENTS_PER_STEP = 2**24
"""At most this many events per vectorised step (64 MiB of float32): above it the
vectorised width is halved (see ``vector_width``), so one huge pseudo-experiment
(N_gen ~ 10^7) never multiplies its memory by ``VECTOR_WIDTH``."""

MAX_PSEUDO_EXPERIMENTS = 2**32
DEFAULT_EVENTS_PER_CHUNK = 2**22  # ~16 MiB of float32 per chunk: stays in cache on CPU
CHECKPOINT_INTERVAL = 10.0
"""Default seconds between checkpoint writes (the final state is always written)."""
_HOST_BYTES_PER_OUTPUT_BYTE = 16  # device copy, host copy, float64 reduction buffers


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


def _align_up(index: int, step: int) -> int:
    return -(-index // step) * step


_MOMENT_FIELDS = Moments._fields


@dataclasses.dataclass
class _Accumulator:
    """Host-side streaming reduction of one output over pseudo-experiments
    [start, position): moments, failures, histogram.

    Values arrive in pseudo-experiment order and are reduced in blocks of
    ``REDUCTION_BLOCK`` consecutive *global* indices, so the summation order depends
    only on pseudo-experiment indices, never on chunking.  A run from 0 folds the
    blocks into ``folded`` as it goes (``moments_merge`` in index order).  A range
    starting elsewhere cannot fold (the fold needs every earlier block), so it keeps
    its raw values up to the first block boundary (``head``), each complete block's
    moments (``blocks``) and the raw values after the last boundary (``pending``):
    enough to reproduce the single run's fold exactly when ranges are merged.
    """

    shape: tuple[int, ...]
    edges: np.ndarray | None
    dtype: np.dtype
    start: int = 0
    position: int = -1
    folded: Moments = None
    blocks: list = None
    head_values: np.ndarray = None
    head_mask: np.ndarray = None
    pending_values: np.ndarray = None
    pending_mask: np.ndarray = None
    failures: np.ndarray = None
    histogram: np.ndarray = None

    def __post_init__(self) -> None:
        if self.position < 0:
            self.position = self.start
        self.folded = moments_init(self.shape)
        self.blocks = []
        self.failures = np.zeros(self.shape, np.int64)
        if self.edges is not None:
            self.histogram = np.zeros((*self.shape, len(self.edges) + 1), np.int64)
        empty = (0, *self.shape)
        self.head_values = np.zeros(empty, self.dtype)
        self.head_mask = np.zeros(empty, bool)
        self.pending_values = np.zeros(empty, self.dtype)
        self.pending_mask = np.zeros(empty, bool)

    @property
    def prefix(self) -> bool:
        """Whether this covers [0, position) and so folds as it goes."""
        return self.start == 0

    def update(self, values: np.ndarray, ok: np.ndarray) -> None:
        """Add the next pseudo-experiments: ``values`` (n, *shape), ``ok`` (n, ...)."""
        mask = np.broadcast_to(
            ok.reshape(ok.shape + (1,) * (values.ndim - ok.ndim)), values.shape
        )
        mask = mask & np.isfinite(values)
        self.failures += (~mask).sum(axis=0)
        if self.edges is not None:
            self._histogram_update(values, mask)
        self._push_raw(values.astype(self.dtype, copy=False), mask)

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

    def _push_raw(self, values: np.ndarray, mask: np.ndarray) -> None:
        boundary = _align_up(self.start, REDUCTION_BLOCK)
        if not self.prefix and self.position < boundary:
            take = min(len(values), boundary - self.position)
            self.head_values = np.concatenate([self.head_values, values[:take]])
            self.head_mask = np.concatenate([self.head_mask, mask[:take]])
            self.position += take
            values, mask = values[take:], mask[take:]
        self.pending_values = np.concatenate([self.pending_values, values])
        self.pending_mask = np.concatenate([self.pending_mask, mask])
        self.position += len(values)
        n_blocks = len(self.pending_values) // REDUCTION_BLOCK
        if n_blocks:
            used = n_blocks * REDUCTION_BLOCK
            shaped = (n_blocks, REDUCTION_BLOCK, *self.shape)
            self._push_blocks(
                block_moments(
                    self.pending_values[:used].reshape(shaped),
                    self.pending_mask[:used].reshape(shaped),
                ),
                advance=False,
            )
            self.pending_values = self.pending_values[used:]
            self.pending_mask = self.pending_mask[used:]

    def _push_blocks(self, per_block: Moments, advance: bool = True) -> None:
        """Complete blocks' moments (leading axis: block), in index order."""
        n_blocks = len(per_block.count)
        if advance:
            if len(self.pending_values) or self.position % REDUCTION_BLOCK:
                raise ValueError("blocks must start at a block boundary")
            self.position += n_blocks * REDUCTION_BLOCK
        if self.prefix:
            for b in range(n_blocks):
                self.folded = moments_merge(
                    self.folded, Moments(*(f[b] for f in per_block))
                )
        elif n_blocks:
            self.blocks.append(per_block)

    def absorb(self, part: _Accumulator) -> None:
        """Append the reductions of ``part``, which must start at ``position``: the
        result is bit for bit what one accumulator fed both ranges would hold."""
        if part.start != self.position:
            raise ValueError(f"part starts at {part.start}, expected {self.position}")
        if part.position == part.start:
            return
        if part.prefix:
            self.folded, self.blocks = part.folded, []
            self.pending_values, self.pending_mask = (
                part.pending_values,
                part.pending_mask,
            )
            self.position = part.position
        else:
            self._push_raw(part.head_values, part.head_mask)
            for per_block in part.blocks:
                self._push_blocks(per_block)
            self._push_raw(part.pending_values, part.pending_mask)
        self.failures = self.failures + part.failures
        if self.histogram is not None:
            self.histogram = self.histogram + part.histogram

    def moments(self) -> Moments:
        """The moments of [start, position), folded in index order (the tail block,
        if incomplete, last)."""
        total = self.folded
        pieces = []
        if not self.prefix:
            total = moments_init(self.shape)
            if len(self.head_values):
                pieces.append(
                    block_moments(self.head_values[None], self.head_mask[None])
                )
            pieces.extend(self.blocks)
        if len(self.pending_values):
            pieces.append(
                block_moments(self.pending_values[None], self.pending_mask[None])
            )
        for per_block in pieces:
            for b in range(len(per_block.count)):
                total = moments_merge(total, Moments(*(f[b] for f in per_block)))
        return total

    def finish(self) -> dict[str, np.ndarray]:
        summary = moments_summary(self.moments())
        summary["failures"] = self.failures
        if self.edges is not None:
            summary["histogram"] = self.histogram[..., 1:-1]
            summary["underflow"] = self.histogram[..., 0]
            summary["overflow"] = self.histogram[..., -1]
            summary["edges"] = self.edges
        return summary

    # -- serialisation (checkpoints, partial results, process exchange)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = {
            f"{prefix}failures": self.failures,
            f"{prefix}head_values": self.head_values,
            f"{prefix}head_mask": self.head_mask,
            f"{prefix}pending_values": self.pending_values,
            f"{prefix}pending_mask": self.pending_mask,
            f"{prefix}range": np.array([self.start, self.position], np.int64),
        }
        if self.histogram is not None:
            arrays[f"{prefix}histogram"] = self.histogram
        for field, value in zip(_MOMENT_FIELDS, self.folded, strict=True):
            arrays[f"{prefix}folded_{field}"] = value
        stacked = (
            Moments(*(np.concatenate(f) for f in zip(*self.blocks, strict=True)))
            if self.blocks
            else Moments(*(np.zeros((0, *self.shape)),) * 5)
        )
        for field, value in zip(_MOMENT_FIELDS, stacked, strict=True):
            arrays[f"{prefix}blocks_{field}"] = value
        return arrays

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        prefix: str,
        shape: tuple[int, ...],
        edges: np.ndarray | None,
        dtype: np.dtype,
    ) -> _Accumulator:
        start, position = (int(v) for v in arrays[f"{prefix}range"])
        acc = cls(shape, edges, dtype, start=start, position=position)
        acc.failures = arrays[f"{prefix}failures"]
        if edges is not None:
            acc.histogram = arrays[f"{prefix}histogram"]
        acc.head_values = arrays[f"{prefix}head_values"]
        acc.head_mask = arrays[f"{prefix}head_mask"]
        acc.pending_values = arrays[f"{prefix}pending_values"]
        acc.pending_mask = arrays[f"{prefix}pending_mask"]
        acc.folded = Moments(*(arrays[f"{prefix}folded_{f}"] for f in _MOMENT_FIELDS))
        blocks = Moments(*(arrays[f"{prefix}blocks_{f}"] for f in _MOMENT_FIELDS))
        acc.blocks = [blocks] if len(blocks.count) else []
        expected = {
            "failures": (acc.failures, shape),
            "head_values": (acc.head_values, (len(acc.head_values), *shape)),
            "pending_values": (acc.pending_values, (len(acc.pending_values), *shape)),
            "folded_mean": (acc.folded.mean, shape),
        }
        for name, (value, wanted) in expected.items():
            if value.shape != wanted:
                raise ValueError(f"{prefix}{name} has shape {value.shape}")
        return acc


# ----------------------------------------------------------------------------- engine


class RunStats(NamedTuple):
    """Throughput of a run (compile time reported separately, not included in
    seconds).  ``pseudo_experiments``/``events``: what the result covers;
    ``computed``: the pseudo-experiments this call computed (less than
    ``pseudo_experiments`` after a resume or a merge); ``events_per_second`` is over
    the computed ones."""

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
    computed: int = 0
    vector_width: int = VECTOR_WIDTH
    process_count: int = 1
    pseudo_range: tuple[int, int] = (0, 0)
    memory_budget: int = 0


class EngineResult(NamedTuple):
    """``outputs[name]``: dict of numpy arrays (count, mean, mean_stderr, std,
    std_stderr, failures, and histogram/underflow/overflow/edges where edges were
    given).  After a run of a range (``pseudo_range``), the moments are those of
    the range's pseudo-experiments only."""

    outputs: dict[str, dict[str, np.ndarray]]
    stats: RunStats


def vector_width(events_per_pseudo_experiment: int) -> int:
    """Pseudo-experiments per vectorised step: ``VECTOR_WIDTH``, halved until a step
    holds at most ``EVENTS_PER_STEP`` events (at least 1).

    A function of the configuration only (never of the chunk size, device count or
    memory budget), so it does not break bitwise invariance; it bounds the memory of
    one step when pseudo-experiments are huge (N_gen ~ 10^7).
    """
    width = VECTOR_WIDTH
    while width > 1 and width * max(events_per_pseudo_experiment, 1) > EVENTS_PER_STEP:
        width //= 2
    return width


def default_chunk_size(
    n_pseudo: int, events_per_pseudo_experiment: int, devices: int = 1
) -> int:
    """About 2**22 events per chunk, at most ``n_pseudo`` (before rounding up to whole
    vectorised steps per device)."""
    size = max(1, DEFAULT_EVENTS_PER_CHUNK // max(events_per_pseudo_experiment, 1))
    return min(size, n_pseudo)


_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_memory(text: Any, argument: str = "memory_budget") -> int:
    """Bytes from ``"2GiB"``, ``"512 MiB"``, ``"1.5GB"``, ``"1000000"`` or an int.

    Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones (kB, MB, GB,
    TB) of 1000; a bare number is bytes.  ``InvalidArgument`` otherwise.
    """
    if isinstance(value := text, (int, np.integer)) and not isinstance(value, bool):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(
            r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text)
        )
        if match is None or match.group(2).lower() not in _UNITS:
            raise InvalidArgument(
                argument,
                f"expected a size such as 2GiB, 512MiB, 1.5GB or a number of bytes "
                f"(got {text!r})",
            )
        number, unit = float(match.group(1)), match.group(2).lower()
    size = int(number * _UNITS[unit])
    if not math.isfinite(number) or size < 2**20:
        raise InvalidArgument(argument, f"must be at least 1MiB (got {text!r})")
    return size


def default_memory_budget(devices: Sequence[jax.Device]) -> int:
    """Half of the first device's memory (accelerators), else half of the host's
    RAM."""
    try:
        limit = (devices[0].memory_stats() or {}).get("bytes_limit")
    except Exception:  # some backends do not implement memory_stats
        limit = None
    if not limit:
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(limit) // 2


def _check_range(pseudo_range: Any, n_pseudo: int) -> tuple[int, int]:
    if pseudo_range is None:
        return 0, n_pseudo
    try:
        start, stop = (int(v) for v in pseudo_range)
    except (TypeError, ValueError):
        raise InvalidArgument(
            "range", f"must be a pair START, STOP (got {pseudo_range!r})"
        ) from None
    if not 0 <= start < stop:
        raise InvalidArgument("range", f"needs 0 <= START < STOP (got {start}:{stop})")
    # A range beyond a run's size selects nothing of that run (several runs of one
    # study share the range); the partial result then covers [P, P).
    return min(start, n_pseudo), min(stop, n_pseudo)


def _function_fingerprint(closed: Any) -> str:
    """SHA-256 of a traced pseudo-experiment: its jaxpr and its constants (object
    addresses that the jaxpr's text shows for custom-derivative rules removed)."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", str(closed.jaxpr))
    digest = hashlib.sha256(text.encode())
    for const in closed.consts:
        if jax.dtypes.issubdtype(getattr(const, "dtype", None), jax.dtypes.prng_key):
            text_dtype = str(const.dtype)  # a typed key: hash its implementation too
            digest.update(text_dtype.encode())
            const = jax.random.key_data(const)
        array = np.asarray(const)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _output_spec(shapes: Mapping[str, Estimate]) -> dict[str, dict]:
    spec = {}
    for name, estimate in sorted(shapes.items()):
        spec[name] = {
            "value": [list(estimate.value.shape), str(estimate.value.dtype)],
            "ok": [list(estimate.ok.shape), str(estimate.ok.dtype)],
        }
    return spec


def _run_identity(
    description: str,
    n_pseudo: int,
    key: jax.Array,
    config: Mapping[str, Any] | None,
    fingerprint: str,
    spec: dict,
    edges: Mapping[str, np.ndarray | None],
    width: int,
) -> dict[str, Any]:
    return {
        "format": FORMAT_VERSION,
        "description": description,
        "n_pseudo": n_pseudo,
        "key": {
            "impl": str(jax.random.key_impl(key)),
            "data": np.asarray(jax.random.key_data(key)).tolist(),
        },
        "config": None if config is None else dict(config),
        # The traced function: catches a changed model or code between two parts.
        "function_sha256": fingerprint,
        "outputs": spec,
        "histogram_edges_sha256": {
            name: hashlib.sha256(e.tobytes()).hexdigest()
            for name, e in sorted(edges.items())
            if e is not None
        },
        "reduction_block": REDUCTION_BLOCK,
        "vector_width": width,
    }


def _states_to_arrays(
    accumulators: Mapping[str, _Accumulator],
) -> dict[str, np.ndarray]:
    arrays = {}
    for index, name in enumerate(sorted(accumulators)):
        arrays.update(accumulators[name].to_arrays(f"o{index}."))
    return arrays


def _states_from_arrays(
    arrays: Mapping[str, np.ndarray],
    layout: Mapping[str, tuple[tuple[int, ...], np.ndarray | None, np.dtype]],
    where: str,
    argument: str,
) -> dict[str, _Accumulator]:
    try:
        return {
            name: _Accumulator.from_arrays(arrays, f"o{index}.", *layout[name])
            for index, name in enumerate(sorted(layout))
        }
    except (KeyError, ValueError, TypeError) as error:
        raise InvalidArgument(
            argument, f"{where} is corrupt ({type(error).__name__}: {error})"
        ) from None


def _merge_accumulators(
    parts: Sequence[Mapping[str, _Accumulator]],
    layout: Mapping[str, tuple],
    start: int,
) -> dict[str, _Accumulator]:
    merged = {
        name: _Accumulator(shape, edges, dtype, start=start)
        for name, (shape, edges, dtype) in layout.items()
    }
    for part in parts:
        for name, acc in merged.items():
            acc.absorb(part[name])
    return merged


def _exchange_between_processes(
    accumulators: Mapping[str, _Accumulator], meta: dict
) -> list[tuple[dict[str, np.ndarray], dict]]:
    """Every process's (arrays, meta), in process order, via JAX's own collectives."""
    from jax.experimental import multihost_utils

    buffer = io.BytesIO()
    np.savez(buffer, **_states_to_arrays(accumulators), __meta__=json.dumps(meta))
    payload = np.frombuffer(buffer.getvalue(), np.uint8)
    lengths = np.asarray(
        multihost_utils.process_allgather(np.array([len(payload)], np.int32))
    ).reshape(-1)
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: len(payload)] = payload
    gathered = np.asarray(multihost_utils.process_allgather(padded))
    exchanged = []
    for row, length in zip(gathered, lengths, strict=True):
        with np.load(io.BytesIO(row[: int(length)].tobytes())) as archive:
            arrays = {name: archive[name] for name in archive.files}
        exchanged.append((arrays, json.loads(str(arrays.pop("__meta__")))))
    return exchanged


_COMPILED: collections.OrderedDict = collections.OrderedDict()
_COMPILED_CACHE_SIZE = 8
"""Compiled chunks of the last few runs, keyed by the traced function (its jaxpr and
constants), the chunk shape and the devices: a study that runs the same
pseudo-experiment again (another key, a resume, a range) does not recompile."""


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
    config: Mapping[str, Any] | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_interval: float = CHECKPOINT_INTERVAL,
    pseudo_range: tuple[int, int] | None = None,
    partials: PartialResults | None = None,
    merge: Sequence[PartialResults] | None = None,
    memory_budget: int | str | None = None,
) -> EngineResult:
    """Run ``n_pseudo`` pseudo-experiments and reduce their estimates on the fly.

    Args:
      pseudo_experiment: ``key -> {name: Estimate(value (..., d), ok (...))}``, pure.
      key: root key; pseudo-experiment ``i`` gets ``fold_in(key, i)``.
      n_pseudo: number of pseudo-experiments, 1 ≤ P < 2**32.
      chunk_size: pseudo-experiments per compiled call (default: about 2**22 events,
        less if the memory budget asks for it); rounded up to whole vectorised steps
        per device; the last chunk is padded (its padding is computed and discarded:
        one compilation per run).
      events_per_pseudo_experiment: events generated per pseudo-experiment; sets the
        vectorised width (see ``vector_width``) and the throughput report.
      histogram_edges: optional bin edges per output name (histograms of the
        estimates).
      progress: show a progress bar on a terminal for runs longer than a second.
      devices: devices to shard chunks over (default: all local devices; and, after
        ``jax.distributed.initialize``, every process takes a contiguous share of
        the pseudo-experiments and the shares are exchanged with JAX's collectives).
      description: the run's name; unique among the engine runs of one study (it
        names the run's checkpoint sub-folder and partial result).
      config: JSON-able dict identifying the study's configuration; stored in
        checkpoints and partial results (the traced function is fingerprinted too).
      checkpoint: folder for checkpoints (None: no checkpoint).  A run resumes from
        the state found there; a state of another configuration is refused.
      checkpoint_interval: seconds between checkpoint writes (0: after every chunk;
        the final state is always written).
      pseudo_range: ``(start, stop)``: run only pseudo-experiments [start, stop)
        (clipped to ``n_pseudo``); the result's moments are those of the range.
      partials: a ``PartialResults`` that receives this run's exact reductions (to
        be merged with other ranges' by ``merge``).
      merge: partial results covering [0, n_pseudo) disjointly: nothing is computed;
        the result is bit for bit that of one run.
      memory_budget: bytes (or a string such as ``"2GiB"``) the run may use
        (default: half the device's memory, or half the host's RAM on CPU); sets the
        default chunk size; a configuration whose single vectorised step exceeds it
        is refused.

    Returns an ``EngineResult``.  Results are identical, bit for bit, for any chunk
    size, device count, process count, resume point or split into merged ranges.
    """
    from tqdm.auto import tqdm

    n_pseudo = check_positive_int(
        "n_pseudo", n_pseudo, maximum=MAX_PSEUDO_EXPERIMENTS - 1
    )
    explicit_devices = devices is not None
    devices = list(jax.local_devices() if devices is None else devices)
    width = vector_width(events_per_pseudo_experiment)
    # Trace once: the jaxpr fingerprints the function for checkpoints and is what
    # the chunk evaluates (so the Python function is traced exactly once per run).
    closed, shapes = jax.make_jaxpr(pseudo_experiment, return_shape=True)(key)
    shapes = dict(shapes)
    tree = jax.tree_util.tree_structure(shapes)
    evaluate = jax.extend.core.jaxpr_as_fun(closed)

    def traced(k: jax.Array) -> dict[str, Estimate]:
        return jax.tree_util.tree_unflatten(tree, evaluate(k))

    edges = {name: _as_edges((histogram_edges or {}).get(name)) for name in shapes}
    layout = {
        name: (
            tuple(shapes[name].value.shape),
            edges[name],
            np.dtype(shapes[name].value.dtype),
        )
        for name in shapes
    }
    fingerprint = _function_fingerprint(closed)
    identity = _run_identity(
        description,
        n_pseudo,
        key,
        config,
        fingerprint,
        _output_spec(shapes),
        edges,
        width,
    )
    digest = identity_hash(identity)
    budget = (
        default_memory_budget(devices)
        if memory_budget is None
        else parse_memory(memory_budget)
    )
    if merge is not None:
        return _merged_run(merge, identity, digest, layout, devices, width, budget)
    start, stop = _check_range(pseudo_range, n_pseudo)

    processes = 1 if explicit_devices else jax.process_count()
    rank = 0 if explicit_devices else jax.process_index()
    cuts = (
        [start]
        + [
            max(start, (start + (stop - start) * p // processes) // width * width)
            for p in range(1, processes)
        ]
        + [stop]
    )
    my_start, my_stop = cuts[rank], cuts[rank + 1]

    accumulators = {
        name: _Accumulator(shape, e, dtype, start=my_start)
        for name, (shape, e, dtype) in layout.items()
    }
    state_path = None
    if checkpoint is not None:
        folder = open_checkpoint(Path(checkpoint), identity)
        state_path = folder / f"state-{my_start}-{my_stop}.npz"
        if state_path.exists():
            arrays, meta = read_state(state_path, "checkpoint")
            if (
                meta.get("identity_sha256") != digest
                or meta.get("start") != my_start
                or meta.get("stop") != my_stop
            ):
                raise InvalidArgument(
                    "checkpoint",
                    f"{str(state_path)!r} belongs to another run; delete it to "
                    "start that run over",
                )
            accumulators = _states_from_arrays(
                arrays, layout, repr(str(state_path)), "checkpoint"
            )
            positions = {acc.position for acc in accumulators.values()}
            if len(positions) != 1 or not my_start <= positions.pop() <= my_stop:
                raise InvalidArgument(
                    "checkpoint", f"{str(state_path)!r} is corrupt (positions)"
                )
    resumed_at = (
        next(iter(accumulators.values())).position if accumulators else my_start
    )

    step = width * len(devices)
    per_pe_bytes = sum(
        math.prod(s.value.shape) * s.value.dtype.itemsize
        + math.prod(s.ok.shape) * s.ok.dtype.itemsize
        for s in shapes.values()
    )
    if chunk_size is None:
        chunk_size = min(
            default_chunk_size(n_pseudo, events_per_pseudo_experiment, len(devices)),
            max(1, budget // (_HOST_BYTES_PER_OUTPUT_BYTE * max(per_pe_bytes, 1))),
        )
    chunk_size = check_positive_int("chunk_size", chunk_size)
    chunk_size = _align_up(chunk_size, step)
    per_device = chunk_size // len(devices)

    def chunk(root: jax.Array, first: jax.Array) -> dict[str, Estimate]:
        """Pseudo-experiments [first, first + per_device) on one device."""
        offsets = jnp.arange(per_device, dtype=jnp.uint32).reshape(-1, width)
        keys = jax.vmap(
            jax.vmap(pseudo_experiment_key, in_axes=(None, 0)), in_axes=(None, 0)
        )(root, first + offsets)
        outputs = jax.lax.map(jax.vmap(traced), keys)
        return jax.tree_util.tree_map(
            lambda a: a.reshape(per_device, *a.shape[2:]), outputs
        )

    compile_seconds = 0.0
    base = resumed_at // width * width  # chunks start on whole vectorised steps
    chunk_starts = (
        list(range(base, my_stop, chunk_size)) if resumed_at < my_stop else []
    )
    # Every device runs its own copy of one single-device program on its share of
    # the chunk (dispatched asynchronously, so they run concurrently).  A program
    # partitioned over several devices is compiled differently by XLA and can
    # change the last bits of, e.g., a Newton fit; this keeps 1, 2 or 4 devices
    # identical bit for bit.
    executables = []
    for device in devices if chunk_starts else []:
        cache_key = (
            str(closed.jaxpr),  # with object addresses: distinct callbacks differ
            fingerprint,
            str(jax.random.key_impl(key)),
            per_device,
            width,
            device.id,
            jax.config.jax_enable_x64,
        )
        compiled = _COMPILED.get(cache_key)
        if compiled is None:
            compile_start = time.perf_counter()
            placed = jax.device_put((key, jnp.uint32(0)), device)
            compiled = jax.jit(chunk).lower(*placed).compile()
            compile_seconds += time.perf_counter() - compile_start
            _COMPILED[cache_key] = compiled
            while len(_COMPILED) > _COMPILED_CACHE_SIZE:
                _COMPILED.popitem(last=False)
        _COMPILED.move_to_end(cache_key)
        executables.append((device, jax.device_put(key, device), compiled))
    if executables:
        _check_memory(executables[0][2], budget, per_device, width, per_pe_bytes)

    def dispatch(first: int) -> list:
        return [
            compiled(root, jax.device_put(np.uint32(first + i * per_device), device))
            for i, (device, root, compiled) in enumerate(executables)
        ]

    def collect(futures: list) -> dict[str, Estimate]:
        parts = jax.device_get(futures)
        return jax.tree_util.tree_map(lambda *a: np.concatenate(a), *parts)

    bar = tqdm(
        total=my_stop - my_start,
        initial=resumed_at - my_start,
        desc=description,
        unit="PE",
        disable=None if progress else True,
        delay=1.0,
        mininterval=0.5,
    )
    meta = {
        "format": FORMAT_VERSION,
        "identity_sha256": digest,
        "start": my_start,
        "stop": my_stop,
    }
    start_time = time.perf_counter()
    last_write = start_time
    if chunk_starts:
        in_flight = dispatch(chunk_starts[0])
    for number, first in enumerate(chunk_starts):
        current = in_flight
        if number + 1 < len(chunk_starts):  # dispatch the next before reducing this
            in_flight = dispatch(chunk_starts[number + 1])
        lo, hi = max(first, resumed_at), min(first + chunk_size, my_stop)
        host = collect(current)
        for name, estimate in host.items():
            values = np.asarray(estimate.value)[lo - first : hi - first]
            ok = np.asarray(estimate.ok)[lo - first : hi - first]
            accumulators[name].update(values, ok)
        bar.update(hi - lo)
        now = time.perf_counter()
        if state_path is not None and (
            now - last_write >= checkpoint_interval or hi == my_stop
        ):
            write_state(state_path, _states_to_arrays(accumulators), meta)
            last_write = now
    computed_seconds = time.perf_counter() - start_time
    bar.close()

    if processes > 1:
        exchanged = _exchange_between_processes(accumulators, meta)
        parts = [
            _states_from_arrays(arrays, layout, "a process's state", "devices")
            for arrays, _ in exchanged
        ]
        accumulators = _merge_accumulators(parts, layout, start)
    if partials is not None:
        partials.add(
            PartialState(identity, digest, start, stop, _states_to_arrays(accumulators))
        )
    outputs = {name: acc.finish() for name, acc in accumulators.items()}
    seconds = time.perf_counter() - start_time
    computed = my_stop - resumed_at
    events = (stop - start) * events_per_pseudo_experiment
    stats = RunStats(
        seconds=seconds,
        compile_seconds=compile_seconds,
        pseudo_experiments=stop - start,
        events=events,
        events_per_second=(
            computed * events_per_pseudo_experiment / computed_seconds
            if computed and computed_seconds > 0
            else 0.0
        ),
        chunk_size=chunk_size,
        chunks=len(chunk_starts),
        backend=devices[0].platform,
        device_count=len(devices) * processes,
        jax_version=jax.__version__,
        computed=computed,
        vector_width=width,
        process_count=processes,
        pseudo_range=(start, stop),
        memory_budget=budget,
    )
    return EngineResult(outputs, stats)


def _check_memory(
    compiled: Any, budget: int, chunk_size: int, width: int, per_pe_bytes: int
) -> None:
    """Refuse a chunk whose compiled program (XLA's own estimate) plus the host's
    reduction buffers exceed ``budget``."""
    try:
        analysis = compiled.memory_analysis()
        device = (
            analysis.temp_size_in_bytes
            + analysis.output_size_in_bytes
            + analysis.argument_size_in_bytes
        )
    except Exception:  # not every backend reports it
        return
    host = _HOST_BYTES_PER_OUTPUT_BYTE * per_pe_bytes * chunk_size
    if device + host > budget:
        raise InvalidArgument(
            "memory_budget",
            f"a chunk of {chunk_size} pseudo-experiments ({width} per vectorised "
            f"step) needs about {(device + host) / 2**20:.0f} MiB (XLA's estimate "
            f"plus the host's buffers), more than the budget of "
            f"{budget / 2**20:.0f} MiB: give a larger --memory-budget or a smaller "
            "--chunk-size",
        )


def _merged_run(
    merge: Sequence[PartialResults],
    identity: dict,
    digest: str,
    layout: Mapping[str, tuple],
    devices: Sequence[jax.Device],
    width: int,
    budget: int,
) -> EngineResult:
    description = identity["description"]
    states = [p.states[description] for p in merge if description in p.states]
    if not states:
        raise InvalidArgument(
            "parts", f"no partial result holds the run {description!r}"
        )
    for state in states:
        if state.identity_sha256 != digest:
            raise InvalidArgument(
                "parts",
                f"the partial result of run {description!r} for [{state.start}, "
                f"{state.stop}) has a different configuration (differs in: "
                f"{describe_mismatch(state.identity, identity)})",
            )
    ordered = covering_order(states, "parts")
    parts = [
        _states_from_arrays(
            s.arrays, layout, f"the partial result [{s.start}, {s.stop})", "parts"
        )
        for s in ordered
    ]
    for state, part in zip(ordered, parts, strict=True):
        for acc in part.values():
            if (acc.start, acc.position) != (state.start, state.stop):
                raise InvalidArgument(
                    "parts",
                    f"the partial result [{state.start}, {state.stop}) is corrupt "
                    "(its reductions cover another range)",
                )
    merged = _merge_accumulators(parts, layout, 0)
    outputs = {name: acc.finish() for name, acc in merged.items()}
    n_pseudo = identity["n_pseudo"]
    stats = RunStats(
        seconds=0.0,
        compile_seconds=0.0,
        pseudo_experiments=n_pseudo,
        events=0,
        events_per_second=0.0,
        chunk_size=0,
        chunks=0,
        backend=devices[0].platform,
        device_count=len(devices),
        jax_version=jax.__version__,
        computed=0,
        vector_width=width,
        process_count=1,
        pseudo_range=(0, n_pseudo),
        memory_budget=budget,
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
