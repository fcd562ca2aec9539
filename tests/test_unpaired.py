"""Unpaired two-domain data: trainA/trainB folders, built-in pairs, sources and resume; fast."""

import functools
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data import DATASETS, DataSpec, data_kind, open_data
from gankit.data.images import ImageDataset, to_uint8
from gankit.data.pairs import BUILDERS, TEST_PER_DOMAIN, TRAIN_PER_DOMAIN, build, edges
from gankit.data.unpaired import (
    UnpairedData,
    UnpairedPointsSource,
    UnpairedSource,
    load_unpaired_folder,
    match_channels,
)
from gankit.errors import GankitError
from gankit.evaluate import Evaluator
from gankit.metrics.toy import toy_metrics

# --------------------------------------------------------------------------- folders


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def _noise(h: int, w: int, *channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, *channels), dtype=np.uint8)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A: greyscale PNGs of several sizes (one 16-bit), with testA; B: colour JPEG/RGBA/palette
    plus one greyscale PNG, no testB (so 10% is held out)."""
    root = tmp_path / "horse2zebra"
    for i, (h, w) in enumerate([(40, 30), (20, 50), (32, 32), (64, 48)]):
        _save(root / "trainA" / f"a{i}.png", _noise(h, w, seed=i))
    wide = (np.arange(30 * 30).reshape(30, 30) * 70).astype(np.uint16)
    Image.fromarray(wide).save(root / "trainA" / "wide16.png")
    _save(root / "testA" / "t0.png", _noise(33, 35, seed=9))
    for i in range(9):
        _save(root / "trainB" / f"b{i}.jpg", _noise(30 + i, 45, 3, seed=i))
    _save(root / "trainB" / "rgba.png", _noise(36, 36, 4), "RGBA")
    Image.fromarray(_noise(30, 30, 3)).convert("P").save(root / "trainB" / "palette.png")
    _save(root / "trainB" / "grey.png", _noise(50, 50))
    (root / "trainB" / "notes.txt").write_text("not an image: ignored")
    return root


def test_folder_shapes_channels_and_notes(folder: Path) -> None:
    data = load_unpaired_folder(folder, 32)
    assert data.train_a.images.shape == (5, 1, 36, 36)  # train kept at 32 * 1.125
    assert data.test_a.images.shape == (1, 1, 32, 32)
    # 12 B images, no testB: ceil(10%) = 2 held out, the rest RGB (the greyscale one converted)
    assert data.train_b.images.shape == (10, 3, 36, 36)
    assert data.test_b.images.shape == (2, 3, 32, 32)
    assert data.train_a.images.dtype == torch.uint8 and data.flip
    assert data.hidden_b_of_test_a is None and data.hidden_a_of_test_b is None
    assert "no testB: held out 2 trainB images" in data.note
    assert "domain B: mixed greyscale and colour images, all converted to RGB" in data.note
    assert "domain A: 1 16-bit images scaled to 8 bit" in data.note


def test_folder_keeps_aspect_by_centre_crop(tmp_path: Path) -> None:
    # 64x32 (w x h): black 16-px bands left and right of a white centre. Shorter side → 32 keeps
    # the scale, the centre crop keeps only white; a plain resize would squeeze the bands in.
    stripe = np.zeros((32, 64), np.uint8)
    stripe[:, 16:48] = 255
    for sub in ("trainA", "trainB", "testA", "testB"):
        _save(tmp_path / sub / "x.png", stripe)
    data = load_unpaired_folder(tmp_path, 32)
    assert data.test_a.images.min() >= 250
    assert data.train_a.images.shape[-2:] == (36, 36)


def test_folder_16bit_scaled_not_clipped(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "w.png")
    for sub in ("trainA", "trainB"):
        (tmp_path / sub).mkdir()
        (tmp_path / "w.png").rename(tmp_path / sub / "w.png")
        Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(tmp_path / "w.png")
    data = load_unpaired_folder(tmp_path, 8)
    assert data.train_a.images.shape[1] == 1 and int(data.train_a.images.min()) == 255


def test_folder_batches_open_data_and_image_size(folder: Path) -> None:
    assert data_kind(str(folder)) == "unpaired"
    source = open_data(str(folder), seed=0, image_size=16)
    assert isinstance(source, UnpairedSource)
    assert source.spec == DataSpec(str(folder), "unpaired", (1, 16, 16), 0, [], shape_b=(3, 16, 16))
    assert not source.has_labels and not source.has_pairs and source.preview_n > 0
    xa, xb = source.batch(13)  # more than an epoch of A (5 images): reshuffles mid-batch
    assert xa.shape == (13, 1, 16, 16) and xb.shape == (13, 3, 16, 16)
    for x in (xa, xb):
        assert x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert open_data(str(folder)).spec.shape == (1, 32, 32)  # folders default to 32


def test_corrupt_image_names_the_file(folder: Path) -> None:
    (folder / "trainB" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(GankitError, match=r"broken\.png: unreadable image") as err:
        load_unpaired_folder(folder)
    assert "\n" not in str(err.value)


def test_truncated_jpeg_names_the_file(folder: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(_noise(40, 40, 3)).save(buffer, format="JPEG")
    (folder / "trainB" / "cut.jpg").write_bytes(buffer.getvalue()[:200])
    with pytest.raises(GankitError, match=r"cut\.jpg: unreadable image"):
        load_unpaired_folder(folder)


@pytest.mark.parametrize("missing", ["trainA", "trainB"])
def test_missing_train_folder_named_with_layout(folder: Path, missing: str) -> None:
    for f in (folder / missing).iterdir():
        f.unlink()
    (folder / missing).rmdir()
    with pytest.raises(GankitError, match=rf"{missing}: folder missing; expected DIR/trainA"):
        open_data(str(folder))


@pytest.mark.parametrize("empty", ["trainA", "testA"])
def test_empty_folder_named(folder: Path, empty: str) -> None:
    for f in (folder / empty).iterdir():
        f.unlink()
    (folder / empty / "readme.txt").write_text("no images here")
    with pytest.raises(GankitError, match=rf"{empty}: no \.png/\.jpg/\.jpeg/\.bmp images"):
        load_unpaired_folder(folder)


def test_class_folders_stay_images(tmp_path: Path) -> None:
    _save(tmp_path / "cats" / "x.png", _noise(8, 8))
    assert data_kind(str(tmp_path)) == "images"
    assert data_kind("mnist") == "images" and data_kind("8gaussians") == "points"


# --------------------------------------------------------------------------- source mechanics


def _indexed(n: int, name: str, side: int = 4) -> ImageDataset:
    """n images whose every pixel holds the image's index (decodable from a float batch)."""
    images = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 1, side, side)
    return ImageDataset(images.contiguous(), torch.zeros(n, dtype=torch.int64), [], name)


def _coded(n: int, size: int = 4, side: int = 4, flip: bool = False) -> UnpairedData:
    a, b = _indexed(n, "A", side), _indexed(n, "B", side)
    return UnpairedData("coded", a, b, _indexed(3, "tA", size), _indexed(3, "tB", size), size, flip)


def _ids(x: torch.Tensor) -> list[int]:
    return to_uint8(x)[:, 0, 0, 0].tolist()


def test_each_domain_has_its_own_epoch_order() -> None:
    source = UnpairedSource(_coded(50), seed=3)
    xa, xb = source.batch(50)
    ids_a, ids_b = _ids(xa), _ids(xb)
    assert sorted(ids_a) == sorted(ids_b) == list(range(50))  # each a full epoch
    assert ids_a != ids_b  # not paired by position
    again_a, _ = source.batch(50)
    assert sorted(_ids(again_a)) == list(range(50)) and _ids(again_a) != ids_a  # reshuffled


def test_random_crops_and_flips_are_windows_of_the_image() -> None:
    n, side, size = 4, 6, 4
    images = (
        torch.arange(side * side, dtype=torch.uint8).reshape(1, 1, side, side).repeat(n, 1, 1, 1)
    )
    data = _coded(n, size, side, flip=True)
    data.train_a = ImageDataset(images, torch.zeros(n, dtype=torch.int64), [], "A")
    source = UnpairedSource(data, seed=0)
    windows = {
        tuple(images[0, 0, i : i + size, j : j + size].flatten().tolist())
        for i in range(side - size + 1)
        for j in range(side - size + 1)
    }
    mirrored = {tuple(np.array(w).reshape(size, size)[:, ::-1].flatten()) for w in windows}
    seen = [tuple(to_uint8(x)[0].flatten().tolist()) for x in source.batch(200)[0]]
    assert set(seen) <= windows | mirrored
    assert set(seen) & windows and set(seen) & mirrored and len(set(seen)) > 10


@pytest.mark.parametrize("flip", [False, True])
def test_resume_is_exact(tmp_path: Path, flip: bool) -> None:
    data = _coded(7, size=3, side=4, flip=flip)
    first = UnpairedSource(data, seed=1)
    for n in (5, 4):
        first.batch(n)
    torch.save(first.state_dict(), tmp_path / "state.pt")
    expected = [first.batch(n) for n in (6, 9, 2)]  # crosses epoch ends of both domains
    resumed = UnpairedSource(data, seed=99)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    for (ea, eb), n in zip(expected, (6, 9, 2), strict=True):
        xa, xb = resumed.batch(n)
        assert torch.equal(xa, ea) and torch.equal(xb, eb)


def test_examples_reference_and_render(tmp_path: Path) -> None:
    source = UnpairedSource(_coded(10), seed=0)
    state = source.generator.get_state()
    xa, xb = source.examples(2, seed=5)
    assert xa.shape == (2, 1, 4, 4) and torch.equal(source.examples(2, seed=5)[1], xb)
    assert len(source.examples(10, seed=5)[0]) == 3  # all of a small test split
    assert source.reference(3, seed=1).shape == (3, 1, 4, 4)
    assert torch.equal(source.generator.get_state(), state)  # training order untouched
    rgb = torch.zeros(2, 3, 4, 4)
    assert [x.shape[1] for x in match_channels(xa, rgb)] == [3, 3]
    source.render([xa, rgb], tmp_path / "grid.png", nrow=2)
    with Image.open(tmp_path / "grid.png") as im:
        assert im.mode == "RGB" and im.size == (2 * 6 + 2, 2 * 6 + 2)


def test_empty_test_split_is_a_clear_error() -> None:
    data = _coded(4)
    data.test_b = _indexed(0, "tB")
    with pytest.raises(GankitError, match="coded test split has no images"):
        UnpairedSource(data, seed=0).reference(4, seed=0)


# --------------------------------------------------------------------------- built-in pairs


@functools.cache
def _build_once(name: str) -> UnpairedData | str:
    try:
        return build(name)
    except GankitError as err:  # MNIST / Fashion-MNIST not available here
        return str(err)


def _built(name: str) -> UnpairedData:
    """The built-in pair ``name``, built once for the whole module (tests only read it)."""
    data = _build_once(name)
    if isinstance(data, str):
        pytest.skip(data)
    return data


@pytest.fixture(params=sorted(BUILDERS))
def built(request: pytest.FixtureRequest) -> UnpairedData:
    return _built(request.param)


def test_builtins_registered() -> None:
    for name in BUILDERS:
        assert name in DATASETS and data_kind(name) == "unpaired"
    assert data_kind("discogan-toy") == "unpaired-points" and "discogan-toy" in DATASETS


def test_builtin_counts_shapes_and_determinism(built: UnpairedData) -> None:
    assert len(built.train_a) == len(built.train_b) == TRAIN_PER_DOMAIN
    expected_test = 1000 if built.name == "sneakers2boots" else TEST_PER_DOMAIN
    assert len(built.test_a) == len(built.test_b) == expected_test
    c_b = 3 if built.name == "digits2colour" else 1
    assert built.train_a.images.shape[1:] == built.test_a.images.shape[1:] == (1, 32, 32)
    assert built.train_b.images.shape[1:] == built.test_b.images.shape[1:] == (c_b, 32, 32)
    assert built.source_a is not None and built.source_b is not None
    assert not set(built.source_a.tolist()) & set(built.source_b.tolist())  # disjoint sources
    again = build(built.name)
    for split in ("train_a", "train_b", "test_a", "test_b"):
        assert torch.equal(getattr(again, split).images, getattr(built, split).images)
        assert torch.equal(getattr(again, split).labels, getattr(built, split).labels)


def _gradient(images: torch.Tensor) -> torch.Tensor:
    x = images.float().mean(1)
    g = (x[:, 1:, :-1] - x[:, :-1, :-1]).abs() + (x[:, :-1, 1:] - x[:, :-1, :-1]).abs()
    g = g.flatten(1) - g.flatten(1).mean(1, keepdim=True)
    return g / g.norm(dim=1, keepdim=True).clamp_min(1e-8)


def test_digits2colour_hidden_pairs_show_the_same_digit() -> None:
    data = _built("digits2colour")
    assert data.hidden_b_of_test_a is data.test_b.images
    assert data.hidden_a_of_test_b is data.test_a.images
    assert torch.equal(data.test_a.labels, data.test_b.labels)
    assert data.train_a.classes == [str(d) for d in range(10)]
    # The colour digit's strokes follow its grey digit's: edge maps correlate strongly within a
    # hidden pair (~0.76 on average), weakly with another test digit (~0.2).
    ga, gb = _gradient(data.test_a.images), _gradient(data.hidden_b_of_test_a)
    aligned, shifted = (ga * gb).sum(1), (ga * gb.roll(1, 0)).sum(1)
    assert aligned.mean() > 0.6 and (aligned > shifted).float().mean() > 0.98
    source = UnpairedSource(data, seed=0)
    assert source.spec.num_classes == 10 and source.spec.shape_b == (3, 32, 32)
    assert source.has_labels and source.has_pairs


def test_digits2colour_classifier_extra_is_the_other_50000_digits() -> None:
    data = _built("digits2colour")
    assert data.classifier_extra is not None and data.source_a is not None
    extra_a, extra_b = data.classifier_extra()
    assert len(extra_a) == len(extra_b) == 60_000 - 2 * TRAIN_PER_DOMAIN
    assert extra_a.images.shape[1:] == (1, 32, 32) and extra_b.images.shape[1:] == (3, 32, 32)
    assert torch.equal(extra_a.labels, extra_b.labels)
    assert torch.bincount(extra_a.labels, minlength=10).min() > 4000  # every digit, ~5000 each
    # the translators' own training digits are not among them: no MNIST digit appears twice
    # (as flattened bytes) across train A, train B and the extras
    seen = torch.cat([data.train_a.images, extra_a.images]).flatten(1)
    assert len(torch.unique(seen, dim=0)) == len(seen)
    # coloured like train B (strokes follow the grey digit), from other photo crops
    ga, gb = _gradient(extra_a.images[:500]), _gradient(extra_b.images[:500])
    assert (ga * gb).sum(1).mean() > 0.6
    assert not torch.equal(extra_b.images[:5], data.train_b.images[:5])


def test_edges2shoes_hidden_pairs_are_edges_of_the_shoes() -> None:
    data = _built("edges2shoes-mini")
    assert torch.equal(data.test_a.images, edges(data.test_b.images))
    assert data.hidden_b_of_test_a is data.test_b.images
    assert set(data.train_a.labels.unique().tolist()) == {0, 1, 2}
    assert data.train_a.classes == ["Sandal", "Sneaker", "Ankle boot"]
    assert ((data.train_a.images == 0) | (data.train_a.images == 255)).all()


def test_sneakers2boots_is_unlabelled_and_unpaired() -> None:
    data = _built("sneakers2boots")
    assert data.hidden_b_of_test_a is None and data.train_a.classes == []
    source = UnpairedSource(data, seed=0)
    assert source.spec.num_classes == 0 and not source.has_pairs
    small = open_data("sneakers2boots", seed=0, image_size=16)  # built, then resized
    assert isinstance(small, UnpairedSource)
    assert small.spec.shape == small.spec.shape_b == (1, 16, 16)
    assert small.batch(2)[1].shape == (2, 1, 16, 16) and small.test_b.images.shape[-1] == 16


def test_edges_of_a_square() -> None:
    square = torch.zeros(1, 1, 12, 12, dtype=torch.uint8)
    square[..., 4:8, 4:8] = 255
    out = edges(square)
    assert out[0, 0, 0, 0] == 255 and out[0, 0, 6, 3] == 0  # background white, border black
    assert int((out == 0).sum()) < 12 * 12 // 2


# --------------------------------------------------------------------------- 2-D toy


def test_discogan_toy(tmp_path: Path) -> None:
    source = open_data("discogan-toy", seed=0)
    assert isinstance(source, UnpairedPointsSource)
    assert source.spec == DataSpec("discogan-toy", "unpaired-points", (2,), shape_b=(2,))
    assert source.modes_a.shape == (5, 2) and source.modes_b.shape == (10, 2)
    state = source.state_dict()
    a, b = source.batch(300)
    assert a.shape == b.shape == (300, 2)
    # each point lies near a mode of its own domain (std 0.05 → within 0.3 almost surely)
    assert torch.cdist(a, source.modes_a).amin(1).max() < 0.3
    assert torch.cdist(b, source.modes_b).amin(1).max() < 0.3
    source.load_state_dict(state)
    again = source.batch(300)
    assert torch.equal(again[0], a) and torch.equal(again[1], b)
    metrics = Evaluator(source, None).sample_scores(b, 0, None)  # translations A → B
    assert metrics["eval/modes"] == 10 and metrics["eval/modes_total"] == 10
    dist_a = source.dist("a")
    toy_a = toy_metrics(a, source.reference(300, 0, "a"), dist_a.modes, dist_a.std)
    assert toy_a["eval/modes"] == 5


def test_export_writes_a_folder_that_loads_back_pixel_for_pixel(tmp_path, monkeypatch) -> None:
    from gankit.data import pairs

    g = torch.Generator().manual_seed(0)

    def rgb(n: int) -> ImageDataset:
        x = torch.randint(0, 256, (n, 3, 16, 16), generator=g, dtype=torch.uint8)
        return ImageDataset(x, torch.zeros(n, dtype=torch.int64), [], "rgb")

    pair = UnpairedData("tiny", _indexed(6, "A", 16), rgb(5), _indexed(3, "tA", 16), rgb(2), 16)
    monkeypatch.setitem(pairs.BUILDERS, "tiny", lambda: pair)
    counts = pairs.export_pair("tiny", tmp_path / "out")
    assert counts == {"trainA": 6, "trainB": 5, "testA": 3, "testB": 2}
    back = load_unpaired_folder(tmp_path / "out", size=16)
    # test images load at the size exactly; file names keep the order
    assert torch.equal(back.test_b.images, pair.test_b.images)
    assert torch.equal(back.test_a.images, pair.test_a.images)
    assert len(back.train_a) == 6 and back.train_b.images.shape[1] == 3
    with pytest.raises(GankitError, match="not empty"):
        pairs.export_pair("tiny", tmp_path / "out")
    with pytest.raises(GankitError, match="no built-in pair"):
        pairs.export_pair("nope", tmp_path / "new")
