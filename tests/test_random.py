"""jaxunc.random reproduces jax.random bit for bit, and is batch-invariant."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry_2x32

from jaxunc import random as fast_random

SHAPES = [(), (1,), (7,), (3, 5), (1430,), (2, 3, 4)]
FUNCTIONS = ["bits", "uniform", "normal", "exponential"]


def _same_bits(a: jax.Array, b: jax.Array) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_threefry_matches_jax_hash():
    words = jax.random.bits(jax.random.key(1), (4, 257), jnp.uint32)
    for key_words in [(0, 0), (1, 2), (0xFFFFFFFF, 0x12345678)]:
        key_data = jnp.asarray(key_words, jnp.uint32)
        expected = threefry_2x32(key_data, words.reshape(-1))
        half = words.size // 2
        flat = words.reshape(-1)
        x0, x1 = fast_random.threefry2x32(
            key_data[0], key_data[1], flat[:half], flat[half:]
        )
        assert _same_bits(jnp.concatenate([x0, x1]), expected)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 42, 2**40 + 3])
def test_bit_identical_to_jax_random(name, shape, seed):
    key = jax.random.key(seed)
    ours = getattr(fast_random, name)(key, shape)
    theirs = getattr(jax.random, name)(key, shape)
    assert _same_bits(ours, theirs)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_bit_identical_under_jit_and_vmap(name, key):
    keys = jax.random.split(key, 9)
    ours = jax.jit(jax.vmap(lambda k: getattr(fast_random, name)(k, (33,))))(keys)
    theirs = jax.vmap(lambda k: getattr(jax.random, name)(k, (33,)))(keys)
    assert _same_bits(ours, theirs)


def test_batch_size_does_not_change_values(key):
    keys = jax.random.split(key, 37)
    draw = jax.jit(jax.vmap(lambda k: fast_random.normal(k, (100,)).mean()))
    assert _same_bits(draw(keys)[:5], draw(keys[:5]))


def test_uniform_bounds_match_jax(key):
    ours = fast_random.uniform(key, (1000,), jnp.float32, -2.0, 3.0)
    theirs = jax.random.uniform(key, (1000,), jnp.float32, -2.0, 3.0)
    assert _same_bits(ours, theirs)


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg"])
def test_other_key_implementations_fall_back_to_jax(impl):
    key = jax.random.key(3, impl=impl)
    assert _same_bits(fast_random.normal(key, (64,)), jax.random.normal(key, (64,)))


def test_raw_uint32_keys_work(key):
    raw = jax.random.key_data(key)
    assert _same_bits(fast_random.normal(raw, (10,)), jax.random.normal(key, (10,)))


def test_float64_falls_back_to_jax(x64, key):
    ours = fast_random.normal(key, (50,), jnp.float64)
    assert ours.dtype == jnp.float64
    assert _same_bits(ours, jax.random.normal(key, (50,), jnp.float64))


@pytest.mark.parametrize("seed", [0, 7, 2**31 + 5])
def test_fold_in_and_split_bit_identical_to_jax(seed):
    key = jax.random.key(seed)
    for data in (0, 1, 999, 2**32 - 1):
        assert np.array_equal(
            jax.random.key_data(fast_random.fold_in(key, data)),
            jax.random.key_data(jax.random.fold_in(key, data)),
        )
    for num in (1, 2, 3, 17):
        assert np.array_equal(
            jax.random.key_data(fast_random.split(key, num)),
            jax.random.key_data(jax.random.split(key, num)),
        )
    raw = jax.random.PRNGKey(seed)
    assert np.array_equal(fast_random.split(raw, 3), jax.random.split(raw, 3))
    assert np.array_equal(fast_random.fold_in(raw, 5), jax.random.fold_in(raw, 5))


def test_fold_in_and_split_under_vmap_and_traced_data(key):
    keys = jax.random.split(key, 4)
    index = jnp.arange(4, dtype=jnp.uint32)
    fast = jax.jit(jax.vmap(fast_random.fold_in))(keys, index)
    reference = jax.vmap(jax.random.fold_in)(keys, index)
    assert np.array_equal(jax.random.key_data(fast), jax.random.key_data(reference))
    fast = jax.jit(jax.vmap(lambda k: fast_random.split(k, 3)))(keys)
    reference = jax.vmap(lambda k: jax.random.split(k, 3))(keys)
    assert np.array_equal(jax.random.key_data(fast), jax.random.key_data(reference))


def test_fold_in_and_split_fall_back_for_other_implementations():
    key = jax.random.key(3, impl="rbg")
    assert np.array_equal(
        jax.random.key_data(fast_random.split(key, 2)),
        jax.random.key_data(jax.random.split(key, 2)),
    )
    assert np.array_equal(
        jax.random.key_data(fast_random.fold_in(key, 4)),
        jax.random.key_data(jax.random.fold_in(key, 4)),
    )
