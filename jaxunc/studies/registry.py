"""Named models, surrogates and studies for the command line (``--model``,
``--surrogate``, ``jaxunc STUDY``).

A ``ModelSpec`` bundles a model with the parameter point the studies run at, the
parameters an ideal fit estimates and the parameter of interest.  Studies look names
up here, so a model or surrogate registered once is available to every command.
Wherever a name is accepted, so is a ``module:attribute`` import path of a user's
object: for a model a ``ModelSpec`` or a factory ``() -> ModelSpec``; for a
surrogate a surrogate object (``fit``/``sample``) or a factory
``(spec, **options) -> surrogate``.

The library never needs the registry: every study function also takes model and
surrogate objects directly (a user's own ``model_from_functions`` model included).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from jaxunc.errors import InvalidArgument
from jaxunc.models import CamelBack, Exponential, Gaussian, Spectrum
from jaxunc.surrogates import KDE, Bootstrap, IdealFit

if TYPE_CHECKING:
    from jaxunc.studies.base import Study

__all__ = [
    "MODELS",
    "STUDIES",
    "SURROGATES",
    "ModelSpec",
    "load_object",
    "make_surrogate",
    "model_spec",
    "parse_model",
    "parse_surrogate",
    "register_model",
    "register_study",
    "register_surrogate",
    "study",
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

    def at(self, theta: Mapping[str, float] | None) -> ModelSpec:
        """The same model at other true parameter values: ``theta`` overrides the
        named entries of ``self.theta`` (None or empty: ``self``).  An unknown name,
        or values the model refuses (``model.check_params``), raise
        ``InvalidArgument("theta", ...)`` naming the model's parameters."""
        if not theta:
            return self
        from jaxunc.models import check_params

        allowed = self.parameters_text()
        if not isinstance(theta, Mapping) or not all(
            isinstance(name, str) for name in theta
        ):
            raise InvalidArgument(
                "theta",
                f"must map parameter names to numbers (got {theta!r}); {allowed}",
            )
        unknown = [name for name in theta if name not in self.theta]
        if unknown:
            raise InvalidArgument(
                "theta",
                f"{', '.join(repr(n) for n in unknown)} is not a parameter of the "
                f"model {self.name!r}; {allowed}",
            )
        values = dict(self.theta)
        for name, value in theta.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number):
                raise InvalidArgument(
                    "theta",
                    f"{name} must be a finite number (got {value!r}); {allowed}",
                )
            values[name] = number
        try:
            check_params(self.model, values)
        except (TypeError, ValueError) as error:
            detail = getattr(error, "detail", str(error))
            raise InvalidArgument(
                "theta",
                f"not valid for the model {self.name!r}: {detail}; {allowed}",
            ) from None
        return dataclasses.replace(self, theta=values)

    def parameters_text(self) -> str:
        """``its parameters: mu (default 0), sigma (default 1)``: the names
        ``--theta`` accepts, with this spec's values."""
        return "its parameters: " + ", ".join(
            f"{name} (default {_number_text(value)})"
            for name, value in self.theta.items()
        )

    def __post_init__(self) -> None:
        if self.target not in self.free or not set(self.free) <= set(self.theta):
            raise ValueError(
                f"model spec {self.name!r}: target {self.target!r} must be one of the "
                f"fitted parameters {self.free!r}, all of them in theta "
                f"{sorted(self.theta)}"
            )


def _number_text(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(value)


MODELS: dict[str, Callable[[], ModelSpec]] = {}
SURROGATES: dict[str, Callable[..., Any]] = {}
STUDIES: dict[str, Study] = {}


def register_model(name: str, factory: Callable[[], ModelSpec]) -> None:
    """Make ``--model name`` available; ``factory()`` returns the ``ModelSpec``."""
    MODELS[name] = factory


def register_surrogate(name: str, factory: Callable[..., Any]) -> None:
    """Make ``--surrogate name`` available.

    ``factory(spec, **options)`` returns a surrogate for the ``ModelSpec`` ``spec``;
    options a factory does not know raise ``TypeError``.
    """
    SURROGATES[name] = factory


def register_study(study: Study) -> Study:
    """Make ``jaxunc study.name`` (and ``reproduce --only study.name``) available;
    returns ``study``.  Registering a name again replaces the study."""
    from jaxunc.studies.base import Study

    if not isinstance(study, Study):
        raise InvalidArgument(
            "study", f"must be a jaxunc.studies.base.Study (got {type(study).__name__})"
        )
    if study.name in ("reproduce", "merge"):
        raise InvalidArgument("study", f"{study.name!r} is a command of its own")
    STUDIES[study.name] = study
    return study


def study(name: str) -> Study:
    """The registered study called ``name`` (InvalidArgument ``study``)."""
    if name not in STUDIES:
        raise InvalidArgument(
            "study", f"must be one of {sorted(STUDIES)} (got {name!r})"
        )
    return STUDIES[name]


def load_object(path: str, argument: str) -> Any:
    """The object at the import path ``module:attribute`` (the attribute may be
    dotted), or InvalidArgument naming ``argument``."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise InvalidArgument(argument, f"expected module:attribute, got {path!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # ImportError, or an error while importing
        raise InvalidArgument(
            argument, f"cannot import module {module_name!r} ({error})"
        ) from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise InvalidArgument(
                argument, f"module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return target


def model_spec(name: str) -> ModelSpec:
    """The ``ModelSpec`` of a registered name or of a ``module:attribute`` path (a
    ``ModelSpec`` or a factory returning one); else InvalidArgument ``model``."""
    if name in MODELS:
        return MODELS[name]()
    if not isinstance(name, str) or ":" not in name:
        raise InvalidArgument(
            "model",
            f"must be one of {sorted(MODELS)} or module:attribute (got {name!r})",
        )
    target = load_object(name, "model")
    spec = target if isinstance(target, ModelSpec) else None
    if spec is None and callable(target):
        spec = target()
    if not isinstance(spec, ModelSpec):
        raise InvalidArgument(
            "model",
            f"{name!r} must be a jaxunc ModelSpec or a function returning one "
            f"(got {type(spec if callable(target) else target).__name__})",
        )
    return spec


def _is_surrogate(target: Any) -> bool:
    return (
        not isinstance(target, type)
        and callable(getattr(target, "fit", None))
        and callable(getattr(target, "sample", None))
    )


def make_surrogate(name: str, spec: ModelSpec, **options: Any) -> Any:
    """The surrogate of a registered name for ``spec``, or of a ``module:attribute``
    path (a surrogate object, or a factory called as ``factory(spec, **options)``);
    else InvalidArgument ``surrogate``."""
    if name in SURROGATES:
        return SURROGATES[name](spec, **options)
    if not isinstance(name, str) or ":" not in name:
        raise InvalidArgument(
            "surrogate",
            f"must be one of {sorted(SURROGATES)} or module:attribute (got {name!r})",
        )
    target = load_object(name, "surrogate")
    if _is_surrogate(target):
        if options:
            raise TypeError(f"{name!r} is a surrogate object: it takes no options")
        return target
    if not callable(target):
        raise InvalidArgument(
            "surrogate",
            f"{name!r} must be a surrogate (fit, sample) or a factory "
            f"(got {type(target).__name__})",
        )
    surrogate = target(spec, **options)
    if not _is_surrogate(surrogate):
        raise InvalidArgument(
            "surrogate",
            f"{name!r} returned {type(surrogate).__name__}, not a surrogate with "
            "fit(key, data) and sample(key, params, n)",
        )
    return surrogate


def _invalid_choice(text: str, names: Mapping[str, Any]) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from {', '.join(sorted(names))}, or give "
        "a module:attribute import path)"
    )


def parse_model(text: str) -> str:
    """``--model``: a registered name, or an import path that resolves to a
    ``ModelSpec`` (checked now, so a bad path fails while parsing)."""
    if text in MODELS:
        return text
    if ":" not in text:
        raise _invalid_choice(text, MODELS)
    try:
        model_spec(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(error.detail) from None
    return text


def parse_surrogate(text: str) -> str:
    """``--surrogate``: a registered name, or an import path of a surrogate object
    or factory (imported now, so a bad path fails while parsing)."""
    if text in SURROGATES:
        return text
    if ":" not in text:
        raise _invalid_choice(text, SURROGATES)
    try:
        target = load_object(text, "surrogate")
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(error.detail) from None
    if not (_is_surrogate(target) or callable(target)):
        raise argparse.ArgumentTypeError(
            f"{text!r} must be a surrogate (fit, sample) or a factory "
            f"(got {type(target).__name__})"
        )
    return text


register_model(
    "gaussian",
    lambda: ModelSpec(
        "gaussian",
        Gaussian(),
        {"mu": 0.0, "sigma": 1.0},
        ("mu", "sigma"),
        "mu",
        "normal N(mu, sigma^2); default mu = 0, sigma = 1 (paper 000, Appendix A)",
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
