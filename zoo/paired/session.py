"""The paired A/B: two sides, each a (source tree, interpreter), timed alternately, pair by pair.

  sides       the base is a git worktree of a ref (or the candidate's tree under another interpreter); the
              candidate is the working tree (or a worktree of a ref). The run refuses two sides that load the
              same files.
  processes   every pair runs in a fresh worker per side, ended after the pair. One computation runs at a speed
              of its own in each process, for the life of the process, set by where its memory lies (the CNN
              KD step: up to 10% apart between processes of one tree on this VM; rebuilding the block in the
              same process did not move it, and forked children that allocate alike share one speed).
              Long-lived workers turn that into a bias no number of pairs removes; a fresh, randomly placed
              worker per pair draws it anew each time, so it is noise the pairs average and the pairs are
              independent, as the signed-rank test assumes. Workers are forked from one zygote when both
              sides share an interpreter (milliseconds each; zoo.paired.worker), else started (seconds each).
  schedule    in each process pair every block is built, one warm-up turn per side is thrown away, and the
              block gets one pair: `slices` short turns of each side interleaved (AB BA AB ..., starting with
              the other side every other pair), one worker computing at a time; a side's time is its fastest
              turn (see _pair).
  extension   a block whose verdict is still open after `pairs` pairs (zoo.verdicts.paired: the interval
              straddles the margin) gets `EXTEND` more at a time, up to `max_pairs`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from zoo.errors import KdbenchInputError
from zoo.verdicts.paired import PairedSpeed

EXTEND = 4
CALIBRATION_S = 0.05  # a calibration call runs steps until it lasts at least this long


class PairedRunError(KdbenchInputError, RuntimeError):
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


def _worker_env(tree: Path, env: dict[str, str]) -> dict[str, str]:
    worker_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
        [str(tree), *filter(None, [os.environ.get("PYTHONPATH")])]), "OMP_WAIT_POLICY": "PASSIVE",
        "PYTHONUNBUFFERED": "1"}
    worker_env.pop("PYTEST_XDIST_WORKER", None)
    return worker_env


class Worker:
    """One side's worker for a pair (zoo.paired.worker): JSON requests and replies, answered one at a time.
    `errors()` returns the tail of what the worker printed, shown when it fails."""

    def __init__(self, side: Side, requests: TextIO, replies: TextIO, errors: Callable[[], str]):
        self.side, self.requests, self.replies, self.errors = side, requests, replies, errors
        self.identity: dict = {}

    def hello(self) -> dict:
        message = self._read()
        if "hello" not in message:
            raise PairedRunError(f"{self.side.describe()}: the worker did not introduce itself: {message}")
        self.identity = message["hello"]
        return self.identity

    def ask(self, **request) -> dict:
        self.send(**request)
        return self._read()

    def send(self, **request) -> None:
        """A request whose answer is read later (`answer`): the two sides of a process pair build at once."""
        self.requests.write(json.dumps(request) + "\n")
        self.requests.flush()

    def answer(self) -> dict:
        return self._read()

    def _read(self) -> dict:
        line = self.replies.readline()
        if not line:
            err = self.errors()
            hint = ""
            if "No module named zoo.paired" in err or "No module named 'zoo.paired'" in err:
                hint = (" The tree predates kdbench's paired A/B (it has no zoo/paired/worker.py): choose a base at "
                        "or after the commit that added it.")
            raise PairedRunError(f"{self.side.describe()}: the worker ended.{hint}\n{err}")
        return json.loads(line)

    def quit(self) -> None:
        with contextlib.suppress(OSError):  # it ended already
            self.send(op="quit")
        self.requests.close()
        self.replies.close()


class Started:
    """Workers of one side started as processes of their own: the way when the two sides' interpreters differ."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.processes: dict[Worker, tuple[subprocess.Popen, TextIO]] = {}

    def start(self, side: Side) -> Worker:
        errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - read when the worker fails, closed with the run
        process = subprocess.Popen([side.python, "-m", "zoo.paired.worker"], cwd=side.tree,
                                   env=_worker_env(side.tree, self.env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=errors, text=True, bufsize=1)
        worker = Worker(side, process.stdin, process.stdout, lambda: _tail(errors))
        self.processes[worker] = process, errors
        return worker

    def stop(self, worker: Worker) -> None:
        process, errors = self.processes.pop(worker)
        worker.quit()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        errors.close()

    def close(self) -> None:
        for worker in list(self.processes):
            self.stop(worker)


class Forked:
    """Workers of both sides forked from one zygote (see zoo.paired.worker), started from `tree` under `python`."""

    def __init__(self, tree: Path, python: str, env: dict[str, str]):
        self.errors = tempfile.TemporaryFile("w+")  # noqa: SIM115 - read when a child fails, closed by close()
        self.folder = Path(tempfile.mkdtemp(prefix="kdbench-ab-"))
        self.process = subprocess.Popen([python, "-m", "zoo.paired.worker", "--zygote"], cwd=tree,
                                        env=_worker_env(tree, env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.errors, text=True, bufsize=1)
        self.children: dict[Worker, int] = {}
        self.count = 0
        self._expect("ready")

    def _expect(self, key: str) -> dict:
        line = self.process.stdout.readline()
        message = json.loads(line) if line else {}
        if key not in message:
            raise PairedRunError(f"the paired A/B's zygote ({self.process.args}) failed: {message or 'it ended'}\n"
                                 f"{_tail(self.errors)}")
        return message

    def start(self, side: Side) -> Worker:
        self.count += 1
        requests, replies = self.folder / f"{self.count}.requests", self.folder / f"{self.count}.replies"
        os.mkfifo(requests)
        os.mkfifo(replies)
        self.process.stdin.write(json.dumps({"op": "fork", "tree": str(side.tree), "requests": str(requests),
                                             "replies": str(replies)}) + "\n")
        self.process.stdin.flush()
        pid = self._expect("forked")["forked"]
        worker = Worker(side, open(requests, "w"), open(replies),  # noqa: SIM115 - closed by Worker.quit
                        lambda: _tail(self.errors))
        self.children[worker] = pid
        return worker

    def stop(self, worker: Worker) -> None:
        pid = self.children.pop(worker)
        worker.quit()
        self.process.stdin.write(json.dumps({"op": "reap", "pid": pid}) + "\n")
        self.process.stdin.flush()
        self._expect("ended")

    def close(self) -> None:
        for worker in list(self.children):
            self.stop(worker)
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        for stream in (self.process.stdin, self.process.stdout, self.errors):
            stream.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _tail(errors) -> str:
    errors.seek(0)
    return errors.read()[-3000:]


@dataclass
class BlockTiming:
    """What the A/B measured of one block. A pair's time of a side is its fastest turn (see _pair)."""

    name: str
    steps: int = 0
    base_turns: list[list[float]] = field(default_factory=list)  # per pair, the seconds of each of the side's turns
    candidate_turns: list[list[float]] = field(default_factory=list)
    base_cpu_seconds: list[float] = field(default_factory=list)  # per pair, CPU seconds of that fastest turn
    candidate_cpu_seconds: list[float] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)  # "AB" (base first) or "BA", per pair
    problem: str = ""  # why it was not timed (a side could not build it)
    missing_in_base: bool = False

    @property
    def base_seconds(self) -> list[float]:
        return [min(turns) for turns in self.base_turns]

    @property
    def candidate_seconds(self) -> list[float]:
        return [min(turns) for turns in self.candidate_turns]

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
    slices: int  # a pair is this many turns of each side, interleaved (ABBA...); a side's time is its fastest


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
    started = time.perf_counter()
    if base_side.python == candidate_side.python:
        workers = Forked(Path(__file__).resolve().parents[2], candidate_side.python, env or {})
    else:
        workers = Started(env or {})
    try:
        return _run_pairs(workers, base_side, candidate_side, blocks, tier, schedule, judge, log, started)
    finally:
        workers.close()


def _run_pairs(workers: Forked | Started, base: Side, candidate: Side, blocks: list[str], tier: str,
               schedule: Schedule, judge: Callable[[str, BlockTiming], PairedSpeed], log: Callable[[str], None],
               started: float) -> tuple[dict, dict, list[BlockTiming]]:
    timings = [BlockTiming(name) for name in blocks]
    with ProcessPair(workers, base, candidate) as first:
        identities = first.base.identity, first.candidate.identity
        for worker in (first.base, first.candidate):
            ident = worker.identity
            log(f"{worker.side.label:9}: {ident['commit'] or 'no commit'}{' (uncommitted changes)' if ident['dirty'] else ''}"
                f" {ident['zoo']} python {ident['python_version']} torch {ident['torch']} threads {ident['threads']}")
        _calibrate(timings, tier, first, schedule, log)
        active = [t for t in timings if not t.problem]
        first.time_pairs(active, tier, schedule.slices)
    wanted = {t.name: schedule.pairs for t in active}
    process_pairs = 1
    while pending := [t for t in active if len(t.ratios) < wanted[t.name]]:
        with ProcessPair(workers, base, candidate) as pair:
            pair.time_pairs(pending, tier, schedule.slices)
        process_pairs += 1
        for timing in pending:
            if (len(timing.ratios) == wanted[timing.name] < schedule.max_pairs
                    and not judge(timing.name, timing).conclusive):
                wanted[timing.name] = min(schedule.max_pairs, wanted[timing.name] + EXTEND)
    log(f"paired A/B: {len(active)} blocks, {sum(len(t.ratios) for t in active)} pairs on {process_pairs} fresh "
        f"process pairs ({type(workers).__name__.lower()}) in {time.perf_counter() - started:.0f} s")
    return *identities, timings


class ProcessPair:
    """A fresh base and a fresh candidate worker, started together, for one pair of every block it is given."""

    def __init__(self, workers: Forked | Started, base: Side, candidate: Side):
        self.workers, self.sides = workers, (base, candidate)
        self.built: set[str] = set()  # blocks built and warmed up on both sides

    def __enter__(self) -> ProcessPair:
        self.base = self.workers.start(self.sides[0])
        try:
            self.candidate = self.workers.start(self.sides[1])
        except BaseException:
            self.workers.stop(self.base)
            raise
        try:
            self.base.hello()
            self.candidate.hello()
            _check_sides(self.base, self.candidate)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.workers.stop(self.base)
        self.workers.stop(self.candidate)

    def build(self, names: list[str], tier: str) -> dict[str, dict]:
        """Build `names` on both sides at once (nothing is timed meanwhile); per block, the first side's refusal
        {"error", "side"} or {} when both built it. A crash of either side is an error."""
        for worker in (self.base, self.candidate):
            for name in names:
                worker.send(op="build", block=name, tier=tier)
        refusals: dict[str, dict] = {name: {} for name in names}
        for worker in (self.base, self.candidate):
            for name in names:
                answer = worker.answer()
                if "error" in answer:
                    if answer["kind"] == "crash":
                        raise PairedRunError(f"{worker.side.describe()}: building {name} failed: {answer['error']}")
                    refusals[name] = refusals[name] or {"error": answer["error"], "side": worker.side.label}
        return refusals

    def time_pairs(self, timings: list[BlockTiming], tier: str, slices: int) -> None:
        """One pair of each block: built here (the first process pair built them already), one warm-up turn
        per side thrown away, then the pair; pairs alternate which side starts."""
        for name, refusal in self.build([t.name for t in timings if t.name not in self.built], tier).items():
            if refusal:
                raise PairedRunError(f"the {refusal['side']} built {name} before and now refuses it: {refusal['error']}")
        for j, timing in enumerate(timings):
            if timing.name not in self.built:
                for worker in (self.base, self.candidate):
                    _time(worker, timing.name, timing.steps)
                self.built.add(timing.name)
            _pair(timing, self.base, self.candidate, base_first=(len(timing.ratios) + j) % 2 == 0, slices=slices)


def _calibrate(timings: list[BlockTiming], tier: str, pair: ProcessPair, schedule: Schedule, log) -> None:
    """Build the blocks on both sides of the first process pair (a side that cannot build one leaves it untimed,
    saying why), size each block's turn to about block_seconds / slices on the base, and warm both sides up."""
    refusals = pair.build([timing.name for timing in timings], tier)
    for timing in timings:
        if refusal := refusals[timing.name]:
            timing.problem = f"the {refusal['side']} cannot build it: {refusal['error']}"
            timing.missing_in_base = refusal["side"] == "base"
            log(f"{timing.name}: not timed, {timing.problem}")
            continue
        steps = 1
        for _ in range(2):  # the first pass warms the block up (allocations, caches), the second sizes it
            while True:
                seconds = _time(pair.base, timing.name, steps)[0]
                if seconds >= CALIBRATION_S or steps >= 1 << 20:
                    break
                steps *= 2
        timing.steps = max(1, round(steps * schedule.block_seconds / schedule.slices / seconds))
        _time(pair.candidate, timing.name, timing.steps)  # the candidate's warm-up turn, thrown away
        pair.built.add(timing.name)


def _time(worker: Worker, name: str, steps: int) -> tuple[float, float]:
    answer = worker.ask(op="time", block=name, steps=steps)
    if "error" in answer:
        raise PairedRunError(f"{worker.side.describe()}: timing {name} failed: {answer['error']}")
    return answer["seconds"], answer["cpu_seconds"]


def _pair(timing: BlockTiming, base: Worker, candidate: Worker, base_first: bool, slices: int) -> None:
    """One pair: `slices` turns of each side in the order AB BA AB ... (or BA AB ...).

    A side's time in the pair is its fastest turn: a burst of the host (a second of stolen CPU, seen several
    times a minute on this VM) slows the turns it falls on, by up to 6x, and it falls on one side's turns more
    than the other's; a slowdown of the code slows every turn, the fastest too."""
    turns: dict[Worker, list[tuple[float, float]]] = {base: [], candidate: []}
    for turn in range(slices):
        order = (base, candidate) if base_first == (turn % 2 == 0) else (candidate, base)
        for worker in order:
            turns[worker].append(_time(worker, timing.name, timing.steps))
    timing.base_turns.append([seconds for seconds, _ in turns[base]])
    timing.candidate_turns.append([seconds for seconds, _ in turns[candidate]])
    timing.base_cpu_seconds.append(min(turns[base])[1])
    timing.candidate_cpu_seconds.append(min(turns[candidate])[1])
    timing.orders.append("AB" if base_first else "BA")
