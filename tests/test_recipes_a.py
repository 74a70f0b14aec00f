"""Recipes of seeds 001–003 in fast mode (report, figures, numbers) and their exact helpers."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
from PIL import Image

from scorelab.recipes import get_recipe, run_recipe
from scorelab.recipes.coverage import items_for
from scorelab.recipes.seed001 import _ula_covariance
from scorelab.recipes.seed002 import two_mode_mixture
from scorelab.recipes.seed003 import (
    SIGMA_MIN,
    l1_distance,
    recover_pdf_along_x,
    recover_pdf_through_levels,
)
from scorelab.targets import mixture_1d

FIGURES = {
    "seed001-langevin": ["langevin_vs_exact.png", "trajectories.png", "covariance_over_steps.png"],
    "seed001-swiss-roll": ["score_field.png", "score_ascent_trail.png", "loss.png"],
    "seed002-low-density": [
        "score_error_maps.png",
        "score_error_vs_density.png",
        "plain_vs_annealed.png",
        "annealed_langevin.gif",
        "losses.png",
    ],
    "seed003-mixture-1d": [
        "data.png",
        "score_fit.png",
        "pdf_recovered.png",
        "loss.png",
        "langevin_shares.png",
        "score_fit.gif",
        "pdf_fit.gif",
        # The seed's own protocol and figures, beside the improved method's.
        "seed_score_and_sample.png",
        "seed_fitting.png",
        "seed_last_fitting.png",
        "seed_pdf_per_sigma.png",
        "seed_pdf_last.png",
        "seed_loss.png",
        "seed_score_fit.gif",
        "seed_pdf_fit.gif",
    ],
}


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    """``fast_run(name)``: the recipe run once in fast mode (cached for the module) as
    ``(output folder, report path, numbers)``."""
    runs = {}

    def run(name: str):
        if name not in runs:
            out = tmp_path_factory.mktemp(name)
            report = run_recipe(get_recipe(name), out, fast=True, seed=0)
            body = json.loads((out / "numbers.json").read_text())
            assert body["config"]["recipe"] == name and body["config"]["fast"] is True
            runs[name] = (out, report, body["numbers"])
        return runs[name]

    return run


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_report_embeds_every_figure(fast_run, name):
    out, report, numbers = fast_run(name)
    page = report.read_text(encoding="utf-8")
    for figure in FIGURES[name]:
        path = out / figure
        kind = "GIF" if figure.endswith(".gif") else "PNG"
        with Image.open(path) as im:
            assert im.format == kind
            assert im.size[0] > 100 and im.size[1] > 100
            if kind == "GIF":
                assert im.n_frames > 1
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        assert f"alt='{figure}' src='data:image/{kind.lower()};base64,{data}'" in page
    assert f"scorelab run {name}" in page
    assert page.count("<p>") >= 3  # the description and at least two notes
    assert numbers["seconds"] > 0
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp files left
    # Every figure and number of the seed that this recipe reproduces (recipes/coverage.py).
    files, keys = items_for(name)
    assert set(files) <= set(FIGURES[name]) and set(keys) <= set(numbers)


def test_langevin_matches_the_gaussian(fast_run):
    numbers = fast_run("seed001-langevin")[2]
    sigma = np.array([[1.0, -0.7], [-0.7, 1.0]])
    assert np.allclose(numbers["true_cov"], sigma)
    # 1000 chains: an entry's standard error is <= 0.045, so 0.15 is more than 3 of them.
    assert np.abs(np.array(numbers["sample_cov"]) - sigma).max() < 0.15
    assert np.abs(numbers["sample_mean"]).max() < 0.15
    assert numbers["sliced_w2_vs_exact"]["ratio"] < 2.0
    # After the seed's K = 20 states the chains still remember the wide start 2·N(0, I).
    assert numbers["cov_after_seed_K20"][0][0] > 1.3


def test_ula_covariance_is_the_chains_fixed_point():
    # For x ← x + η/2·(−P x) + √η z the stationary covariance C solves C = A C Aᵀ + η I with
    # A = I − η/2·P; check the closed form against that fixed-point equation.
    cov = torch.tensor([[1.0, -0.7], [-0.7, 1.0]], dtype=torch.float64)
    eta = 0.3
    c = _ula_covariance(cov, eta)
    a = torch.eye(2, dtype=torch.float64) - eta / 2 * torch.linalg.inv(cov)
    assert torch.allclose(c, a @ c @ a.T + eta * torch.eye(2, dtype=torch.float64), atol=1e-12)


def test_swiss_roll_trail_and_field(fast_run):
    numbers = fast_run("seed001-swiss-roll")[2]
    trail = np.array(numbers["trail"])
    assert trail.shape == (21, 2)
    assert np.allclose(trail[0], [1.5, 1.5])
    assert numbers["sigma"] == 0.01
    # Even a briefly trained field points back to the roll off the data, and ascent approaches it.
    assert numbers["field_fraction_pointing_to_data"] > 0.6
    assert numbers["trail_distance_to_data_end"] < numbers["trail_distance_to_data_start"]
    # The loss is dominated by the noise term d/(2σ²) = 10⁴.
    assert 0.5e4 < numbers["final_loss_mean_last_50"] < 2e4


def test_low_density_mode_shares(fast_run):
    numbers = fast_run("seed002-low-density")[2]
    assert numbers["true_weights"] == [0.2, 0.8]
    # Plain Langevin keeps the shares of its uniform start (about 1/2 each side of the diagonal).
    assert abs(numbers["mode_weights_plain_exact"][0] - 0.5) < 0.12
    # Annealed Langevin with the exact score (full step count even in fast mode: it is cheap)
    # recovers the true 0.2 (300 chains: binomial standard error 0.023).
    assert abs(numbers["mode_weights_annealed_exact"][0] - 0.2) < 0.07
    for key in ("sigma_0.1", "sigma_4"):
        assert numbers[f"{key}_median_error_where_dense"] > 0
        assert numbers[f"{key}_median_error_where_sparse"] > 0


def test_two_mode_mixture_is_the_papers():
    target = two_mode_mixture()
    assert torch.allclose(target.weights, torch.tensor([0.2, 0.8], dtype=torch.float64))
    x = torch.tensor([[-5.0, -5.0], [5.0, 5.0]], dtype=torch.float64)
    assert torch.allclose(target.score(x), torch.zeros(2, 2, dtype=torch.float64), atol=1e-10)


def test_mixture_1d_recipe_numbers(fast_run):
    numbers = fast_run("seed003-mixture-1d")[2]
    # p_σmin is within L1 0.005 of p, so recovering p_σmin recovers p.
    assert numbers["l1_p_sigma_min_vs_p"] < 0.005
    # Exact draws: within 4 binomial standard errors of the true share 0.10122.
    n_true = numbers.get("n_samples", 20_000)
    assert abs(numbers["share_below_0_true"] - 0.10122) < 4 * (0.1 * 0.9 / n_true) ** 0.5
    # Plain Langevin from N(0, 4) leaves far too much in the small mode; annealed gets ~0.1
    # (1000 chains: standard error 0.01).
    assert numbers["share_below_0_plain_exact"] > 0.2
    assert abs(numbers["share_below_0_annealed_exact"] - 0.101) < 0.04
    for key in ("l1_seed_method_sigma_0.5_vs_p", "l1_recovered_vs_p", "l1_mle_floor"):
        assert 0 < numbers[key] < 2
    # The seed's protocol runs beside the improved one, on the seed's 1024 draws and 6 levels.
    seed, improved = numbers["comparison"]["as_in_seed"], numbers["comparison"]["improved"]
    assert seed["n_train"] == 1024 and numbers["seed_sigmas"][0] == 2.0
    assert len(numbers["seed_sigmas"]) == 6 and abs(numbers["seed_sigmas"][-1] - 0.5) < 1e-9
    for side in (seed, improved):
        assert len(side["relative_score_error_at_seed_levels"]) == 6
        assert 0 <= side["share_below_0_annealed_learned"] <= 1
    # The seed's recovery estimates p_0.5, so it is closer to p_0.5 than to p.
    assert seed["l1_pdf_vs_p_0.5"] < seed["l1_pdf_vs_p"]
    page = fast_run("seed003-mixture-1d")[1].read_text(encoding="utf-8")
    assert "<h3>comparison: as in the seed and improved</h3>" in page


def _exact_1d(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return mixture_1d().noised_score(x.double(), sigma.double())


def test_recovery_along_x_gives_the_noised_pdf():
    # Integrating the exact score of p_σ over x gives p_σ (the seed's recovery), not p.
    target = mixture_1d()
    grid = torch.linspace(-10, 10, 2001, dtype=torch.float64)[:, None]
    dx = float(grid[1, 0] - grid[0, 0])
    q = recover_pdf_along_x(target.noised_score(grid, 0.5).numpy().ravel(), dx)
    assert l1_distance(q, target.noised_log_prob(grid, 0.5).exp().numpy(), dx) < 1e-4
    assert l1_distance(q, target.log_prob(grid).exp().numpy(), dx) > 0.1


def test_recovery_through_levels_with_the_exact_score():
    # With the exact noised score the heat-equation route lands on p_σmin.
    target = mixture_1d()
    grid = torch.linspace(-10, 10, 1001, dtype=torch.float64)[:, None]
    dx = float(grid[1, 0] - grid[0, 0])
    q = recover_pdf_through_levels(_exact_1d, grid, SIGMA_MIN, 2.0, 48)
    assert l1_distance(q, target.noised_log_prob(grid, SIGMA_MIN).exp().numpy(), dx) < 2e-3
    assert l1_distance(q, target.log_prob(grid).exp().numpy(), dx) < 5e-3
