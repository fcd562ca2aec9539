"""Packaging: the license, the version, the metadata PyPI shows, and a wheel that works alone."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import gankit

ROOT = Path(__file__).parents[1]


def test_license_is_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 the gankit authors" in text


def test_version_is_printed_without_importing_torch():
    code = (
        "import sys; from gankit.cli import main; code = main(['--version']); "
        "assert 'torch' not in sys.modules, 'gankit --version imported torch'; sys.exit(code)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"gankit {gankit.__version__}\n" == "gankit 0.2.0\n"
    assert importlib.metadata.version("gankit") == gankit.__version__


def test_pyproject_metadata():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["readme"] == "README.md" and project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert set(project["urls"]) == {"Homepage", "Documentation", "Issues"}
    assert {
        "Development Status :: 3 - Alpha",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    } <= set(project["classifiers"])


def _copy_sources(dest: Path) -> Path:
    """What a wheel is built from, copied so the build leaves no build/ in the working tree."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", dest / "src", ignore=ignore)
    return dest


def test_the_wheel_installs_and_trains_in_a_fresh_venv(tmp_path):
    """Build the wheel, install it into a new venv that sees this venv's dependencies (offline,
    through a .pth file; not the editable gankit, whose .pth files a path entry does not run),
    then `gankit --help` and a 5-step toy run from the installed copy."""
    src = _copy_sources(tmp_path / "sources")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", src],
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("gankit-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    Path(purelib, "gankit_test_deps.pth").write_text(deps + "\n")
    subprocess.run(
        [*pip, "--python", python, "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        timeout=300,
    )

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*argv: str) -> str:
        out = subprocess.run(
            argv, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    where = run(str(python), "-c", "import gankit; print(gankit.__file__)")
    assert Path(where.strip()).is_relative_to(venv), where
    gankit_bin = str(venv / "bin" / "gankit")
    assert run(gankit_bin, "--version") == "gankit 0.2.0\n"
    assert "train" in run(gankit_bin, "--help")
    out = tmp_path / "run"
    run(
        gankit_bin,
        "train",
        "gan",
        "--data",
        "8gaussians",
        "--steps",
        "5",
        "--out",
        str(out),
        "progress=false",
        "eval_every=5",
        "sample_every=5",
        "eval_samples=200",
    )
    assert (out / "metrics.jsonl").is_file() and any((out / "checkpoints").iterdir())
