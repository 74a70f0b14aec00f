"""Gaussian mixtures from .json / .npz files: the format, every validation error, exact scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from scorelab.data import load_dataset
from scorelab.data.toy import is_mixture_path, is_target_source
from scorelab.targets import (
    GaussianMixture,
    MixtureFileError,
    get_target,
    is_mixture_file,
    load_mixture,
    mixture_from_dict,
    save_mixture,
)

F64 = torch.float64
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mixture-ring.json"

# A valid 3-component mixture in D = 2 with full covariances.
GOOD = {
    "weights": [1.0, 2.0, 1.0],
    "means": [[0.0, 0.0], [3.0, 1.0], [-2.0, 2.5]],
    "covs": [
        [[1.0, 0.3], [0.3, 0.5]],
        [[0.4, 0.0], [0.0, 2.0]],
        [[0.7, -0.2], [-0.2, 0.6]],
    ],
}


def _write_json(tmp_path: Path, data: object, name: str = "mix.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _with(**changes: object) -> dict:
    data = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return data


def _autograd_score(log_prob, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_prob(x).sum(), x)
    return grad


# ----------------------------------------------------------------------------------------------
# Loading the three covariance forms
# ----------------------------------------------------------------------------------------------


def test_json_loads_full_covariances_and_normalises_weights(tmp_path):
    mix = load_mixture(_write_json(tmp_path, GOOD))
    assert isinstance(mix, GaussianMixture) and (mix.n_components, mix.dim) == (3, 2)
    torch.testing.assert_close(mix.weights, torch.tensor([0.25, 0.5, 0.25], dtype=F64))
    torch.testing.assert_close(mix.means, torch.tensor(GOOD["means"], dtype=F64))
    torch.testing.assert_close(mix.covs, torch.tensor(GOOD["covs"], dtype=F64))


def test_diagonal_and_scalar_covariances_expand_to_full_matrices(tmp_path):
    means = [[0.0, 0.0, 0.0], [4.0, 0.0, 1.0]]
    diag = load_mixture(
        _write_json(tmp_path, {"weights": [1, 3], "means": means, "covs": [[1, 2, 3], [4, 5, 6]]})
    )
    torch.testing.assert_close(
        diag.covs,
        torch.stack([torch.diag(torch.tensor(v, dtype=F64)) for v in ([1, 2, 3], [4, 5, 6])]),
    )
    scalar = load_mixture(
        _write_json(
            tmp_path, {"weights": [1, 3], "means": means, "covariances": [0.5, 2.0]}, "s.json"
        )
    )
    eye = torch.eye(3, dtype=F64)
    torch.testing.assert_close(scalar.covs, torch.stack([0.5 * eye, 2.0 * eye]))
    torch.testing.assert_close(scalar.weights, torch.tensor([0.25, 0.75], dtype=F64))


def test_one_component_in_one_dimension(tmp_path):
    mix = load_mixture(_write_json(tmp_path, {"weights": [2], "means": [[1.5]], "covs": [0.25]}))
    assert (mix.n_components, mix.dim) == (1, 1)
    x = torch.tensor([[0.0], [1.5], [3.0]], dtype=F64)
    torch.testing.assert_close(mix.score(x), -(x - 1.5) / 0.25)


def test_high_dimensional_diagonal_mixture(tmp_path):
    d = 20
    rng = np.random.default_rng(0)
    data = {
        "weights": [0.2, 0.8],
        "means": rng.normal(size=(2, d)).tolist(),
        "covs": rng.uniform(0.1, 3.0, size=(2, d)).tolist(),
    }
    mix = load_mixture(_write_json(tmp_path, data))
    assert mix.dim == d
    x = mix.sample(4, generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(
        mix.score(x), _autograd_score(mix.log_prob, x), rtol=1e-9, atol=1e-10
    )


# ----------------------------------------------------------------------------------------------
# Exact score and noised score of a loaded mixture against autograd
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_loaded_mixture_scores_match_autograd(tmp_path, suffix):
    path = tmp_path / f"mix{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(GOOD))
    else:
        np.savez(path, **{k: np.asarray(v) for k, v in GOOD.items()})
    mix = get_target(str(path))
    gen = torch.Generator().manual_seed(1)
    x = 3.0 * torch.randn(6, 2, generator=gen, dtype=F64)
    torch.testing.assert_close(
        mix.score(x), _autograd_score(mix.log_prob, x), rtol=1e-9, atol=1e-10
    )
    sigma = torch.tensor([0.01, 0.1, 0.5, 1.0, 3.0, 20.0], dtype=F64)
    torch.testing.assert_close(
        mix.noised_score(x, sigma),
        _autograd_score(lambda y: mix.noised_log_prob(y, sigma), x),
        rtol=1e-9,
        atol=1e-10,
    )
    # log_prob is the log-sum-exp of the file's components, computed here independently
    comps = [
        torch.distributions.MultivariateNormal(
            torch.tensor(m, dtype=F64), torch.tensor(c, dtype=F64)
        )
        for m, c in zip(GOOD["means"], GOOD["covs"], strict=True)
    ]
    w = torch.tensor(GOOD["weights"], dtype=F64) / sum(GOOD["weights"])
    expected = torch.logsumexp(
        torch.stack([torch.log(wk) + c.log_prob(x) for wk, c in zip(w, comps, strict=True)]),
        dim=0,
    )
    torch.testing.assert_close(mix.log_prob(x), expected)


# ----------------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------------


def test_json_and_npz_round_trip_equal(tmp_path):
    original = load_mixture(_write_json(tmp_path, GOOD, "orig.json"))
    save_mixture(original, tmp_path / "a.json")
    save_mixture(original, tmp_path / "a.npz")
    from_json = load_mixture(tmp_path / "a.json")
    from_npz = load_mixture(tmp_path / "a.npz")
    for attr in ("weights", "means", "covs"):
        assert torch.equal(getattr(from_json, attr), getattr(from_npz, attr)), attr
        torch.testing.assert_close(getattr(from_json, attr), getattr(original, attr))
    assert sorted(np.load(tmp_path / "a.npz").files) == ["covs", "means", "weights"]
    assert set(json.loads((tmp_path / "a.json").read_text())) == {"weights", "means", "covs"}
    # a second trip changes nothing
    save_mixture(from_npz, tmp_path / "b.json")
    assert torch.equal(load_mixture(tmp_path / "b.json").covs, from_npz.covs)


def test_save_mixture_rejects_other_suffixes_and_types(tmp_path):
    mix = load_mixture(_write_json(tmp_path, GOOD))
    with pytest.raises(ValueError, match=r"must end in \.json or \.npz"):
        save_mixture(mix, tmp_path / "m.txt")
    with pytest.raises(TypeError, match="GaussianMixture"):
        save_mixture(GOOD, tmp_path / "m.json")


def test_example_file_loads():
    mix = get_target(str(EXAMPLE))
    assert (mix.n_components, mix.dim) == (6, 2)
    torch.testing.assert_close(mix.weights, torch.tensor([1, 2, 3, 1, 2, 3], dtype=F64) / 12)
    torch.testing.assert_close(mix.means.norm(dim=1), torch.full((6,), 2.0, dtype=F64))


# ----------------------------------------------------------------------------------------------
# Validation: one clear error per problem
# ----------------------------------------------------------------------------------------------

BAD_CONTENT = [
    (
        "not PD",
        _with(covs=[[[1, 2], [2, 1]], [[1, 0], [0, 1]], [[1, 0], [0, 1]]]),
        r"component 0: covs\[0\] must be positive definite; its smallest eigenvalue is -1",
    ),
    (
        "asymmetric",
        _with(covs=[[[1, 0], [0, 1]], [[1, 0.5], [0, 1]], [[1, 0], [0, 1]]]),
        r"component 1: covs\[1\] must be symmetric",
    ),
    (
        "zero scalar",
        _with(covs=[1.0, 0.0, 1.0]),
        r"'covs' of component 1 has variance 0; variances must be > 0",
    ),
    (
        "negative diagonal",
        _with(covs=[[1, 1], [1, 1], [1, -2]]),
        r"'covs' of component 2 has variance on axis 1 -2; variances must be > 0",
    ),
    (
        "covs rank 4",
        _with(covs=[[[[1.0]]]]),
        r"'covs' has shape \(1, 1, 1, 1\); with means of shape \(3, 2\) it must be \(K, D, D\)",
    ),
    (
        "covs wrong K",
        _with(covs=[[[1, 0], [0, 1]]] * 2),
        r"'covs' has shape \(2, 2, 2\); with means of shape \(3, 2\)",
    ),
    (
        "covs wrong D",
        _with(covs=[[1, 1, 1]] * 3),
        r"'covs' has shape \(3, 3\); .* \(K, D\) = \(3, 2\) diagonal",
    ),
    (
        "weights wrong K",
        _with(weights=[1, 1]),
        r"'weights' must have shape \(K,\) = \(3,\), one per row of 'means'; got \(2,\)",
    ),
    (
        "means 1-D",
        _with(means=[0.0, 1.0, 2.0]),
        r"'means' must have shape \(K, D\) .* \(for 1-D components write \[\[m1\], \[m2\], ",
    ),
    ("means empty", _with(means=[]), r"'means' must have shape \(K, D\) with K, D >= 1"),
    (
        "negative weight",
        _with(weights=[1, -0.5, 1]),
        r"'weights' must be >= 0; component 1 has weight -0.5",
    ),
    ("zero weights", _with(weights=[0, 0, 0]), r"'weights' are all zero"),
    (
        "NaN mean",
        _with(means=[[0, 0], [float("nan"), 1], [-2, 2.5]]),
        r"'means' holds 1 non-finite value\(s\) \(NaN or Inf\), the first at index \[1, 0\]",
    ),
    ("Inf weight", _with(weights=[1, float("inf"), 1]), r"'weights' holds 1 non-finite"),
    ("Inf cov", _with(covs=[1.0, 1.0, float("-inf")]), r"'covs' holds 1 non-finite"),
    (
        "ragged",
        _with(means=[[0, 0], [3], [-2, 2.5]]),
        r"'means' must be an array of real numbers with rows of equal length",
    ),
    ("strings", _with(weights=["a", "b", "c"]), r"'weights' must be an array of real numbers"),
    ("booleans", _with(weights=[True, True, False]), r"'weights' must be .* got bool"),
    ("missing covs", _with(covs=None), r"missing key\(s\) \['covs'\]"),
    ("missing weights", _with(weights=None), r"missing key\(s\) \['weights'\]"),
    ("unknown key", _with(cov=[1, 1, 1]), r"unknown key\(s\) \['cov'\]"),
    ("both cov keys", _with(covariances=[1, 1, 1]), r"either 'covs' or 'covariances', not both"),
    ("description type", _with(description=3), r"'description' must be a string"),
    (
        "top-level list",
        [GOOD],
        r"must hold one object with keys 'weights', 'means', 'covs'; got list",
    ),
]


@pytest.mark.parametrize(
    "data, match", [c[1:] for c in BAD_CONTENT], ids=[c[0] for c in BAD_CONTENT]
)
def test_bad_json_content_is_rejected_with_its_reason(tmp_path, data, match):
    path = _write_json(tmp_path, data)
    with pytest.raises(MixtureFileError, match=match) as err:
        load_mixture(path)
    assert str(path) in str(err.value)  # every message names the file
    with pytest.raises(ValueError, match=match):  # and the same error reaches get_target
        get_target(str(path))


def test_bad_npz_content_is_rejected(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(
        path, weights=np.ones(2), means=np.zeros((2, 2)), covs=np.array([[1.0, 2.0], [2.0, 1.0]])
    )
    # covs (2, 2) is the diagonal form: valid
    assert load_mixture(path).covs[0, 1, 1] == 2.0
    np.savez(path, weights=np.ones(2), means=np.zeros((2, 2)), covs=-np.ones(2))
    with pytest.raises(MixtureFileError, match=r"component 0 has variance -1"):
        load_mixture(path)
    np.savez(path, weights=np.ones(2), means=np.zeros((2, 2)))
    with pytest.raises(MixtureFileError, match=r"missing key\(s\) \['covs'\]"):
        load_mixture(path)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p, "does not exist"),
        (lambda p: (p.mkdir(), p)[1], "is a folder, not a file"),
        (lambda p: (p.write_bytes(b""), p)[1], r"is empty \(0 bytes\)"),
        (lambda p: (p.write_text('{"weights": [1,'), p)[1], r"is not valid JSON: .* line 1"),
        (lambda p: (p.write_bytes(b"\xff\xfe\x00bad"), p)[1], "is not UTF-8 text"),
    ],
    ids=["missing", "folder", "empty", "bad json", "not utf-8"],
)
def test_unreadable_json_files(tmp_path, make, match):
    path = make(tmp_path / "m.json")
    with pytest.raises(MixtureFileError, match=match):
        load_mixture(path)
    with pytest.raises(ValueError, match=match):
        get_target(str(path))


def test_unreadable_or_foreign_npz_and_unknown_suffix(tmp_path):
    bad = tmp_path / "m.npz"
    bad.write_bytes(b"not a zip archive")
    with pytest.raises(MixtureFileError, match=r"not a readable \.npz file \(not a zip archive\)"):
        load_mixture(bad)
    points = tmp_path / "points.npz"
    np.savez(points, x=np.zeros((5, 2)))
    with pytest.raises(MixtureFileError, match=r"holds arrays \['x'\], not a mixture"):
        get_target(str(points))
    obj = tmp_path / "obj.npz"
    np.savez(obj, weights=np.array([{"a": 1}], dtype=object), means=np.zeros((1, 1)))
    with pytest.raises(MixtureFileError, match="pickled"):
        load_mixture(obj)
    txt = tmp_path / "m.txt"
    txt.write_text(json.dumps(GOOD))
    with pytest.raises(MixtureFileError, match=r"unknown extension '\.txt'; use \.json or \.npz"):
        load_mixture(txt)


def test_mixture_from_dict_without_a_file():
    mix = mixture_from_dict(GOOD)
    assert mix.n_components == 3
    with pytest.raises(MixtureFileError, match=r"^mixture: 'weights' are all zero"):
        mixture_from_dict(_with(weights=[0, 0, 0]))


# ----------------------------------------------------------------------------------------------
# get_target and load_dataset accept mixture files
# ----------------------------------------------------------------------------------------------


def test_get_target_names_and_paths(tmp_path):
    with pytest.raises(
        ValueError, match=r"unknown target 'moons'; .* \.json/\.npz Gaussian-mixture"
    ):
        get_target("moons")
    with pytest.raises(MixtureFileError, match="does not exist"):
        get_target("no-such-mixture.json")
    path = _write_json(tmp_path, GOOD)
    assert get_target(path).n_components == 3  # a PathLike works too


def test_load_dataset_draws_from_a_mixture_file(tmp_path):
    path = _write_json(tmp_path, GOOD)
    x = load_dataset(str(path), 50, seed=4)
    expected = load_mixture(path).sample(50, generator=torch.Generator().manual_seed(4))
    assert x.dtype == torch.float32 and x.shape == (50, 2)
    assert torch.equal(x, expected)
    assert torch.equal(load_dataset(path, 50, seed=4), x)
    assert not torch.equal(load_dataset(path, 50, seed=5), x)
    assert load_dataset(path).shape == (5000, 2)  # default n, as for preset targets
    npz = tmp_path / "mix.npz"
    save_mixture(load_mixture(path), npz)
    assert torch.equal(load_dataset(str(npz), 50, seed=4), x)


def test_points_npz_stays_point_data(tmp_path):
    pts = np.arange(12, dtype=np.float64).reshape(6, 2)
    np.savez(tmp_path / "pts.npz", x=pts)
    path = str(tmp_path / "pts.npz")
    assert torch.equal(load_dataset(path), torch.from_numpy(pts).float())
    assert not is_mixture_file(path) and not is_mixture_path(path) and not is_target_source(path)
    mix_path = _write_json(tmp_path, GOOD)
    assert is_mixture_file(mix_path) and is_target_source(str(mix_path))
    assert is_target_source("ring-8") and not is_target_source("moons")
    with pytest.raises(MixtureFileError, match="does not exist"):
        load_dataset("missing.json", 10)
