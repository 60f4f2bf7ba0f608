"""The chain body ``draw_chain`` is differentiable in θ: forward-mode derivatives
(``jax.jvp``) of the training and generated events match central finite differences
and exact closed forms, in float64, for the ideal fit (closed form and autodiff
Newton), bootstrap, KDE, a small GAN and a small flow (training loops included).

With fixed keys the chain is a deterministic function of θ (the samplers are
reparameterised, the surrogates' random draws depend on their keys only), so its
pathwise derivative is what the finite differences measure.

Finite-difference tolerance.  The central difference D_h = (f(θ + h) - f(θ - h)) / 2h
of a summary f differs from f'(θ) by the truncation error h² f'''(ξ) / 6 and the
rounding error ≈ ε C |f| / h, with ε = 2.2e-16 (float64) and C the amplification of
relative rounding errors by the chain (≈ 1 for the closed forms, more through a
training loop).  With h = ``STEP`` · a, ``STEP`` = 1e-6 and a = max(1, |θ|), the
truncation term is ≈ 1.7e-13 a² |f'''| and the rounding term ≈ 2.2e-10 C |f| / a.
The tolerance is ``RTOL`` = 1e-7 times the derivative's scale |D_h| + |f| / a: it
leaves a margin of 450 on C and of 6e5 on a² |f'''| / |f'|.  The finite differences
are also checked against themselves: D_h - D_2h = -h² f''' / 2 + rounding
(Richardson), the measured size of the truncation error, must be below the tolerance
too, so a test fails rather than passes vacuously if θ ↦ f(θ) were not smooth at this
scale (a kink, or a step h too large for f''').

Measured (max |jvp - D_h| / (|D_h| + |f| / a) over the three summaries and the two
directions, spectrum, this key): ideal (Newton) 8e-11, bootstrap 9e-11, KDE 2e-10,
GAN 7e-11, flow 2e-10, i.e. rounding with C ≈ 1: a margin of ~500 below ``RTOL``.
With h = 1e-4 · a the flow's truncation error alone reached 1e-6 (|D_h - D_2h|
scaling as h²), hence the smaller step.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxunc.engine.chain import chain_keys, draw_chain
from jaxunc.models import Exponential, Gaussian, Spectrum
from jaxunc.surrogates import GAN, KDE, Bootstrap, Flow, IdealFit

RTOL = 1e-7  # module docstring: FD tolerance relative to the derivative's scale
STEP = 1e-6  # relative finite-difference step
EXACT_RTOL = 1e-12  # closed forms: float64 rounding, measured <= 1.3e-16 relative
N_TRAIN = 64
N_GEN = 48

SPECTRUM_THETA = {
    "mass": 125.0,
    "width": 2.5,
    "signal_fraction": 0.25,
    "decay_length": 20.0,
}
GAUSSIAN_THETA = {"mu": 0.5, "sigma": 1.5}


def small_gan() -> GAN:
    """A GAN small enough to differentiate through its training loop in seconds:
    30 steps (R1 penalty and packing on, as in the default), one hidden layer of 8."""
    return GAN(steps=30, batch_size=16, width=8, depth=1, noise_dim=2, record_every=10)


def small_flow() -> Flow:
    """A flow small enough to differentiate through its training loop in seconds."""
    return Flow(steps=30, batch_size=32, layers=1, bins=4, record_every=10)


SURROGATES = {
    # the spectrum has no closed form: its ideal fit is the autodiff Newton fit
    "ideal": lambda model, theta, free: IdealFit(model, theta, free),
    "bootstrap": lambda model, theta, free: Bootstrap(),
    "kde": lambda model, theta, free: KDE(),
    "gan": lambda model, theta, free: small_gan(),
    "flow": lambda model, theta, free: small_flow(),
}


def as_float64(theta: dict[str, float]) -> dict[str, jax.Array]:
    return {name: jnp.asarray(value, jnp.float64) for name, value in theta.items()}


def chain_summaries(model: Any, surrogate: Any, key: jax.Array):
    """θ ↦ (mean of D_train, mean of D_gen, mean of D_gen²): one chain draw with the
    default key schedule of ``key`` (fixed), ``N_TRAIN`` training and ``N_GEN``
    generated events; the fit's result code is checked to be successful."""
    keys = chain_keys(key, 1, truth=False)

    def summaries(theta: Any) -> jax.Array:
        draw = draw_chain(model, surrogate, theta, N_TRAIN, (N_GEN,), keys)
        generated = draw.generated[0]
        values = jnp.stack(
            [jnp.mean(draw.train), jnp.mean(generated), jnp.mean(generated**2)]
        )
        return values, draw.fit_result

    return summaries


@dataclasses.dataclass
class Derivatives:
    """Derivatives of a summary vector f (m,) along each component of θ (p):
    ``jvp`` (p, m) by forward mode, ``central`` (p, m) central differences with step
    ``h`` (p,), ``central_2h`` with step 2h, ``value`` f(θ) (m,), ``theta`` (p,)."""

    value: np.ndarray
    theta: np.ndarray
    h: np.ndarray
    jvp: np.ndarray
    central: np.ndarray
    central_2h: np.ndarray

    def tolerance(self) -> np.ndarray:
        """``RTOL`` × (|D_h| + |f| / max(1, |θ_i|)), (p, m) (module docstring)."""
        scale = (
            np.abs(self.value)[None, :] / np.maximum(1.0, np.abs(self.theta))[:, None]
        )
        return RTOL * (np.abs(self.central) + scale)

    def deviation(self) -> float:
        """max |jvp - D_h| / tolerance: ≤ 1 when forward mode agrees."""
        return float(np.max(np.abs(self.jvp - self.central) / self.tolerance()))


def forward_mode(summaries):
    """``summaries`` (θ ↦ (values, result code)) as one compiled function
    ``(θ, tangent) -> (values, result, jvp of values)``: evaluations and derivatives
    share one compilation (the compile, not the run, is what costs seconds here)."""

    def forward(theta: Any, tangent: Any):
        (values, result), (values_tangent, _) = jax.jvp(summaries, (theta,), (tangent,))
        return values, result, values_tangent

    return jax.jit(forward)


def derivatives(summaries, theta: dict[str, jax.Array]) -> Derivatives:
    """Forward-mode and central-difference derivatives of ``summaries`` at ``theta``
    along each of its components (float64)."""
    flat, unravel = ravel_pytree(theta)
    forward = forward_mode(lambda v: summaries(unravel(v)))
    zero = jnp.zeros_like(flat)

    def evaluate(v):
        return np.asarray(forward(v, zero)[0])

    value, result, _ = forward(flat, zero)
    assert int(result) == 0, f"the fit failed (result code {int(result)})"
    rows_jvp, rows_h, rows_2h, steps = [], [], [], []
    for i in range(flat.shape[0]):
        direction = zero.at[i].set(1.0)
        rows_jvp.append(np.asarray(forward(flat, direction)[2]))
        h = STEP * max(1.0, abs(float(flat[i])))
        central = []
        for multiple in (1, 2):
            up, down = flat + multiple * h * direction, flat - multiple * h * direction
            # the step actually taken, exactly: (θ + h) - (θ - h) is rounded
            actual = float(up[i] - down[i])
            central.append((evaluate(up) - evaluate(down)) / actual)
        rows_h.append(central[0])
        rows_2h.append(central[1])
        steps.append(h)
    return Derivatives(
        np.asarray(value),
        np.asarray(flat),
        np.asarray(steps),
        np.stack(rows_jvp),
        np.stack(rows_h),
        np.stack(rows_2h),
    )


def assert_derivatives_agree(d: Derivatives) -> None:
    """Forward mode equals the central differences within the tolerance, and the
    central differences are converged at step h (Richardson)."""
    assert np.all(np.isfinite(d.jvp)), d.jvp
    tolerance = d.tolerance()
    richardson = np.abs(d.central - d.central_2h)
    assert np.all(richardson <= tolerance), (
        "finite differences not converged at this step",
        richardson / tolerance,
    )
    assert np.all(np.abs(d.jvp - d.central) <= tolerance), (
        "forward mode disagrees with central differences",
        d.jvp,
        d.central,
    )


@pytest.mark.parametrize("name", list(SURROGATES))
def test_jvp_matches_central_differences_on_the_spectrum(name, key):
    """θ = the spectrum's mass and width: moving the resonance changes the shape of
    the training sample (not only its location and scale), so the derivative runs
    through the whole fit or training loop."""
    with jax.enable_x64(True):
        model = Spectrum()
        theta = as_float64(SPECTRUM_THETA)
        free = ("mass", "width")
        surrogate = SURROGATES[name](model, theta, free)
        fixed = {k: v for k, v in theta.items() if k not in free}

        def summaries(varied):
            return chain_summaries(model, surrogate, key)({**fixed, **varied})

        d = derivatives(summaries, {k: theta[k] for k in free})
        assert_derivatives_agree(d)
        # d mean(D_train)/d mass = (fraction of signal events): strictly inside
        # (0, 1), so the derivative is neither lost nor a pure shift
        assert 0.05 < d.jvp[0, 0] < 0.6


@pytest.mark.parametrize("name", ["ideal", "bootstrap", "kde", "gan"])
def test_location_scale_derivatives_are_exact(name, key):
    """A Gaussian training sample is μ + σ z with z fixed by the key, and every
    surrogate here is location-scale equivariant (the ideal fit's μ̂, σ̂; bootstrap
    copies; the KDE's kernel ∝ σ̂; the GAN's standardisation), so D_gen =
    μ + σ D_gen(0, 1) and exactly

        ∂ mean(D)/∂μ = 1,   ∂ mean(D)/∂σ = (mean(D) - μ)/σ

    for D = D_train and D_gen.  A ``stop_gradient`` anywhere in the chain would give
    0 instead of 1."""
    with jax.enable_x64(True):
        model = Gaussian()
        theta = as_float64(GAUSSIAN_THETA)
        surrogate = SURROGATES[name](model, theta, ("mu", "sigma"))
        forward = forward_mode(chain_summaries(model, surrogate, key))
        mu, sigma = float(theta["mu"]), float(theta["sigma"])
        for direction, location in (
            ({"mu": 1.0, "sigma": 0.0}, True),
            ({"mu": 0.0, "sigma": 1.0}, False),
        ):
            values, result, tangent = forward(theta, as_float64(direction))
            assert int(result) == 0
            means = np.asarray(values[:2])
            expected = np.ones(2) if location else (means - mu) / sigma
            np.testing.assert_allclose(
                np.asarray(tangent[:2]), expected, rtol=EXACT_RTOL, atol=EXACT_RTOL
            )


def test_newton_fit_derivative_matches_the_closed_form(key):
    """Exponential, rate λ, fitted by the generic Newton fit (``while_loop``, in the
    log-rate): the training events are E_t/λ and λ̂ = 1/mean(D_train) exactly, so
    mean(D_gen) = mean(E_g) mean(E_t)/λ and ∂ mean(D_gen)/∂λ = -mean(D_gen)/λ; the
    closed-form fit's forward-mode derivative is the same."""
    with jax.enable_x64(True):
        model = Exponential()
        theta = as_float64({"rate": 0.7})
        for closed_form in (False, True):
            surrogate = IdealFit(model, theta, ("rate",), use_closed_form=closed_form)
            forward = forward_mode(chain_summaries(model, surrogate, key))
            values, result, tangent = forward(theta, as_float64({"rate": 1.0}))
            assert int(result) == 0
            expected = -np.asarray(values[:2]) / 0.7
            np.testing.assert_allclose(
                np.asarray(tangent[:2]), expected, rtol=EXACT_RTOL
            )


@dataclasses.dataclass(frozen=True)
class Detached:
    """A surrogate whose fit (wrongly) stops the gradient of its training data."""

    inner: Any

    def fit(self, key: jax.Array, data: jax.Array) -> Any:
        return self.inner.fit(key, jax.lax.stop_gradient(data))

    def sample(self, key: jax.Array, params: Any, n: int) -> jax.Array:
        return self.inner.sample(key, params, n)


def test_a_stop_gradient_in_the_chain_is_caught(key):
    """The checks above fail for a chain that loses the derivative: forward mode
    gives ∂ mean(D_gen)/∂θ = 0 while the finite differences do not."""
    with jax.enable_x64(True):
        model = Spectrum()
        theta = as_float64(SPECTRUM_THETA)
        surrogate = Detached(KDE())
        fixed = {k: v for k, v in theta.items() if k != "mass"}

        def summaries(varied):
            return chain_summaries(model, surrogate, key)({**fixed, **varied})

        d = derivatives(summaries, {"mass": theta["mass"]})
        assert d.jvp[0, 1] == 0.0 and d.central[0, 1] > 0.05
        with pytest.raises(AssertionError, match="forward mode disagrees"):
            assert_derivatives_agree(d)
