"""``scorelab inpaint``: fill the hidden part of inputs with a trained run or an exact mixture."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scorelab.cli.main import print_once
from scorelab.cli.sampling import add_sampler_arguments, sampler_choice
from scorelab.runs.inpaint import (
    RECONSTRUCTION_SCALE,
    RECONSTRUCTION_STEPS,
    REPLACEMENT_CORRECTOR,
    REPLACEMENT_LEVELS,
    REPLACEMENT_RESAMPLE,
)
from scorelab.runs.sampling import PREVIEW_ROWS

DESCRIPTION = """Inpainting / imputation: complete inputs whose mask is 0, keeping the entries whose
mask is 1 exactly.

--input X.npy holds inputs (B, *D) in the shape and range `scorelab sample` writes; --mask is a
.npy of X's shape or of one example's shape (1 = known, 0 = fill) or, for images, one of
bottom-half, top-half, left-half, square. --completions K draws K completions per input (rows
grouped by input). --method conditioned samples a score conditioned on the known part with any
sampler (exact for a --target mixture; reconstruction guidance for a run); --method replacement
replaces the known part by its noised value at every level (--steps levels), takes each step
--resample U times, noising back in between (RePaint), with --corrector Langevin steps per level.
Default: conditioned."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inpaint",
        help="fill masked entries of inputs (inpainting / imputation)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", nargs="?", type=Path, help="folder written by `scorelab train`")
    p.add_argument(
        "--target",
        metavar="NAME_OR_FILE",
        help="built-in analytic target or a Gaussian-mixture file (exact conditional score)",
    )
    p.add_argument("--input", required=True, type=Path, metavar="X.npy", help="inputs (B, *D)")
    p.add_argument(
        "--mask",
        required=True,
        metavar="M.npy|NAME",
        help="1 = known, 0 = fill: a .npy of X's (or one example's) shape, or for images "
        "bottom-half, top-half, left-half, square",
    )
    p.add_argument("--out", required=True, type=Path, help="output .npy (B·K, *D)")
    p.add_argument("--completions", type=int, default=1, metavar="K", help="completions per input")
    p.add_argument(
        "--png",
        type=Path,
        default=None,
        help=f"images: also draw the first {PREVIEW_ROWS} inputs as panels (masked input | "
        "completions | input)",
    )
    p.add_argument(
        "--method",
        choices=("conditioned", "replacement"),
        default=None,
        help="default: conditioned (exact for --target, reconstruction guidance for a run)",
    )
    p.add_argument(
        "--reconstruction-scale",
        type=float,
        default=None,
        metavar="S",
        help="--method conditioned on a run: the scale of (normalised) reconstruction guidance "
        f"(default {RECONSTRUCTION_SCALE['digits']:g} for digits runs, "
        f"{RECONSTRUCTION_SCALE['images']:g} for other image runs, "
        f"{RECONSTRUCTION_SCALE['points']:g} for points, with {RECONSTRUCTION_STEPS} levels "
        "unless --steps is given; too large for the levels, the completions run away and it "
        "stops with an error)",
    )
    p.add_argument(
        "--resample",
        type=int,
        default=None,
        metavar="U",
        help=f"--method replacement: take each step U times, noising back in between (RePaint; "
        f"default {REPLACEMENT_RESAMPLE}, with {REPLACEMENT_LEVELS} levels)",
    )
    p.add_argument(
        "--corrector",
        type=int,
        default=None,
        metavar="N",
        help=f"--method replacement: Langevin corrector steps per level (default "
        f"{REPLACEMENT_CORRECTOR})",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_sampler_arguments(p)


def run(args: argparse.Namespace) -> int:
    from scorelab.runs import target_or_run
    from scorelab.runs.inpaint import inpaint_to_file
    from scorelab.training.config import resolve_device

    device = resolve_device(args.device)
    base, recommended = target_or_run(args.target, args.run_dir, device=str(device))
    sampler, options = sampler_choice(args, recommended)
    if args.sampler is None:
        sampler = None  # the library's default for the method
    summary = inpaint_to_file(
        base,
        args.input,
        args.mask,
        args.out,
        completions=args.completions,
        method=args.method,
        sampler=sampler,
        steps=args.steps,
        seed=args.seed,
        device=device,
        progress=args.progress,
        reconstruction_scale=args.reconstruction_scale,
        resample=args.resample,
        corrector=args.corrector,
        png=args.png,
        **options,
    )
    print_once(json.dumps(summary))
    return 0
