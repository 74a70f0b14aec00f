"""Exact targets against scipy, autograd, closed forms and Monte-Carlo."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from scorelab.data.toy import TARGET_NAMES
from scorelab.metrics import mode_separation, mode_weight_report, modes_separated
from scorelab.targets import (
    PRESET_DESCRIPTIONS,
    PRESET_TABLE,
    PRESETS,
    Gaussian,
    GaussianMixture,
    aniso_16d,
    anticorrelated,
    get_target,
    mixture_1d,
    mixture_2d,
    ring_8,
    spiral_2d,
)

F64 = torch.float64
DIMS = [1, 2, 5]


def _random_spd(d: int, gen: torch.Generator) -> torch.Tensor:
    """A well-conditioned random SPD matrix (eigenvalues in [0.3, 2.3])."""
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=F64))
    lam = 0.3 + 2.0 * torch.rand(d, generator=gen, dtype=F64)
    return q @ torch.diag(lam) @ q.T


def _random_gaussian(d: int, seed: int = 0) -> Gaussian:
    gen = torch.Generator().manual_seed(seed)
    return Gaussian(torch.randn(d, generator=gen, dtype=F64), _random_spd(d, gen))


def _random_mixture(d: int, k: int = 3, seed: int = 0) -> GaussianMixture:
    gen = torch.Generator().manual_seed(seed)
    means = 2.0 * torch.randn(k, d, generator=gen, dtype=F64)
    covs = torch.stack([_random_spd(d, gen) for _ in range(k)])
    weights = 0.2 + torch.rand(k, generator=gen, dtype=F64)
    return GaussianMixture(means, covs, weights)


def _points(b: int, d: int, seed: int = 1, scale: float = 2.0) -> torch.Tensor:
    return scale * torch.randn(b, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _scipy_mixture_logpdf(mix: GaussianMixture, x: np.ndarray, var: float = 0.0) -> np.ndarray:
    """Reference log-density of a mixture built from scipy components (noise variance ``var``)."""
    eye = np.eye(mix.dim)
    logs = [
        np.log(w) + multivariate_normal(m, c + var * eye).logpdf(x).reshape(-1)
        for w, m, c in zip(mix.weights.numpy(), mix.means.numpy(), mix.covs.numpy(), strict=True)
    ]
    return logsumexp(np.stack(logs, axis=-1), axis=-1)


def _autograd_score(log_prob, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_prob(x).sum(), x)
    return grad


# ----------------------------------------------------------------------------------------------
# Gaussian
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", DIMS)
def test_gaussian_log_prob_matches_scipy(d):
    g = _random_gaussian(d)
    x = _points(16, d)
    ref = multivariate_normal(g.mean().numpy(), g.covariance().numpy()).logpdf(x.numpy())
    np.testing.assert_allclose(g.log_prob(x).numpy(), np.reshape(ref, -1), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d", DIMS)
def test_gaussian_score_matches_autograd_and_closed_form(d):
    g = _random_gaussian(d)
    x = _points(16, d)
    closed = -torch.linalg.solve(g.covariance(), (x - g.mean()).T).T
    torch.testing.assert_close(g.score(x), _autograd_score(g.log_prob, x), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(g.score(x), closed, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d", DIMS)
def test_gaussian_noised_per_example_sigma_matches_stacked_closed_form(d):
    g = _random_gaussian(d)
    x = _points(6, d)
    sigma = torch.tensor([0.01, 0.1, 0.5, 1.0, 3.0, 30.0], dtype=F64)
    eye = torch.eye(d, dtype=F64)
    ref_lp, ref_score = [], []
    for xi, s in zip(x, sigma.tolist(), strict=True):
        cov = g.covariance() + s**2 * eye
        ref_lp.append(multivariate_normal(g.mean().numpy(), cov.numpy()).logpdf(xi.numpy()))
        ref_score.append(-torch.linalg.solve(cov, xi - g.mean()))
        # the single-σ path (float sigma) agrees with the per-example path
        one = g.noised_score(xi[None], s)[0]
        torch.testing.assert_close(one, g.noised(s).score(xi[None])[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.noised_log_prob(x, sigma).numpy(), ref_lp, rtol=1e-10)
    torch.testing.assert_close(g.noised_score(x, sigma), torch.stack(ref_score), rtol=1e-10, atol=0)
    torch.testing.assert_close(
        g.noised_score(x, sigma), _autograd_score(lambda y: g.noised_log_prob(y, sigma), x)
    )


def test_gaussian_noised_law_closed_form_and_monte_carlo():
    g = anticorrelated()
    sigma, alpha = 0.6, 0.8
    law = g.noised(sigma, alpha)
    torch.testing.assert_close(law.mean(), torch.zeros(2, dtype=F64))
    expected_cov = alpha**2 * torch.tensor([[1.0, -0.7], [-0.7, 1.0]], dtype=F64)
    expected_cov += sigma**2 * torch.eye(2, dtype=F64)
    torch.testing.assert_close(law.covariance(), expected_cov)

    gen = torch.Generator().manual_seed(0)
    n = 20_000
    x0 = g.sample(n, generator=gen, dtype=F64)
    xt = alpha * x0 + sigma * torch.randn(n, 2, generator=gen, dtype=F64)
    # entries of a sample covariance have std <= sqrt(2/n)·max var ≈ 0.01; 5 std errors
    assert torch.allclose(xt.mean(0), law.mean(), atol=5 * math.sqrt(1.0 / n))
    assert torch.allclose(torch.cov(xt.T), law.covariance(), atol=0.05)


def test_gaussian_sample_moments_and_reproducibility():
    g = _random_gaussian(3, seed=4)
    s = g.sample(20_000, generator=torch.Generator().manual_seed(1), dtype=F64)
    assert s.shape == (20_000, 3) and s.dtype == F64
    assert torch.allclose(s.mean(0), g.mean(), atol=0.06)
    assert torch.allclose(torch.cov(s.T), g.covariance(), atol=0.12)
    a = g.sample(5, generator=torch.Generator().manual_seed(7))
    b = g.sample(5, generator=torch.Generator().manual_seed(7))
    assert a.dtype == torch.float32
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_float32_input_gives_float32_output_close_to_float64():
    for target in (anticorrelated(), mixture_2d()):
        x = _points(8, 2)
        sigma = torch.linspace(0.1, 2.0, 8, dtype=F64)
        out32 = target.noised_score(x.float(), sigma.float())
        assert out32.dtype == torch.float32
        assert target.log_prob(x.float()).dtype == torch.float32
        torch.testing.assert_close(
            out32.double(), target.noised_score(x, sigma), rtol=1e-5, atol=1e-5
        )


# ----------------------------------------------------------------------------------------------
# Gaussian mixture
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", DIMS)
def test_mixture_log_prob_matches_scipy_mixture(d):
    mix = _random_mixture(d)
    x = _points(16, d, scale=3.0)
    ref = _scipy_mixture_logpdf(mix, x.numpy())
    np.testing.assert_allclose(mix.log_prob(x).numpy(), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d", DIMS)
def test_mixture_score_matches_autograd(d):
    mix = _random_mixture(d)
    x = _points(16, d, scale=3.0)
    torch.testing.assert_close(
        mix.score(x), _autograd_score(mix.log_prob, x), rtol=1e-9, atol=1e-10
    )


@pytest.mark.parametrize("d", DIMS)
def test_mixture_noised_per_example_sigma_equals_stacked_single_sigma(d):
    mix = _random_mixture(d)
    x = _points(5, d, scale=3.0)
    sigma = torch.tensor([0.01, 0.3, 1.0, 2.5, 10.0], dtype=F64)
    stacked_score = torch.stack(
        [mix.noised(s).score(xi[None])[0] for xi, s in zip(x, sigma.tolist(), strict=True)]
    )
    stacked_lp = torch.stack(
        [mix.noised(s).log_prob(xi[None])[0] for xi, s in zip(x, sigma.tolist(), strict=True)]
    )
    torch.testing.assert_close(mix.noised_score(x, sigma), stacked_score, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(mix.noised_log_prob(x, sigma), stacked_lp, rtol=1e-10, atol=1e-12)
    ref = [
        _scipy_mixture_logpdf(mix, xi.numpy()[None], s**2)[0]
        for xi, s in zip(x, sigma.tolist(), strict=True)
    ]
    np.testing.assert_allclose(mix.noised_log_prob(x, sigma).numpy(), ref, rtol=1e-10)
    grad = _autograd_score(lambda y: mix.noised_log_prob(y, sigma), x)
    torch.testing.assert_close(mix.noised_score(x, sigma), grad, rtol=1e-9, atol=1e-10)


def test_mixture_noised_law_closed_form_and_monte_carlo():
    mix = mixture_2d()
    sigma, alpha = 0.5, 0.7
    law = mix.noised(sigma, alpha)
    eye = torch.eye(2, dtype=F64)
    torch.testing.assert_close(law.means, alpha * mix.means)
    torch.testing.assert_close(law.covs, alpha**2 * mix.covs + sigma**2 * eye)
    torch.testing.assert_close(law.weights, mix.weights)
    torch.testing.assert_close(law.covariance(), alpha**2 * mix.covariance() + sigma**2 * eye)

    gen = torch.Generator().manual_seed(3)
    n = 20_000
    xt = alpha * mix.sample(n, generator=gen, dtype=F64)
    xt = xt + sigma * torch.randn(n, 2, generator=gen, dtype=F64)
    assert torch.allclose(xt.mean(0), law.mean(), atol=0.05)
    assert torch.allclose(torch.cov(xt.T), law.covariance(), atol=0.08)


def test_noised_with_sigma_zero_only_rescales():
    mix = mixture_1d()
    law = mix.noised(0.0, alpha=0.5)
    torch.testing.assert_close(law.means, 0.5 * mix.means)
    torch.testing.assert_close(law.covs, 0.25 * mix.covs)


def test_far_tail_is_finite_and_equals_dominant_component():
    mix = mixture_2d()
    directions = torch.tensor([[1.0, 1.0], [-1.0, 0.3], [0.2, -1.0], [-0.5, -0.5]], dtype=F64)
    x = 1e3 * directions / directions.norm(dim=1, keepdim=True)
    sigma = 0.01
    # a ratio of pdfs is 0/0 here: every component density underflows to exactly zero
    for m, c in zip(mix.means.numpy(), mix.covs.numpy(), strict=True):
        assert np.all(multivariate_normal(m, c).pdf(x.numpy()) == 0.0)
    covs = mix.covs.numpy() + sigma**2 * np.eye(2)
    for dtype in (F64, torch.float32):
        score = mix.noised_score(x.to(dtype), sigma)
        log_p = mix.noised_log_prob(x.to(dtype), sigma)
        assert torch.isfinite(score).all() and torch.isfinite(log_p).all()
        for i, xi in enumerate(x.numpy()):
            comp = [
                np.log(w) + multivariate_normal(m, c).logpdf(xi)
                for w, m, c in zip(mix.weights.numpy(), mix.means.numpy(), covs, strict=True)
            ]
            k = int(np.argmax(comp))
            assert sorted(comp)[-1] - sorted(comp)[-2] > 100  # the other component is negligible
            expected = -np.linalg.solve(covs[k], xi - mix.means.numpy()[k])
            rtol = 1e-10 if dtype == F64 else 1e-4
            np.testing.assert_allclose(score[i].double().numpy(), expected, rtol=rtol)
            np.testing.assert_allclose(float(log_p[i]), comp[k], rtol=rtol)


@pytest.mark.parametrize("d", DIMS)
def test_responsibilities_and_component_scores_recombine(d):
    mix = _random_mixture(d)
    x = _points(16, d, scale=3.0)
    sigma = torch.linspace(0.05, 2.0, 16, dtype=F64)
    resp = mix.responsibilities(x, sigma)
    assert resp.shape == (16, 3) and bool((resp >= 0).all())
    torch.testing.assert_close(resp.sum(1), torch.ones(16, dtype=F64))
    comp_scores = mix.component_scores(x, sigma)
    assert comp_scores.shape == (16, 3, d)
    # each component score is the closed-form Gaussian score of N(μ_k, Σ_k + σ²I)
    eye = torch.eye(d, dtype=F64)
    for k in range(3):
        covs = mix.covs[k] + sigma[:, None, None] ** 2 * eye
        closed = -torch.linalg.solve(covs, x - mix.means[k])
        torch.testing.assert_close(comp_scores[:, k], closed, rtol=1e-10, atol=1e-12)
    recombined = (resp[..., None] * comp_scores).sum(1)
    torch.testing.assert_close(recombined, mix.noised_score(x, sigma), rtol=1e-12, atol=1e-12)
    # responsibilities are the Bayes posterior computed with scipy
    comp_lp = mix.component_log_probs(x)
    ref = np.stack(
        [
            np.log(w) + multivariate_normal(m, c).logpdf(x.numpy()).reshape(-1)
            for w, m, c in zip(
                mix.weights.numpy(), mix.means.numpy(), mix.covs.numpy(), strict=True
            )
        ],
        axis=-1,
    )
    np.testing.assert_allclose(comp_lp.numpy(), ref, rtol=1e-10)
    post = np.exp(ref - logsumexp(ref, axis=1, keepdims=True))
    np.testing.assert_allclose(mix.responsibilities(x).numpy(), post, rtol=1e-8, atol=1e-14)


def test_mixture_sample_moments_and_component_frequencies():
    mix = mixture_1d()
    torch.testing.assert_close(mix.mean(), torch.tensor([2.4], dtype=F64))
    # law of total variance: 1 + 0.1·9 + 0.9·9 - 2.4²
    torch.testing.assert_close(mix.covariance(), torch.tensor([[4.24]], dtype=F64))
    n = 20_000
    x, comp = mix.sample(n, generator=torch.Generator().manual_seed(2), return_components=True)
    assert x.shape == (n, 1) and x.dtype == torch.float32 and comp.shape == (n,)
    # fraction of component 0: std sqrt(0.09 / n) ≈ 0.002
    assert abs(float((comp == 0).double().mean()) - 0.1) < 0.01
    assert (
        abs(float(x[comp == 0].mean()) + 3.0) < 0.1 and abs(float(x[comp == 1].mean()) - 3.0) < 0.05
    )
    assert abs(float(x.double().mean()) - 2.4) < 0.06
    assert abs(float(x.double().var()) - 4.24) < 0.15


def test_mixture_2d_sample_moments():
    mix = mixture_2d()
    s = mix.sample(20_000, generator=torch.Generator().manual_seed(5), dtype=F64)
    assert torch.allclose(s.mean(0), mix.mean(), atol=0.05)
    assert torch.allclose(torch.cov(s.T), mix.covariance(), atol=0.1)


def test_zero_weight_component_is_ignored_and_finite():
    means = torch.tensor([[0.0], [5.0]])
    mix = GaussianMixture(means, torch.ones(2, 1, 1), torch.tensor([1.0, 0.0]))
    x = _points(8, 1)
    single = Gaussian(torch.zeros(1), torch.ones(1, 1))
    torch.testing.assert_close(mix.score(x), single.score(x))
    torch.testing.assert_close(mix.log_prob(x), single.log_prob(x))
    _, comp = mix.sample(100, return_components=True)
    assert bool((comp == 0).all())


def test_component_accessor_matches_parameters():
    mix = mixture_2d()
    g = mix.component(1)
    torch.testing.assert_close(g.mean(), mix.means[1])
    torch.testing.assert_close(g.covariance(), mix.covs[1])
    with pytest.raises(ValueError, match="k must be < n_components"):
        mix.component(2)


# ----------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------


def test_presets():
    assert set(PRESETS) == {
        "anticorrelated",
        "mixture-1d",
        "mixture-2d",
        "ring-8",
        "spiral-2d",
        "aniso-16d",
    }
    g = anticorrelated()
    assert isinstance(g, Gaussian) and g.dim == 2
    torch.testing.assert_close(g.covariance(), torch.tensor([[1.0, -0.7], [-0.7, 1.0]], dtype=F64))
    m1 = mixture_1d()
    assert m1.dim == 1 and m1.n_components == 2
    torch.testing.assert_close(m1.weights, torch.tensor([0.1, 0.9], dtype=F64))
    torch.testing.assert_close(m1.means, torch.tensor([[-3.0], [3.0]], dtype=F64))
    m2 = mixture_2d()
    torch.testing.assert_close(m2.weights, torch.tensor([0.5, 0.5], dtype=F64))
    torch.testing.assert_close(m2.covs[1], torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=F64))
    for name, build in PRESETS.items():
        assert type(get_target(name)) is type(build())
    with pytest.raises(ValueError, match="anticorrelated, mixture-1d, mixture-2d"):
        get_target("moons")


def test_every_preset_has_a_one_line_description_and_one_table():
    assert list(PRESET_DESCRIPTIONS) == list(PRESETS) == list(PRESET_TABLE)
    for name, text in PRESET_DESCRIPTIONS.items():
        assert text.strip() and "\n" not in text and len(text) <= 90, name
        assert PRESETS[name] is PRESET_TABLE[name].build
    # load_dataset accepts every preset by name (data keeps its own copy of the names)
    assert TARGET_NAMES == tuple(PRESETS)


def test_ring_8_preset():
    t = ring_8()
    assert (t.n_components, t.dim) == (8, 2)
    torch.testing.assert_close(t.means.norm(dim=1), torch.full((8,), 2.5, dtype=F64))
    torch.testing.assert_close(t.covs, 0.01 * torch.eye(2, dtype=F64).expand(8, 2, 2))
    torch.testing.assert_close(t.weights, torch.arange(1, 9, dtype=F64) / 36)


def test_spiral_2d_preset_is_a_thin_ridge_of_overlapping_components():
    t = spiral_2d()
    assert t.dim == 2 and 30 <= t.n_components <= 60
    steps = t.means.diff(dim=0).norm(dim=1)
    std = float(t.covs[0, 0, 0].sqrt())
    # equal arc-length steps of about two stds: neighbours overlap into one smooth ridge
    assert float(steps.max() / steps.min()) < 1.05 and 1.5 * std < float(steps.mean()) < 2.5 * std
    torch.testing.assert_close(
        t.weights, torch.full((t.n_components,), 1 / t.n_components, dtype=F64)
    )


def test_aniso_16d_preset():
    t = aniso_16d()
    assert t.dim >= 16 and t.n_components == 4
    variances = torch.diagonal(t.covs, dim1=1, dim2=2)
    assert float(variances.max() / variances.min()) > 1000  # per-axis scales differ >30×
    assert torch.equal(t.covs, torch.diag_embed(variances))
    assert len(set(variances.argmin(dim=1).tolist())) == 4  # each thin on another axis
    torch.testing.assert_close(t.weights, torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=F64))


@pytest.mark.parametrize("name", ["ring-8", "spiral-2d", "aniso-16d"])
def test_new_presets_noised_score_matches_autograd(name):
    t = get_target(name)
    gen = torch.Generator().manual_seed(0)
    x = t.sample(5, generator=gen, dtype=F64) + 0.3 * torch.randn(
        5, t.dim, generator=gen, dtype=F64
    )
    sigma = torch.tensor([0.01, 0.05, 0.3, 1.0, 5.0], dtype=F64)
    torch.testing.assert_close(
        t.noised_score(x, sigma),
        _autograd_score(lambda y: t.noised_log_prob(y, sigma), x),
        rtol=1e-8,
        atol=1e-8,
    )


def test_preset_modes_separated_flags_agree_with_the_separation():
    for name, preset in PRESET_TABLE.items():
        t = preset.build()
        if isinstance(t, GaussianMixture) and t.n_components > 1:
            assert preset.modes_separated == modes_separated(t), name
        else:
            assert not preset.modes_separated, name
    assert mode_separation(ring_8()) == pytest.approx(5 * math.sin(math.pi / 8) / 0.2)
    assert mode_separation(spiral_2d()) < 1.5


@pytest.mark.parametrize("name", ["ring-8", "aniso-16d", "mixture-1d"])
def test_mode_weight_report_on_exact_draws_is_within_three_standard_errors(name):
    t = get_target(name)
    n = 20_000
    x = t.sample(n, generator=torch.Generator().manual_seed(0))
    report = mode_weight_report(x, t)
    assert json.loads(json.dumps(report)) == report  # plain JSON values
    est, true = np.array(report["estimated"]), np.array(report["true"])
    se = np.array(report["standard_error"])
    np.testing.assert_allclose(true, t.weights.numpy())
    np.testing.assert_allclose(se, np.sqrt(true * (1 - true) / n))
    assert report["n"] == n and report["modes_separated"] is True
    assert report["max_abs_error"] == pytest.approx(float(np.abs(est - true).max()))
    assert (np.abs(est - true) < 3 * se).all(), (est, true, se)
    assert est.sum() == pytest.approx(1.0)


def test_mode_weight_report_flags_a_sampler_that_misses_modes():
    t = ring_8()
    x, k = t.sample(8000, generator=torch.Generator().manual_seed(1), return_components=True)
    report = mode_weight_report(x[k != 7], t)  # the heaviest mode (8/36) is never visited
    assert report["estimated"][7] == 0.0
    assert report["max_abs_error"] > 10 * max(report["standard_error"])
    spiral = spiral_2d()
    assert mode_weight_report(spiral.sample(500), spiral)["modes_separated"] is False


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mean", "cov", "match"),
    [
        ([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], "cov must be symmetric"),
        ([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]], "cov must be positive definite"),
        ([0.0, 0.0], [[1.0, 1.0], [1.0, 1.0]], "cov must be positive definite"),
        ([0.0, 0.0], [[1.0, 0.0, 0.0]] * 3, r"cov must have shape \(D, D\) = \(2, 2\)"),
        ([[0.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], r"mean must have shape \(D,\)"),
        ([0.0, float("nan")], [[1.0, 0.0], [0.0, 1.0]], "mean holds NaN"),
        ([0.0, 0.0], [[1.0, 0.0], [0.0, float("inf")]], "cov holds NaN or Inf"),
    ],
)
def test_gaussian_rejects_bad_parameters(mean, cov, match):
    with pytest.raises(ValueError, match=match):
        Gaussian(torch.tensor(mean), torch.tensor(cov))


def test_mixture_rejects_bad_parameters():
    means = torch.zeros(2, 2)
    covs = torch.eye(2).expand(2, 2, 2)
    with pytest.raises(ValueError, match=r"covs must have shape \(K, D, D\) = \(2, 2, 2\)"):
        GaussianMixture(means, torch.eye(2).expand(3, 2, 2), torch.ones(2))
    with pytest.raises(ValueError, match=r"means must have shape \(K, D\)"):
        GaussianMixture(torch.zeros(2), covs, torch.ones(2))
    with pytest.raises(ValueError, match=r"weights must have shape \(K,\) = \(2,\)"):
        GaussianMixture(means, covs, torch.ones(3))
    with pytest.raises(ValueError, match="weights must be >= 0"):
        GaussianMixture(means, covs, torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match="weights must have a positive sum"):
        GaussianMixture(means, covs, torch.zeros(2))
    with pytest.raises(ValueError, match="weights holds NaN"):
        GaussianMixture(means, covs, torch.tensor([1.0, float("nan")]))
    bad = torch.stack([torch.eye(2), -torch.eye(2)])
    with pytest.raises(ValueError, match="covs must be positive definite"):
        GaussianMixture(means, bad, torch.ones(2))
    with pytest.raises(ValueError, match="covs must be symmetric"):
        GaussianMixture(means, torch.stack([torch.eye(2), torch.tensor([[1.0, 0.3], [0.0, 1.0]])]))


@pytest.mark.parametrize("target", [anticorrelated(), mixture_2d()], ids=["gaussian", "mixture"])
def test_rejects_bad_points_and_noise_levels(target):
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        target.score(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        target.log_prob(torch.zeros(2))
    with pytest.raises(ValueError, match="x holds non-finite"):
        target.score(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(TypeError, match="floating-point"):
        target.score(torch.zeros(4, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        target.score(np.zeros((4, 2)))
    for bad_sigma in (0.0, -1.0, float("nan"), float("inf"), torch.tensor([1.0, 1.0, 0.0, 1.0])):
        with pytest.raises(ValueError, match="sigma must be finite and > 0"):
            target.noised_score(x, bad_sigma)
    with pytest.raises(ValueError, match=r"sigma must be a number or a tensor of shape \(B,\)"):
        target.noised_log_prob(x, torch.ones(3))
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        target.noised(-0.1)
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        target.noised(1.0, alpha=0.0)
    with pytest.raises(ValueError, match="n must be >= 1"):
        target.sample(0)


def test_one_dimensional_points_must_be_columns():
    mix = mixture_1d()
    with pytest.raises(ValueError, match=r"for 1-D data use x\[:, None\]"):
        mix.score(torch.zeros(5))
    assert mix.score(torch.zeros(5, 1)).shape == (5, 1)
