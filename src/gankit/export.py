"""``gankit export``: one generator of a run as a ``torch.export`` program (.pt2), an ONNX model
(.onnx, the ``gankit[onnx]`` extra) or safetensors weights with a model card (``gankit.weights``).

The ``.pt2`` file needs torch alone, not gankit::

    g = torch.export.load("sevens.pt2").module()
    images = g(torch.randn(8, 100), torch.full((8,), 7))   # a cGAN: z and class indices

Its inputs, output and provenance are stored beside the graph as ``gankit.json`` (read it with
``torch.export.load(path, extra_files={"gankit.json": ""})``). The batch size is free. The
weights are the ones sampling uses (the EMA copy when the run kept one), and gankit's own
convolutions (``gankit.conv``, a training-speed device) are exported as torch's, which compute
the same values. Before the file appears it is loaded back and checked against gankit's model on
fresh inputs of two batch sizes; a failed check leaves no file.

The ONNX model (torch's dynamo exporter, a free batch dimension) takes the same inputs by the same
names (``z``, ``y``; ``x`` for translators) and carries the same metadata as its ``gankit``
metadata entry; it is checked with onnxruntime the same way before it is written.
"""

import copy
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit import conv
from gankit import nn as gnn
from gankit.errors import GankitError
from gankit.models.base import DIRECTIONS
from gankit.runs import SavedRun, direction_key, load_generator, saved_run
from gankit.weights import (
    card_path,
    generator_from_card,
    model_card,
    read_weights,
    weights_bytes,
    write_shared,
    write_weights,
)

# outputs are in [-1, 1] (images) or data units (points); one 8-bit grey level is 2/255 ≈ 0.008
PARITY_TOLERANCE = 1e-3
METADATA = "gankit.json"
FORMATS = {"pt2": ".pt2", "onnx": ".onnx", "safetensors": ".safetensors"}
ONNX_EXTRA = "pip install 'gankit[onnx]'"


# gankit's training-speed subclasses and the torch modules whose parameters, state dict and
# values they share; torch's versions trace with a free batch size (the instance norm's
# per-sample loop would fix it)
PLAIN = {
    conv.Conv2d: nn.Conv2d,
    conv.ConvTranspose2d: nn.ConvTranspose2d,
    gnn.InstanceNorm2d: nn.InstanceNorm2d,
}


def plain_torch(net: nn.Module) -> nn.Module:
    """A copy of ``net`` made of torch's own modules (same parameters, same values), each
    parameter in contiguous storage of its own (``torch.export.save`` warns on channels-last
    or shared storage)."""
    net = copy.deepcopy(net)
    for module in net.modules():
        module.__class__ = PLAIN.get(type(module), type(module))
    for p in net.parameters():
        p.data = p.data.clone(memory_format=torch.contiguous_format)
    return net.eval()


def _source_shape(saved: SavedRun, key: str) -> tuple[int, ...]:
    """(C, H, W) of the images translation generator ``key`` reads."""
    return tuple(saved.spec.shape if key == DIRECTIONS["AtoB"] else saved.spec.shape_b)


def example_inputs(saved: SavedRun, key: str, n: int, seed: int) -> tuple[Tensor, ...]:
    """Inputs of generator ``key`` for ``n`` samples: (z,), (z, y) or (x,) for translation."""
    gen = torch.Generator().manual_seed(seed)
    spec = saved.spec
    if saved.cls.needs_inputs:
        return (torch.rand(n, *_source_shape(saved, key), generator=gen) * 2 - 1,)
    z = torch.randn(n, saved.cfg.model_config.z_dim, generator=gen)
    if saved.cls.conditional:
        return z, torch.randint(spec.num_classes, (n,), generator=gen)
    return (z,)


def describe(saved: SavedRun, key: str, ema: bool, output: Tensor) -> dict[str, Any]:
    """The metadata stored as ``gankit.json``: what goes in, what comes out, where it is from."""
    spec = saved.spec
    if saved.cls.needs_inputs:
        source = "A" if key == DIRECTIONS["AtoB"] else "B"
        inputs = [
            {
                "name": "x",
                "shape": ["batch", *_source_shape(saved, key)],
                "dtype": "float32",
                "meaning": f"domain-{source} images scaled to [-1, 1]",
            }
        ]
    else:
        z_dim = saved.cfg.model_config.z_dim
        inputs = [
            {"name": "z", "shape": ["batch", z_dim], "dtype": "float32", "meaning": "N(0, I)"}
        ]
        if saved.cls.conditional:
            inputs.append(
                {
                    "name": "y",
                    "shape": ["batch"],
                    "dtype": "int64",
                    "meaning": "class indices",
                    "classes": list(spec.class_names),
                }
            )
    images = output.dim() == 4
    return {
        "model": saved.cfg.model,
        "data": saved.cfg.data,
        "generator": key,
        "step": saved.step,
        "checkpoint": saved.path.name,
        "ema_weights": ema,
        "inputs": inputs,
        "output": {
            "shape": ["batch", *output.shape[1:]],
            "meaning": "images in [-1, 1] (channels first)" if images else "points (data units)",
        },
        "torch": torch.__version__,
    }


def _batch_dims(inputs: tuple[Tensor, ...]) -> tuple[dict[int, Any], ...]:
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    return tuple({0: batch} for _ in inputs)


def output_format(out: Path, fmt: str | None) -> str:
    """The format to write: ``fmt`` if given, else the one ``out``'s suffix names."""
    if fmt is None:
        fmt = next((name for name, suffix in FORMATS.items() if out.suffix == suffix), None)
        if fmt is None:
            raise GankitError(
                f"--out {out}: give a .pt2 file name (torch.export's format), .onnx (ONNX) or "
                ".safetensors (weights and a model card)"
            )
    if fmt not in FORMATS:
        raise GankitError(f"--format {fmt}: use {', '.join(FORMATS)}")
    if out.suffix != FORMATS[fmt]:
        raise GankitError(f"--out {out}: give a {FORMATS[fmt]} file name for --format {fmt}")
    return fmt


def generator_key(saved: SavedRun, direction: str | None) -> str:
    """The generator to export: a translator's direction (default AtoB), else the one there is."""
    if saved.cls.needs_inputs:
        return direction_key(direction or "AtoB")
    if direction is not None:
        raise GankitError(f"{saved.cfg.model} has one generator: --direction is for translation")
    return "generator"


def export_generator(
    path: Path, out: Path, direction: str | None, fmt: str | None = None
) -> tuple[dict[str, Any], dict[int, float]]:
    """Write a generator of the checkpoint ``path`` to ``out`` in format ``fmt`` (pt2, onnx or
    safetensors; default from the suffix); its metadata and the parity check's largest
    difference to gankit's model at each batch size."""
    fmt = output_format(out, fmt)
    if fmt == "onnx":
        require_onnx()  # before any loading: a missing extra is the first thing to know
    saved = saved_run(path)
    key = generator_key(saved, direction)
    net, ema = load_generator(saved, key)
    inputs = example_inputs(saved, key, 4, seed=0)
    with torch.no_grad():
        meta = describe(saved, key, ema, net(*inputs))
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "pt2":
        return meta, write_pt2(saved, key, net, inputs, meta, out)
    if fmt == "onnx":
        return meta, write_onnx(saved, key, net, inputs, meta, out)
    return meta, write_safetensors(saved, key, net, meta, out)


def check_parity(diffs: dict[int, float], what: str) -> None:
    """One line and nothing written when the exported ``what`` differs from gankit's model."""
    diff = max(diffs.values())
    if not diff <= PARITY_TOLERANCE:
        raise GankitError(
            f"the exported {what} differs from gankit's by {diff:.2g} (> {PARITY_TOLERANCE}): "
            "nothing written; please report this with the run's config"
        )


def capture_failed(exc: Exception, how: str, key: str, saved: SavedRun) -> GankitError:
    """One line for an exporter's failure (their messages run to pages)."""
    reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return GankitError(
        f"{how} could not capture the {key} of {saved.cfg.model} "
        f"({type(exc).__name__}: {reason}); please report this with the run's config"
    )


def write_pt2(
    saved: SavedRun, key: str, net: nn.Module, inputs: tuple[Tensor, ...], meta: dict, out: Path
) -> dict[int, float]:
    """``out`` as a torch.export program, loaded back and checked (:func:`differences`) before
    it appears."""
    with torch.no_grad():
        try:
            program = torch.export.export(
                plain_torch(net), inputs, dynamic_shapes=_batch_dims(inputs)
            )
        except Exception as exc:  # torch.export raises many types
            raise capture_failed(exc, "torch.export", key, saved) from None
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".pt2")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        torch.export.save(program, tmp, extra_files={METADATA: json.dumps(meta)})
        diffs = differences(torch.export.load(tmp).module(), net, saved, key)
        check_parity(diffs, "generator")
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes it private; the user's umask decides
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return diffs


def require_onnx() -> Any:
    """The onnxruntime module, or one line naming the extra to install."""
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise GankitError(
            f"ONNX export needs onnx, onnxscript and onnxruntime: {ONNX_EXTRA}"
        ) from None
    return onnxruntime


def onnx_model(
    saved: SavedRun, key: str, net: nn.Module, inputs: tuple[Tensor, ...], meta: dict
) -> bytes:
    """The generator as an ONNX model (torch's dynamo exporter, free batch size), with
    ``meta`` stored as the model's ``gankit`` metadata entry."""
    import logging
    import warnings

    names = [spec["name"] for spec in meta["inputs"]]
    output = "images" if len(meta["output"]["shape"]) == 4 else "points"
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # e.g. "torchvision is not installed. Skipping ..."
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                plain_torch(net),
                inputs,
                dynamo=True,
                dynamic_shapes=_batch_dims(inputs),
                input_names=names,
                output_names=[output],
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types
        raise capture_failed(exc, "torch.onnx.export", key, saved) from None
    finally:
        quiet.setLevel(level)
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = "gankit", json.dumps(meta)
    return proto.SerializeToString()


def onnx_parity(model: bytes, net: nn.Module, saved: SavedRun, key: str) -> dict[int, float]:
    """:func:`differences` of the model run by onnxruntime."""
    session = require_onnx().InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(*inputs: Tensor) -> Tensor:
        feed = {name: x.numpy() for name, x in zip(names, inputs, strict=True)}
        return torch.from_numpy(session.run(None, feed)[0])

    return differences(run, net, saved, key)


def write_onnx(
    saved: SavedRun, key: str, net: nn.Module, inputs: tuple[Tensor, ...], meta: dict, out: Path
) -> dict[int, float]:
    """``out`` as an ONNX model, its bytes checked with onnxruntime before they are written."""
    model = onnx_model(saved, key, net, inputs, meta)
    diffs = onnx_parity(model, net, saved, key)
    check_parity(diffs, "ONNX generator")
    write_shared(out, model)
    return diffs


def write_safetensors(
    saved: SavedRun, key: str, net: nn.Module, meta: dict, out: Path
) -> dict[int, float]:
    """``out`` (.safetensors) and its model card, once the generator rebuilt from those very
    bytes (as :func:`gankit.load_weights` rebuilds it) matches gankit's."""
    card = model_card(saved, net, meta, out.name)
    data = weights_bytes(net, card)
    diffs = differences(generator_from_card(*read_weights(data)), net, saved, key)
    check_parity(diffs, "weights")
    write_weights(out, data, card)
    return diffs


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def differences(
    exported: Callable[..., Tensor], net: nn.Module, saved: SavedRun, key: str
) -> dict[int, float]:
    """Largest |exported − gankit| over fresh inputs, at batch sizes 1 and 7."""
    found = {}
    with torch.no_grad():
        for n, seed in ((1, 1), (7, 2)):
            inputs = example_inputs(saved, key, n, seed)
            found[n] = (exported(*inputs) - net(*inputs)).abs().max().item()
    return found


def run_export(
    run_dir: str, out: str, direction: str | None, ckpt: str | None, fmt: str | None = None
) -> str:
    """``gankit export``: returns the one-line summary."""
    from gankit import runs

    run = runs.require_run(run_dir)
    path = Path(ckpt) if ckpt else runs.latest_checkpoint(run)
    meta, diffs = export_generator(path, Path(out), direction, fmt)
    args = ", ".join(f"{i['name']} {tuple(i['shape'])}" for i in meta["inputs"])
    parity = ", ".join(f"{d:.1e} at batch {n}" for n, d in diffs.items())
    card = f" (+ {card_path(Path(out)).name})" if Path(out).suffix == ".safetensors" else ""
    return (
        f"exported {meta['model']} {meta['generator']} (step {meta['step']}"
        f"{', EMA' if meta['ema_weights'] else ''}) to {out}{card}: inputs {args} → "
        f"{tuple(meta['output']['shape'])}; largest difference to gankit {parity}"
    )
