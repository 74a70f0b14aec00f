"""Noise schedules: σ ladders (``sigmas``) and linear forward SDEs with exact marginals."""

from scorelab.sde.sde import (
    SDE,
    SDES,
    VESDE,
    VPSDE,
    SubVPSDE,
    VESDELambda,
    get_sde,
    score_at_time,
)
from scorelab.sde.sigmas import geometric_sigmas, karras_sigmas

__all__ = [
    "SDE",
    "SDES",
    "SubVPSDE",
    "VESDE",
    "VESDELambda",
    "VPSDE",
    "geometric_sigmas",
    "get_sde",
    "karras_sigmas",
    "score_at_time",
]
