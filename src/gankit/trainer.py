"""The training loop shared by every GAN family: iterate, log, sample, evaluate, checkpoint.

It knows no model names and no GAN maths: ``model.train_step`` does the optimisation. Everything
that influences the result (weights, optimisers, EMA, step, data order, noise RNG) goes into each
checkpoint, so ``resume`` continues exactly where the run stopped.
"""

import json
import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from gankit import checkpoint
from gankit.config import RunConfig, save_yaml
from gankit.data import DataSource, DataSpec, open_data
from gankit.device import resolve_device, to_device
from gankit.ema import EMA
from gankit.errors import GankitError
from gankit.models import GANModel
from gankit.runs import from_dict, model_class, resolve

EVAL_SEED = 12345  # fixed so evaluations at different steps compare like with like


class TrainingDiverged(GankitError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


class Interrupted(GankitError):
    """Ctrl-C or SIGTERM: a checkpoint was written before exiting."""


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


class Run:
    """A model, its data and EMA, rebuilt from a RunConfig; saved and restored as one state."""

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg.train.seed)
        self.data: DataSource = open_data(cfg.data, cfg.train.seed, cfg.train.image_size)
        cls = model_class(cfg.model)
        if self.data.spec.kind not in cls.kinds:
            raise GankitError(f"model {cfg.model} cannot train on {self.data.spec.kind} data")
        self.model: GANModel = cls(cfg.model_config, self.data.spec).to(device)
        self.model.setup(cfg.train.steps)
        self.ema = EMA(self.model.generators(), cfg.train.ema_decay) if cfg.train.ema else None
        self.step = 0

    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "step": self.step,
            "config": self.cfg.to_dict(),
            "spec": spec_dict(self.data.spec),  # lets `gankit translate` skip loading the data
            "model": self.model.state_dict(),
            "training": self.model.training_state(),
            "ema": self.ema.state_dict() if self.ema else None,
            "data": self.data.state_dict(),
            "rng": rng,
        }

    def load_state_dict(self, state: dict[str, Any], *, weights_only: bool = False) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:  # weights named or shaped unlike this version's model
            reason = " ".join(str(exc).split())[:160]
            raise GankitError(
                f"the checkpoint's weights do not fit the {self.cfg.model} model its config "
                f"builds ({reason}): it was written by another gankit version; load it with that"
            ) from None
        if self.ema and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        if weights_only:
            return
        self.step = state["step"]
        self.model.load_training_state(state["training"])
        self.data.load_state_dict(state["data"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])

    @classmethod
    def from_checkpoint(
        cls, path: Path, device: str = "auto", overrides: list[str] | None = None
    ) -> "Run":
        """Rebuild a run from a checkpoint alone (its config is inside), weights and all.

        ``overrides`` (``key=value``) may change loop settings such as ``steps``; the model's
        own settings are fixed by the checkpoint.
        """
        state = checkpoint.load(path)
        cfg = from_dict(state["config"])
        changed = resolve(cfg.model, cfg.data, cfg.to_dict(), overrides)
        if changed.model_config != cfg.model_config:
            raise GankitError("a resumed run keeps its model settings: change only loop settings")
        cfg.train = changed.train
        run = cls(cfg, resolve_device(device if device != "auto" else cfg.train.device))
        run.load_state_dict(state)
        return run

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Sample with EMA weights when kept; leaves every RNG untouched."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            if self.ema is None:
                yield
            else:
                with self.ema.applied(self.model.generators()):
                    yield

    def samples(self, n: int, seed: int, **kwargs: Any) -> torch.Tensor:
        return self._draw(self.model.sample, n, seed, **kwargs).cpu()

    def preview(self, n: int, seed: int) -> tuple[torch.Tensor, int]:
        """The training-progress picture: images and images per grid row (``model.preview``)."""
        images, nrow = self._draw(self.model.preview, n, seed)
        return images.cpu(), nrow

    def _draw(self, fn: Any, n: int, seed: int, **kwargs: Any) -> Any:
        """``fn(n, generator=..., **kwargs)`` in eval mode with EMA weights; a translation model
        also gets ``inputs=(xa, xb)``, ``n`` held-out examples drawn with ``seed``."""
        if self.model.needs_inputs and "inputs" not in kwargs:
            kwargs["inputs"] = to_device(self.data.examples(n, seed), self.device)
        was_training = self.model.training
        self.model.eval()
        with self.averaged():
            out = fn(n, generator=torch.Generator().manual_seed(seed), **kwargs)
        self.model.train(was_training)
        return out

    def evaluate(self, n: int, inception: int = 0) -> dict[str, Any]:
        """Data metrics of ``n`` samples plus the model's diagnostics, at a fixed seed.

        ``inception`` > 0 adds the Inception FID of that many samples (images only; slow).
        """
        if self.model.needs_inputs and hasattr(self.data, "evaluate_translation"):
            # translation: both directions, cycles and (where known) the true pairs
            if inception:
                raise GankitError("--inception is not offered for translation runs")
            was_training = self.model.training
            self.model.eval()
            try:
                with self.averaged():
                    return self.data.evaluate_translation(self.model, n, EVAL_SEED)
            finally:
                self.model.train(was_training)
        fake = self.samples(n, EVAL_SEED)
        # conditional samples come in class blocks (label=None); score them against those classes
        labels = self.model.labels_for(n, None) if self.model.conditional else None
        metrics = self.data.evaluate(fake, EVAL_SEED, labels)
        real = self.data.reference(n, EVAL_SEED + 1)
        with self.averaged():
            diag = self.model.diagnostics(
                to_device(real, self.device),
                to_device(fake, self.device),
                torch.Generator().manual_seed(EVAL_SEED),
            )
        if inception:
            metrics.update(self.data.inception_scores(fake[:inception], EVAL_SEED))
        if "protocol" in metrics:
            metrics["protocol"].update(seed=EVAL_SEED, ema=self.ema is not None, step=self.step)
        return {**metrics, **diag}


def spec_dict(spec: DataSpec) -> dict[str, Any]:
    """A DataSpec as plain lists, strings and ints (checkpoints load with weights_only)."""
    return {
        "name": spec.name,
        "kind": spec.kind,
        "shape": list(spec.shape),
        "shape_b": list(spec.shape_b),
        "num_classes": spec.num_classes,
        "class_names": list(spec.class_names),
    }


def spec_from_dict(values: dict[str, Any]) -> DataSpec:
    """The DataSpec stored by :func:`spec_dict`."""
    return DataSpec(
        values["name"],
        values["kind"],
        tuple(values["shape"]),
        int(values["num_classes"]),
        list(values["class_names"]),
        shape_b=tuple(values["shape_b"]),
    )


def batches(data: DataSource, batch_size: int, device: torch.device) -> Iterator[Any]:
    while True:
        yield to_device(data.batch(batch_size), device)


class Trainer:
    """Runs ``cfg.train.steps`` generator steps of a Run, writing everything into ``run_dir``."""

    def __init__(self, run: Run, run_dir: Path) -> None:
        self.run, self.dir = run, run_dir
        self.train = run.cfg.train
        self.dir.mkdir(parents=True, exist_ok=True)
        save_yaml(run.cfg.to_dict(), self.dir / "config.yaml")
        self.writer = None
        self.last_eval: dict[str, float] = {}

    def log(self, step: int, values: dict[str, Any]) -> None:
        """Append to metrics.jsonl and TensorBoard."""
        record = {"step": step, "time": round(time.time(), 3), **values}
        with open(self.dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.dir / "tb"))
        for key, value in values.items():
            if isinstance(value, int | float):  # protocols are records, not curves
                self.writer.add_scalar(key, value, step)

    def save_samples(self, step: int) -> Path:
        path = self.dir / "samples" / f"step_{step:08d}.png"
        fake, nrow = self.run.preview(self.run.data.preview_n, seed=self.train.seed)
        self.run.data.render(
            fake, path, title=f"{self.run.model.title(self.run.cfg.model)} step {step}", nrow=nrow
        )
        if self.writer is not None:
            import numpy as np
            from PIL import Image

            image = np.asarray(Image.open(path).convert("RGB"))
            self.writer.add_image("samples", image, step, dataformats="HWC")
        return path

    def checkpoint(self) -> Path:
        return checkpoint.save(
            self.run.state_dict(), self.dir / "checkpoints", self.train.keep_last
        )

    def periodic(self, step: int, done: bool) -> None:
        """Evaluate, save samples and checkpoint on their schedules (and always at the end)."""
        if done or step % self.train.eval_every == 0:
            self.last_eval = self.run.evaluate(self.train.eval_samples)
            self.log(step, self.last_eval)
        if done or step % self.train.sample_every == 0:
            self.save_samples(step)
        if done or step % self.train.ckpt_every == 0:
            self.checkpoint()

    def fit(self, stop_after: int | None = None) -> dict[str, float]:
        """Train to ``train.steps``; ``stop_after`` simulates an interruption at that step."""
        run, total = self.run, self.train.steps
        stream = batches(run.data, self.train.batch_size, run.device)
        sums: dict[str, float] = {}
        bar = tqdm(
            total=total, initial=run.step, disable=not self.train.progress, desc=run.cfg.model
        )
        with graceful_stop() as flag, bar:
            while run.step < total:
                logs = run.model.train_step(stream, run.step)
                self.check_finite(logs)
                run.model.end_step()
                if run.ema:
                    run.ema.update(run.model.generators())
                run.step += 1
                bar.update(1)
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + v
                if run.step % self.train.log_every == 0 or run.step == total:
                    n = self.train.log_every if run.step % self.train.log_every == 0 else 1
                    means = {k: v / n for k, v in sums.items()}
                    self.log(run.step, means)
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in means.items()})
                    sums = {}
                self.periodic(run.step, run.step == total)
                if flag["stop"] or run.step == stop_after:
                    path = self.checkpoint()
                    raise Interrupted(
                        f"stopped at step {run.step} ({path.name} saved); "
                        f"continue with: gankit train --resume {self.dir}"
                    )
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        return self.last_eval

    def check_finite(self, logs: dict[str, float]) -> None:
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:
            last = checkpoint.latest(self.dir / "checkpoints")
            kept = f"last good checkpoint: {last}" if last else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"{bad[0]} became {logs[bad[0]]} at step {self.run.step + 1}; {kept}. "
                "Lower the learning rate or change the seed"
            )
