"""``gankit export``: one generator of a run as a self-contained ``torch.export`` program.

The ``.pt2`` file needs torch alone, not gankit::

    g = torch.export.load("sevens.pt2").module()
    images = g(torch.randn(8, 100), torch.full((8,), 7))   # a cGAN: z and class indices

Its inputs, output and provenance are stored beside the graph as ``gankit.json`` (read it with
``torch.export.load(path, extra_files={"gankit.json": ""})``). The batch size is free. The
weights are the ones sampling uses (the EMA copy when the run kept one), and gankit's own
convolutions (``gankit.conv``, a training-speed device) are exported as torch's, which compute
the same values. Before the file appears it is loaded back and checked against gankit's model on
fresh inputs of two batch sizes; a failed check leaves no file.
"""

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit import conv
from gankit import nn as gnn
from gankit.errors import GankitError
from gankit.models.base import DIRECTIONS
from gankit.runs import SavedRun, direction_key, load_generator, saved_run

# outputs are in [-1, 1] (images) or data units (points); one 8-bit grey level is 2/255 ≈ 0.008
PARITY_TOLERANCE = 1e-3
METADATA = "gankit.json"


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


def export_generator(path: Path, out: Path, direction: str | None) -> tuple[dict[str, Any], float]:
    """Write generator of the checkpoint ``path`` to ``out`` (.pt2); its metadata and the largest
    difference to gankit's model found by the parity check."""
    if out.suffix != ".pt2":
        raise GankitError(f"--out {out}: give a .pt2 file name (torch.export's format)")
    saved = saved_run(path)
    if saved.cls.needs_inputs:
        key = direction_key(direction or "AtoB")
    elif direction is not None:
        raise GankitError(f"{saved.cfg.model} has one generator: --direction is for translation")
    else:
        key = "generator"
    net, ema = load_generator(saved, key)
    inputs = example_inputs(saved, key, 4, seed=0)
    with torch.no_grad():
        try:
            program = torch.export.export(
                plain_torch(net), inputs, dynamic_shapes=_batch_dims(inputs)
            )
        except Exception as exc:  # torch.export raises many types; its text is pages long
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            raise GankitError(
                f"torch.export could not capture the {key} of {saved.cfg.model} "
                f"({type(exc).__name__}: {reason}); please report this with the run's config"
            ) from None
        meta = describe(saved, key, ema, net(*inputs))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".pt2")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        torch.export.save(program, tmp, extra_files={METADATA: json.dumps(meta)})
        diff = parity(tmp, net, saved, key)
        if not diff <= PARITY_TOLERANCE:
            raise GankitError(
                f"the exported generator differs from gankit's by {diff:.2g} (> "
                f"{PARITY_TOLERANCE}): nothing written; please report this with the run's config"
            )
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes it private; the user's umask decides
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return meta, diff


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def parity(file: Path, net: nn.Module, saved: SavedRun, key: str) -> float:
    """Largest |exported − gankit| over fresh inputs at batch sizes 1 and 7, the file loaded
    back as a user would load it."""
    loaded = torch.export.load(file).module()
    worst = 0.0
    with torch.no_grad():
        for n, seed in ((1, 1), (7, 2)):
            inputs = example_inputs(saved, key, n, seed)
            worst = max(worst, (loaded(*inputs) - net(*inputs)).abs().max().item())
    return worst


def run_export(run_dir: str, out: str, direction: str | None, ckpt: str | None) -> str:
    """``gankit export``: returns the one-line summary."""
    from gankit import runs

    run = runs.require_run(run_dir)
    path = Path(ckpt) if ckpt else runs.latest_checkpoint(run)
    meta, diff = export_generator(path, Path(out), direction)
    args = ", ".join(f"{i['name']} {tuple(i['shape'])}" for i in meta["inputs"])
    return (
        f"exported {meta['model']} {meta['generator']} (step {meta['step']}"
        f"{', EMA' if meta['ema_weights'] else ''}) to {out}: inputs {args} → "
        f"{tuple(meta['output']['shape'])}; parity with gankit {diff:.1e}"
    )
