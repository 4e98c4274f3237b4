"""The full tier's jobs on a real Slurm cluster through submitit (marker `slurm`; tools/slurm-cluster starts one).

Where no cluster answers these tests skip with the reason; with KDBENCH_REQUIRE_SLURM=1 (set by .ci/run, which
starts the cluster) a missing cluster is a failure instead. Every job runs on the cluster's node: rows of MNIST
with 2 seeds and a KD row with its teacher end bit-identical to `pytest bench/` of the same rows; a job signalled
mid-training (scancel --signal=USR2, as on preemption) is requeued and resumes bit-identically from its epoch
checkpoint; a job killed outright leaves its row INCOMPLETE until a rerun finishes just the missing seed; two
students racing for one teacher train it once.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import DATA_ROOT

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[2]
JOBCOMP = Path("/var/log/slurm/jobcomp.log")


def _cluster_problem() -> str | None:
    if not shutil.which("sinfo"):
        return "no Slurm client (sinfo) on PATH; start a cluster with tools/slurm-cluster start"
    try:
        import submitit  # noqa: F401
    except ImportError:
        return "submitit is not installed (pip install -e '.[slurm]')"
    state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if state.returncode or not re.match(r"(idle|mixed|allocated|completing)", state.stdout.strip()):
        return f"the Slurm cluster does not answer (sinfo: {state.stdout.strip() or state.stderr.strip()})"
    if not (DATA_ROOT / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        return f"MNIST not found under {DATA_ROOT}; set KDBENCH_DATA"
    return None


@pytest.fixture(scope="module", autouse=True)
def cluster():
    problem = _cluster_problem()
    if problem and os.environ.get("KDBENCH_REQUIRE_SLURM") == "1":
        pytest.fail(f"KDBENCH_REQUIRE_SLURM=1 but {problem}", pytrace=False)
    if problem:
        pytest.skip(problem)


def kdbench(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "zoo.cli", *args], cwd=ROOT, capture_output=True, text=True)
    print(result.stdout, result.stderr)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def common(out: Path, cache: Path, tier: str = "quick") -> list[str]:
    return ["--tier", tier, "--device", "cpu", "--out", str(out), "--cache-dir", str(cache), "--data-root", str(DATA_ROOT),
            "--db", str(out.parent / "history.sqlite")]


def slurm_executor(out: Path, cache: Path, cpus: int = 1):
    from zoo.runs.executors import SlurmExecutor
    from zoo.runs.jobs import JobSettings

    settings = JobSettings(out, DATA_ROOT.resolve(), cache, "cpu", threads=cpus)
    return SlurmExecutor(settings, cpus_per_task=cpus), settings


def wait(job_ids: list[str], limit_s: float = 900) -> None:
    from zoo.runs.commands import wait_for_slurm

    start = time.monotonic()
    wait_for_slurm(job_ids, poll_s=2)
    assert time.monotonic() - start < limit_s


def jobcomp(job_ids: list[str]) -> list[str]:
    """The scheduler's own record of the jobs (jobcomp/filetxt): one line per finished run."""
    ids = {job_id.split("_")[0] for job_id in job_ids}
    lines = JOBCOMP.read_text().splitlines() if JOBCOMP.exists() else []
    return [line for line in lines if re.search(r"JobId=(\d+)", line) and re.search(r"JobId=(\d+)", line).group(1) in ids
            or any(f"ArrayJobId={i}" in line for i in ids)]


def quality(record: dict) -> dict:
    """Every metric that does not measure time."""
    return {m: v for m, v in record["metrics"].items() if "per_s" not in m and "per_cpu_s" not in m}


def test_rows_on_slurm_equal_pytest_bench(tmp_path):
    rows = ["mnist-mlp800-lr0.01", "mnist-mlp800-kd-lr0.01"]  # the KD row's teacher is planned as its own job
    out, cache = tmp_path / "launch", tmp_path / "cache-slurm"
    launched = kdbench("launch", *rows, *common(out, cache), "--seeds", "2", "--executor", "slurm",
                       "--cpus-per-task", "2", "--wait", "--no-strict", check=False)  # identity is tested, not verdicts
    assert "mnist-mlp1200-teacher-seed0: submitted" in launched.stdout
    ids = re.findall(r"submitted as Slurm job (\S+)", launched.stdout)
    assert len(ids) == 5  # teacher seed 0, two seeds of each row
    completed = jobcomp(ids)
    print("\n".join(completed))
    assert completed and all("JobState=COMPLETED" in line for line in completed)

    pytest_results = tmp_path / "pytest-results"
    selection = [f"bench/test_pairs.py::test_pair[{row}]" for row in rows]
    bench = subprocess.run([sys.executable, "-m", "pytest", *selection, "--seeds", "2", "--device", "cpu",
                            "--results-dir", str(pytest_results), "--cache-dir", str(tmp_path / "cache-pytest"),
                            "--data-root", str(DATA_ROOT), "-p", "no:cacheprovider", "-q"],
                           cwd=ROOT, capture_output=True, text=True, env=os.environ | {"CI": ""})
    assert "2 passed" in bench.stdout or "failed" in bench.stdout, bench.stdout[-3000:]  # both rows ran
    for row in rows:
        gathered = json.loads(next((out / "records").rglob(f"{row}.json")).read_text())
        ran_here = json.loads(next(pytest_results.rglob(f"{row}.json")).read_text())
        assert gathered["seeds"] == ran_here["seeds"] == [0, 1]
        assert quality(gathered) == quality(ran_here)  # bit-identical: exact float equality
        assert gathered["test_logits"]["sha256"] == ran_here["test_logits"]["sha256"] or _same_logits(
            next((out / "records").rglob(f"{row}.logits.npz")), next(pytest_results.rglob(f"{row}.logits.npz")))


def _same_logits(a: Path, b: Path) -> bool:
    import numpy as np

    x, y = np.load(a), np.load(b)
    return all(np.array_equal(x[k], y[k]) for k in ("seeds", "labels", "logits"))


def test_usr2_requeues_and_resumes_bit_identical(tmp_path):
    from zoo.runs.jobs import Job, checkpoint_path, read_seed_result, seed_result_path

    row, tier = "mnist-mlp800-lr0.01", "full"  # 10 epochs of all of MNIST: long enough to be signalled mid-run
    executor, settings = slurm_executor(tmp_path / "slurm", tmp_path / "cache")
    handle = executor.submit_jobs([Job(tier, row, 0)])[0]
    checkpoint = checkpoint_path(settings.out, tier, "cpu", row, 0)
    _until(lambda: checkpoint.exists(), 300, f"no checkpoint at {checkpoint}")
    subprocess.run(["scancel", "--signal=USR2", handle.job_id], check=True)  # what preemption sends
    _until(lambda: "Restarts=1" in _scontrol(handle.job_id), 60, "the job was not requeued")
    wait([handle.job_id])
    log = "".join(p.read_text() for p in (settings.out / "slurm").rglob("*.out"))
    assert "resumed from checkpoint: stage train" in log, log[-3000:]
    resumed = read_seed_result(seed_result_path(settings.out, tier, "mnist", "cpu", row, 0))

    kdbench("run", row, "--seed", "0", "--threads", "1", *common(tmp_path / "whole", tmp_path / "cache", tier))
    whole = read_seed_result(seed_result_path(tmp_path / "whole", tier, "mnist", "cpu", row, 0))
    assert torch.equal(resumed.test_logits, whole.test_logits)
    assert [e["loss"] for e in resumed.report["epochs"]] == [e["loss"] for e in whole.report["epochs"]]
    print("\n".join(jobcomp([handle.job_id])))


def test_killed_job_is_incomplete_until_a_rerun_finishes_it(tmp_path):
    from zoo.runs.jobs import checkpoint_path, seed_result_path

    row, tier = "mnist-mlp800-lr0.01", "full"
    out, cache = tmp_path / "launch", tmp_path / "cache"
    args = [row, *common(out, cache, tier), "--seeds", "2", "--executor", "slurm", "--cpus-per-task", "1", "--no-strict"]
    launched = kdbench("launch", *args)
    ids = dict(re.findall(r"(\S+-seed\d): submitted as Slurm job (\S+)", launched.stdout))
    checkpoint = checkpoint_path(out, tier, "cpu", row, 1)
    _until(checkpoint.exists, 300, f"no checkpoint at {checkpoint}")
    subprocess.run(["scancel", "--signal=KILL", "--full", ids[f"{row}-seed1"]], check=True)
    wait(list(ids.values()))
    gathered = kdbench("gather", *common(out, cache, tier), "--no-strict", check=False)
    assert gathered.returncode == 1
    assert f"INCOMPLETE {row}: 1 job(s) did not finish: {row}-seed1 (checkpoint at" in gathered.stdout

    first = seed_result_path(out, tier, "mnist", "cpu", row, 0)
    finished_at = first.stat().st_mtime_ns
    rerun = kdbench("launch", *args, "--wait", check=False)
    assert first.stat().st_mtime_ns == finished_at  # the finished seed was not run again
    log = "".join(p.read_text() for p in (out / "slurm").rglob("*.out"))
    assert f"{row}-seed0: finished before" in log and "resumed from checkpoint: stage train" in log
    assert "INCOMPLETE" not in rerun.stdout and re.search(rf"(PASS|WARN|FAIL|NEW) {re.escape(row)}", rerun.stdout)


def test_two_students_racing_for_one_teacher_train_it_once(tmp_path):
    from zoo.runs.jobs import Job

    executor, settings = slurm_executor(tmp_path / "race", tmp_path / "cache")
    handles = executor.submit_jobs([Job("quick", "mnist-mlp800-kd-lr0.01", 0), Job("quick", "mnist-mlp800-kd-lr0.1", 0)])
    wait([h.job_id for h in handles])
    logs = [h.stdout() or "" for h in handles]
    trained = [log for log in logs if "[mnist-mlp1200-teacher seed 0] training into the cache" in log]
    loaded = [log for log in logs if "[mnist-mlp1200-teacher seed 0] loaded from cache" in log]
    assert len(trained) == 1 and len(loaded) == 1, logs
    assert all(h.result().endswith(".pt") for h in handles)


def _scontrol(job_id: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout


def _until(condition, limit_s: float, message: str) -> None:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < limit_s, message
        time.sleep(0.5)
