"""Failures by result code in every study's JSON.

Each study runs with a deliberately broken surrogate (or estimator) defined here:
the ideal fit of the Gaussian that *reports* a failed fit (``fit_result``) for the
members whose fitted mean lands on one side of a cut, a trained-like surrogate whose
loss curve is NaN for others, an estimator that reports ``stalled``.  The JSON must
count them under the right code names (``jaxunc.results.RESULT_NAMES``), next to the
plain ``failures``, and a failed fit's code must reach the estimates on its generated
events.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc.estimators import Estimate
from jaxunc.models import Gaussian
from jaxunc.results import Result
from jaxunc.studies.amplification import (
    ContrivedConfig,
    PartialPipelineConfig,
    contrived_amplification,
    partial_pipeline,
)
from jaxunc.studies.ensemble import EnsembleConfig, run_ensemble
from jaxunc.studies.fisher import FisherConfig, run_fisher
from jaxunc.studies.toy import ToyConfig, run_toy
from jaxunc.studies.validate import ValidateConfig, validate_surrogate
from jaxunc.surrogates import IdealFit


@dataclasses.dataclass(frozen=True, eq=False)
class FlakyFit(IdealFit):
    """The ideal fit, reporting ``code`` for every fit whose mean is above ``cut``."""

    cut: float = 0.0
    code: int = Result.SURROGATE_FIT_FAILED

    def fit_result(self, params):
        return jnp.where(
            params.theta["mu"] > self.cut,
            jnp.int32(self.code),
            jnp.int32(Result.SUCCESSFUL),
        )


@dataclasses.dataclass(frozen=True, eq=False)
class FlakyTrained(FlakyFit):
    """``FlakyFit`` with a loss curve that is NaN when the fitted mean is below
    ``nan_below`` (a training that diverged)."""

    nan_below: float = 0.0

    def training_losses(self, params):
        bad = params.theta["mu"] < self.nan_below
        return {"loss": jnp.where(bad, jnp.nan, 1.0) * jnp.ones(4)}


@dataclasses.dataclass(frozen=True)
class StallingMean:
    """The sample mean, reporting ``stalled`` when it is below ``cut``."""

    cut: float = 0.0
    names: tuple[str, ...] = ("mean",)

    def estimate(self, x):
        value = jnp.mean(x, keepdims=True)
        stalled = value[0] < self.cut
        code = jnp.where(stalled, jnp.int32(Result.STALLED), jnp.int32(0))
        return Estimate(value, ~stalled, code)


def _flaky(theta, **changes) -> FlakyFit:
    """``FlakyFit`` of μ and σ, failing above the true μ unless ``cut`` is given."""
    changes = {"cut": float(theta["mu"]), **changes}
    return FlakyFit(Gaussian(), theta, ("mu", "sigma"), **changes)


def _one_name(counts: dict, name: str) -> int:
    """The count under ``name``, the only code reported (a scalar count)."""
    assert set(counts) == {name}, counts
    return counts[name]


def test_toy_reports_failed_fits_by_code(monkeypatch):
    monkeypatch.setattr(ToyConfig, "surrogate", lambda self: _flaky(self.theta))
    result = run_toy(
        ToyConfig(pseudo_experiments=256, n_gen=(10, 100)),
        figures=False,
        progress=False,
    ).to_json()
    surrogate, by_result = result["surrogate"], result["failures_by_result"]
    fit_failures = surrogate["fit_failures"]
    assert 0 < fit_failures < 256
    assert by_result["fit"] == {"surrogate_fit_failed": fit_failures}
    assert surrogate["failures"] == [fit_failures] * 2
    assert by_result["surrogate"] == {"surrogate_fit_failed": [fit_failures] * 2}
    assert result["truth"]["failures"] == [0, 0] and by_result["truth"] == {}


def test_fisher_estimator_view_reports_failed_fits_by_code(monkeypatch):
    monkeypatch.setattr(
        FisherConfig,
        "surrogate_object",
        lambda self: FlakyFit(
            self.model_object(), self.theta_values(), self.free(), cut=self.mu
        ),
    )
    result = run_fisher(
        FisherConfig(
            n_gen=(10,),
            outer=2,
            pseudo_experiments=128,
            simulations=32,
            summaries=("mean",),
            importance_sampling="off",
        ),
        progress=False,
    ).to_json()
    (failures,) = result["estimator_view"]["failures"]
    assert 0 < failures < 128
    assert result["failures_by_result"] == {
        "estimator_view": {"surrogate_fit_failed": [failures]}
    }


def test_ensemble_reports_fit_and_training_failures_by_code():
    theta = {"mu": 1.0, "sigma": 1.0}
    surrogate = FlakyTrained(
        Gaussian(),
        theta,
        ("mu", "sigma"),
        cut=1.1,
        code=Result.MAX_STEPS_REACHED,
        nan_below=0.9,
    )
    result = run_ensemble(
        EnsembleConfig(
            surrogate=surrogate,
            theta=theta,  # the cuts sit around μ = 1
            ensemble_size=32,
            n_train=30,
            n_gen=(10, 50),
            curves=0,
        ),
        progress=False,
    ).to_json()
    by_result = result["failures_by_result"]
    fit = by_result["fit"]
    assert set(fit) == {"max_steps_reached", "surrogate_fit_failed"}, fit
    assert fit["max_steps_reached"] > 0 and fit["surrogate_fit_failed"] > 0
    assert sum(fit.values()) == result["training"]["fit_failures"] < 32
    assert result["training"]["fit_failures_by_result"] == fit
    for name in ("mle", "sample_mean"):
        generated = by_result["generated"][name]
        assert generated == {code: [count] * 2 for code, count in fit.items()}
        assert result["failures"]["generated"][name] == [sum(fit.values())] * 2
        assert by_result["truth"][name] == {} and by_result["train"][name] == {}


def test_validate_reports_failed_fits_by_code():
    theta = {"mu": np.float32(0.0), "sigma": np.float32(1.0)}
    config = ValidateConfig(
        n_train=30,
        n_required=(100, 1000),
        bins=10,
        pseudo_experiments=128,
        n_quantiles=(5, 10),
        replicas=4,
        protocol_pseudo_experiments=32,
    )
    result = validate_surrogate(
        Gaussian(), theta, _flaky(theta), config, progress=False, figures=False
    ).to_json()
    failures = result["failures"]
    assert failures[0] == failures[1] and 0 < failures[0] < 128
    assert result["failures_by_result"] == {"surrogate_fit_failed": failures}
    assert result["truth"]["failures_by_result"] == {}
    protocol = result["protocol"]
    # one failed fit among the nominal surrogate and its 4 bootstrap replicas fails
    # the pseudo-experiment
    assert 0 < protocol["failures"] <= 32
    assert protocol["failures_by_result"] == {
        "surrogate_fit_failed": protocol["failures"]
    }


def test_contrived_amplification_reports_fit_before_analysis():
    """Fit failures (``surrogate_fit_failed``) take precedence over the analysis's
    own ``stalled``: training precedes estimation."""
    theta = {"mu": np.float32(0.0), "sigma": np.float32(1.0)}
    result = contrived_amplification(
        Gaussian(),
        theta,
        _flaky(theta, cut=0.2),
        StallingMean(cut=-0.4),
        ContrivedConfig(n_train=20, n_gen=200, pseudo_experiments=256),
    ).to_json()
    by_result = result["failures_by_result"]
    assert set(by_result) == {"surrogate_fit_failed", "stalled"}, by_result
    assert sum(by_result.values()) == result["failures"] < 256
    assert min(by_result.values()) > 0


@pytest.mark.parametrize("code", [Result.SURROGATE_FIT_FAILED, Result.STALLED])
def test_partial_pipeline_reports_the_detector_fit_code(code):
    config = PartialPipelineConfig(m_full=10, n_total=50, pseudo_experiments=128)
    reference = {"mu": np.float32(0.0), "sigma": np.float32(config.resolution)}
    surrogate = FlakyFit(Gaussian(), reference, ("mu", "sigma"), cut=0.0, code=code)
    result = partial_pipeline(config, surrogate).to_json()
    name = "surrogate_fit_failed" if code == Result.SURROGATE_FIT_FAILED else "stalled"
    assert 0 < _one_name(result["failures_by_result"], name) == result["failures"]
