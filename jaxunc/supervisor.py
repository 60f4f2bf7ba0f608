"""Multi-process commands (``--coordinator``) run supervised.

JAX's distributed runtime ends a process whose peer (or coordinator) is lost from a
C++ thread: a fatal log and SIGABRT, which no Python code can catch.  ``supervise``
runs the command in a worker process (this process forked, or ``python -m jaxunc``)
and turns such an end into one paragraph and exit code 3; every other end passes
through unchanged.  (Peers lost while the command runs are noticed earlier, inside
the worker, by ``jaxunc.peers.PeerWatchdog``.)
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jaxunc.errors import EXIT_ENVIRONMENT

__all__ = ["supervise", "wants_supervisor"]

_SUPERVISED = "JAXUNC_SUPERVISED"
"""Set in the environment of the worker process that a supervisor started."""

_ABSL_LINE = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.-]+:\d+\]")
"""The first line of a C++ log message of JAX's runtime (absl's format)."""


def wants_supervisor(argv: Sequence[str]) -> bool:
    """Whether this is a multi-process command (--coordinator) not yet supervised."""
    return os.environ.get(_SUPERVISED) != "1" and any(
        a == "--coordinator" or a.startswith("--coordinator=") for a in argv
    )


def _out_argument(argv: Sequence[str]) -> Path | None:
    """The --out of ``argv`` (its last), read without the parser (the supervisor
    imports neither JAX nor the studies)."""
    out = None
    for number, arg in enumerate(argv):
        if arg == "--out" and number + 1 < len(argv):
            out = argv[number + 1]
        elif arg.startswith("--out="):
            out = arg[len("--out=") :]
    return None if out is None else Path(out)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the worker gets SIGKILL when its supervisor dies (``kill -9`` of the
    process a user started ends the work too)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Forked:
    """A forked worker with the few methods of ``subprocess.Popen`` used here."""

    def __init__(self, pid: int, stderr: Any) -> None:
        self.pid, self.stderr = pid, stderr

    def send_signal(self, number: int) -> None:
        os.kill(self.pid, number)

    def wait(self) -> int:
        while True:
            try:
                return os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            except InterruptedError:  # pragma: no cover - PEP 475 retries already
                continue


def supervise(
    argv: Sequence[str], main: Callable[[list[str]], int], fork: bool = False
) -> int:
    """Run the multi-process command ``argv`` in a worker process and translate how
    it ends.

    JAX's distributed runtime ends a process whose peer (or coordinator) is lost
    from a C++ thread: a fatal log and SIGABRT, which no Python code can catch (the
    coordinator's death is seen at once, before any timeout of this process).
    The worker's stderr is passed through until the runtime's first C++ log line,
    then held back: if the worker was aborted by the runtime, one paragraph (exit
    code 3) replaces the log (shown with --debug), and the leftovers of its output
    folder are removed; otherwise the held lines follow and its exit code is
    returned.  SIGTERM is passed on to the worker; SIGINT reaches it directly.
    ``main``: the command's entry point (``jaxunc.cli.main``), called in the forked
    worker.  ``fork``: the worker is this process forked (the program itself: JAX
    is imported, no backend started); else ``python -m jaxunc`` (a call from
    Python).
    """
    import subprocess

    command = next((a for a in argv if not a.startswith("-")), "")
    if fork:  # the worker inherits the imported modules (no second JAX import)
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker
            os.close(read_end)
            os.dup2(write_end, 2)
            os.close(write_end)
            _die_with_parent()
            os.environ[_SUPERVISED] = "1"
            return main(list(argv))
        os.close(write_end)
        worker: Any = _Forked(pid, os.fdopen(read_end, "rb"))
    else:
        env = {**os.environ, _SUPERVISED: "1"}
        worker = subprocess.Popen(
            [sys.executable, "-m", "jaxunc", *argv],
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=_die_with_parent,
        )
    forwarding = threading.current_thread() is threading.main_thread()
    if forwarding:
        previous = {
            signal.SIGTERM: signal.signal(
                signal.SIGTERM, lambda number, frame: worker.send_signal(number)
            ),
            signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        }
    held: list[bytes] = []
    try:
        out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
        for line in worker.stderr:
            if held or _ABSL_LINE.match(line):
                held.append(line)
            elif out is not None:
                out.write(line)
                out.flush()
            else:
                sys.stderr.write(line.decode(errors="replace"))
        code = worker.wait()
    finally:
        if forwarding:
            for number, handler in previous.items():
                signal.signal(number, handler)
    log = b"".join(held).decode(errors="replace")
    aborted = code in (-signal.SIGABRT, 128 + signal.SIGABRT)
    if aborted and ("distributed service" in log or "coordination" in log.lower()):
        if "--debug" in argv:
            sys.stderr.write(log)
        out_folder = _out_argument(argv)
        if out_folder is not None:
            from jaxunc.outdir import clean_leftovers

            clean_leftovers(out_folder)
        sys.stderr.write(
            f"jaxunc {command}: failed: --coordinator: a peer process of the run was "
            "lost (the coordinator, process 0, died or became unreachable), and "
            "JAX's distributed runtime stopped this process; exit code 3. Nothing "
            "was written; a --checkpoint keeps every process's completed chunks: "
            "start every process again with the same command to resume (--debug "
            "shows the runtime's log).\n"
        )
        sys.stderr.flush()
        return EXIT_ENVIRONMENT
    sys.stderr.write(log)
    if code < 0:
        name = signal.Signals(-code).name
        sys.stderr.write(
            f"jaxunc {command}: failed: the worker process ended by {name}\n"
        )
        return EXIT_ENVIRONMENT
    return code
