"""The crash-safety soak (benchmarks/soak.py) and the cleanup it relies on: a resumed run drops
the temp files a killed write left."""

import json
import os
import random
import runpy
import signal
import subprocess
import sys
import time
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


def test_torchrun_launches_are_built_from_the_same_arguments(soak, tmp_path):
    one = soak["train_command"]("gan", tmp_path, 8, 0)
    two = soak["train_command"]("gan", tmp_path, 8, 0, 2)
    assert one[:3] == [sys.executable, "-m", "gankit"]
    assert two[:6] == [sys.executable, "-m", "torch.distributed.run", "--standalone"] + [
        "--nproc-per-node=2",
        "-m",
    ]
    assert two[6:] == one[2:]
    assert soak["resume_command"](tmp_path, 2)[-4:] == [
        "gankit",
        "train",
        "--resume",
        str(tmp_path),
    ]


def test_the_ddp_plan_kills_each_rank_in_turn(soak):
    events = soak["plan"](random.Random(0), 10, 48, "SIGTERM", soak["DDP_KINDS"], 2)
    kinds = [e["kind"] for e in events]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "random": 2,
        "worker": 2,
        "during_write": 2,
        "before_rename": 2,
        "graceful": 2,
    }
    assert sorted(e["rank"] for e in events if e["kind"] == "worker") == [0, 1]


def test_proc_files_are_parsed(soak):
    assert soak["parse_children"](["12 7 ", "", "7 30\n"]) == [7, 12, 30]
    environ = b"PATH=/bin\0RANK=1\0LOCAL_RANK=1\0"
    assert soak["env_value"](environ, "RANK") == "1" and soak["env_value"](environ, "X") is None
    cmdline = b"python\0-m\0gankit\0--out\0/tmp/w/gan-s0-soak\0"
    assert soak["holds_arg"](cmdline, "/tmp/w/gan-s0-soak")
    assert not soak["holds_arg"](cmdline, "/tmp/w/gan")


# a parent that, like torchrun's agent, starts a worker (RANK=1) detached with setsid
AGENT = """import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", sys.argv[1]],
                 env={**os.environ, "RANK": "1"}, start_new_session=True)
time.sleep(60)"""


def start_tree(soak: dict, marker: str) -> tuple[subprocess.Popen, int]:
    """The parent (detached with setsid) and its worker's PID, once both run."""
    proc = subprocess.Popen([sys.executable, "-c", AGENT, marker], start_new_session=True)
    deadline = time.monotonic() + 30
    while len(soak["running_with"](marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    (worker,) = soak["children"](proc.pid)
    return proc, worker


def test_kill_tree_reaches_the_workers_a_group_kill_leaves_orphaned(soak, tmp_path, monkeypatch):
    monkeypatch.setitem(soak["kill_orphans"].__globals__, "ORPHAN_GRACE", 0.5)
    run_dir = tmp_path / "run"
    proc, worker = start_tree(soak, str(run_dir))
    assert soak["workers"](proc.pid) == {1: worker}
    assert sorted(soak["kill_tree"](proc.pid)) == sorted([proc.pid, worker])
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert soak["kill_orphans"](run_dir) == 0

    proc, worker = start_tree(soak, str(run_dir))
    os.killpg(proc.pid, signal.SIGKILL)  # the parent's process group alone: the worker lives on
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert soak["running_with"](str(run_dir)) == [worker]
    assert soak["kill_orphans"](run_dir) == 1 and soak["running_with"](str(run_dir)) == []


@pytest.mark.slow
def test_torchrun_soak_of_one_family_ends_identical_with_no_orphan(tmp_path):
    out = tmp_path / "soak.json"
    cmd = [sys.executable, str(SOAK), "--families", "gan", "--processes", "2", "--steps", "12"]
    cmd += ["--kills-per-run", "5", "--out", str(out)]  # random, worker 0 and 1, during_write
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    totals = json.loads(out.read_text())["totals"]
    assert totals["runs_finished"] == 1 and totals["kills"] > 0
    assert totals["unloadable"] == 0 and totals["orphans"] == 0
    assert totals["runs_identical_to_twin"] == 1 and totals["runs_differing"] == 0
