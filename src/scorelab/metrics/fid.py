"""Image quality without downloaded weights: a Fréchet distance on a local classifier's features.

The Fréchet Inception Distance (Heusel et al. 2017, "GANs trained by a two time-scale update
rule...", eq. 6) compares Gaussians fitted to network features of samples and of real images.
Inception weights must be downloaded, so scorelab uses the penultimate features of a small
LeNet trained locally (:mod:`scorelab.models.classifier`), as TF-GAN's MNIST Fréchet distance
does; the numbers are therefore only comparable between runs that use the same classifier file.

A Fréchet distance estimated from finite samples is biased upwards, so every figure comes with
the real-vs-real floor: the distance between two disjoint random halves of the real test images
(:func:`real_floor`). A model is as good as real data, at that sample size, when the ratio
``fid / floor`` is near 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scorelab.models.classifier import LeNet
from scorelab.utils import check_finite, check_int, check_positive

Stats = tuple[Tensor, Tensor]


def _as_float64(value: Tensor | np.ndarray, name: str) -> Tensor:
    """``value`` as a float64 tensor (numpy arrays accepted), refusing NaN/Inf."""
    t = torch.as_tensor(value).to(torch.float64)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} holds non-finite values (NaN or Inf)")
    return t


def _drop_roundoff(w: Tensor) -> Tensor:
    """Set eigenvalues below the numerical-rank tolerance d·eps·max|λ| to 0.

    Round-off leaves ~1e-16 (or slightly negative) eigenvalues where the exact ones are 0; their
    square roots (~1e-8 each) would otherwise bias the trace of singular covariances.
    """
    tol = w.shape[-1] * torch.finfo(w.dtype).eps * w.abs().max()
    return torch.where(w > tol, w, torch.zeros_like(w))


def _psd_sqrt(cov: Tensor) -> Tensor:
    """Symmetric square root V diag(√λ) Vᵀ of a PSD matrix from its eigendecomposition."""
    w, v = torch.linalg.eigh(cov)
    return (v * _drop_roundoff(w).sqrt()) @ v.mT


def frechet_distance(
    mu1: Tensor | np.ndarray,
    cov1: Tensor | np.ndarray,
    mu2: Tensor | np.ndarray,
    cov2: Tensor | np.ndarray,
) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, cov1) and N(mu2, cov2).

    d² = ‖μ₁ − μ₂‖² + tr(C₁ + C₂ − 2 (C₁^{1/2} C₂ C₁^{1/2})^{1/2})  (Dowson & Landau 1982;
    Heusel et al. 2017, eq. 6). Means are ``(d,)``, covariances ``(d, d)``, symmetric PSD.

    Computed in float64 with symmetric eigendecompositions instead of ``scipy.linalg.sqrtm``
    (whose ``disp`` argument is deprecated and which returns complex round-off on singular
    covariances): S = C₁^{1/2} from ``eigh(C₁)``, then the trace term is Σ √λᵢ over the
    eigenvalues of the symmetric PSD matrix S C₂ S (equal to tr((C₁C₂)^{1/2})). Eigenvalues below
    the numerical-rank tolerance d·eps·max|λ| (round-off, possibly negative) count as 0 and the
    result is clipped to >= 0, so rank-deficient covariances (fewer samples than features, dead
    ReLU units) give accurate, symmetric values.
    """
    mu1, mu2 = _as_float64(mu1, "mu1"), _as_float64(mu2, "mu2")
    cov1, cov2 = _as_float64(cov1, "cov1"), _as_float64(cov2, "cov2")
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(
            f"mu1 and mu2 must be vectors of the same length (d,); got {tuple(mu1.shape)} "
            f"and {tuple(mu2.shape)}"
        )
    d = mu1.shape[0]
    for name, cov in (("cov1", cov1), ("cov2", cov2)):
        if cov.shape != (d, d):
            raise ValueError(f"{name} must have shape (d, d) = ({d}, {d}); got {tuple(cov.shape)}")
    cov2 = cov2.to(cov1.device)
    cov1, cov2 = (cov1 + cov1.mT) / 2, (cov2 + cov2.mT) / 2
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    eig = _drop_roundoff(torch.linalg.eigvalsh((middle + middle.mT) / 2))
    mean_term = float((mu1 - mu2.to(mu1.device)).square().sum())
    trace_term = float(torch.trace(cov1) + torch.trace(cov2) - 2 * eig.sqrt().sum())
    return max(mean_term + trace_term, 0.0)


def _check_samples(classifier: LeNet, images: Tensor, name: str, minimum: int = 1) -> Tensor:
    """Validate images ``(N, C, H, W)`` against the classifier's input size; refuse NaN/Inf."""
    if not isinstance(classifier, LeNet):
        raise TypeError(
            f"classifier must be a scorelab LeNet (models.classifier); got {type(classifier)}"
        )
    classifier.check_images(images, name)
    if images.shape[0] < minimum:
        raise ValueError(f"{name} must hold at least {minimum} images; got {images.shape[0]}")
    return check_finite(images, name, hint="samples diverged; fix the sampler before scoring")


@torch.inference_mode()
def _batched(classifier: LeNet, images: Tensor, batch_size: int, logits: bool) -> Tensor:
    """Features ``(N, feature_dim)`` or logits ``(N, n_classes)`` in float64, batch by batch.

    Images are moved to the classifier's device and dtype; the classifier's train/eval mode is
    restored afterwards.
    """
    batch_size = check_int(batch_size, "batch_size")
    param = next(classifier.parameters())
    was_training = classifier.training
    classifier.eval()
    try:
        out = []
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device=param.device, dtype=param.dtype)
            out.append((classifier(x) if logits else classifier.features(x)).to(torch.float64))
    finally:
        classifier.train(was_training)
    return torch.cat(out)


def _stats(features: Tensor) -> Stats:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` of features ``(N, d)``."""
    return features.mean(dim=0), torch.cov(features.mT)


def feature_statistics(classifier: LeNet, images: Tensor, batch_size: int = 500) -> Stats:
    """Mean ``(d,)`` and covariance ``(d, d)`` (float64) of the classifier's penultimate features
    of ``images`` ``(N, C, H, W)`` — the Gaussian fit of Heusel et al. 2017 (FID, eq. 6)."""
    images = _check_samples(classifier, images, "images", minimum=2)
    return _stats(_batched(classifier, images, batch_size, logits=False))


def classifier_fid(
    classifier: LeNet, samples: Tensor, reference: Tensor | Stats, *, batch_size: int = 500
) -> float:
    """Fréchet distance between classifier features of ``samples`` and of ``reference``.

    FID (Heusel et al. 2017, eq. 6) with a locally trained LeNet in place of Inception.
    ``samples`` and ``reference`` are images ``(N, C, H, W)`` in [-1, 1]; ``reference`` may
    instead be precomputed ``(mu, cov)`` from :func:`feature_statistics`.
    """
    mu1, cov1 = feature_statistics(classifier, samples, batch_size)
    if isinstance(reference, tuple):
        if len(reference) != 2:
            raise ValueError("reference must be images (N, C, H, W) or a (mu, cov) pair")
        mu2, cov2 = reference
    else:
        mu2, cov2 = feature_statistics(classifier, reference, batch_size)
    return frechet_distance(mu1, cov1, mu2, cov2)


def class_coverage(
    classifier: LeNet, samples: Tensor, *, threshold: float = 0.01, batch_size: int = 500
) -> dict[str, Any]:
    """Class histogram of the classifier's predictions on ``samples`` ``(N, C, H, W)``.

    Returns plain values: ``class_fractions`` (fraction predicted as each class), ``n_covered``
    (classes with fraction >= ``threshold``), ``coverage`` (``n_covered / n_classes``),
    ``confidence`` (mean max-softmax probability), ``class_entropy`` (entropy of the histogram
    in nats) and ``class_entropy_ratio`` (that entropy over log n_classes: 1 when uniform).
    Mode collapse shows as low coverage and entropy; blurry samples as low confidence.
    """
    samples = _check_samples(classifier, samples, "samples")
    threshold = check_positive(threshold, "threshold")
    logits = _batched(classifier, samples, batch_size, logits=True)
    probs = logits.softmax(dim=1)
    n_classes = logits.shape[1]
    counts = torch.bincount(probs.argmax(dim=1), minlength=n_classes).to(torch.float64)
    fractions = counts / counts.sum()
    nonzero = fractions[fractions > 0]
    entropy = float(-(nonzero * nonzero.log()).sum())
    n_covered = int((fractions >= threshold).sum())
    return {
        "class_fractions": [float(f) for f in fractions],
        "n_covered": n_covered,
        "coverage": n_covered / n_classes,
        "confidence": float(probs.max(dim=1).values.mean()),
        "class_entropy": entropy,
        "class_entropy_ratio": entropy / math.log(n_classes),
    }


def _halves(n: int, seed: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Two disjoint random halves ``(n // 2,)`` of ``range(n)``, drawn from a generator seeded
    ``seed``."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(device)
    half = n // 2
    return order[:half], order[half : 2 * half]


def real_floor(
    classifier: LeNet,
    real_images: Tensor,
    *,
    seed: int = 0,
    n_splits: int = 1,
    batch_size: int = 500,
) -> float:
    """Real-vs-real floor: Fréchet distance between two disjoint random halves of real images.

    What :func:`classifier_fid` gives for real data at half the sample size — the bias and
    noise of the estimator, below which no model can score. ``n_splits`` > 1 averages over
    that many random splits (seeds ``seed``, ``seed + 1``, ...), since one split is noisy.
    """
    real_images = _check_samples(classifier, real_images, "real_images", minimum=4)
    n_splits = check_int(n_splits, "n_splits")
    features = _batched(classifier, real_images, batch_size, logits=False)
    total = 0.0
    for i in range(n_splits):
        a, b = _halves(features.shape[0], seed + i, features.device)
        total += frechet_distance(*_stats(features[a]), *_stats(features[b]))
    return total / n_splits


def image_quality_report(
    classifier: LeNet,
    samples: Tensor,
    real_test_images: Tensor,
    *,
    seed: int = 0,
    n_splits: int = 1,
    batch_size: int = 500,
) -> dict[str, Any]:
    """Classifier FID of ``samples`` beside the real-vs-real floor, at matched sample sizes.

    A Fréchet distance estimated from n₁ and n₂ points is biased upwards by roughly
    ``c (1/n₁ + 1/n₂)``, so ``fid`` and ``floor`` are measured against the same reference:
    the real images are split into halves A and B as in :func:`real_floor` (same ``seed``),
    ``m = min(n_samples, |A|)``, ``floor`` = FID(m images of A, B) and ``fid`` = FID(m random
    samples, B), averaged over ``n_splits`` splits. A model as good as real data then has
    ``ratio = fid / floor ≈ 1``; with at least ``n_real // 2`` samples, ``floor`` equals
    :func:`real_floor`. Returns plain values: ``fid``, ``floor``, ``ratio``, ``n_samples``
    (``m``, the number used per split), ``n_real`` and the :func:`class_coverage` entries of all
    the samples.
    """
    samples = _check_samples(classifier, samples, "samples", minimum=2)
    real_test_images = _check_samples(classifier, real_test_images, "real_test_images", minimum=4)
    n_splits = check_int(n_splits, "n_splits")
    real = _batched(classifier, real_test_images, batch_size, logits=False)
    fake = _batched(classifier, samples, batch_size, logits=False).to(real.device)
    m = min(fake.shape[0], real.shape[0] // 2)
    fid = floor = 0.0
    for i in range(n_splits):
        a, b = _halves(real.shape[0], seed + i, real.device)
        reference = _stats(real[b])
        floor += frechet_distance(*_stats(real[a[:m]]), *reference) / n_splits
        pick = torch.randperm(fake.shape[0], generator=torch.Generator().manual_seed(seed + i))
        fid += frechet_distance(*_stats(fake[pick[:m].to(fake.device)]), *reference) / n_splits
    return {
        "fid": fid,
        "floor": floor,
        "ratio": fid / floor if floor > 0 else math.inf,
        "n_samples": m,
        "n_real": int(real.shape[0]),
        **class_coverage(classifier, samples, batch_size=batch_size),
    }
