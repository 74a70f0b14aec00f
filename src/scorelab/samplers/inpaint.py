"""Inpainting / imputation: fill the hidden part of ``(B, *D)`` data, keep the known part exactly.

A mask ``M`` of ``x``'s shape (or of one example's shape ``(*D)``) marks known entries with 1 and
entries to fill with 0; ``observed`` holds the known values (its other entries are ignored).
Repeat the rows of ``observed`` to draw several completions of one input.

- :func:`inpaint_replacement`: the replacement method with a Langevin corrector (Song et al. 2021,
  app. I.2; also Song & Ermon 2019, sec. 5): at each noise level the known part is replaced by
  the observation noised to that level, then a predictor step and Langevin corrector steps move
  the hidden part. Cheap and generic, but it conditions on a *noisy* observation, so it is not
  exact: mass between modes of the conditional is set where the levels are large.
- :func:`inpaint`: any ladder sampler on a score that is already conditioned on the observation
  (the exact ``ObservedMixture.score`` of a mixture, or :func:`reconstruction_guidance` of a
  network), then the known part is pasted back exactly.
- :func:`reconstruction_guidance`: ``s(x, σ) + ∇ₓ log N(y; D(x, σ)_o, r_σ²I)`` through the
  denoiser ``D = x + σ²s`` (Ho et al. 2022, "Video diffusion models", eq. 7; Chung et al. 2023,
  DPS; with the ΠGDM variance ``r_σ² = σ²σ_d²/(σ² + σ_d²)``, Song et al. 2023), approximate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from scorelab.samplers.ode import dpmpp_3m
from scorelab.samplers.result import (
    Callback,
    SampleResult,
    StepMonitor,
    call_score,
    full_like_batch,
    validate_sigmas,
    validate_start,
)
from scorelab.utils import (
    ScoreFn,
    append_dims,
    batch_sigma,
    check_finite,
    check_int,
    check_positive,
    sum_except_batch,
)

__all__ = ["check_mask", "inpaint", "inpaint_replacement", "reconstruction_guidance"]


def check_mask(mask: Tensor, x: Tensor, name: str = "mask") -> Tensor:
    """Validate an inpainting mask and return it as a 0/1 tensor of ``x``'s shape, dtype, device.

    Accepts a bool or 0/1 tensor of shape ``x.shape`` (one mask per example) or ``x.shape[1:]``
    (one mask for all). Raises ``ValueError`` for another shape, values other than 0 and 1, and a
    row that hides nothing (all 1) or everything (all 0).
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a tensor of x's shape {tuple(x.shape)} (1 = known)")
    if mask.shape == x.shape[1:]:
        mask = mask.expand(x.shape)
    elif mask.shape != x.shape:
        raise ValueError(
            f"{name} must have x's shape {tuple(x.shape)} or one example's shape "
            f"{tuple(x.shape[1:])}; got {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{name} must be binary: 1 (or True) = known, 0 (or False) = to fill")
    m = mask.to(dtype=x.dtype, device=x.device)
    known = sum_except_batch(m)
    size = x[0].numel()
    if bool((known == size).any()):
        raise ValueError(
            f"{name} hides nothing in row {int((known == size).nonzero()[0])} (all 1): "
            "there is nothing to fill; drop that row"
        )
    if bool((known == 0).any()):
        raise ValueError(
            f"{name} hides everything in row {int((known == 0).nonzero()[0])} (all 0): "
            "use an unconditional sampler for that row"
        )
    return m


def _check_observed(observed: Tensor, x: Tensor) -> Tensor:
    if not isinstance(observed, Tensor) or observed.shape != x.shape:
        got = tuple(observed.shape) if isinstance(observed, Tensor) else type(observed).__name__
        raise ValueError(
            f"observed must have x's shape {tuple(x.shape)} (repeat rows for several "
            f"completions of one input); got {got}"
        )
    observed = observed.to(dtype=x.dtype, device=x.device)
    return check_finite(observed, "observed", hint="known values must be finite numbers")


def _paste(x: Tensor, observed: Tensor, mask: Tensor) -> Tensor:
    """Known entries from ``observed``, the others from ``x`` (exact: no arithmetic on them)."""
    return torch.where(mask.bool(), observed, x)


@torch.no_grad()
def inpaint_replacement(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    observed: Tensor,
    mask: Tensor,
    n_corrector: int = 1,
    snr: float = 0.16,
    resample: int = 1,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Replacement inpainting with a Langevin corrector (Song et al. 2021, app. I.2, VE form).

    ``x`` ``(B, *D)`` is the start for the hidden part (e.g. ``moment_matched_prior`` at
    ``sigmas[0]``). At each level ``σ_i`` of the descending ladder:

    1. replace the known part by ``y + σ_i z`` (the observation noised to ``σ_i``);
    2. ``n_corrector`` Langevin steps ``x ← x + ε s + √(2ε) z`` on the hidden part, with
       ``ε = 2(snr·‖z‖/‖s‖)²`` (norms over the hidden entries, averaged over the batch; Alg. 4),
       each followed by the replacement;
    3. an ancestral predictor step to ``σ_{i+1}``: ``x ← x + (σ_i² − σ_{i+1}²)s(x, σ_i) +
       σ_{i+1}√(1 − σ_{i+1}²/σ_i²)·z`` (the Gaussian posterior step; with ``denoise`` the last
       one goes to σ = 0 and is the Tweedie step ``x + σ²s``).

    With ``resample = U > 1`` each step to a level ``σ_{i+1} > 0`` is done ``U`` times: after
    each but the last, the sample is noised back to ``σ_i`` (``x + √(σ_i² − σ_{i+1}²)·z``) and the
    step is taken again (RePaint's resampling with jump length 1, Lugmayr et al. 2022, Alg. 1),
    which lets the filled part agree with the known part instead of only following it.

    The output's known entries equal ``observed`` exactly. Not exact for multimodal
    conditionals (the known part is a noisy observation at large σ). ``n_evals =
    (1 + n_corrector)·(U·(L − 1) + denoise)`` for ``L`` levels.
    """
    x = validate_start(x, generator=generator)
    m = check_mask(mask, x)
    y = _check_observed(observed, x)
    levels = validate_sigmas(sigmas)
    if denoise:
        levels = [*levels, 0.0]
    n_corrector = check_int(n_corrector, "n_corrector", minimum=0)
    snr = check_positive(snr, "snr")
    hidden = 1.0 - m
    monitor = StepMonitor(
        "inpaint_replacement",
        x,
        len(levels) - 1,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
        hint=f"try a smaller snr (< {snr:g}) or a finer ladder",
    )

    def randn() -> Tensor:
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)

    def replace(x: Tensor, sigma: float) -> Tensor:
        return _paste(x, y + sigma * randn() if sigma > 0 else y, m)

    resample = check_int(resample, "resample")
    n_evals = 0
    x = replace(x, levels[0])
    for i in range(len(levels) - 1):
        sigma, sigma_next = levels[i], levels[i + 1]
        sigma_b = full_like_batch(sigma, x)
        for u in range(resample if sigma_next > 0 else 1):
            if u > 0:  # RePaint: noise the step back to σ and take it again.
                x = replace(x + math.sqrt(sigma**2 - sigma_next**2) * randn(), sigma)
            # Corrector: Langevin steps on the hidden part, targeting p_σ(x_hidden | noisy known).
            for _ in range(n_corrector):
                s = call_score(score, x, sigma_b) * hidden
                z = randn() * hidden
                s_norm = sum_except_batch(s.square()).sqrt().mean()
                z_norm = sum_except_batch(z.square()).sqrt().mean()
                eps = 2.0 * (snr * z_norm / s_norm.clamp_min(1e-300)).square()
                eps = torch.where(s_norm > 0, eps, torch.zeros_like(eps))
                x = replace(x + eps * s + (2.0 * eps).sqrt() * z, sigma)
                n_evals += 1
                monitor.guard(x, f"level {i} (corrector, sigma={sigma:.4g})")
            # Predictor: ancestral step σ → σ_next (the Tweedie step when σ_next = 0).
            s = call_score(score, x, sigma_b)
            n_evals += 1
            x = x + (sigma**2 - sigma_next**2) * s
            if sigma_next > 0:
                x = x + sigma_next * math.sqrt(1.0 - (sigma_next / sigma) ** 2) * randn()
            x = replace(x, sigma_next)
        monitor.step(x, f"level {i} (sigma={sigma:.4g})", sigma=sigma_next)
    # Known entries exact (without ``denoise`` the last replacement was noisy, at sigmas[-1]).
    return monitor.finish(_paste(x, y, m), n_evals=n_evals)


@torch.no_grad()
def inpaint(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    observed: Tensor,
    mask: Tensor,
    sampler: Callable[..., SampleResult] = dpmpp_3m,
    **sampler_kwargs: Any,
) -> SampleResult:
    """Sample with a score already conditioned on the observation, then paste the known part.

    ``score`` should be ``∇ₓ log p_σ(x | x_o = y)``: the exact
    :meth:`scorelab.targets.conditional.ObservedMixture.score` of a mixture, or
    :func:`reconstruction_guidance` around a network. ``sampler`` is any ladder sampler
    ``(score, x, sigmas, **kwargs)`` (default ``dpmpp_3m``, the recommended one); ``x``
    ``(B, *D)`` its start (e.g. ``moment_matched_prior`` or ``ObservedMixture.prior``). The
    returned samples (and the last trajectory entry) hold ``observed`` exactly where ``mask`` is 1.
    """
    x = validate_start(x, generator=sampler_kwargs.get("generator"))
    m = check_mask(mask, x)
    y = _check_observed(observed, x)
    if not callable(sampler):
        raise TypeError(f"sampler must be a ladder sampler function; got {type(sampler).__name__}")
    res = sampler(score, _paste(x, y, m), sigmas, **sampler_kwargs)
    res.samples = _paste(res.samples, y, m)
    if res.trajectory is not None:
        res.trajectory[-1] = res.samples
    return res


def _reconstruction(
    score: ScoreFn,
    observed: Tensor,
    mask: Tensor,
    scale: float,
    sigma_data: float,
    normalized: bool,
    x: Tensor,
    sigma: Tensor,
) -> Tensor:
    m = check_mask(mask, x)
    y = _check_observed(observed, x)
    sigma = batch_sigma(sigma, x)
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        s = call_score(score, x_, sigma)
        s2 = append_dims(sigma.square(), x.ndim)
        denoised = x_ + s2 * s
        r2 = s2 * sigma_data**2 / (s2 + sigma_data**2)
        # Per row: ‖m ⊙ (y − D)‖² / r², twice the negative log-likelihood.
        misfit = (m * (y - denoised).square() / r2).flatten(1).sum(1)
        (grad,) = torch.autograd.grad(-0.5 * misfit.sum(), x_)
    if normalized:
        # ∇(−‖m ⊙ (y − D)‖/r) = ∇(−½‖·‖²/r²) / (‖·‖/r): divided after the gradient, not through
        # a square root, so a row whose residual is 0 gets 0 (not NaN).
        grad = grad / append_dims(misfit.sqrt().clamp_min(1e-12), x.ndim)
    return s.detach() + scale * grad.detach()


def reconstruction_guidance(
    score: ScoreFn,
    observed: Tensor,
    mask: Tensor,
    *,
    scale: float = 1.0,
    sigma_data: float = 1.0,
    normalized: bool = False,
) -> ScoreFn:
    """Observation-conditioned score by reconstruction guidance (approximate; needs autograd).

    ``s(x, σ) + scale·∇ₓ log N(y_o; D(x, σ)_o, r_σ²I)`` with the denoiser ``D = x + σ²s(x, σ)``
    (Tweedie) and ``r_σ² = σ²σ_d²/(σ² + σ_d²)``, the posterior variance of ``x₀`` given ``x_σ``
    for ``N(·, σ_d²I)`` data (ΠGDM, Song et al. 2023); the gradient runs through the score by
    autograd (Ho et al. 2022, eq. 7; DPS, Chung et al. 2023). It treats ``p(x₀ | x_σ)`` as
    isotropic Gaussian, so it is exact for isotropic Gaussian data only. ``observed`` and
    ``mask`` must have the shape of the ``x`` the sampler will pass. Use with :func:`inpaint`.

    ``normalized=True`` takes the gradient of the residual's norm instead of half its square,
    ``s + scale·∇ₓ(−‖m ⊙ (y − D)‖/r_σ)``: the Gaussian term divided, row by row, by
    ``‖m ⊙ (y − D)‖/r_σ`` — DPS's step ``ζ/‖y − A(x̂₀)‖`` (Chung et al. 2023, Alg. 1). Its size no
    longer grows with the misfit, which keeps it stable where a network's denoiser has a large
    Jacobian (on the MNIST subset the plain form runs away to pixels of ±3000 at scale 0.1;
    ``benchmarks/RESULTS_guidance.md``). It is a heuristic: exact for no law.
    """
    if not callable(score):
        raise TypeError(f"score must be callable as score(x, sigma); got {type(score).__name__}")
    if not isinstance(observed, Tensor):
        raise TypeError("observed must be a tensor of x's shape")
    check_mask(mask, observed)
    scale = check_positive(scale, "scale", strict=False)
    sigma_data = check_positive(sigma_data, "sigma_data")
    return functools.partial(
        _reconstruction, score, observed.detach(), mask, scale, sigma_data, bool(normalized)
    )
