"""Points ``(N, D)`` from ``.npy``, ``.npz`` and ``.csv`` files, with errors that name the problem.

Every failure raises :class:`DataError` (a ``ValueError``) whose message names the file, what is
wrong with it and, where there is one, the fix.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

#: File suffixes :func:`load_points` reads.
SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".csv")
#: Keys of an ``.npz`` holding several arrays that :func:`load_points` takes as the points.
NPZ_KEYS: tuple[str, ...] = ("x", "data")


class DataError(ValueError):
    """A data file that is missing, unreadable or holds something other than usable points."""


def load_points(path: str | os.PathLike) -> Tensor:
    """Read a data file of ``N`` points in ``D`` dimensions as a float32 tensor ``(N, D)``.

    - ``.npy``: one 2-D numeric array (no pickled objects);
    - ``.npz``: its only array, or the array under key ``"x"`` or ``"data"``;
    - ``.csv``: comma-separated numbers, one point per line, an optional header line (a first
      line with any non-numeric cell); blank lines are skipped.

    Raises :class:`DataError` for a missing or empty file, an unknown suffix, a rank other than 2,
    non-numeric values, rows holding NaN or Inf, or fewer than 2 rows.
    """
    path = Path(path)
    if not path.is_file():
        where = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"data file {str(path)!r} {where}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"data file {str(path)!r} has unknown extension {path.suffix!r}; "
            f"use one of {', '.join(SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        raise DataError(f"data file {str(path)!r} is empty (0 bytes)")
    readers = {".npy": _read_npy, ".npz": _read_npz, ".csv": _read_csv}
    return _validate(readers[suffix](path), path)


def _read_npy(path: Path) -> np.ndarray:
    """The array of an ``.npy`` file; pickled object arrays are refused."""
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise DataError(f"{str(path)!r} is not a readable .npy file (no .npy header)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err):
            raise DataError(
                f"{str(path)!r} holds Python objects (a pickled object array); "
                "save a numeric array with np.save(path, x.astype(np.float32))"
            ) from None
        raise DataError(f"{str(path)!r} is not a readable .npy file: {err}") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{str(path)!r} is not a readable .npy file: {err}") from None


def _read_npz(path: Path) -> np.ndarray:
    """The only array of an ``.npz`` file, or its ``"x"`` / ``"data"`` array."""
    with open(path, "rb") as f:
        if f.read(2) != b"PK":
            raise DataError(f"{str(path)!r} is not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            if not keys:
                raise DataError(f"{str(path)!r} is an .npz archive with no arrays in it")
            if len(keys) == 1:
                return archive[keys[0]]
            for key in NPZ_KEYS:
                if key in keys:
                    return archive[key]
    except DataError:
        raise
    except ValueError as err:
        if "pickle" in str(err):
            raise DataError(
                f"{str(path)!r} holds Python objects (a pickled object array); "
                "store numeric arrays only"
            ) from None
        raise DataError(f"{str(path)!r} is not a readable .npz file: {err}") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{str(path)!r} is not a readable .npz file: {err}") from None
    raise DataError(
        f"{str(path)!r} holds several arrays {keys} and none is named "
        f"{' or '.join(repr(k) for k in NPZ_KEYS)}; save the points under key 'x' "
        "(np.savez(path, x=points))"
    )


def _is_number(cell: str) -> bool:
    """True when ``float(cell)`` succeeds."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> np.ndarray:
    """Numbers of a comma-separated file, one row per point, with an optional header line.

    Converted cell by cell (not with ``np.loadtxt``) so a bad value is reported with its line,
    column and header name, and so a header line is recognised without being declared.
    """
    with open(path, newline="", encoding="utf-8-sig") as f:
        lines = [
            (i, row) for i, row in enumerate(csv.reader(f), start=1) if any(c.strip() for c in row)
        ]
    if not lines:
        raise DataError(f"{str(path)!r} holds no rows (only blank lines)")
    header = None
    if not all(_is_number(c) for c in lines[0][1]):
        header, lines = lines[0][1], lines[1:]
    if not lines:
        raise DataError(f"{str(path)!r} holds a header line {header} but zero rows of data")
    width = len(header) if header is not None else len(lines[0][1])
    out = np.empty((len(lines), width), dtype=np.float64)
    for r, (lineno, row) in enumerate(lines):
        if len(row) != width:
            raise DataError(
                f"{str(path)!r} line {lineno} has {len(row)} values where the "
                f"{'header' if header is not None else 'first row'} has {width}; "
                "every row needs the same number of columns"
            )
        for col, cell in enumerate(row):
            try:
                out[r, col] = float(cell)
            except ValueError:
                label = f" ({header[col].strip()!r})" if header is not None else ""
                raise DataError(
                    f"{str(path)!r} line {lineno}, column {col + 1}{label}: {cell!r} is not a "
                    "number; only numeric columns are accepted (drop or encode this column)"
                ) from None
    return out


def _validate(x: np.ndarray, path: Path) -> Tensor:
    """Check that ``x`` is a finite numeric ``(N, D)`` array with ``N >= 2``; return float32."""
    name = repr(str(path))
    if x.dtype.names is not None or not (
        np.issubdtype(x.dtype, np.integer)
        or np.issubdtype(x.dtype, np.floating)
        or x.dtype == np.bool_
    ):
        raise DataError(
            f"{name} holds values of dtype {x.dtype}; only real numbers (int or float) are accepted"
        )
    if x.ndim == 1:
        raise DataError(
            f"{name} holds a 1-D array of shape {x.shape}; points must be 2-D (N, D): "
            "for 1-D data save x.reshape(-1, 1)"
        )
    if x.ndim != 2:
        raise DataError(
            f"{name} holds an array of shape {x.shape} (rank {x.ndim}); points must be 2-D (N, D)"
            + ("; flatten with x.reshape(len(x), -1)" if x.ndim > 2 else "")
        )
    if x.shape[0] == 0:
        raise DataError(f"{name} holds zero rows (shape {x.shape}); it needs at least 2 points")
    if x.shape[1] == 0:
        raise DataError(f"{name} holds zero columns (shape {x.shape}); points need D >= 1")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise DataError(
            f"{name} has {int(bad.sum())} row(s) holding NaN or Inf, the first at row index "
            f"{int(np.argmax(bad))}; remove or fill them"
        )
    if x.shape[0] < 2:
        raise DataError(f"{name} holds {x.shape[0]} row; at least 2 points are needed")
    too_big = np.abs(x).max() > np.finfo(np.float32).max
    if too_big:
        raise DataError(f"{name} holds values beyond the float32 range; rescale the data")
    return torch.from_numpy(x.astype(np.float32))
