"""Tests for scorelab.plotting: files written, arrays drawn, exact levels, atomic saves."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.animation import PillowWriter
from matplotlib.figure import Figure
from matplotlib.quiver import Quiver
from PIL import Image

from scorelab import plotting as P

DPI = 50  # small pictures keep the tests fast


def _quivers(fig: Figure) -> list[Quiver]:
    return [c for ax in fig.axes for c in ax.collections if isinstance(c, Quiver)]


def _png(path, size: tuple[int, int]) -> None:
    assert path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == size


def _gif_frames(path) -> tuple[int, tuple[int, int]]:
    assert path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "GIF"
        return im.n_frames, im.size


def _only(tmp_path, *names: str) -> None:
    """No temp files left beside the outputs."""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def _gaussian_score(x: torch.Tensor) -> torch.Tensor:
    return -x  # score of N(0, I)


def _std_normal_log_prob(x: torch.Tensor) -> torch.Tensor:
    return -0.5 * (x**2).sum(dim=1) - math.log(2 * math.pi)


# --- helpers ----------------------------------------------------------------------------------


def test_as_numpy_takes_tensors_with_grad_and_rejects_junk():
    x = torch.ones(3, 2, requires_grad=True) * 2
    a = P.as_numpy(x)
    assert a.dtype == np.float64 and np.array_equal(a, np.full((3, 2), 2.0))
    with pytest.raises(TypeError, match="data"):
        P.as_numpy({"a": 1}, "data")
    with pytest.raises(ValueError, match=r"data must have shape \(N, 2\)"):
        P.as_points(np.zeros((4, 3)), "data")


def test_save_figure_none_writes_nothing(tmp_path):
    fig, _ = P.new_figure()
    assert P.save_figure(fig, None) is fig
    _only(tmp_path)


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    def boom(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        P.loss_curves({"train_loss": [1.0, 0.5]}, path=tmp_path / "loss.png")
    _only(tmp_path)


def test_failed_gif_leaves_no_file(tmp_path, monkeypatch):
    calls = []

    def boom(self, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("interrupted")

    monkeypatch.setattr(PillowWriter, "grab_frame", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        P.animate_points(np.zeros((4, 5, 2)), path=tmp_path / "a.gif", dpi=20)
    _only(tmp_path)


# --- fields -----------------------------------------------------------------------------------


def test_log1p_arrows_lengths_and_directions():
    v = np.array([[3.0, 4.0], [0.0, 0.0], [-1e-12, 0.0], [0.0, -100.0]])
    out = P.log1p_arrows(v)
    norm = np.linalg.norm(v, axis=1)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.log1p(norm), rtol=1e-12)
    np.testing.assert_allclose(out[0], np.array([0.6, 0.8]) * np.log1p(5.0))
    assert np.array_equal(out[1], [0.0, 0.0])


@pytest.mark.parametrize("log1p", [True, False])
def test_score_field_plots_log1p_scaled_arrows(tmp_path, log1p):
    path = tmp_path / "field.png"
    data = np.random.default_rng(0).normal(size=(20, 2))
    fig = P.score_field(
        _gaussian_score,
        xlim=(-2.0, 3.0),
        ylim=(-1.0, 1.0),
        n=7,
        data=data,
        log1p=log1p,
        dtype=torch.float64,
        path=path,
        dpi=DPI,
    )
    _png(path, (250, 250))
    (q,) = _quivers(fig)
    xy = q.get_offsets()
    uv = np.stack([np.asarray(q.U), np.asarray(q.V)], axis=1)
    assert xy.shape == (49, 2)
    r = np.linalg.norm(xy, axis=1)
    expected_len = np.log1p(r) if log1p else r
    np.testing.assert_allclose(np.linalg.norm(uv, axis=1), expected_len, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(uv * r[:, None], -xy * expected_len[:, None], atol=1e-10)
    assert fig.axes[0].get_xlim() == (-2.0, 3.0)


def test_score_field_rejects_wrong_output_shape():
    with pytest.raises(ValueError, match=r"score_fn must return shape \(25, 2\)"):
        P.score_field(lambda x: x[:, :1], n=5)


def test_score_field_draws_on_given_axes():
    fig, axes = P.new_figure(2)
    out = P.score_field(_gaussian_score, n=4, ax=axes[0, 1])
    assert out is fig and len(_quivers(fig)) == 1 and _quivers(fig)[0].axes is axes[0, 1]


def test_score_components_arrows_and_validation(tmp_path):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(30, 2))
    mus = np.array([[-1.0, 0.0], [1.0, 0.0]])
    logits = -0.5 * ((pts[:, None] - mus[None]) ** 2).sum(-1)
    w = np.exp(logits - logits.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    comps = [w[:, k : k + 1] * (mus[k] - pts) for k in range(2)]
    total = comps[0] + comps[1]
    lps = [lambda x, m=m: _std_normal_log_prob(x - torch.as_tensor(m)) for m in mus]
    path = tmp_path / "comps.png"
    fig = P.score_components(
        pts, total, comps, component_log_probs=lps, labels=["a", "b"], path=path, dpi=DPI
    )
    _png(path, (250, 250))
    qs = _quivers(fig)
    assert len(qs) == 3 and len({q.scale for q in qs}) == 1
    np.testing.assert_allclose(np.stack([qs[-1].U, qs[-1].V], 1), total)
    np.testing.assert_allclose(np.stack([qs[0].U, qs[0].V], 1), comps[0])
    with pytest.raises(ValueError, match="one row per point"):
        P.score_components(pts, total[:-1], comps)
    with pytest.raises(ValueError, match="labels"):
        P.score_components(pts, total, comps, labels=["only one"])


def test_log_density_contours_writes_png(tmp_path):
    path = tmp_path / "logp.png"
    fig = P.log_density_contours(
        _std_normal_log_prob,
        xlim=(-3, 3),
        ylim=(-3, 3),
        n=30,
        levels=5,
        data=np.zeros((3, 2)),
        path=path,
        dpi=DPI,
    )
    _png(path, (250, 250))
    assert fig.axes[0].get_ylim() == (-3.0, 3.0)
    with pytest.raises(ValueError, match="log_prob_fn must return shape"):
        P.log_density_contours(_gaussian_score, xlim=(-1, 1), ylim=(-1, 1), n=5)


# --- density ----------------------------------------------------------------------------------


def test_hdr_levels_match_the_exact_gaussian_thresholds():
    # For N(0, I) in 2-D the region {p >= t} is a disc of mass 1 - 2πt, so t = (1 - m) / (2π).
    g = np.linspace(-9, 9, 601)
    xx, yy = np.meshgrid(g, g)
    p = np.exp(-0.5 * (xx**2 + yy**2)) / (2 * np.pi)
    masses = (0.25, 0.5, 0.9)
    levels = P.hdr_levels(p, masses)
    expected = np.sort((1 - np.array(masses)) / (2 * np.pi))
    np.testing.assert_allclose(levels, expected, rtol=2e-3)
    assert np.all(np.diff(levels) > 0)
    with pytest.raises(ValueError, match="masses"):
        P.hdr_levels(p, (0.5, 1.0))


def test_kde_compare_writes_png_with_one_legend_entry_per_set(tmp_path):
    rng = np.random.default_rng(2)
    sets = {"learned": rng.normal(size=(300, 2)), "exact": torch.randn(300, 2)}
    path = tmp_path / "kde.png"
    fig = P.kde_compare(sets, true_log_prob=_std_normal_log_prob, n=30, path=path, dpi=DPI)
    _png(path, (250, 250))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["learned", "exact", "exact density"]
    with pytest.raises(ValueError, match="sets must hold"):
        P.kde_compare({})
    with pytest.raises(ValueError, match="on a line"):
        P.kde_compare({"flat": np.stack([np.arange(10.0), np.arange(10.0)], 1)}, n=10)


def test_pdf_1d_draws_curves_and_histogram(tmp_path):
    x = np.linspace(-4, 4, 50)
    p = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    path = tmp_path / "pdf.png"
    fig = P.pdf_1d(
        x, {"true": p, "fit": 0.9 * p}, reference="true", hist=np.zeros(10), path=path, dpi=DPI
    )
    _png(path, (350, 225))
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert lines["true"].get_linewidth() > lines["fit"].get_linewidth()
    np.testing.assert_allclose(lines["fit"].get_ydata(), 0.9 * p)
    with pytest.raises(ValueError, match="reference"):
        P.pdf_1d(x, {"fit": p}, reference="true")
    with pytest.raises(ValueError, match=r"curves\['fit'\]"):
        P.pdf_1d(x, {"fit": p[:-1]})


# --- points -----------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay,n_axes", [(True, 1), (False, 2)])
def test_scatter_compare_2d(tmp_path, overlay, n_axes):
    a, b = np.zeros((10, 2)), torch.ones(12, 2)
    path = tmp_path / "s.png"
    fig = P.scatter_compare(a, b, overlay=overlay, title="t", path=path, dpi=DPI)
    _png(path, (250 * n_axes, 250))
    assert len(fig.axes) == n_axes
    offsets = [c.get_offsets() for ax in fig.axes for c in ax.collections]
    assert [len(o) for o in offsets] == [10, 12]
    np.testing.assert_array_equal(offsets[1], np.ones((12, 2)))


def test_scatter_compare_1d_histograms_are_densities():
    rng = np.random.default_rng(3)
    grid = np.linspace(-3, 3, 20)
    fig = P.scatter_compare(
        rng.normal(size=200), rng.normal(size=(150, 1)), pdf=(grid, grid), bins=12
    )
    patches = fig.axes[0].patches
    assert len(patches) == 24
    for bars in (patches[:12], patches[12:]):
        area = sum(b.get_height() * b.get_width() for b in bars)
        assert area == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same dimension"):
        P.scatter_compare(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="samples must have shape"):
        P.scatter_compare(np.zeros(5), np.zeros((5, 3)))


def test_trajectory_plot_draws_each_path_and_endpoints(tmp_path):
    traj = torch.cumsum(torch.ones(6, 4, 2), dim=0) * torch.arange(1.0, 5.0)[None, :, None]
    path = tmp_path / "traj.png"
    fig = P.trajectory_plot(traj, max_paths=3, background=np.zeros((5, 2)), path=path, dpi=DPI)
    _png(path, (250, 250))
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    np.testing.assert_array_equal(lines[2].get_xydata(), traj[:, 2].numpy())
    start, end = fig.axes[0].collections[1:]
    np.testing.assert_array_equal(start.get_offsets(), traj[0, :3].numpy())
    np.testing.assert_array_equal(end.get_offsets(), traj[-1, :3].numpy())
    with pytest.raises(ValueError, match=r"\(T, B, 2\)"):
        P.trajectory_plot(np.zeros((5, 2)))


def test_trail_plot_arrows_join_consecutive_points(tmp_path):
    trail = [torch.tensor([1.5, 1.5])]
    for _ in range(5):  # score ascent on N(0, I): x <- x + 0.2 * (-x)
        trail.append(trail[-1] + 0.2 * _gaussian_score(trail[-1]))
    trail = torch.stack(trail)
    path = tmp_path / "trail.png"
    fig = P.trail_plot(
        trail, score_fn=_gaussian_score, data=np.zeros((3, 2)), n=6, path=path, dpi=DPI
    )
    _png(path, (250, 250))
    field, arrows = _quivers(fig)
    assert len(field.U) == 36
    np.testing.assert_allclose(arrows.get_offsets(), trail[:-1].numpy(), rtol=1e-6)
    steps = np.stack([arrows.U, arrows.V], 1)
    np.testing.assert_allclose(steps, np.diff(trail.numpy(), axis=0), rtol=1e-6)
    assert arrows.scale == 1 and arrows.scale_units == "xy"


def test_forward_diffusion_1d_colours_groups(tmp_path):
    t = np.linspace(0, 1, 8)
    x = np.zeros((8, 6))
    path = tmp_path / "fd.png"
    fig = P.forward_diffusion_1d(
        x, t, groups=[0, 0, 0, 1, 1, 1], colors=("red", "blue"), path=path, dpi=DPI
    )
    _png(path, (350, 200))
    colors = [ln.get_color() for ln in fig.axes[0].get_lines()]
    assert colors == ["red"] * 3 + ["blue"] * 3
    with pytest.raises(ValueError, match="groups must have shape"):
        P.forward_diffusion_1d(x, t, groups=[0, 1])
    with pytest.raises(ValueError, match="times"):
        P.forward_diffusion_1d(x, t[:-1])


# --- curves -----------------------------------------------------------------------------------


def test_loss_curves_from_records_with_gaps(tmp_path):
    history = [
        {"epoch": e, "train_loss": 1.0 / (e + 1), "test_loss": 2.0 if e % 2 == 0 else None}
        for e in range(5)
    ]
    path = tmp_path / "loss.png"
    fig = P.loss_curves(history, x_key="epoch", path=path, dpi=DPI)
    _png(path, (325, 200))
    ax = fig.axes[0]
    train, test = ax.get_lines()
    np.testing.assert_allclose(train.get_ydata(), 1.0 / np.arange(1, 6))
    np.testing.assert_array_equal(test.get_xdata(), [0, 2, 4])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "epoch"


def test_loss_curves_dict_of_lists_symlog_and_missing_keys():
    fig = P.loss_curves({"train_loss": [1.0, -0.5, -1.0]}, keys=("train_loss", "test_loss"))
    assert fig.axes[0].get_yscale() == "symlog" and len(fig.axes[0].get_lines()) == 1
    fig = P.loss_curves({"score_error": [1.0, 0.5]}, keys=("score_error",), log_y=False)
    assert fig.axes[0].get_yscale() == "linear"
    with pytest.raises(ValueError, match=r"it has \['loss'\]"):
        P.loss_curves([{"loss": 1.0}])


def test_quality_vs_evals(tmp_path):
    table = {"euler": [(100, 1.2), (10, 4.0)], "heun": [(20, 2.0)]}
    path = tmp_path / "q.png"
    fig = P.quality_vs_evals(table, peers={"reference": (50, 1.5)}, path=path, dpi=DPI)
    _png(path, (325, 225))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    euler, heun, floor = ax.get_lines()
    np.testing.assert_array_equal(euler.get_xdata(), [10, 100])  # sorted by cost
    np.testing.assert_array_equal(floor.get_ydata(), [1.0, 1.0])
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), [[50, 1.5]])
    with pytest.raises(ValueError, match="table"):
        P.quality_vs_evals({})


def test_tradeoff_curves_draws_each_method_in_knob_order(tmp_path):
    table = {"cfg": [(2.0, 3.0, 0.99), (0.0, 1.1, 0.95)], "classifier": [(1.0, 1.5, 0.9)]}
    path = tmp_path / "t.png"
    fig = P.tradeoff_curves(
        table, xlabel="fd", ylabel="acc", x_line=2.0, y_line=0.97, log_x=True, path=path, dpi=DPI
    )
    assert path.stat().st_size > 0
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    cfg, clf, vline, hline = ax.get_lines()
    np.testing.assert_array_equal(cfg.get_xdata(), [1.1, 3.0])  # knob 0 first
    np.testing.assert_array_equal(cfg.get_ydata(), [0.95, 0.99])
    np.testing.assert_array_equal(vline.get_xdata(), [2.0, 2.0])
    np.testing.assert_array_equal(hline.get_ydata(), [0.97, 0.97])
    assert [t.get_text() for t in ax.texts] == ["0", "2", "1"]
    with pytest.raises(ValueError, match="table"):
        P.tradeoff_curves({}, xlabel="x", ylabel="y")


def test_tradeoff_curves_labelled_reference_lines_and_peer_stars():
    fig = P.tradeoff_curves(
        {"scale": [(10.0, 0.26, 0.76), (30.0, 0.18, 0.85)]},
        xlabel="spread",
        ylabel="accuracy",
        x_line={"data's spread": 0.261},
        y_line={"target": 0.9, "posterior level": 0.83},
        peers={"neighbours": (0.261, 0.831)},
        dpi=DPI,
    )
    ax = fig.axes[0]
    _, vline, target, posterior = ax.get_lines()
    np.testing.assert_array_equal(vline.get_xdata(), [0.261, 0.261])
    np.testing.assert_array_equal(target.get_ydata(), [0.9, 0.9])
    np.testing.assert_array_equal(posterior.get_ydata(), [0.83, 0.83])
    assert (target.get_linestyle(), posterior.get_linestyle()) == ("--", ":")
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), [[0.261, 0.831]])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["scale", "neighbours", "data's spread", "target", "posterior level"]


# --- animation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_total,max_frames,expected",
    [(1, 60, [0]), (5, 60, [0, 1, 2, 3, 4]), (100, 4, [0, 33, 66, 99])],
)
def test_frame_indices(n_total, max_frames, expected):
    assert P.frame_indices(n_total, max_frames).tolist() == expected


def test_animate_points_writes_subsampled_gif(tmp_path):
    rng = np.random.default_rng(4)
    frames = rng.normal(size=(12, 20, 2)) * np.linspace(3, 0.1, 12)[:, None, None]
    path = tmp_path / "pts.gif"
    titles = [f"sigma {s:.2f}" for s in np.linspace(3, 0.1, 12)]
    fig = P.animate_points(
        frames, path=path, titles=titles, groups=np.arange(20) % 2, max_frames=5, dpi=20
    )
    assert _gif_frames(path) == (5, (80, 80))
    assert fig.axes[0].get_title() == titles[-1]
    np.testing.assert_array_equal(fig.axes[0].collections[0].get_offsets(), frames[-1])
    _only(tmp_path, "pts.gif")
    with pytest.raises(ValueError, match="titles"):
        P.animate_points(frames, path=tmp_path / "x.gif", titles=["a"])
    with pytest.raises(ValueError, match="groups"):
        P.animate_points(frames, path=tmp_path / "x.gif", groups=[0, 1])


def test_animate_points_accepts_lists_of_different_sizes(tmp_path):
    frames = [torch.zeros(3, 2), torch.ones(5, 2), 2 * torch.ones(4, 2)]
    fig = P.animate_points(frames, path=tmp_path / "p.gif", dpi=20)
    assert _gif_frames(tmp_path / "p.gif")[0] == 3
    assert len(fig.axes[0].collections[0].get_offsets()) == 4


def test_animate_curves_writes_gif(tmp_path):
    x = np.linspace(-3, 3, 40)
    frames = [{"fit": np.tanh(x) * k / 7} for k in range(8)]
    path = tmp_path / "c.gif"
    fig = P.animate_curves(x, frames, path=path, fixed={"true": np.tanh(x)}, dpi=20)
    assert _gif_frames(path) == (8, (120, 80))
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    np.testing.assert_allclose(lines["fit"].get_ydata(), np.tanh(x))
    lo, hi = fig.axes[0].get_ylim()
    assert lo < -1 < 1 < hi
    with pytest.raises(ValueError, match=r"frames\[1\] must hold"):
        P.animate_curves(x, [{"a": x}, {"b": x}], path=tmp_path / "bad.gif")


# --- images -----------------------------------------------------------------------------------


def test_tile_images_shape_values_and_placement():
    imgs = torch.stack([torch.full((1, 4, 3), v) for v in (-1.0, 0.0, 1.0, 0.5, -0.5)])
    grid = P.tile_images(imgs, nrow=2, pad=1)
    assert grid.dtype == np.uint8 and grid.shape == (3 * 5 + 1, 2 * 4 + 1)

    def tile(i: int) -> np.ndarray:  # image i of a 2-wide grid of 4x3 tiles, 1-pixel padding
        top, left = 1 + (i // 2) * 5, 1 + (i % 2) * 4
        return grid[top : top + 4, left : left + 3]

    assert [int(tile(i)[0, 0]) for i in range(5)] == [0, 128, 255, 191, 64]
    assert all(np.unique(tile(i)).size == 1 for i in range(5))
    assert np.all(grid[0] == 255) and np.all(tile(5) == 255)  # padding and the empty slot
    rgb = P.tile_images(np.zeros((3, 3, 2, 2), dtype=np.uint8), nrow=10, pad=0)
    assert rgb.shape == (2, 6, 3) and np.all(rgb == 0)
    with pytest.raises(ValueError, match="images must be"):
        P.tile_images(np.zeros((2, 2, 4, 4)))
    with pytest.raises(ValueError, match="value_range"):
        P.tile_images(np.zeros((2, 4, 4)), value_range=(1.0, 1.0))


def test_image_grid_png_size(tmp_path):
    path = tmp_path / "grid.png"
    P.image_grid(torch.zeros(12, 1, 8, 8), nrow=5, pad=2, upscale=2, path=path, dpi=DPI)
    # grid: 3 rows x 5 columns of 8x8 tiles with 2-pixel padding, drawn 2 pixels per pixel
    _png(path, (2 * (5 * 10 + 2), 2 * (3 * 10 + 2)))


def test_nearest_neighbours_finds_exact_copy():
    rng = np.random.default_rng(5)
    train = rng.uniform(-1, 1, size=(50, 1, 6, 6))
    samples = np.stack([train[17], rng.uniform(-1, 1, size=(1, 6, 6))])
    idx, dist = P.nearest_neighbours(samples, train, k=3)
    assert idx.shape == dist.shape == (2, 3)
    assert idx[0, 0] == 17 and dist[0, 0] == pytest.approx(0.0, abs=1e-6)
    brute = np.linalg.norm((train - samples[1]).reshape(50, -1), axis=1)
    np.testing.assert_array_equal(idx[1], np.argsort(brute)[:3])
    np.testing.assert_allclose(dist[1], np.sort(brute)[:3], rtol=1e-9)
    with pytest.raises(ValueError, match="k must be"):
        P.nearest_neighbours(samples, train, k=51)
    with pytest.raises(ValueError, match="share D"):
        P.nearest_neighbours(samples, train[:, :, :5])


def test_nearest_neighbour_grid_puts_the_copy_beside_the_sample(tmp_path):
    rng = np.random.default_rng(6)
    train = rng.integers(0, 256, size=(20, 5, 5), dtype=np.uint8)
    sample = train[[7]].astype(np.float64) / 127.5 - 1.0  # the same image in [-1, 1]
    path = tmp_path / "nn.png"
    fig = P.nearest_neighbour_grid(sample, train, k=2, pad=1, path=path, dpi=DPI)
    assert path.stat().st_size > 0
    grid = np.asarray(fig.axes[0].images[0].get_array())
    assert grid.shape == (7, 3 * 6 + 1)
    np.testing.assert_array_equal(grid[1:6, 1:6], train[7])
    np.testing.assert_array_equal(grid[1:6, 7:12], train[7])
    assert not np.array_equal(grid[1:6, 13:18], train[7])


def test_inpainting_grid_rows_are_masked_input_completions_original():
    rng = np.random.default_rng(7)
    truth = rng.uniform(-1, 1, size=(2, 1, 4, 4))
    mask = np.ones((1, 4, 4))
    mask[:, 2:] = 0  # bottom half hidden
    done = rng.uniform(-1, 1, size=(2, 3, 1, 4, 4))
    fig = P.inpainting_grid(truth, mask, done, pad=1)
    grid = np.asarray(fig.axes[0].images[0].get_array())
    assert grid.shape == (2 * 5 + 1, 5 * 5 + 1)  # 2 rows of (input, 3 completions, original)
    unit = lambda a: np.round((np.clip(a, -1, 1) + 1) / 2 * 255).astype(np.uint8)  # noqa: E731
    np.testing.assert_array_equal(grid[1:3, 1:5], unit(truth[0, 0, :2]))  # known rows shown
    assert (grid[3:5, 1:5] == round(0.5 * 255)).all()  # hidden rows grey
    np.testing.assert_array_equal(grid[1:5, 6:10], unit(done[0, 0, 0]))
    np.testing.assert_array_equal(grid[6:10, 21:25], unit(truth[1, 0]))
    with pytest.raises(ValueError, match="N = 2 inputs"):
        P.inpainting_grid(truth, mask, done[:1])
    with pytest.raises(ValueError, match="differ from originals"):
        P.inpainting_grid(truth, mask, done[..., :3])
