"""Error types shared by the library and the command line."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["InvalidArgument", "check_positive_int"]


class InvalidArgument(ValueError):
    """A bad value for a named argument; ``argument`` is the parameter's name."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument
        self.detail = message


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
