"""A few training steps of each family, alone or as one of several torchrun processes.

``python -m torch.distributed.run --nproc-per-node=2 tests/ddp_worker.py OUT CASE...`` trains
every CASE on 2 processes (global batch ``BATCH``) and rank 0 saves the weights to
``OUT/CASE.pt``; tests/test_distributed.py compares them with :func:`run_case` in one process.
"""

import sys
from pathlib import Path

import torch
from synthetic import stream

from gankit import distributed
from gankit.data import DataSpec
from gankit.models import MODELS

BATCH = 8
STEPS = 3
POINTS = DataSpec("points", "points", (2,))
IMAGES = DataSpec("img", "images", (1, 16, 16), num_classes=3)
PAIRS = DataSpec("grey2rgb", "unpaired", (1, 16, 16), shape_b=(3, 16, 16))

# name: (family, data, config changes from the family's tiny config)
CASES = {
    "gan-points": ("gan", POINTS, {}),
    "gan-images-batchnorm": ("gan", IMAGES, {}),
    "wgan-points": ("wgan", POINTS, {}),
    "wgan-gp-points": ("wgan-gp", POINTS, {}),
    "wgan-gp-images": ("wgan-gp", IMAGES, {}),
    "cgan-mlp": ("cgan", IMAGES, {}),
    "cgan-conv": ("cgan", IMAGES, {"arch": "conv"}),
    "cyclegan": ("cyclegan", PAIRS, {"pool_size": 4, "cycle_noise": 0.1, "cycle_jitter": 0.5}),
    "discogan": ("discogan", PAIRS, {}),
}


def run_case(name: str) -> dict:
    """Weights, optimiser moments, losses and RNG state after ``STEPS`` steps of case ``name``
    (each process training on its rows of every global batch of ``BATCH``)."""
    family, spec, changes = CASES[name]
    cls = MODELS[family]
    torch.manual_seed(0)
    cfg = cls.Config.tiny()
    for key, value in changes.items():
        setattr(cfg, key, value)
    model = cls(cfg, spec)
    # what gankit.runs.Run does to a model under torchrun
    distributed.broadcast_module(distributed.sync_batchnorm(model))
    model.setup(STEPS)
    grads: dict[str, float] = {}  # largest |gradient| each parameter got in a step
    names = {p: n for n, p in model.named_parameters()}

    def record(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        for p in (p for group in opt.param_groups for p in group["params"]):
            if p.grad is not None:
                grads[names[p]] = max(grads.get(names[p], 0.0), p.grad.abs().max().item())

    for opt in model.optimizers.values():  # after the hook that averages over processes
        opt.register_step_pre_hook(record)
    batches = (distributed.shard(b) for b in stream(spec, BATCH))
    logs = []
    for step in range(STEPS):
        logs.append(model.train_step(batches, step))
        model.end_step()
    return {
        "model": {k: v.clone() for k, v in model.state_dict().items()},
        "logs": distributed.all_mean({k: sum(float(d[k]) for d in logs) for k in logs[0]}),
        "rng": torch.get_rng_state(),
        "grads": grads,
    }


def main(out: str, names: list[str]) -> None:
    torch.set_num_threads(1)
    world = distributed.init("cpu")
    for name in names:
        result = run_case(name)
        if world.main:
            torch.save(result, Path(out) / f"{name}.pt")
    distributed.finish()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
    distributed.exit_process(0)
