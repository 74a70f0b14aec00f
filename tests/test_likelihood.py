"""Probability-flow log-likelihoods against exact log-densities; bits-per-dim arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from scorelab.samplers import LikelihoodResult, bits_per_dim, log_likelihood
from scorelab.sde import VESDE, VPSDE, VESDELambda
from scorelab.targets import Gaussian, mixture_2d

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def gauss() -> Gaussian:
    return Gaussian(torch.tensor([1.0, -2.0]), torch.tensor([[2.0, 0.6], [0.6, 0.5]]))


def exact_prior(target, sde):
    """log p_T of the exact noised target, the law of α_T x0 + σ_T z."""
    alpha, sigma = float(sde.alpha(sde.T)), float(sde.sigma(sde.T))
    noised = target.noised(sigma, alpha)
    return noised.log_prob


@pytest.mark.parametrize("sde", [VESDELambda(25.0), VPSDE()], ids=["ve-lambda", "vp"])
def test_gaussian_log_likelihood_with_exact_prior(gauss: Gaussian, sde) -> None:
    x = gauss.sample(64, gen(0), dtype=F64)
    res = log_likelihood(gauss.noised_score, x, sde, prior_log_prob=exact_prior(gauss, sde))
    assert isinstance(res, LikelihoodResult) and res.log_prob.shape == (64,)
    err = (res.log_prob - gauss.log_prob(x)).abs()
    assert err.max() < 1e-2, err.max()
    torch.testing.assert_close(res.log_prob, res.prior_term + res.delta_logp)
    assert res.latent.shape == x.shape and res.n_evals > 10


def test_mixture_log_likelihood_exact_and_gaussian_prior() -> None:
    """Seed 004 mixture: exact prior gives the exact density; N(0, σ_T²) misses by the prior gap."""
    target, sde = mixture_2d(), VESDELambda(25.0)
    x = target.sample(64, gen(1), dtype=F64)
    exact = target.log_prob(x)
    res = log_likelihood(target.noised_score, x, sde, prior_log_prob=exact_prior(target, sde))
    assert (res.log_prob - exact).abs().mean() < 1e-2
    # Swapping the prior afterwards: the usual Gaussian prior at the same latent points.
    gaussian_prior = res.delta_logp + sde.prior_log_prob(res.latent)
    gap = (gaussian_prior - exact).abs().mean()
    assert 0.02 < gap < 0.5, gap  # the data's mean (1, 0) is not 0: N(0, σ_T²I) is off


def test_hutchinson_is_unbiased_around_the_exact_divergence(gauss: Gaussian) -> None:
    """One point repeated: each row gets its own Rademacher probe; the mean hits the truth."""
    sde = VESDE(sigma_min=0.01, sigma_max=20.0)
    x = torch.tensor([[0.5, -1.5]], dtype=F64).repeat(256, 1)
    res = log_likelihood(
        gauss.noised_score,
        x,
        sde,
        divergence="hutchinson",
        n_probes=1,
        generator=gen(3),
        prior_log_prob=exact_prior(gauss, sde),
        rtol=1e-4,
        atol=1e-4,
    )
    exact = float(gauss.log_prob(x[:1]))
    lp = res.log_prob
    assert lp.std() > 1e-3  # the probes really vary
    assert abs(float(lp.mean()) - exact) < 4 * float(lp.std()) / math.sqrt(len(lp)) + 1e-3


def test_auto_divergence_picks_exact_in_low_dimension(gauss: Gaussian) -> None:
    sde = VESDE(sigma_min=0.01, sigma_max=20.0)
    x = gauss.sample(4, gen(0), dtype=F64)
    a = log_likelihood(gauss.noised_score, x, sde, divergence="auto", generator=gen(0))
    b = log_likelihood(gauss.noised_score, x, sde, divergence="exact")
    torch.testing.assert_close(a.log_prob, b.log_prob)


def test_likelihood_invalid_options(gauss: Gaussian) -> None:
    x = torch.zeros(2, 2, dtype=F64)
    sde = VESDE()
    with pytest.raises(ValueError, match="divergence"):
        log_likelihood(gauss.noised_score, x, sde, divergence="trace")
    with pytest.raises(ValueError, match="t_end"):
        log_likelihood(gauss.noised_score, x, sde, t_end=5.0)
    with pytest.raises(ValueError, match="method"):
        log_likelihood(gauss.noised_score, x, sde, method="euler")
    with pytest.raises(ValueError, match="rtol"):
        log_likelihood(gauss.noised_score, x, sde, rtol=-1.0)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        log_likelihood(gauss.noised_score, x, sde, prior_log_prob=lambda y: y)


def test_bits_per_dim_arithmetic() -> None:
    d = 784
    # A uniform density on [-1, 1]^D: log p = −D ln 2. Quantised to 8 bits it is uniform over
    # 256 values per dimension, i.e. exactly 8 bits per dimension.
    uniform = torch.tensor([-d * math.log(2.0)])
    assert float(bits_per_dim(uniform, d)) == pytest.approx(8.0)
    # The same on [0, 1]^D has log p = 0 and is again 8 bits.
    assert float(bits_per_dim(torch.zeros(1), d, data_range=(0.0, 1.0))) == pytest.approx(8.0)
    # Without quantisation: −log p / (D ln 2).
    lp = torch.tensor([-3.0 * d * math.log(2.0)])
    assert float(bits_per_dim(lp, d, n_bits=None)) == pytest.approx(3.0)
    assert float(bits_per_dim(lp, d)) == pytest.approx(3.0 + 7.0)  # + log2(128)
    with pytest.raises(ValueError, match="data_range"):
        bits_per_dim(lp, d, data_range=(1.0, 1.0))
