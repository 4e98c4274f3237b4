"""Export stored records to the experiment trackers labs already run: MLflow and TensorBoard.

One tracker run per (row, seed): the recipe as parameters; row, seed, tier, device, dataset, commit, machine
and the gate's verdict as tags; the per-epoch loss, lr and training accuracy (and throughput) as metrics over
steps (the epoch); the seed's final metrics (test accuracy, teacher KL, ...) once, at the last step. Written
after the fact from stored records, so training machines never need the network or the tracker's client.

    kdbench export --to mlflow RUN [--tracking-uri sqlite:///mlflow.db] [--experiment kdbench]   (extra `mlflow`)
    kdbench export --to tensorboard RUN [--out runs/]                                           (extra `tensorboard`)

An MLflow export skips a (row, seed) whose record it holds already (tag kdbench.record), so exporting a run set
twice adds nothing.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from zoo.records.record import Record

EPOCH_METRICS = {"loss": "train/loss", "lr": "train/lr", "train_accuracy": "train/accuracy",
                 "images_per_s": "train/images_per_s"}
"""Per-epoch keys of a seed's training report -> the tracker's metric names."""


@dataclass
class SeedRun:
    """What one (row, seed) becomes in a tracker."""

    name: str
    params: dict[str, str]
    tags: dict[str, str]
    epochs: list[dict[str, float]]  # per step: tracker metric name -> value
    final: dict[str, float]


def flatten(prefix: str, value, out: dict[str, str]) -> dict[str, str]:
    """Nested recipe fields as dotted parameter names ("distill.temperature")."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return out


def seed_runs(record: Record, verdict: str) -> list[SeedRun]:
    """The tracker runs of one row record: one per seed (only pair rows train per seed; others are one run)."""
    params = flatten("", {"recipe": record.recipe or {}}, {}) | {"student": str(record.student),
                                                                 "teacher": str(record.teacher), "dataset": record.dataset}
    p = record.provenance
    tags = {"kdbench.row": record.id, "kdbench.kind": record.kind, "kdbench.tier": record.tier,
            "kdbench.device": record.device, "kdbench.dataset": record.dataset, "kdbench.verdict": verdict,
            "kdbench.commit": str(p.get("commit") or "?"), "kdbench.machine": str(p.get("device_name") or "?"),
            "kdbench.date": str(p.get("date") or "?"), "kdbench.recipe_hash": record.recipe_hash}
    identity = hashlib.sha256(json.dumps(record.to_json(), sort_keys=True).encode()).hexdigest()[:16]
    seeds = record.seeds or [None]
    runs = []
    for index, seed in enumerate(seeds):
        report = record.runs[index] if record.runs and index < len(record.runs) else {}
        epochs = [{name: float(e[key]) for key, name in EPOCH_METRICS.items() if e.get(key) is not None}
                  for e in report.get("epochs", [])]
        final = {}
        for metric in record.metrics:
            values = record.values(metric)
            if values and len(values) == len(seeds):
                final[f"final/{metric}"] = float(values[index])
            elif values and len(values) == 1:
                final[f"final/{metric}"] = float(values[0])
        name = record.id if seed is None else f"{record.id}-seed{seed}"
        runs.append(SeedRun(name, params, tags | {"kdbench.seed": str(seed), "kdbench.record": f"{identity}-{seed}"},
                            epochs, final))
    return runs


def to_mlflow(runs: list[SeedRun], tracking_uri: str, experiment: str) -> tuple[int, int]:
    """Log `runs` into an MLflow tracking store; returns (runs written, runs already there)."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError as err:
        raise ModuleNotFoundError("exporting to MLflow needs it: pip install -e '.[mlflow]'") from err
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment, _artifact_root(tracking_uri))
    written = skipped = 0
    for run in runs:
        existing = client.search_runs([experiment_id], f"tags.`kdbench.record` = '{run.tags['kdbench.record']}'")
        if existing:
            skipped += 1
            continue
        created = client.create_run(experiment_id, run_name=run.name, tags=run.tags)
        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, step) for step, epoch in enumerate(run.epochs, 1) for name, value in epoch.items()]
        metrics += [Metric(name, value, now, len(run.epochs)) for name, value in run.final.items()]
        params = [Param(k, v[:6000]) for k, v in run.params.items()]
        for start in range(0, max(len(metrics), 1), 900):  # MLflow takes at most 1000 entries per batch
            client.log_batch(created.info.run_id, metrics=metrics[start:start + 900],
                             params=params if start == 0 else [], tags=[RunTag("kdbench.exported", "1")] if start == 0 else [])
        client.set_terminated(created.info.run_id)
        written += 1
    return written, skipped


def _artifact_root(tracking_uri: str) -> str | None:
    """Beside a local sqlite store, its artifacts (none are logged, but MLflow sets a root; by default ./mlruns in
    whatever folder the export ran from); a server decides its own."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "mlruns").as_uri()
    return None


def to_tensorboard(runs: list[SeedRun], logdir: Path) -> int:
    """Write `runs` as TensorBoard event files, one folder per (row, seed); returns the runs written."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise ModuleNotFoundError("exporting to TensorBoard needs it: pip install -e '.[tensorboard]'") from err
    for run in runs:
        with SummaryWriter(log_dir=str(Path(logdir) / run.tags["kdbench.tier"] / run.name)) as writer:
            for step, epoch in enumerate(run.epochs, 1):
                for name, value in epoch.items():
                    writer.add_scalar(name, value, step)
            for name, value in run.final.items():
                writer.add_scalar(name, value, len(run.epochs))
            writer.add_text("kdbench/tags", "\n".join(f"{k}: {v}  " for k, v in sorted(run.tags.items())), 0)
            writer.add_text("kdbench/params", "\n".join(f"{k}: {v}  " for k, v in sorted(run.params.items())), 0)
    return len(runs)
