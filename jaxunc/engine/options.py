"""The engine's options, validated once: ``EngineOptions``.

``run_pseudo_experiments(f, key, n, **options)`` and
``run_pseudo_experiments(f, key, n, options=EngineOptions(...))`` are the same call.
Every bad value raises ``InvalidArgument`` naming the option (the command line's
flag name where the option comes from one: ``range`` for ``pseudo_range``) when the
options are made, before anything is traced or computed.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxunc.engine.checkpoint import PartialResults
from jaxunc.engine.plan import parse_memory
from jaxunc.errors import InvalidArgument, check_positive_int

__all__ = ["CHECKPOINT_INTERVAL", "EngineOptions"]

CHECKPOINT_INTERVAL = 10.0
"""Default seconds between checkpoint writes (the final state is always written)."""


def check_edges(edges: Any, argument: str = "histogram_edges") -> np.ndarray:
    """``edges`` as a float64 1-D increasing array of at least two values."""
    edges = np.asarray(edges, np.float64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise InvalidArgument(
            argument, "histogram edges must be a 1-D increasing array of >= 2 values"
        )
    return edges


def check_pseudo_range(pseudo_range: Any) -> tuple[int, int]:
    """``(start, stop)`` with 0 <= start < stop; ``InvalidArgument("range", ...)``."""
    try:
        start, stop = (int(v) for v in pseudo_range)
    except (TypeError, ValueError):
        raise InvalidArgument(
            "range", f"must be a pair START, STOP (got {pseudo_range!r})"
        ) from None
    if not 0 <= start < stop:
        raise InvalidArgument("range", f"needs 0 <= START < STOP (got {start}:{stop})")
    return start, stop


def check_interval(seconds: Any) -> float:
    """A finite number of seconds >= 0; ``InvalidArgument("checkpoint_interval")``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.number)):
        raise InvalidArgument(
            "checkpoint_interval", f"must be a number of seconds (got {seconds!r})"
        )
    if not math.isfinite(seconds):
        raise InvalidArgument("checkpoint_interval", f"must be finite (got {seconds})")
    if seconds < 0:
        raise InvalidArgument("checkpoint_interval", f"must be >= 0 (got {seconds})")
    return float(seconds)


@dataclasses.dataclass(frozen=True, eq=False)
class EngineOptions:
    """How ``run_pseudo_experiments`` runs (never *what* it computes: no option but
    ``histogram_edges`` changes a result's numbers, and every option that could
    change them enters the run's identity).

    Attributes:
      chunk_size: pseudo-experiments per compiled call (default: about 2**22
        events, less if the memory budget asks for it); rounded up to whole
        vectorised steps per device; the last chunk is padded (its padding is
        computed and discarded: one compilation per run).
      events_per_pseudo_experiment: events generated per pseudo-experiment (>= 0);
        sets the vectorised width (``vector_width``) and the throughput report.
      histogram_edges: bin edges per output name (histograms of the estimates);
        stored as float64 arrays.
      progress: show a progress bar on a terminal for runs longer than a second.
      devices: devices to shard chunks over (default: all local devices; and,
        after ``jax.distributed.initialize``, every process takes a contiguous
        share of the pseudo-experiments, exchanged with JAX's collectives).
        Explicit devices mean one process.
      description: the run's name; unique among the engine runs of one study (it
        names the run's checkpoint sub-folder and partial result).
      config: JSON-able dict identifying the study's configuration; stored in
        checkpoints and partial results (the traced function is fingerprinted too).
      checkpoint: folder for checkpoints (None: no checkpoint).  A run resumes from
        the state found there; a state of another configuration is refused.
      checkpoint_interval: seconds between checkpoint writes (0: after every chunk;
        the final state is always written).
      pseudo_range: ``(start, stop)``, 0 <= start < stop: run only
        pseudo-experiments [start, stop) (clipped to the run's size); the result's
        moments are those of the range.
      partials: a ``PartialResults`` that receives this run's exact reductions (to
        be merged with other ranges' by ``merge``).
      merge: partial results covering [0, n_pseudo) disjointly: nothing is
        computed; the result is bit for bit that of one run.
      memory_budget: bytes (or a string such as ``"2GiB"``; stored as int) the run
        may use (default: half the device's memory, or half the host's RAM on CPU);
        sets the default chunk size; a chunk that exceeds it is refused.
    """

    chunk_size: int | None = None
    events_per_pseudo_experiment: int = 0
    histogram_edges: Mapping[str, Any] | None = None
    progress: bool = True
    devices: Sequence[jax.Device] | None = None
    description: str = "pseudo-experiments"
    config: Mapping[str, Any] | None = None
    checkpoint: str | os.PathLike | None = None
    checkpoint_interval: float = CHECKPOINT_INTERVAL
    pseudo_range: tuple[int, int] | None = None
    partials: PartialResults | None = None
    merge: Sequence[PartialResults] | None = None
    memory_budget: int | str | None = None

    def __post_init__(self) -> None:
        for name, value in self._checked().items():
            object.__setattr__(self, name, value)

    def _checked(self) -> dict[str, Any]:
        """Every option checked and in its canonical form."""
        checked: dict[str, Any] = {}
        if self.chunk_size is not None:
            checked["chunk_size"] = check_positive_int("chunk_size", self.chunk_size)
        checked["events_per_pseudo_experiment"] = check_positive_int(
            "events_per_pseudo_experiment", self.events_per_pseudo_experiment, minimum=0
        )
        if self.histogram_edges is not None:
            if not isinstance(self.histogram_edges, Mapping):
                raise InvalidArgument(
                    "histogram_edges", "must be a dict of bin edges by output name"
                )
            checked["histogram_edges"] = {
                str(name): check_edges(edges)
                for name, edges in self.histogram_edges.items()
            }
        if self.devices is not None:
            checked["devices"] = tuple(self.devices)
            if not checked["devices"]:
                raise InvalidArgument("devices", "must name at least one device")
        if not isinstance(self.description, str):
            raise InvalidArgument(
                "description", f"must be a string (got {self.description!r})"
            )
        if self.config is not None and not isinstance(self.config, Mapping):
            raise InvalidArgument("config", "must be a JSON-able dict")
        if self.checkpoint is not None:
            checked["checkpoint"] = Path(self.checkpoint)
        checked["checkpoint_interval"] = check_interval(self.checkpoint_interval)
        if self.pseudo_range is not None:
            checked["pseudo_range"] = check_pseudo_range(self.pseudo_range)
        if self.partials is not None and not isinstance(self.partials, PartialResults):
            raise InvalidArgument("partials", "must be a PartialResults")
        if self.merge is not None:
            checked["merge"] = self._checked_merge()
        if self.memory_budget is not None:
            checked["memory_budget"] = parse_memory(self.memory_budget)
        return checked

    def _checked_merge(self) -> tuple[PartialResults, ...]:
        merge = self.merge
        if isinstance(merge, PartialResults) or not isinstance(merge, Sequence):
            raise InvalidArgument("parts", "must be a sequence of PartialResults")
        if not all(isinstance(part, PartialResults) for part in merge):
            raise InvalidArgument("parts", "must be a sequence of PartialResults")
        return tuple(merge)

    def replace(self, **changes: Any) -> EngineOptions:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)
