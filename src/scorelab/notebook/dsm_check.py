"""Seed 004's training cell ``test_DSM_objective``: fit ``ScoreModel_Time`` by the DSM loss while
tracking its error against the mixture's exact time-dependent score.

Built from the shells over the core: ``sample_X_and_score_t_depend`` (exact p_t points and
scores), ``ScoreModel_Time`` (``scorelab.models.FourierTimeMLP``) and ``loss_fn``
(``scorelab.losses.continuous_dsm_loss``).
"""

from __future__ import annotations

from typing import Any

import torch
from tqdm.auto import tqdm

from scorelab.notebook.data import _core_mixture, sample_X_and_score_t_depend
from scorelab.notebook.seed004 import GaussianMixture, ScoreModel_Time, loss_fn
from scorelab.utils import check_int, seeded_module

__all__ = ["test_DSM_objective"]

#: The seed's settings: λ of g(t) = λ^t, Adam's learning rate, the time cut-off ε, the number of
#: DSM training points and of score-error points (train, test), and how often the errors are logged.
LAMBDA, LR, EPS = 25.0, 0.005, 0.01
N_DSM, N_ERROR_TRAIN, N_ERROR_TEST, N_TIMES, LOG_EVERY = 10000, 10000, 2000, 500, 25


def test_DSM_objective(  # noqa: N802 (the seed's name)
    gmm: GaussianMixture,
    epochs: int = 500,
    seed: int = 0,
    *,
    progress: bool = True,
) -> tuple[ScoreModel_Time, Any]:
    """Train ``ScoreModel_Time(λ = 25)`` on ``gmm`` by DSM; log its score error (seed 004).

    Each epoch is one full-batch Adam step (lr 0.005) on the continuous-time DSM loss
    ``‖σ_t s(x + σ_t z, t) + z‖²``, t ~ U[0.01, 1], over 10 000 clean samples of ``gmm``. Every
    25 epochs and at the last one it records ``(ep, DSM_loss, MSE_train, MSE_test)``: the
    element-wise mean squared error between the network and the exact score ∇log p_t on
    10 000 (train) and 2 000 (test) pairs ``(x ~ p_t, t)``, t on 500 times in [0.01, 1]
    (:func:`~scorelab.notebook.sample_X_and_score_t_depend`). Returns the trained model and
    the records as a ``pandas.DataFrame`` with those four columns.

    ``seed`` fixes everything (data, noise, initial weights) through a ``torch.Generator`` and
    ``scorelab.utils.seeded_module``; no global RNG is seeded or consumed. The seed's cell
    calls ``set_seed(seed)`` instead, and measures the error against the clean mixture's score
    at every t (see ``sample_X_and_score_t_depend(diffused=False)``).
    """
    import pandas as pd  # imported here: only this function needs it

    target = _core_mixture(gmm)
    epochs = check_int(epochs, "epochs")
    seed = check_int(seed, "seed", minimum=0)
    gen = torch.Generator().manual_seed(seed)
    x_error_train, y_error_train, t_error_train = sample_X_and_score_t_depend(
        gmm, trainN=N_ERROR_TRAIN, sigma=LAMBDA, partition=N_TIMES, EPS=EPS, generator=gen
    )
    x_error_test, y_error_test, t_error_test = sample_X_and_score_t_depend(
        gmm, trainN=N_ERROR_TEST, sigma=LAMBDA, partition=N_TIMES, EPS=EPS, generator=gen
    )
    x_dsm = target.sample(N_DSM, generator=gen, dtype=torch.float32)
    model = seeded_module(lambda: ScoreModel_Time(sigma=LAMBDA, generator=gen), seed)
    optim = torch.optim.Adam(model.parameters(), lr=LR)

    def score_mse(x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> float:
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(model(x, t), y))

    stats = []
    bar = tqdm(range(epochs), desc="test_DSM_objective", disable=not progress)
    for ep in bar:
        loss = loss_fn(model, x_dsm, model.sigma_t_fun, eps=EPS, generator=gen)
        optim.zero_grad()
        loss.backward()
        optim.step()
        if ep % LOG_EVERY == 0 or ep == epochs - 1:
            mse_train = score_mse(x_error_train, y_error_train, t_error_train)
            mse_test = score_mse(x_error_test, y_error_test, t_error_test)
            stats.append((ep, float(loss.detach()), mse_train, mse_test))
            bar.set_postfix(dsm=stats[-1][1], mse_train=mse_train, mse_test=mse_test)
    columns = ["ep", "DSM_loss", "MSE_train", "MSE_test"]
    return model, pd.DataFrame(stats, columns=columns)


test_DSM_objective.__test__ = False  # a seed's name, not a pytest test
