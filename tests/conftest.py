import os

import pytest
import torch

# 2 by default, the cores the suite is sized for; GANKIT_TEST_THREADS=1 re-runs the training
# tests on another float trajectory (thread count changes reduction order), to check that their
# thresholds hold with margin rather than on one lucky run
torch.set_num_threads(int(os.environ.get("GANKIT_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _fixed_global_seed() -> None:
    """Every test starts from the same global RNG state, whatever ran before it, so a test
    that passes once passes on every run and in any order (no CI flakes from unlucky draws)."""
    torch.manual_seed(0)


@pytest.fixture
def tiny_overrides() -> list[str]:
    """Loop settings that keep a test run short and quiet."""
    return ["batch_size=64", "eval_samples=200", "progress=false", "log_every=5"]
