"""Checkpoints: atomic, pruned, pickle-free, and clear about damage (PITFALLS 1, 2)."""

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gankit import checkpoint
from gankit.errors import GankitError


def _state(step: int) -> dict:
    return {"step": step, "config": {"model": "gan"}, "w": torch.arange(4.0) * step}


def test_save_keeps_last_k_and_leaves_no_temp(tmp_path):
    for step in (1, 2, 3, 4):
        checkpoint.save(_state(step), tmp_path, keep_last=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["step_00000003.pt", "step_00000004.pt"]
    assert checkpoint.latest(tmp_path).name == "step_00000004.pt"
    assert torch.equal(checkpoint.load(checkpoint.latest(tmp_path))["w"], torch.arange(4.0) * 4)


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = checkpoint.save(_state(1), tmp_path, keep_last=3)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(GankitError, match="corrupt or truncated"):
        checkpoint.load(path)


def test_loading_never_runs_pickled_code(tmp_path, capsys):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "step_00000001.pt"
    with open(path, "wb") as f:
        pickle.dump({"step": 1, "config": {}, "x": Evil()}, f)
    with pytest.raises(GankitError, match="refused, since loading it would run its code"):
        checkpoint.load(path)
    assert "pwned" not in capsys.readouterr().out


def test_foreign_file_is_rejected(tmp_path):
    path = tmp_path / "step_00000001.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(GankitError, match="not a gankit checkpoint"):
        checkpoint.load(path)


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = checkpoint.save(_state(1), tmp_path, keep_last=3)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        checkpoint.save_atomic(_state(1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


# saves step 1, then step 2 with the test hook set to kill the process at its second write
_KILLED_WRITER = """
import sys, torch
from pathlib import Path
from gankit import checkpoint
for step in (1, 2):
    state = {"step": step, "config": {"model": "gan"}, "w": torch.full((4,), float(step))}
    checkpoint.save(state, Path(sys.argv[1]), keep_last=3)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals only")
def test_a_kill_between_fsync_and_rename_keeps_the_previous_checkpoint(tmp_path):
    env = {**os.environ, checkpoint.KILL_BEFORE_RENAME: "2"}
    env["PYTHONPATH"] = str(Path(__file__).parents[1] / "src")
    cmd = [sys.executable, "-c", _KILLED_WRITER, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (tmp,) = tmp_path.glob(".step_00000002.pt.*.tmp")  # written and fsynced, never renamed
    assert tmp.stat().st_size > 0
    assert [p.name for p in checkpoint.list_checkpoints(tmp_path)] == ["step_00000001.pt"]
    assert torch.equal(checkpoint.load(checkpoint.latest(tmp_path))["w"], torch.ones(4))
    assert checkpoint.remove_temps(tmp_path) == [tmp]
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000001.pt"]
