"""The Python API: train, load, sample, translate, evaluate, resume; str or Path; GankitError."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gankit
from gankit import GankitError
from gankit.runs import Run
from gankit.trainer import Trainer

TOY = {"hidden": 16, "depth": 1, "batch_size": 32, "eval_samples": 100, "log_every": 5}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Run:
    out = tmp_path_factory.mktemp("api") / "toy"
    return gankit.train("wgan-gp", "8gaussians", steps=6, out=str(out), eval_every=6, **TOY)


def test_train_returns_a_run_with_its_directory(toy_run):
    assert isinstance(toy_run, Run) and toy_run.step == 6
    assert (toy_run.dir / "config.yaml").is_file()
    assert (toy_run.dir / "checkpoints" / "step_00000006.pt").is_file()


def test_keyword_overrides_are_validated_like_key_value(tmp_path):
    with pytest.raises(GankitError, match="unknown config key 'sed'; did you mean seed"):
        gankit.train("gan", "ring", out=tmp_path / "a", sed=3)
    with pytest.raises(GankitError, match="lr=-1.0 is too small"):
        gankit.train("gan", "ring", out=tmp_path / "b", lr=-1)
    with pytest.raises(GankitError, match="unknown dataset"):
        gankit.train("gan", "9gaussians", out=tmp_path / "c")
    # tuples as Python values, exactly as betas=0.5,0.9 on the command line
    run = gankit.train("wgan-gp", "8gaussians", steps=1, out=tmp_path / "d", betas=(0.5, 0.9))
    assert run.cfg.model_config.betas == (0.5, 0.9)


def test_load_sample_and_evaluate_agree_with_the_trained_run(toy_run):
    loaded = gankit.load(str(toy_run.dir))
    assert loaded.step == 6 and loaded.checkpoint.name == "step_00000006.pt"
    a = loaded.sample(50, seed=3)
    assert a.shape == (50, 2) and torch.equal(a, toy_run.sample(50, seed=3))
    assert not torch.equal(a, loaded.sample(50, seed=4))
    scores = loaded.evaluate(n=100)
    assert scores["step"] == 6 and scores["n"] == 100 and scores["notes"] == []
    assert {"eval/modes", "eval/em", "eval/grad_norm_mean"} <= set(scores)
    assert scores == gankit.load(Path(toy_run.dir)).evaluate(n=100)  # fixed evaluation seed


def test_load_a_given_step_or_a_clear_error(toy_run, tmp_path):
    assert gankit.load(toy_run.dir, step=6).step == 6
    with pytest.raises(GankitError, match="no checkpoint of step 3: it keeps steps 6"):
        gankit.load(toy_run.dir, step=3)
    with pytest.raises(GankitError, match="does not exist"):
        gankit.load(tmp_path / "nope")


def test_resume_continues_exactly(toy_run, tmp_path):
    # a constant learning rate: a 4-step run's schedule is then the first 4 steps of a 10-step one
    toy = {**TOY, "lr_decay": 0}
    straight = gankit.train("wgan-gp", "8gaussians", steps=10, out=tmp_path / "s", **toy)
    short = gankit.train("wgan-gp", "8gaussians", steps=4, out=tmp_path / "r", **toy)
    resumed = short.resume(steps=10)
    assert resumed.step == 10 and resumed.dir == short.dir
    assert torch.equal(resumed.sample(64, seed=1), straight.sample(64, seed=1))


def test_unconditional_runs_refuse_labels_and_translation(toy_run):
    with pytest.raises(GankitError, match="unconditional"):
        toy_run.sample(4, label=1)
    with pytest.raises(GankitError, match="has no AtoB generator"):
        toy_run.translate(torch.zeros(2, 2))
    with pytest.raises(GankitError, match="at least 1"):
        toy_run.sample(0)


def test_conditional_labels_by_index_name_and_list(tmp_path):
    root = tmp_path / "classes"
    from PIL import Image

    for k, name in enumerate(["dark", "bright"]):
        (root / name).mkdir(parents=True)
        for i in range(12):
            Image.new("L", (8, 8), 40 + 160 * k + i).save(root / name / f"{i}.png")
    run = gankit.train(
        "cgan", str(root), steps=2, out=tmp_path / "c", hidden=16, z_dim=4, batch_size=8,
        eval_samples=20, sample_every=2,
    )  # fmt: skip
    by_index = run.sample(6, seed=1, label=1)
    assert by_index.shape == (6, 1, 8, 8)
    assert run.data.spec.class_names == ["bright", "dark"]  # sorted folder names
    assert torch.equal(by_index, run.sample(6, seed=1, label="Dark"))
    mixed = run.sample(3, seed=2, label=[0, "dark", 1])
    assert mixed.shape == (3, 1, 8, 8)
    with pytest.raises(GankitError, match="give one per sample"):
        run.sample(3, label=[0, 1])
    with pytest.raises(GankitError, match="give a class index"):
        run.sample(3, label="grey")
    grid = run.save_samples(tmp_path / "grid.png", 10, label="all")
    assert grid.is_file()
    notes = run.evaluate(n=20)["notes"]
    assert notes and "gankit train classifier --data" in notes[0]


def test_translate_checks_shapes_and_matches_the_model(tmp_path):
    import numpy as np
    from PIL import Image

    rng, data = np.random.default_rng(0), tmp_path / "pair"
    for domain, shape in (("A", (20, 20)), ("B", (20, 20, 3))):  # grey A, colour B
        (data / f"train{domain}").mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(pixels).save(data / f"train{domain}" / f"{i}.png")
    run = gankit.train(
        "cyclegan", str(data), steps=2, out=tmp_path / "t", ngf=4, ndf=4, blocks=1,
        image_size=16, eval_samples=10, sample_every=2,
    )  # fmt: skip
    x = torch.rand(3, *run.data.spec.shape) * 2 - 1
    y = run.translate(x)
    assert y.shape == (3, *run.data.spec.shape_b)
    assert torch.equal(y, run.model.translate(x, "AtoB").cpu())
    back = run.translate(y, direction="BtoA")
    assert back.shape == x.shape
    with pytest.raises(GankitError, match="images of shape"):
        run.translate(torch.zeros(2, 5, 16, 16))
    with pytest.raises(GankitError, match="use AtoB or BtoA"):
        run.translate(x, direction="sideways")


def test_trainer_accepts_a_string_path(tmp_path):
    cfg = gankit.api.configure("gan", "ring", values={"steps": 2, "progress": False, **TOY})
    run = Run(cfg, torch.device("cpu"))
    Trainer(run, str(tmp_path / "str")).fit()
    assert run.dir == tmp_path / "str" and (run.dir / "metrics.jsonl").is_file()


def test_help_documents_the_api_in_a_fresh_interpreter():
    code = "import gankit; help(gankit.train); help(gankit.load); help(gankit.Run.sample)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for words in ("steps", "overrides", "the last checkpoint", "label", "GankitError"):
        assert words in out.stdout


def test_cli_eval_prints_what_run_evaluate_returns(toy_run, capsys):
    from gankit.cli import main

    assert main(["eval", str(toy_run.dir), "--n", "100"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == gankit.load(toy_run.dir).evaluate(n=100)
