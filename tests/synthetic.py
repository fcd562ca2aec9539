"""Synthetic batches shaped as each data kind's sources yield them, for model-level tests."""

from collections.abc import Iterator

import torch

from gankit.data import DataSpec


def stream(spec: DataSpec, n: int) -> Iterator:
    """Points alone; images as (x, y) pairs; unpaired data as (xa, xb); all from seed 0."""
    gen = torch.Generator().manual_seed(0)
    while True:
        x = torch.rand((n, *spec.shape), generator=gen) * 2 - 1
        if spec.kind.startswith("unpaired"):
            yield x, torch.rand((n, *spec.shape_b), generator=gen) * 2 - 1
            continue
        y = torch.randint(max(spec.num_classes, 1), (n,), generator=gen)
        yield x if spec.kind == "points" else (x, y)
