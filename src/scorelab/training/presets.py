"""Training presets: the one place where "what works" for each kind of data is written down.

A :class:`TrainingPreset` holds the network (its name and size), the training settings, the
loss settings and the sampler recommended for the trained model. ``scorelab train``, the Python
:func:`scorelab.training.recipe2d.fit_2d`, the demo, the recipes and the benchmarks all build
their runs from :data:`TRAINING_PRESETS` through :func:`model_spec_for`, :func:`train_config_for`
and :func:`loss_for`; the data-dependent parts (σ_data, the data mean, the noise range) come from
one :class:`scorelab.data.DataStats` and one σ-range rule
(:func:`scorelab.data.training_noise_range`).

Measured: ``points`` on the 2-D toy sets (``benchmarks/bench_training.py``,
RESULTS_training.md); ``digits-cpu`` and ``mnist-subset-cpu`` by ``benchmarks/bench_images.py``
on 2 CPU cores (RESULTS_images.md). The ``-gpu`` presets are proposals for a lent GPU (a wider
network trained longer), not yet measured.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from scorelab.data.stats import DataStats, training_noise_range
from scorelab.samplers.registry import RECOMMENDED, SamplerConfig
from scorelab.training.config import TrainConfig
from scorelab.training.loop import LossFn
from scorelab.utils import check_int

#: Label dropout of class-conditional training: the share of batches' labels replaced by the null
#: label so that one network learns s(x, σ, y) and s(x, σ) (Ho & Salimans 2022 use 0.1–0.2).
P_UNCOND = 0.1


@dataclass(frozen=True)
class TrainingPreset:
    """Network, training, loss and sampler settings for one kind of data on one kind of machine.

    ``model``: the registry name (``scorelab.models``) and size keywords; ``train``:
    :class:`TrainConfig` fields; ``loss``: keywords of
    :func:`scorelab.training.recipe2d.noise_conditional_loss` besides the noise range;
    ``sampler``: the recommended sampler of the trained model.
    """

    name: str
    kind: str  # "points" or "images"
    description: str
    model: dict[str, Any]
    train: dict[str, Any]
    sampler: SamplerConfig
    loss: dict[str, Any] = field(default_factory=dict)


#: Image presets: name -> (description, U-Net base width, steps, batch, learning rate, EMA decay).
#: MNIST on a CPU trains 16 000 steps: at 8000 the class-conditional network missed ≥ 97 % in the
#: asked class within 2× the per-class Fréchet floor (met at 16 000), and bottom-half inpainting
#: and the Fréchet distance improved too (0.875 → 0.887–0.90 of completions in the original's
#: class; 1.35× → 1.14× the floor): benchmarks/RESULTS_guidance.md, RESULTS_images.md.
# fmt: off
_IMAGE_TABLE: dict[str, tuple[str, int, int, int, float, float]] = {
    "digits-cpu": ("8×8 digits on a CPU: SmallUNet base 16, 1500 steps",
                   16, 1500, 128, 2e-3, 0.995),
    "digits-gpu": ("8×8 digits on a GPU: base 64, 10 000 steps", 64, 10000, 256, 1e-3, 0.999),
    "mnist-subset-cpu": ("MNIST subset on a CPU: base 16, 16 000 steps (about 100 CPU minutes)",
                         16, 16000, 64, 2e-3, 0.999),
    "mnist-subset-gpu": ("MNIST subset on a GPU: base 64, 30 000 steps",
                         64, 30000, 128, 5e-4, 0.9995),
    "mnist-cpu": ("full MNIST (IDX folder) on a CPU: as mnist-subset-cpu",
                  16, 16000, 64, 2e-3, 0.999),
    "mnist-gpu": ("full MNIST (IDX folder) on a GPU: base 64, 100 000 steps",
                  64, 100000, 256, 5e-4, 0.9999),
}
# fmt: on

POINTS = TrainingPreset(
    "points",
    "points",
    "point sets (2-D toy sets, files): ScoreMLP 128 wide × 3 blocks, EDM loss, 2500 Adam "
    "steps of 512 (about a minute on 2 CPU cores)",
    {"name": "score-mlp", "hidden": 128, "depth": 3, "embed_dim": 64},
    {
        "steps": 2500,
        "batch_size": 512,
        "lr": 2e-3,
        "lr_schedule": "cosine",
        "ema_decay": 0.995,
        "grad_clip": 1.0,
    },
    RECOMMENDED["points"],
)

TRAINING_PRESETS: dict[str, TrainingPreset] = {
    "points": POINTS,
    **{
        name: TrainingPreset(
            name,
            "images",
            description,
            {"name": "small-unet", "base": base},
            {"steps": steps, "batch_size": batch, "lr": lr, "ema_decay": ema, "grad_clip": 1.0},
            RECOMMENDED["images"],
        )
        for name, (description, base, steps, batch, lr, ema) in _IMAGE_TABLE.items()
    },
}


def get_preset(name: str) -> TrainingPreset:
    """The preset called ``name``, with an error listing the valid names."""
    if name not in TRAINING_PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(TRAINING_PRESETS)}")
    return TRAINING_PRESETS[name]


def preset_for(source: str, *, images: bool, device: str = "cpu") -> TrainingPreset:
    """The default preset of a data source: ``points``, or the image set's preset for the
    machine (``-gpu`` on CUDA devices, ``-cpu`` otherwise; MNIST folders use ``mnist-*``)."""
    if not images:
        return TRAINING_PRESETS["points"]
    machine = "gpu" if str(device).startswith("cuda") else "cpu"
    name = source if source in ("digits", "mnist-subset") else "mnist"
    return TRAINING_PRESETS[f"{name}-{machine}"]


def model_spec_for(
    preset: TrainingPreset, stats: DataStats, data_shape: tuple[int, ...], **overrides: Any
) -> dict[str, Any]:
    """The network spec of ``preset`` for data with ``stats`` and per-example ``data_shape``.

    Points: a ``ScoreMLP`` with EDM preconditioning at the data's ``σ_data``, centred on the
    data's mean (the preconditioning assumes centred data). Images: a ``SmallUNet`` with the
    data's channels. ``overrides`` replace size keywords (e.g. ``hidden=256``).
    """
    from scorelab.models import model_spec

    kwargs = {k: v for k, v in preset.model.items() if k != "name"}
    name = preset.model["name"]
    if name == "score-mlp":
        if len(data_shape) != 1:
            raise ValueError(
                f"preset {preset.name!r} needs points (N, D); the data has shape "
                f"{tuple(data_shape)}: use an image preset"
            )
        kwargs.update(
            dim=int(data_shape[0]), sigma_data=stats.sigma_data, data_mean=list(stats.mean)
        )
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    if name == "small-unet":
        if len(data_shape) != 3:
            raise ValueError(
                f"preset {preset.name!r} needs images (N, C, H, W); the data has shape "
                f"{tuple(data_shape)}: use the points preset"
            )
        if "hidden" in kwargs:  # the command line's --hidden is the U-Net's base width
            kwargs["base"] = kwargs.pop("hidden")
        kwargs.pop("depth", None)
        kwargs["in_channels"] = int(data_shape[0])
    return model_spec(name, **kwargs)


def ema_decay_for(steps: int, decay: float | None) -> float | None:
    """EMA decay for a run of ``steps``: ``min(decay, max(0.5, 1 − 10/steps))``. The EMA starts
    at the initial weights, whose share after ``k`` steps is ``decay^k``; short runs need a short
    average (the share is then at most ``e^{-10}`` at the end). ``None`` or 0: no EMA. The decay
    may change when a run is resumed with more steps; the EMA's presence may not."""
    if not decay:
        return None
    return min(decay, max(0.5, 1.0 - 10.0 / steps))


def train_config_for(
    preset: TrainingPreset,
    *,
    steps: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    **overrides: Any,
) -> TrainConfig:
    """The :class:`TrainConfig` of ``preset`` (``steps`` and ``overrides`` replace its values;
    ``None`` keeps them; an EMA decay or gradient clip of 0 switches it off). Logging,
    evaluation and checkpoints scale with the steps unless given."""
    settings = dict(preset.train)
    steps = check_int(settings["steps"] if steps is None else steps, "steps (--steps)")
    given = {k: v for k, v in overrides.items() if v is not None}
    ema = given.pop("ema_decay", settings.get("ema_decay"))
    if ema is not None and not (isinstance(ema, float | int) and 0 <= ema < 1):
        raise ValueError(f"ema_decay (--ema-decay) must be in [0, 1) (0: no EMA); got {ema}")
    settings.update(
        steps=steps,
        seed=seed,
        device=device,
        ema_decay=ema_decay_for(steps, ema or None),
        log_every=max(1, min(50, steps // 20)),
        eval_every=max(1, min(500, steps)),
        checkpoint_every=max(1, min(500, steps // 4)),
    )
    settings.update(given)
    if settings.get("grad_clip") == 0:  # 0 switches clipping off
        settings["grad_clip"] = None
    return TrainConfig(**settings)


def loss_for(
    preset: TrainingPreset,
    stats: DataStats,
    *,
    sigma_max: float | None = None,
    sigma_min: float | None = None,
    objective: str = "edm",
    conditional: bool = False,
) -> tuple[LossFn, dict[str, Any]]:
    """``(loss_fn, noise)``: the training objective of ``preset`` on data with ``stats`` and the
    plain description of its noise range (for a run's config). The range is
    :func:`scorelab.data.training_noise_range` unless given; ``objective`` names one of
    :data:`scorelab.training.objectives.OBJECTIVES` (default EDM's). ``conditional``: the EDM
    loss of a class-conditional network, ``loss_fn(model, x0, generator, y=y)`` with label
    dropout :data:`P_UNCOND` (classifier-free guidance)."""
    from scorelab.training.recipe2d import noise_conditional_loss

    rule_max, rule_min = training_noise_range(stats, images=preset.kind == "images")
    sigma_max = rule_max if sigma_max is None else float(sigma_max)
    sigma_min = rule_min if sigma_min is None else float(sigma_min)
    if not (math.isfinite(sigma_min) and math.isfinite(sigma_max) and 0 < sigma_min < sigma_max):
        raise ValueError(
            "need finite 0 < sigma_min (--sigma-min) < sigma_max (--sigma-max); got "
            f"{sigma_min:g} and {sigma_max:g}"
        )
    if objective != "edm":
        if conditional:
            raise ValueError(
                f"class-conditional training (--conditional) uses the EDM objective; drop "
                f"--objective {objective}"
            )
        from scorelab.training.objectives import objective_loss

        return objective_loss(objective, stats, sigma_min, sigma_max)
    kwargs = {"sigma_min": sigma_min, "sigma_max": sigma_max, "sigma_data": stats.sigma_data}
    kwargs.update(preset.loss)
    if conditional:
        kwargs["p_uncond"] = P_UNCOND
    noise = {
        "objective": "edm",
        "sigma_min": sigma_min,
        "sigma_max": sigma_max,
        "distribution": "log-normal (EDM), truncated to [sigma_min, sigma_max]",
        "weighting": preset.loss.get("weighting", "edm"),
    }
    if conditional:
        noise["p_uncond"] = P_UNCOND
    return functools.partial(noise_conditional_loss, **kwargs), noise
