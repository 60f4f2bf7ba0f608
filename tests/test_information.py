"""Fisher information: Monte Carlo estimators against closed forms (float64), the
generated-data Fisher information against the exact linear-Gaussian answer."""

from __future__ import annotations

import itertools
import math
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc import (
    Chain,
    Exponential,
    Gaussian,
    IdealFit,
    LowEffectiveSampleSize,
    SampleMean,
    exact_fisher_information,
    fisher_information,
    generated_fisher_information,
    information_from_spread,
    linear_gaussian_generated_fisher,
    model_from_functions,
    run_chain,
)
from jaxunc.errors import InvalidArgument
from jaxunc.information import (
    METHODS,
    gaussian_kl_divergence,
    gaussian_mean_mutual_information,
    generated_kl_divergence,
    generated_log_likelihoods,
    kl_divergence,
    loewner_check,
    mutual_information,
)

K_SIGMA = 4.0


def assert_matrix_within(estimate, exact, k=K_SIGMA):
    """Every entry within k standard errors (an exact match where stderr is 0)."""
    tolerance = k * estimate.stderr + 1e-12 * np.abs(exact).max()
    assert np.all(np.abs(estimate.matrix - exact) <= tolerance), (
        estimate.method,
        estimate.matrix,
        exact,
        estimate.stderr,
    )


def log_normal_model():
    """A user model defined only here: log x ~ N(m, s²); I = diag(1/s², 2/s²)."""

    def sample(key, theta, n):
        z = jax.random.normal(key, (n,), jnp.result_type(theta["m"]))
        return jnp.exp(theta["m"] + theta["s"] * z)

    def log_prob(x, theta):
        z = (jnp.log(x) - theta["m"]) / theta["s"]
        return -0.5 * z * z - jnp.log(theta["s"] * x) - 0.5 * math.log(2 * math.pi)

    return model_from_functions(sample, log_prob)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("params", [("mu",), ("mu", "sigma")])
def test_gaussian_fisher_matches_closed_form(method, params, x64, key):
    theta = {"mu": jnp.float64(0.7), "sigma": jnp.float64(1.8)}
    estimate = fisher_information(
        Gaussian(), theta, 25, key=key, method=method, params=params
    )
    exact = exact_fisher_information(Gaussian(), theta, 25, params)
    diagonal = {"mu": 25 / 1.8**2, "sigma": 2 * 25 / 1.8**2}
    np.testing.assert_allclose(exact.matrix, np.diag([diagonal[p] for p in params]))
    assert estimate.method == method and estimate.params == params
    assert estimate.matrix.shape == (len(params), len(params))
    assert_matrix_within(estimate, exact.matrix)


@pytest.mark.parametrize("method", METHODS)
def test_exponential_fisher_matches_closed_form(method, x64, key):
    theta = {"rate": jnp.float64(2.5)}
    estimate = fisher_information(Exponential(), theta, 10, key=key, method=method)
    assert_matrix_within(estimate, np.array([[10 / 2.5**2]]))


def test_both_estimators_agree_for_a_user_model(x64, key):
    model = log_normal_model()
    theta = {"m": jnp.float64(0.2), "s": jnp.float64(0.6)}
    outer = fisher_information(model, theta, key=key, method="score_outer_product")
    hessian = fisher_information(model, theta, key=key, method="negative_hessian")
    assert exact_fisher_information(model, theta) is None
    exact = np.diag([1 / 0.6**2, 2 / 0.6**2])
    assert_matrix_within(outer, exact)
    assert_matrix_within(hessian, exact)
    combined = np.sqrt(outer.stderr**2 + hessian.stderr**2)
    assert np.all(np.abs(outer.matrix - hessian.matrix) <= K_SIGMA * combined + 1e-12)


def test_float32_fisher_is_close(key):
    theta = {"mu": jnp.float32(0.0), "sigma": jnp.float32(1.0)}
    estimate = fisher_information(Gaussian(), theta, key=key, params=("sigma",))
    assert_matrix_within(estimate, np.array([[2.0]]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "observed"}, "method must be one of"),
        ({"params": ("nope",)}, "params: must name distinct parameters"),
        ({"n_events": 0}, "n_events: must be a positive integer"),
        ({"monte_carlo_events": 0}, "monte_carlo_events: must be a positive integer"),
    ],
)
def test_fisher_rejects_bad_input(kwargs, message, key):
    with pytest.raises(ValueError, match=message):
        fisher_information(Gaussian(), {"mu": 0.0, "sigma": 1.0}, key=key, **kwargs)


def test_linear_gaussian_exact_form_approaches_training_from_below():
    n_train, sigma = 100, 1.5
    training = n_train / sigma**2
    values = [
        linear_gaussian_generated_fisher(sigma, n_train, n) for n in (1, 10, 1e3, 1e6)
    ]
    assert all(v < training for v in values)
    assert all(a < b for a, b in itertools.pairwise(values))
    assert values[-1] == pytest.approx(training, rel=1e-3)
    assert values[0] == pytest.approx(1 / (sigma**2 * (1 + 1 / n_train)))


@pytest.mark.parametrize("n_gen", [10, 300])
def test_generated_fisher_matches_linear_gaussian(n_gen, x64, key):
    """The general importance-sampling method against the exact multivariate normal."""
    theta = {"mu": jnp.float64(0.3), "sigma": jnp.float64(1.2)}
    n_train = 50
    surrogate = IdealFit(Gaussian(), theta, ("mu",))
    estimate = generated_fisher_information(
        Gaussian(),
        theta,
        surrogate,
        n_train,
        n_gen,
        key=key,
        params=("mu",),
        outer=512,
        proposals=512,
    )
    exact = linear_gaussian_generated_fisher(1.2, n_train, n_gen)
    assert estimate.effective_sample_size > 30
    assert abs(estimate.matrix[0, 0] - exact) < K_SIGMA * estimate.stderr[0, 0]
    # and the data processing inequality, I_gen ≤ I_train, within errors
    assert estimate.matrix[0, 0] < n_train / 1.2**2 + K_SIGMA * estimate.stderr[0, 0]


def test_estimator_view_matches_exact_generated_fisher(key):
    """1/Var of the sample mean of D_gen (efficient here) is the exact I_gen."""
    theta = {"mu": np.float32(0.0), "sigma": np.float32(1.0)}
    surrogate = IdealFit(Gaussian(), theta, ("mu",))
    n_gen = (20, 100, 2000)
    chain = Chain(Gaussian(), theta, surrogate, SampleMean(), 100, n_gen)
    out = run_chain(chain, key, 20_000, progress=False).outputs["surrogate"]
    information, stderr = information_from_spread(
        out["std"][:, 0], out["std_stderr"][:, 0]
    )
    exact = [linear_gaussian_generated_fisher(1.0, 100, n) for n in n_gen]
    assert np.all(np.abs(information - exact) < K_SIGMA * stderr)


def test_low_effective_sample_size_warns(key):
    theta = {"mu": jnp.float32(0.0), "sigma": jnp.float32(1.0)}
    surrogate = IdealFit(Gaussian(), theta, ("mu",))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimate = generated_fisher_information(
            Gaussian(), theta, surrogate, 10, 20_000, key=key, outer=8, proposals=16
        )
    assert any(issubclass(w.category, LowEffectiveSampleSize) for w in caught)
    assert estimate.effective_sample_size < 30


def test_generated_fisher_needs_a_density(key):
    class NoDensity:
        def fit(self, key, data):
            return data.mean()

        def sample(self, key, params, n):
            return params + jax.random.normal(key, (n,))

    with pytest.raises(ValueError, match="no log_prob"):
        generated_fisher_information(
            Gaussian(), {"mu": 0.0, "sigma": 1.0}, NoDensity(), 10, 10, key=key
        )


# ------------------------------------------------------------------ sufficient stats


@pytest.mark.parametrize("model_name", ["gaussian", "exponential"])
def test_log_likelihood_from_statistics_equals_sum_of_log_prob(model_name, x64, key):
    if model_name == "gaussian":
        model, theta = Gaussian(), {"mu": jnp.float64(0.4), "sigma": jnp.float64(1.3)}
        x = 2.0 * jax.random.normal(key, (257,), jnp.float64) + 1.0
    else:
        model, theta = Exponential(), {"rate": jnp.float64(0.8)}
        x = jax.random.exponential(key, (257,), jnp.float64) * 2.0
    statistics = model.sufficient_statistics(x)
    total = model.log_likelihood_from_statistics(statistics, theta)
    np.testing.assert_allclose(total, jnp.sum(model.log_prob(x, theta)), rtol=1e-12)


def test_weights_by_statistics_and_by_events_agree(x64, key):
    theta = {"mu": jnp.float64(0.0), "sigma": jnp.float64(1.0)}
    surrogate = IdealFit(Gaussian(), theta, ("mu", "sigma"))
    data = jax.random.normal(key, (6, 40), jnp.float64)
    fits = jax.vmap(lambda x: surrogate.fit(None, x))(data)
    generated = jax.random.normal(jax.random.fold_in(key, 1), (300,), jnp.float64)
    fast = generated_log_likelihoods(surrogate)(generated, fits)

    class EventsOnly:
        log_prob = staticmethod(surrogate.log_prob)

    slow = generated_log_likelihoods(EventsOnly())(generated, fits)
    np.testing.assert_allclose(fast, slow, rtol=1e-11)


# ------------------------------------------------------------------- KL divergence


def test_kl_divergence_of_training_data(x64, key):
    theta0 = {"mu": jnp.float64(0.0), "sigma": jnp.float64(1.0)}
    theta1 = {"mu": jnp.float64(0.3), "sigma": jnp.float64(1.4)}
    estimate = kl_divergence(Gaussian(), theta0, theta1, 50, key=key)
    exact = 50 * gaussian_kl_divergence(theta0, theta1)
    assert estimate.method == "monte_carlo"
    assert abs(estimate.value - exact) < K_SIGMA * estimate.stderr
    rate0, rate1 = 2.0, 2.6
    estimate = kl_divergence(
        Exponential(), {"rate": rate0}, {"rate": rate1}, 20, key=key
    )
    ratio = rate1 / rate0
    assert abs(estimate.value - 20 * (ratio - 1 - math.log(ratio))) < (
        K_SIGMA * estimate.stderr
    )


@pytest.mark.parametrize("n_gen", [10, 1000])
def test_generated_kl_matches_linear_gaussian(n_gen, x64, key):
    """D_gen ~ MVN(μ1, σ²(I + 11ᵀ/n)): KL = ½ Δμ² I_gen(N)."""
    theta0 = {"mu": jnp.float64(0.0), "sigma": jnp.float64(1.0)}
    theta1 = {"mu": jnp.float64(0.15), "sigma": jnp.float64(1.0)}
    surrogate = IdealFit(Gaussian(), theta0, ("mu",))
    estimate = generated_kl_divergence(
        Gaussian(),
        theta0,
        theta1,
        surrogate,
        100,
        n_gen,
        key=key,
        outer=512,
        proposals=2**16,
    )
    exact = 0.5 * 0.15**2 * linear_gaussian_generated_fisher(1.0, 100, n_gen)
    assert estimate.effective_sample_size > 100
    assert abs(estimate.value - exact) < K_SIGMA * estimate.stderr
    train = 100 * gaussian_kl_divergence(theta0, theta1)
    assert estimate.value < train + K_SIGMA * estimate.stderr


# --------------------------------------------------------------- mutual information


def _mu_prior(width):
    def sample(k):
        return {
            "mu": width * jax.random.normal(k, (), jnp.float64),
            "sigma": jnp.float64(1.0),
        }

    return sample


def test_mutual_information_of_training_data(x64, key):
    estimate = mutual_information(Gaussian(), _mu_prior(0.4), 50, key=key, outer=1024)
    exact = gaussian_mean_mutual_information(0.4, 1.0, 50)
    assert abs(estimate.value - exact) < K_SIGMA * estimate.stderr


@pytest.mark.parametrize("n_gen", [10, 300])
def test_generated_mutual_information_matches_linear_gaussian(n_gen, x64, key):
    theta = {"mu": jnp.float64(0.0), "sigma": jnp.float64(1.0)}
    surrogate = IdealFit(Gaussian(), theta, ("mu",))
    estimate = mutual_information(
        Gaussian(),
        _mu_prior(0.4),
        50,
        key=key,
        surrogate=surrogate,
        n_gen=n_gen,
        outer=256,
        proposals=4096,
        inner=2**15,
    )
    exact = gaussian_mean_mutual_information(0.4, 1.0, 50, n_gen)
    assert estimate.effective_sample_size > 100
    assert abs(estimate.value - exact) < K_SIGMA * estimate.stderr
    assert exact < gaussian_mean_mutual_information(0.4, 1.0, 50)


def test_mutual_information_needs_n_gen_with_a_surrogate(key):
    surrogate = IdealFit(Gaussian(), {"mu": 0.0, "sigma": 1.0}, ("mu",))
    with pytest.raises(ValueError, match="n_gen is required"):
        mutual_information(Gaussian(), _mu_prior(1.0), 10, key=key, surrogate=surrogate)


# ------------------------------------------------------------------ Loewner check


def test_loewner_check_margin_and_significance():
    train = np.diag([4.0, 2.0])
    generated = np.array([[3.0, 0.5], [0.5, 1.5]])
    zero = np.zeros((2, 2))
    check = loewner_check(train, zero, generated, np.full((2, 2), 0.1))
    expected = np.linalg.eigvalsh(train - generated)[0]
    assert check.margin == pytest.approx(expected)
    assert check.holds and check.margin_sigma > 0
    violated = loewner_check(train, zero, np.diag([4.5, 1.0]), np.full((2, 2), 0.1))
    assert violated.margin == pytest.approx(-0.5)
    assert violated.margin_sigma == pytest.approx(-0.5 / 0.1)
    assert not violated.holds
    within = loewner_check(train, zero, np.diag([4.2, 1.0]), np.full((2, 2), 0.1))
    assert within.margin < 0 and within.holds  # -2σ: within 3σ


# ------------------------------------------------------------ θ as any pytree


SIGMA_KNOWN = 1.5


def scalar_location_model():
    """A user model whose θ is a bare scalar: x ~ N(θ, 1.5²); I = n/1.5²."""

    def sample(key, theta, n):
        dtype = jnp.result_type(theta)
        return theta + SIGMA_KNOWN * jax.random.normal(key, (n,), dtype)

    def log_prob(x, theta):
        z = (x - theta) / SIGMA_KNOWN
        return -0.5 * z * z - math.log(SIGMA_KNOWN * math.sqrt(2 * math.pi))

    return model_from_functions(sample, log_prob)


def scalar_rate_model():
    """Exponential with a scalar rate θ: −∇² log p = 1/θ² exactly, E[s²] = 1/θ²."""

    def sample(key, theta, n):
        return jax.random.exponential(key, (n,), jnp.result_type(theta)) / theta

    def log_prob(x, theta):
        return jnp.log(theta) - theta * x

    return model_from_functions(sample, log_prob)


class MeanFit:
    """Ideal-like surrogate for the scalar location model: fits the mean, samples
    N(mean, 1.5²); its log density makes D_gen's likelihood tractable."""

    def fit(self, key, data):
        return jnp.mean(data)

    def sample(self, key, params, n):
        return params + SIGMA_KNOWN * jax.random.normal(key, (n,), params.dtype)

    def log_prob(self, x, params):
        z = (x - params) / SIGMA_KNOWN
        return -0.5 * z * z - math.log(SIGMA_KNOWN * math.sqrt(2 * math.pi))


@pytest.mark.parametrize("method", METHODS)
def test_fisher_information_of_a_scalar_theta(method, x64, key):
    """``fisher_information(model, jnp.asarray(2.0), 300, ...)`` for a one-parameter
    user model: labelled "theta", against the closed form 300/θ²."""
    theta = jnp.asarray(2.0)
    estimate = fisher_information(
        scalar_rate_model(), theta, 300, key=key, method=method
    )
    assert estimate.params == ("theta",)
    assert estimate.matrix.shape == (1, 1)
    assert_matrix_within(estimate, np.array([[300 / 2.0**2]]))
    if method == "negative_hessian":  # constant Hessian: exact up to rounding
        assert estimate.matrix[0, 0] == pytest.approx(75.0, rel=1e-12)
    selected = fisher_information(
        scalar_rate_model(), theta, 300, key=key, method=method, params="theta"
    )
    np.testing.assert_array_equal(selected.matrix, estimate.matrix)


def test_fisher_information_of_array_and_namedtuple_theta(x64, key):
    """θ as an array (components "theta[0]", "theta[1]") and as a NamedTuple
    (field names): the Gaussian's diag(1/σ², 2/σ²), any selection and order."""

    class Params(NamedTuple):
        mu: jax.Array
        sigma: jax.Array

    def sample(key, theta, n):
        mu, sigma = theta
        return mu + sigma * jax.random.normal(key, (n,), jnp.result_type(mu))

    def log_prob(x, theta):
        mu, sigma = theta
        z = (x - mu) / sigma
        return -0.5 * z * z - jnp.log(sigma) - 0.5 * math.log(2 * math.pi)

    model = model_from_functions(sample, log_prob)
    sigma = 1.3
    exact = {"mu": 1 / sigma**2, "sigma": 2 / sigma**2}
    cases = [
        (jnp.array([0.5, sigma]), ("theta[1]", "theta[0]"), ("sigma", "mu")),
        (Params(jnp.float64(0.5), jnp.float64(sigma)), ("sigma",), ("sigma",)),
        (Params(jnp.float64(0.5), jnp.float64(sigma)), None, ("mu", "sigma")),
    ]
    for theta, params, meaning in cases:
        estimate = fisher_information(
            model, theta, 10, key=key, params=params, monte_carlo_events=50_000
        )
        expected_names = params if params is not None else ("mu", "sigma")
        assert estimate.params == expected_names
        assert_matrix_within(estimate, 10 * np.diag([exact[name] for name in meaning]))


def test_unknown_or_repeated_params_of_a_pytree_theta_are_rejected(key):
    for params in (("mu",), ("theta", "theta"), ()):
        with pytest.raises(InvalidArgument, match="params: must name") as error:
            fisher_information(
                scalar_rate_model(), jnp.asarray(2.0), key=key, params=params
            )
        assert error.value.argument == "params"


def test_kl_and_generated_fisher_of_a_scalar_theta(x64, key):
    """KL between two scalar θ (closed form n Δ²/(2σ²)) and I_gen of the mean fit
    (the exact linear-Gaussian answer), for a user model with a bare-scalar θ."""
    model = scalar_location_model()
    theta0, theta1 = jnp.asarray(0.2), jnp.asarray(0.5)
    kl = kl_divergence(model, theta0, theta1, 20, key=key, monte_carlo_events=20_000)
    exact_kl = 20 * 0.3**2 / (2 * SIGMA_KNOWN**2)
    assert abs(kl.value - exact_kl) < K_SIGMA * kl.stderr
    estimate = generated_fisher_information(
        model, theta0, MeanFit(), 20, 30, key=key, outer=128, proposals=256
    )
    assert estimate.params == ("theta",)
    exact = linear_gaussian_generated_fisher(SIGMA_KNOWN, 20, 30)
    assert abs(estimate.matrix[0, 0] - exact) < K_SIGMA * estimate.stderr[0, 0]
    check = loewner_check(
        20 / SIGMA_KNOWN**2, 0.0, estimate.matrix, estimate.stderr, K_SIGMA
    )
    assert check.holds
    # the wrong way round (I_train below I_gen by far) is violated
    assert not loewner_check(estimate.matrix[0, 0] / 2, 0.0, 20.0, 0.01).holds


def test_run_chain_with_a_scalar_theta(key):
    """The engine with a bare-scalar θ and the mean-fit surrogate: true events'
    spread σ/√n_gen, generated events' √(σ²/n_train + σ²/n_gen)."""
    n_train, n_gen = 40, (10, 400)
    chain = Chain(
        scalar_location_model(),
        jnp.float32(1.0),
        MeanFit(),
        SampleMean(),
        n_train,
        n_gen,
    )
    result = run_chain(chain, key, 2048, progress=False)
    sizes = np.asarray(n_gen, np.float64)
    expected = {
        "truth": SIGMA_KNOWN / np.sqrt(sizes),
        "surrogate": SIGMA_KNOWN * np.sqrt(1 / n_train + 1 / sizes),
    }
    for name, std in expected.items():
        output = result.outputs[name]
        assert np.all(output["failures"] == 0)
        assert np.all(
            np.abs(output["std"][:, 0] - std) < K_SIGMA * output["std_stderr"][:, 0]
        ), (name, output["std"][:, 0], std)
