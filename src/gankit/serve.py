"""``gankit serve``: an interactive web demo (Gradio) of a trained run, or of the theory.

What the page offers depends on the run:

* a conditional model (cgan): a class, a seed and a number → a grid of samples; and a latent walk
  between the noise vectors of two seeds for the chosen class;
* an unconditional image model: a seed and a number → a grid;
* a translation model (cyclegan, discogan): an uploaded image translated by each generator the run
  has, resized back to the upload's size (the same code as ``gankit translate``);
* a model of 2-D points: a slider through the run's kept checkpoints, each one's samples drawn over
  the target distribution;
* ``--theory`` (no run): the parallel-lines example of the WGAN paper with a θ slider: TV, KL, JS
  and EM in closed form, and a small critic trained on the spot.

Each demo is a plain object whose methods are the page's handlers (pure functions returning
arrays and images), so tests call them without a browser; Gradio is imported only to lay out the
page (``pip install 'gankit[serve]'``).
"""

import math
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from gankit import checkpoint
from gankit.data.grid import make_grid
from gankit.distances import parallel_lines
from gankit.errors import GankitError
from gankit.runs import Run, latest_checkpoint, require_run, saved_run
from gankit.theory import learned_at
from gankit.translate import load_translator, read_image, translate_images

HOST = "127.0.0.1"
PORT = 7860
MAX_SAMPLES = 100  # per grid (per class with "all classes"): a page, not a dataset
MIN_TILE = 64  # small images (MNIST's 28 px) are enlarged to at least this, pixels kept sharp
THEORY_STEPS = 150  # critic and discriminator steps per θ: well under 2 s on one core
ALL = "all"
HEIGHT = 320  # px of each translation picture: small images are shown enlarged


def require_gradio() -> ModuleType:
    """The gradio module, or a one-line error saying how to install it."""
    try:
        import gradio
    except ImportError:
        raise GankitError("gankit serve needs Gradio: pip install 'gankit[serve]'") from None
    return gradio


def picture(images: torch.Tensor, nrow: int) -> np.ndarray:
    """Images (N, C, H, W) in [-1, 1] tiled ``nrow`` per row as (H', W', 3) uint8, each tile
    enlarged by a whole factor (nearest pixel) to at least :data:`MIN_TILE` pixels high."""
    grid = make_grid(images, nrow=nrow).permute(1, 2, 0).numpy()
    if grid.shape[2] == 1:
        grid = np.repeat(grid, 3, axis=2)
    factor = max(1, math.ceil(MIN_TILE / images.shape[-2]))
    return np.ascontiguousarray(grid.repeat(factor, axis=0).repeat(factor, axis=1))


def figure_array(fig: Figure) -> np.ndarray:
    """A Matplotlib figure as (H, W, 3) uint8 pixels (the Agg canvas: no pyplot, thread-safe)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def _count(n: float | int) -> int:
    n = int(n)
    if not 1 <= n <= MAX_SAMPLES:
        raise GankitError(f"n = {n}: choose 1..{MAX_SAMPLES} samples")
    return n


# --------------------------------------------------------------------------------------------
# Image models: samples and latent walks
# --------------------------------------------------------------------------------------------


class SamplesDemo:
    """Grids of samples of an image model; conditional models also pick a class and walk."""

    kind = "samples"
    on_load: tuple = ()  # (handler, inputs, outputs) of each picture drawn as the page opens

    def __init__(self, run: Run) -> None:
        self.run = run
        self.conditional = run.model.conditional
        self.lock = threading.Lock()  # one forward pass at a time on the shared model
        run.model.eval()

    @property
    def title(self) -> str:
        return f"{self.run.cfg.model} on {Path(self.run.cfg.data).name}, step {self.run.step}"

    def classes(self) -> list[tuple[str, str]]:
        """Dropdown choices (shown name, value): every class at once, then each class by index."""
        names = self.run.data.spec.class_names
        return [("all classes (a row each)", ALL)] + [(n, str(i)) for i, n in enumerate(names)]

    def grid(self, seed: float, n: float, label: str = ALL) -> np.ndarray:
        """``n`` samples of noise ``seed`` (conditional: of class ``label``, or ``n`` of every
        class with "all") as one picture (H, W, 3) uint8, 10 per row (a row per class)."""
        n, seed = _count(n), int(seed or 0)  # a cleared box is None
        with self.lock:
            if not self.conditional:
                return picture(self.run.sample(n, seed=seed), min(n, 10))
            if label in (None, ALL):
                k = self.run.data.spec.num_classes
                return picture(self.run.sample(n * k, seed=seed), n)  # classes in blocks of n
            return picture(self.run.sample(n, seed=seed, label=label), min(n, 10))

    @torch.no_grad()
    def walk_images(self, label: str, seed_a: float, seed_b: float, steps: float) -> torch.Tensor:
        """(rows · steps, C, H, W): from the first noise vector of ``seed_a`` (the first image
        of its grid) to that of ``seed_b`` in ``steps`` even steps; one row per class with
        "all", every row on the same path."""
        steps = max(2, min(int(steps), 20))
        run = self.run
        z_dim = run.cfg.model_config.z_dim
        ends = [
            torch.randn(1, z_dim, generator=torch.Generator().manual_seed(int(s or 0)))
            for s in (seed_a, seed_b)
        ]  # as Run.sample draws them
        z = torch.lerp(ends[0], ends[1], torch.linspace(0, 1, steps)[:, None])
        k = run.data.spec.num_classes
        rows = list(range(k)) if label in (None, ALL) else [int(run.labels(label, 1))]
        y = torch.tensor(rows).repeat_interleave(steps)
        net = run.model.generators()["generator"]
        with self.lock, run.averaged():
            return net(z.repeat(len(rows), 1).to(run.device), y.to(run.device)).cpu()

    def walk(self, label: str, seed_a: float, seed_b: float, steps: float) -> np.ndarray:
        """The latent walk as a picture: one strip of ``steps`` images per class shown."""
        images = self.walk_images(label, seed_a, seed_b, steps)
        return picture(images, max(2, min(int(steps), 20)))

    def ui(self, gr: ModuleType) -> None:
        with gr.Row():
            with gr.Column(scale=1):
                label = None
                if self.conditional:
                    label = gr.Dropdown(self.classes(), value=ALL, label="class")
                seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="seed")
                n = gr.Slider(1, MAX_SAMPLES, value=10, step=1, label="samples (per class)")
                button = gr.Button("generate", variant="primary", elem_id="generate")
            grid = gr.Image(label="samples", format="png", type="numpy", elem_id="samples")
        inputs = [seed, n] + ([label] if label else [])
        button.click(self.grid, inputs, grid, api_name="generate")
        self.on_load = ((self.grid, inputs, grid),)
        if self.conditional:
            self._walk_ui(gr, label)

    def _walk_ui(self, gr: ModuleType, label: Any) -> None:
        gr.Markdown("### latent walk: from seed A's noise to seed B's, class fixed")
        with gr.Row():
            with gr.Column(scale=1):
                seed_a = gr.Number(0, precision=0, minimum=0, label="seed A")
                seed_b = gr.Number(1, precision=0, minimum=0, label="seed B")
                steps = gr.Slider(2, 20, value=10, step=1, label="steps")
                button = gr.Button("walk", elem_id="walk")
            strip = gr.Image(label="walk", format="png", type="numpy", elem_id="walk-strip")
        walk_inputs = [label, seed_a, seed_b, steps]
        button.click(self.walk, walk_inputs, strip, api_name="walk")
        self.on_load += ((self.walk, walk_inputs, strip),)


# --------------------------------------------------------------------------------------------
# Translation models
# --------------------------------------------------------------------------------------------


class TranslationDemo:
    """An uploaded image through each generator of a CycleGAN/DiscoGAN run (A → B, B → A)."""

    kind = "translation"
    on_load: tuple = ()  # (handler, inputs, outputs) of each picture drawn as the page opens

    def __init__(self, path: Path, device: torch.device, title: str) -> None:
        self.translators = {"AtoB": load_translator(path, "AtoB", device)}
        try:  # a DiscoGAN variant may keep only g_ab
            self.translators["BtoA"] = load_translator(path, "BtoA", device)
        except GankitError:
            pass
        self.title = title
        self.lock = threading.Lock()

    def translate(self, image_path: str | None) -> list[Image.Image | None]:
        """The upload read as ``gankit translate`` reads a file, translated by AtoB (taken as a
        domain-A image) and by BtoA (taken as domain B) when the run has it; each the upload's
        size. None for no upload (a cleared input)."""
        if not image_path:
            return [None, None]
        im = read_image(Path(image_path))
        with self.lock:
            out = [translate_images(t, [im])[0] for t in self.translators.values()]
        return out + [None] * (2 - len(out))

    def ui(self, gr: ModuleType) -> None:
        with gr.Row():
            upload = gr.Image(
                type="filepath",
                image_mode=None,
                label="your image",
                sources=["upload"],
                height=HEIGHT,
            )
            a_to_b = gr.Image(
                label="A → B", format="png", type="pil", elem_id="AtoB", height=HEIGHT
            )
            b_to_a = gr.Image(
                label="B → A",
                format="png",
                type="pil",
                visible="BtoA" in self.translators,
                height=HEIGHT,
            )
        button = gr.Button("translate", variant="primary", elem_id="generate")
        button.click(self.translate, upload, [a_to_b, b_to_a], api_name="translate")
        upload.upload(self.translate, upload, [a_to_b, b_to_a])


# --------------------------------------------------------------------------------------------
# 2-D point models: a slider through the checkpoints
# --------------------------------------------------------------------------------------------


class ToyDemo:
    """Samples of each kept checkpoint of a 2-D run drawn over the target distribution."""

    kind = "toy"
    on_load: tuple = ()  # (handler, inputs, outputs) of each picture drawn as the page opens

    def __init__(self, run: Run, checkpoints: list[Path], n: int = 1000) -> None:
        self.run, self.checkpoints, self.n = run, checkpoints, n
        self.title = f"{run.cfg.model} on {Path(run.cfg.data).name}"
        self.lock = threading.Lock()  # the checkpoints share one model: load, sample, draw
        self.folder = tempfile.TemporaryDirectory(prefix="gankit-serve-")
        self.cache: dict[int, np.ndarray] = {}

    def steps(self) -> list[int]:
        return [checkpoint.step_of(p) for p in self.checkpoints]

    def scatter(self, index: float) -> np.ndarray:
        """The samples of checkpoint number ``index`` (0 = oldest kept) over the target's real
        points and modes, as (H, W, 3) uint8 (the picture training writes to samples/)."""
        index = int(index)
        if not 0 <= index < len(self.checkpoints):
            raise GankitError(f"checkpoint {index}: choose 0..{len(self.checkpoints) - 1}")
        with self.lock:
            if index not in self.cache:
                self.cache[index] = self._draw(index)
            return self.cache[index]

    def _draw(self, index: int) -> np.ndarray:
        state = checkpoint.load(self.checkpoints[index])
        self.run.load_state_dict(state, weights_only=True)
        self.run.step = state["step"]
        fake = self.run.sample(self.n, seed=0)
        path = Path(self.folder.name) / f"{index}.png"
        title = f"{self.run.cfg.model} step {self.run.step}: {self.n} samples"
        self.run.data.render(fake, path, title=title)
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))

    def ui(self, gr: ModuleType) -> None:
        steps = self.steps()
        last = len(steps) - 1
        slider = gr.Slider(
            0,
            max(last, 1),
            value=last,
            step=1,
            label=f"checkpoint (0 = step {steps[0]} … {last} = step {steps[-1]})",
            interactive=last > 0,
        )
        plot = gr.Image(label="samples over the target", format="png", elem_id="samples")
        button = gr.Button("show", variant="primary", elem_id="generate")
        # always_last: while the slider moves, one picture is drawn and the latest waits
        slider.change(self.scatter, slider, plot, api_name="scatter", trigger_mode="always_last")
        button.click(self.scatter, slider, plot)
        self.on_load = ((self.scatter, [slider], plot),)


# --------------------------------------------------------------------------------------------
# Theory: the parallel-lines example
# --------------------------------------------------------------------------------------------


def theory_values(
    theta: float, steps: int = THEORY_STEPS, seed: int = 0
) -> tuple[dict[str, float], torch.nn.Module]:
    """Closed-form TV, KL, JS, EM of (P_0, P_θ), their θ-derivatives (0 for TV, KL and JS away
    from θ = 0; sign(θ) for EM), and what a critic and a discriminator trained ``steps`` steps
    at θ measure (:func:`gankit.theory.learned_at`); also the critic f."""
    theta = float(theta)
    closed = parallel_lines(theta)
    learned, critic = learned_at(theta, steps=steps, seed=seed)
    values = {
        "theta": theta,
        **closed,
        "js_grad": 0.0,  # JS is log 2 on each side of 0: flat
        "em_grad": float(np.sign(theta)),
        **learned,
    }
    return values, critic


def _theory_plane(ax: Any, theta: float, critic: torch.nn.Module) -> None:
    """The two segments over the critic's values f(x, z)."""
    xs, zs = np.linspace(-1.2, 1.2, 121), np.linspace(-0.1, 1.1, 61)
    grid = torch.tensor(np.stack(np.meshgrid(xs, zs), -1).reshape(-1, 2), dtype=torch.float32)
    with torch.no_grad():
        f = critic(grid).reshape(len(zs), len(xs)).numpy()
    image = ax.imshow(
        f, extent=(xs[0], xs[-1], zs[0], zs[-1]), origin="lower", cmap="coolwarm", aspect="auto"
    )
    ax.figure.colorbar(image, ax=ax, fraction=0.05, pad=0.02, label="critic f")
    ax.plot([0, 0], [0, 1], color="black", lw=4, label="P_0: (0, z)")
    ax.plot([theta, theta], [0, 1], color="tab:green", lw=4, label="P_θ: (θ, z)")
    ax.set(title=f"z ~ U[0, 1], θ = {theta:+.2f}", xlabel="x", ylabel="z")
    ax.legend(loc="lower left", fontsize=8)


def _theory_curves(ax: Any, values: dict[str, float]) -> None:
    """TV, KL, JS and EM against θ from the closed forms, the learned estimates at θ."""
    theta, log2 = values["theta"], math.log(2.0)
    grid = np.linspace(-1, 1, 401)
    ax.plot(grid, np.abs(grid), color="tab:blue", lw=2, label="EM = |θ|")
    for level, colour, name in ((1.0, "tab:purple", "TV = 1"), (log2, "tab:orange", "JS = log 2")):
        ax.plot([-1, 0], [level, level], color=colour, lw=2, label=name)
        ax.plot([0, 1], [level, level], color=colour, lw=2)
        ax.plot([0], [level], "o", mfc="white", mec=colour, ms=6)  # the jump at θ = 0
    ax.plot([-1, 1], [1.12, 1.12], color="tab:red", lw=2, ls="--", label="KL = ∞ (θ ≠ 0)")
    ax.plot([0], [0], "o", color="black", ms=6, label="all four 0 at θ = 0")
    ax.axvline(theta, color="tab:green", lw=1)
    ax.plot(
        [theta],
        [values["critic_em"]],
        "D",
        color="tab:blue",
        ms=8,
        mfc="white",
        label=f"critic: E f(x_0) - E f(x_θ) = {values['critic_em']:.3f}",
    )
    ax.set(title="distances between P_0 and P_θ", xlabel="θ", ylim=(-0.05, 1.75), xlim=(-1, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", fontsize=7, ncol=2, framealpha=0.95)  # above the curves


def theory_markdown(values: dict[str, float]) -> str:
    """The values at θ as a Markdown table (closed forms beside the learned estimates)."""
    v = values
    rows = [
        ("TV", f"{v['tv']:.3f}", "0 (flat)", ""),
        ("KL(P_θ‖P_0)", "∞" if math.isinf(v["kl"]) else f"{v['kl']:.3f}", "0 (flat)", ""),
        (
            "JS",
            f"{v['js']:.3f}",
            f"{v['js_grad']:.0f} (flat)",
            f"discriminator: ∂/∂θ E log(1 − D(x_θ)) = {v['gan_minimax_grad']:.3f}",
        ),
        (
            "EM",
            f"{v['em']:.3f}",
            f"{v['em_grad']:+.0f}",
            f"critic: Ŵ = {v['critic_em']:.3f}, ∂/∂θ −E f(x_θ) = {v['critic_grad']:+.3f}",
        ),
    ]
    head = "| distance | value at θ | ∂/∂θ (closed form) | learned at θ |\n|---|---|---|---|\n"
    return head + "\n".join(f"| {' | '.join(r)} |" for r in rows)


class TheoryDemo:
    """The parallel-lines example with a θ slider."""

    kind = "theory"
    on_load: tuple = ()  # (handler, inputs, outputs) of each picture drawn as the page opens
    title = "theory: two parallel segments (WGAN paper, Example 1)"

    def __init__(self, steps: int = THEORY_STEPS) -> None:
        self.steps = steps
        self.lock = threading.Lock()  # torch's thread setting is process-wide
        learned_at(0.5, steps=2)  # first-call costs (allocator, autograd) before the first click

    def view(self, theta: float) -> tuple[np.ndarray, str, dict[str, float]]:
        """The picture (segments over the critic; the four distances against θ), the table of
        values, and the values themselves."""
        with self.lock:
            values, critic = theory_values(theta, self.steps)
        fig = Figure(figsize=(11, 4), dpi=90)
        plane, curves = fig.subplots(1, 2)
        _theory_plane(plane, values["theta"], critic)
        _theory_curves(curves, values)
        fig.subplots_adjust(left=0.05, right=0.98, bottom=0.13, top=0.91, wspace=0.3)
        return figure_array(fig), theory_markdown(values), values

    def _view(self, theta: float) -> tuple[np.ndarray, str]:
        return self.view(theta)[:2]

    def ui(self, gr: ModuleType) -> None:
        gr.Markdown(
            "P_0 is the law of (0, z) and P_θ of (θ, z), z ~ U[0, 1]. For θ ≠ 0 the segments "
            "are disjoint: TV, KL and JS do not change with θ, so they give a generator no "
            "gradient; EM = |θ| does. A WGAN-GP critic trained on the spot (a few hundred "
            "steps on samples) recovers EM and its slope."
        )
        slider = gr.Slider(-1, 1, value=0.5, step=0.05, label="θ", elem_id="theta")
        plot = gr.Image(label="P_0, P_θ and the critic", format="png", elem_id="samples")
        table = gr.Markdown(elem_id="values")
        slider.change(
            self._view, slider, [plot, table], api_name="theta", trigger_mode="always_last"
        )
        self.on_load = ((self._view, [slider], [plot, table]),)


Demo = SamplesDemo | TranslationDemo | ToyDemo | TheoryDemo


# --------------------------------------------------------------------------------------------
# Loading and serving
# --------------------------------------------------------------------------------------------


def load_demo(run_dir: str | Path | None, *, theory: bool = False, device: str = "auto") -> Demo:
    """The demo of the run in ``run_dir`` (its latest checkpoint), or of the theory."""
    if theory:
        if run_dir is not None:
            raise GankitError("give a run directory or --theory, not both")
        return TheoryDemo()
    if run_dir is None:
        raise GankitError("name a run: gankit serve RUN_DIR (or gankit serve --theory)")
    from gankit.device import resolve_device

    path = latest_checkpoint(require_run(run_dir))
    saved = saved_run(path)
    if saved.cls.needs_inputs:
        if saved.spec.kind != "unpaired":
            raise GankitError(
                f"{saved.cfg.model} on {saved.spec.name} translates points: gankit serve shows "
                "image translation runs"
            )
        title = f"{saved.cfg.model} on {Path(saved.cfg.data).name}, step {saved.step}"
        return TranslationDemo(path, resolve_device(device), title)
    run = Run.from_checkpoint(path, device=device)
    if saved.spec.kind == "points":
        return ToyDemo(run, checkpoint.list_checkpoints(path.parent))
    return SamplesDemo(run)


def build_app(demo: Demo) -> Any:
    """The Gradio Blocks page of ``demo`` (not launched); the default picture renders on load."""
    gr = require_gradio()
    with gr.Blocks(title=f"gankit: {demo.title}", analytics_enabled=False) as app:
        gr.Markdown(f"## gankit · {demo.title}")
        demo.ui(gr)
        for fn, inputs, outputs in demo.on_load:
            app.load(fn, inputs, outputs)
    return app


def run_serve(
    run_dir: str | None, *, theory: bool, host: str = HOST, port: int = PORT, device: str = "auto"
) -> None:
    """``gankit serve``: load, build, and serve until Ctrl-C."""
    require_gradio()  # before loading anything: the missing extra is the first thing to say
    demo = load_demo(run_dir, theory=theory, device=device)
    app = build_app(demo)
    print(f"gankit: serving {demo.title} on http://{host}:{port} (Ctrl-C stops)", file=sys.stderr)
    try:
        app.launch(server_name=host, server_port=port, quiet=True)
    except OSError as exc:  # Gradio's text for a taken port names its own settings
        reason = "the port is in use" if "empty port" in str(exc) else str(exc).splitlines()[0]
        raise GankitError(f"cannot serve on {host}:{port}: {reason}; give another --port") from None
