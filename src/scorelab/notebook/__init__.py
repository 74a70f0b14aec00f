"""The seeds' notebook API, with their names, arguments and defaults, as thin shells over the core.

Seed 000 (DSM homework): ``generate_moons_data``, ``DenoisingScoreMatcher``,
``ConditionedResnetBlock``, ``ConditionedSimpleResnet``, ``NoiseConditionedScoreNetwork`` and
``train_model``.
Seed 001 (diffusion homework): ``AntiCorrelatedGaussian``, ``langevin_sampler``, ``sample_batch``,
``ScoreNet``, ``denoising_score_matching``, ``plot_gradients``, ``sample_simple``.
Seed 004 (diffusion tutorial): ``set_seed``, ``seed_worker``, ``GaussianMixture``,
``sigma_t_square``, ``sigma_t``, ``diffuse_gmm``, ``reverse_diffusion_SDE_sampling_gmm``,
``GaussianFourierProjection``, ``ScoreModel_Time``, ``loss_fn``, ``sample_X_and_score_t_depend``,
``test_DSM_objective``, ``reverse_diffusion_SDE_sampling``, and the plotting helpers
``kdeplot``, ``quiver_plot``, ``gmm_pdf_contour_plot``, ``visualize_diffusion_distr``.

The seeds' classes are drop-in: same attribute and ``state_dict`` names, so a state dict saved
from a seed's class loads into scorelab's with ``strict=True`` (tested against the seed texts).

Every computation is done by scorelab's core (targets, sde, samplers, losses, models, plotting);
these shells only convert types (seeds 001 and 004 speak NumPy) and keep the seeds' shapes.
They mimic notebooks: without a ``generator`` keyword they draw from the global torch RNG.
"""

from scorelab.notebook.data import generate_moons_data, sample_batch, sample_X_and_score_t_depend
from scorelab.notebook.dsm_check import test_DSM_objective
from scorelab.notebook.plots import (
    gmm_pdf_contour_plot,
    kdeplot,
    plot_gradients,
    quiver_plot,
    visualize_diffusion_distr,
)
from scorelab.notebook.seed000 import (
    ConditionedResnetBlock,
    ConditionedSimpleResnet,
    DenoisingScoreMatcher,
    NoiseConditionedScoreNetwork,
)
from scorelab.notebook.seed001 import (
    LANGEVIN_MIXING_TOL,
    LANGEVIN_TAU,
    AntiCorrelatedGaussian,
    LangevinNotMixedWarning,
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
from scorelab.notebook.seeding import seed_worker, set_seed
from scorelab.notebook.train import train_model

__all__ = [
    "LANGEVIN_MIXING_TOL",
    "LANGEVIN_TAU",
    "AntiCorrelatedGaussian",
    "ConditionedResnetBlock",
    "ConditionedSimpleResnet",
    "DenoisingScoreMatcher",
    "GaussianFourierProjection",
    "GaussianMixture",
    "LangevinNotMixedWarning",
    "NoiseConditionedScoreNetwork",
    "ScoreModel_Time",
    "ScoreNet",
    "denoising_score_matching",
    "diffuse_gmm",
    "generate_moons_data",
    "gmm_pdf_contour_plot",
    "kdeplot",
    "langevin_sampler",
    "loss_fn",
    "plot_gradients",
    "quiver_plot",
    "reverse_diffusion_SDE_sampling",
    "reverse_diffusion_SDE_sampling_gmm",
    "sample_X_and_score_t_depend",
    "sample_batch",
    "sample_simple",
    "seed_worker",
    "set_seed",
    "sigma_t",
    "sigma_t_square",
    "test_DSM_objective",
    "train_model",
    "visualize_diffusion_distr",
]
