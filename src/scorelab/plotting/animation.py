"""GIF animations: points moving through noise levels or time, and curves over training.

Frames are written with matplotlib's ``PillowWriter`` (no ffmpeg needed), at most ``max_frames``
of them (evenly strided, first and last kept) so a GIF stays small and quick to write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure
from torch import Tensor

from scorelab.plotting import PathLike, as_numpy, as_points, new_figure, padded_limits
from scorelab.plotting.fields import COMPONENT_COLORS, Limits
from scorelab.utils import atomic_writer, check_int, check_positive


def frame_indices(n_total: int, max_frames: int = 60) -> np.ndarray:
    """At most ``max_frames`` evenly spaced indices of ``range(n_total)``, first and last kept."""
    n_total = check_int(n_total, "n_total")
    max_frames = check_int(max_frames, "max_frames", minimum=2 if n_total > 1 else 1)
    return np.unique(np.linspace(0, n_total - 1, min(n_total, max_frames)).round().astype(int))


def _write_gif(fig: Figure, path: PathLike, fps: float, dpi: float, draw_frame, idx) -> None:
    """Call ``draw_frame(i)`` for each index and grab it into a GIF written atomically."""
    writer = PillowWriter(fps=check_positive(fps, "fps"))
    # Fixed margins and no layout engine: an engine would lay out (and draw) twice per frame.
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.1, top=0.92)

    def write(tmp) -> None:
        # setup/finish by hand, not writer.saving(): that would still finish (write) after an error.
        writer.setup(fig, str(tmp), dpi)
        for i in idx:
            draw_frame(int(i))
            writer.grab_frame()
        writer.finish()

    atomic_writer(path, write)


def _titles(titles: Sequence[str] | None, n: int) -> list[str]:
    if titles is None:
        return [f"step {i}" for i in range(n)]
    if len(titles) != n:
        raise ValueError(f"titles must hold one title per frame ({n}); got {len(titles)}")
    return list(titles)


def animate_points(
    frames: Sequence[object] | np.ndarray | Tensor,
    *,
    path: PathLike,
    titles: Sequence[str] | None = None,
    groups: object | None = None,
    background: object | None = None,
    xlim: Limits | None = None,
    ylim: Limits | None = None,
    fps: float = 10,
    max_frames: int = 60,
    dpi: float = 80,
) -> Figure:
    """GIF of 2-D points over time: annealed Langevin, forward/reverse diffusion (seeds 002, 004).

    ``frames`` is an array ``(T, N, 2)`` or a list of ``(N_t, 2)`` arrays; ``groups`` ``(N,)``
    colours points by an integer label (e.g. starting mode); ``background`` ``(M, 2)`` (e.g. data)
    is drawn in grey. Limits default to a box holding every shown frame. Returns the Figure.
    """
    if len(frames) == 0:
        raise ValueError("frames must hold at least one (N, 2) frame")
    titles = _titles(titles, len(frames))
    idx = frame_indices(len(frames), max_frames)
    clouds = {int(t): as_points(frames[t], f"frames[{t}]") for t in idx}  # only the shown ones
    colors = "tab:blue"
    if groups is not None:
        g = as_numpy(groups, "groups").astype(int)
        if any(c.shape[0] != g.shape[0] for c in clouds.values()) or g.ndim != 1:
            raise ValueError("groups must have shape (N,), N the number of points of every frame")
        labels = {label: k for k, label in enumerate(np.unique(g))}
        colors = [COMPONENT_COLORS[labels[v] % len(COMPONENT_COLORS)] for v in g]
    if xlim is None or ylim is None:
        auto_x, auto_y = padded_limits(*clouds.values())
        xlim, ylim = xlim or auto_x, ylim or auto_y
    fig, axes = new_figure(size=4.0, layout=None)
    ax = axes[0, 0]
    if background is not None:
        bg = as_points(background, "background")
        ax.scatter(bg[:, 0], bg[:, 1], s=2, color="lightgrey")
    scatter = ax.scatter(clouds[0][:, 0], clouds[0][:, 1], s=4, c=colors, alpha=0.6)
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")

    def draw(i: int) -> None:
        scatter.set_offsets(clouds[i])
        ax.set_title(titles[i])

    _write_gif(fig, path, fps, dpi, draw, idx)
    return fig


def animate_curves(
    x_grid: object,
    frames: Sequence[Mapping[str, object]],
    *,
    path: PathLike,
    fixed: Mapping[str, object] | None = None,
    titles: Sequence[str] | None = None,
    ylim: Limits | None = None,
    xlabel: str = "x",
    ylabel: str = "",
    fps: float = 10,
    max_frames: int = 60,
    dpi: float = 80,
) -> Figure:
    """GIF of curves changing over training, e.g. fitted score and pdf per epoch (seed 003).

    ``frames[t]`` maps a label to values ``(G,)`` on ``x_grid`` ``(G,)`` (the same labels in every
    frame); ``fixed`` curves (e.g. the true score) are drawn thick in every frame. The y range
    defaults to every shown value with a 10% margin. Returns the Figure.
    """
    x = as_numpy(x_grid, "x_grid")
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"x_grid must have shape (G,) with G >= 2; got {x.shape}")
    if not frames:
        raise ValueError("frames must hold at least one dict of curves")
    names = list(frames[0])
    curves = []
    for t, frame in enumerate(frames):
        if list(frame) != names:
            raise ValueError(f"frames[{t}] must hold the curves {names}; got {list(frame)}")
        curves.append({n: as_numpy(frame[n], f"frames[{t}][{n!r}]") for n in names})
        if any(y.shape != x.shape for y in curves[-1].values()):
            raise ValueError(f"every curve of frames[{t}] must have the shape of x_grid {x.shape}")
    fixed_y = {n: as_numpy(y, f"fixed[{n!r}]") for n, y in (fixed or {}).items()}
    titles = _titles(titles, len(curves))
    idx = frame_indices(len(curves), max_frames)
    if ylim is None:
        values = np.concatenate([curves[i][n] for i in idx for n in names] + list(fixed_y.values()))
        lo, hi = np.nanmin(values), np.nanmax(values)
        pad = 0.1 * max(hi - lo, 1e-9)
        ylim = (lo - pad, hi + pad)
    fig, axes = new_figure(figsize=(6.0, 4.0), layout=None)
    ax = axes[0, 0]
    for name, y in fixed_y.items():
        ax.plot(x, y, linewidth=3, color="black", alpha=0.7, label=name)
    lines = {n: ax.plot(x, curves[0][n], linewidth=1.5, label=n)[0] for n in names}
    ax.set(xlim=(x[0], x[-1]), ylim=ylim, xlabel=xlabel, ylabel=ylabel)
    ax.legend(loc="upper left", fontsize="small")

    def draw(i: int) -> None:
        for n, line in lines.items():
            line.set_ydata(curves[i][n])
        ax.set_title(titles[i])

    _write_gif(fig, path, fps, dpi, draw, idx)
    return fig
