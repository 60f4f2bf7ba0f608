"""Output folders replaced whole: staged next to ``--out``, swapped in by renames.

A command's result is built in a staging folder ``.<name>.jaxunc-staging-<host>-<pid>-
<random>`` next to the output folder ``<name>``, created before any work (so a folder
that cannot be written is found in a second, not after the computation).  On success
the staging folder is renamed to ``<name>``; an existing ``<name>`` is first renamed
aside (``.<name>.jaxunc-old-...``) and then removed, so the folder always holds
exactly one run's complete result, never a mix of two (two concurrent runs: the one
that finishes last wins, whole).  On any failure, SIGINT or SIGTERM the staging
folder is removed.  A run killed with SIGKILL cannot clean up: its leftovers are
removed by the next run into the same folder (when their process is gone on this
host) or reported (another host's).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from jaxunc.errors import EnvironmentFailure, InvalidArgument

__all__ = ["clean_leftovers", "output_folder"]

_STAGING = ".jaxunc-staging-"
_ASIDE = ".jaxunc-old-"
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


def _host() -> str:
    return socket.gethostname().replace("-", "_") or "host"


def _tag() -> str:
    """``<host>-<pid>-<random>``: who made a staging or aside folder."""
    return f"{_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_leftovers(out: Path) -> list[str]:
    """Remove the staging and aside folders of ``out`` left by runs on this host
    whose process is gone (killed with SIGKILL); one message per folder removed or,
    for another host's or a live process's folder, left in place."""
    out = Path(os.path.abspath(out))
    messages = []
    if not out.parent.is_dir():
        return messages
    for mark in (_STAGING, _ASIDE):
        prefix = f".{out.name}{mark}"
        for path in sorted(out.parent.glob(prefix + "*")):
            host, _, rest = path.name[len(prefix) :].partition("-")
            pid_text = rest.partition("-")[0]
            if host != _host() or not pid_text.isdigit():
                messages.append(
                    f"left {str(path)!r} in place: made by a run on host {host!r} "
                    "(remove it once no run there writes to this folder)"
                )
            elif not _alive(int(pid_text)):
                shutil.rmtree(path, ignore_errors=True)
                messages.append(
                    f"removed {str(path)!r}, left by an interrupted run "
                    f"(process {pid_text})"
                )
    return messages


def remove_own_staging(out: Path) -> None:
    """Remove this process's staging folders of ``out`` (for a process about to
    exit without unwinding: its main thread blocked on a lost peer)."""
    out = Path(os.path.abspath(out))
    pattern = f".{out.name}{_STAGING}{_host()}-{os.getpid()}-*"
    for path in out.parent.glob(pattern):
        shutil.rmtree(path, ignore_errors=True)


def _refuse_foreign(out: Path, recognised: Callable[[Path], bool]) -> None:
    """``InvalidArgument("out")`` unless ``out`` is absent, an empty folder or a
    folder this program wrote (``recognised``): it is going to be replaced whole."""
    if out.exists() and not out.is_dir():
        raise InvalidArgument("out", f"{str(out)!r} exists and is not a folder")
    if out.parent == out:
        raise InvalidArgument("out", f"{str(out)!r} is a file-system root")
    if out.is_dir() and any(out.iterdir()) and not recognised(out):
        raise InvalidArgument(
            "out",
            f"{str(out)!r} holds files that jaxunc did not write; the output folder "
            "is replaced whole, so give a new or empty folder",
        )


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, deepest last."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        path.mkdir()
    return list(reversed(missing))


def _create_staging(out: Path) -> tuple[Path, list[Path]]:
    """The staging folder next to ``out`` (and the parents created for it)."""
    created: list[Path] = []
    try:
        created = _make_parents(out.parent)
        staging = out.parent / f".{out.name}{_STAGING}{_tag()}"
        staging.mkdir()
        return staging, created
    except OSError as error:
        _remove_created(created)
        text = (
            f"cannot write under {str(out.parent)!r}: no folder can be created "
            f"there ({error.strerror or error})"
        )
        if error.errno in _ENVIRONMENT_ERRNOS:
            raise EnvironmentFailure("out", text) from None
        raise InvalidArgument("out", text) from None


def _remove_created(created: list[Path]) -> None:
    for path in reversed(created):  # deepest first
        with contextlib.suppress(OSError):
            path.rmdir()


def _swap(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``, moving an existing ``out`` aside first (and
    removing it after): ``out`` is only ever one run's complete folder."""
    asides = []
    try:
        for _ in range(1000):
            try:
                os.rename(staging, out)
                return
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            aside = out.parent / f".{out.name}{_ASIDE}{_tag()}"
            with contextlib.suppress(FileNotFoundError):  # another run moved it
                os.rename(out, aside)
                asides.append(aside)
        raise EnvironmentFailure(
            "out", f"{str(out)!r} kept being replaced by other runs"
        )
    finally:
        for aside in asides:
            shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def output_folder(
    out: Path,
    recognised: Callable[[Path], bool] = lambda folder: False,
    report: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """A staging folder for the complete contents of ``out``, swapped in as a whole
    when the block succeeds, removed when it fails (any exception, SIGINT, SIGTERM).

    Created on entry, before the work: ``InvalidArgument("out")`` if ``out`` is a
    file, a folder of foreign files (not ``recognised``), or cannot be created;
    ``EnvironmentFailure("out")`` when the disk is full.  Leftovers of killed runs
    are cleaned first and each passed to ``report``.
    """
    out = Path(os.path.abspath(out))
    _refuse_foreign(out, recognised)
    for message in clean_leftovers(out):
        if report is not None:
            report(message)
    staging, created = _create_staging(out)
    try:
        yield staging
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_created(created)
        raise
