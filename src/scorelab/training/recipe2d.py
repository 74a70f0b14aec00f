"""The Python face of the ``points`` training preset: :func:`fit_2d` trains it on a tensor of
points in one call, and the EDM loss it (and every preset) trains with.

- :func:`noise_conditional_loss`: denoising score matching with a continuous noise level drawn
  from EDM's log-normal law and EDM's loss weighting (Karras et al. 2022), one value per example;
- :func:`default_model_spec`, :func:`default_loss_fn`, :func:`default_train_config`: the
  ``points`` preset's network, loss and training settings (``scorelab.training.presets``), which
  ``scorelab train`` uses too;
- :func:`fit_2d`: all of the above in one call; :meth:`Fit2D.sample` draws with the preset's
  recommended sampler through the sampler registry (``scorelab.samplers.draw_samples``).

Every choice was measured on two moons and the swiss roll against the noise floor
(``benchmarks/bench_training.py``).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from scorelab.data.stats import DataStats, data_stats
from scorelab.losses import dsm_loss
from scorelab.losses.conditional import label_dropout
from scorelab.models import as_score_fn, build_model
from scorelab.samplers import SamplerConfig, ScoreSource, draw_samples, network_source
from scorelab.training.config import TrainConfig
from scorelab.training.loop import LossFn, train
from scorelab.training.presets import TRAINING_PRESETS, loss_for, model_spec_for, train_config_for
from scorelab.utils import ScoreFn, check_int, check_positive, seeded_module

__all__ = [
    "DEFAULT_STEPS",
    "DataStats",
    "Fit2D",
    "data_stats",
    "default_loss_fn",
    "default_model_spec",
    "default_train_config",
    "fit_2d",
    "noise_conditional_loss",
]

#: Optimiser steps of the default run (the ``points`` preset): about a minute on 2 CPU cores.
DEFAULT_STEPS = TRAINING_PRESETS["points"].train["steps"]
#: Noise levels are drawn with log(σ/σ_data) ~ N(P_MEAN_OFFSET, P_STD²): EDM's P_mean = −1.2 at
#: σ_data = 0.5 is log(0.5) − 0.5; the offset keeps the law in the same place for data of any scale.
P_MEAN_OFFSET = -0.5
P_STD = 1.2


# ---------------------------------------------------------------------------------------------
# Model and loss
# ---------------------------------------------------------------------------------------------


def default_model_spec(dim: int, data: Tensor | DataStats, **overrides: Any) -> dict[str, Any]:
    """Spec of the default network (the ``points`` training preset): ``ScoreMLP`` (width 128, 3
    residual blocks, EDM preconditioning of Karras et al. 2022, Table 1) with ``sigma_data`` and
    ``data_mean`` from ``data`` (the training points ``(N, *D)`` or their :class:`DataStats`);
    ``overrides`` replace keyword arguments of ``ScoreMLP`` (e.g. ``hidden=256``).
    """
    dim = check_int(dim, "dim")
    stats = data if isinstance(data, DataStats) else data_stats(data)
    if stats.dim != dim:
        raise ValueError(f"dim={dim} does not match the data's dimension {stats.dim}")
    return model_spec_for(TRAINING_PRESETS["points"], stats, (dim,), **overrides)


def _lognormal_sigmas(
    n: int,
    like: Tensor,
    p_mean: float,
    p_std: float,
    sigma_min: float,
    sigma_max: float,
    generator: torch.Generator | None,
) -> Tensor:
    """``(n,)`` draws of log σ ~ N(p_mean, p_std²) truncated to [σ_min, σ_max] (inverse CDF)."""
    lo = torch.special.ndtr(
        torch.tensor((math.log(sigma_min) - p_mean) / p_std, dtype=torch.float64)
    )
    hi = torch.special.ndtr(
        torch.tensor((math.log(sigma_max) - p_mean) / p_std, dtype=torch.float64)
    )
    u = torch.rand(n, generator=generator, device=like.device, dtype=torch.float64)
    q = torch.special.ndtri(lo.to(u.device) + (hi - lo).to(u.device) * u)
    sigma = (p_mean + p_std * q).exp().clamp(sigma_min, sigma_max)
    return sigma.to(like.dtype)


def noise_conditional_loss(
    model: nn.Module | ScoreFn,
    x0: Tensor,
    generator: torch.Generator | None = None,
    *,
    sigma_min: float,
    sigma_max: float,
    sigma_data: float = 1.0,
    p_mean: float | None = None,
    p_std: float = P_STD,
    weighting: str = "edm",
    y: Tensor | None = None,
    p_uncond: float = 0.0,
) -> Tensor:
    """Denoising score matching over a continuous noise level (Karras et al. 2022, eq. 2 and
    Table 1, "EDM"), one value per example, ``(B,)``.

    For each example ``σ`` is drawn with ``log σ ~ N(p_mean, p_std²)`` truncated to
    ``[sigma_min, sigma_max]`` (EDM's log-normal training law; ``p_mean`` defaults to
    ``log σ_data − 0.5``), then ``x̃ = x0 + σz`` and, with the denoiser ``D = x̃ + σ² s(x̃, σ)``::

        loss = ½ λ(σ) ‖D − x0‖² = ½ λ(σ) σ⁴ ‖s(x̃, σ) + z/σ‖²

    ``weighting="edm"``: ``λ = (σ² + σ_data²)/(σ σ_data)²`` (EDM: the network's target has unit
    variance at every σ); ``"sigma2"``: ``λ σ⁴ = σ²``, the NCSN weighting (Song & Ermon 2019,
    eq. 6). For every σ the inner expectation is minimised by the exact score of
    ``p_σ = p ∗ N(0, σ²I)`` (Vincent 2011). ``model(x, sigma)`` is a network or any ``ScoreFn``;
    use ``functools.partial`` (or :func:`default_loss_fn`) to make a ``train`` loss.

    With labels ``y`` ``(B,)`` the network is called as ``model(x, sigma, y)`` after each label
    is replaced by ``NULL_LABEL`` with probability ``p_uncond`` (label dropout, Ho & Salimans
    2022, Alg. 1): one class-conditional network learns ``s(x, σ, y)`` and ``s(x, σ)`` for
    classifier-free guidance, with the same EDM law and weighting.
    """
    sigma_min = check_positive(sigma_min, "sigma_min")
    sigma_max = check_positive(sigma_max, "sigma_max")
    sigma_data = check_positive(sigma_data, "sigma_data")
    p_std = check_positive(p_std, "p_std")
    if sigma_min >= sigma_max:
        raise ValueError(f"sigma_min={sigma_min:g} must be below sigma_max={sigma_max:g}")
    if weighting not in ("edm", "sigma2"):
        raise ValueError(f"weighting must be 'edm' or 'sigma2'; got {weighting!r}")
    if p_mean is None:
        p_mean = math.log(sigma_data) + P_MEAN_OFFSET
    if not isinstance(x0, Tensor) or x0.ndim < 2:
        raise ValueError("x0 must be a tensor of shape (B, *D)")
    score = model
    if y is not None:
        labels = label_dropout(y.to(x0.device), p_uncond, generator=generator)
        if labels.shape != x0.shape[:1]:
            raise ValueError(f"y must have shape ({x0.shape[0]},); got {tuple(labels.shape)}")

        def score(x: Tensor, sigma: Tensor) -> Tensor:
            return model(x, sigma, labels)

    sigma = _lognormal_sigmas(x0.shape[0], x0, p_mean, p_std, sigma_min, sigma_max, generator)
    loss = dsm_loss(score, x0, sigma, generator)  # ½‖s + z/σ‖²
    weight = sigma.square()
    if weighting == "edm":
        weight = weight * (sigma.square() + sigma_data**2) / sigma_data**2
    return weight * loss


def default_loss_fn(stats: DataStats, **overrides: Any) -> LossFn:
    """The default ``loss_fn(model, x0, generator)`` for ``train`` (the ``points`` preset):
    :func:`noise_conditional_loss` over the one training σ range
    (``scorelab.data.training_noise_range``), EDM's log-normal law and weighting.

    ``overrides`` replace keyword arguments of :func:`noise_conditional_loss`.
    """
    loss, noise = loss_for(TRAINING_PRESETS["points"], stats)
    return functools.partial(loss.func, **{**loss.keywords, **overrides})


def default_train_config(
    *, steps: int = DEFAULT_STEPS, seed: int = 0, device: str = "cpu", **overrides: Any
) -> TrainConfig:
    """Training settings of the ``points`` preset (``scorelab.training.presets``): Adam (Kingma
    & Ba 2015) on batches of 512, learning rate 2e-3 with a half-cosine decay, gradient clipping
    at 1 and an EMA of the weights with decay ``min(0.995, 1 − 10/steps)``
    (:func:`~scorelab.training.presets.ema_decay_for`). ``overrides`` replace any other
    ``TrainConfig`` field.
    """
    return train_config_for(
        TRAINING_PRESETS["points"], steps=steps, seed=seed, device=device, **overrides
    )


# ---------------------------------------------------------------------------------------------
# One call
# ---------------------------------------------------------------------------------------------


@dataclass
class Fit2D:
    """What :func:`fit_2d` returns: the network to sample with (the EMA copy) and the raw trained
    network, the network spec, the data statistics, the settings, the metric rows and the time
    spent."""

    model: nn.Module
    raw_model: nn.Module
    spec: dict[str, Any]
    stats: DataStats
    config: TrainConfig
    history: list[dict[str, float]]
    train_seconds: float  #: wall-clock seconds inside ``train``
    cpu_seconds: float  #: CPU seconds of this process inside ``train`` (all threads)

    def score_fn(self, *, ema: bool = True) -> ScoreFn:
        """Learned score ``(x, sigma) -> (B, *D)``; the EMA network unless ``ema=False``."""
        return as_score_fn(self.model if ema else self.raw_model)

    def score_source(self, *, ema: bool = True) -> ScoreSource:
        """The learned score with the data's moments, for ``scorelab.samplers.draw_samples``."""
        loss = default_loss_fn(self.stats)
        return network_source(
            self.score_fn(ema=ema),
            self.stats.mean_tensor(),
            self.stats.cov_tensor(),
            (self.stats.dim,),
            train_sigma_max=loss.keywords["sigma_max"],
            train_sigma_min=loss.keywords["sigma_min"],
            recommended=TRAINING_PRESETS["points"].sampler,
        )

    def sample(
        self,
        n: int,
        sampler: str | SamplerConfig | None = None,
        *,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """``n`` samples ``(n, *D)`` with the ``points`` preset's recommended sampler, or any
        registered ``sampler`` with its ``options`` (``steps=…``, ``ladder=…``)."""
        return draw_samples(self.score_source(), n, sampler, generator=generator, **options).samples


def fit_2d(
    data: Tensor,
    *,
    steps: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    run_dir: str | Path | None = None,
    progress: bool = False,
    model_overrides: Mapping[str, Any] | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> Fit2D:
    """Train the default recipe on points ``data`` ``(N, *D)``: :func:`default_model_spec`,
    :func:`default_loss_fn` and :func:`default_train_config` through ``scorelab.training.train``.

    ``steps`` defaults to :data:`DEFAULT_STEPS`; with ``seconds`` instead, the step count is set
    from the measured time of a few steps on this machine so that training lasts about
    ``seconds``. The network's initial weights come from ``seed`` (so do the batches and noise).
    ``run_dir`` enables checkpoints and the metric log (and resuming), as in ``train``; the
    checkpoint's ``extra`` holds ``data_stats``.
    """
    if steps is not None and seconds is not None:
        raise ValueError("pass steps or seconds, not both")
    if not isinstance(data, Tensor) or data.ndim < 2:
        raise ValueError("data must be a tensor of points (N, *D)")
    seed = check_int(seed, "seed", minimum=0)
    stats = data_stats(data)
    spec = default_model_spec(data[0].numel(), stats, **dict(model_overrides or {}))
    loss_fn = default_loss_fn(stats)
    overrides = dict(config_overrides or {})
    if seconds is not None:
        seconds = check_positive(seconds, "seconds")
        steps = _steps_for_seconds(spec, loss_fn, data, seconds, overrides)
    config = default_train_config(
        steps=DEFAULT_STEPS if steps is None else steps, seed=seed, **overrides
    )
    model = seeded_module(lambda: build_model(spec), seed)
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(
        model,
        loss_fn,
        data,
        config,
        run_dir=run_dir,
        model_spec=spec,
        extra={"data_stats": stats.to_dict(), "recipe": "recipe2d"},
        progress=progress,
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ema = result.ema_model if result.ema_model is not None else result.model
    return Fit2D(ema, result.model, spec, stats, config, result.history, wall, cpu)


def _steps_for_seconds(
    spec: dict[str, Any], loss_fn: LossFn, data: Tensor, seconds: float, overrides: dict
) -> int:
    """Steps that fit in ``seconds``, from timing 20 steps of a throwaway copy of the model."""
    config = default_train_config(steps=30, **overrides)
    model = build_model(spec)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(0)
    batch = data[torch.randint(0, len(data), (config.batch_size,), generator=gen)].to(torch.float32)
    timings = []
    for _ in range(30):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(model, batch, gen).mean().backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    per_step = sorted(timings[10:])[len(timings[10:]) // 2] * 1.1  # median, plus EMA/bookkeeping
    return max(10, int(seconds / per_step))
