"""Gaussian kernel density estimate (KDE) with Scott's or Silverman's bandwidth rule.

The density of a KDE fitted to ``n`` events ``x_i`` (dimension ``d``) is

    q(x) = (1/n) Σ_i N(x; x_i, H),    H = h² Σ̂,

with Σ̂ the sample covariance of the training events (ddof = 1) and the dimensionless
bandwidth factor ``h`` from a rule (the conventions of ``scipy.stats.gaussian_kde``):

* Scott (1992):      h = n^(-1/(d+4));
* Silverman (1986):  h = (n (d + 2) / 4)^(-1/(d+4)).

In one dimension the kernel standard deviation is ``h · s`` with ``s`` the sample
standard deviation; Scott's rule gives ``s · n^(-1/5)``, Silverman's
``s · (3n/4)^(-1/5) ≈ 1.06 s n^(-1/5)``.  ``bandwidth`` sets ``h`` directly instead.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import jax.scipy.special

from jaxunc import random as fast_random
from jaxunc.results import Result, from_ok

__all__ = ["KDE", "KDEParams", "bandwidth_factor"]

RULES = ("scott", "silverman")


class KDEParams(NamedTuple):
    """A fitted KDE.

    ``points``: the training events, ``(n, *event_shape)``;
    ``cholesky``: lower Cholesky factor of the kernel covariance H = h² Σ̂, ``(d, d)``;
    ``factor``: the bandwidth factor h, scalar.
    """

    points: jax.Array
    cholesky: jax.Array
    factor: jax.Array


def bandwidth_factor(rule: str, n: int, d: int) -> float:
    """The bandwidth factor ``h`` of ``rule`` for ``n`` events in ``d`` dimensions."""
    if rule == "scott":
        return n ** (-1.0 / (d + 4))
    if rule == "silverman":
        return (n * (d + 2) / 4.0) ** (-1.0 / (d + 4))
    raise ValueError(f"rule must be one of {list(RULES)} (got {rule!r})")


def _flat(x: jax.Array, event_ndim: int) -> jax.Array:
    """``(n, *event_shape)`` → ``(n, d)``."""
    return x.reshape(x.shape[0], -1) if event_ndim else x[:, None]


@dataclasses.dataclass(frozen=True)
class KDE:
    """Gaussian kernel density estimate of the training sample.

    Args:
      rule: bandwidth rule, ``"scott"`` (default) or ``"silverman"`` (see the module
        docstring for the formulas).
      bandwidth: the bandwidth factor ``h`` (> 0) to use instead of the rule: the
        kernel covariance is ``h²`` times the sample covariance (in 1-D the kernel
        standard deviation is ``h`` times the sample standard deviation).

    Events are scalars (``data.shape == (n,)``) or vectors (``(n, d)``); the sample
    covariance needs ``n > d`` events (``min_train`` is 2, enough in 1-D).
    ``log_prob`` evaluates all ``n_train`` kernels for each event: memory
    ``O(len(x) · n_train)``.  ``fit`` and ``sample`` are differentiable in the
    training events (the Cholesky factor of the kernel covariance included; the rule's
    factor ``h`` depends on ``n`` and ``d`` only).
    """

    rule: str = "scott"
    bandwidth: float | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {list(RULES)} (got {self.rule!r})")
        if self.bandwidth is not None and not (
            isinstance(self.bandwidth, (int, float))
            and math.isfinite(self.bandwidth)
            and self.bandwidth > 0
        ):
            raise ValueError(
                f"bandwidth must be a finite number > 0 or None (got "
                f"{self.bandwidth!r})"
            )

    @property
    def min_train(self) -> int:
        return 2

    def fit(self, key: jax.Array, data: jax.Array) -> KDEParams:
        del key  # the KDE is a deterministic function of the data
        data = jnp.asarray(data)
        if data.ndim not in (1, 2) or data.shape[0] < 2:
            raise ValueError(
                "data must have shape (n_train,) or (n_train, d) with n_train >= 2 "
                f"(got {data.shape})"
            )
        flat = _flat(data, data.ndim - 1)
        n, d = flat.shape
        centered = flat - jnp.mean(flat, axis=0)
        covariance = centered.T @ centered / (n - 1)
        factor = (
            bandwidth_factor(self.rule, n, d)
            if self.bandwidth is None
            else self.bandwidth
        )
        factor = jnp.asarray(factor, data.dtype)
        cholesky = jnp.linalg.cholesky(covariance) * factor
        return KDEParams(data, cholesky, factor)

    def sample(self, key: jax.Array, params: KDEParams, n: int) -> jax.Array:
        points = params.points
        flat = _flat(points, points.ndim - 1)
        pick, noise = jax.random.split(key)
        index = jax.random.randint(pick, (n,), 0, points.shape[0])
        z = fast_random.normal(noise, (n, flat.shape[1]), points.dtype)
        x = flat[index] + z @ params.cholesky.T
        return x.reshape(n, *points.shape[1:])

    def log_prob(self, x: jax.Array, params: KDEParams) -> jax.Array:
        """log q(x) per event: ``x`` is ``(m, *event_shape)``, returns ``(m,)``."""
        points = params.points
        event_ndim = points.ndim - 1
        flat_points = _flat(points, event_ndim)
        flat_x = _flat(jnp.asarray(x, points.dtype), event_ndim)
        n, d = flat_points.shape
        difference = flat_x[:, None, :] - flat_points[None, :, :]  # (m, n, d)
        whitened = jax.scipy.linalg.solve_triangular(
            params.cholesky, difference.reshape(-1, d).T, lower=True
        ).T.reshape(difference.shape)
        log_det = jnp.sum(jnp.log(jnp.diagonal(params.cholesky)))
        log_kernel = (
            -0.5 * jnp.sum(whitened * whitened, axis=-1)
            - log_det
            - 0.5 * d * math.log(2 * math.pi)
        )
        return jax.scipy.special.logsumexp(log_kernel, axis=1) - math.log(n)

    def fit_converged(self, params: KDEParams) -> jax.Array:
        """False when the sample covariance is singular (no Cholesky factor)."""
        return jnp.all(jnp.isfinite(params.cholesky))

    def fit_result(self, params: KDEParams) -> jax.Array:
        """``int32[]`` result code (``jaxunc.results``): ``NONFINITE_VALUE`` when the
        bandwidth (the kernel covariance's Cholesky factor, or the factor ``h``) is
        not finite: a singular sample covariance (e.g. all training events equal) or
        a NaN or infinite training event; else ``SUCCESSFUL``."""
        ok = jnp.all(jnp.isfinite(params.cholesky)) & jnp.isfinite(params.factor)
        return from_ok(ok, Result.NONFINITE_VALUE)
