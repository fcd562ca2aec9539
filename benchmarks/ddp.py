"""Multi-process data parallel throughput per core: torchrun with 2 processes × 1 thread and a
global batch of 2·B, against one process × 1 thread with batch B (the same work per core).

``python benchmarks/ddp.py --out benchmarks/results/ddp.json`` (``make bench-ddp``). Each preset
is timed in rounds that alternate the two set-ups (and one process × 2 threads with batch 2·B,
what one would run without torchrun), so load from other programs falls on all alike. The
per-core throughput ratio is (samples/s per core with 2 processes) / (samples/s with 1): 1.0
means the processes lose nothing to communication and waiting. The 2-process runs also report
the seconds each step spends inside collectives (by call and size) and the ratio the rest of
the step alone would give: where the lost throughput goes.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import PRESETS, preset_run  # noqa: E402

# preset: batch per process (the presets' own batch sizes)
BATCH = {
    "wgan-gp-8gaussians": 256,
    "cgan-mlp-mnist32": 64,
    "cgan-conv-mnist32": 64,
    "discogan-64": 8,
    "cyclegan-resnet9-128": 1,
}


class CollectiveClock:
    """Counts the collectives a step calls and the seconds spent inside them (this rank's
    wait for its peers included), by wrapping ``torch.distributed``'s functions."""

    NAMES = ("all_reduce", "all_gather", "broadcast")

    def __init__(self) -> None:
        import torch.distributed as dist

        self.calls: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        for name in self.NAMES:
            setattr(dist, name, self.timed(name, getattr(dist, name)))

    def timed(self, name: str, fn):  # noqa: ANN001, ANN202
        def call(tensor, *args, **kwargs):  # noqa: ANN001, ANN202
            start = time.perf_counter()
            out = fn(tensor, *args, **kwargs)
            key = f"{name} {tensor.numel() if hasattr(tensor, 'numel') else len(tensor)}"
            self.calls[key] = self.calls.get(key, 0) + 1
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - start
            return out

        return call

    def reset(self) -> None:
        self.calls.clear()
        self.seconds.clear()


def inner(name: str, batch: int, steps: int) -> dict:
    """Time ``steps`` training steps of a preset in this process (one rank under torchrun)."""
    from gankit import distributed
    from gankit.trainer import batches

    world = distributed.init("cpu")
    clock = CollectiveClock() if world.size > 1 else None
    run = preset_run(name, options=[f"batch_size={batch * world.size}"])
    stream = batches(run.data, run.cfg.train.batch_size, run.device)
    for step in range(2):  # warm-up
        run.model.train_step(stream, step)
    distributed.barrier()
    if clock:
        clock.reset()
    start = time.perf_counter()
    for step in range(steps):
        run.model.train_step(stream, 2 + step)
    sec = (time.perf_counter() - start) / steps
    out = {"processes": world.size, "threads": torch.get_num_threads(), "sec_per_step": sec}
    if clock:  # per step, by collective and size (elements)
        out["collectives"] = {
            key: {"calls": n / steps, "sec": clock.seconds[key] / steps}
            for key, n in sorted(clock.calls.items())
        }
        out["collective_sec_per_step"] = sum(clock.seconds.values()) / steps
        # the slowest rank sets the pace
        mean = distributed.all_mean({"sec": sec, "coll": out["collective_sec_per_step"]})
        out["sec_per_step"], out["collective_sec_per_step"] = mean["sec"], mean["coll"]
    return out


def launch(name: str, batch: int, steps: int, processes: int, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    args = [__file__, "--inner", name, "--batch", str(batch), "--steps", str(steps)]
    if processes > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += [f"--nproc-per-node={processes}", *args]
    else:
        cmd = [sys.executable, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[0])


def measure(name: str, steps: int, rounds: int) -> dict:
    b = BATCH[name]
    times: dict[str, list[float]] = {"1x1": [], "2x1": [], "1x2": []}
    waits, collectives = [], {}
    for _ in range(rounds):
        times["1x1"].append(launch(name, b, steps, 1, 1)["sec_per_step"])
        two = launch(name, b, steps, 2, 1)
        times["2x1"].append(two["sec_per_step"])
        waits.append(two["collective_sec_per_step"])
        collectives = two["collectives"]
        times["1x2"].append(launch(name, 2 * b, steps, 1, 2)["sec_per_step"])
    med = {k: statistics.median(v) for k, v in times.items()}
    wait = statistics.median(waits)
    per_core = {  # samples per second per core
        "1 process x 1 thread, batch B": b / med["1x1"],
        "2 processes x 1 thread, batch 2B": 2 * b / med["2x1"] / 2,
        "1 process x 2 threads, batch 2B": 2 * b / med["1x2"] / 2,
    }
    return {
        "preset": name,
        "batch_per_process": b,
        "sec_per_step": times,
        "samples_per_sec_per_core": per_core,
        "ddp_per_core_ratio": round(med["1x1"] / med["2x1"], 3),
        # where the 2-process step goes: inside collectives (communication and waiting for the
        # peer) and the rest; the ratio the rest alone would give
        "collective_sec_per_step": wait,
        "collective_share_of_step": round(wait / med["2x1"], 3),
        "ddp_per_core_ratio_without_collectives": round(med["1x1"] / (med["2x1"] - wait), 3),
        "collectives_last_round": collectives,
        "threads_per_core_ratio": round(med["1x1"] / med["1x2"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inner", help="(internal) time one preset in this process")
    parser.add_argument("--batch", type=int, default=0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=[p for p in BATCH if "cyclegan" not in p])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.inner:
        result = inner(args.inner, args.batch, args.steps)
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps(result))
        return
    results = []
    for name in args.only:
        if name not in PRESETS:
            parser.error(f"unknown preset {name}: choose from {', '.join(BATCH)}")
        steps = 3 if "cyclegan" in name else args.steps
        row = measure(name, steps, args.rounds)
        results.append(row)
        print(
            f"{name:24s} per-core throughput, 2 processes / 1: {row['ddp_per_core_ratio']:.2f}"
            f"   (2 threads / 1: {row['threads_per_core_ratio']:.2f};"
            f" in collectives {row['collective_share_of_step']:.0%} of the step,"
            f" without them {row['ddp_per_core_ratio_without_collectives']:.2f})",
            flush=True,
        )
    if args.out:
        meta = {"cpu": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__}
        args.out.write_text(json.dumps({"machine": meta, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
