"""Device choice: CUDA when present, else CPU; ``--device`` overrides."""

from typing import Any

import torch

from gankit.errors import GankitError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → cuda if available else cpu; ``cuda``/``cuda:N``/``cpu`` checked for existence."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise GankitError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GankitError(f"device '{name}' requested but CUDA is not available: use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise GankitError(f"device '{name}' is not supported: use auto, cpu or cuda")
    return device


def to_device(batch: Any, device: torch.device) -> Any:
    """Move a tensor or a tuple of tensors."""
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(b, device) for b in batch)
    return batch.to(device, non_blocking=True)
