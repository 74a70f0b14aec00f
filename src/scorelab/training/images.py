"""Image runs: uniform dequantisation of training batches, mixed precision, bits per dim.

(The recommended network, training and sampler settings of each image set are training presets:
``scorelab.training.presets``.)

Dequantisation and its offset. Images are 8-bit grey levels ``v ∈ {0, …, 255}``. A continuous
density ``p`` on ``[-1, 1]^D`` gives a probability to an image only once each level owns a bin:
``y = 2·(v + u)/256 − 1`` with ``u ~ U[0, 1)^D`` (Uria et al. 2013; Theis et al. 2016) fills bin
``[2v/256 − 1, 2(v+1)/256 − 1)`` of width ``2/256``, and ``P(v) ≥ exp(E_u log p(y))·(2/256)^D``
(Jensen). So ``bpd = −E log p(y)/(D ln 2) + log₂(256/2) = −E log p(y)/(D ln 2) + 7`` for data in
``[-1, 1]`` (it would be ``+ 8`` for ``[0, 1]``); ``scorelab.samplers.likelihood.bits_per_dim``
adds that offset. The bound is tightest when the model was trained on dequantised images too
(:func:`dequantized_loss`), since a model of the plain grid ``2v/255 − 1`` puts its mass on
points that sit up to half a bin away from the bin centres.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from scorelab.utils import ScoreFn, check_finite, check_int, check_positive

#: 8-bit images: 256 grey levels.
N_BITS = 8


def to_grey_levels(x: Tensor) -> Tensor:
    """Grey levels ``v`` (float64, 0..255) of plain model-range images ``x = 2v/255 − 1``."""
    return ((x.detach().to(torch.float64) + 1.0) * 127.5).round().clamp(0, 255)


def dequantize(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform dequantisation ``y = 2(v + u)/256 − 1``, ``u ~ U[0, 1)``, of ``x = 2v/255 − 1``.

    ``x`` ``(B, *D)`` holds images as ``scorelab.data.images.to_model_range`` maps them (plain);
    the result has ``x``'s shape, dtype and device, and lies in ``[-1, 1)`` (Theis et al. 2016).
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point tensor of model-range images (B, *D)")
    v = to_grey_levels(x)
    u = torch.rand(v.shape, generator=generator, dtype=torch.float64, device=v.device)
    return (2.0 * (v + u) / 2**N_BITS - 1.0).to(x.dtype)


LossFn = Callable[[nn.Module, Tensor, torch.Generator], Tensor]


def dequantized_loss(loss_fn: LossFn) -> LossFn:
    """A training loss that sees freshly dequantised batches (:func:`dequantize`) every step.

    ``loss_fn(model, x0, generator) -> (B,)`` is any per-example loss of the training loop; the
    dequantisation noise is drawn from the same ``generator`` as the loss's own noise, so a
    resumed run stays bit-exact.
    """
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(model, x0, generator) -> (B,)")

    def loss(model: nn.Module, x0: Tensor, generator: torch.Generator) -> Tensor:
        return loss_fn(model, dequantize(x0, generator), generator)

    return loss


def autocast_loss(loss_fn: LossFn, dtype: torch.dtype = torch.bfloat16) -> LossFn:
    """A training loss whose forward pass runs under ``torch.autocast`` (mixed precision).

    bfloat16 keeps float32's exponent range, so no gradient scaler is needed; the per-example
    losses ``(B,)`` are returned in float32. Meant for CUDA (``scorelab train --amp``); on a CPU
    autocast works too but is rarely faster.
    """
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable as loss_fn(model, x0, generator) -> (B,)")
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be torch.bfloat16 or torch.float16; got {dtype}")

    def loss(model: nn.Module, x0: Tensor, generator: torch.Generator) -> Tensor:
        with torch.autocast(device_type=x0.device.type, dtype=dtype):
            out = loss_fn(model, x0, generator)
        return out.float()

    return loss


def image_bits_per_dim(
    score: ScoreFn,
    images: Tensor,
    *,
    sigma_min: float,
    sigma_max: float,
    n_probes: int = 1,
    batch_size: int = 100,
    rtol: float = 1e-4,
    atol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Bits per dimension of 8-bit images through the probability-flow ODE (Song et al. 2021, D.2).

    ``images`` ``(N, C, H, W)`` are plain model-range images; each is dequantised once
    (:func:`dequantize`, drawn from ``generator``) and its log-density ``log p_σmin(y)`` under
    the VE SDE's probability-flow ODE is computed with Hutchinson's trace estimator
    (``n_probes`` Rademacher probes, Hutchinson 1989 / FFJORD) and the adaptive ``dopri5``
    solver; then ``bpd = −log p / (D ln 2) + 7`` (module docstring). The ODE starts where the
    marginal noise level equals ``sigma_min`` (the network's smallest training level), not at
    the SDE's usual ``t = 1e-5`` whose noise level (~1e-4) the network never saw: the model of
    the images is ``p_σmin``, a proper density, so the dequantisation bound holds. Returns plain
    values: ``bpd`` (mean), ``bpd_se`` (its standard error over images), ``n_images``,
    ``n_evals`` (ODE right-hand sides over all batches) and ``offset_bits`` (7).
    """
    from scorelab.samplers.likelihood import bits_per_dim, log_likelihood
    from scorelab.sde import get_sde

    if not isinstance(images, Tensor) or images.ndim < 2:
        raise ValueError("images must be a tensor of shape (N, *D)")
    check_finite(images, "images")
    sigma_min = check_positive(sigma_min, "sigma_min")
    sigma_max = check_positive(sigma_max, "sigma_max")
    if sigma_min >= sigma_max:
        raise ValueError(f"need sigma_min < sigma_max; got {sigma_min:g} and {sigma_max:g}")
    batch_size = check_int(batch_size, "batch_size")
    sde = get_sde("ve", sigma_min=sigma_min, sigma_max=sigma_max)
    t_end = float(sde.t_from_noise(sigma_min))
    y = dequantize(images, generator)
    n_dims = images[0].numel()
    values, n_evals = [], 0
    for chunk in y.split(batch_size):
        result = log_likelihood(
            score,
            chunk,
            sde,
            divergence="hutchinson",
            n_probes=n_probes,
            rtol=rtol,
            atol=atol,
            t_end=t_end,
            generator=generator,
        )
        values.append(bits_per_dim(result.log_prob.detach(), n_dims, n_bits=N_BITS))
        n_evals += result.n_evals
    bpd = torch.cat(values).double()
    se = float(bpd.std() / math.sqrt(len(bpd))) if len(bpd) > 1 else math.nan
    return {
        "bpd": float(bpd.mean()),
        "bpd_se": se,
        "n_images": len(bpd),
        "n_evals": n_evals,
        "offset_bits": N_BITS - 1,
    }
