"""Toy distributions and their metrics."""

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from gankit.data import open_data, toy_distribution
from gankit.data.toy import TOY
from gankit.errors import GankitError
from gankit.metrics.toy import earth_mover, mode_stats, toy_metrics


@pytest.mark.parametrize("name", sorted(TOY))
def test_real_samples_cover_every_mode(name):
    dist = toy_distribution(name)
    x = dist.sample(4000, torch.Generator().manual_seed(0))
    assert x.shape == (4000, 2)
    covered, hq = mode_stats(x, dist.modes, dist.std)
    assert covered == len(dist.modes)
    assert hq > 0.97


def test_mode_geometry():
    assert len(toy_distribution("8gaussians").modes) == 8
    assert len(toy_distribution("25gaussians").modes) == 25
    radius = toy_distribution("8gaussians").modes.norm(dim=1)
    assert torch.allclose(radius, torch.full((8,), 2 / 1.414))
    lines = toy_distribution("parallel-lines:0.5").sample(100, torch.Generator().manual_seed(1))
    assert (lines[:, 0] == 0.5).all() and lines[:, 1].min() >= 0 and lines[:, 1].max() <= 1


def test_collapse_is_detected():
    dist = toy_distribution("8gaussians")
    collapsed = dist.modes[0] + dist.std * torch.randn(1000, 2)
    covered, hq = mode_stats(collapsed, dist.modes, dist.std)
    assert covered == 1 and hq > 0.95
    spread = torch.randn(1000, 2) * 3
    assert mode_stats(spread, dist.modes, dist.std)[1] < 0.05


def test_earth_mover_matches_assignment():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 1
    rows, cols = linear_sum_assignment(cdist(a, b))
    expected = cdist(a, b)[rows, cols].mean()
    assert earth_mover(torch.tensor(a), torch.tensor(b)) == pytest.approx(expected, rel=1e-9)


def test_toy_metrics_prefer_the_real_distribution():
    data = open_data("25gaussians", seed=0)
    real = data.reference(500, seed=3)
    good = toy_metrics(real, data.reference(500, seed=4), data.dist.modes, data.dist.std)
    bad = toy_metrics(real * 0.5, data.reference(500, seed=4), data.dist.modes, data.dist.std)
    assert good["eval/em"] < bad["eval/em"]
    assert good["eval/modes"] == 25 and bad["eval/modes"] < 25


def test_data_stream_is_resumable():
    data = open_data("ring", seed=7)
    data.batch(10)
    state = data.state_dict()
    after = data.batch(10)
    data.load_state_dict(state)
    assert torch.equal(data.batch(10), after)


@pytest.mark.parametrize("name", ["9gaussians", "parallel-lines:abc", "ring:2"])
def test_unknown_dataset(name):
    with pytest.raises(GankitError, match=f"'{name}'"):
        open_data(name)
