"""The plain-PyTorch references of the side-by-side benchmark: the same networks as gankit's
presets (a different parameter count would make the speed comparison meaningless), and steps
that run."""

import runpy
from pathlib import Path

import pytest
import torch

SIDE = runpy.run_path(str(Path(__file__).resolve().parents[1] / "benchmarks" / "side_by_side.py"))
REFERENCES = SIDE["reference"].REFERENCES


@pytest.mark.parametrize("preset", list(REFERENCES))
def test_reference_has_gankits_parameters_per_network(preset):
    ref, gankit = REFERENCES[preset]("fp32"), SIDE["gankit_model"](preset)
    counts = SIDE["param_counts"](ref.nets)
    assert counts == {name: sum(p.numel() for p in getattr(gankit, name).parameters())
                      for name in counts}  # fmt: skip


@pytest.mark.parametrize(
    ("preset", "precision"),
    [("gan-8gaussians", "bf16"), ("wgan-gp-8gaussians", "fp32"), ("cgan-conv-mnist32", "fp32")],
)
def test_reference_step_trains_every_network(preset, precision):
    torch.manual_seed(0)
    ref = REFERENCES[preset](precision)
    before = {n: [p.detach().clone() for p in net.parameters()] for n, net in ref.nets.items()}
    ref.step()
    for name, net in ref.nets.items():
        changed = [
            not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True)
        ]
        assert any(changed), f"{name} not updated"


def test_reference_translators_keep_the_image_shape():
    """CycleGAN's ResNet-9 and DiscoGAN's encoder-decoder map (B, 3, H, W) to itself; the
    PatchGAN scores patches, DiscoGAN's critic one score per image (small inputs: fast)."""
    cycle = REFERENCES["cyclegan-resnet9-128"]("fp32").nets
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert cycle["g_ab"](x).shape == x.shape
    assert cycle["d_a"](x).shape == (1, 1, 2, 2)
    disco = REFERENCES["discogan-64"]("fp32").nets
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert disco["g_ba"](x).shape == x.shape
    assert disco["d_b"](x).shape == (2, 1)


def test_summary_ratios_are_reference_fp32_over_variant():
    def rec(variant: str, rnd: int, sec: float) -> dict:
        return {"preset": "discogan-64", "variant": variant, "round": rnd, "times": [sec],
                "sec_per_step": sec, "params": {}}  # fmt: skip

    records = [rec("ref-fp32", 0, 1.0), rec("gankit-fp32", 0, 0.5), rec("gankit-bf16", 0, 0.6)]
    records += [rec("ref-fp32", 1, 1.2), rec("gankit-fp32", 1, 1.0), rec("gankit-bf16", 1, 0.4)]
    row = SIDE["summarise"](records, "discogan-64")
    assert row["ratio_to_ref_fp32"]["gankit-fp32"] == pytest.approx(1.1 / 0.75, abs=1e-3)
    assert row["best_ratio"]["gankit-bf16"] == 3.0
    assert row["targets"]["gankit-fp32"]["reached"]  # 1.47 >= 1.3
    assert row["targets"]["gankit-bf16"]["reached"]  # 1.1 / 0.5 = 2.2 >= 2
