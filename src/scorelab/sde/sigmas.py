"""Noise-level ladders: geometric (NCSN, Song & Ermon 2019) and Karras et al. (2022, eq. 5)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from scorelab.utils import check_int, check_noise_level, check_positive


def _check_range(sigma_max: float, sigma_min: float, n: int) -> tuple[float, float, int]:
    """Validate a ladder's endpoints and length; return them as ``(float, float, int)``."""
    sigma_max = check_noise_level(sigma_max, "sigma_max")
    sigma_min = check_positive(sigma_min, "sigma_min")
    n = check_int(n, "n", minimum=1)
    if sigma_max < sigma_min:
        raise ValueError(
            f"sigma_max must be >= sigma_min; got sigma_max={sigma_max} < sigma_min={sigma_min} "
            "(swap them)"
        )
    if n == 1 and sigma_max != sigma_min:
        raise ValueError(
            f"n=1 needs sigma_max == sigma_min (got {sigma_max} and {sigma_min}); "
            "use n >= 2 for a ladder between two different levels"
        )
    return sigma_max, sigma_min, n


def geometric_sigmas(
    n: int, *, sigma_min: float, sigma_max: float, dtype: torch.dtype = torch.float64
) -> Tensor:
    """Geometric (log-linear) noise ladder of NCSN (Song & Ermon 2019, sec. 4.2), descending,
    shape ``(n,)``.

    ``sigmas[i] = sigma_max · q^{-i}`` with constant ratio ``q = (sigma_max/sigma_min)^{1/(n-1)}``:
    the same set as the ascending ``sigma_min · q^i`` of seed 000, listed from the largest level
    (where annealed samplers start) to the smallest. Both endpoints are exact. The levels are
    keywords (as in :func:`karras_sigmas`): positional numbers in the wrong order would give a
    plausible but wrong ladder.
    """
    sigma_max, sigma_min, n = _check_range(sigma_max, sigma_min, n)
    log_sigmas = torch.linspace(math.log(sigma_max), math.log(sigma_min), n, dtype=torch.float64)
    sigmas = log_sigmas.exp()
    sigmas[0], sigmas[-1] = sigma_max, sigma_min
    return sigmas.to(dtype)


def karras_sigmas(
    n: int,
    *,
    sigma_min: float,
    sigma_max: float,
    rho: float = 7.0,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """Karras et al. (2022) eq. 5 noise ladder, descending, shape ``(n,)``.

    ``sigmas[i] = (sigma_max^{1/rho} + i/(n-1) · (sigma_min^{1/rho} - sigma_max^{1/rho}))^rho``.
    Unlike the paper (and k-diffusion's ``get_sigmas_karras``) no final ``0`` is appended: the
    ladder ends at ``sigma_min``; a sampler that wants a last denoising step appends it itself.
    ``rho = 1`` gives a linear ladder, ``rho → ∞`` tends to the geometric one.
    """
    sigma_max, sigma_min, n = _check_range(sigma_max, sigma_min, n)
    rho = check_positive(rho, "rho")
    ramp = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    hi, lo = sigma_max ** (1.0 / rho), sigma_min ** (1.0 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    sigmas[0], sigmas[-1] = sigma_max, sigma_min
    return sigmas.to(dtype)
