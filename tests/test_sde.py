"""Noise ladders and forward SDEs against closed forms, autograd and Monte-Carlo simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from scorelab.sde import (
    SDES,
    VESDE,
    VPSDE,
    SubVPSDE,
    VESDELambda,
    geometric_sigmas,
    get_sde,
    karras_sigmas,
    score_at_time,
)

F64 = torch.float64
ALL_SDES = [VESDELambda(lam=25.0), VESDE(), VPSDE(), SubVPSDE(), VPSDE(beta_min=1.0, beta_max=1.0)]
IDS = ["ve-lambda", "ve", "vp", "subvp", "vp-constant-beta"]
all_sdes = pytest.mark.parametrize("sde", ALL_SDES, ids=IDS)
named_sdes = pytest.mark.parametrize("sde", ALL_SDES[:4], ids=IDS[:4])  # for the slower MC tests


def simulate(sde, x: torch.Tensor, s: float, t: float, n_steps: int, gen: torch.Generator):
    """Euler–Maruyama from time s to t with f = a(t) x and g(t) read at each step's midpoint.

    The coefficients of all steps are computed in one vectorised call to keep the loop cheap.
    """
    dt = (t - s) / n_steps
    t_mid = s + (torch.arange(n_steps, dtype=F64) + 0.5) * dt
    a, g = sde.drift_coef(t_mid).tolist(), (sde.diffusion(t_mid) * math.sqrt(dt)).tolist()
    for a_i, g_i in zip(a, g, strict=True):
        z = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        x = x + (a_i * dt) * x + g_i * z
    return x


def assert_gaussian_moments(x: torch.Tensor, mean: float, std: float, n_se: float = 4.0):
    """Sample mean and variance of every entry of ``x`` within ``n_se`` standard errors."""
    n = x.numel()
    se_mean = std / math.sqrt(n)
    se_var = std**2 * math.sqrt(2.0 / (n - 1))
    assert abs(float(x.mean()) - mean) < n_se * se_mean
    assert abs(float(x.var()) - std**2) < n_se * se_var


# ---- Monte-Carlo checks of the closed forms ---------------------------------------------------


@named_sdes
def test_marginal_matches_simulated_sde(sde):
    gen = torch.Generator().manual_seed(0)
    x0 = torch.full((5000, 2, 2), 1.5, dtype=F64)  # 20 000 scalar paths, rank-3 data
    t = 0.6
    x_t = simulate(sde, x0, 0.0, t, 500, gen)
    mean, std = sde.marginal(x0, t)
    assert mean.shape == x0.shape and std.shape == (5000,)
    assert torch.allclose(mean, sde.alpha(t) * x0)
    assert_gaussian_moments(x_t, float(mean[0, 0, 0]), float(std[0]))


@named_sdes
def test_transition_matches_simulation_from_s(sde):
    gen = torch.Generator().manual_seed(1)
    s, t = 0.3, 0.7
    x_s = torch.full((20000, 1), -0.8, dtype=F64)
    x_t = simulate(sde, x_s, s, t, 500, gen)
    mean, std = sde.transition(x_s, s, t)
    assert mean.shape == x_s.shape and std.shape == (20000,)
    assert_gaussian_moments(x_t, float(mean[0, 0]), float(std[0]))


@pytest.mark.parametrize("sde", [VPSDE(), VPSDE(beta_min=1.0, beta_max=1.0)], ids=["vp", "vp-c"])
def test_vp_preserves_unit_variance(sde):
    # Seed 000, Problem 1.1: Var x_0 = 1 ⇒ Var x_t = α_t² + σ_t² = 1 for every t.
    t = torch.linspace(0.0, 1.0, 51, dtype=F64)
    assert torch.allclose(sde.alpha(t) ** 2 + sde.sigma(t) ** 2, torch.ones_like(t), atol=1e-12)
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(20000, 1, generator=gen, dtype=F64)
    x0 = (x0 - x0.mean()) / x0.std()
    assert_gaussian_moments(simulate(sde, x0, 0.0, 0.5, 250, gen), 0.0, 1.0)


def test_subvp_variance_stays_below_vp():
    t = torch.linspace(0.01, 1.0, 50, dtype=F64)
    vp, sub = VPSDE(), SubVPSDE()
    assert torch.allclose(vp.alpha(t), sub.alpha(t))
    assert (sub.sigma(t) < vp.sigma(t)).all()
    assert torch.allclose(sub.sigma(t), 1 - vp.alpha(t) ** 2)


# ---- closed-form identities --------------------------------------------------------------------


@all_sdes
def test_transition_composed_with_marginal_is_marginal(sde):
    s = torch.tensor([0.0, 1e-4, 0.1, 0.3, 0.5, 0.999], dtype=F64)
    t = torch.tensor([1e-6, 2e-4, 0.1 + 1e-9, 0.9, 0.6, 1.0], dtype=F64)
    x0 = torch.linspace(-2, 2, 6, dtype=F64).reshape(6, 1)
    mean_s, std_s = sde.marginal(x0, s)
    mean_ts, std_ts = sde.transition(mean_s, s, t)
    mean_t, std_t = sde.marginal(x0, t)
    ratio = sde.alpha(t) / sde.alpha(s)
    assert torch.allclose(mean_ts, mean_t, rtol=1e-12, atol=1e-14)
    assert torch.allclose(ratio**2 * std_s**2 + std_ts**2, std_t**2, rtol=1e-9, atol=0)


@all_sdes
def test_variance_and_mean_odes_hold(sde):
    # Moment equations of dx = a(t) x dt + g dw: dα/dt = a α and dσ²/dt = g² + 2 a σ².
    t = torch.linspace(0.02, 1.0, 25, dtype=F64, requires_grad=True)
    (d_var,) = torch.autograd.grad(sde.sigma(t).square().sum(), t)
    (d_alpha,) = torch.autograd.grad((sde.alpha(t) + 0 * t).sum(), t)  # VE: α has no graph
    t = t.detach()
    a, g, var = sde.drift_coef(t), sde.diffusion(t), sde.sigma(t).square()
    assert torch.allclose(d_var, g**2 + 2 * a * var, rtol=1e-10)
    assert torch.allclose(d_alpha, a * sde.alpha(t), rtol=1e-10, atol=1e-14)


def test_closed_forms_from_the_papers():
    t = torch.linspace(0.0, 1.0, 11, dtype=F64)
    lam = 10.0  # seed 004: σ_t² = (λ^{2t} − 1)/(2 ln λ)
    assert torch.allclose(
        VESDELambda(lam).sigma(t) ** 2, (lam ** (2 * t) - 1) / (2 * math.log(lam)), rtol=1e-12
    )
    assert torch.allclose(VESDELambda(lam).diffusion(t), lam**t)
    ve = VESDE(sigma_min=0.02, sigma_max=80.0)
    geometric = 0.02 * (80.0 / 0.02) ** t
    assert torch.allclose(ve.sigma(t) ** 2, geometric**2 - 0.02**2, rtol=1e-12)
    assert torch.allclose(ve.diffusion(t), geometric * math.sqrt(2 * math.log(4000.0)))
    assert ve.prior_std() == 80.0
    vp = VPSDE(beta_min=0.1, beta_max=20.0)  # score_sde's log-mean coefficient
    log_mean = -0.25 * t**2 * (20.0 - 0.1) - 0.5 * t * 0.1
    assert torch.allclose(vp.alpha(t), log_mean.exp(), rtol=1e-12)
    assert torch.allclose(vp.drift(torch.ones(11, 3, dtype=F64), t)[:, 0], -0.5 * (0.1 + 19.9 * t))


@all_sdes
def test_t_from_noise_inverts_noise_level(sde):
    t = torch.linspace(sde.eps, sde.T, 200, dtype=F64)
    assert torch.allclose(sde.t_from_noise(sde.noise_level(t)), t, rtol=1e-9, atol=1e-12)
    sig = torch.logspace(-3, 2, 50, dtype=F64)
    assert torch.allclose(sde.noise_level(sde.t_from_noise(sig)), sig, rtol=1e-9)
    assert float(sde.t_from_noise(0.0)) == 0.0
    assert torch.allclose(sde.sigma(t), sde.alpha(t) * sde.noise_level(t), rtol=1e-12)


# ---- scores ------------------------------------------------------------------------------------

MU = torch.tensor([0.5, -1.0], dtype=F64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.5]], dtype=F64)


def gaussian_ve_score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact score of N(μ, C) ∗ N(0, σ² I) at x (B, 2)."""
    cov = COV + sigma.reshape(-1, 1, 1) ** 2 * torch.eye(2, dtype=F64)
    return -torch.linalg.solve(cov, (x - MU).unsqueeze(-1)).squeeze(-1)


def marginal_score_autograd(sde, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Autograd score of the exact SDE marginal N(α μ, α² C + σ² I)."""
    alpha, sigma = sde.alpha(t).reshape(-1, 1, 1), sde.sigma(t).reshape(-1, 1, 1)
    law = torch.distributions.MultivariateNormal(
        alpha[:, :, 0] * MU, alpha**2 * COV + sigma**2 * torch.eye(2, dtype=F64)
    )
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(law.log_prob(x).sum(), x)
    return grad


@all_sdes
def test_score_at_time_is_exact_marginal_score(sde):
    gen = torch.Generator().manual_seed(3)
    t = torch.linspace(sde.eps, sde.T, 16, dtype=F64)
    x = 2 * torch.randn(16, 2, generator=gen, dtype=F64)
    got = score_at_time(gaussian_ve_score, sde, x, t)
    assert torch.allclose(got, marginal_score_autograd(sde, x, t), rtol=1e-8, atol=1e-10)
    one_time = score_at_time(gaussian_ve_score, sde, x, 0.4)
    assert torch.allclose(
        one_time, marginal_score_autograd(sde, x, torch.full((16,), 0.4, dtype=F64))
    )


@all_sdes
def test_probability_flow_transports_gaussian_marginal(sde):
    # For p_t = N(m_t, v_t) in 1-D the flow velocity v(x, t) is affine in x, so the continuity
    # equation reduces to dm/dt = v(m_t, t) and dv/dt = 2 ∂ₓv · v_t.
    mu, c = 0.7, 0.3

    def score(x, sigma):
        return -(x - mu) / (c + sigma.reshape(-1, 1) ** 2)

    t = torch.linspace(0.05, 0.95, 10, dtype=F64, requires_grad=True)
    m = (sde.alpha(t) + 0 * t) * mu  # VE: α has no graph
    var = sde.alpha(t) ** 2 * c + sde.sigma(t) ** 2
    dm = torch.autograd.grad(m.sum(), t, retain_graph=True)[0]
    dvar = torch.autograd.grad(var.sum(), t)[0]
    t, m, var = t.detach(), m.detach(), var.detach()
    x = m.reshape(-1, 1).clone().requires_grad_(True)
    vel = sde.reverse_drift(x, t, score, probability_flow=True)
    (dvel_dx,) = torch.autograd.grad(vel.sum(), x)
    assert torch.allclose(vel[:, 0].detach(), dm, rtol=1e-9, atol=1e-12)
    assert torch.allclose(2 * dvel_dx[:, 0] * var, dvar, rtol=1e-9)
    # The reverse SDE drift carries the full g² term: their difference is ½ g² ∇log p_t.
    full = sde.reverse_drift(x.detach(), t, score)
    half_g2_score = 0.5 * sde.diffusion(t).reshape(-1, 1) ** 2 * score_at_time(score, sde, x, t)
    assert torch.allclose(vel.detach() - full, half_g2_score.detach(), rtol=1e-12)


# ---- prior ------------------------------------------------------------------------------------


@all_sdes
def test_prior_log_prob_and_sample(sde):
    gen = torch.Generator().manual_seed(4)
    x = sde.prior_sample((20000, 3), generator=gen, dtype=F64)
    assert x.shape == (20000, 3) and x.dtype == F64
    assert_gaussian_moments(x, 0.0, sde.prior_std())
    expect = scipy.stats.norm(scale=sde.prior_std()).logpdf(x[:5].numpy()).sum(axis=1)
    np.testing.assert_allclose(sde.prior_log_prob(x[:5]).numpy(), expect, rtol=1e-12)
    again = sde.prior_sample((20000, 3), generator=torch.Generator().manual_seed(4), dtype=F64)
    assert torch.equal(x, again)


def test_prior_std_is_terminal_marginal_std():
    assert VESDELambda(7.0).prior_std() == pytest.approx(float(VESDELambda(7.0).sigma(1.0)))
    assert VPSDE().prior_std() == 1.0 and SubVPSDE().prior_std() == 1.0
    assert float(VPSDE().sigma(1.0)) == pytest.approx(1.0, abs=1e-4)


# ---- dtype, shapes ------------------------------------------------------------------------------


@all_sdes
def test_dtype_and_shape_follow_inputs(sde):
    x = torch.randn(4, 1, 3, 3)
    mean, std = sde.marginal(x, torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64))
    assert mean.dtype == torch.float32 and mean.shape == x.shape and std.shape == (4,)
    assert torch.allclose(sde.drift(x, 0.5), sde.drift_coef(0.5).float() * x)
    assert sde.reverse_drift(x, 0.5, lambda y, s: -y).dtype == torch.float32
    assert sde.alpha(0.5).shape == () and sde.diffusion(torch.rand(7)).shape == (7,)


# ---- ladders ----------------------------------------------------------------------------------


def test_geometric_ladder():
    sigmas = geometric_sigmas(10, sigma_min=0.01, sigma_max=50.0)
    assert sigmas.shape == (10,) and sigmas.dtype == F64
    assert sigmas[0].item() == 50.0 and sigmas[-1].item() == 0.01
    ratios = sigmas[:-1] / sigmas[1:]
    assert torch.allclose(ratios, torch.full_like(ratios, (50.0 / 0.01) ** (1 / 9)), rtol=1e-12)
    # Seed 000 builds σ_min q^i ascending: the same set.
    q = (50.0 / 0.01) ** (1 / 9)
    assert torch.allclose(sigmas.flip(0), 0.01 * q ** torch.arange(10, dtype=F64), rtol=1e-12)
    with pytest.raises(TypeError):  # positional levels: the old orders differed, now refused
        geometric_sigmas(50.0, 0.01, 10)  # type: ignore[misc]
    with pytest.raises(TypeError):
        karras_sigmas(10, 0.01, 50.0)  # type: ignore[misc]
    assert geometric_sigmas(1, sigma_min=2.0, sigma_max=2.0).tolist() == [2.0]
    assert (
        geometric_sigmas(6, sigma_min=0.5, sigma_max=2.0, dtype=torch.float32).dtype
        == torch.float32
    )


def test_karras_ladder():
    sigmas = karras_sigmas(18, sigma_min=0.002, sigma_max=80.0)
    assert sigmas.shape == (18,) and sigmas[0].item() == 80.0 and sigmas[-1].item() == 0.002
    assert (sigmas[1:] < sigmas[:-1]).all()
    i = torch.arange(18, dtype=F64)
    hi, lo = 80.0 ** (1 / 7), 0.002 ** (1 / 7)
    assert torch.allclose(sigmas, (hi + i / 17 * (lo - hi)) ** 7, rtol=1e-12)
    assert torch.allclose(
        karras_sigmas(5, sigma_min=1.0, sigma_max=3.0, rho=1.0), torch.linspace(3, 1, 5, dtype=F64)
    )


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (
            lambda: geometric_sigmas(5, sigma_min=1.0, sigma_max=0.1),
            ValueError,
            "sigma_max must be >= sigma_min",
        ),
        (lambda: geometric_sigmas(5, sigma_min=-1.0, sigma_max=1.0), ValueError, "sigma_min"),
        (lambda: geometric_sigmas(0, sigma_min=0.1, sigma_max=1.0), ValueError, "n must be >= 1"),
        (
            lambda: geometric_sigmas(2.5, sigma_min=0.1, sigma_max=1.0),
            TypeError,
            "n must be an integer",
        ),
        (lambda: geometric_sigmas(1, sigma_min=0.1, sigma_max=1.0), ValueError, "n=1 needs"),
        (lambda: karras_sigmas(5, sigma_min=0.1, sigma_max=1.0, rho=0.0), ValueError, "rho"),
        (
            lambda: karras_sigmas(5, sigma_min=0.1, sigma_max="big"),
            TypeError,
            "sigma_max must be a number",
        ),
        (lambda: VESDELambda(lam=1.0), ValueError, "lam must be > 1"),
        (lambda: VESDE(sigma_min=1.0, sigma_max=1.0), ValueError, "sigma_max must be > sigma_min"),
        (lambda: VPSDE(beta_min=2.0, beta_max=1.0), ValueError, "beta_max must be >= beta_min"),
        (lambda: SubVPSDE(beta_min=-0.1), ValueError, "beta_min"),
        (lambda: VPSDE(eps=1.0), ValueError, "eps must be < T"),
        (lambda: VPSDE().alpha(-0.1), ValueError, "t must be finite and >= 0"),
        (lambda: VPSDE().t_from_noise(float("nan")), ValueError, "sigma_tilde"),
        (lambda: VPSDE().drift(torch.ones(3, 2), torch.ones(4)), ValueError, r"shape \(B,\)"),
        (lambda: VPSDE().transition(torch.ones(2, 1), 0.5, 0.5), ValueError, "s < t"),
        (lambda: get_sde("vpp"), ValueError, "subvp, ve, ve-lambda, vp"),
    ],
)
def test_validation_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_get_sde_builds_each_named_sde():
    assert set(SDES) == {"ve-lambda", "ve", "vp", "subvp"}
    assert get_sde("ve-lambda", lam=5.0) == VESDELambda(lam=5.0)
    assert get_sde("vp").eps == 1e-3 and get_sde("ve").eps == 1e-5
    assert isinstance(get_sde("subvp", beta_max=10.0), SubVPSDE)
