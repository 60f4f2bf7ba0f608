"""Two cases where a surrogate *does* help, and by how much (paper 000 §5.1, §7.1).

* ``contrived_amplification`` (§5.1): a deliberately sub-optimal analysis that
  discards half of the simulated events it is given.  Fed n true events it uses n/2;
  fed N_gen ≫ n events from a surrogate trained on the n, it uses the information of
  all n, so the surrogate is worth 2n true events to it: a *predicted* amplification
  of 2 (for the ideal fit and an efficient estimator), measured here against the truth.
* ``partial_pipeline`` (§7.1): a two-stage simulator, generator level z ~ N(θ, s²)
  then detector smearing x = z + ε, ε ~ N(0, r²) (r: the resolution).  M events are
  fully simulated; a surrogate of the detector stage is trained on their responses
  x − z and applied to N − M further generator-level events.  The information on θ
  of the mixed detector-level dataset is no less than that of the M full events alone
  and no more than that of what it was made from, the M full events and the N − M
  generator-level events (data processing inequality); N full events for scale.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxunc import random as fast_random
from jaxunc.engine import (
    ChainKeys,
    draw_chain,
    fit_and_generate,
    run_pseudo_experiments,
)
from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.estimators import Estimate, SampleMean
from jaxunc.models import Gaussian, check_params
from jaxunc.results import (
    Result,
    estimate_result,
    first_failure,
    result_counts,
)
from jaxunc.studies.base import K_SIGMA, OMIT_NONE, StudyResult
from jaxunc.studies.options import check_seed, finite
from jaxunc.surrogates import IdealFit

__all__ = [
    "ContrivedConfig",
    "ContrivedResult",
    "PartialPipelineConfig",
    "PartialPipelineResult",
    "contrived_amplification",
    "partial_pipeline",
]


def _information(summary: dict[str, np.ndarray], index: int) -> tuple[float, float]:
    """1/Var and its standard error from the engine's std and std_stderr."""
    std, err = float(summary["std"][index]), float(summary["std_stderr"][index])
    return 1.0 / std**2, 2.0 * err / std**3


def _variance(summary: dict[str, np.ndarray], index: int) -> tuple[float, float]:
    std, err = float(summary["std"][index]), float(summary["std_stderr"][index])
    return std**2, 2.0 * std * err


# ------------------------------------------------------------------------------ §5.1


@dataclasses.dataclass(frozen=True)
class ContrivedConfig:
    """Options of the §5.1 study: ``n_train`` simulated events, ``n_gen`` generated
    events fed to the analysis, ``pseudo_experiments``, ``seed``."""

    n_train: int = 100
    n_gen: int = 100_000
    pseudo_experiments: int = 4000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_train", "n_gen", "pseudo_experiments"):
            object.__setattr__(
                self, name, check_positive_int(name, getattr(self, name))
            )
        if self.n_train < 2 or self.pseudo_experiments < 2:
            raise InvalidArgument(
                "n_train" if self.n_train < 2 else "pseudo_experiments",
                "must be >= 2",
            )
        check_seed(self.seed)


class _ContrivedKeys(NamedTuple):
    """Keys of one §5.1 pseudo-experiment: the surrogate's chain and the two true
    samples of n_train and 2 n_train events."""

    chain: ChainKeys
    true_n: jax.Array
    true_2n: jax.Array


def _contrived_keys(key: jax.Array) -> _ContrivedKeys:
    """``fast_random.split(key, 5)`` -> training sample, fit, generated sample,
    n true events, 2n true events."""
    k_train, k_fit, k_gen, k_n, k_2n = fast_random.split(key, 5)
    return _ContrivedKeys(ChainKeys(k_train, k_fit, (k_gen,)), k_n, k_2n)


@dataclasses.dataclass
class ContrivedResult(StudyResult):
    """What ``contrived_amplification`` measured (§5.1); ``to_json()`` for a file.

    Variances of the analysis X over pseudo-experiments (ddof 1) with their
    standard errors: on ``n_train`` true events, on 2 ``n_train`` true events and on
    the surrogate's ``n_gen`` events; the measured amplification
    Var(X | n true)/Var(X | surrogate) against the predictions (2, and
    2/(1 + 2 n_train/n_gen) at finite n_gen); ``ratio_to_2n_true`` (≈ 1 when the
    surrogate is worth 2 n_train true events to X).
    """

    config: dict[str, Any]
    analysis: str
    variance_true_n: float
    variance_true_n_stderr: float
    variance_true_2n: float
    variance_true_2n_stderr: float
    variance_surrogate: float
    variance_surrogate_stderr: float
    predicted_factor: float
    predicted_factor_finite_n_gen: float
    measured_factor: float
    measured_factor_stderr: float
    ratio_to_2n_true: float
    ratio_to_2n_true_stderr: float
    consistent_with_prediction: bool
    failures: int
    convention: str
    failures_by_result: dict[str, Any] | None = dataclasses.field(
        default=None, metadata=OMIT_NONE
    )


def contrived_amplification(
    model: Any,
    theta: Mapping[str, Any],
    surrogate: Any,
    estimator: Any = None,
    config: ContrivedConfig | None = None,
    *,
    component: int = 0,
    progress: bool = False,
    engine_options: Mapping[str, Any] | None = None,
) -> ContrivedResult:
    """The §5.1 contrived analysis: X(events) = ``estimator`` on a random half of
    the events (the first half: events are exchangeable), component ``component``.

    Per pseudo-experiment: X on n_train fresh true events, X on 2 n_train fresh true
    events, and X on n_gen events from the surrogate trained on a third, independent
    n_train-event sample.  The measured amplification is Var(X | n true) /
    Var(X | surrogate); predicted: 2 for N_gen → ∞ (the ideal fit with an efficient
    estimator), 2 / (1 + 2 n_train/n_gen) at finite n_gen (first order, the
    generation noise of the n_gen/2 kept events).
    """
    config = ContrivedConfig() if config is None else config
    estimator = SampleMean() if estimator is None else estimator
    check_params(model, theta)
    n, n_gen = config.n_train, config.n_gen

    def analysis(events):
        result = estimator.estimate(events[: events.shape[0] // 2])
        return result.value[component], estimate_result(result)

    def run(key):
        keys = _contrived_keys(key)
        draw = draw_chain(model, surrogate, theta, n, (n_gen,), keys.chain)
        x_gen, code_gen = analysis(draw.generated[0])
        x_n, code_n = analysis(model.sample(keys.true_n, theta, n))
        x_2n, code_2n = analysis(model.sample(keys.true_2n, theta, 2 * n))
        # The fit first (training precedes estimation), then the three analyses.
        code = first_failure(draw.fit_result, code_gen, code_n, code_2n)
        return {
            "x": Estimate(
                jnp.stack([x_n, x_2n, x_gen]), code == Result.SUCCESSFUL, code
            )
        }

    engine = run_pseudo_experiments(
        run,
        jax.random.key(config.seed),
        config.pseudo_experiments,
        events_per_pseudo_experiment=4 * n + n_gen,
        progress=progress,
        description="contrived amplification (§5.1)",
        **dict(engine_options or {}),
    )
    summary = engine.outputs["x"]
    var_n, var_n_err = _variance(summary, 0)
    var_2n, var_2n_err = _variance(summary, 1)
    var_gen, var_gen_err = _variance(summary, 2)
    factor = var_n / var_gen
    factor_err = factor * math.hypot(var_n_err / var_n, var_gen_err / var_gen)
    equal = var_2n / var_gen
    equal_err = equal * math.hypot(var_2n_err / var_2n, var_gen_err / var_gen)
    predicted_finite = 2.0 / (1.0 + 2.0 * n / n_gen)
    payload = {
        "config": dataclasses.asdict(config),
        "analysis": (
            f"{type(estimator).__name__} (component {component}) of a random half "
            "of the events given"
        ),
        "variance_true_n": var_n,
        "variance_true_n_stderr": var_n_err,
        "variance_true_2n": var_2n,
        "variance_true_2n_stderr": var_2n_err,
        "variance_surrogate": var_gen,
        "variance_surrogate_stderr": var_gen_err,
        "predicted_factor": 2.0,
        "predicted_factor_finite_n_gen": predicted_finite,
        "measured_factor": factor,
        "measured_factor_stderr": factor_err,
        "ratio_to_2n_true": equal,
        "ratio_to_2n_true_stderr": equal_err,
        "consistent_with_prediction": bool(
            abs(factor - predicted_finite) <= K_SIGMA * factor_err
        ),
        "failures": int(summary["failures"].max()),
        "failures_by_result": result_counts(summary["failures_by_result"].max(axis=1)),
        "convention": (
            "amplification = Var(X on n_train true events) / Var(X on n_gen "
            "generated events); variances over pseudo-experiments (ddof=1); "
            f"consistent: within {K_SIGMA:g} standard errors of the finite-n_gen "
            "prediction"
        ),
    }
    return ContrivedResult(**payload)


# ------------------------------------------------------------------------------ §7.1


@dataclasses.dataclass(frozen=True)
class PartialPipelineConfig:
    """Options of the §7.1 study.

    ``theta``: generator-level mean (the parameter of interest); ``generator_sigma``:
    s, the generator-level width; ``resolution``: r, the detector smearing width;
    ``m_full``: fully simulated events M; ``n_total``: generator-level events N > M.
    """

    theta: float = 0.0
    generator_sigma: float = 1.0
    resolution: float = 1.0
    m_full: int = 100
    n_total: int = 1000
    pseudo_experiments: int = 4000
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("theta", "generator_sigma", "resolution"):
            object.__setattr__(self, name, finite(name, getattr(self, name)))
        for name in ("generator_sigma", "resolution"):
            if getattr(self, name) <= 0:
                raise InvalidArgument(name, f"must be > 0 (got {getattr(self, name)})")
        for name in ("m_full", "n_total", "pseudo_experiments"):
            object.__setattr__(
                self, name, check_positive_int(name, getattr(self, name))
            )
        if self.m_full < 2:
            raise InvalidArgument("m_full", f"must be >= 2 (got {self.m_full})")
        if self.n_total <= self.m_full:
            raise InvalidArgument(
                "n_total", f"must be > m_full = {self.m_full} (got {self.n_total})"
            )
        if self.pseudo_experiments < 2:
            raise InvalidArgument("pseudo_experiments", "must be >= 2")
        check_seed(self.seed)


@dataclasses.dataclass
class PartialPipelineResult(StudyResult):
    """What ``partial_pipeline`` measured (§7.1); ``to_json()`` for a file.

    ``datasets``: what each of the four datasets is; ``fisher``: their exact Fisher
    information on θ (None for the mixed dataset, which has no closed form);
    ``information_estimator`` (1/Var(θ̂)) with its standard errors;
    ``ordering_holds``: I(M full) ≤ 1/Var(mixed) ≤ I(M full + N − M generator
    level) within ``K_SIGMA`` standard errors, in words in ``ordering``.
    """

    config: dict[str, Any]
    datasets: dict[str, str]
    fisher: dict[str, float | None]
    fisher_convention: str
    information_estimator: dict[str, float]
    information_estimator_stderr: dict[str, float]
    estimator: str
    ordering_holds: bool
    ordering: str
    failures: int
    failures_by_result: dict[str, Any] | None = dataclasses.field(
        default=None, metadata=OMIT_NONE
    )


def default_detector_surrogate(config: PartialPipelineConfig) -> IdealFit:
    """The ideal fit of the detector response x − z: a Gaussian whose shift and
    resolution are both learned from the M full events."""
    return IdealFit(
        Gaussian(),
        {"mu": np.float32(0.0), "sigma": np.float32(config.resolution)},
        ("mu", "sigma"),
    )


def partial_pipeline(
    config: PartialPipelineConfig | None = None,
    detector_surrogate: Any = None,
    *,
    progress: bool = False,
    engine_options: Mapping[str, Any] | None = None,
) -> PartialPipelineResult:
    """The §7.1 partial pipeline (see the module docstring).

    ``detector_surrogate`` (default: ``default_detector_surrogate``) is any surrogate
    of the detector response, trained on the M responses x − z; the smearing here
    does not depend on z, so an unconditional model of the response is the exact
    conditional detector model.  Every dataset's θ estimate is its sample mean (the
    maximum-likelihood estimate of a Gaussian location); the estimator view of its
    information is 1/Var(θ̂) over pseudo-experiments.
    """
    config = PartialPipelineConfig() if config is None else config
    surrogate = (
        default_detector_surrogate(config)
        if detector_surrogate is None
        else detector_surrogate
    )
    m, n = config.m_full, config.n_total
    s2, r2 = config.generator_sigma**2, config.resolution**2
    theta = jnp.float32(config.theta)
    s, r = jnp.float32(config.generator_sigma), jnp.float32(config.resolution)

    def run(key):
        k_z, k_smear, k_fit, k_gen = fast_random.split(key, 4)
        z = theta + s * fast_random.normal(k_z, (n,), jnp.float32)
        x = z + r * fast_random.normal(k_smear, (n,), jnp.float32)
        # The detector surrogate's chain: trained on the M responses x − z.
        _, code, (response,) = fit_and_generate(
            surrogate, x[:m] - z[:m], k_fit, (k_gen,), (n - m,)
        )
        simulated = z[m:] + response.astype(jnp.float32)
        mixed = jnp.concatenate([x[:m], simulated])
        estimates = jnp.stack(
            [
                jnp.mean(x[:m]),  # M full events alone (detector level)
                jnp.mean(mixed),  # M full + N − M surrogate-simulated
                jnp.mean(z),  # what the mixed set is made of: all N generator z
                jnp.mean(x),  # N full events (scale)
            ]
        )
        return {"theta_hat": Estimate(estimates, code == Result.SUCCESSFUL, code)}

    engine = run_pseudo_experiments(
        run,
        jax.random.key(config.seed),
        config.pseudo_experiments,
        events_per_pseudo_experiment=3 * n,
        progress=progress,
        description="partial pipeline (§7.1)",
        **dict(engine_options or {}),
    )
    summary = engine.outputs["theta_hat"]
    names = ("m_full", "mixed", "full_plus_generator", "n_full")
    fisher = {
        "m_full": m / (s2 + r2),
        "mixed": None,
        "full_plus_generator": n / s2,
        "n_full": n / (s2 + r2),
    }
    view = {name: _information(summary, i) for i, name in enumerate(names)}
    mixed, mixed_err = view["mixed"]
    lower_ok = mixed >= fisher["m_full"] - K_SIGMA * mixed_err
    upper_ok = mixed <= fisher["full_plus_generator"] + K_SIGMA * mixed_err
    payload = {
        "config": dataclasses.asdict(config),
        "datasets": {
            "m_full": f"M = {m} fully simulated events (detector level x)",
            "mixed": (
                f"M full + N − M = {n - m} generator-level events passed through "
                f"the detector surrogate ({type(surrogate).__name__}) trained on the "
                "M responses x − z"
            ),
            "full_plus_generator": (
                "the inputs of the mixed dataset: the M full events (z, x) and the "
                "N − M generator-level events z (data-processing bound)"
            ),
            "n_full": f"N = {n} fully simulated events (for scale)",
        },
        "fisher": fisher,
        "fisher_convention": (
            "exact Fisher information on theta of the whole dataset: M/(s^2+r^2), "
            "N/s^2 (x adds nothing given z), N/(s^2+r^2); the mixed dataset's has no "
            "closed form (training couples its events): its estimator view is given"
        ),
        "information_estimator": {name: view[name][0] for name in names},
        "information_estimator_stderr": {name: view[name][1] for name in names},
        "estimator": "sample mean of the dataset (1/Var over pseudo-experiments)",
        "ordering_holds": bool(lower_ok and upper_ok),
        "ordering": (
            f"I(M full) = {fisher['m_full']:.4g} <= 1/Var(mixed) = {mixed:.4g} ± "
            f"{mixed_err:.2g} <= I(M full + N - M generator level) = "
            f"{fisher['full_plus_generator']:.4g} (within {K_SIGMA:g} standard "
            f"errors); N full events: {fisher['n_full']:.4g}"
        ),
        "failures": int(summary["failures"].max()),
        "failures_by_result": result_counts(summary["failures_by_result"].max(axis=1)),
    }
    return PartialPipelineResult(**payload)
