"""Validation of study options shared by every study's configuration.

Each check raises ``InvalidArgument`` naming the option, which the command line turns
into ``argument --option-name: ...`` and exit code 2.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from jaxunc.errors import InvalidArgument

__all__ = ["PRECISIONS", "check_precision", "check_seed", "finite"]

PRECISIONS = ("float32", "float64")


def finite(name: str, value: Any) -> float:
    """``value`` as a float, or InvalidArgument unless it is a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(name, f"must be a number (got {value!r})") from None
    if not math.isfinite(number):
        raise InvalidArgument(name, f"must be finite (got {value!r})")
    return number


def check_seed(seed: Any) -> None:
    """A root seed is an integer in [0, 2**63)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidArgument("seed", f"must be an integer (got {seed!r})")
    if not 0 <= seed < 2**63:
        raise InvalidArgument("seed", f"must be in [0, 2**63) (got {seed!r})")


def check_precision(precision: Any) -> None:
    """float32 or float64; float64 only when 64-bit JAX is on (never switched here)."""
    if precision not in PRECISIONS:
        raise InvalidArgument(
            "precision",
            f"must be one of {list(PRECISIONS)} (got {precision!r})",
        )
    if precision == "float64" and not jax.config.jax_enable_x64:
        raise InvalidArgument(
            "precision",
            "float64 needs 64-bit JAX: "
            "call jax.config.update('jax_enable_x64', True) "
            "first (the jaxunc command does this for --precision float64)",
        )
