"""jaxunc's generic Newton fits agree with scipy.optimize on the same toys, within a
tolerance derived from both convergence criteria (benchmarks/bench_fits.py)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc import Gaussian, MaximumLikelihood, model_from_functions
from jaxunc.summation import pairwise_sum_depth

pytest.importorskip("scipy")

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_fits.py"
_SPEC = importlib.util.spec_from_file_location("bench_fits", _PATH)
bench_fits = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench_fits)


def user_gaussian():
    """A user's own Gaussian: no unconstrained map, no initial guess, no closed
    form, so the Newton fit runs in (μ, σ) directly."""

    def sample(key, theta, n):
        return theta["mu"] + theta["sigma"] * jax.random.normal(
            key, (n,), theta["mu"].dtype
        )

    def log_prob(x, theta):
        z = (x - theta["mu"]) / theta["sigma"]
        return -0.5 * z * z - jnp.log(theta["sigma"]) - 0.5 * math.log(2 * math.pi)

    return model_from_functions(sample, log_prob)


@pytest.mark.parametrize(
    "model", [Gaussian(), user_gaussian()], ids=["gaussian", "user"]
)
def test_newton_fits_match_scipy_on_the_same_toys(x64, key, model):
    toys, n = 6, bench_fits.N_EVENTS
    theta = {"mu": jnp.float64(0.0), "sigma": jnp.float64(1.0)}
    estimator = MaximumLikelihood(
        model,
        bench_fits.START,
        bench_fits.FREE,
        use_initial_params=False,
        use_closed_form=False,
    )

    def one(k):
        x = model.sample(k, theta, n)
        result = estimator.fit(x)
        return x, result.theta, result.converged

    x, fitted, converged = jax.jit(jax.vmap(one))(jax.random.split(key, toys))
    assert bool(jnp.all(converged))
    eps = float(jnp.finfo(jnp.float64).eps)
    roundings = pairwise_sum_depth(n) + bench_fits.TERM_ROUNDINGS
    for i in range(toys):
        data = np.asarray(x[i], np.float64)
        reference = bench_fits.scipy_fit(data)
        assert reference.success, reference.message
        ours = np.array([float(fitted["mu"][i]), math.log(float(fitted["sigma"][i]))])
        tolerance = bench_fits.agreement_tolerance(
            reference.x,
            data,
            eps,
            bench_fits.NEWTON_DECREMENT_FACTOR * eps,
            roundings,
        )
        assert bench_fits.distance(ours, reference.x, data) <= tolerance
