"""Train a run folder: plan it from a data source and a training preset, then train it.

``scorelab train`` and ``scorelab demo`` call :func:`train_run`; :func:`plan_run` describes the
run as plain values (data, statistics, noise range, network spec, training settings, sampler)
that go into ``config.json``. Every network is seeded one way
(:func:`scorelab.utils.seeded_module`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from scorelab.data.stats import data_stats
from scorelab.runs.folder import (
    is_image_source,
    load_run_data,
    load_run_labelled_data,
    run_config_json,
)
from scorelab.training.objectives import get_objective
from scorelab.training.presets import (
    TrainingPreset,
    get_preset,
    loss_for,
    model_spec_for,
    preset_for,
    train_config_for,
)
from scorelab.utils import check_int, seeded_module

#: Points drawn from generated sources (toy sets, analytic targets) unless ``n`` is given.
GENERATED_POINTS = 10_000


def plan_run(
    source: str,
    **kwargs: Any,
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """``(plan, train_x, test_x)``: a run on ``source`` as plain values, and its data.

    Keywords: ``preset`` (name or :class:`TrainingPreset`; default
    :func:`~scorelab.training.presets.preset_for` the source and device), ``n``, ``seed``,
    ``test_fraction``, ``device``, ``steps``, ``sigma_max``, ``sigma_min``, ``dequantize``,
    ``objective`` (``scorelab.training.objectives``; its matching sampler becomes the run's
    recommended one), ``model`` (size keywords of the network) and ``train`` (fields of the
    training config).
    """
    plan, train_x, test_x, _ = _plan_run(source, conditional=False, **kwargs)
    return plan, train_x, test_x


def plan_conditional_run(
    source: str,
    *,
    label_column: int | None = None,
    **kwargs: Any,
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``(plan, train_x, test_x, (train_y, test_y))``: a class-conditional run and its labels.

    The labels are the image set's, a mixture's components, an ``.npz`` file's ``y`` or the
    ``label_column`` of a ``.npy``/``.csv`` file
    (:func:`scorelab.data.labels.load_labelled_points`).
    The network gets ``num_classes`` (the largest label + 1, a mixture's component count) and
    the loss drops labels with probability ``P_UNCOND`` (``scorelab.training.presets``), so one
    network gives ``s(x, σ, y)`` and ``s(x, σ)`` for classifier-free guidance. The plan records
    ``"conditional": true`` and ``"num_classes"``. Other keywords as :func:`plan_run`'s.
    """
    return _plan_run(source, conditional=True, label_column=label_column, **kwargs)


def _plan_run(
    source: str,
    *,
    conditional: bool,
    label_column: int | None = None,
    preset: str | TrainingPreset | None = None,
    n: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    device: str = "auto",
    steps: int | None = None,
    sigma_max: float | None = None,
    sigma_min: float | None = None,
    dequantize: bool = False,
    objective: str = "edm",
    model: dict[str, Any] | None = None,
    train: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor, Any]:
    """``(plan, train_x, test_x, labels)`` (``labels``: ``(train_y, test_y)`` or ``None``);
    the keywords are documented on :func:`plan_run`."""
    from scorelab.data import is_target_source
    from scorelab.data.toy import TOY_DATASETS
    from scorelab.training.config import resolve_device

    source = str(source)
    images = is_image_source(source)
    generated = source in TOY_DATASETS or is_target_source(source)
    n = n if n is not None or not generated else GENERATED_POINTS
    if n is not None:
        check_int(n, "n (--n)", minimum=1 if images else 2)
    if not (isinstance(test_fraction, float | int) and 0 <= test_fraction < 1):
        raise ValueError(f"test_fraction (--test-fraction) must be in [0, 1); got {test_fraction}")
    if isinstance(preset, str):
        preset = get_preset(preset)
    if preset is None:
        preset = preset_for(source, images=images, device=str(resolve_device(device)))
    labels = None
    if conditional:
        train_x, test_x, labels, num_classes = load_run_labelled_data(
            source, n=n, seed=seed, test_fraction=test_fraction, label_column=label_column
        )
    else:
        if label_column is not None:
            raise ValueError("--label-column gives the labels of --conditional training; add it")
        train_x, test_x = load_run_data(source, n=n, seed=seed, test_fraction=test_fraction)
    if train_x.shape[0] < 2:
        raise ValueError(
            f"the training split holds {train_x.shape[0]} point(s); at least 2 are needed: raise "
            "--n or lower --test-fraction"
        )
    stats = data_stats(train_x)
    matching = get_objective(objective).sampler or preset.sampler
    _, noise = loss_for(
        preset,
        stats,
        sigma_max=sigma_max,
        sigma_min=sigma_min,
        objective=objective,
        conditional=conditional,
    )
    noise["dequantize"] = bool(images and dequantize)
    config = train_config_for(preset, steps=steps, seed=seed, device=device, **(train or {}))
    data = {
        "source": source,
        "kind": "images" if images else "points",
        "n": n,
        "seed": seed,
        "test_fraction": test_fraction,
        "shape": list(train_x.shape[1:]),
        "n_train": int(train_x.shape[0]),
        "n_test": int(test_x.shape[0]),
        "stats": stats.to_dict(),
        "sigma_data": stats.sigma_data,
    }
    sizes = dict(model or {})
    if conditional:
        sizes["num_classes"] = num_classes
    plan = {
        "preset": preset.name,
        "data": data,
        "noise": noise,
        "model_spec": model_spec_for(preset, stats, tuple(train_x.shape[1:]), **sizes),
        "train": config.to_dict(),
        "sampler": matching.to_dict(),
    }
    if conditional:
        plan.update(conditional=True, num_classes=num_classes)
    return plan, train_x, test_x, labels


def make_loss(plan: dict[str, Any], *, amp: bool = False):
    """The training objective ``loss_fn(model, x0, generator) -> (B,)`` of a planned run
    (``loss_fn(model, x0, generator, y=y)`` for a conditional one)."""
    from scorelab.data.stats import DataStats
    from scorelab.training.images import autocast_loss, dequantized_loss

    noise = plan["noise"]
    stats = DataStats.from_dict(plan["data"]["stats"])
    loss, _ = loss_for(
        get_preset(plan["preset"]),
        stats,
        sigma_max=noise["sigma_max"],
        sigma_min=noise["sigma_min"],
        conditional=bool(plan.get("conditional")),
    )
    if noise.get("dequantize"):
        loss = dequantized_loss(loss)
    return autocast_loss(loss) if amp else loss


def exact_score_metric(source: str, noise: dict[str, Any]):
    """For analytic targets: ``evaluate(model, step)`` giving the relative score error."""
    from scorelab.data import is_target_source

    if not is_target_source(source):
        return None
    from scorelab.metrics import score_error_per_level
    from scorelab.models import as_score_fn
    from scorelab.sde import geometric_sigmas
    from scorelab.targets import get_target

    target = get_target(source)
    sigmas = geometric_sigmas(
        6, sigma_min=noise["sigma_min"], sigma_max=noise["sigma_max"], dtype=torch.float32
    )

    def evaluate(model, step: int) -> dict[str, float]:
        device = next(model.parameters()).device
        err = score_error_per_level(
            as_score_fn(model),
            target.noised_score,
            lambda n, g: target.sample(n, generator=g).to(device),
            sigmas.to(device),
            n=1000,
            generator=torch.Generator().manual_seed(0),
        )
        return {"score_rel_error": float(err.relative.mean())}

    return evaluate


def train_run(
    plan: dict[str, Any],
    train_x: torch.Tensor,
    test_x: torch.Tensor,
    out: str | Path,
    *,
    command: str = "scorelab train",
    resume: bool = True,
    progress: bool = True,
    amp: bool = False,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
):
    """Train the planned run into the folder ``out`` (resumable; under torchrun every rank runs
    this and rank 0 writes files). ``labels``: ``(train_y, test_y)`` of a conditional plan
    (:func:`plan_conditional_run`). Returns the ``TrainResult``."""
    from scorelab.models import build_model
    from scorelab.training import TrainConfig, resolve_device
    from scorelab.training.distributed import cleanup, train_distributed

    config = TrainConfig.from_dict(plan["train"])
    if bool(plan.get("conditional")) != (labels is not None):
        raise ValueError(
            "a conditional plan trains with labels=(train_y, test_y), an unconditional one without"
        )
    train_y, test_y = labels if labels is not None else (None, None)
    images = plan["data"]["kind"] == "images"
    model = seeded_module(lambda: build_model(plan["model_spec"]), config.seed)
    cuda = resolve_device(config.device).type == "cuda"
    if cuda and images:
        model = model.to(memory_format=torch.channels_last)  # faster cuDNN convolutions
    result = train_distributed(
        model,
        make_loss(plan, amp=cuda and amp),
        train_x,
        config,
        run_dir=out,
        model_spec=plan["model_spec"],
        extra={"noise": plan["noise"]},
        test_data=test_x,
        # A conditional network without y gives its unconditional score: measured the same way.
        evaluate=exact_score_metric(plan["data"]["source"], plan["noise"]),
        resume=resume,
        progress=progress,
        run_files={"config.json": run_config_json({**plan, "command": command})},
        labels=train_y,
        test_labels=test_y,
    )
    cleanup()
    return result


def describe_plan(plan: dict[str, Any]) -> list[str]:
    """Two lines about a planned run, for the command line to print."""
    d, noise = plan["data"], plan["noise"]
    images = d["kind"] == "images"
    classes = f", {plan['num_classes']} classes (conditional)" if plan.get("conditional") else ""
    return [
        f"data {d['source']}: {d['n_train']} train / {d['n_test']} test, shape "
        f"{tuple(d['shape'])}{classes}; preset {plan['preset']}",
        f"noise levels: σ ∈ [{noise['sigma_min']:.4g}, {noise['sigma_max']:.4g}] (σ_max: largest "
        f"pairwise distance unless given; σ_min: {'one grey level' if images else '0.002·σ_data'}"
        " unless given), EDM log-normal law and weighting"
        + (", dequantised pixels" if noise["dequantize"] else ""),
    ]
