"""Draw samples by sampler name: a :class:`ScoreSource` plus a registry entry give a call.

:func:`draw_samples` is the one place where a sampler name, its steps and options become a call:
``scorelab sample``/``evaluate``/``demo``, the recipes and the benchmarks all go through it. It
builds what the sampler's schedule needs (σ ladder, SDE, step size) from the source's noise range
and data moments, draws the starting point, and calls the registered function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from scorelab.samplers.ode import moment_matched_prior
from scorelab.samplers.registry import RECOMMENDED, SamplerConfig, SamplerSpec, get_sampler
from scorelab.samplers.result import SampleResult
from scorelab.sde import geometric_sigmas, get_sde, karras_sigmas
from scorelab.utils import CleanScoreFn, ScoreFn, check_int, check_noise_level, check_positive

#: The sampling σ range of a law with scale ``s`` (the largest std of its covariance):
#: ``σ_max = SIGMA_MAX_FACTOR·s``, ``σ_min = SIGMA_MIN_FACTOR·s``. With the moment-matched start a
#: moderate σ_max suffices (the start is off only by cumulants above the second, which shrink like
#: σ_max⁻³) and few-step ladders waste no evaluations far above the data's scale. Measured by
#: ``benchmarks/bench_samplers.py --tune`` (see RESULTS.md).
SIGMA_MAX_FACTOR = 10.0
SIGMA_MIN_FACTOR = 0.01
#: The ladder samplers end with Tweedie's ``D(x, σ_min)``, which leaves a Gaussian component of
#: variance ``λ`` along an axis with std ``√λ·(1 + σ_min²/λ)^(−1/2)``: within 1 % needs
#: ``σ_min ≤ 0.14·√λ``. An exact target knows its thinnest component, so its σ_min is capped at
#: this factor times that std (aniso-16d, whose thinnest std is 0.014 of its scale: thinnest-axis
#: std 0.81× the truth at 25 evaluations with σ_min = 0.01·scale, 1.00× capped; see
#: RESULTS_fewstep.md). A trained network's data give no such number and keep the scale rule.
SIGMA_MIN_THIN_FACTOR = 0.14


def data_scale(cov: Tensor) -> float:
    """The scale ``s`` of a law of covariance ``cov`` ``(d, d)``: its largest standard deviation."""
    scale = float(torch.linalg.eigvalsh(cov.detach().double().cpu()).max().clamp_min(0).sqrt())
    if not scale > 0:
        raise ValueError("the data's covariance is zero: a score model needs a spread")
    return scale


def thinnest_std(target: Any) -> float:
    """The smallest standard deviation of any component of an analytic target along any axis:
    ``min_k √λ_min(Σ_k)`` (a single Gaussian: of its covariance)."""
    covs = getattr(target, "covs", None)
    covs = target.covariance()[None] if covs is None else covs
    return float(torch.linalg.eigvalsh(covs.detach().double().cpu()).min().clamp_min(0).sqrt())


def sampling_sigma_range(cov: Tensor) -> tuple[float, float]:
    """``(σ_max, σ_min)`` for sampling a law of covariance ``cov`` ``(d, d)``: the one σ-range
    rule of scorelab's samplers (see :data:`SIGMA_MAX_FACTOR`)."""
    scale = data_scale(cov)
    return SIGMA_MAX_FACTOR * scale, SIGMA_MIN_FACTOR * scale


@dataclass(frozen=True)
class ScoreSource:
    """What a sampler needs to know about the distribution it samples.

    ``score`` is the noise-conditional score ``score(x, sigma)``; ``clean_score`` the score of the
    data itself (plain Langevin and score ascent). ``mean`` (data shape) and ``cov`` ``(d, d)``
    give the moment-matched start; ``sigma_max``/``sigma_min`` the default noise range of the
    ladders (for a trained network: its training range clipped to :func:`sampling_sigma_range`).
    ``recommended`` is the sampler configuration used when none is named: the best one measured
    for this kind of source (:data:`RECOMMENDED`; a trained run records its preset's).
    ``row_prior``, for a source whose law differs from row to row (an exact mixture conditioned
    on one observation per row), draws the moment-matched start of each row itself:
    ``row_prior(n, sigma_max, generator) -> (n, *data_shape)``; ``mean``/``cov`` then still give
    the noise range.
    """

    score: ScoreFn
    clean_score: CleanScoreFn
    data_shape: tuple[int, ...]
    mean: Tensor
    cov: Tensor
    sigma_max: float
    sigma_min: float
    recommended: SamplerConfig = RECOMMENDED["exact"]
    dtype: torch.dtype = torch.float32
    device: torch.device = torch.device("cpu")
    row_prior: Callable[[int, float, torch.Generator | None], Tensor] | None = None


def target_source(target: Any, device: torch.device | str = "cpu") -> ScoreSource:
    """The exact-score :class:`ScoreSource` of an analytic target (``scorelab.targets``).

    The target's score runs on the device of the points it is given; only the moments used for
    the start are moved to ``device``. The noise range is :func:`sampling_sigma_range`, its
    σ_min capped at :data:`SIGMA_MIN_THIN_FACTOR` times the :func:`thinnest_std` of the target.
    """
    device = torch.device(device)
    cov = target.covariance().to(torch.float64)
    sigma_max, sigma_min = sampling_sigma_range(cov)
    sigma_min = min(sigma_min, SIGMA_MIN_THIN_FACTOR * thinnest_std(target))
    return ScoreSource(
        score=target.noised_score,
        clean_score=target.score,
        data_shape=(target.dim,),
        mean=target.mean().to(dtype=torch.float32, device=device),
        cov=cov.to(dtype=torch.float32, device=device),
        sigma_max=sigma_max,
        sigma_min=sigma_min,
        recommended=RECOMMENDED["exact"],
        device=device,
    )


def network_source(
    score: ScoreFn,
    mean: Tensor,
    cov: Tensor,
    data_shape: tuple[int, ...],
    *,
    train_sigma_max: float,
    train_sigma_min: float,
    recommended: SamplerConfig,
    images: bool = False,
    device: torch.device | str = "cpu",
) -> ScoreSource:
    """The :class:`ScoreSource` of a trained network ``score(x, sigma)`` on data with ``mean``
    (data shape) and ``cov`` ``(d, d)``.

    Its noise range is the training range narrowed to :func:`sampling_sigma_range` for points
    (a ladder gains nothing above ten data scales, and a network is only trained inside its
    range); images keep their training range. The clean score (plain Langevin) is the network
    at its smallest training level — for the single-level objectives the one it was trained at.
    """
    sigma_max, sigma_min = float(train_sigma_max), float(train_sigma_min)
    if not images:
        rule_max, rule_min = sampling_sigma_range(cov)
        sigma_max, sigma_min = min(sigma_max, rule_max), max(sigma_min, rule_min)
        sigma_min = min(sigma_min, 0.5 * sigma_max)
    level = float(train_sigma_min)

    def clean_score(x: Tensor) -> Tensor:
        return score(x, torch.full((x.shape[0],), level, dtype=x.dtype, device=x.device))

    device = torch.device(device)
    return ScoreSource(
        score=score,
        clean_score=clean_score,
        data_shape=tuple(data_shape),
        mean=mean.reshape(data_shape).to(device),
        cov=cov.to(device),
        sigma_max=sigma_max,
        sigma_min=sigma_min,
        recommended=recommended,
        device=device,
    )


def _resolve_options(spec: SamplerSpec, options: dict[str, Any]) -> dict[str, Any]:
    """Registry defaults overlaid with ``options``; unknown names and bad choices raise."""
    known = {opt.name: opt for opt in spec.all_options()}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"sampler {spec.name!r} takes no option {', '.join(unknown)}; its options are "
            f"{', '.join(known) or 'none'}"
        )
    values = {name: opt.default for name, opt in known.items()}
    for name, value in options.items():
        if value is None:
            continue
        opt = known[name]
        if opt.choices is not None and value not in opt.choices:
            raise ValueError(
                f"{name} ({opt.flag}) must be one of {', '.join(opt.choices)}; got {value!r}"
            )
        if opt.type is float:
            value = check_positive(value, f"{name} ({opt.flag})", strict=False)
        elif opt.type is int:
            value = check_int(value, f"{name} ({opt.flag})")
        values[name] = value
    return values


def _noise_range(source: ScoreSource, values: dict[str, Any]) -> tuple[float, float]:
    sigma_max = source.sigma_max if values.get("sigma_max") is None else values["sigma_max"]
    if values.get("sigma_max_factor") is not None:
        if values.get("sigma_max") is not None:
            raise ValueError(
                "give sigma_max (--sigma-max) or sigma_max_factor (--sigma-max-factor), not both"
            )
        sigma_max = values["sigma_max_factor"] * data_scale(source.cov)
    sigma_min = source.sigma_min if values.get("sigma_min") is None else values["sigma_min"]
    check_noise_level(sigma_max, "sigma_max (--sigma-max)")
    check_noise_level(sigma_min, "sigma_min (--sigma-min)")
    if sigma_min >= sigma_max:
        raise ValueError(
            f"sigma_min (--sigma-min, {sigma_min:g}) must be smaller than "
            f"sigma_max (--sigma-max, {sigma_max:g})"
        )
    return sigma_max, sigma_min


def _start(source: ScoreSource, prior: str, sigma_max: float, n: int, generator) -> Tensor:
    kw = dict(dtype=source.dtype, device=source.device)
    if prior == "moment-matched" and source.row_prior is not None:
        return source.row_prior(n, sigma_max, generator).to(**kw).reshape(n, *source.data_shape)
    if prior == "moment-matched":
        x = moment_matched_prior(
            source.mean.to(**kw).reshape(-1), source.cov.to(**kw), sigma_max, n, generator=generator
        )
        return x.reshape(n, *source.data_shape)
    return sigma_max * torch.randn((n, *source.data_shape), generator=generator, **kw)


def default_annealed_eps(step_rule: str, sigma_min: float, sigma_max: float) -> float:
    """Stable default ε of annealed Langevin: the last level's step is ``σ_min²/2`` (well inside
    the ``2σ_min²`` stability bound; ECOSYSTEM.md) under either step rule."""
    eps = 0.5 * sigma_min**2
    return eps if step_rule == "paper" else eps * (sigma_max / sigma_min) ** 2


def _call(
    spec: SamplerSpec,
    source: ScoreSource,
    n: int,
    steps: int,
    v: dict[str, Any],
    common: dict[str, Any],
) -> SampleResult:
    """Build the schedule of ``spec`` and call its function (``v``: resolved options)."""
    generator = common["generator"]
    own = {opt.name: v[opt.name] for opt in spec.options}
    if spec.schedule == "clean":
        data_std = float(source.cov.diagonal().mean().sqrt())
        init_std = v["init_std"] if v["init_std"] is not None else 2.0 * data_std
        kw = dict(dtype=source.dtype, device=source.device)
        x = source.mean.to(**kw) + init_std * torch.randn(
            (n, *source.data_shape), generator=generator, **kw
        )
        step = v["step_size"] if v["step_size"] is not None else 0.01 * data_std**2
        if spec.name == "score-ascent":
            common = {k: val for k, val in common.items() if k != "generator"}
        return spec.function(source.clean_score, x, step_size=step, n_steps=steps, **own, **common)
    sigma_max, sigma_min = _noise_range(source, v)
    if spec.schedule == "sde":
        if v["sde"] == "ve":
            sde = get_sde("ve", sigma_min=sigma_min, sigma_max=sigma_max)
        elif v["sde"] == "ve-lambda":
            try:
                sde = get_sde("ve-lambda", lam=v["lam"])
            except ValueError as err:  # the library names it `lam`; say which flag it is
                raise ValueError(f"--lam: {err}") from None
        else:
            sde = get_sde(v["sde"])
        x = sde.prior_sample(
            (n, *source.data_shape), generator=generator, dtype=source.dtype, device=source.device
        )
        return spec.function(
            source.score, x, sde, n_steps=steps, denoise=v["denoise"], **spec.fixed, **own, **common
        )
    x = _start(source, v["prior"], sigma_max, n, generator)
    if spec.schedule == "annealed":
        levels = check_int(v["levels"], "levels (--levels)", minimum=2)
        sigmas = geometric_sigmas(levels, sigma_min=sigma_min, sigma_max=sigma_max)
        if own["eps"] is None:
            own["eps"] = default_annealed_eps(own["step_rule"], sigma_min, sigma_max)
        return spec.function(
            source.score, x, sigmas, n_steps_each=steps, final_denoise=v["denoise"], **own, **common
        )
    if v["ladder"] == "karras":
        sigmas = karras_sigmas(steps, sigma_min=sigma_min, sigma_max=sigma_max, rho=v["rho"])
    else:
        sigmas = geometric_sigmas(steps, sigma_min=sigma_min, sigma_max=sigma_max)
    return spec.function(source.score, x, sigmas, denoise=v["denoise"], **own, **common)


def chosen_config(
    source: ScoreSource, sampler: str | SamplerConfig | None, steps: int | None = None
) -> SamplerConfig:
    """The configuration :func:`draw_samples` runs for ``sampler``: the source's recommended one
    for ``None`` (and for its name without ``steps``), else the named sampler's defaults."""
    if isinstance(sampler, SamplerConfig):
        return sampler
    if sampler is None or (steps is None and sampler == source.recommended.sampler):
        return source.recommended  # the recommended sampler keeps its recommended settings
    return SamplerConfig(str(sampler))


def draw_samples(
    source: ScoreSource,
    n: int,
    sampler: str | SamplerConfig | None = None,
    *,
    steps: int | None = None,
    generator: torch.Generator | None = None,
    keep_trajectory: bool = False,
    progress: bool = False,
    callback: Callable[[dict], None] | None = None,
    **options: Any,
) -> SampleResult:
    """Draw ``n`` samples of ``source`` with a registered sampler.

    ``sampler`` is a name of :data:`scorelab.samplers.SAMPLERS` or a :class:`SamplerConfig`;
    ``None`` takes the source's recommended configuration (:data:`RECOMMENDED`). ``steps`` and
    ``options`` (the sampler's and its schedule's options, see ``scorelab sample --list``)
    override the configuration's; what is left out takes the registry's default, and a noise
    range left out takes the source's. Returns the sampler's :class:`SampleResult`, whose
    ``n_evals`` always counts the score evaluations.
    """
    n = check_int(n, "n")
    config = chosen_config(source, sampler, steps)
    spec = get_sampler(config.sampler)
    given = {k: v for k, v in options.items() if v is not None}
    own = dict(config.options)
    if "sigma_max" in given:  # a σ_max given replaces the configuration's σ_max factor
        own.pop("sigma_max_factor", None)
    chosen = {**own, **given}
    values = _resolve_options(spec, chosen)
    steps = steps if steps is not None else config.steps
    steps = check_int(spec.default_steps if steps is None else steps, "steps (--steps)")
    common = dict(
        generator=generator, keep_trajectory=keep_trajectory, progress=progress, callback=callback
    )
    return _call(spec, source, n, steps, values, common)


def evaluation_count(
    sampler: str | SamplerConfig, steps: int | None = None, **options: Any
) -> int | None:
    """Score evaluations of a sampler configuration, without running it (``None``: adaptive)."""
    config = sampler if isinstance(sampler, SamplerConfig) else SamplerConfig(sampler)
    spec = get_sampler(config.sampler)
    values = _resolve_options(spec, {**config.options, **options})
    return spec.evals(steps if steps is not None else (config.steps or spec.default_steps), values)
