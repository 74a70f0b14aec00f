"""Probability-flow log-likelihood with the exact score against the exact log-density (seed 004).

For exact draws ``x`` of the seed 004 two-dimensional mixture, ``scorelab.samplers.log_likelihood``
integrates the probability-flow ODE (dopri5, exact divergence, float64) with the mixture's exact
noised score from ``t_end = sde.eps`` to ``T`` and returns ``log p = prior_term + delta_logp``.
Two prior terms are evaluated on the same ODE solution (``latent``, ``delta_logp``):

- the exact noised target at ``T`` (the law of ``α_T·X + σ_T·Z``, ``GaussianMixture.noised``):
  what is left is the ODE solver's error (and the ``O(σ_{t_end}²)`` gap between ``p_{t_end}``
  and ``p_0``);
- the SDE's usual Gaussian prior ``N(0, s²I)`` (``sde.prior_log_prob``): the gap it leaves is
  the prior mismatch, ``log N(x_T) − log p_T(x_T)``.

The reference is the exact ``log p(x)`` (``GaussianMixture.log_prob``). Reported per SDE: mean
and max |error| per sample in nats, the mean signed error, the number of ODE evaluations.

    python benchmarks/bench_likelihood.py --quick      # 100 points, one SDE
    python benchmarks/bench_likelihood.py              # 1000 points, VE-λ25, VE, VP, two tols
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save_results  # noqa: E402

from scorelab.samplers import log_likelihood  # noqa: E402
from scorelab.sde import SDE, VESDE, VPSDE, VESDELambda  # noqa: E402
from scorelab.targets import mixture_2d  # noqa: E402

TARGET = mixture_2d()


def errors(estimate: torch.Tensor, exact: torch.Tensor) -> dict:
    err = estimate - exact
    return {
        "mean_abs_error": float(err.abs().mean()),
        "max_abs_error": float(err.abs().max()),
        "mean_signed_error": float(err.mean()),
    }


def measure(sde: SDE, x: torch.Tensor, tol: float) -> dict:
    """One ODE solve; both prior terms; errors against the exact log-density."""
    alpha_T, sigma_T = float(sde.alpha(sde.T)), float(sde.sigma(sde.T))
    noised_T = TARGET.noised(sigma_T, alpha_T)  # exact law of x_T
    start = time.perf_counter()
    res = log_likelihood(TARGET.noised_score, x, sde, rtol=tol, atol=tol, divergence="exact")
    secs = time.perf_counter() - start
    exact = TARGET.log_prob(x)
    with torch.no_grad():
        exact_prior = noised_T.log_prob(res.latent)
        gauss_prior = sde.prior_log_prob(res.latent)
    return {
        "sde": repr(sde),
        "rtol=atol": tol,
        "n": x.shape[0],
        "n_evals": res.n_evals,
        "seconds": secs,
        "exact_prior": errors(exact_prior + res.delta_logp, exact),
        "gaussian_prior": errors(gauss_prior + res.delta_logp, exact),
        "prior_gap_mean": float((gauss_prior - exact_prior).mean()),
        "mean_exact_log_prob": float(exact.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=1000, help="number of exact test points")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = 100 if args.quick else args.n
    sdes: list[SDE] = [VESDELambda(25.0)]
    tols = (1e-5,)
    if not args.quick:
        sdes += [VESDE(sigma_min=0.01, sigma_max=20.0), VPSDE()]
        tols = (1e-5, 1e-7)
    gen = torch.Generator().manual_seed(0)
    x = TARGET.sample(n, generator=gen, dtype=torch.float64)
    rows = []
    print("| SDE | rtol=atol | evals | mean abs err, exact prior | mean abs err, Gaussian prior "
          "| signed err, Gaussian prior | seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for sde in sdes:
        for tol in tols:
            r = measure(sde, x, tol)
            rows.append(r)
            exact_err, gauss = r["exact_prior"]["mean_abs_error"], r["gaussian_prior"]
            print(
                f"| {r['sde']} | {tol:g} | {r['n_evals']} | {exact_err:.2e}"
                f" | {gauss['mean_abs_error']:.3g} | {gauss['mean_signed_error']:+.3g}"
                f" | {r['seconds']:.1f} |",
                flush=True,
            )
    save_results("likelihood" + ("_quick" if args.quick else ""), {"n": n, "rows": rows})


if __name__ == "__main__":
    main()
