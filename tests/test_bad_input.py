"""Malformed input at every public entry point ends in one clear line, never a traceback.

Each :class:`Case` is one *kind* of bad input (an argument and a way of getting it wrong:
zero, negative, NaN/Inf, huge, wrong shape, wrong dtype, unknown name, unreadable file, ...),
with a hypothesis strategy drawing concrete values of that kind. A case passes ("clear") when

- command line (``scorelab.cli.main.main``, run in-process): exit code 2, no traceback, one
  ``scorelab CMD: error: ...`` line, last on stderr, naming the argument and a fix; training
  must be refused before the loop starts (the loop is replaced by a tripwire);
- Python API: a ``ValueError``/``TypeError`` (or, for a diverging sampler or training run, the
  documented ``FloatingPointError`` subclass) whose one-line message names the argument and a
  fix — never another exception from deep inside torch, never NaN returned.

Other outcomes are "unclear" (right exit/type, message misses the argument or the fix),
"traceback" (any other exception) and "silent" (no error: the bad value was accepted, NaN was
returned or training would have started). ``benchmarks/bench_faults.py`` counts them over many
more examples per kind. Cases known to fail carry the id of the proposed fix
(``docs/robustness-fixes.md``) and are strict xfails.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from scorelab import data as sdata
from scorelab import losses, metrics, models, samplers, sde, targets
from scorelab.cli.main import main
from scorelab.samplers import DivergenceError
from scorelab.training import TrainConfig, TrainingDivergedError, train

NAN, INF = math.nan, math.inf
#: A message "says the fix" when it has one of these: advice, the valid range, or a state whose
#: fix is self-evident (a missing or empty file, an unexpected keyword).
FIX = re.compile(
    r"must|use |choose|try |pass |give|set |lower|raise|remove|fix|need|only|rescale|swap|wait|"
    r"save |drop|check|valid|expected|invalid|required|is not|are not|at least|unexpected|"
    r"unknown|does not exist|is empty|zero rows|start ",
    re.IGNORECASE,
)
ERROR_LINE = re.compile(r"^scorelab( [\w-]+)?: error: ")


@dataclass(frozen=True)
class Case:
    """One kind of bad input. ``draw`` yields a function ``make(env)`` returning the argv
    (``where == "cli"``) or a zero-argument call (``where == "api"``); ``names`` is a regex the
    message must match (the argument, or the step size to try); ``bug`` the fix id if known
    to fail."""

    kind: str
    where: str
    draw: st.SearchStrategy
    names: str
    expect: tuple[type[BaseException], ...] = (ValueError, TypeError)
    bug: str | None = None
    needs_cuda: bool = False


class _TrainingStarted(Exception):
    """Raised instead of running the training loop: validation let the input through."""


# ---------------------------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------------------------


def cli_outcome(argv: list[str]) -> tuple[str, str]:
    """Run ``main(argv)`` with the training loop replaced by a tripwire; classify the result as
    ("ok", error line) or ("silent" | "unclear" | "traceback", what happened)."""
    err = io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stderr(err))
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(warnings.catch_warnings())
        stack.enter_context(
            mock.patch("scorelab.training.loop._train", side_effect=_TrainingStarted)
        )
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        except _TrainingStarted:
            return "silent", "accepted: the training loop would start"
        except Exception as exc:  # noqa: BLE001 - this is what the test looks for
            first = str(exc).splitlines()[0] if str(exc) else ""
            return "traceback", f"{type(exc).__name__}: {first[:300]}"
    text = err.getvalue()
    if "Traceback" in text:
        return "traceback", text[-500:]
    if code == 0:
        return "silent", "exit code 0"
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    if code != 2 or len(errors) != 1 or lines[-1] != errors[0]:
        return "unclear", f"exit {code}, stderr {text[-500:]!r}"
    return "ok", errors[0]


def _non_finite(out: Any) -> bool:
    for value in (getattr(out, "samples", None), out):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return not bool(torch.isfinite(value).all())
        if isinstance(value, float):
            return not math.isfinite(value)
    return False


def api_outcome(call: Callable[[], Any], expect: tuple[type[BaseException], ...]):
    """Call ``call()``; classify as ("ok", message) or ("silent" | "unclear" | "traceback", ...)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = call()
    except expect as exc:
        message = str(exc)
        if "\n" in message.strip() or not message:
            return "unclear", f"{type(exc).__name__} (not one line): {message[:300]!r}"
        return "ok", message
    except Exception as exc:  # noqa: BLE001 - this is what the test looks for
        first = str(exc).splitlines()[0] if str(exc) else ""
        return "traceback", f"{type(exc).__name__}: {first[:300]}"
    if _non_finite(out):
        return "silent", "returned NaN/Inf"
    return "silent", "no error"


def outcome(case: Case, make: Callable, env: dict) -> tuple[str, str]:
    """ "clear" | "unclear" | "silent" | "traceback", with the message or what went wrong."""
    if case.where == "cli":
        argv = make(env)
        category, detail = cli_outcome(argv)
    else:
        category, detail = api_outcome(make(env), case.expect)
    if category != "ok":
        return category, detail
    if not re.search(case.names, detail, re.IGNORECASE):
        return "unclear", f"does not name {case.names!r}: {detail}"
    if not FIX.search(detail):
        return "unclear", f"says no fix: {detail}"
    return "clear", detail


# ---------------------------------------------------------------------------------------------
# The environment: files of bad data, a tiny trained run, output paths
# ---------------------------------------------------------------------------------------------


def make_env(root: Path) -> dict:
    """Folders for files the cases write, a tiny finished run (for sample/evaluate) and a
    regular file to put outputs under."""
    root.mkdir(parents=True, exist_ok=True)
    files = root / "files"
    files.mkdir(exist_ok=True)
    blocker = root / "a-file"
    blocker.write_text("not a folder")
    run = root / "tiny-run"
    if not (run / "checkpoint.pt").exists():
        argv = ["train", "--data", "moons", "--out", str(run), "--n", "200", "--steps", "2"]
        argv += ["--batch-size", "32", "--hidden", "8", "--depth", "1", "--no-progress"]
        with contextlib.redirect_stderr(io.StringIO()):
            assert main(argv) == 0
    return {"root": root, "files": files, "run": run, "blocker": blocker, "count": [0]}


def _file(env: dict, suffix: str) -> Path:
    env["count"][0] += 1
    return env["files"] / f"case{env['count'][0]}{suffix}"


def write_points(env: dict, array: np.ndarray, suffix: str = ".npy") -> str:
    path = _file(env, suffix)
    if suffix == ".npy":
        np.save(path, array, allow_pickle=array.dtype == object)
    elif suffix == ".npz":
        np.savez(path, x=array)
    else:
        np.savetxt(path, np.atleast_2d(array), delimiter=",")
    return str(path)


def write_text(env: dict, text: str, suffix: str) -> str:
    path = _file(env, suffix)
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------------------------------
# Value strategies
# ---------------------------------------------------------------------------------------------

zero = st.just(0)
negative_int = st.integers(min_value=-(10**9), max_value=-1)
non_positive_int = st.integers(min_value=-(10**6), max_value=0)
negative = st.floats(min_value=-1e12, max_value=-1e-12)
non_finite = st.sampled_from([NAN, INF, -INF])
bad_positive = st.one_of(negative, non_finite, zero.map(float))  # for a value that must be > 0
huge = st.floats(min_value=1e160, max_value=1e300)
#: Unknown names (not an existing path either: `--data src` would name the repo's folder).
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
    lambda s: not Path(s).exists()
)


def flag(value: Any) -> str:
    """A value as a command-line token (``repr`` keeps nan/inf/exponents parseable)."""
    return repr(value) if isinstance(value, float) else str(value)


def _train_base(env: dict) -> list[str]:
    out = env["root"] / "train-out"
    return [
        "train",
        "--data",
        "moons",
        "--out",
        str(out),
        "--n",
        "300",
        "--steps",
        "5",
        "--no-progress",
    ]


def _out(env: dict) -> str:
    return str(env["root"] / "samples.npy")


def _sample_base(env: dict) -> list[str]:
    return ["sample", "--target", "mixture-2d", "-n", "20", "--out", _out(env)]


def train_with(option: str, values: st.SearchStrategy, *more: str) -> st.SearchStrategy:
    """argv of a small `scorelab train` run with ``--option=value``."""
    return values.map(lambda v: lambda env: [*_train_base(env), *more, f"{option}={flag(v)}"])


def sample_with(option: str, values: st.SearchStrategy, *more: str) -> st.SearchStrategy:
    return values.map(lambda v: lambda env: [*_sample_base(env), *more, f"{option}={flag(v)}"])


def train_data(make_path: Callable[[dict], str]) -> st.SearchStrategy:
    return st.just(
        lambda env: ["train", "--data", make_path(env), "--out", str(env["root"] / "d-out")]
    )


def points_with_bad_cell(draw_value: st.SearchStrategy) -> st.SearchStrategy:
    """argv training on a .npy/.csv file of points with one NaN/Inf cell somewhere."""

    @st.composite
    def build(draw):
        n, d = draw(st.integers(3, 40)), draw(st.integers(1, 4))
        row, col = draw(st.integers(0, n - 1)), draw(st.integers(0, d - 1))
        value, suffix = draw(draw_value), draw(st.sampled_from([".npy", ".csv", ".npz"]))
        x = np.random.default_rng(n).normal(size=(n, d))
        x[row, col] = value

        def make(env: dict) -> list[str]:
            path = write_points(env, x, suffix)
            return ["train", "--data", path, "--out", str(env["root"] / "d-out")]

        return make

    return build()


def api(values: st.SearchStrategy, call: Callable[[Any], Any]) -> st.SearchStrategy:
    """A strategy of zero-argument calls ``call(value)`` (the env is not needed)."""
    return values.map(lambda v: lambda env: lambda: call(v))


# ---------------------------------------------------------------------------------------------
# Objects the API cases use
# ---------------------------------------------------------------------------------------------

MIX = targets.mixture_2d()


def _score(x, sigma):
    return MIX.noised_score(x, sigma)


def _x(n: int = 16, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(n), dtype=dtype)


def _net() -> torch.nn.Module:
    return models.ScoreMLP(2, hidden=8, depth=1, generator=torch.Generator().manual_seed(0))


def _dsm(model, x0, generator):
    return losses.dsm_loss(models.as_score_fn(model), x0, 1.0, generator)


def _train(data, **cfg) -> Any:
    config = TrainConfig(**{"steps": 3, "batch_size": 8, "device": "cpu", **cfg})
    return train(_net(), _dsm, data, config, progress=False)


def _with_value(shape: tuple[int, ...], value: float) -> torch.Tensor:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    x.view(-1)[len(x.view(-1)) // 2] = value
    return x


VP = sde.get_sde("vp")
LADDER = [10.0, 1.0, 0.1]
GAUSS_MEAN, GAUSS_COV = torch.zeros(2), torch.eye(2)


# ---------------------------------------------------------------------------------------------
# The cases: command line
# ---------------------------------------------------------------------------------------------

CLI: list[Case] = [
    # train: numbers
    Case("train --steps 0", "cli", train_with("--steps", zero), r"steps"),
    Case("train --steps < 0", "cli", train_with("--steps", negative_int), r"steps"),
    Case(
        "train --steps not an integer",
        "cli",
        train_with("--steps", st.sampled_from(["1.5", "ten", "", "1e3", "0x10"])),
        r"--steps",
    ),
    Case("train --batch-size 0", "cli", train_with("--batch-size", zero), r"batch"),
    Case("train --batch-size < 0", "cli", train_with("--batch-size", negative_int), r"batch"),
    Case("train --lr 0", "cli", train_with("--lr", zero.map(float)), r"\blr\b"),
    Case("train --lr < 0", "cli", train_with("--lr", negative), r"\blr\b"),
    Case("train --lr NaN/Inf", "cli", train_with("--lr", non_finite), r"\blr\b"),
    Case("train --n <= 0", "cli", train_with("--n", non_positive_int), r"\bn\b"),
    Case("train --n 1 (one-row data)", "cli", train_with("--n", st.just(1)), r"\bn\b"),
    Case(
        "train --n 2 (one training row)",
        "cli",
        train_with("--n", st.just(2)),
        r"--n\b|training (split|point)|test.fraction",
    ),
    Case(
        "train --test-fraction outside (0, 1)",
        "cli",
        train_with("--test-fraction", st.sampled_from([0.0, 1.0, 1.5, -0.2, NAN, INF])),
        r"test.fraction",
    ),
    Case(
        "train --sigma-min 0",
        "cli",
        train_with("--sigma-min", zero.map(float)),
        r"sigma.min",
    ),
    Case(
        "train --sigma-min < 0 or NaN",
        "cli",
        train_with("--sigma-min", st.one_of(negative, st.just(NAN))),
        r"sigma.min",
    ),
    Case(
        "train --sigma-max 0",
        "cli",
        train_with("--sigma-max", zero.map(float)),
        r"sigma.max",
    ),
    Case(
        "train --sigma-max inf",
        "cli",
        train_with("--sigma-max", st.just(INF)),
        r"--sigma-max",
    ),
    Case(
        "train --sigma-min >= --sigma-max",
        "cli",
        st.floats(1.0, 1e3).map(
            lambda v: lambda env: [*_train_base(env), f"--sigma-min={v}", f"--sigma-max={v / 2}"]
        ),
        r"sigma.min",
    ),
    Case("train --hidden 0", "cli", train_with("--hidden", zero), r"hidden"),
    Case("train --hidden < 0", "cli", train_with("--hidden", negative_int), r"hidden"),
    Case("train --depth < 0", "cli", train_with("--depth", negative_int), r"depth"),
    Case(
        "train cadence <= 0",
        "cli",
        st.tuples(
            st.sampled_from(["--checkpoint-every", "--log-every", "--eval-every"]),
            non_positive_int,
        ).map(lambda a: lambda env: [*_train_base(env), f"{a[0]}={a[1]}"]),
        r"(checkpoint|log|eval).every",
    ),
    Case(
        "train --ema-decay outside [0, 1)",
        "cli",
        train_with("--ema-decay", st.sampled_from([1.0, 1.5, -0.5, NAN, INF])),
        r"ema.decay",
    ),
    Case(
        "train --grad-clip < 0 or NaN",
        "cli",
        train_with("--grad-clip", st.one_of(negative, st.just(NAN))),
        r"grad.clip",
    ),
    Case(
        "train --warmup-steps < 0 or >= steps",
        "cli",
        train_with("--warmup-steps", st.one_of(negative_int, st.integers(5, 10**6))),
        r"warmup.steps",
    ),
    Case("train --seed < 0", "cli", train_with("--seed", negative_int), r"seed"),
    Case(
        "train --weight-decay < 0 or NaN",
        "cli",
        train_with("--weight-decay", st.one_of(negative, st.just(NAN))),
        r"weight.decay",
    ),
    Case("train --nproc 0", "cli", train_with("--nproc", zero), r"nproc"),
    Case(
        "train --hidden huge (cannot allocate)",
        "cli",
        train_with("--hidden", st.integers(10**12, 10**13)),
        r"hidden|memory",
    ),
    # train: names, devices, output
    Case(
        "train --device unknown",
        "cli",
        train_with("--device", st.sampled_from(["tpu", "gpu", "cuda:x", "CPU", "mps0"])),
        r"device",
    ),
    Case("train --preset unknown", "cli", train_with("--preset", names), r"--preset"),
    Case(
        "train --preset for images on points",
        "cli",
        train_with("--preset", st.sampled_from(["digits-cpu", "mnist-subset-gpu"])),
        r"image|points",
    ),
    Case(
        "train --data unknown name",
        "cli",
        names.filter(lambda s: s not in sdata.TOY_DATASETS).map(
            lambda s: lambda env: ["train", "--data", s, "--out", str(env["root"] / "d-out")]
        ),
        r"data set",
    ),
    Case(
        "train --out under a regular file",
        "cli",
        st.just(lambda env: ["train", "--data", "moons", "--out", str(env["blocker"] / "run")]),
        r"--out",
    ),
    # train: data files
    Case("data file with NaN/Inf", "cli", points_with_bad_cell(non_finite), r"NaN or Inf"),
    Case(
        "data file empty (0 bytes)",
        "cli",
        st.sampled_from([".npy", ".npz", ".csv"]).flatmap(
            lambda s: train_data(lambda env: write_text(env, "", s))
        ),
        r"empty",
    ),
    Case(
        "data file with one row",
        "cli",
        st.sampled_from([".npy", ".csv"]).flatmap(
            lambda s: train_data(lambda env: write_points(env, np.ones((1, 2)), s))
        ),
        r"row",
    ),
    Case(
        "data file 1-D array",
        "cli",
        st.integers(2, 50).flatmap(
            lambda n: train_data(lambda env: write_points(env, np.arange(float(n))))
        ),
        r"1-D",
    ),
    Case(
        "data file 3-D array",
        "cli",
        train_data(lambda env: write_points(env, np.zeros((4, 2, 2)))),
        r"rank|2-D",
    ),
    Case(
        "data file with a non-numeric cell",
        "cli",
        st.sampled_from(["x", "1,2,3", "nan?", "--"]).flatmap(
            lambda cell: train_data(lambda env: write_text(env, f"a,b\n1,2\n3,{cell}\n", ".csv"))
        ),
        r"not a number|column|cells",
    ),
    Case(
        "data file header only",
        "cli",
        train_data(lambda env: write_text(env, "a,b\n", ".csv")),
        r"zero rows",
    ),
    Case(
        "data file of pickled objects",
        "cli",
        train_data(lambda env: write_points(env, np.array([[{"a": 1}, 2]], dtype=object))),
        r"pickle|object|readable",
    ),
    Case(
        "data file missing",
        "cli",
        train_data(lambda env: str(env["files"] / "gone.npy")),
        r"does not exist",
    ),
    Case(
        "data file unknown suffix",
        "cli",
        st.sampled_from([".txt", ".pt"]).flatmap(
            lambda s: train_data(lambda env: write_text(env, "1,2\n3,4\n", s))
        ),
        r"extension",
    ),
    # sample
    Case("sample -n <= 0", "cli", sample_with("-n", non_positive_int), r"n-samples"),
    Case(
        "sample --steps 0 (ladder sampler)",
        "cli",
        sample_with("--steps", zero, "--sampler", "edm-heun"),
        r"--steps",
    ),
    Case(
        "sample --steps < 0 (SDE sampler)",
        "cli",
        sample_with("--steps", negative_int, "--sampler", "reverse-sde"),
        r"steps",
    ),
    Case(
        "sample --step-size <= 0 or NaN/Inf",
        "cli",
        sample_with("--step-size", bad_positive, "--sampler", "langevin", "--steps", "3"),
        r"step.size",
    ),
    Case(
        "sample --step-size too large (diverges)",
        "cli",
        sample_with("--step-size", st.floats(50.0, 1e6), "--sampler", "langevin", "--steps", "200"),
        r"try step_size <= \d",
    ),
    Case(
        "sample --eps too large (annealed Langevin diverges)",
        "cli",
        sample_with(
            "--eps",
            st.floats(0.5, 1e4),
            "--sampler",
            "annealed-langevin",
            "--steps",
            "30",
            "--levels",
            "4",
        ),
        r"use eps <= \d",
    ),
    Case(
        "sample --eps <= 0 or NaN/Inf",
        "cli",
        sample_with("--eps", bad_positive, "--sampler", "annealed-langevin", "--steps", "2"),
        r"eps",
    ),
    Case(
        "sample --levels <= 1",
        "cli",
        sample_with("--levels", st.integers(-5, 1), "--sampler", "annealed-langevin"),
        r"--levels",
    ),
    Case(
        "sample --sigma-max < 0 or NaN/Inf",
        "cli",
        sample_with("--sigma-max", st.one_of(negative, non_finite), "--steps", "3"),
        r"sigma.max",
    ),
    Case(
        "sample --sigma-max 0",
        "cli",
        sample_with("--sigma-max", zero.map(float), "--steps", "3"),
        r"sigma.max",
    ),
    Case(
        "sample --sigma-max huge",
        "cli",
        sample_with("--sigma-max", huge, "--steps", "3", "--sampler", "edm-euler"),
        r"--sigma-max",
    ),
    Case(
        "sample --sigma-min >= --sigma-max",
        "cli",
        st.floats(1.0, 1e3).map(
            lambda v: lambda env: [*_sample_base(env), f"--sigma-min={v}", f"--sigma-max={v / 3}"]
        ),
        r"sigma.min",
    ),
    Case(
        "sample --rho <= 0",
        "cli",
        sample_with("--rho", st.one_of(negative, zero.map(float)), "--ladder", "karras"),
        r"rho",
    ),
    Case(
        "sample --churn < 0",
        "cli",
        sample_with("--churn", negative, "--sampler", "edm-stochastic", "--steps", "3"),
        r"churn",
    ),
    Case(
        "sample --snr <= 0",
        "cli",
        sample_with("--snr", st.one_of(negative, zero.map(float)), "--sampler", "pc"),
        r"snr",
    ),
    Case(
        "sample --lam <= 1",
        "cli",
        sample_with(
            "--lam",
            st.floats(-10, 1.0),
            "--sampler",
            "reverse-sde",
            "--sde",
            "ve-lambda",
            "--steps",
            "3",
        ),
        r"lam",
    ),
    Case(
        "sample --lam huge",
        "cli",
        sample_with(
            "--lam", huge, "--sampler", "reverse-sde", "--sde", "ve-lambda", "--steps", "3"
        ),
        r"--lam",
    ),
    Case(
        "sample --init-std < 0",
        "cli",
        sample_with("--init-std", negative, "--sampler", "langevin", "--steps", "3"),
        r"init.std",
    ),
    Case(
        "sample --init-std NaN/Inf",
        "cli",
        sample_with("--init-std", non_finite, "--sampler", "langevin", "--steps", "3"),
        r"init.std",
    ),
    Case("sample --target unknown", "cli", sample_with("--target", names), r"target"),
    Case("sample --sampler unknown", "cli", sample_with("--sampler", names), r"--sampler"),
    Case(
        "sample --out not .npy",
        "cli",
        st.sampled_from([".txt", ".npz", ".csv", ""]).map(
            lambda s: lambda env: [*_sample_base(env), f"--out={env['root'] / ('s' + s)}"]
        ),
        r"--out",
    ),
    Case(
        "sample --out under a regular file",
        "cli",
        st.just(lambda env: [*_sample_base(env), f"--out={env['blocker'] / 's.npy'}"]),
        r"--out",
    ),
    Case(
        "sample --device unknown",
        "cli",
        sample_with("--device", st.sampled_from(["tpu", "gpu", "cuda:x"]), "--steps", "3"),
        r"device",
    ),
    Case(
        "sample RUN_DIR missing",
        "cli",
        st.just(lambda env: ["sample", str(env["root"] / "no-run"), "--out", _out(env)]),
        r"run folder",
    ),
    Case(
        "sample both/neither --target and RUN_DIR",
        "cli",
        st.booleans().map(
            lambda both: (
                lambda env: (
                    ["sample", "--out", _out(env)]
                    + ([str(env["run"]), "--target", "mixture-2d"] if both else [])
                )
            )
        ),
        r"--target",
    ),
    # evaluate, run, demo
    Case(
        "evaluate -n 1",
        "cli",
        st.just(lambda env: ["evaluate", str(env["run"]), "-n", "1", "--steps", "2"]),
        r"n-samples",
    ),
    Case(
        "evaluate -n <= 0",
        "cli",
        non_positive_int.map(lambda n: lambda env: ["evaluate", str(env["run"]), f"-n={n}"]),
        r"n-samples",
    ),
    Case(
        "evaluate --distances unknown",
        "cli",
        names.map(
            lambda d: lambda env: ["evaluate", str(env["run"]), "-n", "20", f"--distances={d}"]
        ),
        r"distances",
    ),
    Case(
        "evaluate RUN_DIR missing",
        "cli",
        st.just(lambda env: ["evaluate", str(env["root"] / "no-run")]),
        r"run folder",
    ),
    Case("run unknown recipe", "cli", names.map(lambda s: lambda env: ["run", s]), r"recipe"),
    Case(
        "demo --steps < 0",
        "cli",
        negative_int.map(
            lambda v: lambda env: ["demo", "--out", str(env["root"] / "demo"), f"--steps={v}"]
        ),
        r"steps",
    ),
]

# ---------------------------------------------------------------------------------------------
# The cases: Python API
# ---------------------------------------------------------------------------------------------

API: list[Case] = [
    # targets
    Case("Gaussian mean NaN/Inf", "api",
         api(non_finite, lambda v: targets.Gaussian(torch.tensor([v, 0.0]), GAUSS_COV)), r"mean"),
    Case("Gaussian cov of the wrong shape", "api",
         api(st.integers(1, 5).filter(lambda d: d != 2),
             lambda d: targets.Gaussian(GAUSS_MEAN, torch.eye(d))), r"cov"),
    Case("Gaussian cov not positive definite", "api",
         api(st.floats(-1e6, 0.0), lambda v: targets.Gaussian(GAUSS_MEAN, v * torch.eye(2))),
         r"cov"),
    Case("mixture weights negative or wrong length", "api",
         api(st.one_of(st.tuples(negative, st.just(1.0)), st.tuples(st.just(1.0), st.just(1.0),
                                                                     st.just(1.0))),
             lambda w: targets.GaussianMixture(torch.zeros(2, 2), torch.eye(2).expand(2, 2, 2),
                                               torch.tensor(w))), r"weights"),
    Case("target x of the wrong dimension", "api",
         api(st.integers(1, 6).filter(lambda d: d != 2), lambda d: MIX.score(torch.randn(4, d))),
         r"\bx\b"),
    Case("target x without a batch dim", "api",
         api(st.integers(1, 6), lambda n: MIX.score(torch.randn(n))), r"\bx\b"),
    Case("target x of integer dtype", "api",
         api(st.sampled_from([torch.int64, torch.int32, torch.bool]),
             lambda dt: MIX.score(torch.ones(4, 2, dtype=dt))), r"\bx\b"),
    Case("target x NaN/Inf", "api",
         api(non_finite, lambda v: MIX.log_prob(_with_value((4, 2), v))), r"\bx\b"),
    Case("noised score sigma <= 0 or NaN/Inf", "api",
         api(bad_positive, lambda v: MIX.noised_score(_x(), v)), r"sigma"),
    Case("noised score sigma huge or tiny", "api",
         api(st.one_of(huge, st.floats(1e-300, 1e-60)), lambda v: MIX.noised_score(_x(), v)),
         r"sigma"),
    Case("noised score sigma of the wrong shape", "api",
         api(st.integers(2, 9).filter(lambda n: n != 16),
             lambda n: MIX.noised_score(_x(), torch.ones(n))), r"sigma"),
    Case("target sample n <= 0 or fractional", "api",
         api(st.one_of(non_positive_int, st.floats(0.1, 9.9).filter(lambda v: v != int(v))),
             lambda n: MIX.sample(n)), r"\bn\b"),
    Case("get_target unknown name", "api", api(names, targets.get_target), r"target"),
    # sde
    Case("geometric ladder sigma_max < sigma_min", "api",
         api(st.floats(1e-3, 1.0),
             lambda v: sde.geometric_sigmas(5, sigma_min=2 * v, sigma_max=v)), r"sigma_max"),
    Case("ladder endpoint NaN/Inf/<= 0", "api",
         api(bad_positive, lambda v: sde.karras_sigmas(5, sigma_min=0.01, sigma_max=v)),
         r"sigma_max"),
    Case("ladder length <= 0", "api",
         api(non_positive_int, lambda n: sde.geometric_sigmas(n, sigma_min=0.1, sigma_max=1.0)),
         r"\bn\b"),
    Case("Karras rho <= 0 or NaN", "api",
         api(st.one_of(negative, st.just(NAN)),
             lambda r: sde.karras_sigmas(5, sigma_min=0.1, sigma_max=1.0, rho=r)),
         r"rho"),
    Case("get_sde unknown name", "api", api(names, sde.get_sde), r"SDE"),
    Case("VE SDE sigma_min >= sigma_max", "api",
         api(st.floats(1.0, 100.0), lambda v: sde.get_sde("ve", sigma_min=v, sigma_max=v / 2)),
         r"sigma"),
    Case("VP SDE beta < 0 or NaN", "api",
         api(st.one_of(negative, st.just(NAN)), lambda b: sde.get_sde("vp", beta_min=b)),
         r"beta"),
    Case("score_at_time t < 0 or NaN/Inf", "api",
         api(st.one_of(negative, non_finite), lambda t: sde.score_at_time(_score, VP, _x(), t)),
         r"\bt\b"),
    # samplers
    Case("langevin step_size <= 0 or NaN/Inf", "api",
         api(bad_positive, lambda v: samplers.langevin(MIX.score, _x(), step_size=v, n_steps=2)),
         r"step_size"),
    Case("sampler n_steps <= 0 or fractional", "api",
         api(st.one_of(non_positive_int, st.floats(0.1, 9.9).filter(lambda v: v != int(v))),
             lambda n: samplers.langevin(MIX.score, _x(), step_size=0.01, n_steps=n)),
         r"n_steps"),
    Case("sampler x without a batch dim", "api",
         api(st.integers(1, 5), lambda n: samplers.edm_euler(_score, torch.randn(n), LADDER)),
         r"\bx\b"),
    Case("sampler x NaN/Inf", "api",
         api(non_finite, lambda v: samplers.dpmpp_2m(_score, _with_value((8, 2), v), LADDER)),
         r"\bx\b"),
    Case("sampler x of integer dtype", "api",
         api(st.sampled_from([torch.int64, torch.int32]),
             lambda dt: samplers.edm_heun(_score, torch.ones(4, 2, dtype=dt), LADDER)), r"\bx\b"),
    Case("langevin step too large (diverges)", "api",
         api(st.floats(20.0, 1e8),
             lambda v: samplers.langevin(MIX.score, _x(), step_size=v, n_steps=200)),
         r"try step_size <= \d", expect=(DivergenceError,)),
    Case("annealed Langevin eps > 2 sigma_min^2 (diverges)", "api",
         api(st.floats(1.0, 1e6),
             lambda e: samplers.annealed_langevin(
                 _score, _x(), sde.geometric_sigmas(4, sigma_min=0.01, sigma_max=10),
                 n_steps_each=50, eps=e)),
         r"use eps <= \d", expect=(DivergenceError,)),
    Case("sigma ladder not descending", "api",
         api(st.lists(st.floats(0.01, 10.0), min_size=2, max_size=6, unique=True).map(sorted),
             lambda s: samplers.annealed_langevin(_score, _x(), s, n_steps_each=2, eps=1e-5)),
         r"sigmas"),
    Case("sigma ladder empty, <= 0 or NaN", "api",
         api(st.sampled_from([[], [1.0, 0.0], [1.0, -0.5], [NAN, 0.1], [INF, 1.0]]),
             lambda s: samplers.dpmpp_3m(_score, _x(), s)), r"sigmas"),
    Case("sigma ladder huge", "api",
         api(huge, lambda v: samplers.edm_euler(_score, _x(), [v, 1.0])), r"sigma"),
    Case("annealed step_rule unknown", "api",
         api(names, lambda r: samplers.annealed_langevin(_score, _x(), LADDER, n_steps_each=1,
                                                         eps=1e-5, step_rule=r)), r"step_rule"),
    Case("reverse_sde n_steps <= 0", "api",
         api(non_positive_int, lambda n: samplers.reverse_sde(_score, _x(), VP, n_steps=n)),
         r"n_steps"),
    Case("reverse_sde t_end outside (0, T)", "api",
         api(st.one_of(negative, st.floats(1.0, 1e6), non_finite),
             lambda t: samplers.reverse_sde(_score, _x(), VP, n_steps=3, t_end=t)), r"t_end"),
    Case("probability_flow method unknown", "api",
         api(names, lambda m: samplers.probability_flow(_score, _x(), VP, method=m)), r"method"),
    Case("predictor_corrector snr <= 0", "api",
         api(st.one_of(negative, zero.map(float)),
             lambda s: samplers.predictor_corrector(_score, _x(), VP, n_steps=2, snr=s)), r"snr"),
    Case("edm_stochastic s_churn < 0 or NaN", "api",
         api(st.one_of(negative, st.just(NAN)),
             lambda c: samplers.edm_stochastic(_score, _x(), LADDER, s_churn=c)), r"churn"),
    Case("score returns the wrong shape", "api",
         api(st.sampled_from([(16, 1), (16,), (1, 2), (16, 2, 1)]),
             lambda shape: samplers.edm_euler(lambda x, s: torch.zeros(shape), _x(), LADDER)),
         r"score"),
    Case("score returns NaN", "api",
         api(non_finite, lambda v: samplers.dpmpp_2m(lambda x, s: torch.full_like(x, v), _x(),
                                                     LADDER)),
         r"diverged", expect=(DivergenceError,)),
    Case("moment_matched_prior mean/cov NaN/Inf", "api",
         api(non_finite, lambda v: samplers.moment_matched_prior(torch.tensor([v, 0.0]),
                                                                 torch.eye(2), 1.0, 4)),
         r"mean|cov"),
    Case("moment_matched_prior cov of the wrong shape", "api",
         api(st.integers(1, 5).filter(lambda d: d != 2),
             lambda d: samplers.moment_matched_prior(GAUSS_MEAN, torch.eye(d), 1.0, 4)), r"cov"),
    Case("sampler generator not a torch.Generator", "api",
         api(st.sampled_from([0, 123, "seed", 1.5]),
             lambda g: samplers.langevin(MIX.score, _x(), step_size=0.01, n_steps=2,
                                         generator=g)), r"generator"),
    # losses
    Case("dsm_loss sigma <= 0 or NaN/Inf", "api",
         api(bad_positive, lambda v: losses.dsm_loss(_score, _x(), v)), r"sigma"),
    Case("dsm_loss sigma huge or tiny", "api",
         api(st.one_of(huge, st.floats(1e-300, 1e-60)), lambda v: losses.dsm_loss(_score, _x(), v)),
         r"sigma"),
    Case("dsm_loss x0 integer or no batch dim", "api",
         api(st.sampled_from([torch.ones(4, 2, dtype=torch.long), torch.randn(5)]),
             lambda x0: losses.dsm_loss(_score, x0, 1.0)), r"x0"),
    Case("dsm_loss x0 NaN/Inf (network score)", "api",
         api(non_finite, lambda v: losses.dsm_loss(models.as_score_fn(_net()),
                                                   _with_value((8, 2), v), 1.0)),
         r"x0"),
    Case("multilevel_dsm_loss weighting/mode unknown", "api",
         api(st.tuples(st.sampled_from(["weighting", "mode"]), names),
             lambda a: losses.multilevel_dsm_loss(_score, _x(), LADDER, **{a[0]: a[1]})),
         r"weighting|mode"),
    Case("multilevel_dsm_loss sigmas empty, <= 0 or NaN", "api",
         api(st.sampled_from([[], [1.0, 0.0], [-1.0], [NAN]]),
             lambda s: losses.multilevel_dsm_loss(_score, _x(), s)), r"sigmas"),
    Case("continuous_dsm_loss sde is not an SDE", "api",
         api(st.sampled_from(["vp", None, 3, {"T": 1.0}]),
             lambda s: losses.continuous_dsm_loss(_score, _x(), s)), r"\bsde\b"),
    Case("sliced_score_matching n_projections <= 0", "api",
         api(non_positive_int, lambda n: losses.sliced_score_matching_loss(MIX.score, _x(),
                                                                           n_projections=n)),
         r"n_projections"),
    # metrics
    Case("distance between sets of different dims", "api",
         api(st.integers(1, 5).filter(lambda d: d != 2),
             lambda d: metrics.sliced_wasserstein(_x(), torch.randn(8, d))), r"\bD\b|shape"),
    Case("distance of a set with NaN/Inf", "api",
         api(non_finite, lambda v: metrics.energy_distance(_with_value((8, 2), v), _x())),
         r"\bx\b"),
    Case("distance of an empty set", "api",
         api(st.sampled_from(["sliced_wasserstein", "mmd", "energy_distance"]),
             lambda f: getattr(metrics, f)(torch.randn(0, 2), _x())), r"\bx\b"),
    Case("MMD of one sample", "api",
         api(st.just(1), lambda n: metrics.mmd(torch.randn(n, 2), _x())), r"\bx\b"),
    Case("MMD bandwidth <= 0 or NaN", "api",
         api(st.one_of(negative, st.just(NAN), zero.map(float)),
             lambda b: metrics.mmd(_x(), _x(8), bandwidths=[b])), r"bandwidth"),
    Case("measure_against_law unknown distance", "api",
         api(names, lambda d: metrics.measure_against_law(
             _x(20), lambda n, g: torch.randn(n, 2, generator=g), distances=(d,))),
         r"distance"),
    # data
    Case("load_dataset unknown name", "api",
         api(names.filter(lambda s: s not in sdata.TOY_DATASETS), sdata.load_dataset),
         r"data set"),
    Case("load_dataset n <= 0", "api",
         api(non_positive_int, lambda n: sdata.load_dataset("moons", n)), r"\bn\b"),
    Case("toy data noise < 0 or NaN", "api",
         api(st.one_of(negative, st.just(NAN)), lambda v: sdata.moons(10, noise=v)), r"noise"),
    Case("train_test_split fraction outside (0, 1)", "api",
         api(st.sampled_from([0.0, 1.0, 2.0, -0.1, NAN]),
             lambda f: sdata.train_test_split(_x(), test_fraction=f)), r"test_fraction"),
    Case("train_test_split of one row", "api",
         api(st.just(1), lambda n: sdata.train_test_split(torch.randn(n, 2))), r"\bx\b|row"),
    Case("choose_sigmas one row or NaN", "api",
         api(st.sampled_from([torch.randn(1, 2), torch.full((5, 2), NAN)]), sdata.choose_sigmas),
         r"\bx\b"),
    # models
    Case("build_model unknown name", "api",
         api(names, lambda n: models.build_model({"name": n})), r"model name"),
    Case("build_model bad kwargs", "api",
         api(st.sampled_from([{"dim": 2, "foo": 1}, {"dim": 0}, {"dim": 2, "hidden": -3}]),
             lambda kw: models.build_model({"name": "score-mlp", "kwargs": kw})),
         r"foo|dim|hidden"),
    Case("network x of the wrong dimension", "api",
         api(st.integers(3, 6), lambda d: _net()(torch.randn(4, d), torch.ones(4))), r"\bx\b"),
    Case("network x of another dtype", "api",
         api(st.just(torch.float64),
             lambda dt: _net()(torch.randn(4, 2, dtype=dt), torch.ones(4, dtype=dt))),
         r"dtype"),
    Case("network sigma <= 0 or NaN", "api",
         api(bad_positive, lambda v: _net()(torch.randn(4, 2), torch.full((4,), v))), r"sigma"),
    # training
    Case("TrainConfig bad value", "api",
         api(st.sampled_from([("lr", -1.0), ("steps", 2.5), ("optimizer", "sgd"),
                              ("batch_size", 0), ("ema_decay", 1.0), ("lr_schedule", "x")]),
             lambda kv: TrainConfig(**{kv[0]: kv[1]})), r"lr|steps|optimizer|batch|ema|sched"),
    Case("train data NaN/Inf", "api", api(non_finite, lambda v: _train(_with_value((8, 2), v))),
         r"train_data"),
    Case("train data empty, no batch dim or not a tensor", "api",
         api(st.sampled_from([torch.randn(0, 2), torch.randn(8), [[1.0, 2.0]]]), _train),
         r"train_data"),
    Case("train lr huge (diverges)", "api",
         api(st.floats(1e25, 1e35), lambda lr: _train(_x(), lr=lr, grad_clip=None, steps=30)),
         r"lr=", expect=(TrainingDivergedError,)),
    # devices (needs a GPU: a CPU generator or network with CUDA tensors)
    Case("sampler generator on another device", "api",
         api(st.just(0), lambda _: samplers.langevin(MIX.score, _x().cuda(), step_size=0.01,
                                                     n_steps=2, generator=torch.Generator())),
         r"generator", needs_cuda=True),
    Case("network on another device than x", "api",
         api(st.just(0), lambda _: _net()(torch.randn(4, 2).cuda(), torch.ones(4).cuda())),
         r"device", needs_cuda=True),
]  # fmt: skip

ALL = CLI + API


def params(cases: list[Case]) -> list:
    out = []
    for case in cases:
        marks = []
        if case.needs_cuda:
            marks.append(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))
        if case.bug:
            marks.append(
                pytest.mark.xfail(strict=True, reason=f"see fix {case.bug} in {FIXES_FILE}")
            )
        out.append(pytest.param(case, id=case.kind, marks=marks))
    return out


FIXES_FILE = "docs/robustness-fixes.md"
# No shrinking: a failing case is reported as drawn (shrinking can take hundreds of calls).
FAST = dict(
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    return make_env(tmp_path_factory.mktemp("bad-input"))


def test_there_are_at_least_30_kinds() -> None:
    assert len({c.kind for c in ALL}) == len(ALL) >= 30
    assert len(CLI) >= 30 and len(API) >= 30


@pytest.mark.parametrize("case", params(CLI))
@settings(max_examples=2, **FAST)
@given(data=st.data())
def test_command_line_bad_input_is_one_clear_line(case: Case, data, env: dict) -> None:
    make = data.draw(case.draw, label="argv")
    category, detail = outcome(case, make, env)
    assert category == "clear", f"{case.kind}: {category}: {detail} (argv {make(env)})"


@pytest.mark.parametrize("case", params(API))
@settings(max_examples=6, **FAST)
@given(data=st.data())
def test_python_api_bad_input_is_a_clear_error(case: Case, data, env: dict) -> None:
    make = data.draw(case.draw, label="call")
    category, detail = outcome(case, make, env)
    assert category == "clear", f"{case.kind}: {category}: {detail}"


# ---------------------------------------------------------------------------------------------
# Diverging samplers name a step size that works
# ---------------------------------------------------------------------------------------------


def test_annealed_langevin_divergence_names_an_eps_that_works() -> None:
    """ε ≲ 2·σ_min² is the stability limit of annealed Langevin: the error names such an ε,
    and running again with it gives finite samples."""
    sigmas = sde.geometric_sigmas(5, sigma_min=0.05, sigma_max=10.0)
    x0 = 10.0 * _x(256)
    with pytest.warns(UserWarning, match="likely diverge"):
        with pytest.raises(DivergenceError) as err:
            samplers.annealed_langevin(_score, x0, sigmas, n_steps_each=50, eps=0.1,
                                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    found = re.search(r"use eps <= ([0-9.e+-]+)", str(err.value))
    assert found and "eps=0.1" in str(err.value)
    eps = float(found.group(1))
    assert eps <= 2 * 0.05**2 * 1.01
    out = samplers.annealed_langevin(
        _score, x0, sigmas, n_steps_each=50, eps=eps, generator=torch.Generator().manual_seed(0)
    )
    assert bool(torch.isfinite(out.samples).all())


def test_langevin_divergence_message_leads_to_a_stable_step() -> None:
    """Following the advice 'try step_size <= X' repeatedly reaches a step that does not
    diverge, in a few rounds (the exact Gaussian limit is τ < 2/λ_max(P))."""
    step, rounds = 1e4, 0
    while True:
        try:
            samplers.langevin(MIX.score, _x(64), step_size=step, n_steps=300)
            break
        except DivergenceError as err:
            step = float(re.search(r"try step_size <= ([0-9.e+-]+)", str(err)).group(1))
            rounds += 1
            assert rounds <= 8, str(err)
    assert rounds >= 1


def test_command_line_divergence_is_one_line_naming_the_eps(env: dict) -> None:
    argv = [*_sample_base(env), "--sampler", "annealed-langevin", "--eps", "5", "--steps", "20"]
    category, line = cli_outcome(argv)
    assert category == "ok" and re.search(r"eps=5 is too large.*use eps <= \d", line), line
