"""Robustness benchmark: a large SIGKILL sweep on `scorelab train` and the bad-input census.

    python benchmarks/bench_faults.py                 # full sweep (~10 min on 2 busy cores)
    python benchmarks/bench_faults.py --quick         # a small one (~2 min)

Kills: the machinery of ``tests/test_faults.py`` (forked children running the command line's
``main``; the same command re-run after each kill), with seeded random kill times, for a
checkpoint every step (many kills land inside a checkpoint write) and every 5 steps; then a few
kills of a real ``python -m scorelab train`` process and one deliberate kill inside each kind of
atomic write. Bad input: every case of ``tests/test_bad_input.py`` with more hypothesis examples
each, classified as clear / unclear / silent / traceback. Prints both tables and writes
``benchmarks/results/robustness.json``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import test_bad_input as tbi  # noqa: E402
import test_faults as tf  # noqa: E402
import torch  # noqa: E402
from common import save_results, timer  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def kill_sweeps(root: Path, quick: bool) -> list[dict]:
    """Seeded random kills of forked trainers, for two checkpoint intervals."""
    plans = [
        {"checkpoint_every": 1, "steps": 40 if quick else 150, "n_kills": 8 if quick else 40},
        {"checkpoint_every": 5, "steps": 60 if quick else 200, "n_kills": 6 if quick else 30},
    ]
    out = []
    for i, plan in enumerate(plans):
        for seed in range(1 if quick else 2):
            folder = root / f"sweep{i}-{seed}"
            folder.mkdir()
            with timer() as t:
                stats = tf.kill_sweep(folder, seed=seed, **plan)
            stats.update(plan, seed=seed, kind="forked main()", seconds=round(t["s"], 1))
            out.append(stats)
            print(_sweep_line(stats), flush=True)
    return out


def subprocess_kills(root: Path, n_kills: int, seed: int = 0) -> dict:
    """SIGKILL a real `python -m scorelab train` at random moments after its first checkpoint;
    re-run the same command each time (a child process, paying the imports every time)."""
    import random

    rng = random.Random(seed)
    run_dir, steps = root / "run", 400
    argv = [sys.executable, "-m", "scorelab", *tf.train_argv(run_dir, steps, 2)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    stats = {"kind": "python -m scorelab", "checkpoint_every": 2, "steps": steps, "seed": seed,
             "kills_tried": 0, "kills_landed": 0, "runs_finished": 0, "max_steps_lost": 0,
             "steps_lost": 0, "corrupt_files": 0, "kills_mid_write": 0, "tracebacks": 0,
             "locks_left": 0, "problems": []}  # fmt: skip
    log = open(root / "cli.log", "w")  # noqa: SIM115
    with timer() as t:
        for _ in range(n_kills):
            stats["kills_tried"] += 1
            start = _mtime(run_dir / "checkpoint.pt")
            child = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
            while child.poll() is None and _mtime(run_dir / "checkpoint.pt") == start:
                time.sleep(0.02)  # until this run has saved a checkpoint of its own
            time.sleep(rng.uniform(0.0, 1.0))
            if child.poll() is not None:
                break
            child.send_signal(signal.SIGKILL)
            child.wait()
            stats["kills_landed"] += 1
            state = tf.inspect_run(run_dir)
            lost = state["last_logged"] - (state["ckpt_step"] or 0)
            stats["steps_lost"] += lost
            stats["max_steps_lost"] = max(stats["max_steps_lost"], lost)
            stats["corrupt_files"] += len(state["corrupt"])
            stats["kills_mid_write"] += bool(state["temps"])
            stats["locks_left"] += not tf.lock_is_free(run_dir)
        code = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    log.close()
    final = tf.inspect_run(run_dir)
    rows = tf.read_metrics(run_dir / "metrics.csv")
    ok = code == 0 and final["ckpt_step"] == steps
    ok = ok and [r["step"] for r in rows] == list(range(1, steps + 1)) and not final["temps"]
    stats["runs_finished"] += ok
    stats["corrupt_files"] += len(final["corrupt"])
    stats["tracebacks"] += "Traceback" in (root / "cli.log").read_text()
    stats["seconds"] = round(t["s"], 1)
    print(_sweep_line(stats), flush=True)
    return stats


def _mtime(path: Path) -> int | None:
    return path.stat().st_mtime_ns if path.exists() else None


def targeted_kills(root: Path) -> list[dict]:
    """One kill inside each kind of write, at a known moment (a half-written temp on disk)."""
    out = []
    for name, prefix, nth in [
        ("checkpoint.pt (atomic)", ".checkpoint", 4),
        ("metrics.csv rewrite (atomic)", ".metrics.csv", 2),
        ("config.json (atomic)", ".config", 1),
    ]:
        folder = root / f"targeted-{prefix.strip('.')}"
        folder.mkdir()
        run_dir, log, marker = folder / "run", folder / "log", folder / "paused"
        argv = tf.train_argv(run_dir, 8, 1)
        temp = tf._kill_at_marker(argv, log, tf._pause_in_write(prefix, nth, marker), marker)
        after_kill = tf.inspect_run(run_dir)
        code = tf.run_forked(argv, log)
        final = tf.inspect_run(run_dir)
        out.append({
            "write": name, "temp_left_by_kill": temp, "corrupt_after_kill": after_kill["corrupt"],
            "finished": code == 0 and final["ckpt_step"] == 8, "temps_after_rerun": final["temps"],
        })  # fmt: skip
        print(out[-1], flush=True)
    return out


def _sweep_line(s: dict) -> str:
    return (
        f"{s['kind']:<18} ckpt every {s['checkpoint_every']:>2}: kills {s['kills_landed']}/"
        f"{s['kills_tried']}, finished {s['runs_finished']}, steps lost max {s['max_steps_lost']}"
        f" (total {s['steps_lost']}), corrupt {s['corrupt_files']}, mid-write "
        f"{s['kills_mid_write']}, problems {s['problems']}"
    )


def _draw_outcomes(case: tbi.Case, env: dict, n: int) -> list[tuple[str, str]]:
    """Up to ``n`` hypothesis draws of ``case``, each run and classified (never raises)."""
    seen: list[tuple[str, str]] = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def draw(data) -> None:
        seen.append(tbi.outcome(case, data.draw(case.draw), env))

    draw()
    return seen


def census(root: Path, cli_examples: int, api_examples: int) -> list[dict]:
    """Every bad-input case with up to ``*_examples`` hypothesis draws; outcomes per case."""
    env = tbi.make_env(root / "bad-input")
    rows = []
    for case in tbi.ALL:
        if case.needs_cuda and not torch.cuda.is_available():
            rows.append({"kind": case.kind, "where": case.where, "bug": case.bug,
                         "tried": 0, "skipped": "needs CUDA"})  # fmt: skip
            continue
        n = cli_examples if case.where == "cli" else api_examples
        seen = _draw_outcomes(case, env, n)
        counts = Counter(category for category, _ in seen)
        bad = [detail for category, detail in seen if category != "clear"]
        rows.append({
            "kind": case.kind, "where": case.where, "bug": case.bug, "tried": len(seen),
            **{k: counts.get(k, 0) for k in ("clear", "unclear", "silent", "traceback")},
            "example": (bad or [seen[0][1]])[0][:240],
        })  # fmt: skip
        mark = "ok " if not bad else "BAD"
        print(f"{mark} {case.where} {case.kind:<50} {dict(counts)}", flush=True)
    return rows


def summarise(sweeps: list[dict], census_rows: list[dict]) -> dict:
    kills = {
        "kills_tried": sum(s["kills_tried"] for s in sweeps),
        "kills_landed": sum(s["kills_landed"] for s in sweeps),
        "kills_mid_write": sum(s["kills_mid_write"] for s in sweeps),
        "runs": len(sweeps),
        "runs_finished": sum(s["runs_finished"] for s in sweeps),
        "steps_lost_total": sum(s["steps_lost"] for s in sweeps),
        "steps_lost_max_over_interval": max(
            s["max_steps_lost"] / s["checkpoint_every"] for s in sweeps
        ),
        "corrupt_files": sum(s["corrupt_files"] for s in sweeps),
        "tracebacks": sum(s["tracebacks"] for s in sweeps),
        "problems": [p for s in sweeps for p in s["problems"]],
    }
    ran = [r for r in census_rows if r["tried"]]
    bad_input = {
        "kinds": len(census_rows),
        "kinds_run": len(ran),
        "kinds_all_clear": sum(r["clear"] == r["tried"] for r in ran),
        "examples": sum(r["tried"] for r in ran),
        **{k: sum(r[k] for r in ran) for k in ("clear", "unclear", "silent", "traceback")},
        "kinds_with_tracebacks": sum(r["traceback"] > 0 for r in ran),
        "kinds_silent": sum(r["silent"] > 0 for r in ran),
    }
    return {"kills": kills, "bad_input": bad_input}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small sweep (~2 min)")
    parser.add_argument("--subprocess-kills", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        root = Path(tmp)
        warm = root / "warm"
        code, err = tf._in_process(tf.train_argv(warm / "run", 1, 1))  # load everything once
        assert code == 0, err
        sweeps = kill_sweeps(root, args.quick)
        n_sub = (
            args.subprocess_kills if args.subprocess_kills is not None else (2 if args.quick else 5)
        )
        if n_sub:
            (root / "cli").mkdir()
            sweeps.append(subprocess_kills(root / "cli", n_sub))
        targeted = targeted_kills(root)
        census_rows = census(root, cli_examples=4 if args.quick else 12,
                             api_examples=10 if args.quick else 40)  # fmt: skip
    summary = summarise(sweeps, census_rows)
    print(summary)
    save_results(
        "robustness_quick" if args.quick else "robustness",
        {"summary": summary, "sweeps": sweeps, "targeted_kills": targeted, "census": census_rows},
    )


if __name__ == "__main__":
    main()
