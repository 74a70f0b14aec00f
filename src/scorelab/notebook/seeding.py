"""Global seeding for notebooks: seed 004's ``set_seed`` and ``seed_worker``.

The library itself never seeds a global RNG (every stochastic function takes a
``torch.Generator``); a notebook that draws from the global RNGs, as the seeds' cells do, calls
:func:`set_seed` once to be reproducible.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from scorelab.utils import check_int

__all__ = ["seed_worker", "set_seed"]


def set_seed(seed: int | None = None, seed_torch: bool = True) -> int:
    """Seed Python's ``random``, NumPy's global RNG and (``seed_torch``) torch's CPU and CUDA RNGs.

    With ``seed=None`` a fresh seed in ``[0, 2³²)`` is drawn from the operating system's entropy
    (the global RNGs are not consulted). With ``seed_torch`` cuDNN is also made deterministic
    (``benchmark=False``, ``deterministic=True``). Prints and returns the seed used.
    """
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % 2**32)
    seed = check_int(seed, "seed", minimum=0)
    if seed >= 2**32:
        raise ValueError(f"seed must be in [0, 2**32) (NumPy's limit); got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    if seed_torch:
        torch.manual_seed(seed)  # seeds every CUDA device too
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    rngs = "random, numpy and torch" if seed_torch else "random and numpy"
    print(f"set_seed: {rngs} seeded with {seed}")
    return seed


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: seed a worker's NumPy and ``random`` from torch.

    Torch gives each worker its own seed (``torch.initial_seed()``); this passes it on to the
    RNGs torch does not manage, so multi-process loading is reproducible.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
