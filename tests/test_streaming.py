"""Streamed trainA/trainB folders (gankit.data.streaming): exact resume, worker-count
independence, shards, the same data as in memory, bad files, the auto threshold; fast."""

import functools
from pathlib import Path

import pytest
import torch
from synthetic import unpaired_folders

from gankit import checkpoint
from gankit.cli import main
from gankit.config import TrainConfig, apply
from gankit.data import StreamingUnpairedSource, UnpairedSource, open_data
from gankit.data import streaming as streaming_module
from gankit.data.images import to_float
from gankit.data.unpaired import load_unpaired_folder
from gankit.errors import GankitError
from gankit.trainer import Trainer

SIZE = 16  # train images decoded at round(16 * 1.125) = 18 px, cropped to 16


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """6 grey A and 6 RGB B 20-px PNGs: 5 train images per domain after the 10% hold-out."""
    return unpaired_folders(tmp_path_factory.mktemp("streamed"))


def stream(folder: Path, workers: int = 0, seed: int = 0) -> StreamingUnpairedSource:
    source = open_data(str(folder), seed, SIZE, stream="true", workers=workers)
    assert isinstance(source, StreamingUnpairedSource)
    return source


def draw(source: UnpairedSource, batches: int, n: int = 3) -> list[tuple[torch.Tensor, ...]]:
    return [source.batch(n) for _ in range(batches)]


def same(a: list[tuple[torch.Tensor, ...]], b: list[tuple[torch.Tensor, ...]]) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x, y) for p, q in zip(a, b, strict=True) for x, y in zip(p, q, strict=True)
    )


def test_resume_from_state_dict_is_bit_identical(folder):
    straight = draw(stream(folder), 10)  # 30 samples: six epochs of 5 files
    first = stream(folder)
    draw(first, 7)
    state = first.state_dict()
    assert state == {"stream": {"position": 21, "files": [5, 5]}}
    resumed = stream(folder)
    resumed.load_state_dict(state)
    assert same(draw(resumed, 3), straight[7:])
    assert not same(draw(stream(folder, seed=1), 10), straight)  # the seed matters


def test_worker_count_does_not_change_the_batches(folder):
    rng = torch.get_rng_state()
    by_workers = {w: draw(stream(folder, workers=w), 5) for w in (0, 2)}
    assert same(by_workers[0], by_workers[2])
    # the loader draws its worker seed from its own generator: training noise is untouched
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("world", [2, 3])
def test_shards_are_slices_of_the_global_batch(folder, world):
    whole = draw(stream(folder), 3, n=4)
    ranks = [stream(folder) for _ in range(world)]
    for xa, xb in whole:
        parts = [source.batch(4, shard=(rank, world)) for rank, source in enumerate(ranks)]
        assert torch.equal(torch.cat([p[0] for p in parts]), xa)
        assert torch.equal(torch.cat([p[1] for p in parts]), xb)
        assert [len(p[0]) for p in parts] == [
            (r + 1) * 4 // world - r * 4 // world for r in range(world)
        ]
    assert all(source.position == 12 for source in ranks)
    with pytest.raises(GankitError, match="rank must be in"):
        ranks[0].batch(4, shard=(world, world))


def test_streamed_samples_are_crops_and_flips_of_the_in_memory_images(folder):
    source = stream(folder)
    memory = load_unpaired_folder(folder, SIZE)
    assert source.spec == UnpairedSource(memory, 0).spec
    files = source.stream.files
    epoch = {source.stream.path(0, p) for p in range(5)}
    assert epoch == set(files[0])  # an epoch visits every train file once
    flips = 0
    for position, (xa, xb) in enumerate(zip(*source.batch(10), strict=True)):
        for domain, x, held in ((0, xa, memory.train_a), (1, xb, memory.train_b)):
            image = to_float(held.images[files[domain].index(source.stream.path(domain, position))])
            crops = [
                crop.flip(-1) if flip else crop
                for t in range(3)
                for s in range(3)
                for crop in [image[:, t : t + SIZE, s : s + SIZE]]
                for flip in (False, True)
            ]
            hit = [i for i, c in enumerate(crops) if torch.equal(c, x)]
            assert hit, f"sample {position} of domain {domain} is no crop of its image"
            flips += hit[0] % 2
    assert 0 < flips < 20 and xa.min() >= -1 and xa.max() <= 1


def test_auto_streams_above_the_threshold(folder, monkeypatch):
    assert type(open_data(str(folder), 0, SIZE)) is UnpairedSource
    monkeypatch.setattr(streaming_module, "stream_threshold", lambda: 1000)
    source = open_data(str(folder), 0, SIZE)
    assert isinstance(source, StreamingUnpairedSource)
    assert "train images streamed from disk" in source.note
    assert type(open_data(str(folder), 0, SIZE, stream="false")) is UnpairedSource


def test_stream_true_on_other_data_is_one_line():
    with pytest.raises(GankitError, match="stream=true reads trainA/trainB folders only"):
        open_data("8gaussians", stream="true")


def test_resume_in_the_other_mode_is_refused(folder):
    memory = open_data(str(folder), 0, SIZE, stream="false")
    with pytest.raises(GankitError, match="resume it with stream=false"):
        stream(folder).load_state_dict(memory.state_dict())
    with pytest.raises(GankitError, match="resume it with stream=true"):
        memory.load_state_dict(stream(folder).state_dict())


def test_resume_over_a_changed_folder_warns(folder):
    source = stream(folder)
    source.batch(3)
    state = source.state_dict()
    state["stream"]["files"] = [6, 5]  # one trainA image deleted since (say, a bad one)
    with pytest.warns(UserWarning, match=r"holds \[5, 5\]: training continues"):
        source.load_state_dict(state)
    assert source.position == 3 and len(source.batch(3)[0]) == 3


def test_yaml_booleans_choose_the_stream_mode():
    assert apply(TrainConfig(), {"stream": True}, "train").stream == "true"
    assert apply(TrainConfig(), {"stream": "false"}, "train").stream == "false"
    with pytest.raises(GankitError, match="not one of auto, true, false"):
        apply(TrainConfig(), {"stream": "sometimes"}, "train")


@pytest.mark.parametrize("workers", [0, 2])
def test_a_file_cut_short_is_one_line_naming_it_when_first_read(tmp_path, workers):
    root = unpaired_folders(tmp_path)
    bad = root / "trainB" / "5.png"
    bad.write_bytes(bad.read_bytes()[:120])  # the header reads; the pixels do not
    source = stream(root, workers)  # header-checked at the start: fine
    if bad not in source.stream.files[1]:
        pytest.skip("the cut file is the held-out one")
    with pytest.raises(GankitError) as err:
        draw(source, 4)  # 12 positions: every B file read at least once
    message = str(err.value)
    assert str(bad) in message and "unreadable image" in message and "\n" not in message


def test_a_bad_header_fails_at_the_start(tmp_path):
    root = unpaired_folders(tmp_path)
    (root / "trainA" / "0.png").write_bytes(b"not an image")
    with pytest.raises(GankitError, match=r"0\.png: unreadable image"):
        stream(root)


def test_cli_resume_continues_the_stream_exactly(folder, tmp_path, monkeypatch):
    """`gankit train ... stream=true` interrupted at step 2 (as by Ctrl-C), then `--resume`d,
    ends with the weights of an uninterrupted run (same total steps: the LR schedule spans them)."""
    # one thread: the runs are compared with each other, and 4-channel convolutions on two
    # threads of a busy machine mostly wait for each other
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        check_cli_resume(folder, tmp_path, monkeypatch)
    finally:
        torch.set_num_threads(threads)


def check_cli_resume(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = ["ngf=4", "ndf=4", "blocks=1", "pool_size=2", f"image_size={SIZE}", "batch_size=2"]
    loop = ["eval_every=100", "sample_every=100", "progress=false", "eval_samples=10"]
    argv = ["train", "cyclegan", "--data", str(folder), "stream=true", "workers=2", "steps=4"]
    assert main([*argv, *tiny, *loop, "--out", str(tmp_path / "straight")]) == 0
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "fit", functools.partialmethod(Trainer.fit, stop_after=2))
        assert main([*argv, *tiny, *loop, "--out", str(tmp_path / "resumed")]) != 0
    assert main(["train", "--resume", str(tmp_path / "resumed")]) == 0
    a, b = (
        checkpoint.load(checkpoint.latest(tmp_path / run / "checkpoints"))
        for run in ("straight", "resumed")
    )
    assert a["step"] == b["step"] == 4 and a["data"] == b["data"]
    assert a["data"]["stream"]["position"] == 8
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
