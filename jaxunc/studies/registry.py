"""Named models and surrogates for the study commands (``--model``, ``--surrogate``).

A ``ModelSpec`` bundles a model with the parameter point the studies run at, the
parameters an ideal fit estimates and the parameter of interest.  Studies look names
up here, so a model or surrogate registered once is available to every command.

The library never needs the registry: every study function also takes model and
surrogate objects directly (a user's own ``model_from_functions`` model included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from jaxunc.errors import InvalidArgument
from jaxunc.models import CamelBack, Exponential, Gaussian, Spectrum
from jaxunc.surrogates import KDE, Bootstrap, IdealFit

__all__ = [
    "MODELS",
    "SURROGATES",
    "ModelSpec",
    "make_surrogate",
    "model_spec",
    "register_model",
    "register_surrogate",
]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model at a parameter point, as the study commands use it.

    Attributes:
      name: registry name (``--model``).
      model: the model object (``sample``/``log_prob``).
      theta: true parameter values, ``{name: float}``.
      free: the parameters an ideal fit (and the MLE estimator) estimates.
      target: the parameter of interest, one of ``free``; studies report its estimate.
      description: one line for help texts.
    """

    name: str
    model: Any
    theta: Mapping[str, float]
    free: tuple[str, ...]
    target: str
    description: str = ""

    def __post_init__(self) -> None:
        if self.target not in self.free or not set(self.free) <= set(self.theta):
            raise ValueError(
                f"model spec {self.name!r}: target {self.target!r} must be one of the "
                f"fitted parameters {self.free!r}, all of them in theta "
                f"{sorted(self.theta)}"
            )


MODELS: dict[str, Callable[[], ModelSpec]] = {}
SURROGATES: dict[str, Callable[..., Any]] = {}


def register_model(name: str, factory: Callable[[], ModelSpec]) -> None:
    """Make ``--model name`` available; ``factory()`` returns the ``ModelSpec``."""
    MODELS[name] = factory


def register_surrogate(name: str, factory: Callable[..., Any]) -> None:
    """Make ``--surrogate name`` available.

    ``factory(spec, **options)`` returns a surrogate for the ``ModelSpec`` ``spec``;
    options a factory does not know raise ``TypeError``.
    """
    SURROGATES[name] = factory


def model_spec(name: str) -> ModelSpec:
    """The registered ``ModelSpec`` called ``name`` (InvalidArgument ``model``)."""
    if name not in MODELS:
        raise InvalidArgument(
            "model", f"must be one of {sorted(MODELS)} (got {name!r})"
        )
    return MODELS[name]()


def make_surrogate(name: str, spec: ModelSpec, **options: Any) -> Any:
    """The registered surrogate ``name`` for ``spec`` (else InvalidArgument)."""
    if name not in SURROGATES:
        raise InvalidArgument(
            "surrogate", f"must be one of {sorted(SURROGATES)} (got {name!r})"
        )
    return SURROGATES[name](spec, **options)


register_model(
    "gaussian",
    lambda: ModelSpec(
        "gaussian",
        Gaussian(),
        {"mu": 1.0, "sigma": 1.0},
        ("mu", "sigma"),
        "mu",
        "normal N(mu, sigma^2), mu = 1, sigma = 1 (Appendix A)",
    ),
)
register_model(
    "exponential",
    lambda: ModelSpec(
        "exponential",
        Exponential(),
        {"rate": 1.0},
        ("rate",),
        "rate",
        "exponential with rate 1",
    ),
)
register_surrogate(
    "ideal",
    lambda spec, **options: IdealFit(
        spec.model, dict(spec.theta), spec.free, **options
    ),
)
register_model(
    "camelback",
    lambda: ModelSpec(
        "camelback",
        CamelBack(),
        {"mu": 0.0},
        ("mu",),
        "mu",
        "camel back of GANplify: unit Gaussian bumps at mu -/+ 4, equal weights, "
        "mu = 0",
    ),
)
register_model(
    "spectrum",
    lambda: ModelSpec(
        "spectrum",
        Spectrum(),
        {"mass": 125.0, "width": 2.5, "signal_fraction": 0.25, "decay_length": 20.0},
        ("mass",),
        "mass",
        "exponential background (decay length 20) on [100, 160] plus a Gaussian "
        "resonance: mass = 125, width 2.5, signal fraction 0.25",
    ),
)


def _gan(spec: ModelSpec, **options: Any) -> Any:
    from jaxunc.surrogates.gan import GAN

    return GAN(**options)


def _flow(spec: ModelSpec, **options: Any) -> Any:
    from jaxunc.surrogates.flow import Flow

    return Flow(**options)


register_surrogate("bootstrap", lambda spec, **options: Bootstrap(**options))
register_surrogate("kde", lambda spec, **options: KDE(**options))
register_surrogate("gan", _gan)
register_surrogate("flow", _flow)
