"""gankit against plain eager PyTorch, preset by preset (``make bench``).

For every preset of ``benchmarks/run.py``, the same training step is timed as the plain PyTorch
reference of ``benchmarks/reference.py`` (fp32, and under plain ``torch.autocast`` bf16) and as
gankit (``precision=fp32`` and ``bf16``, plus ``compile=true`` / ``impl=torch`` when gankit's
TrainConfig has those options). Each measurement is its own subprocess: build, a few warm-up
steps, then each timed step alone; a variant's figure is the median over all its timed steps.
The variants run in interleaved rounds (the order rotates each round), so that load from other
processes on a shared machine falls on all of them alike. Ratios are reference fp32 seconds over
the variant's (> 1: faster than the eager reference). For a target that is missed, gankit's
step is profiled (torch.profiler, top operators by self CPU time).
"""

import argparse
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402
import run as bench  # noqa: E402

BASE_VARIANTS = ["ref-fp32", "ref-bf16", "gankit-fp32", "gankit-bf16"]
# preset: (warm-up steps, timed steps) per round; CycleGAN-128 takes seconds per step
PLAN: dict[str, tuple[int, int]] = {
    "cgan-mlp-mnist32": (5, 20),
    "cgan-conv-mnist32": (3, 10),
    "discogan-64": (2, 8),
    "cyclegan-resnet9-128": (2, 4),
    "gan-8gaussians": (5, 30),
    "wgan-8gaussians": (5, 30),
    "wgan-gp-8gaussians": (5, 20),
}
# preset: {variant: the ratio (reference fp32 s/step over the variant's) the project aims at}
TARGETS: dict[str, dict[str, float]] = {
    "cgan-mlp-mnist32": {"gankit-fp32": 1.3},
    "cgan-conv-mnist32": {"gankit-fp32": 1.3, "gankit-bf16": 2.0},
    "discogan-64": {"gankit-fp32": 1.3, "gankit-bf16": 2.0},
    "cyclegan-resnet9-128": {"gankit-fp32": 1.15, "gankit-bf16": 2.0},
}


def optional_variants() -> dict[str, list[str]]:
    """gankit variants of options TrainConfig may have (compile, impl): name → overrides.

    The hook for them: a column appears as soon as the option exists, with no change here.
    """
    from gankit.config import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    out = {}
    if "compile" in names:
        out["gankit-compiled"] = ["compile=true"]
    if "impl" in names:
        out["gankit-impl-torch"] = ["impl=torch"]
    return out


def variants() -> list[str]:
    return [*BASE_VARIANTS, *optional_variants()]


def gankit_model(preset: str) -> nn.Module:
    """gankit's model of ``preset`` (no data loaded, no optimisers): for parameter counts."""
    from gankit.data import UNPAIRED_DATASETS, DataSpec
    from gankit.models import MODELS
    from gankit.runs import resolve

    model, data, overrides = bench.PRESETS[preset]
    size = next((int(o.split("=")[1]) for o in overrides if o.startswith("image_size=")), 0)
    if data == bench.SYNTHETIC:
        data = UNPAIRED_DATASETS[0]  # any two-domain set name: only its kind matters here
        spec = DataSpec("synthetic", "unpaired", (3, size, size), shape_b=(3, size, size))
    elif data == "mnist":
        spec = DataSpec("mnist", "images", (1, size, size), num_classes=10)
    else:
        spec = DataSpec(data, "points", (2,))
    cfg = resolve(model, data, None, overrides)
    return MODELS[model](cfg.model_config, spec)


def build_step(preset: str, variant: str) -> tuple[Callable[[], None], dict[str, nn.Module]]:
    """One training step of ``variant`` and its networks, by gankit's module names."""
    kind, _, precision = variant.partition("-")
    if kind == "ref":
        ref = reference.REFERENCES[preset](precision)
        return ref.step, ref.nets
    from gankit.trainer import autocast, batches

    extra = optional_variants().get(variant, [])
    run = bench.preset_run(preset, "bf16" if precision == "bf16" else "fp32", extra)
    stream = batches(run.data, run.cfg.train.batch_size, run.device)
    counter = itertools.count()

    def step() -> None:
        with autocast(run.device, run.precision):
            run.model.train_step(stream, next(counter))

    return step, dict(run.model.named_children())


def param_counts(nets: dict[str, nn.Module]) -> dict[str, int]:
    return {name: sum(p.numel() for p in net.parameters()) for name, net in nets.items()}


def measure(preset: str, variant: str, warmup: int, steps: int, flops: bool) -> dict:
    """Seconds of each of ``steps`` steps after ``warmup``, their median, parameter counts and
    (``flops``) the FLOPs of one more step."""
    step, nets = build_step(preset, variant)
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    out = {"preset": preset, "variant": variant, "times": times}
    out["sec_per_step"] = statistics.median(times)
    out["params"] = param_counts(nets)
    if flops:
        out["flops_per_step"] = bench.count_flops(step)
    return out


def profile(preset: str, variant: str, warmup: int, steps: int, top: int = 12) -> dict:
    """The top operators by self CPU time over ``steps`` profiled steps (after ``warmup``)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step, _ = build_step(preset, variant)
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    wall = (time.perf_counter() - start) / steps
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)  # µs, every operator once
    rows = [
        {
            "op": e.key,
            "self_ms_per_step": round(e.self_cpu_time_total / 1e3 / steps, 2),
            "share": round(e.self_cpu_time_total / total, 3),
            "calls_per_step": e.count / steps,
        }
        for e in events[:top]
    ]
    return {"preset": preset, "variant": variant, "wall_sec_per_step": wall, "top_ops": rows}


def in_subprocess(args: list[str], threads: int) -> dict:
    cmd = [sys.executable, __file__, *args, "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"side-by-side {args} failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


def plan(preset: str, args: argparse.Namespace) -> tuple[int, int]:
    """(warm-up, timed) steps of ``preset`` per round: ``--steps``, else PLAN's timed steps
    times ``--scale`` (at least 3)."""
    warmup, timed = PLAN[preset]
    return warmup, args.steps or max(3, round(timed * args.scale))


def run_rounds(preset: str, names: list[str], args: argparse.Namespace) -> list[dict]:
    """Every variant of ``preset`` once per round, each in a fresh subprocess; the order rotates
    from round to round. FLOPs are counted in the first round only."""
    records = []
    warmup, steps = plan(preset, args)
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for variant in order:
            flops = r == 0 and variant.endswith("fp32")
            argv = ["--measure", f"{preset}:{variant}", "--warmup", str(warmup)]
            argv += ["--steps", str(steps), *(["--flops"] if flops else [])]
            load = os.getloadavg()[0]
            try:
                rec = {**in_subprocess(argv, args.threads), "round": r, "load_before": load}
            except SystemExit as failed:  # one broken variant must not lose the others
                print(f"  round {r} {preset} {variant} FAILED: {failed}", flush=True)
                continue
            records.append(rec)
            print(f"  round {r} {preset:22s} {variant:18s} {rec['sec_per_step'] * 1e3:9.1f} ms"
                  f"  (load {load:.1f})", flush=True)  # fmt: skip
    return records


def profiles_of(row: dict, args: argparse.Namespace) -> list[dict]:
    """gankit fp32 and bf16 of a preset that missed a target, profiled (else nothing)."""
    if args.no_profile or all(t["reached"] for t in row["targets"].values()):
        return []
    warmup, steps = plan(row["preset"], args)
    out = []
    for variant in ("gankit-fp32", "gankit-bf16"):
        argv = ["--profile", f"{row['preset']}:{variant}", "--warmup", str(warmup)]
        out.append(in_subprocess([*argv, "--steps", str(min(steps, 5))], args.threads))
    return out


def summarise(records: list[dict], preset: str) -> dict:
    """Medians per variant (all timed steps pooled), ratios to the fp32 reference, each round's
    ratio (the best is the figure a quieter machine gets closer to), FLOPs and parameters."""
    mine = [r for r in records if r["preset"] == preset]
    times: dict[str, list[float]] = {}
    for r in mine:
        times.setdefault(r["variant"], []).extend(r["times"])
    sec = {v: statistics.median(t) for v, t in times.items()}
    per_round = {(r["variant"], r["round"]): r["sec_per_step"] for r in mine}
    rounds = sorted({r["round"] for r in mine})
    out: dict = {"preset": preset, "sec_per_step": sec, "ratio_to_ref_fp32": {}, "best_ratio": {}}
    for v in sec:
        if v == "ref-fp32":
            continue
        # against the reference's steps of the same rounds only: a variant missing from a
        # round must not be compared with that round's load
        mine_rounds = [k for k in rounds if (v, k) in per_round and ("ref-fp32", k) in per_round]
        ref = [t for r in mine if r["variant"] == "ref-fp32" and r["round"] in mine_rounds
               for t in r["times"]]  # fmt: skip
        out["ratio_to_ref_fp32"][v] = round(statistics.median(ref) / sec[v], 3)
        each = [per_round["ref-fp32", k] / per_round[v, k] for k in mine_rounds]
        out["best_ratio"][v] = round(max(each), 3)
    if "ref-bf16" in sec and "gankit-bf16" in sec:  # gankit's own part of the bf16 gain
        out["gankit_bf16_over_ref_bf16"] = round(sec["ref-bf16"] / sec["gankit-bf16"], 3)
    first = {r["variant"]: r for r in mine if r["round"] == 0}
    out["flops_per_step"] = {
        v: r["flops_per_step"] for v, r in first.items() if "flops_per_step" in r
    }
    out["params"] = {v: first[v]["params"] for v in ("ref-fp32", "gankit-fp32") if v in first}
    out["targets"] = {
        v: {"target": t, "reached": out["ratio_to_ref_fp32"].get(v, 0) >= t,
            "best_round": out["best_ratio"].get(v)}
        for v, t in TARGETS.get(preset, {}).items()
    }  # fmt: skip
    return out


def same_architecture(row: dict) -> str:
    """'yes' when both sides have the same parameters per network and FLOPs within 3%."""
    ref, gk = row["params"].get("ref-fp32", {}), row["params"].get("gankit-fp32", {})
    params_ok = all(gk.get(name) == n for name, n in ref.items())
    flops = row["flops_per_step"]
    flops_ok = (
        abs(flops["ref-fp32"] / flops["gankit-fp32"] - 1) <= 0.03 if len(flops) == 2 else False
    )
    return "yes" if params_ok and flops_ok else "NO"


def print_table(rows: list[dict], names: list[str]) -> None:
    """Milliseconds per step of each variant, then the fp32 reference's over each variant's."""
    others = [v for v in names if v != "ref-fp32"]
    print("\n| preset | " + " | ".join(f"{v} ms" for v in names) + " | "
          + " | ".join(f"ref-fp32 / {v}" for v in others)
          + " | GFLOP ref / gankit | same params + FLOPs |")  # fmt: skip
    print("|---" * (len(names) + len(others) + 3) + "|")
    for row in rows:
        sec, ratio, flops = row["sec_per_step"], row["ratio_to_ref_fp32"], row["flops_per_step"]
        cells = [f"{sec[v] * 1e3:.1f}" if v in sec else "-" for v in names]
        cells += [f"{ratio[v]:.2f}×" if v in ratio else "-" for v in others]
        gflop = " / ".join(
            f"{flops[v] / 1e9:.2f}" for v in ("ref-fp32", "gankit-fp32") if v in flops
        )
        print(f"| {row['preset']} | " + " | ".join(cells)
              + f" | {gflop} | {same_architecture(row)} |")  # fmt: skip


def print_profiles(profiles: list[dict]) -> None:
    for p in profiles:
        print(f"\n{p['preset']} {p['variant']}: {p['wall_sec_per_step'] * 1e3:.0f} ms/step "
              "profiled; top operators by self CPU time\n")  # fmt: skip
        print("| op | ms / step | share | calls / step |\n|---|---|---|---|")
        for op in p["top_ops"]:
            print(f"| {op['op']} | {op['self_ms_per_step']:.1f} | {op['share']:.0%} "
                  f"| {op['calls_per_step']:g} |")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/side-by-side.json"))
    parser.add_argument("--only", nargs="+", default=list(PLAN), choices=list(PLAN))
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per preset")
    parser.add_argument("--variants", nargs="+", help="a subset of the variants (default: all)")
    parser.add_argument("--steps", type=int, help="timed steps per round (default: per preset)")
    parser.add_argument("--scale", type=float, default=1.0, help="timed steps × this (loaded CPU)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process")
    parser.add_argument("--no-profile", action="store_true", help="skip the missed-target profiles")
    parser.add_argument("--measure", help="(internal) PRESET:VARIANT, JSON to stdout")
    parser.add_argument("--profile", help="(internal) PRESET:VARIANT, JSON to stdout")
    parser.add_argument("--warmup", type=int, default=2, help="(internal) warm-up steps")
    parser.add_argument("--flops", action="store_true", help="(internal) count FLOPs too")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.measure or args.profile:
        preset, variant = (args.measure or args.profile).split(":")
        if args.measure:
            print(json.dumps(measure(preset, variant, args.warmup, args.steps, args.flops)))
        else:
            print(json.dumps(profile(preset, variant, args.warmup, args.steps)))
        return
    names = args.variants or variants()
    start = time.time()
    print(f"variants: {', '.join(names)}; {args.rounds} interleaved rounds per preset")
    result: dict = {
        "machine": {
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": args.threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "variants": names,
        "rounds": args.rounds,
        "presets": [],
        "profiles": [],
        "measurements": [],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for preset in args.only:  # rewritten after each preset: an interrupted run keeps its part
        records = run_rounds(preset, names, args)
        row = summarise(records, preset)
        result["presets"].append(row)
        result["profiles"] += profiles_of(row, args)
        result["measurements"] += records
        result["minutes"] = round((time.time() - start) / 60, 1)
        args.out.write_text(json.dumps(result, indent=2))
    rows, profiles = result["presets"], result["profiles"]
    print_table(rows, names)
    print_profiles(profiles)
    for row in rows:
        for v, t in row["targets"].items():
            if t["best_round"] is None:
                print(f"target {row['preset']} {v} ≥ {t['target']}×: not measured")
                continue
            status = "met" if t["reached"] else "MISSED"
            got, best = row["ratio_to_ref_fp32"][v], t["best_round"]
            print(f"target {row['preset']} {v} ≥ {t['target']}×: {got:.2f}× "
                  f"(best round {best:.2f}×) {status}")  # fmt: skip
    print(f"wrote {args.out} in {result['minutes']} min")


if __name__ == "__main__":
    main()
