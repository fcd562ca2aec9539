"""Tests of gankit.lipschitz against exact matrix norms and the Lipschitz calculus rules."""

import math

import pytest
import torch
from torch import nn

from gankit import lipschitz as L


@pytest.fixture(autouse=True)
def _seed_and_threads():
    # The tensors here are tiny: a single thread avoids OpenMP overhead on a busy 2-core box.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def mlp(d: int = 5, hidden: int = 16) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.Tanh(),
        nn.Linear(hidden, 1),
    )  # fmt: skip


def exact_norm(layer: nn.Module) -> float:
    return float(torch.linalg.matrix_norm(layer.weight.detach().double(), 2))


class Sum(nn.Module):
    """h = f + g, to test the sum rule L(f + g) ≤ L(f) + L(g)."""

    def __init__(self, f: nn.Module, g: nn.Module) -> None:
        super().__init__()
        self.f, self.g = f, g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x) + self.g(x)


# ------------------------------------------------------------------ lower and upper agree


@pytest.mark.parametrize("d", [1, 3, 10])
def test_linear_functional_bounds_all_equal_norm(d: int) -> None:
    f = nn.Linear(d, 1).double()  # float64: the quotients are differences of close values
    w = f.weight.detach()[0]
    x = torch.randn(32, d, dtype=torch.float64)
    y = x + torch.rand(32, 1, dtype=torch.float64) * w  # pairs along w realise the quotient ‖w‖
    norm = float(w.norm())
    assert L.grad_norm_lower_bound(f, x) == pytest.approx(norm, rel=1e-3)
    assert L.pairwise_lower_bound(f, x, y) == pytest.approx(norm, rel=1e-3)
    assert L.spectral_upper_bound(nn.Sequential(f)) == pytest.approx(norm, rel=1e-3)


@pytest.mark.parametrize(("out_f", "in_f"), [(1, 7), (7, 1), (8, 5), (30, 40)])
def test_linear_power_iteration_matches_matrix_norm(out_f: int, in_f: int) -> None:
    layer = nn.Linear(in_f, out_f)
    ((_, value),) = L.layer_lipschitz_constants(nn.Sequential(layer), n_iter=300)
    assert value == pytest.approx(exact_norm(layer), rel=1e-6)


def test_composition_rule() -> None:
    a, b = nn.Linear(6, 12), nn.Linear(12, 1)
    f = nn.Sequential(a, nn.ReLU(), b)
    upper = L.spectral_upper_bound(f)
    assert upper <= exact_norm(a) * exact_norm(b) * (1 + 1e-6)
    assert upper == pytest.approx(exact_norm(a) * exact_norm(b), rel=1e-4)
    x, y = torch.randn(256, 6), torch.randn(256, 6)
    assert L.grad_norm_lower_bound(f, torch.cat([x, y])) <= upper
    assert L.pairwise_lower_bound(f, x, y) <= upper


def test_sum_rule_on_examples() -> None:
    f, g = mlp(), mlp()
    h = Sum(f, g)
    x = torch.randn(512, 5) * 3
    lower = L.grad_norm_lower_bound(h, x)
    assert 0 < lower <= L.spectral_upper_bound(f) + L.spectral_upper_bound(g)
    # Linear case is exact: ∇(f + g) = w_f + w_g and ‖w_f + w_g‖ ≤ ‖w_f‖ + ‖w_g‖.
    lf, lg = nn.Linear(4, 1), nn.Linear(4, 1)
    exact = float((lf.weight + lg.weight).detach().norm())
    assert L.grad_norm_lower_bound(Sum(lf, lg), torch.randn(3, 4)) == pytest.approx(exact)
    assert exact <= exact_norm(lf) + exact_norm(lg)


def test_nested_sequential_and_sigmoid_quarter() -> None:
    lin = nn.Linear(3, 1, bias=False)
    f = nn.Sequential(nn.Sequential(nn.Identity(), lin), nn.Sigmoid())
    names = [name for name, _ in L.layer_lipschitz_constants(f)]
    assert names == ["0.0", "0.1", "1"]
    norm = exact_norm(lin)
    assert L.spectral_upper_bound(f) == pytest.approx(norm / 4, rel=1e-6)
    # σ'(0) = 1/4 is the sup, so the gradient at the origin reaches the bound.
    assert L.grad_norm_lower_bound(f, torch.zeros(1, 3)) == pytest.approx(norm / 4, rel=1e-5)


@pytest.mark.parametrize(
    ("layer", "const"),
    [(nn.LeakyReLU(0.2), 1.0), (nn.LeakyReLU(3.0), 3.0), (nn.ELU(2.0), 2.0), (nn.ReLU(), 1.0)],
)
def test_activation_constants(layer: nn.Module, const: float) -> None:
    assert L.spectral_upper_bound(nn.Sequential(layer)) == const


# ------------------------------------------------------------------ convolutions


def conv_matrix(conv: nn.Conv2d, shape: tuple[int, int, int]) -> torch.Tensor:
    """The conv (without bias) as an explicit matrix: column j is conv(e_j)."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    w = conv.weight.detach().double()
    c = conv
    out = nn.functional.conv2d(basis, w, None, c.stride, c.padding, c.dilation, c.groups)
    return out.reshape(n, -1).T


@pytest.mark.parametrize(
    ("conv_args", "shape"),
    [
        ((2, 3, 3, 2, 1), (2, 5, 5)),
        ((4, 6, 3, 1, 2, 2, 2), (4, 6, 6)),  # padding 2, dilation 2, groups 2
        ((1, 2, 4, 2, 1), (1, 8, 8)),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_power_iteration_matches_explicit_matrix(conv_args, shape, seed) -> None:
    # Weights are drawn here, not at collection time, so the case is the same on every run
    # (a random draw whose top two singular values nearly tie converges too slowly for 1e-4).
    torch.manual_seed(seed)
    conv = nn.Conv2d(*conv_args)
    expected = float(torch.linalg.matrix_norm(conv_matrix(conv, shape), 2))
    ((_, value),) = L.layer_lipschitz_constants(nn.Sequential(conv), shape, n_iter=300)
    assert expected * (1 - 1e-4) <= value <= expected * (1 + 1e-6)  # approaches from below


def conv_critic() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 8, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(8 * 2 * 2, 1),
    )  # fmt: skip


def test_conv_critic_upper_above_lower() -> None:
    f = conv_critic()
    x = torch.randn(64, 1, 8, 8)
    upper = L.spectral_upper_bound(f, input_shape=(1, 8, 8))
    assert L.grad_norm_lower_bound(f, x) <= upper


# ------------------------------------------------------------------ clipping


@pytest.mark.parametrize("c", [0.01, 0.1])
@pytest.mark.parametrize("make", [mlp, conv_critic])
def test_clipping_bound_dominates_spectral_after_clipping(c: float, make) -> None:
    f = make()
    with torch.no_grad():
        for p in f.parameters():
            p.clamp_(-c, c)
    shape = (1, 8, 8) if make is conv_critic else None
    assert L.spectral_upper_bound(f, shape) <= L.clipping_upper_bound(f, c)


def test_clipping_bound_tight_for_constant_matrix() -> None:
    layer = nn.Linear(6, 4)
    nn.init.constant_(layer.weight, 0.05)
    f = nn.Sequential(layer)
    assert L.clipping_upper_bound(f, 0.05) == pytest.approx(0.05 * math.sqrt(24))
    assert L.spectral_upper_bound(f) == pytest.approx(0.05 * math.sqrt(24), rel=1e-6)
    with pytest.raises(ValueError, match="must be positive"):
        L.clipping_upper_bound(f, 0.0)


def test_clipping_bound_nearly_tight_for_constant_kernel() -> None:
    # An all-c 3x3 kernel maps a constant image to 9c times it, up to the zero-padded border.
    conv = nn.Conv2d(1, 1, 3, padding=1)
    nn.init.constant_(conv.weight, 0.1)
    f = nn.Sequential(conv)
    spectral, bound = L.spectral_upper_bound(f, (1, 16, 16)), L.clipping_upper_bound(f, 0.1)
    assert bound == pytest.approx(0.9)
    assert 0.95 * bound <= spectral <= bound


# ------------------------------------------------------------------ spectral_norm layers


def test_spectral_norm_parametrization_measured_without_side_effects() -> None:
    sn = nn.utils.parametrizations.spectral_norm
    f = nn.Sequential(sn(nn.Linear(5, 16)), nn.ReLU(), sn(nn.Linear(16, 1)))
    for _ in range(30):  # let the stored power-iteration vectors converge
        f(torch.randn(4, 5))
    u_before = f[0].parametrizations.weight[0]._u.clone()
    assert L.spectral_upper_bound(f) == pytest.approx(1.0, abs=1e-3)
    assert torch.equal(f[0].parametrizations.weight[0]._u, u_before)
    assert f.training and f[0].parametrizations.weight[0].training


# ------------------------------------------------------------------ check_lipschitz


def test_check_lipschitz_no_violation_on_random_mlp() -> None:
    f = mlp()
    x, y = torch.randn(200, 5), torch.randn(200, 5)
    result = L.check_lipschitz(f, x, y)
    assert result["pairs"] == 200 and result["violations"] == 0
    assert 0 < result["max_ratio"] <= 1 + 1e-4
    assert result["sup_grad"] <= L.spectral_upper_bound(f)


def test_check_lipschitz_detects_too_small_sup() -> None:
    f = nn.Linear(5, 1)
    x = torch.randn(50, 5)
    y = x + f.weight.detach()  # every quotient equals ‖w‖
    norm = float(f.weight.detach().norm())
    result = L.check_lipschitz(f, x, y, sup_grad=0.5 * norm)
    assert result["violations"] == 50
    assert result["max_ratio"] == pytest.approx(2.0, rel=1e-4)


def test_interpolates_lie_on_segments() -> None:
    a, b = torch.zeros(100, 3), torch.ones(100, 3)
    mid = L.interpolates(a, b, seed=1)
    assert mid.shape == (100, 3)
    assert torch.all(mid[:, 0:1] == mid)  # one t per sample, shared across coordinates
    assert 0 <= mid.min() and mid.max() <= 1 and mid.std() > 0.1
    assert torch.equal(mid, L.interpolates(a, b, seed=1))


# ------------------------------------------------------------------ errors and report


@pytest.mark.parametrize(
    ("f", "match"),
    [
        (nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)), "BatchNorm1d at '1'"),
        (nn.Sequential(nn.Sequential(nn.Linear(5, 4), nn.Softmax(1))), "Softmax at '0.1'"),
        (nn.Sequential(nn.Dropout(0.5)), "Dropout at '0' is in training mode"),
        (nn.Sequential(nn.Conv2d(1, 1, 3)), r"needs input_shape=\(C, H, W\)"),
        (Sum(nn.Linear(2, 1), nn.Linear(2, 1)), "unsupported layer Sum"),
    ],
)
def test_unsupported_layers_raise(f: nn.Module, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        L.spectral_upper_bound(f)


def test_batchnorm_message_explains() -> None:
    f = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with pytest.raises(ValueError, match="couples the samples"):
        L.clipping_upper_bound(f, 0.01)


def test_dropout_in_eval_is_one_lipschitz() -> None:
    f = nn.Sequential(nn.Linear(3, 1), nn.Dropout(0.5)).eval()
    assert L.spectral_upper_bound(f) == pytest.approx(exact_norm(f[0]), rel=1e-6)


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="one scalar per sample"):
        L.grad_norm_lower_bound(nn.Linear(3, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match="different shapes"):
        L.pairwise_lower_bound(nn.Linear(3, 1), torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="coincide in every pair"):
        x = torch.randn(4, 3)
        L.pairwise_lower_bound(nn.Linear(3, 1), x, x.clone())
    with pytest.raises(ValueError, match="x contains NaN"):
        L.grad_norm_lower_bound(nn.Linear(1, 1), torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="expects 5 input features"):
        L.spectral_upper_bound(nn.Sequential(nn.Linear(5, 1)), input_shape=(4,))


def test_lipschitz_report_brackets_constant() -> None:
    f = conv_critic()
    real, fake = torch.randn(32, 1, 8, 8), torch.randn(40, 1, 8, 8)
    report = L.lipschitz_report(f, real, fake, clip=0.5)
    assert set(report) == {
        "lipschitz/lower_grad", "lipschitz/lower_pairs", "lipschitz/upper_spectral",
        "lipschitz/upper_clipping",
    }  # fmt: skip
    lower = max(report["lipschitz/lower_grad"], report["lipschitz/lower_pairs"])
    assert 0 < lower <= report["lipschitz/upper_spectral"] <= report["lipschitz/upper_clipping"]
    assert "lipschitz/upper_clipping" not in L.lipschitz_report(f, real, fake)


def test_lipschitz_report_nan_for_unsupported() -> None:
    f = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1)).eval()
    with pytest.warns(UserWarning, match="BatchNorm1d"):
        report = L.lipschitz_report(f, torch.randn(8, 3), torch.randn(8, 3))
    assert math.isnan(report["lipschitz/upper_spectral"])
    assert report["lipschitz/lower_grad"] > 0
