"""Level-indexed convolutional resnet of seed 000 (NCSN on MNIST), ``forward(x, y)``.

``y`` is a ``LongTensor`` ``(B,)`` of noise-level indices; a learned embedding of ``y`` is added to
the input of every residual block. Wrap with ``scorelab.models.IndexConditioned`` to get a
``score(x, sigma)``.
"""

from __future__ import annotations

from torch import Tensor, nn

from scorelab.models.embeddings import LevelEmbedding
from scorelab.utils import append_dims, check_int, check_module_input

__all__ = ["ConditionedResnetBlock", "ConditionedSimpleResnet"]


class ConditionedResnetBlock(nn.Module):
    """Residual block x + B(x + e_y), B = 1x1 conv, ReLU, 3x3 conv, ReLU, 1x1 conv (seed 000).

    ``x`` is ``(B, dim, H, W)``, ``y`` a level index ``(B,)``; e_y is a learned ``dim``-vector per
    level, broadcast over the spatial dims.
    """

    def __init__(self, dim: int, num_embeddings: int) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim")
        self.body = nn.Sequential(
            nn.Conv2d(self.dim, self.dim, kernel_size=1),
            nn.ReLU(),
            nn.Conv2d(self.dim, self.dim, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(self.dim, self.dim, kernel_size=1),
        )
        self.level_embedding = LevelEmbedding(num_embeddings, self.dim)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        e = append_dims(self.level_embedding(y).to(x.dtype), x.ndim)
        return x + self.body(x + e)


class ConditionedSimpleResnet(nn.Module):
    """Level-conditioned resnet (seed 000): 3x3 conv + ReLU, ``n_blocks`` blocks, ReLU + 3x3 conv.

    ``forward(x, y)`` maps ``(B, in_channels, H, W)`` and level indices ``(B,)`` to
    ``(B, out_channels, H, W)``; any H, W (all convolutions keep the size).
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
        n_filters = check_int(n_filters, "n_filters")
        n_blocks = check_int(n_blocks, "n_blocks", minimum=0)
        self.num_embeddings = check_int(num_embeddings, "num_embeddings")
        self.head = nn.Sequential(nn.Conv2d(in_channels, n_filters, 3, padding=1), nn.ReLU())
        self.blocks = nn.ModuleList(
            ConditionedResnetBlock(n_filters, self.num_embeddings) for _ in range(n_blocks)
        )
        self.tail = nn.Sequential(nn.ReLU(), nn.Conv2d(n_filters, out_channels, 3, padding=1))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"x must be an image batch (B, C, H, W); got shape {tuple(x.shape)}")
        check_module_input(self, x)
        h = self.head(x)
        for block in self.blocks:
            h = block(h, y)
        return self.tail(h)
