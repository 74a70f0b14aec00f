"""Controllable generation against exact answers: class conditionals, guidance, imputation.

Every sampling test compares with exact draws of the exact conditional law (sliced-W2 divided by
the floor of independent exact pairs, and mode weights within a few standard errors) and has a
negative control that must fail the same check, so the tests can fail.
"""

from __future__ import annotations

import math

import pytest
import torch

from scorelab.losses import conditional_dsm_loss, label_dropout
from scorelab.metrics import mixture_weights, sliced_wasserstein
from scorelab.models import LabelEmbedding, ScoreMLP, SmallUNet, build_model, model_spec
from scorelab.samplers import (
    annealed_langevin,
    check_mask,
    classifier_free_guidance,
    classifier_guidance,
    classifier_log_prob_grad,
    dpmpp_2m_sde,
    dpmpp_3m,
    edm_heun,
    inpaint,
    inpaint_replacement,
    moment_matched_prior,
    reconstruction_guidance,
    with_label,
)
from scorelab.sde import geometric_sigmas
from scorelab.targets import ClassConditionalMixture, GaussianMixture, ObservedMixture
from scorelab.utils import NULL_LABEL, seeded_module

F64 = torch.float64
SIGMA_MAX = 20.0
N = 2000  # samples per sampling test


def four_modes() -> GaussianMixture:
    """Four separated 2-D components (separation >= 3 std) with unequal weights."""
    means = torch.tensor([[-5.0, -2.0], [-3.0, 3.0], [4.0, 2.0], [3.0, -4.0]], dtype=F64)
    covs = torch.tensor(
        [
            [[1.0, 0.5], [0.5, 1.0]],
            [[0.6, 0.0], [0.0, 0.6]],
            [[1.2, -0.4], [-0.4, 0.8]],
            [[0.5, 0.0], [0.0, 1.5]],
        ],
        dtype=F64,
    )
    return GaussianMixture(means, covs, torch.tensor([0.3, 0.1, 0.35, 0.25], dtype=F64))


def labelled() -> ClassConditionalMixture:
    """Two classes of two components each: class 0 = {0, 1} (weights 3:1), class 1 = {2, 3}."""
    return ClassConditionalMixture(four_modes(), torch.tensor([0, 0, 1, 1]))


def floor_ratio(samples: torch.Tensor, draw, n_pairs: int = 8) -> float:
    """SW₂(samples, ref) / rms SW₂(exact, ref) over ``n_pairs`` exact draws of the same size."""
    g = torch.Generator().manual_seed(12345)
    ref = draw(g)
    floor = [sliced_wasserstein(draw(g), ref, n_projections=200) for _ in range(n_pairs)]
    rms = math.sqrt(sum(f * f for f in floor) / len(floor))
    return sliced_wasserstein(samples, ref, n_projections=200) / rms


# ---------------------------------------------------------------------------------------------
# Exact identities
# ---------------------------------------------------------------------------------------------


def test_class_conditional_score_is_the_sub_mixture_score_and_bayes_holds() -> None:
    cc = labelled()
    g = torch.Generator().manual_seed(0)
    x = 4.0 * torch.randn(64, 2, generator=g, dtype=F64)
    sigma = 0.05 + 3.0 * torch.rand(64, generator=g, dtype=F64)
    probs = cc.class_log_probs(x, sigma).exp()
    torch.testing.assert_close(probs.sum(1), torch.ones(64, dtype=F64))
    for y in (0, 1):
        sub = cc.conditional(y)
        torch.testing.assert_close(cc.score(x, sigma, y), sub.noised_score(x, sigma))
        # ∇ log p(y | x_σ) in closed form equals autograd of the classifier's log-probability.
        x_ = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(cc.class_log_probs(x_, sigma)[:, y].sum(), x_)
        torch.testing.assert_close(cc.class_log_prob_grad(x, sigma, y), grad)
        # Bayes: guidance at scale 1 with the exact classifier is the conditional score.
        guided = classifier_guidance(cc.noised_score, with_label(cc.class_log_prob_grad, y), 1.0)
        torch.testing.assert_close(guided(x, sigma), sub.noised_score(x, sigma))
        # The same through autograd of the exact classifier's logits.
        by_autograd = classifier_log_prob_grad(cc.class_log_probs, y)
        torch.testing.assert_close(by_autograd(x, sigma), grad)
    torch.testing.assert_close(cc.score(x, sigma, NULL_LABEL), cc.noised_score(x, sigma))
    mixed = torch.tensor([0, 1, NULL_LABEL, 1] * 16)
    rows = cc.score(x, sigma, mixed)
    torch.testing.assert_close(rows[1], cc.conditional(1).noised_score(x[1:2], sigma[1:2])[0])
    torch.testing.assert_close(cc.class_weights, torch.tensor([0.4, 0.6], dtype=F64))


def test_classifier_free_guidance_is_the_affine_combination() -> None:
    cc = labelled()
    x = torch.randn(16, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    sigma = torch.full((16,), 0.7, dtype=F64)
    cond, uncond = cc.score(x, sigma, 1), cc.noised_score(x, sigma)
    for w in (0.0, 1.0, 3.5):
        s = classifier_free_guidance(with_label(cc.score, 1), with_label(cc.score), w)
        torch.testing.assert_close(s(x, sigma), (1 + w) * cond - w * uncond)
    # CFG with weight w is classifier guidance of scale 1 + w with the implicit classifier.
    s = classifier_free_guidance(with_label(cc.score, 1), with_label(cc.score), 2.0)
    g = classifier_guidance(cc.noised_score, with_label(cc.class_log_prob_grad, 1), 3.0)
    torch.testing.assert_close(s(x, sigma), g(x, sigma))


def _joint_log_prob(gm: GaussianMixture, mask: torch.Tensor, x_sigma, sigma: float, y_obs):
    """log p(x_σ, x_o = y) by brute force: per component, the joint Gaussian of (x_o, x_σ)."""
    o = mask.bool()
    terms = []
    for k in range(gm.n_components):
        mu, cov = gm.means[k], gm.covs[k]
        d, do = gm.dim, int(o.sum())
        c = torch.zeros(do + d, do + d, dtype=F64)
        c[:do, :do] = cov[o][:, o]
        c[:do, do:] = cov[o]
        c[do:, :do] = cov[:, o]
        c[do:, do:] = cov + sigma**2 * torch.eye(d, dtype=F64)
        law = torch.distributions.MultivariateNormal(torch.cat([mu[o], mu]), c)
        terms.append(gm.weights[k].log() + law.log_prob(torch.cat([y_obs, x_sigma])))
    return torch.logsumexp(torch.stack(terms), 0)


def test_observed_mixture_score_and_weights_match_brute_force() -> None:
    g = torch.Generator().manual_seed(2)
    k, d = 3, 3
    a = torch.randn(k, d, d, generator=g, dtype=F64)
    gm = GaussianMixture(
        3.0 * torch.randn(k, d, generator=g, dtype=F64),
        a @ a.transpose(1, 2) + 0.5 * torch.eye(d, dtype=F64),
        torch.tensor([0.5, 0.2, 0.3], dtype=F64),
    )
    mask = torch.tensor([0, 1, 0])  # observe the middle coordinate, impute two
    observed = 2.0 * torch.randn(4, d, generator=g, dtype=F64)
    om = ObservedMixture(gm, mask, observed)
    x = 2.0 * torch.randn(4, d, generator=g, dtype=F64)
    sigma = 0.6
    score = om.score(x, sigma)
    for b in range(4):
        x_ = x[b].clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(_joint_log_prob(gm, mask, x_, sigma, observed[b, 1:2]), x_)
        torch.testing.assert_close(score[b], grad)
    # Posterior weights: Bayes on the marginal of the observed coordinate.
    marg = GaussianMixture(gm.means[:, 1:2], gm.covs[:, 1:2, 1:2], gm.weights)
    torch.testing.assert_close(om.posterior_weights(), marg.responsibilities(observed[:, 1:2]))
    # Guidance with the exact likelihood gradient gives the conditional score back.
    guided = classifier_guidance(gm.noised_score, om.log_likelihood_grad, 1.0)
    torch.testing.assert_close(guided(x, sigma), score)
    # The missing law's mean is the conditional mean.
    torch.testing.assert_close(om.missing_law(2).mean(), om.mean()[2, [0, 2]])
    assert bool((om.sample()[:, 1] == observed[:, 1].float()).all())


def test_reconstruction_guidance_is_exact_for_isotropic_gaussian_data() -> None:
    s_d = 1.5
    gm = GaussianMixture(
        torch.tensor([[1.0, -2.0, 0.5]], dtype=F64), (s_d**2) * torch.eye(3, dtype=F64)[None]
    )
    g = torch.Generator().manual_seed(3)
    observed = torch.randn(8, 3, generator=g, dtype=F64)
    mask = torch.tensor([1.0, 0.0, 1.0], dtype=F64)
    exact = ObservedMixture(gm, mask, observed)
    approx = reconstruction_guidance(gm.noised_score, observed, mask, sigma_data=s_d)
    x = 3.0 * torch.randn(8, 3, generator=g, dtype=F64)
    for sigma in (0.05, 1.0, 10.0):
        torch.testing.assert_close(
            approx(x, torch.full((8,), sigma, dtype=F64)), exact.score(x, sigma)
        )


def test_normalized_reconstruction_guidance_divides_by_the_misfit_norm() -> None:
    # normalized=True is the Gaussian term divided, row by row, by ‖m ⊙ (y − D)‖/r_σ (the
    # gradient of −‖·‖/r instead of −½‖·‖²/r²); checked on isotropic Gaussian data, where the
    # Gaussian term is the exact one: exact score − noised score.
    s_d = 1.5
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    gm = GaussianMixture(mean[None], (s_d**2) * torch.eye(3, dtype=F64)[None])
    g = torch.Generator().manual_seed(5)
    observed = torch.randn(8, 3, generator=g, dtype=F64)
    mask = torch.tensor([1.0, 0.0, 1.0], dtype=F64)
    exact = ObservedMixture(gm, mask, observed)
    normed = reconstruction_guidance(gm.noised_score, observed, mask, sigma_data=s_d, scale=2.0,
                                     normalized=True)  # fmt: skip
    x = 3.0 * torch.randn(8, 3, generator=g, dtype=F64)
    for sigma in (0.05, 1.0, 10.0):
        sig = torch.full((8,), sigma, dtype=F64)
        s = gm.noised_score(x, sig)
        denoised = x + sigma**2 * s
        r = sigma * s_d / math.sqrt(sigma**2 + s_d**2)
        misfit = (mask * (observed - denoised)).norm(dim=1, keepdim=True) / r
        torch.testing.assert_close(normed(x, sig), s + 2.0 * (exact.score(x, sig) - s) / misfit)
    # A row whose denoiser already matches the observation gets no pull (and no NaN).
    sig = torch.full((8,), 1.0, dtype=F64)
    at_rest = x + sig[:, None] ** 2 * gm.noised_score(x, sig)
    at_rest_guided = reconstruction_guidance(gm.noised_score, at_rest, mask, sigma_data=s_d,
                                             normalized=True)  # fmt: skip
    torch.testing.assert_close(at_rest_guided(x, sig), gm.noised_score(x, sig))


# ---------------------------------------------------------------------------------------------
# Sampling reproduces the exact conditionals
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["conditional", "classifier-guidance", "cfg-w0"])
def test_guided_sampling_reproduces_the_class_conditional(how: str) -> None:
    cc, y = labelled(), 0
    cond = cc.conditional(y)
    if how == "conditional":
        score = with_label(cc.score, y)
    elif how == "classifier-guidance":
        score = classifier_guidance(cc.noised_score, with_label(cc.class_log_prob_grad, y), 1.0)
    else:
        score = classifier_free_guidance(with_label(cc.score, y), with_label(cc.score), 0.0)
    g = torch.Generator().manual_seed(4)
    x = moment_matched_prior(
        cond.mean().float(), cond.covariance().float(), SIGMA_MAX, N, generator=g
    )
    samples = dpmpp_3m(score, x, geometric_sigmas(20, sigma_min=0.02, sigma_max=SIGMA_MAX)).samples

    def draw(gen):
        return cond.sample(N, generator=gen)

    assert floor_ratio(samples, draw) < 2.0
    weights = mixture_weights(samples, cond)
    se = torch.sqrt(cond.weights * (1 - cond.weights) / N)
    assert bool(((weights.double() - cond.weights).abs() < 4 * se).all()), weights
    # Negative control: the unconditional score from the same start lands far from p(x | y).
    wrong = dpmpp_3m(
        cc.noised_score, x, geometric_sigmas(20, sigma_min=0.02, sigma_max=SIGMA_MAX)
    ).samples
    assert floor_ratio(wrong, draw) > 5.0


@pytest.mark.parametrize("sampler", ["edm_heun", "dpmpp_2m_sde", "annealed_langevin"])
def test_guidance_works_with_other_ladder_samplers(sampler: str) -> None:
    cc, y, n = labelled(), 0, 1000
    cond = cc.conditional(y)
    score = classifier_guidance(cc.noised_score, with_label(cc.class_log_prob_grad, y), 1.0)
    g = torch.Generator().manual_seed(11)
    x = moment_matched_prior(
        cond.mean().float(), cond.covariance().float(), SIGMA_MAX, n, generator=g
    )
    if sampler == "edm_heun":
        samples = edm_heun(
            score, x, geometric_sigmas(15, sigma_min=0.02, sigma_max=SIGMA_MAX)
        ).samples
    elif sampler == "dpmpp_2m_sde":
        samples = dpmpp_2m_sde(
            score, x, geometric_sigmas(40, sigma_min=0.02, sigma_max=SIGMA_MAX), generator=g
        ).samples
    else:
        sigmas = geometric_sigmas(20, sigma_min=0.02, sigma_max=SIGMA_MAX)
        samples = annealed_langevin(
            score, x, sigmas, n_steps_each=20, eps=0.5 * 0.02**2, generator=g
        ).samples
    assert floor_ratio(samples, lambda gen: cond.sample(n, generator=gen)) < 2.5
    assert float(cc.class_log_probs(samples.double()).exp()[:, y].mean()) > 0.99
    se = torch.sqrt(cond.weights * (1 - cond.weights) / n)
    assert bool(((mixture_weights(samples, cond).double() - cond.weights).abs() < 5 * se).all())


def test_stronger_guidance_concentrates_on_the_class() -> None:
    cc, y = labelled(), 1
    g = torch.Generator().manual_seed(5)
    x = moment_matched_prior(
        cc.mixture.mean().float(), cc.mixture.covariance().float(), SIGMA_MAX, 1000, generator=g
    )
    sigmas = geometric_sigmas(20, sigma_min=0.02, sigma_max=SIGMA_MAX)
    shares = []
    for scale in (0.0, 1.0):
        score = classifier_guidance(cc.noised_score, with_label(cc.class_log_prob_grad, y), scale)
        samples = dpmpp_3m(score, x, sigmas).samples
        shares.append(float(cc.class_log_probs(samples.double()).exp()[:, y].mean()))
    assert shares[0] == pytest.approx(0.6, abs=0.06)  # scale 0: the unconditional class share
    assert shares[1] > 0.99


def _imputation_case(x0: float, n: int = N):
    gm = four_modes()
    mask = torch.tensor([1.0, 0.0])
    observed = torch.tensor([[x0, 0.0]], dtype=F64).repeat(n, 1)
    return gm, mask, observed, ObservedMixture(gm, mask, observed)


@pytest.mark.parametrize("x0", [-4.0, 0.0])
def test_imputation_with_the_exact_conditional_score_matches_the_exact_law(x0: float) -> None:
    gm, mask, observed, om = _imputation_case(x0)
    law = om.missing_law(0)
    assert int((law.weights > 0.05).sum()) >= 2  # a multimodal conditional
    g = torch.Generator().manual_seed(6)
    res = inpaint(
        om.score,
        om.prior(SIGMA_MAX, g),
        geometric_sigmas(20, sigma_min=0.02, sigma_max=SIGMA_MAX),
        observed=observed.float(),
        mask=mask,
    )
    samples = res.samples
    assert bool((samples[:, 0] == observed[:, 0].float()).all())  # known values exactly
    assert floor_ratio(samples, om.sample) < 2.0
    weights = mixture_weights(samples[:, 1:], law, soft=True).double()
    se = torch.sqrt(law.weights * (1 - law.weights) / N)
    assert bool(((weights - law.weights).abs() < 4 * se + 1e-3).all()), (weights, law.weights)
    # Negative control: the unconditional mixture's missing coordinate is another law.
    free = gm.sample(N, generator=g)
    assert floor_ratio(om.complete(free[:, 1:]), om.sample) > 5.0


def test_imputation_by_exact_likelihood_guidance_with_edm_heun() -> None:
    gm, mask, observed, om = _imputation_case(-4.0, n=1000)
    g = torch.Generator().manual_seed(7)
    score = classifier_guidance(gm.noised_score, om.log_likelihood_grad, 1.0)
    samples = inpaint(
        score,
        om.prior(SIGMA_MAX, g),
        geometric_sigmas(12, sigma_min=0.02, sigma_max=SIGMA_MAX),
        observed=observed.float(),
        mask=mask,
        sampler=edm_heun,
    ).samples
    assert floor_ratio(samples, om.sample) < 2.0


@pytest.mark.parametrize("levels, resample", [(200, 1), (40, 5)])
def test_replacement_converges_for_a_gaussian_and_keeps_known_values(
    levels: int, resample: int
) -> None:
    gm = GaussianMixture(
        torch.tensor([[1.0, -1.0]], dtype=F64), torch.tensor([[[1.0, 0.8], [0.8, 1.0]]], dtype=F64)
    )
    n = 4000
    observed = torch.tensor([[2.0, 0.0]]).repeat(n, 1)
    mask = torch.tensor([1.0, 0.0])
    g = torch.Generator().manual_seed(8)
    x = moment_matched_prior(gm.mean().float(), gm.covariance().float(), SIGMA_MAX, n, generator=g)
    res = inpaint_replacement(
        gm.noised_score,
        x,
        geometric_sigmas(levels, sigma_min=0.01, sigma_max=SIGMA_MAX),
        observed=observed,
        mask=mask,
        resample=resample,
        generator=g,
    )
    # (1 + n_corrector)·(U·(L − 1) + 1): every step U times but the last (Tweedie) one.
    assert res.n_evals == 2 * (resample * (levels - 1) + 1)
    assert bool((res.samples[:, 0] == 2.0).all())
    # Exact conditional: N(-1 + 0.8·(2 - 1), 1 - 0.8²) = N(-0.2, 0.36).
    assert float(res.samples[:, 1].mean()) == pytest.approx(-0.2, abs=0.04)
    assert float(res.samples[:, 1].var()) == pytest.approx(0.36, rel=0.1)


def test_repaint_resampling_moves_replacement_towards_the_exact_posterior_weights() -> None:
    """Between two separated modes replacement misplaces mass; resampling reduces the error."""
    gm = four_modes()
    n = 1500
    observed = torch.tensor([[0.0, 0.0]], dtype=F64).repeat(n, 1)
    mask = torch.tensor([1.0, 0.0])
    # Exact p(x₁ < 0 | x₀ = 0): only the component at (3, −4) and the tail of (−5, −2) put mass
    # there; estimated from exact conditional draws.
    exact = ObservedMixture(gm, mask, observed).sample(torch.Generator().manual_seed(0))
    truth = float((exact[:, 1] < 0).double().mean())
    errors = {}
    for levels, resample in [(60, 1), (20, 25)]:
        g = torch.Generator().manual_seed(1)
        x = moment_matched_prior(gm.mean(), gm.covariance(), SIGMA_MAX, n, generator=g)
        res = inpaint_replacement(
            gm.noised_score,
            x,
            geometric_sigmas(levels, sigma_min=0.01, sigma_max=SIGMA_MAX),
            observed=observed,
            mask=mask,
            n_corrector=0,
            resample=resample,
            generator=g,
        )
        errors[resample] = abs(float((res.samples[:, 1] < 0).double().mean()) - truth)
    assert errors[1] > 0.1  # the known failure of plain replacement here
    assert errors[25] < errors[1] - 0.05


def test_inpainting_works_on_image_shaped_data_with_per_example_masks() -> None:
    gm = GaussianMixture(torch.zeros(1, 4, dtype=F64), torch.eye(4, dtype=F64)[None])

    def score(x, sigma):  # a (B, 2, 2) view of the 4-D target
        return gm.noised_score(x.reshape(-1, 4), sigma).reshape(x.shape)

    g = torch.Generator().manual_seed(9)
    observed = torch.randn(6, 2, 2, generator=g)
    mask = torch.zeros(6, 2, 2)
    mask[:3, 0, :] = 1
    mask[3:, :, 1] = 1
    x = SIGMA_MAX * torch.randn(6, 2, 2, generator=g)
    sigmas = geometric_sigmas(10, sigma_min=0.05, sigma_max=SIGMA_MAX)
    for res in (
        inpaint_replacement(
            score, x, sigmas, observed=observed, mask=mask, generator=g, keep_trajectory=True
        ),
        inpaint(
            reconstruction_guidance(score, observed, mask),
            x,
            sigmas,
            observed=observed,
            mask=mask,
            keep_trajectory=True,
        ),
    ):
        assert res.samples.shape == (6, 2, 2)
        known = mask.bool()
        assert bool((res.samples[known] == observed[known]).all())
        assert torch.equal(res.trajectory[-1], res.samples)
        assert bool(torch.isfinite(res.samples).all())


# ---------------------------------------------------------------------------------------------
# Conditional networks and label dropout
# ---------------------------------------------------------------------------------------------


def test_score_mlp_without_classes_is_unchanged_and_with_classes_conditions() -> None:
    def build(num_classes=None):
        gen = torch.Generator().manual_seed(0)
        return ScoreMLP(2, hidden=32, depth=2, generator=gen, num_classes=num_classes)

    plain, cond = seeded_module(build, 0), seeded_module(lambda: build(3), 0)
    assert set(cond.state_dict()) - set(plain.state_dict()) == {"label_embed.embedding.weight"}
    for key, value in plain.state_dict().items():  # same seed, same weights: nothing else moved
        torch.testing.assert_close(cond.state_dict()[key], value)
    torch.nn.init.normal_(cond.output.weight)
    plain.load_state_dict({k: v for k, v in cond.state_dict().items() if "label" not in k})
    x, sigma = torch.randn(5, 2), torch.full((5,), 0.5)
    # Zero label table: every label gives the unconditional output until trained.
    torch.testing.assert_close(cond(x, sigma, torch.tensor([0, 1, 2, -1, 0])), plain(x, sigma))
    torch.nn.init.normal_(cond.label_embed.embedding.weight)
    out = cond(x, sigma, torch.tensor([0, 1, 2, NULL_LABEL, 0]))
    assert not torch.allclose(out[0], cond(x, sigma, torch.tensor([1] * 5))[0])
    torch.testing.assert_close(cond(x, sigma), cond(x, sigma, torch.full((5,), NULL_LABEL)))
    with pytest.raises(ValueError, match="unconditional"):
        plain(x, sigma, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="0..2"):
        cond(x, sigma, torch.tensor([0, 1, 3, 0, 0]))
    # The spec round trip of a checkpoint keeps the label table.
    rebuilt = build_model(model_spec("score-mlp", dim=2, hidden=32, depth=2, num_classes=3))
    rebuilt.load_state_dict(cond.state_dict())
    torch.testing.assert_close(rebuilt(x, sigma, torch.tensor([2] * 5)), cond(x, sigma, 2))
    unet = SmallUNet(base=8, channel_mult=(1, 2), embed_dim=16, num_classes=2)
    img = torch.randn(2, 1, 8, 8)
    assert unet(img, torch.ones(2), torch.tensor([0, NULL_LABEL])).shape == img.shape


def test_label_dropout_and_conditional_loss() -> None:
    g = torch.Generator().manual_seed(10)
    y = torch.randint(0, 3, (20000,), generator=g)
    dropped = label_dropout(y, 0.1, generator=g)
    share = float((dropped == NULL_LABEL).double().mean())
    assert share == pytest.approx(0.1, abs=4 * math.sqrt(0.09 / 20000))
    kept = dropped != NULL_LABEL
    assert torch.equal(dropped[kept], y[kept])
    net = ScoreMLP(2, hidden=16, depth=1, num_classes=3)
    x0 = torch.randn(8, 2)
    for mode in ("random", "sum"):
        loss = conditional_dsm_loss(net, x0, y[:8], [1.0, 0.1], mode=mode, generator=g)
        assert loss.shape == (8,)
    loss.mean().backward()
    assert net.label_embed.embedding.weight.grad is not None
    with pytest.raises(ValueError, match="p_uncond"):
        label_dropout(y, 1.5)
    with pytest.raises(TypeError, match="integer"):
        label_dropout(y.float(), 0.1)
    with pytest.raises(ValueError, match="num_classes"):
        LabelEmbedding(0, 4)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def test_bad_masks_and_inputs_are_refused_with_the_fix() -> None:
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="x's shape"):
        check_mask(torch.ones(4, 2), x)
    with pytest.raises(ValueError, match="binary"):
        check_mask(torch.full((3,), 0.5), x)
    with pytest.raises(ValueError, match="hides nothing"):
        check_mask(torch.ones(3), x)
    with pytest.raises(ValueError, match="hides everything"):
        m = torch.tensor([[1, 0, 0]] * 3 + [[0, 0, 0]])
        check_mask(m, x)
    assert check_mask(torch.tensor([True, False, True]), x).shape == x.shape
    sigmas = geometric_sigmas(4, sigma_min=0.1, sigma_max=5.0)
    mask = torch.tensor([1.0, 0.0, 0.0])
    score = GaussianMixture(torch.zeros(1, 3), torch.eye(3)[None]).noised_score
    with pytest.raises(ValueError, match="observed must have x's shape"):
        inpaint_replacement(score, x, sigmas, observed=torch.zeros(4, 2), mask=mask)
    with pytest.raises(ValueError, match="hides nothing"):
        inpaint(score, x, sigmas, observed=x, mask=torch.ones(3))
    gm = four_modes()
    with pytest.raises(ValueError, match="observes nothing"):
        ObservedMixture(gm, torch.zeros(2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="observes every"):
        ObservedMixture(gm, torch.ones(2), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="binary"):
        ObservedMixture(gm, torch.tensor([0.3, 1.0]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="one row per observation"):
        ObservedMixture(gm, torch.tensor([1, 0]), torch.zeros(3, 2)).score(torch.zeros(2, 2), 1.0)
    with pytest.raises(ValueError, match="no gaps"):
        ClassConditionalMixture(gm, torch.tensor([0, 0, 2, 2]))
    with pytest.raises(ValueError, match="4 integers"):
        ClassConditionalMixture(gm, torch.tensor([0, 1]))
    cc = labelled()
    with pytest.raises(ValueError, match="classes in 0..1"):
        cc.score(torch.zeros(2, 2), 1.0, 5)
    with pytest.raises(TypeError, match="integer"):
        with_label(cc.score, 0.5)
    with pytest.raises(ValueError, match="finite"):
        classifier_free_guidance(cc.noised_score, cc.noised_score, float("nan"))
    with pytest.raises(ValueError, match=">= 0"):
        classifier_guidance(cc.noised_score, cc.noised_score, -1.0)
    with pytest.raises(ValueError, match="shape of x"):
        bad = classifier_guidance(cc.noised_score, lambda x, s: x[:, :1], 1.0)
        bad(torch.zeros(2, 2), torch.ones(2))
