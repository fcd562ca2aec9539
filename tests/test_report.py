"""`gankit report`: one self-contained HTML page per run or per comparison of runs.

Real runs, trained for a few steps: three GAN runs on 8 Gaussians (two seeds, two learning
rates) and a cGAN on a folder of four classes (tests/report_runs.py, shared with
test_browser.py through conftest.py), and a CycleGAN on a generated folder pair.
"""

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit import report, score_protocols
from gankit.cli import main
from gankit.errors import GankitError

VOID = {"meta", "link", "img", "input", "br", "hr", "source", "wbr", "col", "area", "base"}


def folder_pair(root: Path) -> Path:
    """trainA greyscale, trainB RGB, 8 images of 16x16 noise each."""
    rng = np.random.default_rng(0)
    for domain, shape in (("A", (16, 16)), ("B", (16, 16, 3))):
        (root / f"train{domain}").mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(
                root / f"train{domain}" / f"{i}.png"
            )
    return root


@pytest.fixture(scope="module")
def translation_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cyclegan")
    data = folder_pair(tmp / "data")
    argv = ["train", "cyclegan", "--data", str(data), "--steps", "2", "--out", str(tmp / "run")]
    tiny = ["ngf=4", "ndf=4", "blocks=1", "pool_size=2", "image_size=16", "batch_size=2"]
    assert main([*argv, *tiny, "eval_samples=10", "log_every=1", "progress=false"]) == 0
    return tmp / "run"


class Page(HTMLParser):
    """Collects the links, pictures and tables of a page and fails on badly nested tags."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.images: list[dict[str, str]] = []
        self.tables: dict[str, list[list[str]]] = {}  # id → rows of cell texts
        self.table: str | None = None
        self.cell: list[str] | None = None
        self.feed(text)
        self.close()
        assert not self.stack, f"unclosed tags: {self.stack}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.links += [(tag, k, v) for k, v in values.items() if k in ("src", "href")]
        if tag == "img":
            self.images.append(values)
        if tag == "table":
            self.table = values.get("id")
            self.tables[self.table or ""] = []
        if tag == "tr" and self.table:
            self.tables[self.table].append([])
        if tag in ("td", "th"):
            self.cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()
        if tag in ("td", "th") and self.cell is not None and self.table:
            self.tables[self.table][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        if tag == "table":
            self.table = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def self_contained(path: Path) -> Page:
    """Parse the page; assert it loads nothing from elsewhere and embeds every picture."""
    page = Page(path.read_text())
    remote = [v for _, _, v in page.links if v.startswith(("http:", "https:", "//"))]
    assert not remote, remote
    assert all(v.startswith(("data:", "#")) for tag, _, v in page.links if tag != "a"), page.links
    assert page.images and all(i["src"].startswith("data:image/png;base64,") for i in page.images)
    assert "<link" not in path.read_text() and "@import" not in path.read_text()
    return page


def test_single_report_of_a_conditional_image_run(cgan_report_page):
    out = cgan_report_page
    page = self_contained(out)
    assert "runs" not in page.tables and "scores" not in page.tables  # no comparison
    frames = [i["alt"] for i in page.images if i["alt"].startswith("samples at step")]
    assert frames == ["samples at step 2", "samples at step 4"]
    assert "training losses over training" in {i["alt"] for i in page.images}
    text = out.read_text()
    assert "Row r holds the class named at its left" in text
    assert all(f"<span>class{k}</span>" in text for k in range(4))  # a label per grid row
    assert "gankit train classifier --data" in text  # why there are no scores, and the fix
    assert "Resolved config" in text and "z_dim: 8" in text


def test_comparison_of_three_runs(toy_report_runs, toy_report_page):
    out = toy_report_page
    page = self_contained(out)
    runs = page.tables["runs"]
    assert [row[0] for row in runs[1:]] == ["a", "b", "c"]
    assert all(row[1:4] == ["gan", "8gaussians", "4"] for row in runs[1:])
    diff = page.tables["config-diff"]
    assert diff[0] == ["key", "a", "b", "c"]
    assert {row[0] for row in diff[1:]} == {"train.seed", "model_config.lr"}
    assert ["train.seed", "0", "1", "0"] in diff
    logged = set.intersection(*(set(report.read_run(r).series()) for r in toy_report_runs))
    expected = {k for k in logged if not score_protocols.is_reference(k)}
    assert {"eval/em", "eval/modes", "eval/high_quality", "loss/d"} <= expected
    scores = page.tables["scores"]
    assert {row[0] for row in scores[2:]} == expected  # after two header rows
    em = next(row for row in scores if row[0] == "eval/em")
    assert em[1] == "lower" and len(em) == 2 + 2 * 3  # final and best of each run
    overlays = [i for i in page.images if i["alt"].endswith("of every run")]
    assert len(overlays) == len(expected)
    # each run's own section: its pictures over training, its scores beside their floors
    frames = [i["alt"] for i in page.images if i["alt"].startswith("samples at step")]
    assert frames == ["samples at step 4"] * 3
    charts = {i["alt"] for i in page.images}
    assert {"eval/em over training", "critic gradient norms over training"} <= charts
    assert not any("floor" in c or "modes_total" in c for c in charts)  # drawn beside, not alone
    assert "Exact Earth-Mover (W1) distance" in out.read_text()  # how each score is measured


def test_translation_rows_per_direction(translation_run, tmp_path):
    out = report.write_report([translation_run], tmp_path / "cyclegan.html")
    page = self_contained(out)
    titles = [i["alt"] for i in page.images if ": input, translation" in i["alt"]]
    assert [t[:5] for t in titles] == ["A → B", "B → A"]
    text = out.read_text()
    assert "<span>G(a)</span>" in text and "<span>G(F(b))</span>" in text  # column labels
    assert "G translates A → B and F translates B → A" in text
    assert "cycle L1" in text  # each direction's scores beside its rows


def test_cli_and_one_line_errors(cgan_report_run, tmp_path, capsys):
    out = tmp_path / "cli" / "r.html"
    assert main(["report", str(cgan_report_run), "--out", str(out)]) == 0
    assert out.is_file() and str(out) in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text((cgan_report_run / "config.yaml").read_text())
    assert main(["report", str(empty), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no metrics.jsonl records and no samples yet" in err
    with pytest.raises(GankitError, match="is a folder"):
        report.write_report([cgan_report_run], tmp_path)


def test_gankit_eval_records_are_listed_not_drawn(cgan_report_run, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    for name in ("config.yaml", "metrics.jsonl"):
        (run / name).write_text((cgan_report_run / name).read_text())
    with open(run / "metrics.jsonl", "a") as f:
        record = {"source": "gankit eval", "step": 4, "n": 500, "eval/cfid": 0.5}
        f.write(json.dumps(record) + "\n")
        f.write('{"step": 7, "loss/d": ')  # a line cut short by a crash
    log = report.read_run(run)
    assert len(log.evals) == 1 and log.last_step() == 4
    text = report.write_report([run], tmp_path / "r.html").read_text()
    assert "Evaluations run with" in text and "cfid 0.5" in text
    assert "cfid over training" not in text


@pytest.mark.parametrize(
    ("key", "better"),
    [
        ("eval/em", "lower"),
        ("eval/modes", "higher"),
        ("eval/high_quality", "higher"),
        ("eval/cfid", "lower"),
        ("eval/cfid_class_mean", "lower"),
        ("eval/ckid", "lower"),
        ("eval/cond_accuracy", "higher"),
        ("eval/fid_inception", "lower"),
        ("eval/fid_ab", "lower"),
        ("eval/label_preservation_ba", "higher"),
        ("eval/domain_success_ab", "higher"),
        ("eval/cycle_l1_a", "lower"),
        ("eval/pair_l1_ab", "lower"),
        ("eval/grad_norm_mean", ""),
        ("loss/d", ""),
        ("em_estimate", ""),
    ],
)
def test_which_way_is_better(key, better):
    assert score_protocols.score_of(key).better == better


def test_floors_and_baselines_pair_with_their_scores():
    assert score_protocols.reference_key("eval/cfid") == ("eval/cfid_floor", "real-vs-real floor")
    assert score_protocols.reference_key("eval/cfid_class/7")[0] == "eval/cfid_floor_class/7"
    assert score_protocols.reference_key("eval/pair_l1_ab")[0] == "eval/identity_l1_ab"
    assert score_protocols.reference_key("eval/modes")[0] == "eval/modes_total"
    for key in ("eval/cfid_floor", "eval/cfid_floor_class/7", "eval/identity_l1_ba"):
        assert score_protocols.is_reference(key)


def test_score_row_final_best_and_winner():
    series = [
        {"eval/em": [(1, 0.9), (2, 0.3), (3, 0.4)]},
        {"eval/em": [(1, 0.8), (2, 0.35)]},
    ]
    row = report.score_row("eval/em", series)
    assert row.cells == [("0.4", "0.3"), ("0.35", "0.35")] and row.winners == [1]
    loss = report.score_row("loss/d", [{"loss/d": [(1, -1.0)]}, {"loss/d": [(1, 2.0)]}])
    assert loss.winners == [] and loss.cells[0] == ("-1", "—")
    tie = report.score_row("eval/modes", [{"eval/modes": [(1, 8.0)]}] * 2)
    assert tie.winners == []  # nothing to single out


def test_config_differences_only():
    a = {"model": "gan", "train": {"steps": 5, "seed": 0}, "model_config": {"lr": 1e-3}}
    b = {"model": "gan", "train": {"steps": 5, "seed": 1}, "model_config": {"lr": 1e-3, "x": 2}}
    runs = [report.RunLog(Path(n), c, [], [], [], []) for n, c in (("a", a), ("b", b))]
    assert report.config_differences(runs) == [
        ("train.seed", ["0", "1"]),
        ("model_config.x", ["—", "2"]),
    ]


def test_frames_are_spread_evenly():
    assert report.frame_choice(5) == [0, 1, 2, 3, 4]
    chosen = report.frame_choice(100, 16)
    assert len(chosen) == 16 and chosen[0] == 0 and chosen[-1] == 99


def test_wall_time_and_duration():
    assert report.duration(None) == "—"
    assert report.duration(12.34) == "12.3 s"
    assert report.duration(125) == "2 min 05 s"
    assert report.duration(3720) == "1 h 02 min"


def test_python_api(cgan_report_run, tmp_path):
    import gankit

    out = gankit.write_report(cgan_report_run, tmp_path / "api.html")  # one run, not a list
    assert out == tmp_path / "api.html" and "<title>gankit report: run</title>" in out.read_text()


def test_a_resumed_run_keeps_the_later_records(tmp_path):
    records = [{"step": s, "loss/d": float(s)} for s in (2, 4, 6)]
    records += [{"step": s, "loss/d": -float(s)} for s in (4, 6, 8)]  # resumed from step 2
    log = report.RunLog(tmp_path, {}, records, [], [], [])
    assert log.series()["loss/d"] == [(2, 2.0), (4, -4.0), (6, -6.0), (8, -8.0)]
