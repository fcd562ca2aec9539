"""Unpaired two-domain data for CycleGAN and DiscoGAN, and DiscoGAN's 2-D toy.

:class:`UnpairedSource` holds domain A and domain B images in memory as uint8; ``batch(n)``
returns (xa, xb), each domain drawn in its own random epoch order, so no batch pairs an A image
with its B counterpart. The images come from

* a folder ``DIR/trainA``, ``DIR/trainB`` (optional ``DIR/testA``, ``DIR/testB``) of PNG/JPEG/BMP
  images of any size (:func:`load_unpaired_folder`), as in the CycleGAN repository;
* built-in pairs made deterministically, with no download, from MNIST and Fashion-MNIST
  (:data:`BUILDERS`): ``digits2colour``, ``sneakers2boots`` and ``edges2shoes-mini``.

Where domain B is a known function of domain A (digits2colour, edges2shoes-mini), training sees two
disjoint sets of source images, while the test split keeps the pairing: ``hidden_b_of_test_a[i]``
is the true translation of ``test_a.images[i]``, an exact target to measure a translator against.

:class:`UnpairedPointsSource` (``discogan-toy``) gives the 2-D domains of DiscoGAN's toy
experiment (arXiv:1703.05192): A = 5 Gaussians, B = 10 Gaussians on the unit circle.
"""

import functools
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from gankit.data import DataSource, DataSpec
from gankit.data.images import (
    _GREY_MODES,
    _WIDE_MODES,
    IMAGE_SUFFIXES,
    ImageDataset,
    _hold_out,
    _probe,
    _to_8bit,
    _unreadable,
    load_image_dataset,
    to_float,
)
from gankit.data.toy import GaussianMixture, mixture_on_circle
from gankit.errors import GankitError

DEFAULT_SIZE = 32  # folder images are resized to this unless `image_size` is given
LOAD_SCALE = 1.125  # folders: train images kept at size * 1.125, randomly cropped to size
FOLDER_LAYOUT = "DIR/trainA/*.png|jpg, DIR/trainB/*.png|jpg (testA/, testB/ optional)"
SUBFOLDERS = ("trainA", "trainB", "testA", "testB")
TRAIN_PER_DOMAIN = 5000  # built-ins: training images per domain (CPU-friendly)
TEST_PER_DOMAIN = 2000  # built-ins: test images per domain (sneakers2boots has 1000)
_SEED = 2017  # every built-in is made with this seed: the same data at every run
_FOOTWEAR = {5: "Sandal", 7: "Sneaker", 9: "Ankle boot"}  # Fashion-MNIST label → name


@dataclass
class UnpairedData:
    """Two image domains held in memory.

    Attributes:
        name: "digits2colour", ... or the folder.
        train_a, train_b: uint8 (N, C, S, S) with S >= ``size`` (random ``size`` crops are taken
            at training time when S > size); labels (N,) int64 (zeros when unlabelled).
        test_a, test_b: uint8 (M, C, size, size), no augmentation.
        size: side of the images a batch holds.
        flip: random horizontal flips at training time.
        hidden_b_of_test_a: uint8 (len(test_a), C_b, size, size), the true B image of each test A
            image, or None when the domains have no known pairing; ``hidden_a_of_test_b`` likewise.
        source_a, source_b: for built-ins, indices of train_a/train_b into the train split of the
            dataset they were made from (disjoint where A and B come from the same images).
        note: what loading decided or converted, or "".
        classifier_extra: for built-ins that can make more labelled images of each domain than
            the translators train on, a function returning (extra A, extra B) for the evaluation
            classifiers only (:func:`train_pair_classifiers`), or None.
    """

    name: str
    train_a: ImageDataset
    train_b: ImageDataset
    test_a: ImageDataset
    test_b: ImageDataset
    size: int
    flip: bool = False
    hidden_b_of_test_a: Tensor | None = None
    hidden_a_of_test_b: Tensor | None = None
    source_a: Tensor | None = None
    source_b: Tensor | None = None
    note: str = ""
    classifier_extra: Callable[[], tuple[ImageDataset, ImageDataset]] | None = None


# --------------------------------------------------------------------------- folders


def is_unpaired_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder with any of trainA/trainB/testA/testB (checks no images)."""
    root = Path(path).expanduser()
    return root.is_dir() and any((root / sub).is_dir() for sub in SUBFOLDERS)


def _image_files(folder: Path) -> list[Path]:
    """The sorted image files directly inside ``folder``; a missing or empty folder is an error."""
    if not folder.is_dir():
        raise GankitError(f"{folder}: folder missing; expected {FOLDER_LAYOUT}")
    files = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise GankitError(
            f"{folder}: no {'/'.join(IMAGE_SUFFIXES)} images; expected {FOLDER_LAYOUT}"
        )
    return files


def _domain_files(root: Path, domain: str) -> tuple[list[Path], list[Path], list[str]]:
    """(train files, test files, notes) of domain "A" or "B"; no test folder → 10% held out."""
    train = _image_files(root / f"train{domain}")
    if (root / f"test{domain}").exists():
        return train, _image_files(root / f"test{domain}"), []
    kept, held, k = _hold_out({domain: train})
    return kept[domain], held[domain], [f"no test{domain}: held out {k} train{domain} images"]


def _read_square(path: Path, colour: bool, side: int) -> tuple[np.ndarray, bool]:
    """Pixels (side, side, C) uint8 of ``path``: shorter side resized to ``side`` (bicubic), then
    centre-cropped; and whether the file was 16-bit."""
    try:
        with Image.open(path) as im:
            im.draft(None, (side, side))  # JPEG: decode at a reduced scale >= side (much faster)
            im.load()
            wide = im.mode in _WIDE_MODES
            im8 = _to_8bit(im).convert("RGB" if colour else "L")
    except Exception as err:  # Pillow plugins raise many types on malformed files
        raise _unreadable(path, err) from None
    w, h = im8.size
    scale = side / min(w, h)
    w, h = max(side, round(w * scale)), max(side, round(h * scale))
    left, top = (w - side) // 2, (h - side) // 2
    im8 = im8.resize((w, h), Image.Resampling.BICUBIC).crop((left, top, left + side, top + side))
    pixels = np.asarray(im8)
    return (pixels[:, :, None] if pixels.ndim == 2 else pixels), wide


def _stack(files: list[Path], colour: bool, side: int, name: str) -> tuple[ImageDataset, int]:
    """Decode ``files`` into an unlabelled ImageDataset (N, C, side, side); and the 16-bit count."""
    read = [_read_square(p, colour, side) for p in files]
    empty = np.zeros((0, side, side, 3 if colour else 1), np.uint8)
    pixels = np.stack([r[0] for r in read]) if read else empty
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    labels = torch.zeros(len(images), dtype=torch.int64)
    return ImageDataset(images, labels, [], name), sum(r[1] for r in read)


def _load_domain(
    root: Path, domain: str, size: int
) -> tuple[ImageDataset, ImageDataset, list[str]]:
    """(train at size * LOAD_SCALE, test at size, notes) of one domain of a folder."""
    train_files, test_files, notes = _domain_files(root, domain)
    grey = [_probe(p)[0] in _GREY_MODES for p in train_files + test_files]
    colour = not all(grey)  # decided over both splits so that they agree
    if colour and any(grey):
        notes.append(f"domain {domain}: mixed greyscale and colour images, all converted to RGB")
    train, wide_train = _stack(train_files, colour, round(size * LOAD_SCALE), f"{root}/{domain}")
    test, wide_test = _stack(test_files, colour, size, f"{root}/{domain}")
    if wide_train + wide_test:
        notes.append(f"domain {domain}: {wide_train + wide_test} 16-bit images scaled to 8 bit")
    return train, test, notes


def load_unpaired_folder(path: str | Path, size: int = DEFAULT_SIZE) -> UnpairedData:
    """Load ``DIR/{trainA,trainB}`` (and ``testA``, ``testB`` if present) into memory.

    Each image's shorter side is resized to the target (Pillow bicubic) and the centre square
    kept, so aspect ratios are never distorted. Train images are kept at ``round(size * 1.125)``
    and augmented at batch time with a random ``size`` crop and a horizontal flip (CycleGAN's
    load 286 → crop 256); test images are kept at ``size``, unaugmented.

    A domain is greyscale (1 channel) when all its images are ("1", "L", "LA", "I", "I;16", "F"
    modes), else RGB (3 channels): greyscale images in a colour domain are replicated to RGB,
    RGBA/LA lose their alpha channel (not composited), palette and CMYK images become RGB, and
    16-bit images are scaled to 8 bit (value / 257). The ``note`` lists what was converted.

    Without ``testA`` (``testB``), a deterministic 10% of trainA (trainB) images, chosen by a hash
    of the file name, is held out as the test split (none when the folder has a single image).

    Args:
        path: the dataset folder DIR.
        size: side of the square images a batch holds.

    Returns:
        An :class:`UnpairedData` with unlabelled domains and no hidden pairing.

    Raises:
        GankitError: trainA/trainB missing, a folder without images, an unreadable image (the
            message names the folder or file and the expected layout).
    """
    if size < 1:
        raise GankitError(f"image size must be positive, got {size}; use e.g. 32")
    root = Path(path).expanduser()
    train_a, test_a, notes_a = _load_domain(root, "A", size)
    train_b, test_b, notes_b = _load_domain(root, "B", size)
    return UnpairedData(
        str(root),
        train_a,
        train_b,
        test_a,
        test_b,
        size,
        flip=True,
        note="; ".join(notes_a + notes_b),
    )


# --------------------------------------------------------------------------- built-in pairs


def _pad32(images: Tensor) -> Tensor:
    """uint8 (N, 1, 28, 28) → (N, 1, 32, 32) with a 2-pixel black border (as LeNet's input)."""
    return F.pad(images, (2, 2, 2, 2))


def _pick(mask: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``k`` indices where ``mask`` holds, in a random order (all of them if fewer)."""
    where = mask.nonzero().squeeze(1)
    return where[torch.randperm(len(where), generator=generator)[:k]]


def _photo() -> Tensor:
    """A natural photo (3, H, W) float in [0, 1] for backgrounds: matplotlib's sample Grace
    Hopper portrait (matplotlib is a core dependency), halved in size; smooth colour noise if a
    trimmed matplotlib install lacks it."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        if path.is_file():
            with Image.open(path) as im:
                half = im.convert("RGB").reduce(2)
            return torch.from_numpy(np.asarray(half).copy()).permute(2, 0, 1).float() / 255
    noise = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(_SEED))
    return F.interpolate(noise, size=(300, 256), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _background_crops(n: int, side: int, generator: torch.Generator) -> Tensor:
    """``n`` random square crops (n, 3, side, side) in [0, 1] of :func:`_photo`, each of a random
    size (24-64 px of the half-size photo), position and channel order (6 colourings)."""
    photo = _photo()
    _, h, w = photo.shape
    crop = 24 + 40 * torch.rand(n, generator=generator)  # crop side in photo pixels
    sx, sy = crop / w, crop / h  # half-extents in grid_sample's [-1, 1] coordinates
    cx = (1 - sx) * (2 * torch.rand(n, generator=generator) - 1)
    cy = (1 - sy) * (2 * torch.rand(n, generator=generator) - 1)
    u = (torch.arange(side) * 2 + 1) / side - 1  # pixel centres in [-1, 1]
    gx = cx[:, None, None] + sx[:, None, None] * u[None, None, :]  # (n, 1, side)
    gy = cy[:, None, None] + sy[:, None, None] * u[None, :, None]  # (n, side, 1)
    grid = torch.stack(torch.broadcast_tensors(gx, gy), -1)  # (n, side, side, 2)
    # One grid_sample call over a tall grid: all crops at once, without n copies of the photo.
    out = F.grid_sample(photo[None], grid.reshape(1, n * side, side, 2), align_corners=False)
    crops = out[0].reshape(3, n, side, side).transpose(0, 1)
    orders = torch.tensor([[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]])
    order = orders[torch.randint(6, (n,), generator=generator)]  # (n, 3)
    return crops[torch.arange(n)[:, None], order].clamp(0, 1)


def colour_digits(digits: Tensor, generator: torch.Generator) -> Tensor:
    """MNIST-M style colour digits: |background − digit| per channel (arXiv:1505.07818).

    Args:
        digits: uint8 (N, 1, H, W), white strokes on black.
        generator: draws each digit's background crop (so the map is fixed given the generator).

    Returns:
        uint8 (N, 3, H, W): strokes invert the colours of a random crop of a natural photo.
    """
    n, _, h, w = digits.shape
    background = _background_crops(n, h, generator)
    if w != h:
        background = F.interpolate(background, size=(h, w), mode="bilinear")
    blended = (background - digits.float() / 255).abs_()  # in [0, 1]
    return blended.mul_(255).add_(0.5).to(torch.uint8)  # rounds: the cast truncates


def _filter3(x: Tensor, kernel: Tensor) -> Tensor:
    """3x3 correlation of (N, 1, H, W) with zero padding, as shifted sums: torch's conv2d takes
    ~0.1 s per 1000 single-channel images on CPU, this ~20x less."""
    _, _, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    out = torch.zeros_like(x)
    for (i, j), k in np.ndenumerate(kernel.numpy()):
        if k:
            out += float(k) * padded[:, :, i : i + h, j : j + w]
    return out


def edges(images: Tensor, threshold: float = 0.25) -> Tensor:
    """Edge maps in the style of edges2shoes: black lines on white.

    A 3x3 binomial blur, then the Sobel gradient magnitude |∇I|; a pixel is an edge where
    |∇I| > threshold · max |∇I| of its image.

    Args:
        images: uint8 (N, 1, H, W).
        threshold: fraction of each image's largest gradient.

    Returns:
        uint8 (N, 1, H, W): 0 on edges, 255 elsewhere.
    """
    binomial = torch.tensor([1.0, 2.0, 1.0])
    x = _filter3(images.float() / 255, binomial[:, None] * binomial[None, :] / 16)
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    magnitude = torch.hypot(_filter3(x, sobel), _filter3(x, sobel.T))
    peak = magnitude.amax(dim=(2, 3), keepdim=True).clamp_min(1e-8)
    return torch.where(magnitude > threshold * peak, 0, 255).to(torch.uint8)


def _dataset(images: Tensor, labels: Tensor | None, classes: list[str], name: str) -> ImageDataset:
    zeros = torch.zeros(len(images), dtype=torch.int64)
    return ImageDataset(images.contiguous(), zeros if labels is None else labels, classes, name)


def build_digits2colour() -> UnpairedData:
    """A: MNIST digits (1, 32, 32); B: MNIST-M style colour digits (3, 32, 32).

    Digits are padded 28 → 32; B strokes invert a crop of a photo (:func:`colour_digits`).
    Train: 5000 A and 5000 B images, disjoint: the first and the next 5000 of a fixed permutation
    of MNIST train. Test: 2000 MNIST test digits as A and their colour versions as B, aligned
    (hidden pairing). Labels: the digit class in both domains (for evaluation only). The other
    50,000 MNIST train digits, grey and coloured with other photo crops, are extra training
    images for the evaluation classifiers only (``classifier_extra``).
    """
    train, test = load_image_dataset("mnist", "train"), load_image_dataset("mnist", "test")
    g = torch.Generator().manual_seed(_SEED)
    perm = torch.randperm(len(train), generator=g)
    ia, ib = perm[:TRAIN_PER_DOMAIN], perm[TRAIN_PER_DOMAIN : 2 * TRAIN_PER_DOMAIN]
    it = torch.randperm(len(test), generator=g)[:TEST_PER_DOMAIN]
    test_a = _pad32(test.images[it])
    test_b = colour_digits(test_a, g)
    name, classes = "digits2colour", list(train.classes)

    def classifier_extra() -> tuple[ImageDataset, ImageDataset]:
        rest = perm[2 * TRAIN_PER_DOMAIN :]
        grey, labels = _pad32(train.images[rest]), train.labels[rest]
        # its own generator: the training and test images above stay as they were
        gen = torch.Generator().manual_seed(_SEED + 1)
        # 5000 at a time bounds the float crops colour_digits holds (~60 MB)
        colour = torch.cat([colour_digits(part, gen) for part in grey.split(5000)])
        return (
            _dataset(grey, labels, classes, f"{name}/A extra"),
            _dataset(colour, labels, classes, f"{name}/B extra"),
        )

    return UnpairedData(
        name,
        _dataset(_pad32(train.images[ia]), train.labels[ia], classes, f"{name}/A"),
        _dataset(
            colour_digits(_pad32(train.images[ib]), g), train.labels[ib], classes, f"{name}/B"
        ),
        _dataset(test_a, test.labels[it], classes, f"{name}/A"),
        _dataset(test_b, test.labels[it], classes, f"{name}/B"),
        32,
        hidden_b_of_test_a=test_b,
        hidden_a_of_test_b=test_a,
        source_a=ia,
        source_b=ib,
        classifier_extra=classifier_extra,
    )


def build_sneakers2boots() -> UnpairedData:
    """A: Fashion-MNIST sneakers (class 7); B: ankle boots (class 9); 1x32x32 (28 px padded).

    Train: 5000 of the 6000 of each class (fixed random choice); test: all 1000 of each class.
    Unlabelled (one class per domain) and no hidden pairing: the classic unpaired setting.
    """
    train = load_image_dataset("fashion-mnist", "train")
    test = load_image_dataset("fashion-mnist", "test")
    g = torch.Generator().manual_seed(_SEED)
    ia, ib = (_pick(train.labels == c, TRAIN_PER_DOMAIN, g) for c in (7, 9))
    ta, tb = (_pick(test.labels == c, TEST_PER_DOMAIN, g) for c in (7, 9))
    name = "sneakers2boots"
    return UnpairedData(
        name,
        _dataset(_pad32(train.images[ia]), None, [], f"{name}/A"),
        _dataset(_pad32(train.images[ib]), None, [], f"{name}/B"),
        _dataset(_pad32(test.images[ta]), None, [], f"{name}/A"),
        _dataset(_pad32(test.images[tb]), None, [], f"{name}/B"),
        32,
        source_a=ia,
        source_b=ib,
    )


def build_edges2shoes_mini() -> UnpairedData:
    """A: edge maps (:func:`edges`) of Fashion-MNIST footwear; B: footwear images; 1x32x32.

    Footwear = sandals, sneakers, ankle boots (18000 train, 3000 test images). Train: 5000 A and
    5000 B, disjoint (consecutive runs of a fixed permutation). Test: 2000 test images as B and
    their edge maps as A, aligned (hidden pairing). Labels: 0 sandal, 1 sneaker, 2 ankle boot.
    """
    train = load_image_dataset("fashion-mnist", "train")
    test = load_image_dataset("fashion-mnist", "test")
    codes = torch.full((10,), -1, dtype=torch.int64)
    codes[list(_FOOTWEAR)] = torch.arange(len(_FOOTWEAR))
    g = torch.Generator().manual_seed(_SEED)
    perm = _pick(codes[train.labels] >= 0, 2 * TRAIN_PER_DOMAIN, g)
    ia, ib = perm[:TRAIN_PER_DOMAIN], perm[TRAIN_PER_DOMAIN:]
    it = _pick(codes[test.labels] >= 0, TEST_PER_DOMAIN, g)
    test_b = _pad32(test.images[it])
    test_a = edges(test_b)
    name, classes = "edges2shoes-mini", list(_FOOTWEAR.values())
    return UnpairedData(
        name,
        _dataset(edges(_pad32(train.images[ia])), codes[train.labels[ia]], classes, f"{name}/A"),
        _dataset(_pad32(train.images[ib]), codes[train.labels[ib]], classes, f"{name}/B"),
        _dataset(test_a, codes[test.labels[it]], classes, f"{name}/A"),
        _dataset(test_b, codes[test.labels[it]], classes, f"{name}/B"),
        32,
        hidden_b_of_test_a=test_b,
        hidden_a_of_test_b=test_a,
        source_a=ia,
        source_b=ib,
    )


BUILDERS: dict[str, Callable[[], UnpairedData]] = {
    "digits2colour": build_digits2colour,
    "sneakers2boots": build_sneakers2boots,
    "edges2shoes-mini": build_edges2shoes_mini,
}


def _resized(images: Tensor, size: int) -> Tensor:
    """uint8 (N, C, H, W) → (N, C, size, size), bilinear with antialiasing."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


def build(name: str, size: int = 0) -> UnpairedData:
    """The built-in pair ``name`` (a key of :data:`BUILDERS`), resized if ``size`` is not 0/32.

    Built in memory at each call, in 0.25-0.7 s on 2 cores (half of it reading and checking
    MNIST or Fashion-MNIST), so nothing is cached on disk: an .npz would save well under a second
    and could go stale. Train batches are not augmented (flips would make digits unreadable, and
    the hidden pairs assume train and test come from one distribution).
    """
    data = BUILDERS[name]()
    if size and size != data.size:
        for split in (data.train_a, data.train_b, data.test_a, data.test_b):
            split.images = _resized(split.images, size)
        if data.hidden_b_of_test_a is not None:  # built-ins' hidden pairs are the aligned tests
            data.hidden_b_of_test_a, data.hidden_a_of_test_b = (
                data.test_b.images,
                data.test_a.images,
            )
        data.size = size
    return data


def export_pair(name: str, out: str | Path) -> dict[str, int]:
    """Write the built-in pair ``name`` as a folder dataset ``out/{trainA,trainB,testA,testB}``
    of PNGs (``00000.png``, ...), the layout ``--data DIR`` reads; returns the count per folder.

    Hidden pairs and labels are not written: a folder is unpaired and unlabelled by definition.
    """
    if name not in BUILDERS:
        raise GankitError(f"no built-in pair {name!r}: choose one of {', '.join(sorted(BUILDERS))}")
    data, root = build(name), Path(out).expanduser()
    if root.exists() and any(root.iterdir()):
        raise GankitError(f"{root} is not empty: give a new folder to export {name} into")
    counts = {}
    for folder, split in (
        ("trainA", data.train_a),
        ("trainB", data.train_b),
        ("testA", data.test_a),
        ("testB", data.test_b),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        pixels = split.images.permute(0, 2, 3, 1).numpy()  # (N, S, S, C)
        for i, image in enumerate(pixels):
            Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
                root / folder / f"{i:05d}.png"
            )
        counts[folder] = len(pixels)
    return counts


# --------------------------------------------------------------------------- sources


def match_channels(*images: Tensor) -> list[Tensor]:
    """Greyscale (N, 1, H, W) tensors repeated to 3 channels when any tensor has 3, so that A and
    B images (e.g. a digit beside its colour translation) fit in one grid."""
    c = max(x.shape[1] for x in images)
    return [x.expand(-1, c, -1, -1) if x.shape[1] == 1 else x for x in images]


def to_channels(x: Tensor, c: int) -> Tensor:
    """Images (N, C, H, W) with ``c`` channels: grey repeated to RGB, RGB to luminance (ITU-R
    601, Pillow's "L" weights); unchanged when C == c."""
    if x.shape[1] == c:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, c, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device)
    grey = (x.float() * weights[:, None, None]).sum(1, keepdim=True)
    return grey.round().clamp(0, 255).to(torch.uint8) if x.dtype == torch.uint8 else grey


def _random_crop_flip(images: Tensor, size: int, flip: bool, generator: torch.Generator) -> Tensor:
    """Per-image random ``size`` crops (and flips) of a uint8 batch (B, C, S, S), all at once.

    Returns:
        float (B, C, size, size) in [-1, 1].
    """
    b, _, h, w = images.shape
    if h > size or w > size:
        top = torch.randint(h - size + 1, (b,), generator=generator)
        left = torch.randint(w - size + 1, (b,), generator=generator)
        rows = (top[:, None] + torch.arange(size))[:, :, None]  # (B, size, 1)
        cols = (left[:, None] + torch.arange(size))[:, None, :]  # (B, 1, size)
        # Advanced indices split by a slice put their broadcast dims first: (B, size, size, C).
        images = images[torch.arange(b)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    x = to_float(images.contiguous())
    if flip:
        flipped = torch.rand(b, generator=generator) < 0.5
        x = torch.where(flipped[:, None, None, None], x.flip(3), x)
    return x


def _draw(n: int, size: int, seed: int, what: str) -> Tensor:
    """``n`` distinct indices into ``size`` items drawn with their own ``seed`` (all if fewer)."""
    if size == 0:
        raise GankitError(f"{what} has no images; add some (or more train images to hold out)")
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n]


class UnpairedSource(DataSource):
    """Two image domains; ``batch(n)`` → (xa, xb), each in its own random epoch order.

    xa: (n, C_a, S, S), xb: (n, C_b, S, S), float in [-1, 1]; ``spec.shape`` is domain A's
    (C_a, S, S) and ``spec.shape_b`` domain B's. Folder data are augmented (random crop, flip).

    Attributes:
        train_a, train_b, test_a, test_b: the :class:`ImageDataset` splits (uint8; labels are
            content classes such as the digit, or zeros when ``has_labels`` is False).
        hidden_b_of_test_a: uint8 (len(test_a), C_b, S, S), the true B image of each test A image,
            or None; ``hidden_a_of_test_b`` likewise (see :class:`UnpairedData`).
        note: what loading decided or converted, or "".
    """

    preview_n = 8

    def __init__(self, data: UnpairedData, seed: int) -> None:
        super().__init__(seed)
        self.data = data
        self.train_a, self.train_b = data.train_a, data.train_b
        self.test_a, self.test_b = data.test_a, data.test_b
        self.hidden_b_of_test_a = data.hidden_b_of_test_a
        self.hidden_a_of_test_b = data.hidden_a_of_test_b
        self.note = data.note
        s = data.size
        classes = list(data.train_a.classes)
        self.spec = DataSpec(
            data.name,
            "unpaired",
            (data.train_a.images.shape[1], s, s),
            len(classes),
            classes,
            shape_b=(data.train_b.images.shape[1], s, s),
        )
        self.orders = [self._permutation(0), self._permutation(1)]
        self.positions = [0, 0]

    @property
    def has_labels(self) -> bool:
        """Whether labels are content classes shared by both domains (evaluation only)."""
        return self.spec.num_classes > 0

    @property
    def has_pairs(self) -> bool:
        """Whether the test splits carry the hidden ground-truth translation."""
        return self.hidden_b_of_test_a is not None

    def _train(self, domain: int) -> ImageDataset:
        return self.train_b if domain else self.train_a

    def _permutation(self, domain: int) -> Tensor:
        return torch.randperm(len(self._train(domain)), generator=self.generator)

    def _next(self, domain: int, n: int) -> Tensor:
        """The next ``n`` indices of ``domain``'s epoch order, reshuffling at each epoch end."""
        parts = []
        while n > 0:
            if self.positions[domain] == len(self.orders[domain]):
                self.orders[domain], self.positions[domain] = self._permutation(domain), 0
            pos = self.positions[domain]
            take = self.orders[domain][pos : pos + n]
            self.positions[domain] += len(take)
            n -= len(take)
            parts.append(take)
        return torch.cat(parts)

    def batch(self, n: int) -> tuple[Tensor, Tensor]:
        ia, ib = self._next(0, n), self._next(1, n)
        s, flip, g = self.data.size, self.data.flip, self.generator
        xa = _random_crop_flip(self.train_a.images[ia], s, flip, g)
        return xa, _random_crop_flip(self.train_b.images[ib], s, flip, g)

    def example_indices(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """Indices into ``test_a`` and ``test_b`` (each up to ``n``, drawn independently) behind
        :meth:`examples`; index ``hidden_b_of_test_a`` with the first to get the true B."""
        a = _draw(n, len(self.test_a), seed, f"{self.spec.name} test split A")
        return a, _draw(n, len(self.test_b), seed + 1, f"{self.spec.name} test split B")

    def examples(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """``n`` test images of each domain, float (n, C, S, S) in [-1, 1], training untouched."""
        ia, ib = self.example_indices(n, seed)
        return to_float(self.test_a.images[ia]), to_float(self.test_b.images[ib])

    def reference(self, n: int, seed: int, domain: str = "b") -> Tensor:
        """``n`` real test images of ``domain`` ("a" or "b"), float in [-1, 1]."""
        test = {"a": self.test_a, "b": self.test_b}[domain]
        return to_float(test.images[_draw(n, len(test), seed, f"{self.spec.name} test split")])

    def render(
        self, images: Tensor | Sequence[Tensor], path: Path, title: str = "", nrow: int = 10
    ) -> None:
        """A PNG grid of ``images`` (or of several tensors, concatenated after
        :func:`match_channels`), ``nrow`` per row; e.g. ``[xa, fake_b, rec_a]`` with
        ``nrow=len(xa)`` shows one row each."""
        from gankit.data.grid import save_grid

        if not isinstance(images, Tensor):
            images = torch.cat(match_channels(*(x.detach().cpu() for x in images)))
        save_grid(images, path, nrow=nrow)

    def evaluate(self, fake: Tensor, seed: int, labels: Tensor | None = None) -> dict[str, float]:
        """Generic hook: none here; translation runs are scored by :meth:`evaluate_translation`
        (the trainer calls it instead, since a score needs the inputs behind ``fake``)."""
        return {}

    def classifier_names(self) -> dict[str, str]:
        """Cache names of this pair's evaluation classifiers: ``NAME-A``/``NAME-B`` (content
        classes of each domain, labelled pairs only) and ``NAME-domain`` (0 = A, 1 = B on
        channel-matched images); see :func:`train_unpaired_classifiers`."""
        return {k: f"{self.spec.name}-{k}" for k in ("A", "B", "domain")}

    def _classifier(self, key: str) -> Any:
        """The cached classifier ``key`` ("A", "B", "domain") at this data's shape, or None."""
        from gankit.metrics.classifier import cached_classifier

        channels = {
            "A": self.spec.shape[0],
            "B": self.spec.shape_b[0],
            "domain": max(self.spec.shape[0], self.spec.shape_b[0]),
        }[key]
        side = self.spec.shape[-1]
        if not 16 <= side <= 256:
            return None
        loaded = self.__dict__.setdefault("_classifiers", {})  # read and checksummed once
        if loaded.get(key) is None:
            found = cached_classifier(self.classifier_names()[key], channels, side)
            loaded[key] = None if found is None else found[0]
        return loaded[key]

    @torch.no_grad()
    def evaluate_translation(self, model: Any, n: int, seed: int) -> dict[str, float]:
        """Translation metrics of ``model`` (``translate(x, "AtoB"|"BtoA")``, ``generators()``) on
        up to ``n`` test examples of each domain drawn by :meth:`example_indices` (``seed``).

        Images are in [-1, 1], so every L1 (mean absolute difference per pixel and channel) lies
        in [0, 2]; the rates lie in [0, 1].

        * ``eval/cycle_l1_a`` = mean |F(G(a)) − a|, ``eval/cycle_l1_b`` = mean |G(F(b)) − b|
          (models with both generators).
        * With hidden pairs: ``eval/pair_l1_ab`` = mean |G(a) − b*| against the true B image b*
          of each a, beside the do-nothing baseline ``eval/identity_l1_ab`` = mean |a − b*| (a
          channel-matched: grey repeated to RGB, RGB to luminance); ``_ba`` likewise.
        * With cached classifiers (``gankit train classifier --data NAME``):
          ``eval/label_preservation_ab``, the share of a whose class by A's classifier equals the
          class of G(a) by B's; ``eval/domain_success_ab``, the share of G(a) the A-vs-B domain
          classifier calls B; ``_ba`` likewise; ``eval/fid_ab`` and ``eval/kid_ab``, FID and KID
          of G(a) against half of test B on B's classifier features (the domain classifier's
          for unlabelled pairs), beside ``eval/fid_ab_floor``/``eval/kid_ab_floor``: the other
          half of test B scored the same way (see :mod:`gankit.metrics.images`).
        """
        ia, ib = self.example_indices(n, seed)
        xa, xb = to_float(self.test_a.images[ia]), to_float(self.test_b.images[ib])
        c_a, c_b = self.spec.shape[0], self.spec.shape_b[0]
        both = "g_ba" in model.generators()

        def run(x: Tensor, direction: str) -> Tensor:
            parts = [
                model.translate(x[i : i + 256], direction).cpu() for i in range(0, len(x), 256)
            ]
            return torch.cat(parts).clamp(-1, 1)

        def l1(x: Tensor, y: Tensor) -> float:
            return float((x - y).abs().mean())

        fake_b = run(xa, "AtoB")
        fake_a = run(xb, "BtoA") if both else None
        out: dict[str, float] = {}
        if fake_a is not None:
            out["eval/cycle_l1_a"] = l1(run(fake_b, "BtoA"), xa)
            out["eval/cycle_l1_b"] = l1(run(fake_a, "AtoB"), xb)
        if self.hidden_b_of_test_a is not None:
            true_b = to_float(self.hidden_b_of_test_a[ia])
            out["eval/pair_l1_ab"] = l1(fake_b, true_b)
            out["eval/identity_l1_ab"] = l1(to_channels(xa, c_b), true_b)
        if self.hidden_a_of_test_b is not None and fake_a is not None:
            true_a = to_float(self.hidden_a_of_test_b[ib])
            out["eval/pair_l1_ba"] = l1(fake_a, true_a)
            out["eval/identity_l1_ba"] = l1(to_channels(xb, c_a), true_a)
        out.update(self._classifier_scores(xa, xb, fake_a, fake_b, seed))
        return out

    def _classifier_scores(
        self, xa: Tensor, xb: Tensor, fake_a: Tensor | None, fake_b: Tensor, seed: int
    ) -> dict[str, float]:
        """Label preservation and domain success of each direction, where classifiers exist."""
        from gankit.data.images import to_uint8
        from gankit.metrics.classifier import predict

        out: dict[str, float] = {}
        clf_a, clf_b = (self._classifier(k) if self.has_labels else None for k in ("A", "B"))
        directions = [("ab", xa, fake_b, clf_a, clf_b, 1)]
        if fake_a is not None:
            directions.append(("ba", xb, fake_a, clf_b, clf_a, 0))
        domain = self._classifier("domain")
        c = max(self.spec.shape[0], self.spec.shape_b[0])
        for tag, source, fake, clf_src, clf_dst, target in directions:
            if clf_src is not None and clf_dst is not None:
                before = torch.as_tensor(predict(clf_src, to_uint8(source)))
                after = torch.as_tensor(predict(clf_dst, to_uint8(fake)))
                out[f"eval/label_preservation_{tag}"] = float((before == after).float().mean())
            if domain is not None:
                said = torch.as_tensor(predict(domain, to_uint8(to_channels(fake, c))))
                out[f"eval/domain_success_{tag}"] = float((said == target).float().mean())
            # FID in the target domain: the target's content classifier knows its classes; an
            # unlabelled pair falls back to the A-vs-B classifier's features
            network = clf_dst if clf_dst is not None else domain
            if network is not None:
                test = (self.test_a, self.test_b)[target].images
                fit = c if network is domain else fake.shape[1]
                out.update(self._target_fid(network, fake, test, fit, tag, seed))
        return out

    def _target_fid(
        self,
        network: Any,
        fake: Tensor,
        test: Tensor,
        channels: int,
        tag: str,
        seed: int,
    ) -> dict[str, float]:
        """FID and KID of translations against one half of the target test split, beside the
        floor of its other half (same count), on the penultimate features of ``network``."""
        from gankit.data.images import to_uint8
        from gankit.metrics.classifier import classifier_features
        from gankit.metrics.images import classifier_scores

        if min(len(fake), len(test) // 2) < 2:
            return {}  # a covariance needs two images on each side
        feats = classifier_features(network, to_uint8(to_channels(fake, channels)))
        cache = self.__dict__.setdefault("_test_features", {})  # the same at every evaluation
        key = (id(network), tag)
        if key not in cache:
            cache[key] = classifier_features(network, to_channels(test, channels))
        real = cache[key]
        scores = classifier_scores(feats, None, real, np.zeros(len(real)), [], seed)
        return {
            f"eval/fid_{tag}": scores["eval/cfid"],
            f"eval/fid_{tag}_floor": scores["eval/cfid_floor"],
            f"eval/kid_{tag}": scores["eval/ckid"],
            f"eval/kid_{tag}_floor": scores["eval/ckid_floor"],
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "orders": list(self.orders),
            "positions": list(self.positions),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.orders, self.positions = list(state["orders"]), list(state["positions"])


class UnpairedPointsSource(DataSource):
    """DiscoGAN's toy domains: A = 5, B = 10 Gaussians (std 0.05) on the unit circle.

    ``batch(n)`` → (a, b), each (n, 2), sampled independently. ``modes_a`` (5, 2), ``modes_b``
    (10, 2) and ``std`` feed the mode-coverage metrics (:mod:`gankit.metrics.toy`).
    """

    preview_n = 1000

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.dist_a, self.dist_b = mixture_on_circle(5), mixture_on_circle(10)
        self.modes_a, self.modes_b, self.std = self.dist_a.modes, self.dist_b.modes, self.dist_b.std
        self.spec = DataSpec("discogan-toy", "unpaired-points", (2,), shape_b=(2,))

    def _dist(self, domain: str) -> GaussianMixture:
        return {"a": self.dist_a, "b": self.dist_b}[domain]

    def batch(self, n: int) -> tuple[Tensor, Tensor]:
        return self.dist_a.sample(n, self.generator), self.dist_b.sample(n, self.generator)

    def examples(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """``n`` points of each domain drawn with their own ``seed``."""
        g = torch.Generator().manual_seed(seed)
        return self.dist_a.sample(n, g), self.dist_b.sample(n, g)

    def reference(self, n: int, seed: int, domain: str = "b") -> Tensor:
        return self._dist(domain).sample(n, torch.Generator().manual_seed(seed))

    def render(
        self, fake: Tensor, path: Path, title: str = "", nrow: int = 10, domain: str = "b"
    ) -> None:
        """Scatter plot of ``fake`` (e.g. translations A→B) over real points of ``domain``."""
        from gankit.visual import scatter_png

        real = self.reference(len(fake), 1, domain)
        scatter_png(fake, path, real=real, modes=self._dist(domain).modes, title=title)

    def evaluate(
        self, fake: Tensor, seed: int, labels: Tensor | None = None, domain: str = "b"
    ) -> dict[str, float]:
        """Toy metrics (mode coverage, quality, distances) of ``fake`` against ``domain``."""
        from gankit.metrics.toy import toy_metrics

        dist = self._dist(domain)
        return toy_metrics(fake, self.reference(len(fake), seed, domain), dist.modes, dist.std)


def open_unpaired(name: str, seed: int = 0, image_size: int = 0) -> DataSource:
    """``discogan-toy``, a built-in pair (:data:`BUILDERS`) or a trainA/trainB folder."""
    if name == "discogan-toy":
        return UnpairedPointsSource(seed)
    if name in BUILDERS:
        return UnpairedSource(build(name, image_size), seed)
    return UnpairedSource(load_unpaired_folder(name, image_size or DEFAULT_SIZE), seed)


# --------------------------------------------------------------------------- evaluation classifiers


def train_pair_classifiers(source: UnpairedSource, cfg: Any) -> dict[str, dict[str, Any]]:
    """Train and cache the evaluation classifiers of a two-domain source (used by
    :meth:`UnpairedSource.evaluate_translation`).

    * ``NAME-A``, ``NAME-B`` (labelled pairs only): the content classes of each domain, trained
      on the domain's train split, accuracy on its test split.
    * ``NAME-domain``: A (0) vs B (1) on channel-matched images (:func:`to_channels`), trained on
      both train splits, accuracy on both test splits.

    Train images larger than the test size (folders keep them at 1.125x) are resized to it.

    Args:
        source: the pair.
        cfg: a ``gankit.metrics.classifier.ClassifierConfig`` (epochs 0: 2 for the domain
            classifier, enough passes to see 120,000 images for the content classifiers).

    Returns:
        {"A"|"B"|"domain": {"classifier": path, "test_accuracy": float or None}}.
    """
    from dataclasses import asdict

    from gankit.metrics.classifier import (
        accuracy,
        cached_classifier,
        classifier_path,
        save_classifier,
        train_classifier,
    )

    side = source.spec.shape[-1]
    names = source.classifier_names()
    make_extra = source.data.classifier_extra
    # built only if a content classifier is actually trained (not when both come from the cache)
    extra = functools.cache(make_extra) if make_extra is not None else None
    # (key, train images, labels, test images, labels, classes, index into extra() or None)
    jobs: list[tuple[str, Tensor, Tensor, Tensor, Tensor, int, int | None]] = []
    if source.has_labels:
        for key, index, train, test in (
            ("A", 0, source.train_a, source.test_a),
            ("B", 1, source.train_b, source.test_b),
        ):
            x = _resized(train.images, side)
            jobs.append(
                (key, x, train.labels, test.images, test.labels, source.spec.num_classes, index)
            )
    c = max(source.spec.shape[0], source.spec.shape_b[0])

    def both(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([to_channels(_resized(a, side), c), to_channels(_resized(b, side), c)])
        y = torch.cat(
            [torch.zeros(len(a), dtype=torch.int64), torch.ones(len(b), dtype=torch.int64)]
        )
        return x, y

    train_x, train_y = both(source.train_a.images, source.train_b.images)
    test_x, test_y = both(source.test_a.images, source.test_b.images)
    jobs.append(("domain", train_x, train_y, test_x, test_y, 2, None))
    results: dict[str, dict[str, Any]] = {}
    for key, x, y, xt, yt, k, index in jobs:
        channels = int(x.shape[1])
        path = classifier_path(names[key], channels, side)
        if cfg.reuse and (cached := cached_classifier(names[key], channels, side)) is not None:
            results[key] = {"classifier": str(path), "test_accuracy": cached[1]["test_accuracy"]}
            continue
        if extra is not None and index is not None:
            more = extra()[index]
            x, y = torch.cat([x, _resized(more.images, side)]), torch.cat([y, more.labels])
        # content classes need as many images seen as MNIST's 2 epochs (120k: 24 passes over a
        # 5,000-image side; 2 passes gave 97.1% on digits2colour A and 90.4% on B; 3 over
        # digits2colour's 55,000 with its extra images), A vs B is easy (2 passes: 100%)
        epochs = cfg.epochs or (2 if key == "domain" else max(2, -(-120_000 // len(x))))
        model = train_classifier(
            x, y, k, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed
        )
        acc = accuracy(model, xt, yt) if len(xt) else None
        meta = {
            "dataset": names[key],
            "test_accuracy": acc,
            "test_images": len(xt),
            "train_images": len(x),
            **asdict(cfg),
            "epochs": epochs,
        }
        save_classifier(model, path, meta)
        results[key] = {"classifier": str(path), "test_accuracy": acc}
    return results


def train_unpaired_classifiers(name: str, cfg: Any) -> dict[str, dict[str, Any]]:
    """``gankit train classifier --data PAIR``: :func:`train_pair_classifiers` of a built-in pair
    or a trainA/trainB folder, at ``cfg.image_size`` (0: the data's default size)."""
    source = open_unpaired(name, 0, cfg.image_size)
    if not isinstance(source, UnpairedSource):
        raise GankitError(f"{name} holds 2-D points: its metrics need no classifier")
    return train_pair_classifiers(source, cfg)
