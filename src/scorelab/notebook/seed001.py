"""Seed 001 ("Diffusion models" homework) as thin shells over scorelab's core.

- ``AntiCorrelatedGaussian``: NumPy face of ``scorelab.targets.anticorrelated``.
- ``langevin_sampler``: ``scorelab.samplers.langevin.langevin`` (η form) from ``2·N(0, I)``.
- ``ScoreNet`` / ``denoising_score_matching``: ``SoftplusMLP`` and ``losses.dsm_loss``.
- ``sample_simple``: ``scorelab.samplers.langevin.score_ascent`` with its trail.

Randomness: every stochastic function takes an optional ``generator`` (a ``torch.Generator``);
without one the global torch RNG is used, as in a notebook. The NumPy RNG is never used.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from scorelab.losses import dsm_loss
from scorelab.models import SoftplusMLP
from scorelab.notebook._arrays import as_points, to_numpy
from scorelab.samplers.langevin import langevin, score_ascent
from scorelab.targets import anticorrelated
from scorelab.utils import check_int, check_positive

__all__ = [
    "LANGEVIN_TAU",
    "AntiCorrelatedGaussian",
    "ScoreNet",
    "denoising_score_matching",
    "langevin_sampler",
    "sample_simple",
]

#: Default Langevin step τ of ``langevin_sampler``. Seed 001 leaves the step open (its time grid
#: ``linspace(1, 0, K)`` fixes only the number of updates, K − 1). With τ = 0.1 the chain on the
#: anti-correlated Gaussian (precision eigenvalues 0.59 and 3.33) is stable and its stationary
#: covariance is within 9 % of Σ (ULA bias 1/(1 − τλ/4) per eigen-direction); the slow direction
#: forgets its start in a few hundred steps, so K = 20 (the seed's default) only shows the trend.
LANGEVIN_TAU = 0.1


class AntiCorrelatedGaussian:
    """N(0, Σ), Σ = [[1, −0.7], [−0.7, 1]] (seed 001) with exact score; NumPy in, NumPy out.

    A shell over ``scorelab.targets.anticorrelated()`` (kept as ``self.target``).
    """

    def __init__(self) -> None:
        self.target = anticorrelated()

    @property
    def mean(self) -> np.ndarray:
        """The mean ``(2,)``."""
        return to_numpy(self.target.mean())

    @property
    def cov(self) -> np.ndarray:
        """The covariance Σ ``(2, 2)``."""
        return to_numpy(self.target.covariance())

    def score(self, x: np.ndarray) -> np.ndarray:
        """Exact score ``∇ log p(x) = −Σ⁻¹ x`` of points ``(..., 2)``, float64 ``(..., 2)``."""
        pts, lead = as_points(x, 2)
        return to_numpy(self.target.score(pts)).reshape(*lead, 2)

    def sample(self, n: int, generator: torch.Generator | None = None) -> np.ndarray:
        """``n`` exact samples, float64 ``(n, 2)``."""
        return to_numpy(self.target.sample(n, generator=generator, dtype=torch.float64))


def _numpy_score(score_fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Tensor], Tensor]:
    """A torch score ``(B, D) -> (B, D)`` calling a NumPy ``score_fn`` (as seed 001 writes it)."""

    def score(x: Tensor) -> Tensor:
        s = np.asarray(score_fn(to_numpy(x)), dtype=np.float64)
        return torch.from_numpy(s).to(device=x.device, dtype=x.dtype)

    return score


def langevin_sampler(
    score_fn: Callable[[np.ndarray], np.ndarray],
    n: int,
    K: int = 20,
    return_trajectory: bool = False,
    *,
    tau: float = LANGEVIN_TAU,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Unadjusted Langevin ``x ← x + τ/2·s(x) + √τ·z`` (seed 001, Task 2) from ``x₀ = 2·N(0, I)``.

    ``score_fn`` maps NumPy points ``(n, 2)`` to scores ``(n, 2)``. ``K`` states in all, so
    ``K − 1`` updates with step ``tau`` (see :data:`LANGEVIN_TAU` for the choice of default).
    Returns the last state ``(n, 2)``, or with ``return_trajectory`` every state ``(n, 2, K)``
    (``[..., 0]`` is the start). Runs ``scorelab.samplers.langevin.langevin`` in float64.
    """
    n = check_int(n, "n")
    K = check_int(K, "K", minimum=2)
    tau = check_positive(tau, "tau")
    x0 = 2.0 * torch.randn((n, 2), generator=generator, dtype=torch.float64)
    result = langevin(
        _numpy_score(score_fn),
        x0,
        step_size=tau,
        n_steps=K - 1,
        parametrization="eta",
        generator=generator,
        keep_trajectory=return_trajectory,
    )
    if return_trajectory:
        return to_numpy(result.trajectory.permute(1, 2, 0))  # (K, n, 2) -> (n, 2, K)
    return to_numpy(result.samples)


class ScoreNet(SoftplusMLP):
    """Seed 001 score network: Linear(2, 128) → Softplus → Linear(128, 2), ``forward(x)``.

    ``scorelab.models.SoftplusMLP`` with the seed's sizes.
    """

    def __init__(self, dim: int = 2, hidden: int = 128) -> None:
        super().__init__(dim=dim, hidden=hidden)


def denoising_score_matching(
    scorenet: nn.Module,
    samples: Tensor,
    sigma: float = 0.01,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Single-σ DSM (Vincent 2011; seed 001, Task 4): mean of ½‖s(x̃) + (x̃ − x)/σ²‖², a scalar.

    ``scorenet(x̃)`` is a score of x alone; ``samples`` is ``(B, *D)``. The batch mean of
    ``scorelab.losses.dsm_loss(..., conditional=False)``.
    """
    return dsm_loss(scorenet, samples, sigma, generator, conditional=False).mean()


def sample_simple(
    model: Callable[[Tensor], Tensor], x: Tensor, n_steps: int = 20, eps: float = 1e-3
) -> Tensor:
    """Score ascent ``x ← x + ε·s(x)`` (seed 001, Task 6), returning the trail on the CPU.

    ``x`` is one point ``(D,)`` (the seed starts at (1.5, 1.5)) or a batch ``(B, D)``; returns
    every state, ``(n_steps + 1, *x.shape)``, detached. Deterministic: no noise is added, so this
    climbs to a mode of the learned density rather than sampling it
    (``scorelab.samplers.langevin.score_ascent``).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (D,) or (B, D); got {type(x).__name__}")
    single = x.ndim == 1
    start = x[None] if single else x
    result = score_ascent(model, start, step_size=eps, n_steps=n_steps, keep_trajectory=True)
    trail = result.trajectory.detach().cpu()
    return trail[:, 0] if single else trail
