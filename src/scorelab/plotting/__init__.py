"""Figures and GIF animations of samples, score fields, densities, curves and images.

Every function draws on a fresh ``matplotlib.figure.Figure`` with an Agg canvas (no pyplot, so no
global state, no windows, and the caller's backend is left alone), returns that Figure so a recipe
can add to it, and saves it atomically when ``path`` is given. Inputs are numpy arrays or torch
tensors. Use :func:`save_figure` to save a Figure you have added to.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from scorelab.utils import atomic_writer

PathLike = str | os.PathLike


def as_numpy(x: object, name: str = "x") -> np.ndarray:
    """Turn a torch tensor (any device, with or without grad) or array-like into a float64 array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    try:
        out = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a numpy array or torch tensor of numbers; got {type(x).__name__}"
        ) from None
    return out


def as_points(x: object, name: str = "x", dim: int = 2) -> np.ndarray:
    """A float64 ``(N, dim)`` array from ``x`` ``(N, dim)``, or ``(N,)`` when ``dim`` is 1."""
    a = as_numpy(x, name)
    if dim == 1 and a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] != dim or a.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N, {dim}) with N >= 1; got {a.shape}")
    return a


def padded_limits(
    *arrays: np.ndarray, margin: float = 0.05
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Axis limits ``(xlim, ylim)`` enclosing every finite point of the ``(..., 2)`` arrays."""
    pts = np.concatenate([np.asarray(a).reshape(-1, 2) for a in arrays])
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) == 0:
        return (-1.0, 1.0), (-1.0, 1.0)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = np.maximum(hi - lo, 1e-6) * margin
    return (lo[0] - pad[0], hi[0] + pad[0]), (lo[1] - pad[1], hi[1] + pad[1])


def new_figure(
    ncols: int = 1,
    nrows: int = 1,
    *,
    size: float = 5.0,
    figsize: tuple[float, float] | None = None,
    layout: str | None = "constrained",
) -> tuple[Figure, np.ndarray]:
    """A Figure on an Agg canvas with an ``(nrows, ncols)`` array of axes ``size`` inches each."""
    fig = Figure(figsize=figsize or (size * ncols, size * nrows), layout=layout)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig: Figure, path: PathLike | None, *, dpi: float = 100) -> Figure:
    """Save ``fig`` atomically to ``path`` (format from the suffix) when ``path`` is not None."""
    if path is not None:
        atomic_writer(path, lambda tmp: fig.savefig(tmp, dpi=dpi))
    return fig


from scorelab.plotting.animation import animate_curves, animate_points, frame_indices  # noqa: E402
from scorelab.plotting.curves import loss_curves, quality_vs_evals, tradeoff_curves  # noqa: E402
from scorelab.plotting.density import hdr_levels, kde_compare, pdf_1d  # noqa: E402
from scorelab.plotting.fields import (  # noqa: E402
    log1p_arrows,
    log_density_contours,
    score_components,
    score_field,
)
from scorelab.plotting.images import (  # noqa: E402
    image_grid,
    inpainting_grid,
    nearest_neighbour_grid,
    nearest_neighbours,
    tile_images,
)
from scorelab.plotting.points import (  # noqa: E402
    forward_diffusion_1d,
    scatter_compare,
    trail_plot,
    trajectory_plot,
)

__all__ = [
    "animate_curves",
    "animate_points",
    "as_numpy",
    "as_points",
    "forward_diffusion_1d",
    "frame_indices",
    "hdr_levels",
    "image_grid",
    "inpainting_grid",
    "kde_compare",
    "log1p_arrows",
    "log_density_contours",
    "loss_curves",
    "nearest_neighbour_grid",
    "nearest_neighbours",
    "new_figure",
    "padded_limits",
    "pdf_1d",
    "quality_vs_evals",
    "save_figure",
    "scatter_compare",
    "tradeoff_curves",
    "score_components",
    "score_field",
    "tile_images",
    "trail_plot",
    "trajectory_plot",
]
