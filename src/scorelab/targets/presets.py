"""Named analytic targets: the seeds' three and harder ones (separated unequal modes, a thin
curved law, an anisotropic 16-D mixture).

``PRESET_TABLE`` maps a name to a :class:`Preset` (builder, one-line description, whether mode
weights are meaningful); ``PRESETS`` (name -> builder) and ``PRESET_DESCRIPTIONS`` are read from it.
``get_target`` also accepts the path of a mixture file (``scorelab.targets.files``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from scorelab.targets.files import MIXTURE_SUFFIXES, load_mixture
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


def ring_8() -> GaussianMixture:
    """Eight separated modes of unequal weight on a circle (the "8 Gaussians" toy, harder).

    Means ``2.5 (cos 2πk/8, sin 2πk/8)``, covariances ``0.1² I``, weights ``∝ k + 1`` for
    ``k = 0..7`` (from 1/36 to 8/36). Neighbouring means are ``5 sin(π/8) ≈ 1.91`` apart, 19 stds:
    a sampler must cross empty space to get the weights right.
    """
    angles = 2 * math.pi * torch.arange(8, dtype=torch.float64) / 8
    means = 2.5 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return GaussianMixture(
        means=means,
        covs=0.1**2 * torch.eye(2, dtype=torch.float64).expand(8, 2, 2),
        weights=torch.arange(1, 9, dtype=torch.float64),
    )


def spiral_2d(n_components: int = 48, std: float = 0.08) -> GaussianMixture:
    """A thin curved 2-D law: ``n_components`` equal, small isotropic Gaussians along a spiral.

    The means lie at equal arc-length steps on the Archimedean spiral ``r = 0.2 + 0.2 θ``,
    ``θ ∈ [0, 2.5π]`` (arc length ≈ 7.7, arms 1.26 apart); with 48 components of std 0.08 the
    step is ≈ 2 stds, so the density is a smooth ridge of width ≈ 0.16, not a chain of modes.
    Per-component mode weights are therefore not a meaningful metric for it.
    """
    theta = torch.linspace(0.0, 2.5 * math.pi, 20_001, dtype=torch.float64)
    r = 0.2 + 0.2 * theta
    curve = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], dim=1)
    length = torch.cat([torch.zeros(1, dtype=torch.float64), (curve.diff(dim=0)).norm(dim=1)])
    length = length.cumsum(0)
    targets = torch.linspace(0.0, float(length[-1]), n_components, dtype=torch.float64)
    idx = torch.searchsorted(length, targets).clamp(max=len(theta) - 1)
    return GaussianMixture(
        means=curve[idx] - curve[idx].mean(dim=0),
        covs=std**2 * torch.eye(2, dtype=torch.float64).expand(n_components, 2, 2),
    )


def aniso_16d() -> GaussianMixture:
    """Four separated, strongly anisotropic components in 16 dimensions, weights 0.4/0.3/0.2/0.1.

    Means are rows 1–4 of the 16×16 Sylvester–Hadamard matrix times 1.5 (pairwise distance
    ``1.5·√32 ≈ 8.5``). Component ``k`` is diagonal with per-axis stds ``geomspace(0.05, 2, 16)``
    rolled by ``4k``: a 40× range of scales (1600× in variance), thin on different axes for each
    component, so one step size cannot suit every direction.
    """
    h2 = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    hadamard = torch.ones(1, 1, dtype=torch.float64)
    for _ in range(4):
        hadamard = torch.kron(hadamard, h2)
    stds = torch.logspace(math.log10(0.05), math.log10(2.0), 16, dtype=torch.float64)
    covs = torch.stack([torch.diag(stds.roll(4 * k) ** 2) for k in range(4)])
    return GaussianMixture(
        means=1.5 * hadamard[1:5],
        covs=covs,
        weights=torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64),
    )


@dataclass(frozen=True)
class Preset:
    """One named target: how to build it, a one-line description, and whether mode weights apply.

    ``modes_separated`` says the components are far enough apart that the share of samples
    assigned to each (``scorelab.metrics.mode_weight_report``) measures mode coverage; it is
    ``False`` for a single Gaussian and for laws made of many overlapping small components.
    """

    build: Callable[[], Gaussian | GaussianMixture]
    description: str
    modes_separated: bool


#: The named targets, read by the command line, recipes, tests and benchmarks.
PRESET_TABLE: dict[str, Preset] = {
    "anticorrelated": Preset(
        anticorrelated, "seed 001: 2-D Gaussian, mean 0, correlation -0.7", modes_separated=False
    ),
    "mixture-1d": Preset(
        mixture_1d, "seed 003: 1-D 0.1·N(-3, 1) + 0.9·N(3, 1)", modes_separated=True
    ),
    "mixture-2d": Preset(
        mixture_2d,
        "seed 004: 2-D two overlapping components, equal weights",
        modes_separated=False,
    ),
    "ring-8": Preset(
        ring_8,
        "2-D: 8 separated modes (std 0.1) on a circle of radius 2.5, weights ∝ 1..8",
        modes_separated=True,
    ),
    "spiral-2d": Preset(
        spiral_2d,
        "2-D: thin spiral ridge made of 48 overlapping components of std 0.08",
        modes_separated=False,
    ),
    "aniso-16d": Preset(
        aniso_16d,
        "16-D: 4 separated components, per-axis stds 0.05-2, weights 0.4/0.3/0.2/0.1",
        modes_separated=True,
    ),
}
#: Name -> builder (``PRESETS[name]()`` builds the target).
PRESETS: dict[str, Callable[[], Gaussian | GaussianMixture]] = {
    name: preset.build for name, preset in PRESET_TABLE.items()
}
#: Name -> one-line description.
PRESET_DESCRIPTIONS: dict[str, str] = {
    name: preset.description for name, preset in PRESET_TABLE.items()
}


def get_target(name_or_path: str | os.PathLike) -> Gaussian | GaussianMixture:
    """The preset target called ``name_or_path`` (one of ``PRESETS``), or a mixture file.

    A path to a ``.json`` or ``.npz`` mixture is read with
    ``scorelab.targets.files.load_mixture`` (format in that module and the README).
    """
    name = os.fspath(name_or_path)
    if name in PRESETS:
        return PRESETS[name]()
    path = Path(name)
    if path.suffix.lower() in MIXTURE_SUFFIXES or "/" in name or os.sep in name or path.exists():
        return load_mixture(path)
    raise ValueError(
        f"unknown target {name!r}; choose one of {', '.join(sorted(PRESETS))}, "
        "or give a path to a .json/.npz Gaussian-mixture file"
    )


def describe_targets() -> str:
    """One line per preset: name and description (for ``scorelab sample --list``)."""
    width = max(len(n) for n in PRESET_DESCRIPTIONS)
    return "\n".join(f"  {n:<{width}}  {d}" for n, d in PRESET_DESCRIPTIONS.items())
