"""Few-step samplers side by side: scorelab's against diffusers' schedulers on the same exact score.

Every sampler gets the exact noise-conditional score of an analytic preset
(``scorelab.targets.PRESET_TABLE``: mixture-2d and the harder ring-8, spiral-2d, aniso-16d), the
same σ range (``scorelab.samplers.sampling_sigma_range``), the same starting draws (the
moment-matched prior ``N(mean, cov + σ_max²I)``, mapped to each scheduler's scale) and the same
number of score evaluations. diffusers' schedulers are driven step by step: the exact score is
turned into their model output (``"epsilon"`` prediction ``ε = (x − D)/σ``, with ``D`` the exact
denoiser), the VP ones (DPM-Solver, UniPC, DEIS) on the scaled state ``x/√(1 + σ²)`` of a
training schedule whose ``σ`` runs geometrically over that range (``trained_betas``), with
``use_karras_sigmas=True``; the EDM ones with the range as ``sigma_min``/``sigma_max``.

Measured per (preset, seed, sampler, budget), 5000 samples:

- sliced-W2 / noise floor and the calibration band of exact samples (``scorelab.metrics``
  ``LawReference``, one per (preset, seed), shared by every sampler);
- mode-weight error ``max_k |ŵ_k − w_k|`` (``scorelab.metrics.mode_weight_error``), with the
  error of an exact sample of the same size beside it;
- thinnest-axis std ratio: each component's std along its thinnest principal axis over the
  truth, averaged with the weights (``scorelab.metrics.component_spread_report``; 1 exact, < 1
  shrunk, > 1 blurred), with an exact sample's beside it;
- wall seconds per score evaluation (the whole call / evaluations; all in the same run).

    python benchmarks/bench_fewstep.py            # 20 seeds (0-19), budgets 5..50, all presets
    python benchmarks/bench_fewstep.py --quick    # seed 0, budgets 6 and 10 (~3 min)
    python benchmarks/bench_fewstep.py --tune ladder   # seeds 1000-1002: sampler × ladder
    python benchmarks/bench_fewstep.py --tune range    # σ range and ρ of the leading ones
    python benchmarks/bench_fewstep.py --tune range3 --budgets 5 6 8 10 15 25  # σ_max, order 3
    python benchmarks/bench_fewstep.py --presets mixture-2d spiral-2d --part a   # in parallel
    python benchmarks/bench_fewstep.py --presets ring-8 aniso-16d --part b       # with this
    python benchmarks/bench_fewstep.py --merge a b     # -> fewstep.json, .png and the tables

Writes ``results/fewstep.json`` after every (preset, seed) (``fewstep_quick.json``,
``fewstep_tune.json``) and, from a finished run, ``results/fewstep.png`` and the tables of
``RESULTS_fewstep.md`` (``--report`` redoes both from the JSON). Needs the ``bench`` extra
(``pip install -e .[bench]``: diffusers); scorelab itself never imports it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, save_results  # noqa: E402

from scorelab.metrics import (  # noqa: E402
    LawReference,
    component_spread_report,
    mode_weight_error,
)
from scorelab.samplers import (  # noqa: E402
    RECOMMENDED,
    ScoreSource,
    denoiser,
    draw_samples,
    moment_matched_prior,
    target_source,
)
from scorelab.samplers.draw import data_scale  # noqa: E402
from scorelab.targets import PRESET_TABLE, get_target  # noqa: E402

N = 5000
PRESETS = ("mixture-2d", "ring-8", "spiral-2d", "aniso-16d")
BUDGETS = (5, 6, 8, 10, 15, 25, 50)
SEEDS = tuple(range(20))
QUICK_BUDGETS, QUICK_SEEDS = (6, 10), (0,)
TUNE_BUDGETS, TUNE_SEEDS = (5, 6, 8, 10), (1000, 1001, 1002)
RECOMMENDED_ROW = "scorelab recommended (CLI default)"


@dataclass
class Context:
    """What every sampler of one (preset, seed) shares."""

    name: str
    target: Any
    source: ScoreSource
    seed: int


Run = Callable[[Context, int, torch.Generator], tuple[torch.Tensor, int]]


@dataclass(frozen=True)
class Row:
    name: str
    group: str  # "scorelab" or "diffusers"
    settings: str
    run: Run


# ---------------------------------------------------------------------------------------------
# scorelab rows
# ---------------------------------------------------------------------------------------------


def scorelab_row(name: str, sampler: str | None, settings: str = "", **options: Any) -> Row:
    """``draw_samples`` with ``sampler`` (``None``: the recommended configuration) and options."""

    def run(ctx: Context, budget: int, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        res = draw_samples(ctx.source, N, sampler, steps=budget, generator=gen, **options)
        return res.samples, res.n_evals

    text = settings or (", ".join(f"{k}={v}" for k, v in options.items()) or "registry defaults")
    return Row(name, "scorelab", text, run)


def deis_lof_row(name: str) -> Row:
    """DEIS in log σ on the Karras ladder with lower-order final steps: diffusers' DEIS."""
    return scorelab_row(name, "deis", ladder="karras", time="log-sigma", lower_order_final=True)


def scorelab_rows() -> list[Row]:
    rec = RECOMMENDED["exact"]
    rec_text = f"{rec.sampler}, {rec.options} (RECOMMENDED['exact'], the CLI default)"
    return [
        scorelab_row(RECOMMENDED_ROW, None, rec_text),
        scorelab_row("scorelab dpmpp-3m geometric", "dpmpp-3m", ladder="geometric"),
        scorelab_row("scorelab unipc geometric", "unipc", ladder="geometric"),
        scorelab_row("scorelab ipndm geometric", "ipndm", ladder="geometric"),
        scorelab_row("scorelab deis karras ρ=3", "deis", ladder="karras", rho=3.0),
        scorelab_row("scorelab deis log-sigma karras", "deis", ladder="karras", time="log-sigma"),
        deis_lof_row("scorelab deis log-sigma karras, lower-order final"),
        scorelab_row("scorelab dpmpp-3m-sde geometric", "dpmpp-3m-sde", ladder="geometric"),
    ]


# ---------------------------------------------------------------------------------------------
# diffusers rows
# ---------------------------------------------------------------------------------------------


def geometric_betas(sigma_min: float, sigma_max: float, n: int = 1000) -> np.ndarray:
    """``trained_betas`` of a VP schedule whose ``σ̃_t = √((1 − ᾱ_t)/ᾱ_t)`` is geometric from
    ``sigma_min`` (t = 0) to ``sigma_max`` (t = n − 1): ``ᾱ_t = 1/(1 + σ̃_t²)``."""
    sigmas = np.geomspace(sigma_min, sigma_max, n)
    alphas_cumprod = 1.0 / (1.0 + sigmas**2)
    prev = np.concatenate([[1.0], alphas_cumprod[:-1]])
    return 1.0 - alphas_cumprod / prev


def diffusers_row(
    name: str,
    cls_name: str,
    settings: str,
    *,
    vp: bool,
    edm: bool = False,
    evals_per_step: int = 1,
    sigma_max_factor: float | None = None,
    **config: Any,
) -> Row:
    """A diffusers scheduler driven with the exact score (see the module docstring).

    ``vp``: the scheduler's state is ``x/√(1 + σ²)``; ``edm``: its model output is
    preconditioned (EDM), so the output fed is ``(D − c_skip·x)/c_out``; ``evals_per_step = 2``
    for Heun (``2N − 1`` evaluations for ``N`` steps); ``sigma_max_factor``: the schedule's top
    at that many data scales instead of the shared range (the recommended configuration's).
    """

    def run(ctx: Context, budget: int, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        import diffusers

        cls = getattr(diffusers, cls_name)
        lo, hi = ctx.source.sigma_min, ctx.source.sigma_max
        if sigma_max_factor is not None:
            hi = sigma_max_factor * data_scale(ctx.source.cov)  # as draw_samples computes it
        if edm:
            sched = cls(sigma_min=lo, sigma_max=hi, **config)
        else:
            sched = cls(trained_betas=geometric_betas(lo, hi).tolist(), **config)
        steps = (budget + 1) // 2 if evals_per_step == 2 else budget
        sched.set_timesteps(steps)
        takes_generator = "generator" in inspect.signature(sched.step).parameters
        step_kw = {"generator": gen} if takes_generator else {}
        sigma_start = float(sched.sigmas[0])
        src = ctx.source
        x = moment_matched_prior(src.mean, src.cov, sigma_start, N, generator=gen)
        sample = x / math.sqrt(1.0 + sigma_start**2) if vp else x
        n_evals = 0
        for t in sched.timesteps:
            sched.scale_model_input(sample, t)  # sets the step index of the σ-based schedulers
            index = sched.step_index if sched.step_index is not None else 0
            sigma = float(sched.sigmas[index])
            x = sample * math.sqrt(1.0 + sigma**2) if vp else sample
            d = denoiser(src.score, x, sigma)
            n_evals += 1
            if edm:
                skip = sched.precondition_outputs(x, torch.zeros_like(x), sigma)
                c_out = sched.precondition_outputs(x, torch.ones_like(x), sigma) - skip
                out = (d - skip) / c_out
            else:
                out = (x - d) / sigma
            sample = sched.step(out, t, sample, **step_kw).prev_sample
        return sample, n_evals

    return Row(name, "diffusers", f"{cls_name}({settings})", run)


def diffusers_rows() -> list[Row]:
    import diffusers

    rows = _diffusers_rows()
    for row in rows:  # import every scheduler now, so that no timing includes an import
        getattr(diffusers, row.settings.split("(")[0])
    return rows


def _diffusers_rows() -> list[Row]:
    k = {"use_karras_sigmas": True, "prediction_type": "epsilon"}
    dpm = "DPMSolverMultistepScheduler"
    return [
        diffusers_row("diffusers DPM++ 2M Karras", dpm, "order 2, Karras", vp=True, **k),
        diffusers_row(
            "diffusers DPM++ 3M Karras", dpm, "order 3, Karras", vp=True, solver_order=3, **k
        ),
        diffusers_row(
            "diffusers DPM++ 2M SDE Karras",
            dpm,
            "sde-dpmsolver++, order 2, Karras",
            vp=True,
            algorithm_type="sde-dpmsolver++",
            **k,
        ),
        diffusers_row(
            "diffusers DPM++ 3M SDE Karras",
            dpm,
            "sde-dpmsolver++, order 3, Karras",
            vp=True,
            algorithm_type="sde-dpmsolver++",
            solver_order=3,
            **k,
        ),
        diffusers_row(
            "diffusers DPM++ 3M exponential",
            dpm,
            "order 3, exponential (geometric) σ",
            vp=True,
            solver_order=3,
            use_exponential_sigmas=True,
            prediction_type="epsilon",
        ),
        diffusers_row(
            "diffusers UniPC (bh2, order 2) Karras",
            "UniPCMultistepScheduler",
            "defaults bh2, order 2, Karras",
            vp=True,
            **k,
        ),
        diffusers_row(
            "diffusers UniPC (bh2, order 3) Karras",
            "UniPCMultistepScheduler",
            "bh2, order 3, Karras",
            vp=True,
            solver_order=3,
            **k,
        ),
        diffusers_row(
            "diffusers DEIS (order 3) Karras",
            "DEISMultistepScheduler",
            "order 3, Karras",
            vp=True,
            solver_order=3,
            **k,
        ),
        diffusers_row(
            "diffusers DEIS (order 3) Karras, σ_max 5·scale",
            "DEISMultistepScheduler",
            "order 3, Karras, from the recommended configuration's σ_max",
            vp=True,
            solver_order=3,
            sigma_max_factor=5.0,
            **k,
        ),
        diffusers_row("diffusers Euler Karras", "EulerDiscreteScheduler", "Karras", vp=False, **k),
        diffusers_row(
            "diffusers Heun Karras",
            "HeunDiscreteScheduler",
            "Karras, 2N−1 evaluations",
            vp=False,
            evals_per_step=2,
            **k,
        ),
        diffusers_row(
            "diffusers EDM DPM++ 3M",
            "EDMDPMSolverMultistepScheduler",
            "EDM preconditioning, Karras ρ=7, order 3",
            vp=False,
            edm=True,
            solver_order=3,
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------


def context(preset: str, seed: int) -> Context:
    target = get_target(preset)
    return Context(preset, target, target_source(target), seed)


def law_of(target: Any) -> Callable[[int, torch.Generator], torch.Tensor]:
    return lambda n, g: target.sample(n, generator=g, dtype=torch.float64)


def has_modes(preset: str) -> bool:
    return PRESET_TABLE[preset].modes_separated


def thin_axis(samples: torch.Tensor, target: Any) -> float:
    """Thinnest-axis std over the truth, weighted over components (1 exact)."""
    return component_spread_report(samples, target)["weighted_thinnest"]


def exact_calibration(ctx: Context) -> dict[str, float | None]:
    """Mode-weight error and thinnest-axis std ratio of an exact sample of size N (seeded from
    the seed): what an exact sampler gets."""
    gen = torch.Generator().manual_seed(50_000 + ctx.seed)
    exact = ctx.target.sample(N, generator=gen, dtype=torch.float64)
    return {
        "exact_mode_weight_error": (
            mode_weight_error(exact, ctx.target) if has_modes(ctx.name) else None
        ),
        "exact_thin_axis_std_ratio": thin_axis(exact, ctx.target),
    }


def measure_row(ctx: Context, reference: LawReference, row: Row, budget: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(ctx.seed)
    start = time.perf_counter()
    samples, n_evals = row.run(ctx, budget, gen)
    wall = time.perf_counter() - start
    samples = samples.detach().to(torch.float64)
    if not bool(torch.isfinite(samples).all()):
        return {
            "row": row.name,
            "preset": ctx.name,
            "seed": ctx.seed,
            "budget": budget,
            "n_evals": n_evals,
            "failed": "non-finite",
        }
    m = reference.measure(samples)["sliced_w2"]
    out = {
        "row": row.name,
        "group": row.group,
        "preset": ctx.name,
        "seed": ctx.seed,
        "budget": budget,
        "n_evals": n_evals,
        "ratio": m.ratio,
        "calibration_mean": m.calibration_mean,
        "calibration_sd": m.calibration_sd,
        "verdict": m.verdict,
        "wall_s": wall,
        "s_per_eval": wall / max(n_evals, 1),
        "mode_weight_error": None,
        "thin_axis_std_ratio": thin_axis(samples, ctx.target),
    }
    if has_modes(ctx.name):
        out["mode_weight_error"] = mode_weight_error(samples, ctx.target)
    return out


def run_grid(
    rows: list[Row],
    presets: tuple[str, ...],
    seeds: tuple[int, ...],
    budgets: tuple[int, ...],
    name: str,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Every row × budget on every (preset, seed); the JSON is rewritten after each pair."""
    records: list[dict[str, Any]] = []
    calib: list[dict[str, Any]] = []
    payload: dict[str, Any] = {}
    for preset in presets:
        for seed in seeds:
            t0 = time.perf_counter()
            ctx = context(preset, seed)
            reference = LawReference(law_of(ctx.target), N, seed=seed)
            calib.append({"preset": preset, "seed": seed, **exact_calibration(ctx)})
            for row in rows:
                for budget in budgets:
                    records.append(measure_row(ctx, reference, row, budget))
            print(f"{preset} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
            payload = {
                **extra,
                "n": N,
                "presets": list(presets),
                "seeds": list(seeds),
                "budgets": list(budgets),
                "rows": {r.name: {"group": r.group, "settings": r.settings} for r in rows},
                "exact": calib,
                "records": records,
            }
            save_results(name, payload)
    return payload


# ---------------------------------------------------------------------------------------------
# Summaries: tables and figure
# ---------------------------------------------------------------------------------------------


def _ms(values: list[float]) -> tuple[float, float]:
    v = np.array(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def summarise(payload: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, float]]:
    """(preset, row, budget) -> mean/sd of ratio, calibration, mode error, s/eval, evals."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for r in payload["records"]:
        if "failed" in r:
            groups.setdefault((r.get("preset", "?"), r["row"], r["budget"]), []).append(r)
            continue
        groups.setdefault((r["preset"], r["row"], r["budget"]), []).append(r)
    out = {}
    for key, recs in groups.items():
        ok = [r for r in recs if "failed" not in r]
        if not ok:
            out[key] = {"failed": len(recs)}
            continue
        ratio = _ms([r["ratio"] for r in ok])
        cal = _ms([r["calibration_mean"] for r in ok])
        cal_sd = float(np.mean([r["calibration_sd"] for r in ok]))
        modes = [r["mode_weight_error"] for r in ok if r["mode_weight_error"] is not None]
        thin = [r["thin_axis_std_ratio"] for r in ok if r.get("thin_axis_std_ratio") is not None]
        out[key] = {
            "ratio": ratio[0],
            "ratio_sd": ratio[1],
            "calibration": cal[0],
            "calibration_sd": cal_sd,
            "at_floor": ratio[0] <= cal[0] + 2.0 * cal_sd,
            "mode": _ms(modes)[0] if modes else None,
            "mode_sd": _ms(modes)[1] if modes else None,
            "thin": _ms(thin)[0] if thin else None,
            "s_per_eval": float(np.median([r["s_per_eval"] for r in ok])),
            "n_evals": float(np.mean([r["n_evals"] for r in ok])),
            "failed": len(recs) - len(ok),
        }
    return out


def exact_modes(
    payload: dict[str, Any], preset: str, key: str = "exact_mode_weight_error"
) -> tuple[float, float] | None:
    """Mean ± sd over seeds of an exact sample's ``key`` (mode error or thinnest-axis ratio)."""
    vals = [e[key] for e in payload["exact"] if e["preset"] == preset and e.get(key) is not None]
    return _ms(vals) if vals else None


def markdown(payload: dict[str, Any]) -> str:
    """The tables of RESULTS_fewstep.md: one per preset, rows × budgets."""
    summary = summarise(payload)
    lines = []
    rows = list(payload["rows"])
    budgets = payload["budgets"]
    for preset in payload["presets"]:
        lines.append(f"\n### {preset}\n")
        ex = exact_modes(payload, preset)
        if ex:
            lines.append(
                f"Mode-weight error of an exact sample of {payload['n']}: "
                f"{ex[0]:.4f} ± {ex[1]:.4f}.\n"
            )
        thin = exact_modes(payload, preset, "exact_thin_axis_std_ratio")
        if thin:
            lines.append(
                f'Thinnest-axis std ratio ("t") of an exact sample of {payload["n"]}: '
                f"{thin[0]:.3f} ± {thin[1]:.3f}.\n"
            )
        lines.append("| sampler | " + " | ".join(f"{b} evals" for b in budgets) + " | s/eval |")
        lines.append("|---|" + "---|" * (len(budgets) + 1))
        for row in rows:
            cells = []
            speed = []
            for b in budgets:
                s = summary.get((preset, row, b))
                if s is None:
                    cells.append("–")
                    continue
                if "ratio" not in s:
                    cells.append(f"failed ×{s['failed']}")
                    continue
                cell = f"{s['ratio']:.2f} ± {s['ratio_sd']:.2f}"
                cell += " (floor)" if s["at_floor"] else ""
                if s["mode"] is not None:
                    cell += f"; m {s['mode']:.3f}"
                if s.get("thin") is not None:
                    cell += f"; t {s['thin']:.2f}"
                if s["n_evals"] != b:
                    cell += f" [{s['n_evals']:.0f}]"
                cells.append(cell)
                speed.append(s["s_per_eval"])
            per_eval = f"{1e3 * float(np.median(speed)):.2f} ms" if speed else "–"
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {per_eval} |")
        cal = [summary.get((preset, rows[0], b)) for b in budgets]
        lines.append(
            "| *exact sample (calibration)* | "
            + " | ".join(
                f"{c['calibration']:.2f} ± {c['calibration_sd']:.2f}" if c and "ratio" in c else "–"
                for c in cal
            )
            + " | |"
        )
    return "\n".join(lines)


def versus_best(payload: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    """(preset, budget) -> the recommended row against the best diffusers row there.

    "best diffusers" is the row of lowest mean ratio at that budget; ``diff``/``diff_se``: the
    paired difference (recommended − best diffusers, per seed), mean ± standard error; ``speed``:
    the median over seeds of (recommended s/eval) / (that row's s/eval), both measured in the
    same process on the same (preset, seed).
    """
    summary = summarise(payload)
    by_key = {
        (r["preset"], r["row"], r["budget"], r["seed"]): r
        for r in payload["records"]
        if "failed" not in r
    }
    peers = [row for row, info in payload["rows"].items() if info["group"] == "diffusers"]
    out = {}
    for preset in payload["presets"]:
        for b in payload["budgets"]:
            rec = summary.get((preset, RECOMMENDED_ROW, b))
            cands = [
                (summary[(preset, p, b)]["ratio"], p)
                for p in peers
                if "ratio" in summary.get((preset, p, b), {})
            ]
            if not rec or "ratio" not in rec or not cands:
                continue
            best_ratio, best = min(cands)
            diffs, speed = [], []
            for seed in payload["seeds"]:
                a = by_key.get((preset, RECOMMENDED_ROW, b, seed))
                c = by_key.get((preset, best, b, seed))
                if a and c:
                    diffs.append(a["ratio"] - c["ratio"])
                    speed.append(a["s_per_eval"] / c["s_per_eval"])
            se = float(np.std(diffs, ddof=1) / math.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
            out[(preset, b)] = {
                "rec": rec,
                "best": best,
                "peer": summary[(preset, best, b)],
                "diff": float(np.mean(diffs)),
                "diff_se": se,
                "speed": float(np.median(speed)),
            }
    return out


def headline(payload: dict[str, Any]) -> str:
    """Per preset and budget: the recommended configuration against the best diffusers row
    (:func:`versus_best`)."""
    lines = [
        "| preset | evals | recommended (calibration) | mode err | thinnest axis | best diffusers "
        "| its ratio | its thinnest axis | paired diff | time/eval ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def thin(s: dict[str, Any]) -> str:
        return f"{s['thin']:.2f}" if s.get("thin") is not None else "–"

    for (preset, b), v in versus_best(payload).items():
        rec = v["rec"]
        floor = " at the floor" if rec["at_floor"] else ""
        mode = f"{rec['mode']:.4f}" if rec["mode"] is not None else "–"
        lines.append(
            f"| {preset} | {b} | {rec['ratio']:.3f} ± {rec['ratio_sd']:.3f} "
            f"({rec['calibration']:.2f} ± {rec['calibration_sd']:.2f}){floor} | {mode} "
            f"| {thin(rec)} | {v['best'].removeprefix('diffusers ')} | {v['peer']['ratio']:.3f} ± "
            f"{v['peer']['ratio_sd']:.3f} | {thin(v['peer'])} | {v['diff']:+.3f} ± "
            f"{v['diff_se']:.3f} | {v['speed']:.2f} |"
        )
    return "\n".join(lines)


def paired(payload: dict[str, Any], a: str, b: str, preset: str, budget: int) -> str:
    """Mean over seeds of (row ``a`` − row ``b``) ± its standard error, on the same seeds."""
    by_key = {
        (r["row"], r["seed"]): r["ratio"]
        for r in payload["records"]
        if "failed" not in r and r["preset"] == preset and r["budget"] == budget
    }
    d = [
        by_key[(a, s)] - by_key[(b, s)]
        for s in payload["seeds"]
        if (a, s) in by_key and (b, s) in by_key
    ]
    if len(d) < 2:
        return "–"
    return f"{np.mean(d):+.3f} ± {np.std(d, ddof=1) / math.sqrt(len(d)):.3f}"


#: The comparison tables of RESULTS_fewstep.md: (title, rows shown, paired differences a − b).
DEIS_5 = "diffusers DEIS (order 3) Karras, σ_max 5·scale"
DEIS_10 = "diffusers DEIS (order 3) Karras"
DEIS_LOF = "scorelab deis log-sigma karras, lower-order final"
COMPARISONS = (
    (
        "diffusers' DEIS from the recommended σ_max",
        (RECOMMENDED_ROW, DEIS_10, DEIS_5),
        ((RECOMMENDED_ROW, DEIS_5),),
    ),
    (
        "scorelab's DEIS against diffusers' DEIS",
        (RECOMMENDED_ROW, "scorelab deis log-sigma karras", DEIS_LOF, DEIS_10),
        ((DEIS_LOF, DEIS_10), (DEIS_LOF, RECOMMENDED_ROW)),
    ),
)


def comparison_tables(payload: dict[str, Any]) -> str:
    """Mean ratio and thinnest-axis ratio of chosen rows with paired differences (COMPARISONS)."""
    summary = summarise(payload)
    out = []
    for title, shown, pairs in COMPARISONS:
        short = {row: row.removeprefix("scorelab ").removesuffix(" (CLI default)") for row in shown}
        head = list(short.values()) + [f"{short[a]} − {short[b]} (paired)" for a, b in pairs]
        out.append(f"\n{title} (ratio; thinnest-axis std ratio after the slash):\n")
        out.append("| preset | evals | " + " | ".join(head) + " |")
        out.append("|---|---|" + "---|" * len(head))
        for preset in payload["presets"]:
            for b in payload["budgets"]:
                cells = []
                for row in shown:
                    s = summary.get((preset, row, b), {})
                    cell = f"{s['ratio']:.3f}" if "ratio" in s else "–"
                    cell += f" / {s['thin']:.2f}" if s.get("thin") is not None else ""
                    cells.append(cell)
                cells += [paired(payload, a, c, preset, b) for a, c in pairs]
                out.append(f"| {preset} | {b} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def figures_asked(payload: dict[str, Any]) -> str:
    """The issue's figures, each against its target, from the recommended row."""
    summary = summarise(payload)

    def rec(preset: str, b: int) -> dict[str, Any]:
        return summary.get((preset, RECOMMENDED_ROW, b), {})

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    lines = []
    for preset, targets in (("mixture-2d", ((10, 1.1), (6, 1.3))), ("ring-8", ((10, 1.3),)),
                            ("aniso-16d", ((10, 1.3),)), ("spiral-2d", ((10, 1.3),))):  # fmt: skip
        if not rec(preset, 10):
            continue
        parts = [
            f"{rec(preset, b)['ratio']:.3f} ± {rec(preset, b)['ratio_sd']:.3f}× at {b} "
            f"(≤ {t}: {verdict(rec(preset, b)['ratio'] <= t)})"
            for b, t in targets
        ]
        line = f"- `{preset}`: " + "; ".join(parts)
        if has_modes(preset):
            m10, m50 = rec(preset, 10).get("mode"), rec(preset, 50).get("mode")
            exact = exact_modes(payload, preset)
            line += (
                f"; mode-weight error {m10:.4f} at 10 (≤ 0.02: {verdict(m10 <= 0.02)})"
                + (f" and {m50:.4f} at 50 (≤ 0.01: {verdict(m50 <= 0.01)})" if m50 else "")
                + (
                    f"; an exact sample of {N} gets {exact[0]:.4f} ± {exact[1]:.4f}"
                    if exact
                    else ""
                )
            )
        lines.append(line)
    versus = {k: v for k, v in versus_best(payload).items() if 6 <= k[1] <= 25}
    behind = [(k, v) for k, v in versus.items() if v["diff"] > 0]
    cells = "; ".join(
        f"{p} at {b}: {v['rec']['ratio']:.3f} vs {v['best'].removeprefix('diffusers ')} "
        f"{v['peer']['ratio']:.3f} (paired {v['diff']:+.3f} ± {v['diff_se']:.3f}"
        + (", both at the floor" if v["rec"]["at_floor"] and v["peer"]["at_floor"] else "")
        + ")"
        for (p, b), v in behind
    )
    not_floor = [k for k, v in behind if not (v["rec"]["at_floor"] and v["peer"]["at_floor"])]
    lines.append(
        f"- At every budget 6–25 at least as good as the best diffusers sampler (mean ratio): "
        f"behind in {len(behind)} of {len(versus)} cells"
        + (f" — {cells}" if cells else "")
        + f". Cells behind where the two are not both at the floor: {len(not_floor)}"
        + (f" ({', '.join(f'{p} at {b}' for p, b in not_floor)})" if not_floor else "")
        + "."
    )
    slowest = max(v["speed"] for v in versus.values())
    lines.append(
        f"- No slower per evaluation: {verdict(slowest <= 1.0)} (time/eval ratio at most "
        f"{slowest:.2f} over 6–25)."
    )
    return "\n".join(lines)


def figure(payload: dict[str, Any], path: Path, metric: str = "ratio") -> None:
    """``metric`` (``"ratio"``: sliced-W2 / floor; ``"thin"``: thinnest-axis std / truth) vs
    evaluations, one panel per preset: scorelab rows solid, diffusers rows dashed, the
    recommended configuration thick; the grey band is where exact samples fall (the calibration
    band of the ratio; mean ± 2 sd of an exact sample's thinnest-axis ratio over the seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise(payload)
    presets = payload["presets"]
    budgets = payload["budgets"]
    rows = list(payload["rows"])
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, 20))
    ncols = 2 if len(presets) > 1 else 1
    nrows = math.ceil(len(presets) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, 4.5 * nrows + 1.5), squeeze=False)
    for ax, preset in zip(axes.flat, presets, strict=False):
        for k, row in enumerate(rows):
            pts = [
                (b, summary[(preset, row, b)][metric])
                for b in budgets
                if summary.get((preset, row, b), {}).get(metric) is not None
            ]
            if not pts:
                continue
            style = "-" if payload["rows"][row]["group"] == "scorelab" else "--"
            width = 3.0 if row == RECOMMENDED_ROW else 1.2
            ax.plot(
                *zip(*pts, strict=True), style, marker="o", ms=3, lw=width,
                color="black" if row == RECOMMENDED_ROW else colours[k % 20], label=row,
            )  # fmt: skip
        cal = [
            summary[(preset, r, b)]
            for r in rows[:1]
            for b in budgets
            if "ratio" in summary.get((preset, r, b), {})
        ]
        exact = exact_modes(payload, preset, "exact_thin_axis_std_ratio")
        if metric == "thin" and exact:
            lo, hi = exact[0] - 2 * exact[1], exact[0] + 2 * exact[1]
            ax.axhspan(lo, hi, color="grey", alpha=0.25, label="exact samples (mean ± 2 sd)")
        elif metric == "ratio" and cal:
            top = float(np.mean([c["calibration"] + 2 * c["calibration_sd"] for c in cal]))
            ax.axhspan(0.0, top, color="grey", alpha=0.25, label="at the floor (calibration band)")
        n_seeds = len({e["seed"] for e in payload["exact"] if e["preset"] == preset})
        ax.set(xscale="log", yscale="log", title=f"{preset} ({n_seeds} seeds, n = {payload['n']})")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        label = {"ratio": "sliced-W2 / noise floor", "thin": "thinnest-axis std / truth"}[metric]
        ax.set(xlabel="score evaluations", ylabel=label)
        if metric == "ratio":
            ax.set_ylim(0.8, None)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(presets) :]:
        ax.set_visible(False)
    legend: dict[str, Any] = {}  # every row that some panel drew, in row order
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    order = [r for r in rows if r in legend] + [k for k in legend if k not in rows]
    fig.legend([legend[k] for k in order], order, loc="lower center", ncol=3, fontsize="small")
    fig.tight_layout(rect=(0, 0.14 if nrows > 1 else 0.25, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


# ---------------------------------------------------------------------------------------------
# Tuning (seeds 1000+)
# ---------------------------------------------------------------------------------------------


def tune_rows(stage: str) -> list[Row]:
    """Stage ``ladder``: each sampler × ladder at the default σ range; stage ``range``: σ range
    and ladder for the leading samplers (σ factors relative to the law's scale); ``deis``: DEIS
    in log σ; ``final``: the recommendation against DEIS in log σ with and without diffusers'
    lower-order final steps, on every preset; ``range3``: σ_max of the recommendation (iPNDM
    order 3, Karras) at 3–10 data scales; ``deis5``: DEIS in log σ with lower-order final steps
    (diffusers' DEIS) from the recommendation's σ_max = 5·scale, ρ = 7, 5, 4; ``thin``: σ_min
    capped at the thinnest component's scale (the default for exact targets) against the scale
    rule alone and a lower σ_min."""
    rows = []
    if stage == "ladder":
        for sampler in ("dpmpp-3m", "unipc", "ipndm", "deis", "dpmpp-3m-sde"):
            for ladder, rho in (("geometric", 7.0), ("karras", 7.0), ("karras", 3.0)):
                name = f"{sampler} {ladder}" + (f" rho={rho:g}" if ladder == "karras" else "")
                rows.append(scorelab_row(name, sampler, ladder=ladder, rho=rho))
        rows.append(scorelab_row("unipc bh2 geometric", "unipc", ladder="geometric", variant="bh2"))
        rows.append(scorelab_row("unipc order 2 geometric", "unipc", ladder="geometric", order=2))
        return rows
    if stage == "deis":
        rows.append(scorelab_row("ipndm karras (recommended)", "ipndm", ladder="karras"))
        for ladder, rho in (("geometric", 7.0), ("karras", 7.0), ("karras", 12.0)):
            name = f"deis log-sigma {ladder}" + (f" rho={rho:g}" if ladder == "karras" else "")
            rows.append(scorelab_row(name, "deis", ladder=ladder, rho=rho, time="log-sigma"))
        rows.append(
            scorelab_row(
                "deis log-sigma order 2 karras", "deis", ladder="karras", order=2, time="log-sigma"
            )
        )
        return rows
    if stage == "final":
        rows.append(scorelab_row("recommended", None))
        rows.append(
            scorelab_row("deis log-sigma karras", "deis", ladder="karras", time="log-sigma")
        )
        rows.append(deis_lof_row("deis log-sigma karras, lower-order final"))
        return rows
    if stage == "range3":  # the σ range and ρ of iPNDM (order 3) against DEIS
        rows.append(scorelab_row("recommended", None))
        rows.append(_ranged_row("ipndm", "karras", 10.0, 0.01))  # the previous recommendation
        rows.append(deis_lof_row("deis log-sigma karras, lower-order final"))
        for hi, lo in ((5.0, 0.01), (4.0, 0.01), (3.0, 0.01), (7.0, 0.01), (5.0, 0.005)):
            rows.append(_ranged_row("ipndm", "karras", hi, lo))
        rows.append(_ranged_row("ipndm", "karras", 5.0, 0.03))
        rows.append(_ranged_row("ipndm", "karras", 5.0, 0.01, order=2))
        for hi, rho in ((5.0, 5.0), (4.0, 5.0), (7.0, 5.0), (5.0, 4.0), (5.0, 6.0), (10.0, 5.0)):
            rows.append(_ranged_row("ipndm", "karras", hi, 0.01, rho=rho))
        return rows
    if stage == "thin":  # σ_min capped at 0.14 × the thinnest std (the default) or not; ρ, σ_max
        rows.append(scorelab_row("recommended", None))
        rows.append(_ranged_row("ipndm", "karras", 5.0, 0.01, rho=4.0))  # uncapped: the previous
        for hi, rho in ((5.0, 5.0), (5.0, 6.0), (5.0, 7.0), (10.0, 7.0)):
            rows.append(
                scorelab_row(
                    f"ipndm karras rho={rho:g} σ_max {hi:g}·scale, capped σ_min",
                    "ipndm",
                    ladder="karras",
                    rho=rho,
                    sigma_max_factor=hi,
                )
            )
        rows.append(deis_lof_row("deis log-sigma karras, lower-order final"))
        return rows
    if stage == "deis5":  # DEIS in log σ (= diffusers' DEIS) from the recommendation's σ_max
        rows.append(scorelab_row("recommended", None))
        rows.append(deis_lof_row("deis log-sigma karras, lower-order final"))
        for rho in (7.0, 5.0, 4.0):
            lof = {"time": "log-sigma", "lower_order_final": True}
            rows.append(_ranged_row("deis", "karras", 5.0, 0.01, rho=rho, **lof))
        return rows
    ranges = ((5.0, 0.01), (10.0, 0.01), (20.0, 0.01), (10.0, 0.003), (10.0, 0.03))
    for sampler, ladder in (("ipndm", "karras"), ("ipndm", "geometric"), ("unipc", "geometric")):
        for hi, lo in ranges:
            rows.append(_ranged_row(sampler, ladder, hi, lo))
    rows.append(_ranged_row("ipndm", "karras", 10.0, 0.01, rho=5.0))
    rows.append(_ranged_row("ipndm", "karras", 10.0, 0.01, rho=12.0))
    rows.append(_ranged_row("ipndm", "karras", 10.0, 0.01, order=3))
    return rows


def _ranged_row(sampler: str, ladder: str, hi: float, lo: float, **options: Any) -> Row:
    def run(ctx: Context, budget: int, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        scale = data_scale(ctx.source.cov)  # the law's scale, as draw_samples computes it
        res = draw_samples(
            ctx.source,
            N,
            sampler,
            steps=budget,
            generator=gen,
            ladder=ladder,
            sigma_max=hi * scale,
            sigma_min=lo * scale,
            **options,
        )
        return res.samples, res.n_evals

    extra = "".join(
        f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}" for k, v in options.items()
    )
    return Row(f"{sampler} {ladder}{extra} σ {hi:g}→{lo:g}·scale", "scorelab", "", run)


def print_tune(payload: dict[str, Any]) -> None:
    summary = summarise(payload)
    budgets = payload["budgets"]
    print("mean ratio over presets and seeds (per preset in parentheses)")
    for row in payload["rows"]:
        per_b = []
        for b in budgets:
            vals = [summary[(p, row, b)]["ratio"] for p in payload["presets"]]
            per_b.append(f"{np.mean(vals):.2f} ({'/'.join(f'{v:.2f}' for v in vals)})")
        print(f"{row:40s} " + "  ".join(per_b))
    print("thinnest-axis std ratio over seeds, per preset (exact samples: 1)")
    for row in payload["rows"]:
        per_b = [
            "/".join(f"{summary[(p, row, b)]['thin']:.2f}" for p in payload["presets"])
            for b in budgets
        ]
        print(f"{row:40s} " + "  ".join(per_b))


# ---------------------------------------------------------------------------------------------


def merge_parts(parts: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """``(exact, records)`` of parts run in parallel. A (preset, seed, row, budget) measured by
    several parts is kept once, from the first part listed (the runs are the same computation:
    the reference and the starting draws depend on the seed only)."""
    exact: dict[tuple, dict] = {}
    records: dict[tuple, dict] = {}
    for q in parts:
        for e in q["exact"]:
            exact.setdefault((e["preset"], e["seed"]), e)
        for r in q["records"]:
            records.setdefault((r.get("preset"), r.get("seed"), r["row"], r["budget"]), r)
    return list(exact.values()), list(records.values())


def _chosen(name: str, only: list[str] | None) -> bool:
    return only is None or any(text in name for text in only)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="seed 0, budgets 6 and 10")
    parser.add_argument(
        "--tune",
        choices=("ladder", "range", "deis", "final", "range3", "deis5", "thin"),
        help="tuning stage (seeds 1000+)",
    )
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--report", action="store_true", help="tables and figure from the JSON")
    parser.add_argument("--part", help="write results/fewstep_PART.json (a share of the presets)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds in this order (default 0-19)")
    parser.add_argument(
        "--only", nargs="+", help="run only the rows whose name contains one of these texts"
    )
    parser.add_argument("--budgets", nargs="+", type=int, help="evaluation budgets to run")
    parser.add_argument("--merge", nargs="+", metavar="PART", help="join parts into fewstep.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    presets = tuple(args.presets)
    if args.merge:
        parts = [json.loads((RESULTS_DIR / f"fewstep_{p}.json").read_text()) for p in args.merge]
        payload = {k: v for k, v in parts[0].items() if k not in ("date", "machine", "command")}
        payload["presets"] = [p for p in PRESETS if any(p in q["presets"] for q in parts)]
        payload["rows"] = {}
        for q in parts:  # a row in several parts: described by the first listed, as its records
            for k, v in q["rows"].items():
                payload["rows"].setdefault(k, v)
        payload["exact"], payload["records"] = merge_parts(parts)
        payload["seeds"] = sorted({e["seed"] for e in payload["exact"]})
        payload["parts"] = {p: q["command"] for p, q in zip(args.merge, parts, strict=True)}
        save_results("fewstep", payload)
        args.report = True
    if args.tune:
        rows = [r for r in tune_rows(args.tune) if _chosen(r.name, args.only)]
        budgets = tuple(args.budgets) if args.budgets else TUNE_BUDGETS
        suffix = f"_{args.part}" if args.part else ""
        name = f"fewstep_tune_{args.tune}{suffix}"
        payload = run_grid(rows, presets, TUNE_SEEDS, budgets, name, {})
        print_tune(payload)
        return
    name = "fewstep_quick" if args.quick else "fewstep"
    name = f"fewstep_{args.part}" if args.part else name
    if args.report:
        payload = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    else:
        seeds, budgets = (QUICK_SEEDS, QUICK_BUDGETS) if args.quick else (SEEDS, BUDGETS)
        seeds = tuple(args.seeds) if args.seeds else seeds
        budgets = tuple(args.budgets) if args.budgets else budgets
        rows = [r for r in scorelab_rows() + diffusers_rows() if _chosen(r.name, args.only)]
        payload = run_grid(rows, presets, seeds, budgets, name, {})
    figure(payload, RESULTS_DIR / f"{name}.png")
    figure(payload, RESULTS_DIR / f"{name}_thin.png", metric="thin")
    print(headline(payload))
    print(figures_asked(payload))
    print(comparison_tables(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
