"""``scorelab demo`` (``make demo``): the main job end to end on the swiss roll.

Trains a noise-conditional score model (about a minute on 2 CPU cores), samples it with annealed
Langevin dynamics and with the recommended sampler, measures both against fresh true data by the
one evaluation protocol (ratio to the noise floor, with an exact sample's calibration beside it),
and draws the figures people look at: data vs samples, the learned score field next to the data,
the loss curve and a GIF of the samples moving through the noise levels.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train, sample, evaluate and plot on the swiss roll",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder")
    p.add_argument("--data", default="swiss-roll", help="data set (default swiss-roll)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: preset)")
    p.add_argument("--n-samples", type=int, default=5000, help="samples per sampler")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="a few hundred steps: a quick look")


def run(args: argparse.Namespace) -> int:
    from scorelab.recipes.demo import run_demo

    run_demo(
        args.out,
        data=args.data,
        steps=args.steps,
        n_samples=args.n_samples,
        seed=args.seed,
        fast=args.fast,
    )
    return 0
