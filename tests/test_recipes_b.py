"""Recipes of seeds 000 and 004 run in fast mode: report, numbers and figures, and one number per
recipe checked against what the maths says it must be.

- seed000-moons: Langevin moves U[-1, 1] starts towards the moons; the held-out DSM loss falls.
- seed000-ncsn-digits / seed000-ncsn-mnist: the held-out loss falls; samples are finite images of
  the data's shape.
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
from scorelab.recipes.coverage import items_for
from scorelab.recipes.seed000 import DIGITS, MNIST, ImageSettings, ncsn_recipe

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

FIGURES = {
    "seed000-moons": {
        "moons_data.png", "loss_curves.png", "samples_vs_data.png", "denoised_vs_data.png",
        "score_field.png",
    },
    "seed000-ncsn-digits": {
        "loss_curves.png", "samples.png", "samples_denoised.png", "data.png",
        "nearest_neighbours.png",
    },
    "seed000-ncsn-mnist": {
        "loss_curves.png", "samples.png", "samples_denoised.png", "data.png",
        "nearest_neighbours.png",
    },
    "seed004-forward": {
        "forward_1d_paths.png", "forward_1d_marginals.png", "forward_2d.gif",
        "forward_2d_snapshots.png",
    },
    "seed004-mixture": {
        "log_density.png", "score_field.png", "score_modes.png", "score_components.png",
        "diffused_mixture.png", "exact_sampling_kde.png", "exercise_1_3_kde.png",
        "diffusion_distr.png",
    },
    "seed004-learned": {
        "training_curves.png", "seed_training_curves.png", "score_error_vs_time.png",
        "learned_sde_kde.png", "learned_ode_kde.png", "seed_sampling_kde.png",
    },
}  # fmt: skip

KEYS = {
    "seed000-moons": {
        "loss", "samples_vs_data", "samples_vs_noised_data", "denoised_vs_data",
        "start_sliced_w2", "samples_sliced_w2", "right_moon_fraction", "comparison",
    },
    "seed000-ncsn-digits": {"sigmas", "loss", "sample_range", "quality", "comparison"},
    "seed000-ncsn-mnist": {"sigmas", "loss", "sample_range", "quality", "comparison"},
    "seed004-forward": {"sigma_1", "x1_std", "x1_std_exact", "x1_2d_var", "x1_2d_var_exact"},
    "seed004-mixture": {
        "component_sum_max_error", "exact_sde", "exact_ode", "exact_ode_matched_prior",
        "exact_sde_moments", "mixture_moments", "n_samples", "exercise_1_3",
    },
    "seed004-learned": {
        "score_mse_start", "score_mse_final", "final_dsm_loss", "exact_sde", "learned_sde",
        "exact_ode", "learned_ode", "exact_ode_matched_prior", "learned_ode_matched_prior",
        "score_error", "sampling", "dsm_loss_point_mass_exact_score",
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
    # Every recipe fits the 5-minute budget (measured: benchmarks/RESULTS_recipes.md) and the
    # image recipes, the ones that could outgrow it on other image sets, state their time.
    for name in ("seed000-ncsn-digits", "seed000-ncsn-mnist"):
        assert "minutes on 2 CPU cores" in recipes[name].description
    assert all(r.minutes < 5 for n, r in recipes.items() if n in FIGURES)
    assert recipes["seed000-ncsn-mnist"].run.keywords["settings"] == MNIST


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
    # Every figure and number of the seed that this recipe reproduces (recipes/coverage.py).
    files, keys = items_for(name)
    assert set(files) <= figures and set(keys) <= set(body["numbers"])
    # Where the recipe departs from the seed, both are in numbers.json and side by side in the
    # report.
    if "comparison" in body["numbers"]:
        assert {"as_in_seed", "improved"} <= set(body["numbers"]["comparison"])
    for key, value in body["numbers"].items():
        if isinstance(value, dict) and "as_in_seed" in value:
            assert f"<h3>{key}: as in the seed and " in html
            assert "<th>as in the seed</th>" in html


def _protocol(entry: dict) -> None:
    """A measurement by the one protocol: ratio, calibration band and verdict."""
    assert entry["distance"] == "sliced_w2" and entry["floor"] > 0
    assert entry["ratio"] == pytest.approx(entry["value"] / entry["floor"], rel=2e-3)
    assert entry["calibration_sd"] >= 0
    upper = entry["calibration_mean"] + 2 * entry["calibration_sd"]
    assert entry["verdict"] == ("at the floor" if entry["ratio"] <= upper else "above the floor")


def test_sanity_number(finished) -> None:
    name, _, body, _ = finished
    num = body["numbers"]
    if name == "seed000-moons":
        assert num["samples_sliced_w2"] < 0.6 * num["start_sliced_w2"]
        assert num["loss"]["test_final"] < num["loss"]["test_first"]
        for side in ("as_in_seed", "improved"):
            _protocol(num["comparison"][side]["vs_moons"])
        # The floor comes from independent draws of the law (not stratified make_moons sets):
        # an exact sample lands near ratio 1 (16 pairs, 5 references: within ±0.5).
        assert abs(num["samples_vs_data"]["calibration_mean"] - 1.0) < 0.5
    elif name.startswith("seed000-ncsn"):
        settings = DIGITS if name.endswith("digits") else MNIST
        assert num["loss"]["test_final"] < num["loss"]["test_first"]
        lo, hi = num["sample_range"]
        assert math.isfinite(lo) and math.isfinite(hi) and -20 < lo < hi < 20
        assert num["sigmas"][0] == settings.sigma_max and len(num["sigmas"]) == settings.n_levels
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
        _protocol(num["exact_sde"])
        assert num["exact_sde"]["ratio"] < 2.0
        ex = num["exercise_1_3"]
        assert (ex["as_in_seed"]["lambda"], ex["as_in_seed"]["n_steps"]) == (10.0, 200)
        _protocol(ex["as_in_seed"])
        _protocol(ex["improved"])
    else:
        start, final = num["score_mse_start"], num["score_mse_final"]
        assert final["test"] < 0.6 * start["test"]
        assert num["dsm_loss_point_mass_exact_score"] < 1e-12
        err = num["score_error"]
        assert set(err) == {"as_in_seed", "corrected"}
        assert err["corrected"]["final"]["test"] == final["test"]
        for side in ("as_in_seed", "improved"):
            _protocol(num["sampling"][side]["exact"])
            _protocol(num["sampling"][side]["learned"])


def test_mnist_recipe_reads_an_idx_folder_when_named(monkeypatch, tmp_path) -> None:
    from scorelab.recipes.seed000 import MNIST_DIR_ENV, image_source

    assert image_source(MNIST) == "mnist-subset"
    monkeypatch.setenv(MNIST_DIR_ENV, str(tmp_path))
    assert image_source(MNIST) == str(tmp_path)
    assert image_source(DIGITS) == "digits"  # only the MNIST recipe reads the variable
    assert image_source(MNIST, "/data/mnist") == "/data/mnist"  # `scorelab run … --data DIR`


def _write_idx(path, array) -> None:
    """An IDX file of uint8 ``array``: magic 0x08 (uint8) and its number of dims, the dims, data."""
    import numpy as np

    dims = np.asarray(array.shape, dtype=">i4").tobytes()
    path.write_bytes(bytes([0, 0, 0x08, array.ndim]) + dims + array.astype(np.uint8).tobytes())


def test_mnist_recipe_runs_on_an_idx_folder(monkeypatch, tmp_path) -> None:
    import numpy as np

    from scorelab.recipes.seed000 import MNIST_DIR_ENV

    rng = np.random.default_rng(0)
    folder = tmp_path / "mnist"
    folder.mkdir()
    for split, n in (("train", 300), ("t10k", 150)):
        _write_idx(folder / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    monkeypatch.setenv(MNIST_DIR_ENV, str(folder))
    out = tmp_path / "run"
    run_recipe(get_recipe("seed000-ncsn-mnist"), out, fast=True, seed=0)
    numbers = json.loads((out / "numbers.json").read_text())["numbers"]
    assert numbers["dataset"].startswith(str(folder))
    assert numbers["n_train"] == 256  # fast mode keeps 256 of the folder's 300 training images
