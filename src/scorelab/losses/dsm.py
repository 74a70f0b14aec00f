"""Denoising score matching losses, one value per example ``(B,)``; the caller weights and reduces.

Every loss sums the squared error over all data dims of ``(B, *D)`` (``sum_except_batch``).
- ``dsm_loss``: single σ (Vincent 2011).
- ``multilevel_dsm_loss``: a ladder of σ's with weight λ(σ) (Song & Ermon 2019, NCSN).
- ``continuous_dsm_loss``: SDE time t ~ U[eps, T] (Song et al. 2021).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from scorelab.utils import (
    CleanScoreFn,
    ScoreFn,
    append_dims,
    batch_sigma,
    check_finite,
    check_generator,
    check_positive,
    sum_except_batch,
)

__all__ = ["WEIGHTINGS", "continuous_dsm_loss", "dsm_loss", "multilevel_dsm_loss"]

#: Weightings λ(σ) of ``multilevel_dsm_loss``: "sigma2" λ = σ² (NCSN), "seed000" λ = σ²/σ_max²,
#: "none" λ = 1.
WEIGHTINGS = ("sigma2", "seed000", "none")


def _noise(x0: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)


def _check_score(s: Tensor, x: Tensor) -> Tensor:
    """The score must have the shape of x (a (B,) vs (B, 1) slip would broadcast silently)."""
    if not isinstance(s, Tensor) or s.shape != x.shape:
        shape = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        raise ValueError(f"score_fn must return the shape of x, {tuple(x.shape)}; got {shape}")
    return s


def _check_data(x0: Tensor, name: str = "x0", generator: torch.Generator | None = None) -> Tensor:
    """Validate the data batch (floating, ``(B, *D)``, finite) and the loss's ``generator``."""
    if not isinstance(x0, Tensor) or not x0.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (B, *D)")
    if x0.ndim < 2:
        raise ValueError(f"{name} must have shape (B, *D); got {tuple(x0.shape)} (use x0[:, None])")
    check_generator(generator, x0.device)
    return check_finite(x0, name, hint="remove or fix those rows")


def _check_sde(sde: object, likelihood_weighting: bool) -> None:
    """Refuse an ``sde`` without the schedule methods the continuous loss calls."""
    needed = ("alpha", "sigma", "noise_level") + (("diffusion",) if likelihood_weighting else ())
    missing = [m for m in needed if not callable(getattr(sde, m, None))]
    if missing:
        raise TypeError(
            "sde must be a scorelab SDE (e.g. scorelab.sde.get_sde('vp')); got "
            f"{type(sde).__name__} without {', '.join(missing)}"
        )


def dsm_loss(
    score_fn: ScoreFn | CleanScoreFn,
    x0: Tensor,
    sigma: float | Tensor,
    generator: torch.Generator | None = None,
    *,
    conditional: bool = True,
) -> Tensor:
    """Denoising score matching at one noise level (Vincent 2011), shape ``(B,)``.

    With x̃ = x0 + σ z, z ~ N(0, I), returns ½ Σ_dims (s(x̃, σ) + z/σ)², since ∇ log q(x̃|x0) =
    −z/σ. Its expectation is ½ E‖s − ∇ log p_σ‖² + const, minimised by the score of
    p_σ = p ∗ N(0, σ²I). ``conditional=False`` calls ``score_fn(x̃)`` (a score of x alone,
    trained at one σ: seed 001). ``sigma`` is a float or ``(B,)``.
    """
    x0 = _check_data(x0, generator=generator)
    sigma = batch_sigma(sigma, x0)
    z = _noise(x0, generator)
    s_ = append_dims(sigma, x0.ndim)
    x = x0 + s_ * z
    s = _check_score(score_fn(x, sigma) if conditional else score_fn(x), x)
    return 0.5 * sum_except_batch((s + z / s_).square())


def _weights(sigma: Tensor, sigmas: Tensor, weighting: str) -> Tensor:
    if weighting == "sigma2":
        return sigma.square()
    if weighting == "seed000":
        return sigma.square() / sigmas.max().square()
    return torch.ones_like(sigma)


def multilevel_dsm_loss(
    score_fn: ScoreFn,
    x0: Tensor,
    sigmas: Sequence[float] | Tensor,
    *,
    weighting: str = "sigma2",
    mode: str = "random",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Multi-level DSM of NCSN (Song & Ermon 2019): ½ λ(σ)‖s(x̃, σ) + z/σ‖², ``(B,)``.

    ``mode="random"``: one level drawn uniformly per example (seeds 000, 002), an unbiased
    estimate of the level average. ``mode="sum"``: every level for every example, averaged over
    the L levels (seed 003), one network call on the stacked ``(L·B, *D)`` batch.
    ``weighting``: "sigma2" λ = σ² (NCSN), "seed000" λ = σ²/σ_max² (seed 000), "none" λ = 1.
    """
    x0 = _check_data(x0, generator=generator)
    levels = torch.as_tensor(sigmas, dtype=x0.dtype, device=x0.device)
    if levels.ndim != 1 or levels.numel() == 0:
        raise ValueError(
            f"sigmas must be a non-empty 1-d list of levels; got {tuple(levels.shape)}"
        )
    if not bool(torch.isfinite(levels).all()) or bool((levels <= 0).any()):
        raise ValueError("sigmas must be finite and > 0")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}; got {weighting!r}")
    B, L = x0.shape[0], levels.numel()
    if mode == "random":
        index = torch.randint(0, L, (B,), generator=generator, device=x0.device)
        sigma = levels[index]
        return _weights(sigma, levels, weighting) * dsm_loss(score_fn, x0, sigma, generator)
    if mode == "sum":
        sigma = levels.repeat_interleave(B)  # level-major: rows l·B … l·B + B − 1 are level l
        x_rep = x0.repeat(L, *([1] * (x0.ndim - 1)))
        loss = _weights(sigma, levels, weighting) * dsm_loss(score_fn, x_rep, sigma, generator)
        return loss.reshape(L, B).mean(dim=0)
    raise ValueError(f"mode must be 'random' or 'sum'; got {mode!r}")


def continuous_dsm_loss(
    score_fn: ScoreFn,
    x0: Tensor,
    sde: object,
    *,
    eps: float = 1e-5,
    likelihood_weighting: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Continuous-time DSM (Song et al. 2021, eq. 7; seed 004): ‖σ_t ∇log p_t(x_t) + z‖², ``(B,)``.

    t ~ U[eps, T] (T = ``sde.T``, default 1), x_t = α_t x0 + σ_t z, and ∇ log p_t comes from the
    VE-convention ``score_fn`` through ``scorelab.sde.score_at_time``. This is the weighting
    λ(t) = σ_t² of seed 004 and score_sde, with no ½. ``likelihood_weighting=True`` uses
    λ(t) = g(t)² instead: g(t)²‖∇log p_t(x_t) + z/σ_t‖² (Song et al. 2021b, "Maximum likelihood
    training of score-based diffusion models", Thm. 1). ``sde`` needs ``alpha``, ``sigma``,
    ``noise_level`` and, for likelihood weighting, ``diffusion`` (every ``scorelab.sde`` SDE).
    """
    from scorelab.sde import score_at_time  # lazy: keeps losses importable on their own

    _check_sde(sde, likelihood_weighting)
    x0 = _check_data(x0, generator=generator)
    eps = check_positive(eps, "eps")
    T = float(getattr(sde, "T", 1.0))
    if eps >= T:
        raise ValueError(f"eps must be < T = {T}; got {eps} (use a small eps such as 1e-5)")
    B = x0.shape[0]
    t = eps + (T - eps) * torch.rand(B, generator=generator, device=x0.device, dtype=x0.dtype)
    z = _noise(x0, generator)
    alpha = append_dims(torch.as_tensor(sde.alpha(t), dtype=x0.dtype), x0.ndim)
    std = append_dims(torch.as_tensor(sde.sigma(t), dtype=x0.dtype), x0.ndim)
    x = alpha * x0 + std * z
    s = _check_score(score_at_time(score_fn, sde, x, t), x)
    if likelihood_weighting:
        g2 = torch.as_tensor(sde.diffusion(t), dtype=x0.dtype).square()
        return g2 * sum_except_batch((s + z / std).square())
    return sum_except_batch((std * s + z).square())
