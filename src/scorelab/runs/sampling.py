"""Sampling a run (or any score source) into ``.npy`` files, under torchrun too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from scorelab.utils import checked_npy_path, checked_output_path, save_npy

#: Samples drawn by ``--png`` previews: the first ``PREVIEW_ROWS × PREVIEW_PER_ROW`` (or, per
#: class, the first ``PREVIEW_PER_ROW`` of each class, a row each).
PREVIEW_ROWS, PREVIEW_PER_ROW = 10, 10


def check_preview(png: str | Path | None, data_shape: tuple[int, ...]) -> Path | None:
    """Check a ``--png`` path before any work: a writable ``.png``, and image data."""
    if png is None:
        return None
    png = checked_output_path(Path(png), "--png", ".png")
    if len(data_shape) != 3:
        raise ValueError(
            f"--png draws images (C, H, W); this data has shape {tuple(data_shape)}: drop --png"
        )
    return png


def write_preview(samples, png: Path, per_row: int, title: str) -> None:
    """Draw ``samples`` ``(N, C, H, W)`` as a grid of ``per_row`` per row into ``png``."""
    from scorelab.plotting import image_grid

    image_grid(samples, nrow=per_row, title=title, path=png)


def sample_to_file(
    source,
    n: int,
    out: Path,
    sampler,
    *,
    steps: int | None,
    seed: int,
    trajectory: Path | None = None,
    progress: bool = False,
    png: str | Path | None = None,
    **options,
) -> dict:
    """Draw ``n`` samples of ``source`` into the ``.npy`` file ``out`` (and the trajectory into
    ``trajectory``) with :func:`scorelab.samplers.draw_samples`; returns a summary with the
    sampler and its number of score evaluations (per batch; the most, for adaptive solvers).
    For images, ``png`` gets a grid of the first samples (:data:`PREVIEW_ROWS` rows).

    Without ``trajectory`` the samples are drawn in chunks spread over the ranks under torchrun
    (``sample_distributed``): the file is the same for any number of processes.
    """
    from scorelab.samplers import draw_samples
    from scorelab.samplers.draw import chosen_config, evaluation_count
    from scorelab.training.distributed import init_distributed, sample_distributed

    png = check_preview(png, source.data_shape)
    n_evals: list[int] = []

    def draw(m: int, generator: torch.Generator, keep: bool = False):
        res = draw_samples(
            source,
            m,
            sampler,
            steps=steps,
            generator=generator,
            keep_trajectory=keep,
            progress=progress,
            **options,
        )
        n_evals.append(res.n_evals)
        return res

    if trajectory is None:
        sample_distributed(
            lambda m, g: draw(m, g).samples,
            n,
            checked_npy_path(out),
            seed=seed,
            device=source.device,
        )
    else:
        generator = torch.Generator(device=source.device).manual_seed(seed)
        result = draw(n, generator, keep=True)
        save_npy(out, result.samples.detach().cpu().numpy())
        save_npy(trajectory, result.trajectory.detach().cpu().numpy())
    config = chosen_config(source, sampler, steps)
    if png is not None and init_distributed(source.device).is_main:
        shown = np.load(out, mmap_mode="r")[: PREVIEW_ROWS * PREVIEW_PER_ROW]
        write_preview(
            np.array(shown), png, PREVIEW_PER_ROW, f"{config.sampler}, {len(shown)} of {n}"
        )
    # Every chunk (a batch) costs the same evaluations, except with adaptive solvers: the most.
    # A torchrun rank that drew no chunk (n below one chunk per rank) takes the registry's count.
    count = max(n_evals) if n_evals else evaluation_count(config, steps, **options)
    return {"out": str(out), "n": n, "sampler": config.sampler, "n_evals": count}
