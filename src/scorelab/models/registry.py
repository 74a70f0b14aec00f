"""Model specs as plain dicts, ``{"name": ..., "kwargs": {...}}``, and the one place they are built.

Checkpoints store the spec (plain Python values) next to the ``state_dict``, never pickled code:
``build_model(spec)`` then ``load_state_dict`` restores a network exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from scorelab.models.mlp import ScoreMLP, SigmaInputMLP, SoftplusMLP
from scorelab.models.resnet import ConditionedSimpleResnet
from scorelab.models.unet import SmallUNet
from scorelab.models.wrappers import IndexConditioned

__all__ = ["MODEL_NAMES", "build_model", "model_spec"]


def _conditioned_resnet(
    *, sigmas: list[float], scale_by_sigma: bool = False, **kwargs: Any
) -> IndexConditioned:
    """Seed 000 resnet with one embedding per level, wrapped into ``score(x, sigma)``."""
    kwargs.setdefault("num_embeddings", len(sigmas))
    return IndexConditioned(
        ConditionedSimpleResnet(**kwargs), sigmas, scale_by_sigma=scale_by_sigma
    )


#: Name → constructor. The single place where model names become objects.
_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "score-mlp": ScoreMLP,
    "softplus-mlp": SoftplusMLP,
    "sigma-input-mlp": SigmaInputMLP,
    "conditioned-resnet": _conditioned_resnet,
    "small-unet": SmallUNet,
}
MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def _plain(value: Any, where: str) -> Any:
    """Check a kwarg is a plain config value (tuples become lists, as JSON would store them)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, where) for k, v in value.items()}
    raise TypeError(
        f"model kwarg {where} must be a plain value (number, str, bool, None, list, dict); got "
        f"{type(value).__name__} (convert tensors with .tolist())"
    )


def _check_name(name: Any) -> str:
    if name not in _BUILDERS:
        raise ValueError(f"unknown model name {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return name


def model_spec(name: str, **kwargs: Any) -> dict[str, Any]:
    """A plain model spec ``{"name": name, "kwargs": kwargs}`` (validated, JSON-friendly)."""
    return {
        "name": _check_name(name),
        "kwargs": {k: _plain(v, repr(k)) for k, v in kwargs.items()},
    }


def build_model(spec: dict[str, Any]) -> nn.Module:
    """Build the network a ``model_spec`` dict describes (freshly initialised weights)."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise TypeError(f"spec must be a dict {{'name': ..., 'kwargs': {{...}}}}; got {spec!r}")
    name = _check_name(spec["name"])
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise TypeError(f"spec['kwargs'] must be a dict; got {type(kwargs).__name__}")
    try:
        return _BUILDERS[name](**kwargs)
    except TypeError as err:
        raise TypeError(f"model {name!r}: bad kwargs {sorted(kwargs)}: {err}") from err
