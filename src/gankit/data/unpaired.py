"""Unpaired two-domain data for CycleGAN and DiscoGAN, and DiscoGAN's 2-D toy.

:class:`UnpairedSource` holds domain A and domain B images in memory as uint8; ``batch(n)``
returns (xa, xb), each domain drawn in its own random epoch order, so no batch pairs an A image
with its B counterpart. The images come from

* a folder ``DIR/trainA``, ``DIR/trainB`` (optional ``DIR/testA``, ``DIR/testB``) of PNG/JPEG/BMP
  images of any size (:func:`load_unpaired_folder`), as in the CycleGAN repository;
* built-in pairs made deterministically, with no download, from MNIST and Fashion-MNIST
  (:mod:`gankit.data.pairs`): ``digits2colour``, ``sneakers2boots`` and ``edges2shoes-mini``.

Where domain B is a known function of domain A (digits2colour, edges2shoes-mini), training sees two
disjoint sets of source images, while the test split keeps the pairing: ``hidden_b_of_test_a[i]``
is the true translation of ``test_a.images[i]``, an exact target to measure a translator against.

:class:`UnpairedPointsSource` (``discogan-toy``) gives the 2-D domains of DiscoGAN's toy
experiment (arXiv:1703.05192): A = 5 Gaussians, B = 10 Gaussians on the unit circle.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from gankit.data.base import DataSource, DataSpec
from gankit.data.images import (
    GREY_MODES,
    IMAGE_SUFFIXES,
    WIDE_MODES,
    ImageDataset,
    hold_out,
    probe,
    read_8bit,
    read_all,
    to_float,
)
from gankit.data.toy import GaussianMixture, mixture_on_circle
from gankit.errors import GankitError

DEFAULT_SIZE = 32  # folder images are resized to this unless `image_size` is given
LOAD_SCALE = 1.125  # folders: train images kept at size * 1.125, randomly cropped to size
FOLDER_LAYOUT = "DIR/trainA/*.png|jpg, DIR/trainB/*.png|jpg (testA/, testB/ optional)"
SUBFOLDERS = ("trainA", "trainB", "testA", "testB")


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
            classifiers only (``gankit.metrics.translation``), or None.
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
    kept, held, k = hold_out({domain: train})
    return kept[domain], held[domain], [f"no test{domain}: held out {k} train{domain} images"]


def read_square(path: Path, colour: bool, side: int) -> tuple[np.ndarray, bool]:
    """Pixels (side, side, C) uint8 of ``path``: shorter side resized to ``side`` (bicubic), then
    centre-cropped; and whether the file was 16-bit."""
    im8, wide = read_8bit(path, colour, draft=side)
    w, h = im8.size
    scale = side / min(w, h)
    w, h = max(side, round(w * scale)), max(side, round(h * scale))
    left, top = (w - side) // 2, (h - side) // 2
    im8 = im8.resize((w, h), Image.Resampling.BICUBIC).crop((left, top, left + side, top + side))
    pixels = np.asarray(im8)
    return (pixels[:, :, None] if pixels.ndim == 2 else pixels), wide


def _stack(files: list[Path], colour: bool, side: int, name: str) -> ImageDataset:
    """Decode ``files`` into an unlabelled ImageDataset (N, C, side, side)."""
    read = read_all(files, lambda p: read_square(p, colour, side))
    empty = np.zeros((0, side, side, 3 if colour else 1), np.uint8)
    pixels = np.stack([r[0] for r in read]) if read else empty
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()
    labels = torch.zeros(len(images), dtype=torch.int64)
    return ImageDataset(images, labels, [], name)


@dataclass
class DomainPlan:
    """One domain of a folder as read from the file headers alone (no pixel decoded).

    Attributes:
        train, test: the image files of each split (test: testA/ or the held-out 10%).
        colour: RGB (3 channels) when any image is in colour, else greyscale.
        notes: what loading decided or converts.
    """

    train: list[Path]
    test: list[Path]
    colour: bool
    notes: list[str]

    def train_bytes(self, size: int) -> int:
        """Bytes the decoded train images take in memory (uint8 at ``size`` * LOAD_SCALE)."""
        return len(self.train) * (3 if self.colour else 1) * round(size * LOAD_SCALE) ** 2


def plan_domain(root: Path, domain: str) -> DomainPlan:
    """List and check the files of domain "A" or "B": every header is read (an unreadable file
    or a decompression bomb is one error naming it) and the channels decided over both splits."""
    train_files, test_files, notes = _domain_files(root, domain)
    modes = [mode for mode, _ in read_all(train_files + test_files, probe)]
    grey = [mode in GREY_MODES for mode in modes]
    colour = not all(grey)  # decided over both splits so that they agree
    if colour and any(grey):
        notes.append(f"domain {domain}: mixed greyscale and colour images, all converted to RGB")
    if wide := sum(mode in WIDE_MODES for mode in modes):
        notes.append(f"domain {domain}: {wide} 16-bit images scaled to 8 bit")
    return DomainPlan(train_files, test_files, colour, notes)


def plan_unpaired_folder(path: str | Path, size: int) -> tuple[DomainPlan, DomainPlan]:
    """The plans of domains A and B of a trainA/trainB folder (see :func:`load_unpaired_folder`)."""
    if size < 1:
        raise GankitError(f"image size must be positive, got {size}; use e.g. 32")
    root = Path(path).expanduser()
    return plan_domain(root, "A"), plan_domain(root, "B")


def load_unpaired_folder(
    path: str | Path,
    size: int = DEFAULT_SIZE,
    plans: tuple[DomainPlan, DomainPlan] | None = None,
    hold_train: bool = True,
) -> UnpairedData:
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
        plans: the folder's :func:`plan_unpaired_folder`, when already read.
        hold_train: False leaves the train splits empty (0 images, the right channels), for a
            source that streams them (:mod:`gankit.data.streaming`).

    Returns:
        An :class:`UnpairedData` with unlabelled domains and no hidden pairing.

    Raises:
        GankitError: trainA/trainB missing, a folder without images, an unreadable image (the
            message names the folder or file and the expected layout).
    """
    root = Path(path).expanduser()
    plan_a, plan_b = plans or plan_unpaired_folder(root, size)
    splits = []
    for domain, plan in (("A", plan_a), ("B", plan_b)):
        train = plan.train if hold_train else []
        splits.append(_stack(train, plan.colour, round(size * LOAD_SCALE), f"{root}/{domain}"))
        splits.append(_stack(plan.test, plan.colour, size, f"{root}/{domain}"))
    train_a, test_a, train_b, test_b = splits
    return UnpairedData(
        str(root),
        train_a,
        train_b,
        test_a,
        test_b,
        size,
        flip=True,
        note="; ".join(plan_a.notes + plan_b.notes),
    )


# --------------------------------------------------------------------------- sources


def resized(images: Tensor, size: int) -> Tensor:
    """uint8 (N, C, H, W) → (N, C, size, size), bilinear with antialiasing."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


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


def draw_indices(n: int, size: int, seed: int, what: str) -> Tensor:
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
        a = draw_indices(n, len(self.test_a), seed, f"{self.spec.name} test split A")
        return a, draw_indices(n, len(self.test_b), seed + 1, f"{self.spec.name} test split B")

    def examples(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """``n`` test images of each domain, float (n, C, S, S) in [-1, 1], training untouched."""
        ia, ib = self.example_indices(n, seed)
        return to_float(self.test_a.images[ia]), to_float(self.test_b.images[ib])

    def reference(self, n: int, seed: int, domain: str = "b") -> Tensor:
        """``n`` real test images of ``domain`` ("a" or "b"), float in [-1, 1]."""
        test = {"a": self.test_a, "b": self.test_b}[domain]
        return to_float(
            test.images[draw_indices(n, len(test), seed, f"{self.spec.name} test split")]
        )

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

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "orders": list(self.orders),
            "positions": list(self.positions),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "stream" in state:  # the batches differ between the two ways of reading a folder
            raise GankitError(
                "this run streamed its training images from disk: resume it with stream=true"
            )
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

    def dist(self, domain: str) -> GaussianMixture:
        """The mixture of ``domain`` ("a" or "b")."""
        return {"a": self.dist_a, "b": self.dist_b}[domain]

    def batch(self, n: int) -> tuple[Tensor, Tensor]:
        return self.dist_a.sample(n, self.generator), self.dist_b.sample(n, self.generator)

    def examples(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """``n`` points of each domain drawn with their own ``seed``."""
        g = torch.Generator().manual_seed(seed)
        return self.dist_a.sample(n, g), self.dist_b.sample(n, g)

    def reference(self, n: int, seed: int, domain: str = "b") -> Tensor:
        return self.dist(domain).sample(n, torch.Generator().manual_seed(seed))

    def render(
        self, fake: Tensor, path: Path, title: str = "", nrow: int = 10, domain: str = "b"
    ) -> None:
        """Scatter plot of ``fake`` (e.g. translations A→B) over real points of ``domain``."""
        from gankit.visual import scatter_png

        real = self.reference(len(fake), 1, domain)
        scatter_png(fake, path, real=real, modes=self.dist(domain).modes, title=title)
