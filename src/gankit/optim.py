"""Adam as torch runs it, without two costs that torch's class adds on a CPU.

``Adam`` never imports ``torch._dynamo``: torch's optimizers import it (and sympy with it) on
their first call, only to mark themselves as not compilable, which adds 71 MB to the peak RSS of
every training (218 MB for ``import torch`` alone). gankit never compiles an optimizer.

``ChannelsLastAdam`` runs the fused kernel on channels-last weights without layout copies:
torch's fused CPU Adam copies every parameter that is not contiguous in the default (NCHW) order
to a contiguous tensor and back at each step: 50 vs 21 ms per step for the 16.6 M parameters of
a 64-px DiscoGAN on one core. A channels-last tensor is as dense as an NCHW one, only with its
dimensions in another order, so when a parameter, its gradient and its moments are all
channels-last the kernel is handed their (O, kh, kw, C) views, which are contiguous, and the
update lands in the same memory.

The same kernel silently mis-updates a parameter whose moments have another layout than it (as
moments loaded from a checkpoint of NCHW weights do), so ``load_state_dict`` aligns them.
"""

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def _skip_lazy_dynamo(namespace: object) -> None:
    """Run ``namespace``'s ``torch._disable_dynamo`` functions directly, not through dynamo.

    Such a function imports torch._dynamo when first called, then caches the disabled version in
    the wrapped function's ``__dynamo_disable`` attribute; pre-filling that cache with the function
    itself skips the import. The cost: a process that later compiles a torch optimizer would
    trace these functions instead of skipping them (gankit never compiles one). Once dynamo is
    loaded, nothing is changed.
    """
    if "torch._dynamo" in sys.modules:
        return
    for value in vars(namespace).values():
        wrapped = getattr(value, "__wrapped__", None)
        if callable(wrapped) and not hasattr(wrapped, "__dynamo_disable"):
            setattr(wrapped, "__dynamo_disable", wrapped)


class Adam(torch.optim.Adam):
    """``torch.optim.Adam`` (same arguments, state dict and updates) that never imports dynamo."""

    _raw_step: Callable[..., Any] = staticmethod(inspect.unwrap(torch.optim.Adam.step))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _skip_lazy_dynamo(torch.optim.Optimizer)
        _skip_lazy_dynamo(importlib.import_module("torch.optim.adam"))  # its functional adam
        super().__init__(*args, **kwargs)
        if self.defaults["differentiable"]:
            raise ValueError("gankit's Adam is not differentiable: use torch.optim.Adam")

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        # torch's step is this one inside a wrapper whose only other work is importing dynamo to
        # mark graph breaks (step hooks still run: Optimizer.__init__ wraps the class's step)
        return self._raw_step(self, closure)


def _nhwc(t: Tensor) -> Tensor:
    return t.permute(0, 2, 3, 1)


def _channels_last(t: Tensor) -> bool:
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)


class ChannelsLastAdam(Adam):
    """``torch.optim.Adam`` (same arguments, state dict and updates) for channels-last weights."""

    def _init_group(self, group: dict[str, Any], *lists: list[Tensor]) -> bool:
        has_complex = super()._init_group(group, *lists)
        # params, grads, exp_avgs, exp_avg_sqs (and max_exp_avg_sqs with amsgrad), in parallel
        parallel = lists[: 5 if group["amsgrad"] else 4]
        for i, tensors in enumerate(zip(*parallel, strict=True)):
            # all or none: the kernel walks them in one memory order
            if all(map(_channels_last, tensors)) and not tensors[0].is_contiguous():
                for seq, t in zip(parallel, tensors, strict=True):
                    seq[i] = _nhwc(t)
        return has_complex

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads as Adam does, then gives the moments their parameter's layout: those saved from
        NCHW weights (older checkpoints) would otherwise be mis-updated by torch's fused kernel,
        which assumes one layout for a parameter and its state (torch 2.13, no error raised)."""
        super().load_state_dict(state_dict)
        align_moments(self)


def align_moments(optimizer: torch.optim.Optimizer) -> None:
    """Give every per-parameter state tensor (Adam's moments) its parameter's memory layout.

    Moments saved from NCHW weights and loaded for channels-last ones (or the reverse, when a run
    moves between gankit's and torch's kernels) would be mis-updated by torch's fused kernel,
    which assumes one layout for a parameter and its state (torch 2.13, no error raised).
    """
    for p, state in optimizer.state.items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                state[key] = torch.empty_like(p).copy_(value)
