"""How far a score function is from an exact one: the explicit score-matching error.

``E‖s(x, σ) − ∇ log p_σ(x)‖²`` is the objective that denoising score matching minimises up to a
constant (Vincent 2011, eq. 11 vs. eq. 9); with an analytic target it can be measured directly,
per noise level, on points ``x = x₀ + σz`` drawn from the noised law ``p_σ``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from scorelab.utils import ScoreFn, batch_sigma, check_finite, check_int, sum_except_batch

#: ``sample_x0(n, generator) -> (n, *D)``: clean data points.
X0Sampler = Callable[[int, torch.Generator | None], Tensor]


def _squared_errors(
    score: ScoreFn, exact_score: ScoreFn, x: Tensor, sigma: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-example ``‖s − s*‖²`` and ``‖s*‖²``, both ``(B,)``."""
    s, s_true = score(x, sigma), exact_score(x, sigma)
    for name, v in (("score", s), ("exact_score", s_true)):
        if v.shape != x.shape:
            raise ValueError(
                f"{name}(x, sigma) must return x's shape {tuple(x.shape)}; got {tuple(v.shape)}"
            )
        check_finite(v, f"{name}(x, sigma)")
    return sum_except_batch((s - s_true).square()), sum_except_batch(s_true.square())


def score_error(score: ScoreFn, exact_score: ScoreFn, x: Tensor, sigma: float | Tensor) -> float:
    """Mean squared score error ``mean_b ‖s(x_b, σ_b) − s*(x_b, σ_b)‖²`` (explicit score matching).

    ``x``: ``(B, *D)``; ``sigma``: a number or ``(B,)``; both scores are ``ScoreFn``s. Runs under
    ``torch.no_grad()``; the result is summed over data dims and averaged over the batch.
    """
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (B, *D) with B >= 1; got {tuple(x.shape)}")
    check_finite(x, "x")
    sig = batch_sigma(sigma, x)
    with torch.no_grad():
        err, _ = _squared_errors(score, exact_score, x, sig)
    return float(err.mean())


@dataclass(frozen=True)
class ScoreErrorPerLevel:
    """Score error at each noise level: all fields have shape ``(L,)``."""

    sigmas: Tensor
    mse: Tensor  # mean ‖s − s*‖² over the points of that level
    relative: Tensor  # mse / mean ‖s*‖²: 0 is exact, 1 is as bad as predicting s = 0


def _draw_x0(sample_x0: Tensor | X0Sampler, n: int, generator: torch.Generator | None) -> Tensor:
    if callable(sample_x0):
        x0 = sample_x0(n, generator)
        if not isinstance(x0, Tensor) or x0.ndim < 1 or x0.shape[0] != n:
            got = tuple(x0.shape) if hasattr(x0, "shape") else type(x0).__name__
            raise ValueError(f"sample_x0(n, generator) must return a tensor (n={n}, *D); got {got}")
    else:
        if not isinstance(sample_x0, Tensor) or sample_x0.ndim < 1 or sample_x0.shape[0] == 0:
            raise TypeError("sample_x0 must be a data tensor (B, *D) or a callable (n, generator)")
        x0 = sample_x0
        if n < x0.shape[0]:  # a random subset of n distinct data points
            idx = torch.randperm(x0.shape[0], generator=generator)[:n]
            x0 = x0[idx.to(x0.device)]
    if not x0.is_floating_point():  # e.g. uint8 images
        x0 = x0.to(torch.get_default_dtype())
    return check_finite(x0.detach(), "sample_x0")


def score_error_per_level(
    score: ScoreFn,
    exact_score: ScoreFn,
    sample_x0: Tensor | X0Sampler,
    sigmas: Sequence[float] | Tensor,
    *,
    n: int = 1000,
    generator: torch.Generator | None = None,
) -> ScoreErrorPerLevel:
    """Score error at each σ of ``sigmas`` on points ``x = x₀ + σz`` of the noised law ``p_σ``.

    ``sample_x0`` is either data ``(B, *D)`` (n ≥ B uses every row, else a random subset of n
    rows) or a sampler ``sample_x0(n, generator)``. The same x₀ serve every level, with fresh
    ``z ~ N(0, I)`` per level from ``generator``. Returns ``mse`` (mean ‖s − s*‖²) and ``relative``
    (``mse`` / mean ‖s*‖²), each ``(L,)``. Runs under ``torch.no_grad()``.
    """
    n = check_int(n, "n")
    sig = torch.as_tensor(sigmas, dtype=torch.float64).reshape(-1)
    if sig.numel() == 0 or not bool(torch.isfinite(sig).all()) or bool((sig <= 0).any()):
        raise ValueError(f"sigmas must be a non-empty list of finite numbers > 0; got {sigmas!r}")
    x0 = _draw_x0(sample_x0, n, generator)
    mse, rel = [], []
    with torch.no_grad():
        for s in sig.tolist():
            z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
            x = x0 + s * z
            err, norm = _squared_errors(score, exact_score, x, batch_sigma(s, x))
            mse.append(err.mean())
            rel.append(err.mean() / norm.mean())
    return ScoreErrorPerLevel(
        sig.to(device=x0.device, dtype=x0.dtype), torch.stack(mse), torch.stack(rel)
    )
