"""The original GAN (Goodfellow et al., arXiv:1406.2661) with the non-saturating generator loss.

min_G max_D  E_x[log D(x)] + E_z[log(1 − D(G(z)))]; the generator instead maximises
E_z[log D(G(z))], which has the same fixed point but does not vanish when D rejects G's samples.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from gankit import losses
from gankit.config import option
from gankit.data import DataSpec
from gankit.models.base import Batch, GANModel, Logs, critic_diagnostics, player_optimizers
from gankit.nn import build_critic, build_generator, init_weights
from gankit.optim import Adam


@dataclass
class GANConfig:
    z_dim: int = option(2, "latent dimension", min=1)
    hidden: int = option(128, "MLP width (points)", min=1)
    depth: int = option(3, "MLP hidden layers (points)", min=1)
    base: int = option(64, "conv channels of the first critic layer (images)", min=1)
    lr: float = option(2e-4, "Adam learning rate", min=0.0)
    betas: tuple[float, ...] = option((0.5, 0.999), "Adam betas, e.g. 0.5,0.999")
    d_steps: int = option(1, "discriminator updates per generator update", min=1)

    @classmethod
    def tiny(cls) -> "GANConfig":
        return cls(hidden=32, depth=2, base=8)


class GAN(GANModel):
    """Generator G: z → x and discriminator D: x → logit, trained with BCE losses."""

    Config = GANConfig
    train_defaults = {"steps": 10000, "batch_size": 256, "eval_every": 1000, "ckpt_every": 1000}
    # images: DCGAN's latent size (Radford et al., arXiv:1511.06434), as cgan uses. The 2-D
    # default suits the 2-D toy sets; on images it would put every sample on a 2-D surface.
    kind_defaults = {"images": {"z_dim": 100}}

    def __init__(self, cfg: GANConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        arch = {"hidden": cfg.hidden, "depth": cfg.depth, "base": cfg.base}
        self.generator = build_generator(cfg.z_dim, spec.shape, **arch)
        self.discriminator = build_critic(spec.shape, norm="none", **arch)
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

    def train_step(self, batches: Iterator[Batch], step: int) -> Logs:
        for _ in range(self.cfg.d_steps):
            real = self.real(next(batches))
            fake = self.generator(self.noise(len(real), self.cfg.z_dim)).detach()
            loss_d = losses.d_loss_bce(self.discriminator(real), self.discriminator(fake))
            self.optimizers["d"].zero_grad(set_to_none=True)
            loss_d.backward()
            self.optimizers["d"].step()
        fake = self.generator(self.noise(len(real), self.cfg.z_dim))
        loss_g = losses.g_loss_nonsaturating(self.discriminator(fake))
        self.optimizers["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizers["g"].step()
        return {"loss/d": loss_d.detach(), "loss/g": loss_g.detach()}

    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator, **kwargs: object) -> Tensor:
        return self.generator(self.noise(n, self.cfg.z_dim, generator))

    def diagnostics(self, real: Tensor, fake: Tensor, generator: torch.Generator) -> dict:
        return critic_diagnostics(self.discriminator, real, fake, generator)
