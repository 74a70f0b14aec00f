"""`scorelab train --objective …`: each of the seeds' objectives trains from the command line,
lowers its loss, records itself and its matching sampler in the run, and samples."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scorelab.cli.main import main
from scorelab.samplers import RECOMMENDED
from scorelab.training import read_metrics
from scorelab.training.objectives import OBJECTIVES


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_objective_trains_lowers_its_loss_and_samples(objective, tmp_path, capsys) -> None:
    run = tmp_path / "run"
    argv = ["train", "--data", "moons", "--out", str(run), "--n", "800", "--steps", "120"]
    argv += ["--objective", objective, "--log-every", "10", "--no-progress", "--seed", "1"]
    assert main(argv) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["noise"]["objective"] == objective
    expected = OBJECTIVES[objective].sampler
    assert config["sampler"] == (expected or RECOMMENDED["points"]).to_dict()
    rows = [r for r in read_metrics(run / "metrics.csv") if "train_loss" in r]
    first = np.mean([r["train_loss"] for r in rows[:3]])
    last = np.mean([r["train_loss"] for r in rows[-3:]])
    assert last < first, (objective, first, last)
    out = tmp_path / "x.npy"
    assert main(["sample", str(run), "-n", "200", "--out", str(out), "--steps", "20"]) == 0
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["sampler"] == config["sampler"]["sampler"] and summary["n_evals"] > 0
    x = torch.from_numpy(np.load(out))
    assert x.shape == (200, 2) and bool(torch.isfinite(x).all())
    # The samples land on the moons' scale, not in the wide start (|x| of the data ≤ about 2.5).
    assert float(x.abs().max()) < 6.0


def test_unknown_objective_is_one_clear_line(tmp_path, capsys) -> None:
    argv = ["train", "--data", "moons", "--out", str(tmp_path / "r"), "--objective", "nope"]
    with pytest.raises(SystemExit):
        main(argv)
    assert "--objective" in capsys.readouterr().err
