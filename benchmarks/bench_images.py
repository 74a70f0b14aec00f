"""Image score models measured with the classifier FID: 8×8 digits and the 28×28 MNIST subset.

For each image set the benchmark runs the real command-line path in this process:

1. ``scorelab classifier --data SET`` trains the LeNet whose features give the Fréchet distance;
2. ``scorelab train --data SET`` with the settings of ``scorelab.training.images.image_settings``
   (small U-Net, σ log-uniform in [σ_min, σ_max], σ² weight, EMA), timed (wall and CPU);
3. samples from the EMA network with the seed's annealed Langevin (10 levels × 100 steps and the
   final denoising step: 1001 score evaluations) and with few-evaluation samplers (≤ 100), each
   scored by ``image_quality_report`` (FID, the real-vs-real floor at the same sample size
   averaged over 5 splits of the test images, their ratio, class coverage and confidence);
4. a sample grid, a nearest-training-neighbour grid and the loss curve (PNG), and for digits
   the bits per dimension of test images through the probability-flow ODE.

    python benchmarks/bench_images.py                  # CPU, digits + MNIST subset (~25-35 min)
    python benchmarks/bench_images.py --only digits    # digits only
    python benchmarks/bench_images.py --quick          # smoke run, a few minutes
    python benchmarks/bench_images.py --device cuda --suffix gpu   # GPU settings (longer runs)

Numbers go to ``benchmarks/results/images[_SUFFIX].json``, figures to
``benchmarks/results/images[_SUFFIX]/``. Threads default to 1: on a shared two-core machine one
thread per process was about eight times faster than two.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, save_results  # noqa: E402

from scorelab.cli.main import build_parser, main  # noqa: E402
from scorelab.cli.sampling import run_sampler  # noqa: E402
from scorelab.metrics.fid import image_quality_report  # noqa: E402
from scorelab.models.classifier import load_classifier  # noqa: E402
from scorelab.plotting import image_grid, loss_curves, nearest_neighbour_grid  # noqa: E402
from scorelab.runs import load_run, load_run_data  # noqa: E402
from scorelab.training import read_metrics  # noqa: E402
from scorelab.training.images import image_bits_per_dim, image_settings  # noqa: E402

#: The seed's annealed Langevin: 10 geometric levels × 100 steps (+ the final denoising step).
ALD = ["--sampler", "annealed-langevin", "--levels", "10", "--steps", "100"]
#: Few-evaluation samplers compared with it (score evaluations in brackets).
FEW = {
    "dpmpp-2m-sde-50": ["--sampler", "dpmpp-2m-sde", "--steps", "50"],  # 50
    "edm-stochastic-25": ["--sampler", "edm-stochastic", "--steps", "25"],  # 49
    "dpmpp-2m-sde-25": ["--sampler", "dpmpp-2m-sde", "--steps", "25"],  # 25
}
#: Per image set: samples for the few-evaluation samplers and for annealed Langevin (28×28 on a
#: shared CPU: 1001 evaluations of 50 samples already take minutes), classifier epochs, test
#: images for bits/dim (0: skip) and which few-evaluation samplers to run.
PLAN = {
    "digits": {"n": 359, "n_ald": 180, "clf_epochs": 36, "bpd": 50, "few": list(FEW)},
    "mnist-subset": {
        "n": 300,
        "n_ald": 50,
        "clf_epochs": 13,
        "bpd": 0,
        "few": ["dpmpp-2m-sde-50", "dpmpp-2m-sde-25"],
    },
}
QUICK = {"steps": 40, "n": 64, "n_ald": 16, "clf_epochs": 1, "bpd": 4, "ald_steps": "5"}


def _loss_description() -> dict:
    """What ``scorelab train`` minimises (its loss's defaults), recorded beside the numbers."""
    import inspect

    from scorelab.training.recipe2d import noise_conditional_loss

    params = inspect.signature(noise_conditional_loss).parameters.items()
    defaults = {k: p.default for k, p in params if p.default is not inspect.Parameter.empty}
    defaults.pop("generator", None)
    doc = (noise_conditional_loss.__doc__ or "").strip().split("\n\n")[0]
    return {
        "function": "scorelab.training.recipe2d.noise_conditional_loss",
        "doc": doc,
        "defaults": defaults,
    }


def _cli(argv: list[str]) -> float:
    """Run ``scorelab ARGV`` in this process; return its wall seconds (raise on failure)."""
    start = time.perf_counter()
    code = main(argv)
    if code != 0:
        raise SystemExit(f"scorelab {' '.join(argv)} failed with exit code {code}")
    return time.perf_counter() - start


def _sample(run, sampler_args: list[str], n: int, seed: int) -> tuple[torch.Tensor, int, float]:
    """Samples ``(n, 1, H, W)`` of a run with the sampler named by ``scorelab evaluate`` flags."""
    parser, _ = build_parser()
    args = parser.parse_args(["evaluate", str(run.run_dir), *sampler_args])
    generator = torch.Generator(device=run.device).manual_seed(seed)
    start = time.perf_counter()
    result = run_sampler(args, run.score_source(), n, generator=generator)
    return result.samples.detach().cpu(), result.n_evals, time.perf_counter() - start


def _quality(classifier, samples: torch.Tensor, test: torch.Tensor) -> dict:
    report = image_quality_report(classifier, samples, test, n_splits=5)
    keep = ("fid", "floor", "ratio", "n_samples", "n_covered", "confidence", "class_entropy_ratio")
    return {k: report[k] for k in keep}


def bench_set(name: str, opts: argparse.Namespace, figures: Path) -> dict:
    """Classifier, training, samplers and figures for one image set; returns its numbers."""
    plan = dict(PLAN[name])
    settings = image_settings(name, opts.device)
    train_args = settings.train_args()
    if opts.quick:
        plan.update({k: v for k, v in QUICK.items() if k in plan})
        plan["few"] = plan["few"][:1]
        train_args += ["--steps", str(QUICK["steps"])]
    if opts.steps is not None:
        train_args += ["--steps", str(opts.steps)]
    work = opts.work / name
    clf_path, run_dir = work / "classifier.pt", work / "run"
    out: dict = {"data": name, "settings": settings.to_dict(), "loss": _loss_description()}

    # 1. The classifier that measures the samples.
    clf_argv = [
        "classifier",
        "--data",
        name,
        "--out",
        str(clf_path),
        "--epochs",
        str(plan["clf_epochs"]),
        "--device",
        opts.device,
    ]
    out["classifier"] = {"command": "scorelab " + " ".join(clf_argv), "seconds": _cli(clf_argv)}
    classifier, meta = load_classifier(clf_path)
    classifier = classifier.to(opts.device)
    out["classifier"]["test_accuracy"] = meta["accuracy"]

    # 2. Training through the CLI; wall and CPU time (one thread: CPU time ≈ one core's time).
    train_argv = [
        "train",
        "--data",
        name,
        "--out",
        str(run_dir),
        "--no-resume",
        "--no-progress",
        "--device",
        opts.device,
        "--log-every",
        "50",
        "--eval-every",
        "250",
        *train_args,
    ]
    cpu0 = time.process_time()
    wall = _cli(train_argv)
    cpu = time.process_time() - cpu0
    run = load_run(run_dir, device=opts.device)
    cfg = run.config["train"]
    rows = read_metrics(run_dir / "metrics.csv")
    out["train"] = {
        "command": "scorelab " + " ".join(train_argv),
        "steps": run.step,
        "batch_size": cfg["batch_size"],
        "wall_s": wall,
        "cpu_s": cpu,
        "images_per_s": run.step * cfg["batch_size"] / wall,
        "noise": run.config["noise"],
        "curve": [
            {k: r[k] for k in ("step", "train_loss", "test_loss", "test_loss_ema") if k in r}
            for r in rows
            if "test_loss" in r
        ],
    }
    print(f"[{name}] trained {run.step} steps in {wall:.0f} s wall / {cpu:.0f} s CPU", flush=True)
    loss_curves(
        rows,
        keys=("train_loss", "test_loss", "test_loss_ema"),
        x_key="step",
        ylabel="σ²-weighted DSM loss",
        title=f"{name}: training",
        path=figures / f"{name}_loss.png",
    )

    # 3. Samplers against the held-out images.
    data = run.config["data"]
    train_x, test = load_run_data(name, n=None, seed=data["seed"], test_fraction=0.2)
    ald_args = list(ALD)
    if opts.quick:
        ald_args[-1] = QUICK["ald_steps"]
    samplers = {
        "annealed-langevin-10x100": (ald_args, plan["n_ald"]),
        **{k: (FEW[k], plan["n"]) for k in plan["few"]},
    }
    out["samplers"] = {}
    kept = {}
    for label, (sampler_args, n) in samplers.items():
        samples, n_evals, seconds = _sample(run, sampler_args, n, opts.seed)
        kept[label] = samples
        row = {
            "args": " ".join(sampler_args),
            "n_evals": n_evals,
            "seconds": seconds,
            "images_per_s": n / seconds,
            **_quality(classifier, samples, test),
        }
        if n > plan["n_ald"]:  # the same sample size as annealed Langevin, for a fair floor
            row["at_n_ald"] = _quality(classifier, samples[: plan["n_ald"]], test)
        out["samplers"][label] = row
        print(
            f"[{name}] {label}: {n_evals} evals, FID {row['fid']:.3g}, floor "
            f"{row['floor']:.3g}, ratio {row['ratio']:.2f} ({seconds:.0f} s)",
            flush=True,
        )

    # 4. Figures: samples of the recommended sampler and of annealed Langevin, nearest neighbours.
    best = min(plan["few"], key=lambda k: out["samplers"][k]["ratio"])
    out["recommended_sampler"] = best
    for label in (best, "annealed-langevin-10x100"):
        image_grid(
            kept[label][:100],
            nrow=10,
            title=f"{name}: {label}",
            path=figures / f"{name}_samples_{label}.png",
        )
    nearest_neighbour_grid(kept[best][:10], train_x, k=5, path=figures / f"{name}_nearest.png")
    image_grid(
        test[:100], nrow=10, title=f"{name}: real test images", path=figures / f"{name}_real.png"
    )

    if plan["bpd"]:
        start = time.perf_counter()
        noise = run.config["noise"]
        bpd = image_bits_per_dim(
            run.score_fn(),
            test[: plan["bpd"]].to(run.device),
            sigma_min=noise["sigma_min"],
            sigma_max=noise["sigma_max"],
            batch_size=50,
            generator=torch.Generator().manual_seed(0),
        )
        out["bits_per_dim"] = {**bpd, "seconds": time.perf_counter() - start}
        print(f"[{name}] {bpd['bpd']:.3f} ± {bpd['bpd_se']:.3f} bits/dim", flush=True)
    return out


def _in_parallel(names: list[str]) -> dict:
    """Run each image set in its own process (one core each); return their numbers by set."""
    import json
    import subprocess
    import tempfile

    argv, skip = [], False
    for arg in sys.argv[1:]:  # this command without --parallel and --only
        if skip or arg == "--parallel" or arg.startswith("--only="):
            skip = False
            continue
        skip = arg == "--only"
        if not skip:
            argv.append(arg)
    with tempfile.TemporaryDirectory() as tmp:
        procs = {}
        for data in names:
            dump = Path(tmp) / f"{data}.json"
            cmd = [sys.executable, __file__, *argv, "--only", data, "--dump", str(dump)]
            procs[data] = (subprocess.Popen(cmd), dump)
        sets = {}
        for data, (proc, dump) in procs.items():
            if proc.wait() != 0:
                raise SystemExit(f"the {data} part failed with exit code {proc.returncode}")
            sets[data] = json.loads(dump.read_text())
    return sets


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(PLAN), action="append", default=None)
    parser.add_argument("--quick", action="store_true", help="smoke run with a few steps")
    parser.add_argument("--steps", type=int, default=None, help="override the training steps")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--seed", type=int, default=1, help="sampling seed")
    parser.add_argument(
        "--parallel", action="store_true", help="one process per image set (two cores: two sets)"
    )
    parser.add_argument("--dump", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/scorelab_bench_images"),
        help="folder for the run folders and classifier checkpoints",
    )
    parser.add_argument("--suffix", default="", help="results name suffix (e.g. gpu)")
    opts = parser.parse_args()
    torch.set_num_threads(opts.threads)
    name = "images" + (f"_{opts.suffix}" if opts.suffix else "") + ("_quick" if opts.quick else "")
    figures = RESULTS_DIR / name
    figures.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(opts.only or PLAN))
    start = time.perf_counter()
    if opts.parallel and len(names) > 1:
        sets = _in_parallel(names)
    else:
        sets = {data: bench_set(data, opts, figures) for data in names}
    if opts.dump is not None:  # a part of a --parallel run: hand the numbers to the parent
        import json

        opts.dump.write_text(json.dumps(sets[names[0]], default=float))
        return
    payload = {
        "threads": opts.threads,
        "parallel": opts.parallel,
        "total_wall_s": time.perf_counter() - start,
        "sets": sets,
    }
    save_results(name, payload)


if __name__ == "__main__":
    main_bench()
