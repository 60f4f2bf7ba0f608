"""The ensemble study's figure (Figure 6 for trained surrogates), drawn from an
``EnsembleResult`` or its ``ensemble.json``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxunc.plots.style import (
    N_GEN,
    N_GEN_TEX,
    N_TRAIN,
    SURROGATE_COLOR,
    TRUTH_COLOR,
    as_json,
    estimate_tex,
    model_words,
    new_figure,
    plain_log_ticks,
    save,
    spread_factors,
    surrogate_words,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = ["FILES", "figure_ensemble_std_vs_ngen", "save_figures"]


IDEAL_COLOR = "tab:green"


def figure_ensemble_std_vs_ngen(result: Any) -> Figure:
    """Figure 6 for trained surrogates: std of the MLE of the target over the
    ensemble against n_gen (log-log).

    ``result`` is an ``EnsembleResult`` or its ``ensemble.json`` payload; when it has
    an ``ideal_reference`` (the command runs the ideal surrogate beside the chosen
    one), those points are drawn too.  Points: measured std with its standard error
    for the surrogate (blue), the ideal fit (green) and n_gen true events (orange).
    Lines: the Cramér-Rao curve 1/√(n_gen I₁) and the training floor, the std at
    n_train true events (dotted, its standard error shaded).
    """
    payload = as_json(result)
    config = payload["config"]
    n_gen = np.asarray(payload["n_gen"], np.float64)
    n_train = config["n_train"]
    target = config["target"]
    figure = new_figure(8, 6)
    ax = figure.subplots()
    floor = payload["training_floor"]["mle"]
    ax.axhline(
        floor["std"],
        color="0.3",
        ls=":",
        lw=1.5,
        label=f"training floor: std at {N_TRAIN} = {n_train} true events "
        f"= {floor['std']:.3g}",
    )
    ax.axhspan(
        floor["std"] - floor["std_stderr"],
        floor["std"] + floor["std_stderr"],
        color="0.5",
        alpha=0.15,
        lw=0,
    )
    fisher = payload["fisher_per_event"]["value"]
    grid = np.geomspace(min(n_gen.min(), n_train) / 1.5, n_gen.max() * 3.0, 200)
    ax.plot(
        grid,
        1.0 / np.sqrt(grid * fisher),
        color=TRUTH_COLOR,
        lw=1.2,
        label=rf"Cramér-Rao $1/\sqrt{{{N_GEN_TEX}\, I_1}}$",
    )
    series = [
        ("truth", payload["truth_std"]["mle"], payload["truth_std_stderr"]["mle"])
    ]
    series.append(
        (
            "ideal fit",
            payload["ideal_reference"]["estimate_std"]["mle"],
            payload["ideal_reference"]["estimate_std_stderr"]["mle"],
        )
        if "ideal_reference" in payload
        else None
    )
    series.append(
        (
            f"{config['surrogate']} (trained per member)",
            payload["estimate_std"]["mle"],
            payload["estimate_std_stderr"]["mle"],
        )
    )
    colors = (TRUTH_COLOR, IDEAL_COLOR, SURROGATE_COLOR)
    markers = ("o", "s", "D")
    offsets = spread_factors(3)
    for number, entry in enumerate(series):
        if entry is None:
            continue
        label, std, stderr = entry
        std = np.array([np.nan if v is None else v for v in std], np.float64)
        stderr = np.array([np.nan if v is None else v for v in stderr], np.float64)
        ax.errorbar(
            n_gen * offsets[number],
            std,
            yerr=stderr,
            fmt=markers[number],
            ms=6,
            color=colors[number],
            capsize=3,
            zorder=3,
            label=f"{label}: measured",
        )
    ax.axvline(n_train, color="0.6", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax.xaxis)
    ax.set_xlabel(f"number of events per member {N_GEN}")
    ax.set_ylabel(
        f"std of the maximum-likelihood ${estimate_tex(target)}$ over the ensemble"
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title(
        f"{model_words(config['model'])}: {surrogate_words(config['surrogate'])} "
        f"vs ideal fit vs truth\n({N_TRAIN} = {n_train}, "
        f"K = {config['ensemble_size']} members)",
        fontsize=10,
    )
    return figure


FILES = {"ensemble_std_vs_ngen.png": figure_ensemble_std_vs_ngen}


def save_figures(result: Any, folder: Path) -> list[Path]:
    """Write the ensemble figure as a PNG into ``folder``; return its path."""
    return save(FILES, result, folder)
