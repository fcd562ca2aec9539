"""Built-in unpaired pairs made deterministically, with no download, from MNIST and Fashion-MNIST.

``digits2colour`` (grey digits ↔ MNIST-M style colour digits), ``sneakers2boots`` and
``edges2shoes-mini`` (edge maps ↔ shoes). Where domain B is a known function of domain A, training
sees two disjoint sets of source images while the test split keeps the pairing
(``hidden_b_of_test_a``), an exact target to measure a translator against.
"""

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from gankit.data.images import ImageDataset, load_image_dataset
from gankit.data.unpaired import UnpairedData, resized
from gankit.errors import GankitError

TRAIN_PER_DOMAIN = 5000  # built-ins: training images per domain (CPU-friendly)
TEST_PER_DOMAIN = 2000  # built-ins: test images per domain (sneakers2boots has 1000)
_SEED = 2017  # every built-in is made with this seed: the same data at every run
_FOOTWEAR = {5: "Sandal", 7: "Sneaker", 9: "Ankle boot"}  # Fashion-MNIST label → name


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
            split.images = resized(split.images, size)
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
