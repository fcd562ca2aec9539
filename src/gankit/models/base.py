"""What every GAN family provides to the trainer, the CLI and the generic tests.

A family owns its optimisation: ``train_step`` draws as many batches as it needs (critic
iterations), computes its losses, zeroes grads and steps its optimisers. The trainer only loops,
logs, samples, evaluates and checkpoints.
"""

from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from gankit.data import DataSpec
from gankit.lipschitz import lipschitz_report
from gankit.losses import gradient_norm, interpolate

Batch = Tensor | tuple[Tensor, ...]


class GANModel(nn.Module):
    """Base class of the families in ``gankit.models``.

    Subclasses set ``Config`` (a dataclass with a ``tiny()`` classmethod), optionally
    ``train_defaults`` (TrainConfig values that suit the family, e.g. steps, batch size, EMA) and
    ``kinds`` (the data kinds it accepts), and implement ``configure_optimizers``, ``train_step``,
    ``generators`` and ``sample``.
    """

    Config: ClassVar[type]
    train_defaults: ClassVar[dict[str, Any]] = {}
    kinds: ClassVar[tuple[str, ...]] = ("points", "images")
    conditional: ClassVar[bool] = False  # sample() takes label= (and interpolate=)

    def __init__(self, cfg: Any, spec: DataSpec) -> None:
        super().__init__()
        self.cfg = cfg
        self.spec = spec
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def setup(self) -> None:
        """Create optimisers once the networks exist (called by the trainer after ``.to``)."""
        self.optimizers = self.configure_optimizers()

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, batches: Iterator[Batch], step: int) -> dict[str, float]:
        """One generator update (and its critic updates); returns losses keyed ``loss/...``."""
        raise NotImplementedError

    def generators(self) -> dict[str, nn.Module]:
        """The modules whose EMA the trainer keeps and whose weights sampling uses."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator, **kwargs: Any) -> Tensor:
        """``n`` samples; noise drawn on the CPU from ``generator`` so every device agrees."""
        raise NotImplementedError

    def diagnostics(self, real: Tensor, fake: Tensor, generator: torch.Generator) -> dict:
        """Extra evaluation numbers (e.g. the critic's gradient norms); none by default."""
        return {}

    def training_state(self) -> dict[str, Any]:
        """Optimiser (and scheduler, pool, ...) state beyond the module weights."""
        return {"optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_training_state(self, state: dict[str, Any]) -> None:
        for key, opt_state in state["optimizers"].items():
            self.optimizers[key].load_state_dict(opt_state)

    @staticmethod
    def real(batch: Batch) -> Tensor:
        """The data part of a batch: points/images alone, or the x of an (x, y) pair."""
        return batch[0] if isinstance(batch, tuple | list) else batch

    def noise(self, n: int, z_dim: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), shape (n, z_dim): from ``generator`` on the CPU, else the device RNG."""
        if generator is None:
            return torch.randn(n, z_dim, device=self.device)
        return torch.randn(n, z_dim, generator=generator).to(self.device)


def critic_diagnostics(
    critic: nn.Module,
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator,
    clip: float | None = None,
) -> dict[str, float]:
    """‖∇ₓD‖ on interpolates (mean, max), the estimate E[D(real)] − E[D(fake)], Lipschitz bounds.

    For a 1-Lipschitz WGAN critic the estimate approximates the Earth-Mover distance (positive,
    shrinking as the generator improves) and the gradient norms stay near or below 1. The bounds
    bracket the critic's Lipschitz constant (see ``gankit.lipschitz.lipschitz_report``); ``clip``
    adds the bound that weight clipping to [-clip, clip] implies.
    """
    was_training = critic.training
    critic.eval()
    x_hat = interpolate(real.cpu(), fake.cpu(), generator).to(real.device)
    norms = gradient_norm(critic, x_hat).detach()
    with torch.no_grad():
        estimate = critic(real).mean() - critic(fake).mean()
    bounds = (
        lipschitz_report(critic.as_sequential(), real, fake, clip=clip)
        if hasattr(critic, "as_sequential")
        else {}
    )
    critic.train(was_training)
    return {
        "eval/grad_norm_mean": float(norms.mean()),
        "eval/grad_norm_max": float(norms.max()),
        "eval/critic_estimate": float(estimate),
        **{f"eval/{k}": v for k, v in bounds.items()},
    }
