"""Provenance of a result: which jaxunc, which commit, which command, when, where.

``provenance(argv)`` is the ``provenance`` block the command line writes into every
JSON it produces (``jaxunc.cli``): the package version, the git commit of the source
tree when the package runs from a git checkout (read from ``.git`` without running
git; None otherwise, e.g. an installed wheel), the command line, the UTC time, the
platform and the devices.  Everything here is run-time provenance, not a result:
the golden tests skip the block.
"""

from __future__ import annotations

import datetime
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["git_commit", "provenance"]

_SOURCE = Path(__file__).resolve().parent.parent
"""The folder holding the ``jaxunc`` package (a git checkout's root in development)."""


def _git_dir(root: Path) -> Path | None:
    """The git directory of the checkout at ``root``: ``.git`` itself, or the folder
    a worktree's ``.git`` file points to (``gitdir: PATH``); None if neither."""
    dot_git = root / ".git"
    if dot_git.is_dir():
        return dot_git
    if dot_git.is_file():
        text = dot_git.read_text(errors="replace").strip()
        if text.startswith("gitdir:"):
            path = Path(text[len("gitdir:") :].strip())
            return path if path.is_absolute() else (root / path).resolve()
    return None


def _is_sha(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    """The commit a ref names: its loose file (in the worktree's git directory or
    the shared one named by ``commondir``) or its line in ``packed-refs``."""
    places = [git_dir]
    common = git_dir / "commondir"
    if common.is_file():
        shared = Path(common.read_text().strip())
        places.append(shared if shared.is_absolute() else (git_dir / shared).resolve())
    for place in places:
        loose = place / ref
        if loose.is_file():
            text = loose.read_text().strip()
            return text if _is_sha(text) else None
        packed = place / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name.strip() == ref and _is_sha(sha):
                    return sha
    return None


def git_commit(root: Path | None = None) -> str | None:
    """The 40-hex commit checked out at ``root`` (default: the source tree of this
    package), read from ``.git/HEAD`` without a subprocess; None when ``root`` is
    not a git checkout or the file cannot be read.  Uncommitted changes are not
    detected."""
    try:
        git_dir = _git_dir(_SOURCE if root is None else Path(root))
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text().strip()
        if head.startswith("ref:"):
            return _resolve_ref(git_dir, head[len("ref:") :].strip())
        return head if _is_sha(head) else None
    except OSError:
        return None


def _devices() -> list[str]:
    import jax

    return [f"{device.platform}:{device.device_kind}" for device in jax.devices()]


def provenance(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The ``provenance`` block of a result.

    Args:
      argv: the command line as a list of words, the program's name first (e.g.
        ``["jaxunc", "toy", "--n-gen", "30"]``); None: ``sys.argv``.

    Returns:
      ``jaxunc_version``; ``git_commit`` (or None); ``command_line`` (one string,
      shell-quoted so that it can be pasted back); ``utc_time`` (ISO 8601, seconds,
      ``Z``); ``python``; ``platform``; ``jax_version``; ``devices``
      (``platform:kind`` per device).
    """
    import jax

    import jaxunc

    words = list(sys.argv if argv is None else argv)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return {
        "jaxunc_version": jaxunc.__version__,
        "git_commit": git_commit(),
        "command_line": shlex.join(words),
        "utc_time": now.isoformat().replace("+00:00", "Z"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "jax_version": jax.__version__,
        "devices": _devices(),
    }
