"""Record the golden outputs: run every case of ``cases.py`` and write its JSON to
``tests/golden/<name>.json``.

    cd REPO && PYTHONPATH=$PWD python tests/golden/record.py [NAME ...]

Without names every case is recorded.  Run it only when a change of the numbers is
intended; ``tests/test_golden.py`` then checks that nothing else changes them.
Recordings are made with the defaults of the machine (float32, CPU).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import CASES, CASES_BY_NAME, run_case, to_json_text


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in CASES_BY_NAME]
    if unknown:
        print(f"unknown cases: {unknown}; known: {sorted(CASES_BY_NAME)}")
        return 2
    cases = [CASES_BY_NAME[name] for name in names] if names else list(CASES)
    total = time.perf_counter()
    for case in cases:
        start = time.perf_counter()
        # as under tests/conftest.py: implicit dtype promotion is an error
        with jax.numpy_dtype_promotion("strict"):
            payload = run_case(case)
        case.path.write_text(to_json_text(payload))
        print(f"{case.name}: {time.perf_counter() - start:.1f} s -> {case.path.name}")
    print(f"{len(cases)} cases in {time.perf_counter() - total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
