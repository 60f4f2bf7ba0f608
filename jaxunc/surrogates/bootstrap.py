"""Bootstrap resampling: the surrogate that draws training events with replacement.

The "generated" events are copies of training events, each drawn uniformly with
replacement (Efron's bootstrap).  It has no density (no ``log_prob``): its
distribution is the empirical distribution of the training sample, a sum of point
masses.  It is the limiting case of a surrogate that memorises its training data.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

__all__ = ["Bootstrap"]


@dataclasses.dataclass(frozen=True)
class Bootstrap:
    """Resample the training sample with replacement.

    ``fit(key, data)`` keeps the training sample itself as the parameters (shape
    ``(n_train, *event_shape)``, any event shape); ``sample(key, params, n)`` returns
    ``n`` events, each a uniformly chosen training event.

    For the sample mean of ``n_gen`` bootstrap events from ``n_train`` training events
    of variance σ², Var = σ²/n_train · (1 + (n_train - 1)/n_gen): the training-sample
    spread plus the resampling spread around the training mean (the empirical
    variance has expectation σ²(n_train - 1)/n_train).

    The fit cannot fail (no ``fit_result``: successful by default).  The resampling
    indices depend on the key only, so every generated event is differentiable in
    the training events (∂x_gen[j]/∂x_train[i] = 1 where event j copies event i).
    """

    @property
    def min_train(self) -> int:
        """Fewest training events: one."""
        return 1

    def fit(self, key: jax.Array, data: jax.Array) -> jax.Array:
        del key  # nothing random to learn
        data = jnp.asarray(data)
        if data.ndim < 1 or data.shape[0] < 1:
            raise ValueError(
                f"data must have shape (n_train, ...) with n_train >= 1 "
                f"(got {data.shape})"
            )
        return data

    def sample(self, key: jax.Array, params: jax.Array, n: int) -> jax.Array:
        index = jax.random.randint(key, (n,), 0, params.shape[0])
        return params[index]
