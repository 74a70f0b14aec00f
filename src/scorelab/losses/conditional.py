"""Training a class-conditional score network for classifier-free guidance: label dropout + DSM.

Ho & Salimans (2022, Alg. 1) train one network for ``s(x, σ, y)`` and ``s(x, σ)`` by replacing
each label by the null label with probability ``p_uncond`` (0.1–0.2 in the paper); the loss is
otherwise the usual denoising score matching. Values are per example ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from scorelab.losses.dsm import multilevel_dsm_loss
from scorelab.utils import NULL_LABEL, ConditionalScoreFn, check_generator

__all__ = ["conditional_dsm_loss", "label_dropout"]


def _check_labels(y: Tensor, batch: int | None = None) -> Tensor:
    if (
        not isinstance(y, Tensor)
        or y.is_floating_point()
        or y.is_complex()
        or y.dtype == torch.bool
    ):
        got = y.dtype if isinstance(y, Tensor) else type(y).__name__
        raise TypeError(f"y must be a tensor of integer class labels (torch.long); got {got}")
    if y.ndim != 1 or (batch is not None and y.shape[0] != batch):
        want = "(B,)" if batch is None else f"(B,) = ({batch},)"
        raise ValueError(f"y must have shape {want}; got {tuple(y.shape)}")
    return y.to(torch.int64)


def label_dropout(
    y: Tensor, p_uncond: float, *, generator: torch.Generator | None = None
) -> Tensor:
    """Replace each label of ``y`` ``(B,)`` by ``NULL_LABEL`` with probability ``p_uncond``.

    Ho & Salimans (2022), Alg. 1, line 3 ("with probability p_uncond, c ← ∅"). Returns a new
    int64 tensor; draws with ``generator`` on ``y``'s device.
    """
    y = _check_labels(y)
    try:
        p = float(p_uncond)
    except (TypeError, ValueError):
        raise TypeError(f"p_uncond must be a number in [0, 1]; got {p_uncond!r}") from None
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p_uncond must be a probability in [0, 1]; got {p_uncond!r}")
    check_generator(generator, y.device)
    drop = torch.rand(y.shape, generator=generator, device=y.device) < p
    return torch.where(drop, NULL_LABEL, y)


def conditional_dsm_loss(
    net: ConditionalScoreFn,
    x0: Tensor,
    y: Tensor,
    sigmas: Sequence[float] | Tensor,
    *,
    p_uncond: float = 0.1,
    weighting: str = "sigma2",
    mode: str = "random",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Multi-level DSM of ``net(x, σ, y)`` with label dropout, ``(B,)`` (Ho & Salimans 2022).

    Labels are dropped to ``NULL_LABEL`` with probability ``p_uncond`` (:func:`label_dropout`),
    then :func:`scorelab.losses.multilevel_dsm_loss` is applied to ``(x, σ) ↦ net(x, σ, y)``
    (``weighting`` and ``mode`` as there). Minimised by ``∇ log p_σ(x | y)`` for kept labels and
    by ``∇ log p_σ(x)`` for dropped ones: one network gives both scores that
    :func:`scorelab.samplers.classifier_free_guidance` combines.
    """
    if not callable(net):
        raise TypeError(f"net must be callable as net(x, sigma, y); got {type(net).__name__}")
    if not isinstance(x0, Tensor) or x0.ndim < 1:
        raise TypeError("x0 must be a tensor of shape (B, *D)")
    labels = label_dropout(_check_labels(y, x0.shape[0]), p_uncond, generator=generator)

    def score_fn(x: Tensor, sigma: Tensor) -> Tensor:
        # mode="sum" stacks the L levels level-major: repeat the labels the same way.
        return net(x, sigma, labels.repeat(x.shape[0] // labels.shape[0]))

    return multilevel_dsm_loss(
        score_fn, x0, sigmas, weighting=weighting, mode=mode, generator=generator
    )
