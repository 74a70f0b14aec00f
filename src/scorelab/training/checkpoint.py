"""Training checkpoints: tensors and plain values only, written atomically, loaded with
``torch.load(weights_only=True)`` so a crafted file cannot run code."""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from scorelab import __version__
from scorelab.utils import (
    CheckpointError,
    atomic_writer,
)

#: Bump when the layout of the state below changes; older checkpoints are then refused clearly.
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
#: Keys every training checkpoint holds (see ``save_checkpoint``).
STATE_KEYS = (
    "format_version",
    "scorelab_version",
    "step",
    "model",
    "ema",
    "optimizer",
    "scheduler",
    "rng",
    "config",
    "model_spec",
    "extra",
    "loop",
)
_HISTORY_PATTERN = re.compile(r"^checkpoint-step(\d+)\.pt$")
_GLOBAL_PATTERN = re.compile(r"Unsupported global: GLOBAL (\S+)")
# Exact types: subclasses such as numpy.float64 (a float) pickle as other classes and are refused.
_PLAIN = (bool, int, float, str, type(None), torch.Size, torch.dtype, torch.device)


class CheckpointWriteError(OSError):
    """Writing a checkpoint failed (disk full, no permission, I/O error); the old one is kept."""


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temp file beside it, fsync, ``os.replace``).

    ``state`` holds tensors and plain Python values only (dicts, lists, tuples, numbers,
    strings, ``None``); anything else raises ``TypeError`` naming the key, because it could not
    be loaded back with ``weights_only=True``. ``format_version`` and ``scorelab_version`` are
    filled in. A crash while writing leaves the previous file at ``path`` intact.
    """
    path = Path(path)
    state = {**state, "format_version": FORMAT_VERSION, "scorelab_version": __version__}
    _check_plain(state, "state")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_writer(path, lambda tmp: torch.save(state, tmp))
    except (
        OSError,
        RuntimeError,
    ) as err:  # torch's C++ writer reports failed writes as RuntimeError
        detail = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise CheckpointWriteError(
            f"could not write the checkpoint {path} ({detail}); the previous checkpoint is kept. "
            "Free disk space (or fix the folder's permissions) and run the same command again, "
            "or choose another --out"
        ) from None
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file (or the latest one of a run folder) onto the CPU, safely.

    Uses ``torch.load(weights_only=True)``: pickled code is refused before it runs. Every
    failure (missing, truncated or corrupt file, unsafe content, other format version, not a
    scorelab checkpoint) raises ``CheckpointError`` saying what is wrong and what to do.
    """
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise CheckpointError(
                f"run folder {path} holds no checkpoint ({CHECKPOINT_NAME}); train into it "
                "first or point to the right folder"
            )
        path = found
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}; check the path or train first")
    try:
        with warnings.catch_warnings():  # torch warns about raw pickles before refusing them
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refused(path, err) from None
    except Exception as err:  # torch raises RuntimeError, EOFError, KeyError... on damaged files
        raise _corrupt(path, err) from None
    return _check_state(path, state)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """Return ``run_dir/checkpoint.pt`` if present, else the highest ``checkpoint-step{N}.pt``,
    else ``None``."""
    run_dir = Path(run_dir)
    latest = run_dir / CHECKPOINT_NAME
    if latest.is_file():
        return latest
    history = history_checkpoints(run_dir)
    return history[-1] if history else None


def history_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Return the ``checkpoint-step{N}.pt`` files of ``run_dir`` sorted by step."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    matches = [(_HISTORY_PATTERN.match(p.name), p) for p in run_dir.iterdir()]
    return [p for _, p in sorted((int(m.group(1)), p) for m, p in matches if m)]


def history_name(step: int) -> str:
    """File name of the kept copy of the checkpoint at ``step``."""
    return f"checkpoint-step{step}.pt"


def _refused(path: Path, err: pickle.UnpicklingError) -> CheckpointError:
    """Explain a refusal of torch's weights-only unpickler."""
    found = _GLOBAL_PATTERN.search(str(err))
    if found:  # the pickle names a Python callable or class: loading it could run code
        return CheckpointError(
            f"refusing to load {path}: the file contains code objects or Python objects other "
            f"than tensors and plain values ({found.group(1)}), which could run code when "
            "loaded. scorelab never writes such files; do not use this file, re-train"
        )
    if "weights only" in str(err).lower():
        return CheckpointError(
            f"refusing to load {path}: it is not a checkpoint of tensors and plain values (it is "
            "corrupt, or a plain pickle file, which could run code when loaded); delete it and "
            "resume from another checkpoint-step*.pt in the folder, or re-train"
        )
    return _corrupt(path, err)


def _corrupt(path: Path, err: BaseException) -> CheckpointError:
    detail = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
    return CheckpointError(
        f"checkpoint {path} is truncated or corrupt ({type(err).__name__}: {detail}). "
        "It was not written by a finished scorelab save, or was damaged later; delete it and "
        "resume from another checkpoint-step*.pt in the folder, or re-train"
    )


def _check_state(path: Path, state: Any) -> dict[str, Any]:
    """Check that ``state`` is a scorelab checkpoint of this format version."""
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(
            f"{path} is not a scorelab training checkpoint (no 'format_version' entry); "
            "it may come from another program or a pre-release scorelab: re-train"
        )
    version = state["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version!r}, written by scorelab "
            f"{state.get('scorelab_version', 'unknown')}; this is scorelab {__version__} "
            f"(format {FORMAT_VERSION}): re-train, or use that scorelab version to load it"
        )
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks the entries {missing}; it is incomplete or was written by "
            "another tool: re-train"
        )
    return state


def _check_plain(obj: Any, where: str) -> None:
    """Raise ``TypeError`` if ``obj`` holds anything but tensors and plain Python values."""
    if type(obj) in _PLAIN or isinstance(obj, torch.Tensor):
        return
    if type(obj) in (dict, OrderedDict):
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where} has a key {key!r}; checkpoint keys must be str or int")
            _check_plain(value, f"{where}[{key!r}]")
        return
    if type(obj) in (list, tuple):
        for i, value in enumerate(obj):
            _check_plain(value, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__name__}; checkpoints hold tensors and plain values only "
        "(dict, list, tuple, number, str, None) so that they load with weights_only=True"
    )
