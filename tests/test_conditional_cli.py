"""Controllable generation end to end (issue 13): class-conditional training with labels,
guided sampling of runs and exact mixtures by every sampler, inpainting / imputation, and the
one-line errors of bad input. Exact answers come from the mixtures' closed-form conditionals."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from scorelab.cli.main import main
from scorelab.data.labels import load_labelled_points
from scorelab.runs import load_run
from scorelab.runs.conditional import class_source, labels_path, parse_classes
from scorelab.runs.inpaint import (
    IMAGE_MASKS,
    RECONSTRUCTION_SCALE,
    default_reconstruction_scale,
    image_mask,
    inpaint_samples,
)
from scorelab.samplers import SAMPLERS, draw_samples
from scorelab.targets import get_target
from scorelab.targets.conditional import ObservedMixture
from scorelab.targets.files import mixture_from_arrays, save_mixture
from scorelab.training import TrainConfig, train

MEANS = [[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]]


def _mixture():
    covs = 0.3 * torch.eye(2, dtype=torch.float64).expand(3, 2, 2)
    return mixture_from_arrays([0.3, 0.3, 0.4], MEANS, covs.numpy())


@pytest.fixture(scope="module")
def mixture_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("mix") / "mix3.json"
    save_mixture(_mixture(), path)
    return path


def _train(args: list[str]) -> int:
    return main(["train", *args, "--no-progress", "--device", "cpu"])


@pytest.fixture(scope="module")
def cond_run(tmp_path_factory, mixture_file):
    """A class-conditional run on a 3-component mixture (a few hundred steps)."""
    run = tmp_path_factory.mktemp("cond") / "run"
    args = ["--data", str(mixture_file), "--conditional", "--out", str(run), "--steps", "300"]
    assert _train([*args, "--n", "2000", "--batch-size", "256", "--hidden", "64"]) == 0
    return run


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory, mixture_file):
    run = tmp_path_factory.mktemp("plain") / "run"
    args = ["--data", str(mixture_file), "--out", str(run), "--steps", "20", "--n", "200"]
    assert _train([*args, "--hidden", "16"]) == 0
    return run


def _error(args: list[str], capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


# ---------------------------------------------------------------------------------------------
# Labels and the training loop
# ---------------------------------------------------------------------------------------------


def test_labelled_points_of_mixtures_files_and_columns(tmp_path, mixture_file) -> None:
    x, y = load_labelled_points(mixture_file, 500, seed=3)
    # The same points as the unconditional loader, labelled by their component.
    from scorelab.data import load_dataset

    assert torch.equal(x, load_dataset(str(mixture_file), 500, seed=3))
    resp = _mixture().responsibilities(x.double())
    assert (resp.argmax(1) == y).float().mean() > 0.97
    pts = np.c_[np.arange(10.0), np.arange(10.0) % 3, -np.arange(10.0)]
    np.savetxt(tmp_path / "p.csv", pts, delimiter=",")
    xc, yc = load_labelled_points(tmp_path / "p.csv", label_column=1)
    assert xc.shape == (10, 2) and yc.tolist() == [i % 3 for i in range(10)]
    np.savez(tmp_path / "p.npz", x=pts[:, [0, 2]], y=pts[:, 1].astype(int))
    xz, yz = load_labelled_points(tmp_path / "p.npz")
    assert torch.equal(xz, xc) and torch.equal(yz, yc)


def test_train_passes_each_batch_labels_and_keeps_the_batches() -> None:
    """With labels the loop draws the same batches and noise; y is the batch's labels."""
    x = torch.randn(64, 2)
    labels = torch.arange(64) % 5
    x[:, 0] = labels.float()  # the label is readable from the point itself

    def loss(model, x0, generator, y=None):
        if y is not None:
            assert torch.equal(y, x0[:, 0].long())
        z = torch.randn(x0.shape, generator=generator)
        return (model(x0 + z) - x0).square().sum(1)

    config = TrainConfig(steps=12, batch_size=16, lr=1e-2, log_every=4, seed=1)
    nets = []
    for lab in (None, labels):
        torch.manual_seed(0)
        net = torch.nn.Linear(2, 2)
        train(net, loss, x, config, labels=lab, test_data=x[:8],
              test_labels=None if lab is None else lab[:8], progress=False)  # fmt: skip
        nets.append(net)
    for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(a, b)


def test_conditional_run_records_classes_and_samples_its_class(cond_run, mixture_file) -> None:
    config = json.loads((cond_run / "config.json").read_text())
    assert config["conditional"] is True and config["num_classes"] == 3
    assert config["model_spec"]["kwargs"]["num_classes"] == 3
    assert config["noise"]["p_uncond"] == pytest.approx(0.1)
    out = cond_run / "s.npy"
    assert main(["sample", str(cond_run), "--class", "all", "--guidance", "0", "-n", "300",
                 "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    x = torch.from_numpy(np.load(out)).double()
    y = torch.from_numpy(np.load(labels_path(out)))
    assert x.shape == (900, 2) and y.tolist() == [0] * 300 + [1] * 300 + [2] * 300
    resp = _mixture().responsibilities(x)
    for c in range(3):
        share = float(resp[y == c, c].mean())
        assert share > 0.9, (c, share)


def test_guidance_sharpens_the_class_of_a_run(cond_run) -> None:
    run = load_run(cond_run, device="cpu")
    g = torch.Generator().manual_seed(0)
    shares = []
    for w in (0.0, 3.0):
        res = draw_samples(class_source(run, 2, guidance=w), 400, generator=g)
        shares.append(float(_mixture().responsibilities(res.samples.double())[:, 2].mean()))
    assert shares[1] >= shares[0] - 0.01 and shares[1] > 0.95


# ---------------------------------------------------------------------------------------------
# Guidance of exact mixtures with every sampler
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_draws_the_exact_class(name) -> None:
    target = get_target("ring-8")
    source = class_source(target, 3)
    res = draw_samples(source, 200, name, steps=None, generator=torch.Generator().manual_seed(1))
    resp = target.responsibilities(res.samples.double())
    assert float(resp[:, 3].mean()) > 0.9, name


def test_exact_class_guidance_at_zero_is_the_class_law() -> None:
    """w = 0 samples p(x | y) exactly: class means within a few standard errors."""
    target = get_target("mixture-2d")
    x = draw_samples(
        class_source(target, 1), 4000, generator=torch.Generator().manual_seed(2)
    ).samples.double()
    mean, std = target.means[1], target.covs[1].diagonal().sqrt()
    assert torch.all((x.mean(0) - mean).abs() < 5 * std / math.sqrt(4000))


def test_cli_target_class_writes_labels(tmp_path) -> None:
    out = tmp_path / "r.npy"
    assert main(["sample", "--target", "ring-8", "--class", "2,5", "-n", "50",
                 "--guidance", "1", "--out", str(out)]) == 0  # fmt: skip
    assert np.load(out).shape == (100, 2)
    assert np.load(labels_path(out)).tolist() == [2] * 50 + [5] * 50


# ---------------------------------------------------------------------------------------------
# Inpainting / imputation
# ---------------------------------------------------------------------------------------------


def test_inpainting_a_mixture_matches_the_exact_conditional(tmp_path, mixture_file) -> None:
    """Mode weights of the completions agree with ObservedMixture within 4 standard errors;
    the known coordinate is kept exactly."""
    x = np.array([[0.0, 2.0], [1.5, 0.0], [0.3, -0.5]], dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", np.array([1.0, 0.0], dtype=np.float32))
    out, k = tmp_path / "y.npy", 2000
    assert main(["inpaint", "--target", str(mixture_file), "--input", str(tmp_path / "x.npy"),
                 "--mask", str(tmp_path / "m.npy"), "--completions", str(k),
                 "--out", str(out)]) == 0  # fmt: skip
    y = torch.from_numpy(np.load(out)).double().reshape(3, k, 2)
    assert torch.equal(y[:, :, 0].float(), torch.from_numpy(x[:, :1]).expand(3, k))
    law = ObservedMixture(_mixture(), torch.tensor([1, 0]), torch.from_numpy(x).double())
    exact = law.posterior_weights()
    for b in range(3):
        got = law.missing_law(b).responsibilities(y[b, :, 1:]).argmax(1)
        share = torch.bincount(got, minlength=3).double() / k
        se = (exact[b] * (1 - exact[b]) / k).sqrt().clamp_min(1 / k)
        assert torch.all((share - exact[b]).abs() < 4 * se + 0.01), (b, share, exact[b])


def test_inpainting_a_mixture_with_a_mask_per_row() -> None:
    """Rows with different masks each follow their own exact conditional law."""
    x = torch.tensor([[0.0, 2.0], [2.0, 1.0]])
    mask = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    k = 1000
    y, summary = inpaint_samples(_mixture(), x, mask, completions=k, seed=4)
    assert summary["method"] == "conditioned" and y.shape == (2 * k, 2)
    y = y.double().reshape(2, k, 2)
    assert torch.all(y[0, :, 0] == 0.0) and torch.all(y[1, :, 1] == 1.0)
    for b, (known, free) in enumerate(((0, 1), (1, 0))):
        m = torch.zeros(2)
        m[known] = 1
        law = ObservedMixture(_mixture(), m, x[b : b + 1].double())
        want = law.mean()[0, free]
        std = law.covariance()[0, free, free].sqrt()
        assert abs(float(y[b, :, free].mean() - want)) < 5 * float(std) / math.sqrt(k)


@pytest.mark.parametrize("method", ["replacement", "conditioned"])
def test_inpainting_a_run_keeps_known_values(cond_run, tmp_path, method) -> None:
    x = np.array([[-2.0, 0.1], [2.0, -0.2]], dtype=np.float32)
    mask = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", mask)
    out = tmp_path / "y.npy"
    assert main(["inpaint", str(cond_run), "--input", str(tmp_path / "x.npy"), "--mask",
                 str(tmp_path / "m.npy"), "--completions", "50", "--method", method,
                 "--steps", "20", "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    y = np.load(out).reshape(2, 50, 2)
    assert np.all(y[0, :, 0] == x[0, 0]) and np.all(y[1, :, 1] == x[1, 1])
    assert np.isfinite(y).all() and np.std(y[0, :, 1]) > 0


def test_reconstruction_guidance_that_runs_away_is_an_error(cond_run, tmp_path, capsys) -> None:
    # A far too large scale on few levels throws the completions far outside the data; the
    # values can stay finite, so inpaint checks their range and names what to change.
    x = np.array([[-2.0, 0.1], [2.0, -0.2]], dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", np.array([1.0, 0.0], dtype=np.float32))
    args = ["inpaint", str(cond_run), "--input", str(tmp_path / "x.npy"), "--mask",
            str(tmp_path / "m.npy"), "--method", "conditioned", "--out", str(tmp_path / "y.npy"),
            "--device", "cpu"]  # fmt: skip
    err = _error([*args, "--reconstruction-scale", "1e5", "--steps", "4"], capsys)
    assert "ran away" in err and "--reconstruction-scale" in err and "--steps" in err
    assert not (tmp_path / "y.npy").exists()
    assert main([*args, "--completions", "20"]) == 0  # the defaults stay in range
    y = np.load(tmp_path / "y.npy")
    assert np.abs(y).max() < 10.0 and np.all(y[:20, 0] == x[0, 0])


def test_image_masks_by_name() -> None:
    for name in IMAGE_MASKS:
        m = image_mask(name, (1, 8, 8))
        assert m.shape == (1, 8, 8) and 0 < m.sum() < 64
    assert image_mask("bottom-half", (1, 8, 8))[0, 4:].sum() == 0
    assert image_mask("bottom-half", (1, 8, 8))[0, :4].sum() == 32


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("digits") / "run"
    assert _train(["--data", "digits", "--conditional", "--out", str(run), "--steps", "2",
                   "--hidden", "8", "--batch-size", "16", "--n", "64"]) == 0  # fmt: skip
    return run


@pytest.fixture(scope="module")
def noisy_classifier(tmp_path_factory):
    """A noise-conditional LeNet (one epoch) and a clean one, saved as `scorelab classifier`."""
    from scorelab.data.images import load_images
    from scorelab.models.classifier import save_classifier, train_classifier

    x, y = load_images("digits", "train", seed=0)
    folder = tmp_path_factory.mktemp("clf")
    noisy = train_classifier(x, y, epochs=1, n_classes=10, noise_range=(0.01, 10.0))
    clean = train_classifier(x[:200], y[:200], epochs=1, n_classes=10)
    save_classifier(folder / "noisy.pt", noisy, {"data": "digits"})
    save_classifier(folder / "clean.pt", clean, {"data": "digits"})
    return folder / "noisy.pt", folder / "clean.pt"


def test_noise_conditional_classifier_takes_sigma(noisy_classifier) -> None:
    from scorelab.models.classifier import load_classifier

    model, _ = load_classifier(noisy_classifier[0])
    x = torch.randn(3, 1, 8, 8)
    assert model.noise_conditional and model(x, torch.full((3,), 2.0)).shape == (3, 10)
    assert model(x).shape == (3, 10)  # clean images: σ = 0
    clean, _ = load_classifier(noisy_classifier[1])
    with pytest.raises(ValueError, match="not noise-conditional"):
        clean(x, torch.ones(3))


def test_classifier_guidance_of_an_image_run(digits_run, noisy_classifier, tmp_path, capsys):
    out = tmp_path / "g.npy"
    args = ["sample", str(digits_run), "--class", "1,7", "-n", "3", "--steps", "3",
            "--out", str(out), "--device", "cpu"]  # fmt: skip
    assert main([*args, "--classifier", str(noisy_classifier[0]), "--classifier-scale", "2"]) == 0
    assert np.load(out).shape == (6, 1, 8, 8) and np.isfinite(np.load(out)).all()
    assert np.load(labels_path(out)).tolist() == [1, 1, 1, 7, 7, 7]
    assert '"classifier_scale": 2.0' in capsys.readouterr().err
    err = _error([*args, "--classifier", str(noisy_classifier[1])], capsys)
    assert "--noise-conditional" in err
    err = _error([*args, "--classifier", str(noisy_classifier[0]), "--guidance", "1"], capsys)
    assert "choose one guidance" in err
    err = _error(["sample", "--target", "ring-8", "--class", "1", "--classifier",
                  str(noisy_classifier[0]), "--out", str(out)], capsys)  # fmt: skip
    assert "exact class score" in err


def test_reconstruction_scale_by_data_set(digits_run, cond_run) -> None:
    # Measured per data set where it differs from its kind's (the digits: 30, RESULTS_guidance),
    # else by kind; the summary says which scale ran.
    digits, points = load_run(digits_run, device="cpu"), load_run(cond_run, device="cpu")
    assert default_reconstruction_scale(digits) == RECONSTRUCTION_SCALE["digits"] == 30.0
    assert default_reconstruction_scale(points) == RECONSTRUCTION_SCALE["points"] == 3.0
    mnist = dataclasses.replace(digits, config={**digits.config, "data": {
        **digits.config["data"], "source": "mnist-subset"}})  # fmt: skip
    assert default_reconstruction_scale(mnist) == RECONSTRUCTION_SCALE["images"] == 10.0
    x = torch.tensor([[-2.0, 0.1]])
    _, summary = inpaint_samples(points, x, torch.tensor([1.0, 0.0]), completions=4, steps=10)
    assert summary["reconstruction_scale"] == 3.0
    _, summary = inpaint_samples(points, x, torch.tensor([1.0, 0.0]), method="replacement",
                                 completions=4, steps=4, resample=1)  # fmt: skip
    assert summary["reconstruction_scale"] is None


def test_image_run_conditional_training_sampling_and_inpainting(tmp_path, digits_run) -> None:
    run = digits_run
    assert json.loads((run / "config.json").read_text())["num_classes"] == 10
    out = tmp_path / "s.npy"
    assert main(["sample", str(run), "--class", "3", "--guidance", "2", "-n", "4", "--steps",
                 "3", "--out", str(out), "--device", "cpu"]) == 0  # fmt: skip
    assert np.load(out).shape == (4, 1, 8, 8)
    # --png: a row per class (2 rows of 4 tiles of 8 + 2 pad: 42 × 22 pixels, under a title
    # that takes a tenth of the height); without --class, the samples 10 per row (1 row of 4).
    from PIL import Image

    grid = tmp_path / "classes.png"
    assert main(["sample", str(run), "--class", "3,5", "-n", "4", "--steps", "3", "--out",
                 str(tmp_path / "c.npy"), "--png", str(grid), "--device", "cpu"]) == 0  # fmt: skip
    width, height = Image.open(grid).size
    assert width / height == pytest.approx(42 / (22 / 0.9), rel=0.03)
    assert main(["sample", str(run), "-n", "4", "--steps", "3", "--out", str(tmp_path / "u.npy"),
                 "--png", str(grid), "--device", "cpu"]) == 0  # fmt: skip
    width, height = Image.open(grid).size
    assert width / height == pytest.approx(42 / (12 / 0.9), rel=0.03)
    filled = tmp_path / "f.npy"
    png = tmp_path / "panels.png"
    assert main(["inpaint", str(run), "--input", str(out), "--mask", "bottom-half",
                 "--completions", "2", "--method", "replacement", "--steps", "4",
                 "--out", str(filled), "--device", "cpu", "--png", str(png)]) == 0  # fmt: skip
    f, x = np.load(filled), np.load(out)
    assert f.shape == (8, 1, 8, 8)
    assert np.array_equal(f[:, :, :4], np.repeat(x, 2, axis=0)[:, :, :4])
    # The panels: 4 rows (inputs) of masked input, 2 completions, input; 8×8 tiles, pad 2, so a
    # square grid of 42 × 42 pixels, drawn below a title that takes a tenth of the height.
    from PIL import Image

    width, height = Image.open(png).size
    assert width / height == pytest.approx(0.9, rel=0.03)


# ---------------------------------------------------------------------------------------------
# Bad input: one clear line each
# ---------------------------------------------------------------------------------------------


def test_unknown_class(cond_run, tmp_path, capsys) -> None:
    out = str(tmp_path / "o.npy")
    err = _error(["sample", str(cond_run), "--class", "7", "--out", out], capsys)
    assert "unknown class 7" in err and "0..2" in err
    err = _error(["sample", "--target", "ring-8", "--class", "two", "--out", out], capsys)
    assert "--class" in err
    with pytest.raises(ValueError, match="twice"):
        parse_classes("1,1", 3)


def test_class_or_guidance_on_a_model_that_cannot_take_it(plain_run, tmp_path, capsys) -> None:
    out = str(tmp_path / "o.npy")
    err = _error(["sample", str(plain_run), "--class", "1", "--out", out], capsys)
    assert "unconditional" in err and "--conditional" in err
    err = _error(["sample", str(plain_run), "--guidance", "2", "--out", out], capsys)
    assert "--guidance needs --class" in err
    err = _error(["sample", "--target", "anticorrelated", "--class", "0", "--out", out], capsys)
    assert "no classes" in err
    err = _error(["sample", "--target", "ring-8", "--class", "0", "--guidance", "-1",
                  "--out", out], capsys)  # fmt: skip
    assert "--guidance" in err


def test_conditional_training_without_labels(tmp_path, capsys) -> None:
    out = str(tmp_path / "r")
    err = _error(["train", "--data", "moons", "--conditional", "--out", out], capsys)
    assert "no class labels" in err
    np.savetxt(tmp_path / "p.csv", np.random.default_rng(0).normal(size=(20, 3)), delimiter=",")
    err = _error(["train", "--data", str(tmp_path / "p.csv"), "--conditional", "--out", out],
                 capsys)  # fmt: skip
    assert "--label-column" in err
    err = _error(["train", "--data", "ring-8", "--label-column", "1", "--out", out], capsys)
    assert "--conditional" in err
    err = _error(["train", "--data", "ring-8", "--conditional", "--objective", "dsm",
                  "--out", out], capsys)  # fmt: skip
    assert "EDM" in err


@pytest.mark.parametrize(
    ("mask", "words"),
    [
        (np.ones((3, 1), dtype=np.float32), "shape"),
        (np.ones(2, dtype=np.float32), "hides nothing"),
        (np.zeros(2, dtype=np.float32), "hides everything"),
        (np.array([0.5, 1.0], dtype=np.float32), "binary"),
    ],
)
def test_bad_masks(tmp_path, capsys, mask, words) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 2), dtype=np.float32))
    np.save(tmp_path / "m.npy", mask)
    err = _error(["inpaint", "--target", "ring-8", "--input", str(tmp_path / "x.npy"),
                  "--mask", str(tmp_path / "m.npy"), "--out", str(tmp_path / "y.npy")],
                 capsys)  # fmt: skip
    assert words in err and "--mask" in err


def test_bad_inpaint_inputs(tmp_path, capsys) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 5), dtype=np.float32))
    base = ["inpaint", "--target", "ring-8", "--input", str(tmp_path / "x.npy"),
            "--out", str(tmp_path / "y.npy")]  # fmt: skip
    assert "shape" in _error([*base, "--mask", "bottom-half"], capsys)
    np.save(tmp_path / "x.npy", np.zeros((3, 2), dtype=np.float32))
    assert "for images" in _error([*base, "--mask", "bottom-half"], capsys)
    np.save(tmp_path / "m.npy", np.array([1.0, 0.0], dtype=np.float32))
    err = _error([*base, "--mask", str(tmp_path / "m.npy"), "--method", "replacement",
                  "--sampler", "ode-euler"], capsys)  # fmt: skip
    assert "--method conditioned" in err
    err = _error([*base, "--mask", str(tmp_path / "m.npy"), "--reconstruction-scale", "1"],
                 capsys)  # fmt: skip
    assert "--reconstruction-scale" in err and "exact" in err
    err = _error([*base, "--mask", str(tmp_path / "m.npy"), "--resample", "3"], capsys)
    assert "--resample and --corrector apply to --method replacement" in err
    err = _error([*base, "--mask", str(tmp_path / "m.npy"), "--png", str(tmp_path / "p.png")],
                 capsys)  # fmt: skip
    assert "--png" in err and "(C, H, W)" in err
    err = _error(["sample", "--target", "ring-8", "--out", str(tmp_path / "s.npy"), "--png",
                  str(tmp_path / "p.png")], capsys)  # fmt: skip
    assert "--png" in err and "(C, H, W)" in err
    err = _error([*base, "--mask", str(tmp_path / "m.npy"), "--png", str(tmp_path / "p.jpg")],
                 capsys)  # fmt: skip
    assert "--png must end in .png" in err
    with pytest.raises(ValueError, match="--completions"):
        inpaint_samples(get_target("ring-8"), torch.zeros(1, 2), torch.tensor([1.0, 0.0]),
                        completions=0)  # fmt: skip
