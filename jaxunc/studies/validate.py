"""Validation study (paper 001 §2.2; paper 000 §5, §6): is a generated sample of
N_required events an adequate substitute for N_required true events?

For a model, a surrogate trained on ``n_train`` true events and each N_required,
over pseudo-experiments (a fresh training sample each):

* **Robustness horizon**: the χ² goodness of fit of N_required generated events
  against the truth (``bins`` quantile or equal-width bins), its p-value distribution,
  the rejection rate P(p < α), and the horizon, the N_required where the median p
  drops below α (equivalently the rejection rate crosses 1/2).  The same test on
  N_required *true* events is the control: no horizon, uniform p-values.
* **Amplification factor** (GANplify): the quantile MSE of the generated sample in
  N_q true-quantile bins, N_equiv = the true-event count with the same expected MSE
  (closed form), and N_equiv / n_train against N_gen (= N_required) and N_q.
* **Three-step protocol** (§6), per pseudo-experiment: (1) predict the uncertainty of
  the generated histogram (N_gen = ``protocol_n_gen`` events, bins at the training
  sample's quantiles) without the truth, from the spread of ``replicas`` surrogates
  trained on bootstrap replicas of the training sample; (2) validate it against the
  truth (variance ratio and χ² pulls); (3) compare with the training sample's own
  uncertainty and state whether an improvement was demonstrated.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxunc import random as fast_random
from jaxunc.engine import (
    ChainKeys,
    draw_chain,
    fit_and_generate,
    run_pseudo_experiments,
)
from jaxunc.engine.plan import MAX_PSEUDO_EXPERIMENTS
from jaxunc.errors import InvalidArgument
from jaxunc.estimators import Estimate
from jaxunc.models import check_params
from jaxunc.results import Result, result_counts
from jaxunc.studies.base import (
    FIGURE_DATA,
    K_SIGMA,
    MAX_SIZE,
    OMIT_NONE,
    Study,
    StudyResult,
    align,
    check_options,
    choice,
    figures_from,
    finite_float,
    model_name,
    positive_int,
    precision_option,
    runtime,
    seed_option,
    sizes,
    surrogate_name,
    theta_option,
)
from jaxunc.studies.registry import ModelSpec, make_surrogate, model_spec
from jaxunc.surrogates.base import fit_cost, required_train
from jaxunc.validation import (
    BINNINGS,
    Binning,
    bound_below_floor,
    chi2_sf,
    expected_quantile_mse,
    goodness_of_fit,
    histogram_quantiles,
    make_binning,
    quantile_mse,
    robustness_horizon,
)

__all__ = [
    "STUDY",
    "ValidateConfig",
    "ValidateResult",
    "run_validate",
    "table",
    "validate_surrogate",
]

P_VALUE_EDGES = np.concatenate(
    [[0.0], np.logspace(-30, -3, 271)[:-1], np.linspace(1e-3, 1.0, 1000)]
)
"""Bins of the p-value histograms: log-spaced below 10⁻³ (down to 10⁻³⁰), 10⁻³
wide above; p-value quantiles are interpolated linearly within these bins."""
P_VALUE_LEVELS = (0.05, 0.16, 0.5, 0.84, 0.95)
P_VALUE_FLOOR = float(P_VALUE_EDGES[1])
"""The p-value histograms' resolution: a quantile below it is reported as the bound
"< P_VALUE_FLOOR" (null in the JSON, flagged in ``p_value_below_floor``)."""


@dataclasses.dataclass(frozen=True)
class ValidateConfig:
    """Options of the validation study; validated on construction.

    ``model``/``surrogate`` are registry names (``jaxunc.studies.registry``); the
    library function ``validate`` takes objects instead.  ``alpha``: the test size;
    ``n_quantiles``: the quantile-bin counts of the amplification factor;
    ``theta``: true parameter values overriding the model's defaults (None: the
    defaults, the same in every command; ``--theta mu=1,sigma=2``), the θ used is
    in the JSON's ``config.theta``.
    ``n_reference``: reference events for models without a ``cdf``; ``replicas``,
    ``protocol_pseudo_experiments``, ``protocol_n_gen`` (default 10 × n_train): the
    three-step protocol.
    """

    model: str = model_name(
        "gaussian", help="the true model, from the registry or module:attribute"
    )
    surrogate: str = surrogate_name(
        "ideal", help="the surrogate, from the registry or module:attribute"
    )
    theta: Mapping[str, float] | None = theta_option()
    n_train: int = positive_int(
        100,
        minimum=2,
        why="(a training sample to learn from)",
        metavar="N",
        help="training events per surrogate",
    )
    n_required: tuple[int, ...] = sizes(
        (100, 1000, 10000, 100000),
        increasing=True,
        help="generated-sample sizes to test, increasing",
    )
    bins: int = positive_int(
        20, minimum=2, metavar="K", help="histogram bins of the chi2 test, >= 2"
    )
    binning: str = choice(
        "quantile", BINNINGS, help="true-quantile or equal-width bins"
    )
    pseudo_experiments: int = positive_int(
        1000,
        minimum=2,
        maximum=MAX_PSEUDO_EXPERIMENTS - 1,
        why="to measure a rate",
        metavar="P",
        help="pseudo-experiments (training samples)",
    )
    seed: int = seed_option()
    precision: str = precision_option()
    alpha: float = finite_float(
        0.05,
        open_unit=True,
        help="test size: the horizon is where the median p-value drops below it",
    )
    n_quantiles: tuple[int, ...] = sizes(
        (5, 10, 20, 50, 100),
        increasing=True,
        minimum=2,
        metavar="Q1,Q2,...",
        help="quantile-bin counts of the amplification factor",
    )
    n_reference: int = positive_int(2**20, cli=False)
    # 6 replicas, not 32: the protocol's ratios keep their standard errors (ideal
    # fit, Gaussian, 200 pseudo-experiments: step-2 ratio ± 0.046 at 6, ± 0.045 at
    # 8, ± 0.043 at 32, step-3 ratio ± 0.011 at all three; benchmarks/RESULTS.md)
    # while a trained surrogate's protocol trains 7 instead of 33 networks per
    # pseudo-experiment.
    replicas: int = positive_int(
        6,
        minimum=4,
        why="for a spread",
        metavar="B",
        help="bootstrap replicas of the protocol's uncertainty prediction",
    )
    # 128 pseudo-experiments, not 200: the protocol's verdicts stay decisive (ideal
    # fit, Gaussian, 6 replicas: step-2 ratio 1.04 ± 0.056 against 1.07 ± 0.046,
    # step-3 ratio 0.231 ± 0.014 against 0.234 ± 0.011) and a trained surrogate's
    # validation trains 1,896 networks instead of 2,400.
    protocol_pseudo_experiments: int = positive_int(
        128,
        minimum=2,
        metavar="P",
        help="pseudo-experiments of the three-step protocol",
    )
    protocol_n_gen: int | None = positive_int(
        None,
        optional=True,
        metavar="N",
        help="generated events of the protocol's histograms (default: 10 × n_train)",
    )

    def __post_init__(self) -> None:
        check_options(self)
        if self.theta is not None:
            self.spec()  # the θ override against the model (names, domain)
        if self.protocol_n_gen is None:
            object.__setattr__(self, "protocol_n_gen", 10 * self.n_train)
        if self.bins > self.n_train:
            raise InvalidArgument(
                "bins",
                f"must be <= n_train ({self.n_train}) for the protocol's "
                f"training-quantile bins (got {self.bins})",
            )
        if self.fine_levels() > MAX_SIZE:
            with_bins = " and of --bins" if self.binning == "quantile" else ""
            raise InvalidArgument(
                "n_quantiles",
                f"the quantile-bin counts share a fine grid of {self.fine_levels():,} "
                f"bins (their least common multiple{with_bins}), more than "
                f"{MAX_SIZE:,}: choose counts with a smaller common multiple (e.g. "
                "5,10,20,50,100)",
            )

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.precision)

    def spec(self) -> ModelSpec:
        """The registered (or ``module:attribute``) model at the study's θ: its
        defaults with ``theta`` applied (``InvalidArgument("theta")`` naming its
        parameters for an unknown name or a value outside its domain)."""
        return model_spec(self.model).at(self.theta)

    def fine_levels(self) -> int:
        """Quantile grid that every quantile binning of the study is a union of."""
        levels = math.lcm(*self.n_quantiles)
        if self.binning == "quantile":
            levels = math.lcm(levels, self.bins)
        return levels

    def not_at_defaults(self) -> dict[str, dict[str, Any]]:
        """``{option: {"value": ..., "default": ...}}`` for the options of the
        measurement that differ from the command's defaults (``model`` and
        ``surrogate`` are the subject, not a setting, and are left out)."""
        defaults = ValidateConfig()
        out = {}
        for field in dataclasses.fields(self):
            if field.name in ("model", "surrogate"):
                continue
            value, default = getattr(self, field.name), getattr(defaults, field.name)
            if field.name == "protocol_n_gen":
                default = 10 * self.n_train
            if value != default:
                out[field.name] = {"value": value, "default": default}
        return out

    def to_json(self) -> dict[str, Any]:
        config = dataclasses.asdict(self)
        config["n_required"] = list(self.n_required)
        config["n_quantiles"] = list(self.n_quantiles)
        return config


@dataclasses.dataclass
class ValidateResult(StudyResult):
    """Everything the validation study measured; ``to_json()`` gives
    ``validate.json`` (keys as documented in the README).

    ``config``: the options; ``details``: what the run resolved (labels, θ, where
    bins and expected counts came from, conventions), written into the JSON's
    ``config`` beside the options.  The surrogate's χ² summaries per N_required
    (``p_value_median`` ... ``failures``), the horizon, ``truth`` (the control),
    ``amplification``, ``protocol`` (None when not run) and ``runtime``.
    ``histograms``: one surrogate's example histograms for the figures (None
    without figure data; not in the JSON).
    """

    config: ValidateConfig
    details: dict[str, Any]
    n_required: list[int]
    p_value_median: list[float]
    p_value_quantiles: dict[str, list[float]]
    p_value_histogram: list[list[float]]
    rejection_rate: list[float]
    rejection_rate_stderr: list[float]
    chi2_mean: list[float]
    chi2_mean_stderr: list[float]
    failures: list[int]
    horizon: float | None
    horizon_stderr: float | None
    horizon_status: str
    min_expected_count: list[float]
    horizon_bracket: list[int] | None
    truth: dict[str, Any]
    amplification: dict[str, Any]
    protocol: dict[str, Any] | None
    runtime: dict[str, Any]
    failures_by_result: dict[str, Any] | None = dataclasses.field(
        default=None, metadata=OMIT_NONE
    )
    p_value_floor: float | None = dataclasses.field(default=None, metadata=OMIT_NONE)
    p_value_below_floor: dict[str, list[bool]] | None = dataclasses.field(
        default=None, metadata=OMIT_NONE
    )
    histograms: dict[str, Any] | None = dataclasses.field(
        default=None, metadata=FIGURE_DATA
    )

    def to_json(self) -> dict[str, Any]:
        payload = super().to_json()
        details = payload.pop("details")
        payload["config"] = {**payload["config"], **details}
        return payload


# ----------------------------------------------------------------- binning on a grid


def _fine_binning(model, theta, config, key) -> tuple[Binning, Binning]:
    """The χ² binning and the fine quantile grid the amplification sets add up from."""
    chi2 = make_binning(
        model,
        theta,
        config.bins,
        config.binning,
        key=key,
        n_reference=config.n_reference,
    )
    fine = make_binning(
        model,
        theta,
        config.fine_levels(),
        "quantile",
        key=key,
        n_reference=config.n_reference,
    )
    return chi2, fine


def _aggregation(fine: int, coarse: int) -> np.ndarray:
    """(fine, coarse) 0/1 matrix summing consecutive fine quantile bins."""
    matrix = np.zeros((fine, coarse))
    matrix[np.arange(fine), np.arange(fine) * coarse // fine] = 1
    return matrix


def _counter(edges: np.ndarray, dtype: Any):
    interior = jnp.asarray(edges[1:-1], dtype)
    method = "compare_all" if len(interior) <= 32 else "scan"
    k = len(edges) - 1

    def count(x: jax.Array) -> jax.Array:
        index = jnp.searchsorted(interior, x, side="right", method=method)
        return jnp.zeros(k, dtype).at[index].add(jnp.ones_like(x))

    return count


# ---------------------------------------------------------------------- the study


def _resolve_engine_options(engine_options: Mapping[str, Any] | None) -> dict:
    options = dict(engine_options or {})
    if "description" in options:
        raise InvalidArgument(
            "engine_options", "must not set description (each run names itself)"
        )
    return options


def _chain_keys(key: jax.Array, truth: bool) -> ChainKeys:
    """The study's key schedule of one chain draw: ``fast_random.split(key, 4)`` ->
    training sample, fit, generated sample, true sample (``split(key, 3)``, no true
    sample, when ``truth`` is False)."""
    keys = fast_random.split(key, 4 if truth else 3)
    return ChainKeys(keys[0], keys[1], (keys[2],), (keys[3],) if truth else ())


def horizon_events(config: ValidateConfig, surrogate: Any) -> int:
    """Events of one pseudo-experiment of the χ² and quantile part, for the engine's
    step sizing: the training sample, one training (its ``fit_cost``: a trained
    surrogate's work counts as events, so it runs in smaller vectorised steps and
    the progress bar moves), and ΣN_required generated and true events."""
    return config.n_train + fit_cost(surrogate) + 2 * sum(config.n_required)


def protocol_events(config: ValidateConfig, surrogate: Any) -> int:
    """Events of one pseudo-experiment of the three-step protocol: the training
    sample, and ``replicas + 1`` trainings (``fit_cost`` each; all of them one
    vmapped program) with ``protocol_n_gen`` generated events each."""
    return config.n_train + (config.replicas + 1) * (
        config.protocol_n_gen + fit_cost(surrogate)
    )


def _horizon_pseudo_experiment(model, theta, surrogate, config, chi2, fine, dtype):
    """One pseudo-experiment: a training sample, the fit, and for every N_required
    N generated and N true events, χ² p-values and quantile MSEs.

    All N_required samples of one source are disjoint slices of one draw of ΣN
    events (independent samples, one compiled sampler), binned by one scatter into
    (N_required, bins) counts.
    """
    sizes = config.n_required
    total = sum(sizes)
    segment = jnp.asarray(np.repeat(np.arange(len(sizes)), sizes), jnp.int32)
    fine_interior = jnp.asarray(fine.edges[1:-1], dtype)
    chi2_interior = jnp.asarray(chi2.edges[1:-1], dtype)
    same_grid = config.binning == "quantile"
    to_chi2 = jnp.asarray(_aggregation(fine.bins, config.bins), dtype)
    sets = [jnp.asarray(_aggregation(fine.bins, q), dtype) for q in config.n_quantiles]
    probabilities = [
        jnp.asarray(fine.probabilities @ _aggregation(fine.bins, q), dtype)
        for q in config.n_quantiles
    ]
    alpha = jnp.asarray(config.alpha, dtype)

    # Quantile bins cut at the model's quantile function at levels j/M: the bin of x
    # is floor(M F(x)) (the same bins up to float rounding at the edges), an
    # elementwise expression XLA fuses with the sampler, 5x faster than a search.
    cdf_index = fine.source == "cdf" and fine.edge_source == "quantile"

    def fine_index(x):
        if cdf_index:
            u = model.cdf(x, theta).astype(dtype)
            return jnp.clip(
                jnp.floor(u * fine.bins).astype(jnp.int32), 0, fine.bins - 1
            )
        return jnp.searchsorted(fine_interior, x, side="right", method="scan")

    def counts_per_size(x, index, bins):
        flat = segment * bins + index
        counts = jnp.zeros(len(sizes) * bins, dtype).at[flat].add(jnp.ones_like(x))
        return counts.reshape(len(sizes), bins)

    def count(x):
        fine_counts = counts_per_size(x, fine_index(x), fine.bins)
        counts = (
            fine_counts @ to_chi2
            if same_grid
            else counts_per_size(
                x,
                jnp.searchsorted(chi2_interior, x, side="right", method="compare_all"),
                chi2.bins,
            )
        )
        return fine_counts, counts

    def run(key):
        draw = draw_chain(
            model, surrogate, theta, config.n_train, (total,), _chain_keys(key, True)
        )
        samples = {
            "surrogate": (draw.generated[0], draw.fit_result),
            "truth": (draw.truth[0], jnp.int32(Result.SUCCESSFUL)),
        }
        fine_counts, counts = [], []
        for x, _ in samples.values():
            fine_c, chi2_c = count(x.astype(dtype))
            fine_counts.append(fine_c)
            counts.append(chi2_c)
        # One χ² test (one compiled gammaincc) for both sources: (2, sizes, bins).
        tests = goodness_of_fit(jnp.stack(counts), chi2)
        out = {}
        for i, (name, (_, code)) in enumerate(samples.items()):
            mse = jnp.stack(
                [
                    quantile_mse(fine_counts[i] @ a, p)
                    for a, p in zip(sets, probabilities, strict=True)
                ],
                axis=-1,
            )
            code = jnp.broadcast_to(code, (len(sizes),))
            flag = code == Result.SUCCESSFUL
            p = tests.p_value[i][:, None]
            out[f"p_{name}"] = Estimate(p, flag, code)
            out[f"reject_{name}"] = Estimate((p < alpha).astype(dtype), flag, code)
            out[f"chi2_{name}"] = Estimate(tests.statistic[i][:, None], flag, code)
            out[f"mse_{name}"] = Estimate(mse, flag, code)
        return out

    return run


def _protocol_pseudo_experiment(model, theta, surrogate, config, truth_cdf, dtype):
    """Steps 1-3 of §6 for one training sample (see the module docstring)."""
    k, n, b, n_gen = config.bins, config.n_train, config.replicas, config.protocol_n_gen
    positions = jnp.asarray(np.arange(1, k) * n // k, jnp.int32)

    def count(x, interior):
        index = jnp.searchsorted(interior, x, side="right", method="compare_all")
        return jnp.zeros(k, dtype).at[index].add(jnp.ones_like(x))

    def replica_fractions(fit_key, generate_key, data, interior):
        """One surrogate fitted to ``data``: bin fractions of its n_gen events and
        the fit's result code."""
        _, code, (x,) = fit_and_generate(
            surrogate, data, fit_key, (generate_key,), (n_gen,)
        )
        return count(x.astype(dtype), interior) / n_gen, code

    def run(key):
        k_train, k_boot, k_fit, k_gen = fast_random.split(key, 4)
        train = model.sample(k_train, theta, n)
        ordered = jnp.sort(train.astype(dtype))
        # Bins at the training sample's quantiles: chosen without the truth.
        interior = 0.5 * (ordered[positions - 1] + ordered[positions])
        f_train = count(train.astype(dtype), interior) / n
        # Row 0 is the training sample itself (the nominal surrogate); rows 1..B are
        # bootstrap replicas of it.
        index = jnp.concatenate(
            [
                jnp.arange(n, dtype=jnp.int32)[None],
                # floor(n U), not jax.random.randint: same law, far faster to compile
                jnp.minimum(
                    (fast_random.uniform(k_boot, (b, n), dtype) * n).astype(jnp.int32),
                    n - 1,
                ),
            ]
        )
        fractions, fit_codes = jax.vmap(replica_fractions, in_axes=(0, 0, 0, None))(
            fast_random.split(k_fit, b + 1),
            fast_random.split(k_gen, b + 1),
            train[index],
            interior,
        )
        f_gen, f_replicas = fractions[0], fractions[1:]
        predicted_var = jnp.var(f_replicas, axis=0, ddof=1)
        train_var = f_train * (1 - f_train) / n
        p_true = truth_cdf(interior)
        pulls = (f_gen - p_true) / jnp.sqrt(predicted_var)
        chi2 = jnp.sum(pulls**2)
        # The first failed fit among the replicas (the nominal one first); a zero
        # predicted variance makes the pulls infinite.
        failed = fit_codes != Result.SUCCESSFUL
        code = jnp.where(
            jnp.any(failed),
            fit_codes[jnp.argmax(failed)],
            jnp.where(
                jnp.all(predicted_var > 0),
                jnp.int32(Result.SUCCESSFUL),
                jnp.int32(Result.NONFINITE_VALUE),
            ),
        )
        ok = code == Result.SUCCESSFUL
        values = jnp.stack(
            [
                jnp.sum(predicted_var),  # 0: step 1, predicted Σσ²
                jnp.sum(train_var),  # 1: training-only predicted Σσ²
                jnp.sum((f_gen - p_true) ** 2),  # 2: step 2, actual Σ(f_gen - p)²
                jnp.sum((f_train - p_true) ** 2),  # 3: actual Σ(f_train - p)²
                chi2,  # 4: Σ pulls²
                chi2_sf(chi2, jnp.asarray(k - 1, dtype)),  # 5
            ]
        )
        return {
            "protocol": Estimate(values, ok, code),
            "pulls": Estimate(pulls, ok, code),
        }

    return run


def _truth_probabilities(model, theta, binning_reference, dtype):
    """interior edges (k−1,) -> true bin probabilities (k,): model cdf or reference."""
    if callable(getattr(model, "cdf", None)):

        def probabilities(interior):
            cdf = model.cdf(interior, theta).astype(dtype)
            return jnp.diff(
                jnp.concatenate([jnp.zeros(1, dtype), cdf, jnp.ones(1, dtype)])
            )

        return probabilities, "exact (model cdf)"
    reference = jnp.asarray(binning_reference, dtype)
    size = len(binning_reference)

    def probabilities(interior):
        below = jnp.searchsorted(reference, interior, side="right").astype(dtype)
        full = jnp.concatenate([jnp.zeros(1, dtype), below, jnp.full(1, size, dtype)])
        return jnp.diff(full) / size

    return probabilities, f"fractions of a reference sample of {size} events"


def _ratio(a: float, sa: float, b: float, sb: float) -> tuple[float, float]:
    """a/b and its error (independent errors, first order)."""
    value = a / b
    return value, abs(value) * math.hypot(sa / a if a else 0.0, sb / b)


def _summaries(out: dict, config: ValidateConfig, name: str) -> dict[str, Any]:
    p = out[f"p_{name}"]
    counts = p["histogram"][:, 0].astype(np.float64)
    counts[:, -1] += p["overflow"][:, 0]
    quantiles = histogram_quantiles(counts, P_VALUE_EDGES, P_VALUE_LEVELS)
    # below the histogram's first edge a quantile is only known as a bound: None
    # in the JSON, with its p_value_below_floor flag
    values, below = bound_below_floor(quantiles, P_VALUE_FLOOR)
    reject = out[f"reject_{name}"]
    chi2 = out[f"chi2_{name}"]
    horizon = robustness_horizon(
        config.n_required, reject["mean"][:, 0], reject["mean_stderr"][:, 0]
    )
    return {
        "p_value_median": [row[P_VALUE_LEVELS.index(0.5)] for row in values],
        "p_value_quantiles": {
            f"{level:g}": [row[i] for row in values]
            for i, level in enumerate(P_VALUE_LEVELS)
        },
        "p_value_floor": P_VALUE_FLOOR,
        "p_value_below_floor": {
            f"{level:g}": [row[i] for row in below]
            for i, level in enumerate(P_VALUE_LEVELS)
        },
        "p_value_histogram": counts.tolist(),
        "rejection_rate": reject["mean"][:, 0].tolist(),
        "rejection_rate_stderr": reject["mean_stderr"][:, 0].tolist(),
        "chi2_mean": chi2["mean"][:, 0].tolist(),
        "chi2_mean_stderr": chi2["mean_stderr"][:, 0].tolist(),
        "horizon": horizon,
        "failures": p["failures"][:, 0].tolist(),
        "failures_by_result": result_counts(p["failures_by_result"][:, :, 0]),
    }


def _amplification(out: dict, config: ValidateConfig) -> dict[str, Any]:
    mse = out["mse_surrogate"]
    truth = out["mse_truth"]
    q = np.asarray(config.n_quantiles, np.float64)
    n_gen = np.asarray(config.n_required, np.float64)[:, None]
    mean, stderr = mse["mean"], mse["mean_stderr"]
    n_equiv = (q - 1) / (q * q * mean)
    n_equiv_stderr = n_equiv * stderr / mean
    expected_truth = expected_quantile_mse(n_gen, q)
    return {
        "n_quantiles": list(config.n_quantiles),
        "n_gen": list(config.n_required),
        "mse": mean.tolist(),
        "mse_stderr": stderr.tolist(),
        "n_equiv": n_equiv.tolist(),
        "n_equiv_stderr": n_equiv_stderr.tolist(),
        "factor": (n_equiv / config.n_train).tolist(),
        "factor_stderr": (n_equiv_stderr / config.n_train).tolist(),
        "truth_mse": truth["mean"].tolist(),
        "truth_mse_stderr": truth["mean_stderr"].tolist(),
        "truth_mse_expected": expected_truth.tolist(),
        "convention": (
            "quantile MSE = mean over the N_q true-quantile bins of (f_j - p_j)^2; "
            "N_equiv = (N_q - 1)/(N_q^2 E[MSE]) (the exact expected MSE of N true "
            "events is (N_q - 1)/(N_q^2 N)); factor = N_equiv / n_train; rows: "
            "n_gen, columns: n_quantiles"
        ),
    }


def _protocol(out: dict, config: ValidateConfig, truth_source: str) -> dict[str, Any]:
    values = out["protocol"]
    mean, stderr = values["mean"], values["mean_stderr"]
    predicted, predicted_train = mean[0], mean[1]
    actual, actual_train = mean[2], mean[3]
    calibration, calibration_err = _ratio(actual, stderr[2], predicted, stderr[0])
    predicted_ratio, predicted_ratio_err = _ratio(
        predicted, stderr[0], predicted_train, stderr[1]
    )
    actual_ratio, actual_ratio_err = _ratio(actual, stderr[2], actual_train, stderr[3])
    b, k = config.replicas, config.bins
    chi2_expected = k * (b - 1) / (b - 3)
    validated = calibration <= 1 + K_SIGMA * calibration_err
    improved = actual_ratio + K_SIGMA * actual_ratio_err < 1 and predicted_ratio < 1
    if not validated:
        verdict = (
            "not validated: the generated histograms deviate from the truth by "
            f"{calibration:.2f} ± {calibration_err:.2f} times the predicted variance "
            "(the bootstrap-ensemble uncertainty is underestimated); no improvement "
            "can be claimed"
        )
    elif improved:
        verdict = (
            "improvement demonstrated: the predicted uncertainty is validated "
            f"(actual/predicted variance {calibration:.2f} ± {calibration_err:.2f}) "
            f"and the generated histogram's variance is {actual_ratio:.2f} ± "
            f"{actual_ratio_err:.2f} of the training histogram's (worth "
            f"{config.n_train / actual_ratio:.0f} training events) for this binned "
            "analysis"
        )
    else:
        verdict = (
            "no improvement demonstrated: the prediction is validated but the "
            f"generated histogram's variance is {actual_ratio:.2f} ± "
            f"{actual_ratio_err:.2f} of the training histogram's"
        )
    pulls = out["pulls"]
    return {
        "n_gen": config.protocol_n_gen,
        "replicas": b,
        "pseudo_experiments": config.protocol_pseudo_experiments,
        "bins": k,
        "binning": "quantiles of the training sample (no truth used)",
        "step1_predicted_variance": predicted,
        "step1_predicted_variance_stderr": stderr[0],
        "step1_method": (
            f"variance of the bin fractions of {config.protocol_n_gen} events from "
            f"each of {b} surrogates trained on bootstrap replicas of the training "
            "sample, summed over bins"
        ),
        "step2_actual_variance": actual,
        "step2_actual_variance_stderr": stderr[2],
        "step2_variance_ratio": calibration,
        "step2_variance_ratio_stderr": calibration_err,
        "step2_chi2_mean": mean[4],
        "step2_chi2_mean_stderr": stderr[4],
        "step2_chi2_expected_if_calibrated": chi2_expected,
        "step2_p_value_mean": mean[5],
        "step2_pull_mean": pulls["mean"].tolist(),
        "step2_pull_std": pulls["std"].tolist(),
        "step2_truth": truth_source,
        "step2_validated": bool(validated),
        "step3_training_variance_predicted": predicted_train,
        "step3_training_variance_actual": actual_train,
        "step3_training_variance_actual_stderr": stderr[3],
        "step3_predicted_ratio": predicted_ratio,
        "step3_predicted_ratio_stderr": predicted_ratio_err,
        "step3_actual_ratio": actual_ratio,
        "step3_actual_ratio_stderr": actual_ratio_err,
        "step3_improved": bool(improved),
        "verdict": verdict,
        "failures": int(values["failures"].max()),
        "failures_by_result": result_counts(values["failures_by_result"].max(axis=1)),
        "conventions": (
            "variances are of bin fractions summed over bins; step 2 validates when "
            f"actual/predicted variance <= 1 + {K_SIGMA:g} standard errors; step 3 "
            "demonstrates improvement when actual generated/training variance + "
            f"{K_SIGMA:g} standard errors < 1; chi2 = sum of pulls^2 with the "
            f"predicted errors, E[chi2] ~ k (B-1)/(B-3) = {chi2_expected:.2f} when "
            "calibrated (B bootstrap replicas)"
        ),
    }


def _example_histograms(model, theta, surrogate, config, chi2, key, dtype):
    """One training sample's surrogate: counts at each N_required for the figure
    (disjoint slices of one generated sample, one compiled call)."""
    sizes = config.n_required
    segment = jnp.asarray(np.repeat(np.arange(len(sizes)), sizes), jnp.int32)
    interior = jnp.asarray(chi2.edges[1:-1], dtype)

    @jax.jit
    def counts_and_p_values(key):
        draw = draw_chain(
            model,
            surrogate,
            theta,
            config.n_train,
            (sum(sizes),),
            _chain_keys(key, False),
        )
        x = draw.generated[0].astype(dtype)
        index = segment * chi2.bins + jnp.searchsorted(interior, x, side="right")
        counts = jnp.zeros(len(sizes) * chi2.bins, dtype).at[index].add(1)
        counts = counts.reshape(len(sizes), chi2.bins)
        return counts, goodness_of_fit(counts, chi2).p_value

    counts, p_values = counts_and_p_values(key)
    return {
        "n_required": list(sizes),
        "edges": chi2.display_edges(),
        "probabilities": chi2.probabilities,
        "counts": [np.asarray(c, np.float64) for c in counts],
        "p_values": np.asarray(p_values, np.float64).tolist(),
    }


def validate_surrogate(
    model: Any,
    theta: Mapping[str, Any],
    surrogate: Any,
    config: ValidateConfig | None = None,
    *,
    progress: bool = True,
    figures: bool = True,
    protocol: bool = True,
    engine_options: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> ValidateResult:
    """Run the validation study for any model and surrogate (see module docstring).

    Args:
      model: the true simulator (``sample``/``log_prob``; ``cdf``/``quantile``
        optional), scalar events.
      theta: its true parameters, any pytree the model accepts (a scalar too).
      surrogate: ``fit(key, data)``/``sample(key, params, n)``.
      config: the study options (``config.model``/``surrogate`` are only labels here).
      figures: also compute the example histograms of the figures.
      protocol: also run the three-step protocol (else ``protocol`` is None).
      engine_options: forwarded to every ``run_pseudo_experiments`` call.
      labels: optional ``{"model": ..., "surrogate": ...}`` for the result.
    """
    config = ValidateConfig() if config is None else config
    engine_options = _resolve_engine_options(engine_options)
    check_params(model, theta)
    minimum = required_train(surrogate)
    if config.n_train < minimum:
        raise InvalidArgument(
            "n_train",
            f"must be >= {minimum} to fit this surrogate (got {config.n_train})",
        )
    start = time.perf_counter()
    dtype = config.dtype
    # θ is any pytree (a scalar, an array, a dict, a NamedTuple).
    theta = jax.tree_util.tree_map(
        lambda v: jnp.asarray(v, dtype),
        dict(theta) if isinstance(theta, Mapping) else theta,
    )
    keys = jax.random.split(jax.random.key(config.seed), 4)
    chi2, fine = _fine_binning(model, theta, config, keys[0])
    horizon_run = run_pseudo_experiments(
        _horizon_pseudo_experiment(model, theta, surrogate, config, chi2, fine, dtype),
        keys[1],
        config.pseudo_experiments,
        events_per_pseudo_experiment=horizon_events(config, surrogate),
        histogram_edges={"p_surrogate": P_VALUE_EDGES, "p_truth": P_VALUE_EDGES},
        progress=progress,
        description="validate: chi2 and quantiles",
        **engine_options,
    )
    truth_cdf, truth_source = _truth_probabilities(model, theta, fine.reference, dtype)
    protocol_run = None
    if protocol:
        protocol_run = run_pseudo_experiments(
            _protocol_pseudo_experiment(
                model, theta, surrogate, config, truth_cdf, dtype
            ),
            keys[2],
            config.protocol_pseudo_experiments,
            events_per_pseudo_experiment=protocol_events(config, surrogate),
            progress=progress,
            description="validate: three-step protocol",
            **engine_options,
        )
    runs = [horizon_run] + ([protocol_run] if protocol_run is not None else [])
    out = horizon_run.outputs
    surrogate_summary = _summaries(out, config, "surrogate")
    truth_summary = _summaries(out, config, "truth")
    horizon = surrogate_summary.pop("horizon")
    truth_horizon = truth_summary.pop("horizon")
    data = {
        "n_required": list(config.n_required),
        **{k: v for k, v in surrogate_summary.items()},
        "horizon": horizon.value,
        "horizon_stderr": horizon.stderr,
        "horizon_status": horizon.status,
        # The χ² law of the p-values needs ~5 expected events per bin: below that the
        # truth's p-values are no longer uniform (see truth.rejection_rate).
        "min_expected_count": [
            float(n * chi2.probabilities.min()) for n in config.n_required
        ],
        "horizon_bracket": None if horizon.bracket is None else list(horizon.bracket),
        "truth": {
            **truth_summary,
            "horizon": truth_horizon.value,
            "horizon_status": truth_horizon.status,
        },
        "amplification": _amplification(out, config),
        "protocol": None
        if protocol_run is None
        else _protocol(protocol_run.outputs, config, truth_source),
        "runtime": runtime(
            time.perf_counter() - start,
            [r.stats for r in runs],
            precision=config.precision,
        ),
    }
    labels = dict(labels or {})
    extra = {
        "model_label": labels.get("model", type(model).__name__),
        "surrogate_label": labels.get("surrogate", type(surrogate).__name__),
        "theta": (
            {k: np.asarray(v).tolist() for k, v in theta.items()}
            if isinstance(theta, Mapping)
            else jax.tree_util.tree_map(lambda v: np.asarray(v).tolist(), theta)
        ),
        "binning_description": chi2.describe(),
        "expected_counts": (
            "exact bin probabilities from the model cdf (Pearson chi2)"
            if chi2.source == "cdf"
            else "two-sample chi2 against the reference sample"
        ),
        "p_value": "chi2 survival function with dof = bins - 1 (gammaincc)",
        "horizon_definition": (
            f"N_required where the median p-value drops below alpha = {config.alpha}, "
            "i.e. the rejection rate P(p < alpha) crosses 1/2; linear interpolation "
            "in log N between the bracketing grid points, stderr from their binomial "
            "errors (interpolation error not included)"
        ),
    }
    figure_data = None
    if figures:
        figure_data = _example_histograms(
            model, theta, surrogate, config, chi2, keys[3], dtype
        )
    return ValidateResult(config, extra, **data, histograms=figure_data)


def run_validate(
    config: ValidateConfig,
    *,
    progress: bool = True,
    figures: bool = True,
    engine_options: Mapping[str, Any] | None = None,
) -> ValidateResult:
    """``validate`` for the registered ``config.model`` and ``config.surrogate``."""
    spec = config.spec()
    surrogate = make_surrogate(config.surrogate, spec)
    theta = {k: np.asarray(v, config.dtype) for k, v in spec.theta.items()}
    return validate_surrogate(
        spec.model,
        theta,
        surrogate,
        config,
        progress=progress,
        figures=figures,
        engine_options=engine_options,
        labels={"model": config.model, "surrogate": config.surrogate},
    )


# ----------------------------------------------------------------------- the study


def _format_horizon(value: float | None, stderr: float | None, status: str) -> str:
    if status == "found":
        return f"{value:.4g} ± {stderr:.2g}"
    return {"below_grid": "below the smallest N", "beyond_grid": "none in range"}[
        status
    ]


def _format_p(value: float | None, floor: float | None) -> str:
    """A p-value for the table; ``< floor`` when it is only known as a bound."""
    return f"< {floor:g}" if value is None else f"{value:.3f}"


def table(result: ValidateResult) -> str:
    """The command's summary: p-values and rejection rates per N_required against
    the truth's, the horizon, the amplification factors and the protocol's verdict."""
    truth = result.truth
    rows = [("N_required", "median p", "rejected", "truth median p", "truth rejected")]
    for i, n in enumerate(result.n_required):
        rows.append(
            (
                str(n),
                _format_p(result.p_value_median[i], result.p_value_floor),
                f"{result.rejection_rate[i]:.3f} ± "
                f"{result.rejection_rate_stderr[i]:.3f}",
                _format_p(truth["p_value_median"][i], truth.get("p_value_floor")),
                f"{truth['rejection_rate'][i]:.3f} ± "
                f"{truth['rejection_rate_stderr'][i]:.3f}",
            )
        )
    lines = align(rows)
    lines.append(
        f"robustness horizon (median p < {result.config.alpha}): "
        + _format_horizon(result.horizon, result.horizon_stderr, result.horizon_status)
        + f"; truth: {_format_horizon(None, None, truth['horizon_status'])}"
    )
    amplification = result.amplification
    last = len(amplification["n_gen"]) - 1
    factors = ", ".join(
        f"{q}: {f:.3g} ± {e:.2g}"
        for q, f, e in zip(
            amplification["n_quantiles"],
            amplification["factor"][last],
            amplification["factor_stderr"][last],
            strict=True,
        )
    )
    lines.append(
        f"amplification N_equiv/n_train at N_gen = {amplification['n_gen'][last]} "
        f"(by N_quantiles) {factors}"
    )
    if result.protocol is not None:
        lines.append(f"protocol: {result.protocol['verdict']}")
    changed = result.config.not_at_defaults()
    if changed:
        lines.append(
            "not at the command's defaults: "
            + ", ".join(
                f"{name} {entry['value']} (default {entry['default']})"
                for name, entry in changed.items()
            )
        )
    rt = result.runtime
    lines.append(
        f"{rt['seconds']:.1f} s (compile {rt['compile_seconds']:.1f} s, "
        f"{rt['backend']} × {rt['device_count']})"
    )
    return "\n".join(lines)


def memory_needs(config: ValidateConfig) -> list[tuple[str, int, str]]:
    """The largest arrays outside the engine's chunks (``Study.memory``): the fine
    quantile grid (its edges and probabilities in float64, one aggregation matrix
    per quantile-bin count and for the χ² bins, and per pseudo-experiment its counts
    for every N_required), sized by the least common multiple of ``n_quantiles``
    (and of ``bins`` for quantile binning; named by ``n_quantiles``, the unusual
    one)."""
    item = config.dtype.itemsize
    columns = sum(config.n_quantiles) + config.bins

    def grid(levels: int) -> int:
        return levels * (3 * 8 + item * (columns + len(config.n_required)))

    levels = config.fine_levels()
    return [("n_quantiles", grid(levels), f"the fine quantile grid of {levels} bins")]


STUDY = Study(
    name="validate",
    help="is a generated sample of N_required events an adequate substitute? "
    "(chi2 horizon, amplification, three-step protocol)",
    description=(
        "Validation of a surrogate trained on n_train events (paper 001 §2.2, "
        "paper 000 §5-6): chi2 of N_required generated events against the truth "
        "and the robustness horizon, the quantile amplification factor, and the "
        "three-step protocol (predict, validate, demonstrate improvement)."
    ),
    config=ValidateConfig,
    run=run_validate,
    output="validate.json",
    table=table,
    memory=memory_needs,
    figures=figures_from("jaxunc.plots.validate"),
    figure_data=True,
    reproduce={
        "ideal": {"surrogate": "ideal"},
        # 1,536 GAN trainings instead of the default 1,896 (1000 + 128 x 7): the
        # protocol's bootstrap replicas train one GAN each, for every
        # pseudo-experiment.  The table's last line names these options.
        "gan": {
            "surrogate": "gan",
            "pseudo_experiments": 256,
            "replicas": 4,
            "protocol_pseudo_experiments": 256,
        },
    },
    # Seconds of each run in `jaxunc reproduce` (cold compile cache, 2-core AMD EPYC,
    # 2026-12-01): the overall time-left estimate.
    reproduce_seconds={"ideal": 22, "gan": 173},
    cpu_device_per_core=True,
)
