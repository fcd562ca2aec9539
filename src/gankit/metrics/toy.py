"""Metrics for 2-D toy data: exact Earth-Mover distance, modes covered, high-quality share."""

import numpy as np
import ot
import torch
from torch import Tensor


def earth_mover(fake: Tensor, real: Tensor) -> float:
    """Exact W1 between two point clouds with uniform weights and Euclidean cost (POT emd2)."""
    a, b = fake.double().cpu().numpy(), real.double().cpu().numpy()
    cost = ot.dist(a, b, metric="euclidean")
    w = ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost, numItermax=10**7)
    return float(w)


def mode_stats(fake: Tensor, modes: Tensor, std: float) -> tuple[int, float]:
    """(modes covered, high-quality share): within 3σ of a mode; a mode needs >= 1% of samples."""
    dist = torch.cdist(fake.float().cpu(), modes.float())  # (N, K)
    near = dist <= 3 * std
    covered = int((near.float().mean(0) >= 0.01).sum())
    return covered, float(near.any(1).float().mean())


def toy_metrics(fake: Tensor, real: Tensor, modes: Tensor, std: float) -> dict[str, float]:
    """All toy metrics for ``fake`` (N, 2) against ``real`` (N, 2) from the same distribution."""
    covered, hq = mode_stats(fake, modes, std)
    return {
        "eval/em": earth_mover(fake, real),
        "eval/modes": float(covered),
        "eval/modes_total": float(len(modes)),
        "eval/high_quality": hq,
    }
