"""The sampler registry, ``draw_samples``, the one evaluation protocol, and the thin CLI.

Each test checks a number against an exact answer: evaluation counts against counted score
calls, samples of exact scores against their true law (by the protocol, next to its floor),
mode weights against the true weights, the floor ratio of exact samples against 1.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scorelab.cli.main import main
from scorelab.metrics import LawReference, measure_against_law, mixture_weights
from scorelab.samplers import (
    RECOMMENDED,
    SAMPLERS,
    SamplerConfig,
    ScoreSource,
    draw_samples,
    evaluation_count,
    target_source,
)
from scorelab.targets import Gaussian, get_target


class Counted:
    """Wrap a score and count its calls."""

    def __init__(self, score):
        self.score, self.calls = score, 0

    def __call__(self, *args):
        self.calls += 1
        return self.score(*args)


def _counting_source(target) -> tuple[ScoreSource, Counted, Counted]:
    src = target_source(target)
    score, clean = Counted(src.score), Counted(src.clean_score)
    fields = {**src.__dict__, "score": score, "clean_score": clean}
    return ScoreSource(**fields), score, clean


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_registry_counts_every_score_call(name: str) -> None:
    """`evals(steps, options)` is the exact number of score calls, for default and other steps."""
    spec = SAMPLERS[name]
    for steps in (3, 4):
        source, score, clean = _counting_source(get_target("mixture-2d"))
        options = {"levels": 3} if spec.schedule == "annealed" else {}
        res = draw_samples(
            source, 64, name, steps=steps, generator=torch.Generator().manual_seed(0), **options
        )
        calls = score.calls + clean.calls
        assert res.n_evals == calls, name
        expected = evaluation_count(name, steps, **options)
        assert expected is None or expected == calls, (name, expected, calls)
        if spec.schedule != "clean":
            no_denoise = draw_samples(source, 8, name, steps=steps, denoise=False, **options)
            expected = evaluation_count(name, steps, denoise=False, **options)
            assert expected is None or no_denoise.n_evals == expected


def test_options_are_checked_by_name() -> None:
    source = target_source(get_target("mixture-2d"))
    with pytest.raises(ValueError, match="takes no option s_churn"):
        draw_samples(source, 8, "dpmpp-3m", s_churn=1.0)
    with pytest.raises(ValueError, match="ladder .* must be one of geometric, karras"):
        draw_samples(source, 8, "dpmpp-3m", ladder="linear")
    with pytest.raises(ValueError, match="unknown sampler 'nope'"):
        draw_samples(source, 8, "nope")
    with pytest.raises(ValueError, match="sigma_min .* must be smaller"):
        draw_samples(source, 8, "dpmpp-3m", sigma_min=50.0)


def test_sigma_max_factor_is_in_units_of_the_data_scale() -> None:
    """σ_max = factor × the largest std of the law: the same draws as that σ_max given directly."""
    target = get_target("aniso-16d")
    source = target_source(target)
    scale = float(torch.linalg.eigvalsh(target.covariance().double()).max().sqrt())
    by_factor = draw_samples(source, 64, "ipndm", steps=6, sigma_max_factor=5.0, generator=_gen(1))
    direct = draw_samples(source, 64, "ipndm", steps=6, sigma_max=5.0 * scale, generator=_gen(1))
    assert torch.allclose(by_factor.samples, direct.samples, atol=1e-5)
    default = draw_samples(source, 64, "ipndm", steps=6, generator=_gen(1))
    assert not torch.allclose(default.samples, direct.samples, atol=1e-3)
    with pytest.raises(ValueError, match="--sigma-max-factor.*not both"):
        draw_samples(source, 8, "ipndm", sigma_max=3.0, sigma_max_factor=5.0)
    # The recommended configuration sets a factor; a σ_max given by the caller replaces it.
    assert "sigma_max_factor" in RECOMMENDED["exact"].options
    mine = draw_samples(source, 64, None, steps=6, sigma_max=2.0 * scale, generator=_gen(1))
    cfg = RECOMMENDED["exact"]
    same = {k: v for k, v in cfg.options.items() if k != "sigma_max_factor"}
    direct = draw_samples(source, 64, cfg.sampler, steps=6, sigma_max=2.0 * scale,
                          generator=_gen(1), **same)  # fmt: skip
    assert torch.equal(mine.samples, direct.samples)


def test_the_recommended_configuration_is_the_default() -> None:
    """No sampler named: the source's recommended configuration, with its steps."""
    source = target_source(get_target("mixture-2d"))
    assert source.recommended == RECOMMENDED["exact"]
    res = draw_samples(source, 16, generator=torch.Generator().manual_seed(0))
    assert res.n_evals == evaluation_count(RECOMMENDED["exact"])
    same = draw_samples(
        source, 16, RECOMMENDED["exact"].sampler, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(res.samples, same.samples)


def test_defaults_reach_the_floor_on_mixture_2d() -> None:
    """`--sampler dpmpp-3m --steps 10` with every other default: ≤ 1.15× the floor (3 seeds ×
    5000 samples, the one protocol; issue figure)."""
    target = get_target("mixture-2d")
    source = target_source(target)
    ratios = []
    for seed in range(3):
        res = draw_samples(source, 5000, "dpmpp-3m", steps=10, generator=_gen(seed))
        m = measure_against_law(res.samples, _law(target), seed=seed)["sliced_w2"]
        ratios.append(m.ratio)
    assert float(np.mean(ratios)) <= 1.15, ratios


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _law(target):
    return lambda n, g: target.sample(n, generator=g)


STOCHASTIC = [
    SamplerConfig("dpmpp-2m-sde", 50),
    SamplerConfig("edm-stochastic", 25),
    SamplerConfig("reverse-sde", 500),
    SamplerConfig("pc", 250),
    SamplerConfig("annealed-langevin", 100),
]


def test_stochastic_samplers_on_separated_unequal_modes() -> None:
    """ring-8 (8 modes of std 0.1, weights ∝ 1..8): each stochastic sampler keeps every mode
    weight within ±0.02 and stays near the floor, where a Gaussian with the right mean and
    covariance scores ≥ 2.5× (so the distance can tell a wrong law)."""
    target = get_target("ring-8")
    reference = LawReference(_law(target), 5000, seed=11)
    gauss = Gaussian(target.mean(), target.covariance())
    wrong = reference.measure(gauss.sample(5000, generator=_gen(1)))["sliced_w2"]
    assert wrong.ratio >= 2.5
    source = target_source(target)
    for config in STOCHASTIC:
        res = draw_samples(source, 5000, config, generator=_gen(3))
        weights = mixture_weights(res.samples, target)
        err = float((weights - target.weights.to(weights)).abs().max())
        assert err <= 0.02, (config.sampler, weights.tolist())
        ratio = reference.measure(res.samples)["sliced_w2"].ratio
        assert ratio <= 1.6, (config.sampler, ratio)


def test_exact_samples_sit_at_the_floor_on_average() -> None:
    """The protocol's ratio of an exact sample is 1 ± 0.1 averaged over seeds."""
    target = get_target("mixture-2d")
    ratios = [
        measure_against_law(target.sample(2000, generator=_gen(100 + s)), _law(target), seed=s)[
            "sliced_w2"
        ]
        for s in range(8)
    ]
    assert abs(np.mean([m.ratio for m in ratios]) - 1.0) <= 0.1
    assert abs(np.mean([m.calibration_mean for m in ratios]) - 1.0) <= 0.1
    assert all(m.verdict in ("at the floor", "above the floor") for m in ratios)


def test_a_shifted_sample_is_above_the_floor() -> None:
    target = get_target("mixture-2d")
    x = target.sample(2000, generator=_gen(5)) + 0.3
    m = measure_against_law(x, _law(target), seed=0)["sliced_w2"]
    assert m.ratio > 3 and m.verdict == "above the floor"
    assert len(m.floor_values) == 16 and len(m.values) == 5 and len(m.calibration_ratios) == 12


def test_protocol_refuses_too_few_draws() -> None:
    target = get_target("mixture-2d")
    x = target.sample(100, generator=_gen(0))
    with pytest.raises(ValueError, match="n_pairs"):
        measure_against_law(x, _law(target), n_pairs=4)
    with pytest.raises(ValueError, match="n_references"):
        measure_against_law(x, _law(target), n_references=2)


def test_cli_sample_reports_evaluations(tmp_path, capsys) -> None:
    out = tmp_path / "x.npy"
    assert main(["sample", "--target", "mixture-2d", "-n", "300", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["n_evals"] == evaluation_count(RECOMMENDED["exact"])
    assert summary["sampler"] == RECOMMENDED["exact"].sampler
    assert np.load(out).shape == (300, 2)
    assert main(["sample", "--list"]) == 0
    listing = capsys.readouterr().out
    for name in SAMPLERS:
        assert name in listing
    assert "ring-8" in listing and "evals at the default" in listing


def test_cli_rejects_an_option_the_sampler_does_not_take(tmp_path, capsys) -> None:
    argv = ["sample", "--target", "mixture-2d", "--out", str(tmp_path / "x.npy")]
    assert main([*argv, "--sampler", "dpmpp-3m", "--churn", "3"]) == 2
    assert "does not take --churn" in capsys.readouterr().err


def test_cli_evaluate_on_a_2d_run(tmp_path, capsys) -> None:
    """`scorelab evaluate` on a short run of mixture-2d: protocol numbers, exact score error
    per σ and mode weights, written to evaluation.json."""
    run = tmp_path / "run"
    argv = ["train", "--data", "mixture-2d", "--out", str(run), "--steps", "150", "--n", "2000"]
    assert main([*argv, "--no-progress"]) == 0
    assert main(["evaluate", str(run), "-n", "1000"]) == 0
    report = json.loads((run / "evaluation.json").read_text())
    sw = report["distances"]["sliced_w2"]
    assert sw["n"] == 1000 and len(sw["floor_values"]) == 16 and len(sw["values"]) == 5
    assert sw["verdict"] in ("at the floor", "above the floor") and sw["ratio"] > 0
    assert report["n_evals"] == evaluation_count(RECOMMENDED["points"])
    assert len(report["score_error"]["relative"]) == 8
    assert abs(sum(report["mode_weights"]["estimated"]) - 1) < 1e-9
    assert len(report["component_spread"]["thinnest_axis_std_ratio"]) == 2
    text = capsys.readouterr().out
    assert "an exact sample" in text and "mode weights" in text and "thinnest axis" in text


def test_short_demo(tmp_path) -> None:
    """`scorelab demo` end to end on a short run: files, figures and the protocol's report."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "60", "--n-samples", "400"]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert set(report) == {"annealed-langevin", RECOMMENDED["points"].sampler}
    for name, entry in report.items():
        assert entry["distances"]["sliced_w2"]["n"] == 400
        assert (out / f"samples-{name}.npy").is_file()
    for fig in ("samples.png", "samples-annealed.png", "score-field.png", "loss.png"):
        assert (out / "figures" / fig).stat().st_size > 1000
    assert (out / "figures" / "annealed-langevin.gif").is_file()
