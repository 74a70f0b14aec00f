"""Exponential moving average of a network's weights (Polyak averaging), as used by NCSN v2 and
EDM for sampling, through ``torch.optim.swa_utils.AveragedModel``."""

from __future__ import annotations

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from scorelab.utils import check_positive


def create_ema(model: nn.Module, decay: float) -> AveragedModel:
    """Return an EMA copy of ``model``: ``ema ← decay·ema + (1 − decay)·θ`` at each ``update``.

    The average starts at the current weights (so after ``k`` updates with weights ``θ_1..θ_k`` it
    equals ``decay^k θ_0 + (1 − decay) Σ_i decay^(k−i) θ_i``). Buffers are averaged too. Call
    ``ema.update_parameters(model)`` after every optimiser step; the averaged network is
    ``ema.module`` (in eval mode) and ``ema.state_dict()`` holds tensors only, so it resumes
    exactly.
    """
    decay = check_positive(decay, "ema_decay")
    if decay >= 1:
        raise ValueError(f"ema_decay must be in (0, 1), e.g. 0.999; got {decay!r}")
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    # AveragedModel copies the weights on its first update; doing that now starts the average at
    # the initial weights, so the first real update already mixes (the usual EMA convention).
    ema.update_parameters(model)
    ema.requires_grad_(False)
    ema.eval()  # never trained: BatchNorm/dropout act as at inference
    return ema
