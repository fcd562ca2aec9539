"""Exponential moving average of generator weights (Yazıcı et al., arXiv:1806.04498)."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class EMA:
    """Shadow copies θ_ema ← d·θ_ema + (1 − d)·θ of named modules' parameters; buffers copied."""

    def __init__(self, modules: dict[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.shadow = {
            k: {n: t.detach().clone() for n, t in m.state_dict().items()}
            for k, m in modules.items()
        }

    @torch.no_grad()
    def update(self, modules: dict[str, nn.Module]) -> None:
        for key, module in modules.items():
            shadow = self.shadow[key]
            for name, value in module.state_dict().items():
                if value.dtype.is_floating_point:
                    shadow[name].lerp_(value, 1.0 - self.decay)
                else:
                    shadow[name].copy_(value)

    @contextmanager
    def applied(self, modules: dict[str, nn.Module]) -> Iterator[None]:
        """Temporarily load the averaged weights into ``modules`` (for sampling and metrics)."""
        backup = {k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in modules.items()}
        for key, module in modules.items():
            module.load_state_dict(self.shadow[key])
        try:
            yield
        finally:
            for key, module in modules.items():
                module.load_state_dict(backup[key])

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay = state["decay"]
        for key, tensors in state["shadow"].items():
            for name, value in tensors.items():
                self.shadow[key][name].copy_(value)
