"""Result codes: every way the Newton fit fails gets its own code, and the engine
counts failures per code exactly (``failures_by_result``), whatever the chunk size,
through a checkpoint and through a range split and merge."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc import (
    Estimate,
    Gaussian,
    MaximumLikelihood,
    model_from_functions,
    pseudo_experiment_key,
    run_pseudo_experiments,
)
from jaxunc.checkpoint import PartialResults
from jaxunc.engine.reduce import element_codes
from jaxunc.errors import InvalidArgument
from jaxunc.estimators import Estimator, SampleMean, fit_model, maximum_likelihood_fit
from jaxunc.results import RESULT_NAMES, Result

# ------------------------------------------------------------------ Newton fit codes


def _gauss(x, mu):
    return -0.5 * (x - mu) ** 2 - 0.5 * jnp.log(2 * jnp.pi)


def _model(log_prob):
    return model_from_functions(
        lambda key, theta, n: theta["mu"] + jax.random.normal(key, (n,)), log_prob
    )


# Unit-variance location models, each built to end the fit in one way (start mu=0,
# data around 3).
FAILING_MODELS = {
    # -log L rises enormously after any move: every trial is rejected.
    "stalled": (
        lambda x, t: _gauss(x, t["mu"]) - jnp.where(t["mu"] != 0, 1e30, 0.0),
        Result.STALLED,
    ),
    # log p = NaN at the start (mu <= 0).
    "nonfinite_start": (
        lambda x, t: jnp.where(t["mu"] > 0, _gauss(x, t["mu"]), jnp.nan),
        Result.NONFINITE_START,
    ),
    # -log L concave (log-likelihood convex-up): the Hessian is never positive
    # definite, every step is a gradient step, -log L falls without bound.
    "not_positive_definite": (
        lambda x, t: 0.5 * (x - t["mu"]) ** 2,
        Result.NOT_POSITIVE_DEFINITE,
    ),
    # log p = +inf past mu = 0.5: the first Newton step lands on -log L = -inf.
    "nonfinite_value": (
        lambda x, t: jnp.where(t["mu"] > 0.5, jnp.inf, _gauss(x, t["mu"])),
        Result.NONFINITE_VALUE,
    ),
    "successful": (lambda x, t: _gauss(x, t["mu"]), Result.SUCCESSFUL),
}


@pytest.mark.parametrize("name", sorted(FAILING_MODELS))
def test_each_newton_failure_has_its_code(name, key):
    log_prob, expected = FAILING_MODELS[name]
    x = 3.0 + jax.random.normal(key, (50,))
    fit = maximum_likelihood_fit(_model(log_prob), x, {"mu": 0.0}, ("mu",))
    assert RESULT_NAMES[int(fit.result)] == RESULT_NAMES[expected]
    assert fit.result.dtype == jnp.int32
    assert bool(fit.converged) == (expected == Result.SUCCESSFUL)


def test_nan_start_code_after_the_first_pass():
    """-log L NaN at the start (not +inf): stopped after evaluating the start."""
    model = _model(lambda x, t: jnp.where(t["mu"] > 0, -x * t["mu"], jnp.nan))
    fit = maximum_likelihood_fit(model, jnp.ones(50), {"mu": -1.0}, ("mu",))
    assert int(fit.result) == Result.NONFINITE_START
    assert int(fit.iterations) == 0


def test_iteration_limit_is_max_steps_reached(key):
    x = Gaussian().sample(key, {"mu": jnp.float32(0), "sigma": jnp.float32(1)}, 1000)
    init, free = {"mu": 0.2, "sigma": 1.3}, ("mu", "sigma")
    limited = maximum_likelihood_fit(Gaussian(), x, init, free, max_iterations=1)
    assert int(limited.result) == Result.MAX_STEPS_REACHED
    assert int(limited.iterations) == 1 and not bool(limited.converged)
    # The same fit with room to converge succeeds (so the limit was the cause).
    full = maximum_likelihood_fit(Gaussian(), x, init, free)
    assert int(full.result) == Result.SUCCESSFUL and bool(full.converged)


def test_closed_form_codes(key):
    x = Gaussian().sample(key, {"mu": jnp.float32(0), "sigma": jnp.float32(1)}, 100)
    init, free = {"mu": 0.0, "sigma": 1.0}, ("mu", "sigma")
    assert int(fit_model(Gaussian(), x, init, free).result) == Result.SUCCESSFUL
    bad = fit_model(Gaussian(), x.at[3].set(jnp.inf), init, free)
    assert int(bad.result) == Result.NONFINITE_VALUE and not bool(bad.converged)


def test_maximum_likelihood_estimate_carries_the_code(key):
    """Under vmap: ok is the fit's convergence, result its code."""
    x = Gaussian().sample(key, {"mu": jnp.float32(0), "sigma": jnp.float32(1)}, 200)
    batch = jnp.stack([x, x.at[0].set(jnp.nan)])
    estimator = MaximumLikelihood(
        Gaussian(), {"mu": 0.0, "sigma": 1.0}, ("mu", "sigma"), use_closed_form=False
    )
    estimate = jax.vmap(estimator.estimate)(batch)
    assert estimate.result.tolist() == [Result.SUCCESSFUL, Result.NONFINITE_START]
    assert estimate.ok.tolist() == [True, False]
    assert isinstance(estimator, Estimator) and isinstance(SampleMean(), Estimator)
    assert not isinstance(object(), Estimator)


# --------------------------------------------------------------- the engine's counts


def _chosen_codes(key):
    """A pseudo-experiment whose outputs exercise every rule of ``element_codes``."""
    k_code, k_value, k_nan = jax.random.split(key, 3)
    code = jax.random.randint(k_code, (), 0, len(RESULT_NAMES), jnp.int32)
    value = jax.random.normal(k_value, (2,))
    # Element 1 is NaN in a quarter of the pseudo-experiments, whatever the code.
    value = value.at[1].set(jnp.where(jax.random.uniform(k_nan) < 0.25, jnp.nan, 1.0))
    per_k = jax.random.randint(k_code, (3,), -1, len(RESULT_NAMES) + 2, jnp.int32)
    return {
        # consistent producer: ok exactly when the code is successful
        "coded": Estimate(value, code == Result.SUCCESSFUL, code),
        # no code: not ok -> failed, ok but NaN -> nonfinite_value
        "plain": Estimate(value, code % 2 == 0),
        # (K, d) values with per-K flags and codes, some out of range (-1, 8, 9)
        # and some claiming a failure for an ok estimate
        "stacked": Estimate(jnp.broadcast_to(value, (3, 2)), per_k % 3 != 0, per_k),
    }


def _per_element(flags, value):
    """Per-estimate ``flags`` (n, ...) broadcast over ``value``'s trailing axes."""
    flags = np.asarray(flags)
    shape = flags.shape + (1,) * (value.ndim - flags.ndim)
    return np.broadcast_to(flags.reshape(shape), value.shape)


def _expected_counts(key, n_pseudo):
    """Per-code counts computed element by element on the host, from the rule."""
    keys = jax.vmap(pseudo_experiment_key, in_axes=(None, 0))(
        key, jnp.arange(n_pseudo, dtype=jnp.uint32)
    )
    outputs = jax.device_get(jax.jit(jax.vmap(_chosen_codes))(keys))
    counts = {}
    for name, estimate in outputs.items():
        value = np.asarray(estimate.value)
        ok = _per_element(estimate.ok, value)
        result = (
            None if estimate.result is None else _per_element(estimate.result, value)
        )
        table = np.zeros((len(RESULT_NAMES), *value.shape[1:]), np.int64)
        for index in np.ndindex(*value.shape):
            if ok[index] and np.isfinite(value[index]):
                code = Result.SUCCESSFUL
            elif result is not None and 0 < result[index] < len(RESULT_NAMES):
                code = int(result[index])
            elif not ok[index]:
                code = Result.FAILED
            else:
                code = Result.NONFINITE_VALUE
            table[(code, *index[1:])] += 1
        counts[name] = table
    return counts


N_PSEUDO = 1300
OPTIONS = {"events_per_pseudo_experiment": 1, "progress": False, "description": "codes"}


@pytest.fixture(scope="module")
def coded_run():
    key = jax.random.key(11)
    return key, run_pseudo_experiments(_chosen_codes, key, N_PSEUDO, **OPTIONS)


def test_engine_counts_failures_by_code_exactly(coded_run):
    key, run = coded_run
    expected = _expected_counts(key, N_PSEUDO)
    for name, counts in expected.items():
        out = run.outputs[name]
        by_result = out["failures_by_result"]
        assert by_result.dtype == np.int64
        assert by_result.shape == (len(RESULT_NAMES), *out["failures"].shape)
        np.testing.assert_array_equal(by_result, counts, err_msg=name)
        # the failed codes sum to the failures, all codes to the pseudo-experiments
        np.testing.assert_array_equal(by_result[1:].sum(axis=0), out["failures"])
        np.testing.assert_array_equal(by_result.sum(axis=0), N_PSEUDO)
        np.testing.assert_array_equal(by_result[0], out["count"])
    # every code occurs somewhere, so none of them is miscounted by omission
    assert np.all(expected["coded"].sum(axis=1) > 0)


def _assert_same_bits(a, b):
    for name, fields in a.outputs.items():
        assert sorted(fields) == sorted(b.outputs[name])
        for field, value in fields.items():
            assert value.tobytes() == b.outputs[name][field].tobytes(), (name, field)


def test_code_counts_identical_for_chunks_checkpoints_and_merged_ranges(
    coded_run, tmp_path
):
    key, reference = coded_run
    _assert_same_bits(
        reference,
        run_pseudo_experiments(_chosen_codes, key, N_PSEUDO, chunk_size=256, **OPTIONS),
    )
    # A checkpoint written after every chunk, then a resume that reads it back.
    options = {**OPTIONS, "checkpoint": tmp_path / "ck", "checkpoint_interval": 0}
    first = run_pseudo_experiments(
        _chosen_codes, key, N_PSEUDO, chunk_size=512, **options
    )
    resumed = run_pseudo_experiments(_chosen_codes, key, N_PSEUDO, **options)
    assert resumed.stats.computed == 0
    _assert_same_bits(reference, first)
    _assert_same_bits(reference, resumed)
    # Ranges (cutting vectorised steps and reduction blocks), saved, loaded, merged.
    parts = []
    for number, (start, stop) in enumerate(
        itertools.pairwise([0, 300, 1100, N_PSEUDO])
    ):
        partials = PartialResults()
        run_pseudo_experiments(
            _chosen_codes,
            key,
            N_PSEUDO,
            pseudo_range=(start, stop),
            partials=partials,
            **OPTIONS,
        )
        folder = tmp_path / f"part{number}"
        folder.mkdir()
        partials.save(folder)
        parts.append(PartialResults.load(folder))
    merged = run_pseudo_experiments(
        _chosen_codes, key, N_PSEUDO, merge=parts, **OPTIONS
    )
    _assert_same_bits(reference, merged)


def test_partial_result_without_code_counts_is_refused(coded_run):
    key, _ = coded_run
    partials = PartialResults()
    run_pseudo_experiments(
        _chosen_codes,
        key,
        N_PSEUDO,
        pseudo_range=(0, N_PSEUDO),
        partials=partials,
        **OPTIONS,
    )
    state = partials.states["codes"]
    for name in [n for n in state.arrays if n.endswith("failures_by_result")]:
        del state.arrays[name]
    with pytest.raises(InvalidArgument, match=r"parts: .*corrupt.*failures_by_result"):
        run_pseudo_experiments(
            _chosen_codes, key, N_PSEUDO, merge=[partials], **OPTIONS
        )


def test_element_codes_rule():
    """The rule on a hand-made table: ok+finite -> successful whatever the code;
    a failure code wins; else failed (not ok) or nonfinite_value (ok, NaN); codes
    outside the table count as failed."""
    values = np.array([[1.0], [np.nan], [1.0], [np.nan], [1.0], [1.0], [np.nan]])
    ok = np.array([True, True, False, False, True, False, False])
    result = np.array([2, 0, 0, 4, 3, 99, -1])
    codes = element_codes(values, ok, result)[:, 0].tolist()
    assert codes == [0, 5, 7, 4, 0, 7, 7]
    assert element_codes(values, ok, None)[:, 0].tolist() == [0, 5, 7, 7, 0, 7, 7]
