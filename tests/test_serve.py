"""`gankit serve`: the web demo's handlers on tiny runs (conditional, translation, 2-D points, the
theory), one real server answering over HTTP, and the one-line message without the extra."""

import importlib.util
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic import unpaired_folders

import gankit
from gankit.cli import main
from gankit.errors import GankitError

needs_gradio = pytest.mark.skipif(
    importlib.util.find_spec("gradio") is None,
    reason="gradio is not installed: pip install 'gankit[serve]'",
)
CLASSES = ["bright", "dark", "mid"]
TILE = 28 * 3  # 28 px images are enlarged three times (MIN_TILE = 64) ...
PAD = 2 * 3  # ... and so is the grid's padding


def tiny_cgan(root: Path) -> Path:
    """A 3-step cgan (EMA on) on three classes of flat grey 28 px images."""
    data = root / "classes"
    for k, name in enumerate(CLASSES):
        (data / name).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (28, 28), 40 + 80 * k + i).save(data / name / f"{i}.png")
    out = root / "cgan"
    tiny = {"z_dim": 4, "hidden": 16, "depth": 1, "batch_size": 4, "eval_samples": 10}
    gankit.train("cgan", data, steps=3, out=out, **tiny)
    return out


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory) -> Path:
    return tiny_cgan(tmp_path_factory.mktemp("serve-cgan"))


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory) -> Path:
    """A 1-step CycleGAN from greyscale trainA to RGB trainB, 16 px."""
    root = tmp_path_factory.mktemp("serve-unpaired")
    unpaired_folders(root)
    out = root / "run"
    tiny = {"ngf": 4, "ndf": 4, "blocks": 1, "pool_size": 2, "image_size": 16, "batch_size": 2}
    gankit.train("cyclegan", root, steps=1, out=out, eval_samples=10, **tiny)
    return out


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory) -> Path:
    """A 4-step wgan-gp on 8gaussians with a checkpoint every 2 steps."""
    out = tmp_path_factory.mktemp("serve-toy") / "run"
    tiny = {"hidden": 16, "depth": 1, "batch_size": 32, "eval_samples": 100, "eval_every": 4}
    gankit.train("wgan-gp", "8gaussians", steps=4, out=out, ckpt_every=2, **tiny)
    return out


@needs_gradio
def test_conditional_grid_walk_and_page(cgan_run):
    import gradio as gr

    from gankit.serve import SamplesDemo, build_app, load_demo

    demo = load_demo(cgan_run, device="cpu")
    assert isinstance(demo, SamplesDemo) and demo.conditional
    assert [name for name, _ in demo.classes()[1:]] == CLASSES
    every = demo.grid(seed=1, n=2, label="all")  # a row per class, 2 each
    assert every.shape == (3 * TILE + 4 * PAD, 2 * TILE + 3 * PAD, 3)
    assert every.dtype == np.uint8
    one = demo.grid(seed=1, n=4, label="2")
    assert one.shape == (TILE + 2 * PAD, 4 * TILE + 5 * PAD, 3)
    assert np.array_equal(one, demo.grid(seed=1, n=4, label="2"))  # a seed is a picture
    walk = demo.walk_images("2", seed_a=5, seed_b=6, steps=4)
    first = demo.run.sample(1, seed=5, label=2)
    last = demo.run.sample(1, seed=6, label=2)
    assert walk.shape == (4, 1, 28, 28)
    assert torch.allclose(walk[0], first[0], atol=1e-5) and torch.allclose(
        walk[-1], last[0], atol=1e-5
    )
    assert demo.walk("all", 5, 6, 4).shape == (3 * TILE + 4 * PAD, 4 * TILE + 5 * PAD, 3)
    with pytest.raises(GankitError, match="1..100"):
        demo.grid(seed=0, n=0)
    assert isinstance(build_app(demo), gr.Blocks)


@needs_gradio
def test_translation_keeps_the_uploads_size_and_channels(cyclegan_run, tmp_path):
    import gradio as gr

    from gankit.serve import TranslationDemo, build_app, load_demo

    demo = load_demo(cyclegan_run, device="cpu")
    assert isinstance(demo, TranslationDemo) and set(demo.translators) == {"AtoB", "BtoA"}
    grey, colour = tmp_path / "grey.png", tmp_path / "colour.jpg"
    Image.new("L", (37, 23), 90).save(grey)
    Image.new("RGB", (50, 61), (200, 30, 90)).save(colour)
    for path, mode, size in ((grey, "L", (37, 23)), (colour, "RGB", (50, 61))):
        a_to_b, b_to_a = demo.translate(str(path))
        assert a_to_b.size == b_to_a.size == size  # the upload's own size, both directions
        assert a_to_b.mode == b_to_a.mode == mode  # grey in, grey out; colour in, colour out
    assert demo.translate(None) == [None, None]
    assert isinstance(build_app(demo), gr.Blocks)


@needs_gradio
def test_toy_slider_walks_through_the_kept_checkpoints(toy_run):
    import gradio as gr

    from gankit.serve import ToyDemo, build_app, load_demo

    demo = load_demo(toy_run, device="cpu")
    assert isinstance(demo, ToyDemo) and demo.steps() == [2, 4]
    early, late = demo.scatter(0), demo.scatter(1)
    assert early.shape == late.shape and early.shape[2] == 3 and early.shape[0] > 100
    assert not np.array_equal(early, late)  # other weights, other samples
    assert np.array_equal(demo.scatter(0), early)
    with pytest.raises(GankitError, match="0..1"):
        demo.scatter(2)
    assert isinstance(build_app(demo), gr.Blocks)


@needs_gradio
def test_theory_critic_follows_em_while_js_is_flat():
    import gradio as gr

    from gankit.serve import TheoryDemo, build_app

    demo = TheoryDemo()
    picture, table, values = demo.view(-0.5)
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.shape[1] > picture.shape[0]
    assert values["em"] == 0.5 and values["js"] == pytest.approx(np.log(2)) and values["tv"] == 1
    assert values["kl"] == float("inf") and "∞" in table
    assert values["critic_em"] == pytest.approx(0.5, abs=0.1)  # Ŵ ≈ |θ|
    assert values["critic_grad"] == pytest.approx(-1.0, abs=0.2)  # and its slope, sign(θ)
    assert values["js_grad"] == 0.0  # JS is flat in θ ...
    assert abs(values["gan_minimax_grad"]) < 0.1  # ... and a saturated D gives ~ no gradient
    assert isinstance(build_app(demo), gr.Blocks)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_gradio
def test_a_launched_server_answers_with_an_image(cgan_run):
    from gradio_client import Client

    from gankit.serve import build_app, load_demo

    app = build_app(load_demo(cgan_run, device="cpu"))
    port = _free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = client.predict(3, 2, "1", api_name="/generate")  # seed, n, class index
        with Image.open(result) as im:
            assert im.size == (2 * TILE + 3 * PAD, TILE + 2 * PAD)
    finally:
        app.close()


def test_without_gradio_serve_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` raises ImportError
    assert main(["serve", "--theory"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "gankit: gankit serve needs Gradio: pip install 'gankit[serve]'"


@needs_gradio
def test_serve_argument_errors_are_one_line(capsys, tmp_path):
    for argv, expected in (
        (["serve"], "name a run"),
        (["serve", str(tmp_path), "--theory"], "not both"),
        (["serve", str(tmp_path / "nothing")], "does not exist"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert expected in err and "\n" not in err, err


@needs_gradio
def test_a_taken_port_is_one_line(toy_run, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(toy_run), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        err == f"gankit: cannot serve on 127.0.0.1:{port}: the port is in use; give another --port"
    )
