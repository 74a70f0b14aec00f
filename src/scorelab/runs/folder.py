"""Run folders: what ``scorelab train`` writes and ``sample``/``evaluate`` read back.

A run folder holds

- ``config.json`` — a plain description of the run (data, noise range, data statistics, model
  spec, training config, the command), written atomically before training starts;
- ``checkpoint.pt`` — tensors and plain values only (``scorelab.training.checkpoint``);
- ``metrics.csv`` — the training log; later ``samples-*.npy``, ``evaluation.json``, figures.

Loading never executes code from the folder: the network is rebuilt from its plain ``model_spec``
and the weights are loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from scorelab import __version__
from scorelab.data.stats import DataStats
from scorelab.samplers import RECOMMENDED, SamplerConfig, ScoreSource, network_source

CONFIG_NAME = "config.json"
RUN_FORMAT = 1


class RunFolderError(ValueError):
    """A run folder is missing, incomplete, corrupt or from an incompatible scorelab version."""


def run_config_json(config: dict[str, Any]) -> str:
    """The text of ``config.json`` for a run described by ``config`` (plain JSON values).

    ``scorelab train`` hands it to the training loop, which writes it atomically once it holds the
    run folder's lock.
    """
    body = {"format": RUN_FORMAT, "scorelab_version": __version__, **config}
    return json.dumps(body, indent=2)


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``run_dir/config.json`` with errors that say what is wrong and what to do."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(
            f"run folder {str(run_dir)!r} does not exist: give the --out folder "
            "of a `scorelab train` run"
        )
    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise RunFolderError(
            f"{path} is missing: {run_dir} is not a scorelab run folder "
            "(or its training never started); run `scorelab train --out "
            f"{run_dir}` again"
        )
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(
            f"{path} is corrupt ({exc}); restore it or re-run `scorelab train` with --no-resume"
        ) from None
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        version = config.get("scorelab_version", "?") if isinstance(config, dict) else "?"
        raise RunFolderError(
            f"{path} has run format {found!r} (scorelab {version}); this scorelab "
            f"({__version__}) reads format {RUN_FORMAT}: re-train the run or use that version"
        )
    for key in ("data", "model_spec", "noise"):
        if key not in config:
            raise RunFolderError(f"{path} lacks the {key!r} entry; re-run `scorelab train`")
    return config


@dataclass
class Run:
    """A trained run loaded for use: its config, network (EMA weights when present) and step."""

    run_dir: Path
    config: dict[str, Any]
    model: nn.Module
    step: int
    device: torch.device

    @property
    def data_shape(self) -> tuple[int, ...]:
        return tuple(self.config["data"]["shape"])

    @property
    def data_kind(self) -> str:
        """``"images"`` or ``"points"``: the kind of data it was trained on (config.json)."""
        return self.config["data"]["kind"]

    def score_fn(self):
        """The network as a ``ScoreFn`` (evaluated without gradients)."""
        from scorelab.models import as_score_fn

        return as_score_fn(self.model)

    @property
    def recommended_sampler(self) -> SamplerConfig:
        """The sampler its training preset recommends (recorded in config.json)."""
        if "sampler" in self.config:
            return SamplerConfig.from_dict(self.config["sampler"])
        return RECOMMENDED[self.data_kind]

    def score_source(self) -> ScoreSource:
        """The :class:`scorelab.samplers.ScoreSource` of this run: its network, the data's
        moments, and the training noise range narrowed to :func:`sampling_sigma_range`
        for points (images keep their training range)."""
        stats = DataStats.from_dict(self.config["data"]["stats"])
        noise = self.config["noise"]
        return network_source(
            self.score_fn(),
            stats.mean_tensor(),
            stats.cov_tensor(),
            self.data_shape,
            train_sigma_max=noise["sigma_max"],
            train_sigma_min=noise["sigma_min"],
            recommended=self.recommended_sampler,
            images=self.data_kind == "images",
            device=self.device,
        )


def target_or_run(
    target: str | None, run_dir: str | os.PathLike | None, *, device: str = "auto"
) -> tuple[Any, SamplerConfig]:
    """``(base, recommended)`` for commands that take ``--target NAME_OR_FILE`` or ``RUN_DIR``:
    an analytic target (exact scores; ``RECOMMENDED["exact"]``) or a loaded :class:`Run` (its
    preset's sampler). Exactly one of the two must be given."""
    if (target is None) == (run_dir is None):
        raise ValueError("give exactly one of --target NAME_OR_FILE or RUN_DIR")
    if target is not None:
        from scorelab.targets import get_target

        return get_target(target), RECOMMENDED["exact"]
    run = load_run(run_dir, device=str(device))
    return run, run.recommended_sampler


def load_run(run_dir: str | os.PathLike, *, device: str = "auto", use_ema: bool = True) -> Run:
    """Load a run folder: rebuild the network from its spec and load the latest weights."""
    from scorelab.models import build_model
    from scorelab.training import CheckpointError, latest_checkpoint, load_checkpoint
    from scorelab.training.config import resolve_device

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    path = latest_checkpoint(run_dir)
    if path is None:
        raise RunFolderError(
            f"{run_dir} has no checkpoint yet: wait for `scorelab train` to write one, or re-run it"
        )
    state = load_checkpoint(path)
    spec = state.get("model_spec") or config["model_spec"]
    try:
        model = build_model(spec)
        weights = state["model"]
        if use_ema and state.get("ema") is not None:
            prefix = "module."
            weights = {k[len(prefix) :]: v for k, v in state["ema"].items() if k.startswith(prefix)}
        model.load_state_dict(weights)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path} does not match its model spec {spec.get('name')!r} "
            f"({str(exc).splitlines()[0]}); re-train with --no-resume"
        ) from None
    dev = resolve_device(device)
    model.to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return Run(run_dir=run_dir, config=config, model=model, step=int(state["step"]), device=dev)


# ---------------------------------------------------------------------------------------------
# The data of a run
# ---------------------------------------------------------------------------------------------


def is_image_source(source: str) -> bool:
    """True for the built-in image sets and for folders (MNIST IDX files)."""
    from scorelab.data.images import IMAGE_DATASETS

    return source in IMAGE_DATASETS or Path(source).is_dir()


def load_run_data(
    source: str, *, n: int | None, seed: int, test_fraction: float
) -> tuple[Tensor, Tensor]:
    """``(train, test)`` float32 tensors for a data source name or path.

    Points ``(N, D)``: a toy set, an analytic target or a file, split at random with ``seed``.
    Images ``(N, 1, H, W)`` in [-1, 1]: the set's own train/test split.
    """
    if is_image_source(source):
        from scorelab.data.images import load_images

        train, _ = load_images(source, "train", seed=seed)
        test, _ = load_images(source, "test", seed=seed)
        if n is not None:
            train = train[:n]
        return train, test
    from scorelab.data import load_dataset, train_test_split

    x = load_dataset(source, n, seed=seed)
    return train_test_split(x, test_fraction=test_fraction, seed=seed)


def fresh_sampler(source: str):
    """For generated sources (toy sets, analytic targets) a sampler ``(n, generator) -> (n, D)``
    of fresh, independent draws of the source's law (``TOY_LAWS``: for moons not the stratified
    ``make_moons``); ``None`` for files and images (use held-out data instead)."""
    from scorelab.data.toy import TOY_LAWS, is_target_source

    if source not in TOY_LAWS and not is_target_source(source):
        return None
    from scorelab.data import load_dataset

    def draw(n: int, generator: torch.Generator) -> Tensor:
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        if source in TOY_LAWS:
            return TOY_LAWS[source](n, seed=seed)
        return load_dataset(source, n, seed=seed)

    return draw


def load_run_labelled_data(
    source: str, *, n: int | None, seed: int, test_fraction: float, label_column: int | None = None
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor], int]:
    """``(train_x, test_x, (train_y, test_y), num_classes)`` for class-conditional training.

    Images: the set's own labels and split (as :func:`load_run_data`). Points: a mixture's
    components, an ``.npz``'s ``y`` or a file's ``label_column``
    (:func:`scorelab.data.labels.load_labelled_points`), split at random with ``seed``.
    ``num_classes`` is a mixture's component count, else the largest label + 1.
    """
    if is_image_source(source):
        if label_column is not None:
            raise ValueError("--label-column is for point files; image sets carry their labels")
        from scorelab.data.images import load_images

        train, train_y = load_images(source, "train", seed=seed)
        test, test_y = load_images(source, "test", seed=seed)
        if n is not None:
            train, train_y = train[:n], train_y[:n]
        num_classes = int(max(train_y.max(), test_y.max())) + 1
        return train, test, (train_y.to(torch.int64), test_y.to(torch.int64)), num_classes
    from scorelab.data import split_indices
    from scorelab.data.labels import load_labelled_points
    from scorelab.data.toy import is_target_source

    x, y = load_labelled_points(source, n, seed=seed, label_column=label_column)
    if x.shape[0] < 2:
        raise ValueError(f"{source} holds {x.shape[0]} point(s); at least 2 are needed")
    train_idx, test_idx = split_indices(x.shape[0], test_fraction, seed)
    if is_target_source(source):
        from scorelab.targets import get_target

        num_classes = int(get_target(source).n_components)
    else:
        num_classes = int(y.max()) + 1
    return x[train_idx], x[test_idx], (y[train_idx], y[test_idx]), num_classes
