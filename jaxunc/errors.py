"""Error types shared by the library and the command line."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_ENVIRONMENT",
    "EXIT_FAILURE",
    "EnvironmentFailure",
    "Interrupted",
    "InvalidArgument",
    "check_positive_int",
]

EXIT_FAILURE = 1
"""Exit code of an unexpected failure (a bug: ``--debug`` shows the traceback)."""
EXIT_BAD_INPUT = 2
"""Exit code of bad input: an argument, a size, a file given on the command line."""
EXIT_ENVIRONMENT = 3
"""Exit code of a failure of the environment, not of the input: disk full, a file
that cannot be written, a lost peer process, an interrupted run (SIGINT/SIGTERM)."""


class InvalidArgument(ValueError):
    """A bad value for a named argument; ``argument`` is the parameter's name."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument
        self.detail = message


class EnvironmentFailure(RuntimeError):
    """A failure of the environment (disk, peers, signals), not of the input;
    ``resource`` names what failed (a path, ``peers``, a flag)."""

    def __init__(self, resource: str, message: str) -> None:
        super().__init__(f"{resource}: {message}")
        self.resource = resource
        self.detail = message


class Interrupted(BaseException):
    """Raised in the main thread by SIGTERM (the command line installs the handler),
    so that ``finally`` blocks remove staging folders and temporary files."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def check_positive_int(
    name: str, value: Any, *, minimum: int = 1, maximum: int | None = None
) -> int:
    """``value`` as an int, or ``InvalidArgument`` naming ``name`` unless it is an
    integer (Python or NumPy, not bool) in [``minimum``, ``maximum``]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise InvalidArgument(name, f"must be {wanted} (got {value!r})")
    if maximum is not None and value > maximum:
        raise InvalidArgument(name, f"must be <= {maximum} (got {value!r})")
    return int(value)
