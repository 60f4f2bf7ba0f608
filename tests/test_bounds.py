"""Lower bounds Jᵀ C⁻¹ J on the information of generated data (jaxunc.bounds)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxunc
from jaxunc import bounds
from jaxunc.errors import InvalidArgument
from jaxunc.information import linear_gaussian_generated_fisher

N_TRAIN = 50
SIMULATIONS = 1024
K_SIGMA = 3.0


def gaussian_theta():
    return {"mu": jnp.asarray(0.0), "sigma": jnp.asarray(1.0)}


def mean_only_fit(theta):
    return jaxunc.IdealFit(jaxunc.Gaussian(), theta, ("mu",))


@pytest.mark.parametrize("n_gen", [20, 500])
def test_sample_mean_bound_of_the_mean_only_fit_is_the_exact_information(x64, n_gen):
    """The generated sample mean is sufficient for μ under the mean-only ideal fit,
    so its bound is I_gen = nN/(σ²(n+N)) exactly; both routes agree with it."""
    theta = gaussian_theta()
    sims = bounds.simulate_summaries(
        jaxunc.Gaussian(),
        mean_only_fit(theta),
        theta,
        N_TRAIN,
        n_gen,
        bounds.mean_summary(),
        key=jax.random.key(20261201),
        simulations=SIMULATIONS,
        params=("mu",),
    )
    exact = linear_gaussian_generated_fisher(1.0, N_TRAIN, n_gen)
    # d mean(D_gen)/dμ = 1 draw by draw: the pathwise Jacobian has no noise at all.
    np.testing.assert_allclose(sims.jacobians, 1.0, rtol=1e-12)
    for jacobians in (sims.jacobians, None):
        estimate = bounds.summary_bound(sims.values, sims.scores, jacobians)
        pull = (estimate.matrix[0, 0] - exact) / estimate.stderr[0, 0]
        assert abs(pull) < K_SIGMA, (estimate.route, estimate.matrix, exact)
        # The jackknife error is that of 1/Var with M draws: √(2/M) relative.
        relative = estimate.stderr[0, 0] / estimate.matrix[0, 0]
        assert (
            0.5 * math.sqrt(2 / SIMULATIONS) < relative < 4 * math.sqrt(2 / SIMULATIONS)
        )


@pytest.mark.parametrize("surrogate", ["kde", "bootstrap"])
def test_score_and_pathwise_routes_agree_and_pathwise_is_far_less_noisy(x64, surrogate):
    theta = gaussian_theta()
    chosen = {"kde": jaxunc.KDE(), "bootstrap": jaxunc.Bootstrap()}[surrogate]
    sims = bounds.simulate_summaries(
        jaxunc.Gaussian(),
        chosen,
        theta,
        N_TRAIN,
        200,
        bounds.moments_summary(),
        key=jax.random.key(11),
        simulations=SIMULATIONS,
        params=("mu",),
    )
    path = bounds.summary_bound(sims.values, sims.scores, sims.jacobians)
    score = bounds.summary_bound(sims.values, sims.scores)
    # J: agree within 3 combined standard errors, entry by entry.
    difference = np.abs(path.jacobian - score.jacobian)
    combined = np.hypot(path.jacobian_stderr, score.jacobian_stderr)
    assert np.all(difference < K_SIGMA * combined), (path.jacobian, score.jacobian)
    assert np.all(path.jacobian_stderr <= score.jacobian_stderr / 10)
    # The bounds are built from the same draws (same C): compare their difference
    # with the larger of the two errors.
    gap = abs(path.matrix[0, 0] - score.matrix[0, 0])
    assert gap < K_SIGMA * max(path.stderr[0, 0], score.stderr[0, 0])


def test_bootstrap_bound_stays_below_the_distinct_event_count(x64):
    """The bootstrap's D_gen holds at most the distinct training events, about
    n(1 − (1 − 1/n)^N) of them: its information about μ is at most that over σ²."""
    theta = gaussian_theta()
    n_gen = 30
    result = bounds.generated_information_bounds(
        jaxunc.Gaussian(),
        jaxunc.Bootstrap(),
        theta,
        N_TRAIN,
        n_gen,
        [bounds.mean_summary(), bounds.moments_summary()],
        key=jax.random.key(3),
        simulations=SIMULATIONS,
        params=("mu",),
    )
    ceiling = N_TRAIN * (1 - (1 - 1 / N_TRAIN) ** n_gen)
    best = result.best_estimate
    assert best.matrix[0, 0] - K_SIGMA * best.stderr[0, 0] <= ceiling


def _leaky(theta):
    """Ignores its fit: samples from the model at the θ of the chain itself."""
    model = jaxunc.Gaussian()

    class Leaky:
        def fit(self, key, data):
            del key
            return data

        def sample(self, key, params, n):
            del params
            return model.sample(key, theta, n)

    return Leaky()


def _verdict(surrogate, n_gen):
    theta = gaussian_theta()
    result = bounds.generated_information_bounds(
        jaxunc.Gaussian(),
        surrogate,
        theta,
        N_TRAIN,
        n_gen,
        [bounds.mean_summary()],
        key=jax.random.key(5),
        simulations=512,
        params=("mu",),
    )
    train = np.array([[N_TRAIN / 1.0]])
    return result, bounds.bound_verdict(result, train, np.zeros((1, 1)))


def test_a_leaky_surrogate_makes_the_check_fail(x64):
    """D_gen from the true θ carries n_gen events' worth of information: more than
    the training sample for n_gen > n_train.  The pathwise route sees the leak; the
    score route (which assumes the Markov chain) cannot."""
    result, verdict = _verdict(bounds.ThetaDependent(_leaky), 500)
    assert verdict.verdict == "violated"
    path = result.bounds["mean"]["pathwise"]
    assert abs(path.matrix[0, 0] - 500) < K_SIGMA * path.stderr[0, 0]
    score = result.bounds["mean"]["score"]
    assert abs(score.matrix[0, 0]) < K_SIGMA * score.stderr[0, 0]


def test_the_honest_ideal_fit_holds(x64):
    theta = gaussian_theta()
    _, verdict = _verdict(mean_only_fit(theta), 500)
    assert verdict.verdict == "holds"


def test_failed_simulations_make_the_bound_undetermined(x64):
    """A surrogate whose fit fails for every draw gives no number, and says why."""

    class Failing:
        def fit(self, key, data):
            return data

        def sample(self, key, params, n):
            return jnp.full((n,), jnp.nan, params.dtype)

        def fit_result(self, params):
            return jnp.int32(jaxunc.results.Result.SURROGATE_FIT_FAILED)

    result, verdict = _verdict(Failing(), 100)
    assert verdict.verdict == "undetermined"
    assert result.failures["mean"] == {"surrogate_fit_failed": 512}
    assert "undetermined" in result.bounds["mean"]["pathwise"]


def test_pathwise_sensitivity_of_a_user_summary(x64):
    """E[mean(x²)] over D_gen of the mean-only fit is μ² + σ²/n + σ²: its derivative
    in μ is 2μ, for any summary a user writes."""
    theta = {"mu": jnp.asarray(1.5), "sigma": jnp.asarray(1.0)}
    jacobian, stderr = bounds.summary_sensitivity(
        jaxunc.Gaussian(),
        mean_only_fit(theta),
        theta,
        N_TRAIN,
        100,
        lambda x: jnp.mean(x**2),
        key=jax.random.key(2),
        simulations=512,
        params=("mu",),
    )
    assert jacobian.shape == stderr.shape == (1, 1)
    assert abs(jacobian[0, 0] - 3.0) < K_SIGMA * stderr[0, 0]
    assert stderr[0, 0] < 0.05


def test_scalar_theta_user_model(x64):
    """θ as a bare scalar: an exponential of scale θ written as two functions."""

    def sample(key, theta, n):
        return theta * jax.random.exponential(key, (n,), jnp.result_type(theta))

    def log_prob(x, theta):
        return -x / theta - jnp.log(theta)

    model = jaxunc.model_from_functions(sample, log_prob)
    theta = jnp.asarray(2.0)
    sims = bounds.simulate_summaries(
        model,
        jaxunc.Bootstrap(),
        theta,
        N_TRAIN,
        100,
        bounds.mean_summary(),
        key=jax.random.key(4),
        simulations=256,
    )
    assert sims.params == ("theta",)
    # mean(D_gen) is the mean of resampled θ·E events: its θ-derivative is mean/θ.
    np.testing.assert_allclose(sims.jacobians[:, 0, 0], sims.values[:, 0] / 2.0)


def test_unbiased_bound_from_synthetic_draws():
    """With known J and C, the U-statistic bound is unbiased where the plug-in
    J̄ᵀ Ĉ⁻¹ J̄ is biased upwards by the noise in J (here by (σ_J²/M) tr C⁻¹)."""
    rng = np.random.default_rng(0)
    k, d, m, repeats = 3, 1, 64, 400
    jacobian = np.array([[1.0], [0.5], [0.0]])
    covariance = np.diag([1.0, 2.0, 0.5])
    exact = (jacobian.T @ np.linalg.inv(covariance) @ jacobian).item()
    noise = 2.0
    unbiased, plug_in = [], []
    for _ in range(repeats):
        values = rng.multivariate_normal(np.zeros(k), covariance, size=m)
        terms = jacobian[None] + noise * rng.standard_normal((m, k, d))
        unbiased.append(bounds.summary_bound(values, np.zeros((m, d)), terms, groups=8))
        mean = terms.mean(axis=0)
        plug_in.append(
            (mean.T @ np.linalg.inv(np.cov(values, rowvar=False)) @ mean).item()
        )
    values = np.array([u.matrix[0, 0] for u in unbiased])
    error = values.std(ddof=1) / math.sqrt(repeats)
    assert abs(values.mean() - exact) < K_SIGMA * error
    assert np.mean(plug_in) - exact > 10 * error
    # The jackknife error describes the spread of the estimator.
    mean_stderr = np.mean([u.stderr[0, 0] for u in unbiased])
    assert 0.7 < mean_stderr / values.std(ddof=1) < 1.4


def test_bad_arguments_name_themselves():
    theta = gaussian_theta()
    with pytest.raises(InvalidArgument, match="simulations"):
        bounds.summary_bound(np.zeros((10, 1)), np.zeros((10, 1)))
    with pytest.raises(InvalidArgument, match="params"):
        bounds.simulate_summaries(
            jaxunc.Gaussian(),
            jaxunc.Bootstrap(),
            theta,
            N_TRAIN,
            10,
            bounds.mean_summary(),
            key=jax.random.key(0),
            simulations=8,
            params=("nope",),
        )
    with pytest.raises(InvalidArgument, match="surrogate"):
        bounds.simulate_summaries(
            jaxunc.Gaussian(),
            object(),
            theta,
            N_TRAIN,
            10,
            bounds.mean_summary(),
            key=jax.random.key(0),
            simulations=8,
        )
    with pytest.raises(InvalidArgument, match="summaries"):
        bounds.quantile_summary(
            jaxunc.models.model_from_functions(
                lambda k, t, n: jnp.zeros(n), lambda x, t: x
            ),
            theta,
            4,
        )


@pytest.mark.parametrize(("n_train", "n_gen"), [(20, 5), (100, 100), (300, 200)])
def test_exponential_fit_reference_against_the_bessel_density(n_train, n_gen):
    """Independent check of the convolution quadrature: Z = G·E (Gamma(n) times
    Gamma(N)) has the density 2 z^((n+N)/2−1) K_{n−N}(2√z)/(Γ(n)Γ(N)); the scale
    Fisher information E[(1 + z (log f)'(z))²] by scipy quadrature in log z."""
    scipy_special = pytest.importorskip("scipy.special")
    scipy_integrate = pytest.importorskip("scipy.integrate")
    a, b = n_train, n_gen

    def log_density(log_z):
        z = np.exp(log_z)
        root = 2 * np.sqrt(z)
        return (
            math.log(2)
            + ((a + b) / 2 - 1) * log_z
            + np.log(scipy_special.kve(a - b, root))
            - root
            - math.lgamma(a)
            - math.lgamma(b)
        )

    def integrand(log_z, h=1e-5):
        slope = (log_density(log_z + h) - log_density(log_z - h)) / (2 * h)
        # density of log Z is z f(z); d log f / d log z = z (log f)'(z)
        return np.exp(log_density(log_z) + log_z) * (1 + slope) ** 2

    centre = math.log(a * b)
    spread = 14 * math.sqrt(1 / a + 1 / b)
    value, _ = scipy_integrate.quad(
        integrand, centre - spread, centre + spread, limit=400, epsabs=0, epsrel=1e-10
    )
    rate = 1.7
    reference = bounds.exponential_fit_generated_fisher(rate, n_train, n_gen)
    np.testing.assert_allclose(reference, value / rate**2, rtol=1e-6)
    assert reference < n_train / rate**2


def test_bootstrap_reference_limits():
    assert bounds.bootstrap_generated_fisher(2.0, 100, 1) == pytest.approx(0.25)
    assert bounds.bootstrap_generated_fisher(1.0, 100, 10**7) == pytest.approx(100.0)


def test_bounds_over_sizes_share_one_training_per_draw(x64):
    """``generated_information_bounds_over_sizes``: one set of chain draws for
    every n_gen.  The mean-only fit's sample-mean bound is the exact
    nN/(σ²(n+N)) at each size, the learned summary's bound (head fitted on other
    draws) stays at or below it, and quantile bins have no pathwise route."""
    theta = gaussian_theta()
    sizes = (20, 500)
    results = bounds.generated_information_bounds_over_sizes(
        jaxunc.Gaussian(),
        mean_only_fit(theta),
        theta,
        N_TRAIN,
        sizes,
        [bounds.mean_summary(), bounds.quantile_summary(jaxunc.Gaussian(), theta, 5)],
        key=jax.random.key(7),
        simulations=SIMULATIONS,
        params=("mu",),
        learned={"steps": 200, "features": 8},
    )
    assert len(results) == len(sizes)
    for n_gen, result in zip(sizes, results, strict=True):
        exact = linear_gaussian_generated_fisher(1.0, N_TRAIN, n_gen)
        path = result.bounds["mean"]["pathwise"]
        assert abs(path.matrix[0, 0] - exact) < K_SIGMA * path.stderr[0, 0]
        assert result.best[1] == "pathwise"  # a summary's pathwise route is taken
        learned = result.bounds["learned"]["pathwise"]
        assert learned.matrix[0, 0] < exact + K_SIGMA * learned.stderr[0, 0]
        assert learned.matrix[0, 0] > 0.5 * exact
        assert result.bounds["quantiles_5"]["pathwise"].startswith("not computed")
        assert result.failures["mean"] == {}


def test_the_best_bound_is_chosen_on_half_the_draws_and_reported_from_the_other():
    """Four summaries with the same bound J²/C = 1 and independent noise: the
    largest of their bounds from all draws is biased upwards (about one standard
    error, the expected maximum of four normals), the held-out best
    (``select_best``) is not.  Few jackknife groups: numbers, not time."""
    rng = np.random.default_rng(12)
    m, candidates, repeats, groups = 128, 4, 60, 4
    summaries = [
        bounds.Summary(f"s{j}", ("f",), lambda x: x) for j in range(candidates)
    ]
    held_out, naive = [], []
    for _ in range(repeats):
        entries, sims_list = {}, []
        for summary in summaries:
            values = rng.standard_normal((m, 1))
            jacobians = 1.0 + 0.5 * rng.standard_normal((m, 1, 1))
            sims = bounds.SummarySimulations(
                values, jacobians, np.zeros((m, 1)), np.zeros(m, np.int32), ("t",)
            )
            entries[summary.name], _ = bounds._summary_entry(
                summary, sims, True, groups, 0.01
            )
            sims_list.append((summary, sims))
        best, estimate = bounds.select_best(entries, sims_list, True, groups=groups)
        assert best[1] == "pathwise"
        held_out.append(estimate.matrix[0, 0])
        naive.append(max(e["pathwise"].matrix[0, 0] for e in entries.values()))
        assert estimate.matrix[0, 0] != entries[best[0]]["pathwise"].matrix[0, 0]
    for values, biased in ((held_out, False), (naive, True)):
        error = np.std(values, ddof=1) / math.sqrt(repeats)
        assert bool(np.mean(values) - 1.0 > K_SIGMA * error) is biased, (
            np.mean(values),
            error,
        )
        if not biased:
            assert abs(np.mean(values) - 1.0) < K_SIGMA * error
