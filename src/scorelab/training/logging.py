"""A CSV log of every training metric (``metrics.csv``), continuous across resumed runs."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from scorelab.utils import atomic_write_bytes

FIRST_COLUMNS = ("step", "time")


def read_metrics(path: str | os.PathLike) -> list[dict[str, int | float]]:
    """Read the rows of a metrics CSV as dicts (empty cells left out, numbers parsed exactly).

    A last line cut short by a killed process (wrong number of cells or an unparsable number)
    is dropped; a missing file gives ``[]``.
    """
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        lines = list(csv.reader(f))
    if not lines:
        return []
    header, rows = lines[0], []
    for cells in lines[1:]:
        if len(cells) != len(header):
            continue
        try:
            rows.append({k: _parse(v) for k, v in zip(header, cells, strict=True) if v != ""})
        except ValueError:
            continue
        if "step" not in rows[-1]:
            rows.pop()
    return rows


class MetricLog:
    """Append metric rows (``step``, ``time`` and any other keys) to a CSV file.

    ``keep_until=None`` starts a new log (an existing file is replaced); ``keep_until=N`` keeps
    the rows with ``step <= N`` of an existing file and drops later ones, so a run resumed from
    its checkpoint at step ``N`` continues the same curve. A row with a key not seen before
    rewrites the file (atomically) with a wider header; earlier rows get empty cells.
    """

    def __init__(self, path: str | os.PathLike, *, keep_until: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, int | float]] = []
        if keep_until is not None:
            self.rows = [r for r in read_metrics(self.path) if r["step"] <= keep_until]
        self.columns: list[str] = list(FIRST_COLUMNS)
        for row in self.rows:
            self.columns += [k for k in row if k not in self.columns]
        self._rewrite()

    def append(self, row: Mapping[str, float | int | torch.Tensor]) -> None:
        """Add one row; ``row`` must hold ``step`` and numbers (0-d tensors are converted)."""
        if "step" not in row:
            raise ValueError(f"a metric row needs a 'step' entry; got keys {sorted(row)}")
        clean = {k: _number(k, v) for k, v in row.items()}
        self.rows.append(clean)
        new = [k for k in clean if k not in self.columns]
        if new:
            self.columns += new
            self._rewrite()
            return
        with open(self.path, "a", newline="") as f:
            f.write(self._format([clean]))
            f.flush()

    def _rewrite(self) -> None:
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(self.columns)
        atomic_write_bytes(self.path, (header.getvalue() + self._format(self.rows)).encode())

    def _format(self, rows: list[dict[str, int | float]]) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for row in rows:
            writer.writerow(["" if k not in row else repr(row[k]) for k in self.columns])
        return buf.getvalue()


def _number(key: str, value: float | int | torch.Tensor) -> int | float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"metric {key!r} must be a number; got a tensor of {value.numel()}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metric {key!r} must be a number; got {value!r}") from None
    if key == "step":
        return int(value)
    return value if isinstance(value, int) else float(value)


def _parse(cell: str) -> int | float:
    """Parse a cell written with ``repr``: ints stay ints, floats round-trip exactly."""
    try:
        return int(cell)
    except ValueError:
        return float(cell)
