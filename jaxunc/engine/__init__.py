"""The engine: the chain body (``chain``) and the pseudo-experiment runner (``run``).

Public names are re-exported here; see the submodules for the details.
"""

from jaxunc.engine.chain import (
    Chain,
    ChainDraw,
    ChainKeys,
    chain_keys,
    chain_pseudo_experiment,
    check_sizes,
    draw_chain,
    fit_and_generate,
    run_chain,
)
from jaxunc.engine.run import (
    EVENTS_PER_STEP,
    REDUCTION_BLOCK,
    VECTOR_WIDTH,
    EngineResult,
    Moments,
    RunStats,
    block_moments,
    default_memory_budget,
    moments_merge,
    moments_summary,
    parse_memory,
    pseudo_experiment_key,
    run_pseudo_experiments,
    vector_width,
)

__all__ = [
    "EVENTS_PER_STEP",
    "REDUCTION_BLOCK",
    "VECTOR_WIDTH",
    "Chain",
    "ChainDraw",
    "ChainKeys",
    "EngineResult",
    "Moments",
    "RunStats",
    "block_moments",
    "chain_keys",
    "chain_pseudo_experiment",
    "check_sizes",
    "default_memory_budget",
    "draw_chain",
    "fit_and_generate",
    "moments_merge",
    "moments_summary",
    "parse_memory",
    "pseudo_experiment_key",
    "run_chain",
    "run_pseudo_experiments",
    "vector_width",
]
