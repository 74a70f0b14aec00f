"""Seed 001 ("Diffusion models" homework) as thin shells over scorelab's core.

- ``AntiCorrelatedGaussian``: NumPy face of ``scorelab.targets.anticorrelated``.
- ``langevin_sampler``: ``scorelab.samplers.langevin.langevin`` (η form) from ``2·N(0, I)``; it
  warns (:class:`LangevinNotMixedWarning`) naming the ``K`` that would reach the stationary law.
- ``ScoreNet`` / ``denoising_score_matching``: ``SoftplusMLP`` and ``losses.dsm_loss``.
- ``sample_simple``: ``scorelab.samplers.langevin.score_ascent`` with its trail.

Randomness: every stochastic function takes an optional ``generator`` (a ``torch.Generator``);
without one the global torch RNG is used, as in a notebook. The NumPy RNG is never used.
"""

from __future__ import annotations

import math
import warnings
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
    "LANGEVIN_MIXING_TOL",
    "LANGEVIN_TAU",
    "AntiCorrelatedGaussian",
    "LangevinNotMixedWarning",
    "ScoreNet",
    "denoising_score_matching",
    "langevin_sampler",
    "sample_simple",
]

#: Default Langevin step τ of ``langevin_sampler``. Seed 001 leaves the step open (its time grid
#: ``linspace(1, 0, K)`` fixes only the number of updates, K − 1). With τ = 0.1 the chain on the
#: anti-correlated Gaussian (precision eigenvalues 0.59 and 3.33) is stable and its stationary
#: covariance is within 9 % of Σ (ULA bias 1/(1 − τλ/4) per eigen-direction). The slow direction
#: contracts by 1 − τλ/2 = 0.97 per step, so it needs K ≈ 70 states to forget the start
#: 2·N(0, I); the seed's default K = 20 cannot (its covariance is ≈ [[1.39, −1.06], [−1.06, 1.39]]),
#: and no τ fixes both at K = 20 (a τ that mixes in 19 steps biases the fast direction by > 30 %).
#: ``langevin_sampler`` therefore keeps the seed's defaults and warns with the K that would do.
LANGEVIN_TAU = 0.1
#: Error that ``langevin_sampler`` accepts before warning that the chain has not mixed, per
#: eigen-direction of the curvature: of the variance relative to its stationary value, and of
#: the mean relative to the stationary standard deviation.
LANGEVIN_MIXING_TOL = 0.02


class LangevinNotMixedWarning(UserWarning):
    """``langevin_sampler`` stopped before its chain forgot the start (or its step biases it)."""


class AntiCorrelatedGaussian:
    """N(0, Σ), Σ = [[1, −0.7], [−0.7, 1]] (seed 001) with exact score; NumPy in, NumPy out.

    A shell over ``scorelab.targets.anticorrelated()`` (kept as ``self.target``). The seed's
    attributes ``_mu`` ``(2,)`` and ``_sigma`` ``(2, 2)`` are float64 arrays with the seed's exact
    values; ``mean`` and ``cov`` are the same numbers, read from the core target.
    """

    def __init__(self) -> None:
        self.target = anticorrelated()
        self._mu = np.zeros(2)
        self._sigma = np.array([[1.0, -0.7], [-0.7, 1.0]])

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
        """``n`` exact samples, float64 ``(n, 2)`` (torch's RNG, not NumPy's as in the seed)."""
        return to_numpy(self.target.sample(n, generator=generator, dtype=torch.float64))


def _numpy_score(score_fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Tensor], Tensor]:
    """A torch score ``(B, D) -> (B, D)`` calling a NumPy ``score_fn`` (as seed 001 writes it)."""

    def score(x: Tensor) -> Tensor:
        s = np.asarray(score_fn(to_numpy(x)), dtype=np.float64)
        return torch.from_numpy(s).to(device=x.device, dtype=x.dtype)

    return score


def _curvature(score: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean curvature ``A = −E[∇s]`` (symmetrised) and mean ``m`` of the law whose score is ``s``.

    Central differences of ``score`` at the points ``x`` ``(n, D)`` (2·D + 1 calls); ``m`` is
    one Newton step from the points' mean, ``x̄ + A⁻¹ E[s(x)]``. Both are exact for a Gaussian
    (linear score), and the local Gaussian approximation otherwise.
    """
    dim = x.shape[1]
    h = 1e-4 * max(1.0, float(x.abs().max()))
    cols = []
    for j in range(dim):
        e = torch.zeros(dim, dtype=x.dtype, device=x.device)
        e[j] = h
        cols.append((score(x + e) - score(x - e)).mean(dim=0) / (2 * h))
    jac = torch.stack(cols, dim=1)  # jac[i, j] = E[∂s_i / ∂x_j]
    a = -(jac + jac.T) / 2
    return a, x.mean(dim=0) + torch.linalg.lstsq(a, score(x).mean(dim=0)).solution


def _states_needed(
    score: Callable[[Tensor], Tensor], x: Tensor, tau: float, start_var: float, tol: float
) -> tuple[int, float] | None:
    """States K that ULA ``x ← x + τ/2·s + √τ·z`` needs to forget a start N(0, start_var·I).

    Per eigen-direction (curvature λ) of a Gaussian target the chain is linear, with ρ = 1 − τλ/2:
    the mean's offset d from the target's mean m shrinks as ρ^k·d and the variance moves to its
    stationary value v∞ = τ/(1 − ρ²) as ``v_k − v∞ = ρ^{2k}(start_var − v∞)``. K − 1 is the
    smallest k with ``|ρ^k·d| ≤ tol·√v∞`` and ``|v_k − v∞| ≤ tol·v∞`` in every direction. Also
    returns the largest stationary bias ``v∞·λ − 1 = 1/(1 − τλ/4) − 1``. None when the
    curvature is not positive (no Gaussian approximation) or the step is unstable (``langevin``
    raises then).
    """
    a, m = _curvature(score, x)
    lam, u = torch.linalg.eigh(a)
    if not bool(torch.isfinite(lam).all()) or float(lam.min()) <= 0:
        return None
    steps, bias = 0, 0.0
    for k in range(len(lam)):
        rho = abs(1.0 - tau * float(lam[k]) / 2.0)
        if rho >= 1.0:
            return None
        v_inf = tau / (1.0 - rho**2)
        offset = abs(float(u[:, k] @ m))  # the start's mean is 0
        # ρ^j·gap ≤ limit  ⇔  j ≥ log(limit/gap)/log ρ, for the mean (ρ^j) and variance (ρ^{2j}).
        for gap, limit, power in (
            (offset, tol * math.sqrt(v_inf), 1.0),
            (abs(start_var - v_inf), tol * v_inf, 2.0),
        ):
            if gap > limit and rho > 0:
                steps = max(steps, math.ceil(math.log(limit / gap) / (power * math.log(rho))))
        bias = max(bias, v_inf * float(lam[k]) - 1.0)
    return steps + 1, bias


def langevin_sampler(
    score_fn: Callable[[np.ndarray], np.ndarray],
    n: int,
    K: int = 20,
    return_trajectory: bool = False,
    *,
    tau: float = LANGEVIN_TAU,
    generator: torch.Generator | None = None,
    check_mixing: bool = True,
) -> np.ndarray:
    """Unadjusted Langevin ``x ← x + τ/2·s(x) + √τ·z`` (seed 001, Task 2) from ``x₀ = 2·N(0, I)``.

    ``score_fn`` maps NumPy points ``(n, 2)`` to scores ``(n, 2)``. ``K`` states in all, so
    ``K − 1`` updates with step ``tau``. Returns the last state ``(n, 2)``, or with
    ``return_trajectory`` every state ``(n, 2, K)`` (``[..., 0]`` is the start). Runs
    ``scorelab.samplers.langevin.langevin`` in float64.

    The seed promises samples that look like the target's, but its defaults (K = 20, and any
    step) cannot give them on its anti-correlated Gaussian (see :data:`LANGEVIN_TAU`). With
    ``check_mixing`` (5 extra calls of ``score_fn``) the curvature of ``-log p`` is measured at
    the final states and a :class:`LangevinNotMixedWarning` names the ``K`` at which the chain's
    mean and covariance are within :data:`LANGEVIN_MIXING_TOL` of its stationary law (exact for a
    Gaussian target: K = 72 for the seed's target with τ = 0.1), or the ``tau`` to use when the
    step itself biases the stationary covariance by more than 10 %.
    """
    n = check_int(n, "n")
    K = check_int(K, "K", minimum=2)
    tau = check_positive(tau, "tau")
    score = _numpy_score(score_fn)
    x0 = 2.0 * torch.randn((n, 2), generator=generator, dtype=torch.float64)
    result = langevin(
        score,
        x0,
        step_size=tau,
        n_steps=K - 1,
        parametrization="eta",
        generator=generator,
        keep_trajectory=return_trajectory,
    )
    if check_mixing:
        _warn_if_not_mixed(score, result.samples, K, tau)
    if return_trajectory:
        return to_numpy(result.trajectory.permute(1, 2, 0))  # (K, n, 2) -> (n, 2, K)
    return to_numpy(result.samples)


def _warn_if_not_mixed(score: Callable[[Tensor], Tensor], x: Tensor, K: int, tau: float) -> None:
    """Warn when K states of step tau leave the chain short of (or biased from) its target."""
    found = _states_needed(score, x, tau, start_var=4.0, tol=LANGEVIN_MIXING_TOL)
    if found is None:
        return
    needed, bias = found
    if K < needed:
        warnings.warn(
            f"langevin_sampler: K={K} states ({K - 1} steps of tau={tau:g}) have not forgotten "
            f"the start 2·N(0, I); for this score the chain needs K >= {needed} to bring its "
            f"mean and covariance within {LANGEVIN_MIXING_TOL:.0%} of their stationary values: "
            f"pass K={needed}",
            LangevinNotMixedWarning,
            stacklevel=3,
        )
    if bias > 0.1:
        warnings.warn(
            f"langevin_sampler: tau={tau:g} inflates the stationary covariance by up to "
            f"{bias:.0%} (unadjusted Langevin's O(tau) bias); pass a smaller tau, e.g. "
            f"tau={tau * 0.1 / bias:.2g} (and K accordingly)",
            LangevinNotMixedWarning,
            stacklevel=3,
        )


class ScoreNet(SoftplusMLP):
    """Seed 001 score network: Linear(2, 128) → Softplus → Linear(128, 2), ``forward(x)``.

    ``scorelab.models.SoftplusMLP`` with the seed's sizes, its ``nn.Sequential`` kept under the
    seed's name ``_model`` (``state_dict`` keys ``_model.0.weight`` …), so a state dict saved
    from the seed's ``ScoreNet`` loads with ``strict=True``. ``net`` is the same module.
    """

    def __init__(self, dim: int = 2, hidden: int = 128) -> None:
        super().__init__(dim=dim, hidden=hidden)
        self._model = self._modules.pop("net")

    @property
    def net(self) -> nn.Module:
        """The ``nn.Sequential`` (SoftplusMLP's name for ``_model``)."""
        return self._model


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
