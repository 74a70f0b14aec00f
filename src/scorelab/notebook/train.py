"""The seed 000 training protocol (``dgm_utils.train_model``) with previews saved, not shown.

Any model with ``loss(x) -> {name: scalar tensor}`` and ``sample(n) -> tensor`` trains here:
``DenoisingScoreMatcher`` and ``NoiseConditionedScoreNetwork`` of ``scorelab.notebook``, or a
caller's own. For configurable, resumable training of score networks use ``scorelab.training``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from scorelab.training import TrainingDivergedError
from scorelab.utils import check_int

__all__ = ["train_model"]

History = dict[str, list[float]]


def _batch_tensor(batch: object, device: torch.device | str) -> Tensor:
    """The data of one loader batch: the batch itself or the first item of an ``(x, y)`` pair."""
    if isinstance(batch, list | tuple):
        batch = batch[0]
    if not isinstance(batch, Tensor):
        raise TypeError(f"the loaders must yield tensors or (x, y) pairs; got {type(batch)}")
    return batch.to(device)


def _scalar(value: object) -> float:
    """A loss value (a 0-d tensor, with or without grad, or a number) as a float."""
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


def _losses(model: nn.Module, x: Tensor, loss_key: str) -> dict[str, Tensor]:
    out = model.loss(x)
    if not isinstance(out, dict) or loss_key not in out:
        keys = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise ValueError(
            f"model.loss(x) must return a dict holding loss_key={loss_key!r}; got {keys}. "
            "Pass the name of the loss to minimise as loss_key"
        )
    return out


@torch.no_grad()
def _evaluate(
    model: nn.Module, loader: Iterable, device: torch.device | str, loss_key: str
) -> tuple[dict[str, float], list[Tensor]]:
    """Example-weighted mean of every loss over ``loader``, and its batches (for previews)."""
    model.eval()
    sums: dict[str, float] = defaultdict(float)
    n_seen, batches = 0, []
    for batch in loader:
        x = _batch_tensor(batch, device)
        for name, value in _losses(model, x, loss_key).items():
            sums[name] += _scalar(value) * x.shape[0]
        n_seen += x.shape[0]
        batches.append(x)
    if n_seen == 0:
        raise ValueError("test_loader yielded no data; give it at least one batch")
    return {name: total / n_seen for name, total in sums.items()}, batches


def _save_sample_preview(
    samples: Tensor, data: list[Tensor], path: Path, title: str, value_range: tuple[float, float]
) -> bool:
    """Save an image grid (``(N, [C,] H, W)``) or a scatter (points ``(N, 1|2)``) of ``samples``.

    Returns False (nothing saved) for other shapes, e.g. points in more than two dimensions.
    """
    from scorelab.plotting import image_grid, scatter_compare  # lazy: matplotlib is slow to import

    samples = samples.detach().cpu()
    if samples.ndim in (3, 4):  # (N, H, W) or (N, C, H, W)
        image_grid(samples, value_range=value_range, title=title, path=path)
        return True
    if samples.ndim == 2 and samples.shape[1] in (1, 2) and data:
        reference = torch.cat([d.detach().cpu() for d in data])[: len(samples)]
        reference = reference.reshape(len(reference), -1)
        scatter_compare(reference, samples, labels=("test data", "samples"), title=title, path=path)
        return True
    return False


def train_model(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable | None,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    device: torch.device | str = "cpu",
    loss_key: str = "total_loss",
    n_samples: int = 100,
    *,
    out_dir: str | os.PathLike | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
    progress: bool = True,
    scheduler_step: Literal["batch", "epoch"] = "batch",
) -> tuple[History, History]:
    """Train ``model`` by minimising ``model.loss(x)[loss_key]`` (the seed 000 protocol).

    Each epoch: one optimizer step per batch of ``train_loader`` (batches are tensors or
    ``(x, y)`` pairs), each followed by ``scheduler.step()`` if a scheduler is given, then the
    mean test loss over ``test_loader`` (skipped when it is None).

    The scheduler steps once per *batch*, as in the ``dgm_utils`` version that seed 000 pins
    (commit 2180d84): ``StepLR(step_size=1, gamma=0.95)`` then decays the learning rate by
    0.95 per batch, i.e. ``0.95^len(train_loader)`` per epoch. ``scheduler_step="epoch"`` steps
    it once per epoch instead (later ``dgm_utils`` versions).

    With ``out_dir`` the epoch's preview — ``n_samples`` draws of ``model.sample`` (seed 000
    passes ``n_samples=512``) as a scatter against test data (points ``(N, 2)``/``(N, 1)``) or an
    image grid (``(N, C, H, W)``, pixel range ``value_range``) — is saved as
    ``samples_epoch_{epoch:03d}.png`` and the loss curves as ``losses.png``; no window is opened.

    Returns ``(train_losses, test_losses)``: dicts mapping every key of ``model.loss`` to a list,
    one value per training batch (``epochs · len(train_loader)``) and one per epoch (``epochs``).
    Raises ``TrainingDivergedError`` when the loss becomes NaN or Inf.
    """
    epochs = check_int(epochs, "epochs")
    n_samples = check_int(n_samples, "n_samples")
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"scheduler_step must be 'batch' or 'epoch'; got {scheduler_step!r}")
    if not callable(getattr(model, "loss", None)):
        raise TypeError("model must have a method loss(x) returning a dict of losses")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    model.to(device)
    train_losses: History = defaultdict(list)
    test_losses: History = defaultdict(list)
    bar = tqdm(range(1, epochs + 1), desc="train_model", disable=not progress)
    for epoch in bar:
        model.train()
        n_before = len(train_losses[loss_key])
        for batch in train_loader:
            losses = _losses(model, _batch_tensor(batch, device), loss_key)
            loss = losses[loss_key]
            if not bool(torch.isfinite(loss)):
                lr = optimizer.param_groups[0]["lr"]
                raise TrainingDivergedError(
                    f"{loss_key} became {float(loss.detach())} in epoch {epoch}; try a smaller "
                    f"learning rate than {lr:g}"
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None and scheduler_step == "batch":
                scheduler.step()
            for name, value in losses.items():
                train_losses[name].append(_scalar(value))
        if len(train_losses[loss_key]) == n_before:
            raise ValueError("train_loader yielded no data; give it at least one batch")
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        data: list[Tensor] = []
        if test_loader is not None:
            means, data = _evaluate(model, test_loader, device, loss_key)
            for name, value in means.items():
                test_losses[name].append(value)
        last_test = test_losses.get(loss_key) or [float("nan")]
        bar.set_postfix(train=train_losses[loss_key][-1], test=last_test[-1])
        if out is not None:
            _save_previews(model, out, epoch, n_samples, data, train_losses, test_losses,
                           loss_key, value_range)  # fmt: skip
    return dict(train_losses), dict(test_losses)


def _save_previews(
    model: nn.Module,
    out: Path,
    epoch: int,
    n_samples: int,
    data: list[Tensor],
    train_losses: History,
    test_losses: History,
    loss_key: str,
    value_range: tuple[float, float],
) -> None:
    """Save the epoch's sample preview and the loss curves so far into ``out``."""
    from scorelab.plotting import loss_curves

    model.eval()
    with torch.no_grad():
        samples = model.sample(n_samples)
    title = f"samples, epoch {epoch}"
    _save_sample_preview(samples, data, out / f"samples_epoch_{epoch:03d}.png", title, value_range)
    n_batches = max(len(train_losses[loss_key]) / epoch, 1.0)
    records = [
        {"epoch": (i + 1) / n_batches, "train": v} for i, v in enumerate(train_losses[loss_key])
    ]
    records += [{"epoch": i + 1, "test": v} for i, v in enumerate(test_losses.get(loss_key, []))]
    loss_curves(records, keys=("train", "test"), x_key="epoch", ylabel=loss_key,
                path=out / "losses.png")  # fmt: skip
