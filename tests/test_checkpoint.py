"""Tests of checkpoint files: atomic writes, safe loading, clear errors on damaged or old files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from scorelab import __version__
from scorelab.training import (
    FORMAT_VERSION,
    CheckpointError,
    TrainConfig,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    train,
)
from scorelab.training.checkpoint import STATE_KEYS


def make_state(step: int = 5) -> dict:
    net = nn.Linear(3, 2).double()
    return {
        "step": step,
        "model": net.state_dict(),
        "ema": None,
        "optimizer": torch.optim.Adam(net.parameters()).state_dict(),
        "scheduler": {"last_epoch": step},
        "rng": {"noise": torch.Generator().manual_seed(1).get_state()},
        "config": TrainConfig().to_dict(),
        "model_spec": {"name": "score-mlp", "kwargs": {"hidden": [16, 16]}},
        "extra": {"sigmas": [1.0, 0.5], "data": "moons"},
        "loop": {"elapsed_s": 1.5},
    }


def test_round_trip_fills_versions_and_leaves_no_temp_files(tmp_path: Path) -> None:
    state = make_state()
    path = save_checkpoint(tmp_path / "checkpoint.pt", state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    loaded = load_checkpoint(path)
    assert loaded["format_version"] == FORMAT_VERSION and loaded["scorelab_version"] == __version__
    assert set(STATE_KEYS) <= set(loaded)
    assert loaded["extra"] == state["extra"] and loaded["model_spec"] == state["model_spec"]
    for key, value in state["model"].items():
        assert torch.equal(loaded["model"][key], value)
    # The file is a plain weights-only checkpoint for anyone with torch.
    assert torch.load(path, weights_only=True)["step"] == 5
    assert load_checkpoint(tmp_path)["step"] == 5  # a run folder works too


def test_failed_save_keeps_previous_checkpoint(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, make_state(step=1))
    real_save = torch.save

    def crash_midway(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as fh:  # half-written file, then the "crash"
            fh.truncate(os.path.getsize(f) // 2)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, make_state(step=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert load_checkpoint(path)["step"] == 1


def test_unplain_values_are_refused_when_saving(tmp_path: Path) -> None:
    state = make_state()
    with pytest.raises(TypeError, match=r"state\['extra'\]\['fn'\] is a function"):
        save_checkpoint(tmp_path / "c.pt", {**state, "extra": {"fn": make_state}})
    with pytest.raises(TypeError, match=r"state\['extra'\]\['x'\] is a float64"):
        save_checkpoint(tmp_path / "c.pt", {**state, "extra": {"x": np.float64(1.0)}})
    assert not list(tmp_path.iterdir())


def test_truncated_empty_and_junk_files_give_clear_errors(tmp_path: Path) -> None:
    good = save_checkpoint(tmp_path / "good.pt", make_state())
    data = good.read_bytes()
    cases = {"truncated.pt": data[: len(data) // 2], "empty.pt": b"", "junk.pt": b"not a ckpt" * 9}
    for name, payload in cases.items():
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(CheckpointError, match="corrupt.*delete it") as err:
            load_checkpoint(tmp_path / name)
        assert name in str(err.value)


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint file at .*nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        load_checkpoint(tmp_path)
    assert latest_checkpoint(tmp_path) is None


def _write_marker(path: str) -> None:
    Path(path).write_text("code ran")


class _Payload:
    """Unpickling this calls ``_write_marker``: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_write_marker, (str(self.marker),))


@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_crafted_pickle_payload_is_refused_without_running(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "code-ran"
    evil = {**make_state(), "format_version": FORMAT_VERSION, "extra": {"x": _Payload(marker)}}
    path = tmp_path / "evil.pt"
    if writer == "torch":
        torch.save(evil, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(evil, f)
    # torch's format names the callable (refused as code); a raw pickle is refused as unsafe.
    pattern = r"refusing to load .*code objects.*_write_marker" if writer == "torch" else "refusing"
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(path)
    assert not marker.exists()
    # Sanity check of the test itself: an unsafe load does run the payload.
    if writer == "torch":
        torch.load(path, weights_only=False)
        assert marker.exists()


def test_other_format_version_and_foreign_files(tmp_path: Path) -> None:
    old = {**make_state(), "format_version": 0, "scorelab_version": "0.0.1"}
    torch.save(old, tmp_path / "old.pt")
    pattern = r"format version 0, written by scorelab 0\.0\.1; this is scorelab .*re-train"
    with pytest.raises(CheckpointError, match=pattern):
        load_checkpoint(tmp_path / "old.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a scorelab training checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    partial = {"format_version": FORMAT_VERSION, "step": 3}
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="lacks the entries.*'model'"):
        load_checkpoint(tmp_path / "partial.pt")


def test_latest_checkpoint_prefers_latest_then_highest_history(tmp_path: Path) -> None:
    for step in (2, 10, 9):
        save_checkpoint(tmp_path / f"checkpoint-step{step}.pt", make_state(step))
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-step10.pt"
    save_checkpoint(tmp_path / "checkpoint.pt", make_state(11))
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint.pt"


def test_training_writes_history_and_resumes_from_a_corrupt_folder_clearly(tmp_path: Path) -> None:
    net = nn.Linear(2, 2).double()
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def loss_fn(model, x0, generator):
        return ((model(x0) - x0) ** 2).sum(dim=1)

    cfg = TrainConfig(
        steps=6, batch_size=4, checkpoint_every=3, keep_checkpoints=True, device="cpu"
    )
    train(net, loss_fn, x, cfg, run_dir=tmp_path, extra={"sigmas": [1.0]}, progress=False)
    names = sorted(p.name for p in tmp_path.glob("checkpoint*.pt"))
    assert names == [
        "checkpoint-step0.pt",
        "checkpoint-step3.pt",
        "checkpoint-step6.pt",
        "checkpoint.pt",
    ]
    state = load_checkpoint(tmp_path / "checkpoint-step3.pt")
    assert state["step"] == 3 and state["extra"] == {"sigmas": [1.0]}
    assert state["config"] == cfg.to_dict()

    (tmp_path / "checkpoint.pt").write_bytes(b"\x00" * 100)
    cfg_more = TrainConfig(**{**cfg.to_dict(), "steps": 9})
    with pytest.raises(CheckpointError, match="corrupt.*checkpoint-step"):
        train(net, loss_fn, x, cfg_more, run_dir=tmp_path, progress=False)
