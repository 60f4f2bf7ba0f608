"""θ as any pytree: names of its components and its flat vector form.

θ may be a scalar, an array, a dict, a NamedTuple or any nesting of them.  The
information layer and the estimators work with the flat vector ``ravel_pytree(θ)``;
each component is named from its tree path:

* a scalar or 0-d array θ: ``"theta"``;
* an array leaf of shape ``s``: ``"<path>[i]"`` for each flat index ``i`` (row-major);
* dict keys, NamedTuple and dataclass fields: the key or field name, nested ones
  joined by ``.`` (``{"signal": {"mass": m}}`` → ``"signal.mass"``); sequence
  positions: ``"[i]"``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

__all__ = ["parameter_names", "ravel_parameters"]

ROOT_NAME = "theta"


def _path_name(path: tuple) -> str:
    parts = []
    for entry in path:
        if isinstance(entry, jax.tree_util.DictKey):
            parts.append(f".{entry.key}")
        elif isinstance(entry, jax.tree_util.GetAttrKey):
            parts.append(f".{entry.name}")
        elif isinstance(entry, jax.tree_util.SequenceKey):
            parts.append(f"[{entry.idx}]")
        else:  # FlattenedIndexKey and anything else
            parts.append(f"[{entry}]")
    name = "".join(parts).lstrip(".")
    return name or ROOT_NAME


def parameter_names(theta: Any) -> tuple[str, ...]:
    """One name per component of ``ravel_pytree(theta)``, in the same order."""
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(theta)[0]:
        base = _path_name(path)
        shape = np.shape(leaf)
        if shape == ():
            names.append(base)
        else:
            names.extend(f"{base}[{i}]" for i in range(math.prod(shape)))
    return tuple(names)


def ravel_parameters(theta: Any) -> tuple[jax.Array, Any, tuple[str, ...]]:
    """``(flat, unravel, names)``: θ as a 1-D array, the inverse map and the
    component names (``parameter_names``)."""
    flat, unravel = ravel_pytree(theta)
    return flat, unravel, parameter_names(theta)
