"""Studies: one module per paper study; each returns a plain result object."""

from jaxunc.studies.fisher import FisherConfig, FisherResult, run_fisher
from jaxunc.studies.toy import ToyConfig, ToyResult, run_toy

__all__ = [
    "FisherConfig",
    "FisherResult",
    "ToyConfig",
    "ToyResult",
    "run_fisher",
    "run_toy",
]
