"""Pictures of samples: scatter plots for 2-D points, grids for images, written as PNG."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402


def scatter_png(
    fake: Tensor,
    path: Path,
    *,
    real: Tensor | None = None,
    modes: Tensor | None = None,
    title: str = "",
) -> None:
    """Real points grey, generated points blue, modes as red crosses."""
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.7", label="real")
    ax.scatter(fake[:, 0].cpu(), fake[:, 1].cpu(), s=2, c="tab:blue", alpha=0.6, label="generated")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=30, c="tab:red", marker="x", label="modes")
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
