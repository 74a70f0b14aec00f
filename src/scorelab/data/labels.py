"""Points with class labels, for class-conditional training (``scorelab train --conditional``).

Where the labels of a point source come from:

- an analytic mixture (a preset target or a Gaussian-mixture file): the component each point was
  drawn from (``GaussianMixture.sample(..., return_components=True)``), the same points as
  :func:`scorelab.data.load_dataset` draws;
- an ``.npz`` file: the array under key ``"y"`` beside the points under ``"x"`` (or ``"data"``);
- an ``.npy``/``.csv`` file: the column ``label_column`` (0-based), removed from the points.

Labels are int64 ``(N,)`` in ``0..C−1``. Image sets carry their own labels
(:func:`scorelab.data.load_images`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scorelab.data.files import DataError, load_points
from scorelab.data.toy import DEFAULT_N, TARGET_NAMES, TOY_DATASETS, is_target_source
from scorelab.utils import check_int

__all__ = ["check_labels", "load_labelled_points"]


def check_labels(y: np.ndarray | Tensor, n: int, where: str) -> Tensor:
    """``y`` as int64 ``(n,)`` class labels ``>= 0`` (whole numbers), or a one-line error."""
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise DataError(f"{where}: labels must be one per point, shape ({n},); got {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise DataError(f"{where}: labels must be whole numbers 0..C-1; got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)) or np.any(arr < 0):
        raise DataError(f"{where}: labels must be whole numbers 0..C-1 (no negatives, no NaN)")
    return torch.from_numpy(arr.astype(np.int64))


def _mixture_points(name: str, n: int | None, seed: int) -> tuple[Tensor, Tensor]:
    from scorelab.targets import get_target
    from scorelab.targets.mixture import GaussianMixture

    target = get_target(name)
    if not isinstance(target, GaussianMixture):
        raise ValueError(
            f"--conditional: target {name!r} is a single Gaussian, it has no classes; use a "
            "mixture target (e.g. ring-8, mixture-2d)"
        )
    size = check_int(DEFAULT_N if n is None else n, "n")
    x, k = target.sample(
        size, generator=torch.Generator().manual_seed(seed), return_components=True
    )
    return x.reshape(size, -1).to(torch.float32), k.to(torch.int64)


def _npz_points(path: Path) -> tuple[Tensor, Tensor]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            if "y" not in keys:
                raise DataError(
                    f"{str(path)!r} has no labels: save them under key 'y' "
                    "(np.savez(path, x=points, y=labels))"
                )
            xkey = next((k for k in ("x", "data") if k in keys), None)
            if xkey is None:
                raise DataError(f"{str(path)!r} has labels 'y' but no points under key 'x'")
            x_arr, y_arr = archive[xkey], archive["y"]
    except (OSError, ValueError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{str(path)!r} is not a readable .npz file: {err}") from None
    x = torch.as_tensor(np.asarray(x_arr, dtype=np.float32))
    if x.ndim != 2 or x.shape[0] < 2 or not bool(torch.isfinite(x).all()):
        raise DataError(f"{str(path)!r}: 'x' must be finite points (N, D) with N >= 2")
    return x, check_labels(y_arr, x.shape[0], str(path))


def _column_points(path: Path, label_column: int) -> tuple[Tensor, Tensor]:
    table = load_points(path)
    width = table.shape[1]
    if not -width <= label_column < width or width < 2:
        raise ValueError(
            f"--label-column {label_column} is outside the {width} columns of {str(path)!r}; "
            f"give a column 0..{width - 1}"
        )
    col = label_column % width
    y = check_labels(table[:, col].double().numpy(), table.shape[0], f"{path} column {col}")
    keep = [c for c in range(width) if c != col]
    return table[:, keep].contiguous(), y


def load_labelled_points(
    name_or_path: str | os.PathLike,
    n: int | None = None,
    seed: int = 0,
    *,
    label_column: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Points ``(N, D)`` float32 and their class labels ``(N,)`` int64 (see the module doc).

    ``n`` and ``seed`` as for :func:`scorelab.data.load_dataset`: draws of a mixture, or a
    random subset of a file's rows. Raises ``ValueError`` naming the fix when the source has no
    labels.
    """
    name = os.fspath(name_or_path)
    seed = check_int(seed, "seed", minimum=0)
    if name in TOY_DATASETS:
        raise ValueError(
            f"--conditional: the toy set {name!r} has no class labels; use a mixture target "
            f"({', '.join(t for t in TARGET_NAMES if t != 'anticorrelated')}), an image set, "
            "or a file with labels (--label-column K, or 'y' in an .npz)"
        )
    if is_target_source(name):
        if label_column is not None:
            raise ValueError(
                "--label-column is for .npy/.csv point files; a mixture's labels are its components"
            )
        return _mixture_points(name, n, seed)
    path = Path(name)
    if not path.is_file():
        load_points(path)  # raises the loader's message (missing file, a folder, …)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if label_column is not None:
            raise ValueError("--label-column is for .npy/.csv files; an .npz keeps labels in 'y'")
        x, y = _npz_points(path)
    elif label_column is None:
        raise ValueError(
            f"--conditional on {str(path)!r} needs --label-column K: the column holding each "
            "point's class (0-based)"
        )
    else:
        x, y = _column_points(path, check_int(label_column, "--label-column", minimum=-(2**31)))
    if n is not None:
        n = check_int(n, "n")
        if n > x.shape[0]:
            raise ValueError(f"n={n} is more than the {x.shape[0]} rows of {name}; lower n")
        idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
        idx = idx.sort().values
        x, y = x[idx], y[idx]
    return x, y
