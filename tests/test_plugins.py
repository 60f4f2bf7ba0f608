"""Studies, models and surrogates as plug-ins: a study, a model (a shifted
exponential) and a surrogate defined only in this module run through the command
line, (a) by ``module:attribute`` import path and (b) after registration; and the
pieces of ``jaxunc.studies.base`` (options, typed results, runtime) each fail on a
wrong input.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc import cli
from jaxunc.engine import run_pseudo_experiments
from jaxunc.errors import InvalidArgument
from jaxunc.estimators import Estimate
from jaxunc.report import REPORT_FILES
from jaxunc.studies import base, registry
from jaxunc.studies.base import (
    Study,
    StudyResult,
    check_options,
    choice,
    finite_float,
    model_name,
    positive_int,
    precision_option,
    seed_option,
    sizes,
)
from jaxunc.studies.registry import ModelSpec

HERE = __name__  # the import name of this module, for module:attribute paths

# ------------------------------------------------ the user's model and surrogate


@dataclasses.dataclass(frozen=True)
class ShiftedExponential:
    """x = loc + Exp(rate): a model jaxunc does not ship."""

    def sample(self, key: jax.Array, theta: Any, n: int) -> jax.Array:
        rate = jnp.asarray(theta["rate"])
        return theta["loc"] + jax.random.exponential(key, (n,), rate.dtype) / rate

    def log_prob(self, x: jax.Array, theta: Any) -> jax.Array:
        z = x - theta["loc"]
        return jnp.where(z >= 0, jnp.log(theta["rate"]) - theta["rate"] * z, -jnp.inf)

    def cdf(self, x: jax.Array, theta: Any) -> jax.Array:
        z = jnp.maximum(x - theta["loc"], 0)
        return -jnp.expm1(-theta["rate"] * z)

    def quantile(self, u: jax.Array, theta: Any) -> jax.Array:
        return theta["loc"] - jnp.log1p(-u) / theta["rate"]


def shifted_exponential() -> ModelSpec:
    """The user's model at its parameter point: a ``ModelSpec`` factory."""
    return ModelSpec(
        "shifted_exponential",
        ShiftedExponential(),
        {"loc": 1.0, "rate": 2.0},
        ("rate",),
        "rate",
        "exponential with rate 2 shifted to start at 1",
    )


@dataclasses.dataclass(frozen=True)
class MomentFit:
    """A surrogate jaxunc does not ship: a shifted exponential with the training
    sample's minimum and mean."""

    min_train = 2

    def fit(self, key: jax.Array, data: jax.Array) -> dict[str, jax.Array]:
        loc = jnp.min(data)
        return {"loc": loc, "rate": 1.0 / (jnp.mean(data) - loc)}

    def sample(self, key: jax.Array, params: Any, n: int) -> jax.Array:
        draw = jax.random.exponential(key, (n,), params["rate"].dtype)
        return params["loc"] + draw / params["rate"]


moment_fit = MomentFit()
"""A surrogate object, for ``--surrogate test_plugins:moment_fit``."""


def moment_fit_factory(spec: ModelSpec, **options: Any) -> MomentFit:
    """A surrogate factory, as ``register_surrogate`` takes it."""
    return MomentFit(**options)


not_a_model = 42

# ------------------------------------------------------------------ the user's study


@dataclasses.dataclass(frozen=True)
class SpreadConfig:
    """The spread of the sample mean of ``n_events`` model events."""

    model: str = model_name("gaussian")
    n_events: int = positive_int(50, metavar="N", help="events per sample")
    pseudo_experiments: int = positive_int(
        64, minimum=2, why="to measure a spread", help="pseudo-experiments"
    )
    seed: int = seed_option()
    precision: str = precision_option()

    def __post_init__(self) -> None:
        check_options(self)


@dataclasses.dataclass
class SpreadResult(StudyResult):
    config: SpreadConfig
    mean: float
    std: float
    std_stderr: float
    runtime: dict[str, Any]


def run_spread(
    config: SpreadConfig, *, progress: bool = False, engine_options: Any = None
) -> SpreadResult:
    start = time.perf_counter()
    spec = registry.model_spec(config.model)
    theta = {k: np.asarray(v, config.precision) for k, v in spec.theta.items()}

    def mean_of_sample(key):
        x = spec.model.sample(key, theta, config.n_events)
        return {"mean": Estimate(jnp.mean(x)[None], jnp.bool_(True))}

    run = run_pseudo_experiments(
        mean_of_sample,
        jax.random.key(config.seed),
        config.pseudo_experiments,
        progress=progress,
        description="spread",
        **dict(engine_options or {}),
    )
    out = run.outputs["mean"]
    return SpreadResult(
        config,
        float(out["mean"][0]),
        float(out["std"][0]),
        float(out["std_stderr"][0]),
        base.runtime(time.perf_counter() - start, [run.stats]),
    )


def spread_table(result: SpreadResult) -> str:
    return "\n".join(
        base.align([("mean", "std"), (f"{result.mean:.4f}", f"{result.std:.4f}")])
    )


SPREAD = Study(
    name="spread",
    help="spread of the sample mean",
    description="The spread of the sample mean of a model's events.",
    config=SpreadConfig,
    run=run_spread,
    output="spread.json",
    table=spread_table,
)

# ------------------------------------------------------------------------- helpers


def run_cli(*argv: str) -> int:
    try:
        return cli.main(list(argv))
    except SystemExit as stop:  # argparse errors exit
        return int(stop.code)


VALIDATE_SMALL = [
    "--n-train",
    "20",
    "--bins",
    "5",
    "--n-required",
    "100,1000",
    "--pseudo-experiments",
    "8",
    "--n-quantiles",
    "5,10",
    "--replicas",
    "4",
    "--protocol-pseudo-experiments",
    "4",
    "--no-plots",
    "--quiet",
]


@pytest.fixture
def registries(monkeypatch):
    """Private copies of the registries, restored after the test."""
    for name in ("MODELS", "SURROGATES", "STUDIES"):
        monkeypatch.setattr(registry, name, dict(getattr(registry, name)))
    return registry


# ------------------------------------------------------ (a) by module:attribute path


def test_validate_with_user_model_and_surrogate_by_import_path(tmp_path):
    """At a θ other than the model's own (``--theta rate=3``: loc keeps its 1)."""
    out = tmp_path / "validate"
    model, surrogate = f"{HERE}:shifted_exponential", f"{HERE}:moment_fit"
    argv = ["validate", "--model", model, "--surrogate", surrogate, *VALIDATE_SMALL]
    assert run_cli(*argv, "--theta", "rate=3", "--out", str(out)) == 0
    payload = json.loads((out / "validate.json").read_text())
    assert payload["config"]["model"] == model
    assert payload["config"]["surrogate"] == surrogate
    assert payload["config"]["theta"] == {"loc": 1.0, "rate": 3.0}
    assert "model cdf" in payload["config"]["expected_counts"]
    assert payload["n_required"] == [100, 1000]
    assert payload["failures"] == [0, 0] and payload["protocol"]["failures"] == 0


def test_surrogate_factory_by_import_path_with_registered_model(tmp_path):
    spec = registry.model_spec("exponential")
    surrogate = registry.make_surrogate(f"{HERE}:moment_fit_factory", spec)
    assert isinstance(surrogate, MomentFit)
    with pytest.raises(TypeError, match="no options"):
        registry.make_surrogate(f"{HERE}:moment_fit", spec, steps=3)


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--model", "no_such_module_xyz:thing", "cannot import module"),
        ("--model", f"{HERE}:no_such_attribute", "has no attribute"),
        ("--model", f"{HERE}:not_a_model", "ModelSpec"),
        ("--model", f"{HERE}:moment_fit", "ModelSpec"),
        ("--model", "cauchy", "invalid choice"),
        ("--model", f"{HERE}:", "module:attribute"),
        ("--surrogate", "no_such_module_xyz:thing", "cannot import module"),
        ("--surrogate", f"{HERE}:not_a_model", "surrogate"),
        ("--surrogate", "vae", "invalid choice"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "ensemble"])
def test_bad_import_path_exits_2_naming_the_flag(
    command, flag, value, words, tmp_path, capsys
):
    out = tmp_path / "out"
    assert run_cli(command, flag, value, "--out", str(out)) == 2
    error = capsys.readouterr().err
    assert f"argument {flag}" in error and words in error, error
    assert "Traceback" not in error
    assert list(tmp_path.iterdir()) == []


def test_import_path_in_a_fresh_process(tmp_path):
    """A real ``module:attribute`` import: the command in its own process, this
    module importable from PYTHONPATH."""
    out = tmp_path / "validate"
    root = Path(__file__).parent.parent
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root / "tests"), str(root)]),
    }
    argv = ["validate", "--model", "test_plugins:shifted_exponential"]
    argv += ["--surrogate", "test_plugins:moment_fit", *VALIDATE_SMALL]
    argv += ["--theta", "rate=3"]  # as in-process above: the same compiled programs
    process = subprocess.run(
        [sys.executable, "-m", "jaxunc", *argv, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
    )
    assert process.returncode == 0, process.stderr
    payload = json.loads((out / "validate.json").read_text())
    assert payload["config"]["model"] == "test_plugins:shifted_exponential"
    assert payload["config"]["theta"] == {"loc": 1.0, "rate": 3.0}


# ---------------------------------------------------------- (b) by registration


def test_registered_study_model_and_surrogate_run_through_the_command(
    registries, tmp_path, capsys
):
    registries.register_model("shifted_exponential", shifted_exponential)
    registries.register_surrogate("moment", moment_fit_factory)
    registries.register_study(SPREAD)
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert "spread" in commands
    help_text = commands["spread"].format_help()
    assert (
        "--n-events N" in help_text and "events per sample (default: 50)" in help_text
    )
    assert "shifted_exponential" in commands["validate"].format_help()

    out = tmp_path / "spread"
    argv = ["spread", "--model", "shifted_exponential", "--n-events", "40"]
    assert run_cli(*argv, "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "mean" in printed and f"wrote {out / 'spread.json'}" in printed
    payload = json.loads((out / "spread.json").read_text())
    assert payload["config"] == {
        "model": "shifted_exponential",
        "n_events": 40,
        "pseudo_experiments": 64,
        "seed": 0,
        "precision": "float32",
    }
    # E[x̄] = loc + 1/rate = 1.5, std(x̄) = 1/(rate √n): within 4 standard errors.
    stderr = 0.5 / math.sqrt(40 * 64)
    assert abs(payload["mean"] - 1.5) < 4 * stderr
    assert abs(payload["std"] - 0.5 / math.sqrt(40)) < 4 * payload["std_stderr"]
    assert {"seconds", "events", "backend", "jax_version"} <= set(payload["runtime"])

    validate_out = tmp_path / "validate"
    argv = ["validate", "--model", "shifted_exponential", "--surrogate", "moment"]
    assert run_cli(*argv, *VALIDATE_SMALL, "--out", str(validate_out)) == 0
    config = json.loads((validate_out / "validate.json").read_text())["config"]
    assert config["model_label"] == "shifted_exponential"
    assert config["surrogate_label"] == "moment"


def test_registered_study_is_reproduced_and_validates_its_flags(
    registries, tmp_path, capsys
):
    registries.register_study(SPREAD)
    out = tmp_path / "results"
    assert run_cli("reproduce", "--only", "spread", "--quiet", "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["spread", *REPORT_FILES])
    payload = json.loads((out / "spread" / "spread.json").read_text())
    assert payload["config"]["n_events"] == 50  # the study's defaults
    bad = tmp_path / "bad"
    for flag, value, words in (
        ("--n-events", "0", "positive"),
        ("--pseudo-experiments", "1", ">= 2 to measure a spread"),
        ("--seed", "-1", "2**63"),
    ):
        assert run_cli("spread", flag, value, "--out", str(bad)) == 2
        error = capsys.readouterr().err
        assert f"argument {flag}" in error and words in error, error
    assert not bad.exists()


def test_register_study_refuses_bad_records(registries):
    with pytest.raises(InvalidArgument, match="study"):
        registries.register_study("spread")
    with pytest.raises(InvalidArgument, match="own"):
        registries.register_study(dataclasses.replace(SPREAD, name="merge"))
    with pytest.raises(InvalidArgument, match="name"):
        dataclasses.replace(SPREAD, name="two words")
    with pytest.raises(InvalidArgument, match="output"):
        dataclasses.replace(SPREAD, output="spread.txt")
    with pytest.raises(InvalidArgument, match="config"):
        dataclasses.replace(SPREAD, config=dict)
    with pytest.raises(InvalidArgument, match="run"):
        dataclasses.replace(SPREAD, run="run_spread")
    with pytest.raises(InvalidArgument, match="reproduce_seconds"):
        dataclasses.replace(SPREAD, reproduce_seconds={"": float("nan")})
    with pytest.raises(InvalidArgument, match="study"):
        registries.study("no-such-study")


# --------------------------------------------------------- options, results, runtime


@dataclasses.dataclass(frozen=True)
class Kinds:
    count: int = positive_int(3, minimum=2, why="for a pair")
    maybe: int | None = positive_int(None, optional=True)
    x: float = finite_float(1.0, positive=True)
    p: float = finite_float(0.5, open_unit=True)
    n: tuple[int, ...] = sizes((1, 2), increasing=True)
    mode: str = choice("a", ("a", "b"))
    seed: int = seed_option()
    precision: str = precision_option()

    def __post_init__(self) -> None:
        check_options(self)


def test_option_kinds_normalise_good_values():
    kinds = Kinds(count=np.int64(4), x=2, n=7)
    assert kinds.count == 4 and type(kinds.count) is int
    assert kinds.x == 2.0 and type(kinds.x) is float
    assert kinds.n == (7,) and kinds.maybe is None


@pytest.mark.parametrize(
    ("changes", "argument", "words"),
    [
        ({"count": 1}, "count", ">= 2 for a pair"),
        ({"count": True}, "count", "integer"),
        ({"maybe": 0}, "maybe", "positive"),
        ({"x": 0.0}, "x", "> 0"),
        ({"x": math.nan}, "x", "finite"),
        ({"x": "one"}, "x", "number"),
        ({"p": 1.0}, "p", "(0, 1)"),
        ({"n": ()}, "n", "at least one"),
        ({"n": (2, 1)}, "n", "strictly increasing"),
        ({"n": (0,)}, "n", "positive"),
        ({"mode": "c"}, "mode", "one of"),
        ({"seed": -1}, "seed", "2**63"),
        ({"precision": "float16"}, "precision", "one of"),
    ],
)
def test_option_kinds_reject_bad_values(changes, argument, words):
    with pytest.raises(InvalidArgument) as error:
        Kinds(**changes)
    assert error.value.argument == argument and words in error.value.detail


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (base.parse_positive_int, "0"),
        (base.parse_positive_int, "two"),
        (base.parse_finite_float, "inf"),
        (base.parse_sizes, "1,,2"),
        (base.parse_sizes, "1,-2"),
        (base.parse_seed, str(2**63)),
    ],
)
def test_command_line_parsers_reject_bad_text(parse, text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        parse(text)


def test_to_json_is_derived_from_the_fields():
    @dataclasses.dataclass
    class Inner:
        values: tuple

    @dataclasses.dataclass
    class Result(StudyResult):
        config: Kinds
        array: Any
        nested: Any
        optional: Any = dataclasses.field(default=None, metadata=base.OMIT_NONE)
        hidden: Any = dataclasses.field(default=None, metadata=base.FIGURE_DATA)

    result = Result(
        Kinds(),
        np.array([1.5, np.nan], np.float32),
        {"inner": Inner((np.int32(3), math.inf)), 4: np.bool_(True)},
        hidden=np.zeros(3),
    )
    payload = result.to_json()
    assert list(payload) == ["config", "array", "nested"]
    assert payload["config"]["n"] == [1, 2] and payload["config"]["maybe"] is None
    assert payload["array"] == [1.5, None]
    assert payload["nested"] == {"inner": {"values": [3, None]}, "4": True}
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload
    result.optional = {"a": 1}
    assert result.to_json()["optional"] == {"a": 1}
    with pytest.raises(TypeError, match="not JSON serialisable"):
        base.to_jsonable(object())


def test_runtime_block_sums_the_engine_runs():
    run = run_pseudo_experiments(
        lambda key: {"x": Estimate(jax.random.normal(key, (1,)), jnp.bool_(True))},
        jax.random.key(0),
        8,
        progress=False,
    )
    block = base.runtime(1.25, [run.stats, run.stats], precision="float32", chunks=2)
    assert block["seconds"] == 1.25
    assert block["events"] == 2 * run.stats.events
    assert block["compile_seconds"] == 2 * run.stats.compile_seconds
    assert block["chunks"] == 2 and block["precision"] == "float32"
    assert block["backend"] == run.stats.backend
    bare = base.runtime(0.5)
    assert "events" not in bare and bare["jax_version"] == jax.__version__
