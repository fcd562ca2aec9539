"""gankit's CPU kernels against torch's, and torch.compile against eager, on the presets of
``benchmarks/run.py``; results as JSON.

``--impl``: each preset's step time under ``impl=gankit`` and ``impl=torch``, both runs built in
one process and timed in alternating blocks of steps, so that a change of load on a shared
machine hits both alike; the faster one is what ``impl=auto`` should pick on this CPU.

``--compile``: each preset's compile time and step time with ``compile=true`` against the same
preset eager, in one process (the compile time is the first steps' time beyond the compiled
step time), and what that makes of a typical run: the family's default number of steps.

Each preset runs in its own subprocess; ``--threads`` torch threads in each.
"""

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from run import PRESETS, preset_run  # noqa: E402  (benchmarks/ is not a package)


class Stepper:
    """One run's training steps, as the trainer runs them (autocast, end_step, EMA)."""

    def __init__(self, run: Any) -> None:
        from gankit.trainer import autocast, batches

        self.run, self.autocast = run, autocast
        self.stream = batches(run.data, run.cfg.train.batch_size, run.device)

    def step(self) -> float:
        """One step; its seconds (the host reads the losses, as a log step does)."""
        run = self.run
        start = time.perf_counter()
        with self.autocast(run.device, run.precision):
            logs = run.model.train_step(self.stream, run.step)
        run.model.end_step()
        if run.ema:
            run.ema.update(run.model.generators())
        [float(v) for v in logs.values()]
        run.step += 1
        return time.perf_counter() - start


def interleaved(steppers: dict[str, Stepper], steps: int, block: int) -> dict[str, float]:
    """Median seconds per step of each stepper over ``steps`` steps, run in alternating blocks
    of ``block`` steps (median of the blocks' means: robust to a burst of load)."""
    means: dict[str, list[float]] = {k: [] for k in steppers}
    for _ in range(max(1, steps // block)):
        for name, s in steppers.items():
            means[name].append(sum(s.step() for _ in range(block)) / block)
    return {k: statistics.median(v) for k, v in means.items()}


def impl_case(name: str, steps: int, block: int) -> dict:
    runs = {impl: preset_run(name, options=[f"impl={impl}"]) for impl in ("gankit", "torch")}
    steppers = {impl: Stepper(run) for impl, run in runs.items()}
    for s in steppers.values():  # warm-up: allocations, oneDNN primitive caches
        for _ in range(3):
            s.step()
    sec = interleaved(steppers, steps, block)
    auto = preset_run(name)  # what impl=auto resolves to for this family on this machine
    return {
        "preset": name,
        "sec_per_step": sec,
        "torch_over_gankit": round(sec["torch"] / sec["gankit"], 3),
        "faster": min(sec, key=sec.get),
        "auto_resolves_to": auto.impl,
    }


def compile_case(name: str, steps: int, block: int, warm: int = 3) -> dict:
    eager = Stepper(preset_run(name))
    compiled_run = preset_run(name, options=["compile=true"])
    compiled = Stepper(compiled_run)
    first = [compiled.step() for _ in range(warm)]  # dynamo + inductor, graphs per network
    for _ in range(warm):
        eager.step()
    sec = interleaved({"eager": eager, "compiled": compiled}, steps, block)
    compile_s = sum(first) - warm * sec["compiled"]
    typical = eager.run.cfg.train.steps
    saving = sec["eager"] - sec["compiled"]
    return {
        "preset": name,
        "impl": compiled_run.impl,
        "compiled_networks": compiled_run.compiled,
        "compile_seconds": round(compile_s, 1),
        "sec_per_step": sec,
        "compiled_over_eager": round(sec["compiled"] / sec["eager"], 3),
        "typical_steps": typical,
        "typical_run_seconds": {
            "eager": round(typical * sec["eager"], 1),
            "compiled": round(compile_s + typical * sec["compiled"], 1),
        },
        "break_even_steps": round(compile_s / saving) if saving > 0 else None,
    }


def in_subprocess(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode != 0:
        return {"args": args, "error": out.stderr.strip().splitlines()[-1][:300]}
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--impl", action="store_true", help="gankit's kernels against torch's")
    mode.add_argument("--compile", action="store_true", help="torch.compile against eager")
    parser.add_argument("--only", nargs="*", default=list(PRESETS), help="presets to measure")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--block", type=int, default=5, help="steps per alternating block")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--out", type=Path, help="JSON file to write")
    parser.add_argument("--case", help="(internal) measure one preset and print JSON")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    case = compile_case if args.compile else impl_case
    if args.case:
        print(json.dumps(case(args.case, args.steps, args.block)))
        return
    flag = "--compile" if args.compile else "--impl"
    common = ["--steps", str(args.steps), "--block", str(args.block)]
    rows = []
    for name in args.only:
        rows.append(in_subprocess([flag, "--case", name, *common, "--threads", str(args.threads)]))
        print(json.dumps(rows[-1]), flush=True)
    results = {
        "command": " ".join(["python", "benchmarks/impl_compile.py", *sys.argv[1:]]),
        "machine": {
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": args.threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "results": rows,
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
