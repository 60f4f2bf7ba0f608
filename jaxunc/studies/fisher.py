"""Information study (paper 000, §3.2): does a generated dataset carry more information
about θ than the training data it came from?

For a model, the ideal surrogate fitted to ``n_train`` true events, and each ``n_gen``:
Fisher information I_train (two Monte Carlo estimators and the closed form) and I_gen
(marginalised over training samples, by importance sampling; exact for the mean-only
Gaussian fit), the Loewner-order check I_gen ≤ I_train with its significance, the
estimator view 1/Var(θ̂) from pseudo-experiments, the KL divergence between θ and a
shifted θ₁, and the mutual information under a Gaussian prior, each for D_train and
for D_gen.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxunc.engine import Chain, run_chain
from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.estimators import MaximumLikelihood, SampleMean
from jaxunc.information import (
    exact_fisher_information,
    fisher_information,
    gaussian_kl_divergence,
    gaussian_mean_mutual_information,
    generated_fisher_information,
    generated_kl_divergence,
    kl_divergence,
    linear_gaussian_generated_fisher,
    loewner_check,
    mutual_information,
)
from jaxunc.models import Exponential, Gaussian
from jaxunc.results import failures_by_result, result_counts
from jaxunc.studies.options import check_precision, check_seed, finite
from jaxunc.studies.toy import FIT_CHOICES
from jaxunc.surrogates import IdealFit

__all__ = ["FisherConfig", "FisherResult", "run_fisher"]

MODELS = ("gaussian", "exponential")
PARAMS = {
    "gaussian": {"mu": ("mu",), "mu-sigma": ("mu", "sigma")},
    "exponential": {"rate": ("rate",)},
}
K_SIGMA = 3.0


@dataclasses.dataclass(frozen=True)
class FisherConfig:
    """Options of the information study; validated on construction.

    ``fit`` applies to the Gaussian (``mean-std`` or ``mean`` with σ known); the
    exponential's ideal fit estimates its rate.  ``params`` names the parameters the
    information is about (Gaussian: ``mu`` or ``mu-sigma``; exponential: ``rate``).
    The KL divergence compares θ with θ₁, the first parameter shifted by
    ``kl_shift`` training-sample standard errors; the mutual information uses a
    Gaussian prior on the first parameter with ``prior_width`` standard errors.
    """

    model: str = "gaussian"
    n_train: int = 100
    n_gen: tuple[int, ...] = (10, 100, 1000, 10000, 100000)
    mu: float = 0.0
    sigma: float = 1.0
    rate: float = 1.0
    fit: str = "mean-std"
    params: str | None = None
    seed: int = 0
    outer: int = 256
    pseudo_experiments: int = 4000
    kl_shift: float = 1.0
    prior_width: float = 3.0
    precision: str = "float32"

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        if self.model not in MODELS:
            raise InvalidArgument(
                "model", f"must be one of {list(MODELS)} (got {self.model!r})"
            )
        if self.params is None:
            set_("params", "mu" if self.model == "gaussian" else "rate")
        if self.params not in PARAMS[self.model]:
            raise InvalidArgument(
                "params",
                f"must be one of {list(PARAMS[self.model])} for the {self.model} model "
                f"(got {self.params!r})",
            )
        if self.fit not in FIT_CHOICES:
            raise InvalidArgument(
                "fit", f"must be one of {sorted(FIT_CHOICES)} (got {self.fit!r})"
            )
        if (
            self.model == "gaussian"
            and self.fit == "mean"
            and self.params == "mu-sigma"
        ):
            raise InvalidArgument(
                "params",
                "mu-sigma needs --fit mean-std: with σ known the surrogate is given "
                "the true σ, so D_gen does not depend on σ only through D_train",
            )
        set_("n_train", check_positive_int("n_train", self.n_train))
        minimum = 2 if (self.model == "gaussian" and self.fit == "mean-std") else 1
        if self.n_train < minimum:
            raise InvalidArgument(
                "n_train", f"must be >= {minimum} for this fit (got {self.n_train})"
            )
        n_gen = (
            (self.n_gen,) if isinstance(self.n_gen, (int, np.integer)) else self.n_gen
        )
        if len(n_gen) == 0:
            raise InvalidArgument("n_gen", "must list at least one size")
        set_("n_gen", tuple(check_positive_int("n_gen", n) for n in n_gen))
        for name in ("mu", "sigma", "rate", "kl_shift", "prior_width"):
            set_(name, finite(name, getattr(self, name)))
        for name in ("sigma", "rate", "kl_shift", "prior_width"):
            if getattr(self, name) <= 0:
                raise InvalidArgument(
                    name, f"must be > 0 (got {getattr(self, name)!r})"
                )
        set_("outer", check_positive_int("outer", self.outer))
        if self.outer < 2:
            raise InvalidArgument("outer", "must be >= 2 to estimate an error")
        set_(
            "pseudo_experiments",
            check_positive_int("pseudo_experiments", self.pseudo_experiments),
        )
        if self.pseudo_experiments < 2:
            raise InvalidArgument(
                "pseudo_experiments", "must be >= 2 to measure a spread"
            )
        check_seed(self.seed)
        check_precision(self.precision)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.precision)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return PARAMS[self.model][self.params]

    def model_object(self):
        return Gaussian() if self.model == "gaussian" else Exponential()

    def theta(self, **changes: float) -> dict[str, np.ndarray]:
        values = (
            {"mu": self.mu, "sigma": self.sigma}
            if self.model == "gaussian"
            else {"rate": self.rate}
        )
        values.update(changes)
        return {k: np.asarray(v, self.dtype) for k, v in values.items()}

    def free(self) -> tuple[str, ...]:
        return FIT_CHOICES[self.fit] if self.model == "gaussian" else ("rate",)

    def surrogate(self) -> IdealFit:
        return IdealFit(self.model_object(), self.theta(), self.free())

    def first_parameter_standard_error(self) -> float:
        """σ/√n for μ; λ/√n for the rate: one training-sample standard error."""
        scale = self.sigma if self.model == "gaussian" else self.rate
        return scale / math.sqrt(self.n_train)

    def shifted_theta(self) -> dict[str, np.ndarray]:
        first = self.parameter_names[0]
        value = (
            self.mu if first == "mu" else self.rate
        ) + self.kl_shift * self.first_parameter_standard_error()
        return self.theta(**{first: value})

    def prior_std(self) -> float:
        return self.prior_width * self.first_parameter_standard_error()

    def linear_gaussian(self) -> bool:
        """Whether D_gen is exactly multivariate normal (mean-only Gaussian fit)."""
        return self.model == "gaussian" and self.fit == "mean" and self.params == "mu"

    def to_json(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        config["n_gen"] = list(self.n_gen)
        config["parameters"] = list(self.parameter_names)
        config["fitted_parameters"] = list(self.free())
        config["theta"] = {k: float(v) for k, v in self.theta().items()}
        config["theta1_for_kl"] = {k: float(v) for k, v in self.shifted_theta().items()}
        first = self.parameter_names[0]
        config["prior"] = (
            f"{first} ~ Normal({float(self.theta()[first])}, {self.prior_std()}^2), "
            "other parameters fixed"
        )
        config["information_convention"] = (
            "Fisher information of the whole dataset (n events), natural "
            "parametrisation; I_train by the score outer product E[s s^T] "
            "(I_train_hessian: -E[hessian]); I_gen by cross-fitted self-normalised "
            "importance sampling over training replicas"
        )
        config["units"] = "KL divergence and mutual information in nats"
        return config


@dataclasses.dataclass
class FisherResult:
    """Everything the information study measured; ``to_json`` gives ``fisher.json``."""

    config: FisherConfig
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config.to_json(), **self.payload}


def _listify(matrix: np.ndarray) -> list:
    return np.asarray(matrix, np.float64).tolist()


def _prior_sampler(config: FisherConfig):
    first = config.parameter_names[0]
    center = float(config.theta()[first])
    width = config.prior_std()
    base = config.theta()

    def sample(key: jax.Array) -> dict[str, jax.Array]:
        draw = center + width * jax.random.normal(key, (), config.dtype)
        if first == "rate":
            draw = jnp.abs(
                draw
            )  # the rate prior is folded at zero (width ≪ rate by default)
        return {**{k: jnp.asarray(v) for k, v in base.items()}, first: draw}

    return sample


def run_fisher(
    config: FisherConfig,
    *,
    progress: bool = True,
    engine_options: Mapping[str, Any] | None = None,
) -> FisherResult:
    """Run the information study; see the module docstring.

    ``engine_options`` go to the engine run of the estimator view ("fisher estimator
    view": checkpoint, pseudo_range, partials, merge, memory_budget, chunk_size).
    The information estimates (importance sampling over ``outer`` replicas) are not
    engine runs: they are recomputed, deterministically from the seed, on a resume or
    a merge (seconds, against the engine run's minutes at large P).
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
    model, surrogate = config.model_object(), config.surrogate()
    theta, names = config.theta(), config.parameter_names
    keys = iter(jax.random.split(jax.random.key(config.seed), 16))
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
    kl_train = kl_divergence(model, theta, theta1, n, key=next(keys))
    if config.model == "gaussian":
        kl_train_exact = n * gaussian_kl_divergence(theta, theta1)
    else:
        ratio = float(theta1["rate"]) / float(theta["rate"])
        kl_train_exact = n * (ratio - 1 - math.log(ratio))
    prior = _prior_sampler(config)
    mi_train = mutual_information(model, prior, n, key=next(keys))
    mi_exact_possible = config.model == "gaussian"  # the prior is on μ, σ fixed
    mi_train_exact = (
        gaussian_mean_mutual_information(config.prior_std(), config.sigma, n)
        if mi_exact_possible
        else None
    )

    gen, gen_stderr, gen_exact, ess, checks = [], [], [], [], []
    kl_gen, mi_gen = [], []
    fisher_key, kl_key, mi_key = next(keys), next(keys), next(keys)
    bar = tqdm(
        config.n_gen,
        desc="fisher",
        unit="n_gen",
        disable=None if progress else True,
        delay=1.0,
    )
    for index, n_gen in enumerate(bar):
        estimate = generated_fisher_information(
            model,
            theta,
            surrogate,
            n,
            n_gen,
            key=jax.random.fold_in(fisher_key, index),
            params=names,
            outer=config.outer,
        )
        gen.append(estimate.matrix)
        gen_stderr.append(estimate.stderr)
        ess.append(estimate.effective_sample_size)
        exact = (
            np.array([[linear_gaussian_generated_fisher(config.sigma, n, n_gen)]])
            if config.linear_gaussian()
            else None
        )
        gen_exact.append(exact)
        checks.append(
            loewner_check(
                reference, reference_stderr, estimate.matrix, estimate.stderr, K_SIGMA
            )
        )
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
            )
        )
    bar.close()

    # The estimator view: 1/Var of the maximum-likelihood estimate of the first
    # parameter from D_gen (and from n_gen true events), over pseudo-experiments.
    first = names[0]
    estimator = (
        SampleMean() if first == "mu" else MaximumLikelihood(model, theta, (first,))
    )
    chain = Chain(model, theta, surrogate, estimator, n, config.n_gen)
    engine = run_chain(
        chain,
        next(keys),
        config.pseudo_experiments,
        progress=progress,
        description="fisher estimator view",
        **{"config": {"study": "fisher", **config.to_json()}, **(engine_options or {})},
    )
    spread = engine.outputs["surrogate"]
    view = 1.0 / spread["std"][:, 0] ** 2
    view_stderr = 2.0 * spread["std_stderr"][:, 0] / spread["std"][:, 0] ** 3

    diagonal = np.diag(reference)
    ratio = [np.diag(g) / diagonal for g in gen]
    ratio_stderr = [np.diag(s) / diagonal for s in gen_stderr]
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
    payload = {
        "parameters": list(names),
        "I_train": _listify(train_outer.matrix),
        "I_train_stderr": _listify(train_outer.stderr),
        "I_train_method": train_outer.method,
        "I_train_hessian": _listify(train_hessian.matrix),
        "I_train_hessian_stderr": _listify(train_hessian.stderr),
        "I_train_exact": None if train_exact is None else _listify(train_exact.matrix),
        "n_gen": list(config.n_gen),
        "I_gen": [_listify(m) for m in gen],
        "I_gen_stderr": [_listify(m) for m in gen_stderr],
        "I_gen_exact": [None if m is None else _listify(m) for m in gen_exact],
        "I_gen_method": "snis_cross",
        "effective_sample_size": ess,
        "ratio_to_train": [_listify(r) for r in ratio],
        "ratio_to_train_stderr": [_listify(r) for r in ratio_stderr],
        "min_eigenvalue_margin": [c.margin for c in checks],
        "margin_stderr": [c.margin_stderr for c in checks],
        "margin_sigma": [c.margin_sigma for c in checks],
        "holds": [c.holds for c in checks],
        "holds_convention": (
            f"min eigenvalue of I_train - I_gen > -{K_SIGMA} standard errors"
        ),
        "estimator_view": {
            "estimator": (
                f"{type(estimator).__name__} of {first} over "
                f"{config.pseudo_experiments} pseudo-experiments"
            ),
            "information_gen": view.tolist(),
            "information_gen_stderr": view_stderr.tolist(),
            "failures": spread["failures"][:, 0].tolist(),
            "failures_by_result": result_counts(failures_by_result(spread)[:, :, 0]),
        },
        "kl": {
            "theta1": {k: float(v) for k, v in theta1.items()},
            "train": kl_train.value,
            "train_stderr": kl_train.stderr,
            "train_exact": kl_train_exact,
            "gen": [k.value for k in kl_gen],
            "gen_stderr": [k.stderr for k in kl_gen],
            "gen_exact": kl_exact_gen,
            "effective_sample_size": [k.effective_sample_size for k in kl_gen],
            "holds": [k.value <= kl_train_exact + K_SIGMA * k.stderr for k in kl_gen],
        },
        "mi": {
            "prior_std": config.prior_std(),
            "train": mi_train.value,
            "train_stderr": mi_train.stderr,
            "train_exact": mi_train_exact,
            "gen": [m.value for m in mi_gen],
            "gen_stderr": [m.stderr for m in mi_gen],
            "gen_exact": mi_exact_gen,
            "effective_sample_size": [m.effective_sample_size for m in mi_gen],
            "holds": [
                m.value
                <= mi_train.value + K_SIGMA * math.hypot(m.stderr, mi_train.stderr)
                for m in mi_gen
            ],
        },
        "runtime": {
            "seconds": time.perf_counter() - start,
            "backend": jax.default_backend(),
            "device_count": jax.device_count(),
            "jax_version": jax.__version__,
            "precision": config.precision,
        },
    }
    return FisherResult(config, payload)
