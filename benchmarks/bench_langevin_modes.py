"""Mode weights from annealed vs plain Langevin with the exact score of the seed 003 mixture.

Target: ``0.1·N(−3, 1) + 0.9·N(3, 1)`` (``scorelab.targets.mixture_1d``), 20 000 samples. The
weight of the 10 % mode is read back two ways: the fraction of samples below 0
(``scorelab.metrics.fraction_below``; for exact draws its expectation is 0.1 − 0.1·Φ(−3) +
0.9·Φ(−3) ≈ 0.10108 because the tails cross 0) and the hard mixture weight
(``scorelab.metrics.mixture_weights``: each sample to its most likely component; expectation
also computed exactly below).

- annealed Langevin (Song & Ermon 2019, Alg. 1): exact noised score, geometric σ from 10 to 0.1
  (20 levels × 100 steps), the paper's step rule ``α_i = ε·σ_i²/σ_L²`` with ``ε = 0.5·σ_L²``
  (so ``α_i = 0.5·σ_i²``, inside the stability bound ``2·σ_i²``), a final Tweedie denoising
  step; started from ``N(0, 10²)``. Levels below σ ≈ 0.5 do not move mass between the modes, so
  the ladder stops at 0.1 and spends its steps where the modes separate (σ ≈ 1.5–4).
- the same with ``ε`` at the stability bound (``c = 2``): a chain that runs but gets the weights
  wrong, to show that the step rule matters.
- plain Langevin (seed 003 form ``x ← x + τ·s(x) + √(2τ)·z``) with the exact *clean* score,
  started wide from ``U[−8, 8]``: chains stay in the basin they start in, so the small mode gets
  about the share of starts left of the barrier instead of 10 %.

Each configuration runs with 3 seeds. The full run adds the exploration behind the ladder's
σ_min = 0.1: the same annealed sampler down to σ = 0.01 with 10, 20 and 40 levels.

    python benchmarks/bench_langevin_modes.py --quick
    python benchmarks/bench_langevin_modes.py
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_results  # noqa: E402

from scorelab.metrics import fraction_below, mixture_weights  # noqa: E402
from scorelab.samplers import annealed_langevin, langevin  # noqa: E402
from scorelab.sde import geometric_sigmas  # noqa: E402
from scorelab.targets import mixture_1d  # noqa: E402

TARGET = mixture_1d()
SMALL_MODE = 0  # component index of 0.1·N(−3, 1)
SIGMA_MAX, SIGMA_MIN = 10.0, 0.1  # the annealing ladder (geometric)


def exact_expectations() -> dict:
    """Expected fraction below 0 and hard-assignment weight of the small mode for exact draws."""
    phi = lambda z: 0.5 * math.erfc(-z / math.sqrt(2.0))  # noqa: E731  standard normal CDF
    # Responsibilities are equal where 0.1·N(x; −3, 1) = 0.9·N(x; 3, 1), i.e. x = −ln 9 / 6.
    boundary = -math.log(9.0) / 6.0
    return {
        "fraction_below_0": 0.1 * phi(3.0) + 0.9 * phi(-3.0),
        "hard_weight": 0.1 * phi(boundary + 3.0) + 0.9 * phi(boundary - 3.0),
        "assignment_boundary": boundary,
    }


def summarise(samples: torch.Tensor) -> dict:
    return {
        "fraction_below_0": fraction_below(samples, 0.0),
        "hard_weight": float(mixture_weights(samples, TARGET)[SMALL_MODE]),
        "mean": float(samples.mean()),
        "std": float(samples.std()),
    }


def run_annealed(
    n: int, levels: int, steps_each: int, c: float, seed: int, sigma_min: float = SIGMA_MIN
) -> tuple[dict, int]:
    gen = torch.Generator().manual_seed(seed)
    sigmas = geometric_sigmas(levels, sigma_min=sigma_min, sigma_max=SIGMA_MAX)
    x = 10.0 * torch.randn((n, 1), generator=gen, dtype=torch.float64)
    eps = c * float(sigmas[-1]) ** 2
    res = annealed_langevin(
        TARGET.noised_score, x, sigmas, n_steps_each=steps_each, eps=eps, generator=gen
    )
    return summarise(res.samples), res.n_evals


def run_plain(n: int, n_steps: int, tau: float, seed: int) -> tuple[dict, int]:
    gen = torch.Generator().manual_seed(seed)
    x = 16.0 * torch.rand((n, 1), generator=gen, dtype=torch.float64) - 8.0  # U[-8, 8]
    res = langevin(TARGET.score, x, step_size=tau, n_steps=n_steps, generator=gen)
    return summarise(res.samples), res.n_evals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = 2000 if args.quick else 20_000
    seeds = (0,) if args.quick else (0, 1, 2)
    levels, steps_each = (10, 20) if args.quick else (20, 100)
    plain_steps, tau = (500, 0.01) if args.quick else (2000, 0.01)
    configs = {
        "annealed_langevin": (
            f"geometric σ {SIGMA_MAX:g}→{SIGMA_MIN:g} ({levels} levels) × {steps_each} steps, "
            "paper rule ε = 0.5·σ_L² (α_i = 0.5·σ_i²), final denoise, start N(0, 10²)",
            lambda s: run_annealed(n, levels, steps_each, 0.5, s),
        ),
        "annealed_langevin at the stability bound": (
            "as above with ε = 2·σ_L² (α_i = 2·σ_i², the bound where the library warns)",
            lambda s: run_annealed(n, levels, steps_each, 2.0, s),
        ),
        "plain langevin (clean score)": (
            f"x ← x + τ·s(x) + √(2τ)·z, τ = {tau:g}, {plain_steps} steps "
            f"(time {tau * plain_steps:g}), start U[−8, 8]",
            lambda s: run_plain(n, plain_steps, tau, s),
        ),
    }
    if not args.quick:  # why the ladder stops at 0.1: the same sampler down to 0.01
        for lv, c in ((10, 0.1), (20, 0.5), (40, 0.5)):
            configs[f"exploration: σ {SIGMA_MAX:g}→0.01, {lv} levels, ε = {c:g}·σ_L²"] = (
                f"geometric σ {SIGMA_MAX:g}→0.01 ({lv} levels) × {steps_each} steps, "
                f"ε = {c:g}·σ_L², final denoise, start N(0, 10²)",
                functools.partial(run_annealed, n, lv, steps_each, c, sigma_min=0.01),
            )
    expect = exact_expectations()
    exact = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        exact.append(summarise(TARGET.sample(n, generator=gen, dtype=torch.float64)))
    results = {"exact draws": {"settings": "target.sample", "per_seed": exact, "n_evals": 0}}
    print(f"expected for exact draws: {expect}")
    for name, (settings, fn) in configs.items():
        start = time.perf_counter()
        per_seed, evals = [], 0
        for seed in seeds:
            summary, evals = fn(seed)
            per_seed.append(summary)
        secs = (time.perf_counter() - start) / len(seeds)
        results[name] = {"settings": settings, "per_seed": per_seed, "n_evals": evals,
                         "seconds_per_run": secs}  # fmt: skip
    print("\n| method | evals | fraction x < 0 (seeds) | hard weight of the 10 % mode (seeds) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        frac = "/".join(f"{p['fraction_below_0']:.4f}" for p in r["per_seed"])
        hard = "/".join(f"{p['hard_weight']:.4f}" for p in r["per_seed"])
        print(f"| {name} | {r['n_evals']} | {frac} | {hard} |")
        for p in r["per_seed"]:
            p["fraction_error"] = p["fraction_below_0"] - expect["fraction_below_0"]
            p["weight_error_vs_0.1"] = p["hard_weight"] - 0.1
    save_results(
        "langevin_modes" + ("_quick" if args.quick else ""),
        {"n": n, "seeds": list(seeds), "expected_exact": expect, "results": results},
    )


if __name__ == "__main__":
    main()
