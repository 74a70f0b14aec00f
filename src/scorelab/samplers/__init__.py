"""Samplers: functions of ``(score, initial x, schedule, options)`` returning a ``SampleResult``.

Every sampler takes the score (a ``ScoreFn`` ``score(x, sigma)``, or for plain Langevin and score
ascent a ``score(x)``), a starting batch ``x`` ``(B, *D)`` chosen by the caller, a schedule (step
size, σ ladder or SDE) and keyword options shared by all: ``generator`` (every random draw; unused
by deterministic samplers), ``keep_trajectory``, ``progress`` (a tqdm bar) and ``callback``
(called after every step with a dict holding ``"i"``, ``"x"`` and ``"sigma"`` or ``"t"``). They
run under ``torch.no_grad()``, so the score is evaluated without autograd, and return
``SampleResult(samples, trajectory, n_evals)``. Non-finite samples raise ``DivergenceError``
naming the step size to try; invalid options raise ``ValueError``/``TypeError``.

- ``langevin``, ``score_ascent``, ``annealed_langevin`` — Langevin family (``langevin.py``).
- ``reverse_sde``, ``predictor_corrector`` — reverse-time SDE (``reverse_sde.py``).
- ``probability_flow`` (SDE time: Euler, Heun, DPM-Solver++(2M), dopri5 via torchdiffeq) and the
  σ-ladder samplers ``edm_euler``, ``edm_heun``, ``dpmpp_2m``, ``dpmpp_3m``, ``edm_stochastic``,
  ``dpmpp_2m_sde``, with the starting-point helper ``moment_matched_prior`` (``ode.py``).
- few-step multistep samplers of the field on the σ ladder: ``unipc`` (UniPC), ``ipndm``
  (improved PNDM), ``deis`` (tAB-DEIS), ``dpmpp_3m_sde`` (``multistep.py``).
- ``log_likelihood`` and ``bits_per_dim`` (``likelihood.py``).
- Guidance as score transforms (``guidance.py``): ``with_label``, ``classifier_free_guidance``,
  ``classifier_guidance``, ``classifier_log_prob_grad``; inpainting (``inpaint.py``):
  ``inpaint``, ``inpaint_replacement``, ``reconstruction_guidance``, ``check_mask``.

Recommended sampler
-------------------
``recommended_sampler``: ``dpmpp_3m`` on a geometric (log-uniform) ladder, started from
``moment_matched_prior``::

    sigmas = geometric_sigmas(n_evals, sigma_min=0.02, sigma_max=20.0)  # σ_max ≈ 10× data std
    x = moment_matched_prior(data.mean(0), torch.cov(data.flatten(1).T), 20.0, n, generator=g)
    samples = dpmpp_3m(score, x, sigmas).samples             # n_evals score evaluations

Why: a deterministic sampler carries the error of its starting law to the end, and
``N(0, σ_max²I)`` is off from ``p_σmax`` by the data's mean and covariance;
``N(mean, cov + σ_max²I)`` is exact for Gaussian data and otherwise off only by higher
cumulants, which shrink like ``σ_max⁻³``, so a moderate σ_max suffices and no evaluations are
wasted at σ ≫ data scale. Third-order multistep in λ = −log σ with equal λ steps then leaves a
tiny discretisation error. Measured with the exact score of the seed 004 2-D mixture, ladder
20 → 0.02: RMS distance to the exact ODE solution from the same start (2000 points) 0.012 at 10
evaluations (DPM-Solver++(2M) 0.063, Heun at 9 evaluations 0.85) and 0.0004 at 50. Sliced-W2
to a fresh true draw of 5000 (500 projections, 3 seeds) is then 1.16× the two-true-draws noise
floor at 10 and at 50 evaluations — sampling noise, not bias (DPM-Solver++(2M) on a Karras
ladder from N(0, 20²I): 3.0×). ``moment_matched_prior(..., quasi_random=True)`` (scrambled
Sobol starts, not independent) gives 0.76–0.78× at both budgets.

With an exact score at 5–10 evaluations, ``RECOMMENDED["exact"]`` (what ``draw_samples`` and
``scorelab sample --target`` use) is ``ipndm`` (order 3) on a Karras ladder (ρ = 4) from
σ_max = 5 data scales, from the same moment-matched start: measured on four presets against
DPM-Solver++(3M), UniPC, DEIS and diffusers' schedulers in ``benchmarks/RESULTS_fewstep.md``.
Its ladder ends at σ_min = 0.01 data scales, for an exact target capped at 0.14 × the std of its
thinnest component along its thinnest axis (``SIGMA_MIN_THIN_FACTOR`` in ``draw.py``): the
last step returns ``D(x, σ_min)``, which narrows a component of std ``s`` to
``s/√(1 + σ_min²/s²)``, a loss a two-sample distance barely sees
(``scorelab.metrics.component_axis_std_ratios`` does).
"""

from scorelab.samplers.draw import (
    ScoreSource,
    draw_samples,
    evaluation_count,
    network_source,
    sampling_sigma_range,
    target_source,
)
from scorelab.samplers.guidance import (
    classifier_free_guidance,
    classifier_guidance,
    classifier_log_prob_grad,
    with_label,
)
from scorelab.samplers.inpaint import (
    check_mask,
    inpaint,
    inpaint_replacement,
    reconstruction_guidance,
)
from scorelab.samplers.langevin import (
    annealed_langevin,
    annealed_step_sizes,
    langevin,
    score_ascent,
)
from scorelab.samplers.likelihood import LikelihoodResult, bits_per_dim, log_likelihood
from scorelab.samplers.multistep import deis, dpmpp_3m_sde, ipndm, unipc
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
from scorelab.samplers.registry import (
    RECOMMENDED,
    SAMPLERS,
    Option,
    SamplerConfig,
    SamplerSpec,
    describe_samplers,
    get_sampler,
)
from scorelab.samplers.result import DivergenceError, SampleResult, denoiser, start_ladder
from scorelab.samplers.reverse_sde import predictor_corrector, reverse_sde, tweedie_denoise

#: The sampler recommended for few evaluations (see the module docstring for how to call it).
recommended_sampler = dpmpp_3m

__all__ = [
    "RECOMMENDED",
    "SAMPLERS",
    "DivergenceError",
    "Option",
    "SamplerConfig",
    "SamplerSpec",
    "ScoreSource",
    "denoiser",
    "describe_samplers",
    "draw_samples",
    "evaluation_count",
    "get_sampler",
    "network_source",
    "sampling_sigma_range",
    "start_ladder",
    "target_source",
    "LikelihoodResult",
    "SampleResult",
    "annealed_langevin",
    "annealed_step_sizes",
    "bits_per_dim",
    "check_mask",
    "classifier_free_guidance",
    "classifier_guidance",
    "classifier_log_prob_grad",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_3m",
    "dpmpp_3m_sde",
    "deis",
    "ipndm",
    "unipc",
    "edm_euler",
    "edm_heun",
    "edm_stochastic",
    "inpaint",
    "inpaint_replacement",
    "langevin",
    "log_likelihood",
    "moment_matched_prior",
    "predictor_corrector",
    "probability_flow",
    "reconstruction_guidance",
    "recommended_sampler",
    "reverse_sde",
    "score_ascent",
    "tweedie_denoise",
    "with_label",
]
