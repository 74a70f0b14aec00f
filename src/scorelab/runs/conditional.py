"""Class-conditional sampling with guidance, for trained runs and for exact mixtures.

:func:`class_source` turns a class-conditional run (``scorelab train --conditional``) or an
analytic mixture (each component its own class) into the :class:`~scorelab.samplers.ScoreSource`
of one class with classifier-free guidance ``(1 + w)·s(x, σ, y) − w·s(x, σ)`` (Ho & Salimans
2022): every registered sampler then draws from it unchanged (``draw_samples``). For a mixture the
scores are exact (:class:`scorelab.targets.conditional.ClassConditionalMixture`), so ``w = 0``
samples exactly ``p(x | y)``. :func:`sample_classes_to_file` draws several classes into one
``.npy`` file, rows grouped by class, with the labels beside it.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scorelab.runs.folder import Run
from scorelab.runs.sampling import PREVIEW_PER_ROW, check_preview, write_preview
from scorelab.samplers import ScoreSource, target_source
from scorelab.samplers.guidance import classifier_free_guidance, with_label
from scorelab.utils import NULL_LABEL, batch_sigma, checked_npy_path, save_npy

__all__ = [
    "class_source",
    "labels_path",
    "load_guidance_classifier",
    "num_classes_of",
    "parse_classes",
    "sample_classes_to_file",
]


def num_classes_of(base: Run | Any) -> int:
    """The classes of a conditional run or a mixture target; a one-line error for others."""
    if isinstance(base, Run):
        if not base.config.get("conditional"):
            raise ValueError(
                f"run {str(base.run_dir)!r} is unconditional (trained without --conditional): "
                "it cannot take --class or --guidance; train one with `scorelab train "
                "--conditional`"
            )
        return int(base.config["num_classes"])
    from scorelab.targets.mixture import GaussianMixture

    if not isinstance(base, GaussianMixture):
        raise ValueError(
            f"this target ({type(base).__name__}) has no classes, so --class/--guidance do not "
            "apply; use a mixture target (its components are the classes)"
        )
    return base.n_components


def parse_classes(spec: str | int | list[int], num_classes: int) -> list[int]:
    """Classes from ``"3"``, ``"0,1,2"``, ``"all"`` (or an int / list), each in ``0..C−1``."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        items: list[Any] = [spec]
    elif isinstance(spec, list):
        items = spec
    else:
        text = str(spec).strip()
        if text == "all":
            return list(range(num_classes))
        items = [t.strip() for t in text.split(",")]
    out: list[int] = []
    for item in items:
        try:
            c = int(item)
        except (TypeError, ValueError):
            raise ValueError(
                f"--class takes class numbers 0..{num_classes - 1} separated by commas, or "
                f"'all'; got {spec!r}"
            ) from None
        if not 0 <= c < num_classes:
            raise ValueError(
                f"unknown class {c} (--class): this model has classes 0..{num_classes - 1}"
            )
        if c in out:
            raise ValueError(f"class {c} is given twice in --class {spec!r}")
        out.append(c)
    if not out:
        raise ValueError("--class needs at least one class")
    return out


def _check_guidance(guidance: float) -> float:
    try:
        w = float(guidance)
    except (TypeError, ValueError):
        raise ValueError(f"--guidance must be a number >= 0; got {guidance!r}") from None
    if not (w >= 0 and w < float("inf")):
        raise ValueError(
            f"--guidance must be a finite number >= 0 (0: the plain class-conditional score); "
            f"got {guidance!r}"
        )
    return w


def _network_score(model: torch.nn.Module, x: Tensor, sigma: Tensor, y: Tensor) -> Tensor:
    return model(x, batch_sigma(sigma, x), y)


def _clean(score, sigma_min: float, x: Tensor) -> Tensor:
    return score(x, torch.full((x.shape[0],), sigma_min, dtype=x.dtype, device=x.device))


def load_guidance_classifier(path: str | Path, run: Run) -> torch.nn.Module:
    """A noise-conditional classifier (``scorelab classifier --noise-conditional``) for ``run``'s
    images, on the run's device, without gradients for its weights."""
    from scorelab.models.classifier import load_classifier

    if not isinstance(run, Run):
        raise ValueError(
            "--classifier guides a trained run; a mixture target has an exact class score: "
            "drop --classifier"
        )
    if len(run.data_shape) != 3:
        raise ValueError(
            "--classifier guides image runs (a LeNet on images); this run holds points of shape "
            f"{run.data_shape}"
        )
    model, _ = load_classifier(path, image_size=run.data_shape[-1])
    if not model.noise_conditional:
        raise ValueError(
            f"classifier {str(path)!r} was trained on clean images only: guidance needs "
            "p(y | noised x); train one with `scorelab classifier --noise-conditional`"
        )
    model.to(run.device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _classifier_source(
    run: Run, y: int, classifier: Any, scale: float, guidance: float | None
) -> ScoreSource:
    from scorelab.samplers.guidance import classifier_guidance, classifier_log_prob_grad

    if not isinstance(run, Run):
        raise ValueError(
            "--classifier guides a trained run; a mixture target has an exact class score: "
            "drop --classifier"
        )
    if guidance is not None:
        raise ValueError(
            "choose one guidance: --guidance (classifier-free, a --conditional run) or "
            "--classifier with --classifier-scale"
        )
    if not isinstance(classifier, torch.nn.Module):
        classifier = load_guidance_classifier(classifier, run)
    (y,) = parse_classes(y, int(classifier.n_classes))
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"--classifier-scale must be a number >= 0; got {scale!r}") from None
    if not 0 <= scale < float("inf"):
        raise ValueError(f"--classifier-scale must be a finite number >= 0; got {scale!r}")
    source = run.score_source()  # a conditional network without y: its unconditional score
    score = classifier_guidance(source.score, classifier_log_prob_grad(classifier, y), scale)
    sigma_min = float(run.config["noise"]["sigma_min"])
    return dataclasses.replace(
        source, score=score, clean_score=functools.partial(_clean, score, sigma_min)
    )


def class_source(
    base: Run | Any,
    y: int,
    *,
    guidance: float | None = None,
    classifier: Any = None,
    classifier_scale: float = 1.0,
    device: torch.device | str = "cpu",
) -> ScoreSource:
    """The :class:`ScoreSource` of class ``y`` with classifier-free guidance weight ``guidance``
    (``None``: 0), or with classifier guidance.

    ``base`` is a conditional :class:`~scorelab.runs.Run` (its network ``s(x, σ, y)`` and, with
    the null label, ``s(x, σ)``) or a Gaussian-mixture target (exact scores; class ``k`` =
    component ``k``). ``guidance = 0`` is the plain conditional score (one evaluation per call),
    otherwise two. The noise range and recommended sampler are those of the run or target; a
    mixture's start uses the class's exact moments, a run's the data's. ``device``: for targets.

    ``classifier`` (a path or a loaded noise-conditional LeNet, :func:`load_guidance_classifier`)
    instead gives classifier guidance of any image run, conditional or not:
    ``s(x, σ) + classifier_scale·∇ₓ log p(y | x, σ)`` (Dhariwal & Nichol 2021).
    """
    if classifier is not None:
        return _classifier_source(base, y, classifier, classifier_scale, guidance)
    (y,) = parse_classes(y, num_classes_of(base))
    w = _check_guidance(0.0 if guidance is None else guidance)
    if isinstance(base, Run):
        source = base.score_source()
        cond = functools.partial(_network_score, base.model)
        sigma_min = float(base.config["noise"]["sigma_min"])
        score = classifier_free_guidance(with_label(cond, y), with_label(cond, NULL_LABEL), w)
        return dataclasses.replace(
            source, score=score, clean_score=functools.partial(_clean, score, sigma_min)
        )
    from scorelab.targets.conditional import ClassConditionalMixture

    law = ClassConditionalMixture(base)
    full = target_source(base, device)
    part = target_source(law.conditional(y), device)
    score = classifier_free_guidance(with_label(law.score, y), base.noised_score, w)
    # The clean score of the guided law: the same combination of the clean scores.
    clean = classifier_free_guidance(
        lambda x, s: law.conditional(y).score(x), lambda x, s: base.score(x), w
    )
    return dataclasses.replace(
        full,
        score=score,
        clean_score=lambda x: clean(x, torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)),
        mean=part.mean,
        cov=part.cov,
    )


def labels_path(out: str | Path) -> Path:
    """Where the labels of the samples in ``out`` go: ``x.npy`` → ``x.labels.npy``."""
    out = Path(out)
    return out.with_name(out.stem + ".labels.npy")


#: Random stream of the per-class generators (``derive_seed(seed, stream, class)``).
_CLASS_STREAM = 4


def sample_classes_to_file(
    sources: dict[int, ScoreSource],
    n: int,
    out: str | Path,
    sampler: Any,
    *,
    steps: int | None,
    seed: int,
    progress: bool = False,
    png: str | Path | None = None,
    **options: Any,
) -> dict:
    """Draw ``n`` samples of each class's source into ``out`` (rows grouped by class, in the
    order of ``sources``) and the class of each row into :func:`labels_path` ``(out)``; for
    images, ``png`` gets a grid with a row per class (its first samples).

    Class ``c`` is drawn with its own generator, seeded ``derive_seed(seed, stream, c)``, by rank
    ``i mod W`` under torchrun (``i`` its place in ``sources``, ``W`` processes); rank 0 gathers
    the classes and writes the files, which are the same for any number of processes. Returns a
    summary: files, ``n`` per class, classes, sampler and score evaluations per batch.
    """
    from scorelab.samplers import draw_samples
    from scorelab.samplers.draw import chosen_config, evaluation_count
    from scorelab.training.distributed import round_robin
    from scorelab.training.loop import derive_seed

    out = checked_npy_path(Path(out))
    classes = list(sources)
    first = sources[classes[0]]
    png = check_preview(png, first.data_shape)

    def draw(i: int) -> tuple[np.ndarray, int]:
        source = sources[classes[i]]
        generator = torch.Generator(device=source.device)
        generator.manual_seed(derive_seed(seed, _CLASS_STREAM, classes[i]))
        res = draw_samples(
            source, n, sampler, steps=steps, generator=generator, progress=progress, **options
        )
        return res.samples.detach().cpu().numpy(), res.n_evals

    def write(drawn: dict[int, tuple[np.ndarray, int]]) -> None:
        save_npy(out, np.concatenate([drawn[i][0] for i in range(len(classes))]))
        save_npy(labels_path(out), np.concatenate([np.full(n, c, dtype=np.int64) for c in classes]))
        if png is not None:
            k = min(n, PREVIEW_PER_ROW)
            shown = np.concatenate([drawn[i][0][:k] for i in range(len(classes))])
            write_preview(shown, png, k, f"classes {', '.join(map(str, classes))}: a row each")

    drawn = round_robin(len(classes), draw, write, device=first.device)
    config = chosen_config(first, sampler, steps)
    # The most evaluations of any batch (they differ only with adaptive solvers); a rank that
    # drew no class takes the registry's count.
    n_evals = max((e for _, e in drawn.values()), default=None)
    return {
        "out": str(out),
        "labels": str(labels_path(out)),
        "n_per_class": n,
        "classes": list(sources),
        "sampler": config.sampler,
        "n_evals": n_evals if n_evals is not None else evaluation_count(config, steps, **options),
    }
