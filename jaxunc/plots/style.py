"""What every figure shares: colours, labels, a pyplot-free figure on the Agg canvas,
log-axis ticks, histogram normalisation, and writing figures to files.

matplotlib is imported inside the functions only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
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
    "STYLES",
    "SURROGATE_COLOR",
    "TRUTH_COLOR",
    "as_json",
    "check_style",
    "density",
    "estimate_tex",
    "figure_style",
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


STYLES = ("default", "hep")
"""Figure styles: ``"default"`` (matplotlib's, with jaxunc's colours) and ``"hep"``
(mplhep's ROOT style, for talks in particle physics; needs the optional ``mplhep``:
``pip install 'jaxunc[hep]'``)."""

HEP_SIZE_SCALE = 0.5
"""mplhep sizes its fonts and ticks for one 10-inch panel (font 26 pt); jaxunc's
figures put two or three panels in 8-13 inches, so the ``"hep"`` style takes every
absolute size at this fraction (font 13 pt)."""

_HEP_SIZES = (
    "font.size",
    "axes.linewidth",
    "xtick.major.size",
    "xtick.minor.size",
    "ytick.major.size",
    "ytick.minor.size",
    "xtick.major.pad",
)


def check_style(name: Any) -> str:
    """``name`` if it is a style in ``STYLES`` that can be drawn here; otherwise
    ``InvalidArgument("style", ...)`` naming the allowed values, or saying that
    ``"hep"`` needs mplhep when it is not installed."""
    from jaxunc.errors import InvalidArgument

    if name not in STYLES:
        raise InvalidArgument(
            "style", f"must be one of {', '.join(STYLES)} (got {name!r})"
        )
    if name == "hep":
        try:
            import mplhep  # noqa: F401
        except ImportError:
            raise InvalidArgument(
                "style",
                "'hep' needs the optional package mplhep, which is not installed "
                "(pip install 'jaxunc[hep]'); 'default' needs nothing",
            ) from None
    return name


def _hep_parameters() -> dict[str, Any]:
    """mplhep's ROOT style with its absolute sizes scaled by ``HEP_SIZE_SCALE``."""
    import mplhep

    parameters = dict(mplhep.style.ROOT)
    for name in _HEP_SIZES:
        if isinstance(parameters.get(name), int | float):
            parameters[name] = parameters[name] * HEP_SIZE_SCALE
    parameters.pop("figure.figsize", None)  # every jaxunc figure sets its own
    # mplhep's math font (TeX Gyre Heros) lacks the radical glyphs of \sqrt, which
    # jaxunc's labels use: math in STIX sans instead, close to the text's Helvetica.
    for name in [name for name in parameters if name.startswith("mathtext.")]:
        del parameters[name]
    parameters["mathtext.fontset"] = "stixsans"
    return parameters


@contextlib.contextmanager
def figure_style(name: str = "default") -> Iterator[None]:
    """Draw and save the figures made inside this block in style ``name`` (one of
    ``STYLES``); the style applies to figures created *and saved* in the block,
    through matplotlib's ``rc_context``, and nothing outside it changes::

        with jaxunc.plots.style.figure_style("hep"):
            jaxunc.plots.save_toy_figures(result, "figures/")
    """
    check_style(name)
    if name == "default":
        yield
        return
    from matplotlib import rc_context

    with rc_context(_hep_parameters()):
        yield


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
