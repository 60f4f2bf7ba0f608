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
    generated_kl_divergence,
    kl_divergence,
    linear_gaussian_generated_fisher,
    loewner_check,
    mutual_information,
)
from jaxunc.models import Exponential, Gaussian
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
    positive_int,
    precision_option,
    runtime,
    seed_option,
    sizes,
)
from jaxunc.studies.toy import FIT_CHOICES
from jaxunc.surrogates import IdealFit

__all__ = ["STUDY", "FisherConfig", "FisherResult", "run_fisher", "table"]

MODELS = ("gaussian", "exponential")
PARAMS = {
    "gaussian": {"mu": ("mu",), "mu-sigma": ("mu", "sigma")},
    "exponential": {"rate": ("rate",)},
}


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

    model: str = choice("gaussian", MODELS, help="the true model")
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
            "Gaussian, rate for the exponential)"
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
    pseudo_experiments: int = positive_int(
        4000,
        minimum=2,
        why="to measure a spread",
        metavar="P",
        help="pseudo-experiments for the estimator view 1/Var(θ̂)",
    )
    kl_shift: float = finite_float(1.0, positive=True, cli=False)
    prior_width: float = finite_float(3.0, positive=True, cli=False)
    precision: str = precision_option()

    def __post_init__(self) -> None:
        check_options(self)
        if self.params is None:
            object.__setattr__(
                self, "params", "mu" if self.model == "gaussian" else "rate"
            )
        if self.params not in PARAMS[self.model]:
            raise InvalidArgument(
                "params",
                f"must be one of {list(PARAMS[self.model])} for the {self.model} model "
                f"(got {self.params!r})",
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
        minimum = 2 if (self.model == "gaussian" and self.fit == "mean-std") else 1
        if self.n_train < minimum:
            raise InvalidArgument(
                "n_train", f"must be >= {minimum} for this fit (got {self.n_train})"
            )

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
class FisherResult(StudyResult):
    """Everything the information study measured; ``to_json()`` gives
    ``fisher.json``.

    Matrices are nested lists over ``parameters`` (Fisher information of the whole
    dataset, natural parametrisation); lists are aligned with ``n_gen``.
    ``I_train`` (E[s sᵀ]), ``I_train_hessian`` (−E[∇² log p]) and ``I_train_exact``
    (None without a closed form); ``I_gen`` by importance sampling with
    ``effective_sample_size`` and ``I_gen_exact``; ``ratio_to_train`` (diagonal);
    the Loewner check (``min_eigenvalue_margin``, ``margin_stderr``,
    ``margin_sigma``, ``holds``); ``estimator_view`` (1/Var(θ̂), with the
    ``failures`` of its pseudo-experiments per n_gen, by result code in
    ``failures_by_result``); ``kl`` and ``mi``
    (nats); ``runtime``.
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
    I_gen: list[list[list[float]]]
    I_gen_stderr: list[list[list[float]]]
    I_gen_exact: list[list[list[float]] | None]
    I_gen_method: str
    effective_sample_size: list[float]
    ratio_to_train: list[list[float]]
    ratio_to_train_stderr: list[list[float]]
    min_eigenvalue_margin: list[float]
    margin_stderr: list[float]
    margin_sigma: list[float]
    holds: list[bool]
    holds_convention: str
    estimator_view: dict[str, Any]
    kl: dict[str, Any]
    mi: dict[str, Any]
    runtime: dict[str, Any]
    failures_by_result: dict[str, Any] | None = dataclasses.field(
        default=None, metadata=OMIT_NONE
    )


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
        "failures_by_result": {
            # the estimator view's pseudo-experiments, lists aligned with n_gen
            "estimator_view": result_counts(spread["failures_by_result"][:, :, 0])
        },
        "runtime": runtime(
            time.perf_counter() - start, [engine.stats], precision=config.precision
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
    the ratios of the generated data's to them with the Loewner check."""
    names = result.parameters
    kl, mi = result.kl, result.mi
    exact = result.I_train_exact
    train = ", ".join(
        f"{name} {result.I_train[i][i]:.4g} ± {result.I_train_stderr[i][i]:.2g}"
        + ("" if exact is None else f" (exact {exact[i][i]:.4g})")
        for i, name in enumerate(names)
    )
    lines = [f"I_train (diagonal): {train}"]
    mi_exact = "" if mi["train_exact"] is None else f" (exact {mi['train_exact']:.4f})"
    lines.append(
        f"KL_train = {kl['train']:.4f} ± {kl['train_stderr']:.4f} nats "
        f"(exact {kl['train_exact']:.4f}); "
        f"MI_train = {mi['train']:.4f} ± {mi['train_stderr']:.4f} nats{mi_exact}"
    )
    header = (
        "n_gen",
        *(f"I_gen/I_train [{name}]" for name in names),
        "margin σ",
        "holds",
        "KL_gen/KL_train",
        "MI_gen/MI_train",
    )
    rows = [header]
    for i, n in enumerate(result.n_gen):
        fisher_flag = _ess_flag(result.effective_sample_size[i]) or " "
        ratio, ratio_err = result.ratio_to_train[i], result.ratio_to_train_stderr[i]
        rows.append(
            (
                str(n),
                *(
                    f"{ratio[j]:.3f} ± {ratio_err[j]:.3f}{fisher_flag}"
                    for j in range(len(names))
                ),
                f"{result.margin_sigma[i]:+.1f}",
                "yes" if result.holds[i] else "NO",
                _divergence_ratio(kl, i),
                _divergence_ratio(mi, i),
            )
        )
    lines += align(rows)
    lines.append(
        "margin σ: the smallest eigenvalue of I_train - I_gen in standard errors; "
        f"holds:\n  {result.holds_convention} (I_gen ≤ I_train, eq. 23)"
    )
    lines.append("KL, MI: over the exact training value where known (eqs. 18, 14)")
    series = (
        result.effective_sample_size,
        *(d["effective_sample_size"] for d in (kl, mi)),
    )
    if any(_ess_flag(e) for values in series for e in values):
        lines.append(
            f"* effective sample size < {LOW_ESS:g}: importance sampling is not to "
            "be trusted there"
        )
    if not all(kl["holds"]) or not all(mi["holds"]):
        lines.append(
            f"! above the training value by more than {K_SIGMA:g} standard errors"
        )
    rt = result.runtime
    lines.append(f"{rt['seconds']:.1f} s ({rt['backend']} × {rt['device_count']})")
    return "\n".join(lines)


STUDY = Study(
    name="fisher",
    help="the information study of §3.2 (Fisher, KL, mutual information)",
    description=(
        "The information study of §3.2: Fisher information, KL divergence and "
        "mutual information about θ in the training data and in n_gen "
        "generated events, and the check I_gen ≤ I_train."
    ),
    config=FisherConfig,
    run=run_fisher,
    output="fisher.json",
    table=table,
    figures=figures_from("jaxunc.plots.fisher"),
    no_plots_help="skip the figure",
    notices=(LowEffectiveSampleSize,),
)
