"""Runs: config resolution, run directories, and :class:`Run`, a model with its data and EMA.

A run directory holds ``config.yaml``, ``checkpoints/step_*.pt``, ``samples/*.png``,
``metrics.jsonl`` and TensorBoard events under ``tb/``. :class:`Run` is what ``gankit.train`` and
``gankit.load`` return and what every CLI command works on.
"""

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit import checkpoint, distributed
from gankit.config import (
    RunConfig,
    TrainConfig,
    apply,
    load_yaml,
    parse_overrides,
    route_overrides,
    unknown_key,
)
from gankit.data import DataSource, DataSpec, data_kind, open_data
from gankit.device import resolve_device, resolve_impl, resolve_precision, to_device
from gankit.ema import EMA
from gankit.errors import GankitError
from gankit.evaluate import Evaluator
from gankit.models import MODELS, GANModel
from gankit.models.base import DIRECTIONS
from gankit.progress import progress_bar
from gankit.trainer import Trainer


def model_class(name: str) -> type[GANModel]:
    if name not in MODELS:
        raise unknown_key(name, sorted(MODELS)) from None
    return MODELS[name]


def resolve(
    model: str,
    data: str,
    yaml_values: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    values: dict[str, Any] | None = None,
) -> RunConfig:
    """Dataclass defaults < the family's defaults (for this data kind) < YAML < CLI overrides
    (``key=value`` strings) < ``values`` (Python keyword overrides, validated the same way)."""
    yaml_values = yaml_values or {}
    cls = model_class(model)
    kind = data_kind(data)
    # an EMA generator is a cheap, reliable gain on images; on 2-D toy data it only lags
    train = apply(TrainConfig(ema=kind == "images"), cls.train_defaults, "train")
    train = apply(train, yaml_values.get("train") or {}, "train")
    model_cfg = apply(cls.Config(), cls.kind_defaults.get(kind, {}), "model_config")
    model_cfg = apply(model_cfg, yaml_values.get("model_config") or {}, "model_config")
    pairs = parse_overrides(overrides or []) + list((values or {}).items())
    to_train, to_model = route_overrides(pairs, train, model_cfg)
    return RunConfig(
        model, data, apply(train, to_train, "train"), apply(model_cfg, to_model, "model_config")
    )


def from_dict(values: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig stored in config.yaml or a checkpoint."""
    return resolve(values["model"], values["data"], values)


def stored_config(state: dict[str, Any], path: Path) -> RunConfig:
    """The RunConfig inside checkpoint ``state``; a setting this version cannot read means
    another gankit version wrote it, and the error says which."""
    try:
        return from_dict(state["config"])
    except GankitError as exc:
        written = checkpoint.written_by(state)
        if written == checkpoint.VERSION or "gankit_version" not in state:
            raise GankitError(
                f"checkpoint {path} holds settings gankit {checkpoint.VERSION} cannot read "
                f"({exc}): it was written by another gankit version; load it with that one"
            ) from None
        raise GankitError(
            f"checkpoint {path} was written by gankit {written}, whose settings gankit "
            f"{checkpoint.VERSION} cannot read ({exc}): load it with gankit {written}"
        ) from None


def check_belongs(path: Path, cfg: RunConfig) -> None:
    """A checkpoint copied into another run's directory is refused before it is trained on."""
    run_yaml = path.parent.parent / "config.yaml"
    if path.parent.name != "checkpoints" or not run_yaml.is_file():
        return
    owner = load_yaml(run_yaml).get("model")
    if owner and owner != cfg.model:
        raise GankitError(
            f"{path} holds a {cfg.model} checkpoint but {run_yaml} is a {owner} run: it belongs "
            "to another run: move it out of this directory"
        )


def checkpoint_device(requested: str, stored: str) -> str:
    """The device to rebuild a saved run on: ``requested`` unless it is ``auto``; then the run's
    own choice, except that a run trained on CUDA opens on the CPU of a machine without one."""
    if requested != "auto":
        return requested
    if stored.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(
            f"this run was set to train on {stored} and this machine has no CUDA: using the CPU",
            stacklevel=3,
        )
        return "cpu"
    return stored


def from_yaml_file(path: str | Path, model: str | None, data: str | None) -> RunConfig:
    values = load_yaml(path)
    model = model or values.get("model")
    data = data or values.get("data")
    if not model or not data:
        raise GankitError(f"{path} names no model/data: give them on the command line")
    return resolve(model, data, values)


def next_run_dir(root: Path, model: str, data: str) -> Path:
    """``runs/00003-wgan-gp-8gaussians``: numbered so runs sort by creation (nothing created)."""
    names = [p.name for p in root.iterdir()] if root.is_dir() else []
    numbers = [int(m.group(1)) for name in names if (m := re.match(r"(\d{5})-", name))]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(data).name or data)
    return root / f"{max(numbers, default=-1) + 1:05d}-{model}-{slug}"


def require_run(run_dir: str | Path) -> Path:
    """The run directory, or a clear error when ``run_dir`` is not one."""
    path = Path(run_dir)
    if not path.is_dir():
        raise GankitError(f"{path} does not exist: give a run directory made by `gankit train`")
    if not (path / "config.yaml").is_file() and checkpoint.latest(path / "checkpoints") is None:
        raise GankitError(f"{path} is not a gankit run (no config.yaml, no checkpoints/)")
    return path


def latest_checkpoint(run_dir: Path) -> Path:
    found = checkpoint.latest(run_dir / "checkpoints")
    if found is None:
        raise GankitError(f"{run_dir} has no checkpoint yet: train it first (gankit train ...)")
    return found


def latest_checkpoint_or_none(run_dir: Path) -> Path | None:
    return checkpoint.latest(run_dir / "checkpoints")


def direction_key(direction: str) -> str:
    """The generator of ``direction``, or a one-line error naming the two there are."""
    if direction not in DIRECTIONS:
        raise GankitError(f"--direction {direction!r}: use AtoB or BtoA")
    return DIRECTIONS[direction]


@dataclass
class SavedRun:
    """What a checkpoint says about its run, without its training data."""

    path: Path
    state: dict[str, Any]
    cfg: RunConfig
    cls: type[GANModel]
    spec: DataSpec
    step: int


def saved_run(path: Path) -> SavedRun:
    """The checkpoint at ``path`` with its config and data spec (`gankit translate`, `export`)."""
    state = checkpoint.load(path)
    cfg = stored_config(state, path)
    if not state.get("spec"):
        raise GankitError(
            f"{path} predates stored data specs: resume the run for one step "
            "(gankit train --resume RUN_DIR steps=N+1) to write a checkpoint this command can read"
        )
    return SavedRun(
        path, state, cfg, model_class(cfg.model), DataSpec.from_dict(state["spec"]), state["step"]
    )


def load_generator(saved: SavedRun, key: str) -> tuple[nn.Module, bool]:
    """Generator ``key`` of a saved run in eval mode on the CPU, with its EMA weights when the
    run kept them (what sampling uses); also whether they were EMA weights."""
    with warnings.catch_warnings():  # construction notes (e.g. "identity loss off") were
        warnings.simplefilter("ignore")  # shown at training time; inference needs none
        model = saved.cls(saved.cfg.model_config, saved.spec)
    net = model.generators().get(key)
    if net is None:
        variant = getattr(saved.cfg.model_config, "variant", "?")
        direction = {k: f" ({d})" for d, k in DIRECTIONS.items()}.get(key, "")
        raise GankitError(
            f"this {saved.cfg.model} run has no {key}{direction} generator (variant {variant}): "
            "use --direction AtoB"
        )
    shadow = (saved.state.get("ema") or {}).get("shadow", {})
    from_ema = key in shadow
    if from_ema:
        weights = shadow[key]
    else:
        model_state = saved.state["model"]
        weights = {k[len(key) + 1 :]: v for k, v in model_state.items() if k.startswith(key + ".")}
    try:
        net.load_state_dict(weights)
    except RuntimeError as exc:
        reason = str(exc).splitlines()[0][:120]
        raise GankitError(
            f"{saved.path}: the {key} weights do not fit the model ({reason})"
        ) from None
    return net.eval(), from_ema


def empty_folder(folder: str | Path) -> Path:
    """``folder``, created if missing; one line if it holds files already (samples of two
    runs mixed in one folder would be scored together)."""
    out = Path(folder).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GankitError(f"{out} is not empty: give a new or empty folder for the sample files")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_points_csv(points: Tensor, path: Path) -> None:
    """Points (N, D) as CSV with a header x,y (x0, x1, ... beyond 2-D), float32 round-trip."""
    import numpy as np

    dims = points.shape[1]
    header = "x,y" if dims == 2 else ",".join(f"x{i}" for i in range(dims))
    np.savetxt(path, points.numpy(), fmt="%.9g", delimiter=",", header=header, comments="")


class Run:
    """A model with its data and EMA, rebuilt from a RunConfig; saved and restored as one state.

    ``gankit.train`` and ``gankit.load`` return one. Attributes: ``cfg`` (the resolved
    :class:`~gankit.config.RunConfig`), ``model``, ``data``, ``ema``, ``device``, ``precision``
    (the resolved "fp32" or "bf16"), ``impl`` (the resolved training kernels, "gankit" or
    "torch"), ``compiled`` (the networks whose forward torch.compile runs), ``step`` (generator
    steps done), ``dir`` (its run directory, or None before training) and ``checkpoint`` (the
    file it was loaded from, or None). ``resolved`` gathers device, precision, impl and compile
    as every checkpoint and the first metrics.jsonl record of each training record them.
    """

    def __init__(
        self, cfg: RunConfig, device: torch.device, run_dir: str | Path | None = None
    ) -> None:
        self.cfg, self.device = cfg, device
        # the arithmetic training steps run in: "fp32" or "bf16" (``auto`` resolved on this device)
        self.precision = resolve_precision(cfg.train.precision, device)
        self.dir = None if run_dir is None else Path(run_dir)
        self.checkpoint: Path | None = None
        torch.manual_seed(cfg.train.seed)
        train = cfg.train
        self.data: DataSource = open_data(
            cfg.data, train.seed, train.image_size, train.stream, train.workers
        )
        cls = model_class(cfg.model)
        if self.data.spec.kind not in cls.kinds:
            raise GankitError(f"model {cfg.model} cannot train on {self.data.spec.kind} data")
        self.model: GANModel = cls(cfg.model_config, self.data.spec).to(device)
        # the training kernels: ``auto`` resolved on this device for this model
        self.impl = resolve_impl(cfg.train.impl, device, self.model.cpu_impl())
        self.model.use_impl(self.impl)
        # several processes (torchrun): BatchNorm over the global batch, rank 0's initial
        # weights everywhere (no-ops in one process; see gankit.distributed)
        distributed.check_batch(cfg.train.batch_size)
        distributed.broadcast_module(distributed.sync_batchnorm(self.model))
        self.model.setup(cfg.train.steps)
        self.ema = EMA(self.model.generators(), cfg.train.ema_decay) if cfg.train.ema else None
        self.evaluator = Evaluator(self.data, self.model)
        self.compiled = self.model.compile_networks() if cfg.train.compile else []
        self.step = 0
        # what the checkpoint this run was loaded from records of its training (from_checkpoint)
        self.trained_with: dict[str, Any] | None = None

    @property
    def resolved(self) -> dict[str, Any]:
        """The settings ``auto`` and the machine decided: device, precision, impl, compile (the
        compiled networks' names, [] when off)."""
        return {
            "device": str(self.device),
            "precision": self.precision,
            "impl": self.impl,
            "compile": list(self.compiled),
        }

    def __repr__(self) -> str:
        return f"Run({self.cfg.model} on {self.cfg.data}, step {self.step}, dir={self.dir})"

    def state_dict(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "step": self.step,
            "config": self.cfg.to_dict(),
            "spec": self.data.spec.to_dict(),  # lets `gankit translate` skip loading the data
            "model": self.model.state_dict(),
            "training": self.model.training_state(),
            "ema": self.ema.state_dict() if self.ema else None,
            "data": self.data.state_dict(),
            "rng": rng,
            "gankit_version": checkpoint.VERSION,  # names the version when another cannot read it
            "resolved": self.resolved,
        }

    def load_state_dict(self, state: dict[str, Any], *, weights_only: bool = False) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:  # weights named or shaped unlike this version's model
            reason = " ".join(str(exc).split())[:160]
            raise GankitError(
                f"the checkpoint's weights do not fit the {self.cfg.model} model its config "
                f"builds ({reason}): it holds another model's weights, or was written by "
                f"another gankit version ({checkpoint.written_by(state)}); load it with that"
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
        cls, path: str | Path, device: str = "auto", overrides: list[str] | None = None
    ) -> "Run":
        """Rebuild a run from a checkpoint alone (its config is inside), weights and all.

        ``overrides`` (``key=value``) may change loop settings such as ``steps``; the model's
        own settings are fixed by the checkpoint.
        """
        path = Path(path)
        state = checkpoint.load(path)
        cfg = stored_config(state, path)
        check_belongs(path, cfg)
        changed = resolve(cfg.model, cfg.data, cfg.to_dict(), overrides)
        if changed.model_config != cfg.model_config:
            raise GankitError("a resumed run keeps its model settings: change only loop settings")
        cfg.train = changed.train
        device = checkpoint_device(device, cfg.train.device)
        distributed.init(device)  # under torchrun: join the other processes (before the GPU)
        device = resolve_device(device)
        run = cls(cfg, device, run_dir=path.parent.parent)
        run.load_state_dict(state)
        run.checkpoint = path
        run.trained_with = state.get("resolved")  # None in checkpoints of older versions
        return run

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Sample with EMA weights when kept; leaves every RNG untouched. Compiled networks run
        eagerly here: evaluation's batch sizes, eval mode and no-grad would each compile anew."""
        eager = torch.compiler.set_stance("force_eager") if self.compiled else nullcontext()
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), eager:
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

    def metrics(self, n: int, inception: int = 0) -> dict[str, Any]:
        """The scores ``gankit.evaluate`` chooses for this run, at its fixed seed (the trainer
        logs these every ``eval_every`` steps)."""
        return self.evaluator.evaluate(self, n, inception)

    # ------------------------------------------------------------------ the Python API

    def sample(
        self,
        n: int,
        *,
        seed: int = 0,
        label: int | str | Sequence[int | str] | None = None,
        interpolate: bool = False,
    ) -> Tensor:
        """``n`` samples on the CPU: points (n, 2), or images (n, C, H, W) in [-1, 1].

        Args:
            n: how many.
            seed: the noise seed: the same seed gives the same samples.
            label: conditional models only: a class index or name (all ``n`` of that class), a
                list of ``n`` of those (one per sample), or None / "all" (every class in equal
                consecutive blocks).
            interpolate: conditional models: walk linearly between two latent points per class.

        For a translation model the samples are translations A → B of ``n`` test images.
        """
        if n < 1:
            raise GankitError(f"n={n}: the number of samples must be at least 1")
        if not self.model.conditional:
            if label is not None or interpolate:
                raise GankitError(f"{self.cfg.model} is unconditional: label/interpolate need cgan")
            return self.samples(n, seed)
        return self.samples(n, seed, label=self.labels(label, n), interpolate=interpolate)

    def labels(self, label: int | str | Sequence[int | str] | None, n: int) -> Any:
        """A class index, a list of ``n`` indices, or None, from indices or class names."""
        names = [name.lower() for name in self.data.spec.class_names]

        def index(value: int | str) -> int:
            if isinstance(value, str) and value.lstrip("-").isdigit():
                value = int(value)
            if isinstance(value, int):
                return value
            if value.lower() in names:
                return names.index(value.lower())
            raise GankitError(
                f"label {value!r}: give a class index 0..{len(names) - 1}, a class name "
                f"({', '.join(self.data.spec.class_names[:10])}...) or 'all'"
            )

        if label is None or label == "all":
            return None
        if isinstance(label, int | str):
            return index(label)
        if len(label) != n:
            raise GankitError(f"{len(label)} labels for n={n} samples: give one per sample")
        return torch.tensor([index(v) for v in label])

    def save_samples(
        self,
        path: str | Path,
        n: int = 64,
        *,
        seed: int = 0,
        label: int | str | None = None,
        interpolate: bool = False,
    ) -> Path:
        """Write ``n`` samples as one picture (PNG grid, or a scatter plot for 2-D data).

        Conditional models with ``label`` None or "all" get one row per class (``n`` rounded
        down to a multiple of the class count, at least one per class).
        """
        nrow = 10
        if self.model.conditional and label in (None, "all"):
            nrow = max(1, n // self.data.spec.num_classes)
            n = nrow * self.data.spec.num_classes
        fake = self.sample(n, seed=seed, label=label, interpolate=interpolate)
        title = f"{self.model.title(self.cfg.model)} step {self.step} seed {seed}"
        out = Path(path).expanduser()
        self.data.render(fake, out, title=title, nrow=nrow)
        return out

    def save_sample_files(
        self,
        folder: str | Path,
        n: int,
        *,
        seed: int = 0,
        label: int | str | None = None,
        batch_size: int = 256,
        progress: bool = False,
    ) -> dict[str, int]:
        """Write ``n`` samples as files in ``folder`` (new or empty), ``batch_size`` at a time
        so memory stays flat: one PNG per image (``00000.png``, ...; 1 channel as mode L, 3 as
        RGB), or for 2-D points one ``samples.csv``.

        A conditional model with ``label`` None or "all" writes one subfolder per class (its
        name, else its index) and splits ``n`` across them, the first ``n % classes`` one
        more; with a ``label`` all ``n`` are of that class, in ``folder`` itself. The same
        seed, ``n`` and ``batch_size`` give the same files (the noise of each batch is drawn
        in turn from one seeded generator, so the first batch is ``sample(batch_size, seed)``).
        Returns the number of files per subfolder ("" for ``folder`` itself).
        """
        if n < 1 or batch_size < 1:
            raise GankitError(f"n={n}, batch_size={batch_size}: both must be at least 1")
        if self.model.needs_inputs:
            raise GankitError(
                f"{self.cfg.model} translates images: write translations as files with "
                "gankit translate RUN --input DIR --out DIR"
            )
        from gankit.data.grid import save_pngs

        plan = self.file_plan(n, label)  # a bad label fails before any folder is made
        out = empty_folder(folder)
        digits = max(5, len(str(max(count for _, _, count in plan) - 1)))
        bar = progress_bar(n, 0, "sample", progress, batch_size, unit="samples")
        with self.averaged(), torch.no_grad(), self.eval_mode(), bar:
            gen = torch.Generator().manual_seed(seed)
            if self.data.spec.kind != "images":  # 2-D points: a table, not pictures
                points = torch.cat(list(self.draw_chunks(n, batch_size, gen, None, bar)))
                write_points_csv(points, out / "samples.csv")
                return {"samples.csv": n}
            for name, y, count in plan:
                start = 0
                for images in self.draw_chunks(count, batch_size, gen, y, bar):
                    save_pngs(images, out / name, start, digits)
                    start += len(images)
        return {name: count for name, _, count in plan}

    def file_plan(self, n: int, label: int | str | None) -> list[tuple[str, int | None, int]]:
        """(subfolder, class index or None, count) for :meth:`save_sample_files`."""
        if not self.model.conditional:
            if label is not None:
                raise GankitError(f"{self.cfg.model} is unconditional: --label needs cgan")
            return [("", None, n)]
        index = self.labels(label, n)
        if index is not None:
            self.model.labels_for(1, index)  # an index out of range fails here, before any file
            return [("", index, n)]
        spec = self.data.spec
        k = spec.num_classes
        if n < k:
            raise GankitError(f"--n {n} with --label all: give at least one per class ({k})")
        names = spec.class_names if len(spec.class_names) == k else [str(i) for i in range(k)]
        folders = [
            name.replace("/", "_").replace("\\", "_") or str(i) for i, name in enumerate(names)
        ]
        return [(folders[i], i, n // k + (i < n % k)) for i in range(k)]

    def draw_chunks(
        self, count: int, batch_size: int, gen: torch.Generator, y: int | None, bar: Any
    ) -> Iterator[Tensor]:
        """``count`` samples on the CPU in chunks of ``batch_size`` (of class ``y`` if given),
        the noise drawn from ``gen``; advances ``bar``."""
        for start in range(0, count, batch_size):
            b = min(batch_size, count - start)
            kwargs = {} if y is None else {"label": y}
            yield self.model.sample(b, generator=gen, **kwargs).cpu()
            bar.update(b)

    @contextmanager
    def eval_mode(self) -> Iterator[None]:
        """The model in eval mode, its training mode restored after."""
        was_training = self.model.training
        self.model.eval()
        try:
            yield
        finally:
            self.model.train(was_training)

    def translate(self, images: Tensor, *, direction: str = "AtoB") -> Tensor:
        """Translate ``images`` (B, C, H, W) in [-1, 1] at the run's size ("AtoB": domain A's
        channels in, B's out); returns (B, C', H, W) on the CPU, with EMA weights when kept."""
        direction_key(direction)  # AtoB or BtoA, else one line
        if direction not in self.model.directions():
            raise GankitError(f"this {self.cfg.model} run has no {direction} generator")
        spec = self.data.spec
        shape = tuple(spec.shape if direction == "AtoB" else spec.shape_b)
        if not isinstance(images, Tensor) or tuple(images.shape[1:]) != shape:
            got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise GankitError(
                f"images of shape {got}: {direction} takes (B, {', '.join(map(str, shape))}) "
                "in [-1, 1] (`gankit translate` resizes image files for you)"
            )
        with self.averaged():
            parts = [
                self.model.translate(to_device(images[i : i + 256], self.device), direction)
                for i in range(0, len(images), 256)
            ]
        return torch.cat(parts).cpu()

    def evaluate(self, n: int | None = None, *, inception: int = 0) -> dict[str, Any]:
        """Score the run now: {"step", "checkpoint", "n", "notes", then the metrics}, the JSON
        `gankit eval` prints.

        Args:
            n: samples (or test examples per side) to score; default the run's ``eval_samples``.
            inception: also the Inception FID of this many samples (images; ~0.2 s per image on
                2 CPU cores; needs `gankit data fetch inception`).

        ``notes`` names every score this run cannot compute and the command that enables it.
        """
        n = self.cfg.train.eval_samples if n is None else n
        if n < 10:
            raise GankitError(f"n={n}: evaluate at least 10 samples")
        if inception < 0 or inception > n:
            raise GankitError(f"inception={inception}: give 0..{n} (at most n samples)")
        if inception:
            from gankit.metrics.fid import load_inception

            load_inception()  # a missing network fails now, not after the other scores
        head = {
            "step": self.step,
            "checkpoint": self.checkpoint.name if self.checkpoint else None,
            "n": n,
            "notes": self.evaluator.unavailable(),
            # how the evaluated weights were trained (as their checkpoint records), else now
            "resolved": self.trained_with or self.resolved,
        }
        return {**head, **self.metrics(n, inception)}

    def resume(self, steps: int | None = None, *, progress: bool = False) -> "Run":
        """Continue this run from the last checkpoint in its directory to ``steps`` generator
        steps in all (default: its configured total), exactly as an uninterrupted run would;
        returns the continued run (a new object)."""
        if self.dir is None:
            raise GankitError("this run has no directory: train it with gankit.train first")
        overrides = [f"progress={str(progress).lower()}"]
        overrides += [] if steps is None else [f"steps={steps}"]
        run = Run.from_checkpoint(latest_checkpoint(self.dir), str(self.device), overrides)
        Trainer(run, self.dir).fit()
        return run
