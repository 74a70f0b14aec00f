"""``scorelab sample``: draw samples of an analytic target (exact score) or of a trained run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scorelab.cli.main import print_once
from scorelab.cli.sampling import add_sampler_arguments, sampler_choice
from scorelab.runs.sampling import PREVIEW_PER_ROW, PREVIEW_ROWS
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
    p.add_argument(
        "--png",
        type=Path,
        default=None,
        help=f"images: also draw the first {PREVIEW_ROWS * PREVIEW_PER_ROW} samples as a grid "
        f"(with --class: the first {PREVIEW_PER_ROW} of each class, a row each)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--trajectory",
        type=Path,
        default=None,
        help="also save the trajectory (n_saved, n, *D) to this .npy file",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g = p.add_argument_group(
        "class-conditional sampling (runs trained with --conditional, mixtures)"
    )
    g.add_argument(
        "--class",
        dest="classes",
        metavar="C",
        default=None,
        help="class(es) to draw: 3, 0,1,2 or all (-n samples each; rows grouped by class, "
        "labels written to OUT.labels.npy); for a mixture target its components",
    )
    g.add_argument(
        "--guidance",
        type=float,
        default=None,
        metavar="W",
        help="classifier-free guidance weight w >= 0: (1 + w)·s(x, σ, y) − w·s(x, σ) "
        "(default 0: the plain class-conditional score)",
    )
    g.add_argument(
        "--classifier",
        type=Path,
        default=None,
        metavar="PATH.pt",
        help="classifier guidance instead (image runs, conditional or not): a classifier from "
        "`scorelab classifier --noise-conditional`; adds scale·∇ log p(y | x, σ)",
    )
    g.add_argument(
        "--classifier-scale",
        type=float,
        default=None,
        metavar="S",
        help="with --classifier: the scale of ∇ log p(y | x, σ) (default 1)",
    )
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
            "give exactly one of --target NAME_OR_FILE or RUN_DIR (see `scorelab sample --list`)"
        )
    if args.out is None:
        raise ValueError("--out FILE.npy is required")
    n = check_int(args.n_samples, "-n/--n-samples")
    checked_npy_path(args.out, "--out")
    if args.trajectory is not None:
        checked_npy_path(args.trajectory, "--trajectory")
    if args.guidance is not None and args.classes is None:
        raise ValueError("--guidance needs --class C: guidance steers towards a class")
    if args.classifier is not None and args.classes is None:
        raise ValueError("--classifier needs --class C: the classifier steers towards a class")
    if args.classifier_scale is not None and args.classifier is None:
        raise ValueError("--classifier-scale needs --classifier PATH")
    from scorelab.runs import target_or_run

    base, _ = target_or_run(args.target, args.run_dir, device=str(device))
    if args.classes is not None:
        return _run_classes(args, base, n, device)
    if args.target is not None:
        from scorelab.samplers import target_source

        source = target_source(base, device)
    else:
        source = base.score_source()
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
        png=args.png,
        **options,
    )
    print_once(json.dumps(summary))
    return 0


def _run_classes(args: argparse.Namespace, base, n: int, device) -> int:
    from scorelab.runs.conditional import (
        class_source,
        load_guidance_classifier,
        num_classes_of,
        parse_classes,
        sample_classes_to_file,
    )

    if args.trajectory is not None:
        raise ValueError("--trajectory is not available with --class; drop one of them")
    classifier, scale = None, 1.0 if args.classifier_scale is None else args.classifier_scale
    if args.classifier is not None:
        classifier = load_guidance_classifier(args.classifier, base)
        classes = parse_classes(args.classes, classifier.n_classes)
    else:
        classes = parse_classes(args.classes, num_classes_of(base))
    sources = {
        c: class_source(
            base,
            c,
            guidance=args.guidance,
            classifier=classifier,
            classifier_scale=scale,
            device=device,
        )
        for c in classes
    }
    sampler, options = sampler_choice(args, sources[classes[0]].recommended)
    summary = sample_classes_to_file(
        sources,
        n,
        args.out,
        sampler,
        steps=args.steps,
        seed=args.seed,
        progress=args.progress,
        png=args.png,
        **options,
    )
    if classifier is None:
        summary["guidance"] = 0.0 if args.guidance is None else args.guidance
    else:
        summary.update(classifier=str(args.classifier), classifier_scale=scale)
    print_once(json.dumps(summary))
    return 0
