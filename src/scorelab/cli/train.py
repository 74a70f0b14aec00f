"""``scorelab train``: fit a noise-conditional score model to data and write a run folder."""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from scorelab.training import recipe2d
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
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (default: by data)")
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
    p.add_argument("--optimizer", choices=("adam", "adamw"), default="adam")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument(
        "--lr-schedule",
        default="cosine",
        choices=("cosine", "constant", "step", "linear-warmup-cosine"),
    )
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip (0: off)")
    p.add_argument(
        "--ema-decay",
        type=float,
        default=None,
        help="EMA decay (default 0.995 for points, 0.999 for images; 0: off)",
    )
    p.add_argument("--model", default=None, help="network: score-mlp (points), small-unet (images)")
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
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=500)
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


def plan_run(args: argparse.Namespace) -> dict[str, Any]:
    """Everything a run needs, as plain values: data, noise range, model spec, train config."""
    from scorelab.data.toy import TARGET_NAMES, TOY_DATASETS
    from scorelab.runs import data_statistics, is_image_source, load_run_data

    source = str(args.data)
    images = is_image_source(source)
    # Generated sets draw 10 000 points by default; a file gives all its rows.
    generated = source in TOY_DATASETS or source in TARGET_NAMES
    n = args.n if args.n is not None or not generated else 10_000
    if n is not None:
        check_int(n, "--n", minimum=1 if images else 2)
    train_x, test_x = load_run_data(source, n=n, seed=args.seed, test_fraction=args.test_fraction)
    if train_x.shape[0] < 2:
        raise ValueError(
            f"the training split holds {train_x.shape[0]} point(s); at least 2 are needed: raise "
            "--n or lower --test-fraction"
        )
    # Points: mean, covariance and EDM's σ_data (recipe2d: the centred network and the prior);
    # images: the pixel std, and the prior's moments from data_statistics.
    point_stats = None if images else recipe2d.data_stats(train_x)
    if images:
        stats, sigma_data = data_statistics(train_x), float(train_x.double().std())
    else:
        stats = {k: point_stats.to_dict()[k] for k in ("mean", "cov")}
        sigma_data = point_stats.sigma_data
    sigma_max, sigma_min = _noise_range(train_x, args, sigma_data, images)
    spec = _model_spec(args, train_x, point_stats)
    defaults = {
        "steps": 6000 if images else recipe2d.DEFAULT_STEPS,
        "batch_size": 128 if images else 512,
        "lr": 1e-3 if images else 2e-3,
    }
    train_config = {
        "steps": defaults["steps"] if args.steps is None else args.steps,
        "batch_size": defaults["batch_size"] if args.batch_size is None else args.batch_size,
        "lr": defaults["lr"] if args.lr is None else args.lr,
        "optimizer": args.optimizer,
        "weight_decay": args.weight_decay,
        "lr_schedule": args.lr_schedule,
        "warmup_steps": args.warmup_steps,
        "grad_clip": args.grad_clip or None,
        "ema_decay": (0.999 if images else 0.995)
        if args.ema_decay is None
        else (args.ema_decay or None),
        "checkpoint_every": args.checkpoint_every,
        "log_every": args.log_every,
        "eval_every": args.eval_every,
        "seed": args.seed,
        "device": args.device,
    }
    data = {
        "source": source,
        "kind": "images" if images else "points",
        "n": n,
        "seed": args.seed,
        "test_fraction": args.test_fraction,
        "shape": list(train_x.shape[1:]),
        "n_train": int(train_x.shape[0]),
        "n_test": int(test_x.shape[0]),
        "stats": stats,
        "sigma_data": sigma_data,
    }
    return {
        "data": data,
        "noise": {
            "sigma_min": sigma_min,
            "sigma_max": sigma_max,
            "distribution": "log-normal (EDM), truncated to [sigma_min, sigma_max]",
            "weighting": "edm",
            "dequantize": bool(images and args.dequantize),
        },
        "model_spec": spec,
        "train": train_config,
        "command": "scorelab " + shlex.join(sys.argv[1:]) if sys.argv else "scorelab train",
        "_tensors": (train_x, test_x),
    }


def _noise_range(x: torch.Tensor, args, sigma_data: float, images: bool) -> tuple[float, float]:
    from scorelab.data.noise_levels import max_pairwise_distance
    from scorelab.training.images import IMAGE_SIGMA_MIN

    sigma_max = float(max_pairwise_distance(x)[0]) if args.sigma_max is None else args.sigma_max
    # 8-bit images: about one grey-level bin (2/256); finer noise only fits the quantisation.
    default_min = IMAGE_SIGMA_MIN if images else recipe2d.SIGMA_MIN_FRACTION * sigma_data
    sigma_min = default_min if args.sigma_min is None else args.sigma_min
    if not (math.isfinite(sigma_min) and math.isfinite(sigma_max) and 0 < sigma_min < sigma_max):
        raise ValueError(
            f"need finite 0 < --sigma-min < --sigma-max; got {sigma_min:g} and {sigma_max:g}"
        )
    return sigma_max, sigma_min


def _model_spec(args, x: torch.Tensor, point_stats: recipe2d.DataStats | None) -> dict[str, Any]:
    """The network of a run: ``recipe2d``'s ScoreMLP for points (``point_stats`` given), a
    ``SmallUNet`` for images, or what ``--model``/``--hidden``/``--depth`` ask for."""
    from scorelab.models import model_spec

    name = args.model or ("score-mlp" if point_stats is not None else "small-unet")
    if name == "small-unet" and x.ndim != 4:
        raise ValueError(
            f"--model small-unet needs images (N, C, H, W); {args.data!r} holds points of shape "
            f"{tuple(x.shape[1:])}: use --model score-mlp"
        )
    if name == "small-unet":
        return model_spec(
            name, in_channels=int(x.shape[1]), base=32 if args.hidden is None else args.hidden
        )
    if name == "score-mlp":
        if x.ndim != 2:
            raise ValueError("--model score-mlp needs points (N, D); use --model small-unet")
        sizes = {"hidden": args.hidden, "depth": args.depth}
        return recipe2d.default_model_spec(
            int(x.shape[1]), point_stats, **{k: v for k, v in sizes.items() if v is not None}
        )
    raise ValueError(f"--model must be score-mlp or small-unet; got {name!r}")


def make_loss(noise: dict[str, Any], sigma_data: float, *, amp: bool = False):
    """The training objective ``loss_fn(model, x0, generator) -> (B,)`` of a run's noise config."""
    from functools import partial

    from scorelab.training.images import autocast_loss, dequantized_loss
    from scorelab.training.recipe2d import noise_conditional_loss

    loss = partial(
        noise_conditional_loss,
        sigma_min=noise["sigma_min"],
        sigma_max=noise["sigma_max"],
        sigma_data=sigma_data,
    )
    if noise.get("dequantize"):
        loss = dequantized_loss(loss)
    return autocast_loss(loss) if amp else loss


def exact_score_metric(source: str, noise: dict[str, Any]):
    """For analytic targets: ``evaluate(model, step)`` giving the relative score error."""
    from scorelab.data.toy import TARGET_NAMES

    if source not in TARGET_NAMES:
        return None
    from scorelab.metrics import score_error_per_level
    from scorelab.models import as_score_fn
    from scorelab.sde import geometric_sigmas
    from scorelab.targets import get_target

    target = get_target(source)
    sigmas = geometric_sigmas(noise["sigma_max"], noise["sigma_min"], 6, dtype=torch.float32)

    def evaluate(model, step: int) -> dict[str, float]:
        device = next(model.parameters()).device
        err = score_error_per_level(
            as_score_fn(model),
            target.noised_score,
            lambda n, g: target.sample(n, generator=g).to(device),
            sigmas.to(device),
            n=1000,
            generator=torch.Generator().manual_seed(0),
        )
        return {"score_rel_error": float(err.relative.mean())}

    return evaluate


def run(args: argparse.Namespace) -> int:
    if args.nproc is not None:
        from scorelab.training.distributed import launch

        return launch(args.nproc, ["train", *argv_without_nproc()], max_restarts=args.max_restarts)
    from scorelab.models import build_model
    from scorelab.runs import run_config_json
    from scorelab.training import TrainConfig, resolve_device
    from scorelab.training.distributed import cleanup, train_distributed

    if args.threads is not None:
        torch.set_num_threads(check_int(args.threads, "--threads"))
    check_writable(args.out)
    plan = plan_run(args)
    train_x, test_x = plan.pop("_tensors")
    noise = plan["noise"]
    print(
        f"data {plan['data']['source']}: {plan['data']['n_train']} train / "
        f"{plan['data']['n_test']} test, shape {tuple(plan['data']['shape'])}",
        file=sys.stderr,
    )
    images = plan["data"]["kind"] == "images"
    max_rule = "--sigma-max" if args.sigma_max else "largest pairwise distance, Song & Ermon 2020"
    min_rule = "--sigma-min" if args.sigma_min else "one grey level" if images else "0.002·σ_data"
    print(
        f"noise levels: σ ∈ [{noise['sigma_min']:.4g}, {noise['sigma_max']:.4g}] "
        f"(σ_max: {max_rule}; σ_min: {min_rule}), EDM log-normal law and weighting"
        + (", dequantised pixels" if noise["dequantize"] else ""),
        file=sys.stderr,
    )
    config = TrainConfig.from_dict(plan["train"])
    torch.manual_seed(args.seed)  # the network's initial weights
    model = build_model(plan["model_spec"])
    cuda = resolve_device(args.device).type == "cuda"
    if cuda and images:
        model = model.to(memory_format=torch.channels_last)  # faster cuDNN convolutions
    # Plain `train` in one process; under torchrun every rank runs this and rank 0 writes files.
    result = train_distributed(
        model,
        make_loss(noise, plan["data"]["sigma_data"], amp=cuda and args.amp),
        train_x,
        config,
        run_dir=args.out,
        model_spec=plan["model_spec"],
        extra={"noise": noise},
        test_data=test_x,
        evaluate=exact_score_metric(plan["data"]["source"], noise),
        resume=not args.no_resume,
        progress=not args.no_progress,
        run_files={"config.json": run_config_json(plan)},
    )
    cleanup()
    last = result.history[-1] if result.history else {}
    shown = ", ".join(
        f"{k} {last[k]:.4g}"
        for k in ("train_loss", "test_loss", "test_loss_ema", "score_rel_error")
        if k in last
    )
    print(f"trained {result.step} steps into {args.out} ({shown})", file=sys.stderr)
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
