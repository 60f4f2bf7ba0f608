"""KDE bandwidth rules measured: quantile-MSE amplification N_equiv/n_train of Scott,
Silverman and likelihood cross-validation (LCV) on a unimodal (Gaussian) and a
bimodal (camel back) model, n_train = 100, N_gen = 10⁵, through the validation study
(χ² horizon and amplification only, no protocol).  The same seed for every rule, so
the rules see the same training samples.

    cd REPO && PYTHONPATH=$PWD python benchmarks/bench_kde_bandwidth.py [P]

P: pseudo-experiments (default 256).  Prints one row per model and rule and writes
``benchmarks/results-kde-bandwidth.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from jaxunc.studies.registry import model_spec
from jaxunc.studies.validate import ValidateConfig, validate_surrogate
from jaxunc.surrogates import KDE


def main(pseudo_experiments: int) -> dict:
    out = {}
    for model in ("gaussian", "camelback"):
        spec = model_spec(model)
        for rule in ("scott", "silverman", "lcv"):
            config = ValidateConfig(
                model=model,
                surrogate="kde",
                n_train=100,
                n_required=(100_000,),
                pseudo_experiments=pseudo_experiments,
                seed=7,
            )
            start = time.perf_counter()
            result = validate_surrogate(
                spec.model,
                spec.theta,
                KDE(rule=rule),
                config,
                progress=False,
                figures=False,
                protocol=False,
            )
            seconds = time.perf_counter() - start
            amplification = result.amplification
            factor, stderr = (
                amplification["factor"][0],
                amplification["factor_stderr"][0],
            )
            row = " ".join(
                f"{q}: {f:.3f} ± {e:.3f}"
                for q, f, e in zip(
                    amplification["n_quantiles"], factor, stderr, strict=True
                )
            )
            print(f"{model:9s} {rule:9s} {seconds:5.0f} s  {row}", flush=True)
            out[f"{model}-{rule}"] = {
                "n_quantiles": amplification["n_quantiles"],
                "factor": factor,
                "factor_stderr": stderr,
                "rejection_rate_at_1e5": result.rejection_rate[0],
                "seconds": seconds,
            }
    return out


if __name__ == "__main__":
    p = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    results = main(p)
    path = Path(__file__).with_name("results-kde-bandwidth.json")
    path.write_text(json.dumps({"pseudo_experiments": p, **results}, indent=1) + "\n")
