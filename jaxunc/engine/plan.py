"""How a run is cut up: vectorised width, chunk size, ranges, processes, memory.

Nothing here changes a result's bits: the vectorised width depends on the
configuration only (events per pseudo-experiment), and chunks, devices, processes
and ranges only decide *where* pseudo-experiments are computed, never *how* (see
``jaxunc.engine.reduce`` for the fixed summation order).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxunc.engine.reduce import align_up
from jaxunc.errors import InvalidArgument, check_positive_int

__all__ = [
    "EVENTS_PER_STEP",
    "MAX_PSEUDO_EXPERIMENTS",
    "VECTOR_WIDTH",
    "Plan",
    "check_memory",
    "default_chunk_size",
    "default_memory_budget",
    "make_plan",
    "parse_memory",
    "vector_width",
]

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
"""Pseudo-experiment indices are folded into the root key as uint32."""

DEFAULT_EVENTS_PER_CHUNK = 2**22
"""Default events per chunk (~16 MiB of float32: stays in cache on CPU)."""

HOST_BYTES_PER_OUTPUT_BYTE = 16
"""Host memory per byte of per-pseudo-experiment output: the device copy, the host
copy and the float64 reduction buffers."""

MINIMUM_MEMORY_BUDGET = 2**20
MAXIMUM_MEMORY_BUDGET = 2**60

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
    total = number * _UNITS[unit]
    if not math.isfinite(total) or total > MAXIMUM_MEMORY_BUDGET:
        raise InvalidArgument(argument, f"must be at most 1EiB (got {text!r})")
    size = int(total)
    if size < MINIMUM_MEMORY_BUDGET:
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


class Plan(NamedTuple):
    """Where the pseudo-experiments of one run are computed.

    ``start``, ``stop``: the run's range [start, stop) (all processes);
    ``share_start``, ``share_stop``: this process's contiguous share of it;
    ``processes``, ``rank``: process count and this process's index;
    ``width``: pseudo-experiments per vectorised step; ``chunk_size``:
    pseudo-experiments per chunk (all local devices; whole steps per device);
    ``per_device``: the chunk's share of one device; ``budget``: bytes.
    """

    start: int
    stop: int
    share_start: int
    share_stop: int
    processes: int
    rank: int
    width: int
    chunk_size: int
    per_device: int
    budget: int

    def chunk_starts(self, resumed_at: int) -> list[int]:
        """First pseudo-experiment of every chunk still to compute after a resume at
        ``resumed_at`` (chunks start on whole vectorised steps)."""
        if resumed_at >= self.share_stop:
            return []
        base = resumed_at // self.width * self.width
        return list(range(base, self.share_stop, self.chunk_size))


def clip_range(pseudo_range: tuple[int, int] | None, n_pseudo: int) -> tuple[int, int]:
    """The run's range: ``pseudo_range`` (already checked by ``EngineOptions``)
    clipped to ``n_pseudo``, or all of [0, n_pseudo).  A range beyond a run's size
    selects nothing of that run (several runs of one study share the range); the
    partial result then covers [P, P)."""
    if pseudo_range is None:
        return 0, n_pseudo
    start, stop = pseudo_range
    return min(start, n_pseudo), min(stop, n_pseudo)


def process_share(
    start: int, stop: int, processes: int, rank: int, width: int
) -> tuple[int, int]:
    """Process ``rank``'s contiguous share of [start, stop), cut on whole vectorised
    steps."""
    cuts = (
        [start]
        + [
            max(start, (start + (stop - start) * p // processes) // width * width)
            for p in range(1, processes)
        ]
        + [stop]
    )
    return cuts[rank], cuts[rank + 1]


def output_bytes(shapes: Mapping[str, Any]) -> int:
    """Bytes of one pseudo-experiment's estimates (values and ok flags)."""
    return sum(
        math.prod(s.value.shape) * s.value.dtype.itemsize
        + math.prod(s.ok.shape) * s.ok.dtype.itemsize
        for s in shapes.values()
    )


def make_plan(
    n_pseudo: int,
    pseudo_range: tuple[int, int] | None,
    chunk_size: int | None,
    events_per_pseudo_experiment: int,
    per_pe_bytes: int,
    devices: int,
    processes: tuple[int, int],
    budget: int,
) -> Plan:
    """The plan of a run of ``n_pseudo`` pseudo-experiments on ``devices`` local
    devices, ``processes`` = (count, rank).  Without ``chunk_size`` the chunk holds
    about 2**22 events, less if the budget's host buffers ask for it."""
    start, stop = clip_range(pseudo_range, n_pseudo)
    count, rank = processes
    width = vector_width(events_per_pseudo_experiment)
    share_start, share_stop = process_share(start, stop, count, rank, width)
    if chunk_size is None:
        chunk_size = min(
            default_chunk_size(n_pseudo, events_per_pseudo_experiment, devices),
            max(1, budget // (HOST_BYTES_PER_OUTPUT_BYTE * max(per_pe_bytes, 1))),
        )
    chunk_size = align_up(check_positive_int("chunk_size", chunk_size), width * devices)
    return Plan(
        start=start,
        stop=stop,
        share_start=share_start,
        share_stop=share_stop,
        processes=count,
        rank=rank,
        width=width,
        chunk_size=chunk_size,
        per_device=chunk_size // devices,
        budget=budget,
    )


def check_memory(compiled: Any, plan: Plan, per_pe_bytes: int) -> None:
    """Refuse a chunk whose compiled program (XLA's own estimate) plus the host's
    reduction buffers exceed the plan's budget (``InvalidArgument``)."""
    try:
        analysis = compiled.memory_analysis()
        device = (
            analysis.temp_size_in_bytes
            + analysis.output_size_in_bytes
            + analysis.argument_size_in_bytes
        )
    except Exception:  # not every backend reports it
        return
    host = HOST_BYTES_PER_OUTPUT_BYTE * per_pe_bytes * plan.per_device
    if device + host > plan.budget:
        raise InvalidArgument(
            "memory_budget",
            f"a chunk of {plan.per_device} pseudo-experiments ({plan.width} per "
            f"vectorised step) needs about {(device + host) / 2**20:.0f} MiB (XLA's "
            f"estimate plus the host's buffers), more than the budget of "
            f"{plan.budget / 2**20:.0f} MiB: give a larger --memory-budget or a "
            "smaller --chunk-size",
        )
