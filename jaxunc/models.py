"""True simulators: the ``Model`` protocol and the built-in models.

A model is anything with two methods,

* ``sample(key, theta, n) -> x``: ``n`` events (static int),
  ``x.shape == (n, *event_shape)``;
* ``log_prob(x, theta) -> log p``: per-event log density, shape ``(n,)``.

``theta`` is a pytree of arrays, by convention a ``dict`` of named parameters, e.g.
``{"mu": 0.0, "sigma": 1.0}``.  Optional methods let jaxunc do more with a model but
are never required:

* ``check_params(theta)``: raise ``ValueError`` naming a bad parameter (called eagerly
  on concrete values, before any computation starts);
* ``to_unconstrained(theta)`` / ``from_unconstrained(u)``: a bijection onto an
  unconstrained space, used by the generic maximum-likelihood fit (defaults to
  identity);
* ``initial_params(x)``: a data-driven starting point for the generic fit;
* ``closed_form_mle(x, theta, free)``: the exact maximum-likelihood estimate, used as a
  fast path (a test checks it against the generic Newton fit);
* ``exact_fisher(theta, params)``: the per-event Fisher information in closed form
  (or by deterministic quadrature, for the built-in mixtures);
* ``cdf(x, theta)`` and ``quantile(u, theta)``: the cumulative distribution function
  and its inverse (used by ``jaxunc.validation`` for exact bin probabilities and
  true-quantile bins; without them it uses a large reference sample);
* ``support``: ``(low, high)`` for a 1-D density that vanishes outside an interval,
  or a method ``support(x) -> bool[n]`` saying which events lie where the density is
  defined (estimators applied to generated events keep only the events inside, as an
  analysis window would, and studies count the events outside: ``outside_support``);
  without it, an event lies outside where ``log_prob`` at the true parameters is not
  finite (−inf or NaN);
* ``sufficient_statistics(x)`` and ``log_likelihood_from_statistics(t, theta)``: the
  total log-likelihood from sufficient statistics (a fast path for importance weights,
  tested against ``log_prob(x).sum()``).

``model_from_functions(sample, log_prob)`` turns two plain functions into a model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import jax.scipy.special
import numpy as np

from jaxunc import random as fast_random
from jaxunc.summation import pairwise_mean, pairwise_sum

__all__ = [
    "CamelBack",
    "CustomModel",
    "Exponential",
    "Gaussian",
    "Model",
    "Spectrum",
    "check_params",
    "model_from_functions",
    "outside_support",
    "support_description",
]


@runtime_checkable
class Model(Protocol):
    """A true simulator: ``sample(key, theta, n)`` and ``log_prob(x, theta)``."""

    def sample(self, key: jax.Array, theta: Any, n: int) -> jax.Array: ...

    def log_prob(self, x: jax.Array, theta: Any) -> jax.Array: ...


def _require_finite(theta: Mapping[str, Any]) -> None:
    for name, value in theta.items():
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"parameter {name!r} must be finite (got {value!r})")


def _require_positive(theta: Mapping[str, Any], name: str) -> None:
    if np.any(np.asarray(theta[name], dtype=np.float64) <= 0):
        raise ValueError(f"parameter {name!r} must be > 0 (got {theta[name]!r})")


def _require_names(theta: Any, names: tuple[str, ...], model: str) -> None:
    if not isinstance(theta, Mapping) or set(theta) != set(names):
        got = sorted(theta) if isinstance(theta, Mapping) else type(theta).__name__
        raise ValueError(
            f"{model} parameters must be a dict with keys {list(names)} (got {got})"
        )


def outside_support(model: Any, x: jax.Array, theta: Any) -> jax.Array:
    """``bool[n]``: which events of ``x`` (``(n, *event_shape)``) lie outside the
    support of ``model`` at ``theta``: outside its ``support`` interval (inclusive
    ends) or where its ``support(x)`` hook is False, or, for a model that declares no
    support, where ``log_prob(x, theta)`` is not finite.  NaN events are outside."""
    support = getattr(model, "support", None)
    if support is None:
        return ~jnp.isfinite(model.log_prob(x, theta))
    if callable(support):
        return ~jnp.asarray(support(x), bool)
    low, high = support
    return ~((x >= low) & (x <= high))


def support_description(model: Any) -> str:
    """How ``outside_support`` decides for ``model``, in words."""
    support = getattr(model, "support", None)
    if support is None:
        return (
            "no declared support: an event is outside where log_prob at the true "
            "parameters is not finite"
        )
    if callable(support):
        return "declared by the model's support(x) hook"
    low, high = support
    return f"declared interval [{low:g}, {high:g}]"


def check_params(model: Any, theta: Any) -> None:
    """Validate ``theta`` for ``model`` eagerly: finite leaves, then the model's
    own check."""
    for leaf in jax.tree_util.tree_leaves(theta):
        if not np.all(np.isfinite(np.asarray(leaf, dtype=np.float64))):
            raise ValueError(f"theta must be finite (got {theta!r})")
    checker = getattr(model, "check_params", None)
    if checker is not None:
        checker(theta)


def _float_dtype(*values: Any) -> jnp.dtype:
    """The floating dtype of the parameters (float32 unless they are float64)."""
    dtype = jnp.result_type(*values)
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Gaussian:
    """Normal distribution with mean ``mu`` and standard deviation ``sigma`` (> 0).

    ``theta = {"mu": ..., "sigma": ...}``; events are scalars (``x.shape == (n,)``).
    The dtype of the events is that of the parameters (float32 for Python floats).
    """

    parameter_names = ("mu", "sigma")
    closed_form_supports_ddof = True

    def sample(
        self, key: jax.Array, theta: Mapping[str, jax.Array], n: int
    ) -> jax.Array:
        dtype = _float_dtype(theta["mu"], theta["sigma"])
        return theta["mu"] + theta["sigma"] * fast_random.normal(key, (n,), dtype)

    def log_prob(self, x: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        z = (x - theta["mu"]) / theta["sigma"]
        return -0.5 * z * z - jnp.log(theta["sigma"]) - 0.5 * math.log(2 * math.pi)

    def cdf(self, x: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        """P(X <= x) = Φ((x - μ)/σ)."""
        return jax.scipy.special.ndtr((x - theta["mu"]) / theta["sigma"])

    def quantile(self, u: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        """The inverse of ``cdf``: μ + σ Φ⁻¹(u) (±inf at u = 0, 1)."""
        return theta["mu"] + theta["sigma"] * jax.scipy.special.ndtri(u)

    def check_params(self, theta: Any) -> None:
        _require_names(theta, self.parameter_names, "Gaussian")
        _require_finite(theta)
        _require_positive(theta, "sigma")

    def to_unconstrained(self, theta: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return {"mu": theta["mu"], "sigma": jnp.log(theta["sigma"])}

    def from_unconstrained(self, u: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return {"mu": u["mu"], "sigma": jnp.exp(u["sigma"])}

    def initial_params(self, x: jax.Array) -> dict[str, jax.Array]:
        mean = pairwise_mean(x)
        sigma = jnp.sqrt(pairwise_mean((x - mean) ** 2))
        return {"mu": mean, "sigma": sigma + jnp.finfo(x.dtype).tiny}

    def exact_fisher(
        self, theta: Mapping[str, Any], params: tuple[str, ...]
    ) -> np.ndarray:
        """Per-event Fisher information: 1/σ² for μ, 2/σ² for σ, no correlation."""
        sigma2 = float(theta["sigma"]) ** 2
        diagonal = {"mu": 1.0 / sigma2, "sigma": 2.0 / sigma2}
        return np.diag([diagonal[name] for name in params])

    def sufficient_statistics(self, x: jax.Array) -> jax.Array:
        """(n, Σx, Σx²) of the events, for ``log_likelihood_from_statistics``."""
        n = jnp.asarray(x.shape[0], x.dtype)
        return jnp.stack([n, pairwise_sum(x), pairwise_sum(x * x)])

    def log_likelihood_from_statistics(
        self, statistics: jax.Array, theta: Mapping[str, jax.Array]
    ) -> jax.Array:
        """Σ log p(x_i|θ) from (n, Σx, Σx²): equal to ``log_prob(x).sum()``."""
        n, total, squares = statistics[0], statistics[1], statistics[2]
        mu, sigma = theta["mu"], theta["sigma"]
        quadratic = squares - 2 * mu * total + n * mu * mu
        return (
            -0.5 * quadratic / (sigma * sigma)
            - n * jnp.log(sigma)
            - 0.5 * n * math.log(2 * math.pi)
        )

    def closed_form_mle(
        self,
        x: jax.Array,
        theta: Mapping[str, jax.Array],
        free: tuple[str, ...],
        ddof: int = 0,
    ) -> dict[str, jax.Array]:
        """Sample mean and ``sqrt(sum((x - mean)**2) / (n - ddof))``; ddof=0 is the MLE.

        Parameters not in ``free`` keep their value in ``theta``.
        """
        mean = pairwise_mean(x)
        fitted = dict(theta)
        if "mu" in free:
            fitted["mu"] = mean
        if "sigma" in free:
            center = fitted["mu"]
            squares = pairwise_sum((x - center) ** 2)
            fitted["sigma"] = jnp.sqrt(squares / (x.shape[0] - ddof))
        return fitted


@dataclasses.dataclass(frozen=True)
class Exponential:
    """Exponential distribution with ``rate`` λ > 0: p(x) = λ exp(-λ x), x ≥ 0.

    ``theta = {"rate": ...}``; the mean is 1/λ.
    """

    parameter_names = ("rate",)

    def sample(
        self, key: jax.Array, theta: Mapping[str, jax.Array], n: int
    ) -> jax.Array:
        dtype = _float_dtype(theta["rate"])
        return fast_random.exponential(key, (n,), dtype) / theta["rate"]

    def log_prob(self, x: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        rate = theta["rate"]
        return jnp.where(x >= 0, jnp.log(rate) - rate * x, -jnp.inf)

    def cdf(self, x: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        """P(X <= x) = 1 - exp(-λ x) for x >= 0, else 0."""
        return jnp.where(x > 0, -jnp.expm1(-theta["rate"] * jnp.maximum(x, 0)), 0)

    def quantile(self, u: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        """The inverse of ``cdf``: -log(1 - u)/λ (inf at u = 1)."""
        return -jnp.log1p(-u) / theta["rate"]

    def check_params(self, theta: Any) -> None:
        _require_names(theta, self.parameter_names, "Exponential")
        _require_finite(theta)
        _require_positive(theta, "rate")

    def to_unconstrained(self, theta: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return {"rate": jnp.log(theta["rate"])}

    def from_unconstrained(self, u: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return {"rate": jnp.exp(u["rate"])}

    def initial_params(self, x: jax.Array) -> dict[str, jax.Array]:
        return {"rate": 1.0 / (pairwise_mean(x) + jnp.finfo(x.dtype).tiny)}

    def closed_form_mle(
        self,
        x: jax.Array,
        theta: Mapping[str, jax.Array],
        free: tuple[str, ...],
        ddof: int = 0,
    ) -> dict[str, jax.Array]:
        """λ̂ = 1/x̄ (maximum likelihood); ``ddof`` must be 0."""
        if ddof != 0:
            raise ValueError("the exponential fit has no ddof option; use ddof=0")
        fitted = dict(theta)
        if "rate" in free:
            fitted["rate"] = 1.0 / pairwise_mean(x)
        return fitted

    def sufficient_statistics(self, x: jax.Array) -> jax.Array:
        """(n, Σx, count of negative events) for ``log_likelihood_from_statistics``."""
        n = jnp.asarray(x.shape[0], x.dtype)
        return jnp.stack([n, pairwise_sum(x), jnp.sum(x < 0).astype(x.dtype)])

    def log_likelihood_from_statistics(
        self, statistics: jax.Array, theta: Mapping[str, jax.Array]
    ) -> jax.Array:
        """Σ log p(x_i|θ) = n log λ - λ Σx (-inf if any event is negative)."""
        n, total, negative = statistics[0], statistics[1], statistics[2]
        rate = theta["rate"]
        value = n * jnp.log(rate) - rate * total
        return jnp.where(negative > 0, -jnp.inf, value)

    def exact_fisher(
        self, theta: Mapping[str, Any], params: tuple[str, ...]
    ) -> np.ndarray:
        """Per-event Fisher information about the rate: 1/λ²."""
        return np.array([[1.0 / float(theta["rate"]) ** 2]])


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_QUADRATURE_POINTS = 20001


def _normal_log_density(x: jax.Array, mean: Any, width: Any) -> jax.Array:
    z = (x - mean) / width
    return -0.5 * z * z - jnp.log(width) - _LOG_SQRT_2PI


def _quadrature_fisher(
    model: Any,
    theta: Mapping[str, Any],
    params: tuple[str, ...],
    low: float,
    high: float,
) -> np.ndarray:
    """Per-event Fisher information ∫ s sᵀ p dx on [low, high] by the trapezoid rule
    on ``_QUADRATURE_POINTS`` points; scores by ``jax.grad`` of ``log_prob``.

    For the built-in 1-D models the integrand is smooth on [low, high] and negligible
    outside it, so the result is accurate to the precision of ``log_prob`` (relative
    error ~1e-6 in float32).
    """
    theta = {k: jnp.asarray(v) for k, v in theta.items()}
    dtype = _float_dtype(*theta.values())
    grid = jnp.linspace(low, high, _QUADRATURE_POINTS, dtype=dtype)
    vector = jnp.stack([theta[name].astype(dtype) for name in params])

    def log_prob(v: jax.Array, x: jax.Array) -> jax.Array:
        updated = {**theta, **{name: v[i] for i, name in enumerate(params)}}
        return model.log_prob(x[None], updated)[0]

    scores = jax.vmap(jax.grad(log_prob), in_axes=(None, 0))(vector, grid)
    density = jnp.exp(jax.vmap(log_prob, in_axes=(None, 0))(vector, grid))
    scores = np.asarray(scores, np.float64)
    weights = np.asarray(density, np.float64) * float(grid[1] - grid[0])
    weights[[0, -1]] *= 0.5
    return np.einsum("i,ij,ik->jk", weights, scores, scores)


@dataclasses.dataclass(frozen=True)
class CamelBack:
    """The 1-D "camel back" of the GANplify study (Butter et al., SciPost Phys. 10,
    139 (2021)): two Gaussian bumps of width ``width`` at μ ∓ ``half_distance``,

        p(x | μ) = w N(x; μ - a, s²) + (1 - w) N(x; μ + a, s²),

    with weight ``w = weight`` on the left bump.  Defaults a = 4, s = 1, w = 1/2: two
    well-separated unit bumps at ±4 when μ = 0.

    θ = ``{"mu": ...}``, the location of the pair of bumps (their midpoint); the shape
    (a, s, w) is fixed configuration.  A shift family of a fixed density, so μ is
    identifiable.  The mean of x is μ + a(1 - 2w) and its variance s² + 4a²w(1 - w),
    so the sample mean is a poor estimator of μ here (variance 17/n against the
    Cramér-Rao bound ≈ 1/n for the defaults); the MLE reaches the bound.
    """

    half_distance: float = 4.0
    width: float = 1.0
    weight: float = 0.5
    parameter_names = ("mu",)

    def __post_init__(self) -> None:
        for name in ("half_distance", "width", "weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number (got {value!r})")
        if self.half_distance <= 0 or self.width <= 0:
            raise ValueError(
                "half_distance and width must be > 0 (got "
                f"{self.half_distance!r}, {self.width!r})"
            )
        if not 0 < self.weight < 1:
            raise ValueError(f"weight must be in (0, 1) (got {self.weight!r})")

    def sample(
        self, key: jax.Array, theta: Mapping[str, jax.Array], n: int
    ) -> jax.Array:
        dtype = _float_dtype(theta["mu"])
        pick, noise = jax.random.split(key)
        left = fast_random.uniform(pick, (n,), dtype) < self.weight
        offset = jnp.where(left, -self.half_distance, self.half_distance).astype(dtype)
        return (
            theta["mu"] + offset + self.width * fast_random.normal(noise, (n,), dtype)
        )

    def log_prob(self, x: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        mu = theta["mu"]
        left = math.log(self.weight) + _normal_log_density(
            x, mu - self.half_distance, self.width
        )
        right = math.log1p(-self.weight) + _normal_log_density(
            x, mu + self.half_distance, self.width
        )
        return jnp.logaddexp(left, right)

    def check_params(self, theta: Any) -> None:
        _require_names(theta, self.parameter_names, "CamelBack")
        _require_finite(theta)

    def mean(self, theta: Mapping[str, Any]) -> float:
        """E[x] = μ + a(1 - 2w)."""
        return float(theta["mu"]) + self.half_distance * (1 - 2 * self.weight)

    def variance(self) -> float:
        """Var[x] = s² + 4a²w(1 - w) (independent of μ)."""
        a, w = self.half_distance, self.weight
        return self.width**2 + 4 * a * a * w * (1 - w)

    def initial_params(self, x: jax.Array) -> dict[str, jax.Array]:
        """The method-of-moments start μ = x̄ - a(1 - 2w)."""
        return {"mu": jnp.mean(x) - self.half_distance * (1 - 2 * self.weight)}

    def exact_fisher(
        self, theta: Mapping[str, Any], params: tuple[str, ...]
    ) -> np.ndarray:
        """Per-event Fisher information about μ by quadrature (no closed form for a
        mixture); below 1/s² because the bumps overlap slightly."""
        mu, reach = float(theta["mu"]), self.half_distance + 12 * self.width
        return _quadrature_fisher(self, theta, params, mu - reach, mu + reach)


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """A HEP-like invariant-mass spectrum on [``x_min``, ``x_max``]: a falling
    exponential background plus a Gaussian resonance,

        p(x | θ) = (1 - f) b(x) + f g(x),   x_min ≤ x ≤ x_max,

    b(x) = exp(-(x - x_min)/L) / (L (1 - exp(-(x_max - x_min)/L))) (truncated
    exponential with decay length L) and g(x) = N(x; m, w²) / Z, the Gaussian
    truncated to the window (Z = Φ((x_max - m)/w) - Φ((x_min - m)/w)).  Both are
    normalised on the window, so p integrates to 1 there; outside it log p = -inf.

    θ = ``{"mass": m, "width": w, "signal_fraction": f, "decay_length": L}``;
    the studies measure the mass and keep the other three fixed (``ModelSpec.free``).
    Defaults of the registry: window [100, 160], m = 125, w = 2.5, f = 0.25, L = 20
    (units: GeV, say).  Constraints: x_min < m < x_max, w > 0, 0 < f < 1, L > 0.
    """

    x_min: float = 100.0
    x_max: float = 160.0
    parameter_names = ("mass", "width", "signal_fraction", "decay_length")

    def __post_init__(self) -> None:
        for name in ("x_min", "x_max"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number (got {value!r})")
        if not self.x_min < self.x_max:
            raise ValueError(
                f"x_min must be < x_max (got {self.x_min!r}, {self.x_max!r})"
            )

    @property
    def support(self) -> tuple[float, float]:
        """The window (x_min, x_max) outside which the density is zero."""
        return (self.x_min, self.x_max)

    def _signal_normalisation(self, mass: Any, width: Any) -> jax.Array:
        upper = jax.scipy.special.ndtr((self.x_max - mass) / width)
        lower = jax.scipy.special.ndtr((self.x_min - mass) / width)
        return upper - lower

    def sample(
        self, key: jax.Array, theta: Mapping[str, jax.Array], n: int
    ) -> jax.Array:
        dtype = _float_dtype(*theta.values())
        mass, width = theta["mass"], theta["width"]
        fraction, decay = theta["signal_fraction"], theta["decay_length"]
        pick, signal_key, background_key = jax.random.split(key, 3)
        is_signal = fast_random.uniform(pick, (n,), dtype) < fraction
        # Inverse-CDF sampling of both components restricted to the window.
        u = fast_random.uniform(signal_key, (n,), dtype)
        lower = jax.scipy.special.ndtr((self.x_min - mass) / width)
        upper = jax.scipy.special.ndtr((self.x_max - mass) / width)
        signal = mass + width * jax.scipy.special.ndtri(lower + u * (upper - lower))
        v = fast_random.uniform(background_key, (n,), dtype)
        span = 1 - jnp.exp(-(self.x_max - self.x_min) / decay)
        background = self.x_min - decay * jnp.log1p(-v * span)
        x = jnp.where(is_signal, signal, background)
        return jnp.clip(x, self.x_min, self.x_max)

    def log_prob(self, x: jax.Array, theta: Mapping[str, jax.Array]) -> jax.Array:
        mass, width = theta["mass"], theta["width"]
        fraction, decay = theta["signal_fraction"], theta["decay_length"]
        span = -jnp.expm1(-(self.x_max - self.x_min) / decay)
        log_background = -(x - self.x_min) / decay - jnp.log(decay * span)
        log_signal = _normal_log_density(x, mass, width) - jnp.log(
            self._signal_normalisation(mass, width)
        )
        value = jnp.logaddexp(
            jnp.log1p(-fraction) + log_background, jnp.log(fraction) + log_signal
        )
        inside = (x >= self.x_min) & (x <= self.x_max)
        return jnp.where(inside, value, -jnp.inf)

    def check_params(self, theta: Any) -> None:
        _require_names(theta, self.parameter_names, "Spectrum")
        _require_finite(theta)
        _require_positive(theta, "width")
        _require_positive(theta, "decay_length")
        fraction = float(theta["signal_fraction"])
        if not 0 < fraction < 1:
            raise ValueError(
                f"parameter 'signal_fraction' must be in (0, 1) (got {fraction!r})"
            )
        mass = float(theta["mass"])
        if not self.x_min < mass < self.x_max:
            raise ValueError(
                f"parameter 'mass' must be inside the window ({self.x_min}, "
                f"{self.x_max}) (got {mass!r})"
            )

    def to_unconstrained(self, theta: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """mass → logit of its position in the window; width, L → log; f → logit."""
        position = (theta["mass"] - self.x_min) / (self.x_max - self.x_min)
        fraction = theta["signal_fraction"]
        return {
            "mass": jnp.log(position) - jnp.log1p(-position),
            "width": jnp.log(theta["width"]),
            "signal_fraction": jnp.log(fraction) - jnp.log1p(-fraction),
            "decay_length": jnp.log(theta["decay_length"]),
        }

    def from_unconstrained(self, u: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        return {
            "mass": self.x_min + (self.x_max - self.x_min) * jax.nn.sigmoid(u["mass"]),
            "width": jnp.exp(u["width"]),
            "signal_fraction": jax.nn.sigmoid(u["signal_fraction"]),
            "decay_length": jnp.exp(u["decay_length"]),
        }

    def exact_fisher(
        self, theta: Mapping[str, Any], params: tuple[str, ...]
    ) -> np.ndarray:
        """Per-event Fisher information by quadrature over the window (no closed
        form)."""
        return _quadrature_fisher(self, theta, params, self.x_min, self.x_max)


@dataclasses.dataclass(frozen=True)
class CustomModel:
    """A model made of user functions; see ``model_from_functions``."""

    sample_fn: Callable[[jax.Array, Any, int], jax.Array]
    log_prob_fn: Callable[[jax.Array, Any], jax.Array]
    check_params_fn: Callable[[Any], None] | None = None

    def sample(self, key: jax.Array, theta: Any, n: int) -> jax.Array:
        return self.sample_fn(key, theta, n)

    def log_prob(self, x: jax.Array, theta: Any) -> jax.Array:
        return self.log_prob_fn(x, theta)

    def check_params(self, theta: Any) -> None:
        if self.check_params_fn is not None:
            self.check_params_fn(theta)


def model_from_functions(
    sample: Callable[[jax.Array, Any, int], jax.Array],
    log_prob: Callable[[jax.Array, Any], jax.Array],
    check_params: Callable[[Any], None] | None = None,
) -> CustomModel:
    """Wrap ``sample(key, theta, n)`` and ``log_prob(x, theta)`` into a ``Model``."""
    if not callable(sample) or not callable(log_prob):
        raise ValueError("sample and log_prob must be callables")
    return CustomModel(sample, log_prob, check_params)
