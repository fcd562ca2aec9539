"""How long the command line takes to answer without work: help, version, an argument error.

Each command runs in a fresh interpreter ``--repeats`` times; the median wall time is reported
beside the same median for a bare ``python -c pass`` (the interpreter's own start-up, the floor
no command can beat) and for ``import torch`` (what every answer would cost if it loaded torch).
Run with ``make bench-cli``; results go to ``benchmarks/results/cli-startup.json``.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5  # what a help or an argument error may take

COMMANDS = {
    "gankit --help": ["-m", "gankit", "--help"],
    "gankit --version": ["-m", "gankit", "--version"],
    "gankit train --help": ["-m", "gankit", "train", "--help"],
    "gankit eval --help": ["-m", "gankit", "eval", "--help"],
    "gankit sample (argument error)": ["-m", "gankit", "sample"],
    "import gankit": ["-c", "import gankit"],
    "python -c pass (floor)": ["-c", "pass"],
    "import torch (reference)": ["-c", "import torch"],
}


def median_seconds(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    results = {name: median_seconds(cmd, args.repeats) for name, cmd in COMMANDS.items()}
    floor, torch_s = results["python -c pass (floor)"], results["import torch (reference)"]
    rows = {
        name: {
            "median_s": round(s, 4),
            "over_floor_s": round(s - floor, 4),
            "share_of_import_torch": round(s / torch_s, 3),
            "meets_target": s < TARGET_S,
        }
        for name, s in results.items()
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {"target_s": TARGET_S, "repeats": args.repeats, "commands": rows}
    (out / "cli-startup.json").write_text(json.dumps(record, indent=2) + "\n")
    for name, row in rows.items():
        print(f"{name:34s} {row['median_s']:.3f} s  ({row['share_of_import_torch']:.2f} of torch)")


if __name__ == "__main__":
    main()
