"""``scorelab sample``: draw samples of an analytic target (exact score) or of a trained run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from scorelab.cli.sampling import ScoreSource, add_sampler_arguments, describe_samplers, run_sampler
from scorelab.utils import atomic_writer, check_int

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
    p.add_argument("--target", metavar="NAME", help="built-in analytic target (see --list)")
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
    add_sampler_arguments(p, default="dpmpp-2m-sde")


def target_source(name: str, device: torch.device | str = "cpu") -> ScoreSource:
    """The exact-score :class:`ScoreSource` of a named analytic target, sampled on ``device``.

    The target's score runs on the device of the points it is given, so only the moments used
    for the starting points are moved there.
    """
    from scorelab.targets import get_target

    target = get_target(name)
    device = torch.device(device)
    cov = target.covariance().to(torch.float32)
    scale = float(torch.linalg.eigvalsh(cov.double()).max().sqrt())
    return ScoreSource(
        score=target.noised_score,
        clean_score=target.score,
        data_shape=(target.dim,),
        mean=target.mean().to(dtype=torch.float32, device=device),
        cov=cov.to(device),
        sigma_max=80.0 * scale,
        sigma_min=2e-3 * scale,
        device=device,
    )


def list_choices() -> str:
    from scorelab.targets import PRESETS

    lines = ["targets (exact scores):"]
    lines += [f"  {name}" for name in PRESETS]
    lines += ["samplers:", describe_samplers()]
    return "\n".join(lines)


def _checked_npy(path: Path, flag: str = "--out") -> Path:
    """Check an output .npy path before any work: its suffix and a writable folder."""
    if path.suffix != ".npy":
        raise ValueError(f"{flag} must end in .npy; got {str(path)!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermissionError(
            f"cannot create the folder of {flag} {str(path)!r}: {exc.strerror}; "
            f"choose another {flag}"
        ) from None
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(
            f"the folder of {flag} {str(path)!r} is not writable; choose another {flag}"
        )
    return path


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` (.npy) atomically, creating the folder."""
    atomic_writer(_checked_npy(path), lambda tmp: np.save(tmp, array))


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
    _checked_npy(args.out, "--out")
    if args.trajectory is not None:
        _checked_npy(args.trajectory, "--trajectory")
    if args.target is not None:
        source = target_source(args.target, device)
    else:
        from scorelab.runs import load_run

        source = load_run(args.run_dir, device=str(device)).score_source()
    if args.trajectory is None:
        # Chunks spread over the ranks under torchrun; one process otherwise. The file is the
        # same for any number of processes.
        from scorelab.training.distributed import sample_distributed

        def draw(m: int, generator: torch.Generator) -> torch.Tensor:
            return run_sampler(args, source, m, generator=generator).samples

        sample_distributed(draw, n, _checked_npy(args.out), seed=args.seed, device=source.device)
        n_evals = None
    else:
        generator = torch.Generator(device=source.device).manual_seed(args.seed)
        result = run_sampler(args, source, n, generator=generator, keep_trajectory=True)
        save_npy(args.out, result.samples.detach().cpu().numpy())
        save_npy(args.trajectory, result.trajectory.detach().cpu().numpy())
        n_evals = result.n_evals
    summary = {"out": str(args.out), "n": n, "sampler": args.sampler, "n_evals": n_evals}
    print(json.dumps(summary), file=sys.stderr)
    return 0
