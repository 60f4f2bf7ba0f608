"""Estimators ``estimate(x) -> Estimate`` and the generic maximum-likelihood fit.

Every estimator is a frozen dataclass with

* ``names``: tuple of labels, one per component of the estimate vector;
* ``estimate(x) -> Estimate(value, ok)``: ``value`` has shape ``(len(names),)``,
  ``ok`` is a scalar bool (False when a fit did not converge: the engine counts such
  pseudo-experiments and leaves them out of the moments instead of propagating NaN).

All are pure and jit/vmap-able; ``x`` has shape ``(n, *event_shape)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxunc.errors import InvalidArgument
from jaxunc.summation import BLOCK, pairwise_mean, pairwise_sum

__all__ = [
    "Estimate",
    "FitResult",
    "MaximumLikelihood",
    "SampleMean",
    "maximum_likelihood_fit",
]


class Estimate(NamedTuple):
    """An estimate vector ``value`` (shape ``(d,)``) and a success flag ``ok``
    (bool[])."""

    value: jax.Array
    ok: jax.Array


class FitResult(NamedTuple):
    """Result of a maximum-likelihood fit, in the style of optimistix solutions.

    ``theta``: fitted parameters (same pytree as the model's theta);
    ``converged``: bool[];
    ``iterations``: int32[] Newton steps taken (0 for closed forms);
    ``negative_log_likelihood``: total -log L at ``theta`` (sum over events).
    """

    theta: Any
    converged: jax.Array
    iterations: jax.Array
    negative_log_likelihood: jax.Array


def _identity(theta: Any) -> Any:
    return theta


def _split_free(theta: Mapping[str, Any], free: tuple[str, ...]) -> tuple[dict, dict]:
    return {k: theta[k] for k in free}, {
        k: v for k, v in theta.items() if k not in free
    }


def _check_fit_arguments(model: Any, init: Any, free: Any) -> None:
    """Eager checks of a fit's ``init`` and ``free`` (concrete values only: traced
    values inside jit/vmap are the caller's business)."""
    if not isinstance(init, Mapping):
        raise InvalidArgument(
            "init", f"must be a dict of parameter values (got {type(init).__name__})"
        )
    names = getattr(model, "parameter_names", None)
    if names is not None and set(init) != set(names):
        raise InvalidArgument(
            "init", f"must give every parameter {list(names)} (got {sorted(init)})"
        )
    if (
        isinstance(free, str)
        or not isinstance(free, (tuple, list))
        or not free
        or any(name not in init for name in free)
    ):
        raise InvalidArgument(
            "free",
            f"must be a non-empty tuple of parameter names from {sorted(init)} "
            f"(got {free!r})",
        )
    for name, value in init.items():
        if isinstance(value, jax.core.Tracer):
            continue
        if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
            raise InvalidArgument("init", f"{name!r} must be finite (got {value!r})")


def _tree_sum(sums: jax.Array) -> jax.Array:
    """Balanced binary-tree sum along axis 0 (zeros pad it to a power of two):
    ``(b, ...)`` to ``(...)``."""
    size = 1 << (sums.shape[0] - 1).bit_length()
    if size != sums.shape[0]:
        sums = jnp.concatenate(
            [sums, jnp.zeros((size - sums.shape[0], *sums.shape[1:]), sums.dtype)]
        )
    while size > 1:
        size //= 2
        sums = sums.reshape(size, 2, *sums.shape[1:]).sum(axis=1)
    return sums[0]


def maximum_likelihood_fit(
    model: Any,
    x: jax.Array,
    init: Mapping[str, Any],
    free: tuple[str, ...],
    *,
    max_iterations: int = 50,
    tolerance: float | None = None,
) -> FitResult:
    """Unbinned maximum likelihood by damped Newton steps (autodiff gradient and
    Hessian).

    Works for any model with ``log_prob``.  The ``free`` parameters of ``init`` are
    fitted, the others stay fixed.  Newton runs in the model's unconstrained space
    (``to_unconstrained``/``from_unconstrained`` when the model has them).  Each
    iteration makes one pass over the events, giving -log L, its gradient and its
    Hessian at a trial point together (forward-mode derivatives of the per-event
    log p, summed pairwise); a full Newton step whose -log L does not increase is
    accepted without a separate check, otherwise the step is halved (at most 30
    halvings); a non-positive-definite Hessian (no Cholesky factor) falls back to a
    gradient step.
    Converged when the Newton decrement g·H⁻¹·g/2 (the expected drop of -log L, in
    units of log-likelihood, summed over events) is below ``tolerance`` (default
    10 × machine epsilon of ``x.dtype``).

    Shapes: ``x`` is ``(n, *event_shape)``; returns a ``FitResult``.  Raises
    ``InvalidArgument`` for an ``init`` that is not a finite value of every parameter
    or ``free`` names that are not among them.
    """
    _check_fit_arguments(model, init, free)
    to_u = getattr(model, "to_unconstrained", _identity)
    from_u = getattr(model, "from_unconstrained", _identity)
    dtype = x.dtype
    init = {k: jnp.asarray(v, dtype) for k, v in init.items()}
    start_free, fixed = _split_free(to_u(init), free)
    u0, unravel = ravel_pytree(start_free)
    eps = jnp.finfo(dtype).eps
    tolerance = 10 * eps if tolerance is None else tolerance

    def theta_of(u: jax.Array) -> dict:
        return from_u({**fixed, **unravel(u)})

    # The events are padded once, before the loop, to whole blocks of the pairwise
    # sum (with copies of the first event, so log p stays finite for any model;
    # they are masked out of every sum).
    n = x.shape[0]
    padded = -(-n // BLOCK) * BLOCK
    if padded != n:
        x = jnp.concatenate([x, jnp.repeat(x[:1], padded - n, axis=0)])
    real_event = jnp.arange(padded) < n
    d = u0.shape[0]
    basis = jnp.eye(d, dtype=dtype)

    def event_sum(values: jax.Array) -> jax.Array:
        """Pairwise sum (as ``pairwise_sum``) of per-event ``values`` (..., padded)
        over the real events: blocks of ``BLOCK``, then a binary tree."""
        values = jnp.where(real_event, values, 0)
        blocks = values.reshape(*values.shape[:-1], padded // BLOCK, BLOCK)
        return _tree_sum(jnp.moveaxis(blocks.sum(axis=-1), -1, 0))

    def log_prob(u: jax.Array) -> jax.Array:
        return model.log_prob(x, theta_of(u))

    def with_gradient(u: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Per-event log p (padded,) and its gradient, parameter-major (d, padded)."""
        return jax.vmap(lambda e: jax.jvp(log_prob, (u,), (e,)), out_axes=(None, 0))(
            basis
        )

    def derivatives(u: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """-log L, its gradient (d,) and Hessian (d, d) at ``u`` in one pass over
        the events: per-event log p and its first and second derivatives by
        forward over forward mode (d is small; XLA fuses the d + d² tangents into
        elementwise work over the events), each summed pairwise."""
        (log_p, gradient), (_, hessian) = jax.vmap(
            lambda e: jax.jvp(with_gradient, (u,), (e,)),
            out_axes=((None, None), (0, 0)),
        )(basis)
        hessian = -event_sum(hessian)
        return -event_sum(log_p), -event_sum(gradient), 0.5 * (hessian + hessian.T)

    def newton_direction(
        gradient: jax.Array, hessian: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        # A Cholesky factor exists (is finite) only for a positive-definite Hessian.
        factor = jnp.linalg.cholesky(hessian)
        positive_definite = jnp.all(jnp.isfinite(factor))
        direction = jax.scipy.linalg.cho_solve((factor, True), gradient)
        # g·H⁻¹·g ≥ 0 for a positive-definite H; abs() drops rounding noise at g ≈ 0.
        decrement = 0.5 * jnp.abs(jnp.dot(gradient, direction))
        usable = positive_definite & jnp.all(jnp.isfinite(direction))
        scale = 1.0 / jnp.maximum(jnp.max(jnp.abs(gradient)), 1.0)
        direction = jnp.where(usable, direction, gradient * scale)
        decrement = jnp.where(usable, decrement, jnp.inf)
        return direction, decrement

    # One loop iteration = one pass over the events: it evaluates -log L and its
    # derivatives at the trial point u - step·direction.  If -log L did not
    # increase (up to rounding slack) the trial point is accepted and its
    # derivatives give the next Newton direction; otherwise the step is halved
    # (at most 30 times per Newton step, then the fit stops as stalled).
    def keep_going(state):
        _, _, _, decrement, _, _, iteration, stalled = state
        return (decrement > tolerance) & (iteration < max_iterations) & ~stalled

    def trial(state):
        u, value, direction, decrement, step, halvings, iteration, _ = state
        candidate = u - step * direction
        candidate_value, gradient, hessian = derivatives(candidate)
        accepted = candidate_value <= value + 4 * eps * jnp.abs(value)
        new_direction, new_decrement = newton_direction(gradient, hessian)
        one = jnp.ones_like(step)
        stalled = ~accepted & (halvings >= 30)
        return (
            jnp.where(accepted, candidate, u),
            jnp.where(accepted, candidate_value, value),
            jnp.where(accepted, new_direction, direction),
            jnp.where(accepted, new_decrement, decrement),
            jnp.where(accepted, one, 0.5 * step),
            jnp.where(accepted, 0, halvings + 1),
            jnp.where(accepted | stalled, iteration + 1, iteration),
            stalled,
        )

    value0, gradient0, hessian0 = derivatives(u0)
    direction0, decrement0 = newton_direction(gradient0, hessian0)
    start = (
        u0,
        value0,
        direction0,
        decrement0,
        jnp.asarray(1.0, dtype),
        jnp.int32(0),
        jnp.int32(0),
        jnp.bool_(False),
    )
    u, value, _, decrement, _, _, iterations, _ = lax.while_loop(
        keep_going, trial, start
    )
    converged = (
        (decrement <= tolerance) & jnp.isfinite(value) & jnp.all(jnp.isfinite(u))
    )
    return FitResult(theta_of(u), converged, iterations, value)


@dataclasses.dataclass(frozen=True)
class SampleMean:
    """The arithmetic mean of the events: ``value = mean(x, axis=0)`` (scalar
    events), summed pairwise (accurate in float32 for many events)."""

    names: tuple[str, ...] = ("mean",)

    def estimate(self, x: jax.Array) -> Estimate:
        return Estimate(pairwise_mean(x, axis=0).reshape(-1), jnp.bool_(True))


@dataclasses.dataclass(frozen=True, eq=False)
class MaximumLikelihood:
    """Unbinned maximum-likelihood estimate of the ``free`` parameters of ``model``.

    ``init`` is the starting point (all parameters; the non-free ones stay fixed at
    it); if ``use_initial_params`` and the model has ``initial_params(x)``, the free
    parameters start there instead.  Uses the model's ``closed_form_mle`` when it has
    one.  ``value`` lists the free parameters in the order of ``free``.
    """

    model: Any
    init: Mapping[str, float]
    free: tuple[str, ...]
    use_initial_params: bool = True
    use_closed_form: bool = True
    max_iterations: int = 50

    @property
    def names(self) -> tuple[str, ...]:
        return self.free

    def fit(self, x: jax.Array) -> FitResult:
        return fit_model(
            self.model,
            x,
            self.init,
            self.free,
            use_initial_params=self.use_initial_params,
            use_closed_form=self.use_closed_form,
            max_iterations=self.max_iterations,
        )

    def estimate(self, x: jax.Array) -> Estimate:
        result = self.fit(x)
        value = jnp.stack([jnp.asarray(result.theta[k]).reshape(()) for k in self.free])
        return Estimate(value, result.converged)


def fit_model(
    model: Any,
    x: jax.Array,
    init: Mapping[str, Any],
    free: tuple[str, ...],
    *,
    ddof: int = 0,
    use_initial_params: bool = True,
    use_closed_form: bool = True,
    max_iterations: int = 50,
) -> FitResult:
    """Fit ``free`` parameters of ``model`` to ``x``: closed form if the model has
    one, else ``maximum_likelihood_fit`` from ``init`` (or the model's
    ``initial_params``)."""
    _check_fit_arguments(model, init, free)
    dtype = x.dtype
    init = {k: jnp.asarray(v, dtype) for k, v in init.items()}
    closed_form = getattr(model, "closed_form_mle", None)
    if use_closed_form and closed_form is not None:
        theta = closed_form(x, init, free, ddof=ddof)
        value = -pairwise_sum(model.log_prob(x, theta))
        ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in theta.values()]))
        return FitResult(theta, ok & jnp.isfinite(value), jnp.int32(0), value)
    if ddof != 0:
        raise ValueError(
            f"ddof={ddof} needs a model with a closed-form fit; use ddof=0 (MLE)"
        )
    initial = getattr(model, "initial_params", None)
    if use_initial_params and initial is not None:
        guess = initial(x)
        init = {**init, **{k: jnp.asarray(guess[k], dtype) for k in free}}
    return maximum_likelihood_fit(model, x, init, free, max_iterations=max_iterations)
