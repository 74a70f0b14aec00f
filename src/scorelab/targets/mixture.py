"""A Gaussian mixture with exact log-density, score, per-component scores and noised laws.

Everything is computed from per-component log-densities with log-sum-exp and softmax, never from
ratios of densities, so results stay finite and exact far in the tails (``|x| = 1e3``,
``σ = 0.01``), where every pdf underflows to 0 and a ratio of pdfs is 0/0.
Each covariance is eigendecomposed once, so any batch of different noise levels costs
``O(B·K·D²)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from scorelab.targets.gaussian import (
    Gaussian,
    _as_float64,
    _check_covariances,
    _check_noise,
    _check_x,
    _draw_device,
    _gaussian_terms,
    _noise_var,
)
from scorelab.utils import check_int


def _check_weights(weights: object, k: int) -> Tensor:
    """Validate mixture weights ``(K,)``: finite, ``>= 0``, positive sum; return them normalised."""
    w = _as_float64(weights, "weights")
    if w.shape != (k,):
        raise ValueError(
            f"weights must have shape (K,) = ({k},) to match means; got {tuple(w.shape)}"
        )
    if bool((w < 0).any()):
        raise ValueError(f"weights must be >= 0; got min {float(w.min()):.3g}")
    if not float(w.sum()) > 0:
        raise ValueError("weights must have a positive sum; give at least one component weight > 0")
    return w / w.sum()


class GaussianMixture:
    """A mixture ``Σ_k w_k N(μ_k, Σ_k)`` in ``D >= 1`` dimensions (seed 004 ``GaussianMixture``).

    ``means`` is ``(K, D)``, ``covs`` ``(K, D, D)`` (each symmetric positive definite) and
    ``weights`` ``(K,)`` (non-negative, normalised here; ``None`` for equal weights). Points ``x``
    are always ``(B, D)``; for ``D = 1`` that is ``(B, 1)``.
    """

    def __init__(self, means: Tensor, covs: Tensor, weights: Tensor | None = None) -> None:
        means = _as_float64(means, "means")
        covs = _as_float64(covs, "covs")
        if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
            raise ValueError(
                f"means must have shape (K, D) with K, D >= 1; got {tuple(means.shape)} "
                "(for 1-D components use means[:, None])"
            )
        k, d = means.shape
        if covs.shape != (k, d, d):
            raise ValueError(
                f"covs must have shape (K, D, D) = ({k}, {d}, {d}) to match means of shape "
                f"({k}, {d}); got {tuple(covs.shape)}"
            )
        self._weights = _check_weights(torch.ones(k) if weights is None else weights, k)
        self._means = means
        self._covs = _check_covariances(covs, "covs")
        self._eigvals, self._eigvecs = torch.linalg.eigh(self._covs)
        self._chols = torch.linalg.cholesky(self._covs)
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[Tensor, ...]] = {}

    def __repr__(self) -> str:
        return f"GaussianMixture(n_components={self.n_components}, dim={self.dim})"

    # -- parameters ------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """The data dimension ``D``."""
        return self._means.shape[1]

    @property
    def n_components(self) -> int:
        """The number of components ``K``."""
        return self._means.shape[0]

    @property
    def means(self) -> Tensor:
        """Component means ``μ_k``, shape ``(K, D)``, float64."""
        return self._means.clone()

    @property
    def covs(self) -> Tensor:
        """Component covariances ``Σ_k``, shape ``(K, D, D)``, float64."""
        return self._covs.clone()

    @property
    def weights(self) -> Tensor:
        """Normalised component weights ``w_k``, shape ``(K,)``, float64."""
        return self._weights.clone()

    def component(self, k: int) -> Gaussian:
        """Component ``k`` as a ``Gaussian``."""
        k = check_int(k, "k", minimum=0)
        if k >= self.n_components:
            raise ValueError(f"k must be < n_components = {self.n_components}; got {k}")
        return Gaussian(self._means[k], self._covs[k])

    def mean(self) -> Tensor:
        """The mixture mean ``Σ_k w_k μ_k``, shape ``(D,)``, float64."""
        return self._weights @ self._means

    def covariance(self) -> Tensor:
        """The mixture covariance ``Σ_k w_k (Σ_k + μ_k μ_kᵀ) - μ μᵀ`` (law of total variance)."""
        centred = self._means - self.mean()
        between = torch.einsum("k,ki,kj->ij", self._weights, centred, centred)
        return torch.einsum("k,kij->ij", self._weights, self._covs) + between

    def _params(self, x: Tensor) -> tuple[Tensor, ...]:
        """Log-weights, means, eigenvalues and eigenvectors in ``x``'s dtype and device."""
        key = (x.dtype, x.device)
        if key not in self._cache:
            self._cache[key] = tuple(
                t.to(dtype=x.dtype, device=x.device)
                for t in (
                    torch.log(self._weights),  # -inf for a zero weight: softmax gives it 0
                    self._means,
                    self._eigvals,
                    self._eigvecs,
                )
            )
        return self._cache[key]

    def _terms(self, x: Tensor, sigma: float | Tensor | None) -> tuple[Tensor, Tensor]:
        """``log w_k + log N_k(x)`` ``(K, B)`` and component scores ``(K, D, B)``.

        Components come first (see ``_gaussian_terms``): reductions over K run along ``dim=0``,
        and the public methods transpose to the documented ``(B, K, ...)`` shapes.
        """
        x = _check_x(x, self.dim)
        var = None if sigma is None else _noise_var(sigma, x)
        log_w, means, eigvals, eigvecs = self._params(x)
        log_n, scores = _gaussian_terms(x, means, eigvals, eigvecs, var)
        return log_w[:, None] + log_n, scores

    # -- sampling --------------------------------------------------------------------------------

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        return_components: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Draw ``n`` exact samples ``(n, D)``: a component ``k ~ w``, then ``μ_k + L_k z``.

        With ``return_components`` also returns the component indices ``(n,)`` (int64). Drawn in
        float64 on ``device`` (default: the generator's device, else CPU), then cast to ``dtype``.
        """
        n = check_int(n, "n")
        dev = _draw_device(generator, device)
        components = torch.multinomial(
            self._weights.to(dev), n, replacement=True, generator=generator
        )
        z = torch.randn((n, self.dim), generator=generator, device=dev, dtype=torch.float64)
        x = torch.empty_like(z)
        # One matrix product per component: gathering an (n, D, D) factor per sample would cost
        # n·D² memory, which is too much for image-sized D.
        for k in range(self.n_components):
            rows = components == k
            x[rows] = self._means[k].to(dev) + z[rows] @ self._chols[k].to(dev).T
        x = x.to(dtype)
        return (x, components) if return_components else x

    # -- clean densities and scores --------------------------------------------------------------

    def component_log_probs(self, x: Tensor, sigma: float | Tensor | None = None) -> Tensor:
        """``log w_k + log N(x; μ_k, Σ_k + σ²I)`` for ``x`` ``(B, D)``, shape ``(B, K)``.

        ``sigma`` (``(B,)`` or float) adds Gaussian noise; ``None`` means the clean mixture.
        """
        return self._terms(x, sigma)[0].T.contiguous()

    def component_scores(self, x: Tensor, sigma: float | Tensor | None = None) -> Tensor:
        """Per-component scores ``-(Σ_k + σ²I)⁻¹ (x - μ_k)``, shape ``(B, K, D)`` (seed 004).

        The mixture score is their average weighted by ``responsibilities(x, sigma)``.
        """
        return self._terms(x, sigma)[1].permute(2, 0, 1).contiguous()

    def responsibilities(self, x: Tensor, sigma: float | Tensor | None = None) -> Tensor:
        """Posterior component probabilities ``p(k | x)`` (softmax of the component log-probs)."""
        return torch.softmax(self._terms(x, sigma)[0], dim=0).T.contiguous()

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x) = logsumexp_k (log w_k + log N_k(x))``; ``(B, D) -> (B,)``."""
        return torch.logsumexp(self._terms(x, None)[0], dim=0)

    def score(self, x: Tensor) -> Tensor:
        """Exact ``∇ log p(x) = Σ_k p(k | x) ∇ log N_k(x)``; ``(B, D) -> (B, D)``."""
        return self._score(x, None)

    # -- noised laws -----------------------------------------------------------------------------

    def noised(self, sigma: float, alpha: float = 1.0) -> GaussianMixture:
        """The exact law of ``αX + σZ``, ``Z ~ N(0, I)``: components ``N(αμ_k, α²Σ_k + σ²I)``.

        Same weights (the seed 004 ``diffuse_gmm``; VE for ``α = 1``, VP in general). Scalars only:
        ``σ >= 0`` and ``α > 0``.
        """
        sigma, alpha = _check_noise(sigma, alpha)
        eye = torch.eye(self.dim, dtype=torch.float64)
        return GaussianMixture(
            alpha * self._means, alpha**2 * self._covs + sigma**2 * eye, self._weights
        )

    def noised_log_prob(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """Exact ``log p_σ(x)`` of ``p_σ = p ∗ N(0, σ²I)``; ``sigma`` ``(B,)`` or float; ``(B,)``.

        ``x`` is ``(B, D)``; computed by log-sum-exp over components.
        """
        return torch.logsumexp(self._terms(x, sigma)[0], dim=0)

    def noised_score(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """Exact ``∇ log p_σ(x)`` of ``p_σ = p ∗ N(0, σ²I)``, the ``ScoreFn`` of this target.

        ``x`` is ``(B, D)``, ``sigma`` ``(B,)`` or a float; returns ``(B, D)``.
        """
        return self._score(x, sigma)

    def _score(self, x: Tensor, sigma: float | Tensor | None) -> Tensor:
        """Responsibility-weighted component scores; ``sigma=None`` for the clean mixture."""
        log_probs, scores = self._terms(x, sigma)  # (K, B), (K, D, B)
        resp = torch.softmax(log_probs, dim=0)
        return (resp[:, None] * scores).sum(dim=0).T.contiguous()
