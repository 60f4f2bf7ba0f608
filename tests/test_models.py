"""Built-in models against scipy (float64) and their parameter checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxunc import Exponential, Gaussian, check_params, model_from_functions

N_EVENTS = 200_000
K_SIGMA = 5.0


def test_gaussian_log_prob_matches_scipy(x64):
    x = jnp.linspace(-4.0, 7.0, 101)
    theta = {"mu": jnp.float64(1.3), "sigma": jnp.float64(2.1)}
    expected = stats.norm(1.3, 2.1).logpdf(np.asarray(x))
    np.testing.assert_allclose(Gaussian().log_prob(x, theta), expected, rtol=1e-13)


def test_exponential_log_prob_matches_scipy(x64):
    x = jnp.linspace(-1.0, 9.0, 101)
    theta = {"rate": jnp.float64(0.7)}
    expected = stats.expon(scale=1 / 0.7).logpdf(np.asarray(x))
    got = np.asarray(Exponential().log_prob(x, theta))
    np.testing.assert_allclose(got[x >= 0], expected[x >= 0], rtol=1e-13)
    assert np.all(np.isneginf(got[x < 0]))


def _check_mean_and_variance(x, mean, variance, fourth_central):
    """Sample mean and variance within K_SIGMA standard errors of the truth."""
    n = len(x)
    assert abs(x.mean() - mean) < K_SIGMA * np.sqrt(variance / n)
    var_stderr = np.sqrt((fourth_central - variance**2) / n)
    assert abs(x.var() - variance) < K_SIGMA * var_stderr


def test_gaussian_sample_moments(key):
    theta = {"mu": jnp.float32(-2.0), "sigma": jnp.float32(0.5)}
    x = np.asarray(Gaussian().sample(key, theta, N_EVENTS), np.float64)
    assert x.dtype == np.float64 and x.shape == (N_EVENTS,)
    _check_mean_and_variance(x, -2.0, 0.25, 3 * 0.25**2)


def test_exponential_sample_moments(key):
    rate = 2.5
    x = np.asarray(
        Exponential().sample(key, {"rate": jnp.float32(rate)}, N_EVENTS), np.float64
    )
    assert np.all(x >= 0)
    _check_mean_and_variance(x, 1 / rate, 1 / rate**2, 9 / rate**4)


def test_sample_dtype_follows_parameters(x64, key):
    theta64 = {"mu": jnp.float64(0.0), "sigma": jnp.float64(1.0)}
    assert Gaussian().sample(key, theta64, 5).dtype == jnp.float64
    theta32 = {"mu": jnp.float32(0.0), "sigma": jnp.float32(1.0)}
    assert Gaussian().sample(key, theta32, 5).dtype == jnp.float32


@pytest.mark.parametrize(
    ("model", "theta", "message"),
    [
        (Gaussian(), {"mu": 0.0, "sigma": 0.0}, "'sigma' must be > 0"),
        (Gaussian(), {"mu": 0.0, "sigma": -1.0}, "'sigma' must be > 0"),
        (Gaussian(), {"mu": float("nan"), "sigma": 1.0}, "must be finite"),
        (Gaussian(), {"mu": 0.0, "sigma": float("inf")}, "must be finite"),
        (Gaussian(), {"mu": 0.0}, "keys ['mu', 'sigma']"),
        (Exponential(), {"rate": 0.0}, "'rate' must be > 0"),
        (Exponential(), {"rate": float("nan")}, "must be finite"),
    ],
)
def test_bad_parameters_are_named(model, theta, message):
    with pytest.raises(
        ValueError, match=message.replace("[", r"\[").replace("]", r"\]")
    ):
        check_params(model, theta)


def test_model_from_functions_requires_callables():
    with pytest.raises(ValueError, match="callables"):
        model_from_functions(None, lambda x, theta: x)


def test_custom_model_check_params_is_used():
    def reject(theta):
        raise ValueError("scale must be > 0")

    model = model_from_functions(
        lambda key, theta, n: jax.random.normal(key, (n,)), lambda x, t: x, reject
    )
    with pytest.raises(ValueError, match="scale"):
        check_params(model, {"scale": -1.0})
