"""Small helpers shared by every module: broadcasting, validation, atomic writes."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

#: The one currency of scorelab: ``score(x, sigma) -> ∇ₓ log p_σ(x)`` where ``x`` has shape
#: ``(B, *D)``, ``sigma`` shape ``(B,)``, ``p_σ = p ∗ N(0, σ² I)`` (variance-exploding convention).
ScoreFn = Callable[[Tensor, Tensor], Tensor]
#: A score of ``x`` alone (no noise level): ``score(x) -> ∇ₓ log p(x)``.
CleanScoreFn = Callable[[Tensor], Tensor]
#: A class-conditional score ``score(x, sigma, y) -> ∇ₓ log p_σ(x | y)`` with integer labels
#: ``y`` of shape ``(B,)``; the label :data:`NULL_LABEL` asks for the unconditional score
#: ``∇ₓ log p_σ(x)`` (one network for both, as classifier-free guidance needs; Ho & Salimans 2022).
ConditionalScoreFn = Callable[[Tensor, Tensor, Tensor], Tensor]
#: The "no label" value of a class-conditional score or network (see ``ConditionalScoreFn``).
NULL_LABEL = -1


def append_dims(v: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton dims so a ``(B,)`` tensor broadcasts against ``(B, *D)``."""
    missing = ndim - v.ndim
    if missing < 0:
        raise ValueError(f"cannot broadcast a tensor of rank {v.ndim} to rank {ndim}")
    return v.reshape(*v.shape, *([1] * missing))


def sum_except_batch(x: Tensor) -> Tensor:
    """Sum over every dimension but the first: ``(B, *D) -> (B,)``."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


def batch_sigma(sigma: float | Tensor, x: Tensor, name: str = "sigma") -> Tensor:
    """Turn a float, 0-d or ``(B,)`` noise level into a ``(B,)`` tensor on ``x``'s device/dtype.

    Raises ``ValueError`` for non-positive or non-finite values and for a wrong batch size.
    """
    s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if s.ndim == 0:
        s = s.expand(x.shape[0])
    elif s.ndim != 1 or s.shape[0] != x.shape[0]:
        raise ValueError(
            f"{name} must be a number or a tensor of shape (B,) = ({x.shape[0]},); "
            f"got shape {tuple(s.shape)}"
        )
    if not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
        raise ValueError(f"{name} must be finite and > 0; got min {float(s.min()):.3g}")
    return s


def check_finite(x: Tensor, name: str = "x", hint: str = "") -> Tensor:
    """Raise ``ValueError`` naming ``name`` (and a fix, ``hint``) if ``x`` holds NaN or Inf."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).reshape(x.shape[0], -1).any(dim=1).sum()) if x.ndim else 1
        msg = f"{name} holds non-finite values (NaN or Inf) in {bad} row(s)"
        raise ValueError(msg + (f"; {hint}" if hint else ""))
    return x


def check_positive(value: float, name: str, *, strict: bool = True) -> float:
    """Validate a scalar option: finite and > 0 (or >= 0 when ``strict`` is False)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(v) or (v <= 0 if strict else v < 0):
        raise ValueError(
            f"{name} must be a finite number {'>' if strict else '>='} 0; got {value!r}"
        )
    return v


#: Largest noise level accepted anywhere: σ² must stay finite in float64 (it overflows above
#: ~1.3e154, and Python's ``sigma**2`` then raises ``OverflowError``); a margin is kept for the
#: products of σ² with other terms.
MAX_SIGMA = 1e150


def check_noise_level(value: float, name: str) -> float:
    """Validate a noise level: finite, > 0 and at most :data:`MAX_SIGMA` (so σ² is finite)."""
    v = check_positive(value, name)
    if v > MAX_SIGMA:
        raise ValueError(
            f"{name}={v:.3g} is above {MAX_SIGMA:g}: its square overflows a float; use a {name} "
            "of a few times the data's scale"
        )
    return v


def check_generator(
    generator: object, device: torch.device | str, name: str = "generator"
) -> torch.Generator | None:
    """Check that ``generator`` is ``None`` or a ``torch.Generator`` on ``device``'s type.

    Called where a stochastic function validates its tensors, so that a seed passed as an int or
    a CPU generator with CUDA tensors is one clear error instead of torch's multi-line one.
    """
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"{name} must be a torch.Generator or None; got {type(generator).__name__} "
            "(use torch.Generator().manual_seed(seed))"
        )
    device = torch.device(device)
    if generator.device.type != device.type:
        raise ValueError(
            f"{name} is on {generator.device} but the tensors are on {device}: create it with "
            f"torch.Generator(device={device.type!r})"
        )
    return generator


def check_module_input(module: nn.Module, x: Tensor, name: str = "x") -> None:
    """Check that ``x`` has the dtype and device of ``module``'s weights (if it has any).

    A mismatch otherwise fails deep inside torch ("mat1 and mat2 must have the same dtype").
    """
    p = next(module.parameters(), None)
    if p is not None and isinstance(x, Tensor) and (x.dtype != p.dtype or x.device != p.device):
        raise TypeError(
            f"{name} is {x.dtype} on {x.device} but the network's weights are {p.dtype} on "
            f"{p.device}: pass {name}.to(dtype={p.dtype}, device='{p.device}') or move the "
            "network with model.to(...)"
        )


def seeded_module(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with its initial weights a function of ``seed`` alone.

    ``nn.Linear``/``nn.Conv2d`` draw their initial weights from the global RNG; ``fork_rng``
    seeds it only inside this call and restores the caller's state afterwards, so no global
    seeding leaks out.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def check_int(value: int, name: str, *, minimum: int = 1) -> int:
    """Validate an integer option (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | torch.SymInt):
        try:
            if float(value) != int(value):
                raise ValueError
            value = int(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an integer; got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return int(value)


def _umask_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file (``mkstemp`` uses 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_writer(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    For libraries that only write to a path (``np.save``, ``torch.save``, ``savefig``): nothing is
    left half-written if ``write`` raises or the process dies.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def checked_npy_path(path: Path, flag: str = "--out") -> Path:
    """Check an output .npy path before any work: its suffix and a writable folder."""
    return checked_output_path(path, flag, ".npy")


def checked_output_path(path: Path, flag: str, suffix: str) -> Path:
    """Check an output path before any work: its ``suffix`` and a writable folder."""
    path = Path(path)
    if path.suffix != suffix:
        raise ValueError(f"{flag} must end in {suffix}; got {str(path)!r}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PermissionError(
            f"cannot create the folder of {flag} {str(path)!r}: {exc.strerror}; "
            f"choose another {flag}"
        ) from None
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(
            f"the folder of {flag} {str(path)!r} is not writable; choose another {flag}"
        )
    return path


def save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` (.npy) atomically, creating the folder."""
    atomic_writer(checked_npy_path(path), lambda tmp: np.save(tmp, array))


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, unsafe or from another version; the message says what
    to do."""
