"""Tiny real runs for the report tests (`test_report.py`, `test_browser.py`): a helper module
whose functions the session fixtures in conftest.py call once per test session."""

from pathlib import Path

import numpy as np
from PIL import Image

from gankit.cli import main

TOY = ["hidden=16", "depth=1", "batch_size=32", "eval_samples=50", "progress=false"]
EVERY = ["log_every=2", "eval_every=2", "sample_every=4"]
TOY_VARIANTS = {"a": [], "b": ["seed=1"], "c": ["lr=0.0005"]}  # only seed and lr differ


def train(argv: list[str]) -> None:
    assert main(["train", *argv]) == 0, argv


def toy_runs(root: Path) -> list[Path]:
    """gan on 8gaussians for 4 steps, scored at steps 2 and 4, one picture: seed 0, seed 1, and
    seed 0 with lr 5e-4."""
    for name, extra in TOY_VARIANTS.items():
        argv = ["gan", "--data", "8gaussians", "--steps", "4", "--out", str(root / name)]
        train([*argv, *TOY, *EVERY, *extra])
    return [root / name for name in TOY_VARIANTS]


def class_folder(root: Path) -> Path:
    """Four classes of 12 greyscale 16x16 images, a bright square in one quadrant each."""
    rng = np.random.default_rng(0)
    for k, (r, c) in enumerate(((0, 0), (0, 8), (8, 0), (8, 8))):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(12):
            img = rng.integers(0, 40, (16, 16))
            img[r : r + 6, c : c + 6] = 220
            Image.fromarray(img.astype(np.uint8)).save(root / f"class{k}" / f"{i}.png")
    return root


def cgan_run(root: Path) -> Path:
    """A cGAN on :func:`class_folder` for 4 steps: two sample grids, no evaluation classifier
    (so no scores)."""
    data = class_folder(root / "data")
    argv = ["cgan", "--data", str(data), "--steps", "4", "--out", str(root / "run")]
    tiny = ["z_dim=8", "hidden=32", "depth=1", "batch_size=16", "log_every=2", "sample_every=2"]
    train([*argv, *tiny, "eval_samples=20", "progress=false"])
    return root / "run"
