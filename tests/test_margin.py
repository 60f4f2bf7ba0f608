"""The margin I_train − I_gen = E[Cov(S | D_gen)] (``generated_fisher_margin``)
and its verdicts: the exact value of the mean-only Gaussian fit within 3 SE at a
1 % error, a leaky surrogate reported ``violated``, and a flow whose importance
sampling collapses at n_gen ≫ n_train reported ``undetermined`` with no number."""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import jaxunc
from jaxunc import bounds
from jaxunc.information import (
    LOW_ESS,
    LowEffectiveSampleSize,
    _default_proposals,
    generated_fisher_margin,
    linear_gaussian_generated_fisher,
)
from jaxunc.studies.fisher import _margin_verdict

K_SIGMA = 3.0


def test_ideal_mean_only_fit_margin_is_exact_to_one_percent(x64, key):
    """Default settings at n_gen = 10·n_train: relative error ≤ 1 %, the exact
    n²/(σ²(n + N)) within 3 SE, and the verdict ``holds``."""
    sigma, n_train, n_gen = 0.3, 37, 370
    theta = {"mu": jnp.float64(0.2), "sigma": jnp.float64(sigma)}
    surrogate = jaxunc.IdealFit(jaxunc.Gaussian(), theta, ("mu",))
    margin = generated_fisher_margin(
        jaxunc.Gaussian(), theta, surrogate, n_train, n_gen, key=key, params=("mu",)
    )
    exact = n_train / sigma**2 - linear_gaussian_generated_fisher(sigma, n_train, n_gen)
    assert exact == pytest.approx(n_train**2 / (sigma**2 * (n_train + n_gen)))
    value, error = margin.matrix[0, 0], margin.stderr[0, 0]
    assert 0 < error <= 0.01 * exact
    assert abs(value - exact) < K_SIGMA * error
    assert margin.effective_sample_size >= LOW_ESS
    assert margin.proposals == _default_proposals(surrogate, n_train, n_gen, 16_384)
    assert margin.proposals > _default_proposals(surrogate, n_train, n_train, 16_384)
    assert margin.leak is None and margin.groups == 16
    verdict, reason, check = _margin_verdict(margin, None, None, None)
    assert verdict == "holds" and check is not None and "ESS" in reason


def _leaky_with_density(theta):
    """Ignores its fit: samples (and gives the density) of the model at the θ of
    the chain itself, so D_gen carries n_gen events' worth of information."""
    model = jaxunc.Gaussian()

    class Leaky:
        def fit(self, key, data):
            del key
            return jnp.mean(data)

        def sample(self, key, params, n):
            del params
            return model.sample(key, theta, n)

        def log_prob(self, x, params):
            del params
            return model.log_prob(x, theta)

    return Leaky()


def test_a_leaky_surrogate_makes_the_margin_violated(key):
    """I_train − I_gen = (n_train − n_gen)/σ² < 0 for n_gen > n_train: the joint
    score's leak term makes the margin negative, beyond 3 SE."""
    theta = {"mu": np.float32(0.0), "sigma": np.float32(1.0)}
    n_train, n_gen = 20, 400
    margin = generated_fisher_margin(
        jaxunc.Gaussian(),
        theta,
        bounds.ThetaDependent(_leaky_with_density),
        n_train,
        n_gen,
        key=key,
        outer=128,
        params=("mu",),
    )
    value, error = margin.matrix[0, 0], margin.stderr[0, 0]
    assert abs(value - (n_train - n_gen)) < K_SIGMA * error
    assert abs(margin.leak[0, 0] - n_gen) < K_SIGMA * error
    verdict, reason, _ = _margin_verdict(margin, None, None, None)
    assert verdict == "violated" and "exceeds I_train" in reason


def test_flow_margin_at_large_n_gen_is_undetermined(key):
    """n_train = 100, n_gen = 1000, a tiny flow: the importance sampling over
    training samples collapses (ESS < 30), so the margin is not a measurement."""
    theta = {"mu": np.float32(0.0), "sigma": np.float32(1.0)}
    flow = jaxunc.Flow(steps=10, record_every=5, layers=1, bins=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        margin = generated_fisher_margin(
            jaxunc.Gaussian(),
            theta,
            flow,
            100,
            1000,
            key=key,
            outer=16,
            proposals=64,
            params=("mu",),
        )
    assert any(issubclass(w.category, LowEffectiveSampleSize) for w in caught)
    assert margin.effective_sample_size < LOW_ESS
    verdict, reason, check = _margin_verdict(margin, None, None, None)
    assert verdict == "undetermined" and check is None
    assert "not measured" in reason
