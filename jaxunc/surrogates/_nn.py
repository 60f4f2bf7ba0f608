"""Small building blocks shared by the trained surrogates (GAN, flow).

* a multilayer perceptron as a list of ``{"w", "b"}`` dicts (a plain pytree, so an
  ensemble of networks is the same pytree with a leading axis);
* standardisation of the training sample (the networks see data of mean 0 and
  standard deviation 1 whatever the scale of the model);
* ``train``: a fixed number of optimiser steps as a ``lax.scan``, recording the
  block-averaged losses every ``record_every`` steps.

Everything here is pure and jittable; nothing depends on the batch (vmap) axis.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from jaxunc import random as fast_random
from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.results import Result, from_ok

__all__ = [
    "Standardization",
    "apply_optimizer",
    "check_data",
    "check_optimizer",
    "check_schedule",
    "dataclass_repr",
    "finite_result",
    "float_dtype",
    "init_mlp",
    "minibatch",
    "mlp",
    "standardize",
    "train",
    "validate_positive_float",
]


def validate_positive_float(name: str, value: Any, allow_zero: bool = False) -> None:
    """Raise ``InvalidArgument`` (a ``ValueError``) naming ``name`` unless ``value``
    is a finite number > 0 (≥ 0 with ``allow_zero``)."""
    ok = (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value >= 0 if allow_zero else value > 0)
    )
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidArgument(name, f"must be a finite number {bound} (got {value!r})")


def check_schedule(steps: int, record_every: int) -> None:
    """``steps`` and ``record_every`` of ``train``: positive integers, and
    ``record_every`` divides ``steps``; ``InvalidArgument`` naming the culprit."""
    check_positive_int("steps", steps)
    check_positive_int("record_every", record_every)
    if steps % record_every:
        raise InvalidArgument(
            "record_every",
            f"must divide steps (got steps={steps}, record_every={record_every})",
        )


def check_optimizer(optimizer: Any) -> None:
    """``optimizer`` of a trained surrogate: None (the surrogate's default) or an
    optax ``GradientTransformation`` (callable ``init`` and ``update``);
    ``InvalidArgument`` naming ``optimizer`` otherwise."""
    if optimizer is None:
        return
    if not (
        callable(getattr(optimizer, "init", None))
        and callable(getattr(optimizer, "update", None))
    ):
        raise InvalidArgument(
            "optimizer",
            "must be an optax GradientTransformation (with init and update) or None "
            f"(got {type(optimizer).__name__})",
        )


def dataclass_repr(
    instance: Any,
    omit_if_none: tuple[str, ...] = (),
    omit_if_default: tuple[str, ...] = (),
) -> str:
    """The ``dataclasses`` repr of ``instance`` (``Name(field=value, ...)``), leaving
    out the fields in ``omit_if_none`` while they are None and those in
    ``omit_if_default`` while they equal their default: a field added later
    (``optimizer``, the flow's ``ema_decay``) keeps the repr that results already
    record."""

    def omitted(field: dataclasses.Field) -> bool:
        value = getattr(instance, field.name)
        return (field.name in omit_if_none and value is None) or (
            field.name in omit_if_default and value == field.default
        )

    shown = (
        f"{field.name}={getattr(instance, field.name)!r}"
        for field in dataclasses.fields(instance)
        if field.repr and not omitted(field)
    )
    return f"{type(instance).__qualname__}({', '.join(shown)})"


def finite_result(*trees: Any) -> jax.Array:
    """``int32[]`` result code: ``Result.NONFINITE_VALUE`` when any floating-point
    leaf of ``trees`` holds a NaN or an infinity, else ``Result.SUCCESSFUL`` (one
    fit: leaves without an ensemble axis; every element of every leaf is checked)."""
    finite = [
        jnp.all(jnp.isfinite(leaf))
        for tree in trees
        for leaf in jax.tree_util.tree_leaves(tree)
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.inexact)
    ]
    ok = jnp.all(jnp.stack(finite)) if finite else jnp.bool_(True)
    return from_ok(ok, Result.NONFINITE_VALUE)


def float_dtype(data: jax.Array) -> jnp.dtype:
    """The dtype the networks use: the data's float dtype (float32 for integers)."""
    dtype = jnp.asarray(data).dtype
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.float32)


def init_mlp(
    key: jax.Array, sizes: tuple[int, ...], dtype: jnp.dtype
) -> list[dict[str, jax.Array]]:
    """Weights of an MLP with layer sizes ``sizes`` (input, hidden..., output).

    Weights ~ N(0, 1/fan_in) (LeCun normal), biases 0.  The keys and normals come
    from ``jaxunc.random`` (the same numbers as ``jax.random``): its straight-line
    hash fuses with the scaling, where ``jax.random`` adds a loop and several
    kernels per layer to every program that trains a network (about 15 % of a
    vmapped GAN training's compile time).
    """
    keys = fast_random.split(key, len(sizes) - 1)
    layers = []
    for layer_key, fan_in, fan_out in zip(keys, sizes[:-1], sizes[1:], strict=True):
        w = fast_random.normal(layer_key, (fan_in, fan_out), dtype)
        layers.append(
            {
                "w": w * jnp.asarray(1.0 / math.sqrt(fan_in), dtype),
                "b": jnp.zeros((fan_out,), dtype),
            }
        )
    return layers


def mlp(
    layers: list[dict[str, jax.Array]],
    x: jax.Array,
    activation: Callable[[jax.Array], jax.Array],
) -> jax.Array:
    """Apply the MLP to ``x`` of shape (..., input); linear last layer."""
    for layer in layers[:-1]:
        x = activation(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


class Standardization(NamedTuple):
    """x_standardised = (x - shift) / scale, per event dimension.

    ``shift`` and ``scale`` have the event shape: () for 1-D events, (d,) otherwise.
    """

    shift: jax.Array
    scale: jax.Array


def standardize(data: jax.Array) -> tuple[jax.Array, Standardization]:
    """Standardise the training sample to mean 0, standard deviation 1.

    Returns the standardised sample as (n, d) (d = 1 for 1-D events) and the
    ``Standardization`` (event-shaped shift and scale).  A constant sample gets scale 1
    instead of 0 so nothing divides by zero.
    """
    dtype = float_dtype(data)
    data = jnp.asarray(data, dtype)
    shift = jnp.mean(data, axis=0)
    scale = jnp.std(data, axis=0)
    scale = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    z = (data - shift) / scale
    return z.reshape(data.shape[0], -1), Standardization(shift, scale)


def check_data(data: jax.Array, min_train: int, name: str) -> None:
    """Static checks of the training sample's shape (works on tracers)."""
    if data.ndim not in (1, 2):
        raise InvalidArgument(
            "data", f"must have shape (n_train,) or (n_train, d) (got {data.shape})"
        )
    if data.shape[0] < min_train:
        raise InvalidArgument(
            "data", f"{name} needs n_train >= {min_train} events (got {data.shape[0]})"
        )


def train(
    step: Callable[[Any, jax.Array], tuple[Any, dict[str, jax.Array]]],
    state: Any,
    key: jax.Array,
    steps: int,
    record_every: int,
    keep: Callable[[Any], Any] | None = None,
) -> tuple[Any, Any]:
    """Run ``steps`` calls of ``state, losses = step(state, key_i)`` as one scan.

    Step i gets ``fold_in(key, i)`` (``jaxunc.random.fold_in``: the same key as
    ``jax.random.fold_in``, as straight-line code that XLA fuses, instead of a rolled
    hash loop in every step).  The losses of each block of ``record_every``
    consecutive steps are averaged, so the returned curves have shape
    (steps // record_every,); ``steps`` must be a multiple of ``record_every``.
    Returns ``(state, losses)``; with ``keep``, ``(state, (losses, kept))`` where
    ``kept`` stacks ``keep(state)`` at the end of every block (a leading axis of
    ``steps // record_every``), e.g. snapshots of the weights.
    """
    blocks = steps // record_every

    def block(state, block_index):
        def inner(state, offset):
            index = block_index * record_every + offset
            return step(state, fast_random.fold_in(key, index))

        state, losses = lax.scan(inner, state, jnp.arange(record_every))
        losses = jax.tree_util.tree_map(lambda v: jnp.mean(v, axis=0), losses)
        return state, losses if keep is None else (losses, keep(state))

    return lax.scan(block, state, jnp.arange(blocks))


def apply_optimizer(
    optimizer: optax.GradientTransformation, grads: Any, state: Any, params: Any
) -> tuple[Any, Any]:
    """One optax update, returning ``(new_params, new_state)``.

    optax computes Adam's bias correction as ``decay ** count`` (a Python float to an
    int32 power), which strict dtype promotion rejects; the update is traced under the
    standard promotion rules so jaxunc's own code can still run under strict ones.
    """
    with jax.numpy_dtype_promotion("standard"):
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state


def minibatch(key: jax.Array, data: jax.Array, batch_size: int) -> jax.Array:
    """``batch_size`` events drawn uniformly with replacement from ``data`` (n, d);
    the whole sample, in order, when ``batch_size >= n``.

    Index = (32 random bits) mod n, from ``jaxunc.random.bits`` (fused, unlike
    ``jax.random.randint``'s hash loops); the modulo favours the first 2^32 mod n
    indices by a relative 1/floor(2^32 / n) (5e-8 for n = 200), far below the
    sampling noise of any minibatch.
    """
    n = data.shape[0]
    if batch_size >= n:
        return data
    index = fast_random.bits(key, (batch_size,)) % jnp.uint32(n)
    return data[index]
