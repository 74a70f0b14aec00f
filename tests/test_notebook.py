"""The seeds' notebook API (``scorelab.notebook``) against the seeds' test cells and exact answers.

- Seed 000/004 test cells are reproduced (same assertions, our code).
- Each shell is checked to compute what the core computes (same generator, same numbers).
- Exact references: the Gaussian score −Σ⁻¹x; the unadjusted Langevin stationary covariance for a
  Gaussian target (per precision eigenvalue λ: 1/(λ(1 − τλ/4)) in the η/τ form); score ascent on
  a Gaussian, x_k = (I − εP)^k x₀; mixture densities from scipy; σ_t² = (λ^{2t} − 1)/(2 ln λ).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import softmax
from scipy.stats import multivariate_normal
from torch import nn

from scorelab.data.toy import moons
from scorelab.losses import continuous_dsm_loss, dsm_loss, multilevel_dsm_loss
from scorelab.models import TimeConditioned
from scorelab.notebook import (
    AntiCorrelatedGaussian,
    ConditionedSimpleResnet,
    DenoisingScoreMatcher,
    GaussianFourierProjection,
    GaussianMixture,
    NoiseConditionedScoreNetwork,
    ScoreModel_Time,
    ScoreNet,
    denoising_score_matching,
    diffuse_gmm,
    langevin_sampler,
    loss_fn,
    reverse_diffusion_SDE_sampling,
    reverse_diffusion_SDE_sampling_gmm,
    sample_simple,
    sigma_t,
    sigma_t_square,
    train_model,
)
from scorelab.sde import VESDELambda
from scorelab.training import TrainingDivergedError
from scorelab.utils import sum_except_batch

SIGMA_AC = np.array([[1.0, -0.7], [-0.7, 1.0]])
MUS = [np.array([0.0, 1.0]), np.array([2.0, -1.0])]
COVS = [np.eye(2), np.array([[2.0, 0.5], [0.5, 1.0]])]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def seed_gmm(weights=(1.0, 1.0)) -> GaussianMixture:
    return GaussianMixture([m.copy() for m in MUS], [c.copy() for c in COVS], list(weights))


def scipy_pdf(x: np.ndarray, mus, covs, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    return sum(wk * multivariate_normal(m, c).pdf(x) for wk, m, c in zip(w, mus, covs, strict=True))


class NegIdentity(nn.Module):
    """Exact score −x of N(0, I), a parameter-free module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -x


class LevelMLP(nn.Module):
    """A small level-conditioned score MLP ``forward(x, level_index)`` for 2-D data."""

    def __init__(self, n_levels: int, hidden: int = 32) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_levels, 8)
        self.net = nn.Sequential(nn.Linear(10, hidden), nn.SiLU(), nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.embedding(y)], dim=1))


# ------------------------------------------------------------------------------------------------
# Seed 000: the notebook's own test cells, reproduced.
# ------------------------------------------------------------------------------------------------


def test_seed_cell_denoiser_score_matcher():
    matcher = DenoisingScoreMatcher(score_model=nn.Linear(2, 2), input_shape=(2,), sigma=0.1)
    x = torch.rand(16, 2)
    assert x.size() == matcher(x).size()
    assert matcher.loss(x)["total_loss"].ndim == 0
    assert list(matcher.sample(4).size()) == [4, 2]


def test_seed_cell_conditioned_resnet():
    model = ConditionedSimpleResnet(
        in_channels=1, out_channels=1, n_filters=16, n_blocks=1, num_embeddings=2
    )
    x = torch.rand((1, 1, 28, 28))
    out0 = model(x, torch.zeros(1, dtype=torch.long))
    out1 = model(x, torch.ones(1, dtype=torch.long))
    assert out0.shape == x.shape
    assert not np.allclose(out0.detach().numpy(), out1.detach().numpy())


class DummyConditionedMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.layer(x) + y.view(-1, 1)


@pytest.mark.filterwarnings("ignore:annealed_langevin")  # the seed's eps=0.1 exceeds 2·σ²
def test_seed_cell_ncsn():
    ncsn = NoiseConditionedScoreNetwork(
        score_model=DummyConditionedMLP(), input_shape=(2,), sigmas=[0.1]
    )
    x = torch.rand(16, 2)
    assert x.size() == ncsn(x).size()
    assert ncsn.loss(x)["total_loss"].ndim == 0
    assert list(ncsn.sample(4).size()) == [4, 2]


# ------------------------------------------------------------------------------------------------
# Seed 000: the shells compute what the core computes.
# ------------------------------------------------------------------------------------------------


def test_dsm_matcher_forward_is_core_dsm_loss_per_element():
    score_model = nn.Linear(2, 2)
    matcher = DenoisingScoreMatcher(score_model, input_shape=(2,), sigma=0.3)
    x = moons(32, seed=1)
    per_element = matcher(x, generator=gen(5))
    core = dsm_loss(score_model, x, 0.3, gen(5), conditional=False)
    torch.testing.assert_close(0.5 * sum_except_batch(per_element), core)
    loss = matcher.loss(x, generator=gen(5))["total_loss"]
    torch.testing.assert_close(loss, per_element.mean(dim=0).sum())


def test_ncsn_sorts_levels_and_forward_is_core_multilevel_loss():
    net = LevelMLP(3)
    ncsn = NoiseConditionedScoreNetwork(net, input_shape=(2,), sigmas=[0.1, 1.0, 0.3])
    torch.testing.assert_close(ncsn.sigmas, torch.tensor([1.0, 0.3, 0.1]))
    x = moons(64, seed=2)
    per_element = ncsn(x, generator=gen(3))
    assert per_element.shape == x.shape
    core = multilevel_dsm_loss(
        ncsn.score_fn(), x, ncsn.sigmas, weighting="seed000", mode="random", generator=gen(3)
    )
    torch.testing.assert_close(0.5 * sum_except_batch(per_element), core)


def test_ncsn_rejects_bad_sigmas_and_shapes():
    with pytest.raises(ValueError, match="sigmas"):
        NoiseConditionedScoreNetwork(LevelMLP(1), input_shape=(2,), sigmas=[])
    with pytest.raises(ValueError, match="sigmas"):
        NoiseConditionedScoreNetwork(LevelMLP(2), input_shape=(2,), sigmas=[0.1, -1.0])
    ncsn = NoiseConditionedScoreNetwork(LevelMLP(1), input_shape=(2,), sigmas=[0.5])
    with pytest.raises(ValueError, match="input_shape"):
        ncsn(torch.zeros(4, 3))


def test_dsm_matcher_langevin_samples_the_ula_stationary_law():
    # Exact score of N(0, I): ULA in the η form is stationary at N(0, 1/(1 − η/4) I).
    matcher = DenoisingScoreMatcher(NegIdentity(), input_shape=(2,), sigma=0.1)
    x = matcher.sample(num_samples=4000, num_steps=300, eta=0.1, generator=gen(0))
    assert x.shape == (4000, 2)
    expected = 1.0 / (1.0 - 0.1 / 4.0)
    assert abs(float(x.var(dim=0).mean()) - expected) < 0.06
    assert float(x.mean(dim=0).abs().max()) < 0.06


def test_ncsn_annealed_langevin_ends_at_the_smallest_level():
    # Data N(0, I): the exact score at level σ is −x/(1 + σ²). With the levels mapped correctly
    # the chain ends near variance 1 + σ_min² = 1.01; a reversed mapping would end near 2.
    levels = torch.tensor([1.0, 0.1])

    class ExactLevelScore(nn.Module):
        def forward(self, x, index):
            return -x / (1.0 + levels[index].to(x.dtype)[:, None] ** 2)

    ncsn = NoiseConditionedScoreNetwork(ExactLevelScore(), input_shape=(2,), sigmas=[0.1, 1.0])
    x = ncsn.sample(num_samples=2000, num_steps=1000, eps=0.5, generator=gen(1))
    assert abs(float(x.var(dim=0).mean()) - 1.01) < 0.08


def _loss_after_training(model: nn.Module, x: torch.Tensor, steps: int = 60) -> tuple[float, float]:
    """The loss on fixed noise before and after ``steps`` Adam steps (fresh noise each step)."""

    def fixed_noise_loss() -> float:
        with torch.no_grad():
            return float(model.loss(x, generator=gen(7))["total_loss"])

    before = fixed_noise_loss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(steps):
        loss = model.loss(x, generator=gen(100 + i))["total_loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return before, fixed_noise_loss()


def test_dsm_matcher_loss_decreases_on_moons():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 64), nn.Softplus(), nn.Linear(64, 2))
    matcher = DenoisingScoreMatcher(net, input_shape=(2,), sigma=0.5)
    before, after = _loss_after_training(matcher, moons(256, seed=0))
    assert after < 0.8 * before


def test_ncsn_loss_decreases_on_moons():
    torch.manual_seed(0)
    ncsn = NoiseConditionedScoreNetwork(LevelMLP(3), input_shape=(2,), sigmas=[0.1, 0.3, 1.0])
    before, after = _loss_after_training(ncsn, moons(256, seed=0))
    assert after < 0.9 * before


# ------------------------------------------------------------------------------------------------
# Seed 001.
# ------------------------------------------------------------------------------------------------


def test_anticorrelated_score_is_minus_precision_times_x():
    dist = AntiCorrelatedGaussian()
    x = np.random.default_rng(0).normal(size=(50, 2)) * 3
    # atol 1e-6: the core preset builds Σ from float32 literals (-0.7 becomes -0.69999999).
    np.testing.assert_allclose(dist.score(x), -x @ np.linalg.inv(SIGMA_AC), atol=1e-6)
    grid = x.reshape(5, 10, 2)
    assert dist.score(grid).shape == (5, 10, 2)
    np.testing.assert_allclose(dist.cov, SIGMA_AC, rtol=1e-7)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 2\)"):
        dist.score(np.zeros((4, 3)))


def test_anticorrelated_samples_have_the_covariance():
    s = AntiCorrelatedGaussian().sample(20000, generator=gen(0))
    assert s.shape == (20000, 2) and s.dtype == np.float64
    np.testing.assert_allclose(np.cov(s.T), SIGMA_AC, atol=0.05)


@pytest.mark.filterwarnings("ignore::scorelab.notebook.LangevinNotMixedWarning")
def test_langevin_sampler_reaches_the_ula_stationary_covariance():
    tau = 0.2  # the slow direction (precision 0.59) forgets the start by e^-12 in 100 steps
    prec_eig, u = np.linalg.eigh(np.linalg.inv(SIGMA_AC))
    expected = u @ np.diag(1.0 / (prec_eig * (1.0 - tau * prec_eig / 4.0))) @ u.T
    dist = AntiCorrelatedGaussian()
    traj = langevin_sampler(dist.score, 4000, K=100, return_trajectory=True, tau=tau,
                            generator=gen(0))  # fmt: skip
    assert traj.shape == (4000, 2, 100)
    np.testing.assert_allclose(np.cov(traj[:, :, 0].T), 4 * np.eye(2), atol=0.4)  # 2·N(0, I)
    np.testing.assert_allclose(np.cov(traj[:, :, -1].T), expected, atol=0.15)
    small = langevin_sampler(dist.score, 50, K=10, return_trajectory=True, generator=gen(1))
    last = langevin_sampler(dist.score, 50, K=10, generator=gen(1))
    np.testing.assert_array_equal(last, small[:, :, -1])
    assert langevin_sampler(dist.score, 7).shape == (7, 2)  # the seed's defaults


def test_sample_simple_is_exact_score_ascent():
    # On N(0, Σ) score ascent is linear: x_k = (I − εP)^k x₀.
    prec = torch.linalg.inv(torch.tensor(SIGMA_AC))

    def score(x):
        return -x @ prec

    x0 = torch.tensor([1.5, 1.5], dtype=torch.float64)
    trail = sample_simple(score, x0, n_steps=20, eps=1e-2)
    assert trail.shape == (21, 2)
    step = torch.eye(2, dtype=torch.float64) - 1e-2 * prec
    expected = torch.stack([x0 @ torch.linalg.matrix_power(step, k) for k in range(21)])
    torch.testing.assert_close(trail, expected)
    assert sample_simple(ScoreNet(), torch.zeros(3, 2), n_steps=4).shape == (5, 3, 2)


def test_denoising_score_matching_is_mean_core_dsm_loss():
    net = ScoreNet()
    x = moons(64, seed=3)
    loss = denoising_score_matching(net, x, sigma=0.05, generator=gen(9))
    assert loss.ndim == 0 and loss.requires_grad
    core = dsm_loss(net, x, 0.05, gen(9), conditional=False).mean()
    torch.testing.assert_close(loss, core)


# ------------------------------------------------------------------------------------------------
# Seed 004: the Gaussian mixture.
# ------------------------------------------------------------------------------------------------


def test_gmm_pdf_matches_scipy_on_points_and_grids():
    gmm = seed_gmm((1.0, 3.0))
    pts = np.random.default_rng(1).normal(size=(40, 2)) * 2
    np.testing.assert_allclose(gmm.pdf(pts), scipy_pdf(pts, MUS, COVS, [1, 3]), rtol=1e-10)
    xx, yy = np.meshgrid(np.linspace(-3, 4, 7), np.linspace(-2, 3, 5))
    grid = np.dstack((xx, yy))
    assert gmm.pdf(grid).shape == (5, 7)
    np.testing.assert_allclose(gmm.pdf(grid), scipy_pdf(grid, MUS, COVS, [1, 3]), rtol=1e-10)
    prob, parts = gmm.pdf_decompose(grid)
    assert parts.shape == (2, 5, 7)
    np.testing.assert_allclose(parts.sum(axis=0), prob, rtol=1e-12)
    np.testing.assert_allclose(gmm.norm_weights, [0.25, 0.75])


def test_gmm_score_matches_the_gradient_of_log_pdf():
    gmm = seed_gmm((1.0, 2.0))
    pts = np.random.default_rng(2).normal(size=(20, 2)) * 2
    h = 1e-5
    grad = np.stack(
        [
            (np.log(gmm.pdf(pts + h * e)) - np.log(gmm.pdf(pts - h * e))) / (2 * h)
            for e in np.eye(2)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(gmm.score(pts), grad, atol=1e-6)


def test_gmm_score_is_finite_far_in_the_tails():
    gmm = seed_gmm()
    x = np.array([[1e3, 1e3], [-1e3, 5e2], [0.0, -1e3]])
    # The seed's pdf ratio: every component pdf underflows to 0, so 0/0.
    pdfs = np.stack(
        [multivariate_normal(m, c).pdf(x) for m, c in zip(MUS, COVS, strict=True)], axis=1
    )
    with np.errstate(invalid="ignore"):
        assert np.isnan(pdfs / pdfs.sum(axis=1, keepdims=True)).all()
    # Reference from log-densities: responsibilities by softmax of log w_k + log N_k.
    logs = np.stack(
        [multivariate_normal(m, c).logpdf(x) for m, c in zip(MUS, COVS, strict=True)], axis=1
    )
    resp = softmax(logs + np.log(0.5), axis=1)
    comp = [-(x - m) @ np.linalg.inv(c) for m, c in zip(MUS, COVS, strict=True)]
    expected = resp[:, :1] * comp[0] + resp[:, 1:] * comp[1]
    s = gmm.score(x)
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s, expected, rtol=1e-9)


def test_gmm_score_decompose_is_consistent():
    gmm = seed_gmm((2.0, 1.0))
    pts = np.random.default_rng(3).normal(size=(30, 2))
    scores, resp = gmm.score_decompose(pts)
    assert len(scores) == 2 and scores[0].shape == (30, 2) and resp.shape == (30, 2)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
    for k in range(2):
        np.testing.assert_allclose(scores[k], -(pts - MUS[k]) @ np.linalg.inv(COVS[k]))
    combined = resp[:, :1] * scores[0] + resp[:, 1:] * scores[1]
    np.testing.assert_allclose(combined, gmm.score(pts), rtol=1e-10)
    _, parts = gmm.pdf_decompose(pts)
    np.testing.assert_allclose(resp, (parts / parts.sum(axis=0)).T, rtol=1e-10)


def test_gmm_sample_returns_the_seed_tuple():
    gmm = seed_gmm((1.0, 3.0))
    samples, index, every = gmm.sample(4000, generator=gen(0))
    assert samples.shape == (4000, 2) and index.shape == (4000,) and every.shape == (2, 4000, 2)
    np.testing.assert_array_equal(samples, every[index, np.arange(4000)])
    assert abs(index.mean() - 0.75) < 0.03
    for k in range(2):
        np.testing.assert_allclose(every[k].mean(axis=0), MUS[k], atol=0.07)
        np.testing.assert_allclose(np.cov(every[k].T), COVS[k], atol=0.12)


def test_gmm_add_component_and_bad_input():
    gmm = seed_gmm()
    mu3, cov3 = np.array([-3.0, 0.0]), 0.5 * np.eye(2)
    gmm.add_component(mu3, cov3, weight=2)
    assert gmm.n_component == 3 and len(gmm.mus) == 3 and len(gmm.precs) == 3
    np.testing.assert_allclose(gmm.norm_weights, [0.25, 0.25, 0.5])
    pts = np.random.default_rng(4).normal(size=(10, 2))
    ref = scipy_pdf(pts, [*MUS, mu3], [*COVS, cov3], [1, 1, 2])
    np.testing.assert_allclose(gmm.pdf(pts), ref, rtol=1e-10)
    np.testing.assert_allclose(gmm.RVs[2].pdf(pts), multivariate_normal(mu3, cov3).pdf(pts))
    with pytest.raises(ValueError, match="one entry per component"):
        GaussianMixture(MUS, COVS, [1.0])
    with pytest.raises(ValueError, match="weights must be >= 0"):
        GaussianMixture(MUS, COVS, [1.0, -1.0])


def test_gmm_in_one_dimension_takes_scalar_batches():
    gmm = GaussianMixture([np.array([-3.0]), np.array([3.0])], [np.eye(1), np.eye(1)], [0.1, 0.9])
    x = np.linspace(-5, 5, 11)
    ref = 0.1 * multivariate_normal(-3.0, 1.0).pdf(x) + 0.9 * multivariate_normal(3.0, 1.0).pdf(x)
    np.testing.assert_allclose(gmm.pdf(x), ref, rtol=1e-10)
    assert gmm.score(x[:, None]).shape == (11, 1)


# ------------------------------------------------------------------------------------------------
# Seed 004: the VE SDE with g(t) = λ^t, diffusion of the mixture, reverse sampling.
# ------------------------------------------------------------------------------------------------


def test_sigma_t_square_formula_and_types():
    t = np.array([1e-6, 0.01, 0.3, 1.0])
    for lam in (2.0, 10.0, 25.0):
        expected = (lam ** (2 * t) - 1) / (2 * np.log(lam))
        np.testing.assert_allclose(sigma_t_square(t, lam), expected, rtol=1e-9)
        np.testing.assert_allclose(sigma_t(t, lam), np.sqrt(expected), rtol=1e-9)
    tt = torch.tensor([0.2, 0.7], dtype=torch.float32)
    out = sigma_t(tt, 10)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert float(sigma_t_square(0.5, 10)) == pytest.approx((10 - 1) / (2 * math.log(10)))
    with pytest.raises(ValueError, match="lam must be > 1"):
        sigma_t_square(0.5, 1.0)


def test_diffuse_gmm_adds_sigma_t_square_to_every_covariance():
    gmm = seed_gmm((1.0, 2.0))
    for t in (0.0, 0.3, 1.0):
        diffused = diffuse_gmm(gmm, t, 10)
        var = float(sigma_t_square(t, 10))
        for k in range(2):
            np.testing.assert_allclose(diffused.covs[k], COVS[k] + var * np.eye(2), rtol=1e-12)
            np.testing.assert_allclose(diffused.mus[k], MUS[k])
        np.testing.assert_allclose(diffused.norm_weights, gmm.norm_weights)
    assert diffused.pdf(np.zeros((1, 2)))[0] < gmm.pdf(np.zeros((1, 2)))[0]


def test_reverse_sde_with_exact_score_recovers_the_mixture_moments():
    # λ = 25 as in the seed: the prior N(0, σ_1² I), σ_1² ≈ 97, then hides the mixture's own
    # mean and covariance (with λ = 5, σ_1² ≈ 7.5 does not, and the samples are biased).
    gmm = seed_gmm()
    traj = reverse_diffusion_SDE_sampling_gmm(gmm, sampN=2000, Lambda=25, nsteps=100,
                                              generator=gen(0))  # fmt: skip
    assert traj.shape == (2000, 2, 100)
    start_var = float(sigma_t_square(1.0, 25))
    np.testing.assert_allclose(np.var(traj[:, :, 0], axis=0), start_var, rtol=0.1)
    x = traj[:, :, -1]
    mean = 0.5 * (MUS[0] + MUS[1])  # (1, 0)
    centred = np.stack(MUS) - mean
    cov = 0.5 * (COVS[0] + COVS[1]) + 0.5 * centred.T @ centred  # [[2.5, -0.75], [-0.75, 2]]
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=0.15)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.3)
    small = reverse_diffusion_SDE_sampling_gmm(gmm, 50, Lambda=25, nsteps=20, generator=gen(1))
    same = reverse_diffusion_SDE_sampling(gmm, 50, Lambda=25, nsteps=20, exact=True,
                                          generator=gen(1))  # fmt: skip
    np.testing.assert_array_equal(same, small)


def test_reverse_sde_with_a_network_has_the_seed_shape():
    model = ScoreModel_Time(sigma=25.0, generator=gen(0))
    traj = reverse_diffusion_SDE_sampling(model, sampN=50, Lambda=25, nsteps=30, generator=gen(1))
    assert traj.shape == (50, 2, 30) and np.isfinite(traj).all()
    with pytest.raises(TypeError, match="exact=True"):
        reverse_diffusion_SDE_sampling(model, exact=True)


# ------------------------------------------------------------------------------------------------
# Seed 004: the time-conditioned network and its loss.
# ------------------------------------------------------------------------------------------------


def test_seed_cell_loss_fn_is_zero_for_the_analytic_score_of_a_point_mass():
    def sigma_t_test(t):
        return sigma_t(t, Lambda=10)

    def score_analyt_test(x_t, t):
        return -x_t / sigma_t_test(t)[:, None] ** 2

    loss = loss_fn(score_analyt_test, torch.zeros(10, 2), sigma_t_test, eps=1e-3)
    assert torch.allclose(loss, torch.zeros(1))


def test_loss_fn_is_mean_core_continuous_dsm_loss():
    model = ScoreModel_Time(sigma=25.0, generator=gen(0))
    sde = VESDELambda(25.0)
    x = torch.randn(64, 2, generator=gen(1))
    loss = loss_fn(model, x, model.sigma_t_fun, eps=0.01, generator=gen(2))
    assert loss.ndim == 0 and loss.requires_grad
    core = continuous_dsm_loss(TimeConditioned(model, sde), x, sde, eps=0.01, generator=gen(2))
    torch.testing.assert_close(loss, core.mean(), rtol=1e-4, atol=1e-5)


def test_score_model_time_divides_by_sigma_t_and_learns():
    model = ScoreModel_Time(sigma=10.0, generator=gen(0))
    x, t = torch.randn(8, 2), torch.rand(8) * 0.9 + 0.1
    out = model(x, t)
    raw = model.net(torch.cat([x, model.embed(t)], dim=1))
    torch.testing.assert_close(out, raw / sigma_t(t, 10)[:, None])
    data = torch.randn(256, 2, generator=gen(3)) * 0.5 + 1.0
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    with torch.no_grad():
        before = float(loss_fn(model, data, model.sigma_t_fun, eps=0.01, generator=gen(4)))
    for i in range(40):
        loss = loss_fn(model, data, model.sigma_t_fun, eps=0.01, generator=gen(10 + i))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(loss_fn(model, data, model.sigma_t_fun, eps=0.01, generator=gen(4)))
    assert after < 0.9 * before


def test_gaussian_fourier_projection():
    proj = GaussianFourierProjection(10, scale=30.0)
    t = torch.rand(6)
    f = proj(t)
    assert f.shape == (6, 10)
    torch.testing.assert_close(f[:, :5] ** 2 + f[:, 5:] ** 2, torch.ones(6, 5))
    assert list(proj.parameters()) == []  # the frequencies are fixed, not trained


# ------------------------------------------------------------------------------------------------
# train_model (the seed 000 protocol).
# ------------------------------------------------------------------------------------------------


def _loaders(x: torch.Tensor, batch_size: int):
    n_train = int(0.75 * len(x))
    train = torch.utils.data.DataLoader(x[:n_train], batch_size=batch_size, shuffle=True)
    test = torch.utils.data.DataLoader(x[n_train:], batch_size=batch_size)
    return train, test


def test_train_model_histories_and_point_previews(tmp_path):
    torch.manual_seed(0)
    x = moons(128, seed=0)
    train_loader, test_loader = _loaders(x, 32)  # 3 training batches per epoch
    net = nn.Sequential(nn.Linear(2, 32), nn.Softplus(), nn.Linear(32, 2))
    matcher = DenoisingScoreMatcher(net, input_shape=(2,), sigma=0.2)
    opt = torch.optim.Adam(matcher.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    train_losses, test_losses = train_model(
        matcher, train_loader, test_loader, epochs=2, optimizer=opt, scheduler=sched,
        n_samples=64, out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert len(train_losses["total_loss"]) == 6 and len(test_losses["total_loss"]) == 2
    assert all(math.isfinite(v) for v in train_losses["total_loss"] + test_losses["total_loss"])
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**6)  # stepped per batch
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["losses.png", "samples_epoch_001.png", "samples_epoch_002.png"]
    assert all((tmp_path / n).read_bytes()[:4] == b"\x89PNG" for n in names)


class QuickNCSN(NoiseConditionedScoreNetwork):
    """Previews from 5 Langevin steps per level (train_model calls ``sample(n)``)."""

    def sample(self, num_samples: int = 64, num_steps: int = 5, eps: float = 0.01, **kwargs):
        return super().sample(num_samples, num_steps, eps, **kwargs)


def test_train_model_image_previews_and_errors(tmp_path):
    torch.manual_seed(0)
    images = torch.rand(12, 1, 8, 8) * 2 - 1
    labels = torch.zeros(12, dtype=torch.long)
    data = torch.utils.data.TensorDataset(images, labels)  # (x, y) batches, as MNIST loaders give
    loader = torch.utils.data.DataLoader(data, batch_size=6)
    net = ConditionedSimpleResnet(1, 1, n_filters=4, n_blocks=1, num_embeddings=2)
    ncsn = QuickNCSN(net, input_shape=(1, 8, 8), sigmas=[0.5, 0.1])
    opt = torch.optim.Adam(ncsn.parameters(), lr=1e-3)
    train_losses, test_losses = train_model(
        ncsn, loader, loader, epochs=1, optimizer=opt, n_samples=4, out_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    assert len(train_losses["total_loss"]) == 2 and len(test_losses["total_loss"]) == 1
    assert (tmp_path / "samples_epoch_001.png").is_file()
    with pytest.raises(ValueError, match="loss_key='nll'"):
        train_model(ncsn, loader, None, 1, opt, loss_key="nll", progress=False)
    bad = torch.optim.SGD(ncsn.parameters(), lr=1e30)
    with pytest.raises(TrainingDivergedError, match="learning rate"):
        train_model(ncsn, loader, None, 3, bad, progress=False)
