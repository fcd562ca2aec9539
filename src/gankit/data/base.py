"""What every data source is: a spec for the model and an endless, resumable stream of batches.

Data know no model and no metric: evaluation (``gankit.evaluate``) reads a source's real
samples and test splits and scores a model's output with ``gankit.metrics``.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


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

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, strings and ints (checkpoints load with ``weights_only``)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "shape_b": list(self.shape_b),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DataSpec":
        """The DataSpec stored by :meth:`to_dict`."""
        return cls(
            values["name"],
            values["kind"],
            tuple(values["shape"]),
            int(values["num_classes"]),
            list(values["class_names"]),
            shape_b=tuple(values["shape_b"]),
        )


class DataSource:
    """Base class: an endless stream of batches with a saveable random state."""

    spec: DataSpec
    preview_n: int  # samples in each picture written during training
    note: str = ""  # what loading converted or decided, shown once when a run starts
    # batch(n, shard=(rank, world)) returns only that rank's rows of the global batch of n,
    # decoding no others (gankit.data.streaming); other sources are sliced after batch(n)
    shardable: bool = False

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

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
