"""Checkpoints as plain dicts of tensors and numbers, written atomically, read without pickle code.

A checkpoint holds everything a run needs to continue exactly: config, step, model weights,
optimiser and scheduler states, EMA weights, data-order and noise RNG states. It never pickles a
module, so it loads after the code moves, with ``torch.load(weights_only=True)``.
"""

import importlib.metadata
import itertools
import os
import pickle
import re
import shutil
import signal
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

from gankit.errors import GankitError, WriteFailed

_NAME = re.compile(r"step_(\d+)\.pt$")


def _installed_version() -> str:
    try:
        return importlib.metadata.version("gankit")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"


VERSION = _installed_version()


def written_by(state: dict[str, Any]) -> str:
    """The gankit version that wrote a checkpoint (versions up to 0.1.0 did not record it)."""
    return str(state.get("gankit_version", "0.1.0 or earlier"))


# Test hook (benchmarks/soak.py, tests/test_checkpoint.py): with this set to N, the Nth atomic
# write of the process SIGKILLs the process after the fsync of its temp file, before the rename.
KILL_BEFORE_RENAME = "GANKIT_TEST_KILL_BEFORE_RENAME"
_WRITES = itertools.count(1)


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
        if KILL_BEFORE_RENAME in os.environ:  # test hook only: one dict lookup when unset
            kill_before_rename(int(os.environ[KILL_BEFORE_RENAME]))
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


def kill_before_rename(at: int) -> None:
    """Test hook: crash (SIGKILL, no cleanup) at the ``at``-th atomic write of this process."""
    if next(_WRITES) == at:
        os.kill(os.getpid(), signal.SIGKILL)


def remove_temps(folder: Path) -> list[Path]:
    """Delete the temp files (``.NAME.*.tmp``) a killed ``write_atomic`` left in ``folder``;
    the files they were to replace are whole, so nothing is lost."""
    stale = sorted(folder.glob(".*.tmp")) if folder.is_dir() else []
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


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
        with warnings.catch_warnings():  # torch's notes on foreign pickles: the error says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise GankitError(f"checkpoint {path} does not exist") from None
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise _damaged(path, exc) from None
        raise GankitError(
            f"{path} holds Python objects besides tensors and numbers, so it was not written by "
            "gankit; refused, since loading it would run its code"
        ) from None
    except Exception as exc:  # torch raises many types for damaged zips and unpickling
        raise _damaged(path, exc) from None
    if not isinstance(state, dict) or "config" not in state or "step" not in state:
        raise GankitError(f"{path} is not a gankit checkpoint (no config/step inside)")
    return state


def _damaged(path: Path, exc: Exception) -> GankitError:
    reason = str(exc).split(". ")[0].splitlines()[0][:120] if str(exc) else type(exc).__name__
    return GankitError(
        f"checkpoint {path} is corrupt or truncated ({reason}): delete it to fall back "
        "to an earlier checkpoint, or retrain"
    )


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
