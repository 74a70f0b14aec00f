"""Noise levels chosen from the data, after Song & Ermon (2020), "Improved techniques for training
score-based generative models" (NCSNv2), Techniques 1, 2 and 4.

- Technique 1: ``sigma_max`` is the largest Euclidean distance between two training points.
- Technique 2: the ladder is geometric with a ratio ``γ`` for which consecutive noise shells
  overlap: ``Φ(√(2D)(γ−1) + 3γ) − Φ(√(2D)(γ−1) − 3γ) ≈ 0.5``.
- Technique 4: given ``T`` Langevin steps per level, the step size ``ε`` makes the variance ratio
  of Proposition 3 (their eq. 4) as close to 1 as it can be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from scorelab.sde.sigmas import geometric_sigmas
from scorelab.utils import check_finite, check_int, check_positive

#: Technique 1 uses a random subset of at most this many points when the data set is larger:
#: the exact maximum costs N² distances, and a subset of 2000 points gives a close lower bound.
MAX_DISTANCE_POINTS = 2000
#: The one rule for the smallest noise level (``scorelab.data.stats.training_noise_range`` and
#: :func:`choose_sigmas`): of point data, this fraction of σ_data (the RMS of the per-coordinate
#: std; measured on the 2-D sets, benchmarks/bench_training.py) ...
SIGMA_MIN_FRACTION = 2e-3
#: ... and of 8-bit images in [-1, 1], about one grey-level bin (2/256): finer noise only teaches
#: the network the spikes of the discrete data.
IMAGE_SIGMA_MIN = 0.01
#: Technique 2's target overlap between consecutive noise levels.
TARGET_OVERLAP = 0.5
#: Largest ratio between consecutive levels. In low dimension (D below about 18) the overlap of
#: Technique 2 stays above 0.5 for every ratio up to 2 (Gaussian norms do not concentrate), so
#: the rule cannot bind; the ratio is then capped here.
MAX_RATIO = 2.0


@dataclass(frozen=True)
class NoiseLevels:
    """A descending geometric noise ladder chosen from data, and how it was chosen."""

    sigmas: Tensor  #: ``(L,)`` descending, from ``sigma_max`` to ``sigma_min``
    sigma_max: float
    sigma_min: float
    ratio: float  #: ``γ = sigmas[i] / sigmas[i+1]``
    dim: int  #: data dimension ``D`` (product of the non-batch dims)
    overlap: float  #: Technique 2's overlap at ``ratio`` in dimension ``dim``
    n_points: int  #: points used for the largest pairwise distance
    rule: str  #: how the number of levels was set

    def describe(self) -> str:
        """A few lines saying which levels were chosen and by which rule (printed by the CLI)."""
        return "\n".join(
            [
                f"{len(self.sigmas)} noise levels, geometric, ratio {self.ratio:.4g} ({self.rule})",
                f"  sigma_max = {self.sigma_max:.4g}: largest pairwise distance of "
                f"{self.n_points} points (Song & Ermon 2020, technique 1)",
                f"  sigma_min = {self.sigma_min:.4g}",
                f"  overlap of consecutive levels in D = {self.dim}: {self.overlap:.3f} "
                f"(technique 2 asks for about {TARGET_OVERLAP})",
            ]
        )


def level_overlap(ratio: float, dim: int) -> float:
    """Technique 2's overlap ``Φ(√(2D)(γ−1) + 3γ) − Φ(√(2D)(γ−1) − 3γ)`` (Song & Ermon 2020)."""
    a = math.sqrt(2.0 * dim) * (ratio - 1.0)
    return _normal_cdf(a + 3.0 * ratio) - _normal_cdf(a - 3.0 * ratio)


def _normal_cdf(z: float) -> float:
    """Standard normal CDF ``Φ(z) = erfc(−z/√2)/2`` (stdlib; importing scipy.stats is slow)."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def technique2_ratio(dim: int) -> float:
    """Ratio ``γ`` in ``(1, MAX_RATIO]`` with ``level_overlap(γ, dim) = 0.5`` (Song & Ermon 2020).

    Solved with ``scipy.optimize.brentq``; the overlap starts at ``Φ(3) − Φ(−3) ≈ 0.997`` at
    ``γ = 1`` and, in high dimension, falls through 0.5 once. Returns ``MAX_RATIO`` when the
    overlap is still at least 0.5 there (low dimension).
    """
    from scipy.optimize import brentq  # imported here: keeps ``import scorelab.data`` light

    dim = check_int(dim, "dim")
    if level_overlap(MAX_RATIO, dim) >= TARGET_OVERLAP:
        return MAX_RATIO
    return float(
        brentq(lambda g: level_overlap(g, dim) - TARGET_OVERLAP, 1.0, MAX_RATIO, xtol=1e-12)
    )


def max_pairwise_distance(
    x: Tensor, *, max_points: int = MAX_DISTANCE_POINTS, generator: torch.Generator | None = None
) -> tuple[float, int]:
    """Largest Euclidean distance between rows of ``x`` ``(N, *D)`` (Technique 1), and points used.

    With ``N > max_points`` a random subset of ``max_points`` rows (drawn with ``generator``) is
    used, which gives a lower bound of the full maximum. Computed in float64.
    """
    flat = x.detach().reshape(x.shape[0], -1).to(torch.float64)
    if flat.shape[0] > max_points:
        idx = torch.randperm(flat.shape[0], generator=generator)[:max_points]
        flat = flat[idx.to(flat.device)]
    return float(torch.cdist(flat, flat).max()), int(flat.shape[0])


def data_scale(x: Tensor) -> float:
    """Root mean square over coordinates of the per-coordinate std of ``x`` ``(N, *D)``."""
    flat = x.detach().reshape(x.shape[0], -1).to(torch.float64)
    return float(flat.var(dim=0, unbiased=False).mean().sqrt())


def choose_sigmas(
    x: Tensor,
    *,
    n_levels: int | None = None,
    sigma_min: float | None = None,
    generator: torch.Generator | None = None,
) -> NoiseLevels:
    """A descending geometric σ ladder for data ``x`` ``(N, *D)`` by Song & Ermon (2020), T1–T2.

    - ``sigma_max``: the largest pairwise distance (Technique 1), over a random subset of at most
      ``MAX_DISTANCE_POINTS`` points (drawn with ``generator``; default a generator seeded 0, so
      the ladder is a function of the data);
    - ``sigma_min``: given, or :data:`SIGMA_MIN_FRACTION` × :func:`data_scale` of ``x``;
    - number of levels: ``n_levels`` if given, else the fewest for which the ratio ``γ`` is at most
      :func:`technique2_ratio` of the dimension (overlap ≥ 0.5; Technique 2).

    The ladder is returned in ``x``'s dtype (float64 kept for float64 data) and on its device.
    Raises ``ValueError`` for non-finite data, fewer than 2 distinct points, or
    ``sigma_min >= sigma_max``.
    """
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"x must have shape (N, *D) with N >= 2 points; got {tuple(x.shape)}")
    check_finite(x, "x", hint="remove rows with NaN or Inf before choosing noise levels")
    dim = math.prod(x.shape[1:])
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    s_max, n_points = max_pairwise_distance(x, generator=generator)
    if s_max == 0.0:
        raise ValueError(
            "x holds one distinct point repeated; noise levels need >= 2 distinct points"
        )
    if sigma_min is None:
        s_min = SIGMA_MIN_FRACTION * data_scale(x)
    else:
        s_min = check_positive(sigma_min, "sigma_min")
    if s_min >= s_max:
        raise ValueError(
            f"sigma_min={s_min:.4g} must be below sigma_max={s_max:.4g} (the largest pairwise "
            "distance of the data); pass a smaller sigma_min"
        )
    log_range = math.log(s_max / s_min)
    if n_levels is None:
        limit = technique2_ratio(dim)
        n_levels = max(1 + math.ceil(log_range / math.log(limit)), 2)
        if limit == MAX_RATIO:
            rule = (
                f"fewest levels with ratio <= {MAX_RATIO:g}: technique 2 does not bind in D = {dim}"
            )
        else:
            rule = f"fewest levels with ratio <= {limit:.4g}, technique 2"
    else:
        n_levels = check_int(n_levels, "n_levels", minimum=2)
        rule = "n_levels given"
    ratio = math.exp(log_range / (n_levels - 1))
    dtype = x.dtype if x.dtype.is_floating_point else torch.float32
    sigmas = geometric_sigmas(n_levels, sigma_min=s_min, sigma_max=s_max, dtype=dtype).to(x.device)
    return NoiseLevels(
        sigmas=sigmas,
        sigma_max=s_max,
        sigma_min=s_min,
        ratio=ratio,
        dim=dim,
        overlap=level_overlap(ratio, dim),
        n_points=n_points,
        rule=rule,
    )


def langevin_variance_ratio(
    step_size: float, ratio: float, sigma_min: float, n_steps_each: int
) -> float:
    """Song & Ermon (2020) eq. 4: ``s_T² / σ_i²`` after ``T`` annealed Langevin steps at level i.

    With data a point mass (so ``p_σ = N(0, σ² I)``), ``x`` started from level ``i − 1``
    (variance ``γ² σ_i²``) and steps ``α_i = ε σ_i² / σ_L²``, writing ``u = ε / σ_L²``::

        s_T² / σ_i² = (1 − u)^{2T} (γ² − 2/(2 − u)) + 2/(2 − u)

    (``2/(2 − u)`` is the paper's ``2ε / (σ_L² − σ_L² (1 − ε/σ_L²)²)``). It is the same for every
    level and every dimension.
    """
    u = step_size / sigma_min**2
    stationary = 2.0 / (2.0 - u)
    return (1.0 - u) ** (2 * n_steps_each) * (ratio**2 - stationary) + stationary


def langevin_step_size(sigmas: Tensor, n_steps_each: int) -> float:
    """Step size ``ε`` of annealed Langevin by Song & Ermon (2020), Technique 4.

    The ``ε`` (in the convention ``α_i = ε σ_i² / σ_L²``) minimising ``|eq. 4 − 1|`` for the
    ladder's ratio ``γ = (σ_1/σ_L)^{1/(L−1)}`` and ``T = n_steps_each``, found by
    ``scipy.optimize.minimize_scalar`` over ``ε / σ_L²`` in ``(0, 1)``. The ratio of eq. 4 is
    above 1 for every ``ε``, so the minimum is the closest attainable, not a root. The
    dimension does not enter eq. 4.
    """
    from scipy.optimize import minimize_scalar

    n_steps_each = check_int(n_steps_each, "n_steps_each")
    s = torch.as_tensor(sigmas, dtype=torch.float64).detach().cpu().reshape(-1)
    if s.numel() < 2:
        raise ValueError(f"sigmas must hold at least 2 levels; got {s.numel()}")
    check_finite(s, "sigmas")
    if bool((s <= 0).any()) or bool((s[1:] >= s[:-1]).any()):
        raise ValueError("sigmas must be positive and strictly descending (largest first)")
    s_min = float(s[-1])
    ratio = (float(s[0]) / s_min) ** (1.0 / (s.numel() - 1))

    def objective(u: float) -> float:
        return (langevin_variance_ratio(u * s_min**2, ratio, s_min, n_steps_each) - 1.0) ** 2

    # Coarse log grid first so the bounded search starts in the right basin for any T and γ.
    grid = np.geomspace(1e-10, 1.0 - 1e-9, 201)
    best = int(np.argmin([objective(u) for u in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    res = minimize_scalar(
        objective, bounds=(lo, hi), method="bounded", options={"xatol": lo * 1e-9}
    )
    return float(res.x) * s_min**2
