"""What every GAN family provides to the trainer, the CLI and the generic tests.

A family owns its optimisation: ``train_step`` draws as many batches as it needs (critic
iterations), computes its losses, zeroes grads and steps its optimisers. The trainer only loops,
logs, samples, evaluates and checkpoints.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from gankit.conv import use_torch_kernels
from gankit.data import DataSpec
from gankit.distributed import local_rows, sync_optimizers
from gankit.errors import GankitError
from gankit.lipschitz import lipschitz_report
from gankit.losses import gradient_norm, interpolate
from gankit.nn_translation import channels_last, require_inputs
from gankit.optim import Adam, ChannelsLastAdam, align_moments

Batch = Tensor | tuple[Tensor, ...]
# what train_step returns: detached 0-dim tensors (or floats), read by the trainer at log steps
Logs = dict[str, Tensor | float]

# the generator key that maps each way, for translation families (code names → paper: g_ab = G,
# g_ba = F); `gankit translate/export --direction` and the translation metrics read it
DIRECTIONS = {"AtoB": "g_ab", "BtoA": "g_ba"}


class GANModel(nn.Module):
    """Base class of the families in ``gankit.models``.

    Everything the trainer, evaluation, the API and the CLI call on a model is declared here.
    Subclasses set ``Config`` (a dataclass with a ``tiny()`` classmethod), optionally
    ``train_defaults`` (TrainConfig values that suit the family, e.g. steps, batch size, EMA) and
    ``kind_defaults`` (config values that suit one data kind), ``kinds`` (the data kinds it
    accepts), and implement ``configure_optimizers``, ``train_step``, ``generators`` and
    ``sample``. The capabilities evaluation chooses metrics by:

    * ``conditional``: ``sample(label=...)`` and :meth:`labels_for` (class-conditional scores);
    * ``needs_inputs``: a translator; :meth:`translate` and :meth:`directions` (translation
      scores instead of sample scores).
    """

    Config: ClassVar[type]
    train_defaults: ClassVar[dict[str, Any]] = {}
    # family-config values for one kind of data, applied before YAML and CLI values
    kind_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    kinds: ClassVar[tuple[str, ...]] = ("points", "images")
    conditional: ClassVar[bool] = False  # sample() takes label= (and interpolate=)
    # sample()/preview() translate real examples: the trainer passes inputs=(xa, xb), drawn by
    # data.examples(n, seed), instead of the model drawing noise
    needs_inputs: ClassVar[bool] = False

    def __init__(self, cfg: Any, spec: DataSpec) -> None:
        super().__init__()
        self.cfg = cfg
        self.spec = spec
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.impl = "gankit"  # the kernels as built; use_impl("torch") switches to torch's

    def cpu_impl(self) -> str:
        """The training kernels ``impl=auto`` picks on a CPU for this model: the faster of
        "gankit" and "torch", as measured with ``benchmarks/impl_compile.py --impl`` (see
        docs/benchmarks.md); on CUDA auto is always torch."""
        return "gankit"

    def use_impl(self, impl: str) -> None:
        """Train with ``impl``'s kernels ("gankit" or "torch"); call before :meth:`setup`.

        "torch": every gankit convolution runs torch's own forward (:func:`use_torch_kernels`),
        4-D weights go back to the default (NCHW) layout, inputs are not made channels-last and
        the optimisers are ``torch.optim.Adam(fused=True)``. Weights and state dicts are the
        same, so a checkpoint loads under either.
        """
        self.impl = impl
        if impl == "torch":
            use_torch_kernels(self)
            self.to(memory_format=torch.contiguous_format)

    def conv_layout(self, x: Tensor) -> Tensor:
        """Images in the layout this model's convolutions run fastest in: channels-last for
        gankit's kernels (see ``gankit.conv``), unchanged for torch's."""
        return channels_last(x) if self.impl == "gankit" else x

    def fused_adam(self, params: list[nn.Parameter], **kwargs: Any) -> torch.optim.Optimizer:
        """Adam with one fused kernel for all ``params``: gankit's ``ChannelsLastAdam`` (no
        layout copies for channels-last weights, no dynamo import) or, for ``impl`` "torch",
        ``torch.optim.Adam``; the same updates."""
        cls = torch.optim.Adam if self.impl == "torch" else ChannelsLastAdam
        return cls(params, fused=True, **kwargs)

    def double_backward(self) -> list[str]:
        """Names of the networks whose gradients are differentiated again (a gradient penalty's
        critic): torch.compile does not support that, so ``compile=true`` leaves them eager."""
        return []

    def compile_networks(self) -> list[str]:
        """torch.compile the forward of each network (direct child module) in place; returns
        the names compiled. State-dict keys do not change.

        Not ``module.compile()``: that compiles ``Module._call_impl``, a frame torch's dynamo
        skips as torch code, so a network whose forward is torch's own (an ``nn.Sequential``
        MLP) ran uncompiled.
        """
        eager = set(self.double_backward())
        compiled = []
        for name, net in self.named_children():
            if name in eager:
                continue
            net.forward = torch.compile(net.forward)
            compiled.append(name)
        if eager:
            warnings.warn(
                f"compile=true: {', '.join(sorted(eager))} stays eager (its gradient penalty "
                "needs a double backward, which torch.compile does not support)",
                stacklevel=2,
            )
        return compiled

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def setup(self, total_steps: int = 1) -> None:
        """Create optimisers and LR schedules once the networks exist (after ``.to``).

        A config field ``lr_decay`` = f keeps the learning rate constant for the first (1 − f) of
        ``total_steps`` and then lowers it linearly to 0 (f = 0: constant; CycleGAN uses 0.5).
        """
        self.optimizers = self.configure_optimizers()
        sync_optimizers(self.optimizers)  # several processes: gradients averaged before a step
        decay = getattr(self.cfg, "lr_decay", 0.0)
        start = total_steps * (1.0 - decay)

        def factor(step: int) -> float:
            if step < start:
                return 1.0
            return max(0.0, (total_steps - step) / max(total_steps - start, 1.0))

        self.schedulers = {
            k: torch.optim.lr_scheduler.LambdaLR(opt, factor) for k, opt in self.optimizers.items()
        }

    def end_step(self) -> None:
        """Advance the LR schedules by one generator step (called by the trainer)."""
        for scheduler in self.schedulers.values():
            scheduler.step()

    def title(self, family: str) -> str:
        """The name on sample pictures: ``family``, plus whatever sets this run apart."""
        return family

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, batches: Iterator[Batch], step: int) -> Logs:
        """One generator update (and its critic updates); returns losses keyed ``loss/...`` as
        detached tensors (or floats): reading a device value here would wait for the device
        at every step, so the trainer reads them only when it logs."""
        raise NotImplementedError

    def generators(self) -> dict[str, nn.Module]:
        """The modules whose EMA the trainer keeps and whose weights sampling uses."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator, **kwargs: Any) -> Tensor:
        """``n`` samples; noise drawn on the CPU from ``generator`` so every device agrees.

        Translators (``needs_inputs``) by default return G(a), A → B, of the first ``n`` of
        ``inputs`` = (xa, xb) (fewer when fewer are given).
        """
        if not self.needs_inputs:
            raise NotImplementedError
        xa, _ = require_inputs(kwargs.get("inputs"), n, type(self).__name__.lower())
        return self.translate(xa, "AtoB")

    @torch.no_grad()
    def preview(self, n: int, *, generator: torch.Generator, **kwargs: Any) -> tuple[Tensor, int]:
        """The picture the trainer saves every ``sample_every`` steps: images, images per row.

        By default ``n`` samples, 10 per row; translation families show ``n`` rows of inputs,
        translations and reconstructions instead.
        """
        return self.sample(n, generator=generator, **kwargs), 10

    def labels_for(self, n: int, label: int | None) -> Tensor:
        """Conditional families: y (n,) int64 for ``n`` samples of ``label`` (None: every class
        in equal consecutive blocks, one grid row each)."""
        raise GankitError(f"{type(self).__name__} is unconditional: it takes no label")

    def translate(self, x: Tensor, direction: str = "AtoB") -> Tensor:
        """Translation families: x (B, C_a, H, W) in [-1, 1] → its translation, in eval mode."""
        raise GankitError(f"{type(self).__name__} does not translate: it samples from noise")

    def directions(self) -> dict[str, str]:
        """The directions this model translates, each with its generator's key in
        :meth:`generators` (e.g. {"AtoB": "g_ab", "BtoA": "g_ba"}); none for samplers."""
        if not self.needs_inputs:
            return {}
        nets = self.generators()
        return {d: key for d, key in DIRECTIONS.items() if key in nets}

    def diagnostics(self, real: Tensor, fake: Tensor, generator: torch.Generator) -> dict:
        """Extra evaluation numbers (e.g. the critic's gradient norms); none by default."""
        return {}

    def training_state(self) -> dict[str, Any]:
        """Optimiser (and scheduler, pool, ...) state beyond the module weights."""
        return {
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        for key, opt_state in state["optimizers"].items():
            self.optimizers[key].load_state_dict(opt_state)
            align_moments(self.optimizers[key])  # saved under the other impl's weight layout
        for key, sched_state in state.get("schedulers", {}).items():
            sched = self.schedulers[key]
            sched.load_state_dict(sched_state)
            # the saved optimiser holds the LR of the saved schedule; a run resumed with more
            # steps has a new schedule, so set the LR it gives at this step
            for group, base, fn in zip(
                sched.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas, strict=True
            ):
                group["lr"] = base * fn(sched.last_epoch)

    @staticmethod
    def real(batch: Batch) -> Tensor:
        """The data part of a batch: points/images alone, or the x of an (x, y) pair."""
        return batch[0] if isinstance(batch, tuple | list) else batch

    def noise(self, n: int, z_dim: int, generator: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I), shape (n, z_dim): from ``generator`` on the CPU, else the device RNG."""
        if generator is None:  # a training step's noise: every rank draws the global batch's
            return local_rows(lambda m: torch.randn(m, z_dim, device=self.device), n)
        return torch.randn(n, z_dim, generator=generator).to(self.device)


def player_optimizers(
    opt: type[torch.optim.Optimizer],
    generator: nn.Module,
    critic: nn.Module,
    *,
    impl: str = "gankit",
    **kwargs: Any,
) -> dict[str, torch.optim.Optimizer]:
    """The same optimiser for both players: keys "g" (generator) and "d" (discriminator/critic).

    Adam runs fused (one kernel for all parameters, CPU and CUDA): measured 121 vs 146 ms per
    MLP cGAN step at 32×32 on 2 cores, where the per-parameter loop re-reads every tensor.
    With ``impl`` "torch", gankit's Adam becomes ``torch.optim.Adam`` (the same updates).
    """
    if impl == "torch" and issubclass(opt, Adam):
        opt = torch.optim.Adam
    if issubclass(opt, (torch.optim.Adam, torch.optim.AdamW)):
        kwargs = {"fused": True, **kwargs}
    return {"g": opt(generator.parameters(), **kwargs), "d": opt(critic.parameters(), **kwargs)}


def exact_sum(*terms: Tensor) -> Tensor:
    """Detached 0-dim losses summed in float64, as Python added their ``.item()`` values (a
    float32 sum would round otherwise), without reading them back from the device."""
    return sum((t.detach().double() for t in terms), start=torch.zeros((), dtype=torch.float64))


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Build graphs in which the ``modules``' parameters are constants: backward skips their grads.

    For the generator's loss through the discriminator: D's weight gradients from it would be
    thrown away before D's next step, so computing and holding them costs time and memory only.
    The flags are restored on exit; a graph built inside keeps no path to the parameters.
    """
    params = [p for module in modules for p in module.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


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
