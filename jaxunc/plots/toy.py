"""Figures 4-7 of the paper's Appendix A, drawn from a ``ToyResult``.

Every number shown comes from the result or its config (the predictions from
``ToyConfig``); this module only normalises histograms and draws."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxunc.plots import style
from jaxunc.plots.style import (
    BOX,
    N_GEN,
    N_GEN_TEX,
    N_TRAIN,
    N_TRAIN_TEX,
    SURROGATE_COLOR,
    TRUTH_COLOR,
    density,
    new_figure,
    palette,
    plain_log_ticks,
    save,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from jaxunc.studies.toy import ToyResult

__all__ = [
    "FILES",
    "figure4_training_samples",
    "figure5_sample_means",
    "figure6_std_vs_ngen",
    "figure7_funnels",
    "save_figures",
]


def _require(result: ToyResult, name: str) -> dict[str, Any]:
    """``result.<name>``, or ValueError when the study ran without figure data."""
    data = getattr(result, name)
    if data is None:
        raise ValueError(
            f"the result has no {name} data: the study was run with figures=False; "
            "rerun run_toy(config, figures=True) to draw Figures 4 and 7"
        )
    return data


def _gaussian(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


# ----------------------------------------------------------------------------- Figure 4


def _training_edges(result: ToyResult, samples: list[np.ndarray]) -> np.ndarray:
    """Bins of width σ/2 centred on μ, wide enough for every sample (at least ±4σ)."""
    mu, sigma = result.config.mu, result.config.sigma
    reach = max(float(np.max(np.abs(np.asarray(s) - mu))) for s in samples) / sigma
    half_bins = max(8, math.ceil(2 * reach))
    return mu + 0.5 * sigma * np.arange(-half_bins, half_bins + 1)


def _training_panel(
    ax: Axes, result: ToyResult, edges: np.ndarray, data: dict[str, Any], i: int
) -> float:
    """One training sample: histogram, true density, fitted Gaussian, μ̂ line.

    Returns the tallest value drawn, to size the shared y axis.
    """
    config = result.config
    sample = np.asarray(data["samples"][i], np.float64)
    mu_hat, sigma_hat = data["mu_hat"][i], data["sigma_hat"][i]
    x = np.linspace(edges[0], edges[-1], 400)
    heights, _, _ = ax.hist(
        sample,
        bins=edges,
        density=True,
        color="tab:orange",
        alpha=0.55,
        label=f"training sample ({N_TRAIN} = {sample.size})",
    )
    true_pdf = _gaussian(x, config.mu, config.sigma)
    fit_pdf = _gaussian(x, mu_hat, sigma_hat)
    ax.plot(x, true_pdf, "--", color="tab:blue", lw=1.8, label="true density")
    ax.plot(x, fit_pdf, "--", color="tab:red", lw=1.8, label="fitted Gaussian")
    ax.axvline(mu_hat, color="tab:red", lw=1.5, label=r"fitted mean $\hat\mu$")
    text = "\n".join(
        [
            rf"$\hat\mu$ = {mu_hat:+.3f}",
            rf"$\hat\sigma$ = {sigma_hat:.3f}",
            rf"$\chi^2$/ndf vs truth = {data['chi2'][i]:.1f}/{data['chi2_bins']}",
        ]
    )
    ax.text(0.03, 0.96, text, transform=ax.transAxes, va="top", fontsize=9, bbox=BOX)
    ax.set_title(data["labels"][i])
    return float(max(heights.max(), true_pdf.max(), fit_pdf.max()))


def figure4_training_samples(result: ToyResult) -> Figure:
    """Figure 4: four typical training samples of ``n_train`` true events.

    Each panel shows the normalised histogram of the sample (orange), the true
    density (blue dashed), the Gaussian fitted to the sample — the ideal surrogate —
    (red dashed) and its mean μ̂ (red line), with μ̂, σ̂ and the χ² of the sample
    against the true density.  The panels are a close match, a bad shape with good
    μ̂ and σ̂, a shifted mean and an off σ.
    """
    data = _require(result, "figure4")
    count = len(data["labels"])
    rows = math.ceil(count / 2)
    figure = new_figure(10, 3.6 * rows + 0.9)
    axes = np.atleast_1d(figure.subplots(rows, 2, sharex=True, sharey=True)).ravel()
    edges = _training_edges(result, data["samples"])
    tallest = max(
        _training_panel(ax, result, edges, data, i) for i, ax in enumerate(axes[:count])
    )
    for ax in axes[count:]:
        ax.set_visible(False)
    axes[0].set_ylim(0, 1.3 * tallest)
    for ax in axes[:count]:
        ax.set_xlabel("x")
        ax.set_ylabel("probability density")
        ax.label_outer()
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncol=len(handles))
    config = result.config
    figure.suptitle(
        f"Training samples of {N_TRAIN} = {config.n_train} events from the truth "
        rf"N($\mu$ = {config.mu:g}, $\sigma$ = {config.sigma:g}) and the fitted "
        "Gaussian"
    )
    return figure


# ----------------------------------------------------------------------------- Figure 5


def _sample_mean_panel(ax: Axes, result: ToyResult, key: str, title: str) -> None:
    """The sample-mean histograms of one source (truth or surrogate), one per n_gen."""
    edges = result.histograms["edges"]
    counts = result.histograms[key]
    colors = palette(len(result.n_gen))
    for n, row, color in zip(result.n_gen, counts, colors, strict=True):
        values = style.density(row, edges)
        ax.stairs(values, edges, color=color, lw=1.8, label=f"{N_GEN} = {n}")
    ax.axvline(result.config.mu, color="0.4", lw=0.8, ls=":")
    ax.set_title(title)
    ax.set_xlabel(rf"sample mean $\bar x$ of the {N_GEN} events")


def _sample_mean_range(result: ToyResult) -> tuple[float, float]:
    """μ ± 3.5 × the widest measured spread, within the histogram edges."""
    edges = result.histograms["edges"]
    widest = max(*result.truth["std"], *result.surrogate["std"])
    half_width = 3.5 * widest
    mu = result.config.mu
    return max(edges[0], mu - half_width), min(edges[-1], mu + half_width)


def figure5_sample_means(result: ToyResult) -> Figure:
    """Figure 5: distributions of the sample mean over the pseudo-experiments.

    Left: the ``n_gen`` events are drawn from the truth, and the distributions
    narrow as σ/√n_gen.  Right: they are drawn from the Gaussian fitted to
    ``n_train`` true events (a new training sample per pseudo-experiment), and the
    distributions stop narrowing: they tend to the distribution of the
    training-sample mean (black dotted, width σ/√n_train).
    """
    config = result.config
    figure = new_figure(11, 4.8)
    left, right = figure.subplots(1, 2, sharex=True, sharey=True)
    truth_title = r"events from the truth $f_\mathrm{true}$"
    _sample_mean_panel(left, result, "truth", truth_title)
    _sample_mean_panel(
        right,
        result,
        "surrogate",
        rf"events from the fitted surrogate $f_\mathrm{{GAN}}$ ({N_TRAIN} = "
        f"{config.n_train})",
    )
    train_edges = result.histograms["train_edges"]
    right.stairs(
        density(result.histograms["train"], train_edges),
        train_edges,
        color="black",
        ls=":",
        lw=1.6,
        label=rf"training mean ({N_GEN} $\to\infty$ limit)",
    )
    left.set_xlim(*_sample_mean_range(result))
    left.set_ylabel("probability density")
    left.legend(loc="upper right", fontsize=9)
    right.legend(loc="upper right", fontsize=9)
    figure.suptitle(
        f"Sample means in {config.pseudo_experiments:,} pseudo-experiments per "
        f"{N_GEN}; surrogate trained on {N_TRAIN} = {config.n_train} true events"
    )
    return figure


# ----------------------------------------------------------------------------- Figure 6


def _prediction_grid(result: ToyResult) -> np.ndarray:
    """A dense log-spaced n_gen grid covering the measured sizes and n_train."""
    sizes = [*result.n_gen, result.config.n_train]
    return np.geomspace(min(sizes) / 1.5, max(sizes) * 3.0, 300)


def _measured_points(ax: Axes, result: ToyResult) -> None:
    """The measured std of the sample mean, with its standard error, per source."""
    n_gen = np.asarray(result.n_gen, np.float64)
    pseudo_experiments = result.config.pseudo_experiments
    for key, color, name in (
        ("truth", TRUTH_COLOR, "truth"),
        ("surrogate", SURROGATE_COLOR, "surrogate"),
    ):
        summary = getattr(result, key)
        ax.errorbar(
            n_gen,
            summary["std"],
            yerr=summary["std_stderr"],
            fmt="o",
            ms=6,
            color=color,
            capsize=3,
            zorder=3,
            label=f"{name}: measured ({pseudo_experiments:,} pseudo-exp.)",
        )


def _predicted_curves(ax: Axes, result: ToyResult) -> float:
    """The predicted curves on a dense grid; returns the training floor σ/√n_train."""
    config = result.config
    grid = _prediction_grid(result)
    floor = result.training["predicted_std"]
    ax.plot(
        grid,
        config.predicted_truth_std(grid),
        color=TRUTH_COLOR,
        lw=1.5,
        label=rf"truth: $\sigma/\sqrt{{{N_GEN_TEX}}}$",
    )
    surrogate_label = (
        r"surrogate: $\sqrt{\sigma^2/n_\mathrm{train}"
        r" + E[\hat\sigma^2]/n_\mathrm{gen}}$"
    )
    ax.plot(
        grid,
        config.predicted_surrogate_std(grid),
        color=SURROGATE_COLOR,
        lw=1.5,
        label=surrogate_label,
    )
    ax.axhline(
        floor,
        color="0.3",
        ls=":",
        lw=1.5,
        label=rf"training floor $\sigma/\sqrt{{{N_TRAIN_TEX}}}$ = {floor:.3g}",
    )
    ax.axvline(config.n_train, color="0.6", ls="--", lw=0.8)
    ax.text(
        config.n_train * 1.08,
        0.98,
        f"{N_GEN} = {N_TRAIN}",
        transform=ax.get_xaxis_transform(),
        va="top",
        fontsize=9,
        color="0.4",
    )
    return floor


def figure6_std_vs_ngen(result: ToyResult) -> Figure:
    """Figure 6: std of the sample mean against n_gen (log-log).

    Points: the measured std over pseudo-experiments (error bars: its standard
    error) for true events (orange) and surrogate events (blue).  Lines: the
    predictions σ/√n_gen and √(σ²/n_train + E[σ̂²]/n_gen).  The dotted line is the
    floor σ/√n_train that no number of generated events can beat: a surrogate
    trained on n_train events is worth at most about n_train true events.
    """
    config = result.config
    figure = new_figure(8, 6)
    ax = figure.subplots()
    _predicted_curves(ax, result)
    _measured_points(ax, result)
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax.xaxis)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel(f"number of events per pseudo-experiment {N_GEN}")
    ax.set_ylabel(r"std of the sample mean, $\sigma(\bar x)$")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper right", fontsize=9)
    message = (
        "Generated events stop helping once\n"
        rf"{N_GEN} $\gtrsim$ {N_TRAIN} = {config.n_train}: the surrogate's"
        "\nprecision is capped by its training sample"
    )
    ax.text(0.03, 0.04, message, transform=ax.transAxes, va="bottom", bbox=BOX)
    ax.set_title(
        rf"Truth vs surrogate ($\sigma$ = {config.sigma:g}, {N_TRAIN} = "
        f"{config.n_train}, fit: {config.fit}, ddof = {config.ddof})"
    )
    return figure


# ----------------------------------------------------------------------------- Figure 7


def _training_mean_panel(ax: Axes, result: ToyResult, training_means: list) -> None:
    """Top of Figure 7: the training-sample means, with the three chosen ones."""
    edges = np.asarray(result.histograms["train_edges"], np.float64)
    density = style.density(result.histograms["train"], edges)
    ax.stairs(
        density,
        edges,
        color="tab:blue",
        fill=True,
        alpha=0.45,
        label="means of training samples from the truth",
    )
    bins = np.clip(np.searchsorted(edges, training_means) - 1, 0, len(density) - 1)
    ax.plot(
        training_means,
        density[bins],
        "o",
        color="tab:red",
        ms=8,
        zorder=3,
        label="the three training samples of the funnels",
    )
    ax.axvline(result.config.mu, color="0.4", lw=0.8, ls=":")
    ax.set_xlabel(
        rf"training-sample mean $\hat\mu$ ({N_TRAIN} = {result.config.n_train})"
    )
    ax.set_ylabel("probability density")
    ax.set_ylim(0, 1.3 * density.max())
    ax.legend(loc="upper right", fontsize=9)


def _examples(ax: Axes, n_gen: np.ndarray, examples: np.ndarray) -> None:
    """Faint points: one generated-sample mean per n_gen for further training samples.

    The points are spread slightly along log n_gen so they do not sit on one line.
    """
    rows = examples.shape[0]
    jitter = 10 ** np.linspace(-0.06, 0.06, rows)[:, None]
    ax.scatter(
        (n_gen[None, :] * jitter).ravel(),
        examples.ravel(),
        s=5,
        color="tab:blue",
        alpha=0.3,
        lw=0,
        zorder=1,
        label=f"{rows} more training samples, one generated sample each",
    )


def _funnel_panel(ax: Axes, result: ToyResult, data: dict[str, Any]) -> None:
    """Bottom of Figure 7: mean ± std of the generated-sample mean against n_gen."""
    n_gen = np.asarray(data["n_gen"], np.float64)
    _examples(ax, n_gen, np.asarray(data["examples"], np.float64))
    per_funnel = result.config.funnel_pseudo_experiments
    mean_label = f"mean over {per_funnel:,} generated samples"
    for i, funnel in enumerate(data["funnels"]):
        mean, std = np.asarray(funnel["mean"]), np.asarray(funnel["std"])
        ax.fill_between(
            n_gen,
            mean - std,
            mean + std,
            color="tab:red",
            alpha=0.22,
            lw=0,
            label="±1 std" if i == 0 else None,
        )
        ax.plot(
            n_gen,
            mean,
            "--",
            color="black",
            lw=1.3,
            label=mean_label if i == 0 else None,
        )
    right_edge = n_gen.max() * 2.5
    means = [funnel["training_mean"] for funnel in data["funnels"]]
    ax.plot(
        [right_edge] * len(means),
        means,
        "o",
        color="tab:red",
        ms=8,
        zorder=3,
        label="training means (asymptotes)",
    )
    ax.axhline(result.config.mu, color="0.4", lw=0.8, ls=":")
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis, up_to=n_gen.max())
    ax.set_xlim(n_gen.min() / 1.5, n_gen.max() * 4)
    ax.set_xlabel(f"generated events {N_GEN}")
    ax.set_ylabel(r"mean of the generated sample $\bar x$")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize=9)


def figure7_funnels(result: ToyResult) -> Figure:
    """Figure 7: generated data converge to the training mean, not to the truth.

    Top: the distribution of training-sample means (blue) with the three chosen
    training samples (red dots).  Bottom: for the surrogate fitted to each of them,
    the mean (black dashed) and mean ± std (red funnel) of the generated-sample mean
    against n_gen; faint blue points repeat this once per n_gen for 100 further
    training samples, and the red dots on the right are the three training means
    the funnels converge to.
    """
    data = _require(result, "figure7")
    figure = new_figure(8.5, 9)
    top, bottom = figure.subplots(2, 1, height_ratios=[1, 1.6])
    _training_mean_panel(top, result, [f["training_mean"] for f in data["funnels"]])
    _funnel_panel(bottom, result, data)
    figure.suptitle(
        "Surrogate-generated samples converge to their training mean, not to "
        rf"$\mu$ = {result.config.mu:g}"
    )
    return figure


# ----------------------------------------------------------------------------- files

FILES = {
    "fig4_training_samples.png": figure4_training_samples,
    "fig5_sample_means.png": figure5_sample_means,
    "fig6_std_vs_ngen.png": figure6_std_vs_ngen,
    "fig7_funnels.png": figure7_funnels,
}


def save_figures(result: ToyResult, folder: Path) -> list[Path]:
    """Write Figures 4-7 as PNGs into ``folder`` and return their paths.

    Raises ValueError before writing anything when the study was run with
    ``figures=False`` (no data for Figures 4 and 7).
    """
    _require(result, "figure4")
    _require(result, "figure7")
    return save(FILES, result, folder)
