"""Closed-form answers for a Gaussian target, shared by the sampler tests.

For data N(m, C) and the VE noising x = x₀ + σz, the probability-flow ODE is linear and its
solution, and Tweedie's posterior mean, are known exactly.
"""

import torch

from scorelab.targets import Gaussian

F64 = torch.float64


def sqrtm(a: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive definite matrix."""
    vals, vecs = torch.linalg.eigh(a)
    return vecs @ torch.diag(vals.sqrt()) @ vecs.T


def exact_flow(g: Gaussian, x: torch.Tensor, sigma_from: float, sigma_to: float) -> torch.Tensor:
    """Exact VE probability-flow map of a Gaussian: m + (C+σ_to²)^½ (C+σ_from²)^-½ (x − m)."""
    m, c = g.mean().to(F64), g.covariance().to(F64)
    eye = torch.eye(len(m), dtype=F64)
    a = sqrtm(c + sigma_to**2 * eye) @ torch.linalg.inv(sqrtm(c + sigma_from**2 * eye))
    return m + (x - m) @ a.T


def exact_denoise(g: Gaussian, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Tweedie's E[x₀ | x] for x = x₀ + σz: m + C(C+σ²)⁻¹(x − m)."""
    m, c = g.mean().to(F64), g.covariance().to(F64)
    k = c @ torch.linalg.inv(c + sigma**2 * torch.eye(len(m), dtype=F64))
    return m + (x - m) @ k.T
