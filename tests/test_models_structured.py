"""The structured models: camel back and spectrum.  Normalisation, sampling against
the density, moments, Fisher information (quadrature against Monte Carlo), the MLE,
and bad parameters."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from jaxunc.estimators import MaximumLikelihood
from jaxunc.information import fisher_information
from jaxunc.models import CamelBack, Spectrum, check_params
from jaxunc.studies.registry import model_spec

K_SIGMA = 4.0


def _theta(name: str, dtype=jnp.float64, **changes) -> dict[str, jax.Array]:
    theta = {**model_spec(name).theta, **changes}
    return {k: jnp.asarray(v, dtype) for k, v in theta.items()}


CASES = {
    "camelback": (CamelBack(), {"mu": 0.7}, (-16.0, 18.0), (-3.3, 4.7)),
    "spectrum": (Spectrum(), {"mass": 131.0}, (100.0, 160.0), (131.0,)),
}


def _density(model, theta):
    return lambda x: float(
        np.exp(model.log_prob(jnp.asarray([x], jnp.float64), theta)[0])
    )


@pytest.mark.parametrize("name", CASES)
def test_density_integrates_to_one(x64, name):
    model, changes, (low, high), peaks = CASES[name]
    theta = _theta(name, **changes)
    total, error = integrate.quad(
        _density(model, theta), low, high, points=peaks, limit=200
    )
    assert total == pytest.approx(1.0, abs=max(10 * error, 1e-9))


def test_spectrum_is_zero_outside_its_window(x64):
    theta = _theta("spectrum")
    outside = jnp.asarray([99.0, 160.5, -1e3], jnp.float64)
    assert np.all(np.isneginf(np.asarray(Spectrum().log_prob(outside, theta))))
    x = Spectrum().sample(jax.random.key(1), theta, 10_000)
    assert float(x.min()) >= 100.0 and float(x.max()) <= 160.0


@pytest.mark.parametrize("name", CASES)
def test_samples_follow_the_density(x64, key, name):
    """Kolmogorov-Smirnov test of 4000 samples against the CDF of log_prob
    (cumulative trapezoid on a fine grid; seeded, fails with probability 1e-3)."""
    model, changes, (low, high), _ = CASES[name]
    theta = _theta(name, **changes)
    grid = np.linspace(low, high, 200_001)
    density = np.exp(np.asarray(model.log_prob(jnp.asarray(grid), theta)))
    cdf = integrate.cumulative_trapezoid(density, grid, initial=0.0)
    cdf /= cdf[-1]
    x = np.asarray(model.sample(key, theta, 4000))
    result = stats.kstest(x, lambda t: np.interp(t, grid, cdf))
    assert result.pvalue > 1e-3


def test_camelback_moments(x64, key):
    model, theta = CamelBack(weight=0.3), {"mu": jnp.asarray(0.5, jnp.float64)}
    n = 200_000
    x = np.asarray(model.sample(key, theta, n))
    variance = model.variance()
    assert variance == pytest.approx(1 + 4 * 16 * 0.3 * 0.7)
    assert abs(x.mean() - model.mean(theta)) < K_SIGMA * math.sqrt(variance / n)
    fourth = np.mean((x - x.mean()) ** 4)
    assert abs(x.var() - variance) < K_SIGMA * math.sqrt((fourth - variance**2) / n)


@pytest.mark.parametrize(
    ("name", "params"),
    [("camelback", ("mu",)), ("spectrum", ("mass",)), ("spectrum", ("mass", "width"))],
)
def test_quadrature_fisher_matches_monte_carlo(x64, key, name, params):
    model = CASES[name][0]
    theta = _theta(name)
    exact = model.exact_fisher(theta, params)
    estimate = fisher_information(
        model, theta, key=key, params=params, monte_carlo_events=100_000
    )
    assert np.all(np.abs(exact - estimate.matrix) < K_SIGMA * estimate.stderr + 1e-12)
    assert np.all(np.linalg.eigvalsh(exact) > 0)


@pytest.mark.parametrize("name", CASES)
def test_mle_recovers_the_parameter(x64, key, name):
    """The generic Newton fit on 4000 events lands within K σ of the truth, σ from
    the quadrature Fisher information (Cramér-Rao)."""
    spec = model_spec(name)
    model, changes, _, _ = CASES[name]
    theta = _theta(name, **changes)
    n = 4_000
    x = model.sample(key, theta, n)
    start = _theta(name)  # the registry's point, away from the truth
    estimator = MaximumLikelihood(model, start, (spec.target,))
    estimate = estimator.estimate(x)
    assert bool(estimate.ok)
    fisher = float(model.exact_fisher(theta, (spec.target,))[0, 0])
    error = 1 / math.sqrt(n * fisher)
    assert abs(float(estimate.value[0]) - float(theta[spec.target])) < K_SIGMA * error


def test_float32_sampling_and_density(key):
    for name in CASES:
        model = CASES[name][0]
        theta = _theta(name, jnp.float32)
        x = model.sample(key, theta, 100)
        assert x.dtype == jnp.float32
        assert model.log_prob(x, theta).dtype == jnp.float32
        assert np.all(np.isfinite(np.asarray(model.log_prob(x, theta))))


def test_bad_parameters_are_named():
    spectrum = Spectrum()
    good = dict(model_spec("spectrum").theta)
    check_params(spectrum, good)
    for change, name in [
        ({"mass": 170.0}, "mass"),
        ({"signal_fraction": 1.0}, "signal_fraction"),
        ({"width": 0.0}, "width"),
        ({"decay_length": -2.0}, "decay_length"),
        ({"mass": float("nan")}, "finite"),
    ]:
        with pytest.raises(ValueError, match=name):
            check_params(spectrum, {**good, **change})
    with pytest.raises(ValueError, match="keys"):
        check_params(spectrum, {"mass": 125.0})
    with pytest.raises(ValueError, match="keys"):
        check_params(CamelBack(), {"mu": 0.0, "sigma": 1.0})
    with pytest.raises(ValueError, match="weight"):
        CamelBack(weight=1.0)
    with pytest.raises(ValueError, match="width"):
        CamelBack(width=-1.0)
    with pytest.raises(ValueError, match="x_min"):
        Spectrum(x_min=200.0)
