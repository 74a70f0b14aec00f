"""Image grids drawn with numpy (no torchvision); samples beside their nearest training images."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scorelab.plotting import PathLike, as_numpy, save_figure
from scorelab.utils import check_int


def _unit(images: object, value_range: tuple[float, float], name: str) -> np.ndarray:
    """Images ``(N, H, W)`` or ``(N, C, H, W)`` as float64 in [0, 1], channels last, C in {1, 3}.

    ``uint8`` input is read as [0, 255]; anything else as ``value_range``, clipped.
    """
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8:
        images = images.cpu().numpy()
    if isinstance(images, np.ndarray) and images.dtype == np.uint8:
        x = images.astype(np.float64) / 255.0
    else:
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(f"value_range must be (low, high) with high > low; got {value_range}")
        x = np.clip((as_numpy(images, name) - lo) / (hi - lo), 0.0, 1.0)
    if x.ndim == 4 and x.shape[1] in (1, 3):
        x = np.moveaxis(x, 1, -1)
        x = x[..., 0] if x.shape[-1] == 1 else x
    elif x.ndim != 3:
        raise ValueError(f"{name} must be (N, H, W), (N, 1, H, W) or (N, 3, H, W); got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image")
    return x


def tile_images(
    images: object,
    *,
    nrow: int = 10,
    value_range: tuple[float, float] = (-1.0, 1.0),
    pad: int = 2,
    pad_value: int = 255,
) -> np.ndarray:
    """Tile images ``(N, H, W)``/``(N, C, H, W)`` into one ``uint8`` picture, ``nrow`` per row.

    Values in ``value_range`` map linearly to [0, 255] (``uint8`` input is kept); the result is
    ``(R·(H+pad)+pad, nrow·(W+pad)+pad)`` (plus a colour axis of 3 for RGB), R = ceil(N / nrow).
    """
    x = np.round(_unit(images, value_range, "images") * 255.0).astype(np.uint8)
    nrow, pad = check_int(nrow, "nrow"), check_int(pad, "pad", minimum=0)
    n, h, w = x.shape[:3]
    ncol, rows = min(nrow, n), -(-n // nrow)
    shape = (rows * (h + pad) + pad, ncol * (w + pad) + pad, *x.shape[3:])
    grid = np.full(shape, pad_value, np.uint8)
    for i in range(n):
        top, left = pad + (i // ncol) * (h + pad), pad + (i % ncol) * (w + pad)
        grid[top : top + h, left : left + w] = x[i]
    return grid


def _show(grid: np.ndarray, title: str | None, upscale: float, dpi: float) -> Figure:
    """A Figure showing ``grid`` pixel for pixel (times ``upscale``), no axes; with a title,
    at least 400 pixels wide so that the title fits."""
    height = 0.9 if title else 1.0
    if title:
        upscale = max(upscale, 400 / grid.shape[1])
    fig = Figure(figsize=(grid.shape[1] * upscale / dpi, grid.shape[0] * upscale / dpi / height))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, height))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.suptitle(title, y=0.99, va="top", fontsize="small")
    return fig


def image_grid(
    images: object,
    *,
    nrow: int = 10,
    value_range: tuple[float, float] = (-1.0, 1.0),
    pad: int = 2,
    title: str | None = None,
    upscale: float = 3.0,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Grid of image samples (seed 000's MNIST previews), ``nrow`` per row, grey or RGB.

    The saved picture is ``upscale`` output pixels per grid pixel (see :func:`tile_images`).
    """
    grid = tile_images(images, nrow=nrow, value_range=value_range, pad=pad)
    return save_figure(_show(grid, title, upscale, dpi), path, dpi=dpi)


def nearest_neighbours(
    samples: object, train: object, *, k: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances ``(N, k)`` of each sample's ``k`` nearest rows of ``train``.

    ``samples`` ``(N, *D)`` and ``train`` ``(M, *D)`` are flattened to vectors; distances use
    ``torch.cdist`` in float64.
    """
    a = torch.as_tensor(as_numpy(samples, "samples"))
    b = torch.as_tensor(as_numpy(train, "train"))
    if a.ndim < 2 or b.ndim < 2 or a.shape[1:] != b.shape[1:]:
        raise ValueError(
            "samples (N, *D) and train (M, *D) must share D; "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    k = check_int(k, "k")
    if k > b.shape[0]:
        raise ValueError(f"k must be <= the number of training images ({b.shape[0]}); got {k}")
    dist = torch.cdist(a.reshape(len(a), -1), b.reshape(len(b), -1))
    values, indices = dist.topk(k, dim=1, largest=False)
    return indices.numpy(), values.numpy()


def nearest_neighbour_grid(
    samples: object,
    train_images: object,
    *,
    k: int = 1,
    value_range: tuple[float, float] = (-1.0, 1.0),
    pad: int = 2,
    upscale: float = 3.0,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Each sample (first column) beside its ``k`` nearest training images in L2 (next columns).

    Shows whether a model copies its data. Both sets are compared after mapping to [0, 1]
    (``value_range`` or ``uint8``), so a float sample can be matched against ``uint8`` data.
    """
    a = _unit(samples, value_range, "samples")
    b = _unit(train_images, value_range, "train_images")
    idx, _ = nearest_neighbours(a, b, k=k)
    rows = np.concatenate([a[:, None], b[idx]], axis=1)  # (N, 1 + k, H, W[, 3])
    rows = rows.reshape(-1, *a.shape[1:])
    if rows.ndim == 4:  # RGB: back to channels first for tile_images
        rows = np.moveaxis(rows, -1, 1)
    grid = tile_images(rows, nrow=k + 1, value_range=(0.0, 1.0), pad=pad)
    title = "sample | nearest training image" + ("s" if k > 1 else "") + " (L2)"
    return save_figure(_show(grid, title, upscale, dpi), path, dpi=dpi)


def inpainting_grid(
    originals: object,
    mask: object,
    completions: object,
    *,
    value_range: tuple[float, float] = (-1.0, 1.0),
    hidden_value: float = 0.5,
    pad: int = 2,
    upscale: float = 3.0,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Inpainting panels, one row per input: the masked input, its completions, the original.

    ``originals`` ``(N, C, H, W)``; ``mask`` of one image's shape or of ``originals``' (1 = known,
    0 = filled); ``completions`` ``(N, K, C, H, W)``. Hidden pixels of the masked input are shown
    at ``hidden_value`` (in [0, 1] after ``value_range``: mid-grey by default).
    """
    truth = _unit(originals, value_range, "originals")
    n = truth.shape[0]
    done = as_numpy(completions, "completions")
    if done.ndim < 4 or done.shape[0] != n:
        raise ValueError(
            f"completions must be (N, K, *image) with N = {n} inputs; got {done.shape}"
        )
    k = done.shape[1]
    filled = _unit(done.reshape(n * k, *done.shape[2:]), value_range, "completions")
    if filled.shape[1:] != truth.shape[1:]:
        raise ValueError(
            f"completions' images {filled.shape[1:]} differ from originals' {truth.shape[1:]}"
        )
    known = _unit(
        np.broadcast_to(as_numpy(mask, "mask"), as_numpy(originals).shape), (0, 1), "mask"
    )
    masked = np.where(known > 0.5, truth, hidden_value)
    rows = np.concatenate(
        [masked[:, None], filled.reshape(n, k, *truth.shape[1:]), truth[:, None]], 1
    )
    rows = rows.reshape(-1, *truth.shape[1:])
    if rows.ndim == 4:  # RGB: back to channels first for tile_images
        rows = np.moveaxis(rows, -1, 1)
    grid = tile_images(rows, nrow=k + 2, value_range=(0.0, 1.0), pad=pad)
    title = f"masked input | {k} completion{'s' if k > 1 else ''} | original"
    return save_figure(_show(grid, title, upscale, dpi), path, dpi=dpi)
