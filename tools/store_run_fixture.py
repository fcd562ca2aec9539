"""Store two tiny runs of this gankit version as a test fixture, with what they sample and score.

    python tools/store_run_fixture.py            # -> tests/data/runs-<version>/

Later versions must load these run directories and give the same samples and scores
(tests/test_old_runs.py). Run it once per release whose checkpoint format changed; never
regenerate an existing fixture.
"""

import argparse
import json
import os
import shutil
from pathlib import Path

import torch

import gankit

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
RUNS = {  # name: (model, data, settings, samples and evaluation size)
    "wgan-gp-toy": (
        "wgan-gp",
        "8gaussians",
        {"steps": 4, "batch_size": 32, "log_every": 2, "eval_samples": 100, "hidden": 16},
        100,
    ),
    "cyclegan-folder": (
        "cyclegan",
        "pair",
        {"steps": 2, "batch_size": 2, "image_size": 16, "log_every": 1, "eval_samples": 10}
        | {"ngf": 4, "ndf": 4, "blocks": 1, "n_down": 0, "n_layers": 0, "pool_size": 2},
        4,
    ),
}
QUIET = {"sample_every": 1000, "eval_every": 1000, "ckpt_every": 1000, "ema": False}


def store(name: str, out: Path) -> dict:
    model, data, settings, n = RUNS[name]
    gankit.train(model, data, out=name, progress=False, **QUIET, **settings)
    for extra in ("tb", "samples", "metrics.jsonl"):  # only config and checkpoint are kept
        path = out / name / extra
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    run = gankit.load(name)
    x = run.sample(n, seed=3)
    scores = run.evaluate(n=10 if model == "cyclegan" else 100)
    (out / name / "metrics.jsonl").unlink(missing_ok=True)
    return {
        "step": run.step,
        "shape": list(x.shape),
        "abs_sum": float(x.double().abs().sum()),
        "first": x.flatten()[:4].tolist(),
        "metrics": {k: float(v) for k, v in scores.items() if k.startswith("eval/")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA / f"runs-{gankit.__version__}")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists: a stored fixture is never regenerated")
    torch.set_num_threads(2)
    args.out.mkdir(parents=True)
    shutil.copytree(DATA / "runs-0.1.0" / "pair", args.out / "pair")  # the translation data
    os.chdir(args.out)  # the CycleGAN's data path is relative, as in the older fixture
    expected = {name: store(name, args.out) for name in RUNS}
    (args.out / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"stored {', '.join(RUNS)} in {args.out}")


if __name__ == "__main__":
    main()
