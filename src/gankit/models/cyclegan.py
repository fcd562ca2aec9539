"""CycleGAN: unpaired image-to-image translation (Zhu et al., arXiv:1703.10593).

Two generators G: A → B and F: B → A and two discriminators D_B, D_A minimise

    L(G, F, D_A, D_B) = L_GAN(G, D_B) + L_GAN(F, D_A) + λ·(E‖F(G(a)) − a‖₁ + E‖G(F(b)) − b‖₁)
                        [+ λ_id·λ·(E‖G(b) − b‖₁ + E‖F(a) − a‖₁)]

with least-squares adversarial terms (G minimises E[(D_B(G(a)) − 1)²], D_B minimises
½E[(D_B(b) − 1)²] + ½E[D_B(G(a))²]), λ = 10, a ResNet generator, a PatchGAN discriminator,
instance norm, a history pool of 50 generated images per discriminator and Adam(2e-4, β₁ = 0.5)
with the learning rate constant for the first half of training and linearly decayed to 0 after.

When B holds detail A cannot (a photo background behind a colour digit, none behind a grey one),
the b → F → G cycle can only be met by F hiding that detail in its output, at the cost of the
content it should keep; ``cycle_weight_b`` (the paper code's lambda_B) weights that cycle alone,
and 0 drops it. F then learns to read only G's pictures, through F(G(a)) ≈ a;
``feature_align`` adds a discriminator on F's bottleneck features so that F encodes real b as it
encodes G(a) (CyCADA's feature-level GAN loss, Hoffman et al., arXiv:1711.03213).

The defaults suit 32×32 images on a CPU (ngf = 16, ndf = 32, 4 residual blocks, 2-layer PatchGAN,
3000 steps of batch 4); the paper's 256-pixel model is ``ngf=64 ndf=64 blocks=9 n_layers=3``.
"""

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from gankit import losses
from gankit.config import option
from gankit.data import DataSpec
from gankit.errors import GankitError
from gankit.models.base import Batch, GANModel, frozen
from gankit.nn import init_weights
from gankit.nn_translation import (
    FeatureDiscriminator,
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    channels_last,
    colour_jitter,
    cycle_rows,
    image_shapes,
    require_inputs,
    translate_with,
)
from gankit.optim import ChannelsLastAdam


@dataclass
class CycleGANConfig:
    arch: Literal["resnet", "unet"] = option("resnet", "generator: resnet (paper) or unet")
    ngf: int = option(16, "generator width (channels of the first layer; paper: 64)", min=1)
    ndf: int = option(32, "discriminator width (channels of the first layer; paper: 64)", min=1)
    blocks: int = option(
        0, "residual blocks (0: by image size: 4 below 64 px, 6 below 256 px, 9 from 256)", min=0
    )
    n_down: int = option(
        0, "generator halvings (0: resnet 2 as in the paper; unet down to 1x1, at most 8)", min=0
    )
    n_layers: int = option(
        0,
        "PatchGAN stride-2 layers (0: 3 = 70x70 patches from 128 px, 2 = 34x34 from 24 px, else 1)",
        min=0,
    )
    norm: Literal["instance", "batch", "none"] = option("instance", "normalisation layers")
    cycle_weight: float = option(10.0, "λ: weight of each cycle-consistency L1 term", min=0.0)
    # digits2colour, 5000 steps with EMA: B → A label preservation 79.6% with 0, 55.4% with 10
    cycle_weight_b: float | None = option(
        None,
        "λ of the b → F → G cycle alone (none: cycle_weight; 0 when B holds detail A cannot)",
        min=0.0,
    )
    # the paper adds it for painting ↔ photo only; it holds back shape changes (sneakers2boots,
    # 3000 steps, 2 threads: boot → sneaker domain success 85.0% with 0.5, 99.6% without)
    identity: float = option(
        0.0,
        "identity-loss weight as a fraction of λ (paper: 0.5 for paintings; same channels)",
        min=0.0,
    )
    cycle_noise: float = option(
        0.0,
        "std of Gaussian noise added to a translation before it is mapped back (0: off)",
        min=0.0,
    )
    # digits2colour, cycle_weight_b=0 ema=true n_down=1: B → A label preservation at 5000 steps
    # 89.4% with 0, 90.2% with 1; at 20000 steps 91.8% with 0, 94.6% with 1 (seed 0); with 1 at
    # 30000 steps 95.35% on all 2000 test pairs (README)
    cycle_jitter: float = option(
        0.0,
        "strength in [0, 1] of random colour changes (gain, inversion, shift, channel order) of "
        "a translation before it is mapped back (0: off)",
        min=0.0,
        max=1.0,
    )
    # digits2colour, 5000 steps, cycle_weight_b=0, EMA: B → A label preservation 79.6% with 0,
    # 80.0% with 0.3, 81.4% with 1, 83.2% with 3
    feature_align: float = option(
        0.0,
        "weight of a discriminator on F's bottleneck that makes its features of real b look like "
        "those of G(a), which the a-cycle teaches F to read (0: off; needs arch=resnet)",
        min=0.0,
    )
    pool_size: int = option(50, "generated images kept per discriminator history (0: off)", min=0)
    lr: float = option(2e-4, "Adam learning rate", min=0.0)
    betas: tuple[float, ...] = option((0.5, 0.999), "Adam betas")
    lr_decay: float = option(
        0.5, "final fraction of the steps over which the LR falls linearly to 0", min=0.0, max=1.0
    )

    @classmethod
    def tiny(cls) -> "CycleGANConfig":
        return cls(ngf=4, ndf=4, blocks=1, pool_size=4)


def default_blocks(side: int) -> int:
    """Residual blocks by image side: the paper's 6 (128 px) and 9 (256 px); 4 for small images."""
    return 9 if side >= 256 else 6 if side >= 64 else 4


def default_patch_layers(side: int) -> int:
    """PatchGAN depth by image side: 70×70 patches from 128 px, 34×34 from 24 px, else 16×16."""
    return 3 if side >= 128 else 2 if side >= 24 else 1


def build_generator(cfg: CycleGANConfig, c_in: int, c_out: int, side: int) -> nn.Module:
    """ResNet or U-Net generator (B, c_in, H, W) → (B, c_out, H, W), depth scaled to ``side``."""
    if cfg.arch == "unet":
        n_down = cfg.n_down or min(8, max(1, side.bit_length() - 1))
        return UnetGenerator(c_in, c_out, ngf=cfg.ngf, n_down=n_down, norm=cfg.norm)
    blocks = cfg.blocks or default_blocks(side)
    n_down = cfg.n_down or 2
    return ResnetGenerator(c_in, c_out, ngf=cfg.ngf, blocks=blocks, n_down=n_down, norm=cfg.norm)


class CycleGAN(GANModel):
    """Generators g_ab, g_ba and PatchGAN discriminators d_a, d_b on unpaired (xa, xb) batches."""

    Config = CycleGANConfig
    # batch 4 keeps many updates per second while instance norm needs no batch. On 32×32
    # digits2colour, ngf 16 (3.7 GFLOP/step) runs 0.15 s/step on 2 threads against ngf 32's 0.28
    # (10.8 GFLOP): steps this small are bound by per-operation overhead, so 3000 steps fit the
    # 15-minute CPU budget, and keep A→B label preservation at 96.8% (ngf 32, 5000 steps: 97.0%)
    train_defaults = {
        "steps": 3000,
        "batch_size": 4,
        "ema": False,
        "sample_every": 500,
        "eval_every": 1000,
        "ckpt_every": 1000,
        "eval_samples": 500,
    }
    kinds = ("unpaired",)
    needs_inputs = True

    def __init__(self, cfg: CycleGANConfig, spec: DataSpec) -> None:
        super().__init__(cfg, spec)
        shape_a, shape_b = image_shapes(spec.shape, spec.shape_b, "cyclegan")
        (c_a, *size), c_b = shape_a, shape_b[0]
        side = min(size)
        # code names → paper: g_ab = G: X → Y, g_ba = F: Y → X, d_a = D_X, d_b = D_Y
        self.g_ab = build_generator(cfg, c_a, c_b, side)
        self.g_ba = build_generator(cfg, c_b, c_a, side)
        n_layers = cfg.n_layers or default_patch_layers(side)
        self.d_a = PatchDiscriminator(c_a, ndf=cfg.ndf, n_layers=n_layers, norm=cfg.norm)
        self.d_b = PatchDiscriminator(c_b, ndf=cfg.ndf, n_layers=n_layers, norm=cfg.norm)
        if cfg.feature_align > 0:
            if not isinstance(self.g_ba, ResnetGenerator):
                raise GankitError(
                    "feature_align reads F's bottleneck, which only arch=resnet has: set "
                    "arch=resnet or feature_align=0"
                )
            self.d_feat = FeatureDiscriminator(self.g_ba.bottleneck_channels)
        init_weights(self)
        self.to(memory_format=torch.channels_last)  # faster convolutions: see channels_last
        self.channels = c_a, c_b
        self.identity = cfg.identity if c_a == c_b else 0.0
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)

    def setup(self, total_steps: int = 1) -> None:
        """As GANModel's; says once, when training starts, that the identity loss is off."""
        if self.identity != self.cfg.identity:
            c_a, c_b = self.channels
            warnings.warn(
                f"identity loss off: it compares G(b) with b, which needs equal channel counts "
                f"(A has {c_a}, B has {c_b})",
                stacklevel=2,
            )
        super().setup(total_steps)

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        def adam(*modules: nn.Module) -> torch.optim.Optimizer:
            params = [p for m in modules for p in m.parameters()]
            # fused: one kernel for all parameters (see player_optimizers), with no layout copies
            return ChannelsLastAdam(params, lr=self.cfg.lr, betas=self.cfg.betas, fused=True)

        return {"g": adam(self.g_ab, self.g_ba), "d": adam(*self.discriminators())}

    def discriminators(self) -> list[nn.Module]:
        """D_A, D_B and, with ``feature_align``, the discriminator on F's features."""
        return [self.d_a, self.d_b, *([self.d_feat] if self.cfg.feature_align > 0 else [])]

    def translation_terms(
        self,
        real: Tensor,
        g: nn.Module,
        f: nn.Module,
        d: nn.Module,
        cycle_grad: bool = True,
        features: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """fake = g(real) and its terms: adversarial E[(d(fake) − 1)²], cycle E‖f(fake) − real‖₁;
        with ``features`` (ResNet generators), also the bottleneck features of g(real) and of
        f(fake), else None.

        ``cycle_grad=False`` (a cycle weighted 0) computes the cycle for the logs only, without
        the graph through f (13% of a step's time on digits2colour with the defaults).

        With ``cycle_noise`` σ > 0 the cycle reads f(fake + σ·ε): a translation can then no longer
        hide what the other domain lacks (a colour photo's background inside a grey digit) in
        low-amplitude patterns, which otherwise costs the content it should keep (Bashkirova et
        al., arXiv:1908.01517). With ``cycle_jitter`` s > 0 the translation's colours are changed
        at random first (:func:`colour_jitter`): f must then read content from shapes whatever
        their colours, as it must in real inputs that g's pictures do not cover.
        """
        fake, g_features = g.forward_with_features(real) if features else (g(real), None)
        # the paper's least-squares term is E[(D(G(a)) − 1)²], without LSGAN's ½: λ is relative
        # to it
        adv = 2 * losses.g_loss_lsgan(d(fake))
        sigma = self.cfg.cycle_noise
        with torch.set_grad_enabled(cycle_grad and torch.is_grad_enabled()):
            back_in = colour_jitter(fake, self.cfg.cycle_jitter)
            back_in = back_in + sigma * torch.randn_like(fake) if sigma > 0 else back_in
            if g_features is None:
                return fake, adv, losses.recon_l1(real, f(back_in)), None
            back, f_features = f.forward_with_features(back_in)
            return fake, adv, losses.recon_l1(real, back), (g_features, f_features)

    def generator_backward(
        self, real_a: Tensor, real_b: Tensor
    ) -> tuple[Tensor, Tensor, dict[str, float], tuple[Tensor, Tensor] | None]:
        """Back-propagate the adversarial + λ·cycle (+ identity, + feature alignment) terms of
        both generators.

        The terms of each direction (and each identity term) share no activations with the
        others, so each is back-propagated as soon as it is computed: the gradients add up to
        those of the whole loss, but the activations of 2 generator passes are held at a time
        instead of 6 (peak RSS at 128 px, batch 1: 1.46 → 1.1 GB).

        With ``feature_align`` w > 0, F also minimises w·E[(D_feat(F's features of b) − 1)²]:
        the a-cycle teaches F to read G's pictures, and this asks it to see real b the same way.

        Returns:
            fake_a = F(b), fake_b = G(a), detached; the logs; with ``feature_align``, F's
            features of G(a) and of b, detached, for D_feat (else None).
        """
        lam = self.cfg.cycle_weight
        lam_b = lam if self.cfg.cycle_weight_b is None else self.cfg.cycle_weight_b
        align = self.cfg.feature_align
        fake_b, adv_ab, cycle_a, feats_a = self.translation_terms(
            real_a, self.g_ab, self.g_ba, self.d_b, cycle_grad=lam > 0, features=align > 0
        )
        (adv_ab + lam * cycle_a).backward()
        fake_a, adv_ba, cycle_b, feats_b = self.translation_terms(
            real_b, self.g_ba, self.g_ab, self.d_a, cycle_grad=lam_b > 0, features=align > 0
        )
        loss_ba = adv_ba + lam_b * cycle_b
        features, align_logs = None, {}
        if feats_a is not None and feats_b is not None:
            # F's features of G(a) (read in the a-cycle) play "real", those of b "fake"
            read, seen = feats_a[1].detach(), feats_b[0]
            term = losses.g_loss_lsgan(self.d_feat(seen))
            loss_ba = loss_ba + align * term
            features, align_logs = (read, seen.detach()), {"loss/align": term.item()}
        loss_ba.backward()
        logs = {
            "loss/g": adv_ab.item() + adv_ba.item(),
            "loss/g_ab": adv_ab.item(),
            "loss/g_ba": adv_ba.item(),
            "loss/cycle": cycle_a.item() + cycle_b.item(),
            "loss/cycle_a": cycle_a.item(),
            "loss/cycle_b": cycle_b.item(),
        }
        if self.identity > 0:
            idt = 0.0
            for g, real in ((self.g_ab, real_b), (self.g_ba, real_a)):
                term = losses.recon_l1(real, g(real))
                (self.identity * lam * term).backward()
                idt += term.item()
            logs["loss/identity"] = idt
        return fake_a.detach(), fake_b.detach(), {**logs, **align_logs}, features

    def discriminator_loss(
        self,
        real_a: Tensor,
        real_b: Tensor,
        fake_a: Tensor,
        fake_b: Tensor,
        features: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, dict[str, float]]:
        """LSGAN losses of d_a and d_b (the fakes pass through the history pools) and, given F's
        ``features`` (of G(a), of b), of d_feat."""
        loss_a = losses.d_loss_lsgan(self.d_a(real_a), self.d_a(self.pool_a.query(fake_a)))
        loss_b = losses.d_loss_lsgan(self.d_b(real_b), self.d_b(self.pool_b.query(fake_b)))
        logs = {"loss/d": loss_a.item() + loss_b.item(), "loss/d_a": loss_a.item()}
        logs["loss/d_b"] = loss_b.item()
        if features is None:
            return loss_a + loss_b, logs
        loss_feat = losses.d_loss_lsgan(*map(self.d_feat, features))
        return loss_a + loss_b + loss_feat, {**logs, "loss/d_feat": loss_feat.item()}

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, float]:
        """One update of both generators, then of both discriminators, on one (xa, xb) batch."""
        real_a, real_b = map(channels_last, next(batches))
        with frozen(*self.discriminators()):  # no gradient is spent on them here
            fake_a, fake_b, logs, features = self.generator_backward(real_a, real_b)
        self.optimizers["g"].step()
        # grads are freed right after each update, so G's and D's never take memory together
        self.optimizers["g"].zero_grad(set_to_none=True)
        loss_d, d_logs = self.discriminator_loss(real_a, real_b, fake_a, fake_b, features)
        loss_d.backward()
        self.optimizers["d"].step()
        self.optimizers["d"].zero_grad(set_to_none=True)
        return {**logs, **d_logs}

    def generators(self) -> dict[str, nn.Module]:
        return {"g_ab": self.g_ab, "g_ba": self.g_ba}

    def training_state(self) -> dict[str, Any]:
        pools = {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()}
        return {**super().training_state(), "pools": pools}

    def load_training_state(self, state: dict[str, Any]) -> None:
        super().load_training_state(state)
        self.pool_a.load_state_dict(state["pools"]["a"])
        self.pool_b.load_state_dict(state["pools"]["b"])

    @torch.no_grad()
    def translate(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        """x (B, C_a, H, W) → G(x) (B, C_b, H, W) for "AtoB"; "BtoA" applies F; eval mode."""
        return translate_with(self, self.g_ab, self.g_ba, x, direction)

    @torch.no_grad()
    def sample(
        self, n: int, *, generator: torch.Generator, inputs: Batch | None = None, **kwargs: Any
    ) -> Tensor:
        """G(a) (n, C_b, H, W) for the first ``n`` of ``inputs`` = (xa, xb) (fewer if fewer)."""
        xa, _ = require_inputs(inputs, n, "cyclegan")
        return self.translate(xa, "AtoB")

    @torch.no_grad()
    def preview(
        self, n: int, *, generator: torch.Generator, inputs: Batch | None = None, **kwargs: Any
    ) -> tuple[Tensor, int]:
        """``n`` rows [a, G(a), F(G(a)), b, F(b), G(F(b))] of the first n inputs, 6 per row."""
        xa, xb = require_inputs(inputs, n, "cyclegan")
        return cycle_rows(self, xa, xb), 6
