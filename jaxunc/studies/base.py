"""Studies as plug-ins: the ``Study`` record, options that carry their own validation
and help, typed results with a derived ``to_json``, and the shared ``runtime`` block.

A study is

* a configuration dataclass whose fields are declared with ``option`` or one of
  its kinds (``positive_int``, ``finite_float``, ``sizes``, ``choice``,
  ``seed_option``, ``precision_option``, ``model_name``, ``surrogate_name``).
  ``check_options(config)`` validates and normalises every field from its
  declaration (``InvalidArgument`` naming the field), and the command line builds
  one ``--flag`` per field from the same declaration: type, choices, default, help;
* a run function ``run(config, *, progress, engine_options) -> result`` (plus
  ``figures=`` when ``Study.figure_data``), the result a ``StudyResult`` dataclass
  (or anything with ``to_json()``);
* a ``Study`` record bundling them with a text table, a figure writer and the name of
  the JSON file, registered with ``jaxunc.studies.registry.register_study``.

Nothing here imports the command line or matplotlib.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.studies.options import PRECISIONS, check_precision, check_seed, finite

__all__ = [
    "K_SIGMA",
    "Option",
    "Study",
    "StudyResult",
    "align",
    "check_memory_needs",
    "check_options",
    "choice",
    "figures_from",
    "finite_float",
    "model_name",
    "option",
    "options_of",
    "parse_finite_float",
    "parse_positive_int",
    "parse_seed",
    "parse_sizes",
    "parse_theta",
    "positive_int",
    "precision_option",
    "runtime",
    "seed_option",
    "sizes",
    "surrogate_name",
    "theta_option",
    "to_jsonable",
]

K_SIGMA = 3.0
"""Every verdict of the studies (holds / consistent / validated) allows this many
standard errors."""

_NO_DEFAULT = dataclasses.MISSING

MAX_SIZE = 2**31 - 1
"""The largest count an option may give (events, bins, replicas): XLA indexes an
array's elements with 32-bit integers, so one array holds fewer than 2**31."""


# ------------------------------------------------------------------------ options


@dataclasses.dataclass(frozen=True)
class Option:
    """How one configuration field is checked, parsed and documented.

    Attributes:
      help: one line for ``--help``; ``{default}`` in it is replaced by the default
        (tuples as ``1,2,3``), else `` (default: ...)`` is appended.
      check: ``check(name, value) -> value``: the validated, normalised value, or
        ``InvalidArgument(name, ...)``; None: no per-field check.
      parse: ``parse(text) -> value`` for the command line (raises
        ``argparse.ArgumentTypeError``); None: the text itself.
      choices: the allowed values shown by argparse (``invalid choice`` otherwise).
      metavar: the placeholder in ``--help``.
      cli: whether the command line has a flag for the field.
      names: ``names() -> [str]``, the registered names the value may be (listed
        in ``--help`` when the parser is built), for open sets such as models.
    """

    help: str = ""
    check: Callable[[str, Any], Any] | None = None
    parse: Callable[[str], Any] | None = None
    choices: Sequence[Any] | None = None
    metavar: str | None = None
    cli: bool = True
    names: Callable[[], Sequence[str]] | None = None


def option(
    default: Any = _NO_DEFAULT,
    *,
    help: str = "",
    check: Callable[[str, Any], Any] | None = None,
    parse: Callable[[str], Any] | None = None,
    choices: Sequence[Any] | None = None,
    metavar: str | None = None,
    cli: bool = True,
    names: Callable[[], Sequence[str]] | None = None,
    default_factory: Callable[[], Any] | Any = _NO_DEFAULT,
) -> Any:
    """A dataclass field carrying an ``Option`` in its metadata (see ``Option``)."""
    metadata = {
        "option": Option(
            help=help,
            check=check,
            parse=parse,
            choices=None if choices is None else tuple(choices),
            metavar=metavar,
            cli=cli,
            names=names,
        )
    }
    if default_factory is not _NO_DEFAULT:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def options_of(config: Any) -> list[tuple[dataclasses.Field, Option]]:
    """The fields of a configuration dataclass (class or instance) that carry an
    ``Option``, in declaration order."""
    return [
        (field, field.metadata["option"])
        for field in dataclasses.fields(config)
        if "option" in field.metadata
    ]


def check_options(config: Any) -> None:
    """Validate and normalise every ``Option`` field of a frozen dataclass instance
    in place (``InvalidArgument`` naming the first bad field)."""
    for field, spec in options_of(config):
        if spec.check is not None:
            value = spec.check(field.name, getattr(config, field.name))
            object.__setattr__(config, field.name, value)


# ----------------------------------------------------- parsing command-line text


def _integral(text: str) -> int:
    """``text`` as an integer: integer digits, or a number with an integral value
    written as a float (``1e5``, ``2.5e3``, ``100.0``); ValueError otherwise."""
    try:
        return int(text)
    except ValueError:
        value = float(text)  # ValueError for text that is no number
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(text) from None
        return int(value)


def parse_positive_int(text: str) -> int:
    """A count from the command line: a positive integer, also written as an
    integral float (``--pseudo-experiments 1e5``)."""
    try:
        value = _integral(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer (e.g. 100000 or 1e5), got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def parse_finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def parse_sizes(text: str) -> tuple[int, ...]:
    """A comma-separated list of positive integers (integral floats such as ``1e4``
    allowed), in the order given (the option's check sorts or refuses)."""
    parts = [part.strip() for part in text.split(",")]
    wrong = f"expected a comma-separated list of positive integers, got {text!r}"
    if any(not part for part in parts):
        raise argparse.ArgumentTypeError(wrong)
    values = []
    for part in parts:
        try:
            value = _integral(part)
        except ValueError:
            raise argparse.ArgumentTypeError(wrong) from None
        if value <= 0:
            raise argparse.ArgumentTypeError(
                f"sizes must be positive integers, got {value}"
            )
        values.append(value)
    return tuple(values)


def parse_theta(text: str) -> dict[str, float]:
    """``NAME=VALUE,...`` (e.g. ``mu=1,sigma=2``) as ``{name: float}``; every name
    once, every value a number.  Names and values are checked against the model
    later (``ModelSpec.at``: unknown names, non-finite values and values outside
    the model's domain are refused with the model's parameters listed)."""
    wrong = f"expected NAME=VALUE,... with numbers (e.g. mu=1,sigma=2), got {text!r}"
    theta: dict[str, float] = {}
    for part in text.split(","):
        name, equals, value = (piece.strip() for piece in part.partition("="))
        if not equals or not name.isidentifier():
            raise argparse.ArgumentTypeError(wrong)
        if name in theta:
            raise argparse.ArgumentTypeError(f"{name!r} given twice in {text!r}")
        try:
            theta[name] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(wrong) from None
    return theta


def parse_seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [0, 2**63), got {text!r}"
        ) from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [0, 2**63), got {value}"
        )
    return value


# ------------------------------------------------------------------ option kinds


def positive_int(
    default: Any = _NO_DEFAULT,
    *,
    help: str = "",
    minimum: int = 1,
    maximum: int = MAX_SIZE,
    why: str = "",
    optional: bool = False,
    metavar: str | None = None,
    cli: bool = True,
) -> Any:
    """An integer in [``minimum``, ``maximum``] (default [1, 2**31 - 1]); ``why``
    ends the message of a value below ``minimum`` (e.g. "to measure a spread");
    ``optional``: None is allowed."""

    def check(name: str, value: Any) -> Any:
        if value is None and optional:
            return None
        value = check_positive_int(name, value, maximum=maximum)
        if value < minimum:
            raise InvalidArgument(
                name, f"must be >= {minimum}{' ' + why if why else ''} (got {value})"
            )
        return value

    return option(
        default,
        help=help,
        check=check,
        parse=parse_positive_int,
        metavar=metavar,
        cli=cli,
    )


def finite_float(
    default: Any = _NO_DEFAULT,
    *,
    help: str = "",
    positive: bool = False,
    open_unit: bool = False,
    metavar: str | None = None,
    cli: bool = True,
) -> Any:
    """A finite number; ``positive``: > 0; ``open_unit``: in (0, 1)."""

    def check(name: str, value: Any) -> float:
        value = finite(name, value)
        if positive and value <= 0:
            raise InvalidArgument(name, f"must be > 0 (got {value!r})")
        if open_unit and not 0 < value < 1:
            raise InvalidArgument(name, f"must be in (0, 1) (got {value!r})")
        return value

    return option(
        default,
        help=help,
        check=check,
        parse=parse_finite_float,
        metavar=metavar,
        cli=cli,
    )


def sizes(
    default: Any = _NO_DEFAULT,
    *,
    help: str = "",
    increasing: bool = False,
    minimum: int = 1,
    metavar: str = "N1,N2,...",
    cli: bool = True,
) -> Any:
    """A non-empty tuple of integers in [``minimum``, 2**31 - 1] (an int is a
    1-tuple), sorted with repeats dropped (each size is one independent
    measurement, so neither order nor repeats carry meaning); ``increasing``:
    refused unless given strictly increasing (for lists whose order the study
    reads, e.g. interpolates between neighbours)."""

    def check(name: str, value: Any) -> tuple[int, ...]:
        values = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
        if not values:
            raise InvalidArgument(name, "must list at least one size")
        values = tuple(check_positive_int(name, v, maximum=MAX_SIZE) for v in values)
        ordered = list(values) == sorted(set(values))
        if min(values) < minimum or (increasing and not ordered):
            wanted = "strictly increasing integers" if increasing else "integers"
            raise InvalidArgument(
                name,
                f"must be {wanted} >= {minimum} (got {list(values)})"
                + (
                    f"; give each size once, in increasing order (e.g. "
                    f"{','.join(str(v) for v in sorted(set(values)))})"
                    if increasing and not ordered
                    else ""
                ),
            )
        return tuple(sorted(set(values)))

    if not increasing:
        help = f"{help} (any order: sorted, repeats dropped)" if help else help

    return option(
        default,
        help=help,
        check=check,
        parse=parse_sizes,
        metavar=metavar,
        cli=cli,
    )


def choice(
    default: Any,
    choices: Sequence[Any],
    *,
    help: str = "",
    cast: Callable[[str], Any] | None = None,
    check: bool = True,
    cli: bool = True,
) -> Any:
    """One of ``choices``; ``cast`` converts the command-line text (e.g. ``int``);
    ``check=False``: the configuration checks the value itself (e.g. choices that
    depend on another field)."""
    allowed = tuple(choices)

    def check_choice(name: str, value: Any) -> Any:
        if value not in allowed:
            raise InvalidArgument(
                name, f"must be one of {list(allowed)} (got {value!r})"
            )
        return value

    return option(
        default,
        help=help,
        check=check_choice if check else None,
        parse=cast,
        choices=allowed,
        cli=cli,
    )


def _check_seed(name: str, value: Any) -> int:
    check_seed(value)
    return value


def _check_precision(name: str, value: Any) -> str:
    check_precision(value)
    return value


def _check_theta(name: str, value: Any) -> dict[str, Any] | None:
    """The shape of a θ override; its names and values are checked against the
    model by ``ModelSpec.at`` (which names the model's parameters)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise InvalidArgument(
            name, f"must be a mapping of parameter names to numbers (got {value!r})"
        )
    return dict(value)


THETA_HELP = (
    "true parameter values NAME=VALUE,... (e.g. mu=1,sigma=2); parameters not "
    "named keep the model's defaults, the same in every command (gaussian: mu=0, "
    "sigma=1 as in paper 000, Appendix A; exponential: rate=1; camelback: mu=0; "
    "spectrum: mass=125, width=2.5, signal_fraction=0.25, decay_length=20; a "
    "module:attribute model: its ModelSpec's theta)"
)
"""The help of ``--theta``."""


def theta_option(*, help: str = THETA_HELP) -> Any:
    """The true parameters as ``{name: float}`` overriding the model's defaults
    (``ModelSpec.at``, which checks names, finiteness and the model's domain);
    None: the defaults.  ``--theta mu=1,sigma=2``."""
    return option(
        None, help=help, check=_check_theta, parse=parse_theta, metavar="NAME=VALUE,..."
    )


def seed_option(default: int = 0, *, help: str = "root random seed") -> Any:
    """A root seed, an integer in [0, 2**63)."""
    return option(default, help=help, check=_check_seed, parse=parse_seed)


def precision_option(
    default: str = "float32", *, help: str = "floating-point precision"
) -> Any:
    """``float32`` or ``float64`` (float64 needs 64-bit JAX, which the command turns
    on for the command only)."""
    return option(default, help=help, check=_check_precision, choices=PRECISIONS)


def model_name(default: Any = "gaussian", *, help: str = "the true model") -> Any:
    """A registered model name or a ``module:attribute`` import path of a
    ``ModelSpec`` (or a factory returning one); resolved by
    ``registry.model_spec``.  The command line checks it while parsing."""
    from jaxunc.studies import registry

    return option(
        default,
        help=help,
        parse=registry.parse_model,
        metavar="NAME",
        names=lambda: sorted(registry.MODELS),
    )


def surrogate_name(default: Any = "ideal", *, help: str = "the surrogate") -> Any:
    """A registered surrogate name or a ``module:attribute`` import path of a
    surrogate object (or a factory ``factory(spec, **options)``); resolved by
    ``registry.make_surrogate``.  The command line checks it while parsing."""
    from jaxunc.studies import registry

    return option(
        default,
        help=help,
        parse=registry.parse_surrogate,
        metavar="NAME",
        names=lambda: sorted(registry.SURROGATES),
    )


# ------------------------------------------------------------------ typed results


def to_jsonable(value: Any) -> Any:
    """``value`` as JSON-ready Python: objects with ``to_json()`` by it,
    dataclasses as dicts of their fields, mappings with string keys, tuples and
    arrays as lists, NumPy/JAX scalars as Python numbers, NaN and ±inf as None."""
    if hasattr(value, "to_json") and not isinstance(value, type):
        return to_jsonable(value.to_json())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_jsonable(getattr(value, field.name))
            for field in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if hasattr(value, "__array__"):
        return to_jsonable(np.asarray(value).tolist())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@dataclasses.dataclass
class StudyResult:
    """Base of the studies' typed results: ``to_json()`` is derived from the fields,
    in declaration order, through ``to_jsonable``.

    Field metadata: ``{"json": False}`` keeps a field out of the JSON (figure data);
    ``{"omit_none": True}`` leaves it out while it is None.
    """

    def to_json(self) -> dict[str, Any]:
        payload = {}
        for field in dataclasses.fields(self):
            if not field.metadata.get("json", True):
                continue
            value = getattr(self, field.name)
            if value is None and field.metadata.get("omit_none", False):
                continue
            payload[field.name] = to_jsonable(value)
        return payload


FIGURE_DATA = {"json": False}
"""Field metadata of data kept only for the figures."""
OMIT_NONE = {"omit_none": True}
"""Field metadata of an optional JSON key."""


def runtime(
    seconds: float,
    runs: Sequence[Any] = (),
    *,
    precision: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``runtime`` block every study reports.

    Args:
      seconds: the study's duration as it defines it (the engine's seconds excluding
        compilation for the toy; wall-clock seconds for the others).
      runs: the ``RunStats`` of the study's engine runs; ``compile_seconds`` and
        ``events`` are summed over them, the backend is the first run's.
      precision: the study's floating-point precision.
      extra: further entries, after ``events``.
    """
    import jax

    block: dict[str, Any] = {"seconds": seconds}
    if runs:
        block["compile_seconds"] = sum(stats.compile_seconds for stats in runs)
        block["events"] = sum(stats.events for stats in runs)
    block.update(extra)
    first = runs[0] if runs else None
    block["backend"] = first.backend if first else jax.default_backend()
    block["device_count"] = first.device_count if first else jax.device_count()
    block["jax_version"] = first.jax_version if first else jax.__version__
    if precision is not None:
        block["precision"] = precision
    return block


def align(rows: Sequence[Sequence[str]]) -> list[str]:
    """Text table lines: the cells of ``rows`` right-aligned in columns, two spaces
    apart (the first row is the header)."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]


# ------------------------------------------------------------------ memory needs


def check_memory_needs(needs: Sequence[tuple[str, int, str]], budget: int) -> None:
    """``InvalidArgument(field)`` for the first ``(field, bytes, what)`` of ``needs``
    larger than ``budget`` bytes: an array that would not fit is refused before it
    is allocated, by the option that sizes it."""
    for field, size, what in needs:
        if size > budget:
            raise InvalidArgument(
                field,
                f"{what} would need about {size / 2**20:,.0f} MiB, more than the "
                f"memory budget of {budget / 2**20:,.0f} MiB (--memory-budget); "
                "give a smaller value",
            )


# ------------------------------------------------------------------- the record


def _single_run() -> dict[str, dict[str, Any]]:
    return {"": {}}


def figures_from(module: str) -> Callable[[Any, Path], list[Path]]:
    """A ``Study.figures``: ``save_figures(result, folder)`` of the plot module
    ``module`` (e.g. ``"jaxunc.plots.toy"``), imported only when figures are drawn,
    so the numerical core never imports matplotlib or the plots."""

    def figures(result: Any, folder: Path) -> list[Path]:
        return importlib.import_module(module).save_figures(result, folder)

    figures.__qualname__ = f"figures_from({module!r})"
    return figures


@dataclasses.dataclass(frozen=True)
class Study:
    """A study as the command line and ``reproduce`` see it.

    Attributes:
      name: the subcommand (``jaxunc NAME``) and the default output folder
        ``results/NAME``.
      help: one line for ``jaxunc --help``.
      description: the paragraph of ``jaxunc NAME --help``.
      config: the configuration dataclass; its ``option`` fields become the flags.
      run: ``run(config, *, progress, engine_options) -> result`` (and ``figures=``
        when ``figure_data``); the result has ``to_json()``.
      output: the JSON file written into the output folder.
      table: ``table(result) -> str``, the summary printed unless ``--quiet``.
      figures: ``figures(result, folder) -> [paths]``, unless ``--no-plots``.
      figure_data: ``run`` takes ``figures=``, whether to compute the figures' data.
      no_plots_help: the help of ``--no-plots``.
      reproduce: the runs of ``jaxunc reproduce``: ``{name: config overrides}``,
        each into ``OUT/<study>/<name>`` (``""``: ``OUT/<study>``); None: not run.
      reproduce_seconds: ``{name: seconds}``, how long each of those runs took on
        the reference machine (this project's 2-core CPU, compile cache cold),
        from which ``reproduce`` estimates the time left, scaled by how fast this
        machine ran the stages already done; runs not listed count as the mean of
        those that are (names of other runs are ignored).
      notices: warning categories printed as one line ``jaxunc: warning: ...``.
      comparison: ``comparison(payloads, folder) -> [(title, finding, numbers,
        figures)]``: what ``reproduce`` draws and says across this study's runs
        (their JSON payloads) after running them all, figures written into
        ``folder`` (``OUT/<study>``); None: nothing across runs.
      memory: ``memory(config) -> [(field, bytes, what)]``: the largest arrays of
        the study's stages outside the engine's chunks (bin grids, replica sets),
        checked against the memory budget before the run (``check_memory_needs``)
        and refused by the field (flag) that sizes them; None: nothing to check.
      cpu_device_per_core: the ``jaxunc`` command gives JAX one CPU device per
        core for this study (results do not depend on it): for runs made of many
        XLA executions that each keep one core busy, such as the trainings of small
        networks, which the engine then spreads over the devices (``validate
        --surrogate gan``: 248 → 158 s on 2 cores).  Off where XLA's own threads
        already fill the cores (``fisher``: 143 s on one device, 155 s on two).
    """

    name: str
    help: str
    description: str
    config: type
    run: Callable[..., Any]
    output: str
    table: Callable[[Any], str] | None = None
    figures: Callable[[Any, Path], list[Path]] | None = None
    figure_data: bool = False
    no_plots_help: str = "skip the figures"
    reproduce: Mapping[str, Mapping[str, Any]] | None = dataclasses.field(
        default_factory=_single_run
    )
    reproduce_seconds: Mapping[str, float] = dataclasses.field(default_factory=dict)
    notices: tuple[type[Warning], ...] = ()
    memory: Callable[[Any], Sequence[tuple[str, int, str]]] | None = None
    comparison: Callable[[Sequence[Mapping[str, Any]], Path], list[tuple]] | None = None
    cpu_device_per_core: bool = False

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").isalnum():
            raise InvalidArgument(
                "name", f"must be letters, digits and '-' (got {self.name!r})"
            )
        if not dataclasses.is_dataclass(self.config):
            raise InvalidArgument(
                "config", f"must be a dataclass type (got {self.config!r})"
            )
        for name in ("run", "table", "figures", "comparison"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise InvalidArgument(name, f"must be callable (got {value!r})")
        if not self.output.endswith(".json") or "/" in self.output:
            raise InvalidArgument(
                "output", f"must be a .json file name (got {self.output!r})"
            )
        for run, seconds in self.reproduce_seconds.items():
            if not (isinstance(seconds, int | float) and 0 < seconds < math.inf):
                raise InvalidArgument(
                    "reproduce_seconds",
                    f"must be seconds > 0 (got {seconds!r} for {run!r})",
                )
