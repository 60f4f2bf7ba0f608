"""Golden outputs: every study's numbers, bit for bit, against a recording.

Each case of ``tests/golden/cases.py`` (a small command line of ``jaxunc``, or a
library call) is run again and its JSON output compared with
``tests/golden/<name>.json``: every float must have the same bits, every int, bool,
string and null must be equal, lists must keep their lengths and recorded keys must
still be there.  Run-time provenance (``runtime``, timings, JAX version, paths) is not
compared; keys that only the new output has are allowed.

When a change of the numbers is intended, record again:
``PYTHONPATH=$PWD python tests/golden/record.py [NAME ...]``.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import sys
from pathlib import Path

import pytest


def _load_cases():
    name = "jaxunc_golden_cases"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent / "golden" / "cases.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


golden = _load_cases()


@pytest.mark.parametrize("case", golden.CASES, ids=lambda case: case.name)
def test_output_matches_recording(case):
    recorded = golden.load_recording(case)
    new = golden.run_case(case)
    differences = golden.compare(recorded, new)
    shown = "\n  ".join(differences[:40])
    more = f"\n  ... and {len(differences) - 40} more" if len(differences) > 40 else ""
    assert not differences, (
        f"{case.name}: {len(differences)} differences from {case.path.name} "
        f"(key path: recorded, new):\n  {shown}{more}"
    )


def test_every_case_is_recorded_and_every_recording_is_a_case():
    recorded = {path.stem for path in golden.GOLDEN_DIR.glob("*.json")}
    assert recorded == set(golden.CASES_BY_NAME)


def test_compare_reports_every_kind_of_change():
    recorded = golden.load_recording(golden.CASES_BY_NAME["toy"])
    assert golden.compare(recorded, copy.deepcopy(recorded)) == []

    # one float, one ulp away
    new = copy.deepcopy(recorded)
    value = new["truth"]["std"][1]
    new["truth"]["std"][1] = math.nextafter(value, math.inf)
    (difference,) = golden.compare(recorded, new)
    assert difference.startswith("truth.std[1]: ")
    assert repr(value) in difference
    assert repr(new["truth"]["std"][1]) in difference

    # a recorded key that disappears, an int that becomes a float, a shorter list
    new = copy.deepcopy(recorded)
    del new["surrogate"]["std_stderr"]
    new["config"]["pseudo_experiments"] = float(new["config"]["pseudo_experiments"])
    new["n_gen"] = new["n_gen"][:1]
    differences = golden.compare(recorded, new)
    assert len(differences) == 3
    assert any(d.startswith("surrogate.std_stderr: missing") for d in differences)
    assert any(
        d.startswith("config.pseudo_experiments: type int -> float")
        for d in differences
    )
    assert any(d.startswith("n_gen: length 2 -> 1") for d in differences)

    # a null that becomes a number, and a sign of zero
    assert golden.compare({"a": None}, {"a": 0.0}) == [
        "a: type null -> float: recorded None, new 0.0"
    ]
    assert golden.compare({"a": [0.0]}, {"a": [-0.0]}) == [
        "a[0]: recorded 0.0, new -0.0"
    ]

    # allowed: new keys, changed provenance, NaN where NaN was recorded
    new = copy.deepcopy(recorded)
    new["failures_by_reason"] = {"nan": 0}
    new["truth"]["new_key"] = [1.0]
    new["runtime"] = {"seconds": -1.0}
    assert golden.compare(recorded, new) == []
    assert golden.compare({"a": math.nan}, {"a": math.nan}) == []
    assert golden.compare({"runtime_seconds": 1.0}, {"runtime_seconds": 2.0}) == []
    assert golden.compare({"a": "found"}, {"a": "below_grid"}) == [
        "a (text): recorded 'found', new 'below_grid'"
    ]
