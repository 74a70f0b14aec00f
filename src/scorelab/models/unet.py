"""Small noise-conditional U-Net for small single-channel images (28×28 MNIST, 8×8 digits).

score(x, σ) = F(x, log σ) / σ, the NCSNv2 output rule (Song & Ermon 2020, "Improved techniques
for training score-based generative models", technique 3). F is a U-Net (Ronneberger et al. 2015)
with GroupNorm + SiLU residual blocks (as in DDPM, Ho et al. 2020); each block adds a linear
projection of Gaussian Fourier features of log σ to its hidden activations.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from scorelab.models.embeddings import GaussianFourierFeatures, LabelEmbedding
from scorelab.utils import append_dims, batch_sigma, check_int, check_module_input, check_positive

__all__ = ["SmallUNet"]


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups (the largest divisor of ``channels`` not above 8)."""
    groups = max(g for g in range(1, 9) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class _ResBlock(nn.Module):
    """skip(x) + conv(SiLU(GN(conv(SiLU(GN x)) + P e))): DDPM residual block with additive e."""

    def __init__(self, c_in: int, c_out: int, embed_dim: int) -> None:
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.cond = nn.Linear(embed_dim, c_out)
        self.norm2 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, e: Tensor) -> Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = h + append_dims(self.cond(e), h.ndim)
        h = self.conv2(nn.functional.silu(self.norm2(h)))
        return self.skip(x) + h


class SmallUNet(nn.Module):
    """Noise-conditional U-Net score ``(B, C, H, W) -> (B, C, H, W)`` with score = F(x, σ)/σ.

    One residual block per resolution on the way down and up, ``len(channel_mult) - 1`` stride-2
    downsamplings, so H and W must be divisible by ``2 ** (len(channel_mult) - 1)`` (4 by default:
    28 and 8 are). About 0.7M parameters at ``base=32``.

    ``num_classes`` (default ``None``: unconditional, the same network as without it) adds a
    zero-initialised label embedding to the noise embedding, for ``forward(x, sigma, y)`` with
    ``NULL_LABEL``/``None`` for the unconditional score (see ``LabelEmbedding``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        base: int = 32,
        channel_mult: Sequence[int] = (1, 2, 2),
        embed_dim: int = 128,
        *,
        fourier_scale: float = 1.0,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, "in_channels")
        base = check_int(base, "base")
        mults = [check_int(m, "channel_mult entries") for m in channel_mult]
        if not mults:
            raise ValueError("channel_mult must hold at least one multiplier, e.g. (1, 2, 2)")
        embed_dim = check_int(embed_dim, "embed_dim", minimum=2)
        self.factor = 2 ** (len(mults) - 1)
        self.embed = GaussianFourierFeatures(
            embed_dim, check_positive(fourier_scale, "fourier_scale")
        )
        self.embed_mlp = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim), nn.SiLU()
        )
        widths = [base * m for m in mults]
        self.stem = nn.Conv2d(self.in_channels, base, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = base
        for i, width in enumerate(widths):
            self.down.append(_ResBlock(prev, width, embed_dim))
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(width, width, 3, stride=2, padding=1))
            prev = width
        self.middle = _ResBlock(prev, prev, embed_dim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(widths))):
            self.up.append(_ResBlock(prev + widths[i], widths[i], embed_dim))
            if i > 0:
                self.upsample.append(
                    nn.Sequential(
                        nn.Upsample(scale_factor=2, mode="nearest"),
                        nn.Conv2d(widths[i], widths[i], 3, padding=1),
                    )
                )
            prev = widths[i]
        self.out_norm = _norm(prev)
        self.out = nn.Conv2d(prev, self.in_channels, 3, padding=1)
        # Zero output layer: an untrained network returns the score 0 (a flat start).
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.num_classes = None if num_classes is None else check_int(num_classes, "num_classes")
        if self.num_classes is not None:  # built last, from zeros: other weights unchanged
            self.label_embed = LabelEmbedding(self.num_classes, embed_dim)

    def forward(self, x: Tensor, sigma: Tensor, y: Tensor | None = None) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (B, {self.in_channels}, H, W); got {tuple(x.shape)}"
            )
        if x.shape[2] % self.factor or x.shape[3] % self.factor:
            raise ValueError(
                f"H and W must be divisible by {self.factor}; got {tuple(x.shape[2:])} "
                "(pad the images, or use a shorter channel_mult)"
            )
        check_module_input(self, x)
        sigma = batch_sigma(sigma, x)
        e = self.embed_mlp(self.embed(sigma.log()))
        if self.num_classes is not None:
            e = e + self.label_embed(y, x.shape[0])
        elif y is not None:
            raise ValueError(
                "this SmallUNet is unconditional (num_classes=None): call it without y, or "
                "build it with num_classes=C to condition on labels"
            )
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, e)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.middle(h, e)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), e)
            if i < len(self.upsample):
                h = self.upsample[i](h)
        out = self.out(nn.functional.silu(self.out_norm(h)))
        # NCSNv2 rule: the network predicts σ·score, so divide by σ.
        return out / append_dims(sigma, out.ndim)
