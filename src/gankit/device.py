"""Device choice: CUDA when present, else CPU; ``--device`` overrides. Training precision:
bf16 autocast where the device computes bf16 natively, else fp32. Training kernels (``impl``):
torch's on CUDA, the faster of gankit's and torch's on a CPU."""

from pathlib import Path
from typing import Any

import torch

from gankit.distributed import device_name
from gankit.errors import GankitError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` → cuda if available else cpu; ``cuda``/``cuda:N``/``cpu`` checked for existence.
    Under torchrun on CUDA, ``auto`` and ``cuda`` are this process's GPU (``cuda:LOCAL_RANK``)."""
    name = device_name(name)
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


# CPU flags (as /proc/cpuinfo names them) of native bf16 arithmetic: AVX-512 BF16 dot products,
# Intel AMX tiles. Without them torch emulates bf16 and autocast only adds conversions.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The first CPU's feature flags from ``cpuinfo`` (Linux); empty where it cannot be read."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def bf16_native(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively: CUDA with bf16 support, or a CPU with AVX-512
    BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and any(f in cpu_flags() for f in BF16_CPU_FLAGS)


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto`` → ``bf16`` where :func:`bf16_native`, else ``fp32``; ``fp32``/``bf16`` as given."""
    if name == "auto":
        return "bf16" if bf16_native(device) else "fp32"
    if name not in ("fp32", "bf16"):
        raise GankitError(f"unknown precision '{name}': use fp32, bf16 or auto")
    return name


IMPLS = ("auto", "torch", "gankit")


def resolve_impl(name: str, device: torch.device, cpu_choice: str = "gankit") -> str:
    """``auto`` → ``torch`` on CUDA (cuDNN; gankit's GEMM kernels are CPU-only), else
    ``cpu_choice``: the implementation measured faster on a CPU for the family being trained
    (its ``cpu_impl``); ``torch``/``gankit`` as given."""
    if name not in IMPLS:
        raise GankitError(f"unknown impl '{name}': use auto, torch or gankit")
    if name != "auto":
        return name
    return "torch" if device.type == "cuda" else cpu_choice
