"""gankit.optim.Adam: torch's Adam, bit for bit, without importing torch._dynamo."""

import subprocess
import sys

import pytest
import torch
from torch import nn

from gankit.optim import Adam


@pytest.mark.parametrize("fused", [False, True])
def test_adam_updates_and_resumes_as_torchs(fused):
    torch.manual_seed(0)
    init = [torch.randn(6, 4), torch.randn(4)]
    grads = [[torch.randn_like(t) for t in init] for _ in range(5)]
    kw = {"lr": 0.1, "betas": (0.5, 0.999), "fused": fused}

    def train(opt_cls: type, steps: list, params: list, state: dict | None = None) -> dict:
        opt = opt_cls(params, **kw)
        if state is not None:
            opt.load_state_dict(state)
        for step_grads in steps:
            for p, g in zip(params, step_grads, strict=True):
                p.grad = g.clone()
            opt.step()
            opt.zero_grad()
        return opt.state_dict()

    ref = [nn.Parameter(t.clone()) for t in init]
    train(torch.optim.Adam, grads, ref)
    ours = [nn.Parameter(t.clone()) for t in init]
    state = train(Adam, grads[:2], ours)
    train(Adam, grads[2:], ours, state)  # resumed from its own state dict
    assert all(torch.equal(a, b) for a, b in zip(ref, ours, strict=True))


def test_adam_refuses_differentiable():
    with pytest.raises(ValueError, match="not differentiable"):
        Adam([nn.Parameter(torch.zeros(2))], differentiable=True)


def test_cgan_training_never_imports_dynamo():
    # a fresh interpreter: torch's own optimizers in other tests import dynamo in this one
    code = """
import sys, torch
from gankit.models.cgan import CGAN, CGANConfig
from gankit.data import DataSpec
from gankit.models.base import Batch
spec = DataSpec(name="t", kind="images", shape=(1, 8, 8), num_classes=3)
model = CGAN(CGANConfig.tiny(), spec)
model.setup()
def batches():
    while True:
        yield torch.rand(4, 1, 8, 8) * 2 - 1, torch.randint(3, (4,))
stream = batches()
for step in range(3):
    model.train_step(stream, step)
    model.end_step()
model.load_training_state(model.training_state())
print("torch._dynamo" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
