"""Analytic targets with exact samples, log-densities, scores and noised laws."""

from scorelab.targets.gaussian import Gaussian
from scorelab.targets.mixture import GaussianMixture
from scorelab.targets.presets import PRESETS, anticorrelated, get_target, mixture_1d, mixture_2d

__all__ = [
    "PRESETS",
    "Gaussian",
    "GaussianMixture",
    "anticorrelated",
    "get_target",
    "mixture_1d",
    "mixture_2d",
]
