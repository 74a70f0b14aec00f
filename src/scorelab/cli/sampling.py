"""Sampler names and options for the command line: the one place sampler names become calls.

``scorelab sample`` (for analytic targets and for trained runs) and ``scorelab demo`` share this
table, so every sampler has the same flags wherever it is offered.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from scorelab.samplers.langevin import annealed_langevin, langevin, score_ascent
from scorelab.samplers.ode import (
    dpmpp_2m,
    dpmpp_2m_sde,
    dpmpp_3m,
    edm_euler,
    edm_heun,
    edm_stochastic,
    moment_matched_prior,
    probability_flow,
)
from scorelab.samplers.result import SampleResult
from scorelab.samplers.reverse_sde import predictor_corrector, reverse_sde
from scorelab.sde import SDES, geometric_sigmas, get_sde, karras_sigmas
from scorelab.utils import CleanScoreFn, ScoreFn, check_int, check_noise_level, check_positive


@dataclass(frozen=True)
class ScoreSource:
    """What a sampler needs to know about the distribution it samples.

    ``score`` is the noise-conditional score ``score(x, sigma)``; ``clean_score`` the score of the
    data itself (plain Langevin and score ascent use it). ``mean``/``cov`` (flattened) give the
    moment-matched prior; ``sigma_max``/``sigma_min`` the default noise range.
    """

    score: ScoreFn
    clean_score: CleanScoreFn
    data_shape: tuple[int, ...]
    mean: Tensor
    cov: Tensor
    sigma_max: float
    sigma_min: float
    dtype: torch.dtype = torch.float32
    device: torch.device = torch.device("cpu")


@dataclass(frozen=True)
class SamplerInfo:
    family: str  # "langevin", "annealed", "sde", "ladder"
    summary: str
    default_steps: int


SAMPLERS: dict[str, SamplerInfo] = {
    "langevin": SamplerInfo(
        "langevin", "unadjusted Langevin x + τ·s(x) + √(2τ)·z from a wide Gaussian start", 1000
    ),
    "score-ascent": SamplerInfo(
        "langevin", "deterministic x + ε·s(x): climbs to the nearest mode (seed 001 Task 6)", 100
    ),
    "annealed-langevin": SamplerInfo(
        "annealed", "annealed Langevin over a geometric σ ladder (Song & Ermon 2019)", 100
    ),
    "reverse-sde": SamplerInfo(
        "sde", "Euler–Maruyama on the reverse-time SDE (Song et al. 2021)", 500
    ),
    "pc": SamplerInfo(
        "sde", "predictor–corrector with a Langevin corrector (Song et al. 2021)", 500
    ),
    "ode-euler": SamplerInfo("sde", "probability-flow ODE, Euler", 500),
    "ode-heun": SamplerInfo("sde", "probability-flow ODE, Heun", 250),
    "ode-dopri5": SamplerInfo(
        "sde", "probability-flow ODE, adaptive Dormand–Prince (torchdiffeq)", 0
    ),
    "edm-euler": SamplerInfo(
        "ladder", "Euler on the σ-ODE over a Karras ladder (Karras et al. 2022)", 50
    ),
    "edm-heun": SamplerInfo("ladder", "Heun on the σ-ODE, Karras Alg. 1", 25),
    "edm-stochastic": SamplerInfo("ladder", "Karras Alg. 2 with noise churn", 25),
    "dpmpp-2m": SamplerInfo("ladder", "DPM-Solver++(2M) multistep (Lu et al. 2022)", 25),
    "dpmpp-3m": SamplerInfo("ladder", "DPM-Solver++(3M) multistep", 25),
    "dpmpp-2m-sde": SamplerInfo("ladder", "DPM-Solver++(2M) SDE variant", 50),
}


def describe_samplers() -> str:
    width = max(len(n) for n in SAMPLERS)
    return "\n".join(f"  {name:<{width}}  {info.summary}" for name, info in SAMPLERS.items())


def add_sampler_arguments(parser: argparse.ArgumentParser, *, default: str) -> None:
    """Add the flags every sampler understands (unused ones are ignored by other samplers)."""
    g = parser.add_argument_group("sampler options")
    g.add_argument(
        "--sampler",
        default=default,
        choices=sorted(SAMPLERS),
        metavar="NAME",
        help=f"sampler to use (default: {default}); `scorelab sample --list` describes them",
    )
    g.add_argument(
        "--steps",
        type=int,
        default=None,
        help="number of steps (per level for annealed-langevin; levels for ladder samplers); "
        "default depends on the sampler",
    )
    g.add_argument(
        "--step-size",
        type=float,
        default=None,
        help="Langevin step τ (langevin, score-ascent); default 0.01 × data variance",
    )
    g.add_argument(
        "--parametrization",
        choices=("tau", "eta"),
        default="tau",
        help="langevin update: tau = x+τs+√(2τ)z (seed 003), eta = x+η/2·s+√η·z (seed 000)",
    )
    g.add_argument(
        "--init-std",
        type=float,
        default=None,
        help="std of the Gaussian start of langevin/score-ascent (default: 2 × data std)",
    )
    g.add_argument("--sigma-max", type=float, default=None, help="largest noise level")
    g.add_argument("--sigma-min", type=float, default=None, help="smallest noise level")
    g.add_argument("--levels", type=int, default=10, help="annealed-langevin: number of σ levels")
    g.add_argument(
        "--eps",
        type=float,
        default=None,
        help="annealed-langevin step constant ε (default: stable value 1.5·σ_min²·…)",
    )
    g.add_argument(
        "--step-rule",
        choices=("paper", "seed"),
        default="paper",
        help="annealed-langevin step rule: paper ε·σ_i²/σ_min², seed ε·σ_i²/σ_max²",
    )
    g.add_argument(
        "--ladder",
        choices=("geometric", "karras"),
        default="geometric",
        help="σ ladder of ladder samplers: geometric (log-uniform) or Karras ρ-spacing",
    )
    g.add_argument("--rho", type=float, default=7.0, help="Karras ladder exponent ρ")
    g.add_argument("--churn", type=float, default=10.0, help="edm-stochastic: S_churn")
    g.add_argument(
        "--prior",
        choices=("gaussian", "moment-matched"),
        default="moment-matched",
        help="start of ladder samplers: N(0, σ_max²I) or N(mean, cov + σ_max²I)",
    )
    g.add_argument(
        "--sde", default="ve", choices=sorted(SDES), help="SDE of reverse-sde / pc / ode-* samplers"
    )
    g.add_argument("--lam", type=float, default=25.0, help="ve-lambda SDE: g(t) = λ^t")
    g.add_argument("--snr", type=float, default=0.16, help="pc: corrector signal-to-noise ratio")
    g.add_argument("--no-denoise", action="store_true", help="skip the final denoising step")
    g.add_argument("--progress", action="store_true", help="show a progress bar")


def _sde_from_args(args: argparse.Namespace, source: ScoreSource):
    if args.sde == "ve-lambda":
        try:
            return get_sde("ve-lambda", lam=args.lam)
        except ValueError as err:  # the library names its argument `lam`; say which flag it is
            raise ValueError(f"--lam: {err}") from None
    if args.sde == "ve":
        return get_sde(
            "ve",
            sigma_min=source.sigma_min if args.sigma_min is None else args.sigma_min,
            sigma_max=source.sigma_max if args.sigma_max is None else args.sigma_max,
        )
    return get_sde(args.sde)


def run_sampler(
    args: argparse.Namespace,
    source: ScoreSource,
    n: int,
    *,
    generator: torch.Generator,
    keep_trajectory: bool = False,
    callback: Callable[[dict], None] | None = None,
) -> SampleResult:
    """Draw ``n`` samples with the sampler and options named in ``args``."""
    name = args.sampler
    info = SAMPLERS[name]
    steps = args.steps if args.steps is not None else info.default_steps
    if name != "ode-dopri5" or args.steps is not None:
        steps = check_int(steps, "--steps")
    check_int(args.levels, "--levels", minimum=2)
    for flag, value in (
        ("--init-std", args.init_std),
        ("--step-size", args.step_size),
        ("--eps", args.eps),
    ):
        if value is not None:
            check_positive(value, flag)
    for flag, value in (("--sigma-max", args.sigma_max), ("--sigma-min", args.sigma_min)):
        if value is not None:
            check_noise_level(value, flag)
    check_positive(args.rho, "--rho")
    check_positive(args.snr, "--snr")
    check_positive(args.churn, "--churn", strict=False)
    sigma_max = source.sigma_max if args.sigma_max is None else args.sigma_max
    sigma_min = source.sigma_min if args.sigma_min is None else args.sigma_min
    if sigma_min >= sigma_max:
        raise ValueError(
            f"--sigma-min ({sigma_min:g}) must be smaller than --sigma-max ({sigma_max:g})"
        )
    denoise = not args.no_denoise
    common = dict(
        generator=generator,
        keep_trajectory=keep_trajectory,
        progress=args.progress,
        callback=callback,
    )
    shape = (n, *source.data_shape)
    kw = dict(dtype=source.dtype, device=source.device)
    data_std = float(source.cov.diagonal().mean().sqrt())

    if info.family == "langevin":
        init_std = args.init_std if args.init_std is not None else 2.0 * data_std
        x = source.mean.to(**kw) + init_std * torch.randn(shape, generator=generator, **kw)
        step = args.step_size if args.step_size is not None else 0.01 * data_std**2
        if name == "score-ascent":
            return score_ascent(
                source.clean_score,
                x,
                step_size=step,
                n_steps=steps,
                keep_trajectory=keep_trajectory,
                progress=args.progress,
                callback=callback,
            )
        return langevin(
            source.clean_score,
            x,
            step_size=step,
            n_steps=steps,
            parametrization=args.parametrization,
            **common,
        )

    if info.family == "annealed":
        sigmas = geometric_sigmas(sigma_max, sigma_min, args.levels)
        x = _ladder_start(args, source, sigma_max, n, generator, kw)
        # Stable default: the smallest step α_L = ε must stay below ~2σ_L² (ECOSYSTEM.md).
        eps = (
            args.eps if args.eps is not None else _default_eps(args.step_rule, sigma_min, sigma_max)
        )
        return annealed_langevin(
            source.score,
            x,
            sigmas,
            n_steps_each=steps,
            eps=eps,
            step_rule=args.step_rule,
            final_denoise=denoise,
            **common,
        )

    if info.family == "sde":
        sde = _sde_from_args(args, source)
        x = sde.prior_sample(shape, generator=generator, **kw)
        if name == "reverse-sde":
            return reverse_sde(source.score, x, sde, n_steps=steps, denoise=denoise, **common)
        if name == "pc":
            return predictor_corrector(
                source.score, x, sde, n_steps=steps, snr=args.snr, denoise=denoise, **common
            )
        method = name.removeprefix("ode-")
        return probability_flow(
            source.score, x, sde, method=method, n_steps=max(steps, 1), denoise=denoise, **common
        )

    if args.ladder == "karras":
        sigmas = karras_sigmas(steps, sigma_min, sigma_max, rho=args.rho)
    else:
        sigmas = geometric_sigmas(sigma_max, sigma_min, steps)
    x = _ladder_start(args, source, sigma_max, n, generator, kw)
    ladder = {
        "edm-euler": edm_euler,
        "edm-heun": edm_heun,
        "dpmpp-2m": dpmpp_2m,
        "dpmpp-3m": dpmpp_3m,
        "dpmpp-2m-sde": dpmpp_2m_sde,
    }
    if name == "edm-stochastic":
        return edm_stochastic(
            source.score, x, sigmas, s_churn=args.churn, denoise=denoise, **common
        )
    return ladder[name](source.score, x, sigmas, denoise=denoise, **common)


def _default_eps(step_rule: str, sigma_min: float, sigma_max: float) -> float:
    # Paper rule: the last level's step is ε itself; keep it at σ_min²/2, well inside 2σ_min².
    eps = 0.5 * sigma_min**2
    return eps if step_rule == "paper" else eps * (sigma_max / sigma_min) ** 2


def _ladder_start(args, source: ScoreSource, sigma_max: float, n: int, generator, kw) -> Tensor:
    if args.prior == "moment-matched":
        x = moment_matched_prior(
            source.mean.to(**kw).reshape(-1), source.cov.to(**kw), sigma_max, n, generator=generator
        )
        return x.reshape(n, *source.data_shape)
    return sigma_max * torch.randn((n, *source.data_shape), generator=generator, **kw)
