"""Bootstrap and KDE surrogates: bandwidth rules against their formulas and scipy,
densities against scipy, sampling moments against closed forms, and the bootstrap's
closed-form variance of the sample mean through the ensemble study."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, stats

from jaxunc.estimators import FitResult
from jaxunc.models import Exponential, Gaussian
from jaxunc.results import Result
from jaxunc.studies.ensemble import EnsembleConfig, run_ensemble
from jaxunc.surrogates import KDE, Bootstrap, IdealFit, base
from jaxunc.surrogates.kde import LCV_GRID, bandwidth_factor, lcv_grid, lcv_scores

K_SIGMA = 4.0


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("rule", ["scott", "silverman"])
def test_kde_bandwidth_rule_matches_formula_and_scipy(x64, key, rule, d):
    n = 57
    shape = (n,) if d == 1 else (n, d)
    data = jax.random.normal(key, shape, jnp.float64) * 2.0 + 1.0
    params = KDE(rule=rule).fit(None, data)
    formula = (
        n ** (-1 / (d + 4)) if rule == "scott" else (n * (d + 2) / 4) ** (-1 / (d + 4))
    )
    assert float(params.factor) == pytest.approx(formula, rel=1e-14)
    reference = stats.gaussian_kde(np.asarray(data).T, bw_method=rule)
    assert reference.factor == pytest.approx(formula, rel=1e-14)
    kernel = np.asarray(params.cholesky @ params.cholesky.T)
    np.testing.assert_allclose(kernel, np.atleast_2d(reference.covariance), rtol=1e-12)
    # In 1-D the kernel standard deviation is the factor times the sample std.
    if d == 1:
        assert math.sqrt(kernel[0, 0]) == pytest.approx(
            formula * float(jnp.std(data, ddof=1)), rel=1e-12
        )


@pytest.mark.parametrize("d", [1, 2])
def test_kde_log_prob_matches_scipy(x64, key, d):
    data_key, x_key = jax.random.split(key)
    shape = (40,) if d == 1 else (40, d)
    data = jax.random.normal(data_key, shape, jnp.float64)
    x = 1.5 * jax.random.normal(x_key, (25,) if d == 1 else (25, d), jnp.float64)
    kde = KDE(bandwidth=0.4)
    ours = np.asarray(kde.log_prob(x, kde.fit(None, data)))
    reference = stats.gaussian_kde(np.asarray(data).T, bw_method=0.4)
    np.testing.assert_allclose(ours, reference.logpdf(np.asarray(x).T), rtol=1e-12)


def test_kde_sample_moments(x64, key):
    """Generated events have mean x̄ and variance s_n² + h² s² (s_n: ddof 0)."""
    data_key, sample_key = jax.random.split(key)
    data = jax.random.normal(data_key, (30,), jnp.float64)
    kde = KDE()
    params = kde.fit(None, data)
    n = 400_000
    x = np.asarray(kde.sample(sample_key, params, n))
    s2 = float(jnp.var(data, ddof=1))
    variance = float(jnp.var(data)) + float(params.factor) ** 2 * s2
    assert abs(x.mean() - float(jnp.mean(data))) < K_SIGMA * math.sqrt(variance / n)
    # Var of the sample variance of (nearly Gaussian) events: ≈ 2σ⁴/n, slack for
    # the excess kurtosis of the mixture: use the measured fourth moment.
    fourth = np.mean((x - x.mean()) ** 4)
    assert abs(x.var() - variance) < K_SIGMA * math.sqrt((fourth - variance**2) / n)


def test_kde_vmaps_and_reports_bad_inputs(key):
    data = jax.random.normal(key, (4, 20))
    params = jax.vmap(KDE().fit, in_axes=(None, 0))(None, data)
    assert params.cholesky.shape == (4, 1, 1)
    with pytest.raises(ValueError, match="rule"):
        KDE(rule="gauss")
    with pytest.raises(ValueError, match="bandwidth"):
        KDE(bandwidth=-1.0)
    with pytest.raises(ValueError, match="bandwidth"):
        KDE(bandwidth=float("nan"))
    with pytest.raises(ValueError, match="n_train >= 2"):
        KDE().fit(None, jnp.ones((1,)))
    with pytest.raises(ValueError, match="rule"):
        bandwidth_factor("other", 10, 1)
    assert not bool(KDE().fit_converged(KDE().fit(None, jnp.ones((5,)))))


def _leave_one_out(data: np.ndarray, factor: float) -> float:
    """NumPy/scipy leave-one-out log-likelihood of a 1-D Gaussian KDE with kernel
    standard deviation ``factor · s`` (s: sample std, ddof 1), every copy of an
    event left out with it."""
    s = data.std(ddof=1)
    distance = data[:, None] - data[None, :]
    kernel = stats.norm.pdf(distance, scale=factor * s)
    kernel[distance == 0] = 0.0
    others = np.sum(distance != 0, axis=1)
    return float(np.sum(np.log(kernel.sum(axis=1) / others)))


def _samples(key):
    """A Gaussian and a camel back (two unit modes at ∓4) of 100 events, and a
    bootstrap replica of the Gaussian (ties)."""
    a, b, c = jax.random.split(key, 3)
    gaussian = jax.random.normal(a, (100,), jnp.float64)
    camel = jax.random.normal(b, (100,), jnp.float64) + jnp.where(
        jnp.arange(100) < 50, -4.0, 4.0
    )
    replica = gaussian[jax.random.randint(c, (100,), 0, 100)]
    return {"gaussian": gaussian, "camelback": camel, "replica": replica}


def test_kde_lcv_maximises_the_leave_one_out_likelihood(x64, key):
    """``rule="lcv"``: the scores are the leave-one-out log-likelihood (against a
    NumPy/scipy evaluation, up to the h-free constant), and the chosen factor is
    within one grid step of scipy's continuous maximiser and no worse than the best
    grid point.  It sees two modes: on the camel back it is below Scott's / 2 (the
    width of one mode), on the Gaussian within a factor 2 of Scott's."""
    scott = bandwidth_factor("scott", 100, 1)
    grid = np.asarray(lcv_grid(100, 1))
    step = math.log(grid[1] / grid[0])
    fits = jax.jit(jax.vmap(KDE(bandwidth="lcv").fit, in_axes=(None, 0)))
    samples = _samples(key)
    factors = np.asarray(fits(None, jnp.stack(list(samples.values()))).factor)
    for (name, data), factor in zip(samples.items(), factors, strict=True):
        data = np.asarray(data)
        whitened = jnp.asarray((data - data.mean()) / data.std(ddof=1))[:, None]
        ours = np.asarray(lcv_scores(whitened, jnp.asarray(grid[::12])))
        reference = np.array([_leave_one_out(data, h) for h in grid[::12]])
        # the same function up to a constant
        np.testing.assert_allclose(ours - ours[0], reference - reference[0], atol=1e-9)
        best = optimize.minimize_scalar(
            lambda log_h, data=data: -_leave_one_out(data, math.exp(log_h)),
            bounds=(math.log(grid[0]), math.log(grid[-1])),
            method="bounded",
            options={"xatol": 1e-8},
        )
        assert abs(math.log(factor) - best.x) < step, (name, factor, best.x)
        grid_best = max(_leave_one_out(data, h) for h in grid)
        assert _leave_one_out(data, float(factor)) >= grid_best - 1e-9
        assert grid[0] < factor < grid[-1], (name, factor)
    gaussian, camel, replica = factors
    assert camel < scott / 2 < gaussian < 2 * scott
    # ties of a bootstrap replica do not drive the factor to zero
    assert replica > scott / 2
    # a wrong rule fails the same checks: Scott's factor misses the camel back's
    # maximiser by more than a grid step
    assert abs(math.log(scott) - math.log(camel)) > step


def test_kde_bandwidth_selection_and_bad_values():
    """``bandwidth`` takes a rule's name or a number; anything else is an error
    naming the argument and the allowed values."""
    assert KDE(bandwidth="lcv") == KDE(rule="lcv") == KDE()
    assert KDE(bandwidth="silverman").rule == "silverman"
    assert KDE(bandwidth=0.3).bandwidth == 0.3
    assert LCV_GRID >= 3
    for bad in ("sj", True, 0.0, float("inf")):
        with pytest.raises(ValueError, match="bandwidth must be"):
            KDE(bandwidth=bad)


def test_bootstrap_draws_training_events_uniformly(key):
    data = jnp.arange(10, dtype=jnp.float32) * 1.5
    bootstrap = Bootstrap()
    params = bootstrap.fit(None, data)
    n = 100_000
    x = np.asarray(bootstrap.sample(key, params, n))
    values, counts = np.unique(x, return_counts=True)
    np.testing.assert_array_equal(values, np.asarray(data))
    p = 1 / 10
    assert np.all(np.abs(counts - n * p) < K_SIGMA * math.sqrt(n * p * (1 - p)))
    vectors = jnp.arange(12.0).reshape(6, 2)
    drawn = np.asarray(bootstrap.sample(key, bootstrap.fit(None, vectors), 50))
    assert all(
        any(np.array_equal(row, v) for v in np.asarray(vectors)) for row in drawn
    )
    with pytest.raises(ValueError, match="n_train"):
        bootstrap.fit(None, jnp.zeros((0,)))


def test_bootstrap_sample_mean_variance_closed_form(x64):
    """Var(x̄_gen) = σ²/n_train + E[s_n²]/n_gen = σ²/n_train (1 + (n_train-1)/n_gen):
    the training mean's spread plus the resampling spread (E[s_n²] = σ²(n-1)/n)."""
    n_train, n_gen = 20, (4, 4000)
    config = EnsembleConfig(
        model="gaussian",
        surrogate="bootstrap",
        ensemble_size=1024,
        n_train=n_train,
        n_gen=n_gen,
        precision="float64",
        seed=3,
    )
    payload = run_ensemble(config, progress=False).to_json()
    sigma = config.spec.theta["sigma"]
    for i, n in enumerate(n_gen):
        predicted = sigma**2 / n_train * (1 + (n_train - 1) / n)
        std = payload["estimate_std"]["sample_mean"][i]
        error = 2 * std * payload["estimate_std_stderr"]["sample_mean"][i]
        assert abs(std**2 - predicted) < K_SIGMA * error, (n, std**2, predicted)
    # The truth reference at n_gen: σ²/n_gen.
    for i, n in enumerate(n_gen):
        std = payload["truth_std"]["sample_mean"][i]
        error = 2 * std * payload["truth_std_stderr"]["sample_mean"][i]
        assert abs(std**2 - sigma**2 / n) < K_SIGMA * error


def test_protocol_min_train_and_fit_result(key):
    """Each built-in surrogate's ``min_train`` and ``fit_result`` through the
    protocol functions: successful fits give 0; a KDE of identical events (singular
    covariance, no bandwidth) gives ``nonfinite_value``; an ideal fit that cannot
    converge (NaN data) gives the ``FitResult``'s failure code; the bootstrap
    cannot fail (default: successful)."""
    gaussian = Gaussian()
    data = gaussian.sample(key, {"mu": 0.0, "sigma": 1.0}, 50)
    kde = KDE()
    assert base.min_train(kde) == 2
    assert int(base.fit_result(kde, kde.fit(None, data))) == Result.SUCCESSFUL
    constant = kde.fit(None, jnp.ones((5,)))
    assert int(base.fit_result(kde, constant)) == Result.NONFINITE_VALUE
    assert int(jax.jit(kde.fit_result)(constant)) == Result.NONFINITE_VALUE

    bootstrap = Bootstrap()
    assert base.min_train(bootstrap) == 1
    assert int(base.fit_result(bootstrap, bootstrap.fit(None, data))) == 0

    reference = {"mu": 0.0, "sigma": 1.0}
    both = IdealFit(gaussian, reference, ("mu", "sigma"))
    assert base.min_train(both) == 2
    assert base.min_train(IdealFit(gaussian, reference, ("mu",), ddof=1)) == 2
    assert base.min_train(IdealFit(gaussian, reference, ("mu",))) == 1
    assert int(base.fit_result(both, both.fit(None, data))) == Result.SUCCESSFUL
    newton = IdealFit(Exponential(), {"rate": 1.0}, ("rate",), use_closed_form=False)
    positive = Exponential().sample(key, {"rate": 2.0}, 50)
    fit = jax.jit(newton.fit)
    assert int(base.fit_result(newton, fit(None, positive))) == Result.SUCCESSFUL
    for surrogate, events, expected in (
        (both, data, Result.NONFINITE_VALUE),  # closed form: NaN estimates
        (newton, positive, Result.NONFINITE_START),  # -log L is NaN at the start
    ):
        failed = jax.jit(surrogate.fit)(None, events.at[0].set(jnp.nan))
        assert int(base.fit_result(surrogate, failed)) == expected
        assert not bool(surrogate.fit_converged(failed))
    # the code is the FitResult's own result
    stalled = FitResult(
        theta={"mu": jnp.float32(0.0), "sigma": jnp.float32(1.0)},
        converged=jnp.bool_(False),
        iterations=jnp.int32(3),
        negative_log_likelihood=jnp.float32(0.0),
        result=jnp.int32(Result.STALLED),
    )
    assert int(both.fit_result(stalled)) == Result.STALLED
