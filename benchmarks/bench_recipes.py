"""Every seed recipe in full mode: wall and CPU time, and the numbers each one records.

Each recipe runs as its own ``scorelab run RECIPE --out DIR`` process (so its CPU time is that
process's, read from ``getrusage(RUSAGE_CHILDREN)``), with the torch thread count given by
``--threads`` (default: torch's own, i.e. both cores of the development machine). The recipe's
``numbers.json`` is read back and its headline numbers are printed next to the time and the
recipe's promised ``~minutes``.

Run: ``python benchmarks/bench_recipes.py [--only NAME ...] [--threads K] [--keep DIR]``.
Writes ``benchmarks/results/recipes.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save_results  # noqa: E402

from scorelab.recipes import all_recipes  # noqa: E402

#: The numbers shown in the table per recipe (dotted keys reach into nested dicts); the rest of
#: each recipe's numbers.json is kept in recipes.json.
HEADLINE: dict[str, tuple[str, ...]] = {
    "seed000-moons": (
        "comparison.as_in_seed.vs_moons.ratio",
        "comparison.improved.vs_moons.ratio",
        "samples_vs_data.calibration_mean",
    ),
    "seed000-ncsn-digits": ("steps", "quality.fid", "quality.floor", "quality.ratio"),
    "seed000-ncsn-mnist": (
        "steps",
        "comparison.as_in_seed.quality.ratio",
        "comparison.improved.quality.ratio",
        "quality.n_covered",
    ),
    "seed001-langevin": ("cov_max_abs_error",),
    "seed001-swiss-roll": ("field_fraction_pointing_to_data", "trail_distance_to_data_end"),
    "seed002-low-density": (
        "mode_weights_plain_exact",
        "mode_weights_annealed_exact",
        "mode_weights_annealed_learned",
    ),
    "seed003-mixture-1d": (
        "l1_recovered_vs_p",
        "comparison.as_in_seed.l1_pdf_vs_p",
        "share_below_0_true",
        "share_below_0_annealed_learned",
        "comparison.as_in_seed.share_below_0_annealed_learned",
    ),
    "seed004-forward": ("x1_std", "x1_std_exact"),
    "seed004-mixture": (
        "component_sum_max_error",
        "exercise_1_3.as_in_seed.ratio",
        "exercise_1_3.improved.ratio",
        "exercise_1_3.as_in_seed.calibration_mean",
    ),
    "seed004-learned": (
        "steps",
        "score_error.as_in_seed.final.test",
        "score_error.corrected.final.test",
        "sampling.as_in_seed.learned.ratio",
        "sampling.improved.learned.ratio",
    ),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_one(name: str, out_dir: Path, threads: int | None) -> dict:
    """Run one recipe in a child process; wall/CPU seconds, exit code and its numbers."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    argv = [sys.executable, "-m", "scorelab", "run", name, "--out", str(out_dir)]
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall0, _children_cpu() - cpu0
    numbers_file = out_dir / "numbers.json"
    numbers = json.loads(numbers_file.read_text())["numbers"] if numbers_file.exists() else {}
    return {
        "returncode": proc.returncode,
        "wall_s": wall,
        "cpu_s": cpu,
        "numbers": numbers,
        "stderr_tail": proc.stderr[-1500:] if proc.returncode else "",
    }


def _lookup(numbers: dict, dotted: str):
    if dotted in numbers:  # keys may hold dots themselves ("l1_..._sigma_0.5_vs_p")
        return numbers[dotted]
    value = numbers
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _headline(name: str, numbers: dict) -> str:
    """``key=value`` for the recipe's HEADLINE keys (numbers to 3 digits, lists rounded)."""
    shown = []
    for key in HEADLINE.get(name, ()):
        value = _lookup(numbers, key)
        if isinstance(value, float):
            value = f"{value:.3g}"
        elif isinstance(value, list):
            value = [round(v, 3) if isinstance(v, float) else v for v in value]
        shown.append(f"{key}={value}")
    return ", ".join(shown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=None, help="recipe name (repeatable)")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of each run")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    args = parser.parse_args(argv)
    recipes = all_recipes()
    names = args.only or list(recipes)
    unknown = [n for n in names if n not in recipes]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; valid: {sorted(recipes)}")
    print(f"machine: {machine()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for name in names:
            res = run_one(name, root / name, args.threads)
            res["promised_minutes"] = recipes[name].minutes
            results[name] = res
            status = "ok" if res["returncode"] == 0 else f"FAILED ({res['returncode']})"
            print(f"{name}: {status}, {res['wall_s']:.0f} s wall, {res['cpu_s']:.0f} s CPU "
                  f"(promised ~{recipes[name].minutes:g} min)", flush=True)  # fmt: skip
            if res["returncode"]:
                print(res["stderr_tail"], flush=True)
    table = make_table(results)
    print("\n" + table)
    save_results(
        "recipes_partial" if args.only else "recipes",
        {"threads": args.threads, "results": results, "table": table},
    )
    return 0 if all(r["returncode"] == 0 for r in results.values()) else 1


def make_table(results: dict) -> str:
    """The markdown table of a run's results."""
    lines = [
        "| recipe | wall s | CPU s | promised | under 5 min | headline numbers |",
        "|---|---|---|---|---|---|",
    ]
    for name, res in results.items():
        under = "yes" if res["wall_s"] < 300 else "no"
        lines.append(
            f"| {name} | {res['wall_s']:.0f} | {res['cpu_s']:.0f} | ~{res['promised_minutes']:g} "
            f"min | {under} | {_headline(name, res['numbers'])} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
