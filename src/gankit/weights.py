"""A generator's weights as safetensors plus a JSON model card, and :func:`load_weights`.

``gankit export RUN --format safetensors --out G.safetensors`` writes ``G.safetensors`` (the
weights sampling uses: the EMA copy when the run kept one) and ``G.card.json`` beside it: the
architecture, the training config, the data, the run's last evaluation with its protocol, and how
to load it. The card is also stored in the safetensors header (key ``gankit``), so the weights
file alone is enough for::

    g = gankit.load_weights("G.safetensors")      # the generator module, eval mode, CPU
    images = g(torch.randn(8, 100), torch.full((8,), 7))
"""

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit import checkpoint
from gankit.config import apply
from gankit.data import DataSpec
from gankit.errors import GankitError
from gankit.evaluate import EVAL_SEED
from gankit.runs import SavedRun, model_class

CARD_KEY = "gankit"  # the safetensors header entry holding the card


def card_path(weights: Path) -> Path:
    """``G.card.json`` beside ``G.safetensors``."""
    return weights.with_suffix(".card.json")


def last_evaluation(run_dir: Path, step: int) -> dict[str, Any] | None:
    """The run's latest metrics.jsonl record with ``eval/`` scores at or before ``step`` (its
    protocol included), or None when it has none."""
    found = None
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by a crash
            continue
        if record.get("step", 0) <= step and any(k.startswith("eval/") for k in record):
            found = {k: v for k, v in record.items() if k != "time"}
    return found


def with_protocol(record: dict[str, Any] | None, saved: SavedRun) -> dict[str, Any] | None:
    """``record`` with its evaluation protocol: image scores store theirs; toy and translation
    scores get the one :mod:`gankit.evaluate` follows (fixed seed, n samples, EMA weights)."""
    if record is None or "protocol" in record:
        return record
    protocol = {
        "seed": EVAL_SEED,
        "n": record.get("n", saved.cfg.train.eval_samples),
        "ema": saved.cfg.train.ema,
        "step": record.get("step"),
        "scores": "gankit.evaluate, as `gankit eval` computes them",
    }
    return {**record, "protocol": protocol}


def load_snippet(file_name: str, meta: dict[str, Any]) -> str:
    """A few lines of Python that load the weights and call the generator."""
    args = []
    for spec in meta["inputs"]:
        shape = ", ".join(map(str, spec["shape"][1:]))
        if spec["name"] == "y":
            args.append("torch.zeros(8, dtype=torch.long)")
        elif spec["name"] == "x":
            args.append(f"torch.rand(8, {shape}) * 2 - 1")
        else:
            args.append(f"torch.randn(8, {shape})")
    return (
        "import gankit, torch\n"
        f"g = gankit.load_weights({file_name!r})\n"
        "with torch.no_grad():\n"
        f"    out = g({', '.join(args)})  # {meta['output']['meaning']}\n"
    )


def model_card(saved: SavedRun, net: nn.Module, meta: dict[str, Any], name: str) -> dict:
    """The JSON card: what the weights are, where they come from, how well the run scored."""
    spec, cfg = saved.spec, saved.cfg
    config = cfg.to_dict()
    return {
        "format": "gankit generator weights (safetensors)",
        "gankit_version": checkpoint.VERSION,  # as checkpoints record it
        "torch": torch.__version__,
        "architecture": {
            "family": cfg.model,
            "generator": meta["generator"],
            "module": type(net).__name__,
            "parameters": sum(p.numel() for p in net.parameters()),
            "model_config": config["model_config"],
        },
        "weights": {
            "file": name,
            "ema": meta["ema_weights"],
            "step": saved.step,
            "checkpoint": saved.path.name,
        },
        "training": config["train"],
        "data": {
            "name": cfg.data,
            "kind": spec.kind,
            "shape": list(spec.shape),
            "classes": list(spec.class_names),
            "spec": spec.to_dict(),
        },
        "inputs": meta["inputs"],
        "output": meta["output"],
        "metrics": with_protocol(last_evaluation(saved.path.parent.parent, saved.step), saved),
        "load": load_snippet(name, meta),
    }


def generator_from_card(card: dict[str, Any], tensors: dict[str, Tensor]) -> nn.Module:
    """Rebuild the generator a card describes and load ``tensors`` into it (eval mode)."""
    try:
        arch = card["architecture"]
        cls = model_class(arch["family"])
        model_cfg = apply(cls.Config(), arch["model_config"], "model_config")
        spec = DataSpec.from_dict(card["data"]["spec"])
    except (KeyError, TypeError) as exc:
        raise GankitError(f"the model card lacks {exc}: export the run again") from None
    import warnings

    with warnings.catch_warnings():  # construction notes were shown at training time
        warnings.simplefilter("ignore")
        model = cls(model_cfg, spec)
    net = model.generators()[arch["generator"]]
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:
        reason = " ".join(str(exc).split())[:120]
        raise GankitError(
            f"the weights do not fit the model the card describes ({reason})"
        ) from None
    return net.eval()


def weights_bytes(net: nn.Module, card: dict[str, Any]) -> bytes:
    """The safetensors file: contiguous, unshared copies of ``net``'s state, the card inside."""
    from safetensors.torch import save

    tensors = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    return save(tensors, metadata={CARD_KEY: json.dumps(card)})


def write_shared(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, with the mode the user's umask gives a new file
    (the atomic write's temp file is private, as checkpoints should be)."""
    checkpoint.write_atomic(path, lambda f: f.write(data))
    mask = os.umask(0)
    os.umask(mask)
    path.chmod(0o666 & ~mask)


def write_weights(out: Path, data: bytes, card: dict[str, Any]) -> None:
    """Write the safetensors bytes ``data`` to ``out`` and ``card`` beside it, each atomically."""
    write_shared(out, data)
    write_shared(card_path(out), (json.dumps(card, indent=2) + "\n").encode())


def read_weights(data: bytes) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The card and tensors of a safetensors file's bytes written by :func:`write_weights`."""
    from safetensors.torch import load

    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    card = (header.get("__metadata__") or {}).get(CARD_KEY)
    if card is None:
        raise GankitError("these weights carry no gankit model card: export them with gankit")
    return json.loads(card), load(data)


def load_weights(path: str | Path, *, device: str = "cpu") -> nn.Module:
    """The generator written by ``gankit export --format safetensors``, in eval mode.

    Args:
        path: the ``.safetensors`` file (its card, stored inside it, says what to build).
        device: where to put it ("cpu", "cuda", ...).

    Returns:
        The generator module: ``g(z)``, ``g(z, y)`` for a cgan, ``g(x)`` for a translator; see
        the card's ``inputs`` (``G.card.json``) for shapes and ranges.
    """
    from safetensors import SafetensorError

    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise GankitError(f"cannot read {file} ({exc.strerror or exc})") from None
    try:
        card, tensors = read_weights(data)
    except (ValueError, UnicodeDecodeError, SafetensorError) as exc:
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise GankitError(f"{file} is not a safetensors file of gankit ({reason})") from None
    return generator_from_card(card, tensors).to(device)
