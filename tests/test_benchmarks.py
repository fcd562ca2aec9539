"""The benchmark's own measurements: a wrong peak RSS would misreport a memory target."""

import runpy
import subprocess
import sys
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
