"""Implicit and sliced score matching, one value per example ``(B,)``; the caller reduces.

Both need derivatives of the score in x. They work whether or not the caller is under
``torch.no_grad()``: the derivatives are taken inside ``torch.enable_grad()`` on a detached copy of
``x``; when gradients were enabled by the caller the graph is kept (``create_graph=True``) so the
loss trains the network, otherwise the result is detached.

The per-example traces assume example b's score depends on x_b only (no batch statistics, such as
BatchNorm in training mode, inside the network): derivatives are taken of batch sums.
"""

from __future__ import annotations

import torch
from torch import Tensor

from scorelab.utils import (
    CleanScoreFn,
    ScoreFn,
    batch_sigma,
    check_finite,
    check_generator,
    check_int,
    sum_except_batch,
)

__all__ = ["implicit_score_matching_loss", "sliced_score_matching_loss"]

#: ``method="auto"`` takes the exact trace up to this many data dims, Hutchinson above.
EXACT_TRACE_MAX_DIM = 16


def _check_data(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Validate the data batch (floating, ``(B, *D)``, finite) and the loss's ``generator``."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point tensor (B, *D)")
    if x.ndim < 2:
        raise ValueError(f"x must have shape (B, *D); got {tuple(x.shape)} (use x[:, None])")
    check_generator(generator, x.device)
    return check_finite(x, "x", hint="remove or fix those rows")


def _score(score_fn: ScoreFn | CleanScoreFn, x: Tensor, sigma: float | Tensor | None) -> Tensor:
    """``score_fn(x)`` for a score of x alone, ``score_fn(x, sigma)`` when a σ is given."""
    s = score_fn(x) if sigma is None else score_fn(x, batch_sigma(sigma, x))
    if not isinstance(s, Tensor) or s.shape != x.shape:
        shape = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        raise ValueError(f"score_fn must return the shape of x, {tuple(x.shape)}; got {shape}")
    return s


def _vjp(out: Tensor, x: Tensor, create_graph: bool) -> Tensor:
    """∇ₓ Σ out, zeros where ``out`` does not depend on ``x``."""
    if not out.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(
        out.sum(), x, create_graph=create_graph, retain_graph=True, allow_unused=True
    )
    return torch.zeros_like(x) if g is None else g


def _exact_trace(s: Tensor, x: Tensor, create_graph: bool) -> Tensor:
    """tr ∇ₓ s(x) per example, one backward pass per data dim (fine for small D)."""
    # Hand-written loop over dims rather than torch.func.jacrev: score_fn is any callable (not
    # necessarily a functional module), and only the diagonal of the Jacobian is needed.
    B = x.shape[0]
    s_flat = s.reshape(B, -1)
    trace = torch.zeros(B, dtype=x.dtype, device=x.device)
    for i in range(s_flat.shape[1]):
        trace = trace + _vjp(s_flat[:, i], x, create_graph).reshape(B, -1)[:, i]
    return trace


def _probe(x: Tensor, kind: str, generator: torch.Generator | None) -> Tensor:
    """A random probe v with E[v vᵀ] = I: Rademacher ±1 or standard Gaussian, shape of x."""
    if kind == "rademacher":
        bits = torch.randint(0, 2, x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return 2 * bits - 1
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def _quadratic_form(s: Tensor, x: Tensor, v: Tensor, create_graph: bool) -> Tensor:
    """vᵀ (∇ₓ s) v per example via one vector-Jacobian product: ∇ₓ (vᵀ s) = (∇ₓ s)ᵀ v."""
    return sum_except_batch(_vjp(sum_except_batch(s * v), x, create_graph) * v)


def implicit_score_matching_loss(
    score_fn: ScoreFn | CleanScoreFn,
    x: Tensor,
    *,
    sigma: float | Tensor | None = None,
    method: str = "exact",
    n_probes: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Implicit score matching (Hyvärinen 2005, Thm. 1): ½‖s(x)‖² + tr ∇ₓ s(x), shape ``(B,)``.

    Its expectation under the data equals ½ E‖s − ∇ log p‖² minus a constant. ``method``:
    "exact" (one backward pass per data dim), "hutchinson" (tr A ≈ vᵀAv averaged over
    ``n_probes`` Rademacher probes; Hutchinson 1989), "auto" (exact when D ≤ 16). With
    ``sigma`` given, the score is ``score_fn(x, sigma)``; otherwise ``score_fn(x)``.
    """
    x = _check_data(x, generator)
    if method not in ("exact", "hutchinson", "auto"):
        raise ValueError(f"method must be 'exact', 'hutchinson' or 'auto'; got {method!r}")
    n_probes = check_int(n_probes, "n_probes")
    if method == "auto":
        method = "exact" if x[0].numel() <= EXACT_TRACE_MAX_DIM else "hutchinson"
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        s = _score(score_fn, x_, sigma)
        if method == "exact":
            trace = _exact_trace(s, x_, keep_graph)
        else:
            trace = (
                sum(
                    _quadratic_form(s, x_, _probe(x_, "rademacher", generator), keep_graph)
                    for _ in range(n_probes)
                )
                / n_probes
            )
        loss = 0.5 * sum_except_batch(s.square()) + trace
    return loss if keep_graph else loss.detach()


def sliced_score_matching_loss(
    score_fn: ScoreFn | CleanScoreFn,
    x: Tensor,
    *,
    sigma: float | Tensor | None = None,
    n_projections: int = 1,
    projection: str = "gaussian",
    variance_reduction: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Sliced score matching (Song et al. 2019): vᵀ∇ₓ(vᵀs) + ½(vᵀs)², shape ``(B,)``.

    Averaged over ``n_projections`` random directions v with E[vvᵀ] = I (``projection``:
    "gaussian" as in the paper, or "rademacher"). ``variance_reduction=True`` is SSM-VR:
    ½‖s‖² replaces ½(vᵀs)², its expectation over v. Both have the expectation of implicit score
    matching. With ``sigma`` given, the score is ``score_fn(x, sigma)``; otherwise ``score_fn(x)``.
    """
    x = _check_data(x, generator)
    n_projections = check_int(n_projections, "n_projections")
    if projection not in ("gaussian", "rademacher"):
        raise ValueError(f"projection must be 'gaussian' or 'rademacher'; got {projection!r}")
    keep_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        x_ = x.detach().requires_grad_(True)
        s = _score(score_fn, x_, sigma)
        half_norm = 0.5 * sum_except_batch(s.square())
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for _ in range(n_projections):
            v = _probe(x_, projection, generator)
            second = half_norm if variance_reduction else 0.5 * sum_except_batch(s * v).square()
            total = total + _quadratic_form(s, x_, v, keep_graph) + second
        loss = total / n_projections
    return loss if keep_graph else loss.detach()
