"""Training progress on stderr: a live bar on a terminal, plain lines in a log file.

tqdm redraws its bar with carriage returns, which a log file (CI, ``nohup``, a notebook's
captured output) shows as one ever-growing line; there a plain line per few log windows reads
better: step/total, steps per second, time left and the latest losses.
"""

import sys
import time
from typing import Any, TextIO

from tqdm import tqdm


class PlainProgress:
    """tqdm's ``update``/``set_postfix``/context interface, printing ``step/total`` lines."""

    def __init__(
        self, total: int, initial: int, desc: str, every: int, out: TextIO, unit: str = "steps"
    ) -> None:
        self.total, self.step, self.desc, self.every, self.out = total, initial, desc, every, out
        self.unit = unit
        self.start_step, self.start = initial, time.perf_counter()
        self.postfix: dict[str, Any] = {}

    def set_postfix(self, values: dict[str, Any]) -> None:
        self.postfix = dict(values)

    def update(self, n: int = 1) -> None:
        self.step += n
        if self.step % self.every == 0 or self.step == self.total:
            print(self.line(), file=self.out, flush=True)

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = (self.step - self.start_step) / elapsed
        left = (self.total - self.step) / rate if rate > 0 else float("inf")
        eta = f"{left / 60:.1f} min" if left != float("inf") else "?"
        losses = " ".join(f"{k}={v}" for k, v in self.postfix.items())
        speed = f"{rate:.2f} {self.unit}/s"
        return f"{self.desc} {self.step}/{self.total} {speed} ETA {eta} {losses}".rstrip()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def progress_bar(
    total: int,
    initial: int,
    desc: str,
    enabled: bool,
    log_every: int,
    out: TextIO | None = None,
    unit: str = "steps",
) -> Any:
    """A tqdm bar when ``out`` (default stderr) is a terminal; else :class:`PlainProgress`
    printing a line every 10 log windows (at least every step count a window holds); with
    ``enabled`` False, a silent bar."""
    out = sys.stderr if out is None else out
    if not enabled:
        return tqdm(total=total, initial=initial, disable=True)
    if out.isatty():
        tqdm_unit = "it" if unit == "steps" else unit.rstrip("s")  # tqdm's own default for steps
        return tqdm(total=total, initial=initial, desc=desc, file=out, unit=tqdm_unit)
    return PlainProgress(total, initial, desc, max(1, 10 * log_every), out, unit)
