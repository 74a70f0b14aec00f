"""``scorelab evaluate``: distances to held-out data next to their noise floor, score errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from scorelab.cli.sampling import add_sampler_arguments, run_sampler
from scorelab.utils import atomic_writer, check_int

DESCRIPTION = """Measure a trained run.

Draws -n samples with the chosen sampler and reports sliced-W2, MMD and energy distance to
true data, each next to its noise floor (the same distance between two independent true sets of
the same size; ratio ≈ 1 means indistinguishable at this n). Fresh true draws are used for
generated data (toy sets, analytic targets), the held-out split for files and images. For analytic
targets the score error against the exact score is reported per noise level, and for mixtures the
mode weights. Image runs report the classifier Fréchet distance when --classifier is given.
Results go to RUN_DIR/evaluation.json."""


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
    p.add_argument("--repeats", type=int, default=5, help="true draws averaged for the noise floor")
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
    add_sampler_arguments(p, default="dpmpp-2m-sde")


def evaluate_run(run_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Sample a run with the sampler named in ``args`` and compare it with true data."""
    from scorelab.runs import load_run

    n = check_int(args.n_samples, "-n/--n-samples", minimum=2)
    check_int(args.repeats, "--repeats")
    run = load_run(run_dir, device=args.device)
    generator = torch.Generator(device=run.device).manual_seed(args.seed)
    result = run_sampler(args, run.score_source(), n, generator=generator)
    report = {"sampler": args.sampler, "n_evals": result.n_evals}
    return {**report, **evaluate_samples(run, result.samples.detach().cpu(), args)}


def evaluate_samples(run, samples: torch.Tensor, args: argparse.Namespace) -> dict[str, Any]:
    """Distances of ``samples`` to true data with their noise floors (and exact checks)."""
    from scorelab.metrics import compare_to_floor
    from scorelab.runs import fresh_sampler, load_run_data

    data_cfg = run.config["data"]
    report: dict[str, Any] = {"step": run.step, "n": int(samples.shape[0])}
    if data_cfg["kind"] == "images":
        report["images"] = _image_quality(samples, data_cfg, args)
        if getattr(args, "bpd", 0):
            report["bits_per_dim"] = _image_bpd(run, args)
        return report
    draw = fresh_sampler(data_cfg["source"])
    if draw is not None:
        report["distances"] = compare_to_floor(samples, draw, repeats=args.repeats, seed=args.seed)
        report["reference"] = "fresh independent draws of the data's law"
    else:
        _, test = load_run_data(
            data_cfg["source"],
            n=data_cfg.get("n"),
            seed=data_cfg["seed"],
            test_fraction=data_cfg["test_fraction"],
        )
        report["distances"] = compare_to_floor(samples, test, repeats=args.repeats, seed=args.seed)
        report["reference"] = f"held-out split ({test.shape[0]} points, halves for the floor)"
    report.update(_exact_checks(run, samples, data_cfg["source"]))
    return report


def _exact_checks(run, samples: torch.Tensor, source: str) -> dict[str, Any]:
    """Score error per level and mode weights, when the data is an analytic target."""
    from scorelab.data.toy import TARGET_NAMES

    if source not in TARGET_NAMES:
        return {}
    from scorelab.metrics import score_error_per_level
    from scorelab.sde import geometric_sigmas
    from scorelab.targets import GaussianMixture, get_target

    target = get_target(source)
    noise = run.config["noise"]
    sigmas = geometric_sigmas(noise["sigma_max"], noise["sigma_min"], 8, dtype=torch.float32)
    err = score_error_per_level(
        run.score_fn(),
        target.noised_score,
        lambda n, g: target.sample(n, generator=g),
        sigmas,
        n=2000,
        generator=torch.Generator().manual_seed(0),
    )
    out: dict[str, Any] = {
        "score_error": {
            "sigmas": err.sigmas.tolist(),
            "mse": err.mse.tolist(),
            "relative": err.relative.tolist(),
        }
    }
    if isinstance(target, GaussianMixture):
        from scorelab.metrics import mixture_weights

        out["mode_weights"] = {
            "estimated": mixture_weights(samples, target).tolist(),
            "true": target.weights.tolist(),
        }
    return out


def _image_quality(samples: torch.Tensor, data_cfg: dict, args) -> dict[str, Any]:
    if args.classifier is None:
        return {"note": "pass --classifier (from `scorelab classifier`) for the Fréchet distance"}
    from scorelab.metrics.fid import image_quality_report
    from scorelab.models.classifier import load_classifier
    from scorelab.runs import load_run_data

    classifier, _ = load_classifier(args.classifier)
    _, test = load_run_data(
        data_cfg["source"], n=None, seed=data_cfg["seed"], test_fraction=data_cfg["test_fraction"]
    )
    # The floor is averaged over --repeats random splits of the test images.
    return image_quality_report(classifier, samples, test, n_splits=args.repeats)


def _image_bpd(run, args) -> dict[str, Any]:
    """Bits/dim of the first ``--bpd`` test images (``training.images.image_bits_per_dim``)."""
    from scorelab.runs import load_run_data
    from scorelab.training.images import image_bits_per_dim

    data_cfg, noise = run.config["data"], run.config["noise"]
    n = check_int(args.bpd, "--bpd")
    _, test = load_run_data(
        data_cfg["source"], n=None, seed=data_cfg["seed"], test_fraction=data_cfg["test_fraction"]
    )
    generator = torch.Generator(device=run.device).manual_seed(args.seed)
    return image_bits_per_dim(
        run.score_fn(),
        test[:n].to(run.device),
        sigma_min=noise["sigma_min"],
        sigma_max=noise["sigma_max"],
        generator=generator,
    )


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"step {report['step']}, {report['n']} samples by {report['sampler']} "
        f"({report['n_evals']} score evaluations)"
    ]
    for name, d in report.get("distances", {}).items():
        lines.append(
            f"  {name:<10} {d['value']:.4g}  floor {d['floor']:.4g}  ratio {d['ratio']:.2f}"
        )
    if "mode_weights" in report:
        est = ", ".join(f"{w:.3f}" for w in report["mode_weights"]["estimated"])
        true = ", ".join(f"{w:.3f}" for w in report["mode_weights"]["true"])
        lines.append(f"  mode weights {est} (true {true})")
    if "images" in report:
        q = report["images"]
        if "fid" in q:
            lines.append(
                f"  classifier FID {q['fid']:.4g}  floor {q['floor']:.4g}  "
                f"ratio {q['ratio']:.2f}  (n = {q['n_samples']} per split)"
            )
            lines.append(
                f"  classes covered {q['n_covered']}/{len(q['class_fractions'])}, "
                f"confidence {q['confidence']:.3f}"
            )
        else:
            lines.append("  " + q.get("note", json.dumps(q, default=float)))
    if "bits_per_dim" in report:
        b = report["bits_per_dim"]
        lines.append(
            f"  {b['bpd']:.4g} ± {b['bpd_se']:.2g} bits/dim on {b['n_images']} test "
            f"images (dequantised, offset {b['offset_bits']} bits for [-1, 1])"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = evaluate_run(args.run_dir, args)
    path = args.run_dir / "evaluation.json"
    atomic_writer(path, lambda tmp: tmp.write_text(json.dumps(report, indent=2, default=float)))
    print(format_report(report))
    print(f"wrote {path}")
    return 0
