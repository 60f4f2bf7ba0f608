"""Surrogates (the "GAN" of the papers): ``fit(key, data)`` and
``sample(key, params, n)``."""

from jaxunc.surrogates.base import Surrogate
from jaxunc.surrogates.bootstrap import Bootstrap
from jaxunc.surrogates.flow import Flow
from jaxunc.surrogates.gan import GAN
from jaxunc.surrogates.ideal import IdealFit
from jaxunc.surrogates.kde import KDE

__all__ = ["GAN", "KDE", "Bootstrap", "Flow", "IdealFit", "Surrogate"]
