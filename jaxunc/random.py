"""Fused, bit-identical versions of ``jax.random.{bits,uniform,normal,exponential}``.

On CPU, JAX lowers its Threefry-2x32 hash as a rolled loop (to keep compile times
short).  The loop cannot be fused with the code that consumes the random bits, so
every random number makes a round trip through memory and the hash runs without
vectorisation: about 1e8 normals/s on two cores.  The functions here evaluate the
*same* hash (Salmon et al. 2011, 20 rounds, JAX's key schedule and rotation
constants) as straight-line element-wise code, so XLA fuses hash, float conversion,
``erf_inv`` and whatever reduction follows into one vectorised loop (3-4x faster on
CPU; neutral on GPU where JAX already unrolls).

Contract: for a Threefry key (the JAX default) and ``jax_threefry_partitionable``
enabled (the default since JAX 0.5), ``jaxunc.random.normal(key, shape, dtype)`` returns
exactly ``jax.random.normal(key, shape, dtype)``, bit for bit; the same for ``bits``,
``uniform``, ``exponential``, ``split`` and ``fold_in`` (the last two matter inside
long ``lax.scan`` loops such as surrogate training, where every step derives keys;
``split`` of one key outside ``vmap`` uses JAX's own loop, which compiles faster).
Tests check this.  Any other key implementation, a 64-bit dtype, or the legacy
non-partitionable mode falls back to ``jax.random`` itself, so the contract holds
everywhere and only the speed differs.

Because every element is a pure function of (key, flat index), results are
independent of how pseudo-experiments are batched by ``vmap``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import custom_batching, lax

__all__ = [
    "bits",
    "exponential",
    "fold_in",
    "normal",
    "split",
    "threefry2x32",
    "uniform",
]

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_KEY_SCHEDULE_PARITY = np.uint32(0x1BD11BDA)


def _compiled(function):
    """Compile ``function(key, shape, dtype, ...)`` with static shape and dtype.

    jax.random compiles each call as one program; doing the same keeps the rounding of
    fused multiply-adds identical, so eager calls match bit for bit as well.
    """
    compiled = jax.jit(function, static_argnames=("shape", "dtype"))

    @functools.wraps(function)
    def wrapper(key, shape=(), dtype=None, *args, **kwargs):
        dtype = function.__defaults__[1] if dtype is None else dtype
        return compiled(key, tuple(shape), np.dtype(dtype), *args, **kwargs)

    return wrapper


def _rotate_left(x: jax.Array, distance: int) -> jax.Array:
    return (x << np.uint32(distance)) | (x >> np.uint32(32 - distance))


def threefry2x32(
    key0: jax.Array, key1: jax.Array, count0: jax.Array, count1: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 with 20 rounds, unrolled. All arguments uint32, broadcastable.

    Same function as ``jax.extend.random.threefry_2x32`` (tested bit for bit).
    """
    schedule = (key0, key1, key0 ^ key1 ^ _KEY_SCHEDULE_PARITY)
    x0 = count0 + schedule[0]
    x1 = count1 + schedule[1]
    for block in range(5):
        for distance in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotate_left(x1, distance)
            x1 = x0 ^ x1
        x0 = x0 + schedule[(block + 1) % 3]
        x1 = x1 + schedule[(block + 2) % 3] + np.uint32(block + 1)
    return x0, x1


def _fast_path_key_data(
    key: jax.Array, shape: tuple[int, ...], dtype
) -> jax.Array | None:
    """The uint32[2] key words if the fused path reproduces jax.random, else None."""
    if np.dtype(dtype).itemsize != 4 or not jax.config.jax_threefry_partitionable:
        return None
    if math.prod(shape) >= 2**32:
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        return jax.random.key_data(key)
    if (
        key.dtype == jnp.uint32
        and key.shape == (2,)
        and jax.config.jax_default_prng_impl == "threefry2x32"
    ):
        return key
    return None


def _flat_counters(shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """(high, low) uint32 words of the row-major flat index of every element.

    Callers guarantee fewer than 2**32 elements, so the high word is zero.
    """
    low = lax.iota(np.uint32, math.prod(shape)).reshape(shape)
    return jnp.zeros(shape, np.uint32), low


def _bits32(key_data: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    high, low = _flat_counters(shape)
    word0, word1 = threefry2x32(key_data[0], key_data[1], high, low)
    return word0 ^ word1


@_compiled
def bits(key: jax.Array, shape=(), dtype=jnp.uint32) -> jax.Array:
    """Same as ``jax.random.bits(key, shape, dtype)``."""
    shape = tuple(shape)
    key_data = _fast_path_key_data(key, shape, dtype)
    if key_data is None or np.dtype(dtype) != np.uint32:
        return jax.random.bits(key, shape, dtype)
    return _bits32(key_data, shape)


def _uniform_from_bits(raw: jax.Array, dtype, minval, maxval) -> jax.Array:
    mantissa_bits = jnp.finfo(dtype).nmant
    float_bits = (raw >> np.uint32(32 - mantissa_bits)) | np.array(1.0, dtype).view(
        np.uint32
    )
    floats = lax.bitcast_convert_type(float_bits, dtype) - jnp.array(1.0, dtype)
    minval = lax.convert_element_type(minval, dtype)
    maxval = lax.convert_element_type(maxval, dtype)
    return lax.max(minval, floats * (maxval - minval) + minval)


@_compiled
def uniform(
    key: jax.Array, shape=(), dtype=jnp.float32, minval=0.0, maxval=1.0
) -> jax.Array:
    """Same as ``jax.random.uniform(key, shape, dtype, minval, maxval)``."""
    shape = tuple(shape)
    key_data = _fast_path_key_data(key, shape, dtype)
    if key_data is None:
        return jax.random.uniform(key, shape, dtype, minval, maxval)
    minval = jnp.broadcast_to(jnp.asarray(minval, dtype), shape)
    maxval = jnp.broadcast_to(jnp.asarray(maxval, dtype), shape)
    return _uniform_from_bits(_bits32(key_data, shape), dtype, minval, maxval)


@_compiled
def normal(key: jax.Array, shape=(), dtype=jnp.float32) -> jax.Array:
    """Same as ``jax.random.normal(key, shape, dtype)`` (real dtypes)."""
    shape = tuple(shape)
    key_data = _fast_path_key_data(key, shape, dtype)
    if key_data is None:
        return jax.random.normal(key, shape, dtype)
    low = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = _uniform_from_bits(_bits32(key_data, shape), dtype, low, np.array(1.0, dtype))
    return lax.mul(np.array(np.sqrt(2), dtype), lax.erf_inv(u))


@_compiled
def exponential(key: jax.Array, shape=(), dtype=jnp.float32) -> jax.Array:
    """Same as ``jax.random.exponential(key, shape, dtype)``: unit rate."""
    shape = tuple(shape)
    key_data = _fast_path_key_data(key, shape, dtype)
    if key_data is None:
        return jax.random.exponential(key, shape, dtype)
    u = _uniform_from_bits(_bits32(key_data, shape), dtype, 0.0, 1.0)
    return lax.neg(lax.log1p(lax.neg(u)))


def _wrap_like(key: jax.Array, data: jax.Array) -> jax.Array:
    """Key words ``data`` (..., 2) in the same form as ``key`` (typed or raw
    uint32)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(key))
    return data


def fold_in(key: jax.Array, data) -> jax.Array:
    """Same as ``jax.random.fold_in(key, data)`` (``data``: a uint32-valued
    scalar)."""
    key_data = _fast_path_key_data(key, (), jnp.float32)
    if key_data is None:
        return jax.random.fold_in(key, data)
    if isinstance(data, int):
        count = np.uint32(data)
    else:
        count = jnp.asarray(data).astype(np.uint32)
    word0, word1 = threefry2x32(key_data[0], key_data[1], np.uint32(0), count)
    return _wrap_like(key, jnp.stack([word0, word1], axis=-1))


@functools.cache
def _split_words(num: int):
    """``key_data (2,) -> (num, 2)``: the words of ``jax.random.split``, by JAX's own
    rolled loop for one key and by the unrolled hash under ``vmap``.

    Both give the same bits; they differ in cost.  For one key, the unrolled hash is
    ~100 scalar operations that XLA's CPU compiler handles slowly: a single
    (unbatched) GAN training, which splits keys on every step, compiled in 16.5 s
    against 4.7 s with JAX's loop, and a flow's in 9.9 s against 4.0 s.  Under
    ``vmap`` (ensembles, the engine's pseudo-experiments) the unrolled hash fuses
    into vectorised loops and stays the faster choice to run.
    """

    @custom_batching.custom_vmap
    def words(key_data: jax.Array) -> jax.Array:
        keys = jax.random.split(jax.random.wrap_key_data(key_data), num)
        return jax.random.key_data(keys)

    @words.def_vmap
    def _batched(axis_size, in_batched, key_data):
        (batched,) = in_batched
        if not batched:
            return words(key_data), False
        high, low = _flat_counters((num,))
        word0, word1 = threefry2x32(
            key_data[:, 0:1], key_data[:, 1:2], high[None], low[None]
        )
        return jnp.stack([word0, word1], axis=-1), True

    return words


def split(key: jax.Array, num: int = 2) -> jax.Array:
    """Same as ``jax.random.split(key, num)`` (an int ``num``): (num,) keys."""
    key_data = _fast_path_key_data(key, (num,), jnp.float32)
    if key_data is None:
        return jax.random.split(key, num)
    return _wrap_like(key, _split_words(int(num))(key_data))
