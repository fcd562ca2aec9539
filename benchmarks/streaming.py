"""Streamed vs in-memory trainA/trainB folders: CycleGAN step time and peak memory.

Generates (once, into ``--cache``) a folder of ``--images`` 128-px JPEGs split evenly between
trainA and trainB (smooth random colour fields with noise), plus a folder of ``--small`` images
(hard links to the first ones), each with a testA/testB of 20 images so the test splits held in
memory are the same size. Then, in rounds that interleave the modes (the machine is shared:
load drifts over minutes), each run in its own subprocess:

* ``stream-large``: the large folder streamed (``stream=true``, default workers);
* ``memory-large``: the large folder decoded into memory (``stream=false``);
* ``stream-small``: the small folder streamed.

Each run builds the preset's Run (``cyclegan-128``, see PRESETS, or ``--preset`` NAME of
benchmarks/run.py), takes 2 untimed steps, times ``--steps`` steps and reports seconds per step,
the seconds to the first batch (the in-memory mode decodes every image first), the process's
peak RSS (VmHWM) and its DataLoader workers' private memory (Private_Clean + Private_Dirty of
/proc/PID/smaps_rollup; a forked worker's RSS would count the pages it shares with the
training process). Results as JSON (``make bench-streaming``).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image

TEST_IMAGES = 20  # per test folder, the same for both sizes
# CycleGAN at 128 px with the family's CPU defaults (ngf 16, ndf 32, ResNet generators), batch 1:
# the default, since the paper-width preset of benchmarks/run.py (--preset
# cyclegan-resnet9-128) takes minutes per run on a shared 2-core machine; a cheaper step also
# makes reading the data a larger share of it
PRESETS = {"cyclegan-128": ("cyclegan", ["image_size=128", "batch_size=1"])}


def make_image(index: int, side: int) -> "Image":
    """A smooth random colour field with noise (JPEG-like content, distinct per index)."""
    from PIL import Image

    rng = np.random.default_rng(index)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    field = np.asarray(coarse.resize((side, side), Image.Resampling.BICUBIC), np.int16)
    noise = rng.integers(-12, 13, field.shape, dtype=np.int16)
    return Image.fromarray(np.clip(field + noise, 0, 255).astype(np.uint8))


def generate(root: Path, images: int, side: int = 128) -> Path:
    """``root/{trainA,trainB}`` with ``images // 2`` JPEGs each, ``testA/testB`` with 20; kept
    when a previous call finished (``root/.complete``)."""
    if (root / ".complete").exists():
        return root
    for sub in ("trainA", "trainB", "testA", "testB"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    per = images // 2
    for i in range(images + 2 * TEST_IMAGES):
        if i < images:
            sub, k = ("trainA", "trainB")[i % 2], i // 2
        else:
            sub, k = ("testA", "testB")[i % 2], (i - images) // 2
        make_image(i, side).save(root / sub / f"{k:06d}.jpg", quality=90)
    assert len(list((root / "trainA").iterdir())) == per
    (root / ".complete").touch()
    return root


def linked_subset(large: Path, root: Path, images: int) -> Path:
    """A folder of the first ``images // 2`` train images of each domain of ``large`` (hard
    links) and the same test images."""
    if (root / ".complete").exists():
        return root
    for sub in ("trainA", "trainB", "testA", "testB"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        files = sorted((large / sub).iterdir())
        for f in files if sub.startswith("test") else files[: images // 2]:
            if not (root / sub / f.name).exists():
                os.link(f, root / sub / f.name)
    (root / ".complete").touch()
    return root


def private_mb(pid: int) -> float:
    """Memory of ``pid`` that is its own (not shared with its parent), in MB."""
    total = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:")):
            total += int(line.split()[1])
    return total / 1024


def measure(folder: str, stream: str, preset: str, steps: int) -> dict:
    """One run: seconds per step, seconds to the first batch, peak RSS, workers' memory."""
    import torch
    from run import PRESETS as RUN_PRESETS
    from run import peak_rss_mb

    from gankit.runs import Run, resolve
    from gankit.trainer import batches

    model, overrides = PRESETS.get(preset) or RUN_PRESETS[preset][::2]
    start = time.perf_counter()
    cfg = resolve(model, folder, None, [*overrides, "progress=false", f"stream={stream}"])
    run = Run(cfg, torch.device("cpu"))
    waited = [0.0]  # seconds the training spent inside data.batch (waiting for the workers)
    draw = run.data.batch

    def timed_batch(n: int) -> object:
        begin = time.perf_counter()
        out = draw(n)
        waited[0] += time.perf_counter() - begin
        return out

    run.data.batch = timed_batch
    data = batches(run.data, cfg.train.batch_size, run.device)
    next(data)
    first_batch = time.perf_counter() - start
    for step in range(2):
        run.model.train_step(data, step)
    start, waited[0] = time.perf_counter(), 0.0
    for step in range(steps):
        run.model.train_step(data, 2 + step)
    sec = (time.perf_counter() - start) / steps
    loader = getattr(run.data, "batches", None)
    workers = [w.pid for w in getattr(loader, "_workers", [])]
    return {
        "folder_images": sum(len(list((Path(folder) / s).iterdir())) for s in ("trainA", "trainB")),
        "stream": stream,
        "workers": len(workers),
        "sec_per_step": sec,
        "sec_in_batch_per_step": waited[0] / steps,
        "sec_to_first_batch": first_batch,
        "peak_rss_mb": peak_rss_mb(),
        "workers_private_mb": sum(private_mb(pid) for pid in workers),
    }


def in_subprocess(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"benchmark {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


def summary(runs: list[dict]) -> dict:
    """Medians per (mode, folder size), and the streamed/in-memory step-time ratio."""
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(r["name"], []).append(r)
    out = {
        name: {
            key: round(median(r[key] for r in rows), 4)
            for key in (
                "sec_per_step",
                "sec_in_batch_per_step",
                "sec_to_first_batch",
                "peak_rss_mb",
                "workers_private_mb",
            )
        }
        for name, rows in groups.items()
    }
    if "stream-large" in out and "memory-large" in out:
        ratio = out["stream-large"]["sec_per_step"] / out["memory-large"]["sec_per_step"]
        out["step_time_ratio_stream_over_memory"] = round(ratio, 3)
        # the same ratio within each round (neighbouring runs see similar load)
        pairs = zip(groups["stream-large"], groups["memory-large"], strict=False)
        by_round = [a["sec_per_step"] / b["sec_per_step"] for a, b in pairs]
        out["step_time_ratio_by_round"] = [round(r, 3) for r in by_round]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/streaming.json"))
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "gankit-streaming-bench"
    )
    parser.add_argument("--images", type=int, default=20_000, help="train images, large folder")
    parser.add_argument("--small", type=int, default=2_000, help="train images, small folder")
    parser.add_argument(
        "--preset", default="cyclegan-128", help="cyclegan-128, or one of benchmarks/run.py's"
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the modes")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "STREAM"), help="(internal)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))  # benchmarks/run.py: presets, peak RSS
    if args.measure:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(measure(*args.measure, args.preset, args.steps)))
        return
    start = time.perf_counter()
    large = generate(args.cache / f"large-{args.images}", args.images)
    small = linked_subset(large, args.cache / f"small-{args.small}", args.small)
    print(f"folders ready in {time.perf_counter() - start:.0f} s: {large}, {small}")
    plan = [("stream-large", large, "true"), ("memory-large", large, "false")]
    plan.append(("stream-small", small, "true"))
    common = ["--preset", args.preset, "--steps", str(args.steps), "--threads", str(args.threads)]
    runs = []
    for k in range(args.rounds):
        for name, folder, stream in plan:
            row = {
                "name": name,
                "round": k,
                **in_subprocess(["--measure", str(folder), stream, *common]),
            }
            print(json.dumps(row))
            runs.append(row)
    import torch

    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "command": " ".join(["python", *sys.argv]),
        "preset": args.preset,
        "timed_steps": args.steps,
        "summary": summary(runs),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["summary"], indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
