"""The README's "Your own model" block runs as written, at tiny sizes (its one sizes
line replaced).

By default the toy runs for real, and the ensemble and information studies get the
configurations the block builds (constructed for real, so every option is checked)
but stand-ins for their two run functions, which accept only the user's model and
allow only the real results' field names: running a GAN ensemble and the GAN's
information bounds even at tiny sizes takes about 50 s of CPU (compilation), more
than this file's budget.  ``python tests/test_readme.py`` runs every line of the
tiny block for real (by hand; it prints the three results).
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import jaxunc

README = Path(__file__).resolve().parent.parent / "README.md"
SIZES = re.compile(r"^P, K, SIMS, N_GEN, GAN = .*$", re.MULTILINE)
TINY = (
    "P, K, SIMS, N_GEN, GAN = 512, 4, 32, (50,), "
    '{"steps": 20, "width": 8, "depth": 1, "batch_size": 16, "record_every": 10}'
)
K_SIGMA = 4.0


def own_model_block() -> str:
    """The first ```python block after the heading "## Your own model"."""
    text = README.read_text()
    section = text[text.index("## Your own model") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "no python block under '## Your own model'"
    return match.group(1)


def tiny_block() -> str:
    block = own_model_block()
    code = [line for line in block.splitlines() if line.strip()]
    assert len(code) <= 25, "the README promises at most 25 lines of code"
    tiny, count = SIZES.subn(TINY, block)
    assert count == 1, "the block's sizes line changed: update SIZES in this test"
    return tiny


class _FieldsOf:
    """Stands in for a result: only the real result type's field names exist."""

    def __init__(self, result_type: type) -> None:
        self._names = {field.name for field in dataclasses.fields(result_type)}

    def __getattr__(self, name: str):
        if name not in self._names:
            raise AttributeError(name)
        return {"mle": [0.0]} if name.startswith("estimate") else ["holds"]


def _stand_in(config_type: type, result_type: type, seen: list):
    def run(config, **options):
        assert isinstance(config, config_type)
        assert config.spec.name == "my_exponential"
        assert config.surrogate == "gan"
        seen.append(config)
        return _FieldsOf(result_type)

    return run


def test_own_model_block_runs(monkeypatch, capsys):
    seen: list = []
    monkeypatch.setattr(
        jaxunc,
        "run_ensemble",
        _stand_in(jaxunc.EnsembleConfig, jaxunc.EnsembleResult, seen),
    )
    monkeypatch.setattr(
        jaxunc, "run_fisher", _stand_in(jaxunc.FisherConfig, jaxunc.FisherResult, seen)
    )
    exec(compile(tiny_block(), str(README), "exec"), {})
    assert [type(config) for config in seen] == [
        jaxunc.EnsembleConfig,
        jaxunc.FisherConfig,
    ]
    printed = capsys.readouterr().out
    spread = float(re.findall(r"[-+]?\d*\.\d+(?:e[-+]?\d+)?", printed)[0])
    std, stderr = generated_mean_spread(rate=2.0, n_train=100, n_gen=50, p=512)
    assert abs(spread - std) < K_SIGMA * stderr, (spread, std, stderr)


def generated_mean_spread(rate, n_train, n_gen, p):
    """The exact std of the mean of n_gen events of the ideal fit (MLE) of an
    exponential to n_train events, and the standard error of its estimate from p
    pseudo-experiments (delta method with the exact fourth central moment).

    x̄_gen = G_train G_gen / (λ n_train n_gen) with independent G_n ~ Gamma(n, 1)
    (the fit's 1/λ̂ is x̄_train), so E[x̄_gen^k] = Γ(n_train + k) Γ(n_gen + k) /
    ((λ n_train n_gen)^k Γ(n_train) Γ(n_gen)).
    """

    def moment(k):
        log = -k * math.log(rate * n_train * n_gen)
        log += math.lgamma(n_train + k) - math.lgamma(n_train)
        log += math.lgamma(n_gen + k) - math.lgamma(n_gen)
        return math.exp(log)

    m1, m2, m3, m4 = (moment(k) for k in (1, 2, 3, 4))
    variance = m2 - m1**2
    central4 = m4 - 4 * m3 * m1 + 6 * m2 * m1**2 - 3 * m1**4
    std = math.sqrt(variance)
    return std, math.sqrt((central4 - variance**2) / p) / (2 * std)


if __name__ == "__main__":  # every line for real, at the tiny sizes
    exec(compile(tiny_block(), str(README), "exec"), {})
