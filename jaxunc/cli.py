"""The ``jaxunc`` command line, generated from the study registry.

``jaxunc STUDY`` for every registered study (``jaxunc.studies.registry.STUDIES``):
one flag per ``option`` field of the study's configuration, plus the run flags
(--out, --no-plots, --quiet) and the engine flags; ``jaxunc reproduce`` runs every
study's ``reproduce`` runs; ``jaxunc merge`` combines the partial results of --range
runs.

Every command runs with JAX's persistent compilation cache on
(``jaxunc.compile_cache``: ``$XDG_CACHE_HOME/jaxunc`` or ``~/.cache/jaxunc``;
``--no-compile-cache`` or ``JAXUNC_NO_COMPILE_CACHE=1`` turn it off;
``JAX_COMPILATION_CACHE_DIR`` is respected).

Exit codes (``jaxunc.errors``): 0 success; 2 bad input (an argument, a size that
does not fit the memory budget, a corrupt or foreign file given on the command line);
3 a failure of the environment (disk full, a file that cannot be written, a lost
peer process, SIGINT or SIGTERM); 1 an unexpected failure (a bug: ``--debug`` shows
its traceback).  Every failure prints one paragraph naming the argument or resource,
without a traceback unless ``--debug``.  Nothing is half-written: the output folder is
built in a staging folder next to ``--out`` (created before any work) and replaces
the previous folder whole (``jaxunc.outdir``).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import dataclasses
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxunc.compile_cache import compile_cache
from jaxunc.errors import (
    EXIT_BAD_INPUT,
    EXIT_ENVIRONMENT,
    EXIT_FAILURE,
    EnvironmentFailure,
    Interrupted,
    InvalidArgument,
)
from jaxunc.supervisor import supervise, wants_supervisor

__all__ = ["build_parser", "main"]

_SCRATCH_OUTPUT = contextvars.ContextVar("jaxunc_scratch_output", default=False)
"""True while a command runs only for its engine runs' side effects (a --range part,
or a process other than 0): its files go to a scratch folder that is discarded, and
the statistics of a partial range may be NaN."""

_ARGV = contextvars.ContextVar("jaxunc_argv", default=None)
"""The command line of the running ``main`` (the program's name first), for the
provenance of the JSON files it writes; None: ``sys.argv``."""


class _Parser(argparse.ArgumentParser):
    """argparse with errors that say which argument is wrong (exit code 2)."""

    def error(self, message: str) -> None:  # pragma: no cover - argparse calls exit
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


# ------------------------------------------------------------- the engine's flags


def _pseudo_range(text: str) -> tuple[int, int]:
    parts = text.split(":")
    try:
        start, stop = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected START:STOP (two integers, 0 <= START < STOP), got {text!r}"
        ) from None
    if not 0 <= start < stop:
        raise argparse.ArgumentTypeError(
            f"expected 0 <= START < STOP, got {start}:{stop}"
        )
    return start, stop


def _non_negative_float(text: str) -> float:
    from jaxunc.studies.base import parse_finite_float

    value = parse_finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _memory_size(text: str) -> int:
    from jaxunc.engine import parse_memory

    try:
        return parse_memory(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(error.detail) from None


def _style(text: str) -> str:
    from jaxunc.plots.style import check_style

    try:
        return check_style(text)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(error.detail) from None


def _add_style(parser: argparse.ArgumentParser) -> None:
    from jaxunc.plots.style import STYLES

    parser.add_argument(
        "--style",
        type=_style,
        default="default",
        metavar="{" + ",".join(STYLES) + "}",
        help="figure style: default, or hep (mplhep's ROOT style, needs the "
        "optional mplhep: pip install 'jaxunc[hep]') (default: %(default)s)",
    )


def _figure_style(args: argparse.Namespace) -> Any:
    """The context that draws figures in the style --style asked for."""
    from jaxunc.plots.style import figure_style

    return figure_style(getattr(args, "style", None) or "default")


def _address(text: str) -> str:
    """``HOST:PORT`` with a port in [1, 65535]."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT with a port in [1, 65535], got {text!r}"
        )
    return text


DEFAULT_PROCESS_TIMEOUT = 300
"""Seconds a multi-process run waits for its peers (to start, or between
heartbeats) before the survivors stop with exit code 3."""


def _add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """--chunk-size, --memory-budget, --checkpoint, --range and the multi-process
    flags: how the engine runs, never what it computes."""
    from jaxunc.studies.base import parse_positive_int

    parser.add_argument(
        "--chunk-size",
        type=parse_positive_int,
        default=None,
        metavar="C",
        help=(
            "pseudo-experiments per compiled call (default: about 4M events per "
            "chunk, less if --memory-budget asks for it); results do not depend on it"
        ),
    )
    parser.add_argument(
        "--memory-budget",
        type=_memory_size,
        default=None,
        metavar="SIZE",
        help=(
            "memory the engine may use, e.g. 2GiB or 500MB (default: half the "
            "device's memory, half the RAM on CPU); results do not depend on it"
        ),
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="DIR",
        help=(
            "save completed chunks' reductions under DIR and resume from them when "
            "the same command runs again (a different configuration is refused)"
        ),
    )
    parser.add_argument(
        "--checkpoint-interval",
        type=_non_negative_float,
        default=None,
        metavar="SECONDS",
        help="seconds between checkpoint writes (default: 10; 0: after every chunk)",
    )
    parser.add_argument(
        "--range",
        type=_pseudo_range,
        default=None,
        metavar="START:STOP",
        help=(
            "run only pseudo-experiments [START, STOP) of every engine run and "
            "write a partial result (OUT/partial.json and partial-*.npz, no "
            "summary or figures) for 'jaxunc merge'"
        ),
    )
    parser.add_argument(
        "--coordinator",
        type=_address,
        default=None,
        metavar="HOST:PORT",
        help=(
            "multi-process run with jax.distributed: the coordinator's address "
            "(with --num-processes and --process-id; process 0 writes the output)"
        ),
    )
    parser.add_argument(
        "--num-processes", type=parse_positive_int, default=None, metavar="N"
    )
    parser.add_argument("--process-id", type=int, default=None, metavar="I")
    parser.add_argument(
        "--process-timeout",
        type=parse_positive_int,
        default=DEFAULT_PROCESS_TIMEOUT,
        metavar="SECONDS",
        help=(
            "multi-process runs: seconds to wait for peers that never start or stop "
            "answering; the survivors then exit with code 3 and a checkpoint stays "
            "usable (default: %(default)s)"
        ),
    )


_ENGINE_OPTIONS = (
    ("checkpoint", "checkpoint"),
    ("checkpoint_interval", "checkpoint_interval"),
    ("pseudo_range", "range"),
    ("memory_budget", "memory_budget"),
    ("chunk_size", "chunk_size"),
    ("partials", "engine_partials"),
    ("merge", "engine_merge"),
)


def _engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The engine options of a study command (``engine_options=`` of the studies):
    --checkpoint, --range, --memory-budget, --chunk-size, and the partial-result
    sink or merge source that ``main`` and ``jaxunc merge`` attach."""
    options: dict[str, Any] = {}
    for name, attribute in _ENGINE_OPTIONS:
        value = getattr(args, attribute, None)
        if value is not None:
            options[name] = value
    if "checkpoint" in options:
        from jaxunc.checkpoint import check_checkpoint_folder

        check_checkpoint_folder(options["checkpoint"])
    return options


# ------------------------------------------------------ flags from the config fields


def _show(value: Any) -> str:
    """A default as the command line writes it (tuples as ``1,2,3``)."""
    if isinstance(value, (tuple, list)):
        return ",".join(str(item) for item in value)
    return str(value)


def _help(text: str, default: Any) -> str:
    """The option's help with its default, escaped for argparse."""
    if "{default}" in text:
        text = text.replace("{default}", _show(default))
    elif "(default" not in text:
        text = f"{text} (default: {_show(default)})"
    return text.replace("%", "%%")


def _add_config_arguments(parser: argparse.ArgumentParser, config: type) -> None:
    """One ``--flag`` per ``option`` field of ``config`` that has ``cli=True``."""
    from jaxunc.studies.base import options_of

    for field, spec in options_of(config):
        if not spec.cli:
            continue
        default = (
            field.default
            if field.default is not dataclasses.MISSING
            else field.default_factory()  # type: ignore[misc]
        )
        text = spec.help
        if spec.names is not None:
            text += f"; registered: {', '.join(spec.names())}"
        keywords: dict[str, Any] = {"default": default, "help": _help(text, default)}
        if spec.parse is not None:
            keywords["type"] = spec.parse
        if spec.choices is not None:
            keywords["choices"] = spec.choices
        if spec.metavar is not None:
            keywords["metavar"] = spec.metavar
        parser.add_argument("--" + field.name.replace("_", "-"), **keywords)


def _cli_fields(config: type) -> list[str]:
    from jaxunc.studies.base import options_of

    return [field.name for field, spec in options_of(config) if spec.cli]


def _add_study_parser(commands: Any, study: Any) -> None:
    parser = commands.add_parser(
        study.name, help=study.help, description=study.description
    )
    _add_config_arguments(parser, study.config)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results") / study.name,
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    parser.add_argument("--no-plots", action="store_true", help=study.no_plots_help)
    _add_style(parser)
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bar and no summary table"
    )
    _add_engine_arguments(parser)
    _add_debug(parser)


_DEBUG_HELP = "print the traceback of a failure (for bug reports)"


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """--debug and --no-compile-cache after the command too (only set when given:
    the top-level default stays)."""
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
    )
    parser.add_argument(
        "--no-compile-cache",
        action="store_true",
        default=argparse.SUPPRESS,
        help=_NO_COMPILE_CACHE_HELP,
    )


_NO_COMPILE_CACHE_HELP = (
    "do not use JAX's persistent compilation cache (default: on, in "
    "$XDG_CACHE_HOME/jaxunc or ~/.cache/jaxunc, or JAX_COMPILATION_CACHE_DIR when "
    "set; JAXUNC_NO_COMPILE_CACHE=1 turns it off too)"
)


def _study_list(text: str) -> tuple[str, ...]:
    from jaxunc.studies.registry import STUDIES

    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in _reproduced(STUDIES)]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list from "
            f"{','.join(_reproduced(STUDIES))}, got {text!r}"
        )
    return names


def _reproduced(studies: Mapping[str, Any]) -> list[str]:
    return [name for name, study in studies.items() if study.reproduce is not None]


def _version() -> str:
    """``jaxunc X.Y.Z`` and, in a git checkout, ``(commit abcdef123456)``."""
    import jaxunc
    from jaxunc.provenance import git_commit

    commit = git_commit()
    return f"jaxunc {jaxunc.__version__}" + (
        f" (commit {commit[:12]})" if commit else ""
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``jaxunc`` parser: a subcommand per registered study, ``reproduce`` and
    ``merge``."""
    import jaxunc.studies  # noqa: F401 (registers the built-in studies)
    from jaxunc.studies.registry import STUDIES

    parser = _Parser(
        prog="jaxunc",
        description=(
            "How much is a generated dataset worth? Pseudo-experiments of the "
            "chain θ → D_train → surrogate → D_gen → estimate."
        ),
    )
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    parser.add_argument(
        "--no-compile-cache", action="store_true", help=_NO_COMPILE_CACHE_HELP
    )
    parser.add_argument(
        "--version",
        action="version",
        version=_version(),
        help="print the version (and the git commit of a source checkout) and exit",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    for study in STUDIES.values():
        _add_study_parser(commands, study)
    reproduced = _reproduced(STUDIES)
    places = "; ".join(
        f"{name} into OUT/{name}"
        + ("/NAME" if set(STUDIES[name].reproduce) != {""} else "")
        for name in reproduced
    )
    minutes = round(
        sum(sum(STUDIES[name].reproduce_seconds.values()) for name in reproduced) / 60
    )
    reproduce = commands.add_parser(
        "reproduce",
        help="run every study with the paper's defaults into results/",
        description=(
            "Run the studies with their defaults and write results and figures "
            f"under --out: {places}; a report (REPORT.md and index.html, "
            "openable from disk) of every run's finding and figures in each folder "
            f"and in --out.  All of it took {minutes} minutes on a 2-core CPU with "
            "a cold compile cache (see the README); --only picks studies."
        ),
    )
    reproduce.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    reproduce.add_argument(
        "--quiet", action="store_true", help="no progress bar and no summary table"
    )
    reproduce.add_argument(
        "--only",
        type=_study_list,
        default=None,
        metavar="STUDY,...",
        help=f"run only these studies, from {','.join(reproduced)} (default: all)",
    )
    merge = commands.add_parser(
        "merge",
        help="combine partial results of disjoint --range runs into one result",
        description=(
            "Combine the partial results of runs of one command with disjoint "
            "--range START:STOP covering every pseudo-experiment into the result of "
            "one run (bit for bit the same moments and histograms). Refuses "
            "overlaps, gaps and partial results of different configurations."
        ),
    )
    merge.add_argument(
        "parts", nargs="+", type=Path, metavar="PART", help="--out folders of the parts"
    )
    merge.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output folder of the merged result",
    )
    merge.add_argument(
        "--quiet", action="store_true", help="no progress bar and no summary table"
    )
    for sub in (reproduce, merge):
        _add_style(sub)
        _add_debug(sub)
    return parser


# ------------------------------------------------------------------ running a study


def _check_out_root(out: Path) -> None:
    """Fail before any work if ``out`` (a folder of output folders) is a file."""
    if out.exists() and not out.is_dir():
        raise InvalidArgument("out", f"{str(out)!r} exists and is not a folder")


def _ours(folder: Path) -> bool:
    """Whether ``folder`` looks like an output folder this program wrote (a study's
    JSON or a partial result in it): only such folders are replaced."""
    from jaxunc.studies.registry import STUDIES

    names = {study.output for study in STUDIES.values()} | {"partial.json"}
    return any((folder / name).is_file() for name in names)


def _notice(message: str) -> None:
    print(f"jaxunc: warning: {message}", file=sys.stderr)


def _output(out: Path) -> contextlib.AbstractContextManager[Path]:
    """The staging folder replacing ``out`` whole on success (``jaxunc.outdir``)."""
    from jaxunc.outdir import output_folder

    return output_folder(out, _ours, _notice)


def _write_json(path: Path, result: Any) -> Any:
    """Write the result's JSON with the ``provenance`` block (``jaxunc.provenance``)
    of the command that made it; the payload written."""
    from jaxunc.provenance import provenance
    from jaxunc.studies.base import to_jsonable

    payload = to_jsonable(result)
    if isinstance(payload, dict):
        payload["provenance"] = provenance(_ARGV.get())
    text = json.dumps(payload, indent=2, allow_nan=False)
    path.write_text(text + "\n")
    return payload


def _write_report(
    folder: Path,
    title: str,
    runs: Sequence[tuple[str, str, Path, Any]],
    extra: Sequence[Any] = (),
) -> list[Path]:
    """``REPORT.md`` and ``index.html`` in ``folder`` (``jaxunc.report``) for the
    ``(study, run, run folder, payload)`` of ``runs``, then the ``extra`` sections
    (``reproduce``'s comparisons across runs)."""
    from jaxunc.provenance import provenance
    from jaxunc.report import section, write_report

    sections = [
        section(study, run, run_folder, folder, payload)
        for study, run, run_folder, payload in runs
    ]
    return write_report(folder, [*sections, *extra], title, provenance(_ARGV.get()))


def _comparisons(
    studies: Mapping[str, Any], root: Path, runs: Sequence[tuple[str, str, Path, Any]]
) -> list[Any]:
    """The report sections of every study's ``comparison`` across its runs in
    ``runs`` (figures into ``root/<study>``), for studies with two or more runs."""
    from jaxunc.report import comparison_section

    sections = []
    for name, study in studies.items():
        payloads = [payload for study_name, _, _, payload in runs if study_name == name]
        if study.comparison is None or len(payloads) < 2:
            continue
        folder = root / name
        for title, finding, numbers, figures in study.comparison(payloads, folder):
            sections.append(
                comparison_section(
                    f"{name} — {title}", folder, root, finding, numbers, figures
                )
            )
    return sections


def _report(caught: list[warnings.WarningMessage], notices: tuple) -> None:
    """Print the study's notices as one line each; re-emit every other warning."""
    for warning in caught:
        if notices and issubclass(warning.category, notices):
            print(f"jaxunc: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def _memory_budget(args: argparse.Namespace) -> int:
    """--memory-budget, or the engine's default (half the device's memory)."""
    budget = getattr(args, "memory_budget", None)
    if budget is not None:
        return budget
    import jax

    from jaxunc.engine.plan import default_memory_budget

    return default_memory_budget(jax.local_devices())


def _check_range(config: Any, args: argparse.Namespace) -> None:
    """Refuse a --range that starts beyond the study's pseudo-experiments (it would
    select nothing)."""
    pseudo_range = getattr(args, "range", None)
    counted = [
        (field, what, getattr(config, field, None))
        for field, what in (
            ("pseudo_experiments", "pseudo-experiments"),
            ("ensemble_size", "ensemble members"),
        )
        if isinstance(getattr(config, field, None), int)
    ]
    if pseudo_range is None or not counted:
        return
    field, what, total = counted[0]
    start, stop = pseudo_range
    if start >= total:
        flag = "--" + field.replace("_", "-")
        raise InvalidArgument(
            "range",
            f"{start}:{stop} selects none of the {total} {what} ({flag}); "
            f"START must be < {total}",
        )


def _run_study(
    study: Any,
    args: argparse.Namespace,
    out: Path,
    quiet: bool,
    figures: bool,
    overrides: Mapping[str, Any],
    config: Any = None,
    run: str = "",
) -> Any:
    """Build the study's configuration, check its sizes against the memory budget,
    run it, write its JSON (and, with ``figures``, its figures and report) into a
    staging folder that replaces ``out`` whole, print its table; the JSON payload
    written (None for a --range part)."""
    from jaxunc.studies.base import check_memory_needs

    if config is None:
        config = study.config(**overrides)
    _check_range(config, args)
    if study.memory is not None:
        check_memory_needs(study.memory(config), _memory_budget(args))
    options: dict[str, Any] = {
        "progress": not quiet,
        "engine_options": _engine_options(args),
    }
    if study.figure_data:
        options["figures"] = figures
    scratch = _SCRATCH_OUTPUT.get()
    written: list[Path] = []
    payload = None
    with _output(out) as staging:
        with warnings.catch_warnings(record=True) as caught:
            for category in study.notices:
                warnings.simplefilter("always", category)
            result = study.run(config, **options)
        if scratch:  # a part of a --range run: its statistics may be NaN
            (staging / study.output).write_text("{}\n")
        else:
            payload = _write_json(staging / study.output, result)
            if figures and study.figures is not None:
                with _figure_style(args):
                    written = study.figures(result, staging)
            if figures and isinstance(payload, dict):
                runs = [(study.name, run, staging, payload)]
                title = f"jaxunc {study.name}" + (f" — {run}" if run else "")
                written += _write_report(staging, title, runs)
    if not quiet:
        if study.table is not None:
            print(study.table(result))
        names = ", ".join(path.name for path in written)
        print(f"wrote {out / study.output}" + (f" and {names}" if names else ""))
    _report(caught, study.notices)
    return payload


def _study_command(args: argparse.Namespace, config: Any = None) -> None:
    from jaxunc.studies.registry import study

    chosen = study(args.command)
    overrides = {name: getattr(args, name) for name in _cli_fields(chosen.config)}
    _run_study(chosen, args, args.out, args.quiet, not args.no_plots, overrides, config)


def _clock(seconds: float) -> str:
    """Seconds as ``m:ss`` (``h:mm:ss`` from an hour on)."""
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    )


def remaining_seconds(expected: Sequence[float], done: int, elapsed: float) -> float:
    """Estimated seconds left after ``done`` of the stages whose reference durations
    are ``expected`` took ``elapsed`` seconds here: the remaining reference time,
    scaled by how much faster or slower than the reference the done stages ran
    (before any stage: the reference time itself)."""
    remaining = sum(expected[done:])
    reference_done = sum(expected[:done])
    if done == 0 or reference_done <= 0:
        return remaining
    return remaining * elapsed / reference_done


def _expected_seconds(studies: Mapping[str, Any], stages: Sequence[tuple]) -> list:
    """Each stage's reference duration (``Study.reproduce_seconds``); unlisted runs
    count as the mean of the listed ones (1 s if none is listed)."""
    listed = [studies[name].reproduce_seconds.get(run) for name, run, _ in stages]
    known = [seconds for seconds in listed if seconds is not None]
    fallback = sum(known) / len(known) if known else 1.0
    return [fallback if seconds is None else seconds for seconds in listed]


def _reproduce(args: argparse.Namespace) -> None:
    from jaxunc.studies.registry import STUDIES

    start = time.perf_counter()
    _check_out_root(args.out)
    only = args.only or _reproduced(STUDIES)
    stages = [
        (name, run, overrides)
        for name in _reproduced(STUDIES)
        if name in only
        for run, overrides in STUDIES[name].reproduce.items()
    ]
    expected = _expected_seconds(STUDIES, stages)
    runs = []
    for k, (name, run, overrides) in enumerate(stages, 1):
        out = args.out / name / run if run else args.out / name
        label = f"[{k}/{len(stages)}] {name}" + (f" {run}" if run else "")
        begun = time.perf_counter()
        if not args.quiet:
            left = remaining_seconds(expected, k - 1, begun - start)
            print(
                f"{label}: running into {out}/ (about {_clock(left)} left in all)",
                flush=True,
            )
        payload = _run_study(
            STUDIES[name], args, out, args.quiet, True, overrides, run=run
        )
        if payload is not None:
            runs.append((name, run, out, payload))
        if not args.quiet:
            now = time.perf_counter()
            left = remaining_seconds(expected, k, now - start)
            after = f"; about {_clock(left)} left" if k < len(stages) else ""
            print(
                f"{label}: done in {now - begun:.1f} s "
                f"({now - start:.1f} s since the start{after})",
                flush=True,
            )
    with _figure_style(args):
        comparisons = _comparisons(STUDIES, args.out, runs)
    written = (
        _write_report(args.out, "jaxunc reproduce", runs, comparisons) if runs else []
    )
    if not args.quiet:
        for section in comparisons:
            print(f"{section.title}: {section.finding}", flush=True)
        report = f"; report: {written[1]}" if written else ""
        print(
            f"reproduce: done in {time.perf_counter() - start:.1f} s; "
            f"results under {args.out}/{report}"
        )


# ------------------------------------------------------- --range parts and merge

_NOT_IDENTITY = frozenset(
    {
        "command",
        "out",
        "quiet",
        "debug",
        "no_compile_cache",
        "style",
        "range",
        "checkpoint",
        "checkpoint_interval",
        "memory_budget",
        "chunk_size",
        "coordinator",
        "num_processes",
        "process_id",
        "process_timeout",
        "engine_partials",
        "engine_merge",
    }
)


def _partial_info(args: argparse.Namespace) -> dict[str, Any]:
    """The command and the arguments that fix its numbers (stored with a part)."""
    arguments = {}
    for name, value in sorted(vars(args).items()):
        if name in _NOT_IDENTITY:
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        arguments[name] = value
    return {"command": args.command, "arguments": arguments}


def _command(args: argparse.Namespace) -> None:
    {"reproduce": _reproduce, "merge": _merge}.get(args.command, _study_command)(args)


def _run_for_side_effects(args: argparse.Namespace) -> None:
    """Run the command with its output in a discarded scratch folder."""
    token = _SCRATCH_OUTPUT.set(True)
    try:
        with tempfile.TemporaryDirectory(prefix="jaxunc-scratch-") as scratch:
            args.out = Path(scratch) / "out"
            args.quiet = True
            _command(args)
    finally:
        _SCRATCH_OUTPUT.reset(token)


def _covered(partials: Any, asked: tuple[int, int]) -> str:
    """The ranges the engine runs covered after clipping to their sizes."""
    states = partials.states.items()
    ranges = {name: (state.start, state.stop) for name, state in states}
    if len(set(ranges.values())) <= 1:
        start, stop = next(iter(ranges.values()), asked)
        clipped = "" if (start, stop) == asked else " (clipped to the run's size)"
        return f"[{start}, {stop}){clipped}"
    return "; ".join(f"[{a}, {b}) of {name!r}" for name, (a, b) in ranges.items())


def _run_range(args: argparse.Namespace, writer: bool) -> None:
    from jaxunc.checkpoint import PartialResults

    out, quiet = args.out, args.quiet
    partials = PartialResults(_partial_info(args))
    args.engine_partials = partials
    if not writer:
        _run_for_side_effects(args)
        return
    with _output(out) as staging:
        _run_for_side_effects(args)
        states = partials.states.values()
        if states and all(state.start == state.stop for state in states):
            start, stop = args.range
            raise InvalidArgument(
                "range",
                f"{start}:{stop} selects none of the pseudo-experiments of "
                f"{', '.join(repr(name) for name in partials.states)}",
            )
        partials.save(staging)
    if not quiet:
        print(
            "wrote the partial result of pseudo-experiments "
            f"{_covered(partials, args.range)} to {out}/partial.json; combine the "
            "parts with 'jaxunc merge PART... --out DIR'"
        )


def _merge_config(study: Any, arguments: Mapping[str, Any], path: Path) -> Any:
    """The study's configuration from the arguments stored in a part; a missing or
    bad one is named with the part's file and key."""
    where = f"{str(path / 'partial.json')!r}"
    missing = [name for name in _cli_fields(study.config) if name not in arguments]
    if missing or "no_plots" not in arguments:
        key = missing[0] if missing else "no_plots"
        raise InvalidArgument(
            "parts",
            f"{where} lacks the argument {key!r} (info.arguments); it was not written "
            "by 'jaxunc ... --range', or was edited",
        )
    try:
        return study.config(
            **{name: arguments[name] for name in _cli_fields(study.config)}
        )
    except (InvalidArgument, TypeError, ValueError) as error:
        key = getattr(error, "argument", None)
        detail = getattr(error, "detail", str(error))
        raise InvalidArgument(
            "parts",
            f"{where} holds a bad value"
            + (f" of the argument {key!r} (info.arguments)" if key else "")
            + f": {detail}",
        ) from None


def _merge(args: argparse.Namespace) -> None:
    from jaxunc.checkpoint import PartialResults, describe_mismatch
    from jaxunc.studies.registry import STUDIES

    parts = [PartialResults.load(path, "parts") for path in args.parts]
    first = parts[0].info
    for path, part in zip(args.parts[1:], parts[1:], strict=True):
        if part.info != first:
            differing = describe_mismatch(
                {"command": first.get("command"), **first.get("arguments", {})},
                {"command": part.info.get("command"), **part.info.get("arguments", {})},
            )
            raise InvalidArgument(
                "parts",
                f"{str(path)!r} was made by another command or other arguments than "
                f"{str(args.parts[0])!r} (differ in: {differing})",
            )
    command = first.get("command")
    if command not in STUDIES:
        raise InvalidArgument(
            "parts",
            f"unknown command {command!r} in {str(args.parts[0] / 'partial.json')!r}",
        )
    arguments = first.get("arguments", {})
    if not isinstance(arguments, dict):
        raise InvalidArgument(
            "parts", f"{str(args.parts[0] / 'partial.json')!r} is corrupt (arguments)"
        )
    arguments = dict(arguments)
    for name, value in arguments.items():  # JSON lists back to the parsed tuples
        if isinstance(value, list):
            arguments[name] = tuple(value)
    namespace = argparse.Namespace(
        **{name: None for name in _NOT_IDENTITY}, **arguments
    )
    namespace.command = command
    namespace.out = args.out
    namespace.quiet = args.quiet
    namespace.style = args.style
    namespace.engine_merge = parts
    with _precision_scope(namespace):
        config = _merge_config(STUDIES[command], arguments, args.parts[0])
        _study_command(namespace, config)


_POSITIONAL = {"parts": "PART"}


def _start_distributed(args: argparse.Namespace) -> bool:
    """``jax.distributed.initialize`` for --coordinator; whether this process writes
    the output (process 0, or a single-process run)."""
    flags = (args.coordinator, args.num_processes, args.process_id)
    if all(flag is None for flag in flags):
        return True
    if any(flag is None for flag in flags):
        raise InvalidArgument(
            "coordinator", "needs --coordinator, --num-processes and --process-id"
        )
    if not 0 <= args.process_id < args.num_processes:
        raise InvalidArgument(
            "process_id",
            f"must be in [0, {args.num_processes}) (got {args.process_id})",
        )
    import jax

    # CPU processes exchange their shares with Gloo (JAX's CPU collectives).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeout = args.process_timeout
    message = (
        f"jaxunc {args.command}: failed: --coordinator: the {args.num_processes}-"
        f"process run at {args.coordinator} did not start within --process-timeout "
        f"{timeout} s (a peer never arrived); start every process with the same "
        "--coordinator and --num-processes, or check the address. Nothing was "
        "written.\n"
    )

    def give_up() -> None:  # JAX aborts the process itself (SIGABRT) a bit later
        sys.stderr.write(message)
        sys.stderr.flush()
        os._exit(EXIT_ENVIRONMENT)

    from jaxunc.peers import jax_heartbeat_timeout

    watchdog = threading.Timer(timeout, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator_address=args.coordinator,
            num_processes=args.num_processes,
            process_id=args.process_id,
            initialization_timeout=timeout + 60,
            # JAX aborts the survivors (a C++ fatal log) when a peer misses its
            # heartbeats; the watchdog (_watch_peers) speaks first.
            heartbeat_timeout_seconds=jax_heartbeat_timeout(timeout),
        )
    except Exception as error:  # a missing peer reported as a runtime error
        raise EnvironmentFailure("coordinator", message.split(": ", 3)[-1]) from error
    finally:
        watchdog.cancel()
    _watch_peers(args)
    return jax.process_index() == 0


class _PeerState:
    """The peers of this process's multi-process run (``jaxunc.peers``): the
    watchdog; ``message`` once a peer is lost; ``running`` while the command runs
    (a lost peer then interrupts the main thread so that it cleans up), ``finished``
    once it has succeeded.  ``lock`` orders these transitions; ``reported`` makes
    the one paragraph print once."""

    watchdog: Any = None
    message: str | None = None
    running = False
    finished = False
    reported = False
    lock = threading.Lock()
    print_lock = threading.Lock()


_PEERS = _PeerState()

PEER_LOST_GRACE = 2.0
"""Seconds the main thread gets to unwind after a peer is lost (removing its
staging folder and temporary files) before the process exits on its own: the main
thread may be blocked in a collective with the dead peer."""


def _peer_lost_text(args: argparse.Namespace, sentence: str) -> str:
    return (
        f"jaxunc {args.command}: failed: --process-timeout: {sentence}; this process "
        "stops too (exit code 3). Nothing was written; a --checkpoint keeps every "
        "process's completed chunks: start every process again with the same "
        "command to resume.\n"
    )


def _report_peer_lost_once(text: str) -> None:
    with _PEERS.print_lock:
        if _PEERS.reported:
            return
        _PEERS.reported = True
        sys.stderr.write(text)
        sys.stderr.flush()


def _watch_peers(args: argparse.Namespace) -> None:
    """Start the watchdog of the peers (``jaxunc.peers.PeerWatchdog``) for
    ``--process-timeout`` seconds; a lost peer interrupts the main thread, and ends
    the process with exit code 3 if it has not ended ``PEER_LOST_GRACE`` s later."""
    import _thread

    try:
        from jax._src.distributed import global_state

        client = global_state.client
    except ImportError:  # another JAX: its own heartbeat stays the only guard
        return
    if client is None:
        return
    from jaxunc.peers import PeerWatchdog

    def lost(sentence: str) -> None:
        with _PEERS.lock:
            finished, interrupt = _PEERS.finished, _PEERS.running
            if not finished:
                _PEERS.message = _peer_lost_text(args, sentence)
        if finished:  # this process's part is done; JAX's shutdown would wait
            _report_peer_lost_once(  # for the lost peer, or abort
                f"jaxunc {args.command}: warning: {sentence} after this process "
                "finished its part; that process's own exit status tells whether "
                "the output was written.\n"
            )
            os._exit(0)
        if interrupt:
            _thread.interrupt_main()
            time.sleep(PEER_LOST_GRACE)
        from jaxunc.outdir import remove_own_staging

        remove_own_staging(args.out)
        _report_peer_lost_once(_PEERS.message)
        os._exit(EXIT_ENVIRONMENT)

    _PEERS.running = True
    _PEERS.watchdog = PeerWatchdog(
        client, args.process_id, args.num_processes, args.process_timeout, lost
    ).start()


def _end_peers(code: int) -> None:
    """Tell the peers how this process ended; after a failure or a lost peer, end
    the process now (JAX's shutdown would wait for every peer)."""
    watchdog = _PEERS.watchdog
    if watchdog is None:
        return
    with _PEERS.lock:
        _PEERS.running = False
        if _PEERS.message is not None:  # lost while finishing: report it
            code = EXIT_ENVIRONMENT
        elif code == 0:
            _PEERS.finished = True
    watchdog.done(code)
    if code == 0:
        return
    if _PEERS.message is not None:
        _report_peer_lost_once(_PEERS.message)
    time.sleep(2 * watchdog.interval)  # the peers read the code before we go
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _precision_scope(args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """64-bit JAX for the duration of a --precision float64 command only: the
    caller's global setting (e.g. of ``main`` called in-process) is left alone."""
    if getattr(args, "precision", "float32") != "float64":
        return contextlib.nullcontext()
    import jax

    return jax.enable_x64(True)


# ------------------------------------------------------------- the error boundary


def _raise_interrupted(number: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(number).name)


@contextlib.contextmanager
def _signals_raise():
    """SIGTERM raises ``Interrupted`` in the main thread for the command's duration
    (SIGINT already raises KeyboardInterrupt), so staging folders and temporary
    checkpoint files are removed on the way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _flag(argument: str) -> str:
    return _POSITIONAL.get(argument) or "--" + argument.replace("_", "-")


def _os_error_text(error: OSError) -> str:
    where = error.filename
    text = error.strerror or str(error)
    if error.errno in (28, 122):  # ENOSPC, EDQUOT
        text += "; free some space (or give another --out / --checkpoint) and rerun"
    return f"{str(where)!r}: {text}" if where else text


def _failure(args: Any, error: BaseException, debug: bool) -> int:
    """Print one paragraph for ``error`` (the traceback too with --debug); the exit
    code."""
    name = getattr(args, "command", None)
    prefix = f"jaxunc {name}" if name else "jaxunc"
    if debug:
        traceback.print_exception(error)
    if isinstance(error, InvalidArgument):
        print(
            f"{prefix}: error: argument {_flag(error.argument)}: {error.detail}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if isinstance(error, (Interrupted, KeyboardInterrupt)):
        signal_name = getattr(error, "signal_name", "SIGINT")
        print(
            f"{prefix}: interrupted by {signal_name}; nothing was written (a "
            "--checkpoint keeps the chunks completed so far: rerun the same command "
            "to resume)",
            file=sys.stderr,
        )
        return EXIT_ENVIRONMENT
    if isinstance(error, EnvironmentFailure):
        flag = _flag(error.resource) if error.resource.isidentifier() else ""
        print(
            f"{prefix}: failed: {flag + ': ' if flag else ''}{error.detail}",
            file=sys.stderr,
        )
        return EXIT_ENVIRONMENT
    if isinstance(error, OSError):
        print(
            f"{prefix}: failed: {_os_error_text(error)}; nothing was written",
            file=sys.stderr,
        )
        return EXIT_ENVIRONMENT
    if isinstance(error, MemoryError):
        print(
            f"{prefix}: failed: out of memory ({error}); give a smaller "
            "--memory-budget or --chunk-size, or smaller sizes",
            file=sys.stderr,
        )
        return EXIT_ENVIRONMENT
    print(
        f"{prefix}: internal error: {type(error).__name__}: {error}. Nothing was "
        "written. This is a bug: rerun with --debug for the traceback and report it.",
        file=sys.stderr,
    )
    return EXIT_FAILURE


def _one_cpu_device_per_core(args: argparse.Namespace) -> None:
    """For a study that asks for it (``Study.cpu_device_per_core``), give JAX one
    CPU device per core this process may run on, so the engine spreads each
    chunk's vectorised steps over the cores (a GAN training's XLA execution keeps
    one core busy).  Results do not depend on the device count (the engine's
    guarantee), and the devices share one compiled program.  Left alone when the
    user chose (``JAX_NUM_CPU_DEVICES``, ``jax.config``, or
    ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``), in a
    ``--coordinator`` run, and when JAX is already running in this process
    (``main`` called from Python code that has used JAX)."""
    import jax

    from jaxunc.studies.registry import STUDIES

    study = STUDIES.get(getattr(args, "command", None))
    if study is None or not study.cpu_device_per_core:
        return
    user_chose = jax.config.jax_num_cpu_devices >= 0 or (
        "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    )
    if user_chose or getattr(args, "coordinator", None) is not None:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    with contextlib.suppress(RuntimeError):  # JAX's backends already initialised
        jax.config.update("jax_num_cpu_devices", cores)


def _run(args: argparse.Namespace) -> None:
    _one_cpu_device_per_core(args)
    writer = _start_distributed(args) if hasattr(args, "coordinator") else True
    with _precision_scope(args):
        if getattr(args, "range", None) is not None:
            _run_range(args, writer)
        elif not writer:
            _run_for_side_effects(args)
        else:
            _command(args)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``jaxunc`` command: the exit code (see the module docstring)."""
    program = argv is None  # the program itself, not a call from Python code
    argv = list(sys.argv[1:] if argv is None else argv)
    if wants_supervisor(argv):
        return supervise(argv, main, fork=program)
    debug = "--debug" in argv
    args = None
    token = _ARGV.set(["jaxunc", *argv])
    with _signals_raise():
        try:
            args = build_parser().parse_args(argv)
            debug = getattr(args, "debug", False)
            disabled = getattr(args, "no_compile_cache", False)
            with compile_cache(disabled, warn=_notice):
                _run(args)
        except SystemExit:
            raise
        except BaseException as error:  # the one boundary: see _failure
            if _PEERS.message is not None:  # the main thread interrupted
                if debug:
                    traceback.print_exception(error)
                _report_peer_lost_once(_PEERS.message)
                _end_peers(EXIT_ENVIRONMENT)
                return EXIT_ENVIRONMENT
            if isinstance(error, InvalidArgument) and args is not None:
                _usage(args)
            code = _failure(args, error, debug)
            _end_peers(code)
            return code
        finally:
            _ARGV.reset(token)
    _end_peers(0)
    return 0


def _usage(args: argparse.Namespace) -> None:
    parser = build_parser()
    command = parser._subparsers._group_actions[0].choices[args.command]
    command.print_usage(sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
