"""Scores of two-domain translators, and the evaluation classifiers they are read with.

:class:`TranslationScorer` runs a model's ``translate`` over a pair's test splits and reports
cycle errors, errors against the hidden true pairs (where the data know them), label
preservation, domain success and classifier-feature FID/KID with real-vs-real floors.
:func:`train_pair_classifiers` trains and caches the classifiers those scores need
(``gankit train classifier --data PAIR``).
"""

import functools
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gankit.data import UnpairedSource, open_data
from gankit.data.images import to_float, to_uint8
from gankit.data.unpaired import resized, to_channels
from gankit.errors import GankitError
from gankit.metrics.classifier import (
    accuracy,
    cached_classifier,
    classifier_features,
    classifier_path,
    predict,
    save_classifier,
    train_classifier,
)
from gankit.metrics.images import classifier_scores

Translate = Callable[[Tensor, str], Tensor]  # (images, "AtoB" | "BtoA") → translations


def classifier_names(pair: str) -> dict[str, str]:
    """Cache names of a pair's evaluation classifiers: ``PAIR-A``/``PAIR-B`` (content classes of
    each domain, labelled pairs only) and ``PAIR-domain`` (0 = A, 1 = B on channel-matched
    images); see :func:`train_pair_classifiers`."""
    return {k: f"{pair}-{k}" for k in ("A", "B", "domain")}


class TranslationScorer:
    """Scores translators on one pair; keeps its classifiers and real features between calls."""

    def __init__(self, source: UnpairedSource) -> None:
        self.source = source
        self.classifiers: dict[str, Any] = {}
        self.test_features: dict[tuple[int, str], np.ndarray] = {}

    def classifier(self, key: str) -> Any:
        """The cached classifier ``key`` ("A", "B", "domain") at this data's shape, or None."""
        channels = {
            "A": self.source.spec.shape[0],
            "B": self.source.spec.shape_b[0],
            "domain": max(self.source.spec.shape[0], self.source.spec.shape_b[0]),
        }[key]
        side = self.source.spec.shape[-1]
        if not 16 <= side <= 256:
            return None
        loaded = self.classifiers  # read and checksummed once
        if loaded.get(key) is None:
            found = cached_classifier(classifier_names(self.source.spec.name)[key], channels, side)
            loaded[key] = None if found is None else found[0]
        return loaded[key]

    @torch.no_grad()
    def scores(self, translate: Translate, both: bool, n: int, seed: int) -> dict[str, float]:
        """Translation metrics of ``translate(x, "AtoB"|"BtoA")`` (``both``: the model has the
        BtoA generator too) on up to ``n`` test examples of each domain drawn by the source's
        ``example_indices`` (``seed``).

        Images are in [-1, 1], so every L1 (mean absolute difference per pixel and channel) lies
        in [0, 2]; the rates lie in [0, 1].

        * ``eval/cycle_l1_a`` = mean |F(G(a)) − a|, ``eval/cycle_l1_b`` = mean |G(F(b)) − b|
          (models with both generators).
        * With hidden pairs: ``eval/pair_l1_ab`` = mean |G(a) − b*| against the true B image b*
          of each a, beside the do-nothing baseline ``eval/identity_l1_ab`` = mean |a − b*| (a
          channel-matched: grey repeated to RGB, RGB to luminance); ``_ba`` likewise.
        * With cached classifiers (``gankit train classifier --data NAME``):
          ``eval/label_preservation_ab``, the share of a whose class by A's classifier equals the
          class of G(a) by B's; ``eval/domain_success_ab``, the share of G(a) the A-vs-B domain
          classifier calls B; ``_ba`` likewise; ``eval/fid_ab`` and ``eval/kid_ab``, FID and KID
          of G(a) against half of test B on B's classifier features (the domain classifier's
          for unlabelled pairs), beside ``eval/fid_ab_floor``/``eval/kid_ab_floor``: the other
          half of test B scored the same way (see :mod:`gankit.metrics.images`).
        """
        ia, ib = self.source.example_indices(n, seed)
        xa, xb = to_float(self.source.test_a.images[ia]), to_float(self.source.test_b.images[ib])
        c_a, c_b = self.source.spec.shape[0], self.source.spec.shape_b[0]

        def run(x: Tensor, direction: str) -> Tensor:
            parts = [translate(x[i : i + 256], direction).cpu() for i in range(0, len(x), 256)]
            return torch.cat(parts).clamp(-1, 1)

        def l1(x: Tensor, y: Tensor) -> float:
            return float((x - y).abs().mean())

        fake_b = run(xa, "AtoB")
        fake_a = run(xb, "BtoA") if both else None
        out: dict[str, float] = {}
        if fake_a is not None:
            out["eval/cycle_l1_a"] = l1(run(fake_b, "BtoA"), xa)
            out["eval/cycle_l1_b"] = l1(run(fake_a, "AtoB"), xb)
        if self.source.hidden_b_of_test_a is not None:
            true_b = to_float(self.source.hidden_b_of_test_a[ia])
            out["eval/pair_l1_ab"] = l1(fake_b, true_b)
            out["eval/identity_l1_ab"] = l1(to_channels(xa, c_b), true_b)
        if self.source.hidden_a_of_test_b is not None and fake_a is not None:
            true_a = to_float(self.source.hidden_a_of_test_b[ib])
            out["eval/pair_l1_ba"] = l1(fake_a, true_a)
            out["eval/identity_l1_ba"] = l1(to_channels(xb, c_a), true_a)
        out.update(self._classifier_scores(xa, xb, fake_a, fake_b, seed))
        return out

    def _classifier_scores(
        self, xa: Tensor, xb: Tensor, fake_a: Tensor | None, fake_b: Tensor, seed: int
    ) -> dict[str, float]:
        """Label preservation and domain success of each direction, where classifiers exist."""
        out: dict[str, float] = {}
        clf_a, clf_b = (self.classifier(k) if self.source.has_labels else None for k in ("A", "B"))
        directions = [("ab", xa, fake_b, clf_a, clf_b, 1)]
        if fake_a is not None:
            directions.append(("ba", xb, fake_a, clf_b, clf_a, 0))
        domain = self.classifier("domain")
        c = max(self.source.spec.shape[0], self.source.spec.shape_b[0])
        for tag, source, fake, clf_src, clf_dst, target in directions:
            if clf_src is not None and clf_dst is not None:
                before = torch.as_tensor(predict(clf_src, to_uint8(source)))
                after = torch.as_tensor(predict(clf_dst, to_uint8(fake)))
                out[f"eval/label_preservation_{tag}"] = float((before == after).float().mean())
            if domain is not None:
                said = torch.as_tensor(predict(domain, to_uint8(to_channels(fake, c))))
                out[f"eval/domain_success_{tag}"] = float((said == target).float().mean())
            # FID in the target domain: the target's content classifier knows its classes; an
            # unlabelled pair falls back to the A-vs-B classifier's features
            network = clf_dst if clf_dst is not None else domain
            if network is not None:
                test = (self.source.test_a, self.source.test_b)[target].images
                fit = c if network is domain else fake.shape[1]
                out.update(self._target_fid(network, fake, test, fit, tag, seed))
        return out

    def _target_fid(
        self,
        network: Any,
        fake: Tensor,
        test: Tensor,
        channels: int,
        tag: str,
        seed: int,
    ) -> dict[str, float]:
        """FID and KID of translations against one half of the target test split, beside the
        floor of its other half (same count), on the penultimate features of ``network``."""
        if min(len(fake), len(test) // 2) < 2:
            return {}  # a covariance needs two images on each side
        feats = classifier_features(network, to_uint8(to_channels(fake, channels)))
        cache = self.test_features  # the same at every evaluation
        key = (id(network), tag)
        if key not in cache:
            cache[key] = classifier_features(network, to_channels(test, channels))
        real = cache[key]
        scores = classifier_scores(feats, None, real, np.zeros(len(real)), [], seed)
        return {
            f"eval/fid_{tag}": scores["eval/cfid"],
            f"eval/fid_{tag}_floor": scores["eval/cfid_floor"],
            f"eval/kid_{tag}": scores["eval/ckid"],
            f"eval/kid_{tag}_floor": scores["eval/ckid_floor"],
        }


def train_pair_classifiers(source: UnpairedSource, cfg: Any) -> dict[str, dict[str, Any]]:
    """Train and cache the evaluation classifiers of a two-domain source (used by
    :class:`TranslationScorer`).

    * ``NAME-A``, ``NAME-B`` (labelled pairs only): the content classes of each domain, trained
      on the domain's train split, accuracy on its test split.
    * ``NAME-domain``: A (0) vs B (1) on channel-matched images (:func:`to_channels`), trained on
      both train splits, accuracy on both test splits.

    Train images larger than the test size (folders keep them at 1.125x) are resized to it.

    Args:
        source: the pair.
        cfg: a ``gankit.metrics.classifier.ClassifierConfig`` (epochs 0: 2 for the domain
            classifier, enough passes to see 120,000 images for the content classifiers).

    Returns:
        {"A"|"B"|"domain": {"classifier": path, "test_accuracy": float or None}}.
    """
    side = source.spec.shape[-1]
    names = classifier_names(source.spec.name)
    make_extra = source.data.classifier_extra
    # built only if a content classifier is actually trained (not when both come from the cache)
    extra = functools.cache(make_extra) if make_extra is not None else None
    # (key, train images, labels, test images, labels, classes, index into extra() or None)
    jobs: list[tuple[str, Tensor, Tensor, Tensor, Tensor, int, int | None]] = []
    if source.has_labels:
        for key, index, train, test in (
            ("A", 0, source.train_a, source.test_a),
            ("B", 1, source.train_b, source.test_b),
        ):
            x = resized(train.images, side)
            jobs.append(
                (key, x, train.labels, test.images, test.labels, source.spec.num_classes, index)
            )
    c = max(source.spec.shape[0], source.spec.shape_b[0])

    def both(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([to_channels(resized(a, side), c), to_channels(resized(b, side), c)])
        y = torch.cat(
            [torch.zeros(len(a), dtype=torch.int64), torch.ones(len(b), dtype=torch.int64)]
        )
        return x, y

    train_x, train_y = both(source.train_a.images, source.train_b.images)
    test_x, test_y = both(source.test_a.images, source.test_b.images)
    jobs.append(("domain", train_x, train_y, test_x, test_y, 2, None))
    results: dict[str, dict[str, Any]] = {}
    for key, x, y, xt, yt, k, index in jobs:
        channels = int(x.shape[1])
        path = classifier_path(names[key], channels, side)
        if cfg.reuse and (cached := cached_classifier(names[key], channels, side)) is not None:
            results[key] = {"classifier": str(path), "test_accuracy": cached[1]["test_accuracy"]}
            continue
        if extra is not None and index is not None:
            more = extra()[index]
            x, y = torch.cat([x, resized(more.images, side)]), torch.cat([y, more.labels])
        # content classes need as many images seen as MNIST's 2 epochs (120k: 24 passes over a
        # 5,000-image side; 2 passes gave 97.1% on digits2colour A and 90.4% on B; 3 over
        # digits2colour's 55,000 with its extra images), A vs B is easy (2 passes: 100%)
        epochs = cfg.epochs or (2 if key == "domain" else max(2, -(-120_000 // len(x))))
        model = train_classifier(
            x, y, k, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed
        )
        acc = accuracy(model, xt, yt) if len(xt) else None
        meta = {
            "dataset": names[key],
            "test_accuracy": acc,
            "test_images": len(xt),
            "train_images": len(x),
            **asdict(cfg),
            "epochs": epochs,
        }
        save_classifier(model, path, meta)
        results[key] = {"classifier": str(path), "test_accuracy": acc}
    return results


def train_unpaired_classifiers(name: str, cfg: Any) -> dict[str, dict[str, Any]]:
    """``gankit train classifier --data PAIR``: :func:`train_pair_classifiers` of a built-in pair
    or a trainA/trainB folder, at ``cfg.image_size`` (0: the data's default size)."""
    # the classifiers train on every train image at once: read into memory, never streamed
    source = open_data(name, 0, cfg.image_size, stream="false")
    if not isinstance(source, UnpairedSource):
        raise GankitError(f"{name} holds 2-D points: its metrics need no classifier")
    return train_pair_classifiers(source, cfg)
