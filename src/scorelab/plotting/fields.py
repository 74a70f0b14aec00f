"""Score vector fields and log-density contours on a 2-D grid (seeds 001 and 004)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from scorelab.plotting import (
    PathLike,
    as_numpy,
    as_points,
    new_figure,
    padded_limits,
    save_figure,
)
from scorelab.utils import check_int

#: Colour of component k's arrows and the colour map of its density contours.
COMPONENT_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:red", "tab:brown")
COMPONENT_CMAPS = ("Blues", "Oranges", "Greens", "Purples", "Reds", "copper")

Limits = tuple[float, float]


def _grid(xlim: Limits, ylim: Limits, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An ``n × n`` grid: ``xx``, ``yy`` of shape ``(n, n)`` and the points ``(n², 2)``."""
    n = check_int(n, "n", minimum=2)
    xx, yy = np.meshgrid(np.linspace(*xlim, n), np.linspace(*ylim, n))
    return xx, yy, np.stack([xx.ravel(), yy.ravel()], axis=1)


def _evaluate(
    fn: Callable[[Tensor], Tensor],
    pts: np.ndarray,
    name: str,
    out_shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> np.ndarray:
    """Call ``fn`` on the points as one batch and check the output shape.

    No ``torch.no_grad`` here: a score may itself be computed with autograd.
    """
    out = as_numpy(fn(torch.as_tensor(pts, dtype=dtype, device=device)), name)
    if out.shape != out_shape:
        raise ValueError(f"{name} must return shape {out_shape} for these points; got {out.shape}")
    return out


def log1p_arrows(vectors: object) -> np.ndarray:
    """Rescale vectors ``(M, 2)`` to ``direction · log1p(norm)`` (seed 001's quiver map).

    Keeps every arrow visible where the score is huge (far from data) and tiny (near modes).
    """
    v = as_numpy(vectors, "vectors")
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    # log1p(r) / r -> 1 as r -> 0, so a zero vector stays zero.
    scale = np.divide(np.log1p(norm), norm, out=np.ones_like(norm), where=norm > 0)
    return v * scale


def score_field(
    score_fn: Callable[[Tensor], Tensor],
    *,
    xlim: Limits = (-1.5, 2.0),
    ylim: Limits = (-1.5, 2.0),
    n: int = 50,
    data: object | None = None,
    log1p: bool = True,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Quiver map of a score ``∇ log p(x)`` on an ``n × n`` grid, arrows ``direction·log1p(norm)``.

    ``score_fn`` maps points ``(n², 2)`` to scores ``(n², 2)`` (for a noise-conditional score, pass
    ``lambda x: score(x, sigma)``). ``data`` ``(N, 2)`` is scattered under the arrows. The plotted
    arrows are the Quiver artist's ``U``, ``V``. Draws on ``ax`` when given.
    """
    xx, yy, pts = _grid(xlim, ylim, n)
    vectors = _evaluate(score_fn, pts, "score_fn", pts.shape, dtype, device)
    if log1p:
        vectors = log1p_arrows(vectors)
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    if data is not None:
        d = as_points(data, "data")
        ax.scatter(d[:, 0], d[:, 1], s=20, alpha=0.3, color="tab:red", edgecolor="white")
    ax.quiver(pts[:, 0], pts[:, 1], vectors[:, 0], vectors[:, 1], width=0.002, color="black")
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    if title:
        ax.set_title(title)
    return save_figure(ax.figure, path, dpi=dpi)


def _contours(
    ax: Axes,
    log_prob_fn: Callable[[Tensor], Tensor],
    xlim: Limits,
    ylim: Limits,
    *,
    n: int,
    levels: int | Sequence[float],
    density: bool,
    cmap: str,
    dtype: torch.dtype,
    device: torch.device | str | None,
) -> None:
    """Contour lines of ``log p`` (or of ``p`` when ``density``) on an ``n × n`` grid."""
    xx, yy, pts = _grid(xlim, ylim, n)
    z = _evaluate(log_prob_fn, pts, "log_prob_fn", (len(pts),), dtype, device).reshape(xx.shape)
    if density:
        z = np.exp(z)
    z = np.where(np.isfinite(z), z, np.nan)
    ax.contour(xx, yy, z, levels=levels, cmap=cmap)


def log_density_contours(
    log_prob_fn: Callable[[Tensor], Tensor],
    *,
    xlim: Limits,
    ylim: Limits,
    n: int = 100,
    levels: int | Sequence[float] = 20,
    density: bool = False,
    cmap: str = "Greys",
    data: object | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Contour lines of ``log p(x)`` (or ``p(x)`` when ``density``) over a 2-D box (seed 004).

    ``log_prob_fn`` maps points ``(n², 2)`` to log-densities ``(n²,)``; ``data`` ``(N, 2)`` is
    scattered under the contours.
    """
    if ax is None:
        fig, axes = new_figure()
        ax = axes[0, 0]
    if data is not None:
        d = as_points(data, "data")
        ax.scatter(d[:, 0], d[:, 1], s=6, alpha=0.3, color="tab:blue", edgecolor="none")
    _contours(
        ax,
        log_prob_fn,
        xlim,
        ylim,
        n=n,
        levels=levels,
        density=density,
        cmap=cmap,
        dtype=dtype,
        device=device,
    )
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    if title:
        ax.set_title(title)
    return save_figure(ax.figure, path, dpi=dpi)


def score_components(
    points: object,
    total: object,
    components: Sequence[object],
    *,
    component_log_probs: Sequence[Callable[[Tensor], Tensor]] | None = None,
    labels: Sequence[str] | None = None,
    xlim: Limits | None = None,
    ylim: Limits | None = None,
    title: str | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """A mixture's score and its components' weighted scores as arrows at ``points`` (seed 004).

    ``total`` ``(M, 2)`` is ``∇ log p`` at ``points`` ``(M, 2)``; ``components[k]`` ``(M, 2)`` is
    ``w_k(x) ∇ log p_k(x)`` with ``w_k(x) = π_k p_k(x) / p(x)``, so the components sum to the
    total. Each component gets its own colour, with contour lines of its density when
    ``component_log_probs[k]`` (points ``(n², 2)`` -> ``(n²,)``) is given. Arrows share one scale.
    """
    pts = as_points(points, "points")
    vecs = [as_points(total, "total")] + [
        as_points(c, f"components[{k}]") for k, c in enumerate(components)
    ]
    if any(len(v) != len(pts) for v in vecs):
        raise ValueError("total and every entry of components must have one row per point")
    labels = [f"component {k}" for k in range(len(components))] if labels is None else list(labels)
    if len(labels) != len(components):
        raise ValueError(f"labels must name each of the {len(components)} components")
    if component_log_probs is not None and len(component_log_probs) != len(components):
        raise ValueError("component_log_probs must hold one log-density per component")
    if xlim is None or ylim is None:
        auto_x, auto_y = padded_limits(pts, margin=0.15)
        xlim, ylim = xlim or auto_x, ylim or auto_y
    fig, axes = new_figure()
    ax = axes[0, 0]
    # One shared scale (data units per score unit): the longest arrow spans 15% of the box.
    longest = max(float(np.linalg.norm(v, axis=1).max()) for v in vecs) or 1.0
    scale = longest / (0.15 * (xlim[1] - xlim[0]))
    quiver = dict(angles="xy", scale_units="xy", scale=scale, width=0.003)
    for k, vec in enumerate(vecs[1:]):
        color = COMPONENT_COLORS[k % len(COMPONENT_COLORS)]
        ax.quiver(*pts.T, *vec.T, color=color, alpha=0.6, label=labels[k], **quiver)
        if component_log_probs is not None:
            _contours(
                ax,
                component_log_probs[k],
                xlim,
                ylim,
                n=100,
                levels=8,
                density=True,
                cmap=COMPONENT_CMAPS[k % len(COMPONENT_CMAPS)],
                dtype=torch.float64,
                device=None,
            )
    ax.quiver(*pts.T, *vecs[0].T, color="black", alpha=0.8, label="total score", **quiver)
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.legend(loc="upper left", fontsize="small")
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=dpi)
