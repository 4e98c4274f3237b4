"""kdbench's pytest options, fixtures and session hooks (shared by bench/ and tests/)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent


def _pin_gpu_for_xdist_worker() -> None:
    """One GPU per pytest-xdist worker: set before torch initialises CUDA (workers are gw0, gw1, ...)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or "CUDA_VISIBLE_DEVICES" in os.environ or not shutil.which("nvidia-smi"):
        return
    gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout.count("GPU ")
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(int(worker.removeprefix("gw")) % gpus)


_pin_gpu_for_xdist_worker()


def pytest_addoption(parser):
    group = parser.getgroup("kdbench")
    group.addoption("--full", action="store_true", help="run the study's own recipes (tier 'full'; GPU for CIFAR)")
    group.addoption("--tier", choices=("quick", "full", "fast"), default=None,
                    help="tier to run: quick (default, CPU minutes), full (= --full), fast (short GPU schedules)")
    group.addoption("--data-root", default=os.environ.get("KDBENCH_DATA"),
                    help="folder holding MNIST/ and the CIFAR-10 archives (env KDBENCH_DATA); "
                         "unset: download into the cache dir")
    group.addoption("--cache-dir", default=None, help="teachers and decoded datasets (env KDBENCH_CACHE)")
    group.addoption("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    group.addoption("--seeds", default=None,
                    help="seeds to run: a count N (seeds 0..N-1) or a list '0,3,5'; default: the recipe's count")
    group.addoption("--update-baselines", action="store_true",
                    help="store this run's results as the baselines instead of gating on them (refused for a "
                         "failing run or fewer seeds than the row's recipe needs)")
    group.addoption("--baseline-reason", default=None,
                    help="with --update-baselines: store baselines with fewer seeds than required, for this reason "
                         "(kept in the record)")
    group.addoption("--strict-baselines", action="store_true",
                    help="a row without a baseline fails instead of being reported NEW (on when env CI is set)")
    group.addoption("--baselines-dir", default=str(REPO / "baselines"), help="baselines root")
    group.addoption("--results-dir", default=str(REPO / "results"), help="results root (one folder per session)")
    group.addoption("--reports-dir", default=None,
                    help="where a session's leaderboards go (default <results-dir>/reports); the committed "
                         "reports/ are regenerated from baselines/ by --update-baselines")
    group.addoption("--history", default=os.environ.get("KDBENCH_HISTORY"),
                    help="history store the session's results are added to (env KDBENCH_HISTORY; default "
                         "<results-dir>/history.sqlite)")
    group.addoption("--sweeps", action="store_true",
                    help="also run the rows marked `sweep` (the omit-class, partial-data and alpha x T schemes of "
                         "zoo.analysis; about 25 CPU minutes in the quick tier); `-m sweep` runs only them")
    group.addoption("--distillers", action="store_true",
                    help="also run the rows marked `distillers` (methods other than Hinton KD, zoo.distill); "
                         "`-m distillers` runs only them")
    group.addoption("--amp", action="store_true", help="bf16 autocast (GPU)")
    group.addoption("--channels-last", action="store_true", help="channels_last memory format")
    group.addoption("--compile", action="store_true", help="torch.compile the student")


def pytest_configure(config):
    for name, text in [
        ("mnist", "rows on MNIST"),
        ("cifar10", "rows on CIFAR-10"),
        ("kd", "rows that distill from a teacher"),
        ("teacher", "rows whose model teaches other rows"),
        ("deep", "deep CIFAR rows (ResNet-18 and its teachers)"),
        ("resnet", "the study's ResNet-18 section: ResNet-18, its teachers, and the CNN distilled from it"),
        ("speed", "inference throughput and latency benchmarks (never under xdist)"),
        ("sweep", "rows of the dark-knowledge schemes: deselected unless --sweeps is given"),
        ("distillers", "rows of distillers other than Hinton KD: deselected unless --distillers is given"),
    ]:
        config.addinivalue_line("markers", f"{name}: {text}")
