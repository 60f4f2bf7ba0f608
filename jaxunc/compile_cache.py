"""JAX's persistent compilation cache for the ``jaxunc`` command.

XLA compilation is a large part of a run on CPU (about 38 % of the default ``jaxunc
fisher``), and a run compiles the same programs as the run before it.  The command
therefore turns on JAX's own persistent cache (``jax_compilation_cache_dir``), so a
repeated command loads its executables from disk instead of compiling them again.
A cache hit loads the very executable a compile would produce: numbers cannot
change.

Where the cache lives (``cache_plan``), first rule that applies:

1. ``--no-compile-cache`` or ``JAXUNC_NO_COMPILE_CACHE=1`` (any value but ``""``,
   ``0``, ``false``, ``no``, ``off``): no persistent cache for the command;
2. ``JAX_COMPILATION_CACHE_DIR`` set: JAX's own setting, left as it is (the test
   suite points it at a folder of its own, so tests never write to the user's
   cache);
3. ``$XDG_CACHE_HOME/jaxunc`` when ``XDG_CACHE_HOME`` is set to an absolute path,
   else ``~/.cache/jaxunc``.

Only programs that took at least ``MIN_COMPILE_SECONDS`` to compile are written
(``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` overrides it).  A folder that
cannot be created or written is reported once and the command runs uncached.  The
library itself never switches the cache on: that is the caller's choice
(``jax.config.update("jax_compilation_cache_dir", ...)``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

__all__ = [
    "DISABLE_VARIABLE",
    "JAX_VARIABLE",
    "MIN_COMPILE_SECONDS",
    "CachePlan",
    "cache_plan",
    "compile_cache",
    "default_folder",
]

DISABLE_VARIABLE = "JAXUNC_NO_COMPILE_CACHE"
"""Environment variable that turns the command's persistent cache off."""
JAX_VARIABLE = "JAX_COMPILATION_CACHE_DIR"
"""JAX's own cache-folder variable; when set, jaxunc leaves JAX's setting alone."""
MIN_COMPILE_VARIABLE = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"

MIN_COMPILE_SECONDS = 0.1
"""Programs that compiled faster than this are not written to the cache (seconds).
JAX's default, 1 s, would leave out most of jaxunc's programs on CPU: the default
``jaxunc fisher`` compiles many programs of 0.1-1 s each, which together are most of
its compile time (``benchmarks/bench_compile_cache.py``); below 0.1 s a program
costs about as much to load from disk as to compile."""

_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclasses.dataclass(frozen=True)
class CachePlan:
    """Where the command's persistent cache is.

    Attributes:
      folder: the cache folder; None: no persistent cache (opted out).
      source: why: ``"--no-compile-cache"``, ``DISABLE_VARIABLE``,
        ``JAX_VARIABLE`` (JAX's own setting, left alone) or ``"default"``.
    """

    folder: Path | None
    source: str


def default_folder(environ: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/jaxunc`` when ``XDG_CACHE_HOME`` is an absolute path (the
    XDG specification ignores a relative one), else ``~/.cache/jaxunc``."""
    base = environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "jaxunc"


def cache_plan(disabled: bool, environ: Mapping[str, str]) -> CachePlan:
    """The cache folder the command uses (see the module docstring for the rules).

    Args:
      disabled: ``--no-compile-cache`` was given.
      environ: the environment (``os.environ``).
    """
    if disabled:
        return CachePlan(None, "--no-compile-cache")
    if environ.get(DISABLE_VARIABLE, "").strip().lower() not in _FALSE:
        return CachePlan(None, DISABLE_VARIABLE)
    if environ.get(JAX_VARIABLE):
        return CachePlan(Path(environ[JAX_VARIABLE]), JAX_VARIABLE)
    return CachePlan(default_folder(environ), "default")


def _unwritable(folder: Path) -> str | None:
    """Why files cannot be written into ``folder`` (created if missing); None when
    they can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".jaxunc-probe-", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        return error.strerror or str(error)
    return None


def _apply(folder: str | None, min_seconds: float) -> None:
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_seconds)
    # JAX opens its cache once per process; start over with the new folder
    compilation_cache.reset_cache()


@contextlib.contextmanager
def compile_cache(
    disabled: bool = False,
    *,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Iterator[Path | None]:
    """JAX's persistent compilation cache for the duration of a command; yields
    the folder in use (None: uncached).

    The previous settings are restored on exit, so ``jaxunc.cli.main`` called
    in-process leaves its caller's cache alone.  An unwritable folder is reported
    once through ``warn`` (a message) and the command runs uncached.

    Args:
      disabled: ``--no-compile-cache``.
      environ: the environment (default ``os.environ``).
      warn: called with the one-line warning (default: ``warnings.warn``).
    """
    import jax

    environ = os.environ if environ is None else environ
    plan = cache_plan(disabled, environ)
    if plan.source == JAX_VARIABLE:  # JAX configured itself from the variable
        yield plan.folder
        return
    folder = plan.folder
    if folder is not None:
        reason = _unwritable(folder)
        if reason is not None:
            message = (
                f"cannot write the compilation cache folder {str(folder)!r} "
                f"({reason}); running without the persistent cache (set "
                f"XDG_CACHE_HOME, or give --no-compile-cache or "
                f"{DISABLE_VARIABLE}=1 to silence this)"
            )
            if warn is None:
                import warnings

                warnings.warn(message, stacklevel=3)
            else:
                warn(message)
            folder = None
    previous = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    try:
        min_seconds = float(environ.get(MIN_COMPILE_VARIABLE, MIN_COMPILE_SECONDS))
    except ValueError:
        min_seconds = MIN_COMPILE_SECONDS
    wanted = (None if folder is None else str(folder), min_seconds)
    if wanted == previous:
        yield folder
        return
    _apply(*wanted)
    try:
        yield folder
    finally:
        _apply(*previous)
