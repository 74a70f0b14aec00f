"""Density pictures: KDE contours of 2-D sample sets against the exact density, and 1-D curves."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from scorelab.plotting import (
    PathLike,
    as_numpy,
    as_points,
    new_figure,
    padded_limits,
    save_figure,
)
from scorelab.plotting.fields import COMPONENT_COLORS, Limits, _evaluate, _grid
from scorelab.utils import check_int

DEFAULT_MASSES = (0.25, 0.5, 0.75, 0.95)


def hdr_levels(density: object, masses: Sequence[float] = DEFAULT_MASSES) -> np.ndarray:
    """Density thresholds whose super-level sets ``{p ≥ t}`` hold the given probability masses.

    ``density`` holds values of a density on a uniform grid that covers (nearly) all of its mass;
    the result is increasing, ready for ``contour(levels=...)``. Contours at equal masses make
    densities of different spread comparable (what seaborn calls iso-proportion levels).
    """
    values = np.sort(as_numpy(density, "density").ravel())[::-1]
    values = values[np.isfinite(values)]
    m = np.asarray(masses, dtype=np.float64)
    if values.size == 0 or values.sum() <= 0:
        raise ValueError("density must hold finite values with a positive sum")
    if m.ndim != 1 or np.any((m <= 0) | (m >= 1)):
        raise ValueError(f"masses must be numbers strictly between 0 and 1; got {masses!r}")
    mass_inside = np.cumsum(values) / values.sum()
    idx = np.minimum(np.searchsorted(mass_inside, m), values.size - 1)
    return np.unique(values[idx])


def _contour_at_masses(ax, xx, yy, z, masses, **kwargs) -> None:
    levels = hdr_levels(z, masses)
    if len(levels) > 1 or levels[0] < z.max():
        ax.contour(xx, yy, z, levels=levels, **kwargs)


def kde_compare(
    sets: Mapping[str, object],
    *,
    true_log_prob: Callable[[Tensor], Tensor] | None = None,
    masses: Sequence[float] = DEFAULT_MASSES,
    xlim: Limits | None = None,
    ylim: Limits | None = None,
    n: int = 80,
    max_points: int = 5000,
    title: str | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Kernel density contours of several 2-D sample sets, with the exact density's (seed 004).

    ``sets`` maps a label to samples ``(N, 2)``; each set's Gaussian KDE (``scipy.stats``, Scott's
    bandwidth, on at most ``max_points`` evenly strided samples) and ``exp(true_log_prob)`` (points
    ``(n², 2)`` -> ``(n²,)``, dashed black) are contoured at the same probability ``masses``.
    """
    # Imported here: scipy.stats takes seconds to import and only this function needs it.
    from scipy.stats import gaussian_kde

    if not sets:
        raise ValueError("sets must hold at least one labelled (N, 2) sample set")
    clouds = {label: as_points(x, f"sets[{label!r}]") for label, x in sets.items()}
    max_points = check_int(max_points, "max_points", minimum=3)
    if xlim is None or ylim is None:
        auto_x, auto_y = padded_limits(*clouds.values(), margin=0.1)
        xlim, ylim = xlim or auto_x, ylim or auto_y
    xx, yy, pts = _grid(xlim, ylim, n)
    fig, axes = new_figure()
    ax = axes[0, 0]
    handles = []
    for k, (label, x) in enumerate(clouds.items()):
        x = x[np.isfinite(x).all(axis=1)]
        x = x[np.linspace(0, len(x) - 1, min(len(x), max_points)).astype(int)]
        try:
            z = gaussian_kde(x.T)(pts.T).reshape(xx.shape)
        except (np.linalg.LinAlgError, ValueError) as err:
            raise ValueError(
                f"sets[{label!r}] needs at least 3 finite points that do not lie on a line: {err}"
            ) from None
        color = COMPONENT_COLORS[k % len(COMPONENT_COLORS)]
        _contour_at_masses(ax, xx, yy, z, masses, colors=color, linewidths=1.5)
        handles.append(Line2D([], [], color=color, label=label))
    if true_log_prob is not None:
        log_p = _evaluate(true_log_prob, pts, "true_log_prob", (len(pts),), torch.float64, None)
        _contour_at_masses(
            ax,
            xx,
            yy,
            np.exp(log_p).reshape(xx.shape),
            masses,
            colors="black",
            linestyles="dashed",
            linewidths=1,
        )
        handles.append(Line2D([], [], color="black", linestyle="dashed", label="exact density"))
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.legend(handles=handles, loc="upper left", fontsize="small")
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=dpi)


def pdf_1d(
    x_grid: object,
    curves: Mapping[str, object],
    *,
    reference: str | None = None,
    hist: object | None = None,
    bins: int = 80,
    xlabel: str = "x",
    ylabel: str = "density",
    ylim: Limits | None = None,
    title: str | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Curves over a 1-D grid: true vs recovered pdfs, or fitted vs true scores per σ (seed 003).

    ``curves`` maps a label to values ``(G,)`` on ``x_grid`` ``(G,)``; the curve named
    ``reference`` (e.g. the true pdf) is drawn thick in black; ``hist`` ``(N,)`` samples are shown
    as a normalised histogram beneath.
    """
    x = as_numpy(x_grid, "x_grid")
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"x_grid must have shape (G,) with G >= 2; got {x.shape}")
    ys = {label: as_numpy(y, f"curves[{label!r}]") for label, y in curves.items()}
    for label, y in ys.items():
        if y.shape != x.shape:
            raise ValueError(f"curves[{label!r}] must have x_grid's shape {x.shape}; got {y.shape}")
    if reference is not None and reference not in ys:
        raise ValueError(f"reference must be one of the curve labels {list(ys)}; got {reference!r}")
    fig, axes = new_figure(figsize=(7.0, 4.5))
    ax = axes[0, 0]
    if hist is not None:
        h = as_numpy(hist, "hist").ravel()
        ax.hist(h, bins=bins, density=True, color="lightgrey", label="sample histogram")
    if reference is not None:
        ax.plot(x, ys[reference], color="black", linewidth=3, label=reference)
    for label, y in ys.items():
        if label != reference:
            ax.plot(x, y, linewidth=1.5, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(x[0], x[-1]))
    if ylim is not None:
        ax.set_ylim(ylim)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=dpi)
