"""The engine: reproducibility across chunk sizes, the paper's predictions within
derived tolerances, the exponential and a user model through the generic MLE path."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxunc import (
    Chain,
    Estimate,
    Exponential,
    Gaussian,
    IdealFit,
    MaximumLikelihood,
    SampleMean,
    chain_pseudo_experiment,
    model_from_functions,
    pseudo_experiment_key,
    run_chain,
    run_pseudo_experiments,
)
from jaxunc.checkpoint import PartialResults
from jaxunc.engine import (
    REDUCTION_BLOCK,
    EngineOptions,
    block_moments,
    moments_merge,
    moments_summary,
)
from jaxunc.errors import InvalidArgument
from jaxunc.results import Result

K_SIGMA = 4.0  # two-sided tolerance in standard errors for every statistical check


def gaussian_chain(
    mu=0.0,
    sigma=1.0,
    n_train=100,
    n_gen=(30, 100, 300, 1000),
    free=("mu", "sigma"),
    ddof=0,
):
    theta = {"mu": np.float32(mu), "sigma": np.float32(sigma)}
    surrogate = IdealFit(Gaussian(), theta, free, ddof=ddof)
    return Chain(Gaussian(), theta, surrogate, SampleMean(), n_train, n_gen)


def assert_within(measured, stderr, expected, k=K_SIGMA):
    measured, stderr, expected = map(np.asarray, (measured, stderr, expected))
    pulls = (measured - expected) / stderr
    assert np.all(np.abs(pulls) < k), (
        f"pulls {pulls} (measured {measured}, expected {expected})"
    )


def test_identical_results_for_any_chunk_size(key):
    chain = gaussian_chain(n_gen=(10, 50))
    n_pseudo = 2 * REDUCTION_BLOCK + 77
    edges = {"surrogate": np.linspace(-1, 1, 21)}
    runs = [
        run_chain(
            chain, key, n_pseudo, chunk_size=c, histogram_edges=edges, progress=False
        )
        for c in (n_pseudo, 1000, 333, 64)
    ]
    reference = runs[0].outputs
    for run in runs[1:]:
        for name, fields in reference.items():
            for field, value in fields.items():
                got = run.outputs[name][field]
                assert got.tobytes() == value.tobytes(), (
                    name,
                    field,
                    run.stats.chunk_size,
                )


def _covers_only_remaining(steps, plan, remaining):
    """Contiguous steps covering ``remaining`` pseudo-experiments with less than one
    step of slack, none over a device's share, balanced to one step."""
    return (
        all(0 <= s <= plan.per_device // plan.width for s in steps)
        and 0 <= sum(steps) * plan.width - remaining < plan.width
        and max(steps) - min(steps) <= 1
    )


@pytest.mark.parametrize(
    ("n_pseudo", "chunk_size", "devices", "first", "expected"),
    [
        (65536, 4608, 2, 0, [9, 9]),  # a full chunk: every device's whole share
        (65536, 4608, 2, 64512, [2, 2]),  # the last 1024: 4 steps, not 18
        (1000, 1024, 2, 0, [2, 2]),  # 1000 = 3.9 steps of 256: 4 steps
        (300, 512, 2, 0, [1, 1]),
        (200, 512, 2, 0, [1, 0]),  # one step: the second device is not started
        (2000, 768, 3, 1536, [1, 1, 0]),
    ],
)
def test_partial_last_chunk_computes_only_its_steps(
    n_pseudo, chunk_size, devices, first, expected
):
    """A run's last chunk computes the vectorised steps that hold its remaining
    pseudo-experiments, spread over the devices, not a whole chunk."""
    from jaxunc.engine.plan import make_plan
    from jaxunc.engine.run import _device_steps

    plan = make_plan(n_pseudo, None, chunk_size, 1000, 12, devices, (1, 0), 2**40)
    remaining = min(plan.chunk_size, n_pseudo - first)
    steps = _device_steps(plan, first, devices)
    assert steps == expected
    assert _covers_only_remaining(steps, plan, remaining)
    whole_chunk = [plan.per_device // plan.width] * devices  # the old behaviour
    if plan.chunk_size - remaining >= plan.width:  # deliberately wrong: fails
        assert not _covers_only_remaining(whole_chunk, plan, remaining)


def test_pseudo_experiment_i_uses_fold_in_of_root(key):
    """The engine's moments equal those of pseudo-experiments run one by one."""
    chain = gaussian_chain(n_gen=(20,))
    single = jax.jit(chain_pseudo_experiment(chain))
    values = np.array(
        [
            single(pseudo_experiment_key(key, i))["surrogate"].value[0, 0]
            for i in range(6)
        ],
        np.float64,
    )
    run = run_chain(chain, key, 6, chunk_size=4, progress=False)
    np.testing.assert_allclose(
        run.outputs["surrogate"]["mean"][0, 0], values.mean(), rtol=1e-6
    )
    np.testing.assert_allclose(
        run.outputs["surrogate"]["std"][0, 0], values.std(ddof=1), rtol=1e-5
    )


def test_compiles_once_per_run(key):
    traces = []
    pe = chain_pseudo_experiment(gaussian_chain(n_gen=(5,)))

    def counted(k):
        traces.append(1)
        return pe(k)

    run_pseudo_experiments(counted, key, 2500, chunk_size=1000, progress=False)
    assert len(traces) == 1


@pytest.mark.parametrize(
    "options",
    [
        {},  # the paper's configuration (Appendix A)
        {"mu": 3.0, "sigma": 2.5, "n_train": 40, "n_gen": (10, 60, 3000), "ddof": 1},
        {"mu": -1.0, "sigma": 0.5, "n_train": 25, "n_gen": (5, 500), "free": ("mu",)},
    ],
)
def test_toy_spreads_match_predictions(options, key):
    chain = gaussian_chain(**options)
    theta, n_train = chain.theta, chain.n_train
    sigma = float(theta["sigma"])
    n_gen = np.asarray(chain.n_gen, np.float64)
    ddof = options.get("ddof", 0)
    fitted_variance = (
        sigma**2
        if options.get("free") == ("mu",)
        else sigma**2 * (n_train - 1) / (n_train - ddof)
    )
    run = run_chain(chain, key, 20_000, progress=False)
    truth, surrogate = run.outputs["truth"], run.outputs["surrogate"]
    assert truth["failures"].sum() == 0 and surrogate["failures"].sum() == 0
    assert_within(truth["std"][:, 0], truth["std_stderr"][:, 0], sigma / np.sqrt(n_gen))
    predicted = np.sqrt(sigma**2 / n_train + fitted_variance / n_gen)
    assert_within(surrogate["std"][:, 0], surrogate["std_stderr"][:, 0], predicted)
    mu = float(theta["mu"])
    assert_within(truth["mean"][:, 0], truth["mean_stderr"][:, 0], mu)
    assert_within(surrogate["mean"][:, 0], surrogate["mean_stderr"][:, 0], mu)
    # The training-sample mean: σ/√n_train, the floor the surrogate never beats.
    train = run.outputs["train"]
    assert_within(train["std"][0], train["std_stderr"][0], sigma / math.sqrt(n_train))


def test_exponential_generic_fit_plateaus_at_training_floor(key):
    """Ideal surrogate by the generic Newton MLE (closed form switched off) on the
    exponential.

    With λ̂ = 1/x̄_train, the generated sample mean has
    Var = (1/λ²) [1/n + (1 + 1/n)/n_gen]  → (1/λ²)/n, the training floor.
    """
    rate, n_train, n_gen = 2.0, 50, (10, 100, 5000)
    theta = {"rate": np.float32(rate)}
    surrogate = IdealFit(Exponential(), theta, ("rate",), use_closed_form=False)
    chain = Chain(Exponential(), theta, surrogate, SampleMean(), n_train, n_gen)
    run = run_chain(chain, key, 8000, progress=False)
    sizes = np.asarray(n_gen, np.float64)
    predicted = np.sqrt(1 / n_train + (1 + 1 / n_train) / sizes) / rate
    out = run.outputs["surrogate"]
    assert out["failures"].sum() == 0 and run.outputs["fit"]["failures"].sum() == 0
    assert_within(out["std"][:, 0], out["std_stderr"][:, 0], predicted)
    floor = 1 / (rate * math.sqrt(n_train))
    assert out["std"][-1, 0] > floor - K_SIGMA * out["std_stderr"][-1, 0]
    truth = run.outputs["truth"]
    assert_within(
        truth["std"][:, 0], truth["std_stderr"][:, 0], 1 / (rate * np.sqrt(sizes))
    )


def test_exponential_mle_estimator_exact_variance(key):
    """MLE of the rate on generated events, exact finite-sample variance.

    λ̂ = 1/x̄ with x̄ ~ Gamma(N, Nλ): E[λ̂] = Nλ/(N-1), E[λ̂²] = N²λ²/((N-1)(N-2)).
    Chained through the fitted λ̂_train (n events), Var(λ̂_gen) follows in closed form.
    """
    rate, n_train, n_gen = 1.5, 40, (20, 2000)
    theta = {"rate": np.float32(rate)}
    estimator = MaximumLikelihood(
        Exponential(), theta, ("rate",), use_closed_form=False
    )
    chain = Chain(
        Exponential(),
        theta,
        IdealFit(Exponential(), theta, ("rate",), use_closed_form=False),
        estimator,
        n_train,
        n_gen,
    )
    run = run_chain(chain, key, 6000, progress=False)
    n = n_train
    first_train, second_train = n * rate / (n - 1), n**2 * rate**2 / ((n - 1) * (n - 2))
    sizes = np.asarray(n_gen, np.float64)
    second = sizes**2 / ((sizes - 1) * (sizes - 2)) * second_train
    first = sizes / (sizes - 1) * first_train
    out = run.outputs["surrogate"]
    assert out["failures"].sum() == 0
    assert_within(out["std"][:, 0], out["std_stderr"][:, 0], np.sqrt(second - first**2))
    truth_var = sizes**2 * rate**2 / ((sizes - 1) ** 2 * (sizes - 2))
    assert_within(
        run.outputs["truth"]["std"][:, 0],
        run.outputs["truth"]["std_stderr"][:, 0],
        np.sqrt(truth_var),
    )


def test_user_model_through_the_engine(key):
    """A model given as two functions only: log x ~ N(m, s²). The ideal surrogate fits
    (m, s) by generic Newton from the reference point; the MLE of m on generated events
    behaves like the Gaussian toy: Var = s²/n + s²(n-1)/n / n_gen."""

    def sample(k, theta, n):
        return jnp.exp(
            theta["m"] + theta["s"] * jax.random.normal(k, (n,), theta["m"].dtype)
        )

    def log_prob(x, theta):
        z = (jnp.log(x) - theta["m"]) / theta["s"]
        return -0.5 * z * z - jnp.log(theta["s"] * x) - 0.5 * math.log(2 * math.pi)

    model = model_from_functions(sample, log_prob)
    theta = {"m": np.float32(0.2), "s": np.float32(0.5)}
    surrogate = IdealFit(model, theta, ("m", "s"))
    estimator = MaximumLikelihood(model, theta, ("m",))
    n_train, n_gen = 30, (10, 1000)
    chain = Chain(model, theta, surrogate, estimator, n_train, n_gen)
    run = run_chain(chain, key, 4000, progress=False)
    out = run.outputs["surrogate"]
    assert out["failures"].sum() == 0 and run.outputs["fit"]["failures"].sum() == 0
    sizes = np.asarray(n_gen, np.float64)
    s = 0.5
    predicted = np.sqrt(s**2 / n_train + s**2 * (n_train - 1) / n_train / sizes)
    assert_within(out["std"][:, 0], out["std_stderr"][:, 0], predicted)


def test_failed_fits_are_counted_not_averaged(key):
    """A pseudo-experiment whose estimate fails is counted and left out, never NaN."""

    def pseudo_experiment(k):
        x = jax.random.normal(k)
        return {"value": Estimate(x[None], x > 0)}

    run = run_pseudo_experiments(pseudo_experiment, key, 3000, progress=False)
    out = run.outputs["value"]
    assert out["failures"][0] + out["count"][0] == 3000
    assert 1300 < out["failures"][0] < 1700
    # without a result code a failed estimate counts as "failed"
    assert out["failures_by_result"][Result.FAILED, 0] == out["failures"][0]
    assert out["mean"][0] > 0 and np.isfinite(out["std"][0])


def test_moment_merging_matches_numpy():
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, size=(5000, 3))
    blocks = values.reshape(5, 1000, 3)
    per_block = block_moments(blocks, np.ones_like(blocks, bool))
    merged = None
    for b in range(5):
        part = type(per_block)(*(f[b] for f in per_block))
        merged = part if merged is None else moments_merge(merged, part)
    summary = moments_summary(merged)
    np.testing.assert_allclose(summary["mean"], values.mean(0), rtol=1e-12)
    np.testing.assert_allclose(summary["std"], values.std(0, ddof=1), rtol=1e-12)
    central4 = ((values - values.mean(0)) ** 4).sum(0)
    np.testing.assert_allclose(merged.m4, central4, rtol=1e-10)


def test_std_stderr_is_calibrated(key):
    """The reported std_stderr matches the spread of std over independent replicas."""
    chain = gaussian_chain(n_gen=(50,))
    stds, errors = [], []
    for replica in range(12):
        run = run_chain(chain, jax.random.fold_in(key, replica), 2000, progress=False)
        stds.append(run.outputs["surrogate"]["std"][0, 0])
        errors.append(run.outputs["surrogate"]["std_stderr"][0, 0])
    observed = np.std(stds, ddof=1)
    # The sample std of 12 replicas has a relative standard error of 1/sqrt(22).
    assert abs(observed / np.mean(errors) - 1) < K_SIGMA / math.sqrt(2 * 11)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_train": 1}, "n_train: must be >= 2"),
        ({"n_train": 0}, "n_train: must be a positive integer"),
        ({"n_gen": ()}, "n_gen: must be a non-empty"),
        ({"n_gen": (10, 0)}, "n_gen: must be a positive integer"),
        ({"sigma": 0.0}, "'sigma' must be > 0"),
        ({"mu": float("nan")}, "must be finite"),
    ],
)
def test_chain_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gaussian_chain(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_pseudo": 0}, "n_pseudo: must be a positive"),
        ({"chunk_size": 0}, "chunk_size: must be a positive"),
    ],
)
def test_engine_rejects_bad_sizes(kwargs, message, key):
    options = {"n_pseudo": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        run_chain(
            gaussian_chain(n_gen=(5,)),
            key,
            options.pop("n_pseudo"),
            progress=False,
            **options,
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chunk_size": 0}, "chunk_size: must be a positive"),
        ({"chunk_size": 2.5}, "chunk_size: must be a positive"),
        ({"events_per_pseudo_experiment": -1}, "events_per_pseudo_experiment: "),
        ({"histogram_edges": [0.0, 1.0]}, "histogram_edges: must be a dict"),
        ({"histogram_edges": {"m": [1.0, 0.0]}}, "histogram_edges: .*increasing"),
        ({"devices": []}, "devices: must name at least one"),
        ({"description": 3}, "description: must be a string"),
        ({"config": ["a"]}, "config: must be a JSON-able dict"),
        ({"checkpoint_interval": -1.0}, "checkpoint_interval: must be >= 0"),
        ({"checkpoint_interval": float("nan")}, "checkpoint_interval: .*finite"),
        ({"checkpoint_interval": "often"}, "checkpoint_interval: must be a number"),
        ({"pseudo_range": (5, 5)}, "range: needs 0 <= START < STOP"),
        ({"pseudo_range": "ab"}, "range: must be a pair"),
        ({"partials": {}}, "partials: must be a PartialResults"),
        ({"merge": [{}]}, "parts: must be a sequence of PartialResults"),
        ({"merge": PartialResults()}, "parts: must be a sequence"),
        ({"memory_budget": "lots"}, "memory_budget: expected a size"),
    ],
)
def test_engine_options_reject_bad_values(options, message):
    with pytest.raises(InvalidArgument, match=message):
        EngineOptions(**options)


def _one_normal(key):
    return {"m": Estimate(jax.random.normal(key, (1,)), jnp.bool_(True))}


def test_engine_options_object_or_keywords(key):
    """``options=EngineOptions(...)`` and keywords are the same run; keywords
    next to ``options`` replace its fields (checked again); options are canonical
    once made."""
    options = EngineOptions(
        chunk_size=256, progress=False, histogram_edges={"m": [-1, 0, 1]}
    )
    assert options.histogram_edges["m"].dtype == np.float64
    assert EngineOptions(memory_budget="1MiB").memory_budget == 2**20
    by_keywords = run_pseudo_experiments(
        _one_normal,
        key,
        600,
        chunk_size=256,
        progress=False,
        histogram_edges={"m": [-1, 0, 1]},
    )
    by_object = run_pseudo_experiments(_one_normal, key, 600, options=options)
    replaced = run_pseudo_experiments(
        _one_normal, key, 600, options=options, pseudo_range=(0, 300)
    )
    for field, value in by_keywords.outputs["m"].items():
        assert value.tobytes() == by_object.outputs["m"][field].tobytes(), field
    assert replaced.stats.pseudo_range == (0, 300)
    with pytest.raises(InvalidArgument, match="range"):
        run_pseudo_experiments(_one_normal, key, 600, options=options, pseudo_range=1)
    with pytest.raises(TypeError, match="chunksize"):
        run_pseudo_experiments(_one_normal, key, 600, chunksize=256)


def test_float64_run(x64, key):
    theta = {"mu": np.float64(0.0), "sigma": np.float64(1.0)}
    chain = Chain(
        Gaussian(),
        theta,
        IdealFit(Gaussian(), theta, ("mu", "sigma")),
        SampleMean(),
        100,
        (100,),
    )
    run = run_chain(chain, key, 5000, progress=False)
    out = run.outputs["surrogate"]
    assert_within(out["std"][:, 0], out["std_stderr"][:, 0], np.sqrt(0.01 + 0.99 / 100))


_DEVICE_SCRIPT = """
import sys
import jax
import numpy as np
import jaxunc.engine.run as engine_run
from jaxunc import Chain, Gaussian, IdealFit, SampleMean, run_chain
loaded = []
load = engine_run._load_on_device
engine_run._load_on_device = lambda c, d: loaded.append(load(c, d)) or loaded[-1]
theta = {"mu": np.float32(0), "sigma": np.float32(1)}
surrogate = IdealFit(Gaussian(), theta, ("mu", "sigma"))
chain = Chain(Gaussian(), theta, surrogate, SampleMean(), 100, (10, 50))
run = run_chain(chain, jax.random.key(1), 3000, chunk_size=1000, progress=False)
assert run.stats.device_count == len(jax.devices())
# Compiled once, every further device loading that binary instead of compiling;
# never a program read from the persistent cache (XLA cannot copy those).
assert len([e for e in loaded if e is not None]) == int(sys.argv[2]), loaded
fields = ("mean", "std", "std_stderr", "failures")
names = sorted(run.outputs)
values = [run.outputs[n][f].astype(np.float64) for n in names for f in fields]
np.save(sys.argv[1], np.concatenate([v.ravel() for v in values]))
"""


def test_identical_results_on_one_and_two_devices(tmp_path):
    """Chunks sharded over 2 (simulated host) devices give the same bits as 1.  The
    second device runs the first one's compiled program, loaded, not recompiled;
    when the first device's program comes from JAX's persistent cache (which XLA
    cannot copy to another device), the second compiles its own."""
    cache = tmp_path / "xla-cache"
    runs = [  # (devices, persistent cache folder or None, expected loads)
        (1, None, 0),
        (2, cache, 1),  # compile once (into the cache), load on device 1
        (2, cache, 0),  # device 0's program from the cache: compile for device 1
    ]
    results = []
    for index, (devices, cache_folder, loads) in enumerate(runs):
        env = dict(os.environ)
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        env.pop("JAX_NUM_CPU_DEVICES", None)  # the suite's default (conftest.py)
        env.pop("JAX_COMPILATION_CACHE_DIR", None)
        if cache_folder is not None:
            env["JAX_COMPILATION_CACHE_DIR"] = str(cache_folder)
        path = tmp_path / f"{index}.npy"
        subprocess.run(
            [sys.executable, "-c", _DEVICE_SCRIPT, str(path), str(loads)],
            env=env,
            check=True,
            timeout=300,
        )
        results.append(np.load(path).tobytes())
    assert results[0] == results[1] == results[2]


def test_compiled_program_loads_on_a_device_with_the_same_bits():
    """``_load_on_device`` gives an executable that computes the same bits as the
    compiled one; a program with a host callback cannot be serialised, and the
    engine is told so (None: it compiles for that device instead)."""
    from jaxunc.engine.run import _load_on_device

    device = jax.devices()[0]
    x = jax.device_put(jnp.linspace(-3.0, 3.0, 1001, dtype=jnp.float32), device)
    compiled = (
        jax.jit(lambda v: jnp.cumsum(jnp.tanh(v) * jnp.exp(v))).lower(x).compile()
    )
    loaded = _load_on_device(compiled, device)
    assert loaded is not None
    assert np.asarray(loaded(x)).tobytes() == np.asarray(compiled(x)).tobytes()

    def host(v):
        return np.sin(v)

    with_callback = jax.jit(
        lambda v: jax.pure_callback(host, jax.ShapeDtypeStruct(v.shape, v.dtype), v)
    )
    assert _load_on_device(with_callback.lower(x).compile(), device) is None
