"""One default θ per model in every command, and ``--theta`` on ``ensemble`` and
``validate`` for built-in models and a user's model given by import path (the
shifted exponential of ``test_plugins``)."""

from __future__ import annotations

import pytest

from jaxunc import cli
from jaxunc.studies.ensemble import EnsembleConfig
from jaxunc.studies.fisher import FisherConfig
from jaxunc.studies.registry import model_spec
from jaxunc.studies.toy import ToyConfig
from jaxunc.studies.validate import ValidateConfig

USER_MODEL = "test_plugins:shifted_exponential"  # loc = 1, rate = 2 by default


def run_cli(*argv: str) -> int:
    try:
        return cli.main(list(argv))
    except SystemExit as stop:  # argparse errors exit
        return int(stop.code)


def test_one_default_theta_per_model_in_every_command():
    """The paper's toy (000, Appendix A): μ = 0, σ = 1, in toy, fisher, ensemble and
    validate alike; the exponential's rate = 1 in fisher and the registry."""
    gaussian = model_spec("gaussian").theta
    assert gaussian == {"mu": 0.0, "sigma": 1.0}
    toy = ToyConfig()
    assert {"mu": toy.mu, "sigma": toy.sigma} == gaussian
    assert dict(FisherConfig().spec.theta) == gaussian
    assert dict(EnsembleConfig(surrogate="ideal").spec.theta) == gaussian
    assert dict(ValidateConfig().spec().theta) == gaussian
    exponential = FisherConfig(model="exponential").spec.theta
    assert dict(exponential) == model_spec("exponential").theta


# Runs at a given θ: the golden ensemble-gaussian-* and validate-ideal cases give
# --theta mu=1 (their recordings, bit for bit: a θ not applied changes every number),
# and test_plugins runs validate on the user's model by import path at --theta
# rate=3 (its JSON records the θ used).


@pytest.mark.parametrize(
    ("command", "model", "theta", "words"),
    [
        ("ensemble", "gaussian", "nu=1", ["'nu' is not a parameter"]),
        ("validate", "gaussian", "sigma=-1", ["sigma", "> 0"]),
        ("ensemble", "gaussian", "mu=nan", ["mu must be a finite number"]),
        ("validate", USER_MODEL, "scale=2,rate=1", ["'scale' is not a parameter"]),
        ("ensemble", USER_MODEL, "rate=inf", ["rate must be a finite number"]),
    ],
)
def test_bad_theta_exits_2_naming_theta_and_the_parameters(
    command, model, theta, words, tmp_path, capsys
):
    out = tmp_path / "out"
    argv = [command, "--model", model, "--theta", theta, "--out", str(out)]
    assert run_cli(*argv) == 2
    error = capsys.readouterr().err
    assert "argument --theta" in error, error
    allowed = (
        ["loc (default 1)", "rate (default 2)"]
        if model == USER_MODEL
        else ["mu (default 0)", "sigma (default 1)"]
    )
    for word in [*words, *allowed]:
        assert word in error, error
    assert "Traceback" not in error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "theta", ["mu", "mu=1,mu=2", "1,2", "mu=1;sigma=2", "mu=x", "=1"]
)
def test_malformed_theta_exits_2_naming_theta(theta, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli("validate", "--theta", theta, "--out", str(out)) == 2
    error = capsys.readouterr().err
    assert "argument --theta" in error, error
    assert "NAME=VALUE" in error or "given twice" in error, error
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "scale"),
    [
        ({"sigma": 2.0, "n_train": 50}, 2.0),
        ({"model": "exponential", "rate": 3.0}, 3.0),
    ],
)
def test_kl_shift_and_prior_width_carry_units_and_the_values_used(options, scale):
    """fisher.json: the KL shift and the prior width are in standard errors of the
    first parameter from n_train events (σ/√n_train, rate/√n_train), and the
    absolute values used are there too."""
    config = FisherConfig(**options, kl_shift=1.5, prior_width=2.5).to_json()
    first = config["parameters"][0]
    error = scale / (config["n_train"] ** 0.5)
    assert config["standard_error"] == pytest.approx(error, rel=1e-12)
    assert config["kl_shift_units"] == config["prior_width_units"]
    assert config["kl_shift_units"] == f"standard errors of {first}"
    assert config["kl_shift_used"] == pytest.approx(1.5 * error, rel=1e-12)
    assert config["prior_width_used"] == pytest.approx(2.5 * error, rel=1e-12)
    shift = config["theta1_for_kl"][first] - config["theta"][first]
    assert shift == pytest.approx(config["kl_shift_used"], rel=1e-6)  # float32 θ
    assert f"{config['prior_width_used']}^2" in config["prior"]
