"""A short, resumable training loop for score networks: minibatches by epoch permutations, Adam or
AdamW, a learning-rate schedule, gradient clipping, an EMA of the weights, train/test losses and a
caller's metrics (e.g. the score error against an exact score), a CSV log and atomic checkpoints.

The loop is kept in small pieces so a distributed wrapper can reuse them: ``EpochSampler`` is the
one place batches are drawn, ``train_step`` the one place the optimiser steps, and every file is
written only where ``is_main_process()``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from scorelab.training.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    history_checkpoints,
    history_name,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from scorelab.training.config import RESUMABLE_FIELDS, TrainConfig, resolve_device
from scorelab.training.ema import create_ema
from scorelab.training.lock import RunLock
from scorelab.training.logging import MetricLog
from scorelab.utils import atomic_writer, check_finite

#: ``loss_fn(model, x0, generator) -> (B,)`` per-example losses; the loop takes the mean. When
#: ``train`` is given ``labels`` it calls ``loss_fn(model, x0, generator, y=y)`` with the batch's
#: labels ``y`` ``(B,)`` (class-conditional training).
LossFn = Callable[..., Tensor]
#: ``evaluate(model, step) -> {name: value}``, called with the EMA network when there is one.
EvaluateFn = Callable[[nn.Module, int], Mapping[str, float]]
METRICS_NAME = "metrics.csv"
_RESERVED = ("step", "time", "epoch", "lr", "train_loss", "grad_norm", "test_loss", "test_loss_ema")
# Streams of random numbers derived from the one --seed: batches, training noise, test noise.
_BATCH_STREAM, _NOISE_STREAM, _TEST_STREAM = 0, 1, 2


class TrainingDivergedError(FloatingPointError):
    """The loss or the gradients became NaN/Inf; the last good checkpoint is kept on disk."""


@dataclass
class TrainResult:
    """What ``train`` returns: the trained network (eval mode), its EMA copy (or ``None``), the
    metric rows of the whole run (earlier rows included after a resume), the last step and the
    run folder."""

    model: nn.Module
    ema_model: nn.Module | None
    history: list[dict[str, float]]
    step: int
    run_dir: Path | None


def is_main_process() -> bool:
    """True unless running under ``torch.distributed`` as a rank other than 0."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def derive_seed(seed: int, stream: int, rank: int = 0) -> int:
    """A 63-bit seed for one random stream of a run, well mixed by ``numpy.random.SeedSequence``."""
    return int(np.random.SeedSequence([seed, stream, rank]).generate_state(1, np.uint64)[0] >> 1)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up, then the schedule."""
    warm = config.warmup_steps
    factor = min(1.0, (step + 1) / warm) if warm else 1.0
    if config.lr_schedule in ("cosine", "linear-warmup-cosine"):
        progress = min(1.0, max(0.0, (step - warm) / max(1, config.steps - warm)))
        factor *= 0.5 * (1.0 + math.cos(math.pi * progress))
    elif config.lr_schedule == "step":
        factor *= config.lr_gamma ** (step // config.lr_step_every)
    return factor


def make_optimizer(params: Any, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019) with the config's lr and decay."""
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> LambdaLR:
    """A ``LambdaLR`` following ``lr_factor``; its state is plain numbers (checkpoint-safe)."""
    return LambdaLR(optimizer, lambda step: lr_factor(step, config))


class EpochSampler:
    """Draw minibatch indices from successive random permutations of ``range(n)`` (sampling
    without replacement within an epoch), with its own generator so a resumed run draws the
    same batches. A batch larger than ``n`` spans several permutations."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def next_indices(self, batch_size: int) -> Tensor:
        """Return the next ``batch_size`` indices ``(batch_size,)`` (CPU, int64)."""
        chunks, need = [], batch_size
        while need > 0:
            if self.pos == len(self.perm):
                self.perm = torch.randperm(self.n, generator=self.generator)
                self.pos = 0
            take = min(need, len(self.perm) - self.pos)
            chunks.append(self.perm[self.pos : self.pos + take])
            self.pos += take
            need -= take
        return torch.cat(chunks)

    def state_dict(self) -> dict[str, Any]:
        """Generator state, current permutation and position (tensors and ints)."""
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"].to(torch.long), int(state["pos"])


def train_step(
    model: nn.Module,
    loss_fn: LossFn,
    x0: Tensor,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    grad_clip: float | None,
    y: Tensor | None = None,
) -> tuple[float, float]:
    """One optimiser step on the mean of ``loss_fn(model, x0, generator)`` ``(B,)`` (with
    ``y=y``, the batch's labels, when ``y`` is given).

    Returns ``(loss, grad_norm)`` (the norm before clipping). If either is NaN/Inf the optimiser
    does not step, so the weights stay the last good ones; the caller stops training.
    """
    optimizer.zero_grad(set_to_none=True)
    losses = _call_loss(loss_fn, model, x0, generator, y)
    if not isinstance(losses, Tensor) or losses.shape != x0.shape[:1]:
        shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses).__name__
        raise ValueError(
            f"loss_fn must return one loss per example, shape ({x0.shape[0]},); got {shape}"
        )
    loss = losses.mean()
    loss.backward()
    params = [p for p in model.parameters() if p.grad is not None]
    max_norm = grad_clip if grad_clip is not None else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm) if params else loss.new_zeros(())
    # One device sync per step for both numbers.
    loss_value, norm_value = torch.stack([loss.detach(), grad_norm.to(loss.dtype)]).tolist()
    if math.isfinite(loss_value) and math.isfinite(norm_value):
        optimizer.step()
    return loss_value, norm_value


def _call_loss(
    loss_fn: LossFn, model: nn.Module, x0: Tensor, generator: torch.Generator, y: Tensor | None
) -> Tensor:
    """``loss_fn(model, x0, generator)``, with ``y=y`` only for labelled data."""
    if y is None:
        return loss_fn(model, x0, generator)
    return loss_fn(model, x0, generator, y=y)


@torch.no_grad()
def dataset_loss(
    model: nn.Module,
    loss_fn: LossFn,
    data: Tensor,
    batch_size: int,
    generator: torch.Generator,
    labels: Tensor | None = None,
) -> float:
    """Mean of ``loss_fn`` over all of ``data`` ``(N, *D)`` (and its ``labels`` ``(N,)``, passed
    as ``y``), in chunks of ``batch_size``."""
    total = 0.0
    ys = [None] * math.ceil(len(data) / batch_size) if labels is None else labels.split(batch_size)
    for chunk, y in zip(data.split(batch_size), ys, strict=True):
        total += float(_call_loss(loss_fn, model, chunk, generator, y).double().sum())
    return total / len(data)


@dataclass
class _Run:
    """Everything that changes while training; ``state``/``restore`` map it to a checkpoint."""

    model: nn.Module
    ema: AveragedModel | None
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    sampler: EpochSampler
    noise: torch.Generator
    config: TrainConfig
    model_spec: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    fresh: bool = True
    step: int = 0
    loop: dict[str, float] = field(
        default_factory=lambda: {"elapsed_s": 0.0, "loss_sum": 0.0, "norm_sum": 0.0, "count": 0}
    )
    saved_step: int | None = None


def train(
    model: nn.Module,
    loss_fn: LossFn,
    train_data: Tensor,
    config: TrainConfig | None = None,
    *,
    run_dir: str | Path | None = None,
    model_spec: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    test_data: Tensor | None = None,
    evaluate: EvaluateFn | None = None,
    resume: bool = True,
    progress: bool = True,
    callback: Callable[[dict[str, float]], None] | None = None,
    run_files: Mapping[str, str] | None = None,
    labels: Tensor | None = None,
    test_labels: Tensor | None = None,
) -> TrainResult:
    """Train ``model`` by minimising the mean of ``loss_fn(model, x0, generator)`` over
    minibatches of ``train_data`` ``(N, *D)`` for ``config.steps`` optimiser steps.

    Every ``log_every`` steps a row (step, time, epoch = step·batch/N, lr, mean train loss and
    gradient norm since the last row) is added to the history and ``run_dir/metrics.csv``; every
    ``eval_every`` steps and at the end the row also gets ``test_loss`` (and ``test_loss_ema``)
    on ``test_data`` with fixed noise, and the metrics of ``evaluate(ema_or_model, step)``.
    ``callback(info)`` is called after every step with the step's loss, grad norm, lr and row.

    With a ``run_dir``, the folder is locked (``RunLockedError`` if another process uses it), a
    checkpoint is written atomically at step 0, every ``checkpoint_every`` steps and at the end
    (``model_spec`` and ``extra``, plain dicts, are stored in it), and if it already holds a
    checkpoint and ``resume`` is true the run continues from it exactly as if never stopped
    (settings must match, except ``steps``, which may grow, and output cadence/device);
    ``resume=False`` starts over and replaces the folder's checkpoints and log. A NaN/Inf loss
    or gradient raises ``TrainingDivergedError`` before the weights change; the checkpoint on
    disk stays the last good one. Data is moved to the device and the model's dtype.
    ``run_files`` (name -> text, e.g. ``config.json``) are written atomically into ``run_dir``
    once the lock is held and the checkpoint is known to be compatible.

    ``labels`` ``(N,)`` (integer class labels of ``train_data``; ``test_labels`` of ``test_data``)
    make the loop call ``loss_fn(model, x0, generator, y=y)`` with each batch's labels; the
    batches, noise and checkpoints are exactly those of the same run without labels.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig; got {type(config).__name__}")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(model, x0, generator) -> (B,)")
    device = resolve_device(config.device)
    model.to(device)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    train_data = _check_data(train_data, "train_data", device, dtype)
    if test_data is not None:
        test_data = _check_data(test_data, "test_data", device, dtype)
    labels = _check_labels(labels, train_data, "labels", device)
    test_labels = _check_labels(test_labels, test_data, "test_labels", device)
    if (labels is None) != (test_labels is None) and test_data is not None:
        raise ValueError("give labels and test_labels together (or neither)")
    data = _Labelled(train_data, labels, test_data, test_labels)
    run_dir = None if run_dir is None else Path(run_dir)
    lock = RunLock(run_dir) if run_dir is not None and is_main_process() else nullcontext()
    with lock:
        return _train(
            model, loss_fn, data, config, run_dir, model_spec, extra,
            evaluate, resume, progress, callback, run_files or {},
        )  # fmt: skip


@dataclass(frozen=True)
class _Labelled:
    """Training and test data with their labels (``None``: unlabelled)."""

    x: Tensor
    y: Tensor | None
    test_x: Tensor | None
    test_y: Tensor | None


def _check_labels(
    labels: Tensor | None, data: Tensor | None, name: str, device: torch.device
) -> Tensor | None:
    if labels is None:
        return None
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        got = labels.dtype if isinstance(labels, Tensor) else type(labels).__name__
        raise TypeError(f"{name} must be a tensor of integer class labels (N,); got {got}")
    if data is None or labels.shape != data.shape[:1]:
        want = "no data" if data is None else f"({data.shape[0]},)"
        raise ValueError(f"{name} must have one label per row, shape {want}; got {labels.shape}")
    return labels.to(device=device, dtype=torch.int64)


def _train(
    model: nn.Module,
    loss_fn: LossFn,
    labelled: _Labelled,
    config: TrainConfig,
    run_dir: Path | None,
    model_spec: Mapping[str, Any] | None,
    extra: Mapping[str, Any] | None,
    evaluate: EvaluateFn | None,
    resume: bool,
    progress: bool,
    callback: Callable[[dict[str, float]], None] | None,
    run_files: Mapping[str, str],
) -> TrainResult:
    data, labels, test_data = labelled.x, labelled.y, labelled.test_x
    run = _start(model, data, config, run_dir, model_spec, extra, resume)
    main = is_main_process()
    if run_dir is not None and main:
        _remove_stale_files(run_dir, fresh=False, names=run_files)
        for name, text in run_files.items():
            atomic_writer(run_dir / name, lambda tmp, text=text: tmp.write_text(text))
    log = None
    if run_dir is not None and main:
        log = MetricLog(run_dir / METRICS_NAME, keep_until=None if run.fresh else run.step)
        _remove_stale_files(run_dir, fresh=run.fresh, names=run_files)
        if run.fresh:
            _save(run, run_dir)
    history = list(log.rows) if log is not None else []
    start, elapsed0, recent = time.perf_counter(), run.loop["elapsed_s"], deque(maxlen=5)
    # No tqdm object at all unless a bar is shown: even a disabled bar takes tqdm's lock, a
    # multiprocessing semaphore shared across fork, and a process killed while holding it would
    # leave every later forked process waiting on it.
    bar = tqdm(total=config.steps, initial=run.step, unit="step") if progress and main else None
    try:
        while run.step < config.steps:
            # The one place a batch is drawn.
            idx = run.sampler.next_indices(config.batch_size).to(data.device)
            x0, y = data[idx], None if labels is None else labels[idx]
            lr = run.optimizer.param_groups[0]["lr"]
            loss, norm = train_step(
                model, loss_fn, x0, run.optimizer, run.noise, config.grad_clip, y
            )
            if not (math.isfinite(loss) and math.isfinite(norm)):
                what = f"loss {loss:.4g}, gradient norm {norm:.4g}"
                raise _diverged(run, run_dir, run.step + 1, what, recent)
            run.scheduler.step()
            if run.ema is not None:
                run.ema.update_parameters(_unwrap(model))
            run.step += 1
            recent.append(loss)
            _accumulate(run.loop, loss, norm, elapsed0 + time.perf_counter() - start)
            if bar is not None:
                bar.update(1)

            row = _row(run, lr, len(data))
            if row and (run.step % config.eval_every == 0 or run.step == config.steps):
                if test_data is not None or evaluate is not None:
                    row.update(_evaluate(run, loss_fn, labelled, evaluate))
            if row:  # rows are written before the checkpoint of the same step
                history.append(row)
                if log is not None:
                    log.append(row)
                if bar is not None:
                    bar.set_postfix(
                        {k: f"{row[k]:.4g}" for k in ("train_loss", "test_loss") if k in row}
                    )
            due = run.step % config.checkpoint_every == 0 or run.step == config.steps
            if run_dir is not None and main and due:
                _save(run, run_dir)
            if callback is not None:
                callback({"step": run.step, "loss": loss, "grad_norm": norm, "lr": lr, **row})
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    ema_model = run.ema.module if run.ema is not None else None
    return TrainResult(model, ema_model, history, run.step, run_dir)


def _start(
    model: nn.Module,
    data: Tensor,
    config: TrainConfig,
    run_dir: Path | None,
    model_spec: Mapping[str, Any] | None,
    extra: Mapping[str, Any] | None,
    resume: bool,
) -> _Run:
    """Build the optimiser, schedule, EMA and generators; continue from the folder's checkpoint."""
    model.train()
    optimizer = make_optimizer(model.parameters(), config)
    ema = None if config.ema_decay is None else create_ema(_unwrap(model), config.ema_decay)
    run = _Run(
        model=model,
        ema=ema,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, config),
        sampler=EpochSampler(len(data), derive_seed(config.seed, _BATCH_STREAM)),
        noise=torch.Generator(data.device).manual_seed(derive_seed(config.seed, _NOISE_STREAM)),
        config=config,
        model_spec=None if model_spec is None else dict(model_spec),
        extra={} if extra is None else dict(extra),
    )
    found = latest_checkpoint(run_dir) if run_dir is not None and resume else None
    if found is not None:
        state = load_checkpoint(found)
        _check_resume(state, config, model_spec, found)
        _restore(run, state, found)
        # What the caller does not give again is kept from the checkpoint.
        run.model_spec = state["model_spec"] if model_spec is None else run.model_spec
        run.extra = state["extra"] if extra is None else run.extra
        run.fresh = False
    return run


def _accumulate(meter: dict[str, float], loss: float, norm: float, elapsed: float) -> None:
    meter["loss_sum"] += loss
    meter["norm_sum"] += norm
    meter["count"] += 1
    meter["elapsed_s"] = elapsed


def _remove_stale_files(run_dir: Path, *, fresh: bool, names: Iterable[str] = ()) -> None:
    """Delete temp files of writes cut short by a kill, and old history when starting over.

    Safe because the caller holds the run folder's lock: nobody else is writing there.
    """
    stale = [*run_dir.glob(".checkpoint*.pt"), *run_dir.glob(f".{METRICS_NAME}.*.tmp")]
    for name in names:  # temp files of atomic_writer: .{stem}.XXXXXXXX{suffix}
        stale += run_dir.glob(f".{Path(name).stem}.*{Path(name).suffix}")
    if fresh:
        stale += history_checkpoints(run_dir)
    for path in stale:
        path.unlink(missing_ok=True)


def _check_data(data: Tensor, name: str, device: torch.device, dtype: torch.dtype | None) -> Tensor:
    if not isinstance(data, Tensor):
        raise TypeError(f"{name} must be a tensor of shape (N, *D); got {type(data).__name__}")
    if data.ndim < 2 or data.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape (N, *D) with N >= 1, e.g. (N, 1) for 1-D data; "
            f"got {tuple(data.shape)}"
        )
    data = data.to(device=device, dtype=dtype if dtype is not None else data.dtype)
    return check_finite(data, name, hint="remove or fix those rows")


def _row(run: _Run, lr: float, n: int) -> dict[str, float]:
    """The log row for this step (empty between ``log_every`` steps, except at eval/end steps)."""
    cfg, step = run.config, run.step
    if step % cfg.log_every and step % cfg.eval_every and step != cfg.steps:
        return {}
    row: dict[str, float] = {
        "step": step,
        "time": run.loop["elapsed_s"],
        "epoch": step * cfg.batch_size / n,
        "lr": lr,
    }
    meter = run.loop
    if meter["count"]:
        row["train_loss"] = meter["loss_sum"] / meter["count"]
        row["grad_norm"] = meter["norm_sum"] / meter["count"]
    meter.update(loss_sum=0.0, norm_sum=0.0, count=0)
    return row


def _evaluate(
    run: _Run, loss_fn: LossFn, labelled: _Labelled, evaluate: EvaluateFn | None
) -> dict[str, float]:
    """Test losses with the same fixed noise each time, then the caller's metrics."""
    out: dict[str, float] = {}
    model, cfg = run.model, run.config
    test_data = labelled.test_x
    model.eval()
    try:
        nets = {"test_loss": model}
        if run.ema is not None:
            nets["test_loss_ema"] = run.ema.module
        if test_data is not None:
            for key, net in nets.items():
                gen = torch.Generator(test_data.device)
                gen.manual_seed(derive_seed(cfg.seed, _TEST_STREAM))
                out[key] = dataset_loss(
                    net, loss_fn, test_data, cfg.batch_size, gen, labelled.test_y
                )
        if evaluate is not None:
            metrics = evaluate(run.ema.module if run.ema is not None else model, run.step)
            if not isinstance(metrics, Mapping):
                raise TypeError(f"evaluate must return a dict of numbers; got {type(metrics)}")
            clash = sorted(set(metrics) & set(_RESERVED))
            if clash:
                raise ValueError(f"evaluate returned reserved metric names {clash}; rename them")
            out.update({str(k): float(v) for k, v in metrics.items()})
    finally:
        model.train()
    return out


def _state(run: _Run) -> dict[str, Any]:
    return {
        "step": run.step,
        "model": _unwrap(run.model).state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "rng": {"batches": run.sampler.state_dict(), "noise": run.noise.get_state()},
        "config": run.config.to_dict(),
        "model_spec": run.model_spec,
        "extra": run.extra,
        "loop": dict(run.loop),
    }


def _save(run: _Run, run_dir: Path) -> None:
    """Write the checkpoint, unless the weights went non-finite (then keep the last good one)."""
    params = [p.detach().reshape(-1) for p in run.model.parameters()]
    if params and not bool(torch.isfinite(torch.cat(params)).all()):
        raise _diverged(run, run_dir, run.step, "the weights became NaN/Inf", ())
    state = _state(run)
    save_checkpoint(run_dir / CHECKPOINT_NAME, state)
    if run.config.keep_checkpoints:
        save_checkpoint(run_dir / history_name(run.step), state)
    run.saved_step = run.step


def _restore(run: _Run, state: dict[str, Any], path: Path) -> None:
    """Load a checkpoint's tensors into the run; mismatches raise ``CheckpointError``."""
    try:
        _unwrap(run.model).load_state_dict(state["model"])
        if run.ema is not None:
            run.ema.load_state_dict(state["ema"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.sampler.load_state_dict(state["rng"]["batches"])
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"checkpoint {path} does not fit this model ({str(err).splitlines()[0][:300]}); "
            f"build the network from the checkpoint's model_spec {state['model_spec']!r}, "
            "or train into another run folder"
        ) from None
    try:
        run.noise.set_state(state["rng"]["noise"])
    except (RuntimeError, KeyError) as err:
        raise CheckpointError(
            f"checkpoint {path} holds a random-number state for another device type ({err}); "
            "resume on the device it was written on (--device), or start a new run"
        ) from None
    run.step = int(state["step"])
    run.loop = {**run.loop, **state["loop"]}
    run.saved_step = run.step


def _ema_retuned(key: str, saved: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """An EMA's decay may change on resume (it follows the run's length); its presence may not."""
    return key == "ema_decay" and saved[key] is not None and wanted[key] is not None


def _check_resume(
    state: dict[str, Any], config: TrainConfig, model_spec: Mapping[str, Any] | None, path: Path
) -> None:
    """Refuse to resume a run whose settings differ (except the ones that may change)."""
    try:
        saved = TrainConfig.from_dict(state["config"]).to_dict()
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} holds an unreadable config: {err}") from None
    wanted = config.to_dict()
    diffs = [
        f"{k}={saved[k]!r} (saved) vs {wanted[k]!r} (now)"
        for k in saved
        if k not in RESUMABLE_FIELDS
        and saved[k] != wanted[k]
        and not _ema_retuned(k, saved, wanted)
    ]
    if diffs:
        raise ValueError(
            f"cannot resume the run in {path.parent}: its settings differ: {'; '.join(diffs)}. "
            "Use the saved settings to continue it, resume=False (--no-resume) to start over "
            "there, or another run folder (--out)"
        )
    if state["step"] > config.steps:
        raise ValueError(
            f"the run in {path.parent} is already at step {state['step']} > steps="
            f"{config.steps}; pass steps >= {state['step']} to continue it"
        )
    if model_spec is not None and state["model_spec"] is not None:
        if dict(model_spec) != state["model_spec"]:
            raise ValueError(
                f"cannot resume the run in {path.parent}: it trained model {state['model_spec']!r}"
                f" but {dict(model_spec)!r} was given; use the same model or another run folder"
            )


def _diverged(
    run: _Run, run_dir: Path | None, step: int, what: str, recent: Any
) -> TrainingDivergedError:
    last = ", ".join(f"{v:.4g}" for v in recent) or "none"
    if run_dir is None:
        kept = "no checkpoint was written (no run folder)"
    elif run.saved_step is None:
        kept = "no checkpoint was written"
    else:
        kept = f"the last good checkpoint (step {run.saved_step}) is kept in {run_dir}"
    return TrainingDivergedError(
        f"training diverged at step {step}: {what} (last losses: {last}); {kept}. "
        f"Lower the learning rate (lr={run.config.lr:g}, --lr) or "
        f"enable gradient clipping (grad_clip={run.config.grad_clip}, --grad-clip), and train "
        "again in a new run folder"
    )


def _unwrap(model: nn.Module) -> nn.Module:
    """The network inside a ``DistributedDataParallel`` wrapper (checkpoint keys stay the same)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
