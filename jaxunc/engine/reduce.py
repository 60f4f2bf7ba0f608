"""Streaming reductions of the engine: moments, failures by result code, histograms.

Estimates arrive on the host in pseudo-experiment order and are reduced in blocks of
``REDUCTION_BLOCK`` consecutive *global* pseudo-experiment indices, merged in index
order, so the floating-point summation order depends only on the indices, never on
the chunk size, the device or process count, a resume point or a split into ranges.

Per output (value shape ``shape``) an ``Accumulator`` keeps

* the moments (count, mean, M2, M3, M4; float64) of the elements that succeeded;
* ``failures`` (int64, ``shape``): elements left out of the moments, because their
  estimate was not ``ok`` or their value was not finite;
* ``failures_by_result`` (int64, ``(len(RESULT_NAMES), *shape)``): the elements by
  result code (``jaxunc.results``; see ``element_codes``).  Row 0 counts the
  successes, so the rows sum to the pseudo-experiments covered and the rows 1.. sum
  to ``failures``;
* optionally a histogram of the successful values.

Accumulators serialise to flat dicts of arrays (``states_to_arrays``) for
checkpoints, partial results and the exchange between processes.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from jaxunc.errors import InvalidArgument
from jaxunc.results import RESULT_NAMES, Result

__all__ = [
    "N_CODES",
    "REDUCTION_BLOCK",
    "Accumulator",
    "InconsistentState",
    "Layout",
    "Moments",
    "block_moments",
    "count_codes",
    "element_codes",
    "exchange_between_processes",
    "merge_accumulators",
    "moments_init",
    "moments_merge",
    "moments_summary",
    "new_accumulators",
    "states_from_arrays",
    "states_to_arrays",
    "success_mask",
]

REDUCTION_BLOCK = 1024
"""Pseudo-experiments per reduction block (fixes the floating-point summation order)."""

N_CODES = len(RESULT_NAMES)
"""Result codes (``jaxunc.results.RESULT_NAMES``): the leading axis of
``failures_by_result``."""


# ----------------------------------------------------------------------------- moments


class Moments(NamedTuple):
    """Count, mean and central moment sums M2, M3, M4 (float64, any common shape)."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    m3: np.ndarray
    m4: np.ndarray


_MOMENT_FIELDS = Moments._fields


def moments_init(shape: tuple[int, ...]) -> Moments:
    """Moments of nothing (all zeros) for values of shape ``shape``."""
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


def _merge_blocks(total: Moments, per_block: Moments) -> Moments:
    """``total`` merged with each block of ``per_block`` (leading axis), in order."""
    for b in range(len(per_block.count)):
        total = moments_merge(total, Moments(*(f[b] for f in per_block)))
    return total


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


# ------------------------------------------------------------------------ result codes


def _broadcast_like(flags: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-estimate ``flags`` (n, ...) broadcast over the trailing value axes."""
    return np.broadcast_to(
        flags.reshape(flags.shape + (1,) * (values.ndim - flags.ndim)), values.shape
    )


def success_mask(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Elements that enter the moments: ``ok`` (broadcast) and finite."""
    return _broadcast_like(ok, values) & np.isfinite(values)


def element_codes(
    values: np.ndarray, ok: np.ndarray, result: np.ndarray | None
) -> np.ndarray:
    """The result code (``jaxunc.results``) of every element of ``values``.

    ``values`` (n, *shape); ``ok`` and ``result`` (n, ...) broadcast over the
    trailing value axes; ``result`` may be None.  An element that enters the moments
    (``success_mask``) is ``SUCCESSFUL`` whatever its ``result`` says (so the failed
    codes always count exactly the ``failures``).  A failed element gets its
    ``result`` when that is a failure code (1 ≤ code < len(RESULT_NAMES)), else
    ``FAILED`` when it is not ``ok``, else ``NONFINITE_VALUE`` (an ``ok`` estimate
    whose value is NaN or infinite).  Returns int64 codes of ``values.shape``.
    """
    reason = np.where(
        _broadcast_like(ok, values), Result.NONFINITE_VALUE, Result.FAILED
    ).astype(np.int64)
    if result is not None:
        named = _broadcast_like(np.asarray(result).astype(np.int64), values)
        reason = np.where((named > 0) & (named < N_CODES), named, reason)
    return np.where(success_mask(values, ok), Result.SUCCESSFUL, reason)


def count_codes(codes: np.ndarray) -> np.ndarray:
    """``(N_CODES, *shape)`` int64 counts of each code along axis 0 of ``codes``
    ``(n, *shape)``."""
    return np.stack([(codes == code).sum(axis=0) for code in range(N_CODES)]).astype(
        np.int64
    )


# -------------------------------------------------------------------------- accumulator


def align_up(index: int, step: int) -> int:
    """The smallest multiple of ``step`` that is >= ``index``."""
    return -(-index // step) * step


@dataclasses.dataclass
class Accumulator:
    """Host-side streaming reduction of one output over pseudo-experiments
    [start, position): moments, failures (in total and by result code), histogram.

    Values arrive in pseudo-experiment order and are reduced in blocks of
    ``REDUCTION_BLOCK`` consecutive *global* indices, so the summation order depends
    only on pseudo-experiment indices, never on chunking.  A run from 0 folds the
    blocks into ``folded`` as it goes (``moments_merge`` in index order).  A range
    starting elsewhere cannot fold (the fold needs every earlier block), so it keeps
    its raw values up to the first block boundary (``head``), each complete block's
    moments (``blocks``) and the raw values after the last boundary (``pending``):
    enough to reproduce the single run's fold exactly when ranges are merged.  The
    counts (failures, codes, histogram) are integer sums: they merge in any order.
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
    failures_by_result: np.ndarray = None
    histogram: np.ndarray = None

    def __post_init__(self) -> None:
        if self.position < 0:
            self.position = self.start
        self.folded = moments_init(self.shape)
        self.blocks = []
        self.failures = np.zeros(self.shape, np.int64)
        self.failures_by_result = np.zeros((N_CODES, *self.shape), np.int64)
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

    def update(
        self, values: np.ndarray, ok: np.ndarray, result: np.ndarray | None = None
    ) -> None:
        """Add the next pseudo-experiments: ``values`` (n, *shape), ``ok`` (n, ...)
        and the optional result codes ``result`` (n, ...) (see ``element_codes``)."""
        mask = success_mask(values, ok)
        self.failures += (~mask).sum(axis=0)
        self.failures_by_result += count_codes(element_codes(values, ok, result))
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
        boundary = align_up(self.start, REDUCTION_BLOCK)
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
            self.folded = _merge_blocks(self.folded, per_block)
        elif n_blocks:
            self.blocks.append(per_block)

    def absorb(self, part: Accumulator) -> None:
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
        self.failures_by_result = self.failures_by_result + part.failures_by_result
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
            total = _merge_blocks(total, per_block)
        return total

    def finish(self) -> dict[str, np.ndarray]:
        """The output's summary: ``moments_summary`` fields, ``failures``,
        ``failures_by_result`` and, with edges, the histogram."""
        summary = moments_summary(self.moments())
        summary["failures"] = self.failures
        summary["failures_by_result"] = self.failures_by_result
        if self.edges is not None:
            summary["histogram"] = self.histogram[..., 1:-1]
            summary["underflow"] = self.histogram[..., 0]
            summary["overflow"] = self.histogram[..., -1]
            summary["edges"] = self.edges
        return summary

    # -- serialisation (checkpoints, partial results, process exchange)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The state as flat arrays, named ``prefix + field``."""
        arrays = {
            f"{prefix}failures": self.failures,
            f"{prefix}failures_by_result": self.failures_by_result,
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
        for field, value in zip(_MOMENT_FIELDS, self.stacked_blocks(), strict=True):
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
    ) -> Accumulator:
        """The inverse of ``to_arrays``; ``KeyError``/``ValueError`` on a corrupt
        state."""
        start, position = (int(v) for v in arrays[f"{prefix}range"])
        acc = cls(shape, edges, dtype, start=start, position=position)
        acc.failures = arrays[f"{prefix}failures"]
        acc.failures_by_result = arrays[f"{prefix}failures_by_result"]
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
            "failures_by_result": (acc.failures_by_result, (N_CODES, *shape)),
            "head_values": (acc.head_values, (len(acc.head_values), *shape)),
            "pending_values": (acc.pending_values, (len(acc.pending_values), *shape)),
            "folded_mean": (acc.folded.mean, shape),
        }
        for name, (value, wanted) in expected.items():
            if value.shape != wanted:
                raise ValueError(f"{prefix}{name} has shape {value.shape}")
        return acc

    def check_consistent(self) -> None:
        """Raise ``InconsistentState`` unless this state could have come from a
        run: a range [start, position) with 0 <= start <= position; raw rows and
        blocks where the block structure puts them (``head`` up to the first block
        boundary, one moments row per complete block, the ``pending`` rows after the
        last boundary, fewer than ``REDUCTION_BLOCK``); every element's result codes
        summing to the pseudo-experiments covered, the failed codes to
        ``failures``, the successes to the moments' counts and to the histogram's
        total; integer-valued counts of at most ``REDUCTION_BLOCK`` per block;
        sums of squares >= 0, and exactly 0 (with the fourth powers) for fewer
        than two values.  Cheap: O(size of the state), nothing is recomputed.
        """
        start, position = self.start, self.position
        if not 0 <= start <= position:
            raise InconsistentState(f"its range [{start}, {position}) is not a range")
        covered = position - start
        boundary = align_up(start, REDUCTION_BLOCK)
        if self.prefix:
            head, n_blocks = 0, 0
            pending = position % REDUCTION_BLOCK
        elif position <= boundary:
            head, n_blocks, pending = covered, 0, 0
        else:
            head = boundary - start
            n_blocks, pending = divmod(position - boundary, REDUCTION_BLOCK)
        rows = {
            "head": (len(self.head_values), len(self.head_mask), head),
            "pending": (len(self.pending_values), len(self.pending_mask), pending),
        }
        for name, (values, mask, wanted) in rows.items():
            if values != wanted or mask != wanted:
                raise InconsistentState(
                    f"it holds {values} {name} rows where its range [{start}, "
                    f"{position}) puts {wanted} (a position that does not match its "
                    "reductions)"
                )
        blocks = self.stacked_blocks()
        if len(blocks.count) != n_blocks:
            raise InconsistentState(
                f"it holds {len(blocks.count)} reduction blocks where its range "
                f"[{start}, {position}) has {n_blocks}"
            )
        for name, value in (
            ("head values", self.head_values),
            ("pending values", self.pending_values),
        ):
            if value.dtype != self.dtype:
                raise InconsistentState(
                    f"its {name} are {value.dtype}, not {self.dtype}"
                )
        for name, mask in (("head", self.head_mask), ("pending", self.pending_mask)):
            if mask.dtype != np.bool_:
                raise InconsistentState(f"its {name} mask is {mask.dtype}, not bool")
        integers = {
            "failures": self.failures,
            "failures_by_result": self.failures_by_result,
        }
        if self.histogram is not None:
            integers["histogram"] = self.histogram
        for name, value in integers.items():
            if not np.issubdtype(value.dtype, np.integer) or np.any(value < 0):
                raise InconsistentState(f"its {name} are not counts")
        by_code = self.failures_by_result.sum(axis=0)
        if np.any(by_code != covered):
            raise InconsistentState(
                f"its result codes count {_spread(by_code)} pseudo-experiments per "
                f"element where its range [{start}, {position}) holds {covered}"
            )
        if np.any(self.failures_by_result[1:].sum(axis=0) != self.failures):
            raise InconsistentState(
                "its failures do not equal its failed result codes' total"
            )
        successes = self.failures_by_result[0]
        for name, moments in (("folded", self.folded), ("block", blocks)):
            count = moments.count
            if not np.all(
                np.isfinite(count) & (count >= 0) & (count == np.round(count))
            ):
                raise InconsistentState(f"its {name} moments' counts are not counts")
            # M2 is a sum of non-negative terms however it is merged, exactly 0
            # below two values (so is M4); M4 > 0 otherwise only up to rounding.
            if np.any(moments.m2 < 0):
                raise InconsistentState(
                    f"its {name} moments hold a negative sum of squares (a negative "
                    "variance)"
                )
            if np.any((count < 2) & ((moments.m2 != 0) | (moments.m4 != 0))):
                raise InconsistentState(
                    f"its {name} moments hold a sum of squares for fewer than two "
                    "values"
                )
        if np.any(blocks.count > REDUCTION_BLOCK):
            raise InconsistentState(
                f"a reduction block counts more than {REDUCTION_BLOCK} values"
            )
        counted = (
            self.folded.count
            + blocks.count.sum(axis=0)
            + self.head_mask.sum(axis=0)
            + self.pending_mask.sum(axis=0)
        )
        if np.any(counted != successes):
            raise InconsistentState(
                f"its moments count {_spread(counted)} values per element where its "
                f"result codes count {_spread(successes)} successes"
            )
        if self.histogram is not None and np.any(
            self.histogram.sum(axis=-1) != successes
        ):
            raise InconsistentState(
                "its histogram (with underflow and overflow) does not count its "
                "successes"
            )

    def stacked_blocks(self) -> Moments:
        """The complete blocks' moments, stacked (leading axis: block)."""
        if not self.blocks:
            return Moments(*(np.zeros((0, *self.shape)),) * 5)
        return Moments(*(np.concatenate(f) for f in zip(*self.blocks, strict=True)))


class InconsistentState(ValueError):
    """A serialised accumulator whose parts contradict each other: it cannot have
    come from a run (a rewound position, doubled counts, a negative variance)."""


def _spread(values: np.ndarray) -> str:
    """``values`` (integer-valued) as one number, or their range when they differ."""
    low, high = int(np.min(values)), int(np.max(values))
    return str(low) if low == high else f"{low} to {high}"


Layout = Mapping[str, tuple[tuple[int, ...], np.ndarray | None, np.dtype]]
"""Per output name: (value shape, histogram edges or None, value dtype)."""


def new_accumulators(layout: Layout, start: int) -> dict[str, Accumulator]:
    """Empty accumulators of every output, starting at pseudo-experiment ``start``."""
    return {
        name: Accumulator(shape, edges, dtype, start=start)
        for name, (shape, edges, dtype) in layout.items()
    }


def states_to_arrays(accumulators: Mapping[str, Accumulator]) -> dict[str, np.ndarray]:
    """All accumulators as one flat dict (output ``i`` in name order: ``o{i}.``)."""
    arrays = {}
    for index, name in enumerate(sorted(accumulators)):
        arrays.update(accumulators[name].to_arrays(f"o{index}."))
    return arrays


def states_from_arrays(
    arrays: Mapping[str, np.ndarray], layout: Layout, where: str, argument: str
) -> dict[str, Accumulator]:
    """The inverse of ``states_to_arrays``; ``InvalidArgument(argument, ...)``
    saying that ``where`` is corrupt when it does not fit ``layout`` or is
    inconsistent (``Accumulator.check_consistent``)."""
    try:
        accumulators = {
            name: Accumulator.from_arrays(arrays, f"o{index}.", *layout[name])
            for index, name in enumerate(sorted(layout))
        }
    except (KeyError, ValueError, TypeError) as error:
        raise InvalidArgument(
            argument, f"{where} is corrupt ({type(error).__name__}: {error})"
        ) from None
    for name, acc in accumulators.items():
        try:
            acc.check_consistent()
        except InconsistentState as error:
            raise InvalidArgument(
                argument,
                f"{where} is corrupt: output {name!r}: {error}; a state that cannot "
                "have come from a run is refused, never used",
            ) from None
    return accumulators


def merge_accumulators(
    parts: Sequence[Mapping[str, Accumulator]], layout: Layout, start: int
) -> dict[str, Accumulator]:
    """Consecutive ranges' accumulators (in range order, the first starting at
    ``start``) merged into one set, bit for bit one accumulator fed every range."""
    merged = new_accumulators(layout, start)
    for part in parts:
        for name, acc in merged.items():
            acc.absorb(part[name])
    return merged


def exchange_between_processes(
    accumulators: Mapping[str, Accumulator], meta: dict
) -> list[tuple[dict[str, np.ndarray], dict]]:
    """Every process's (arrays, meta), in process order, via JAX's own collectives
    (``multihost_utils.process_allgather`` of the serialised states)."""
    from jax.experimental import multihost_utils

    buffer = io.BytesIO()
    np.savez(buffer, **states_to_arrays(accumulators), __meta__=json.dumps(meta))
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
