"""Crash-safety soak: kill `gankit train` at random moments, resume it, and compare with a twin.

For each family, a tiny run is trained once without interruption (the twin), then the same run is
launched as a subprocess (``python -m gankit train ...``) and interrupted again and again, each
time resumed with ``gankit train --resume`` until it finishes. Interruptions:

- ``random``: SIGKILL at a seeded random moment inside a seeded random step;
- ``during_write``: SIGKILL as soon as a checkpoint temp file appears on disk;
- ``before_rename``: the process SIGKILLs itself between the fsync of a checkpoint's temp file
  and its rename (the ``GANKIT_TEST_KILL_BEFORE_RENAME`` test hook of ``gankit.checkpoint``);
- ``graceful``: SIGINT or SIGTERM, which gankit answers by checkpointing and exiting.

After every interruption each checkpoint on disk must load with gankit's loader; on resume the
temp files a kill left must be gone. At the end the run's final checkpoint must equal its twin's,
tensor for tensor (``torch.equal``). Both use the same thread count, which fixes the order of
float reductions. Results as JSON (``make soak``).

With ``--processes N`` (``make soak-ddp``) the twin and every launch run under ``torchrun`` with N
processes of ``--threads`` threads each, and the interruptions hit a process tree: torchrun's
agent and its workers, each of which torchrun detaches with setsid. So a SIGKILL goes
to every process of the tree (``kill_tree``), never to the agent's process group alone, which
would leave the workers training and writing checkpoints. Two more kinds:

- ``worker``: SIGKILL of one worker (rank 0 or 1) inside a step; torchrun then stops the others;
- ``graceful`` sends SIGINT or SIGTERM to the agent's process group, as a terminal's Ctrl-C does;
  torchrun forwards it to the workers, which agree on the step to stop at, and rank 0 checkpoints.

After every launch, a process still running with the run directory on its command line is an
orphan: it is counted, then killed.
"""

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from gankit import checkpoint
from gankit.errors import GankitError

# family: (data, steps, model overrides): the families' tiny() presets on data that is offline
# once MNIST is cached (digits2colour is built from MNIST)
FAMILIES: dict[str, tuple[str, int, list[str]]] = {
    "gan": ("8gaussians", 48, ["hidden=32", "depth=2", "base=8"]),
    "wgan": ("8gaussians", 48, ["hidden=32", "depth=2", "base=8", "critic_boost=false"]),
    "wgan-gp": ("8gaussians", 48, ["hidden=32", "depth=2", "base=8"]),
    "cgan": ("mnist", 48, ["z_dim=8", "hidden=32", "depth=1", "base=8"]),
    "cyclegan": ("digits2colour", 48, ["ngf=4", "ndf=4", "blocks=1", "pool_size=4"]),
    "discogan": ("digits2colour", 48, ["ngf=4", "ndf=4", "hidden=16", "depth=1"]),
}
# one step per log line (the watcher's clock); checkpoints every 2 steps; evaluation and samples
# halfway and at the end (an evaluation must not shift the training RNG, however often resumed)
LOOP = [
    *("log_every=1", "ckpt_every=2", "keep_last=3", "eval_samples=10", "progress=false"),
    "batch_size=4",
]
# per 10 interruptions; graceful ones alternate SIGINT and SIGTERM
KINDS = ["random"] * 5 + ["during_write"] * 2 + ["before_rename"] * 2 + ["graceful"]
# the same per 10 under torchrun, with single-worker kills and more graceful stops (the new path)
DDP_KINDS = ["random"] * 2 + ["worker"] * 2 + ["during_write"] * 2 + ["before_rename"] * 2
DDP_KINDS += ["graceful"] * 2
# what a checkpoint says about its writer, not its run: left out of the twin comparison
WRITER_KEYS = ("gankit_version",)
TIMEOUT = 600.0  # seconds for one launch: a hang is a failure, not a wait
ORPHAN_GRACE = 5.0  # seconds a killed launch's processes get to vanish before they are orphans


def gankit_command(processes: int = 1) -> list[str]:
    """``python -m gankit``, or under torchrun with ``processes`` workers on this machine."""
    if processes == 1:
        return [sys.executable, "-m", "gankit"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    return [*torchrun, f"--nproc-per-node={processes}", "-m", "gankit"]


def train_command(
    family: str, run_dir: Path, steps: int, seed: int, processes: int = 1
) -> list[str]:
    data, _, model = FAMILIES[family]
    cmd = [*gankit_command(processes), "train", family, "--data", data, "--out", str(run_dir)]
    halfway = [f"eval_every={max(1, steps // 2)}", f"sample_every={max(1, steps // 2)}"]
    return [*cmd, f"steps={steps}", f"seed={seed}", *LOOP, *halfway, *model]


def resume_command(run_dir: Path, processes: int = 1) -> list[str]:
    return [*gankit_command(processes), "train", "--resume", str(run_dir)]


def child_env(threads: int, kill_at_write: int | None = None) -> dict[str, str]:
    """The same thread count for the twin and every launch: it fixes the reduction order."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    env.pop(checkpoint.KILL_BEFORE_RENAME, None)
    if kill_at_write is not None:
        env[checkpoint.KILL_BEFORE_RENAME] = str(kill_at_write)
    return env


class MetricsTail:
    """The last step a launch logged, read from the lines it appended to metrics.jsonl."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.step = path, path.stat().st_size if path.exists() else 0, 0

    def poll(self) -> int:
        if self.path.exists():
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written is read next time
            self.offset += len(complete)
            for line in complete.splitlines():
                try:
                    self.step = max(self.step, int(json.loads(line)["step"]))
                except (ValueError, KeyError):
                    pass  # a torn line from an earlier kill
        return self.step


def temps(ckpt_dir: Path) -> set[str]:
    return {p.name for p in ckpt_dir.glob(".*.tmp")} if ckpt_dir.is_dir() else set()


def parse_children(texts: list[str]) -> list[int]:
    """PIDs from the contents of ``/proc/PID/task/*/children`` (one file per thread)."""
    return sorted({int(word) for text in texts for word in text.split()})


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (none once it is gone)."""
    texts = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            texts.append((task / "children").read_text())
        except OSError:
            pass  # a thread that just ended
    return parse_children(texts)


def env_value(environ: bytes, key: str) -> str | None:
    """``key``'s value in the contents of ``/proc/PID/environ`` (NUL-separated KEY=VALUE)."""
    prefix = f"{key}=".encode()
    found = [v[len(prefix) :] for v in environ.split(b"\0") if v.startswith(prefix)]
    return found[0].decode() if found else None


def workers(agent: int) -> dict[int, int]:
    """torchrun's workers, rank: PID, read from the RANK their environment holds."""
    found = {}
    for pid in children(agent):
        try:
            rank = env_value(Path(f"/proc/{pid}/environ").read_bytes(), "RANK")
        except OSError:
            continue  # gone
        if rank is not None:
            found[int(rank)] = pid
    return found


def signal_quietly(pid: int, sig: signal.Signals, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone (a zombie's group can refuse)


def kill_tree(agent: int) -> list[int]:
    """SIGKILL a launch (started as its own process group) and every process under it.

    torchrun detaches each worker with setsid, so the agent's process group does not
    hold the workers: a SIGKILL of that group alone leaves them training, writing checkpoints,
    until they finish. Every process is stopped first, the parent before its children are read,
    so none starts a child or writes a byte between the first SIGKILL and the last.
    """
    signal_quietly(agent, signal.SIGSTOP, group=True)
    tree, todo = [agent], children(agent)
    while todo:
        pid = todo.pop()
        signal_quietly(pid, signal.SIGSTOP)
        tree.append(pid)
        todo.extend(c for c in children(pid) if c not in tree)
    signal_quietly(agent, signal.SIGKILL, group=True)
    for pid in tree:
        signal_quietly(pid, signal.SIGKILL)
    return tree


def holds_arg(cmdline: bytes, arg: str) -> bool:
    """Whether a ``/proc/PID/cmdline`` (NUL-separated) has ``arg`` as one of its arguments."""
    return arg.encode() in cmdline.split(b"\0")


def running_with(arg: str) -> list[int]:
    """PIDs of the live processes with ``arg`` on their command line (a zombie has none)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if holds_arg(cmdline, arg):
                found.append(int(entry))
    return found


def kill_orphans(run_dir: Path) -> int:
    """After a launch ended: the processes of the run still alive after ORPHAN_GRACE, killed
    (returns once they are gone)."""
    deadline = time.monotonic() + ORPHAN_GRACE
    while (left := running_with(str(run_dir))) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        signal_quietly(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously: wait until they died
    while set(left) & set(running_with(str(run_dir))) and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(left)


def wait_for_step(proc: subprocess.Popen, tail: MetricsTail, target: int) -> bool:
    """Until the launch logged step ``target`` (True) or exited (False)."""
    deadline = time.monotonic() + TIMEOUT
    while proc.poll() is None and time.monotonic() < deadline:
        if tail.poll() >= target:
            return True
        time.sleep(0.002)
    return False


def kill_on_temp(proc: subprocess.Popen, ckpt_dir: Path, kill: Callable[[], object]) -> bool:
    """``kill()`` the moment a checkpoint temp file exists; False if the launch ended first."""
    while proc.poll() is None:  # a busy poll: a small checkpoint is on disk for milliseconds
        if any(name.endswith(".tmp") for name in os.listdir(ckpt_dir)):
            kill()
            return True
    return False


def deliver(proc: subprocess.Popen, sig: str, processes: int) -> None:
    """``sig`` to a launch: to its one process; under torchrun a SIGKILL to its whole tree and
    another signal to the agent's process group, as a terminal's Ctrl-C does."""
    if processes == 1:
        proc.send_signal(getattr(signal, sig))
    elif sig == "SIGKILL":
        kill_tree(proc.pid)
    else:
        os.killpg(proc.pid, getattr(signal, sig))


def interrupt(proc: subprocess.Popen, event: dict[str, Any], ctx: dict[str, Any]) -> str | None:
    """Deliver ``event`` to a running launch; the signal sent, or None if it finished first."""
    if event["kind"] == "before_rename":
        return "SIGKILL"  # the launch kills itself; whether it did shows in its exit code
    if not wait_for_step(proc, ctx["tail"], event["target"]):
        return None
    if event["kind"] == "during_write":
        ctx["ckpt_dir"].mkdir(parents=True, exist_ok=True)
        kill = lambda: deliver(proc, "SIGKILL", ctx["processes"])  # noqa: E731
        return "SIGKILL" if kill_on_temp(proc, ctx["ckpt_dir"], kill) else None
    time.sleep(ctx["rng"].uniform(0, ctx["step_time"]))  # anywhere inside the next step
    sig = event.get("signal", "SIGKILL")
    if proc.poll() is not None:
        return None
    if event["kind"] != "worker":
        deliver(proc, sig, ctx["processes"])
    elif (pid := workers(proc.pid).get(event["rank"])) is not None:
        os.kill(pid, signal.SIGKILL)  # this rank alone: torchrun has to stop the others
    else:
        return None
    return sig


def verify(ckpt_dir: Path) -> tuple[int, list[str]]:
    """Load every checkpoint on disk with gankit's loader: (files loaded, files that failed)."""
    found = checkpoint.list_checkpoints(ckpt_dir)
    bad = []
    for path in found:
        try:
            if checkpoint.load(path)["step"] != checkpoint.step_of(path):
                bad.append(f"{path.name}: step inside differs from its name")
        except GankitError as exc:
            bad.append(f"{path.name}: {exc}")
    return len(found), bad


def launch(cmd: list[str], env: dict[str, str], log: Path, processes: int = 1) -> subprocess.Popen:
    """A launch; under torchrun detached with setsid, so its process group is the agent's
    (a Ctrl-C's target) and holds no process of the soak."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=processes > 1
        )


def log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def attempt(run: dict[str, Any], event: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    """One launch (resumed, or fresh while no checkpoint exists) interrupted by ``event``."""
    run_dir, ckpt_dir = run["dir"], run["dir"] / "checkpoints"
    last = checkpoint.latest(ckpt_dir)
    start = checkpoint.step_of(last) if last else 0
    event["target"] = max(event["target"], start + 1)
    kill_at = None
    if event["kind"] == "before_rename":  # the write of the first checkpoint after the target
        every = run["ckpt_every"]
        kill_at = event["target"] // every - start // every + 1
    before, logged = temps(ckpt_dir), log_size(run["log"])
    cmd = resume_command(run_dir, ctx["processes"]) if last else run["fresh"]
    ctx["tail"], ctx["ckpt_dir"] = MetricsTail(run_dir / "metrics.jsonl"), ckpt_dir
    proc = launch(cmd, child_env(ctx["threads"], kill_at), run["log"], ctx["processes"])
    sent = interrupt(proc, event, ctx)
    sent_at = time.monotonic()
    rc = proc.wait(timeout=TIMEOUT)
    exit_seconds = time.monotonic() - sent_at  # from the signal to the launch's end
    timed = sent is not None and event["kind"] != "before_rename"  # the launch's own kill
    orphans = kill_orphans(run_dir)
    with open(run["log"], "rb") as f:
        f.seek(logged)
        stop_line = b"gankit: stopped at step" in f.read()
    after = temps(ckpt_dir)
    reached = ctx["tail"].poll()
    last = checkpoint.latest(ckpt_dir)
    loaded, bad = verify(ckpt_dir)
    killed = sent is not None and rc != 0
    return {
        **event,
        "signal": sent if killed else None,
        "rc": rc,
        "exit_seconds": round(exit_seconds, 2) if timed else None,
        "orphans": orphans,
        "stop_line": stop_line,
        "resumed_from": start if cmd is not run["fresh"] else None,
        "reached": reached,
        "checkpoint_after": checkpoint.step_of(last) if last else 0,
        "redone": max(0, reached - (checkpoint.step_of(last) if last else 0)) if killed else 0,
        "temps_left": len(after),
        "temps_cleaned": len(before - after),
        "temps_not_cleaned": sorted(before & after),
        "checkpoints_loaded": loaded,
        "unloadable": bad,
    }


def plan(
    rng: random.Random,
    kills: int,
    steps: int,
    graceful_first: str,
    mix: list[str] = KINDS,
    processes: int = 1,
) -> list[dict]:
    """``kills`` interruptions at increasing random steps, kinds in the ``mix``, shuffled;
    ``worker`` kills take the ranks in turn."""
    kinds = [mix[i % len(mix)] for i in range(kills)]
    rng.shuffle(kinds)
    targets = sorted(rng.sample(range(1, steps - 1), kills))
    events, graceful = [], [graceful_first, "SIGTERM" if graceful_first == "SIGINT" else "SIGINT"]
    for kind, target in zip(kinds, targets, strict=True):
        event = {"kind": kind, "target": target}
        if kind == "graceful":
            event["signal"] = graceful[sum(e["kind"] == "graceful" for e in events) % 2]
        if kind == "worker":
            event["rank"] = sum(e["kind"] == "worker" for e in events) % processes
        events.append(event)
    return events


def finish(run: dict[str, Any], threads: int, processes: int = 1) -> tuple[int, bool]:
    """Resume (or start) the run to its end without interruption: (exit code, resumed)."""
    last = checkpoint.latest(run["dir"] / "checkpoints")
    cmd = resume_command(run["dir"], processes) if last else run["fresh"]
    proc = launch(cmd, child_env(threads), run["log"], processes)
    return proc.wait(timeout=TIMEOUT), last is not None


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Keys under which two checkpoint states differ: tensors by torch.equal, the rest by ==."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
        )
        return [] if same else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} (keys)"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [where]


def count_tensors(state: Any) -> int:
    if isinstance(state, torch.Tensor):
        return 1
    if isinstance(state, dict):
        return sum(count_tensors(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(count_tensors(v) for v in state)
    return 0


def step_time(run_dir: Path) -> float:
    """Seconds per training step of a finished launch, from its metrics.jsonl timestamps."""
    records = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    times = [r["time"] for r in records if any(k.startswith("loss/") for k in r)]
    return max(1e-3, (times[-1] - times[0]) / max(1, len(times) - 1))


def twin_run(family: str, steps: int, seed: int, work: Path, threads: int, processes: int) -> Path:
    twin = work / f"{family}-s{seed}-twin"
    with open(work / f"{twin.name}.log", "wb") as out:
        cmd = train_command(family, twin, steps, seed, processes)
        rc = subprocess.run(cmd, env=child_env(threads), stdout=out, stderr=out, timeout=TIMEOUT)
    if rc.returncode != 0:
        raise SystemExit(f"the twin of {family} failed: see {work / f'{twin.name}.log'}")
    return twin


def soak_family(family: str, seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Twin, then interruptions and resumes to the end, then the comparison."""
    steps = args.steps or FAMILIES[family][1]
    started = time.perf_counter()
    twin = twin_run(family, steps, seed, work, args.threads, args.processes)
    run_dir = work / f"{family}-s{seed}-soak"
    run = {
        "dir": run_dir,
        "fresh": train_command(family, run_dir, steps, seed, args.processes),
        "log": work / f"{run_dir.name}.log",
        "ckpt_every": 2,
    }
    rng = random.Random(f"{args.seed}-{family}-{seed}")
    ctx = {"rng": rng, "threads": args.threads, "step_time": step_time(twin)}
    ctx["processes"] = args.processes
    graceful_first = "SIGINT" if len(family) % 2 else "SIGTERM"
    mix = KINDS if args.processes == 1 else DDP_KINDS
    events = []
    for event in plan(rng, args.kills_per_run, steps, graceful_first, mix, args.processes):
        events.append(attempt(run, event, ctx))
        if events[-1]["checkpoint_after"] == steps:
            break  # finished before its interruption: nothing left to interrupt
    rc, resumed = finish(run, args.threads, args.processes)
    final = f"step_{steps:08d}.pt"
    ours = checkpoint.load(run_dir / "checkpoints" / final)
    theirs = checkpoint.load(twin / "checkpoints" / final)
    for key in WRITER_KEYS:
        ours.pop(key, None), theirs.pop(key, None)
    result = {
        "family": family,
        "data": FAMILIES[family][0],
        "seed": seed,
        "steps": steps,
        "finished": rc == 0,
        "final_launch_resumed": resumed,
        "fresh_restarts": sum(e["resumed_from"] is None for e in events[1:]),
        "tensors_compared": count_tensors(theirs),
        "differing": differences(ours, theirs),
        "final_checkpoints_loaded": verify(run_dir / "checkpoints")[0],
        "temps_at_end": len(temps(run_dir / "checkpoints")),
        "orphans_at_end": kill_orphans(run_dir) + kill_orphans(twin),
        "seconds": round(time.perf_counter() - started, 1),
        "events": events,
    }
    if not args.keep:
        shutil.rmtree(run_dir), shutil.rmtree(twin)
    return result


def totals(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures docs/reliability.md quotes."""
    events = [e for r in runs for e in r["events"]]
    kills = [e for e in events if e["signal"]]
    by = lambda key: {v: sum(e[key] == v for e in kills) for v in sorted({e[key] for e in kills})}  # noqa: E731
    return {
        "runs": len(runs),
        "runs_finished": sum(r["finished"] for r in runs),
        "kills": len(kills),
        "kills_by_signal": by("signal"),
        "kills_by_kind": by("kind"),
        "interruptions_missed": len(events) - len(kills),
        "kills_leaving_a_temp_file": sum(e["temps_left"] > 0 for e in kills),
        "resumes": sum(e["resumed_from"] is not None for e in events)
        + sum(r["final_launch_resumed"] for r in runs),
        "fresh_restarts": sum(r["fresh_restarts"] for r in runs),
        "checkpoint_loads_verified": sum(e["checkpoints_loaded"] for e in events)
        + sum(r["final_checkpoints_loaded"] for r in runs),
        "unloadable": sum(len(e["unloadable"]) for e in events),
        "temps_cleaned_on_resume": sum(e["temps_cleaned"] for e in events),
        "temps_not_cleaned": sum(len(e["temps_not_cleaned"]) for e in events),
        "temps_at_end": sum(r["temps_at_end"] for r in runs),
        "steps_redone": sum(e["redone"] for e in kills),
        "steps_redone_max": max((e["redone"] for e in kills), default=0),
        "graceful_steps_redone": sum(e["redone"] for e in kills if e["kind"] == "graceful"),
        "graceful_stop_lines": sum(e["stop_line"] for e in kills if e["kind"] == "graceful"),
        "worker_kills_by_rank": {
            r: sum(e.get("rank") == r for e in kills if e["kind"] == "worker")
            for r in sorted({e["rank"] for e in kills if e["kind"] == "worker"})
        },
        "exit_seconds_max_by_kind": {
            k: max(
                e["exit_seconds"] for e in kills if e["kind"] == k and e["exit_seconds"] is not None
            )
            for k in sorted({e["kind"] for e in kills if e["exit_seconds"] is not None})
        },
        "orphans": sum(e["orphans"] for e in events) + sum(r["orphans_at_end"] for r in runs),
        "tensors_compared": sum(r["tensors_compared"] for r in runs),
        "runs_identical_to_twin": sum(r["finished"] and not r["differing"] for r in runs),
        "runs_differing": sum(bool(r["differing"]) or not r["finished"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated")
    parser.add_argument("--kills-per-run", type=int, default=20, help="interruptions per run")
    parser.add_argument("--runs-per-family", type=int, default=1, help="seeds 0, 1, ...")
    parser.add_argument("--steps", type=int, default=0, help="steps per run (0: the table's)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every launch")
    parser.add_argument(
        "--processes", type=int, default=1, help="torchrun processes per launch (1: no torchrun)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs soaked side by side")
    parser.add_argument("--out", default="benchmarks/results/soak.json", help="results JSON")
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args()
    families = args.families.split(",")
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}: choose from {', '.join(FAMILIES)}")
    steps = args.steps or min(FAMILIES[f][1] for f in families)
    if args.kills_per_run > steps - 2:
        parser.error(f"--kills-per-run {args.kills_per_run}: at most steps - 2 = {steps - 2}")
    if args.processes < 1 or 4 % args.processes:  # LOOP's batch_size=4 splits over them
        parser.error(f"--processes {args.processes}: give 1, 2 or 4")
    work = Path(tempfile.mkdtemp(prefix="gankit-soak-"))
    started = time.perf_counter()
    jobs = [(family, seed) for family in families for seed in range(args.runs_per_family)]

    def one(job: tuple[str, int]) -> dict[str, Any]:
        result = soak_family(*job, args, work)
        print(json.dumps({k: v for k, v in result.items() if k != "events"}), flush=True)
        return result

    with ThreadPoolExecutor(max(1, args.jobs)) as pool:  # each run waits on its own launches
        runs = list(pool.map(one, jobs))
    result = {
        "command": "python benchmarks/soak.py " + " ".join(sys.argv[1:]),
        "threads": args.threads,
        "processes": args.processes,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
        "totals": totals(runs),
        "runs": runs,
    }
    print(json.dumps(result["totals"], indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"run directories kept in {work}", file=sys.stderr)


if __name__ == "__main__":
    main()
