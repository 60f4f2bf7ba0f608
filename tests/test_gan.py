"""The GAN surrogate: training quality, determinism, vmap = loop, argument checks."""

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
from jaxunc.surrogates import GAN, base
from jaxunc.surrogates.gan import GANTrainingState

N_TRAIN = 100
MEMBERS = 8
ALPHA = 1e-3


def _camelback(key, n):
    side_key, noise_key = jax.random.split(key)
    side = jnp.where(jax.random.bernoulli(side_key, 0.5, (n,)), 1.0, -1.0)
    return 4.0 * side + jax.random.normal(noise_key, (n,))


def _log_normal_model():
    def sample(key, theta, n):
        return jnp.exp(theta["m"] + theta["s"] * jax.random.normal(key, (n,)))

    def log_prob(x, theta):
        z = (jnp.log(x) - theta["m"]) / theta["s"]
        return -0.5 * z * z - jnp.log(x * theta["s"]) - 0.5 * jnp.log(2 * jnp.pi)

    return model_from_functions(sample, log_prob)


def _ks_pvalues(samples, references):
    return np.array(
        [
            stats.ks_2samp(s, r, method="exact").pvalue
            for s, r in zip(samples, references, strict=True)
        ]
    )


def _fisher_combined(pvalues):
    return stats.combine_pvalues(pvalues, method="fisher").pvalue


def _member(params, i):
    return jax.tree_util.tree_map(lambda leaf: leaf[i], params)


@pytest.fixture(scope="module")
def trained():
    """Default GANs, one vmapped training of 3·MEMBERS members: MEMBERS training
    samples each of N(1, 1), a camel back (unit bumps at ±4) and a user's log-normal
    model (``model_from_functions``), N_TRAIN events each."""
    gan = GAN()
    gauss_key, camel_key, user_key, fit_key = jax.random.split(jax.random.key(3), 4)
    gauss = 1.0 + jax.random.normal(gauss_key, (MEMBERS, N_TRAIN))
    camel = jax.vmap(lambda k: _camelback(k, N_TRAIN))(
        jax.random.split(camel_key, MEMBERS)
    )
    model = _log_normal_model()
    user = jax.vmap(lambda k: model.sample(k, {"m": 0.5, "s": 0.6}, N_TRAIN))(
        jax.random.split(user_key, MEMBERS)
    )
    data = jnp.concatenate([gauss, camel, user])
    keys = jax.random.split(fit_key, 3 * MEMBERS)
    params = jax.jit(jax.vmap(gan.fit))(keys, data)
    return gan, keys, data, params


def test_samples_agree_with_training_distribution(trained):
    """Two-sample KS of N_TRAIN generated events against each member's training
    sample, for the Gaussian, the camel back and the user's log-normal model.

    Criterion: if the GAN's distribution were the truth, each p-value would be
    uniform (events independent of the training sample; a fit to the training sample
    only pulls its events towards it, making p larger), so Fisher's combination of the
    MEMBERS p-values of a model is a valid p-value; the test fails if it is below
    ALPHA = 1e-3.  Power on the same samples: Gaussians with each training sample's
    mean and standard deviation (a GAN that missed the two bumps, or the skew of the
    log-normal) are rejected.
    """
    gan, _, data, params = trained
    keys = jax.random.split(jax.random.key(8), 3 * MEMBERS)
    events = jax.jit(jax.vmap(lambda k, p: gan.sample(k, p, N_TRAIN)))(keys, params)
    assert events.shape == (3 * MEMBERS, N_TRAIN)
    assert np.all(np.isfinite(events))
    data, events = np.asarray(data), np.asarray(events)
    rng = np.random.default_rng(0)
    for group in range(3):
        rows = slice(group * MEMBERS, (group + 1) * MEMBERS)
        pvalues = _ks_pvalues(events[rows], data[rows])
        assert _fisher_combined(pvalues) > ALPHA, (group, pvalues)
        if group:  # camel back, log-normal: the moment-matched Gaussian fails
            train = data[rows]
            gaussian = train.mean(1, keepdims=True) + train.std(1, keepdims=True) * (
                rng.standard_normal(train.shape)
            )
            assert _fisher_combined(_ks_pvalues(gaussian, train)) < ALPHA


def test_training_losses_recorded(trained):
    """Curves of the right length; at the end the discriminator is near chance
    (its cross-entropy 2 log 2 ≈ 1.386 when it cannot tell the events apart; a
    collapsed generator lets it drive the loss well below)."""
    gan, _, _, params = trained
    losses = gan.training_losses(params)
    assert set(losses) == {"generator", "discriminator"}
    for curve in losses.values():
        assert curve.shape == (3 * MEMBERS, gan.steps // gan.record_every)
        assert np.all(np.isfinite(curve))
    # Against the best discriminator the cross-entropy is 2 log 2 - 2 JSD(data, G)
    # (Goodfellow et al. 2014), so 0.1 nats below chance means a Jensen-Shannon
    # divergence of 0.05 nats, that of two unit Gaussians about 0.65 sigma apart:
    # a coarse "not collapsed" criterion (the KS tests above check the fit itself);
    # a discriminator lagging behind the generator can sit above 2 log 2 as well.
    assert np.all(np.abs(losses["discriminator"][:, -1] - 2 * np.log(2)) < 0.1)


def test_vmap_equals_loop_and_same_key_same_params():
    """2-D events; K = 3 trainings under one vmap against the same three trainings
    one by one (short runs: 50 steps, one hidden layer).  Not bitwise: batched and
    unbatched matrix products round differently in float32 (ε ≈ 1.2e-7), and 50
    adversarial Adam steps amplify that to ~1e-5 relative (measured); the bound is
    1e-3 relative, while a different key changes the parameters by more than 1e-2
    (checked).  The same key gives the same parameters bit for bit."""
    gan = GAN(steps=50, record_every=25, depth=1)  # depth 1: a quicker compile
    scale = jnp.array([1.0, 5.0])
    data = jax.random.normal(jax.random.key(1), (3, N_TRAIN, 2)) * scale
    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(gan.fit))(keys, data)
    fit = jax.jit(gan.fit)
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
    events = jax.jit(gan.sample, static_argnums=2)(jax.random.key(2), alone, 50)
    assert events.shape == (50, 2)
    assert np.all(np.isfinite(events))


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("steps", 0),
        ("batch_size", 0),
        ("learning_rate", -1.0),
        ("beta1", 1.0),
        ("width", 0),
        ("depth", 1.5),
        ("noise_dim", 0),
        ("r1_weight", -0.1),
        ("r1_every", 0),
        ("r1_every", 3),  # does not divide steps = 1000 and record_every = 50
        ("pack", 0),
        ("ema_decay", 1.0),
        ("record_every", 7),
        ("optimizer", "adam"),
        ("optimizer", optax.adam),
    ],
)
def test_bad_arguments_raise(argument, value):
    with pytest.raises(InvalidArgument, match=argument) as error:
        GAN(**{argument: value})
    assert isinstance(error.value, ValueError)
    assert error.value.argument == argument


def test_lazy_r1_penalises_the_first_step_of_each_group():
    """``r1_every = k``: of each group of k steps the first carries the penalty
    with weight k (the same penalty per step on average), the other k - 1 none, and
    the recorded loss is the group's mean.  A stand-in step adds its penalty scale
    to the state: k for the lazy schedule (k² if every step were penalised with the
    scaled weight, 1 if the weight were not scaled); the real step's
    penalty-free branch is the ``r1_weight = 0`` GAN's, trained in
    ``test_protocol_min_train_fit_result_and_losses``."""
    gan = GAN(r1_every=4, steps=40, record_every=20)

    def step(state, key, r1_scale):
        return state + r1_scale, {"scale": jnp.float32(r1_scale)}

    state, losses = gan._lazy_group(jnp.float32(0), jax.random.key(0), step=step)
    assert float(state) == 4.0
    assert float(losses["scale"]) == 1.0


def test_bad_data_shape_raises():
    gan = GAN(steps=50)
    with pytest.raises(ValueError, match="data"):
        gan.fit(jax.random.key(0), jnp.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="n_train"):
        gan.fit(jax.random.key(0), jnp.zeros((1,)))


def _jaxpr_text(function, *args) -> str:
    """The jaxpr of ``function(*args)`` as text, object addresses removed."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(jax.make_jaxpr(function)(*args)))


def test_optimizer_argument():
    """``optimizer=None`` is ``default_optimizer()``: passing that transformation
    explicitly traces to the same program (so trains the same GAN bit for bit);
    another optimizer (SGD) trains a different one, also as a vmapped ensemble.
    The repr, which results record, shows the optimizer only when one is given.
    (No R1 penalty, one hidden layer: quicker compiles; the optimizer's wiring does
    not depend on them.)"""
    small = {"depth": 1, "width": 8, "r1_weight": 0.0}
    gan = GAN(steps=20, record_every=10, **small)
    data = jax.random.normal(jax.random.key(1), (3, N_TRAIN))
    keys = jax.random.split(jax.random.key(0), 3)
    explicit = GAN(
        steps=20, record_every=10, **small, optimizer=gan.default_optimizer()
    )
    sgd = GAN(steps=20, record_every=10, **small, optimizer=optax.sgd(0.05))
    program = _jaxpr_text(gan.fit, keys[0], data[0])
    assert _jaxpr_text(explicit.fit, keys[0], data[0]) == program
    assert _jaxpr_text(sgd.fit, keys[0], data[0]) != program
    default = jax.jit(gan.fit)(keys[0], data[0])
    ensemble = jax.jit(jax.vmap(sgd.fit))(keys, data)
    other = _member(ensemble, 0)
    difference = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(
            jax.tree.leaves(default.generator),
            jax.tree.leaves(other.generator),
            strict=True,
        )
    )
    assert difference > 1e-3
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(ensemble))
    assert "optimizer" not in repr(gan)
    assert repr(gan).startswith("GAN(steps=20, batch_size=64,")
    assert repr(gan).endswith("ema_decay=0.0, record_every=10)")
    assert "optimizer=" in repr(sgd)


def test_protocol_min_train_fit_result_and_losses():
    """``min_train`` is max(2, pack); ``fit_result`` is successful for a normal
    training and ``nonfinite_value`` when the weights or losses are not finite (a
    NaN training event, or one weight overwritten); ``training_losses`` through
    the protocol function.  The training loop's carry is a ``GANTrainingState``."""
    assert base.min_train(GAN(pack=3)) == 3
    assert base.min_train(GAN(pack=1)) == 2
    gan = GAN(steps=20, record_every=10, depth=1, width=8, r1_weight=0.0)
    data = jax.random.normal(jax.random.key(1), (N_TRAIN,))
    fit = jax.jit(gan.fit)
    params = fit(jax.random.key(0), data)
    assert int(base.fit_result(gan, params)) == Result.SUCCESSFUL
    diverged = fit(jax.random.key(0), data.at[5].set(jnp.nan))
    assert int(base.fit_result(gan, diverged)) == Result.NONFINITE_VALUE
    generator = [dict(layer) for layer in params.generator]
    generator[0]["w"] = generator[0]["w"].at[0, 0].set(jnp.inf)
    broken = params._replace(generator=generator)
    assert int(jax.jit(gan.fit_result)(broken)) == Result.NONFINITE_VALUE
    losses = base.training_losses(gan, params)
    assert set(losses) == {"generator", "discriminator"}
    assert all(curve.shape == (2,) for curve in losses.values())
    assert GANTrainingState._fields == (
        "generator",
        "discriminator",
        "generator_optimizer_state",
        "discriminator_optimizer_state",
        "average",
    )


def test_generators_mixture_discriminator_steps_and_rates():
    """``generators=M``: M GANs trained from ``fast_random.split(key, M)`` on the
    same data as one vmapped program (each equal, within float32 batching noise, to
    the plain GAN trained alone with that key), weights with a leading axis M,
    losses averaged over them; generated event i comes from generator i mod M.
    Deterministic per key.  ``discriminator_steps``, ``discriminator_learning_rate``
    and ``generator_activation`` change the traced program (their defaults leave it
    as it was) and enter the repr only when set.  Short, small trainings; the
    plain fit is the program ``test_optimizer_argument`` compiles (cache hit)."""
    from jaxunc import random as fast_random
    from jaxunc.surrogates import _nn
    from jaxunc.surrogates.gan import GENERATOR_ACTIVATIONS

    small = {"steps": 20, "record_every": 10, "depth": 1, "width": 8}
    small["r1_weight"] = 0.0
    plain = GAN(**small)
    mixture = GAN(**small, generators=3)
    data = jax.random.normal(jax.random.key(1), (N_TRAIN,))
    key = jax.random.key(0)
    fit = jax.jit(mixture.fit)
    params = fit(key, data)
    again = fit(key, data)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert params.generator[0]["w"].shape == (3, plain.noise_dim, 8)
    assert params.losses["generator"].shape == (2,)
    plain_fit = jax.jit(plain.fit)
    for m, member_key in enumerate(fast_random.split(key, 3)):
        one = plain_fit(member_key, data)
        for a, b in zip(
            jax.tree.leaves(one.generator),
            jax.tree.leaves(params.generator),
            strict=True,
        ):
            np.testing.assert_allclose(b[m], a, rtol=1e-3, atol=1e-3 * np.abs(a).max())
    events = mixture.sample(jax.random.key(2), params, 7)
    assert events.shape == (7,)
    noise = fast_random.normal(jax.random.key(2), (3, 3, plain.noise_dim))
    shift, scale = params.standardization

    def event(i, generator):
        weights = _member(params.generator, generator)
        activation = GENERATOR_ACTIVATIONS[mixture.generator_activation]
        return shift + scale * _nn.mlp(weights, noise[i // 3, i % 3], activation)[0]

    expected = np.array([event(i, i % 3) for i in range(7)])
    np.testing.assert_allclose(events, expected, rtol=1e-5, atol=1e-5)
    # the wrong assignment (generator i // ceil(n / M), blocks) does not match
    blocked = np.array([event(i, i // 3) for i in range(7)])
    assert np.max(np.abs(events - blocked)) > 1e-3
    assert "generators" not in repr(plain) and "generators=3" in repr(mixture)
    program = _jaxpr_text(plain.fit, key, data)
    same = GAN(**small, discriminator_steps=1, discriminator_learning_rate=None)
    assert _jaxpr_text(same.fit, key, data) == program
    for options in (
        {"discriminator_steps": 2},
        {"discriminator_learning_rate": 4e-3},
        {"generator_activation": "leaky_relu"},
    ):
        other = GAN(**small, **options)
        assert _jaxpr_text(other.fit, key, data) != program
        name = next(iter(options))
        assert f"{name}=" in repr(other) and name not in repr(plain)


def test_snapshot_mixture_keeps_the_training_and_mixes_its_iterates():
    """``snapshot_fraction``: the surrogate mixes the generator at the end of the
    last ``snapshots`` record blocks (oldest first) of an unchanged training: the
    last snapshot is the final generator of ``snapshot_fraction=0``, a larger
    fraction only prepends older snapshots, ``generators × snapshots`` components
    are generator-major (GAN m's snapshots first), and generated event i comes from
    component i mod (generators × snapshots)."""
    from jaxunc import random as fast_random
    from jaxunc.surrogates import _nn
    from jaxunc.surrogates.gan import GENERATOR_ACTIVATIONS

    assert GAN().snapshots == 16 and GAN(snapshot_fraction=0).snapshots == 1
    small = {"steps": 40, "record_every": 10, "depth": 1, "width": 8}
    assert GAN(**small, snapshot_fraction=0.5).snapshots == 2
    assert GAN(**small, snapshot_fraction=1).snapshots == 4
    assert GAN(**small, snapshot_fraction=0.2).snapshots == 1
    data = jax.random.normal(jax.random.key(1), (N_TRAIN,))
    key = jax.random.key(0)
    final = jax.jit(GAN(**small, snapshot_fraction=0).fit)(key, data).generator
    half = GAN(**small, snapshot_fraction=0.5)
    two = jax.jit(half.fit)(key, data)
    four = jax.jit(GAN(**small, snapshot_fraction=1).fit)(key, data).generator
    leaves = (final, two.generator, four)
    for f, t, a in zip(*map(jax.tree.leaves, leaves), strict=True):
        assert t.shape == (2, *f.shape) and a.shape == (4, *f.shape)
        np.testing.assert_allclose(t[-1], f, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(a[2:], t)
        assert np.max(np.abs(t[0] - t[1])) > 1e-4  # the iterate moved
    assert "snapshot_fraction=0.5" in repr(half)
    assert "snapshot_fraction" not in repr(GAN())

    mixture = GAN(**small, snapshot_fraction=0.5, generators=2)
    params = jax.jit(mixture.fit)(key, data)
    assert mixture.components == 4
    assert params.generator[0]["w"].shape == (4, mixture.noise_dim, 8)
    for m, member_key in enumerate(fast_random.split(key, 2)):
        alone = jax.jit(half.fit)(member_key, data).generator
        for a, b in zip(
            jax.tree.leaves(alone), jax.tree.leaves(params.generator), strict=True
        ):
            np.testing.assert_allclose(
                b[2 * m : 2 * m + 2], a, rtol=1e-3, atol=1e-3 * np.abs(a).max()
            )
    events = mixture.sample(jax.random.key(2), params, 7)
    noise = fast_random.normal(jax.random.key(2), (2, 4, mixture.noise_dim))
    shift, scale = params.standardization
    activation = GENERATOR_ACTIVATIONS[mixture.generator_activation]

    def event(i, component):
        weights = _member(params.generator, component)
        return shift + scale * _nn.mlp(weights, noise[i // 4, i % 4], activation)[0]

    np.testing.assert_allclose(
        events, [event(i, i % 4) for i in range(7)], rtol=1e-5, atol=1e-5
    )
    # the wrong assignment (component i // 2) does not match
    wrong = np.array([event(i, i // 2) for i in range(7)])
    assert np.max(np.abs(events - wrong)) > 1e-3


def test_discriminator_schedule_spans_all_its_updates():
    """With ``discriminator_steps = k`` the discriminator takes ``k × steps`` Adam
    updates: its cosine schedule must still be above 0 after ``steps`` of them (it
    ended there when it shared the generator's schedule) and reach 0 at the end."""
    from jaxunc.surrogates import _nn

    def step_sizes(optimizer, updates):
        params = jnp.zeros((), jnp.float32)
        state = optimizer.init(params)
        sizes = []
        for _ in range(updates):
            new, state = _nn.apply_optimizer(
                optimizer, jnp.ones((), jnp.float32), state, params
            )
            sizes.append(abs(float(new - params)))
            params = new
        return sizes

    gan = GAN(steps=10, record_every=5, discriminator_steps=2)
    sizes = step_sizes(gan._discriminator_optimizer(), 2 * gan.steps)
    assert sizes[gan.steps] > 0.1 * sizes[0]
    assert sizes[-1] < 0.05 * sizes[0]
    # one update per step: the plain GAN's schedule ends after its steps
    plain = GAN(steps=10, record_every=5)._discriminator_optimizer()
    assert step_sizes(plain, gan.steps + 1)[-1] == 0.0


@pytest.mark.parametrize(
    ("argument", "options"),
    [
        ("generators", {"generators": 0}),
        ("generators", {"generators": 2.0}),
        ("discriminator_steps", {"discriminator_steps": 0}),
        ("snapshot_fraction", {"snapshot_fraction": -0.1}),
        ("snapshot_fraction", {"snapshot_fraction": 1.5}),
        ("snapshot_fraction", {"snapshot_fraction": float("nan")}),
        ("generator_activation", {"generator_activation": "relu"}),
        ("discriminator_learning_rate", {"discriminator_learning_rate": -1e-3}),
        (
            "discriminator_learning_rate",
            {"discriminator_learning_rate": 1e-3, "optimizer": optax.sgd(0.1)},
        ),
    ],
)
def test_bad_mixture_arguments_raise(argument, options):
    with pytest.raises(InvalidArgument, match=argument) as error:
        GAN(**options)
    assert error.value.argument == argument
