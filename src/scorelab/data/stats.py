"""The one record of a data set's statistics, and the one rule for its training noise range.

:class:`DataStats` is what training, sampling and evaluation need to know about data, as plain
values that go into a run's ``config.json`` and a checkpoint: the mean, the covariance (full up
to :data:`MAX_FULL_DIM` dimensions, else per-dimension variances), EDM's ``σ_data`` and the
largest pairwise distance. :func:`data_stats` computes it once; :func:`training_noise_range`
turns it into the training range ``[σ_min, σ_max]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from scorelab.data.noise_levels import IMAGE_SIGMA_MIN, MAX_DISTANCE_POINTS, SIGMA_MIN_FRACTION
from scorelab.utils import check_finite, check_positive

#: Above this many dimensions only per-dimension variances are kept (a 784² covariance of MNIST
#: would be 600 000 numbers in every config.json).
MAX_FULL_DIM = 1024


@dataclass(frozen=True)
class DataStats:
    """Statistics of a data set ``(N, *D)``; plain values (JSON, checkpoints).

    ``mean`` ``(d,)``; ``cov`` ``(d, d)`` as nested lists when ``d <= MAX_FULL_DIM``, else
    ``None`` and ``var`` ``(d,)`` holds the per-dimension variances; ``sigma_data`` is the RMS
    over coordinates of the per-coordinate std (EDM's σ_data); ``sigma_max`` the largest
    pairwise distance (Song & Ermon 2020, technique 1).
    """

    mean: tuple[float, ...]
    cov: tuple[tuple[float, ...], ...] | None
    sigma_data: float
    sigma_max: float
    var: tuple[float, ...] | None = None

    @property
    def dim(self) -> int:
        """Data dimension ``d`` (flattened)."""
        return len(self.mean)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (lists of floats)."""
        out: dict[str, Any] = {
            "mean": list(self.mean),
            "sigma_data": self.sigma_data,
            "sigma_max": self.sigma_max,
        }
        if self.cov is not None:
            out["cov"] = [list(row) for row in self.cov]
        else:
            out["var"] = list(self.var or ())
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataStats:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` naming a missing or bad key."""
        try:
            mean = tuple(float(v) for v in data["mean"])
            cov = data.get("cov")
            cov = None if cov is None else tuple(tuple(float(v) for v in row) for row in cov)
            var = data.get("var")
            var = None if var is None else tuple(float(v) for v in var)
            stats = cls(mean, cov, float(data["sigma_data"]), float(data["sigma_max"]), var)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"data stats must be a dict with mean, cov (or var), sigma_data, sigma_max; "
                f"got {err!r}"
            ) from None
        d = len(mean)
        if cov is not None and (len(cov) != d or any(len(row) != d for row in cov)):
            raise ValueError(f"data stats: cov must be {d}x{d} to match mean")
        if cov is None and (var is None or len(var) != d):
            raise ValueError(f"data stats: give cov ({d}x{d}) or var ({d} values)")
        check_positive(stats.sigma_data, "sigma_data")
        check_positive(stats.sigma_max, "sigma_max")
        return stats

    def mean_tensor(self, dtype: torch.dtype = torch.float32, device: Any = None) -> Tensor:
        """``mean`` as a ``(d,)`` tensor."""
        return torch.tensor(self.mean, dtype=dtype, device=device)

    def cov_tensor(self, dtype: torch.dtype = torch.float32, device: Any = None) -> Tensor:
        """``cov`` as a ``(d, d)`` tensor (diagonal of ``var`` when only variances are kept)."""
        if self.cov is not None:
            return torch.tensor(self.cov, dtype=dtype, device=device)
        return torch.diag(torch.tensor(self.var, dtype=dtype, device=device))


def data_stats(x: Tensor, *, max_full_dim: int = MAX_FULL_DIM) -> DataStats:
    """Mean, covariance, σ_data and σ_max of data ``x`` ``(N, *D)``, computed in float64.

    σ_max is the largest Euclidean distance between two points (Song & Ermon 2020, "Improved
    techniques for training score-based generative models", technique 1) over a fixed random
    subset of at most 2000 points (seeded 0, so the statistics are a function of the data).
    Raises ``ValueError`` for fewer than 2 distinct points or non-finite values.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a tensor of points (N, *D); got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] < 2:
        raise ValueError(f"x must have shape (N, *D) with N >= 2 points; got {tuple(x.shape)}")
    check_finite(x, "x", hint="remove the rows with NaN or Inf")
    flat = x.detach().reshape(x.shape[0], -1).to(torch.float64).cpu()
    mean = flat.mean(dim=0)
    var = flat.var(dim=0, unbiased=False)
    sigma_data = float(var.mean().sqrt())
    pick = torch.randperm(len(flat), generator=torch.Generator().manual_seed(0))
    subset = flat[pick[:MAX_DISTANCE_POINTS]]
    sigma_max = float(torch.cdist(subset, subset).max())
    if sigma_data == 0.0 or sigma_max == 0.0:
        raise ValueError("x holds one distinct point repeated; a score model needs a spread")
    if flat.shape[1] <= max_full_dim:
        cov = torch.atleast_2d(torch.cov(flat.T))
        return DataStats(
            tuple(mean.tolist()), tuple(tuple(r) for r in cov.tolist()), sigma_data, sigma_max
        )
    variances = tuple(flat.var(dim=0).tolist())
    return DataStats(tuple(mean.tolist()), None, sigma_data, sigma_max, variances)


def training_noise_range(stats: DataStats, *, images: bool) -> tuple[float, float]:
    """``(σ_max, σ_min)`` of training: the largest pairwise distance (Song & Ermon 2020,
    technique 1) down to ``SIGMA_MIN_FRACTION·σ_data`` for points or one grey level
    (:data:`IMAGE_SIGMA_MIN`) for 8-bit images. The one training σ-range rule of scorelab."""
    sigma_min = IMAGE_SIGMA_MIN if images else SIGMA_MIN_FRACTION * stats.sigma_data
    return stats.sigma_max, sigma_min
