"""Estimators ``estimate(x) -> Estimate`` and the generic maximum-likelihood fit.

An estimator (the ``Estimator`` protocol) is an object, by convention a frozen
dataclass, with

* ``names``: tuple of labels, one per component of the estimate vector;
* ``estimate(x) -> Estimate(value, ok, result)``: ``value`` has shape
  ``(len(names),)``; ``ok`` is a scalar bool (False when a fit did not converge: the
  engine counts such pseudo-experiments and leaves them out of the moments instead of
  propagating NaN); ``result`` is an optional int32 result code
  (``jaxunc.results``) saying why it failed (None: the engine counts a failure as
  ``failed``, and an ``ok`` estimate with a NaN or infinite value as
  ``nonfinite_value``).

All are pure and jit/vmap-able; ``x`` has shape ``(n, *event_shape)``.  Fits return a
``FitResult`` (optimistix style): they never raise inside traced code, they report
how they ended as a result code.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxunc.errors import InvalidArgument
from jaxunc.results import Result
from jaxunc.summation import BLOCK, pairwise_mean, pairwise_sum

__all__ = [
    "Estimate",
    "Estimator",
    "FitResult",
    "MaximumLikelihood",
    "NewtonState",
    "SampleMean",
    "fit_model",
    "maximum_likelihood_fit",
]


class Estimate(NamedTuple):
    """An estimate vector ``value`` (shape ``(d,)``), a success flag ``ok``
    (bool[]) and, optionally, the result code ``result`` (int32[], ``jaxunc.results``)
    saying why it failed.  Without a code a failure counts as ``failed``."""

    value: jax.Array
    ok: jax.Array
    result: Any = None


@runtime_checkable
class Estimator(Protocol):
    """``names`` (one label per component) and a pure, jit/vmap-able
    ``estimate(x) -> Estimate`` with ``value`` of shape ``(len(names),)`` (see the
    module's docstring for ``ok`` and ``result``)."""

    names: tuple[str, ...]

    def estimate(self, x: jax.Array) -> Estimate: ...


class FitResult(NamedTuple):
    """Result of a maximum-likelihood fit, in the style of optimistix solutions.

    ``theta``: fitted parameters (same pytree as the model's theta);
    ``converged``: bool[], True exactly when ``result`` is ``Result.SUCCESSFUL``;
    ``iterations``: int32[] Newton steps taken (0 for closed forms);
    ``negative_log_likelihood``: total -log L at ``theta`` (sum over events);
    ``result``: int32[] result code (``jaxunc.results``): ``successful``,
    ``max_steps_reached``, ``stalled``, ``nonfinite_start``,
    ``not_positive_definite`` or ``nonfinite_value`` (see
    ``maximum_likelihood_fit`` and ``fit_model``).
    """

    theta: Any
    converged: jax.Array
    iterations: jax.Array
    negative_log_likelihood: jax.Array
    result: jax.Array


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


def _event_sum(values: jax.Array) -> jax.Array:
    """Blocked pairwise sum of per-event ``values`` ``(..., n)`` over the last axis,
    with the depth bound of ``pairwise_sum``: whole blocks of ``BLOCK`` events are
    summed, the remainder (fewer than ``BLOCK`` events) is one more block, and the
    block sums go through a balanced binary tree.  Nothing is padded or masked, so
    no per-event work is done for events that are not there."""
    n = values.shape[-1]
    whole = n // BLOCK * BLOCK
    if whole == 0:
        return values.sum(axis=-1)
    sums = values[..., :whole].reshape(*values.shape[:-1], whole // BLOCK, BLOCK)
    sums = sums.sum(axis=-1)
    if whole != n:
        tail = values[..., whole:].sum(axis=-1)
        sums = jnp.concatenate([sums, tail[..., None]], axis=-1)
    return _tree_sum(jnp.moveaxis(sums, -1, 0))


SMALL_SYSTEM = 8
"""Most free parameters whose Newton system is solved by an unrolled Cholesky
factorisation (elementwise work that XLA fuses and vectorises across
pseudo-experiments; a batched LAPACK call costs more than the arithmetic for such
small systems); larger systems use ``jnp.linalg.cholesky``."""


def _cholesky_solve(
    matrix: jax.Array, vector: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``(matrix⁻¹ · vector, positive_definite)`` for a symmetric ``(d, d)``
    ``matrix`` and ``(d,)`` ``vector``, by the Cholesky factor; the solution is
    meaningless (never raised on) when ``positive_definite`` (bool[]) is False."""
    d = matrix.shape[0]
    if d > SMALL_SYSTEM:
        # A Cholesky factor exists (is finite) only for a positive-definite matrix.
        factor = jnp.linalg.cholesky(matrix)
        solution = jax.scipy.linalg.cho_solve((factor, True), vector)
        return solution, jnp.all(jnp.isfinite(factor))
    positive_definite = jnp.all(jnp.isfinite(matrix))
    factor: list[list[Any]] = [[None] * d for _ in range(d)]
    for j in range(d):
        pivot = matrix[j, j] - sum((factor[j][k] ** 2 for k in range(j)), 0.0)
        positive_definite &= pivot > 0
        factor[j][j] = jnp.sqrt(jnp.where(pivot > 0, pivot, 1.0))
        for i in range(j + 1, d):
            inner = sum((factor[i][k] * factor[j][k] for k in range(j)), 0.0)
            factor[i][j] = (matrix[i, j] - inner) / factor[j][j]
    forward: list[Any] = [None] * d
    for i in range(d):
        inner = sum((factor[i][k] * forward[k] for k in range(i)), 0.0)
        forward[i] = (vector[i] - inner) / factor[i][i]
    solution: list[Any] = [None] * d
    for i in reversed(range(d)):
        inner = sum((factor[k][i] * solution[k] for k in range(i + 1, d)), 0.0)
        solution[i] = (forward[i] - inner) / factor[i][i]
    return jnp.stack(solution), positive_definite


MAX_HALVINGS = 30
"""Step halvings of one Newton step before the fit stops as stalled."""


class NewtonState(NamedTuple):
    """State of the damped Newton loop of ``maximum_likelihood_fit`` (unconstrained
    space, d free parameters).

    ``position``: (d,) the last accepted point (the start until one is accepted);
    ``value``: -log L there (+inf until the start is evaluated and accepted);
    ``direction``: (d,) Newton direction at ``position`` (a scaled gradient when the
    Hessian there is not positive definite); ``decrement``: the Newton decrement
    g·H⁻¹·g/2 at ``position`` (+inf when ``direction`` fell back to the gradient);
    ``step``: the current step length (1, halved after each rejected trial);
    ``halvings``: rejected trials of the current Newton step; ``iteration``: Newton
    steps taken (-1 before the start is evaluated); ``stalled``: the line search
    gave up (or the start's -log L was NaN).
    """

    position: jax.Array
    value: jax.Array
    direction: jax.Array
    decrement: jax.Array
    step: jax.Array
    halvings: jax.Array
    iteration: jax.Array
    stalled: jax.Array


def newton_result(state: NewtonState, converged: jax.Array) -> jax.Array:
    """The result code (int32[]) of a finished Newton loop.

    In order: ``successful`` if ``converged``; ``nonfinite_start`` if -log L was
    never finite (``value`` is still +inf: NaN or +inf at the start);
    ``nonfinite_value`` if the final -log L or position is not finite;
    ``not_positive_definite`` if the last direction fell back to a gradient step
    (``decrement`` +inf: no Cholesky factor of the Hessian); ``stalled`` if the line
    search gave up after ``MAX_HALVINGS`` halvings; else ``max_steps_reached``.
    """
    value = state.value
    code = jnp.where(state.stalled, Result.STALLED, Result.MAX_STEPS_REACHED)
    code = jnp.where(jnp.isposinf(state.decrement), Result.NOT_POSITIVE_DEFINITE, code)
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(state.position))
    code = jnp.where(finite, code, Result.NONFINITE_VALUE)
    code = jnp.where(jnp.isposinf(value), Result.NONFINITE_START, code)
    return jnp.where(converged, Result.SUCCESSFUL, code).astype(jnp.int32)


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
    Hessian at a trial point together (forward-over-forward derivatives of the
    per-event log p, the d(d+1)/2 distinct second derivatives only, summed
    pairwise); the first pass evaluates the start.  A full Newton step whose -log L
    does not increase is accepted without a separate check, otherwise the step is
    halved (at most ``MAX_HALVINGS`` halvings); a non-positive-definite Hessian (no
    Cholesky factor) falls back to a gradient step; a start where -log L is NaN stops
    at once.  The loop's state is a ``NewtonState``.
    The Newton system is solved by an unrolled Cholesky factorisation for up to
    ``SMALL_SYSTEM`` free parameters (LAPACK beyond).
    Converged when the Newton decrement g·H⁻¹·g/2 (the expected drop of -log L, in
    units of log-likelihood, summed over events) is below ``tolerance`` (default
    10 × machine epsilon of ``x.dtype``).

    How it ended is ``FitResult.result`` (``newton_result``): ``successful``,
    ``max_steps_reached`` (``max_iterations`` Newton steps), ``stalled``,
    ``nonfinite_start``, ``nonfinite_value`` or ``not_positive_definite``.

    Derivatives in ``x`` and in the fixed parameters (forward mode, and reverse
    mode through the linear rule) come from the implicit function theorem at the
    optimum, not from the iterations: the loop runs without tangents and
    ``_at_optimum`` gives u̇ = −H⁻¹ ∂g/∂(x, fixed)·(ẋ, ḟ), so they cost one more
    pass over the events and do not depend on the start or on ``max_iterations``
    once converged (NaN where the Hessian has no Cholesky factor).

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

    def theta_of(u: jax.Array, fixed: dict) -> dict:
        return from_u({**fixed, **unravel(u)})

    d = u0.shape[0]
    basis = jnp.eye(d, dtype=dtype)
    # Second derivatives are symmetric: only the d(d+1)/2 pairs i <= j are computed,
    # the d diagonal pairs first (their first derivatives are the gradient: a
    # leading slice, which XLA fuses, where a gather would be a copy).
    rows, cols = np.triu_indices(d)
    order = np.argsort(rows != cols, kind="stable")
    rows, cols = rows[order], cols[order]

    def derivatives(
        u: jax.Array, x: jax.Array, fixed: dict
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """-log L, its gradient (d,) and Hessian (d, d) at ``u`` in one pass over
        the events: per-event log p and its first and second derivatives by
        forward over forward mode, one tangent pair (e_i, e_j) per i <= j (d is
        small; XLA fuses the tangents into elementwise work over the events), each
        summed pairwise (``_event_sum``)."""

        def log_prob(u: jax.Array) -> jax.Array:
            return model.log_prob(x, theta_of(u, fixed))

        def along(e_i: jax.Array, e_j: jax.Array):
            # ((log p, ∂_j log p), (∂_i log p, ∂_i ∂_j log p)), each (n,)
            return jax.jvp(lambda v: jax.jvp(log_prob, (v,), (e_j,)), (u,), (e_i,))

        (log_p, first), (_, second) = jax.vmap(along, out_axes=((None, 0), (0, 0)))(
            basis[rows], basis[cols]
        )
        upper = -_event_sum(second)
        hessian = jnp.zeros((d, d), dtype).at[rows, cols].set(upper)
        hessian = hessian.at[cols, rows].set(upper)
        return -_event_sum(log_p), -_event_sum(first[:d]), hessian

    def newton_direction(
        gradient: jax.Array, hessian: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        direction, positive_definite = _cholesky_solve(hessian, gradient)
        # g·H⁻¹·g ≥ 0 for a positive-definite H; abs() drops rounding noise at g ≈ 0.
        decrement = 0.5 * jnp.abs(jnp.dot(gradient, direction))
        usable = positive_definite & jnp.all(jnp.isfinite(direction))
        scale = 1.0 / jnp.maximum(jnp.max(jnp.abs(gradient)), 1.0)
        direction = jnp.where(usable, direction, gradient * scale)
        decrement = jnp.where(usable, decrement, jnp.inf)
        return direction, decrement

    # The loop sees the events and the fixed parameters without their tangents:
    # the derivative of the optimum comes from the implicit function theorem
    # below, not from differentiating the iterations.
    x_loop = lax.stop_gradient(x)
    fixed_loop = lax.stop_gradient(fixed)

    # One loop iteration = one pass over the events: it evaluates -log L and its
    # derivatives at the trial point u - step·direction.  If -log L did not
    # increase (up to rounding slack) the trial point is accepted and its
    # derivatives give the next Newton direction; otherwise the step is halved
    # (at most 30 times per Newton step, then the fit stops as stalled).  The first
    # iteration evaluates the start (direction 0, value +inf, iteration -1), so the
    # events are read inside the loop only: XLA then materialises them once instead
    # of fusing whatever produced them (e.g. a sampler) into a separate first pass.
    def keep_going(state: NewtonState) -> jax.Array:
        return (
            (state.decrement > tolerance)
            & (state.iteration < max_iterations)
            & ~state.stalled
        )

    def trial(state: NewtonState) -> NewtonState:
        candidate = state.position - state.step * state.direction
        candidate_value, gradient, hessian = derivatives(candidate, x_loop, fixed_loop)
        accepted = candidate_value <= state.value + 4 * eps * jnp.abs(state.value)
        new_direction, new_decrement = newton_direction(gradient, hessian)
        one = jnp.ones_like(state.step)
        # A start where -log L is NaN stops at once; otherwise after 30 halvings.
        stalled = ~accepted & ((state.halvings >= MAX_HALVINGS) | (state.iteration < 0))
        return NewtonState(
            position=jnp.where(accepted, candidate, state.position),
            value=jnp.where(accepted, candidate_value, state.value),
            direction=jnp.where(accepted, new_direction, state.direction),
            decrement=jnp.where(accepted, new_decrement, state.decrement),
            step=jnp.where(accepted, one, 0.5 * state.step),
            halvings=jnp.where(accepted, 0, state.halvings + 1),
            iteration=jnp.where(
                accepted | stalled, state.iteration + 1, state.iteration
            ),
            stalled=stalled,
        )

    start = NewtonState(
        position=lax.stop_gradient(u0),
        value=jnp.asarray(jnp.inf, dtype),
        direction=jnp.zeros_like(u0),
        decrement=jnp.asarray(jnp.inf, dtype),
        step=jnp.asarray(1.0, dtype),
        halvings=jnp.int32(0),
        iteration=jnp.int32(-1),
        stalled=jnp.bool_(False),
    )
    final = lax.while_loop(keep_going, trial, start)
    u, value = _at_optimum(derivatives, final.position, final.value, x, fixed)
    converged = (
        (final.decrement <= tolerance) & jnp.isfinite(value) & jnp.all(jnp.isfinite(u))
    )
    return FitResult(
        theta_of(u, fixed),
        converged,
        final.iteration,
        value,
        newton_result(final, converged),
    )


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _at_optimum(
    derivatives: Callable, u: jax.Array, value: jax.Array, x: jax.Array, fixed: dict
) -> tuple[jax.Array, jax.Array]:
    """``(u, value)`` unchanged: the optimum ``u`` (d,) of -log L and -log L there,
    found by the Newton loop.  Its forward-mode derivative is the implicit
    function theorem's: with g(u, x, fixed) the gradient of -log L and H its
    Hessian at ``u``, g(u*(x), x) = 0 gives u̇ = −H⁻¹ (∂g/∂x ẋ + ∂g/∂fixed ḟ), and
    the value's tangent is ∂(−log L)/∂(x, fixed)·(ẋ, ḟ) + g·u̇ (the chain rule;
    g ≈ 0 at the optimum).  The tangents of ``u`` and ``value`` themselves (from
    the start point) are ignored: the optimum does not depend on where the search
    began.  Valid where the fit converged; NaN where H has no Cholesky factor.
    ``derivatives(u, x, fixed) -> (-log L, gradient, Hessian)``."""
    del derivatives, x, fixed
    return u, value


@_at_optimum.defjvp
def _at_optimum_jvp(derivatives, primals, tangents):
    u, value, x, fixed = primals
    _, _, x_dot, fixed_dot = tangents

    def value_and_gradient(x_: jax.Array, fixed_: dict):
        value_, gradient_, _ = derivatives(u, x_, fixed_)
        return value_, gradient_

    (_, gradient), (value_dot, gradient_dot) = jax.jvp(
        value_and_gradient, (x, fixed), (x_dot, fixed_dot)
    )
    _, _, hessian = derivatives(u, x, fixed)
    step, positive_definite = _cholesky_solve(hessian, gradient_dot)
    # linear in the tangents (so reverse mode can transpose it); NaN without H⁻¹
    u_dot = -step * jnp.where(positive_definite, 1.0, jnp.nan).astype(step.dtype)
    return (u, value), (u_dot, value_dot + jnp.dot(gradient, u_dot))


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
    one.  ``value`` lists the free parameters in the order of ``free``; ``ok`` and
    ``result`` are the fit's ``converged`` and ``result``.
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
        return Estimate(value, result.converged, result.result)


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
    ``initial_params``).  A closed form's ``result`` is ``nonfinite_value`` when its
    parameters or -log L are not finite, else ``successful``."""
    _check_fit_arguments(model, init, free)
    dtype = x.dtype
    init = {k: jnp.asarray(v, dtype) for k, v in init.items()}
    closed_form = getattr(model, "closed_form_mle", None)
    if use_closed_form and closed_form is not None:
        theta = closed_form(x, init, free, ddof=ddof)
        value = -pairwise_sum(model.log_prob(x, theta))
        ok = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in theta.values()]))
        converged = ok & jnp.isfinite(value)
        result = jnp.where(
            converged, jnp.int32(Result.SUCCESSFUL), jnp.int32(Result.NONFINITE_VALUE)
        )
        return FitResult(theta, converged, jnp.int32(0), value, result)
    if ddof != 0:
        raise ValueError(
            f"ddof={ddof} needs a model with a closed-form fit; use ddof=0 (MLE)"
        )
    initial = getattr(model, "initial_params", None)
    if use_initial_params and initial is not None:
        guess = initial(x)
        init = {**init, **{k: jnp.asarray(guess[k], dtype) for k in free}}
    return maximum_likelihood_fit(model, x, init, free, max_iterations=max_iterations)
