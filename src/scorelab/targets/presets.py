"""Named analytic targets from the seeds; ``PRESETS`` maps a name to a function that builds one."""

from __future__ import annotations

from collections.abc import Callable

import torch

from scorelab.targets.gaussian import Gaussian
from scorelab.targets.mixture import GaussianMixture


def anticorrelated() -> Gaussian:
    """The seed 001 anti-correlated Gaussian: mean 0, ``Σ = [[1, -0.7], [-0.7, 1]]``."""
    cov = torch.tensor([[1.0, -0.7], [-0.7, 1.0]], dtype=torch.float64)
    return Gaussian(torch.zeros(2, dtype=torch.float64), cov)


def mixture_1d() -> GaussianMixture:
    """The seed 003 one-dimensional mixture ``0.1·N(-3, 1) + 0.9·N(3, 1)``."""
    return GaussianMixture(
        means=torch.tensor([[-3.0], [3.0]], dtype=torch.float64),
        covs=torch.ones(2, 1, 1, dtype=torch.float64),
        weights=torch.tensor([0.1, 0.9], dtype=torch.float64),
    )


def mixture_2d() -> GaussianMixture:
    """The seed 004 two-dimensional mixture: means (0, 1), (2, -1); covs I, [[2, .5], [.5, 1]]."""
    return GaussianMixture(
        means=torch.tensor([[0.0, 1.0], [2.0, -1.0]], dtype=torch.float64),
        covs=torch.tensor(
            [[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.5], [0.5, 1.0]]], dtype=torch.float64
        ),
        weights=torch.tensor([1.0, 1.0], dtype=torch.float64),
    )


PRESETS: dict[str, Callable[[], Gaussian | GaussianMixture]] = {
    "anticorrelated": anticorrelated,
    "mixture-1d": mixture_1d,
    "mixture-2d": mixture_2d,
}


def get_target(name: str) -> Gaussian | GaussianMixture:
    """Build the preset target called ``name`` (one of ``PRESETS``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown target {name!r}; choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()
