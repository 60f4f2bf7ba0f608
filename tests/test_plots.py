"""Figures 4-7 are written as readable PNGs, and refused without figure data."""

from __future__ import annotations

import pytest

from jaxunc import plots
from jaxunc.studies import ToyConfig, run_toy

SMALL = ToyConfig(
    pseudo_experiments=2000, funnel_pseudo_experiments=200, funnel_n_gen=(10, 100, 1000)
)


def test_save_toy_figures_writes_four_pngs(tmp_path):
    from matplotlib.image import imread

    result = run_toy(SMALL, progress=False)
    paths = plots.save_toy_figures(result, tmp_path)
    expected = [
        "fig4_training_samples.png",
        "fig5_sample_means.png",
        "fig6_std_vs_ngen.png",
        "fig7_funnels.png",
    ]
    assert [path.name for path in paths] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(expected)
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width = imread(path).shape[:2]
        assert height > 300 and width > 300, path.name


def test_figures_false_raises(tmp_path):
    result = run_toy(SMALL, figures=False, progress=False)
    with pytest.raises(ValueError, match="figures=False"):
        plots.save_toy_figures(result, tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="figures=False"):
        plots.figure4_training_samples(result)
    with pytest.raises(ValueError, match="figures=False"):
        plots.figure7_funnels(result)


def test_library_ensemble_run_draws_the_command_figure(tmp_path):
    """``run_ensemble`` itself runs the ideal-fit reference, so a library user draws
    the command's figure (with the ideal points) from the result or its JSON."""
    from jaxunc.plots import ensemble
    from jaxunc.studies import EnsembleConfig, run_ensemble

    config = EnsembleConfig(
        surrogate="bootstrap", ensemble_size=4, n_train=20, n_gen=(10, 100)
    )
    result = run_ensemble(config, progress=False)
    reference = result.ideal_reference
    assert reference is not None and len(reference["estimate_std"]["mle"]) == 2
    assert result.to_json()["ideal_reference"] == reference
    paths = ensemble.save_figures(result, tmp_path / "result")
    assert [p.name for p in paths] == list(ensemble.FILES)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ensemble.save_figures(result.to_json(), tmp_path / "json")[0].exists()
