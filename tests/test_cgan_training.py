"""End to end on a class-folder dataset: train its classifier, then a cGAN that learns the labels.

Four classes of 16×16 greyscale PNGs, a bright square in one quadrant each. A short run must put
far more than the chance 25% of its samples into the class it was asked for.
"""

import json

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main

QUADRANTS = {"top-left": (0, 0), "top-right": (0, 8), "bottom-left": (8, 0), "bottom-right": (8, 8)}


@pytest.fixture
def quadrants(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    root = tmp_path / "quadrants"
    for name, (r, c) in QUADRANTS.items():
        (root / name).mkdir(parents=True)
        for i in range(80):
            img = rng.integers(0, 40, (16, 16))
            dr, dc = rng.integers(0, 3, 2)  # jitter the square a little
            img[r + dr : r + dr + 6, c + dc : c + dc + 6] = 220
            Image.fromarray(img.astype(np.uint8)).save(root / name / f"{i:03d}.png")
    return root


def test_folder_classifier_then_cgan_beats_chance(quadrants, tmp_path, capsys):
    assert main(["train", "classifier", "--data", str(quadrants), "epochs=4", "batch_size=32"]) == 0
    clf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert clf["test_accuracy"] >= 0.95
    out = tmp_path / "run"
    args = ["train", "cgan", "--data", str(quadrants), "--steps", "300", "--out", str(out)]
    # projection conditioning picks up the label within 300 steps here (concat needs ~700)
    tiny = ["cond=projection", "z_dim=16", "ema=false", "eval_samples=200", "progress=false"]
    assert main([*args, *tiny, "batch_size=32", "eval_every=100"]) == 0
    evals = [r for r in map(json.loads, open(out / "metrics.jsonl")) if "eval/cfid" in r]
    assert [r["step"] for r in evals] == [100, 200, 300]
    final = evals[-1]
    assert final["eval/cond_accuracy"] >= 0.7  # chance: 0.25
    assert final["protocol"]["classifier_sha256"]
    assert (out / "samples" / "step_00000300.png").is_file()
