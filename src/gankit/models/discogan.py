"""DiscoGAN: discovering cross-domain relations without pairs (Kim et al., arXiv:1703.05192).

Generators G_AB, G_BA and discriminators D_B, D_A; with the non-saturating GAN loss and a
reconstruction distance d (L1, L2 or Huber) the generators minimise

    L_G = L_GAN_B + L_CONST_A + L_GAN_A + L_CONST_B,
    L_GAN_B = −E_a[log D_B(G_AB(a))],   L_CONST_A = E_a[d(G_BA(G_AB(a)), a)]

(and the mirror terms for B), and each discriminator minimises its BCE loss
−E_b[log D_B(b)] − E_a[log(1 − D_B(G_AB(a)))]. The paper's toy study (section 4.1) compares
``variant``s: ``gan`` (L_GAN_B only: A → B, no reconstruction), ``gan-recon`` (L_GAN_B +
L_CONST_A) and ``discogan`` (all four terms), to show how the second GAN term stops many A modes
collapsing onto one B mode.

Images use conv encoder–decoder generators and DCGAN-style discriminators with batch norm, as in
the paper; 2-D points ("unpaired-points") use MLPs.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gankit import losses
from gankit.config import option
from gankit.data import DataSpec
from gankit.errors import GankitError
from gankit.models.base import Batch, GANModel, Logs, frozen
from gankit.nn import MLP, ConvCritic, PointCritic, init_weights
from gankit.nn_translation import (
    TRANSLATION_SCHEDULE,
    EncoderDecoderGenerator,
    grid_columns,
    image_shapes,
    require_inputs,
    translate_with,
)

# variant → (reconstruct A through G_BA, train the B → A direction too)
VARIANTS = {"gan": (False, False), "gan-recon": (True, False), "discogan": (True, True)}


@dataclass
class DiscoGANConfig:
    variant: Literal["discogan", "gan-recon", "gan"] = option(
        "discogan", "discogan (both directions), gan-recon (A→B + A's reconstruction), gan (A→B)"
    )
    recon: Literal["l2", "l1", "huber"] = option("l2", "reconstruction distance (paper: l2)")
    huber_delta: float = option(1.0, "δ of the Huber distance (recon=huber)", min=1e-6)
    recon_weight: float = option(1.0, "weight of each reconstruction term", min=0.0)
    ngf: int = option(32, "generator width (images; paper: 64)", min=1)
    ndf: int = option(32, "discriminator width (images; paper: 64)", min=1)
    n_down: int = option(0, "encoder halvings (images; 0: down to 4x4 maps)", min=0)
    norm: Literal["batch", "instance", "none"] = option("batch", "image normalisation layers")
    hidden: int = option(128, "MLP width (points)", min=1)
    depth: int = option(3, "MLP hidden layers (points)", min=1)
    lr: float = option(2e-4, "Adam learning rate", min=0.0)
    betas: tuple[float, ...] = option((0.5, 0.999), "Adam betas")

    @classmethod
    def tiny(cls) -> "DiscoGANConfig":
        return cls(ngf=4, ndf=4, hidden=16, depth=1)


def encoder_halvings(side: int) -> int:
    """Halvings that take ``side`` to about 4 pixels: 64 → 4 (the paper), 32 → 3, 28 → 2."""
    return max(1, (side // 4).bit_length() - 1)


def build_networks(
    cfg: DiscoGANConfig, spec: DataSpec
) -> tuple[Callable[[int, int], nn.Module], Callable[[tuple[int, ...]], nn.Module]]:
    """Factories for one generator (C_in, C_out) and one discriminator (shape) of this data."""
    if spec.kind == "unpaired-points":
        return (
            lambda d_in, d_out: MLP(d_in, d_out, hidden=cfg.hidden, depth=cfg.depth),
            lambda shape: PointCritic(shape[0], hidden=cfg.hidden, depth=cfg.depth),
        )
    (c_a, h, w), _ = image_shapes(spec.shape, spec.shape_b, "discogan")
    if h != w:
        raise GankitError(f"discogan needs square images, got {h}x{w}: set image_size")
    n_down = cfg.n_down or encoder_halvings(h)
    return (
        lambda c_in, c_out: EncoderDecoderGenerator(
            c_in, c_out, ngf=cfg.ngf, n_down=n_down, norm=cfg.norm
        ),
        lambda shape: ConvCritic(shape, base=cfg.ndf, norm=cfg.norm),
    )


class DiscoGAN(GANModel):
    """g_ab, g_ba, d_a, d_b on unpaired (xa, xb) batches; ``variant`` picks the loss terms."""

    Config = DiscoGANConfig
    # the paper's batch 64 at ngf = ndf = 32 keeps a 4000-step image run to minutes on a CPU
    # (run times in docs/results/discogan.md)
    train_defaults = {**TRANSLATION_SCHEDULE, "steps": 4000, "batch_size": 64, "eval_samples": 1000}
    # 2-D toy: the paper's reconstruction weight 1 leaves modes of B uncovered; 10 covers them
    # (measured over seeds in docs/results/discogan.md)
    kind_defaults = {"unpaired-points": {"recon_weight": 10.0}}
    kinds = ("unpaired", "unpaired-points")
    needs_inputs = True

    def __init__(self, cfg: DiscoGANConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        self.reconstruct_a, self.both = VARIANTS[cfg.variant]
        generator, discriminator = build_networks(cfg, spec)
        c_a, c_b = spec.shape[0], spec.shape_b[0]
        # code names → paper: g_ab = G_AB, g_ba = G_BA, d_a = D_A, d_b = D_B; the "gan" variant
        # has no g_ba, and only "discogan" trains the B → A direction (g_ba as translator, d_a)
        self.g_ab, self.d_b = generator(c_a, c_b), discriminator(tuple(spec.shape_b))
        self.g_ba = generator(c_b, c_a) if self.reconstruct_a else None
        self.d_a = discriminator(tuple(spec.shape)) if self.both else None
        init_weights(self)
        self.to(memory_format=torch.channels_last)  # faster convolutions: see channels_last
        delta = cfg.huber_delta
        self.recon = {
            "l1": losses.recon_l1,
            "l2": losses.recon_l2,
            "huber": partial(losses.recon_huber, delta=delta),
        }[cfg.recon]

    def title(self, family: str) -> str:
        # the toy study puts three variants side by side: say which one each picture is
        return family if self.cfg.variant == "discogan" else f"{family} variant={self.cfg.variant}"

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        def adam(*modules: nn.Module | None) -> torch.optim.Optimizer:
            params = [p for m in modules if m is not None for p in m.parameters()]
            # fused: one kernel for all parameters (see player_optimizers), with no layout copies
            return self.fused_adam(params, lr=self.cfg.lr, betas=self.cfg.betas)

        return {"g": adam(self.g_ab, self.g_ba), "d": adam(self.d_b, self.d_a)}

    def discriminator_loss(
        self, real_a: Tensor, real_b: Tensor, fake_a: Tensor | None, fake_b: Tensor
    ) -> tuple[Tensor, Logs]:
        """BCE losses of d_b (and d_a when both directions train) on detached fakes."""
        loss = losses.d_loss_bce(self.d_b(real_b), self.d_b(fake_b.detach()))
        logs = {"loss/d_b": loss.detach()}
        if fake_a is not None:
            loss_a = losses.d_loss_bce(self.d_a(real_a), self.d_a(fake_a.detach()))
            logs["loss/d_a"] = loss_a.detach()
            loss = loss + loss_a
        return loss, {"loss/d": loss.detach(), **logs}

    def generator_loss(
        self, real_a: Tensor, real_b: Tensor, fake_a: Tensor | None, fake_b: Tensor
    ) -> tuple[Tensor, Logs]:
        """L_GAN_B [+ L_CONST_A] [+ L_GAN_A + L_CONST_B], as ``variant`` says."""
        w = self.cfg.recon_weight
        adv = losses.g_loss_nonsaturating(self.d_b(fake_b))
        logs = {"loss/g_ab": adv.detach()}
        rec = real_a.new_zeros(())
        if self.reconstruct_a:
            rec = self.recon(real_a, self.g_ba(fake_b))
            logs["loss/recon_a"] = rec.detach()
        if fake_a is not None:
            adv_a = losses.g_loss_nonsaturating(self.d_a(fake_a))
            rec_b = self.recon(real_b, self.g_ab(fake_a))
            logs.update({"loss/g_ba": adv_a.detach(), "loss/recon_b": rec_b.detach()})
            adv, rec = adv + adv_a, rec + rec_b
        logs.update({"loss/g": adv.detach(), "loss/recon": rec.detach()})
        return adv + w * rec, logs

    def train_step(self, batches: Iterator[Batch], step: int) -> Logs:
        """A discriminator update on G's current translations, then a generator update."""
        real_a, real_b = map(self.conv_layout, next(batches))
        fake_b = self.g_ab(real_a)
        fake_a = self.g_ba(real_b) if self.both else None
        loss_d, logs = self.discriminator_loss(real_a, real_b, fake_a, fake_b)
        self.optimizers["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        self.optimizers["d"].step()
        with frozen(*(d for d in (self.d_a, self.d_b) if d is not None)):
            loss_g, g_logs = self.generator_loss(real_a, real_b, fake_a, fake_b)
            self.optimizers["g"].zero_grad(set_to_none=True)
            loss_g.backward()
        self.optimizers["g"].step()
        return {**logs, **g_logs}

    def generators(self) -> dict[str, nn.Module]:
        nets = {"g_ab": self.g_ab, "g_ba": self.g_ba}
        return {k: v for k, v in nets.items() if v is not None}

    @torch.no_grad()
    def translate(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        """x (B, C_a, H, W) or (B, 2) → G_AB(x) for "AtoB"; G_BA(x) for "BtoA"; eval mode."""
        if direction == "BtoA" and self.g_ba is None:
            raise GankitError("variant gan trains no B→A generator: use variant=discogan")
        return translate_with(self, self.g_ab, self.g_ba, x, direction)

    @torch.no_grad()
    def preview(
        self, n: int, *, generator: torch.Generator, inputs: Batch | None = None, **kwargs: Any
    ) -> tuple[Tensor, int]:
        """Points: G_AB(a) (n, 2). Images: ``n`` rows [a, G_AB(a), G_BA(G_AB(a)), b, G_BA(b),
        G_AB(G_BA(b))], the columns a variant trains (6, 3 or 2 per row)."""
        xa, xb = require_inputs(inputs, n, "discogan")
        if self.spec.kind == "unpaired-points":
            return self.translate(xa, "AtoB"), 10
        k = min(len(xa), len(xb))
        xa, xb = xa[:k], xb[:k]
        fake_b = self.translate(xa, "AtoB")
        columns = [xa, fake_b]
        if self.reconstruct_a:
            columns.append(self.translate(fake_b, "BtoA"))
        if self.both:
            fake_a = self.translate(xb, "BtoA")
            columns += [xb, fake_a, self.translate(fake_a, "AtoB")]
        return grid_columns(columns), len(columns)
