"""Hostile image folders: what gankit does with each kind of bad or unusual file.

The behaviour (also in docs/reliability.md, "Bad inputs"):
* an image Pillow can decode is read, converted to the folder's mode (8-bit greyscale or RGB):
  CMYK, palette (with or without transparency), 16-bit greyscale (÷257), alpha dropped, any size
  resized; the run's first lines (``gankit: note: ...``) say what was converted;
* a file that is no image, is cut short, or has more pixels than Pillow's decompression-bomb
  limit (``Image.MAX_IMAGE_PIXELS``, judged from its header before decoding) stops the load with
  one GankitError line naming the first such file and counting the others;
* hidden files (``._x.png`` from macOS) and other suffixes are not looked at.
"""

import io
import resource
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.data import images
from gankit.data.images import load_image_dataset
from gankit.data.unpaired import load_unpaired_folder
from gankit.errors import GankitError

COLOUR = (200, 30, 60)
GREY = 100
SIDE = 8
SLOW = pytest.mark.slow  # trains (the lipschitz diagnostics of the final evaluation take seconds)


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def solid(mode: str = "RGB", size: tuple[int, int] = (SIDE, SIDE)) -> Image.Image:
    return Image.new("RGB", size, COLOUR) if mode == "RGB" else Image.new("L", size, GREY)


def noise_png() -> bytes:
    """A PNG of random pixels: its compressed data is long enough to cut in the middle."""
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "PNG")


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims width x height RGB pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 4096)  # the first rows only: a full file would be gigabytes
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def paletted() -> Image.Image:
    """``solid()`` as a palette image holding its exact colour (not the web palette's nearest)."""
    return solid().convert("P", palette=Image.Palette.ADAPTIVE)


def palette_with_alpha_table() -> bytes:
    """A palette PNG with a tRNS table (Pillow warns when converting these straight to RGB)."""
    im = paletted()
    return encode(im, "PNG", transparency=bytes([0] + [255] * 255))


def rgba_transparent() -> bytes:
    return encode(Image.new("RGBA", (SIDE, SIDE), (*COLOUR, 0)), "PNG")


def grey16() -> bytes:
    return encode(Image.fromarray(np.full((SIDE, SIDE), 257 * GREY, dtype=np.uint16)), "PNG")


def huge() -> bytes:
    return encode(solid(size=(4000, 4000)), "PNG", compress_level=1)


# name → (file name, bytes maker, grey?, expected pixel value, tolerance); read correctly
READ: dict[str, tuple[str, Callable[[], bytes], bool, int | tuple[int, ...], int]] = {
    "cmyk-jpeg": ("cmyk.jpg", lambda: encode(solid().convert("CMYK"), "JPEG"), False, COLOUR, 8),
    "palette": ("palette.png", lambda: encode(paletted(), "PNG"), False, COLOUR, 0),
    "palette-transparent-index": (
        "palette-t.png",
        lambda: encode(paletted(), "PNG", transparency=0),
        False,
        COLOUR,
        0,
    ),
    "palette-alpha-table": ("palette-a.png", palette_with_alpha_table, False, COLOUR, 0),
    "rgba-transparent": ("rgba.png", rgba_transparent, False, COLOUR, 0),
    "grey-alpha": ("la.png", lambda: encode(solid("L").convert("LA"), "PNG"), True, GREY, 0),
    "grey-16bit": ("grey16.png", grey16, True, GREY, 0),
    "bilevel": (
        "one-bit.png",
        lambda: encode(Image.new("1", (SIDE, SIDE), 1), "PNG"),
        True,
        255,
        0,
    ),
    "1x1": ("tiny.png", lambda: encode(solid(size=(1, 1)), "PNG"), False, COLOUR, 0),
    "4000x4000": ("huge.png", huge, False, COLOUR, 0),
    "jpeg-named-png": ("really-a-jpeg.png", lambda: encode(solid(), "JPEG"), False, COLOUR, 8),
    "upper-case-suffix": ("SHOUT.PNG", lambda: encode(solid(), "PNG"), False, COLOUR, 0),
}

# name → (file name, bytes maker, the error's words); the load stops with one line
REFUSED: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "zero-bytes": ("empty.png", lambda: b"", "unreadable image (cannot identify image file"),
    "text-named-png": ("notes.png", lambda: b"not an image\n", "unreadable image (cannot identify"),
    "truncated-png": (
        "cut.png",
        lambda: noise_png()[:300],
        "unreadable image (image file is trunc",
    ),
    "truncated-jpeg": (
        "cut.jpg",
        lambda: encode(Image.open(io.BytesIO(noise_png())), "JPEG")[:400],
        "unreadable image",
    ),
    "bomb-60000x60000": ("bomb.png", lambda: png_header_only(60000, 60000), "too large to decode"),
    "bomb-10000x10000": ("bomb.png", lambda: png_header_only(10000, 10000), "too large to decode"),
}


def _class_folder(root: Path, name: str, data: bytes, grey: bool) -> Path:
    """root/things/{good.png, name}: the hostile file beside a good one of the same kind."""
    (root / "things").mkdir(parents=True)
    solid("L" if grey else "RGB").save(root / "things" / "good.png")
    (root / "things" / name).write_bytes(data)
    return root


def _unpaired_folder(root: Path, name: str, data: bytes, grey: bool) -> Path:
    """root/trainA/{good.png, name} and root/trainB/good.png."""
    for domain in ("trainA", "trainB"):
        (root / domain).mkdir(parents=True)
        solid("L" if grey else "RGB").save(root / domain / "good.png")
    (root / "trainA" / name).write_bytes(data)
    return root


def _load_both_splits(root: Path) -> list[torch.Tensor]:
    return [load_image_dataset(root, split, size=SIDE).images for split in ("train", "test")]


def _load_unpaired(root: Path) -> list[torch.Tensor]:
    data = load_unpaired_folder(root, SIDE)
    return [data.train_a.images, data.test_a.images]


LOADERS = {
    "class-folder": (_class_folder, _load_both_splits),
    "unpaired": (_unpaired_folder, _load_unpaired),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("case", sorted(READ))
def test_unusual_image_is_read_converted(tmp_path: Path, case: str, loader: str) -> None:
    name, make, grey, value, tolerance = READ[case]
    build, load = LOADERS[loader]
    root = build(tmp_path, name, make(), grey)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no Pillow warning reaches the user
        parts = load(root)
    assert sum(len(part) for part in parts) == 2  # both files, in one split or the other
    assert all(p.dtype == torch.uint8 and p.shape[1] == (1 if grey else 3) for p in parts)
    good = GREY if grey else COLOUR
    errors = [torch.cat([_off(part, v) for part in parts]) for v in (value, good)]  # per picture
    assert errors[0].min() <= tolerance, (case, errors)  # the unusual file
    assert torch.minimum(*errors).max() <= tolerance  # and the good file beside it


def _off(pictures: torch.Tensor, value: int | tuple[int, ...]) -> torch.Tensor:
    """Per picture (N, C, H, W), the largest distance of a pixel from ``value``."""
    expected = torch.tensor(value if isinstance(value, tuple) else (value,))
    return (pictures.to(torch.int16) - expected[None, :, None, None]).abs().flatten(1).amax(1)


def _one_line_error(call: Callable[[], object]) -> str:
    with pytest.raises(GankitError) as err:
        call()
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_file_stops_the_load_with_one_line(tmp_path: Path, case: str, loader: str) -> None:
    name, make, words = REFUSED[case]
    build, load = LOADERS[loader]
    root = build(tmp_path, name, make(), False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the bomb between 1x and 2x Pillow's limit only warns
        message = _one_line_error(lambda: load(root))
    assert f"{name}: {words}" in message and message.endswith("the file")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100, f"{case}: peak memory grew {grown_mb:.0f} MB"


def test_bomb_header_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(60000, 60000))
    assert len(path.read_bytes()) < 200  # the file is tiny, its header claims 3.6 G pixels
    message = _one_line_error(lambda: images.probe(path))
    assert "too large to decode safely (Image size (3600000000 pixels) exceeds limit" in message


def test_spaces_and_accents_in_folder_and_file_names(tmp_path: Path) -> None:
    solid().save(tmp_path / "x.png")
    for path in ("chats noirs/été 1.png", "chats noirs/Ça va.jpg", "chiens/über hund.png"):
        (tmp_path / path).parent.mkdir(exist_ok=True)
        (tmp_path / path).write_bytes((tmp_path / "x.png").read_bytes())
    (tmp_path / "x.png").unlink()
    train = load_image_dataset(tmp_path, "train", size=SIDE)
    assert train.classes == ["chats noirs", "chiens"] and len(train) == 2
    (tmp_path / "chats noirs" / "été 2.png").write_bytes(b"")
    message = _one_line_error(lambda: load_image_dataset(tmp_path))
    assert "chats noirs/été 2.png: unreadable image" in message


def test_several_bad_files_are_counted_in_one_line(tmp_path: Path) -> None:
    _class_folder(tmp_path, "a.png", b"", grey=False)
    for name in ("b.png", "c.jpg", "d.png", "e.bmp"):
        (tmp_path / "things" / name).write_bytes(b"junk")
    message = _one_line_error(lambda: load_image_dataset(tmp_path))
    assert "things/a.png: unreadable image" in message
    assert message.endswith("(4 more bad images: b.png, c.jpg, d.png, ...)")


def test_a_cut_file_in_the_held_out_split_fails_before_training(tmp_path: Path) -> None:
    (tmp_path / "things").mkdir()
    for i in range(9):
        solid().save(tmp_path / "things" / f"{i}.png")
    held = images.hold_out({"things": sorted((tmp_path / "things").iterdir())})[1]["things"]
    held[0].write_bytes(noise_png()[:300])  # decodes only at the first evaluation otherwise
    message = _one_line_error(lambda: load_image_dataset(tmp_path, "train"))
    assert f"{held[0].name}: unreadable image (image file is truncated" in message


def test_hidden_files_and_other_suffixes_are_ignored(tmp_path: Path) -> None:
    _class_folder(tmp_path, "._good.png", b"\x00\x05\x16\x07 AppleDouble", grey=False)
    (tmp_path / "things" / "notes.txt").write_text("not an image")
    (tmp_path / "things" / "anim.gif").write_bytes(b"GIF89a")
    assert len(load_image_dataset(tmp_path, "train")) == 1


def test_folder_over_the_memory_budget_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for split in ("train", "test"):  # no held-out split: a-big-first.png is the first image
        (tmp_path / split / "things").mkdir(parents=True)
        solid(size=(400, 400)).save(tmp_path / split / "things" / "a-big-first.png")
        for i in range(4):
            solid().save(tmp_path / split / "things" / f"small{i}.png")
    monkeypatch.setattr(images, "memory_budget", lambda: 2_000_000)
    message = _one_line_error(lambda: load_image_dataset(tmp_path))  # the first image sets 400x400
    assert f"{tmp_path}: 10 images at 400x400 need 5 MB of memory, over the 2 MB" in message
    assert message.endswith("set a smaller image size, e.g. image_size=64")
    assert len(load_image_dataset(tmp_path, size=32)) == 5


# --------------------------------------------------------------------------- through the CLI


def _cli(tmp_path: Path, capsys: pytest.CaptureFixture, root: Path, *extra: str) -> tuple[int, str]:
    code = main(
        ["train", "gan", "--data", str(root), "--out", str(tmp_path / "run"), "steps=2"]
        + ["batch_size=4", "eval_samples=10", "progress=false", *extra]
    )
    return code, capsys.readouterr().err


def test_cli_bad_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = _class_folder(tmp_path / "data", "empty.png", b"", grey=False)
    (root / "things" / "text.png").write_text("not an image")
    code, err = _cli(tmp_path, capsys, root)
    assert code == 2 and err.count("\n") == 1 and err.startswith("gankit: ")
    assert "unreadable image (cannot identify image file" in err  # one of the two is named,
    assert "(1 more bad images: " in err and "empty.png" in err and "text.png" in err  # + counted
    assert not (tmp_path / "run").exists()


def test_cli_one_pixel_images_need_an_image_size(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = _class_folder(tmp_path / "data", "tiny.png", READ["1x1"][1](), grey=False)
    (root / "things" / "good.png").write_bytes(READ["1x1"][1]())
    code, err = _cli(tmp_path, capsys, root)
    assert code == 2 and err.count("\n") == 1
    assert err.endswith(
        "need an even image side >= 2, got 1x1: set image_size, e.g. image_size=32\n"
    )


def _unusual_folder(root: Path) -> Path:
    (root / "things").mkdir(parents=True)
    for case in ("cmyk-jpeg", "palette-alpha-table", "rgba-transparent", "grey-16bit", "1x1"):
        name, make, *_ = READ[case]
        (root / "things" / name).write_bytes(make())
    return root


@pytest.mark.parametrize(
    "dry_run", [pytest.param(True, id="dry-run"), pytest.param(False, id="trains", marks=SLOW)]
)
def test_cli_unusual_folder_loads_and_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture, dry_run: bool
) -> None:
    root = _unusual_folder(tmp_path / "data")
    extra = ["--dry-run"] * dry_run
    code, err = _cli(tmp_path, capsys, root, f"image_size={SIDE}", *extra)
    assert code == 0 and "Warning" not in err and "Traceback" not in err
    assert "gankit: note: no test folder: held out" in err and "converted to RGB" in err
    assert (tmp_path / "run" / "checkpoints").is_dir() != dry_run
