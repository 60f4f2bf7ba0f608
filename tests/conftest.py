"""Shared fixtures: a fixed-seed key, strict dtype promotion, a float64 switch."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture(autouse=True)
def strict_dtype_promotion():
    """Implicit dtype promotion inside jaxunc is a bug: make it an error in tests."""
    with jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def key() -> jax.Array:
    return jax.random.key(20261123)


@pytest.fixture
def x64():
    """Run the test body with 64-bit JAX (restored afterwards)."""
    with jax.enable_x64(True):
        yield
