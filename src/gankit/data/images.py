"""Image datasets held in memory as uint8: MNIST, Fashion-MNIST and class-folder datasets.

Named datasets' files are found, checked and fetched by :mod:`gankit.data.fetch`.
"""

import hashlib
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from gankit.cache import cache_dir
from gankit.data.fetch import DATASETS, DatasetSpec, digest, find_file, locate
from gankit.data.idx import read_idx
from gankit.errors import GankitError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
FOLDER_LAYOUT = "DIR/<class>/*.png|jpg|jpeg|bmp, or DIR/train/<class>/... and DIR/test/<class>/..."
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
WIDE_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
_BICUBIC = Image.Resampling.BICUBIC
ClassFiles = dict[str, list[Path]]  # class name → its image files
T = TypeVar("T")


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
    if folder != cache_dir("datasets") / spec.name:
        hint = f"replace it, or run `gankit data fetch {spec.name}` and load without a path"
    arrays = []
    for kind in ("images", "labels"):
        entry = spec.files[f"{split}-{kind}"]
        file = find_file(folder, entry.stem)
        assert file is not None  # locate() only returns complete folders
        array = read_idx(file, hint)
        if digest(array) != entry.sha256:
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
        files = sorted(  # hidden files skipped: macOS leaves "._x.png" metadata beside x.png
            p
            for p in sub.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
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


def hold_out(files: ClassFiles) -> tuple[ClassFiles, ClassFiles, int]:
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
        train, test, held = hold_out(train)
        notes.append(f"no test folder: held out {held} images (10% of each class) as test split")
    classes = sorted(set(train) | set(test))
    index = {name: i for i, name in enumerate(classes)}
    splits = {
        split: [(p, index[c]) for c in sorted(files) for p in files[c]]
        for split, files in (("train", train), ("test", test))
    }
    return classes, splits, notes


def unreadable(path: Path, err: Exception) -> GankitError:
    reason = " ".join(str(err).split()) or type(err).__name__  # one line, never empty
    return GankitError(f"{path}: unreadable image ({reason}); fix or delete the file")


def too_large(path: Path, err: Exception) -> GankitError:
    # Pillow's text: "Image size (N pixels) exceeds limit of M pixels, could be decompression ..."
    what = " ".join(str(err).split(", could be")[0].split())
    return GankitError(f"{path}: too large to decode safely ({what}); shrink or delete the file")


def open_image(path: Path) -> Image.Image:
    """``Image.open`` (header only): a file with more pixels than ``Image.MAX_IMAGE_PIXELS`` (a
    decompression bomb) fails here, before any pixel is decoded. Close it (``with``) after use."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its limit, then decodes hundreds of MB
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise too_large(path, err) from None
    except Exception as err:  # Pillow plugins raise many types on malformed files
        raise unreadable(path, err) from None


def probe(path: Path) -> tuple[str, tuple[int, int]]:
    """(Pillow mode, (width, height)) from the file header, without decoding the pixels."""
    with open_image(path) as im:
        return im.mode, im.size


def read_all(paths: Sequence[Path], read: Callable[[Path], T]) -> list[T]:
    """``read(p)`` of every path; the failures become one error naming the first and the count,
    so that one look at a folder finds every bad file."""
    out, bad = [], []
    for p in paths:
        try:
            out.append(read(p))
        except GankitError as err:
            bad.append((p, err))
    if len(bad) > 1:
        names = ", ".join(p.name for p, _ in bad[1:4]) + (", ..." if len(bad) > 4 else "")
        raise GankitError(f"{bad[0][1]} ({len(bad) - 1} more bad images: {names})")
    if bad:
        raise bad[0][1]
    return out


def to_8bit(im: Image.Image) -> Image.Image:
    """16-bit greyscale → 8-bit "L" (0..65535 onto 0..255); other modes unchanged."""
    if im.mode not in WIDE_MODES:
        return im
    # ÷257 maps 65535 to 255 and keeps 8-bit values stored as 16-bit (v * 257) exact.
    wide = np.asarray(im, dtype=np.float64) / 257.0
    return Image.fromarray(np.clip(np.round(wide), 0, 255).astype(np.uint8))


def read_8bit(path: Path, colour: bool | None = None, draft: int = 0) -> tuple[Image.Image, bool]:
    """The decoded pixels of ``path`` as 8-bit "RGB" (``colour``) or "L" (``None``: as the file's
    mode is colour or greyscale), and whether the file was 16-bit. Alpha and palette transparency
    are dropped, not composited. ``draft`` > 0 lets JPEG decode at a reduced scale >= draft."""
    with open_image(path) as im:
        try:
            if draft:
                im.draft(None, (draft, draft))  # much faster for large JPEGs
            im.load()
            wide = im.mode in WIDE_MODES
            grey = im.mode in GREY_MODES if colour is None else not colour
            flat = im.convert("RGBA") if "transparency" in im.info and im.mode == "P" else im
            # (Pillow warns when a palette with transparency goes straight to RGB or L)
            return to_8bit(flat).convert("L" if grey else "RGB"), wide
        except Exception as err:  # Pillow plugins raise many types on malformed files
            raise unreadable(path, err) from None


def _decode(path: Path, colour: bool, size_wh: tuple[int, int]) -> tuple[np.ndarray, bool, bool]:
    """Pixels (H, W, C) uint8 of ``path``, and whether it was 16-bit / resized."""
    im8, wide = read_8bit(path, colour)
    resized = im8.size != size_wh
    if resized:
        im8 = im8.resize(size_wh, _BICUBIC)
    pixels = np.asarray(im8)
    return (pixels[:, :, None] if pixels.ndim == 2 else pixels), wide, resized


def _folder_format(
    splits: dict[str, list[tuple[Path, int]]], size_wh: tuple[int, int] | None, notes: list[str]
) -> tuple[bool, tuple[int, int]]:
    """Decide (colour?, (w, h)) from the headers of both splits, so train and test agree."""
    probes = read_all([p for p, _ in splits["train"] + splits["test"]], probe)
    grey = [mode in GREY_MODES for mode, _ in probes]
    colour = not all(grey)
    if colour and any(grey):
        notes.append("mixed greyscale and colour images: all converted to RGB")
    return colour, size_wh or probes[0][1]


def memory_budget() -> int:
    """Bytes a folder's decoded images may take: a quarter of this machine's memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): as for 16 GB
        return 4 << 30


def _check_memory(root: Path, n: int, size_wh: tuple[int, int], colour: bool) -> None:
    """Fail before decoding when ``n`` images at ``size_wh`` would not fit the memory budget."""
    (w, h), budget = size_wh, memory_budget()
    need = n * w * h * (3 if colour else 1)
    if need > budget:
        raise GankitError(
            f"{root}: {n} images at {h}x{w} need {need / 1e6:,.0f} MB of memory, over the "
            f"{budget / 1e6:,.0f} MB allowed (a quarter of this machine's); set a smaller "
            "image size, e.g. image_size=64"
        )


def _load_folder(root: Path, split: str, size_wh: tuple[int, int] | None) -> ImageDataset:
    """A class-folder dataset (see FOLDER_LAYOUT) decoded into memory."""
    classes, splits, notes = _plan(root)
    colour, size_wh = _folder_format(splits, size_wh, notes)
    _check_memory(root, len(splits["train"]) + len(splits["test"]), size_wh, colour)
    if split == "train":  # the test split loads at the first evaluation: check it decodes now
        read_all([p for p, _ in splits["test"]], lambda p: read_8bit(p, colour))
    decoded = read_all([p for p, _ in splits[split]], lambda p: _decode(p, colour, size_wh))
    pixels = [array for array, _, _ in decoded]
    labels = [label for _, label in splits[split]]
    wide = sum(was_wide for _, was_wide, _ in decoded)
    resized = sum(was_resized for _, _, was_resized in decoded)
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
