"""The crash-safety soak (benchmarks/soak.py) and the cleanup it relies on: a resumed run drops
the temp files a killed write left."""

import json
import random
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gankit import checkpoint
from gankit.runs import Run, resolve
from gankit.trainer import Trainer

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


@pytest.fixture(scope="module")
def soak() -> dict:
    return runpy.run_path(str(SOAK))


def test_plan_interrupts_at_increasing_steps_in_every_kind(soak):
    events = soak["plan"](random.Random(0), 20, 48, "SIGINT")
    targets = [e["target"] for e in events]
    assert targets == sorted(targets) and len(set(targets)) == 20 and 0 < min(targets)
    assert max(targets) < 47  # the last step is left to the launch that finishes
    kinds = [e["kind"] for e in events]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "random": 10,
        "during_write": 4,
        "before_rename": 4,
        "graceful": 2,
    }
    assert sorted(e["signal"] for e in events if e["kind"] == "graceful") == ["SIGINT", "SIGTERM"]


def test_differences_name_the_tensor_that_changed(soak):
    state = {"model": {"w": torch.zeros(3)}, "rng": [torch.ones(2)], "step": 4}
    same = {"model": {"w": torch.zeros(3)}, "rng": [torch.ones(2)], "step": 4}
    assert soak["differences"](state, same) == []
    same["model"]["w"][1] = 1e-30
    same["step"] = 5
    assert soak["differences"](state, same) == ["/model/w", "/step"]
    assert soak["differences"](state, {**state, "model": {"w": torch.zeros(3, 1)}}) == ["/model/w"]


def test_a_resumed_run_drops_the_temp_files_a_kill_left(tmp_path):
    cfg = resolve("gan", "8gaussians", None, ["steps=2", "progress=false"])
    Trainer(Run(cfg, torch.device("cpu")), tmp_path).checkpoint()
    ckpt_dir = tmp_path / "checkpoints"
    stale = ckpt_dir / ".step_00000002.pt.x1y2.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert checkpoint.latest(ckpt_dir).name == "step_00000000.pt"
    Trainer(Run.from_checkpoint(checkpoint.latest(ckpt_dir)), tmp_path)
    assert not stale.exists() and checkpoint.latest(ckpt_dir).name == "step_00000000.pt"


@pytest.mark.slow
def test_soak_of_one_family_with_two_kills_ends_identical_to_its_twin(tmp_path):
    out = tmp_path / "soak.json"
    cmd = [sys.executable, str(SOAK), "--families", "gan", "--kills-per-run", "2", "--steps", "8"]
    proc = subprocess.run([*cmd, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    totals = json.loads(out.read_text())["totals"]
    assert totals["runs_finished"] == 1 and totals["kills"] + totals["interruptions_missed"] == 2
    assert totals["unloadable"] == 0 and totals["temps_at_end"] == 0
    assert totals["runs_identical_to_twin"] == 1 and totals["runs_differing"] == 0
