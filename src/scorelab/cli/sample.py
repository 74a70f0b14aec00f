"""``scorelab sample``: draw samples of an analytic target (exact score) or of a trained run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scorelab.cli.sampling import add_sampler_arguments, sampler_choice
from scorelab.utils import check_int, checked_npy_path

DESCRIPTION = """Draw samples with any sampler.

With --target NAME the exact score of a built-in analytic target is used, so samplers can be
compared on a distribution whose truth is known. With RUN_DIR the trained model of a
`scorelab train` run is used (its EMA weights when present)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="draw samples of an analytic target or a trained run",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", nargs="?", type=Path, help="folder written by `scorelab train`")
    p.add_argument(
        "--target",
        metavar="NAME_OR_FILE",
        help="built-in analytic target (see --list) or a Gaussian-mixture file (.json/.npz)",
    )
    p.add_argument("--list", action="store_true", help="list targets and samplers, then exit")
    p.add_argument("-n", "--n-samples", type=int, default=1000, help="number of samples")
    p.add_argument("--out", type=Path, help="output .npy file (shape (n, *D))")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--trajectory",
        type=Path,
        default=None,
        help="also save the trajectory (n_saved, n, *D) to this .npy file",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_sampler_arguments(p)


def list_choices() -> str:
    from scorelab.samplers import describe_samplers
    from scorelab.targets import describe_targets

    return "\n".join(
        ["targets (exact scores; or a mixture file .json/.npz):", describe_targets()]
        + ["samplers:", describe_samplers()]
    )


def run(args: argparse.Namespace) -> int:
    if args.list:
        print(list_choices())
        return 0
    from scorelab.training.config import resolve_device

    device = resolve_device(args.device)  # checked first, for --target and RUN_DIR alike
    if (args.target is None) == (args.run_dir is None):
        raise ValueError(
            "give exactly one of --target NAME or RUN_DIR (see `scorelab sample --list`)"
        )
    if args.out is None:
        raise ValueError("--out FILE.npy is required")
    n = check_int(args.n_samples, "-n/--n-samples")
    checked_npy_path(args.out, "--out")
    if args.trajectory is not None:
        checked_npy_path(args.trajectory, "--trajectory")
    if args.target is not None:
        from scorelab.samplers import target_source
        from scorelab.targets import get_target

        source = target_source(get_target(args.target), device)
    else:
        from scorelab.runs import load_run

        source = load_run(args.run_dir, device=str(device)).score_source()
    sampler, options = sampler_choice(args, source.recommended)
    from scorelab.runs import sample_to_file

    summary = sample_to_file(
        source,
        n,
        args.out,
        sampler,
        steps=args.steps,
        seed=args.seed,
        trajectory=args.trajectory,
        progress=args.progress,
        **options,
    )
    print(json.dumps(summary), file=sys.stderr)
    return 0
