"""Seed 004 (the "Diffusion models" tutorial) as three recipes, all with g(t) = λ^t.

- ``seed004-forward``: forward diffusion dx = λ^t dw of a bimodal start, 1-D paths and a 2-D GIF.
- ``seed004-mixture``: the 2-D Gaussian mixture: log-density, score field, responsibility-weighted
  component scores, the diffused mixture p_t, and sampling with the exact score (reverse SDE and
  probability-flow ODE) measured against the two-sample noise floor.
- ``seed004-learned``: the continuous-time DSM model with Gaussian Fourier features of t
  (``ScoreModel_Time``), trained full-batch as the seed does while its error against the exact
  score of p_t is tracked, then sampled with the reverse SDE and the probability-flow ODE.

Every number that says how close samples are to the mixture is measured by the one protocol
(``scorelab.metrics.measure_against_law``): the distance to fresh independent draws of the mixture
over the floor of independent true pairs, beside the ratio an exact sample gets (calibration) and
the verdict. Where the recipe departs from the seed (the sampler's discretisation, the score error
it tracks), the seed's version is run too and both are reported side by side.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from scorelab.losses import continuous_dsm_loss
from scorelab.metrics import score_error, score_error_per_level
from scorelab.models import FourierTimeMLP, TimeConditioned
from scorelab.plotting import (
    animate_points,
    forward_diffusion_1d,
    hdr_levels,
    kde_compare,
    log_density_contours,
    loss_curves,
    new_figure,
    pdf_1d,
    save_figure,
    score_components,
    score_field,
)
from scorelab.recipes.base import Recipe, RecipeContext, law_measurement, measurement_summary
from scorelab.samplers import moment_matched_prior, probability_flow, reverse_sde
from scorelab.sde import VESDELambda
from scorelab.targets import GaussianMixture, mixture_2d
from scorelab.training import TrainConfig, train
from scorelab.utils import ScoreFn, append_dims, seeded_module

#: λ of g(t) = λ^t for the mixture, the learned model and the samplers (the seed's setting).
LAMBDA = 25.0
#: λ of the seed's 2-D forward-diffusion animation.
LAMBDA_2D = 26.0
#: The network is trained for t in [T_EPS, 1] (the seed's eps = 0.01), so every sampler stops
#: there and ends with a Tweedie denoising step; the exact-score samplers do the same, so that
#: learned and exact differ only in the score.
T_EPS = 0.01
#: Box in which the 2-D mixture is drawn.
XLIM, YLIM = (-4.0, 6.0), (-5.0, 5.0)
#: Distances measured against the noise floor. (MMD and energy cost O(n²): about 30 s of CPU
#: each at n = 5000, too much for a recipe that measures many sample sets.)
DISTANCES = ("sliced_w2",)
#: Coding Exercise 1.3 as the seed sets it: λ = 10, 2500 samples, 200 steps (its commented test).
SEED_EX13 = {"lambda": 10.0, "n": 2500, "n_steps": 200}
#: Euler–Maruyama steps of the improved reverse SDE beside it.
IMPROVED_STEPS = 500


# ------------------------------------------------------------------------------------------------
# Shared helpers
# ------------------------------------------------------------------------------------------------


def forward_paths(
    sde: VESDELambda, x0: Tensor, times: Tensor, generator: torch.Generator
) -> Tensor:
    """Exact paths of the forward SDE at ``times`` ``(T,)`` from ``x0`` ``(N, *D)``: ``(T, N, *D)``.

    The increments of dx = g(t) dw are independent Gaussians with variance σ_t² − σ_s²
    (``sde.transition``), so the path is drawn without discretisation error, unlike the seed's
    Euler sum of λ^t·Δw.
    """
    path = [x0]
    for s, t in zip(times[:-1].tolist(), times[1:].tolist(), strict=True):
        mean, std = sde.transition(path[-1], s, t)
        z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        path.append(mean + append_dims(std, x0.ndim) * z)
    return torch.stack(path)


def floor_summary(samples: Tensor, target: GaussianMixture, ctx: RecipeContext) -> dict:
    """``samples`` against the mixture by the one protocol (sliced W2, floor, calibration)."""
    return law_measurement(
        samples, lambda n, g: target.sample(n, g, dtype=torch.float64), ctx, DISTANCES[0]
    )


def seed_reverse_sde(
    score: ScoreFn, x_T: Tensor, lam: float, n_steps: int, generator: torch.Generator
) -> Tensor:
    """The seed's reverse-SDE loop, written out: ``n_steps − 1`` Euler–Maruyama steps.

    Step i = 1 … n_steps − 1 goes to t = 1 − i/n_steps and evaluates the score of p_t and
    g(t) = λ^t at that new time: ``x ← x + λ^{2t}·s(x, σ_t)·Δt + λ^t·√Δt·z``. It stops at
    t = Δt with no denoising step (``reverse_sde`` steps from the current time, stops at
    ``T_EPS`` and ends with a Tweedie step).
    """
    sde = VESDELambda(lam)
    dt = 1.0 / n_steps
    x = x_T
    with torch.no_grad():
        for i in range(1, n_steps):
            t = 1.0 - i * dt
            sigma_t = sde.noise_level(torch.full((x.shape[0],), t, dtype=x.dtype))
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x + lam ** (2 * t) * score(x, sigma_t) * dt + lam**t * math.sqrt(dt) * z
    return x


def _moments(x: Tensor) -> dict[str, list]:
    x = x.to(torch.float64)
    return {"mean": x.mean(0).tolist(), "cov": torch.cov(x.T).tolist()}


def _sample(
    score: ScoreFn,
    x_T: Tensor,
    x_T_matched: Tensor,
    sde: VESDELambda,
    ctx: RecipeContext,
    stream: int,
    n_steps: int,
) -> tuple[dict[str, Tensor], dict[str, int]]:
    """Samples of the reverse SDE (Euler–Maruyama) and the probability-flow ODE (dopri5).

    Both start from the seed's prior draw ``x_T`` ~ N(0, σ_1² I), stop at ``T_EPS`` and end with
    a Tweedie step; the SDE makes ``n_steps`` steps with noise from ``stream``. The ODE is also
    run from ``x_T_matched`` ~ N(mean, cov + σ_1² I), the Gaussian with p_1's mean and
    covariance: a deterministic sampler carries much more of its starting error to the end.
    """
    sde_res = reverse_sde(
        score, x_T, sde, n_steps=n_steps, t_end=T_EPS, generator=ctx.generator(stream)
    )
    samples, evals = {"sde": sde_res.samples}, {"sde": sde_res.n_evals}
    for key, start in (("ode", x_T), ("ode_matched_prior", x_T_matched)):
        res = probability_flow(
            score, start, sde, method="dopri5", t_end=T_EPS, rtol=1e-5, atol=1e-5
        )
        samples[key], evals[key] = res.samples, res.n_evals
    return samples, evals


def _priors(
    sde: VESDELambda, mean: Tensor, cov: Tensor, n: int, ctx: RecipeContext, stream: int
) -> tuple[Tensor, Tensor]:
    """The seed's prior draw N(0, σ_1² I) and a moment-matched one N(mean, cov + σ_1² I)."""
    x_T = sde.prior_sample((n, 2), generator=ctx.generator(stream), dtype=torch.float64)
    x_matched = moment_matched_prior(
        mean.double(), cov.double(), sde.prior_std(), n, generator=ctx.generator(stream + 1)
    )
    return x_T, x_matched


# ------------------------------------------------------------------------------------------------
# seed004-forward
# ------------------------------------------------------------------------------------------------


def _bimodal_1d(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """The seed's 1-D start, half N(−5, 1) and half N(5, 1): ``(n, 1)`` and mode labels ``(n,)``."""
    groups = (torch.arange(n) >= n // 2).long()
    x0 = (10.0 * groups - 5.0).to(torch.float64)[:, None]
    return x0 + torch.randn(n, 1, generator=generator, dtype=torch.float64), groups


def run_forward(ctx: RecipeContext) -> None:
    """Forward diffusion dx = λ^t dw: 1-D paths and exact marginals, and a 2-D animation."""
    sde = VESDELambda(LAMBDA)
    gen = ctx.generator(0)

    # 1-D: a bimodal start at ±5, paths coloured by the mode they left.
    n_paths = ctx.pick(4000, 400)
    times = torch.linspace(0.0, 1.0, ctx.pick(100, 25), dtype=torch.float64)
    x0, groups = _bimodal_1d(n_paths, gen)
    paths = forward_paths(sde, x0, times, gen)[..., 0]  # (T, N)
    shown = torch.cat([torch.arange(100), n_paths // 2 + torch.arange(100)])
    forward_diffusion_1d(
        paths[:, shown],
        times,
        groups=groups[shown],
        title=f"forward diffusion with g(t) = λ^t, λ = {LAMBDA:g} (200 paths)",
        path=ctx.path("forward_1d_paths.png"),
    )
    start = GaussianMixture(
        torch.tensor([[-5.0], [5.0]], dtype=torch.float64), torch.ones(2, 1, 1, dtype=torch.float64)
    )
    sigma_1 = float(sde.noise_level(1.0))
    grid = torch.linspace(-35.0, 35.0, 701, dtype=torch.float64)[:, None]
    curves = {
        f"p_t, t = {t:g}": start.noised(float(sde.noise_level(t))).log_prob(grid).exp()
        for t in (0.0, 0.25, 0.5, 0.75, 1.0)
    }
    pdf_1d(
        grid[:, 0],
        curves,
        reference="p_t, t = 1",
        hist=paths[-1],
        title="exact marginals p_t = p_0 * N(0, σ_t²); histogram: simulated x_1",
        path=ctx.path("forward_1d_marginals.png"),
    )
    ctx.record("lambda", LAMBDA)
    ctx.record("sigma_1", sigma_1)
    ctx.record("x1_std", float(paths[-1].std()))
    ctx.record("x1_std_exact", math.sqrt(26.0 + sigma_1**2))  # Var x_0 = 1 + 5² = 26

    # 2-D: two tight clusters at (−2, −2) and (2, 2), the seed's animation (λ = 26).
    sde_2d = VESDELambda(LAMBDA_2D)
    n_2d = 200
    labels = (torch.arange(n_2d) >= n_2d // 2).long()
    centres = (4.0 * labels - 2.0).to(torch.float64)[:, None].expand(n_2d, 2)
    x0_2d = centres + 0.2 * torch.randn(n_2d, 2, generator=gen, dtype=torch.float64)
    times_2d = torch.linspace(0.0, 1.0, ctx.pick(50, 8), dtype=torch.float64)
    frames = forward_paths(sde_2d, x0_2d, times_2d, gen)
    animate_points(
        frames,
        path=ctx.path("forward_2d.gif"),
        titles=[f"t = {t:.2f}, λ = {LAMBDA_2D:g}" for t in times_2d.tolist()],
        groups=labels,
        xlim=(-25.0, 25.0),
        ylim=(-25.0, 25.0),
        max_frames=ctx.pick(50, 8),
    )
    _snapshots(frames, times_2d, labels, ctx)
    sigma_1_2d = float(sde_2d.noise_level(1.0))
    ctx.record("x1_2d_var", frames[-1].var(dim=0).tolist())
    ctx.record("x1_2d_var_exact", 4.0 + 0.04 + sigma_1_2d**2)  # cluster spread + σ_1²
    ctx.note(
        "forward_1d_paths.png: 200 paths of dx = λ^t dw (λ = 25) leaving N(−5, 1) (red) and "
        "N(5, 1) (blue). The noise is small early and large late (g grows like λ^t), so the two "
        "groups mix only near t = 1, where x_1 ≈ N(0, 26 + σ_1²). Paths are drawn exactly: "
        "independent Gaussian increments of variance σ_t² − σ_s², σ_t² = (λ^{2t} − 1)/(2 ln λ)."
    )
    ctx.note(
        "forward_1d_marginals.png: the exact marginal densities p_t (the start convolved with "
        "N(0, σ_t²)) at five times, and a histogram of the simulated x_1 against p_1. "
        "x1_std vs x1_std_exact checks the simulation."
    )
    ctx.note(
        "forward_2d.gif and forward_2d_snapshots.png: two tight clusters at (−2, −2) and (2, 2) "
        "diffusing under λ = 26, coloured by starting cluster, until they are one broad Gaussian."
    )


def _snapshots(frames: Tensor, times: Tensor, labels: Tensor, ctx: RecipeContext) -> None:
    """Four frames of the 2-D forward diffusion side by side."""
    picks = np.linspace(0, len(times) - 1, 4).round().astype(int)
    fig, axes = new_figure(4, size=3.2)
    colors = np.where(labels.numpy() == 0, "tab:red", "tab:blue")
    for ax, i in zip(axes[0], picks, strict=True):
        x = frames[i].numpy()
        ax.scatter(x[:, 0], x[:, 1], s=4, c=colors, alpha=0.6)
        ax.set(xlim=(-25, 25), ylim=(-25, 25), aspect="equal", title=f"t = {float(times[i]):.2f}")
    save_figure(fig, ctx.path("forward_2d_snapshots.png"))


# ------------------------------------------------------------------------------------------------
# seed004-mixture
# ------------------------------------------------------------------------------------------------


def _diffused_panels(target: GaussianMixture, sde: VESDELambda, ctx: RecipeContext) -> None:
    """Log-density contours of the diffused mixture p_t at four times (the seed's diffuse_gmm)."""
    fig, axes = new_figure(4, size=3.2)
    centre = target.mean().tolist()
    for ax, t in zip(axes[0], (0.0, 0.3, 0.6, 1.0), strict=True):
        sigma_t = float(sde.noise_level(t))
        half = 3.5 * math.sqrt(2.5 + sigma_t**2)  # 2.5: the mixture's largest variance
        log_density_contours(
            target.noised(sigma_t).log_prob,
            xlim=(centre[0] - half, centre[0] + half),
            ylim=(centre[1] - half, centre[1] + half),
            n=60,
            levels=12,
            ax=ax,
            title=f"log p_t, t = {t:g} (σ_t = {sigma_t:.2f})",
        )
    save_figure(fig, ctx.path("diffused_mixture.png"))


def _score_figures(target: GaussianMixture, ctx: RecipeContext) -> None:
    """Score field over the box and the responsibility-weighted component scores at samples."""
    fig = log_density_contours(target.log_prob, xlim=XLIM, ylim=YLIM, levels=12, n=80)
    score_field(
        target.score,
        xlim=XLIM,
        ylim=YLIM,
        n=ctx.pick(25, 12),
        dtype=torch.float64,
        ax=fig.axes[0],
        title="score ∇log p(x) (arrows: direction · log(1 + |score|))",
        path=ctx.path("score_field.png"),
    )
    pts = target.sample(ctx.pick(200, 60), ctx.generator(1), dtype=torch.float64)
    _component_score_figure(target, pts, ctx.path("score_modes.png"))
    resp = target.responsibilities(pts)  # (M, K)
    weighted = resp[..., None] * target.component_scores(pts)  # (M, K, 2)
    total = target.score(pts)
    ctx.record("component_sum_max_error", float((weighted.sum(1) - total).abs().max()))
    score_components(
        pts,
        total,
        [weighted[:, k] for k in range(target.n_components)],
        component_log_probs=[target.component(k).log_prob for k in range(target.n_components)],
        labels=[f"p(k={k + 1} | x) · ∇log N_{k + 1}(x)" for k in range(target.n_components)],
        xlim=XLIM,
        ylim=YLIM,
        title="weighted component scores add up to the mixture score",
        path=ctx.path("score_components.png"),
    )


def _component_score_figure(target: GaussianMixture, pts: Tensor, path) -> None:
    """The seed's "score for each Gaussian mode": each component's own (unweighted) score
    ∇log N_k(x) at the sample points, over that component's density contours."""
    fig, axes = new_figure(figsize=(7.0, 7.0))
    ax = axes[0, 0]
    comp = target.component_scores(pts)  # (M, K, 2)
    longest = float(comp.norm(dim=-1).max())
    scale = longest / (0.15 * (XLIM[1] - XLIM[0]))
    for k, (color, cmap) in enumerate((("tab:blue", "Blues"), ("tab:orange", "Oranges"))):
        log_density_contours(
            target.component(k).log_prob, xlim=XLIM, ylim=YLIM, n=80, levels=8, density=True,
            cmap=cmap, ax=ax,
        )  # fmt: skip
        ax.quiver(*pts.numpy().T, *comp[:, k].numpy().T, color=color, alpha=0.5, angles="xy",
                  scale_units="xy", scale=scale, width=0.003,
                  label=f"score of Gaussian mode {k + 1}, ∇log N_{k + 1}(x)")  # fmt: skip
    ax.set(xlim=XLIM, ylim=YLIM, aspect="equal")
    ax.set_title("score of each Gaussian mode on its own (not weighted)")
    ax.legend(loc="upper left", fontsize="small")
    save_figure(fig, path)


def _kde_on(ax, x: Tensor, xlim, ylim, title: str) -> None:
    """Kernel density contours (25/50/75/95 % mass) of a 2-D sample on ``ax``."""
    from scipy.stats import gaussian_kde  # imported here: slow to import

    xx, yy = np.meshgrid(np.linspace(*xlim, 80), np.linspace(*ylim, 80))
    z = gaussian_kde(x.double().numpy().T)(np.stack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
    ax.contour(xx, yy, z, levels=hdr_levels(z), cmap="viridis")
    ax.set(xlim=xlim, ylim=ylim, aspect="equal", title=title)


def diffusion_distr_figure(x_T: Tensor, x0: Tensor, n_steps: int, label: str, path) -> None:
    """The seed's ``visualize_diffusion_distr``: the density of the prior draw x_T beside the
    density of the x_0 it becomes after reverse diffusion."""
    fig, axes = new_figure(2, size=5.0)
    half = 3.0 * float(x_T.std())
    _kde_on(axes[0, 0], x_T, (-half, half), (-half, half),
            "density of the Gaussian prior x_T\nbefore reverse diffusion")  # fmt: skip
    _kde_on(axes[0, 1], x0, XLIM, YLIM,
            f"density of x_0 samples after {n_steps} steps\nof reverse diffusion")  # fmt: skip
    fig.suptitle(label)
    save_figure(fig, path)


def _exercise_1_3(target: GaussianMixture, ctx: RecipeContext) -> None:
    """Coding Exercise 1.3 at the seed's settings (λ = 10, 2500 samples, 200 steps, its loop)
    beside the improved sampler (``reverse_sde``: steps from the current time, stop at
    ``T_EPS``, Tweedie step) on the same prior draw."""
    lam, n, n_steps = SEED_EX13["lambda"], ctx.pick(SEED_EX13["n"], 500), SEED_EX13["n_steps"]
    sde = VESDELambda(lam)
    x_T, x_matched = _priors(sde, target.mean(), target.covariance(), n, ctx, stream=20)
    seed_x0 = seed_reverse_sde(target.noised_score, x_T, lam, n_steps, ctx.generator(22))
    improved = reverse_sde(
        target.noised_score, x_matched, sde, n_steps=IMPROVED_STEPS, t_end=T_EPS,
        generator=ctx.generator(22),
    ).samples  # fmt: skip
    diffusion_distr_figure(
        x_T, seed_x0, n_steps - 1, f"Exercise 1.3 as in the seed: λ = {lam:g}, exact score",
        ctx.path("diffusion_distr.png"),
    )  # fmt: skip
    kde_compare(
        {
            f"as in the seed ({n_steps} steps, no denoising)": seed_x0,
            f"improved ({IMPROVED_STEPS} steps + Tweedie, matched prior)": improved,
            "samples from the mixture": target.sample(n, ctx.generator(23), dtype=torch.float64),
        },
        true_log_prob=target.log_prob,
        xlim=XLIM,
        ylim=YLIM,
        title=f"Exercise 1.3: reverse diffusion with the exact score, λ = {lam:g}, n = {n}",
        path=ctx.path("exercise_1_3_kde.png"),
    )
    seed_m, improved_m = floor_summary(seed_x0, target, ctx), floor_summary(improved, target, ctx)
    ctx.record(
        "exercise_1_3",
        {
            "as_in_seed": {"lambda": lam, "n": n, "n_steps": n_steps, **seed_m},
            "improved": {
                "lambda": lam,
                "n": n,
                "n_steps": IMPROVED_STEPS,
                "t_end": T_EPS,
                "denoise": True,
                "prior": "moment-matched",
                **improved_m,
            },
        },
    )
    ctx.note(
        f"Exercise 1.3 (exercise_1_3_kde.png, diffusion_distr.png): the reverse SDE with the "
        f"exact score at the seed's λ = {lam:g}, {n} samples, {n_steps} steps, written as the "
        "seed's loop (the score and g(t) taken at the time stepped to, stopping at t = 1/200 "
        f"without denoising, from N(0, σ_1² I)): {measurement_summary(seed_m)}. Improved "
        f"(reverse_sde, {IMPROVED_STEPS} steps from the current time to t = {T_EPS:g}, then a "
        "Tweedie step, started from the moment-matched prior N(mean, cov + σ_1² I): at λ = 10, "
        "σ_1 ≈ 4.6, and the seed's prior, centred at 0 instead of the mixture mean (1, 0), "
        f"leaves a visible offset): {measurement_summary(improved_m)}. diffusion_distr.png is "
        "the seed's visualize_diffusion_distr: the density of the prior x_T beside that of the "
        "x_0 it becomes."
    )


def run_mixture(ctx: RecipeContext) -> None:
    """The seed 004 mixture: density, scores, diffused laws and exact-score sampling."""
    target = mixture_2d()
    sde = VESDELambda(LAMBDA)
    n = ctx.pick(5000, 500)
    x_true = target.sample(n, ctx.generator(0), dtype=torch.float64)
    log_density_contours(
        target.log_prob,
        xlim=XLIM,
        ylim=YLIM,
        data=x_true,
        title="log p(x) of the mixture, with samples",
        path=ctx.path("log_density.png"),
    )
    _score_figures(target, ctx)
    _diffused_panels(target, sde, ctx)
    _exercise_1_3(target, ctx)

    x_T, x_matched = _priors(sde, target.mean(), target.covariance(), n, ctx, stream=2)
    n_steps = ctx.pick(500, 200)
    samples, evals = _sample(target.noised_score, x_T, x_matched, sde, ctx, 4, n_steps)
    kde_compare(
        {
            "reverse SDE, exact score": samples["sde"],
            "probability-flow ODE, exact score": samples["ode"],
            "true samples": target.sample(n, ctx.generator(5), dtype=torch.float64),
        },
        true_log_prob=target.log_prob,
        xlim=XLIM,
        ylim=YLIM,
        title=f"sampling with the exact score, λ = {LAMBDA:g}",
        path=ctx.path("exact_sampling_kde.png"),
    )
    ctx.record("lambda", LAMBDA)
    ctx.record("n_samples", n)
    ctx.record("n_evals", evals)
    ctx.record("mixture_moments", _moments_of_target(target))
    ctx.record("exact_sde_moments", _moments(samples["sde"]))
    ctx.record("exact_ode_moments", _moments(samples["ode"]))
    ctx.record("exact_ode_matched_prior_moments", _moments(samples["ode_matched_prior"]))
    for key, x in samples.items():
        ctx.record(f"exact_{key}", floor_summary(x, target, ctx))
    ctx.note(
        "log_density.png: contours of log p for the mixture ½N((0, 1), I) + ½N((2, −1), "
        "[[2, .5], [.5, 1]]) with exact samples. score_field.png: the score ∇log p on a grid; it "
        "points uphill towards the modes and grows linearly far from them."
    )
    ctx.note(
        "score_modes.png: the seed's 'score for each Gaussian mode': each component's own score "
        "∇log N_k(x) at the same points, unweighted, over that component's density; each points "
        "to its own mean everywhere, including deep inside the other mode."
    )
    ctx.note(
        "score_components.png: at sample points, each component's score weighted by its "
        "responsibility p(k | x) (coloured, with that component's density) and their sum, the "
        "mixture score (black). Between the modes the responsibilities switch and the weighted "
        "arrows of the far component shrink to nothing; component_sum_max_error checks the sum."
    )
    ctx.note(
        "diffused_mixture.png: the exact law p_t of x_t = x_0 + σ_t z at four times (each "
        "component's covariance grows by σ_t² I); by t = 1 it is nearly the N(0, σ_1² I) prior."
    )
    ctx.note(
        "exact_sampling_kde.png: density contours (same probability masses) of samples from the "
        f"reverse SDE (Euler–Maruyama, {n_steps} steps) and the probability-flow ODE (dopri5), "
        "both with the exact "
        "score of p_t and started from the same prior draw, against fresh true samples and the "
        "exact density (dashed). exact_sde / exact_ode give the sliced-W2 distance with its noise "
        "floor; a ratio near 1 means indistinguishable from true samples at this sample size."
    )
    ctx.note(
        "Both start, as the seed does, from N(0, σ_1² I), whose mean is 0 while p_1's is the "
        "mixture mean (1, 0). For Gaussian data an error in the start is shrunk by the reverse "
        "SDE by about Var p_0 / Var p_1 ≈ 0.025, but by the deterministic ODE only by its square "
        "root ≈ 0.16, which shows as a shifted ODE cloud (exact_ode_moments). "
        "exact_ode_matched_prior starts the same ODE from N(mean, cov + σ_1² I), the Gaussian "
        "with p_1's mean and covariance, and removes most of that error."
    )


def _moments_of_target(target: GaussianMixture) -> dict[str, list]:
    return {"mean": target.mean().tolist(), "cov": target.covariance().tolist()}


# ------------------------------------------------------------------------------------------------
# seed004-learned
# ------------------------------------------------------------------------------------------------


def _probe(x0: Tensor, sde: VESDELambda, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Points ``x_t = x0 + σ_t z`` with times on an even grid over [T_EPS, 1], and their σ_t.

    These are where the learned score is compared with the exact score of p_t. (The seed's
    tracking evaluated the clean mixture's score at clean points; here each point is a draw of
    the law p_t at which the network is asked.)
    """
    t = torch.linspace(T_EPS, 1.0, len(x0), dtype=x0.dtype)
    sigma = sde.noise_level(t)
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    return x0 + append_dims(sigma, x0.ndim) * z, sigma


def _seed_probe(x0: Tensor, partition: int = 500) -> tuple[Tensor, Tensor]:
    """The seed's score-error points: the clean samples themselves, with times t from an even
    partition of [T_EPS, 1] (each repeated for a block of points, as its
    ``sample_X_and_score_t_depend`` builds them). The seed then compares ``net(x0, t)`` with the
    clean mixture's score at x0 (its ``diffuse_gmm`` result is unused): the wrong target for every
    t > 0."""
    per = max(len(x0) // partition, 1)
    t = torch.linspace(T_EPS, 1.0, partition, dtype=x0.dtype).repeat_interleave(per)
    t = torch.cat([t, t[-1:].expand(max(len(x0) - len(t), 0))])[: len(x0)]
    return x0, t


def _train_model(
    target: GaussianMixture, sde: VESDELambda, ctx: RecipeContext
) -> tuple[TimeConditioned, list[dict], Tensor, Tensor]:
    """Train ``ScoreModel_Time`` full-batch by continuous-time DSM, tracking the score error.

    Returns the network as a ``score(x, σ)``, the history, the training and the test samples.
    """
    n_train, n_test = ctx.pick((10000, 2000), (1000, 400))
    x_train = target.sample(n_train, ctx.generator(0), dtype=torch.float32)
    x_test = target.sample(n_test, ctx.generator(1), dtype=torch.float32)
    # The seed's ScoreModel_Time: 10 Fourier features of t (scale 1), tanh MLP 12-50-50-2, / σ_t.
    net = seeded_module(
        lambda: FourierTimeMLP(
            2, sde_sigma_fn=sde.sigma, embed_dim=10, hidden=50, scale=1.0,
            generator=ctx.generator(2),
        ),
        ctx.seed,
    )  # fmt: skip
    model = TimeConditioned(net, sde)  # score(x, σ) = net(x, t(σ))
    probes = {
        "train": _probe(x_train, sde, ctx.generator(3)),
        "test": _probe(x_test, sde, ctx.generator(4)),
    }
    seed_probes = {"train": _seed_probe(x_train), "test": _seed_probe(x_test)}

    def evaluate(module: torch.nn.Module, step: int) -> dict[str, float]:
        row = {
            f"score_mse_{name}": score_error(module, target.noised_score, x, sigma)
            for name, (x, sigma) in probes.items()
        }
        with torch.no_grad():  # the seed's MSELoss(gmm.score(x0), net(x0, t)), per element
            for name, (x0, t) in seed_probes.items():
                pred = net(x0, t)
                row[f"seed_mse_{name}"] = float((pred - target.score(x0).to(pred)).square().mean())
        return row

    def loss(module: torch.nn.Module, x0: Tensor, generator: torch.Generator) -> Tensor:
        return continuous_dsm_loss(module, x0, sde, eps=T_EPS, generator=generator)

    every = ctx.pick(25, 10)
    config = TrainConfig(
        steps=ctx.pick(500, 60),  # the seed: 500 full-batch epochs, Adam, lr 0.005
        batch_size=n_train,
        lr=5e-3,
        lr_schedule="constant",
        grad_clip=None,
        ema_decay=None,
        log_every=every,
        eval_every=every,
        checkpoint_every=10**9,
        seed=ctx.seed,
        device="cpu",
    )
    # A row at step 0, before any update, so the curves start from the untrained network.
    start = {"step": 0, **evaluate(model, 0)}
    result = train(
        model, loss, x_train, config, test_data=x_test, evaluate=evaluate, progress=False
    )
    return model, [start, *result.history], x_train, x_test


def run_learned(ctx: RecipeContext) -> None:
    """Continuous-time DSM on mixture samples, then the reverse SDE and PF-ODE with that score."""
    target = mixture_2d()
    sde = VESDELambda(LAMBDA)
    model, history, x_train, x_test = _train_model(target, sde, ctx)
    loss_curves(
        history,
        keys=("train_loss", "test_loss", "score_mse_train", "score_mse_test"),
        x_key="step",
        xlabel="epoch (one full-batch step each)",
        ylabel="DSM loss / score MSE",
        title="continuous-time DSM: loss and error against the exact score",
        path=ctx.path("training_curves.png"),
    )
    _error_vs_time(model, target, sde, len(x_test), ctx)

    n = ctx.pick(2000, 500)
    # The moment-matched prior uses the training data's mean and covariance, as it would without
    # an exact target.
    x_T, x_matched = _priors(sde, x_train.mean(0), torch.cov(x_train.T), n, ctx, stream=5)
    n_steps = ctx.pick(200, 100)  # the seed's 200 Euler–Maruyama steps
    exact, _ = _sample(target.noised_score, x_T, x_matched, sde, ctx, 7, n_steps)
    # Same prior draws and same noise stream: learned and exact differ only by the score.
    learned, evals = _sample(model, x_T.float(), x_matched.float(), sde, ctx, 7, n_steps)
    true_x = target.sample(n, ctx.generator(8), dtype=torch.float64)
    for kind in ("sde", "ode"):
        label = "reverse SDE" if kind == "sde" else "probability-flow ODE"
        kde_compare(
            {
                f"{label}, learned score": learned[kind],
                f"{label}, exact score": exact[kind],
                "true": true_x,
            },
            true_log_prob=target.log_prob,
            xlim=XLIM,
            ylim=YLIM,
            title=f"{label}: learned vs exact score",
            path=ctx.path(f"learned_{kind}_kde.png"),
        )
    loss_curves(
        history,
        keys=("train_loss", "seed_mse_train", "seed_mse_test"),
        x_key="step",
        xlabel="epoch",
        ylabel="loss",
        title="as in the seed: DSM loss and MSELoss(clean score at x0, net(x0, t))",
        path=ctx.path("seed_training_curves.png"),
    )
    seed_cmp = _seed_sampling(model, target, ctx)
    ctx.record("dsm_loss_point_mass_exact_score", _point_mass_check(ctx))
    last = history[-1]
    ctx.record("lambda", LAMBDA)
    ctx.record("steps", int(last["step"]))
    ctx.record(
        "score_error",
        {
            "as_in_seed": {
                "what": "MSELoss (mean over the 2 coordinates) of net(x0, t) against the clean "
                "mixture's score at the clean training / test points x0",
                "start": {k: history[0][f"seed_mse_{k}"] for k in ("train", "test")},
                "final": {k: last[f"seed_mse_{k}"] for k in ("train", "test")},
            },
            "corrected": {
                "what": "mean ‖s_θ(x_t, t) − ∇log p_t(x_t)‖² (sum over the 2 coordinates) at "
                "x_t = x0 + σ_t z ~ p_t",
                "start": {k: history[0][f"score_mse_{k}"] for k in ("train", "test")},
                "final": {k: last[f"score_mse_{k}"] for k in ("train", "test")},
            },
        },
    )
    ctx.record("sampling", seed_cmp)
    ctx.record("final_dsm_loss", {"train": last["train_loss"], "test": last["test_loss"]})
    ctx.record("score_mse_start", {k: history[0][f"score_mse_{k}"] for k in ("train", "test")})
    ctx.record("score_mse_final", {k: last[f"score_mse_{k}"] for k in ("train", "test")})
    ctx.record("n_evals_learned", evals)
    for key in exact:
        ctx.record(f"exact_{key}", floor_summary(exact[key], target, ctx))
        ctx.record(f"learned_{key}", floor_summary(learned[key], target, ctx))
    ctx.note(
        "training_curves.png: ScoreModel_Time (10 Gaussian Fourier features of t, tanh MLP "
        "12-50-50-2, output divided by σ_t) trained as the seed does: 500 full-batch Adam steps, "
        "lr 0.005, on 10000 mixture samples, loss ‖σ_t s(x + σ_t z, t) + z‖² with t ~ U[0.01, 1]. "
        "The DSM loss (train and test) cannot reach 0: its floor is the conditional variance of z "
        "given x_t. The score MSE E‖s_θ(x_t, t) − ∇log p_t(x_t)‖² is measured against the exact "
        "score on fixed points x_t ~ p_t (times evenly spread over [0.01, 1]) built from the "
        "training samples and from 2000 held-out samples; it can reach 0."
    )
    err = ctx.numbers["score_error"]
    ctx.note(
        "The score error as the seed computes it (seed_training_curves.png: MSELoss of the "
        "network at the clean points x0, with the times of its partition, against the clean "
        "mixture's score) measures a target the network is not trained for: at t > 0 the right "
        "target is the score of p_t. Side by side, train/test, start → final: as in the seed "
        f"{err['as_in_seed']['start']['train']:.3g}/{err['as_in_seed']['start']['test']:.3g} → "
        f"{err['as_in_seed']['final']['train']:.3g}/{err['as_in_seed']['final']['test']:.3g} "
        "(per coordinate); corrected "
        f"{err['corrected']['start']['train']:.3g}/{err['corrected']['start']['test']:.3g} → "
        f"{err['corrected']['final']['train']:.3g}/{err['corrected']['final']['test']:.3g} "
        "(summed over the 2 coordinates)."
    )
    ctx.note(
        "score_error_vs_time.png: the relative score error of the trained network at each time, "
        "mean ‖s_θ − ∇log p_t‖² / mean ‖∇log p_t‖²; it is largest at small t, where p_t is close "
        "to the data and its score is the most detailed."
    )
    ctx.note(
        "learned_sde_kde.png and learned_ode_kde.png: samples of the reverse SDE "
        f"(Euler–Maruyama, {n_steps} steps as in the seed) and of the probability-flow ODE "
        "(dopri5) with the learned and with the "
        "exact score, from the same prior draw (and the same noise for the SDE), against true "
        "samples and the exact density (dashed). The exact_* / learned_* entries give each "
        "distance with its noise floor; the gap between learned and exact is the cost of the "
        "score error, the gap between exact and 1 the cost of discretisation and, for the ODE, "
        "of the prior's mismatch. *_ode_matched_prior start the ODE from N(m, C + σ_1² I) with m "
        "and C the training data's mean and covariance (see the seed004-mixture report)."
    )
    smp = ctx.numbers["sampling"]
    k = smp["as_in_seed"]["n"]  # measured at the seed's sample size, so the ratios compare
    smp["improved"] = {
        "sampler": f"reverse_sde, {n_steps} steps to t = {T_EPS:g} + Tweedie",
        "n": k,
        "learned": floor_summary(learned["sde"][:k], target, ctx),
        "exact": floor_summary(exact["sde"][:k], target, ctx),
    }
    ctx.note(
        "seed_sampling_kde.png: the seed's own comparison (its reverse-SDE loop, "
        f"{smp['as_in_seed']['n']} samples): learned "
        f"{measurement_summary(smp['as_in_seed']['learned'])}; exact "
        f"{measurement_summary(smp['as_in_seed']['exact'])}. Improved sampler: learned "
        f"{measurement_summary(smp['improved']['learned'])}; exact "
        f"{measurement_summary(smp['improved']['exact'])}."
    )


def _point_mass_check(ctx: RecipeContext) -> float:
    """The seed's loss test: for data that are a single point at 0 the exact score of p_t is
    −x/σ_t², and the DSM loss ‖σ_t s(x + σ_t z, t) + z‖² is exactly 0 (λ = 10, t ~ U[1e-3, 1])."""

    def point_mass_score(x: Tensor, sigma: Tensor) -> Tensor:
        return -x / append_dims(sigma, x.ndim) ** 2

    loss = continuous_dsm_loss(
        point_mass_score, torch.zeros(10, 2, dtype=torch.float64), VESDELambda(10.0), eps=1e-3,
        generator=ctx.generator(40),
    )  # fmt: skip
    return float(loss.abs().max())


def _seed_sampling(model: TimeConditioned, target: GaussianMixture, ctx: RecipeContext) -> dict:
    """The seed's final comparison: its reverse-SDE loop (λ = 25, 1000 samples, 200 steps) with
    the learned and the exact score from one prior draw, against mixture samples."""
    n, n_steps = ctx.pick(1000, 500), 200
    sde = VESDELambda(LAMBDA)
    x_T = sde.prior_sample((n, 2), generator=ctx.generator(30), dtype=torch.float64)
    learned = seed_reverse_sde(model, x_T.float(), LAMBDA, n_steps, ctx.generator(31))
    exact = seed_reverse_sde(target.noised_score, x_T, LAMBDA, n_steps, ctx.generator(31))
    kde_compare(
        {
            "reverse diffusion (NN score learned by DSM)": learned,
            "reverse diffusion (exact score)": exact,
            "samples from the mixture": target.sample(n, ctx.generator(32), dtype=torch.float64),
        },
        true_log_prob=target.log_prob,
        xlim=XLIM,
        ylim=YLIM,
        title=f"as in the seed: {n} samples, λ = {LAMBDA:g}, its {n_steps}-step loop",
        path=ctx.path("seed_sampling_kde.png"),
    )
    return {
        "as_in_seed": {
            "sampler": f"the seed's loop, {n_steps} steps, no denoising",
            "n": n,
            "learned": floor_summary(learned, target, ctx),
            "exact": floor_summary(exact, target, ctx),
        },
    }


def _error_vs_time(
    model: TimeConditioned, target: GaussianMixture, sde: VESDELambda, n: int, ctx: RecipeContext
) -> None:
    """Relative score error of the trained network at a grid of times (fresh points of p_t)."""
    times = torch.linspace(T_EPS, 1.0, ctx.pick(25, 6), dtype=torch.float64)
    per_level = score_error_per_level(
        model,
        target.noised_score,
        lambda m, g: target.sample(m, g, dtype=torch.float32),
        sde.noise_level(times),
        n=n,
        generator=ctx.generator(9),
    )
    rel = per_level.relative.tolist()
    ctx.record(
        "relative_score_error_by_t",
        {f"{t:.3g}": round(r, 4) for t, r in zip(times.tolist(), rel, strict=True)},
    )
    loss_curves(
        {"t": times.tolist(), "relative score error": rel},
        keys=("relative score error",),
        x_key="t",
        xlabel="diffusion time t",
        ylabel="mean ‖s_θ − ∇log p_t‖² / mean ‖∇log p_t‖²",
        title="where the learned score is off",
        path=ctx.path("score_error_vs_time.png"),
    )


RECIPES = [
    Recipe(
        name="seed004-forward",
        seed_doc="004",
        title="Forward diffusion with g(t) = λ^t in 1-D and 2-D",
        description="Paths of dx = λ^t dw from a bimodal start (±5) coloured by mode, the exact "
        "marginals p_t, and a GIF of two 2-D clusters diffusing into one Gaussian.",
        run=run_forward,
        minutes=0.3,
    ),
    Recipe(
        name="seed004-mixture",
        seed_doc="004",
        title="A 2-D Gaussian mixture: its score, and sampling with the exact score",
        description="Log-density, score field, each mode's own score and the "
        "responsibility-weighted component scores of the seed's mixture, its diffused laws p_t, "
        "Exercise 1.3 at the seed's settings (λ = 10, 2500 samples, 200 steps) beside the improved "
        "sampler with the prior-vs-x_0 density pair, and reverse-SDE and probability-flow samples "
        "with the exact score (λ = 25) measured against the noise floor.",
        run=run_mixture,
        minutes=0.5,
    ),
    Recipe(
        name="seed004-learned",
        seed_doc="004",
        title="Learning the score by continuous-time denoising score matching",
        description="ScoreModel_Time (Fourier features of t, output / σ_t) trained for 500 "
        "full-batch epochs with the score error tracked on train and test points as the seed "
        "computes it (MSELoss at clean points) and corrected (against the score of p_t); "
        "reverse-SDE and probability-flow samples with the learned vs the exact score, with the "
        "seed's sampler loop and the improved one.",
        run=run_learned,
        minutes=2.0,
    ),
]
