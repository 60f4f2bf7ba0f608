"""The validation study's figures, drawn from a ``ValidateResult`` (the histogram
figure needs its figure data; the others also take ``validate.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxunc.plots.style import (
    SURROGATE_COLOR,
    TRUTH_COLOR,
    as_json,
    model_words,
    new_figure,
    palette,
    save,
    surrogate_words,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = [
    "FILES",
    "figure_validate_amplification",
    "figure_validate_histograms",
    "figure_validate_p_values",
    "save_figures",
]


def figure_validate_histograms(result: Any) -> Figure:
    """Generated-sample histograms with error bars at each N_required (one trained
    surrogate) against the true expectation, with the χ² p-value of each."""
    data = getattr(result, "histograms", None)
    if data is None:
        raise ValueError(
            "the result has no histogram data: the study was run with figures=False"
        )
    sizes = data["n_required"]
    figure = new_figure(3.2 * len(sizes), 3.6)
    axes = figure.subplots(1, len(sizes), squeeze=False)[0]
    edges = np.asarray(data["edges"], np.float64)
    centers = 0.5 * (edges[1:] + edges[:-1])
    probabilities = np.asarray(data["probabilities"], np.float64)
    for ax, n, counts, p_value in zip(
        axes, sizes, data["counts"], data["p_values"], strict=True
    ):
        counts = np.asarray(counts, np.float64)
        expected = n * probabilities
        ax.stairs(expected / n, edges, color=TRUTH_COLOR, label="truth (expected)")
        ax.errorbar(
            centers,
            counts / n,
            yerr=np.sqrt(counts) / n,
            fmt="o",
            ms=3,
            color=SURROGATE_COLOR,
            label="generated ± √n",
        )
        shown = f"{p_value:.2g}" if p_value >= 1e-30 else "< 1e-30"
        ax.set_title(f"$N_\\mathrm{{required}}$ = {n:,}\nχ² p-value {shown}")
        ax.set_xlabel("x")
    axes[0].set_ylabel("fraction of events per bin")
    axes[0].legend(fontsize=8)
    config = as_json(result)["config"]
    equal = config.get("binning") == "quantile"
    figure.suptitle(
        f"{_surrogate_words(config)}: generated histograms with the error bars of "
        f"N_required events (one surrogate trained on {config['n_train']} "
        f"{model_words(config['model_label'])} events)"
        + (
            "\nequal-probability bins (edges at the true quantiles): the truth is "
            "flat by construction"
            if equal
            else ""
        ),
        fontsize=10,
    )
    return figure


def _surrogate_words(config: dict[str, Any]) -> str:
    """The surrogate as a title says it, capitalised (``"GAN"``)."""
    words = surrogate_words(
        config.get("surrogate_label", config.get("surrogate", "surrogate"))
    )
    return words[:1].upper() + words[1:]


P_DISPLAY_FLOOR = 1e-6
"""The p-value axis stops here: lower p-values (and those known only as a bound)
are drawn on the axis's edge with a downward triangle."""


def _clipped(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """p-values (None: below the histogram's floor) -> (values to draw, clipped at
    P_DISPLAY_FLOOR; whether each was off scale)."""
    raw = np.array([0.0 if v is None else v for v in values], np.float64)
    off = raw < P_DISPLAY_FLOOR
    return np.where(off, P_DISPLAY_FLOOR, raw), off


def figure_validate_p_values(result: Any) -> Figure:
    """χ² p-value quantiles and rejection rate against N_required, surrogate vs
    truth, with the robustness horizon."""
    payload = as_json(result)
    n = np.asarray(payload["n_required"], np.float64)
    alpha = payload["config"]["alpha"]
    figure = new_figure(10, 4)
    left, right = figure.subplots(1, 2)
    for part, color, label in (
        (payload, SURROGATE_COLOR, "surrogate"),
        (payload["truth"], TRUTH_COLOR, "truth"),
    ):
        quantiles = part["p_value_quantiles"]
        median, off = _clipped(part["p_value_median"])
        left.plot(n, median, "o-", color=color, label=f"{label} median")
        if off.any():
            left.plot(
                n[off],
                median[off],
                "v",
                color=color,
                ms=9,
                label=f"{label} median < {P_DISPLAY_FLOOR:g} (off scale)",
            )
        left.fill_between(
            n,
            _clipped(quantiles["0.16"])[0],
            _clipped(quantiles["0.84"])[0],
            color=color,
            alpha=0.25,
            label=f"{label} 16-84%",
        )
        right.errorbar(
            n,
            part["rejection_rate"],
            yerr=part["rejection_rate_stderr"],
            fmt="o-",
            color=color,
            label=label,
        )
    left.axhline(alpha, color="0.3", ls="--", lw=1, label=f"α = {alpha}")
    right.axhline(alpha, color="0.3", ls="--", lw=1, label=f"α = {alpha} (truth)")
    right.axhline(0.5, color="0.6", ls=":", lw=1, label="1/2 (median p = α)")
    if payload["horizon_status"] == "found":
        for ax in (left, right):
            ax.axvspan(
                payload["horizon"] - payload["horizon_stderr"],
                payload["horizon"] + payload["horizon_stderr"],
                color="tab:red",
                alpha=0.2,
            )
            ax.axvline(payload["horizon"], color="tab:red", lw=1, label="horizon")
    left.set_yscale("log")
    lows = [
        low
        for part in (payload, payload["truth"])
        for values in (part["p_value_quantiles"]["0.16"], part["p_value_median"])
        for low in _clipped(values)[0]
    ]
    left.set_ylim(max(min(lows, default=1e-4) / 3, P_DISPLAY_FLOOR / 2), 1.5)
    left.set_ylabel("χ² p-value")
    right.set_ylabel(f"rejection rate P(p < {alpha})")
    right.set_ylim(-0.02, 1.02)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("$N_\\mathrm{required}$ (events in the tested sample)")
        ax.legend(fontsize=7)
    config = payload["config"]
    figure.suptitle(
        f"{_surrogate_words(config)} trained on {config['n_train']} "
        f"{model_words(config['model_label'])} events: χ² robustness horizon",
        fontsize=10,
    )
    return figure


def figure_validate_amplification(result: Any) -> Figure:
    """Amplification N_equiv/n_train against the number of quantiles (one curve per
    N_gen) and against N_gen (one curve per number of quantiles)."""
    payload = as_json(result)
    data = payload["amplification"]
    q = np.asarray(data["n_quantiles"], np.float64)
    n_gen = np.asarray(data["n_gen"], np.float64)
    factor = np.asarray(data["factor"], np.float64)
    error = np.asarray(data["factor_stderr"], np.float64)
    n_train = payload["config"]["n_train"]
    figure = new_figure(10, 4)
    left, right = figure.subplots(1, 2)
    colors = palette(max(len(n_gen), len(q)))
    for i, n in enumerate(n_gen):
        left.errorbar(
            q,
            factor[i],
            yerr=error[i],
            fmt="o-",
            color=colors[i],
            label=f"$N_\\mathrm{{gen}}$ = {int(n):,}",
        )
        left.plot(q, n / n_train * np.ones_like(q), ls=":", color=colors[i], lw=1)
    for j, quantiles in enumerate(q):
        right.errorbar(
            n_gen,
            factor[:, j],
            yerr=error[:, j],
            fmt="o-",
            color=colors[j],
            label=f"{int(quantiles)} quantiles",
        )
    right.plot(
        n_gen,
        n_gen / n_train,
        "k:",
        lw=1,
        label="$N_\\mathrm{gen}/n_\\mathrm{train}$ (true events)",
    )
    left.set_xlabel("number of quantile bins $N_q$")
    right.set_xlabel("$N_\\mathrm{gen}$ (generated events)")
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel("amplification $N_\\mathrm{equiv}/n_\\mathrm{train}$")
        ax.axhline(1, color="0.5", lw=1)
        ax.legend(fontsize=7)
    left.set_title("dotted: the same number of true events", fontsize=8)
    figure.suptitle(
        "Quantile-MSE amplification factor (GANplify): it depends on the binning",
        fontsize=10,
    )
    return figure


FILES = {
    "validate_histograms.png": figure_validate_histograms,
    "validate_p_values.png": figure_validate_p_values,
    "validate_amplification.png": figure_validate_amplification,
}


def save_figures(result: Any, folder: Path) -> list[Path]:
    """Write the validation study's three figures into ``folder`` (ValueError before
    writing anything when the study ran without figure data)."""
    if getattr(result, "histograms", None) is None:
        raise ValueError(
            "the result has no histogram data: the study was run with figures=False"
        )
    return save(FILES, result, folder)
