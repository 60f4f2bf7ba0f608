"""THE chain body: θ → D_train → surrogate.fit → D_gen, one pure function.

Everything in jaxunc that simulates the paper's Markov chain (eq. (1)) calls
``draw_chain`` (or its second half, ``fit_and_generate``, when the training data are
not drawn from the model at θ, e.g. bootstrap replicas or a detector response): the
engine's ``Chain``, every study and the information layer.  It is pure, jit/vmap-able
and differentiable in θ (``jax.jvp(lambda t: draw_chain(..., t, ...), ...)``): the
model's sampler, the surrogate's fit and its sampler are composed without any
``stop_gradient``, so a reparameterised sampler and a differentiable fit give the
pathwise derivative of every generated event with respect to θ.

Keys.  A chain needs one key for the training sample, one for the fit and one per
generated sample; a study that also draws true reference samples needs one per size
for those.  ``chain_keys(key, n_sizes)`` is the documented default schedule::

    split(key, 2 + 2 K) -> [train, fit, generate_0 .. generate_{K-1},
                            truth_0 .. truth_{K-1}]

Studies that existed before this module keep their own derivation of the same four
roles (written as one small ``ChainKeys`` constructor each), because their recorded
results are pinned bit for bit; every new use should take ``chain_keys``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxunc.errors import InvalidArgument, check_positive_int
from jaxunc.estimators import Estimate
from jaxunc.models import check_params
from jaxunc.results import Result, estimate_result, first_failure
from jaxunc.surrogates.base import fit_result, required_train

__all__ = [
    "Chain",
    "ChainDraw",
    "ChainKeys",
    "chain_keys",
    "chain_pseudo_experiment",
    "check_sizes",
    "draw_chain",
    "fit_and_generate",
    "run_chain",
]


class ChainKeys(NamedTuple):
    """The keys of one chain draw.

    ``train``: the training sample; ``fit``: the surrogate's training; ``generate``:
    one key per generated sample (a sequence, or a key array with a leading axis of
    length K); ``truth``: one key per true reference sample (empty when not drawn).
    """

    train: jax.Array
    fit: jax.Array
    generate: Any
    truth: Any = ()


class ChainDraw(NamedTuple):
    """One draw of the chain.

    ``train``: the training sample, ``(n_train, *event_shape)``;
    ``params``: the fitted surrogate (its own pytree);
    ``fit_result``: ``int32[]`` result code of the fit (``jaxunc.results``);
    ``generated``: tuple of K generated samples, ``(n_gen[j], *event_shape)``;
    ``truth``: tuple of true reference samples of the same sizes (empty if not
    drawn).
    """

    train: jax.Array
    params: Any
    fit_result: jax.Array
    generated: tuple[jax.Array, ...]
    truth: tuple[jax.Array, ...] = ()


def chain_keys(key: jax.Array, n_sizes: int, *, truth: bool = True) -> ChainKeys:
    """The default key schedule (module docstring): ``split(key, 2 + 2 K)``."""
    keys = jax.random.split(key, 2 + 2 * n_sizes)
    return ChainKeys(
        keys[0],
        keys[1],
        tuple(keys[2 + j] for j in range(n_sizes)),
        tuple(keys[2 + n_sizes + j] for j in range(n_sizes)) if truth else (),
    )


def fit_and_generate(
    surrogate: Any,
    data: jax.Array,
    fit_key: jax.Array,
    generate_keys: Sequence[jax.Array],
    n_gen: Sequence[int],
) -> tuple[Any, jax.Array, tuple[jax.Array, ...]]:
    """Second half of the chain: fit ``surrogate`` to ``data`` and draw one sample
    of each size in ``n_gen`` from the fit (``generate_keys[j]`` for size j).

    Returns ``(params, fit_result, generated)``.
    """
    params = surrogate.fit(fit_key, data)
    generated = tuple(
        surrogate.sample(generate_keys[j], params, n) for j, n in enumerate(n_gen)
    )
    return params, fit_result(surrogate, params), generated


def draw_chain(
    model: Any,
    surrogate: Any,
    theta: Any,
    n_train: int,
    n_gen: Sequence[int],
    keys: ChainKeys,
) -> ChainDraw:
    """One draw of θ → D_train → fit → D_gen (and the true references of
    ``keys.truth``, one per size in ``n_gen``).

    ``theta`` is any pytree the model accepts; ``n_train`` and ``n_gen`` are static.
    Differentiable in ``theta`` (see the module docstring).
    """
    train = model.sample(keys.train, theta, n_train)
    params, code, generated = fit_and_generate(
        surrogate, train, keys.fit, keys.generate, n_gen
    )
    truth = (
        tuple(model.sample(keys.truth[j], theta, n) for j, n in enumerate(n_gen))
        if len(keys.truth)
        else ()
    )
    return ChainDraw(train, params, code, generated, truth)


def check_sizes(n_train: Any, n_gen: Any) -> tuple[int, tuple[int, ...]]:
    """``(n_train, n_gen)`` as ints, or ``InvalidArgument`` naming the bad one:
    ``n_train`` a positive integer, ``n_gen`` a non-empty sequence of them."""
    n_train = check_positive_int("n_train", n_train)
    if isinstance(n_gen, (int, np.integer)) or len(n_gen) == 0:
        raise InvalidArgument(
            "n_gen", f"must be a non-empty sequence of sizes (got {n_gen!r})"
        )
    return n_train, tuple(check_positive_int("n_gen", n) for n in n_gen)


@dataclasses.dataclass(frozen=True, eq=False)
class Chain:
    """The paper's chain θ → D_train → surrogate → D_gen → estimate.

    Attributes:
      model: true simulator (``sample``/``log_prob``).
      theta: true parameters (any pytree the model accepts: scalar, array, dict,
        NamedTuple).
      surrogate: ``fit(key, data)``/``sample(key, params, n)``.
      estimator: ``estimate(x) -> Estimate``.
      n_train: training events per pseudo-experiment.
      n_gen: generated-sample sizes; every one is drawn from the same fitted surrogate.
      truth: also estimate on ``n_gen`` fresh events from the true model (reference).
    """

    model: Any
    theta: Any
    surrogate: Any
    estimator: Any
    n_train: int
    n_gen: tuple[int, ...]
    truth: bool = True

    def __post_init__(self) -> None:
        n_train, n_gen = check_sizes(self.n_train, self.n_gen)
        object.__setattr__(self, "n_train", n_train)
        object.__setattr__(self, "n_gen", n_gen)
        minimum = required_train(self.surrogate)
        if self.n_train < minimum:
            raise InvalidArgument(
                "n_train",
                f"must be >= {minimum} to fit this surrogate (got {self.n_train})",
            )
        check_params(self.model, self.theta)

    @property
    def events_per_pseudo_experiment(self) -> int:
        """Events generated per pseudo-experiment (training + generated + truth)."""
        return self.n_train + sum(self.n_gen) * (2 if self.truth else 1)


def _stacked(estimates: Sequence[Estimate], fit_code: jax.Array) -> Estimate:
    """K estimates stacked to value ``(K, d)``; each fails with the fit's code when
    the fit failed, else with its own."""
    codes = [first_failure(fit_code, estimate_result(e)) for e in estimates]
    code = jnp.stack(codes)
    return Estimate(
        jnp.stack([e.value for e in estimates]),
        code == Result.SUCCESSFUL,
        code,
    )


def chain_pseudo_experiment(chain: Chain) -> Callable[[jax.Array], dict[str, Estimate]]:
    """One pseudo-experiment of ``chain`` as a pure ``key -> {name: Estimate}``.

    Outputs (K = len(n_gen), d = estimator dimension, p = fitted-parameter count):
      ``train``: estimate on D_train, value (d,);
      ``fit``: the surrogate's fitted parameters, flattened, value (p,) (when its params
        have a ``theta``), with the fit's result code;
      ``surrogate``: estimates on D_gen for each n_gen, value (K, d);
      ``truth``: estimates on n_gen true events, value (K, d) (if ``chain.truth``).
    Keys: ``chain_keys(key, K)``.
    """
    model, surrogate, estimator = chain.model, chain.surrogate, chain.estimator

    def run(key: jax.Array) -> dict[str, Estimate]:
        keys = chain_keys(key, len(chain.n_gen), truth=chain.truth)
        draw = draw_chain(
            model, surrogate, chain.theta, chain.n_train, chain.n_gen, keys
        )
        outputs = {"train": estimator.estimate(draw.train)}
        if hasattr(draw.params, "theta"):
            flat, _ = ravel_pytree(draw.params.theta)
            outputs["fit"] = Estimate(
                flat, draw.fit_result == Result.SUCCESSFUL, draw.fit_result
            )
        outputs["surrogate"] = _stacked(
            [estimator.estimate(x) for x in draw.generated], draw.fit_result
        )
        if chain.truth:
            outputs["truth"] = _stacked(
                [estimator.estimate(x) for x in draw.truth],
                jnp.int32(Result.SUCCESSFUL),
            )
        return outputs

    return run


def run_chain(
    chain: Chain,
    key: jax.Array,
    n_pseudo: int,
    *,
    chunk_size: int | None = None,
    histogram_edges: Mapping[str, np.ndarray] | None = None,
    progress: bool = True,
    description: str = "pseudo-experiments",
    **engine_options: Any,
) -> Any:
    """Run ``n_pseudo`` pseudo-experiments of ``chain`` (see
    ``chain_pseudo_experiment``); ``engine_options`` go to ``run_pseudo_experiments``
    (config, checkpoint, pseudo_range, partials, merge, memory_budget, devices).
    Returns an ``EngineResult``."""
    from jaxunc.engine.run import run_pseudo_experiments

    return run_pseudo_experiments(
        chain_pseudo_experiment(chain),
        key,
        n_pseudo,
        chunk_size=chunk_size,
        events_per_pseudo_experiment=chain.events_per_pseudo_experiment,
        histogram_edges=histogram_edges,
        progress=progress,
        description=description,
        **engine_options,
    )
