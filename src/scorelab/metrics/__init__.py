"""Sample-quality metrics: two-sample distances and their noise floor, mode weights and
component spreads, score error."""

from scorelab.metrics.distances import (
    DISTANCES,
    FloorResult,
    default_bandwidths,
    energy_distance,
    mmd,
    noise_floor,
    sliced_wasserstein,
)
from scorelab.metrics.modes import (
    component_axis_std_ratios,
    component_spread_report,
    fraction_below,
    mixture_weights,
    mode_separation,
    mode_weight_error,
    mode_weight_report,
    modes_separated,
)
from scorelab.metrics.protocol import (
    LawReference,
    Measurement,
    law_of_set,
    measure_against_law,
    measurements_to_dict,
    metric_generator,
)
from scorelab.metrics.score_error import ScoreErrorPerLevel, score_error, score_error_per_level

__all__ = [
    "DISTANCES",
    "FloorResult",
    "LawReference",
    "Measurement",
    "ScoreErrorPerLevel",
    "component_axis_std_ratios",
    "component_spread_report",
    "default_bandwidths",
    "energy_distance",
    "fraction_below",
    "law_of_set",
    "measure_against_law",
    "measurements_to_dict",
    "metric_generator",
    "mixture_weights",
    "mmd",
    "mode_separation",
    "mode_weight_error",
    "mode_weight_report",
    "modes_separated",
    "noise_floor",
    "score_error",
    "score_error_per_level",
    "sliced_wasserstein",
]
