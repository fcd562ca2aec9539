"""Wasserstein GAN with weight clipping (Arjovsky, Chintala & Bottou, arXiv:1701.07875).

The critic f maximises E_x[f(x)] − E_z[f(G(z))] over weights clipped to [−c, c] (a crude way of
keeping f K-Lipschitz for some K), so by Kantorovich–Rubinstein duality the maximum is
K·W1(P_r, P_g).
The generator minimises −E_z[f(G(z))]. RMSProp, lr 5e-5, c = 0.01, n_critic = 5, and — as in the
paper's code — 100 critic iterations for the first 25 generator steps and every 500th one.

Logged: ``loss/d`` = E[f(fake)] − E[f(real)] (minimised by the critic), so ``em_estimate`` =
−loss/d is the critic's (scaled) Earth-Mover estimate: positive, and it falls as G improves.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from gankit import losses
from gankit.config import option
from gankit.data import DataSpec
from gankit.models.base import Batch, GANModel, Logs, critic_diagnostics, player_optimizers
from gankit.nn import build_critic, build_generator, init_weights


@dataclass
class WGANConfig:
    z_dim: int = option(2, "latent dimension", min=1)
    hidden: int = option(128, "MLP width (points)", min=1)
    depth: int = option(3, "MLP hidden layers (points)", min=1)
    base: int = option(64, "conv channels of the first critic layer (images)", min=1)
    critic_norm: Literal["none", "layer", "batch"] = option("none", "normalisation in the critic")
    lr: float = option(5e-5, "RMSProp learning rate", min=0.0)
    clip: float = option(0.01, "critic weights are clipped to [-clip, clip]", min=0.0)
    n_critic: int = option(5, "critic updates per generator update", min=1)
    critic_boost: bool = option(True, "100 critic updates for the first 25 and every 500th step")

    @classmethod
    def tiny(cls) -> "WGANConfig":
        return cls(hidden=32, depth=2, base=8, critic_boost=False)


class WGAN(GANModel):
    """Generator G and critic f (raw score, no sigmoid); critic weights clipped after each step."""

    Config = WGANConfig
    train_defaults = {"steps": 10000, "batch_size": 256, "eval_every": 1000, "ckpt_every": 1000}
    # images: DCGAN's latent size (Radford et al., arXiv:1511.06434), as cgan uses. The 2-D
    # default suits the 2-D toy sets; on images it would put every sample on a 2-D surface.
    kind_defaults = {"images": {"z_dim": 100}}

    def __init__(self, cfg: WGANConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        arch = {"hidden": cfg.hidden, "depth": cfg.depth, "base": cfg.base}
        self.generator = build_generator(cfg.z_dim, spec.shape, **arch)
        self.critic = build_critic(spec.shape, norm=self.critic_norm(), **arch)
        init_weights(self)

    def critic_norm(self) -> str:
        return self.cfg.critic_norm

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return player_optimizers(torch.optim.RMSprop, self.generator, self.critic, lr=self.cfg.lr)

    def critic_iterations(self, step: int) -> int:
        if getattr(self.cfg, "critic_boost", False) and (step < 25 or step % 500 == 0):
            return 100
        return self.cfg.n_critic

    def critic_loss(self, real: Tensor, fake: Tensor) -> tuple[Tensor, Logs]:
        """E[f(fake)] − E[f(real)]; subclasses add their Lipschitz penalty here."""
        loss = losses.d_loss_wasserstein(self.critic(real), self.critic(fake))
        return loss, {"loss/d": loss.detach()}

    @torch.no_grad()
    def after_critic_step(self) -> None:
        for p in self.critic.parameters():
            p.clamp_(-self.cfg.clip, self.cfg.clip)

    def train_step(self, batches: Iterator[Batch], step: int) -> Logs:
        for _ in range(self.critic_iterations(step)):
            real = self.real(next(batches))
            fake = self.generator(self.noise(len(real), self.cfg.z_dim)).detach()
            loss_d, logs = self.critic_loss(real, fake)
            self.optimizers["d"].zero_grad(set_to_none=True)
            loss_d.backward()
            self.optimizers["d"].step()
            self.after_critic_step()
        fake = self.generator(self.noise(len(real), self.cfg.z_dim))
        loss_g = losses.g_loss_wasserstein(self.critic(fake))
        self.optimizers["g"].zero_grad(set_to_none=True)
        loss_g.backward()
        self.optimizers["g"].step()
        return {**logs, "loss/g": loss_g.detach(), "em_estimate": -logs["loss/d"]}

    def generators(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator, **kwargs: object) -> Tensor:
        return self.generator(self.noise(n, self.cfg.z_dim, generator))

    def diagnostics(self, real: Tensor, fake: Tensor, generator: torch.Generator) -> dict:
        return critic_diagnostics(
            self.critic, real, fake, generator, getattr(self.cfg, "clip", None)
        )
