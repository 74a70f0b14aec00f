"""NumPy <-> torch conversion for the notebook shells that speak NumPy (seeds 001 and 004)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from scorelab.utils import check_finite


def as_points(x: object, dim: int, name: str = "x") -> tuple[Tensor, tuple[int, ...]]:
    """Points ``(..., dim)`` (an array, list or tensor) as a float64 ``(N, dim)`` tensor.

    Returns the tensor and the leading shape ``...`` so that results can be put back in shape,
    as scipy's ``multivariate_normal.pdf`` does (e.g. an ``(H, W, 2)`` grid gives ``(H, W)``).
    For ``dim = 1`` an array whose last axis is not 1 is read as a batch of scalars.
    """
    if isinstance(x, Tensor):
        t = x.detach().to(device="cpu", dtype=torch.float64)
    else:
        try:
            t = torch.as_tensor(np.asarray(x, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be an array of numbers of shape (..., {dim}); got {type(x).__name__}"
            ) from None
    if dim == 1 and (t.ndim == 0 or t.shape[-1] != 1):
        t = t[..., None]
    if t.ndim == 0 or t.shape[-1] != dim:
        raise ValueError(
            f"{name} must have shape (..., {dim}) to match the dimension {dim}; "
            f"got {tuple(t.shape)}"
        )
    lead = tuple(t.shape[:-1])
    flat = t.reshape(-1, dim)
    if flat.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one point; got shape {tuple(t.shape)}")
    return check_finite(flat, name), lead


def to_numpy(t: Tensor) -> np.ndarray:
    """A tensor as a float64 NumPy array (detached, on the CPU)."""
    return t.detach().to(device="cpu", dtype=torch.float64).numpy()
