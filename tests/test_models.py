"""Score networks: shapes, conditioning, wrappers against exact Gaussian scores, registry."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from scorelab.losses import multilevel_dsm_loss
from scorelab.models import (
    MODEL_NAMES,
    ConditionedSimpleResnet,
    FourierTimeMLP,
    GaussianFourierFeatures,
    IndexConditioned,
    LevelEmbedding,
    ScoreMLP,
    SigmaInputMLP,
    SmallUNet,
    SoftplusMLP,
    TimeConditioned,
    as_score_fn,
    build_model,
    log_sigma_features,
    model_spec,
    nearest_level,
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


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def sigmas_for(batch: int) -> torch.Tensor:
    return torch.linspace(0.05, 3.0, batch)


def resnet_score() -> IndexConditioned:
    net = ConditionedSimpleResnet(1, 1, n_filters=8, n_blocks=1, num_embeddings=3)
    return IndexConditioned(net, [1.0, 0.3, 0.1], scale_by_sigma=True)


def time_mlp_score() -> TimeConditioned:
    sde = VESDELambda(lam=10.0)
    return TimeConditioned(FourierTimeMLP(2, sde_sigma_fn=sde.sigma), sde)


CASES = [
    (lambda: ScoreMLP(1, hidden=16, depth=1), (4, 1)),
    (lambda: ScoreMLP(2, hidden=16, depth=1), (4, 2)),
    (lambda: ScoreMLP(5, hidden=16, depth=1), (4, 5)),
    (lambda: ScoreMLP(4, hidden=16, depth=1), (4, 2, 2)),
    (lambda: SigmaInputMLP(1), (4, 1)),
    (lambda: SigmaInputMLP(5, log_sigma=True), (4, 5)),
    (lambda: SoftplusMLP(2), (4, 2)),
    (time_mlp_score, (4, 2)),
    (lambda: SmallUNet(base=8, embed_dim=16), (2, 1, 28, 28)),
    (lambda: SmallUNet(base=8, embed_dim=16), (2, 1, 8, 8)),
    (resnet_score, (2, 1, 28, 28)),
    (resnet_score, (2, 1, 8, 8)),
]


@pytest.mark.parametrize(("make", "shape"), CASES)
def test_output_shape_matches_input(make, shape: tuple[int, ...]) -> None:
    net = make()
    x = randn(*shape)
    out = net(x, sigmas_for(shape[0]))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()


def test_conditioned_resnet_depends_on_level() -> None:
    """Seed 000 ``test_conditioned_resnet``: another level index gives another output."""
    torch.manual_seed(0)  # parameter init of the test network
    net = ConditionedSimpleResnet(
        in_channels=1, out_channels=1, n_filters=16, n_blocks=1, num_embeddings=2
    )
    x = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    out0 = net(x, torch.zeros(1, dtype=torch.long))
    out1 = net(x, torch.ones(1, dtype=torch.long))
    assert out0.shape == (1, 1, 28, 28)
    assert not torch.allclose(out0, out1)
    with pytest.raises(ValueError, match="index"):
        net(x, torch.full((1,), 2, dtype=torch.long))


def test_fourier_features_are_a_saved_buffer() -> None:
    ff = GaussianFourierFeatures(8, scale=2.0, generator=torch.Generator().manual_seed(0))
    assert "W" in ff.state_dict() and not list(ff.parameters())
    other = GaussianFourierFeatures(8, scale=2.0, generator=torch.Generator().manual_seed(1))
    v = torch.tensor([0.0, 0.3, -1.2])
    assert not torch.allclose(ff(v), other(v))
    other.load_state_dict(ff.state_dict())
    torch.testing.assert_close(ff(v), other(v))
    feats = ff(v)
    assert feats.shape == (3, 8)
    torch.testing.assert_close(feats[:, :4] ** 2 + feats[:, 4:] ** 2, torch.ones(3, 4))
    torch.testing.assert_close(feats[0], torch.cat([torch.zeros(4), torch.ones(4)]))
    with pytest.raises(ValueError, match="even"):
        GaussianFourierFeatures(7)


def test_level_embedding_and_sigma_features() -> None:
    emb = LevelEmbedding(3, 4)
    assert emb(torch.tensor([0, 2])).shape == (2, 4)
    with pytest.raises(ValueError, match="index"):
        emb(torch.tensor([3]))
    sigma = torch.tensor([0.5, 2.0])
    torch.testing.assert_close(log_sigma_features(sigma), sigma.log()[:, None])
    torch.testing.assert_close(log_sigma_features(sigma, log=False), sigma[:, None])
    with pytest.raises(ValueError, match="shape"):
        log_sigma_features(sigma[:, None])


def test_nearest_level_is_nearest_in_log_space() -> None:
    sigmas = torch.tensor([0.1, 1.0, 10.0])
    # 0.4 is nearer 0.1 in absolute terms but nearer 1.0 in log terms.
    got = nearest_level(torch.tensor([0.4, 0.25, 0.1, 50.0, 3.0, 3.3]), sigmas)
    assert got.tolist() == [1, 0, 0, 2, 1, 2]
    assert got.dtype == torch.long


class _EchoLevel(nn.Module):
    """Returns its level index everywhere: lets a test read which level was chosen."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1))).expand_as(x)


def test_index_conditioned_picks_nearest_level_and_scales() -> None:
    x = torch.zeros(3, 2)
    sigma = torch.tensor([0.4, 9.0, 0.1])
    wrapped = IndexConditioned(_EchoLevel(), [0.1, 1.0, 10.0])
    torch.testing.assert_close(wrapped(x, sigma)[:, 0], torch.tensor([1.0, 2.0, 0.0]))
    scaled = IndexConditioned(_EchoLevel(), [0.1, 1.0, 10.0], scale_by_sigma=True)
    torch.testing.assert_close(scaled(x, sigma)[:, 0], torch.tensor([1.0, 2.0, 0.0]) / sigma)
    assert "sigmas" in wrapped.state_dict()
    with pytest.raises(ValueError, match="num_embeddings"):
        IndexConditioned(ConditionedSimpleResnet(1, 1, 4, 1, num_embeddings=2), [1.0, 0.5, 0.1])


# Exact Gaussian scores for the time wrapper: N(m, C) data.
M2 = torch.tensor([1.0, -0.5], dtype=DT)
C2 = torch.tensor([[1.0, 0.4], [0.4, 0.5]], dtype=DT)


def gaussian_score(x: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> torch.Tensor:
    """Score of N(mean_b, cov_b) at x_b; mean (B, 2), cov (B, 2, 2)."""
    return -torch.linalg.solve(cov, (x - mean).unsqueeze(-1)).squeeze(-1)


def noised_score(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    cov = C2 + sigma[:, None, None] ** 2 * torch.eye(2, dtype=DT)
    return gaussian_score(x, M2.expand_as(x), cov)


class _ExactMarginalScore(nn.Module):
    """∇ log p_t of the SDE marginal N(α_t m, α_t² C + σ_t² I): a stand-in time network."""

    def __init__(self, sde) -> None:
        super().__init__()
        self.sde = sde

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        alpha, std = self.sde.alpha(t), self.sde.sigma(t)
        cov = alpha[:, None, None] ** 2 * C2 + std[:, None, None] ** 2 * torch.eye(2, dtype=DT)
        return gaussian_score(x, alpha[:, None] * M2, cov)


@pytest.mark.parametrize("sde", [VESDELambda(lam=10.0), VPSDE()], ids=["ve", "vp"])
def test_time_conditioned_gives_exact_noised_score(sde) -> None:
    x = randn(5, 2, dtype=DT)
    sigma = torch.tensor([0.05, 0.3, 1.0, 2.0, 4.0], dtype=DT)
    wrapped = TimeConditioned(_ExactMarginalScore(sde), sde)
    torch.testing.assert_close(wrapped(x, sigma), noised_score(x, sigma))


def test_fourier_time_mlp_divides_by_sigma_t() -> None:
    sde = VESDELambda(lam=10.0)
    net = FourierTimeMLP(2, sde_sigma_fn=sde.sigma, generator=torch.Generator().manual_seed(0))
    x, t = randn(4, 2), torch.tensor([0.01, 0.2, 0.5, 1.0])
    raw = net.net(torch.cat([x, net.embed(t)], dim=1))
    torch.testing.assert_close(net(x, t) * sde.sigma(t)[:, None].float(), raw)
    with pytest.raises(TypeError, match="sde_sigma_fn"):
        FourierTimeMLP(2, sde_sigma_fn=3.0)


def test_score_mlp_starts_at_the_gaussian_prior_score() -> None:
    """Zero output layer: score = −x/(σ² + σ_d²), the EDM skip path alone."""
    net = ScoreMLP(3, hidden=16, depth=2, sigma_data=0.5).to(DT)
    x = randn(6, 3, dtype=DT)
    sigma = torch.linspace(0.01, 5.0, 6, dtype=DT)
    torch.testing.assert_close(net(x, sigma), -x / (sigma[:, None] ** 2 + 0.25))
    torch.testing.assert_close(net(x, 0.7), -x / (0.49 + 0.25))
    with pytest.raises(ValueError, match="dim"):
        net(randn(6, 4, dtype=DT), sigma)


def test_score_mlp_learns_gaussian_noised_score() -> None:
    """A short multi-level DSM fit cuts the error to the exact noised score by a factor 5."""
    torch.manual_seed(0)  # parameter init of the test network
    net = ScoreMLP(2, hidden=32, depth=1, embed_dim=16).to(DT)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    chol = torch.linalg.cholesky(C2)
    sigmas = [0.1, 0.3, 1.0]
    x_eval = M2 + torch.randn(512, 2, generator=g, dtype=DT) @ chol.T
    levels = torch.tensor(sigmas, dtype=DT).repeat_interleave(512)
    x_eval = x_eval.repeat(3, 1) + levels[:, None] * torch.randn(1536, 2, generator=g, dtype=DT)

    def error() -> float:
        with torch.no_grad():
            diff = (net(x_eval, levels) - noised_score(x_eval, levels)) * levels[:, None]
            return float(diff.square().sum(1).mean())

    before = error()
    for _ in range(60):
        x0 = M2 + torch.randn(256, 2, generator=g, dtype=DT) @ chol.T
        loss = multilevel_dsm_loss(net, x0, sigmas, generator=g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert error() < before / 5, (before, error())


def test_small_unet_size_and_shape_checks() -> None:
    net = SmallUNet()
    assert sum(p.numel() for p in net.parameters()) < 1_000_000
    with pytest.raises(ValueError, match="divisible by 4"):
        net(randn(1, 1, 30, 30), torch.ones(1))
    # Untrained output layer is zero, so the score is 0; σ scales it after training.
    assert torch.equal(net(randn(2, 1, 8, 8), torch.ones(2)), torch.zeros(2, 1, 8, 8))


def test_as_score_fn_keeps_mode_and_accepts_float_sigma() -> None:
    net = SigmaInputMLP(2)
    x = randn(3, 2)
    for train in (True, False):
        net.train(train)
        score = as_score_fn(net)
        out = score(x, 0.5)
        assert net.training is train
        torch.testing.assert_close(out, net(x, torch.full((3,), 0.5)))


SPECS = [
    model_spec("score-mlp", dim=2, hidden=16, depth=1, embed_dim=8, sigma_data=0.5),
    model_spec("softplus-mlp", dim=2, hidden=8),
    model_spec("sigma-input-mlp", dim=2, hidden=8),
    model_spec(
        "conditioned-resnet",
        in_channels=1,
        out_channels=1,
        n_filters=4,
        n_blocks=1,
        sigmas=[1.0, 0.5, 0.1],
        scale_by_sigma=True,
    ),
    model_spec("small-unet", base=8, channel_mult=(1, 2), embed_dim=16),
]


@pytest.mark.parametrize("spec", SPECS, ids=[s["name"] for s in SPECS])
def test_registry_round_trip(spec: dict) -> None:
    spec = json.loads(json.dumps(spec))  # a plain config survives JSON
    first = build_model(spec)
    with torch.no_grad():  # move every weight off its init (zero output layers included)
        for p in first.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    x = randn(2, 1, 8, 8) if spec["name"] in ("small-unet", "conditioned-resnet") else randn(2, 2)
    sigma = torch.tensor([0.5, 0.1])
    second = build_model(spec)
    assert not torch.allclose(first(x, sigma), second(x, sigma))
    second.load_state_dict(first.state_dict())
    torch.testing.assert_close(second(x, sigma), first(x, sigma))


def test_registry_errors() -> None:
    assert set(MODEL_NAMES) == {s["name"] for s in SPECS}
    with pytest.raises(ValueError, match="score-mlp"):
        model_spec("unet")
    with pytest.raises(ValueError, match="small-unet"):
        build_model({"name": "resnet", "kwargs": {}})
    with pytest.raises(TypeError, match="plain value"):
        model_spec("score-mlp", dim=torch.tensor(2))
    with pytest.raises(TypeError, match="conditioned-resnet"):
        build_model(model_spec("conditioned-resnet", in_channels=1))
