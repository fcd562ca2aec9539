"""IDX parsing, locating/fetching datasets, class-folder loading and sample grids; all fast."""

import dataclasses
import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import data as gdata
from gankit.cache import cache_dir
from gankit.data import fetch as fetching
from gankit.data import idx, images, open_data
from gankit.data.grid import make_grid, save_grid
from gankit.data.idx import idx_bytes, read_idx, read_idx_tensor, write_idx
from gankit.data.images import load_image_dataset, to_float, to_uint8
from gankit.errors import GankitError

# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_idx_round_trip(tmp_path: Path, suffix: str, dtype: str) -> None:
    array = (np.arange(2 * 3 * 5).reshape(2, 3, 5) * 37 - 100).astype(dtype)
    path = write_idx(tmp_path / f"x-idx3{suffix}", array)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if suffix else b"\x00\x00")
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == (2, 3, 5)
    np.testing.assert_array_equal(back, array)


def test_idx_tensor_is_writable_uint8(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    tensor = read_idx_tensor(write_idx(tmp_path / "labels.gz", labels))
    assert tensor.dtype == torch.uint8 and tensor.tolist() == [3, 1, 4, 1, 5]
    tensor[0] = 9  # torch.from_numpy of a read-only buffer would warn or fail here


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_payload_read_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    monkeypatch.setattr(idx, "_CHUNK", 7)  # pieces that split values and rows
    array = (np.arange(5 * 3 * 4).reshape(5, 3, 4) * 70001 - 99).astype(">i4")
    back = read_idx(write_idx(tmp_path / f"x-idx3{suffix}", array))
    assert back.dtype == np.dtype("int32") and back.flags.writeable
    np.testing.assert_array_equal(back, array)
    cut = tmp_path / "cut"
    cut.write_bytes(idx_bytes(array)[:-5])
    with pytest.raises(GankitError, match="expected 240 bytes of image data, found 235"):
        read_idx(cut)


def _images_file(n: int = 3) -> bytes:
    return idx_bytes(np.zeros((n, 28, 28), dtype=np.uint8))


def test_idx_truncated_payload_names_file_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_images_file()[: 16 + 1000])
    hint = "delete it and run `gankit data fetch mnist`"
    with pytest.raises(GankitError, match=r"train-images-idx3-ubyte: truncated, expected 2352 "):
        read_idx(path, hint)
    with pytest.raises(GankitError, match=r"image data, found 1000; delete it and run `gankit"):
        read_idx(path, hint)


def test_idx_truncated_header_and_gzip(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(_images_file()[:10])
    with pytest.raises(GankitError, match="truncated, expected 12 bytes of dimensions, found 6"):
        read_idx(short)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(gzip.compress(_images_file())[:-20])
    with pytest.raises(GankitError, match=r"cut\.gz: corrupt or truncated gzip"):
        read_idx(cut)


def test_idx_extra_bytes_rejected(tmp_path: Path) -> None:
    path = tmp_path / "long"
    path.write_bytes(_images_file() + b"\x00")
    with pytest.raises(GankitError, match="longer than its header says, expected only 2352"):
        read_idx(path)


def test_idx_bad_magic_and_dtype(tmp_path: Path) -> None:
    png = tmp_path / "not-idx"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(GankitError, match=r"not-idx: not an IDX file \(starts with 0x89504e47\)"):
        read_idx(png)
    bad = tmp_path / "bad-dtype"
    bad.write_bytes(bytes([0, 0, 0x07, 1]) + (3).to_bytes(4, "big") + bytes(3))
    with pytest.raises(GankitError, match="unknown IDX data type code 0x07"):
        read_idx(bad)
    with pytest.raises(GankitError, match="no such file"):
        read_idx(tmp_path / "missing")


# --------------------------------------------------------------------------- locate / fetch


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Cache and package-shipped folders redirected into ``tmp_path``."""
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fetching, "shipped_dirs", lambda name: [tmp_path / f"shipped-{name}"])
    return tmp_path


def test_locate_nothing_lists_every_place(isolated: Path) -> None:
    with pytest.raises(GankitError) as err:
        fetching.locate("fashion-mnist", isolated / "mine")
    message = str(err.value)
    for place in ("mine", "mine/fashion-mnist", "mine/FashionMNIST/raw"):
        assert f"{isolated / place}," in message
    assert str(isolated / "cache" / "datasets" / "fashion-mnist") in message
    assert str(isolated / "shipped-fashion-mnist") in message
    assert "`gankit data fetch fashion-mnist`" in message and "\n" not in message
    with pytest.raises(GankitError, match="unknown dataset 'cifar'"):
        fetching.locate("cifar")


def _tiny_idx_dataset(folder: Path) -> dict[str, fetching.IdxFile]:
    """Write a 6-train/4-test fake MNIST into ``folder``; returns matching IdxFile entries."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images": rng.integers(0, 256, (6, 5, 4), dtype=np.uint8),
        "train-labels": np.array([0, 1, 2, 0, 1, 2], dtype=np.uint8),
        "test-images": rng.integers(0, 256, (4, 5, 4), dtype=np.uint8),
        "test-labels": np.array([2, 1, 0, 2], dtype=np.uint8),
    }
    entries = {}
    for role, entry in images.DATASETS["mnist"].files.items():
        write_idx(folder / f"{entry.stem}.gz", arrays[role])
        digest = hashlib.sha256(idx_bytes(arrays[role])).hexdigest()
        entries[role] = fetching.IdxFile(entry.stem, digest)
    return entries


@pytest.fixture
def fake_mnist(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny "mnist" in the shipped folder whose spec checksums match it; no network sources."""
    shipped = isolated / "shipped-mnist"
    entries = _tiny_idx_dataset(shipped)
    spec = dataclasses.replace(images.DATASETS["mnist"], files=entries, mirrors=(), wheel="")
    monkeypatch.setitem(images.DATASETS, "mnist", spec)
    return shipped


def test_locate_order_user_path_then_cache_then_shipped(fake_mnist: Path, isolated: Path) -> None:
    assert fetching.locate("mnist") == fake_mnist
    cache = fetching.fetch("mnist")
    assert cache == isolated / "cache" / "datasets" / "mnist" and fetching.locate("mnist") == cache
    mine = isolated / "mine" / "mnist"
    shutil.copytree(fake_mnist, mine)
    assert fetching.locate("mnist", isolated / "mine") == mine  # a user path beats the cache


def test_fetch_copies_verifies_and_leaves_no_temp_files(fake_mnist: Path, isolated: Path) -> None:
    cache = fetching.fetch("mnist")
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in fake_mnist.iterdir())
    assert fetching.verify("mnist") == cache
    # A damaged cached file is detected and replaced by the next fetch.
    (cache / "train-labels-idx1-ubyte.gz").write_bytes(b"junk")
    with pytest.raises(GankitError, match="train-labels-idx1-ubyte.gz: not an IDX file"):
        fetching.verify("mnist", cache)
    fetching.fetch("mnist")
    assert fetching.verify("mnist", cache) == cache
    assert not list(cache.glob(".*"))


def test_fetch_rejects_wrong_content_and_lists_attempts(fake_mnist: Path) -> None:
    write_idx(fake_mnist / "t10k-labels-idx1-ubyte.gz", np.array([9, 9, 9, 9], dtype=np.uint8))
    with pytest.raises(GankitError) as err:
        fetching.fetch("mnist")
    message = str(err.value)
    assert "could not fetch mnist (t10k-labels-idx1-ubyte missing)" in message
    assert f"copy from {fake_mnist}" in message and "SHA-256 mismatch" in message
    assert not (cache_dir("datasets") / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_load_named_dataset(fake_mnist: Path) -> None:
    data = load_image_dataset("mnist", "test")
    assert data.images.shape == (4, 1, 5, 4) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == [2, 1, 0, 2]
    assert data.classes == [str(d) for d in range(10)] and data.name == "mnist"
    assert load_image_dataset("mnist", "train", size=(8, 6)).images.shape == (6, 1, 8, 6)


def test_named_source_loads_its_test_split_at_the_first_evaluation(
    fake_mnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = []

    def load(name: str, split: str = "train", size: int | None = None) -> images.ImageDataset:
        loaded.append((split, size))
        return load_image_dataset(name, split, size)

    monkeypatch.setattr(gdata, "load_image_dataset", load)
    source = open_data("mnist", seed=3, image_size=8)
    assert loaded == [("train", 8)] and source.spec.shape == (1, 8, 8)
    assert source.batch(4)[0].shape == (4, 1, 8, 8)
    assert len(loaded) == 1  # training never reads the test split
    real = source.reference(3, seed=1)
    assert loaded[1:] == [("test", 8)] and real.shape == (3, 1, 8, 8)
    source.reference(3, seed=2)
    assert len(loaded) == 2  # loaded once


def test_load_named_rejects_unofficial_content(fake_mnist: Path) -> None:
    write_idx(fake_mnist / "train-labels-idx1-ubyte.gz", np.zeros(6, dtype=np.uint8))
    with pytest.raises(GankitError, match=r"train-labels-idx1-ubyte.gz: not the official mnist"):
        load_image_dataset("mnist")
    with pytest.raises(GankitError, match="unknown split 'val'"):
        load_image_dataset("mnist", "val")


# --------------------------------------------------------------------------- class folders


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _grey(h: int, w: int, value: int) -> np.ndarray:
    return np.full((h, w), value, dtype=np.uint8)


def test_folder_greyscale_resized_with_holdout(tmp_path: Path) -> None:
    for i in range(10):
        _png(tmp_path / "cats" / f"c{i}.png", _grey(8, 6, 10 * i))
        _png(tmp_path / "dogs" / f"d{i}.png", _grey(16, 12 if i else 6, 200))
    train = load_image_dataset(tmp_path, "train")
    test = load_image_dataset(tmp_path, "test")
    assert train.classes == ["cats", "dogs"] and len(train) == 18 and len(test) == 2
    assert train.images.shape == (18, 1, 8, 6) and test.images.shape == (2, 1, 8, 6)
    assert sorted(test.labels.tolist()) == [0, 1]
    assert "held out 2 images" in train.note and "images resized to 8x6" in train.note
    assert torch.equal(load_image_dataset(tmp_path, "test").images, test.images)  # deterministic


def test_folder_train_test_layout_rgb_and_mixed(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    _png(tmp_path / "train" / "red" / "a.png", rgb)
    _png(tmp_path / "train" / "grey" / "b.jpg", _grey(4, 4, 128))
    _png(tmp_path / "test" / "red" / "c.bmp", rgb)
    data = load_image_dataset(tmp_path, "test")
    assert data.images.shape == (1, 3, 4, 4) and data.classes == ["grey", "red"]
    assert data.images[0, :, 0, 0].tolist() == [255, 0, 0]
    assert "converted to RGB" in data.note and "held out" not in data.note
    train = load_image_dataset(tmp_path, "train", size=2)
    assert train.images.shape == (2, 3, 2, 2) and train.labels.tolist() == [0, 1]


def test_folder_16bit_scaled_to_8bit(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "x.png", np.full((3, 3), 65535, dtype=np.uint16))
    _png(tmp_path / "a" / "y.png", np.full((3, 3), 257 * 10, dtype=np.uint16))
    halves = [load_image_dataset(tmp_path, split) for split in ("train", "test")]
    assert all(d.images.shape == (1, 1, 3, 3) for d in halves)
    assert all("1 16-bit images scaled to 8 bit" in d.note for d in halves)
    values = torch.cat([d.images.flatten() for d in halves]).unique().tolist()
    assert values == [10, 255]


def test_folder_corrupt_image_names_file(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "good.png", _grey(4, 4, 1))
    (tmp_path / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(GankitError, match=r"a/bad\.png: unreadable image"):
        load_image_dataset(tmp_path)
    # A valid header with the pixel data cut off fails only when decoded.
    whole = tmp_path / "a" / "good.png"
    (tmp_path / "a" / "bad.png").write_bytes(whole.read_bytes()[:-30])
    with pytest.raises(GankitError, match=r"a/bad\.png: unreadable image \(image file is trunc"):
        for split in ("train", "test"):  # the 10% hold-out puts one of the two files in each
            load_image_dataset(tmp_path, split)


def test_folder_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(
        GankitError, match=r"no class sub-folders with images; expected DIR/<class>"
    ):
        load_image_dataset(tmp_path)
    (tmp_path / "empty-class").mkdir()
    with pytest.raises(GankitError, match=r"empty-class: class folder has no \.png"):
        load_image_dataset(tmp_path)
    with pytest.raises(GankitError, match="unknown dataset 'nope': use mnist or fashion-mnist"):
        load_image_dataset("nope")


# --------------------------------------------------------------------------- grids and ranges


def test_to_float_to_uint8_round_trip() -> None:
    every = torch.arange(256, dtype=torch.uint8)
    x = to_float(every)
    assert x.dtype == torch.float32 and x.min() == -1.0 and x.max() == 1.0
    assert torch.equal(to_uint8(x), every)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]
    with pytest.raises(GankitError, match="expects uint8"):
        to_float(x)


def test_make_grid_shape_and_placement() -> None:
    batch = torch.stack([torch.full((1, 4, 6), i * 50, dtype=torch.uint8) for i in range(5)])
    grid = make_grid(batch, nrow=3, pad=2)
    assert grid.shape == (1, 2 * (4 + 2) + 2, 3 * (6 + 2) + 2) and grid.dtype == torch.uint8
    assert grid[0, 2, 2] == 0 and grid[0, 2, 2 + 8] == 50 and grid[0, 2 + 6, 2 + 8] == 200
    assert grid[0, 2 + 6, 2 + 16] == 0  # the sixth cell is empty padding
    floats = make_grid(torch.ones(2, 3, 4, 4), nrow=8, pad=1)
    assert floats.shape == (3, 6, 11) and floats.max() == 255


def test_save_grid_png(tmp_path: Path) -> None:
    grey = save_grid(torch.rand(7, 1, 5, 5) * 2 - 1, tmp_path / "out" / "g.png", nrow=4)
    with Image.open(grey) as im:
        assert im.mode == "L" and im.size == (4 * 7 + 2, 2 * 7 + 2)
    with Image.open(
        save_grid(torch.zeros(2, 3, 5, 5, dtype=torch.uint8), tmp_path / "c.png")
    ) as im:
        assert im.mode == "RGB" and im.size == (2 * 7 + 2, 7 + 2)
    with pytest.raises(GankitError, match="1 or 3 channels"):
        save_grid(torch.zeros(1, 2, 4, 4), tmp_path / "x.png")


# --------------------------------------------------------------------------- the real data


def test_real_mnist_from_cache_if_present() -> None:
    try:
        folder = fetching.locate("mnist")
    except GankitError:
        pytest.skip("MNIST not fetched (run `gankit data fetch mnist`)")
    assert fetching.verify("mnist", folder) == folder
    data = load_image_dataset("mnist")
    assert data.images.shape == (60000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.labels.unique().tolist() == list(range(10))
