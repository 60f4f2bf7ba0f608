"""The exact I_gen of the ideal mean-and-σ Gaussian fit (``bounds.
gaussian_fit_generated_fisher``): its nested quadrature against limits that
bracket it, the N = 1 case by scipy, and a Monte Carlo evaluation of E[s²] with
the score of (x̄_gen, S_gen) integrated by scipy, draw by draw."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxunc import bounds
from jaxunc.errors import InvalidArgument
from jaxunc.information import linear_gaussian_generated_fisher

K_SIGMA = 3.0
scipy_stats = pytest.importorskip("scipy.stats")
scipy_integrate = pytest.importorskip("scipy.integrate")


def _t_distribution(n, ddof):
    """t = σ̂²/σ² ~ χ²_{n−1}/(n − ddof)."""
    return scipy_stats.chi2(n - 1, scale=1.0 / (n - ddof))


def _sandwich(n, big_n, ddof):
    """1/E[v] ≤ I_gen ≤ E[1/v], v = 1/n + t/N (σ = 1), by scipy."""
    t = _t_distribution(n, ddof)
    lower = 1.0 / (1.0 / n + t.mean() / big_n)
    upper = t.expect(lambda s: 1.0 / (1.0 / n + s / big_n), epsrel=1e-12)
    return lower, upper


@pytest.mark.parametrize(
    ("n", "big_n", "ddof"),
    [(2, 2, 0), (3, 3, 1), (5, 1000, 0), (100, 100, 0), (100, 10, 1), (20, 1, 0)],
)
def test_quadrature_is_normalised_and_between_its_bounds(n, big_n, ddof):
    """A location family's information is at least its inverse variance, and
    knowing σ̂ (as well as S_gen) cannot lose information: strictly between."""
    information, probability = bounds._gaussian_fit_quadrature(n, big_n, ddof)
    assert probability == pytest.approx(1.0, abs=1e-9)
    lower, upper = _sandwich(n, big_n, ddof)
    assert lower < information < upper
    # σ scales it as 1/σ²
    sigma = 1.7
    assert bounds.gaussian_fit_generated_fisher(sigma, n, big_n, ddof) == pytest.approx(
        information / sigma**2, rel=1e-14
    )


@pytest.mark.parametrize(("n", "big_n", "ddof"), [(10**5, 100, 0), (10**5, 300, 1)])
def test_large_n_limit_is_the_mean_only_fit(n, big_n, ddof):
    """σ̂ → σ as n → ∞: the mean-only fit's nN/(n + N), to within the sandwich,
    whose width shrinks like 1/n."""
    information = bounds.gaussian_fit_generated_fisher(1.0, n, big_n, ddof)
    lower, upper = _sandwich(n, big_n, ddof)
    mean_only = linear_gaussian_generated_fisher(1.0, n, big_n)
    assert lower < information < upper
    assert abs(information - mean_only) <= upper - lower < 1e-3 * mean_only


def test_large_n_gen_limit_is_the_training_information():
    """N → ∞: S_gen reveals σ̂ and x̄_gen → μ̂: I_gen → n/σ² from below."""
    n = 30
    values = [bounds.gaussian_fit_generated_fisher(1.0, n, g) for g in (10**4, 10**6)]
    assert values[0] < values[1] < n
    assert n - values[1] < 1e-3 * n


def test_single_generated_event_by_scipy():
    """N = 1: x̄_gen ~ N(μ, 1/n + t) with t mixed by its prior; p and p' on an
    x grid by scipy's quad_vec over t, then ∫ p'²/p dx by Simpson's rule."""
    n, ddof = 4, 0
    t = _t_distribution(n, ddof)
    x = np.linspace(0.0, 40.0, 4001)

    def integrand(s):
        v = 1.0 / n + s
        density = t.pdf(s) * np.exp(-0.5 * x * x / v) / math.sqrt(2 * math.pi * v)
        return np.concatenate([density, x * density / v])

    totals, _ = scipy_integrate.quad_vec(integrand, 0.0, np.inf, epsrel=1e-11)
    density, slope = totals[: len(x)], totals[len(x) :]
    value = 2 * scipy_integrate.simpson(slope**2 / density, x=x)
    assert bounds.gaussian_fit_generated_fisher(1.0, n, 1, ddof) == pytest.approx(
        value, rel=1e-7
    )


def _monte_carlo_information(n, big_n, ddof, draws, seed):
    """E[s²] over draws of (x̄_gen, S_gen) (σ = 1, μ = 0), s = ∂_μ log
    p(x̄_gen, S_gen | μ) = E[x̄_gen/v(t) | x̄_gen, S_gen], the posterior mean over
    t by scipy's quad_vec over log t, all draws at once.  Returns (mean, stderr)."""
    rng = np.random.default_rng(seed)
    t_true = rng.chisquare(n - 1, draws) / (n - ddof)
    squares = t_true * rng.chisquare(big_n - 1, draws)  # S_gen/σ²
    means = rng.normal(0.0, np.sqrt(1.0 / n + t_true / big_n))
    prior = _t_distribution(n, ddof)
    noise = scipy_stats.chi2(big_n - 1)

    def log_weight(log_t):
        s = math.exp(log_t)
        v = 1.0 / n + s / big_n
        # p(t) dt/da · p(S_gen | t) · N(x̄_gen; 0, v), with dt/da = t and
        # p(S_gen | t) = f_χ²(S_gen/t)/t cancelling
        return (
            prior.logpdf(s)
            + noise.logpdf(squares / s)
            - 0.5 * means**2 / v
            - 0.5 * math.log(v)
        ), v

    # per-draw offset: the largest log weight on a grid (no underflow)
    grid = np.linspace(-15.0, 6.0, 841)
    logs = np.array([log_weight(a)[0] for a in grid])
    offset = logs.max(axis=0)

    def integrand(log_t):
        logs, v = log_weight(log_t)
        weight = np.exp(logs - offset)
        return np.concatenate([weight, weight * means / v])

    totals, _ = scipy_integrate.quad_vec(integrand, -15.0, 6.0, epsrel=1e-10)
    scores = totals[draws:] / totals[:draws]
    squared = scores**2
    return squared.mean(), squared.std(ddof=1) / math.sqrt(draws)


@pytest.mark.parametrize(
    ("n", "big_n", "ddof", "distinct"), [(4, 6, 0, True), (5, 5, 1, False)]
)
def test_quadrature_agrees_with_monte_carlo(n, big_n, ddof, distinct):
    """Within 3 SE; where the mean-only value nN/(n + N) is far enough away
    (ddof 0: 15 % here), the same check rejects it (the test has power)."""
    value, stderr = _monte_carlo_information(n, big_n, ddof, 4000, seed=n + big_n)
    exact = bounds.gaussian_fit_generated_fisher(1.0, n, big_n, ddof)
    assert abs(value - exact) < K_SIGMA * stderr, (value, stderr, exact)
    if distinct:
        mean_only = linear_gaussian_generated_fisher(1.0, n, big_n)
        assert abs(value - mean_only) > K_SIGMA * stderr, (value, mean_only)


def test_bad_arguments_name_themselves():
    with pytest.raises(InvalidArgument, match="n_train"):
        bounds.gaussian_fit_generated_fisher(1.0, 1, 10)
    with pytest.raises(InvalidArgument, match="n_gen"):
        bounds.gaussian_fit_generated_fisher(1.0, 10, 0)
    with pytest.raises(InvalidArgument, match="ddof"):
        bounds.gaussian_fit_generated_fisher(1.0, 10, 10, ddof=2)
    with pytest.raises(InvalidArgument, match="sigma"):
        bounds.gaussian_fit_generated_fisher(0.0, 10, 10)
