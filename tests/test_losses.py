"""Losses against hand-computed values, and the classic WGAN/WGAN-GP bugs (PITFALLS 14-16)."""

import math

import pytest
import torch
from torch import nn

from gankit import losses


def test_bce_losses_hand_values():
    zero = torch.zeros(4)
    assert losses.d_loss_bce(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert losses.g_loss_nonsaturating(zero).item() == pytest.approx(math.log(2))
    # D(G(z)) = sigmoid(2): -log(sigmoid(2)) = log(1 + e^-2)
    assert losses.g_loss_nonsaturating(torch.full((3,), 2.0)).item() == pytest.approx(
        math.log(1 + math.exp(-2))
    )
    assert losses.g_loss_minimax(zero).item() == pytest.approx(-math.log(2))


def test_wasserstein_signs():
    d_real, d_fake = torch.tensor([2.0, 4.0]), torch.tensor([-1.0, 1.0])
    # critic minimises E[f(fake)] - E[f(real)] = 0 - 3
    assert losses.d_loss_wasserstein(d_real, d_fake).item() == pytest.approx(-3.0)
    # generator minimises -E[f(fake)]: raising f(fake) lowers its loss
    assert losses.g_loss_wasserstein(d_fake).item() == pytest.approx(0.0)
    assert losses.g_loss_wasserstein(d_fake + 1).item() < losses.g_loss_wasserstein(d_fake).item()


def test_hinge_and_lsgan_hand_values():
    d_real, d_fake = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.0])
    assert losses.d_loss_hinge(d_real, d_fake).item() == pytest.approx(0.25 + 0.5)
    assert losses.g_loss_hinge(d_fake).item() == pytest.approx(1.0)
    assert losses.d_loss_lsgan(d_real, d_fake).item() == pytest.approx(
        0.5 * (0.25 + 1.0) / 2 + 0.5 * 4.0 / 2
    )
    assert losses.g_loss_lsgan(d_fake).item() == pytest.approx(0.5 * (9 + 1) / 2)


def test_reconstruction_losses_hand_values():
    x = torch.tensor([0.0, 0.0, 0.0, 0.0])
    y = torch.tensor([0.5, -2.0, 1.0, 3.0])
    assert losses.recon_l1(x, y).item() == pytest.approx((0.5 + 2 + 1 + 3) / 4)
    assert losses.recon_l2(x, y).item() == pytest.approx((0.25 + 4 + 1 + 9) / 4)
    # δ = 1: ½a² for |a| ≤ 1, else |a| − ½
    assert losses.recon_huber(x, y, delta=1.0).item() == pytest.approx(
        (0.125 + 1.5 + 0.5 + 2.5) / 4
    )


def test_interpolation_weight_is_per_sample_not_per_pixel():
    real, fake = torch.rand(6, 3, 4, 4), torch.rand(6, 3, 4, 4)
    x_hat = losses.interpolate(real, fake, torch.Generator().manual_seed(0))
    eps = (x_hat - fake) / (real - fake)
    per_sample = eps.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-4)
    assert per_sample[:, 0].std() > 0.05  # different samples draw different ε
    assert ((per_sample >= 0) & (per_sample <= 1)).all()


class Linear(nn.Module):
    """f(x) = <w, x> summed over all non-batch dims: ∇f = w everywhere."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


def test_gradient_norm_spans_all_non_batch_dims():
    w = torch.arange(12.0).view(3, 2, 2)
    x = torch.rand(5, 3, 2, 2)
    norms = losses.gradient_norm(Linear(w), x)
    assert norms.shape == (5,)
    assert torch.allclose(norms, torch.full((5,), float(w.norm())))


def test_gradient_penalty_hand_value_and_raw_output():
    w = torch.tensor([3.0, 4.0])  # ‖w‖ = 5 → penalty (5 − 1)² = 16
    critic = Linear(w)
    gp = losses.gradient_penalty(critic, torch.rand(8, 2), torch.rand(8, 2))
    assert gp.item() == pytest.approx(16.0)
    # a sigmoid on the output would shrink the gradient; the penalty must see raw scores
    gp.backward()
    assert critic.w.grad is not None and torch.allclose(critic.w.grad, 2 * 4 * w / 5)
