"""README.md is a short, true user's manual: its links resolve, its examples run as written."""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gankit
from gankit.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted([README, *(ROOT / "docs").rglob("*.md")])
FIRST_LINES = [
    "make demo   # creates .venv, caches MNIST, trains its evaluation classifier, then a "
    "conditional GAN (~14 min on 2 CPU cores)",
    "make test   # creates .venv from constraints.txt, then runs ruff and the test suite "
    "(~4 min on 2 cores once installed)",
]
# appended to every `gankit train` line of the quick start: the same commands, seconds long
TINY_TRAIN = [
    "steps=10",
    "batch_size=4",
    "image_size=16",
    "eval_samples=50",
    "eval_every=20",
    "sample_every=20",
    "ckpt_every=20",
    "progress=false",
]
TINY_CLASSIFIER = ["epochs=1"]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    """The text under ``heading`` (a line starting with #s) up to the next heading of its level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    end = re.search(rf"^{level} ", rest, flags=re.M)
    return rest[: end.start()] if end else rest


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", text, flags=re.M | re.S)


def _journey(title: str) -> tuple[list[str], list[str]]:
    """(gankit command lines of the ```bash block, lines of the ```text tree) of a journey."""
    section = _section(_section(_text(README), "## Quick start"), f"### {title}")
    (bash,) = _blocks(section, "bash")
    trees = _blocks(section, "text")
    lines = [ln.split("  #")[0].strip() for ln in bash.splitlines()]
    commands = [ln for ln in lines if ln and not ln.startswith("#")]
    return commands, (trees[0].splitlines() if trees else [])


# ----------------------------------------------------------------------------- text and links


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = _text(README).splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; keep it to 250"
    assert lines[:4] == ["# gankit", "", "```bash", FIRST_LINES[0]]
    assert lines[4] == FIRST_LINES[1]


def _anchors(path: Path) -> set[str]:
    """The link targets GitHub makes of a Markdown file's headings."""
    if path.suffix != ".md":
        return set()
    text = re.sub(r"^```.*?^```$", "", _text(path), flags=re.M | re.S)
    headings = re.findall(r"^#+ (.*)$", text, flags=re.M)
    kept = ("".join(c for c in h.lower() if c.isalnum() or c in " -_") for h in headings)
    return {k.strip().replace(" ", "-") for k in kept}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_images_exist(doc):
    text = re.sub(r"^```.*?^```$", "", _text(doc), flags=re.M | re.S)  # code is not links
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path, _, fragment = target.partition("#")
        file = doc.parent / path if path else doc
        if not file.exists() or (fragment and fragment not in _anchors(file)):
            missing.append(target)
    assert not missing, f"{doc.relative_to(ROOT)} links to missing files: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_speak_to_users_not_about_the_project_history(doc):
    for word in ("issue", "session"):
        # whole words: an API name such as onnxruntime's InferenceSession is fine
        hits = [ln for ln in _text(doc).splitlines() if re.search(rf"\b{word}", ln.lower())]
        assert not hits, f"{doc.relative_to(ROOT)} mentions {word!r}: {hits[:3]}"
    assert "../shared" not in _text(doc), "docs must not point outside the repository"


def test_every_figure_of_the_results_has_its_command_nearby():
    """Each picture in docs/results keeps the command that made it within the lines before it."""
    for doc in sorted((ROOT / "docs" / "results").glob("*.md")):
        lines = _text(doc).splitlines()
        for i, line in enumerate(lines):
            if line.startswith("!["):
                context = "\n".join(lines[max(0, i - 40) : i])
                assert "gankit " in context or "make " in context, f"{doc.name}:{i + 1}"


# ----------------------------------------------------------------------------- examples run


def test_python_api_example_is_the_only_python_block():
    text = _text(README)
    assert len(_blocks(text, "python")) == 1
    assert _blocks(_section(text, "## Python API"), "python")


def _has_api() -> bool:
    try:
        return callable(gankit.train)
    except Exception:  # the API module is absent or does not import yet
        return False


@pytest.mark.skipif(not _has_api(), reason="gankit.train (the Python API) is not there yet")
def test_python_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (code,) = _blocks(_section(_text(README), "## Python API"), "python")
    exec(compile(code, "README.md (Python API)", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "did you mean seed" in out
    assert (tmp_path / "runs" / "api-demo" / "final.png").is_file()


def _png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _class_images(root: Path, names: list[str], per_class: int = 40) -> None:
    """16×16 greyscale images: class k is a bright square in its own place, plus noise."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(names):
        for i in range(per_class):
            img = rng.integers(0, 40, (16, 16), dtype=np.uint8)
            r, c = divmod(k % 4, 2)
            img[r * 8 : r * 8 + 8, c * 8 : c * 8 + 8] = 220
            _png(root / name / f"{i:04d}.png", img)


def _domain_images(folder: Path, colour: bool, n: int = 40) -> None:
    rng = np.random.default_rng(1 if colour else 2)
    for i in range(n):
        shape = (16, 16, 3) if colour else (16, 16)
        _png(folder / f"{i:04d}.png", rng.integers(0, 255, shape, dtype=np.uint8))


def _run_journey(commands: list[str]) -> None:
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == "gankit", line
        argv = argv[1:]
        if argv[0] == "train":
            argv += TINY_CLASSIFIER if argv[1] == "classifier" else TINY_TRAIN
        assert main(argv) == 0, line


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GANKIT_DATA", str(tmp_path / "cache" / "datasets"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_quick_start_toy(workdir):
    commands, _ = _journey("1. WGAN-GP on toy data")
    _run_journey(commands)
    assert (workdir / "runs" / "toy" / "metrics.jsonl").is_file()


def test_quick_start_class_folders(workdir):
    commands, tree = _journey("2. A conditional GAN on your own class folders")
    root = tree[0].rstrip("/")
    classes = [m.group(1) for ln in tree[1:] if (m := re.search(r"── ([\w-]+)/", ln))]
    assert len(classes) >= 2, tree
    _class_images(workdir / root, classes)
    assert any(f"--data {root}" in c for c in commands)
    _run_journey(commands)


def test_quick_start_unpaired_folders(workdir):
    commands, tree = _journey("3. CycleGAN on your own unpaired folders")
    root = tree[0].rstrip("/")
    folders = [m.group(1) for ln in tree[1:] if (m := re.search(r"── ([\w-]+)/", ln))]
    assert folders[:2] == ["trainA", "trainB"], tree
    _domain_images(workdir / root / "trainA", colour=False)
    _domain_images(workdir / root / "trainB", colour=True)
    first_input = next(c for c in commands if "--input" in c)
    source = shlex.split(first_input)
    _domain_images(workdir / source[source.index("--input") + 1], colour=False, n=3)
    _run_journey(commands)
