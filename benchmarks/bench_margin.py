"""Benchmark: the margin I_train − I_gen against I_gen itself (jaxunc.information).

For the ideal mean-and-σ fit of N(0, 1) (n_train = 100, information about μ), at
each n_gen and proposal-set size, one run times ``generated_fisher_margin`` and
``generated_fisher_information`` (the margin's competitor: I_train − I_gen) with the
same outer replicas, and prints both estimates of the margin with their errors, the
exact value (quadrature, ``bounds.gaussian_fit_generated_fisher``), the ESS and the
seconds (compile included: each call is one new program), and the ratio of the two
errors.

    python benchmarks/bench_margin.py            # n_gen 1000, 1e5; 2^17, 2^19, 2^21
    python benchmarks/bench_margin.py --quick
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import numpy as np

from jaxunc.bounds import gaussian_fit_generated_fisher
from jaxunc.information import generated_fisher_information, generated_fisher_margin
from jaxunc.models import Gaussian
from jaxunc.surrogates import IdealFit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--outer", type=int, default=256)
    args = parser.parse_args()
    sizes = (1000,) if args.quick else (1000, 100_000)
    proposals = (2**15,) if args.quick else (2**17, 2**19, 2**21)
    model, n_train = Gaussian(), 100
    theta = {"mu": np.float32(0.0), "sigma": np.float32(1.0)}
    surrogate = IdealFit(model, theta, ("mu", "sigma"))
    warnings.simplefilter("ignore")
    print("n_gen  proposals  margin            I_train - I_gen   exact     ESS    s")
    for n_gen in sizes:
        exact = n_train - gaussian_fit_generated_fisher(1.0, n_train, n_gen)
        for count in proposals:
            common = dict(key=jax.random.key(3), outer=args.outer, params=("mu",))
            start = time.perf_counter()
            margin = generated_fisher_margin(
                model, theta, surrogate, n_train, n_gen, proposals=count, **common
            )
            seconds = time.perf_counter() - start
            direct = generated_fisher_information(
                model, theta, surrogate, n_train, n_gen, proposals=count, **common
            )
            value, error = margin.matrix[0, 0], margin.stderr[0, 0]
            other, other_error = n_train - direct.matrix[0, 0], direct.stderr[0, 0]
            print(
                f"{n_gen:6d} {count:9d}  {value:.4f} ± {error:.4f}  "
                f"{other:8.3f} ± {other_error:.3f}  {exact:.4f}  "
                f"{margin.effective_sample_size:6.0f} {seconds:5.1f}  "
                f"(errors {other_error / error:.0f}x)"
            )


if __name__ == "__main__":
    main()
