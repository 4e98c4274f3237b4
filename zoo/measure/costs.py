"""Cost measurements of a model: parameters, multiply-adds (fvcore), throughput, peak memory."""
from __future__ import annotations

import logging
import os
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import torch
import torch.nn as nn
from threadpoolctl import ThreadpoolController


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_gmacs(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[float, dict[str, int]]:
    """Forward multiply-adds for one input of `input_shape` (no batch dim), in GMACs.

    fvcore counts one multiply-add as one "flop"; the column is therefore named GMACs.
    Returns the count and fvcore's unsupported ops (op name -> occurrences), which it skips.
    """
    from fvcore.nn import FlopCountAnalysis

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    analysis = FlopCountAnalysis(model, torch.zeros(1, *input_shape, device=device))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    logging.getLogger("fvcore.nn.jit_analysis").setLevel(logging.ERROR)
    total = analysis.total() / 1e9
    unsupported = dict(analysis.unsupported_ops())
    model.train(was_training)
    return total, unsupported


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory so far: CUDA max allocated on a GPU, else the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def round_seconds(fn, rounds: int, warmup: int = 0) -> list[float]:
    """Wall time of each of `rounds` calls of `fn` (which synchronises its device itself)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


BUSY_CORES = 0.25
"""Other processes using more than this many cores on average make absolute timings ungateable."""


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy ticks of the whole machine, ticks of this process) from /proc; None where /proc is absent."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal, int(own[11]) + int(own[12])


SESSION_PID_ENV = "KDBENCH_SESSION_PID"
"""The process at the root of this benchmark session (a pytest-xdist controller, a local launch): the processes
under it are the session's own workers, not other load."""


def _session_cpu_seconds() -> dict[int, float]:
    """CPU seconds so far of each of this session's other processes (the tree under $KDBENCH_SESSION_PID but this
    process): pytest-xdist's sibling workers, a local launch's sibling jobs. Empty outside such a session."""
    root = os.environ.get(SESSION_PID_ENV, "")
    if not root.isdigit():
        return {}
    try:
        tree = psutil.Process(int(root))
        processes = [tree, *tree.children(recursive=True)]
    except psutil.Error:
        return {}
    seconds = {}
    for process in processes:
        if process.pid != os.getpid():
            try:
                times = process.cpu_times()
                seconds[process.pid] = times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                pass
    return seconds


def _throttled_seconds() -> float | None:
    """Seconds a CPU quota (cgroup cpu controller) has held this process's cgroup and its ancestors back so far;
    None where the kernel does not tell. A throttled process runs as on a slower host: fewer CPU-seconds per second."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" or "cpu" in controllers.split(","):
            root = Path("/sys/fs/cgroup") / ("" if controllers == "" else controllers)
            key, scale = ("throttled_usec", 1e-6) if controllers == "" else ("throttled_time", 1e-9)
            break
    else:
        return None
    total, found = 0.0, False
    folder = root / path.lstrip("/")
    while True:
        try:
            stats = dict(line.split() for line in (folder / "cpu.stat").read_text().splitlines() if line.strip())
            total, found = total + int(stats.get(key, 0)) * scale, True
        except (OSError, ValueError):
            pass
        if folder == root or folder.parent == folder:
            break
        folder = folder.parent
    return total if found else None


@dataclass
class MachineLoad:
    """How busy the machine was with other work while a timing ran, and how much a CPU quota held it back.

    `others_cores`: other processes' CPU use, in cores; steal time (a hypervisor running other guests on our
    cores) counts as other work too. `throttled`: the fraction of the wall time a CPU quota on this
    process's cgroup (or an ancestor's) held it back. Either is None where the kernel does not tell.
    """

    others_cores: float | None
    seconds: float
    throttled: float | None = None

    @property
    def busy(self) -> bool:
        return self.others_cores is not None and self.others_cores > BUSY_CORES

    @property
    def rationed(self) -> bool:
        """A CPU quota throttled this timing (more than 2% of its wall time): the host ran as a slower one."""
        return self.throttled is not None and self.throttled > 0.02

    def as_dict(self) -> dict:
        return {"others_cores": self.others_cores, "seconds": self.seconds, "busy": self.busy,
                "throttled": self.throttled, "rationed": self.rationed}


class LoadMonitor:
    """Context manager measuring other processes' CPU use, and CPU-quota throttling, over its block.

    The session's own processes (SESSION_PID_ENV: sibling xdist workers or launch jobs) are left out: they are
    the benchmark, not a neighbour.

        with LoadMonitor() as load:
            timed_work()
        load.result.busy
    """

    def __enter__(self) -> LoadMonitor:
        self._start, self._throttled, self._t0 = _cpu_ticks(), _throttled_seconds(), time.perf_counter()
        self._siblings = _session_cpu_seconds()
        return self

    def __exit__(self, *exc) -> None:
        end, throttled, seconds = _cpu_ticks(), _throttled_seconds(), time.perf_counter() - self._t0
        others = fraction = None
        if self._start is not None and end is not None and seconds > 0:
            ticks = (end[0] - self._start[0]) - (end[1] - self._start[1])
            siblings = sum(cpu - self._siblings.get(pid, 0.0) for pid, cpu in _session_cpu_seconds().items())
            others = max(0.0, (ticks / os.sysconf("SC_CLK_TCK") - siblings) / seconds)
        if self._throttled is not None and throttled is not None and seconds > 0:
            fraction = max(0.0, (throttled - self._throttled) / seconds)
        self.result = MachineLoad(others, seconds, fraction)


def combine_loads(loads: list[MachineLoad]) -> MachineLoad:
    """The time-weighted load over several timed blocks."""
    seconds = sum(load.seconds for load in loads)

    def weighted(values: list[tuple[float | None, float]]) -> float | None:
        known = [(v, s) for v, s in values if v is not None]
        weight = sum(s for _, s in known)
        return sum(v * s for v, s in known) / weight if known and weight else None

    return MachineLoad(weighted([(load.others_cores, load.seconds) for load in loads]), seconds,
                       weighted([(load.throttled, load.seconds) for load in loads]))


class MachineProbe:
    """How fast this host is right now, measured by a fixed workload that neither torch nor kdbench runs.

    Each sample runs, on each of `threads` Python threads (torch's thread count by default, so it fills the
    cores training fills), PROBE_REPEATS rounds of a float32 matrix product in numpy's own BLAS (held to one
    thread per caller) and a copy of a buffer larger than the caches. A host that slows training (a slow VM
    phase, a CPU quota, a lower clock) slows this workload too; a slower torch or a slower kdbench does not.
    Timings divided by the probe rate taken around them compare across such phases of one machine.

        probe = MachineProbe()
        window = probe.window()          # samples once now
        train(..., between_epochs=window.sample)
        window.sample(); window.rate      # workloads per second over the window's samples
    """

    WORKLOAD = "probe-v1: per thread 10 x (384x384 float32 matmul + 16 MiB copy)"
    PROBE_REPEATS = 10
    MATRIX = 384
    COPY_BYTES = 16 * 2**20

    def __init__(self, threads: int | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self.threads = threads or torch.get_num_threads()
        rng = np.random.default_rng(0)
        self._buffers = [
            (rng.standard_normal((self.MATRIX, self.MATRIX), dtype=np.float32),
             rng.standard_normal((self.MATRIX, self.MATRIX), dtype=np.float32),
             np.empty((self.MATRIX, self.MATRIX), dtype=np.float32),
             np.ones(self.COPY_BYTES // 4, dtype=np.float32), np.empty(self.COPY_BYTES // 4, dtype=np.float32))
            for _ in range(self.threads)]
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="kdbench-probe")
        self._blas = ThreadpoolController()
        self.sample()  # first touch of every page and warm-up of the threads

    def _work(self, index: int) -> float:
        """One thread's share of a sample; returns the CPU seconds that thread spent on it."""
        a, b, product, source, target = self._buffers[index]
        start = time.thread_time()
        for _ in range(self.PROBE_REPEATS):
            np.matmul(a, b, out=product)
            np.copyto(target, source)
        return time.thread_time() - start

    def sample(self) -> tuple[float, float]:
        """(wall seconds, CPU seconds over all its threads) of one run of the workload on every thread."""
        with self._blas.limit(limits=1, user_api="blas"):
            start = time.perf_counter()
            cpu_seconds = sum(self._pool.map(self._work, range(self.threads)))
            return time.perf_counter() - start, cpu_seconds

    def window(self) -> ProbeWindow:
        """A window of samples around a timed section; it takes its first sample now."""
        return ProbeWindow(self)

    def describe(self) -> dict:
        """What the probe ran on: its workload, threads and numpy's BLAS (a rate compares only within one). numpy's
        BLAS is picked by its path: scipy, once imported, loads an OpenBLAS of its own."""
        libraries = [lib for lib in self._blas.info() if lib.get("user_api") == "blas"]
        blas = next((lib for lib in libraries if "numpy" in lib.get("filepath", "")), libraries[0] if libraries else {})
        return {"workload": self.WORKLOAD, "threads": self.threads,
                "blas": f"{blas.get('internal_api', '?')} {blas.get('version', '?')} {blas.get('architecture', '?')}"}


class ProbeWindow:
    """The probe's samples taken around and inside one timed section (between its epochs or rounds)."""

    def __init__(self, probe: MachineProbe):
        self.probe, self.seconds, self.cpu_seconds = probe, [], []
        self.sample()

    def sample(self) -> None:
        seconds, cpu_seconds = self.probe.sample()
        self.seconds.append(seconds)
        self.cpu_seconds.append(cpu_seconds)

    @property
    def rate(self) -> float:
        """Probe workloads per second over every sample of the window (the host's speed as wall time sees it)."""
        return len(self.seconds) / sum(self.seconds)

    @property
    def cpu_rate(self) -> float:
        """The median sample's workloads per CPU-second of the probe's threads, per thread: the host's speed as
        CPU time sees it. A CPU quota or a busy neighbour takes CPU time away without slowing it; a slower host
        (a slow VM phase, a lower clock) slows it as it slows the CPU time of training."""
        return statistics.median(self.probe.threads / max(s, 1e-9) for s in self.cpu_seconds)
