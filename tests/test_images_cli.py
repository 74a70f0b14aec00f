"""Image runs end to end: `scorelab classifier`, `train --data digits`, `evaluate --classifier`;
dequantisation and bits per dimension against exact Gaussian answers."""

from __future__ import annotations

import json
import math

import pytest
import torch

from scorelab.cli.main import main
from scorelab.data.images import from_model_range, load_images
from scorelab.metrics.fid import image_quality_report
from scorelab.models.classifier import classifier_accuracy, load_classifier
from scorelab.training.images import (
    autocast_loss,
    dequantize,
    dequantized_loss,
    image_bits_per_dim,
)

MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


@pytest.fixture(scope="module")
def classifier_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("clf") / "digits.pt"
    assert main(["classifier", "--data", "digits", "--epochs", "1", "--out", str(path)]) == 0
    return path


def test_classifier_checkpoint_loads_and_reports_its_accuracy(classifier_path) -> None:
    model, meta = load_classifier(classifier_path, image_size=8)
    assert meta["data"] == "digits" and meta["epochs"] == 1 and meta["image_size"] == 8
    x_test, y_test = load_images("digits", "test", seed=0)
    assert meta["n_test"] == len(x_test)
    # The saved accuracy is the loaded network's accuracy on the held-out split.
    assert meta["accuracy"] == pytest.approx(classifier_accuracy(model, x_test, y_test), abs=1e-12)
    assert meta["accuracy"] > 0.3  # one epoch is far better than chance (0.1)


def test_train_then_evaluate_an_image_run(tmp_path, classifier_path, capsys) -> None:
    run = tmp_path / "run"
    train = [
        "train",
        "--data",
        "digits",
        "--steps",
        "30",
        "--out",
        str(run),
        "--hidden",
        "8",
        "--batch-size",
        "32",
        "--no-progress",
        "--device",
        "cpu",
    ]
    assert main(train) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["kind"] == "images" and config["data"]["shape"] == [1, 8, 8]
    evaluate = [
        "evaluate",
        str(run),
        "-n",
        "64",
        "--classifier",
        str(classifier_path),
        "--sampler",
        "edm-euler",
        "--steps",
        "5",
        "--device",
        "cpu",
    ]
    assert main(evaluate) == 0
    report = json.loads((run / "evaluation.json").read_text())
    images = report["images"]
    assert images["n_samples"] == 64 and images["n_real"] == 359
    assert images["ratio"] == pytest.approx(images["fid"] / images["floor"])
    assert 0 < images["floor"] < images["fid"]  # 30 steps of training: far from real digits
    assert 0.0 <= images["coverage"] <= 1.0 and len(images["class_fractions"]) == 10
    assert report["n_evals"] == 5  # 5 Euler steps, the last one down to σ = 0
    assert "fid" in capsys.readouterr().out.lower()


def test_real_images_score_at_the_floor(classifier_path) -> None:
    """Real training digits as "samples" give a ratio near 1: the floor is the right yardstick."""
    model, _ = load_classifier(classifier_path)
    x_train, _ = load_images("digits", "train", seed=0)
    x_test, _ = load_images("digits", "test", seed=0)
    report = image_quality_report(model, x_train[:179], x_test, n_splits=3)
    noisy = image_quality_report(
        model, x_train[:179] + 0.5 * torch.randn_like(x_train[:179]), x_test, n_splits=3
    )
    assert report["ratio"] < 2.0 < noisy["ratio"]


@pytest.mark.parametrize("command", ["classifier", "train"])
def test_missing_mnist_files_exit_2_naming_them(tmp_path, capsys, command) -> None:
    empty = tmp_path / "mnist"
    empty.mkdir()
    argv = [command, "--data", str(empty), "--out", str(tmp_path / "out.pt")]
    if command == "train":
        argv = [command, "--data", str(empty), "--out", str(tmp_path / "run"), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert MNIST_NAMES[0] in err and str(empty) in err


def test_classifier_names_the_files_of_a_folder_that_does_not_exist(tmp_path, capsys) -> None:
    missing = tmp_path / "nowhere"
    argv = ["classifier", "--data", str(missing), "--out", str(tmp_path / "c.pt")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in MNIST_NAMES) and "t10k-images-idx3-ubyte" in err


def test_classifier_refuses_an_output_that_is_not_a_pt_file(tmp_path, capsys) -> None:
    assert main(["classifier", "--data", "digits", "--out", str(tmp_path / "c.txt")]) == 2
    assert "--out must be a .pt file" in capsys.readouterr().err


def test_dequantize_stays_in_each_grey_level_bin() -> None:
    v = torch.arange(256, dtype=torch.uint8).reshape(4, 1, 8, 8)
    x = 2.0 * v.double() / 255.0 - 1.0
    draws = torch.stack([dequantize(x, torch.Generator().manual_seed(s)) for s in range(200)])
    assert torch.equal(from_model_range(draws.reshape(-1, 1, 8, 8)), v.repeat(200, 1, 1, 1))
    # u ~ U[0, 1): the mean lands on the bin centre 2(v + ½)/256 − 1 (std of the mean 2/256/√2400).
    centre = 2.0 * (v.double() + 0.5) / 256.0 - 1.0
    assert (draws.mean(0) - centre).abs().mean() < 2e-4


def test_dequantized_loss_passes_dequantised_batches() -> None:
    seen = []

    def loss(model, x0, generator):
        seen.append(x0)
        return x0.flatten(1).sum(1)

    x = torch.full((3, 1, 2, 2), 2.0 * 7 / 255 - 1)
    out = dequantized_loss(loss)(None, x, torch.Generator().manual_seed(0))
    assert out.shape == (3,)
    assert not torch.equal(seen[0], x) and bool((from_model_range(seen[0]) == 7).all())


def test_autocast_loss_runs_in_bfloat16_and_returns_float32() -> None:
    seen = []

    def loss(model, x0, generator):
        h = model(x0.flatten(1))
        seen.append(h.dtype)
        return h.square().sum(1)

    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    x = torch.randn(5, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    out = autocast_loss(loss)(net, x, torch.Generator())
    assert seen == [torch.bfloat16] and out.dtype == torch.float32 and out.shape == (5,)
    torch.testing.assert_close(out, loss(net, x, None), rtol=3e-2, atol=1e-2)
    with pytest.raises(ValueError, match="bfloat16 or torch.float16"):
        autocast_loss(loss, torch.float64)


def test_bits_per_dim_of_a_gaussian_matches_the_exact_value() -> None:
    """Data N(0, s²I): p_σ = N(0, (s² + σ²)I), so bpd at σ_min is known in closed form.

    Hutchinson with Rademacher probes is exact here (the Jacobian is a multiple of I), so only
    the ODE tolerance and the prior N(0, σ_max²) (vs the exact N(0, s² + σ_max²)) remain.
    """
    s, sigma_min, sigma_max, d = 0.5, 0.01, 100.0, 16

    def score(x, sigma):
        return -x / (s**2 + sigma.to(x.dtype).reshape(-1, 1, 1, 1) ** 2)

    levels = torch.randint(0, 256, (6, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    x = 2.0 * levels.double() / 255.0 - 1.0
    out = image_bits_per_dim(
        score,
        x,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        rtol=1e-7,
        atol=1e-7,
        generator=torch.Generator().manual_seed(3),
    )
    y = dequantize(x, torch.Generator().manual_seed(3))
    var = s**2 + sigma_min**2
    log_p = -0.5 * (y.square().flatten(1).sum(1) / var + d * math.log(2 * math.pi * var))
    exact = float((-log_p / (d * math.log(2)) + 7).mean())
    assert out["bpd"] == pytest.approx(exact, abs=1e-3)
    assert out["offset_bits"] == 7 and out["n_images"] == 6 and out["n_evals"] > 10


def test_image_presets_fit_the_machine() -> None:
    """`scorelab train --data digits` on a CPU plans the CPU preset (minutes, not a GPU job)."""
    from scorelab.data.noise_levels import IMAGE_SIGMA_MIN
    from scorelab.runs import plan_run
    from scorelab.training.presets import TRAINING_PRESETS, preset_for

    assert preset_for("digits", images=True, device="cpu").name == "digits-cpu"
    assert preset_for("mnist-subset", images=True, device="cuda:0").name == "mnist-subset-gpu"
    assert preset_for("/some/mnist/folder", images=True, device="cuda").name == "mnist-gpu"
    for name in ("digits", "mnist-subset", "mnist"):
        cpu, gpu = TRAINING_PRESETS[f"{name}-cpu"], TRAINING_PRESETS[f"{name}-gpu"]
        assert gpu.train["steps"] >= cpu.train["steps"] and gpu.model["base"] > cpu.model["base"]
    plan, train_x, _ = plan_run("digits", device="cpu")
    assert plan["preset"] == "digits-cpu" and plan["model_spec"]["kwargs"]["base"] == 16
    assert plan["train"]["steps"] == TRAINING_PRESETS["digits-cpu"].train["steps"] <= 2000
    assert plan["noise"]["sigma_min"] == IMAGE_SIGMA_MIN and train_x.ndim == 4
    assert plan["sampler"] == TRAINING_PRESETS["digits-cpu"].sampler.to_dict()


def test_mnist_cpu_presets_train_the_measured_schedule_unless_steps_is_given() -> None:
    """MNIST on a CPU trains 16 000 steps, conditional or not (8000 missed the class-guidance
    figure); --steps replaces them."""
    from scorelab.training.presets import TRAINING_PRESETS, train_config_for

    for name in ("mnist-subset-cpu", "mnist-cpu"):
        assert train_config_for(TRAINING_PRESETS[name]).steps == 16000
    assert train_config_for(TRAINING_PRESETS["mnist-subset-cpu"], steps=300).steps == 300
