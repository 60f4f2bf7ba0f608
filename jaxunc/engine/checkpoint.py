"""Files of the engine: checkpoints of a running range and partial results.

A run of the engine is identified by an *identity*: a JSON-able dict of everything
that fixes its numbers (the study's configuration, the root key's data, the number of
pseudo-experiments, the outputs' shapes and dtypes, the histogram edges, the
reduction block and the vectorised width) and nothing that does not (chunk size,
device or process count, memory budget).  Its SHA-256 is stored with every file, so
a checkpoint or partial result of another configuration is refused, never mixed.

Layout of a checkpoint folder ``DIR`` (one sub-folder per engine run of a study,
named after the run's ``description``)::

    DIR/<description>-<hash8>/manifest.json       the identity, readable
    DIR/<description>-<hash8>/state-START-STOP.npz the reductions of [START, position)

A state file is replaced atomically (written to a temporary file in the same folder,
flushed to disk, then ``os.replace``), so a run killed at any moment — SIGKILL
included — leaves either the previous state or the new one.

Layout of a partial result (``--range``; see ``PartialResults``)::

    OUT/partial.json                   the command, its arguments and every run's range
    OUT/partial-<description>-<hash8>.npz  one per engine run of the study
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxunc.errors import InvalidArgument

__all__ = [
    "FORMAT_VERSION",
    "PartialResults",
    "PartialState",
    "check_checkpoint_folder",
    "covering_order",
    "describe_mismatch",
    "identity_hash",
    "open_checkpoint",
    "read_json",
    "read_state",
    "run_folder_name",
    "write_json_atomic",
    "write_state",
]

FORMAT_VERSION = 2
"""Version of the state, manifest and partial-result files.  2: the accumulators
carry ``failures_by_result`` (failures by result code).  Files of another version
are refused (as corrupt), never misread."""
_META = "__meta__"


def _canonical(value: Any) -> Any:
    """``value`` with tuples as lists and numpy scalars/arrays as Python values."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, np.ndarray):
        return _canonical(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"a run's configuration must be JSON-able (got {type(value).__name__})"
    )


def identity_hash(identity: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``identity``."""
    text = json.dumps(_canonical(identity), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def run_folder_name(description: str) -> str:
    """A file-name-safe, unique name for the engine run ``description``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", description).strip("-.") or "run"
    return f"{slug[:48]}-{hashlib.sha256(description.encode()).hexdigest()[:8]}"


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    old, new = _canonical(old), _canonical(new)
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def describe_mismatch(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """Which top-level identity fields (and config fields) differ."""
    fields = _differences(old, new)
    if "config" in fields and isinstance(old.get("config"), Mapping):
        inner = _differences(old.get("config") or {}, new.get("config") or {})
        fields = [f for f in fields if f != "config"] + [f"config.{k}" for k in inner]
    return ", ".join(fields) or "format"


# ------------------------------------------------------------------------ state files


def write_state(path: Path, arrays: Mapping[str, np.ndarray], meta: dict) -> None:
    """Write ``arrays`` and the JSON ``meta`` to ``path`` atomically (.npz)."""
    path = Path(path)
    payload = dict(arrays)
    payload[_META] = np.array(json.dumps(_canonical(meta), sort_keys=True))
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with _suppress_os_error():
            os.unlink(temporary)
        raise


class _suppress_os_error:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, traceback) -> bool:
        return kind is not None and issubclass(kind, OSError)


def read_state(path: Path, argument: str) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and meta of a state file; ``InvalidArgument(argument, ...)`` if it is
    unreadable or corrupt."""
    path = Path(path)
    try:
        data = path.read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(str(arrays.pop(_META)))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown format {meta.get('format')!r}")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise InvalidArgument(
            argument,
            f"{str(path)!r} is corrupt or unreadable ({type(error).__name__}: "
            f"{error}); delete it to start that run over",
        ) from None
    return arrays, meta


def read_json(path: Path, argument: str) -> dict:
    """A JSON object from ``path``; ``InvalidArgument`` if unreadable or corrupt."""
    try:
        value = json.loads(Path(path).read_text())
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        raise InvalidArgument(
            argument,
            f"{str(path)!r} is corrupt or unreadable ({type(error).__name__}: {error})",
        ) from None
    return value


def write_json_atomic(path: Path, value: dict) -> None:
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(_canonical(value), stream, indent=2, sort_keys=True)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:  # disk full, SIGTERM: no temporary file left behind
        with _suppress_os_error():
            os.unlink(temporary)
        raise


def remove_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of ``write_state``/``write_json_atomic`` for
    ``path`` left by a process killed mid-write (SIGKILL); the ones removed.  Call
    it only from the process that owns ``path``."""
    path = Path(path)
    removed = []
    for leftover in path.parent.glob(f".{path.name}-*"):
        with _suppress_os_error():
            leftover.unlink()
            removed.append(leftover)
    return removed


def check_checkpoint_folder(folder: str | os.PathLike) -> None:
    """Fail fast, before any work, on a checkpoint folder that cannot be used: a path
    that is not a folder, or a run manifest in it that is corrupt.

    Raises ``InvalidArgument("checkpoint", ...)``.  Configuration mismatches are found
    when each engine run opens its own sub-folder (``open_checkpoint``).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgument("checkpoint", f"{str(folder)!r} is not a folder")
    if folder.is_dir():
        for manifest in sorted(folder.glob("*/manifest.json")):
            read_json(manifest, "checkpoint")


def open_checkpoint(folder: Path, identity: Mapping[str, Any]) -> Path:
    """The checkpoint sub-folder of one engine run; creates it with its manifest, or
    checks that an existing manifest describes the same run.

    Raises ``InvalidArgument("checkpoint", ...)`` for another configuration or a
    corrupt manifest.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgument("checkpoint", f"{str(folder)!r} is not a folder")
    run = folder / run_folder_name(identity["description"])
    manifest = run / "manifest.json"
    digest = identity_hash(identity)
    if manifest.exists():
        stored = read_json(manifest, "checkpoint")
        if stored.get("identity_sha256") != digest:
            old = stored.get("identity", {})
            raise InvalidArgument(
                "checkpoint",
                f"{str(folder)!r} holds a checkpoint of a different configuration "
                f"(differs in: {describe_mismatch(old, identity)}); refusing to mix "
                "them: use another folder, or delete this one to start over",
            )
        return run
    try:
        run.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            manifest,
            {
                "format": FORMAT_VERSION,
                "identity": identity,
                "identity_sha256": digest,
            },
        )
    except OSError as error:
        raise InvalidArgument(
            "checkpoint", f"cannot write under {str(folder)!r} ({error})"
        ) from None
    return run


# ---------------------------------------------------------------------- partial results


@dataclasses.dataclass(frozen=True)
class PartialState:
    """The exact reductions of pseudo-experiments [start, stop) of one engine run.

    ``arrays``: the serialised accumulators (see ``jaxunc.engine.reduce``);
    ``identity``: the run's identity (``identity_sha256`` its hash); ``n_pseudo``:
    the run's total.
    """

    identity: dict
    identity_sha256: str
    start: int
    stop: int
    arrays: dict[str, np.ndarray]

    @property
    def n_pseudo(self) -> int:
        return int(self.identity["n_pseudo"])

    @property
    def description(self) -> str:
        return str(self.identity["description"])

    def meta(self) -> dict:
        return {
            "format": FORMAT_VERSION,
            "identity": self.identity,
            "identity_sha256": self.identity_sha256,
            "start": self.start,
            "stop": self.stop,
        }

    @classmethod
    def from_file(cls, path: Path, argument: str) -> PartialState:
        arrays, meta = read_state(path, argument)
        try:
            state = cls(
                identity=meta["identity"],
                identity_sha256=meta["identity_sha256"],
                start=int(meta["start"]),
                stop=int(meta["stop"]),
                arrays=arrays,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidArgument(
                argument, f"{str(path)!r} is corrupt (missing {error})"
            ) from None
        if identity_hash(state.identity) != state.identity_sha256:
            raise InvalidArgument(
                argument, f"{str(path)!r} is corrupt (identity hash mismatch)"
            )
        try:
            n_pseudo = state.n_pseudo
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(
                argument, f"{str(path)!r} is corrupt (no n_pseudo in its identity)"
            ) from None
        if not 0 <= state.start <= state.stop <= n_pseudo:
            raise InvalidArgument(
                argument,
                f"{str(path)!r} is corrupt: its range [{state.start}, {state.stop}) "
                f"is not a range of the run's {n_pseudo} pseudo-experiments",
            )
        return state


class PartialResults:
    """Partial results of the engine runs of one command (``--range``), by run.

    The engine adds one ``PartialState`` per run (``add``); ``save(folder)`` writes
    ``partial.json`` (``info`` — e.g. the command and its arguments — and each run's
    range) and one ``partial-<run>.npz`` per run; ``load(folder)`` reads them back.
    """

    def __init__(self, info: Mapping[str, Any] | None = None) -> None:
        self.info: dict = dict(info or {})
        self.states: dict[str, PartialState] = {}

    def add(self, state: PartialState) -> None:
        if state.description in self.states:
            raise ValueError(
                f"two engine runs share the description {state.description!r}; "
                "each run of a study needs its own"
            )
        self.states[state.description] = state

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        runs = {}
        for description, state in self.states.items():
            name = f"partial-{run_folder_name(description)}.npz"
            write_state(folder / name, state.arrays, state.meta())
            runs[description] = {
                "file": name,
                "start": state.start,
                "stop": state.stop,
                "n_pseudo": state.n_pseudo,
                "identity_sha256": state.identity_sha256,
            }
        write_json_atomic(
            folder / "partial.json",
            {"format": FORMAT_VERSION, "info": self.info, "runs": runs},
        )

    @classmethod
    def load(cls, folder: Path, argument: str = "parts") -> PartialResults:
        folder = Path(folder)
        index_path = folder / "partial.json"
        if not index_path.is_file():
            raise InvalidArgument(
                argument,
                f"{str(folder)!r} holds no partial result (no partial.json; write "
                "one with --range START:STOP)",
            )
        index = read_json(index_path, argument)
        if index.get("format") != FORMAT_VERSION or not isinstance(
            index.get("runs"), dict
        ):
            raise InvalidArgument(argument, f"{str(index_path)!r} is corrupt")
        results = cls(index.get("info"))
        for description, entry in index["runs"].items():
            try:
                path = folder / str(entry["file"])
            except (KeyError, TypeError):
                raise InvalidArgument(
                    argument, f"{str(index_path)!r} is corrupt"
                ) from None
            state = PartialState.from_file(path, argument)
            if state.description != description:
                raise InvalidArgument(argument, f"{str(path)!r} is corrupt")
            _check_index_entry(entry, state, index_path, path, argument)
            results.add(state)
        return results


def _check_index_entry(
    entry: Mapping[str, Any],
    state: PartialState,
    index_path: Path,
    path: Path,
    argument: str,
) -> None:
    """Refuse a ``partial.json`` entry that contradicts its state file (range,
    total, configuration): one of the two was edited or comes from another run."""
    stated = {
        "start": state.start,
        "stop": state.stop,
        "n_pseudo": state.n_pseudo,
        "identity_sha256": state.identity_sha256,
    }
    differing = [key for key, value in stated.items() if entry.get(key) != value]
    if differing:
        key = differing[0]
        raise InvalidArgument(
            argument,
            f"{str(index_path)!r} is inconsistent with {str(path)!r}: {key} is "
            f"{entry.get(key)!r} in one and {stated[key]!r} in the other; recompute "
            "that part with --range",
        )


def covering_order(
    states: Iterable[PartialState],
    argument: str = "parts",
    start: int = 0,
    stop: int | None = None,
) -> Sequence[PartialState]:
    """``states`` sorted by start, checked to be disjoint, to cover [start, stop)
    (default [0, n_pseudo)) and to share one identity; else
    ``InvalidArgument(argument, ...)``."""
    states = sorted(states, key=lambda s: (s.start, s.stop))
    if not states:
        raise InvalidArgument(argument, "no partial results to merge")
    first = states[0]
    for state in states[1:]:
        if state.identity_sha256 != first.identity_sha256:
            raise InvalidArgument(
                argument,
                f"partial results of run {first.description!r} have different "
                "configurations (differ in: "
                f"{describe_mismatch(first.identity, state.identity)})",
            )
    # A range that misses a run entirely (a run with fewer pseudo-experiments than
    # the range's start) leaves an empty state: it neither covers nor overlaps.
    states = [s for s in states if s.stop > s.start] or states[:1]
    position = start
    stop = first.n_pseudo if stop is None else stop
    previous = None
    for state in states:
        if state.start > position:
            raise InvalidArgument(
                argument,
                f"run {first.description!r}: pseudo-experiments [{position}, "
                f"{state.start}) are in no partial result (a gap)",
            )
        if state.start < position:
            raise InvalidArgument(
                argument,
                f"run {first.description!r}: the ranges [{previous.start}, "
                f"{previous.stop}) and [{state.start}, {state.stop}) overlap",
            )
        position, previous = state.stop, state
    if position != stop:
        raise InvalidArgument(
            argument,
            f"run {first.description!r}: pseudo-experiments [{position}, "
            f"{stop}) are in no partial result (a gap)",
        )
    return states
