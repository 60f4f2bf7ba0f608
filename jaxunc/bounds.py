"""Lower bounds on the Fisher information of a generated dataset, for any surrogate.

For any statistic ("summary") f(D_gen) ∈ Rᵏ of the generated dataset,

    I_gen ⪰ Jᵀ C⁻¹ J,   J = ∂E_θ[f(D_gen)]/∂θ  (k × d),   C = Cov_θ f(D_gen)  (k × k),

(the Cramér–Rao bound for summaries: the Fisher information of f's Gaussian
approximation, as in information-maximising networks, never exceeds the information
in f, which never exceeds the information in D_gen).  This needs no density of the
surrogate, so it applies to a GAN.

J is computed two independent ways from the same simulations of the chain
θ → D_train → fit → D_gen (``jaxunc.engine.chain.draw_chain``, key schedule
``chain_keys(fold_in(key, m), 1)`` for simulation m):

* **score route**: J = E[(f − E f) s_trainᵀ], s_train = Σᵢ ∇_θ log p(xᵢ|θ) over the
  training events (the Fisher identity: D_gen depends on θ only through D_train, so
  no derivative of the surrogate is needed).  Valid for every summary.
* **pathwise route**: J = E[∂f(D_gen(θ, ω))/∂θ] at fixed random numbers ω, by
  forward-mode differentiation (``jax.jacfwd``: one tangent per component of θ) of the
  whole chain — the model's reparameterised sampler, the surrogate's training loop and
  its sampler.  Valid for summaries that are differentiable in the events
  (``Summary.smooth``) and models whose sampler is reparameterised
  (``model.reparameterized``, default True); otherwise it is not computed and the
  result says why.  Memory does not grow with the number of training steps
  (forward mode).

Estimators (host side, float64), for M simulations with per-simulation Jacobian terms
r_m (the pathwise ∂f_m/∂θ, or (f_m − f̄) s_mᵀ):

* C = sample covariance of f (ddof 1); its inverse is debiased by the Wishart factor
  (M − k − 2)/(M − 1) (Hartlap et al. 2007);
* JᵀAJ is estimated without the upward bias of noise in J by the U-statistic
  (1/(M(M−1))) Σ_{m≠m'} r_mᵀ A r_m' (pairs of distinct simulations only);
* standard errors by the delete-one-group jackknife over ``groups`` contiguous groups
  of simulations (the whole estimator, corrections included, recomputed per group).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxunc import random as fast_random
from jaxunc.engine.chain import chain_keys, check_sizes, draw_chain
from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.parameters import ravel_parameters
from jaxunc.results import RESULT_NAMES, Result, result_counts
from jaxunc.summation import pairwise_mean
from jaxunc.surrogates.base import check_surrogate, required_train

__all__ = [
    "ROUTES",
    "VERDICTS",
    "BoundEstimate",
    "BoundVerdict",
    "Summary",
    "SummaryBounds",
    "SummarySimulations",
    "ThetaDependent",
    "bootstrap_generated_fisher",
    "bound_verdict",
    "exponential_fit_generated_fisher",
    "gaussian_fit_generated_fisher",
    "generated_information_bounds",
    "generated_information_bounds_over_sizes",
    "learned_summary_bounds",
    "mean_summary",
    "mle_summary",
    "moments_summary",
    "quantile_summary",
    "rbf_features_summary",
    "select_best",
    "simulate_summaries",
    "simulate_summary_grid",
    "summary_bound",
    "summary_sensitivity",
]

ROUTES = ("pathwise", "score")
DEFAULT_GROUPS = 16
"""Jackknife groups: enough for a stable standard error, few enough that each group
holds many simulations."""


# ------------------------------------------------------------------------ summaries


@dataclasses.dataclass(frozen=True, eq=False)
class Summary:
    """A statistic of a generated dataset: ``function(x) -> (k,)`` for events
    ``x`` of shape ``(n, *event_shape)``.

    ``name``: label; ``names``: one label per component; ``smooth``: whether the
    function is differentiable in the events with a derivative that carries the
    information (True for moments and fits; False for bin counts, whose derivative is
    zero almost everywhere — the pathwise route does not apply to them).
    """

    name: str
    names: tuple[str, ...]
    function: Callable[[jax.Array], jax.Array]
    smooth: bool = True

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.asarray(self.function(x)).reshape(len(self.names))


def mean_summary() -> Summary:
    """The sample mean of scalar events, k = 1."""
    return Summary("mean", ("mean",), lambda x: pairwise_mean(x, axis=0).reshape(1))


def moments_summary() -> Summary:
    """The sample mean and variance (ddof 0) of scalar events, k = 2."""

    def function(x: jax.Array) -> jax.Array:
        mean = pairwise_mean(x, axis=0)
        return jnp.stack([mean, pairwise_mean((x - mean) ** 2, axis=0)])

    return Summary("mean_variance", ("mean", "variance"), function)


def mle_summary(model: Any, theta: Any, free: Sequence[str]) -> Summary:
    """The maximum-likelihood estimate of the ``free`` parameters of the true model
    family on D_gen (the other parameters fixed at ``theta``), k = len(free).  A fit
    that fails gives NaN, which the simulation counts as a failure."""
    from jaxunc.estimators import MaximumLikelihood

    estimator = MaximumLikelihood(model, theta, tuple(free))

    def function(x: jax.Array) -> jax.Array:
        estimate = estimator.estimate(x)
        return jnp.where(estimate.ok, estimate.value, jnp.nan)

    return Summary("mle", tuple(f"mle_{name}" for name in free), function)


def quantile_summary(model: Any, theta: Any, bins: int) -> Summary:
    """Fractions of the events in ``bins`` equal-probability bins of the true model
    at ``theta`` (cut at its quantiles, from ``model.cdf``), the last bin left out
    (the fractions sum to 1), k = bins − 1.  The Fisher information of this summary's
    Gaussian approximation is the binned Fisher information of the generated
    histogram.  Not smooth: score route only."""
    bins = check_positive_int("bins", bins, minimum=2)
    cdf = getattr(model, "cdf", None)
    if not callable(cdf):
        raise InvalidArgument(
            "summaries", "quantile bins need a model with cdf(x, theta)"
        )

    def function(x: jax.Array) -> jax.Array:
        u = cdf(jax.lax.stop_gradient(x), theta)
        index = jnp.clip(jnp.floor(u * bins).astype(jnp.int32), 0, bins - 1)
        counts = jnp.zeros(bins, x.dtype).at[index].add(1.0)
        return counts[:-1] / x.shape[0]

    names = tuple(f"bin_{j}" for j in range(bins - 1))
    return Summary(f"quantiles_{bins}", names, function, smooth=False)


# ---------------------------------------------------------------------- simulation


class SummarySimulations(NamedTuple):
    """Per-simulation outputs (host, float64), M simulations.

    ``values``: (M, k) the summary f(D_gen); ``jacobians``: (M, k, d) ∂f/∂θ at fixed
    random numbers (None without the pathwise route); ``scores``: (M, d) the training
    sample's score s_train; ``fit_results``: (M,) int32 result codes of the fits;
    ``params``: the names of θ's components (d).
    """

    values: np.ndarray
    jacobians: np.ndarray | None
    scores: np.ndarray
    fit_results: np.ndarray
    params: tuple[str, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class ThetaDependent:
    """A surrogate built from θ itself: ``build(theta) -> surrogate``.

    For surrogates that know part of the truth (e.g. an ideal fit with a known
    parameter that should follow θ) — and for deliberately leaky surrogates in
    tests, which break the chain's Markov property: the pathwise route
    differentiates through ``build``, the score route cannot see it.
    """

    build: Callable[[Any], Any]


def _select_params(names: tuple[str, ...], params: Sequence[str] | None) -> np.ndarray:
    """Indices into the flat θ of the components named in ``params`` (all: None)."""
    if params is None:
        return np.arange(len(names))
    if isinstance(params, str) or not params:
        raise InvalidArgument(
            "params", f"must be a non-empty sequence of names from {list(names)}"
        )
    unknown = [name for name in params if name not in names]
    if unknown:
        raise InvalidArgument(
            "params",
            f"must name components of theta from {list(names)} (got {list(params)})",
        )
    return np.asarray([names.index(name) for name in params])


def _batched_program(one: Callable, simulations: int, batch: int):
    """``(run, width, steps)``: ``run(root)`` is the jitted program evaluating
    ``one(fold_in(root, m))`` for m < steps·width, ``width`` at a time under vmap
    inside a ``lax.map`` over ``steps`` (outputs with leading axes (steps, width))."""
    width = min(batch, simulations)
    steps = -(-simulations // width)

    @jax.jit
    def run(root: jax.Array):
        numbers = jnp.arange(steps * width, dtype=jnp.uint32).reshape(steps, width)
        fold = jax.vmap(jax.vmap(fast_random.fold_in, in_axes=(None, 0)), (None, 0))
        return jax.lax.map(jax.vmap(one), fold(root, numbers))

    return run, width, steps


def simulate_summaries(
    model: Any,
    surrogate: Any,
    theta: Any,
    n_train: int,
    n_gen: int,
    summary: Summary,
    *,
    key: jax.Array,
    simulations: int,
    params: Sequence[str] | None = None,
    pathwise: bool = True,
    batch: int = 64,
) -> SummarySimulations:
    """Run ``simulations`` draws of the chain and record, per draw, the summary of
    D_gen, its pathwise Jacobian in θ (if ``pathwise`` and the summary is smooth;
    else ``jacobians`` is None) and the training score: ``simulate_summary_grid``
    for one size and one summary.

    ``params``: the components of θ (names from ``jaxunc.parameters``) to
    differentiate with respect to (default: all), d of them.  ``surrogate``: a
    surrogate, or a ``ThetaDependent`` built from θ inside the differentiated chain.
    Simulation m uses ``chain_keys(fold_in(key, m), 1, truth=False)``; simulations run
    ``batch`` at a time under ``vmap`` inside one compiled ``lax.map``, so the
    result does not depend on anything but ``key`` and the sizes (``batch`` only
    changes speed and memory).
    """
    n_gen = check_positive_int("n_gen", n_gen)
    (by_name,) = simulate_summary_grid(
        model,
        surrogate,
        theta,
        n_train,
        (n_gen,),
        [summary],
        key=key,
        simulations=simulations,
        params=params,
        pathwise=pathwise,
        batch=batch,
    )
    return by_name[summary.name]


# ---------------------------------------------------------------------- statistics


class BoundEstimate(NamedTuple):
    """Jᵀ C⁻¹ J for one summary and one route (float64).

    ``matrix``/``stderr``: (d, d) the bound and its jackknife standard error;
    ``jacobian``/``jacobian_stderr``: (k, d) J and the standard error of its mean;
    ``covariance``: (k, k) C; ``route``: ``"pathwise"`` or ``"score"``;
    ``simulations``: the simulations used (finite ones).
    """

    matrix: np.ndarray
    stderr: np.ndarray
    jacobian: np.ndarray
    jacobian_stderr: np.ndarray
    covariance: np.ndarray
    route: str
    simulations: int


def _jacobian_terms(
    values: np.ndarray, route_terms: np.ndarray | None, scores: np.ndarray
) -> np.ndarray:
    """Per-simulation terms r_m (M, k, d) whose mean is J."""
    if route_terms is not None:
        return route_terms
    centred = values - values.mean(axis=0)
    return centred[:, :, None] * scores[:, None, :]


def _bound(values: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """Bias-corrected Jᵀ C⁻¹ J from M simulations (module docstring)."""
    m, k = values.shape
    covariance = np.atleast_2d(np.cov(values, rowvar=False, ddof=1))
    precision = np.linalg.inv(covariance) * (m - k - 2) / (m - 1)
    total = terms.sum(axis=0)  # (k, d)
    all_pairs = total.T @ precision @ total
    diagonal = np.einsum("mki,kl,mlj->ij", terms, precision, terms)
    matrix = (all_pairs - diagonal) / (m * (m - 1))
    return 0.5 * (matrix + matrix.T)


def summary_bound(
    values: np.ndarray,
    scores: np.ndarray,
    jacobians: np.ndarray | None = None,
    *,
    groups: int = DEFAULT_GROUPS,
) -> BoundEstimate:
    """The bound Jᵀ C⁻¹ J with its jackknife standard error, from per-simulation
    summaries ``values`` (M, k), training scores ``scores`` (M, d) and, for the
    pathwise route, per-simulation Jacobians ``jacobians`` (M, k, d) (None: the
    score route).  Simulations with a non-finite summary are an error here (the
    caller decides what a failure means).

    Raises ``InvalidArgument`` (``simulations``) when there are too few simulations
    for a positive-definite covariance and a jackknife (M ≥ max(k + 4, 2·groups)).
    """
    values = np.asarray(values, np.float64)
    scores = np.asarray(scores, np.float64)
    m, k = values.shape
    if m < max(k + 4, 2 * groups):
        raise InvalidArgument(
            "simulations",
            f"need at least {max(k + 4, 2 * groups)} finite simulations for a "
            f"{k}-component summary (got {m})",
        )
    terms = _jacobian_terms(values, jacobians, scores)
    matrix = _bound(values, terms)
    edges = np.linspace(0, m, groups + 1).astype(int)
    replicates = []
    for g in range(groups):
        keep = np.ones(m, bool)
        keep[edges[g] : edges[g + 1]] = False
        kept_terms = _jacobian_terms(
            values[keep], None if jacobians is None else jacobians[keep], scores[keep]
        )
        replicates.append(_bound(values[keep], kept_terms))
    replicates = np.stack(replicates)
    stderr = np.sqrt(
        (groups - 1) / groups * ((replicates - replicates.mean(axis=0)) ** 2).sum(0)
    )
    return BoundEstimate(
        matrix=matrix,
        stderr=stderr,
        jacobian=terms.mean(axis=0),
        jacobian_stderr=terms.std(axis=0, ddof=1) / np.sqrt(m),
        covariance=np.atleast_2d(np.cov(values, rowvar=False, ddof=1)),
        route="score" if jacobians is None else "pathwise",
        simulations=m,
    )


def summary_sensitivity(
    model: Any,
    surrogate: Any,
    theta: Any,
    n_train: int,
    n_gen: int,
    summary: Summary | Callable[[jax.Array], jax.Array],
    *,
    key: jax.Array,
    simulations: int = 1024,
    params: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The pathwise sensitivity ∂E[f(D_gen)]/∂θ of any summary ``f`` a user writes
    (``x (n_gen, *event) -> (k,)``, differentiable in the events): ``(J, stderr)``,
    each ``(k, d)``, averaged over ``simulations`` chain draws at fixed random numbers
    (module docstring)."""
    if not isinstance(summary, Summary):
        probe = jax.eval_shape(
            summary, jax.ShapeDtypeStruct((n_gen,), jnp.result_type(float))
        )
        size = int(np.prod(probe.shape))
        summary = Summary("user", tuple(f"f{j}" for j in range(size)), summary)
    sims = simulate_summaries(
        model,
        surrogate,
        theta,
        n_train,
        n_gen,
        summary,
        key=key,
        simulations=simulations,
        params=params,
    )
    finite = np.all(np.isfinite(sims.jacobians), axis=(1, 2))
    jac = sims.jacobians[finite]
    return jac.mean(axis=0), jac.std(axis=0, ddof=1) / np.sqrt(len(jac))


# ----------------------------------------------------------------------- the bounds


class SummaryBounds(NamedTuple):
    """Every summary × route bound for one (n_train, n_gen), and the best one.

    ``bounds``: ``{summary name: {route: BoundEstimate or str}}`` (a string says why
    a route was not computed or could not be trusted), each from all the
    simulations; ``best``: the ``(summary, route)`` chosen as the best and
    ``best_estimate`` its bound as reported, free of selection bias
    (``select_best``): with several candidates the choice is made on the first
    half of the simulations and the bound computed on the other half, so
    ``best_estimate`` differs from ``bounds[summary][route]`` and has a larger
    standard error; with one candidate it is that bound.  ``params``: θ's
    component names; ``failures``: ``{summary: {result name: count}}`` of
    simulations left out (non-finite summary or failed fit).
    """

    bounds: dict[str, dict[str, Any]]
    best: tuple[str, str] | None
    params: tuple[str, ...]
    failures: dict[str, dict[str, int]]
    best_estimate: BoundEstimate | None = None


def _reparameterized(model: Any) -> bool:
    return bool(getattr(model, "reparameterized", True))


def generated_information_bounds(
    model: Any,
    surrogate: Any,
    theta: Any,
    n_train: int,
    n_gen: int,
    summaries: Sequence[Summary],
    *,
    key: jax.Array,
    simulations: int = 1024,
    params: Sequence[str] | None = None,
    target: int = 0,
    groups: int = DEFAULT_GROUPS,
    max_failure_fraction: float = 0.01,
) -> SummaryBounds:
    """Lower bounds Jᵀ C⁻¹ J on I_gen for every summary and route (module
    docstring), and the best bound on component ``target`` of θ.

    A summary whose simulations fail (non-finite value, failed fit) in more than
    ``max_failure_fraction`` of the draws gets no number: dropping them would bias
    the bound, so it is reported as undetermined with the counts by reason.
    """
    if not summaries:
        raise InvalidArgument("summaries", "must name at least one summary")
    bounds: dict[str, dict[str, Any]] = {}
    failures: dict[str, dict[str, int]] = {}
    names: tuple[str, ...] = ()
    candidates = []
    for index, summary in enumerate(summaries):
        pathwise = summary.smooth and _reparameterized(model)
        sims = simulate_summaries(
            model,
            surrogate,
            theta,
            n_train,
            n_gen,
            summary,
            key=jax.random.fold_in(key, index),
            simulations=simulations,
            params=params,
            pathwise=pathwise,
        )
        names = sims.params
        entry, failures[summary.name] = _summary_entry(
            summary, sims, _reparameterized(model), groups, max_failure_fraction
        )
        bounds[summary.name] = entry
        candidates.append((summary, sims))
    best, estimate = select_best(
        bounds,
        candidates,
        _reparameterized(model),
        target=target,
        groups=groups,
        max_failure_fraction=max_failure_fraction,
    )
    return SummaryBounds(bounds, best, names, failures, estimate)


def _summary_entry(
    summary: Summary,
    sims: SummarySimulations,
    reparameterized: bool,
    groups: int,
    max_failure_fraction: float,
) -> tuple[dict[str, Any], dict[str, int]]:
    """``({route: BoundEstimate or str}, failure counts)`` of one summary's
    simulations (see ``generated_information_bounds``).

    The counts are of the draws whose fit failed or whose summary or training
    score is not finite (both routes leave them out); the pathwise route also
    needs a finite Jacobian, and draws without one make only that route
    undetermined (said in its string)."""
    pathwise = summary.smooth and reparameterized and sims.jacobians is not None
    finite = np.all(np.isfinite(sims.values), axis=1) & np.all(
        np.isfinite(sims.scores), axis=1
    )
    codes = np.where(
        sims.fit_results != Result.SUCCESSFUL,
        sims.fit_results,
        np.where(finite, Result.SUCCESSFUL, Result.NONFINITE_VALUE),
    )
    counts = result_counts(np.bincount(codes, minlength=len(RESULT_NAMES)))
    entry: dict[str, Any] = {}
    for route in ROUTES:
        if route == "pathwise" and not pathwise:
            entry[route] = (
                "not computed: the summary is not differentiable in the events"
                if not summary.smooth
                else "not computed: the model's sampler is not reparameterised"
                if not reparameterized
                else "not computed: pathwise derivatives were not requested"
            )
            continue
        usable = codes == Result.SUCCESSFUL
        failed = 1.0 - usable.mean()
        if failed > max_failure_fraction:
            entry[route] = (
                f"undetermined: {failed:.1%} of the simulations failed ({counts})"
            )
            continue
        if route == "pathwise":
            jacobian_ok = np.all(np.isfinite(sims.jacobians), axis=(1, 2))
            usable = usable & jacobian_ok
            bad = 1.0 - usable.mean()
            if bad > max_failure_fraction:
                entry[route] = (
                    f"undetermined: the pathwise derivative is not finite in "
                    f"{np.mean(~jacobian_ok):.1%} of the simulations"
                )
                continue
        entry[route] = summary_bound(
            sims.values[usable],
            sims.scores[usable],
            None if route == "score" else sims.jacobians[usable],
            groups=groups,
        )
    return entry, counts


def _better(
    best: tuple[str, str] | None,
    best_value: float,
    name: str,
    entry: dict[str, Any],
    target: int,
) -> tuple[tuple[str, str] | None, float]:
    """The best ``(summary, route)`` so far, by the bound on ``target`` minus two
    standard errors, a summary by its pathwise route where computed
    (``SummaryBounds.best``)."""
    computed = {r: e for r, e in entry.items() if not isinstance(e, str)}
    if "pathwise" in computed:
        computed = {"pathwise": computed["pathwise"]}
    for route, estimate in computed.items():
        value = estimate.matrix[target, target] - 2 * estimate.stderr[target, target]
        if value > best_value:
            best, best_value = (name, route), value
    return best, best_value


def _half(sims: SummarySimulations, part: int) -> SummarySimulations:
    """The first (``part`` 0) or second (1) half of the simulations."""
    cut = len(sims.values) // 2
    piece = slice(0, cut) if part == 0 else slice(cut, None)
    return SummarySimulations(
        sims.values[piece],
        None if sims.jacobians is None else sims.jacobians[piece],
        sims.scores[piece],
        sims.fit_results[piece],
        sims.params,
    )


def select_best(
    bounds: dict[str, dict[str, Any]],
    candidates: Sequence[tuple[Summary, SummarySimulations]],
    reparameterized: bool,
    *,
    target: int = 0,
    groups: int = DEFAULT_GROUPS,
    max_failure_fraction: float = 0.01,
) -> tuple[tuple[str, str] | None, BoundEstimate | None]:
    """The best summary and route, and its bound without selection bias:
    ``((summary, route), BoundEstimate)`` or ``(None, None)``.

    The best is the largest bound on component ``target`` minus two standard
    errors, a summary by its pathwise route where computed (``_better``).  Taking
    the largest of several noisy bounds (each unbiased) is biased upwards, so
    with more than one candidate in ``bounds`` (the bounds from all simulations)
    the choice is made on the first half of each candidate's simulations
    (``candidates``: the summaries with their simulations) and the reported bound
    is computed on the second half alone: unbiased for the chosen summary's
    bound, hence at most the best bound in expectation, at the price of a
    standard error about √2 larger (and ``groups`` reduced to fit the half).
    With one candidate there is no choice and its bound from all simulations is
    returned.  ``(None, None)`` when no bound was computed, or when the held-out
    half gives none (e.g. too many of its simulations failed).
    """
    names = [
        name
        for name, entry in bounds.items()
        if any(not isinstance(e, str) for e in entry.values())
    ]
    if not names:
        return None, None
    if len(names) == 1:
        best, _ = _better(None, -np.inf, names[0], bounds[names[0]], target)
        return best, bounds[best[0]][best[1]]
    halves = []
    for part in (0, 1):
        by_name = {}
        for summary, sims in candidates:
            if summary.name not in names:
                continue
            half = _half(sims, part)
            shared = max(2, min(groups, len(half.values) // 2))
            by_name[summary.name] = (summary, half, shared)
        halves.append(by_name)
    best, best_value = None, -np.inf
    for name, (summary, half, shared) in halves[0].items():
        try:
            entry, _ = _summary_entry(
                summary, half, reparameterized, shared, max_failure_fraction
            )
        except InvalidArgument:  # too few simulations in the half
            continue
        best, best_value = _better(best, best_value, name, entry, target)
    if best is None:
        return None, None
    summary, half, shared = halves[1][best[0]]
    try:
        entry, _ = _summary_entry(
            summary, half, reparameterized, shared, max_failure_fraction
        )
    except InvalidArgument:
        return None, None
    estimate = entry.get(best[1])
    if estimate is None or isinstance(estimate, str):
        return None, None
    return best, estimate


# ------------------------------------------------- several sizes, one training each

GRID_EVENTS = 1 << 21
"""Generated events per vmapped step of ``simulate_summary_grid`` (with their
tangents), which sets the default ``batch``: memory, not results."""


def simulate_summary_grid(
    model: Any,
    surrogate: Any,
    theta: Any,
    n_train: int,
    n_gen: Sequence[int],
    summaries: Sequence[Summary],
    *,
    key: jax.Array,
    simulations: int,
    params: Sequence[str] | None = None,
    pathwise: bool = True,
    batch: int | None = None,
) -> list[dict[str, SummarySimulations]]:
    """``simulate_summaries`` for several generated-sample sizes and summaries at
    once: each of the ``simulations`` chain draws trains its surrogate once and
    generates one sample per size in ``n_gen`` from it (``draw_chain`` with
    ``chain_keys(fold_in(key, m), len(n_gen), truth=False)`` for draw m), and every
    summary is evaluated on every sample.  One compiled program; the pathwise
    Jacobians of all smooth summaries come from one forward-mode pass through the
    training (``jax.jacfwd``, one tangent per component of θ).

    Returns one ``{summary name: SummarySimulations}`` per size (aligned with
    ``n_gen``); the draws are shared, so the summaries' bounds are correlated (each
    is still a valid bound).  ``batch``: draws per vmapped step (default: as many
    as keep ``GRID_EVENTS`` generated events per step, at most 64); it changes
    speed and memory only.
    """
    dependent = isinstance(surrogate, ThetaDependent)
    if not dependent:
        check_surrogate(surrogate)
    if not summaries:
        raise InvalidArgument("summaries", "must name at least one summary")
    names_ = [summary.name for summary in summaries]
    if len(set(names_)) != len(names_):
        raise InvalidArgument("summaries", f"names must differ (got {names_})")
    n_train, sizes = check_sizes(n_train, n_gen)
    simulations = check_positive_int("simulations", simulations, minimum=2)
    if batch is None:
        batch = max(1, min(64, GRID_EVENTS // sum(sizes)))
    batch = check_positive_int("batch", batch)
    flat0, unravel, names = ravel_parameters(theta)
    index = _select_params(names, params)
    minimum = required_train(surrogate.build(theta) if dependent else surrogate)
    if n_train < minimum:
        raise InvalidArgument(
            "n_train", f"must be >= {minimum} for this surrogate (got {n_train})"
        )
    sub0 = flat0[index]
    smooth = [pathwise and summary.smooth for summary in summaries]
    differentiate = any(smooth)

    def full(sub: jax.Array) -> Any:
        return unravel(flat0.at[index].set(sub))

    def one(sim_key: jax.Array):
        keys = chain_keys(sim_key, len(sizes), truth=False)

        def chain_summaries(sub: jax.Array):
            theta_ = full(sub)
            used = surrogate.build(theta_) if dependent else surrogate
            draw = draw_chain(model, used, theta_, n_train, sizes, keys)
            values = [[summary(x) for summary in summaries] for x in draw.generated]
            tangent = [
                values[j][i]
                for j in range(len(sizes))
                for i in range(len(summaries))
                if smooth[i]
            ]
            out = jnp.concatenate(tangent) if tangent else jnp.zeros((0,), sub.dtype)
            return out, (values, draw.train, draw.fit_result)

        if differentiate:
            jacobian, (values, train, code) = jax.jacfwd(chain_summaries, has_aux=True)(
                sub0
            )
        else:
            _, (values, train, code) = chain_summaries(sub0)
            jacobian = jnp.zeros((0, sub0.shape[0]), sub0.dtype)
        train = jax.lax.stop_gradient(train)
        score = jax.grad(lambda sub: jnp.sum(model.log_prob(train, full(sub))))(sub0)
        return values, jacobian, score, code

    run, width, steps = _batched_program(one, simulations, batch)
    values, jacobians, scores, codes = jax.device_get(run(key))

    def flat(a: Any) -> np.ndarray:
        return np.asarray(a).reshape(steps * width, *np.shape(a)[2:])[:simulations]

    scores = flat(scores).astype(np.float64)
    codes = flat(codes).astype(np.int32)
    jacobians = flat(jacobians).astype(np.float64)
    params_ = tuple(names[i] for i in index)
    out, row = [], 0
    for j in range(len(sizes)):
        entry = {}
        for i, summary in enumerate(summaries):
            k = len(summary.names)
            jacobian = None
            if smooth[i]:
                jacobian = jacobians[:, row : row + k]
                row += k
            entry[summary.name] = SummarySimulations(
                flat(values[j][i]).astype(np.float64), jacobian, scores, codes, params_
            )
        out.append(entry)
    return out


def _learned_entry(
    fit_set: SummarySimulations,
    evaluation: SummarySimulations,
    *,
    key: jax.Array,
    groups: int,
    max_failure_fraction: float,
    options: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, int], tuple[Summary, SummarySimulations]]:
    """The learned summary's ``{route: BoundEstimate or str}``, failure counts and
    ``(summary, simulations)`` (the head applied to the evaluation draws):
    the head (``_train_head``) regresses s_train on the features of ``fit_set``
    and is evaluated on the independent draws of ``evaluation``
    (``learned_summary_bounds``)."""
    usable = np.all(np.isfinite(fit_set.values), 1) & (fit_set.fit_results == 0)
    head = _train_head(
        fit_set.values[usable], fit_set.scores[usable], key=key, **options
    )
    good = np.all(np.isfinite(evaluation.values), 1)
    inputs = jnp.asarray(np.where(good[:, None], evaluation.values, 0.0))
    values = np.array(head(inputs), np.float64)
    values[~good] = np.nan
    jacobians = None
    if evaluation.jacobians is not None:
        head_jacobian = np.asarray(jax.vmap(jax.jacfwd(head))(inputs), np.float64)
        jacobians = np.einsum("mdk,mkp->mdp", head_jacobian, evaluation.jacobians)
    learned = SummarySimulations(
        values, jacobians, evaluation.scores, evaluation.fit_results, evaluation.params
    )
    summary = Summary(
        "learned", tuple(f"learned_{name}" for name in evaluation.params), head
    )
    entry, counts = _summary_entry(
        summary, learned, jacobians is not None, groups, max_failure_fraction
    )
    return entry, counts, (summary, learned)


LEARNED_DEFAULTS = {
    "features": 16,
    "steps": 2000,
    "width": 32,
    "learning_rate": 3e-3,
    "weight_decay": 1e-4,
}
"""Options of the learned summary (``learned_summary_bounds``)."""


def generated_information_bounds_over_sizes(
    model: Any,
    surrogate: Any,
    theta: Any,
    n_train: int,
    n_gen: Sequence[int],
    summaries: Sequence[Summary],
    *,
    key: jax.Array,
    simulations: int = 1024,
    params: Sequence[str] | None = None,
    target: int = 0,
    groups: int = DEFAULT_GROUPS,
    max_failure_fraction: float = 0.01,
    learned: bool | dict[str, Any] = False,
    batch: int | None = None,
) -> list[SummaryBounds]:
    """``generated_information_bounds`` for every size in ``n_gen`` from one set of
    ``simulations`` chain draws (``simulate_summary_grid``: one surrogate training
    per draw for all sizes and summaries), one ``SummaryBounds`` per size.

    ``learned``: also the learned summary (``learned_summary_bounds``; a dict
    overrides ``LEARNED_DEFAULTS``): its features are evaluated on the same draws,
    and its head is fitted, per size, on a second, independent set of
    ``simulations`` draws (no tangents), so the bound stays honest.  Its cost: one
    more set of trainings.
    """
    if not summaries and not learned:
        raise InvalidArgument("summaries", "must name at least one summary")
    options = dict(LEARNED_DEFAULTS)
    if isinstance(learned, dict):
        unknown = sorted(set(learned) - set(options))
        if unknown:
            raise InvalidArgument(
                "learned", f"unknown options {unknown}; known: {sorted(options)}"
            )
        options.update(learned)
    reparameterized = _reparameterized(model)
    main_key, feature_key, fit_key, head_key = jax.random.split(key, 4)
    evaluated = list(summaries)
    features = None
    if learned:
        features = rbf_features_summary(
            model, theta, options.pop("features"), key=feature_key
        )
        evaluated.append(features)
    grid = simulate_summary_grid(
        model,
        surrogate,
        theta,
        n_train,
        n_gen,
        evaluated,
        key=main_key,
        simulations=simulations,
        params=params,
        pathwise=reparameterized,
        batch=batch,
    )
    fit_grid = None
    if features is not None:
        fit_grid = simulate_summary_grid(
            model,
            surrogate,
            theta,
            n_train,
            n_gen,
            [features],
            key=fit_key,
            simulations=simulations,
            params=params,
            pathwise=False,
            batch=batch,
        )
    results = []
    for j, sims in enumerate(grid):
        bounds: dict[str, dict[str, Any]] = {}
        failures: dict[str, dict[str, int]] = {}
        candidates = []
        names: tuple[str, ...] = ()
        for summary in summaries:
            names = sims[summary.name].params
            entry, failures[summary.name] = _summary_entry(
                summary,
                sims[summary.name],
                reparameterized,
                groups,
                max_failure_fraction,
            )
            bounds[summary.name] = entry
            candidates.append((summary, sims[summary.name]))
        if features is not None:
            names = sims[features.name].params
            entry, failures["learned"], learned_sims = _learned_entry(
                fit_grid[j][features.name],
                sims[features.name],
                key=jax.random.fold_in(head_key, j),
                groups=groups,
                max_failure_fraction=max_failure_fraction,
                options=options,
            )
            bounds["learned"] = entry
            candidates.append(learned_sims)
        best, estimate = select_best(
            bounds,
            candidates,
            reparameterized,
            target=target,
            groups=groups,
            max_failure_fraction=max_failure_fraction,
        )
        results.append(SummaryBounds(bounds, best, names, failures, estimate))
    return results


VERDICTS = ("holds", "violated", "undetermined")


class BoundVerdict(NamedTuple):
    """The check I_gen ≤ I_train seen from below: no lower bound on I_gen may exceed
    I_train.

    ``verdict``: ``"violated"`` when some bound exceeds I_train in Loewner order by
    more than ``k`` standard errors (then I_gen > I_train for certain); ``"holds"``
    when every computed bound is below I_train within ``k`` standard errors;
    ``"undetermined"`` when no bound could be computed.  ``margins``:
    ``{"summary/route": (margin, stderr)}``, the smallest eigenvalue of
    I_train − bound and its standard error (``jaxunc.information.loewner_check``).
    """

    verdict: str
    margins: dict[str, tuple[float, float]]


def bound_verdict(
    bounds: SummaryBounds,
    train: np.ndarray,
    train_stderr: np.ndarray,
    k: float = 3.0,
) -> BoundVerdict:
    """Compare every bound of ``bounds`` with I_train (``train``, ``train_stderr``:
    (d, d) over the same parameters) — see ``BoundVerdict``."""
    from jaxunc.information import loewner_check

    margins, violated = {}, False
    for name, routes in bounds.bounds.items():
        for route, estimate in routes.items():
            if isinstance(estimate, str):
                continue
            check = loewner_check(
                train, train_stderr, estimate.matrix, estimate.stderr, k=k
            )
            margins[f"{name}/{route}"] = (check.margin, check.margin_stderr)
            violated |= not check.holds
    if not margins:
        return BoundVerdict("undetermined", margins)
    return BoundVerdict("violated" if violated else "holds", margins)


# ----------------------------------------------------------------- learned summary


def rbf_features_summary(model: Any, theta: Any, features: int, *, key: jax.Array):
    """A smooth, permutation-invariant embedding of a scalar-event dataset: the mean
    over events of ``features`` Gaussian bumps centred at the true model's quantiles
    (levels (j + ½)/features, from a pilot sample of 2¹⁴ events at ``theta``), each
    as wide as 1.5 times the larger gap to its two neighbours, plus the mean
    and the second moment of the events.  k = features + 2.  The first layer of the
    learned summary (a deep set with a fixed first layer)."""
    features = check_positive_int("features", features, minimum=2)
    pilot = np.asarray(model.sample(key, theta, 1 << 14), np.float64)
    if pilot.ndim != 1:
        raise InvalidArgument("summaries", "the learned summary needs scalar events")
    centres = np.quantile(pilot, (np.arange(features) + 0.5) / features)
    gaps = np.maximum(np.diff(centres), 1e-12)
    widths = 1.5 * np.maximum(np.r_[gaps[0], gaps], np.r_[gaps, gaps[-1]])
    scale = max(float(np.std(pilot)), 1e-12)

    def function(x: jax.Array) -> jax.Array:
        c = jnp.asarray(centres, x.dtype)
        w = jnp.asarray(widths, x.dtype)
        bumps = jnp.exp(-0.5 * ((x[:, None] - c[None, :]) / w[None, :]) ** 2)
        moments = jnp.stack([x / scale, (x / scale) ** 2], axis=1)
        return pairwise_mean(jnp.concatenate([bumps, moments], axis=1), axis=0)

    names = (*(f"bump_{j}" for j in range(features)), "mean", "second_moment")
    return Summary("features", names, function)


def _train_head(
    inputs: np.ndarray,
    targets: np.ndarray,
    *,
    key: jax.Array,
    steps: int,
    width: int,
    learning_rate: float,
    weight_decay: float,
):
    """Fit ``head(inputs (..., k)) -> (..., d)`` to the targets: the least-squares
    linear map plus an MLP correction whose last layer starts at zero (so training
    starts from the linear regression), trained by full-batch AdamW on the squared
    error of 80 % of the rows; the parameters with the smallest error on the other
    20 % (checked every 50 steps) are kept, so the head is never worse than the
    linear regression on held-out data.  Inputs and targets are standardised with
    the fit set's moments; the head returns the targets' units."""
    import optax

    from jaxunc.surrogates._nn import apply_optimizer, init_mlp, mlp

    x_shift, x_scale = inputs.mean(0), inputs.std(0) + 1e-12
    y_shift, y_scale = targets.mean(0), targets.std(0) + 1e-12
    z = (inputs - x_shift) / x_scale
    y = (targets - y_shift) / y_scale
    cut = int(0.8 * len(z))
    design = np.c_[z[:cut], np.ones(cut)]
    linear = np.linalg.lstsq(design, y[:cut], rcond=None)[0]  # (k + 1, d)
    dtype = jnp.float32
    z_fit, y_fit = jnp.asarray(z[:cut], dtype), jnp.asarray(y[:cut], dtype)
    z_val, y_val = jnp.asarray(z[cut:], dtype), jnp.asarray(y[cut:], dtype)
    layers = init_mlp(key, (z.shape[1], width, width, y.shape[1]), dtype)
    layers[-1] = jax.tree_util.tree_map(jnp.zeros_like, layers[-1])
    params = {"linear": jnp.asarray(linear, dtype), "mlp": layers}
    optimizer = optax.adamw(learning_rate, weight_decay=weight_decay)

    def apply(params, z):
        w = params["linear"]
        return z @ w[:-1] + w[-1] + mlp(params["mlp"], z, jax.nn.gelu)

    def error(params, z, y):
        return jnp.mean((apply(params, z) - y) ** 2)

    check_every = 50

    @jax.jit
    def fit(params):
        def block(carry, _):
            def step(inner, _):
                params, state = inner
                grads = jax.grad(error)(params, z_fit, y_fit)
                return apply_optimizer(optimizer, grads, state, params), None

            params, state, best, best_error = carry
            (params, state), _ = jax.lax.scan(
                step, (params, state), None, length=check_every
            )
            held_out = error(params, z_val, y_val)
            better = held_out < best_error
            best = jax.tree_util.tree_map(
                lambda new, old: jnp.where(better, new, old), params, best
            )
            return (params, state, best, jnp.minimum(held_out, best_error)), None

        start = (params, optimizer.init(params), params, error(params, z_val, y_val))
        (_, _, best, _), _ = jax.lax.scan(
            block, start, None, length=max(steps // check_every, 1)
        )
        return best

    best = jax.device_get(fit(params))

    def head(features: jax.Array) -> jax.Array:
        dtype = features.dtype
        cast = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), best)
        scaled = (features - jnp.asarray(x_shift, dtype)) / jnp.asarray(x_scale, dtype)
        out = apply(cast, scaled)
        return out * jnp.asarray(y_scale, dtype) + jnp.asarray(y_shift, dtype)

    return head


def learned_summary_bounds(
    model: Any,
    surrogate: Any,
    theta: Any,
    n_train: int,
    n_gen: int,
    *,
    key: jax.Array,
    simulations: int = 1024,
    params: Sequence[str] | None = None,
    features: int = 16,
    steps: int = 2000,
    width: int = 32,
    learning_rate: float = 3e-3,
    weight_decay: float = 1e-4,
    max_failure_fraction: float = 0.01,
) -> dict[str, BoundEstimate | str]:
    """Bounds from a learned summary: a small permutation-invariant network
    (``rbf_features_summary`` pooled over the events, then a linear-plus-MLP head
    trained with optax, see ``_train_head``) regresses the training score s_train on
    D_gen.  Its ideal is
    E[s_train | D_gen], the score of D_gen itself (Fisher identity), whose bound is
    I_gen; any other head gives a valid, smaller bound.

    The head is fitted on ``simulations`` draws and the bound evaluated on another
    ``simulations`` independent draws, so fitting noise cannot inflate it.  Returns
    ``{route: BoundEstimate or str}`` (pathwise by the chain rule through the head;
    a string says why a route has no number, e.g. more than
    ``max_failure_fraction`` of the draws failed).
    """
    feature_key, fit_key, head_key, eval_key = jax.random.split(key, 4)
    summary = rbf_features_summary(model, theta, features, key=feature_key)

    def draws(draw_key: jax.Array, pathwise: bool) -> SummarySimulations:
        return simulate_summaries(
            model,
            surrogate,
            theta,
            n_train,
            n_gen,
            summary,
            key=draw_key,
            simulations=simulations,
            params=params,
            pathwise=pathwise,
        )

    entry, _, _ = _learned_entry(
        draws(fit_key, False),
        draws(eval_key, _reparameterized(model)),
        key=head_key,
        groups=DEFAULT_GROUPS,
        max_failure_fraction=max_failure_fraction,
        options={
            "steps": steps,
            "width": width,
            "learning_rate": learning_rate,
            "weight_decay": weight_decay,
        },
    )
    return entry


# --------------------------------------------------------------- exact references


def bootstrap_generated_fisher(sigma: float, n_train: int, n_gen: int) -> float:
    """Exact Fisher information about μ of N_gen bootstrap events resampled from
    n_train Gaussian events of known σ: the distinct training events in D_gen are
    K i.i.d. N(μ, σ²) events, with K independent of μ (the multiplicities are
    ancillary), so I_gen = E[K]/σ² = n(1 − (1 − 1/n)^N)/σ² — the expected number of
    distinct training events over σ²."""
    n, big_n = (
        check_positive_int("n_train", n_train),
        check_positive_int("n_gen", n_gen),
    )
    return n * -np.expm1(big_n * np.log1p(-1.0 / n)) / sigma**2


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Full linear convolution of two 1-D arrays by FFT."""
    size = len(a) + len(b) - 1
    fft_size = 1 << (size - 1).bit_length()
    product = np.fft.rfft(a, fft_size) * np.fft.rfft(b, fft_size)
    return np.fft.irfft(product, fft_size)[:size]


def exponential_fit_generated_fisher(
    rate: float, n_train: int, n_gen: int, grid: int = 1 << 16
) -> float:
    """Exact Fisher information about the rate λ of N_gen events generated by the
    ideal exponential fit λ̂ = n/Σx to n_train events, by one-dimensional quadrature.

    T = Σ x_gen is sufficient (given λ̂ the events are uniform on the simplex of
    their sum), and T = Y/λ with Y = G E/n, G ~ Gamma(n), E ~ Gamma(N) independent:
    a scale family, so I_gen = I_W/λ² with I_W the location Fisher information of
    W = log Y = log G + log E − log n, whose density h is the convolution of two
    log-gamma densities (f_a(v) = exp(a v − eᵛ)/Γ(a), f_a' = (a − eᵛ) f_a).
    I_W = ∫ h'²/h dw on a uniform grid of ``grid`` points (the convolution by FFT,
    h' = f_n' * f_N).  Tends to n/λ² (= I_train) as N → ∞.
    """
    n = check_positive_int("n_train", n_train)
    big_n = check_positive_int("n_gen", n_gen)

    def log_gamma_density(a: float, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        density = np.exp(a * v - np.exp(v) - math.lgamma(a))
        return density, (a - np.exp(v)) * density

    def support(a: float) -> tuple[float, float]:
        # log G for G ~ Gamma(a): mean ψ(a) ≈ log a, sd √ψ'(a) ≤ √(1/a + 1/a²)…
        spread = 12 * np.sqrt(1.0 / a + 1.0 / a**2) + 30.0 / (1 + a)
        return np.log(a) - spread, np.log(a) + spread

    lo_n, hi_n = support(n)
    lo_big, hi_big = support(big_n)
    step = max(hi_n - lo_n, hi_big - lo_big) / grid
    v_n = lo_n + step * np.arange(int((hi_n - lo_n) / step) + 1)
    v_big = lo_big + step * np.arange(int((hi_big - lo_big) / step) + 1)
    f_n, df_n = log_gamma_density(n, v_n)
    f_big, _ = log_gamma_density(big_n, v_big)
    h = _convolve(f_n, f_big) * step
    dh = _convolve(df_n, f_big) * step
    positive = h > 1e-300
    information = np.sum(dh[positive] ** 2 / h[positive]) * step
    return float(information / rate**2)


def _log_chi2_density(w: np.ndarray, dof: int, scale: float) -> np.ndarray:
    """Log density of W = log(Y/scale), Y ~ χ²_dof:
    (dof/2)(w + log scale) − scale·eʷ/2 − lgamma(dof/2) − (dof/2) log 2."""
    half = 0.5 * dof
    return (
        half * (w + math.log(scale))
        - 0.5 * scale * np.exp(w)
        - math.lgamma(half)
        - half * math.log(2.0)
    )


def _bisect(
    function: Callable, lo: np.ndarray, hi: np.ndarray, iterations: int = 64
) -> np.ndarray:
    """The sign change of ``function`` between ``lo`` and ``hi`` (elementwise,
    ``function(lo) > 0 ≥ function(hi)``; ``lo`` may be the larger), after
    ``iterations`` halvings of the bracket."""
    for _ in range(iterations):
        middle = 0.5 * (lo + hi)
        above = function(middle) > 0
        lo, hi = np.where(above, middle, lo), np.where(above, hi, middle)
    return 0.5 * (lo + hi)


FIT_QUADRATURE_DEPTH = 36.0
"""Log-density drop (nats) at which ``gaussian_fit_generated_fisher`` cuts its
integrals (e^−36 ≈ 2·10⁻¹⁶ of the peak)."""


def _gaussian_fit_quadrature(
    n_train: int, n_gen: int, ddof: int, resolution: float = 0.3
) -> tuple[float, float]:
    """``(σ²·I_gen, normalisation)`` of ``gaussian_fit_generated_fisher`` (σ = 1);
    the normalisation (the quadrature's total probability, 1 up to the
    discretisation error) is returned for tests.  ``resolution``: grid steps in
    units of the local widths (smaller is finer)."""
    n, big_n, depth = n_train, n_gen, FIT_QUADRATURE_DEPTH
    dof_a, scale_a = n - 1, float(n - ddof)

    def log_prior(a):  # a = log t, t = σ̂²/σ² ~ χ²_{n−1}/(n − ddof)
        return _log_chi2_density(a, dof_a, scale_a)

    def variance(a):  # Var(x̄_gen | σ̂) in units of σ²
        return 1.0 / n + np.exp(a) / big_n

    def drop(log_density, mode, side, width):
        """Where ``log_density`` falls ``depth`` below its value at ``mode`` on
        ``side`` (±1), within ``width``."""
        peak = log_density(mode)
        return _bisect(
            lambda a: log_density(a) - (peak - depth),
            mode,
            mode + side * width,
            iterations=32,
        )

    def location_information(z_shape, log_weight, a_lo, a_hi, size):
        """Σ over the outer points of e^{max log weight} Δa ∫ p'²/p dx for the
        scale mixture p(x) = Σ_a w(a) φ(x; v(a)) on a grid of ``size`` a-points
        from ``a_lo`` to ``a_hi`` (each of shape ``z_shape``): (information
        integrand, probability) per outer point."""
        fraction = np.linspace(0.0, 1.0, size)
        a = a_lo[:, None] + (a_hi - a_lo)[:, None] * fraction  # (z, K)
        step_a = (a_hi - a_lo) / (size - 1)
        logs = log_weight(a)
        top = logs.max(axis=1, keepdims=True)
        weights = np.exp(logs - top)
        weights[:, [0, -1]] *= 0.5
        v = variance(a)
        v_lo, v_hi = variance(a_lo), variance(a_hi)
        x_max = 12.0 * np.sqrt(v_hi)
        points = int(np.ceil(np.max(x_max / (resolution * np.sqrt(v_lo))))) + 1
        x = x_max[:, None] * np.linspace(0.0, 1.0, max(points, 64))  # (z, X)
        step_x = x[:, 1] - x[:, 0]
        phi = np.exp(-0.5 * x[:, None, :] ** 2 / v[:, :, None]) / np.sqrt(
            2 * np.pi * v[:, :, None]
        )  # (z, K, X)
        density = np.einsum("zk,zkx->zx", weights, phi)
        slope = x * np.einsum("zk,zkx->zx", weights / v, phi)
        ratio = np.where(density > 0, slope**2 / np.where(density > 0, density, 1), 0)
        ratio[:, -1] *= 0.5
        integral = 2.0 * ratio.sum(axis=1) * step_x  # ∫ over the whole line
        scale = np.exp(top[:, 0]) * step_a
        return scale * integral, scale * weights.sum(axis=1)

    def a_range(log_density, mode, width):
        return (
            drop(log_density, mode, -1, width),
            drop(log_density, mode, +1, width),
        )

    prior_mode = np.array([math.log(dof_a / scale_a)])
    prior_lo, prior_hi = a_range(log_prior, prior_mode, 4 * depth / dof_a + 20.0)
    sd_a = math.sqrt(2.0 / dof_a)
    if big_n == 1:  # S_gen ≡ 0: nothing to condition on, the prior mixes
        size = int(np.ceil((prior_hi - prior_lo)[0] / (resolution * sd_a))) + 1
        information, probability = location_information(
            (1,), log_prior, prior_lo, prior_hi, max(size, 64)
        )
        return float(information[0]), float(probability[0])

    dof_b = big_n - 1  # b = log(S_gen/σ̂²) ~ log χ²_{N−1}

    def log_noise(b):
        return _log_chi2_density(b, dof_b, 1.0)

    noise_mode = np.array([math.log(dof_b)])
    noise_lo, noise_hi = a_range(log_noise, noise_mode, 4 * depth / dof_b + 20.0)
    sd_b = math.sqrt(2.0 / dof_b)
    z_lo, z_hi = (prior_lo + noise_lo)[0], (prior_hi + noise_hi)[0]
    z_points = int(np.ceil((z_hi - z_lo) / (resolution * math.hypot(sd_a, sd_b))))
    z = np.linspace(z_lo, z_hi, max(z_points, 64) + 1)
    step_z = z[1] - z[0]

    # The posterior of a = log t given z = log(S_gen/σ²) = a + b is log-concave:
    # its mode solves L'(a) = (dof_a − scale_a eᵃ − dof_b + e^{z−a})/2 = 0.
    def log_posterior_at(zz):
        return lambda a: log_prior(a) + log_noise(zz - a)

    mode = _bisect(
        lambda a: dof_a - scale_a * np.exp(a) - dof_b + np.exp(z - a),
        np.full_like(z, min(prior_lo[0], z_lo - noise_hi[0]) - 1.0),
        np.full_like(z, max(prior_hi[0], z_hi - noise_lo[0]) + 1.0),
    )
    width = 4 * depth / min(dof_a, dof_b) + 20.0
    a_lo, a_hi = a_range(log_posterior_at(z), mode, width)
    curvature = 0.5 * (scale_a * np.exp(mode) + np.exp(z - mode))
    size = int(np.ceil(np.max((a_hi - a_lo) * np.sqrt(curvature)) / resolution)) + 1
    size = max(size, 64)
    information = probability = 0.0
    chunk = max(1, 4_000_000 // (size * 256))
    for start in range(0, len(z), chunk):
        part = slice(start, start + chunk)
        zz = z[part]
        values, masses = location_information(
            zz.shape,
            lambda a, zz=zz: log_prior(a) + log_noise(zz[:, None] - a),
            a_lo[part],
            a_hi[part],
            size,
        )
        ends = np.ones_like(zz)
        if start == 0:
            ends[0] = 0.5
        if start + chunk >= len(z):
            ends[-1] = 0.5
        information += float(np.sum(ends * values)) * step_z
        probability += float(np.sum(ends * masses)) * step_z
    return information, probability


def gaussian_fit_generated_fisher(
    sigma: float, n_train: int, n_gen: int, ddof: int = 0
) -> float:
    """Exact Fisher information about μ of N_gen events generated by the ideal
    mean-and-σ fit of a Gaussian N(μ, σ²) to n_train events (``IdealFit`` with
    ``free=("mu", "sigma")``; σ̂² = Σ(x − x̄)²/(n − ddof)), by nested quadrature
    in float64 NumPy.

    It is the μμ element of the generated data's 2 × 2 Fisher matrix in (μ, σ):
    the information about μ with σ known (not the μ-information with σ a nuisance
    parameter, the inverse of the (μ, μ) element of the inverse matrix).

    Derivation: μ̂ ~ N(μ, σ²/n) and σ̂² ~ σ²χ²_{n−1}/(n − ddof) are independent;
    given (μ̂, σ̂) the generated mean x̄_gen ~ N(μ̂, σ̂²/N) and the generated sum of
    squares S_gen ~ σ̂²χ²_{N−1} are independent and sufficient, so
    x̄_gen | σ̂ ~ N(μ, v), v = σ²/n + σ̂²/N, and S_gen does not depend on μ.  Hence
    p(x̄_gen | S_gen, μ) is a scale mixture of normals centred at μ with mixing
    density p(σ̂ | S_gen), and I_gen = E_{S_gen}[∫ (∂ₓp)²/p dx].  With t = σ̂²/σ²,
    a = log t and z = log(S_gen/σ²) = a + log χ²_{N−1}, this is
    ∫dz ∫dx [∫da q φ'_v]² / [∫da q φ_v], q(a, z) = p(a) p(z − a), each integral by
    the trapezoid rule on a uniform grid over where its log integrand is within
    ``FIT_QUADRATURE_DEPTH`` nats of its peak (the posterior of a given z is
    log-concave: its mode by bisection), steps of 0.3 local widths.  N = 1 has no
    S_gen: the prior mixes.

    Limits: 1/E[v] ≤ σ²·I_gen ≤ E[1/v] (a location family's information is at
    least its inverse variance; knowing σ̂ cannot lose information); → n/σ² as
    N → ∞ and → nN/(σ²(n + N)) (the mean-only fit) as n → ∞.  ``ddof`` 0 or 1;
    n_train ≥ 2.
    """
    n = check_positive_int("n_train", n_train, minimum=2)
    big_n = check_positive_int("n_gen", n_gen)
    if ddof not in (0, 1):
        raise InvalidArgument("ddof", f"must be 0 or 1 (got {ddof!r})")
    if not (math.isfinite(sigma) and sigma > 0):
        raise InvalidArgument("sigma", f"must be finite and > 0 (got {sigma!r})")
    information, _ = _gaussian_fit_quadrature(n, big_n, ddof)
    return information / sigma**2
