"""Analytic targets with exact samples, log-densities, scores and noised laws."""

from scorelab.targets.conditional import ClassConditionalMixture, ObservedMixture
from scorelab.targets.files import (
    MixtureFileError,
    is_mixture_file,
    load_mixture,
    mixture_from_arrays,
    mixture_from_dict,
    mixture_to_dict,
    save_mixture,
)
from scorelab.targets.gaussian import Gaussian
from scorelab.targets.mixture import GaussianMixture
from scorelab.targets.presets import (
    PRESET_DESCRIPTIONS,
    PRESET_TABLE,
    PRESETS,
    Preset,
    aniso_16d,
    anticorrelated,
    describe_targets,
    get_target,
    mixture_1d,
    mixture_2d,
    ring_8,
    spiral_2d,
)

__all__ = [
    "PRESETS",
    "PRESET_DESCRIPTIONS",
    "PRESET_TABLE",
    "ClassConditionalMixture",
    "Gaussian",
    "GaussianMixture",
    "MixtureFileError",
    "ObservedMixture",
    "Preset",
    "aniso_16d",
    "anticorrelated",
    "describe_targets",
    "get_target",
    "is_mixture_file",
    "load_mixture",
    "mixture_1d",
    "mixture_2d",
    "mixture_from_arrays",
    "mixture_from_dict",
    "mixture_to_dict",
    "ring_8",
    "save_mixture",
    "spiral_2d",
]
