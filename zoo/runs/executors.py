"""Run a plan's jobs: on this machine (`LocalExecutor`, one process per slot) or on a Slurm cluster through
submitit (`SlurmExecutor`, one job array per wave). Both run the same `zoo.runs.jobs.run_job`.

On Slurm a wave's array waits for the teacher jobs its jobs need (afterok; a failed teacher cancels its
students, which the gather then reports INCOMPLETE), and a timing job waits for every earlier job (afterany)
and runs alone on its node (--exclusive). A job is a submitit `Checkpointable`: on preemption, on its time
limit or on `scancel --signal=USR2`, submitit requeues it and the requeued job resumes from its last epoch
checkpoint; a (row, seed) that finished is never rerun.
"""
from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from zoo.measure.costs import SESSION_PID_ENV
from zoo.runs.jobs import Job, JobSettings, run_job
from zoo.runs.plan import Plan


def _enter_slot(slot: int, device: str, threads: int | None) -> None:
    """A slot's worker process starts: its GPU (before CUDA initialises) and its CPU threads."""
    if device.startswith("cuda"):
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot)
    if threads:
        import torch

        torch.set_num_threads(threads)


def _run_in_slot(job: Job, settings: JobSettings, log_file: Path) -> str:
    """One job in a slot's worker process, its output appended to its log."""
    with open(log_file, "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            outcome = run_job(job, settings)
        except BaseException:
            traceback.print_exc()
            raise
        print(outcome, flush=True)
        return outcome


@dataclass
class LocalExecutor:
    """Runs a plan on this machine with one worker process per slot (one per GPU, or per share of the CPU cores),
    each running job after job (imports and datasets load once per slot, not per job); a job starts once its
    teacher's job succeeded, a timing job alone. Each job's output goes to <out>/logs/<job>.log."""

    settings: JobSettings
    slots: int
    log: Callable[[str], None] = lambda line: print(line, flush=True)
    statuses: dict[str, str] = field(default_factory=dict)  # job name -> "ok", "failed: ...", "skipped: ..."

    def run(self, plan: Plan) -> dict[str, str]:
        logs = Path(self.settings.out) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        os.environ[SESSION_PID_ENV] = str(os.getpid())  # the slots are this launch's own load, not other load
        settings = self.job_settings()
        workers = [self._worker(slot, settings) for slot in range(self.slots)]
        pending = plan.jobs
        running: dict[str, tuple[Future, int]] = {}  # job name -> its future and slot
        try:
            while pending or running:
                for name, (future, slot) in list(running.items()):
                    if future.done():
                        error = future.exception()
                        self.statuses[name] = "ok" if error is None else f"failed: {type(error).__name__}: {error}"
                        self.log(f"{name}: {self.statuses[name]}")
                        if isinstance(error, BrokenProcessPool):  # the worker died (killed, out of memory)
                            workers[slot] = self._worker(slot, settings)
                        del running[name]
                for job in list(pending):
                    teacher = plan.after.get(job.name)
                    if teacher and self.statuses.get(teacher, "ok").startswith(("failed", "skipped")):
                        self.statuses[job.name] = f"skipped: its teacher's job {teacher} {self.statuses[teacher]}"
                        self.log(f"{job.name}: {self.statuses[job.name]}")
                        pending.remove(job)
                free = [slot for slot in range(self.slots) if slot not in {s for _, s in running.values()}]
                for job in [job for job in pending if self._ready(job, plan, running)]:
                    if not free or job.is_timing and running:
                        break
                    slot = free.pop(0)
                    running[job.name] = (workers[slot].submit(_run_in_slot, job, settings, logs / f"{job.name}.log"), slot)
                    pending.remove(job)
                    self.log(f"{job.name}: started (slot {slot}, log {logs / (job.name + '.log')})")
                    if job.is_timing:
                        break
                time.sleep(0.1)
        finally:
            for worker in workers:
                worker.shutdown(cancel_futures=True)
        return self.statuses

    def _worker(self, slot: int, settings: JobSettings) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_enter_slot,
                                   initargs=(slot, settings.device, settings.threads))

    def job_settings(self) -> JobSettings:
        """Each job's settings: on a CPU, the cores shared out between the slots (unless --threads says)."""
        if self.settings.threads or self.settings.device != "cpu":
            return self.settings
        return dataclasses.replace(self.settings, threads=max(1, (os.cpu_count() or 1) // self.slots))

    def _ready(self, job: Job, plan: Plan, running: dict) -> bool:
        """A job is ready once its teacher's job has finished; a timing job once every earlier job has."""
        if job.is_timing:
            earlier = plan.jobs[:plan.jobs.index(job)]
            return not running and all(e.name in self.statuses for e in earlier)
        teacher = plan.after.get(job.name)
        return teacher is None or self.statuses.get(teacher) == "ok"


class SlurmJob:
    """A job as submitit runs it on a Slurm node (picklable; resumable through `checkpoint`)."""

    def __init__(self, job: Job, settings: JobSettings):
        self.job, self.settings = job, settings

    def __call__(self) -> str:
        outcome = run_job(self.job, self.settings)
        print(outcome, flush=True)
        return outcome

    def checkpoint(self):
        """Called by submitit on preemption, timeout or USR2: requeue this job; it resumes from its last epoch
        checkpoint (written by the training loop after every epoch)."""
        import submitit

        return submitit.helpers.DelayedSubmission(SlurmJob(self.job, self.settings))


@dataclass
class SlurmExecutor:
    """Submits a plan to Slurm through submitit: one job array per wave, with dependencies."""

    settings: JobSettings
    partition: str | None = None
    timeout_min: int = 24 * 60
    cpus_per_task: int = 1
    gpus_per_job: int = 0
    log: Callable[[str], None] = print
    job_ids: dict[str, str] = field(default_factory=dict)  # job name -> Slurm job id (array task: id_index)

    def executor(self):
        try:
            import submitit
        except ImportError as err:
            raise RuntimeError("the Slurm executor needs submitit: pip install -e '.[slurm]'") from err
        executor = submitit.AutoExecutor(folder=Path(self.settings.out) / "slurm" / "%j", cluster="slurm")
        executor.update_parameters(timeout_min=self.timeout_min, cpus_per_task=self.cpus_per_task,
                                   slurm_partition=self.partition, slurm_signal_delay_s=60, name="kdbench")
        if self.gpus_per_job:
            executor.update_parameters(gpus_per_node=self.gpus_per_job)
        return executor

    def submit(self, plan: Plan) -> list:
        """Submit every wave as a job array (see the module docstring); returns the submitit jobs."""
        submitted = []
        for wave in plan.waves:
            if wave[0].is_timing:
                needs, kind = list(self.job_ids.values()), "afterany"
            else:
                needs, kind = sorted({self.job_ids[plan.after[j.name]] for j in wave if j.name in plan.after}), "afterok"
            submitted += self.submit_jobs(wave, f"{kind}:{':'.join(needs)}" if needs else None, wave[0].is_timing)
        return submitted

    def submit_jobs(self, jobs: list[Job], dependency: str | None = None, exclusive: bool = False) -> list:
        """Submit `jobs` as one job array (after `dependency`; alone on a node if `exclusive`)."""
        executor = self.executor()
        executor.update_parameters(slurm_dependency=dependency, slurm_exclusive=exclusive or None,
                                   slurm_additional_parameters={"requeue": True, "kill-on-invalid-dep": "yes"})
        with executor.batch():
            handles = [executor.submit(SlurmJob(job, self.settings)) for job in jobs]
        for job, handle in zip(jobs, handles):
            self.job_ids[job.name] = handle.job_id
            self.log(f"{job.name}: submitted as Slurm job {handle.job_id}" + (f" ({dependency})" if dependency else ""))
        return handles
