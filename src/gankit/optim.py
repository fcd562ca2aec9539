"""Adam for channels-last networks: the fused kernel without its layout copies.

torch's fused CPU Adam copies every parameter that is not contiguous in the default (NCHW) order
to a contiguous tensor and back at each step: 50 vs 21 ms per step for the 16.6 M parameters of
a 64-px DiscoGAN on one core. A channels-last tensor is as dense as an NCHW one, only with its
dimensions in another order, so when a parameter, its gradient and its moments are all
channels-last the kernel is handed their (O, kh, kw, C) views, which are contiguous, and the
update lands in the same memory.

The same kernel silently mis-updates a parameter whose moments have another layout than it (as
moments loaded from a checkpoint of NCHW weights do), so ``load_state_dict`` aligns them.
"""

from typing import Any

import torch
from torch import Tensor


def _nhwc(t: Tensor) -> Tensor:
    return t.permute(0, 2, 3, 1)


def _channels_last(t: Tensor) -> bool:
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)


class ChannelsLastAdam(torch.optim.Adam):
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
        for p, state in self.state.items():
            for key, value in state.items():
                if (
                    torch.is_tensor(value)
                    and value.shape == p.shape
                    and value.stride() != p.stride()
                ):
                    state[key] = torch.empty_like(p).copy_(value)
