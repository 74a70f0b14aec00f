"""Inpainting / imputation of a trained run or an exact mixture (``scorelab inpaint``).

Inputs ``x`` ``(B, *D)`` are in the shape and range ``scorelab sample`` writes; a mask ``M`` of
``x``'s shape (or one example's) marks known entries with 1 and entries to fill with 0; image
masks can be named (:data:`IMAGE_MASKS`). Each input gets ``completions`` completions, rows
grouped by input; the known entries of the output equal the input's exactly.

Two methods (:data:`METHODS`):

- ``"conditioned"``: a score conditioned on the observation, sampled by any registered sampler
  (``draw_samples``), then the known part pasted back. For a mixture it is exact
  (:class:`scorelab.targets.conditional.ObservedMixture`); for a run it is reconstruction
  guidance through the network's denoiser (approximate, :func:`scorelab.samplers.inpaint.
  reconstruction_guidance`).
- ``"replacement"``: the known part replaced by the noised observation at every level, with a
  Langevin corrector (:func:`scorelab.samplers.inpaint.inpaint_replacement`; Song et al. 2021,
  app. I.2) on the unconditional score; ``steps`` is the number of levels, and ``resample``
  repeats each level's step after noising back (RePaint, Lugmayr et al. 2022).

The default is ``"conditioned"``: exact for mixtures; for runs, measured against replacement with
RePaint resampling, better on the MNIST subset and as good on the 8×8 digits and on a 2-D points
run (against its exact conditional), at a fifth of the evaluations
(``benchmarks/RESULTS_guidance.md``).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scorelab.runs.folder import Run
from scorelab.runs.sampling import PREVIEW_ROWS, check_preview
from scorelab.samplers import (
    DivergenceError,
    ScoreSource,
    draw_samples,
    target_source,
)
from scorelab.samplers.inpaint import check_mask, inpaint_replacement, reconstruction_guidance
from scorelab.samplers.ode import moment_matched_prior
from scorelab.sde import geometric_sigmas
from scorelab.utils import check_int, check_positive, checked_npy_path, save_npy

__all__ = [
    "IMAGE_MASKS",
    "INPAINT_CHUNK",
    "METHODS",
    "RECONSTRUCTION_SCALE",
    "RECONSTRUCTION_STEPS",
    "REPLACEMENT_CORRECTOR",
    "REPLACEMENT_LEVELS",
    "REPLACEMENT_RESAMPLE",
    "default_reconstruction_scale",
    "image_mask",
    "inpaint_samples",
    "inpaint_to_file",
    "read_array",
]

#: Masks of images ``(C, H, W)`` by name; 1 = known, 0 = to fill.
IMAGE_MASKS = ("bottom-half", "top-half", "left-half", "square")
METHODS = ("conditioned", "replacement")
#: The replacement method's defaults: levels of its geometric ladder (``steps``), how many times
#: each step is taken (RePaint resampling; 1 = none) and Langevin corrector steps per level.
#: Chosen on the 8×8 digits (bottom half hidden, the first 150 test images × 4 completions): 100
#: levels, no resampling, 1 corrector step (200 evaluations) gave 0.62 of the completions the
#: right class; 25 × 20 without a corrector (481) 0.76, with one (962) 0.77 (RESULTS_guidance.md).
REPLACEMENT_LEVELS = 25
REPLACEMENT_RESAMPLE = 20
REPLACEMENT_CORRECTOR = 0
#: Reconstruction guidance (``"conditioned"`` on a run) in its normalised form (DPS's step,
#: ``reconstruction_guidance(..., normalized=True)``): its scale by the run's data set, else by
#: its kind of data (:func:`default_reconstruction_scale`), and the levels of the run's
#: recommended sampler. The plain Gaussian form ran away on the MNIST subset (pixels of ±3000 at
#: scale 0.1). Measured (benchmarks/RESULTS_guidance.md), bottom half hidden, share of
#: completions of the original's class at 100 levels, and that share by how sure a classifier
#: of the top halves is of the label: MNIST subset (200 test images × 5) scale 5: 0.85, 10: 0.89,
#: 15: 0.89, 20: ran away (10 at or above the data's own conditional in every group); 8×8
#: digits (359 × 5) 3: 0.72, 10: 0.76, 30: 0.85, 50: 0.83, 100: 0.76 — at 10 the digits'
#: completions left the label on 12 % of the inputs whose top half settles it (p ≥ 0.99; the
#: data's own conditional: none), at 30 on 0.3 %, and in every group of that p scale 30 is
#: within 0.06 of the data's own conditional (10: up to 0.12 below); on another split and
#: network (``--split-seed 1``) 30 was first again (0.85; 10: 0.76); a
#: ``ring-8`` points run with x₀ observed, sliced W2 to the exact conditional over its floor:
#: scale 1: 1.71, 3: 0.98, 10: 1.25 (replacement: 1.26).
RECONSTRUCTION_SCALE = {"points": 3.0, "images": 10.0, "digits": 30.0}
RECONSTRUCTION_STEPS = 100
#: Completions further than this many data standard deviations (the largest per-coordinate std)
#: from the data's mean count as diverged: reconstruction guidance can run away to finite but
#: meaningless values, which the samplers' non-finite check does not catch.
DIVERGED_STDS = 10.0


def default_reconstruction_scale(run: Run) -> float:
    """The reconstruction guidance scale of :data:`RECONSTRUCTION_SCALE` for ``run``: its data
    set's (``config.json``'s data source) when measured, else its kind of data's."""
    source = run.config["data"].get("source")
    return RECONSTRUCTION_SCALE.get(source, RECONSTRUCTION_SCALE[run.data_kind])


def image_mask(name: str, shape: tuple[int, ...]) -> Tensor:
    """The named mask of one image of ``shape`` ``(C, H, W)``: ``"bottom-half"`` hides the
    bottom half, ``"top-half"`` the top half, ``"left-half"`` the left half, ``"square"`` the
    central square of half the side. Float 0/1, 1 = known."""
    if name not in IMAGE_MASKS:
        raise ValueError(
            f"unknown --mask name {name!r}: use {', '.join(IMAGE_MASKS)} or a .npy file"
        )
    if len(shape) != 3:
        raise ValueError(
            f"--mask {name} is for images (C, H, W); this data has shape {tuple(shape)}: give "
            "the mask as a .npy file of the input's shape (1 = known, 0 = fill)"
        )
    _, h, w = shape
    m = torch.ones(shape)
    if name == "bottom-half":
        m[:, h // 2 :, :] = 0
    elif name == "top-half":
        m[:, : h // 2, :] = 0
    elif name == "left-half":
        m[:, :, : w // 2] = 0
    else:
        m[:, h // 4 : h // 4 + h // 2, w // 4 : w // 4 + w // 2] = 0
    return m


def read_array(path: str | Path, flag: str) -> np.ndarray:
    """A numeric ``.npy`` array (no pickles), with a one-line error naming ``flag``."""
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"{flag} must be a .npy file; got {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"{flag} file {str(path)!r} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{flag} {str(path)!r} is not a readable numeric .npy: {err}") from None
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{flag} {str(path)!r} must hold numbers; got dtype {arr.dtype}")
    return arr


def _data_shape(base: Run | Any) -> tuple[int, ...]:
    return base.data_shape if isinstance(base, Run) else (int(base.dim),)


def _check_inputs(x: Tensor, mask: Tensor, base: Run | Any) -> tuple[Tensor, Tensor]:
    shape = _data_shape(base)
    if x.ndim == len(shape):
        x = x[None]
    if tuple(x.shape[1:]) != shape:
        raise ValueError(
            f"--input must hold examples of the data's shape {shape}, as (B, *{shape}); got "
            f"{tuple(x.shape)}"
        )
    if not bool(torch.isfinite(x).all()):
        raise ValueError("--input holds NaN or Inf; known values must be finite")
    if tuple(mask.shape) not in (tuple(x.shape), shape):
        raise ValueError(
            f"--mask must have the input's shape {tuple(x.shape)} or one example's shape "
            f"{shape}; got {tuple(mask.shape)}"
        )
    return x, check_mask(mask, x, "--mask")


def _observed_laws(mixture: Any, observed: Tensor, mask: Tensor) -> list[tuple[Tensor, Any]]:
    """``(rows, ObservedMixture)`` for each distinct mask row: the exact conditional laws."""
    from scorelab.targets.conditional import ObservedMixture

    masks, group = torch.unique(mask.cpu(), dim=0, return_inverse=True)
    laws = []
    for g in range(masks.shape[0]):
        rows = (group == g).nonzero().flatten()
        law = ObservedMixture(mixture, masks[g], observed.cpu().double()[rows])
        laws.append((rows.to(observed.device), law))
    return laws


def _observed_score(laws: list[tuple[Tensor, Any]], x: Tensor, sigma: Tensor) -> Tensor:
    """The exact ``∇ log p_σ(x | observed part)`` row by row, each row with its own mask."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).expand(x.shape[0])
    out = torch.empty_like(x)
    for rows, law in laws:
        out[rows] = law.score(x[rows], sigma[rows])
    return out


def _observed_prior(
    laws: list[tuple[Tensor, Any]], n: int, sigma_max: float, generator: torch.Generator | None
) -> Tensor:
    """Each row's moment-matched start ``N(mean_b, cov_b + σ_max²I)`` of its exact conditional."""
    rows_total = sum(len(rows) for rows, _ in laws)
    if n != rows_total:
        raise ValueError(f"a conditioned source draws one start per observation: n = {rows_total}")
    starts = [(rows, law.prior(sigma_max, generator)) for rows, law in laws]
    out = torch.empty((n, starts[0][1].shape[1]), dtype=starts[0][1].dtype)
    for rows, x in starts:
        out[rows.cpu()] = x.cpu()
    return out


def _conditioned_source(
    base: Run | Any, observed: Tensor, mask: Tensor, device: torch.device, scale: float | None
) -> ScoreSource:
    if isinstance(base, Run):
        source = base.score_source()
        sigma_data = float(base.config["data"]["sigma_data"])
        score = reconstruction_guidance(
            source.score,
            observed.to(device),
            mask.to(device),
            scale=scale,
            sigma_data=sigma_data,
            normalized=True,
        )
    else:
        from scorelab.targets.mixture import GaussianMixture

        if not isinstance(base, GaussianMixture):
            from scorelab.targets import Gaussian

            if not isinstance(base, Gaussian):
                raise ValueError("--target must be a Gaussian or a Gaussian mixture")
            base = GaussianMixture(base.mean()[None], base.covariance()[None])
        laws = _observed_laws(base, observed, mask)
        # Each row starts from its own conditional law's moments (the unconditional law's would
        # be far off for rows whose observation is atypical); its mean/cov give the noise range.
        source = dataclasses.replace(
            target_source(base, device), row_prior=functools.partial(_observed_prior, laws)
        )
        score = functools.partial(_observed_score, laws)
    sigma_min = source.sigma_min

    def clean(x: Tensor) -> Tensor:
        return score(x, torch.full((x.shape[0],), sigma_min, dtype=x.dtype, device=x.device))

    return dataclasses.replace(source, score=score, clean_score=clean)


def _check_not_runaway(samples: Tensor, source: ScoreSource, scale: float, n_evals: int) -> None:
    """:class:`DivergenceError` if a completion lies more than :data:`DIVERGED_STDS` data
    standard deviations from the data's mean (finite, so the samplers' own check passes it)."""
    std = float(source.cov.diagonal().max().sqrt())
    mean = source.mean.to(samples.device, samples.dtype).reshape(-1)
    far = float((samples.flatten(1) - mean).abs().max()) / std
    if not far <= DIVERGED_STDS:  # also NaN
        raise DivergenceError(
            f"reconstruction guidance ran away: completions reach {far:.0f} data standard "
            f"deviations from the data's mean (limit {DIVERGED_STDS:g}); lower "
            f"--reconstruction-scale (now {scale:g}), raise --steps ({n_evals} evaluations now) "
            "or use --method replacement"
        )


def inpaint_samples(
    base: Run | Any,
    x: Tensor,
    mask: Tensor,
    *,
    completions: int = 1,
    method: str | None = None,
    sampler: Any = None,
    steps: int | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
    reconstruction_scale: float | None = None,
    resample: int | None = None,
    corrector: int | None = None,
    **options: Any,
) -> tuple[Tensor, dict[str, Any]]:
    """``(samples, summary)``: ``completions`` completions of each input row of ``x``.

    ``base`` is a :class:`Run` or an analytic target; ``x`` ``(B, *D)`` (or one example);
    ``mask`` of ``x``'s or one example's shape, 1 = known, 0 = fill (every row must hide
    something and keep something). ``samples`` is ``(B·completions, *D)``, rows of input ``b``
    at ``b·completions … (b+1)·completions − 1``, known entries equal to ``x``'s exactly.
    ``method`` (:data:`METHODS`; default ``"conditioned"``); ``sampler``/``options`` choose the
    registered sampler of ``"conditioned"``, and ``reconstruction_scale`` (default:
    :func:`default_reconstruction_scale`) its guidance scale on a run, sampled with
    :data:`RECONSTRUCTION_STEPS` levels of the run's recommended sampler unless ``steps`` or
    ``sampler`` is given (completions that run away raise ``DivergenceError``);
    ``resample`` (default :data:`REPLACEMENT_RESAMPLE`) and ``corrector`` (Langevin steps per
    level, default :data:`REPLACEMENT_CORRECTOR`) are those of ``"replacement"``.
    """
    device = torch.device(device)
    x = torch.as_tensor(x, dtype=torch.float32)
    mask = torch.as_tensor(mask, dtype=torch.float32)
    x, m = _check_inputs(x, mask, base)
    k = check_int(completions, "--completions")
    if method is None:
        method = "conditioned"
    if method not in METHODS:
        raise ValueError(f"--method must be one of {', '.join(METHODS)}; got {method!r}")
    observed = x.repeat_interleave(k, 0).to(device)
    m = m.repeat_interleave(k, 0).to(device)
    n = observed.shape[0]
    generator = torch.Generator(device=device).manual_seed(seed)
    start = time.perf_counter()
    if reconstruction_scale is not None and not (isinstance(base, Run) and method == "conditioned"):
        raise ValueError(
            "--reconstruction-scale applies to --method conditioned on a run (a --target's "
            "conditional score is exact)"
        )
    if (resample is not None or corrector is not None) and method != "replacement":
        raise ValueError("--resample and --corrector apply to --method replacement")
    if method == "conditioned":
        guided = isinstance(base, Run)  # a target's conditional score is exact: no scale
        scale = reconstruction_scale
        if guided and scale is None:
            scale = default_reconstruction_scale(base)
        if guided:
            scale = check_positive(scale, "--reconstruction-scale", strict=False)
            steps = RECONSTRUCTION_STEPS if steps is None and sampler is None else steps
        source = _conditioned_source(base, observed, m, device, scale)
        res = draw_samples(
            source, n, sampler, steps=steps, generator=generator, progress=progress, **options
        )
        name = sampler if isinstance(sampler, str) else (sampler or source.recommended).sampler
        if guided:
            _check_not_runaway(res.samples, source, scale, res.n_evals)
            name += f" + reconstruction guidance (scale {scale:g})"
    else:
        if sampler is not None or options:
            raise ValueError(
                "--sampler and its options apply to --method conditioned; --method replacement "
                "runs its own predictor-corrector ladder of --steps levels"
            )
        source = base.score_source() if isinstance(base, Run) else target_source(base, device)
        levels = check_int(REPLACEMENT_LEVELS if steps is None else steps, "--steps", minimum=2)
        resample = check_int(REPLACEMENT_RESAMPLE if resample is None else resample, "--resample")
        corrector = REPLACEMENT_CORRECTOR if corrector is None else corrector
        corrector = check_int(corrector, "--corrector", minimum=0)
        sigmas = geometric_sigmas(levels, sigma_min=source.sigma_min, sigma_max=source.sigma_max)
        x0 = moment_matched_prior(
            source.mean.to(device).reshape(-1),
            source.cov.to(device),
            source.sigma_max,
            n,
            generator=generator,
        ).reshape(n, *source.data_shape)
        res = inpaint_replacement(
            source.score, x0, sigmas, observed=observed, mask=m, n_corrector=corrector,
            resample=resample, generator=generator, progress=progress,
        )  # fmt: skip
        name = f"inpaint-replacement ({levels} levels × {resample}, {corrector} corrector steps)"
    samples = torch.where(m.bool(), observed, res.samples.to(observed.dtype))
    summary = {
        "inputs": int(x.shape[0]),
        "completions": k,
        "method": method,
        "sampler": name,
        "n_evals": int(res.n_evals),
        "reconstruction_scale": scale if method == "conditioned" else None,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return samples, summary


#: Inputs per chunk of :func:`inpaint_to_file`: the unit spread over torchrun ranks, each with
#: its own generator, so the output file does not depend on the number of processes.
INPAINT_CHUNK = 64
#: Random stream of the chunks' generators (``derive_seed(seed, stream, chunk)``).
_INPAINT_STREAM = 5


def inpaint_to_file(
    base: Run | Any,
    input_path: str | Path,
    mask: str | Path,
    out: str | Path,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    chunk_size: int = INPAINT_CHUNK,
    png: str | Path | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Read ``input_path`` (.npy) and ``mask`` (a .npy file, or an :data:`IMAGE_MASKS` name),
    fill the hidden entries with :func:`inpaint_samples` (``kwargs`` as there) and write the
    completions to ``out`` (.npy, ``(B·completions, *D)``). Returns a summary. For images,
    ``png`` also gets the panels of the first ``PREVIEW_ROWS`` inputs
    (:func:`~scorelab.plotting.inpainting_grid`: masked input, completions, input).

    The inputs are filled in chunks of ``chunk_size``, chunk ``j`` with a generator seeded
    ``derive_seed(seed, stream, j)``; under torchrun rank ``r`` of ``W`` fills the chunks
    ``j ≡ r (mod W)`` and rank 0 gathers them and writes the file, the same for any ``W``."""
    from scorelab.training.distributed import round_robin
    from scorelab.training.loop import derive_seed

    out = checked_npy_path(Path(out), "--out")
    x = torch.from_numpy(read_array(input_path, "--input").astype(np.float32))
    if str(mask) in IMAGE_MASKS:
        m = image_mask(str(mask), _data_shape(base))
    else:
        m = torch.from_numpy(read_array(mask, "--mask").astype(np.float32))
    x, m = _check_inputs(x, m, base)
    png = check_preview(png, tuple(x.shape[1:]))
    chunk_size = check_int(chunk_size, "chunk_size")
    starts = range(0, x.shape[0], chunk_size)

    def fill(j: int) -> tuple[np.ndarray, dict[str, Any]]:
        rows = slice(starts[j], starts[j] + chunk_size)
        seed_j = derive_seed(seed, _INPAINT_STREAM, j)
        samples, summary = inpaint_samples(
            base, x[rows], m[rows], seed=seed_j, device=device, **kwargs
        )
        return samples.detach().cpu().numpy(), summary

    def write(parts: dict[int, tuple[np.ndarray, dict[str, Any]]]) -> None:
        filled = np.concatenate([parts[j][0] for j in range(len(starts))])
        save_npy(out, filled)
        if png is not None:
            from scorelab.plotting import inpainting_grid

            shown = min(PREVIEW_ROWS, x.shape[0])
            k = filled.shape[0] // x.shape[0]
            done = filled[: shown * k].reshape(shown, k, *x.shape[1:])
            inpainting_grid(x[:shown], m[:shown], done, path=png)

    mine = round_robin(len(starts), fill, write, device=device)
    summary = next(iter(mine.values()))[1] if mine else {}
    return {"out": str(out), **summary, "inputs": int(x.shape[0])}
