"""The engine: the chain body and the pseudo-experiment runner.

Submodules: ``chain`` (θ → D_train → fit → D_gen, one key schedule), ``run`` (the
loop: compile, dispatch, collect, reduce, checkpoint), ``options`` (``EngineOptions``,
validated once), ``plan`` (vectorised width, chunk size, ranges, processes, memory),
``reduce`` (moments, failures by result code, histograms), ``identity`` (the traced
function and a run's identity), ``checkpoint`` (checkpoint and partial-result files).
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
from jaxunc.engine.options import EngineOptions
from jaxunc.engine.plan import (
    EVENTS_PER_STEP,
    VECTOR_WIDTH,
    default_memory_budget,
    parse_memory,
    vector_width,
)
from jaxunc.engine.reduce import (
    REDUCTION_BLOCK,
    Moments,
    block_moments,
    moments_merge,
    moments_summary,
)
from jaxunc.engine.run import (
    EngineResult,
    RunStats,
    pseudo_experiment_key,
    run_pseudo_experiments,
)

__all__ = [
    "EVENTS_PER_STEP",
    "REDUCTION_BLOCK",
    "VECTOR_WIDTH",
    "Chain",
    "ChainDraw",
    "ChainKeys",
    "EngineOptions",
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
