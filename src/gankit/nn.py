"""Shared network blocks: MLPs for 2-D toy data, DCGAN-style conv nets for images, weight init.

Every generator maps z (B, z_dim) [+ an optional condition vector] to data; every critic maps data
to raw scores (B,) with no sigmoid, so one loss module serves GAN, WGAN and WGAN-GP.
"""

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from gankit.conv import Conv2d
from gankit.errors import GankitError

Norm = Literal["none", "batch", "layer", "instance", "spectral"]


def _linear(n_in: int, n_out: int, sn: bool) -> nn.Module:
    layer = nn.Linear(n_in, n_out)
    return spectral_norm(layer) if sn else layer


class MLP(nn.Sequential):
    """Fully connected net: ``depth`` hidden layers of width ``hidden`` with ReLU (or LeakyReLU)."""

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        hidden: int = 512,
        depth: int = 3,
        norm: Norm = "none",
        leaky: float = 0.0,
        out_act: nn.Module | None = None,
    ) -> None:
        sn = norm == "spectral"
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(depth):
            layers.append(_linear(width, hidden, sn))
            if norm == "batch":
                layers.append(nn.BatchNorm1d(hidden))
            elif norm == "layer":
                layers.append(nn.LayerNorm(hidden))
            layers.append(nn.LeakyReLU(leaky) if leaky > 0 else nn.ReLU())
            width = hidden
        layers.append(_linear(width, n_out, sn))
        if out_act is not None:
            layers.append(out_act)
        super().__init__(*layers)


def n_halvings(size: int, min_size: int = 4) -> int:
    """How often a side halves exactly while staying >= ``min_size`` (28 → 2, 32 → 3)."""
    n = 0
    while size % 2 == 0 and size // 2 >= min_size and n < 4:
        size //= 2
        n += 1
    return n


class InstanceNorm2d(nn.InstanceNorm2d):
    """Affine instance norm (the parameters and state dict of ``nn.InstanceNorm2d(c, affine=True)``)
    computed as batch norm of each sample alone: the same statistics (per channel over H × W,
    biased variance), but channels-last maps stay channels-last.

    torch's CPU instance norm copies a channels-last input to NCHW and back (forward + backward at
    256×32×32 on one core: 1.6 ms vs 0.6 ms this way) and in torch 2.13 returns wrong input
    gradients when the incoming gradient is channels-last and B = 1.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__(channels, eps=eps, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[2] * x.shape[3] == 1:  # unbatched, or 1×1 maps (as torch)
            return super().forward(x)
        w, b, eps = self.weight, self.bias, self.eps
        parts = [F.batch_norm(xi, None, None, w, b, True, 0.0, eps) for xi in x.split(1)]
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def norm2d(norm: Norm, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return InstanceNorm2d(channels)
    if norm == "layer":
        # GroupNorm with one group normalises over (C, H, W) per sample: layer norm for conv maps.
        return nn.GroupNorm(1, channels)
    return nn.Identity()


class ConvGenerator(nn.Module):
    """DCGAN-style generator: z (B, z_dim) → linear → (C0, s, s) → [upsample ×2, conv]* → tanh.

    Output (B, C, H, W) in [-1, 1]; H = W = s·2^k with s the smallest side reachable by halving.
    """

    def __init__(
        self, z_dim: int, out_shape: Sequence[int], *, base: int = 64, norm: Norm = "batch"
    ) -> None:
        super().__init__()
        c, h, w = out_shape
        if h != w:
            raise GankitError(f"conv networks need square images, got {h}x{w}: resize the data")
        if h < 2 or h % 2:  # the upsampling stack doubles its side at least once
            raise GankitError(
                f"conv networks need an even image side >= 2, got {h}x{w}: set image_size, "
                "e.g. image_size=32"
            )
        k = max(n_halvings(h), 1)
        self.s0, self.c0 = h // 2**k, base * 2 ** (k - 1)
        self.fc = nn.Sequential(nn.Linear(z_dim, self.c0 * self.s0**2), nn.ReLU())
        blocks: list[nn.Module] = []
        ch = self.c0
        for i in range(k):
            out = c if i == k - 1 else ch // 2
            blocks.append(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1))
            if i < k - 1:
                blocks += [norm2d(norm, out), nn.ReLU()]
            ch = out
        blocks.append(nn.Tanh())
        self.net = nn.Sequential(*blocks)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(self.fc(z).view(-1, self.c0, self.s0, self.s0))


class ConvCritic(nn.Module):
    """DCGAN-style critic: [conv 4×4 stride 2, norm, LeakyReLU(0.2)]* → linear → raw score (B,)."""

    def __init__(self, in_shape: Sequence[int], *, base: int = 64, norm: Norm = "layer") -> None:
        super().__init__()
        c, h, _ = in_shape
        k = max(n_halvings(h), 1)
        sn = norm == "spectral"
        layers: list[nn.Module] = []
        ch, side = c, h
        for i in range(k):
            out = base * 2**i
            conv = Conv2d(ch, out, 4, stride=2, padding=1)
            side //= 2
            layers.append(spectral_norm(conv) if sn else conv)
            if i > 0:
                layers.append(norm2d(norm, out))
            layers.append(nn.LeakyReLU(0.2))
            ch = out
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = _linear(ch * side * side, 1, sn)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x)).squeeze(1)

    def as_sequential(self) -> nn.Sequential:
        """The same function as one Sequential, for layer-wise Lipschitz bounds."""
        return nn.Sequential(self.features, self.head)


class PointCritic(nn.Module):
    """MLP critic for points (B, D) → (B,) raw scores."""

    def __init__(self, dim: int, *, hidden: int, depth: int, norm: Norm = "none") -> None:
        super().__init__()
        self.net = MLP(dim, 1, hidden=hidden, depth=depth, norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)

    def as_sequential(self) -> nn.Sequential:
        """The same function as one Sequential, for layer-wise Lipschitz bounds."""
        return self.net


def build_generator(
    z_dim: int, data_shape: Sequence[int], *, hidden: int, depth: int, base: int
) -> nn.Module:
    """MLP for points (D,), DCGAN generator for images (C, H, W)."""
    if len(data_shape) == 1:
        return MLP(z_dim, data_shape[0], hidden=hidden, depth=depth)
    return ConvGenerator(z_dim, data_shape, base=base)


def build_critic(
    data_shape: Sequence[int], *, hidden: int, depth: int, base: int, norm: Norm = "none"
) -> nn.Module:
    """MLP critic for points, conv critic for images; raw scores (B,)."""
    if len(data_shape) == 1:
        return PointCritic(data_shape[0], hidden=hidden, depth=depth, norm=norm)
    return ConvCritic(data_shape, base=base, norm=norm)


def refuse_batchnorm(critic: nn.Module, why: str) -> None:
    """Fail when ``critic`` holds a BatchNorm layer (it couples samples, see ``why``)."""
    for name, module in critic.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            raise GankitError(f"critic layer '{name}' is BatchNorm, which {why}: use norm=layer")


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN initialisation N(0, 0.02) for conv layers; PyTorch defaults elsewhere."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
