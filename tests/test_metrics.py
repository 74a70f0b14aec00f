"""Tests for scorelab.metrics: distances against closed forms, SciPy and POT; noise floors; mode
weights on exact mixture draws; score errors against analytic values."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import ot
import pytest
import scipy.spatial.distance
import scipy.stats
import torch

from scorelab.metrics import (
    DISTANCES,
    component_axis_std_ratios,
    component_spread_report,
    default_bandwidths,
    energy_distance,
    fraction_below,
    law_of_set,
    measure_against_law,
    mixture_weights,
    mmd,
    mode_weight_error,
    noise_floor,
    score_error,
    score_error_per_level,
    sliced_wasserstein,
)
from scorelab.metrics import distances as dist_mod


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small tensors on a shared, loaded 2-core machine run faster without intra-op threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def normal(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=gen(seed), dtype=torch.float64) + shift


def gaussian_sampler(d: int, shift: float = 0.0):
    """``sample_true(n, generator)`` for N(shift·1, I) in d dims."""

    def sample(n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, d, generator=generator, dtype=torch.float64) + shift

    return sample


# -- reference formulas written out in full (small n only) ------------------------------------


def brute_mmd(x: np.ndarray, y: np.ndarray, bandwidths) -> float:
    """Unbiased MMD² with the mean of RBF kernels, full matrices (Gretton et al. 2012, eq. 3)."""

    def k(a, b):
        d2 = scipy.spatial.distance.cdist(a, b, "sqeuclidean")
        return np.mean([np.exp(-d2 / (2 * h**2)) for h in bandwidths], axis=0)

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def brute_energy(x: np.ndarray, y: np.ndarray) -> float:
    cd = scipy.spatial.distance.cdist
    return 2 * cd(x, y).mean() - cd(x, x).mean() - cd(y, y).mean()


# -- distances --------------------------------------------------------------------------------


def test_identical_sets_give_zero():
    x = normal(300, 2, 0)
    assert sliced_wasserstein(x, x) == 0.0
    assert energy_distance(x, x) == pytest.approx(0.0, abs=1e-9)  # ‖a‖²+‖b‖²−2a·b rounding
    # The unbiased estimate for identical sets is 2(S − n²)/(n²(n − 1)) with S = Σ k ≤ n²: in
    # [−2/(n − 1), 0].
    value = mmd(x, x)
    assert -2 / (len(x) - 1) <= value <= 0.0


def test_sliced_w2_matches_closed_form_for_shifted_isotropic_gaussians():
    # N(0, I) vs N(m, I): each projection is N(0, 1) vs N(θᵀm, 1), so SW₂² = E(θᵀm)² = ‖m‖²/d.
    d, n = 4, 4000
    m = torch.tensor([1.0, -1.0, 0.5, 0.0], dtype=torch.float64)
    x, y = normal(n, d, 1), normal(n, d, 2) + m
    expected = float(m.norm()) / math.sqrt(d)
    assert sliced_wasserstein(x, y) == pytest.approx(expected, rel=0.05)
    # and it grows with the shift as ‖m‖ (SW₂ is linear in the shift scale)
    half = sliced_wasserstein(x, normal(n, d, 2) + m / 2)
    assert half == pytest.approx(expected / 2, rel=0.1)


@pytest.mark.parametrize("m", [300, 200])
def test_sliced_w2_equals_pot_and_is_reproducible(m):
    x, y = normal(300, 3, 3).numpy(), normal(m, 3, 4, shift=0.3).numpy()
    ours = sliced_wasserstein(x, y, n_projections=100, seed=7)
    pot = ot.sliced_wasserstein_distance(x, y, n_projections=100, seed=7)
    assert ours == pytest.approx(pot, rel=1e-10)
    assert (
        sliced_wasserstein(torch.from_numpy(x), torch.from_numpy(y), n_projections=100, seed=7)
        == ours
    )
    assert sliced_wasserstein(x, y, n_projections=100, seed=8) != ours


def test_sliced_w2_in_one_dim_is_exact_w2():
    # In 1-D every direction is ±1, so SW₂ is W₂: for equal sizes, the RMS gap of sorted values.
    x, y = normal(500, 1, 5), normal(500, 1, 6, shift=0.7)
    exact = np.sqrt(np.mean((np.sort(x[:, 0].numpy()) - np.sort(y[:, 0].numpy())) ** 2))
    assert sliced_wasserstein(x[:, 0], y, n_projections=3) == pytest.approx(exact, rel=1e-12)


def test_distances_flatten_image_shaped_data():
    x = torch.randn(50, 1, 3, 3, generator=gen(0))
    y = torch.randn(60, 1, 3, 3, generator=gen(1)) + 0.2
    for name, fn in DISTANCES.items():
        assert fn(x, y) == pytest.approx(fn(x.reshape(50, 9), y.reshape(60, 9)), rel=1e-12), name


def test_mmd_matches_full_matrix_formula(monkeypatch):
    # Tiny blocks force many row blocks and the symmetric (upper-triangle) path.
    monkeypatch.setattr(dist_mod, "_BLOCK_ENTRIES", 1000)
    x, y = normal(150, 2, 7).numpy(), normal(120, 2, 8, shift=0.4).numpy()
    for bw in [(0.3, 1.0, 2.5), (0.25, 0.5, 1.0, 2.0, 4.0)]:  # the second uses the squaring path
        assert mmd(x, y, bandwidths=bw) == pytest.approx(brute_mmd(x, y, bw), rel=1e-10, abs=1e-14)
    bw = default_bandwidths(x, y)
    median = np.median(scipy.spatial.distance.pdist(np.concatenate([x, y])))
    assert bw == pytest.approx(tuple(median * s for s in (0.25, 0.5, 1, 2, 4)), rel=1e-12)
    assert mmd(x, y) == pytest.approx(brute_mmd(x, y, bw), rel=1e-10)


def test_mmd_is_unbiased_under_equal_laws_and_grows_with_shift():
    null = np.array([mmd(normal(150, 2, 2 * i), normal(150, 2, 2 * i + 1)) for i in range(12)])
    stderr = null.std(ddof=1) / np.sqrt(len(null))
    assert abs(null.mean()) < 3 * stderr
    bw = (0.5, 1.0, 2.0)  # fixed bandwidths: MMD² then increases with the mean shift
    x = normal(300, 2, 50)
    values = [mmd(x, normal(300, 2, 51, shift=s), bandwidths=bw) for s in (0.5, 1.0, 2.0)]
    assert values[0] > 10 * null.std(ddof=1)
    assert values[0] < values[1] < values[2]


def test_energy_distance_equals_scipy_squared_in_one_dim():
    a = np.random.default_rng(0).normal(size=300)
    b = np.random.default_rng(1).standard_t(df=3, size=170) + 0.3
    # SciPy reports the square root of 2E|X−Y| − E|X−X'| − E|Y−Y'|.
    assert energy_distance(a, b) == pytest.approx(scipy.stats.energy_distance(a, b) ** 2, rel=1e-9)


def test_energy_distance_matches_full_matrix_formula_in_blocks(monkeypatch):
    monkeypatch.setattr(dist_mod, "_BLOCK_ENTRIES", 1000)
    x, y = normal(130, 3, 9).numpy(), normal(110, 3, 10, shift=0.5).numpy()
    assert energy_distance(x, y) == pytest.approx(brute_energy(x, y), rel=1e-10)


def test_energy_distance_grows_with_shift_like_the_population_value():
    # 1-D, N(0,1) vs N(m,1): 2E|X−Y| − 2E|X−X'| with X−Y ~ N(−m, 2), X−X' ~ N(0, 2).
    def folded_mean(mu, s):
        return s * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * s * s)) + mu * (
            1 - 2 * scipy.stats.norm.cdf(-mu / s)
        )

    # Stratified "samples" (normal quantiles at (i + ½)/n) carry almost no sampling noise, so the
    # estimate sits within O(1/n) of the population value.
    x = scipy.stats.norm.ppf((np.arange(2000) + 0.5) / 2000)
    values = []
    for m in (0.5, 1.0, 2.0):
        exact = 2 * folded_mean(m, math.sqrt(2)) - 2 * folded_mean(0.0, math.sqrt(2))
        values.append(energy_distance(x, x + m))
        assert values[-1] == pytest.approx(exact, rel=0.02)
    assert values[0] < values[1] < values[2]


# -- noise floor and comparison -----------------------------------------------------------------


def test_noise_floor_is_positive_reproducible_and_shrinks_with_n():
    sample = gaussian_sampler(2)
    small = noise_floor(sample, 100, distance="sliced_w2", repeats=4, seed=3)
    assert small.mean > 0 and small.std > 0 and len(small.values) == 4 and small.n == 100
    assert small.rms >= small.mean
    assert noise_floor(sample, 100, distance="sliced_w2", repeats=4, seed=3) == small
    large = noise_floor(sample, 1600, distance="sliced_w2", repeats=4, seed=3)
    assert large.mean < small.mean / 2  # the floor falls roughly as n^(-1/2)
    e = noise_floor(sample, 200, distance=energy_distance, repeats=3)
    assert e.mean > 0


def test_protocol_with_a_sampler_every_distance():
    """Exact samples sit inside the calibration band; a shift of 0.5·(1, 1) does not: SW₂ grows
    like the shift (a distance), MMD² and energy like its square."""
    sample = gaussian_sampler(2)
    same = measure_against_law(sample(400, gen(100)), sample, distances=tuple(DISTANCES))
    assert set(same) == set(DISTANCES)
    for name in ("sliced_w2", "energy"):
        m = same[name]
        assert m.verdict == "at the floor" and m.floor > 0 and m.n == 400, (name, m)
    far = measure_against_law(sample(400, gen(100)) + 0.5, sample, distances=tuple(DISTANCES))
    assert far["sliced_w2"].value == pytest.approx(0.5, rel=0.15)
    assert far["sliced_w2"].ratio > 3.0 and far["sliced_w2"].verdict == "above the floor"
    for name in ("mmd", "energy"):
        assert far[name].ratio > 10.0, (name, far[name])


def test_protocol_with_held_out_data():
    """For a file, the law is draws of distinct held-out rows (``law_of_set``)."""
    sample = gaussian_sampler(2)
    held_out = sample(1200, gen(200))
    law = law_of_set(held_out)
    same = measure_against_law(sample(300, gen(201)), law)["sliced_w2"]
    assert same.n == 300 and same.ratio < same.band[1] + 0.3
    far = measure_against_law(sample(300, gen(201)) + 0.5, law)["sliced_w2"]
    assert far.ratio > 3.0
    with pytest.raises(ValueError, match="cannot draw 2000 distinct rows"):
        law(2000, gen(1))


# -- validation ---------------------------------------------------------------------------------


def test_distance_inputs_are_validated():
    x = normal(20, 2, 0)
    for fn in DISTANCES.values():
        with pytest.raises(ValueError, match=r"x and y must have the same per-example shape"):
            fn(x, normal(20, 3, 1))
        with pytest.raises(ValueError, match="y is empty"):
            fn(x, torch.zeros(0, 2))
        bad = x.clone()
        bad[3, 1] = float("nan")
        with pytest.raises(ValueError, match="y holds non-finite"):
            fn(x, bad)
        bad[3, 1] = float("inf")
        with pytest.raises(ValueError, match="x holds non-finite"):
            fn(bad.numpy(), x)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(x, x, n_projections=0)
    with pytest.raises(ValueError, match="bandwidths"):
        mmd(x, x, bandwidths=[1.0, -1.0])
    with pytest.raises(ValueError, match="at least 2 samples"):
        mmd(x[:1], x)
    with pytest.raises(TypeError, match="real numbers"):
        energy_distance(x.to(torch.complex128), x)
    with pytest.raises(ValueError, match="distance must be one of"):
        noise_floor(gaussian_sampler(2), 10, distance="kl")
    with pytest.raises(ValueError, match="distances must name"):
        measure_against_law(x, gaussian_sampler(2), distances=("kl",))
    with pytest.raises(ValueError, match="must return n = 10"):
        noise_floor(lambda n, g: torch.zeros(n + 1, 2), 10, distance="energy")


# -- mode weights -------------------------------------------------------------------------------


class IsotropicMixture:
    """Stand-in with the two members the estimates use: ``weights`` and ``responsibilities``."""

    def __init__(self, means, std, weights):
        self.means = torch.as_tensor(means, dtype=torch.float64)
        self.std = std
        self.weights = torch.as_tensor(weights, dtype=torch.float64)

    def responsibilities(self, x, sigma=None):
        var = self.std**2 + (0.0 if sigma is None else sigma**2)
        d2 = torch.cdist(x.double(), self.means).square()
        return torch.softmax(self.weights.log() - d2 / (2 * var), dim=1)

    def sample(self, n, generator):
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        return self.means[k] + self.std * z, k


def test_mixture_weights_on_exact_draws_match_the_weights():
    target = IsotropicMixture([[-5.0, 0.0], [5.0, 0.0], [0.0, 8.0]], 1.0, [0.2, 0.5, 0.3])
    n = 3000
    x, k = target.sample(n, gen(0))
    hard = mixture_weights(x, target)
    # modes 5+ std apart: every hard assignment is the true component
    assert torch.equal(hard, torch.bincount(k, minlength=3).double() / n)
    stderr = torch.sqrt(target.weights * (1 - target.weights) / n)
    assert bool(((hard - target.weights).abs() < 3 * stderr).all())
    soft = mixture_weights(x.numpy(), target, soft=True)
    assert soft.shape == (3,) and float(soft.sum()) == pytest.approx(1.0)
    assert torch.allclose(soft, hard, atol=1e-3)
    assert mode_weight_error(x, target) == pytest.approx(float((hard - target.weights).abs().max()))


def test_mode_weight_error_for_a_collapsed_sampler():
    target = IsotropicMixture([[-5.0], [5.0]], 1.0, [0.3, 0.7])
    collapsed = 5.0 + torch.randn(200, 1, generator=gen(1), dtype=torch.float64)
    assert mode_weight_error(collapsed, target) == pytest.approx(0.3)  # (0, 1) vs (0.3, 0.7)


@pytest.mark.skipif(
    importlib.util.find_spec("scorelab.targets.mixture") is None, reason="targets.mixture absent"
)
def test_mixture_weights_with_the_library_mixture():
    from scorelab.targets.mixture import GaussianMixture

    eye = torch.eye(2, dtype=torch.float64)
    target = GaussianMixture(
        torch.tensor([[-6.0, 0.0], [6.0, 0.0]]), torch.stack([eye, eye]), torch.tensor([0.25, 0.75])
    )
    n = 2000
    x = target.sample(n, generator=gen(2), dtype=torch.float64)
    stderr = math.sqrt(0.25 * 0.75 / n)
    assert mode_weight_error(x, target) < 3 * stderr


def test_fraction_below_on_the_seed_003_mixture():
    # 0.1·N(−3, 1) + 0.9·N(3, 1); the left mode's weight is read off below 0.
    target = IsotropicMixture([[-3.0], [3.0]], 1.0, [0.1, 0.9])
    n = 4000
    x, _ = target.sample(n, gen(3))
    assert abs(fraction_below(x, 0.0) - 0.1) < 3 * math.sqrt(0.09 / n)
    assert fraction_below(x[:, 0], 0.0) == fraction_below(x, 0.0)


def test_mode_inputs_are_validated():
    target = IsotropicMixture([[-5.0, 0.0], [5.0, 0.0]], 1.0, [0.5, 0.5])
    with pytest.raises(ValueError, match=r"shape \(B,\) or \(B, 1\)"):
        fraction_below(torch.zeros(5, 2), 0.0)
    with pytest.raises(ValueError, match="threshold"):
        fraction_below(torch.zeros(5), float("nan"))
    bad = torch.zeros(4, 2)
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match="samples holds non-finite"):
        mixture_weights(bad, target)
    with pytest.raises(ValueError, match="samples must have shape"):
        mixture_weights(torch.zeros(0, 2), target)

    class Broken(IsotropicMixture):
        def responsibilities(self, x, sigma=None):
            return super().responsibilities(x)[:, 0]

    with pytest.raises(ValueError, match=r"must return shape \(B, K\)"):
        mixture_weights(torch.zeros(4, 2), Broken([[0.0, 0.0]], 1.0, [1.0]))


def _thin_mixture():
    from scorelab.targets.mixture import GaussianMixture

    covs = torch.stack(
        [torch.diag(torch.tensor([0.05, 2.0]) ** 2), torch.diag(torch.tensor([1.0, 0.1]) ** 2)]
    )
    return GaussianMixture(torch.tensor([[-8.0, 0.0], [8.0, 0.0]]), covs, torch.tensor([0.3, 0.7]))


def test_component_spreads_of_exact_draws_are_one_and_read_a_known_shrink():
    target = _thin_mixture()
    n = 20_000
    x = target.sample(n, generator=gen(4), dtype=torch.float64)
    ratios = component_axis_std_ratios(x, target)
    assert ratios.shape == (2, 2)
    # Standard error of a sample std ratio ≈ 1/√(2 n w_k): 0.009 and 0.006 here.
    se = 1.0 / torch.sqrt(2 * n * target.weights.double())
    assert bool(((ratios - 1).abs() < 4 * se[:, None]).all()), ratios
    # Pull every draw towards its own component's mean by a factor 0.6 (the components are 16
    # stds apart, so the nearest mean is the generating one): every ratio becomes 0.6 × itself.
    k = torch.cdist(x, target.means.double()).argmin(dim=1)
    mu = target.means.double()[k]
    shrunk = mu + 0.6 * (x - mu)
    assert torch.allclose(component_axis_std_ratios(shrunk, target), 0.6 * ratios, atol=1e-6)
    report = component_spread_report(shrunk, target)
    assert report["thinnest_axis_std_ratio"] == pytest.approx((0.6 * ratios[:, 0]).tolist())
    assert report["weighted_thinnest"] == pytest.approx(
        0.6 * float(target.weights.double() @ ratios[:, 0])
    )
    assert report["standard_error"] == pytest.approx(se.tolist())
    # Axes come thinnest first: component 0 is thin along x, component 1 along y.
    stretched = x.clone()
    stretched[:, 0] = mu[:, 0] + 2.0 * (x[:, 0] - mu[:, 0])
    after = component_axis_std_ratios(stretched, target)
    assert after[0, 0] == pytest.approx(2.0 * float(ratios[0, 0]), rel=1e-6)
    assert after[1, 1] == pytest.approx(2.0 * float(ratios[1, 1]), rel=1e-6)
    with pytest.raises(ValueError, match=r"same D"):
        component_axis_std_ratios(torch.zeros(5, 3), target)


# -- score error --------------------------------------------------------------------------------


def exact_score(x, sigma):
    """∇ log of N(0, I) ∗ N(0, σ²I) = N(0, (1 + σ²) I)."""
    return -x / (1 + sigma**2).reshape(-1, *([1] * (x.ndim - 1)))


def test_score_error_is_zero_for_the_same_function_and_exact_for_an_offset():
    x = normal(64, 3, 0)
    assert score_error(exact_score, exact_score, x, 0.5) == 0.0
    c = torch.tensor([0.3, -0.4, 1.2], dtype=torch.float64)
    err = score_error(lambda x, s: exact_score(x, s) + c, exact_score, x, torch.full((64,), 0.5))
    assert err == pytest.approx(float(c.square().sum()), rel=1e-12)


def test_score_error_per_level_reports_mse_and_relative_error():
    sample = gaussian_sampler(2)
    sigmas = [0.1, 1.0, 3.0]
    c = torch.tensor([0.5, 0.5], dtype=torch.float64)

    def offset(x, s):
        assert not torch.is_grad_enabled()  # metrics run under no_grad
        return exact_score(x, s) + c

    out = score_error_per_level(offset, exact_score, sample, sigmas, n=4000, generator=gen(0))
    assert out.sigmas.tolist() == sigmas
    assert torch.allclose(out.mse, torch.full((3,), 0.5, dtype=torch.float64), rtol=1e-12)
    # x ~ N(0, (1 + σ²) I) in d = 2: E‖s*‖² = d / (1 + σ²), so relative = ‖c‖² (1 + σ²) / d.
    expected = torch.tensor([0.5 * (1 + s**2) / 2 for s in sigmas], dtype=torch.float64)
    assert torch.allclose(out.relative, expected, rtol=0.05)
    # twice the exact score is wrong by exactly ‖s*‖²: relative error 1
    double = score_error_per_level(
        lambda x, s: 2 * exact_score(x, s), exact_score, sample, sigmas, n=100, generator=gen(1)
    )
    assert torch.allclose(double.relative, torch.ones(3, dtype=torch.float64), rtol=1e-12)


def test_score_error_per_level_on_image_shaped_data_subsets_and_is_reproducible():
    data = torch.randn(300, 1, 4, 4, generator=gen(5), dtype=torch.float64)
    wrong = lambda x, s: 0.9 * exact_score(x, s)  # noqa: E731
    a = score_error_per_level(
        wrong, exact_score, data, torch.tensor([0.5, 2.0]), n=100, generator=gen(6)
    )
    b = score_error_per_level(
        wrong, exact_score, data, torch.tensor([0.5, 2.0]), n=100, generator=gen(6)
    )
    assert torch.equal(a.mse, b.mse) and a.mse.shape == (2,)
    assert torch.allclose(a.relative, torch.full((2,), 0.01, dtype=torch.float64), rtol=1e-12)


def test_score_error_inputs_are_validated():
    x = normal(8, 2, 0)
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        score_error(exact_score, exact_score, x, -1.0)
    with pytest.raises(ValueError, match=r"score\(x, sigma\) must return"):
        score_error(lambda x, s: x[:, :1], exact_score, x, 1.0)
    with pytest.raises(ValueError, match="sigmas must be"):
        score_error_per_level(exact_score, exact_score, x, [], n=4)
    with pytest.raises(ValueError, match="sigmas must be"):
        score_error_per_level(exact_score, exact_score, x, [1.0, 0.0], n=4)
    with pytest.raises(ValueError, match="n must be"):
        score_error_per_level(exact_score, exact_score, x, [1.0], n=0)
