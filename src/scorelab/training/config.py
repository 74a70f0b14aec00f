"""Training settings as one plain, validated dataclass, and the choice of device."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import torch

from scorelab.utils import check_int, check_positive

OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("constant", "cosine", "step", "linear-warmup-cosine")

#: Fields that may differ between a checkpoint and the run that resumes it: they change how often
#: things are written, how long the run lasts and where it runs, not the optimisation itself.
RESUMABLE_FIELDS = frozenset(
    {"steps", "checkpoint_every", "log_every", "eval_every", "keep_checkpoints", "device"}
)

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; plain values only, so it round-trips through JSON.

    ``lr_schedule``: ``"constant"``; ``"cosine"`` (half-cosine from ``lr`` to 0 over the steps
    after warm-up); ``"step"`` (multiply by ``lr_gamma`` every ``lr_step_every`` steps);
    ``"linear-warmup-cosine"`` (``"cosine"`` that requires ``warmup_steps > 0``). A positive
    ``warmup_steps`` ramps the learning rate linearly from ``lr / warmup_steps`` to ``lr`` first,
    for every schedule. ``grad_clip=None`` disables clipping, ``ema_decay=None`` disables the EMA.
    """

    steps: int = 4000
    batch_size: int = 256
    lr: float = 2e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    lr_step_every: int = 1000
    lr_gamma: float = 0.5
    grad_clip: float | None = 1.0
    ema_decay: float | None = 0.999
    checkpoint_every: int = 500
    keep_checkpoints: bool = False
    log_every: int = 50
    eval_every: int = 500
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        for name, value in _validated(self).items():
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a plain JSON-able dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from a dict; unknown keys raise ``ValueError`` naming them."""
        if not isinstance(data, dict):
            raise TypeError(f"config must be a dict; got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown training setting(s) {unknown}; valid settings are {sorted(known)}"
            )
        return cls(**data)


def _validated(cfg: TrainConfig) -> dict[str, Any]:
    """Check every field of ``cfg`` and return the normalised values (ints as int, etc.)."""
    out: dict[str, Any] = {
        "steps": check_int(cfg.steps, "steps"),
        "batch_size": check_int(cfg.batch_size, "batch_size"),
        "lr": check_positive(cfg.lr, "lr"),
        "weight_decay": check_positive(cfg.weight_decay, "weight_decay", strict=False),
        "warmup_steps": check_int(cfg.warmup_steps, "warmup_steps", minimum=0),
        "lr_step_every": check_int(cfg.lr_step_every, "lr_step_every"),
        "lr_gamma": check_positive(cfg.lr_gamma, "lr_gamma"),
        "checkpoint_every": check_int(cfg.checkpoint_every, "checkpoint_every"),
        "log_every": check_int(cfg.log_every, "log_every"),
        "eval_every": check_int(cfg.eval_every, "eval_every"),
        "seed": check_int(cfg.seed, "seed", minimum=0),
    }
    if cfg.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {cfg.optimizer!r}")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}; got {cfg.lr_schedule!r}")
    if cfg.lr_schedule == "linear-warmup-cosine" and out["warmup_steps"] == 0:
        raise ValueError(
            "lr_schedule 'linear-warmup-cosine' needs warmup_steps > 0; set warmup_steps "
            "or use lr_schedule 'cosine'"
        )
    if out["warmup_steps"] >= out["steps"]:
        raise ValueError(
            f"warmup_steps must be < steps ({out['steps']}); got {out['warmup_steps']}"
        )
    if out["lr_gamma"] > 1:
        raise ValueError(f"lr_gamma must be in (0, 1]; got {cfg.lr_gamma!r}")
    if cfg.grad_clip is not None:
        out["grad_clip"] = check_positive(cfg.grad_clip, "grad_clip (or None to disable)")
    if cfg.ema_decay is not None:
        decay = check_positive(cfg.ema_decay, "ema_decay (or None to disable)")
        if decay >= 1:
            raise ValueError(f"ema_decay must be in (0, 1), e.g. 0.999; got {cfg.ema_decay!r}")
        out["ema_decay"] = decay
    if not isinstance(cfg.keep_checkpoints, bool):
        raise TypeError(f"keep_checkpoints must be True or False; got {cfg.keep_checkpoints!r}")
    if not isinstance(cfg.device, str) or not _DEVICE_PATTERN.match(cfg.device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {cfg.device!r}")
    return out


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a
    ``torch.device``; raise ``ValueError`` if CUDA is asked for but not usable here."""
    spec = str(device)
    if not _DEVICE_PATTERN.match(spec):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got {device!r}")
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {spec!r} was requested but CUDA is not available on this machine "
                "(CPU-only torch build or no GPU); use device 'cpu' or 'auto'"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device {spec!r} was requested but only {count} CUDA device(s) exist; "
                f"use cuda:0 .. cuda:{count - 1}"
            )
    return dev
