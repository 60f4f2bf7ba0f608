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
    Divergence,
    FisherInformation,
    GeneratedFisherInformation,
    InequalityCheck,
    LowEffectiveSampleSize,
    exact_fisher_information,
    fisher_information,
    gaussian_kl_divergence,
    gaussian_mean_mutual_information,
    generated_fisher_information,
    generated_kl_divergence,
    hessian_function,
    information_from_spread,
    kl_divergence,
    linear_gaussian_generated_fisher,
    loewner_check,
    mutual_information,
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
from jaxunc.studies import (
    FisherConfig,
    FisherResult,
    ToyConfig,
    ToyResult,
    run_fisher,
    run_toy,
)
from jaxunc.surrogates import IdealFit, Surrogate

__version__ = "0.1.0"

__all__ = [
    "Chain",
    "CustomModel",
    "Divergence",
    "EngineResult",
    "Estimate",
    "Exponential",
    "FisherConfig",
    "FisherInformation",
    "FisherResult",
    "FitResult",
    "Gaussian",
    "GeneratedFisherInformation",
    "IdealFit",
    "InequalityCheck",
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
    "gaussian_kl_divergence",
    "gaussian_mean_mutual_information",
    "generated_fisher_information",
    "generated_kl_divergence",
    "hessian_function",
    "information_from_spread",
    "kl_divergence",
    "linear_gaussian_generated_fisher",
    "loewner_check",
    "maximum_likelihood_fit",
    "model_from_functions",
    "mutual_information",
    "pseudo_experiment_key",
    "random",
    "run_chain",
    "run_fisher",
    "run_pseudo_experiments",
    "run_toy",
    "score_function",
]
