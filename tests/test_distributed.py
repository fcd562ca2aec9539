"""Multi-process training (torchrun, gloo on the CPU): 2 processes with a global batch B train
every family to the weights one process with batch B reaches; rank 0 alone writes the run;
a killed 2-process run resumes exactly."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_worker import CASES, run_case
from torch import nn

from gankit import checkpoint, distributed
from gankit.errors import GankitError

TESTS = Path(__file__).resolve().parent


def torchrun(
    *args: str, nproc: int = 2, timeout: int = 300, **env: str
) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc-per-node=nproc args`` with 1 thread per process."""
    environ = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": f"{TESTS}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        **env,
    }
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={nproc}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=timeout)


def failure(done: subprocess.CompletedProcess) -> str:
    """A failed launch's stderr: the workers' own messages first, then torchrun's summary."""
    err = done.stderr
    return err if len(err) < 6000 else f"{err[:3000]}\n[...]\n{err[-3000:]}"


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    done = torchrun(str(TESTS / "ddp_worker.py"), str(out), *CASES)
    assert done.returncode == 0, failure(done)
    return {name: torch.load(out / f"{name}.pt", weights_only=True) for name in CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_train_every_family_as_one_with_the_global_batch(name, two_process_results):
    two = two_process_results[name]
    one = run_case(name)
    # the RNG advanced alike: every random draw of the step was made at the global batch size
    assert torch.equal(two["rng"], one["rng"])
    assert two["model"].keys() == one["model"].keys()
    # A bias right before a normalisation (BatchNorm, InstanceNorm) is cancelled by it: its
    # gradient is 0 up to rounding (1e-8 to 1e-5 here, against 1e-2 to 1 for the others), which
    # Adam scales up to ±lr steps, so such a parameter (and the running means it shifts) may
    # differ; every other weight must agree.
    grads = one["grads"]
    net_max = {}
    for k, g in grads.items():
        net_max[k.split(".")[0]] = max(net_max.get(k.split(".")[0], 0.0), g)
    null = {k for k, g in grads.items() if g < 1e-4 * net_max[k.split(".")[0]]}
    assert len(null) <= len(grads) // 4, sorted(null)
    for key, value in one["model"].items():
        if key in null:
            continue
        # equal up to float summation order (a mean over 8 rows vs the mean of two means of 4)
        atol = 1e-3 if null and key.endswith("running_mean") else 2e-5
        torch.testing.assert_close(two["model"][key], value, rtol=1e-4, atol=atol, msg=key)
    for key, value in one["logs"].items():
        assert two["logs"][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key


TOY = ["train", "wgan-gp", "--data", "8gaussians", "hidden=16", "depth=1", "batch_size=32"]
TOY += ["steps=12", "ckpt_every=4", "eval_every=6", "sample_every=12", "eval_samples=100"]
TOY += ["log_every=2", "progress=false"]


def final_state(run_dir: Path) -> dict:
    return checkpoint.load(checkpoint.latest(run_dir / "checkpoints"))


def test_torchrun_cli_trains_resumes_after_a_kill_and_matches_one_process(tmp_path):
    """`torchrun -m gankit train`: rank 0 alone writes the run; one process with the same global
    batch reaches the same weights; rank 0 killed inside its second checkpoint write (the
    other rank is then stopped by torchrun) resumes to the uninterrupted run's exact state."""
    from gankit.cli import main

    whole = torchrun("-m", "gankit", *TOY, "--out", str(tmp_path / "two"))
    assert whole.returncode == 0, failure(whole)
    assert whole.stdout.count('"run_dir"') == 1  # rank 0 alone reports
    assert "2 processes" in whole.stderr
    records = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len(records) == len(set(records)) and len(records) == 6 + 2  # 6 loss logs, 2 evals

    assert main([*TOY, "--out", str(tmp_path / "one")]) == 0
    two, one = final_state(tmp_path / "two"), final_state(tmp_path / "one")
    assert torch.equal(two["rng"]["torch"], one["rng"]["torch"])
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-4, atol=2e-5, msg=key)

    killed = torchrun(
        "-m", "gankit", *TOY, "--out", str(tmp_path / "killed"), GANKIT_TEST_KILL_BEFORE_RENAME="2"
    )
    assert killed.returncode != 0
    assert checkpoint.step_of(checkpoint.latest(tmp_path / "killed" / "checkpoints")) == 4
    resumed = torchrun("-m", "gankit", "train", "--resume", str(tmp_path / "killed"))
    assert resumed.returncode == 0, failure(resumed)
    again = final_state(tmp_path / "killed")
    assert again["step"] == 12
    for key, value in two["model"].items():
        assert torch.equal(again["model"][key], value), key
    assert torch.equal(again["rng"]["torch"], two["rng"]["torch"])


def test_processes_that_finish_together_exit_cleanly(tmp_path):
    """Both ranks exit right after their last collective. gloo's teardown aborted one of them
    in 2 launches of 12 as they were, 1 in 30 after leaving the group together, and in none of
    40 once they exit through exit_process (as this worker and the CLI do)."""
    for _ in range(4):
        done = torchrun(str(TESTS / "ddp_worker.py"), str(tmp_path), "wgan-points")
        assert done.returncode == 0, failure(done)


def test_alone_finishing_is_a_plain_exit():
    distributed.finish()  # no group to leave: nothing happens
    with pytest.raises(SystemExit) as exited:
        distributed.exit_process(3)
    assert exited.value.code == 3


def test_a_batch_that_does_not_split_over_the_processes_is_one_line(monkeypatch):
    monkeypatch.setattr(distributed, "_WORLD", distributed.World(rank=1, size=2))
    with pytest.raises(GankitError, match="batch_size=5 does not split over 2 processes"):
        distributed.check_batch(5)
    distributed.check_batch(6)


def test_the_world_is_read_from_torchrun_s_environment():
    assert distributed.launched({}) == distributed.World(0, 1, 0)
    world = distributed.launched({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert world == distributed.World(3, 4, 1) and not world.main
    with pytest.raises(GankitError, match="start gankit with torchrun"):
        distributed.launched({"WORLD_SIZE": "2", "RANK": "2"})


def test_alone_every_helper_is_the_identity():
    x = torch.arange(6.0).view(3, 2)
    assert distributed.shard(x) is x and distributed.gather_rows(x) is x
    assert distributed.local_rows(lambda n: torch.zeros(n), 3).shape == (3,)
    assert distributed.all_mean({"a": 2.0}) == {"a": 2.0} and distributed.any_rank(True)
    net = nn.Sequential(nn.BatchNorm1d(3))
    assert type(distributed.sync_batchnorm(net)[0]) is nn.BatchNorm1d


def test_synced_batchnorm_normalises_over_the_global_batch(monkeypatch):
    """Rank 0 of 2 whose peer holds the same rows: the global batch is x twice, so outputs,
    running mean and (unbiased, over 2·n) running variance are plain BatchNorm's on cat(x, x)."""
    torch.manual_seed(0)
    x = torch.randn(6, 4, 5, 5)
    plain, synced = nn.BatchNorm2d(4), nn.BatchNorm2d(4)
    distributed.sync_batchnorm(nn.Sequential(synced))  # alone: unchanged
    assert type(synced) is nn.BatchNorm2d
    monkeypatch.setattr(distributed, "_WORLD", distributed.World(rank=0, size=2))
    monkeypatch.setattr(distributed._SumOverRanks, "apply", lambda t: 2 * t)  # the peer's sums
    distributed.sync_batchnorm(nn.Sequential(synced))
    assert type(synced) is distributed.SyncedBatchNorm
    expected = plain(torch.cat([x, x]))[:6]
    torch.testing.assert_close(synced(x), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(synced.running_mean, plain.running_mean)
    torch.testing.assert_close(synced.running_var, plain.running_var)
    synced.eval()  # eval mode: the running statistics, no collective
    torch.testing.assert_close(synced(x), plain.eval()(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_workers_checkpoint_and_stop_when_torchrun_is_killed(tmp_path):
    """`kill -9` of torchrun alone: its workers (each detached with setsid) get SIGTERM from
    Linux and stop as after Ctrl-C, rank 0 checkpointing the step they agree on."""
    import signal
    import time

    environ = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    long = [f"{key}=100000" for key in ("steps", "ckpt_every", "eval_every", "sample_every")]
    cmd += ["-m", "gankit", *TOY[:7], *long, "log_every=2", "progress=false"]
    cmd += ["--out", str(tmp_path / "run")]
    agent = subprocess.Popen(cmd, env=environ, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 3):
        assert time.monotonic() < deadline and agent.poll() is None
        time.sleep(0.2)
    agent.send_signal(signal.SIGKILL)
    agent.wait()
    deadline = time.monotonic() + 60
    while checkpoint.latest(tmp_path / "run" / "checkpoints") is None:
        assert time.monotonic() < deadline, "no checkpoint after the launcher was killed"
        time.sleep(0.2)
    time.sleep(2)
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "run")], capture_output=True, text=True)
    assert left.stdout.strip() == ""
