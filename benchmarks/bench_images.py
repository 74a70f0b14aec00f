"""Image score models measured with the classifier FID: 8×8 digits and the 28×28 MNIST subset.

For each image set the benchmark calls the library functions the command line calls:

1. ``train_classifier`` (as ``scorelab classifier``) trains the LeNet whose features give the
   Fréchet distance;
2. ``plan_run``/``train_run`` (as ``scorelab train --data SET``) with the image set's training
   preset for the device (``scorelab.training.presets``), timed (wall and CPU);
3. samples from the EMA network with the seed's annealed Langevin (10 levels × 100 steps and the
   final denoising step: 1001 score evaluations) and with few-evaluation samplers (≤ 100), each
   scored by ``image_quality_report`` (FID, the real-vs-real floor at the same sample size
   averaged over 5 splits of the test images, their ratio, class coverage and confidence);
4. a sample grid, a nearest-training-neighbour grid and the loss curve (PNG), and for digits
   the bits per dimension of test images through the probability-flow ODE.

    python benchmarks/bench_images.py --threads 2      # CPU, digits + MNIST subset (~75 min)
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

from scorelab.data.images import load_images  # noqa: E402
from scorelab.metrics.fid import image_quality_report  # noqa: E402
from scorelab.models.classifier import classifier_accuracy, train_classifier  # noqa: E402
from scorelab.plotting import image_grid, loss_curves, nearest_neighbour_grid  # noqa: E402
from scorelab.runs import load_run, load_run_data, plan_run, train_run  # noqa: E402
from scorelab.samplers import SamplerConfig, draw_samples  # noqa: E402
from scorelab.training import read_metrics  # noqa: E402
from scorelab.training.images import image_bits_per_dim  # noqa: E402

#: The seed's annealed Langevin: 10 geometric levels × 100 steps (+ the final denoising step).
ALD = SamplerConfig("annealed-langevin", 100, {"levels": 10})
#: Few-evaluation samplers compared with it (score evaluations in brackets).
FEW = {
    "dpmpp-2m-sde-50": SamplerConfig("dpmpp-2m-sde", 50),  # 50
    "edm-stochastic-25": SamplerConfig("edm-stochastic", 25),  # 49
    "dpmpp-2m-sde-25": SamplerConfig("dpmpp-2m-sde", 25),  # 25
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
QUICK = {"steps": 40, "n": 64, "n_ald": 16, "clf_epochs": 1, "bpd": 4, "ald_steps": 5}


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


def _sample(run, config: SamplerConfig, n: int, seed: int) -> tuple[torch.Tensor, int, float]:
    """Samples ``(n, 1, H, W)`` of a run with a sampler configuration."""
    generator = torch.Generator(device=run.device).manual_seed(seed)
    start = time.perf_counter()
    result = draw_samples(run.score_source(), n, config, generator=generator)
    return result.samples.detach().cpu(), result.n_evals, time.perf_counter() - start


def _quality(classifier, samples: torch.Tensor, test: torch.Tensor) -> dict:
    report = image_quality_report(classifier, samples, test, n_splits=5)
    keep = ("fid", "floor", "ratio", "n_samples", "n_covered", "confidence", "class_entropy_ratio")
    return {k: report[k] for k in keep}


def bench_set(name: str, opts: argparse.Namespace, figures: Path) -> dict:
    """Classifier, training, samplers and figures for one image set; returns its numbers."""
    plan = dict(PLAN[name])
    steps = QUICK["steps"] if opts.quick else opts.steps
    if opts.quick:
        plan.update({k: v for k, v in QUICK.items() if k in plan})
        plan["few"] = plan["few"][:1]
    run_dir = opts.work / name / "run"
    run_plan, train_x, test_x = plan_run(
        name, device=opts.device, steps=steps, train={"log_every": 50, "eval_every": 250}
    )
    out: dict = {"data": name, "preset": run_plan["preset"], "loss": _loss_description()}

    # 1. The classifier that measures the samples (as `scorelab classifier`).
    start = time.perf_counter()
    x_tr, y_tr = load_images(name, "train", seed=0)
    x_te, y_te = load_images(name, "test", seed=0)
    classifier = train_classifier(
        x_tr.to(opts.device), y_tr.to(opts.device), epochs=plan["clf_epochs"], seed=0
    )
    accuracy = classifier_accuracy(classifier, x_te.to(opts.device), y_te.to(opts.device))
    out["classifier"] = {
        "call": f"train_classifier(epochs={plan['clf_epochs']}, seed=0)",
        "seconds": time.perf_counter() - start,
        "test_accuracy": accuracy,
    }

    # 2. Training (as `scorelab train --data SET`); wall and CPU time (one thread: CPU ≈ wall).
    cpu0, wall0 = time.process_time(), time.perf_counter()
    train_run(run_plan, train_x, test_x, run_dir, resume=False, progress=False)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    run = load_run(run_dir, device=opts.device)
    cfg = run.config["train"]
    rows = read_metrics(run_dir / "metrics.csv")
    out["train"] = {
        "call": f"plan_run({name!r}, device={opts.device!r}, steps={steps}) + train_run",
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
        ylabel="training loss (the preset's objective)",
        title=f"{name}: training",
        path=figures / f"{name}_loss.png",
    )

    # 3. Samplers against the held-out images.
    data = run.config["data"]
    train_x, test = load_run_data(name, n=None, seed=data["seed"], test_fraction=0.2)
    ald = SamplerConfig(ALD.sampler, QUICK["ald_steps"], ALD.options) if opts.quick else ALD
    samplers = {
        "annealed-langevin-10x100": (ald, plan["n_ald"]),
        **{k: (FEW[k], plan["n"]) for k in plan["few"]},
    }
    out["samplers"] = {}
    kept = {}
    for label, (config, n) in samplers.items():
        samples, n_evals, seconds = _sample(run, config, n, opts.seed)
        kept[label] = samples
        row = {
            "sampler": config.to_dict(),
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
