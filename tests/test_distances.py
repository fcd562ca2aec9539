"""Tests of gankit.distances against scipy, POT, linear_sum_assignment and hand values."""

import itertools
import math

import numpy as np
import ot
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist, jensenshannon
from scipy.stats import entropy, wasserstein_distance

from gankit import distances as D

LOG2 = math.log(2.0)


def random_hist(rng: np.random.Generator, n: int, zeros: int = 0) -> np.ndarray:
    """A random probability vector with ``zeros`` entries set exactly to 0."""
    p = rng.random(n)
    p[rng.choice(n, size=zeros, replace=False)] = 0.0
    return p / p.sum()


# ------------------------------------------------------------------ exact discrete distances


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("zeros", [0, 3])
def test_kl_matches_scipy_entropy(seed: int, zeros: int) -> None:
    rng = np.random.default_rng(seed)
    p, q = random_hist(rng, 10, zeros), random_hist(rng, 10)
    assert D.kl_divergence(p, q) == pytest.approx(entropy(p, q), rel=1e-12, abs=1e-14)


def test_kl_infinite_when_p_has_mass_on_zero_of_q() -> None:
    p, q = np.array([0.5, 0.5, 0.0]), np.array([1.0, 0.0, 0.0])
    assert D.kl_divergence(p, q) == math.inf
    assert entropy(p, q) == math.inf
    # The reverse direction is finite: q has no mass where p is 0.
    assert D.kl_divergence(q, p) == pytest.approx(math.log(2.0))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("zeros", [0, 4])
def test_js_matches_scipy_jensenshannon_squared(seed: int, zeros: int) -> None:
    rng = np.random.default_rng(100 + seed)
    p, q = random_hist(rng, 12, zeros), random_hist(rng, 12, zeros)
    expected = jensenshannon(p, q) ** 2  # natural log by default
    assert D.js_divergence(p, q) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert 0.0 <= D.js_divergence(p, q) <= LOG2


def test_js_bounds_reached() -> None:
    p, q = np.array([0.3, 0.7, 0.0, 0.0]), np.array([0.0, 0.0, 0.6, 0.4])
    assert D.js_divergence(p, q) == pytest.approx(LOG2, abs=1e-15)
    assert D.js_divergence(p, p) == 0.0


@pytest.mark.parametrize(
    ("p", "q", "expected"),
    [
        ([0.5, 0.5, 0.0], [0.0, 0.5, 0.5], 0.5),
        ([1.0, 0.0], [0.0, 1.0], 1.0),
        ([0.2, 0.3, 0.5], [0.2, 0.3, 0.5], 0.0),
        ([0.1, 0.6, 0.3], [0.4, 0.4, 0.2], 0.3),
    ],
)
def test_tv_hand_values(p: list[float], q: list[float], expected: float) -> None:
    assert D.total_variation(p, q) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("seed", range(3))
def test_tv_is_sup_over_events(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p, q = random_hist(rng, 7), random_hist(rng, 7)
    events = itertools.chain.from_iterable(itertools.combinations(range(7), k) for k in range(8))
    sup = max(abs(p[list(a)].sum() - q[list(a)].sum()) for a in events)
    assert D.total_variation(p, q) == pytest.approx(sup, abs=1e-12)


def test_torch_tensors_accepted() -> None:
    p, q = torch.tensor([0.25, 0.75]), torch.tensor([0.5, 0.5])
    assert D.total_variation(p, q) == pytest.approx(0.25)
    assert isinstance(D.js_divergence(p, q), float)


@pytest.mark.parametrize("seed", range(5))
def test_w1_1d_matches_scipy_on_random_support(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    support = rng.normal(size=15) * 3  # unsorted on purpose
    p, q = random_hist(rng, 15, 2), random_hist(rng, 15, 2)
    expected = wasserstein_distance(support, support, p, q)
    assert D.wasserstein1(p, q, support=support) == pytest.approx(expected, rel=1e-10)
    column = support[:, None]
    assert D.wasserstein1(p, q, support=column) == pytest.approx(expected, rel=1e-10)


def test_w1_default_support_is_indices() -> None:
    p, q = np.array([1.0, 0.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, 1.0])
    assert D.wasserstein1(p, q) == pytest.approx(3.0)
    idx = np.arange(4.0)
    rng = np.random.default_rng(3)
    p, q = random_hist(rng, 4), random_hist(rng, 4)
    assert D.wasserstein1(p, q) == pytest.approx(wasserstein_distance(idx, idx, p, q))


@pytest.mark.parametrize("seed", range(4))
def test_w1_2d_matches_assignment_on_uniform_point_sets(seed: int) -> None:
    # Uniform weights on k + k points: an optimal plan is a permutation (Birkhoff).
    rng = np.random.default_rng(300 + seed)
    k = 12
    a, b = rng.normal(size=(k, 2)), rng.normal(size=(k, 2)) + 1.0
    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    expected = cost[rows, cols].mean()
    support = np.concatenate([a, b])
    p = np.r_[np.full(k, 1 / k), np.zeros(k)]
    q = np.r_[np.zeros(k), np.full(k, 1 / k)]
    assert D.wasserstein1(p, q, support=support) == pytest.approx(expected, rel=1e-9)
    assert D.wasserstein1_from_samples(a, b, method="exact") == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_w1_2d_matches_pot_on_random_histograms(seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    support = rng.random((20, 2))
    p, q = random_hist(rng, 20, 3), random_hist(rng, 20, 3)
    expected = ot.emd2(p, q, ot.dist(support, support, metric="euclidean"))
    assert D.wasserstein1(p, q, support=support) == pytest.approx(expected, rel=1e-9)


def test_w1_with_cost_matrix() -> None:
    rng = np.random.default_rng(5)
    p, q = random_hist(rng, 6), random_hist(rng, 6)
    idx = np.arange(6.0)
    line_cost = np.abs(idx[:, None] - idx[None, :])
    assert D.wasserstein1(p, q, cost=line_cost) == pytest.approx(D.wasserstein1(p, q), rel=1e-9)
    # With the 0/1 cost, optimal transport moves exactly the mass that differs: W = TV.
    discrete = 1.0 - np.eye(6)
    assert D.wasserstein1(p, q, cost=discrete) == pytest.approx(D.total_variation(p, q))


# ------------------------------------------------------------------ validation

FUNCS = [D.total_variation, D.kl_divergence, D.js_divergence, D.wasserstein1]
GOOD = [0.5, 0.5, 0.0]


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize(
    ("p", "q", "match"),
    [
        ([0.6, -0.1, 0.5], GOOD, "p has negative mass at index 1"),
        (GOOD, [0.2, 0.8, -0.0001], "q has negative mass at index 2"),
        ([0.5, float("nan"), 0.5], GOOD, "p contains NaN"),
        (GOOD, [float("inf"), 0.0, 0.0], "q contains inf"),
        ([0.5, 0.3, 0.0], GOOD, r"p sums to 0\.8, expected 1 \(tolerance 1e-06\)"),
        (GOOD, [0.5, 0.5], r"different shapes \(3,\) vs \(2,\)"),
        ([[0.5, 0.5]], [[0.5, 0.5]], "must be 1-D"),
        ([], [], "p is empty"),
    ],
)
def test_validation_errors(func, p, q, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        func(np.array(p), np.array(q))


def test_tolerance_is_adjustable() -> None:
    p, q = [0.5, 0.5001], [0.5, 0.5]
    with pytest.raises(ValueError, match="sums to 1.0001"):
        D.total_variation(p, q)
    assert D.total_variation(p, q, atol=1e-3) == pytest.approx(0.00005)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"support": np.zeros((3, 2)), "cost": np.zeros((2, 2))}, "not both"),
        ({"support": np.zeros(3)}, r"support must have shape \(2,\)"),
        ({"support": [0.0, np.nan]}, "support contains NaN"),
        ({"cost": np.zeros((3, 3))}, r"cost must have shape \(2, 2\)"),
        ({"cost": -np.ones((2, 2))}, "cost has negative entries"),
    ],
)
def test_w1_support_and_cost_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        D.wasserstein1([0.5, 0.5], [1.0, 0.0], **kwargs)


# ------------------------------------------------------------------ sample estimators


def test_histogram_estimators_hand_values() -> None:
    # bins=2 on [0, 1]: x -> (1/2, 1/2), y -> (1/4, 3/4).
    x, y = np.array([0.1, 0.2, 0.8, 0.9]), np.array([0.1, 0.6, 0.7, 0.9])
    kw = {"bins": 2, "bounds": [(0.0, 1.0)]}
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert D.total_variation_from_samples(x, y, **kw) == pytest.approx(0.25)
    kl = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert D.kl_divergence_from_samples(x, y, **kw) == pytest.approx(kl)
    assert D.js_divergence_from_samples(x, y, **kw) == pytest.approx(jensenshannon(p, q) ** 2)


def test_histogram_kl_infinite_on_empty_bin_unless_smoothed() -> None:
    x, y = np.array([0.1, 0.9]), np.array([0.1, 0.2])
    kw = {"bins": 2, "bounds": [(0.0, 1.0)]}
    assert D.kl_divergence_from_samples(x, y, **kw) == math.inf
    # Pseudo-count 1: x -> (2/4, 2/4), y -> (3/4, 1/4).
    expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert D.kl_divergence_from_samples(x, y, smoothing=1.0, **kw) == pytest.approx(expected)


def test_histogram_plugin_bias_is_upward_for_same_law() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 2)), rng.random((200, 2))
    assert D.js_divergence_from_samples(x, y, bins=10) > 0.05
    assert D.total_variation_from_samples(x, y, bins=10) > 0.1


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), {}, "different dimensions 2 vs 3"),
        (np.zeros((2, 2, 2)), np.zeros((2, 2)), {}, "x must have shape"),
        (np.zeros(0), np.zeros(3), {}, "x has no samples"),
        (np.array([0.0, np.nan]), np.zeros(2), {}, "x contains NaN"),
        (np.array([0.0, 2.0]), np.zeros(2), {"bounds": [(0.0, 1.0)]}, "outside bounds"),
        (np.zeros(2), np.zeros(2), {"bounds": [(1.0, 0.0)]}, "lo < hi"),
        (np.zeros((2, 2)), np.zeros((2, 2)), {"bins": [3]}, "bins must be"),
        (np.zeros((2, 8)), np.zeros((2, 8)), {"bins": 20}, "reduce bins"),
    ],
)
def test_sample_input_errors(x, y, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        D.total_variation_from_samples(x, y, **kwargs)


def test_knn_kl_matches_gaussian_closed_form() -> None:
    # KL(N(0, I) ‖ N(μ, I)) = ‖μ‖² / 2.
    rng = np.random.default_rng(1)
    mu = np.array([1.0, -0.5])
    x, y = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)) + mu
    assert D.kl_divergence_knn(x, y, k=3) == pytest.approx(mu @ mu / 2, abs=0.1)
    assert abs(D.kl_divergence_knn(x, rng.normal(size=(2000, 2)))) < 0.1


def test_knn_kl_errors() -> None:
    with pytest.raises(ValueError, match="duplicate points"):
        D.kl_divergence_knn(np.zeros(5), np.arange(5.0) + 1)
    with pytest.raises(ValueError, match="k must satisfy"):
        D.kl_divergence_knn(np.arange(3.0), np.arange(3.0) + 0.5, k=3)


@pytest.mark.parametrize("seed", range(3))
def test_w1_samples_1d_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=300), rng.exponential(size=250)
    expected = wasserstein_distance(x, y)
    assert D.wasserstein1_from_samples(x, y) == pytest.approx(expected, rel=1e-10)
    assert D.wasserstein1_from_samples(torch.tensor(x), y[:, None]) == pytest.approx(expected)


def test_w1_samples_sliced_and_auto_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 0.5
    exact = D.wasserstein1_from_samples(x, y, method="exact")
    sliced = D.wasserstein1_from_samples(x, y, method="sliced", seed=1)
    assert 0 < sliced <= exact
    assert D.wasserstein1_from_samples(x, y) == pytest.approx(exact)
    monkeypatch.setattr(D, "SLICED_THRESHOLD", 100)
    assert D.wasserstein1_from_samples(x, y, seed=1) == pytest.approx(sliced)
    # In 1-D every projection is ±identity, so sliced equals exact.
    x1, y1 = x[:, 0], y[:, 0]
    assert D.wasserstein1_from_samples(x1, y1, method="sliced") == pytest.approx(
        wasserstein_distance(x1, y1), rel=1e-9
    )
    with pytest.raises(ValueError, match="method must be"):
        D.wasserstein1_from_samples(x, y, method="fast")


# ------------------------------------------------------------------ parallel lines


@pytest.mark.parametrize("theta", [0.0, 0.5, -0.5, 1.0, 1e-3])
def test_parallel_lines_closed_form(theta: float) -> None:
    d = D.parallel_lines(theta)
    assert set(d) == {"tv", "kl", "js", "em"}
    if theta == 0:
        assert d == {"tv": 0.0, "kl": 0.0, "js": 0.0, "em": 0.0}
    else:
        assert d == {"tv": 1.0, "kl": math.inf, "js": pytest.approx(LOG2), "em": abs(theta)}


def test_parallel_lines_rejects_nan() -> None:
    with pytest.raises(ValueError, match="theta must be finite"):
        D.parallel_lines(float("nan"))


def test_parallel_lines_samples() -> None:
    x0, xt = D.parallel_lines_samples(0.3, 50, seed=1)
    assert x0.shape == xt.shape == (50, 2)
    assert np.all(x0[:, 0] == 0) and np.all(xt[:, 0] == 0.3)
    assert 0 <= x0[:, 1].min() and xt[:, 1].max() <= 1
    assert not np.array_equal(x0[:, 1], xt[:, 1])  # independent Z per set
    assert np.array_equal(D.parallel_lines_samples(0.3, 50, seed=1)[1], xt)


BOUNDS = ((-1.0, 1.0), (0.0, 1.0))  # with bins=20, x-bins are 0.1 wide


@pytest.mark.parametrize("theta", [0.0, 0.5, -0.5, 1.0])
def test_parallel_lines_estimates_agree_with_closed_form(theta: float) -> None:
    est = D.parallel_lines_estimates(theta, n=2000, seed=0, bins=20, bounds=BOUNDS)
    exact = D.parallel_lines(theta)
    assert est["em"] == pytest.approx(exact["em"], abs=0.03)
    if theta == 0:
        assert est["js"] < 0.01 and est["tv"] < 0.1 and est["kl"] < 0.05
    else:
        assert est["js"] == pytest.approx(LOG2) and est["tv"] == 1.0 and est["kl"] == math.inf


def test_parallel_lines_histogram_cannot_resolve_below_bin_width() -> None:
    est = D.parallel_lines_estimates(0.05, n=2000, seed=0, bins=20, bounds=BOUNDS)
    assert est["js"] < 0.01  # true JS is log 2; both lines share one x-bin
    assert est["em"] == pytest.approx(0.05, abs=0.01)  # W still sees the shift
    # One bin width apart always separates them (0.15, not 0.1: edges are rounded linspaces).
    assert D.parallel_lines_estimates(0.15, n=500, bounds=BOUNDS)["js"] == pytest.approx(LOG2)
