"""Blocks for unpaired image-to-image translation (CycleGAN, DiscoGAN) and the image history pool.

Generators map (B, C_in, H, W) in [-1, 1] to (B, C_out, H, W) in [-1, 1] at the input's size: an
input whose sides are not multiples of the net's total stride is reflection-padded on the right
and bottom and the output cropped back (PITFALL 7), so 28, 30 or 33 pixels work like 32.
Discriminators return raw scores (no sigmoid): a map (B, 1, h, w) for the PatchGAN.

Also the helpers both translation families share: translation in eval mode, the (input,
translation, reconstruction) preview grid and the domain-shape check.
"""

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.conv import Conv2d, ConvTranspose2d
from gankit.distributed import gather_rows, local_rows, shard
from gankit.errors import GankitError
from gankit.nn import Norm, norm2d

# the loop settings both translation families start from: pictures every 500 steps, scores and
# checkpoints every 1000; no EMA by default (the papers' generators are used as trained)
TRANSLATION_SCHEDULE = {"ema": False, "sample_every": 500, "eval_every": 1000, "ckpt_every": 1000}


def channels_last(x: Tensor) -> Tensor:
    """Images (B, C, H, W) stored channels-last (NHWC), other tensors unchanged.

    The translation nets keep their weights and activations channels-last: oneDNN's convolutions,
    their backward above all, run faster on it (forward + backward on one core: a ResNet block's
    3×3 conv, 256 channels at 32×32, 39 vs 46 ms; the 7×7 conv to RGB at 128 px, 45 vs 82 ms).
    """
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Reflection-pad the right and bottom of ``x`` (B, C, H, W) to sides divisible by ``multiple``
    (replicate-pad when the image is too small to reflect)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == pw == 0:
        return x
    if ph >= h or pw >= w:  # reflection needs a pad smaller than the side
        return F.pad(x, (0, pw, 0, ph), mode="replicate")
    return F.pad(x, (0, pw, 0, ph), mode="reflect")


def run_padded(net: nn.Module, x: Tensor, multiple: int) -> Tensor:
    """``net`` on ``x`` padded to sides divisible by ``multiple``, cropped back to x's size."""
    h, w = x.shape[-2:]
    return net(pad_to_multiple(x, multiple))[..., :h, :w]


class ResnetBlock(nn.Module):
    """x + [reflect-pad 1, conv 3×3, norm, ReLU, reflect-pad 1, conv 3×3, norm](x), same shape."""

    def __init__(self, channels: int, norm: Norm = "instance") -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            Conv2d(channels, channels, 3),
            norm2d(norm, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            Conv2d(channels, channels, 3),
            norm2d(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """Johnson et al.'s transformation net as CycleGAN uses it (arXiv:1703.10593, appendix 7.2).

    c7s1-ngf, d(2·ngf), d(4·ngf), R(4·ngf) × ``blocks``, u(2·ngf), u(ngf), c7s1-C_out, tanh
    (``n_down`` = 2; each d halves H and W with a stride-2 conv 3×3, each u doubles them with a
    fractionally strided conv 3×3). C_in and C_out may differ (a 1-channel domain to RGB).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        ngf: int = 64,
        blocks: int = 9,
        n_down: int = 2,
        norm: Norm = "instance",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            Conv2d(in_channels, ngf, 7),
            norm2d(norm, ngf),
            nn.ReLU(inplace=True),
        ]
        ch = ngf
        for _ in range(n_down):
            layers += [Conv2d(ch, 2 * ch, 3, stride=2, padding=1), norm2d(norm, 2 * ch)]
            layers.append(nn.ReLU(inplace=True))
            ch *= 2
        layers += [ResnetBlock(ch, norm) for _ in range(blocks)]
        for _ in range(n_down):
            up = ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1)
            layers += [up, norm2d(norm, ch // 2), nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.multiple = 2**n_down
        self.bottleneck_end = len(layers) - 3 * n_down - 3  # index after the last block
        self.bottleneck_channels = ch * 2**n_down

    def forward(self, x: Tensor) -> Tensor:
        return run_padded(self.net, x, self.multiple)

    def forward_with_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The output and the features after the residual blocks, (B, ngf·2^n_down, H/2^n_down,
        W/2^n_down) of the padded input."""
        h, w = x.shape[-2:]
        features = self.net[: self.bottleneck_end](pad_to_multiple(x, self.multiple))
        return self.net[self.bottleneck_end :](features)[..., :h, :w], features


class UnetGenerator(nn.Module):
    """U-Net of pix2pix (Isola et al., arXiv:1611.07004): encoder C64-C128-C256-C512-..., decoder
    mirrored, each decoder layer concatenated with the encoder layer of the same size.

    Encoder layer i: [LeakyReLU(0.2)], conv 4×4 stride 2, norm (none on the first and innermost);
    decoder layer: ReLU, transposed conv 4×4 stride 2, norm (tanh on the outermost). ``n_down``
    halvings: 8 takes 256 px to a 1×1 bottleneck.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        ngf: int = 64,
        n_down: int = 8,
        norm: Norm = "instance",
    ) -> None:
        super().__init__()
        chans = [ngf * min(2**i, 8) for i in range(n_down)]
        self.downs = nn.ModuleList()
        prev = in_channels
        for i, ch in enumerate(chans):
            layers: list[nn.Module] = [nn.LeakyReLU(0.2)] if i > 0 else []
            layers.append(Conv2d(prev, ch, 4, stride=2, padding=1))
            if 0 < i < n_down - 1:
                layers.append(norm2d(norm, ch))
            self.downs.append(nn.Sequential(*layers))
            prev = ch
        self.ups = nn.ModuleList()
        for i in reversed(range(n_down)):
            n_in = chans[i] * (1 if i == n_down - 1 else 2)  # the skip doubles all but the first
            n_out = out_channels if i == 0 else chans[i - 1]
            last = nn.Tanh() if i == 0 else norm2d(norm, n_out)
            up = ConvTranspose2d(n_in, n_out, 4, stride=2, padding=1)
            self.ups.append(nn.Sequential(nn.ReLU(), up, last))
        self.multiple = 2**n_down

    def _forward(self, x: Tensor) -> Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        h = skips.pop()
        for up in self.ups[:-1]:
            h = torch.cat([up(h), skips.pop()], 1)
        return self.ups[-1](h)

    def forward(self, x: Tensor) -> Tensor:
        return run_padded(self._forward, x, self.multiple)


def patch_receptive_field(n_layers: int) -> int:
    """Input pixels one PatchGAN output sees: 16, 34, 70, 142 for n_layers = 1, 2, 3, 4."""
    strides = [2] * n_layers + [1, 1]
    return 1 + sum(3 * math.prod(strides[:i]) for i in range(len(strides)))


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix/CycleGAN): scores overlapping patches, output (B, 1, h, w) raw scores.

    C(ndf) without norm, then ``n_layers`` − 1 stride-2 layers C(2·ndf), C(4·ndf), ..., one
    stride-1 layer and a stride-1 conv to 1 channel; all 4×4 with LeakyReLU(0.2). ``n_layers`` = 3
    is the 70×70 PatchGAN; its receptive field is ``patch_receptive_field(n_layers)``.
    """

    def __init__(
        self, in_channels: int, *, ndf: int = 64, n_layers: int = 3, norm: Norm = "instance"
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            Conv2d(in_channels, ndf, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        ch = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            conv = Conv2d(ch, out, 4, stride=stride, padding=1)
            layers += [conv, norm2d(norm, out), nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        layers.append(Conv2d(ch, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self.min_side = 3 * 2**n_layers  # smaller inputs leave no patch to score

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) < self.min_side:
            raise GankitError(
                f"PatchGAN with these layers needs images of at least {self.min_side} px, got "
                f"{tuple(x.shape[-2:])}: lower n_layers"
            )
        return self.net(x)


class FeatureDiscriminator(nn.Module):
    """Scores each position of a feature map (B, C, h, w) → (B, 1, h, w): three 3×3 convs,
    LeakyReLU(0.2), no normalisation. A discriminator on a generator's features rather than on
    images (CyCADA's feature-level GAN loss, Hoffman et al. 2018)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            Conv2d(channels, channels, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            Conv2d(channels, 1, 3, padding=1),
        )

    def forward(self, features: Tensor) -> Tensor:
        return self.net(features)


class EncoderDecoderGenerator(nn.Module):
    """DiscoGAN generator (Kim et al., arXiv:1703.05192): an encoder of ``n_down`` conv 4×4 stride 2
    layers with LeakyReLU(0.2) (norm from the second on), then a decoder of as many transposed
    conv 4×4 stride 2 layers with norm and ReLU, ending in tanh. Widths ngf·2^i, capped at 8·ngf.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        ngf: int = 64,
        n_down: int = 4,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        chans = [ngf * min(2**i, 8) for i in range(n_down)]
        prev = in_channels
        for i, ch in enumerate(chans):
            layers.append(Conv2d(prev, ch, 4, stride=2, padding=1))
            if i > 0:
                layers.append(norm2d(norm, ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            prev = ch
        for i in reversed(range(n_down)):
            n_out = out_channels if i == 0 else chans[i - 1]
            layers.append(ConvTranspose2d(prev, n_out, 4, stride=2, padding=1))
            layers += [nn.Tanh()] if i == 0 else [norm2d(norm, n_out), nn.ReLU(inplace=True)]
            prev = n_out
        self.net = nn.Sequential(*layers)
        self.multiple = 2**n_down

    def forward(self, x: Tensor) -> Tensor:
        return run_padded(self.net, x, self.multiple)


class ImagePool:
    """History of generated images (Shrivastava et al., arXiv:1612.07828; CycleGAN section 4).

    The discriminator sees a batch in which each image is, with probability ½ once the pool is
    full, swapped for one generated earlier, so it does not forget the generator's old modes.
    Until ``size`` images are stored every query returns its own images. The coin flips come from
    the global torch RNG (which checkpoints save), and ``state_dict`` holds the stored images, so
    a resumed run queries the pool exactly as an uninterrupted one would (PITFALL 1).
    """

    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        """images (B, ...) → (B, ...): each the new image or, once full, 50/50 a stored one."""
        if self.size == 0:
            return images.detach()
        out = []
        # several processes: one pool of the global batch, the same on every rank (same coin
        # flips from the shared RNG), each rank keeping its rows of the answer
        # stored fp32 (checkpoints hold fp32), also from a bf16 autocast generator
        for image in gather_rows(images.detach().float()):
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(self.size, ()))
                out.append(self.images[i].to(image.device))
                self.images[i] = image.clone()
            else:
                out.append(image)
        return shard(torch.stack(out))

    def state_dict(self) -> dict[str, Any]:
        stored = torch.stack([im.cpu() for im in self.images]) if self.images else torch.empty(0)
        return {"size": self.size, "images": stored}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size = state["size"]
        self.images = list(state["images"].unbind(0)) if state["images"].numel() else []


def colour_jitter(x: Tensor, strength: float) -> Tensor:
    """Random colours for images (B, C, H, W) in [-1, 1], differentiable in ``x``.

    Per image and channel, the deviation from the channel's mean is scaled by exp(u·s) and, with
    probability s/2, inverted, then a shift v·s is added (u, v uniform in [-1, 1], s =
    ``strength`` in [0, 1]); a colour image's channels are then shuffled. Shapes keep their
    outline while brightness, contrast, colour and polarity change. Draws from the global torch
    RNG (which checkpoints save). The result may leave [-1, 1].
    """
    if strength <= 0:
        return x
    n, c = x.shape[:2]

    def uniform(*shape: int) -> Tensor:  # every rank draws the global batch's, keeps its rows
        def draw(m: int) -> Tensor:
            return 2 * torch.rand((m, *shape), device=x.device, dtype=x.dtype) - 1

        return local_rows(draw, n)

    gain = torch.exp(strength * uniform(c, 1, 1))
    inverted = local_rows(lambda m: torch.rand((m, c, 1, 1), device=x.device), n) < strength / 2
    gain = torch.where(inverted, -gain, gain)
    mean = x.mean((2, 3), keepdim=True)
    out = gain * (x - mean) + mean + strength * uniform(c, 1, 1)
    if c > 1:
        order = local_rows(lambda m: torch.rand((m, c), device=x.device), n).argsort(1)
        out = out.gather(1, order[:, :, None, None].expand_as(out))
    return out


def display_channels(images: Tensor, channels: int) -> Tensor:
    """(B, c, H, W) → (B, channels, H, W) for one picture: a grey image repeated to RGB."""
    if images.shape[1] == channels:
        return images
    if images.shape[1] == 1:
        return images.expand(-1, channels, -1, -1)
    raise GankitError(f"cannot show {images.shape[1]}-channel beside {channels}-channel images")


def grid_columns(columns: list[Tensor]) -> Tensor:
    """Interleave columns (each (k, C_j, H, W)) row by row into (k · len(columns), C, H, W).

    C is the largest C_j (grey columns become RGB), so a grid with ``len(columns)`` images per
    row shows row i as columns[0][i], columns[1][i], ...
    """
    channels = max(col.shape[1] for col in columns)
    cols = [display_channels(col.cpu(), channels) for col in columns]
    return torch.stack(cols, 1).flatten(0, 1)


def image_shapes(
    shape_a: Sequence[int], shape_b: Sequence[int], family: str
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Domain A's and B's (C, H, W); they must share H and W (channels may differ)."""
    shape_a, shape_b = tuple(shape_a), tuple(shape_b)
    if len(shape_a) != 3 or len(shape_b) != 3:
        raise GankitError(f"{family} translates images (C, H, W), got {shape_a} and {shape_b}")
    if shape_a[1:] != shape_b[1:]:
        raise GankitError(
            f"{family} needs both domains at one size, got A {shape_a[1:]} and B {shape_b[1:]}: "
            "set image_size"
        )
    return shape_a, shape_b


def translate_with(
    model: nn.Module, g_ab: nn.Module, g_ba: nn.Module, x: Tensor, direction: str
) -> Tensor:
    """``g_ab(x)`` for "AtoB", ``g_ba(x)`` for "BtoA", in eval mode; the mode is restored after."""
    nets = {"AtoB": g_ab, "BtoA": g_ba}
    if direction not in nets:
        raise GankitError(f"direction {direction!r}: use AtoB or BtoA")
    was_training = model.training
    model.eval()
    try:
        return nets[direction](channels_last(x.to(next(model.parameters()).device)))
    finally:
        model.train(was_training)


def require_inputs(
    inputs: tuple[Tensor, ...] | list[Tensor] | None, n: int, family: str
) -> tuple[Tensor, Tensor]:
    """The first ``n`` of each of the (xa, xb) a translation model samples from (fewer when the
    data's test split holds fewer)."""
    if inputs is None or len(inputs) != 2:
        raise GankitError(f"{family} translates examples: pass inputs=(xa, xb)")
    xa, xb = inputs
    return xa[:n], xb[:n]


def cycle_rows(model: Any, xa: Tensor, xb: Tensor) -> Tensor:
    """(6k, C, H, W): rows [a, G(a), F(G(a)), b, F(b), G(F(b))], k = min(len(xa), len(xb))."""
    k = min(len(xa), len(xb))
    xa, xb = xa[:k], xb[:k]
    fake_b, fake_a = model.translate(xa, "AtoB"), model.translate(xb, "BtoA")
    rec_a, rec_b = model.translate(fake_b, "BtoA"), model.translate(fake_a, "AtoB")
    return grid_columns([xa, fake_b, rec_a, xb, fake_a, rec_b])
