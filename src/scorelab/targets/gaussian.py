"""A full-covariance Gaussian with exact log-density, score and noised laws.

Parameters are kept in float64; every computation runs in the dtype and on the device of its input.
The covariance is eigendecomposed once, ``Σ = U Λ Uᵀ``, so that ``Σ + σ²I = U (Λ + σ²) Uᵀ`` gives
the exact log-density and score of ``p ∗ N(0, σ²I)`` for a whole batch of different ``σ`` in
``O(B·D²)`` without one Cholesky factorisation per example.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from scorelab.utils import batch_sigma, check_finite, check_generator, check_int, check_positive

_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------
# Helpers shared with ``mixture.py`` (a Gaussian is handled as a mixture of one component).
# ----------------------------------------------------------------------------------------------


def _as_float64(value: object, name: str) -> Tensor:
    """Convert a parameter (tensor, array, list, number) to a detached float64 CPU tensor."""
    try:
        t = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a tensor, array or nested list of numbers") from None
    t = t.detach().cpu().clone()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} holds NaN or Inf; pass finite numbers")
    return t


def _check_covariances(covs: Tensor, name: str) -> Tensor:
    """Check ``covs`` ``(..., D, D)`` is symmetric positive definite; return it symmetrised."""
    scale = covs.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(1e-300)
    asym = ((covs - covs.transpose(-2, -1)).abs() / scale).amax()
    if float(asym) > 1e-6:
        raise ValueError(
            f"{name} must be symmetric; the largest relative asymmetry |Σ - Σᵀ| / max|Σ| is "
            f"{float(asym):.3g}. Pass (Σ + Σᵀ) / 2 if the asymmetry is rounding"
        )
    covs = 0.5 * (covs + covs.transpose(-2, -1))
    eigvals = torch.linalg.eigvalsh(covs)
    # Relative floor: an eigenvalue below D·eps·λ_max is zero to float64 working precision.
    floor = covs.shape[-1] * torch.finfo(torch.float64).eps * eigvals[..., -1:].abs()
    if bool((eigvals <= floor).any()):
        raise ValueError(
            f"{name} must be positive definite; its smallest eigenvalue is "
            f"{float(eigvals.min()):.3g} (largest {float(eigvals.max()):.3g}). "
            "Add a small multiple of the identity or fix the matrix"
        )
    return covs


def _check_x(x: Tensor, dim: int, name: str = "x") -> Tensor:
    """Validate a batch of points: a floating tensor of shape ``(B, D)`` with finite entries."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (B, {dim}); got {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor; got {x.dtype}. Use {name}.float()"
        )
    if x.ndim != 2 or x.shape[1] != dim:
        hint = f" (for 1-D data use {name}[:, None])" if dim == 1 and x.ndim == 1 else ""
        raise ValueError(
            f"{name} must have shape (B, {dim}) to match the target's dimension {dim}; "
            f"got {tuple(x.shape)}{hint}"
        )
    return check_finite(
        x, name, hint="remove or fix those rows (a sampler that produced them diverged)"
    )


def _gaussian_terms(
    x: Tensor, means: Tensor, eigvals: Tensor, eigvecs: Tensor, var: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Log-densities ``(K, B)`` and scores ``(K, D, B)`` of ``N(μ_k, Σ_k + var·I)`` at ``x``.

    ``means`` is ``(K, D)``, ``eigvals`` ``(K, D)`` and ``eigvecs`` ``(K, D, D)`` (columns are
    eigenvectors, ``Σ_k = U_k diag(λ_k) U_kᵀ``), ``var`` ``(B,)``, ``(1,)`` (one noise level for
    the whole batch) or ``None`` for no added noise. Note the scores' batch-last layout.

    Layout: the work runs on ``(K, D, B)`` tensors (components first, batch last), not
    ``(B, K, D)``. With the small ``K`` and ``D`` of toy targets, torch is about 20× slower
    reducing over a tiny trailing dimension than over a leading one, and an einsum over
    ``(B, K, D)`` (or a matmul ``(K, B, D) @ (K, D, D)``) becomes products of thousands of tiny
    matrices. With B last, ``U_kᵀ (x - μ_k)`` is one ``(D, D) @ (D, B)`` product per component and
    every reduction (over D here, over K in ``mixture.py``) runs along a leading dimension.
    Callers transpose to ``(B, ..., D)`` only at the end (reducing over a transposed view is slow
    again).
    """
    d = x.shape[1]
    diff = x.T.contiguous()[None] - means[:, :, None]  # (K, D, B)
    y = eigvecs.transpose(-2, -1) @ diff  # coordinates in each eigenbasis: U_kᵀ (x - μ_k)
    if var is None:
        lam = eigvals[:, :, None]  # (K, D, 1)
    else:
        lam = eigvals[:, :, None] + var  # (K, D, B), or (K, D, 1) for one shared level
    ratio = y / lam
    quad = (y * ratio).sum(dim=1)  # (K, B)
    log_det = torch.log(lam).sum(dim=1)  # (K, B) or (K, 1)
    log_n = -0.5 * (quad + log_det + d * _LOG_2PI)
    score = (-eigvecs) @ ratio  # -(Σ_k + var I)⁻¹ (x - μ_k), (K, D, B)
    return log_n, score


def _noise_var(sigma: float | Tensor, x: Tensor) -> Tensor:
    """The added variance ``σ²``: ``(B,)``, or ``(1,)`` when every example has the same ``σ``.

    ``σ`` is validated by ``batch_sigma``; one shared level (every sampler's case) lets
    ``_gaussian_terms`` take one log-determinant per component instead of B identical ones.
    """
    s = batch_sigma(sigma, x)
    if s.shape[0] > 1 and (s.stride(0) == 0 or bool((s == s[0]).all())):
        s = s[:1]
    return s**2


def _draw_device(generator: torch.Generator | None, device: torch.device | str | None):
    """The device to draw on: the one asked for, else the generator's, else the CPU.

    Also checks ``generator`` (``None`` or a ``torch.Generator`` on that device).
    """
    if device is not None:
        dev = torch.device(device)
    elif isinstance(generator, torch.Generator):
        dev = generator.device
    else:
        dev = torch.device("cpu")
    check_generator(generator, dev)
    return dev


def _check_noise(sigma: float, alpha: float) -> tuple[float, float]:
    """Validate the scalars of ``αX + σZ``: ``σ >= 0`` and ``α > 0``, both finite."""
    return check_positive(sigma, "sigma", strict=False), check_positive(alpha, "alpha")


# ----------------------------------------------------------------------------------------------
# The Gaussian target.
# ----------------------------------------------------------------------------------------------


class Gaussian:
    """A Gaussian ``N(mean, cov)`` in ``D >= 1`` dimensions with exact score and noised laws.

    ``mean`` has shape ``(D,)`` and ``cov`` shape ``(D, D)`` (symmetric positive definite). Points
    ``x`` are always ``(B, D)``; for ``D = 1`` that is ``(B, 1)``.
    """

    def __init__(self, mean: Tensor, cov: Tensor) -> None:
        mean = _as_float64(mean, "mean")
        cov = _as_float64(cov, "cov")
        if mean.ndim != 1 or mean.shape[0] < 1:
            raise ValueError(f"mean must have shape (D,) with D >= 1; got {tuple(mean.shape)}")
        d = mean.shape[0]
        if cov.shape != (d, d):
            raise ValueError(
                f"cov must have shape (D, D) = ({d}, {d}) to match mean of shape ({d},); "
                f"got {tuple(cov.shape)}"
            )
        self._mean = mean
        self._cov = _check_covariances(cov, "cov")
        self._eigvals, self._eigvecs = torch.linalg.eigh(self._cov)
        self._chol = torch.linalg.cholesky(self._cov)
        self._cache: dict[tuple[torch.dtype, torch.device], tuple[Tensor, ...]] = {}

    def __repr__(self) -> str:
        return f"Gaussian(dim={self.dim})"

    @property
    def dim(self) -> int:
        """The data dimension ``D``."""
        return self._mean.shape[0]

    def mean(self) -> Tensor:
        """The mean vector ``μ``, shape ``(D,)``, float64."""
        return self._mean.clone()

    def covariance(self) -> Tensor:
        """The covariance matrix ``Σ``, shape ``(D, D)``, float64."""
        return self._cov.clone()

    def _params(self, x: Tensor) -> tuple[Tensor, ...]:
        """Mean ``(1, D)``, eigenvalues ``(1, D)``, eigenvectors ``(1, D, D)`` in ``x``'s dtype."""
        key = (x.dtype, x.device)
        if key not in self._cache:
            self._cache[key] = tuple(
                t[None].to(dtype=x.dtype, device=x.device)
                for t in (self._mean, self._eigvals, self._eigvecs)
            )
        return self._cache[key]

    def _terms(self, x: Tensor, sigma: float | Tensor | None) -> tuple[Tensor, Tensor]:
        x = _check_x(x, self.dim)
        var = None if sigma is None else _noise_var(sigma, x)
        log_n, score = _gaussian_terms(x, *self._params(x), var)
        return log_n[0], score[0].T.contiguous()

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Draw ``n`` exact samples ``μ + L z`` with ``Σ = L Lᵀ`` (Cholesky), shape ``(n, D)``.

        Drawn in float64 on ``device`` (default: the generator's device, else CPU), then cast.
        """
        n = check_int(n, "n")
        dev = _draw_device(generator, device)
        z = torch.randn((n, self.dim), generator=generator, device=dev, dtype=torch.float64)
        x = self._mean.to(dev) + z @ self._chol.to(dev).T
        return x.to(dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density ``log N(x; μ, Σ)`` of ``x`` ``(B, D)``, shape ``(B,)``."""
        return self._terms(x, None)[0]

    def score(self, x: Tensor) -> Tensor:
        """Exact score ``∇ log p(x) = -Σ⁻¹ (x - μ)`` of ``x`` ``(B, D)``, shape ``(B, D)``."""
        return self._terms(x, None)[1]

    def noised(self, sigma: float, alpha: float = 1.0) -> Gaussian:
        """The exact law of ``αX + σZ``, ``Z ~ N(0, I)``: ``N(αμ, α²Σ + σ²I)`` (VE for ``α = 1``).

        Scalars only: ``σ >= 0`` (``σ = 0`` rescales only) and ``α > 0``.
        """
        sigma, alpha = _check_noise(sigma, alpha)
        eye = torch.eye(self.dim, dtype=torch.float64)
        return Gaussian(alpha * self._mean, alpha**2 * self._cov + sigma**2 * eye)

    def noised_log_prob(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """Exact ``log p_σ(x)`` of ``p_σ = p ∗ N(0, σ²I) = N(μ, Σ + σ²I)``.

        ``x`` is ``(B, D)``, ``sigma`` ``(B,)`` or a float; returns ``(B,)``.
        Each example uses its own ``σ`` (one eigendecomposition serves all).
        """
        return self._terms(x, sigma)[0]

    def noised_score(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """Exact ``∇ log p_σ(x) = -(Σ + σ²I)⁻¹ (x - μ)``, the ``ScoreFn`` of this target.

        ``x`` is ``(B, D)``, ``sigma`` ``(B,)`` or a float; returns ``(B, D)``.
        """
        return self._terms(x, sigma)[1]
