"""A generative adversarial network trained with optax, one pure ``fit`` per ensemble
member (so K GANs train as one ``jax.vmap(fit)``).

Loss: the non-saturating GAN loss of Goodfellow et al. (2014),

    L_D = E_data[softplus(-D(x))] + E_z[softplus(D(G(z)))] + (γ/2) E_data[|∇_x D(x)|²],
    L_G = E_z[softplus(-D(G(z)))],

with the R1 gradient penalty on the real data (Mescheder, Geiger & Nowozin 2018, "Which
training methods for GANs do actually converge?"), which makes simultaneous gradient
training locally convergent.  Why not WGAN-GP: it needs several critic steps per
generator step and a penalty on interpolated points, several times the cost per step,
and the whole point here is to train hundreds of GANs on two CPU cores; the penalised
non-saturating loss fits the 1-D targets of jaxunc (a Gaussian, the camel back, a
falling spectrum with a peak) in 1000 cheap steps (tested: samples agree with the
training sample by two-sample KS tests).  The camel back is the hardest: a
generator must carry its smooth noise across the gap between the bumps.  With
leaky-ReLU hidden units (the default until 2026-12-02), a piecewise-linear map of
the noise, some probability leaks into the gap and the bumps come out too wide:
trained on 100 events such a GAN was worth 0.67 ± 0.02 of them in 10 quantiles.
The generator's hidden units are now ``tanh`` (saturating units that can fold the
noise onto two bumps) with learning rate 5e-3, chosen by that measure among the
settings in benchmarks/RESULTS.md: 1.20 ± 0.04 at the same cost per training
(within 3 %), where the adaptive KDE is worth 1.7.  It costs on the one-bump
models: 2.04 ± 0.13 against 2.44 ± 0.18 on the Gaussian, 0.77 ± 0.02 against
0.85 ± 0.02 on the spectrum, whose narrow peak's mass the ensemble study's MLE now
gets from the generated events with N_eff/n_train 0.07 instead of 0.18.  Where the
error comes from (``benchmarks/bench_gan_diagnosis.py``): a shape bias, the
training sample's noise and the GAN's own training randomness; a mixture of
generators (``generators``) removes only the last, at M times the cost of a
training (with the tanh generator the bias is nearly gone: ``generators=4``
reaches 1.53 ± 0.06 on the camel back).  The same averaging comes free from one
training: its iterates keep circling the equilibrium, so the surrogate is the
mixture of the generator's snapshots over the last ``snapshot_fraction`` (0.8) of
the training, 1.53 ± 0.06 on the camel back at the cost of one training, 2.37 ±
0.16 on the Gaussian, 0.72 ± 0.02 on the spectrum (a narrow peak drawn slightly
wider).  The discriminator's hidden units stay leaky ReLU.

Training: the training sample is standardised (mean 0, standard deviation 1 per
dimension; shift and scale are kept in the parameters), then ``steps`` alternating
optimiser updates (Adam by default, any optax ``GradientTransformation`` through
``optimizer=``) of the discriminator and the generator run as one ``lax.scan`` over a
``GANTrainingState``.  Each step
draws a minibatch of ``batch_size`` events with replacement from the training sample
(the whole sample when ``n_train <= batch_size``) and ``batch_size`` noise vectors.
All randomness comes from the key: the same key and data give the same parameters bit
for bit.

``fit`` is differentiable in the training data in forward mode (``jax.jvp``, e.g. with
respect to the θ that generated them, through the whole training loop): minibatch
indices and noise depend on the key only, and the loop carries no integer except
optax's step counts, whose tangents are symbolic zeros.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxunc import random as fast_random
from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.surrogates import _nn

__all__ = ["GAN", "GENERATOR_ACTIVATIONS", "GANParams", "GANTrainingState"]


class GANParams(NamedTuple):
    """A trained GAN.

    Attributes:
      generator: MLP weights, noise (noise_dim,) → standardised event (d,) (the
        moving average of the training iterates, see ``ema_decay``); with a leading
        axis of ``generators × snapshots`` mixture components when that is above 1
        (generator-major: component ``m × snapshots + s`` is snapshot s of GAN m).
      discriminator: MLP weights, standardised event (d,) → logit ().
      standardization: shift and scale of the training sample (event shaped: () for
        1-D events, (d,) for d-dim events); events = shift + scale * generator(z).
      losses: ``{"generator": (n_records,), "discriminator": (n_records,)}``, each
        entry the mean over ``record_every`` consecutive steps.  "discriminator" is
        the cross-entropy part of L_D (without the R1 penalty): 2 log 2 ≈ 1.386 when
        the discriminator cannot tell generated from real events; "generator" is
        L_G, log 2 ≈ 0.693 at that point.
    """

    generator: list
    discriminator: list
    standardization: _nn.Standardization
    losses: dict


class GANTrainingState(NamedTuple):
    """The carry of the GAN's training loop (one member; a leading axis under vmap).

    Attributes:
      generator: the generator's MLP weights (the current iterate).
      discriminator: the discriminator's MLP weights.
      generator_optimizer_state: the optimiser's state for the generator.
      discriminator_optimizer_state: the optimiser's state for the discriminator.
      average: the moving average of the generator iterates (``ema_decay``; equal to
        ``generator`` when the decay is 0); what ``fit`` returns as the generator.
    """

    generator: list
    discriminator: list
    generator_optimizer_state: Any
    discriminator_optimizer_state: Any
    average: list


def _activation(x: jax.Array) -> jax.Array:
    return jax.nn.leaky_relu(x, 0.2)


GENERATOR_ACTIVATIONS = {
    "leaky_relu": _activation,
    "elu": jax.nn.elu,
    "silu": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "tanh": jnp.tanh,
}
"""The generator's hidden-layer activations (``generator_activation``); the
discriminator always uses leaky ReLU (slope 0.2)."""


@dataclasses.dataclass(frozen=True)
class GAN:
    """A small MLP GAN (generator and discriminator), trained with Adam by default.

    Args:
      steps: training steps (one discriminator and one generator update each); a
        multiple of ``record_every``.
      batch_size: events per minibatch (the whole training sample when it is smaller).
      learning_rate: initial Adam step size of both networks, cosine-decayed to 0
        over the ``steps`` (the final generator is then a slowly moving iterate);
        ignored when ``optimizer`` is given.  5e-3 by measurement on the camel back
        with the tanh generator, final generator alone (amplification 1.20 ± 0.04
        against 1.18 ± 0.04 at 3e-3 and 1.07 ± 0.04 at 2e-3, 256
        pseudo-experiments; 0.83 ± 0.05 at 1e-2 and 0.56 ± 0.03 at 1e-3, 64).
      beta1: Adam's first-moment decay (0.5 is the usual choice for GANs); ignored
        when ``optimizer`` is given.
      width: units per hidden layer of both networks.
      depth: hidden layers of both networks.
      noise_dim: dimension of the generator's standard-normal input.
      r1_weight: γ of the R1 penalty (0 disables it and skips its second-order
        backward pass, about half the cost of a step), in standardised units; 4 by
        measurement on the camel back (leaky-ReLU generator at learning rate 2e-3:
        amplification 0.65 against 0.48 at γ = 1 and at γ = 10; with the tanh
        generator at 5e-3, γ = 2 and 8 give 1.05 and 1.09 ± 0.07, within errors).
      r1_every: apply the R1 penalty on every ``r1_every``-th discriminator update
        only, with weight ``r1_every × r1_weight`` ("lazy regularisation", Karras et
        al. 2020, StyleGAN2): the same penalty on average at a fraction of its cost;
        1 (the default) penalises every update.  Must divide ``steps`` and
        ``record_every``.
      pack: events per discriminator input ("PacGAN", Lin et al. 2018): the
        discriminator judges ``pack`` events at once, which lets it see the relative
        weights of separated modes and so penalises the generator for getting them
        wrong; 1 is the plain GAN.  Minibatches are rounded down to a multiple of it.
      ema_decay: the returned generator is an exponential moving average of the
        generator's weights over the training steps, with this decay per step (0 keeps
        the last iterate, the default).  Averaging damps the rotation of simultaneous
        GAN training around its equilibrium (Yazıcı et al. 2019); in a profile on the
        camel back it balanced the bump weights but narrowed the bumps, so it is off
        by default.
      record_every: steps per recorded (block-averaged) loss value.
      generators: M, the number of GANs (generator and discriminator each) trained
        from independent keys (``fast_random.split(key, M)`` of the training key) on
        the same training sample, as one vmapped program inside ``fit``; the
        surrogate is their equal-weight mixture (generated event i comes from
        generator i mod M, so every prefix of the sample is balanced).  Averaging
        generators removes (1 − 1/M) of the variance that the GAN's own training
        randomness adds to the generated distribution (``bench_gan_diagnosis.py``),
        at M times the cost of a training.  1 (the default) is the plain GAN.
      snapshot_fraction: the surrogate is the equal-weight mixture of the
        generator's snapshots at the end of every record block (every
        ``record_every`` steps) in the last ``snapshot_fraction`` of the training:
        ``snapshots = max(1, ⌊snapshot_fraction × steps / record_every⌋)`` of them,
        the last always included; 0 keeps the final generator alone.  The iterates
        of simultaneous GAN training keep moving around the equilibrium, so a
        mixture of them averages part of the training randomness away for free
        (the training is unchanged; "snapshot ensembles", Huang et al. 2017, without
        restarts).  0.8 (16 snapshots of the default 1000 steps) by measurement on
        the camel back, 256 pseudo-experiments, seed 7: amplification at 10
        quantiles 1.53 ± 0.06 against 1.20 ± 0.04 for the final generator alone
        (benchmarks/RESULTS.md).
      discriminator_steps: discriminator updates per generator update, each on a
        fresh minibatch and fresh noise (1, the default: alternating updates); the
        discriminator's default schedule spans its ``steps × discriminator_steps``
        updates.
      discriminator_learning_rate: the discriminator's initial Adam step size
        (cosine-decayed like the generator's), for two time-scale updates (Heusel et
        al. 2017); None (the default) is ``learning_rate``.  Must be None when
        ``optimizer`` is given.
      generator_activation: the generator's hidden-layer activation, one of
        ``GENERATOR_ACTIVATIONS`` ("tanh", the default, "leaky_relu" (slope 0.2;
        the default until 2026-12-02), "elu", "silu", "softplus"); the
        discriminator's is always leaky ReLU.  On the camel back (10 quantiles, 64
        pseudo-experiments, learning rate 2e-3): tanh 1.02 ± 0.07, leaky ReLU
        0.65 ± 0.04, silu 0.49, elu 0.37, softplus 0.10.
      optimizer: an optax ``GradientTransformation`` that updates both networks
        (each with its own state), e.g. ``optax.adamw(...)``; None (default) is
        ``default_optimizer()``: ``optax.adam(optax.cosine_decay_schedule(
        learning_rate, steps), b1=beta1)``.  Its state must be a pytree of arrays
        (every optax transformation's is) so that ensembles train under ``vmap``.

    ``fit(key, data)`` takes ``data`` of shape (n_train,) or (n_train, d) and returns
    ``GANParams``; ``sample(key, params, n)`` returns (n,) or (n, d) to match.
    """

    steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 5e-3
    beta1: float = 0.5
    width: int = 32
    depth: int = 2
    noise_dim: int = 4
    r1_weight: float = 4.0
    r1_every: int = 1
    pack: int = 2
    ema_decay: float = 0.0
    record_every: int = 50
    optimizer: optax.GradientTransformation | None = None
    generators: int = 1
    snapshot_fraction: float = 0.8
    discriminator_steps: int = 1
    discriminator_learning_rate: float | None = None
    generator_activation: str = "tanh"

    def __post_init__(self) -> None:
        _nn.check_schedule(self.steps, self.record_every)
        for name in (
            "batch_size",
            "width",
            "depth",
            "noise_dim",
            "pack",
            "r1_every",
            "generators",
            "discriminator_steps",
        ):
            check_positive_int(name, getattr(self, name))
        if self.steps % self.r1_every or self.record_every % self.r1_every:
            raise InvalidArgument(
                "r1_every",
                f"must divide steps and record_every (got r1_every={self.r1_every}, "
                f"steps={self.steps}, record_every={self.record_every})",
            )
        _nn.validate_positive_float("learning_rate", self.learning_rate)
        _nn.validate_positive_float("r1_weight", self.r1_weight, allow_zero=True)
        _nn.validate_positive_float("beta1", self.beta1, allow_zero=True)
        if not self.beta1 < 1:
            raise InvalidArgument("beta1", f"must be in [0, 1) (got {self.beta1!r})")
        _nn.validate_positive_float("ema_decay", self.ema_decay, allow_zero=True)
        if not self.ema_decay < 1:
            raise InvalidArgument(
                "ema_decay", f"must be in [0, 1) (got {self.ema_decay!r})"
            )
        _nn.validate_positive_float(
            "snapshot_fraction", self.snapshot_fraction, allow_zero=True
        )
        if not self.snapshot_fraction <= 1:
            raise InvalidArgument(
                "snapshot_fraction",
                f"must be in [0, 1] (got {self.snapshot_fraction!r})",
            )
        _nn.check_optimizer(self.optimizer)
        if self.generator_activation not in GENERATOR_ACTIVATIONS:
            raise InvalidArgument(
                "generator_activation",
                f"must be one of {sorted(GENERATOR_ACTIVATIONS)} "
                f"(got {self.generator_activation!r})",
            )
        if self.discriminator_learning_rate is not None:
            _nn.validate_positive_float(
                "discriminator_learning_rate", self.discriminator_learning_rate
            )
            if self.optimizer is not None:
                raise InvalidArgument(
                    "discriminator_learning_rate",
                    "must be None when optimizer is given (got "
                    f"{self.discriminator_learning_rate!r})",
                )

    def __repr__(self) -> str:
        return _nn.dataclass_repr(
            self,
            omit_if_none=("optimizer", "discriminator_learning_rate"),
            omit_if_default=(
                "generators",
                "snapshot_fraction",
                "discriminator_steps",
                "generator_activation",
            ),
        )

    @property
    def fit_cost(self) -> int:
        """Work of one fit in event-equivalents (``steps × batch_size``), for the
        engine's step sizing (``jaxunc.surrogates.base.fit_cost``)."""
        return (
            self.steps
            * self.batch_size
            * self.generators
            * (1 + self.discriminator_steps)
            // 2
        )

    @property
    def snapshots(self) -> int:
        """Generator snapshots in the mixture of one GAN (``snapshot_fraction``):
        ``max(1, ⌊snapshot_fraction × steps / record_every⌋)``."""
        blocks = self.steps // self.record_every
        # + 1e-9: a product such as 0.8 × 20 may round to just below the integer
        return max(1, math.floor(self.snapshot_fraction * blocks + 1e-9))

    @property
    def components(self) -> int:
        """Mixture components of the surrogate: ``generators × snapshots``."""
        return self.generators * self.snapshots

    @property
    def min_train(self) -> int:
        """Fewest training events: two (the standardisation needs a spread), and at
        least ``pack``."""
        return max(2, self.pack)

    def default_optimizer(self) -> optax.GradientTransformation:
        """Adam with first-moment decay ``beta1`` and step size ``learning_rate``
        cosine-decayed to 0 over ``steps``: what trains the networks unless
        ``optimizer`` is given."""
        return self._cosine_adam(self.learning_rate, self.steps)

    def _cosine_adam(
        self, learning_rate: float, updates: int
    ) -> optax.GradientTransformation:
        """Adam (first-moment decay ``beta1``) with ``learning_rate`` cosine-decayed
        to 0 over ``updates`` optimiser updates."""
        schedule = optax.cosine_decay_schedule(learning_rate, updates)
        return optax.adam(schedule, b1=self.beta1)

    def _optimizer(self) -> optax.GradientTransformation:
        return self.default_optimizer() if self.optimizer is None else self.optimizer

    def _discriminator_optimizer(self) -> optax.GradientTransformation:
        """The given ``optimizer``, else Adam from ``discriminator_learning_rate``
        (None: ``learning_rate``) decayed over the discriminator's own
        ``steps × discriminator_steps`` updates, so that its step size reaches 0 at
        the end of training, not part-way through it."""
        if self.optimizer is not None:
            return self.optimizer
        rate = self.discriminator_learning_rate
        return self._cosine_adam(
            self.learning_rate if rate is None else rate,
            self.steps * self.discriminator_steps,
        )

    def fit(self, key: jax.Array, data: jax.Array) -> GANParams:
        """Train on ``data`` (n_train,) or (n_train, d); pure and jittable.  With
        ``generators = M > 1`` the discriminator weights have a leading axis M and
        the recorded losses are the means over the M GANs; the generator weights
        have a leading axis ``components`` when it is above 1."""
        _nn.check_data(data, self.min_train, "the GAN")
        z_data, standardization = _nn.standardize(data)
        if self.generators == 1:
            generator, discriminator, losses = self._fit_one(key, z_data)
        else:
            keys = fast_random.split(key, self.generators)
            generator, discriminator, losses = jax.vmap(
                self._fit_one, in_axes=(0, None)
            )(keys, z_data)
            losses = jax.tree_util.tree_map(lambda v: jnp.mean(v, axis=0), losses)
            if self.snapshots > 1:  # (M, S, ...) -> (M × S, ...)
                generator = jax.tree_util.tree_map(
                    lambda w: w.reshape(-1, *w.shape[2:]), generator
                )
        return GANParams(generator, discriminator, standardization, losses)

    def _fit_one(
        self, key: jax.Array, z_data: jax.Array
    ) -> tuple[list, list, dict[str, jax.Array]]:
        """One GAN trained on the standardised sample ``z_data`` (n, d): the
        (averaged) generator (with a leading axis ``snapshots``, oldest first, when
        that is above 1), the discriminator and the recorded losses."""
        dtype = z_data.dtype
        dim = z_data.shape[1]
        hidden = (self.width,) * self.depth
        init_key, train_key = fast_random.split(key)
        g_key, d_key = fast_random.split(init_key)
        generator = _nn.init_mlp(g_key, (self.noise_dim, *hidden, dim), dtype)
        discriminator = _nn.init_mlp(d_key, (self.pack * dim, *hidden, 1), dtype)
        optimizer = self._optimizer()
        d_optimizer = self._discriminator_optimizer()
        state = GANTrainingState(
            generator=generator,
            discriminator=discriminator,
            generator_optimizer_state=optimizer.init(generator),
            discriminator_optimizer_state=d_optimizer.init(discriminator),
            average=generator,
        )
        batch = min(self.batch_size, z_data.shape[0])
        batch -= batch % self.pack
        step = functools.partial(
            self._step,
            data=z_data,
            batch=batch,
            optimizer=optimizer,
            d_optimizer=d_optimizer,
        )
        if self.r1_every > 1:
            step = functools.partial(self._lazy_group, step=step)
        snapshots = self.snapshots
        keep = None if snapshots == 1 else (lambda state: state.average)
        state, out = _nn.train(
            step,
            state,
            train_key,
            self.steps // self.r1_every,
            self.record_every // self.r1_every,
            keep,
        )
        if keep is None:
            return state.average, state.discriminator, out
        losses, history = out
        generator = jax.tree_util.tree_map(lambda h: h[-snapshots:], history)
        return generator, state.discriminator, losses

    def _lazy_group(
        self, state: GANTrainingState, key: jax.Array, *, step
    ) -> tuple[GANTrainingState, dict[str, jax.Array]]:
        """``r1_every`` training steps: the first with the R1 penalty (weight
        ``r1_every × r1_weight``), the others, one inner scan, without; the keys
        are ``fast_random.split(key, r1_every)``; returns the mean losses."""
        keys = fast_random.split(key, self.r1_every)
        state, first = step(state, keys[0], r1_scale=self.r1_every)
        state, rest = jax.lax.scan(lambda s, k: step(s, k, r1_scale=0), state, keys[1:])
        losses = jax.tree_util.tree_map(
            lambda a, b: (a + jnp.sum(b)) / self.r1_every, first, rest
        )
        return state, losses

    def _step(
        self,
        state: GANTrainingState,
        key: jax.Array,
        *,
        data: jax.Array,
        batch: int,
        optimizer: optax.GradientTransformation,
        d_optimizer: optax.GradientTransformation,
        r1_scale: int = 1,
    ) -> tuple[GANTrainingState, dict[str, jax.Array]]:
        """One discriminator update (``discriminator_steps`` updates, each on its own
        minibatch and noise) then one generator update on a minibatch of
        ``batch`` standardised events of ``data`` (n, d); returns the new state
        and this step's ``{"generator", "discriminator"}`` losses.  The R1
        penalty's weight is ``r1_scale × r1_weight`` (0: no penalty, its second-
        order backward pass not traced)."""
        generator, discriminator, g_opt, d_opt, average = state
        g_activation = GENERATOR_ACTIVATIONS[self.generator_activation]
        dtype = data.dtype
        if self.discriminator_steps == 1:
            batch_key, noise_key, noise_key_2 = fast_random.split(key, 3)
            d_keys = [(batch_key, noise_key)]
        else:
            batch_key, noise_key, noise_key_2, extra = fast_random.split(key, 4)
            extra = fast_random.split(extra, 2 * (self.discriminator_steps - 1))
            d_keys = [(batch_key, noise_key)] + [
                (extra[2 * i], extra[2 * i + 1])
                for i in range(self.discriminator_steps - 1)
            ]

        def logits(d_params, x):
            packed = x.reshape(x.shape[0] // self.pack, -1)
            return _nn.mlp(d_params, packed, _activation)[:, 0]

        def d_loss(d_params, fake, real):
            cross_entropy = jnp.mean(jax.nn.softplus(-logits(d_params, real)))
            cross_entropy += jnp.mean(jax.nn.softplus(logits(d_params, fake)))
            if not (self.r1_weight and r1_scale):
                return cross_entropy, cross_entropy
            grad_x = jax.grad(lambda x: jnp.sum(logits(d_params, x)))(real)
            penalty = jnp.mean(jnp.sum(grad_x * grad_x, axis=1))
            weight = jnp.asarray(0.5 * self.r1_weight * r1_scale, dtype)
            return cross_entropy + weight * penalty, cross_entropy

        d_values = []
        for batch_key, noise_key in d_keys:
            real = _nn.minibatch(batch_key, data, batch)
            noise = fast_random.normal(noise_key, (batch, self.noise_dim), dtype)
            fake = _nn.mlp(generator, noise, g_activation)
            grads, d_value = jax.grad(d_loss, has_aux=True)(discriminator, fake, real)
            discriminator, d_opt = _nn.apply_optimizer(
                d_optimizer, grads, d_opt, discriminator
            )
            d_values.append(d_value)
        if len(d_values) > 1:
            d_value = sum(d_values[1:], d_values[0]) / len(d_values)

        def g_loss(g_params):
            noise = fast_random.normal(noise_key_2, (batch, self.noise_dim), dtype)
            fake = _nn.mlp(g_params, noise, g_activation)
            return jnp.mean(jax.nn.softplus(-logits(discriminator, fake)))

        g_value, grads = jax.value_and_grad(g_loss)(generator)
        generator, g_opt = _nn.apply_optimizer(optimizer, grads, g_opt, generator)
        decay = self.ema_decay
        average = jax.tree_util.tree_map(
            lambda a, g: decay * a + (1 - decay) * g, average, generator
        )
        state = GANTrainingState(generator, discriminator, g_opt, d_opt, average)
        return state, {"generator": g_value, "discriminator": d_value}

    def sample(self, key: jax.Array, params: GANParams, n: int) -> jax.Array:
        """``n`` generated events, (n,) for 1-D training data, (n, d) otherwise."""
        check_positive_int("n", n)
        shift, scale = params.standardization
        dtype = shift.dtype
        g_activation = GENERATOR_ACTIVATIONS[self.generator_activation]
        components = self.components
        if components == 1:
            noise = fast_random.normal(key, (n, self.noise_dim), dtype)
            z = _nn.mlp(params.generator, noise, g_activation)
        else:  # event i from component i mod components
            per_component = -(-n // components)
            noise = fast_random.normal(
                key, (per_component, components, self.noise_dim), dtype
            )
            z = jax.vmap(
                lambda g, x: _nn.mlp(g, x, g_activation), in_axes=(0, 1), out_axes=1
            )(params.generator, noise)
            z = z.reshape(per_component * components, -1)[:n]
        if shift.ndim == 0:
            z = z[:, 0]
        return shift + scale * z

    def training_losses(self, params: GANParams) -> dict[str, jax.Array]:
        """Recorded loss curves, ``{"generator", "discriminator"}``, each
        (steps // record_every,) (with a leading ensemble axis under vmap)."""
        return dict(params.losses)

    def fit_result(self, params: GANParams) -> jax.Array:
        """``int32[]`` result code of one trained GAN (``jaxunc.results``):
        ``NONFINITE_VALUE`` when its weights, standardisation or recorded losses hold
        a NaN or an infinity (a diverged training), else ``SUCCESSFUL``."""
        return _nn.finite_result(params)
