"""2-D toy distributions of the WGAN, WGAN-GP and DiscoGAN papers, each knowing its modes.

Geometry follows the WGAN-GP toy code (arXiv:1704.00028): 8 Gaussians of std 0.02 on a circle of
radius 2 and 25 Gaussians of std 0.05 on the grid {-4,...,4}², both divided by the same constants
(1.414, 2.828) so the data has unit scale. Continuous sets (ring, swiss roll, parallel lines) get
"modes" too: anchor points spaced evenly along the curve, with σ set so that the 3σ discs of
neighbouring anchors touch. A mode is *covered* when >= 1% of samples lie within 3σ of it; a sample
is *high quality* when it lies within 3σ of some mode.
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ToyDistribution:
    """A 2-D distribution: ``sample(n, generator)`` → (n, 2); ``modes`` (K, 2) share ``std``."""

    name: str
    modes: Tensor
    std: float

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError


class GaussianMixture(ToyDistribution):
    """Equal-weight mixture of isotropic Gaussians centred on ``modes``."""

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        idx = torch.randint(len(self.modes), (n,), generator=generator)
        return self.modes[idx] + self.std * torch.randn(n, 2, generator=generator)


@dataclass(frozen=True)
class Ring(ToyDistribution):
    """Uniform angle on a circle of ``radius`` with radial noise ``noise``."""

    radius: float = 2**0.5
    noise: float = 0.02 / 1.414

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        angle = 2 * math.pi * torch.rand(n, generator=generator)
        r = self.radius + self.noise * torch.randn(n, generator=generator)
        return torch.stack([r * angle.cos(), r * angle.sin()], 1)


@dataclass(frozen=True)
class SwissRoll(ToyDistribution):
    """The swiss roll in 2-D: t ~ 1.5π(1 + 2U), x = (t cos t, t sin t)/7.5 + N(0, noise²)."""

    noise: float = 0.25 / 7.5

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        t = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator))
        x = torch.stack([t * t.cos(), t * t.sin()], 1) / 7.5
        return x + self.noise * torch.randn(n, 2, generator=generator)


@dataclass(frozen=True)
class ParallelLine(ToyDistribution):
    """P_θ of the WGAN paper's Example 1: (θ, Z) with Z ~ U[0, 1]."""

    theta: float = 0.0

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        z = torch.rand(n, generator=generator)
        return torch.stack([torch.full_like(z, self.theta), z], 1)


def _anchors_on_curve(points: Tensor, k: int) -> tuple[Tensor, float]:
    """``k`` points spaced evenly by arc length along a dense polyline, and σ = spacing / 6."""
    seg = (points[1:] - points[:-1]).norm(dim=1)
    arc = torch.cat([torch.zeros(1), seg.cumsum(0)])
    targets = torch.linspace(0, float(arc[-1]), k + 1)[:-1] + float(arc[-1]) / (2 * k)
    idx = torch.searchsorted(arc, targets).clamp(max=len(points) - 1)
    return points[idx], float(arc[-1]) / k / 6


def eight_gaussians() -> GaussianMixture:
    angles = torch.arange(8) * (math.pi / 4)
    centres = 2 * torch.stack([angles.cos(), angles.sin()], 1) / 1.414
    return GaussianMixture("8gaussians", centres, 0.02 / 1.414)


def twentyfive_gaussians() -> GaussianMixture:
    grid = torch.arange(-2, 3, dtype=torch.float32) * 2
    centres = torch.cartesian_prod(grid, grid) / 2.828
    return GaussianMixture("25gaussians", centres, 0.05 / 2.828)


def ring(k: int = 16) -> Ring:
    angle = torch.linspace(0, 2 * math.pi, 4001)
    dense = 2**0.5 * torch.stack([angle.cos(), angle.sin()], 1)
    anchors, std = _anchors_on_curve(dense, k)
    return Ring("ring", anchors, std)


def swiss_roll(k: int = 16) -> SwissRoll:
    t = torch.linspace(1.5 * math.pi, 4.5 * math.pi, 4001)
    dense = torch.stack([t * t.cos(), t * t.sin()], 1) / 7.5
    anchors, std = _anchors_on_curve(dense, k)
    return SwissRoll("swissroll", anchors, std)


def parallel_line(theta: float = 0.0, k: int = 10) -> ParallelLine:
    z = torch.linspace(0, 1, 1001)
    dense = torch.stack([torch.full_like(z, theta), z], 1)
    anchors, std = _anchors_on_curve(dense, k)
    return ParallelLine(f"parallel-lines:{theta:g}", anchors, std, theta)


def mixture_on_circle(k: int, radius: float = 1.0, std: float = 0.05) -> GaussianMixture:
    """``k`` Gaussians evenly spaced on a circle (DiscoGAN's toy domains use k = 5 and 10)."""
    angles = torch.arange(k) * (2 * math.pi / k)
    return GaussianMixture(f"circle{k}", radius * torch.stack([angles.cos(), angles.sin()], 1), std)


TOY = {
    "8gaussians": eight_gaussians,
    "25gaussians": twentyfive_gaussians,
    "ring": ring,
    "swissroll": swiss_roll,
    "parallel-lines": parallel_line,
}
