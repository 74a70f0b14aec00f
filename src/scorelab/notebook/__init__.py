"""The seeds' notebook API, with their names, arguments and defaults, as thin shells over the core.

Seed 000 (DSM homework): ``DenoisingScoreMatcher``, ``ConditionedResnetBlock``,
``ConditionedSimpleResnet``, ``NoiseConditionedScoreNetwork`` and ``train_model``.
Seed 001 (diffusion homework): ``AntiCorrelatedGaussian``, ``langevin_sampler``, ``ScoreNet``,
``denoising_score_matching``, ``sample_simple``.
Seed 004 (diffusion tutorial): ``GaussianMixture``, ``sigma_t_square``, ``sigma_t``,
``diffuse_gmm``, ``reverse_diffusion_SDE_sampling_gmm``, ``GaussianFourierProjection``,
``ScoreModel_Time``, ``loss_fn``, ``reverse_diffusion_SDE_sampling``.

Every computation is done by scorelab's core (targets, sde, samplers, losses, models, plotting);
these shells only convert types (seeds 001 and 004 speak NumPy) and keep the seeds' shapes.
They mimic notebooks: without a ``generator`` keyword they draw from the global torch RNG.
"""

from scorelab.notebook.seed000 import (
    ConditionedResnetBlock,
    ConditionedSimpleResnet,
    DenoisingScoreMatcher,
    NoiseConditionedScoreNetwork,
)
from scorelab.notebook.seed001 import (
    LANGEVIN_TAU,
    AntiCorrelatedGaussian,
    ScoreNet,
    denoising_score_matching,
    langevin_sampler,
    sample_simple,
)
from scorelab.notebook.seed004 import (
    GaussianFourierProjection,
    GaussianMixture,
    ScoreModel_Time,
    diffuse_gmm,
    loss_fn,
    reverse_diffusion_SDE_sampling,
    reverse_diffusion_SDE_sampling_gmm,
    sigma_t,
    sigma_t_square,
)
from scorelab.notebook.train import train_model

__all__ = [
    "LANGEVIN_TAU",
    "AntiCorrelatedGaussian",
    "ConditionedResnetBlock",
    "ConditionedSimpleResnet",
    "DenoisingScoreMatcher",
    "GaussianFourierProjection",
    "GaussianMixture",
    "NoiseConditionedScoreNetwork",
    "ScoreModel_Time",
    "ScoreNet",
    "denoising_score_matching",
    "diffuse_gmm",
    "langevin_sampler",
    "loss_fn",
    "reverse_diffusion_SDE_sampling",
    "reverse_diffusion_SDE_sampling_gmm",
    "sample_simple",
    "sigma_t",
    "sigma_t_square",
    "train_model",
]
