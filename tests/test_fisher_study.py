"""The information study end to end: the inequalities within errors, I_gen → I_train
from below, exact answers where they exist (the mean-only Gaussian fit)."""

from __future__ import annotations

import numpy as np
import pytest

from jaxunc.errors import InvalidArgument
from jaxunc.studies.fisher import FisherConfig, run_fisher

K_SIGMA = 4.0


@pytest.fixture(scope="module")
def linear_gaussian_result():
    """The study on the mean-only fit, where every quantity has a closed form.

    Two n_gen, either side of n_train = 100 (exact I_gen/I_train = 0.091 and 0.75):
    the approach to I_train at large n_gen (ratio → 1 from below up to n_gen = 10⁵)
    is asserted on the default run in tests/test_cli_fisher.py, and the importance
    sampler against the exact linear-Gaussian answers up to n_gen = 1000 in
    tests/test_information.py; a third, larger n_gen here (3000) cost 40% of this
    fixture and checked nothing those do not.
    """
    config = FisherConfig(
        fit="mean",
        n_gen=(10, 300),
        outer=256,
        pseudo_experiments=2000,
        # the lower bounds are checked in tests/test_bounds.py: the fewest draws
        summaries=("mean",),
        simulations=32,
    )
    return run_fisher(config, progress=False).to_json()


def test_inequalities_hold_and_information_grows(linear_gaussian_result):
    result = linear_gaussian_result
    assert all(result["holds"])
    assert all(result["kl"]["holds"]) and all(result["mi"]["holds"])
    ratios = [r[0] for r in result["ratio_to_train"]]
    errors = [e[0] for e in result["ratio_to_train_stderr"]]
    # from below: every ratio ≤ 1 within errors, and growing with n_gen (exact
    # 0.091 → 0.75: about ten standard errors apart at outer = 256)
    assert all(r < 1 + K_SIGMA * e for r, e in zip(ratios, errors, strict=True))
    assert ratios[0] < ratios[1] - K_SIGMA * np.hypot(errors[0], errors[1])


def test_exact_answers_within_errors(linear_gaussian_result):
    result = linear_gaussian_result
    assert result["I_train_exact"] == [[100.0]]
    for measured, error, exact in zip(
        result["I_gen"], result["I_gen_stderr"], result["I_gen_exact"], strict=True
    ):
        assert abs(measured[0][0] - exact[0][0]) < K_SIGMA * error[0][0]
    view = result["estimator_view"]
    exact = np.array([e[0][0] for e in result["I_gen_exact"]])
    pulls = (np.array(view["information_gen"]) - exact) / np.array(
        view["information_gen_stderr"]
    )
    assert np.all(np.abs(pulls) < K_SIGMA)
    kl, mi = result["kl"], result["mi"]
    assert abs(kl["train"] - kl["train_exact"]) < K_SIGMA * kl["train_stderr"]
    assert abs(mi["train"] - mi["train_exact"]) < K_SIGMA * mi["train_stderr"]
    for value, error, exact in zip(
        kl["gen"], kl["gen_stderr"], kl["gen_exact"], strict=True
    ):
        assert abs(value - exact) < K_SIGMA * error
    for value, error, exact in zip(
        mi["gen"], mi["gen_stderr"], mi["gen_exact"], strict=True
    ):
        assert abs(value - exact) < K_SIGMA * error


# The exponential study (no closed form for I_gen, the inequality holding) is run
# for real through the command in tests/test_cli_fisher.py
# (test_exponential_no_plots_quiet), with the same assertions.


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"model": "poisson"}, "model"),
        ({"params": "rate"}, "params"),
        ({"fit": "mean", "params": "mu-sigma"}, "params"),
        ({"model": "exponential", "params": "mu"}, "params"),
        ({"sigma": 0.0}, "sigma"),
        ({"rate": -1.0}, "rate"),
        ({"n_train": 1}, "n_train"),
        ({"n_gen": ()}, "n_gen"),
        ({"outer": 1}, "outer"),
        ({"precision": "float16"}, "precision"),
    ],
)
def test_bad_configuration_names_the_argument(kwargs, argument):
    with pytest.raises(InvalidArgument) as error:
        FisherConfig(**kwargs)
    assert error.value.argument == argument
