"""Run directories and config resolution: what ``gankit train/sample/eval`` share.

A run directory holds ``config.yaml``, ``checkpoints/step_*.pt``, ``samples/*.png``,
``metrics.jsonl`` and TensorBoard events under ``tb/``.
"""

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from gankit import checkpoint
from gankit.config import (
    RunConfig,
    TrainConfig,
    apply,
    load_yaml,
    parse_overrides,
    route_overrides,
    unknown_key,
)
from gankit.data import data_kind
from gankit.errors import GankitError
from gankit.models import MODELS, GANModel

if TYPE_CHECKING:
    from gankit.data import DataSpec


def model_class(name: str) -> type[GANModel]:
    if name not in MODELS:
        raise unknown_key(name, sorted(MODELS)) from None
    return MODELS[name]


def resolve(
    model: str,
    data: str,
    yaml_values: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> RunConfig:
    """Dataclass defaults < the family's defaults (for this data kind) < YAML < CLI overrides."""
    yaml_values = yaml_values or {}
    cls = model_class(model)
    kind = data_kind(data)
    # an EMA generator is a cheap, reliable gain on images; on 2-D toy data it only lags
    train = apply(TrainConfig(ema=kind == "images"), cls.train_defaults, "train")
    train = apply(train, yaml_values.get("train") or {}, "train")
    model_cfg = apply(cls.Config(), cls.kind_defaults.get(kind, {}), "model_config")
    model_cfg = apply(model_cfg, yaml_values.get("model_config") or {}, "model_config")
    to_train, to_model = route_overrides(parse_overrides(overrides or []), train, model_cfg)
    return RunConfig(
        model, data, apply(train, to_train, "train"), apply(model_cfg, to_model, "model_config")
    )


def from_dict(values: dict[str, Any]) -> RunConfig:
    """Rebuild a RunConfig stored in config.yaml or a checkpoint."""
    return resolve(values["model"], values["data"], values)


def from_yaml_file(path: str | Path, model: str | None, data: str | None) -> RunConfig:
    values = load_yaml(path)
    model = model or values.get("model")
    data = data or values.get("data")
    if not model or not data:
        raise GankitError(f"{path} names no model/data: give them on the command line")
    return resolve(model, data, values)


def next_run_dir(root: Path, model: str, data: str) -> Path:
    """``runs/00003-wgan-gp-8gaussians``: numbered so runs sort by creation."""
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in root.iterdir() if (m := re.match(r"(\d{5})-", p.name))]
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


# the generator of a translation run that maps each way (`gankit translate`, `gankit export`)
DIRECTIONS = {"AtoB": "g_ab", "BtoA": "g_ba"}


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
    spec: "DataSpec"
    step: int


def saved_run(path: Path) -> SavedRun:
    """The checkpoint at ``path`` with its config and data spec (`gankit translate`, `export`)."""
    from gankit.trainer import spec_from_dict

    state = checkpoint.load(path)
    cfg = from_dict(state["config"])
    if not state.get("spec"):
        raise GankitError(
            f"{path} predates stored data specs: resume the run for one step "
            "(gankit train --resume RUN_DIR steps=N+1) to write a checkpoint this command can read"
        )
    return SavedRun(
        path, state, cfg, model_class(cfg.model), spec_from_dict(state["spec"]), state["step"]
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
