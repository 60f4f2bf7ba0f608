"""The information study's figure (§3.2), drawn from a ``FisherResult`` or its
``fisher.json``; the exact curves come from ``jaxunc.information``."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxunc.information import (
    LOW_ESS,
    gaussian_mean_mutual_information_curve,
    linear_gaussian_generated_kl,
)
from jaxunc.plots.style import (
    BOX,
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


BOUND_COLOR = "tab:red"
MARGIN_COLOR = "tab:orange"


def _short(label: str) -> str:
    """The kind of an exact reference ("closed form", "quadrature")."""
    return label.split(" (")[0].split(" n")[0]


def _verdict_title(payload: dict[str, Any]) -> str:
    """The check I_gen ≤ I_train per n_gen, in words."""
    inequality = r"$I_\mathrm{gen} \preceq I_\mathrm{train}$"
    verdicts = payload.get("verdict") or [
        "holds" if ok else "violated" for ok in payload["holds"]
    ]
    n_gen = payload["n_gen"]
    violated = [str(n) for n, v in zip(n_gen, verdicts, strict=True) if v == "violated"]
    open_ = [
        str(n) for n, v in zip(n_gen, verdicts, strict=True) if v == "undetermined"
    ]
    if violated:
        text = (
            f"{inequality} violated (> {K_SIGMA:g} std. errors) at {N_GEN} = "
            + ", ".join(violated)
        )
    else:
        text = f"{inequality} within {K_SIGMA:g} std. errors at every {N_GEN}"
        if open_:
            text = (
                f"{inequality} within {K_SIGMA:g} std. errors; undetermined at "
                f"{N_GEN} = " + ", ".join(open_)
            )
    return f"Fisher information (eq. 23): {text}"


def _fisher_panel(ax: Axes, payload: dict[str, Any]) -> None:
    """Per n_gen the band from the best lower bound on I_gen to I_train, the exact
    I_gen where known, the ideal fit's curve, I_gen by importance sampling and the
    estimator view where computed, what n_gen true events would carry, and the
    ceiling — all over I_train."""
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
    curves = payload.get("reference_curves") or {}
    if curves:
        ax.plot(
            curves["n_gen"],
            curves["ideal_fraction"],
            color="0.45",
            ls=":",
            lw=1.4,
            label=(
                "ideal mean-only fit (linear Gaussian): "
                rf"${N_GEN_TEX}/({N_TRAIN_TEX} + {N_GEN_TEX})$"
            ),
        )
        if curves.get("exact_fraction") is not None:
            ax.plot(
                curves["n_gen"],
                curves["exact_fraction"],
                color="black",
                lw=1.3,
                label=f"exact {I_GEN}/{I_TRAIN} ({_short(curves['exact_label'])})",
            )
    tops = [1.0]
    fraction = payload.get("information_fraction")
    names = payload["parameters"]
    shifts = spread_factors(len(names) + 3)
    if fraction is not None:
        known = np.array([f is not None for f in fraction], bool)
        if known.any():
            x = n_gen[known]
            low = np.array([f for f in fraction if f is not None], np.float64)
            error = np.array(
                [
                    e
                    for f, e in zip(
                        fraction, payload["information_fraction_stderr"], strict=True
                    )
                    if f is not None
                ],
                np.float64,
            )
            ax.vlines(
                x * shifts[0],
                np.minimum(low, 1.0),
                np.ones_like(low),
                color=BOUND_COLOR,
                alpha=0.2,
                lw=14,
                label=f"band of {I_GEN}: best lower bound to {I_TRAIN}",
            )
            simulations = config.get("simulations")
            ax.errorbar(
                x * shifts[0],
                low,
                yerr=error,
                fmt="^",
                ms=7,
                color=BOUND_COLOR,
                capsize=3,
                zorder=4,
                label=(
                    rf"best lower bound $J^T C^{{-1}} J$ ({simulations} chain draws)"
                ),
            )
            tops += list(low + error)
    hollow = False
    if any(r is not None for r in payload["ratio_to_train"]):
        ess = payload["effective_sample_size"]
        for j, name in enumerate(names):
            tex = PARAMETER_TEX.get(name, name)
            keep = [i for i, r in enumerate(payload["ratio_to_train"]) if r is not None]
            ratio = [payload["ratio_to_train"][i][j] for i in keep]
            stderr = [payload["ratio_to_train_stderr"][i][j] for i in keep]
            label = f"{I_GEN}/{I_TRAIN}" + (f" for ${tex}$" if len(names) > 1 else "")
            label += f" (importance sampling, {config['outer']} replicas)"
            color = PARAMETER_COLORS[j % len(PARAMETER_COLORS)]
            hollow |= _points(
                ax,
                n_gen[keep] * shifts[1 + j],
                ratio,
                stderr,
                [ess[i] for i in keep],
                color,
                "o",
                label,
            )
            tops += [r + e for r, e in zip(ratio, stderr, strict=True)]
    margin = payload.get("margin") or {}
    margin_gen = margin.get("I_gen") or []
    keep = [i for i, m in enumerate(margin_gen) if m is not None]
    if keep:
        gen = np.array([margin_gen[i][0][0] for i in keep]) / reference[0]
        error = np.array([margin["stderr"][i][0][0] for i in keep]) / reference[0]
        ax.errorbar(
            n_gen[keep] * shifts[-2],
            gen,
            yerr=error,
            fmt="D",
            ms=5,
            color=MARGIN_COLOR,
            capsize=3,
            zorder=5,
            label=(
                rf"{I_TRAIN} $-$ margin $E[\mathrm{{Cov}}(s_\mathrm{{train}} | "
                rf"D_\mathrm{{gen}})]$ ({config['outer']} replicas)"
            ),
        )
        tops += list(gen + error)
    view = payload["estimator_view"]
    values = view["information_gen"]
    keep = [i for i, v in enumerate(values) if v is not None]
    if keep:
        first = PARAMETER_TEX.get(names[0], names[0])
        count = (
            f"{config['pseudo_experiments']:,} pseudo-exp."
            if config.get("pseudo_experiments")
            else f"{config.get('simulations')} chain draws"
        )
        _points(
            ax,
            n_gen[keep] * shifts[-1],
            np.asarray([values[i] for i in keep]) / reference[0],
            np.asarray([view["information_gen_stderr"][i] for i in keep])
            / reference[0],
            [None] * len(keep),
            ESTIMATOR_COLOR,
            "s",
            rf"estimator view $1/\mathrm{{Var}}(\hat{{{first}}}_\mathrm{{gen}})$"
            f"/{I_TRAIN} ({count})",
        )
    if hollow:
        _untrusted_entry(ax)
    _finish_information_axis(ax, payload, f"{I_GEN} / {I_TRAIN} (diagonal)")
    ax.set_ylim(0.0, max(1.3, 1.08 * max(tops)))
    ax.set_xlabel(f"generated events {N_GEN}")
    _legend(ax, 8.0)
    ax.set_title(_verdict_title(payload), fontsize=10.5)


def _divergence_panel(
    ax: Axes,
    payload: dict[str, Any],
    key: str,
    symbol: str,
    curve: np.ndarray | None,
    grid: np.ndarray,
    equation: str,
) -> None:
    """KL_gen/KL_train or MI_gen/MI_train against n_gen, ceiling 1; where they
    were not computed, the reason in words."""
    data = payload[key]
    exact = data["train_exact"]
    train = exact if exact is not None else data["train"]
    if train is None or all(value is None for value in data["gen"]):
        if train is not None:
            ax.axhline(1.0, color="0.2", ls="--", lw=1.5)
        note = data.get("note") or "not computed"
        ax.text(
            0.5,
            0.5,
            "\n".join(textwrap.wrap(f"{symbol}(gen): {note}", 60)[:5]),
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=8,
            bbox=BOX,
        )
        _finish_information_axis(ax, payload, f"{symbol}(gen) / {symbol}(train)")
        ax.set_ylim(0.0, 1.3)
        ax.set_title(equation, fontsize=9.5)
        return
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
    ax.set_ylim(0.0, max(1.3, 1.08 * float(np.nanmax(gen / train + stderr))))
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
    n_train training events: per n_gen the band from the best lower bound on I_gen
    (red triangles, with standard errors) to I_train, the exact curve where the
    study has one (mean-only Gaussian fit, exponential rate fit, bootstrap of a
    Gaussian mean), the ideal mean-only fit's curve n_gen/(n_train + n_gen) for
    reference, I_gen by importance sampling where computed (diagonal entries), the
    estimator view 1/Var(θ̂) (green squares), what n_gen *true* events would carry
    (n_gen/n_train), I_train minus the margin estimate E[Cov(s_train | D_gen)]
    (orange diamonds, where it is a measurement) and the ceiling 1 of the data
    processing inequality (eq. 23).
    Every curve comes from the result (``reference_curves``).
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
    name = payload["parameters"][0]
    first = PARAMETER_TEX.get(name, name)
    theta1 = payload["kl"]["theta1"]
    shifted = "" if theta1 is None else f", ${first}_1$ = {theta1[name]:.4g}"
    _divergence_panel(
        kl,
        payload,
        "kl",
        "KL",
        _kl_curve(payload, grid),
        grid,
        f"KL divergence (eq. 18){shifted}",
    )
    prior = payload["mi"]["prior_std"]
    _divergence_panel(
        mi,
        payload,
        "mi",
        "MI",
        _mi_curve(payload, grid),
        grid,
        "mutual information (eq. 14)"
        + ("" if prior is None else f", prior width {prior:.3g}"),
    )
    kl.tick_params(labelbottom=False)
    mi.set_xlabel(f"generated events {N_GEN}")
    surrogate = config.get("surrogate", "ideal")
    if config["model"] == "gaussian":
        truth = rf"Gaussian $\mu$ = {config['mu']:g}, $\sigma$ = {config['sigma']:g}"
        fitted = " and ".join(
            PARAMETER_TEX[name].join("$$") for name in config["fitted_parameters"]
        )
    elif config["model"] == "exponential":
        truth = rf"exponential $\lambda$ = {config['rate']:g}"
        fitted = r"$\lambda$"
    else:
        truth = config["model"]
        fitted = " and ".join(
            f"${PARAMETER_TEX.get(n, n)}$" for n in config["fitted_parameters"]
        )
    trained = (
        f"ideal fit of {fitted}" if surrogate == "ideal" else f"{surrogate} surrogate"
    )
    about = " and ".join(f"${PARAMETER_TEX.get(n, n)}$" for n in payload["parameters"])
    figure.suptitle(
        f"Information about {about} in {N_GEN} generated events vs the {N_TRAIN} = "
        f"{config['n_train']} training events ({truth}; {trained})"
    )
    return figure


FILES = {"fisher_vs_ngen.png": figure_fisher_vs_ngen}


def save_figures(result: FisherResult | dict[str, Any], folder: Path) -> list[Path]:
    """Write the information study's figure (``fisher_vs_ngen.png``) into ``folder``
    and return its path in a list."""
    return save(FILES, result, folder)
