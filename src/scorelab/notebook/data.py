"""The seeds' data helpers as thin shells over ``scorelab.data`` and ``scorelab.targets``.

- ``generate_moons_data`` (seed 000): two moons, split 80/20, with their moon labels.
- ``sample_batch`` (seed 001): the 2-D swiss roll (``scorelab.data.swiss_roll``).
- ``sample_X_and_score_t_depend`` (seed 004): points of the diffused mixture p_t with their exact
  score ∇log p_t and time t, on a uniform grid of times (``GaussianMixture.noised``).

Randomness: scikit-learn draws from NumPy; as in ``scorelab.data`` an integer ``seed`` or a
``generator`` (one seed is drawn from it) fixes the points; with neither, the points are fresh.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from scorelab.data import swiss_roll
from scorelab.data.toy import _sklearn_seed
from scorelab.notebook.seed004 import GaussianMixture, sigma_t
from scorelab.targets import GaussianMixture as _CoreMixture
from scorelab.utils import check_int, check_positive

__all__ = ["generate_moons_data", "sample_X_and_score_t_depend", "sample_batch"]

#: Fraction of ``generate_moons_data`` points that go to the training part (seed 000).
TRAIN_FRACTION = 0.8


def generate_moons_data(
    count: int,
    *,
    noise: float = 0.1,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Two moons (scikit-learn ``make_moons``, shuffled) split 80/20: seed 000's data.

    Returns ``(train_data, train_labels, test_data, test_labels)``: float32 points ``(m, 2)`` and
    int64 moon labels ``(m,)`` (0 upper, 1 lower), the first ``int(0.8·count)`` rows for training
    and the rest for testing. The points are those of ``scorelab.data.moons(count, noise=noise,
    seed=seed)`` (same seed, same points), which gives no labels.
    """
    from sklearn.datasets import make_moons  # imported here: sklearn.datasets is slow

    count = check_int(count, "count", minimum=2)
    noise = check_positive(noise, "noise", strict=False)
    x, labels = make_moons(
        n_samples=count, noise=noise, random_state=_sklearn_seed(seed, generator)
    )
    x = x.astype(np.float32)
    split = int(TRAIN_FRACTION * count)
    return x[:split], labels[:split], x[split:], labels[split:]


def sample_batch(
    size: int,
    noise: float = 0.5,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> np.ndarray:
    """``size`` points of seed 001's swiss roll, ``(size, 2)`` float64: columns 0 and 2 over 10.

    ``scorelab.data.swiss_roll`` (scikit-learn ``make_swiss_roll`` with noise std ``noise`` before
    the division), computed in float32 there.
    """
    return swiss_roll(size, noise=noise, seed=seed, generator=generator).double().numpy()


def _core_mixture(gmm: object) -> _CoreMixture:
    if isinstance(gmm, GaussianMixture):
        return gmm.target
    if isinstance(gmm, _CoreMixture):
        return gmm
    raise TypeError(
        "gmm must be a scorelab.notebook.GaussianMixture (or a scorelab.targets.GaussianMixture); "
        f"got {type(gmm).__name__}"
    )


def sample_X_and_score_t_depend(  # noqa: N802 (the seed's name)
    gmm: GaussianMixture,
    trainN: int = 10000,  # noqa: N803
    sigma: float = 5,
    partition: int = 20,
    EPS: float = 0.02,  # noqa: N803
    *,
    diffused: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Points x ~ p_t with their exact score ∇log p_t(x) and time t (seed 004), float32 tensors.

    ``partition`` times ``t = linspace(EPS, 1, partition)``; at each ``trainN // partition``
    exact samples ``x_0 + σ_t z`` of the diffused mixture p_t = p ∗ N(0, σ_t² I) of dx = λ^t dw
    (``sigma`` is λ, σ_t² = (λ^{2t} − 1)/(2 ln λ)) and its exact, tail-stable score
    (``scorelab.targets.GaussianMixture.noised_score``). Returns ``(X (N, D),
    scores (N, D), T (N,))`` with ``N = partition · (trainN // partition)``: the pairs on which a
    time-conditioned network ``s(x, t)`` is measured against the truth.

    The seed's cell builds p_t but then samples and scores the clean mixture at every t (its
    docstring asks for p_t); ``diffused=False`` reproduces that: x ~ p_0 and ∇log p_0(x).
    """
    target = _core_mixture(gmm)
    trainN = check_int(trainN, "trainN")  # noqa: N806
    partition = check_int(partition, "partition")
    per_time = trainN // partition
    if per_time < 1:
        raise ValueError(f"trainN={trainN} must be >= partition={partition} (one point per time)")
    EPS = check_positive(EPS, "EPS")  # noqa: N806
    if EPS > 1:
        raise ValueError(f"EPS must be in (0, 1] (the first time); got {EPS}")
    times = torch.from_numpy(np.linspace(EPS, 1.0, partition)).repeat_interleave(per_time)
    x0 = target.sample(len(times), generator=generator, dtype=torch.float64)
    if not diffused:
        return x0.float(), target.score(x0).float(), times.float()
    # x_t = x_0 + σ_t z is an exact draw of p_t, and noised_score its exact score at every σ_t.
    sigmas = torch.as_tensor(sigma_t(times, sigma), dtype=torch.float64, device=x0.device)
    z = torch.randn(x0.shape, generator=generator, dtype=torch.float64, device=x0.device)
    x = x0 + sigmas[:, None] * z
    return x.float(), target.noised_score(x, sigmas).float(), times.float()
