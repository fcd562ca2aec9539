"""A small CNN classifier used to *evaluate* generators (accuracy of conditional samples,
classifier-FID/KID on its penultimate features).

Architecture (``C`` = 1 or 3 input channels, ``S`` = 28..64 px square images)::

    conv3x3(C->32)-BN-ReLU  -> maxpool2                  (S/2)
    conv3x3(32->64)-BN-ReLU -> conv3x3(64->64)-BN-ReLU -> maxpool2   (S/4)
    conv3x3(64->128)-BN-ReLU -> adaptive-avgpool to 4x4 -> flatten (2048)
    FC(2048->256)-ReLU = features  ->  dropout  ->  FC(256->num_classes) = logits

Inputs to the network are floats in [-1, 1] of shape (N, C, S, S); the helpers below take
uint8 images (N, C, S, S) in [0, 255] and convert them as ``x = u8 / 127.5 - 1``.
Weights are stored as safetensors next to a JSON metadata file carrying the SHA-256 of the
weights, so a corrupted or swapped file is detected on load.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from gankit.cache import cache_dir
from gankit.checkpoint import write_atomic
from gankit.config import option
from gankit.errors import GankitError

FEATURE_DIM = 256
_SHIFT = 2  # augmentation: random translation of up to +-2 px
_META_VERSION = 1


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    # BatchNorm lets Adam use a large step, which is what makes 2-3 epochs enough on CPU.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Evaluation classifier: logits ``forward(x)`` and 256-d ``features(x)``.

    Args:
        num_classes: Number of classes (>= 2).
        channels: Input channels, 1 (greyscale) or 3 (RGB).
        size: Side of the square input images in pixels (16..256; tuned for 28..64).
    """

    def __init__(self, num_classes: int, channels: int = 1, size: int = 28) -> None:
        super().__init__()
        _check_arch(num_classes, channels, size)
        self.num_classes, self.channels, self.size = num_classes, channels, size
        self.body = nn.Sequential(
            _conv_block(channels, 32),
            nn.MaxPool2d(2),
            _conv_block(32, 64),
            _conv_block(64, 64),
            nn.MaxPool2d(2),
            _conv_block(64, 128),
            # A fixed 4x4 grid keeps coarse layout (unlike global pooling) for any input size.
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(128 * 16, FEATURE_DIM),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, (N, C, S, S) in [-1, 1] -> (N, 256), non-negative."""
        if x.ndim != 4 or x.shape[1] != self.channels or tuple(x.shape[2:]) != (self.size,) * 2:
            raise GankitError(
                f"classifier expects images of shape (N, {self.channels}, {self.size}, "
                f"{self.size}), got {tuple(x.shape)}; resize or convert the images first"
            )
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, (N, C, S, S) in [-1, 1] -> (N, num_classes)."""
        return self.head(self.dropout(self.features(x)))


def _check_arch(num_classes: int, channels: int, size: int) -> None:
    if num_classes < 2:
        raise GankitError(f"num_classes must be >= 2, got {num_classes}")
    if channels not in (1, 3):
        raise GankitError(f"channels must be 1 or 3, got {channels}")
    if not 16 <= size <= 256:
        raise GankitError(f"image size must be between 16 and 256 px, got {size}")


# --------------------------------------------------------------------------- data helpers


def _as_uint8_images(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) or (N, H, W) -> uint8 tensor (N, C, H, W), H == W."""
    if not torch.is_tensor(images):
        arr = np.asarray(images)
        # torch refuses to wrap read-only arrays (e.g. np.frombuffer), so copy those.
        images = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
    t = images
    if t.dtype != torch.uint8:
        raise GankitError(f"images must be uint8 in [0, 255], got dtype {t.dtype}")
    if t.ndim == 3:  # greyscale without a channel axis
        t = t.unsqueeze(1)
    if t.ndim != 4 or t.shape[2] != t.shape[3]:
        raise GankitError(f"images must have shape (N, C, S, S), got {tuple(t.shape)}")
    return t


def _as_labels(labels: np.ndarray | torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    y = torch.from_numpy(np.asarray(labels).astype(np.int64).reshape(-1))  # copy: writable
    if y.numel() != n:
        raise GankitError(f"got {n} images but {y.numel()} labels; pass one label per image")
    if n and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise GankitError(f"labels must lie in [0, {num_classes - 1}]; check num_classes")
    return y


def to_unit_range(u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]: ``x = u8 / 127.5 - 1``."""
    return u8.float().div_(127.5).sub_(1.0)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image independently by up to ``max_shift`` px in x and y.

    Pads every side by ``max_shift`` (edge replication, so a black MNIST border stays black)
    and crops an (H, W) window at a per-sample random offset, all with one gather.

    Args:
        x: (N, C, H, W) float.
        max_shift: Largest shift in pixels.
        generator: RNG for the offsets (on CPU).

    Returns:
        (N, C, H, W) shifted images.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N,1,H,1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N,1,1,W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


# --------------------------------------------------------------------------- training


def _lr_at(step: int, total: int, peak: float) -> float:
    # Short linear warm-up then cosine decay to 0: reaches >99% on MNIST in 2-3 epochs.
    warm = max(1, total // 20)
    if step < warm:
        return peak * (step + 1) / warm
    return 0.5 * peak * (1.0 + math.cos(math.pi * (step - warm) / max(1, total - warm)))


def _train_epoch(
    model: SmallCNN,
    opt: torch.optim.Optimizer,
    data: tuple[torch.Tensor, torch.Tensor],
    sched: tuple[int, int, float],
    cfg: tuple[int, bool, torch.Generator, torch.device],
) -> tuple[float, int]:
    """One pass over shuffled data; returns (mean loss, global step after the epoch)."""
    (x_u8, y), (step, total, peak), (batch_size, augment, gen, device) = data, sched, cfg
    model.train()
    order = torch.randperm(x_u8.shape[0], generator=gen)
    loss_sum, seen = 0.0, 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        xb = to_unit_range(x_u8[idx].to(device))
        if augment:
            xb = random_shift(xb, _SHIFT, gen)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, total, peak)
        loss = F.cross_entropy(model(xb), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum, seen, step = loss_sum + loss.item() * len(idx), seen + len(idx), step + 1
    return loss_sum / max(1, seen), step


def train_classifier(
    images_uint8: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    num_classes: int,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    device: str | torch.device = "cpu",
    augment: bool = True,
    progress: bool = True,
) -> SmallCNN:
    """Train a :class:`SmallCNN` with Adam (warm-up + cosine LR) and cross-entropy.

    Loss: ``L = -mean_i log softmax(f(x_i))[y_i]``, with ``x = u8 / 127.5 - 1`` and, if
    ``augment``, a random +-2 px translation per image.

    Args:
        images_uint8: (N, C, S, S) or (N, S, S) uint8 in [0, 255], kept in memory.
        labels: (N,) integer labels in [0, num_classes).
        num_classes: Number of classes.
        epochs: Passes over the data.
        batch_size: Images per step.
        lr: Peak learning rate.
        seed: Seeds initialisation, shuffling and augmentation.
        device: Torch device for training.
        augment: Apply random shifts.
        progress: Print one line per epoch (loss, time) to stderr.

    Returns:
        The trained model, in eval mode, on ``device``.
    """
    x_u8 = _as_uint8_images(images_uint8)
    y = _as_labels(labels, x_u8.shape[0], num_classes)
    if x_u8.shape[0] == 0 or epochs < 1 or batch_size < 1:
        raise GankitError("need at least one image, epochs >= 1 and batch_size >= 1")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = torch.device(device)
    model = SmallCNN(num_classes, int(x_u8.shape[1]), int(x_u8.shape[2])).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    total = epochs * math.ceil(x_u8.shape[0] / batch_size)
    step = 0
    for epoch in range(epochs):
        t0 = time.perf_counter()
        loss, step = _train_epoch(
            model, opt, (x_u8, y), (step, total, lr), (batch_size, augment, gen, device)
        )
        if progress:
            dt = time.perf_counter() - t0
            print(
                f"classifier epoch {epoch + 1}/{epochs}: loss {loss:.4f} ({dt:.1f}s)",
                file=sys.stderr,
            )
    return model.eval()


# --------------------------------------------------------------------------- inference


@torch.no_grad()
def _batched(model: SmallCNN, images_uint8: Any, batch_size: int, feats: bool) -> torch.Tensor:
    x_u8 = _as_uint8_images(images_uint8)
    was_training = model.training
    model.eval()  # BN running stats and no dropout, whatever state the caller left it in
    device = next(model.parameters()).device
    outs = []
    for start in range(0, x_u8.shape[0], max(1, batch_size)):
        xb = to_unit_range(x_u8[start : start + batch_size].to(device))
        outs.append((model.features(xb) if feats else model(xb)).cpu())
    model.train(was_training)
    width = FEATURE_DIM if feats else model.num_classes
    return torch.cat(outs) if outs else torch.zeros(0, width)


def logits(model: SmallCNN, images_uint8: Any, batch_size: int = 256) -> np.ndarray:
    """uint8 (N, C, S, S) -> float32 logits (N, num_classes)."""
    return _batched(model, images_uint8, batch_size, feats=False).numpy()


def predict(model: SmallCNN, images_uint8: Any, batch_size: int = 256) -> np.ndarray:
    """uint8 (N, C, S, S) -> int64 predicted classes (N,), ``argmax_k logits[:, k]``."""
    return _batched(model, images_uint8, batch_size, feats=False).argmax(1).numpy()


def classifier_features(model: SmallCNN, images_uint8: Any, batch_size: int = 256) -> np.ndarray:
    """uint8 (N, C, S, S) -> float32 penultimate features (N, 256) for classifier-FID/KID."""
    return _batched(model, images_uint8, batch_size, feats=True).numpy()


def accuracy(model: SmallCNN, images_uint8: Any, labels: Any, batch_size: int = 256) -> float:
    """Fraction in [0, 1] of images whose predicted class equals the label."""
    pred = predict(model, images_uint8, batch_size)
    y = _as_labels(labels, pred.shape[0], model.num_classes).numpy()
    if y.size == 0:
        raise GankitError("accuracy needs at least one labelled image")
    return float((pred == y).mean())


# --------------------------------------------------------------------------- persistence


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _atomic_write(path: Path, data: bytes) -> None:
    """Readers never see half a file: temp file, fsync, rename (as checkpoints are written)."""
    write_atomic(path, lambda f: f.write(data))


def save_classifier(model: SmallCNN, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Save weights to ``path`` (safetensors) and metadata to ``path + '.json'``.

    The JSON holds ``meta`` (e.g. ``dataset``, ``test_accuracy``) plus ``num_classes``,
    ``channels``, ``size`` and ``sha256`` of the weights file. Both writes are atomic.

    Returns:
        The weights path.
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    blob = st_save(state)
    info = dict(meta or {})
    info.update(
        format_version=_META_VERSION,
        num_classes=model.num_classes,
        channels=model.channels,
        size=model.size,
        sha256=hashlib.sha256(blob).hexdigest(),
    )
    _atomic_write(path, blob)
    # Metadata last: a crash in between leaves a checksum mismatch, which load reports.
    _atomic_write(_meta_path(path), (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())
    return path


def _read_meta(path: Path) -> dict:
    meta_file = _meta_path(path)
    try:
        meta = json.loads(meta_file.read_text())
        _ = (int(meta["num_classes"]), int(meta["channels"]), int(meta["size"]), meta["sha256"])
    except FileNotFoundError as e:
        raise GankitError(f"classifier metadata {meta_file} is missing; retrain or copy it") from e
    except (ValueError, KeyError, TypeError) as e:
        raise GankitError(
            f"classifier metadata {meta_file} is corrupt; retrain the classifier"
        ) from e
    return meta


def load_classifier(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[SmallCNN, dict]:
    """Load a classifier saved by :func:`save_classifier`, verifying its SHA-256.

    Returns:
        ``(model in eval mode on device, metadata dict)``.

    Raises:
        GankitError: Missing files, checksum mismatch, or unreadable weights.
    """
    path = Path(path)
    meta = _read_meta(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError as e:
        raise GankitError(f"classifier weights {path} not found; train one first") from e
    if hashlib.sha256(blob).hexdigest() != meta["sha256"]:
        raise GankitError(f"classifier weights {path} fail their checksum; retrain or re-copy")
    # the random init is overwritten below; drawing it from the global RNG would shift a training
    # run's noise by when its evaluation first loads the classifier (a resumed run loads it later)
    with torch.random.fork_rng(devices=[]):
        model = SmallCNN(int(meta["num_classes"]), int(meta["channels"]), int(meta["size"]))
    try:
        model.load_state_dict(st_load(blob))
    except (SafetensorError, RuntimeError) as e:
        raise GankitError(f"classifier weights {path} do not match their metadata: {e}") from e
    return model.to(device).eval(), meta


# --------------------------------------------------------------------------- per-dataset cache


def classifier_path(dataset: str, channels: int, size: int) -> Path:
    """Where the evaluation classifier of ``dataset`` at this image shape is cached."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(dataset).name or dataset)
    return cache_dir("classifiers") / f"{slug}-{channels}x{size}.safetensors"


def cached_classifier(dataset: str, channels: int, size: int) -> tuple[SmallCNN, dict] | None:
    """The cached classifier for this dataset and shape, or None when none was trained yet."""
    path = classifier_path(dataset, channels, size)
    return load_classifier(path) if path.is_file() else None


@dataclass
class ClassifierConfig:
    """Options of ``gankit train classifier`` (key=value on the command line)."""

    epochs: int = option(
        0,
        "passes over the training images (0: 2 for mnist, else 5; for a two-domain pair, "
        "120,000 images seen per content classifier and 2 passes for the A-vs-B one)",
        min=0,
    )
    batch_size: int = option(128, "images per step", min=1)
    lr: float = option(3e-3, "peak Adam learning rate", min=0.0)
    seed: int = option(0, "seed of initialisation, order and augmentation", min=0)
    image_size: int = option(0, "resize images to this side (0 keeps the dataset's size)", min=0)
    reuse: bool = option(False, "keep an already cached classifier for this dataset and size")


def train_for_dataset(dataset: str, cfg: ClassifierConfig) -> tuple[Path, float]:
    """Train the evaluation classifier of ``dataset``, cache it, return (path, test accuracy)."""
    from gankit.data.images import load_image_dataset

    size = cfg.image_size or None
    # measured: 2 epochs give 99.4% on MNIST; Fashion-MNIST needs 5 for 92% (3 give 91.0%)
    cfg = replace(cfg, epochs=cfg.epochs or (2 if dataset == "mnist" else 5))
    train = load_image_dataset(dataset, "train", size=size)
    test = load_image_dataset(dataset, "test", size=size)
    c, h = int(train.images.shape[1]), int(train.images.shape[2])
    if cfg.reuse and (cached := cached_classifier(dataset, c, h)) is not None:
        return classifier_path(dataset, c, h), float(cached[1]["test_accuracy"])
    model = train_classifier(
        train.images,
        train.labels,
        len(train.classes),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        seed=cfg.seed,
    )
    acc = accuracy(model, test.images, test.labels)
    meta = {"dataset": dataset, "test_accuracy": acc, "test_images": len(test), **asdict(cfg)}
    return save_classifier(model, classifier_path(dataset, c, h), meta), acc
