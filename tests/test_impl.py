"""impl=auto|torch|gankit and compile=true: resolution, the recorded values, a torch-kernel step of
every family, torch's and gankit's kernels agreeing, checkpoints moving between them, compiled
networks; CUDA checks that run where a GPU is present."""

import json
import warnings

import pytest
import torch
from synthetic import stream

from gankit import checkpoint, conv, report
from gankit.data import DataSpec
from gankit.device import resolve_impl
from gankit.errors import GankitError
from gankit.models import MODELS
from gankit.runs import Run, resolve
from gankit.trainer import Interrupted, Trainer, autocast

CPU = torch.device("cpu")
SPECS = [
    DataSpec("points", "points", (2,)),
    DataSpec("img", "images", (1, 16, 16), num_classes=3),
    DataSpec("grey2rgb", "unpaired", (1, 16, 16), shape_b=(3, 16, 16)),
    DataSpec("toy2", "unpaired-points", (2,), shape_b=(2,)),
]
TINY = ["hidden=16", "depth=1", "batch_size=16", "eval_samples=50", "progress=false"]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("value", ["auto", "torch", "gankit"])
def test_config_accepts_each_impl(value):
    assert resolve("gan", "8gaussians", None, [f"impl={value}"]).train.impl == value


def test_a_bad_impl_is_one_line():
    with pytest.raises(GankitError) as err:
        resolve("gan", "8gaussians", None, ["impl=fast"])
    assert str(err.value) == "impl='fast' is not one of auto, torch, gankit"
    with pytest.raises(GankitError, match="^unknown impl 'fast': use auto, torch or gankit$"):
        resolve_impl("fast", CPU)


def test_auto_is_torch_on_cuda_and_the_family_choice_on_a_cpu():
    cuda = torch.device("cuda")  # a device object only: nothing runs on it
    assert resolve_impl("auto", cuda, "gankit") == "torch"
    assert resolve_impl("auto", CPU, "gankit") == "gankit"
    assert resolve_impl("auto", CPU, "torch") == "torch"
    assert resolve_impl("gankit", cuda) == "gankit" and resolve_impl("torch", CPU) == "torch"
    run = Run(resolve("gan", "8gaussians", None, TINY), CPU)
    assert run.impl == run.model.cpu_impl() == "gankit" and run.resolved["impl"] == run.impl
    spec = DataSpec("img", "images", (1, 16, 16), num_classes=3)
    cgan, cfg = MODELS["cgan"], MODELS["cgan"].Config.tiny()
    assert cgan(cfg, spec).cpu_impl() == "gankit"  # the MLP: a tie, measured
    cfg.arch = "conv"
    assert cgan(cfg, spec).cpu_impl() == "torch"  # the conv model: torch's kernels, measured


def test_checkpoints_and_the_first_record_hold_the_resolved_values(tmp_path):
    cfg = resolve("gan", "8gaussians", None, [*TINY, "steps=4", "log_every=2", "impl=torch"])
    run = Run(cfg, CPU)
    Trainer(run, tmp_path / "r").fit()
    want = {"device": "cpu", "precision": "fp32", "impl": "torch", "compile": []}
    assert run.resolved == want
    last = checkpoint.latest(tmp_path / "r" / "checkpoints")
    assert checkpoint.load(last)["resolved"] == want
    records = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["resolved"] == want and "loss/d" in records[0]
    assert all("resolved" not in r for r in records[1:])
    loaded = Run.from_checkpoint(last, overrides=["impl=gankit"])
    assert loaded.impl == "gankit" and loaded.evaluate(n=10)["resolved"] == want
    assert report.run_view(report.read_run(tmp_path / "r"), 0).resolved == (
        "cpu · fp32 · impl torch · compile off"
    )


def _cases() -> list[tuple[str, DataSpec]]:
    return [(n, s) for n in sorted(MODELS) for s in SPECS if s.kind in MODELS[n].kinds]


@pytest.mark.parametrize(("name", "spec"), _cases(), ids=lambda v: getattr(v, "kind", v))
def test_torch_kernels_train_one_step_of_every_family(name, spec):
    cls = MODELS[name]
    torch.manual_seed(0)
    model = cls(cls.Config.tiny(), spec)
    model.use_impl("torch")
    model.setup()
    logs = model.train_step(stream(spec, 8), step=30)
    assert {"loss/d", "loss/g"} <= set(logs)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logs.values())
    assert not any(getattr(m, "gemm", False) for m in model.modules())
    assert all(p.is_contiguous() for p in model.parameters())
    for opt in model.optimizers.values():
        assert type(opt) in (torch.optim.Adam, torch.optim.RMSprop)
        assert type(opt) is torch.optim.RMSprop or opt.defaults["fused"]


def test_train_step_returns_detached_values_not_host_floats():
    cls, spec = MODELS["cyclegan"], SPECS[2]
    model = cls(cls.Config.tiny(), spec)
    model.setup()
    logs = model.train_step(stream(spec, 4), step=0)
    assert all(torch.is_tensor(v) and v.dim() == 0 and not v.requires_grad for v in logs.values())


def _conv_cgan(impl: str) -> tuple[torch.nn.Module, dict[str, float]]:
    """A cGAN whose critic has a 128 → 256 conv on 8×8 maps: gankit runs it as GEMMs."""
    cls, spec = MODELS["cgan"], DataSpec("img", "images", (1, 32, 32), num_classes=3)
    torch.manual_seed(0)
    cfg = cls.Config.tiny()
    cfg.arch, cfg.base = "conv", 64
    model = cls(cfg, spec)
    model.use_impl(impl)
    model.setup()
    logs = {k: float(v) for k, v in model.train_step(stream(spec, 4), 0).items()}
    return model, logs


def test_torch_and_gankit_kernels_agree_on_a_tiny_conv_model():
    gankit, gankit_logs = _conv_cgan("gankit")
    wide = [m for m in gankit.modules() if isinstance(m, conv.Conv2d) and m.gemm]
    assert any(conv.wide_enough(m, transposed=False) for m in wide)  # the GEMM path ran
    plain, torch_logs = _conv_cgan("torch")
    assert gankit_logs == pytest.approx(torch_logs, rel=1e-4, abs=1e-5)
    a, b = gankit.state_dict(), plain.state_dict()
    assert a.keys() == b.keys()
    for k in a:  # Adam's normalised steps magnify rounding of near-zero gradients to ~lr
        assert torch.allclose(a[k], b[k], rtol=1e-3, atol=5e-4), k


def test_optimiser_state_takes_the_layout_of_the_other_impls_weights():
    cls, spec = MODELS["discogan"], SPECS[2]

    def model(impl: str) -> torch.nn.Module:
        torch.manual_seed(0)
        m = cls(cls.Config.tiny(), spec)
        m.use_impl(impl)
        m.setup()
        return m

    for saved, loaded in (("gankit", "torch"), ("torch", "gankit")):
        source, target = model(saved), model(loaded)
        source.train_step(stream(spec, 4), step=0)
        target.load_state_dict(source.state_dict())
        target.load_training_state(source.training_state())
        for opt in target.optimizers.values():
            for p, state in opt.state.items():
                moments = [v for v in state.values() if v.shape == p.shape]
                assert moments and all(v.stride() == p.stride() for v in moments)


def test_compile_keeps_state_dict_keys_and_leaves_a_penalised_critic_eager():
    plain = Run(resolve("wgan-gp", "8gaussians", None, TINY), CPU)
    with pytest.warns(UserWarning, match="critic stays eager.*double backward"):
        compiled = Run(resolve("wgan-gp", "8gaussians", None, [*TINY, "compile=true"]), CPU)
    assert compiled.compiled == ["generator"] and compiled.resolved["compile"] == ["generator"]
    assert compiled.model.state_dict().keys() == plain.model.state_dict().keys()
    compiled.load_state_dict(plain.state_dict())  # compiling is lazy: nothing traced yet
    plain.load_state_dict(compiled.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no penalty, nothing left eager, no note
        sn = Run(
            resolve("wgan-gp", "8gaussians", None, [*TINY, "compile=true", "constraint=sn"]), CPU
        )
    assert sn.compiled == ["generator", "critic"]


@pytest.mark.slow
def test_compiled_resume_equals_uninterrupted(tmp_path):
    every = ["ckpt_every=3", "eval_every=4", "sample_every=100", "ema=true", "compile=true"]

    def run() -> Run:
        return Run(resolve("gan", "8gaussians", None, [*TINY, "steps=6", *every]), CPU)

    straight = run()
    Trainer(straight, tmp_path / "a").fit()
    first = run()
    with pytest.raises(Interrupted, match="stopped at step 4"):
        Trainer(first, tmp_path / "b").fit(stop_after=4)
    resumed = Run.from_checkpoint(checkpoint.latest(tmp_path / "b" / "checkpoints"))
    assert resumed.compiled == ["generator", "discriminator"]
    Trainer(resumed, tmp_path / "b").fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed compiled weights differ"
    eager = Run.from_checkpoint(checkpoint.latest(tmp_path / "a" / "checkpoints"), overrides=[
        "compile=false"
    ])  # fmt: skip
    assert eager.compiled == [] and eager.step == 6


# ------------------------------------------------------------------ CUDA (skipped without one)


@CUDA
def test_auto_runs_torch_kernels_on_cuda():
    run = Run(resolve("gan", "8gaussians", None, TINY), torch.device("cuda"))
    assert run.impl == "torch" and run.resolved["device"].startswith("cuda")
    assert all(
        type(o) is torch.optim.Adam and o.defaults["fused"] for o in run.model.optimizers.values()
    )


@CUDA
@pytest.mark.parametrize("impl", ["torch", "gankit"])
def test_a_cuda_step_of_a_conv_family(impl):
    cls, spec = MODELS["discogan"], SPECS[2]
    model = cls(cls.Config.tiny(), spec).cuda()
    model.use_impl(impl)
    model.setup()
    batches = ((a.cuda(), b.cuda()) for a, b in stream(spec, 4))
    logs = model.train_step(batches, step=0)
    assert all(v.device.type == "cuda" and torch.isfinite(v) for v in logs.values())


@CUDA
def test_a_bf16_step_on_cuda_keeps_fp32_weights():
    cls, spec = MODELS["cgan"], SPECS[1]
    model = cls(cls.Config.tiny(), spec).cuda()
    model.use_impl("torch")
    model.setup()
    batches = ((x.cuda(), y.cuda()) for x, y in stream(spec, 8))
    with autocast(torch.device("cuda"), "bf16"):
        logs = model.train_step(batches, step=0)
    assert all(torch.isfinite(v) for v in logs.values())
    assert all(p.dtype == torch.float32 for p in model.parameters())
