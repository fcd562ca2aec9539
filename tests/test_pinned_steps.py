"""A few training steps of every family, pinned against values stored from an earlier version.

Restructuring code (moving modules, splitting a family's options out of its core) must not
change what a model computes. Each case builds a tiny model, runs three generator steps on a fixed
stream and compares the losses, a checksum of every weight and the samples with
``tests/data/pinned_steps.json``. On the machine and thread count that wrote the file the match
is exact (bit for bit); elsewhere float sums run in another order, so a small relative tolerance
applies. Regenerate with ``python tests/test_pinned_steps.py --write`` only when a change of
results is intended.
"""

import hashlib
import json
import platform
import sys
from pathlib import Path

import pytest
import torch
from synthetic import stream

from gankit.data import DataSpec
from gankit.models import MODELS

PINS = Path(__file__).parent / "data" / "pinned_steps.json"
SPECS = {
    "points": DataSpec("points", "points", (2,)),
    "images": DataSpec("img", "images", (1, 16, 16), num_classes=3),
    "unpaired": DataSpec("grey2rgb", "unpaired", (1, 16, 16), shape_b=(3, 16, 16)),
    "unpaired-points": DataSpec("toy2", "unpaired-points", (2,), shape_b=(2,)),
    "unpaired-rgb": DataSpec("rgb2rgb", "unpaired", (3, 16, 16), shape_b=(3, 16, 16)),
}
# (case name, family, data kind, config overrides): every family on every kind it accepts, plus
# the optional terms that restructuring is most likely to move
CASES = [
    (f"{name}-{kind}", name, kind, {})
    for name in sorted(MODELS)
    for kind in SPECS
    if kind in MODELS[name].kinds
] + [
    ("cyclegan-identity", "cyclegan", "unpaired-rgb", {"identity": 0.5}),
    ("cyclegan-weight-b0", "cyclegan", "unpaired", {"cycle_weight_b": 0.0}),
    ("cyclegan-noise", "cyclegan", "unpaired", {"cycle_noise": 0.1}),
    ("cyclegan-jitter", "cyclegan", "unpaired", {"cycle_jitter": 1.0}),
    ("cyclegan-align", "cyclegan", "unpaired", {"feature_align": 3.0}),
    ("cyclegan-ndown1", "cyclegan", "unpaired", {"n_down": 1}),
    ("cyclegan-unet", "cyclegan", "unpaired", {"arch": "unet"}),
    ("discogan-gan-recon", "discogan", "unpaired", {"variant": "gan-recon"}),
    ("discogan-gan", "discogan", "unpaired-points", {"variant": "gan"}),
    ("cgan-conv-projection", "cgan", "images", {"arch": "conv", "cond": "projection"}),
    ("cgan-hinge", "cgan", "images", {"loss": "hinge"}),
    ("wgan-gp-sn", "wgan-gp", "points", {"constraint": "sn"}),
]


def machine() -> str:
    """Where exact equality can be expected: same CPU, instruction set, threads and torch."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = [ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        model = lines[0].split(":", 1)[1].strip() if lines else ""
    return "|".join(
        [
            platform.machine(),
            model,
            torch.backends.cpu.get_cpu_capability(),
            f"threads={torch.get_num_threads()}",
            torch.__version__,
        ]
    )


def _stream(spec: DataSpec, n: int = 8):
    return stream(spec, n)


def run_case(family: str, kind: str, overrides: dict) -> dict:
    """Three steps from seed 0; the losses, a weight checksum and a sample checksum."""
    cls, spec = MODELS[family], SPECS[kind]
    if spec.kind not in cls.kinds:
        raise ValueError(f"{family} does not train on {spec.kind}")
    torch.manual_seed(0)
    cfg = cls.Config.tiny()
    for key, value in overrides.items():
        setattr(cfg, key, value)
    model = cls(cfg, spec)
    model.setup(total_steps=4)
    stream = _stream(spec)
    losses = []
    for step in range(3):
        logs = model.train_step(stream, step)
        model.end_step()
        losses.append({k: float(logs[k]) for k in sorted(logs)})
    weights = [t.detach().contiguous() for _, t in sorted(model.state_dict().items())]
    digest = hashlib.sha256(b"".join(t.cpu().numpy().tobytes() for t in weights)).hexdigest()
    kwargs = {"inputs": next(_stream(spec, 4))} if cls.needs_inputs else {}
    model.eval()
    out = model.sample(4, generator=torch.Generator().manual_seed(1), **kwargs)
    return {
        "losses": losses,
        "weights_sha256": digest,
        "weights_abs_sum": float(
            sum(t.double().abs().sum() for t in weights if t.is_floating_point())
        ),
        "sample_sha256": hashlib.sha256(out.contiguous().numpy().tobytes()).hexdigest(),
        "sample_abs_sum": float(out.double().abs().sum()),
    }


@pytest.fixture(scope="module")
def pins() -> dict:
    return json.loads(PINS.read_text())


@pytest.mark.parametrize(("case", "family", "kind", "overrides"), CASES, ids=[c[0] for c in CASES])
def test_training_steps_match_the_pinned_values(pins, case, family, kind, overrides):
    expected = pins["cases"][case]
    got = run_case(family, kind, overrides)
    if pins["machine"] == machine():
        assert got == expected
        return
    # another CPU or thread count: three steps of float work agree closely, not bit for bit
    for mine, theirs in zip(got["losses"], expected["losses"], strict=True):
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-3, abs=1e-4), key
    assert got["weights_abs_sum"] == pytest.approx(expected["weights_abs_sum"], rel=1e-4)
    # samples pass eval-mode batch norm with running statistics of 8-image batches, which
    # magnify summation-order differences (0.7% for DiscoGAN with 1 thread against 2)
    assert got["sample_abs_sum"] == pytest.approx(expected["sample_abs_sum"], rel=3e-2, abs=1e-4)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/test_pinned_steps.py --write")
    torch.set_num_threads(2)  # as tests/conftest.py does
    PINS.parent.mkdir(exist_ok=True)
    cases = {name: run_case(family, kind, ov) for name, family, kind, ov in CASES}
    PINS.write_text(json.dumps({"machine": machine(), "cases": cases}, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {PINS}")
