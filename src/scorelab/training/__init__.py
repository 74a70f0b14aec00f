"""Training machinery: config, resumable loop, EMA, atomic checkpoints, metric log, run lock."""

from scorelab.training.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from scorelab.training.config import TrainConfig, resolve_device
from scorelab.training.ema import create_ema
from scorelab.training.lock import RunLock, RunLockedError
from scorelab.training.logging import MetricLog, read_metrics
from scorelab.training.loop import (
    EpochSampler,
    TrainingDivergedError,
    TrainResult,
    dataset_loss,
    is_main_process,
    lr_factor,
    make_optimizer,
    make_scheduler,
    train,
    train_step,
)

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "EpochSampler",
    "MetricLog",
    "RunLock",
    "RunLockedError",
    "TrainConfig",
    "TrainResult",
    "TrainingDivergedError",
    "create_ema",
    "dataset_loss",
    "is_main_process",
    "latest_checkpoint",
    "load_checkpoint",
    "lr_factor",
    "make_optimizer",
    "make_scheduler",
    "read_metrics",
    "resolve_device",
    "save_checkpoint",
    "train",
    "train_step",
]
