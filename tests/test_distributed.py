"""Tests of data-parallel training and sampling (``scorelab.training.distributed``) on gloo/CPU.

Two ranks run in forked processes with a file rendezvous (no ports). The exact reference is the
single-process ``train`` with the same seed and the global batch size: with every rank drawing the
same global batch and noise, 2 ranks × B/2 rows must give the same losses and weights up to float
rounding, and both ranks must hold bit-identical weights.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from scorelab.losses import multilevel_dsm_loss, sliced_score_matching_loss
from scorelab.models import ScoreMLP
from scorelab.training import TrainConfig, load_checkpoint, read_metrics, train
from scorelab.training.distributed import (
    DistInfo,
    ShardedLoss,
    _warn_shared_store,
    cleanup,
    init_distributed,
    launch,
    launch_command,
    sample_distributed,
    shard_bounds,
    train_distributed,
)
from scorelab.training.recipe2d import noise_conditional_loss

HERE = Path(__file__).resolve().parent
SIGMAS = (1.0, 0.5, 0.2)
TOL = dict(rtol=1e-11, atol=1e-12)  # float64: only the order of sums differs between layouts


def make_model(num_classes: int | None = None) -> ScoreMLP:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return ScoreMLP(2, hidden=16, depth=1, embed_dim=8, num_classes=num_classes).double()


def make_data(n: int = 64, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def dsm_random(model, x0, g):
    return multilevel_dsm_loss(model, x0, SIGMAS, generator=g)


def dsm_sum(model, x0, g):  # the network sees the batch stacked 3 times: (3·B, 2)
    return multilevel_dsm_loss(model, x0, SIGMAS, mode="sum", generator=g)


def edm_conditional(model, x0, g, y=None):  # class labels y of the batch, label dropout
    return noise_conditional_loss(model, x0, g, sigma_min=0.02, sigma_max=5.0, y=y, p_uncond=0.3)


def case_labels(name: str, n: int = 64) -> torch.Tensor | None:
    """Class labels of the training data for the conditional case (else ``None``)."""
    return torch.arange(n) % 3 if name == "conditional" else None


def case_model(name: str) -> ScoreMLP:
    return make_model(3 if name == "conditional" else None)


def ssm(model, x0, g):  # double backward through the network
    return sliced_score_matching_loss(model, x0, sigma=0.5, generator=g)


def config(**kw) -> TrainConfig:
    base = dict(
        steps=10, batch_size=8, lr=1e-2, checkpoint_every=5, log_every=1, eval_every=5,
        ema_decay=0.9, grad_clip=1.0, device="cpu", seed=3,
    )  # fmt: skip
    return TrainConfig(**{**base, **kw})


#: (name, loss, settings): an even split, an uneven one (7 = 4 + 3 rows), a double-backward loss.
CASES = [
    ("random", dsm_random, dict()),
    ("sum-uneven", dsm_sum, dict(batch_size=7, steps=6)),
    ("ssm", ssm, dict(batch_size=4, steps=4, ema_decay=None)),
    ("conditional", edm_conditional, dict(batch_size=7, steps=6)),
]


def draw(m: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(m, 3, generator=generator)


def _rank_main(rank: int, world_size: int, tmp: Path) -> None:
    """One rank: train every case, sample, save what it got for the parent to compare."""
    torch.set_num_threads(1)
    rendezvous = f"file://{tmp}/rendezvous"  # a hung collective fails after timeout_s
    info = init_distributed("cpu", init_method=rendezvous, rank=rank, world_size=2, timeout_s=120)
    out = {"info": info, "pid": os.getpid()}
    for name, loss, kw in CASES:
        run_dir = tmp / "run" if name == "random" else None
        test_data = make_data(12, seed=5) if name == "random" else None
        res = train_distributed(
            case_model(name), loss, make_data(), config(**kw), run_dir=run_dir,
            test_data=test_data, progress=False, labels=case_labels(name),
        )  # fmt: skip
        out[name] = {
            "history": res.history,
            "model": res.model.state_dict(),
            "ema": None if res.ema_model is None else res.ema_model.state_dict(),
        }
    sample_distributed(draw, 10, tmp / "samples.npy", seed=7, chunk_size=3)
    torch.save(out, tmp / f"rank{rank}.pt")
    cleanup()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> tuple[Path, list[dict]]:
    """Run ``_rank_main`` on 2 gloo ranks once for the module; return the folder and results."""
    tmp = tmp_path_factory.mktemp("ddp")
    # DDP's first construction imports torch._dynamo (seconds per process); import it once here
    # so the forked ranks inherit it. Fork also spares re-importing torch and scorelab.
    import torch._dynamo  # noqa: F401

    mp.start_processes(_rank_main, args=(2, tmp), nprocs=2, start_method="fork")
    return tmp, [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(2)]


def _assert_close_states(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], **TOL)


@pytest.mark.parametrize("name, loss, kw", CASES, ids=[c[0] for c in CASES])
def test_two_ranks_of_half_batches_equal_one_process(two_ranks, name, loss, kw) -> None:
    _, results = two_ranks
    ref = train(case_model(name), loss, make_data(), config(**kw), progress=False,
                test_data=make_data(12, seed=5) if name == "random" else None,
                labels=case_labels(name))  # fmt: skip
    got = results[0][name]
    assert [r["step"] for r in got["history"]] == list(range(1, config(**kw).steps + 1))
    for key in ("train_loss", "grad_norm", "test_loss", "test_loss_ema"):
        mine = [r[key] for r in got["history"] if key in r]
        assert mine == pytest.approx([r[key] for r in ref.history if key in r], rel=1e-11)
    _assert_close_states(got["model"], ref.model.state_dict())
    if ref.ema_model is not None:
        _assert_close_states(got["ema"], ref.ema_model.state_dict())
    # Both ranks hold exactly the same weights, EMA and loss curve.
    other = results[1][name]
    for part in ("model", "ema"):
        if got[part] is not None:
            assert all(torch.equal(got[part][k], other[part][k]) for k in got[part])
    assert [r["train_loss"] for r in got["history"]] == [r["train_loss"] for r in other["history"]]


def test_rank_zero_writes_the_run_folder(two_ranks) -> None:
    tmp, results = two_ranks
    assert [r["info"] for r in results] == [
        DistInfo(0, 2, 0, torch.device("cpu"), "gloo"),
        DistInfo(1, 2, 1, torch.device("cpu"), "gloo"),
    ]
    state = load_checkpoint(tmp / "run")
    assert state["step"] == 10
    _assert_close_states(state["model"], results[0]["random"]["model"])
    rows = read_metrics(tmp / "run" / "metrics.csv")
    assert [r["step"] for r in rows] == list(range(1, 11))  # one row per step: one writer
    assert [r["train_loss"] for r in rows] == [
        r["train_loss"] for r in results[0]["random"]["history"]
    ]
    assert int((tmp / "run" / ".lock").read_text()) == results[0]["pid"]  # rank 0 held the lock


def test_distributed_samples_equal_single_process_file(two_ranks, tmp_path: Path) -> None:
    tmp, _ = two_ranks
    single = sample_distributed(draw, 10, tmp_path / "one.npy", seed=7, chunk_size=3, device="cpu")
    two = np.load(tmp / "samples.npy")
    assert two.shape == (10, 3) and two.dtype == np.float32
    np.testing.assert_array_equal(two, np.load(single))
    assert len(np.unique(two[:, 0])) == 10  # chunks use different seeds: no repeated rows


@pytest.mark.slow
def test_killed_rank_restarts_under_torchrun_and_finishes(tmp_path: Path) -> None:
    """torchrun --max-restarts=1: rank 1 dies by SIGKILL after step 6; both ranks restart, resume
    from the step-4 checkpoint and finish; the result equals an uninterrupted single process."""
    sys.path.insert(0, str(HERE))
    import ddp_driver

    run_dir, marker = tmp_path / "run", tmp_path / "killed"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "--max-restarts=1", str(HERE / "ddp_driver.py"), str(run_dir), str(marker), "6",
    ]  # fmt: skip
    # A fresh rendezvous store per attempt: with torchrun's shared one, 3 of 8 restarts here read
    # the dead attempt's addresses and failed or hung (pytorch/pytorch#135712).
    env = {**os.environ, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert marker.exists(), "rank 1 was never killed"
    state = load_checkpoint(run_dir)
    cfg = TrainConfig(**ddp_driver.CONFIG)
    assert state["step"] == cfg.steps
    assert [r["step"] for r in read_metrics(run_dir / "metrics.csv")] == list(range(1, 13))
    ref = train(ddp_driver.make_model(), ddp_driver.loss_fn, ddp_driver.make_data(), cfg,
                progress=False)  # fmt: skip
    _assert_close_states(state["model"], ref.model.state_dict())
    ema = {k.removeprefix("module."): v for k, v in state["ema"].items() if k != "n_averaged"}
    _assert_close_states(ema, ref.ema_model.state_dict())
    assert not list(run_dir.glob(".checkpoint*"))


# --- single process: no launcher -----------------------------------------------------------------


def test_without_launcher_everything_is_single_process(monkeypatch, tmp_path: Path) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    info = init_distributed("cpu")
    assert info == DistInfo(0, 1, 0, torch.device("cpu"), None)
    assert info.is_main and not info.distributed
    cfg = config(steps=3)
    got = train_distributed(make_model(), dsm_random, make_data(), cfg, progress=False)
    ref = train(make_model(), dsm_random, make_data(), cfg, progress=False)
    assert all(torch.equal(got.model.state_dict()[k], v) for k, v in ref.model.state_dict().items())


def test_init_refuses_bad_settings(monkeypatch) -> None:
    with pytest.raises(ValueError, match="rank and world_size together"):
        init_distributed("cpu", init_method="file:///nonexistent")
    with pytest.raises(ValueError, match="rank must be < world_size"):
        init_distributed("cpu", init_method="file:///nonexistent", rank=2, world_size=2)
    monkeypatch.setenv("RANK", "zero")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="RANK must be an integer"):
        init_distributed("cpu")


@pytest.mark.parametrize("n, world", [(8, 2), (7, 2), (10, 3), (3, 4), (1, 1)])
def test_shard_bounds_partition_like_tensor_split(n: int, world: int) -> None:
    bounds = [shard_bounds(n, r, world) for r in range(world)]
    expected = [len(t) for t in torch.arange(n).tensor_split(world)]
    assert [hi - lo for lo, hi in bounds] == expected
    assert [b[0] for b in bounds[1:]] == [b[1] for b in bounds[:-1]]  # contiguous
    assert bounds[0][0] == 0 and bounds[-1][1] == n


def test_sharded_loss_refuses_what_it_cannot_split() -> None:
    x0 = make_data(4)
    with pytest.raises(ValueError, match="batch_size \\(4\\) must be >= the number of processes"):
        ShardedLoss(dsm_random, 0, 8)(make_model(), x0, torch.Generator())
    odd = lambda model, x, g: model(x[:3], torch.ones(3, dtype=x.dtype)).sum(1)  # noqa: E731
    with pytest.raises(ValueError, match="batch of 4 rows .* on 3 rows"):
        ShardedLoss(odd, 0, 2)(make_model(), x0, torch.Generator())
    net = make_model()
    captured = lambda model, x, g: dsm_random(net, x, g)  # noqa: E731
    with pytest.raises(ValueError, match="through its model argument"):
        ShardedLoss(captured, 0, 2)(make_model(), x0, torch.Generator())
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        ShardedLoss("dsm", 0, 2)


def test_sample_file_is_seeded_and_checked(tmp_path: Path) -> None:
    a = np.load(sample_distributed(draw, 7, tmp_path / "a.npy", seed=1, chunk_size=2, device="cpu"))
    b = np.load(sample_distributed(draw, 7, tmp_path / "b.npy", seed=1, chunk_size=2, device="cpu"))
    c = np.load(sample_distributed(draw, 7, tmp_path / "c.npy", seed=2, chunk_size=2, device="cpu"))
    assert a.shape == (7, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b.npy", "c.npy"]  # no temp
    with pytest.raises(ValueError, match="must end in .npy"):
        sample_distributed(draw, 3, tmp_path / "x.csv", device="cpu")
    with pytest.raises(ValueError, match="m = 2 rows; got \\(1, 3\\)"):
        sample_distributed(lambda m, g: draw(1, g), 2, tmp_path / "y.npy", device="cpu")
    assert not (tmp_path / "y.npy").exists()


def test_launch_command_and_refusals(monkeypatch) -> None:
    cmd = launch_command(2, ["train", "--steps", 5], max_restarts=1)
    assert cmd == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "--max-restarts=1", "-m", "scorelab", "train", "--steps", "5",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="nproc must be >= 1"):
        launch_command(0, ["train"])
    with pytest.raises(ValueError, match="must not contain --nproc"):
        launch(2, ["train", "--nproc", "2"])
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="inside a torchrun job"):
        launch(2, ["train"])


def test_restarts_with_a_shared_store_are_warned_about(monkeypatch) -> None:
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "1")
    with pytest.warns(UserWarning, match="TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1"):
        _warn_shared_store()
    monkeypatch.setenv("TORCHELASTIC_MAX_RESTARTS", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_shared_store()


def test_every_command_leaves_the_process_group_it_ran_in(tmp_path: Path) -> None:
    """The command line destroys the process group before exit (a gloo group left alive at
    exit aborted one torchrun rank in 25 on a loaded machine), and still does on an error."""
    import torch.distributed as dist

    from scorelab.cli.main import main

    for argv, code in ((["-n", "20"], 0), (["-n", "0"], 2)):
        dist.init_process_group(
            "gloo", init_method=(tmp_path / f"store{code}").as_uri(), rank=0, world_size=1
        )
        out = tmp_path / f"out{code}.npy"
        assert main(["sample", "--target", "ring-8", *argv, "--out", str(out)]) == code
        assert not dist.is_initialized()
        assert out.exists() == (code == 0)


def test_scorelab_sample_under_torchrun_spreads_classes_and_matches_one_process(
    tmp_path: Path,
) -> None:
    """``scorelab sample --class all`` under torchrun (2 ranks) writes the single-process files;
    so does a plain ``sample`` smaller than one chunk per rank (rank 1 draws nothing)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    cli = [sys.executable, "-m", "scorelab.cli.main", "sample", "--target", "ring-8"]
    run2 = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "scorelab.cli.main", "sample", "--target", "ring-8"]  # fmt: skip
    for extra in (["--class", "all", "-n", "30"], ["-n", "100"]):
        for name, command in (("one", cli), ("two", run2)):
            out = tmp_path / f"{name}-{len(extra)}.npy"
            done = subprocess.run(
                [*command, *extra, "--out", str(out)],
                capture_output=True, text=True, timeout=240, env=env,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]
            assert done.stderr.count('"n_evals": 10') == 1  # the summary from rank 0 only
        one, two = (np.load(tmp_path / f"{name}-{len(extra)}.npy") for name in ("one", "two"))
        np.testing.assert_array_equal(one, two)
    labels = np.load(tmp_path / "two-4.labels.npy")
    np.testing.assert_array_equal(labels, np.repeat(np.arange(8), 30))


def test_scorelab_inpaint_under_torchrun_spreads_chunks_and_matches_one_process(
    tmp_path: Path,
) -> None:
    """130 inputs = chunks of 64, 64 and 2: two ranks fill them (rank 1 the second) and write the
    file a single process writes."""
    x = np.random.default_rng(0).normal(size=(130, 2)).astype(np.float32) * 3
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "m.npy", np.array([1.0, 0.0], dtype=np.float32))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    args = [
        "-m",
        "scorelab.cli.main",
        "inpaint",
        "--target",
        "ring-8",
        "--input",
        str(tmp_path / "x.npy"),
        "--mask",
        str(tmp_path / "m.npy"),
        "--completions",
        "2",
    ]
    commands = {
        "one": [sys.executable, *args],
        "two": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2", *args],
    }  # fmt: skip
    for name, command in commands.items():
        out = tmp_path / f"{name}.npy"
        done = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True,
                              timeout=240, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    one, two = np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy")
    assert one.shape == (260, 2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one[:, 0], np.repeat(x[:, 0], 2))  # known values kept
