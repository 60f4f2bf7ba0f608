"""The public API imports, and the numerical core never imports matplotlib."""

from __future__ import annotations

import subprocess
import sys

import jaxunc


def test_public_names_resolve():
    for name in jaxunc.__all__:
        assert getattr(jaxunc, name) is not None, name


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
