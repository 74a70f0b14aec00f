"""Linear forward SDEs dx = a(t) x dt + g(t) dw: VE with g = λ^t (seed 004), VE, VP, sub-VP.

Every SDE here has a Gaussian kernel q(x_t | x_0) = N(α_t x_0, σ_t² I) (Song et al. 2021,
"Score-based generative modeling through SDEs", eqs. 29-33 and app. B) and is a scaled VE process,
``x_t = α_t (x_0 + σ̃_t z)`` with the noise level ``σ̃_t = σ_t / α_t`` (Karras et al. 2022, eq. 5).
So the score of the marginal p_t follows from a VE-convention ``score(x, sigma)``:
``∇ log p_t(x) = score(x / α_t, σ̃_t) / α_t`` (``score_at_time``).

Times ``t`` are a float or a tensor. Methods of ``t`` alone return a tensor of ``t``'s shape (a
float gives a 0-d float64 tensor); methods that also take ``x`` of shape ``(B, *D)`` turn ``t`` into
a ``(B,)`` tensor on ``x``'s device and dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from scorelab.utils import (
    MAX_SIGMA,
    ScoreFn,
    append_dims,
    check_generator,
    check_noise_level,
    check_positive,
    sum_except_batch,
)

__all__ = [
    "SDE",
    "SDES",
    "SubVPSDE",
    "VESDE",
    "VESDELambda",
    "VPSDE",
    "get_sde",
    "score_at_time",
]


def _time(t: float | Tensor, name: str = "t") -> Tensor:
    """A time (or noise level) as a floating tensor; floats and integer tensors become float64."""
    if isinstance(t, Tensor):
        out = t if t.is_floating_point() else t.to(torch.float64)
    else:
        try:
            out = torch.tensor(float(t), dtype=torch.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number or a tensor; got {t!r}") from None
    if out.ndim == 0:
        # One scalar (every sampler's time): a single read instead of four tensor reductions.
        value = float(out)
        bad = not math.isfinite(value) or value < 0
    else:
        bad = not bool(torch.isfinite(out).all()) or bool((out < 0).any())
    if bad:
        raise ValueError(f"{name} must be finite and >= 0; got min {float(out.min()):.3g}")
    return out


def _batch_time(t: float | Tensor, x: Tensor, name: str = "t") -> Tensor:
    """A time as a ``(B,)`` tensor on ``x``'s device and dtype (a float or 0-d one is expanded)."""
    out = _time(t, name).to(device=x.device, dtype=x.dtype)
    if out.ndim == 0:
        return out.expand(x.shape[0])
    if out.ndim != 1 or out.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name} must be a number or a tensor of shape (B,) = ({x.shape[0]},); "
            f"got shape {tuple(out.shape)}"
        )
    return out


def _scalar_time(t: float | Tensor, x: Tensor, name: str = "t") -> Tensor | None:
    """A time shared by the whole batch as a validated 0-d tensor in ``x``'s dtype and device.

    Returns ``None`` for a per-example ``(B,)`` time. Every sampler passes a float, so the schedule
    coefficients (g, α, σ̃) are then computed once on a scalar and broadcast, instead of over B
    identical entries; validation is the same as ``_time``'s.
    """
    if isinstance(t, Tensor) and t.ndim != 0:
        return None
    return _time(t, name).to(device=x.device, dtype=x.dtype)


def _check_horizon(T: float, eps: float) -> None:
    """Validate the time horizon ``T`` and the stopping time ``eps`` (0 < eps < T)."""
    check_positive(T, "T")
    check_positive(eps, "eps")
    if eps >= T:
        raise ValueError(f"eps must be < T; got eps={eps}, T={T} (use a small eps such as 1e-3)")


class SDE:
    """Shared maths of the linear SDEs below; subclasses give the schedule.

    A subclass defines ``drift_coef(t)`` (a with f(x, t) = a(t) x), ``diffusion(t)`` (g),
    ``alpha(t)``, ``noise_level(t)`` (σ̃ = σ/α), ``t_from_noise(σ̃)``, ``prior_std()`` and
    ``_noise_var_gap(s, t)`` = σ̃_t² − σ̃_s² (written per schedule without cancellation).
    """

    T: float
    eps: float

    # ---- schedule (per subclass) -------------------------------------------------------------
    def drift_coef(self, t: float | Tensor) -> Tensor:
        """Linear drift coefficient a(t), with f(x, t) = a(t) x."""
        raise NotImplementedError

    def diffusion(self, t: float | Tensor) -> Tensor:
        """Diffusion coefficient g(t), shape of ``t`` (``(B,)`` for a batch of times)."""
        raise NotImplementedError

    def alpha(self, t: float | Tensor) -> Tensor:
        """Marginal mean coefficient α_t of q(x_t | x_0) = N(α_t x_0, σ_t² I)."""
        raise NotImplementedError

    def noise_level(self, t: float | Tensor) -> Tensor:
        """VE-equivalent noise level σ̃_t = σ_t / α_t (Karras et al. 2022, eq. 5)."""
        raise NotImplementedError

    def t_from_noise(self, sigma_tilde: float | Tensor) -> Tensor:
        """Inverse of ``noise_level``: the time t with σ̃_t = ``sigma_tilde`` (closed form)."""
        raise NotImplementedError

    def prior_std(self) -> float:
        """Standard deviation of the prior N(0, s² I) that reverse-time sampling starts from."""
        raise NotImplementedError

    def _noise_var_gap(self, s: Tensor, t: Tensor) -> Tensor:
        raise NotImplementedError

    # ---- shared ------------------------------------------------------------------------------
    def sigma(self, t: float | Tensor) -> Tensor:
        """Marginal standard deviation σ_t = α_t σ̃_t of q(x_t | x_0)."""
        return self.alpha(t) * self.noise_level(t)

    def drift(self, x: Tensor, t: float | Tensor) -> Tensor:
        """Forward drift f(x, t) = a(t) x, shape ``(B, *D)``."""
        a = self.drift_coef(_batch_time(t, x))
        return append_dims(a, x.ndim) * x

    def marginal(self, x0: Tensor, t: float | Tensor) -> tuple[Tensor, Tensor]:
        """Mean ``(B, *D)`` and std ``(B,)`` of q(x_t | x_0) = N(α_t x_0, σ_t² I)."""
        t = _batch_time(t, x0)
        return append_dims(self.alpha(t), x0.ndim) * x0, self.sigma(t)

    def transition(
        self, x_s: Tensor, s: float | Tensor, t: float | Tensor
    ) -> tuple[Tensor, Tensor]:
        """Mean ``(B, *D)`` and std ``(B,)`` of q(x_t | x_s), s < t (seed 000, Problem 1).

        Mean (α_t/α_s) x_s, variance σ_t² − (α_t/α_s)² σ_s² = α_t² (σ̃_t² − σ̃_s²).
        """
        s, t = _batch_time(s, x_s, "s"), _batch_time(t, x_s, "t")
        if not bool((s < t).all()):
            raise ValueError("transition needs s < t for every example; got some s >= t")
        a_t = self.alpha(t)
        ratio = a_t / self.alpha(s)
        std = a_t * self._noise_var_gap(s, t).sqrt()
        return append_dims(ratio, x_s.ndim) * x_s, std

    def prior_sample(
        self,
        shape: tuple[int, ...] | torch.Size,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Draw ``shape = (B, *D)`` samples of the prior N(0, s² I) (``s = prior_std()``)."""
        check_generator(generator, torch.get_default_device() if device is None else device)
        z = torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device)
        return self.prior_std() * z

    def prior_log_prob(self, x: Tensor) -> Tensor:
        """Log-density of the prior N(0, s² I) at ``x`` ``(B, *D)``, shape ``(B,)``."""
        s = self.prior_std()
        n = x[0].numel()
        return -0.5 * sum_except_batch(x.square()) / s**2 - 0.5 * n * math.log(2 * math.pi * s**2)

    def reverse_drift(
        self, x: Tensor, t: float | Tensor, score: ScoreFn, probability_flow: bool = False
    ) -> Tensor:
        """Reverse-time drift f − g² ∇log p_t (Song et al. 2021, eq. 6), ``(B, *D)``.

        With ``probability_flow=True`` the g² term is halved: the probability-flow ODE (eq. 13).
        ``score`` is a VE-convention ``score(x, sigma)``; ∇log p_t comes from ``score_at_time``.
        """
        weight = 0.5 if probability_flow else 1.0
        t_scalar = _scalar_time(t, x)
        if t_scalar is None:  # per-example times
            t = _batch_time(t, x)
            g2 = append_dims(self.diffusion(t).square(), x.ndim)
            return self.drift(x, t) - weight * g2 * score_at_time(score, self, x, t)
        # One time for the batch: the scalars g², α_t, σ̃_t are computed once, the factor
        # -w g² / α_t multiplies the VE score in one pass, and a zero drift (VE) adds nothing.
        alpha = self.alpha(t_scalar)
        sigma = self.noise_level(t_scalar).expand(x.shape[0])
        factor = -(weight * self.diffusion(t_scalar).square()) / alpha
        noise_term = score(x / alpha, sigma) * factor
        if type(self).drift is SDE.drift:
            a = self.drift_coef(t_scalar)
            return noise_term if bool(a == 0) else a * x + noise_term
        return self.drift(x, t_scalar) + noise_term


def score_at_time(score: ScoreFn, sde: SDE, x: Tensor, t: float | Tensor) -> Tensor:
    """Score of the SDE marginal p_t from a VE score: ``score(x/α_t, σ̃_t)/α_t``, ``(B, *D)``.

    Since x_t = α_t (x_0 + σ̃_t z), p_t(x) = α_t^{-d} p_σ̃(x/α_t) (Karras et al. 2022, eq. 5).
    """
    t_scalar = _scalar_time(t, x)
    if t_scalar is not None:  # one time for the batch: scalar α_t, σ̃_t broadcast to (B,)
        alpha = sde.alpha(t_scalar)
        return score(x / alpha, sde.noise_level(t_scalar).expand(x.shape[0])) / alpha
    t = _batch_time(t, x)
    alpha = append_dims(sde.alpha(t), x.ndim)
    return score(x / alpha, sde.noise_level(t)) / alpha


@dataclass(frozen=True)
class VESDELambda(SDE):
    """VE SDE dx = λ^t dw of seed 004: α_t = 1, σ_t² = (λ^{2t} − 1)/(2 ln λ); prior N(0, σ_T² I)."""

    lam: float = 25.0
    T: float = 1.0
    eps: float = 1e-5

    def __post_init__(self) -> None:
        lam = check_positive(self.lam, "lam")
        if lam <= 1.0:
            raise ValueError(f"lam must be > 1 (g(t) = lam^t must grow); got {self.lam}")
        _check_horizon(self.T, self.eps)
        # g(T) = lam^T is the largest diffusion; g(T)² and σ_T² (of the same order) must be finite.
        if self.T * math.log(lam) > math.log(MAX_SIGMA):
            raise ValueError(
                f"lam={lam:g} is too large for T={self.T:g}: g(T) = lam^T exceeds {MAX_SIGMA:g} "
                f"and σ_T² = (lam^(2T) − 1)/(2 ln lam) overflows; use "
                f"lam <= {MAX_SIGMA ** (1.0 / self.T):.3g}"
            )

    @property
    def _log_lam(self) -> float:
        return math.log(self.lam)

    def drift_coef(self, t: float | Tensor) -> Tensor:
        return torch.zeros_like(_time(t))

    def diffusion(self, t: float | Tensor) -> Tensor:
        return torch.exp(_time(t) * self._log_lam)

    def alpha(self, t: float | Tensor) -> Tensor:
        return torch.ones_like(_time(t))

    def noise_level(self, t: float | Tensor) -> Tensor:
        two_log = 2 * self._log_lam
        return (torch.expm1(two_log * _time(t)) / two_log).sqrt()

    def t_from_noise(self, sigma_tilde: float | Tensor) -> Tensor:
        two_log = 2 * self._log_lam
        return torch.log1p(two_log * _time(sigma_tilde, "sigma_tilde").square()) / two_log

    def prior_std(self) -> float:
        return math.sqrt(math.expm1(2 * self._log_lam * self.T) / (2 * self._log_lam))

    def _noise_var_gap(self, s: Tensor, t: Tensor) -> Tensor:
        # (λ^{2t} − λ^{2s}) / (2 ln λ) written as λ^{2s} expm1(2 (t − s) ln λ) / (2 ln λ).
        two_log = 2 * self._log_lam
        return torch.exp(two_log * s) * torch.expm1(two_log * (t - s)) / two_log


@dataclass(frozen=True)
class VESDE(SDE):
    """VE SDE of Song et al. (2021): σ(t) = σ_min (σ_max/σ_min)^t, g = σ(t) √(2 ln(σ_max/σ_min)).

    The marginal is exact for the SDE started at x_0 at t = 0: σ_t² = σ(t)² − σ_min². score_sde's
    ``VESDE.marginal_prob`` uses σ(t) instead, which assumes x_0 already carries σ_min noise; the
    difference is negligible except near t = 0. The prior is N(0, σ(T)² I), i.e. N(0, σ_max² I) for
    T = 1, as in score_sde.
    """

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    T: float = 1.0
    eps: float = 1e-5

    def __post_init__(self) -> None:
        lo = check_positive(self.sigma_min, "sigma_min")
        hi = check_noise_level(self.sigma_max, "sigma_max")
        if hi <= lo:
            raise ValueError(
                f"sigma_max must be > sigma_min; got sigma_max={self.sigma_max}, "
                f"sigma_min={self.sigma_min}"
            )
        _check_horizon(self.T, self.eps)
        # For T > 1 the prior std σ(T) = sigma_max·(sigma_max/sigma_min)^(T−1) grows past sigma_max.
        if self.T > 1 and math.log(hi) + (self.T - 1) * math.log(hi / lo) > math.log(MAX_SIGMA):
            t_max = 1.0 + (math.log(MAX_SIGMA) - math.log(hi)) / math.log(hi / lo)
            raise ValueError(
                f"T={self.T:g} is too large for sigma_max/sigma_min = {hi / lo:.3g}: the noise "
                f"level σ(T) exceeds {MAX_SIGMA:g} and its square overflows; use T <= {t_max:.3g}"
            )

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def _sigma_geom(self, t: Tensor) -> Tensor:
        return self.sigma_min * torch.exp(t * self._log_ratio)

    def drift_coef(self, t: float | Tensor) -> Tensor:
        return torch.zeros_like(_time(t))

    def diffusion(self, t: float | Tensor) -> Tensor:
        return self._sigma_geom(_time(t)) * math.sqrt(2 * self._log_ratio)

    def alpha(self, t: float | Tensor) -> Tensor:
        return torch.ones_like(_time(t))

    def noise_level(self, t: float | Tensor) -> Tensor:
        # σ_min √(r^{2t} − 1), with expm1 to keep precision near t = 0.
        return self.sigma_min * torch.expm1(2 * self._log_ratio * _time(t)).sqrt()

    def t_from_noise(self, sigma_tilde: float | Tensor) -> Tensor:
        ratio = _time(sigma_tilde, "sigma_tilde") / self.sigma_min
        return torch.log1p(ratio.square()) / (2 * self._log_ratio)

    def prior_std(self) -> float:
        # σ_max r^{T−1} rather than σ_min r^T so that T = 1 gives σ_max exactly.
        return self.sigma_max * math.exp((self.T - 1.0) * self._log_ratio)

    def _noise_var_gap(self, s: Tensor, t: Tensor) -> Tensor:
        two_log = 2 * self._log_ratio
        return self.sigma_min**2 * torch.exp(two_log * s) * torch.expm1(two_log * (t - s))


def _check_betas(beta_min: float, beta_max: float, T: float, eps: float) -> None:
    """Validate a linear β schedule: 0 <= beta_min <= beta_max, beta_max > 0."""
    check_positive(beta_min, "beta_min", strict=False)
    check_positive(beta_max, "beta_max")
    if beta_max < beta_min:
        raise ValueError(f"beta_max must be >= beta_min; got {beta_max} < {beta_min}")
    _check_horizon(T, eps)


class _LinearBeta:
    """β(t) = β_min + (β_max − β_min) t and its integral B(t) = ∫₀ᵗ β, shared by VP and sub-VP."""

    beta_min: float
    beta_max: float

    def beta(self, t: float | Tensor) -> Tensor:
        """β(t) = β_min + (β_max − β_min) t."""
        return self.beta_min + (self.beta_max - self.beta_min) * _time(t)

    def _beta_integral(self, t: Tensor) -> Tensor:
        return self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t.square()

    def _beta_integral_gap(self, s: Tensor, t: Tensor) -> Tensor:
        # B(t) − B(s) = (t − s)(β_min + ½ (β_max − β_min)(t + s)), free of cancellation.
        return (t - s) * (self.beta_min + 0.5 * (self.beta_max - self.beta_min) * (t + s))

    def _t_from_integral(self, b: Tensor) -> Tensor:
        # Root of ½Δ t² + β_min t − b = 0 written as 2b / (β_min + √(β_min² + 2Δb)) (stable,
        # and valid for Δ = 0).
        delta = self.beta_max - self.beta_min
        return 2 * b / (self.beta_min + torch.sqrt(self.beta_min**2 + 2 * delta * b))

    def drift_coef(self, t: float | Tensor) -> Tensor:
        return -0.5 * self.beta(t)

    def alpha(self, t: float | Tensor) -> Tensor:
        return torch.exp(-0.5 * self._beta_integral(_time(t)))


@dataclass(frozen=True)
class VPSDE(_LinearBeta, SDE):
    """VP SDE (Song et al. 2021, eq. 11): dx = −½β(t) x dt + √β(t) dw, β linear.

    α_t = exp(−½∫₀ᵗβ), σ_t² = 1 − α_t², σ̃_t² = exp(∫₀ᵗβ) − 1; prior N(0, I).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0
    eps: float = 1e-3

    def __post_init__(self) -> None:
        _check_betas(self.beta_min, self.beta_max, self.T, self.eps)

    def diffusion(self, t: float | Tensor) -> Tensor:
        return self.beta(t).sqrt()

    def sigma(self, t: float | Tensor) -> Tensor:
        return torch.sqrt(-torch.expm1(-self._beta_integral(_time(t))))

    def noise_level(self, t: float | Tensor) -> Tensor:
        return torch.expm1(self._beta_integral(_time(t))).sqrt()

    def t_from_noise(self, sigma_tilde: float | Tensor) -> Tensor:
        b = torch.log1p(_time(sigma_tilde, "sigma_tilde").square())
        return self._t_from_integral(b)

    def prior_std(self) -> float:
        return 1.0

    def _noise_var_gap(self, s: Tensor, t: Tensor) -> Tensor:
        # e^{B(t)} − e^{B(s)} = e^{B(s)} expm1(B(t) − B(s)).
        return torch.exp(self._beta_integral(s)) * torch.expm1(self._beta_integral_gap(s, t))


@dataclass(frozen=True)
class SubVPSDE(_LinearBeta, SDE):
    """Sub-VP SDE (Song et al. 2021, eq. 12): dx = −½β x dt + √(β(t)(1 − e^{−2∫β})) dw.

    α_t = exp(−½∫₀ᵗβ), σ_t = 1 − α_t², σ̃_t = 2 sinh(½∫₀ᵗβ); prior N(0, I).
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    T: float = 1.0
    eps: float = 1e-3

    def __post_init__(self) -> None:
        _check_betas(self.beta_min, self.beta_max, self.T, self.eps)

    def diffusion(self, t: float | Tensor) -> Tensor:
        t = _time(t)
        return torch.sqrt(-self.beta(t) * torch.expm1(-2 * self._beta_integral(t)))

    def sigma(self, t: float | Tensor) -> Tensor:
        return -torch.expm1(-self._beta_integral(_time(t)))

    def noise_level(self, t: float | Tensor) -> Tensor:
        return 2 * torch.sinh(0.5 * self._beta_integral(_time(t)))

    def t_from_noise(self, sigma_tilde: float | Tensor) -> Tensor:
        b = 2 * torch.asinh(0.5 * _time(sigma_tilde, "sigma_tilde"))
        return self._t_from_integral(b)

    def prior_std(self) -> float:
        return 1.0

    def _noise_var_gap(self, s: Tensor, t: Tensor) -> Tensor:
        # 4 (sinh² b_t − sinh² b_s) = 4 sinh(b_t + b_s) sinh(b_t − b_s), b = ½ B.
        b_sum = 0.5 * (self._beta_integral(t) + self._beta_integral(s))
        return 4 * torch.sinh(b_sum) * torch.sinh(0.5 * self._beta_integral_gap(s, t))


#: Names used by the CLI and configs; the library itself takes SDE objects.
SDES: dict[str, type[SDE]] = {
    "ve-lambda": VESDELambda,
    "ve": VESDE,
    "vp": VPSDE,
    "subvp": SubVPSDE,
}


def get_sde(name: str, **kwargs: float) -> SDE:
    """Build the SDE named ``name`` (one of ``SDES``) with keyword parameters ``kwargs``."""
    if name not in SDES:
        raise ValueError(f"unknown SDE {name!r}; choose one of {', '.join(sorted(SDES))}")
    return SDES[name](**kwargs)
