"""Fisher information of true and of generated data, by autodiff score functions.

Conventions (never mixed up, always labelled):

* ``score_outer_product``: the expected Fisher information E[s sᵀ], s = ∇_θ log p(x|θ);
* ``negative_hessian``: -E[∇²_θ log p(x|θ)] (equal to the above for regular models);
* ``exact``: a closed form the model provides (``exact_fisher(theta, params)``).

Every matrix is the information of ``n_events`` independent events (the per-event
information times ``n_events``), with respect to the parameters named in ``params``
(in that order), in the model's natural parametrisation.  Monte Carlo estimates carry a
standard error for every entry.

The information in a *generated* dataset D_gen (N_gen events from a surrogate fitted to
n_train true events), marginalised over the training randomness, follows from the
Fisher identity: the score of D_gen is the posterior expectation of the training-data
score, s_gen(D_gen) = E[s_train(D_train) | D_gen] (the identity behind eq. (3) of
paper 000).  ``generated_fisher_information`` estimates it by self-normalised importance
sampling over training-sample replicas; ``linear_gaussian_generated_fisher`` is the
exact answer for the mean-only ideal fit of a Gaussian, where D_gen is multivariate
normal.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxunc.models import check_params

__all__ = [
    "METHODS",
    "FisherInformation",
    "GeneratedFisherInformation",
    "LowEffectiveSampleSize",
    "exact_fisher_information",
    "fisher_information",
    "generated_fisher_information",
    "hessian_function",
    "information_from_spread",
    "linear_gaussian_generated_fisher",
    "score_function",
]

METHODS = ("score_outer_product", "negative_hessian")
_EVENTS_PER_STEP = 2**16


class LowEffectiveSampleSize(UserWarning):
    """Importance sampling had too few effective samples to trust its answer."""


class FisherInformation(NamedTuple):
    """A Fisher information matrix and what it is.

    ``matrix``/``stderr``: (d, d) float64 (stderr is zero for exact values);
    ``method``: one of ``METHODS`` or ``"exact"``;
    ``params``: parameter names, in order;
    ``n_events``: the number of events the information is for;
    ``monte_carlo_events``: events used to estimate it (0 for exact values).
    """

    matrix: np.ndarray
    stderr: np.ndarray
    method: str
    params: tuple[str, ...]
    n_events: int
    monte_carlo_events: int


def _select(theta: Mapping[str, Any], params: Sequence[str] | None) -> tuple[str, ...]:
    names = tuple(theta) if params is None else tuple(params)
    unknown = [name for name in names if name not in theta]
    if not names or unknown:
        raise ValueError(
            f"params must name parameters from {list(theta)} (got {params!r})"
        )
    return names


def _log_prob_of_vector(model: Any, theta: Mapping[str, Any], names: tuple[str, ...]):
    """``(vector, x) -> log p(x|θ)``, the ``names`` entries of θ taken from vector."""

    def log_prob(vector: jax.Array, x: jax.Array) -> jax.Array:
        updated = {**theta, **{n: vector[i] for i, n in enumerate(names)}}
        return model.log_prob(x[None], updated)[0]

    vector = jnp.stack([jnp.asarray(theta[n]) for n in names])
    return log_prob, vector


def score_function(model: Any, theta: Mapping[str, Any], params: Sequence[str]):
    """``x -> ∇_θ log p(x|θ)``: the (d,) score of one event over ``params``."""
    log_prob, vector = _log_prob_of_vector(model, theta, tuple(params))
    return lambda x: jax.grad(log_prob)(vector, x)


def hessian_function(model: Any, theta: Mapping[str, Any], params: Sequence[str]):
    """``x -> ∇²_θ log p(x|θ)``: the (d, d) Hessian of one event over ``params``."""
    log_prob, vector = _log_prob_of_vector(model, theta, tuple(params))
    return lambda x: jax.hessian(log_prob)(vector, x)


def information_from_spread(std: Any, std_stderr: Any) -> tuple[np.ndarray, np.ndarray]:
    """The estimator view: 1/Var(θ̂) and its standard error 2·SE(s)/s³.

    For an efficient estimator this is the Fisher information of the sample it was
    computed from; for any unbiased estimator it is a lower bound (Cramér-Rao).
    """
    std, std_stderr = np.asarray(std, np.float64), np.asarray(std_stderr, np.float64)
    return 1.0 / std**2, 2.0 * std_stderr / std**3


def exact_fisher_information(
    model: Any, theta: Mapping[str, Any], n_events: int = 1, params=None
) -> FisherInformation | None:
    """The closed form from ``model.exact_fisher(theta, params)`` (per event) times
    ``n_events``, or None if the model has none."""
    names = _select(theta, params)
    exact = getattr(model, "exact_fisher", None)
    if exact is None:
        return None
    matrix = np.asarray(exact(theta, names), np.float64) * n_events
    return FisherInformation(matrix, np.zeros_like(matrix), "exact", names, n_events, 0)


def fisher_information(
    model: Any,
    theta: Mapping[str, Any],
    n_events: int = 1,
    *,
    key: jax.Array,
    method: str = "score_outer_product",
    params: Sequence[str] | None = None,
    monte_carlo_events: int = 200_000,
) -> FisherInformation:
    """Monte Carlo Fisher information of ``n_events`` events of ``model`` at ``theta``.

    Draws ``monte_carlo_events`` events (in steps of 2**16 inside one compiled loop),
    evaluates per-event scores (``jax.grad``) or Hessians (``jax.hessian``) of
    ``log_prob`` and averages; the standard error of each entry is the standard
    deviation of its per-event terms over √(events), times ``n_events``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)} (got {method!r})")
    for name, value in (
        ("n_events", n_events),
        ("monte_carlo_events", monte_carlo_events),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer (got {value!r})")
    check_params(model, theta)
    names = _select(theta, params)
    if method == "score_outer_product":
        score = score_function(model, theta, names)

        def per_event(x: jax.Array) -> jax.Array:
            s = score(x)
            return jnp.outer(s, s)

    else:
        hessian = hessian_function(model, theta, names)

        def per_event(x: jax.Array) -> jax.Array:
            return -hessian(x)

    steps = -(-monte_carlo_events // _EVENTS_PER_STEP)
    step_size = min(_EVENTS_PER_STEP, monte_carlo_events)

    @jax.jit
    def moments(root: jax.Array):
        def one_step(index):
            x = model.sample(jax.random.fold_in(root, index), theta, step_size)
            terms = jax.vmap(per_event)(x)
            return terms.sum(axis=0), (terms * terms).sum(axis=0)

        return jax.lax.map(one_step, jnp.arange(steps, dtype=jnp.uint32))

    sums, squares = jax.device_get(moments(key))
    count = steps * step_size
    mean = np.asarray(sums, np.float64).sum(axis=0) / count
    second = np.asarray(squares, np.float64).sum(axis=0) / count
    variance = np.maximum(second - mean**2, 0.0) * count / max(count - 1, 1)
    stderr = np.sqrt(variance / count)
    if not np.all(np.isfinite(mean)):
        raise FloatingPointError(f"non-finite Fisher information estimate for {names}")
    return FisherInformation(
        mean * n_events, stderr * n_events, method, names, int(n_events), int(count)
    )


def linear_gaussian_generated_fisher(sigma: float, n_train: int, n_gen: int) -> float:
    """Exact Fisher information about μ of N_gen events generated by the mean-only ideal
    fit of a Gaussian (σ known) to n_train events.

    μ̂ = x̄_train ~ N(μ, σ²/n) and D_gen | μ̂ ~ N(μ̂, σ²)^N, so D_gen is multivariate
    normal with mean μ·1 and covariance σ²(I + 11ᵀ/n):
    I_gen = 1ᵀΣ⁻¹1 = N n / (σ² (n + N)) < I_train = n/σ², → I_train as N → ∞.
    """
    return n_gen * n_train / (sigma**2 * (n_train + n_gen))


class GeneratedFisherInformation(NamedTuple):
    """Fisher information of a generated dataset, marginalised over training samples.

    ``matrix``/``stderr``: (d, d); ``method``: ``"snis_cross"``; ``params``;
    ``n_train``, ``n_gen``; ``effective_sample_size``: median over outer replicas of
    the importance-sampling ESS (min over the two proposal sets);
    ``min_effective_sample_size``: its minimum; ``outer``/``proposals``: the Monte
    Carlo sizes.
    """

    matrix: np.ndarray
    stderr: np.ndarray
    method: str
    params: tuple[str, ...]
    n_train: int
    n_gen: int
    effective_sample_size: float
    min_effective_sample_size: float
    outer: int
    proposals: int


def generated_fisher_information(
    model: Any,
    theta: Mapping[str, Any],
    surrogate: Any,
    n_train: int,
    n_gen: int,
    *,
    key: jax.Array,
    params: Sequence[str] | None = None,
    outer: int = 256,
    proposals: int = 1024,
    min_effective_sample_size: float = 30.0,
) -> GeneratedFisherInformation:
    """Fisher information about θ of ``n_gen`` events from ``surrogate`` trained on
    ``n_train`` true events, for any model and any surrogate with ``log_prob``.

    Fisher identity: s_gen(D) = E[s_train(D_train) | D_gen = D].  For each of ``outer``
    replicas of the full chain (D_train → fit → D_gen) the posterior expectation is
    estimated by self-normalised importance sampling over two independent sets of
    ``proposals`` training samples drawn from the truth, with weights
    q(D_gen | φ(D_train^m)).  The information is the mean over replicas of the
    symmetrised cross product ŝ_A ŝ_Bᵀ of the two independent estimates, which removes
    the upward bias E[ŝŝᵀ] - s̄s̄ᵀ that a single estimate's noise would add (the
    remaining bias is the O(1/ESS) bias of self-normalisation).  A
    ``LowEffectiveSampleSize`` warning is issued when the median ESS falls below
    ``min_effective_sample_size``: then the posterior is narrower than the proposal
    spread resolves (typically N_gen ≫ n_train) and the estimate is not to be trusted.

    Cost: outer × 2·proposals × n_gen surrogate log-density evaluations.
    """
    if getattr(surrogate, "log_prob", None) is None:
        raise ValueError(
            "the surrogate has no log_prob: its D_gen likelihood is unknown"
        )
    for name, value in (
        ("n_train", n_train),
        ("n_gen", n_gen),
        ("outer", outer),
        ("proposals", proposals),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer (got {value!r})")
    if n_train < getattr(surrogate, "min_train", 1):
        raise ValueError(f"n_train must be >= {surrogate.min_train} for this surrogate")
    check_params(model, theta)
    names = _select(theta, params)
    score = score_function(model, theta, names)
    chain_key, proposal_key = jax.random.split(key)

    def training_replica(k: jax.Array):
        k_data, k_fit = jax.random.split(k)
        data = model.sample(k_data, theta, n_train)
        return jax.vmap(score)(data).sum(axis=0), surrogate.fit(k_fit, data)

    @jax.jit
    def run(chain_root: jax.Array, proposal_root: jax.Array):
        proposal_sets = []
        for half in range(2):
            keys = jax.random.split(jax.random.fold_in(proposal_root, half), proposals)
            proposal_sets.append(jax.vmap(training_replica)(keys))

        def one_replica(k: jax.Array):
            k_train, k_gen = jax.random.split(k)
            _, params_true = training_replica(k_train)
            generated = surrogate.sample(k_gen, params_true, n_gen)
            estimates, sizes = [], []
            for scores, fits in proposal_sets:
                log_w = jax.lax.map(
                    lambda p: jnp.sum(surrogate.log_prob(generated, p)), fits
                )
                weights = jax.nn.softmax(log_w)
                estimates.append(weights @ scores)
                sizes.append(1.0 / jnp.sum(weights * weights))
            a, b = estimates
            cross = 0.5 * (jnp.outer(a, b) + jnp.outer(b, a))
            return cross, jnp.minimum(sizes[0], sizes[1])

        keys = jax.random.split(chain_root, outer)
        return jax.lax.map(one_replica, keys)

    cross, ess = jax.device_get(run(chain_key, proposal_key))
    cross = np.asarray(cross, np.float64)
    matrix = cross.mean(axis=0)
    if outer > 1:
        stderr = cross.std(axis=0, ddof=1) / math.sqrt(outer)
    else:
        stderr = np.full_like(matrix, np.inf)
    ess = np.asarray(ess, np.float64)
    median_ess = float(np.median(ess))
    if not np.all(np.isfinite(matrix)):
        raise FloatingPointError("non-finite generated Fisher information estimate")
    if median_ess < min_effective_sample_size:
        warnings.warn(
            f"importance sampling for n_gen={n_gen}: median effective sample size "
            f"{median_ess:.1f} < {min_effective_sample_size}; increase proposals",
            LowEffectiveSampleSize,
            stacklevel=2,
        )
    return GeneratedFisherInformation(
        matrix,
        stderr,
        "snis_cross",
        names,
        int(n_train),
        int(n_gen),
        median_ess,
        float(ess.min()),
        int(outer),
        int(proposals),
    )
