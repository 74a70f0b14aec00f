"""Reverse-time SDE samplers: Euler–Maruyama and predictor–corrector (Song et al. 2021).

Both integrate ``dx = [f(x, t) − g(t)² ∇log p_t(x)] dt + g(t) dw̄`` from ``t = T`` down to a small
``t_end > 0`` on a uniform time grid, with ``∇log p_t`` obtained from a VE-convention
``score(x, sigma)`` by :func:`scorelab.sde.score_at_time`, and finish with a Tweedie denoising
step. They run under ``torch.no_grad()``: the score is evaluated without autograd.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

from scorelab.samplers.result import Callback, SampleResult, StepMonitor, validate_start
from scorelab.sde import SDE, score_at_time
from scorelab.utils import ScoreFn, append_dims, check_int, check_positive, sum_except_batch


def time_grid(sde: SDE, n_steps: int, t_end: float | None) -> list[float]:
    """Uniform time grid ``T = t_0 > … > t_n = t_end`` as floats (``t_end`` default ``sde.eps``)."""
    if not isinstance(sde, SDE):
        raise TypeError(
            f"sde must be a scorelab.sde.SDE (VESDE, VPSDE, …); got {type(sde).__name__}"
        )
    n_steps = check_int(n_steps, "n_steps")
    t_end = sde.eps if t_end is None else check_positive(t_end, "t_end")
    if t_end >= sde.T:
        raise ValueError(f"t_end must be < sde.T = {sde.T}; got t_end={t_end}")
    return torch.linspace(sde.T, t_end, n_steps + 1, dtype=torch.float64).tolist()


def tweedie_denoise(score: ScoreFn, sde: SDE, x: Tensor, t: float) -> Tensor:
    """Posterior mean ``E[x₀ | x_t] = (x + σ_t²∇log p_t(x)) / α_t`` (Tweedie), ``(B, *D)``.

    For ``x_t = α_t x₀ + σ_t z`` (one score evaluation); the usual last step of reverse samplers.
    """
    alpha, sigma = float(sde.alpha(t)), float(sde.sigma(t))
    return (x + sigma**2 * score_at_time(score, sde, x, t)) / alpha


def _euler_maruyama_step(
    score: ScoreFn,
    sde: SDE,
    x: Tensor,
    t: float,
    t_next: float,
    generator: torch.Generator | None,
) -> Tensor:
    """One Euler–Maruyama step of the reverse SDE from ``t`` to ``t_next < t`` (one evaluation)."""
    dt = t_next - t  # negative: time runs backwards
    drift = sde.reverse_drift(x, t, score)
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x + drift * dt + float(sde.diffusion(t)) * math.sqrt(-dt) * z


@torch.no_grad()
def reverse_sde(
    score: ScoreFn,
    x: Tensor,
    sde: SDE,
    *,
    n_steps: int,
    t_end: float | None = None,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Euler–Maruyama for the reverse-time SDE (Song et al. 2021, eq. 6; seed 004).

    ``x ← x − [f(x, t) − g(t)²∇log p_t(x)]·Δt + g(t)·√Δt·z`` on the uniform grid from ``sde.T``
    to ``t_end`` (default ``sde.eps``) with ``Δt = (T − t_end)/n_steps`` (``≈ 1/n_steps`` for
    ``T = 1`` as in seed 004). ``x`` ``(B, *D)`` should be a draw of the prior
    (``sde.prior_sample``). With ``denoise`` a final :func:`tweedie_denoise` at ``t_end`` returns
    ``E[x₀ | x_{t_end}]``. ``n_evals = n_steps (+1)``.
    """
    x = validate_start(x, generator=generator)
    grid = time_grid(sde, n_steps, t_end)
    n_steps = len(grid) - 1
    monitor = StepMonitor(
        "reverse_sde",
        x,
        n_steps + int(denoise),
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
        hint=f"the time step is too coarse: try n_steps >= {2 * n_steps}",
    )
    for i in range(n_steps):
        x = _euler_maruyama_step(score, sde, x, grid[i], grid[i + 1], generator)
        monitor.step(x, f"step {i} (t={grid[i + 1]:.4g})", t=grid[i + 1])
    if denoise:
        x = tweedie_denoise(score, sde, x, grid[-1])
        monitor.step(x, "the final denoising step", t=0.0)
    return monitor.finish(x, n_evals=n_steps + int(denoise))


def langevin_corrector_step(
    score: ScoreFn,
    sde: SDE,
    x: Tensor,
    t: float,
    snr: float,
    alpha_ratio: float,
    generator: torch.Generator | None,
    norm: Literal["batch", "example"] = "batch",
) -> Tensor:
    """One Langevin corrector step at time ``t`` (Song et al. 2021, Alg. 4/5), ``(B, *D)``.

    Step ``ε = 2·α·(snr·‖z‖/‖s‖)²``, then ``x ← x + ε·s + √(2ε)·z``; ``alpha_ratio`` is the DDPM
    ``α_i`` (1 for VE SDEs). Norms are over all non-batch dims; ``norm="batch"`` averages them
    over the batch first (as score_sde does), ``norm="example"`` uses each example's own ratio
    (the per-sample formula of the paper's algorithm). Per-example ratios concentrate in high
    dimension but are heavy-tailed in low dimension (an example near a mode has ``‖s‖ ≈ 0`` and
    gets a huge step): in 2-D they wreck the samples, hence the batch default. Examples whose
    score norm is exactly zero are left in place.
    """
    s = score_at_time(score, sde, x, t)
    z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    s_norm = sum_except_batch(s.square()).sqrt()
    z_norm = sum_except_batch(z.square()).sqrt()
    if norm == "batch":
        s_norm, z_norm = s_norm.mean().expand_as(s_norm), z_norm.mean().expand_as(z_norm)
    ratio = torch.where(s_norm > 0, snr * z_norm / s_norm.clamp_min(1e-300), 0.0)
    eps = append_dims(2.0 * alpha_ratio * ratio.square(), x.ndim)
    return x + eps * s + (2.0 * eps).sqrt() * z


@torch.no_grad()
def predictor_corrector(
    score: ScoreFn,
    x: Tensor,
    sde: SDE,
    *,
    n_steps: int,
    snr: float = 0.16,
    n_corrector: int = 1,
    norm: Literal["batch", "example"] = "batch",
    t_end: float | None = None,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Predictor–corrector sampling (Song et al. 2021, Alg. 2 (VE) and 3 (VP)).

    On the uniform grid ``T → t_end``: an Euler–Maruyama predictor step (as in
    :func:`reverse_sde`) to ``t_{i+1}``, then ``n_corrector`` Langevin corrector steps at
    ``t_{i+1}`` with the signal-to-noise rule of :func:`langevin_corrector_step`. The DDPM
    ``α_i`` is ``(α_{t_{i+1}}/α_{t_i})⁻²``, which is 1 for VE SDEs and ``≈ 1 − β(t)Δt`` for VP
    ones. ``snr = 0.16`` is the paper's value for VE on CIFAR-10; ``norm`` picks batch-averaged
    (default, robust in low dimension) or per-example gradient/noise norms. Ends with a Tweedie
    denoising step when ``denoise``. ``n_evals = n_steps·(1 + n_corrector) (+1)``.
    """
    x = validate_start(x, generator=generator)
    grid = time_grid(sde, n_steps, t_end)
    n_steps = len(grid) - 1
    snr = check_positive(snr, "snr")
    n_corrector = check_int(n_corrector, "n_corrector", minimum=0)
    if norm not in ("batch", "example"):
        raise ValueError(f"norm must be 'batch' or 'example'; got {norm!r}")
    monitor = StepMonitor(
        "predictor_corrector",
        x,
        n_steps + int(denoise),
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
        hint=f"try a smaller snr (< {snr:g}) or more steps (n_steps >= {2 * n_steps})",
    )
    for i in range(n_steps):
        t, t_next = grid[i], grid[i + 1]
        # Predictor: one Euler–Maruyama step of the reverse SDE.
        x = _euler_maruyama_step(score, sde, x, t, t_next, generator)
        monitor.guard(x, f"step {i} (predictor, t={t_next:.4g})")
        # Corrector: Langevin steps targeting p_{t_next}.
        alpha_ratio = (float(sde.alpha(t)) / float(sde.alpha(t_next))) ** 2
        for _ in range(n_corrector):
            x = langevin_corrector_step(score, sde, x, t_next, snr, alpha_ratio, generator, norm)
            monitor.guard(x, f"step {i} (corrector, t={t_next:.4g})")
        monitor.step(x, f"step {i} (t={t_next:.4g})", t=t_next)
    if denoise:
        x = tweedie_denoise(score, sde, x, grid[-1])
        monitor.step(x, "the final denoising step", t=0.0)
    return monitor.finish(x, n_evals=n_steps * (1 + n_corrector) + int(denoise))
