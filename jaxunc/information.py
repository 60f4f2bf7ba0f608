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

θ is any pytree the model accepts (a scalar, an array, a dict, a NamedTuple).  The
information is about components of its flat vector form ``ravel_pytree(θ)``, named by
``jaxunc.parameters.parameter_names`` ("theta" for a scalar θ, the key for a dict
entry, "w[1]" for the second element of an array entry ``w``); ``params`` selects and
orders them by those names (default: all, in flat order).

Every chain (θ → D_train → fit → D_gen) is drawn by ``jaxunc.engine.draw_chain`` with
the key schedule of ``_replica_keys``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special
import numpy as np

from jaxunc.engine.chain import ChainKeys, draw_chain
from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.models import check_params
from jaxunc.parameters import parameter_names
from jaxunc.summation import pairwise_sum
from jaxunc.surrogates.base import has_density, required_train

__all__ = [
    "METHODS",
    "Divergence",
    "FisherInformation",
    "FisherMargin",
    "GeneratedFisherInformation",
    "InequalityCheck",
    "LowEffectiveSampleSize",
    "exact_fisher_information",
    "fisher_information",
    "gaussian_kl_divergence",
    "gaussian_mean_mutual_information",
    "generated_fisher_information",
    "generated_fisher_margin",
    "generated_kl_divergence",
    "generated_log_likelihoods",
    "hessian_function",
    "information_from_spread",
    "kl_divergence",
    "linear_gaussian_generated_fisher",
    "loewner_check",
    "mutual_information",
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


def _select(theta: Any, params: Sequence[str] | str | None) -> tuple[str, ...]:
    """The selected component names of θ (``parameter_names``), in ``params`` order
    (default: all, in flat order); ``InvalidArgument("params")`` for unknown or
    repeated names."""
    available = parameter_names(theta)
    if params is None:
        names = available
    else:
        names = (params,) if isinstance(params, str) else tuple(params)
    unknown = [name for name in names if name not in available]
    if not names or unknown or len(set(names)) != len(names):
        raise InvalidArgument(
            "params",
            f"must name distinct parameters from {list(available)} (got {params!r})",
        )
    return names


def _substitution(theta: Any, names: tuple[str, ...]):
    """``(substitute, vector)``: ``vector`` (d,) holds the components ``names`` of θ
    and ``substitute(v)`` is θ with those components replaced by ``v``'s entries.

    Leaves without a selected component stay the very objects of θ (constants to
    the compiler); a scalar leaf becomes ``v[i]``, an array leaf gets its selected
    elements set from ``v``.
    """
    leaves, treedef = jax.tree_util.tree_flatten(theta)
    offsets = np.cumsum([0] + [math.prod(np.shape(leaf)) for leaf in leaves])
    flat_names = parameter_names(theta)
    by_leaf: dict[int, list[tuple[int, int]]] = {}  # leaf -> [(element, slot)]
    components = []
    for slot, name in enumerate(names):
        index = flat_names.index(name)
        leaf = int(np.searchsorted(offsets, index, side="right")) - 1
        element = index - int(offsets[leaf])
        by_leaf.setdefault(leaf, []).append((element, slot))
        value = jnp.asarray(leaves[leaf])
        components.append(value if value.ndim == 0 else value.reshape(-1)[element])
    vector = jnp.stack(components)

    def substitute(v: jax.Array) -> Any:
        new = list(leaves)
        for leaf, pairs in by_leaf.items():
            if np.ndim(leaves[leaf]) == 0:
                new[leaf] = v[pairs[0][1]]
                continue
            elements = np.array([element for element, _ in pairs])
            slots = np.array([slot for _, slot in pairs])
            flat = jnp.asarray(leaves[leaf]).reshape(-1)
            flat = flat.at[elements].set(v[slots].astype(flat.dtype))
            new[leaf] = flat.reshape(np.shape(leaves[leaf]))
        return jax.tree_util.tree_unflatten(treedef, new)

    return substitute, vector


def _log_prob_of_vector(model: Any, theta: Any, names: tuple[str, ...]):
    """``(vector, x) -> log p(x|θ)``, the ``names`` components of θ taken from
    vector; and the vector at θ."""
    substitute, vector = _substitution(theta, names)

    def log_prob(vector: jax.Array, x: jax.Array) -> jax.Array:
        return model.log_prob(x[None], substitute(vector))[0]

    return log_prob, vector


def score_function(model: Any, theta: Any, params: Sequence[str] | None = None):
    """``x -> ∇_θ log p(x|θ)``: the (d,) score of one event over the components
    ``params`` of θ (names as in the module docstring; default all)."""
    log_prob, vector = _log_prob_of_vector(model, theta, _select(theta, params))
    return lambda x: jax.grad(log_prob)(vector, x)


def hessian_function(model: Any, theta: Any, params: Sequence[str] | None = None):
    """``x -> ∇²_θ log p(x|θ)``: the (d, d) Hessian of one event over the
    components ``params`` of θ (default all)."""
    log_prob, vector = _log_prob_of_vector(model, theta, _select(theta, params))
    return lambda x: jax.hessian(log_prob)(vector, x)


def information_from_spread(std: Any, std_stderr: Any) -> tuple[np.ndarray, np.ndarray]:
    """The estimator view: 1/Var(θ̂) and its standard error 2·SE(s)/s³.

    For an efficient estimator this is the Fisher information of the sample it was
    computed from; for any unbiased estimator it is a lower bound (Cramér-Rao).
    """
    std, std_stderr = np.asarray(std, np.float64), np.asarray(std_stderr, np.float64)
    return 1.0 / std**2, 2.0 * std_stderr / std**3


def exact_fisher_information(
    model: Any, theta: Any, n_events: int = 1, params=None
) -> FisherInformation | None:
    """The closed form from ``model.exact_fisher(theta, params)`` (per event) times
    ``n_events``, or None if the model has none; ``params`` are component names of
    θ (default all)."""
    names = _select(theta, params)
    exact = getattr(model, "exact_fisher", None)
    if exact is None:
        return None
    matrix = np.asarray(exact(theta, names), np.float64) * n_events
    return FisherInformation(matrix, np.zeros_like(matrix), "exact", names, n_events, 0)


def fisher_information(
    model: Any,
    theta: Any,
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
    deviation of its per-event terms over √(events), times ``n_events``.  ``theta``
    is any pytree; ``params`` names its components (module docstring; default all).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)} (got {method!r})")
    for name, value in (
        ("n_events", n_events),
        ("monte_carlo_events", monte_carlo_events),
    ):
        check_positive_int(name, value)
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
            return pairwise_sum(terms), pairwise_sum(terms * terms)

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


class Divergence(NamedTuple):
    """A KL divergence or mutual information, in nats, with its Monte Carlo error.

    ``method``: ``"exact"``, ``"monte_carlo"`` (plain average of log-likelihood
    ratios) or ``"snis"`` (marginal likelihoods by importance sampling; biased low by
    O(1/ESS), see ``effective_sample_size``).
    """

    value: float
    stderr: float
    method: str
    effective_sample_size: float | None = None


def _check_sizes(**sizes: Any) -> None:
    for name, value in sizes.items():
        check_positive_int(name, value)


def _check_surrogate(surrogate: Any, n_train: int) -> None:
    if not has_density(surrogate):
        raise InvalidArgument(
            "surrogate", "has no log_prob: its D_gen likelihood is unknown"
        )
    minimum = required_train(surrogate)
    if n_train < minimum:
        raise InvalidArgument(
            "n_train", f"must be >= {minimum} for this surrogate (got {n_train})"
        )


MAX_PROPOSALS = 2**21
FITTED_PROPOSALS = 1024
"""Proposals (per set) of a surrogate without sufficient statistics at n_gen <=
n_train: each is one surrogate training."""
MAX_FITTED_PROPOSALS = 2**13
"""At most this many trainings per proposal set for such a surrogate."""
MAX_DENSITY_EVALUATIONS = 2**22
"""At most this many ``log_prob`` evaluations (proposals × n_gen) per outer replica
and proposal set for such a surrogate (but never fewer than ``FITTED_PROPOSALS``
proposals)."""
_PROPOSAL_BATCH = 2**14


def _default_proposals(
    surrogate: Any,
    n_train: int,
    n_gen: int,
    base: int = 65_536,
    cap: int = MAX_PROPOSALS,
) -> int:
    """Proposals needed for a usable effective sample size.

    D_gen pins the fitted parameters to about √(n_train/n_gen) of their spread over
    training samples, in each fitted dimension d (``len(surrogate.free)``, else 1),
    so the ESS of a fixed number of proposals falls like (n_train/n_gen)^(d/2) and
    the count grows by the inverse, to a power of two.  With sufficient statistics
    (O(1) per proposal) it starts at ``base`` and stops at ``cap``;
    otherwise each proposal is a surrogate training and costs n_gen log-density
    evaluations per outer replica, so it starts at ``FITTED_PROPOSALS`` and stops
    at ``MAX_FITTED_PROPOSALS`` trainings and ``MAX_DENSITY_EVALUATIONS`` / n_gen
    (never below ``FITTED_PROPOSALS``).  A surrogate with many free parameters (a
    flow, a KDE) collapses faster than d = 1 says: its ESS is reported.
    """
    dimensions = len(getattr(surrogate, "free", (None,)))
    narrowing = max(1.0, math.sqrt(n_gen / n_train)) ** dimensions
    if not getattr(surrogate, "has_sufficient_statistics", False):
        wanted = 2 ** math.ceil(math.log2(FITTED_PROPOSALS * narrowing))
        cap = min(MAX_FITTED_PROPOSALS, MAX_DENSITY_EVALUATIONS // n_gen)
        cap = 2 ** math.floor(math.log2(cap)) if cap >= 1 else 1
        return int(max(FITTED_PROPOSALS, min(wanted, cap)))
    wanted = base * narrowing
    return int(min(cap, 2 ** math.ceil(math.log2(wanted))))


def _replicas(replica, key: jax.Array, count: int):
    """``vmap(replica)`` over ``count`` keys, in batches (memory bounded by a batch)."""
    if count <= _PROPOSAL_BATCH:
        return jax.vmap(replica)(jax.random.split(key, count))
    batches = -(-count // _PROPOSAL_BATCH)
    keys = jax.random.split(key, batches * _PROPOSAL_BATCH)
    keys = keys.reshape(batches, _PROPOSAL_BATCH)
    out = jax.lax.map(jax.vmap(replica), keys)
    return jax.tree_util.tree_map(
        lambda a: a.reshape(batches * _PROPOSAL_BATCH, *a.shape[2:])[:count], out
    )


def generated_log_likelihoods(surrogate: Any):
    """``(generated, fits) -> log q(generated | φ_m)`` for a batch of fits (M,).

    Uses the surrogate's sufficient statistics when it has them (O(1) per fit after
    one pass over the events), otherwise sums ``log_prob`` over the events per fit.
    """
    if getattr(surrogate, "has_sufficient_statistics", False):

        def from_statistics(generated: jax.Array, fits: Any) -> jax.Array:
            statistics = surrogate.sufficient_statistics(generated)
            return jax.vmap(
                lambda fit: surrogate.log_likelihood_from_statistics(statistics, fit)
            )(fits)

        return from_statistics

    def from_events(generated: jax.Array, fits: Any) -> jax.Array:
        return jax.lax.map(
            lambda fit: pairwise_sum(surrogate.log_prob(generated, fit)), fits
        )

    return from_events


def _training_keys(key: jax.Array) -> ChainKeys:
    """Key schedule of a training replica: ``split(key)`` -> training sample, fit."""
    k_data, k_fit = jax.random.split(key)
    return ChainKeys(k_data, k_fit, ())


def _replica_keys(key: jax.Array) -> ChainKeys:
    """Key schedule of a whole chain replica: ``split(key)`` -> training replica
    (``_training_keys``), generated sample."""
    k_train, k_gen = jax.random.split(key)
    return _training_keys(k_train)._replace(generate=(k_gen,))


def _training_replicas(model, theta, surrogate, n_train, score=None):
    """``key -> (training score or None, fitted surrogate params)`` for one replica:
    the first half of the chain (``draw_chain`` without generated sizes)."""

    def replica(k: jax.Array):
        draw = draw_chain(model, surrogate, theta, n_train, (), _training_keys(k))
        total_score = (
            None if score is None else pairwise_sum(jax.vmap(score)(draw.train))
        )
        return total_score, draw.params

    return replica


def _generated_replica(model, theta, surrogate, n_train, n_gen):
    """``key -> D_gen`` (n_gen events) of one chain replica (``_replica_keys``)."""

    def replica(k: jax.Array) -> jax.Array:
        keys = _replica_keys(k)
        return draw_chain(model, surrogate, theta, n_train, (n_gen,), keys).generated[0]

    return replica


def _warn_if_low(ess: np.ndarray, threshold: float, what: str) -> float:
    median = float(np.median(ess))
    if median < threshold:
        warnings.warn(
            f"{what}: median effective sample size {median:.1f} < {threshold}; "
            "increase proposals (--proposals of 'jaxunc fisher')",
            LowEffectiveSampleSize,
            stacklevel=3,
        )
    return median


def generated_fisher_information(
    model: Any,
    theta: Any,
    surrogate: Any,
    n_train: int,
    n_gen: int,
    *,
    key: jax.Array,
    params: Sequence[str] | None = None,
    outer: int = 256,
    proposals: int | None = None,
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

    ``proposals`` defaults to 65,536 × (n_gen/n_train)^(d/2) (at most 2**21) when the
    surrogate computes its likelihood from sufficient statistics (cost O(proposals)
    per replica), else 1,024 grown the same way within the cost caps of
    ``_default_proposals`` (cost O(proposals × n_gen) per replica).
    """
    if proposals is None:
        proposals = _default_proposals(surrogate, n_train, n_gen)
    _check_sizes(n_train=n_train, n_gen=n_gen, outer=outer, proposals=proposals)
    _check_surrogate(surrogate, n_train)
    check_params(model, theta)
    names = _select(theta, params)
    replica = _training_replicas(
        model, theta, surrogate, n_train, score_function(model, theta, names)
    )
    generate = _generated_replica(model, theta, surrogate, n_train, n_gen)
    log_likelihoods = generated_log_likelihoods(surrogate)
    chain_key, proposal_key = jax.random.split(key)

    @jax.jit
    def run(chain_root: jax.Array, proposal_root: jax.Array):
        proposal_sets = [
            _replicas(replica, jax.random.fold_in(proposal_root, half), proposals)
            for half in range(2)
        ]

        def one_replica(k: jax.Array):
            generated = generate(k)
            estimates, sizes = [], []
            for scores, fits in proposal_sets:
                weights = jax.nn.softmax(log_likelihoods(generated, fits))
                estimates.append(weights @ scores)
                sizes.append(1.0 / jnp.sum(weights * weights))
            a, b = estimates
            cross = 0.5 * (jnp.outer(a, b) + jnp.outer(b, a))
            return cross, jnp.minimum(sizes[0], sizes[1])

        return jax.lax.map(one_replica, jax.random.split(chain_root, outer))

    cross, ess = jax.device_get(run(chain_key, proposal_key))
    cross = np.asarray(cross, np.float64)
    matrix = cross.mean(axis=0)
    if outer > 1:
        stderr = cross.std(axis=0, ddof=1) / math.sqrt(outer)
    else:
        stderr = np.full_like(matrix, np.inf)
    if not np.all(np.isfinite(matrix)):
        raise FloatingPointError("non-finite generated Fisher information estimate")
    ess = np.asarray(ess, np.float64)
    median_ess = _warn_if_low(
        ess, min_effective_sample_size, f"generated Fisher information, n_gen={n_gen}"
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


# ------------------------------------------------------------------------ the margin


class FisherMargin(NamedTuple):
    """The margin I_train − I_gen of the data processing inequality, estimated
    directly (``generated_fisher_margin``).

    ``matrix``/``stderr``: (d, d), Fisher information of the whole datasets, in the
    natural parametrisation of ``params``; ``stderr`` is a delete-one-group
    jackknife over ``groups`` independent blocks (outer replicas *and* proposals),
    so it includes the variance of the shared proposal sets.  ``method``:
    ``"snis_pairs_jackknife"``.  ``effective_sample_size``: median over outer
    replicas of the importance-sampling ESS (the smaller of the two proposal
    sets); ``min_effective_sample_size``: its minimum.  ``proposals``: per set (two
    sets).  ``leak``: (d, d) E[s_q s_qᵀ], the information D_gen carries about θ
    beyond D_train (only for a ``bounds.ThetaDependent`` surrogate, else None;
    already subtracted from ``matrix``).
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
    groups: int
    leak: np.ndarray | None


MARGIN_GROUPS = 16
"""Independent blocks of the margin's jackknife standard error (at most ``outer``
and ``proposals``)."""
MARGIN_MAX_PROPOSALS = MAX_PROPOSALS // 4
"""The margin's largest proposal set (per set) for a surrogate with sufficient
statistics.  Measured for the mean-and-σ ideal fit of N(0, 1), n_train = 100,
n_gen = 10⁵, outer = 256: 2¹⁹ proposals gave 0.0997 ± 0.0014 (median ESS 509) in
10 s, 2²¹ gave 0.0989 ± 0.0008 in 34 s, against the exact 0.0989 (quadrature,
``bounds.gaussian_fit_generated_fisher``): a quarter of I_gen's cap keeps the
relative error near 1 % at a third of the cost."""
MARGIN_PROPOSALS = 16_384
"""The margin's ``base`` proposals per set for a surrogate with sufficient
statistics (``_default_proposals``; grown with n_gen): it measures the small
difference I_train − I_gen directly, so a quarter of ``generated_fisher_information``'s
proposals give it a relative error of about 5·10⁻⁴ at n_gen = 10·n_train."""


def _replica_key_list(key: jax.Array, count: int) -> jax.Array:
    """The ``count`` replica keys ``_replicas`` uses for ``key``."""
    if count <= _PROPOSAL_BATCH:
        return jax.random.split(key, count)
    batches = -(-count // _PROPOSAL_BATCH)
    return jax.random.split(key, batches * _PROPOSAL_BATCH)[:count]


def _group_moments(log_q: jax.Array, scores: jax.Array, groups: int):
    """Self-normalised moments of ``scores`` (M, d) under weights ∝ exp(``log_q``)
    (M,), within each of ``groups`` contiguous groups of ⌈M/groups⌉ proposals (the
    last one padded with zero weights).

    Returns ``(log_z, mean, covariance, log_z2)``: per group (G,) log Σ q, (G, d)
    weighted mean, (G, d, d) weighted covariance about it (weights summing to one
    in the group, no bias correction), (G,) log Σ q².  A group whose weights are
    all zero has log_z = -inf and zero moments.
    """
    count = log_q.shape[0]
    size = -(-count // groups)
    pad = groups * size - count
    log_q = jnp.pad(log_q, (0, pad), constant_values=-jnp.inf).reshape(groups, size)
    scores = jnp.pad(scores, ((0, pad), (0, 0))).reshape(groups, size, -1)
    top = jnp.max(log_q, axis=1)
    top = jnp.where(jnp.isfinite(top), top, jnp.zeros_like(top))
    e = jnp.exp(log_q - top[:, None])
    z = jnp.sum(e, axis=1)
    positive = z > 0
    safe = jnp.where(positive, z, jnp.ones_like(z))
    w = e / safe[:, None]
    mean = jnp.einsum("gm,gmd->gd", w, scores)
    centred = scores - mean[:, None, :]
    covariance = jnp.einsum("gm,gmi,gmj->gij", w, centred, centred)
    z2 = jnp.sum(e * e, axis=1)
    minus_inf = jnp.full_like(z, -jnp.inf)
    log_z = jnp.where(positive, top + jnp.log(safe), minus_inf)
    safe2 = jnp.where(positive, z2, jnp.ones_like(z2))
    log_z2 = jnp.where(positive, 2 * top + jnp.log(safe2), minus_inf)
    return log_z, mean, covariance, log_z2


def _pooled_pair_covariance(
    log_z: np.ndarray, mean: np.ndarray, covariance: np.ndarray, include: np.ndarray
) -> np.ndarray:
    """Cov(S | D_gen) per outer replica from the group moments of the two proposal
    sets A and B, pooling the groups ``include`` (K, G) bool, for each of K poolings.

    The estimate is the cross-set pair form ½ Σ_a Σ_b w_a w_b (S_a − S_b)(S_a −
    S_b)ᵀ = ½ (V_A + V_B + (S̄_A − S̄_B)(S̄_A − S̄_B)ᵀ): a ratio of two unbiased sums
    over independent sets (no a = b terms), so its only bias is that of the
    self-normalisation, O(1/ESS).  Inputs (R, 2, G), (R, 2, G, d), (R, 2, G, d, d)
    in float64; returns (K, R, d, d).
    """
    log_z = np.where(include[:, None, None, :], log_z[None], -np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        top = log_z.max(axis=-1, keepdims=True)
        weights = np.exp(log_z - top)
        weights = weights / weights.sum(axis=-1, keepdims=True)  # (K, R, 2, G)
    weights = np.where(np.isfinite(weights), weights, np.nan)
    pooled_mean = np.einsum("krhg,rhgd->krhd", weights, mean)
    deviation = mean[None] - pooled_mean[..., None, :]
    pooled = np.einsum("krhg,rhgij->krhij", weights, covariance) + np.einsum(
        "krhg,krhgi,krhgj->krhij", weights, deviation, deviation
    )
    delta = pooled_mean[:, :, 0] - pooled_mean[:, :, 1]
    return 0.5 * (
        pooled[:, :, 0] + pooled[:, :, 1] + delta[..., :, None] * delta[..., None, :]
    )


def _leak_log_likelihood(model, theta, surrogate, n_train, substitute):
    """``(vector, training key, D_gen) -> log q_θ(D_gen | fit_θ(D_train))`` for a
    ``ThetaDependent`` surrogate, θ's selected components from ``vector``: the
    training sample is drawn at the fixed ``theta`` (held fixed, its score is
    s_train), the surrogate is built from θ(vector), so ∇ of this is the part of the
    joint score that D_gen carries beyond D_train."""

    def log_likelihood(vector: jax.Array, k: jax.Array, generated: jax.Array):
        keys = _training_keys(k)
        data = model.sample(keys.train, theta, n_train)
        built = surrogate.build(substitute(vector))
        fit = built.fit(keys.fit, data)
        return pairwise_sum(built.log_prob(generated, fit))

    def value_and_score(vector, k, generated):
        def along(tangent):
            return jax.jvp(
                lambda v: log_likelihood(v, k, generated), (vector,), (tangent,)
            )

        values, tangents = jax.vmap(along)(jnp.eye(vector.shape[0], dtype=vector.dtype))
        return values[0], tangents

    return value_and_score


def _check_margin_groups(groups: Any, outer: int, proposals: int) -> int:
    if groups is None:
        return min(MARGIN_GROUPS, outer, proposals)
    groups = check_positive_int("groups", groups)
    if not 2 <= groups <= min(outer, proposals):
        raise InvalidArgument(
            "groups",
            f"must be between 2 and min(outer, proposals) = {min(outer, proposals)} "
            f"(got {groups})",
        )
    return groups


def generated_fisher_margin(
    model: Any,
    theta: Any,
    surrogate: Any,
    n_train: int,
    n_gen: int,
    *,
    key: jax.Array,
    params: Sequence[str] | None = None,
    outer: int = 256,
    proposals: int | None = None,
    groups: int | None = None,
    min_effective_sample_size: float = 30.0,
) -> FisherMargin:
    """The margin I_train − I_gen ⪰ 0 of the data processing inequality, estimated
    directly, for ``n_gen`` events from ``surrogate`` trained on ``n_train`` true
    events (any model; any surrogate with ``log_prob``).

    Law of total variance: with the Fisher identity s_gen = E[s_train | D_gen],
    I_train − I_gen = E_{D_gen}[Cov(s_train | D_gen)].  For each of ``outer`` chain
    replicas the posterior covariance is estimated by self-normalised importance
    sampling over two independent sets of ``proposals`` training replicas drawn
    from the truth (weights q(D_gen | φ(D_train^m))), in the cross-set pair form
    of ``_pooled_pair_covariance`` (bias O(1/ESS) only), and averaged over the
    replicas.  Where I_gen ≈ I_train this is far more precise than I_train minus
    ``generated_fisher_information``: it measures the small difference itself.

    Standard error: outer replica r belongs to block r mod G and proposal m of
    each set to block ⌊m G / proposals⌋ (G = ``groups``, default min(16, outer,
    proposals)); the G blocks are
    independent, so the delete-one-block jackknife (conservative by Efron–Stein)
    includes the variance of the proposal sets, which all replicas share.

    ``proposals`` (per set) grows with n_gen as in ``_default_proposals`` (base
    ``MARGIN_PROPOSALS`` with sufficient statistics).  The
    median and the smallest ESS are reported; a ``LowEffectiveSampleSize`` warning
    says when the median is below ``min_effective_sample_size`` (then the estimate
    is not a measurement).

    A ``bounds.ThetaDependent`` surrogate (built from θ: D_gen may depend on θ other
    than through D_train, breaking the chain's Markov property) is handled by the
    joint score S = s_train + s_q, s_q = ∇_θ log q_θ(D_gen | fit_θ(D_train)):
    I_train − I_gen = E[Cov(S | D_gen)] − E[s_q s_qᵀ], which is negative when the
    surrogate leaks information about θ (``leak`` reports E[s_q s_qᵀ]).
    """
    from jaxunc.bounds import ThetaDependent

    dependent = isinstance(surrogate, ThetaDependent)
    built = surrogate.build(theta) if dependent else surrogate
    if proposals is None:
        proposals = _default_proposals(
            built, n_train, n_gen, base=MARGIN_PROPOSALS, cap=MARGIN_MAX_PROPOSALS
        )
    _check_sizes(n_train=n_train, n_gen=n_gen, outer=outer, proposals=proposals)
    groups = _check_margin_groups(groups, outer, proposals)
    _check_surrogate(built, n_train)
    check_params(model, theta)
    names = _select(theta, params)
    score = score_function(model, theta, names)
    replica = _training_replicas(model, theta, built, n_train, score)
    generate = _generated_replica(model, theta, built, n_train, n_gen)
    log_likelihoods = generated_log_likelihoods(built)
    substitute, vector = _substitution(theta, names)
    if dependent:
        leak = _leak_log_likelihood(model, theta, surrogate, n_train, substitute)
    chain_key, proposal_key = jax.random.split(key)

    @jax.jit
    def run(chain_root: jax.Array, proposal_root: jax.Array):
        sets = []
        for half in range(2):
            half_key = jax.random.fold_in(proposal_root, half)
            scores, fits = _replicas(replica, half_key, proposals)
            keys = _replica_key_list(half_key, proposals) if dependent else None
            sets.append((scores, fits, keys))

        def one_replica(k: jax.Array):
            generated = generate(k)
            moments = []
            for scores, fits, keys in sets:
                if dependent:
                    log_q, leaks = jax.lax.map(
                        lambda km: leak(vector, km, generated), keys
                    )
                    joint = scores + leaks
                else:
                    log_q, joint = log_likelihoods(generated, fits), scores
                moments.append(_group_moments(log_q, joint, groups))
            if dependent:  # s_q of the replica's own chain draw
                own = leak(vector, jax.random.split(k)[0], generated)[1]
            else:
                own = jnp.zeros_like(vector)
            stacked = [jnp.stack(parts) for parts in zip(*moments, strict=True)]
            return (*stacked, own)

        return jax.lax.map(one_replica, jax.random.split(chain_root, outer))

    log_z, mean, covariance, log_z2, own = (
        np.asarray(a, np.float64) for a in jax.device_get(run(chain_key, proposal_key))
    )
    with np.errstate(invalid="ignore"):
        log_ess = 2 * _np_logsumexp(log_z) - _np_logsumexp(log_z2)  # (R, 2)
    finite = np.isfinite(log_ess)
    ess = np.where(finite, np.exp(np.where(finite, log_ess, 0.0)), 0.0).min(axis=1)
    include = np.concatenate(
        [np.ones((1, groups), bool), ~np.eye(groups, dtype=bool)], axis=0
    )
    pairs = _pooled_pair_covariance(log_z, mean, covariance, include)  # (K, R, d, d)
    own_outer = own[:, :, None] * own[:, None, :]  # (R, d, d)
    terms = pairs - own_outer[None]
    matrix = terms[0].mean(axis=0)
    if not np.all(np.isfinite(matrix)):
        raise FloatingPointError("non-finite Fisher information margin estimate")
    blocks = np.arange(outer) % groups
    deleted = np.stack(
        [terms[1 + g][blocks != g].mean(axis=0) for g in range(groups)]
    )  # (G, d, d)
    if np.all(np.isfinite(deleted)):
        spread = deleted - deleted.mean(axis=0)
        stderr = np.sqrt((groups - 1) / groups * (spread**2).sum(axis=0))
    else:  # a block held all the weight of some replica: no error to be had
        stderr = np.full_like(matrix, np.inf)
    median_ess = _warn_if_low(
        ess, min_effective_sample_size, f"Fisher information margin, n_gen={n_gen}"
    )
    return FisherMargin(
        matrix,
        stderr,
        "snis_pairs_jackknife",
        names,
        int(n_train),
        int(n_gen),
        median_ess,
        float(ess.min()),
        int(outer),
        int(proposals),
        int(groups),
        own_outer.mean(axis=0) if dependent else None,
    )


def _np_logsumexp(values: np.ndarray) -> np.ndarray:
    """log Σ exp over the last axis, float64 (-inf for all -inf)."""
    top = values.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(values - top).sum(axis=-1)) + top[..., 0]


# ----------------------------------------------------------------------- KL divergence


def gaussian_kl_divergence(
    theta0: Mapping[str, Any], theta1: Mapping[str, Any]
) -> float:
    """KL(N(μ₀, σ₀²) ‖ N(μ₁, σ₁²)) per event, in nats."""
    mu0, s0 = float(theta0["mu"]), float(theta0["sigma"])
    mu1, s1 = float(theta1["mu"]), float(theta1["sigma"])
    return math.log(s1 / s0) + (s0**2 + (mu0 - mu1) ** 2) / (2 * s1**2) - 0.5


def kl_divergence(
    model: Any,
    theta0: Any,
    theta1: Any,
    n_events: int = 1,
    *,
    key: jax.Array,
    monte_carlo_events: int = 200_000,
) -> Divergence:
    """KL(p(D|θ₀) ‖ p(D|θ₁)) for ``n_events`` independent true events, in nats:
    ``n_events`` × the mean over events x ~ θ₀ of log p(x|θ₀) - log p(x|θ₁)."""
    _check_sizes(n_events=n_events, monte_carlo_events=monte_carlo_events)
    check_params(model, theta0)
    check_params(model, theta1)

    @jax.jit
    def ratios(k: jax.Array) -> jax.Array:
        x = model.sample(k, theta0, monte_carlo_events)
        return model.log_prob(x, theta0) - model.log_prob(x, theta1)

    values = np.asarray(ratios(key), np.float64)
    stderr = (
        values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.inf
    )
    return Divergence(n_events * float(values.mean()), n_events * stderr, "monte_carlo")


def _log_mean_exp(values: jax.Array) -> jax.Array:
    return jax.scipy.special.logsumexp(values) - jnp.log(values.shape[0])


def _ess(log_weights: jax.Array) -> jax.Array:
    weights = jax.nn.softmax(log_weights)
    return 1.0 / jnp.sum(weights * weights)


def generated_kl_divergence(
    model: Any,
    theta0: Any,
    theta1: Any,
    surrogate: Any,
    n_train: int,
    n_gen: int,
    *,
    key: jax.Array,
    outer: int = 256,
    proposals: int | None = None,
    min_effective_sample_size: float = 30.0,
) -> Divergence:
    """KL(p(D_gen|θ₀) ‖ p(D_gen|θ₁)) for ``n_gen`` generated events, in nats.

    p(D_gen|θ) = E_{D_train~θ}[q(D_gen | φ(D_train))] is estimated by the mean over
    ``proposals`` training replicas from θ (log-mean-exp of the log-likelihoods), for
    each of ``outer`` generated datasets drawn through the chain at θ₀.  The log of a
    Monte Carlo mean is biased low by about 1/(2·ESS) per term; the ESS is reported.
    ``proposals`` defaults to 262,144 × the narrowing of the posterior with sufficient
    statistics (the θ₁ proposals must reach datasets drawn at θ₀), else 1,024
    grown within the cost caps of ``_default_proposals``.
    """
    if proposals is None:
        proposals = _default_proposals(surrogate, n_train, n_gen, base=262_144)
    _check_sizes(n_train=n_train, n_gen=n_gen, outer=outer, proposals=proposals)
    _check_surrogate(surrogate, n_train)
    check_params(model, theta0)
    check_params(model, theta1)
    log_likelihoods = generated_log_likelihoods(surrogate)
    replica0 = _training_replicas(model, theta0, surrogate, n_train)
    replica1 = _training_replicas(model, theta1, surrogate, n_train)
    generate = _generated_replica(model, theta0, surrogate, n_train, n_gen)

    @jax.jit
    def run(k: jax.Array):
        k_chain, k0, k1 = jax.random.split(k, 3)
        _, fits0 = _replicas(replica0, k0, proposals)
        _, fits1 = _replicas(replica1, k1, proposals)

        def one_replica(kk: jax.Array):
            generated = generate(kk)
            log0 = log_likelihoods(generated, fits0)
            log1 = log_likelihoods(generated, fits1)
            ess = jnp.minimum(_ess(log0), _ess(log1))
            return _log_mean_exp(log0) - _log_mean_exp(log1), ess

        return jax.lax.map(one_replica, jax.random.split(k_chain, outer))

    values, ess = (np.asarray(a, np.float64) for a in jax.device_get(run(key)))
    if not np.all(np.isfinite(values)):
        raise FloatingPointError("non-finite generated KL divergence estimate")
    median_ess = _warn_if_low(
        ess, min_effective_sample_size, f"generated KL divergence, n_gen={n_gen}"
    )
    stderr = values.std(ddof=1) / math.sqrt(outer) if outer > 1 else math.inf
    return Divergence(float(values.mean()), float(stderr), "snis", median_ess)


# ------------------------------------------------------------------ mutual information


def gaussian_mean_mutual_information(
    prior_std: float, sigma: float, n_train: int, n_gen: int | None = None
) -> float:
    """Exact I(μ; D) for a N(μ₀, τ²) prior on μ, σ known, in nats.

    Training data (``n_gen`` None): ½ log(1 + n τ²/σ²).  Data generated by the
    mean-only ideal fit: x̄_gen is sufficient and x̄_gen | μ ~ N(μ, σ²(1/n + 1/N)),
    so ½ log(1 + τ² / (σ² (1/n + 1/N))).
    """
    variance = (
        sigma**2 / n_train if n_gen is None else sigma**2 * (1 / n_train + 1 / n_gen)
    )
    return 0.5 * math.log1p(prior_std**2 / variance)


def mutual_information(
    model: Any,
    prior_sample,
    n_events: int,
    *,
    key: jax.Array,
    outer: int = 512,
    inner: int | None = None,
    surrogate: Any = None,
    n_gen: int | None = None,
    proposals: int | None = None,
    min_effective_sample_size: float = 30.0,
) -> Divergence:
    """Mutual information I(θ; D) in nats under the prior ``prior_sample(key) -> θ``.

    Without a surrogate, D is ``n_events`` true events: I = E[log p(D|θ) - log p(D)]
    with p(D) estimated by the mean of p(D|θ_j) over ``inner`` fresh prior draws.
    With a surrogate, D is ``n_gen`` events generated by it after training on
    ``n_events`` true events; p(D|θ) is estimated over ``proposals`` training
    replicas at θ and p(D) over ``inner`` joint draws (θ_j, D_train_j).  Both log
    marginals are log-means, biased low by about 1/(2·ESS); the median over replicas of
    the smallest ESS involved is reported.
    """
    generated = surrogate is not None
    if generated:
        if n_gen is None:
            raise ValueError("n_gen is required with a surrogate")
        if proposals is None:  # per outer replica: capped, this is the costly part
            proposals = (
                min(_default_proposals(surrogate, n_events, n_gen, 4096), 2**14)
                if getattr(surrogate, "has_sufficient_statistics", False)
                else FITTED_PROPOSALS  # outer × proposals trainings: not grown
            )
        if inner is None:
            inner = _default_proposals(surrogate, n_events, n_gen, base=16_384)
        _check_sizes(n_gen=n_gen, proposals=proposals)
        _check_surrogate(surrogate, n_events)
        log_likelihoods = generated_log_likelihoods(surrogate)
    inner = 16_384 if inner is None else inner
    _check_sizes(n_events=n_events, outer=outer, inner=inner)

    def fits_at(theta: Any, k: jax.Array, count: int):
        replica = _training_replicas(model, theta, surrogate, n_events)
        return _replicas(replica, k, count)[1]

    def joint_fit(k: jax.Array):
        k_theta, k_train = jax.random.split(k)
        theta = prior_sample(k_theta)
        return _training_replicas(model, theta, surrogate, n_events)(k_train)[1]

    @jax.jit
    def run(k: jax.Array):
        k_outer, k_inner = jax.random.split(k)
        if generated:
            marginal_fits = _replicas(joint_fit, k_inner, inner)
        else:
            marginal_thetas = jax.vmap(prior_sample)(jax.random.split(k_inner, inner))

        def one_replica(kk: jax.Array):
            k_theta, k_data, k_prop = jax.random.split(kk, 3)
            theta = prior_sample(k_theta)
            if generated:
                data = _generated_replica(model, theta, surrogate, n_events, n_gen)(
                    k_data
                )
                conditional = log_likelihoods(data, fits_at(theta, k_prop, proposals))
                marginal = log_likelihoods(data, marginal_fits)
                log_conditional = _log_mean_exp(conditional)
                ess = jnp.minimum(_ess(conditional), _ess(marginal))
            else:
                data = model.sample(k_data, theta, n_events)
                log_conditional = pairwise_sum(model.log_prob(data, theta))
                marginal = jax.vmap(lambda t: pairwise_sum(model.log_prob(data, t)))(
                    marginal_thetas
                )
                ess = _ess(marginal)
            return log_conditional - _log_mean_exp(marginal), ess

        return jax.lax.map(one_replica, jax.random.split(k_outer, outer))

    values, ess = (np.asarray(a, np.float64) for a in jax.device_get(run(key)))
    if not np.all(np.isfinite(values)):
        raise FloatingPointError("non-finite mutual information estimate")
    what = "mutual information" + (f", n_gen={n_gen}" if generated else "")
    median_ess = _warn_if_low(ess, min_effective_sample_size, what)
    stderr = values.std(ddof=1) / math.sqrt(outer) if outer > 1 else math.inf
    return Divergence(float(values.mean()), float(stderr), "snis", median_ess)


# ---------------------------------------------------------------------- the inequality


class InequalityCheck(NamedTuple):
    """I_gen ≤ I_train in Loewner order: the smallest eigenvalue of I_train - I_gen.

    ``margin``: that eigenvalue (≥ 0 when the inequality holds); ``margin_stderr``:
    its first-order standard error, √Σᵢⱼ (vᵢvⱼ)² (SE²_train,ij + SE²_gen,ij) with v
    its eigenvector (entries treated as independent); ``margin_sigma``: margin /
    margin_stderr; ``holds``: margin > -k·margin_stderr (within errors).
    """

    margin: float
    margin_stderr: float
    margin_sigma: float
    holds: bool


def loewner_check(
    train: np.ndarray,
    train_stderr: np.ndarray,
    generated: np.ndarray,
    generated_stderr: np.ndarray,
    k: float = 3.0,
) -> InequalityCheck:
    """Check I_gen ≤ I_train within ``k`` standard errors (see ``InequalityCheck``).

    The four arguments are (d, d) matrices; for one parameter (a scalar θ) numbers
    or (1,) arrays are taken as 1 × 1 matrices.
    """
    train, train_stderr, generated, generated_stderr = (
        np.atleast_2d(np.asarray(a))
        for a in (train, train_stderr, generated, generated_stderr)
    )
    difference = np.asarray(train, np.float64) - np.asarray(generated, np.float64)
    difference = 0.5 * (difference + difference.T)
    values, vectors = np.linalg.eigh(difference)
    v = vectors[:, 0]
    weights = np.outer(v, v) ** 2
    variance = weights * (train_stderr**2 + generated_stderr**2)
    stderr = float(np.sqrt(variance.sum()))
    margin = float(values[0])
    sigma = margin / stderr if stderr > 0 else math.copysign(math.inf, margin)
    return InequalityCheck(margin, stderr, sigma, bool(margin > -k * stderr))


# ------------------------------------------------------- for the tables and figures
# Closed forms on grids of n_gen and the trust threshold of importance sampling, so
# that the studies' tables and figures (jaxunc.plots) compute nothing themselves.

__all__ += [
    "LOW_ESS",
    "gaussian_mean_mutual_information_curve",
    "linear_gaussian_generated_kl",
]

LOW_ESS = 30.0
"""Importance-sampling effective sample size below which a value is not to be
trusted (the default ``min_effective_sample_size`` of the estimators above)."""


def linear_gaussian_generated_kl(
    shift: float, sigma: float, n_train: int, n_gen: Any
) -> Any:
    """Exact KL divergence in nats between the laws of N_gen generated events at μ
    and at μ + ``shift``, for the mean-only ideal fit of a Gaussian (σ known).

    D_gen is multivariate normal with mean μ·1 and a covariance that does not depend
    on μ (see ``linear_gaussian_generated_fisher``), so KL = ½ shift² I_gen.
    ``n_gen``: a number or an array (the result has its shape).
    """
    return 0.5 * shift**2 * linear_gaussian_generated_fisher(sigma, n_train, n_gen)


def gaussian_mean_mutual_information_curve(
    prior_std: float, sigma: float, n_train: int, n_gen: Any
) -> np.ndarray:
    """``gaussian_mean_mutual_information(prior_std, sigma, n_train, n)`` for every
    ``n`` of the array ``n_gen``, in nats (float64, the shape of ``n_gen``):
    ½ log(1 + τ² / (σ² (1/n_train + 1/n)))."""
    n_gen = np.asarray(n_gen, np.float64)
    variance = sigma**2 * (1 / n_train + 1 / n_gen)
    return 0.5 * np.log1p(prior_std**2 / variance)
