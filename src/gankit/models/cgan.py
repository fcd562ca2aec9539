"""Conditional GANs: the generator and the discriminator both see the label y.

min_G max_D  E_{x,y}[log D(x|y)] + E_{z,y}[log(1 − D(G(z|y)|y))]  (Mirza & Osindero, 1411.1784)

Architectures: ``mlp`` (one-hot y concatenated to z and to the flattened image, as in the paper) and
``conv`` (DCGAN-style, y as a learned embedding). The discriminator conditions either by
concatenation (``concat``) or by projection, D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩ (Miyato & Koyama,
arXiv:1802.05637). Losses: non-saturating (``ns``), ``hinge`` or Wasserstein with gradient penalty
(``wgan-gp``).
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit import losses
from gankit.config import option
from gankit.data import DataSpec
from gankit.errors import GankitError
from gankit.models.base import Batch, GANModel, Logs, frozen, player_optimizers
from gankit.nn import MLP, ConvCritic, ConvGenerator, init_weights
from gankit.optim import Adam


@dataclass
class CGANConfig:
    arch: Literal["mlp", "conv"] = option("mlp", "mlp (Mirza & Osindero) or conv (DCGAN-style)")
    cond: Literal["concat", "projection"] = option("concat", "how D sees y")
    loss: Literal["ns", "hinge", "wgan-gp"] = option("ns", "adversarial loss")
    z_dim: int = option(100, "latent dimension", min=1)
    hidden: int = option(512, "MLP width", min=1)
    depth: int = option(3, "MLP hidden layers", min=1)
    base: int = option(64, "conv channels of the first critic layer", min=1)
    lr: float = option(2e-4, "Adam learning rate", min=0.0)
    betas: tuple[float, ...] = option((0.5, 0.999), "Adam betas")
    gp_lambda: float = option(10.0, "gradient-penalty weight (loss=wgan-gp)", min=0.0)
    n_critic: int = option(1, "discriminator updates per generator update", min=1)

    @classmethod
    def tiny(cls) -> "CGANConfig":
        return cls(z_dim=8, hidden=32, depth=1, base=8)


class MLPGenerator(nn.Module):
    """[z ; onehot(y)] → MLP → tanh → image (B, C, H, W) in [-1, 1]."""

    def __init__(
        self, z_dim: int, num_classes: int, shape: tuple[int, ...], hidden: int, depth: int
    ):
        super().__init__()
        self.shape, self.num_classes = shape, num_classes
        self.net = MLP(
            z_dim + num_classes,
            math.prod(shape),
            hidden=hidden,
            depth=depth,
            leaky=0.2,
            out_act=nn.Tanh(),
        )

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        onehot = F.one_hot(y, self.num_classes).to(z.dtype)
        return self.net(torch.cat([z, onehot], 1)).view(-1, *self.shape)


class ConvCondGenerator(nn.Module):
    """[z ; embed(y)] → DCGAN generator."""

    def __init__(self, z_dim: int, num_classes: int, shape: tuple[int, ...], base: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, z_dim)
        self.net = ConvGenerator(2 * z_dim, shape, base=base)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.embed(y)], 1))


class CondDiscriminator(nn.Module):
    """Features φ(x) from an MLP or conv trunk; y enters by concatenation or by projection.

    Concatenation puts y at the input: a one-hot vector beside the flattened image (MLP, as in
    Mirza & Osindero) or K constant one-hot maps beside the image channels (conv); joined only at
    the last layer, y barely conditioned a conv critic (10% conditional accuracy after 4,000
    MNIST steps, i.e. chance).
    """

    def __init__(self, cfg: CGANConfig, spec: DataSpec) -> None:
        super().__init__()
        k = spec.num_classes
        self.num_classes, self.flatten = k, cfg.arch == "mlp"
        self.concat = cfg.cond == "concat"
        extra = k if self.concat else 0
        if self.flatten:
            width = cfg.hidden
            mlp = MLP(
                math.prod(spec.shape) + extra, width, hidden=width, depth=cfg.depth - 1, leaky=0.2
            )
            self.features = nn.Sequential(mlp, nn.LeakyReLU(0.2))
        else:
            norm = "none" if cfg.loss == "wgan-gp" else "layer"
            c, h, w = spec.shape
            critic = ConvCritic((c + extra, h, w), base=cfg.base, norm=norm)
            self.features, width = critic.features, critic.head.in_features
        self.head = nn.Linear(width, 1)
        self.embed = nn.Embedding(k, width) if cfg.cond == "projection" else None

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x: (B, C, H, W) in [-1, 1], y: (B,) class indices → raw scores (B,)."""
        h = x.flatten(1) if self.flatten else x
        if self.concat:
            onehot = F.one_hot(y, self.num_classes).to(x.dtype)
            if not self.flatten:
                onehot = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])
            h = torch.cat([h, onehot], 1)
        h = self.features(h)
        out = self.head(h).squeeze(1)
        if self.embed is not None:  # projection: ⟨embed(y), φ(x)⟩
            out = out + (self.embed(y) * h).sum(1)
        return out


D_LOSS = {
    "ns": losses.d_loss_bce,
    "hinge": losses.d_loss_hinge,
    "wgan-gp": losses.d_loss_wasserstein,
}
G_LOSS = {
    "ns": losses.g_loss_nonsaturating,
    "hinge": losses.g_loss_hinge,
    "wgan-gp": losses.g_loss_wasserstein,
}


class CGAN(GANModel):
    """Conditional generator G(z|y) and discriminator D(x|y) on labelled images."""

    Config = CGANConfig
    train_defaults = {
        "steps": 15000,
        "batch_size": 64,
        "ema": True,
        "eval_samples": 5000,
        "sample_every": 1000,
        "eval_every": 2000,
    }
    kinds = ("images",)
    conditional = True

    def __init__(self, cfg: CGANConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        if spec.num_classes < 2:
            raise GankitError(f"cgan needs labelled data with >= 2 classes; {spec.name} has none")
        if cfg.arch == "mlp":
            self.generator = MLPGenerator(
                cfg.z_dim, spec.num_classes, spec.shape, cfg.hidden * 2, cfg.depth
            )
        else:
            self.generator = ConvCondGenerator(cfg.z_dim, spec.num_classes, spec.shape, cfg.base)
        self.discriminator = CondDiscriminator(cfg, spec)
        init_weights(self)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return player_optimizers(
            Adam,
            self.generator,
            self.discriminator,
            impl=self.impl,
            lr=self.cfg.lr,
            betas=self.cfg.betas,
        )

    def double_backward(self) -> list[str]:
        return ["discriminator"] if self.cfg.loss == "wgan-gp" else []

    def cpu_impl(self) -> str:
        # measured on the presets (docs/benchmarks.md, "impl"): the conv model trains faster on
        # torch's kernels; the MLP model ties, and gankit's Adam then spares the dynamo import
        return "torch" if self.cfg.arch == "conv" else "gankit"

    def d_loss(self, real: Tensor, fake: Tensor, y: Tensor) -> tuple[Tensor, Logs]:
        # one pass over [real; fake]: a GEMM twice as tall runs closer to the CPU's peak, and
        # D normalises per sample (no BatchNorm), so the scores are those of two passes
        scores = self.discriminator(torch.cat([real, fake]), torch.cat([y, y]))
        loss = D_LOSS[self.cfg.loss](*scores.chunk(2))
        logs = {"loss/d": loss.detach()}
        if self.cfg.loss == "wgan-gp":
            gp = losses.gradient_penalty(self.discriminator, real, fake, y)
            loss = loss + self.cfg.gp_lambda * gp
            logs["loss/gp"] = gp.detach()
        return loss, logs

    def train_step(self, batches: Iterator[Batch], step: int) -> Logs:
        # grads are freed right after each step, not just before the next backward, so G's and
        # D's never coexist; G's loss sees D frozen (no D weight grads, see ``frozen``)
        for _ in range(self.cfg.n_critic):
            real, y = next(batches)
            fake = self.generator(self.noise(len(real), self.cfg.z_dim), y).detach()
            loss_d, logs = self.d_loss(real, fake, y)
            loss_d.backward()
            self.optimizers["d"].step()
            self.optimizers["d"].zero_grad(set_to_none=True)
        fake = self.generator(self.noise(len(real), self.cfg.z_dim), y)
        with frozen(self.discriminator):
            loss_g = G_LOSS[self.cfg.loss](self.discriminator(fake, y))
        loss_g.backward()
        self.optimizers["g"].step()
        self.optimizers["g"].zero_grad(set_to_none=True)
        return {**logs, "loss/g": loss_g.detach()}

    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def labels_for(self, n: int, label: int | Tensor | None) -> Tensor:
        """y for ``n`` samples: all ``label``, ``label`` itself when it holds one class per
        sample, or classes in blocks of n / K (one row each)."""
        k = self.spec.num_classes
        if label is None:
            return torch.arange(n) * k // n
        if isinstance(label, Tensor):
            if label.shape != (n,) or bool(((label < 0) | (label >= k)).any()):
                raise GankitError(f"labels must be {n} class indices in 0..{k - 1}")
            return label.long()
        if not 0 <= label < k:
            raise GankitError(f"label {label} is out of range: this model has classes 0..{k - 1}")
        return torch.full((n,), label)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        generator: torch.Generator,
        label: int | None = None,
        interpolate: bool = False,
    ) -> Tensor:
        """``n`` images of class ``label`` (None: classes in equal blocks, one grid row each).

        With ``interpolate`` each block walks linearly between two latent points, so a row shows
        one class changing smoothly in style.
        """
        y = self.labels_for(n, label)
        if not interpolate:
            return self.generator(self.noise(n, self.cfg.z_dim, generator), y.to(self.device))
        blocks = y.unique_consecutive(return_counts=True)[1].tolist()
        ends = self.noise(2 * len(blocks), self.cfg.z_dim, generator)
        z = torch.cat(
            [
                torch.lerp(
                    ends[2 * i],
                    ends[2 * i + 1],
                    torch.linspace(0, 1, m, device=self.device)[:, None],
                )
                for i, m in enumerate(blocks)
            ]
        )
        return self.generator(z, y.to(self.device))
