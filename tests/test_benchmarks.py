"""The benchmark's own measurements: a wrong peak RSS would misreport a memory target."""

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
