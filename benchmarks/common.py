"""Shared helpers for the benchmark scripts: machine description and result files.

Every benchmark prints the command that reproduces it and the machine it ran on, and writes its
numbers as JSON under ``benchmarks/results/`` so ``RESULTS.md`` can quote them.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """A short description of the machine: CPU count, torch threads, device, versions."""
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def command() -> str:
    return "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])


def _dumps(body: dict) -> str:
    """JSON with one line per top-level key and, for a list of records (dicts), one line per
    record: a benchmark of ten thousand records stays readable and diffable at a fraction of the
    size of a line per field."""

    def value(v: object) -> str:
        if isinstance(v, list) and v and all(isinstance(item, dict) for item in v):
            items = ",\n    ".join(json.dumps(item, default=float) for item in v)
            return f"[\n    {items}\n  ]"
        return json.dumps(v, default=float)

    return "{\n" + ",\n".join(f"  {json.dumps(k)}: {value(v)}" for k, v in body.items()) + "\n}\n"


def save_results(name: str, payload: dict) -> Path:
    """Write ``payload`` plus machine and command to ``benchmarks/results/NAME.json``."""
    from scorelab.utils import atomic_writer

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    body = {
        "command": command(),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        **payload,
    }
    atomic_writer(path, lambda tmp: tmp.write_text(_dumps(body)))
    print(f"wrote {path}")
    return path


@contextmanager
def timer():
    """Yield a dict whose ``"s"`` holds the elapsed wall seconds after the block."""
    out = {}
    start = time.perf_counter()
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - start
