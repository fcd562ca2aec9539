"""Scores of generated images against held-out real ones, each beside its real-vs-real floor.

Feature network: the dataset's evaluation classifier (``gankit train classifier``), whose
256-d penultimate features give a *classifier-feature* FID and KID (cFID, cKID). Its features
know the dataset's classes, so cFID reacts to wrong or blurry classes much more than to texture,
and it costs milliseconds on a CPU. Inception FID (``inception_scores``) is the optional, slow
comparison with the literature.

The real test split is cut in two disjoint halves by a seeded permutation: half R is the
reference, half F gives the *floor*, the score of real images (F) against R with the same
sample count. FID is biased upward at small N, so a score means something only next to its
floor: a model matching the data perfectly would score about the floor, not 0.
Every result carries a ``protocol`` dict: counts, split, feature network and its checksum, seed.
A FID whose real side has fewer images than the network has feature dimensions (256 classifier
features, 2048 Inception) estimates a covariance it cannot pin down: the protocol then lists a
``warnings`` entry saying so (also issued once as a Python warning), and KID, which is unbiased at
any sample count, is the score to read.
"""

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gankit.metrics.fid import feature_stats, frechet_distance, kid

KID_SUBSETS = 50
KID_SUBSET_SIZE = 1000
MIN_PER_CLASS = 10  # fewer samples of a class than this: no per-class score for it


@dataclass(frozen=True)
class RealHalves:
    """Indices into the test split: ``reference`` (R) and ``floor`` (F), disjoint, equal size."""

    reference: Tensor
    floor: Tensor
    seed: int


def split_halves(n_test: int, n: int, seed: int) -> RealHalves:
    """Two disjoint random index sets of size min(n, n_test // 2) drawn with ``seed``."""
    m = min(n, n_test // 2)
    perm = torch.randperm(n_test, generator=torch.Generator().manual_seed(seed))
    return RealHalves(perm[:m], perm[n_test // 2 : n_test // 2 + m], seed)


def warn_thin_fid(protocol: dict[str, Any], score: str, n_real: int, dim: int, read: str) -> None:
    """Note in ``protocol["warnings"]`` (and warn) when a FID rests on fewer real images than
    feature dimensions: its d × d real covariance then has rank < d, the score depends mostly on
    the sample size and can differ more between seeds than between models.

    Python's default filter shows a warning once per message and place, so a run whose
    evaluations all use the same counts warns once.
    """
    if n_real >= dim:
        return
    message = (
        f"{score} is unreliable with {n_real} real images against {dim} features "
        f"(it needs at least {dim}): {read}"
    )
    protocol.setdefault("warnings", []).append(message)
    warnings.warn(message, stacklevel=3)


def fid_kid(
    fake: np.ndarray, real: np.ndarray, seed: int, subsets: int = KID_SUBSETS
) -> tuple[float, float]:
    """(FID, KID mean) between two feature sets (N, d); KID on ``subsets`` random subsets."""
    fid = frechet_distance(*feature_stats(fake), *feature_stats(real))
    kid_mean, _ = kid(fake, real, n_subsets=subsets, subset_size=KID_SUBSET_SIZE, seed=seed)
    return fid, kid_mean


def _per_class(
    fake: np.ndarray,
    fake_y: np.ndarray,
    real: np.ndarray,
    real_y: np.ndarray,
    names: list[str],
    seed: int,
) -> dict[str, float]:
    """cFID of each class (requested label for fakes, true label for reals) with enough samples."""
    out = {}
    for k, name in enumerate(names):
        f, r = fake[fake_y == k], real[real_y == k]
        if min(len(f), len(r)) >= MIN_PER_CLASS:
            m = min(len(f), len(r))  # equal counts: FID's small-N bias then matches the floor's
            out[name] = frechet_distance(*feature_stats(f[:m]), *feature_stats(r[:m]))
    return out


def classifier_scores(
    fake_features: np.ndarray,
    fake_labels: np.ndarray | None,
    test_features: np.ndarray,
    test_labels: np.ndarray,
    class_names: list[str],
    seed: int,
) -> dict[str, Any]:
    """cFID and cKID of fakes against real half R, overall and per class, with their floors.

    Args:
        fake_features: (N, d) classifier features of generated images.
        fake_labels: (N,) classes the generator was asked for, or None (unconditional).
        test_features: (M, d) features of the whole real test split.
        test_labels: (M,) true classes of the test split.
        class_names: Name of each class (keys of the per-class scores).
        seed: Seeds the split into halves and the KID subsets.

    Returns:
        ``eval/cfid``, ``eval/cfid_floor``, ``eval/ckid``, ``eval/ckid_floor`` and, with labels,
        ``eval/cfid_class/<name>``, ``eval/cfid_floor_class/<name>``, their means
        ``eval/cfid_class_mean`` and ``eval/cfid_class_mean_floor``; plus ``protocol``.
    """
    halves = split_halves(len(test_features), len(fake_features), seed)
    m = len(halves.reference)
    ref, flo = test_features[halves.reference.numpy()], test_features[halves.floor.numpy()]
    fake = fake_features[:m]
    out: dict[str, Any] = {}
    out["eval/cfid"], out["eval/ckid"] = fid_kid(fake, ref, seed)
    out["eval/cfid_floor"], out["eval/ckid_floor"] = fid_kid(flo, ref, seed)
    if fake_labels is not None:
        ref_y = test_labels[halves.reference.numpy()]
        flo_y = test_labels[halves.floor.numpy()]
        per = _per_class(fake, fake_labels[:m], ref, ref_y, class_names, seed)
        per_floor = _per_class(flo, flo_y, ref, ref_y, class_names, seed)
        for name, value in per.items():
            out[f"eval/cfid_class/{name}"] = value
            out[f"eval/cfid_floor_class/{name}"] = per_floor.get(name, float("nan"))
        if per:
            out["eval/cfid_class_mean"] = float(np.mean(list(per.values())))
            out["eval/cfid_class_mean_floor"] = float(np.mean(list(per_floor.values())))
    out["protocol"] = {
        "n_fake": m,
        "n_real": m,
        "real_split": "test: half R (reference) vs half F (floor), disjoint",
        "split_seed": seed,
        "kid": f"{KID_SUBSETS} subsets of min({KID_SUBSET_SIZE}, n), cubic kernel",
        "per_class": f"fakes by requested label, reals by true label, >= {MIN_PER_CLASS} each",
    }
    dim = test_features.shape[1]
    read = f"read eval/ckid, or evaluate with n >= {dim} (a test split of >= {2 * dim} images)"
    warn_thin_fid(out["protocol"], "eval/cfid", m, dim, read)
    if fake_labels is not None and per:  # a class's FID uses as many reals as it has fakes
        fake_y = fake_labels[:m]
        counts = [min((fake_y == k).sum(), (ref_y == k).sum()) for k in range(len(class_names))]
        smallest = int(min(c for c, name in zip(counts, class_names, strict=True) if name in per))
        read = "compare each class only with its floor eval/cfid_floor_class/<name>"
        warn_thin_fid(out["protocol"], "eval/cfid_class", smallest, dim, read)
    return out


def inception_scores(
    fake_u8: Tensor, test_u8: Tensor, n: int, seed: int, dataset: str
) -> dict[str, Any]:
    """Inception FID of ``n`` fakes against ``n`` real test images, and its real-vs-real floor.

    The real halves' statistics are cached under their protocol (see ``FeatureStatsCache``), so
    only the fakes cost ~0.17 s per image on 2 CPU cores after the first call.
    """
    from gankit.metrics.fid import (
        INCEPTION_DIM,
        INCEPTION_ID,
        INCEPTION_SHA256,
        PREPROCESSING,
        FeatureStatsCache,
        StatsProtocol,
        inception_features,
    )

    halves = split_halves(len(test_u8), n, seed)
    m = len(halves.reference)
    cache = FeatureStatsCache()

    def stats(part: str, idx: Tensor) -> tuple[np.ndarray, np.ndarray]:
        protocol = StatsProtocol(dataset, f"test-half-{part}-seed{seed}", m)
        return cache.get_or_compute(
            protocol, lambda: feature_stats(inception_features(test_u8[idx]))
        )

    ref, flo = stats("R", halves.reference), stats("F", halves.floor)
    fake = feature_stats(inception_features(fake_u8[:m]))
    protocol = {
        "n_fake": m,
        "n_real": m,
        "network": INCEPTION_ID,
        "network_sha256": INCEPTION_SHA256,
        "preprocessing": PREPROCESSING,
        "split_seed": seed,
    }
    read = f"read eval/ckid, or use --inception >= {INCEPTION_DIM} (a test split of >= "
    read += f"{2 * INCEPTION_DIM} images)"
    warn_thin_fid(protocol, "eval/fid_inception", m, INCEPTION_DIM, read)
    return {
        "eval/fid_inception": frechet_distance(*fake, *ref),
        "eval/fid_inception_floor": frechet_distance(*flo, *ref),
        "protocol_inception": protocol,
    }
