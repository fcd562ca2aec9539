"""The benchmark's own measurements: a wrong peak RSS would misreport a memory target."""

import json
import runpy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux /proc only")
def test_peak_rss_of_a_child_is_its_own_not_its_parents():
    """ru_maxrss of a child started by fork + exec starts at the parent's peak; benchmarks/run.py
    runs each preset in a child, so it must read the child's own high-water mark."""
    ballast = np.ones(400 * 2**20 // 8)  # the parent now holds 400 MB more than any child
    code = f"import runpy, sys; print(runpy.run_path({str(RUN)!r})['peak_rss_mb']())"
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert child.returncode == 0, child.stderr
    reported = float(child.stdout.split()[-1])
    assert ballast.sum() > 0
    assert 0 < reported < 400  # the child imports torch (~220 MB) and nothing else


def test_kernel_time_counts_matrix_products_only():
    """kernel_time splits MFU into kernel speed and kernel share: it must count a step's matrix
    products (FLOPs and time) and leave its element-wise work out of both."""
    import time

    import torch

    bench = runpy.run_path(str(RUN))
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    big = torch.randn(4_000_000)

    def step(_k: int) -> None:
        a @ b
        a @ b
        for _ in range(5):
            big.exp()  # element-wise: no FLOP formula, so not a kernel

    start = time.perf_counter()
    got = bench["kernel_time"](step, steps=2)
    wall = (time.perf_counter() - start) / 2
    assert got["flops"] == 2 * 2 * 256**3
    assert 0 < got["seconds"] < wall / 2  # five exps of 4 M floats outweigh two 256² products


def test_step_time_ratios_are_relative_to_the_first_precision():
    bench = runpy.run_path(str(RUN))
    speed = [
        {"preset": "p", "precision": "fp32", "sec_per_step": 0.2},
        {"preset": "p", "precision": "bf16", "sec_per_step": 0.1},
    ]
    assert bench["step_time_ratios"](speed, "fp32") == [
        {"preset": "p", "precision": "bf16", "time_ratio": 0.5}
    ]


def test_time_to_quality_first_crossing_needs_every_threshold_at_one_evaluation(tmp_path):
    """benchmarks/time_to_quality.py reports when a run first met its preset's threshold: all
    keys must hold at the same evaluation, loss-only lines are not evaluations, a run that
    never meets it reports None, and "held from" restarts after a dip below it."""
    ttq = runpy.run_path(str(RUN.with_name("time_to_quality.py")))
    lines = [
        {"step": 50, "time": 101.0, "loss/d": -1.0},
        {"step": 1000, "time": 110.0, "eval/modes": 8.0, "eval/high_quality": 0.85},
        {"step": 2000, "time": 120.0, "eval/modes": 7.0, "eval/high_quality": 0.95},
        {"step": 3000, "time": 130.5, "eval/modes": 8.0, "eval/high_quality": 0.90},
        {"step": 4000, "time": 140.0, "eval/modes": 8.0, "eval/high_quality": 0.97},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(rec) + "\n" for rec in lines))
    evals = ttq["read_evals"](path)
    assert [r["step"] for r in evals] == [1000, 2000, 3000, 4000]
    toy = ttq["PRESETS"]["toy"].thresholds
    assert ttq["first_crossing"](evals, toy, t0=100.0) == {"step": 3000, "seconds": 30.5}
    assert ttq["first_crossing"](evals[:2], toy, t0=100.0) is None
    assert ttq["first_crossing"](evals, {"eval/cond_accuracy": 0.97}, t0=100.0) is None
    assert not ttq["meets"]({"eval/modes": 8.0}, toy)  # a missing key is not met
    at_95 = {"eval/label_preservation_ab": 0.95}  # 475 of 500, logged from float32
    assert ttq["meets"]({"eval/label_preservation_ab": 0.949999988079071}, at_95)
    assert not ttq["meets"]({"eval/label_preservation_ab": 0.948}, at_95)
    # met at 3,000 and held to the end from then; a dip after a first crossing restarts "held"
    assert ttq["held_from"](evals, toy, t0=100.0) == {"step": 3000, "seconds": 30.5}
    dipped = [*evals, {"step": 5000, "time": 150.0, "eval/modes": 8.0, "eval/high_quality": 0.8}]
    assert ttq["held_from"](dipped, toy, t0=100.0) is None
    recovered = [*dipped, {"step": 6000, "time": 160.0, "eval/modes": 8.0, "eval/high_quality": 1}]
    assert ttq["held_from"](recovered, toy, t0=100.0) == {"step": 6000, "seconds": 60.0}


def test_kernel_share_is_at_most_one_by_construction():
    """kernel_share was kernel time over the step time of another pass (1.23 and 2.58 seen
    when the load differed between them): both now come from one pass, and the kernel time
    is a union of intervals inside it, so a step of matrix products only reaches at most 1."""
    import torch

    bench = runpy.run_path(str(RUN))
    a = torch.randn(384, 384)

    def step(_k: int) -> None:
        for _ in range(20):
            a @ a

    got = bench["kernel_time"](step, steps=3)
    assert 0.3 < got["share"] <= 1.0
    assert got["seconds"] <= got["wall"]


def test_kernel_time_counts_overlapping_kernels_once():
    """Matrix products dispatched from two threads at once: their time is counted once."""
    import threading

    import torch

    bench = runpy.run_path(str(RUN))
    a = torch.randn(256, 256)
    counter = bench["GradSafeFlopCounter"]()

    def work() -> None:
        with counter:
            for _ in range(30):
                a @ a

    threads = [threading.Thread(target=work) for _ in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    assert counter.total == 2 * 30 * 2 * 256**3
    assert 0 < counter.seconds <= wall
