"""Mode coverage: how a sample set splits its mass between the components of a known mixture.

A sampler can match every mode's shape yet get the weights wrong (annealed Langevin with too large
a step, or plain Langevin that never crosses between modes). These estimates read the weights back
from samples by assigning each sample to the component most likely to have produced it;
:func:`mode_weight_report` gives them with their standard errors for a JSON report, and
:func:`modes_separated` says whether the components are far enough apart for that to mean anything.
:func:`component_axis_std_ratios` reads each component's spread back along its own principal axes:
a sampler whose last step stops at too large a σ shrinks a component's thin directions, which a
two-sample distance of a few thousand points in many dimensions barely sees.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from scorelab.utils import check_finite


class MixtureLike(Protocol):
    """What the estimates need from a target: ``scorelab.targets.mixture.GaussianMixture`` fits."""

    @property
    def weights(self) -> Tensor:  # (K,), summing to 1
        ...

    def responsibilities(self, x: Tensor, sigma: Tensor | float | None = None) -> Tensor:  # (B, K)
        ...


def _samples(samples: Tensor | np.ndarray, name: str = "samples") -> Tensor:
    x = samples if isinstance(samples, Tensor) else torch.as_tensor(np.asarray(samples))
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (B, *D) with B >= 1; got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return check_finite(x.detach(), name, hint="drop diverged samples before measuring modes")


def mixture_weights(
    samples: Tensor | np.ndarray, target: MixtureLike, *, soft: bool = False
) -> Tensor:
    """Share of ``samples`` ``(B, *D)`` held by each of the K mixture components: ``(K,)``.

    Hard (default): each sample counts for the component of largest posterior probability
    ``argmax_k p(k | x)`` (``target.responsibilities``). ``soft=True`` averages the posteriors
    instead. On exact draws from well-separated mixtures both estimate ``target.weights``, with
    standard error ``sqrt(w (1 − w) / B)`` for the hard version.
    """
    x = _samples(samples)
    with torch.no_grad():
        resp = target.responsibilities(x)
    if resp.ndim != 2 or resp.shape[0] != x.shape[0]:
        raise ValueError(
            f"target.responsibilities(x) must return shape (B, K) = ({x.shape[0]}, K); "
            f"got {tuple(resp.shape)}"
        )
    if soft:
        return resp.mean(dim=0)
    counts = torch.bincount(resp.argmax(dim=1), minlength=resp.shape[1])
    return counts.to(resp.dtype) / x.shape[0]


def mode_weight_error(
    samples: Tensor | np.ndarray, target: MixtureLike, *, soft: bool = False
) -> float:
    """Largest gap ``max_k |ŵ_k − w_k|`` between :func:`mixture_weights` and ``target.weights``."""
    est = mixture_weights(samples, target, soft=soft)
    true = torch.as_tensor(target.weights).to(device=est.device, dtype=est.dtype)
    if true.shape != est.shape:
        raise ValueError(
            f"target.weights has shape {tuple(true.shape)} but responsibilities give "
            f"{est.shape[0]} components; the target is inconsistent"
        )
    return float((est - true).abs().max())


def mode_separation(target: object) -> float:
    """Smallest pairwise separation of a mixture's components, in standard deviations.

    For components ``i ≠ j`` with means ``μ`` and covariances ``Σ``, along the unit vector
    ``u = (μ_j − μ_i) / |μ_j − μ_i|``:
    ``s_ij = |μ_j − μ_i| / (√(uᵀ Σ_i u) + √(uᵀ Σ_j u))``, the 1-D criterion
    applied on the line through both means (the stds of the two projected components add). With
    ``s ≥ 3`` each projected component puts less than ``Φ(−3) ≈ 0.13 %`` of its mass past the
    point ``s`` of its stds towards the other, so the hard assignment of :func:`mixture_weights`
    reads each component's weight with negligible bias.
    ``target`` needs ``means`` ``(K, D)`` and ``covs`` ``(K, D, D)`` (``GaussianMixture``);
    ``inf`` for ``K = 1``.
    """
    means = torch.as_tensor(target.means, dtype=torch.float64)  # type: ignore[attr-defined]
    covs = torch.as_tensor(target.covs, dtype=torch.float64)  # type: ignore[attr-defined]
    k, d = means.shape
    if covs.shape != (k, d, d):
        raise ValueError(
            f"target.covs must have shape (K, D, D) = ({k}, {d}, {d}); got {tuple(covs.shape)}"
        )
    if k == 1:
        return math.inf
    diff = means[None, :, :] - means[:, None, :]  # (K, K, D): μ_j − μ_i
    dist = diff.norm(dim=-1)
    u = diff / dist.clamp_min(1e-300)[..., None]
    # var[i, j] = u_ijᵀ Σ_i u_ij: the spread of component i along the line to component j.
    var = torch.einsum("ijd,ide,ije->ij", u, covs, u)
    std = var.clamp_min(0).sqrt()
    sep = dist / (std + std.T)
    off = ~torch.eye(k, dtype=torch.bool)
    return float(sep[off].min())


def modes_separated(target: object, threshold: float = 3.0) -> bool:
    """Whether per-component mode weights are a meaningful metric: ``mode_separation >= threshold``.

    False for laws built from many overlapping small components (the ``spiral-2d`` preset), where
    a sample's component is ambiguous and the hard shares measure the partition, not the sampler.
    """
    return mode_separation(target) >= threshold


def mode_weight_report(
    samples: Tensor | np.ndarray, target: MixtureLike, *, soft: bool = False
) -> dict[str, object]:
    """Mode weights of ``samples`` ``(B, *D)`` against ``target.weights``, as plain JSON values.

    Returns ``{"estimated": [ŵ_k], "true": [w_k], "max_abs_error": max_k |ŵ_k − w_k|,
    "standard_error": [√(w_k (1 − w_k) / B)], "n": B, "modes_separated": bool | None}``.
    ``estimated`` is :func:`mixture_weights` (hard by default). ``standard_error`` is that of the
    hard share of an exact sampler (binomial, true weights); an exact sampler's ``ŵ_k`` is within
    ``3·standard_error`` of ``w_k`` with probability ≈ 99.7 % per component (for ``soft=True`` it
    bounds the error from above). ``modes_separated`` (:func:`modes_separated`; ``None`` when the
    target has no ``means``/``covs``) says whether the numbers mean anything: for overlapping
    components (e.g. a thin curved law made of many small ones) per-component weights do not
    measure mode coverage, and a report should not judge a sampler by them.
    """
    x = _samples(samples).to(torch.float64)  # float64 shares: exact k / n for the hard count
    n = int(x.shape[0])
    est = mixture_weights(x, target, soft=soft)
    true = torch.as_tensor(target.weights).to(device=est.device, dtype=torch.float64)
    if true.shape != est.shape:
        raise ValueError(
            f"target.weights has shape {tuple(true.shape)} but responsibilities give "
            f"{est.shape[0]} components; the target is inconsistent"
        )
    separated = (
        modes_separated(target) if hasattr(target, "means") and hasattr(target, "covs") else None
    )
    return {
        "estimated": est.tolist(),
        "true": true.tolist(),
        "max_abs_error": float((est - true).abs().max()),
        "standard_error": torch.sqrt(true * (1 - true) / n).tolist(),
        "n": n,
        "modes_separated": separated,
    }


def component_axis_std_ratios(samples: Tensor | np.ndarray, target: object) -> Tensor:
    """Each component's spread in ``samples`` ``(B, D)`` along its principal axes over the truth:
    ``(K, D)``, thinnest axis first.

    ``ratio[k, j] = √(u_kjᵀ Ĉ_k u_kj / λ_kj)`` with ``(λ_kj, u_kj)`` the eigenpairs of ``Σ_k``
    (ascending) and ``Ĉ_k`` the covariance of the samples weighted by the responsibilities
    ``r_k(x) = p(k | x)``. On exact draws ``E_p[r_k(x) f(x)] = w_k E_{N(μ_k, Σ_k)}[f(x)]`` for any
    ``f``, so the weighted mean and covariance estimate the component's own for any mixture,
    separated or not (more noisily where components overlap): an exact sampler gives ratios near
    1, with standard error about ``1/√(2 B w_k)``. ``target`` needs ``means`` ``(K, D)``, ``covs``
    ``(K, D, D)`` and ``responsibilities`` (``GaussianMixture``).
    """
    x = _samples(samples).to(torch.float64)
    covs = torch.as_tensor(target.covs, dtype=torch.float64, device=x.device)  # type: ignore[attr-defined]
    if x.ndim != 2 or covs.ndim != 3 or covs.shape[1:] != (x.shape[1], x.shape[1]):
        raise ValueError(
            f"samples must have shape (B, D) and target.covs (K, D, D) with the same D; got "
            f"{tuple(x.shape)} and {tuple(covs.shape)}"
        )
    with torch.no_grad():
        resp = target.responsibilities(x).to(torch.float64)  # type: ignore[attr-defined]
    weights = resp / resp.sum(dim=0).clamp_min(1e-300)  # (B, K), each column sums to 1
    cov = torch.empty_like(covs)
    for k in range(covs.shape[0]):  # one (B, D) block at a time: memory O(B·D), not O(K·B·D)
        centred = x - weights[:, k] @ x
        cov[k] = centred.T @ (centred * weights[:, k, None])
    lam, axes = torch.linalg.eigh(covs)  # ascending: thinnest axis first
    along = torch.einsum("kdj,kde,kej->kj", axes, cov, axes)
    return (along / lam).clamp_min(0).sqrt()


def component_spread_report(samples: Tensor | np.ndarray, target: object) -> dict[str, object]:
    """:func:`component_axis_std_ratios` as plain JSON values: per component the ratio on its
    thinnest and widest axis, their means over components weighted by ``w_k``
    (``weighted_thinnest``: 1 exact, < 1 shrunk, > 1 blurred), and the standard error
    ``1/√(2 B w_k)`` an exact sampler's ratio would have."""
    x = _samples(samples)
    ratios = component_axis_std_ratios(x, target)
    w = torch.as_tensor(target.weights, dtype=torch.float64, device=ratios.device)  # type: ignore[attr-defined]
    n = int(x.shape[0])
    return {
        "thinnest_axis_std_ratio": ratios[:, 0].tolist(),
        "widest_axis_std_ratio": ratios[:, -1].tolist(),
        "weighted_thinnest": float(w @ ratios[:, 0]),
        "weighted_widest": float(w @ ratios[:, -1]),
        "standard_error": (1.0 / torch.sqrt(2.0 * n * w)).tolist(),
        "n": n,
    }


def fraction_below(samples: Tensor | np.ndarray, threshold: float) -> float:
    """Fraction of 1-D ``samples`` (shape ``(B,)`` or ``(B, 1)``) strictly below ``threshold``.

    For two-mode 1-D mixtures split by a point, e.g. 0.1·N(−3, 1) + 0.9·N(3, 1) with threshold 0:
    the fraction estimates the left mode's weight (up to the tails that cross the threshold).
    """
    x = _samples(samples)
    if not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number; got {threshold!r}")
    if x.numel() != x.shape[0]:
        raise ValueError(
            f"samples must be 1-D data of shape (B,) or (B, 1); got {tuple(x.shape)}. "
            "For higher dimensions use mixture_weights."
        )
    return float((x.reshape(-1) < float(threshold)).to(torch.float64).mean())
