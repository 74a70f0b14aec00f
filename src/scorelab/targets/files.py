"""Gaussian mixtures read from and written to ``.json`` or ``.npz`` files, validated on load.

A mixture file holds three arrays (any number of components ``K``, any dimension ``D``):

- ``weights`` ``(K,)``: non-negative, not all zero; normalised to sum 1 on load;
- ``means`` ``(K, D)``: one row per component (for ``D = 1`` write ``[[m1], [m2], ...]``);
- ``covs`` (or ``covariances``), one of three forms told apart by their rank:
  ``(K, D, D)`` full matrices (symmetric positive definite), ``(K, D)`` the diagonals of diagonal
  matrices (all ``> 0``), or ``(K,)`` one variance ``c_k > 0`` per component (``Σ_k = c_k I``).

A ``.json`` file is one object with those keys (an optional ``"description"`` string is allowed
and ignored); an ``.npz`` archive (``np.savez``) holds them as arrays. An ``.npz`` of *points*
(``scorelab.data.files``) is told apart by its keys: a mixture has ``weights`` and ``means``.
Every problem raises :class:`MixtureFileError` (a ``ValueError``) naming the file, the key, the
component and the fix. The mixture itself is ``scorelab.targets.mixture.GaussianMixture``.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from scorelab.targets.gaussian import _check_covariances
from scorelab.targets.mixture import GaussianMixture
from scorelab.utils import atomic_write_bytes, atomic_writer

#: File suffixes a mixture can be read from and written to.
MIXTURE_SUFFIXES: tuple[str, ...] = (".json", ".npz")
#: Accepted names of the covariance array (either, not both).
COV_KEYS: tuple[str, ...] = ("covs", "covariances")
#: Keys a mixture file may hold; ``description`` (JSON only) is documentation and is ignored.
MIXTURE_KEYS: tuple[str, ...] = ("weights", "means", *COV_KEYS, "description")


class MixtureFileError(ValueError):
    """A mixture file (or mapping) that is missing, unreadable or holds an invalid mixture."""


# ----------------------------------------------------------------------------------------------
# Arrays -> GaussianMixture
# ----------------------------------------------------------------------------------------------


def _numeric(value: object, key: str, where: str) -> np.ndarray:
    """``value`` as a finite float64 array, or an error naming ``key`` and the first bad entry."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        arr = None
    if arr is None or arr.dtype.kind not in "iuf":
        kind = "ragged nested lists" if arr is None or arr.dtype == object else f"{arr.dtype}"
        raise MixtureFileError(
            f"{where}: {key!r} must be an array of real numbers with rows of equal length; "
            f"got {kind}"
        )
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise MixtureFileError(
            f"{where}: {key!r} holds {int(bad.sum())} non-finite value(s) (NaN or Inf), the "
            f"first at index {list(index)}; write finite numbers"
        )
    return arr


def _full_covariances(covs: np.ndarray, k: int, d: int, key: str, where: str) -> torch.Tensor:
    """Expand ``(K,)`` scalars or ``(K, D)`` diagonals to ``(K, D, D)``; check each component."""
    forms = (
        f"(K, D, D) = ({k}, {d}, {d}) full, (K, D) = ({k}, {d}) diagonal or (K,) = ({k},) scalar"
    )
    expected = {1: (k,), 2: (k, d), 3: (k, d, d)}
    if covs.ndim not in expected or covs.shape != expected[covs.ndim]:
        raise MixtureFileError(
            f"{where}: {key!r} has shape {covs.shape}; with means of shape ({k}, {d}) it must be "
            f"{forms}"
        )
    if covs.ndim < 3:
        flat = covs.reshape(k, -1)
        bad = np.argwhere(flat <= 0)
        if len(bad):
            comp, axis = (int(i) for i in bad[0])
            what = "variance" if covs.ndim == 1 else f"variance on axis {axis}"
            raise MixtureFileError(
                f"{where}: {key!r} of component {comp} has {what} {flat[comp, axis]:.3g}; "
                "variances must be > 0 (a scalar or diagonal entry is a variance, not a std)"
            )
        diag = np.broadcast_to(flat, (k, d))
        full = np.zeros((k, d, d))
        full[:, np.arange(d), np.arange(d)] = diag
        return torch.from_numpy(full)
    out = torch.from_numpy(covs)
    for comp in range(k):
        try:
            _check_covariances(out[comp], f"{key}[{comp}]")
        except ValueError as err:
            raise MixtureFileError(f"{where}: component {comp}: {err}") from None
    return out


def mixture_from_arrays(
    weights: object, means: object, covs: object, *, where: str = "mixture", key: str = "covs"
) -> GaussianMixture:
    """Validate mixture arrays and build a ``GaussianMixture`` (see the module docstring).

    ``weights`` ``(K,)`` (normalised here), ``means`` ``(K, D)``, ``covs`` ``(K, D, D)``,
    ``(K, D)`` or ``(K,)``. ``where`` and ``key`` only shape the error messages.
    Raises :class:`MixtureFileError` naming the first problem found.
    """
    means_a = _numeric(means, "means", where)
    if means_a.ndim != 2 or 0 in means_a.shape:
        hint = " (for 1-D components write [[m1], [m2], ...])" if means_a.ndim == 1 else ""
        raise MixtureFileError(
            f"{where}: 'means' must have shape (K, D) with K, D >= 1; got {means_a.shape}{hint}"
        )
    k, d = means_a.shape
    weights_a = _numeric(weights, "weights", where)
    if weights_a.shape != (k,):
        raise MixtureFileError(
            f"{where}: 'weights' must have shape (K,) = ({k},), one per row of 'means'; "
            f"got {weights_a.shape}"
        )
    if (weights_a < 0).any():
        comp = int(np.argmax(weights_a < 0))
        raise MixtureFileError(
            f"{where}: 'weights' must be >= 0; component {comp} has weight {weights_a[comp]:.3g}"
        )
    if not weights_a.sum() > 0:
        raise MixtureFileError(
            f"{where}: 'weights' are all zero; give at least one component a weight > 0 "
            "(weights need not sum to 1: they are normalised)"
        )
    full = _full_covariances(_numeric(covs, key, where), k, d, key, where)
    try:
        return GaussianMixture(torch.from_numpy(means_a), full, torch.from_numpy(weights_a))
    except ValueError as err:  # e.g. a condition number GaussianMixture refuses
        raise MixtureFileError(f"{where}: {err}") from None


def mixture_from_dict(data: Mapping[str, object], where: str = "mixture") -> GaussianMixture:
    """Build a mixture from a mapping with keys ``weights``, ``means``, ``covs``/``covariances``."""
    if not isinstance(data, Mapping):
        raise MixtureFileError(
            f"{where} must hold one object with keys 'weights', 'means', 'covs'; "
            f"got {type(data).__name__}"
        )
    unknown = sorted(set(data) - set(MIXTURE_KEYS))
    if unknown:
        raise MixtureFileError(
            f"{where}: unknown key(s) {unknown}; a mixture has keys 'weights', 'means', "
            f"'covs' (or 'covariances') and an optional 'description'"
        )
    present = [key for key in COV_KEYS if key in data]
    if len(present) == 2:
        raise MixtureFileError(f"{where}: give either 'covs' or 'covariances', not both")
    missing = [key for key in ("weights", "means") if key not in data]
    if not present:
        missing.append("covs")
    if missing:
        raise MixtureFileError(
            f"{where}: missing key(s) {missing}; a mixture needs 'weights' (K,), 'means' (K, D) "
            "and 'covs' (K, D, D), (K, D) or (K,)"
        )
    if "description" in data and not isinstance(data["description"], str):
        raise MixtureFileError(f"{where}: 'description' must be a string")
    return mixture_from_arrays(
        data["weights"], data["means"], data[present[0]], where=where, key=present[0]
    )


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------


def _npz_keys(path: Path) -> list[str] | None:
    """Array names of an ``.npz`` archive, or ``None`` when it is not a readable zip archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [n[:-4] if n.endswith(".npy") else n for n in archive.namelist()]
    except (OSError, zipfile.BadZipFile):
        return None


def is_mixture_file(path: str | os.PathLike) -> bool:
    """True for a ``.json`` path, or an existing ``.npz`` archive holding ``weights`` and ``means``.

    An ``.npz`` of points (``scorelab.data.files.load_points``) gives ``False``. A ``.json`` path
    gives ``True`` even when missing, so that :func:`load_mixture` reports what is wrong with it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return True
    if suffix != ".npz" or not path.is_file():
        return False
    keys = _npz_keys(path)
    return keys is not None and {"weights", "means"} <= set(keys)


def _read_json(path: Path, where: str) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise MixtureFileError(f"{where} is not UTF-8 text; write the mixture as JSON") from None
    except json.JSONDecodeError as err:
        raise MixtureFileError(
            f"{where} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
        ) from None


def _read_npz(path: Path, where: str) -> dict[str, np.ndarray]:
    if _npz_keys(path) is None:
        raise MixtureFileError(f"{where} is not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {key: archive[key] for key in archive.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise MixtureFileError(
                f"{where} holds Python objects (pickled arrays); store numeric arrays only"
            ) from None
        raise MixtureFileError(f"{where} is not a readable .npz file: {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise MixtureFileError(f"{where} is not a readable .npz file: {err}") from None
    if "weights" not in data or "means" not in data:
        raise MixtureFileError(
            f"{where} holds arrays {sorted(data)}, not a mixture: a mixture .npz needs arrays "
            "'weights', 'means' and 'covs' (an .npz of points is data for --data, not a target)"
        )
    if "description" in data:
        raise MixtureFileError(f"{where}: 'description' is for JSON files; drop it from the .npz")
    return data


def load_mixture(path: str | os.PathLike) -> GaussianMixture:
    """Read a Gaussian mixture from a ``.json`` or ``.npz`` file (format: module docstring).

    Raises :class:`MixtureFileError` for a missing, empty or unreadable file, an unknown suffix,
    missing or unknown keys, non-numeric or non-finite values, shapes that do not match, negative
    or all-zero weights, and covariances that are not positive definite (naming the component).
    """
    path = Path(path)
    where = f"mixture file {str(path)!r}"
    if not path.is_file():
        state = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise MixtureFileError(f"{where} {state}")
    suffix = path.suffix.lower()
    if suffix not in MIXTURE_SUFFIXES:
        raise MixtureFileError(f"{where} has unknown extension {path.suffix!r}; use .json or .npz")
    if path.stat().st_size == 0:
        raise MixtureFileError(f"{where} is empty (0 bytes)")
    data = _read_json(path, where) if suffix == ".json" else _read_npz(path, where)
    return mixture_from_dict(data, where)  # type: ignore[arg-type]


def mixture_to_dict(mixture: GaussianMixture) -> dict[str, list]:
    """``{"weights", "means", "covs"}`` as nested lists of floats (full ``(K, D, D)`` covs)."""
    return {
        "weights": mixture.weights.tolist(),
        "means": mixture.means.tolist(),
        "covs": mixture.covs.tolist(),
    }


def save_mixture(mixture: GaussianMixture, path: str | os.PathLike) -> None:
    """Write ``mixture`` to a ``.json`` or ``.npz`` file (atomically), readable by ``load_mixture``.

    Values are float64 and JSON keeps every digit (``repr`` of a float), so both forms load back
    to the same mixture.
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError(f"mixture must be a GaussianMixture; got {type(mixture).__name__}")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = json.dumps(mixture_to_dict(mixture), indent=1) + "\n"
        atomic_write_bytes(path, text.encode("utf-8"))
    elif suffix == ".npz":
        arrays = {
            "weights": mixture.weights.numpy(),
            "means": mixture.means.numpy(),
            "covs": mixture.covs.numpy(),
        }

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
                np.savez(f, **arrays)

        atomic_writer(path, write)
    else:
        raise ValueError(f"path must end in .json or .npz; got {str(path)!r}")
