"""The report written beside a command's results: ``REPORT.md`` and ``index.html``.

Every study command (with its figures) and ``jaxunc reproduce`` write the two files
into their output folder: one section per study run with one sentence saying what
was found, its key numbers with their standard errors, and every figure of the run
(relative links, so the page opens from disk in a browser with no server; the HTML
is static, with no script and no external resource).

Everything in the report is derived from the study's JSON (``finding(study,
payload)``), so a report can be rebuilt from a results folder alone
(``sections_under(root)``).  A study without a finding function here (a plug-in)
gets a generic sentence pointing to its JSON.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "REPORT_FILES",
    "Section",
    "finding",
    "format_error",
    "render_html",
    "render_markdown",
    "section",
    "write_report",
]

REPORT_FILES = ("REPORT.md", "index.html")
"""The files a report consists of, written into the output folder."""

K_SIGMA = 3.0
"""Standard errors allowed when the report says a measurement agrees with a
prediction (the studies' ``K_SIGMA``)."""


@dataclasses.dataclass(frozen=True)
class Section:
    """One study run in a report.

    Attributes:
      title: e.g. ``"fisher — gaussian-gan"``.
      folder: the run's folder relative to the report's folder (``""``: the same).
      output: the run's JSON file name.
      finding: one sentence saying what was found.
      numbers: ``(quantity, value)`` rows, values with their errors as text.
      figures: the run's figures, paths relative to the report's folder.
    """

    title: str
    folder: str
    output: str
    finding: str
    numbers: tuple[tuple[str, str], ...]
    figures: tuple[str, ...]


# ---------------------------------------------------------------- number formatting


def format_error(value: Any, error: Any = None, digits: int = 2) -> str:
    """``value ± error`` rounded to ``digits`` significant digits of the error
    (``0.1000 ± 0.0002``); the value alone (4 significant digits) without a finite
    error; ``"undetermined"`` for a missing value."""
    if not _number(value):
        return "undetermined"
    if not _number(error) or error <= 0:
        return f"{value:.4g}"
    exponent = math.floor(math.log10(error)) - (digits - 1)
    if -6 <= exponent < 0:
        places = -exponent
        return f"{value:.{places}f} ± {error:.{places}f}"
    if 0 <= exponent <= 6:
        scale = 10**exponent
        return (
            f"{round(value / scale) * scale:.0f} ± {round(error / scale) * scale:.0f}"
        )
    return f"{value:.{digits}e} ± {error:.1e}"


def _pm(payload: Any, *path: Any, at: int = 0) -> str:
    """``format_error`` of the value at ``path`` in ``payload`` and of its error,
    found at the same path with ``path[at]`` (a key) replaced by ``key_stderr``."""
    error_path = (*path[:at], f"{path[at]}_stderr", *path[at + 1 :])
    return format_error(_get(payload, *path), _get(payload, *error_path))


def _number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _sizes(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _get(payload: Mapping[str, Any], *path: Any, default: Any = None) -> Any:
    """``payload[a][b]...``, ``default`` where a key or index is missing."""
    value: Any = payload
    for key in path:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return default
    return value


# ---------------------------------------------------------- findings, per study


def _agrees(value: Any, error: Any, expected: Any) -> bool | None:
    if not (_number(value) and _number(error) and _number(expected)):
        return None
    return abs(value - expected) <= K_SIGMA * error


def _toy(payload: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    n_gen = payload.get("n_gen", [])
    surrogate = payload.get("surrogate", {})
    training = payload.get("training", {})
    numbers = [
        (
            f"std of the generated mean, n_gen = {n}",
            f"{_pm(surrogate, 'std', i)}"
            f" (predicted {format_error(_get(surrogate, 'predicted_std', i))})",
        )
        for i, n in enumerate(n_gen)
    ]
    floor = training.get("std_of_sample_mean")
    floor_err = training.get("std_of_sample_mean_stderr")
    n_train = training.get("n_train", _get(payload, "config", "n_train"))
    numbers.append(
        (
            f"training floor: std of the training mean, n_train = {n_train}",
            f"{format_error(floor, floor_err)} (predicted σ/√n_train = "
            f"{format_error(training.get('predicted_std'))})",
        )
    )
    agree = [
        _agrees(
            _get(surrogate, "std", i),
            _get(surrogate, "std_stderr", i),
            _get(surrogate, "predicted_std", i),
        )
        for i in range(len(n_gen))
    ]
    if not n_gen:
        return "No generated sizes were run.", numbers
    last = len(n_gen) - 1
    predicted_floor = training.get("predicted_std")
    above = [
        _number(_get(surrogate, "std", i))
        and _number(predicted_floor)
        and _get(surrogate, "std", i)
        + K_SIGMA * (_get(surrogate, "std_stderr", i) or 0.0)
        >= predicted_floor
        for i in range(len(n_gen))
    ]
    sentence = (
        f"The generated mean's std falls from {_pm(surrogate, 'std', 0)} at "
        f"n_gen = {n_gen[0]} to {_pm(surrogate, 'std', last)} at n_gen = "
        f"{n_gen[last]}"
        + (
            " and never below the training floor"
            if all(above)
            else "; it falls below the training floor (unexpected)"
        )
        + f" σ/√n_train = {format_error(predicted_floor)} (measured "
        f"{format_error(floor, floor_err)}); "
    )
    if all(a is True for a in agree):
        sentence += (
            f"it agrees with √(σ²/n_train + σ²/n_gen) within {K_SIGMA:g} standard "
            "errors at every n_gen."
        )
    else:
        off = [str(n) for n, a in zip(n_gen, agree, strict=True) if a is not True]
        sentence += (
            "it differs from √(σ²/n_train + σ²/n_gen) by more than "
            f"{K_SIGMA:g} standard errors (or is undetermined) at n_gen = "
            f"{', '.join(off)}."
        )
    return sentence, numbers


def _fisher(payload: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    n_gen = payload.get("n_gen", [])
    verdicts = payload.get("verdict", [])
    params = payload.get("parameters", [])
    name = params[0] if params else "θ"
    numbers = [
        (
            f"I_train[{name}, {name}] (whole training sample)",
            format_error(
                _get(payload, "I_train", 0, 0), _get(payload, "I_train_stderr", 0, 0)
            ),
        )
    ]
    for i, n in enumerate(n_gen):
        numbers.append(
            (
                f"I_gen/I_train lower bound (information fraction), n_gen = {n}",
                f"{_pm(payload, 'information_fraction', i)}"
                f" — {_get(payload, 'verdict', i, default='undetermined')}",
            )
        )
    for block, label in (("kl", "KL divergence"), ("mi", "mutual information")):
        part = payload.get(block) or {}
        if part.get("train") is not None:
            numbers.append(
                (
                    f"{label}, training sample (nats)",
                    format_error(part.get("train"), part.get("train_stderr")),
                )
            )
    if not n_gen:
        return "No generated sizes were run.", numbers
    if verdicts and all(v == "holds" for v in verdicts):
        sentence = (
            f"I_gen ≤ I_train holds at every n_gen ({_sizes(n_gen)}): the generated "
            "sample carries no more information about θ than the training sample."
        )
    else:
        groups: dict[str, list[str]] = {}
        for n, v in zip(n_gen, verdicts or ["undetermined"] * len(n_gen), strict=False):
            groups.setdefault(str(v), []).append(str(n))
        sentence = "I_gen ≤ I_train: " + "; ".join(
            f"{verdict} at n_gen = {', '.join(ns)}" for verdict, ns in groups.items()
        )
        sentence += "."
    return sentence, numbers


def _ensemble(payload: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    config = payload.get("config", {})
    n_gen = payload.get("n_gen", [])
    estimators = list((payload.get("estimate_std") or {}).keys())
    estimator = "mle" if "mle" in estimators else (estimators or [None])[0]
    surrogate = config.get("surrogate", "surrogate")
    target = config.get("target", "θ")
    floor = _get(payload, "training_floor", estimator, default={}) or {}
    numbers = []
    for i, n in enumerate(n_gen):
        numbers.append(
            (
                f"std of the {estimator} of {target}, n_gen = {n}",
                format_error(
                    _get(payload, "estimate_std", estimator, i),
                    _get(payload, "estimate_std_stderr", estimator, i),
                ),
            )
        )
        numbers.append(
            (
                f"equivalent true events N_eff, n_gen = {n}",
                format_error(
                    _get(payload, "n_eff", i), _get(payload, "n_eff_stderr", i)
                ),
            )
        )
    numbers.append(
        (
            f"training floor: std of the {estimator} on n_train = "
            f"{floor.get('n_train', config.get('n_train'))} true events",
            format_error(floor.get("std"), floor.get("std_stderr")),
        )
    )
    if not n_gen or estimator is None:
        return "No generated sizes were run.", numbers
    last = len(n_gen) - 1
    n_train = config.get("n_train")
    sentence = (
        f"With the {surrogate} surrogate, the {estimator} of {target} from "
        f"n_gen = {n_gen[last]} generated events has std "
        f"{_pm(payload, 'estimate_std', estimator, last)}"
        f" against {format_error(floor.get('std'), floor.get('std_stderr'))} from the "
        f"n_train = {n_train} training events: the generated sample is worth "
        f"N_eff = {_pm(payload, 'n_eff', last)}"
        " true events."
    )
    return sentence, numbers


def _validate(payload: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    config = payload.get("config", {})
    surrogate = config.get("surrogate_label", config.get("surrogate", "surrogate"))
    sizes = payload.get("n_required", [])
    numbers = [
        (
            f"rejection rate of the χ² test at α = {config.get('alpha')}, "
            f"N_required = {n}",
            f"{_pm(payload, 'rejection_rate', i)}"
            f" (truth: {_pm(payload, 'truth', 'rejection_rate', i, at=1)})",
        )
        for i, n in enumerate(sizes)
    ]
    status = payload.get("horizon_status")
    horizon = format_error(payload.get("horizon"), payload.get("horizon_stderr"))
    numbers.append(("robustness horizon (events)", horizon))
    if status == "found":
        sentence = (
            f"The {surrogate} robustness horizon is {horizon} events: beyond it the "
            "χ² test rejects the generated sample in most pseudo-experiments."
        )
    elif status == "below_grid":
        sentence = (
            f"The {surrogate} sample is rejected already at the smallest N_required = "
            f"{sizes[0] if sizes else '?'} (horizon below the grid)."
        )
    elif status == "beyond_grid":
        sentence = (
            f"The {surrogate} sample passes the χ² test up to N_required = "
            f"{sizes[-1] if sizes else '?'} (horizon beyond the grid)."
        )
    else:
        sentence = f"The {surrogate} robustness horizon is undetermined."
    protocol = payload.get("protocol")
    if isinstance(protocol, Mapping) and protocol.get("verdict"):
        sentence += f" Error-prediction protocol: {protocol['verdict']}."
    return sentence, numbers


FINDINGS: dict[str, Callable[[Mapping[str, Any]], tuple[str, list]]] = {
    "toy": _toy,
    "fisher": _fisher,
    "ensemble": _ensemble,
    "validate": _validate,
}
"""The finding of each built-in study: ``payload -> (sentence, numbers)``."""


def finding(study: str, payload: Mapping[str, Any]) -> tuple[str, list]:
    """One sentence saying what the run of ``study`` found and its key numbers
    (``[(quantity, "value ± error")]``), from its JSON ``payload``."""
    function = FINDINGS.get(study)
    if function is None:
        return ("No summary sentence for this study; see its JSON.", [])
    try:
        return function(payload)
    except (TypeError, ValueError, AttributeError) as error:  # a foreign payload
        return (f"The JSON could not be summarised ({error}).", [])


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to the report's folder ``root``, as a link (``""``: the
    folder itself)."""
    relative = os.path.relpath(path, root)
    return "" if relative == "." else Path(relative).as_posix()


def section(
    study: str, run: str, folder: Path, root: Path, payload: Mapping[str, Any]
) -> Section:
    """The report section of one run of ``study`` whose output folder is
    ``folder`` (inside ``root``, the report's folder), from its JSON ``payload``;
    its figures are the PNG files in ``folder``."""
    sentence, numbers = finding(study, payload)
    output = next(
        (p.name for p in sorted(folder.glob("*.json")) if p.name != "partial.json"),
        "",
    )
    return Section(
        title=f"{study} — {run}" if run else study,
        folder=_relative(folder, root),
        output=output,
        finding=sentence,
        numbers=tuple((str(a), str(b)) for a, b in numbers),
        figures=tuple(_relative(path, root) for path in sorted(folder.glob("*.png"))),
    )


def comparison_section(
    title: str,
    folder: Path,
    root: Path,
    finding: str,
    numbers: Sequence[tuple[Any, Any]],
    figures: Sequence[Path],
) -> Section:
    """The report section of a comparison across runs (``Study.comparison``):
    its ``figures`` written into ``folder`` (inside ``root``), no JSON of its own."""
    return Section(
        title=title,
        folder=_relative(folder, root),
        output="",
        finding=finding,
        numbers=tuple((str(a), str(b)) for a, b in numbers),
        figures=tuple(_relative(path, root) for path in figures),
    )


# ------------------------------------------------------------------------ rendering


def _anchor(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def render_markdown(
    sections: Sequence[Section], title: str, provenance: Mapping[str, Any]
) -> str:
    """``REPORT.md``: the findings first, then one section per run."""
    lines = [f"# {title}", ""]
    lines += _provenance_lines(provenance)
    lines += ["", "## Findings", ""]
    lines += [f"- **{s.title}**: {s.finding}" for s in sections]
    for s in sections:
        lines += ["", f"## {s.title}", "", s.finding, ""]
        json_path = f"{s.folder}/{s.output}" if s.folder else s.output
        if s.output:
            lines += [f"Results: [{json_path}]({json_path})", ""]
        if s.numbers:
            lines += ["| quantity | value |", "|---|---|"]
            lines += [
                f"| {a.replace('|', '/')} | {b.replace('|', '/')} |"
                for a, b in s.numbers
            ]
            lines.append("")
        for figure in s.figures:
            lines += [f"![{figure}]({figure})", ""]
    return "\n".join(lines).rstrip() + "\n"


_SHOWN = ("command_line", "jaxunc_version", "git_commit", "utc_time", "devices")
"""The provenance entries shown at the top of a report."""


def _provenance_items(provenance: Mapping[str, Any]) -> list[tuple[str, str]]:
    items = []
    for key in _SHOWN:
        if key in provenance:
            value = provenance[key]
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            items.append((key.replace("_", " "), str(value)))
    return items


def _provenance_lines(provenance: Mapping[str, Any]) -> list[str]:
    return [f"- {key}: `{value}`" for key, value in _provenance_items(provenance)]


_STYLE = (
    "body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em;"
    "line-height:1.4}table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
    "img{max-width:100%;border:1px solid #eee;margin:.5em 0}"
    "p.finding{font-size:1.1em;background:#f4f7fb;padding:.5em;border-left:4px "
    "solid #4a7ab5}code{background:#f4f4f4}"
)


def render_html(
    sections: Sequence[Section], title: str, provenance: Mapping[str, Any]
) -> str:
    """``index.html``: the same content as ``render_markdown``, static (no script,
    no external resource), figures by relative links."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<ul class='provenance'>",
    ]
    for key, value in _provenance_items(provenance):
        parts.append(f"<li>{e(key)}: <code>{e(value)}</code></li>")
    parts += ["</ul>", "<h2>Findings</h2>", "<ul class='findings'>"]
    for s in sections:
        parts.append(
            f"<li><a href='#{_anchor(s.title)}'><b>{e(s.title)}</b></a>: "
            f"{e(s.finding)}</li>"
        )
    parts.append("</ul>")
    for s in sections:
        parts.append(f"<section id='{_anchor(s.title)}'><h2>{e(s.title)}</h2>")
        parts.append(f"<p class='finding'>{e(s.finding)}</p>")
        if s.output:
            path = f"{s.folder}/{s.output}" if s.folder else s.output
            parts.append(f"<p>Results: <a href='{e(path)}'>{e(path)}</a></p>")
        if s.numbers:
            parts.append("<table><tr><th>quantity</th><th>value</th></tr>")
            parts += [f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>" for a, b in s.numbers]
            parts.append("</table>")
        for figure in s.figures:
            parts.append(
                f"<figure><img src='{e(figure)}' alt='{e(figure)}'>"
                f"<figcaption>{e(figure)}</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    folder: Path,
    sections: Sequence[Section],
    title: str,
    provenance: Mapping[str, Any],
) -> list[Path]:
    """Write ``REPORT.md`` and ``index.html`` into ``folder``; each file is written
    to a temporary name and renamed, so a reader never sees half a page."""
    written = []
    texts = (
        render_markdown(sections, title, provenance),
        render_html(sections, title, provenance),
    )
    for name, text in zip(REPORT_FILES, texts, strict=True):
        path = folder / name
        temporary = folder / f".{name}.tmp-{os.getpid()}"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        written.append(path)
    return written
