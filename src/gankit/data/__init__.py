"""Datasets as in-memory sources of batches with resumable random state.

``open_data(name, seed)`` returns a :class:`DataSource`. Its ``spec`` tells a model what to build
(data shape, number of classes); ``batch(n)`` draws the next training batch; ``state_dict()``
captures the random state so a resumed run sees exactly the batches an uninterrupted one would.
"""

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gankit.data.base import DataSource, DataSpec
from gankit.data.images import DATASETS as IMAGE_DATASETS
from gankit.data.images import ImageDataset, load_image_dataset, to_float
from gankit.data.pairs import BUILDERS, build
from gankit.data.streaming import StreamingUnpairedSource, open_unpaired_folder
from gankit.data.toy import TOY, ToyDistribution, parallel_line
from gankit.data.unpaired import (
    DEFAULT_SIZE,
    UnpairedPointsSource,
    UnpairedSource,
    is_unpaired_folder,
)
from gankit.errors import GankitError

__all__ = [
    "DATASETS",
    "DataSource",
    "DataSpec",
    "ImageSource",
    "StreamingUnpairedSource",
    "ToySource",
    "UnpairedPointsSource",
    "UnpairedSource",
    "data_kind",
    "open_data",
]


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


UNPAIRED_DATASETS = tuple(sorted(BUILDERS))  # gankit.data.pairs
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
        self.note = train.note
        self.spec = DataSpec(
            train.name,
            "images",
            tuple(train.images.shape[1:]),
            len(train.classes),
            list(train.classes),
        )
        self.order = torch.randperm(len(train), generator=self.generator)
        self.pos = 0

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

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "order": self.order, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.order, self.pos = state["order"], state["pos"]


def data_kind(name: str) -> str:
    """ "points" for the toy sets, "unpaired"/"unpaired-points" for two-domain sets (built-in, or
    a folder with trainA/trainB), "images" otherwise, without loading anything."""
    if name in UNPAIRED_POINTS:
        return "unpaired-points"
    if name in UNPAIRED_DATASETS or is_unpaired_folder(name):
        return "unpaired"
    return "points" if name.partition(":")[0] in TOY else "images"


def open_data(
    name: str, seed: int = 0, image_size: int = 0, stream: str = "auto", workers: int = -1
) -> DataSource:
    """A toy set by name, a named image set (mnist, fashion-mnist), a two-domain set (built-in or a
    trainA/trainB folder, see ``gankit.data.unpaired``) or a class-folder path.

    ``stream`` ("auto", "true", "false") and ``workers`` (DataLoader processes, < 0: min(4,
    CPUs)) choose how a trainA/trainB folder is read: see ``gankit.data.streaming``. Class
    folders are always read into memory (one that would take over a quarter of it is refused).
    """
    if stream == "true" and not is_unpaired_folder(name):  # the rest is read into memory
        raise GankitError(
            f"stream=true reads trainA/trainB folders only; {name} is read into memory: "
            "drop stream=true"
        )
    if name.partition(":")[0] in TOY:
        return ToySource(toy_distribution(name), seed)
    if name in UNPAIRED_POINTS:
        return UnpairedPointsSource(seed)
    if name in BUILDERS:
        return UnpairedSource(build(name, image_size), seed)
    if is_unpaired_folder(name):
        return open_unpaired_folder(name, image_size or DEFAULT_SIZE, seed, stream, workers)
    if name in IMAGE_DATASETS or Path(name).is_dir():
        size = image_size or None
        train = load_image_dataset(name, "train", size=size)
        test = partial(load_image_dataset, name, "test", size=size)  # only evaluation needs it
        return ImageSource(train, test, seed)
    raise unknown_dataset(name)


DATASETS = sorted(TOY) + sorted(IMAGE_DATASETS) + [*UNPAIRED_DATASETS, *UNPAIRED_POINTS]
