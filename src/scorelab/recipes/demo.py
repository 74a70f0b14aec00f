"""The main job end to end (``scorelab demo``, ``make demo``): train, sample, measure, draw.

Trains the ``points`` preset on the swiss roll (about a minute on 2 CPU cores), samples it with
annealed Langevin dynamics (the seeds' sampler) and with the run's recommended sampler, measures
both by the one evaluation protocol (:mod:`scorelab.evaluation`), and draws the figures people
look at: data vs samples, the learned score field next to the data, the loss curve against the
optimiser step and a GIF of annealed Langevin moving through the noise levels.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scorelab.evaluation import evaluate_samples, format_report
from scorelab.runs import fresh_sampler, load_run, plan_run, train_run
from scorelab.samplers import SamplerConfig, draw_samples
from scorelab.utils import atomic_writer, save_npy

#: The seeds' sampler, shown beside the recommended one.
ANNEALED = SamplerConfig("annealed-langevin")


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def run_demo(
    out: str | Path = "runs/demo",
    *,
    data: str = "swiss-roll",
    steps: int | None = None,
    n_samples: int = 5000,
    seed: int = 0,
    fast: bool = False,
    say: Callable[[str], None] = _say,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the evaluation reports by sampler name.

    ``fast`` trains 300 steps and draws 1000 samples (a quick look); ``steps`` and
    ``n_samples`` override. The run folder gets ``checkpoint.pt``, ``config.json``,
    ``metrics.csv``, ``evaluation.json``, ``samples-*.npy`` and ``figures/``.
    """
    from scorelab.plotting import animate_points, loss_curves, scatter_compare, score_field
    from scorelab.training import read_metrics

    out = Path(out)
    steps = steps if steps is not None else (300 if fast else None)
    plan, train_x, test_x = plan_run(data, seed=seed, steps=steps, device="cpu")
    say(f"[1/4] training the {plan['preset']} preset on {data} for {plan['train']['steps']} steps")
    train_run(plan, train_x, test_x, out, command=f"scorelab demo --data {data}", progress=True)

    n = 1000 if fast else n_samples
    run = load_run(out)
    recommended = run.recommended_sampler
    law = fresh_sampler(data)
    truth = law(n, torch.Generator().manual_seed(seed + 123)) if law is not None else test_x[:n]
    results, reports = {}, {}
    for config in (ANNEALED, recommended):
        say(f"[2/4] sampling {n} points with {config.sampler} and measuring them")
        generator = torch.Generator().manual_seed(seed + 1)
        result = draw_samples(
            run.score_source(),
            n,
            config,
            generator=generator,
            keep_trajectory=config is ANNEALED,
        )
        save_npy(out / f"samples-{config.sampler}.npy", np.asarray(result.samples.cpu()))
        report = {"sampler": config.sampler, "n_evals": result.n_evals}
        report.update(evaluate_samples(run, result.samples.cpu(), seed=seed + 1))
        say(format_report(report))
        results[config.sampler], reports[config.sampler] = result, report
    atomic_writer(
        out / "evaluation.json",
        lambda tmp: tmp.write_text(json.dumps(reports, indent=2, default=float)),
    )

    say("[3/4] drawing figures")
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    best, annealed = results[recommended.sampler], results[ANNEALED.sampler]
    for result, name, path in (
        (best, recommended.sampler, "samples.png"),
        (annealed, "annealed Langevin", "samples-annealed.png"),
    ):
        scatter_compare(
            truth,
            result.samples,
            labels=("data", f"samples ({name})"),
            title=f"{data}: data vs samples ({result.n_evals} score evaluations)",
            path=figures / path,
        )
    source = run.score_source()
    lo, hi = truth.min(0).values - 0.3, truth.max(0).values + 0.3
    score_field(
        source.clean_score,
        data=truth,
        xlim=(float(lo[0]), float(hi[0])),
        ylim=(float(lo[1]), float(hi[1])),
        title=f"learned score at σ = {source.sigma_min:.3g} (log1p arrows)",
        path=figures / "score-field.png",
    )
    loss_curves(
        read_metrics(out / "metrics.csv"),
        keys=("train_loss", "test_loss", "test_loss_ema"),
        x_key="step",
        xlabel="optimiser step",
        path=figures / "loss.png",
    )
    animate_points(
        annealed.trajectory,
        path=figures / "annealed-langevin.gif",
        background=truth,
        xlim=(float(lo[0]) - 0.5, float(hi[0]) + 0.5),
        ylim=(float(lo[1]) - 0.5, float(hi[1]) + 0.5),
    )
    say(
        f"[4/4] done: {out} (checkpoint.pt, config.json, metrics.csv, evaluation.json, "
        "samples-*.npy, figures/)"
    )
    return reports
