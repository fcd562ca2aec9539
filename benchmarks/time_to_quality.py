"""Time to quality, fp32 against bf16: the same preset and seed in both precisions, side by side.

For each seed, ``gankit train`` runs twice at once, ``precision=fp32`` and ``precision=bf16``,
each in its own process on one torch thread and both under ``nice -n 5``, so that the two face
the same load from whatever else runs on the machine. Each run's metrics.jsonl gives its score at
every evaluation; the report has the first evaluation where the preset's threshold is met (step
and wall seconds since launch), the final scores and the total wall time, and one PNG per preset
with score against wall-clock seconds, fp32 and bf16 overlaid.

    python benchmarks/time_to_quality.py toy --seeds 0 1 2 --runs /tmp/tq-runs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GANKIT = Path(sys.executable).with_name("gankit")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class Preset:
    """A documented training command and the threshold its docs hold it to."""

    args: tuple[str, ...]  # after `gankit train`
    thresholds: dict[str, float]  # eval key -> minimum value, all must hold at one evaluation
    curve: str  # the key plotted against wall time
    doc: str  # where the command and threshold come from


PRESETS: dict[str, Preset] = {
    "toy": Preset(
        ("wgan-gp", "--data", "8gaussians"),
        {"eval/modes": 8, "eval/high_quality": 0.90},
        "eval/high_quality",
        "docs/results/toy.md: 8/8 modes and >= 90% high quality",
    ),
    "cgan": Preset(
        ("cgan", "--data", "mnist"),
        {"eval/cond_accuracy": 0.97},
        "eval/cond_accuracy",
        "docs/results/cgan.md: 97% conditional accuracy, defaults (15,000 steps)",
    ),
    "cyclegan": Preset(
        ("cyclegan", "--data", "digits2colour"),
        {"eval/label_preservation_ab": 0.95},
        "eval/label_preservation_ab",
        "docs/results/cyclegan.md: defaults (3,000 steps), A->B label preservation >= 95%",
    ),
}


def read_evals(path: Path) -> list[dict]:
    """The evaluation records of a metrics.jsonl (lines holding any ``eval/`` key), by step."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if any(k.startswith("eval/") for k in rec):
            records.append(rec)
    return sorted(records, key=lambda r: r["step"])


def meets(record: dict, thresholds: dict[str, float]) -> bool:
    """True when every thresholded key is present and at least its minimum. Scores are logged
    from float32 (475/500 reads 0.949999988), hence the 1e-6 slack."""
    return all(k in record and record[k] >= v - 1e-6 for k, v in thresholds.items())


def first_crossing(records: list[dict], thresholds: dict[str, float], t0: float) -> dict | None:
    """The first evaluation meeting every threshold: its step and seconds since ``t0``."""
    for rec in records:
        if meets(rec, thresholds):
            return {"step": rec["step"], "seconds": round(rec["time"] - t0, 1)}
    return None


def held_from(records: list[dict], thresholds: dict[str, float], t0: float) -> dict | None:
    """The first evaluation from which the threshold holds at every later one (to the end)."""
    since = None
    for rec in records:
        if not meets(rec, thresholds):
            since = None
        elif since is None:
            since = {"step": rec["step"], "seconds": round(rec["time"] - t0, 1)}
    return since


def summarise(run_dir: Path, preset: Preset) -> dict:
    """One run's crossing, final scores, curve and wall time from its directory."""
    launch = json.loads((run_dir / "launch.json").read_text())
    t0 = launch["start"]
    evals = read_evals(run_dir / "metrics.jsonl")
    final = evals[-1] if evals else {}
    lines = (run_dir / "metrics.jsonl").read_text().splitlines() if evals else []
    last = json.loads(lines[-1])["time"] - t0 if lines else None
    return {
        "run": str(run_dir),
        "command": launch["command"],
        "returncode": launch.get("returncode"),
        "wall_seconds": launch.get("wall_seconds"),
        "last_record_seconds": None if last is None else round(last, 1),  # a check on the above
        "first_met": first_crossing(evals, preset.thresholds, t0),
        "held_from": held_from(evals, preset.thresholds, t0),
        "met_at_end": bool(final) and meets(final, preset.thresholds),
        "final_step": final.get("step"),
        "final": {k: v for k, v in final.items() if k.startswith("eval/") and "/" not in k[5:]},
        "curve": [[round(r["time"] - t0, 1), r["step"], r.get(preset.curve)] for r in evals],
    }


def command(preset: Preset, precision: str, seed: int, out: Path, extra: list[str]) -> list[str]:
    """The niced training command of one run."""
    args = [*preset.args, *extra, f"precision={precision}", f"seed={seed}", "progress=false"]
    return ["nice", "-n", "5", str(GANKIT), "train", *args, "--out", str(out)]


def run_pair(preset: Preset, seed: int, runs: Path, tag: str, extra: list[str]) -> list[Path]:
    """fp32 and bf16 of one seed at the same time, one thread each; returns the run dirs."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = []
    for precision in PRECISIONS:
        out = runs / f"{tag}-s{seed}-{precision}"
        cmd = command(preset, precision, seed, out, extra)
        log = open(runs / f"{tag}-s{seed}-{precision}.log", "w")  # noqa: SIM115 - closed below
        start = time.time()
        procs.append((out, cmd, start, log, subprocess.Popen(cmd, env=env, stdout=log, stderr=log)))
    for out, cmd, start, _log, _proc in procs:  # written now so that a stopped run can be read
        write_launch(out, {"command": " ".join(cmd[3:]), "start": start})
    ends: dict[int, float] = {}
    while len(ends) < len(procs):  # poll: each run's end is its own, not its twin's
        for i, (*_, proc) in enumerate(procs):
            if i not in ends and proc.poll() is not None:
                ends[i] = time.time()
        time.sleep(0.5)
    for i, (out, cmd, start, log, proc) in enumerate(procs):
        log.close()
        record = {"command": " ".join(cmd[3:]), "start": start, "returncode": proc.returncode}
        write_launch(out, {**record, "wall_seconds": round(ends[i] - start, 1)})
    return [out for out, *_ in procs]


def write_launch(out: Path, record: dict) -> None:
    """The run's launch time and command (wall seconds are counted from it) in launch.json."""
    out.mkdir(parents=True, exist_ok=True)  # before gankit makes it, or after an early failure
    (out / "launch.json").write_text(json.dumps(record, indent=1))


def plot(name: str, preset: Preset, results: dict[str, dict[str, dict]], png: Path) -> None:
    """Score against wall seconds, one colour per precision, one line style per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours = {"fp32": "tab:blue", "bf16": "tab:orange"}
    styles = ["-", "--", ":", "-."]
    for i, (seed, pair) in enumerate(sorted(results.items())):
        for precision, res in pair.items():
            xs = [c[0] for c in res["curve"] if c[2] is not None]
            ys = [c[2] for c in res["curve"] if c[2] is not None]
            label = f"{precision} seed {seed}"
            ax.plot(xs, ys, styles[i % 4], color=colours[precision], marker="o", ms=3, label=label)
    ax.axhline(preset.thresholds[preset.curve], color="grey", lw=0.8, ls=":", label="threshold")
    ax.set_xlabel("wall-clock seconds since launch (one thread each, pairs run together)")
    ax.set_ylabel(preset.curve)
    ax.set_title(f"{name}: {' '.join(preset.args)}, fp32 vs bf16")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("preset", choices=sorted(PRESETS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--runs", type=Path, default=Path("/tmp/tq-runs"), help="run directories")
    p.add_argument("--steps", type=int, help="generator steps (default: the preset's)")
    p.add_argument("--set", nargs="*", default=[], help="more key=value overrides for both")
    p.add_argument("--report-only", action="store_true", help="summarise existing runs only")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/time-to-quality.json")
    p.add_argument("--img", type=Path, default=ROOT / "docs/img")
    args = p.parse_args(argv)
    preset = PRESETS[args.preset]
    extra = [*([f"steps={args.steps}"] if args.steps else []), *args.set]
    args.runs.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, dict]] = {}
    for seed in args.seeds:
        if not args.report_only:
            run_pair(preset, seed, args.runs, args.preset, extra)
        dirs = {pr: args.runs / f"{args.preset}-s{seed}-{pr}" for pr in PRECISIONS}
        results[str(seed)] = {pr: summarise(d, preset) for pr, d in dirs.items()}
        met = {pr: [r["first_met"], r["held_from"]] for pr, r in results[str(seed)].items()}
        print(json.dumps({seed: met}))
    png = args.img / f"time-to-quality-{args.preset}.png"
    plot(args.preset, preset, results, png)
    table = json.loads(args.out.read_text()) if args.out.exists() else {}
    table[args.preset] = {"thresholds": preset.thresholds, "doc": preset.doc, "seeds": results}
    table[args.preset]["plot"] = (
        str(png.relative_to(ROOT)) if png.is_relative_to(ROOT) else str(png)
    )
    args.out.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
