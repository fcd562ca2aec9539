"""gankit: the classic GAN family, trainable, measurable and trustworthy on an ordinary machine.

The Python API (each function has its own help)::

    import gankit
    run = gankit.train("wgan-gp", "8gaussians", steps=2000, out="runs/toy")
    points = run.sample(1000, seed=1)          # Tensor (1000, 2)
    scores = run.evaluate()                    # the dict `gankit eval` prints
    run = gankit.load("runs/toy")              # last checkpoint (or step=...)
    run = run.resume(steps=4000)               # continue exactly

``gankit.train``, ``gankit.load``, ``gankit.Run`` and ``gankit.GankitError``. Importing gankit is
light: torch loads when one of the first three is first used.
"""

from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError

__version__ = "0.1.0"
__all__ = ["GankitError", "Run", "__version__", "load", "train"]

if TYPE_CHECKING:
    from gankit.api import load, train
    from gankit.runs import Run


def __getattr__(name: str) -> Any:
    """Load the API (and torch with it) on first use, not at ``import gankit``."""
    if name in ("train", "load"):
        from gankit import api

        return getattr(api, name)
    if name == "Run":
        from gankit.runs import Run

        return Run
    raise AttributeError(f"module 'gankit' has no attribute {name!r}")
