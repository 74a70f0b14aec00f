"""Few-step multistep samplers of the field on a descending σ ladder, VE convention.

All four work on a ``score(x, sigma)`` and a ladder ``σ_0 > … > σ_{M−1}`` with ``x = x₀ + σz``,
where the probability-flow ODE reads ``dx/dσ = (x − D(x, σ))/σ = ε(x, σ)`` with the denoiser
``D(x, σ) = x + σ²·score(x, σ)`` and ``ε = (x − D)/σ``; in ``λ = −log σ`` it is
``dx/dλ = D − x``. Each level costs one evaluation; a ``0`` is appended to the ladder (unless
``denoise=False``) and the step to σ = 0 returns ``D`` of the last level, so ``n_evals = M``.

- :func:`unipc` — UniPC (Zhao et al. 2023): the unified predictor UniP-p and the corrector
  UniC-p that re-uses the next level's evaluation, data prediction, ``B(h)`` of the paper.
- :func:`ipndm` — improved PNDM (Zhang & Chen 2022, DEIS paper): Adams–Bashforth on ``ε`` in σ
  with the fixed equal-step coefficients, order up to 4.
- :func:`deis` — tAB-DEIS (Zhang & Chen 2022): the exponential integrator with ``ε`` extrapolated
  by its Lagrange polynomial in time, integrated exactly over each (unequal) step.
- :func:`dpmpp_3m_sde` — DPM-Solver++(3M) SDE (Lu et al. 2022): the third-order multistep
  data-prediction solver of the reverse SDE (``η = 1``) or of the ODE (``η = 0``).

Deterministic samplers take a ``generator`` only so that every sampler has the same signature.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from scorelab.samplers.result import Callback, SampleResult, denoiser, start_ladder
from scorelab.utils import ScoreFn, check_int, check_positive

#: UniPC's choices of ``B(h)`` (Zhao et al. 2023, sec. 3.3): ``bh1``: ``B(h) = h``;
#: ``bh2``: ``B(h) = e^h − 1`` (both with ``h`` of the data-prediction form, here ``−h``).
UNIPC_VARIANTS = ("bh1", "bh2")

#: Adams–Bashforth coefficients for equal steps, newest slope first (iPNDM's pseudo-steps).
ADAMS_BASHFORTH = (
    (1.0,),
    (3.0 / 2.0, -1.0 / 2.0),
    (23.0 / 12.0, -16.0 / 12.0, 5.0 / 12.0),
    (55.0 / 24.0, -59.0 / 24.0, 37.0 / 24.0, -9.0 / 24.0),
)


def _ladder(name: str, x: Tensor, sigmas, denoise, generator, keep_trajectory, progress, callback):
    return start_ladder(
        name,
        x,
        sigmas,
        denoise=denoise,
        generator=generator,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
    )


# ---------------------------------------------------------------------------------------------
# UniPC
# ---------------------------------------------------------------------------------------------


def _phi_terms(hh: float, order: int) -> list[float]:
    """``[hh·φ_{k+1}(hh)·k!  for k = 1..order]`` with ``φ_1(t) = (e^t − 1)/t`` and
    ``φ_{k+1}(t) = (φ_k(t) − 1/k!)/t`` (Zhao et al. 2023, eq. 7 / app. ``g_k``)."""
    out = []
    phi = math.expm1(hh) / hh  # φ_1
    factorial = 1.0
    for k in range(1, order + 1):
        factorial *= k  # k!
        phi = (phi - 1.0 / factorial) / hh  # φ_{k+1}
        out.append(hh * phi * factorial)
    return out


def _unipc_weights(rks: list[float], hh: float, b_h: float) -> list[float]:
    """Weights ``a`` of the divided differences in UniP or UniC.

    With ``r_m`` the relative positions ``(λ_m − λ_s)/h`` of the outputs used (the new output
    at ``r = 1`` last, for UniC), the order conditions read ``Σ_m a_m r_m^{k−1} = g_k/B(h)``,
    ``g_k = k!·hh·φ_{k+1}(hh)``, ``k = 1..K`` with ``K`` = the number of differences. The
    paper's second-order choice ``a = 1/2`` is used when a single difference is available.
    """
    k = len(rks)
    if k == 1:
        return [0.5]
    g = np.array(_phi_terms(hh, k)) / b_h
    r = np.array(rks, dtype=np.float64)
    matrix = np.stack([r**j for j in range(k)])
    return np.linalg.solve(matrix, g).tolist()


@torch.no_grad()
def unipc(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    order: int = 3,
    variant: str = "bh1",
    corrector: bool = True,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """UniPC-p (Zhao et al. 2023, Alg. 1–3), data prediction, VE form, one evaluation per level.

    With ``λ = −log σ``, ``h = λ_{i+1} − λ_i``, ``hh = −h`` and the previous outputs ``D_m`` at
    ``r_m = (λ_m − λ_i)/h``, the predictor UniP-p is
    ``x̃_{i+1} = (σ_{i+1}/σ_i)·x_i + (1 − e^{−h})·D_i − B(hh)·Σ_m a_m (D_m − D_i)/r_m``
    over the last ``p − 1`` outputs. After ``D_{i+1} = D(x̃_{i+1}, σ_{i+1})`` is evaluated (needed
    anyway by the next step), the corrector UniC-p replaces ``x̃_{i+1}`` by the same formula with
    ``D_{i+1}`` (``r = 1``) added to the differences: order ``p + 1`` for no extra evaluation; the
    next step starts from the corrected state with ``D_{i+1}``. ``B(hh) = hh`` (``variant="bh1"``)
    or ``e^{hh} − 1`` (``"bh2"``); the weights solve the order conditions
    (:func:`_unipc_weights`). Lower orders start the chain; the step to σ = 0 returns ``D``.
    ``corrector=False`` gives UniP alone. ``n_evals = M``.
    """
    order = check_int(order, "order", minimum=1)
    if order > 3:
        raise ValueError(f"order must be 1, 2 or 3 for UniPC; got {order}")
    if variant not in UNIPC_VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(UNIPC_VARIANTS)}; got {variant!r}")
    x, levels, monitor = _ladder(
        "unipc", x, sigmas, denoise, generator, keep_trajectory, progress, callback
    )
    n = len(levels) - 1
    history: list[tuple[float, Tensor]] = []  # (λ, D), most recent last
    last: tuple[Tensor, float, float, int] | None = None  # x_i, λ_i, λ_{i+1}, order of the step
    for i in range(n):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = denoiser(score, x, sigma)
        lam = -math.log(sigma)
        if corrector and last is not None and sigma_next > 0:
            # UniC: redo the last step with the new output D_{i+1} at r = 1.
            x_prev, lam_prev, _, p = last
            x = _unipc_step(x_prev, lam_prev, lam, history[-p:], denoised, variant)
        history = [*history[-(order - 1) :], (lam, denoised)] if order > 1 else [(lam, denoised)]
        if sigma_next == 0:
            x = denoised
        else:
            lam_next = -math.log(sigma_next)
            p = min(order, len(history))
            last = (x, lam, lam_next, p)
            x = _unipc_step(x, lam, lam_next, history[-p:], None, variant)
        monitor.step(x, f"step {i} (sigma={sigma:.4g})", sigma=sigma, denoised=denoised)
    return monitor.finish(x, n_evals=n)


def _unipc_step(
    x: Tensor,
    lam: float,
    lam_next: float,
    outputs: list[tuple[float, Tensor]],
    new: Tensor | None,
    variant: str,
) -> Tensor:
    """One UniP step (``new is None``) or UniC step from ``x`` at ``λ`` to ``λ_next``.

    ``outputs`` are the ``(λ, D)`` used, the one at ``λ`` (``D_i``) last.
    """
    h = lam_next - lam
    hh = -h
    d0 = outputs[-1][1]
    x_next = math.exp(-h) * x - math.expm1(hh) * d0  # (σ_{i+1}/σ_i)·x + (1 − e^{−h})·D_i
    rks = [(lam_m - lam) / h for lam_m, _ in outputs[:-1]]
    diffs = [(d_m - d0) / r for (_, d_m), r in zip(outputs[:-1], rks, strict=True)]
    if new is not None:
        rks.append(1.0)
        diffs.append(new - d0)
    if not diffs:
        return x_next
    b_h = hh if variant == "bh1" else math.expm1(hh)
    weights = _unipc_weights(rks, hh, b_h)
    for a, diff in zip(weights, diffs, strict=True):
        x_next = x_next - b_h * a * diff
    return x_next


# ---------------------------------------------------------------------------------------------
# Adams–Bashforth in σ: iPNDM and tAB-DEIS
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def ipndm(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    order: int = 3,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """Improved PNDM (Zhang & Chen 2022, "Fast Sampling of Diffusion Models with Exponential
    Integrator", the iPNDM of sec. 4/app.): Adams–Bashforth on ``ε = (x − D)/σ`` in σ.

    ``x_{i+1} = x_i + (σ_{i+1} − σ_i)·Σ_j c_j ε_{i−j}`` with the equal-step Adams–Bashforth
    coefficients of order ``q = min(order, i + 1)`` (:data:`ADAMS_BASHFORTH`: ``1``;
    ``(3, −1)/2``; ``(23, −16, 5)/12``; ``(55, −59, 37, −9)/24``), the lower orders starting the
    chain in place of PNDM's Runge–Kutta warm-up (so no extra evaluations). The step to σ = 0
    returns ``D``. ``n_evals = M``.
    """
    order = check_int(order, "order", minimum=1)
    if order > len(ADAMS_BASHFORTH):
        raise ValueError(f"order must be 1..{len(ADAMS_BASHFORTH)} for iPNDM; got {order}")
    x, levels, monitor = _ladder(
        "ipndm", x, sigmas, denoise, generator, keep_trajectory, progress, callback
    )
    n = len(levels) - 1
    slopes: list[Tensor] = []  # ε of previous levels, most recent first
    for i in range(n):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = denoiser(score, x, sigma)
        slopes = [(x - denoised) / sigma, *slopes[: order - 1]]
        if sigma_next == 0:
            x = denoised
        else:
            coeffs = ADAMS_BASHFORTH[len(slopes) - 1]
            x = x + (sigma_next - sigma) * sum(c * e for c, e in zip(coeffs, slopes, strict=True))
        monitor.step(x, f"step {i} (sigma={sigma:.4g})", sigma=sigma, denoised=denoised)
    return monitor.finish(x, n_evals=n)


def lagrange_step_weights(nodes: list[float], start: float, end: float) -> list[float]:
    """``∫_start^end ℓ_j(t) dt`` for the Lagrange basis ``ℓ_j`` on ``nodes`` (newest first).

    The weights of tAB-DEIS: integrating the polynomial through ``(nodes_j, ε_j)`` over one step
    gives ``Σ_j w_j ε_j``. Computed in float64 from the basis polynomials' coefficients.
    """
    poly = np.polynomial.polynomial
    weights = []
    for j in range(len(nodes)):
        antiderivative = poly.polyint(_lagrange_basis(nodes, j))
        weights.append(
            float(poly.polyval(end, antiderivative) - poly.polyval(start, antiderivative))
        )
    return weights


def _lagrange_basis(nodes: list[float], j: int) -> np.ndarray:
    """Coefficients (lowest degree first) of the Lagrange basis polynomial ``ℓ_j`` on ``nodes``."""
    poly = np.polynomial.polynomial
    basis = np.array([1.0])
    for m, t_m in enumerate(nodes):
        if m != j:
            basis = poly.polymul(basis, np.array([-t_m, 1.0]) / (nodes[j] - t_m))
    return basis


def log_sigma_step_weights(nodes: list[float], start: float, end: float) -> list[float]:
    """``∫_start^end ℓ_j(log σ) dσ`` for the Lagrange basis in ``u = log σ`` on the σ ``nodes``.

    The weights of DEIS with ``ε`` extrapolated in log ρ (ρ = σ here; diffusers' ``logrho``):
    with ``v = log σ − log start`` the integral is ``start·∫₀ᴴ ℓ_j(v) e^v dv``,
    ``H = log(end/start)``, and ``∫ p(v) e^v dv = e^v Σ_k (−1)^k p^{(k)}(v)`` in closed form.
    """
    poly = np.polynomial.polynomial
    shifted = [math.log(t / start) for t in nodes]
    h = math.log(end / start)
    weights = []
    for j in range(len(nodes)):
        p = _lagrange_basis(shifted, j)
        total = np.zeros(1)
        sign = 1.0
        while p.size and np.any(p):
            total = poly.polyadd(total, sign * p)
            p, sign = poly.polyder(p), -sign
        weights.append(start * float(math.exp(h) * poly.polyval(h, total) - poly.polyval(0, total)))
    return weights


#: Time variables of :func:`deis`: ``"sigma"`` (tAB in EDM time t = σ) or ``"log-sigma"``.
DEIS_TIMES = ("sigma", "log-sigma")


@torch.no_grad()
def deis(
    score: ScoreFn,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    order: int = 3,
    time: str = "sigma",
    lower_order_final: bool = False,
    denoise: bool = True,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callback | None = None,
) -> SampleResult:
    """tAB-DEIS (Zhang & Chen 2022, eq. 14–15): exponential integrator, ``ε`` polynomial in time.

    DEIS writes the ODE in the noise prediction, ``x_t = Ψ(t, s)·x_s + ∫_s^t w(τ)·ε(x_τ, τ) dτ``,
    and replaces ``ε`` by its Lagrange polynomial through the last ``q`` levels in the time
    variable. In the VE process with time ``t = σ`` (Karras et al. 2022) the transition is
    ``Ψ = 1`` and the weight ``w = 1``: ``x_{i+1} = x_i + Σ_j C_{ij}·ε_{i−j}`` with
    ``C_{ij} = ∫_{σ_i}^{σ_{i+1}} ℓ_j(σ) dσ`` (:func:`lagrange_step_weights`), exact for unequal
    steps (the ladder's spacing enters the coefficients, unlike :func:`ipndm`).
    ``q = min(order, i + 1)``; the step to σ = 0 returns ``D``. ``n_evals = M``.
    ``time="log-sigma"`` extrapolates ``ε`` in ``log σ`` instead (the paper's ρAB-DEIS in log ρ,
    diffusers' ``logrho``; :func:`log_sigma_step_weights`), which suits geometric-like ladders.
    ``lower_order_final`` caps the order of the last two steps at 2 and 1, as diffusers'
    ``lower_order_final`` does below 15 steps; with ``time="log-sigma"`` this is diffusers'
    ``DEISMultistepScheduler`` (same ratios to the third decimal, benchmarks/RESULTS_fewstep.md).
    It helps some laws at 5–6 evaluations and hurts others; the ODE error on a Gaussian grows.
    """
    order = check_int(order, "order", minimum=1)
    if order > 4:
        raise ValueError(f"order must be 1..4 for DEIS; got {order}")
    if time not in DEIS_TIMES:
        raise ValueError(f"time must be one of {', '.join(DEIS_TIMES)}; got {time!r}")
    step_weights = lagrange_step_weights if time == "sigma" else log_sigma_step_weights
    x, levels, monitor = _ladder(
        "deis", x, sigmas, denoise, generator, keep_trajectory, progress, callback
    )
    n = len(levels) - 1
    slopes: list[tuple[float, Tensor]] = []  # (σ, ε) of previous levels, most recent first
    for i in range(n):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = denoiser(score, x, sigma)
        slopes = [(sigma, (x - denoised) / sigma), *slopes[: order - 1]]
        if sigma_next == 0:
            x = denoised
        else:
            used = slopes[: n - i] if lower_order_final else slopes
            weights = step_weights([s for s, _ in used], sigma, sigma_next)
            x = x + sum(w * e for w, (_, e) in zip(weights, used, strict=True))
        monitor.step(x, f"step {i} (sigma={sigma:.4g})", sigma=sigma, denoised=denoised)
    return monitor.finish(x, n_evals=n)


# ---------------------------------------------------------------------------------------------
# DPM-Solver++(3M) SDE
# ---------------------------------------------------------------------------------------------


@torch.no_grad()
def dpmpp_3m_sde(
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
    """DPM-Solver++(3M) SDE (Lu et al. 2022, SDE-DPM-Solver++ with the 3M multistep), VE form.

    With ``λ = −log σ``, ``h = λ_{i+1} − λ_i`` and ``k = 1 + η``, the data-prediction SDE
    (``η = 1``; ``η = 0`` is the ODE and gives :func:`~scorelab.samplers.dpmpp_3m`) integrates to
    ``x_{i+1} = (σ_{i+1}/σ_i)e^{−ηh}·x_i + ∫₀ʰ k e^{−k(h−u)} D(λ_i + u) du
    + σ_{i+1}√(1 − e^{−2ηh})·s_noise·z``. ``D`` is replaced by its quadratic interpolant through
    the last three outputs in λ (Newton form ``D_i + s·u + c·u(u + λ_i − λ_{i−1})``, first and
    second divided differences ``s``, ``c``), whose integrals are closed form:
    ``∫₀ʰ k e^{−k(h−u)} du = φ = 1 − e^{−kh}``, ``∫ … u du = (kh − φ)/k``,
    ``∫ … u² du = ((kh)² − 2kh + 2φ)/k²``. The second step (two outputs) is the 2M step with
    weight ``φ·h/2`` on ``s``, as in :func:`~scorelab.samplers.dpmpp_3m`; the first is first
    order and the step to σ = 0 returns ``D``. ``n_evals = M``.
    """
    eta = check_positive(eta, "eta", strict=False)
    s_noise = check_positive(s_noise, "s_noise", strict=False)
    x, levels, monitor = _ladder(
        "dpmpp_3m_sde", x, sigmas, denoise, generator, keep_trajectory, progress, callback
    )
    n = len(levels) - 1
    history: list[tuple[float, Tensor]] = []  # (λ, D) of the two previous levels
    k = 1.0 + eta
    for i in range(n):
        sigma, sigma_next = levels[i], levels[i + 1]
        denoised = denoiser(score, x, sigma)
        lam = -math.log(sigma)
        if sigma_next == 0:
            x = denoised
        else:
            h = -math.log(sigma_next) - lam
            kh = k * h
            phi = -math.expm1(-kh)  # 1 − e^{−kh}
            x = (sigma_next / sigma) * math.exp(-eta * h) * x + phi * denoised
            if history:
                lam1, d1 = history[-1]
                slope = (denoised - d1) / (lam - lam1)
                third = len(history) >= 2
                # The 2nd-order start uses DPM-Solver++(2M)'s weight φ·h/2, as dpmpp_3m does.
                x = x + (((kh - phi) / k) if third else 0.5 * phi * h) * slope
                if third:
                    lam2, d2 = history[-2]
                    curv = (slope - (d1 - d2) / (lam1 - lam2)) / (lam - lam2)
                    i2 = (kh * kh - 2.0 * kh + 2.0 * phi) / (k * k)
                    x = x + (i2 + (lam - lam1) * (kh - phi) / k) * curv
            if eta > 0 and s_noise > 0:
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                x = x + sigma_next * math.sqrt(-math.expm1(-2.0 * eta * h)) * s_noise * z
        history = [*history[-1:], (lam, denoised)]
        monitor.step(x, f"step {i} (sigma={sigma:.4g})", sigma=sigma, denoised=denoised)
    return monitor.finish(x, n_evals=n)
