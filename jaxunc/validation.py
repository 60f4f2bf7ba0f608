"""Validation of generated samples: histograms with error bars, χ² goodness of fit,
the robustness horizon and the quantile amplification factor.

Paper 001 §2.2: N_required generated events substitute for as many true events only if
their histograms agree with the truth *within the error bars of N_required events*;
paper 000 §5 and §6: the "amplification factor" of the GANplify study (Butter et al.,
SciPost Phys. 10, 139 (2021)) and the protocol any claim of amplification must pass.

Conventions (every function here is pure, jit- and vmap-able unless it says
otherwise; events are scalars, ``x.shape == (n,)``):

* **Bins** are given by ``edges`` (k + 1 increasing values; the outer two may be ±inf).
  A ``Binning`` (built once, eagerly, by ``make_binning``) also carries the true bin
  probabilities and says where they come from: ``"cdf"`` (exact: differences of the
  model's ``cdf``) or ``"reference"`` (the fractions of a large reference sample
  drawn from the model, when it has no ``cdf``).  True-quantile bins are cut at the
  model's ``quantile`` function when it has one, else at the empirical quantiles of
  the reference sample.
* **Histograms** hold ``counts`` (sum of weights per bin) and ``sumw2`` (sum of
  squared weights); the error bar of a bin is ``sqrt(sumw2)`` (Poisson for unit
  weights, where ``sumw2 == counts``).
* **χ² against the model**: X² = Σ (w_i − W p_i)² / V_i with the expected variance
  V_i = W p_i · (Σw²/Σw) (Pearson's χ² for unit weights; for weights, the effective
  count approximation), dof = (bins with p_i > 0) − 1 (the total is not tested).
* **Two-sample χ²**: X² = Σ (W₂ w₁ − W₁ w₂)² / (W₁ W₂ (W₂ρ₁ + W₁ρ₂) p̂_i) with ρ = Σw²/Σw
  and the pooled effective-count estimate p̂_i; for unit weights this is the standard
  Σ (M n_i − N m_i)² / (N M (n_i + m_i)); dof = (bins with p̂_i > 0) − 1.
* **p-values** from the χ² distribution, ``chi2_sf(x, dof) = Q(dof/2, x/2)``
  (``jax.scipy.special.gammaincc``); the asymptotic χ² law needs ~5 expected events per
  bin.
* **Quantile MSE** (GANplify): with N_q bins of equal true probability 1/N_q and
  sample fractions f_j, MSE = (1/N_q) Σ_j (f_j − p_j)².  For n true events it has
  the exact expectation (1/N_q) Σ_j p_j (1 − p_j) / n = (N_q − 1)/(N_q² n)
  (multinomial variance), so a sample whose expected MSE is m is worth
  N_equiv = (N_q − 1)/(N_q² m) true events.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special
import numpy as np

from jaxunc.errors import InvalidArgument
from jaxunc.models import check_params

__all__ = [
    "BINNINGS",
    "Binning",
    "Chi2Test",
    "Histogram",
    "Horizon",
    "bin_counts",
    "bin_index",
    "bound_below_floor",
    "chi2_sf",
    "chi2_test",
    "equivalent_events",
    "expected_quantile_mse",
    "goodness_of_fit",
    "histogram",
    "histogram_quantiles",
    "make_binning",
    "quantile_chi2",
    "quantile_mse",
    "reference_histogram",
    "robustness_horizon",
    "two_sample_chi2_test",
]

BINNINGS = ("quantile", "uniform")
UNIFORM_RANGE = (0.001, 0.999)
"""Equal-width bins span the true quantiles at these levels; the two outer bins also
take the tails (their outer edges are ±inf)."""


# -------------------------------------------------------------------------- histograms


class Histogram(NamedTuple):
    """Sum of weights ``counts`` and of squared weights ``sumw2`` per bin, shape
    ``(..., k)``.  ``errors`` is the error bar of each bin."""

    counts: jax.Array
    sumw2: jax.Array

    @property
    def errors(self) -> jax.Array:
        """sqrt(Σw²) per bin: the Poisson error sqrt(n) for unit weights."""
        return jnp.sqrt(self.sumw2)


def _interior(edges: Any, dtype: Any) -> jax.Array:
    return jnp.asarray(np.asarray(edges, np.float64)[1:-1], dtype)


def bin_index(x: jax.Array, edges: Any) -> jax.Array:
    """Bin of each event, 0 … k−1, for ``edges`` of length k + 1 (events below the
    first or above the last edge go to the outer bins; use ±inf outer edges)."""
    return jnp.searchsorted(_interior(edges, x.dtype), x, side="right")


def bin_counts(x: jax.Array, edges: Any, weights: jax.Array | None = None) -> jax.Array:
    """Sum of ``weights`` (default 1) per bin, shape ``(k,)`` in ``x.dtype``."""
    k = len(edges) - 1
    index = bin_index(x, edges)
    ones = jnp.ones_like(x) if weights is None else weights.astype(x.dtype)
    return jnp.zeros(k, x.dtype).at[index].add(ones)


def histogram(x: jax.Array, edges: Any, weights: jax.Array | None = None) -> Histogram:
    """Histogram of ``x`` (n,) in the bins ``edges`` (k + 1), optionally weighted.

    Outer edges may be ±inf; events outside finite outer edges are counted in the
    outer bins (so the total is always Σw).
    """
    counts = bin_counts(x, edges, weights)
    if weights is None:
        return Histogram(counts, counts)
    return Histogram(counts, bin_counts(x, edges, weights * weights))


# ------------------------------------------------------------------------------- χ²


class Chi2Test(NamedTuple):
    """χ² statistic, degrees of freedom and p-value = P(χ²_dof ≥ statistic)."""

    statistic: jax.Array
    dof: jax.Array
    p_value: jax.Array


def chi2_sf(statistic: jax.Array, dof: jax.Array) -> jax.Array:
    """Survival function of the χ² distribution: Q(dof/2, statistic/2)."""
    statistic = jnp.asarray(statistic)
    dof = jnp.asarray(dof, statistic.dtype)
    return jax.scipy.special.gammaincc(dof / 2, jnp.maximum(statistic, 0) / 2)


def _as_histogram(h: Histogram | jax.Array) -> Histogram:
    if isinstance(h, Histogram):
        return h
    h = jnp.asarray(h)
    return Histogram(h, h)


def chi2_test(h: Histogram | jax.Array, probabilities: Any) -> Chi2Test:
    """χ² of a histogram (or unweighted counts) against true bin probabilities.

    X² = Σ (w_i − W p_i)² / (W p_i Σw²/Σw); Pearson's χ² for unit weights.  Bins with
    p_i = 0 must be empty (their terms are left out); dof = (bins with p_i > 0) − 1.
    """
    h = _as_histogram(h)
    counts = h.counts
    p = jnp.asarray(probabilities, counts.dtype)
    total = jnp.sum(counts, axis=-1, keepdims=True)
    ratio = jnp.sum(h.sumw2, axis=-1, keepdims=True) / total
    expected = total * p
    variance = expected * ratio
    safe = jnp.where(p > 0, variance, 1)
    terms = jnp.where(p > 0, (counts - expected) ** 2 / safe, 0)
    statistic = jnp.sum(terms, axis=-1)
    dof = jnp.sum(p > 0, axis=-1).astype(counts.dtype) - 1
    return Chi2Test(statistic, dof, chi2_sf(statistic, dof))


def two_sample_chi2_test(h1: Histogram | jax.Array, h2: Histogram | jax.Array):
    """χ² test that two histograms (same bins) come from one distribution.

    For unit weights: Σ (M n_i − N m_i)² / (N M (n_i + m_i)) with N, M the totals;
    weighted histograms use effective counts (see the module docstring).  Bins empty
    in both are left out: dof = (non-empty bins) − 1.
    """
    h1, h2 = _as_histogram(h1), _as_histogram(h2)
    w1, w2 = h1.counts, h2.counts
    total1 = jnp.sum(w1, axis=-1, keepdims=True)
    total2 = jnp.sum(w2, axis=-1, keepdims=True)
    rho1 = jnp.sum(h1.sumw2, axis=-1, keepdims=True) / total1
    rho2 = jnp.sum(h2.sumw2, axis=-1, keepdims=True) / total2
    pooled = (w1 / rho1 + w2 / rho2) / (total1 / rho1 + total2 / rho2)
    denominator = total1 * total2 * (total2 * rho1 + total1 * rho2) * pooled
    used = pooled > 0
    terms = jnp.where(
        used,
        (total2 * w1 - total1 * w2) ** 2 / jnp.where(used, denominator, 1),
        0,
    )
    statistic = jnp.sum(terms, axis=-1)
    dof = jnp.sum(used, axis=-1).astype(w1.dtype) - 1
    return Chi2Test(statistic, dof, chi2_sf(statistic, dof))


# ------------------------------------------------------------------------- quantiles


def quantile_mse(counts: jax.Array, probabilities: Any) -> jax.Array:
    """GANplify quantile MSE: (1/N_q) Σ_j (f_j − p_j)² with f = counts / Σcounts."""
    p = jnp.asarray(probabilities, counts.dtype)
    fractions = counts / jnp.sum(counts, axis=-1, keepdims=True)
    return jnp.mean((fractions - p) ** 2, axis=-1)


def quantile_chi2(counts: jax.Array, probabilities: Any) -> jax.Array:
    """Pearson χ² of the counts in the quantile bins (see ``chi2_test``)."""
    return chi2_test(counts, probabilities).statistic


def expected_quantile_mse(n: Any, n_quantiles: Any) -> np.ndarray:
    """E[quantile MSE] of n true events in N_q equal-probability bins:
    (N_q − 1)/(N_q² n), exact for any n (multinomial variance)."""
    n = np.asarray(n, np.float64)
    q = np.asarray(n_quantiles, np.float64)
    return (q - 1) / (q * q * n)


def equivalent_events(mse: Any, n_quantiles: Any) -> np.ndarray:
    """N_equiv: the number of true events whose expected quantile MSE is ``mse``."""
    mse = np.asarray(mse, np.float64)
    q = np.asarray(n_quantiles, np.float64)
    with np.errstate(divide="ignore"):
        return (q - 1) / (q * q * mse)


# -------------------------------------------------------------------------- binning


@dataclasses.dataclass(frozen=True, eq=False)
class Binning:
    """Bins of a scalar observable and their true probabilities.

    Attributes:
      edges: (k + 1,) float64, increasing; the outer edges are −inf and +inf.
      probabilities: (k,) float64 true probability of each bin (sums to 1).
      kind: ``"quantile"`` (equal true probability) or ``"uniform"`` (equal width).
      source: ``"cdf"`` when the probabilities are exact (the model's ``cdf``; for
        quantile bins cut at the model's ``quantile``: exactly 1/k), ``"reference"``
        when they are the fractions of ``n_reference`` reference events.
      edge_source: ``"quantile"`` (the model's quantile function) or ``"reference"``
        (empirical quantiles of the reference sample).
      display_range: finite (low, high) to draw the outer bins with.
      reference: the sorted reference sample (``source == "reference"``), else None.
    """

    edges: np.ndarray
    probabilities: np.ndarray
    kind: str
    source: str
    edge_source: str
    display_range: tuple[float, float]
    n_reference: int | None = None
    reference: np.ndarray | None = None

    @property
    def bins(self) -> int:
        return len(self.edges) - 1

    def display_edges(self) -> np.ndarray:
        """The edges with the infinite outer ones replaced by ``display_range``."""
        edges = self.edges.copy()
        edges[0] = min(self.display_range[0], edges[1])
        edges[-1] = max(self.display_range[1], edges[-2])
        return edges

    def describe(self) -> str:
        """One line for result files: where the edges and probabilities come from."""
        edges = (
            "the model's quantile function"
            if self.edge_source == "quantile"
            else f"a reference sample of {self.n_reference} model events"
        )
        probabilities = (
            "exact (model cdf)"
            if self.source == "cdf"
            else f"fractions of a reference sample of {self.n_reference} events "
            "(compared by the two-sample chi2)"
        )
        return (
            f"{self.bins} {self.kind} bins, edges from {edges}; "
            f"bin probabilities {probabilities}"
        )


def _require_scalar_events(x: np.ndarray) -> None:
    if x.ndim != 1:
        raise InvalidArgument(
            "model",
            "validation histograms need scalar events (sample shape (n,)); got "
            f"events of shape {x.shape[1:]}",
        )


def make_binning(
    model: Any,
    theta: Any,
    bins: int,
    kind: str = "quantile",
    *,
    key: jax.Array | None = None,
    n_reference: int = 2**20,
    levels: Sequence[float] | None = None,
) -> Binning:
    """Bins for histograms of ``model`` at ``theta`` (eager, not jittable).

    ``kind="quantile"``: ``bins`` bins of equal true probability; ``"uniform"``:
    equal width between the true quantiles ``UNIFORM_RANGE`` (outer bins take the
    tails).  ``levels`` (increasing, in (0, 1)) overrides the quantile levels of the
    interior edges.  Uses the model's ``quantile``/``cdf`` where it has them, else a
    reference sample of ``n_reference`` events drawn with ``key`` (required then).
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise InvalidArgument("bins", f"must be an integer >= 2 (got {bins!r})")
    if kind not in BINNINGS:
        raise InvalidArgument(
            "binning", f"must be one of {list(BINNINGS)} (got {kind!r})"
        )
    check_params(model, theta)
    has_quantile = callable(getattr(model, "quantile", None))
    has_cdf = callable(getattr(model, "cdf", None))
    reference = None
    if not (has_quantile and has_cdf):
        if key is None:
            raise InvalidArgument(
                "key",
                "the model has no cdf/quantile: a key is needed to draw the reference "
                "sample",
            )
        sample = jax.jit(model.sample, static_argnums=2)(key, theta, n_reference)
        reference = np.sort(np.asarray(sample))
        _require_scalar_events(reference)
        reference = reference.astype(np.float64)

    def true_quantile(u: np.ndarray) -> np.ndarray:
        if has_quantile:
            # One compiled call, not one eager dispatch per primitive.
            values = jax.jit(model.quantile)(jnp.asarray(u, _theta_dtype(theta)), theta)
            return np.asarray(values, np.float64)
        return np.quantile(reference, u)

    if kind == "quantile":
        if levels is None:
            levels = np.arange(1, bins) / bins
        interior = true_quantile(np.asarray(levels, np.float64))
    else:
        low, high = true_quantile(np.asarray(UNIFORM_RANGE, np.float64))
        interior = np.linspace(low, high, bins + 1)[1:-1]
    edges = np.concatenate([[-np.inf], interior, [np.inf]])
    if np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(interior)):
        raise InvalidArgument(
            "bins",
            f"gives empty or undefined bins for this model ({bins} {kind} bins); "
            "use fewer bins",
        )
    if has_cdf:
        cdf = np.asarray(
            jax.jit(model.cdf)(jnp.asarray(interior, _theta_dtype(theta)), theta),
            np.float64,
        )
        probabilities = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
        source = "cdf"
    else:
        cumulative = np.searchsorted(reference, interior, side="right")
        counts = np.diff(np.concatenate([[0], cumulative, [len(reference)]]))
        probabilities = counts / len(reference)
        source = "reference"
    low, high = true_quantile(np.asarray([0.001, 0.999]))
    pad = 0.05 * (high - low)
    return Binning(
        edges=edges,
        probabilities=np.asarray(probabilities, np.float64),
        kind=kind,
        source=source,
        edge_source="quantile" if has_quantile else "reference",
        display_range=(float(low - pad), float(high + pad)),
        n_reference=None if reference is None else len(reference),
        reference=reference if source == "reference" else None,
    )


def _theta_dtype(theta: Any) -> Any:
    leaves = jax.tree_util.tree_leaves(theta)
    dtype = jnp.result_type(*leaves) if leaves else jnp.float32
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32


def reference_histogram(binning: Binning, dtype: Any) -> Histogram:
    """The reference sample's histogram (for the two-sample test), as constants."""
    counts = jnp.asarray(binning.probabilities * binning.n_reference, dtype)
    return Histogram(counts, counts)


def goodness_of_fit(counts: jax.Array, binning: Binning) -> Chi2Test:
    """χ² of unweighted ``counts`` in ``binning``'s bins against the truth: against
    the exact probabilities (``source == "cdf"``) or, two-sample, against the
    reference sample (``source == "reference"``)."""
    if binning.source == "cdf":
        return chi2_test(counts, binning.probabilities)
    return two_sample_chi2_test(counts, reference_histogram(binning, counts.dtype))


# -------------------------------------------------------------- summaries of p-values


def histogram_quantiles(
    counts: np.ndarray, edges: np.ndarray, levels: Sequence[float]
) -> np.ndarray:
    """Quantiles of a distribution given as a histogram (linear within the bin
    where the level is crossed; empty bins are never interpolated across).

    ``counts`` (..., k), ``edges`` (k + 1,); returns (..., len(levels)).
    """
    counts = np.asarray(counts, np.float64)
    edges = np.asarray(edges, np.float64)
    cumulative = np.cumsum(counts, axis=-1)
    total = cumulative[..., -1:]
    fractions = np.concatenate(
        [np.zeros_like(total), cumulative / np.maximum(total, 1)], axis=-1
    )
    flat = fractions.reshape(-1, fractions.shape[-1])
    out = np.empty((flat.shape[0], len(levels)))
    for row, cdf in enumerate(flat):
        # np.interp needs non-decreasing x: keep the two edges of every bin that
        # holds counts and drop the inner edges of runs of empty bins, so that a
        # quantile is interpolated inside the bin where its level is crossed (never
        # across empty bins before it).
        rise = np.diff(cdf) > 0
        keep = np.concatenate([rise, [False]]) | np.concatenate([[False], rise])
        if not keep.any():  # no counts at all: the first edge
            keep[0] = True
        out[row] = np.interp(levels, cdf[keep], edges[keep])
    return out.reshape(*fractions.shape[:-1], len(levels))


def bound_below_floor(
    quantiles: np.ndarray, floor: float
) -> tuple[list[Any], list[Any]]:
    """Quantiles that a histogram cannot resolve, as bounds instead of numbers.

    A quantile interpolated inside the histogram's first bin [0, ``floor``) is an
    artefact of the linear interpolation (e.g. ``4.9999999999999995e-31`` for a
    first bin [0, 1e-30)): all that is known is that it is below ``floor``.

    Args:
      quantiles: (..., levels) from ``histogram_quantiles``.
      floor: the upper edge of the histogram's first bin.

    Returns:
      ``(values, below)``: nested lists of the shape of ``quantiles``; ``values``
      holds None where ``below`` is True (the quantile is < ``floor``).
    """
    quantiles = np.asarray(quantiles, np.float64)
    below = quantiles < floor
    values = np.where(below, np.nan, quantiles).tolist()

    def nan_to_none(item: Any) -> Any:
        if isinstance(item, list):
            return [nan_to_none(x) for x in item]
        return None if math.isnan(item) else item

    return nan_to_none(values), below.tolist()


class Horizon(NamedTuple):
    """The robustness horizon: the N_required at which the rejection rate crosses
    ``threshold`` (interpolated linearly in log N between the two grid points that
    bracket it; ``stderr`` propagates their binomial errors; interpolation error is not
    included).  ``status``: ``"found"``, ``"below_grid"`` (rejected at the smallest
    N_required) or ``"beyond_grid"`` (never rejected); ``value``/``stderr`` are None
    unless found."""

    value: float | None
    stderr: float | None
    status: str
    bracket: tuple[int, int] | None


def robustness_horizon(
    n_required: Sequence[int],
    rejection_rate: Sequence[float],
    rejection_stderr: Sequence[float],
    threshold: float = 0.5,
) -> Horizon:
    """The horizon from rejection rates measured on an increasing N_required grid.

    With the rejection rate r(N) = P(p < α), "median p < α" is "r(N) > 1/2", hence
    the default ``threshold``.  The first crossing is used.
    """
    n = np.asarray(n_required, np.float64)
    r = np.asarray(rejection_rate, np.float64)
    s = np.asarray(rejection_stderr, np.float64)
    if len(n) != len(r) or len(r) != len(s) or np.any(np.diff(n) <= 0):
        raise InvalidArgument(
            "n_required", "must be increasing and match the rejection rates"
        )
    above = np.flatnonzero(r > threshold)
    if len(above) == 0:
        return Horizon(None, None, "beyond_grid", None)
    k = int(above[0])
    if k == 0:
        return Horizon(None, None, "below_grid", None)
    a, b = r[k - 1], r[k]
    t = (threshold - a) / (b - a)
    log_a, log_b = math.log(n[k - 1]), math.log(n[k])
    log_h = log_a + t * (log_b - log_a)
    dt_da = (threshold - b) / (b - a) ** 2
    dt_db = -(threshold - a) / (b - a) ** 2
    log_err = (log_b - log_a) * math.hypot(dt_da * s[k - 1], dt_db * s[k])
    value = math.exp(log_h)
    return Horizon(value, value * log_err, "found", (int(n[k - 1]), int(n[k])))
