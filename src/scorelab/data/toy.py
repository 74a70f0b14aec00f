"""Toy point clouds of the seeds (two moons, swiss roll), named data sets and a seeded split.

``moons`` is the data of seed 000 (scikit-learn ``make_moons``, noise 0.1) and ``swiss_roll`` the
data of seed 001 (scikit-learn ``make_swiss_roll``, noise 0.5, columns 0 and 2, divided by 10).
scikit-learn draws from a NumPy ``RandomState``, not from a ``torch.Generator``: both samplers take
an integer ``seed`` (same seed, same points), or a ``generator`` from which one integer seed is
drawn, so a seeded torch pipeline stays reproducible.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from scorelab.data.files import SUFFIXES, load_points
from scorelab.utils import check_int, check_positive

#: Analytic targets of ``scorelab.targets.presets`` that ``load_dataset`` accepts by name
#: (the names of ``scorelab.targets.PRESETS``; a test keeps the two equal).
TARGET_NAMES: tuple[str, ...] = (
    "anticorrelated",
    "mixture-1d",
    "mixture-2d",
    "ring-8",
    "spiral-2d",
    "aniso-16d",
)
#: Points drawn from a generated data set when ``load_dataset`` is given no ``n`` (seed 000 count).
DEFAULT_N = 5000


def _sklearn_seed(seed: int | None, generator: torch.Generator | None) -> int | None:
    """Integer seed for scikit-learn: ``seed`` itself, else one drawn from ``generator``."""
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    if seed is not None:
        return check_int(seed, "seed", minimum=0)
    if generator is not None:
        return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return None


def moons(
    n: int,
    *,
    noise: float = 0.1,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    independent: bool = False,
) -> Tensor:
    """Two interleaving half circles (scikit-learn ``make_moons``; seed 000), float32 ``(n, 2)``.

    ``noise`` is the std of the Gaussian noise added to each point. The same ``seed`` (int) gives
    the same points; a ``generator`` gives one seed; neither gives fresh points each call.

    ``make_moons`` is a stratified draw: exactly ``n // 2`` points on the upper moon, at evenly
    spaced angles. Its law (the limit of that set) is: a fair coin picks the moon, the angle is
    U[0, π], then the noise; ``independent=True`` draws ``n`` independent points of that law.
    Two stratified sets lie closer to each other than independent samples can come to either
    (measured: sliced-W2 ×1.9 for n = 5000), so a noise floor for a sampler of independent
    points is measured with independent draws (see ``TOY_LAWS``).
    """
    n = check_int(n, "n")
    noise = check_positive(noise, "noise", strict=False)
    seed = _sklearn_seed(seed, generator)
    if independent:
        rng = np.random.RandomState(seed)
        t = rng.uniform(0.0, np.pi, n)
        upper = rng.uniform(size=n) < 0.5
        x = np.where(
            upper[:, None],
            np.stack([np.cos(t), np.sin(t)], 1),
            np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], 1),
        )
        x = x + noise * rng.standard_normal((n, 2))
    else:
        from sklearn.datasets import make_moons  # imported here: sklearn.datasets is slow

        x, _ = make_moons(n_samples=n, noise=noise, random_state=seed)
    return torch.from_numpy(x.astype(np.float32))


def swiss_roll(
    n: int,
    *,
    noise: float = 0.5,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """2-D swiss roll of seed 001: ``make_swiss_roll`` columns 0 and 2, divided by 10, ``(n, 2)``.

    ``noise`` is the std of the Gaussian noise scikit-learn adds before the division (so the
    returned points carry noise of std ``noise / 10``). Seeding as in :func:`moons`.
    """
    from sklearn.datasets import make_swiss_roll

    n = check_int(n, "n")
    noise = check_positive(noise, "noise", strict=False)
    x, _ = make_swiss_roll(n_samples=n, noise=noise, random_state=_sklearn_seed(seed, generator))
    return torch.from_numpy((x[:, [0, 2]] / 10.0).astype(np.float32))


#: The toy data sets by their command-line names.
TOY_DATASETS: dict[str, Callable[..., Tensor]] = {"moons": moons, "swiss-roll": swiss_roll}
#: Independent draws of each toy set's law, ``(n, *, seed) -> (n, 2)``: the reference for noise
#: floors (``make_swiss_roll`` already draws independently; ``make_moons`` does not).
TOY_LAWS: dict[str, Callable[..., Tensor]] = {
    "moons": functools.partial(moons, independent=True),
    "swiss-roll": swiss_roll,
}


def _looks_like_path(name: str) -> bool:
    """True when ``name`` is meant as a file: it exists, has a known suffix or a folder in it."""
    return (
        Path(name).suffix.lower() in SUFFIXES
        or os.sep in name
        or "/" in name
        or Path(name).exists()
    )


def is_mixture_path(name_or_path: str | os.PathLike) -> bool:
    """True when ``name_or_path`` names a Gaussian-mixture file rather than a file of points.

    A ``.json`` path (even a missing one, so that loading it reports why), or an ``.npz`` archive
    holding ``weights`` and ``means`` (``scorelab.targets.files.is_mixture_file``).
    """
    name = os.fspath(name_or_path)
    if Path(name).suffix.lower() not in (".json", ".npz"):
        return False
    # Imported here: targets is a sibling package and data must not need it to import.
    from scorelab.targets.files import is_mixture_file

    return is_mixture_file(name)


def is_target_source(name_or_path: str | os.PathLike) -> bool:
    """True when a data source has an exact law: a preset target name or a mixture file.

    Such a source has an exact score (``scorelab.targets.get_target(source).noised_score``) to
    compare a learned one with, and fresh draws from ``load_dataset(source, n, seed)``.
    """
    return os.fspath(name_or_path) in TARGET_NAMES or is_mixture_path(name_or_path)


def _target_samples(name: str, n: int | None, seed: int) -> Tensor:
    """``n`` (default 5000) exact samples of a preset or mixture file, float32 ``(n, D)``."""
    size = check_int(DEFAULT_N if n is None else n, "n")
    if name in TARGET_NAMES:
        # Imported here: targets is a sibling package and data must not need it to import.
        from scorelab.targets.presets import get_target

        target = get_target(name)
    else:
        from scorelab.targets.files import load_mixture

        target = load_mixture(name)
    x = target.sample(size, generator=torch.Generator().manual_seed(seed))
    return x.reshape(size, -1).to(torch.float32)


def load_dataset(name_or_path: str | os.PathLike, n: int | None = None, seed: int = 0) -> Tensor:
    """A named toy set, samples of a named analytic target, or the points of a file: ``(N, D)``.

    - ``"moons"``, ``"swiss-roll"``: ``n`` points (default 5000) drawn with ``seed``;
    - a preset target name (``TARGET_NAMES``: ``"anticorrelated"``, ``"mixture-1d"``,
      ``"ring-8"``, ...): ``n`` exact samples of ``scorelab.targets.presets.get_target(name)``
      drawn with a generator seeded ``seed``;
    - a Gaussian-mixture file (``.json``, or ``.npz`` with ``weights``/``means``/``covs``; see
      ``scorelab.targets.files``): ``n`` (default 5000) exact samples of it, drawn the same way;
    - a ``.npy``/``.npz``/``.csv`` path of points: all its rows
      (:func:`scorelab.data.files.load_points`), or a random subset of ``n`` rows chosen with
      ``seed`` when ``n`` is given.

    Always float32 on the CPU. Raises ``ValueError`` for an unknown name.
    """
    seed = check_int(seed, "seed", minimum=0)
    name = os.fspath(name_or_path)
    if name in TOY_DATASETS:
        return TOY_DATASETS[name](DEFAULT_N if n is None else n, seed=seed)
    if is_target_source(name):
        return _target_samples(name, n, seed)
    if _looks_like_path(name):
        return _subset_rows(load_points(name), n, seed, name)
    valid = ", ".join(repr(k) for k in (*TOY_DATASETS, *TARGET_NAMES))
    raise ValueError(
        f"unknown data set {name!r}: valid names are {valid}; a path to a "
        f"{'/'.join(SUFFIXES)} file of points (N, D) or to a .json/.npz Gaussian-mixture file "
        "is also accepted"
    )


def _subset_rows(x: Tensor, n: int | None, seed: int, name: str) -> Tensor:
    """All rows of ``x`` (``n`` is None) or ``n`` rows drawn without replacement with ``seed``."""
    if n is None:
        return x
    n = check_int(n, "n")
    if n > x.shape[0]:
        raise ValueError(f"n={n} is more than the {x.shape[0]} rows of {name}; lower n")
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx.sort().values]


def split_indices(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Shuffled train/test index split of ``range(n)``: ``(train_idx, test_idx)``, both non-empty.

    The test part has ``round(test_fraction · n)`` indices (at least 1, at most ``n - 1``); the
    permutation comes from a ``torch.Generator`` seeded ``seed``, so the split is fixed by ``seed``.
    """
    n = check_int(n, "n", minimum=2)
    test_fraction = check_positive(test_fraction, "test_fraction")
    if test_fraction >= 1:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
    n_test = min(max(round(test_fraction * n), 1), n - 1)
    perm = torch.randperm(
        n, generator=torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    )
    return perm[n_test:], perm[:n_test]


def train_test_split(x: Tensor, test_fraction: float = 0.2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Rows of ``x`` ``(N, *D)`` split at random into ``(train, test)`` by :func:`split_indices`."""
    if x.shape[0] < 2:
        raise ValueError(
            f"x holds {x.shape[0]} row(s); at least 2 are needed to split it into train and test"
        )
    train_idx, test_idx = split_indices(x.shape[0], test_fraction, seed)
    return x[train_idx], x[test_idx]
