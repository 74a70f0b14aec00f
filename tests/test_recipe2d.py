"""The default low-dimensional recipe against exact answers for Gaussian data.

For data N(m, C) the noised law is p_σ = N(m, C + σ²I), with exact score s = −(C + σ²I)⁻¹(x − m),
E‖s‖² = tr((C + σ²I)⁻¹), and the DSM residual has E‖s + z/σ‖² = d/σ² − tr((C + σ²I)⁻¹).
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate, stats

from scorelab.models import as_score_fn, build_model
from scorelab.targets import Gaussian
from scorelab.training import TrainConfig
from scorelab.training.recipe2d import (
    DataStats,
    data_stats,
    default_loss_fn,
    default_model_spec,
    default_train_config,
    fit_2d,
    noise_conditional_loss,
)

MEAN = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, -0.7], [-0.7, 1.0]], dtype=torch.float64) * 0.5


def _target() -> Gaussian:
    return Gaussian(MEAN, COV)


def _sigma_expectation(f, *, sigma_min, sigma_max, p_mean, p_std) -> float:
    """E f(σ) for log σ ~ N(p_mean, p_std²) truncated to [σ_min, σ_max], by quadrature."""
    a = (math.log(sigma_min) - p_mean) / p_std
    b = (math.log(sigma_max) - p_mean) / p_std
    mass = stats.norm.cdf(b) - stats.norm.cdf(a)
    value, _ = integrate.quad(
        lambda q: f(math.exp(p_mean + p_std * q)) * stats.norm.pdf(q), a, b, limit=200
    )
    return value / mass


def _weight(sigma: float, weighting: str, sigma_data: float) -> float:
    w = sigma**2
    return w * (sigma**2 + sigma_data**2) / sigma_data**2 if weighting == "edm" else w


def _trace_inv(sigma: float) -> float:
    return float(torch.linalg.inv(COV + sigma**2 * torch.eye(2, dtype=torch.float64)).trace())


@pytest.mark.parametrize("weighting", ["edm", "sigma2"])
def test_loss_expectation_is_minimised_by_the_exact_score(weighting: str) -> None:
    target = _target()
    n = 200_000
    x0 = target.sample(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    opts = {"sigma_min": 0.01, "sigma_max": 4.0, "sigma_data": 0.7, "p_mean": -1.0, "p_std": 1.2}

    def loss_of(scale: float) -> torch.Tensor:
        def score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return scale * target.noised_score(x, sigma)

        gen = torch.Generator().manual_seed(1)  # the same σ and z for every score
        return noise_conditional_loss(score, x0, gen, weighting=weighting, **opts)

    q = {k: opts[k] for k in ("sigma_min", "sigma_max", "p_mean", "p_std")}
    exact = loss_of(1.0)
    assert exact.shape == (n,) and exact.dtype == torch.float64
    # E loss = E_σ ½ w(σ) (d/σ² − tr Σ_σ⁻¹).
    expected = _sigma_expectation(
        lambda s: 0.5 * _weight(s, weighting, 0.7) * (2 / s**2 - _trace_inv(s)), **q
    )
    stderr = float(exact.std()) / math.sqrt(n)
    assert abs(float(exact.mean()) - expected) < 4 * stderr
    # (1 + ε)s costs ½ ε² E_σ w(σ) tr Σ_σ⁻¹ more (the cross term has mean 0, by Tweedie).
    gain = _sigma_expectation(lambda s: 0.5 * _weight(s, weighting, 0.7) * _trace_inv(s), **q)
    for eps in (-0.1, 0.1):
        diff = loss_of(1.0 + eps) - exact
        assert float(diff.mean()) > 0
        stderr = float(diff.std()) / math.sqrt(n)
        assert abs(float(diff.mean()) - eps**2 * gain) < 4 * stderr + 0.02 * eps**2 * gain


def test_loss_draws_sigma_from_the_truncated_lognormal_law() -> None:
    # For a score of zero, loss = ½ w(σ)‖z‖²/σ² with w = σ²: E = E ½‖z‖² = d/2 = 1 for any law,
    # and the per-example values show the σ range through the edm weighting.
    x0 = torch.zeros(50_000, 2, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)

    def zero(x, sigma):
        return torch.zeros_like(x)

    loss = noise_conditional_loss(
        zero, x0, gen, sigma_min=0.1, sigma_max=2.0, weighting="sigma2", p_mean=0.0, p_std=1.0
    )
    assert abs(float(loss.mean()) - 1.0) < 4 * float(loss.std()) / math.sqrt(len(loss))


def _relative_error(s: torch.Tensor, exact: torch.Tensor) -> float:
    """sqrt(E‖s − s*‖² / E‖s*‖²) over the rows."""
    return float(((s - exact).square().sum(1).mean() / exact.square().sum(1).mean()).sqrt())


@pytest.fixture
def one_thread():
    """Train on one thread: on a busy 2-core machine two threads mostly wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_short_default_training_learns_a_gaussian_score(one_thread) -> None:
    target = _target()
    data = target.sample(4000, generator=torch.Generator().manual_seed(0))
    fit = fit_2d(
        data,
        steps=300,
        seed=0,
        model_overrides={"hidden": 64, "depth": 2},
        config_overrides={"batch_size": 256, "device": "cpu"},
    )
    untrained = as_score_fn(build_model(fit.spec))
    gen = torch.Generator().manual_seed(5)
    # Scores at tiny σ need far more steps (the DSM target's signal-to-noise ratio is ∝ σ); a
    # 300-step run is checked where it is well determined.
    for sigma, bound in ((0.3, 0.15), (1.0, 0.08)):
        x = target.noised(sigma).sample(2000, generator=gen)
        exact = target.noised_score(x.double(), sigma)
        with torch.no_grad():
            sig = torch.full((len(x),), sigma, dtype=x.dtype)
            learned = fit.score_fn()(x, sig).double()
            before = untrained(x, sig).double()

        # The untrained net (the Gaussian score −x/(σ² + σ_data²) around the mean) is off by 0.59
        # and 0.23; 300 steps bring it to 0.08 and 0.04.
        err, err_before = _relative_error(learned, exact), _relative_error(before, exact)
        assert err_before > 2 * bound, "the check must be able to fail: the untrained net is far"
        assert err < bound, f"sigma={sigma}: relative error {err:.3f}"
    assert fit.config.steps == 300 and fit.history[-1]["step"] == 300
    assert fit.stats.dim == 2


def test_the_points_recommended_sampler_with_the_exact_score_recovers_the_gaussian() -> None:
    """The sampler a trained points model gets (the preset's, through the registry), driven by
    the exact score of a Gaussian, returns that Gaussian."""
    from scorelab.samplers import RECOMMENDED, draw_samples, evaluation_count, network_source

    target = _target()
    data = target.sample(5000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    st = data_stats(data)
    source = network_source(
        target.noised_score,
        st.mean_tensor(torch.float64),
        st.cov_tensor(torch.float64),
        (2,),
        train_sigma_max=st.sigma_max,
        train_sigma_min=0.002 * st.sigma_data,
        recommended=RECOMMENDED["points"],
    )
    source = type(source)(**{**source.__dict__, "dtype": torch.float64})
    for seed in (1, 2):
        res = draw_samples(source, 4000, generator=torch.Generator().manual_seed(seed))
        x = res.samples
        assert x.shape == (4000, 2) and res.n_evals == evaluation_count(RECOMMENDED["points"])
        assert torch.allclose(x.mean(0), MEAN, atol=0.06)
        assert torch.allclose(torch.cov(x.T), COV, atol=0.06)


def test_quasi_random_prior_has_the_moment_matched_law() -> None:
    from scorelab.samplers import moment_matched_prior

    gen = torch.Generator().manual_seed(0)
    x = moment_matched_prior(MEAN, COV, 2.0, 4096, generator=gen, quasi_random=True)
    assert x.shape == (4096, 2) and x.dtype == torch.float64
    full = COV + 4.0 * torch.eye(2, dtype=torch.float64)
    # Quasi-random points match the moments far better than 1/√n = 0.016 would allow.
    assert torch.allclose(x.mean(0), MEAN, atol=5e-3)
    assert torch.allclose(torch.cov(x.T), full, rtol=2e-2)
    again = moment_matched_prior(
        MEAN, COV, 2.0, 4096, generator=torch.Generator().manual_seed(0), quasi_random=True
    )
    assert torch.equal(x, again)


def test_data_stats_and_specs() -> None:
    data = _target().sample(3000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    st = data_stats(data)
    assert torch.allclose(st.mean_tensor(torch.float64), data.mean(0))
    assert st.sigma_max == pytest.approx(
        float(torch.cdist(data[:2000], data[:2000]).max()), rel=0.2
    )
    assert DataStats.from_dict(st.to_dict()) == st
    spec = default_model_spec(2, st)
    assert spec["name"] == "score-mlp" and spec["kwargs"]["sigma_data"] == st.sigma_data
    assert spec["kwargs"]["data_mean"] == pytest.approx(data.mean(0).tolist())
    # Untrained (zero output layer): the score of N(mean, (σ² + σ_d²) I), centred on the data.
    x, sigma = data[:5].float() + 40.0, torch.full((5,), 0.7)
    expected = -(x - st.mean_tensor()) / (0.49 + st.sigma_data**2)
    assert torch.allclose(as_score_fn(build_model(spec))(x, sigma), expected, atol=1e-5)
    with pytest.raises(ValueError, match="data_mean must be 2 finite numbers"):
        build_model(default_model_spec(2, st, data_mean=[0.0, float("nan")]))
    config = default_train_config(steps=100)
    assert isinstance(config, TrainConfig) and config.steps == 100
    assert 0 < config.ema_decay < 1 and config.ema_decay**100 < 1e-3  # init weights forgotten
    loss = default_loss_fn(st)(build_model(spec), data[:8].float(), torch.Generator())
    assert loss.shape == (8,)


def test_bad_arguments_raise_clear_errors() -> None:
    x0 = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="sigma_min"):
        noise_conditional_loss(lambda x, s: x, x0, sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="weighting"):
        noise_conditional_loss(lambda x, s: x, x0, sigma_min=0.1, sigma_max=1.0, weighting="x")
    with pytest.raises(ValueError, match="mean, cov"):
        DataStats.from_dict({"mean": [0.0]})
    with pytest.raises(ValueError, match="steps or seconds"):
        fit_2d(x0, steps=10, seconds=1.0)
    with pytest.raises(ValueError, match="N >= 2"):
        data_stats(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="dim=3"):
        default_model_spec(3, torch.randn(10, 2))
