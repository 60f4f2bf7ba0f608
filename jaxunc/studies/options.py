"""Validation of study options shared by every study's configuration.

Each check raises ``InvalidArgument`` naming the option, which the command line turns
into ``argument --option-name: ...`` and exit code 2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxunc.errors import InvalidArgument

__all__ = [
    "PRECISIONS",
    "check_at_precision",
    "check_precision",
    "check_seed",
    "finite",
]

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


def check_at_precision(
    values: Mapping[str, float],
    precision: str,
    events: int,
    positive: Sequence[str] = (),
) -> None:
    """Refuse a parameter value that the run's precision cannot carry through the
    chain (``InvalidArgument`` naming it), before any work.

    The chain sums ``events`` events and their squares, so every value ``v`` must
    keep ``events * v**2`` finite at ``precision``; a non-zero value must be at
    least the precision's smallest normal number (below it, it rounds to 0 or
    loses its digits; XLA may flush it to 0); a value in ``positive`` (a scale or a
    rate, which densities divide by) must also keep ``events / v**2`` finite.
    Model-agnostic: it looks only at the numbers.
    """
    info = np.finfo(np.dtype(precision))
    largest = float(info.max)
    limit = math.sqrt(largest / max(events, 1))
    for name, value in values.items():
        value = float(value)
        magnitude = abs(value)
        hint = "use --precision float64 or rescale the problem"
        if magnitude > limit:
            raise InvalidArgument(
                name,
                f"{value:g} is too large for {precision}: sums of {events} events "
                f"and their squares overflow above |{name}| ≈ {limit:.3g}; {hint}",
            )
        if value != 0 and magnitude < float(info.tiny):
            raise InvalidArgument(
                name,
                f"{value:g} is too small for {precision} (smallest normal number "
                f"{float(info.tiny):.3g}); {hint}",
            )
        if name in positive and value != 0 and magnitude < 1 / limit:
            raise InvalidArgument(
                name,
                f"{value:g} is too small for {precision}: densities divide by "
                f"{name}**2, which overflows below {name} ≈ {1 / limit:.3g}; {hint}",
            )


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
