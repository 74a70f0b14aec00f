"""Guidance as score transforms: each function returns a plain ``ScoreFn`` ``score(x, sigma)``.

Because every ladder sampler only sees a ``ScoreFn``, guidance works with all of them
(``dpmpp_3m``, ``edm_heun``, ``annealed_langevin``, …) without touching the samplers:

- :func:`with_label` binds labels to a class-conditional score ``score(x, sigma, y)``
  (a network built with ``num_classes``, or an exact
  :class:`scorelab.targets.conditional.ClassConditionalMixture`); ``NULL_LABEL`` gives the
  unconditional score of the same network.
- :func:`classifier_free_guidance`: ``(1 + w)·s(x, σ, y) − w·s(x, σ)`` (Ho & Salimans 2022).
- :func:`classifier_guidance`: ``s(x, σ) + scale·∇ₓ log p(y | x, σ)`` (Song et al. 2021, sec. 5
  and app. I; Dhariwal & Nichol 2021). At ``scale = 1`` with the exact classifier this is exactly
  the conditional score (Bayes' rule).
- :func:`classifier_log_prob_grad`: ``∇ₓ log p(y | x, σ)`` of a noise-conditional classifier
  ``logits(x, sigma) -> (B, C)`` by autograd.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
from torch import Tensor

from scorelab.utils import NULL_LABEL, ConditionalScoreFn, ScoreFn, batch_sigma

__all__ = [
    "classifier_free_guidance",
    "classifier_guidance",
    "classifier_log_prob_grad",
    "with_label",
]


def _check_callable(fn: object, name: str, signature: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable as {signature}; got {type(fn).__name__}")


def _check_scalar(value: float, name: str, *, minimum: float | None = None) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r}") from None
    if not math.isfinite(v) or (minimum is not None and v < minimum):
        bound = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f"{name} must be a finite number{bound}; got {value!r}")
    return v


def _labels(y: int | Tensor, x: Tensor) -> Tensor:
    """``y`` as ``(B,)`` int64 on ``x``'s device (an int is repeated over the batch)."""
    lab = torch.as_tensor(y, device=x.device)
    if lab.is_floating_point() or lab.is_complex() or lab.dtype == torch.bool:
        raise TypeError(f"y must be an int or an integer tensor of labels; got {lab.dtype}")
    lab = lab.to(torch.int64)
    if lab.ndim == 0:
        return lab.expand(x.shape[0])
    if lab.shape != (x.shape[0],):
        raise ValueError(
            f"y must be an int or a tensor of shape (B,) = ({x.shape[0]},); got {tuple(lab.shape)}"
        )
    return lab


def _labelled(cond_score: ConditionalScoreFn, y: int | Tensor, x: Tensor, sigma: Tensor) -> Tensor:
    return cond_score(x, batch_sigma(sigma, x), _labels(y, x))


def with_label(cond_score: ConditionalScoreFn, y: int | Tensor = NULL_LABEL) -> ScoreFn:
    """The ``ScoreFn`` ``score(x, σ) = cond_score(x, σ, y)`` of one label (or one per example).

    ``y`` is an int (the same class for every example) or a ``(B,)`` integer tensor; the default
    ``NULL_LABEL`` asks a classifier-free network for its unconditional score.
    """
    _check_callable(cond_score, "cond_score", "cond_score(x, sigma, y)")
    if not isinstance(y, Tensor | int) or isinstance(y, bool):
        raise TypeError(f"y must be an int or an integer tensor of labels; got {y!r}")
    return functools.partial(_labelled, cond_score, y)


def _cfg(cond: ScoreFn, uncond: ScoreFn, w: float, x: Tensor, sigma: Tensor) -> Tensor:
    s_cond = cond(x, sigma)
    if w == 0.0:
        return s_cond
    return (1.0 + w) * s_cond - w * uncond(x, sigma)


def classifier_free_guidance(cond_score: ScoreFn, uncond_score: ScoreFn, w: float) -> ScoreFn:
    """Classifier-free guidance (Ho & Salimans 2022, eq. 6): ``(1 + w)·s(x, σ, y) − w·s(x, σ)``.

    ``cond_score`` and ``uncond_score`` are ``ScoreFn``s, usually one network with and without
    its label: ``with_label(net, y)`` and ``with_label(net)``. Since
    ``s(x, σ, y) − s(x, σ) = ∇ₓ log p(y | x_σ)``, this is classifier guidance of scale ``1 + w``
    with the network's implicit classifier: it samples ``∝ p_σ(x | y)^{1+w} p_σ(x)^{−w}``
    (sharper, less diverse for ``w > 0``). ``w = 0`` is the plain conditional score (one
    evaluation); ``w = −1`` the unconditional one. Costs two evaluations per call otherwise.
    """
    _check_callable(cond_score, "cond_score", "score(x, sigma)")
    _check_callable(uncond_score, "uncond_score", "score(x, sigma)")
    w = _check_scalar(w, "w (the guidance weight)")
    return functools.partial(_cfg, cond_score, uncond_score, w)


def _guided(score: ScoreFn, grad: ScoreFn, scale: float, x: Tensor, sigma: Tensor) -> Tensor:
    s = score(x, sigma)
    if scale == 0.0:
        return s
    g = grad(x, sigma)
    if not isinstance(g, Tensor) or g.shape != x.shape:
        got = tuple(g.shape) if isinstance(g, Tensor) else type(g).__name__
        raise ValueError(
            f"log_prob_grad must return ∇ₓ log p(y | x, σ) with the shape of x {tuple(x.shape)}; "
            f"got {got}"
        )
    return s + scale * g


def classifier_guidance(score: ScoreFn, log_prob_grad: ScoreFn, scale: float = 1.0) -> ScoreFn:
    """Classifier guidance ``s(x, σ) + scale·∇ₓ log p(y | x, σ)`` (Song et al. 2021, eq. 14).

    ``log_prob_grad(x, sigma) -> (B, *D)`` is the gradient of the log-probability of the wanted
    label (or observation) under a *noise-conditional* classifier: e.g.
    :func:`classifier_log_prob_grad` of a trained one, the exact
    ``ClassConditionalMixture.class_log_prob_grad`` bound to a label, or an inpainting
    likelihood. At ``scale = 1`` with the exact ``p(y | x_σ)`` the result is the exact
    conditional score ``∇ₓ log p_σ(x | y)`` (Bayes' rule); ``scale > 1`` sharpens it
    (Dhariwal & Nichol 2021, sec. 4.2: sampling ``∝ p_σ(x) p(y | x_σ)^scale``).
    """
    _check_callable(score, "score", "score(x, sigma)")
    _check_callable(log_prob_grad, "log_prob_grad", "log_prob_grad(x, sigma)")
    scale = _check_scalar(scale, "scale", minimum=0.0)
    return functools.partial(_guided, score, log_prob_grad, scale)


def _classifier_grad(
    classifier: Callable[[Tensor, Tensor], Tensor], y: int | Tensor, x: Tensor, sigma: Tensor
) -> Tensor:
    lab = _labels(y, x)
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        logits = classifier(x_, batch_sigma(sigma, x))
        if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != x.shape[0]:
            got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"classifier must return logits of shape (B, C); got {got}")
        if bool((lab < 0).any()) or bool((lab >= logits.shape[1]).any()):
            raise ValueError(f"y must hold classes in 0..{logits.shape[1] - 1}")
        log_p = torch.log_softmax(logits, dim=1).gather(1, lab[:, None]).sum()
        (grad,) = torch.autograd.grad(log_p, x_)
    return grad.detach()


def classifier_log_prob_grad(
    classifier: Callable[[Tensor, Tensor], Tensor], y: int | Tensor
) -> ScoreFn:
    """``∇ₓ log softmax(classifier(x, σ))_y`` by autograd, a ``log_prob_grad`` for guidance.

    ``classifier(x, sigma) -> (B, C)`` logits of a classifier trained on noised inputs
    ``x₀ + σz`` (Dhariwal & Nichol 2021). Gradients are taken with respect to ``x`` only, inside
    ``torch.enable_grad()`` (samplers run under ``no_grad``); parameters receive none.
    """
    _check_callable(classifier, "classifier", "classifier(x, sigma) -> logits (B, C)")
    if not isinstance(y, Tensor | int) or isinstance(y, bool):
        raise TypeError(f"y must be an int or an integer tensor of labels; got {y!r}")
    return functools.partial(_classifier_grad, classifier, y)
