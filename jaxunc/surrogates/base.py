"""The surrogate protocol and its defaults, in one place.

A surrogate learns a distribution from a training sample and generates new events:

* ``fit(key, data) -> params``: a pure, jittable function of the key and the training
  sample ``data`` (shape ``(n_train, *event_shape)``), so an ensemble of surrogates, one
  per training sample, trains under one ``vmap``;
* ``sample(key, params, n) -> x``: ``n`` generated events (``n`` static);

and optionally

* ``log_prob(x, params)``: per-event log density, where the surrogate has one
  (``has_density``);
* ``min_train``: the smallest training sample it can be fitted to (default 1);
* ``fit_result(params) -> int32[]``: a result code (``jaxunc.results``) saying
  whether and why the fit failed; a surrogate with only ``fit_converged(params) ->
  bool[]`` gets ``surrogate_fit_failed`` where it is False; default: successful;
* ``training_losses(params) -> {name: (n_records,)}``: loss curves of a trained
  surrogate (GAN, flow);
* ``fit_cost``: the work of one ``fit`` in event-equivalents (GAN, flow: steps ×
  batch_size; default 0, a fit as cheap as drawing a few events), which studies add
  to the engine's ``events_per_pseudo_experiment`` so that pseudo-experiments that
  train many surrogates run in small vectorised steps and the progress bar moves.

Code never probes these with ``getattr`` itself: it calls the functions below, which
apply the defaults.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax
import jax.numpy as jnp

from jaxunc.errors import InvalidArgument
from jaxunc.results import Result, from_ok

__all__ = [
    "Surrogate",
    "check_surrogate",
    "fit_cost",
    "fit_result",
    "has_density",
    "min_train",
    "required_train",
    "training_losses",
]


@runtime_checkable
class Surrogate(Protocol):
    """A generative surrogate: ``fit(key, data)`` and ``sample(key, params, n)``."""

    def fit(self, key: jax.Array, data: jax.Array) -> Any: ...

    def sample(self, key: jax.Array, params: Any, n: int) -> jax.Array: ...


def check_surrogate(surrogate: Any, argument: str = "surrogate") -> Any:
    """``surrogate`` itself, or ``InvalidArgument`` naming ``argument`` unless it has
    callable ``fit`` and ``sample``."""
    if not (
        callable(getattr(surrogate, "fit", None))
        and callable(getattr(surrogate, "sample", None))
    ):
        raise InvalidArgument(
            argument,
            "must be a surrogate: an object with fit(key, data) and "
            f"sample(key, params, n) (got {type(surrogate).__name__})",
        )
    return surrogate


def min_train(surrogate: Any) -> int:
    """Fewest training events ``surrogate`` can be fitted to (default 1)."""
    return int(getattr(surrogate, "min_train", 1))


def fit_cost(surrogate: Any) -> int:
    """Event-equivalents of work in one fit of ``surrogate`` (see the module
    docstring; default 0)."""
    return int(getattr(surrogate, "fit_cost", 0))


def required_train(surrogate: Any, *, parameters: int = 0, at_least: int = 1) -> int:
    """Fewest training events a study can use: the surrogate's ``min_train``, the
    number of fitted model parameters ``parameters`` (an estimator on the training
    sample needs at least one event per parameter) and the study's own minimum
    ``at_least`` (e.g. 2 for a spread)."""
    return max(min_train(surrogate), int(parameters), int(at_least))


def fit_result(surrogate: Any, params: Any) -> jax.Array:
    """Result code (``int32[]``) of the fit ``params`` (see the module docstring)."""
    method = getattr(surrogate, "fit_result", None)
    if method is not None:
        return jnp.asarray(method(params), jnp.int32)
    converged = getattr(surrogate, "fit_converged", None)
    if converged is not None:
        return from_ok(converged(params), Result.SURROGATE_FIT_FAILED)
    return jnp.int32(Result.SUCCESSFUL)


def has_density(surrogate: Any) -> bool:
    """Whether ``surrogate`` has a ``log_prob(x, params)``."""
    return callable(getattr(surrogate, "log_prob", None))


def training_losses(surrogate: Any, params: Any) -> dict[str, jax.Array] | None:
    """The surrogate's loss curves ``{name: (n_records,)}``, or None if it keeps
    none."""
    method = getattr(surrogate, "training_losses", None)
    return None if method is None else dict(method(params))
