"""gankit's one cache root: datasets, evaluation classifiers, feature statistics, network weights.

``$GANKIT_CACHE`` when set, else ``$XDG_CACHE_HOME/gankit``, else ``~/.cache/gankit``. Every
cached file lives in one of the :data:`PARTS` below it, so ``gankit cache`` can say what is there.
"""

import os
from pathlib import Path

PARTS = {
    "datasets": "MNIST-style IDX files fetched by `gankit data fetch`",
    "classifiers": "evaluation classifiers trained by `gankit train classifier`",
    "fid_stats": "feature statistics of real images, keyed by their protocol",
    "weights": "network weights fetched by `gankit data fetch inception`",
}


def cache_root() -> Path:
    """The cache root (created on first write, not here)."""
    env = os.environ.get("GANKIT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "gankit"


def cache_dir(part: str) -> Path:
    """``cache_root() / part``, for one of :data:`PARTS`."""
    if part not in PARTS:
        raise ValueError(f"unknown cache part {part!r}: one of {', '.join(PARTS)}")
    return cache_root() / part


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def describe() -> list[str]:
    """Lines saying where the cache is and what each part holds (count and size of entries)."""
    root = cache_root()
    lines = [f"gankit cache: {root} (set GANKIT_CACHE to move it)"]
    for part, what in PARTS.items():
        folder = root / part
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
        size = sum(_size(e) if e.is_dir() else e.stat().st_size for e in entries)
        lines.append(f"  {part}/  {len(entries)} entries, {size / 1e6:.1f} MB: {what}")
        lines += [f"    {e.name}" for e in entries[:20]]
        if len(entries) > 20:
            lines.append(f"    ... and {len(entries) - 20} more")
    return lines
