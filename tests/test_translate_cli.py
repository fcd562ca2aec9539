"""`gankit translate` and the translation metrics, on a tiny CycleGAN trained for 2 steps on a
generated trainA (greyscale) / trainB (RGB) folder; fast."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit import checkpoint
from gankit.cli import main
from gankit.data.images import ImageDataset
from gankit.data.unpaired import UnpairedData, UnpairedSource, to_channels
from gankit.errors import GankitError
from gankit.metrics.translation import TranslationScorer
from gankit.models.cyclegan import CycleGAN, CycleGANConfig
from gankit.translate import load_translator

TINY = ["ngf=4", "ndf=4", "blocks=1", "pool_size=2", "image_size=16", "batch_size=2"]
LOOP = ["eval_samples=10", "progress=false", "log_every=1"]


def _folder(root: Path) -> Path:
    """trainA: greyscale 20x20 noise; trainB: RGB 20x20 noise; 12 images each."""
    rng = np.random.default_rng(0)
    for domain, shape in (("A", (20, 20)), ("B", (20, 20, 3))):
        (root / f"train{domain}").mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"train{domain}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("translate")
    data, out = _folder(tmp / "data"), tmp / "run"
    argv = ["train", "cyclegan", "--data", str(data), "--steps", "2", "--out", str(out)]
    assert main([*argv, *TINY, *LOOP]) == 0
    return out


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    """Inputs of several sizes and modes: grey 20x20, grey 23x17, RGB 23x17 (JPEG), RGBA 9x31."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8)).save(folder / "g20.png")
    Image.fromarray(rng.integers(0, 256, (17, 23), dtype=np.uint8)).save(folder / "g23x17.png")
    rgb = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "c23x17.jpg")
    rgba = rng.integers(0, 256, (31, 9, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "c9x31.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


EXPECTED = {"g20.png": ("L", (20, 20)), "g23x17.png": ("L", (23, 17))}
EXPECTED |= {"c23x17.png": ("RGB", (23, 17)), "c9x31.png": ("RGB", (9, 31))}


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("gankit: ")
    return err


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_translate_folder_keeps_names_sizes_and_channels(
    run_dir, inputs, tmp_path, capsys, direction
):
    out = tmp_path / "out"
    argv = ["translate", str(run_dir), "--input", str(inputs), "--out", str(out)]
    assert main([*argv, "--direction", direction, "--device", "cpu"]) == 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"translated 4 images {direction} with cyclegan")
    assert sorted(p.name for p in out.iterdir()) == sorted(EXPECTED)
    for name, (mode, size) in EXPECTED.items():
        with Image.open(out / name) as im:
            assert (im.mode, im.size) == (mode, size), name


def test_translate_one_file_is_deterministic(run_dir, inputs, tmp_path):
    for out in ("x", "y"):
        argv = ["translate", str(run_dir), "--input", str(inputs / "g23x17.png")]
        assert main([*argv, "--out", str(tmp_path / out)]) == 0
    a, b = (np.asarray(Image.open(tmp_path / o / "g23x17.png")) for o in ("x", "y"))
    assert a.shape == (17, 23) and np.array_equal(a, b)


def test_translate_rebuilds_without_the_training_data(run_dir, tmp_path):
    """The checkpoint alone suffices (the data folder may be gone); BtoA reads only g_ba."""
    ckpt = checkpoint.latest(run_dir / "checkpoints")
    state = checkpoint.load(ckpt)
    assert state["spec"]["shape"] == [1, 16, 16] and state["spec"]["shape_b"] == [3, 16, 16]
    state["config"]["data"] = str(tmp_path / "gone")  # nothing to open there
    state["model"] = {k: v for k, v in state["model"].items() if k.startswith("g_ba.")}
    stripped = tmp_path / "step_00000002.pt"
    torch.save(state, stripped)
    translator = load_translator(stripped, "BtoA", torch.device("cpu"))
    assert (translator.c_in, translator.c_out, translator.size) == (3, 1, (16, 16))
    with pytest.raises(GankitError, match="g_ab weights do not fit"):
        load_translator(stripped, "AtoB", torch.device("cpu"))


def test_translate_errors_are_one_line(run_dir, inputs, tmp_path, capsys):
    base = ["translate", str(run_dir), "--out", str(tmp_path / "o")]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert "bad.png: unreadable image" in _one_line_error(capsys, [*base, "--input", str(bad)])
    err = _one_line_error(capsys, [*base, "--input", str(inputs), "--direction", "AtoZ"])
    assert "use AtoB or BtoA" in err
    missing = str(tmp_path / "nowhere")
    assert "does not exist" in _one_line_error(capsys, [*base, "--input", missing])
    old = tmp_path / "old" / "checkpoints"
    old.mkdir(parents=True)
    state = checkpoint.load(checkpoint.latest(run_dir / "checkpoints"))
    del state["spec"]
    torch.save(state, old / "step_00000002.pt")
    argv = ["translate", str(old.parent), "--input", str(inputs), "--out", str(tmp_path / "o")]
    assert "predates stored data specs" in _one_line_error(capsys, argv)


def test_translate_refuses_missing_generator_and_non_translation_runs(tmp_path, capsys):
    data = _folder(tmp_path / "data")
    disco = tmp_path / "disco"
    argv = ["train", "discogan", "--data", str(data), "--steps", "1", "--out", str(disco)]
    assert main([*argv, "variant=gan", "ngf=4", "ndf=4", "image_size=16", *LOOP]) == 0
    capsys.readouterr()
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    base = ["--input", str(image), "--out", str(tmp_path / "o")]
    err = _one_line_error(capsys, ["translate", str(disco), *base, "--direction", "BtoA"])
    assert "no g_ba (BtoA) generator" in err
    assert main(["translate", str(disco), *base]) == 0  # AtoB exists
    gan = tmp_path / "gan"
    argv = ["train", "gan", "--data", "8gaussians", "--steps", "1", "--out", str(gan)]
    assert (
        main([*argv, "hidden=8", "depth=1", "batch_size=8", "eval_samples=20", "progress=false"])
        == 0
    )
    capsys.readouterr()
    assert "not a translation model" in _one_line_error(capsys, ["translate", str(gan), *base])


# ----------------------------------------------------------------------------- metrics


def _paired_source(n: int = 12) -> UnpairedSource:
    """Grey A, RGB B = A repeated to 3 channels (hidden pairs known), digit-like labels."""
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (n, 1, 16, 16), generator=g, dtype=torch.uint8)
    b = a.expand(-1, 3, -1, -1).contiguous()
    labels = torch.arange(n) % 2

    def ds(x: torch.Tensor, name: str) -> ImageDataset:
        return ImageDataset(x, labels, ["even", "odd"], name)

    data = UnpairedData(
        "pairs16", ds(a, "A"), ds(b, "B"), ds(a, "A"), ds(b, "B"), 16,
        hidden_b_of_test_a=b, hidden_a_of_test_b=a,
    )  # fmt: skip
    return UnpairedSource(data, 0)


def test_evaluate_translation_keys_and_ranges():
    source = _paired_source()
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig.tiny(), source.spec)
    metrics = TranslationScorer(source).scores(model.translate, True, 8, 123)
    keys = {"eval/cycle_l1_a", "eval/cycle_l1_b", "eval/pair_l1_ab", "eval/identity_l1_ab"}
    keys |= {"eval/pair_l1_ba", "eval/identity_l1_ba"}
    assert keys <= set(metrics)
    assert all(0 <= v <= 2 and math.isfinite(v) for v in metrics.values())
    # B is A repeated to RGB (and A is B's luminance): doing nothing is a perfect translation
    assert metrics["eval/identity_l1_ab"] == 0
    assert metrics["eval/identity_l1_ba"] < 1 / 127.5
    again = TranslationScorer(source).scores(model.translate, True, 8, 123)
    assert metrics == again  # fixed examples


def test_to_channels():
    grey = torch.tensor([[[[10]]]], dtype=torch.uint8)
    assert to_channels(grey, 3).shape == (1, 3, 1, 1)
    assert to_channels(to_channels(grey, 3), 1).item() == 10
    assert to_channels(torch.zeros(2, 3, 4, 4), 1).shape == (2, 1, 4, 4)


def test_run_evaluate_uses_translation_metrics(run_dir):
    from gankit.runs import Run

    run = Run.from_checkpoint(checkpoint.latest(run_dir / "checkpoints"), device="cpu")
    metrics = run.evaluate(10)
    assert {"eval/cycle_l1_a", "eval/cycle_l1_b"} <= set(metrics)
    assert "eval/pair_l1_ab" not in metrics  # a folder has no hidden pairs


def test_pair_classifiers_train_on_the_extra_images_too(tmp_path, monkeypatch):
    import json

    from gankit.metrics.classifier import ClassifierConfig
    from gankit.metrics.translation import train_pair_classifiers

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    source = _paired_source()
    extra = _paired_source(20).data
    source.data.classifier_extra = lambda: (extra.train_a, extra.train_b)
    trained = train_pair_classifiers(source, ClassifierConfig(epochs=1, batch_size=8))
    for key in ("A", "B"):
        meta = json.loads(Path(trained[key]["classifier"] + ".json").read_text())
        assert meta["train_images"] == 12 + 20
    domain = json.loads(Path(trained["domain"]["classifier"] + ".json").read_text())
    assert domain["train_images"] == 2 * 12  # A vs B trains on the translators' images only

    def not_needed():
        raise AssertionError("extra images built although every classifier is cached")

    source.data.classifier_extra = not_needed
    again = train_pair_classifiers(source, ClassifierConfig(epochs=1, batch_size=8, reuse=True))
    assert again == trained


def test_pair_classifiers_feed_label_preservation_and_domain_success(tmp_path, monkeypatch):
    from gankit.metrics.classifier import ClassifierConfig
    from gankit.metrics.translation import train_pair_classifiers

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    source = _paired_source()
    trained = train_pair_classifiers(source, ClassifierConfig(epochs=1, batch_size=8))
    assert set(trained) == {"A", "B", "domain"}
    assert Path(trained["domain"]["classifier"]).name == "pairs16-domain-3x16.safetensors"
    torch.manual_seed(0)
    model = CycleGAN(CycleGANConfig.tiny(), source.spec)
    metrics = TranslationScorer(source).scores(model.translate, True, 8, 123)
    rates = [
        f"eval/{m}_{d}" for m in ("label_preservation", "domain_success") for d in ("ab", "ba")
    ]
    assert all(0 <= metrics[k] <= 1 for k in rates)
    # target-domain FID on the target's content classifier, beside its real-vs-real floor
    for d in ("ab", "ba"):
        assert metrics[f"eval/fid_{d}"] >= 0 and metrics[f"eval/fid_{d}_floor"] >= 0
        assert np.isfinite(metrics[f"eval/kid_{d}"])


def test_train_classifier_cli_on_a_folder_trains_the_domain_classifier(
    run_dir, tmp_path, monkeypatch, capsys
):
    import json

    from gankit.runs import Run

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    run = Run.from_checkpoint(checkpoint.latest(run_dir / "checkpoints"), device="cpu")
    capsys.readouterr()
    argv = ["train", "classifier", "--data", run.cfg.data, "image_size=16", "epochs=1"]
    assert main([*argv, "batch_size=8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["classifiers"]) == {"domain"}  # a folder has no content labels
    metrics = run.evaluate(10)
    assert (
        0 <= metrics["eval/domain_success_ab"] <= 1 and "eval/label_preservation_ab" not in metrics
    )
