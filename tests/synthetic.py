"""Synthetic batches shaped as each data kind's sources yield them, for model-level tests."""

from collections.abc import Iterator
from pathlib import Path

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


def unpaired_folders(root: Path) -> Path:
    """``root/trainA`` (6 grey) and ``root/trainB`` (6 RGB) random 20-px PNGs, from seed 0."""
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for domain, channels in (("A", 1), ("B", 3)):
        (root / f"train{domain}").mkdir()
        for i in range(6):
            pixels = torch.randint(256, (20, 20, channels), generator=gen, dtype=torch.uint8)
            Image.fromarray(pixels.squeeze(-1).numpy()).save(root / f"train{domain}" / f"{i}.png")
    return root
