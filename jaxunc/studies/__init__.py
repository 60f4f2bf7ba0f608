"""Studies: one module per paper study; each returns a plain result object."""

from jaxunc.studies.toy import ToyConfig, ToyResult, run_toy

__all__ = ["ToyConfig", "ToyResult", "run_toy"]
