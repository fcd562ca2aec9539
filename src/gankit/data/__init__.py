"""Datasets as in-memory sources of batches with resumable random state.

``open_data(name, seed)`` returns a :class:`DataSource`. Its ``spec`` tells a model what to build
(data shape, number of classes); ``batch(n)`` draws the next training batch; ``state_dict()``
captures the random state so a resumed run sees exactly the batches an uninterrupted one would.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gankit.data.images import DATASETS as IMAGE_DATASETS
from gankit.data.images import ImageDataset, load_image_dataset, to_float, to_uint8
from gankit.data.toy import TOY, ToyDistribution, parallel_line
from gankit.errors import GankitError


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data.

    kind: "points" (B, D) or "images" (B, C, H, W) in [-1, 1]; "unpaired" (two image domains,
        batches (xa, xb)) or "unpaired-points" (two 2-D domains), see ``gankit.data.unpaired``.
    shape: one sample's shape (domain A's for the unpaired kinds).
    num_classes: > 0 when batches carry labels y (B,) int64 (unpaired: content classes that the
        test splits are labelled with, for evaluation only).
    shape_b: domain B's sample shape for the unpaired kinds, else ().
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)
    shape_b: tuple[int, ...] = ()


class DataSource:
    """Base class: an endless stream of batches with a saveable random state."""

    spec: DataSpec
    preview_n: int  # samples in each picture written during training

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, n: int) -> Tensor | tuple[Tensor, ...]:
        raise NotImplementedError

    def reference(self, n: int, seed: int) -> Tensor:
        """``n`` real samples drawn with their own seed (for metrics; training order untouched)."""
        raise NotImplementedError

    def render(self, fake: Tensor, path: Path, title: str = "", nrow: int = 10) -> None:
        """Write a picture of generated samples to ``path`` (PNG); ``nrow`` images per grid row."""
        raise NotImplementedError

    def evaluate(self, fake: Tensor, seed: int, labels: Tensor | None = None) -> dict[str, float]:
        """Data-side metrics of generated samples; ``seed`` fixes the real reference sample.

        ``labels`` (N,) are the classes a conditional model was asked for.
        """
        return {}

    def inception_scores(self, fake: Tensor, seed: int) -> dict[str, Any]:
        """Inception FID of ``fake`` beside its real-vs-real floor (image data only)."""
        raise GankitError(f"Inception FID needs images; {self.spec.name} is {self.spec.kind}")

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class ToySource(DataSource):
    """Fresh samples of a 2-D toy distribution every batch."""

    preview_n = 2000

    def __init__(self, dist: ToyDistribution, seed: int) -> None:
        super().__init__(seed)
        self.dist = dist
        self.spec = DataSpec(dist.name, "points", (2,))

    def batch(self, n: int) -> Tensor:
        return self.dist.sample(n, self.generator)

    def reference(self, n: int, seed: int) -> Tensor:
        return self.dist.sample(n, torch.Generator().manual_seed(seed))

    def render(self, fake: Tensor, path: Path, title: str = "", nrow: int = 10) -> None:
        """Scatter plot of ``fake`` over real samples and the modes."""
        from gankit.visual import scatter_png

        scatter_png(
            fake, path, real=self.reference(len(fake), 1), modes=self.dist.modes, title=title
        )

    def evaluate(self, fake: Tensor, seed: int, labels: Tensor | None = None) -> dict[str, float]:
        from gankit.metrics.toy import toy_metrics

        return toy_metrics(fake, self.reference(len(fake), seed), self.dist.modes, self.dist.std)


def toy_distribution(name: str) -> ToyDistribution:
    """A toy distribution by name; ``parallel-lines:θ`` selects P_θ (default θ = 0)."""
    base, _, arg = name.partition(":")
    if base == "parallel-lines" and arg:
        try:
            return parallel_line(float(arg))
        except ValueError:
            raise GankitError(
                f"data '{name}': θ must be a number, e.g. parallel-lines:0.5"
            ) from None
    if base not in TOY or arg:
        raise unknown_dataset(name)
    return TOY[base]()


UNPAIRED_DATASETS = ("digits2colour", "edges2shoes-mini", "sneakers2boots")  # gankit.data.unpaired
UNPAIRED_POINTS = ("discogan-toy",)


def unknown_dataset(name: str) -> GankitError:
    choices = ", ".join(
        sorted(TOY) + sorted(IMAGE_DATASETS) + [*UNPAIRED_DATASETS, *UNPAIRED_POINTS]
    )
    return GankitError(f"unknown dataset '{name}': choose one of {choices}, or give a folder")


class ImageSource(DataSource):
    """Images held in memory as uint8; batches (x, y) in a fresh random order every epoch.

    x: (B, C, H, W) float in [-1, 1]; y: (B,) int64 class indices (all 0 when unlabelled).
    Held-out ``test`` images serve as the real reference for metrics.

    Args:
        train: the training split.
        test: the test split at the training images' size, or a function that loads it,
            called at the first evaluation (a run that never evaluates never holds it), or None.
    """

    preview_n = 100

    def __init__(
        self,
        train: ImageDataset,
        test: ImageDataset | Callable[[], ImageDataset] | None,
        seed: int,
    ) -> None:
        super().__init__(seed)
        self.train, self._test = train, test
        self.spec = DataSpec(
            train.name,
            "images",
            tuple(train.images.shape[1:]),
            len(train.classes),
            list(train.classes),
        )
        self.order = torch.randperm(len(train), generator=self.generator)
        self.pos = 0
        self.classifier = None  # (model, metadata) of the dataset's evaluation classifier
        self.test_features = None  # its features of the test split, computed once

    @property
    def test(self) -> ImageDataset | None:
        if callable(self._test):
            self._test = self._test()
        return self._test

    def batch(self, n: int) -> tuple[Tensor, Tensor]:
        parts = []
        while n > 0:
            if self.pos == len(self.order):
                self.order, self.pos = torch.randperm(len(self.train), generator=self.generator), 0
            take = self.order[self.pos : self.pos + n]
            self.pos += len(take)
            n -= len(take)
            parts.append(take)
        idx = torch.cat(parts)
        return to_float(self.train.images[idx]), self.train.labels[idx]

    def reference(self, n: int, seed: int) -> Tensor:
        pool = self.test if self.test is not None and len(self.test) else self.train
        idx = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))[:n]
        return to_float(pool.images[idx])

    def render(self, fake: Tensor, path: Path, title: str = "", nrow: int = 10) -> None:
        """A PNG grid, ``nrow`` images per row (one row per class when sampled class by class)."""
        from gankit.data.grid import save_grid

        save_grid(fake, path, nrow=nrow)

    def evaluate(self, fake: Tensor, seed: int, labels: Tensor | None = None) -> dict[str, Any]:
        """Classifier-feature FID/KID beside their real-vs-real floors (see
        ``gankit.metrics.images``) and, given ``labels``, the conditional accuracy: the share of
        samples the dataset's classifier puts in the requested class. Needs `gankit train
        classifier --data NAME`; without a classifier there is nothing to score with."""
        from gankit.metrics.classifier import classifier_features, predict
        from gankit.metrics.images import classifier_scores

        clf = self.evaluation_classifier()
        if clf is None or self.test is None or len(self.test) < 20:  # two halves of >= 10
            return {}
        model, meta = clf
        fake_u8 = to_uint8(fake)
        out: dict[str, Any] = {}
        if labels is not None:
            predicted = torch.as_tensor(predict(model, fake_u8))
            out["eval/cond_accuracy"] = float((predicted == labels.cpu()).float().mean())
        if self.test_features is None:  # the test split's features are the same at every eval
            self.test_features = classifier_features(model, self.test.images)
        scores = classifier_scores(
            classifier_features(model, fake_u8),
            None if labels is None else labels.cpu().numpy(),
            self.test_features,
            self.test.labels.numpy(),
            self.spec.class_names,
            seed,
        )
        scores["protocol"].update(
            feature_network="gankit SmallCNN classifier, 256-d penultimate features",
            classifier=meta.get("path", ""),
            classifier_sha256=meta["sha256"],
            classifier_test_accuracy=meta.get("test_accuracy"),
        )
        return {**out, **scores}

    def inception_scores(self, fake: Tensor, seed: int) -> dict[str, Any]:
        from gankit.metrics.images import inception_scores

        if self.test is None or len(self.test) < 20:
            raise GankitError(f"{self.spec.name} has too few test images for a FID floor")
        return inception_scores(to_uint8(fake), self.test.images, len(fake), seed, self.spec.name)

    def evaluation_classifier(self) -> tuple[Any, dict] | None:
        """The dataset's cached classifier, read and checksummed once per source."""
        from gankit.metrics.classifier import cached_classifier, classifier_path

        if self.classifier is None:
            c, h = self.spec.shape[0], self.spec.shape[1]
            self.classifier = cached_classifier(self.spec.name, c, h)
            if self.classifier is not None:
                self.classifier[1]["path"] = str(classifier_path(self.spec.name, c, h))
        return self.classifier

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "order": self.order, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.order, self.pos = state["order"], state["pos"]


def data_kind(name: str) -> str:
    """ "points" for the toy sets, "unpaired"/"unpaired-points" for two-domain sets (built-in, or
    a folder with trainA/trainB), "images" otherwise, without loading anything."""
    from gankit.data.unpaired import is_unpaired_folder

    if name in UNPAIRED_POINTS:
        return "unpaired-points"
    if name in UNPAIRED_DATASETS or is_unpaired_folder(name):
        return "unpaired"
    return "points" if name.partition(":")[0] in TOY else "images"


def open_data(name: str, seed: int = 0, image_size: int = 0) -> DataSource:
    """A toy set by name, a named image set (mnist, fashion-mnist), a two-domain set (built-in or a
    trainA/trainB folder, see ``gankit.data.unpaired``) or a class-folder path."""
    if name.partition(":")[0] in TOY:
        return ToySource(toy_distribution(name), seed)
    if data_kind(name).startswith("unpaired"):
        from gankit.data.unpaired import open_unpaired

        return open_unpaired(name, seed, image_size)
    if name in IMAGE_DATASETS or Path(name).is_dir():
        size = image_size or None
        train = load_image_dataset(name, "train", size=size)
        test = partial(load_image_dataset, name, "test", size=size)  # only evaluation needs it
        return ImageSource(train, test, seed)
    raise unknown_dataset(name)


DATASETS = sorted(TOY) + sorted(IMAGE_DATASETS) + [*UNPAIRED_DATASETS, *UNPAIRED_POINTS]
