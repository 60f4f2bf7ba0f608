"""Studies: one module per paper study; each returns a plain result object."""

from jaxunc.studies.amplification import (
    ContrivedConfig,
    PartialPipelineConfig,
    contrived_amplification,
    partial_pipeline,
)
from jaxunc.studies.ensemble import EnsembleConfig, EnsembleResult, run_ensemble
from jaxunc.studies.fisher import FisherConfig, FisherResult, run_fisher
from jaxunc.studies.toy import ToyConfig, ToyResult, run_toy
from jaxunc.studies.validate import (
    ValidateConfig,
    ValidateResult,
    run_validate,
    validate_surrogate,
)

__all__ = [
    "ContrivedConfig",
    "EnsembleConfig",
    "EnsembleResult",
    "FisherConfig",
    "FisherResult",
    "PartialPipelineConfig",
    "ToyConfig",
    "ToyResult",
    "ValidateConfig",
    "ValidateResult",
    "contrived_amplification",
    "partial_pipeline",
    "run_ensemble",
    "run_fisher",
    "run_toy",
    "run_validate",
    "validate_surrogate",
]
