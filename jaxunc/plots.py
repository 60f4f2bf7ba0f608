"""Figures 4-7 of the paper's Appendix A, drawn from a :class:`ToyResult`, and the
information study's figure (§3.2), drawn from a :class:`FisherResult`.

Every number shown comes from the result (or its config); this module only
normalises histograms and draws the closed-form predictions on a dense grid.
matplotlib is imported inside the functions, and figures are drawn on the Agg
canvas without pyplot, so nothing here touches global plotting state.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from jaxunc.studies.fisher import FisherResult
    from jaxunc.studies.toy import ToyResult

__all__ = [
    "ENSEMBLE_FIGURE_FILES",
    "FIGURE_FILES",
    "FISHER_FIGURE_FILES",
    "VALIDATE_FIGURE_FILES",
    "figure4_training_samples",
    "figure5_sample_means",
    "figure6_std_vs_ngen",
    "figure7_funnels",
    "figure_ensemble_std_vs_ngen",
    "figure_fisher_vs_ngen",
    "figure_validate_amplification",
    "figure_validate_histograms",
    "figure_validate_p_values",
    "save_ensemble_figures",
    "save_fisher_figures",
    "save_toy_figures",
    "save_validate_figures",
]

DPI = 140
TRUTH_COLOR = "tab:orange"  # Figure 6 of the paper: truth orange, surrogate blue
SURROGATE_COLOR = "tab:blue"
N_GEN_TEX = r"n_\mathrm{gen}"
N_TRAIN_TEX = r"n_\mathrm{train}"
N_GEN = f"${N_GEN_TEX}$"
N_TRAIN = f"${N_TRAIN_TEX}$"
BOX = {"boxstyle": "round", "fc": "white", "ec": "0.8"}


# ----------------------------------------------------------------------------- helpers


def _new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure on the Agg canvas, with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _require(result: ToyResult, name: str) -> dict[str, Any]:
    """``result.<name>``, or ValueError when the study ran without figure data."""
    data = getattr(result, name)
    if data is None:
        raise ValueError(
            f"the result has no {name} data: the study was run with figures=False; "
            "rerun run_toy(config, figures=True) to draw Figures 4 and 7"
        )
    return data


def _density(counts: Any, edges: Any) -> np.ndarray:
    """Histogram counts normalised to a probability density (area 1)."""
    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    return counts / (max(total, 1.0) * np.diff(np.asarray(edges, np.float64)))


def _gaussian(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def _plain_log_ticks(axis: Any, up_to: float | None = None) -> None:
    """Ticks at 1, 2, 5 × 10^k on a log axis (none above ``up_to``), labelled as
    plain numbers (30, 0.1)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    locator = LogLocator(base=10, subs=(1.0, 2.0, 5.0))
    if up_to is not None:
        ticks = locator.tick_values(1.0, up_to)
        locator = FixedLocator(ticks[ticks <= up_to * (1 + 1e-9)])
    axis.set_major_locator(locator)
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _colors(count: int) -> list:
    """``count`` distinct colours (tab10, cycling)."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    return [palette[i % len(palette)] for i in range(count)]


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
    figure = _new_figure(10, 3.6 * rows + 0.9)
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
    colors = _colors(len(result.n_gen))
    for n, row, color in zip(result.n_gen, counts, colors, strict=True):
        density = _density(row, edges)
        ax.stairs(density, edges, color=color, lw=1.8, label=f"{N_GEN} = {n}")
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
    figure = _new_figure(11, 4.8)
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
        _density(result.histograms["train"], train_edges),
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
    variance_term = config.expected_fitted_variance()
    floor = config.sigma / math.sqrt(config.n_train)
    ax.plot(
        grid,
        config.sigma / np.sqrt(grid),
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
        np.sqrt(floor**2 + variance_term / grid),
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
    figure = _new_figure(8, 6)
    ax = figure.subplots()
    _predicted_curves(ax, result)
    _measured_points(ax, result)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis)
    _plain_log_ticks(ax.yaxis)
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
    density = _density(result.histograms["train"], edges)
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
    _plain_log_ticks(ax.xaxis, up_to=n_gen.max())
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
    figure = _new_figure(8.5, 9)
    top, bottom = figure.subplots(2, 1, height_ratios=[1, 1.6])
    _training_mean_panel(top, result, [f["training_mean"] for f in data["funnels"]])
    _funnel_panel(bottom, result, data)
    figure.suptitle(
        "Surrogate-generated samples converge to their training mean, not to "
        rf"$\mu$ = {result.config.mu:g}"
    )
    return figure


# ----------------------------------------------------------------------------- files

FIGURE_FILES = {
    "fig4_training_samples.png": figure4_training_samples,
    "fig5_sample_means.png": figure5_sample_means,
    "fig6_std_vs_ngen.png": figure6_std_vs_ngen,
    "fig7_funnels.png": figure7_funnels,
}


def _save_figures(files: dict[str, Any], result: Any, folder: Path) -> list[Path]:
    """Draw each ``{file name: figure function}`` from ``result`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in files.items():
        path = folder / name
        draw(result).savefig(path, dpi=DPI)
        paths.append(path)
    return paths


def save_toy_figures(result: ToyResult, folder: Path) -> list[Path]:
    """Write Figures 4-7 as PNGs into ``folder`` and return their paths.

    Raises ValueError before writing anything when the study was run with
    ``figures=False`` (no data for Figures 4 and 7).
    """
    _require(result, "figure4")
    _require(result, "figure7")
    return _save_figures(FIGURE_FILES, result, folder)


# ------------------------------------------------------------ the information study

LOW_ESS = 30.0  # importance sampling below this effective sample size is untrusted
PARAMETER_TEX = {"mu": r"\mu", "sigma": r"\sigma", "rate": r"\lambda"}
PARAMETER_COLORS = (SURROGATE_COLOR, "tab:purple")
ESTIMATOR_COLOR = "tab:green"
I_GEN = r"$I_\mathrm{gen}$"
I_TRAIN = r"$I_\mathrm{train}$"


def _fisher_payload(result: FisherResult | dict[str, Any]) -> dict[str, Any]:
    """The ``fisher.json`` payload of a result (a payload is returned as it is)."""
    return result.to_json() if hasattr(result, "to_json") else result


def _plain_ticks(axis: Any) -> None:
    """Decade ticks on a log axis, labelled as plain numbers (10, 1,000, 100,000)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.10g}"))
    axis.set_minor_formatter(NullFormatter())


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


def _offsets(count: int) -> np.ndarray:
    """Factors that spread ``count`` series sharing an n_gen apart on a log axis."""
    return 10 ** (0.05 * (np.arange(count) - (count - 1) / 2))


def _information_grid(payload: dict[str, Any]) -> np.ndarray:
    sizes = [*payload["n_gen"], payload["config"]["n_train"]]
    return np.geomspace(min(sizes) / 1.5, max(sizes) * 3.0, 300)


def _linear_gaussian_fisher(sigma: float, n_train: int, n_gen: np.ndarray):
    """I_gen of the mean-only ideal Gaussian fit: n_gen n_train / (σ² (n_train +
    n_gen)) (``information.linear_gaussian_generated_fisher`` on a grid)."""
    return n_gen * n_train / (sigma**2 * (n_train + n_gen))


def _finish_information_axis(ax: Axes, payload: dict[str, Any], ylabel: str) -> None:
    n_gen = payload["n_gen"]
    ax.set_xscale("log")
    ax.set_xlim(min(n_gen) / 2.0, max(n_gen) * 2.0)
    _plain_ticks(ax.xaxis)
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
        curve = _linear_gaussian_fisher(config["sigma"], n_train, grid)
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
    shifts = _offsets(len(names) + 1)
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
        f"{inequality} within 3 std. errors at every {N_GEN}"
        if not failed
        else f"{inequality} violated (> 3 std. errors) at {N_GEN} = "
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
    return (
        0.5
        * shift**2
        * _linear_gaussian_fisher(config["sigma"], config["n_train"], grid)
    )


def _mi_curve(payload: dict[str, Any], grid: np.ndarray) -> np.ndarray | None:
    """I(μ; D_gen) = ½ log(1 + τ²/(σ²(1/n_train + 1/n_gen))) for the mean-only
    Gaussian fit, else None."""
    if all(value is None for value in payload["mi"]["gen_exact"]):
        return None
    config = payload["config"]
    variance = config["sigma"] ** 2 * (1 / config["n_train"] + 1 / grid)
    return 0.5 * np.log1p(payload["mi"]["prior_std"] ** 2 / variance)


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
    payload = _fisher_payload(result)
    config = payload["config"]
    figure = _new_figure(13, 6.4)
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


FISHER_FIGURE_FILES = {"fisher_vs_ngen.png": figure_fisher_vs_ngen}


def save_fisher_figures(
    result: FisherResult | dict[str, Any], folder: Path
) -> list[Path]:
    """Write the information study's figure (``fisher_vs_ngen.png``) into ``folder``
    and return its path in a list."""
    return _save_figures(FISHER_FIGURE_FILES, result, folder)


# --------------------------------------------------------------- the validation study


def _validate_payload(result: Any) -> dict[str, Any]:
    """The ``validate.json`` payload of a ValidateResult (a dict is returned as is)."""
    return result.to_json() if hasattr(result, "to_json") else result


def figure_validate_histograms(result: Any) -> Figure:
    """Generated-sample histograms with error bars at each N_required (one trained
    surrogate) against the true expectation, with the χ² p-value of each."""
    data = getattr(result, "figures", None)
    if data is None:
        raise ValueError(
            "the result has no histogram data: the study was run with figures=False"
        )
    sizes = data["n_required"]
    figure = _new_figure(3.2 * len(sizes), 3.6)
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
    figure.suptitle(
        "Generated histograms with the error bars of N_required events "
        "(one surrogate trained on n_train events)",
        fontsize=10,
    )
    return figure


def figure_validate_p_values(result: Any) -> Figure:
    """χ² p-value quantiles and rejection rate against N_required, surrogate vs
    truth, with the robustness horizon."""
    payload = _validate_payload(result)
    n = np.asarray(payload["n_required"], np.float64)
    alpha = payload["config"]["alpha"]
    figure = _new_figure(10, 4)
    left, right = figure.subplots(1, 2)
    for part, color, label in (
        (payload, SURROGATE_COLOR, "surrogate"),
        (payload["truth"], TRUTH_COLOR, "truth"),
    ):
        quantiles = part["p_value_quantiles"]
        left.plot(n, part["p_value_median"], "o-", color=color, label=f"{label} median")
        left.fill_between(
            n,
            quantiles["0.16"],
            quantiles["0.84"],
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
        v
        for part in (payload, payload["truth"])
        for v in part["p_value_quantiles"]["0.16"]
        if v > 0
    ]
    left.set_ylim(max(min(lows, default=1e-4) / 3, 1e-30), 1.5)
    left.set_ylabel("χ² p-value")
    right.set_ylabel(f"rejection rate P(p < {alpha})")
    right.set_ylim(-0.02, 1.02)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("$N_\\mathrm{required}$ (events in the tested sample)")
        ax.legend(fontsize=7)
    config = payload["config"]
    figure.suptitle(
        f"{config['surrogate_label']} trained on {config['n_train']} "
        f"{config['model_label']} events: robustness horizon",
        fontsize=10,
    )
    return figure


def figure_validate_amplification(result: Any) -> Figure:
    """Amplification N_equiv/n_train against the number of quantiles (one curve per
    N_gen) and against N_gen (one curve per number of quantiles)."""
    payload = _validate_payload(result)
    data = payload["amplification"]
    q = np.asarray(data["n_quantiles"], np.float64)
    n_gen = np.asarray(data["n_gen"], np.float64)
    factor = np.asarray(data["factor"], np.float64)
    error = np.asarray(data["factor_stderr"], np.float64)
    n_train = payload["config"]["n_train"]
    figure = _new_figure(10, 4)
    left, right = figure.subplots(1, 2)
    colors = _colors(max(len(n_gen), len(q)))
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


VALIDATE_FIGURE_FILES = {
    "validate_histograms.png": figure_validate_histograms,
    "validate_p_values.png": figure_validate_p_values,
    "validate_amplification.png": figure_validate_amplification,
}


def save_validate_figures(result: Any, folder: Path) -> list[Path]:
    """Write the validation study's three figures into ``folder`` (ValueError before
    writing anything when the study ran without figure data)."""
    if getattr(result, "figures", None) is None:
        raise ValueError(
            "the result has no histogram data: the study was run with figures=False"
        )
    return _save_figures(VALIDATE_FIGURE_FILES, result, folder)


# ------------------------------------------------------------ the ensemble study

ENSEMBLE_FIGURE_FILES = ("ensemble_std_vs_ngen.png",)
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
    payload = result.to_json() if hasattr(result, "to_json") else result
    config = payload["config"]
    n_gen = np.asarray(payload["n_gen"], np.float64)
    n_train = config["n_train"]
    target = config["target"]
    figure = _new_figure(8, 6)
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
    offsets = _offsets(3)
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
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel(f"number of events per member {N_GEN}")
    tex = PARAMETER_TEX.get(target, rf"\mathrm{{{target}}}")
    ax.set_ylabel(rf"std of the maximum-likelihood $\hat{{{tex}}}$ over the ensemble")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper right", fontsize=9)
    ax.set_title(
        f"{config['model']}: {config['surrogate']} vs ideal fit vs truth "
        f"({N_TRAIN} = {n_train}, K = {config['ensemble_size']} members)"
    )
    return figure


def save_ensemble_figures(result: Any, folder: Path) -> list[Path]:
    """Write the ensemble figure as a PNG into ``folder``; return its path."""
    return _save_figures(
        {ENSEMBLE_FIGURE_FILES[0]: figure_ensemble_std_vs_ngen}, result, folder
    )
