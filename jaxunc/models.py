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
* ``exact_fisher(theta, params)``: the per-event Fisher information in closed form;
* ``cdf(x, theta)`` and ``quantile(u, theta)``: the cumulative distribution function
  and its inverse (used by ``jaxunc.validation`` for exact bin probabilities and
  true-quantile bins; without them it uses a large reference sample);
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
    "CustomModel",
    "Exponential",
    "Gaussian",
    "Model",
    "check_params",
    "model_from_functions",
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
