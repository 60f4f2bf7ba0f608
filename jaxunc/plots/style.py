"""What every figure shares: colours, labels, a pyplot-free figure on the Agg canvas,
log-axis ticks, histogram normalisation, and writing figures to files.

matplotlib is imported inside the functions only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "BOX",
    "DPI",
    "N_GEN",
    "N_GEN_TEX",
    "N_TRAIN",
    "N_TRAIN_TEX",
    "PARAMETER_TEX",
    "SURROGATE_COLOR",
    "TRUTH_COLOR",
    "as_json",
    "density",
    "estimate_tex",
    "model_words",
    "new_figure",
    "palette",
    "plain_log_ticks",
    "plain_ticks",
    "save",
    "spread_factors",
    "surrogate_words",
]

DPI = 140
TRUTH_COLOR = "tab:orange"  # Figure 6 of the paper: truth orange, surrogate blue
SURROGATE_COLOR = "tab:blue"
N_GEN_TEX = r"n_\mathrm{gen}"
N_TRAIN_TEX = r"n_\mathrm{train}"
N_GEN = f"${N_GEN_TEX}$"
N_TRAIN = f"${N_TRAIN_TEX}$"
BOX = {"boxstyle": "round", "fc": "white", "ec": "0.8"}


def new_figure(width: float, height: float) -> Figure:
    """A pyplot-free figure on the Agg canvas, with constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def density(counts: Any, edges: Any) -> np.ndarray:
    """Histogram counts normalised to a probability density (area 1)."""
    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    return counts / (max(total, 1.0) * np.diff(np.asarray(edges, np.float64)))


def plain_log_ticks(axis: Any, up_to: float | None = None) -> None:
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


def palette(count: int) -> list:
    """``count`` distinct colours (tab10, cycling)."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    return [palette[i % len(palette)] for i in range(count)]


def save(
    files: Mapping[str, Callable[[Any], Figure]], result: Any, folder: Path
) -> list[Path]:
    """Draw each ``{file name: figure function}`` from ``result`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in files.items():
        path = folder / name
        draw(result).savefig(path, dpi=DPI)
        paths.append(path)
    return paths


PARAMETER_TEX = {"mu": r"\mu", "sigma": r"\sigma", "rate": r"\lambda"}

MODEL_WORDS = {
    "gaussian": "Gaussian",
    "camelback": "camel back (two Gaussian bumps)",
    "exponential": "exponential",
    "spectrum": "falling spectrum",
}
"""Registered models as figure titles name them."""

SURROGATE_WORDS = {
    "ideal": "ideal fit (true model family)",
    "gan": "GAN",
    "flow": "normalising flow",
    "kde": "kernel density estimate",
    "bootstrap": "bootstrap resampling",
}
"""Registered surrogates as figure titles name them."""


def model_words(name: Any) -> str:
    """A model's name in physics words (``"Gaussian"``); unknown names as given."""
    return MODEL_WORDS.get(str(name), str(name))


def surrogate_words(name: Any) -> str:
    """A surrogate's name in physics words (``"GAN"``); unknown names as given."""
    return SURROGATE_WORDS.get(str(name), str(name))


def estimate_tex(name: str) -> str:
    r"""Mathtext of the estimate of parameter ``name``: ``\hat\mu`` for a symbol,
    ``\widehat{\mathrm{scale}}`` for a word (a hat over one letter would read
    "scâle")."""
    tex = PARAMETER_TEX.get(name)
    if tex is not None:
        return rf"\hat{{{tex}}}"
    if len(name) == 1:
        return rf"\hat{{{name}}}"
    return rf"\widehat{{\mathrm{{{name}}}}}"


def plain_ticks(axis: Any) -> None:
    """Decade ticks on a log axis, labelled as plain numbers (10, 1,000, 100,000)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.10g}"))
    axis.set_minor_formatter(NullFormatter())


def spread_factors(count: int) -> np.ndarray:
    """Factors that spread ``count`` series sharing an n_gen apart on a log axis."""
    return 10 ** (0.05 * (np.arange(count) - (count - 1) / 2))


def as_json(result: Any) -> dict[str, Any]:
    """The JSON view of a result (``result.to_json()``); a dict (a JSON file read
    back) is returned as it is."""
    return result.to_json() if hasattr(result, "to_json") else result
