"""A small training job for ``tests/test_distributed.py``, run under ``torchrun``.

``python -m torch.distributed.run ... tests/ddp_driver.py RUN_DIR MARKER KILL_STEP`` trains the
tiny network of the tests; rank 1 kills itself with SIGKILL right after step ``KILL_STEP`` unless
``MARKER`` exists (it creates it first), so the fault happens once and the restart finishes.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch

from scorelab.losses import multilevel_dsm_loss
from scorelab.models import ScoreMLP
from scorelab.training import TrainConfig
from scorelab.training.distributed import cleanup, init_distributed, train_distributed

SIGMAS = (1.0, 0.5, 0.2)
CONFIG = dict(
    steps=12, batch_size=8, lr=1e-2, checkpoint_every=4, log_every=1, eval_every=6,
    ema_decay=0.9, device="cpu", seed=3,
)  # fmt: skip


def make_model() -> ScoreMLP:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return ScoreMLP(2, hidden=16, depth=1, embed_dim=8).double()


def make_data() -> torch.Tensor:
    return torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def loss_fn(model, x0, generator):
    return multilevel_dsm_loss(model, x0, SIGMAS, generator=generator)


def main(run_dir: str, marker: str, kill_step: int) -> None:
    info = init_distributed("cpu")

    def fault(row: dict) -> None:
        if info.rank == 1 and row["step"] == kill_step and not Path(marker).exists():
            Path(marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)

    config = TrainConfig(**CONFIG)
    train_distributed(
        make_model(), loss_fn, make_data(), config, run_dir=run_dir, progress=False, callback=fault
    )
    cleanup()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
