"""Exact conditional laws of a Gaussian mixture: given a class, and given observed coordinates.

Two kinds of conditioning, both in closed form, both with exact noised scores so that guided and
inpainting samplers can be measured against the truth:

- :class:`ClassConditionalMixture` — each component carries a class label (several components may
  share one). ``p(x | y)`` is the sub-mixture of class ``y``; the noise-conditional classifier
  ``p(y | x_σ)`` is the class share of the responsibilities of the noised mixture ``p_σ``; and
  ``∇ₓ log p(y | x_σ) = ∇ₓ log p_σ(x | y) − ∇ₓ log p_σ(x)`` (Bayes' rule; the identity that makes
  classifier guidance at scale 1 exact, Song et al. 2021, sec. 5).
- :class:`ObservedMixture` — ``x = (x_o, x_m)`` with ``x_o = y`` observed. Each component's
  conditional is Gaussian, ``N(μ_m + Σ_mo Σ_oo⁻¹ (y − μ_o), Σ_mm − Σ_mo Σ_oo⁻¹ Σ_om)``, with
  posterior weights ``∝ w_k N(y; μ_o, Σ_oo)`` (e.g. Bishop 2006, sec. 2.3.1 and 9.2), so the law
  of the missing coordinates is again a Gaussian mixture. The noised law of the full vector given
  the clean observation factorises:
  ``p_σ(x | y) = N(x_o; y, σ²I) · Σ_k w̃_k N(x_m; m̃_k, C_k + σ²I)``.

Parameters are float64; scores are computed in the input's dtype and device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from scorelab.targets.gaussian import _as_float64, _check_x, _draw_device, _noise_var
from scorelab.targets.mixture import GaussianMixture
from scorelab.utils import NULL_LABEL, check_int, check_noise_level

_LOG_2PI = math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------
# Class-conditional laws and the noise-conditional classifier
# ----------------------------------------------------------------------------------------------


class ClassConditionalMixture:
    """A Gaussian mixture with class labels on its components: exact ``p(x | y)``, ``p(y | x_σ)``.

    ``labels`` ``(K,)`` maps component ``k`` to its class in ``0..C−1`` (default: each component
    its own class, ``labels = arange(K)``); every class needs at least one component of positive
    weight. The class prior is ``p(y) = Σ_{k: label k = y} w_k``. Labels ``y`` passed to the
    methods are an ``int`` or a ``(B,)`` integer tensor (one label per example); the label
    :data:`scorelab.utils.NULL_LABEL` (−1) means "no label" and gives the unconditional law, so
    :meth:`score` is a ``ConditionalScoreFn`` as a class-conditional network is.
    """

    def __init__(self, mixture: GaussianMixture, labels: Tensor | None = None) -> None:
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(
                f"mixture must be a scorelab GaussianMixture; got {type(mixture).__name__}"
            )
        k = mixture.n_components
        if labels is None:
            lab = torch.arange(k)
        else:
            lab = torch.as_tensor(labels)
            if lab.shape != (k,) or lab.is_floating_point() or lab.is_complex():
                raise ValueError(
                    f"labels must be {k} integers (one class per component, 0..C-1); "
                    f"got {tuple(lab.shape)} of {lab.dtype}"
                )
        lab = lab.to(torch.int64).cpu()
        n_classes = int(lab.max()) + 1
        if int(lab.min()) < 0 or set(lab.tolist()) != set(range(n_classes)):
            raise ValueError(
                f"labels must use every class 0..C-1 with no gaps and none negative; got "
                f"{lab.tolist()}"
            )
        self.mixture = mixture
        self._labels = lab
        self._class_weights = torch.zeros(n_classes, dtype=torch.float64).index_add_(
            0, lab, mixture.weights
        )
        if bool((self._class_weights <= 0).any()):
            empty = (self._class_weights <= 0).nonzero().flatten().tolist()
            raise ValueError(
                f"classes {empty} have zero total weight: p(x | y) is undefined; give each class "
                "a component of positive weight"
            )

    def __repr__(self) -> str:
        return f"ClassConditionalMixture(n_classes={self.n_classes}, mixture={self.mixture!r})"

    @property
    def n_classes(self) -> int:
        """The number of classes ``C``."""
        return self._class_weights.shape[0]

    @property
    def dim(self) -> int:
        """The data dimension ``D``."""
        return self.mixture.dim

    @property
    def labels(self) -> Tensor:
        """The class of each component, ``(K,)`` int64."""
        return self._labels.clone()

    @property
    def class_weights(self) -> Tensor:
        """The class prior ``p(y)``, ``(C,)`` float64."""
        return self._class_weights.clone()

    def _label(self, y: int) -> int:
        y = check_int(y, "y", minimum=0)
        if y >= self.n_classes:
            raise ValueError(f"y must be a class in 0..{self.n_classes - 1}; got {y}")
        return y

    def conditional(self, y: int) -> GaussianMixture:
        """The exact class-conditional law ``p(x | y)``: class ``y``'s components, renormalised."""
        rows = self._labels == self._label(y)
        m = self.mixture
        return GaussianMixture(m.means[rows], m.covs[rows], m.weights[rows])

    def sample(
        self,
        n: int,
        y: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """``n`` exact draws of ``p(x | y)``, shape ``(n, D)``."""
        return self.conditional(y).sample(n, generator=generator, dtype=dtype, device=device)

    def _batch_labels(self, y: int | Tensor, x: Tensor) -> Tensor:
        """``y`` as a ``(B,)`` int64 tensor on ``x``'s device; checks range and shape."""
        lab = torch.as_tensor(y, device=x.device)
        if lab.is_floating_point() or lab.is_complex() or lab.dtype == torch.bool:
            raise TypeError(f"y must be an int or an integer tensor of labels; got {lab.dtype}")
        lab = lab.to(torch.int64)
        if lab.ndim == 0:
            lab = lab.expand(x.shape[0])
        if lab.shape != (x.shape[0],):
            raise ValueError(
                f"y must be an int or a tensor of shape (B,) = ({x.shape[0]},); got "
                f"{tuple(lab.shape)}"
            )
        bad = (lab < NULL_LABEL) | (lab >= self.n_classes)
        if bool(bad.any()):
            raise ValueError(
                f"y must hold classes in 0..{self.n_classes - 1} or NULL_LABEL = {NULL_LABEL} "
                f"(unconditional); got {int(lab[bad][0])}"
            )
        return lab

    def _log_terms(self, x: Tensor, sigma: float | Tensor | None) -> tuple[Tensor, Tensor]:
        """``log w_k + log N_k(x_σ)`` ``(K, B)`` and component scores ``(K, D, B)``."""
        return self.mixture._terms(x, sigma)

    def class_log_probs(self, x: Tensor, sigma: float | Tensor | None = None) -> Tensor:
        """The exact noise-conditional classifier ``log p(y | x_σ)`` for every class, ``(B, C)``.

        ``log p(y | x_σ) = logsumexp_{k: label k = y} log p(k | x_σ)`` with ``p(k | x_σ)`` the
        responsibilities of ``p_σ = p ∗ N(0, σ²I)``; ``sigma=None`` is the clean classifier.
        """
        log_terms, _ = self._log_terms(x, sigma)
        log_resp = torch.log_softmax(log_terms, dim=0)  # (K, B)
        member = (
            self._labels.to(x.device)[None, :]
            == torch.arange(self.n_classes, device=x.device)[:, None]
        )  # (C, K)
        masked = torch.where(member[:, :, None], log_resp[None], -math.inf)  # (C, K, B)
        return torch.logsumexp(masked, dim=1).T.contiguous()

    def _class_score(self, x: Tensor, sigma: float | Tensor, lab: Tensor) -> tuple[Tensor, Tensor]:
        """Conditional score ``∇ log p_σ(x | y_b)`` and unconditional score, both ``(B, D)``."""
        log_terms, scores = self._log_terms(x, sigma)  # (K, B), (K, D, B)
        uncond = (torch.softmax(log_terms, dim=0)[:, None] * scores).sum(dim=0)
        member = (self._labels.to(x.device)[:, None] == lab[None, :]) | (lab == NULL_LABEL)
        resp_y = torch.softmax(torch.where(member, log_terms, -math.inf), dim=0)  # (K, B)
        cond = (resp_y[:, None] * scores).sum(dim=0)
        return cond.T.contiguous(), uncond.T.contiguous()

    def score(self, x: Tensor, sigma: float | Tensor, y: int | Tensor) -> Tensor:
        """Exact class-conditional score ``∇ₓ log p_σ(x | y)``, ``(B, D)`` (ConditionalScoreFn).

        The responsibility-weighted average of the scores of class ``y``'s components of
        ``p_σ``; ``y = NULL_LABEL`` gives the unconditional ``∇ₓ log p_σ(x)``.
        """
        return self._class_score(x, sigma, self._batch_labels(y, x))[0]

    def noised_score(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """The unconditional exact score ``∇ₓ log p_σ(x)`` of the whole mixture, ``(B, D)``."""
        return self.mixture.noised_score(x, sigma)

    def class_log_prob_grad(self, x: Tensor, sigma: float | Tensor, y: int | Tensor) -> Tensor:
        """``∇ₓ log p(y | x_σ) = ∇ₓ log p_σ(x | y) − ∇ₓ log p_σ(x)`` in closed form, ``(B, D)``.

        Bayes' rule: ``log p(y | x_σ) = log p_σ(x | y) + log p(y) − log p_σ(x)`` and the prior
        does not depend on ``x``. Zero for ``y = NULL_LABEL``. This is the exact gradient that
        classifier guidance (Song et al. 2021, sec. 5; Dhariwal & Nichol 2021) approximates with a
        trained noise-conditional classifier.
        """
        cond, uncond = self._class_score(x, sigma, self._batch_labels(y, x))
        return cond - uncond


# ----------------------------------------------------------------------------------------------
# Missing coordinates given observed ones
# ----------------------------------------------------------------------------------------------


def _observed_mask(mask: object, dim: int) -> Tensor:
    """A ``(D,)`` bool mask (True = observed) from a bool/0-1 ``(D,)`` or ``(B, D)`` tensor."""
    m = torch.as_tensor(mask).detach().cpu()
    if m.ndim == 2:
        if m.shape[1] != dim or m.shape[0] < 1:
            raise ValueError(f"mask must have shape (D,) = ({dim},) or (B, {dim}); got {m.shape}")
        if not bool((m == m[0]).all()):
            raise ValueError(
                "the exact conditional needs one mask shared by every example (rows of mask "
                "differ); build one ObservedMixture per mask"
            )
        m = m[0]
    if m.shape != (dim,):
        raise ValueError(
            f"mask must have shape (D,) = ({dim},) or (B, {dim}); got {tuple(m.shape)}"
        )
    if m.dtype != torch.bool:
        if not bool(((m == 0) | (m == 1)).all()):
            raise ValueError("mask must be binary: 1 (or True) = observed, 0 (or False) = missing")
        m = m == 1
    n_obs = int(m.sum())
    if n_obs == 0:
        raise ValueError(
            "mask observes nothing (all 0): the conditional is the mixture itself; sample it "
            "with an unconditional sampler"
        )
    if n_obs == dim:
        raise ValueError("mask observes every coordinate (all 1): nothing is left to impute")
    return m


class ObservedMixture:
    """The exact law of a Gaussian mixture's missing coordinates given observed values.

    ``mask`` ``(D,)`` (or ``(B, D)`` with identical rows): 1/True = observed, 0/False = missing.
    ``observed`` ``(B, D)`` holds one observation per example (entries at missing positions are
    ignored); repeat a row to draw several completions of one input. For each example ``b``
    the missing part follows the Gaussian mixture :meth:`missing_law` ``(b)``: components
    ``N(μ_m,k + A_k (y_b − μ_o,k), C_k)`` with ``A_k = Σ_mo Σ_oo⁻¹``,
    ``C_k = Σ_mm − A_k Σ_om`` (Schur complement) and weights ``∝ w_k N(y_b; μ_o,k, Σ_oo,k)``.
    """

    def __init__(self, mixture: GaussianMixture, mask: object, observed: Tensor) -> None:
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(
                f"mixture must be a scorelab GaussianMixture; got {type(mixture).__name__}"
            )
        d = mixture.dim
        self.mixture = mixture
        self.mask = _observed_mask(mask, d)
        obs = _as_float64(observed, "observed")
        if obs.ndim == 1:
            obs = obs[None]
        if obs.ndim != 2 or obs.shape[1] != d or obs.shape[0] < 1:
            raise ValueError(f"observed must have shape (B, D) = (B, {d}); got {tuple(obs.shape)}")
        self.observed = obs
        o, m = self.mask, ~self.mask
        means, covs = mixture.means, mixture.covs
        s_oo = covs[:, o][:, :, o]
        s_mo = covs[:, m][:, :, o]
        s_mm = covs[:, m][:, :, m]
        gain = torch.linalg.solve(s_oo, s_mo.transpose(-2, -1)).transpose(-2, -1)  # Σ_mo Σ_oo⁻¹
        cond_covs = s_mm - gain @ s_mo.transpose(-2, -1)
        self._covs = 0.5 * (cond_covs + cond_covs.transpose(-2, -1))  # (K, Dm, Dm)
        y_o = obs[:, o]  # (B, Do)
        centred = y_o[:, None, :] - means[None, :, o]  # (B, K, Do)
        self._means = means[None, :, m] + torch.einsum("kmo,bko->bkm", gain, centred)
        marginal = GaussianMixture(means[:, o], s_oo, mixture.weights)
        self._log_weights = torch.log_softmax(marginal.component_log_probs(y_o), dim=1)  # (B, K)
        self._eigvals, self._eigvecs = torch.linalg.eigh(self._covs)

    def __repr__(self) -> str:
        return (
            f"ObservedMixture(batch={self.batch_size}, observed={int(self.mask.sum())}, "
            f"missing={self.n_missing}, mixture={self.mixture!r})"
        )

    @property
    def batch_size(self) -> int:
        """The number of observations ``B``."""
        return self.observed.shape[0]

    @property
    def n_missing(self) -> int:
        """The number of missing coordinates ``D_m``."""
        return int((~self.mask).sum())

    def posterior_weights(self) -> Tensor:
        """Component weights given each observation, ``p(k | x_o = y_b)``, ``(B, K)`` float64."""
        return self._log_weights.exp()

    def missing_law(self, b: int = 0) -> GaussianMixture:
        """The exact law of the missing coordinates of example ``b``, a ``D_m``-dim mixture."""
        b = check_int(b, "b", minimum=0)
        if b >= self.batch_size:
            raise ValueError(f"b must be < batch size {self.batch_size}; got {b}")
        return GaussianMixture(self._means[b], self._covs, self.posterior_weights()[b])

    def complete(self, missing: Tensor) -> Tensor:
        """Full vectors ``(B, D)`` from imputed missing parts ``(B, D_m)`` and the observations."""
        x = self.observed.to(dtype=missing.dtype, device=missing.device).clone()
        x[:, ~self.mask.to(missing.device)] = missing
        return x

    def sample(
        self,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """One exact draw of ``x | x_o = y_b`` for every example, ``(B, D)`` (observed kept)."""
        dev = _draw_device(generator, device)
        k = torch.multinomial(self.posterior_weights().to(dev), 1, generator=generator)[:, 0]
        z = torch.randn(
            (self.batch_size, self.n_missing),
            generator=generator,
            device=dev,
            dtype=torch.float64,
        )
        chol = torch.linalg.cholesky(self._covs).to(dev)
        mean = self._means.to(dev)[torch.arange(self.batch_size, device=dev), k]
        missing = mean + (chol[k] @ z[:, :, None])[:, :, 0]
        return self.complete(missing.to(dtype))

    def mean(self) -> Tensor:
        """``E[x | x_o = y_b]``, ``(B, D)`` float64 (observed coordinates equal ``y_b``)."""
        w = self.posterior_weights()
        return self.complete(torch.einsum("bk,bkm->bm", w, self._means))

    def covariance(self) -> Tensor:
        """``Cov[x | x_o = y_b]``, ``(B, D, D)`` float64, zero in observed rows and columns."""
        w = self.posterior_weights()
        mu = torch.einsum("bk,bkm->bm", w, self._means)
        second = torch.einsum("bk,kij->bij", w, self._covs) + torch.einsum(
            "bk,bki,bkj->bij", w, self._means, self._means
        )
        cov_m = second - mu[:, :, None] * mu[:, None, :]
        d, m = self.mixture.dim, ~self.mask
        cov = torch.zeros(self.batch_size, d, d, dtype=torch.float64)
        idx = m.nonzero().flatten()
        cov[:, idx[:, None], idx[None, :]] = 0.5 * (cov_m + cov_m.transpose(-2, -1))
        return cov

    def prior(
        self,
        sigma_max: float,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """Moment-matched starts ``N(mean_b, cov_b + σ_max²I)`` of ``p_σmax(x | y_b)``, ``(B, D)``.

        The exact conditional's mean and covariance (per example), in ``dtype`` on the generator's
        device: the starting law of :func:`scorelab.samplers.moment_matched_prior`, per example.
        """
        dev = _draw_device(generator, None)
        d = self.mixture.dim
        sigma_max = check_noise_level(sigma_max, "sigma_max")
        cov = self.covariance() + sigma_max**2 * torch.eye(d, dtype=torch.float64)
        chol = torch.linalg.cholesky(cov).to(dev)
        z = torch.randn(
            (self.batch_size, d, 1), generator=generator, device=dev, dtype=torch.float64
        )
        return (self.mean().to(dev) + (chol @ z)[:, :, 0]).to(dtype)

    def _check_batch(self, x: Tensor) -> Tensor:
        x = _check_x(x, self.mixture.dim)
        if x.shape[0] != self.batch_size:
            raise ValueError(
                f"x must have one row per observation, B = {self.batch_size}; got {x.shape[0]} "
                "(repeat the observations to draw several completions of each)"
            )
        return x

    def missing_score(self, x_missing: Tensor, sigma: float | Tensor) -> Tensor:
        """Exact ``∇ log p_σ(x_m | x_o = y_b)`` of the noised conditional mixture, ``(B, D_m)``.

        Components ``N(m̃_bk, C_k + σ²I)`` with weights ``w̃_bk``; responsibilities by log-sum-exp.
        """
        x_m = x_missing
        dt, dev = x_m.dtype, x_m.device
        var = _noise_var(sigma, x_m)  # (B,) or (1,)
        means = self._means.to(device=dev, dtype=dt).permute(1, 2, 0)  # (K, Dm, B)
        eigvals, eigvecs = (
            self._eigvals.to(device=dev, dtype=dt),
            self._eigvecs.to(device=dev, dtype=dt),
        )
        y = eigvecs.transpose(-2, -1) @ (x_m.T[None] - means)  # (K, Dm, B)
        lam = eigvals[:, :, None] + var  # (K, Dm, B)
        ratio = y / lam
        log_n = -0.5 * ((y * ratio).sum(dim=1) + lam.log().sum(dim=1) + x_m.shape[1] * _LOG_2PI)
        resp = torch.softmax(self._log_weights.to(device=dev, dtype=dt).T + log_n, dim=0)  # (K, B)
        scores = (-eigvecs) @ ratio  # (K, Dm, B)
        return (resp[:, None] * scores).sum(dim=0).T.contiguous()

    def score(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """Exact ``∇ₓ log p_σ(x | x_o = y_b)`` of the full vector, ``(B, D)`` (a ``ScoreFn``).

        ``p_σ(x | y) = N(x_o; y, σ²I)·p_σ(x_m | y)``: observed coordinates get ``−(x_o − y)/σ²``
        (so the denoiser returns ``y`` there exactly), missing ones :meth:`missing_score`.
        """
        x = self._check_batch(x)
        s2 = _noise_var(sigma, x)[:, None]
        o = self.mask.to(x.device)
        out = torch.empty_like(x)
        out[:, o] = -(x[:, o] - self.observed.to(device=x.device, dtype=x.dtype)[:, o]) / s2
        out[:, ~o] = self.missing_score(x[:, ~o], sigma)
        return out

    def log_likelihood_grad(self, x: Tensor, sigma: float | Tensor) -> Tensor:
        """``∇ₓ log p(x_o = y | x_σ) = ∇ₓ log p_σ(x | y) − ∇ₓ log p_σ(x)``, ``(B, D)`` (Bayes).

        The exact guidance term of inpainting as a classifier-guidance problem: passed to
        :func:`scorelab.samplers.classifier_guidance` with the mixture's score at scale 1 it gives
        :meth:`score` back.
        """
        return self.score(x, sigma) - self.mixture.noised_score(x, sigma)
