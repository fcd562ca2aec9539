"""Speed, memory and time-to-quality of each model preset; results as JSON (``make bench``).

Each preset runs in its own subprocess so its peak RSS is its own. MFU is the achieved GFLOP/s
(FLOPs of one training step counted by ``torch.utils.flop_counter.FlopCounterMode``) divided by
the fp32 2048² matrix-multiply rate measured in the same run, on the same threads. MFU splits
into how fast the step's matrix products and convolutions run (``kernel_mfu``) and how much of
the step they fill (``kernel_share``): the first is set by the kernels on this machine, the
second by the code around them.
"""

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

if TYPE_CHECKING:
    from gankit.runs import Run

# data of the translation presets: a generated trainA/trainB folder (random RGB images), so the
# step goes through the real folder pipeline (random crop and flip) without a dataset in memory
SYNTHETIC = "synthetic-unpaired"

# name: (model, data, overrides); the toy presets are the families' defaults
PRESETS: dict[str, tuple[str, str, list[str]]] = {
    "gan-8gaussians": ("gan", "8gaussians", []),
    "wgan-8gaussians": ("wgan", "8gaussians", ["critic_boost=false"]),
    "wgan-gp-8gaussians": ("wgan-gp", "8gaussians", []),
    # PyTorch-GAN's cgan.py size: MLP, 32×32 MNIST, batch 64 (our default widths)
    "cgan-mlp-mnist32": ("cgan", "mnist", ["image_size=32"]),
    "cgan-conv-mnist32": ("cgan", "mnist", ["image_size=32", "arch=conv"]),
    # The original CycleGAN setting at 128 px: ResNet-9 generators, 70×70 PatchGANs, ngf = ndf
    # = 64 (our CPU defaults: 16 and 32), batch 1, identity loss 0.5, history pools of 50
    "cyclegan-resnet9-128": (
        "cyclegan",
        SYNTHETIC,
        [
            *("image_size=128", "batch_size=1", "ngf=64", "ndf=64", "blocks=9", "n_layers=3"),
            "identity=0.5",
        ],
    ),
    # PyTorch-GAN's DiscoGAN size: 64×64 RGB, batch 8, the paper's widths (ours default to 32)
    "discogan-64": ("discogan", SYNTHETIC, ["image_size=64", "batch_size=8", "ngf=64", "ndf=64"]),
}
# (model, data): time-to-quality on the toy sets with the families' default settings
QUALITY = [(m, d) for d in ("8gaussians", "25gaussians") for m in ("gan", "wgan", "wgan-gp")]


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    """fp32 GEMM GFLOP/s: the reference for MFU."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def conv_ceiling(reps: int = 20, trials: int = 5) -> dict:
    """The MFU a 3×3 convolution's forward + backward alone reaches: the ceiling for the
    translation presets, whose FLOPs are almost all such convolutions.

    The shape is a ResNet-9 block of the 128-px CycleGAN (256 → 256 channels at 32×32, batch 1,
    channels-last), through gankit's Conv2d and through torch's; FLOPs: forward, input gradient
    and weight gradient, 2·C_in·C_out·9·H·W each. Each trial times the GEMM reference and both
    convolutions back to back; the medians over the trials are reported (the machines are noisy).
    """
    from statistics import median

    from gankit.conv import Conv2d

    x = torch.randn(1, 256, 32, 32).contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(x)  # a dense output gradient, as in training (not .sum()'s broadcast)
    flops = 3 * 2 * 256 * 256 * 9 * 32 * 32
    convs = {
        "gankit": Conv2d(256, 256, 3, padding=1).to(memory_format=torch.channels_last),
        "torch": torch.nn.Conv2d(256, 256, 3, padding=1).to(memory_format=torch.channels_last),
    }
    inp = x.clone().requires_grad_()
    rates: dict[str, list[float]] = {"gemm": [], "gankit": [], "torch": []}
    for _ in range(trials):
        rates["gemm"].append(matmul_peak())
        for name, conv in convs.items():
            for _ in range(3):
                conv(inp).backward(grad)
            start = time.perf_counter()
            for _ in range(reps):
                conv(inp).backward(grad)
            rates[name].append(flops * reps / (time.perf_counter() - start) / 1e9)
    peak = median(rates["gemm"])
    out: dict = {"gemm_gflops": round(peak, 1), "trials": trials}
    for name in convs:
        out[name] = {"gflops": round(median(rates[name]), 1)}
        ratios = [r / p for r, p in zip(rates[name], rates["gemm"], strict=True)]
        out[name]["mfu"] = round(median(ratios), 4)
    return out


class GradSafeFlopCounter(TorchDispatchMode):
    """FlopCounterMode's per-operator FLOP formulas without its module hooks, and the wall time
    spent inside the operators that have one (matrix products and convolutions).

    FlopCounterMode's module tracker raises inside ``torch.autograd.grad`` (the double backward
    of a gradient penalty); counting at the dispatcher with the same registry gives the same
    totals on ordinary steps (checked in ``count_flops``) and also works there.

    ``seconds`` is the union of the timed operators' intervals: time during which at least one
    of them runs, counted once even when two overlap (operators dispatched from two threads), so
    it can never exceed the wall time of the code run under the counter.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._running = 0  # timed operators in progress, over all threads
        self._since = 0.0  # when the current stretch of kernel time began

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        formula = flop_registry.get(func._overloadpacket)
        if formula is None:
            return func(*args, **kwargs)
        with self._lock:
            if self._running == 0:
                self._since = time.perf_counter()
            self._running += 1
        try:
            out = func(*args, **kwargs)  # CPU kernels are synchronous
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    self.seconds += time.perf_counter() - self._since
        self.total += formula(*args, **kwargs, out_val=out)
        return out


def count_flops(step) -> int:  # noqa: ANN001
    """FLOPs of ``step()``: FlopCounterMode, or its formulas at the dispatcher when it refuses."""
    try:
        with FlopCounterMode(display=False) as counter:
            step()
        return counter.get_total_flops()
    except RuntimeError:
        with GradSafeFlopCounter() as counter:
            step()
        return counter.total


def kernel_time(step, steps: int = 3) -> dict:  # noqa: ANN001
    """Seconds and FLOPs per step inside the operators that have a FLOP formula (matrix
    products, convolutions and their gradients), over ``steps`` calls of ``step(k)``, and the
    wall seconds per step of those same calls: ``share`` = kernel seconds / wall seconds.

    Both times come from one pass, so the share is at most 1 by construction: the kernel time is
    a union of intervals inside that wall time. Dividing by the step time of the earlier,
    uninstrumented pass gave 1.23 and 2.58 whenever this pass ran slower than that one (more
    load from other processes, or the counter's own cost). That cost, a Python frame on every
    operator, is now in the wall time, so the share is a slight underestimate on steps of many
    small operators.
    """
    with GradSafeFlopCounter() as counter:
        start = time.perf_counter()
        for k in range(steps):
            step(k)
        wall = time.perf_counter() - start
    return {
        "seconds": counter.seconds / steps,
        "flops": counter.total / steps,
        "wall": wall / steps,
        "share": counter.seconds / wall,
    }


def synthetic_folder(root: Path, n: int = 16) -> str:
    """``root/{trainA,trainB,testA,testB}`` of random 160×160 RGB PNGs (n per train folder)."""
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for sub in ("trainA", "trainB", "testA", "testB"):
        (root / sub).mkdir(parents=True)
        for i in range(n if sub.startswith("train") else 2):
            pixels = torch.randint(256, (160, 160, 3), generator=gen, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(root / sub / f"{i}.png")
    return str(root)


def preset_run(name: str, precision: str = "fp32", options: Sequence[str] = ()) -> "Run":
    """The preset's Run on the CPU (a synthetic folder is read into memory, then deleted);
    ``options``: more key=value overrides."""
    from gankit.runs import Run, resolve

    model, data, overrides = PRESETS[name]
    extra = ["progress=false", f"precision={precision}", *options]
    with tempfile.TemporaryDirectory() as tmp:
        if data == SYNTHETIC:
            data = synthetic_folder(Path(tmp) / "unpaired")
        return Run(resolve(model, data, None, [*overrides, *extra]), torch.device("cpu"))


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    Linux's VmHWM is the high-water mark of the process's own memory map. ru_maxrss is not: a
    child started by fork/vfork + exec inherits the parent's peak at the exec, so a benchmark
    parent of 402 MB made a 381-MB preset report 402 MB (elsewhere ru_maxrss is the fallback).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(name: str, steps: int, precision: str = "fp32") -> dict:
    """Seconds per step, samples/s, FLOPs per step, GFLOP/s, MFU and peak RSS of one preset,
    its training steps in ``precision`` as the trainer runs them (MFU stays relative to fp32)."""
    from gankit.trainer import autocast, batches

    run = preset_run(name, precision)
    stream = batches(run.data, run.cfg.train.batch_size, run.device)

    def train_step(step: int) -> None:
        with autocast(run.device, run.precision):
            run.model.train_step(stream, step)

    for step in range(3):
        train_step(step)
    start = time.perf_counter()
    for step in range(steps):
        train_step(3 + step)
    sec = (time.perf_counter() - start) / steps
    # the training's own peak, before the FLOP counter (its imports) and the GEMM reference
    rss = peak_rss_mb()
    flops = count_flops(lambda: train_step(3 + steps))
    kernels = kernel_time(lambda k: train_step(4 + steps + k))
    peak = matmul_peak()
    real_per_step = run.cfg.train.batch_size * getattr(run.cfg.model_config, "n_critic", 1)
    return {
        "preset": name,
        "precision": run.precision,
        "batch_size": run.cfg.train.batch_size,
        "sec_per_step": sec,
        "real_samples_per_sec": real_per_step / sec,
        "flops_per_step": flops,
        "gflops_per_sec": flops / sec / 1e9,
        "matmul_peak_gflops": peak,
        "mfu": flops / sec / 1e9 / peak,
        # MFU = kernel_mfu × kernel_share (to the FLOP counts' sampling): how fast the matrix
        # products and convolutions themselves run, and how much of the step they fill
        "kernel_mfu": kernels["flops"] / kernels["seconds"] / 1e9 / peak,
        "kernel_share": kernels["share"],
        "peak_rss_mb": rss,
    }


def time_to_quality(model: str, data: str) -> dict:
    """A default run (the family's steps and LR schedule), evaluated every ``eval_every`` steps.

    ``reached``: the first evaluation with every mode covered and >= 90% high-quality samples,
    with the wall time since the start (evaluations included).
    """
    from gankit.runs import Run, resolve
    from gankit.trainer import Trainer

    run = Run(resolve(model, data, None, ["progress=false"]), torch.device("cpu"))
    out = Path(tempfile.mkdtemp())
    wall_start = time.time()
    final = Trainer(run, out).fit()
    with open(out / "metrics.jsonl") as f:
        history = [r for r in map(json.loads, f) if "eval/em" in r]
    good = [r for r in history if r["eval/modes"] == r["eval/modes_total"]]
    good = [r for r in good if r["eval/high_quality"] >= 0.9]
    keys = ("step", "eval/em", "eval/modes", "eval/high_quality")
    return {
        "model": model,
        "data": data,
        "steps": run.step,
        "seconds": round(time.time() - wall_start, 1),
        "final": final,
        "reached": {"step": good[0]["step"], "seconds": round(good[0]["time"] - wall_start, 1)}
        if good
        else None,
        "history": [{k: r[k] for k in keys} for r in history],
    }


def step_time_ratios(speed: list[dict], base: str) -> list[dict]:
    """Each preset's seconds per step in every other precision over those in ``base``."""
    ref = {r["preset"]: r["sec_per_step"] for r in speed if r["precision"] == base}
    return [
        {
            "preset": r["preset"],
            "precision": r["precision"],
            "time_ratio": round(r["sec_per_step"] / ref[r["preset"]], 3),
        }  # fmt: skip
        for r in speed
        if r["precision"] != base and r["preset"] in ref
    ]


def in_subprocess(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"benchmark {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


def quality_runs(jobs: int) -> list[dict]:
    """Time-to-quality of every (model, data) pair, ``jobs`` at a time with one thread each."""
    argv = [["--quality", f"{m}:{d}", "--threads", "1"] for m, d in QUALITY]
    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(in_subprocess, argv))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--preset", help="(internal) measure one preset and print JSON")
    parser.add_argument("--quality", help="(internal) MODEL:DATA time-to-quality as JSON")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per preset")
    parser.add_argument("--skip-quality", action="store_true", help="speed and memory only")
    parser.add_argument("--only", nargs="*", default=list(PRESETS), help="presets to measure")
    parser.add_argument("--jobs", type=int, default=2, help="time-to-quality runs in parallel")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument(
        "--precision",
        nargs="+",
        default=["fp32"],
        choices=["fp32", "bf16", "auto"],
        help="training precisions to time each preset in (several: a bench-<names>.json with "
        "the step-time ratios to the first, no quality runs)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.preset:
        print(json.dumps(measure(args.preset, args.steps, args.precision[0])))
        return
    if args.quality:
        model, data = args.quality.split(":")
        print(json.dumps(time_to_quality(model, data)))
        return
    results = {
        "machine": {
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "conv3x3_ceiling": conv_ceiling(),
        },
        "speed": [
            in_subprocess(
                [
                    *("--preset", name, "--steps", str(args.steps)),
                    *("--threads", str(args.threads), "--precision", precision),
                ]
            )
            for name in args.only
            for precision in args.precision
        ],
    }
    compare = len(args.precision) > 1
    if compare:
        results["ratios"] = step_time_ratios(results["speed"], args.precision[0])
    elif not args.skip_quality:
        results["quality"] = quality_runs(args.jobs)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("bench-" + "-".join(args.precision) + ".json" if compare else "bench.json")
    path.write_text(json.dumps(results, indent=2))
    ceiling = results["machine"]["conv3x3_ceiling"]
    print(
        f"3x3 conv forward + backward alone: MFU {ceiling['gankit']['mfu']:.1%} (gankit), "
        f"{ceiling['torch']['mfu']:.1%} (torch), GEMM {ceiling['gemm_gflops']} GFLOP/s"
    )
    for row in results["speed"]:
        print(
            f"{row['preset']:24s} {row['sec_per_step'] * 1e3:8.1f} ms/step  "
            f"MFU {row['mfu']:.1%} (kernels at {row['kernel_mfu']:.1%}, "
            f"{row['kernel_share']:.0%} of the step)  RSS {row['peak_rss_mb']:.0f} MB"
            + (f"  [{row['precision']}]" if compare else "")
        )
    for row in results.get("ratios", []):
        print(f"{row['preset']:24s} {row['precision']} step time / {args.precision[0]}: "
              f"{row['time_ratio']:.2f}")  # fmt: skip
    for row in results.get("quality", []):
        hq = row["final"]["eval/high_quality"]
        print(
            f"{row['model']:8s} {row['data']:12s} {row['steps']} steps {row['seconds']} s, "
            f"modes {row['final']['eval/modes']:.0f}, HQ {hq:.1%}, reached: {row['reached']}"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
