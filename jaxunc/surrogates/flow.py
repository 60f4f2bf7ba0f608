"""A rational-quadratic spline normalizing flow trained by maximum likelihood with
optax, one pure ``fit`` per ensemble member (K flows train as one ``jax.vmap(fit)``).

The flow maps a standardised event u = (x - shift) / scale to z = f_L ∘ … ∘ f_1(u),
with z ~ N(0, I), so that

    log q(x) = log N(z; 0, I) + Σ_l log |det ∂f_l/∂u| - Σ_j log scale_j   (exact).

Each f_l is a monotone rational-quadratic spline (Durkan, Bekasov, Murray &
Papamakarios 2019, "Neural Spline Flows") with ``bins`` bins on [-bound, bound] and the
identity outside (linear tails; the boundary derivatives are 1 so the map is C¹):

* 1-D events: every layer is an elementwise spline with its own free parameters
  (a stack of ``layers`` splines is a monotone map flexible enough for two bumps or a
  falling spectrum with a peak; an affine map alone could only fit a Gaussian);
* d ≥ 2: coupling layers (Dinh et al.), the spline parameters of one half of the
  dimensions given by an MLP of the other half, the halves alternating layer by layer.

Sampling inverts the splines analytically (a quadratic per event).  Training: the
training sample is standardised (shift and scale kept in the parameters), then
``steps`` optimiser steps (Adam by default, any optax ``GradientTransformation``
through ``optimizer=``) on the mean negative log-likelihood of minibatches of
``batch_size`` events drawn with replacement (the whole sample when ``n_train <=
batch_size``), as one ``lax.scan`` over a ``FlowTrainingState``.  Same key and data
give the same parameters bit for bit; ``fit`` is differentiable in the training data
in forward mode (``jax.jvp``), the training loop included.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxunc import random as fast_random
from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.surrogates import _nn

__all__ = ["Flow", "FlowParams", "FlowTrainingState", "rational_quadratic_spline"]

_MIN_BIN_WIDTH = 1e-3
_MIN_BIN_HEIGHT = 1e-3
_MIN_DERIVATIVE = 1e-3
SCHEDULES = ("constant", "cosine")
# options added after results were recorded: left out of the repr at their defaults
_ADDED_OPTIONS = ("schedule", "weight_decay", "ema_decay", "holdout")


class FlowParams(NamedTuple):
    """A trained flow.

    Attributes:
      layers: one entry per layer: a (d, 3·bins - 1) array of spline parameters for
        1-D events, the conditioner MLP weights for coupling layers.
      standardization: shift and scale of the training sample (event shaped).
      losses: ``{"nll": (n_records,)}``, the mean negative log-likelihood per event
        (in the units of the data, nats) averaged over ``record_every`` steps.
    """

    layers: list
    standardization: _nn.Standardization
    losses: dict


class FlowTrainingState(NamedTuple):
    """The carry of the flow's training loop (one member; a leading axis under vmap).

    Attributes:
      layers: the current parameters of every layer (as in ``FlowParams.layers``).
      optimizer_state: the optimiser's state.
      average: the moving average of the layers (``ema_decay`` > 0), else None.
      best: the returned layers of the step with the lowest held-out negative
        log-likelihood so far (``holdout`` > 0), else None.
      best_nll: that held-out negative log-likelihood (standardised units), else
        None.
    """

    layers: list
    optimizer_state: Any
    average: list | None = None
    best: list | None = None
    best_nll: jax.Array | None = None


def rational_quadratic_spline(
    x: jax.Array, spline: jax.Array, bound: float, inverse: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Monotone rational-quadratic spline on [-bound, bound], identity outside.

    Args:
      x: points, shape (...).
      spline: unnormalised parameters, shape (..., 3·bins - 1): bin widths (bins),
        bin heights (bins), derivatives at the interior knots (bins - 1).
      bound: half-width of the spline's interval.
      inverse: evaluate the inverse map instead.

    Returns ``(y, log_det)``: the image and log |dy/dx| of the evaluated map, each
    of shape (...).
    """
    bins = (spline.shape[-1] + 1) // 3
    dtype = x.dtype
    widths = jax.nn.softmax(spline[..., :bins], axis=-1)
    widths = _MIN_BIN_WIDTH + (1 - _MIN_BIN_WIDTH * bins) * widths
    heights = jax.nn.softmax(spline[..., bins : 2 * bins], axis=-1)
    heights = _MIN_BIN_HEIGHT + (1 - _MIN_BIN_HEIGHT * bins) * heights
    derivatives = _MIN_DERIVATIVE + jax.nn.softplus(spline[..., 2 * bins :])
    one = jnp.ones((*derivatives.shape[:-1], 1), dtype)
    derivatives = jnp.concatenate([one, derivatives, one], axis=-1)

    def knots(sizes):
        cumulative = jnp.cumsum(sizes, axis=-1)
        cumulative = cumulative.at[..., -1].set(1)
        zero = jnp.zeros((*sizes.shape[:-1], 1), dtype)
        return 2 * bound * jnp.concatenate([zero, cumulative], axis=-1) - bound

    knots_x, knots_y = knots(widths), knots(heights)
    inside = jnp.abs(x) < bound
    xc = jnp.clip(x, -bound, bound)
    search = knots_y if inverse else knots_x
    index = jnp.sum(xc[..., None] >= search[..., 1:-1], axis=-1)[..., None]

    def at(array, shift=0):
        return jnp.take_along_axis(array, index + shift, axis=-1)[..., 0]

    x_k, y_k = at(knots_x), at(knots_y)
    w_k = at(knots_x, 1) - x_k
    h_k = at(knots_y, 1) - y_k
    d_k, d_k1 = at(derivatives), at(derivatives, 1)
    s_k = h_k / w_k
    curvature = d_k1 + d_k - 2 * s_k
    if inverse:
        dy = xc - y_k
        a = h_k * (s_k - d_k) + dy * curvature
        b = h_k * d_k - dy * curvature
        c = -s_k * dy
        discriminant = jnp.maximum(b * b - 4 * a * c, 0)
        xi = 2 * c / (-b - jnp.sqrt(discriminant))
        y = xi * w_k + x_k
    else:
        xi = (xc - x_k) / w_k
        y = y_k + h_k * (s_k * xi**2 + d_k * xi * (1 - xi)) / (
            s_k + curvature * xi * (1 - xi)
        )
    xi = jnp.clip(xi, 0, 1)
    t = xi * (1 - xi)
    denominator = s_k + curvature * t
    numerator = s_k**2 * (d_k1 * xi**2 + 2 * s_k * t + d_k * (1 - xi) ** 2)
    log_det = jnp.log(numerator) - 2 * jnp.log(denominator)
    if inverse:
        log_det = -log_det
    return jnp.where(inside, y, x), jnp.where(inside, log_det, jnp.zeros_like(x))


@dataclasses.dataclass(frozen=True)
class Flow:
    """A rational-quadratic spline flow (elementwise in 1-D, coupling for d ≥ 2).

    Args:
      steps: Adam steps; a multiple of ``record_every``.
      batch_size: events per minibatch (the whole training sample when it is smaller).
      learning_rate: Adam step size (ignored when ``optimizer`` is given).
      layers: spline layers (1-D) or coupling layers (d ≥ 2; use an even number so
        every dimension is transformed equally often).
      bins: spline bins per layer and dimension.  4 (since issue 13; was 8): a
        smoother fit of 100 events, measured on the camel back (quantile
        amplification at 10 bins 1.62 ± 0.06 against 1.13 ± 0.03 with 8) and the
        Gaussian (1.53 ± 0.05 against 1.13 ± 0.03), at the same cost per
        step; 3 bins lose it all (benchmarks/RESULTS.md).
      bound: half-width of the spline interval in standardised units; outside it each
        layer is the identity (Gaussian tails).
      width: hidden units of the coupling conditioners (d ≥ 2 only).
      depth: hidden layers of the coupling conditioners (d ≥ 2 only).
      schedule: the learning rate of the default optimizer over the steps:
        ``"constant"`` (the default) or ``"cosine"`` (a linear warm-up over the
        first 5 % of the steps, then a cosine decay to 0; ``optax.
        warmup_cosine_decay_schedule``).
      weight_decay: weight λ of an L2 penalty ``λ/2 · Σ p²`` on every layer
        parameter, added to the mean negative log-likelihood per event (0, the
        default, is plain maximum likelihood).  All spline parameters at 0 are the
        smooth map with equal bins; the penalty pulls toward it.
      ema_decay: the returned layers are an exponential moving average of the
        iterates with this decay per step (0, the default, keeps the last
        iterate).
      holdout: fraction of the training events held out of the gradient (drawn
        by the fit's key); the returned layers are those of the step with the
        best held-out negative log-likelihood (early stopping inside the scan,
        deterministic per key and vmappable; the standardisation still uses
        every event).  0 (default): no hold-out.
      record_every: steps per recorded (block-averaged) loss value.
      optimizer: an optax ``GradientTransformation`` to train with, e.g.
        ``optax.adamw(...)``; None (default) is ``default_optimizer()``,
        ``optax.adam(learning_rate, eps_root=1e-20)``.  Its state must be a pytree
        of arrays (every optax transformation's is) so that ensembles train under
        ``vmap``.

    ``fit(key, data)``: ``data`` (n_train,) or (n_train, d) → ``FlowParams``;
    ``sample(key, params, n)`` → (n,) or (n, d); ``log_prob(x, params)`` → (n,).
    """

    steps: int = 500
    batch_size: int = 128
    learning_rate: float = 5e-3
    layers: int = 4
    bins: int = 4
    bound: float = 4.0
    width: int = 32
    depth: int = 2
    schedule: str = "constant"
    weight_decay: float = 0.0
    ema_decay: float = 0.0
    holdout: float = 0.0
    record_every: int = 25
    optimizer: optax.GradientTransformation | None = None

    def __post_init__(self) -> None:
        _nn.check_schedule(self.steps, self.record_every)
        for name in ("batch_size", "layers", "width", "depth"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("bins", self.bins, minimum=2)
        _nn.validate_positive_float("learning_rate", self.learning_rate)
        _nn.validate_positive_float("bound", self.bound)
        if self.schedule not in SCHEDULES:
            raise InvalidArgument(
                "schedule", f"must be one of {SCHEDULES} (got {self.schedule!r})"
            )
        _nn.validate_positive_float("weight_decay", self.weight_decay, True)
        for name in ("ema_decay", "holdout"):
            value = getattr(self, name)
            _nn.validate_positive_float(name, value, allow_zero=True)
            if not value < 1:
                raise InvalidArgument(name, f"must be in [0, 1) (got {value!r})")
        _nn.check_optimizer(self.optimizer)

    def __repr__(self) -> str:
        return _nn.dataclass_repr(
            self, omit_if_none=("optimizer",), omit_if_default=_ADDED_OPTIONS
        )

    def default_optimizer(self) -> optax.GradientTransformation:
        """Adam with step size ``learning_rate``: what trains the flow unless
        ``optimizer`` is given.

        ``eps_root`` = 1e-20 under Adam's square root: a spline parameter whose
        minibatch gradient is exactly zero (a derivative at a knot with no events
        near it) has a zero second moment, where √v has an infinite derivative and
        the forward-mode tangent of the training became NaN (in about 1 of 8
        trainings on 100 Gaussian events).  The shift is below one float32 ulp of
        v, so changes no update, wherever a gradient is above ~1e-6."""
        learning_rate = self.learning_rate
        if self.schedule == "cosine":
            learning_rate = optax.warmup_cosine_decay_schedule(
                0.0,
                self.learning_rate,
                warmup_steps=max(1, self.steps // 20),
                decay_steps=self.steps,
            )
        return optax.adam(learning_rate, eps_root=1e-20)

    @property
    def fit_cost(self) -> int:
        """Work of one fit in event-equivalents (``steps × batch_size``), for the
        engine's step sizing (``jaxunc.surrogates.base.fit_cost``)."""
        return self.steps * self.batch_size

    @property
    def min_train(self) -> int:
        """Fewest training events: two (the standardisation needs a spread)."""
        return 2

    # -- the bijection -------------------------------------------------------------

    def _split(self, layer: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(conditioning, transformed) dimensions of coupling layer ``layer``."""
        half = np.arange(dim) < dim // 2
        if layer % 2:
            half = ~half
        return np.flatnonzero(half), np.flatnonzero(~half)

    def _init_layer(self, key: jax.Array, layer: int, dim: int, dtype):
        params_per_dim = 3 * self.bins - 1
        if dim == 1:
            return 0.01 * fast_random.normal(key, (1, params_per_dim), dtype)
        conditioning, transformed = self._split(layer, dim)
        sizes = (
            conditioning.size,
            *(self.width,) * self.depth,
            transformed.size * params_per_dim,
        )
        net = _nn.init_mlp(key, sizes, dtype)
        # start near the identity: a small last layer
        net[-1]["w"] = 0.01 * net[-1]["w"]
        return net

    def _layer(self, layer: int, params, u: jax.Array, inverse: bool):
        """Apply layer ``layer`` (or its inverse) to u (n, d) → (u', log_det (n,))."""
        dim = u.shape[1]
        if dim == 1:
            spline = jnp.broadcast_to(params, (*u.shape, params.shape[-1]))
            y, log_det = rational_quadratic_spline(u, spline, self.bound, inverse)
            return y, jnp.sum(log_det, axis=1)
        conditioning, transformed = self._split(layer, dim)
        spline = _nn.mlp(params, u[:, conditioning], jax.nn.gelu)
        spline = spline.reshape(u.shape[0], transformed.size, 3 * self.bins - 1)
        y, log_det = rational_quadratic_spline(
            u[:, transformed], spline, self.bound, inverse
        )
        return u.at[:, transformed].set(y), jnp.sum(log_det, axis=1)

    def _forward(self, layers, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Standardised events u (n, d) → latent z (n, d) and Σ log|det| (n,)."""
        total = jnp.zeros(u.shape[0], u.dtype)
        for index, params in enumerate(layers):
            u, log_det = self._layer(index, params, u, inverse=False)
            total = total + log_det
        return u, total

    def _inverse(self, layers, z: jax.Array) -> jax.Array:
        for index in reversed(range(len(layers))):
            z, _ = self._layer(index, layers[index], z, inverse=True)
        return z

    def _log_prob_standardized(self, layers, u: jax.Array) -> jax.Array:
        z, log_det = self._forward(layers, u)
        dim = u.shape[1]
        return (
            -0.5 * jnp.sum(z * z, axis=1) - 0.5 * dim * math.log(2 * math.pi) + log_det
        )

    # -- the surrogate protocol ----------------------------------------------------

    def fit(self, key: jax.Array, data: jax.Array) -> FlowParams:
        """Maximum-likelihood training on ``data`` (n_train,) or (n_train, d)."""
        _nn.check_data(data, self.min_train, "the flow")
        u_data, standardization = _nn.standardize(data)
        dtype = u_data.dtype
        dim = u_data.shape[1]
        init_key, train_key = fast_random.split(key)
        layer_keys = fast_random.split(init_key, self.layers)
        layers = [
            self._init_layer(layer_keys[index], index, dim, dtype)
            for index in range(self.layers)
        ]
        optimizer = (
            self.default_optimizer() if self.optimizer is None else self.optimizer
        )
        log_scale = jnp.sum(jnp.log(standardization.scale))
        held_out = None
        if self.holdout:
            held_out, u_data = self.holdout_split(key, u_data)
        batch = min(self.batch_size, u_data.shape[0])
        decay = self.ema_decay
        weight_decay = self.weight_decay

        def step(state, step_key):
            layers, opt_state = state.layers, state.optimizer_state
            events = _nn.minibatch(step_key, u_data, batch)

            def loss(layers):
                nll = -jnp.mean(self._log_prob_standardized(layers, events))
                if not weight_decay:
                    return nll, nll
                penalty = sum(
                    jnp.sum(leaf * leaf) for leaf in jax.tree_util.tree_leaves(layers)
                )
                return nll + jnp.asarray(0.5 * weight_decay, dtype) * penalty, nll

            (_, nll), grads = jax.value_and_grad(loss, has_aux=True)(layers)
            layers, opt_state = _nn.apply_optimizer(optimizer, grads, opt_state, layers)
            records = {"nll": nll + log_scale}
            average = best = best_nll = None
            returned = layers
            if decay:
                average = jax.tree_util.tree_map(
                    lambda a, p: decay * a + (1 - decay) * p, state.average, layers
                )
                returned = average
            if held_out is not None:
                held_nll = -jnp.mean(self._log_prob_standardized(returned, held_out))
                better = held_nll < state.best_nll
                best = jax.tree_util.tree_map(
                    lambda new, old: jnp.where(better, new, old), returned, state.best
                )
                best_nll = jnp.where(better, held_nll, state.best_nll)
                records["heldout_nll"] = held_nll + log_scale
            state = FlowTrainingState(layers, opt_state, average, best, best_nll)
            return state, records

        state = FlowTrainingState(layers, optimizer.init(layers))
        if decay:
            state = state._replace(average=layers)
        if held_out is not None:
            state = state._replace(best=layers, best_nll=jnp.asarray(jnp.inf, dtype))
        state, losses = _nn.train(step, state, train_key, self.steps, self.record_every)
        final = state.layers
        if decay:
            final = state.average
        if held_out is not None:
            final = state.best
        return FlowParams(final, standardization, losses)

    def holdout_split(self, key: jax.Array, events: jax.Array):
        """``(held_out, kept)``: the events (n, ...) that ``fit(key, ·)`` holds out
        of the gradient (``round(holdout · n)``, at least 1, leaving at least 2)
        and the others, in the order of a permutation drawn from ``key``."""
        n = events.shape[0]
        n_held = min(max(1, round(self.holdout * n)), n - 2)
        init_key = jax.random.split(key)[0]
        order = jax.random.permutation(jax.random.fold_in(init_key, 1), n)
        return events[order[:n_held]], events[order[n_held:]]

    def log_prob(self, x: jax.Array, params: FlowParams) -> jax.Array:
        """Exact log density of the events ``x`` ((n,) or (n, d)), shape (n,)."""
        shift, scale = params.standardization
        u = ((x - shift) / scale).reshape(x.shape[0], -1)
        return self._log_prob_standardized(params.layers, u) - jnp.sum(jnp.log(scale))

    def sample(self, key: jax.Array, params: FlowParams, n: int) -> jax.Array:
        """``n`` events, (n,) for 1-D training data, (n, d) otherwise."""
        check_positive_int("n", n)
        shift, scale = params.standardization
        dim = 1 if shift.ndim == 0 else shift.shape[0]
        z = fast_random.normal(key, (n, dim), shift.dtype)
        u = self._inverse(params.layers, z)
        if shift.ndim == 0:
            u = u[:, 0]
        return shift + scale * u

    def training_losses(self, params: FlowParams) -> dict[str, jax.Array]:
        """Recorded loss curve ``{"nll"}``, (steps // record_every,)."""
        return dict(params.losses)

    def fit_result(self, params: FlowParams) -> jax.Array:
        """``int32[]`` result code of one trained flow (``jaxunc.results``):
        ``NONFINITE_VALUE`` when its layers, standardisation or recorded losses hold
        a NaN or an infinity (a diverged training), else ``SUCCESSFUL``."""
        return _nn.finite_result(params)
