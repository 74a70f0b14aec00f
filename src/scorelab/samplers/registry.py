"""The sampler registry: one table, name → what the sampler is, needs, costs and accepts.

Everything that offers samplers by name reads :data:`SAMPLERS` — the command line (its flags and
``--list``), :func:`scorelab.samplers.draw_samples`, the recipes, the tests and the benchmarks —
so a new sampler is one function plus one entry here. A name means one thing everywhere.

Each :class:`SamplerSpec` says

- ``schedule``: what the sampler consumes besides the score and the start —
  ``"clean"`` (a score of ``x`` alone and a step size: plain Langevin, score ascent),
  ``"annealed"`` (a σ ladder with several Langevin steps per level), ``"ladder"`` (a descending
  σ ladder, one update per level, ending with a step to σ = 0) or ``"sde"`` (an SDE and a time
  grid);
- ``default_steps`` and ``evals(steps, denoise)``: the exact number of score evaluations
  (``None`` for adaptive solvers, whose count is reported after the run);
- ``options``: the sampler's own keyword options, typed, with defaults and help text (the
  schedule options shared by a whole kind are in :data:`SCHEDULE_OPTIONS`).

:data:`RECOMMENDED` holds the configuration recommended for each use (exact targets, learned
points, images): the best one measured by ``benchmarks/bench_samplers.py --tune`` (on seeds
that are not those of the figures it reports).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scorelab.samplers.langevin import annealed_langevin, langevin, score_ascent
from scorelab.samplers.multistep import (
    DEIS_TIMES,
    UNIPC_VARIANTS,
    deis,
    dpmpp_3m_sde,
    ipndm,
    unipc,
)
from scorelab.samplers.ode import (
    dpmpp_2m,
    dpmpp_2m_sde,
    dpmpp_3m,
    edm_euler,
    edm_heun,
    edm_stochastic,
    probability_flow,
)
from scorelab.samplers.result import SampleResult
from scorelab.samplers.reverse_sde import predictor_corrector, reverse_sde
from scorelab.sde import SDES


@dataclass(frozen=True)
class Option:
    """A keyword option of a sampler (or of a schedule): the command line offers it as
    ``--name-with-dashes``; ``default=None`` means "derived from the data" (the help says how)."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    cli_name: str | None = None  # the flag's name when it differs from the keyword

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--sigma-max``."""
        return "--" + (self.cli_name or self.name).replace("_", "-")


@dataclass(frozen=True)
class SamplerSpec:
    """One registered sampler; see the module docstring."""

    name: str
    function: Callable[..., SampleResult]
    schedule: str
    summary: str
    default_steps: int
    evals: Callable[[int, Mapping[str, Any]], int | None]
    steps_meaning: str
    options: tuple[Option, ...] = ()
    fixed: dict[str, Any] = field(default_factory=dict)  # keyword arguments always passed

    def n_evals(self, steps: int | None = None, **options: Any) -> int | None:
        """Exact score evaluations for ``steps`` (default :attr:`default_steps`) and ``options``
        (defaults from the registry); ``None`` for adaptive solvers."""
        values = {opt.name: opt.default for opt in self.all_options()}
        values.update(options)
        return self.evals(self.default_steps if steps is None else steps, values)

    def option(self, name: str) -> Option:
        """The option called ``name`` (own or of the schedule); ``KeyError`` if none."""
        for opt in (*self.options, *SCHEDULE_OPTIONS[self.schedule]):
            if opt.name == name:
                return opt
        raise KeyError(name)

    def all_options(self) -> tuple[Option, ...]:
        """The sampler's own options, those of its schedule, then ``denoise``."""
        own = (*self.options, *SCHEDULE_OPTIONS[self.schedule])
        return own if self.schedule == "clean" else (*own, DENOISE)


# ---------------------------------------------------------------------------------------------
# Options shared by every sampler of a schedule kind
# ---------------------------------------------------------------------------------------------

_SIGMA_RANGE = (
    Option(
        "sigma_max",
        float,
        None,
        "largest noise level (default: the source's range, see ScoreSource.sigma_max)",
    ),
    Option("sigma_min", float, None, "smallest noise level (default: the source's range)"),
    Option(
        "sigma_max_factor",
        float,
        None,
        "largest noise level in units of the data's scale s (its largest std): σ_max = this × s "
        "(instead of sigma_max; default: the source's range)",
    ),
)
_START = Option(
    "prior",
    str,
    "moment-matched",
    "start: N(0, σ_max²I) ('gaussian') or N(mean, cov + σ_max²I) ('moment-matched')",
    ("gaussian", "moment-matched"),
)

SCHEDULE_OPTIONS: dict[str, tuple[Option, ...]] = {
    "clean": (
        Option("step_size", float, None, "Langevin step τ (default: 0.01 × data variance)"),
        Option("init_std", float, None, "std of the Gaussian start (default: 2 × data std)"),
    ),
    "annealed": (
        *_SIGMA_RANGE,
        _START,
        Option("levels", int, 10, "number of σ levels of the geometric ladder"),
    ),
    "ladder": (
        *_SIGMA_RANGE,
        _START,
        Option(
            "ladder",
            str,
            "geometric",
            "σ ladder: geometric (log-uniform) or karras (ρ-spacing)",
            ("geometric", "karras"),
        ),
        Option("rho", float, 7.0, "Karras ladder exponent ρ"),
    ),
    "sde": (
        *_SIGMA_RANGE,
        Option(
            "sde",
            str,
            "ve",
            "SDE: " + ", ".join(sorted(SDES)),
            tuple(sorted(SDES)),
        ),
        Option("lam", float, 25.0, "ve-lambda SDE: g(t) = λ^t"),
    ),
}

#: Options every sampler takes (not sampler-specific): ``denoise`` (the final step to σ = 0).
DENOISE = Option("denoise", bool, True, "end with the denoising step to σ = 0 (Tweedie)")


def _steps(steps: int, options: Mapping[str, Any]) -> int:
    return steps


def _ladder_levels(steps: int, options: Mapping[str, Any]) -> int:
    # M levels: one evaluation per step between them, plus the last step to σ = 0 when denoising.
    return steps if options["denoise"] else steps - 1


def _plus_denoise(steps: int, options: Mapping[str, Any]) -> int:
    return steps + int(options["denoise"])


def _two_per_step(steps: int, options: Mapping[str, Any]) -> int:
    return 2 * steps + int(options["denoise"])


def _heun_ladder(steps: int, options: Mapping[str, Any]) -> int:
    # M levels: 2 evaluations per step between nonzero levels, 1 for the last step to σ = 0.
    return 2 * steps - 1 if options["denoise"] else 2 * steps - 2


def _annealed(steps: int, options: Mapping[str, Any]) -> int:
    return int(options["levels"]) * steps + int(options["denoise"])


def _adaptive(steps: int, options: Mapping[str, Any]) -> None:
    return None


SAMPLERS: dict[str, SamplerSpec] = {
    spec.name: spec
    for spec in (
        SamplerSpec(
            "langevin",
            langevin,
            "clean",
            "unadjusted Langevin x + τ·s(x) + √(2τ)·z from a wide Gaussian start",
            1000,
            _steps,
            "iterations",
            (
                Option(
                    "parametrization",
                    str,
                    "tau",
                    "tau: x+τs+√(2τ)z (seed 003); eta: x+η/2·s+√η·z (seed 000)",
                    ("tau", "eta"),
                ),
            ),
        ),
        SamplerSpec(
            "score-ascent",
            score_ascent,
            "clean",
            "deterministic x + ε·s(x): climbs to the nearest mode (seed 001 Task 6)",
            100,
            _steps,
            "iterations",
        ),
        SamplerSpec(
            "annealed-langevin",
            annealed_langevin,
            "annealed",
            "annealed Langevin over a geometric σ ladder (Song & Ermon 2019)",
            100,
            _annealed,
            "Langevin steps per level (× --levels)",
            (
                Option("eps", float, None, "step constant ε (default: stable 0.5·σ_min²-based)"),
                Option(
                    "step_rule",
                    str,
                    "paper",
                    "paper: ε·σ_i²/σ_min²; seed: ε·σ_i²/σ_max²",
                    ("paper", "seed"),
                ),
            ),
        ),
        SamplerSpec(
            "reverse-sde",
            reverse_sde,
            "sde",
            "Euler–Maruyama on the reverse-time SDE (Song et al. 2021)",
            500,
            _plus_denoise,
            "time steps",
        ),
        SamplerSpec(
            "pc",
            predictor_corrector,
            "sde",
            "predictor–corrector with a Langevin corrector (Song et al. 2021)",
            500,
            _two_per_step,
            "time steps (predictor + 1 corrector each)",
            (Option("snr", float, 0.16, "corrector signal-to-noise ratio"),),
        ),
        SamplerSpec(
            "ode-euler",
            probability_flow,
            "sde",
            "probability-flow ODE, Euler (Song et al. 2021)",
            500,
            _plus_denoise,
            "time steps",
            fixed={"method": "euler"},
        ),
        SamplerSpec(
            "ode-heun",
            probability_flow,
            "sde",
            "probability-flow ODE, Heun",
            250,
            _two_per_step,
            "time steps (2 evaluations each)",
            fixed={"method": "heun"},
        ),
        SamplerSpec(
            "ode-dpmpp-2m",
            probability_flow,
            "sde",
            "probability-flow ODE in SDE time, DPM-Solver++(2M) on the time grid",
            50,
            _plus_denoise,
            "time steps",
            fixed={"method": "dpmpp-2m"},
        ),
        SamplerSpec(
            "ode-dopri5",
            probability_flow,
            "sde",
            "probability-flow ODE, adaptive Dormand–Prince (torchdiffeq)",
            100,
            _adaptive,
            "saved states only (the solver adapts its steps)",
            (
                Option("rtol", float, 1e-5, "relative tolerance"),
                Option("atol", float, 1e-5, "absolute tolerance"),
            ),
            fixed={"method": "dopri5"},
        ),
        SamplerSpec(
            "edm-euler",
            edm_euler,
            "ladder",
            "Euler on the σ-ODE (Karras et al. 2022)",
            50,
            _ladder_levels,
            "σ levels (1 evaluation each)",
        ),
        SamplerSpec(
            "edm-heun",
            edm_heun,
            "ladder",
            "Heun on the σ-ODE, Karras et al. 2022 Alg. 1",
            13,
            _heun_ladder,
            "σ levels (2 evaluations each, 1 for the last)",
        ),
        SamplerSpec(
            "edm-stochastic",
            edm_stochastic,
            "ladder",
            "Karras et al. 2022 Alg. 2: Heun with noise churn",
            13,
            _heun_ladder,
            "σ levels (2 evaluations each, 1 for the last)",
            (
                Option(
                    "s_churn", float, 10.0, "S_churn: how much noise is re-injected", None, "churn"
                ),
            ),
        ),
        SamplerSpec(
            "dpmpp-2m",
            dpmpp_2m,
            "ladder",
            "DPM-Solver++(2M) multistep on the σ ladder (Lu et al. 2022)",
            25,
            _ladder_levels,
            "σ levels (1 evaluation each)",
        ),
        SamplerSpec(
            "dpmpp-3m",
            dpmpp_3m,
            "ladder",
            "DPM-Solver++(3M) multistep on the σ ladder",
            10,
            _ladder_levels,
            "σ levels (1 evaluation each)",
        ),
        SamplerSpec(
            "dpmpp-2m-sde",
            dpmpp_2m_sde,
            "ladder",
            "DPM-Solver++(2M) SDE: the stochastic 2M variant (Lu et al. 2022)",
            25,
            _ladder_levels,
            "σ levels (1 evaluation each)",
            (Option("eta", float, 1.0, "η: 1 = reverse SDE, 0 = the 2M ODE"),),
        ),
        SamplerSpec(
            "unipc",
            unipc,
            "ladder",
            "UniPC: predictor UniP + corrector UniC re-using each evaluation (Zhao et al. 2023)",
            10,
            _ladder_levels,
            "σ levels (1 evaluation each)",
            (
                Option("order", int, 3, "multistep order (unipc 1-3, ipndm/deis 1-4)"),
                Option("variant", str, "bh1", "UniPC B(h): bh1 = h, bh2 = e^h − 1", UNIPC_VARIANTS),
            ),
        ),
        SamplerSpec(
            "ipndm",
            ipndm,
            "ladder",
            "improved PNDM: Adams–Bashforth in σ, equal-step coefficients (Zhang & Chen 2022)",
            10,
            _ladder_levels,
            "σ levels (1 evaluation each)",
            (Option("order", int, 3, "multistep order (unipc 1-3, ipndm/deis 1-4)"),),
        ),
        SamplerSpec(
            "deis",
            deis,
            "ladder",
            "tAB-DEIS: exponential integrator, ε polynomial in σ (Zhang & Chen 2022)",
            10,
            _ladder_levels,
            "σ levels (1 evaluation each)",
            (
                Option("order", int, 3, "multistep order (unipc 1-3, ipndm/deis 1-4)"),
                Option(
                    "time",
                    str,
                    "sigma",
                    "DEIS time of the ε polynomial: sigma (tAB) or log-sigma (log ρ)",
                    DEIS_TIMES,
                ),
                Option(
                    "lower_order_final",
                    bool,
                    False,
                    "DEIS: orders at most 2 and 1 for the last two steps (diffusers' rule)",
                ),
            ),
        ),
        SamplerSpec(
            "dpmpp-3m-sde",
            dpmpp_3m_sde,
            "ladder",
            "DPM-Solver++(3M) SDE: the stochastic 3M variant (Lu et al. 2022)",
            10,
            _ladder_levels,
            "σ levels (1 evaluation each)",
            (Option("eta", float, 1.0, "η: 1 = reverse SDE, 0 = the 3M ODE"),),
        ),
    )
}


@dataclass(frozen=True)
class SamplerConfig:
    """A sampler by name with its steps and options: what a recipe or preset recommends.

    ``options`` are keyword options of the sampler or of its schedule
    (:meth:`SamplerSpec.all_options`); what is not given takes the registry default.
    """

    sampler: str
    steps: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (a run's config records it)."""
        return {"sampler": self.sampler, "steps": self.steps, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplerConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["sampler"]), data.get("steps"), dict(data.get("options") or {}))


#: The recommended configuration for each use. ``exact``: an analytic target's exact score
#: (``scorelab sample --target``); ``observed``: that score conditioned on observed coordinates
#: (``scorelab inpaint --target``); ``points``: a network trained on points; ``images``: a
#: network trained on images. Measured by ``benchmarks/bench_samplers.py --tune`` (tuning seeds
#: 1000+; the figures in RESULTS.md use seeds 0–19): see ``benchmarks/RESULTS.md``. ``exact``: iPNDM
#: (order 3) on the Karras ladder with ρ = 4 from σ_max = 5 data scales, tuned by
#: ``benchmarks/bench_fewstep.py --tune`` on four presets (``benchmarks/RESULTS_fewstep.md``).
RECOMMENDED: dict[str, SamplerConfig] = {
    "exact": SamplerConfig(
        "ipndm",
        10,
        {"ladder": "karras", "rho": 4.0, "sigma_max_factor": 5.0, "prior": "moment-matched"},
    ),
    "points": SamplerConfig("ipndm", 10, {"ladder": "karras", "prior": "moment-matched"}),
    "images": SamplerConfig("dpmpp-2m-sde", 25, {"ladder": "karras", "prior": "moment-matched"}),
}


def get_sampler(name: str) -> SamplerSpec:
    """The :class:`SamplerSpec` called ``name``, with an error listing the valid names."""
    if name not in SAMPLERS:
        raise ValueError(
            f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)} "
            "(`scorelab sample --list` describes them)"
        )
    return SAMPLERS[name]


def describe_samplers() -> str:
    """One line per sampler: name, evaluations per step, summary (for ``--list``)."""
    width = max(len(n) for n in SAMPLERS)
    lines = []
    for name, spec in SAMPLERS.items():
        cost = spec.n_evals()
        cost_text = f"{cost} evals at the default {spec.default_steps}" if cost else "adaptive"
        lines.append(
            f"  {name:<{width}}  {spec.summary} [steps = {spec.steps_meaning}; {cost_text}]"
        )
    return "\n".join(lines)
