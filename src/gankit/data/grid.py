"""Sample grids: many images tiled into one picture, for looking at what a generator makes."""

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gankit.data.images import to_uint8
from gankit.errors import GankitError


def make_grid(
    images: torch.Tensor, nrow: int = 8, pad: int = 2, pad_value: int = 0
) -> torch.Tensor:
    """Tile images row by row into one image, ``pad`` pixels between and around them.

    Args:
        images: (N, C, H, W) or a single (C, H, W), float in [-1, 1] or uint8 in [0, 255].
        nrow: images per row (fewer if N is smaller).
        pad: padding width in pixels.
        pad_value: padding colour, 0-255.

    Returns:
        uint8 (C, rows * (H + pad) + pad, cols * (W + pad) + pad), rows = ceil(N / cols).
    """
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or len(images) == 0 or nrow < 1 or pad < 0:
        raise GankitError(
            f"make_grid needs images (N, C, H, W) with N >= 1, nrow >= 1 and pad >= 0; got "
            f"shape {tuple(images.shape)}, nrow={nrow}, pad={pad}"
        )
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    n, c, h, w = images.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = torch.full(
        (c, rows * (h + pad) + pad, cols * (w + pad) + pad), pad_value, dtype=torch.uint8
    )
    for i, image in enumerate(images.cpu()):
        row, col = divmod(i, cols)
        top, left = pad + row * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = image
    return grid


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8, pad: int = 2) -> Path:
    """Write :func:`make_grid` of ``images`` (1 or 3 channels) as a PNG; returns the path."""
    grid = make_grid(images, nrow, pad)
    if grid.shape[0] not in (1, 3):
        raise GankitError(f"save_grid needs 1 or 3 channels, got {grid.shape[0]}")
    pixels = grid.permute(1, 2, 0).numpy()
    # Pillow wants (H, W) for greyscale, (H, W, 3) for RGB.
    pixels = pixels[:, :, 0] if pixels.shape[2] == 1 else np.ascontiguousarray(pixels)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="PNG")
    return path


def save_pngs(images: torch.Tensor, folder: Path, start: int = 0, digits: int = 5) -> list[Path]:
    """Write each image as its own PNG, numbered from ``start`` (``00000.png``, ...).

    Args:
        images: (N, C, H, W) float in [-1, 1] or uint8, C = 1 (saved as mode L) or 3 (RGB).
        folder: where to write (created if missing).
        start: the number of the first image.
        digits: zero-padded width of the numbers.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise GankitError(f"save_pngs needs images (N, 1 or 3, H, W), got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    pixels = images.cpu().permute(0, 2, 3, 1).contiguous().numpy()  # (N, H, W, C) for Pillow
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(pixels):
        path = folder / f"{start + i:0{digits}d}.png"
        Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(path, format="PNG")
        paths.append(path)
    return paths
