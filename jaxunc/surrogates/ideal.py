"""The ideal surrogate: the paper's "perfectly trained GAN" (Appendix A, eq. (26)).

It knows the true model family, fits it to the training sample by maximum likelihood
and samples from the fit.  For the Gaussian this is the closed form (sample mean and
standard deviation); for any other model it is the generic autodiff Newton fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxunc.estimators import FitResult, fit_model
from jaxunc.summation import pairwise_sum

__all__ = ["IdealFit"]


@dataclasses.dataclass(frozen=True, eq=False)
class IdealFit:
    """Maximum-likelihood fit of ``model`` to the training data; samples from the fit.

    Args:
      model: the true model family (any ``Model``).
      reference: a full parameter dict; parameters not in ``free`` stay fixed at these
        values (e.g. σ known), the free ones start there unless the model has
        ``initial_params``.
      free: names of the fitted parameters, e.g. ``("mu",)`` or ``("mu", "sigma")``.
      ddof: delta degrees of freedom of the fitted variance, for models with a closed
        form that supports it (the Gaussian): σ̂² = Σ(x - x̄)² / (n - ddof).  0 (default)
        is the maximum-likelihood estimate; 1 the unbiased variance.
      max_iterations: Newton steps for the generic fit.
      use_closed_form: use the model's ``closed_form_mle`` when it has one (False
        forces the generic autodiff Newton fit, e.g. to test it).

    ``fit`` returns a ``FitResult``; its ``theta`` is what ``sample`` draws from, and
    ``fit_result`` its result code.  Everything is differentiable in the training
    data: the closed form directly, the Newton fit by the implicit function theorem
    at its optimum (``maximum_likelihood_fit``: the loop is not differentiated).
    """

    model: Any
    reference: Mapping[str, float]
    free: tuple[str, ...]
    ddof: int = 0
    max_iterations: int = 50
    use_closed_form: bool = True

    def __post_init__(self) -> None:
        unknown = [name for name in self.free if name not in self.reference]
        if not self.free or unknown:
            raise ValueError(
                "free must name parameters of the model, "
                f"from {sorted(self.reference)} "
                f"(got {self.free!r})"
            )
        if self.ddof not in (0, 1):
            raise ValueError(
                f"ddof must be 0 (maximum likelihood) or 1 (got {self.ddof!r})"
            )
        if self.ddof and not getattr(self.model, "closed_form_supports_ddof", False):
            raise ValueError(
                "ddof=1 needs a model whose closed-form fit supports it (the "
                "Gaussian); use ddof=0 (MLE)"
            )

    @property
    def min_train(self) -> int:
        """Fewest training events the fit is defined for."""
        return max(len(self.free), self.ddof + 1)

    def fit(self, key: jax.Array, data: jax.Array) -> FitResult:
        del key  # the fit is deterministic given the data
        return fit_model(
            self.model,
            data,
            self.reference,
            self.free,
            ddof=self.ddof,
            use_closed_form=self.use_closed_form,
            max_iterations=self.max_iterations,
        )

    def sample(self, key: jax.Array, params: FitResult, n: int) -> jax.Array:
        return self.model.sample(key, params.theta, n)

    def log_prob(self, x: jax.Array, params: FitResult) -> jax.Array:
        return self.model.log_prob(x, params.theta)

    def fit_converged(self, params: FitResult) -> jax.Array:
        """bool[]: the fit converged (``fit_result(params) == SUCCESSFUL``)."""
        return params.converged

    def fit_result(self, params: FitResult) -> jax.Array:
        """``int32[]`` result code of the fit (``jaxunc.results``): the
        ``FitResult``'s own ``result`` (why the Newton fit stopped: max steps,
        stalled, non-finite start or value; non-finite value for a closed form)."""
        return jnp.asarray(params.result, jnp.int32)

    def log_likelihood(self, x: jax.Array, params: FitResult) -> jax.Array:
        """Σ log q(x_i | φ) over the events ``x``."""
        return pairwise_sum(self.model.log_prob(x, params.theta))

    @property
    def has_sufficient_statistics(self) -> bool:
        return hasattr(self.model, "log_likelihood_from_statistics")

    def sufficient_statistics(self, x: jax.Array) -> jax.Array:
        return self.model.sufficient_statistics(x)

    def log_likelihood_from_statistics(
        self, statistics: jax.Array, params: FitResult
    ) -> jax.Array:
        return self.model.log_likelihood_from_statistics(statistics, params.theta)
