"""Tests of the training loop, config, EMA, metric log and run lock (tiny MLP, CPU, float64)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from scorelab.training import (
    MetricLog,
    RunLock,
    RunLockedError,
    TrainConfig,
    TrainingDivergedError,
    create_ema,
    load_checkpoint,
    lr_factor,
    read_metrics,
    resolve_device,
    train,
)

SIGMA = 0.5
SCALE = 1.5  # data ~ N(0, SCALE² I); its noised score is exact: -x / (SCALE² + SIGMA²)


def make_model(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()


def make_data(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return SCALE * torch.randn(n, 2, generator=g, dtype=torch.float64)


def dsm(model: nn.Module, x0: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Single-σ denoising score matching, σ²-weighted, one value per example."""
    z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    return ((SIGMA * model(x0 + SIGMA * z) + z) ** 2).sum(dim=1)


def config(**kw) -> TrainConfig:
    base = dict(
        steps=60, batch_size=16, lr=1e-2, checkpoint_every=15, log_every=1, eval_every=20,
        ema_decay=0.9, grad_clip=1.0, device="cpu", seed=3,
    )  # fmt: skip
    return TrainConfig(**{**base, **kw})


def without_time(rows):
    return [{k: v for k, v in r.items() if k != "time"} for r in rows]


class Stop(Exception):
    pass


def stop_at(step: int):
    def callback(info):
        if info["step"] == step:
            raise Stop

    return callback


# --- resume --------------------------------------------------------------------------------------


def test_resume_reproduces_uninterrupted_run(tmp_path: Path) -> None:
    train_x, test_x = make_data(40, 0), make_data(24, 1)
    kw = dict(test_data=test_x, progress=False)
    straight = train(make_model(), dsm, train_x, config(), run_dir=tmp_path / "a", **kw)

    # Stopped at step 37 (after the checkpoint at 30), then resumed by a new call with a network
    # initialised differently: everything must come from the checkpoint.
    with pytest.raises(Stop):
        train(
            make_model(), dsm, train_x, config(), run_dir=tmp_path / "b", callback=stop_at(37), **kw
        )
    assert load_checkpoint(tmp_path / "b")["step"] == 30
    assert max(r["step"] for r in read_metrics(tmp_path / "b" / "metrics.csv")) == 37
    resumed = train(make_model(seed=99), dsm, train_x, config(), run_dir=tmp_path / "b", **kw)

    assert resumed.step == straight.step == 60
    assert [r["step"] for r in resumed.history] == list(range(1, 61))
    assert without_time(resumed.history) == without_time(straight.history)
    assert without_time(read_metrics(tmp_path / "b" / "metrics.csv")) == without_time(
        straight.history
    )
    assert "test_loss" in straight.history[19] and "test_loss_ema" in straight.history[59]
    for net_a, net_b in [(straight.model, resumed.model), (straight.ema_model, resumed.ema_model)]:
        for p, q in zip(net_a.state_dict().values(), net_b.state_dict().values(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)
    # The EMA is a real average, not the raw weights.
    assert not torch.allclose(straight.model[0].weight, straight.ema_model[0].weight)


def test_run_without_folder_matches_run_with_folder(tmp_path: Path) -> None:
    x = make_data(40, 0)
    cfg = config(steps=12)
    a = train(make_model(), dsm, x, cfg, progress=False)
    b = train(make_model(), dsm, x, cfg, run_dir=tmp_path, progress=False)
    assert without_time(a.history) == without_time(b.history)
    assert a.run_dir is None and b.run_dir == tmp_path


def test_resume_may_extend_steps_but_not_change_settings(tmp_path: Path) -> None:
    x = make_data(40, 0)
    extra = {"sigmas": [1.0, 0.5]}
    train(make_model(), dsm, x, config(steps=10), run_dir=tmp_path, extra=extra, progress=False)
    more = train(make_model(), dsm, x, config(steps=14), run_dir=tmp_path, progress=False)
    assert more.step == 14 and [r["step"] for r in more.history] == list(range(1, 15))
    assert load_checkpoint(tmp_path)["extra"] == extra  # kept when not given again
    with pytest.raises(ValueError, match=r"lr=0\.01 \(saved\) vs 0\.02 \(now\)"):
        train(make_model(), dsm, x, config(steps=20, lr=2e-2), run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="already at step 14.*steps >= 14"):
        train(make_model(), dsm, x, config(steps=5), run_dir=tmp_path, progress=False)
    # resume=False starts over and replaces the log.
    fresh = train(
        make_model(), dsm, x, config(steps=3), run_dir=tmp_path, resume=False, progress=False
    )
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.csv")] == [1, 2, 3]
    assert fresh.step == 3 and load_checkpoint(tmp_path)["step"] == 3


def test_resume_refuses_another_model(tmp_path: Path) -> None:
    x = make_data(40, 0)
    spec = {"name": "mlp", "kwargs": {"hidden": 16}}
    train(make_model(), dsm, x, config(steps=3), run_dir=tmp_path, model_spec=spec, progress=False)
    other = {"name": "mlp", "kwargs": {"hidden": 32}}
    with pytest.raises(ValueError, match="same model"):
        train(
            make_model(),
            dsm,
            x,
            config(steps=5),
            run_dir=tmp_path,
            model_spec=other,
            progress=False,
        )
    wider = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 2)).double()
    with pytest.raises(ValueError, match="does not fit this model.*model_spec"):
        train(wider, dsm, x, config(steps=5), run_dir=tmp_path, progress=False)


# --- divergence ----------------------------------------------------------------------------------


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    calls = {"n": 0}

    def loss_fn(model, x0, generator):
        loss = dsm(model, x0, generator)
        calls["n"] += model.training
        return loss * math.nan if calls["n"] == 12 else loss

    model = make_model()
    cfg = config(steps=50, checkpoint_every=5)
    with pytest.raises(TrainingDivergedError, match="diverged at step 12") as err:
        train(model, loss_fn, make_data(40, 0), cfg, run_dir=tmp_path, progress=False)
    assert "last good checkpoint (step 10)" in str(err.value) and "--lr" in str(err.value)
    assert isinstance(err.value, FloatingPointError)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    # The optimiser did not step on the bad loss: the weights in memory are finite too.
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert max(r["step"] for r in read_metrics(tmp_path / "metrics.csv")) == 11


# --- lr schedule, evaluation hook, input checks --------------------------------------------------


def test_lr_schedules() -> None:
    cos = config(steps=100, lr_schedule="cosine")
    assert lr_factor(0, cos) == 1.0 and lr_factor(50, cos) == pytest.approx(0.5)
    assert lr_factor(100, cos) == pytest.approx(0.0, abs=1e-12)
    warm = config(steps=110, lr_schedule="linear-warmup-cosine", warmup_steps=10)
    assert [lr_factor(s, warm) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_factor(60, warm) == pytest.approx(0.5)
    step = config(lr_schedule="step", lr_step_every=10, lr_gamma=0.5)
    assert [lr_factor(s, step) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_factor(37, config(lr_schedule="constant")) == 1.0


def test_logged_lr_follows_schedule_and_evaluate_hook_is_logged(tmp_path: Path) -> None:
    cfg = config(steps=40, lr_schedule="step", lr_step_every=10, lr_gamma=0.5, eval_every=20)
    test_x = make_data(64, 1)
    exact = -test_x / (SCALE**2 + SIGMA**2)
    seen = []

    def score_error(net, step):
        seen.append((step, net))
        with torch.no_grad():
            return {"score_error": float(((net(test_x) - exact) ** 2).sum(1).mean())}

    before = score_error(make_model(), 0)["score_error"]
    res = train(make_model(), dsm, make_data(40, 0), cfg, evaluate=score_error, progress=False)
    assert [r["lr"] for r in res.history] == [1e-2 * 0.5 ** ((s - 1) // 10) for s in range(1, 41)]
    assert [s for s, _ in seen[1:]] == [20, 40] and seen[-1][1] is res.ema_model
    errors = [r["score_error"] for r in res.history if "score_error" in r]
    assert len(errors) == 2 and errors[-1] == score_error(res.ema_model, 40)["score_error"]
    assert errors[-1] < 0.5 * before  # the network learned the exact score


def test_bad_inputs_are_refused() -> None:
    model, x = make_model(), make_data(8, 0)
    with pytest.raises(ValueError, match=r"one loss per example, shape \(4,\)"):
        train(model, lambda m, x0, g: dsm(m, x0, g).mean(), x, config(batch_size=4), progress=False)
    with pytest.raises(ValueError, match=r"train_data must have shape \(N, \*D\)"):
        train(model, dsm, x[:, 0], config(), progress=False)
    with pytest.raises(ValueError, match="train_data holds non-finite"):
        train(model, dsm, x.clone().fill_(math.inf), config(), progress=False)
    with pytest.raises(TypeError, match="TrainConfig"):
        train(model, dsm, x, {"steps": 3}, progress=False)


# --- config --------------------------------------------------------------------------------------


def test_config_round_trips_through_json() -> None:
    cfg = TrainConfig(steps=7, optimizer="adamw", weight_decay=0.01, grad_clip=None, ema_decay=None)
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"steps": 0}, ValueError, "steps must be >= 1"),
        ({"batch_size": 2.5}, TypeError, "batch_size must be an integer"),
        ({"lr": -1.0}, ValueError, "lr must be a finite number > 0"),
        ({"optimizer": "sgd"}, ValueError, "optimizer must be one of"),
        ({"lr_schedule": "exp"}, ValueError, "lr_schedule must be one of"),
        ({"lr_schedule": "linear-warmup-cosine"}, ValueError, "needs warmup_steps > 0"),
        ({"warmup_steps": 10, "steps": 10}, ValueError, "warmup_steps must be < steps"),
        ({"grad_clip": 0.0}, ValueError, "grad_clip"),
        ({"ema_decay": 1.0}, ValueError, "ema_decay must be in"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"device": "gpu"}, ValueError, "device must be 'auto'"),
        ({"keep_checkpoints": "yes"}, TypeError, "keep_checkpoints"),
        ({"lr_gamma": 2.0}, ValueError, "lr_gamma must be in"),
    ],
)
def test_config_validation(kwargs, error, pattern) -> None:
    with pytest.raises(error, match=pattern):
        TrainConfig(**kwargs)


def test_config_from_dict_names_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown training setting\(s\) \['epochs', 'lrr'\]"):
        TrainConfig.from_dict({"lrr": 1e-3, "epochs": 3, "steps": 5})


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available.*use device 'cpu'"):
            resolve_device("cuda:0")


# --- EMA -----------------------------------------------------------------------------------------


def test_ema_matches_hand_computed_average() -> None:
    decay = 0.8
    net = nn.Linear(3, 2).double()
    weights = [net.weight.detach().clone()]
    ema = create_ema(net, decay)
    expected = weights[0]
    for k in range(3):
        with torch.no_grad():
            net.weight.add_(torch.full_like(net.weight, float(k + 1)))
        ema.update_parameters(net)
        expected = decay * expected + (1 - decay) * net.weight.detach()
    torch.testing.assert_close(ema.module.weight, expected, rtol=1e-14, atol=1e-14)
    assert not torch.allclose(ema.module.weight, net.weight)
    assert not ema.module.training and not ema.module.weight.requires_grad


# --- metric log ----------------------------------------------------------------------------------


def test_metric_log_widens_header_truncates_on_resume_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    log = MetricLog(path)
    log.append({"step": 1, "time": 0.5, "train_loss": 0.1 + 0.2})
    log.append(
        {
            "step": 2,
            "time": 1.0,
            "train_loss": torch.tensor(1 / 3, dtype=torch.float64),
            "test_loss": 2.0,
        }
    )
    log.append({"step": 3, "time": 1.5, "train_loss": 1e-300})
    rows = read_metrics(path)
    assert rows[0] == {"step": 1, "time": 0.5, "train_loss": 0.1 + 0.2}  # exact float round trip
    assert rows[1]["test_loss"] == 2.0 and "test_loss" not in rows[2]
    assert path.read_text().splitlines()[0] == "step,time,train_loss,test_loss"
    with open(path, "a") as f:
        f.write("4,2.0,0.12")  # a row cut short by a kill
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]
    resumed = MetricLog(path, keep_until=2)
    resumed.append({"step": 3, "time": 9.0, "train_loss": 7.0})
    assert [(r["step"], r["train_loss"]) for r in read_metrics(path)][1:] == [(2, 1 / 3), (3, 7.0)]
    with pytest.raises(ValueError, match="'step'"):
        resumed.append({"time": 1.0})
    with pytest.raises(TypeError, match="metric 'x' must be a number"):
        resumed.append({"step": 4, "x": "high"})


# --- lock and killed runs ------------------------------------------------------------------------


def test_second_lock_in_same_process_is_refused(tmp_path: Path) -> None:
    with RunLock(tmp_path / "run") as held:
        assert held.held
        pattern = rf"in use by another scorelab process \(pid {os.getpid()}\).*--out"
        with pytest.raises(RunLockedError, match=pattern):
            RunLock(tmp_path / "run").acquire()
        with pytest.raises(RunLockedError):
            train(make_model(), dsm, make_data(8, 0), config(steps=2), run_dir=tmp_path / "run")
    with RunLock(tmp_path / "run"):  # released on exit
        pass


_LOCK_HOLDER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("lock", sys.argv[1])
lock = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lock)  # lock.py alone: no torch import, so the child starts fast
held = lock.RunLock(sys.argv[2]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_lock_held_by_another_process_is_refused_and_freed_when_it_dies(tmp_path: Path) -> None:
    import scorelab.training.lock as lock_module

    run_dir = tmp_path / "run"
    args = [sys.executable, "-c", _LOCK_HOLDER, lock_module.__file__, str(run_dir)]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"pid {child.pid}"):
            RunLock(run_dir).acquire()
    finally:
        child.kill()  # SIGKILL: no clean-up code runs in the child
        child.wait()
        child.stdout.close()
    with RunLock(run_dir) as lock:  # the OS released the dead holder's lock
        assert lock.held


_CHILD = """
import sys, torch
from torch import nn
from scorelab.training import TrainConfig, train
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()
x = 1.5 * torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
def dsm(model, x0, g):
    z = torch.randn(x0.shape, generator=g, dtype=x0.dtype)
    return ((0.5 * model(x0 + 0.5 * z) + z) ** 2).sum(dim=1)
cfg = TrainConfig(steps=10**9, batch_size=16, checkpoint_every=1, log_every=1, device="cpu")
train(model, dsm, x, cfg, run_dir=sys.argv[1], progress=False)
"""


@pytest.mark.slow
def test_killed_run_leaves_loadable_checkpoint_and_frees_lock(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_CHILD), str(run_dir)])
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoint.pt").exists() or load_checkpoint(run_dir)["step"] < 3:
            assert child.poll() is None, "the training subprocess ended early"
            assert time.monotonic() < deadline, "the training subprocess made no progress"
            time.sleep(0.05)
        with pytest.raises(RunLockedError, match=f"pid {child.pid}"):
            RunLock(run_dir).acquire()
    finally:
        child.kill()  # SIGKILL at an arbitrary moment, possibly mid-write
        child.wait()
    step = load_checkpoint(run_dir)["step"]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double()
    cfg = TrainConfig(steps=step + 2, batch_size=16, checkpoint_every=1, log_every=1, device="cpu")
    res = train(model, dsm, make_data(40, 0), cfg, run_dir=run_dir, progress=False)
    assert res.step == step + 2
    assert [r["step"] for r in res.history] == list(range(1, step + 3))
    assert not list(run_dir.glob(".*.tmp")) and not list(run_dir.glob(".checkpoint*"))


def test_train_command_on_a_file_uses_all_rows_and_centres_the_network(tmp_path: Path) -> None:
    """A point file far from the origin: every row is used (no default n), and the default
    network is centred on the training mean, so the untrained score is −(x − mean)/(σ² + σ_d²)."""
    from scorelab.cli.main import main
    from scorelab.models import as_score_fn, build_model
    from scorelab.runs import read_run_config

    points = torch.randn(40, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    points = points * torch.tensor([2.0, 0.5], dtype=torch.float64) + torch.tensor([300.0, -50.0])
    np.save(tmp_path / "far.npy", points.numpy())
    run = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "far.npy"), "--out", str(run), "--steps", "2"]
    assert main([*argv, "--no-progress"]) == 0
    config = read_run_config(run)
    assert config["data"]["n_train"] == 32 and config["data"]["n_test"] == 8
    kwargs = config["model_spec"]["kwargs"]
    mean = torch.tensor(kwargs["data_mean"], dtype=torch.float64)
    assert 250 < float(mean[0]) < 350 and -60 < float(mean[1]) < -40
    x, sigma = points[:4].float(), torch.full((4,), 0.5)
    untrained = as_score_fn(build_model(config["model_spec"]))(x, sigma).double()
    expected = -(x.double() - mean) / (0.25 + kwargs["sigma_data"] ** 2)
    assert torch.allclose(untrained, expected, rtol=1e-4, atol=1e-5)
    assert 0.5 < kwargs["sigma_data"] < 2.0  # RMS of the per-coordinate stds (≈ 1.46), not 175
