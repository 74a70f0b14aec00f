"""Seed 004 ("Diffusion models" tutorial) as thin shells over scorelab's core.

- ``GaussianMixture``: NumPy face of ``scorelab.targets.GaussianMixture``; its densities and
  scores are computed from log-densities (log-sum-exp, softmax), so they stay finite far in the
  tails where the seed's ratio of pdfs is 0/0 = NaN.
- ``sigma_t_square`` / ``sigma_t`` / ``diffuse_gmm``: ``scorelab.sde.VESDELambda`` and
  ``GaussianMixture.noised``.
- ``reverse_diffusion_SDE_sampling_gmm`` / ``reverse_diffusion_SDE_sampling``:
  ``scorelab.samplers.reverse_sde.reverse_sde`` on the seed's time grid.
- ``GaussianFourierProjection`` / ``ScoreModel_Time``: ``scorelab.models.GaussianFourierFeatures``
  and ``FourierTimeMLP``.
- ``loss_fn``: ``scorelab.losses.continuous_dsm_loss``.

Randomness: every stochastic function takes an optional ``generator`` (a ``torch.Generator``);
without one the global torch RNG is used, as in a notebook. The NumPy RNG is never used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from scorelab.losses import continuous_dsm_loss
from scorelab.models import FourierTimeMLP, GaussianFourierFeatures, TimeConditioned
from scorelab.notebook._arrays import as_points, to_numpy
from scorelab.samplers.reverse_sde import reverse_sde
from scorelab.sde import VESDELambda
from scorelab.targets import GaussianMixture as _CoreMixture
from scorelab.utils import ScoreFn, check_int

__all__ = [
    "GaussianFourierProjection",
    "GaussianMixture",
    "ScoreModel_Time",
    "diffuse_gmm",
    "loss_fn",
    "reverse_diffusion_SDE_sampling",
    "reverse_diffusion_SDE_sampling_gmm",
    "sigma_t",
    "sigma_t_square",
]


class GaussianMixture:
    """Mixture ``Σ_k w_k N(μ_k, Σ_k)`` of seed 004 with NumPy inputs and outputs.

    ``mus`` is a list of K means ``(D,)``, ``covs`` a list of K covariances ``(D, D)`` and
    ``weights`` K non-negative, unnormalised weights (normalised to ``norm_weights``). Points are
    arrays ``(..., D)`` like scipy's (an ``np.dstack((xx, yy))`` grid ``(H, W, 2)`` gives
    ``(H, W)`` densities). Everything is computed by ``self.target``, a
    ``scorelab.targets.GaussianMixture``, in float64 and from log-densities: unlike the seed's
    ratio of pdfs, ``score`` and ``score_decompose`` are exact and finite at any distance from the
    modes (the seed returns NaN once every component pdf underflows, e.g. at ``|x| = 1e3``).
    """

    def __init__(
        self,
        mus: Sequence[np.ndarray],
        covs: Sequence[np.ndarray],
        weights: Sequence[float],
    ) -> None:
        self._set(mus, covs, weights)

    def _set(
        self, mus: Sequence[np.ndarray], covs: Sequence[np.ndarray], weights: Sequence[float]
    ) -> None:
        """Store the seed's attributes and build the core mixture (which validates them)."""
        mus = [np.asarray(m, dtype=np.float64) for m in mus]
        covs = [np.asarray(c, dtype=np.float64) for c in covs]
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        if not mus:
            raise ValueError("mus must hold at least one mean (D,)")
        if not len(mus) == len(covs) == len(weights):
            raise ValueError(
                f"mus, covs and weights must have one entry per component; got {len(mus)}, "
                f"{len(covs)} and {len(weights)}"
            )
        self.target = _CoreMixture(np.stack(mus), np.stack(covs), weights)
        self.mus, self.covs, self.weights = mus, covs, weights

    def __repr__(self) -> str:
        return f"GaussianMixture(n_component={self.n_component}, dim={self.dim})"

    @property
    def n_component(self) -> int:
        """The number of components K."""
        return self.target.n_components

    @property
    def dim(self) -> int:
        """The data dimension D."""
        return self.target.dim

    @property
    def norm_weights(self) -> np.ndarray:
        """The weights normalised to sum to 1, ``(K,)``."""
        return to_numpy(self.target.weights)

    @property
    def precs(self) -> list[np.ndarray]:
        """The precision matrices Σ_k⁻¹, a list of K arrays ``(D, D)``."""
        return [np.linalg.inv(c) for c in self.covs]

    @property
    def RVs(self) -> list:  # noqa: N802 (the seed's name)
        """The components as frozen ``scipy.stats.multivariate_normal`` (for contour plots)."""
        from scipy.stats import multivariate_normal

        return [multivariate_normal(m, c) for m, c in zip(self.mus, self.covs, strict=True)]

    def add_component(self, mu: np.ndarray, cov: np.ndarray, weight: float = 1) -> None:
        """Append the component ``weight · N(mu, cov)`` (weights are renormalised)."""
        self._set([*self.mus, mu], [*self.covs, cov], [*self.weights.tolist(), float(weight)])

    # -- densities -------------------------------------------------------------------------------

    def _component_log_probs(self, x: object) -> tuple[Tensor, tuple[int, ...]]:
        pts, lead = as_points(x, self.dim)
        return self.target.component_log_probs(pts), lead

    def pdf(self, x: object) -> np.ndarray:
        """Density ``p(x) = Σ_k w_k N(x; μ_k, Σ_k)`` at points ``(..., D)``, shape ``(...)``."""
        log_probs, lead = self._component_log_probs(x)
        return to_numpy(torch.logsumexp(log_probs, dim=1).exp()).reshape(lead)

    def pdf_decompose(self, x: object) -> tuple[np.ndarray, np.ndarray]:
        """``(p(x), w_k N_k(x))``: the density ``(...)`` and its K weighted terms ``(K, ...)``."""
        log_probs, lead = self._component_log_probs(x)
        terms = log_probs.exp()
        return to_numpy(terms.sum(dim=1)).reshape(lead), to_numpy(terms.T).reshape(-1, *lead)

    # -- scores ----------------------------------------------------------------------------------

    def score(self, x: object) -> np.ndarray:
        """Exact score ``∇ log p(x)`` at points ``(..., D)``, shape ``(..., D)``.

        The responsibility-weighted component scores with responsibilities from a softmax of
        log-densities (never a ratio of pdfs), so it is finite everywhere.
        """
        pts, lead = as_points(x, self.dim)
        return to_numpy(self.target.score(pts)).reshape(*lead, self.dim)

    def score_decompose(self, x: object) -> tuple[list[np.ndarray], np.ndarray]:
        """Per-component scores and responsibilities: ``([−Σ_k⁻¹(x − μ_k)], p(k | x))``.

        Returns a list of K arrays ``(..., D)`` and the responsibilities ``(..., K)``;
        ``score(x) = Σ_k resp[..., k] · scores[k]``.
        """
        pts, lead = as_points(x, self.dim)
        scores = self.target.component_scores(pts)  # (N, K, D)
        resp = self.target.responsibilities(pts)  # (N, K)
        per_component = [
            to_numpy(scores[:, k]).reshape(*lead, self.dim) for k in range(self.n_component)
        ]
        return per_component, to_numpy(resp).reshape(*lead, self.n_component)

    # -- sampling --------------------------------------------------------------------------------

    def sample(
        self, N: int, generator: torch.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``N`` samples as the seed does: N from every component, then pick one per row.

        Returns ``(samples (N, D), component indices (N,), all component samples (K, N, D))``
        with ``samples[i] = all[indices[i], i]``; indices are drawn with probabilities
        ``norm_weights``. Each component is drawn exactly by ``scorelab.targets.Gaussian``.
        """
        N = check_int(N, "N")
        every = torch.stack(
            [
                self.target.component(k).sample(N, generator=generator, dtype=torch.float64)
                for k in range(self.n_component)
            ]
        )
        index = torch.multinomial(self.target.weights, N, replacement=True, generator=generator)
        chosen = every[index, torch.arange(N)]
        return to_numpy(chosen), index.numpy(), to_numpy(every)


# ------------------------------------------------------------------------------------------------
# The VE SDE with g(t) = λ^t.
# ------------------------------------------------------------------------------------------------


def _like_input(value: Tensor, t: object) -> Tensor | np.ndarray:
    """``value`` as a tensor in ``t``'s dtype/device when ``t`` is a tensor, else as NumPy."""
    if isinstance(t, Tensor):
        return value.to(device=t.device, dtype=t.dtype if t.is_floating_point() else value.dtype)
    return to_numpy(value)


def _times(t: object) -> Tensor:
    if isinstance(t, Tensor):
        return t.detach().to(torch.float64)
    return torch.as_tensor(np.asarray(t, dtype=np.float64))


def sigma_t_square(t: float | np.ndarray | Tensor, Lambda: float) -> np.ndarray | Tensor:
    """Variance σ_t² = (λ^{2t} − 1)/(2 ln λ) of q(x_t | x_0) for dx = λ^t dw (seed 004).

    ``scorelab.sde.VESDELambda(Lambda)``, computed with ``expm1`` (accurate for small t). A tensor
    ``t`` gives a tensor (same dtype and device), anything else a float64 NumPy array of ``t``'s
    shape. ``Lambda`` must be > 1.
    """
    return _like_input(VESDELambda(Lambda).noise_level(_times(t)).square(), t)


def sigma_t(t: float | np.ndarray | Tensor, Lambda: float) -> np.ndarray | Tensor:
    """Standard deviation σ_t = √((λ^{2t} − 1)/(2 ln λ)) for dx = λ^t dw (seed 004)."""
    return _like_input(VESDELambda(Lambda).noise_level(_times(t)), t)


def diffuse_gmm(gmm: GaussianMixture, t: float, Lambda: float) -> GaussianMixture:
    """The mixture at time ``t`` of dx = λ^t dw: covariances Σ_k + σ_t² I, same means and weights.

    The exact law of ``X + σ_t Z`` (``scorelab.targets.GaussianMixture.noised``).
    """
    noised = gmm.target.noised(float(sigma_t(float(t), Lambda)))
    return GaussianMixture(list(to_numpy(noised.means)), list(to_numpy(noised.covs)), gmm.weights)


def _reverse_trajectory(
    score: ScoreFn,
    sampN: int,
    Lambda: float,
    nsteps: int,
    ndim: int,
    dtype: torch.dtype,
    generator: torch.Generator | None,
) -> np.ndarray:
    """Euler–Maruyama of the reverse SDE on the seed's grid t_i = 1 − i/nsteps, i < nsteps.

    Starts from N(0, σ_1² I) and makes ``nsteps − 1`` steps of size 1/nsteps down to
    t = 1/nsteps (no final denoising, as the seed). Returns ``(sampN, ndim, nsteps)``.
    The core evaluates the score and g at the start of each step (the standard Euler–Maruyama
    step); the seed evaluates them at its end, a difference of O(1/nsteps).
    """
    sampN, ndim = check_int(sampN, "sampN"), check_int(ndim, "ndim")
    nsteps = check_int(nsteps, "nsteps", minimum=2)
    sde = VESDELambda(Lambda)
    x_T = sde.prior_sample((sampN, ndim), generator=generator, dtype=dtype)
    result = reverse_sde(
        score,
        x_T,
        sde,
        n_steps=nsteps - 1,
        t_end=1.0 / nsteps,
        denoise=False,
        generator=generator,
        keep_trajectory=True,
    )
    return to_numpy(result.trajectory.permute(1, 2, 0))


def reverse_diffusion_SDE_sampling_gmm(  # noqa: N802 (the seed's name)
    gmm: GaussianMixture,
    sampN: int = 500,
    Lambda: float = 5,
    nsteps: int = 500,
    *,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Reverse-SDE sampling of ``gmm`` with its exact diffused score (seed 004, Exercise 1.3).

    ``x ← x + λ^{2t} ∇log p_t(x) Δt + λ^t √Δt z`` with Δt = 1/nsteps, from x ~ N(0, σ_1² I);
    ``∇log p_t`` is the exact, tail-stable score of the diffused mixture. Returns the trajectory
    ``(sampN, D, nsteps)`` (``[..., -1]`` are the samples), float64.
    """
    return _reverse_trajectory(
        gmm.target.noised_score, sampN, Lambda, nsteps, gmm.dim, torch.float64, generator
    )


def reverse_diffusion_SDE_sampling(  # noqa: N802 (the seed's name)
    score_model_td: nn.Module | GaussianMixture,
    sampN: int = 500,
    Lambda: float = 5,
    nsteps: int = 200,
    ndim: int = 2,
    exact: bool = False,
    *,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """Reverse-SDE sampling with a time-conditioned network ``s(x, t)`` or an exact mixture.

    With ``exact=False`` ``score_model_td(x, t)`` estimates ∇log p_t (e.g. ``ScoreModel_Time``)
    and is run in its own dtype; with ``exact=True`` it must be a notebook ``GaussianMixture``.
    Same grid and output ``(sampN, ndim, nsteps)`` as :func:`reverse_diffusion_SDE_sampling_gmm`.
    """
    if exact:
        if not isinstance(score_model_td, GaussianMixture):
            raise TypeError(
                "with exact=True score_model_td must be a scorelab.notebook.GaussianMixture; "
                f"got {type(score_model_td).__name__}"
            )
        if score_model_td.dim != ndim:
            raise ValueError(f"ndim must equal the mixture's dimension {score_model_td.dim}")
        return reverse_diffusion_SDE_sampling_gmm(
            score_model_td, sampN, Lambda, nsteps, generator=generator
        )
    if not callable(score_model_td):
        raise TypeError(f"score_model_td must be a network s(x, t); got {type(score_model_td)}")
    params = list(score_model_td.parameters()) if isinstance(score_model_td, nn.Module) else []
    dtype = params[0].dtype if params else torch.float32
    score = TimeConditioned(score_model_td, VESDELambda(Lambda))
    return _reverse_trajectory(score, sampN, Lambda, nsteps, ndim, dtype, generator)


# ------------------------------------------------------------------------------------------------
# The time-conditioned network and its loss.
# ------------------------------------------------------------------------------------------------


class GaussianFourierProjection(GaussianFourierFeatures):
    """Fixed random features [sin(2π W t), cos(2π W t)], W ~ N(0, scale²) (seed 004).

    ``scorelab.models.GaussianFourierFeatures``: ``(B,) -> (B, embed_dim)``; ``W`` is a buffer.
    """

    def __init__(
        self, embed_dim: int, scale: float = 30.0, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__(embed_dim, scale, generator=generator)

    def forward(self, t: Tensor) -> Tensor:
        """Features of times ``t`` ``(B,)``: ``(B, embed_dim)`` (the seed's argument name)."""
        return super().forward(t)


class ScoreModel_Time(FourierTimeMLP):  # noqa: N801 (the seed's name)
    """Seed 004 time-conditioned score ``forward(x, t)`` ≈ ∇log p_t(x) for dx = λ^t dw, 2-D.

    ``sigma`` is the λ of g(t) = λ^t (the seed calls it sigma). ``scorelab.models.FourierTimeMLP``
    with the seed's sizes: 10 Fourier features of t (scale 1), tanh MLP 12 → 50 → 50 → 2, output
    divided by σ_t.
    """

    def __init__(self, sigma: float, *, generator: torch.Generator | None = None) -> None:
        sde = VESDELambda(sigma)
        super().__init__(
            2, sde_sigma_fn=sde.sigma, embed_dim=10, hidden=50, scale=1.0, generator=generator
        )
        self.sde = sde

    def sigma_t_fun(self, t: Tensor) -> Tensor:
        """σ_t of the model's SDE (the seed's attribute of that name)."""
        return self.sde.sigma(t)


@dataclass(frozen=True)
class _TimeKeyedVE:
    """A VE schedule (α_t = 1) given only by ``sigma_t_fun``, for ``continuous_dsm_loss``.

    The core loss calls the score as ``score(x, sde.noise_level(t))``. A seed 004 model is
    conditioned on the time t itself and ``sigma_t_fun`` need not be invertible, so this
    schedule's ``noise_level`` returns t unchanged: the model then receives its own time.
    """

    sigma_t_fun: Callable[[Tensor], object]
    T: float = 1.0

    def alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.as_tensor(self.sigma_t_fun(t), dtype=t.dtype, device=t.device)

    def noise_level(self, t: Tensor) -> Tensor:
        return t


def loss_fn(
    model: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    sigma_t_fun: Callable[[Tensor], object],
    eps: float = 1e-5,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Continuous-time DSM (Song et al. 2021, eq. 7; seed 004): mean ‖σ_t s(x + σ_t z, t) + z‖².

    t ~ U[eps, 1] per example, ``σ_t = sigma_t_fun(t)``; summed over data dims, averaged over the
    batch; a scalar. ``model(x_t, t)`` is a time-conditioned score. The batch mean of
    ``scorelab.losses.continuous_dsm_loss``. It is exactly 0 for the point mass at 0 with its
    analytic score ``−x/σ_t²``.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (B, *D); got {type(x).__name__}")
    schedule = _TimeKeyedVE(sigma_t_fun)
    return continuous_dsm_loss(model, x, schedule, eps=eps, generator=generator).mean()
