import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def tiny_overrides() -> list[str]:
    """Loop settings that keep a test run short and quiet."""
    return ["batch_size=64", "eval_samples=200", "progress=false", "log_every=5"]
