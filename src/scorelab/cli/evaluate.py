"""``scorelab evaluate``: a run's samples against true data by the one evaluation protocol."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scorelab.cli.sampling import add_sampler_arguments, sampler_choice
from scorelab.utils import atomic_writer

DESCRIPTION = """Measure a trained run.

Draws -n samples with the run's recommended sampler (or --sampler) and reports each distance to
true data next to its noise floor by scorelab's one evaluation protocol: the value is the mean
over 5 fresh reference draws, the floor the mean over 16 independent pairs of true draws at the
same n, and beside the ratio stands the calibration (an exact independent sample scored the same
way, mean ± sd); a ratio inside that band is "at the floor". Fresh true draws are used for
generated data (toy sets, analytic targets, mixture files), draws from the held-out split for
point files. For analytic targets the score error against the exact noised score is reported per
noise level, and for mixtures the mode weights and each component's std along its principal
axes over the truth (component_spread). Image runs report the classifier Fréchet
distance when --classifier is given. Results go to RUN_DIR/evaluation.json."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="measure a trained run against true data",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, help="folder written by `scorelab train`")
    p.add_argument(
        "-n", "--n-samples", type=int, default=5000, help="samples to draw (default 5000)"
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument(
        "--distances",
        default="sliced_w2",
        help="comma-separated: sliced_w2, mmd, energy (default sliced_w2; the others are "
        "quadratic in n)",
    )
    p.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="image runs: classifier checkpoint from `scorelab classifier`",
    )
    p.add_argument(
        "--bpd",
        type=int,
        default=0,
        metavar="N",
        help="image runs: bits per dimension of N dequantised test images through the "
        "probability-flow ODE with Hutchinson's estimator (slow; 0: off)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    add_sampler_arguments(p)


def run(args: argparse.Namespace) -> int:
    from scorelab.evaluation import evaluate_run, format_report
    from scorelab.runs import load_run

    run_ = load_run(args.run_dir, device=args.device)
    classifier = None
    if args.classifier is not None:
        from scorelab.models.classifier import load_classifier

        classifier, _ = load_classifier(args.classifier)
    sampler, options = sampler_choice(args, run_.score_source().recommended)
    report = evaluate_run(
        run_,
        args.n_samples,
        sampler,
        steps=args.steps,
        seed=args.seed,
        distances=tuple(d.strip() for d in args.distances.split(",") if d.strip()),
        classifier=classifier,
        bpd_images=args.bpd,
        progress=args.progress,
        **options,
    )
    path = args.run_dir / "evaluation.json"
    atomic_writer(path, lambda tmp: tmp.write_text(json.dumps(report, indent=2, default=float)))
    print(format_report(report))
    print(f"wrote {path}")
    return 0
