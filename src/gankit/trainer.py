"""The training loop shared by every GAN family: iterate, log, sample, evaluate, checkpoint.

It knows no model names and no GAN maths: ``model.train_step`` does the optimisation. Everything
that influences the result (weights, optimisers, EMA, step, data order, noise RNG) goes into each
checkpoint (``Run.state_dict`` in ``gankit.runs``), so a resumed run continues exactly where it
stopped.
"""

import json
import math
import signal
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from gankit import checkpoint, distributed
from gankit.config import save_yaml
from gankit.data import DataSource
from gankit.device import to_device
from gankit.errors import GankitError, Interrupted, TrainingDiverged
from gankit.progress import progress_bar


@contextmanager
def graceful_stop() -> Iterator[dict[str, bool]]:
    """First SIGINT/SIGTERM sets a flag checked between steps; a second SIGINT aborts at once."""
    flag = {"stop": False}

    def handler(signum: int, frame: object) -> None:
        if flag["stop"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["stop"] = True

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    """The arithmetic of a training step: bf16 autocast for ``precision`` "bf16", else none.

    Autocast runs matmuls and convolutions in bf16 and keeps fp32 weights, so gradients and
    optimiser state stay fp32; backward ops run in the dtype their forward op chose. The cast
    cache is off: a family's step updates weights in place between forward passes (critic
    iterations), and a cached bf16 copy would then be stale.
    """
    if precision != "bf16":
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def batches(data: DataSource, batch_size: int, device: torch.device) -> Iterator[Any]:
    """Endless batches on ``device``: the global ``batch_size``, or under torchrun this
    process's rows of it (every process reads the same global batch; gankit.distributed). A
    streamed folder decodes only this process's rows (``batch(n, shard=(rank, size))``)."""
    world = distributed.world()
    own_rows = world.size > 1 and data.shardable
    while True:
        if own_rows:
            batch = data.batch(batch_size, shard=(world.rank, world.size))
        else:
            batch = distributed.shard(data.batch(batch_size))
        yield to_device(batch, device)


def make_run_dir(path: Path) -> None:
    """Create ``path`` (and its parents) and prove it writable, or one line saying why not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / ".write-test").touch()
        (path / ".write-test").unlink()
    except OSError as exc:
        raise GankitError(
            f"cannot write the run directory {path} ({exc.strerror or exc}): give a writable --out"
        ) from None


class Trainer:
    """Runs ``cfg.train.steps`` generator steps of a run (``gankit.runs.Run``), writing everything
    into ``run_dir``."""

    def __init__(self, run: Any, run_dir: str | Path) -> None:
        run_dir = Path(run_dir).expanduser()
        self.run, self.dir = run, run_dir
        run.dir = run_dir
        self.train = run.cfg.train
        # under torchrun, rank 0 alone writes the run directory (logs, samples, checkpoints)
        self.main = distributed.world().main
        if self.main:
            make_run_dir(self.dir)  # before any step: an unwritable place costs no training time
            # a run killed mid-write left a temp file beside whole checkpoints: drop it on start
            checkpoint.remove_temps(self.dir / "checkpoints")
            save_yaml(run.cfg.to_dict(), self.dir / "config.yaml")
        distributed.barrier()
        self.writer = None
        self.last_eval: dict[str, float] = {}

    def log(self, step: int, values: dict[str, Any]) -> None:
        """Append to metrics.jsonl and TensorBoard."""
        record = {"step": step, "time": round(time.time(), 3), **values}
        try:
            with open(self.dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        except OSError as exc:
            raise checkpoint.write_failed(self.dir / "metrics.jsonl", exc) from None
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.dir / "tb"))
        for key, value in values.items():
            if isinstance(value, int | float):  # protocols are records, not curves
                self.writer.add_scalar(key, value, step)

    def save_samples(self, step: int) -> Path:
        path = self.dir / "samples" / f"step_{step:08d}.png"
        fake, nrow = self.run.preview(self.run.data.preview_n, seed=self.train.seed)
        title = f"{self.run.model.title(self.run.cfg.model)} step {step}"
        try:
            self.run.data.render(fake, path, title=title, nrow=nrow)
        except OSError as exc:
            raise checkpoint.write_failed(path, exc) from None
        if self.writer is not None:
            import numpy as np
            from PIL import Image

            image = np.asarray(Image.open(path).convert("RGB"))
            self.writer.add_image("samples", image, step, dataformats="HWC")
        return path

    def checkpoint(self) -> Path:
        """Write a checkpoint (rank 0; every rank holds the same state) and return its path."""
        if not self.main:
            return self.dir / "checkpoints" / f"step_{self.run.step:08d}.pt"
        return checkpoint.save(
            self.run.state_dict(), self.dir / "checkpoints", self.train.keep_last
        )

    def periodic(self, step: int, done: bool) -> None:
        """Evaluate, save samples and checkpoint on their schedules (and always at the end);
        rank 0 only, the other processes wait for it at the next step's first collective."""
        if not self.main:
            return
        if done or step % self.train.eval_every == 0:
            self.last_eval = self.run.metrics(self.train.eval_samples)
            self.log(step, self.last_eval)
        if done or step % self.train.sample_every == 0:
            self.save_samples(step)
        if done or step % self.train.ckpt_every == 0:
            self.checkpoint()

    def fit(self, stop_after: int | None = None) -> dict[str, float]:
        """Train to ``train.steps``; ``stop_after`` simulates an interruption at that step."""
        run, total = self.run, self.train.steps
        stream = batches(run.data, self.train.batch_size, run.device)
        # (step, logs) since the last log record, logs as train_step returned them (tensors):
        # read on the host only at log steps and before checkpoints, so steps queue on the device
        window: list[tuple[int, dict[str, Any]]] = []
        first = {"resolved": run.resolved}  # this training's first record says how it ran
        bar = progress_bar(
            total, run.step, run.cfg.model, self.train.progress and self.main, self.train.log_every
        )
        with graceful_stop() as flag, bar:
            while run.step < total:
                with autocast(run.device, run.precision):
                    logs = run.model.train_step(stream, run.step)
                run.model.end_step()
                if run.ema:
                    run.ema.update(run.model.generators())
                run.step += 1
                window.append((run.step, logs))
                if run.step % self.train.log_every == 0 or run.step == total:
                    self.check_finite(window)
                    means = distributed.all_mean(window_means(window))
                    if self.main:
                        self.log(run.step, {**means, **first})
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in means.items()})
                    window, first = [], {}
                elif run.step % self.train.ckpt_every == 0:
                    self.check_finite(window)  # a diverged step is never checkpointed
                bar.update(1)  # after set_postfix, so a plain progress line shows this window
                self.periodic(run.step, run.step == total)
                if distributed.any_rank(flag["stop"] or run.step == stop_after):
                    self.check_finite(window)
                    path = self.checkpoint()
                    raise Interrupted(
                        f"stopped at step {run.step} ({path.name} saved); "
                        f"continue with: gankit train --resume {self.dir}"
                    )
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        return self.last_eval

    def check_finite(self, window: list[tuple[int, dict[str, Any]]]) -> None:
        """Stop at the first non-finite loss of ``window`` ((step, logs) pairs) with the step."""
        bad = next(
            ((step, k, float(v)) for step, logs in window for k, v in logs.items()
             if not math.isfinite(float(v))),
            None,
        )  # fmt: skip
        if distributed.any_rank(bad is not None):  # every process stops at the same step
            if bad is None:
                raise TrainingDiverged(f"a loss of another process diverged by {self.run.step}")
            step, key, value = bad
            last = checkpoint.latest(self.dir / "checkpoints")
            kept = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"{key} became {value} at step {step}; {kept}. "
                "Lower the learning rate or change the seed"
            )


def window_means(window: list[tuple[int, dict[str, Any]]]) -> dict[str, float]:
    """Each key's mean over a log window's steps, as Python floats (the host reads each value
    here); a key missing from some steps still divides by the window's length."""
    sums: dict[str, float] = {}
    for _, logs in window:
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    return {k: v / len(window) for k, v in sums.items()}
