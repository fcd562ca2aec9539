"""gankit: the classic GAN family, trainable, measurable and trustworthy on an ordinary machine.

The Python API (each function has its own help)::

    import gankit
    run = gankit.train("wgan-gp", "8gaussians", steps=2000, out="runs/toy")
    points = run.sample(1000, seed=1)          # Tensor (1000, 2)
    scores = run.evaluate()                    # the dict `gankit eval` prints
    run = gankit.load("runs/toy")              # last checkpoint (or step=...)
    run = run.resume(steps=4000)               # continue exactly
    run.save_sample_files("fakes/", 10000)     # one PNG per sample (points: samples.csv)
    g = gankit.load_weights("g.safetensors")   # from `gankit export --format safetensors`
    gankit.write_report(["runs/a", "runs/b"], "ab.html")  # one HTML page comparing runs

``gankit.train``, ``gankit.load``, ``gankit.load_weights``, ``gankit.write_report``,
``gankit.Run`` and ``gankit.GankitError``. Importing gankit is light: torch loads when one of
the first five is first used.
"""

from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError

__version__ = "0.2.0"
__all__ = ["GankitError", "Run", "__version__", "load", "load_weights", "train", "write_report"]

if TYPE_CHECKING:
    from gankit.api import load, train, write_report
    from gankit.runs import Run
    from gankit.weights import load_weights


def __getattr__(name: str) -> Any:
    """Load the API (and torch with it) on first use, not at ``import gankit``."""
    if name in ("train", "load", "write_report"):
        from gankit import api

        return getattr(api, name)
    if name == "load_weights":
        from gankit.weights import load_weights

        return load_weights
    if name == "Run":
        from gankit.runs import Run

        return Run
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")
