"""Training objectives by name, each with the sampler that matches it (``scorelab train
--objective``).

Every objective trains the same kind of network — a noise-conditional score ``s(x, σ)`` (the
preset's ``ScoreMLP`` or ``SmallUNet``) — because every noising scheme here is a VE process up to
a scale: a network of ``(x, σ)`` is a network of SDE time through ``σ̃_t`` and
``scorelab.sde.score_at_time`` (docs/ARCHITECTURE.md), and a single-σ network is one evaluated at
that σ. What differs is the law of σ, the weighting, and the sampler the trained score suits:

======================  ==================================================  =====================
objective               loss (one value per example)                        matching sampler
======================  ==================================================  =====================
``edm``                 EDM: log-normal σ, λ = (σ²+σ_d²)/(σσ_d)² (Karras    the preset's
                        et al. 2022) — the default
``dsm``                 single-σ DSM at σ = 0.01·σ_data (Vincent 2011;      Langevin at that σ
                        seed 001)
``multilevel-dsm``      NCSN: 10 geometric levels, one per example, λ = σ²  annealed Langevin
                        (Song & Ermon 2019; seeds 000, 002, 003)
``ve-lambda``, ``ve``,  continuous-time DSM ‖σ_t s(x_t, t) + z‖², t ~ U[ε, 1]   reverse SDE of the
``vp``, ``subvp``       (Song et al. 2021, eq. 7; seed 004)                 same SDE
``ism``, ``ssm``        implicit (Hyvärinen 2005) / sliced (Song et al.     Langevin
                        2019) score matching of the clean data, s(x, σ_min)
======================  ==================================================  =====================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from scorelab.data.stats import DataStats
from scorelab.losses import (
    continuous_dsm_loss,
    dsm_loss,
    implicit_score_matching_loss,
    multilevel_dsm_loss,
    sliced_score_matching_loss,
)
from scorelab.samplers.registry import SamplerConfig
from scorelab.sde import geometric_sigmas, get_sde
from scorelab.training.loop import LossFn

#: The single-σ objective's noise level, as a fraction of σ_data (seed 001: 0.01 on data of
#: σ_data ≈ 0.5).
DSM_SIGMA_FRACTION = 0.02
#: Levels of the multi-level (NCSN) objective.
NCSN_LEVELS = 10
#: λ of the ve-lambda SDE (seed 004).
VE_LAMBDA = 25.0


@dataclass(frozen=True)
class Objective:
    """A named training objective: its description and its matching sampler."""

    name: str
    description: str
    sampler: SamplerConfig | None  # None: the preset's own sampler


OBJECTIVES: dict[str, Objective] = {
    o.name: o
    for o in (
        Objective("edm", "EDM denoising score matching (log-normal σ, EDM weighting)", None),
        Objective(
            "dsm",
            "denoising score matching at one σ = 0.02·σ_data (seed 001)",
            SamplerConfig("langevin", 1000),
        ),
        Objective(
            "multilevel-dsm",
            "NCSN: 10 geometric σ levels, λ(σ) = σ² (seeds 000, 002, 003)",
            SamplerConfig("annealed-langevin", 100, {"levels": NCSN_LEVELS}),
        ),
        *(
            Objective(
                sde,
                f"continuous-time DSM on the {sde} SDE, λ(t) = σ_t² (seed 004)",
                SamplerConfig("reverse-sde", 500, {"sde": sde}),
            )
            for sde in ("ve-lambda", "ve", "vp", "subvp")
        ),
        Objective(
            "ism",
            "implicit score matching of the clean data (Hyvärinen 2005)",
            SamplerConfig("langevin", 1000),
        ),
        Objective(
            "ssm",
            "sliced score matching of the clean data (Song et al. 2019)",
            SamplerConfig("langevin", 1000),
        ),
    )
}


def get_objective(name: str) -> Objective:
    """The objective called ``name``, with an error listing the valid names."""
    if name not in OBJECTIVES:
        raise ValueError(
            f"unknown objective {name!r} (--objective); choose one of {', '.join(OBJECTIVES)}"
        )
    return OBJECTIVES[name]


def _sde(name: str, sigma_min: float, sigma_max: float):
    if name == "ve":
        return get_sde("ve", sigma_min=sigma_min, sigma_max=sigma_max)
    if name == "ve-lambda":
        return get_sde("ve-lambda", lam=VE_LAMBDA)
    return get_sde(name)


def _as_loss_fn(loss, **kwargs: Any) -> LossFn:
    """``loss_fn(model, x0, generator)`` (the training loop's form) from a library loss."""

    def loss_fn(model, x0: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return loss(model, x0, generator=generator, **kwargs)

    return loss_fn


def objective_loss(
    name: str, stats: DataStats, sigma_min: float, sigma_max: float
) -> tuple[LossFn, dict[str, Any]]:
    """``(loss_fn, noise)`` of a non-EDM objective on data with ``stats`` over the training
    range ``[sigma_min, sigma_max]``; ``noise`` records what the loss uses (a run's config).

    For ``dsm``, ``ism`` and ``ssm`` the recorded ``sigma_min`` is the one level the network is
    trained at, which is also where the run's Langevin sampler evaluates it.
    """
    get_objective(name)
    noise: dict[str, Any] = {"objective": name, "sigma_min": sigma_min, "sigma_max": sigma_max}
    if name == "dsm":
        sigma = DSM_SIGMA_FRACTION * stats.sigma_data
        noise.update(sigma_min=sigma, distribution=f"one level σ = {sigma:.4g}")
        return _as_loss_fn(dsm_loss, sigma=sigma), noise
    if name == "multilevel-dsm":
        levels = geometric_sigmas(NCSN_LEVELS, sigma_min=sigma_min, sigma_max=sigma_max).tolist()
        noise.update(distribution=f"{NCSN_LEVELS} geometric levels, one per example", levels=levels)
        loss = _as_loss_fn(multilevel_dsm_loss, sigmas=levels, weighting="sigma2", mode="random")
        return loss, noise
    if name in ("ism", "ssm"):
        loss = implicit_score_matching_loss if name == "ism" else sliced_score_matching_loss
        noise.update(distribution=f"clean data; the network at σ = {sigma_min:.4g}")
        return _as_loss_fn(loss, sigma=sigma_min), noise
    sde = _sde(name, sigma_min, sigma_max)
    noise.update(distribution=f"t ~ U[1e-5, 1] on the {name} SDE, λ(t) = σ_t²")
    return _as_loss_fn(continuous_dsm_loss, sde=sde), noise
