"""Mode coverage: how a sample set splits its mass between the components of a known mixture.

A sampler can match every mode's shape yet get the weights wrong (annealed Langevin with too large
a step, or plain Langevin that never crosses between modes). These estimates read the weights back
from samples by assigning each sample to the component most likely to have produced it.
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
