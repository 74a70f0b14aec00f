"""Sample quality per score evaluation of every scorelab sampler, and reverse-SDE speed vs numpy.

Everything uses the *exact* score of the seed 004 two-dimensional mixture (``mixture_2d``), so
only the sampler is measured.

Quality: scorelab's one evaluation protocol (``scorelab.metrics.LawReference``): sliced-W2 (500
projections) of 5000 samples to 20 (5 with ``--quick``) fresh exact reference draws, divided by
the floor — the mean over 100 (16) independent pairs of exact draws at n = 5000 — with the
calibration of exact samples beside it; every configuration runs with 3 sampler seeds (0, 1, 2)
and reports their mean and each seed; ``--section seeds`` repeats the headline rows and exact
draws over 20 seeds. (The multi-preset comparison with the field's samplers at 20 seeds is
``bench_fewstep.py``.)

Speed: scorelab's ``reverse_sde`` on ``VESDELambda(25)`` against ``seed_numpy_baseline.py`` (the
seed 004 loop in numpy), 5000 samples, 199 and 9 steps (= score evaluations) each, interleaved
repeats in one run, medians; plus a per-call breakdown of where a step's time goes.

    python benchmarks/bench_samplers.py --quick             # smoke run (~1 min)
    python benchmarks/bench_samplers.py                     # full: budgets 5..200, 3 seeds
    python benchmarks/bench_samplers.py --section speed     # speed only
    python benchmarks/bench_samplers.py --section seeds     # headline rows over 20 seeds
    python benchmarks/bench_samplers.py --section speed --threads 2 --suffix threads2
(a section other than "all" writes results/samplers_SECTION[_SUFFIX].json)

Torch runs on ``--threads`` threads (default 1): on an oversubscribed machine OpenMP's barrier
makes every parallelised elementwise op of a few thousand elements cost milliseconds.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, save_results  # noqa: E402
from seed_numpy_baseline import reverse_sde_numpy, seed004_mixture  # noqa: E402

from scorelab import samplers as S  # noqa: E402
from scorelab.metrics import LawReference  # noqa: E402
from scorelab.plotting.curves import quality_vs_evals  # noqa: E402
from scorelab.samplers.result import StepMonitor  # noqa: E402
from scorelab.sde import SDE, VESDE, VPSDE, VESDELambda, geometric_sigmas, karras_sigmas  # noqa: E402
from scorelab.targets import mixture_2d  # noqa: E402

N = 5000
BUDGETS = (5, 10, 20, 50, 100, 200)
SEEDS = (0, 1, 2)
N_PROJECTIONS, PROJECTION_SEED = 500, 0
TEST_SEED, FLOOR_SEED, CALIBRATION_SEED = 10_000, 20_000, 30_000
TARGET = mixture_2d()
SCORE = TARGET.noised_score

#: Figures measured by the issue authors (k-diffusion samplers fed the same exact score, Karras σ
#: from 20 to 0.002, and the seed 004 notebook loop): (score evaluations, ratio). Not rerun here.
PEERS = {
    "k-diffusion LMS (issue)": (10, 2.6),
    "k-diffusion DPM++ 2M (issue)": (10, 3.4),
    "k-diffusion Euler (issue)": (10, 5.2),
    "k-diffusion Heun (issue)": (19, 3.0),
    "k-diffusion ODE samplers, any budget (issue, stall)": (200, 1.6),
    "seed 004 reverse SDE, 9 steps (issue)": (9, 1.4),
    "seed 004 reverse SDE, 199 steps (issue, 1.0-1.2)": (199, 1.1),
}


# ---------------------------------------------------------------------------------------------
# The quality measure
# ---------------------------------------------------------------------------------------------


class Reference:
    """scorelab's evaluation protocol for the mixture (``scorelab.metrics.LawReference``):
    ``n_test`` fresh reference draws, the floor from ``n_floor_pairs`` independent pairs and the
    calibration of exact samples, all at n = 5000; ``ratios(samples)`` per reference draw."""

    def __init__(self, n_test: int, n_floor_pairs: int) -> None:
        def law(n: int, gen: torch.Generator) -> torch.Tensor:
            return TARGET.sample(n, generator=gen, dtype=torch.float64)

        self.law = LawReference(law, N, n_references=n_test, n_pairs=n_floor_pairs, seed=FLOOR_SEED)
        exact = self.law.measure(law(N, torch.Generator().manual_seed(CALIBRATION_SEED)))
        cal = exact["sliced_w2"]
        self.floor, self.floor_values = cal.floor, list(cal.floor_values)
        self.calibration = {"mean": cal.calibration_mean, "sd": cal.calibration_sd}

    def ratios(self, samples: torch.Tensor | np.ndarray) -> list[float]:
        """sliced-W2(samples, reference draw k) / floor for every reference draw k."""
        m = self.law.measure(torch.as_tensor(np.asarray(samples, dtype=np.float64)))["sliced_w2"]
        return [v / m.floor for v in m.values]


# ---------------------------------------------------------------------------------------------
# Starting points and budgets
# ---------------------------------------------------------------------------------------------


def mm_start(sigma: float, gen: torch.Generator, quasi_random: bool = False) -> torch.Tensor:
    """``N(mean, cov + σ²I)`` with the target's exact mean and covariance (float64)."""
    return S.moment_matched_prior(
        TARGET.mean(), TARGET.covariance(), sigma, N, generator=gen, quasi_random=quasi_random
    )


def mm_sde_start(sde: SDE, gen: torch.Generator) -> torch.Tensor:
    """Moment-matched prior of an SDE at ``T``: ``α_T·N(mean, cov + σ̃_T²I)``."""
    return float(sde.alpha(sde.T)) * mm_start(float(sde.noise_level(sde.T)), gen)


def sde_start(sde: SDE, gen: torch.Generator) -> torch.Tensor:
    """The SDE's own Gaussian prior ``N(0, s²I)``."""
    return sde.prior_sample((N, TARGET.dim), generator=gen, dtype=torch.float64)


def gauss_start(sigma: float, gen: torch.Generator) -> torch.Tensor:
    """``N(0, σ²I)``: the usual start of the σ-ladder samplers (k-diffusion's)."""
    return sigma * torch.randn((N, TARGET.dim), generator=gen, dtype=torch.float64)


def half(budget: int) -> int:
    """Levels ``M`` of a Heun-type ladder (``2M − 1`` evaluations) closest to ``budget``."""
    return max(2, (budget + 1) // 2)


GEOM = (20.0, 0.02)  # the geometric ladder of the σ-ladder samplers: σ_max, σ_min
VE_LAMBDA, VE, VP = VESDELambda(25.0), VESDE(sigma_min=0.01, sigma_max=20.0), VPSDE()
ALD_LADDER, ALD_C = (5.0, 0.05), 1.9  # annealed Langevin: ladder, eps = c·σ_min² (paper rule)


def geom(levels: int) -> torch.Tensor:
    return geometric_sigmas(levels, sigma_min=GEOM[1], sigma_max=GEOM[0])


def karras(levels: int) -> torch.Tensor:
    return karras_sigmas(levels, sigma_min=0.002, sigma_max=20.0)


# ---------------------------------------------------------------------------------------------
# The configurations: name, settings, run(budget, generator) -> (samples, n_evals)
# ---------------------------------------------------------------------------------------------

Run = Callable[[int, torch.Generator], tuple[object, int]]


@dataclass(frozen=True)
class Row:
    name: str
    settings: str
    run: Run | None
    group: str = "scorelab"  # "scorelab", "peer-config" (a peer's settings rerun), "extra", "seed"
    tolerances: tuple[float, ...] = ()  # adaptive solvers: one point per tolerance, not budget


def _res(r: S.SampleResult) -> tuple[torch.Tensor, int]:
    return r.samples, r.n_evals


#: The row of the registry's recommended configuration for exact targets (what
#: ``scorelab sample --target`` draws with no sampler flags).
RECOMMENDED_ROW = f"{S.RECOMMENDED['exact'].sampler} (RECOMMENDED['exact'])"


def _recommended(budget: int, gen: torch.Generator) -> tuple[torch.Tensor, int]:
    source = S.target_source(TARGET)
    return _res(S.draw_samples(source, N, None, steps=budget, generator=gen))


def _seed_loop(budget: int, gen: torch.Generator) -> tuple[np.ndarray, int]:
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen)))
    return reverse_sde_numpy(seed004_mixture(), N, budget - 1, lam=25.0, rng=rng), budget - 1


def _dopri(tol: float) -> Run:
    def run(budget: int, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        x = mm_sde_start(VP, gen)
        return _res(S.probability_flow(SCORE, x, VP, method="dopri5", rtol=tol, atol=tol))

    return run


def _ald(budget: int, gen: torch.Generator) -> tuple[torch.Tensor, int]:
    hi, lo = ALD_LADDER
    sigmas = geometric_sigmas(max(2, budget - 1), sigma_min=lo, sigma_max=hi)
    x = mm_start(hi, gen)
    r = S.annealed_langevin(SCORE, x, sigmas, n_steps_each=1, eps=ALD_C * lo**2, generator=gen)
    return _res(r)


MM = "moment-matched prior N(mean, cov + σ_max²I)"
ROWS = [
    Row(
        "seed 004 loop (numpy, this repo)",
        "seed_numpy_baseline.py: λ=25, N(0, σ_1²I), budget−1 Euler–Maruyama steps on the seed's "
        "grid t_i = 1 − i/budget, no denoising (so 9 and 199 steps at budgets 10 and 200)",
        _seed_loop,
        "seed",
    ),
    Row(
        "reverse_sde VE-λ25",
        "VESDELambda(25), its prior N(0, σ_T²I), budget−1 steps + Tweedie denoise",
        lambda b, g: _res(
            S.reverse_sde(SCORE, sde_start(VE_LAMBDA, g), VE_LAMBDA, n_steps=b - 1, generator=g)
        ),
    ),
    Row(
        "reverse_sde VE",
        "VESDE(σ 0.01→20), prior N(0, 20²I), budget−1 steps + Tweedie denoise",
        lambda b, g: _res(S.reverse_sde(SCORE, sde_start(VE, g), VE, n_steps=b - 1, generator=g)),
    ),
    Row(
        "reverse_sde VP",
        "VPSDE(β 0.1→20), prior N(0, I), budget−1 steps + Tweedie denoise",
        lambda b, g: _res(S.reverse_sde(SCORE, sde_start(VP, g), VP, n_steps=b - 1, generator=g)),
    ),
    Row(
        "predictor_corrector VE-λ25",
        "VESDELambda(25), moment-matched prior, (budget−1)/2 steps × (EM + 1 Langevin corrector, "
        "snr 0.16, batch norms) + denoise",
        lambda b, g: _res(
            S.predictor_corrector(
                SCORE,
                mm_sde_start(VE_LAMBDA, g),
                VE_LAMBDA,
                n_steps=max(1, (b - 1) // 2),
                generator=g,
            )
        ),  # fmt: skip
    ),
    Row(
        "probability_flow euler VP",
        "VPSDE, moment-matched prior α_T·N(mean, cov + σ̃_T²I), budget−1 Euler steps + denoise",
        lambda b, g: _res(
            S.probability_flow(SCORE, mm_sde_start(VP, g), VP, method="euler", n_steps=b - 1)
        ),
    ),
    Row(
        "probability_flow heun VP",
        "VPSDE, moment-matched prior, (budget−1)/2 Heun steps + denoise",
        lambda b, g: _res(
            S.probability_flow(
                SCORE, mm_sde_start(VP, g), VP, method="heun", n_steps=max(1, (b - 1) // 2)
            )
        ),
    ),
    Row(
        "probability_flow dpmpp-2m VE",
        "VESDE(σ 0.01→20), moment-matched prior, budget−1 DPM-Solver++(2M) steps + denoise",
        lambda b, g: _res(
            S.probability_flow(SCORE, mm_sde_start(VE, g), VE, method="dpmpp-2m", n_steps=b - 1)
        ),
    ),
    Row(
        "probability_flow dopri5 VP",
        "VPSDE, moment-matched prior, adaptive dopri5 at rtol = atol = 1e-2, 1e-3, 1e-4, 1e-5 "
        "(its own evaluation count) + denoise",
        None,
        tolerances=(1e-2, 1e-3, 1e-4, 1e-5),
    ),
    Row(
        "edm_euler",
        f"geometric σ {GEOM[0]:g}→{GEOM[1]:g} (budget levels, then 0), {MM}",
        lambda b, g: _res(S.edm_euler(SCORE, mm_start(GEOM[0], g), geom(b))),
    ),
    Row(
        "edm_heun",
        f"geometric σ {GEOM[0]:g}→{GEOM[1]:g} ((budget+1)/2 levels, 2M−1 evals), {MM}",
        lambda b, g: _res(S.edm_heun(SCORE, mm_start(GEOM[0], g), geom(half(b)))),
    ),
    Row(
        "edm_stochastic",
        f"geometric σ {GEOM[0]:g}→{GEOM[1]:g} ((budget+1)/2 levels), s_churn = 1, {MM}",
        lambda b, g: _res(
            S.edm_stochastic(SCORE, mm_start(GEOM[0], g), geom(half(b)), s_churn=1.0, generator=g)
        ),
    ),
    Row(
        "dpmpp_2m",
        f"geometric σ {GEOM[0]:g}→{GEOM[1]:g} (budget levels), {MM}",
        lambda b, g: _res(S.dpmpp_2m(SCORE, mm_start(GEOM[0], g), geom(b))),
    ),
    Row(
        "dpmpp_3m",
        f"geometric σ {GEOM[0]:g}→{GEOM[1]:g} (budget levels), {MM}",
        lambda b, g: _res(S.dpmpp_3m(SCORE, mm_start(GEOM[0], g), geom(b))),
    ),
    Row(
        RECOMMENDED_ROW,
        f"draw_samples(target_source(mixture_2d), steps=budget): {S.RECOMMENDED['exact']}",
        _recommended,
    ),
    Row(
        "dpmpp_2m_sde",
        f"geometric σ {GEOM[0]:g}→{GEOM[1]:g} (budget levels), η = 1, {MM}",
        lambda b, g: _res(S.dpmpp_2m_sde(SCORE, mm_start(GEOM[0], g), geom(b), generator=g)),
    ),
    Row(
        "annealed_langevin",
        f"geometric σ {ALD_LADDER[0]:g}→{ALD_LADDER[1]:g}, budget−1 levels × 1 step, paper rule "
        f"eps = {ALD_C:g}·σ_min² (just under the 2·σ² stability bound), final Tweedie denoise, "
        "moment-matched prior at σ_max",
        _ald,
    ),
    Row(
        "edm_euler, peer settings",
        "Karras σ 20→0.002 (ρ = 7), start N(0, 20²I) — the issue's k-diffusion configuration",
        lambda b, g: _res(S.edm_euler(SCORE, gauss_start(20.0, g), karras(b))),
        "peer-config",
    ),
    Row(
        "edm_heun, peer settings",
        "Karras σ 20→0.002, start N(0, 20²I), (budget+1)/2 levels",
        lambda b, g: _res(S.edm_heun(SCORE, gauss_start(20.0, g), karras(half(b)))),
        "peer-config",
    ),
    Row(
        "dpmpp_2m, peer settings",
        "Karras σ 20→0.002, start N(0, 20²I)",
        lambda b, g: _res(S.dpmpp_2m(SCORE, gauss_start(20.0, g), karras(b))),
        "peer-config",
    ),
    Row(
        "dpmpp_3m + quasi-random start (QMC, not i.i.d.)",
        "as dpmpp_3m but moment_matched_prior(quasi_random=True): scrambled Sobol starts, "
        "samples not independent, so ratios below 1 are expected",
        lambda b, g: _res(S.dpmpp_3m(SCORE, mm_start(GEOM[0], g, quasi_random=True), geom(b))),
        "extra",
    ),
]


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def measure(ref: Reference, run: Run, budget: int, seeds: tuple[int, ...]) -> dict:
    """Run one configuration for every seed; ratios per seed (each a mean over test draws)."""
    per_seed, evals, secs = [], None, []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        try:
            samples, evals = run(budget, gen)
        except S.DivergenceError as err:
            return {"budget": budget, "diverged": str(err)}
        secs.append(time.perf_counter() - start)
        per_seed.append(float(np.mean(ref.ratios(samples))))
    return {
        "budget": budget,
        "n_evals": evals,
        "ratio": float(np.mean(per_seed)),
        "per_seed": per_seed,
        "seconds_per_run": float(np.median(secs)),
    }


#: The headline checks repeated over many seeds: (row name, budget).
MANY_SEED_CHECKS = (
    (RECOMMENDED_ROW, 10),
    (RECOMMENDED_ROW, 50),
    ("dpmpp_2m_sde", 50),
    ("reverse_sde VE-λ25", 50),
)


def run_many_seeds(args: argparse.Namespace) -> dict:
    """The headline rows and exact draws over seeds 0..K−1: mean ± standard error per row.

    A perfect sampler's per-seed ratio scatters by about ±0.1 (sliced-W2 at n = 5000 is driven
    by the extreme quantiles), so a 3-seed mean has a standard error near 0.06; more seeds, all
    paired with the same exact-draw seeds, say whether a row is distinguishable from exact draws.
    """
    ref = Reference(args.test_draws, args.floor_pairs)
    seeds = tuple(range(args.many_seeds))
    by_name = {row.name: row for row in ROWS}

    def exact(budget: int, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        return TARGET.sample(N, generator=gen, dtype=torch.float64), 0

    checks = [("exact draws", exact, 0)] + [(n, by_name[n].run, b) for n, b in MANY_SEED_CHECKS]
    out = []
    for name, run, budget in checks:
        res = measure(ref, run, budget, seeds)
        vals = np.asarray(res["per_seed"])
        res.update(name=name, sem=float(vals.std(ddof=1) / math.sqrt(len(vals))))
        res["first3_mean"] = float(vals[:3].mean())
        out.append(res)
        print(
            f"  {args.many_seeds} seeds, {name} @ {res['n_evals']}: {res['ratio']:.3f} "
            f"± {res['sem']:.3f} (sd {vals.std(ddof=1):.3f}; seeds 0-2: {res['first3_mean']:.3f})",
            flush=True,
        )
    return {"seeds": list(seeds), "floor": ref.floor, "rows": out}


def run_quality(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    ref = Reference(args.test_draws, args.floor_pairs)
    print(
        f"noise floor: mean sliced-W2 {ref.floor:.5f} over {args.floor_pairs} pairs "
        f"(sd {np.std(ref.floor_values, ddof=1):.5f}); {args.test_draws} test draws; "
        f"{time.perf_counter() - t0:.1f}s",
        flush=True,
    )
    # Calibration: exact draws scored like a sampler (the per-seed spread of a perfect sampler).
    calib = []
    for i in range(args.calibration):
        gen = torch.Generator().manual_seed(CALIBRATION_SEED + i)
        calib.append(
            float(np.mean(ref.ratios(TARGET.sample(N, generator=gen, dtype=torch.float64))))
        )
    exact_seeds = []
    for seed in args.seeds:
        gen = torch.Generator().manual_seed(seed)
        draw = TARGET.sample(N, generator=gen, dtype=torch.float64)
        exact_seeds.append(float(np.mean(ref.ratios(draw))))
    print(
        f"exact draws: seeds {np.round(exact_seeds, 3)} mean {np.mean(exact_seeds):.3f}; "
        f"{len(calib)} more draws: mean {np.mean(calib):.3f} sd {np.std(calib, ddof=1):.3f} "
        f"range {min(calib):.3f}-{max(calib):.3f}",
        flush=True,
    )
    rows = []
    for row in ROWS:
        if args.only and not any(key in row.name for key in args.only):
            continue
        results = []
        if row.tolerances:
            for tol in row.tolerances if not args.quick else row.tolerances[1:2]:
                res = measure(ref, _dopri(tol), 0, args.seeds)
                res["rtol"] = tol
                results.append(res)
                print(f"  {row.name} tol={tol:g}: {_fmt(res)}", flush=True)
        else:
            for budget in args.budgets:
                res = measure(ref, row.run, budget, args.seeds)
                results.append(res)
                print(f"  {row.name} budget={budget}: {_fmt(res)}", flush=True)
        rows.append(
            {"name": row.name, "settings": row.settings, "group": row.group, "results": results}
        )
    return {
        "protocol": {
            "n": N,
            "n_projections": N_PROJECTIONS,
            "projection_seed": PROJECTION_SEED,
            "test_draws": args.test_draws,
            "floor_pairs": args.floor_pairs,
            "seeds": list(args.seeds),
            "dtype": "float64",
        },
        "floor": {"mean": ref.floor, "values": ref.floor_values},
        "exact_draws": {
            "per_seed": exact_seeds,
            "mean": float(np.mean(exact_seeds)),
            "calibration": calib,
        },  # fmt: skip
        "rows": rows,
        "peers_from_issue": {k: {"n_evals": v[0], "ratio": v[1]} for k, v in PEERS.items()},
        "seconds": time.perf_counter() - t0,
    }


def _fmt(res: dict) -> str:
    if "diverged" in res:
        return "diverged"
    seeds = "/".join(f"{r:.2f}" for r in res["per_seed"])
    return f"{res['ratio']:.3f} ({seeds}) at {res['n_evals']} evals, {res['seconds_per_run']:.2f}s"


def markdown_tables(quality: dict, budgets: tuple[int, ...]) -> str:
    """The ratio table (mean of seeds; evals in brackets when they differ from the budget)."""
    head = "| sampler | " + " | ".join(str(b) for b in budgets) + " |"
    lines = [head, "|" + "---|" * (len(budgets) + 1)]
    for row in quality["rows"]:
        cells = []
        if any("rtol" in r for r in row["results"]):
            text = ", ".join(
                f"{r['ratio']:.2f} @ {r['n_evals']} (tol {r['rtol']:g})"
                for r in row["results"]
                if "ratio" in r
            )
            lines.append(f"| {row['name']} | {text} |" + " |" * (len(budgets) - 1))
            continue
        for r in row["results"]:
            if "diverged" in r:
                cells.append("diverged")
            else:
                extra = f" ({r['n_evals']})" if r["n_evals"] != r["budget"] else ""
                cells.append(f"{r['ratio']:.2f}{extra}")
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Per seed (seeds 0/1/2), same rows:")
    lines.append("")
    lines.append(head)
    lines.append("|" + "---|" * (len(budgets) + 1))
    for row in quality["rows"]:
        cells = [
            "/".join(f"{v:.2f}" for v in r["per_seed"]) if "per_seed" in r else "diverged"
            for r in row["results"]
        ]
        if any("rtol" in r for r in row["results"]):
            pairs = zip(cells, row["results"], strict=True)
            cells = [", ".join(f"{c} @ {r['n_evals']}" for c, r in pairs)]
            cells += [""] * (len(budgets) - 1)
        lines.append(f"| {row['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(quality: dict, name: str) -> Path:
    """Ratio against evaluations for every row, the issue's peer figures as stars."""
    from scorelab.plotting import save_figure

    table = {}
    for row in quality["rows"]:
        pts = [(r["n_evals"], r["ratio"]) for r in row["results"] if "ratio" in r]
        if pts:
            table[row["name"]] = pts
    path = RESULTS_DIR / f"{name}.png"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    n_seeds = len(quality["protocol"]["seeds"])
    title = f"seed 004 mixture, exact score: sliced-W2 / noise floor (mean of {n_seeds} seeds)"
    fig = quality_vs_evals(table, peers=PEERS, log_y=True, title=title)
    fig.set_size_inches(11, 7.5)
    ax = fig.axes[0]
    # More lines than colours: the second group of ten is dashed with square markers.
    for i, line in enumerate(ax.get_lines()[: len(table)]):
        if i >= 10:
            line.set_linestyle("--")
            line.set_marker("s")
    ax.set_ylim(0.5, 30.0)
    ax.set_title(title + "\n(points above 30 are off the axis; see the table)", fontsize="medium")
    ax.legend(fontsize="x-small", ncol=2, loc="upper right")
    save_figure(fig, path)
    return path


def headline(quality: dict) -> dict:
    """The recommended sampler, and the best scorelab (i.i.d.) row, at 10 and 50 evaluations."""
    out = {}
    for budget in (10, 50):
        best, recommended = None, None
        for row in quality["rows"]:
            if row["group"] != "scorelab":
                continue
            for r in row["results"]:
                if r.get("budget") != budget or "ratio" not in r or r["n_evals"] > budget:
                    continue
                entry = {"sampler": row["name"], "ratio": r["ratio"], "per_seed": r["per_seed"],
                         "n_evals": r["n_evals"]}  # fmt: skip
                if best is None or r["ratio"] < best["ratio"]:
                    best = entry
                if row["name"] == RECOMMENDED_ROW:
                    recommended = entry
        out[str(budget)] = {"recommended": recommended, "best": best}
    return out


# ---------------------------------------------------------------------------------------------
# Speed: scorelab reverse_sde vs the seed's numpy loop
# ---------------------------------------------------------------------------------------------


def _median_call(fn: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean seconds per call over ``calls`` calls."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def _time_scorelab(n_steps: int, seed: int) -> float:
    """Seconds for scorelab's reverse SDE on VESDELambda(25): ``n_steps`` score evaluations."""
    gen = torch.Generator().manual_seed(seed)
    x0 = sde_start(VE_LAMBDA, gen)
    start = time.perf_counter()
    r = S.reverse_sde(SCORE, x0, VE_LAMBDA, n_steps=n_steps, denoise=False, generator=gen)
    elapsed = time.perf_counter() - start
    assert r.n_evals == n_steps
    return elapsed


def _time_numpy(npmix: object, n_steps: int, seed: int) -> float:
    """Seconds for the numpy seed loop (start drawn inside, as in the seed): ``n_steps`` evals."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    reverse_sde_numpy(npmix, N, n_steps, lam=25.0, rng=rng)
    return time.perf_counter() - start


def run_speed(args: argparse.Namespace) -> dict:
    npmix = seed004_mixture()
    out: dict = {"threads": torch.get_num_threads(), "repeats": args.repeats, "steps": {}}
    for n_steps in args.speed_steps:
        t_lib, t_np = [], []
        for rep in range(args.repeats):
            runs = [
                (partial(_time_scorelab, n_steps, rep), t_lib),
                (partial(_time_numpy, npmix, n_steps, rep), t_np),
            ]
            # Interleave, alternating which goes first, so both see the same machine load.
            for fn, acc in runs if rep % 2 == 0 else runs[::-1]:
                acc.append(fn())
        med_lib, med_np = statistics.median(t_lib), statistics.median(t_np)
        out["steps"][str(n_steps)] = {
            "score_evals": n_steps,
            "scorelab_s": t_lib,
            "numpy_s": t_np,
            "scorelab_median_s": med_lib,
            "numpy_median_s": med_np,
            "ratio_scorelab_over_numpy": med_lib / med_np,
        }
        print(
            f"speed {n_steps} steps: scorelab {med_lib:.3f}s, numpy {med_np:.3f}s, "
            f"ratio {med_lib / med_np:.2f} (medians of {args.repeats})",
            flush=True,
        )
    out["breakdown_us"] = breakdown()
    print("per-call breakdown (µs):", {k: round(v) for k, v in out["breakdown_us"].items()})
    return out


def breakdown() -> dict:
    """Median microseconds per call of the pieces of one reverse-SDE step, both implementations."""
    gen = torch.Generator().manual_seed(0)
    x = 3.0 * torch.randn((N, 2), generator=gen, dtype=torch.float64)
    sigma_b = torch.full((N,), 1.0, dtype=torch.float64)
    xn, npmix, rng = x.numpy(), seed004_mixture(), np.random.default_rng(0)
    monitor = StepMonitor("bench", x, 10**9)
    t = 0.5
    pieces = {
        "torch target.noised_score(x, sigma)": lambda: SCORE(x, sigma_b),
        "torch sde.reverse_drift (score + SDE maths)": lambda: VE_LAMBDA.reverse_drift(x, t, SCORE),
        "torch sde.reverse_drift, identity score (SDE maths only)": lambda: VE_LAMBDA.reverse_drift(
            x, t, lambda y, _: y
        ),
        "torch randn (5000, 2)": lambda: torch.randn(x.shape, generator=gen, dtype=x.dtype),
        "torch StepMonitor.step (finiteness check)": lambda: monitor.step(x, "bench"),
        "torch x + a*drift + b*z": lambda: x + 0.1 * x + 0.2 * x,
        "numpy noised_score(x, sigma)": lambda: npmix.noised_score(xn, 1.0),
        "numpy standard_normal (5000, 2)": lambda: rng.standard_normal((N, 2)),
        "numpy x + a*drift + b*z": lambda: xn + 0.1 * xn + 0.2 * xn,
    }
    return {name: 1e6 * _median_call(fn, 50) for name, fn in pieces.items()}


def profile_reverse_sde() -> str:
    """torch.profiler table of 50 reverse-SDE steps (by self CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    gen = torch.Generator().manual_seed(0)
    x0 = sde_start(VE_LAMBDA, gen)
    S.reverse_sde(SCORE, x0, VE_LAMBDA, n_steps=5, generator=gen)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        S.reverse_sde(SCORE, x0, VE_LAMBDA, n_steps=50, denoise=False, generator=gen)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)


# ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 budgets, 1 seed")
    parser.add_argument("--section", choices=("all", "quality", "speed", "seeds"), default="all")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--only", nargs="*", help="run only rows whose name contains one of these")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table")
    parser.add_argument("--suffix", default="", help="appended to the results file name")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.budgets, args.seeds, args.test_draws, args.floor_pairs = (10, 50), (0,), 5, 16
        args.calibration, args.repeats, args.speed_steps, args.many_seeds = 3, 2, (9,), 3
    else:
        args.budgets, args.seeds, args.test_draws, args.floor_pairs = BUDGETS, SEEDS, 20, 100
        args.calibration, args.repeats, args.many_seeds = 30, 7, 20
        args.speed_steps = (199, 9)
    payload: dict = {"mode": "quick" if args.quick else "full"}
    if args.section in ("all", "speed"):
        payload["speed"] = run_speed(args)
    if args.profile:
        print(profile_reverse_sde())
    name = "samplers" + (f"_{args.section}" if args.section != "all" else "")
    name += (f"_{args.suffix}" if args.suffix else "") + ("_quick" if args.quick else "")
    if args.section in ("all", "seeds"):
        payload["many_seeds"] = run_many_seeds(args)
    if args.section in ("all", "quality"):
        quality = run_quality(args)
        payload["quality"] = quality
        payload["headline"] = headline(quality)
        print(markdown_tables(quality, args.budgets))
        print("headline:", payload["headline"])
    save_results(name, payload)
    if args.section in ("all", "quality") and not args.only:
        print(f"wrote {plot(payload['quality'], name)}")


if __name__ == "__main__":
    main()
