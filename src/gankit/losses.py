"""GAN losses as small pure functions, so families can be compared line by line.

Conventions: ``d_real``/``d_fake`` are the discriminator's (critic's) raw outputs, shape (B,) or
(B, 1, ...), never passed through a sigmoid by the caller. Every function returns a scalar tensor
that the caller *minimises*, computed in fp32 even from the bf16 outputs of an autocast forward
pass (``.float()`` of an fp32 tensor is the tensor itself: fp32 runs are unchanged).
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.distributed import local_rows


def d_loss_bce(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Original GAN discriminator loss: -E[log D(x)] - E[log(1 - D(G(z)))], D = sigmoid(logit)."""
    d_real, d_fake = d_real.float(), d_fake.float()
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def g_loss_nonsaturating(d_fake: Tensor) -> Tensor:
    """Non-saturating generator loss of Goodfellow et al.: -E[log D(G(z))]."""
    return F.softplus(-d_fake.float()).mean()


def g_loss_minimax(d_fake: Tensor) -> Tensor:
    """Saturating minimax generator loss: E[log(1 - D(G(z)))] (vanishes when D wins)."""
    return -F.softplus(d_fake.float()).mean()


def d_loss_wasserstein(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """WGAN critic loss: E[f(G(z))] - E[f(x)].

    Minimising it maximises E[f(x)] - E[f(G(z))], the critic's Earth-Mover estimate, so the
    estimate is ``-d_loss_wasserstein``: it should be positive and shrink as G improves.
    """
    return d_fake.float().mean() - d_real.float().mean()


def g_loss_wasserstein(d_fake: Tensor) -> Tensor:
    """WGAN generator loss: -E[f(G(z))] (G pushes its samples up the critic)."""
    return -d_fake.float().mean()


def d_loss_hinge(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Hinge discriminator loss: E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]."""
    return F.relu(1.0 - d_real.float()).mean() + F.relu(1.0 + d_fake.float()).mean()


def g_loss_hinge(d_fake: Tensor) -> Tensor:
    """Hinge generator loss: -E[D(G(z))]."""
    return -d_fake.float().mean()


def d_loss_lsgan(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Least-squares discriminator loss (Mao et al.): ½E[(D(x) - 1)²] + ½E[D(G(z))²]."""
    d_real, d_fake = d_real.float(), d_fake.float()
    return 0.5 * ((d_real - 1.0) ** 2).mean() + 0.5 * (d_fake**2).mean()


def g_loss_lsgan(d_fake: Tensor) -> Tensor:
    """Least-squares generator loss: ½E[(D(G(z)) - 1)²]."""
    return 0.5 * ((d_fake.float() - 1.0) ** 2).mean()


def interpolate(real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Random points on the segments between paired real and fake samples.

    x̂ = ε·x + (1 - ε)·x̃ with ONE ε ~ U[0, 1] per sample (shape (B, 1, 1, ...)), not per pixel:
    a per-pixel ε leaves the segment and the penalty then constrains the wrong set.
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)

    def draw(n: int) -> Tensor:
        size = (n, *shape[1:])
        return torch.rand(size, device=real.device, dtype=real.dtype, generator=generator)

    # a training step's ε (no generator): every rank draws the global batch's, keeps its rows
    eps = draw(shape[0]) if generator is not None else local_rows(draw, shape[0])
    return eps * real + (1.0 - eps) * fake


def gradient_norm(critic: Callable[[Tensor], Tensor], x: Tensor, *cond: Tensor) -> Tensor:
    """‖∇ₓ f(x)‖₂ per sample, taken over all non-batch dimensions; shape (B,).

    ``x`` must not need to be a leaf; gradients are built with ``create_graph`` so a penalty on
    them can be back-propagated. ``critic`` must return raw scores (no sigmoid). Always fp32,
    autocast or not: the penalty's double backward keeps full precision (an fp32 x is used as is).
    """
    x = x.detach().float().requires_grad_(True)
    with torch.autocast(x.device.type, enabled=False):
        out = critic(x, *cond)
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        return grad.flatten(1).norm(2, dim=1)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    *cond: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP two-sided penalty (Gulrajani et al., arXiv:1704.00028): E[(‖∇f(x̂)‖₂ - 1)²].

    The caller multiplies by λ (10 in the paper). ``fake`` is detached here.
    """
    # fp32 points (a bf16 fake from an autocast generator is cast): see gradient_norm
    x_hat = interpolate(real.detach().float(), fake.detach().float(), generator)
    return ((gradient_norm(critic, x_hat, *cond) - 1.0) ** 2).mean()


def recon_l1(x: Tensor, x_rec: Tensor) -> Tensor:
    """L1 reconstruction (CycleGAN's cycle loss): E|x - x_rec|."""
    return (x.float() - x_rec.float()).abs().mean()


def recon_l2(x: Tensor, x_rec: Tensor) -> Tensor:
    """L2 reconstruction: E(x - x_rec)²."""
    return ((x.float() - x_rec.float()) ** 2).mean()


def recon_huber(x: Tensor, x_rec: Tensor, delta: float = 1.0) -> Tensor:
    """Huber loss L_δ: ½a² where |a| ≤ δ, else δ(|a| - ½δ), with a = x - x_rec."""
    a = (x.float() - x_rec.float()).abs()
    return torch.where(a <= delta, 0.5 * a**2, delta * (a - 0.5 * delta)).mean()
