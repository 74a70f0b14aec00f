"""Measure a trained run: sample quality by the one evaluation protocol, and exact checks.

``scorelab evaluate``, ``scorelab demo`` and the benchmarks call :func:`evaluate_run` or
:func:`evaluate_samples`; every distance is measured by
:func:`scorelab.metrics.measure_against_law` (value over fresh reference draws, floor over
independent pairs, the calibration of an exact sample beside it, and a verdict). For analytic
targets (presets and mixture files) the learned score is also compared with the exact noised
score per σ, and for mixtures the mode weights with the true ones and each component's std
along its principal axes over the truth.
"""

from __future__ import annotations

from typing import Any

import torch

from scorelab.metrics import law_of_set, measure_against_law, measurements_to_dict
from scorelab.runs import Run, fresh_sampler, load_run_data
from scorelab.samplers import SamplerConfig, draw_samples
from scorelab.utils import check_int

#: Distances reported by default: SW₂ is cheap at any n; MMD and energy are quadratic in n.
DEFAULT_DISTANCES = ("sliced_w2",)


def evaluate_run(
    run: Run,
    n: int = 5000,
    sampler: str | SamplerConfig | None = None,
    *,
    steps: int | None = None,
    seed: int = 1,
    distances: tuple[str, ...] = DEFAULT_DISTANCES,
    classifier: Any = None,
    bpd_images: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Sample ``run`` (its recommended sampler unless ``sampler``) and measure the samples."""
    n = check_int(n, "n (-n/--n-samples)", minimum=2)
    generator = torch.Generator(device=run.device).manual_seed(seed)
    source = run.score_source()
    result = draw_samples(source, n, sampler, steps=steps, generator=generator, **options)
    name = sampler if isinstance(sampler, str) else (sampler or source.recommended).sampler
    report = {"sampler": name, "n_evals": result.n_evals}
    samples = result.samples.detach().cpu()
    return {
        **report,
        **evaluate_samples(run, samples, seed=seed, distances=distances, classifier=classifier),
        **({"bits_per_dim": image_bpd(run, bpd_images, seed=seed)} if bpd_images else {}),
    }


def evaluate_samples(
    run: Run,
    samples: torch.Tensor,
    *,
    seed: int = 1,
    distances: tuple[str, ...] = DEFAULT_DISTANCES,
    classifier: Any = None,
) -> dict[str, Any]:
    """Distances of ``samples`` to the run's data law by the protocol (and exact checks)."""
    data_cfg = run.config["data"]
    report: dict[str, Any] = {"step": run.step, "n": int(samples.shape[0])}
    if data_cfg["kind"] == "images":
        report["images"] = image_quality(samples, data_cfg, classifier)
        return report
    law = fresh_sampler(data_cfg["source"])
    if law is not None:
        report["reference"] = "fresh independent draws of the data's law"
    else:
        _, test = load_run_data(
            data_cfg["source"],
            n=data_cfg.get("n"),
            seed=data_cfg["seed"],
            test_fraction=data_cfg["test_fraction"],
        )
        law = law_of_set(test)
        m = min(samples.shape[0], test.shape[0] // 2)
        samples = samples[:m]
        report["reference"] = (
            f"held-out split ({test.shape[0]} points; draws of {m} distinct rows, n = {m})"
        )
    measured = measure_against_law(samples, law, distances=distances, seed=seed)
    report["distances"] = measurements_to_dict(measured)
    report.update(exact_checks(run, samples, data_cfg["source"]))
    return report


def exact_checks(run: Run, samples: torch.Tensor, source: str) -> dict[str, Any]:
    """Score error per level against the exact noised score, mode weights and component spreads
    (each component's std along its principal axes over the truth), for analytic targets
    (presets and mixture files); ``{}`` otherwise."""
    from scorelab.data import is_target_source

    if not is_target_source(source):
        return {}
    from scorelab.metrics import (
        component_spread_report,
        mode_weight_report,
        score_error_per_level,
    )
    from scorelab.sde import geometric_sigmas
    from scorelab.targets import GaussianMixture, get_target

    target = get_target(source)
    noise = run.config["noise"]
    sigmas = geometric_sigmas(
        8, sigma_min=noise["sigma_min"], sigma_max=noise["sigma_max"], dtype=torch.float32
    )
    err = score_error_per_level(
        run.score_fn(),
        target.noised_score,
        lambda n, g: target.sample(n, generator=g),
        sigmas,
        n=2000,
        generator=torch.Generator().manual_seed(0),
    )
    out: dict[str, Any] = {
        "score_error": {
            "sigmas": err.sigmas.tolist(),
            "mse": err.mse.tolist(),
            "relative": err.relative.tolist(),
        }
    }
    if isinstance(target, GaussianMixture):
        out["mode_weights"] = mode_weight_report(samples, target)
        out["component_spread"] = component_spread_report(samples, target)
    return out


def image_quality(samples: torch.Tensor, data_cfg: dict, classifier: Any) -> dict[str, Any]:
    """Classifier Fréchet distance of image samples against the test split, with its floor."""
    if classifier is None:
        return {"note": "pass --classifier (from `scorelab classifier`) for the Fréchet distance"}
    from scorelab.metrics.fid import image_quality_report

    _, test = load_run_data(
        data_cfg["source"], n=None, seed=data_cfg["seed"], test_fraction=data_cfg["test_fraction"]
    )
    # The floor is averaged over random splits of the test images.
    return image_quality_report(classifier, samples, test, n_splits=5)


def image_bpd(run: Run, n_images: int, *, seed: int = 1) -> dict[str, Any]:
    """Bits/dim of the first ``n_images`` test images (``training.images.image_bits_per_dim``)."""
    from scorelab.training.images import image_bits_per_dim

    data_cfg, noise = run.config["data"], run.config["noise"]
    n_images = check_int(n_images, "n_images (--bpd)")
    _, test = load_run_data(
        data_cfg["source"], n=None, seed=data_cfg["seed"], test_fraction=data_cfg["test_fraction"]
    )
    generator = torch.Generator(device=run.device).manual_seed(seed)
    return image_bits_per_dim(
        run.score_fn(),
        test[:n_images].to(run.device),
        sigma_min=noise["sigma_min"],
        sigma_max=noise["sigma_max"],
        generator=generator,
    )


def format_report(report: dict[str, Any]) -> str:
    """The report as a few readable lines (the command line prints it)."""
    lines = [
        f"step {report['step']}, {report['n']} samples by {report['sampler']} "
        f"({report['n_evals']} score evaluations)"
    ]
    for name, d in report.get("distances", {}).items():
        band = d["calibration_mean"], d["calibration_sd"]
        lines.append(
            f"  {name:<10} {d['value']:.4g}  floor {d['floor']:.4g}  ratio {d['ratio']:.2f} "
            f"(an exact sample: {band[0]:.2f} ± {band[1]:.2f}): {d['verdict']}"
        )
    if "mode_weights" in report:
        mw = report["mode_weights"]
        est = ", ".join(f"{w:.3f}" for w in mw["estimated"])
        true = ", ".join(f"{w:.3f}" for w in mw["true"])
        lines.append(f"  mode weights {est} (true {true}; max error {mw['max_abs_error']:.3f})")
    if "component_spread" in report:
        cs = report["component_spread"]
        thin = ", ".join(f"{r:.2f}" for r in cs["thinnest_axis_std_ratio"])
        lines.append(
            f"  std on each component's thinnest axis over the truth {thin} (1 exact; "
            f"standard error about {max(cs['standard_error']):.2f})"
        )
    if "score_error" in report:
        rel = report["score_error"]["relative"]
        lines.append(
            "  relative score error per σ (large → small): " + ", ".join(f"{r:.3f}" for r in rel)
        )
    if "images" in report:
        q = report["images"]
        if "fid" in q:
            lines.append(
                f"  classifier FID {q['fid']:.4g}  floor {q['floor']:.4g}  "
                f"ratio {q['ratio']:.2f}  (n = {q['n_samples']} per split)"
            )
            lines.append(
                f"  classes covered {q['n_covered']}/{len(q['class_fractions'])}, "
                f"confidence {q['confidence']:.3f}"
            )
        else:
            lines.append("  " + q.get("note", str(q)))
    if "bits_per_dim" in report:
        b = report["bits_per_dim"]
        lines.append(
            f"  {b['bpd']:.4g} ± {b['bpd_se']:.2g} bits/dim on {b['n_images']} test "
            f"images (dequantised, offset {b['offset_bits']} bits for [-1, 1])"
        )
    return "\n".join(lines)
