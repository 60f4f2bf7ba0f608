"""Information study (paper 000, §3.2): does a generated dataset carry more information
about θ than the training data it came from?

For a model, a surrogate fitted to ``n_train`` true events (default: the ideal fit,
the paper's "perfect GAN"), and each ``n_gen``:

* I_train, the Fisher information of the training sample (two Monte Carlo estimators
  and the closed form);
* lower bounds on I_gen for *any* surrogate, GAN included (``jaxunc.bounds``):
  Jᵀ C⁻¹ J for every summary f(D_gen) (sample mean, moments, the true family's MLE,
  true-quantile bin fractions, a learned summary) with J by the score route and by
  forward-mode differentiation of the whole chain, training loop included; the best
  of them over I_train (``information_fraction``) and a verdict per n_gen from
  ``bounds.bound_verdict``;
* exact references where they exist: the mean-only ideal Gaussian fit (closed form),
  the ideal exponential rate fit (quadrature), the bootstrap of a Gaussian mean
  (the expected number of distinct training events over σ²);
* for surrogates with a density, I_gen itself by importance sampling over training
  samples with the Loewner-order check I_gen ≤ I_train, the KL divergence between θ
  and a shifted θ₁ and the mutual information under a Gaussian prior (by default for
  the ideal fit of the Gaussian and the exponential only: for other surrogates the
  importance sampling costs thousands of surrogate fits per n_gen and collapses for
  n_gen ≳ n_train);
* the estimator view 1/Var(θ̂) from pseudo-experiments (for a trained surrogate by
  default from the bounds' own simulations).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxunc import bounds as summary_bounds
from jaxunc.engine import Chain, run_chain
from jaxunc.engine.plan import MAX_PSEUDO_EXPERIMENTS
from jaxunc.errors import InvalidArgument
from jaxunc.estimators import MaximumLikelihood, SampleMean
from jaxunc.information import (
    LOW_ESS,
    LowEffectiveSampleSize,
    exact_fisher_information,
    fisher_information,
    gaussian_kl_divergence,
    gaussian_mean_mutual_information,
    generated_fisher_information,
    generated_fisher_margin,
    generated_kl_divergence,
    kl_divergence,
    linear_gaussian_generated_fisher,
    loewner_check,
    mutual_information,
)
from jaxunc.models import Exponential, Gaussian, check_params
from jaxunc.results import result_counts
from jaxunc.studies.base import (
    K_SIGMA,
    OMIT_NONE,
    Study,
    StudyResult,
    align,
    check_options,
    choice,
    figures_from,
    finite_float,
    model_name,
    option,
    positive_int,
    precision_option,
    runtime,
    seed_option,
    sizes,
    surrogate_name,
    theta_option,
)
from jaxunc.studies.options import check_at_precision
from jaxunc.studies.registry import ModelSpec, make_surrogate, model_spec
from jaxunc.studies.toy import FIT_CHOICES
from jaxunc.surrogates import IdealFit
from jaxunc.surrogates.base import has_density, required_train

__all__ = ["STUDY", "SUMMARIES", "FisherConfig", "FisherResult", "run_fisher", "table"]

MODELS = ("gaussian", "exponential")
"""The models with the study's own flags (--mu, --sigma, --rate, --fit, --params);
every other registered model runs at its registry parameters."""
PARAMS = {
    "gaussian": {"mu": ("mu",), "mu-sigma": ("mu", "sigma")},
    "exponential": {"rate": ("rate",)},
}
SUMMARIES = ("mean", "moments", "mle", "quantiles", "learned")
"""Summaries f(D_gen) for the lower bounds (``--summaries``)."""
IMPORTANCE_SAMPLING = ("auto", "on", "off")
NO_DENSITY = "undetermined: the surrogate has no density"
MARGIN_NOTE = (
    "I_train - I_gen = E[Cov(s_train | D_gen)] (law of total variance; for a "
    "surrogate built from theta, minus the information D_gen carries beyond D_train, "
    "'leak'), by self-normalised importance sampling over two sets of training "
    "replicas (information.generated_fisher_margin); standard error: delete-one-"
    "block jackknife over independent blocks of outer replicas and proposals; "
    "I_gen = I_train - margin; null where the effective sample size is below "
    f"{LOW_ESS:g} (verdict undetermined)"
)


def _parse_summaries(text: str) -> tuple[str, ...]:
    import argparse

    parts = tuple(part.strip() for part in text.split(","))
    wrong = [part for part in parts if part not in SUMMARIES]
    if not parts or wrong:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list from {','.join(SUMMARIES)}, got {text!r}"
        )
    return parts


def _check_summaries(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    parts = tuple(value.split(",")) if isinstance(value, str) else tuple(value)
    wrong = [part for part in parts if part not in SUMMARIES]
    if not parts or wrong or len(set(parts)) != len(parts):
        raise InvalidArgument(
            name,
            f"must be distinct names from {list(SUMMARIES)} (got {list(parts)})",
        )
    return parts


def _inside_support(model: Any) -> Any:
    """The model whose events outside its ``support`` do not enter the likelihood
    (as in the ensemble study's MLE), or the model itself without a support."""
    if not hasattr(model, "support"):
        return model
    from jaxunc.studies.ensemble import _InsideSupport

    return _InsideSupport(model)


@dataclasses.dataclass(frozen=True)
class FisherConfig:
    """Options of the information study; validated on construction.

    ``model``: ``gaussian`` or ``exponential`` (with the flags ``mu``, ``sigma``,
    ``rate``, ``fit``, ``params``), any other registered model (``camelback``,
    ``spectrum``: the registry's θ, the information about its target parameter),
    a ``module:attribute`` path or a ``ModelSpec``.  ``surrogate``: ``ideal``
    (default; ``fit`` says what it fits to a Gaussian), any registered surrogate,
    a ``module:attribute`` path, or (library) a surrogate object or a
    ``bounds.ThetaDependent``; ``surrogate_options`` go to a registered factory.
    ``params`` names the parameters the information is about (Gaussian: ``mu`` or
    ``mu-sigma``; exponential: ``rate``; other models: their target).  The KL
    divergence compares θ with θ₁, the first parameter shifted by ``kl_shift``
    training-sample standard errors; the mutual information uses a Gaussian prior
    on the first parameter with ``prior_width`` standard errors.  ``summaries``,
    ``simulations``, ``quantile_bins``: the lower bounds (``jaxunc.bounds``).
    ``pseudo_experiments``: the estimator view's engine run (default 4000 for the
    ideal fit of the Gaussian and the exponential; otherwise None: the estimator
    view comes from the bounds' simulations).  ``importance_sampling``: I_gen, KL
    and MI of D_gen by importance sampling (``auto``: for the ideal fit of the
    Gaussian and the exponential only).
    """

    model: Any = model_name(  # noqa: RUF009 (an Option field)
        "gaussian",
        help=(
            "the true model, from the registry or module:attribute (default: "
            "{default}; models other than gaussian and exponential run at their "
            "registry parameters, the information about their target parameter)"
        ),
    )
    surrogate: Any = surrogate_name(  # noqa: RUF009 (an Option field)
        "ideal",
        help=(
            "the surrogate, from the registry or module:attribute (default: "
            "{default}, the paper's perfectly trained GAN)"
        ),
    )
    n_train: int = positive_int(
        100, metavar="N", help="training events the surrogate is fitted to"
    )
    n_gen: tuple[int, ...] = sizes(
        (10, 100, 1000, 10000, 100000), help="generated-sample sizes"
    )
    mu: float = finite_float(0.0, help="true mean μ of the Gaussian")
    sigma: float = finite_float(
        1.0, positive=True, help="true standard deviation σ > 0 of the Gaussian"
    )
    rate: float = finite_float(
        1.0, positive=True, help="true rate λ > 0 of the exponential"
    )
    theta: Mapping[str, float] | None = theta_option(
        help=(
            "true parameter values NAME=VALUE,... of any model (e.g. mu=1,sigma=2, "
            "or a camel back's mu); the Gaussian's and the exponential's may be "
            "given by --mu, --sigma, --rate instead, but not both ways"
        )
    )
    fit: str = choice(
        "mean-std",
        sorted(FIT_CHOICES),
        help=(
            "what the ideal surrogate fits to a Gaussian: mean and σ, or the mean "
            "with σ known (default: {default}; the exponential's fit is its rate)"
        ),
    )
    params: str | None = choice(
        None,
        sorted({name for table in PARAMS.values() for name in table}),
        check=False,
        help=(
            "the parameters the information is about (default: mu for the "
            "Gaussian, rate for the exponential, the target of other models)"
        ),
    )
    seed: int = seed_option()
    outer: int = positive_int(
        256,
        minimum=2,
        why="to estimate an error",
        metavar="R",
        help="replicas of the chain per n_gen for I_gen, KL and mutual information "
        "(>= 2; default: {default})",
    )
    pseudo_experiments: int | None = positive_int(
        None,
        minimum=2,
        maximum=MAX_PSEUDO_EXPERIMENTS - 1,
        why="to measure a spread",
        optional=True,
        metavar="P",
        help=(
            "pseudo-experiments for the estimator view 1/Var(θ̂) (default: 4000 for "
            "the ideal fit of the Gaussian and the exponential; otherwise the "
            "estimator view comes from the bounds' simulations)"
        ),
    )
    summaries: tuple[str, ...] | None = option(
        None,
        check=_check_summaries,
        parse=_parse_summaries,
        metavar="S1,S2,...",
        help=(
            f"summaries f(D_gen) for the lower bounds, from {','.join(SUMMARIES)} "
            "(default: mean,mle plus quantiles where the model has a cdf)"
        ),
    )
    simulations: int = positive_int(
        512,
        minimum=32,
        why="for the jackknife errors of the bounds",
        metavar="M",
        help=(
            "chain draws (surrogate trainings, with their forward-mode tangents) "
            "for the lower bounds, shared by every n_gen (>= 32; default: {default})"
        ),
    )
    quantile_bins: int = positive_int(
        10,
        minimum=2,
        metavar="K",
        help="true-quantile bins of the quantiles summary (default: {default})",
    )
    importance_sampling: str = choice(
        "auto",
        IMPORTANCE_SAMPLING,
        help=(
            "I_gen, KL and MI of D_gen by importance sampling over training "
            "samples: auto (default) for the ideal fit of the Gaussian and the "
            "exponential only; on for any surrogate with a density (slow for "
            "trained surrogates: 2·1024 + R fits per n_gen; collapses for "
            "n_gen >~ n_train); off"
        ),
    )
    proposals: int | None = positive_int(
        None,
        minimum=16,
        why="for the margin's blocks",
        optional=True,
        metavar="M",
        help=(
            "training replicas per proposal set of the importance sampling (I_gen, "
            "margin, KL, MI; >= 16; default: grown with n_gen within cost caps, "
            "information._default_proposals)"
        ),
    )
    kl_shift: float = finite_float(1.0, positive=True, cli=False)
    prior_width: float = finite_float(3.0, positive=True, cli=False)
    precision: str = precision_option()
    surrogate_options: Mapping[str, Any] = option(default_factory=dict, cli=False)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        check_options(self)
        set_("_registry_spec", None)  # the flags' spec until a registry's is set
        if self.theta and isinstance(self.model, str) and self.model in MODELS:
            self._theta_into_flags(set_)
        check_at_precision(  # every value a flag gives, used or not (as > 0 is)
            {"mu": self.mu, "sigma": self.sigma, "rate": self.rate},
            self.precision,
            max(self.n_train, *self.n_gen),
            positive=("sigma", "rate"),
        )
        if isinstance(self.model, ModelSpec):
            spec = self.model
        elif isinstance(self.model, str):
            spec = None if self.model in MODELS else model_spec(self.model)
        else:
            raise InvalidArgument(
                "model",
                "must be a registered model name, module:attribute or a ModelSpec "
                f"(got {type(self.model).__name__})",
            )
        if spec is not None:
            spec = spec.at(self.theta)  # names and values checked by the model
        set_("_registry_spec", spec)
        table = self._params_table()
        if self.params is None:
            set_("params", next(iter(table)))
        if self.params not in table:
            raise InvalidArgument(
                "params",
                f"must be one of {list(table)} for the {self.model_label} model "
                f"(got {self.params!r})",
            )
        ideal = self.is_ideal
        if (
            ideal
            and self.model == "gaussian"
            and self.fit == "mean"
            and self.params == "mu-sigma"
        ):
            raise InvalidArgument(
                "params",
                "mu-sigma needs --fit mean-std: with σ known the surrogate is given "
                "the true σ, so D_gen does not depend on σ only through D_train",
            )
        minimum = 2 if (self.model == "gaussian" and self.fit == "mean-std") else 1
        if ideal and self.n_train < minimum:
            raise InvalidArgument(
                "n_train", f"must be >= {minimum} for this fit (got {self.n_train})"
            )
        set_("_surrogate", self._build_surrogate())
        built = self._surrogate
        if isinstance(built, summary_bounds.ThetaDependent):
            built = built.build(self.theta_values())
        minimum = required_train(built)
        if self.n_train < minimum:
            raise InvalidArgument(
                "n_train",
                f"must be >= {minimum} for this surrogate (got {self.n_train})",
            )
        if self.pseudo_experiments is None and self.builtin_ideal:
            set_("pseudo_experiments", 4000)
        if self.summaries is None:
            default = ("mean", "mle")
            if callable(getattr(self.spec.model, "cdf", None)):
                default += ("quantiles",)
            set_("summaries", default)
        if "quantiles" in self.summaries and not callable(
            getattr(self.spec.model, "cdf", None)
        ):
            raise InvalidArgument(
                "summaries",
                "quantiles needs a model with cdf(x, theta) (the true-quantile bins)",
            )
        if not self.builtin_model:
            try:
                check_params(self.spec.model, self.theta_values())
            except ValueError as error:
                raise InvalidArgument("model", f"bad parameters: {error}") from None
        self._check_consistent()

    def _check_consistent(self) -> None:
        """Refuse flags that do not apply to the model."""
        if self.model != "gaussian" and self.fit != "mean-std":
            raise InvalidArgument(
                "fit",
                f"applies to the Gaussian's ideal fit only; the {self.model_label} "
                f"model's fit is fixed (got fit={self.fit!r} with model="
                f"{self.model!r})",
            )

    # ------------------------------------------------------------- the model

    @property
    def builtin_model(self) -> bool:
        """The Gaussian or the exponential, with the study's own flags."""
        return isinstance(self.model, str) and self.model in MODELS

    @property
    def model_label(self) -> str:
        return self.model if isinstance(self.model, str) else self.model.name

    @property
    def spec(self) -> ModelSpec:
        """The model with its parameters, fitted parameters and target (for the
        Gaussian and the exponential: built from the study's flags)."""
        if self._registry_spec is not None:
            return self._registry_spec
        if self.model == "gaussian":
            return ModelSpec(
                "gaussian",
                Gaussian(),
                {"mu": self.mu, "sigma": self.sigma},
                FIT_CHOICES[self.fit],
                "mu",
                f"normal N(mu, sigma^2), mu = {self.mu:g}, sigma = {self.sigma:g}",
            )
        return ModelSpec(
            "exponential",
            Exponential(),
            {"rate": self.rate},
            ("rate",),
            "rate",
            f"exponential with rate {self.rate:g}",
        )

    def _params_table(self) -> dict[str, tuple[str, ...]]:
        if self.builtin_model:
            return PARAMS[self.model]
        target = self.spec.target
        return {target: (target,)}

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.precision)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self._params_table()[self.params]

    def model_object(self):
        if self.builtin_model:
            return Gaussian() if self.model == "gaussian" else Exponential()
        return self.spec.model

    def _theta_into_flags(self, set_: Any) -> None:
        """``theta`` of the Gaussian or the exponential into their own fields (the
        one place their values live), checked by the model like any model's θ
        (``ModelSpec.at``: names, finiteness, domain); a parameter given both
        ways is refused."""
        values = self.spec.at(self.theta).theta
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in self.theta:
            if getattr(self, name) != defaults[name]:
                raise InvalidArgument(
                    "theta",
                    f"{name} is given twice (--{name} and --theta); give it once",
                )
            set_(name, float(values[name]))

    def theta_values(self, **changes: float) -> dict[str, np.ndarray]:
        if self.model == "gaussian":
            values = {"mu": self.mu, "sigma": self.sigma}
        elif self.model == "exponential":
            values = {"rate": self.rate}
        else:
            values = dict(self.spec.theta)
        values.update(changes)
        return {k: np.asarray(v, self.dtype) for k, v in values.items()}

    def free(self) -> tuple[str, ...]:
        """The parameters the ideal fit estimates."""
        if self.model == "gaussian":
            return FIT_CHOICES[self.fit]
        if self.model == "exponential":
            return ("rate",)
        return tuple(self.spec.free)

    # --------------------------------------------------------- the surrogate

    @property
    def is_ideal(self) -> bool:
        return isinstance(self.surrogate, str) and self.surrogate == "ideal"

    @property
    def builtin_ideal(self) -> bool:
        """The ideal fit of the Gaussian or the exponential: the study as it was
        before the bounds (importance sampling and the engine's estimator view by
        default)."""
        return self.is_ideal and self.builtin_model

    @property
    def surrogate_label(self) -> str:
        if isinstance(self.surrogate, str):
            return self.surrogate
        return type(self.surrogate).__name__

    def _build_surrogate(self) -> Any:
        options = dict(self.surrogate_options)
        if self.is_ideal and self.builtin_model:
            return IdealFit(
                self.model_object(), self.theta_values(), self.free(), **options
            )
        if isinstance(self.surrogate, str):
            try:
                return make_surrogate(self.surrogate, self.spec, **options)
            except (TypeError, ValueError) as error:
                if isinstance(error, InvalidArgument):
                    raise
                raise InvalidArgument(
                    "surrogate_options",
                    f"not valid for the {self.surrogate!r} surrogate: {error}",
                ) from None
        if options:
            raise InvalidArgument(
                "surrogate_options",
                "only for a registered surrogate name; configure your surrogate "
                "object directly",
            )
        surrogate = self.surrogate
        if isinstance(surrogate, summary_bounds.ThetaDependent):
            return surrogate
        if not (
            callable(getattr(surrogate, "fit", None))
            and callable(getattr(surrogate, "sample", None))
        ):
            raise InvalidArgument(
                "surrogate",
                "must be a registered name, module:attribute, an object with "
                "fit(key, data) and sample(key, params, n), or a "
                f"bounds.ThetaDependent (got {type(surrogate).__name__})",
            )
        return surrogate

    def surrogate_object(self) -> Any:
        """The surrogate (for a ``ThetaDependent``: itself; ``bounds`` builds it
        from θ inside the chain)."""
        return self._surrogate

    # ------------------------------------------------- KL shift and MI prior

    def first_parameter_standard_error(self) -> float | None:
        """One training-sample standard error of the first parameter: σ/√n for μ,
        λ/√n for the rate; for other models 1/√(n I₁) from the model's
        ``exact_fisher`` (None without it: no KL and MI then)."""
        if self.builtin_model:
            scale = self.sigma if self.model == "gaussian" else self.rate
            return scale / math.sqrt(self.n_train)
        exact = getattr(self.spec.model, "exact_fisher", None)
        if exact is None:
            return None
        first = self.parameter_names[0]
        per_event = float(np.asarray(exact(self.theta_values(), (first,)))[0, 0])
        return 1.0 / math.sqrt(self.n_train * per_event)

    def shifted_theta(self) -> dict[str, np.ndarray] | None:
        error = self.first_parameter_standard_error()
        if error is None:
            return None
        first = self.parameter_names[0]
        if self.builtin_model:
            value = self.mu if first == "mu" else self.rate
        else:
            value = float(self.spec.theta[first])
        return self.theta_values(**{first: value + self.kl_shift * error})

    def prior_std(self) -> float | None:
        error = self.first_parameter_standard_error()
        return None if error is None else self.prior_width * error

    def linear_gaussian(self) -> bool:
        """Whether D_gen is exactly multivariate normal (mean-only Gaussian fit)."""
        return (
            self.builtin_ideal
            and self.model == "gaussian"
            and self.fit == "mean"
            and self.params == "mu"
        )

    def mle_parameters(self) -> tuple[str, ...]:
        """The parameters of the ``mle`` summary: the true family's MLE of every
        parameter the model's fit estimates (both μ and σ for the Gaussian)."""
        if self.model == "gaussian":
            return ("mu", "sigma")
        return self.free()

    def theta_dependent(self) -> bool:
        """Whether the surrogate is a ``bounds.ThetaDependent`` (built from θ)."""
        return isinstance(self._surrogate, summary_bounds.ThetaDependent)

    def margin_reason(self) -> str | None:
        """None when the margin I_train − I_gen is estimated by importance sampling
        (``information.generated_fisher_margin``); else why not."""
        built = self._surrogate
        if self.theta_dependent():
            built = built.build(self.theta_values())
        if not has_density(built):
            return NO_DENSITY
        if self.importance_sampling == "off":
            return "not computed (importance_sampling off)"
        if self.importance_sampling == "auto" and not self.builtin_ideal:
            return (
                "not computed by default for this surrogate: importance sampling over "
                "training samples costs 2*1024 + outer surrogate fits and "
                "outer*2048*n_gen density evaluations per n_gen and quantity, and "
                "its effective sample size collapses for n_gen >~ n_train (biased "
                "low; issue 12); importance_sampling on computes it"
            )
        return None

    def importance_sampling_reason(self) -> str | None:
        """None when I_gen, KL and MI of D_gen are computed by importance sampling;
        else why not."""
        reason = self.margin_reason()
        if reason is None and self.theta_dependent():
            return (
                "not computed: the surrogate is built from θ (D_gen depends on θ "
                "other than through D_train), which the importance sampling of "
                "I_gen, KL and MI does not model; the margin does"
            )
        return reason

    def to_json(self) -> dict[str, Any]:
        config = {
            field.name: getattr(self, field.name) for field in dataclasses.fields(self)
        }
        config["model"] = self.model_label
        config["surrogate"] = self.surrogate_label
        config["surrogate_options"] = dict(self.surrogate_options)
        config["surrogate_repr"] = repr(self._surrogate)
        config["n_gen"] = list(self.n_gen)
        config["summaries"] = list(self.summaries)
        if not self.builtin_model:
            spec = self.spec
            config["model_description"] = spec.description
            config["target"] = spec.target
        config["parameters"] = list(self.parameter_names)
        config["fitted_parameters"] = list(self.free())
        config["theta"] = {k: float(v) for k, v in self.theta_values().items()}
        shifted = self.shifted_theta()
        config["theta1_for_kl"] = (
            None if shifted is None else {k: float(v) for k, v in shifted.items()}
        )
        first = self.parameter_names[0]
        prior = self.prior_std()
        error = self.first_parameter_standard_error()
        config["standard_error"] = error
        config["standard_error_definition"] = (
            f"the standard error of {first} from n_train = {self.n_train} events, "
            f"1/sqrt(n_train I_1) with I_1 the exact per-event Fisher information "
            f"(sigma/sqrt(n_train) for the Gaussian's mu, rate/sqrt(n_train) for the "
            f"exponential's rate), in the units of {first}; null without a closed "
            "form (then no KL and no MI)"
        )
        config["kl_shift_units"] = "standard errors of " + first
        config["kl_shift_used"] = None if error is None else self.kl_shift * error
        config["prior_width_units"] = "standard errors of " + first
        config["prior_width_used"] = prior
        config["prior"] = (
            None
            if prior is None
            else f"{first} ~ Normal({float(self.theta_values()[first])}, {prior}^2), "
            "other parameters fixed"
        )
        config["information_convention"] = (
            "Fisher information of the whole dataset (n events), natural "
            "parametrisation; I_train by the score outer product E[s s^T] "
            "(I_train_hessian: -E[hessian]); I_gen by cross-fitted self-normalised "
            "importance sampling over training replicas"
        )
        config["bounds_convention"] = (
            "I_gen_lower: J^T C^-1 J for summaries f(D_gen), J = dE[f]/dtheta by the "
            "score route E[(f - E f) s_train^T] and the pathwise route (forward-mode "
            "derivative of the whole chain at fixed random numbers), C = Cov f; "
            "unbiased in J (pairs of distinct simulations), C^-1 debiased by "
            "(M - k - 2)/(M - 1), jackknife standard errors over 16 groups; "
            f"{self.simulations} chain draws shared by every n_gen; best: the "
            "largest bound minus 2 standard errors on the first parameter, chosen "
            "on the first half of the draws and reported from the other half "
            "(no selection bias) when there are several summaries"
        )
        config["units"] = "KL divergence and mutual information in nats"
        return config


@dataclasses.dataclass
class FisherResult(StudyResult):
    """Everything the information study measured; ``to_json()`` gives
    ``fisher.json``.

    Matrices are nested lists over ``parameters`` (Fisher information of the whole
    dataset, natural parametrisation); lists are aligned with ``n_gen``.
    ``I_train`` (E[s sᵀ]), ``I_train_hessian`` (−E[∇² log p]) and ``I_train_exact``
    (None without a closed form); ``I_gen`` by importance sampling with
    ``effective_sample_size`` (None where not computed: ``I_gen_note`` says why)
    and ``I_gen_exact`` (closed form or quadrature, ``I_gen_exact_method``);
    ``ratio_to_train`` (diagonal); the Loewner check of the importance-sampling
    I_gen (``min_eigenvalue_margin``, ``margin_stderr``, ``margin_sigma``,
    ``holds``); all of these null at an n_gen where the importance sampling's
    effective sample size is below ``LOW_ESS`` (``I_gen_reason`` says so).
    Lower bounds for any surrogate: ``bounds`` (per n_gen, every
    summary × route: ``value``, ``stderr``, ``jacobian``, ``jacobian_stderr``,
    ``simulations``, or a string saying why not; ``route_agreement``: the two
    routes' J in standard errors), the best one ``I_gen_lower``
    with ``I_gen_lower_stderr`` and ``I_gen_lower_summary`` ("summary/route"; chosen
    on half of the draws and computed on the other half, ``bounds.select_best``),
    ``information_fraction`` (best bound / I_train on the first parameter, with its
    standard error); ``margin`` (the estimate of I_train − I_gen per n_gen,
    ``generated_fisher_margin``: ``value``, ``stderr``, ``I_gen`` = I_train −
    value, ``effective_sample_size``, ``verdict``, ``verdict_reason``, ``note``;
    null values where not computed or not a measurement); ``verdict`` per n_gen
    (``holds``, ``violated``,
    ``undetermined``) with ``verdict_reason``; ``estimator_view`` (1/Var(θ̂), with the
    ``failures`` of its pseudo-experiments per n_gen, by result code in
    ``failures_by_result``);
    ``kl`` and ``mi`` (nats; ``verdict`` lists too); ``reference_curves`` (the
    figure's curves on a grid of n_gen); ``runtime``.
    """

    config: FisherConfig
    parameters: list[str]
    I_train: list[list[float]]
    I_train_stderr: list[list[float]]
    I_train_method: str
    I_train_hessian: list[list[float]]
    I_train_hessian_stderr: list[list[float]]
    I_train_exact: list[list[float]] | None
    n_gen: list[int]
    I_gen: list[list[list[float]] | None]
    I_gen_stderr: list[list[list[float]] | None]
    I_gen_exact: list[list[list[float]] | None]
    I_gen_method: str | None
    effective_sample_size: list[float | None]
    ratio_to_train: list[list[float] | None]
    ratio_to_train_stderr: list[list[float] | None]
    min_eigenvalue_margin: list[float | None]
    margin_stderr: list[float | None]
    margin_sigma: list[float | None]
    holds: list[bool | None]
    holds_convention: str
    I_gen_note: str | None
    I_gen_reason: list[str | None]
    I_gen_exact_method: str | None
    I_gen_lower: list[list[list[float]] | None]
    I_gen_lower_stderr: list[list[list[float]] | None]
    I_gen_lower_summary: list[str | None]
    bounds: list[dict[str, Any]]
    bounds_failures: list[dict[str, Any]]
    route_agreement: list[dict[str, Any]]
    information_fraction: list[float | None]
    information_fraction_stderr: list[float | None]
    margin: dict[str, Any]
    verdict: list[str]
    verdict_reason: list[str]
    estimator_view: dict[str, Any]
    kl: dict[str, Any]
    mi: dict[str, Any]
    reference_curves: dict[str, Any]
    runtime: dict[str, Any]
    failures_by_result: dict[str, Any] | None = dataclasses.field(
        default=None, metadata=OMIT_NONE
    )


def _listify(matrix: np.ndarray) -> list:
    return np.asarray(matrix, np.float64).tolist()


def _prior_sampler(config: FisherConfig):
    first = config.parameter_names[0]
    center = float(config.theta_values()[first])
    width = config.prior_std()
    base = config.theta_values()

    def sample(key: jax.Array) -> dict[str, jax.Array]:
        draw = center + width * jax.random.normal(key, (), config.dtype)
        if first == "rate":
            draw = jnp.abs(
                draw
            )  # the rate prior is folded at zero (width ≪ rate by default)
        return {**{k: jnp.asarray(v) for k, v in base.items()}, first: draw}

    return sample


def _summary_objects(config: FisherConfig) -> list[summary_bounds.Summary]:
    """The summaries of ``config.summaries`` (``learned`` is separate)."""
    model, theta = config.model_object(), config.theta_values()
    made = {
        "mean": summary_bounds.mean_summary,
        "moments": summary_bounds.moments_summary,
        "mle": lambda: dataclasses.replace(
            summary_bounds.mle_summary(
                _inside_support(model), theta, config.mle_parameters()
            ),
            name="mle",
        ),
        "quantiles": lambda: dataclasses.replace(
            summary_bounds.quantile_summary(model, theta, config.quantile_bins),
            name="quantiles",
        ),
    }
    out = []
    for name in config.summaries:
        if name == "learned":
            continue
        summary = made[name]()
        out.append(dataclasses.replace(summary, name=name))
    return out


def _mean_std_fit(config: FisherConfig) -> bool:
    """Whether D_gen comes from the built-in ideal mean-and-σ fit of the Gaussian
    and the information is about μ alone (the quadrature reference applies)."""
    return (
        config.builtin_ideal
        and config.model == "gaussian"
        and config.fit == "mean-std"
        and config.params == "mu"
    )


def _exact_generated(config: FisherConfig, n_gen: int) -> float | None:
    """I_gen about the (single) parameter where a closed form or a quadrature
    applies, else None.  For the mean-and-σ fit: the μμ element of the generated
    data's Fisher matrix (σ known), which is what the study reports for
    ``params`` mu."""
    n = config.n_train
    if config.linear_gaussian():
        return linear_gaussian_generated_fisher(config.sigma, n, n_gen)
    if _mean_std_fit(config):
        ddof = config.surrogate_object().ddof
        return summary_bounds.gaussian_fit_generated_fisher(
            config.sigma, n, n_gen, ddof=ddof
        )
    if config.builtin_ideal and config.model == "exponential":
        return summary_bounds.exponential_fit_generated_fisher(config.rate, n, n_gen)
    if (
        config.surrogate == "bootstrap"
        and config.model == "gaussian"
        and config.params == "mu"
    ):
        return float(summary_bounds.bootstrap_generated_fisher(config.sigma, n, n_gen))
    return None


def _exact_method(config: FisherConfig) -> str | None:
    if config.linear_gaussian():
        return "closed form n N / (sigma^2 (n + N)) (mean-only Gaussian fit)"
    if _mean_std_fit(config):
        return (
            "quadrature (bounds.gaussian_fit_generated_fisher, ddof "
            f"{config.surrogate_object().ddof}: the mu-mu element; the generated "
            "mean given the generated sum of squares is a scale mixture of normals "
            "centred at mu)"
        )
    if config.builtin_ideal and config.model == "exponential":
        return (
            "quadrature (bounds.exponential_fit_generated_fisher: the scale Fisher "
            "information of Gamma(n) x Gamma(N) by FFT convolution)"
        )
    if _exact_generated(config, 1) is not None:
        return (
            "closed form n (1 - (1 - 1/n)^N) / sigma^2 (bootstrap of a Gaussian "
            "mean: the expected number of distinct training events over sigma^2)"
        )
    return None


def _bound_json(estimate: Any) -> Any:
    if isinstance(estimate, str):
        return estimate
    return {
        "value": _listify(estimate.matrix),
        "stderr": _listify(estimate.stderr),
        "jacobian": _listify(estimate.jacobian),
        "jacobian_stderr": _listify(estimate.jacobian_stderr),
        "simulations": int(estimate.simulations),
    }


def _route_agreement(result: summary_bounds.SummaryBounds) -> dict[str, Any]:
    """Per summary with both routes: the largest |J_pathwise − J_score| over the
    entries of J in combined standard errors, and whether it is below K_SIGMA."""
    out = {}
    for summary, routes in result.bounds.items():
        path, score = routes.get("pathwise"), routes.get("score")
        if path is None or score is None or isinstance(path, str):
            continue
        if isinstance(score, str):
            continue
        difference = np.abs(path.jacobian - score.jacobian)
        combined = np.hypot(path.jacobian_stderr, score.jacobian_stderr)
        pull = np.where(
            combined > 0,
            difference / np.where(combined > 0, combined, 1.0),
            np.where(difference > 0, np.inf, 0.0),
        )
        worst = float(pull.max())
        out[summary] = {"max_pull": worst, "agree": worst < K_SIGMA}
    return out


def _ratio(
    value: float, error: float, reference: float, reference_error: float
) -> tuple[float, float]:
    """value/reference with its standard error (independent errors)."""
    ratio = value / reference
    return ratio, math.hypot(error / reference, ratio * reference_error / reference)


def _estimator_view_from_bounds(
    config: FisherConfig, results: Sequence[summary_bounds.SummaryBounds]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """1/Var(θ̂) of the first parameter over the bounds' chain draws (θ̂ the true
    family's MLE, ``mle`` summary, or the sample mean, ``mean``), and the draws
    left out per n_gen by result code."""
    first = config.parameter_names[0]
    size = len(results)
    if "mle" in config.summaries and first in config.mle_parameters():
        name, column = "mle", config.mle_parameters().index(first)
        label = f"maximum-likelihood estimate of {first} (true family)"
    elif "mean" in config.summaries:
        name, column, label = "mean", 0, "sample mean"
    else:
        view = {
            "estimator": None,
            "source": "not available: needs the mle or the mean summary",
            "information_gen": [None] * size,
            "information_gen_stderr": [None] * size,
            "failures": [None] * size,
        }
        return view, {}
    values, errors = [], []
    for result in results:
        estimate = next(
            (e for e in result.bounds[name].values() if not isinstance(e, str)), None
        )
        if estimate is None:
            values.append(None)
            errors.append(None)
            continue
        value = 1.0 / float(estimate.covariance[column, column])
        values.append(value)
        errors.append(value * math.sqrt(2.0 / (estimate.simulations - 1)))
    counts = [result.failures.get(name, {}) for result in results]
    codes = sorted({code for count in counts for code in count})
    view = {
        "estimator": f"{label} over the {config.simulations} bound simulations",
        "source": (
            "the bounds' chain draws (no engine run); standard error "
            "1/Var * sqrt(2/(M-1)) (normal approximation)"
        ),
        "information_gen": values,
        "information_gen_stderr": errors,
        "failures": [sum(count.values()) for count in counts],
    }
    return view, {code: [count.get(code, 0) for count in counts] for code in codes}


def _margin_verdict(
    margin: Any, note: str | None, reference: np.ndarray, reference_stderr: np.ndarray
) -> tuple[str, str, Any]:
    """``(verdict, reason, check)`` of the margin I_train − I_gen at one n_gen:
    ``holds`` when its smallest eigenvalue is ≥ −K_SIGMA standard errors,
    ``violated`` below, ``undetermined`` (check None) when it was not computed
    (``note`` says why) or its effective sample size is below ``LOW_ESS``."""
    if margin is None:
        return "undetermined", f"margin {note}", None
    ess = margin.effective_sample_size
    if ess < LOW_ESS:
        return (
            "undetermined",
            f"margin not measured: effective sample size {ess:.3g} < {LOW_ESS:g} "
            f"over {margin.proposals} proposals (the training samples that could "
            "have made D_gen are narrower than the proposals resolve)",
            None,
        )
    zero = np.zeros_like(margin.matrix)
    check = loewner_check(margin.matrix, margin.stderr, zero, zero, K_SIGMA)
    text = (
        f"margin I_train - I_gen: smallest eigenvalue {check.margin:.4g} ± "
        f"{check.margin_stderr:.2g}"
    )
    if check.holds:
        return "holds", f"{text} >= -{K_SIGMA:g} SE (ESS {ess:.3g})", check
    return (
        "violated",
        f"{text} < -{K_SIGMA:g} SE: I_gen exceeds I_train (ESS {ess:.3g})",
        check,
    )


def _margin_json(
    margins: Sequence[Any],
    verdicts: Sequence[tuple[str, str, Any]],
    note: str | None,
    reference: np.ndarray,
) -> dict[str, Any]:
    """fisher.json's ``margin``: per n_gen the estimate of I_train − I_gen (matrix)
    and its standard error, null where not a measurement; I_train − margin with the
    reference's error; the effective sample sizes, proposals and blocks; the
    verdict with its reason."""
    measured = [
        m is not None and v[2] is not None
        for m, v in zip(margins, verdicts, strict=True)
    ]

    def each(function):
        return [
            function(m) if ok else None for m, ok in zip(margins, measured, strict=True)
        ]

    def computed(function):
        return [None if m is None else function(m) for m in margins]

    return {
        "value": each(lambda m: _listify(m.matrix)),
        "stderr": each(lambda m: _listify(m.stderr)),
        "I_gen": each(lambda m: _listify(reference - m.matrix)),
        "min_eigenvalue": [None if v[2] is None else v[2].margin for v in verdicts],
        "min_eigenvalue_stderr": [
            None if v[2] is None else v[2].margin_stderr for v in verdicts
        ],
        "leak": each(lambda m: None if m.leak is None else _listify(m.leak)),
        "effective_sample_size": computed(lambda m: m.effective_sample_size),
        "min_effective_sample_size": computed(lambda m: m.min_effective_sample_size),
        "proposals": computed(lambda m: m.proposals),
        "groups": computed(lambda m: m.groups),
        "method": None if note is not None else "snis_pairs_jackknife",
        "verdict": [v[0] for v in verdicts],
        "verdict_reason": [v[1] for v in verdicts],
        "note": MARGIN_NOTE if note is None else note,
    }


def _verdict(
    bound_check: summary_bounds.BoundVerdict,
    importance: Any,
    ess: float | None,
    margin: tuple[str, str] | None = None,
) -> tuple[str, str]:
    """The verdict of one n_gen from the lower bounds, the importance-sampling
    Loewner check of I_gen where it is a measurement (ESS >= LOW_ESS) and the
    margin's verdict where computed (``(verdict, reason)``): ``violated`` if any
    says so, else ``holds`` if the bounds or a measured check hold."""
    reasons, violated = [], False
    if bound_check.verdict == "violated":
        violated = True
        worst = min(
            bound_check.margins.items(),
            key=lambda item: (
                item[1][0] / item[1][1]
                if item[1][1] > 0
                else (-np.inf if item[1][0] < 0 else np.inf)
            ),
        )
        reasons.append(
            f"lower bound {worst[0]} exceeds I_train by "
            f"{-worst[1][0]:.4g} ± {worst[1][1]:.2g} (> {K_SIGMA:g} SE)"
        )
    elif bound_check.verdict == "holds":
        reasons.append(
            f"every lower bound is below I_train within {K_SIGMA:g} SE "
            f"({len(bound_check.margins)} summary/route bounds)"
        )
    else:
        reasons.append("no lower bound could be computed")
    trusted_holds = False
    if ess is not None and ess < LOW_ESS:
        reasons.append(
            f"importance-sampling I_gen not trusted (ESS {ess:.3g} < {LOW_ESS:g})"
        )
    elif ess is not None and importance is None:
        reasons.append("importance-sampling I_gen not a measurement (see the margin)")
    elif importance is not None:
        if importance.holds:
            trusted_holds = True
            reasons.append(f"importance-sampling I_gen <= I_train (ESS {ess:.3g})")
        else:
            violated = True
            reasons.append(
                f"importance-sampling I_gen exceeds I_train by "
                f"{-importance.margin_sigma:.1f} SE (ESS {ess:.3g})"
            )
    if margin is not None:
        reasons.append(margin[1])
        violated |= margin[0] == "violated"
        trusted_holds |= margin[0] == "holds"
    if violated:
        verdict = "violated"
    elif bound_check.verdict == "holds" or trusted_holds:
        verdict = "holds"
    else:
        verdict = "undetermined"
    return verdict, "; ".join(reasons)


def _divergence_verdicts(
    values: Sequence[Any], holds: Sequence[bool], computed: bool, size: int
) -> list[str]:
    """``holds``/``violated`` per n_gen for KL or MI, ``undetermined`` where the
    importance sampling's ESS is below ``LOW_ESS`` or it was not computed."""
    if not computed:
        return ["undetermined"] * size
    return [
        "undetermined"
        if value.effective_sample_size < LOW_ESS
        else ("holds" if ok else "violated")
        for value, ok in zip(values, holds, strict=True)
    ]


def _measured(
    values: Sequence[Any], field: str, computed: bool, size: int
) -> list[float | None]:
    """``field`` of each KL or MI estimate where it is a measurement (ESS >=
    ``LOW_ESS``), else None."""
    if not computed:
        return [None] * size
    return [
        getattr(v, field) if v.effective_sample_size >= LOW_ESS else None
        for v in values
    ]


def _measured_holds(
    values: Sequence[Any], holds: Sequence[bool], computed: bool, size: int
) -> list[bool | None]:
    if not computed:
        return [None] * size
    return [
        bool(ok) if v.effective_sample_size >= LOW_ESS else None
        for v, ok in zip(values, holds, strict=True)
    ]


def _divergence_reasons(
    name: str,
    values: Sequence[Any],
    holds: Sequence[bool],
    computed: bool,
    size: int,
    note: str | None,
) -> list[str]:
    """The words behind ``_divergence_verdicts``, per n_gen."""
    if not computed:
        return [f"undetermined: {name} {note}"] * size
    reasons = []
    for value, ok in zip(values, holds, strict=True):
        ess = value.effective_sample_size
        if ess < LOW_ESS:
            reasons.append(
                f"undetermined: {name} not measured (effective sample size "
                f"{ess:.3g} < {LOW_ESS:g})"
            )
        elif ok:
            reasons.append(
                f"{name} <= training value within {K_SIGMA:g} SE (ESS {ess:.3g})"
            )
        else:
            reasons.append(
                f"{name} exceeds the training value by more than {K_SIGMA:g} SE "
                f"(ESS {ess:.3g})"
            )
    return reasons


def _reference_curves(config: FisherConfig, train_reference: float) -> dict[str, Any]:
    """The figure's curves on a grid of n_gen, as ratios to I_train: the ideal
    (mean-only, linear-Gaussian) fit n_gen/(n_train + n_gen), and the exact
    I_gen/I_train where known."""
    n = config.n_train
    sizes_ = [*config.n_gen, n]
    grid = np.geomspace(min(sizes_) / 1.5, max(sizes_) * 3.0, 60)
    ideal = linear_gaussian_generated_fisher(1.0, n, grid) / n
    exact = None
    if _exact_generated(config, 1) is not None:
        exact = [
            _exact_generated(config, round(float(g))) / train_reference for g in grid
        ]
    return {
        "n_gen": grid.tolist(),
        "ideal_fraction": np.asarray(ideal, np.float64).tolist(),
        "ideal_label": (
            "ideal mean-only fit of a Gaussian (linear-Gaussian): "
            "I_gen/I_train = n_gen/(n_train + n_gen)"
        ),
        "exact_fraction": exact,
        "exact_label": _exact_method(config),
    }


def run_fisher(
    config: FisherConfig,
    *,
    progress: bool = True,
    engine_options: Mapping[str, Any] | None = None,
) -> FisherResult:
    """Run the information study; see the module docstring.

    ``engine_options`` go to the engine run of the estimator view ("fisher estimator
    view": checkpoint, pseudo_range, partials, merge, memory_budget, chunk_size).
    The information estimates (importance sampling over ``outer`` replicas, the
    bounds' ``simulations`` chain draws) are not engine runs: they are recomputed,
    deterministically from the seed, on a resume or a merge.
    """
    from tqdm.auto import tqdm

    from jaxunc.checkpoint import check_checkpoint_folder

    if not isinstance(config, FisherConfig):
        raise InvalidArgument(
            "config", f"must be a FisherConfig (got {type(config).__name__})"
        )
    if (engine_options or {}).get("checkpoint") is not None:
        check_checkpoint_folder(engine_options["checkpoint"])

    start = time.perf_counter()
    model, surrogate = config.model_object(), config.surrogate_object()
    theta, names = config.theta_values(), config.parameter_names
    root = jax.random.key(config.seed)
    # The first eight keys keep the roles they had before the bounds existed (so
    # the ideal fit's numbers are unchanged bit for bit); the bounds take the last.
    all_keys = jax.random.split(root, 16)
    keys = iter(all_keys)
    bounds_key = all_keys[15]
    n = config.n_train

    train_outer = fisher_information(model, theta, n, key=next(keys), params=names)
    train_hessian = fisher_information(
        model, theta, n, key=next(keys), params=names, method="negative_hessian"
    )
    train_exact = exact_fisher_information(model, theta, n, names)
    reference, reference_stderr = (
        (train_exact.matrix, train_exact.stderr)
        if train_exact is not None
        else (train_outer.matrix, train_outer.stderr)
    )

    theta1 = config.shifted_theta()
    kl_train_key, mi_train_key = next(keys), next(keys)
    kl_train = kl_train_exact = mi_train = mi_train_exact = None
    if theta1 is not None:
        kl_train = kl_divergence(model, theta, theta1, n, key=kl_train_key)
        if config.model == "gaussian":
            kl_train_exact = n * gaussian_kl_divergence(theta, theta1)
        elif config.model == "exponential":
            ratio = float(theta1["rate"]) / float(theta["rate"])
            kl_train_exact = n * (ratio - 1 - math.log(ratio))
        prior = _prior_sampler(config)
        mi_train = mutual_information(model, prior, n, key=mi_train_key)
        if config.model == "gaussian":  # the prior is on μ, σ fixed
            mi_train_exact = gaussian_mean_mutual_information(
                config.prior_std(), config.sigma, n
            )

    fisher_key, kl_key, mi_key = next(keys), next(keys), next(keys)
    engine_key = next(keys)
    margin_key = all_keys[8]
    not_sampled = config.importance_sampling_reason()
    no_margin = config.margin_reason()
    size = len(config.n_gen)
    gen, gen_stderr, ess, checks = [None] * size, [None] * size, [None] * size, []
    kl_gen, mi_gen, margins = [], [], [None] * size
    gen_exact = [_exact_generated(config, g) for g in config.n_gen]
    gen_exact = [None if e is None else np.array([[e]]) for e in gen_exact]
    if no_margin is None:
        bar = tqdm(
            config.n_gen,
            desc="fisher",
            unit="n_gen",
            disable=None if progress else True,
            delay=1.0,
        )
        for index, n_gen in enumerate(bar):
            margins[index] = generated_fisher_margin(
                model,
                theta,
                surrogate,
                n,
                n_gen,
                key=jax.random.fold_in(margin_key, index),
                params=names,
                outer=config.outer,
                proposals=config.proposals,
            )
            if not_sampled is not None:
                continue
            estimate = generated_fisher_information(
                model,
                theta,
                surrogate,
                n,
                n_gen,
                key=jax.random.fold_in(fisher_key, index),
                params=names,
                outer=config.outer,
                proposals=config.proposals,
            )
            gen[index] = estimate.matrix
            gen_stderr[index] = estimate.stderr
            ess[index] = estimate.effective_sample_size
            checks.append(
                loewner_check(
                    reference,
                    reference_stderr,
                    estimate.matrix,
                    estimate.stderr,
                    K_SIGMA,
                )
            )
            if theta1 is None:
                continue
            kl_gen.append(
                generated_kl_divergence(
                    model,
                    theta,
                    theta1,
                    surrogate,
                    n,
                    n_gen,
                    key=jax.random.fold_in(kl_key, index),
                    outer=config.outer,
                    proposals=config.proposals,
                )
            )
            mi_gen.append(
                mutual_information(
                    model,
                    prior,
                    n,
                    key=jax.random.fold_in(mi_key, index),
                    surrogate=surrogate,
                    n_gen=n_gen,
                    outer=config.outer,
                    proposals=config.proposals,
                    inner=config.proposals,
                )
            )
        bar.close()

    # Lower bounds for any surrogate: one set of chain draws for every n_gen.
    learned = "learned" in config.summaries
    summaries = _summary_objects(config)
    bound_results = summary_bounds.generated_information_bounds_over_sizes(
        model,
        surrogate,
        theta,
        n,
        config.n_gen,
        summaries,
        key=bounds_key,
        simulations=config.simulations,
        params=names,
        learned=learned,
    )

    # The estimator view: 1/Var of the estimate of the first parameter from D_gen,
    # over pseudo-experiments (the engine), or over the bounds' chain draws.
    first = names[0]
    engine = None
    if config.pseudo_experiments is not None and not isinstance(
        surrogate, summary_bounds.ThetaDependent
    ):
        if config.builtin_model:
            estimator = (
                SampleMean()
                if first == "mu"
                else MaximumLikelihood(model, theta, (first,))
            )
        else:
            estimator = MaximumLikelihood(_inside_support(model), theta, (first,))
        chain = Chain(model, theta, surrogate, estimator, n, config.n_gen)
        engine = run_chain(
            chain,
            engine_key,
            config.pseudo_experiments,
            progress=progress,
            description="fisher estimator view",
            **{
                "config": {"study": "fisher", **config.to_json()},
                **(engine_options or {}),
            },
        )
        spread = engine.outputs["surrogate"]
        view = 1.0 / spread["std"][:, 0] ** 2
        view_stderr = 2.0 * spread["std_stderr"][:, 0] / spread["std"][:, 0] ** 3
        estimator_view = {
            "estimator": (
                f"{type(estimator).__name__} of {first} over "
                f"{config.pseudo_experiments} pseudo-experiments"
            ),
            "information_gen": view.tolist(),
            "information_gen_stderr": view_stderr.tolist(),
            "failures": spread["failures"][:, 0].tolist(),
        }
        view_failures_by_result = result_counts(spread["failures_by_result"][:, :, 0])
    else:
        estimator_view, view_failures_by_result = _estimator_view_from_bounds(
            config, bound_results
        )

    margin_verdicts = [
        _margin_verdict(m, no_margin, reference, reference_stderr) for m in margins
    ]
    checks = checks or [None] * size
    gen_reasons = [not_sampled] * size
    for index in range(size):
        if gen[index] is None:
            continue
        low = [
            f"{what} effective sample size {value:.3g} < {LOW_ESS:g}"
            for what, value in (
                ("its", ess[index]),
                ("the margin's", margins[index].effective_sample_size),
            )
            if value < LOW_ESS
        ]
        if low:  # not a measurement: no number
            gen[index] = gen_stderr[index] = checks[index] = None
            gen_reasons[index] = (
                "not measured: " + " and ".join(low) + " (the training samples "
                "that could have made D_gen are narrower than the proposals resolve)"
            )
    diagonal = np.diag(reference)
    ratio = [None if g is None else np.diag(g) / diagonal for g in gen]
    ratio_stderr = [None if s is None else np.diag(s) / diagonal for s in gen_stderr]
    lower, lower_stderr, lower_summary = [], [], []
    fraction, fraction_stderr, verdicts, reasons, all_bounds = [], [], [], [], []
    for index, result in enumerate(bound_results):
        all_bounds.append(
            {
                summary: {route: _bound_json(e) for route, e in routes.items()}
                for summary, routes in result.bounds.items()
            }
        )
        if result.best is None:
            lower.append(None)
            lower_stderr.append(None)
            lower_summary.append(None)
            fraction.append(None)
            fraction_stderr.append(None)
        else:
            best = result.best_estimate  # held out from the choice (select_best)
            lower.append(_listify(best.matrix))
            lower_stderr.append(_listify(best.stderr))
            lower_summary.append("/".join(result.best))
            value, error = _ratio(
                float(best.matrix[0, 0]),
                float(best.stderr[0, 0]),
                float(reference[0, 0]),
                float(reference_stderr[0, 0]),
            )
            fraction.append(value)
            fraction_stderr.append(error)
        check = summary_bounds.bound_verdict(
            result, reference, reference_stderr, K_SIGMA
        )
        verdict, reason = _verdict(
            check,
            checks[index],
            ess[index],
            None if no_margin is not None else margin_verdicts[index][:2],
        )
        verdicts.append(verdict)
        reasons.append(reason)

    kl_exact_gen = [
        0.5
        * (float(theta1["mu"]) - config.mu) ** 2
        * linear_gaussian_generated_fisher(config.sigma, n, g)
        if config.linear_gaussian()
        else None
        for g in config.n_gen
    ]
    mi_exact_gen = [
        gaussian_mean_mutual_information(config.prior_std(), config.sigma, n, g)
        if config.linear_gaussian()
        else None
        for g in config.n_gen
    ]
    divergence_note = (
        not_sampled
        if theta1 is not None
        else (
            "not computed: the KL shift and the prior width are one training "
            "standard error of the first parameter, from the model's exact_fisher, "
            "which this model does not have"
        )
    )
    sampled = not_sampled is None and theta1 is not None
    kl_holds = [
        k.value
        <= (
            kl_train_exact + K_SIGMA * k.stderr
            if kl_train_exact is not None
            else kl_train.value + K_SIGMA * math.hypot(k.stderr, kl_train.stderr)
        )
        for k in kl_gen
    ]
    mi_holds = [
        m.value <= mi_train.value + K_SIGMA * math.hypot(m.stderr, mi_train.stderr)
        for m in mi_gen
    ]
    none = [None] * size
    payload = {
        "parameters": list(names),
        "I_train": _listify(train_outer.matrix),
        "I_train_stderr": _listify(train_outer.stderr),
        "I_train_method": train_outer.method,
        "I_train_hessian": _listify(train_hessian.matrix),
        "I_train_hessian_stderr": _listify(train_hessian.stderr),
        "I_train_exact": None if train_exact is None else _listify(train_exact.matrix),
        "n_gen": list(config.n_gen),
        "I_gen": [None if m is None else _listify(m) for m in gen],
        "I_gen_stderr": [None if m is None else _listify(m) for m in gen_stderr],
        "I_gen_exact": [None if m is None else _listify(m) for m in gen_exact],
        "I_gen_method": "snis_cross" if not_sampled is None else None,
        "effective_sample_size": ess,
        "ratio_to_train": [None if r is None else _listify(r) for r in ratio],
        "ratio_to_train_stderr": [
            None if r is None else _listify(r) for r in ratio_stderr
        ],
        "min_eigenvalue_margin": [None if c is None else c.margin for c in checks],
        "margin_stderr": [None if c is None else c.margin_stderr for c in checks],
        "margin_sigma": [None if c is None else c.margin_sigma for c in checks],
        "holds": [None if c is None else c.holds for c in checks],
        "holds_convention": (
            f"min eigenvalue of I_train - I_gen > -{K_SIGMA} standard errors"
        ),
        "I_gen_note": not_sampled,
        "I_gen_reason": gen_reasons,
        "I_gen_exact_method": _exact_method(config),
        "I_gen_lower": lower,
        "I_gen_lower_stderr": lower_stderr,
        "I_gen_lower_summary": lower_summary,
        "bounds": all_bounds,
        "bounds_failures": [result.failures for result in bound_results],
        "route_agreement": [_route_agreement(result) for result in bound_results],
        "information_fraction": fraction,
        "information_fraction_stderr": fraction_stderr,
        "margin": _margin_json(margins, margin_verdicts, no_margin, reference),
        "verdict": verdicts,
        "verdict_reason": reasons,
        "estimator_view": estimator_view,
        "kl": {
            "theta1": None
            if theta1 is None
            else {k: float(v) for k, v in theta1.items()},
            "train": None if kl_train is None else kl_train.value,
            "train_stderr": None if kl_train is None else kl_train.stderr,
            "train_exact": kl_train_exact,
            "gen": _measured(kl_gen, "value", sampled, size),
            "gen_stderr": _measured(kl_gen, "stderr", sampled, size),
            "gen_exact": kl_exact_gen,
            "effective_sample_size": (
                [k.effective_sample_size for k in kl_gen] if sampled else none
            ),
            "holds": _measured_holds(kl_gen, kl_holds, sampled, size),
            "verdict": _divergence_verdicts(kl_gen, kl_holds, sampled, size),
            "verdict_reason": _divergence_reasons(
                "KL_gen", kl_gen, kl_holds, sampled, size, divergence_note
            ),
            "note": None if sampled else divergence_note,
        },
        "mi": {
            "prior_std": config.prior_std(),
            "train": None if mi_train is None else mi_train.value,
            "train_stderr": None if mi_train is None else mi_train.stderr,
            "train_exact": mi_train_exact,
            "gen": _measured(mi_gen, "value", sampled, size),
            "gen_stderr": _measured(mi_gen, "stderr", sampled, size),
            "gen_exact": mi_exact_gen,
            "effective_sample_size": (
                [m.effective_sample_size for m in mi_gen] if sampled else none
            ),
            "holds": _measured_holds(mi_gen, mi_holds, sampled, size),
            "verdict": _divergence_verdicts(mi_gen, mi_holds, sampled, size),
            "verdict_reason": _divergence_reasons(
                "MI_gen", mi_gen, mi_holds, sampled, size, divergence_note
            ),
            "note": None if sampled else divergence_note,
        },
        "reference_curves": _reference_curves(config, float(reference[0, 0])),
        "failures_by_result": {
            # the estimator view's pseudo-experiments (or chain draws), lists
            # aligned with n_gen
            "estimator_view": view_failures_by_result
        },
        "runtime": runtime(
            time.perf_counter() - start,
            [engine.stats] if engine is not None else [],
            precision=config.precision,
            bounds_simulations=config.simulations,
        ),
    }
    return FisherResult(config, **payload)


# ----------------------------------------------------------------------- the study


def _ess_flag(ess: float | None) -> str:
    return "*" if ess is not None and ess < LOW_ESS else ""


def _divergence_ratio(data: Mapping[str, Any], i: int) -> str:
    """``gen/train ± error`` for the KL or MI entry ``i``, over the exact training
    value where there is one (else over the Monte Carlo one, its error included)."""
    gen, gen_err = data["gen"][i], data["gen_stderr"][i]
    if gen is None:
        return "—"
    exact = data["train_exact"]
    train = exact if exact is not None else data["train"]
    train_err = 0.0 if exact is not None else data["train_stderr"]
    error = math.hypot(gen_err / train, gen * train_err / train**2)
    flags = _ess_flag(data["effective_sample_size"][i])
    return f"{gen / train:.3f} ± {error:.3f}{flags}" + (
        "" if data["holds"][i] else " !"
    )


def table(result: FisherResult) -> str:
    """The command's summary: I_train, KL and MI of the training data, and per n_gen
    the best lower bound on I_gen over I_train with the verdict, the exact value
    where known, and (where computed) the importance-sampling ratios with the
    Loewner check."""
    names = result.parameters
    kl, mi = result.kl, result.mi
    exact = result.I_train_exact
    config = result.config
    train = ", ".join(
        f"{name} {result.I_train[i][i]:.4g} ± {result.I_train_stderr[i][i]:.2g}"
        + ("" if exact is None else f" (exact {exact[i][i]:.4g})")
        for i, name in enumerate(names)
    )
    lines = [
        f"{config.model_label} model, {config.surrogate_label} surrogate, "
        f"n_train = {config.n_train}",
        f"I_train (diagonal): {train}",
    ]
    if kl["train"] is not None:
        mi_exact = (
            "" if mi["train_exact"] is None else f" (exact {mi['train_exact']:.4f})"
        )
        kl_exact = (
            "" if kl["train_exact"] is None else f" (exact {kl['train_exact']:.4f})"
        )
        lines.append(
            f"KL_train = {kl['train']:.4f} ± {kl['train_stderr']:.4f} nats"
            f"{kl_exact}; "
            f"MI_train = {mi['train']:.4f} ± {mi['train_stderr']:.4f} nats{mi_exact}"
        )
    sampled = result.I_gen_method is not None
    margined = result.margin.get("method") is not None
    divergences = kl["note"] is None
    has_exact = any(e is not None for e in result.I_gen_exact)
    first = names[0]
    reference = (exact if exact is not None else result.I_train)[0][0]
    header = ["n_gen", f"I_gen >= [{first}] (best bound)/I_train", "summary/route"]
    if has_exact:
        header.append(f"exact I_gen/I_train [{first}]")
    if sampled:
        header += [f"I_gen/I_train [{name}]" for name in names]
        header += ["margin σ", "holds"]
    if margined:
        header.append(f"I_train - I_gen [{first}] (margin)")
    header.append("verdict")
    if divergences:
        header += ["KL_gen/KL_train", "MI_gen/MI_train"]
    rows = [tuple(header)]
    for i, n in enumerate(result.n_gen):
        fraction = result.information_fraction[i]
        row = [
            str(n),
            "—"
            if fraction is None
            else f"{fraction:.3f} ± {result.information_fraction_stderr[i]:.3f}",
            result.I_gen_lower_summary[i] or "—",
        ]
        if has_exact:
            value = result.I_gen_exact[i]
            row.append("—" if value is None else f"{value[0][0] / reference:.4f}")
        if sampled:
            flag = _ess_flag(result.effective_sample_size[i]) or " "
            ratio, ratio_err = (
                result.ratio_to_train[i],
                result.ratio_to_train_stderr[i],
            )
            if ratio is None:
                row += ["—" + flag.strip()] * len(names) + ["—", "—"]
            else:
                row += [
                    f"{ratio[j]:.3f} ± {ratio_err[j]:.3f}{flag}"
                    for j in range(len(names))
                ]
                row += [
                    f"{result.margin_sigma[i]:+.1f}",
                    "yes" if result.holds[i] else "NO",
                ]
        if margined:
            value = result.margin["value"][i]
            row.append(
                "—" + _ess_flag(result.margin["effective_sample_size"][i])
                if value is None
                else f"{value[0][0]:.4g} ± {result.margin['stderr'][i][0][0]:.2g} "
                f"({result.margin['verdict'][i]})"
            )
        row.append(result.verdict[i])
        if divergences:
            row += [_divergence_ratio(kl, i), _divergence_ratio(mi, i)]
        rows.append(tuple(row))
    lines += align(rows)
    summaries = ", ".join(config.summaries)
    lines.append(
        f"I_gen >=: the best lower bound J^T C^-1 J over the summaries ({summaries}) "
        f"and routes (score,\n  pathwise), {config.simulations} chain draws "
        "(surrogate trainings) shared by every n_gen; verdict: every bound "
        f"<= I_train within {K_SIGMA:g} SE"
        + (" and the importance-sampling check" if sampled else "")
    )
    if sampled:
        lines.append(
            "margin σ: the smallest eigenvalue of I_train - I_gen in standard "
            f"errors; holds:\n  {result.holds_convention} (I_gen ≤ I_train, eq. 23)"
        )
    else:
        lines.append(f"I_gen itself (importance sampling): {result.I_gen_note}")
    if divergences:
        lines.append("KL, MI: over the exact training value where known (eqs. 18, 14)")
    else:
        lines.append(f"KL and MI of D_gen: {kl['note']}")
    lines.append(f"margin I_train - I_gen: {result.margin['note']}")
    series = (
        result.effective_sample_size,
        result.margin["effective_sample_size"],
        *(d["effective_sample_size"] for d in (kl, mi)),
    )
    if any(_ess_flag(e) for values in series for e in values):
        lines.append(
            f"* effective sample size < {LOW_ESS:g}: importance sampling is not to "
            "be trusted there"
        )
    if divergences and any(h is False for h in (*kl["holds"], *mi["holds"])):
        lines.append(
            f"! above the training value by more than {K_SIGMA:g} standard errors"
        )
    rt = result.runtime
    lines.append(f"{rt['seconds']:.1f} s ({rt['backend']} × {rt['device_count']})")
    return "\n".join(lines)


def memory_needs(config: FisherConfig) -> list[tuple[str, int, str]]:
    """The largest array outside the engine's chunks (``Study.memory``): the
    ``outer`` replicas of the chain of the importance-sampling estimates (a key, a
    d × d cross product and an effective sample size each, on the device and again
    in float64 on the host)."""
    d = len(config.parameter_names)
    per_replica = 8 + (d * d + 1) * (config.dtype.itemsize + 8)
    return [
        (
            "outer",
            config.outer * per_replica,
            f"the {config.outer} replicas of the chain per n_gen",
        )
    ]


REPRODUCE_SIMULATIONS = {"gan": 256, "flow": 128}
"""Chain draws of the trained surrogates' runs of ``jaxunc reproduce`` (every n_gen
from 10 to 10⁵): a GAN training with its forward-mode tangent costs about a third
of a flow's, whose sampling at n_gen = 10⁵ also dominates."""

STUDY = Study(
    name="fisher",
    help="the information study of §3.2 (Fisher, KL, mutual information)",
    description=(
        "The information study of §3.2: Fisher information about θ in the "
        "training data and in n_gen generated events, bracketed for any surrogate "
        "(GAN included) by lower bounds from summaries of the generated data, with "
        "a verdict on I_gen ≤ I_train; for the ideal fit also I_gen, KL divergence "
        "and mutual information by importance sampling."
    ),
    config=FisherConfig,
    run=run_fisher,
    output="fisher.json",
    table=table,
    figures=figures_from("jaxunc.plots.fisher"),
    no_plots_help="skip the figure",
    reproduce={
        "": {},
        **{
            f"{model}-{surrogate}": {
                "model": model,
                "surrogate": surrogate,
                "simulations": REPRODUCE_SIMULATIONS[surrogate],
            }
            for model in ("gaussian", "camelback")
            for surrogate in ("gan", "flow")
        },
    },
    # Seconds of each run in `jaxunc reproduce` (cold compile cache, 2-core AMD EPYC,
    # 2026-12-01): the overall time-left estimate.
    reproduce_seconds={
        "": 193,
        "gaussian-gan": 116,
        "gaussian-flow": 126,
        "camelback-gan": 107,
        "camelback-flow": 130,
    },
    notices=(LowEffectiveSampleSize,),
    memory=memory_needs,
)
