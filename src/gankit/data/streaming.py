"""trainA/trainB folders streamed from disk: decoded batch by batch in DataLoader workers.

A folder whose decoded train images would not sit comfortably in memory (``stream=auto``: more
than an eighth of this machine's memory; or ``stream=true``) is read by
:class:`StreamingUnpairedSource`. Its batches are the same kind of data as the in-memory
:class:`~gankit.data.unpaired.UnpairedSource`'s: each image's shorter side resized to
``round(size * 1.125)`` (bicubic) and centre-cropped, then a random ``size`` crop and a random
horizontal flip, float in [-1, 1]. The test splits are still decoded into memory at the start.

Determinism: the sample at position p (samples consumed so far, counted per domain) is a pure
function of (seed, domain, p): epoch ``p // N`` visits the N files in a permutation seeded by
(seed, domain, epoch), and the crop offsets and flip come from a generator seeded by
(seed, domain, p). So the batches depend on neither the worker count nor their timing, and the
position alone, saved in every checkpoint, resumes the stream exactly. The order differs from
the in-memory source's, which draws from one sequential generator.
"""

import os
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from gankit.data.images import memory_budget, to_float
from gankit.data.unpaired import (
    DomainPlan,
    UnpairedData,
    UnpairedSource,
    load_unpaired_folder,
    plan_unpaired_folder,
    read_square,
)
from gankit.errors import GankitError

STREAM_CHOICES = ("auto", "true", "false")
# seed-sequence words that keep the epoch orders and the augmentations independent streams
ORDER_WORD, AUGMENT_WORD = 1, 2


def stream_threshold() -> int:
    """Bytes of decoded train images above which ``stream=auto`` streams: an eighth of memory
    (half the quarter a class folder may take), leaving the rest to the model and its
    activations."""
    return memory_budget() // 2


def default_workers() -> int:
    """DataLoader workers when none are asked for: min(4, the CPUs this process may use)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return min(4, cpus)


def epoch_order(seed: int, domain: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of ``n`` files that epoch ``epoch`` of ``domain`` visits."""
    return np.random.default_rng([seed, ORDER_WORD, domain, epoch]).permutation(n)


def augmentation(seed: int, domain: int, position: int, slack: int) -> tuple[int, int, bool]:
    """(top, left, flipped) of the sample at ``position``: offsets in [0, slack], a fair flip."""
    rng = np.random.default_rng([seed, AUGMENT_WORD, domain, position])
    top, left = rng.integers(slack + 1, size=2)
    return int(top), int(left), bool(rng.random() < 0.5)


class FolderStream(Dataset):
    """Training samples by position: item p is (xa, xb), float (C, size, size) in [-1, 1], or the
    one-line error of a file that failed to decode (raised by the source, not in a worker)."""

    def __init__(
        self, plans: tuple[DomainPlan, DomainPlan], size: int, side: int, flip: bool, seed: int
    ) -> None:
        self.files = (plans[0].train, plans[1].train)
        self.colour = (plans[0].colour, plans[1].colour)
        self.size, self.side, self.flip, self.seed = size, side, flip, seed
        self.orders: dict[tuple[int, int], np.ndarray] = {}  # a few recent epochs' permutations

    def path(self, domain: int, position: int) -> Path:
        files = self.files[domain]
        epoch, i = divmod(position, len(files))
        if (domain, epoch) not in self.orders:
            if len(self.orders) >= 4:
                self.orders.clear()
            self.orders[domain, epoch] = epoch_order(self.seed, domain, epoch, len(files))
        return files[self.orders[domain, epoch][i]]

    def sample(self, domain: int, position: int) -> Tensor:
        pixels, _ = read_square(self.path(domain, position), self.colour[domain], self.side)
        top, left, flipped = augmentation(self.seed, domain, position, self.side - self.size)
        crop = pixels[top : top + self.size, left : left + self.size]
        if self.flip and flipped:
            crop = crop[:, ::-1]
        return to_float(torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1))

    def __getitem__(self, position: int) -> tuple[Tensor, Tensor] | str:
        try:
            return self.sample(0, position), self.sample(1, position)
        except GankitError as err:  # a worker's exception would reach the user as a traceback
            return str(err)


def collate(items: list[tuple[Tensor, Tensor] | str]) -> tuple[Tensor, Tensor] | str:
    """Stack samples into (xa, xb); the first error text instead when any sample failed."""
    for item in items:
        if isinstance(item, str):
            return item
    xa, xb = zip(*items, strict=True)
    return torch.stack(xa), torch.stack(xb)


class Positions:
    """Batch sampler: rows [lo, hi) of consecutive global batches of ``n`` from ``start``."""

    def __init__(self, start: int, n: int, lo: int, hi: int) -> None:
        self.start, self.n, self.lo, self.hi = start, n, lo, hi

    def __iter__(self) -> Iterator[list[int]]:
        position = self.start
        while True:
            yield list(range(position + self.lo, position + self.hi))
            position += self.n


def ignore_interrupt(worker_id: int) -> None:
    """Ctrl-C reaches the whole process group: only the training process handles it (and
    checkpoints), its workers keep serving until it stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class StreamingUnpairedSource(UnpairedSource):
    """A trainA/trainB folder whose train images are decoded from disk batch by batch.

    ``batch(n)`` returns (xa, xb) as :class:`UnpairedSource` does (test splits, examples,
    references and rendering are inherited; ``train_a``/``train_b`` hold no images).
    ``batch(n, shard=(rank, world))`` returns only rows ``[rank * n // world, (rank + 1) * n //
    world)`` of the global batch of ``n`` and decodes only those, while the position advances by
    ``n``: every rank of a multi-process run draws the same global batch order and keeps its
    slice (the slices of ranks 0..world-1 concatenated are the batch of ``shard=(0, 1)``).

    ``workers`` DataLoader processes decode, resize, crop and flip ahead of the training (0:
    in this process). The order and augmentations are a pure function of (seed, position), see
    the module docstring, and ``state_dict()`` holds the position: a resumed source continues with
    the very batches an uninterrupted one would give, whatever the worker count. A file that
    cannot be decoded although its header was read at the start (e.g. cut short) stops the batch
    that first reads it with the one-line error naming it.
    """

    shardable = True

    def __init__(
        self, data: UnpairedData, plans: tuple[DomainPlan, DomainPlan], seed: int, workers: int
    ) -> None:
        super().__init__(data, seed)
        side = data.train_a.images.shape[-1]
        self.stream = FolderStream(plans, data.size, side, data.flip, seed)
        self.workers = workers
        self.position = 0  # samples consumed per domain
        self.batches: Iterator[tuple[Tensor, Tensor] | str] | None = None
        self.expected: tuple[int, int, int, int] | None = None  # (n, lo, hi, position) it yields

    def _loader(self, n: int, lo: int, hi: int) -> Iterator[tuple[Tensor, Tensor] | str]:
        loader = DataLoader(
            self.stream,
            batch_sampler=Positions(self.position, n, lo, hi),
            num_workers=self.workers,
            collate_fn=collate,
            # its own generator: the loader draws a worker seed, never from the global RNG
            generator=torch.Generator(),
            worker_init_fn=ignore_interrupt,
        )
        return iter(loader)

    def batch(self, n: int, shard: tuple[int, int] = (0, 1)) -> tuple[Tensor, Tensor]:
        rank, world = shard
        if not 0 <= rank < world:
            raise GankitError(f"shard {shard}: rank must be in 0..world-1, e.g. (0, 2)")
        lo, hi = rank * n // world, (rank + 1) * n // world
        if lo == hi:  # fewer rows than ranks: this rank's slice is empty
            self.position += n
            return self.empty(0), self.empty(1)
        if self.batches is None or self.expected != (n, lo, hi, self.position):
            self.close()  # another batch size, shard or position: prefetched batches are void
            self.batches = self._loader(n, lo, hi)
        out = next(self.batches)
        if isinstance(out, str):
            self.close()
            raise GankitError(out)
        self.position += n
        self.expected = (n, lo, hi, self.position)
        return out

    def empty(self, domain: int) -> Tensor:
        shape = self.spec.shape_b if domain else self.spec.shape
        return torch.zeros((0, *shape))

    def close(self) -> None:
        """Stop the workers (a new stream starts at the next batch)."""
        self.batches, self.expected = None, None

    def state_dict(self) -> dict[str, Any]:
        files = [len(f) for f in self.stream.files]
        return {"stream": {"position": self.position, "files": files}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "stream" not in state:
            raise GankitError(
                "this run read its training images into memory: resume it with stream=false"
            )
        files = [len(f) for f in self.stream.files]
        if list(state["stream"]["files"]) != files:  # e.g. a bad file deleted: carry on
            warnings.warn(
                f"{self.spec.name}: the checkpoint streamed {state['stream']['files']} train "
                f"images (A, B), the folder now holds {files}: training continues over the new "
                "files, in another order than an uninterrupted run",
                stacklevel=2,
            )
        self.close()
        self.position = int(state["stream"]["position"])


def open_unpaired_folder(
    path: str | Path, size: int, seed: int, stream: str = "auto", workers: int = -1
) -> UnpairedSource:
    """A trainA/trainB folder as a source: in memory, or streamed (``stream`` "true", or "auto"
    when its decoded train images exceed :func:`stream_threshold`); every header is checked
    first either way. ``workers`` < 0: :func:`default_workers`."""
    if stream not in STREAM_CHOICES:
        raise GankitError(f"stream={stream!r} is not one of {', '.join(STREAM_CHOICES)}")
    plans = plan_unpaired_folder(path, size)
    need = sum(plan.train_bytes(size) for plan in plans)
    if stream == "false" or (stream == "auto" and need <= stream_threshold()):
        return UnpairedSource(load_unpaired_folder(path, size, plans), seed)
    data = load_unpaired_folder(path, size, plans, hold_train=False)
    if stream == "auto":
        data.note = "; ".join(
            filter(None, [data.note, f"train images streamed from disk ({need / 1e9:.1f} GB)"])
        )
    workers = workers if workers >= 0 else default_workers()
    return StreamingUnpairedSource(data, plans, seed, workers)
