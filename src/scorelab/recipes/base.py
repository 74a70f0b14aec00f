"""What every recipe shares: a context to write figures and numbers into, and the report.

A recipe is a plain function ``run(ctx: RecipeContext) -> None`` that reproduces one seed
experiment: it writes figures through ``ctx.path(name)``, records numbers with ``ctx.record``,
adds prose with ``ctx.note``. :func:`run_recipe` then writes ``numbers.json`` and a
self-contained ``report.html`` (figures embedded, numbers, the command and config to reproduce).
"""

from __future__ import annotations

import base64
import html
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scorelab import __version__
from scorelab.utils import atomic_writer


@dataclass
class RecipeContext:
    """Where a recipe writes, how hard it works (``fast`` for tests) and its random seed."""

    out_dir: Path
    fast: bool = False
    seed: int = 0
    data: str | None = None  #: a data set for recipes that take one (MNIST IDX folder)
    numbers: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def path(self, name: str) -> Path:
        """Path of an output file (``.png``/``.gif``/``.npy``…) in the run folder; figures with
        these suffixes are embedded in the report in the order they are requested."""
        if Path(name).suffix in (".png", ".gif") and name not in self.figures:
            self.figures.append(name)
        return self.out_dir / name

    def record(self, key: str, value: Any) -> None:
        """Store a number (or a small plain structure) for ``numbers.json`` and the report."""
        self.numbers[key] = value

    def note(self, text: str) -> None:
        """Add a paragraph of explanation to the report."""
        self.notes.append(text)

    def generator(self, stream: int = 0) -> torch.Generator:
        """A fresh generator for one random stream of this recipe (seed and stream mixed)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + stream)

    @property
    def mode(self) -> str:
        """``"fast"`` or ``"full"``: the key of the recipes' per-mode settings dicts."""
        return "fast" if self.fast else "full"

    def pick(self, full: Any, fast: Any) -> Any:
        """``fast`` in fast mode (tests), ``full`` otherwise."""
        return fast if self.fast else full


#: The entries of a :class:`~scorelab.metrics.Measurement` a recipe writes to ``numbers.json``.
MEASUREMENT_KEYS = (
    "n", "value", "floor", "ratio", "calibration_mean", "calibration_sd", "verdict",
)  # fmt: skip


def law_measurement(
    samples: torch.Tensor,
    law: Callable[[int, torch.Generator], torch.Tensor],
    ctx: RecipeContext,
    distance: str = "sliced_w2",
) -> dict[str, Any]:
    """``samples`` measured against the true ``law(n, generator)`` by the one protocol
    (:func:`scorelab.metrics.measure_against_law`, draws from its salted metric stream, never a
    training stream): distance, floor, ratio, the exact-sample calibration and the verdict."""
    from scorelab.metrics import measure_against_law

    m = measure_against_law(samples, law, distances=(distance,), seed=ctx.seed)[distance]
    out = {"distance": distance}
    for key in MEASUREMENT_KEYS:
        value = getattr(m, key)
        out[key] = float(f"{value:.4g}") if isinstance(value, float) else value
    return out


def measurement_summary(entry: dict[str, Any]) -> str:
    """``sliced_w2 1.08× the floor (exact sample 1.00 ± 0.05): at the floor`` for a report."""
    return (
        f"{entry['distance']} {entry['ratio']:.2f}× the floor (exact sample "
        f"{entry['calibration_mean']:.2f} ± {entry['calibration_sd']:.2f}): {entry['verdict']}"
    )


@dataclass(frozen=True)
class Recipe:
    """One seed experiment: ``name`` for the command line, the seed it reproduces, what it shows,
    the function that runs it and its expected full-mode time on 2 CPU cores (minutes)."""

    name: str
    seed_doc: str
    title: str
    description: str
    run: Callable[[RecipeContext], None]
    minutes: float = 1.0


def run_recipe(
    recipe: Recipe,
    out_dir: str | Path,
    *,
    fast: bool = False,
    seed: int = 0,
    data: str | None = None,
) -> Path:
    """Run ``recipe`` into ``out_dir``; write ``numbers.json`` and ``report.html``; return the
    report path. ``data`` is a data set for recipes that take one (a folder of MNIST IDX files
    for ``seed000-ncsn-mnist``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = RecipeContext(out_dir=out_dir, fast=fast, seed=seed, data=data)
    start = time.perf_counter()
    recipe.run(ctx)
    ctx.record("seconds", round(time.perf_counter() - start, 2))
    config = {"recipe": recipe.name, "seed": seed, "fast": fast, "scorelab_version": __version__}
    command = " ".join(
        ["scorelab run", recipe.name, "--out", str(out_dir), "--seed", str(seed)]
        + (["--fast"] if fast else [])
        + (["--data", str(data)] if data else [])
    )
    body = {"config": config, "command": command, "numbers": ctx.numbers}
    atomic_writer(
        out_dir / "numbers.json",
        lambda tmp: tmp.write_text(json.dumps(body, indent=2, default=_plain)),
    )
    report = out_dir / "report.html"
    page = render_report(recipe, ctx, command, config)
    atomic_writer(report, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return report


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "tolist"):
        return value.tolist()
    return float(value)


def _paired(value: Any) -> bool:
    """A number recorded as ``{"as_in_seed": {...}, "<other>": {...}}``: the seed's way and ours."""
    return (
        isinstance(value, dict)
        and len(value) == 2
        and "as_in_seed" in value
        and all(isinstance(v, dict) for v in value.values())
    )


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as ``{"a.b": leaf}``."""
    if not isinstance(value, dict):
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return "" if value is None else str(value)


def side_by_side(key: str, value: dict[str, dict]) -> str:
    """An HTML table of a paired number: one row per entry, "as in the seed" beside the other."""
    esc = html.escape
    other = next(k for k in value if k != "as_in_seed")
    seed, ours = _flat(value["as_in_seed"]), _flat(value[other])
    rows = list(dict.fromkeys([*seed, *ours]))
    parts = [
        f"<h3>{esc(key)}: as in the seed and {esc(other.replace('_', ' '))}</h3>",
        f"<table><tr><th></th><th>as in the seed</th><th>{esc(other.replace('_', ' '))}</th></tr>",
    ]
    for row in rows:
        parts.append(
            f"<tr><td>{esc(row)}</td><td>{esc(_cell(seed.get(row)))}</td>"
            f"<td>{esc(_cell(ours.get(row)))}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def render_report(recipe: Recipe, ctx: RecipeContext, command: str, config: dict) -> str:
    """A self-contained HTML page: title, notes, numbers, embedded figures, how to reproduce."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(recipe.title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "img{max-width:100%;border:1px solid #ddd;margin:.5em 0}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em}"
        "code,pre{background:#f4f4f4}</style></head><body>",
        f"<h1>{esc(recipe.title)}</h1>",
        f"<p><em>Reproduces seed {esc(recipe.seed_doc)}.</em> {esc(recipe.description)}</p>",
    ]
    parts += [f"<p>{esc(text)}</p>" for text in ctx.notes]
    parts += [side_by_side(key, value) for key, value in ctx.numbers.items() if _paired(value)]
    if ctx.numbers:
        parts.append("<h2>Numbers</h2><table><tr><th>name</th><th>value</th></tr>")
        for key, value in ctx.numbers.items():
            shown = json.dumps(value, default=_plain)
            parts.append(f"<tr><td>{esc(key)}</td><td><code>{esc(shown[:400])}</code></td></tr>")
        parts.append("</table>")
    parts.append("<h2>Figures</h2>")
    for name in ctx.figures:
        path = ctx.out_dir / name
        if not path.is_file():
            continue
        mime = "image/gif" if path.suffix == ".gif" else "image/png"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f"<h3>{esc(name)}</h3><img alt='{esc(name)}' src='data:{mime};base64,{data}'>")
    parts += [
        "<h2>Reproduce</h2>",
        f"<pre>{esc(command)}</pre>",
        f"<pre>{esc(json.dumps(config, indent=2))}</pre>",
        f"<p>Python {esc(sys.version.split()[0])}, torch {esc(torch.__version__)}.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)
