"""The paired A/B: two sides, each a (source tree, interpreter) in a long-lived worker, timed alternately.

  sides       the base is a git worktree of a ref (or the candidate's tree under another interpreter); the
              candidate is the working tree (or a worktree of a ref). The run refuses two sides that load the
              same files.
  schedule    every block is built once per side and one warm-up block per side is thrown away; then pairs
              are timed round-robin over the blocks, one worker at a time. A pair is `slices` short turns of
              each side interleaved (AB BA AB ..., starting with the other side every other pair), summed per
              side: a slow phase of the host, of any length beyond one turn, lands on both sides alike.
  workers     each side runs in `workers` processes, and pair i of a block runs on the (i mod workers)-th of
              each: an identical computation in two processes can differ by a few percent for the life of the
              processes (where the allocator put its buffers; measured up to 9% on this VM), and the pairs
              spread that over several processes instead of charging it all to the code.
  extension   a block whose verdict is still open after `pairs` pairs (zoo.verdicts.paired: the interval
              straddles the margin) gets `EXTEND` more pairs at a time, up to `max_pairs`.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from zoo.verdicts.paired import PairedSpeed

EXTEND = 4
CALIBRATION_S = 0.05  # a calibration call runs steps until it lasts at least this long


class PairedRunError(RuntimeError):
    """The A/B cannot run as asked (a side that cannot start, two sides that are one, a ref git does not know);
    the message says which side and what to do."""


@dataclass(frozen=True)
class Side:
    label: str  # "base" or "candidate"
    tree: Path
    python: str
    ref: str  # what the user named: a git ref, or "working tree"

    def describe(self) -> str:
        return f"{self.label} {self.ref} ({self.tree}, {self.python})"


def _git(project: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True)
    if done.returncode:
        raise PairedRunError(f"git {' '.join(args)} in {project} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def worktree(project: Path, ref: str, root: Path) -> Path:
    """A clean, detached git worktree of `ref` under `root` (kept and reused: its folder is named by the commit)."""
    try:
        commit = _git(project, "rev-parse", "--verify", f"{ref}^{{commit}}")
    except PairedRunError as err:
        raise PairedRunError(f"--speed-base/--base {ref!r}: not a commit of the repository at {project} (a shallow "
                             f"clone lacks history: fetch with depth 0); {err}") from err
    path = root / commit
    if path.is_dir():
        here = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain"], capture_output=True, text=True)
        if here.returncode == 0 and here.stdout.strip() == commit and not dirty.stdout.strip():
            return path
        subprocess.run(["rm", "-rf", str(path)], check=True)
    root.mkdir(parents=True, exist_ok=True)
    _git(project, "worktree", "prune")
    _git(project, "worktree", "add", "--detach", "--force", str(path), commit)
    return path


class Worker:
    """One side's worker process; requests are answered one at a time."""

    def __init__(self, side: Side, env: dict[str, str]):
        self.side = side
        worker_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
            [str(side.tree), *filter(None, [os.environ.get("PYTHONPATH")])]), "OMP_WAIT_POLICY": "PASSIVE",
            "PYTHONUNBUFFERED": "1"}
        worker_env.pop("PYTEST_XDIST_WORKER", None)
        self.process = subprocess.Popen([side.python, "-m", "zoo.paired.worker"], cwd=side.tree, env=worker_env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, bufsize=1)
        self.identity: dict = {}

    def hello(self) -> dict:
        message = self._read()
        if "hello" not in message:
            raise PairedRunError(f"{self.side.describe()}: the worker did not introduce itself: {message}")
        self.identity = message["hello"]
        return self.identity

    def ask(self, **request) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            err = self.process.stderr.read()[-3000:]
            hint = ""
            if "No module named zoo.paired" in err or "No module named 'zoo.paired'" in err:
                hint = (" The tree predates kdbench's paired A/B (it has no zoo/paired/worker.py): choose a base at "
                        "or after the commit that added it.")
            raise PairedRunError(f"{self.side.describe()}: the worker ended.{hint}\n{err}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()


@dataclass
class BlockTiming:
    """What the A/B measured of one block."""

    name: str
    steps: int = 0
    base_seconds: list[float] = field(default_factory=list)
    candidate_seconds: list[float] = field(default_factory=list)
    base_cpu_seconds: list[float] = field(default_factory=list)
    candidate_cpu_seconds: list[float] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)  # "AB" (base first) or "BA", per pair
    processes: list[int] = field(default_factory=list)  # the process pair (worker index on each side), per pair
    problem: str = ""  # why it was not timed (a side could not build it)
    missing_in_base: bool = False

    @property
    def ratios(self) -> list[float]:
        return [c / b for c, b in zip(self.candidate_seconds, self.base_seconds)]

    @property
    def cpu_ratios(self) -> list[float]:
        return [c / b for c, b in zip(self.candidate_cpu_seconds, self.base_cpu_seconds)]


@dataclass(frozen=True)
class Schedule:
    """How many pairs and how long a block: [tool.kdbench.speed] settings."""

    pairs: int
    max_pairs: int
    block_seconds: float
    slices: int  # a pair is this many turns of each side, interleaved (ABBA...), summed per side
    workers: int  # worker processes per side; pair i runs on the i-th of each side, round-robin


def _check_sides(base: Worker, candidate: Worker) -> None:
    a, b = base.identity, candidate.identity
    if a["zoo"] == b["zoo"] and a["torch_file"] == b["torch_file"] and a["python"] == b["python"]:
        raise PairedRunError(f"both sides load the same files ({a['zoo']}, {a['torch_file']}): nothing would be "
                             f"compared. Give the base another tree (--base REF) or another interpreter (--base-python)")


def run_pairs(base_side: Side, candidate_side: Side, blocks: list[str], tier: str, schedule: Schedule,
              judge: Callable[[str, BlockTiming], PairedSpeed], env: dict[str, str] | None = None,
              log: Callable[[str], None] = print) -> tuple[dict, dict, list[BlockTiming]]:
    """Time every block of `blocks` on both sides; returns both sides' identities and the timings.

    `judge(block, timing)` gives the verdict that decides whether a block needs more pairs.
    """
    env = env or {}
    started = time.perf_counter()
    bases = [Worker(base_side, env) for _ in range(schedule.workers)]
    candidates = [Worker(candidate_side, env) for _ in range(schedule.workers)]
    try:
        for worker in (*bases, *candidates):
            worker.hello()
        _check_sides(bases[0], candidates[0])
        for worker in (bases[0], candidates[0]):
            ident = worker.identity
            log(f"{worker.side.label:9}: {ident['commit'] or 'no commit'}{' (uncommitted changes)' if ident['dirty'] else ''}"
                f" {ident['zoo']} python {ident['python_version']} torch {ident['torch']} threads {ident['threads']}")
        timings = [_build(name, tier, bases, candidates, schedule, log) for name in blocks]
        active = [t for t in timings if not t.problem]

        def pair(timing: BlockTiming, j: int) -> None:
            i = len(timing.ratios)
            w = i % schedule.workers
            _pair(timing, bases[w], candidates[w], base_first=(i // schedule.workers + j) % 2 == 0,
                  slices=schedule.slices)
            timing.processes.append(w)

        for _ in range(schedule.pairs):
            for j, timing in enumerate(active):
                pair(timing, j)
        open_blocks = [t for t in active if not judge(t.name, t).conclusive]
        while open_blocks:
            for _ in range(EXTEND):
                for j, timing in enumerate(open_blocks):
                    pair(timing, j)
            open_blocks = [t for t in open_blocks if len(t.ratios) < schedule.max_pairs
                           and not judge(t.name, t).conclusive]
        log(f"paired A/B: {len(active)} blocks, {sum(len(t.ratios) for t in active)} pairs on {schedule.workers} "
            f"worker(s) per side in {time.perf_counter() - started:.0f} s")
        return bases[0].identity, candidates[0].identity, timings
    finally:
        for worker in (*bases, *candidates):
            worker.close()


def _build(name: str, tier: str, bases: list[Worker], candidates: list[Worker], schedule: Schedule,
           log) -> BlockTiming:
    """Build the block in every worker, size a turn to about block_seconds / slices on the first base worker, and
    throw one turn away per worker."""
    timing = BlockTiming(name)
    for worker in (*bases, *candidates):
        answer = worker.ask(op="build", block=name, tier=tier)
        if "error" in answer:
            if answer["kind"] == "crash":
                raise PairedRunError(f"{worker.side.describe()}: building {name} failed: {answer['error']}")
            timing.problem = f"the {worker.side.label} cannot build it: {answer['error']}"
            timing.missing_in_base = worker in bases
            log(f"{name}: not timed, {timing.problem}")
            return timing
    steps = 1
    for _ in range(2):  # the first pass warms the block up (allocations, caches), the second sizes it
        while True:
            seconds = _time(bases[0], name, steps)[0]
            if seconds >= CALIBRATION_S or steps >= 1 << 20:
                break
            steps *= 2
    timing.steps = max(1, round(steps * schedule.block_seconds / schedule.slices / seconds))
    for worker in (*bases, *candidates):  # the warm-up turn, thrown away
        _time(worker, name, timing.steps)
    return timing


def _time(worker: Worker, name: str, steps: int) -> tuple[float, float]:
    answer = worker.ask(op="time", block=name, steps=steps)
    if "error" in answer:
        raise PairedRunError(f"{worker.side.describe()}: timing {name} failed: {answer['error']}")
    return answer["seconds"], answer["cpu_seconds"]


def _pair(timing: BlockTiming, base: Worker, candidate: Worker, base_first: bool, slices: int) -> None:
    """One pair: `slices` turns of each side, in the order AB BA AB ... (or BA AB ...), summed per side."""
    total = {base: [0.0, 0.0], candidate: [0.0, 0.0]}
    for turn in range(slices):
        order = (base, candidate) if base_first == (turn % 2 == 0) else (candidate, base)
        for worker in order:
            seconds, cpu_seconds = _time(worker, timing.name, timing.steps)
            total[worker][0] += seconds
            total[worker][1] += cpu_seconds
    timing.base_seconds.append(total[base][0])
    timing.candidate_seconds.append(total[candidate][0])
    timing.base_cpu_seconds.append(total[base][1])
    timing.candidate_cpu_seconds.append(total[candidate][1])
    timing.orders.append("AB" if base_first else "BA")
