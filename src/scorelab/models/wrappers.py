"""Turn networks conditioned on something else into the ``score(x, sigma)`` currency.

- ``IndexConditioned``: a ``forward(x, level_index)`` network (seed 000 resnet) → nearest level.
- ``TimeConditioned``: a ``forward(x, t)`` network in SDE time (seed 004) → ``t = t(σ)``.
- ``as_score_fn``: any ``forward(x, sigma)`` module as a plain ``ScoreFn``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from scorelab.models.embeddings import nearest_level
from scorelab.utils import ScoreFn, append_dims, batch_sigma, check_module_input

__all__ = ["IndexConditioned", "TimeConditioned", "as_score_fn"]


class IndexConditioned(nn.Module):
    """``score(x, σ) = net(x, i(σ))`` (÷ σ when ``scale_by_sigma``), i(σ) = nearest level index.

    ``sigmas`` ``(L,)`` are the training levels in the order of the network's level indices (level
    ``i`` is ``sigmas[i]``); the nearest level is taken in log space (``nearest_level``). With
    ``scale_by_sigma=True`` the output is divided by the σ asked for, the NCSNv2 rule
    score = F/σ (Song & Ermon 2020, technique 3); on a training level that σ is the level's own.
    The levels are a buffer, so they are saved with the weights.
    """

    sigmas: Tensor

    def __init__(
        self, net: nn.Module, sigmas: Sequence[float] | Tensor, *, scale_by_sigma: bool = False
    ) -> None:
        super().__init__()
        if not callable(net):
            raise TypeError(f"net must be a module forward(x, level_index); got {type(net)}")
        levels = torch.as_tensor(sigmas, dtype=torch.float64).detach().clone()
        if levels.ndim != 1 or levels.numel() == 0:
            raise ValueError(
                f"sigmas must be a non-empty list of levels; got {tuple(levels.shape)}"
            )
        if not bool(torch.isfinite(levels).all()) or bool((levels <= 0).any()):
            raise ValueError("sigmas must be finite and > 0")
        n_embeddings = getattr(net, "num_embeddings", None)
        if n_embeddings is not None and n_embeddings != levels.numel():
            raise ValueError(
                f"net has num_embeddings={n_embeddings} but {levels.numel()} sigmas were given; "
                "build the network with num_embeddings=len(sigmas)"
            )
        self.net = net
        self.scale_by_sigma = bool(scale_by_sigma)
        self.register_buffer("sigmas", levels)

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        sigma = batch_sigma(sigma, x)
        out = self.net(x, nearest_level(sigma, self.sigmas))
        if self.scale_by_sigma:
            out = out / append_dims(sigma, out.ndim)
        return out


class TimeConditioned(nn.Module):
    """``score(x, σ̃) = α_t · net(α_t x, t)`` with ``t = sde.t_from_noise(σ̃)``, for SDE-time nets.

    ``net(x, t)`` estimates ∇ log p_t, the score of the SDE marginal at time t. For a VE SDE
    (α_t = 1, seed 004) p_t = p_σ with σ = σ_t, so this is just ``net(x, t(σ))``. For VP and
    sub-VP SDEs x_t = α_t (x_0 + σ̃_t z), hence p_t(y) = α_t^{-d} p_σ̃(y/α_t) and
    ∇ log p_σ̃(x) = α_t ∇ log p_t(α_t x) (Karras et al. 2022, scaled process): the wrapper
    evaluates the network at the scaled point and rescales its output, using ``sde.alpha``
    (1 for VE).
    The ``sde`` needs ``t_from_noise`` and ``alpha`` (every ``scorelab.sde`` SDE has them).
    """

    def __init__(self, net: nn.Module, sde: object) -> None:
        super().__init__()
        if not callable(net):
            raise TypeError(f"net must be a module forward(x, t); got {type(net)}")
        for method in ("t_from_noise", "alpha"):
            if not callable(getattr(sde, method, None)):
                raise TypeError(f"sde must have a method {method}(); got {type(sde).__name__}")
        self.net = net
        self.sde = sde

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:
        sigma = batch_sigma(sigma, x)
        t = torch.as_tensor(self.sde.t_from_noise(sigma), dtype=x.dtype, device=x.device)
        alpha = append_dims(torch.as_tensor(self.sde.alpha(t), dtype=x.dtype), x.ndim)
        return alpha * self.net(alpha * x, t)


def _module_score(module: nn.Module, x: Tensor, sigma: float | Tensor) -> Tensor:
    if isinstance(module, nn.Module):
        check_module_input(module, x)
    return module(x, batch_sigma(sigma, x))


def as_score_fn(module: nn.Module) -> ScoreFn:
    """A ``ScoreFn`` ``score(x, sigma) -> (B, *D)`` calling ``module(x, sigma)``.

    ``sigma`` may be a float or ``(B,)``; it is turned into ``(B,)`` on ``x``'s device and dtype.
    The module's train/eval mode and gradient mode are left exactly as the caller set them.
    """
    if not callable(module):
        raise TypeError(f"module must be callable as module(x, sigma); got {type(module)}")
    return functools.partial(_module_score, module)
