"""Fault injection on `scorelab train` and on run folders: kills, a second writer, full disks,
unwritable folders, damaged or foreign run folders and crafted checkpoints.

What must hold (the robustness issue): after a SIGKILL at any moment, running the same command
again finishes the run with no corrupt file, at most one checkpoint interval of steps lost and a
continuous loss curve; a second trainer on a busy folder is refused by the lock; write failures
leave no partial file and end in one clear line (exit 2); damaged run folders are explained.

Kills use ``os.fork``: the child runs ``scorelab.cli.main.main(argv)`` (the code of the command
line, without paying ~10 s of imports per kill on a loaded machine) and the parent SIGKILLs it.
One test kills a real ``python -m scorelab train`` subprocess. ``benchmarks/bench_faults.py``
runs the same sweep with many more kills.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from scorelab.cli.main import main
from scorelab.runs import read_run_config
from scorelab.training import CheckpointError, load_checkpoint, read_metrics

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kills need os.fork (POSIX)")

#: Hidden temp files of interrupted atomic writes that the next `scorelab train` removes.
CLEANED_TEMPS = (".checkpoint*.pt", ".metrics.csv.*.tmp")
#: Temp file of an interrupted config.json write (not removed yet: fix F6).
CONFIG_TEMP = ".config.*.json"
FIXES = "docs/robustness-fixes.md"


def train_argv(out: Path, steps: int, checkpoint_every: int, *extra: str) -> list[str]:
    """A small, fast `scorelab train` command that logs every step."""
    return [
        "train", "--data", "moons", "--out", str(out), "--steps", str(steps),
        "--checkpoint-every", str(checkpoint_every), "--log-every", "1", "--eval-every", "1000",
        "--n", "400", "--batch-size", "32", "--hidden", "16", "--depth", "1", "--no-progress",
        *extra,
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Running the command line in a forked child
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _warm(tmp_path_factory) -> None:
    """Run one tiny training here first: every module the command needs (and torch._dynamo,
    which the first optimiser imports, ~10 s on a loaded machine) is then loaded before forking,
    so a forked child starts in milliseconds."""
    code, stderr = _in_process(train_argv(tmp_path_factory.mktemp("warm") / "run", 1, 1))
    assert code == 0, stderr


def fork_main(argv: list[str], log: Path, hook=None) -> int:
    """Fork a child that runs ``main(argv)`` (after ``hook()``, if given); return its pid.

    The child's output goes to ``log``; it leaves with ``os._exit`` (exit code 99 and the
    traceback in ``log`` if ``main`` raised, which the tests count as a traceback).
    """
    pid = os.fork()
    if pid:
        return pid
    code = 99
    try:
        out = open(log, "a", buffering=1)  # noqa: SIM115 - the child exits without closing
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        sys.stdout = sys.stderr = out
        torch.set_num_threads(1)
        if hook is not None:
            hook()
        code = main(argv)
    except BaseException:  # noqa: BLE001 - report everything, then leave
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os._exit(code)


def wait_exit(pid: int, timeout: float) -> int:
    """Wait for a child; return its exit code, or -SIGNAL. SIGKILL it after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"child {pid} did not finish within {timeout:.0f} s")
        time.sleep(0.01)


def run_forked(argv: list[str], log: Path, timeout: float = 300.0, hook=None) -> int:
    return wait_exit(fork_main(argv, log, hook), timeout)


def kill_after(pid: int, delay: float) -> bool:
    """SIGKILL ``pid`` after ``delay`` seconds; True if it was still running (the kill landed)."""
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return False
        time.sleep(0.002)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return True


# ---------------------------------------------------------------------------------------------
# What a run folder looks like after a kill
# ---------------------------------------------------------------------------------------------


def inspect_run(run_dir: Path) -> dict:
    """Check every file of a run folder; return step bookkeeping and any problems found.

    ``corrupt`` lists files that do not load (checkpoint.pt, config.json) or a metrics.csv
    whose complete rows are not strictly increasing. ``torn_lines`` counts a last metrics.csv
    line cut short (dropped by ``read_metrics`` and rewritten by the next run). ``temps`` lists
    the hidden temp files of interrupted writes.
    """
    corrupt, ckpt_step = [], None
    if not run_dir.is_dir():  # killed before it was created
        return {"ckpt_step": None, "last_logged": 0, "corrupt": [], "torn_lines": 0, "temps": []}
    ckpt = run_dir / "checkpoint.pt"
    if ckpt.exists():
        try:
            ckpt_step = int(load_checkpoint(ckpt)["step"])
        except CheckpointError as err:
            corrupt.append(f"checkpoint.pt: {err}")
    if (run_dir / "config.json").exists():
        try:
            read_run_config(run_dir)
        except ValueError as err:
            corrupt.append(f"config.json: {err}")
    rows = read_metrics(run_dir / "metrics.csv")
    steps = [int(r["step"]) for r in rows]
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        corrupt.append(f"metrics.csv: steps not strictly increasing: {steps}")
    torn = 0
    if (run_dir / "metrics.csv").exists():
        lines = (run_dir / "metrics.csv").read_text().splitlines()
        torn = max(0, len(lines) - 1 - len(rows)) if lines else 0
    temps = sorted(
        p.name for p in run_dir.iterdir() if p.name.startswith(".") and p.name != ".lock"
    )
    return {
        "ckpt_step": ckpt_step,
        "last_logged": steps[-1] if steps else 0,
        "corrupt": corrupt,
        "torn_lines": torn,
        "temps": temps,
    }


def lock_is_free(run_dir: Path) -> bool:
    from scorelab.training import RunLock, RunLockedError

    try:
        with RunLock(run_dir):
            return True
    except RunLockedError:
        return False


def kill_sweep(
    root: Path,
    *,
    n_kills: int,
    steps: int,
    checkpoint_every: int,
    seed: int,
    reference: bool = True,
) -> dict:
    """Kill `scorelab train` ``n_kills`` times at seeded random moments, re-running the same
    command after each kill, then let it finish; compare with an uninterrupted run.

    Kill delays are uniform on [0, 2·T/n_kills] with T the wall time of the uninterrupted run,
    so every kill lands while the run is still going, in start-up, training steps, log writes or
    checkpoint writes alike. Returns the sweep's tallies (``kills_mid_write``: kills that left a
    temp file of an atomic write behind, i.e. landed between its creation and its rename).
    """
    rng = random.Random(seed)
    run_dir, log = root / "run", root / "train.log"
    stats = {
        "kills_tried": 0, "kills_landed": 0, "runs_finished": 0, "max_steps_lost": 0,
        "steps_lost": 0, "corrupt_files": 0, "torn_metric_lines": 0, "kills_mid_write": 0,
        "config_temps_left": 0, "locks_left": 0, "tracebacks": 0, "problems": [],
    }  # fmt: skip
    ref_rows, wall = None, 4.0
    if reference:
        t0 = time.monotonic()
        assert run_forked(train_argv(root / "ref", steps, checkpoint_every), log) == 0
        wall = time.monotonic() - t0
        ref_rows = read_metrics(root / "ref" / "metrics.csv")
    argv = train_argv(run_dir, steps, checkpoint_every)
    for _ in range(n_kills):
        stats["kills_tried"] += 1
        pid = fork_main(argv, log)
        if not kill_after(pid, rng.uniform(0.0, 2.0 * wall / n_kills)):
            break  # the run finished before the kill
        stats["kills_landed"] += 1
        state = inspect_run(run_dir)
        lost = state["last_logged"] - (state["ckpt_step"] or 0)
        stats["steps_lost"] += lost
        stats["max_steps_lost"] = max(stats["max_steps_lost"], lost)
        stats["corrupt_files"] += len(state["corrupt"])
        stats["problems"] += state["corrupt"]
        stats["torn_metric_lines"] += state["torn_lines"]
        stats["kills_mid_write"] += bool(state["temps"])
        stats["locks_left"] += not lock_is_free(run_dir)
        if lost > checkpoint_every:
            stats["problems"].append(f"lost {lost} > checkpoint_every={checkpoint_every} steps")
    code = run_forked(argv, log)
    stats["tracebacks"] += "Traceback" in log.read_text()
    final = inspect_run(run_dir)
    if code == 0 and final["ckpt_step"] == steps:
        stats["runs_finished"] += 1
    else:
        stats["problems"].append(f"final run: exit {code}, step {final['ckpt_step']}")
    stats["corrupt_files"] += len(final["corrupt"])
    stats["problems"] += final["corrupt"]
    rows = read_metrics(run_dir / "metrics.csv")
    if [r["step"] for r in rows] != list(range(1, steps + 1)):
        stats["problems"].append(f"metrics.csv steps {[r['step'] for r in rows]}")
    if final["torn_lines"]:
        stats["problems"].append("metrics.csv keeps a torn line after the run finished")
    # The config.json temp is counted apart: it is a known gap (fix F6), tested on its own below.
    stats["config_temps_left"] = len(list(run_dir.glob(CONFIG_TEMP)))
    left = [t for t in final["temps"] if not re.fullmatch(r"\.config\..*\.json", t)]
    if left:
        stats["problems"].append(f"temp files left after the run finished: {left}")
    if ref_rows is not None and _curve(rows) != _curve(ref_rows):
        stats["problems"].append("loss curve differs from the uninterrupted run")
    return stats


def _curve(rows: list[dict]) -> list[tuple]:
    """The logged numbers of a run without wall-clock time (which differs between runs)."""
    return [tuple(sorted((k, v) for k, v in r.items() if k != "time")) for r in rows]


# ---------------------------------------------------------------------------------------------
# Kills
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("checkpoint_every", "n_kills", "seed"), [(1, 4, 0), (3, 3, 1)])
def test_random_kills_resume_to_the_uninterrupted_result(
    tmp_path: Path, checkpoint_every: int, n_kills: int, seed: int
) -> None:
    """Seeded random SIGKILLs (with checkpoint_every=1 many land mid-write); the same command
    run again finishes with exactly the loss curve of a run never killed."""
    stats = kill_sweep(
        tmp_path, n_kills=n_kills, steps=12, checkpoint_every=checkpoint_every, seed=seed
    )
    assert stats["problems"] == []
    assert stats["runs_finished"] == 1 and stats["corrupt_files"] == 0
    assert stats["max_steps_lost"] <= checkpoint_every
    assert stats["locks_left"] == 0 and stats["tracebacks"] == 0


def _signal(marker: Path, text: str) -> None:
    """Create ``marker`` holding ``text`` in one step: the parent polls for it and reads it at
    once, so a plain write_text could be seen empty (created, not yet written)."""
    staging = marker.with_name(marker.name + ".staging")
    staging.write_text(text)
    os.replace(staging, marker)


def _pause_in_write(prefix: str, nth: int, marker: Path):
    """A child hook: at the ``nth`` fsync of a temp file named ``prefix*`` (an atomic write of
    checkpoint.pt, config.json or metrics.csv about to be renamed into place), cut the file to
    half its size, create ``marker`` and wait to be killed."""

    def hook() -> None:
        real_fsync, seen = os.fsync, [0]

        def fsync(fd: int) -> None:
            name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
            if name.startswith(prefix):
                seen[0] += 1
                if seen[0] == nth:
                    os.ftruncate(fd, os.fstat(fd).st_size // 2)
                    _signal(marker, name)
                    time.sleep(600)
            real_fsync(fd)

        os.fsync = fsync

    return hook


def _kill_at_marker(argv: list[str], log: Path, hook, marker: Path) -> str:
    pid = fork_main(argv, log, hook)
    deadline = time.monotonic() + 120
    while not marker.exists():
        done, status = os.waitpid(pid, os.WNOHANG)
        assert not done, f"the run ended ({status}) before the write: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "the hooked write never happened"
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return marker.read_text()


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


@needs_proc
@pytest.mark.parametrize(
    ("prefix", "nth"),
    [(".checkpoint", 4), (".metrics.csv", 2)],
    ids=["checkpoint.pt", "metrics.csv-rewrite"],
)
def test_kill_in_the_middle_of_an_atomic_write(tmp_path: Path, prefix: str, nth: int) -> None:
    """Killed with a half-written temp file on disk: the real file is still the previous,
    complete one, the temp is ignored by readers and removed by the next run."""
    run_dir, log, marker = tmp_path / "run", tmp_path / "log", tmp_path / "paused"
    argv = train_argv(run_dir, 8, 1)
    temp = _kill_at_marker(argv, log, _pause_in_write(prefix, nth, marker), marker)
    assert (run_dir / temp).exists() and (run_dir / temp).stat().st_size > 0  # really torn
    state = inspect_run(run_dir)
    assert state["corrupt"] == [] and state["temps"] == [temp]
    if prefix == ".checkpoint":  # the 4th save is step 3's: step 2's checkpoint survives
        assert state["ckpt_step"] == 2 and state["last_logged"] == 3
    else:  # the 2nd rewrite widens the header for step 1's row: the header-only file survives
        assert state["ckpt_step"] == 0 and state["last_logged"] == 0
        assert (run_dir / "metrics.csv").read_text() == "step,time\n"
    assert run_forked(argv, log) == 0, log.read_text()[-2000:]
    final = inspect_run(run_dir)
    assert final["ckpt_step"] == 8 and final["temps"] == [] and final["corrupt"] == []
    assert [r["step"] for r in read_metrics(run_dir / "metrics.csv")] == list(range(1, 9))


@needs_proc
def test_kill_while_config_json_is_written_leaves_no_stray_temp(tmp_path: Path) -> None:
    run_dir, log, marker = tmp_path / "run", tmp_path / "log", tmp_path / "paused"
    argv = train_argv(run_dir, 4, 1)
    temp = _kill_at_marker(argv, log, _pause_in_write(".config", 1, marker), marker)
    assert re.fullmatch(r"\.config\..*\.json", temp) and (run_dir / temp).exists()
    assert not (run_dir / "config.json").exists()  # nothing half-written under the real name
    assert run_forked(argv, log) == 0
    assert read_run_config(run_dir)["format"] == 1
    assert inspect_run(run_dir)["temps"] == []


def _tear_metrics_row(at_step: int, marker: Path):
    """A child hook: when the row of ``at_step`` is appended, write only its first half."""

    def hook() -> None:
        from scorelab.training.logging import MetricLog

        real_append = MetricLog.append

        def append(self, row):
            if int(row["step"]) == at_step:
                text = self._format([{k: float(v) for k, v in row.items()}])
                with open(self.path, "a") as f:
                    f.write(text[: len(text) // 2])
                _signal(marker, "torn")
                time.sleep(600)
            real_append(self, row)

        MetricLog.append = append

    return hook


def test_kill_in_the_middle_of_a_metrics_row(tmp_path: Path) -> None:
    """metrics.csv is appended in place: a kill can tear its last line. Readers drop it and the
    next run rewrites the file, so the finished curve has every step exactly once."""
    run_dir, log, marker = tmp_path / "run", tmp_path / "log", tmp_path / "paused"
    argv = train_argv(run_dir, 6, 2)
    _kill_at_marker(argv, log, _tear_metrics_row(4, marker), marker)
    state = inspect_run(run_dir)
    assert state["torn_lines"] == 1 and state["last_logged"] == 3 and state["ckpt_step"] == 2
    assert run_forked(argv, log) == 0
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert [r["step"] for r in read_metrics(run_dir / "metrics.csv")] == list(range(1, 7))
    assert len(lines) == 7 and len({line.count(",") for line in lines}) == 1


def test_two_trainers_started_together_one_refused_one_finishes(tmp_path: Path) -> None:
    """Two commands racing for one run folder: exactly one takes the lock; the other exits 2
    with the lock message and writes nothing; the folder is that of one clean run."""
    run_dir = tmp_path / "run"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    argvs = [train_argv(run_dir, 60, 1), train_argv(run_dir, 60, 1, "--seed", "5")]
    pids = [fork_main(argv, log) for argv, log in zip(argvs, logs, strict=True)]
    codes = [wait_exit(pid, 300) for pid in pids]
    assert sorted(codes) == [0, 2], [log.read_text()[-1000:] for log in logs]
    loser = logs[codes.index(2)].read_text()
    assert "is in use by another scorelab process" in _error_line(loser)
    winner_seed = 0 if codes[0] == 0 else 5
    assert load_checkpoint(run_dir)["config"]["seed"] == winner_seed
    assert read_run_config(run_dir)["train"]["seed"] == winner_seed
    assert [r["step"] for r in read_metrics(run_dir / "metrics.csv")] == list(range(1, 61))
    assert inspect_run(run_dir)["temps"] == []


# ---------------------------------------------------------------------------------------------
# A real `python -m scorelab train` process: the lock, then a SIGKILL
# ---------------------------------------------------------------------------------------------


def _in_process(argv: list[str]) -> tuple[int, str]:
    """Run ``main(argv)`` here; return the exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse errors
            code = exc.code
    return code, err.getvalue()


def _error_line(stderr: str) -> str:
    """The one error line of a failed command (asserting there is exactly one, and no
    traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"scorelab( \w+)?: error: ", line)]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    return errors[0]


@pytest.mark.slow
def test_second_trainer_is_refused_and_a_killed_cli_process_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "scorelab", *train_argv(run_dir, 100_000, 2)]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while not (run_dir / "checkpoint.pt").exists() or not (run_dir / "metrics.csv").exists():
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "the first trainer never wrote a checkpoint"
            time.sleep(0.05)
        # A second command on the same folder, with other settings: refused by the lock,
        # before it writes anything.
        code, stderr = _in_process(train_argv(run_dir, 50, 1, "--seed", "7"))
        line = _error_line(stderr)
        assert code == 2
        assert f"is in use by another scorelab process (pid {first.pid})" in line
        assert "choose another --out" in line
        time.sleep(random.Random(3).uniform(0.1, 1.0))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    state = inspect_run(run_dir)
    assert state["corrupt"] == [] and lock_is_free(run_dir)
    assert state["last_logged"] - state["ckpt_step"] <= 2
    assert json.loads((run_dir / "config.json").read_text())["train"]["seed"] == 0
    # The same command again (more steps are allowed) continues from the checkpoint.
    steps = state["ckpt_step"] + 3
    code, stderr = _in_process(train_argv(run_dir, steps, 2))
    assert code == 0, stderr
    rows = read_metrics(run_dir / "metrics.csv")
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    assert load_checkpoint(run_dir)["config"]["seed"] == 0
    assert inspect_run(run_dir)["temps"] == []


# ---------------------------------------------------------------------------------------------
# Full disk, unwritable places
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 4-step run folder (copy it before damaging it)."""
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    code, stderr = _in_process(train_argv(run_dir, 4, 2))
    assert code == 0, stderr
    return run_dir


def _copy_run(tiny_run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(tiny_run, dest)
    (dest / ".lock").unlink(missing_ok=True)
    return dest


def _failing_save(fail_from_call: int):
    """A ``torch.save`` that writes part of the file, then fails like a full disk."""
    real_save, calls = torch.save, [0]

    def save(obj, f, *args, **kwargs):
        calls[0] += 1
        if calls[0] < fail_from_call:
            return real_save(obj, f, *args, **kwargs)
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(28, "No space left on device")

    return save


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(
    tmp_path: Path, tiny_run: Path, monkeypatch
) -> None:
    run_dir = _copy_run(tiny_run, tmp_path)
    before = (run_dir / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(torch, "save", _failing_save(1))
    code, stderr = _in_process(train_argv(run_dir, 8, 2))
    line = _error_line(stderr)
    assert code == 2 and "No space left on device" in line
    assert (run_dir / "checkpoint.pt").read_bytes() == before
    assert load_checkpoint(run_dir)["step"] == 4
    assert inspect_run(run_dir)["temps"] == []  # no partial file anywhere
    monkeypatch.undo()
    code, stderr = _in_process(train_argv(run_dir, 8, 2))
    assert code == 0, stderr
    assert [r["step"] for r in read_metrics(run_dir / "metrics.csv")] == list(range(1, 9))


def test_disk_full_message_names_the_file_and_the_fix(
    tmp_path: Path, tiny_run: Path, monkeypatch
) -> None:
    run_dir = _copy_run(tiny_run, tmp_path)
    monkeypatch.setattr(torch, "save", _failing_save(1))
    code, stderr = _in_process(train_argv(run_dir, 8, 2))
    line = _error_line(stderr)
    assert "checkpoint.pt" in line and re.search(r"free (some )?disk space|another --out", line)


def _limit_file_size(max_bytes: int):
    """A child hook: writes beyond ``max_bytes`` fail with EFBIG (RLIMIT_FSIZE), a real failed
    write(2) inside torch's zip writer, as on a full disk."""

    def hook() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killing signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return hook


def test_failed_checkpoint_write_leaves_no_partial_file(tmp_path: Path, tiny_run: Path) -> None:
    run_dir, log = _copy_run(tiny_run, tmp_path), tmp_path / "log"
    before = (run_dir / "checkpoint.pt").read_bytes()
    assert len(before) > 20_000
    code = run_forked(train_argv(run_dir, 8, 2), log, hook=_limit_file_size(20_000))
    assert code != 0
    assert (run_dir / "checkpoint.pt").read_bytes() == before
    assert inspect_run(run_dir)["temps"] == [] and inspect_run(run_dir)["corrupt"] == []


def test_failed_checkpoint_write_is_one_clear_line(tmp_path: Path, tiny_run: Path) -> None:
    run_dir, log = _copy_run(tiny_run, tmp_path), tmp_path / "log"
    code = run_forked(train_argv(run_dir, 8, 2), log, hook=_limit_file_size(20_000))
    text = log.read_text()
    assert code == 2 and "Traceback" not in text, text[-1500:]
    assert "checkpoint.pt" in _error_line(text)


def test_output_folder_under_a_regular_file_fails_before_any_work(tmp_path: Path) -> None:
    """Tests run as root, and root ignores permission bits (chmod 500 would not stop it), so an
    unwritable --out is made by putting it under a regular file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, stderr = _in_process(train_argv(blocker / "run", 4, 1, "--data", "no-such-data"))
    line = _error_line(stderr)
    # The folder is checked first: the bad --data given after it is never looked at.
    assert code == 2 and "cannot create the run folder" in line and "choose another --out" in line
    assert "a-file/run" in line and blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_output_folder_fails_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        code, stderr = _in_process(train_argv(out / "run", 4, 1))
    finally:
        out.chmod(0o700)
    assert code == 2 and "--out" in _error_line(stderr)


def test_sample_output_under_a_regular_file_names_out(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    argv = ["sample", "--target", "mixture-2d", "-n", "10", "--steps", "3"]
    code, stderr = _in_process([*argv, "--out", str(blocker / "s.npy")])
    assert code == 2 and "--out" in _error_line(stderr)


# ---------------------------------------------------------------------------------------------
# Damaged, foreign and old run folders
# ---------------------------------------------------------------------------------------------


def _damage(run_dir: Path, what: str) -> None:
    ckpt, config = run_dir / "checkpoint.pt", run_dir / "config.json"
    if what == "truncated-checkpoint":
        data = ckpt.read_bytes()
        ckpt.write_bytes(data[: len(data) // 3])
    elif what == "junk-checkpoint":
        ckpt.write_bytes(b"\x00" * 100)
    elif what == "empty-checkpoint":
        ckpt.write_bytes(b"")
    elif what == "old-checkpoint-format":
        state = load_checkpoint(ckpt)
        torch.save({**state, "format_version": 0, "scorelab_version": "0.0.1"}, ckpt)
    elif what == "foreign-checkpoint":
        torch.save({"weights": torch.zeros(3)}, ckpt)
    elif what == "missing-checkpoint":
        ckpt.unlink()
    elif what == "missing-config":
        config.unlink()
    elif what == "junk-config":
        config.write_text("{ not json")
    elif what == "empty-config":
        config.write_text("")
    elif what == "old-config-format":
        config.write_text(json.dumps({**json.loads(config.read_text()), "format": 0}))
    elif what == "config-without-model":
        body = json.loads(config.read_text())
        del body["model_spec"]
        config.write_text(json.dumps(body))
    else:
        raise AssertionError(what)


#: damage -> what the message must say (what is wrong, then what to do).
SAMPLE_DAMAGE = {
    "truncated-checkpoint": r"truncated or corrupt.*(delete it|re-train)",
    "junk-checkpoint": r"(truncated or corrupt|refusing).*(delete it|re-train)",
    "empty-checkpoint": r"truncated or corrupt.*(delete it|re-train)",
    "old-checkpoint-format": r"format version 0.*re-train",
    "foreign-checkpoint": r"not a scorelab training checkpoint.*re-train",
    "missing-checkpoint": r"no checkpoint yet.*re-run",
    "missing-config": r"config.json is missing.*run `scorelab train",
    "junk-config": r"config.json is corrupt.*(restore it|re-run)",
    "empty-config": r"config.json is corrupt.*(restore it|re-run)",
    "old-config-format": r"run format 0.*re-train",
    "config-without-model": r"lacks the 'model_spec' entry.*re-run",
}


@pytest.mark.parametrize("damage", sorted(SAMPLE_DAMAGE))
def test_damaged_run_folder_is_explained_to_sample(
    tmp_path: Path, tiny_run: Path, damage: str
) -> None:
    run_dir = _copy_run(tiny_run, tmp_path)
    _damage(run_dir, damage)
    out = tmp_path / "s.npy"
    code, stderr = _in_process(
        ["sample", str(run_dir), "-n", "5", "--steps", "2", "--out", str(out)]
    )
    line = _error_line(stderr)
    assert code == 2 and re.search(SAMPLE_DAMAGE[damage], line), line
    assert not out.exists()


@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        ("truncated-checkpoint", r"truncated or corrupt.*(delete it|re-train)"),
        ("junk-checkpoint", r"(truncated or corrupt|refusing).*(delete it|re-train)"),
        ("old-checkpoint-format", r"format version 0.*re-train"),
        ("foreign-checkpoint", r"not a scorelab training checkpoint.*re-train"),
    ],
)
def test_damaged_checkpoint_is_explained_to_train_resume(
    tmp_path: Path, tiny_run: Path, damage: str, pattern: str
) -> None:
    run_dir = _copy_run(tiny_run, tmp_path)
    _damage(run_dir, damage)
    damaged = (run_dir / "checkpoint.pt").read_bytes()
    code, stderr = _in_process(train_argv(run_dir, 8, 2))
    line = _error_line(stderr)
    assert code == 2 and re.search(pattern, line), line
    assert (run_dir / "checkpoint.pt").read_bytes() == damaged  # left for the user to inspect
    # The advice works: --no-resume starts over and finishes.
    code, stderr = _in_process([*train_argv(run_dir, 4, 2), "--no-resume"])
    assert code == 0, stderr
    assert load_checkpoint(run_dir)["step"] == 4


def test_damaged_config_does_not_stop_train_from_resuming(tmp_path: Path, tiny_run: Path) -> None:
    """config.json is a description written by train; the checkpoint is the truth, so a
    damaged config.json is rewritten on resume."""
    run_dir = _copy_run(tiny_run, tmp_path)
    _damage(run_dir, "junk-config")
    code, stderr = _in_process(train_argv(run_dir, 6, 2))
    assert code == 0, stderr
    assert read_run_config(run_dir)["train"]["steps"] == 6


def _write_marker(path: str) -> None:
    Path(path).write_text("code ran")


class _Payload:
    """Unpickling this calls ``_write_marker``: a stand-in for any code an attacker wants."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_write_marker, (str(self.marker),))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_crafted_pickle_checkpoint_is_refused_by_every_command(
    tmp_path: Path, tiny_run: Path, writer: str
) -> None:
    run_dir = _copy_run(tiny_run, tmp_path)
    marker = tmp_path / "code-ran"
    state = {**load_checkpoint(run_dir), "extra": {"noise": _Payload(marker)}}
    if writer == "torch.save":
        torch.save(state, run_dir / "checkpoint.pt")
    else:
        with open(run_dir / "checkpoint.pt", "wb") as f:
            pickle.dump(state, f)
    out = tmp_path / "s.npy"
    commands = [
        ["sample", str(run_dir), "-n", "5", "--steps", "2", "--out", str(out)],
        ["evaluate", str(run_dir), "-n", "20", "--steps", "2"],
        train_argv(run_dir, 8, 2),
    ]
    for argv in commands:
        code, stderr = _in_process(argv)
        assert code == 2 and "refusing to load" in _error_line(stderr)
        assert not marker.exists(), f"{argv[0]} ran code from the checkpoint"
    # The payload is live: an unsafe load does run it (so the refusals above mean something).
    if writer == "torch.save":
        torch.load(run_dir / "checkpoint.pt", weights_only=False)
    else:
        with open(run_dir / "checkpoint.pt", "rb") as f:
            pickle.load(f)  # noqa: S301 - the point of the test
    assert marker.exists()
