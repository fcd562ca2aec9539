"""`gankit export`: a generator as a .pt2 file that loads and runs with torch alone and gives the
values gankit's own sampling and translation give."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from synthetic import unpaired_folders

import gankit
from gankit import export
from gankit.cli import main
from gankit.runs import Run, latest_checkpoint
from gankit.translate import load_translator


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory) -> Path:
    """A 3-step cgan (EMA on) on a class-folder dataset of three grey levels."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    for k, name in enumerate(["bright", "dark", "mid"]):
        (root / name).mkdir()
        for i in range(4):
            Image.new("L", (28, 28), 40 + 80 * k + i).save(root / name / f"{i}.png")
    out = tmp_path_factory.mktemp("export-cgan") / "run"
    argv = ["train", "cgan", "--data", str(root), "--steps", "3", "--out", str(out)]
    assert main([*argv, "z_dim=4", "hidden=16", "depth=1", "batch_size=4", "progress=false"]) == 0
    return out


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory) -> Path:
    """A 2-step CycleGAN from greyscale trainA to RGB trainB, 16 px."""
    root = tmp_path_factory.mktemp("unpaired")
    unpaired_folders(root)
    out = tmp_path_factory.mktemp("export-cyclegan") / "run"
    argv = ["train", "cyclegan", "--data", str(root), "--steps", "2", "--out", str(out)]
    tiny = ["ngf=4", "ndf=4", "blocks=1", "pool_size=2", "image_size=16", "batch_size=2"]
    assert main([*argv, *tiny, "eval_samples=10", "progress=false"]) == 0
    return out


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def _run_without_gankit(file: Path, inputs: list[torch.Tensor], tmp_path: Path) -> torch.Tensor:
    """The exported program run in a fresh interpreter where importing gankit fails."""
    torch.save(inputs, tmp_path / "inputs.pt")
    code = (
        "import sys; sys.modules['gankit'] = None\n"
        "import torch\n"
        f"g = torch.export.load({str(file)!r}).module()\n"
        f"x = torch.load({str(tmp_path / 'inputs.pt')!r})\n"
        f"torch.save(g(*x), {str(tmp_path / 'out.pt')!r})\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return torch.load(tmp_path / "out.pt")


def test_export_cgan_runs_without_gankit_and_matches_its_samples(cgan_run, tmp_path):
    out = tmp_path / "g.pt2"
    assert main(["export", str(cgan_run), "--out", str(out)]) == 0
    z, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 2, 1])
    got = _run_without_gankit(out, [z, y], tmp_path)
    run = Run.from_checkpoint(latest_checkpoint(cgan_run), device="cpu")
    run.model.eval()
    with torch.no_grad(), run.averaged():  # the EMA weights, as gankit sample uses them
        want = run.model.generator(z, y)
    assert got.shape == (5, 1, 28, 28)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)

    extra = {export.METADATA: ""}
    torch.export.load(out, extra_files=extra)
    meta = json.loads(extra[export.METADATA])
    assert [i["name"] for i in meta["inputs"]] == ["z", "y"]
    assert meta["inputs"][1]["classes"] == ["bright", "dark", "mid"]
    assert meta["ema_weights"] is True and meta["output"]["shape"] == ["batch", 1, 28, 28]


def test_export_cyclegan_direction_matches_translate(cyclegan_run, tmp_path):
    out = tmp_path / "ba.pt2"
    assert main(["export", str(cyclegan_run), "--direction", "BtoA", "--out", str(out)]) == 0
    x = torch.rand(3, 3, 16, 16) * 2 - 1  # domain B is RGB, A greyscale
    got = _run_without_gankit(out, [x], tmp_path)
    translator = load_translator(latest_checkpoint(cyclegan_run), "BtoA", torch.device("cpu"))
    with torch.no_grad():
        want = translator.net(x)
    assert got.shape == (3, 1, 16, 16)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_export_errors_are_one_line(capsys, cgan_run, cyclegan_run, tmp_path):
    pt2 = str(tmp_path / "g.pt2")
    err = _one_line_error(capsys, ["export", str(cgan_run), "--out", str(tmp_path / "g.pt")])
    assert "give a .pt2 file name" in err
    err = _one_line_error(capsys, ["export", str(cgan_run), "--direction", "AtoB", "--out", pt2])
    assert "--direction is for translation" in err
    err = _one_line_error(
        capsys, ["export", str(cyclegan_run), "--direction", "AtoZ", "--out", pt2]
    )
    assert "use AtoB or BtoA" in err
    err = _one_line_error(capsys, ["export", str(tmp_path / "nowhere"), "--out", pt2])
    assert "does not exist" in err


def test_failed_parity_check_leaves_no_file(capsys, cgan_run, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)  # every difference fails, even 0
    out = tmp_path / "sub" / "g.pt2"
    err = _one_line_error(capsys, ["export", str(cgan_run), "--out", str(out)])
    assert "nothing written" in err
    assert list(out.parent.iterdir()) == []  # neither the file nor its temporary


@pytest.mark.parametrize("cls", [export.conv.Conv2d, export.gnn.InstanceNorm2d])
def test_plain_torch_swaps_training_subclasses_for_torch_modules(cls):
    net = torch.nn.Sequential(cls(3, 3, 3) if cls is export.conv.Conv2d else cls(3))
    plain = export.plain_torch(net)
    assert type(plain[0]) is export.PLAIN[cls] and type(net[0]) is cls  # the original is kept
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), net.eval()(x), atol=1e-5, rtol=0)


def test_a_generator_torch_export_cannot_capture_is_one_line(capsys, cgan_run, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("data-dependent control flow\nmany more lines")

    monkeypatch.setattr(torch.export, "export", refuse)
    err = _one_line_error(capsys, ["export", str(cgan_run), "--out", "never.pt2"])
    assert "could not capture the generator of cgan" in err and "data-dependent" in err


# ------------------------------------------------------------------ safetensors and its card


def test_safetensors_round_trip_gives_the_same_samples(cgan_run, tmp_path, capsys):
    out = tmp_path / "g.safetensors"
    assert main(["export", str(cgan_run), "--format", "safetensors", "--out", str(out)]) == 0
    assert "(+ g.card.json)" in capsys.readouterr().err
    g = gankit.load_weights(out)
    run = Run.from_checkpoint(latest_checkpoint(cgan_run), device="cpu")
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(2))  # what sample(seed=2) draws
    with torch.no_grad():
        got = g(z, torch.full((4,), 1))
    torch.testing.assert_close(got, run.sample(4, seed=2, label="dark"), atol=0, rtol=0)


def test_model_card_fields_and_its_snippet_runs(cyclegan_run, tmp_path, monkeypatch):
    out = tmp_path / "ab.safetensors"
    assert main(["export", str(cyclegan_run), "--out", str(out)]) == 0
    card = json.loads((tmp_path / "ab.card.json").read_text())
    assert card["gankit_version"] == gankit.__version__
    assert (
        card["architecture"]["family"] == "cyclegan" and card["architecture"]["generator"] == "g_ab"
    )
    assert card["architecture"]["model_config"]["ngf"] == 4
    assert card["training"]["steps"] == 2 and card["weights"]["step"] == 2
    assert card["data"]["kind"] == "unpaired" and card["data"]["shape"] == [1, 16, 16]
    assert card["inputs"][0]["name"] == "x" and card["output"]["shape"] == ["batch", 3, 16, 16]
    metrics = card["metrics"]  # the run's last evaluation, with how it was computed
    assert metrics["step"] == 2 and "eval/cycle_l1_a" in metrics
    assert metrics["protocol"]["seed"] == 12345 and metrics["protocol"]["n"] == 10
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(card["load"], scope)  # the snippet, as a user would paste it
    assert scope["out"].shape == (8, 3, 16, 16)


def test_failed_weights_check_writes_neither_file(capsys, cgan_run, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)
    out = tmp_path / "sub" / "g.safetensors"
    err = _one_line_error(capsys, ["export", str(cgan_run), "--out", str(out)])
    assert "nothing written" in err and list(out.parent.iterdir()) == []


def test_load_weights_refuses_foreign_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(gankit.GankitError, match="no gankit model card"):
        gankit.load_weights(tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(gankit.GankitError, match="is not a safetensors file"):
        gankit.load_weights(tmp_path / "junk.safetensors")


# ------------------------------------------------------------------ ONNX


def test_onnx_matches_gankit_at_batch_1_and_7(cgan_run, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    out = tmp_path / "g.onnx"
    meta, diffs = export.export_generator(latest_checkpoint(cgan_run), out, None)
    assert set(diffs) == {1, 7} and max(diffs.values()) < 1e-5
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["z", "y"]
    z, y = torch.randn(5, 4), torch.tensor([0, 1, 2, 2, 1])  # a batch size not checked above
    got = torch.from_numpy(session.run(None, {"z": z.numpy(), "y": y.numpy()})[0])
    run = Run.from_checkpoint(latest_checkpoint(cgan_run), device="cpu")
    run.model.eval()
    with torch.no_grad(), run.averaged():
        torch.testing.assert_close(got, run.model.generator(z, y), atol=1e-5, rtol=0)
    stored = session.get_modelmeta().custom_metadata_map["gankit"]
    assert json.loads(stored)["inputs"] == meta["inputs"]


@pytest.mark.slow
def test_onnx_cyclegan_direction_matches_translate(cyclegan_run, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    out = tmp_path / "ba.onnx"
    assert main(["export", str(cyclegan_run), "--direction", "BtoA", "--out", str(out)]) == 0
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
    translator = load_translator(latest_checkpoint(cyclegan_run), "BtoA", torch.device("cpu"))
    with torch.no_grad():
        torch.testing.assert_close(got, translator.net(x), atol=1e-5, rtol=0)


def test_onnx_without_the_extra_names_it(capsys, cgan_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    out = tmp_path / "g.onnx"
    err = _one_line_error(capsys, ["export", str(cgan_run), "--out", str(out)])
    assert "pip install 'gankit[onnx]'" in err and not out.exists()


def test_format_and_suffix_must_agree(capsys, cgan_run, tmp_path):
    argv = ["export", str(cgan_run), "--format", "onnx", "--out", str(tmp_path / "g.pt2")]
    assert "give a .onnx file name for --format onnx" in _one_line_error(capsys, argv)
