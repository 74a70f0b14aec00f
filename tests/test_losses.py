"""Score-matching losses against closed-form answers for a Gaussian N(m, C).

For X ~ N(m, C) the noised law is N(m, C + σ²I), whose score s*(x, σ) = −P_σ (x − m) with
P_σ = (C + σ²I)⁻¹ is exact. Expected losses are then known:
- DSM: E ½‖s* + z/σ‖² = ½ (D/σ² − tr P_σ), since E[s*·z] = σ E[div s*] = −σ tr P_σ (Stein) and
  E‖s*‖² = tr P_σ (Fisher information).
- ISM/SSM: E[½‖s*‖² + tr ∇s*] = ½ tr P − tr P = −½ tr P.
- Perturbing the score by δ v(x) raises each expected loss by exactly ½ δ² E‖v‖² (DSM: the cross
  term has mean zero; ISM: E[v·s*] = −E[div v] by parts), so the exact score is the minimum.
Monte-Carlo estimates are compared with a tolerance of 5 standard errors of the same samples.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate
from torch import nn

from scorelab.losses import (
    continuous_dsm_loss,
    dsm_loss,
    implicit_score_matching_loss,
    multilevel_dsm_loss,
    sliced_score_matching_loss,
)
from scorelab.sde import VPSDE, VESDELambda

DT = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids oversubscribing a shared CPU (restored after)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


D = 3
M = torch.tensor([0.5, -1.0, 0.2], dtype=DT)
_A = torch.tensor([[1.0, 0.3, 0.0], [-0.4, 0.8, 0.2], [0.1, 0.0, 0.5]], dtype=DT)
C = _A @ _A.T + 0.2 * torch.eye(D, dtype=DT)
# A fixed affine perturbation direction v(x) = K x + b.
K = torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.4, 0.2], [-0.1, 0.1, -0.3]], dtype=DT)
BVEC = torch.tensor([0.2, -0.1, 0.3], dtype=DT)


EIG, U = torch.linalg.eigh(C)


def precision(sigma: torch.Tensor) -> torch.Tensor:
    """(C + σ²I)⁻¹ for each σ in a (B,) tensor: (B, D, D)."""
    eye = torch.eye(D, dtype=DT)
    return torch.linalg.inv(C[None] + sigma.to(DT)[:, None, None] ** 2 * eye)


def noised_score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact score of N(m, C + σ²I), x (B, D), σ (B,): −U diag(1/(λ + σ²)) Uᵀ (x − m)."""
    return -(((x - M) @ U) / (EIG + sigma[:, None] ** 2)) @ U.T


def clean_score(x: torch.Tensor) -> torch.Tensor:
    return -(x - M) @ torch.linalg.inv(C)  # C symmetric


def perturb(score, delta: float):
    """score + δ (K x + b), for a conditional (x, σ) or clean (x) score."""

    def perturbed(x, *sigma):
        return score(x, *sigma) + delta * (x @ K.T + BVEC)

    return perturbed


def expected_sq_norm_v(cov: torch.Tensor) -> float:
    """E‖K x + b‖² for x ~ N(m, cov)."""
    mean = K @ M + BVEC
    return float(mean @ mean + torch.trace(K @ cov @ K.T))


def sample_data(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return M + torch.randn(n, D, generator=g, dtype=DT) @ torch.linalg.cholesky(C).T


def assert_mean_close(values: torch.Tensor, expected: float, n_se: float = 5.0) -> None:
    values = values.detach()
    se = float(values.std() / math.sqrt(values.numel()))
    assert abs(float(values.mean()) - expected) < n_se * se + 1e-12, (
        float(values.mean()),
        expected,
        se,
    )


def dsm_minimum(sigma: float) -> float:
    """½ (D/σ² − tr (C + σ²I)⁻¹): the expected DSM loss of the exact score."""
    return 0.5 * (D / sigma**2 - float(torch.trace(precision(torch.tensor([sigma], dtype=DT))[0])))


# ---- single-level DSM ------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.3, 1.5])
def test_dsm_exact_score_attains_closed_form_minimum(sigma: float) -> None:
    x0 = sample_data(40_000, seed=1)
    loss = dsm_loss(noised_score, x0, sigma, generator=torch.Generator().manual_seed(2))
    assert loss.shape == (40_000,) and loss.dtype == DT
    assert_mean_close(loss, dsm_minimum(sigma))


@pytest.mark.parametrize("delta", [-0.3, 0.1, 0.3])
def test_dsm_perturbed_score_costs_half_delta_squared(delta: float) -> None:
    sigma = 0.5
    x0 = sample_data(20_000, seed=3)
    exact = dsm_loss(noised_score, x0, sigma, generator=torch.Generator().manual_seed(4))
    worse = dsm_loss(perturb(noised_score, delta), x0, sigma, torch.Generator().manual_seed(4))
    gap = 0.5 * delta**2 * expected_sq_norm_v(C + sigma**2 * torch.eye(D, dtype=DT))
    assert float((worse - exact).mean()) > 0.5 * gap
    assert_mean_close(worse - exact, gap)


def test_dsm_clean_form_matches_conditional_form() -> None:
    x0 = sample_data(64, seed=5)
    sigma = torch.full((64,), 0.4, dtype=DT)

    def fixed(x):  # a score of x alone, frozen at σ = 0.4
        return noised_score(x, sigma)

    a = dsm_loss(noised_score, x0, 0.4, torch.Generator().manual_seed(6))
    b = dsm_loss(fixed, x0, 0.4, torch.Generator().manual_seed(6), conditional=False)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_dsm_refuses_score_of_wrong_shape() -> None:
    x0 = sample_data(8, seed=0)
    with pytest.raises(ValueError, match="shape of x"):
        dsm_loss(lambda x, s: x.sum(1), x0, 0.5)
    with pytest.raises(ValueError, match="sigma"):
        dsm_loss(noised_score, x0, -1.0)


# ---- multi-level DSM -------------------------------------------------------------------------

SIGMAS = [2.0, 1.0, 0.5, 0.25]


def multilevel_minimum(weights: list[float]) -> float:
    return sum(w * dsm_minimum(s) for w, s in zip(weights, SIGMAS, strict=True)) / len(SIGMAS)


@pytest.mark.parametrize("mode", ["random", "sum"])
def test_multilevel_exact_score_attains_minimum(mode: str) -> None:
    x0 = sample_data(20_000, seed=7)
    g = torch.Generator().manual_seed(8)
    loss = multilevel_dsm_loss(noised_score, x0, SIGMAS, mode=mode, generator=g)
    assert loss.shape == (20_000,)
    assert_mean_close(loss, multilevel_minimum([s**2 for s in SIGMAS]))


@pytest.mark.parametrize("delta", [-0.2, 0.2])
def test_multilevel_perturbed_score_is_worse(delta: float) -> None:
    x0 = sample_data(20_000, seed=9)
    exact = multilevel_dsm_loss(
        noised_score, x0, SIGMAS, mode="sum", generator=torch.Generator().manual_seed(10)
    )
    worse = multilevel_dsm_loss(
        perturb(noised_score, delta),
        x0,
        SIGMAS,
        mode="sum",
        generator=torch.Generator().manual_seed(10),
    )
    eye = torch.eye(D, dtype=DT)
    gap = sum(0.5 * delta**2 * s**2 * expected_sq_norm_v(C + s**2 * eye) for s in SIGMAS) / 4
    assert float((worse - exact).mean()) > 0.5 * gap
    assert_mean_close(worse - exact, gap)


def test_multilevel_weightings_and_single_level_consistency() -> None:
    x0 = sample_data(32, seed=11)
    kw = {"mode": "random"}
    a = multilevel_dsm_loss(
        noised_score, x0, SIGMAS, generator=torch.Generator().manual_seed(1), **kw
    )
    b = multilevel_dsm_loss(
        noised_score,
        x0,
        SIGMAS,
        weighting="seed000",
        generator=torch.Generator().manual_seed(1),
        **kw,
    )
    torch.testing.assert_close(b * max(SIGMAS) ** 2, a)
    # One level, no weight, summed: exactly the single-σ DSM with the same noise.
    one = multilevel_dsm_loss(
        noised_score,
        x0,
        [0.7],
        weighting="none",
        mode="sum",
        generator=torch.Generator().manual_seed(2),
    )
    torch.testing.assert_close(
        one, dsm_loss(noised_score, x0, 0.7, torch.Generator().manual_seed(2))
    )


def test_multilevel_bad_options() -> None:
    x0 = sample_data(4, seed=0)
    with pytest.raises(ValueError, match="mode"):
        multilevel_dsm_loss(noised_score, x0, SIGMAS, mode="all")
    with pytest.raises(ValueError, match="weighting"):
        multilevel_dsm_loss(noised_score, x0, SIGMAS, weighting="sigma")
    with pytest.raises(ValueError, match="sigmas"):
        multilevel_dsm_loss(noised_score, x0, [1.0, 0.0])


# ---- continuous-time DSM ---------------------------------------------------------------------


def point_mass_score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Exact VE score of δ₀ ∗ N(0, σ²I)."""
    return -x / sigma[:, None] ** 2


@pytest.mark.parametrize("likelihood_weighting", [False, True])
@pytest.mark.parametrize("kind", ["ve-lambda", "vp"])
def test_continuous_dsm_zero_for_point_mass(kind: str, likelihood_weighting: bool) -> None:
    sde = VESDELambda(lam=10.0) if kind == "ve-lambda" else VPSDE()
    x0 = torch.zeros(10, 2, dtype=DT)
    loss = continuous_dsm_loss(
        point_mass_score,
        x0,
        sde,
        eps=1e-3,
        likelihood_weighting=likelihood_weighting,
        generator=torch.Generator().manual_seed(0),
    )
    assert loss.shape == (10,)
    torch.testing.assert_close(loss, torch.zeros(10, dtype=DT), rtol=0, atol=1e-10)


def test_continuous_dsm_gaussian_matches_time_integral() -> None:
    """E over t ~ U[eps, 1] of D − σ_t² tr (C + σ_t²I)⁻¹ for the VE SDE g(t) = λ^t (seed 004)."""
    sde = VESDELambda(lam=5.0)
    eps = 1e-3
    eig = torch.linalg.eigvalsh(C).tolist()

    def integrand(t: float) -> float:
        var = float(sde.sigma(torch.tensor(t, dtype=DT))) ** 2
        return D - sum(var / (c + var) for c in eig)

    expected = integrate.quad(integrand, eps, 1.0)[0] / (1.0 - eps)
    x0 = sample_data(20_000, seed=12)
    loss = continuous_dsm_loss(
        noised_score, x0, sde, eps=eps, generator=torch.Generator().manual_seed(13)
    )
    assert_mean_close(loss, expected)


# ---- implicit score matching -----------------------------------------------------------------


def test_ism_exact_trace_is_exact_for_gaussian() -> None:
    x = sample_data(100, seed=14)
    prec = torch.linalg.inv(C)
    expected = 0.5 * (x - M).matmul(prec).square().sum(1) - torch.trace(prec)
    torch.testing.assert_close(implicit_score_matching_loss(clean_score, x), expected)
    # With a noise level the score is score_fn(x, sigma).
    p = precision(torch.tensor([0.6], dtype=DT))[0]
    expected = 0.5 * (x - M).matmul(p).square().sum(1) - torch.trace(p)
    torch.testing.assert_close(implicit_score_matching_loss(noised_score, x, sigma=0.6), expected)


@pytest.mark.parametrize("delta", [-0.3, 0.1])
def test_ism_perturbed_score_is_worse(delta: float) -> None:
    x = sample_data(10_000, seed=15)
    with torch.no_grad():  # values only: no graph for the network parameters is needed
        exact = implicit_score_matching_loss(clean_score, x)
        worse = implicit_score_matching_loss(perturb(clean_score, delta), x)
    assert_mean_close(exact, -0.5 * float(torch.trace(torch.linalg.inv(C))))
    gap = 0.5 * delta**2 * expected_sq_norm_v(C)
    assert float((worse - exact).mean()) > 0.5 * gap
    assert_mean_close(worse - exact, gap)


def tanh_net(dim: int) -> nn.Module:
    torch.manual_seed(0)  # fixed weights for the test network (not library code)
    return nn.Sequential(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, dim)).to(DT)


def test_ism_hutchinson_agrees_with_exact_in_expectation() -> None:
    net = tanh_net(4)
    x = torch.randn(2000, 4, generator=torch.Generator().manual_seed(16), dtype=DT)
    exact = implicit_score_matching_loss(net, x, method="exact")
    g = torch.Generator().manual_seed(17)
    hutch = implicit_score_matching_loss(net, x, method="hutchinson", n_probes=2, generator=g)
    assert not torch.allclose(hutch, exact)  # a real estimate, not the exact trace
    assert_mean_close(hutch - exact, 0.0)


def test_ism_auto_picks_by_dimension() -> None:
    small = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=DT)
    net = tanh_net(2)
    torch.testing.assert_close(
        implicit_score_matching_loss(net, small, method="auto"),
        implicit_score_matching_loss(net, small, method="exact"),
    )
    big = torch.randn(8, 20, generator=torch.Generator().manual_seed(0), dtype=DT)
    net = tanh_net(20)
    auto = implicit_score_matching_loss(
        net, big, method="auto", generator=torch.Generator().manual_seed(1)
    )
    hutch = implicit_score_matching_loss(
        net, big, method="hutchinson", generator=torch.Generator().manual_seed(1)
    )
    torch.testing.assert_close(auto, hutch)


def test_ism_under_no_grad_equals_with_grad() -> None:
    net = tanh_net(3)
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(18), dtype=DT)
    with_grad = implicit_score_matching_loss(net, x)
    assert with_grad.requires_grad
    with torch.no_grad():
        no_grad = implicit_score_matching_loss(net, x)
        sliced = sliced_score_matching_loss(net, x, generator=torch.Generator().manual_seed(0))
    assert not no_grad.requires_grad and torch.isfinite(no_grad).all()
    assert torch.isfinite(sliced).all()
    torch.testing.assert_close(no_grad, with_grad.detach())


def test_ism_gradient_includes_trace_term() -> None:
    """For s(x) = W x, d/dW mean(½‖Wx‖² + tr W) = mean((Wx) xᵀ) + I: needs create_graph."""
    lin = nn.Linear(3, 3, bias=False).to(DT)
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(19), dtype=DT)
    implicit_score_matching_loss(lin, x).mean().backward()
    w = lin.weight.detach()
    expected = (x @ w.T).T @ x / 50 + torch.eye(3, dtype=DT)
    torch.testing.assert_close(lin.weight.grad, expected)


def test_ism_bad_method() -> None:
    with pytest.raises(ValueError, match="method"):
        implicit_score_matching_loss(clean_score, sample_data(4, 0), method="jacobian")


# ---- sliced score matching -------------------------------------------------------------------


@pytest.mark.parametrize("variance_reduction", [False, True])
@pytest.mark.parametrize("projection", ["gaussian", "rademacher"])
def test_ssm_exact_score_expectation_and_minimum(projection: str, variance_reduction: bool) -> None:
    x = sample_data(10_000, seed=20)
    kw = {"projection": projection, "variance_reduction": variance_reduction}
    with torch.no_grad():
        exact = sliced_score_matching_loss(
            clean_score, x, generator=torch.Generator().manual_seed(21), **kw
        )
    assert_mean_close(exact, -0.5 * float(torch.trace(torch.linalg.inv(C))))
    for delta in (-0.3, 0.3):
        with torch.no_grad():
            worse = sliced_score_matching_loss(
                perturb(clean_score, delta), x, generator=torch.Generator().manual_seed(21), **kw
            )
        gap = 0.5 * delta**2 * expected_sq_norm_v(C)
        assert float((worse - exact).mean()) > 0.5 * gap
        assert_mean_close(worse - exact, gap)


def test_ssm_matches_ism_for_a_network_in_expectation() -> None:
    net = tanh_net(3)
    x = torch.randn(2000, 3, generator=torch.Generator().manual_seed(22), dtype=DT)
    with torch.no_grad():
        ism = implicit_score_matching_loss(net, x)
        ssm = sliced_score_matching_loss(
            net, x, n_projections=2, generator=torch.Generator().manual_seed(23)
        )
    assert_mean_close(ssm - ism, 0.0)
    with pytest.raises(ValueError, match="projection"):
        sliced_score_matching_loss(net, x, projection="sphere")
