"""Sampling a run (or any score source) into ``.npy`` files, under torchrun too."""

from __future__ import annotations

from pathlib import Path

import torch

from scorelab.utils import checked_npy_path, save_npy


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
    **options,
) -> dict:
    """Draw ``n`` samples of ``source`` into the ``.npy`` file ``out`` (and the trajectory into
    ``trajectory``) with :func:`scorelab.samplers.draw_samples`; returns a summary with the
    sampler and its number of score evaluations (per batch; the most, for adaptive solvers).

    Without ``trajectory`` the samples are drawn in chunks spread over the ranks under torchrun
    (``sample_distributed``): the file is the same for any number of processes.
    """
    from scorelab.samplers import draw_samples
    from scorelab.samplers.draw import chosen_config, evaluation_count
    from scorelab.training.distributed import sample_distributed

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
    # Every chunk (a batch) costs the same evaluations, except with adaptive solvers: the most.
    # A torchrun rank that drew no chunk (n below one chunk per rank) takes the registry's count.
    count = max(n_evals) if n_evals else evaluation_count(config, steps, **options)
    return {"out": str(out), "n": n, "sampler": config.sampler, "n_evals": count}
