"""What every sampler returns, the error it raises on divergence, and the shared step bookkeeping.

Every sampler in :mod:`scorelab.samplers` is a plain function of ``(score, x, schedule, options)``
returning one :class:`SampleResult`. The bookkeeping common to all of them — the optional
trajectory, the per-step ``callback``, the ``tqdm`` progress bar, the finiteness check and the
count of score evaluations — lives in :class:`StepMonitor` so that each sampler's body is only
its update rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from scorelab.utils import MAX_SIGMA, check_finite, check_generator

#: ``callback(info)`` is called after every step with a dict holding at least ``"i"`` (step
#: index, from 0), ``"x"`` (the state after the step, ``(B, *D)``) and ``"sigma"`` or ``"t"``.
Callback = Callable[[dict[str, Any]], None]

#: How often (in steps) the state is checked for NaN/Inf when it lives on an accelerator, where a
#: check forces a device synchronisation. On the CPU every step is checked (it costs one
#: reduction over ``x``). The final state is always checked.
CHECK_EVERY_ON_DEVICE = 10


@dataclass
class SampleResult:
    """Output of every sampler: final samples, optional trajectory, number of score evaluations.

    ``samples`` has shape ``(B, *D)``. ``trajectory`` is ``None`` unless the sampler was called
    with ``keep_trajectory=True``; then it has shape ``(n_saved, B, *D)`` where
    ``trajectory[0]`` is the initial ``x``, ``trajectory[k]`` the state after the k-th update and
    ``trajectory[-1]`` equals ``samples`` (a final denoising step counts as an update).
    ``n_evals`` counts calls of the score function (each call evaluates the whole batch).
    """

    samples: Tensor
    trajectory: Tensor | None
    n_evals: int


class DivergenceError(FloatingPointError):
    """A sampler produced non-finite samples; the message names where and the step size to try."""


def validate_start(
    x: Tensor, name: str = "x", *, generator: torch.Generator | None = None
) -> Tensor:
    """Check that a sampler's starting point is a floating ``(B, *D)`` tensor without NaN/Inf.

    Also checks the sampler's ``generator``: ``None`` or a ``torch.Generator`` on ``x``'s device.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, *D); got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have shape (B, *D) with a batch dimension; got shape {tuple(x.shape)} "
            "(use x[None] for a single point)"
        )
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {x.dtype}")
    check_generator(generator, x.device)
    return check_finite(x, name, hint="start the sampler from finite values")


class StepMonitor:
    """Trajectory, callback, progress bar and divergence check shared by the samplers.

    A sampler calls :meth:`step` after each update and :meth:`finish` once at the end. ``hint``
    is a string or a zero-argument function returning one; it is appended to the
    :class:`DivergenceError` message and should name the step size to try.
    """

    def __init__(
        self,
        sampler: str,
        x: Tensor,
        n_total: int,
        *,
        keep_trajectory: bool = False,
        progress: bool = False,
        callback: Callback | None = None,
        hint: str | Callable[[], str] = "",
    ) -> None:
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None; got {type(callback).__name__}")
        self.sampler = sampler
        self.hint = hint
        self.callback = callback
        self.trajectory: list[Tensor] | None = [x] if keep_trajectory else None
        self.check_every = 1 if x.device.type == "cpu" else CHECK_EVERY_ON_DEVICE
        self.n_steps_done = 0
        # No tqdm object at all unless asked: even a disabled bar starts tqdm's monitor thread.
        self.bar = tqdm(total=n_total, desc=sampler, leave=False) if progress else None

    def step(self, x: Tensor, where: str, **info: Any) -> None:
        """Record the state after one update; ``where`` reads like ``"step 3"`` in messages."""
        self.n_steps_done += 1
        if self.n_steps_done % self.check_every == 0:
            self.check(x, where)
        if self.trajectory is not None:
            self.trajectory.append(x)
        if self.callback is not None:
            self.callback({"i": self.n_steps_done - 1, "x": x, **info})
        if self.bar is not None:
            self.bar.update(1)

    def guard(self, x: Tensor, where: str) -> None:
        """Check an intermediate state before it is fed to the score again (CPU only).

        Skipped on accelerators (it would synchronise); there the per-step check catches it.
        """
        if self.check_every == 1:
            self.check(x, where)

    def check(self, x: Tensor, where: str) -> None:
        """Raise :class:`DivergenceError` if ``x`` holds NaN or Inf."""
        if not bool(torch.isfinite(x).all()):
            self.close()
            hint = self.hint() if callable(self.hint) else self.hint
            at = "at" if self.check_every == 1 else "by"
            msg = f"{self.sampler} diverged {at} {where} (non-finite samples)"
            raise DivergenceError(msg + (f"; {hint}" if hint else ""))

    def close(self) -> None:
        """Close the progress bar, if any."""
        if self.bar is not None:
            self.bar.close()

    def finish(self, x: Tensor, n_evals: int, where: str = "the last step") -> SampleResult:
        """Final check, close the progress bar and pack the :class:`SampleResult`."""
        self.check(x, where)
        self.close()
        traj = torch.stack(self.trajectory) if self.trajectory is not None else None
        return SampleResult(samples=x, trajectory=traj, n_evals=n_evals)


def call_score(score: Callable[..., Tensor], x: Tensor, *args: Tensor) -> Tensor:
    """Evaluate ``score(x, *args)`` and check that it returns a tensor shaped like ``x``."""
    s = score(x, *args)
    if not isinstance(s, Tensor) or s.shape != x.shape:
        got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        raise ValueError(
            f"score must return a tensor of the shape of x {tuple(x.shape)}; got {got}"
        )
    return s


def validate_sigmas(sigmas: Tensor | list[float], name: str = "sigmas") -> list[float]:
    """Check a noise ladder (1-D, finite, > 0, strictly descending) and return it as floats.

    The ladder is kept as Python floats (float64) so that step-size arithmetic is exact and no
    device synchronisation happens inside the sampling loop.
    """
    s = torch.as_tensor(sigmas, dtype=torch.float64).detach().cpu()
    if s.ndim != 1 or s.numel() < 1:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of noise levels; got {s.shape}")
    if not bool(torch.isfinite(s).all()) or bool((s <= 0).any()):
        raise ValueError(f"{name} must be finite and > 0 (the final 0 is appended internally)")
    if float(s.max()) > MAX_SIGMA:
        raise ValueError(
            f"{name} holds {float(s.max()):.3g}; noise levels above {MAX_SIGMA:g} overflow when "
            "squared: use a sigma_max of a few times the data's scale"
        )
    if s.numel() > 1 and bool((s[1:] >= s[:-1]).any()):
        raise ValueError(
            f"{name} must be strictly descending (largest noise level first); "
            "use e.g. scorelab.sde.karras_sigmas or geometric_sigmas"
        )
    return s.tolist()


def full_like_batch(value: float, x: Tensor) -> Tensor:
    """A ``(B,)`` tensor holding ``value`` on ``x``'s device and dtype."""
    return torch.full((x.shape[0],), value, dtype=x.dtype, device=x.device)


def start_ladder(
    sampler: str,
    x: Tensor,
    sigmas: Tensor | list[float],
    *,
    denoise: bool,
    generator: torch.Generator | None,
    keep_trajectory: bool,
    progress: bool,
    callback: Callback | None,
    evals_per_level: int = 1,
) -> tuple[Tensor, list[float], StepMonitor]:
    """The shared set-up of every σ-ladder sampler: ``(x, levels, monitor)``.

    Checks the start ``x`` and ``generator``, validates the ladder and appends the final ``0``
    when ``denoise`` (the last step then returns the denoiser's output), and opens the
    :class:`StepMonitor` with one step per level and a hint naming a finer ladder. A sampler's
    body is then its update rule over ``zip(levels[:-1], levels[1:])``.
    """
    x = validate_start(x, generator=generator)
    levels = validate_sigmas(sigmas)
    levels = [*levels, 0.0] if denoise else levels
    monitor = StepMonitor(
        sampler,
        x,
        len(levels) - 1,
        keep_trajectory=keep_trajectory,
        progress=progress,
        callback=callback,
        hint=f"use a finer ladder (len(sigmas) >= {2 * len(levels) * evals_per_level})",
    )
    return x, levels, monitor


def denoiser(score: Callable[..., Tensor], x: Tensor, sigma: float) -> Tensor:
    """``D(x, σ) = x + σ²·score(x, σ)``, the posterior mean E[x₀ | x] (Tweedie), ``(B, *D)``."""
    return x + sigma**2 * call_score(score, x, full_like_batch(sigma, x))
