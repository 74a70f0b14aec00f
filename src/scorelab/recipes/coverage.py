"""What each seed draws and computes, and which recipe output reproduces it.

The table is derived by reading the seeds (their figures: every plotting cell; their numbers:
every value a cell prints or tests). Each row names the recipe and the file (figure) or the
``numbers.json`` key that reproduces it. ``tests/test_recipes_a.py`` and ``tests/test_recipes_b.py``
run every recipe in fast mode and check that each row's file and key are written, so the claim
"every figure and number of the seeds is reproduced" stays checked.
"""

from __future__ import annotations

from typing import NamedTuple


class SeedItem(NamedTuple):
    """One figure or number of a seed: the seed, what it shows, the recipe, the output."""

    seed: str
    what: str
    recipe: str
    output: str  # a file name (figure) or a numbers.json key (number)


SEED_FIGURES: tuple[SeedItem, ...] = (
    # 000: "Denoising score matching" homework.
    SeedItem("000", "visualize_2d_data: moons train/test coloured by label",
             "seed000-moons", "moons_data.png"),
    SeedItem("000", "train_model: DSM train/test loss (moons)", "seed000-moons", "loss_curves.png"),
    SeedItem("000", "visualize_2d_samples: Langevin samples from U[-1, 1]",
             "seed000-moons", "samples_vs_data.png"),
    SeedItem("000", "visualize_images: MNIST samples", "seed000-ncsn-mnist", "data.png"),
    SeedItem("000", "train_model: NCSN train/test loss (MNIST)",
             "seed000-ncsn-mnist", "loss_curves.png"),
    SeedItem("000", "show_samples: 100 NCSN samples (MNIST)", "seed000-ncsn-mnist", "samples.png"),
    # 001: "Diffusion models" homework.
    SeedItem("001", "Langevin samples (EST) against ground truth (GT)",
             "seed001-langevin", "langevin_vs_exact.png"),
    SeedItem("001", "swiss-roll data with plot_gradients (log1p quiver of the learned score)",
             "seed001-swiss-roll", "score_field.png"),
    SeedItem("001", "score-ascent trail from (1.5, 1.5) over the score field",
             "seed001-swiss-roll", "score_ascent_trail.png"),
    # 002: "Score matching" seminar.
    SeedItem("002", "inaccurate score in low-density regions, accurate with large σ",
             "seed002-low-density", "score_error_maps.png"),
    SeedItem("002", "animation of annealed Langevin dynamics",
             "seed002-low-density", "annealed_langevin.gif"),
    # 003: "Multiple denoising score matching" notes.
    SeedItem("003", "PDF and histogram of the sample data", "seed003-mixture-1d", "data.png"),
    SeedItem("003", "the score function and the sample",
             "seed003-mixture-1d", "seed_score_and_sample.png"),
    SeedItem("003", "Fitting: learned score at each σ", "seed003-mixture-1d", "seed_fitting.png"),
    SeedItem("003", "Last Fitting: learned score at σ_L",
             "seed003-mixture-1d", "seed_last_fitting.png"),
    SeedItem("003", "PDF from the predicted score at each σ",
             "seed003-mixture-1d", "seed_pdf_per_sigma.png"),
    SeedItem("003", "PDF recovered with the smallest noise",
             "seed003-mixture-1d", "seed_pdf_last.png"),
    SeedItem("003", "animation: fitting evolution of the score",
             "seed003-mixture-1d", "seed_score_fit.gif"),
    SeedItem("003", "animation: fitting evolution of the PDF",
             "seed003-mixture-1d", "seed_pdf_fit.gif"),
    SeedItem("003", "evolution of the loss", "seed003-mixture-1d", "seed_loss.png"),
    # 004: "Diffusion models" tutorial.
    SeedItem("004", "1-D diffusion process with g(t) = λ^t",
             "seed004-forward", "forward_1d_paths.png"),
    SeedItem("004", "2-D diffusion process animation", "seed004-forward", "forward_2d.gif"),
    SeedItem("004", "log density of the Gaussian mixture with samples",
             "seed004-mixture", "log_density.png"),
    SeedItem("004", "score vector field of the mixture", "seed004-mixture", "score_field.png"),
    SeedItem("004", "score of each Gaussian mode", "seed004-mixture", "score_modes.png"),
    SeedItem("004", "weighted mode scores and the mixture score",
             "seed004-mixture", "score_components.png"),
    SeedItem("004", "Exercise 1.3: reverse diffusion (exact score) vs mixture samples",
             "seed004-mixture", "exercise_1_3_kde.png"),
    SeedItem("004", "visualize_diffusion_distr: prior x_T and x_0 densities",
             "seed004-mixture", "diffusion_distr.png"),
    SeedItem("004", "DSM loss and train/test score MSE over epochs",
             "seed004-learned", "seed_training_curves.png"),
    SeedItem("004", "reverse diffusion with the learned vs exact score vs mixture samples",
             "seed004-learned", "seed_sampling_kde.png"),
)  # fmt: skip

SEED_NUMBERS: tuple[SeedItem, ...] = (
    SeedItem("000", "train/test loss per epoch (moons)", "seed000-moons", "loss"),
    SeedItem("000", "print(SIGMAS): the geometric noise levels", "seed000-ncsn-mnist", "sigmas"),
    SeedItem("000", "train/test loss per epoch (NCSN)", "seed000-ncsn-mnist", "loss"),
    SeedItem("001", "Langevin sample moments against the Gaussian's", "seed001-langevin",
             "sample_cov"),
    SeedItem("001", "the score-ascent trail from (1.5, 1.5)", "seed001-swiss-roll", "trail"),
    SeedItem("001", "DSM training loss", "seed001-swiss-roll", "final_loss_mean_last_50"),
    SeedItem("002", "mode weights after annealed Langevin", "seed002-low-density",
             "mode_weights_annealed_learned"),
    SeedItem("003", "the σ ladder (L = 6, 2.0 → 0.5)", "seed003-mixture-1d", "seed_sigmas"),
    SeedItem("003", "the loss printed over training (as in the seed and improved)",
             "seed003-mixture-1d", "comparison"),
    SeedItem("004", "σ_t² = (λ^{2t} − 1)/(2 ln λ) at t = 1", "seed004-forward", "sigma_1"),
    SeedItem("004", "weighted component scores sum to the score", "seed004-mixture",
             "component_sum_max_error"),
    SeedItem("004", "Exercise 1.3 (λ = 10, 2500 samples, 200 steps) and improved",
             "seed004-mixture", "exercise_1_3"),
    SeedItem("004", "the loss is zero for the exact score of a point mass", "seed004-learned",
             "dsm_loss_point_mass_exact_score"),
    SeedItem("004", "DSM loss, train and test score MSE (as the seed computes it and corrected)",
             "seed004-learned", "score_error"),
)  # fmt: skip


def items_for(recipe: str) -> tuple[list[str], list[str]]:
    """The files and the numbers.json keys the table expects from ``recipe``."""
    files = [row.output for row in SEED_FIGURES if row.recipe == recipe]
    keys = [row.output for row in SEED_NUMBERS if row.recipe == recipe]
    return files, keys
