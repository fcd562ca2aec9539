"""Datasets as in-memory sources of batches with resumable random state.

``open_data(name, seed)`` returns a :class:`DataSource`. Its ``spec`` tells a model what to build
(data shape, number of classes); ``batch(n)`` draws the next training batch; ``state_dict()``
captures the random state so a resumed run sees exactly the batches an uninterrupted one would.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gankit.data.toy import TOY, ToyDistribution, parallel_line
from gankit.errors import GankitError


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data.

    kind: "points" (B, D) or "images" (B, C, H, W) in [-1, 1].
    num_classes: > 0 when batches carry labels y (B,) int64.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    num_classes: int = 0
    class_names: list[str] = field(default_factory=list)


class DataSource:
    """Base class: an endless stream of batches with a saveable random state."""

    spec: DataSpec

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, n: int) -> Tensor | tuple[Tensor, ...]:
        raise NotImplementedError

    def reference(self, n: int, seed: int) -> Tensor:
        """``n`` real samples drawn with their own seed (for metrics; training order untouched)."""
        raise NotImplementedError

    def render(self, fake: Tensor, path: Path, title: str = "") -> None:
        """Write a picture of generated samples to ``path`` (PNG)."""
        raise NotImplementedError

    def evaluate(self, fake: Tensor, seed: int) -> dict[str, float]:
        """Data-side metrics of generated samples; ``seed`` fixes the real reference sample."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class ToySource(DataSource):
    """Fresh samples of a 2-D toy distribution every batch."""

    def __init__(self, dist: ToyDistribution, seed: int) -> None:
        super().__init__(seed)
        self.dist = dist
        self.spec = DataSpec(dist.name, "points", (2,))

    def batch(self, n: int) -> Tensor:
        return self.dist.sample(n, self.generator)

    def reference(self, n: int, seed: int) -> Tensor:
        return self.dist.sample(n, torch.Generator().manual_seed(seed))

    def render(self, fake: Tensor, path: Path, title: str = "") -> None:
        """Scatter plot of ``fake`` over real samples and the modes."""
        from gankit.visual import scatter_png

        scatter_png(
            fake, path, real=self.reference(len(fake), 1), modes=self.dist.modes, title=title
        )

    def evaluate(self, fake: Tensor, seed: int) -> dict[str, float]:
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
        raise GankitError(
            f"unknown dataset '{name}': choose one of {', '.join(sorted(TOY))}, or give a folder"
        )
    return TOY[base]()


def open_data(name: str, seed: int = 0) -> DataSource:
    """Open a dataset by name (toy sets now; image sets register here as they are added)."""
    return ToySource(toy_distribution(name), seed)


DATASETS = sorted(TOY)
