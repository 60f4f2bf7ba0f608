"""Ensemble study: how much is a trained surrogate's sample worth, for surrogates that
actually learn (issue 4; the paper's Figure 6 with real GANs, flows, KDEs, bootstraps).

For a model at its true parameters, a surrogate, ``n_train`` and a list of ``n_gen``,
ensemble member ``i`` (pseudo-experiment ``i`` of the engine, key
``fold_in(root, i)``)

1. draws its own training sample of ``n_train`` true events,
2. trains its own surrogate on it (``surrogate.fit``; all members of a chunk train as
   one vmapped program),
3. generates ``n_gen`` events for every ``n_gen`` and applies the estimators to them,
4. applies the same estimators to ``n_gen`` fresh true events (the truth reference at
   the same size) and to its training sample (the truth reference at ``n_train``).

Estimators: ``mle``, the unbinned maximum-likelihood estimate of the target parameter
with the true model family (the other parameters fixed at their true values; Newton
from the model's ``initial_params`` when it has them, else from the true point), and
``sample_mean``, the mean of the events (scalar events only; it estimates E[x], which
is the target only for location models such as the Gaussian).  For a model with a
``support`` (the spectrum's window, or a ``support(x)`` hook) the MLE keeps only the
events inside it, as an analysis window would: a trained surrogate may put events
where the truth has none.  A model that declares no support gets no such cut: an
event where its ``log_prob`` is not finite (−inf, NaN) makes the member's MLE fail,
with its reason (``nonfinite_start`` ...), counted per n_gen.  Either way the
fraction of generated events outside the support (``jaxunc.models.outside_support``)
is reported per n_gen (``outside_support``), and a warning (``EnsembleWarning``)
says in words how many events lay outside and how many fits failed, and why.

Reported per ``n_gen``: the mean and the standard deviation (ddof = 1) of each
estimate over the ensemble with their Monte Carlo standard errors; the same for the
truth references; N_eff = 1 / (I₁ · Var(θ̂_mle)), the number of true events whose
Cramér-Rao bound equals the measured variance, with I₁ the per-event Fisher
information about the target with the other parameters fixed (exact or quadrature
where the model has ``exact_fisher``, else Monte Carlo E[s²]); N_eff / n_train; and
the excess variance Var_gen(n_gen) - Var_truth(n_train) - Var_truth(n_gen), the spread
a surrogate adds beyond the ideal "training sample + sampling noise" budget (≈ 0 for
the ideal fit and the bootstrap, measured for trained surrogates).  Training
diagnostics: loss curves of the first few members, mean final losses, fit failures.
A statistic over fewer than 2 successful members is null (None), never 0.0.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxunc.engine import ChainKeys, draw_chain, run_pseudo_experiments
from jaxunc.errors import InvalidArgument
from jaxunc.estimators import Estimate, MaximumLikelihood, SampleMean
from jaxunc.information import exact_fisher_information, fisher_information
from jaxunc.models import check_params, outside_support, support_description
from jaxunc.results import (
    Result,
    describe_failures,
    estimate_result,
    first_failure,
    from_ok,
    result_counts,
)
from jaxunc.studies.base import (
    K_SIGMA,
    OMIT_NONE,
    Study,
    StudyResult,
    align,
    check_options,
    figures_from,
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
from jaxunc.studies.registry import (
    MODELS,
    ModelSpec,
    make_surrogate,
    model_spec,
)
from jaxunc.surrogates.base import check_surrogate, required_train, training_losses

__all__ = [
    "REFERENCE_KEYS",
    "STUDY",
    "EnsembleConfig",
    "EnsembleResult",
    "EnsembleWarning",
    "floor_holds",
    "run_ensemble",
    "table",
]

DEFAULT_N_GEN = (30, 100, 300, 1000, 10000)
ESTIMATORS = ("mle", "sample_mean")
MIN_MEMBERS = 2
"""Fewest successful members a statistic needs; below it the statistic is None."""


class EnsembleWarning(UserWarning):
    """Generated events outside the model's support, or failed fits, in an ensemble
    run (printed by the command as one line ``jaxunc: warning: ...``)."""


@dataclasses.dataclass(frozen=True, eq=False)
class EnsembleConfig:
    """Options of the ensemble study; validated on construction (``InvalidArgument``
    naming the option).

    Attributes:
      model: a registered model name (``gaussian``, ``camelback``, ``spectrum``, ...)
        or a ``ModelSpec`` (any model object, e.g. ``model_from_functions``, with its
        true parameters, fitted parameters and target).
      surrogate: a registered surrogate name (``ideal``, ``bootstrap``, ``kde``,
        ``gan``, ``flow``) or any surrogate object (``fit``/``sample``).
      ensemble_size: K, the number of members (independent training samples), >= 2.
      n_train: training events per member.
      n_gen: generated-sample sizes.
      theta: true parameter values ``{name: float}`` overriding the model's
        defaults (``ModelSpec.at``; ``--theta mu=1,sigma=2``); None: the defaults
        (the same in every command; the Gaussian's mu = 0, sigma = 1).  The θ
        used is recorded in the JSON's ``config.theta``.
      seed: root seed; member i uses ``fold_in(fold_in(key(seed), 0), i)``.
      precision: ``float32`` or ``float64`` (needs 64-bit JAX).
      surrogate_options: keyword arguments of a registered surrogate's factory
        (e.g. ``{"steps": 500}`` for the GAN).
      curves: members whose full loss curves are kept (the first ``curves``).
      fisher_events: Monte Carlo events for the per-event Fisher information of a
        model without ``exact_fisher``.
      ideal_reference: also run the ideal fit (the paper's "perfect GAN") with the
        same seed, so on the same training samples, as a reference
        (``EnsembleResult.ideal_reference``; skipped when ``surrogate`` is
        ``"ideal"``).
    """

    model: str | ModelSpec = model_name(  # noqa: RUF009 (an Option field)
        "gaussian", help="the true model, from the registry or module:attribute"
    )
    surrogate: Any = surrogate_name(  # noqa: RUF009 (an Option field)
        "gan",
        help=(
            "the surrogate trained by every member, from the registry or "
            "module:attribute (default: {default}); the ideal fit also runs as a "
            "reference"
        ),
    )
    ensemble_size: int = positive_int(
        256,
        minimum=2,
        why="to measure a spread",
        metavar="K",
        help="members, each with its own training sample (>= 2; default: {default})",
    )
    n_train: int = positive_int(100, metavar="N", help="training events per member")
    n_gen: tuple[int, ...] = sizes(DEFAULT_N_GEN, help="generated-sample sizes")
    theta: Mapping[str, float] | None = theta_option()
    seed: int = seed_option()
    precision: str = precision_option()
    surrogate_options: Mapping[str, Any] = option(default_factory=dict, cli=False)
    curves: int = option(4, cli=False)
    fisher_events: int = positive_int(200_000, cli=False)
    ideal_reference: bool = option(True, cli=False)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        check_options(self)
        if isinstance(self.model, str):
            spec = model_spec(self.model)
        elif isinstance(self.model, ModelSpec):
            spec = self.model
        else:
            raise InvalidArgument(
                "model",
                f"must be one of {sorted(MODELS)} or a ModelSpec wrapping your model "
                f"(got {type(self.model).__name__})",
            )
        spec = spec.at(self.theta)
        set_("_spec", spec)
        options = dict(self.surrogate_options)
        if isinstance(self.surrogate, str):
            try:
                surrogate = make_surrogate(self.surrogate, spec, **options)
            except (TypeError, ValueError) as error:
                if isinstance(error, InvalidArgument) and error.argument == "surrogate":
                    raise
                raise InvalidArgument(
                    "surrogate_options",
                    f"not valid for the {self.surrogate!r} surrogate: {error}",
                ) from None
        else:
            if options:
                raise InvalidArgument(
                    "surrogate_options",
                    "only for a registered surrogate name; configure your surrogate "
                    "object directly",
                )
            surrogate = check_surrogate(self.surrogate)
        set_("_surrogate", surrogate)
        minimum = required_train(surrogate, parameters=len(spec.free), at_least=2)
        if self.n_train < minimum:
            raise InvalidArgument(
                "n_train",
                f"must be >= {minimum} for this surrogate and model (got "
                f"{self.n_train})",
            )
        if isinstance(self.curves, bool) or not isinstance(
            self.curves, (int, np.integer)
        ):
            raise InvalidArgument("curves", f"must be an integer (got {self.curves!r})")
        if not 0 <= self.curves <= self.ensemble_size:
            raise InvalidArgument(
                "curves",
                f"must be in [0, ensemble_size = {self.ensemble_size}] "
                f"(got {self.curves})",
            )
        if not isinstance(self.ideal_reference, bool):
            raise InvalidArgument(
                "ideal_reference",
                f"must be True or False (got {self.ideal_reference!r})",
            )
        try:
            check_params(spec.model, self.true_theta)
        except ValueError as error:
            raise InvalidArgument("model", f"bad parameters: {error}") from None

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def surrogate_object(self) -> Any:
        return self._surrogate

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.precision)

    @property
    def true_theta(self) -> dict[str, np.ndarray]:
        """The θ the run uses (the model's defaults with ``theta`` applied), as
        arrays at the run's precision."""
        return {k: np.asarray(v, self.dtype) for k, v in self.spec.theta.items()}

    @property
    def model_label(self) -> str:
        return self.model if isinstance(self.model, str) else self.spec.name

    @property
    def surrogate_label(self) -> str:
        if isinstance(self.surrogate, str):
            return self.surrogate
        return type(self.surrogate).__name__

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "model": self.model_label,
            "model_description": spec.description,
            "theta": {k: float(v) for k, v in spec.theta.items()},
            "target": spec.target,
            "surrogate": self.surrogate_label,
            "surrogate_options": dict(self.surrogate_options),
            "surrogate_repr": repr(self.surrogate_object),
            "ensemble_size": self.ensemble_size,
            "n_train": self.n_train,
            "n_gen": list(self.n_gen),
            "seed": self.seed,
            "precision": self.precision,
            "ideal_reference": self.ideal_reference and self.surrogate != "ideal",
            "estimators": {
                "mle": (
                    f"maximum likelihood of {spec.target!r} with the true model "
                    "family, other parameters fixed at their true values"
                    + (
                        "; events outside the model's support are dropped"
                        if _declares_support(spec.model)
                        else ""
                    )
                ),
                "sample_mean": "arithmetic mean of the events (estimates E[x])",
            },
            "std_convention": "std over ensemble members with ddof=1",
            "n_eff_convention": (
                "N_eff = 1 / (I_1 * Var(mle)), I_1 the per-event Fisher information "
                "about the target with the other parameters fixed"
            ),
            "excess_variance_convention": (
                "Var_gen(n_gen) - Var_truth(n_train) - Var_truth(n_gen); standard "
                "error from the three variances as if independent (conservative: "
                "the generated and training estimates of a member are positively "
                "correlated)"
            ),
        }


REFERENCE_KEYS = (
    "estimate_mean",
    "estimate_std",
    "estimate_std_stderr",
    "excess_variance",
    "excess_variance_stderr",
    "n_eff",
    "n_eff_stderr",
    "n_eff_ratio",
    "n_eff_ratio_stderr",
    "failures",
)
"""What ``ideal_reference`` keeps of the ideal fit's run (plus its
``runtime_seconds``)."""


@dataclasses.dataclass
class EnsembleResult(StudyResult):
    """What the ensemble study measured; ``to_json()`` gives ``ensemble.json``.

    Lists are aligned with ``n_gen``; fields per estimator are dicts
    ``{"mle": [...], "sample_mean": [...]}``.  See ``run_ensemble`` for each field.
    ``ideal_reference`` (the ideal fit on the same training samples: the
    ``REFERENCE_KEYS`` of its result and ``runtime_seconds``) is None when the study
    ran the ideal fit itself or without a reference.
    """

    config: EnsembleConfig
    n_gen: list[int]
    estimate_mean: dict[str, list[float | None]]
    estimate_mean_stderr: dict[str, list[float | None]]
    estimate_std: dict[str, list[float | None]]
    estimate_std_stderr: dict[str, list[float | None]]
    truth_mean: dict[str, list[float | None]]
    truth_std: dict[str, list[float | None]]
    truth_std_stderr: dict[str, list[float | None]]
    training_floor: dict[str, dict[str, float]]
    excess_variance: dict[str, list[float | None]]
    excess_variance_stderr: dict[str, list[float | None]]
    fisher_per_event: dict[str, Any]
    n_eff: list[float | None]
    n_eff_stderr: list[float | None]
    n_eff_ratio: list[float | None]
    n_eff_ratio_stderr: list[float | None]
    n_eff_truth: list[float | None]
    n_eff_truth_stderr: list[float | None]
    n_eff_train: dict[str, float | None]
    failures: dict[str, Any]
    training: dict[str, Any]
    runtime: dict[str, Any]
    failures_by_result: dict[str, Any] | None = dataclasses.field(
        default=None, metadata=OMIT_NONE
    )
    outside_support: dict[str, Any] | None = dataclasses.field(
        default=None, metadata=OMIT_NONE
    )
    warnings: list[str] | None = dataclasses.field(default=None, metadata=OMIT_NONE)
    ideal_reference: dict[str, Any] | None = dataclasses.field(
        default=None, metadata=OMIT_NONE
    )


def _declares_support(model: Any) -> bool:
    return getattr(model, "support", None) is not None


@dataclasses.dataclass(frozen=True, eq=False)
class _InsideSupport:
    """A model whose events outside its declared ``support`` (an interval or a
    ``support(x)`` hook) contribute nothing to the likelihood: the likelihood of the
    events inside (the model is normalised there).  Everything else is delegated to
    the wrapped model."""

    model: Any

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def log_prob(self, x: jax.Array, theta: Any) -> jax.Array:
        support = self.model.support
        if callable(support):
            inside = ~outside_support(self.model, x, theta)
            # an inside event stands in for the outside ones (finite gradients)
            fill = x[jnp.argmax(inside)]
            mask = inside.reshape(inside.shape + (1,) * (x.ndim - 1))
            safe = jnp.where(mask, x, fill)
        else:
            low, high = support
            inside = (x >= low) & (x <= high)
            safe = jnp.where(inside, x, jnp.asarray(0.5 * (low + high), x.dtype))
        return jnp.where(inside, self.model.log_prob(safe, theta), 0.0)


def _estimators(config: EnsembleConfig, scalar_events: bool) -> dict[str, Any]:
    spec = config.spec
    model = _InsideSupport(spec.model) if _declares_support(spec.model) else spec.model
    estimators = {"mle": MaximumLikelihood(model, config.true_theta, (spec.target,))}
    if scalar_events:
        estimators["sample_mean"] = SampleMean()
    return estimators


def _member_keys(key: jax.Array, n_sizes: int) -> ChainKeys:
    """The ensemble's key schedule: ``split(key, 4)`` -> training sample, fit,
    generation root, truth root; ``fold_in(root, j)`` of the last two for size j."""
    train_key, fit_key, gen_key, truth_key = jax.random.split(key, 4)
    return ChainKeys(
        train_key,
        fit_key,
        tuple(jax.random.fold_in(gen_key, j) for j in range(n_sizes)),
        tuple(jax.random.fold_in(truth_key, j) for j in range(n_sizes)),
    )


def _first_component(estimate: Estimate, stage: jax.Array) -> Estimate:
    """``estimate`` reduced to its first component, failing with ``stage`` (the fit's
    code, or 0) when that failed first (``first_failure``)."""
    code = first_failure(stage, estimate_result(estimate))
    return Estimate(estimate.value[:1], code == Result.SUCCESSFUL, code)


def _member_function(
    config: EnsembleConfig, estimators: Mapping[str, Any], root: jax.Array
):
    """``key -> {output: Estimate}`` for one ensemble member (see the module doc).

    One chain draw (``draw_chain``, keys ``_member_keys``), then the estimators.
    Outputs: ``gen/<est>`` and ``truth/<est>`` of shape (len(n_gen), 1),
    ``train/<est>`` (1,), ``outside`` (len(n_gen), 1) (the fraction of each generated
    sample outside the model's support, ``outside_support`` at the true θ),
    ``fit`` (1,) (the fit's result code: the surrogate's own
    report, ``surrogate_fit_failed`` also where a loss curve is not finite), and
    ``loss/<name>`` (n_records,) for surrogates with ``training_losses``, and
    ``curve/<name>`` (curves, n_records): row j holds the curve of the member whose key
    is ``fold_in(root, j)`` (member j), zeros elsewhere, so the ensemble mean times
    the member count is member j's curve, read out of the same run.  Every estimate
    carries a result code; those on generated events fail with the fit's code when
    the fit failed.
    """
    spec, surrogate, theta = config.spec, config.surrogate_object, config.true_theta
    model = spec.model
    curve_keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(
        root, jnp.arange(max(config.curves, 1), dtype=jnp.uint32)
    )[: config.curves]

    def stacked(samples: tuple[jax.Array, ...], stage: jax.Array) -> dict:
        outputs = {}
        for name, estimator in estimators.items():
            results = [_first_component(estimator.estimate(x), stage) for x in samples]
            outputs[name] = Estimate(
                jnp.stack([r.value for r in results]),
                jnp.stack([r.ok for r in results]),
                jnp.stack([r.result for r in results]),
            )
        return outputs

    def member(key: jax.Array) -> dict[str, Estimate]:
        draw = draw_chain(
            model,
            surrogate,
            theta,
            config.n_train,
            config.n_gen,
            _member_keys(key, len(config.n_gen)),
        )
        fit_code = draw.fit_result
        outputs = {}
        losses = training_losses(surrogate, draw.params)
        if losses is not None:
            data = jax.random.key_data(key)
            is_member = (
                jnp.stack(
                    [jnp.all(data == kept) for kept in jax.random.key_data(curve_keys)]
                )
                if config.curves
                else jnp.zeros((0,), bool)
            )
            for name, curve in losses.items():
                curve = jnp.asarray(curve).reshape(-1)
                finite = jnp.all(jnp.isfinite(curve))
                outputs[f"loss/{name}"] = Estimate(curve, finite)
                fit_code = first_failure(
                    fit_code, from_ok(finite, Result.SURROGATE_FIT_FAILED)
                )
                if config.curves:
                    rows = jnp.where(is_member[:, None], curve[None, :], 0.0)
                    outputs[f"curve/{name}"] = Estimate(rows, jnp.bool_(True))
        outputs["fit"] = Estimate(
            jnp.zeros((1,), draw.train.dtype),
            fit_code == Result.SUCCESSFUL,
            fit_code,
        )
        outputs["outside"] = Estimate(
            jnp.stack(
                [
                    jnp.mean(outside_support(model, x, theta).astype(x.dtype))
                    for x in draw.generated
                ]
            )[:, None],
            jnp.bool_(True),
        )
        success = jnp.int32(Result.SUCCESSFUL)
        for name, estimator in estimators.items():
            outputs[f"train/{name}"] = _first_component(
                estimator.estimate(draw.train), success
            )
        for name, estimate in stacked(draw.generated, fit_code).items():
            outputs[f"gen/{name}"] = estimate
        for name, estimate in stacked(draw.truth, success).items():
            outputs[f"truth/{name}"] = estimate
        return outputs

    return member


def _per_event_fisher(config: EnsembleConfig, key: jax.Array) -> dict[str, Any]:
    spec = config.spec
    names = (spec.target,)
    exact = exact_fisher_information(spec.model, config.true_theta, 1, names)
    if exact is not None:
        return {
            "value": float(exact.matrix[0, 0]),
            "stderr": 0.0,
            "method": "exact (model.exact_fisher: closed form or quadrature)",
        }
    estimate = fisher_information(
        spec.model,
        config.true_theta,
        1,
        key=key,
        params=names,
        monte_carlo_events=config.fisher_events,
    )
    return {
        "value": float(estimate.matrix[0, 0]),
        "stderr": float(estimate.stderr[0, 0]),
        "method": f"Monte Carlo E[s^2] over {estimate.monte_carlo_events} events",
    }


def _enough(summary: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
    """``summary`` with its statistics NaN (None in the JSON) where fewer than
    ``MIN_MEMBERS`` members succeeded (the engine gives 0.0 or −0.0 there)."""
    count = np.asarray(summary["count"])
    few = count < MIN_MEMBERS
    out = dict(summary)
    for field in ("mean", "mean_stderr", "std", "std_stderr"):
        out[field] = np.where(few, np.nan, np.asarray(summary[field], np.float64))
    return out


def _column(summary: Mapping[str, np.ndarray], field: str) -> list[float]:
    return np.asarray(summary[field], np.float64).reshape(-1).tolist()


def _outside_summary(config: EnsembleConfig, outside: Mapping[str, np.ndarray]):
    """The ``outside_support`` entry: fraction of generated events outside the
    model's support per n_gen (mean over members ± standard error)."""
    model = config.spec.model
    return {
        "fraction": _finite_or_none(outside["mean"][:, 0]),
        "fraction_stderr": _finite_or_none(outside["mean_stderr"][:, 0]),
        "support": support_description(model),
        "estimator": (
            "the MLE drops events outside the declared support (an analysis window)"
            if _declares_support(model)
            else "events outside make the MLE's log-likelihood non-finite: the fit "
            "fails and is counted by reason (declare a support to drop them instead)"
        ),
        "convention": "fraction of each member's n_gen generated events outside "
        "the support at the true parameters; mean over members, rows: n_gen",
    }


def _warnings(config: EnsembleConfig, payload: Mapping[str, Any]) -> list[str]:
    """The run's problems in words: events outside the support, failed trainings and
    failed fits on generated, true and training events (one line each)."""
    lines = []
    members = config.ensemble_size
    fraction = [f or 0.0 for f in payload["outside_support"]["fraction"]]
    if any(fraction):
        total = float(np.dot(fraction, config.n_gen) / sum(config.n_gen))
        lines.append(
            f"{100 * total:.2g} % of generated events lie outside the model's support "
            f"({payload['outside_support']['support']}; per n_gen "
            + ", ".join(f"{100 * f:.2g} %" for f in fraction)
            + ")"
        )
    by_result = payload["failures_by_result"]
    fit = by_result["fit"]
    if fit:
        failed = sum(int(v) for v in fit.values())
        lines.append(
            f"{failed} of {members} surrogate trainings failed: "
            + describe_failures(fit)
        )
    for source, what in (("generated", "generated"), ("truth", "true")):
        for name, counts in by_result[source].items():
            failed = payload["failures"][source][name]
            if not any(failed):
                continue
            columns = [
                f"{f} of {members} at n_gen = {n}"
                for n, f in zip(config.n_gen, failed, strict=True)
                if f
            ]
            worst = int(np.argmax(failed))
            reasons = {k: v[worst] for k, v in counts.items() if v[worst]}
            lines.append(
                f"{name} fits on {what} events failed: "
                + "; ".join(columns)
                + f" (at n_gen = {config.n_gen[worst]}: "
                + describe_failures(reasons)
                + ")"
            )
    for name, count in payload["failures"]["train"].items():
        if count:
            lines.append(
                f"{name} fits on the training samples failed for {count} of "
                f"{members} members: " + describe_failures(by_result["train"][name])
            )
    return lines


def _n_eff(
    fisher: Mapping[str, Any], std: np.ndarray, std_stderr: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """1/(I₁ s²) and its standard error (relative: SE(I)/I ⊕ 2 SE(s)/s)."""
    std, std_stderr = np.asarray(std), np.asarray(std_stderr)
    value = 1.0 / (fisher["value"] * std**2)
    relative = np.hypot(fisher["stderr"] / fisher["value"], 2 * std_stderr / std)
    return value, value * relative


def _finite_or_none(values: Any) -> Any:
    """Lists with NaN (no successful fit at all) replaced by None, for JSON."""
    array = np.asarray(values, np.float64)
    if array.ndim == 0:
        return float(array) if np.isfinite(array) else None
    return [_finite_or_none(v) for v in array]


def run_ensemble(
    config: EnsembleConfig,
    *,
    progress: bool = True,
    engine_options: Mapping[str, Any] | None = None,
) -> EnsembleResult:
    """Run the ensemble study (see the module docstring), and with
    ``config.ideal_reference`` the ideal fit on the same training samples (same
    seed) as ``ideal_reference``.

    ``engine_options`` are passed as keyword arguments to the engine's
    ``run_pseudo_experiments`` (e.g. ``chunk_size``; results do not depend on it).

    The result's fields, lists aligned with ``n_gen`` and, where per estimator,
    dicts ``{"mle": [...], "sample_mean": [...]}``:
    ``estimate_mean``, ``estimate_mean_stderr``, ``estimate_std``,
    ``estimate_std_stderr`` (generated events); ``truth_mean``, ``truth_std``,
    ``truth_std_stderr`` (n_gen true events); ``training_floor`` (the estimates on
    the training samples: std and std_stderr at n_train); ``excess_variance`` and its
    ``_stderr``; ``fisher_per_event``; ``n_eff``, ``n_eff_stderr``, ``n_eff_ratio``
    (N_eff / n_train), ``n_eff_ratio_stderr``, ``n_eff_truth`` (N_eff of n_gen true
    events: ≈ n_gen for an efficient MLE), ``n_eff_train``; ``failures`` (members
    whose estimate failed, per estimator and n_gen); ``training`` (loss curves,
    final losses, fit failures); ``runtime``; ``ideal_reference``.
    """
    result = _run_members(config, progress, engine_options)
    if config.ideal_reference and config.surrogate != "ideal":
        ideal = dataclasses.replace(config, surrogate="ideal", surrogate_options={})
        reference = _run_members(ideal, progress, engine_options)
        result.ideal_reference = {
            **{key: getattr(reference, key) for key in REFERENCE_KEYS},
            "runtime_seconds": reference.runtime["seconds"],
        }
    return result


def _run_members(
    config: EnsembleConfig,
    progress: bool,
    engine_options: Mapping[str, Any] | None,
) -> EnsembleResult:
    """One ensemble run of ``config.surrogate`` (see ``run_ensemble``)."""
    start = time.perf_counter()
    engine_options = dict(engine_options or {})
    root = jax.random.key(config.seed)
    engine_key = jax.random.fold_in(root, 0)
    fisher_key = jax.random.fold_in(root, 1)
    spec = config.spec

    event = jax.eval_shape(
        lambda k: spec.model.sample(k, config.true_theta, 1), jax.random.key(0)
    )
    estimators = _estimators(config, scalar_events=event.ndim == 1)
    member = _member_function(config, estimators, engine_key)
    events = config.n_train + 2 * sum(config.n_gen)
    engine = run_pseudo_experiments(
        member,
        engine_key,
        config.ensemble_size,
        events_per_pseudo_experiment=events,
        progress=progress,
        description=(
            f"ensemble {config.surrogate_label} on {config.model_label} "
            f"(n_train {config.n_train}, seed {config.seed})"
        ),
        **engine_options,
    )
    out = engine.outputs
    fisher = _per_event_fisher(config, fisher_key)

    payload: dict[str, Any] = {"n_gen": list(config.n_gen)}
    fields = {
        "estimate_mean": ("gen", "mean"),
        "estimate_mean_stderr": ("gen", "mean_stderr"),
        "estimate_std": ("gen", "std"),
        "estimate_std_stderr": ("gen", "std_stderr"),
        "truth_mean": ("truth", "mean"),
        "truth_std": ("truth", "std"),
        "truth_std_stderr": ("truth", "std_stderr"),
    }
    out = {
        key: _enough(value) if key.split("/")[0] in ("gen", "truth", "train") else value
        for key, value in out.items()
    }
    for key, (source, field) in fields.items():
        payload[key] = {
            name: _finite_or_none(_column(out[f"{source}/{name}"], field))
            for name in estimators
        }
    payload["training_floor"] = {
        name: {
            "n_train": config.n_train,
            "mean": _finite_or_none(out[f"train/{name}"]["mean"][0]),
            "std": _finite_or_none(out[f"train/{name}"]["std"][0]),
            "std_stderr": _finite_or_none(out[f"train/{name}"]["std_stderr"][0]),
        }
        for name in estimators
    }
    excess, excess_stderr = {}, {}
    for name in estimators:
        gen, truth = out[f"gen/{name}"], out[f"truth/{name}"]
        train = out[f"train/{name}"]
        s_gen, e_gen = gen["std"][:, 0], gen["std_stderr"][:, 0]
        s_truth, e_truth = truth["std"][:, 0], truth["std_stderr"][:, 0]
        s_train, e_train = train["std"][0], train["std_stderr"][0]
        excess[name] = _finite_or_none(s_gen**2 - s_train**2 - s_truth**2)
        excess_stderr[name] = _finite_or_none(
            np.sqrt(
                (2 * s_gen * e_gen) ** 2
                + (2 * s_train * e_train) ** 2
                + (2 * s_truth * e_truth) ** 2
            )
        )
    payload["excess_variance"] = excess
    payload["excess_variance_stderr"] = excess_stderr
    payload["fisher_per_event"] = {
        **fisher,
        "parameter": spec.target,
        "convention": (
            "per-event Fisher information E[(d log p / d theta)^2] about the target, "
            "the other parameters fixed at their true values"
        ),
    }
    gen_mle, truth_mle, train_mle = out["gen/mle"], out["truth/mle"], out["train/mle"]
    n_eff, n_eff_stderr = _n_eff(
        fisher, gen_mle["std"][:, 0], gen_mle["std_stderr"][:, 0]
    )
    truth_eff, truth_eff_stderr = _n_eff(
        fisher, truth_mle["std"][:, 0], truth_mle["std_stderr"][:, 0]
    )
    train_eff, train_eff_stderr = _n_eff(
        fisher, train_mle["std"][0], train_mle["std_stderr"][0]
    )
    payload["n_eff"] = _finite_or_none(n_eff)
    payload["n_eff_stderr"] = _finite_or_none(n_eff_stderr)
    payload["n_eff_ratio"] = _finite_or_none(n_eff / config.n_train)
    payload["n_eff_ratio_stderr"] = _finite_or_none(n_eff_stderr / config.n_train)
    payload["n_eff_truth"] = _finite_or_none(truth_eff)
    payload["n_eff_truth_stderr"] = _finite_or_none(truth_eff_stderr)
    payload["n_eff_train"] = {
        "value": _finite_or_none(train_eff),
        "stderr": _finite_or_none(train_eff_stderr),
    }
    payload["failures"] = {
        "generated": {
            name: np.asarray(out[f"gen/{name}"]["failures"][:, 0]).tolist()
            for name in estimators
        },
        "truth": {
            name: np.asarray(out[f"truth/{name}"]["failures"][:, 0]).tolist()
            for name in estimators
        },
        "train": {
            name: int(out[f"train/{name}"]["failures"][0]) for name in estimators
        },
    }
    payload["failures_by_result"] = {
        "generated": {
            name: result_counts(out[f"gen/{name}"]["failures_by_result"][:, :, 0])
            for name in estimators
        },
        "truth": {
            name: result_counts(out[f"truth/{name}"]["failures_by_result"][:, :, 0])
            for name in estimators
        },
        "train": {
            name: result_counts(out[f"train/{name}"]["failures_by_result"][:, 0])
            for name in estimators
        },
        "fit": result_counts(out["fit"]["failures_by_result"][:, 0]),
    }
    payload["training"] = _training_summary(config, out)
    payload["outside_support"] = _outside_summary(config, out["outside"])
    lines = _warnings(config, payload)
    payload["warnings"] = lines or None
    for line in lines:
        warnings.warn(
            f"ensemble {config.surrogate_label} on {config.model_label}: {line}",
            EnsembleWarning,
            stacklevel=3,
        )
    stats = engine.stats
    payload["runtime"] = runtime(
        time.perf_counter() - start,
        [stats],
        precision=config.precision,
        engine_seconds=stats.seconds,
        chunk_size=stats.chunk_size,
        chunks=stats.chunks,
    )
    return EnsembleResult(config, **payload)


def _training_summary(
    config: EnsembleConfig, out: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, Any]:
    """Fit failures, mean final losses (± standard error over members), the mean loss
    curves and the full curves of the first ``config.curves`` members."""
    summary: dict[str, Any] = {
        "fit_failures": int(out["fit"]["failures"][0]),
        "fit_failures_by_result": result_counts(out["fit"]["failures_by_result"][:, 0]),
        "members": config.ensemble_size,
        "final_losses": {},
        "mean_curves": {},
        "curves": {},
        "curve_members": list(range(config.curves)),
    }
    names = [k.split("/", 1)[1] for k in out if k.startswith("loss/")]
    for name in names:
        loss = out[f"loss/{name}"]
        summary["final_losses"][name] = {
            "mean": _finite_or_none(loss["mean"][-1]),
            "stderr": _finite_or_none(loss["mean_stderr"][-1]),
            "std": _finite_or_none(loss["std"][-1]),
        }
        summary["mean_curves"][name] = _finite_or_none(loss["mean"])
        if f"curve/{name}" in out:
            curve = out[f"curve/{name}"]
            summary["curves"][name] = _finite_or_none(curve["mean"] * curve["count"])
    return summary


def floor_holds(
    result: EnsembleResult, estimator: str = "mle", k_sigma: float = K_SIGMA
) -> list[bool]:
    """Per n_gen: is the generated-data std at or above the training floor (the std
    at n_train true events) within ``k_sigma`` combined standard errors?"""
    floor = result.training_floor[estimator]
    holds = []
    for std, error in zip(
        result.estimate_std[estimator],
        result.estimate_std_stderr[estimator],
        strict=True,
    ):
        holds.append(
            _at_or_above(std, error, floor["std"], floor["std_stderr"], k_sigma)
        )
    return holds


def _at_or_above(
    std: float, error: float, floor: float, floor_error: float, k_sigma: float
) -> bool:
    """Is ``std`` at or above ``floor`` within ``k_sigma`` combined errors?"""
    return std - floor >= -k_sigma * math.hypot(error, floor_error)


def _std_text(value: float | None, error: float | None) -> str:
    return (
        "undetermined"
        if value is None or error is None
        else f"{value:.3g} ± {error:.2g}"
    )


def comparison_finding(
    payloads: list[Mapping[str, Any]], k_sigma: float = K_SIGMA
) -> tuple[str, list[tuple[str, str]]]:
    """One sentence and the numbers for a panel of ``payloads`` (ensemble runs of
    one model, θ, n_train and target with different surrogates): at each run's
    largest n_gen, its std of the MLE against the training floor of the first run
    (at or above it within ``k_sigma`` combined standard errors, below it, or
    undetermined when either is missing)."""
    floor = payloads[0]["training_floor"]["mle"]
    config = payloads[0]["config"]
    numbers = [
        (
            f"training floor (n_train = {config['n_train']} true events)",
            _std_text(floor["std"], floor["std_stderr"]),
        )
    ]
    above, below, undetermined = [], [], []
    for payload in payloads:
        name = payload["config"]["surrogate"]
        n_gen = payload["n_gen"][-1]
        std = payload["estimate_std"]["mle"][-1]
        error = payload["estimate_std_stderr"]["mle"][-1]
        numbers.append(
            (f"{name}: std of the MLE at n_gen = {n_gen}", _std_text(std, error))
        )
        if None in (std, error, floor["std"], floor["std_stderr"]):
            undetermined.append(name)
        elif _at_or_above(std, error, floor["std"], floor["std_stderr"], k_sigma):
            above.append(name)
        else:
            below.append(name)
    parts = []
    if above:
        parts.append(
            f"{', '.join(above)} stay at or above the training floor "
            f"{_std_text(floor['std'], floor['std_stderr'])} within {k_sigma:g} σ "
            "at the largest n_gen"
        )
    if below:
        parts.append(f"{', '.join(below)} fall below it (beyond {k_sigma:g} σ)")
    if undetermined:
        parts.append(f"{', '.join(undetermined)}: undetermined (no estimate)")
    sentence = (
        f"{config['model']}, n_train = {config['n_train']}: " + "; ".join(parts) + "."
    )
    return sentence, numbers


def ensemble_comparison(payloads: list[Mapping[str, Any]], folder: Any) -> list[tuple]:
    """``Study.comparison`` of the ensemble study: one panel per model with two or
    more surrogates among ``payloads`` (``jaxunc.plots.ensemble.save_comparisons``)
    and its finding; ``[(title, finding, numbers, [figure path])]``."""
    from jaxunc.plots import ensemble as plots

    found = []
    groups = plots.comparison_groups(payloads)
    paths = plots.save_comparisons(payloads, folder)  # one per group, in order
    for group, path in zip(groups, paths, strict=True):
        sentence, numbers = comparison_finding(group)
        title = f"comparison of the surrogates, {group[0]['config']['model']}"
        found.append((title, sentence, numbers, [path]))
    return found


# ----------------------------------------------------------------------- the study


def _cell(value: float | None, error: float | None, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if error is None:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}g} ± {error:.2g}"


def table(result: EnsembleResult) -> str:
    """The command's summary: the MLE's spread per n_gen for the surrogate, the
    ideal fit and the truth, N_eff, training diagnostics."""
    config = result.config
    reference = result.ideal_reference
    floor = result.training_floor["mle"]
    lines = [
        f"{config.model_label}, surrogate {config.surrogate_label}: std of the MLE "
        f"of {config.spec.target} over K = {config.ensemble_size} members "
        f"(n_train = {config.n_train}; training floor "
        f"{_cell(floor['std'], floor['std_stderr'])})"
    ]
    header = (
        "n_gen",
        "surrogate std",
        "ideal std",
        "truth std",
        "N_eff",
        "N_eff/n_train",
    )
    rows = [header]
    for i, n in enumerate(result.n_gen):
        ideal = (
            _cell(
                reference["estimate_std"]["mle"][i],
                reference["estimate_std_stderr"]["mle"][i],
            )
            if reference
            else "(same)"
        )
        rows.append(
            (
                str(n),
                _cell(
                    result.estimate_std["mle"][i],
                    result.estimate_std_stderr["mle"][i],
                ),
                ideal,
                _cell(result.truth_std["mle"][i], result.truth_std_stderr["mle"][i]),
                _cell(result.n_eff[i], result.n_eff_stderr[i]),
                _cell(result.n_eff_ratio[i], result.n_eff_ratio_stderr[i], 3),
            )
        )
    lines += align(rows)
    training = result.training
    losses = ", ".join(
        f"{name} {_cell(v['mean'], v['stderr'])}"
        for name, v in training["final_losses"].items()
    )
    lines.append(
        f"fit failures: {training['fit_failures']} of {training['members']}"
        + (f"; mean final losses: {losses}" if losses else "")
    )
    fisher = result.fisher_per_event
    lines.append(
        f"N_eff = 1/(I_1 Var), I_1 = {fisher['value']:.4g} per event "
        f"({fisher['method']}); runtime {result.runtime['seconds']:.1f} s"
    )
    return "\n".join(lines)


STUDY = Study(
    name="ensemble",
    help="train K surrogates on K training samples: Figure 6 for real surrogates",
    description=(
        "Ensemble study: each of K members draws n_train true events, trains "
        "its own surrogate and generates n_gen events; the spread of the "
        "maximum-likelihood estimate of the target over the members is "
        "compared with the ideal fit (run as well, as a reference) and with "
        "true events, and turned into N_eff = 1/(I_1 Var)."
    ),
    config=EnsembleConfig,
    run=run_ensemble,
    output="ensemble.json",
    table=table,
    figures=figures_from("jaxunc.plots.ensemble"),
    no_plots_help="skip the figure",
    notices=(EnsembleWarning,),
    comparison=ensemble_comparison,
    # Four surrogates on the Gaussian and the camel back, each at the defaults.
    reproduce={
        f"{model}-{surrogate}": {"model": model, "surrogate": surrogate}
        for model in ("gaussian", "camelback")
        for surrogate in ("bootstrap", "kde", "gan", "flow")
    },
    # Seconds of each run in `jaxunc reproduce` (cold compile cache, 2-core AMD EPYC,
    # 2026-12-01): the overall time-left estimate.
    reproduce_seconds={
        "gaussian-bootstrap": 15,
        "gaussian-kde": 11,
        "gaussian-gan": 38,
        "gaussian-flow": 45,
        "camelback-bootstrap": 32,
        "camelback-kde": 22,
        "camelback-gan": 49,
        "camelback-flow": 60,
    },
)
