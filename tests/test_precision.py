"""bf16 mixed precision: the option, its ``auto`` detection, a bf16 step of every family, the
gradient penalty under autocast, and exact resume in bf16."""

import pytest
import torch
from synthetic import stream
from torch import nn

from gankit import checkpoint, device, losses
from gankit.config import TrainConfig, apply
from gankit.data import DataSpec
from gankit.errors import GankitError
from gankit.models import MODELS
from gankit.runs import Run, resolve
from gankit.trainer import Interrupted, Trainer, autocast

CPU = torch.device("cpu")
POINTS = DataSpec("points", "points", (2,))
IMAGES = DataSpec("img", "images", (1, 28, 28), num_classes=3)
PAIRS = DataSpec("grey2rgb", "unpaired", (1, 32, 32), shape_b=(3, 32, 32))


@pytest.mark.parametrize("value", ["fp32", "bf16", "auto"])
def test_config_accepts_each_precision(value):
    assert apply(TrainConfig(), {"precision": value}, "train").precision == value


def test_config_rejects_another_precision_in_one_line():
    with pytest.raises(GankitError, match="fp16") as err:
        apply(TrainConfig(), {"precision": "fp16"}, "train")
    assert "\n" not in str(err.value) and "fp32, bf16, auto" in str(err.value)
    assert TrainConfig().precision == "fp32"


@pytest.mark.parametrize(
    "flags, expected",
    [({"avx2", "avx512_bf16"}, "bf16"), ({"amx_bf16", "sse2"}, "bf16"), ({"avx512f"}, "fp32")],
)
def test_auto_resolves_by_the_cpu_flags(monkeypatch, flags, expected):
    monkeypatch.setattr(device, "cpu_flags", lambda: flags)
    assert device.resolve_precision("auto", CPU) == expected
    assert device.resolve_precision("fp32", CPU) == "fp32"
    assert device.resolve_precision("bf16", CPU) == "bf16"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\n")
    assert device.cpu_flags(info) == {"fpu", "avx512f", "avx512_bf16"}
    assert device.cpu_flags(tmp_path / "missing") == set()


def test_a_run_records_the_resolved_precision(monkeypatch):
    monkeypatch.setattr(device, "cpu_flags", lambda: set())
    cfg = resolve("gan", "8gaussians", None, ["precision=auto", "hidden=8", "depth=1"])
    assert Run(cfg, CPU).precision == "fp32"
    assert cfg.train.precision == "auto"  # config.yaml keeps the request, like device


FAMILIES = [(name, spec) for name in sorted(MODELS) for spec in (POINTS, IMAGES, PAIRS)]


@pytest.mark.parametrize(
    "name, spec",
    [(n, s) for n, s in FAMILIES if s.kind in MODELS[n].kinds],
    ids=lambda v: getattr(v, "name", v),
)
def test_a_bf16_step_of_every_family_keeps_fp32_weights(name, spec):
    cls = MODELS[name]
    model = cls(cls.Config.tiny(), spec)
    model.setup()
    with autocast(CPU, "bf16"):
        logs = model.train_step(stream(spec, 8), step=30)
    assert logs and all(torch.isfinite(torch.as_tensor(v)) for v in logs.values())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    for opt in model.optimizers.values():
        for state in opt.state.values():
            assert all(v.dtype == torch.float32 for v in state.values() if v.dim() > 0)


def test_losses_are_fp32_from_bf16_outputs():
    out = torch.randn(16, 1).bfloat16()
    assert losses.d_loss_bce(out, out).dtype == torch.float32
    assert losses.g_loss_wasserstein(out).dtype == torch.float32
    assert losses.recon_l1(out, out.flip(0)).dtype == torch.float32


def test_gradient_penalty_under_bf16_matches_fp32():
    torch.manual_seed(0)
    critic = nn.Sequential(
        nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1)
    )
    real, fake = torch.randn(64, 2), torch.randn(64, 2)

    def grads(precision: str) -> list[torch.Tensor]:
        critic.zero_grad()
        with autocast(CPU, precision):
            gen = torch.Generator().manual_seed(3)
            gp = losses.gradient_penalty(critic, real, fake.bfloat16().float(), generator=gen)
        assert gp.dtype == torch.float32
        gp.backward()
        return [p.grad.clone() for p in critic.parameters() if p.grad is not None]

    fp32, bf16 = grads("fp32"), grads("bf16")
    assert len(fp32) == len(bf16) > 0
    for a, b in zip(fp32, bf16, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
        assert a.abs().sum() > 0


def test_bf16_resume_equals_uninterrupted(tmp_path):
    every = ["ckpt_every=7", "eval_every=6", "sample_every=100", "ema=true", "precision=bf16"]
    tiny = ["hidden=32", "depth=2", "batch_size=32", "eval_samples=100", "progress=false"]

    def run() -> Run:
        return Run(resolve("wgan-gp", "8gaussians", None, [*tiny, "steps=16", *every]), CPU)

    straight = run()
    assert straight.precision == "bf16"
    Trainer(straight, tmp_path / "a").fit()
    first = run()
    with pytest.raises(Interrupted, match="stopped at step 9"):
        Trainer(first, tmp_path / "b").fit(stop_after=9)
    resumed = Run.from_checkpoint(checkpoint.latest(tmp_path / "b" / "checkpoints"))
    assert resumed.precision == "bf16"
    Trainer(resumed, tmp_path / "b").fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed bf16 weights differ"
    fp32 = Run(resolve("wgan-gp", "8gaussians", None, [*tiny, "steps=16", *every[:-1]]), CPU)
    Trainer(fp32, tmp_path / "c").fit()
    w = fp32.model.state_dict()
    assert not all(torch.equal(a[k], w[k]) for k in a), "bf16 changed nothing"
