"""``scorelab train``: fit a noise-conditional score model to data and write a run folder."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import torch

from scorelab.cli.main import print_once
from scorelab.training.objectives import OBJECTIVES
from scorelab.training.presets import TRAINING_PRESETS
from scorelab.utils import check_int

DESCRIPTION = """Train a noise-conditional score network s(x, σ) ≈ ∇ log p_σ(x) by denoising score
matching over a continuous noise level: log σ ~ N(log σ_data − 0.5, 1.2²) truncated to
[σ_min, σ_max], with EDM's weighting and preconditioning (Karras et al. 2022). Without
--sigma-max/--sigma-min the range comes from the
data (Song & Ermon 2020: σ_max = the largest pairwise distance) and is printed.

DATA is a toy set (moons, swiss-roll), an analytic target (anticorrelated, mixture-1d,
mixture-2d), a .npy/.npz/.csv file of points (N, D), an image set (digits, mnist-subset) or a
folder with MNIST IDX files. The run folder gets config.json, checkpoint.pt (atomic, every
--checkpoint-every steps) and metrics.csv. Running the same command again resumes the run
(raise --steps to train longer); --no-resume starts over."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a score model on data",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, metavar="NAME_OR_FILE", help="data set name or file")
    p.add_argument("--out", required=True, type=Path, metavar="RUN_DIR", help="run folder")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimiser steps (default: the preset's)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="points to draw (toy sets, targets; default 10000) or to keep (files; default: all)",
    )
    p.add_argument("--test-fraction", type=float, default=0.2, help="held-out share of points")
    p.add_argument("--batch-size", type=int, default=None, help="minibatch size")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate")
    p.add_argument("--optimizer", choices=("adam", "adamw"), default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument(
        "--lr-schedule",
        default=None,
        choices=("cosine", "constant", "step", "linear-warmup-cosine"),
    )
    p.add_argument("--warmup-steps", type=int, default=None)
    p.add_argument("--grad-clip", type=float, default=None, help="gradient-norm clip (0: off)")
    p.add_argument(
        "--ema-decay",
        type=float,
        default=None,
        help="EMA decay (default: the preset's, at most 1 − 10/steps; 0: off)",
    )
    p.add_argument(
        "--objective",
        default="edm",
        choices=list(OBJECTIVES),
        help="training objective; its matching sampler becomes the run's default: "
        + "; ".join(f"{o.name}: {o.description}" for o in OBJECTIVES.values()),
    )
    p.add_argument(
        "--preset",
        default=None,
        choices=list(TRAINING_PRESETS),
        help="network, training and sampler settings (default: points, or the image set's "
        "preset for this machine: digits-cpu, mnist-subset-gpu, …): "
        + "; ".join(f"{name}: {preset.description}" for name, preset in TRAINING_PRESETS.items()),
    )
    p.add_argument(
        "--conditional",
        action="store_true",
        help="class-conditional network s(x, σ, y) with 10%% label dropout (classifier-free "
        "guidance: `scorelab sample RUN --class C --guidance W`); labels: the image set's, a "
        "mixture's components, 'y' of an .npz, or --label-column",
    )
    p.add_argument(
        "--label-column",
        type=int,
        default=None,
        metavar="K",
        help="with --conditional on a .npy/.csv file: the column (0-based) holding the class",
    )
    p.add_argument("--hidden", type=int, default=None, help="score-mlp width / small-unet base")
    p.add_argument("--depth", type=int, default=None, help="score-mlp residual blocks")
    p.add_argument("--sigma-min", type=float, default=None, help="smallest training noise level")
    p.add_argument("--sigma-max", type=float, default=None, help="largest training noise level")
    p.add_argument(
        "--dequantize",
        action="store_true",
        help="images: train on uniformly dequantised pixels 2(v+u)/256 − 1, fresh u every batch "
        "(then `evaluate --bpd` measures the bound it was trained for)",
    )
    p.add_argument(
        "--amp", action="store_true", help="CUDA: bfloat16 autocast of the loss (mixed precision)"
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU: torch intra-op threads (on a shared machine 1 per process is fastest)",
    )
    p.add_argument("--checkpoint-every", type=int, default=None, help="default: min(500, steps/4)")
    p.add_argument("--log-every", type=int, default=None, help="default: min(50, steps/20)")
    p.add_argument("--eval-every", type=int, default=None, help="default: min(500, steps)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then CPU), cpu, cuda, cuda:N")
    p.add_argument(
        "--no-resume", action="store_true", help="start over even if RUN_DIR holds a checkpoint"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="launch N processes on this machine with torchrun (DDP); see docs/distributed.md",
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        help="with --nproc: torchrun restarts after a worker failure (each resumes the run)",
    )


def check_writable(folder: Path) -> None:
    """Fail before any work if ``folder`` cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermissionError(
            f"cannot create the run folder {str(folder)!r}: {exc.strerror}; choose another --out"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(
            f"the run folder {str(folder)!r} is not writable: choose another "
            "--out or fix its permissions"
        )


def run(args: argparse.Namespace) -> int:
    if args.nproc is not None:
        from scorelab.training.distributed import launch

        return launch(args.nproc, ["train", *argv_without_nproc()], max_restarts=args.max_restarts)
    from scorelab.runs import describe_plan, plan_conditional_run, plan_run, train_run

    if args.threads is not None:
        torch.set_num_threads(check_int(args.threads, "--threads"))
    check_writable(args.out)
    train_overrides = {
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "weight_decay": args.weight_decay,
        "lr_schedule": args.lr_schedule,
        "warmup_steps": args.warmup_steps,
        "grad_clip": args.grad_clip,
        "ema_decay": args.ema_decay,
        "checkpoint_every": args.checkpoint_every,
        "log_every": args.log_every,
        "eval_every": args.eval_every,
    }
    labels, extra = None, {}
    if args.conditional:
        plan_fn, extra = plan_conditional_run, {"label_column": args.label_column}
    elif args.label_column is not None:
        raise ValueError("--label-column gives the labels of --conditional training; add it")
    else:
        plan_fn = plan_run
    planned = plan_fn(
        args.data,
        preset=args.preset,
        n=args.n,
        seed=args.seed,
        test_fraction=args.test_fraction,
        device=args.device,
        steps=args.steps,
        sigma_max=args.sigma_max,
        sigma_min=args.sigma_min,
        dequantize=args.dequantize,
        objective=args.objective,
        model={"hidden": args.hidden, "depth": args.depth},
        train={k: v for k, v in train_overrides.items() if v is not None},
        **extra,
    )
    plan, train_x, test_x = planned[:3]
    if args.conditional:
        labels = planned[3]
    for line in describe_plan(plan):
        print_once(line)
    result = train_run(
        plan,
        train_x,
        test_x,
        args.out,
        command="scorelab " + shlex.join(sys.argv[1:]) if sys.argv else "scorelab train",
        resume=not args.no_resume,
        progress=not args.no_progress,
        amp=args.amp,
        labels=labels,
    )
    last = result.history[-1] if result.history else {}
    shown = ", ".join(
        f"{k} {last[k]:.4g}"
        for k in ("train_loss", "test_loss", "test_loss_ema", "score_rel_error")
        if k in last
    )
    print_once(f"trained {result.step} steps into {args.out} ({shown})")
    return 0


def argv_without_nproc() -> list[str]:
    """This command's arguments without ``--nproc``/``--max-restarts`` (for the torchrun launch)."""
    argv, skip = [], False
    for arg in sys.argv[2:]:
        if skip:
            skip = False
            continue
        if arg in ("--nproc", "--max-restarts"):
            skip = True
            continue
        if arg.startswith(("--nproc=", "--max-restarts=")):
            continue
        argv.append(arg)
    return argv
