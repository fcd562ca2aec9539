"""Property tests: every reader of user input either returns a valid result or raises one
GankitError line, for any bytes or strings Hypothesis makes (never another exception type).

Each property runs twice: a bounded default run (``DEFAULT``) and a ``slow`` run with many
more examples (``MANY``, `make test-slow`). Both are derandomized and keep no example database,
so a CI failure reproduces on any machine.
"""

import gzip
import io
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gankit import checkpoint
from gankit.api import configure
from gankit.config import TrainConfig
from gankit.data.idx import DTYPES, read_idx
from gankit.data.images import load_image_dataset
from gankit.data.unpaired import load_unpaired_folder
from gankit.errors import GankitError

DEFAULT = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MANY = settings(DEFAULT, max_examples=600)
PROFILES = [
    pytest.param(DEFAULT, id="default"),
    pytest.param(MANY, id="many", marks=pytest.mark.slow),
]


def outcome(call: Callable[[], Any]) -> Any:
    """``call()``'s result, or None when it raised a GankitError of exactly one line."""
    try:
        return call()
    except GankitError as err:
        text = str(err)
        assert text and "\n" not in text and "\r" not in text, repr(text)
        return None


def run_property(profile: settings, strategy: st.SearchStrategy, check: Callable) -> None:
    """Run ``check(example)`` under ``profile`` for examples drawn from ``strategy``."""
    profile(given(strategy)(check))()


# --------------------------------------------------------------------------- IDX

DIMS = st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1))


@st.composite
def idx_files(draw: st.DrawFn) -> bytes:
    """Bytes that look like IDX: a plausible header (or not) and a payload near its size."""
    code = draw(st.one_of(st.sampled_from(sorted(DTYPES)), st.integers(0, 255)))
    ndim = draw(st.one_of(st.integers(0, 4), st.integers(0, 255)))
    dims = draw(st.lists(DIMS, min_size=ndim, max_size=ndim))
    header = bytes([0, 0, code, ndim]) + struct.pack(f">{ndim}I", *dims)
    itemsize = DTYPES[code].itemsize if code in DTYPES else 1
    size = int(np.prod(dims, dtype=object)) * itemsize if dims else 0
    slack = draw(st.integers(-3, 3))
    payload = draw(st.binary(min_size=max(0, min(size + slack, 200)), max_size=200))
    data = header[: draw(st.integers(0, len(header)))] if draw(st.booleans()) else header
    data += payload if size + slack > 200 else payload[: max(0, size + slack)]
    if draw(st.booleans()):
        data = gzip.compress(data, mtime=0)
        data = data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data
    return data


def _check_idx(folder: Path, data: bytes) -> None:
    path = folder / "x-idx"
    path.write_bytes(data)
    array = outcome(lambda: read_idx(path))
    if array is not None:
        assert isinstance(array, np.ndarray) and array.dtype.isnative
        assert array.flags.writeable


@pytest.mark.parametrize("profile", PROFILES)
def test_idx_any_bytes(profile: settings, tmp_path: Path) -> None:
    run_property(profile, st.binary(max_size=64), lambda data: _check_idx(tmp_path, data))


@pytest.mark.parametrize("profile", PROFILES)
def test_idx_plausible_files(profile: settings, tmp_path: Path) -> None:
    run_property(profile, idx_files(), lambda data: _check_idx(tmp_path, data))


# --------------------------------------------------------------------------- image folders

MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "F", "YCbCr"]
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP"}


@st.composite
def image_bytes(draw: st.DrawFn) -> tuple[str, bytes]:
    """(suffix, bytes): a small image of a random mode and format, perhaps damaged, or noise."""
    suffix = draw(st.sampled_from(sorted(FORMATS)))
    if draw(st.integers(0, 5)) == 0:
        return suffix, draw(st.binary(max_size=64))
    w, h = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**16))
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    im = Image.fromarray(rgb).convert(draw(st.sampled_from(MODES)))
    buffer = io.BytesIO()
    try:
        im.save(buffer, format=FORMATS[suffix])
    except (OSError, ValueError, KeyError):  # this format cannot hold this mode: use PNG
        buffer = io.BytesIO()
        im.convert("RGB").save(buffer, format="PNG")
    data = buffer.getvalue()
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    return suffix, data


FOLDERS = st.lists(st.lists(image_bytes(), min_size=1, max_size=3), min_size=1, max_size=3)
NAMES = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"), exclude_characters="/"),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in (".", "..") and not s.startswith("."))


def _write_folder(root: Path, classes: list[list[tuple[str, bytes]]], names: list[str]) -> None:
    for c, files in enumerate(classes):
        for i, (suffix, data) in enumerate(files):
            path = root / f"{names[c % len(names)]}{c}" / f"{i} {names[i % len(names)]}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def _check_folder(base: Path, classes: list[list[tuple[str, bytes]]], names: list[str]) -> None:
    root = Path(tempfile.mkdtemp(dir=base))
    _write_folder(root, classes, names)
    for split in ("train", "test"):
        data = outcome(lambda split=split: load_image_dataset(root, split, size=4))
        if data is not None:
            n, c, h, w = data.images.shape
            assert data.images.dtype == torch.uint8 and c in (1, 3) and (h, w) == (4, 4)
            assert len(data.labels) == n and set(data.labels.tolist()) <= set(range(len(classes)))


@pytest.mark.parametrize("profile", PROFILES)
def test_class_folder_any_files(profile: settings, tmp_path: Path) -> None:
    strategy = st.tuples(FOLDERS, st.lists(NAMES, min_size=1, max_size=3))
    run_property(profile, strategy, lambda ex: _check_folder(tmp_path, *ex))


def _check_unpaired(base: Path, a: list[tuple[str, bytes]], b: list[tuple[str, bytes]]) -> None:
    root = Path(tempfile.mkdtemp(dir=base))
    for domain, files in (("trainA", a), ("trainB", b)):
        (root / domain).mkdir()
        for i, (suffix, data) in enumerate(files):
            (root / domain / f"{i}{suffix}").write_bytes(data)
    data = outcome(lambda: load_unpaired_folder(root, 4))
    if data is not None:
        for part in (data.train_a, data.train_b, data.test_a, data.test_b):
            assert part.images.dtype == torch.uint8 and part.images.shape[1] in (1, 3)


@pytest.mark.parametrize("profile", PROFILES)
def test_unpaired_folder_any_files(profile: settings, tmp_path: Path) -> None:
    files = st.lists(image_bytes(), min_size=1, max_size=3)
    run_property(profile, st.tuples(files, files), lambda ex: _check_unpaired(tmp_path, *ex))


# --------------------------------------------------------------------------- config

KEYS = sorted(TrainConfig.__dataclass_fields__) + ["lr", "z_dim", "hidden", "loss", "nope"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
)
YAML_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SCALARS, inner, max_size=3)
)
SECTIONS = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.sampled_from(["gan", "wgan", "cgan", "nope"]), YAML_VALUES),
        "data": st.one_of(st.sampled_from(["8gaussians", "25gaussians", "nope"]), YAML_VALUES),
        "train": st.one_of(st.dictionaries(st.sampled_from(KEYS), YAML_VALUES), YAML_VALUES),
        "model_config": st.one_of(st.dictionaries(st.sampled_from(KEYS), YAML_VALUES), SCALARS),
    },
)
OVERRIDES = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.tuples(st.sampled_from(KEYS), st.text(max_size=10)).map("=".join),
        st.tuples(st.sampled_from(KEYS), SCALARS.map(str)).map("=".join),
    ),
    max_size=3,
)


def _check_config(folder: Path, text: bytes, overrides: list[str]) -> None:
    path = folder / "config.yaml"
    path.write_bytes(text)
    cfg = outcome(lambda: configure(None, None, config=path, overrides=overrides))
    if cfg is not None:
        assert yaml.safe_load(yaml.safe_dump(cfg.to_dict())) == cfg.to_dict()


def _yaml_text(values: dict[str, Any]) -> bytes:
    return yaml.safe_dump(values, allow_unicode=True).encode()


@pytest.mark.parametrize("profile", PROFILES)
def test_config_any_bytes_and_overrides(profile: settings, tmp_path: Path) -> None:
    strategy = st.tuples(st.binary(max_size=80), OVERRIDES)
    run_property(profile, strategy, lambda ex: _check_config(tmp_path, *ex))


@pytest.mark.parametrize("profile", PROFILES)
def test_config_any_yaml_values_and_overrides(profile: settings, tmp_path: Path) -> None:
    strategy = st.tuples(SECTIONS.map(_yaml_text), OVERRIDES)
    run_property(profile, strategy, lambda ex: _check_config(tmp_path, *ex))


@pytest.mark.parametrize("profile", PROFILES)
def test_config_overrides_alone(profile: settings) -> None:
    def check(example: tuple[str, list[str]]) -> None:
        outcome(lambda: configure(example[0], "8gaussians", overrides=example[1]))

    run_property(profile, st.tuples(st.sampled_from(["gan", "wgan-gp", "cgan"]), OVERRIDES), check)


# --------------------------------------------------------------------------- checkpoints

TENSORS = st.builds(
    lambda shape, seed: torch.randn(shape, generator=torch.Generator().manual_seed(seed)),
    st.lists(st.integers(0, 3), max_size=3),
    st.integers(0, 2**16),
)
STATES = st.recursive(
    st.one_of(SCALARS, TENSORS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=6) | st.sampled_from(["config", "step"]), inner, max_size=4
        )
    ),
    max_leaves=8,
)


@st.composite
def checkpoint_bytes(draw: st.DrawFn) -> bytes:
    """torch.save of a random state (sometimes with config/step), perhaps damaged; or noise."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=200))
    state = draw(STATES)
    if draw(st.booleans()):
        state = {"config": draw(STATES), "step": draw(SCALARS), "extra": state}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    damage = draw(st.sampled_from(["none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif damage == "flip":
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    return data


def _check_checkpoint(folder: Path, data: bytes) -> None:
    path = folder / "step_00000001.pt"
    path.write_bytes(data)
    state = outcome(lambda: checkpoint.load(path))
    if state is not None:
        assert isinstance(state, dict) and "config" in state and "step" in state


@pytest.mark.parametrize("profile", PROFILES)
def test_checkpoint_any_bytes(profile: settings, tmp_path: Path) -> None:
    run_property(profile, checkpoint_bytes(), lambda data: _check_checkpoint(tmp_path, data))


# --------------------------------------------------------------------------- found, kept as cases

IDX_FOUND = [
    bytes([0, 0, 8, 65]) + b"\0" * 4 * 65,  # more dimensions than NumPy has (was ValueError)
    bytes([0, 0, 8, 2]) + b"\0" * 8,  # a (0, 0) array (was TypeError from memoryview.cast)
    b"\x00\x00\x0b\x04\x00\x00\x00\x00\x00\x00\r\xa2\x01|E\x13\x03)\x10?",  # 0 x huge
    bytes([0, 0, 8, 3]) + b"\xff" * 12,  # claims 2**96 bytes: refused before allocating
]


@pytest.mark.parametrize("data", IDX_FOUND, ids=["65-dims", "zero-dims", "zero-by-huge", "huge"])
def test_idx_inputs_hypothesis_found(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x-idx"
    path.write_bytes(data)
    assert outcome(lambda: read_idx(path)) is None or data[3] == 2


CONFIG_FOUND = [
    (b"model: gan\ndata: 8gaussians\ntrain:\n- []\n", []),  # was TypeError: unhashable
    (b"model: gan\ndata: 8gaussians\nmodel_config: 3\n", []),  # was TypeError: not iterable
    (b"model: [gan]\ndata: 8gaussians\n", []),  # was TypeError: unhashable
    (b"model: gan\ndata: 8\n", []),  # was TypeError from pathlib
    (b"model: gan\ndata: 8gaussians\n", ["\r"]),  # was a message broken over two lines
    (b"model: gan\ndata: 8gaussians\ntrain: {seed: 2001-13-01}\n", []),  # was ValueError
    (b"model: gan\ndata: 8gaussians\ntrain: {seed: " + b"[" * 3000 + b"\n", []),  # RecursionError
    (b"\xff\xfe model: gan", []),  # was UnicodeDecodeError
    (b"model: gan\ndata: 8gaussians\nmodel_config: {lr: " + b"9" * 400 + b"}\n", []),  # Overflow
    (b"model: gan\ndata: 8gaussians\n", ["lr=nan"]),  # was accepted: nan passes every bound
]


@pytest.mark.parametrize("text, overrides", CONFIG_FOUND)
def test_config_inputs_hypothesis_found(tmp_path: Path, text: bytes, overrides: list[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(text)
    assert outcome(lambda: configure(None, None, config=path, overrides=overrides)) is None
