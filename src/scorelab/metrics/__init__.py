"""Sample-quality metrics: two-sample distances and their noise floor, mode weights, score error."""

from scorelab.metrics.distances import (
    DISTANCES,
    FloorResult,
    compare_to_floor,
    default_bandwidths,
    energy_distance,
    mmd,
    noise_floor,
    sliced_wasserstein,
)
from scorelab.metrics.modes import fraction_below, mixture_weights, mode_weight_error
from scorelab.metrics.score_error import ScoreErrorPerLevel, score_error, score_error_per_level

__all__ = [
    "DISTANCES",
    "FloorResult",
    "ScoreErrorPerLevel",
    "compare_to_floor",
    "default_bandwidths",
    "energy_distance",
    "fraction_below",
    "mixture_weights",
    "mmd",
    "mode_weight_error",
    "noise_floor",
    "score_error",
    "score_error_per_level",
    "sliced_wasserstein",
]
