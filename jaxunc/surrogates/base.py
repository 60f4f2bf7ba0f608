"""The surrogate protocol.

A surrogate learns a distribution from a training sample and generates new events:

* ``fit(key, data) -> params``: a pure, jittable function of the key and the training
  sample ``data`` (shape ``(n_train, *event_shape)``), so an ensemble of surrogates, one
  per training sample, trains under one ``vmap``;
* ``sample(key, params, n) -> x``: ``n`` generated events (``n`` static);
* ``log_prob(x, params)`` where the surrogate has a density (optional);
* ``min_train``: the smallest training sample it can be fitted to (optional, default 1);
* ``fit_converged(params) -> bool[]`` (optional): whether the fit succeeded.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax


@runtime_checkable
class Surrogate(Protocol):
    """A generative surrogate: ``fit(key, data)`` and ``sample(key, params, n)``."""

    def fit(self, key: jax.Array, data: jax.Array) -> Any: ...

    def sample(self, key: jax.Array, params: Any, n: int) -> jax.Array: ...
