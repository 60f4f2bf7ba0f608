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


def _draw_and_read(folder, name):
    from matplotlib.image import imread

    from jaxunc.plots.style import new_figure

    figure = new_figure(4, 3)
    axes = figure.add_subplot()
    axes.loglog([1, 10, 100], [1.0, 0.3, 0.1], "o-", label="std")
    axes.set_xlabel("n")
    axes.legend()
    path = folder / name
    figure.savefig(path, dpi=50)
    return imread(path)


def test_hep_style_applies_inside_its_block_only(tmp_path):
    import matplotlib
    import numpy as np

    from jaxunc.plots.style import HEP_SIZE_SCALE, figure_style

    before = dict(matplotlib.rcParams)
    default = _draw_and_read(tmp_path, "default.png")
    with figure_style("hep"):
        import mplhep

        assert matplotlib.rcParams["font.size"] == pytest.approx(
            mplhep.style.ROOT["font.size"] * HEP_SIZE_SCALE
        )
        assert matplotlib.rcParams["xtick.direction"] == "in"
        hep = _draw_and_read(tmp_path, "hep.png")
    assert dict(matplotlib.rcParams) == before
    assert default.shape == hep.shape and not np.array_equal(default, hep)
    with figure_style("default"):
        assert dict(matplotlib.rcParams) == before
        again = _draw_and_read(tmp_path, "again.png")
    assert np.array_equal(default, again)


def test_unknown_style_is_refused_by_name():
    from jaxunc.errors import InvalidArgument
    from jaxunc.plots.style import figure_style

    with pytest.raises(InvalidArgument, match="default, hep") as error:
        with figure_style("talk"):
            pass
    assert error.value.argument == "style"
