"""A small LeNet-style digit classifier whose features measure image quality offline.

Inception-based FIDs download their weights, so scorelab measures MNIST-like samples with a
classifier trained here in seconds (as TF-GAN's MNIST Fréchet distance does): its penultimate
activations feed :func:`scorelab.metrics.fid.classifier_fid` and its predictions
:func:`scorelab.metrics.fid.class_coverage`. The network follows LeNet-5 (LeCun et al. 1998):
conv → pool → conv → pool → fully connected (features) → fully connected (logits).

Checkpoints hold a ``state_dict`` and plain config/meta dicts, are written atomically and are
loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scorelab.utils import (
    CheckpointError,
    append_dims,
    atomic_writer,
    check_finite,
    check_int,
    check_positive,
    seeded_module,
)

#: Marks a file written by :func:`save_classifier` (training checkpoints lack it).
CLASSIFIER_KIND = "scorelab-classifier"
#: Bump when the checkpoint layout changes; older files are then refused clearly.
CLASSIFIER_FORMAT = 1
_PLAIN_META = (bool, int, float, str, type(None))


class LeNet(nn.Module):
    """LeNet-style classifier ``(B, C, H, W) -> (B, n_classes)`` logits (LeCun et al. 1998).

    Two conv + ReLU + 2×2 max-pool stages (5×5 kernels for images of 16 pixels or more, 3×3
    below, both "same"-padded so 8×8 digits keep a 2×2 map), then ``fc(feature_dim)`` + ReLU
    (the features :meth:`features` returns) and ``fc(n_classes)``. ``channels`` are the two
    conv widths (LeNet-5 used 6 and 16; 16 and 32 train in seconds on a CPU).

    ``noise_conditional=True`` makes it a classifier of noised images ``p(y | x₀ + σz)`` for
    classifier guidance (Dhariwal & Nichol 2021): the input is scaled by ``1/√(1 + σ²)`` and
    ``log σ / 4`` is appended as one more input channel; ``forward(x, sigma)`` with ``sigma``
    ``(B,)`` (``None``: clean images, σ = 0).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        n_classes: int = 10,
        feature_dim: int = 128,
        channels: tuple[int, int] = (16, 32),
        noise_conditional: bool = False,
    ) -> None:
        super().__init__()
        self.noise_conditional = bool(noise_conditional)
        self.in_channels = check_int(in_channels, "in_channels")
        self.image_size = check_int(image_size, "image_size", minimum=4)
        self.n_classes = check_int(n_classes, "n_classes", minimum=2)
        self.feature_dim = check_int(feature_dim, "feature_dim")
        c1, c2 = (check_int(c, "channels") for c in channels)
        self.channels = (c1, c2)
        kernel = 5 if self.image_size >= 16 else 3
        extra = 1 if self.noise_conditional else 0  # the log σ channel
        self.conv1 = nn.Conv2d(self.in_channels + extra, c1, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv2d(c1, c2, kernel, padding=kernel // 2)
        side = self.image_size // 4  # two 2×2 pools, flooring odd sizes
        self.fc1 = nn.Linear(c2 * side * side, self.feature_dim)
        self.fc2 = nn.Linear(self.feature_dim, self.n_classes)

    def config(self) -> dict[str, Any]:
        """The plain constructor arguments, enough to rebuild the network."""
        config = {
            "in_channels": self.in_channels,
            "image_size": self.image_size,
            "n_classes": self.n_classes,
            "feature_dim": self.feature_dim,
            "channels": list(self.channels),
        }
        if self.noise_conditional:
            config["noise_conditional"] = True
        return config

    def check_images(self, x: Tensor, name: str = "images") -> Tensor:
        """Raise ``ValueError`` unless ``x`` is ``(B, in_channels, image_size, image_size)``."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (B, C, H, W); got {type(x)}")
        want = (self.in_channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"{name} must have shape (B, {want[0]}, {want[1]}, {want[2]}) for this "
                f"classifier (trained on {want[1]}×{want[2]} images); got {tuple(x.shape)}. "
                "Use the classifier trained on the same data set as the images"
            )
        return x

    def _noise_input(self, x: Tensor, sigma: Tensor | None) -> Tensor:
        """``x/√(1 + σ²)`` with a ``log σ / 4`` channel (σ floored at 1e-3; ``None``: clean)."""
        if sigma is None:
            sigma = x.new_zeros(x.shape[0])
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        sigma = sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma
        if sigma.shape != (x.shape[0],):
            raise ValueError(f"sigma must have shape (B,) = ({x.shape[0]},); got {sigma.shape}")
        s = append_dims(sigma, x.ndim)
        c_noise = append_dims(sigma.clamp_min(1e-3).log() / 4, x.ndim).expand_as(x[:, :1])
        return torch.cat([x / (1 + s.square()).sqrt(), c_noise], dim=1)

    def features(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        """Penultimate activations ``(B, C, H, W) -> (B, feature_dim)`` (after the ReLU);
        ``sigma`` ``(B,)`` for a noise-conditional classifier (``None``: clean images)."""
        self.check_images(x)
        if self.noise_conditional:
            x = self._noise_input(x, sigma)
        elif sigma is not None:
            raise ValueError(
                "this classifier is not noise-conditional: call it without sigma, or train one "
                "with `scorelab classifier --noise-conditional`"
            )
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x: Tensor, sigma: Tensor | None = None) -> Tensor:
        """Class logits ``(B, C, H, W) -> (B, n_classes)`` (of noised images at ``sigma``)."""
        return self.fc2(self.features(x, sigma))


def _check_labelled(images: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Validate training images ``(N, C, H, W)`` and integer labels ``(N,)``."""
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (N, C, H, W); got {shape}")
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be square; got {images.shape[2]}×{images.shape[3]}")
    check_finite(images, "images")
    labels = torch.as_tensor(labels, device=images.device)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.dtype.is_complex:
        raise TypeError(f"labels must hold integer class indices; got dtype {labels.dtype}")
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"labels must have shape (N,) = ({images.shape[0]},) to match images; "
            f"got {tuple(labels.shape)}"
        )
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"labels must be >= 0; got min {int(labels.min())}")
    return images, labels.long()


def train_classifier(
    images: Tensor,
    labels: Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    augment_noise: float = 0.0,
    n_classes: int | None = None,
    feature_dim: int = 128,
    channels: tuple[int, int] = (16, 32),
    progress: bool = False,
    noise_range: tuple[float, float] | None = None,
) -> LeNet:
    """Train a :class:`LeNet` on images ``(N, C, H, W)`` in [-1, 1]: cross-entropy, Adam, cosine lr.

    The learning rate decays from ``lr`` to 0 over all steps (cosine annealing); the defaults
    reach about 97 % test accuracy on the 5000-image MNIST subset and 8×8 digits on a CPU.

    ``seed`` fixes the initial weights and the batch order (through a local generator; the
    global RNG is left as it was). ``augment_noise`` > 0 adds N(0, augment_noise²) pixel noise
    to each training batch, which makes the features less brittle on imperfect samples.
    ``n_classes`` defaults to ``max(labels) + 1``. Returns the network in eval mode, on the
    images' device.

    ``noise_range=(σ_min, σ_max)`` trains a noise-conditional classifier ``p(y | x₀ + σz)``
    (``LeNet(noise_conditional=True)``) for classifier guidance: each training image gets its
    own σ, log-uniform on the range, and fresh noise (Dhariwal & Nichol 2021, on noised x_t).
    """
    images, labels = _check_labelled(images, labels)
    if images.shape[0] < 2:
        raise ValueError(f"images must hold at least 2 examples; got {images.shape[0]}")
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    augment_noise = check_positive(augment_noise, "augment_noise", strict=False)
    if n_classes is None:
        n_classes = max(int(labels.max()) + 1, 2)
    elif int(labels.max()) >= n_classes:
        raise ValueError(f"labels go up to {int(labels.max())}; n_classes must exceed that")
    noisy = noise_range is not None
    if noisy:
        lo, hi = (check_positive(v, "noise_range") for v in noise_range)
        if lo >= hi:
            raise ValueError(
                f"noise_range must be (sigma_min, sigma_max) with min < max; got {noise_range}"
            )
    model = seeded_module(
        lambda: LeNet(images.shape[1], images.shape[2], n_classes, feature_dim, channels, noisy),
        seed,
    )
    model = model.to(device=images.device, dtype=images.dtype)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise_gen = torch.Generator(device=images.device).manual_seed(seed + 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = images.shape[0]
    steps = epochs * math.ceil(n / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    model.train()
    for epoch in _epochs(epochs, progress):
        order = torch.randperm(n, generator=generator).to(images.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            x = images[idx]
            if augment_noise > 0:
                z = torch.randn(x.shape, generator=noise_gen, device=x.device, dtype=x.dtype)
                x = x + augment_noise * z
            sigma = None
            if noisy:
                u = torch.rand(x.shape[0], generator=noise_gen, device=x.device, dtype=x.dtype)
                sigma = lo * (hi / lo) ** u
                z = torch.randn(x.shape, generator=noise_gen, device=x.device, dtype=x.dtype)
                x = x + append_dims(sigma, x.ndim) * z
            loss = F.cross_entropy(model(x, sigma), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if not math.isfinite(float(loss.detach())):
            raise FloatingPointError(f"classifier loss is {float(loss)} at epoch {epoch}; lower lr")
    return model.eval()


def _epochs(epochs: int, progress: bool) -> range:
    """The epoch indices, wrapped in a tqdm bar when ``progress`` is set."""
    if not progress:
        return range(epochs)
    from tqdm.auto import tqdm

    return tqdm(range(epochs), desc="classifier", unit="epoch")


@torch.inference_mode()
def classifier_accuracy(
    model: LeNet, images: Tensor, labels: Tensor, *, batch_size: int = 500
) -> float:
    """Fraction of ``images`` ``(N, C, H, W)`` whose arg-max logit equals ``labels`` ``(N,)``."""
    images, labels = _check_labelled(images, labels)
    model.check_images(images)
    batch_size = check_int(batch_size, "batch_size")
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start : start + batch_size])
        correct += int((logits.argmax(dim=1) == labels[start : start + batch_size]).sum())
    return correct / max(images.shape[0], 1)


def save_classifier(
    path: str | os.PathLike, model: LeNet, meta: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model``'s weights, config and ``meta`` to ``path`` atomically; return the path.

    ``meta`` holds plain values describing the training (e.g. ``{"data": "digits",
    "accuracy": 0.98}``); anything but bool/int/float/str/None raises ``TypeError``.
    """
    if not isinstance(model, LeNet):
        raise TypeError(f"model must be a scorelab LeNet; got {type(model).__name__}")
    meta = dict(meta or {})
    for key, value in meta.items():
        if not isinstance(key, str) or type(value) not in _PLAIN_META:
            raise TypeError(
                f"meta[{key!r}] is a {type(value).__name__}; meta holds str keys and plain "
                "values (bool, int, float, str, None) so the file loads with weights_only=True"
            )
    state = {
        "kind": CLASSIFIER_KIND,
        "format_version": CLASSIFIER_FORMAT,
        "config": model.config(),
        "meta": meta,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_writer(path, lambda tmp: torch.save(state, tmp))
    return path


def load_classifier(
    path: str | os.PathLike, *, image_size: int | None = None
) -> tuple[LeNet, dict[str, Any]]:
    """Load a classifier written by :func:`save_classifier`: ``(model in eval mode, meta)``.

    Loads on the CPU with ``weights_only=True``. Raises ``CheckpointError`` (a ``ValueError``)
    for a missing, truncated, corrupt or foreign file, and ``ValueError`` when ``image_size``
    is given and differs from the size the classifier was trained on.
    """
    path = Path(path)
    hint = "train one with `scorelab classifier` (or models.classifier.train_classifier)"
    if not path.is_file():
        raise CheckpointError(f"no classifier checkpoint at {path}; check the path or {hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain "
            f"values ({str(err).splitlines()[0][:120]}); scorelab never writes such files"
        ) from None
    except Exception as err:  # torch raises RuntimeError, EOFError... on damaged files
        raise CheckpointError(
            f"classifier checkpoint {path} is truncated or corrupt ({type(err).__name__}); "
            f"delete it and {hint}"
        ) from None
    if not isinstance(state, dict) or state.get("kind") != CLASSIFIER_KIND:
        raise CheckpointError(f"{path} is not a scorelab classifier checkpoint; {hint}")
    if state.get("format_version") != CLASSIFIER_FORMAT:
        raise CheckpointError(
            f"classifier checkpoint {path} has format {state.get('format_version')!r}, this "
            f"scorelab reads format {CLASSIFIER_FORMAT}; {hint}"
        )
    config = state["config"]
    if image_size is not None and int(image_size) != config["image_size"]:
        raise ValueError(
            f"classifier {path} was trained on {config['image_size']}×{config['image_size']} "
            f"images but image_size={image_size} was asked for; use a classifier trained on "
            "the same data set as the images"
        )
    model = LeNet(**{**config, "channels": tuple(config["channels"])})
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(
            f"classifier checkpoint {path} does not match its own config "
            f"({str(err).splitlines()[0][:160]}); {hint}"
        ) from None
    return model.eval(), dict(state.get("meta", {}))
