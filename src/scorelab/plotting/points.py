"""Sample clouds, particle paths and score-ascent trails (seeds 001, 003, 004)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
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
from scorelab.plotting.fields import COMPONENT_COLORS, Limits, score_field
from scorelab.utils import check_int


def _cloud(x: object, name: str) -> np.ndarray:
    """Samples as ``(N, D)`` with ``D`` 1 or 2; a 1-D ``(N,)`` array counts as ``D = 1``."""
    a = as_numpy(x, name)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[1] not in (1, 2) or a.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N,), (N, 1) or (N, 2); got {a.shape}")
    return a


def scatter_compare(
    data: object,
    samples: object,
    *,
    labels: tuple[str, str] = ("data", "samples"),
    title: str | None = None,
    overlay: bool = True,
    pdf: tuple[object, object] | None = None,
    bins: int = 80,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Data against model samples: 2-D scatter, or 1-D density histograms (seeds 000, 001, 003).

    ``data`` and ``samples`` are ``(N, 2)`` (scatter, overlaid or side by side with shared limits)
    or ``(N,)``/``(N, 1)`` (normalised histograms, plus the curve ``pdf = (x_grid, p)`` if given).
    """
    a, b = _cloud(data, "data"), _cloud(samples, "samples")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"data and samples must have the same dimension; got {a.shape[1]} and {b.shape[1]}"
        )
    colors = ("tab:red", "tab:blue")
    if a.shape[1] == 1:
        fig, axes = new_figure()
        ax = axes[0, 0]
        edges = np.histogram_bin_edges(np.concatenate([a[:, 0], b[:, 0]]), bins=bins)
        for x, label, color in zip((a, b), labels, colors, strict=True):
            ax.hist(x[:, 0], bins=edges, density=True, alpha=0.45, color=color, label=label)
        if pdf is not None:
            grid, p = as_numpy(pdf[0], "pdf[0]"), as_numpy(pdf[1], "pdf[1]")
            ax.plot(grid, p, color="black", linewidth=2, label="pdf")
        ax.set(xlabel="x", ylabel="density")
        ax.legend()
        axes_used = [ax]
    else:
        xlim, ylim = padded_limits(a, b)
        fig, axes = new_figure(1 if overlay else 2)
        axes_used = list(axes[0])
        for i, (x, label, color) in enumerate(zip((a, b), labels, colors, strict=True)):
            ax = axes_used[0 if overlay else i]
            ax.scatter(x[:, 0], x[:, 1], s=3, alpha=0.5, color=color, label=label)
            ax.set(xlim=xlim, ylim=ylim, aspect="equal")
            ax.legend(loc="upper right", markerscale=4)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path, dpi=dpi)


def trajectory_plot(
    trajectory: object,
    *,
    max_paths: int = 10,
    background: object | None = None,
    xlim: Limits | None = None,
    ylim: Limits | None = None,
    title: str | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Paths of the first ``max_paths`` particles of a trajectory ``(T, B, 2)``; start ○, end ★.

    ``background`` ``(N, 2)`` (e.g. data) is scattered in grey beneath the paths.
    """
    traj = as_numpy(trajectory, "trajectory")
    if traj.ndim != 3 or traj.shape[2] != 2 or traj.shape[0] < 1:
        raise ValueError(f"trajectory must have shape (T, B, 2); got {traj.shape}")
    traj = traj[:, : check_int(max_paths, "max_paths")]
    if xlim is None or ylim is None:
        auto_x, auto_y = padded_limits(traj)
        xlim, ylim = xlim or auto_x, ylim or auto_y
    fig, axes = new_figure()
    ax = axes[0, 0]
    if background is not None:
        bg = as_points(background, "background")
        ax.scatter(bg[:, 0], bg[:, 1], s=3, alpha=0.3, color="grey")
    for i in range(traj.shape[1]):
        color = COMPONENT_COLORS[i % len(COMPONENT_COLORS)]
        ax.plot(traj[:, i, 0], traj[:, i, 1], color=color, linewidth=1, alpha=0.8)
    ax.scatter(
        traj[0, :, 0],
        traj[0, :, 1],
        marker="o",
        s=30,
        facecolor="none",
        edgecolor="black",
        label="start",
    )
    ax.scatter(traj[-1, :, 0], traj[-1, :, 1], marker="*", s=80, color="black", label="end")
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.legend(loc="upper right")
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=dpi)


def trail_plot(
    trail: object,
    *,
    score_fn: Callable[[Tensor], Tensor] | None = None,
    data: object | None = None,
    xlim: Limits = (-1.5, 2.0),
    ylim: Limits = (-1.5, 2.0),
    n: int = 50,
    title: str | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Score-ascent trail ``(T, 2)`` (or ``(T, B, 2)``) drawn as arrows step to step (seed 001).

    With ``score_fn`` the log1p quiver map of :func:`score_field` (and ``data``) is drawn beneath.
    """
    pts = as_numpy(trail, "trail")
    if pts.ndim == 2:
        pts = pts[:, None]
    if pts.ndim != 3 or pts.shape[2] != 2 or pts.shape[0] < 1:
        raise ValueError(f"trail must have shape (T, 2) or (T, B, 2); got {pts.shape}")
    fig, axes = new_figure()
    ax = axes[0, 0]
    if score_fn is not None:
        score_field(score_fn, xlim=xlim, ylim=ylim, n=n, data=data, ax=ax)
    elif data is not None:
        d = as_points(data, "data")
        ax.scatter(d[:, 0], d[:, 1], s=20, alpha=0.3, color="tab:red", edgecolor="white")
    for b in range(pts.shape[1]):
        p = pts[:, b]
        ax.scatter(p[:, 0], p[:, 1], s=40, color="tab:green", edgecolor="white", zorder=3)
        step = np.diff(p, axis=0)
        # Exact data-unit arrows from each point to the next.
        ax.quiver(
            *p[:-1].T,
            *step.T,
            angles="xy",
            scale_units="xy",
            scale=1,
            color="tab:green",
            width=0.006,
            zorder=4,
        )
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=dpi)


def forward_diffusion_1d(
    trajectories: object,
    times: object,
    *,
    groups: object | None = None,
    colors: Sequence[str] = ("tab:red", "tab:blue", "tab:green", "tab:purple"),
    alpha: float = 0.1,
    title: str | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """1-D forward-diffusion paths ``x_t``: ``trajectories`` ``(T, N)`` over ``times`` ``(T,)``.

    ``groups`` ``(N,)`` holds an integer label per path (e.g. the mixture mode it started in); each
    group is drawn in its own colour (seed 004, g(t) = λ^t).
    """
    x, t = as_numpy(trajectories, "trajectories"), as_numpy(times, "times")
    if x.ndim != 2 or t.shape != (x.shape[0],):
        raise ValueError(f"trajectories must be (T, N) and times (T,); got {x.shape} and {t.shape}")
    g = np.zeros(x.shape[1]) if groups is None else as_numpy(groups, "groups")
    if g.shape != (x.shape[1],):
        raise ValueError(f"groups must have shape (N,) = ({x.shape[1]},); got {g.shape}")
    fig, axes = new_figure(figsize=(7.0, 4.0))
    ax = axes[0, 0]
    for k, label in enumerate(np.unique(g)):
        ax.plot(t, x[:, g == label], color=colors[k % len(colors)], alpha=alpha, linewidth=1)
    ax.set(xlabel="time t", ylabel="x")
    ax.grid(True, alpha=0.3)
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=dpi)
