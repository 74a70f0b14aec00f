"""The seeds' notebook plotting helpers, drawing on pyplot's current axes as a notebook does.

Seed 001: ``plot_gradients`` (``scorelab.plotting.score_field`` on a new pyplot figure, so that the
seed's next ``plt.scatter`` lands on it). Seed 004: ``kdeplot`` (kernel density contours at
iso-proportion levels, ``scorelab.plotting.hdr_levels``; no seaborn needed), ``quiver_plot``,
``gmm_pdf_contour_plot`` (the mixture's density from ``scorelab.targets``, log-density computed
in log space) and ``visualize_diffusion_distr``.

Unlike ``scorelab.plotting`` (no pyplot, explicit figures), these mimic the seeds' cells: without
an ``ax`` they draw on ``plt.gca()`` and new figures are pyplot figures, which a notebook shows.
Each returns what it drew (Axes, Quiver, ContourSet or Figure).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.quiver import Quiver
from torch import Tensor

from scorelab.notebook._arrays import as_points as _as_tensor_points
from scorelab.notebook.seed004 import GaussianMixture
from scorelab.plotting import as_numpy, as_points, hdr_levels, score_field
from scorelab.utils import check_int

__all__ = [
    "gmm_pdf_contour_plot",
    "kdeplot",
    "plot_gradients",
    "quiver_plot",
    "visualize_diffusion_distr",
]


def _current_axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # imported here: pyplot picks a backend on import

    return plt.gca()


def _next_color(ax: Axes) -> str:
    """The next colour of ``ax``'s property cycle (and advance it), via public API only."""
    (line,) = ax.plot([], [])
    color = line.get_color()
    line.remove()
    return color


# ------------------------------------------------------------------------------------------------
# Seed 001.
# ------------------------------------------------------------------------------------------------


def _columns_of_points(data: object) -> np.ndarray:
    """Seed 001 passes its data transposed, ``(2, N)``; accept that and ``(N, 2)``."""
    a = as_numpy(data, "data")
    if a.ndim == 2 and a.shape[0] == 2 and a.shape[1] != 2:
        a = a.T
    return as_points(a, "data")


def plot_gradients(
    model: Callable[[Tensor], Tensor],
    data: object,
    plot_scatter: bool = True,
    *,
    xlim: tuple[float, float] = (-1.5, 2.0),
    ylim: tuple[float, float] = (-1.5, 2.0),
    n: int = 50,
) -> Figure:
    """Quiver map of a learned score ``model(x)`` on a 50 × 50 grid over [−1.5, 2]² (seed 001).

    Arrows are ``direction · log1p(norm)`` (``scorelab.plotting.score_field``); ``data`` (the
    seed's ``(2, N)``, or ``(N, 2)``) is scattered beneath when ``plot_scatter``. The model is
    evaluated without gradients in its own dtype and device. Draws a new 5 × 5 pyplot figure,
    which stays current for further ``plt`` calls, and returns it.
    """
    import matplotlib.pyplot as plt

    if not callable(model):
        raise TypeError(f"model must be a score network s(x); got {type(model).__name__}")
    params = list(model.parameters()) if isinstance(model, torch.nn.Module) else []
    dtype = params[0].dtype if params else torch.float32
    device = params[0].device if params else None
    points = _columns_of_points(data) if plot_scatter else None

    def score(x: Tensor) -> Tensor:
        with torch.no_grad():
            return model(x)

    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot()
    score_field(score, xlim=xlim, ylim=ylim, n=n, data=points, dtype=dtype, device=device, ax=ax)
    return fig


# ------------------------------------------------------------------------------------------------
# Seed 004.
# ------------------------------------------------------------------------------------------------


def _kde_contours(
    ax: Axes, pnts: object, color: str, levels: int, thresh: float, name: str, **kwargs: Any
) -> ContourSet:
    """Gaussian-KDE contours of points ``(N, 2)`` at ``levels`` iso-proportions from ``thresh``.

    Iso-proportion p: a fraction p of the KDE's mass lies where the density is below the
    contour, so the outermost line (p = ``thresh``) encloses 1 − thresh of it (seaborn's levels).
    """
    from scipy.stats import gaussian_kde  # imported here: scipy.stats is slow to import

    pts = as_points(pnts, name)
    pts = pts[np.isfinite(pts).all(axis=1)]
    levels = check_int(levels, "levels")
    if not 0 < thresh < 1:
        raise ValueError(f"thresh must be in (0, 1); got {thresh}")
    try:
        kde = gaussian_kde(pts.T)
    except (np.linalg.LinAlgError, ValueError) as err:
        raise ValueError(
            f"{name} needs at least 3 finite points that do not lie on a line: {err}"
        ) from None
    # The grid reaches 3 bandwidths past the data, where the KDE has (nearly) no mass left.
    pad = 3 * kde.factor * pts.std(axis=0)
    lo, hi = pts.min(axis=0) - pad, pts.max(axis=0) + pad
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 100), np.linspace(lo[1], hi[1], 100))
    z = kde(np.stack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
    enclosed = 1.0 - np.linspace(thresh, 1.0, levels, endpoint=False)
    return ax.contour(xx, yy, z, levels=hdr_levels(z, enclosed), colors=color, **kwargs)


def kdeplot(
    pnts: object,
    label: str = "",
    ax: Axes | None = None,
    titlestr: str | None = None,
    handles: list | None = None,
    *,
    levels: int = 10,
    thresh: float = 0.05,
    **kwargs: Any,
) -> Axes:
    """Kernel density contours of 2-D points ``(N, 2)`` in the next colour of the axes (seed 004).

    A Gaussian KDE (``scipy.stats``, Scott's bandwidth) drawn at ``levels`` iso-proportion levels
    from ``thresh`` (the outermost line encloses 95 % of the mass by default), like
    ``seaborn.kdeplot``; ``kwargs`` go to ``Axes.contour`` (``color`` picks the colour). A
    legend handle labelled ``label`` is appended to ``handles`` when given (contour sets have no
    legend entry of their own); ``titlestr`` sets the title. Draws on ``ax`` or ``plt.gca()``.

    The seed's ``handles=[]`` default is one list shared by every call; here None means none.
    """
    ax = _current_axes(ax)
    color = kwargs.pop("color", None) or _next_color(ax)
    _kde_contours(ax, pnts, color, levels, thresh, "pnts", **kwargs)
    if handles is not None:
        handles.append(Line2D([], [], color=color, label=label))
    if titlestr is not None:
        ax.set_title(titlestr)
    return ax


def quiver_plot(pnts: object, vecs: object, *args: Any, ax: Axes | None = None,
                **kwargs: Any) -> Quiver:  # fmt: skip
    """Arrows ``vecs`` ``(N, 2)`` at ``pnts`` ``(N, 2)`` (seed 004); ``args``/``kwargs`` to quiver.

    Draws on ``ax`` or ``plt.gca()`` and returns the ``Quiver``.
    """
    p, v = as_points(pnts, "pnts"), as_points(vecs, "vecs")
    if len(p) != len(v):
        raise ValueError(f"vecs must have one row per point of pnts ({len(p)}); got {len(v)}")
    return _current_axes(ax).quiver(p[:, 0], p[:, 1], v[:, 0], v[:, 1], *args, **kwargs)


def gmm_pdf_contour_plot(
    gmm: object,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    ticks: int = 100,
    logprob: bool = False,
    label: str | None = None,
    *,
    ax: Axes | None = None,
    **kwargs: Any,
) -> ContourSet:
    """Contours of a density (or, with ``logprob``, its log) on a ``ticks × ticks`` grid (seed 004).

    ``gmm`` is a :class:`~scorelab.notebook.GaussianMixture` or anything with ``pdf(points)``
    taking an ``(H, W, 2)`` grid (e.g. ``gmm.RVs[k]``, a scipy frozen Gaussian). The box is
    ``xlim`` × ``ylim``, by default the current limits of the axes. For a mixture ``logprob``
    is computed in log space (finite where the density underflows to 0). ``kwargs`` go to
    ``Axes.contour``; ``label`` is accepted and unused, as in the seed.
    """
    ax = _current_axes(ax)
    ticks = check_int(ticks, "ticks", minimum=2)
    xlim = ax.get_xlim() if xlim is None else xlim
    ylim = ax.get_ylim() if ylim is None else ylim
    xx, yy = np.meshgrid(np.linspace(*xlim, ticks), np.linspace(*ylim, ticks))
    grid = np.dstack((xx, yy))
    if isinstance(gmm, GaussianMixture):
        pts, _ = _as_tensor_points(grid, gmm.dim, "grid")
        log_p = gmm.target.log_prob(pts).reshape(xx.shape).numpy()
        z = log_p if logprob else np.exp(log_p)
    elif callable(getattr(gmm, "pdf", None)):
        z = np.asarray(gmm.pdf(grid), dtype=np.float64)
        if logprob:
            with np.errstate(divide="ignore"):
                z = np.log(z)
    else:
        raise TypeError(
            "gmm must be a scorelab.notebook.GaussianMixture or have a pdf(points) method; got "
            f"{type(gmm).__name__}"
        )
    if z.shape != xx.shape:
        raise ValueError(f"gmm.pdf must return one value per grid point {xx.shape}; got {z.shape}")
    return ax.contour(xx, yy, np.where(np.isfinite(z), z, np.nan), **kwargs)


def visualize_diffusion_distr(
    x_traj_rev: object,
    leftT: int = 0,  # noqa: N803 (the seed's name)
    rightT: int = -1,  # noqa: N803 (the seed's name)
    explabel: str = "",
) -> Figure:
    """KDE of a reverse-diffusion trajectory at two steps, side by side (seed 004).

    ``x_traj_rev`` is ``(N, 2, T)`` (as ``reverse_diffusion_SDE_sampling`` returns); the left
    panel shows step ``leftT`` (the prior x_T by default), the right step ``rightT`` (``-1``:
    the last, x_0); negative steps count from the end. ``explabel`` is the figure's title.
    Returns the new pyplot figure.
    """
    import matplotlib.pyplot as plt

    traj = as_numpy(x_traj_rev, "x_traj_rev")
    if traj.ndim != 3 or traj.shape[1] != 2:
        raise ValueError(f"x_traj_rev must have shape (N, 2, T); got {traj.shape}")
    n_steps = traj.shape[2]
    steps = []
    for name, value in (("leftT", leftT), ("rightT", rightT)):
        if not isinstance(value, int | np.integer) or not -n_steps <= value < n_steps:
            raise ValueError(
                f"{name} must be a step index in [-{n_steps}, {n_steps}); got {value!r}"
            )
        steps.append(int(value) % n_steps)
    left, right = steps
    fig, axs = plt.subplots(1, 2, figsize=(12, 6))
    for ax, step, title in (
        (axs[0], left, f"step {left}: the prior x_T, before reverse diffusion"),
        (axs[1], right, f"step {right}: x_0 after {right} reverse-diffusion steps"),
    ):
        _kde_contours(ax, traj[:, :, step], _next_color(ax), 10, 0.05, f"x_traj_rev[:, :, {step}]")
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle(explabel)
    return fig
