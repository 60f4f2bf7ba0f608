"""Result codes: why a fit or an estimate did not succeed (optimistix-style table).

A fit or estimate inside traced code never raises: it returns a result code, an
``int32[]`` array, alongside its value.  Code 0 is success; every other code names one
way of failing.  The engine counts pseudo-experiments per code and every study reports
the counts by name (``RESULT_NAMES``), so one failed fit among 10⁶ is counted and
explained, never a crash or a silent NaN.

Codes (``Result.<NAME>``, ``RESULT_NAMES[code]``):

====  ========================  ===============================================
code  name                      meaning
====  ========================  ===============================================
0     successful                converged / valid
1     max_steps_reached         an iterative fit hit its iteration limit
2     stalled                   the line search could not decrease the objective
3     nonfinite_start           the objective is not finite at the starting point
4     not_positive_definite     the final Hessian is not positive definite
5     nonfinite_value           the fit or estimate produced a NaN or infinite value
6     surrogate_fit_failed      the surrogate's training failed (its own report)
7     failed                    failed for a reason the producer did not name
====  ========================  ===============================================
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

__all__ = [
    "RESULT_DESCRIPTIONS",
    "RESULT_NAMES",
    "Result",
    "describe_failures",
    "estimate_result",
    "first_failure",
    "from_ok",
    "result_counts",
]

RESULT_NAMES = (
    "successful",
    "max_steps_reached",
    "stalled",
    "nonfinite_start",
    "not_positive_definite",
    "nonfinite_value",
    "surrogate_fit_failed",
    "failed",
)
"""Name of each result code, indexed by code."""

RESULT_DESCRIPTIONS = {
    "successful": "successful",
    "max_steps_reached": "iteration limit reached",
    "stalled": "line search stalled",
    "nonfinite_start": "non-finite log-likelihood at the starting point",
    "not_positive_definite": "Hessian not positive definite",
    "nonfinite_value": "non-finite log-likelihood or estimate",
    "surrogate_fit_failed": "surrogate training failed",
    "failed": "failed (reason not named)",
}
"""Each result code's meaning in words, for warnings (by name)."""


class Result:
    """The result codes as named ``int`` constants (``Result.STALLED == 2``)."""

    SUCCESSFUL = 0
    MAX_STEPS_REACHED = 1
    STALLED = 2
    NONFINITE_START = 3
    NOT_POSITIVE_DEFINITE = 4
    NONFINITE_VALUE = 5
    SURROGATE_FIT_FAILED = 6
    FAILED = 7


assert all(
    getattr(Result, name.upper()) == code for code, name in enumerate(RESULT_NAMES)
)
assert tuple(RESULT_DESCRIPTIONS) == RESULT_NAMES


def from_ok(ok: Any, failure: int = Result.FAILED) -> Any:
    """``int32`` code from a success flag: 0 where ``ok``, ``failure`` elsewhere."""
    return jnp.where(ok, jnp.int32(Result.SUCCESSFUL), jnp.int32(failure))


def estimate_result(estimate: Any) -> Any:
    """``int32`` code of an ``Estimate``: its ``result`` when it has one, else
    ``failed`` where it is not ``ok`` (0 where it is)."""
    if estimate.result is not None:
        return jnp.asarray(estimate.result, jnp.int32)
    return from_ok(estimate.ok)


def first_failure(*codes: Any) -> Any:
    """The first non-successful code among ``codes`` (broadcast), else 0: the reason
    a chain failed is the earliest stage that failed (training before estimation)."""
    result = jnp.int32(Result.SUCCESSFUL)
    for code in reversed(codes):
        code = jnp.asarray(code, jnp.int32)
        result = jnp.where(code != Result.SUCCESSFUL, code, result)
    return result


def describe_failures(counts: Any) -> str:
    """``{name: count}`` (as from ``result_counts``, scalar counts) in words, most
    frequent first: ``"non-finite log-likelihood at the starting point (243),
    line search stalled (2)"``."""
    items = sorted(
        ((int(n), name) for name, n in dict(counts).items() if int(n)),
        key=lambda item: (-item[0], item[1]),
    )
    return ", ".join(
        f"{RESULT_DESCRIPTIONS.get(name, name)} ({n})" for n, name in items
    )


def result_counts(counts: Any) -> dict[str, Any]:
    """``{name: count}`` of the failures only, from per-code counts whose *leading*
    axis is the code (``(len(RESULT_NAMES), ...)``); codes never seen are left out.
    Counts are JSON-ready: ints for scalars, nested lists otherwise."""
    counts = np.asarray(counts)
    out = {}
    for code, name in enumerate(RESULT_NAMES):
        if code == Result.SUCCESSFUL or not np.any(counts[code]):
            continue
        value = counts[code]
        out[name] = int(value) if value.ndim == 0 else value.tolist()
    return out
