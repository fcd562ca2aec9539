"""Plain eager PyTorch versions of the benchmark presets: what a user writes from the papers.

Each preset of ``benchmarks/run.py`` has a function here that builds the same networks (layer
widths, normalisations, parameter counts) from ``nn.Linear`` / ``nn.Conv2d`` /
``nn.ConvTranspose2d`` / ``nn.BatchNorm2d`` / ``nn.InstanceNorm2d``, in NCHW and fp32, with
``torch.optim.Adam`` (or RMSprop for WGAN) at its default arguments (no fused/foreach flags),
and returns a :class:`Reference` whose ``step()`` runs one training step of gankit's preset on
synthetic data of the preset's shape: the same losses, critic steps, identity and cycle terms and
image pools, in the same order, so that the FLOPs of a step match gankit's (the side-by-side
benchmark prints both). Where gankit's step does not compute the discriminator's weight
gradients during the generator's update, the reference switches them off with
``requires_grad_(False)``, as the original CycleGAN code does.

``precision="bf16"`` wraps the forward passes and losses in plain ``torch.autocast`` (bf16), the
backward passes and optimiser steps outside it, as PyTorch's AMP recipe says.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Amp = Callable[[], AbstractContextManager]


@dataclass
class Reference:
    """One preset in plain PyTorch: ``step()`` trains once; ``nets`` by gankit's module names."""

    step: Callable[[], None]
    nets: dict[str, nn.Module]
    batch_size: int


def amp_for(precision: str) -> Amp:
    if precision == "bf16":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext


@contextmanager
def no_weight_grads(*nets: nn.Module) -> Iterator[None]:
    """The discriminators' parameters as constants while the generators' loss runs through them."""
    for net in nets:
        net.requires_grad_(False)
    try:
        yield
    finally:
        for net in nets:
            net.requires_grad_(True)


def sampler(data: Tensor, batch_size: int) -> Callable[[], Tensor]:
    """A random batch (with replacement) of the in-memory data each call."""
    return lambda: data[torch.randint(len(data), (batch_size,))]


def dcgan_init(net: nn.Module) -> None:
    """N(0, 0.02) conv weights, zero biases (DCGAN; CycleGAN's 'normal' init)."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def mlp(n_in: int, n_out: int, hidden: int, depth: int, leaky: float = 0.0) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(n_in if i == 0 else hidden, hidden)]
        layers += [nn.LeakyReLU(leaky) if leaky else nn.ReLU()]
    return [*layers, nn.Linear(hidden, n_out)]


def eight_gaussians(n: int = 4096) -> Tensor:
    angles = torch.randint(8, (n,)) * (torch.pi / 4)
    centres = torch.stack([angles.cos(), angles.sin()], 1) * 2
    return centres + 0.02 * torch.randn(n, 2)


# ----------------------------------------------------------------------------- toy presets


def gan_8gaussians(precision: str = "fp32") -> Reference:
    """GAN (Goodfellow et al.), non-saturating G loss; 128-wide 3-layer MLPs, batch 256."""
    amp, batch = amp_for(precision), 256
    g, d = nn.Sequential(*mlp(2, 2, 128, 3)), nn.Sequential(*mlp(2, 1, 128, 3))
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data, bce = sampler(eight_gaussians(), batch), nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    def step() -> None:
        real = data()
        with amp():
            fake = g(torch.randn(batch, 2)).detach()
            loss_d = bce(d(real), ones) + bce(d(fake), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        with amp():
            loss_g = bce(d(g(torch.randn(batch, 2))), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    return Reference(step, {"generator": g, "discriminator": d}, batch)


def wgan_8gaussians(precision: str = "fp32") -> Reference:
    """WGAN (Arjovsky et al.): RMSprop 5e-5, 5 critic steps, weights clipped to ±0.01."""
    amp, batch = amp_for(precision), 256
    g, critic = nn.Sequential(*mlp(2, 2, 128, 3)), nn.Sequential(*mlp(2, 1, 128, 3))
    opt_g = torch.optim.RMSprop(g.parameters(), lr=5e-5)
    opt_d = torch.optim.RMSprop(critic.parameters(), lr=5e-5)
    data = sampler(eight_gaussians(), batch)

    def step() -> None:
        for _ in range(5):
            real = data()
            with amp():
                fake = g(torch.randn(batch, 2)).detach()
                loss_d = critic(fake).mean() - critic(real).mean()
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
            for p in critic.parameters():
                p.data.clamp_(-0.01, 0.01)
        with amp():
            loss_g = -critic(g(torch.randn(batch, 2))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    return Reference(step, {"generator": g, "critic": critic}, batch)


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """E[(‖∇f(x̂)‖₂ − 1)²] on x̂ = αx + (1 − α)x̃, one α per sample (Gulrajani et al.)."""
    alpha = torch.rand(len(real), *([1] * (real.dim() - 1)))
    x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def wgan_gp_8gaussians(precision: str = "fp32") -> Reference:
    """WGAN-GP with the toy settings gankit uses on points: Adam 1e-3 (0.5, 0.9), λ = 0.1."""
    amp, batch = amp_for(precision), 256
    g, critic = nn.Sequential(*mlp(2, 2, 128, 3)), nn.Sequential(*mlp(2, 1, 128, 3))
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    data = sampler(eight_gaussians(), batch)

    def step() -> None:
        for _ in range(5):
            real = data()
            with amp():
                fake = g(torch.randn(batch, 2)).detach()
                loss_d = critic(fake).mean() - critic(real).mean()
                loss_d = loss_d + 0.1 * gradient_penalty(critic, real, fake)
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        with amp():
            loss_g = -critic(g(torch.randn(batch, 2))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    return Reference(step, {"generator": g, "critic": critic}, batch)


# ----------------------------------------------------------------------------- conditional GANs


class MLPGenerator(nn.Module):
    """[z ; onehot(y)] (B, 110) → 3 × (1024, LeakyReLU 0.2) → 1024 → tanh → (B, 1, 32, 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(*mlp(110, 32 * 32, 1024, 3, 0.2), nn.Tanh())

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.net(torch.cat([z, F.one_hot(y, 10).to(z.dtype)], 1)).view(-1, 1, 32, 32)


class MLPDiscriminator(nn.Module):
    """[x ; onehot(y)] (B, 1034) → 512 → 512 → 512 (LeakyReLU 0.2 after each) → score (B,)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(*mlp(1034, 512, 512, 2, 0.2), nn.LeakyReLU(0.2), nn.Linear(512, 1))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.net(torch.cat([x.flatten(1), F.one_hot(y, 10).to(x.dtype)], 1)).squeeze(1)


class ConvGenerator(nn.Module):
    """DCGAN generator on [z ; embed(y)]: linear → 256×4×4 → 128 → 64 → 1 channel at 32×32."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 100)
        self.fc = nn.Sequential(nn.Linear(200, 256 * 4 * 4), nn.ReLU())
        self.net = nn.Sequential(
            *(nn.ConvTranspose2d(256, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.ReLU()),
            *(nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU()),
            *(nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh()),
        )

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.net(self.fc(torch.cat([z, self.embed(y)], 1)).view(-1, 256, 4, 4))


class ConvDiscriminator(nn.Module):
    """[x ; 10 one-hot label maps] → conv 64, 128, 256 (4×4 stride 2, layer norm after the first,
    LeakyReLU 0.2) → linear → score (B,)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            *(nn.Conv2d(11, 64, 4, 2, 1), nn.LeakyReLU(0.2)),
            *(nn.Conv2d(64, 128, 4, 2, 1), nn.GroupNorm(1, 128), nn.LeakyReLU(0.2)),
            *(nn.Conv2d(128, 256, 4, 2, 1), nn.GroupNorm(1, 256), nn.LeakyReLU(0.2)),
            *(nn.Flatten(), nn.Linear(256 * 4 * 4, 1)),
        )

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        maps = F.one_hot(y, 10).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.net(torch.cat([x, maps], 1)).squeeze(1)


def cgan(g: nn.Module, d: nn.Module, precision: str) -> Reference:
    """cGAN (Mirza & Osindero) on 32×32 MNIST-shaped data, batch 64: D's step on real and G's
    detached fakes, then G's step on new fakes through D (BCE, non-saturating)."""
    amp, batch = amp_for(precision), 64
    dcgan_init(g), dcgan_init(d)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images, labels = torch.rand(2048, 1, 32, 32) * 2 - 1, torch.randint(10, (2048,))
    index, bce = sampler(torch.arange(2048), batch), nn.BCEWithLogitsLoss()
    ones, zeros = torch.ones(batch), torch.zeros(batch)

    def step() -> None:
        i = index()
        real, y = images[i], labels[i]
        with amp():
            fake = g(torch.randn(batch, 100), y).detach()
            loss_d = bce(d(real, y), ones) + bce(d(fake, y), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        with amp(), no_weight_grads(d):
            loss_g = bce(d(g(torch.randn(batch, 100), y), y), ones)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    return Reference(step, {"generator": g, "discriminator": d}, batch)


def cgan_mlp_mnist32(precision: str = "fp32") -> Reference:
    return cgan(MLPGenerator(), MLPDiscriminator(), precision)


def cgan_conv_mnist32(precision: str = "fp32") -> Reference:
    return cgan(ConvGenerator(), ConvDiscriminator(), precision)


# ----------------------------------------------------------------------------- translation


class ResnetBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            *(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True)),
            nn.ReLU(True),
            *(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch, affine=True)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


def resnet_generator(ngf: int = 64, blocks: int = 9) -> nn.Sequential:
    """CycleGAN's c7s1-64, d128, d256, R256 × 9, u128, u64, c7s1-3 (affine instance norm)."""

    def norm(ch: int) -> nn.Module:
        return nn.InstanceNorm2d(ch, affine=True)

    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3),
        nn.Conv2d(3, ngf, 7),
        norm(ngf),
        nn.ReLU(True),
    ]
    for ch in (ngf, 2 * ngf):
        layers += [nn.Conv2d(ch, 2 * ch, 3, 2, 1), norm(2 * ch), nn.ReLU(True)]
    layers += [ResnetBlock(4 * ngf) for _ in range(blocks)]
    for ch in (4 * ngf, 2 * ngf):
        layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1), norm(ch // 2)]
        layers += [nn.ReLU(True)]
    return nn.Sequential(*layers, nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh())


def patch_discriminator(ndf: int = 64) -> nn.Sequential:
    """The 70×70 PatchGAN: C64 (no norm), C128, C256 (stride 2), C512 (stride 1), 1-channel conv."""
    layers: list[nn.Module] = [nn.Conv2d(3, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    for i, stride in ((1, 2), (2, 2), (3, 1)):
        n_in, n_out = ndf * 2 ** (i - 1), ndf * 2**i
        layers += [nn.Conv2d(n_in, n_out, 4, stride, 1), nn.InstanceNorm2d(n_out, affine=True)]
        layers += [nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*layers, nn.Conv2d(8 * ndf, 1, 4, 1, 1))


class ImagePool:
    """CycleGAN's history of 50 generated images: once full, each image is swapped 50/50 for an
    older one."""

    def __init__(self, size: int = 50) -> None:
        self.size, self.images = size, []

    def query(self, images: Tensor) -> Tensor:
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(self.size, ()))
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)


def cyclegan_resnet9_128(precision: str = "fp32") -> Reference:
    """CycleGAN (Zhu et al.) at 128 px, batch 1: LSGAN, λ = 10, identity 0.5·λ, pools of 50."""
    amp = amp_for(precision)
    g_ab, g_ba = resnet_generator(), resnet_generator()
    d_a, d_b = patch_discriminator(), patch_discriminator()
    for net in (g_ab, g_ba, d_a, d_b):
        dcgan_init(net)
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], **adam)
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], **adam)
    data_a, data_b = (sampler(torch.rand(16, 3, 128, 128) * 2 - 1, 1) for _ in "ab")
    pool_a, pool_b, l1 = ImagePool(), ImagePool(), nn.L1Loss()

    def step() -> None:
        real_a, real_b = data_a(), data_b()
        with amp(), no_weight_grads(d_a, d_b):
            idt = 0.5 * 10 * (l1(g_ab(real_b), real_b) + l1(g_ba(real_a), real_a))
            fake_b, fake_a = g_ab(real_a), g_ba(real_b)
            adv = ((d_b(fake_b) - 1) ** 2).mean() + ((d_a(fake_a) - 1) ** 2).mean()
            cycle = 10 * (l1(g_ba(fake_b), real_a) + l1(g_ab(fake_a), real_b))
            loss_g = adv + cycle + idt
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        with amp():
            loss_d = 0.0
            for d, real, fake in (
                (d_a, real_a, pool_a.query(fake_a)),
                (d_b, real_b, pool_b.query(fake_b)),
            ):
                loss_d = loss_d + 0.5 * ((d(real) - 1) ** 2).mean() + 0.5 * (d(fake) ** 2).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()

    return Reference(step, {"g_ab": g_ab, "g_ba": g_ba, "d_a": d_a, "d_b": d_b}, 1)


def encoder_decoder(ngf: int = 64) -> nn.Sequential:
    """DiscoGAN's generator at 64 px: conv 4×4 stride 2 to 64, 128, 256, 512 channels (batch norm
    from the second, LeakyReLU 0.2), transposed convs back to 256, 128, 64 (batch norm, ReLU), 3."""
    chans = [3, ngf, 2 * ngf, 4 * ngf, 8 * ngf]
    layers: list[nn.Module] = []
    for i in range(4):
        layers.append(nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1))
        layers += [nn.BatchNorm2d(chans[i + 1])] if i > 0 else []
        layers.append(nn.LeakyReLU(0.2, True))
    for i in reversed(range(4)):
        layers.append(nn.ConvTranspose2d(chans[i + 1], chans[i], 4, 2, 1))
        layers += [nn.Tanh()] if i == 0 else [nn.BatchNorm2d(chans[i]), nn.ReLU(True)]
    return nn.Sequential(*layers)


def disco_discriminator(ndf: int = 64) -> nn.Sequential:
    """Conv 4×4 stride 2 to 64, 128, 256, 512 channels (batch norm from the second, LeakyReLU
    0.2), then a linear score of the 512×4×4 features."""
    chans = [3, ndf, 2 * ndf, 4 * ndf, 8 * ndf]
    layers: list[nn.Module] = []
    for i in range(4):
        layers.append(nn.Conv2d(chans[i], chans[i + 1], 4, 2, 1))
        layers += [nn.BatchNorm2d(chans[i + 1])] if i > 0 else []
        layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(8 * ndf * 16, 1))


def discogan_64(precision: str = "fp32") -> Reference:
    """DiscoGAN (Kim et al.) at 64 px, batch 8: D's BCE step on detached translations, then G's
    step: non-saturating terms of both directions + L2 reconstructions of a and b."""
    amp, batch = amp_for(precision), 8
    g_ab, g_ba = encoder_decoder(), encoder_decoder()
    d_a, d_b = disco_discriminator(), disco_discriminator()
    for net in (g_ab, g_ba, d_a, d_b):
        dcgan_init(net)
    adam = dict(lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], **adam)
    opt_d = torch.optim.Adam([*d_b.parameters(), *d_a.parameters()], **adam)
    data_a, data_b = (sampler(torch.rand(64, 3, 64, 64) * 2 - 1, batch) for _ in "ab")
    bce, mse = nn.BCEWithLogitsLoss(), nn.MSELoss()
    ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)

    def step() -> None:
        real_a, real_b = data_a(), data_b()
        with amp():
            fake_b, fake_a = g_ab(real_a), g_ba(real_b)
            loss_d = bce(d_b(real_b), ones) + bce(d_b(fake_b.detach()), zeros)
            loss_d = loss_d + bce(d_a(real_a), ones) + bce(d_a(fake_a.detach()), zeros)
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        with amp(), no_weight_grads(d_a, d_b):
            loss_g = bce(d_b(fake_b), ones) + mse(g_ba(fake_b), real_a)
            loss_g = loss_g + bce(d_a(fake_a), ones) + mse(g_ab(fake_a), real_b)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()

    return Reference(step, {"g_ab": g_ab, "g_ba": g_ba, "d_a": d_a, "d_b": d_b}, batch)


# preset name (benchmarks/run.py PRESETS) → its plain-PyTorch reference
REFERENCES: dict[str, Callable[[str], Reference]] = {
    "gan-8gaussians": gan_8gaussians,
    "wgan-8gaussians": wgan_8gaussians,
    "wgan-gp-8gaussians": wgan_gp_8gaussians,
    "cgan-mlp-mnist32": cgan_mlp_mnist32,
    "cgan-conv-mnist32": cgan_conv_mnist32,
    "cyclegan-resnet9-128": cyclegan_resnet9_128,
    "discogan-64": discogan_64,
}
