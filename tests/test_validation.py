"""jaxunc.validation: histograms, χ² tests and p-values against scipy, uniform truth
p-values, the closed-form quantile MSE, the horizon interpolation, bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxunc import validation as v
from jaxunc.errors import InvalidArgument
from jaxunc.models import Exponential, Gaussian, model_from_functions

GAUSS = {"mu": 1.0, "sigma": 2.0}


def test_chi2_sf_matches_scipy(x64):
    x = np.array([0.0, 0.1, 1.0, 5.0, 19.0, 30.0, 80.0, 400.0])
    for dof in (1, 2, 7, 19, 99):
        ours = np.asarray(v.chi2_sf(jnp.asarray(x), jnp.asarray(float(dof))))
        np.testing.assert_allclose(ours, scipy.stats.chi2.sf(x, dof), rtol=1e-10)


def test_chi2_test_matches_scipy_chisquare(key, x64):
    binning = v.make_binning(Gaussian(), GAUSS, 12, "uniform")
    x = Gaussian().sample(key, {k: jnp.float64(t) for k, t in GAUSS.items()}, 3000)
    counts, test = jax.jit(
        lambda x: (
            v.bin_counts(x, binning.edges),
            v.chi2_test(v.bin_counts(x, binning.edges), binning.probabilities),
        )
    )(x)
    np.testing.assert_array_equal(
        np.asarray(counts), np.histogram(np.asarray(x), binning.edges)[0]
    )
    reference = scipy.stats.chisquare(np.asarray(counts), 3000 * binning.probabilities)
    assert float(test.statistic) == pytest.approx(reference.statistic, rel=1e-12)
    assert float(test.p_value) == pytest.approx(reference.pvalue, rel=1e-9)
    assert float(test.dof) == 11


def test_two_sample_chi2_matches_scipy_contingency(key, x64):
    k1, k2 = jax.random.split(key)
    edges = np.concatenate([[-np.inf], np.linspace(-2, 2, 9), [np.inf]])
    count = jax.jit(lambda x: v.bin_counts(x, edges))
    a = count(jax.random.normal(k1, (700,), jnp.float64))
    b = count(0.1 + jax.random.normal(k2, (1300,), jnp.float64))
    test = jax.jit(v.two_sample_chi2_test)(a, b)
    table = np.stack([np.asarray(a), np.asarray(b)])
    statistic, p_value, dof, _ = scipy.stats.chi2_contingency(table, correction=False)
    assert float(test.statistic) == pytest.approx(statistic, rel=1e-10)
    assert float(test.p_value) == pytest.approx(p_value, rel=1e-8)
    assert float(test.dof) == dof
    # Bins empty in both samples are left out of the test and of the dof.
    padded = jax.jit(v.two_sample_chi2_test)(
        jnp.concatenate([a, jnp.zeros(2)]), jnp.concatenate([b, jnp.zeros(2)])
    )
    assert float(padded.statistic) == pytest.approx(statistic, rel=1e-10)
    assert float(padded.dof) == dof


def test_weighted_histogram_and_unit_weights(key, x64):
    k1, k2 = jax.random.split(key)
    x = jax.random.normal(k1, (500,), jnp.float64)
    w = jax.random.uniform(k2, (500,), jnp.float64, 0.5, 1.5)
    edges = np.array([-np.inf, -1.0, 0.0, 0.5, 1.0, np.inf])
    h, unit, plain = jax.jit(
        lambda x, w: (
            v.histogram(x, edges, w),
            v.histogram(x, edges, jnp.ones_like(x)),
            v.histogram(x, edges),
        )
    )(x, w)
    finite = np.array([-1e9, -1.0, 0.0, 0.5, 1.0, 1e9])
    np.testing.assert_allclose(h.counts, np.histogram(x, finite, weights=w)[0])
    np.testing.assert_allclose(h.sumw2, np.histogram(x, finite, weights=w**2)[0])
    np.testing.assert_allclose(h.errors, np.sqrt(h.sumw2))
    np.testing.assert_allclose(unit.counts, plain.counts)
    p = np.array([0.2, 0.3, 0.15, 0.15, 0.2])
    statistics = jax.jit(
        lambda a, b: (v.chi2_test(a, p).statistic, v.chi2_test(b, p).statistic)
    )(unit, plain.counts)
    assert float(statistics[0]) == pytest.approx(float(statistics[1]), rel=1e-12)


def test_chi2_is_vmappable(key):
    binning = v.make_binning(Gaussian(), GAUSS, 10)
    samples = jax.vmap(lambda k: Gaussian().sample(k, GAUSS, 400))(
        jax.random.split(key, 4)
    )

    @jax.jit
    def p_value(x):
        return v.chi2_test(v.bin_counts(x, binning.edges), binning.probabilities)[2]

    looped = [float(p_value(x)) for x in samples]
    np.testing.assert_allclose(jax.vmap(p_value)(samples), looped, rtol=1e-6)


@pytest.mark.parametrize(
    ("model", "theta", "kind"),
    [
        (Gaussian(), GAUSS, "uniform"),
        (Exponential(), {"rate": 2.0}, "quantile"),
    ],
    ids=["gaussian-uniform", "exponential-quantile"],
)
def test_truth_p_values_are_uniform(model, theta, kind, key):
    """KS test of the χ² p-values of 3000 true samples of 2000 events."""
    binning = v.make_binning(model, theta, 10, kind)
    assert binning.source == "cdf"
    assert binning.probabilities.min() * 2000 > 5  # the χ² law applies

    @jax.jit
    def p_values(keys):
        def one(k):
            counts = v.bin_counts(model.sample(k, theta, 2000), binning.edges)
            return v.goodness_of_fit(counts, binning).p_value

        return jax.vmap(one)(keys)

    p = np.asarray(p_values(jax.random.split(key, 3000)), np.float64)
    assert scipy.stats.kstest(p, "uniform").pvalue > 1e-3


def test_expected_quantile_mse_closed_form(key):
    """Mean quantile MSE of 4000 true samples against (N_q - 1)/(N_q² n), within 4
    standard errors, for several N_q and n."""
    model, theta = Gaussian(), GAUSS
    for n_quantiles, n in ((5, 50), (20, 1000)):
        binning = v.make_binning(model, theta, n_quantiles)

        @jax.jit
        def mse(keys, binning=binning, n=n):
            def one(k):
                counts = v.bin_counts(model.sample(k, theta, n), binning.edges)
                return v.quantile_mse(counts, binning.probabilities)

            return jax.vmap(one)(keys)

        values = np.asarray(mse(jax.random.split(key, 4000)), np.float64)
        expected = v.expected_quantile_mse(n, n_quantiles)
        assert expected == pytest.approx((n_quantiles - 1) / (n_quantiles**2 * n))
        stderr = values.std(ddof=1) / math.sqrt(len(values))
        assert abs(values.mean() - expected) < 4 * stderr
        assert v.equivalent_events(expected, n_quantiles) == pytest.approx(n)


def test_reference_binning_for_a_model_without_cdf(key):
    """A user model (no cdf/quantile): edges and probabilities from a reference
    sample, close to the exact ones within their binomial errors."""
    user = model_from_functions(Gaussian().sample, Gaussian().log_prob)
    exact = v.make_binning(Gaussian(), GAUSS, 8, "uniform")
    with pytest.raises(InvalidArgument, match="key"):
        v.make_binning(user, GAUSS, 8)
    reference = v.make_binning(user, GAUSS, 8, "uniform", key=key, n_reference=2**18)
    assert reference.source == "reference" and reference.edge_source == "reference"
    assert "reference sample of 262144" in reference.describe()
    np.testing.assert_allclose(reference.probabilities.sum(), 1.0)
    # Edges differ slightly (empirical quantiles); compare via the exact cdf.
    exact_at_reference = np.diff(
        np.concatenate(
            [
                [0.0],
                scipy.stats.norm.cdf(
                    reference.edges[1:-1], GAUSS["mu"], GAUSS["sigma"]
                ),
                [1.0],
            ]
        )
    )
    error = np.sqrt(exact_at_reference * (1 - exact_at_reference) / 2**18)
    assert np.all(np.abs(reference.probabilities - exact_at_reference) < 5 * error)
    assert len(exact.edges) == len(reference.edges)


def test_histogram_quantiles():
    rng = np.random.default_rng(1)
    values = rng.uniform(size=100_000)
    edges = np.linspace(0, 1, 1001)
    counts = np.histogram(values, edges)[0]
    got = v.histogram_quantiles(counts, edges, [0.05, 0.5, 0.9])
    # Exact bound, not a fit: the histogram's CDF equals the empirical CDF at every
    # edge, so the interpolated quantile lies in the bin where the level is crossed
    # and the sample quantile (order statistics, rank level·(n-1)) at most one rank
    # outside it: within two bin widths.
    width = edges[1] - edges[0]
    expected = np.quantile(values, [0.05, 0.5, 0.9])
    np.testing.assert_allclose(got, expected, rtol=0, atol=2 * width)


def test_histogram_quantiles_lie_in_the_crossing_bin_after_empty_bins():
    """Counts only in bins 2 and 5 of [0, 1, ..., 6]: every quantile lies inside
    one of those two bins, never in the empty bins before them (a linear
    interpolation across the empty bins would put the 5 % quantile at 0.3
    instead of 2.1)."""
    edges = np.arange(7.0)
    counts = np.array([0.0, 0.0, 10.0, 0.0, 0.0, 10.0])
    got = v.histogram_quantiles(counts, edges, [0.05, 0.25, 0.45, 0.55, 0.95])
    np.testing.assert_allclose(got, [2.1, 2.5, 2.9, 5.1, 5.9], rtol=0, atol=1e-12)
    # the median is any point of the empty stretch [3, 5]
    assert 3.0 <= v.histogram_quantiles(counts, edges, [0.5])[0] <= 5.0
    # no counts at all: the first edge (nothing is known)
    assert v.histogram_quantiles(np.zeros(6), edges, [0.5])[0] == 0.0


def test_robustness_horizon_interpolation():
    n = [100, 1000, 10000]
    horizon = v.robustness_horizon(n, [0.1, 0.3, 0.7], [0.01, 0.02, 0.02])
    # Half way between 0.3 and 0.7: the geometric mean of 1000 and 10000.
    assert horizon.status == "found" and horizon.bracket == (1000, 10000)
    assert horizon.value == pytest.approx(math.sqrt(1000 * 10000))
    # d log H = ln(10) (dt_a σ_a, dt_b σ_b) with dt/da = dt/db = -1/0.8 here.
    expected = horizon.value * math.log(10) * math.hypot(0.02, 0.02) / 0.4 * 0.5
    assert horizon.stderr == pytest.approx(expected)
    assert v.robustness_horizon(n, [0.01, 0.02, 0.05], [0.01] * 3).status == (
        "beyond_grid"
    )
    assert v.robustness_horizon(n, [0.6, 0.9, 1.0], [0.01] * 3).status == ("below_grid")
    with pytest.raises(InvalidArgument, match="n_required"):
        v.robustness_horizon([1000, 100], [0.1, 0.9], [0.01, 0.01])


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"bins": 1}, "bins"),
        ({"bins": 2.5}, "bins"),
        ({"bins": True}, "bins"),
        ({"bins": 4, "kind": "log"}, "binning"),
    ],
)
def test_bad_binning_arguments(kwargs, argument):
    with pytest.raises(InvalidArgument) as error:
        v.make_binning(Gaussian(), GAUSS, **kwargs)
    assert error.value.argument == argument
    with pytest.raises(ValueError, match="sigma"):
        v.make_binning(Gaussian(), {"mu": 0.0, "sigma": -1.0}, 4)


def test_model_cdf_and_quantile_match_scipy(x64):
    u = np.array([1e-6, 0.01, 0.3, 0.5, 0.77, 0.999])
    gaussian = {"mu": jnp.float64(1.0), "sigma": jnp.float64(2.0)}
    x = np.asarray(jax.jit(Gaussian().quantile)(jnp.asarray(u), gaussian))
    np.testing.assert_allclose(x, scipy.stats.norm.ppf(u, 1.0, 2.0), rtol=1e-10)
    np.testing.assert_allclose(
        jax.jit(Gaussian().cdf)(jnp.asarray(x), gaussian), u, rtol=1e-10
    )
    exponential = {"rate": jnp.float64(2.0)}
    x = np.asarray(jax.jit(Exponential().quantile)(jnp.asarray(u), exponential))
    np.testing.assert_allclose(x, scipy.stats.expon.ppf(u, scale=0.5), rtol=1e-10)
    cdf = jax.jit(Exponential().cdf)(jnp.asarray([-1.0, *x]), exponential)
    np.testing.assert_allclose(cdf, [0.0, *u], rtol=1e-10)
