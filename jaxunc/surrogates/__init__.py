"""Surrogates (the "GAN" of the papers): ``fit(key, data)`` and
``sample(key, params, n)``."""

from jaxunc.surrogates.base import Surrogate
from jaxunc.surrogates.ideal import IdealFit

__all__ = ["IdealFit", "Surrogate"]
