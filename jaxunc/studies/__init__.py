"""Studies: one module per paper study, each a ``Study`` record (``base.Study``)
registered here in the order ``jaxunc reproduce`` runs them.

A new study is its module (a configuration of ``base.option`` fields, a run
function returning a ``base.StudyResult``, a ``table`` and a ``Study``), its plot
module in ``jaxunc.plots`` and one ``register_study`` call (here, or in a user's
own package).
"""

from jaxunc.studies import ensemble, fisher, toy, validate
from jaxunc.studies.amplification import (
    ContrivedConfig,
    ContrivedResult,
    PartialPipelineConfig,
    PartialPipelineResult,
    contrived_amplification,
    partial_pipeline,
)
from jaxunc.studies.base import Study, StudyResult
from jaxunc.studies.ensemble import EnsembleConfig, EnsembleResult, run_ensemble
from jaxunc.studies.fisher import FisherConfig, FisherResult, run_fisher
from jaxunc.studies.registry import register_study
from jaxunc.studies.toy import ToyConfig, ToyResult, run_toy
from jaxunc.studies.validate import (
    ValidateConfig,
    ValidateResult,
    run_validate,
    validate_surrogate,
)

for _module in (toy, fisher, ensemble, validate):
    register_study(_module.STUDY)
del _module

__all__ = [
    "ContrivedConfig",
    "ContrivedResult",
    "EnsembleConfig",
    "EnsembleResult",
    "FisherConfig",
    "FisherResult",
    "PartialPipelineConfig",
    "PartialPipelineResult",
    "Study",
    "StudyResult",
    "ToyConfig",
    "ToyResult",
    "ValidateConfig",
    "ValidateResult",
    "contrived_amplification",
    "partial_pipeline",
    "register_study",
    "run_ensemble",
    "run_fisher",
    "run_toy",
    "run_validate",
    "validate_surrogate",
]
