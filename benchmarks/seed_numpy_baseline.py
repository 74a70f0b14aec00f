"""A numpy re-implementation of the seed 004 reverse-SDE sampler with the exact mixture score.

This is the speed (and sanity) baseline of ``bench_samplers.py``: the loop of the seed 004
tutorial written from its algorithm, not from its code. The forward SDE is ``dx = λ^t dw`` on
``t ∈ [0, 1]`` with ``σ_t² = (λ^{2t} − 1)/(2 ln λ)``; sampling starts from ``N(0, σ_1² I)`` and
takes ``n_steps`` Euler–Maruyama steps of the reverse SDE

    x ← x + g(t)²·∇log p_t(x)·Δt + g(t)·√Δt·z,   g(t) = λ^t,  Δt = 1/(n_steps + 1),

at the times ``t_i = 1 − i·Δt`` for ``i = 1 … n_steps`` (the seed's grid: ``nsteps`` slots of
which the first holds the start, so ``nsteps = 200`` gives 199 updates, one score evaluation
each, and stops at ``t = Δt`` without a denoising step). ``∇log p_t`` is the exact score of the
mixture diffused to time ``t`` (each covariance ``Σ_k + σ_t² I``), computed from log-densities
with log-sum-exp / softmax responsibilities so that it stays finite in the far tails.

Only numpy is used (no torch), so its timing is the cost of the algorithm in plain numpy.
"""

from __future__ import annotations

import math

import numpy as np


class NumpyMixture:
    """A Gaussian mixture ``Σ_k w_k N(μ_k, Σ_k)`` with the exact score of its noised law, in numpy.

    ``means`` ``(K, D)``, ``covs`` ``(K, D, D)``, ``weights`` ``(K,)``. Each covariance is
    eigendecomposed once, so ``Σ_k + σ²I = U_k (Λ_k + σ²) U_kᵀ`` costs nothing per step.
    """

    def __init__(self, means: np.ndarray, covs: np.ndarray, weights: np.ndarray) -> None:
        self.means = np.asarray(means, dtype=np.float64)
        self.log_weights = np.log(np.asarray(weights, dtype=np.float64) / np.sum(weights))
        self.eigvals, self.eigvecs = np.linalg.eigh(np.asarray(covs, dtype=np.float64))

    def noised_score(self, x: np.ndarray, sigma: float) -> np.ndarray:
        """Exact ``∇log (p ∗ N(0, σ²I))(x)`` for ``x`` ``(N, D)`` and one scalar ``σ``."""
        lam = self.eigvals + sigma**2  # (K, D): eigenvalues of Σ_k + σ²I
        n_comp, dim = self.means.shape
        log_terms = np.empty((x.shape[0], n_comp))
        comp_scores = np.empty((n_comp, *x.shape))
        for k in range(n_comp):
            # Coordinates of x − μ_k in the eigenbasis of Σ_k, scaled by the inverse eigenvalues.
            y = (x - self.means[k]) @ self.eigvecs[k]
            ratio = y / lam[k]
            quad = np.einsum("nd,nd->n", y, ratio)
            log_det = np.sum(np.log(lam[k]))
            log_terms[:, k] = self.log_weights[k] - 0.5 * (
                quad + log_det + dim * math.log(2 * math.pi)
            )
            comp_scores[k] = -ratio @ self.eigvecs[k].T  # −(Σ_k + σ²I)⁻¹ (x − μ_k)
        # Softmax responsibilities p(k | x) via log-sum-exp (no ratios of pdfs).
        log_terms -= log_terms.max(axis=1, keepdims=True)
        resp = np.exp(log_terms)
        resp /= resp.sum(axis=1, keepdims=True)
        return np.einsum("nk,knd->nd", resp, comp_scores)


def seed004_mixture() -> NumpyMixture:
    """The seed 004 two-dimensional mixture: means (0, 1), (2, −1); covs I, [[2, .5], [.5, 1]]."""
    return NumpyMixture(
        means=np.array([[0.0, 1.0], [2.0, -1.0]]),
        covs=np.array([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.5], [0.5, 1.0]]]),
        weights=np.array([0.5, 0.5]),
    )


def sigma_t(t: float, lam: float) -> float:
    """Noise level of the seed 004 forward SDE at time ``t``: ``√((λ^{2t} − 1)/(2 ln λ))``."""
    return math.sqrt(math.expm1(2.0 * t * math.log(lam)) / (2.0 * math.log(lam)))


def reverse_sde_numpy(
    mixture: NumpyMixture,
    n: int,
    n_steps: int,
    lam: float = 25.0,
    rng: np.random.Generator | None = None,
    x: np.ndarray | None = None,
) -> np.ndarray:
    """The seed 004 reverse-SDE loop: ``n_steps`` Euler–Maruyama steps from ``N(0, σ_1² I)``.

    Returns the final state ``(n, D)``; ``n_steps`` score evaluations. ``x`` may give the start.
    """
    rng = np.random.default_rng() if rng is None else rng
    dim = mixture.means.shape[1]
    if x is None:
        x = sigma_t(1.0, lam) * rng.standard_normal((n, dim))
    dt = 1.0 / (n_steps + 1)
    for i in range(1, n_steps + 1):
        t = 1.0 - i * dt
        g = lam**t
        z = rng.standard_normal(x.shape)
        x = x + g**2 * mixture.noised_score(x, sigma_t(t, lam)) * dt + g * math.sqrt(dt) * z
    return x
