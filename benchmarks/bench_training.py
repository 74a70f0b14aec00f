"""Quality against training time of the default 2-D recipe and of the two seed 000 recipes.

One run trains, side by side, on two moons (seed 000 data) and the swiss roll (seed 001 data):

- ``default``: the ``points`` training preset through ``scorelab.training.recipe2d.fit_2d``
  (ScoreMLP with EDM preconditioning, log-normal σ and EDM weighting, EMA), sampled with the
  preset's recommended sampler from the registry (``Fit2D.sample``).
  Each point of its curve is its own run with that many steps (the cosine schedule depends on
  the step count), so a point is what a user asking for that budget gets.
- ``seed000-dsm``: seed 000 task 2 — a ReLU MLP trained by DSM at the single σ = 0.1 (batch 128,
  Adam 2e-3, ×0.95 per epoch), sampled by 1000 Langevin steps of η = 0.01 from U[-1, 1]².
- ``seed000-ncsn``: seed 000 task 3 in 2-D — an MLP with one learned embedding per level,
  10 geometric σ from 1 to 0.01, the seed's weighting σ²/σ_max², one random level per example
  (batch 128, Adam 1e-3, ×0.95 per epoch), annealed Langevin with η_t = ε σ_t²/σ_max²
  (ε = 0.05, 100 steps per level) from N(0, σ_max² I).
  The seed recipes' curves are snapshots of one run (their schedules do not depend on its length).

Quality is scorelab's one evaluation protocol (``scorelab.metrics.LawReference``, one per data
set): sliced-W2 of 5000 samples to 5 fresh independent draws of the data's law, divided by the
floor (the mean over 16 independent pairs at n = 5000), with the calibration of exact samples
beside it. For moons and circles the law is drawn independently (``make_moons`` and
``make_circles`` are stratified sets; their own floor, far lower, is recorded as
``stratified_rms``); the swiss roll and the S-curve are independent draws already.

Samplers of the trained default model: every registered few-step configuration at 5, 10 and 20
score evaluations, averaged over ``--draws`` sample sets on tuning seeds (500+); the figure of
the default (``final``) uses other seeds (1000·seed + k).
The default's final figure is the mean over 3 training seeds. The default also trains on
user-style ``.csv`` files read through ``scorelab.data.load_dataset``.

Time: steps at a fixed model size are the reproducible measure; wall and CPU seconds are
reported too (this machine is shared, so wall time is noisy; CPU seconds of a one-thread run
are a close upper bound on the wall time of the same run on an idle core).

Run: ``python benchmarks/bench_training.py`` (full, ~15 min on an idle 2-core machine) or
``--quick`` (a smoke run of a few minutes). Writes ``benchmarks/results/training.json`` and
``benchmarks/results/training.png`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, machine, save_results  # noqa: E402

from scorelab.data import TOY_LAWS, load_dataset, moons  # noqa: E402
from scorelab.losses import dsm_loss, multilevel_dsm_loss  # noqa: E402
from scorelab.metrics import LawReference, noise_floor  # noqa: E402
from scorelab.models import IndexConditioned, as_score_fn  # noqa: E402
from scorelab.samplers import SamplerConfig, evaluation_count  # noqa: E402
from scorelab.samplers.langevin import annealed_langevin, langevin  # noqa: E402
from scorelab.sde import geometric_sigmas  # noqa: E402
from scorelab.training import TrainConfig, train  # noqa: E402
from scorelab.training.presets import TRAINING_PRESETS  # noqa: E402
from scorelab.training.recipe2d import DEFAULT_STEPS, fit_2d  # noqa: E402

N = 5000  # points in the training set, in each generated set and in each reference set


# ---------------------------------------------------------------------------------------------
# Data: the two toy sets and two user-style files
# ---------------------------------------------------------------------------------------------


def user_file_points(kind: str, n: int, generator: torch.Generator) -> Tensor:
    """The point sets saved as users' files: scikit-learn's concentric circles (×10, shifted far
    from the origin, to test scale and centring) and S-curve (columns 0 and 2), float32 (n, 2)."""
    from sklearn.datasets import make_circles, make_s_curve

    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    if kind == "circles":
        x, _ = make_circles(n_samples=n, noise=0.05, factor=0.5, random_state=seed)
        return torch.from_numpy((CIRCLES_SCALE * x + CIRCLES_SHIFT).astype(np.float32))
    x, _ = make_s_curve(n_samples=n, noise=0.05, random_state=seed)
    return torch.from_numpy(x[:, [0, 2]].astype(np.float32))


CIRCLES_SCALE, CIRCLES_SHIFT = 10.0, np.array([30.0, -5.0])


def circles_law(n: int, generator: torch.Generator) -> Tensor:
    """Independent draws of the law of ``make_circles(noise=0.05, factor=0.5)`` (×10, shifted):
    a fair coin picks the circle (radius 1 or 0.5), the angle is U[0, 2π), plus N(0, 0.05²).
    ``make_circles`` itself is stratified (n/2 points per circle at evenly spaced angles)."""
    t = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    radius = torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < 0.5, 1.0, 0.5)
    x = torch.stack([radius * t.cos(), radius * t.sin()], 1)
    x = x + 0.05 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return (CIRCLES_SCALE * x + torch.from_numpy(CIRCLES_SHIFT)).float()


def true_sampler(name: str) -> Callable[[int, torch.Generator], Tensor]:
    """``sample(n, generator)``: independent draws of the true law of a data set (for moons and
    circles not scikit-learn's stratified sets; see ``scorelab.data.moons``)."""
    if name in TOY_LAWS:
        draw = TOY_LAWS[name]
        return lambda n, g: draw(n, seed=int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
    if name == "circles":
        return circles_law
    return functools.partial(user_file_points, name)  # make_s_curve draws independently


def stratified_sampler(name: str) -> Callable[[int, torch.Generator], Tensor]:
    """``sample(n, generator)`` of the data as scikit-learn makes it (stratified for moons)."""
    if name == "moons":
        return lambda n, g: moons(n, generator=g)
    return functools.partial(user_file_points, name)


# ---------------------------------------------------------------------------------------------
# Quality
# ---------------------------------------------------------------------------------------------


class Judge:
    """The evaluation protocol against the data's law: one ``LawReference`` per data set."""

    def __init__(self, name: str, floor_repeats: int) -> None:
        self.name = name
        self.sample_true = true_sampler(name)
        self.reference = LawReference(self.sample_true, N, n_pairs=floor_repeats, seed=12345)
        one = self.reference.measure(self.sample_true(N, torch.Generator().manual_seed(7)))
        self.calibration = one["sliced_w2"]
        # For the record: the floor between two stratified scikit-learn sets (far lower).
        self.stratified_floor = noise_floor(
            stratified_sampler(name), N, distance="sliced_w2", repeats=4, seed=12345
        ).rms if name in ("moons", "circles") else self.calibration.floor  # fmt: skip

    def ratio(self, samples: Tensor) -> float:
        """SW2(samples, the references) / floor, by the protocol."""
        if not bool(torch.isfinite(samples).all()):
            return math.inf
        return self.reference.measure(samples)["sliced_w2"].ratio


# ---------------------------------------------------------------------------------------------
# The seed 000 recipes
# ---------------------------------------------------------------------------------------------


class StudentMLP(nn.Module):
    """Seed 000 task 2: "a sequence of Linear layers with activations", score of x alone."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 2),
        )  # fmt: skip

    def forward(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        return self.net(x)


class StudentNCSN(nn.Module):
    """Seed 000 task 3 in 2-D: ReLU MLP whose hidden layers add a learned per-level embedding."""

    def __init__(self, n_levels: int, hidden: int = 128) -> None:
        super().__init__()
        self.num_embeddings = n_levels
        self.inp = nn.Linear(2, hidden)
        self.hid = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 2)
        self.emb1 = nn.Embedding(n_levels, hidden)
        self.emb2 = nn.Embedding(n_levels, hidden)

    def forward(self, x: Tensor, level: Tensor) -> Tensor:
        h = torch.relu(self.inp(x) + self.emb1(level))
        h = torch.relu(self.hid(h) + self.emb2(level))
        return self.out(h)


def _seed_dsm_loss(model: nn.Module, x0: Tensor, generator: torch.Generator) -> Tensor:
    return dsm_loss(model, x0, 0.1, generator, conditional=False)


def _seed_ncsn_loss(
    model: nn.Module, x0: Tensor, generator: torch.Generator, *, sigmas: Tensor
) -> Tensor:
    return multilevel_dsm_loss(model, x0, sigmas, weighting="seed000", generator=generator)


def _student_config(epochs: int, lr: float, seed: int) -> TrainConfig:
    """Adam, batch 128, StepLR ×0.95 per epoch, no EMA, no clipping: the seed's notebook loop."""
    per_epoch = math.ceil(N / 128)
    return TrainConfig(
        steps=epochs * per_epoch, batch_size=128, lr=lr, lr_schedule="step",
        lr_step_every=per_epoch, lr_gamma=0.95, grad_clip=None, ema_decay=None,
        log_every=per_epoch, eval_every=epochs * per_epoch, seed=seed, device="cpu",
    )  # fmt: skip


def _train_with_snapshots(
    model: nn.Module, loss_fn, data: Tensor, config: TrainConfig, n_points: int
) -> list[dict]:
    """Train once; copy the weights, step and time at ``n_points`` evenly spaced steps."""
    marks = {max(1, round(config.steps * (k + 1) / n_points)) for k in range(n_points)}
    snaps: list[dict] = []
    start, cpu0 = time.perf_counter(), time.process_time()

    def callback(info: dict) -> None:
        if info["step"] in marks:
            snaps.append({
                "step": info["step"],
                "train_s": time.perf_counter() - start,
                "cpu_s": time.process_time() - cpu0,
                "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            })  # fmt: skip

    train(model, loss_fn, data, config, progress=False, callback=callback)
    return snaps


def seed_dsm_curve(data: Tensor, judge: Judge, seed: int, epochs: int, n_points: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = StudentMLP()
    config = _student_config(epochs, 2e-3, seed)
    points = []
    for snap in _train_with_snapshots(model, _seed_dsm_loss, data, config, n_points):
        model.load_state_dict(snap.pop("state"))
        model.eval()
        x = 2.0 * torch.rand(N, 2, generator=gen) - 1.0  # U[-1, 1]²
        with torch.no_grad():
            res = langevin(
                lambda y: model(y), x, step_size=0.01, n_steps=1000, parametrization="eta",
                generator=gen,
            )  # fmt: skip
        points.append({**snap, "ratio": judge.ratio(res.samples), "evals": res.n_evals})
        model.train()
    return {"points": points, "settings": {"sigma": 0.1, "eta": 0.01, "langevin_steps": 1000,
            **config.to_dict()}}  # fmt: skip


def seed_ncsn_curve(data: Tensor, judge: Judge, seed: int, epochs: int, n_points: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    sigmas = geometric_sigmas(10, sigma_min=0.01, sigma_max=1.0, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = IndexConditioned(StudentNCSN(10), sigmas)
    config = _student_config(epochs, 1e-3, seed)
    loss = functools.partial(_seed_ncsn_loss, sigmas=sigmas)
    points = []
    for snap in _train_with_snapshots(model, loss, data, config, n_points):
        model.load_state_dict(snap.pop("state"))
        model.eval()
        x = float(sigmas[0]) * torch.randn(N, 2, generator=gen)
        res = annealed_langevin(
            as_score_fn(model), x, sigmas, n_steps_each=100, eps=0.05, step_rule="seed",
            final_denoise=False, generator=gen,
        )  # fmt: skip
        points.append({**snap, "ratio": judge.ratio(res.samples), "evals": res.n_evals})
        model.train()
    settings = {"sigmas": sigmas.tolist(), "weighting": "seed000", "eps": 0.05,
                "n_steps_each": 100, **config.to_dict()}  # fmt: skip
    return {"points": points, "settings": settings}


# ---------------------------------------------------------------------------------------------
# The default recipe
# ---------------------------------------------------------------------------------------------


def default_point(data: Tensor, judge: Judge, seed: int, steps: int, draws: int) -> dict:
    """Train the default recipe for ``steps``; quality with its recommended sampler, averaged
    over ``draws`` sample sets (seeds 1000·seed + k, not the tuning seeds)."""
    fit = fit_2d(data, steps=steps, seed=seed)
    ratios, ratios_20 = [], []
    for k in range(draws):
        gen = torch.Generator().manual_seed(1000 * seed + k)
        ratios.append(judge.ratio(fit.sample(N, generator=gen)))
        gen = torch.Generator().manual_seed(1000 * seed + k)  # `--steps 20`
        ratios_20.append(judge.ratio(fit.sample(N, generator=gen, steps=20)))
    config = TRAINING_PRESETS["points"].sampler
    return {
        "step": steps,
        "seed": seed,
        "train_s": fit.train_seconds,
        "cpu_s": fit.cpu_seconds,
        "ratio": _mean(ratios),
        "ratio_draws": ratios,
        "ratio_at_20_evals": _mean(ratios_20),
        "ratio_at_20_evals_draws": ratios_20,
        "sampler": config.to_dict(),
        "evals": evaluation_count(config),
        "_fit": fit,
    }


#: Few-step configurations compared on each trained default model, at every budget.
FEW_STEP = [
    (name, ladder)
    for name in (
        "dpmpp-3m",
        "dpmpp-2m",
        "unipc",
        "ipndm",
        "deis",
        "edm-heun",
        "dpmpp-2m-sde",
        "dpmpp-3m-sde",
    )
    for ladder in ("geometric", "karras")
]
BUDGETS = (5, 10, 20)
#: Stochastic samplers at their default steps, for reference.
STOCHASTIC = ("edm-stochastic", "annealed-langevin")


def steps_for(name: str, budget: int) -> int:
    """Steps of a registered sampler whose evaluation count is closest to ``budget`` (≤)."""
    best = 2
    for steps in range(2, budget + 2):
        evals = evaluation_count(name, steps)
        if evals is not None and evals <= budget:
            best = steps
    return best


def sampler_comparison(
    fit, judge: Judge, draws: int, budgets: tuple[int, ...] = BUDGETS
) -> dict[str, dict]:
    """Every few-step configuration at 5, 10 and 20 evaluations, and the stochastic samplers at
    their defaults, on one trained default model, each averaged over ``draws`` sample sets on
    tuning seeds (500 + k)."""
    out = {}
    runs = [
        (
            f"{name} {ladder} @{budget}",
            SamplerConfig(name, steps_for(name, budget), {"ladder": ladder}),
        )
        for budget in budgets
        for name, ladder in FEW_STEP
    ] + [(name, SamplerConfig(name)) for name in STOCHASTIC]
    for label, config in runs:
        ratios = []
        for k in range(draws):
            gen = torch.Generator().manual_seed(500 + k)
            ratios.append(judge.ratio(fit.sample(N, config, generator=gen)))
        out[label] = {"ratio": _mean(ratios), "ratios": ratios, "evals": evaluation_count(config),
                      "sampler": config.to_dict()}  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def run_dataset(name: str, data: Tensor, args: argparse.Namespace, judge: Judge) -> dict:
    steps = args.steps
    budgets = sorted({max(20, round(steps * f)) for f in args.fractions})
    c = judge.calibration
    print(f"\n== {name}: floor {c.floor:.4g} (sd {c.floor_sd:.2g}; an exact sample "
          f"{c.ratio:.2f}, band {c.calibration_mean:.2f} ± {c.calibration_sd:.2f}; between two "
          f"scikit-learn sets {judge.stratified_floor:.4g})", flush=True)  # fmt: skip
    curve = []
    for b in budgets:
        point = default_point(data, judge, 0, b, args.draws)
        curve.append(point)
        print(f"  default  {b:5d} steps  {point['train_s']:6.1f}s  ratio {point['ratio']:.2f}",
              flush=True)  # fmt: skip
    finals = [curve[-1]]
    for seed in range(1, args.seeds):
        point = default_point(data, judge, seed, steps, args.draws)
        finals.append(point)
        print(f"  default  seed {seed}  {point['train_s']:6.1f}s  ratio {point['ratio']:.2f}",
              flush=True)  # fmt: skip
    budgets = (10,) if args.quick else BUDGETS
    samplers = (
        sampler_comparison(curve[-1]["_fit"], judge, args.draws, budgets) if args.samplers else {}
    )
    for key, val in samplers.items():
        print(f"  sampler {key}: ratio {val['ratio']:.2f} ({val['evals']} evals)", flush=True)
    seeds = {}
    if args.seed_recipes:
        seeds["seed000-dsm"] = seed_dsm_curve(data, judge, 0, args.dsm_epochs, args.points)
        seeds["seed000-ncsn"] = seed_ncsn_curve(data, judge, 0, args.ncsn_epochs, args.points)
        for key, val in seeds.items():
            last = val["points"][-1]
            print(f"  {key}: {last['step']} steps {last['train_s']:.1f}s ratio "
                  f"{last['ratio']:.2f}", flush=True)  # fmt: skip
    for p in curve + finals:
        p.pop("_fit", None)
    return {
        "floor": {**judge.calibration.to_dict(), "stratified_rms": judge.stratified_floor},
        "default": {"curve": curve, "final": finals,
                    "final_ratio_mean": _mean([p["ratio"] for p in finals]),
                    "final_ratio_sd": float(np.std([p["ratio"] for p in finals], ddof=1))
                    if len(finals) > 1 else 0.0},
        "samplers": samplers,
        **seeds,
    }  # fmt: skip


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scorelab.utils import atomic_writer

    names = list(results)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        res = results[name]
        curve = res["default"]["curve"]
        ax.plot([p["cpu_s"] for p in curve], [p["ratio"] for p in curve], "o-",
                label="default (recipe2d)")  # fmt: skip
        for key, style in (("seed000-dsm", "s--"), ("seed000-ncsn", "^--")):
            if key in res:
                pts = res[key]["points"]
                ax.plot([p["cpu_s"] for p in pts], [p["ratio"] for p in pts], style, label=key)
        ax.axhline(1.5, color="k", lw=0.8, ls="--", label="1.5 × floor")
        ax.axhline(1.0, color="gray", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training CPU seconds (one thread)")
        ax.set_ylabel("sliced-W2 / noise floor")
        ax.set_title(name)
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_writer(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    print(f"wrote {path}")


def table(results: dict, steps: int) -> str:
    lines = [
        "| data | recipe | steps | train s (wall) | CPU s | evals | SW2 / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, res in results.items():
        for p in res["default"]["final"]:
            lines.append(
                f"| {name} | default seed {p['seed']} | {p['step']} | {p['train_s']:.1f} | "
                f"{p['cpu_s']:.1f} | {p['evals']} | {p['ratio']:.2f} |"
            )
        d = res["default"]
        c = res["floor"]
        lines.append(
            f"| {name} | default, mean ± sd of {len(d['final'])} seeds | {steps} | | | | "
            f"{d['final_ratio_mean']:.2f} ± {d['final_ratio_sd']:.2f} (an exact sample: "
            f"{c['calibration_mean']:.2f} ± {c['calibration_sd']:.2f}) |"
        )
        for key in ("seed000-dsm", "seed000-ncsn"):
            if key in res:
                p = res[key]["points"][-1]
                lines.append(
                    f"| {name} | {key} | {p['step']} | {p['train_s']:.1f} | {p['cpu_s']:.1f} | "
                    f"{p['evals']} | {p['ratio']:.2f} |"
                )
    return "\n".join(lines)


def cli_figure(sources: dict[str, str], seeds: range, draws: int) -> dict:
    """Issue 11's learned-score figure exactly as a user gets it: ``scorelab train --data SOURCE
    --seed S`` (``plan_run`` + ``train_run``: the ``points`` preset on the command line's
    10 000 generated points, 20 % held out, or all rows of a file but 20 %), then ``scorelab
    sample RUN`` at the recommended 10 evaluations and ``--steps 20`` (``load_run(...).
    score_source()`` + ``draw_samples``), ``draws`` sample sets per run (seeds 1000·S + k)."""
    from scorelab.runs import load_run, plan_run, train_run
    from scorelab.samplers import draw_samples

    out = {}
    for label, source in sources.items():
        judge = Judge(label.removeprefix("file:"), 16)
        c = judge.calibration
        runs = []
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                plan, train_x, test_x = plan_run(source, seed=seed, device="cpu")
                result = train_run(plan, train_x, test_x, Path(tmp) / "run", progress=False)
                score = load_run(Path(tmp) / "run", device="cpu").score_source()
                ratios = {}
                for steps in (None, 20):
                    ratios[steps or 10] = [
                        judge.ratio(
                            draw_samples(
                                score, N, steps=steps,
                                generator=torch.Generator().manual_seed(1000 * seed + k),
                            ).samples
                        )
                        for k in range(draws)
                    ]  # fmt: skip
            row = {
                "seed": seed,
                "n_train": len(train_x),
                "train_s": result.history[-1]["time"],
                "ratio_10": _mean(ratios[10]),
                "ratio_10_draws": ratios[10],
                "ratio_20": _mean(ratios[20]),
                "ratio_20_draws": ratios[20],
            }
            runs.append(row)
            print(f"  cli {label} seed {seed}: 10 evals {row['ratio_10']:.2f}, 20 evals "
                  f"{row['ratio_20']:.2f} ({row['train_s']:.0f} s)", flush=True)  # fmt: skip
        r10, r20 = [r["ratio_10"] for r in runs], [r["ratio_20"] for r in runs]
        out[label] = {
            "floor": c.to_dict(),
            "runs": runs,
            "ratio_10_mean": _mean(r10),
            "ratio_10_sd": float(np.std(r10, ddof=1)) if len(r10) > 1 else 0.0,
            "ratio_20_mean": _mean(r20),
            "ratio_20_sd": float(np.std(r20, ddof=1)) if len(r20) > 1 else 0.0,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few steps, 1 seed")
    parser.add_argument("--steps", type=int, default=None, help=f"default {DEFAULT_STEPS}")
    parser.add_argument("--seeds", type=int, default=None, help="default-recipe seeds (3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--data", nargs="+", default=["moons", "swiss-roll"])
    parser.add_argument("--user-files", nargs="*", default=None,
                        help="user-style sets saved to .csv and trained from the file "
                        "(circles, s-curve; default both, none in --quick)")  # fmt: skip
    parser.add_argument("--no-seed-recipes", dest="seed_recipes", action="store_false")
    parser.add_argument("--no-samplers", dest="samplers", action="store_false")
    parser.add_argument(
        "--final-only", action="store_true", help="no quality/time curve: the final runs only"
    )
    parser.add_argument(
        "--cli",
        type=int,
        metavar="SEEDS",
        default=None,
        help="instead: the issue-11 figure through `scorelab train`/`sample` defaults, SEEDS "
        "training seeds per data set (--data, and a circles CSV unless --user-files is given "
        "empty) → training_cli[_from_K].json",
    )
    parser.add_argument("--cli-from", type=int, default=0, metavar="K", help="--cli: first seed")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.cli is not None:
        seeds = range(args.cli_from, args.cli_from + args.cli)
        with tempfile.TemporaryDirectory() as tmp:
            sources = {name: name for name in args.data}
            for kind in ["circles"] if args.user_files is None else args.user_files:
                path = Path(tmp) / f"{kind}.csv"
                points = user_file_points(kind, N, torch.Generator().manual_seed(0)).numpy()
                np.savetxt(path, points, delimiter=",", header="x,y", comments="")
                sources[f"file:{kind}"] = str(path)
            figure = cli_figure(sources, seeds, draws=3)
        name = "training_cli" + (f"_from_{args.cli_from}" if args.cli_from else "")
        save_results(name, {"seeds": list(seeds), "n": N, "results": figure})
        return 0
    quick = args.quick
    args.steps = args.steps or (300 if quick else DEFAULT_STEPS)
    args.seeds = args.seeds or (1 if quick else 3)
    args.fractions = (0.5, 1.0) if quick else (0.125, 0.25, 0.5, 1.0)
    if args.final_only:
        args.fractions = (1.0,)
    args.points = 2 if quick else 4
    args.draws = 1 if quick else 3  # sample sets per trained model
    args.dsm_epochs = 5 if quick else 60
    args.ncsn_epochs = 3 if quick else 30
    floor_repeats = 16
    if args.user_files is None:
        args.user_files = [] if quick else ["circles", "s-curve"]
    print(f"machine: {machine()}", flush=True)

    results: dict[str, dict] = {}
    notes: dict[str, float] = {}
    wall0 = time.perf_counter()
    for name in args.data:
        judge = Judge(name, floor_repeats)
        data = load_dataset(name, n=N, seed=0)
        results[name] = run_dataset(name, data, args, judge)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.user_files:
            path = Path(tmp) / f"{kind}.csv"  # a user's CSV file, read like `--data FILE.csv`
            points = user_file_points(kind, N, torch.Generator().manual_seed(0)).numpy()
            np.savetxt(path, points, delimiter=",", header="x,y", comments="")
            data = load_dataset(path)  # the user's path: all rows of the file
            user_args = argparse.Namespace(**{**vars(args), "seed_recipes": False,
                                              "fractions": (1.0,)})  # fmt: skip
            results[f"file:{kind}"] = run_dataset(f"file:{kind}", data, user_args,
                                                  Judge(kind, floor_repeats))  # fmt: skip

    md = table(results, args.steps)
    print("\n" + md)
    name = "training_quick" if quick else "training"
    save_results(
        name,
        {
            "quick": quick,
            "steps": args.steps,
            "threads": args.threads,
            "n": N,
            "notes": notes,
            "total_wall_s": time.perf_counter() - wall0,
            "results": results,
            "table": md,
        },
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    plot(results, RESULTS_DIR / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
