"""The validation study: the robustness horizon (none for truth; ∝ n_train for the
ideal fit), the amplification factor, the three-step protocol, a user's own model,
§5.1 (factor 2) and §7.1 (the information ordering), the command line."""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc.cli import main
from jaxunc.models import Gaussian, model_from_functions
from jaxunc.plots.validate import FILES as VALIDATE_FIGURES
from jaxunc.report import REPORT_FILES
from jaxunc.studies import validate as validate_module
from jaxunc.studies.amplification import (
    ContrivedConfig,
    PartialPipelineConfig,
    contrived_amplification,
    partial_pipeline,
)
from jaxunc.studies.validate import ValidateConfig, validate_surrogate
from jaxunc.surrogates import IdealFit

K = 3.0  # standard errors for every statistical assertion here
THETA = {"mu": np.float32(1.0), "sigma": np.float32(1.0)}
GRID = tuple(round(2 ** (k / 2)) for k in range(12, 29))  # 64 … 16384, ×√2
PSEUDO = 300


def _run(n_train: int, protocol: bool) -> dict:
    config = ValidateConfig(
        n_train=n_train,
        n_required=GRID,
        pseudo_experiments=PSEUDO,
        n_quantiles=(5, 20),
        replicas=16,
        protocol_pseudo_experiments=100,
        protocol_n_gen=10 * n_train,
    )
    surrogate = IdealFit(Gaussian(), THETA, ("mu", "sigma"))
    calls = []
    real = validate_module.run_pseudo_experiments

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    validate_module.run_pseudo_experiments = spy
    try:
        result = validate_surrogate(
            Gaussian(),
            THETA,
            surrogate,
            config,
            progress=False,
            figures=False,
            protocol=protocol,
            engine_options={"chunk_size": 512},
        )
    finally:
        validate_module.run_pseudo_experiments = real
    payload = result.to_json()
    payload["engine_calls"] = calls
    return payload


@pytest.fixture(scope="module")
def small_n():
    return _run(32, protocol=False)


@pytest.fixture(scope="module")
def large_n():
    return _run(128, protocol=True)


def test_truth_never_shows_a_horizon(small_n, large_n):
    binomial = math.sqrt(0.05 * 0.95 / PSEUDO)
    for payload in (small_n, large_n):
        truth = payload["truth"]
        assert truth["horizon_status"] == "beyond_grid" and truth["horizon"] is None
        # 17 sizes × 2 runs: 4 standard errors keeps the family-wise rate < 0.3%.
        assert np.all(np.abs(np.asarray(truth["rejection_rate"]) - 0.05) < 4 * binomial)
        assert truth["failures"] == [0] * len(GRID)


def test_horizon_exists_and_scales_with_n_train(small_n, large_n):
    for payload in (small_n, large_n):
        assert payload["horizon_status"] == "found"
        assert payload["rejection_rate"][0] < 0.5 < payload["rejection_rate"][-1]
        # the largest N_required's median may lie below the histogram's floor:
        # then it is null, flagged as below the floor (a bound, not a number)
        median, below = payload["p_value_median"], payload["p_value_below_floor"]
        assert 0.05 < median[0] and not below["0.5"][0]
        assert below["0.5"][-1] if median[-1] is None else median[-1] < 0.05
    small, large = small_n["horizon"], large_n["horizon"]
    small_err, large_err = small_n["horizon_stderr"], large_n["horizon_stderr"]
    assert large - small > K * math.hypot(small_err, large_err)
    # The ideal fit's bin deviations scale as 1/n_train, so the N_required at which
    # they exceed the N_required error bars scales as n_train: ratio 4 here.
    ratio = large / small
    ratio_err = ratio * math.hypot(small_err / small, large_err / large)
    assert abs(ratio - 4.0) < K * ratio_err, (ratio, ratio_err)


def test_amplification_truth_closed_form_and_factor(large_n):
    data = large_n["amplification"]
    truth = np.asarray(data["truth_mse"])
    truth_err = np.asarray(data["truth_mse_stderr"])
    expected = np.asarray(data["truth_mse_expected"])
    # 17 sizes × 2 quantile sets: 4 standard errors.
    assert np.all(np.abs(truth - expected) < 4 * truth_err)
    factor = np.asarray(data["factor"])
    n_equiv = np.asarray(data["n_equiv"])
    np.testing.assert_allclose(factor, n_equiv / 128)
    q = np.asarray(data["n_quantiles"], np.float64)
    np.testing.assert_allclose(
        n_equiv, (q - 1) / (q * q * np.asarray(data["mse"])), rtol=1e-12
    )
    # The generated sample is worth no more than N_gen true events (up to errors).
    n_gen = np.asarray(data["n_gen"], np.float64)[:, None]
    assert np.all(n_equiv - K * np.asarray(data["n_equiv_stderr"]) < n_gen)


def test_protocol_validates_the_ideal_fit(large_n):
    protocol = large_n["protocol"]
    assert protocol["step2_validated"]
    ratio, error = (
        protocol["step2_variance_ratio"],
        protocol["step2_variance_ratio_stderr"],
    )
    assert abs(ratio - 1.0) < K * error
    assert protocol["verdict"].startswith(
        "improvement demonstrated" if protocol["step3_improved"] else "no improvement"
    )
    assert protocol["failures"] == 0


def test_user_model_through_validation(monkeypatch):
    """An exponential written as two plain functions (no cdf: reference sample and
    two-sample χ²) with the generic Newton fit; engine options reach every engine
    call, each with its own description."""

    def sample(key, theta, n):
        import jax

        return jax.random.exponential(key, (n,), jnp.float32) / theta["rate"]

    def log_prob(x, theta):
        return jnp.log(theta["rate"]) - theta["rate"] * x

    user = model_from_functions(sample, log_prob)
    theta = {"rate": np.float32(2.0)}
    calls = []
    real = validate_module.run_pseudo_experiments

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(validate_module, "run_pseudo_experiments", spy)
    config = ValidateConfig(
        n_train=50,
        n_required=(100, 30000),
        bins=10,
        pseudo_experiments=256,
        n_quantiles=(5, 10),
        n_reference=2**20,
        replicas=8,
        protocol_pseudo_experiments=64,
    )
    payload = validate_surrogate(
        user,
        theta,
        IdealFit(user, theta, ("rate",)),
        config,
        progress=False,
        figures=False,
        protocol=False,
        engine_options={"chunk_size": 256},
    ).to_json()
    assert len(calls) == 1 and calls[0]["chunk_size"] == 256
    assert "reference sample" in payload["config"]["binning_description"]
    assert "two-sample" in payload["config"]["expected_counts"]
    binomial = math.sqrt(0.05 * 0.95 / 256)
    assert np.all(
        np.abs(np.asarray(payload["truth"]["rejection_rate"]) - 0.05) < 4 * binomial
    )
    assert payload["rejection_rate"][-1] > 0.5
    assert payload["protocol"] is None


def test_engine_options_reach_every_engine_call(large_n, monkeypatch):
    calls = large_n["engine_calls"]
    assert len(calls) == 2 and all(call["chunk_size"] == 512 for call in calls)
    assert len({call["description"] for call in calls}) == 2


def test_engine_options_checked(monkeypatch):
    calls = []

    def record(*args, **kwargs):
        calls.append(kwargs)
        raise StopIteration  # enough: the call and its arguments were seen

    monkeypatch.setattr(validate_module, "run_pseudo_experiments", record)
    surrogate = IdealFit(Gaussian(), THETA, ("mu", "sigma"))
    with pytest.raises(StopIteration):
        validate_surrogate(
            Gaussian(), THETA, surrogate, engine_options={"chunk_size": 512}
        )
    with pytest.raises(validate_module.InvalidArgument, match="description"):
        validate_surrogate(
            Gaussian(), THETA, surrogate, engine_options={"description": "x"}
        )
    assert calls[0]["chunk_size"] == 512


def test_truth_probabilities_from_a_reference_sample():
    """The protocol's truth for a model without a cdf: fractions of the sorted
    reference sample, within binomial errors of the exact ones."""
    import jax
    import scipy.stats

    reference = np.sort(np.asarray(jax.random.normal(jax.random.key(3), (2**18,))))
    probabilities, source = validate_module._truth_probabilities(
        object(), THETA, reference.astype(np.float64), np.float32
    )
    interior = jnp.asarray([-1.0, 0.0, 0.5, 2.0], jnp.float32)
    got = np.asarray(jax.jit(probabilities)(interior), np.float64)
    exact = np.diff(np.concatenate([[0.0], scipy.stats.norm.cdf(interior), [1.0]]))
    error = np.sqrt(exact * (1 - exact) / 2**18)
    assert np.all(np.abs(got - exact) < 4 * error)
    assert "reference sample of 262144" in source


def test_contrived_analysis_amplifies_by_two():
    theta = {"mu": np.float32(0.0), "sigma": np.float32(1.0)}
    result = contrived_amplification(
        Gaussian(),
        theta,
        IdealFit(Gaussian(), theta, ("mu", "sigma")),
        config=ContrivedConfig(n_train=50, n_gen=50_000, pseudo_experiments=3000),
    )
    factor, error = result.measured_factor, result.measured_factor_stderr
    assert abs(factor - result.predicted_factor_finite_n_gen) < K * error
    assert abs(factor - 2.0) < K * error
    # ... and fed to the analysis, the surrogate is worth 2 n_train true events.
    assert abs(result.ratio_to_2n_true - 1.0) < K * result.ratio_to_2n_true_stderr
    assert result.consistent_with_prediction and result.failures == 0


def test_partial_pipeline_information_ordering():
    result = partial_pipeline(PartialPipelineConfig(pseudo_experiments=3000))
    info, err = result.information_estimator, result.information_estimator_stderr
    fisher = result.fisher
    # The estimator view agrees with the exact Fisher information where it exists.
    for name in ("m_full", "full_plus_generator", "n_full"):
        assert abs(info[name] - fisher[name]) < K * err[name], name
    # M full alone <= mixed <= its inputs (data processing), each by > K sigma here.
    assert info["mixed"] - info["m_full"] > K * math.hypot(err["mixed"], err["m_full"])
    assert info["full_plus_generator"] - info["mixed"] > K * math.hypot(
        err["mixed"], err["full_plus_generator"]
    )
    assert info["mixed"] - K * err["mixed"] >= fisher["m_full"]
    assert result.ordering_holds


def run_cli(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:
        return int(exit_.code)


SMALL = [
    "validate",
    "--n-required",
    "100,3000",
    "--pseudo-experiments",
    "256",
    "--n-quantiles",
    "5,10",
    "--replicas",
    "8",
    "--protocol-pseudo-experiments",
    "32",
    "--quiet",
]


def test_cli_writes_json_and_figures(tmp_path):
    out = tmp_path / "validate"
    assert run_cli(*SMALL, "--out", str(out)) == 0
    assert {p.name for p in out.iterdir()} == {
        "validate.json",
        *VALIDATE_FIGURES,
        *REPORT_FILES,
    }
    payload = json.loads((out / "validate.json").read_text())
    for key in (
        "config",
        "n_required",
        "p_value_median",
        "p_value_quantiles",
        "rejection_rate",
        "horizon",
        "horizon_stderr",
        "min_expected_count",
        "amplification",
        "protocol",
    ):
        assert key in payload, key
    for key in ("n_quantiles", "n_equiv", "factor"):
        assert key in payload["amplification"]
    assert "verdict" in payload["protocol"]
    assert payload["config"]["model"] == "gaussian"
    assert payload["config"]["surrogate"] == "ideal"
    for path in out.glob("*.png"):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--bins", "1"], "--bins"),
        (["--bins", "0"], "--bins"),
        (["--bins", "200"], "--bins"),
        (["--n-required", "1000,100"], "--n-required"),
        (["--n-required", "0"], "--n-required"),
        (["--alpha", "1.5"], "--alpha"),
        (["--binning", "log"], "--binning"),
        (["--model", "nope"], "--model"),
        (["--surrogate", "nope"], "--surrogate"),
        (["--n-quantiles", "1"], "--n-quantiles"),
        (["--replicas", "2"], "--replicas"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(argv, flag, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(*SMALL, *argv, "--out", str(out)) == 2
    assert flag in capsys.readouterr().err
    assert not out.exists()


def test_scalar_theta_user_model_through_validation():
    """θ a bare scalar: a location model written as two plain functions (no cdf:
    reference-sample bins, two-sample χ²) and a mean-fit surrogate of its own; the
    truth's rejection rate is the test size, the generated sample's grows with
    N_required, and θ is reported as the number it is."""
    import jax

    sigma = 1.5

    def sample(key, theta, n):
        return theta + sigma * jax.random.normal(key, (n,), jnp.float32)

    def log_prob(x, theta):
        z = (x - theta) / sigma
        return -0.5 * z * z - math.log(sigma * math.sqrt(2 * math.pi))

    class MeanFit:
        def fit(self, key, data):
            return jnp.mean(data)

        def sample(self, key, params, n):
            return params + sigma * jax.random.normal(key, (n,), jnp.float32)

    config = ValidateConfig(
        n_train=20,
        n_required=(100, 20000),
        bins=10,
        pseudo_experiments=256,
        n_quantiles=(5, 10),
        n_reference=2**16,
        replicas=4,
        protocol_pseudo_experiments=16,
    )
    payload = validate_surrogate(
        model_from_functions(sample, log_prob),
        np.float32(0.5),
        MeanFit(),
        config,
        progress=False,
        figures=False,
    ).to_json()
    assert payload["config"]["theta"] == 0.5
    binomial = math.sqrt(0.05 * 0.95 / 256)
    assert np.all(
        np.abs(np.asarray(payload["truth"]["rejection_rate"]) - 0.05) < 4 * binomial
    )
    assert payload["rejection_rate"][-1] > 0.5
    assert payload["failures"] == [0, 0] and payload["failures_by_result"] == {}
    assert payload["protocol"]["failures"] == 0


def test_trained_surrogates_run_in_small_steps_and_reproduce_says_what_differs():
    """A GAN's training counts as events (``fit_cost``): at the command's defaults
    the protocol's 128 pseudo-experiments (7 GAN trainings each) run in vectorised
    steps of 32, so its progress bar moves four times on one device, not once as
    when the trainings are not counted (the deliberately wrong sizing), and the
    χ² part's ten times or more.  ``reproduce``'s GAN run names the options it
    changes from the defaults."""
    from jaxunc.engine.plan import align_up, default_chunk_size, vector_width
    from jaxunc.surrogates import GAN

    config = ValidateConfig(surrogate="gan")
    gan, ideal = GAN(), IdealFit(Gaussian(), THETA, ("mu", "sigma"))

    def progress_updates(events: int, pseudo: int) -> int:
        width = vector_width(events)
        chunk = align_up(default_chunk_size(pseudo, events), width)
        return math.ceil(pseudo / chunk)

    pseudo = config.protocol_pseudo_experiments
    events = validate_module.protocol_events(config, gan)
    trainings = config.replicas + 1
    assert events - validate_module.protocol_events(config, ideal) == (
        trainings * gan.fit_cost
    )
    assert progress_updates(events, pseudo) >= 4
    uncounted = config.n_train + (config.replicas + 1) * config.protocol_n_gen
    assert progress_updates(uncounted, pseudo) == 1
    horizon = validate_module.horizon_events(config, gan)
    assert progress_updates(horizon, config.pseudo_experiments) >= 10
    assert config.not_at_defaults() == {}
    reproduce = ValidateConfig(**validate_module.STUDY.reproduce["gan"])
    changed = reproduce.not_at_defaults()
    assert changed["replicas"] == {"value": 4, "default": 6}
    assert set(changed) == {
        "pseudo_experiments",
        "replicas",
        "protocol_pseudo_experiments",
    }
