"""jaxunc: how much is a generated dataset worth?

The chain θ → D_train → surrogate → D_gen → estimate, run as millions of
pseudo-experiments with JAX.  Public API, re-exported from the submodules.
"""

from jaxunc import random
from jaxunc.engine import (
    Chain,
    EngineResult,
    RunStats,
    chain_pseudo_experiment,
    pseudo_experiment_key,
    run_chain,
    run_pseudo_experiments,
)
from jaxunc.errors import InvalidArgument
from jaxunc.estimators import (
    Estimate,
    FitResult,
    MaximumLikelihood,
    SampleMean,
    fit_model,
    maximum_likelihood_fit,
)
from jaxunc.information import (
    FisherInformation,
    GeneratedFisherInformation,
    LowEffectiveSampleSize,
    exact_fisher_information,
    fisher_information,
    generated_fisher_information,
    hessian_function,
    information_from_spread,
    linear_gaussian_generated_fisher,
    score_function,
)
from jaxunc.models import (
    CustomModel,
    Exponential,
    Gaussian,
    Model,
    check_params,
    model_from_functions,
)
from jaxunc.studies import ToyConfig, ToyResult, run_toy
from jaxunc.surrogates import IdealFit, Surrogate

__version__ = "0.1.0"

__all__ = [
    "Chain",
    "CustomModel",
    "EngineResult",
    "Estimate",
    "Exponential",
    "FisherInformation",
    "FitResult",
    "Gaussian",
    "GeneratedFisherInformation",
    "IdealFit",
    "InvalidArgument",
    "LowEffectiveSampleSize",
    "MaximumLikelihood",
    "Model",
    "RunStats",
    "SampleMean",
    "Surrogate",
    "ToyConfig",
    "ToyResult",
    "__version__",
    "chain_pseudo_experiment",
    "check_params",
    "exact_fisher_information",
    "fisher_information",
    "fit_model",
    "generated_fisher_information",
    "hessian_function",
    "information_from_spread",
    "linear_gaussian_generated_fisher",
    "maximum_likelihood_fit",
    "model_from_functions",
    "pseudo_experiment_key",
    "random",
    "run_chain",
    "run_pseudo_experiments",
    "run_toy",
    "score_function",
]
