"""Probability-flow ODE samplers, in SDE time and in the EDM σ-parametrisation.

- :func:`probability_flow` integrates ``dx/dt = f(x, t) − ½g(t)²∇log p_t(x)`` (Song et al. 2021,
  eq. 13) of any :class:`scorelab.sde.SDE` from ``T`` to ``t_end``: Euler, Heun, DPM-Solver++(2M)
  on a uniform time grid, or an adaptive ``torchdiffeq`` solver (``dopri5``, …).
- :func:`edm_euler`, :func:`edm_heun`, :func:`dpmpp_2m`, :func:`dpmpp_3m`, :func:`edm_stochastic`
  and :func:`dpmpp_2m_sde` work directly on a ``score(x, sigma)`` and a descending σ ladder in
  the VE convention ``x = x₀ + σz`` (Karras et al. 2022), where the ODE reads
  ``dx/dσ = −σ·score(x, σ) = (x − D(x, σ))/σ`` with the denoiser ``D(x, σ) = x + σ²·score(x, σ)``.
  A ``0`` is appended to ``sigmas`` internally: the last step goes to σ = 0 and returns the
  denoiser's output (``denoise=False`` stops at ``sigmas[-1]`` instead).
- :func:`moment_matched_prior` draws the starting point from ``N(mean, cov + σ_max²I)``.

Every sampler runs under ``torch.no_grad()`` (the score is evaluated without autograd) and
returns a :class:`~scorelab.samplers.result.SampleResult`. The deterministic ones accept a
``generator`` only so that every sampler has the same signature; it is not used.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchdiffeq import odeint

from scorelab.samplers.result import (
    Callback,
    SampleResult,
    StepMonitor,
    denoiser,
    start_ladder,
    validate_start,
)
from scorelab.samplers.reverse_sde import time_grid, tweedie_denoise
from scorelab.sde import SDE
from scorelab.utils import (
    ScoreFn,
    check_finite,
    check_generator,
    check_int,
    check_noise_level,
    check_positive,
)

#: Adaptive solvers of ``torchdiffeq`` accepted by :func:`probability_flow` (``rtol``/``atol``).
ADAPTIVE_METHODS = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
#: Fixed-grid methods implemented here.
GRID_METHODS = ("euler", "heun", "dpmpp-2m")


# ---------------------------------------------------------------------------------------------
# Probability flow in SDE time
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def probability_flow(
    score: ScoreFn,
    x: Tensor,
    sde: SDE,
    *,
    method: str = "heun",
    n_steps: int = 100,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    t_end: float | None = None,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Solve the probability-flow ODE (Song et al. 2021, eq. 13) from ``sde.T`` to ``t_end``.

    ``x`` ``(B, *D)`` is a prior draw at ``T``. Methods:

    - ``"euler"`` / ``"heun"``: explicit Euler / Heun (trapezoidal predictor–corrector, Karras
      et al. 2022 Alg. 1) on the uniform grid of ``n_steps`` steps; ``n_evals`` = ``n_steps`` /
      ``2·n_steps``.
    - ``"dpmpp-2m"``: DPM-Solver++(2M) (Lu et al. 2022) on the same time grid, run on the VE
      process ``x/α_t`` at the noise levels ``σ̃_t`` (exact for every SDE here, which are scaled VE
      processes); ``n_evals = n_steps``.
    - an adaptive ``torchdiffeq`` method (``"dopri5"``, …; :data:`ADAPTIVE_METHODS`), integrating
      backwards with a decreasing time grid at tolerances ``rtol``/``atol``; ``n_evals`` counts
      the solver's calls and ``n_steps`` only sets how many evenly spaced states are saved in
      the trajectory (``n_steps + 1``); ``callback`` is called at every evaluation of the ODE's
      right-hand side (with ``"velocity"``), accepted or not.

    ``t_end`` defaults to ``sde.eps``; with ``denoise`` a final Tweedie step returns
    ``E[x₀ | x_{t_end}]`` (one more evaluation).
    """
    x = validate_start(x, generator=generator)
    grid = time_grid(sde, n_steps, t_end)
    kw = {"keep_trajectory": keep_trajectory, "progress": progress, "callback": callback}
    if method in ADAPTIVE_METHODS:
        rtol, atol = check_positive(rtol, "rtol"), check_positive(atol, "atol")
        return _pf_adaptive(score, x, sde, grid, method, rtol, atol, denoise, **kw)
    if method == "dpmpp-2m":
        return _pf_dpmpp_2m(score, x, sde, grid, denoise, **kw)
    if method not in GRID_METHODS:
        choices = ", ".join(GRID_METHODS + ADAPTIVE_METHODS)
        raise ValueError(f"method must be one of {choices}; got {method!r}")

    n = len(grid) - 1
    monitor = StepMonitor(
        f"probability_flow[{method}]",
        x,
        n + int(denoise),
        hint=f"the time step is too coarse: try n_steps >= {2 * n} or method='dopri5'",
        **kw,
    )

    def velocity(x: Tensor, t: float) -> Tensor:
        return sde.reverse_drift(x, t, score, probability_flow=True)

    n_evals = 0
    for i in range(n):
        t, t_next = grid[i], grid[i + 1]
        dt = t_next - t
        v = velocity(x, t)
        x_next = x + v * dt
        n_evals += 1
        if method == "heun":
            monitor.guard(x_next, f"step {i} (Euler predictor, t={t_next:.4g})")
            # Trapezoidal correction with the slope at the Euler endpoint.
            x_next = x + 0.5 * (v + velocity(x_next, t_next)) * dt
            n_evals += 1
        x = x_next
        monitor.step(x, f"step {i} (t={t_next:.4g})", t=t_next)
    if denoise:
        x = tweedie_denoise(score, sde, x, grid[-1])
        n_evals += 1
        monitor.step(x, "the final denoising step", t=0.0)
    return monitor.finish(x, n_evals=n_evals)


def _pf_dpmpp_2m(
    score: ScoreFn,
    x: Tensor,
    sde: SDE,
    grid: list[float],
    denoise: bool,
    *,
    keep_trajectory: bool,
    progress: bool,
    callback: Callback | None,
) -> SampleResult:
    """Probability flow by DPM-Solver++(2M) on the VE process ``y = x/α_t`` at levels ``σ̃_t``.

    Every SDE here is a scaled VE process, so this is exact up to the solver's own error; states
    are mapped back by ``x_t = α_t·y`` (the denoised output is already ``x₀``).
    """
    alphas = [float(sde.alpha(t)) for t in grid] + [1.0]  # the last entry: after denoising
    times = [*grid[1:], 0.0]

    def back(info: dict) -> None:  # report x_t and t to the caller, not y and σ̃
        i = info["i"]
        callback({**info, "x": alphas[i + 1] * info["x"], "t": times[i]})  # type: ignore[misc]

    sigmas = [float(sde.noise_level(t)) for t in grid]
    res = dpmpp_2m(
        score,
        x / alphas[0],
        sigmas,
        denoise=denoise,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=None if callback is None else back,
    )
    scale = torch.tensor(alphas[: len(grid)] + ([1.0] if denoise else []), dtype=x.dtype)
    traj = None
    if res.trajectory is not None:
        traj = res.trajectory * scale.to(x.device).reshape(-1, *([1] * x.ndim))
    samples = res.samples if denoise else alphas[len(grid) - 1] * res.samples
    return SampleResult(samples=samples, trajectory=traj, n_evals=res.n_evals)


def _pf_adaptive(
    score: ScoreFn,
    x: Tensor,
    sde: SDE,
    grid: list[float],
    method: str,
    rtol: float,
    atol: float,
    denoise: bool,
    *,
    keep_trajectory: bool,
    progress: bool,
    callback: Callback | None,
) -> SampleResult:
    """Probability flow with an adaptive ``torchdiffeq`` solver; counts the function calls."""
    n_calls = 0

    def velocity(t: Tensor, y: Tensor) -> Tensor:
        nonlocal n_calls
        n_calls += 1
        v = sde.reverse_drift(y, t, score, probability_flow=True)
        monitor.guard(v, f"evaluation {n_calls} (t={float(t):.4g}, non-finite velocity)")
        if callback is not None:
            callback({"i": n_calls - 1, "x": y, "t": float(t), "velocity": v})
        return v

    times = grid if keep_trajectory else [grid[0], grid[-1]]
    t = torch.tensor(times, dtype=x.dtype, device=x.device)
    monitor = StepMonitor(
        f"probability_flow[{method}]",
        x,
        1 + int(denoise),
        progress=progress,
        hint=f"the solver failed: try tighter tolerances (rtol={rtol / 10:g}) or float64",
    )
    # step_t makes the solver land exactly on t_end: by default torchdiffeq steps past the last
    # output time and interpolates back, evaluating the score at t < t_end (even t < 0).
    options = {"step_t": t[-1:]}
    path = odeint(velocity, x, t, rtol=rtol, atol=atol, method=method, options=options)
    x = path[-1]
    monitor.step(x, f"the ODE solve (t={grid[-1]:.4g})")
    saved = list(path)
    if denoise:
        x = tweedie_denoise(score, sde, x, grid[-1])
        n_calls += 1
        saved.append(x)
        monitor.step(x, "the final denoising step")
    res = monitor.finish(x, n_evals=n_calls)
    res.trajectory = torch.stack(saved) if keep_trajectory else None
    return res


# ---------------------------------------------------------------------------------------------
# EDM σ-parametrisation: deterministic
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def edm_euler(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Euler steps of the VE probability-flow ODE ``dx/dσ = (x − D(x, σ))/σ`` (Karras et al. 2022).

    ``sigmas`` ``(M,)`` descending; ``x`` ``(B, *D)`` ~ N(0, σ_max²I) or
    :func:`moment_matched_prior`. ``n_evals = M`` (the last step, to σ = 0, returns ``D``).
    """
    x, levels, monitor = start_ladder(
        "edm_euler",
        x,
        sigmas,
        denoise=denoise,
        generator=generator,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
    )
    n = len(levels) - 1
    for i in range(n):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = denoiser(score, x, sigma)
        # Euler step along d = (x − D)/σ.
        x = x + (sigma_next - sigma) * (x - denoised) / sigma
        monitor.step(x, f"step {i} (sigma={sigma:.4g})", sigma=sigma, denoised=denoised)
    return monitor.finish(x, n_evals=n)


@torch.no_grad()
def edm_heun(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Heun's 2nd-order method on the VE probability-flow ODE (Karras et al. 2022, Alg. 1).

    Each step to a nonzero σ_{i+1} uses two evaluations; the final step to σ = 0 is a plain Euler
    step (one evaluation), so ``n_evals = 2M − 1`` for ``M`` levels with ``denoise``
    (``2M − 2`` without).
    """
    x, levels, monitor = start_ladder(
        "edm_heun",
        x,
        sigmas,
        denoise=denoise,
        generator=generator,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
        evals_per_level=2,
    )
    n = len(levels) - 1
    n_evals = 0
    for i in range(n):
        x, n_used, denoised = _heun_step(score, x, levels[i], levels[i + 1], monitor)
        n_evals += n_used
        monitor.step(x, f"step {i} (sigma={levels[i]:.4g})", sigma=levels[i], denoised=denoised)
    return monitor.finish(x, n_evals=n_evals)


def _heun_step(
    score: ScoreFn, x: Tensor, sigma: float, sigma_next: float, monitor: StepMonitor
) -> tuple[Tensor, int, Tensor]:
    """One Karras Alg. 1 step σ → σ_next: Euler, then the trapezoidal correction if σ_next > 0."""
    denoised = denoiser(score, x, sigma)
    d = (x - denoised) / sigma
    x_next = x + (sigma_next - sigma) * d
    if sigma_next == 0:
        return x_next, 1, denoised
    monitor.guard(x_next, f"the Euler predictor at sigma={sigma_next:.4g}")
    # Apply the 2nd-order correction.
    d_next = (x_next - denoiser(score, x_next, sigma_next)) / sigma_next
    return x + (sigma_next - sigma) * 0.5 * (d + d_next), 2, denoised


@torch.no_grad()
def dpmpp_2m(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2), data-prediction multistep, VE form.

    In ``λ = −log σ`` the ODE is ``dx/dλ = D − x``, so over ``h = λ_{i+1} − λ_i``
    ``x_{i+1} = (σ_{i+1}/σ_i)·x_i + ∫₀ʰ e^{−(h−u)} D(λ_i + u) du``, approximated by
    ``(1 − e^{−h})·D̂`` with ``D̂ = (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1}``, ``r = h_{i−1}/h`` (the
    paper's second-order multistep combination). The first step and the final step to σ = 0
    are first order (the last returns ``D``). ``n_evals = M``.
    """
    return _dpmpp_multistep(
        score, x, sigmas, 2, denoise, keep_trajectory, progress, callback, generator
    )


@torch.no_grad()
def dpmpp_3m(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """DPM-Solver++(3M) (Lu et al. 2022, sec. 4 / app. B), third-order data-prediction multistep.

    As :func:`dpmpp_2m` but the denoiser is extrapolated with first and second divided differences
    of the last three outputs in ``λ = −log σ`` (the exponential-integrator weights ``φ₂, φ₃``).
    Lower orders start the chain; the last step to σ = 0 is first order. ``n_evals = M``.
    """
    return _dpmpp_multistep(
        score, x, sigmas, 3, denoise, keep_trajectory, progress, callback, generator
    )


def _dpmpp_multistep(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    order: int,
    denoise: bool,
    keep_trajectory: bool,
    progress: bool,
    callback: Callback | None,
    generator: torch.Generator | None = None,
) -> SampleResult:
    """Shared loop of DPM-Solver++(2M/3M) in ``λ = −log σ`` (VE, α = 1); ``generator`` is only
    validated (the solver is deterministic)."""
    x, levels, monitor = start_ladder(
        f"dpmpp_{order}m",
        x,
        sigmas,
        denoise=denoise,
        generator=generator,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
    )
    n = len(levels) - 1
    history: list[tuple[float, Tensor]] = []  # (λ, D) of previous steps, most recent last
    for i in range(n):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = denoiser(score, x, sigma)
        if sigma_next == 0:
            # Final step to σ = 0: the solution is the denoiser's output.
            x = denoised
        else:
            lam, lam_next = -math.log(sigma), -math.log(sigma_next)
            h = lam_next - lam
            phi1 = -math.expm1(-h)  # 1 − e^{−h}
            x = (sigma_next / sigma) * x + phi1 * denoised
            if order >= 2 and history:
                lam1, d1 = history[-1]
                slope = (denoised - d1) / (lam - lam1)  # backward divided difference in λ
                third = order >= 3 and len(history) >= 2
                # Weight of the slope: h − φ₁ = ∫₀ʰ e^{−(h−u)} u du integrates the quadratic
                # interpolant exactly (3M); a 2nd-order step uses the paper's φ₁·h/2, which is
                # (1 + 1/(2r))·D_i − 1/(2r)·D_{i−1} in Lu et al.'s form and measured ~2x more
                # accurate at 10 steps than the exact-integral ("taylor") weight h − φ₁.
                x = x + ((h - phi1) if third else 0.5 * phi1 * h) * slope
                if third:
                    lam2, d2 = history[-2]
                    slope_prev = (d1 - d2) / (lam1 - lam2)
                    curv = (slope - slope_prev) / (lam - lam2)
                    x = x + _third_order_term(h, lam, lam1, phi1) * curv
        history = [*history[-2:], (-math.log(sigma), denoised)]
        monitor.step(x, f"step {i} (sigma={sigma:.4g})", sigma=sigma, denoised=denoised)
    return monitor.finish(x, n_evals=n)


def _third_order_term(h: float, lam: float, lam1: float, phi1: float) -> float:
    """Weight of the second divided difference: ``∫₀ʰ e^{−(h−u)} u (u + λ − λ₁) du``."""
    # Newton form D(λ+u) ≈ D + slope·u + curv·u·(u + λ − λ₁); integrals in closed form:
    # ∫₀ʰ e^{−(h−u)} u du = h − φ₁,  ∫₀ʰ e^{−(h−u)} u² du = h² − 2h + 2φ₁.
    i1 = h - phi1
    i2 = h * h - 2.0 * h + 2.0 * phi1
    return i2 + (lam - lam1) * i1


# ---------------------------------------------------------------------------------------------
# EDM σ-parametrisation: stochastic
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def edm_stochastic(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Karras et al. (2022) Alg. 2: Heun steps with stochastic "churn" before each step.

    At each level with ``s_tmin <= σ_i <= s_tmax`` the noise is first raised to
    ``σ̂ = σ_i(1 + γ)``, ``γ = min(s_churn/N, √2 − 1)`` (``N`` steps), by adding
    ``√(σ̂² − σ_i²)·s_noise·z``; then one Heun step goes from ``σ̂`` to ``σ_{i+1}`` (Euler for the
    last step to 0). ``s_churn = 0`` is :func:`edm_heun`. ``n_evals = 2M − 1`` with ``denoise``.
    """
    s_churn = check_positive(s_churn, "s_churn", strict=False)
    s_noise = check_positive(s_noise, "s_noise", strict=False)
    s_tmin = check_positive(s_tmin, "s_tmin", strict=False)
    if not s_tmax >= s_tmin:
        raise ValueError(f"s_tmax must be >= s_tmin; got s_tmax={s_tmax}, s_tmin={s_tmin}")
    x, levels, monitor = start_ladder(
        "edm_stochastic",
        x,
        sigmas,
        denoise=denoise,
        generator=generator,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
        evals_per_level=2,
    )
    n = len(levels) - 1
    gamma_max = min(s_churn / n, math.sqrt(2.0) - 1.0)
    n_evals = 0
    for i in range(n):
        sigma, sigma_next = levels[i], levels[i + 1]
        gamma = gamma_max if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * (1.0 + gamma)
        if gamma > 0:
            # Increase the noise level temporarily: x̂ ~ p_σ̂ if x ~ p_σ.
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            x = x + math.sqrt(sigma_hat**2 - sigma**2) * s_noise * z
        x, n_used, denoised = _heun_step(score, x, sigma_hat, sigma_next, monitor)
        n_evals += n_used
        monitor.step(x, f"step {i} (sigma={sigma:.4g})", sigma=sigma_hat, denoised=denoised)
    return monitor.finish(x, n_evals=n_evals)


@torch.no_grad()
def dpmpp_2m_sde(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    eta: float = 1.0,
    s_noise: float = 1.0,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """DPM-Solver++(2M) SDE: the stochastic variant of Lu et al. (2022)'s 2M, VE data prediction.

    With ``λ = −log σ``, ``h = λ_{i+1} − λ_i`` and ``k = 1 + η`` (``η = 1``: the reverse SDE;
    ``η = 0``: exactly :func:`dpmpp_2m`), ``x_{i+1} = (σ_{i+1}/σ_i)e^{−ηh}·x_i + φ·D_i +
    (φ·h/2)·slope + σ_{i+1}√(1 − e^{−2ηh})·s_noise·z`` with ``φ = 1 − e^{−kh}`` and ``slope``
    the divided difference of the last two denoiser outputs in λ (the second-order "midpoint"
    correction). The first step is first order; the last step to σ = 0 returns ``D``.
    ``n_evals = M``.
    """
    eta = check_positive(eta, "eta", strict=False)
    s_noise = check_positive(s_noise, "s_noise", strict=False)
    x, levels, monitor = start_ladder(
        "dpmpp_2m_sde",
        x,
        sigmas,
        denoise=denoise,
        generator=generator,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
    )
    n = len(levels) - 1
    previous: tuple[float, Tensor] | None = None
    for i in range(n):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = denoiser(score, x, sigma)
        lam = -math.log(sigma)
        if sigma_next == 0:
            x = denoised
        else:
            h = -math.log(sigma_next) - lam
            k = 1.0 + eta
            phi = -math.expm1(-k * h)  # 1 − e^{−kh}
            x = (sigma_next / sigma) * math.exp(-eta * h) * x + phi * denoised
            if previous is not None:
                lam_prev, d_prev = previous
                # Second-order (midpoint) correction, as in the ODE case: (φ·h/2)·slope.
                x = x + 0.5 * phi * h * (denoised - d_prev) / (lam - lam_prev)
            if eta > 0 and s_noise > 0:
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                x = x + sigma_next * math.sqrt(-math.expm1(-2.0 * eta * h)) * s_noise * z
        previous = (lam, denoised)
        monitor.step(x, f"step {i} (sigma={sigma:.4g})", sigma=sigma, denoised=denoised)
    return monitor.finish(x, n_evals=n)


# ---------------------------------------------------------------------------------------------
# Starting points
# ---------------------------------------------------------------------------------------------


def moment_matched_prior(
    mean: Tensor,
    cov: Tensor,
    sigma_max: float,
    n: int,
    *,
    generator: torch.Generator | None = None,
    quasi_random: bool = False,
) -> Tensor:
    """Draw ``n`` starting points from ``N(mean, cov + σ_max²I)``, shape ``(n, *mean.shape)``.

    ``p_σmax = p ∗ N(0, σ_max²I)`` has exactly this mean and covariance, and is exactly this
    Gaussian when the data are Gaussian; for any data it is much closer to ``p_σmax`` than the
    usual ``N(0, σ_max²I)`` (whose mean and covariance are off by ``mean`` and ``cov``, errors the
    deterministic samplers carry to the end). ``mean`` has the data shape ``(*D)`` and ``cov`` is
    ``(d, d)`` with ``d = mean.numel()``; estimate them from data, e.g. ``data.mean(0)`` and
    ``torch.cov(data.flatten(1).T)``. The draw uses a Cholesky factor computed in float64 and is
    returned in ``mean``'s dtype on its device.

    ``quasi_random=True`` replaces the i.i.d. normal draws by a scrambled Sobol sequence mapped
    through the normal inverse CDF (randomised quasi-Monte Carlo; ``torch.quasirandom``, seeded
    from ``generator``). The points are then *not independent*: they cover the law more evenly,
    so the empirical distribution of the final samples is closer to the target than that of
    ``n`` independent draws, and distances to a true draw fall below the i.i.d. noise floor.
    Report such numbers as QMC ones. Best with ``n`` a power of two and modest dimension.
    """
    if not isinstance(mean, Tensor) or not isinstance(cov, Tensor):
        raise TypeError("mean and cov must be tensors")
    check_finite(mean.reshape(1, -1), "mean", hint="use finite estimates")
    check_finite(cov.reshape(1, -1), "cov", hint="use finite estimates")
    d = mean.numel()
    if cov.shape != (d, d):
        raise ValueError(
            f"cov must have shape (d, d) = ({d}, {d}) for mean.numel() = {d}; "
            f"got {tuple(cov.shape)}"
        )
    sigma_max = check_noise_level(sigma_max, "sigma_max")
    n = check_int(n, "n")
    check_generator(generator, mean.device)
    cov64 = cov.detach().to(torch.float64)
    cov64 = 0.5 * (cov64 + cov64.T) + sigma_max**2 * torch.eye(
        d, dtype=torch.float64, device=cov.device
    )
    chol, info = torch.linalg.cholesky_ex(cov64)
    if int(info) != 0:
        raise ValueError(
            "cov + sigma_max² I is not positive definite: cov must be a covariance "
            "matrix (symmetric, positive semi-definite)"
        )
    if quasi_random:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=mean.device))
        u = torch.quasirandom.SobolEngine(d, scramble=True, seed=seed).draw(n, dtype=torch.float64)
        u = u.clamp(1e-12, 1.0 - 1e-12).to(mean.device)
        z = math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)
    else:
        z = torch.randn((n, d), generator=generator, dtype=torch.float64, device=mean.device)
    x = mean.detach().to(torch.float64).reshape(1, d) + z @ chol.T
    dtype = mean.dtype if mean.is_floating_point() else torch.get_default_dtype()
    return x.reshape(n, *mean.shape).to(dtype)
