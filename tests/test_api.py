"""The public API: the chain's concepts at the top level, plumbing in the
subpackages, and the numerical core never imports matplotlib."""

from __future__ import annotations

import importlib
import subprocess
import sys

import jaxunc

CHAIN_CONCEPTS = (
    # models, surrogates, estimators
    "Model",
    "Gaussian",
    "model_from_functions",
    "Surrogate",
    "IdealFit",
    "GAN",
    "Flow",
    "SampleMean",
    "MaximumLikelihood",
    # the chain and the engine's entry points
    "Chain",
    "run_chain",
    "run_pseudo_experiments",
    # information and validation
    "fisher_information",
    "generated_fisher_information",
    "loewner_check",
    "mutual_information",
    "chi2_test",
    "robustness_horizon",
    # studies
    "run_toy",
    "run_fisher",
    "run_ensemble",
    "run_validate",
    "validate_surrogate",
    "contrived_amplification",
    "partial_pipeline",
    "Study",
    "StudyResult",
    # registries
    "register_model",
    "register_surrogate",
    "register_study",
)

PLUMBING = {
    "PartialState": "jaxunc.checkpoint",
    "PartialResults": "jaxunc.checkpoint",
    "parse_memory": "jaxunc.engine",
    "default_memory_budget": "jaxunc.engine",
    "pairwise_sum": "jaxunc.summation",
    "pairwise_mean": "jaxunc.summation",
}


def test_public_names_resolve():
    for name in jaxunc.__all__:
        assert getattr(jaxunc, name) is not None, name
    assert len(set(jaxunc.__all__)) == len(jaxunc.__all__)


def test_chain_concepts_are_top_level_and_plumbing_is_not():
    for name in CHAIN_CONCEPTS:
        assert name in jaxunc.__all__, name
    for name, home in PLUMBING.items():
        assert name not in jaxunc.__all__, name
        assert getattr(importlib.import_module(home), name), (home, name)


def test_core_does_not_import_matplotlib():
    code = "import sys, jaxunc, jaxunc.plots; print('matplotlib' in sys.modules)"
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "False"


def test_protocols_accept_builtins():
    assert isinstance(jaxunc.Gaussian(), jaxunc.Model)
    assert isinstance(jaxunc.Exponential(), jaxunc.Model)
    surrogate = jaxunc.IdealFit(jaxunc.Gaussian(), {"mu": 0.0, "sigma": 1.0}, ("mu",))
    assert isinstance(surrogate, jaxunc.Surrogate)


def test_every_builtin_study_is_registered():
    from jaxunc.studies.registry import STUDIES

    assert list(STUDIES)[:4] == ["toy", "fisher", "ensemble", "validate"]
    for study in STUDIES.values():
        assert isinstance(study, jaxunc.Study)
