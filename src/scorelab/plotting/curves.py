"""Line plots: loss and score-error curves over training, sample quality against cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from scorelab.plotting import PathLike, as_numpy, new_figure, save_figure

History = Sequence[Mapping[str, object]] | Mapping[str, Sequence[object]]


def _series(history: History, key: str, x_key: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The ``(x, y)`` points of ``key``: records lacking it (or holding None) are skipped."""
    if isinstance(history, Mapping):
        y = list(history.get(key) or [])
        x = list(history[x_key]) if x_key is not None else list(range(len(y)))
        pairs = [(a, b) for a, b in zip(x, y, strict=False) if b is not None]
    else:
        pairs = [
            (rec[x_key] if x_key is not None else i, rec[key])
            for i, rec in enumerate(history)
            if rec.get(key) is not None
        ]
    if not pairs:
        return np.empty(0), np.empty(0)
    xs, ys = zip(*pairs, strict=True)
    return as_numpy(list(xs), x_key or "index"), as_numpy([float(v) for v in ys], key)


def loss_curves(
    history: History,
    keys: Sequence[str] = ("train_loss", "test_loss"),
    *,
    x_key: str | None = None,
    log_y: bool = True,
    xlabel: str | None = None,
    ylabel: str = "loss",
    title: str | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Loss (or score-error) curves from a training history (seeds 000, 003, 004).

    ``history`` is a list of per-step/epoch records (dicts) or a dict of lists; each name in
    ``keys`` present there becomes one curve against ``history[x_key]`` (default: the record
    index). ``log_y`` uses a log axis, or symlog when some value is <= 0 (e.g. an ISM loss).
    """
    series = {key: _series(history, key, x_key) for key in keys}
    series = {key: xy for key, xy in series.items() if xy[1].size}
    if not series:
        present = (
            sorted(history)
            if isinstance(history, Mapping)
            else sorted({k for rec in history for k in rec})
        )
        raise ValueError(f"keys {list(keys)} hold no values in history; it has {present}")
    fig, axes = new_figure(figsize=(6.5, 4.0))
    ax = axes[0, 0]
    for key, (x, y) in series.items():
        ax.plot(x, y, marker="o" if len(x) < 30 else None, markersize=3, label=key)
    if log_y:
        positive = all(bool((y > 0).all()) for _, y in series.values())
        ax.set_yscale("log" if positive else "symlog")
    ax.set(xlabel=xlabel or x_key or "record", ylabel=ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=dpi)


def _sorted_lines(table: Mapping, width: int, what: str) -> list[tuple[str, np.ndarray]]:
    """Each entry of ``table`` as an array ``(k, width)`` sorted by its first column."""
    if not table:
        raise ValueError(f"table must map at least one {what} points")
    lines = []
    for name, points in table.items():
        pts = as_numpy(points, f"table[{name!r}]").reshape(-1, width)
        lines.append((name, pts[np.argsort(pts[:, 0])]))
    return lines


def _finish(fig, ax, xlabel: str, ylabel: str, title: str | None, path, dpi: float) -> Figure:
    """Labels, grid, legend and title of a one-axes line plot; saved when ``path`` is given."""
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return save_figure(fig, path, dpi=dpi)


def _peer_stars(ax, peers: Mapping[str, tuple[float, float]] | None, first_colour: int) -> None:
    """One starred ``(x, y)`` point per name: a reference without the plot's own knob, coloured
    from the ``first_colour``-th colour of the cycle on (after the lines')."""
    for i, (name, (x, y)) in enumerate((peers or {}).items()):
        ax.scatter([x], [y], marker="*", s=160, zorder=3, color=f"C{first_colour + i}", label=name)


def _reference_lines(ax, lines: float | Mapping[str, float] | None, vertical: bool) -> None:
    """Dashed reference lines: one unlabelled value, or a labelled line per name (legend)."""
    if lines is None:
        return
    named = lines.items() if isinstance(lines, Mapping) else [(None, lines)]
    draw = ax.axvline if vertical else ax.axhline
    colour = "dimgray" if vertical else "black"
    for (name, value), style in zip(named, ("dashed", "dotted", "dashdot"), strict=False):
        draw(float(value), color=colour, linestyle=style, linewidth=1, label=name)


def quality_vs_evals(
    table: Mapping[str, Sequence[tuple[float, float]]],
    *,
    floor_line: float | None = 1.0,
    peers: Mapping[str, tuple[float, float]] | None = None,
    xlabel: str = "score evaluations",
    ylabel: str = "distance / noise floor",
    log_y: bool = False,
    title: str | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Sample quality against the number of score evaluations, one line per sampler (log x axis).

    ``table`` maps a sampler name to ``(n_evals, ratio)`` points, ``ratio`` being a distance to the
    target divided by its two-sample noise floor; ``floor_line`` draws that floor, and ``peers``
    (name -> one ``(n_evals, ratio)`` point, e.g. a reference implementation) are marked with stars.
    """
    lines = _sorted_lines(table, 2, "sampler name to (n_evals, ratio)")
    fig, axes = new_figure(figsize=(6.5, 4.5))
    ax = axes[0, 0]
    for name, pts in lines:
        ax.plot(pts[:, 0], pts[:, 1], marker="o", markersize=4, label=name)
    _peer_stars(ax, peers, len(lines))
    if floor_line is not None:
        _reference_lines(ax, {"noise floor": floor_line}, vertical=False)
    ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    return _finish(fig, ax, xlabel, ylabel, title, path, dpi)


def tradeoff_curves(
    table: Mapping[str, Sequence[tuple[float, float, float]]],
    *,
    xlabel: str,
    ylabel: str,
    label: str = "{:g}",
    x_line: float | Mapping[str, float] | None = None,
    y_line: float | Mapping[str, float] | None = None,
    peers: Mapping[str, tuple[float, float]] | None = None,
    log_x: bool = False,
    title: str | None = None,
    path: PathLike | None = None,
    dpi: float = 100,
) -> Figure:
    """Two measures against each other as a knob turns (a guidance sweep: Fréchet distance
    against class accuracy as the scale grows), one line per method.

    ``table`` maps a method to ``(knob, x, y)`` points, drawn in knob order and each labelled
    ``label.format(knob)``; ``x_line`` and ``y_line`` draw targets (dashed): a value, or a
    mapping from a legend label to a value (up to three lines each, dashed, dotted, dash-dotted);
    ``peers`` (name -> one ``(x, y)`` point, e.g. a method without the knob) are marked with
    stars; ``log_x`` a log x axis.
    """
    lines = _sorted_lines(table, 3, "method to (knob, x, y)")
    fig, axes = new_figure(figsize=(6.5, 4.5))
    ax = axes[0, 0]
    for name, pts in lines:
        ax.plot(pts[:, 1], pts[:, 2], marker="o", markersize=4, label=name)
        for knob, x, y in pts:
            ax.annotate(label.format(knob), (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize="x-small")  # fmt: skip
    _peer_stars(ax, peers, len(lines))
    _reference_lines(ax, x_line, vertical=True)
    _reference_lines(ax, y_line, vertical=False)
    if log_x:
        ax.set_xscale("log")
    return _finish(fig, ax, xlabel, ylabel, title, path, dpi)
