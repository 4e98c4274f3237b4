"""What every run of a benchmark session shares, and the teacher cache.

`Session`: where data lives, how to run, the datasets loaded once and the machine probe. `CODE_VERSION` hashes the
training code that determines a trained model. Teacher rows are cached on disk (weights with their SHA-256, and the
training report), keyed by everything that determines them (`run_key`), so a teacher trains once per machine and
every student (and every pytest-xdist worker, and every job on a cluster sharing the cache) reuses it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn as nn
from filelock import FileLock

from zoo.catalog.pairs import Pair, get_pair
from zoo.catalog.recipes import stable_hash
from zoo.measure.costs import LoadMonitor, MachineProbe
from zoo.records.io import CorruptFileError, load_tensors, read_json, save_tensors, sha256_file, write_json
from zoo.records.logits import TEST_LOGITS
from zoo.records.results import provenance
from zoo.runs.code_version import CODE_VERSION
from zoo.runs.row_records import recipe_hash
from zoo.training.checkpoint import Checkpointer
from zoo.training.data import TensorData, load_dataset
from zoo.training.engine import seed_everything, train
from zoo.training.forward import TrainOptions, evaluate
from zoo.training.registry import build_model


@dataclass
class Session:
    """What every run of one benchmark session shares: where data lives, how to run, loaded datasets."""

    data_root: Path | None
    cache_dir: Path
    opts: TrainOptions = field(default_factory=TrainOptions)
    outputs_dir: Path | None = None  # where each row's test logits are stored (the session's results folder)
    _datasets: dict[str, TensorData] = field(default_factory=dict)
    _probe: MachineProbe | None = None
    origin: dict = field(init=False)

    def __post_init__(self):
        self.origin = provenance(self.opts.device)  # the code and machine as this session started

    def dataset(self, variant: str) -> TensorData:
        if variant not in self._datasets:
            self._datasets[variant] = load_dataset(variant, self.data_root, self.cache_dir)
        return self._datasets[variant]

    @property
    def probe(self) -> MachineProbe:
        """The machine-speed probe that every timed section of the session samples (started on first use)."""
        if self._probe is None:
            self._probe = MachineProbe()
        return self._probe

    def provenance(self) -> dict:
        """The session's origin, dated now."""
        return self.origin | {"date": datetime.now(UTC).isoformat(timespec="seconds")}

    @property
    def switches(self) -> dict:
        """The run switches that change what is computed: part of every record and of the teacher-cache key."""
        return {"amp": self.opts.amp, "channels_last": self.opts.channels_last, "compile": self.opts.compile}


def run_key(pair: Pair, tier: str, seed: int, session: Session) -> str:
    """Everything that determines the model a row trains with one seed (the teacher-cache key)."""
    return stable_hash(recipe_hash(pair, tier), session.dataset(pair.dataset).fingerprint, seed,
                       CODE_VERSION, session.opts.device.type, torch.__version__, session.switches)


def train_seed(pair: Pair, tier: str, seed: int, session: Session,
               checkpoint: Path | None = None) -> tuple[nn.Module, dict]:
    """Train one seed of a row (its teacher first, from the cache if there) and return model and report.

    With `checkpoint`, the run writes a checkpoint there after every epoch and resumes from one it finds
    (zoo.training.checkpoint); the file is deleted once the run has finished.
    """
    recipe = pair.recipes[tier]
    teacher = None
    if recipe.distill:
        teacher_row = get_pair(pair.teacher[tier])
        session.opts.log(f"[{pair.id} seed {seed}] teacher {teacher_row.id}")
        teacher_seed = seed if recipe.teacher_seed is None else recipe.teacher_seed
        teacher, _ = cached_train_seed(teacher_row, tier, teacher_seed, session)
    data = session.dataset(pair.dataset)
    seed_everything(seed, session.opts.device)
    model = build_model(pair.student, data.num_classes)
    session.opts.log(f"[{pair.id} seed {seed}] {pair.student} on {pair.dataset}, {recipe.epochs} epochs")
    checkpointer = Checkpointer(checkpoint, run_key(pair, tier, seed, session)) if checkpoint else None
    probe = session.probe.window()  # sampled before training and after every epoch
    with LoadMonitor() as load:
        report = train(model, recipe, data, seed,
                       dataclasses.replace(session.opts, between_epochs=probe.sample, checkpoint=checkpointer),
                       teacher=teacher)
    report_dict = report.as_record() | {
        "seed": seed, "from_cache": False, "load": load.result.as_dict(), "probe_per_s": probe.rate,
        "probe_per_cpu_s": probe.cpu_rate,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"), TEST_LOGITS: report.test_logits}
    if checkpointer:
        checkpointer.clear()
    return model, report_dict


def cached_train_seed(pair: Pair, tier: str, seed: int, session: Session) -> tuple[nn.Module, dict]:
    """`train_seed` through the on-disk cache (file-locked, atomic writes: safe across workers and hosts).

    A cache entry is used only if its weights match the SHA-256 stored with them; anything else
    (a damaged, edited or foreign entry) is reported and retrained. The lock is an flock(2) on a file
    beside the entry, which Linux NFS clients carry out as a POSIX lock on the server (flock(2), "NFS
    details"): two jobs on two hosts sharing the cache train a teacher once. A teacher being trained
    checkpoints every epoch into its entry's folder, so a killed job's successor resumes it.
    """
    key = run_key(pair, tier, seed, session)
    folder = session.cache_dir / "models" / f"{pair.id}-{tier}-seed{seed}-{key}"
    weights, report_file = folder / "weights.pt", folder / "report.json"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if weights.exists() and report_file.exists():
            try:
                model, report = _load_cached(pair, session, weights, report_file)
                session.opts.log(f"[{pair.id} seed {seed}] loaded from cache {folder}")
                return model, report
            except (CorruptFileError, RuntimeError) as err:
                session.opts.log(f"[{pair.id} seed {seed}] cache entry unusable ({err}); retraining")
        session.opts.log(f"[{pair.id} seed {seed}] training into the cache {folder} (lock held)")
        model, report = train_seed(pair, tier, seed, session, checkpoint=folder / "checkpoint.pt")
        save_tensors(weights, {k: v.cpu() for k, v in model.state_dict().items()})
        stored = {k: v for k, v in report.items() if k != TEST_LOGITS}
        write_json(report_file, stored | {"weights_sha256": sha256_file(weights), "cache_entry": str(folder)})
        return model, report


def _load_cached(pair: Pair, session: Session, weights: Path, report_file: Path) -> tuple[nn.Module, dict]:
    report = read_json(report_file)
    if not isinstance(report, dict) or "weights_sha256" not in report:
        raise CorruptFileError(f"{report_file} is not a kdbench training report")
    if sha256_file(weights) != report["weights_sha256"]:
        raise CorruptFileError(f"{weights} does not match the SHA-256 recorded with it")
    model = build_model(pair.student, session.dataset(pair.dataset).num_classes)
    model.load_state_dict(load_tensors(weights))
    return model.to(session.opts.device), report | {"from_cache": True}


def reevaluate(model: nn.Module, pair: Pair, tier: str, report: dict, session: Session) -> dict:
    """A cached model's report with its test accuracy measured again now, on this run's data and switches."""
    logits, labels = evaluate(model, session.dataset(pair.dataset), pair.recipes[tier], session.opts)
    correct = int((logits.argmax(1) == labels).sum())
    return report | {"test_accuracy": 100.0 * correct / len(labels), "test_correct": correct,
                     "test_total": len(labels), "cached_test_accuracy": report["test_accuracy"], TEST_LOGITS: logits}
