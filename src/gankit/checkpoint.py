"""Checkpoints as plain dicts of tensors and numbers, written atomically, read without pickle code.

A checkpoint holds everything a run needs to continue exactly: config, step, model weights,
optimiser and scheduler states, EMA weights, data-order and noise RNG states. It never pickles a
module, so it loads after the code moves, with ``torch.load(weights_only=True)``.
"""

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from gankit.errors import GankitError, WriteFailed

_NAME = re.compile(r"step_(\d+)\.pt$")


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` via temp file + fsync + rename: a crash leaves old or new whole."""
    write_atomic(path, lambda f: torch.save(state, f))


def write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, fsync it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, a read-only mount, a vanished folder
        Path(tmp).unlink(missing_ok=True)
        raise write_failed(path, exc) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_failed(path: Path, exc: OSError) -> WriteFailed:
    """One line for a failed write: the path, the reason, the free space left there."""
    folder = next((p for p in (path, *path.parents) if p.is_dir()), Path("."))
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:,.0f} MB free there"
    except OSError:
        free = "free space unknown"
    return WriteFailed(
        f"could not write {path} ({exc.strerror or exc}; {free}); files written before it are "
        "intact: make room (or fix the permissions), then resume"
    )


def load(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely; a truncated or foreign file is one clear error."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GankitError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # torch raises many types for damaged zips and unpickling
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise GankitError(
            f"checkpoint {path} is corrupt or truncated ({reason}): delete it to fall back "
            "to an earlier checkpoint, or retrain"
        ) from None
    if not isinstance(state, dict) or "config" not in state or "step" not in state:
        raise GankitError(f"{path} is not a gankit checkpoint (no config/step inside)")
    return state


def step_of(path: Path) -> int:
    match = _NAME.search(path.name)
    return int(match.group(1)) if match else -1


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Checkpoints in ``ckpt_dir``, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    return sorted((p for p in ckpt_dir.glob("step_*.pt") if step_of(p) >= 0), key=step_of)


def save(state: dict[str, Any], ckpt_dir: Path, keep_last: int) -> Path:
    """Save ``state`` as ``step_NNNNNNN.pt`` and delete all but the newest ``keep_last``."""
    path = ckpt_dir / f"step_{state['step']:08d}.pt"
    save_atomic(state, path)
    for old in list_checkpoints(ckpt_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def latest(ckpt_dir: Path) -> Path | None:
    found = list_checkpoints(ckpt_dir)
    return found[-1] if found else None
