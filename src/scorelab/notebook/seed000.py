"""Seed 000 ("Denoising score matching" homework) as thin shells over scorelab's core.

- ``DenoisingScoreMatcher``: single-σ DSM and Langevin in the η form
  (``scorelab.samplers.langevin.langevin``).
- ``NoiseConditionedScoreNetwork``: multi-level DSM with one random level per example and
  annealed Langevin with the seed's step rule η_i = ε·σ_i²/σ_max²
  (``scorelab.samplers.langevin.annealed_langevin(step_rule="seed")``).
- ``ConditionedResnetBlock`` / ``ConditionedSimpleResnet``: ``scorelab.models`` as they are (with
  the seed's attribute and ``state_dict`` names).

Both models follow the protocol the seed trains with (``scorelab.notebook.train_model``):
``forward(x)`` returns the unreduced loss, one value per element of ``x``; ``loss(x)`` returns
``{"total_loss": forward(x).mean(dim=0).sum()}``; ``sample(n)`` returns ``(n, *input_shape)``.
Randomness: each method takes an optional ``generator``; without one the global torch RNG is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from scorelab.losses import WEIGHTINGS
from scorelab.models import ConditionedResnetBlock, ConditionedSimpleResnet, IndexConditioned
from scorelab.samplers.langevin import annealed_langevin, langevin
from scorelab.utils import append_dims, batch_sigma, check_int, check_positive

__all__ = [
    "ConditionedResnetBlock",
    "ConditionedSimpleResnet",
    "DenoisingScoreMatcher",
    "NoiseConditionedScoreNetwork",
]


def _dsm_residual(
    score: Callable[[Tensor], Tensor],
    x0: Tensor,
    sigma: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """Per-element DSM residual ``(s(x̃) + z/σ)²`` with ``x̃ = x0 + σz``, shape ``(B, *D)``.

    ``sigma`` is ``(B,)``. The seed's ``forward`` must return one loss per *element*, which
    ``scorelab.losses`` (one value per example) cannot give, hence this helper. It draws ``z``
    exactly as ``scorelab.losses.dsm_loss`` does, so ``½·sum_except_batch`` of it equals that loss
    for the same generator state (tested).
    """
    z = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
    s_ = append_dims(sigma, x0.ndim)
    x_noisy = x0 + s_ * z
    s = score(x_noisy)
    if not isinstance(s, Tensor) or s.shape != x0.shape:
        got = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        raise ValueError(f"score_model must return the shape of x, {tuple(x0.shape)}; got {got}")
    return (s + z / s_).square()


def _check_batch(x: Tensor, input_shape: tuple[int, ...]) -> Tensor:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError("x must be a floating-point tensor of shape (B, *input_shape)")
    if tuple(x.shape[1:]) != input_shape:
        raise ValueError(
            f"x must have shape (B, *input_shape) = (B, {', '.join(map(str, input_shape))}); "
            f"got {tuple(x.shape)}"
        )
    return x


def _shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(check_int(d, "input_shape entries") for d in input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple of ints; got {input_shape!r}") from None
    if not shape:
        raise ValueError("input_shape must name at least one data dimension, e.g. (2,)")
    return shape


class _SeedModel(nn.Module):
    """What both seed 000 models share: device/dtype, the loss dict and the uniform start."""

    input_shape: tuple[int, ...]

    @property
    def device(self) -> torch.device:
        """Device of the first parameter or buffer (CPU when there is none)."""
        for t in (*self.parameters(), *self.buffers()):
            return t.device
        return torch.device("cpu")

    @property
    def _dtype(self) -> torch.dtype:
        for p in self.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.get_default_dtype()

    def loss(self, x: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``{"total_loss": forward(x).mean(dim=0).sum()}``: batch mean of the summed loss."""
        return {"total_loss": self(x, generator=generator).mean(dim=0).sum()}

    def _uniform_start(self, num_samples: int, generator: torch.Generator | None) -> Tensor:
        """``x₀ ~ U[−1, 1]`` of shape ``(num_samples, *input_shape)``, as the seed starts."""
        n = check_int(num_samples, "num_samples")
        shape = (n, *self.input_shape)
        u = torch.rand(shape, generator=generator, device=self.device, dtype=self._dtype)
        return 2.0 * u - 1.0


class DenoisingScoreMatcher(_SeedModel):
    """Single-σ denoising score matching (Vincent 2011) with Langevin sampling (seed 000, Task 2).

    ``score_model(x)`` is a score of ``x`` alone ``(B, *input_shape) -> (B, *input_shape)``,
    trained at the one noise level ``sigma``.
    """

    def __init__(self, score_model: nn.Module, input_shape: Sequence[int], sigma: float) -> None:
        super().__init__()
        if not callable(score_model):
            raise TypeError(f"score_model must be a module s(x); got {type(score_model).__name__}")
        self.score_model = score_model
        self.input_shape = _shape(input_shape)
        self.sigma = check_positive(sigma, "sigma")

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-element DSM loss ``(s(x + σz) + z/σ)²``, shape of ``x`` ``(B, *input_shape)``.

        Summed over elements and halved it is ``scorelab.losses.dsm_loss(conditional=False)``.
        """
        x = _check_batch(x, self.input_shape)
        return _dsm_residual(self.score_model, x, batch_sigma(self.sigma, x), generator)

    def langevin_dynamics(
        self,
        x: Tensor,
        num_steps: int,
        eta: float,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``num_steps`` Langevin steps ``x ← x + η/2·s(x) + √η·z`` from ``x`` ``(B, *D)``.

        ``scorelab.samplers.langevin.langevin`` with ``parametrization="eta"``; no gradients.
        """
        result = langevin(
            self.score_model,
            x,
            step_size=eta,
            n_steps=num_steps,
            parametrization="eta",
            generator=generator,
        )
        return result.samples

    def sample(
        self,
        num_samples: int = 64,
        num_steps: int = 100,
        eta: float = 0.01,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``num_samples`` samples ``(num_samples, *input_shape)``: Langevin from ``U[−1, 1]``."""
        x0 = self._uniform_start(num_samples, generator)
        return self.langevin_dynamics(x0, num_steps=num_steps, eta=eta, generator=generator)


class NoiseConditionedScoreNetwork(_SeedModel):
    """NCSN (Song & Ermon 2019): multi-level DSM and annealed Langevin (seed 000, Task 3).

    ``score_model(x, level_index)`` takes a ``LongTensor`` ``(B,)`` of indices into
    ``self.sigmas``, the levels sorted in *descending* order (index 0 is the largest σ), as
    ``ConditionedSimpleResnet`` does. The loss weight is the seed's λ(σ) = σ²/σ_max²
    (``weighting="seed000"``; ``"sigma2"`` gives NCSN's σ², ``"none"`` 1).
    """

    sigmas: Tensor

    def __init__(
        self,
        score_model: nn.Module,
        input_shape: Sequence[int],
        sigmas: Sequence[float],
        *,
        weighting: str = "seed000",
    ) -> None:
        super().__init__()
        if not callable(score_model):
            raise TypeError(
                f"score_model must be a module s(x, level_index); got {type(score_model).__name__}"
            )
        levels = torch.as_tensor(list(sigmas), dtype=torch.float32)
        if levels.ndim != 1 or levels.numel() == 0:
            raise ValueError(f"sigmas must be a non-empty list of noise levels; got {sigmas!r}")
        if not bool(torch.isfinite(levels).all()) or bool((levels <= 0).any()):
            raise ValueError(f"sigmas must be finite and > 0; got {sigmas!r}")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}; got {weighting!r}")
        self.score_model = score_model
        self.input_shape = _shape(input_shape)
        self.weighting = weighting
        # A buffer, so that .to(device) moves the levels with the network; not persistent, so
        # the state_dict holds the score model's weights only, as the seed's (whose sigmas is a
        # plain tensor attribute), and a seed state dict loads with strict=True.
        self.register_buffer("sigmas", torch.sort(levels, descending=True).values, persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs) -> None:
        """Accept state dicts of earlier scorelab versions, which also saved ``sigmas``."""
        saved = state_dict.pop(prefix + "sigmas", None)
        if saved is not None and (
            saved.shape != self.sigmas.shape
            or not torch.allclose(saved.to(self.sigmas), self.sigmas)
        ):
            error_msgs = args[-1] if args else kwargs["error_msgs"]
            error_msgs.append(
                f"the saved sigmas {saved.tolist()} differ from this model's "
                f"{self.sigmas.tolist()}; build the model with the saved levels"
            )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)

    def _weight(self, sigma: Tensor) -> Tensor:
        if self.weighting == "sigma2":
            return sigma.square()
        if self.weighting == "seed000":
            return sigma.square() / self.sigmas.max().to(sigma.dtype).square()
        return torch.ones_like(sigma)

    def forward(self, x: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Per-element loss ``λ(σ_i)·(s(x + σ_i z, i) + z/σ_i)²``, one random level i per example.

        Shape of ``x`` ``(B, *input_shape)``. Summed over elements and halved it is
        ``scorelab.losses.multilevel_dsm_loss(mode="random")`` (same draws, same generator).
        """
        x = _check_batch(x, self.input_shape)
        index = torch.randint(0, len(self.sigmas), (x.shape[0],), generator=generator,
                              device=x.device)  # fmt: skip
        sigma = self.sigmas.to(x.dtype)[index]
        residual = _dsm_residual(lambda xn: self.score_model(xn, index), x, sigma, generator)
        return append_dims(self._weight(sigma), x.ndim) * residual

    def score_fn(self) -> IndexConditioned:
        """The network as a ``score(x, sigma)``: ``score_model(x, index of the nearest level)``."""
        return IndexConditioned(self.score_model, self.sigmas)

    def annealed_langevin_dynamics(
        self,
        x: Tensor,
        num_steps: int,
        eps: float,
        *,
        final_denoise: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Annealed Langevin: ``num_steps`` steps per level, largest σ first, η_i = ε·σ_i²/σ_max².

        ``scorelab.samplers.langevin.annealed_langevin(step_rule="seed")``. The seed ends at the
        smallest level; ``final_denoise=True`` adds the Tweedie step ``x + σ_min²·s(x, σ_min)``.
        """
        result = annealed_langevin(
            self.score_fn(),
            x,
            self.sigmas,
            n_steps_each=num_steps,
            eps=eps,
            step_rule="seed",
            final_denoise=final_denoise,
            generator=generator,
        )
        return result.samples

    def sample(
        self,
        num_samples: int = 64,
        num_steps: int = 100,
        eps: float = 0.1,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """``num_samples`` samples ``(num_samples, *input_shape)``: annealed Langevin from U[−1, 1].

        The seed's code starts from ``U[−1, 1]`` (its text says ``N(0, σ_max² I)``); so do we.
        """
        x0 = self._uniform_start(num_samples, generator)
        return self.annealed_langevin_dynamics(
            x0, num_steps=num_steps, eps=eps, generator=generator
        )
