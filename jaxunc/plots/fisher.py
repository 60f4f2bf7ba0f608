"""The information study's figure (§3.2), drawn from a ``FisherResult`` or its
``fisher.json``; the exact curves come from ``jaxunc.information``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxunc.information import (
    LOW_ESS,
    gaussian_mean_mutual_information_curve,
    linear_gaussian_generated_fisher,
    linear_gaussian_generated_kl,
)
from jaxunc.plots.style import (
    N_GEN,
    N_GEN_TEX,
    N_TRAIN,
    N_TRAIN_TEX,
    PARAMETER_TEX,
    SURROGATE_COLOR,
    TRUTH_COLOR,
    as_json,
    new_figure,
    plain_ticks,
    save,
    spread_factors,
)
from jaxunc.studies.base import K_SIGMA

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from jaxunc.studies.fisher import FisherResult

__all__ = ["FILES", "figure_fisher_vs_ngen", "save_figures"]


PARAMETER_COLORS = (SURROGATE_COLOR, "tab:purple")
ESTIMATOR_COLOR = "tab:green"
I_GEN = r"$I_\mathrm{gen}$"
I_TRAIN = r"$I_\mathrm{train}$"


def _trusted(values: list[float | None]) -> np.ndarray:
    """True where the effective sample size is unknown or at least ``LOW_ESS``."""
    return np.array([v is None or v >= LOW_ESS for v in values], bool)


def _points(ax: Axes, x, y, yerr, ess, color: str, marker: str, label: str) -> bool:
    """Error-bar points, filled where trusted and hollow where the effective sample
    size is below ``LOW_ESS``; returns whether any point is hollow."""
    x, y, yerr = (np.asarray(a, np.float64) for a in (x, y, yerr))
    trusted = _trusted(ess)
    for mask, face, name in ((trusted, color, label), (~trusted, "white", None)):
        if mask.any():
            ax.errorbar(
                x[mask],
                y[mask],
                yerr=yerr[mask],
                fmt=marker,
                ms=6,
                color=color,
                mfc=face,
                mew=1.5,
                capsize=3,
                zorder=3,
                label=name if mask is trusted else None,
            )
    if not trusted.any():  # still name the series in the legend
        ax.plot([], [], marker, color=color, mfc="white", mew=1.5, label=label)
    return not trusted.all()


def _untrusted_entry(ax: Axes) -> None:
    """A legend entry for hollow markers."""
    ax.plot(
        [],
        [],
        "o",
        color="0.35",
        mfc="white",
        mew=1.5,
        label=f"hollow: untrusted (low ESS < {LOW_ESS:g})",
    )


def _legend(ax: Axes, fontsize: float) -> None:
    """The legend, with the hollow-marker note last."""
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("hollow"))
    ax.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="lower right",
        fontsize=fontsize,
        framealpha=0.95,
    )


def _information_grid(payload: dict[str, Any]) -> np.ndarray:
    sizes = [*payload["n_gen"], payload["config"]["n_train"]]
    return np.geomspace(min(sizes) / 1.5, max(sizes) * 3.0, 300)


def _finish_information_axis(ax: Axes, payload: dict[str, Any], ylabel: str) -> None:
    n_gen = payload["n_gen"]
    ax.set_xscale("log")
    ax.set_xlim(min(n_gen) / 2.0, max(n_gen) * 2.0)
    plain_ticks(ax.xaxis)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.25)
    n_train = payload["config"]["n_train"]
    if min(n_gen) / 2.0 < n_train < max(n_gen) * 2.0:
        ax.axvline(n_train, color="0.6", ls="--", lw=0.8)


def _fisher_panel(ax: Axes, payload: dict[str, Any]) -> None:
    """I_gen/I_train per parameter, the exact curve, the estimator view, the
    ceiling, and what n_gen true events would carry."""
    config = payload["config"]
    n_gen = np.asarray(payload["n_gen"], np.float64)
    n_train = config["n_train"]
    exact_train = payload["I_train_exact"]
    reference = np.diag(
        np.asarray(exact_train if exact_train is not None else payload["I_train"])
    )
    grid = _information_grid(payload)
    ax.plot(
        grid,
        grid / n_train,
        color=TRUTH_COLOR,
        ls="-.",
        lw=1.2,
        label=rf"{N_GEN} true events: ${N_GEN_TEX}/{N_TRAIN_TEX}$",
    )
    ax.axhline(
        1.0,
        color="0.2",
        ls="--",
        lw=1.5,
        label=f"ceiling {I_TRAIN} (data processing inequality)",
    )
    if any(m is not None for m in payload["I_gen_exact"]) and exact_train is not None:
        curve = linear_gaussian_generated_fisher(config["sigma"], n_train, grid)
        ax.plot(
            grid,
            curve / exact_train[0][0],
            color="black",
            lw=1.3,
            label=(
                rf"exact {I_GEN}/{I_TRAIN} = "
                rf"${N_GEN_TEX}/({N_TRAIN_TEX} + {N_GEN_TEX})$"
            ),
        )
    ess = payload["effective_sample_size"]
    hollow = False
    names = payload["parameters"]
    shifts = spread_factors(len(names) + 1)
    for j, name in enumerate(names):
        tex = PARAMETER_TEX.get(name, name)
        ratio = [r[j] for r in payload["ratio_to_train"]]
        stderr = [r[j] for r in payload["ratio_to_train_stderr"]]
        label = f"{I_GEN}/{I_TRAIN}" + (f" for ${tex}$" if len(names) > 1 else "")
        label += f" (importance sampling, {config['outer']} replicas)"
        color = PARAMETER_COLORS[j % len(PARAMETER_COLORS)]
        hollow |= _points(ax, n_gen * shifts[j], ratio, stderr, ess, color, "o", label)
    view = payload["estimator_view"]
    first = PARAMETER_TEX.get(names[0], names[0])
    _points(
        ax,
        n_gen * shifts[-1],
        np.asarray(view["information_gen"]) / reference[0],
        np.asarray(view["information_gen_stderr"]) / reference[0],
        [None] * len(n_gen),
        ESTIMATOR_COLOR,
        "s",
        rf"estimator view $1/\mathrm{{Var}}(\hat{{{first}}}_\mathrm{{gen}})$/{I_TRAIN} "
        f"({config['pseudo_experiments']:,} pseudo-exp.)",
    )
    if hollow:
        _untrusted_entry(ax)
    _finish_information_axis(ax, payload, f"{I_GEN} / {I_TRAIN} (diagonal)")
    tops = [
        r[j] + e[j]
        for r, e in zip(
            payload["ratio_to_train"], payload["ratio_to_train_stderr"], strict=True
        )
        for j in range(len(names))
    ]
    ax.set_ylim(0.0, max(1.3, 1.08 * max(tops)))
    ax.set_xlabel(f"generated events {N_GEN}")
    _legend(ax, 8.5)
    failed = [
        n for n, ok in zip(payload["n_gen"], payload["holds"], strict=True) if not ok
    ]
    inequality = r"$I_\mathrm{gen} \preceq I_\mathrm{train}$"
    verdict = (
        f"{inequality} within {K_SIGMA:g} std. errors at every {N_GEN}"
        if not failed
        else f"{inequality} violated (> {K_SIGMA:g} std. errors) at {N_GEN} = "
        + ", ".join(map(str, failed))
    )
    ax.set_title(f"Fisher information (eq. 23): {verdict}", fontsize=10.5)


def _divergence_panel(
    ax: Axes,
    payload: dict[str, Any],
    key: str,
    symbol: str,
    curve: np.ndarray | None,
    grid: np.ndarray,
    equation: str,
) -> None:
    """KL_gen/KL_train or MI_gen/MI_train against n_gen, ceiling 1."""
    data = payload[key]
    exact = data["train_exact"]
    train = exact if exact is not None else data["train"]
    gen = np.asarray(data["gen"], np.float64)
    gen_stderr = np.asarray(data["gen_stderr"], np.float64)
    if exact is not None:
        stderr = gen_stderr / train
    else:  # a Monte Carlo denominator: propagate its error too
        stderr = np.hypot(gen_stderr / train, gen * data["train_stderr"] / train**2)
    ceiling = "exact" if exact is not None else "Monte Carlo"
    ax.axhline(
        1.0, color="0.2", ls="--", lw=1.5, label=f"ceiling: {symbol}(train), {ceiling}"
    )
    if exact is None:
        width = data["train_stderr"] / train
        ax.axhspan(
            1 - width,
            1 + width,
            color="0.6",
            alpha=0.25,
            lw=0,
            label=f"± 1 std. error of {symbol}(train)",
        )
    if curve is not None:
        ax.plot(grid, curve / train, color="black", lw=1.3, label="exact")
    n_gen = np.asarray(payload["n_gen"], np.float64)
    hollow = _points(
        ax,
        n_gen,
        gen / train,
        stderr,
        data["effective_sample_size"],
        SURROGATE_COLOR,
        "o",
        f"{symbol}(gen) / {symbol}(train)",
    )
    if hollow:
        _untrusted_entry(ax)
    _finish_information_axis(ax, payload, f"{symbol}(gen) / {symbol}(train)")
    ax.set_ylim(0.0, max(1.3, 1.08 * float(np.max(gen / train + stderr))))
    _legend(ax, 7.5)
    ax.set_title(equation, fontsize=9.5)


def _kl_curve(payload: dict[str, Any], grid: np.ndarray) -> np.ndarray | None:
    """½ Δμ² I_gen(n_gen) for the mean-only Gaussian fit, else None."""
    if all(value is None for value in payload["kl"]["gen_exact"]):
        return None
    config = payload["config"]
    shift = payload["kl"]["theta1"]["mu"] - config["mu"]
    return linear_gaussian_generated_kl(shift, config["sigma"], config["n_train"], grid)


def _mi_curve(payload: dict[str, Any], grid: np.ndarray) -> np.ndarray | None:
    """I(μ; D_gen) = ½ log(1 + τ²/(σ²(1/n_train + 1/n_gen))) for the mean-only
    Gaussian fit, else None."""
    if all(value is None for value in payload["mi"]["gen_exact"]):
        return None
    config = payload["config"]
    return gaussian_mean_mutual_information_curve(
        payload["mi"]["prior_std"], config["sigma"], config["n_train"], grid
    )


def figure_fisher_vs_ngen(result: FisherResult | dict[str, Any]) -> Figure:
    """The information study (§3.2) against n_gen, as ratios to the training data.

    Left: the Fisher information of n_gen generated events over that of the
    n_train training events (diagonal entries; error bars: standard errors of the
    importance-sampling estimate), the exact curve n_gen/(n_train + n_gen) where the
    study has one (mean-only Gaussian fit), the estimator view 1/Var(θ̂) from
    pseudo-experiments (green squares), what n_gen *true* events would carry
    (n_gen/n_train) and the ceiling 1 of the data processing inequality (eq. 23).
    Right: the KL divergence between θ and θ₁ (eq. 18) and the mutual information
    under the study's prior (eq. 14), generated over training, with ceiling 1.
    Hollow points had an importance-sampling effective sample size below 30.

    ``result`` is a ``FisherResult`` or its ``to_json()`` payload (``fisher.json``).
    """
    payload = as_json(result)
    config = payload["config"]
    figure = new_figure(13, 6.4)
    grid_spec = figure.add_gridspec(2, 2, width_ratios=[1.75, 1])
    main = figure.add_subplot(grid_spec[:, 0])
    kl = figure.add_subplot(grid_spec[0, 1])
    mi = figure.add_subplot(grid_spec[1, 1], sharex=kl)
    _fisher_panel(main, payload)
    grid = _information_grid(payload)
    first = PARAMETER_TEX.get(payload["parameters"][0], payload["parameters"][0])
    theta1 = payload["kl"]["theta1"][payload["parameters"][0]]
    _divergence_panel(
        kl,
        payload,
        "kl",
        "KL",
        _kl_curve(payload, grid),
        grid,
        rf"KL divergence (eq. 18), ${first}_1$ = {theta1:.4g}",
    )
    _divergence_panel(
        mi,
        payload,
        "mi",
        "MI",
        _mi_curve(payload, grid),
        grid,
        rf"mutual information (eq. 14), prior width {payload['mi']['prior_std']:.3g}",
    )
    kl.tick_params(labelbottom=False)
    mi.set_xlabel(f"generated events {N_GEN}")
    if config["model"] == "gaussian":
        truth = rf"Gaussian $\mu$ = {config['mu']:g}, $\sigma$ = {config['sigma']:g}"
        fitted = " and ".join(
            PARAMETER_TEX[name].join("$$") for name in config["fitted_parameters"]
        )
    else:
        truth = rf"exponential $\lambda$ = {config['rate']:g}"
        fitted = r"$\lambda$"
    about = " and ".join(f"${PARAMETER_TEX.get(n, n)}$" for n in payload["parameters"])
    figure.suptitle(
        f"Information about {about} in {N_GEN} generated events vs the {N_TRAIN} = "
        f"{config['n_train']} training events ({truth}; ideal fit of {fitted})"
    )
    return figure


FILES = {"fisher_vs_ngen.png": figure_fisher_vs_ngen}


def save_figures(result: FisherResult | dict[str, Any], folder: Path) -> list[Path]:
    """Write the information study's figure (``fisher_vs_ngen.png``) into ``folder``
    and return its path in a list."""
    return save(FILES, result, folder)
