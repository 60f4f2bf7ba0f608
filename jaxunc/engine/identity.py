"""The traced pseudo-experiment and the identity of a run.

The engine traces a pseudo-experiment once: the jaxpr is what every chunk evaluates
and, hashed with its constants, the function's fingerprint.  A run's *identity*
(``run_identity``) is a JSON-able dict of everything that fixes its numbers and
nothing that does not; checkpoints and partial results store it and its hash
(``jaxunc.engine.checkpoint``) so that states of different runs are never mixed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.extend.core
import numpy as np

from jaxunc.engine.checkpoint import FORMAT_VERSION
from jaxunc.engine.reduce import REDUCTION_BLOCK, Layout
from jaxunc.estimators import Estimate

__all__ = ["Traced", "function_fingerprint", "run_identity", "trace"]


class Traced(NamedTuple):
    """A pseudo-experiment traced once.

    ``closed``: its closed jaxpr; ``shapes``: ``{name: Estimate}`` of
    ``jax.ShapeDtypeStruct``; ``function``: ``key -> {name: Estimate}`` evaluating
    the jaxpr (what the chunks run: the Python function is traced exactly once per
    run); ``fingerprint``: ``function_fingerprint(closed)``.
    """

    closed: Any
    shapes: dict[str, Estimate]
    function: Callable[[jax.Array], dict[str, Estimate]]
    fingerprint: str


def trace(
    pseudo_experiment: Callable[[jax.Array], Mapping[str, Estimate]], key: jax.Array
) -> Traced:
    """Trace ``pseudo_experiment`` at ``key``'s type (see ``Traced``)."""
    closed, shapes = jax.make_jaxpr(pseudo_experiment, return_shape=True)(key)
    shapes = dict(shapes)
    tree = jax.tree_util.tree_structure(shapes)
    evaluate = jax.extend.core.jaxpr_as_fun(closed)

    def function(k: jax.Array) -> dict[str, Estimate]:
        return jax.tree_util.tree_unflatten(tree, evaluate(k))

    return Traced(closed, shapes, function, function_fingerprint(closed))


def function_fingerprint(closed: Any) -> str:
    """SHA-256 of a traced pseudo-experiment: its jaxpr and its constants (object
    addresses that the jaxpr's text shows for custom-derivative rules removed)."""
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", str(closed.jaxpr))
    digest = hashlib.sha256(text.encode())
    for const in closed.consts:
        if jax.dtypes.issubdtype(getattr(const, "dtype", None), jax.dtypes.prng_key):
            text_dtype = str(const.dtype)  # a typed key: hash its implementation too
            digest.update(text_dtype.encode())
            const = jax.random.key_data(const)
        array = np.asarray(const)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def output_layout(
    shapes: Mapping[str, Estimate], edges: Mapping[str, np.ndarray]
) -> Layout:
    """Per output name: (value shape, its histogram edges or None, value dtype)."""
    return {
        name: (
            tuple(shapes[name].value.shape),
            edges.get(name),
            np.dtype(shapes[name].value.dtype),
        )
        for name in shapes
    }


def _output_spec(shapes: Mapping[str, Estimate]) -> dict[str, dict]:
    spec = {}
    for name, estimate in sorted(shapes.items()):
        spec[name] = {
            field: [list(leaf.shape), str(leaf.dtype)]
            for field, leaf in zip(Estimate._fields, estimate, strict=True)
            if leaf is not None
        }
    return spec


def run_identity(
    description: str,
    n_pseudo: int,
    key: jax.Array,
    config: Mapping[str, Any] | None,
    traced: Traced,
    edges: Mapping[str, np.ndarray],
    width: int,
) -> dict[str, Any]:
    """The identity of a run: what fixes its numbers (format, description, size,
    root key, configuration, traced function, outputs, histogram edges, reduction
    block, vectorised width), never the chunk size, devices, processes or budget."""
    return {
        "format": FORMAT_VERSION,
        "description": description,
        "n_pseudo": n_pseudo,
        "key": {
            "impl": str(jax.random.key_impl(key)),
            "data": np.asarray(jax.random.key_data(key)).tolist(),
        },
        "config": None if config is None else dict(config),
        # The traced function: catches a changed model or code between two parts.
        "function_sha256": traced.fingerprint,
        "outputs": _output_spec(traced.shapes),
        "histogram_edges_sha256": {
            name: hashlib.sha256(e.tobytes()).hexdigest()
            for name, e in sorted(edges.items())
            if e is not None
        },
        "reduction_block": REDUCTION_BLOCK,
        "vector_width": width,
    }
