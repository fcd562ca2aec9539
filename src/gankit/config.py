"""Typed run configuration: dataclass defaults < family defaults < YAML file < CLI ``key=value``.

A run's ``config.yaml`` has four keys: ``model`` (family name), ``data`` (dataset name or path),
``train`` (:class:`TrainConfig` fields) and ``model_config`` (the family's config fields).
CLI overrides are flat (``seed=3``, ``lr=1e-4``) or dotted (``train.seed=3``); a key that exists
nowhere fails with the closest valid names.
"""

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gankit.errors import GankitError


def option(default: Any, help: str, **checks: Any) -> Any:
    """A dataclass field whose ``help`` is the CLI documentation and ``checks`` its bounds."""
    return field(default=default, metadata={"help": help, **checks})


def option_rows(cfg: Any) -> list[tuple[str, str, str, str]]:
    """(name, type, default, help) of each field of a config dataclass or instance.

    The default is the instance's value (or the class default), as ``repr``; the help is what
    :func:`option` stored in the field metadata ("" when a field has none). For generated docs.
    """
    hints = _hints(cfg if isinstance(cfg, type) else type(cfg))
    rows = []
    for f in dataclasses.fields(cfg):
        if not isinstance(cfg, type):
            value = getattr(cfg, f.name)
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = None
        rows.append((f.name, _doc_type(hints[f.name]), repr(value), f.metadata.get("help", "")))
    return rows


def _doc_type(tp: Any) -> str:
    """A field type as a reader writes it: ``tuple[float, ...]``, ``int | None``, ``a | b``."""
    if typing.get_origin(tp) is None:
        return getattr(tp, "__name__", str(tp))
    if typing.get_origin(tp) is Literal:
        return _type_name(tp)
    return str(tp).replace("typing.", "")


@dataclass
class TrainConfig:
    """Settings of the training loop, shared by every GAN family."""

    steps: int = option(5000, "generator updates to run", min=1)
    batch_size: int = option(256, "samples per batch", min=1)
    seed: int = option(0, "seed for weights, noise and data order", min=0)
    image_size: int = option(0, "resize images to this side (0 keeps the dataset's size)", min=0)
    device: str = option("auto", "auto (CUDA when present, else CPU), cpu, cuda or cuda:N")
    stream: Literal["auto", "true", "false"] = option(
        "auto",
        "trainA/trainB folders: decode the train images batch by batch from disk (true) or "
        "into memory at the start (false); auto streams when they would take more than an "
        "eighth of this machine's memory. A run resumes in the mode it started in",
    )
    workers: int = option(
        -1, "processes decoding a streamed folder ahead of training (-1: min(4, CPUs))", min=-1
    )
    precision: Literal["fp32", "bf16", "auto"] = option(
        "fp32",
        "training arithmetic: fp32, bf16 (autocast of the training step's forward passes and "
        "losses; weights, optimiser state and evaluation stay fp32) or auto (bf16 where the "
        "device computes it natively: CUDA with bf16, a CPU with AVX-512 BF16 or AMX)",
    )
    impl: Literal["auto", "torch", "gankit"] = option(
        "auto",
        "training kernels: gankit (its CPU convolution weight-gradient GEMMs, channels-last "
        "weights, its fused Adam), torch (nn.Conv2d/ConvTranspose2d, cuDNN on CUDA, "
        "torch.optim.Adam(fused=True)) or auto (torch on CUDA; on a CPU the one measured "
        "faster for the family, see docs/benchmarks.md)",
    )
    compile: bool = option(
        False,
        "torch.compile each network's forward in place (weights and checkpoints unchanged); "
        "a network differentiated twice (a gradient penalty's critic) stays eager",
    )
    log_every: int = option(50, "steps between metrics.jsonl/TensorBoard loss records", min=1)
    sample_every: int = option(1000, "steps between sample images in samples/", min=1)
    eval_every: int = option(1000, "steps between metric evaluations", min=1)
    ckpt_every: int = option(1000, "steps between checkpoints", min=1)
    keep_last: int = option(3, "checkpoints kept (older ones are deleted)", min=1)
    eval_samples: int = option(2000, "generated samples per evaluation", min=10)
    ema: bool = option(
        False, "keep an exponential moving average of the generator (default: on for images)"
    )
    ema_decay: float = option(0.999, "EMA decay per step", min=0.0, max=1.0)
    progress: bool = option(
        True,
        "show progress with live losses: a bar on a terminal, else a plain line every few log "
        "windows on stderr",
    )


@dataclass
class RunConfig:
    """Everything needed to rebuild a run: stored as config.yaml and inside every checkpoint."""

    model: str
    data: str
    train: TrainConfig
    model_config: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "data": self.data,
            "train": _plain(dataclasses.asdict(self.train)),
            "model_config": _plain(dataclasses.asdict(self.model_config)),
        }


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """Tuples become lists so that yaml.safe_dump and weights-only checkpoints accept them."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(str(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the field type ``tp``, or fail naming the key and type."""
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return coerce(value, args[0], key)
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) and str(value).lower() in choices:  # YAML `stream: true`
            value = str(value).lower()
        if value not in choices:
            raise GankitError(f"{key}={value!r} is not one of {', '.join(map(str, choices))}")
        return value
    if origin is tuple:
        parts = value.split(",") if isinstance(value, str) else value
        if not isinstance(parts, list | tuple):
            raise GankitError(f"{key}={value!r}: expected a comma-separated list like 0.5,0.999")
        item = typing.get_args(tp)[0]
        return tuple(coerce(p, item, key) for p in parts)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise GankitError(f"{key}={value!r} is not a boolean: use true or false")
    if tp in (int, float):
        if isinstance(value, bool):
            raise GankitError(f"{key}={value!r} is not a number")
        try:
            number = float(value)
            if not math.isfinite(number):  # nan slips past every min/max bound
                raise ValueError
            if tp is int:
                if not number.is_integer():
                    raise ValueError
                return int(number)
            return number
        except (TypeError, ValueError, OverflowError):  # OverflowError: ints beyond float range
            raise GankitError(f"{key}={value!r} is not a valid {tp.__name__}") from None
    if tp is str:
        return str(value)
    raise GankitError(f"{key}: unsupported field type {_type_name(tp)}")


def check_bounds(cfg: Any, prefix: str = "") -> None:
    """Raise a GankitError for any field outside its declared ``min``/``max``."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if lo is not None and value < lo:
            raise GankitError(f"{prefix}{f.name}={value} is too small: it must be >= {lo}")
        if hi is not None and value > hi:
            raise GankitError(f"{prefix}{f.name}={value} is too large: it must be <= {hi}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def apply(cfg: Any, values: dict[str, Any], section: str) -> Any:
    """Return a copy of dataclass ``cfg`` with ``values`` coerced and set; unknown keys fail."""
    if not isinstance(values, dict):  # e.g. a YAML list or number where a section belongs
        raise GankitError(
            f"{section} must be a mapping of key: value, not a {type(values).__name__}"
        )
    hints = _hints(type(cfg))
    for key in values:
        if key not in hints:
            raise unknown_key(f"{section}.{key}", [f"{section}.{k}" for k in hints])
    new = {k: coerce(v, hints[k], k) for k, v in values.items()}
    out = dataclasses.replace(cfg, **new)
    check_bounds(out)
    return out


def unknown_key(key: str, valid: list[str]) -> GankitError:
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(valid)}"
    return GankitError(f"unknown config key {key!r}{hint}")  # repr: one line, whatever it holds


def parse_overrides(items: list[str]) -> list[tuple[str, str]]:
    """Split CLI ``key=value`` items; anything else is a clear error."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise GankitError(f"cannot read {item!r}: overrides are key=value, e.g. seed=3")
        pairs.append((key.strip(), value.strip()))
    return pairs


def route_overrides(
    pairs: list[tuple[str, str]], train: TrainConfig, model_cfg: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send each flat or dotted key to the train or model_config section."""
    train_keys, model_keys = set(_hints(TrainConfig)), set(_hints(type(model_cfg)))
    to_train, to_model = {}, {}
    for key, value in pairs:
        section, _, name = key.rpartition(".")
        if section in ("", "train") and name in train_keys:
            to_train[name] = value
        elif section in ("", "model_config") and name in model_keys:
            to_model[name] = value
        else:
            valid = sorted(train_keys | model_keys)
            raise unknown_key(key, valid)
    return to_train, to_model


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config YAML (safe loader) and check its top-level layout."""
    p = Path(path)
    if not p.is_file():
        raise GankitError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise GankitError(f"{p} is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: a well-formed but impossible value (2001-13-01, !!float abc);
        # RecursionError: brackets nested thousands deep
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise GankitError(f"{p} is not valid YAML{where}: fix the syntax") from None
    if not isinstance(data, dict):
        raise GankitError(f"{p} must hold a mapping with keys model, data, train, model_config")
    allowed = ["model", "data", "train", "model_config"]
    for key in data:
        if key not in allowed:
            raise unknown_key(str(key), allowed)
    for key in ("model", "data"):
        if key in data and not isinstance(data[key], str):
            raise GankitError(f"{p}: {key} must be a name (text), not {type(data[key]).__name__}")
    return data


def save_yaml(data: dict[str, Any], path: Path) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
