"""The Python API: train, load, sample, translate, evaluate and resume from a notebook.

The command line is a thin layer over these functions, so a notebook and a shell give the same
runs, files and one-line errors (:class:`~gankit.errors.GankitError`).
"""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gankit import checkpoint, distributed
from gankit.config import RunConfig
from gankit.device import resolve_device
from gankit.errors import GankitError
from gankit.runs import (
    Run,
    from_yaml_file,
    latest_checkpoint,
    latest_checkpoint_or_none,
    next_run_dir,
    require_run,
    resolve,
)
from gankit.trainer import Trainer, make_run_dir


def configure(
    model: str | None,
    data: str | None,
    *,
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    values: dict[str, Any] | None = None,
) -> RunConfig:
    """The resolved config of a new run: defaults < family < ``config`` YAML < ``overrides``
    (``key=value`` strings) < ``values``; model and data may come from the YAML."""
    if config is not None:
        cfg = from_yaml_file(config, model, data)
        return resolve(cfg.model, cfg.data, cfg.to_dict(), overrides, values)
    if not model:
        raise GankitError("name a model: gankit train MODEL --data DATA (see --help)")
    if not data:
        raise GankitError("name a dataset with --data (e.g. --data 8gaussians)")
    return resolve(model, str(data), None, overrides, values)


def prepare(
    cfg: RunConfig, out: str | Path | None = None, *, create: bool = True
) -> tuple[Run, Path]:
    """Build the run ``cfg`` describes (data opened, model built) and choose its directory
    (created unless ``create`` is False, as for a dry run): everything a training does before
    its first step, so every input error surfaces here. Prints to stderr what loading the data
    converted or decided, and each score the run will not be able to compute, with the command
    that enables it."""
    world = distributed.init(cfg.train.device)  # joins torchrun's processes, if any
    run_dir = Path(out).expanduser() if out else next_run_dir(Path("runs"), cfg.model, cfg.data)
    run_dir = distributed.broadcast_object(run_dir)  # rank 0 numbers the run directory
    if latest_checkpoint_or_none(run_dir) is not None:
        raise GankitError(
            f"{run_dir} holds a run already: continue it (gankit train --resume {run_dir}, or "
            "gankit.load(...).resume()), or give another --out"
        )
    run = Run(cfg, resolve_device(cfg.train.device), run_dir)
    if create and world.main:  # after the data and model: a bad input leaves no empty folder
        make_run_dir(run_dir)
    data_notes = [run.data.note] if run.data.note else []  # conversions, held-out split
    for note in (data_notes + run.evaluator.unavailable()) if world.main else []:
        print(f"gankit: note: {note}", file=sys.stderr)
    return run, run_dir


def train(
    model: str,
    data: str | Path,
    *,
    steps: int | None = None,
    out: str | Path | None = None,
    config: str | Path | None = None,
    device: str = "auto",
    progress: bool = False,
    **overrides: Any,
) -> Run:
    """Train a new run and return it (its files are in ``run.dir``).

    Args:
        model: a family: gan, wgan, wgan-gp, cgan, cyclegan, discogan.
        data: a built-in dataset name (8gaussians, mnist, digits2colour, ...) or a folder
            (class subfolders, or trainA/trainB for translation).
        steps: generator steps (default: the family's preset).
        out: the run directory (default ``runs/NNNNN-MODEL-DATA``); it must hold no run yet.
        config: a YAML file with keys model, data, train, model_config (a run's config.yaml).
        device: "auto" (CUDA when present), "cpu", "cuda" or "cuda:N".
        progress: show a progress bar / progress lines on stderr.
        **overrides: any config key of the training loop or the family, e.g. ``seed=3``,
            ``lr=1e-4``, ``betas=(0.5, 0.9)``; validated like ``key=value`` on the command line.

    Returns:
        The trained :class:`~gankit.runs.Run`, at its final step.

    Raises:
        GankitError: a bad model, dataset, key or value (one line saying what to do).

    Example:
        >>> run = gankit.train("wgan-gp", "8gaussians", steps=200, out="runs/demo")
        >>> run.evaluate()["eval/modes"]
    """
    values = {**overrides, "device": device, "progress": progress}
    if steps is not None:
        values["steps"] = steps
    cfg = configure(model, str(data), config=config, values=values)
    run, run_dir = prepare(cfg, out)
    fit(run, run_dir)
    return run


def fit(run: Run, run_dir: str | Path) -> dict[str, Any]:
    """Train ``run`` to its ``steps`` in ``run_dir`` (checkpoints, samples, logs); returns the
    last evaluation's metrics. Ctrl-C or SIGTERM stops after a checkpoint (``Interrupted``)."""
    return Trainer(run, run_dir).fit()


def load(run_dir: str | Path, *, device: str = "auto", step: int | None = None) -> Run:
    """A trained run from its directory: the last checkpoint, or the one of ``step``.

    The model is rebuilt from the config stored in the checkpoint and its weights loaded (its
    EMA weights are used for sampling when the run kept them).
    """
    path = require_run(run_dir)
    if step is None:
        return Run.from_checkpoint(latest_checkpoint(path), device=device)
    found = path / "checkpoints" / f"step_{step:08d}.pt"
    if not found.is_file():
        kept = [checkpoint.step_of(p) for p in checkpoint.list_checkpoints(path / "checkpoints")]
        raise GankitError(
            f"{path} has no checkpoint of step {step}: it keeps steps "
            f"{', '.join(map(str, kept)) or 'none'}"
        )
    return Run.from_checkpoint(found, device=device)


def write_report(runs: str | Path | Sequence[str | Path], out: str | Path = "report.html") -> Path:
    """Write one self-contained HTML page about one run directory, or comparing several
    (`gankit report`); returns its path. (Not ``gankit.report``: that name is the module.)

    Example:
        >>> gankit.write_report(["runs/gan", "runs/wgan", "runs/wgan-gp"], "toy.html")
    """
    from gankit import report

    return report.write_report([runs] if isinstance(runs, str | Path) else list(runs), out)
