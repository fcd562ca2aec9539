"""Classifier-feature FID/KID with real-vs-real floors, per class, and Inception FID plumbing."""

import warnings

import numpy as np
import pytest
import torch

from gankit.metrics import images as scores


def _features(n: int, shift: float, seed: int, dim: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Two classes of Gaussian features; class k centred at k·3 (+ ``shift`` on every axis)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, dim)) + 3.0 * y[:, None] + shift
    return x, y


def test_halves_are_disjoint_equal_and_seeded():
    h = scores.split_halves(100, 30, seed=1)
    assert len(h.reference) == len(h.floor) == 30
    assert not set(h.reference.tolist()) & set(h.floor.tolist())
    assert torch.equal(h.reference, scores.split_halves(100, 30, seed=1).reference)
    assert len(scores.split_halves(100, 80, seed=1).reference) == 50  # capped at half


def test_real_like_fakes_score_near_the_floor_and_shifted_ones_far_above():
    test_x, test_y = _features(2000, 0.0, seed=0)
    good_x, good_y = _features(1000, 0.0, seed=1)
    bad_x, bad_y = _features(1000, 1.0, seed=2)
    good = scores.classifier_scores(good_x, good_y, test_x, test_y, ["a", "b"], seed=0)
    bad = scores.classifier_scores(bad_x, bad_y, test_x, test_y, ["a", "b"], seed=0)
    assert good["eval/cfid"] < 3 * good["eval/cfid_floor"] + 0.05
    # a shift of 1 on 8 axes moves the means by 8 in squared distance
    assert bad["eval/cfid"] > 7.0 > good["eval/cfid"]
    assert bad["eval/ckid"] > 10 * max(good["eval/ckid"], 1e-3)
    assert abs(good["eval/ckid_floor"]) < 0.1 * bad["eval/ckid"]
    assert {"eval/cfid_class/a", "eval/cfid_floor_class/b", "eval/cfid_class_mean"} <= set(good)
    assert good["protocol"]["n_fake"] == good["protocol"]["n_real"] == 1000


def test_per_class_scores_catch_swapped_labels():
    """Right images, wrong requested labels: overall cFID is fine, per-class cFID is not."""
    test_x, test_y = _features(2000, 0.0, seed=0)
    x, y = _features(1000, 0.0, seed=1)
    right = scores.classifier_scores(x, y, test_x, test_y, ["a", "b"], seed=0)
    swapped = scores.classifier_scores(x, 1 - y, test_x, test_y, ["a", "b"], seed=0)
    assert swapped["eval/cfid"] == pytest.approx(right["eval/cfid"])
    assert swapped["eval/cfid_class_mean"] > 50 * right["eval/cfid_class_mean"]


def test_unconditional_scores_have_no_per_class_entries():
    test_x, test_y = _features(200, 0.0, seed=0)
    out = scores.classifier_scores(test_x[:50], None, test_x, test_y, ["a", "b"], seed=0)
    assert not [k for k in out if "class" in k]


def test_inception_scores_cache_real_halves(monkeypatch, tmp_path):
    """The real halves' stats are computed once and then read from the protocol-keyed cache."""
    import gankit.metrics.fid as fid

    calls = []

    def fake_net(images_u8):
        calls.append(len(images_u8))
        return images_u8.float().flatten(1)[:, :16].numpy()

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(fid, "inception_features", fake_net)
    gen = torch.Generator().manual_seed(0)
    test = torch.randint(0, 256, (200, 1, 8, 8), generator=gen, dtype=torch.uint8)
    fake = torch.randint(0, 256, (60, 1, 8, 8), generator=gen, dtype=torch.uint8)
    first = scores.inception_scores(fake, test, 60, seed=0, dataset="toyset")
    second = scores.inception_scores(fake, test, 60, seed=0, dataset="toyset")
    assert calls == [60, 60, 60, 60]  # halves R and F once, the fakes twice
    assert first["eval/fid_inception"] == second["eval/fid_inception"]
    assert first["protocol_inception"]["network_sha256"] == fid.INCEPTION_SHA256
    assert len(list(tmp_path.rglob("*.safetensors"))) == 2
    (warning,) = first["protocol_inception"]["warnings"]  # 60 real images, 2048 features
    assert warning.startswith("eval/fid_inception is unreliable with 60 real images against 2048")


def test_fid_on_fewer_real_images_than_features_says_so_and_points_to_kid():
    """n real < d features: the protocol lists why cFID is unreliable (overall and per class)
    and Python warns; with enough real images there is no warning."""
    test_x, test_y = _features(100, 0.0, seed=0, dim=64)
    x, y = _features(100, 0.0, seed=1, dim=64)
    with pytest.warns(UserWarning, match="eval/cfid is unreliable with 50 real images against 64"):
        out = scores.classifier_scores(x, y, test_x, test_y, ["a", "b"], seed=0)
    overall, per_class = out["protocol"]["warnings"]
    assert "read eval/ckid" in overall and "n >= 64" in overall
    assert per_class.startswith("eval/cfid_class is unreliable with 25 real images against 64")

    test_x, test_y = _features(2000, 0.0, seed=0)
    x, y = _features(1000, 0.0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = scores.classifier_scores(x, y, test_x, test_y, ["a", "b"], seed=0)
    assert "warnings" not in out["protocol"]
