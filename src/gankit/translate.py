"""``gankit translate``: image files through one generator of a CycleGAN or DiscoGAN run.

Only the checkpoint is read: the model is rebuilt from its config and the data spec stored beside
it (``Run.state_dict()["spec"]``), so the training data need not be present. Only the weights of
the one generator used are loaded (g_ab for AtoB, g_ba for BtoA; its EMA weights when the run
kept them).

Each image may have any size and be greyscale or colour: it is converted to the source domain's
channel count, resized to the model's input size (Pillow bicubic), translated, resized back to its
own size and written as PNG with its own channel count (grey in, grey out; RGB in, RGB out).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from gankit.data.images import IMAGE_SUFFIXES, read_8bit, to_float
from gankit.errors import GankitError

BATCH = 64


@dataclass
class Translator:
    """One generator in eval mode and what it expects.

    Attributes:
        net: the generator (B, c_in, H, W) → (B, c_out, H, W), floats in [-1, 1].
        c_in, c_out: channel counts of the source and target domains.
        size: (H, W) of the model's inputs.
        description: "cyclegan step 2000 (EMA)" and the like, for the summary line.
    """

    net: nn.Module
    c_in: int
    c_out: int
    size: tuple[int, int]
    description: str


def load_translator(path: Path, direction: str, device: torch.device) -> Translator:
    """The ``direction`` generator of the run checkpointed at ``path``; one-line errors for a
    non-translation run, a checkpoint without its data spec, or a missing generator."""
    from gankit.runs import direction_key, load_generator, saved_run

    key = direction_key(direction)
    saved = saved_run(path)
    if not saved.cls.needs_inputs:
        raise GankitError(
            f"{saved.cfg.model} is not a translation model: gankit translate needs a cyclegan or "
            "discogan run (use gankit sample)"
        )
    spec = saved.spec
    if spec.kind != "unpaired":
        raise GankitError(
            f"{saved.cfg.model} on {spec.name} translates {spec.kind}, not image files"
        )
    net, ema = load_generator(saved, key)
    c_a, c_b = spec.shape[0], spec.shape_b[0]
    c_in, c_out = (c_a, c_b) if direction == "AtoB" else (c_b, c_a)
    desc = f"{saved.cfg.model} step {saved.step}{' (EMA)' if ema else ''}"
    size = (int(spec.shape[1]), int(spec.shape[2]))
    return Translator(net.to(device), c_in, c_out, size, desc)


def input_files(path: Path) -> list[Path]:
    """``path`` itself, or the image files directly inside the folder ``path`` (sorted)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise GankitError(f"--input {path} does not exist: give an image file or a folder")
    files = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise GankitError(f"--input {path} holds no {'/'.join(IMAGE_SUFFIXES)} images")
    return files


def read_image(path: Path) -> Image.Image:
    """8-bit "L" (greyscale modes) or "RGB" (everything else; alpha dropped) pixels of ``path``."""
    return read_8bit(path)[0]


def _to_tensor(im: Image.Image, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """(channels, H, W) float in [-1, 1]: ``im`` converted to the channels, resized (bicubic)."""
    im = im.convert("L" if channels == 1 else "RGB").resize(
        (size[1], size[0]), Image.Resampling.BICUBIC
    )
    pixels = np.asarray(im)
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    return to_float(torch.from_numpy(pixels.copy()).permute(2, 0, 1))


def _to_image(x: torch.Tensor, mode: str, size_wh: tuple[int, int]) -> Image.Image:
    """A (C, H, W) float image in [-1, 1] as a Pillow image of ``mode`` and size (bicubic)."""
    pixels = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    arr = pixels.permute(1, 2, 0).numpy()
    im = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    if im.size != size_wh:
        im = im.resize(size_wh, Image.Resampling.BICUBIC)
    return im.convert(mode)


@torch.no_grad()
def translate_files(translator: Translator, files: list[Path], out_dir: Path) -> list[Path]:
    """Translate ``files`` into ``out_dir/<stem>.png``; every file is read before any is written."""
    outputs = [out_dir / f"{p.stem}.png" for p in files]
    seen: dict[Path, Path] = {}
    for src, dst in zip(files, outputs, strict=True):
        if dst in seen:
            raise GankitError(f"{seen[dst].name} and {src.name} would both be written to {dst}")
        seen[dst] = src
    translated = translate_images(translator, [read_image(p) for p in files])
    out_dir.mkdir(parents=True, exist_ok=True)
    for im, dst in zip(translated, outputs, strict=True):
        im.save(dst)
    return outputs


@torch.no_grad()
def translate_images(translator: Translator, images: list[Image.Image]) -> list[Image.Image]:
    """Each image ("L" or "RGB", as :func:`read_image` gives) translated and resized back to its
    own size and mode (`gankit translate` and `gankit serve`)."""
    x = torch.stack([_to_tensor(im, translator.c_in, translator.size) for im in images])
    device = next(translator.net.parameters()).device
    y = torch.cat(
        [translator.net(x[i : i + BATCH].to(device)).cpu() for i in range(0, len(x), BATCH)]
    )
    return [_to_image(fake, im.mode, im.size) for im, fake in zip(images, y, strict=True)]


def run_translate(
    run_dir: str, input_path: str, direction: str, out: str, ckpt: str | None, device: str
) -> str:
    """``gankit translate``: returns the one-line summary."""
    from gankit import runs
    from gankit.device import resolve_device

    run = runs.require_run(run_dir)
    path = Path(ckpt) if ckpt else runs.latest_checkpoint(run)
    translator = load_translator(path, direction, resolve_device(device))
    files = input_files(Path(input_path))
    written = translate_files(translator, files, Path(out))
    return (
        f"translated {len(written)} image{'s' * (len(written) != 1)} {direction} with "
        f"{translator.description} ({path.name}) into {out}"
    )
