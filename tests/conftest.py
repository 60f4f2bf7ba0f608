"""Shared fixtures: a fixed-seed key, strict dtype promotion, a float64 switch."""

from __future__ import annotations

import os
import shutil
import tempfile

import jax
import pytest

# Many tests compile the same XLA programs (the same study at the same sizes, in
# this process, in other xdist workers and in the command-line subprocesses): they
# share them through JAX's persistent compilation cache, in a folder made for this
# test session (never the user's cache) and removed at its end.  Numbers cannot
# change: a cache hit loads the very executable a compile would have produced.
_CACHE_VARIABLE = "JAX_COMPILATION_CACHE_DIR"
_OWN_CACHE = None
if _CACHE_VARIABLE not in os.environ:
    _OWN_CACHE = tempfile.mkdtemp(prefix="jaxunc-tests-xla-")
    os.environ[_CACHE_VARIABLE] = _OWN_CACHE
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
# `jaxunc validate` gives JAX one CPU device per core; the suite's xdist workers
# already fill the cores, so its command-line subprocesses keep one device (no
# second compilation per program).  Tests of the device count set their own.
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "1")
jax.config.update("jax_compilation_cache_dir", os.environ[_CACHE_VARIABLE])
jax.config.update(
    "jax_persistent_cache_min_compile_time_secs",
    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


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


# The test files that take longest (CPU seconds per file measured on the 2-core
# machine, 2026-12-01, with a per-test CPU-time hook), longest first.  pytest-xdist
# runs whole files (--dist loadfile) in collection order (--no-loadscope-reorder,
# see pyproject.toml); starting the long files first keeps one of them from running
# alone at the end while the other worker idles.
LONGEST_FIRST = (
    "test_ensemble.py",  # 157 s
    "test_notebooks.py",  # 131 s
    "test_golden.py",  # 130 s
    "test_cli_fisher.py",  # 123 s
    "test_bounds_surrogates.py",  # 85 s
    "test_cli.py",  # 82 s
    "test_fisher_bounds.py",  # 80 s
    "test_information.py",  # 78 s
    "test_engine.py",  # 76 s
    "test_flow.py",  # 76 s
    "test_bounds.py",  # 69 s
    "test_chain_jvp.py",  # 65 s
    "test_validation_study.py",  # 57 s
    "test_gan.py",  # 52 s
    "test_fisher_study.py",  # 48 s
    "test_surrogates.py",  # 45 s
    "test_scale.py",  # 39 s
    "test_faults.py",  # 35 s (mostly waiting on subprocesses)
    "test_study_failures.py",  # 36 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable
