"""Regenerate the benchmark results: ``make bench`` (quick, under 10 minutes) or ``bench-full``.

Runs each benchmark script in its own process, one torch thread each (two for the MNIST
image and inpainting runs: ``--threads 2``), in the order below, and prints a table of what ran,
how long it took and which JSON it wrote under ``benchmarks/results/``. Quick mode runs every
script's ``--quick`` smoke setting (results go to ``*_quick.json`` files, or the script's own
quick name, never over the full results); full mode regenerates every number that
``benchmarks/RESULTS*.md`` quotes (hours on 2 cores).

    python benchmarks/run_all.py              # quick
    python benchmarks/run_all.py --full       # everything, as RESULTS*.md was made
    python benchmarks/run_all.py --only fewstep --only guidance --full
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (script, quick arguments (None: full mode only), full arguments, minutes of the full
#: run on 2 cores).
BENCHMARKS: dict[str, tuple[str, list[str] | None, list[str], float]] = {
    "fewstep": ("bench_fewstep.py", ["--quick"], [], 60),
    "samplers-speed": (
        "bench_samplers.py",
        ["--section", "speed", "--quick"],
        ["--section", "speed"],
        5,
    ),
    "samplers-quality": (
        "bench_samplers.py",
        ["--section", "quality", "--quick"],
        ["--section", "quality"],
        30,
    ),
    "samplers-seeds": (
        "bench_samplers.py",
        ["--section", "seeds", "--quick"],
        ["--section", "seeds"],
        10,
    ),
    "guidance": ("bench_guidance.py", ["--quick"], [], 5),
    "guidance-digits": (
        "bench_guidance.py",
        ["--images", "digits", "--quick"],
        ["--images", "digits"],
        30,
    ),
    "guidance-points-run": ("bench_guidance.py", ["--points-run", "--quick"], ["--points-run"], 5),
    "guidance-mnist-class": (
        "bench_guidance.py",
        None,
        ["--images", "mnist-subset", "--part", "class"],
        110,
    ),
    "guidance-mnist-inpaint": (
        "bench_guidance.py",
        None,
        ["--images", "mnist-subset", "--part", "inpaint", "--threads", "2"],
        80,
    ),
    "training": (
        "bench_training.py",
        ["--quick"],
        ["--final-only", "--no-seed-recipes", "--user-files", "circles"],
        40,
    ),
    "training-cli": ("bench_training.py", None, ["--cli", "5"], 15),
    "training-cli-10": ("bench_training.py", None, ["--cli", "5", "--cli-from", "10"], 15),
    "langevin_modes": ("bench_langevin_modes.py", ["--quick"], [], 10),
    "likelihood": ("bench_likelihood.py", ["--quick"], [], 10),
    "recipes": ("bench_recipes.py", ["--only", "seed001-langevin"], ["--threads", "1"], 20),
    "images-digits": (
        "bench_images.py",
        ["--quick", "--only", "digits"],
        ["--only", "digits", "--suffix", "digits"],
        5,
    ),
    "images-mnist": (
        "bench_images.py",
        None,
        ["--only", "mnist-subset", "--suffix", "mnist16000", "--threads", "2"],
        75,
    ),
    "distributed": ("bench_distributed.py", ["--quick"], [], 5),
    "faults": ("bench_faults.py", ["--quick"], [], 30),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full runs (hours), not --quick")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), default=None)
    opts = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    rows, failed = [], []
    for name in opts.only or BENCHMARKS:
        script, quick, full, minutes = BENCHMARKS[name]
        if quick is None and not opts.full:
            continue  # too long for a smoke run (the MNIST training)
        argv = [sys.executable, str(HERE / script), *(full if opts.full else quick)]
        about = f" (about {minutes:g} min)" if opts.full else ""
        print(f"== {name}: {' '.join(argv[1:])}{about}")
        start = time.perf_counter()
        code = subprocess.call(argv, env=env, cwd=HERE.parent)
        seconds = time.perf_counter() - start
        rows.append((name, code, seconds))
        if code != 0:
            failed.append(name)
    print("\nbenchmark        exit  seconds")
    for name, code, seconds in rows:
        print(f"{name:<16} {code:>4}  {seconds:7.1f}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
