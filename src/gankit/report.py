"""``gankit report RUN [RUN ...] --out report.html``: one self-contained HTML page about saved runs.

Only what a run directory holds is read (``config.yaml``, ``metrics.jsonl``, ``samples/*.png``, the
latest checkpoint's data spec), never its training data, except that toy runs get their
real-vs-real floors computed from the toy distribution (milliseconds). The page embeds every
picture as a ``data:`` URI and carries no external script, style or font, so it opens from a
``file://`` URL without a network and can be mailed as one file.

One run: its resolved config, loss curves, every score over training beside its real-vs-real floor,
its sample pictures over training (a slider), translation rows per direction, and how each score
is measured. Several runs: a comparison table (final and best value of each shared score, steps,
wall time, the config keys that differ) and overlaid curves, then each run's own section.

The HTML comes from ``templates/report.html.j2`` (Jinja2, autoescaped); this module only
gathers values and draws charts (matplotlib, Agg).
"""

import base64
import datetime
import fnmatch
import functools
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit import checkpoint
from gankit.config import load_yaml
from gankit.data import data_kind
from gankit.errors import GankitError
from gankit.runs import require_run
from gankit.score_protocols import (
    SCORES,
    UNKNOWN,
    Score,
    is_per_class,
    is_reference,
    reference_key,
    score_of,
    score_order,
)

MAX_FRAMES = 16  # sample pictures per slider: enough to see progress, small enough to mail
SAMPLE_NAME = re.compile(r"step_(\d+)\.png$")


# ----------------------------------------------------------------------------- reading a run


@dataclass
class RunLog:
    """What one run directory says about its training.

    Attributes:
        records: the trainer's metrics.jsonl records in order; ``evals``: records appended by
            ``gankit eval`` (another sample count, so not drawn as curves).
        samples: (step, path) of each picture in samples/, by step.
        spec: the latest checkpoint's data spec as stored (None without one).
    """

    path: Path
    config: dict[str, Any]
    records: list[dict[str, Any]]
    evals: list[dict[str, Any]]
    samples: list[tuple[int, Path]]
    checkpoints: list[Path]
    spec: dict[str, Any] | None = None
    name: str = ""

    @property
    def model(self) -> str:
        return str(self.config.get("model", "?"))

    @property
    def data(self) -> str:
        return str(self.config.get("data", "?"))

    @property
    def kind(self) -> str:
        return data_kind(self.data)

    def series(self) -> dict[str, list[tuple[int, float]]]:
        """Every numeric value logged by the trainer: key → [(step, value), ...], steps rising.

        A run resumed from an earlier checkpoint logs those steps again: the later records
        replace the earlier ones from that step on, as the resumed run replaced the weights.
        """
        out: dict[str, list[tuple[int, float]]] = {}
        for record in self.records:
            step = int(record["step"])
            for key, value in record.items():
                if key not in ("step", "time") and isinstance(value, int | float):
                    points = out.setdefault(key, [])
                    while points and points[-1][0] >= step:
                        points.pop()
                    points.append((step, float(value)))
        return out

    def last_step(self) -> int:
        steps = [int(r["step"]) for r in self.records] + [s for s, _ in self.samples]
        return max(steps, default=0)

    def wall_time(self) -> float | None:
        """Seconds from the first to the last trainer record (pauses of a resumed run
        included)."""
        times = [r["time"] for r in self.records if isinstance(r.get("time"), int | float)]
        return max(times) - min(times) if len(times) > 1 else None

    def resolved(self) -> dict[str, Any]:
        """What the latest training of the run resolved: device, precision, impl, compile (the
        first record of each training holds it; {} for runs of older versions)."""
        found = [r["resolved"] for r in self.records if isinstance(r.get("resolved"), dict)]
        return found[-1] if found else {}

    def protocol(self) -> dict[str, Any]:
        """The protocol dict of the last evaluation that recorded one ({} when none did)."""
        found = [r["protocol"] for r in self.records if isinstance(r.get("protocol"), dict)]
        return found[-1] if found else {}


def read_config(run_dir: Path) -> dict[str, Any]:
    """config.yaml, or the config inside the latest checkpoint when the YAML is gone."""
    if (run_dir / "config.yaml").is_file():
        return load_yaml(run_dir / "config.yaml")
    return checkpoint.load(checkpoint.latest(run_dir / "checkpoints"))["config"]


def read_records(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(trainer records, `gankit eval` records) of metrics.jsonl; a line cut short by a crash is
    skipped."""
    if not path.is_file():
        return [], []
    trainer, evals = [], []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            (evals if record.get("source") else trainer).append(record)
    return trainer, evals


def read_spec(checkpoints: list[Path]) -> dict[str, Any] | None:
    """The data spec stored in the latest checkpoint (class names, image shape), if any."""
    if not checkpoints:
        return None
    try:
        return checkpoint.load(checkpoints[-1]).get("spec")
    except GankitError:  # a damaged checkpoint costs the captions their class names only
        return None


def read_run(path: str | Path) -> RunLog:
    """A run directory's logs, or one line saying why ``path`` is not a run with anything to
    report."""
    run_dir = require_run(path)
    records, evals = read_records(run_dir / "metrics.jsonl")
    samples = sorted(
        (int(m.group(1)), p)
        for p in (run_dir / "samples").glob("step_*.png")
        if (m := SAMPLE_NAME.search(p.name))
    )
    if not records and not samples:
        raise GankitError(
            f"{run_dir} has no metrics.jsonl records and no samples yet: report on it after its "
            "first log_every steps"
        )
    ckpts = checkpoint.list_checkpoints(run_dir / "checkpoints")
    config = read_config(run_dir)
    return RunLog(run_dir, config, records, evals, samples, ckpts, read_spec(ckpts), run_dir.name)


def name_runs(runs: list[RunLog]) -> None:
    """Each run's label: its directory name, or its path when two names clash."""
    names = [r.path.name for r in runs]
    for run in runs:
        run.name = run.path.name if names.count(run.path.name) == 1 else str(run.path)


# ----------------------------------------------------------------------------- toy floors


@functools.cache
def toy_floors(data: str, n: int) -> dict[str, float]:
    """Real-vs-real values of the toy scores under the evaluation protocol: two independent
    real sets of ``n`` points (the reference at the evaluation seed, and another seed) scored
    as if one of them were generated."""
    from gankit.data import ToySource, UnpairedPointsSource, open_data
    from gankit.evaluate import EVAL_SEED
    from gankit.metrics.toy import toy_metrics

    source = open_data(data)
    if isinstance(source, ToySource):
        real, modes, std = source.reference, source.dist.modes, source.dist.std
    elif isinstance(source, UnpairedPointsSource):
        dist = source.dist("b")

        def real(k: int, seed: int) -> Any:
            return source.reference(k, seed, "b")

        modes, std = dist.modes, dist.std
    else:
        return {}
    scores = toy_metrics(real(n, EVAL_SEED + 2), real(n, EVAL_SEED), modes, std)
    return {"eval/em": scores["eval/em"], "eval/high_quality": scores["eval/high_quality"]}


def computed_floors(run: RunLog) -> dict[str, float]:
    """Floors the run did not log but the report can compute cheaply (toy data only)."""
    if run.kind not in ("points", "unpaired-points"):
        return {}
    n = int((run.config.get("train") or {}).get("eval_samples", 2000))
    return toy_floors(run.data, n)


# ----------------------------------------------------------------------------- charts

Points = list[tuple[int, float]]
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


@dataclass
class Chart:
    """One embedded PNG chart: ``uri`` is a ``data:image/png;base64,...`` URI."""

    title: str
    uri: str
    caption: str = ""


def png_uri(data: bytes, compact: bool = False) -> str:
    """A data URI; ``compact`` for drawings (charts, scatter plots), never for photos."""
    data = compact_png(data) if compact else data
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def compact_png(data: bytes) -> bytes:
    """A colour drawing as a 256-colour palette PNG, about a third of the size, which keeps a
    many-run report small enough to mail (a photo would lose colours: not for samples)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        if image.mode not in ("RGB", "RGBA"):
            return data
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    palette.save(buf, format="PNG", optimize=True)
    return buf.getvalue() if buf.tell() < len(data) else data


def new_figure(title: str, width: float = 4.6, height: float = 3.0) -> tuple[Any, Any]:
    """A matplotlib Figure on the Agg canvas (no pyplot state, no display) and its axes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, ax


def figure_uri(fig: Any, ax: Any) -> str:
    values = [float(v) for line in ax.get_lines() for v in line.get_ydata()]
    values = [v for v in values if math.isfinite(v)]
    if values and min(values) > 0 and max(values) / min(values) > 50:
        ax.set_yscale("log")  # an early FID of 2,000 beside a floor of 6: both stay readable
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    # fixed margins: tight_layout would lay out every label once more, the slowest step here
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.15, top=0.9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return png_uri(buf.getvalue(), compact=True)


def draw(ax: Any, points: Points, label: str, colour: str, dashed: bool = False) -> None:
    """A curve; a single point as a marker, so a one-evaluation run still shows its value."""
    steps, values = [s for s, _ in points], [v for _, v in points]
    style = {"linestyle": "--", "linewidth": 1.2} if dashed else {"linewidth": 1.6}
    ax.plot(
        steps, values, color=colour, label=label, marker="o" if len(points) == 1 else None, **style
    )


def draw_reference(ax: Any, ref: Points | float, label: str, colour: str = "0.45") -> None:
    """A floor or baseline: a logged series, or a constant the report computed."""
    if isinstance(ref, int | float):
        ax.axhline(ref, color=colour, linestyle="--", linewidth=1.2, label=label)
    elif ref:
        draw(ax, ref, label, colour, dashed=True)


def metric_chart(key: str, points: Points, ref: tuple[Points | float, str] | None) -> Chart:
    """One score over training with its floor (or baseline) beside it."""
    fig, ax = new_figure(key)
    draw(ax, points, key.removeprefix("eval/"), COLOURS[0])
    if ref is not None:
        draw_reference(ax, *ref)
    return Chart(key, figure_uri(fig, ax), value_caption(key, points, ref))


def group_chart(title: str, series: dict[str, Points], ref: tuple[float, str] | None) -> Chart:
    """Related values on one set of axes (the losses; a critic's gradient norms), with a
    constant reference line."""
    fig, ax = new_figure(title)
    prefix = "eval/" if all(k.startswith("eval/") for k in series) else ""
    for i, (key, points) in enumerate(sorted(series.items())):
        draw(ax, points, key.removeprefix(prefix), COLOURS[i % len(COLOURS)])
    if ref is not None:
        draw_reference(ax, *ref)
    step = max(p[-1][0] for p in series.values())
    caption = f"step {step}: " + ", ".join(
        f"{k.removeprefix(prefix)} {fmt(p[-1][1])}" for k, p in sorted(series.items())
    )
    return Chart(title, figure_uri(fig, ax), caption)


def per_class_chart(per_class: dict[str, Points], floor: Points | None) -> Chart:
    """cFID of every class on one set of axes, with the mean of the per-class floors."""
    import matplotlib

    fig, ax = new_figure("cFID per class")
    cmap = matplotlib.colormaps["tab10"]
    for i, (key, points) in enumerate(per_class.items()):
        draw(ax, points, key.removeprefix("eval/cfid_class/"), cmap(i % 10))
    if floor:
        draw_reference(ax, floor, "mean real-vs-real floor", "black")
    return Chart(
        "cFID per class",
        figure_uri(fig, ax),
        "each class's generated images against its real test images",
    )


Reference = tuple[Points | float, str]  # a floor or baseline (a series or a constant), its name


def overlay_chart(key: str, curves: list[tuple[str, Points, Reference | None]]) -> Chart:
    """One shared score of several runs, each with its floor dashed in its colour; a floor
    that is the same for every run is drawn once, in grey."""
    fig, ax = new_figure(key)
    refs = [ref for _, _, ref in curves]
    same = all(r is not None and r == refs[0] for r in refs)  # e.g. one toy floor for all
    shared = refs[0] if same else None
    for i, (name, points, ref) in enumerate(curves):
        colour = COLOURS[i % len(COLOURS)]
        draw(ax, points, name, colour)
        if ref is not None and shared is None:
            draw_reference(ax, ref[0], f"{name}: {ref[1]}", colour)
    if shared is not None:
        draw_reference(ax, *shared)
    return Chart(key, figure_uri(fig, ax))


def fmt(value: Any) -> str:
    """A number for a table cell: 4 significant digits; other values as text."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—" if value is None else str(value)
    return f"{value:.4g}"


def best_of(key: str, points: Points) -> float | None:
    """The best value of a score over training, or None when neither direction is better."""
    better = score_of(key).better
    values = [v for _, v in points]
    if not values or not better:
        return None
    return min(values) if better == "lower" else max(values)


def value_caption(key: str, points: Points, ref: tuple[Points | float, str] | None) -> str:
    step, last = points[-1]
    parts = [f"step {step}: {fmt(last)}"]
    best = best_of(key, points)
    if best is not None and len(points) > 1:
        parts.append(f"best {fmt(best)} ({score_of(key).better} is better)")
    if ref is not None:
        value = ref[0] if isinstance(ref[0], int | float) else (ref[0][-1][1] if ref[0] else None)
        parts.append(f"{ref[1]} {fmt(value)}")
    return "; ".join(parts)


def reference_of(
    key: str, series: dict[str, Points], computed: dict[str, float]
) -> tuple[Points | float, str] | None:
    """The floor or baseline drawn beside ``key``: logged, computed here, or a known bound."""
    logged = reference_key(key)
    if logged is not None and logged[0] in series:
        return series[logged[0]], logged[1]
    if key in computed:
        return computed[key], "real-vs-real floor"
    if key.startswith(("eval/grad_norm", "eval/lipschitz/")):
        return 1.0, "1 (a 1-Lipschitz critic)"
    return None


# ----------------------------------------------------------------------------- sample pictures

GRID_PAD = 2  # gankit.data.grid.make_grid's default padding, which the trainer's grids use
TRANSLATION_COLUMNS = ("a", "G(a)", "F(G(a))", "b", "F(b)", "G(F(b))")
DISCOGAN_COLUMNS = {"discogan": 6, "gan-recon": 3, "gan": 2}  # what each variant trains


@dataclass
class Filmstrip:
    """The sample pictures of a run over training, shown one at a time with a slider."""

    id: str
    frames: list[tuple[int, str]]
    caption: str
    total: int
    width: int
    columns: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)


@dataclass
class Direction:
    """One translation direction: the (input, translation, reconstruction) rows of the last
    sample picture and that direction's scores as (name, value, reference)."""

    title: str
    uri: str
    width: int
    columns: list[str]
    scores: list[tuple[str, str, str]]
    caption: str


def model_traits(run: RunLog) -> tuple[bool, bool]:
    """(conditional, translates) as the run's model family declares them."""
    from gankit.models import MODELS

    cls = MODELS.get(run.model)
    return (bool(cls and cls.conditional), bool(cls and cls.needs_inputs))


def translation_columns(run: RunLog) -> list[str]:
    variant = (run.config.get("model_config") or {}).get("variant", "discogan")
    count = DISCOGAN_COLUMNS.get(variant, 6) if run.model == "discogan" else 6
    return list(TRANSLATION_COLUMNS[:count])


def class_rows(run: RunLog) -> list[str]:
    """The class(es) in each row of a conditional run's picture: the trainer draws
    ``ImageSource.preview_n`` samples in class blocks (``labels_for(n, None)``), 10 per row."""
    from gankit.data import ImageSource

    spec = run.spec or {}
    k = int(spec.get("num_classes") or 0)
    if k < 1:
        return []
    names = list(spec.get("class_names") or []) or [str(i) for i in range(k)]
    n, per_row = ImageSource.preview_n, 10
    rows = []
    for start in range(0, n, per_row):
        labels = sorted({i * k // n for i in range(start, min(start + per_row, n))})
        rows.append(" / ".join(names[i] for i in labels))
    return rows


def sample_caption(run: RunLog) -> tuple[str, list[str], list[str]]:
    """(what a sample picture shows, column labels, row labels)."""
    conditional, translates = model_traits(run)
    seed = (run.config.get("train") or {}).get("seed", 0)
    same = f"the same noise (seed {seed}) at every step, so a cell follows one latent point"
    if run.kind == "points":
        return (
            "Generated points (blue) over as many real points (grey); red crosses are the "
            f"modes. The same noise (seed {seed}) at every step: each point follows one z.",
            [],
            [],
        )
    if run.kind == "unpaired-points":
        return (
            "Translations A → B (blue) of domain-A points over real B points (grey); red "
            "crosses are B's modes. The same inputs at every step.",
            [],
            [],
        )
    if translates:
        return (TRANSLATION_CAPTION, translation_columns(run), [])
    if conditional:
        rows = class_rows(run)
        what = "Row r holds the class named at its left" if rows else "One row per class"
        return (f"{what}; the 10 columns are 10 noise vectors, {same}.", [], rows)
    return (f"100 samples, 10 per row, {same}.", [], [])


TRANSLATION_CAPTION = (
    "One held-out test example per row, the same at every step: a and b are test images of "
    "domains A and B, G translates A → B and F translates B → A, so F(G(a)) and G(F(b)) are the "
    "round trips back (EMA weights when the run keeps them)."
)


def frame_choice(count: int, limit: int = MAX_FRAMES) -> list[int]:
    """At most ``limit`` indices spread evenly over ``count``, the first and last included."""
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def display_width(path: Path) -> int:
    """Small grids (MNIST: 302 px) are shown enlarged, pixel for pixel, up to 640 px."""
    from PIL import Image

    with Image.open(path) as image:
        width = image.width
    return width * max(1, min(3, round(640 / max(width, 1))))


def filmstrip(run: RunLog, index: int) -> Filmstrip | None:
    if not run.samples:
        return None
    chosen = [run.samples[i] for i in frame_choice(len(run.samples))]
    drawn = run.kind in ("points", "unpaired-points")  # scatter plots, not sample images
    frames = [(step, png_uri(path.read_bytes(), compact=drawn)) for step, path in chosen]
    caption, columns, rows = sample_caption(run)
    width = display_width(chosen[-1][1])
    return Filmstrip(f"strip{index}", frames, caption, len(run.samples), width, columns, rows)


def crop_columns(path: Path, columns: int, first: int, count: int) -> tuple[str, int]:
    """Columns ``first`` .. ``first + count - 1`` of a grid of ``columns`` square images per row
    (padding ``GRID_PAD``), as a PNG data URI and its display width."""
    from PIL import Image

    with Image.open(path) as image:
        side = (image.width - GRID_PAD) // columns - GRID_PAD
        left = first * (side + GRID_PAD)
        right = left + count * (side + GRID_PAD) + GRID_PAD
        buf = io.BytesIO()
        image.crop((left, 0, right, image.height)).save(buf, format="PNG")
        width = right - left
    return png_uri(buf.getvalue()), width * max(1, min(3, round(360 / max(width, 1))))


DIRECTION_SCORES = (  # (name, key pattern, its reference key pattern or "")
    ("label preservation", "eval/label_preservation_{d}", ""),
    ("domain success", "eval/domain_success_{d}", ""),
    ("FID on target features", "eval/fid_{d}", "eval/fid_{d}_floor"),
    ("KID on target features", "eval/kid_{d}", "eval/kid_{d}_floor"),
    ("L1 to the hidden true image", "eval/pair_l1_{d}", "eval/identity_l1_{d}"),
    ("cycle L1", "eval/cycle_l1_{s}", ""),
)


def direction_views(run: RunLog) -> list[Direction]:
    """A → B (and B → A when trained) rows of the last picture, each with its last scores."""
    _, translates = model_traits(run)
    if not translates or run.kind != "unpaired" or not run.samples:
        return []
    columns = translation_columns(run)
    last = next((r for r in reversed(run.records) if any(k.startswith("eval/") for k in r)), {})
    views = []
    for first, title, d, s in ((0, "A → B", "ab", "a"), (3, "B → A", "ba", "b")):
        if first >= len(columns):
            break
        count = min(3, len(columns) - first)
        uri, width = crop_columns(run.samples[-1][1], len(columns), first, count)
        scores = []
        for name, key, ref in DIRECTION_SCORES:
            key, ref = key.format(d=d, s=s), ref.format(d=d)
            if key in last:
                reference = f"{fmt(last[ref])} ({reference_key(key)[1]})" if ref in last else ""
                scores.append((name, fmt(last[key]), reference))
        caption = f"picture of step {run.samples[-1][0]}; scores of step {last.get('step', '—')}"
        views.append(Direction(title, uri, width, columns[first : first + count], scores, caption))
    return views


# ----------------------------------------------------------------------------- one run's section


@dataclass
class RunView:
    """Everything the template shows about one run."""

    log: RunLog
    index: int
    steps: str
    wall: str
    config_yaml: str
    notes: list[str]
    losses: list[Chart]
    metrics: list[Chart]
    filmstrip: Filmstrip | None
    directions: list[Direction]
    protocols: list[tuple[str, str, str]]
    recorded: dict[str, str]
    evals: list[tuple[str, str, str]]
    resolved: str = ""  # "cpu · fp32 · impl gankit · compile off", as the training resolved it


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{seconds:.1f} s"


def split_keys(series: dict[str, Points]) -> tuple[list[str], list[str], list[str]]:
    """(training keys, score keys drawn alone, per-class score keys)."""
    training = sorted(k for k in series if not k.startswith("eval/"))
    per_class = [k for k in series if is_per_class(k)]
    scores = sorted(
        (k for k in series if k.startswith("eval/") and not is_reference(k)), key=score_order
    )
    return training, [k for k in scores if not is_per_class(k)], per_class


GROUPS = (  # (title, key pattern, reference line): values drawn together on one chart
    ("training losses", "loss/*", None),
    ("critic gradient norms", "eval/grad_norm_*", (1.0, "1 (a 1-Lipschitz critic)")),
    ("critic Lipschitz bounds", "eval/lipschitz/*", (1.0, "1 (a 1-Lipschitz critic)")),
)


def charts_of(keys: list[str], series: dict[str, Points], computed: dict[str, float]) -> list:
    """A chart per key, except that the keys of each of GROUPS share one."""
    charts, done = [], set()
    for key in keys:
        if key in done:
            continue
        group = next((g for g in GROUPS if fnmatch.fnmatchcase(key, g[1])), None)
        if group is None:
            charts.append(metric_chart(key, series[key], reference_of(key, series, computed)))
            continue
        members = [k for k in keys if fnmatch.fnmatchcase(k, group[1])]
        done.update(members)
        charts.append(group_chart(group[0], {k: series[k] for k in members}, group[2]))
    return charts


def run_charts(run: RunLog) -> tuple[list[Chart], list[Chart], list[str]]:
    """(loss charts, score charts, the score keys drawn) of one run."""
    series = run.series()
    training, scores, per_class = split_keys(series)
    loss_charts = charts_of(training, series, {})
    charts = charts_of(scores, series, computed_floors(run) if scores else {})
    if per_class:
        floor = series.get("eval/cfid_class_mean_floor")
        charts.append(per_class_chart({k: series[k] for k in per_class}, floor))
    return loss_charts, charts, scores + per_class


def protocols(keys: list[str]) -> list[tuple[str, str, str]]:
    """(keys, better, how measured) for each kind of score among ``keys``, in SCORES order."""
    groups: dict[Score, list[str]] = {}
    for key in keys:
        groups.setdefault(score_of(key), []).append(key)
    order = {s: i for i, s in enumerate((*SCORES, UNKNOWN))}
    rows = []
    for score in sorted(groups, key=order.__getitem__):
        found = groups[score]
        shown = ", ".join(found[:4]) + (f" and {len(found) - 4} more" if len(found) > 4 else "")
        rows.append((shown, score.better or "—", score.protocol))
    return rows


def run_notes(run: RunLog, scored: list[str]) -> list[str]:
    """What a reader should know before reading the numbers."""
    notes = []
    if not scored and run.kind in ("images", "unpaired"):
        notes.append(
            "no scores were logged: image scores need the dataset's evaluation classifier "
            f"(gankit train classifier --data {run.data}), then gankit eval {run.path}"
        )
    notes += [str(w) for w in run.protocol().get("warnings", [])]
    if not run.samples:
        notes.append("no sample pictures yet: the trainer writes one every sample_every steps")
    return notes


def later_evals(run: RunLog) -> list[tuple[str, str, str]]:
    """(step, n, main scores) of each `gankit eval` record."""
    rows = []
    for record in run.evals:
        keys = [k for k in record if k.startswith("eval/") and not is_reference(k)]
        keys = [k for k in keys if not is_per_class(k) and isinstance(record[k], int | float)]
        scores = ", ".join(f"{k.removeprefix('eval/')} {fmt(record[k])}" for k in keys)
        rows.append((str(record["step"]), fmt(record.get("n")), scores))
    return rows


def resolved_text(resolved: dict[str, Any]) -> str:
    """The resolved device, precision, impl and compile in one line ("" when not recorded)."""
    if not resolved:
        return ""
    compiled = resolved.get("compile") or []
    parts = [str(resolved.get("device", "?")), str(resolved.get("precision", "?"))]
    parts += [f"impl {resolved.get('impl', '?')}"]
    return " · ".join([*parts, f"compile {', '.join(compiled) if compiled else 'off'}"])


def run_view(run: RunLog, index: int) -> RunView:
    import yaml

    losses, charts, scored = run_charts(run)
    planned = (run.config.get("train") or {}).get("steps")
    recorded = {
        k: json.dumps(v) if isinstance(v, list | dict) else str(v)
        for k, v in run.protocol().items()
        if k != "warnings"
    }
    return RunView(
        log=run,
        index=index,
        steps=f"{run.last_step()} of {planned}" if planned else str(run.last_step()),
        wall=duration(run.wall_time()),
        config_yaml=yaml.safe_dump(run.config, sort_keys=False),
        notes=run_notes(run, scored),
        losses=losses,
        metrics=charts,
        filmstrip=filmstrip(run, index),
        directions=direction_views(run),
        protocols=protocols(scored),
        recorded=recorded,
        evals=later_evals(run),
        resolved=resolved_text(run.resolved()),
    )


# ----------------------------------------------------------------------------- comparison


@dataclass
class ScoreRow:
    """One shared score across runs: (final, best) per run; ``winners``: the indices of the
    runs with the best final value (none when no direction is better or all tie)."""

    key: str
    better: str
    cells: list[tuple[str, str]]
    winners: list[int]


@dataclass
class Comparison:
    runs: list[tuple[str, str, str, str, str]]  # name, model, data, steps, wall time
    config: list[tuple[str, list[str]]]  # (key, value per run) for the keys that differ
    scores: list[ScoreRow]
    charts: list[Chart]


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"steps": 5}} → {"train.steps": 5}."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(runs: list[RunLog]) -> list[tuple[str, list[str]]]:
    """The config keys whose values are not the same in every run (missing counts as a
    value)."""
    flat = [flatten(r.config) for r in runs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    missing = object()
    rows = []
    for key in keys:
        values = [f.get(key, missing) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, ["—" if v is missing else json.dumps(v) for v in values]))
    return rows


def shared_keys(all_series: list[dict[str, Points]]) -> list[str]:
    """Keys logged by every run, scores first then training values; floors, baselines and
    per-class scores left out (each score row carries its own)."""
    common = set.intersection(*(set(s) for s in all_series))
    keys = [k for k in common if not is_reference(k) and not is_per_class(k)]
    return sorted(keys, key=lambda k: (not k.startswith("eval/"), score_order(k)))


def score_row(key: str, all_series: list[dict[str, Points]]) -> ScoreRow:
    better = score_of(key).better
    finals = [s[key][-1][1] for s in all_series]
    bests = [best_of(key, s[key]) for s in all_series]
    winners = []
    if better and len(set(finals)) > 1:
        top = min(finals) if better == "lower" else max(finals)
        winners = [i for i, f in enumerate(finals) if f == top]
    cells = [(fmt(f), fmt(b)) for f, b in zip(finals, bests, strict=True)]
    return ScoreRow(key, better or "—", cells, winners)


def comparison(runs: list[RunLog]) -> Comparison:
    all_series = [r.series() for r in runs]
    keys = shared_keys(all_series)
    charts = []
    for key in keys:
        curves = []
        for run, series in zip(runs, all_series, strict=True):
            ref = (
                reference_of(key, series, computed_floors(run)) if key.startswith("eval/") else None
            )
            curves.append((run.name, series[key], ref))
        charts.append(overlay_chart(key, curves))
    table = [(r.name, r.model, r.data, str(r.last_step()), duration(r.wall_time())) for r in runs]
    return Comparison(
        table, config_differences(runs), [score_row(k, all_series) for k in keys], charts
    )


# ----------------------------------------------------------------------------- the page


def template() -> Any:
    """The page's Jinja2 template, shipped with the package; every value is HTML-escaped."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gankit", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


def render(runs: list[RunLog]) -> str:
    """The HTML page about ``runs`` (one: its report; several: a comparison first)."""
    views = [run_view(run, i) for i, run in enumerate(runs)]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = runs[0].name if len(runs) == 1 else f"{len(runs)} runs compared"
    return template().render(
        title=title,
        generated=f"gankit {checkpoint.VERSION}, {now}",
        views=views,
        comparison=comparison(runs) if len(runs) > 1 else None,
    )


def write_report(run_dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write one self-contained HTML page about the runs in ``run_dirs`` to ``out``.

    Args:
        run_dirs: one run directory (its report) or several (a comparison, then each run).
        out: the HTML file to write (its folder is created).

    Returns:
        The path written.

    Raises:
        GankitError: no run given, a path that is not a run, a run with nothing logged yet, or
            an unwritable ``out``.
    """
    if not run_dirs:
        raise GankitError("give at least one run directory: gankit report RUN [RUN ...]")
    runs = [read_run(p) for p in run_dirs]
    name_runs(runs)
    page = render(runs)
    path = Path(out).expanduser()
    if path.is_dir():
        raise GankitError(f"{path} is a folder: give a file name such as {path / 'report.html'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise GankitError(
            f"cannot write {path} ({exc.strerror or exc}): give another --out"
        ) from None
    return path
