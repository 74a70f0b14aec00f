"""Recipes of seeds 000 and 004 run in fast mode: report, numbers and figures, and one number per
recipe checked against what the maths says it must be.

- seed000-moons: Langevin moves U[-1, 1] starts towards the moons; the held-out DSM loss falls.
- seed000-ncsn-digits: the held-out loss falls; samples are finite images of the data's shape.
- seed004-forward: the simulated x_1 has the exact marginal spread √(Var x_0 + σ_1²).
- seed004-mixture: the weighted component scores sum to the mixture score; exact-score reverse-SDE
  samples have the mixture's mean (within 4 standard errors) and sit at the noise floor.
- seed004-learned: training lowers the error against the exact score on held-out points.
"""

from __future__ import annotations

import base64
import json
import math

import pytest
from PIL import Image

from scorelab.recipes import all_recipes, get_recipe, run_recipe
from scorelab.recipes.seed000 import DIGITS, ImageSettings, ncsn_recipe

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

FIGURES = {
    "seed000-moons": {
        "loss_curves.png", "samples_vs_data.png", "denoised_vs_data.png", "score_field.png",
    },
    "seed000-ncsn-digits": {
        "loss_curves.png", "samples.png", "data.png", "nearest_neighbours.png",
    },
    "seed004-forward": {
        "forward_1d_paths.png", "forward_1d_marginals.png", "forward_2d.gif",
        "forward_2d_snapshots.png",
    },
    "seed004-mixture": {
        "log_density.png", "score_field.png", "score_components.png", "diffused_mixture.png",
        "exact_sampling_kde.png",
    },
    "seed004-learned": {
        "training_curves.png", "score_error_vs_time.png", "learned_sde_kde.png",
        "learned_ode_kde.png",
    },
}  # fmt: skip

KEYS = {
    "seed000-moons": {
        "loss", "samples_vs_data", "samples_vs_noised_data", "denoised_vs_data",
        "start_sliced_w2", "samples_sliced_w2", "right_moon_fraction",
    },
    "seed000-ncsn-digits": {"sigmas", "loss", "sample_range", "quality"},
    "seed004-forward": {"sigma_1", "x1_std", "x1_std_exact", "x1_2d_var", "x1_2d_var_exact"},
    "seed004-mixture": {
        "component_sum_max_error", "exact_sde", "exact_ode", "exact_ode_matched_prior",
        "exact_sde_moments",
        "mixture_moments", "n_samples",
    },
    "seed004-learned": {
        "score_mse_start", "score_mse_final", "final_dsm_loss", "exact_sde", "learned_sde",
        "exact_ode", "learned_ode", "exact_ode_matched_prior", "learned_ode_matched_prior",
    },
}  # fmt: skip


@pytest.fixture(scope="module", params=sorted(FIGURES))
def finished(request, tmp_path_factory):
    """Each recipe run once in fast mode: ``(name, out_dir, numbers, report_html)``."""
    name = request.param
    out = tmp_path_factory.mktemp(name)
    report = run_recipe(get_recipe(name), out, fast=True, seed=0)
    body = json.loads((out / "numbers.json").read_text())
    return name, out, body, report.read_text(encoding="utf-8")


def test_recipes_are_listed() -> None:
    recipes = all_recipes()
    for name in FIGURES:
        assert name in recipes
        assert recipes[name].seed_doc == name[4:7]
    # Every recipe fits the 3-minute budget (measured: benchmarks/RESULTS_recipes.md) and the
    # image recipe, the one that could outgrow it on other image sets, states its time.
    assert "minutes on 2 CPU cores" in recipes["seed000-ncsn-digits"].description
    assert all(r.minutes <= 3 for n, r in recipes.items() if n in FIGURES)


def test_ncsn_recipe_names_its_dataset() -> None:
    recipe = ncsn_recipe(ImageSettings(dataset="mnist-subset", minutes=30))
    assert recipe.name == "seed000-ncsn-mnist-subset"
    assert recipe.run.keywords["settings"].dataset == "mnist-subset"
    assert get_recipe("seed000-ncsn-digits").run.keywords["settings"] == DIGITS


def test_outputs_and_report(finished) -> None:
    name, out, body, html = finished
    figures = {p.name for p in out.iterdir() if p.suffix in (".png", ".gif")}
    assert figures == FIGURES[name]
    for fig in figures:
        data = (out / fig).read_bytes()
        if fig.endswith(".png"):
            assert data.startswith(PNG_MAGIC)
        else:
            assert data[:6] == b"GIF89a"
            assert Image.open(out / fig).n_frames > 1
        with Image.open(out / fig) as img:
            img.verify()
        # The report embeds exactly this file.
        assert f"alt='{fig}'" in html
        assert base64.b64encode(data).decode("ascii") in html
    assert KEYS[name] <= set(body["numbers"])
    assert (body["config"]["recipe"], body["config"]["fast"]) == (name, True)
    assert f"scorelab run {name}" in body["command"] and "--fast" in body["command"]
    for key in body["numbers"]:
        assert f"<td>{key}</td>" in html


def test_sanity_number(finished) -> None:
    name, _, body, _ = finished
    num = body["numbers"]
    if name == "seed000-moons":
        assert num["samples_sliced_w2"] < 0.6 * num["start_sliced_w2"]
        assert num["loss"]["test_final"] < num["loss"]["test_first"]
    elif name == "seed000-ncsn-digits":
        assert num["loss"]["test_final"] < num["loss"]["test_first"]
        lo, hi = num["sample_range"]
        assert math.isfinite(lo) and math.isfinite(hi) and -20 < lo < hi < 20
        assert num["sigmas"][0] == DIGITS.sigma_max and len(num["sigmas"]) == DIGITS.n_levels
    elif name == "seed004-forward":
        # Var x_1 = Var x_0 + σ_1²: 26 + σ_1² in 1-D (400 paths), 4.04 + σ_1² per axis in 2-D (200).
        assert num["x1_std"] == pytest.approx(num["x1_std_exact"], rel=0.15)
        for v in num["x1_2d_var"]:
            assert 0.65 < v / num["x1_2d_var_exact"] < 1.4
    elif name == "seed004-mixture":
        assert num["component_sum_max_error"] < 1e-12
        n, mean = num["n_samples"], num["mixture_moments"]["mean"]
        cov = num["mixture_moments"]["cov"]
        for d in range(2):
            se = math.sqrt(cov[d][d] / n)
            assert abs(num["exact_sde_moments"]["mean"][d] - mean[d]) < 4 * se
        assert num["exact_sde"]["sliced_w2_ratio"] < 2.0
    else:
        start, final = num["score_mse_start"], num["score_mse_final"]
        assert final["test"] < 0.6 * start["test"]
