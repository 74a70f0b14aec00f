"""Level-indexed convolutional resnet of seed 000 (NCSN on MNIST), ``forward(x, y)``.

``y`` is a ``LongTensor`` ``(B,)`` of noise-level indices; a learned embedding of ``y`` is added to
the input of every residual block. Wrap with ``scorelab.models.IndexConditioned`` to get a
``score(x, sigma)``.

Attribute and ``state_dict`` names are the seed's (``first_block``, ``layers``, ``last_block``;
``block`` and ``embedding`` in each residual block), so a state dict saved from the seed's classes
loads with ``strict=True`` and code that reaches into the model finds what the seed defines.
State dicts saved by earlier scorelab versions (``head``/``blocks``/``tail``, ``body``,
``level_embedding.embedding``) are renamed on load.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from scorelab.utils import append_dims, check_int, check_module_input

__all__ = ["ConditionedResnetBlock", "ConditionedSimpleResnet"]


def _check_levels(y: Tensor, n_levels: int) -> Tensor:
    """Refuse a level index that is not an integer ``(B,)`` tensor in ``[0, n_levels)``."""
    if not isinstance(y, Tensor) or y.dtype not in (torch.int64, torch.int32):
        got = y.dtype if isinstance(y, Tensor) else type(y).__name__
        raise TypeError(f"y (the level index) must be an integer tensor (torch.long); got {got}")
    if y.ndim != 1:
        raise ValueError(f"y (the level index) must have shape (B,); got {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_levels):
        raise ValueError(
            f"y (the level index) must lie in [0, {n_levels}); got range "
            f"[{int(y.min())}, {int(y.max())}]"
        )
    return y


def _rename_old_keys(state_dict: dict[str, Any], prefix: str, renames: dict[str, str]) -> None:
    """Rename ``prefix + old`` keys of a state dict saved by an earlier scorelab, in place."""
    for key in list(state_dict):
        for old, new in renames.items():
            if key.startswith(prefix + old):
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
                break


class ConditionedResnetBlock(nn.Module):
    """Residual block x + B(x + e_y), B = 1x1 conv, ReLU, 3x3 conv, ReLU, 1x1 conv (seed 000).

    ``x`` is ``(B, dim, H, W)``, ``y`` a level index ``(B,)``; e_y = ``embedding(y)`` is a learned
    ``dim``-vector per level, broadcast over the spatial dims. Attributes as in the seed:
    ``block`` (the ``nn.Sequential`` B), ``embedding`` (an ``nn.Embedding``) and ``dim``.
    """

    def __init__(self, dim: int, num_embeddings: int) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim")
        self.block = nn.Sequential(
            nn.Conv2d(self.dim, self.dim, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(self.dim, self.dim, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(self.dim, self.dim, kernel_size=1),
        )
        self.embedding = nn.Embedding(check_int(num_embeddings, "num_embeddings"), self.dim)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        y = _check_levels(y, self.embedding.num_embeddings)
        e = append_dims(self.embedding(y).to(x.dtype), x.ndim)
        return x + self.block(x + e)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Rename the keys of earlier scorelab versions, then load as usual."""
        renames = {"body.": "block.", "level_embedding.embedding.": "embedding."}
        _rename_old_keys(state_dict, prefix, renames)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class ConditionedSimpleResnet(nn.Module):
    """Level-conditioned resnet (seed 000): 3x3 conv + ReLU, ``n_blocks`` blocks, ReLU + 3x3 conv.

    ``forward(x, y)`` maps ``(B, in_channels, H, W)`` and level indices ``(B,)`` to
    ``(B, out_channels, H, W)``; any H, W (all convolutions keep the size). Attributes as in the
    seed: ``first_block``, ``layers`` (an ``nn.Sequential`` of :class:`ConditionedResnetBlock`),
    ``last_block`` and ``n_filters``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_filters: int,
        n_blocks: int,
        num_embeddings: int,
    ) -> None:
        super().__init__()
        in_channels = check_int(in_channels, "in_channels")
        out_channels = check_int(out_channels, "out_channels")
        self.n_filters = check_int(n_filters, "n_filters")
        n_blocks = check_int(n_blocks, "n_blocks", minimum=0)
        self.num_embeddings = check_int(num_embeddings, "num_embeddings")
        self.first_block = nn.Sequential(
            nn.Conv2d(in_channels, self.n_filters, kernel_size=3, padding=1), nn.ReLU()
        )
        self.layers = nn.Sequential(
            *(ConditionedResnetBlock(self.n_filters, self.num_embeddings) for _ in range(n_blocks))
        )
        self.last_block = nn.Sequential(
            nn.ReLU(), nn.Conv2d(self.n_filters, out_channels, kernel_size=3, padding=1)
        )

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"x must be an image batch (B, C, H, W); got shape {tuple(x.shape)}")
        check_module_input(self, x)
        y = _check_levels(y, self.num_embeddings)
        h = self.first_block(x)
        for layer in self.layers:
            h = layer(h, y)
        return self.last_block(h)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Rename the keys of earlier scorelab versions, then load as usual."""
        renames = {"head.": "first_block.", "blocks.": "layers.", "tail.": "last_block."}
        _rename_old_keys(state_dict, prefix, renames)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
