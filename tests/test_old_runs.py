"""Run directories written by earlier gankit versions still load and give the same samples and
scores.

Each ``tests/data/runs-VERSION`` holds two tiny runs (a toy WGAN-GP and a folder CycleGAN: their
``config.yaml`` and checkpoint) and ``expected.json``, what that version's own ``Run`` sampled and
scored from them (``runs-0.1.0`` predates the layered package; newer ones are written by
``tools/store_run_fixture.py``). Values are compared within a small tolerance, since another CPU
sums floats in another order.
"""

import json
import shutil
from pathlib import Path

import pytest

import gankit
from gankit.cli import main

VERSIONS = sorted(p.name for p in (Path(__file__).parent / "data").glob("runs-*"))


@pytest.fixture(params=VERSIONS)
def old_runs(request, tmp_path, monkeypatch) -> Path:
    """A copy (evaluation appends to metrics.jsonl); the CycleGAN's data path is relative."""
    root = tmp_path / "runs"
    shutil.copytree(Path(__file__).parent / "data" / request.param, root)
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize(("name", "n"), [("wgan-gp-toy", 100), ("cyclegan-folder", 4)])
def test_old_run_loads_samples_and_scores_as_before(old_runs, name, n):
    expected = json.loads((old_runs / "expected.json").read_text())[name]
    run = gankit.load(name)
    assert run.step == expected["step"]
    x = run.sample(n, seed=3)
    assert list(x.shape) == expected["shape"]
    assert float(x.double().abs().sum()) == pytest.approx(expected["abs_sum"], rel=1e-3)
    scores = run.evaluate(n=10 if name.startswith("cyclegan") else 100)
    for key, value in expected["metrics"].items():
        assert scores[key] == pytest.approx(value, rel=1e-3, abs=1e-4), key


def test_old_translation_run_exports_and_translates_from_its_checkpoint(old_runs, capsys):
    inputs = old_runs / "pair" / "trainA"
    assert main(["translate", "cyclegan-folder", "--input", str(inputs), "--out", "out"]) == 0
    assert len(list((old_runs / "out").glob("*.png"))) == 6
    assert "translated 6 images AtoB with cyclegan step 2" in capsys.readouterr().err
