"""The one evaluation protocol: a distance to the true law, read against its noise floor.

Every number scorelab reports about sample quality — ``scorelab evaluate``, the demo, the recipes,
the benchmarks — is measured by :func:`measure_against_law`, the same way:

- **value**: the distance from the samples (size ``n``) to ``n_references`` (≥ 5) fresh
  independent draws of the true law, each of size ``n``; their mean is the value;
- **floor**: the mean distance between the two sets of ``n_pairs`` (≥ 16) independent pairs of
  true draws of size ``n`` — what sampling noise alone gives at this ``n`` (for the unbiased
  MMD², which is 0 on average between equal laws, the root mean square);
- **ratio** = value / floor;
- **calibration**: ``n_calibration`` further exact independent samples of size ``n``, each scored
  exactly like the samples (against the same references, divided by the same floor): the band a
  perfect sampler lands in (mean ± sd). A ratio inside or below that band is reported as
  ``"at the floor"`` — never as better than the truth.

All draws come from a generator seeded by ``seed`` through :func:`metric_generator`, a stream
that is never a training data stream (it is offset by a fixed salt).

Why the references are independent of the floor pairs: with one shared reference set, its own
deviation from the law is counted in both value and floor and correlates them; fresh draws for
each make the three quantities independent estimates at the same ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scorelab.metrics.distances import (
    DISTANCES,
    Sampler,
    Samples,
    _as_matrix,
    sorted_projection_distance,
    sorted_projections,
)
from scorelab.utils import check_int

#: Added to the caller's seed so that a metric's draws never share a stream with training data
#: drawn from the same seed (a recipe's data at seed 0 and its metric at seed 0 are different).
METRIC_SEED_SALT = 7_919_000_011
#: Minimum numbers of independent draws the protocol accepts (issue: one way to measure).
MIN_PAIRS = 16
MIN_REFERENCES = 5
#: Calibration band half-width, in standard deviations of the exact-sample ratios.
BAND_SDS = 2.0


def metric_generator(seed: int) -> torch.Generator:
    """The CPU generator of every metric draw for ``seed`` (salted away from training streams)."""
    return torch.Generator().manual_seed((int(seed) + METRIC_SEED_SALT) % (2**63 - 1))


@dataclass(frozen=True)
class Measurement:
    """One distance of samples to a law, with its floor and calibration; plain values (JSON).

    ``values``: distance to each reference draw; ``floor_values``: distance within each
    independent true pair; ``calibration_ratios``: the ratio an exact independent sample gets.
    """

    distance: str
    n: int
    value: float
    value_sd: float
    floor: float
    floor_sd: float
    ratio: float
    calibration_mean: float
    calibration_sd: float
    verdict: str
    values: tuple[float, ...] = field(repr=False)
    floor_values: tuple[float, ...] = field(repr=False)
    calibration_ratios: tuple[float, ...] = field(repr=False)

    @property
    def band(self) -> tuple[float, float]:
        """The calibration band ``mean ± 2 sd`` of an exact sample's ratio."""
        half = BAND_SDS * self.calibration_sd
        return self.calibration_mean - half, self.calibration_mean + half

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        out = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    def summary(self) -> str:
        """One line: ``sliced_w2 1.08× the floor (exact sample 1.00 ± 0.05): at the floor``."""
        return (
            f"{self.distance} {self.ratio:.2f}× the floor (exact sample "
            f"{self.calibration_mean:.2f} ± {self.calibration_sd:.2f}): {self.verdict}"
        )


def verdict(ratio: float, calibration_mean: float, calibration_sd: float) -> str:
    """``"at the floor"`` inside or below the band ``mean ± 2 sd``, else ``"above the floor"``."""
    upper = calibration_mean + BAND_SDS * calibration_sd
    return "at the floor" if ratio <= upper else "above the floor"


def _floor(values: np.ndarray) -> float:
    """The floor: the mean distance between independent true pairs; for a distance that can be
    negative (the unbiased MMD², whose mean between equal laws is 0) the root mean square, the
    size of the noise around 0."""
    if bool((values > 0).all()):
        return float(values.mean())
    return float(np.sqrt(np.mean(values**2)))


def _sd(v: np.ndarray) -> float:
    return float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _draw(law: Sampler, n: int, generator: torch.Generator) -> Tensor:
    x = law(n, generator)
    if not isinstance(x, Tensor | np.ndarray) or len(x) != n:
        got = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"law(n, generator) must return n = {n} samples (n, *D); got {got}")
    return torch.as_tensor(x).detach().cpu()


class LawReference:
    """The true-law side of the protocol, drawn and prepared once, to score many sample sets.

    Holds ``n_references`` reference draws, the floor from ``n_pairs`` independent pairs and the
    ratios of ``n_calibration`` exact samples, all of size ``n`` and for each distance name.
    :meth:`measure` then costs ``n_references`` distances per name (for SW₂: one projection sort
    and a few subtractions), so a benchmark scores every sampler and budget against one
    reference per seed. Use :func:`measure_against_law` for a single sample set.
    """

    def __init__(
        self,
        law: Sampler,
        n: int,
        *,
        distances: tuple[str, ...] = ("sliced_w2",),
        n_references: int = MIN_REFERENCES,
        n_pairs: int = MIN_PAIRS,
        n_calibration: int = 12,
        seed: int = 0,
    ) -> None:
        self.n = check_int(n, "n", minimum=2)
        n_references = check_int(n_references, "n_references", minimum=MIN_REFERENCES)
        n_pairs = check_int(n_pairs, "n_pairs", minimum=MIN_PAIRS)
        n_calibration = check_int(n_calibration, "n_calibration", minimum=2)
        if not callable(law):
            raise TypeError("law must be a function (n, generator) -> (n, *D) of independent draws")
        unknown = [d for d in distances if d not in DISTANCES]
        if unknown or not distances:
            raise ValueError(f"distances must name some of {sorted(DISTANCES)}; got {distances!r}")
        gen = metric_generator(seed)
        refs = [_draw(law, self.n, gen) for _ in range(n_references)]
        pairs = [(_draw(law, self.n, gen), _draw(law, self.n, gen)) for _ in range(n_pairs)]
        exact = [_draw(law, self.n, gen) for _ in range(n_calibration)]
        self._parts: dict[str, tuple[Callable, Callable, list, np.ndarray, np.ndarray]] = {}
        for name in distances:
            prepare, dist = _prepared(name)
            refs_p = [prepare(r) for r in refs]
            floors = np.array([dist(prepare(a), prepare(b)) for a, b in pairs])
            scale = _floor(floors)
            scale = scale if scale > 0 else math.inf
            calib = np.array(
                [np.mean([dist(prepare(e), r) for r in refs_p]) / scale for e in exact]
            )
            self._parts[name] = (prepare, dist, refs_p, floors, calib)

    def measure(self, samples: Samples) -> dict[str, Measurement]:
        """One :class:`Measurement` per distance for ``samples`` ``(n, *D)``."""
        x = _as_matrix(samples, "samples")
        if x.shape[0] != self.n:
            raise ValueError(
                f"samples must hold n = {self.n} rows, the size of the reference; got {x.shape[0]}"
            )
        return {name: self._measure(name, x) for name in self._parts}

    def _measure(self, name: str, samples: Tensor) -> Measurement:
        prepare, dist, refs_p, floors, calib = self._parts[name]
        prepared = prepare(samples)
        values = np.array([dist(prepared, r) for r in refs_p])
        floor = _floor(floors)
        ratio = float(values.mean()) / (floor if floor > 0 else math.inf)
        c_mean, c_sd = float(calib.mean()), _sd(calib)
        return Measurement(
            distance=name,
            n=self.n,
            value=float(values.mean()),
            value_sd=_sd(values),
            floor=floor,
            floor_sd=_sd(floors),
            ratio=ratio,
            calibration_mean=c_mean,
            calibration_sd=c_sd,
            verdict=verdict(ratio, c_mean, c_sd),
            values=tuple(values.tolist()),
            floor_values=tuple(floors.tolist()),
            calibration_ratios=tuple(calib.tolist()),
        )


def measure_against_law(
    samples: Samples,
    law: Sampler,
    *,
    distances: tuple[str, ...] = ("sliced_w2",),
    n_references: int = MIN_REFERENCES,
    n_pairs: int = MIN_PAIRS,
    n_calibration: int = 12,
    seed: int = 0,
) -> dict[str, Measurement]:
    """Measure ``samples`` ``(n, *D)`` against the law drawn by ``law(n, generator)``.

    Returns one :class:`Measurement` per distance name (keys of
    :data:`scorelab.metrics.DISTANCES`). See the module docstring for the protocol; all sets
    have the size ``n`` of ``samples``. Cost: ``n_references + 2·n_pairs + n_calibration`` true
    draws and ``(1 + n_calibration)·n_references + n_pairs`` distances per distance name.
    """
    n = _as_matrix(samples, "samples").shape[0]
    reference = LawReference(
        law,
        n,
        distances=distances,
        n_references=n_references,
        n_pairs=n_pairs,
        n_calibration=n_calibration,
        seed=seed,
    )
    return reference.measure(samples)


def _prepared(name: str) -> tuple[Callable[[Tensor], Any], Callable[[Any, Any], float]]:
    """``(prepare, distance)``: SW₂ sorts each set's projections once (sorting is its cost)."""
    if name == "sliced_w2":
        return sorted_projections, sorted_projection_distance
    return (lambda x: x), DISTANCES[name]


def law_of_set(points: Tensor) -> Sampler:
    """A law for held-out data (files, images): draws of ``n`` distinct rows of ``points``.

    Rows are drawn without replacement within one draw; different draws may share rows, so
    the floor is slightly lower than for a law with infinite support. Use ``n`` at most half of
    ``len(points)`` (the closer to it, the more the draws overlap): :func:`measure_against_law`
    then compares the samples with held-out data on the same footing as the floor.
    """
    if not isinstance(points, Tensor) or points.ndim < 2:
        raise ValueError("points must be a tensor of held-out data (N, *D)")

    def draw(n: int, generator: torch.Generator) -> Tensor:
        if n > points.shape[0]:
            raise ValueError(
                f"cannot draw {n} distinct rows of a held-out set of {points.shape[0]}; "
                "lower -n or hold out more data"
            )
        return points[torch.randperm(points.shape[0], generator=generator)[:n]]

    return draw


def measurements_to_dict(results: dict[str, Measurement]) -> dict[str, dict[str, Any]]:
    """``{distance: Measurement.to_dict()}`` for a JSON report."""
    return {k: m.to_dict() for k, m in results.items()}
