"""Langevin samplers: unadjusted Langevin, deterministic score ascent, annealed Langevin.

All three run under ``torch.no_grad()``: the score is evaluated without autograd (a network's
parameters receive no gradients) and the returned tensors carry no graph.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from torch import Tensor

from scorelab.samplers.result import (
    Callback,
    SampleResult,
    StepMonitor,
    call_score,
    full_like_batch,
    validate_sigmas,
    validate_start,
)
from scorelab.utils import CleanScoreFn, ScoreFn, check_int, check_positive

#: Largest stable-looking ratio ``step / sigma²`` of annealed Langevin (see ``annealed_langevin``).
MAX_STEP_OVER_SIGMA2 = 2.0


@torch.no_grad()
def langevin(
    score: CleanScoreFn,
    x: Tensor,
    *,
    step_size: float,
    n_steps: int,
    parametrization: Literal["tau", "eta"] = "tau",
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Unadjusted Langevin algorithm (ULA; Roberts & Tweedie 1996) from a score of ``x`` alone.

    Two spellings of the same Euler–Maruyama step of ``dX = ∇log p(X) dt + √2 dW``:

    - ``parametrization="tau"`` (seed 003): ``x ← x + τ·s(x) + √(2τ)·z`` with ``τ = step_size``;
    - ``parametrization="eta"`` (seeds 000/001): ``x ← x + η/2·s(x) + √η·z`` with ``η = step_size``
      (the same chain as ``tau`` with ``τ = η/2``).

    ``x`` is the starting point ``(B, *D)``; ``score(x) -> (B, *D)``. There is no Metropolis
    correction, so the chain's stationary law is biased by ``O(τ)``: for a Gaussian target with
    precision ``P`` it is Gaussian with covariance ``2τ·(I − (I − τP)²)⁻¹`` (tau form), and the
    chain diverges when ``τ ≥ 2/λ_max(P)``. Returns a :class:`SampleResult` with
    ``n_evals = n_steps``; raises :class:`DivergenceError` on non-finite samples.
    """
    x = validate_start(x, generator=generator)
    step_size = check_positive(step_size, "step_size")
    n_steps = check_int(n_steps, "n_steps")
    if parametrization == "tau":
        drift_coef, noise_coef = step_size, math.sqrt(2.0 * step_size)
    elif parametrization == "eta":
        drift_coef, noise_coef = step_size / 2.0, math.sqrt(step_size)
    else:
        raise ValueError(f"parametrization must be 'tau' or 'eta'; got {parametrization!r}")

    hint = (
        f"step_size={step_size:g} is too large for this score (ULA is unstable once the step "
        f"exceeds 2/curvature of -log p): try step_size <= {step_size / 10:.2g}"
    )
    monitor = StepMonitor(
        "langevin",
        x,
        n_steps,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
        hint=hint,
    )
    for i in range(n_steps):
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = x + drift_coef * call_score(score, x) + noise_coef * z
        monitor.step(x, f"step {i}", step_size=step_size)
    return monitor.finish(x, n_evals=n_steps)


@torch.no_grad()
def score_ascent(
    score: CleanScoreFn,
    x: Tensor,
    *,
    step_size: float,
    n_steps: int,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Deterministic score ascent ``x ← x + ε·s(x)`` (seed 001, Task 6): gradient ascent on log p.

    Not a sampler of ``p``: without noise every start climbs to a local mode. It is the
    noise-free limit of Langevin and shows where the score field points; with
    ``keep_trajectory=True`` the result's ``trajectory`` ``(n_steps + 1, B, *D)`` is the trail.
    Deterministic: ``generator`` is accepted for a uniform signature and unused.
    ``n_evals = n_steps``.
    """
    x = validate_start(x, generator=generator)
    step_size = check_positive(step_size, "step_size")
    n_steps = check_int(n_steps, "n_steps")
    monitor = StepMonitor(
        "score_ascent",
        x,
        n_steps,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
        hint=f"step_size={step_size:g} overshoots: try step_size <= {step_size / 10:.2g}",
    )
    for i in range(n_steps):
        x = x + step_size * call_score(score, x)
        monitor.step(x, f"step {i}", step_size=step_size)
    return monitor.finish(x, n_evals=n_steps)


def annealed_step_sizes(
    sigmas: list[float], eps: float, step_rule: Literal["paper", "seed"]
) -> list[float]:
    """Per-level Langevin step sizes of annealed Langevin, proportional to ``σ_i²``.

    ``"paper"`` (Song & Ermon 2019, Alg. 1): ``α_i = ε·σ_i²/σ_L²`` with ``σ_L`` the smallest level,
    so the step at the last level is ``ε``. ``"seed"`` (seed 000): ``η_i = ε·σ_i²/σ_max²``, so the
    step at the first level is ``ε``.
    """
    if step_rule == "paper":
        ref = min(sigmas)
    elif step_rule == "seed":
        ref = max(sigmas)
    else:
        raise ValueError(f"step_rule must be 'paper' or 'seed'; got {step_rule!r}")
    return [eps * s**2 / ref**2 for s in sigmas]


def _largest_stable_eps(sigmas: list[float], step_rule: str) -> float:
    """The ``eps`` at which ``step/σ²`` reaches :data:`MAX_STEP_OVER_SIGMA2` at every level."""
    ref = min(sigmas) if step_rule == "paper" else max(sigmas)
    return MAX_STEP_OVER_SIGMA2 * ref**2


@torch.no_grad()
def annealed_langevin(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    n_steps_each: int,
    eps: float,
    step_rule: Literal["paper", "seed"] = "paper",
    final_denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1) with a noise-conditional score.

    For each level ``σ_i`` of the descending ladder ``sigmas`` (``(L,)``), ``n_steps_each`` steps
    ``x ← x + α_i/2·score(x, σ_i) + √α_i·z`` with ``α_i`` from :func:`annealed_step_sizes`
    (``step_rule``). With ``final_denoise`` a last Tweedie step ``x ← x + σ_L²·score(x, σ_L)``
    (the posterior mean E[x₀ | x]; Song & Ermon 2020, Jolicoeur-Martineau et al. 2021) removes the
    remaining ``σ_L`` noise; it is counted in ``n_evals = L·n_steps_each (+1)``.

    Both rules keep ``α_i/σ_i²`` constant across levels. Since the score at level ``σ`` can curve
    as sharply as ``1/σ²``, the chain is unstable or badly biased once ``α_i > 2·σ_i²`` (seen: a
    diverged chain at ``ε = 1e-3``, ``σ_L = 0.01`` under the paper rule); a ``UserWarning`` is
    issued up front in that case and :class:`DivergenceError` (naming the ``eps`` to try) if the
    samples become non-finite. Accuracy wants ``α_i ≪ σ_i²`` — for a Gaussian of variance ``σ²``
    ULA inflates the variance by ``1/(1 − α/(4σ²))``.
    """
    x = validate_start(x, generator=generator)
    levels = validate_sigmas(sigmas)
    n_steps_each = check_int(n_steps_each, "n_steps_each")
    eps = check_positive(eps, "eps")
    steps = annealed_step_sizes(levels, eps, step_rule)

    eps_max = _largest_stable_eps(levels, step_rule)
    sigma_min = levels[-1]
    advice = f"use eps <= {eps_max:.2g} (step <= {MAX_STEP_OVER_SIGMA2:g}·σ² at every level)"
    if eps > eps_max:
        warnings.warn(
            f"annealed_langevin: eps={eps:g} gives a step {steps[-1]:.3g} at sigma_min="
            f"{sigma_min:g}, above {MAX_STEP_OVER_SIGMA2:g}·sigma_min² = "
            f"{MAX_STEP_OVER_SIGMA2 * sigma_min**2:.3g}; Langevin will likely diverge or be "
            f"badly biased: {advice}",
            UserWarning,
            stacklevel=3,
        )
    to_try = eps_max if eps > eps_max else eps / 10
    hint = (
        f"step size eps={eps:g} is too large for sigma_min={sigma_min:g} "
        f"(step_rule={step_rule!r}): use eps <= {to_try:.2g}"
    )
    n_total = len(levels) * n_steps_each + int(final_denoise)
    monitor = StepMonitor(
        "annealed_langevin",
        x,
        n_total,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
        hint=hint,
    )
    for level, (sigma, alpha) in enumerate(zip(levels, steps, strict=True)):
        sigma_b = full_like_batch(sigma, x)
        noise_coef = math.sqrt(alpha)
        for k in range(n_steps_each):
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + (alpha / 2.0) * call_score(score, x, sigma_b) + noise_coef * z
            monitor.step(x, f"level {level} step {k}", sigma=sigma, step_size=alpha)
    n_evals = len(levels) * n_steps_each
    if final_denoise:
        # Tweedie: E[x0 | x] = x + σ_L² ∇log p_σL(x).
        x = x + sigma_min**2 * call_score(score, x, full_like_batch(sigma_min, x))
        n_evals += 1
        monitor.step(x, "the final denoising step", sigma=sigma_min, step_size=0.0)
    return monitor.finish(x, n_evals=n_evals)
