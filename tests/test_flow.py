"""The rational-quadratic spline flow: exact density, bijection, training quality."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from jaxunc.errors import InvalidArgument
from jaxunc.models import model_from_functions
from jaxunc.results import Result
from jaxunc.surrogates import Flow, base
from jaxunc.surrogates.flow import rational_quadratic_spline

N_TRAIN = 100
MEMBERS = 8
ALPHA = 1e-3


def _camelback(key, theta, n):
    side_key, noise_key = jax.random.split(key)
    side = jnp.where(jax.random.bernoulli(side_key, 0.5, (n,)), 1.0, -1.0)
    return theta["mu"] * side + jax.random.normal(noise_key, (n,))


def _ks_pvalues(samples, references):
    return np.array(
        [
            stats.ks_2samp(s, r, method="exact").pvalue
            for s, r in zip(samples, references, strict=True)
        ]
    )


def _fisher_combined(pvalues):
    return stats.combine_pvalues(pvalues, method="fisher").pvalue


@pytest.fixture(scope="module")
def trained_1d():
    """Default flows on MEMBERS training samples each of N(1, 1) and a camel back
    (unit bumps at ±4), one vmapped training of 2·MEMBERS members."""
    flow = Flow()
    key = jax.random.key(4)
    gauss_key, camel_key, fit_key = jax.random.split(key, 3)
    gauss = 1.0 + jax.random.normal(gauss_key, (MEMBERS, N_TRAIN))
    camel = jax.vmap(lambda k: _camelback(k, {"mu": 4.0}, N_TRAIN))(
        jax.random.split(camel_key, MEMBERS)
    )
    data = jnp.concatenate([gauss, camel])
    keys = jax.random.split(fit_key, 2 * MEMBERS)
    params = jax.jit(jax.vmap(flow.fit))(keys, data)
    return flow, keys, data, params


def _member(params, i):
    return jax.tree_util.tree_map(lambda leaf: leaf[i], params)


def test_spline_inverse_and_log_det(x64):
    """Float64: inverse ∘ forward = identity, log|dy/dx| equals the autodiff
    derivative, monotone, identity outside [-bound, bound]."""
    bins = 6
    spline = 2.0 * jax.random.normal(
        jax.random.key(0), (200, 3 * bins - 1), jnp.float64
    )
    x = jnp.linspace(-4.5, 4.5, 200, dtype=jnp.float64)

    @jax.jit
    def check(x, spline):
        y, log_det = rational_quadratic_spline(x, spline, 3.0)
        back, log_det_inverse = rational_quadratic_spline(y, spline, 3.0, inverse=True)
        derivative = jax.vmap(
            jax.grad(lambda xi, p: rational_quadratic_spline(xi, p, 3.0)[0])
        )(x, spline)
        return y, log_det, back, log_det_inverse, derivative

    y, log_det, back, log_det_inverse, derivative = check(x, spline)
    np.testing.assert_allclose(back, x, atol=1e-10)
    np.testing.assert_allclose(log_det_inverse, -log_det, atol=1e-8)
    np.testing.assert_allclose(log_det, jnp.log(derivative), atol=1e-10)
    assert np.all(derivative > 0)
    outside = np.abs(np.asarray(x)) >= 3.0
    np.testing.assert_array_equal(np.asarray(y)[outside], np.asarray(x)[outside])


@pytest.fixture(scope="module")
def trained_2d():
    """Default flows on MEMBERS samples of a user's 2-D correlated Gaussian model."""
    cholesky = jnp.array([[2.0, 0.0], [1.6, 1.2]])

    def sample(key, theta, n):
        return theta["mu"] + jax.random.normal(key, (n, 2)) @ cholesky.T

    def log_prob(x, theta):
        covariance = cholesky @ cholesky.T
        d = x - theta["mu"]
        return -0.5 * jnp.einsum("ni,ij,nj->n", d, jnp.linalg.inv(covariance), d)

    model = model_from_functions(sample, log_prob)
    theta = {"mu": jnp.array([3.0, -1.0])}
    flow = Flow()
    data_keys = jax.random.split(jax.random.key(11), MEMBERS)
    data = jax.vmap(lambda k: model.sample(k, theta, N_TRAIN))(data_keys)
    fit_keys = jax.random.split(jax.random.key(12), MEMBERS)
    params = jax.jit(jax.vmap(flow.fit))(fit_keys, data)
    return flow, data, params


def test_coupling_flow_log_det_matches_jacobian(trained_2d):
    """2-D coupling flow: log_prob = log N(z) + log|det ∂z/∂x| with the Jacobian by
    autodiff, and sampling inverts the forward map (float32: tolerances 1e-4, a
    few hundred ε relative)."""
    flow, _, params = trained_2d
    member = _member(params, 0)
    shift, scale = member.standardization

    def to_latent(event):
        z, _ = flow._forward(member.layers, ((event - shift) / scale)[None, :])
        return z[0]

    @jax.jit
    def check(x, events):
        z = jax.vmap(to_latent)(x)
        jacobian = jax.vmap(jax.jacfwd(to_latent))(x)
        latent = jax.vmap(to_latent)(events)
        back = shift + scale * flow._inverse(member.layers, latent)
        return z, jacobian, flow.log_prob(x, member), back

    x = jnp.array([3.0, -1.0]) + 2.0 * jax.random.normal(jax.random.key(3), (7, 2))
    events = jax.jit(flow.sample, static_argnums=2)(jax.random.key(5), member, 9)
    z, jacobian, log_prob, back = check(x, events)
    expected = (
        stats.multivariate_normal(np.zeros(2), np.eye(2)).logpdf(np.asarray(z))
        + np.linalg.slogdet(np.asarray(jacobian, np.float64))[1]
    )
    np.testing.assert_allclose(log_prob, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(back, events, rtol=1e-4, atol=1e-4)


def test_log_prob_integrates_to_one(trained_1d):
    """∫ q(x) dx = 1 by the trapezoid rule (step 0.002 against features of width
    ≳ 0.1: discretisation error ≲ 1e-5; float32 sum of 4e4 terms ~1e-5) within 1e-3."""
    flow, _, _, params = trained_1d
    log_prob = jax.jit(flow.log_prob)
    grid = jnp.linspace(-40.0, 40.0, 40_001)
    for i in (0, MEMBERS):  # a Gaussian member and a camel-back member
        density = jnp.exp(log_prob(grid, _member(params, i)))
        assert float(jnp.trapezoid(density, grid)) == pytest.approx(1.0, abs=1e-3)


def test_samples_agree_with_training_distribution(trained_1d):
    """Two-sample KS of N_TRAIN flow events against each member's training sample.

    Criterion: if the flow's distribution were the truth, each p-value would be
    uniform (events independent of the training sample; a fit to the training sample
    only pulls its events towards it, making p larger), so Fisher's combination of
    the MEMBERS p-values is a valid p-value; the test fails if it is below
    ALPHA = 1e-3.  Its power is checked on the same samples: a Gaussian with the
    training sample's mean and standard deviation (what a flow that missed the
    two bumps would give) is rejected for the camel back.
    """
    flow, _, data, params = trained_1d
    keys = jax.random.split(jax.random.key(7), 2 * MEMBERS)
    events = jax.jit(jax.vmap(lambda k, p: flow.sample(k, p, N_TRAIN)))(keys, params)
    assert events.shape == (2 * MEMBERS, N_TRAIN)
    data, events = np.asarray(data), np.asarray(events)
    for group in (slice(0, MEMBERS), slice(MEMBERS, None)):
        pvalues = _ks_pvalues(events[group], data[group])
        assert _fisher_combined(pvalues) > ALPHA, pvalues
    # power: moment-matched Gaussians do not pass for the camel back
    rng = np.random.default_rng(0)
    camel = data[MEMBERS:]
    gaussian = camel.mean(1, keepdims=True) + camel.std(1, keepdims=True) * (
        rng.standard_normal(camel.shape)
    )
    assert _fisher_combined(_ks_pvalues(gaussian, camel)) < ALPHA


def test_training_losses_recorded(trained_1d):
    flow, _, _, params = trained_1d
    losses = flow.training_losses(params)
    assert set(losses) == {"nll"}
    assert losses["nll"].shape == (2 * MEMBERS, flow.steps // flow.record_every)
    assert np.all(np.isfinite(losses["nll"]))
    # maximum likelihood decreases the training NLL from start to end
    assert np.all(losses["nll"][:, -1] < losses["nll"][:, 0])


def test_vmap_equals_loop_and_same_key_same_params():
    """K = 3 trainings under one vmap against the same three trainings one by one
    (short runs: 50 steps, 2 layers).  Not bitwise: batched and unbatched matrix
    products round differently in float32 (ε ≈ 1.2e-7), and 50 Adam steps amplify
    that to ~1e-5 relative (measured); the bound is 1e-3 relative, while a different
    key changes the parameters by more than 1e-2 (checked).  The same key gives the
    same parameters bit for bit."""
    flow = Flow(steps=50, record_every=25, layers=2)  # 2 layers: a quicker compile
    data = 1.0 + jax.random.normal(jax.random.key(1), (3, N_TRAIN))
    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(flow.fit))(keys, data)
    fit = jax.jit(flow.fit)
    for i in range(3):
        alone = fit(keys[i], data[i])
        for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(batched), strict=True):
            np.testing.assert_allclose(a, b[i], rtol=1e-3, atol=1e-3 * np.abs(a).max())
    alone = fit(keys[0], data[0])
    again = fit(keys[0], data[0])
    for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    other = fit(keys[1], data[0])
    difference = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(other), strict=True)
    )
    assert difference > 1e-2


def test_user_model_two_dimensional_correlated_gaussian(trained_2d):
    """A user's 2-D model: two-sample KS of the flow's events against the training
    sample on the two marginals and the two diagonal projections, Fisher-combined
    over the members per projection (criterion as for 1-D); the four projections of
    a member are dependent, so each gets ALPHA / 4 (Bonferroni)."""
    flow, data, params = trained_2d
    keys = jax.random.split(jax.random.key(13), MEMBERS)
    events = jax.jit(jax.vmap(lambda k, p: flow.sample(k, p, N_TRAIN)))(keys, params)
    assert events.shape == (MEMBERS, N_TRAIN, 2)
    assert flow.log_prob(events[0], _member(params, 0)).shape == (N_TRAIN,)
    data, events = np.asarray(data), np.asarray(events)
    for v in np.array([[1, 0], [0, 1], [1, 1], [1, -1]], dtype=float):
        pvalues = _ks_pvalues(events @ v, data @ v)
        assert _fisher_combined(pvalues) > ALPHA / 4, (v, pvalues)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("steps", 0),
        ("batch_size", -1),
        ("learning_rate", 0.0),
        ("layers", 0),
        ("bins", 1),
        ("bound", float("nan")),
        ("width", 2.5),
        ("depth", 0),
        ("record_every", 7),
        ("optimizer", "adam"),
        ("schedule", "linear"),
        ("weight_decay", -1.0),
        ("ema_decay", 1.0),
        ("holdout", 1.0),
    ],
)
def test_bad_arguments_raise(argument, value):
    with pytest.raises(InvalidArgument, match=argument) as error:
        Flow(**{argument: value})
    assert isinstance(error.value, ValueError)
    assert error.value.argument == argument


def test_bad_data_shape_raises():
    flow = Flow(steps=25)
    with pytest.raises(ValueError, match="data"):
        flow.fit(jax.random.key(0), jnp.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="n_train"):
        flow.fit(jax.random.key(0), jnp.zeros((1,)))


def _jaxpr_text(function, *args) -> str:
    """The jaxpr of ``function(*args)`` as text, object addresses removed."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(jax.make_jaxpr(function)(*args)))


def test_optimizer_argument_and_protocol():
    """``optimizer=None`` is ``default_optimizer()`` (passed explicitly it traces to
    the same program, so the same flow bit for bit); another optimizer trains a
    different flow; ``fit_result`` flags a non-finite training; ``min_train`` and
    ``training_losses`` through the protocol functions; the repr shows the
    optimizer only when one is given."""
    flow = Flow(steps=20, record_every=10, layers=1, bins=4)
    data = jax.random.normal(jax.random.key(1), (N_TRAIN,))
    key = jax.random.key(0)
    default = jax.jit(flow.fit)(key, data)
    explicit = Flow(
        steps=20, record_every=10, layers=1, bins=4, optimizer=flow.default_optimizer()
    )
    assert _jaxpr_text(explicit.fit, key, data) == _jaxpr_text(flow.fit, key, data)
    sgd = Flow(steps=20, record_every=10, layers=1, bins=4, optimizer=optax.sgd(0.1))
    other = jax.jit(sgd.fit)(key, data)
    assert float(jnp.max(jnp.abs(other.layers[0] - default.layers[0]))) > 1e-3
    assert "optimizer" not in repr(flow) and "optimizer=" in repr(sgd)
    assert base.min_train(flow) == 2
    assert int(base.fit_result(flow, default)) == Result.SUCCESSFUL
    diverged = jax.jit(flow.fit)(key, data.at[3].set(jnp.inf))
    assert int(base.fit_result(flow, diverged)) == Result.NONFINITE_VALUE
    assert base.training_losses(flow, default)["nll"].shape == (2,)


def test_holdout_keeps_the_best_held_out_step():
    """``holdout`` with ``ema_decay``: the returned flow is the averaged iterate
    with the lowest held-out NLL.  A tiny flow trained hard (learning rate 0.1, 40
    steps, one loss record per step) on 16 events overfits, so the held-out NLL has
    its minimum before the last step (checked); the returned flow's held-out NLL,
    recomputed from ``log_prob`` on the events of ``holdout_split``, equals that
    minimum (float32: 1e-4 relative) and differs from the last step's.  The same
    key gives the same flow bit for bit; the repr names the options only away from
    their defaults.  (One compiled program: ~4 CPU-seconds.)"""
    flow = Flow(
        steps=40,
        record_every=1,
        layers=1,
        bins=2,
        learning_rate=0.1,
        holdout=0.25,
        ema_decay=0.5,
    )
    data = jax.random.normal(jax.random.key(2), (16,)) ** 3
    key = jax.random.key(0)

    @jax.jit
    def fit_and_held_out_nll(key, data):
        params = flow.fit(key, data)
        held_out, _ = flow.holdout_split(key, data)
        return params, -jnp.mean(flow.log_prob(held_out, params))

    params, nll = fit_and_held_out_nll(key, data)
    curve = np.asarray(params.losses["heldout_nll"])
    assert curve.shape == (40,) and np.argmin(curve) < 39
    held_out, kept = jax.eval_shape(flow.holdout_split, key, data)
    assert held_out.shape == (4,) and kept.shape == (12,)
    assert float(nll) == pytest.approx(curve.min(), rel=1e-4)
    assert float(nll) != pytest.approx(curve[-1], rel=1e-3)
    again, _ = fit_and_held_out_nll(key, data)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert "holdout=0.25" in repr(flow) and "weight_decay" not in repr(flow)
    assert "holdout" not in repr(Flow()) and "schedule" not in repr(Flow())
