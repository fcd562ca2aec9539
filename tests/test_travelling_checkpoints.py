"""Checkpoints and run directories that travel: copied between runs, between gankit versions,
half written, or onto a machine without CUDA. Each loads, or stops with one line saying which
case it is and what to do."""

import pickle
import shutil
import warnings
from pathlib import Path

import pytest
import torch

import gankit
from gankit import checkpoint
from gankit.cli import main


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("gankit: ") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("travel") / "toy"
    gankit.train(
        "wgan-gp", "8gaussians", steps=4, out=out, ckpt_every=2, eval_samples=100, batch_size=64
    )
    return out


@pytest.fixture(scope="module")
def gan_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of another family (GAN) to copy where it does not belong."""
    out = tmp_path_factory.mktemp("travel") / "gan"
    gankit.train("gan", "8gaussians", steps=1, out=out, eval_samples=100, batch_size=64)
    return checkpoint.latest(out / "checkpoints")


@pytest.fixture
def copy_of(toy_run, tmp_path):
    def copy(name: str = "run") -> Path:
        return Path(shutil.copytree(toy_run, tmp_path / name))

    return copy


def _edit_latest(run_dir: Path, edit) -> None:
    path = checkpoint.latest(run_dir / "checkpoints")
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)


def test_checkpoint_records_the_version_that_wrote_it(toy_run):
    state = checkpoint.load(checkpoint.latest(toy_run / "checkpoints"))
    assert checkpoint.written_by(state) == checkpoint.VERSION == gankit.__version__


def test_another_runs_checkpoint_in_the_directory_is_refused(
    copy_of, gan_checkpoint, tmp_path, capsys
):
    run = copy_of()
    shutil.copy(gan_checkpoint, run / "checkpoints/step_00000009.pt")
    assert main(["train", "--resume", str(run), "steps=10"]) == 2
    assert "holds a gan checkpoint but" in _one_line(capsys)
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert "move it out of this directory" in _one_line(capsys)


def test_resume_under_another_model_name_is_refused(copy_of, capsys):
    run = copy_of()
    assert main(["train", "cgan", "--resume", str(run), "steps=6"]) == 2
    assert "is a wgan-gp run, not cgan" in _one_line(capsys)


def test_weights_of_another_model_are_one_line(copy_of, gan_checkpoint, tmp_path, capsys):
    run = copy_of()
    foreign = checkpoint.load(gan_checkpoint)["model"]
    _edit_latest(run, lambda state: state.update(model=foreign))
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert "do not fit the wgan-gp model" in _one_line(capsys)


def test_a_newer_versions_checkpoint_names_that_version(copy_of, tmp_path, capsys):
    run = copy_of()

    def from_the_future(state):
        state["config"]["train"]["a_setting_from_later"] = 1
        state["gankit_version"] = "9.0.0"

    _edit_latest(run, from_the_future)
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    err = _one_line(capsys)
    assert "written by gankit 9.0.0" in err and "load it with gankit 9.0.0" in err


def test_half_written_run_starts_again_from_its_config(copy_of, tmp_path, capsys):
    run = copy_of()
    # killed before its first checkpoint: config.yaml and a temp file, no step_*.pt
    for path in (run / "checkpoints").iterdir():
        path.unlink()
    (run / "checkpoints/.step_00000002.pt.x1y2.tmp").write_bytes(b"PK\x03\x04half")
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert "has no checkpoint yet" in _one_line(capsys)
    assert main(["train", "--resume", str(run), "steps=2", "progress=false"]) == 0
    assert "starting it again from its config" in capsys.readouterr().err
    names = [p.name for p in (run / "checkpoints").iterdir()]
    assert names == ["step_00000002.pt"]


def test_truncated_latest_checkpoint_is_one_line(copy_of, tmp_path, capsys):
    run = copy_of()
    latest = checkpoint.latest(run / "checkpoints")
    latest.write_bytes(latest.read_bytes()[:3000])
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert "corrupt or truncated" in _one_line(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_run_opens_on_a_machine_without_cuda(copy_of):
    run = copy_of()

    def trained_on_cuda(state):
        state["config"]["train"]["device"] = "cuda"
        state["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)]

    _edit_latest(run, trained_on_cuda)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = gankit.load(run)
    assert loaded.device.type == "cpu"
    assert any("no CUDA: using the CPU" in str(w.message) for w in caught)
    assert loaded.sample(5, seed=0).shape == (5, 2)
    with pytest.raises(gankit.GankitError, match="CUDA is not available"):
        gankit.load(run, device="cuda")  # asked for by name: said, not silently replaced


def test_malicious_pickle_and_non_checkpoints_are_refused(tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (print, ("payload ran",))

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    evil = run / "checkpoints/step_00000001.pt"
    torch.save({"step": 1, "config": {}, "x": Payload()}, evil)  # a zip with a pickle inside
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert "refused, since loading it would run its code" in _one_line(capsys)
    for content in (b"", b"not a checkpoint at all", pickle.dumps([1, 2, 3])):
        evil.write_bytes(content)
        assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
        _one_line(capsys)
    torch.save({"weights": torch.zeros(2)}, evil)  # a tensor file of somebody else's
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert "is not a gankit checkpoint" in _one_line(capsys)
    assert "payload ran" not in capsys.readouterr().out
