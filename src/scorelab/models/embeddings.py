"""Noise-level conditioning pieces: Fourier features, level embeddings, log σ, nearest level.

Each piece is usable on its own and maps a per-example scalar of shape ``(B,)`` (a noise level σ,
an SDE time t or a level index) to features of shape ``(B, F)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from scorelab.utils import NULL_LABEL, check_generator, check_int, check_positive

__all__ = [
    "GaussianFourierFeatures",
    "LabelEmbedding",
    "LevelEmbedding",
    "log_sigma_features",
    "nearest_level",
]


def _check_batch_scalar(v: Tensor, name: str) -> Tensor:
    """Refuse anything but a ``(B,)`` tensor (a common slip is passing ``(B, 1)``)."""
    if not isinstance(v, Tensor):
        raise TypeError(f"{name} must be a tensor of shape (B,); got {type(v).__name__}")
    if v.ndim != 1:
        raise ValueError(f"{name} must have shape (B,); got {tuple(v.shape)} (use .reshape(-1))")
    return v


class GaussianFourierFeatures(nn.Module):
    """Random Fourier features [sin(2π W v), cos(2π W v)] of a scalar, W ~ N(0, scale²).

    Tancik et al. (2020), "Fourier features let networks learn high frequency functions"; used
    for the time/noise input by Song et al. (2021, score_sde) and seed 004. Maps ``(B,)`` to
    ``(B, embed_dim)``. The frequencies W are fixed: they are a buffer (saved in the
    ``state_dict``, moved by ``.to``), not a trained ``Parameter``.
    """

    W: Tensor

    def __init__(
        self, embed_dim: int, scale: float = 30.0, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        embed_dim = check_int(embed_dim, "embed_dim", minimum=2)
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even (sin and cos halves); got {embed_dim}")
        scale = check_positive(scale, "scale")
        check_generator(generator, torch.get_default_device())
        self.embed_dim = embed_dim
        self.scale = scale
        self.register_buffer("W", torch.randn(embed_dim // 2, generator=generator) * scale)

    def forward(self, v: Tensor) -> Tensor:
        v = _check_batch_scalar(v, "v")
        proj = 2 * math.pi * v[:, None] * self.W.to(v.dtype)[None, :]
        return torch.cat([proj.sin(), proj.cos()], dim=1)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, scale={self.scale}"


class LevelEmbedding(nn.Module):
    """Learned vector per noise-level index: ``nn.Embedding(n_levels, dim)`` (seed 000, NCSN).

    Maps a ``LongTensor`` of level indices ``(B,)`` to ``(B, dim)``; an index outside
    ``[0, n_levels)`` raises ``ValueError`` instead of a bare indexing error.
    """

    def __init__(self, n_levels: int, dim: int) -> None:
        super().__init__()
        self.n_levels = check_int(n_levels, "n_levels")
        self.embedding = nn.Embedding(self.n_levels, check_int(dim, "dim"))

    def forward(self, index: Tensor) -> Tensor:
        index = _check_batch_scalar(index, "index")
        if index.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"index must be an integer tensor (torch.long); got {index.dtype}")
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.n_levels):
            raise ValueError(
                f"index must lie in [0, {self.n_levels}); got range "
                f"[{int(index.min())}, {int(index.max())}]"
            )
        return self.embedding(index)


class LabelEmbedding(nn.Module):
    """Learned vector per class label plus one for "no label", ``(B,) -> (B, dim)``.

    Class-conditional score networks add it to their noise embedding (classifier-free guidance,
    Ho & Salimans 2022): labels ``0..num_classes−1`` select their row, ``NULL_LABEL`` (−1) or
    ``y=None`` the extra unconditional row ``num_classes``. The table starts at zero, and is
    created without a random draw, so a network built with it keeps the initial weights of the
    unconditional one and, untrained, returns the same output for every label.
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.num_classes = check_int(num_classes, "num_classes")
        dim = check_int(dim, "dim")
        self.embedding = nn.Embedding(
            self.num_classes + 1, dim, _weight=torch.zeros(self.num_classes + 1, dim)
        )

    def index(self, y: Tensor | int | None, batch: int) -> Tensor:
        """Table rows for labels ``y`` (``(B,)``, int or ``None``); ``NULL_LABEL`` -> the last."""
        device = self.embedding.weight.device
        if y is None:
            return torch.full((batch,), self.num_classes, dtype=torch.int64, device=device)
        lab = torch.as_tensor(y, device=device)
        if lab.is_floating_point() or lab.is_complex() or lab.dtype == torch.bool:
            raise TypeError(f"y must be integer class labels (torch.long); got {lab.dtype}")
        lab = lab.to(torch.int64)
        if lab.ndim == 0:
            lab = lab.expand(batch)
        if lab.shape != (batch,):
            raise ValueError(f"y must have shape (B,) = ({batch},); got {tuple(lab.shape)}")
        bad = (lab < NULL_LABEL) | (lab >= self.num_classes)
        if bool(bad.any()):
            raise ValueError(
                f"y must hold classes in 0..{self.num_classes - 1} or NULL_LABEL = {NULL_LABEL} "
                f"(unconditional); got {int(lab[bad][0])}"
            )
        return torch.where(lab == NULL_LABEL, self.num_classes, lab)

    def forward(self, y: Tensor | int | None, batch: int) -> Tensor:
        return self.embedding(self.index(y, batch))

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes} (+1 null)"


def log_sigma_features(sigma: Tensor, *, log: bool = True) -> Tensor:
    """Noise level as one input feature, ``(B,) -> (B, 1)``: log σ (default) or σ itself.

    Seed 003 feeds σ itself to its MLP (``log=False``); log σ keeps a geometric ladder evenly
    spaced, which is what most noise-conditional networks use (Karras et al. 2022, c_noise).
    """
    sigma = _check_batch_scalar(sigma, "sigma")
    if log:
        if bool((sigma <= 0).any()):
            raise ValueError("sigma must be > 0 for log features; pass log=False to use σ itself")
        return sigma.log()[:, None]
    return sigma[:, None]


def nearest_level(sigma: Tensor, sigmas: Tensor) -> Tensor:
    """Index of the level in ``sigmas`` ``(L,)`` closest to each ``sigma`` ``(B,)`` in log space.

    Returns a ``LongTensor`` of shape ``(B,)``. Distances are |log σ − log σ_i|, so a geometric
    ladder splits the gap between neighbours at their geometric mean.
    """
    sigma = _check_batch_scalar(sigma, "sigma")
    sigmas = torch.as_tensor(sigmas)
    if sigmas.ndim != 1 or sigmas.numel() == 0:
        raise ValueError(f"sigmas must be a non-empty 1-d tensor; got shape {tuple(sigmas.shape)}")
    if bool((sigma <= 0).any()) or bool((sigmas <= 0).any()):
        raise ValueError("sigma and sigmas must be > 0 to compare noise levels in log space")
    sigmas = sigmas.to(device=sigma.device, dtype=torch.float64)
    gap = (sigma.to(torch.float64).log()[:, None] - sigmas.log()[None, :]).abs()
    return gap.argmin(dim=1)
