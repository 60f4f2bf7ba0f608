"""The ensemble study's figure (Figure 6 for trained surrogates), drawn from an
``EnsembleResult`` or its ``ensemble.json``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxunc.errors import InvalidArgument
from jaxunc.plots.style import (
    DPI,
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


__all__ = [
    "FILES",
    "comparison_groups",
    "figure_ensemble_comparison",
    "figure_ensemble_std_vs_ngen",
    "save_comparisons",
    "save_figures",
]


IDEAL_COLOR = "tab:green"
COMPARISON_COLORS = (
    "tab:blue",
    "tab:purple",
    "tab:red",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
    "tab:gray",
)
"""The surrogates' colours on the comparison panel (truth and ideal fit keep theirs)."""


def _values(entries: list) -> np.ndarray:
    """A JSON list of numbers with nulls (no estimate) as float64, nulls as NaN."""
    return np.array([np.nan if v is None else v for v in entries], np.float64)


def _failed_fits(payload: dict[str, Any]) -> np.ndarray:
    """Per n_gen, the members whose MLE on generated events failed (0 when the
    payload records no failures)."""
    failed = payload.get("failures", {}).get("generated", {}).get("mle")
    return _values([0] * len(payload["n_gen"]) if failed is None else failed)


def _draw_floor_and_cramer_rao(
    ax: Any, payload: dict[str, Any], n_gen: np.ndarray
) -> None:
    """The training floor of ``payload`` (dotted, its standard error shaded) and
    the Cramér-Rao curve 1/√(n_gen I₁) across ``n_gen`` and n_train."""
    n_train = payload["config"]["n_train"]
    floor = payload["training_floor"]["mle"]
    if floor["std"] is not None:
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
    grid = np.geomspace(min(n_gen.min(), n_train) / 1.5, n_gen.max() * 3.0, 200)
    ax.plot(
        grid,
        1.0 / np.sqrt(grid * payload["fisher_per_event"]["value"]),
        color=TRUTH_COLOR,
        lw=1.2,
        label=rf"Cramér-Rao $1/\sqrt{{{N_GEN_TEX}\, I_1}}$",
    )


def _log_axes(ax: Any, n_train: int, target: str) -> None:
    """n_train marked, log-log axes with plain n_gen ticks, labels and grid."""
    ax.axvline(n_train, color="0.6", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax.xaxis)
    ax.set_xlabel(f"number of events per member {N_GEN}")
    ax.set_ylabel(
        f"std of the maximum-likelihood ${estimate_tex(target)}$ over the ensemble"
    )
    ax.grid(True, which="both", alpha=0.25)


def figure_ensemble_std_vs_ngen(result: Any) -> Figure:
    """Figure 6 for trained surrogates: std of the MLE of the target over the
    ensemble against n_gen (log-log).

    ``result`` is an ``EnsembleResult`` or its ``ensemble.json`` payload; when it has
    an ``ideal_reference`` (the command runs the ideal surrogate beside the chosen
    one), those points are drawn too.  Points: measured std with its standard error
    for the surrogate (blue), the ideal fit (green) and n_gen true events (orange).
    Lines: the Cramér-Rao curve 1/√(n_gen I₁) and the training floor, the std at
    n_train true events (dotted, its standard error shaded).

    A surrogate point where some members' fits failed is ringed in red and labelled
    with the failed count (its std is over the survivors only, possibly biased); an
    n_gen with no estimate (fewer than 2 successful members) has no point, and the
    legend says which n_gen were left out and why.
    """
    payload = as_json(result)
    config = payload["config"]
    n_gen = np.asarray(payload["n_gen"], np.float64)
    n_train = config["n_train"]
    target = config["target"]
    figure = new_figure(8, 6)
    ax = figure.subplots()
    _draw_floor_and_cramer_rao(ax, payload, n_gen)
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
            f"{surrogate_words(config['surrogate'])} (trained per member)",
            payload["estimate_std"]["mle"],
            payload["estimate_std_stderr"]["mle"],
        )
    )
    failed = _failed_fits(payload)
    members = config["ensemble_size"]
    colors = (TRUTH_COLOR, IDEAL_COLOR, SURROGATE_COLOR)
    markers = ("o", "s", "D")
    offsets = spread_factors(3)
    for number, entry in enumerate(series):
        if entry is None:
            continue
        label, std, stderr = entry
        ax.errorbar(
            n_gen * offsets[number],
            _values(std),
            yerr=_values(stderr),
            fmt=markers[number],
            ms=6,
            color=colors[number],
            capsize=3,
            zorder=3,
            label=f"{label}: measured",
        )
    _mark_failures(ax, n_gen, offsets[2], series[2][1], failed, members)
    _log_axes(ax, n_train, target)
    ax.legend(loc="upper right", fontsize=9)
    warnings = payload.get("warnings") or []
    if warnings:
        ax.text(
            0.01,
            0.01,
            "\n".join(f"warning: {line}" for line in warnings)[:600],
            transform=ax.transAxes,
            fontsize=6,
            color="tab:red",
            va="bottom",
            wrap=True,
        )
    ax.set_title(
        f"{model_words(config['model'])}: {surrogate_words(config['surrogate'])} "
        f"vs ideal fit vs truth\n({N_TRAIN} = {n_train}, "
        f"K = {config['ensemble_size']} members)",
        fontsize=10,
    )
    return figure


def _mark_failures(
    ax: Any,
    n_gen: np.ndarray,
    offset: float,
    std: list,
    failed: np.ndarray,
    members: int,
) -> None:
    """Ring the surrogate's points with failed fits and name the n_gen without a
    point (fewer than 2 successful members) in the legend."""
    from matplotlib.lines import Line2D

    x = n_gen * offset
    std = _values(std)
    partial = (failed > 0) & np.isfinite(std)
    if np.any(partial):
        ax.plot(
            x[partial],
            std[partial],
            "o",
            ms=14,
            mfc="none",
            mec="tab:red",
            mew=1.5,
            zorder=4,
            label="some fits failed (std over the survivors)",
        )
        for xi, yi, f in zip(x[partial], std[partial], failed[partial], strict=True):
            ax.annotate(
                f"{int(f)}/{members} failed",
                (xi, yi),
                textcoords="offset points",
                xytext=(8, -12),
                fontsize=7,
                color="tab:red",
            )
    empty = ~np.isfinite(std)
    if np.any(empty):
        sizes = ", ".join(f"{int(v)}" for v in n_gen[empty])
        ax.add_line(
            Line2D(
                [],
                [],
                ls="none",
                marker="x",
                color="tab:red",
                label=f"no point at n_gen = {sizes}: fewer than 2 successful fits",
            )
        )


FILES = {"ensemble_std_vs_ngen.png": figure_ensemble_std_vs_ngen}


def save_figures(result: Any, folder: Path) -> list[Path]:
    """Write the ensemble figure as a PNG into ``folder``; return its path."""
    return save(FILES, result, folder)


# ------------------------------------------------------------ the comparison panel


def _comparison_key(payload: dict[str, Any]) -> tuple[Any, ...]:
    """What runs must share to be drawn on one panel: the model (and its θ), the
    training size and the target."""
    config = payload["config"]
    theta = config.get("theta")
    theta = tuple(sorted(theta.items())) if isinstance(theta, dict) else theta
    return (str(config["model"]), theta, config["n_train"], config["target"])


def comparison_groups(results: Sequence[Any]) -> list[list[dict[str, Any]]]:
    """The ensemble runs of ``results`` (``EnsembleResult``s or their JSON payloads)
    grouped by model, θ, n_train and target, in order of first appearance; only
    groups with at least two different surrogates (a comparison) are returned."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for result in results:
        payload = as_json(result)
        groups.setdefault(_comparison_key(payload), []).append(payload)
    return [
        group
        for group in groups.values()
        if len({p["config"]["surrogate"] for p in group}) >= 2
    ]


def figure_ensemble_comparison(results: Sequence[Any]) -> Figure:
    """One model, every surrogate: the std of the maximum-likelihood target over
    each ensemble against n_gen (log-log), one series per run of ``results``
    (``EnsembleResult``s or ``ensemble.json`` payloads of the same model, θ,
    n_train and target, e.g. the runs of ``jaxunc reproduce``).

    Also drawn, from the first run: n_gen true events (orange), the ideal fit when
    the run has its reference (green), the Cramér-Rao curve 1/√(n_gen I₁) and the
    training floor (dotted, its standard error shaded).  A surrogate's point where
    some members' fits failed is ringed in red; an n_gen without an estimate has
    no point and is named in the legend.  Raises ``InvalidArgument`` when the runs
    do not share model, θ, n_train and target, or there is no run.
    """
    payloads = [as_json(result) for result in results]
    if not payloads:
        raise InvalidArgument("results", "needs at least one ensemble run (got none)")
    keys = {_comparison_key(p) for p in payloads}
    if len(keys) > 1:
        raise InvalidArgument(
            "results",
            "must be runs of one model, θ, n_train and target to share a panel "
            f"(got {len(keys)} different: {sorted(map(str, keys))})",
        )
    first = payloads[0]
    config = first["config"]
    n_train, target = config["n_train"], config["target"]
    figure = new_figure(10.5, 6)
    ax = figure.subplots()
    every_n_gen = np.concatenate([np.asarray(p["n_gen"], np.float64) for p in payloads])
    _draw_floor_and_cramer_rao(ax, first, every_n_gen)
    series = [
        (
            f"truth ({N_GEN} true events)",
            first["n_gen"],
            first["truth_std"]["mle"],
            first["truth_std_stderr"]["mle"],
            TRUTH_COLOR,
            "o",
            None,
        )
    ]
    if "ideal_reference" in first:
        reference = first["ideal_reference"]
        series.append(
            (
                surrogate_words("ideal"),
                first["n_gen"],
                reference["estimate_std"]["mle"],
                reference["estimate_std_stderr"]["mle"],
                IDEAL_COLOR,
                "s",
                None,
            )
        )
    for number, payload in enumerate(payloads):
        series.append(
            (
                surrogate_words(payload["config"]["surrogate"]),
                payload["n_gen"],
                payload["estimate_std"]["mle"],
                payload["estimate_std_stderr"]["mle"],
                COMPARISON_COLORS[number % len(COMPARISON_COLORS)],
                "D",
                payload,
            )
        )
    offsets = spread_factors(len(series))
    for number, (label, n_gen, std, stderr, color, marker, payload) in enumerate(
        series
    ):
        n_gen = np.asarray(n_gen, np.float64)
        ax.errorbar(
            n_gen * offsets[number],
            _values(std),
            yerr=_values(stderr),
            fmt=marker,
            ms=5,
            color=color,
            capsize=3,
            zorder=3,
            label=label,
        )
        if payload is not None:  # a surrogate: its failed fits marked
            members = payload["config"]["ensemble_size"]
            failed = _failed_fits(payload)
            _mark_failures(ax, n_gen, offsets[number], std, failed, members)
    _log_axes(ax, n_train, target)
    # beside the axes: inside, it would hide points (a GAN's std stays high)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, fontsize=8)
    sizes = sorted({p["config"]["ensemble_size"] for p in payloads})
    ax.set_title(
        f"{model_words(config['model'])}: every surrogate against the truth\n"
        f"({N_TRAIN} = {n_train}, K = {', '.join(map(str, sizes))} members)",
        fontsize=10,
    )
    return figure


def comparison_file(payload: dict[str, Any]) -> str:
    """The comparison panel's file name for the model of ``payload``."""
    model = re.sub(r"[^A-Za-z0-9-]+", "-", str(payload["config"]["model"])).strip("-")
    return f"ensemble_comparison_{model or 'model'}.png"


def save_comparisons(results: Sequence[Any], folder: Path) -> list[Path]:
    """Draw ``figure_ensemble_comparison`` for every group of ``comparison_groups``
    into ``folder``; return the paths written (none when no model has two
    surrogates).  Two groups of one model (another θ or n_train) get the group's
    number appended to the name."""
    folder = Path(folder)
    paths = []
    for group in comparison_groups(results):
        name = comparison_file(group[0])
        if any(path.name == name for path in paths):
            name = name.replace(".png", f"_{len(paths) + 1}.png")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        figure_ensemble_comparison(group).savefig(path, dpi=DPI)
        paths.append(path)
    return paths
