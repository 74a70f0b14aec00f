"""Score-matching losses; each returns one value per example, shape ``(B,)``."""

from scorelab.losses.conditional import conditional_dsm_loss, label_dropout
from scorelab.losses.dsm import WEIGHTINGS, continuous_dsm_loss, dsm_loss, multilevel_dsm_loss
from scorelab.losses.ism import implicit_score_matching_loss, sliced_score_matching_loss

__all__ = [
    "WEIGHTINGS",
    "conditional_dsm_loss",
    "continuous_dsm_loss",
    "dsm_loss",
    "implicit_score_matching_loss",
    "label_dropout",
    "multilevel_dsm_loss",
    "sliced_score_matching_loss",
]
