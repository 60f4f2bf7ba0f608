"""Maximum-likelihood fits: generic Newton vs closed forms (float64), failure flags."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc import (
    Exponential,
    Gaussian,
    IdealFit,
    MaximumLikelihood,
    SampleMean,
    fit_model,
    maximum_likelihood_fit,
    model_from_functions,
)


def log_normal_model():
    """A user model defined only here: log x ~ N(m, s²), x > 0."""

    def sample(key, theta, n):
        return jnp.exp(
            theta["m"] + theta["s"] * jax.random.normal(key, (n,), theta["m"].dtype)
        )

    def log_prob(x, theta):
        z = (jnp.log(x) - theta["m"]) / theta["s"]
        return -0.5 * z * z - jnp.log(theta["s"] * x) - 0.5 * math.log(2 * math.pi)

    return model_from_functions(sample, log_prob)


def test_generic_newton_matches_gaussian_closed_form(x64, key):
    theta = {"mu": jnp.float64(1.5), "sigma": jnp.float64(0.7)}
    x = Gaussian().sample(key, theta, 500)
    generic = maximum_likelihood_fit(
        Gaussian(), x, {"mu": 0.0, "sigma": 1.0}, ("mu", "sigma")
    )
    closed = fit_model(Gaussian(), x, theta, ("mu", "sigma"))
    assert bool(generic.converged) and int(generic.iterations) > 0
    np.testing.assert_allclose(generic.theta["mu"], np.mean(x), rtol=1e-12)
    np.testing.assert_allclose(generic.theta["sigma"], np.std(x), rtol=1e-10)
    np.testing.assert_allclose(closed.theta["sigma"], np.std(x), rtol=1e-13)


def test_mean_only_fit_keeps_sigma(x64, key):
    theta = {"mu": jnp.float64(0.0), "sigma": jnp.float64(2.0)}
    x = Gaussian().sample(key, theta, 300)
    generic = maximum_likelihood_fit(Gaussian(), x, theta, ("mu",))
    np.testing.assert_allclose(generic.theta["mu"], np.mean(x), rtol=1e-12)
    assert float(generic.theta["sigma"]) == 2.0


def test_ddof_one_gives_unbiased_variance(x64, key):
    theta = {"mu": jnp.float64(0.0), "sigma": jnp.float64(1.0)}
    x = Gaussian().sample(key, theta, 50)
    fit = IdealFit(Gaussian(), theta, ("mu", "sigma"), ddof=1).fit(None, x)
    np.testing.assert_allclose(
        fit.theta["sigma"], np.std(np.asarray(x), ddof=1), rtol=1e-13
    )


def test_exponential_mle_is_inverse_mean(x64, key):
    x = Exponential().sample(key, {"rate": jnp.float64(3.0)}, 400)
    fit = maximum_likelihood_fit(Exponential(), x, {"rate": 1.0}, ("rate",))
    assert bool(fit.converged) and int(fit.iterations) > 0
    # Newton stops once its decrement is below 10 eps: ~1e-10 relative here
    np.testing.assert_allclose(fit.theta["rate"], 1 / np.mean(x), rtol=1e-10)
    closed = fit_model(Exponential(), x, {"rate": 1.0}, ("rate",))
    assert int(closed.iterations) == 0
    np.testing.assert_allclose(closed.theta["rate"], 1 / np.mean(x), rtol=1e-14)


def test_user_model_mle_matches_closed_form(x64, key):
    model = log_normal_model()
    theta = {"m": jnp.float64(0.3), "s": jnp.float64(0.4)}
    x = model.sample(key, theta, 400)
    fit = maximum_likelihood_fit(model, x, {"m": 0.0, "s": 1.0}, ("m", "s"))
    logs = np.log(np.asarray(x))
    assert bool(fit.converged)
    np.testing.assert_allclose(fit.theta["m"], logs.mean(), rtol=1e-10)
    np.testing.assert_allclose(fit.theta["s"], logs.std(), rtol=1e-8)


def test_estimators_vmap_and_jit(key):
    theta = {"mu": jnp.float32(0.0), "sigma": jnp.float32(1.0)}
    data = jax.vmap(lambda k: Gaussian().sample(k, theta, 64))(
        jax.random.split(key, 16)
    )
    mle = MaximumLikelihood(Gaussian(), theta, ("mu", "sigma"), use_closed_form=False)
    estimates = jax.jit(jax.vmap(mle.estimate))(data)
    means = jax.jit(jax.vmap(SampleMean().estimate))(data)
    assert estimates.value.shape == (16, 2) and bool(jnp.all(estimates.ok))
    np.testing.assert_allclose(
        estimates.value[:, 0], means.value[:, 0], rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(estimates.value[:, 1], jnp.std(data, axis=1), rtol=1e-4)


def test_failed_fit_is_flagged_not_silent():
    """All-zero data: the exponential likelihood grows without bound in the rate."""
    zeros = jnp.zeros(10, jnp.float32)
    fit = fit_model(
        Exponential(), zeros, {"rate": 1.0}, ("rate",), use_closed_form=False
    )
    assert not bool(fit.converged)
    newton = MaximumLikelihood(
        Exponential(), {"rate": 1.0}, ("rate",), use_closed_form=False
    )
    estimate = newton.estimate(zeros)
    assert not bool(estimate.ok)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"free": ()}, "free must name parameters"),
        ({"free": ("nope",)}, "free must name parameters"),
        ({"free": ("mu",), "ddof": 2}, "ddof must be 0"),
    ],
)
def test_ideal_fit_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        IdealFit(Gaussian(), {"mu": 0.0, "sigma": 1.0}, **kwargs)


def test_ddof_needs_closed_form():
    with pytest.raises(ValueError, match="closed-form"):
        IdealFit(Exponential(), {"rate": 1.0}, ("rate",), ddof=1)


# ---------------------------------------------------------------- Newton internals


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 9])
def test_cholesky_solve_matches_numpy(x64, d):
    """The unrolled small-system solve (d <= SMALL_SYSTEM) and the LAPACK path
    (d > SMALL_SYSTEM) agree with numpy's solve to float64 rounding scaled by the
    condition number, and flag positive-definite matrices as such."""
    from jaxunc.estimators import SMALL_SYSTEM, _cholesky_solve

    rng = np.random.default_rng(d)
    a = rng.normal(size=(d, d))
    matrix = a @ a.T + d * np.eye(d)
    vector = rng.normal(size=d)
    solution, positive_definite = jax.jit(_cholesky_solve)(
        jnp.asarray(matrix), jnp.asarray(vector)
    )
    expected = np.linalg.solve(matrix, vector)
    bound = 50 * d * np.finfo(np.float64).eps * np.linalg.cond(matrix)
    assert bool(positive_definite)
    assert np.max(np.abs(solution - expected)) <= bound * np.max(np.abs(expected))
    assert (d > SMALL_SYSTEM) == (d == 9)


@pytest.mark.parametrize("d", [2, 3, 9])
def test_cholesky_solve_flags_indefinite_and_nan(x64, d):
    from jaxunc.estimators import _cholesky_solve

    indefinite = np.eye(d)
    indefinite[-1, -1] = -1.0
    vector = jnp.ones(d)
    assert not bool(_cholesky_solve(jnp.asarray(indefinite), vector)[1])
    nan = np.eye(d)
    nan[0, 0] = np.nan
    assert not bool(_cholesky_solve(jnp.asarray(nan), vector)[1])


@pytest.mark.parametrize("n", [1, 31, 32, 33, 1000, 4096])
def test_event_sum_is_the_pairwise_sum(n):
    """The fit's event sum (whole blocks plus the remainder as one more block) obeys
    the pairwise-sum error bound D·u·Σ|x| against a float64 sum, in float32."""
    from jaxunc.estimators import _event_sum
    from jaxunc.summation import pairwise_sum_depth

    values = np.random.default_rng(n).normal(size=(3, n)).astype(np.float32)
    total = np.asarray(jax.jit(_event_sum)(jnp.asarray(values)), np.float64)
    exact = values.astype(np.float64).sum(axis=-1)
    u = np.finfo(np.float32).eps / 2
    bound = pairwise_sum_depth(n) * u * np.abs(values).astype(np.float64).sum(-1)
    assert total.shape == (3,)
    assert np.all(np.abs(total - exact) <= bound)


def test_nan_start_stops_at_once():
    """A start where -log L is NaN stops after the first pass, flagged as failed."""

    def log_prob(x, theta):
        return jnp.where(theta["a"] > 0, -x * theta["a"], jnp.nan)

    model = model_from_functions(lambda key, theta, n: jnp.zeros(n), log_prob)
    fit = maximum_likelihood_fit(model, jnp.ones(50), {"a": -1.0}, ("a",))
    assert not bool(fit.converged)
    assert int(fit.iterations) == 0


def test_newton_converges_in_few_steps_from_a_generic_start(key):
    """Regression guard for the loop's step accounting: a 2-parameter Gaussian fit
    from (0.2, 1.3) on 1000 events converges in 3-6 accepted Newton steps (exact
    Newton converges quadratically here; more steps would mean rejected or wasted
    passes)."""
    x = Gaussian().sample(key, {"mu": jnp.float32(0), "sigma": jnp.float32(1)}, 1000)
    fit = maximum_likelihood_fit(
        Gaussian(), x, {"mu": 0.2, "sigma": 1.3}, ("mu", "sigma")
    )
    assert bool(fit.converged)
    assert 3 <= int(fit.iterations) <= 6
    np.testing.assert_allclose(fit.theta["mu"], jnp.mean(x), atol=1e-5)


def _while_carries(jaxpr) -> list[int]:
    """The number of values each ``while`` loop of a (closed) jaxpr carries,
    nested loops included."""
    out = []
    for eqn in jaxpr.jaxpr.eqns if hasattr(jaxpr, "jaxpr") else jaxpr.eqns:
        if eqn.primitive.name == "while":
            out.append(len(eqn.params["body_jaxpr"].jaxpr.invars))
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if hasattr(sub, "eqns") or hasattr(sub, "jaxpr"):
                    out += _while_carries(sub)
    return out


def test_newton_fit_tangent_is_the_implicit_function_derivative(x64, key):
    """The forward-mode derivative of the generic Newton fit in the events is the
    implicit function theorem's −H⁻¹ ∂g/∂x ẋ at the fit's optimum (computed here
    in (μ, σ) with jax.hessian, independently of the fit's unconstrained space);
    from another start with another max_iterations it is the same up to where
    the optimum is pinned down, and so is the closed form's derivative; the loop
    carries no tangents."""
    model = Gaussian()
    n = 300
    data_key, direction_key = jax.random.split(key)
    x = 1.5 + 0.7 * jax.random.normal(data_key, (n,), jnp.float64)
    x_dot = jax.random.normal(direction_key, (n,), jnp.float64)

    def fitted(init, max_iterations):
        def f(x):
            result = maximum_likelihood_fit(
                model, x, init, ("mu", "sigma"), max_iterations=max_iterations
            )
            theta = jnp.stack([result.theta["mu"], result.theta["sigma"]])
            return theta, (result.converged, result.iterations)

        return f

    def nll(params, x):
        return -jnp.sum(model.log_prob(x, {"mu": params[0], "sigma": params[1]}))

    near = {"mu": jnp.float64(1.4), "sigma": jnp.float64(0.8)}
    far = {"mu": jnp.float64(-3.0), "sigma": jnp.float64(5.0)}
    # Converged means a Newton decrement g·H⁻¹·g/2 ≤ 10ε, so the optimum is
    # pinned down to |Δθ| ≲ √(2·10ε/λ_min(H)) (a few 1e-9 here): derivatives
    # that agree exactly at the optimum (in (μ, σ) or in the fit's (μ, log σ);
    # from one start or another) agree to that relative amount times O(1).
    eps = np.finfo(np.float64).eps
    tangents, iterations = [], []
    for init, max_iterations in ((near, 50), (far, 200)):
        fit = fitted(init, max_iterations)
        forward = jax.jit(lambda x, t, fit=fit: jax.jvp(fit, (x,), (t,), True))
        theta, tangent, (converged, steps) = forward(x, x_dot)
        assert bool(converged)
        hessian = np.asarray(jax.hessian(nll)(theta, x))
        gradient = functools.partial(jax.grad(nll), theta)
        _, g_dot = jax.jvp(gradient, (x,), (x_dot,))
        implicit = -np.linalg.solve(hessian, np.asarray(g_dot))
        pinned = math.sqrt(20 * eps / np.linalg.eigvalsh(hessian)[0])
        np.testing.assert_allclose(tangent, implicit, rtol=100 * pinned)
        tangents.append(np.asarray(tangent))
        iterations.append(int(steps))
    assert iterations[1] > iterations[0]  # different paths to the optimum
    centred = x - x.mean()
    closed = np.array(
        [x_dot.mean(), jnp.mean(centred * (x_dot - x_dot.mean())) / theta[1]]
    )
    np.testing.assert_allclose(tangents[0], tangents[1], rtol=100 * pinned)
    np.testing.assert_allclose(tangents[1], closed, rtol=100 * pinned)

    # Not unrolled: the loop of the differentiated fit carries exactly what the
    # plain fit's loop carries (no tangents).  (The primal is unchanged bit for
    # bit: tests/test_golden.py, e.g. the camel back's Newton fits.)
    fit = fitted(far, 200)
    plain = jax.make_jaxpr(lambda x: fit(x)[0])(x)
    differentiated = jax.make_jaxpr(lambda x, t: jax.jvp(fit, (x,), (t,), True))(
        x, x_dot
    )
    assert _while_carries(plain) == _while_carries(differentiated) != []
