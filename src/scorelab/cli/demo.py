"""``scorelab demo`` (``make demo``): the main job end to end on the swiss roll.

Trains a noise-conditional score model (about a minute on 2 CPU cores), samples it with annealed
Langevin dynamics and with the recommended sampler, measures both against fresh true data next
to the noise floor, and draws the figures people look at: data vs samples, the learned score
field next to the data, the loss curve and a GIF of the samples moving through the noise levels.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from scorelab.cli import evaluate as evaluate_cmd
from scorelab.cli import train as train_cmd
from scorelab.cli.main import build_parser
from scorelab.utils import atomic_writer


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train, sample, evaluate and plot on the swiss roll",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder")
    p.add_argument("--data", default="swiss-roll", help="data set (default swiss-roll)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: by data)")
    p.add_argument("--n-samples", type=int, default=5000, help="samples per sampler")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="a few hundred steps: a quick look")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser, _ = build_parser()
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    from scorelab.plotting import animate_points, loss_curves, scatter_compare, score_field
    from scorelab.runs import fresh_sampler, load_run
    from scorelab.training import read_metrics

    out: Path = args.out
    steps = args.steps if args.steps is not None else (300 if args.fast else None)
    train_argv = ["train", "--data", args.data, "--out", str(out), "--seed", str(args.seed)]
    if steps:
        train_argv += ["--steps", str(steps)]
    print(f"[1/4] training: scorelab {' '.join(train_argv[0:])}", file=sys.stderr)
    train_cmd.run(_parse(train_argv))

    n = 1000 if args.fast else args.n_samples
    run_ = load_run(out)
    truth = fresh_sampler(run_.config["data"]["source"])
    data = truth(n, torch.Generator().manual_seed(123)) if truth is not None else None
    results, reports = {}, {}
    for sampler in ("annealed-langevin", "dpmpp-2m-sde"):
        print(f"[2/4] sampling {n} points with {sampler} and evaluating", file=sys.stderr)
        results[sampler] = _sample(
            out, sampler, n, args.seed + 1, keep_trajectory=sampler == "annealed-langevin"
        )
        eval_args = _parse(["evaluate", str(out), "--seed", str(args.seed + 1), "--repeats", "3"])
        report = {"sampler": sampler, "n_evals": results[sampler].n_evals}
        reports[sampler] = {
            **report,
            **evaluate_cmd.evaluate_samples(run_, results[sampler].samples.cpu(), eval_args),
        }
        print(evaluate_cmd.format_report(reports[sampler]), file=sys.stderr)
    atomic_writer(
        out / "evaluation.json",
        lambda tmp: tmp.write_text(json.dumps(reports, indent=2, default=float)),
    )

    print("[3/4] drawing figures", file=sys.stderr)
    source = run_.score_source()
    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    best, annealed = results["dpmpp-2m-sde"], results["annealed-langevin"]
    scatter_compare(
        data,
        best.samples,
        labels=("data", "samples (dpmpp-2m-sde)"),
        title="swiss roll: data vs samples",
        path=figures / "samples.png",
    )
    scatter_compare(
        data,
        annealed.samples,
        labels=("data", "samples (annealed Langevin)"),
        title="annealed Langevin",
        path=figures / "samples-annealed.png",
    )
    sigma_min = source.sigma_min
    score_field(
        source.clean_score,
        data=data,
        xlim=(-1.6, 1.9),
        ylim=(-1.6, 1.9),
        title=f"learned score at σ = {sigma_min:.3g} (log1p arrows)",
        path=figures / "score-field.png",
    )
    loss_curves(
        read_metrics(out / "metrics.csv"),
        keys=("train_loss", "test_loss", "test_loss_ema"),
        path=figures / "loss.png",
    )
    traj = annealed.trajectory
    animate_points(
        traj,
        path=figures / "annealed-langevin.gif",
        background=data,
        xlim=(-2.5, 2.5),
        ylim=(-2.5, 2.5),
    )
    print(
        f"[4/4] done: {out} (checkpoint.pt, config.json, metrics.csv, evaluation.json, "
        f"samples-*.npy, figures/)",
        file=sys.stderr,
    )
    return 0


def _sample(run_dir: Path, sampler: str, n: int, seed: int, *, keep_trajectory: bool):
    """Draw from a run with one of the command-line samplers and save the samples."""
    import numpy as np

    from scorelab.cli.sample import save_npy
    from scorelab.cli.sampling import run_sampler
    from scorelab.runs import load_run

    args = _parse(["sample", str(run_dir), "-n", str(n), "--out", "x.npy", "--sampler", sampler])
    source = load_run(run_dir).score_source()
    generator = torch.Generator(device=source.device).manual_seed(seed)
    result = run_sampler(args, source, n, generator=generator, keep_trajectory=keep_trajectory)
    save_npy(run_dir / f"samples-{sampler}.npy", np.asarray(result.samples.cpu()))
    return result
