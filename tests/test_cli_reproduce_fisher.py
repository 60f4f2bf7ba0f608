"""``jaxunc reproduce --only fisher``: the information study of §3.2 at its
defaults, and the paper's claim on it."""

from __future__ import annotations

import itertools
import json

from jaxunc.cli import main


def test_reproduce_runs_the_paper_fisher_defaults(tmp_path):
    assert (
        main(["reproduce", "--only", "fisher", "--quiet", "--out", str(tmp_path)]) == 0
    )
    fisher = json.loads((tmp_path / "fisher" / "fisher.json").read_text())
    assert (tmp_path / "fisher" / "fisher_vs_ngen.png").exists()
    # The paper's §3.2 claim on the default run: I_gen ≤ I_train within errors for
    # every n_gen, and I_gen approaches I_train from below as n_gen grows.
    assert fisher["n_gen"] == [10, 100, 1000, 10000, 100000]
    assert all(fisher["holds"])
    ratios = [r[0] for r in fisher["ratio_to_train"]]
    errors = [e[0] for e in fisher["ratio_to_train_stderr"]]
    assert all(r < 1 + 3 * e for r, e in zip(ratios, errors, strict=True))
    assert ratios[0] < 0.2 and ratios[-1] > 1 - 3 * errors[-1]
    increases = [b - a for a, b in itertools.pairwise(ratios)]
    steps = [3 * (ea**2 + eb**2) ** 0.5 for ea, eb in itertools.pairwise(errors)]
    assert all(d > -s for d, s in zip(increases, steps, strict=True))
    assert all(fisher["kl"]["holds"]) and all(fisher["mi"]["holds"])
    assert not (tmp_path / "toy").exists()
