"""Score MLPs for low-dimensional data ``(B, dim)`` (any ``(B, *D)`` with ``prod(D) = dim``).

- ``SoftplusMLP``: score of x alone, one softplus hidden layer (seed 001).
- ``SigmaInputMLP``: input [x, σ], one ReLU hidden layer (seed 003).
- ``FourierTimeMLP``: SDE-time network with Fourier features of t, output / σ_t (seed 004).
- ``ScoreMLP``: the default; residual SiLU MLP with EDM preconditioning (Karras et al. 2022).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from scorelab.models.embeddings import (
    GaussianFourierFeatures,
    LabelEmbedding,
    log_sigma_features,
)
from scorelab.utils import (
    append_dims,
    batch_sigma,
    check_int,
    check_module_input,
    check_positive,
)

__all__ = ["FourierTimeMLP", "ScoreMLP", "SigmaInputMLP", "SoftplusMLP"]


def _flatten(x: Tensor, dim: int) -> Tensor:
    """``(B, *D) -> (B, dim)``, refusing data whose size does not match the network."""
    if x.ndim < 2 or x[0].numel() != dim:
        raise ValueError(
            f"x must have shape (B, *D) with prod(D) = dim = {dim}; got {tuple(x.shape)} "
            f"(build the network with dim={x[0].numel() if x.ndim >= 2 else '?'})"
        )
    return x.reshape(x.shape[0], dim)


class SoftplusMLP(nn.Module):
    """Score of x alone, ``(B, dim) -> (B, dim)``: Linear → Softplus → Linear (seed 001).

    ``sigma`` is accepted and ignored, so the module also fits the ``score(x, sigma)`` convention
    (it then models one fixed noise level, the one it was trained at).
    """

    def __init__(self, dim: int = 2, hidden: int = 128) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim")
        hidden = check_int(hidden, "hidden")
        self.net = nn.Sequential(nn.Linear(self.dim, hidden), nn.Softplus(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        check_module_input(self, x)
        return self.net(_flatten(x, self.dim)).reshape(x.shape)


class SigmaInputMLP(nn.Module):
    """Noise-conditional score from the input [x, σ]: Linear → ReLU → Linear (seed 003).

    ``log_sigma=False`` feeds σ itself as seed 003 does; ``True`` feeds log σ. The output is the
    score itself (no 1/σ scaling), ``(B, dim)``.
    """

    def __init__(self, dim: int = 1, hidden: int = 64, *, log_sigma: bool = False) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim")
        self.log_sigma = bool(log_sigma)
        hidden = check_int(hidden, "hidden")
        self.net = nn.Sequential(nn.Linear(self.dim + 1, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        check_module_input(self, x)
        sigma = batch_sigma(sigma, x)
        features = torch.cat(
            [_flatten(x, self.dim), log_sigma_features(sigma, log=self.log_sigma)], 1
        )
        return self.net(features).reshape(x.shape)


class FourierTimeMLP(nn.Module):
    """SDE-time score ∇ log p_t(x) ≈ F([x, γ(t)]) / σ_t, γ = Gaussian Fourier features (seed 004).

    ``forward(x, t)`` takes SDE time ``t`` ``(B,)``; ``sde_sigma_fn(t)`` is the marginal std σ_t
    (e.g. ``sde.sigma``). F is a tanh MLP with two hidden layers. Turn it into a
    ``score(x, sigma)`` with ``scorelab.models.TimeConditioned``.
    """

    def __init__(
        self,
        dim: int = 2,
        *,
        sde_sigma_fn: Callable[[Tensor], Tensor],
        embed_dim: int = 10,
        hidden: int = 50,
        scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not callable(sde_sigma_fn):
            raise TypeError("sde_sigma_fn must be a function t -> sigma_t, such as sde.sigma")
        self.dim = check_int(dim, "dim")
        hidden = check_int(hidden, "hidden")
        self.sde_sigma_fn = sde_sigma_fn
        self.embed = GaussianFourierFeatures(embed_dim, scale, generator=generator)
        self.net = nn.Sequential(
            nn.Linear(self.dim + embed_dim, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, self.dim),
        )

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        check_module_input(self, x)
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])
        out = self.net(torch.cat([_flatten(x, self.dim), self.embed(t)], dim=1))
        # Dividing by σ_t puts the network output on the scale of the noise z (seed 004).
        sigma_t = torch.as_tensor(self.sde_sigma_fn(t), dtype=x.dtype, device=x.device)
        return (out / append_dims(sigma_t, 2)).reshape(x.shape)


class _ResidualBlock(nn.Module):
    """h + W₂ SiLU(W₁ SiLU(LayerNorm h) + P e): pre-norm residual block, additive conditioning."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.inner = nn.Linear(hidden, hidden)
        self.cond = nn.Linear(hidden, hidden)
        self.outer = nn.Linear(hidden, hidden)

    def forward(self, h: Tensor, e: Tensor) -> Tensor:
        a = self.inner(nn.functional.silu(self.norm(h))) + self.cond(e)
        return h + self.outer(nn.functional.silu(a))


class ScoreMLP(nn.Module):
    """Noise-conditional score MLP with EDM preconditioning (Karras et al. 2022, Table 1, eq. 3).

    The denoiser is D(x; σ) = c_skip x + c_out F(c_in x, log σ) with c_in = 1/√(σ² + σ_d²),
    c_skip = σ_d²/(σ² + σ_d²), c_out = σ σ_d/√(σ² + σ_d²), and the score is (D − x)/σ²,
    which rearranges to::

        score(x, σ) = −x / (σ² + σ_d²) + σ_d F / (σ √(σ² + σ_d²))

    For σ ≫ σ_d this is the score of N(0, (σ² + σ_d²) I) plus a small correction; for σ ≪ σ_d
    it is F/σ, the NCSNv2 rule (Song & Ermon 2020). F is a residual SiLU MLP conditioned on
    Gaussian Fourier features of log σ; its output layer starts at zero, so an untrained network
    returns the Gaussian score −x/(σ² + σ_d²). ``sigma_data`` is σ_d, the data's std.

    ``data_mean`` (``dim`` numbers, default 0) is the data's mean μ: the network sees x − μ, so the
    skip term is the score of N(μ, (σ² + σ_d²) I). The preconditioning assumes centred data; a
    point file with mean 30 σ_d away from the origin is otherwise far outside what F can correct.
    μ is part of the spec (a non-persistent buffer: it follows ``.to(device)``, not the weights).

    ``num_classes`` (default ``None``: unconditional, exactly the network without it) adds a
    learned label embedding to the noise embedding: ``forward(x, sigma, y)`` with ``y`` ``(B,)``
    in ``0..num_classes−1``, or ``NULL_LABEL`` (−1) / ``y=None`` for the unconditional score of
    the same network (one extra embedding row), as classifier-free guidance needs (Ho & Salimans
    2022). Train it with label dropout (``scorelab.losses.label_dropout``); the embedding starts
    at zero, so an untrained conditional network equals the unconditional one.
    """

    def __init__(
        self,
        dim: int,
        hidden: int = 128,
        depth: int = 3,
        embed_dim: int = 64,
        *,
        sigma_data: float = 1.0,
        data_mean: Sequence[float] | None = None,
        fourier_scale: float = 1.0,
        generator: torch.Generator | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim")
        hidden = check_int(hidden, "hidden")
        depth = check_int(depth, "depth", minimum=0)
        self.num_classes = None if num_classes is None else check_int(num_classes, "num_classes")
        self.sigma_data = check_positive(sigma_data, "sigma_data")
        mean = torch.zeros(self.dim) if data_mean is None else torch.as_tensor(data_mean).float()
        if mean.shape != (self.dim,) or not bool(torch.isfinite(mean).all()):
            raise ValueError(
                f"data_mean must be {self.dim} finite numbers (the data's mean); got {data_mean!r}"
            )
        self.register_buffer("data_mean", mean, persistent=False)
        self.embed = GaussianFourierFeatures(embed_dim, fourier_scale, generator=generator)
        self.embed_mlp = nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )
        self.input = nn.Linear(self.dim, hidden)
        self.blocks = nn.ModuleList(_ResidualBlock(hidden) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.output = nn.Linear(hidden, self.dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        if self.num_classes is not None:
            # Built last and from zeros (no random draw): the other weights are those of the
            # unconditional network with the same seed.
            self.label_embed = LabelEmbedding(self.num_classes, hidden)

    def network(self, x: Tensor, sigma: Tensor, y: Tensor | None = None) -> Tensor:
        """The raw network F(c_in x, log σ[, y]), ``(B, dim)``."""
        var = sigma.square() + self.sigma_data**2
        e = self.embed_mlp(self.embed(sigma.log()))
        if self.num_classes is not None:
            e = e + self.label_embed(y, x.shape[0])
        h = self.input(x * append_dims(var.rsqrt(), x.ndim))
        for block in self.blocks:
            h = block(h, e)
        return self.output(nn.functional.silu(self.out_norm(h)))

    def forward(self, x: Tensor, sigma: Tensor, y: Tensor | None = None) -> Tensor:
        check_module_input(self, x)
        sigma = batch_sigma(sigma, x)
        if y is not None and self.num_classes is None:
            raise ValueError(
                "this ScoreMLP is unconditional (num_classes=None): call it without y, or build "
                "it with num_classes=C to condition on labels"
            )
        flat = _flatten(x, self.dim) - self.data_mean.to(x.dtype)
        var = append_dims(sigma.square() + self.sigma_data**2, 2)
        s = append_dims(sigma, 2)
        out = -flat / var + self.sigma_data * self.network(flat, sigma, y) / (s * var.sqrt())
        return out.reshape(x.shape)

    def extra_repr(self) -> str:
        classes = "" if self.num_classes is None else f", num_classes={self.num_classes}"
        return f"dim={self.dim}, sigma_data={self.sigma_data}{classes}"
