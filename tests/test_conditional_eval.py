"""Conditional accuracy: the cached per-dataset classifier scores samples against their labels."""

import pytest
import torch

from gankit.data import ImageSource
from gankit.data.images import ImageDataset
from gankit.evaluate import Evaluator
from gankit.metrics.classifier import (
    cached_classifier,
    classifier_path,
    save_classifier,
    train_classifier,
)


def _bright_or_dark(n: int, seed: int) -> ImageDataset:
    """Class 0: dark images, class 1: bright ones (uint8, 1×28×28)."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    base = torch.where(labels[:, None, None, None] == 1, 200, 30)
    noise = torch.randint(0, 40, (n, 1, 28, 28), generator=gen)
    return ImageDataset((base + noise).to(torch.uint8), labels, ["dark", "bright"], "tinyset")


def _scores(source, fake, labels=None):
    """What evaluation reports for ``fake`` samples of an image source, at seed 0."""
    return Evaluator(source, None).sample_scores(fake, 0, labels)


@pytest.fixture
def source(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    train, test = _bright_or_dark(64, 0), _bright_or_dark(64, 1)
    assert cached_classifier("tinyset", 1, 28) is None
    model = train_classifier(train.images, train.labels, 2, epochs=3, seed=0, progress=False)
    save_classifier(model, classifier_path("tinyset", 1, 28), {"dataset": "tinyset"})
    return ImageSource(train, test, seed=0)


def test_conditional_accuracy_uses_the_cached_classifier(source):
    real = source.reference(32, seed=0)
    truth = torch.as_tensor(
        [int(x.mean() > 0) for x in real]  # bright images are above 0 in [-1, 1]
    )
    right = _scores(source, real, labels=truth)["eval/cond_accuracy"]
    wrong = _scores(source, real, labels=1 - truth)["eval/cond_accuracy"]
    assert right > 0.9 and wrong < 0.1


def test_no_labels_no_accuracy_but_feature_scores(source):
    out = _scores(source, source.reference(16, seed=0))
    assert "eval/cond_accuracy" not in out
    assert {"eval/cfid", "eval/cfid_floor", "eval/ckid", "eval/ckid_floor"} <= set(out)
    assert out["protocol"]["classifier_sha256"] and out["protocol"]["n_real"] == 16


def test_conditional_scores_include_per_class_fid(source):
    real = source.reference(32, seed=0)
    labels = torch.as_tensor([int(x.mean() > 0) for x in real])
    out = _scores(source, real, labels=labels)
    assert {"eval/cfid_class/dark", "eval/cfid_class/bright"} <= set(out)
