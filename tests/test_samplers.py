"""Samplers against exact answers: ULA's stationary law, exact Gaussian flow maps, mode weights."""

from __future__ import annotations

import math

import pytest
import torch
from exact_gaussian import F64, exact_denoise, exact_flow

from scorelab.samplers import (
    DivergenceError,
    SampleResult,
    annealed_langevin,
    dpmpp_2m,
    dpmpp_2m_sde,
    dpmpp_3m,
    edm_euler,
    edm_heun,
    edm_stochastic,
    langevin,
    moment_matched_prior,
    predictor_corrector,
    probability_flow,
    reverse_sde,
    score_ascent,
)
from scorelab.sde import VESDE, VPSDE, VESDELambda, geometric_sigmas, karras_sigmas
from scorelab.targets import Gaussian, anticorrelated, mixture_1d


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def gauss() -> Gaussian:
    """A 2-D Gaussian with a nonzero mean and unequal, correlated variances."""
    return Gaussian(torch.tensor([1.0, -2.0]), torch.tensor([[2.0, 0.6], [0.6, 0.5]]))


def noised_draw(g: Gaussian, sigma: float, n: int, seed: int = 0) -> torch.Tensor:
    return g.noised(sigma).sample(n, gen(seed), dtype=F64)


# ---------------------------------------------------------------------------------------------
# Langevin
# ---------------------------------------------------------------------------------------------


def test_langevin_tau_matches_ula_stationary_covariance() -> None:
    """ULA on N(0, Σ) has stationary covariance 2τ (I − (I − τP)²)⁻¹, P = Σ⁻¹ — not Σ."""
    target = anticorrelated()
    cov = target.covariance().to(F64)
    prec = torch.linalg.inv(cov)
    tau = 0.2
    m = torch.eye(2, dtype=F64) - tau * prec
    ula_cov = 2 * tau * torch.linalg.inv(torch.eye(2, dtype=F64) - m @ m)
    x0 = target.sample(8000, gen(1), dtype=F64)
    res = langevin(target.score, x0, step_size=tau, n_steps=60, generator=gen(2))
    emp = torch.cov(res.samples.T)
    vals, vecs = torch.linalg.eigh(ula_cov)
    # In the eigenbasis of the ULA law the relative std of a sample variance is √(2/n) ≈ 0.016.
    rel = torch.diagonal(vecs.T @ emp @ vecs) / vals
    assert torch.allclose(rel, torch.ones(2, dtype=F64), atol=0.07), rel
    assert res.samples.mean(0).abs().max() < 0.06
    # The test is sharp enough to see ULA's bias: along the stiff direction the variance is
    # 50 % larger than the target's.
    true_var = torch.diagonal(vecs.T @ cov @ vecs)
    assert (torch.diagonal(vecs.T @ emp @ vecs) / true_var).max() > 1.3


def test_langevin_eta_is_tau_with_half_step() -> None:
    target = anticorrelated()
    x0 = 2 * torch.randn(64, 2, generator=gen(0), dtype=F64)
    a = langevin(
        target.score, x0, step_size=0.3, n_steps=20, parametrization="eta", generator=gen(5)
    )
    b = langevin(
        target.score, x0, step_size=0.15, n_steps=20, parametrization="tau", generator=gen(5)
    )
    torch.testing.assert_close(a.samples, b.samples, rtol=1e-12, atol=1e-12)


def test_score_ascent_is_exact_linear_recursion() -> None:
    """For a Gaussian, x_k = (I − εP)^k x_0; the trail has n_steps + 1 points."""
    target = anticorrelated()
    prec = torch.linalg.inv(target.covariance().to(F64))
    x0 = torch.tensor([[1.5, 1.5]], dtype=F64)
    res = score_ascent(target.score, x0, step_size=0.05, n_steps=20, keep_trajectory=True)
    assert res.trajectory is not None and res.trajectory.shape == (21, 1, 2)
    m = torch.eye(2, dtype=F64) - 0.05 * prec
    expected = x0 @ torch.linalg.matrix_power(m, 20).T
    torch.testing.assert_close(res.samples, expected)
    assert res.n_evals == 20
    # Ascent climbs log p monotonically.
    logp = target.log_prob(res.trajectory[:, 0])
    assert bool((logp[1:] > logp[:-1]).all())


def test_langevin_diverges_loudly_on_huge_step() -> None:
    target = anticorrelated()
    x0 = torch.randn(16, 2, generator=gen(0))
    with pytest.raises(DivergenceError, match=r"step_size=5 .*try step_size <= 0.5"):
        langevin(target.score, x0, step_size=5.0, n_steps=500, generator=gen(1))


# ---------------------------------------------------------------------------------------------
# Annealed Langevin
# ---------------------------------------------------------------------------------------------


def test_annealed_langevin_recovers_mode_weight_plain_langevin_does_not() -> None:
    """Seed 003: 0.1·N(−3, 1) + 0.9·N(3, 1). Plain Langevin keeps the start's split of the modes."""
    target = mixture_1d()
    n = 4000
    x0 = 4.0 * torch.randn(n, 1, generator=gen(0), dtype=F64)
    sigmas = geometric_sigmas(6, sigma_min=0.5, sigma_max=2.0)
    res = annealed_langevin(
        target.noised_score, x0, sigmas, n_steps_each=100, eps=0.05, generator=gen(1)
    )
    frac = (res.samples < 0).double().mean().item()
    assert abs(frac - 0.1) < 4 * math.sqrt(0.1 * 0.9 / n) + 0.005, frac
    plain = langevin(target.score, x0, step_size=0.025, n_steps=600, generator=gen(1))
    frac_plain = (plain.samples < 0).double().mean().item()
    assert frac_plain > 0.3, frac_plain  # documented failure: the barrier is never crossed


def test_annealed_langevin_step_rules_and_evals() -> None:
    """Seed rule: η_i = ε σ_i²/σ_max²; paper rule: α_i = ε σ_i²/σ_L². Seen through the callback."""
    target = anticorrelated()
    sigmas = [4.0, 2.0, 1.0]
    seen: dict[str, list[float]] = {"paper": [], "seed": []}
    for rule in seen:
        res = annealed_langevin(
            target.noised_score,
            torch.zeros(3, 2),
            sigmas,
            n_steps_each=2,
            eps=0.1,
            step_rule=rule,
            generator=gen(0),
            keep_trajectory=True,
            callback=lambda info, r=rule: seen[r].append(info["step_size"]),
        )
        assert res.n_evals == 3 * 2 + 1
        assert res.trajectory is not None and res.trajectory.shape == (3 * 2 + 2, 3, 2)
        torch.testing.assert_close(res.trajectory[-1], res.samples)
    assert seen["paper"][:6:2] == pytest.approx([1.6, 0.4, 0.1])
    assert seen["seed"][:6:2] == pytest.approx([0.1, 0.025, 0.00625])


def test_annealed_langevin_warns_then_raises_naming_the_step() -> None:
    """A near point mass curves like 1/σ²: ε = 1e-3 at σ_L = 0.01 blows up (ECOSYSTEM.md)."""
    spike = Gaussian(torch.zeros(2), 1e-6 * torch.eye(2))
    sigmas = geometric_sigmas(5, sigma_min=0.01, sigma_max=1.0, dtype=torch.float32)
    x0 = torch.randn(8, 2, generator=gen(0))
    with pytest.warns(UserWarning, match=r"eps <= 0\.0002"):
        with pytest.raises(DivergenceError, match=r"eps=0\.001 .*sigma_min=0\.01.*eps <= 0\.0002"):
            annealed_langevin(spike.noised_score, x0, sigmas, n_steps_each=200, eps=1e-3)


# ---------------------------------------------------------------------------------------------
# Reverse SDE and predictor–corrector
# ---------------------------------------------------------------------------------------------


def assert_moments(x: torch.Tensor, g: Gaussian, tol_mean: float, tol_cov: float) -> None:
    mean_err = (x.mean(0) - g.mean().to(x)).abs().max().item()
    cov_err = (torch.cov(x.T) - g.covariance().to(x)).abs().max().item()
    assert mean_err < tol_mean and cov_err < tol_cov, (mean_err, cov_err)


@pytest.mark.parametrize("sde", [VESDELambda(25.0), VPSDE()], ids=["ve-lambda", "vp"])
def test_reverse_sde_gaussian_moments(gauss: Gaussian, sde) -> None:
    x_T = sde.prior_sample((4000, 2), generator=gen(0), dtype=F64)
    res = reverse_sde(gauss.noised_score, x_T, sde, n_steps=300, generator=gen(1))
    # Sampling std of the mean ≈ √(2/4000) = 0.022, of a covariance entry ≈ 0.045.
    assert_moments(res.samples, gauss, tol_mean=0.1, tol_cov=0.2)
    assert res.n_evals == 301


def test_predictor_corrector_gaussian_moments(gauss: Gaussian) -> None:
    sde = VESDE(sigma_min=0.01, sigma_max=20.0)
    x_T = sde.prior_sample((4000, 2), generator=gen(0), dtype=F64)
    res = predictor_corrector(gauss.noised_score, x_T, sde, n_steps=100, generator=gen(1))
    assert_moments(res.samples, gauss, tol_mean=0.1, tol_cov=0.2)
    assert res.n_evals == 100 * 2 + 1


def test_reverse_sde_trajectory_and_reproducibility(gauss: Gaussian) -> None:
    sde = VESDELambda(25.0)
    x_T = sde.prior_sample((5, 2), generator=gen(0), dtype=F64)
    a = reverse_sde(
        gauss.noised_score, x_T, sde, n_steps=10, generator=gen(3), keep_trajectory=True
    )
    b = reverse_sde(gauss.noised_score, x_T, sde, n_steps=10, generator=gen(3), progress=True)
    c = reverse_sde(gauss.noised_score, x_T, sde, n_steps=10, generator=gen(4))
    assert a.trajectory is not None and a.trajectory.shape == (12, 5, 2)
    torch.testing.assert_close(a.trajectory[0], x_T)
    torch.testing.assert_close(a.samples, b.samples, rtol=0, atol=0)
    assert not torch.allclose(a.samples, c.samples)
    assert b.trajectory is None


# ---------------------------------------------------------------------------------------------
# Probability-flow ODE in SDE time: compare with the exact Gaussian flow map
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sde", [VESDELambda(25.0), VPSDE()], ids=["ve-lambda", "vp"])
def test_probability_flow_dopri5_is_the_exact_gaussian_map(gauss: Gaussian, sde) -> None:
    """x_t = α_t y with y the VE flow of N(μ, Σ): per-sample agreement with the closed form."""
    sig_T, sig_e = float(sde.noise_level(sde.T)), float(sde.noise_level(sde.eps))
    a_T = float(sde.alpha(sde.T))
    x_T = a_T * noised_draw(gauss, sig_T, 256)
    res = probability_flow(gauss.noised_score, x_T, sde, method="dopri5", rtol=1e-7, atol=1e-7)
    expected = exact_denoise(gauss, exact_flow(gauss, x_T / a_T, sig_T, sig_e), sig_e)
    torch.testing.assert_close(res.samples, expected, rtol=0, atol=1e-4)
    # And the output law is exactly N(μ, Σ): moments of the 256 points are those of a sample.
    assert res.n_evals > 10


def test_probability_flow_dpmpp_maps_back_to_sde_scale(gauss: Gaussian) -> None:
    """VP: the solver runs on y = x/α_t; without denoising the result must be α_{t_end}·y."""
    sde, t_end = VPSDE(), 0.3  # α(0.3) ≈ 0.63: a missing factor α_t would show
    sig_T, sig_e = float(sde.noise_level(sde.T)), float(sde.noise_level(t_end))
    a_T, a_e = float(sde.alpha(sde.T)), float(sde.alpha(t_end))
    x_T = a_T * noised_draw(gauss, sig_T, 128)
    seen = []
    res = probability_flow(
        gauss.noised_score,
        x_T,
        sde,
        method="dpmpp-2m",
        n_steps=100,
        t_end=t_end,
        denoise=False,
        keep_trajectory=True,
        callback=seen.append,
    )
    expected = a_e * exact_flow(gauss, x_T / a_T, sig_T, sig_e)
    torch.testing.assert_close(res.samples, expected, rtol=0, atol=1e-3)
    assert res.trajectory is not None and res.trajectory.shape == (101, 128, 2)
    torch.testing.assert_close(res.trajectory[0], x_T)
    torch.testing.assert_close(seen[-1]["x"], res.samples)
    assert seen[-1]["t"] == pytest.approx(t_end)


def test_probability_flow_fixed_grid_methods_converge_in_order(gauss: Gaussian) -> None:
    sde = VESDE(sigma_min=0.01, sigma_max=20.0)
    x_T = noised_draw(gauss, float(sde.noise_level(sde.T)), 256)
    sig_T, sig_e = float(sde.noise_level(sde.T)), float(sde.noise_level(sde.eps))
    expected = exact_denoise(gauss, exact_flow(gauss, x_T, sig_T, sig_e), sig_e)
    errors = {}
    for method in ("euler", "heun", "dpmpp-2m"):
        res = probability_flow(gauss.noised_score, x_T, sde, method=method, n_steps=40)
        errors[method] = (res.samples - expected).abs().max().item()
        assert res.n_evals == (80 if method == "heun" else 40) + 1
    assert errors["heun"] < 0.1 and errors["dpmpp-2m"] < 0.05, errors
    assert errors["heun"] < errors["euler"] / 5, errors


def test_probability_flow_trajectory_shapes(gauss: Gaussian) -> None:
    sde = VPSDE()
    x_T = sde.prior_sample((3, 2), generator=gen(0), dtype=F64)
    for method in ("heun", "dopri5", "dpmpp-2m"):
        res = probability_flow(
            gauss.noised_score, x_T, sde, method=method, n_steps=8, keep_trajectory=True
        )
        assert res.trajectory is not None and res.trajectory.shape == (10, 3, 2), method
        torch.testing.assert_close(res.trajectory[-1], res.samples)


# ---------------------------------------------------------------------------------------------
# EDM σ-parametrisation
# ---------------------------------------------------------------------------------------------

DETERMINISTIC = {
    "edm_euler": edm_euler,
    "edm_heun": edm_heun,
    "dpmpp_2m": dpmpp_2m,
    "dpmpp_3m": dpmpp_3m,
}


@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_edm_deterministic_samplers_follow_the_exact_flow(gauss: Gaussian, name: str) -> None:
    sigmas = karras_sigmas(30, sigma_min=0.01, sigma_max=40.0)
    x = noised_draw(gauss, 40.0, 256)
    res = DETERMINISTIC[name](gauss.noised_score, x, sigmas)
    expected = exact_denoise(gauss, exact_flow(gauss, x, 40.0, 0.01), 0.01)
    err = (res.samples - expected).abs().max().item()
    # Max over 256 points of the error against the closed form; measured: 0.29 / 0.037 / 0.039 /
    # 0.0087, so each bound is ~2x the measured error (a wrong step rule is off by O(1)).
    tol = {"edm_euler": 0.6, "edm_heun": 0.08, "dpmpp_2m": 0.08, "dpmpp_3m": 0.02}[name]
    assert err < tol, err
    assert res.n_evals == (59 if name == "edm_heun" else 30)


def test_higher_order_samplers_are_more_accurate(gauss: Gaussian) -> None:
    sigmas = geometric_sigmas(12, sigma_min=0.01, sigma_max=40.0)
    x = noised_draw(gauss, 40.0, 256)
    expected = exact_denoise(gauss, exact_flow(gauss, x, 40.0, 0.01), 0.01)
    err = {
        name: (fn(gauss.noised_score, x, sigmas).samples - expected).abs().max().item()
        for name, fn in DETERMINISTIC.items()
        if name != "edm_heun"
    }
    assert err["dpmpp_3m"] < err["dpmpp_2m"] < err["edm_euler"], err


@pytest.mark.parametrize("name", ["edm_stochastic", "dpmpp_2m_sde"])
def test_edm_stochastic_samplers_gaussian_moments(gauss: Gaussian, name: str) -> None:
    sigmas = karras_sigmas(40, sigma_min=0.01, sigma_max=40.0)
    x = noised_draw(gauss, 40.0, 4000)
    if name == "edm_stochastic":
        res = edm_stochastic(gauss.noised_score, x, sigmas, s_churn=20.0, generator=gen(1))
        assert res.n_evals == 79
    else:
        res = dpmpp_2m_sde(gauss.noised_score, x, sigmas, generator=gen(1))
        assert res.n_evals == 40
    assert_moments(res.samples, gauss, tol_mean=0.1, tol_cov=0.2)
    # Stochastic: the same generator seed gives the same samples, another seed does not.
    again = (edm_stochastic if name == "edm_stochastic" else dpmpp_2m_sde)(
        gauss.noised_score, x[:8], sigmas[:5], generator=gen(7)
    )
    other = (edm_stochastic if name == "edm_stochastic" else dpmpp_2m_sde)(
        gauss.noised_score, x[:8], sigmas[:5], generator=gen(7)
    )
    torch.testing.assert_close(again.samples, other.samples, rtol=0, atol=0)


def test_edm_stochastic_without_churn_is_heun(gauss: Gaussian) -> None:
    sigmas = karras_sigmas(6, sigma_min=0.05, sigma_max=10.0)
    x = noised_draw(gauss, 10.0, 16)
    a = edm_stochastic(gauss.noised_score, x, sigmas, s_churn=0.0)
    b = edm_heun(gauss.noised_score, x, sigmas)
    torch.testing.assert_close(a.samples, b.samples, rtol=0, atol=0)


def test_dpmpp_2m_sde_without_noise_is_dpmpp_2m(gauss: Gaussian) -> None:
    sigmas = geometric_sigmas(7, sigma_min=0.05, sigma_max=10.0)
    x = noised_draw(gauss, 10.0, 16)
    a = dpmpp_2m_sde(gauss.noised_score, x, sigmas, eta=0.0, generator=gen(0))
    b = dpmpp_2m(gauss.noised_score, x, sigmas)
    torch.testing.assert_close(a.samples, b.samples, rtol=1e-12, atol=1e-12)


def test_edm_trajectory_and_callback(gauss: Gaussian) -> None:
    sigmas = karras_sigmas(5, sigma_min=0.05, sigma_max=10.0)
    x = noised_draw(gauss, 10.0, 4)
    seen = []
    res = edm_heun(
        gauss.noised_score, x, sigmas, keep_trajectory=True, callback=lambda d: seen.append(d)
    )
    assert res.trajectory is not None and res.trajectory.shape == (6, 4, 2)
    assert [d["i"] for d in seen] == [0, 1, 2, 3, 4]
    assert seen[0]["sigma"] == pytest.approx(10.0) and seen[-1]["denoised"].shape == (4, 2)
    no_denoise = edm_euler(gauss.noised_score, x, sigmas, denoise=False, keep_trajectory=True)
    assert no_denoise.trajectory.shape == (5, 4, 2) and no_denoise.n_evals == 4


def test_moment_matched_prior_is_the_noised_gaussian(gauss: Gaussian) -> None:
    x = moment_matched_prior(
        gauss.mean().to(F64), gauss.covariance().to(F64), 3.0, 20000, generator=gen(0)
    )
    assert x.shape == (20000, 2) and x.dtype == F64
    target_cov = gauss.covariance().to(F64) + 9.0 * torch.eye(2, dtype=F64)
    assert (torch.cov(x.T) - target_cov).abs().max() < 0.4
    assert (x.mean(0) - gauss.mean().to(F64)).abs().max() < 0.1
    # Scrambled Sobol starts: reproducible and far more even than i.i.d. draws (the i.i.d. mean
    # of 4096 points has std ≈ 3/64 ≈ 0.05 per coordinate).
    mu, cov = gauss.mean().to(F64), gauss.covariance().to(F64)
    q = moment_matched_prior(mu, cov, 3.0, 4096, generator=gen(1), quasi_random=True)
    q2 = moment_matched_prior(mu, cov, 3.0, 4096, generator=gen(1), quasi_random=True)
    torch.testing.assert_close(q, q2, rtol=0, atol=0)
    assert (q.mean(0) - mu).abs().max() < 0.01
    with pytest.raises(ValueError, match="cov must have shape"):
        moment_matched_prior(torch.zeros(3), torch.eye(2), 1.0, 4)


# ---------------------------------------------------------------------------------------------
# Bookkeeping shared by all samplers
# ---------------------------------------------------------------------------------------------


class CountingScore:
    """Wrap a score and count its calls, to check each sampler's ``n_evals``."""

    def __init__(self, fn) -> None:
        self.fn, self.calls = fn, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fn(*args)


def _all_samplers(g: Gaussian):
    ve = VESDELambda(25.0)
    x_ve = ve.prior_sample((8, 2), generator=gen(0), dtype=F64)
    sig = karras_sigmas(6, sigma_min=0.05, sigma_max=10.0)
    x_s = 10.0 * torch.randn(8, 2, generator=gen(0), dtype=F64)
    return {
        "annealed": lambda s: annealed_langevin(s, x_s, sig, n_steps_each=3, eps=1e-3),
        "reverse_sde": lambda s: reverse_sde(s, x_ve, ve, n_steps=7),
        "pc": lambda s: predictor_corrector(s, x_ve, ve, n_steps=7, n_corrector=2),
        "pf_euler": lambda s: probability_flow(s, x_ve, ve, method="euler", n_steps=7),
        "pf_heun": lambda s: probability_flow(s, x_ve, ve, method="heun", n_steps=7),
        "pf_dpmpp": lambda s: probability_flow(s, x_ve, ve, method="dpmpp-2m", n_steps=7),
        "pf_dopri5": lambda s: probability_flow(s, x_ve, ve, method="dopri5"),
        "edm_euler": lambda s: edm_euler(s, x_s, sig),
        "edm_heun": lambda s: edm_heun(s, x_s, sig),
        "dpmpp_2m": lambda s: dpmpp_2m(s, x_s, sig),
        "dpmpp_3m": lambda s: dpmpp_3m(s, x_s, sig),
        "edm_stochastic": lambda s: edm_stochastic(s, x_s, sig, s_churn=5.0),
        "dpmpp_2m_sde": lambda s: dpmpp_2m_sde(s, x_s, sig),
    }


def test_n_evals_counts_every_score_call(gauss: Gaussian) -> None:
    for name, run in _all_samplers(gauss).items():
        counter = CountingScore(gauss.noised_score)
        res = run(counter)
        assert isinstance(res, SampleResult)
        assert res.n_evals == counter.calls, name
        assert res.samples.shape == (8, 2) and bool(torch.isfinite(res.samples).all()), name
        assert not res.samples.requires_grad


def test_non_finite_score_raises_divergence_error(gauss: Gaussian) -> None:
    def broken(x, sigma):
        out = gauss.noised_score(x, sigma)
        return out if float(sigma[0]) > 1.0 else out * float("nan")

    for name, run in _all_samplers(gauss).items():
        with pytest.raises(DivergenceError, match="diverged"):
            run(broken)
            pytest.fail(name)


BAD_OPTIONS = [
    (lambda s, x: langevin(lambda y: -y, x, step_size=0.0, n_steps=3), ValueError, "step_size"),
    (
        lambda s, x: langevin(lambda y: -y, x, step_size=math.nan, n_steps=3),
        ValueError,
        "step_size",
    ),
    (lambda s, x: langevin(lambda y: -y, x, step_size=0.1, n_steps=0), ValueError, "n_steps"),
    (lambda s, x: langevin(lambda y: -y, x, step_size=0.1, n_steps=2.5), TypeError, "n_steps"),
    (
        lambda s, x: langevin(lambda y: -y, x, step_size=0.1, n_steps=2, parametrization="h"),
        ValueError,
        "parametrization",
    ),
    (lambda s, x: langevin(lambda y: -y, x[0], step_size=0.1, n_steps=2), ValueError, "x"),
    (lambda s, x: langevin(lambda y: -y, x * math.inf, step_size=0.1, n_steps=2), ValueError, "x"),
    (lambda s, x: langevin(lambda y: y[:, :1], x, step_size=0.1, n_steps=2), ValueError, "score"),
    (
        lambda s, x: annealed_langevin(s, x, [1.0, 2.0], n_steps_each=1, eps=0.1),
        ValueError,
        "descending",
    ),
    (
        lambda s, x: annealed_langevin(s, x, [1.0, 0.0], n_steps_each=1, eps=0.1),
        ValueError,
        "sigmas",
    ),
    (
        lambda s, x: annealed_langevin(s, x, [1.0], n_steps_each=1, eps=0.1, step_rule="x"),
        ValueError,
        "step_rule",
    ),
    (lambda s, x: reverse_sde(s, x, VPSDE(), n_steps=0), ValueError, "n_steps"),
    (lambda s, x: reverse_sde(s, x, VPSDE(), n_steps=3, t_end=2.0), ValueError, "t_end"),
    (lambda s, x: reverse_sde(s, x, "vp", n_steps=3), TypeError, "sde"),
    (lambda s, x: predictor_corrector(s, x, VPSDE(), n_steps=3, snr=-1.0), ValueError, "snr"),
    (lambda s, x: probability_flow(s, x, VPSDE(), method="rk9"), ValueError, "method"),
    (lambda s, x: probability_flow(s, x, VPSDE(), method="dopri5", rtol=0.0), ValueError, "rtol"),
    (lambda s, x: edm_heun(s, x, torch.tensor([[1.0]])), ValueError, "sigmas"),
    (lambda s, x: edm_stochastic(s, x, [2.0, 1.0], s_churn=-1.0), ValueError, "s_churn"),
    (lambda s, x: dpmpp_2m_sde(s, x, [2.0, 1.0], eta=-0.5), ValueError, "eta"),
    (
        lambda s, x: score_ascent(lambda y: -y, x, step_size=-1.0, n_steps=2),
        ValueError,
        "step_size",
    ),
]


@pytest.mark.parametrize("call,exc,word", BAD_OPTIONS)
def test_invalid_options_raise_clear_errors(gauss: Gaussian, call, exc, word: str) -> None:
    x = torch.zeros(4, 2, dtype=F64)
    with pytest.raises(exc, match=word):
        call(gauss.noised_score, x)
