"""The report beside the results (``REPORT.md``, ``index.html``), the provenance
block of every JSON, and the findings derived from the JSON.

The reproduce test replays recorded results (tests/golden) through the real
command line, so that it costs no computation; the real runs' reports are checked
in tests/test_cli.py and tests/test_cli_fisher.py."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import re

import numpy as np
import pytest
from report_page import missing_images, read_page, unreferenced_figures

from jaxunc import report
from jaxunc.cli import main
from jaxunc.provenance import git_commit
from jaxunc.report import REPORT_FILES, finding, format_error
from jaxunc.studies import ensemble as ensemble_study
from jaxunc.studies import registry

GOLDEN = {
    "toy": "tests/golden/toy.json",
    "fisher": "tests/golden/fisher-gaussian.json",
}
PROVENANCE_KEYS = {
    "jaxunc_version",
    "git_commit",
    "command_line",
    "utc_time",
    "platform",
    "devices",
}


def _golden(name):
    from pathlib import Path

    return json.loads((Path(__file__).parent.parent / GOLDEN[name]).read_text())


@dataclasses.dataclass
class _Replay:
    payload: dict

    def to_json(self):
        return copy.deepcopy(self.payload)


def _one_pixel(result, folder):
    """A stand-in figure writer: one small PNG per run."""
    from matplotlib.image import imsave

    path = folder / "figure.png"
    imsave(path, np.zeros((2, 2)))
    return [path]


@pytest.fixture
def replayed(monkeypatch):
    """toy and fisher replaced by stand-ins returning their recorded results."""
    for name in GOLDEN:
        payload = _golden(name)

        def run(config, *, payload=payload, **options):
            return _Replay(payload)

        monkeypatch.setitem(
            registry.STUDIES,
            name,
            dataclasses.replace(
                registry.STUDIES[name], run=run, figures=_one_pixel, table=None
            ),
        )


def test_reproduce_writes_a_page_with_every_run_figure_and_finding(replayed, tmp_path):
    out = tmp_path / "results"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["reproduce", "--only", "toy,fisher", "--out", str(out)])
    assert code == 0
    runs = [("toy", "")] + [
        ("fisher", run) for run in registry.study("fisher").reproduce
    ]
    total = len(runs)
    # the stage counter: one "[k/K] stage" line before and one after each run
    printed = stdout.getvalue()
    for k, (name, run) in enumerate(runs, 1):
        label = f"[{k}/{total}] {name}" + (f" {run}" if run else "")
        assert f"{label}: running" in printed and f"{label}: done in" in printed
    page_path = out / "index.html"
    assert {p.name for p in out.iterdir()} >= set(REPORT_FILES)
    assert missing_images(page_path) == []
    assert unreferenced_figures(page_path) == []
    page = read_page(page_path)
    assert len(page.images) == total
    for name, run in runs:
        folder = out / name / run if run else out / name
        payload = json.loads((folder / registry.study(name).output).read_text())
        assert set(payload["provenance"]) >= PROVENANCE_KEYS
        assert payload["provenance"]["command_line"].startswith("jaxunc reproduce")
        title = f"{name} — {run}" if run else name
        assert page.sections[title] == finding(name, payload)[0]
        # each run's own folder has its own page too
        assert missing_images(folder / "index.html") == []
        assert list(read_page(folder / "index.html").sections.values()) == [
            finding(name, payload)[0]
        ]
    assert "I_gen ≤ I_train holds at every n_gen (100)" in page.sections["fisher"]
    markdown = (out / "REPORT.md").read_text()
    assert all(f"]({src})" in markdown for src in page.images)


def test_the_page_checker_finds_a_missing_figure(tmp_path):
    """The checks above can fail: a figure the page references but that is gone,
    and a figure the page does not show."""
    section = report.Section("toy", "", "summary.json", "found", (), ("a.png",))
    report.write_report(tmp_path, [section], "t", {})
    assert missing_images(tmp_path / "index.html") == ["a.png"]
    _one_pixel(None, tmp_path)
    assert unreferenced_figures(tmp_path / "index.html") == ["figure.png"]


def test_fisher_finding_names_a_violation():
    """A deliberately wrong recording (a violated verdict at one n_gen) must not be
    reported as holding everywhere."""
    payload = _golden("fisher")
    payload["n_gen"] = [10, 100]
    payload["verdict"] = ["holds", "violated"]
    sentence, _ = finding("fisher", payload)
    assert "every" not in sentence
    assert "holds at n_gen = 10" in sentence and "violated at n_gen = 100" in sentence


def test_toy_finding_names_a_disagreement():
    payload = _golden("toy")
    sentence, _ = finding("toy", payload)
    assert "within 3 standard errors at every n_gen" in sentence
    payload["surrogate"]["std"][1] = 0.05  # far below the floor and the prediction
    sentence, _ = finding("toy", payload)
    assert "differs" in sentence and "n_gen = 300" in sentence
    assert "falls below the training floor" in sentence


def test_format_error_rounds_to_the_error():
    assert format_error(0.100031, 0.000213) == "0.10003 ± 0.00021"
    assert format_error(267.3, 15.2) == "267 ± 15"
    assert format_error(None, 1.0) == "undetermined"
    assert format_error(float("nan"), 1.0) == "undetermined"
    assert format_error(2.5, None) == "2.5"


def test_git_commit_reads_heads_loose_packed_and_worktrees(tmp_path):
    sha = "0123456789abcdef0123456789abcdef01234567"
    other = "fedcba9876543210fedcba9876543210fedcba98"
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(sha + "\n")
    assert git_commit(tmp_path / "repo") == sha
    (git / "refs" / "heads" / "main").unlink()
    (git / "packed-refs").write_text(f"# pack-refs\n{other} refs/heads/main\n")
    assert git_commit(tmp_path / "repo") == other
    # a worktree: .git is a file naming its git directory, which shares refs
    worktree_git = git / "worktrees" / "wt"
    worktree_git.mkdir(parents=True)
    (worktree_git / "HEAD").write_text("ref: refs/heads/main\n")
    (worktree_git / "commondir").write_text("../..\n")
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text(f"gitdir: {worktree_git}\n")
    assert git_commit(tmp_path / "wt") == other
    (git / "HEAD").write_text(sha + "\n")  # a detached HEAD
    assert git_commit(tmp_path / "repo") == sha
    assert git_commit(tmp_path) is None  # not a checkout
    assert re.fullmatch(r"[0-9a-f]{40}", git_commit() or "0" * 40)


# ------------------------------------------- reproduce's comparison across ensembles


def _golden_ensemble(model, surrogate):
    from pathlib import Path

    path = Path(__file__).parent / "golden" / f"ensemble-{model}-{surrogate}.json"
    return json.loads(path.read_text())


@pytest.fixture
def replayed_ensembles(monkeypatch):
    """The ensemble study's reproduce runs: the recorded Gaussian ideal fit, KDE
    and bootstrap and the camel back's ideal fit, replayed (no computation)."""
    runs = [("gaussian", "ideal"), ("gaussian", "kde"), ("gaussian", "bootstrap")]
    runs.append(("camelback", "ideal"))

    def run(config, **options):
        return _Replay(_golden_ensemble(config.model, config.surrogate))

    study = registry.STUDIES["ensemble"]
    monkeypatch.setitem(
        registry.STUDIES,
        "ensemble",
        dataclasses.replace(
            study,
            run=run,
            table=None,
            reproduce={f"{m}-{s}": {"model": m, "surrogate": s} for m, s in runs},
        ),
    )


def test_reproduce_compares_the_surrogates_of_each_model(replayed_ensembles, tmp_path):
    """One comparison panel per model with two or more surrogates (the Gaussian,
    not the camel back with one), on the page with its finding; every image
    loads."""
    out = tmp_path / "results"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["reproduce", "--only", "ensemble", "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in (out / "ensemble").glob("*.png")) == [
        "ensemble_comparison_gaussian.png"
    ]
    page = read_page(out / "index.html")
    assert missing_images(out / "index.html") == []
    title = "ensemble — comparison of the surrogates, gaussian"
    payloads = [_golden_ensemble("gaussian", s) for s in ("ideal", "kde", "bootstrap")]
    sentence = page.sections[title]
    assert sentence == ensemble_study.comparison_finding(payloads)[0]
    assert "ideal, kde, bootstrap stay at or above the training floor" in sentence
    assert "ensemble/ensemble_comparison_gaussian.png" in page.images
    assert f"{title}: {sentence}" in stdout.getvalue()
    assert not any(
        "camelback" in title for title in page.sections if "comparison" in title
    )


def test_comparison_finding_names_a_surrogate_below_the_floor():
    """The deliberately wrong input: a run whose std at the largest n_gen is far
    below the training floor is named as falling below it; a run without an
    estimate is undetermined, never counted as above."""
    good = _golden_ensemble("gaussian", "ideal")
    low = copy.deepcopy(_golden_ensemble("gaussian", "kde"))
    low["estimate_std"]["mle"][-1] = 0.2 * good["training_floor"]["mle"]["std"]
    empty = copy.deepcopy(_golden_ensemble("gaussian", "bootstrap"))
    empty["estimate_std"]["mle"][-1] = None
    sentence, numbers = ensemble_study.comparison_finding([good, low, empty])
    assert "ideal stay at or above" in sentence
    assert "kde fall below it" in sentence
    assert "bootstrap: undetermined" in sentence
    assert ("bootstrap: std of the MLE at n_gen = 1000", "undetermined") in numbers


def test_comparison_panel_refuses_runs_of_different_models():
    from jaxunc.errors import InvalidArgument
    from jaxunc.plots.ensemble import figure_ensemble_comparison

    runs = [
        _golden_ensemble("gaussian", "ideal"),
        _golden_ensemble("camelback", "ideal"),
    ]
    with pytest.raises(InvalidArgument, match="results"):
        figure_ensemble_comparison(runs)
    with pytest.raises(InvalidArgument, match="results"):
        figure_ensemble_comparison([])
