"""The command line: one clear line and a non-zero exit for bad input; reproducible outputs."""

import json

import pytest
import torch

from gankit.cli import main

TINY = ["hidden=16", "depth=1", "batch_size=32", "eval_samples=100", "progress=false"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    code = main(
        ["train", "wgan-gp", "--data", "8gaussians", "--steps", "6", "--out", str(out), *TINY]
    )
    assert code == 0
    return out


def _one_line_error(capsys, argv: list[str], code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert err.startswith("gankit: ")
    return err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "wgna", "--data", "8gaussians"], "unknown config key 'wgna'; did you mean wgan"),
        (["train", "gan", "--data", "9gaussians"], "unknown dataset '9gaussians'"),
        (["train", "gan", "--data", "ring", "--steps", "-3"], "steps=-3 is too small"),
        (["train", "gan", "--data", "ring", "--steps", "ten"], "steps='ten' is not a valid int"),
        (["train", "gan", "--data", "ring", "lr=-1"], "lr=-1.0 is too small"),
        (["train", "gan", "--data", "ring", "bogus=1"], "unknown config key 'bogus'"),
        (["train", "gan"], "name a dataset with --data"),
        (["train", "gan", "--data", "ring", "--device", "tpu"], "device 'tpu'"),
        (["train", "gan", "--data", "ring", "--config", "/nonexistent.yaml"], "does not exist"),
    ],
)
def test_bad_train_input(capsys, argv, words):
    assert words in _one_line_error(capsys, argv)


def test_unknown_yaml_key(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: gan\ndata: ring\nmodel_config: {hiden: 3}\n")
    err = _one_line_error(capsys, ["train", "--config", str(cfg)])
    assert "unknown config key 'model_config.hiden'; did you mean model_config.hidden" in err


def test_not_a_run_directory(capsys, tmp_path):
    assert "is not a gankit run" in _one_line_error(capsys, ["sample", str(tmp_path)])
    assert "does not exist" in _one_line_error(capsys, ["eval", str(tmp_path / "nope")])


def test_corrupt_checkpoint(capsys, run_dir, tmp_path):
    bad = tmp_path / "step_00000001.pt"
    latest = sorted((run_dir / "checkpoints").iterdir())[-1]
    bad.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    err = _one_line_error(capsys, ["eval", str(run_dir), "--checkpoint", str(bad)])
    assert "corrupt or truncated" in err


def test_existing_run_is_not_overwritten(capsys, run_dir):
    argv = ["train", "gan", "--data", "ring", "--out", str(run_dir)]
    assert "--resume" in _one_line_error(capsys, argv)


def test_sample_is_reproducible(run_dir, tmp_path):
    a, b, c = (tmp_path / f"{k}.png" for k in "abc")
    assert main(["sample", str(run_dir), "--n", "300", "--seed", "4", "--out", str(a)]) == 0
    assert main(["sample", str(run_dir), "--n", "300", "--seed", "4", "--out", str(b)]) == 0
    assert main(["sample", str(run_dir), "--n", "300", "--seed", "5", "--out", str(c)]) == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_eval_prints_json_and_appends(capsys, run_dir):
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--n", "200"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"eval/em", "eval/modes", "eval/high_quality", "eval/grad_norm_max"} <= set(metrics)
    last = (run_dir / "metrics.jsonl").read_text().splitlines()[-1]
    assert json.loads(last)["source"] == "gankit eval"


def test_resume_continues_to_more_steps(capsys, run_dir):
    assert main(["train", "--resume", str(run_dir), "steps=9"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["step"] == 9


def test_dry_run_prints_config(capsys):
    assert main(["train", "wgan-gp", "--data", "ring", "--dry-run", "seed=7"]) == 0
    out = capsys.readouterr().out
    assert "seed: 7" in out and "gp_lambda: 0.1" in out


@pytest.mark.parametrize("command", [[], ["train"], ["sample"], ["eval"], ["export"]])
def test_help_has_examples(capsys, command):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: gankit" in out
    assert "example" in out or not command


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    """A 3-step cgan on a tiny class-folder dataset of generated PNGs."""
    from PIL import Image

    root = tmp_path_factory.mktemp("folder")
    for k, name in enumerate(["dark", "mid", "bright"]):
        (root / name).mkdir()
        for i in range(6):
            pixels = torch.full((28, 28), 40 + 80 * k + i, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    out = root.parent / "cgan-run"
    argv = ["train", "cgan", "--data", str(root), "--steps", "3", "--out", str(out)]
    assert main([*argv, "z_dim=4", "hidden=16", "depth=1", "batch_size=4", "progress=false"]) == 0
    return out


def test_sample_by_label(cgan_run, tmp_path):
    from PIL import Image

    one, grid = tmp_path / "one.png", tmp_path / "grid.png"
    assert main(["sample", str(cgan_run), "--label", "bright", "--n", "4", "--out", str(one)]) == 0
    assert main(["sample", str(cgan_run), "--label", "all", "--n", "6", "--out", str(grid)]) == 0
    # 2 per class, one row per class: 3 rows of 28 px plus 2 px padding around each
    assert Image.open(grid).size == (2 * 30 + 2, 3 * 30 + 2)
    walk = tmp_path / "walk.png"
    assert main(["sample", str(cgan_run), "--label", "0", "--interpolate", "--out", str(walk)]) == 0


def test_bad_labels(capsys, cgan_run, run_dir):
    assert "out of range" in _one_line_error(capsys, ["sample", str(cgan_run), "--label", "7"])
    assert "give a class index" in _one_line_error(
        capsys, ["sample", str(cgan_run), "--label", "x"]
    )
    assert "unconditional" in _one_line_error(capsys, ["sample", str(run_dir), "--label", "1"])


def test_inception_fetch_command_exists_and_eval_checks_the_network_first(
    capsys, cgan_run, tmp_path, monkeypatch
):
    """The missing-network hint names `gankit data fetch inception`; eval fails before scoring."""
    from gankit.metrics import fid
    from gankit.runs import Run

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(Run, "metrics", lambda *a, **k: pytest.fail("scored without a network"))
    err = _one_line_error(capsys, ["eval", str(cgan_run), "--n", "12", "--inception", "10"])
    assert "gankit data fetch inception" in err
    fetched = []
    monkeypatch.setattr(fid, "fetch_inception", lambda force: fetched.append(force) or tmp_path)
    assert main(["data", "fetch", "inception"]) == 0
    assert fetched == [False] and "Inception network is ready" in capsys.readouterr().out


def test_dry_run_checks_data_like_a_real_run(capsys, tmp_path):
    assert "unknown dataset '8gausians'" in _one_line_error(
        capsys, ["train", "gan", "--data", "8gausians", "--dry-run"]
    )
    missing = tmp_path / "no-such-folder"
    assert "unknown dataset" in _one_line_error(
        capsys, ["train", "cgan", "--data", str(missing), "--dry-run"]
    )
    assert main(["train", "wgan-gp", "--data", "8gaussians", "--dry-run"]) == 0
    assert "gp_lambda: 0.1" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()


def test_train_model_help_lists_every_option_with_its_default(capsys):
    assert main(["train", "cyclegan", "--help"]) == 0
    out = capsys.readouterr().out
    assert "cycle_weight_b=None" in out and "λ of the b → F → G cycle alone" in out
    assert "steps=3000" in out and "training loop:" in out  # the family's loop preset
    assert main(["train", "wgan-gp", "--data", "8gaussians", "--help"]) == 0
    assert "gp_lambda=0.1" in capsys.readouterr().out  # after the toy data's defaults


def test_cache_command_says_where_and_what(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "c"))
    (tmp_path / "c" / "classifiers").mkdir(parents=True)
    (tmp_path / "c" / "classifiers" / "mnist-1x28.safetensors").write_bytes(b"x" * 2000)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "c") in out and "GANKIT_CACHE" in out
    assert "classifiers/  1 entries" in out and "mnist-1x28.safetensors" in out
    assert "datasets/  0 entries" in out


def test_unwritable_out_is_one_line_before_training(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    err = _one_line_error(capsys, ["train", "gan", "--data", "ring", "--out", str(blocker / "r")])
    assert "cannot write the run directory" in err and "give a writable --out" in err
