"""`gankit sample --out-dir` and ``Run.save_sample_files``: one PNG per sample (class folders for
a conditional run), a CSV for 2-D points; tiny runs of a few steps, fast."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.api import configure
from gankit.cli import main
from gankit.data.images import to_uint8
from gankit.errors import GankitError
from gankit.runs import Run

TINY = ["z_dim=4", "hidden=16", "depth=1", "batch_size=4", "progress=false", "eval_samples=10"]


def _class_folders(root: Path, mode: str, names: list[str]) -> Path:
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for i in range(4):
            colour = 40 + 80 * k + i if mode == "L" else (200 * k, 40 + i, 90)
            Image.new(mode, (12, 12), colour).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory) -> Path:
    """A 2-step cgan on three greyscale classes (bright, dark, mid), 12 px."""
    tmp = tmp_path_factory.mktemp("cgan")
    data = _class_folders(tmp / "data", "L", ["bright", "dark", "mid"])
    argv = ["train", "cgan", "--data", str(data), "--steps", "2", "--out", str(tmp / "run")]
    assert main([*argv, *TINY]) == 0
    return tmp / "run"


def _untrained(model: str, data: str) -> Run:
    """A run as training would start it (files need no training, only a generator)."""
    values = {"z_dim": 4, "hidden": 16, "depth": 1, "progress": False}
    return Run(configure(model, data, values=values), torch.device("cpu"))


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_label_all_splits_n_across_class_folders(cgan_run, tmp_path, capsys):
    out = tmp_path / "fakes"
    assert main(["sample", str(cgan_run), "--n", "8", "--out-dir", str(out)]) == 0
    assert "to " + str(out) + " in 3 class folders" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["bright", "dark", "mid"]
    counts = [len(list((out / name).iterdir())) for name in ("bright", "dark", "mid")]
    assert counts == [3, 3, 2]  # 8 over 3 classes: the remainder to the first ones
    assert sorted(p.name for p in (out / "mid").iterdir()) == ["00000.png", "00001.png"]
    with Image.open(out / "bright" / "00000.png") as image:
        assert image.mode == "L" and image.size == (12, 12)


def test_files_are_the_samples_in_batches(cgan_run, tmp_path):
    run = gankit.load(cgan_run, device="cpu")
    counts = run.save_sample_files(tmp_path / "dark", 7, seed=3, label="dark", batch_size=3)
    assert counts == {"": 7}
    files = sorted((tmp_path / "dark").iterdir())
    assert [p.name for p in files] == [f"{i:05d}.png" for i in range(7)]
    # the first batch of 3 is what run.sample draws with that seed, pixel for pixel
    want = to_uint8(run.sample(3, seed=3, label="dark"))[:, 0].numpy()
    assert all((_pixels(p) == w).all() for p, w in zip(files[:3], want, strict=True))
    again = tmp_path / "again"
    run.save_sample_files(again, 7, seed=3, label=1, batch_size=3)  # "dark" is class 1
    assert all((_pixels(p) == _pixels(again / p.name)).all() for p in files)


def test_colour_stays_rgb_and_unconditional_runs_write_flat(tmp_path):
    run = _untrained("gan", str(_class_folders(tmp_path / "data", "RGB", ["a", "b"])))
    assert run.save_sample_files(tmp_path / "o", 5) == {"": 5}
    files = sorted((tmp_path / "o").iterdir())
    assert len(files) == 5
    with Image.open(files[-1]) as image:
        assert image.mode == "RGB" and image.size == (12, 12)
    with pytest.raises(GankitError, match="unconditional"):
        run.save_sample_files(tmp_path / "p", 5, label=1)


def test_points_become_a_csv(tmp_path):
    run = _untrained("gan", "8gaussians")
    counts = run.save_sample_files(tmp_path / "pts", 300, seed=1, batch_size=128)
    assert counts == {"samples.csv": 300}
    with open(tmp_path / "pts" / "samples.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["x", "y"] and len(rows) == 301
    points = torch.tensor([[float(v) for v in row] for row in rows[1:]])
    torch.testing.assert_close(points[:128], run.sample(128, seed=1), atol=1e-6, rtol=0)


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_out_dir_errors_are_one_line(cgan_run, tmp_path, capsys):
    used = tmp_path / "used"
    used.mkdir()
    (used / "x.png").write_bytes(b"")
    run = str(cgan_run)
    err = _one_line_error(capsys, ["sample", run, "--out-dir", str(used)])
    assert "not empty" in err
    err = _one_line_error(capsys, ["sample", run, "--n", "2", "--out-dir", str(tmp_path / "a")])
    assert "at least one per class (3)" in err and not (tmp_path / "a").exists()
    err = _one_line_error(capsys, ["sample", run, "--label", "pink", "--out-dir", str(tmp_path)])
    assert "label 'pink'" in err
    err = _one_line_error(capsys, ["sample", run, "--label", "7", "--out-dir", str(tmp_path / "b")])
    assert "out of range" in err and not (tmp_path / "b").exists()
    err = _one_line_error(capsys, ["sample", run, "--out-dir", "d", "--out", "x.png"])
    assert "drop --out and --interpolate" in err
