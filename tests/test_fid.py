"""Classifier Fréchet distance, class coverage and the LeNet checkpoint, on sklearn's 8×8 digits."""

from __future__ import annotations

import math

import numpy as np
import ot
import pytest
import scipy.linalg
import torch
from sklearn.datasets import load_digits

from scorelab.metrics.fid import (
    class_coverage,
    classifier_fid,
    feature_statistics,
    frechet_distance,
    image_quality_report,
    real_floor,
)
from scorelab.models.classifier import (
    LeNet,
    classifier_accuracy,
    load_classifier,
    save_classifier,
    train_classifier,
)
from scorelab.training.checkpoint import CheckpointError


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two shared cores: intra-op threads only fight each other here, so use one."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    """Digits as (N, 1, 8, 8) in [-1, 1], split 1400 train / 397 test after a fixed shuffle."""
    data = load_digits()
    x = torch.tensor(data.images / 16.0 * 2.0 - 1.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.fixture(scope="module")
def classifier(digits):
    x_train, y_train, _, _ = digits
    return train_classifier(x_train, y_train, epochs=4, batch_size=32, lr=4e-3, seed=0)


def random_spd(d: int, rank: int, generator: torch.Generator) -> torch.Tensor:
    a = torch.randn(d, rank, generator=generator, dtype=torch.float64)
    return a @ a.T / rank


# ---------------------------------------------------------------- frechet_distance


@pytest.mark.parametrize("d", [1, 3, 16])
def test_frechet_distance_diagonal_closed_form(d):
    """Diagonal Gaussians: d² = ‖μ₁ − μ₂‖² + Σ (s₁ − s₂)² with s the standard deviations."""
    g = torch.Generator().manual_seed(d)
    mu1, mu2, s1, s2 = torch.rand(4, d, generator=g, dtype=torch.float64)
    s1[0] = 0.0  # a singular covariance is allowed
    expected = float((mu1 - mu2).square().sum() + (s1 - s2).square().sum())
    got = frechet_distance(mu1, torch.diag(s1**2), mu2, torch.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_frechet_distance_zero_for_identical_and_symmetric():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(10, generator=g, dtype=torch.float64)
    cov_full, cov_low = random_spd(10, 20, g), random_spd(10, 3, g)
    assert frechet_distance(mu, cov_full, mu, cov_full) == pytest.approx(0.0, abs=1e-10)
    assert frechet_distance(mu, cov_low, mu, cov_low) == pytest.approx(0.0, abs=1e-10)
    mu2 = mu + 0.5
    forward = frechet_distance(mu, cov_full, mu2, cov_low)
    backward = frechet_distance(mu2, cov_low, mu, cov_full)
    assert forward > 2.5
    assert forward == pytest.approx(backward, rel=1e-9)


@pytest.mark.parametrize("d", [2, 7, 30])
def test_frechet_distance_matches_sqrtm_and_pot(d):
    """Against scipy's sqrtm of C₁C₂ and POT's Bures–Wasserstein distance (squared)."""
    g = torch.Generator().manual_seed(d)
    cov1, cov2 = random_spd(d, d + 5, g), random_spd(d, d + 5, g)
    mu1, mu2 = torch.randn(2, d, generator=g, dtype=torch.float64).numpy()
    c1, c2 = cov1.numpy(), cov2.numpy()
    root = scipy.linalg.sqrtm(c1 @ c2).real
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * root))
    got = frechet_distance(mu1, c1, mu2, c2)
    assert got == pytest.approx(expected, rel=1e-8)
    pot = ot.gaussian.bures_wasserstein_distance(mu1, mu2, c1, c2)
    assert got == pytest.approx(float(pot) ** 2, rel=1e-6)


def test_frechet_distance_rejects_bad_shapes_and_nan():
    eye = torch.eye(3)
    with pytest.raises(ValueError, match="mu1 and mu2"):
        frechet_distance(torch.zeros(3), eye, torch.zeros(4), torch.eye(4))
    with pytest.raises(ValueError, match=r"cov2 must have shape \(d, d\) = \(3, 3\)"):
        frechet_distance(torch.zeros(3), eye, torch.zeros(3), torch.eye(2))
    with pytest.raises(ValueError, match="cov1 holds non-finite"):
        frechet_distance(torch.zeros(3), eye * math.nan, torch.zeros(3), eye)


# ---------------------------------------------------------------- the classifier


def test_lenet_shapes_for_28_and_8_pixels():
    for size in (28, 8):
        net = LeNet(image_size=size, feature_dim=32)
        x = torch.randn(3, 1, size, size)
        assert net(x).shape == (3, 10)
        assert net.features(x).shape == (3, 32)
    with pytest.raises(ValueError, match=r"trained on 8×8 images"):
        net(torch.randn(2, 1, 28, 28))


def test_classifier_accuracy_on_held_out_digits(classifier, digits):
    _, _, x_test, y_test = digits
    assert classifier_accuracy(classifier, x_test, y_test) > 0.9
    assert not classifier.training


def test_training_is_reproducible_and_leaves_global_rng(digits):
    x, y = digits[0][:256], digits[1][:256]
    state = torch.get_rng_state()
    a = train_classifier(x, y, epochs=1, seed=3, feature_dim=16, augment_noise=0.1)
    assert torch.equal(torch.get_rng_state(), state)
    b = train_classifier(x, y, epochs=1, seed=3, feature_dim=16, augment_noise=0.1)
    c = train_classifier(x, y, epochs=1, seed=4, feature_dim=16, augment_noise=0.1)
    assert torch.equal(a.fc2.weight, b.fc2.weight)
    assert not torch.equal(a.fc2.weight, c.fc2.weight)


def test_train_classifier_rejects_bad_labels(digits):
    x, y = digits[0][:10], digits[1][:10]
    with pytest.raises(TypeError, match="labels must hold integer"):
        train_classifier(x, y.float())
    with pytest.raises(ValueError, match=r"labels must have shape \(N,\) = \(10,\)"):
        train_classifier(x, y[:9])
    with pytest.raises(ValueError, match="images must be a tensor of shape"):
        train_classifier(x[:, 0], y)


# ---------------------------------------------------------------- FID, floor and coverage


def test_fid_separates_real_noisy_and_random(classifier, digits):
    """Real half vs real half < real vs noisy real < real vs uniform noise."""
    _, _, x_test, _ = digits
    g = torch.Generator().manual_seed(0)
    half_a, half_b = x_test[:198], x_test[198:396]
    reference = feature_statistics(classifier, half_b)
    real = classifier_fid(classifier, half_a, reference)
    noisy = classifier_fid(
        classifier, half_a + 0.6 * torch.randn(half_a.shape, generator=g), half_b
    )
    uniform = classifier_fid(classifier, torch.rand(half_a.shape, generator=g) * 2 - 1, half_b)
    assert 2 * real < noisy
    assert 3 * noisy < uniform
    floor = real_floor(classifier, x_test, seed=0, n_splits=3)
    assert 0 < floor < noisy


def test_image_quality_report_ratio_near_one_for_real_images(classifier, digits):
    """Real images scored as samples give fid ≈ floor (matched sizes); noise gives far more."""
    _, _, x_test, _ = digits
    g = torch.Generator().manual_seed(1)
    samples, real = x_test[:150], x_test[150:]
    good = image_quality_report(classifier, samples, real, n_splits=3)
    assert good["n_samples"] == len(real) // 2 and good["n_real"] == len(real)
    assert good["floor"] == pytest.approx(real_floor(classifier, real, n_splits=3), rel=1e-12)
    assert good["ratio"] == pytest.approx(good["fid"] / good["floor"])
    assert 0.5 < good["ratio"] < 2.0
    assert good["coverage"] == 1.0
    noise = torch.rand(samples.shape, generator=g) * 2 - 1
    bad = image_quality_report(classifier, noise, real, n_splits=3)
    assert bad["ratio"] > 5.0
    few = image_quality_report(classifier, samples[:40], real)
    assert few["n_samples"] == 40 and few["floor"] > good["floor"]  # fewer points, more bias


def test_class_coverage_of_real_and_repeated_images(classifier, digits):
    _, _, x_test, _ = digits
    real = class_coverage(classifier, x_test)
    assert real["n_covered"] == 10 and real["coverage"] == 1.0
    assert sum(real["class_fractions"]) == pytest.approx(1.0)
    assert real["class_entropy_ratio"] > 0.95
    assert 0.1 < real["confidence"] <= 1.0
    repeated = class_coverage(classifier, x_test[:1].expand(50, -1, -1, -1))
    predicted = int(classifier(x_test[:1]).argmax())
    assert repeated["n_covered"] == 1 and repeated["coverage"] == 0.1
    assert repeated["class_fractions"][predicted] == 1.0
    assert repeated["class_entropy"] == 0.0


def test_metrics_reject_wrong_size_and_nan(classifier, digits):
    x_test = digits[2]
    with pytest.raises(ValueError, match=r"samples must have shape \(B, 1, 8, 8\)"):
        image_quality_report(classifier, torch.zeros(10, 1, 28, 28), x_test)
    with pytest.raises(ValueError, match="samples holds non-finite"):
        class_coverage(classifier, torch.full((4, 1, 8, 8), math.nan))
    with pytest.raises(ValueError, match="at least 2 images"):
        feature_statistics(classifier, x_test[:1])
    with pytest.raises(TypeError, match="classifier must be a scorelab LeNet"):
        real_floor(torch.nn.Linear(2, 2), x_test)


# ---------------------------------------------------------------- checkpoints


def test_save_load_round_trip(classifier, digits, tmp_path):
    x_test = digits[2][:50]
    path = save_classifier(tmp_path / "clf.pt", classifier, {"data": "digits", "accuracy": 0.95})
    loaded, meta = load_classifier(path, image_size=8)
    assert meta == {"data": "digits", "accuracy": 0.95}
    assert loaded.config() == classifier.config()
    with torch.no_grad():
        assert torch.equal(loaded.features(x_test), classifier.features(x_test))
    assert [p.name for p in tmp_path.iterdir()] == ["clf.pt"]  # no temporary file left
    with pytest.raises(ValueError, match=r"trained on 8×8 images but image_size=28"):
        load_classifier(path, image_size=28)
    with pytest.raises(TypeError, match=r"meta\['split'\] is a list"):
        save_classifier(tmp_path / "bad.pt", classifier, {"split": [1, 2]})


def test_load_refuses_missing_truncated_and_foreign_files(classifier, tmp_path):
    path = save_classifier(tmp_path / "clf.pt", classifier, {"data": "digits"})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_classifier(truncated)
    with pytest.raises(CheckpointError, match="no classifier checkpoint at"):
        load_classifier(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a scorelab classifier checkpoint"):
        load_classifier(foreign)
