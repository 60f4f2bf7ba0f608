"""The benchmark scripts parse, and the NumPy reference's moment merge is exact.

The benchmarks themselves are timed by hand (benchmarks/RESULTS.md); here only
what they rely on without timing: every script compiles, and the multi-process
NumPy reference's merge of per-process moments equals the moments of all the
values at once (float64, to rounding), which fails for a wrongly merged pair.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _reference():
    spec = importlib.util.spec_from_file_location(
        "numpy_reference", BENCHMARKS / "numpy_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("numpy_reference", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_benchmark_script_compiles(path):
    compile(path.read_text(), str(path), "exec")


ROUNDINGS_PER_TERM = 8  # a moment term (x - mean)^k and its merge corrections


def _close(a, b, n):
    """Equal to float64 rounding: each moment is a sum of ``n`` terms with at most
    ``ROUNDINGS_PER_TERM`` roundings each (recursive-sum bound n·k·eps·|max|)."""
    bound = n * ROUNDINGS_PER_TERM * np.finfo(np.float64).eps
    for x, y in zip(a, b, strict=True):
        scale = np.maximum(np.abs(x), np.abs(y)).max()
        assert np.all(np.abs(x - y) <= bound * scale)


def test_reference_merge_equals_whole_and_wrong_split_fails():
    ref = _reference()
    values = np.random.default_rng(3).gamma(2.0, size=(301, 3))  # skewed: M3 matters
    shares = ref.shares(len(values), 2)
    assert shares == [151, 150]
    first, second = values[: shares[0]], values[shares[0] :]
    merged = ref._merge(ref._chunk_moments(first), ref._chunk_moments(second))
    _close(merged, ref._chunk_moments(values), len(values))
    # a deliberately wrong merge (the second share counted twice) must not pass
    wrong = ref._merge(merged, ref._chunk_moments(second))
    with pytest.raises(AssertionError):
        _close(wrong, ref._chunk_moments(values), len(values))
