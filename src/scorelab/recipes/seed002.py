"""Seed 002 (the "Score matching" seminar) as one recipe, ``seed002-low-density``.

Why one small noise level is not enough and how a ladder of levels fixes it, on the two-mode
mixture ``0.2·N((−5, −5), I) + 0.8·N((5, 5), I)`` of Song & Ermon (2019, sec. 3.2):

1. Two score networks of x alone, each trained by denoising score matching at one σ (small and
   large), are compared with the exact score of the law each one targets, ``∇log p_σ``: the
   small-σ network is accurate only where there is data, the large-σ one everywhere.
2. With the exact score, plain Langevin started uniformly in the box keeps the modes' shares of
   its start, while annealed Langevin over a σ ladder recovers the weights 0.2 / 0.8.
3. A noise-conditional network trained as the seed writes it (a random level per example, loss
   σ²‖s + z/σ‖²) and annealed Langevin with it; a GIF shows the samples moving through the levels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from scorelab.losses import dsm_loss, multilevel_dsm_loss
from scorelab.metrics import mixture_weights
from scorelab.models import ScoreMLP, SoftplusMLP, as_score_fn
from scorelab.plotting import animate_points, hdr_levels, loss_curves, new_figure, save_figure
from scorelab.recipes.base import Recipe, RecipeContext
from scorelab.samplers import annealed_langevin, langevin
from scorelab.sde import geometric_sigmas
from scorelab.targets import GaussianMixture
from scorelab.training import TrainConfig, train
from scorelab.utils import seeded_module

MEANS = ((-5.0, -5.0), (5.0, 5.0))
WEIGHTS = (0.2, 0.8)
BOX = (-9.0, 9.0)
SMALL_SIGMA, LARGE_SIGMA = 0.1, 4.0
# The ladder: σ_max about the largest distance between data points (Song & Ermon 2020, technique
# 1), σ_min well below the components' unit scale.
SIGMA_MAX, SIGMA_MIN, N_LEVELS = 15.0, 0.1, 10
N_DATA = {"full": 5000, "fast": 500}
# The DSM target at σ = 0.1 is mostly noise (z/σ, std 10 per coordinate): large batches help.
SINGLE_STEPS, SINGLE_BATCH = {"full": 2000, "fast": 100}, 1024
NCSN_STEPS, NCSN_BATCH = {"full": 3000, "fast": 100}, 256
N_SAMPLES = {"full": 2000, "fast": 300}
STEPS_EACH = {"full": 100, "fast": 10}
GRID_N = {"full": 60, "fast": 25}
# Annealed Langevin, paper rule: step α_i = ε·σ_i²/σ_min², here α_i = 0.5·σ_i² at every level. The
# modes' shares are settled at σ ≈ 2–5, where chains must still travel between modes 14 apart;
# with α_i = 0.1·σ_i² they do not get there in 100 steps and even the exact score gives 0.22/0.78.
STEP_RATIO = 0.5
EPS = STEP_RATIO * SIGMA_MIN**2
# Plain Langevin (η form x ← x + η/2·s + √η·z), as many steps as annealed Langevin takes.
PLAIN_ETA = 0.1


def two_mode_mixture() -> GaussianMixture:
    """``0.2·N((−5, −5), I) + 0.8·N((5, 5), I)`` (Song & Ermon 2019, sec. 3.2.2)."""
    return GaussianMixture(
        means=torch.tensor(MEANS, dtype=torch.float64),
        covs=torch.eye(2, dtype=torch.float64).expand(2, 2, 2).clone(),
        weights=torch.tensor(WEIGHTS, dtype=torch.float64),
    )


def _config(ctx: RecipeContext, steps: int, batch_size: int) -> TrainConfig:
    return TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=2e-3,
        lr_schedule="cosine",
        ema_decay=0.995,
        log_every=max(steps // 50, 1),
        eval_every=steps,
        checkpoint_every=steps,
        seed=ctx.seed,
        device="cpu",
    )


def _single_sigma_loss(sigma: float):
    def loss_fn(model: nn.Module, x0: Tensor, generator: torch.Generator) -> Tensor:
        return dsm_loss(model, x0, sigma, generator, conditional=False)

    return loss_fn


def _ncsn_loss(sigmas: Tensor):
    def loss_fn(model: nn.Module, x0: Tensor, generator: torch.Generator) -> Tensor:
        return multilevel_dsm_loss(
            as_score_fn(model), x0, sigmas, weighting="sigma2", mode="random", generator=generator
        )

    return loss_fn


def _grid(n: int) -> tuple[np.ndarray, np.ndarray, Tensor]:
    axis = np.linspace(*BOX, n)
    xx, yy = np.meshgrid(axis, axis)
    return xx, yy, torch.as_tensor(np.stack([xx.ravel(), yy.ravel()], axis=1))


def _score_error(
    net: nn.Module,
    target: GaussianMixture,
    x: Tensor,
    sigma: float,
    data: Tensor,
    generator: torch.Generator,
) -> Tensor:
    """``‖s_θ(x) − ∇log p_σ(x)‖`` over the RMS of ``‖∇log p_σ‖`` on p_σ, ``(B,)``.

    Dividing by the typical size of the exact score on the network's own training law makes the
    small-σ and large-σ networks comparable and, unlike a pointwise ratio, does not blow up where
    the exact score vanishes (at the modes of p_σ).
    """
    noised = data.double() + sigma * torch.randn(
        data.shape, generator=generator, dtype=torch.float64
    )
    scale = target.noised_score(noised, sigma).square().sum(dim=1).mean().sqrt()
    with torch.no_grad():
        learned = net(x.float()).double()
    return (learned - target.noised_score(x, sigma)).norm(dim=1) / scale


def _error_maps(xx, yy, log_p, errors: dict[str, np.ndarray], data: Tensor, path) -> None:
    """Heat maps of log10 score error (in units of the typical score), one per network."""
    fig, axes = new_figure(len(errors), figsize=(5.2 * len(errors), 4.6))
    lo = min(float(np.log10(e).min()) for e in errors.values())
    hi = max(float(np.log10(e).max()) for e in errors.values())
    for ax, (label, err) in zip(axes[0], errors.items(), strict=True):
        mesh = ax.pcolormesh(
            xx,
            yy,
            np.log10(err).reshape(xx.shape),
            vmin=lo,
            vmax=max(hi, 0.5),
            cmap="magma",
            shading="auto",
        )
        ax.contour(
            xx,
            yy,
            log_p.reshape(xx.shape),
            levels=[-30, -20, -10, -5, -3],
            colors="white",
            linewidths=0.7,
        )
        ax.scatter(data[:, 0], data[:, 1], s=1, color="cyan", alpha=0.3)
        ax.set(xlim=BOX, ylim=BOX, aspect="equal", title=label)
    fig.colorbar(mesh, ax=list(axes[0]), label="log10 score error / typical score size")
    fig.suptitle("white: contours of the data log-density log p(x) = −3, −5, −10, −20, −30")
    save_figure(fig, path)


def _error_vs_density(log_p: np.ndarray, errors: dict[str, np.ndarray], path) -> None:
    """Relative score error against the data log-density: grid points and binned medians."""
    fig, axes = new_figure(figsize=(7.0, 4.5))
    ax = axes[0, 0]
    edges = np.linspace(log_p.min(), log_p.max(), 16)
    centres = 0.5 * (edges[1:] + edges[:-1])
    which = np.digitize(log_p, edges[1:-1])
    for (label, err), color in zip(errors.items(), ("tab:red", "tab:blue"), strict=False):
        ax.scatter(log_p, err, s=2, alpha=0.1, color=color)
        med = [
            np.median(err[which == b]) if np.any(which == b) else np.nan
            for b in range(len(centres))
        ]
        ax.plot(centres, med, color=color, linewidth=2, label=f"{label} (median per bin)")
    ax.set(
        xlabel="data log-density log p(x)", ylabel="‖s_θ − ∇log p_σ‖ / RMS ‖∇log p_σ‖", yscale="log"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    save_figure(fig, path)


def _sample_panels(sets: dict[str, Tensor], data: Tensor, target: GaussianMixture, path) -> None:
    fig, axes = new_figure(len(sets), size=4.0)
    for ax, (label, x) in zip(axes[0], sets.items(), strict=True):
        w = mixture_weights(x, target).tolist()
        ax.scatter(data[:, 0], data[:, 1], s=2, color="lightgrey")
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5, color="tab:blue")
        ax.set(xlim=BOX, ylim=BOX, aspect="equal")
        ax.set_title(f"{label}\nshares {w[0]:.2f} / {w[1]:.2f} (true 0.20 / 0.80)", fontsize=9)
    save_figure(fig, path)


def run_low_density(ctx: RecipeContext) -> None:
    """Small vs large σ score errors against density, and plain vs annealed Langevin."""
    mode = ctx.mode
    target = two_mode_mixture()
    data = target.sample(N_DATA[mode], generator=ctx.generator(0))

    # 1. One network per noise level, errors against the exact score of the law it targets.
    xx, yy, grid = _grid(GRID_N[mode])
    log_p = target.log_prob(grid).numpy()
    errors, histories = {}, {}
    for k, sigma in enumerate((SMALL_SIGMA, LARGE_SIGMA)):
        net = seeded_module(lambda: SoftplusMLP(dim=2, hidden=128), ctx.seed * 10 + k)
        config = _config(ctx, SINGLE_STEPS[mode], SINGLE_BATCH)
        result = train(net, _single_sigma_loss(sigma), data, config, progress=False)
        label = f"DSM at σ = {sigma:g}"
        errors[label] = _score_error(
            result.ema_model, target, grid, sigma, data, ctx.generator(5 + k)
        ).numpy()
        histories[label] = result.history
    dense = np.exp(log_p) >= hdr_levels(np.exp(log_p), [0.95])[0]
    for label, err in errors.items():
        key = label.replace("DSM at σ = ", "sigma_")
        ctx.record(f"{key}_median_error_where_dense", float(np.median(err[dense])))
        ctx.record(f"{key}_median_error_where_sparse", float(np.median(err[~dense])))
    ctx.record("grid_points_dense_sparse", [int(dense.sum()), int((~dense).sum())])
    _error_maps(xx, yy, log_p, errors, data, ctx.path("score_error_maps.png"))
    _error_vs_density(log_p, errors, ctx.path("score_error_vs_density.png"))

    # 2. Exact scores: plain Langevin vs annealed Langevin from a uniform start. The exact score
    # is cheap, so fast mode runs the full step count here too (and tests the converged shares).
    n, steps_each = N_SAMPLES[mode], STEPS_EACH["full"]
    sigmas = geometric_sigmas(N_LEVELS, sigma_min=SIGMA_MIN, sigma_max=SIGMA_MAX)
    start = BOX[0] + (BOX[1] - BOX[0]) * torch.rand(
        (n, 2), generator=ctx.generator(1), dtype=torch.float64
    )
    plain = langevin(
        target.score,
        start,
        step_size=PLAIN_ETA,
        n_steps=N_LEVELS * steps_each,
        parametrization="eta",
        generator=ctx.generator(2),
    ).samples
    annealed = annealed_langevin(
        target.noised_score,
        start,
        sigmas,
        n_steps_each=steps_each,
        eps=EPS,
        generator=ctx.generator(3),
    ).samples

    # 3. The seed's NCSN: one network, a random level per example, then annealed Langevin.
    ncsn = seeded_module(
        lambda: ScoreMLP(dim=2, hidden=128, depth=2, sigma_data=5.0), ctx.seed * 10 + 2
    )
    config = _config(ctx, NCSN_STEPS[mode], NCSN_BATCH)
    fit = train(ncsn, _ncsn_loss(sigmas.float()), data, config, progress=False)
    histories["NCSN, σ ladder"] = fit.history
    learned = annealed_langevin(
        as_score_fn(fit.ema_model),
        start.float(),
        sigmas,
        n_steps_each=STEPS_EACH[mode],
        eps=EPS,
        generator=ctx.generator(4),
        keep_trajectory=True,
    )

    sets = {
        "plain Langevin, exact score": plain,
        "annealed Langevin, exact score": annealed,
        "annealed Langevin, learned NCSN": learned.samples,
    }
    for key, x in zip(
        ("plain_exact", "annealed_exact", "annealed_learned"), sets.values(), strict=True
    ):
        ctx.record(f"mode_weights_{key}", mixture_weights(x, target).tolist())
    ctx.record("true_weights", list(WEIGHTS))
    ctx.record("sigmas", sigmas.tolist())
    _sample_panels(sets, data, target, ctx.path("plain_vs_annealed.png"))

    frames = learned.trajectory
    titles = ["start: uniform on the box"]
    titles += [
        f"level {i + 1}/{N_LEVELS}: σ = {float(s):.3g}, step {k + 1}/{STEPS_EACH[mode]}"
        for i, s in enumerate(sigmas)
        for k in range(STEPS_EACH[mode])
    ]
    titles.append("after the final denoising step")
    animate_points(
        frames,
        titles=titles,
        background=data,
        xlim=BOX,
        ylim=BOX,
        max_frames=ctx.pick(80, 8),
        path=ctx.path("annealed_langevin.gif"),
    )
    loss_curves(
        {label: [r.get("train_loss") for r in h] for label, h in histories.items()},
        keys=list(histories),
        title="training losses (each at its own scale)",
        path=ctx.path("losses.png"),
    )

    small, large = (f"sigma_{s:g}" for s in (SMALL_SIGMA, LARGE_SIGMA))
    ctx.note(
        f"Data: {len(data)} draws of 0.2·N((−5, −5), I) + 0.8·N((5, 5), I). Two softplus score "
        f"networks of x alone are trained by denoising score matching, one at σ = {SMALL_SIGMA:g} "
        f"and one at σ = {LARGE_SIGMA:g}; each is compared on a grid with the exact score of the "
        "law it is trained for, ∇log p_σ (p_σ = p ∗ N(0, σ²I)). score_error_maps.png shows the "
        "error ‖s_θ − ∇log p_σ‖ over the plane, in units of the typical size of ∇log p_σ (its "
        "root mean square on p_σ), score_error_vs_density.png the same against the data "
        "log-density log p(x)."
    )
    ctx.note(
        f"Where the data are (the region holding 95 % of the mass) the small-σ network's median "
        f"error is {ctx.numbers[f'{small}_median_error_where_dense']:.3f}; "
        f"elsewhere it is {ctx.numbers[f'{small}_median_error_where_sparse']:.3f}: the loss "
        "only sees points within a few σ of the data, so between and around the modes the network "
        "extrapolates. The large-σ network's errors are "
        f"{ctx.numbers[f'{large}_median_error_where_dense']:.3f} and "
        f"{ctx.numbers[f'{large}_median_error_where_sparse']:.3f}: its noised data fill the "
        "low-density regions, so its score is right there too, but it is the score of a blurred "
        "law. Using many levels, large to small, gets both."
    )
    w = {
        k: ctx.numbers[f"mode_weights_{k}"]
        for k in ("plain_exact", "annealed_exact", "annealed_learned")
    }
    ctx.note(
        f"plain_vs_annealed.png: {n} chains started uniformly on [{BOX[0]:g}, {BOX[1]:g}]². Plain "
        f"Langevin with the exact score (η = {PLAIN_ETA:g}, {N_LEVELS * steps_each} steps) cannot "
        "cross the empty region between the modes, so each chain stays with the mode of its "
        f"start: shares {w['plain_exact'][0]:.2f} / {w['plain_exact'][1]:.2f} instead of 0.20 / "
        f"0.80. Annealed Langevin over {N_LEVELS} geometric levels from σ = {SIGMA_MAX:g} to "
        f"{SIGMA_MIN:g} ({steps_each} steps each, step {STEP_RATIO:g}·σ_i², final denoising) gets "
        f"{w['annealed_exact'][0]:.2f} / {w['annealed_exact'][1]:.2f} with the exact noised "
        f"score and {w['annealed_learned'][0]:.2f} / {w['annealed_learned'][1]:.2f} with the "
        "noise-conditional network trained as the seed describes (level drawn uniformly per "
        "example, loss σ²‖s + z/σ‖²). annealed_langevin.gif shows those learned-score chains "
        "moving through the levels."
    )


RECIPES = [
    Recipe(
        name="seed002-low-density",
        seed_doc="002",
        title="Low-density regions: small vs large σ, plain vs annealed Langevin",
        description="Score errors of single-σ DSM networks (small and large σ) against the exact "
        "noised score as a function of the data density, plain vs annealed Langevin mode shares "
        "with the exact score, and an NCSN trained with a random level per example whose "
        "annealed Langevin samples are animated level by level.",
        run=run_low_density,
        minutes=1.5,
    ),
]
