"""Float32 sums over many events are accurate (pairwise summation), and float64 is
offered without flipping JAX's global state behind the user's back."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc import Gaussian, SampleMean, cli
from jaxunc.errors import InvalidArgument
from jaxunc.studies.fisher import FisherConfig
from jaxunc.studies.toy import ToyConfig
from jaxunc.summation import pairwise_mean, pairwise_sum, pairwise_sum_depth

N_EVENTS = 10**7
U32 = float(np.finfo(np.float32).eps) / 2  # unit roundoff of float32


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    """10^7 float32 events of N(1, 0.5²) drawn by jaxunc (mostly positive, so the
    sum is well conditioned and "a few ulp of the result" is the right scale)."""
    theta = {"mu": jnp.float32(1.0), "sigma": jnp.float32(0.5)}
    sample = jax.jit(lambda k: Gaussian().sample(k, theta, N_EVENTS))
    return np.asarray(sample(jax.random.key(6)))


def pairwise_error_bound(x: np.ndarray) -> float:
    """|float32 pairwise sum - exact sum| ≤ D · u · Σ|x| with D the tree depth."""
    return pairwise_sum_depth(x.size) * U32 * float(np.abs(x.astype(np.float64)).sum())


def test_float32_mean_of_1e7_events_agrees_with_float64(events):
    exact = events.astype(np.float64).sum() / N_EVENTS
    mean32 = float(jax.jit(SampleMean().estimate)(jnp.asarray(events)).value[0])
    # Sum error over n (n = 10^7 is exact in float32) plus the division's rounding.
    ulp = float(np.spacing(np.float32(exact)))
    bound = pairwise_error_bound(events) / N_EVENTS + 0.5 * ulp
    assert abs(mean32 - exact) <= bound
    # The bound is a few ulp times the tree depth (~50 for 10^7 events), not the
    # n·u of a sequential loop: it is tight enough to catch naive summation.
    assert bound <= (pairwise_sum_depth(N_EVENTS) + 1) * ulp
    naive = np.add.accumulate(events, dtype=np.float32)[-1] / np.float32(N_EVENTS)
    assert abs(float(naive) - exact) > bound


def test_float32_sufficient_statistics_of_1e7_events(events):
    x = jnp.asarray(events)
    statistics = np.asarray(jax.jit(Gaussian().sufficient_statistics)(x), np.float64)
    wide = events.astype(np.float64)
    assert statistics[0] == N_EVENTS
    assert abs(statistics[1] - wide.sum()) <= pairwise_error_bound(events) + np.spacing(
        np.float32(statistics[1])
    )
    exact_squares = wide * wide
    # One more rounding than the sum: each square is rounded to float32 first.
    bound = (pairwise_sum_depth(N_EVENTS) + 1) * U32 * exact_squares.sum()
    assert abs(statistics[2] - exact_squares.sum()) <= bound + np.spacing(
        np.float32(statistics[2])
    )


def test_pairwise_sum_is_exact_on_integers_and_batches():
    # Small integers are exact in float32 whatever the order: any slip in the tree
    # (a lost or doubled block, wrong padding) changes the result.
    @jax.jit
    def sums(batch):
        return (
            jax.vmap(pairwise_sum, in_axes=1)(batch),
            pairwise_sum(batch, axis=0),
            pairwise_mean(batch[:, 0]),
        )

    for n in (1, 33, 4097):
        values = np.arange(1, n + 1, dtype=np.float32)
        batch = np.stack([values, 2 * values, -values], axis=1)
        by_vmap, by_axis, mean = sums(batch)
        expected = np.array([1.0, 2.0, -1.0]) * n * (n + 1) / 2
        np.testing.assert_array_equal(by_vmap, expected)
        np.testing.assert_array_equal(by_axis, expected)
        assert float(mean) == pytest.approx((n + 1) / 2, rel=2e-7)


def test_pairwise_sum_gradient_is_exact():
    x = jnp.linspace(-1.0, 1.0, 1001, dtype=jnp.float32)
    gradient = jax.jit(jax.grad(lambda v: pairwise_sum(v * v)))(x)
    np.testing.assert_array_equal(gradient, 2 * x)


@pytest.mark.parametrize("config", [ToyConfig, FisherConfig], ids=["toy", "fisher"])
def test_library_refuses_float64_without_x64_and_leaves_it_off(config):
    assert not jax.config.jax_enable_x64
    with pytest.raises(InvalidArgument) as error:
        config(precision="float64")
    assert error.value.argument == "precision"
    assert "jax_enable_x64" in str(error.value)
    assert not jax.config.jax_enable_x64


@pytest.mark.parametrize("config", [ToyConfig, FisherConfig], ids=["toy", "fisher"])
def test_library_accepts_float64_when_the_user_enabled_it(config, x64):
    assert config(precision="float64").precision == "float64"


def test_cli_float64_does_not_leak_x64_into_the_caller(tmp_path, capsys):
    # A command that stops at its argument checks is enough: main has already
    # decided the precision by then (and it keeps the test free of compilation).
    assert not jax.config.jax_enable_x64
    out = tmp_path / "out"
    argv = ["toy", "--precision", "float64", "--sigma", "-1", "--out", str(out)]
    try:
        code = cli.main([*argv, "--quiet"])
        leaked = jax.config.jax_enable_x64
    finally:
        jax.config.update("jax_enable_x64", False)
    assert code == 2 and "argument --sigma" in capsys.readouterr().err
    assert not out.exists()
    assert not leaked
