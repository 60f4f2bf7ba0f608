"""The ensemble study: the central result for every surrogate (generated events
never beat the training sample), closed forms for the ideal fit, the training
spread of the GAN and the flow, a user's own model, engine options, the command."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc.cli import main
from jaxunc.errors import InvalidArgument
from jaxunc.models import model_from_functions
from jaxunc.studies.ensemble import EnsembleConfig, floor_holds, run_ensemble
from jaxunc.studies.registry import ModelSpec
from jaxunc.surrogates import KDE

K_SIGMA = 4.0
SURROGATES = ("ideal", "bootstrap", "kde", "gan", "flow")
# Fewer training steps than the defaults keep the test fast; an under-trained
# surrogate can only add spread, so the floor test loses nothing.
OPTIONS = {"gan": {"steps": 200}, "flow": {"steps": 100}}
N_TRAIN, N_GEN = 100, (100, 10000)


@pytest.fixture(scope="module")
def results():
    return {
        name: run_ensemble(
            EnsembleConfig(
                model="gaussian",
                surrogate=name,
                ensemble_size=256,
                n_train=N_TRAIN,
                n_gen=N_GEN,
                seed=1,
                surrogate_options=OPTIONS.get(name, {}),
                # the floor is this file's subject; the reference run has its own
                # tests (test_plots, the command test below)
                ideal_reference=False,
            ),
            progress=False,
        )
        for name in SURROGATES
    }


@pytest.mark.parametrize("name", SURROGATES)
def test_generated_events_never_beat_the_training_sample(results, name):
    """Var(θ̂) from n_gen generated events ≥ Var at n_train true events, within
    K σ, for every n_gen up to 100 × n_train (the paper's central result)."""
    result = results[name]
    assert all(floor_holds(result, "mle", K_SIGMA))
    assert all(floor_holds(result, "sample_mean", K_SIGMA))
    payload = result.to_json()
    assert payload["failures"]["generated"]["mle"] == [0, 0]
    # ... while n_gen true events do beat it at n_gen = 100 n_train.
    floor = payload["training_floor"]["mle"]
    truth, truth_err = (
        payload["truth_std"]["mle"][-1],
        payload["truth_std_stderr"]["mle"][-1],
    )
    assert floor["std"] - truth > K_SIGMA * math.hypot(floor["std_stderr"], truth_err)
    # N_eff saturates near n_train (it cannot exceed it beyond errors).
    ratio, error = payload["n_eff_ratio"][-1], payload["n_eff_ratio_stderr"][-1]
    assert ratio < 1 + K_SIGMA * error


def test_ideal_fit_variance_closed_form(results):
    """Ideal Gaussian fit (μ, σ by maximum likelihood): Var(x̄_gen) = σ²/n +
    E[σ̂²]/n_gen = σ²/n (1 + (n-1)/n_gen)."""
    payload = results["ideal"].to_json()
    for i, n in enumerate(N_GEN):
        predicted = 1 / N_TRAIN * (1 + (N_TRAIN - 1) / n)
        std = payload["estimate_std"]["mle"][i]
        error = 2 * std * payload["estimate_std_stderr"]["mle"][i]
        assert abs(std**2 - predicted) < K_SIGMA * error


def test_truth_reference_reaches_the_cramer_rao_bound(results):
    """N_eff of n_gen true events is n_gen (the Gaussian mean is efficient), and of
    the training samples n_train: checks the per-event Fisher information too."""
    payload = results["ideal"].to_json()
    assert payload["fisher_per_event"]["value"] == pytest.approx(1.0)
    for n, value, error in zip(
        N_GEN, payload["n_eff_truth"], payload["n_eff_truth_stderr"], strict=True
    ):
        assert abs(value - n) < K_SIGMA * error
    train = payload["n_eff_train"]
    assert abs(train["value"] - N_TRAIN) < K_SIGMA * train["stderr"]


@pytest.mark.parametrize("name", ["gan", "flow"])
def test_trained_surrogates_report_their_training(results, name):
    payload = results[name].to_json()
    excess, excess_err = (
        payload["excess_variance"]["mle"],
        payload["excess_variance_stderr"]["mle"],
    )
    assert len(excess) == len(N_GEN)
    assert all(np.isfinite(excess)) and all(e > 0 for e in excess_err)
    training = payload["training"]
    assert training["fit_failures"] == 0
    assert training["final_losses"]
    for name_, curves in training["curves"].items():
        curves = np.asarray(curves)
        mean_curve = np.asarray(training["mean_curves"][name_])
        assert curves.shape == (4, len(mean_curve))
        assert np.all(np.isfinite(curves))
        assert training["final_losses"][name_]["mean"] == pytest.approx(mean_curve[-1])
    # Surrogates without training losses report none.
    assert results["bootstrap"].to_json()["training"]["curves"] == {}


def _logistic_spec() -> ModelSpec:
    """A user's model: logistic location family (scale 1), Fisher 1/3 per event."""

    def sample(key, theta, n):
        u = jax.random.uniform(key, (n,), minval=1e-7, maxval=1 - 1e-7)
        return theta["mu"] + jnp.log(u) - jnp.log1p(-u)

    def log_prob(x, theta):
        z = x - theta["mu"]
        return -z - 2 * jax.nn.softplus(-z)

    return ModelSpec(
        "logistic", model_from_functions(sample, log_prob), {"mu": 0.5}, ("mu",), "mu"
    )


def test_user_model_and_surrogate_objects_end_to_end():
    config = EnsembleConfig(
        model=_logistic_spec(),
        surrogate=KDE(rule="silverman"),
        ensemble_size=256,
        n_train=80,
        n_gen=(80, 4000),
        seed=2,
        fisher_events=100_000,
    )
    result = run_ensemble(config, progress=False)
    payload = result.to_json()
    fisher = payload["fisher_per_event"]
    assert "Monte Carlo" in fisher["method"]
    assert abs(fisher["value"] - 1 / 3) < K_SIGMA * fisher["stderr"]
    assert all(floor_holds(result, "mle", K_SIGMA))
    for n, value, error in zip(
        config.n_gen, payload["n_eff_truth"], payload["n_eff_truth_stderr"], strict=True
    ):
        assert abs(value - n) < K_SIGMA * error
    assert payload["config"]["model"] == "logistic"
    assert payload["config"]["surrogate"] == "KDE"
    json.dumps(payload)


def test_engine_options_are_forwarded_and_chunking_does_not_matter():
    config = EnsembleConfig(
        model="gaussian",
        surrogate="bootstrap",
        ensemble_size=512,
        n_train=20,
        n_gen=(50,),
    )
    with pytest.raises(TypeError, match="no_such_option"):
        run_ensemble(config, progress=False, engine_options={"no_such_option": 1})
    one = run_ensemble(config, progress=False)
    two = run_ensemble(config, progress=False, engine_options={"chunk_size": 256})
    assert two.runtime["chunks"] == 2 != one.runtime["chunks"]
    for key in ("estimate_mean", "estimate_std", "truth_std", "training_floor"):
        assert one.to_json()[key] == two.to_json()[key]


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"model": "nope"}, "model"),
        ({"model": object()}, "model"),
        ({"surrogate": "nope"}, "surrogate"),
        ({"surrogate": object()}, "surrogate"),
        ({"ensemble_size": 1}, "ensemble_size"),
        ({"ensemble_size": 2.5}, "ensemble_size"),
        ({"n_train": 1}, "n_train"),
        ({"n_gen": ()}, "n_gen"),
        ({"n_gen": (10, -1)}, "n_gen"),
        ({"seed": -1}, "seed"),
        ({"precision": "float16"}, "precision"),
        ({"curves": 300}, "curves"),
        ({"surrogate": "gan", "surrogate_options": {"steps": -5}}, "surrogate_options"),
        ({"surrogate": "kde", "surrogate_options": {"colour": 1}}, "surrogate_options"),
        (
            {"surrogate": KDE(), "surrogate_options": {"rule": "scott"}},
            "surrogate_options",
        ),
    ],
)
def test_bad_options_name_the_argument(changes, argument):
    with pytest.raises(InvalidArgument) as error:
        EnsembleConfig(**{"surrogate": "bootstrap", **changes})
    assert error.value.argument == argument


def test_command_writes_json_and_figure(tmp_path, capsys):
    out = tmp_path / "ensemble"
    code = main(
        [
            "ensemble",
            "--surrogate",
            "kde",
            "--ensemble-size",
            "256",
            "--n-train",
            "50",
            "--n-gen",
            "100,1000",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    payload = json.loads((out / "ensemble.json").read_text())
    for key in (
        "config",
        "n_gen",
        "estimate_mean",
        "estimate_std",
        "estimate_std_stderr",
        "truth_std",
        "n_eff",
        "n_eff_ratio",
        "training",
        "ideal_reference",
    ):
        assert key in payload
    assert payload["n_gen"] == [100, 1000]
    assert (out / "ensemble_std_vs_ngen.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "N_eff" in printed and "ideal std" in printed


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--ensemble-size", "1"], "--ensemble-size"),
        (["--n-train", "1", "--surrogate", "kde"], "--n-train"),
        (["--n-gen", "10,0"], "--n-gen"),
        (["--surrogate", "vae"], "--surrogate"),
        (["--model", "toy"], "--model"),
    ],
)
def test_command_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, flag):
    out = tmp_path / "never"
    try:
        code = main(["ensemble", *argv, "--out", str(out), "--quiet"])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert flag in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------- support, failures


def _gamma_sample(key, theta, n):
    rate = jnp.asarray(theta["rate"])
    # Gamma(2, 1) is the sum of two unit exponentials
    return jnp.sum(jax.random.exponential(key, (2, n), rate.dtype), axis=0) / rate


def _gamma_log_prob(x, theta):
    """Gamma(shape 2, rate) up to its θ-free constant: NaN for x < 0, -inf at 0."""
    rate = jnp.asarray(theta["rate"], x.dtype)
    return jnp.log(x) + 2 * jnp.log(rate) - rate * x


class _GammaWithSupport:
    """The same Gamma, declaring its support by a hook (``low``: where it starts;
    a wrong ``low`` > 0 is the deliberately wrong support of the test)."""

    def __init__(self, low: float = 0.0) -> None:
        self.low = low

    def sample(self, key, theta, n):
        return _gamma_sample(key, theta, n)

    def log_prob(self, x, theta):
        return _gamma_log_prob(x, theta)

    def support(self, x):
        return x > self.low


def test_support_hook_and_log_prob_agree_and_the_mle_drops_outside_events():
    """``outside_support``: a model without a support is outside where log_prob is
    not finite, the hook says the same for the same events (a wrong hook does
    not); the ensemble's MLE keeps only the events inside a declared support."""
    from jaxunc.models import outside_support
    from jaxunc.studies.ensemble import _InsideSupport

    theta = {"rate": jnp.float32(1.0)}
    x = jnp.asarray([-1.0, 0.0, 0.5, 2.0, jnp.nan], jnp.float32)
    plain = model_from_functions(_gamma_sample, _gamma_log_prob)
    expected = [True, True, False, False, True]
    assert outside_support(plain, x, theta).tolist() == expected
    assert outside_support(_GammaWithSupport(), x, theta).tolist() == expected
    assert outside_support(_GammaWithSupport(1.0), x, theta).tolist() != expected
    inside = _InsideSupport(_GammaWithSupport()).log_prob(x, theta)
    np.testing.assert_allclose(
        np.asarray(inside), [0.0, 0.0, *_gamma_log_prob(x[2:4], theta), 0.0]
    )


def test_gan_on_a_user_gamma_model_reports_support_and_failures(tmp_path):
    """A Gamma user model (no declared support; log_prob NaN at x < 0) with a
    briefly trained GAN: the fraction of generated events at x <= 0 is reported per
    n_gen (and equals a direct count on the same draws' law within errors), the
    MLE failures are counted by reason with a warning in words, a statistic without
    2 successful members is null, never 0.0, and the figure marks the points."""
    from jaxunc.plots.ensemble import figure_ensemble_std_vs_ngen
    from jaxunc.studies.ensemble import EnsembleWarning

    spec = ModelSpec(
        "gamma",
        model_from_functions(_gamma_sample, _gamma_log_prob),
        {"rate": 1.0},
        ("rate",),
        "rate",
        "Gamma(2, rate 1)",
    )
    config = EnsembleConfig(
        model=spec,
        surrogate="gan",
        ensemble_size=8,
        n_train=100,
        n_gen=(30, 300),
        surrogate_options={"steps": 100, "record_every": 50},
        ideal_reference=False,
        fisher_events=10_000,
    )
    with pytest.warns(EnsembleWarning) as caught:
        result = run_ensemble(config, progress=False)
    payload = json.loads(json.dumps(result.to_json()))
    outside = payload["outside_support"]
    fraction, stderr = outside["fraction"], outside["fraction_stderr"]
    assert all(f > 0 for f in fraction)
    # the same surrogate law at both sizes: the fractions agree within errors
    assert abs(fraction[0] - fraction[1]) < K_SIGMA * math.hypot(*stderr)
    assert "log_prob" in outside["support"] and "fails" in outside["estimator"]
    failed = payload["failures"]["generated"]["mle"]
    reasons = payload["failures_by_result"]["generated"]["mle"]
    assert sum(reasons["nonfinite_start"]) == sum(failed) > 0
    # a member fails exactly when one of its events is outside: certain at 300
    # events with a few % outside (P(no event outside) < 1e-3 per member)
    assert failed[1] == config.ensemble_size
    messages = [str(w.message) for w in caught]
    assert any("lie outside the model's support" in m for m in messages)
    assert any(
        f"{config.ensemble_size} of {config.ensemble_size} at n_gen = 300" in m
        and "non-finite log-likelihood" in m
        for m in messages
    )
    assert payload["warnings"] and len(payload["warnings"]) == len(messages)
    # no successful member at n_gen = 300: null, never 0.0 or -0.0
    for key in ("estimate_mean", "estimate_std", "estimate_std_stderr"):
        assert payload[key]["mle"][1] is None, key
    assert payload["n_eff"][1] is None and payload["excess_variance"]["mle"][1] is None
    # the sample mean never fails: its statistics stay numbers
    assert payload["estimate_std"]["sample_mean"][1] > 0
    labels = figure_ensemble_std_vs_ngen(payload).axes[0].get_legend_handles_labels()[1]
    marked = [label for label in labels if "fits failed" in label]
    assert 0 < failed[0] < config.ensemble_size, failed
    assert len(marked) == 1
    assert any("no point at n_gen = 300" in label for label in labels)
