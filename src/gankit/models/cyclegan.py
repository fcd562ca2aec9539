"""CycleGAN: unpaired image-to-image translation (Zhu et al., arXiv:1703.10593).

Two generators G: A → B and F: B → A and two discriminators D_B, D_A minimise

    L(G, F, D_A, D_B) = L_GAN(G, D_B) + L_GAN(F, D_A) + λ·(E‖F(G(a)) − a‖₁ + E‖G(F(b)) − b‖₁)
                        [+ λ_id·λ·(E‖G(b) − b‖₁ + E‖F(a) − a‖₁)]

with least-squares adversarial terms (G minimises E[(D_B(G(a)) − 1)²], D_B minimises
½E[(D_B(b) − 1)²] + ½E[D_B(G(a))²]), λ = 10, a ResNet generator, a PatchGAN discriminator,
instance norm, a history pool of 50 generated images per discriminator and Adam(2e-4, β₁ = 0.5)
with the learning rate constant for the first half of training and linearly decayed to 0 after.

The defaults suit 32×32 images on a CPU (ngf = 16, ndf = 32, 4 residual blocks, 2-layer PatchGAN,
3000 steps of batch 4); the paper's 256-pixel model is ``ngf=64 ndf=64 blocks=9 n_layers=3``.

The study's extensions, each off by default, have a section of their own at the end of the file
(:class:`CycleExtensions`): the b → F → G cycle weighted apart (``cycle_weight_b``), noise and
random colours on the way back (``cycle_noise``, ``cycle_jitter``), a discriminator on F's
bottleneck (``feature_align``, CyCADA's feature-level loss) and fewer generator halvings
(``n_down``). With all of them off, the model is the paper's.
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
from gankit.distributed import local_rows
from gankit.errors import GankitError
from gankit.models.base import Batch, GANModel, Logs, exact_sum, frozen
from gankit.nn import init_weights
from gankit.nn_translation import (
    TRANSLATION_SCHEDULE,
    FeatureDiscriminator,
    ImagePool,
    PatchDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    colour_jitter,
    cycle_rows,
    image_shapes,
    require_inputs,
    translate_with,
)


@dataclass
class CycleGANConfig:
    arch: Literal["resnet", "unet"] = option("resnet", "generator: resnet (paper) or unet")
    ngf: int = option(16, "generator width (channels of the first layer; paper: 64)", min=1)
    ndf: int = option(32, "discriminator width (channels of the first layer; paper: 64)", min=1)
    blocks: int = option(
        0, "residual blocks (0: by image size: 4 below 64 px, 6 below 256 px, 9 from 256)", min=0
    )
    # extension (see CycleExtensions at the end of this file): fewer halvings than the paper
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
    # extension (see CycleExtensions): the b → F → G cycle weighted apart
    cycle_weight_b: float | None = option(
        None,
        "λ of the b → F → G cycle alone (none: cycle_weight; 0 when B holds detail A cannot)",
        min=0.0,
    )
    # the paper adds it for painting ↔ photo only: it holds back the shape changes other
    # translations need
    identity: float = option(
        0.0,
        "identity-loss weight as a fraction of λ (paper: 0.5 for paintings; same channels)",
        min=0.0,
    )
    # extensions (see CycleExtensions): noise and colours on the way back, F-feature alignment
    cycle_noise: float = option(
        0.0,
        "std of Gaussian noise added to a translation before it is mapped back (0: off)",
        min=0.0,
    )
    cycle_jitter: float = option(
        0.0,
        "strength in [0, 1] of random colour changes (gain, inversion, shift, channel order) of "
        "a translation before it is mapped back (0: off)",
        min=0.0,
        max=1.0,
    )
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
    """ResNet or U-Net generator (B, c_in, H, W) → (B, c_out, H, W), depth scaled to ``side``.

    The halvings are the paper's (2 for the ResNet, down to 1×1 for the U-Net) unless the
    ``n_down`` extension sets them: fewer keep the residual blocks at a finer scale, so F keeps
    the strokes it sees instead of redrawing them from a coarse summary (this study's choice).
    """
    if cfg.arch == "unet":
        n_down = cfg.n_down or min(8, max(1, side.bit_length() - 1))
        return UnetGenerator(c_in, c_out, ngf=cfg.ngf, n_down=n_down, norm=cfg.norm)
    blocks = cfg.blocks or default_blocks(side)
    n_down = cfg.n_down or 2
    return ResnetGenerator(c_in, c_out, ngf=cfg.ngf, blocks=blocks, n_down=n_down, norm=cfg.norm)


class CycleGAN(GANModel):
    """Generators g_ab, g_ba and PatchGAN discriminators d_a, d_b on unpaired (xa, xb) batches."""

    Config = CycleGANConfig
    # batch 4 keeps many updates per second, and instance norm needs no batch; steps this small
    # are bound by per-operation overhead more than by arithmetic, so the narrow ngf 16 costs
    # little quality and lets 3000 steps fit a 15-minute CPU budget
    train_defaults = {**TRANSLATION_SCHEDULE, "steps": 3000, "batch_size": 4, "eval_samples": 500}
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
        self.ext = CycleExtensions.from_config(cfg, self.g_ba)  # all off: the paper's model
        if self.ext.align is not None:  # a submodule of its own name: checkpoints hold d_feat.*
            self.d_feat = self.ext.align.discriminator
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
            return self.fused_adam(params, lr=self.cfg.lr, betas=self.cfg.betas)

        return {"g": adam(self.g_ab, self.g_ba), "d": adam(*self.discriminators())}

    def discriminators(self) -> list[nn.Module]:
        """D_A, D_B, then those the extensions add (D_feat), in the "d" optimiser's order."""
        return [self.d_a, self.d_b, *self.ext.discriminators()]

    def translation_terms(
        self, real: Tensor, g: nn.Module, f: nn.Module, d: nn.Module, cycle_grad: bool = True
    ) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """fake = g(real) and its generator terms: adversarial E[(d(fake) − 1)²] and cycle
        E‖f(fake) − real‖₁ (the extensions may perturb fake on its way back through f).

        Args:
            real: (B, C_in, H, W) in [-1, 1]; g, f: the generators out of its domain and back;
                d: the discriminator of g's output domain.
            cycle_grad: False (a cycle weighted 0) computes the cycle for the logs only,
                without the graph through f, a sizeable share of a step.

        Returns:
            fake (B, C_out, H, W) in [-1, 1]; the adversarial and cycle terms (scalars); when
            feature alignment is on, the bottleneck features of g(real) and of f's pass back,
            else None.
        """
        fake, g_features = self.ext.generate(g, real)
        # the paper's term is E[(D(G(a)) − 1)²], without LSGAN's ½: λ is relative to it
        adv = 2 * losses.g_loss_lsgan(d(fake))
        with torch.set_grad_enabled(cycle_grad and torch.is_grad_enabled()):
            back, f_features = self.ext.generate(f, self.ext.perturb_back(fake))
            cycle = losses.recon_l1(real, back)
        features = None if g_features is None else (g_features, f_features)
        return fake, adv, cycle, features

    def generator_backward(
        self, real_a: Tensor, real_b: Tensor
    ) -> tuple[Tensor, Tensor, Logs, tuple[Tensor, Tensor] | None]:
        """Back-propagate both generators' terms for real_a (B, C_a, H, W), real_b (B, C_b, H, W)
        in [-1, 1]: per direction adversarial + λ·cycle, then identity (and feature alignment).

        The terms of each direction and each identity term share no activations, so each is
        back-propagated as soon as it is computed: the gradients are those of the whole loss,
        with the activations of 2 generator passes held at a time instead of 6.

        Returns:
            fake_a = F(b) and fake_b = G(a), detached; the logs; with feature alignment, F's
            features of G(a) and of b, detached, for D_feat (else None).
        """
        lam, lam_b = self.cfg.cycle_weight, self.ext.weight_b(self.cfg.cycle_weight)
        fake_b, adv_ab, cycle_a, feats_a = self.translation_terms(
            real_a, self.g_ab, self.g_ba, self.d_b, cycle_grad=lam > 0
        )
        (adv_ab + lam * cycle_a).backward()
        fake_a, adv_ba, cycle_b, feats_b = self.translation_terms(
            real_b, self.g_ba, self.g_ab, self.d_a, cycle_grad=lam_b > 0
        )
        loss_ba = adv_ba + lam_b * cycle_b
        features, align_logs = None, {}
        if self.ext.align is not None:  # an extension: F's term shares F(b)'s activations
            term, features = self.ext.align.generator_term(feats_a, feats_b)
            loss_ba = loss_ba + self.ext.align.weight * term
            align_logs = {"loss/align": term.detach()}
        loss_ba.backward()
        logs = {
            "loss/g": exact_sum(adv_ab, adv_ba),
            "loss/g_ab": adv_ab.detach(),
            "loss/g_ba": adv_ba.detach(),
            "loss/cycle": exact_sum(cycle_a, cycle_b),
            "loss/cycle_a": cycle_a.detach(),
            "loss/cycle_b": cycle_b.detach(),
        }
        if self.identity > 0:
            logs["loss/identity"] = self.identity_backward(real_a, real_b, lam)
        return fake_a.detach(), fake_b.detach(), {**logs, **align_logs}, features

    def identity_backward(self, real_a: Tensor, real_b: Tensor, lam: float) -> Tensor:
        """Back-propagate λ_id·λ·(E‖G(b) − b‖₁ + E‖F(a) − a‖₁), one term at a time; their sum.

        Args:
            real_a: (B, C, H, W) and real_b: (B, C, H, W) in [-1, 1] (equal channel counts).
            lam: λ, the cycle weight the identity weight is a fraction of.
        """
        terms = []
        for g, real in ((self.g_ab, real_b), (self.g_ba, real_a)):
            term = losses.recon_l1(real, g(real))
            (self.identity * lam * term).backward()
            terms.append(term)
        return exact_sum(*terms)

    def discriminator_loss(
        self,
        real_a: Tensor,
        real_b: Tensor,
        fake_a: Tensor,
        fake_b: Tensor,
        features: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Logs]:
        """LSGAN losses ½E[(D(real) − 1)²] + ½E[D(fake)²] of d_a and d_b, the fakes drawn
        through the history pools; given F's ``features`` (of G(a), of b), plus D_feat's.

        Args:
            real_a, fake_a: (B, C_a, H, W); real_b, fake_b: (B, C_b, H, W); in [-1, 1], the
                fakes detached.
            features: from :meth:`generator_backward` when feature alignment is on.
        """
        loss_a = losses.d_loss_lsgan(self.d_a(real_a), self.d_a(self.pool_a.query(fake_a)))
        loss_b = losses.d_loss_lsgan(self.d_b(real_b), self.d_b(self.pool_b.query(fake_b)))
        logs = {"loss/d": exact_sum(loss_a, loss_b), "loss/d_a": loss_a.detach()}
        logs["loss/d_b"] = loss_b.detach()
        if features is None:
            return loss_a + loss_b, logs
        loss_feat = self.ext.align.discriminator_loss(*features)  # an extension
        return loss_a + loss_b + loss_feat, {**logs, "loss/d_feat": loss_feat.detach()}

    def train_step(self, batches: Iterator[Batch], step: int) -> Logs:
        """One update of both generators, then of both discriminators, on one (xa, xb) batch."""
        real_a, real_b = map(self.conv_layout, next(batches))
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
    def preview(
        self, n: int, *, generator: torch.Generator, inputs: Batch | None = None, **kwargs: Any
    ) -> tuple[Tensor, int]:
        """``n`` rows [a, G(a), F(G(a)), b, F(b), G(F(b))] of the first n inputs, 6 per row."""
        xa, xb = require_inputs(inputs, n, "cyclegan")
        return cycle_rows(self, xa, xb), 6


# ----------------------------------------------------------------------------- extensions
# The study's additions to the paper's loop, called through CycleGAN.ext; each is off by default.
# (``n_down``, the fifth, only sets the generators' depth: see build_generator.)


class FeatureAlignment:
    """A discriminator D_feat on F's bottleneck features and its two least-squares terms
    (``feature_align`` = w): CyCADA's feature-level GAN loss (Hoffman et al.,
    arXiv:1711.03213), here inside the translator.

    Why: the a-cycle F(G(a)) ≈ a teaches F to read G's pictures; this asks F to encode real b
    as it encodes G(a), so that what it learnt there carries over to real inputs. D_feat takes
    F's features of G(a) as "real" and those of b as "fake"; F minimises
    w·½E[(D_feat(F's features of b) − 1)²]. Only the ResNet generator has a bottleneck to read.
    """

    def __init__(self, weight: float, f: nn.Module) -> None:
        """D_feat for the features of ``f`` (F, a :class:`ResnetGenerator`), weighted ``weight``."""
        if not isinstance(f, ResnetGenerator):
            raise GankitError(
                "feature_align reads F's bottleneck, which only arch=resnet has: set "
                "arch=resnet or feature_align=0"
            )
        self.weight = weight
        self.discriminator = FeatureDiscriminator(f.bottleneck_channels)

    def generator_term(
        self, feats_a: tuple[Tensor, Tensor], feats_b: tuple[Tensor, Tensor]
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """F's term ½E[(D_feat(seen) − 1)²], unweighted, and (read, seen) detached for D_feat.

        Args:
            feats_a: bottleneck features (B, C', h, w) of the a-cycle: (G's of a, F's of G(a)).
            feats_b: those of the b-cycle: (F's of b, G's of F(b)).

        Returns:
            The term (a scalar, with F's graph); read = F's of G(a) and seen = F's of b.
        """
        read, seen = feats_a[1].detach(), feats_b[0]
        term = losses.g_loss_lsgan(self.discriminator(seen))
        return term, (read, seen.detach())

    def discriminator_loss(self, read: Tensor, seen: Tensor) -> Tensor:
        """D_feat's ½E[(D_feat(read) − 1)²] + ½E[D_feat(seen)²] on detached (B, C', h, w)."""
        return losses.d_loss_lsgan(self.discriminator(read), self.discriminator(seen))


@dataclass
class CycleExtensions:
    """The study's options of the generator step, all off by default: ``cycle_weight_b`` (None:
    the paper's λ), ``noise`` σ and ``jitter`` strength on the way back, ``align`` (None: off).
    """

    cycle_weight_b: float | None = None
    noise: float = 0.0
    jitter: float = 0.0
    align: FeatureAlignment | None = None

    @classmethod
    def from_config(cls, cfg: CycleGANConfig, f: nn.Module) -> "CycleExtensions":
        """The extensions ``cfg`` turns on, for the generator F = ``f``."""
        align = FeatureAlignment(cfg.feature_align, f) if cfg.feature_align > 0 else None
        return cls(cfg.cycle_weight_b, cfg.cycle_noise, cfg.cycle_jitter, align)

    def weight_b(self, lam: float) -> float:
        """λ_B, the weight of the b → F → G cycle: ``cycle_weight_b``, else the paper's λ.

        Why: when B holds detail A cannot (a photo background behind a colour digit, none
        behind a grey one), that cycle can only be met by F hiding the detail in its output, at
        the cost of the content it should keep; 0 drops it, and F then learns to read only G's
        pictures, through F(G(a)) ≈ a. From the paper's code, which weights the two cycles apart
        (lambda_A, lambda_B; Zhu et al., arXiv:1703.10593).
        """
        return lam if self.cycle_weight_b is None else self.cycle_weight_b

    def perturb_back(self, fake: Tensor) -> Tensor:
        """A translation as the way back reads it: colour-jittered, then noised.

        ``noise`` σ > 0 adds σ·ε, ε ~ N(0, I) (Bashkirova et al., arXiv:1908.01517). Why: a
        translation can then no longer hide what the other domain lacks (a colour photo's
        background inside a grey digit) in low-amplitude patterns, which otherwise costs the
        content it should keep. ``jitter`` s > 0 first changes its colours at random
        (:func:`colour_jitter`; not from a paper: this study's colour counterpart of the noise).
        Why: the way back must then read content from shapes whatever their colours, as it must
        in real inputs that the translations do not cover. Both draw from the global torch RNG.

        Args:
            fake: (B, C, H, W) in [-1, 1], a translation (with its graph).

        Returns:
            (B, C, H, W), possibly outside [-1, 1]; ``fake`` itself when both are off.
        """
        back_in = colour_jitter(fake, self.jitter)
        if self.noise <= 0:
            return back_in
        layout = (
            torch.channels_last
            if fake.dim() == 4 and fake.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )

        def draw(m: int) -> Tensor:  # randn_like(fake) at m rows: filled in fake's memory order
            shape = (m, *fake.shape[1:])
            return torch.empty(shape, dtype=fake.dtype, device=fake.device, memory_format=layout)

        return back_in + self.noise * local_rows(lambda m: draw(m).normal_(), len(fake))

    def generate(self, net: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """net(x) (B, C_out, H, W) and, when feature alignment is on, the bottleneck features
        (B, C', h, w) of that same pass (else None)."""
        return net.forward_with_features(x) if self.align is not None else (net(x), None)

    def discriminators(self) -> list[nn.Module]:
        """The discriminators the extensions add: [D_feat] with feature alignment, else []."""
        return [] if self.align is None else [self.align.discriminator]
