"""Run a row of the pair table for some seeds and turn the measurements into a result record.

Teacher rows are cached on disk (weights with their SHA-256, and the training report), keyed by
everything that determines them, so a teacher trains once per machine and every student (and every
pytest-xdist worker) reuses it. A cached teacher row is re-evaluated on the test set in every run;
what it cannot re-measure (its training speed) is listed in the record as carried from the cache.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn as nn
from filelock import FileLock

from zoo import training
from zoo.catalog.pairs import Pair, get_pair
from zoo.catalog.recipes import Recipe, stable_hash
from zoo.measure.costs import (
    LoadMonitor,
    MachineLoad,
    MachineProbe,
    combine_loads,
    count_gmacs,
    count_params,
    peak_memory_mib,
    reset_peak_memory,
)
from zoo.records.io import CorruptFileError, load_tensors, read_json, save_tensors, sha256_file, write_json
from zoo.records.logits import TEST_LOGITS, write_logits
from zoo.records.record import Record
from zoo.records.results import provenance, record_path
from zoo.training.checkpoint import Checkpointer
from zoo.training.data import TensorData, load_dataset
from zoo.training.distill.registry import spread_family
from zoo.training.engine import TrainingDiverged, seed_everything, train
from zoo.training.forward import TrainOptions, evaluate, test_indices
from zoo.training.registry import build_model
from zoo.verdicts.stats import mean_std

RESULT_NEUTRAL = ("checkpoint.py",)
"""Files of the training package that cannot change a trained model: how a run is saved and resumed (a resumed run
is bit-identical to an uninterrupted one, tests/test_checkpoint.py). Editing them retrains no cached teacher."""


def training_code_version() -> str:
    """Hash of the training package's files (path and bytes) but RESULT_NEUTRAL ones: a change retrains teachers."""
    root = Path(training.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*.py") if p.relative_to(root).as_posix() not in RESULT_NEUTRAL):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


CODE_VERSION = training_code_version()
"""Hash of the code that determines a trained model: a change retrains cached teachers."""


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


def recipe_hash(pair: Pair, tier: str) -> str:
    """Hash of what a row trains in `tier`: student, dataset, recipe, and its teacher's recipe hash."""
    teacher = recipe_hash(get_pair(pair.teacher[tier]), tier) if tier in pair.teacher else None
    return stable_hash(pair.student, pair.dataset, pair.recipes[tier].training_dict(), teacher)


def timing_recipe_hash(pair: Pair, recipe, kind: str) -> str:
    """Hash of what a timing benchmark of `kind` ('engine-speed', 'loader') measures on `pair`'s `recipe`."""
    return stable_hash(pair.student, recipe.training_dict(), kind)


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


@dataclass
class SeedResult:
    """One seed of a row, as run: its training report (a Record.runs entry), its test logits, what the
    trained model costs, and the session it ran in. A row's record is the gather of its seeds (`pair_record`)."""

    report: dict
    test_logits: torch.Tensor
    costs: dict  # params, gmacs, unsupported_ops, peak_memory_mib
    origin: dict  # the provenance of the session that ran it
    probe: dict  # the machine probe's description (MachineProbe.describe)
    key: str  # run_key: what determined the trained model (recipe, seed, data, code, switches)

    def to_file(self) -> dict:
        """Plain JSON-able values and one tensor (torch.load(weights_only=True) reads it back)."""
        plain = json.loads(json.dumps({"report": self.report, "costs": self.costs, "origin": self.origin,
                                       "probe": self.probe, "key": self.key}))
        return plain | {"test_logits": self.test_logits}

    @classmethod
    def from_file(cls, state: dict) -> SeedResult:
        return cls(**state)


def run_seed(pair: Pair, tier: str, seed: int, session: Session, checkpoint: Path | None = None) -> SeedResult:
    """Run one seed of `pair`: a teacher row through the cache (re-evaluated now if it came from there), any
    other row trained now (checkpointed to `checkpoint` if given)."""
    device = session.opts.device
    reset_peak_memory(device)
    try:
        if pair.is_teacher_row:
            model, report = cached_train_seed(pair, tier, seed, session)
            if report["from_cache"]:
                report = reevaluate(model, pair, tier, report, session)
        else:
            model, report = train_seed(pair, tier, seed, session, checkpoint)
    except TrainingDiverged as err:  # named here: the engine knows the epoch, not the row
        err.row, err.seed = pair.id, seed
        raise
    gmacs, unsupported = count_gmacs(model, session.dataset(pair.dataset).input_shape)
    costs = {"params": count_params(model), "gmacs": round(gmacs, 9), "unsupported_ops": unsupported,
             "peak_memory_mib": peak_memory_mib(device)}
    logits = report.pop(TEST_LOGITS).float().cpu()
    return SeedResult(report, logits, costs, session.provenance(), session.probe.describe(),
                      run_key(pair, tier, seed, session))


def run_pair(pair: Pair, tier: str, seeds: list[int], session: Session) -> Record:
    """Run `pair` for `seeds` in this process and return its result record."""
    if not seeds:
        raise ValueError(f"{pair.id}: no seeds to run")
    return pair_record(pair, tier, [run_seed(pair, tier, seed, session) for seed in seeds], session,
                       session.provenance())


def pair_record(pair: Pair, tier: str, results: list[SeedResult], session: Session, origin: dict) -> Record:
    """A row's result record from its seeds' results (run here, or gathered from jobs), with provenance `origin`."""
    if not results:
        raise ValueError(f"{pair.id}: no seed results to make a record of")
    device = session.opts.device
    runs = [r.report for r in results]
    seeds = [r["seed"] for r in runs]
    costs = results[-1].costs
    data = session.dataset(pair.dataset)
    recipe = pair.recipes[tier]
    fresh = [r for r in runs if not r["from_cache"]]
    speeds = speed_metrics(device)
    metrics = {"params": costs["params"], "gmacs": costs["gmacs"]} | seed_metrics(runs, recipe, speeds)
    carried = {metric: "; ".join(f"seed {r['seed']} trained {r.get('trained_at', '?')}, {metric} {r[metric]:.0f}"
                                 for r in runs if r["from_cache"]) for metric in speeds} if len(fresh) < len(runs) else {}
    acc_mean, acc_std = mean_std([r["test_accuracy"] for r in runs])
    test_y = data.test_y[test_indices(data, recipe)]
    load = combine_loads([MachineLoad(r["load"]["others_cores"], r["load"]["seconds"], r["load"].get("throttled"))
                          for r in fresh])
    return Record(
        kind="pair", id=pair.id, tier=tier, dataset=pair.dataset, device=device.type,
        dataset_fingerprint=data.fingerprint, dataset_source=data.source, switches=session.switches,
        student=str(pair.student), teacher=pair.teacher.get(tier), control=pair.control, scheme=pair.scheme,
        plain_kd=pair.plain_kd, study=pair.study.as_dict() if pair.study else None, correction=pair.correction,
        note=pair.note, recipe=recipe.as_dict(), recipe_hash=recipe_hash(pair, tier),
        spread_family=spread_family(recipe.distill), code_version=CODE_VERSION, seeds=seeds,
        metrics=metrics, measured_now=sorted(metrics), carried_from_cache=carried, load=load.as_dict(),
        machine_probe=probe_record(results[0].probe, {metric: [r[rate] for r in fresh] for metric, rate in speeds.items()}
                                   if fresh else {}),
        summary={"accuracy_mean": acc_mean, "accuracy_std": acc_std, "n": len(runs),
                 "train_seconds": sum(r["train_seconds"] for r in runs),
                 "train_images_per_s": mean_std([r["train_images_per_s"] for r in runs])[0],
                 "peak_memory_mib": max(r.costs["peak_memory_mib"] for r in results)},
        unsupported_ops=costs["unsupported_ops"], runs=runs, provenance=origin,
        test_logits=_store_logits(pair, tier, seeds, [r.test_logits for r in results], test_y, session),
    )


OMISSION_METRICS = {"omitted_class_accuracy": "class_accuracy", "omitted_class_accuracy_corrected":
                    "class_accuracy_corrected", "test_accuracy_corrected": "test_accuracy_corrected",
                    "omitted_class_bias_shift": "bias_shift", "omitted_class_accuracy_corrected_t1":
                    "class_accuracy_corrected_t1", "test_accuracy_corrected_t1": "test_accuracy_corrected_t1",
                    "omitted_class_bias_shift_t1": "bias_shift_t1"}
"""Record metric -> key of the engine's omission report."""


def _store_logits(pair: Pair, tier: str, seeds: list[int], logits: list[torch.Tensor], labels: torch.Tensor,
                  session: Session) -> dict | None:
    """Every seed's test logits written beside the row's record (zoo.records.logits); the record's reference to
    them (None without an outputs folder)."""
    if session.outputs_dir is None:
        return None
    record_file = record_path(session.outputs_dir, (tier, pair.dataset, session.opts.device.type, pair.id))
    return write_logits(record_file, seeds, logits, labels)


def speed_metrics(device: torch.device) -> dict[str, str]:
    """The training-speed metrics a row records on `device`, each with the machine-probe rate it is judged by."""
    speeds = {"train_images_per_s": "probe_per_s"}
    if device.type == "cpu":  # CPU time measures a GPU's work not at all
        speeds["train_images_per_cpu_s"] = "probe_per_cpu_s"
    return speeds


def seed_metrics(runs: list[dict], recipe, speeds: dict[str, str]) -> dict[str, list]:
    """Every per-seed metric of a row's seed reports; speeds from the seeds trained now (not from the cache)."""
    fresh = [r for r in runs if not r["from_cache"]]
    metrics = {"test_accuracy": [r["test_accuracy"] for r in runs]}
    if fresh:
        metrics |= {metric: [r[metric] for r in fresh] for metric in speeds}
    if recipe.distill:
        metrics["teacher_kl"] = [r["teacher_kl"] for r in runs]
        metrics["teacher_agreement"] = [r["teacher_agreement"] for r in runs]
        for name in runs[0].get("fidelity", {}):
            metrics[name] = [r["fidelity"][name] for r in runs]
    if any(r.get("val_accuracy") is not None for r in runs):
        metrics["val_accuracy"] = [r["val_accuracy"] for r in runs]
    if recipe.omit_class is not None:
        for metric, key in OMISSION_METRICS.items():
            metrics[metric] = [r["omission"][key] for r in runs]
    if not recipe.gate_accuracy:  # smoke rows: too few steps for accuracy or the KL to mean anything
        metrics["test_accuracy_ungated"] = metrics.pop("test_accuracy")
        if recipe.distill:
            metrics["teacher_kl_ungated"] = metrics.pop("teacher_kl")
        metrics["train_loss_drop"] = [r["train_loss_first_epoch"] - r["train_loss_last_epoch"] for r in runs]
    return metrics


def probe_record(description: dict, per_s: dict[str, list[float]]) -> dict:
    """A record's machine-probe entry: the probe's description (MachineProbe.describe) and its rate beside each
    timed metric's values."""
    return description | {"per_s": per_s}


def speed_record(spec, dataset: str, batch: int, round_seconds: list[float], load: MachineLoad,
                 probe_per_s: float, tier: str, session: Session) -> Record:
    """Result record of an inference benchmark: images/s at `batch` (the median round) and its interquartile
    range over the rounds, and the probe's rate around its timing."""
    device = session.opts.device
    fast, seconds_per_batch, slow = statistics.quantiles(round_seconds, n=4, method="inclusive")
    images_per_s = batch / seconds_per_batch
    metric = "latency_images_per_s" if batch == 1 else "infer_images_per_s"
    return Record(
        kind="speed", id=f"infer-{spec.slug}-b{batch}", tier=tier, dataset=dataset, device=device.type,
        dataset_fingerprint=session.dataset(dataset).fingerprint, switches=session.switches, student=str(spec),
        recipe={"batch": batch}, recipe_hash=stable_hash(spec, batch), code_version=CODE_VERSION,
        metrics={metric: [images_per_s]}, load=load.as_dict(),
        machine_probe=probe_record(session.probe.describe(), {metric: [probe_per_s]}),
        summary={"images_per_s": images_per_s, "images_per_s_iqr": [batch / slow, batch / fast],
                 "latency_ms": 1000 * seconds_per_batch, "rounds": len(round_seconds),
                 "peak_memory_mib": peak_memory_mib(device)},
        provenance=session.provenance(),
    )


_TIMED = {"engine": "engine-speed", "loader": "loader"}
"""A timing record's kind -> what its recipe hash says it measures (kept as the committed baselines hash it)."""


def timing_record(kind: str, bench_id: str, pair: Pair, recipe: Recipe, tier: str, session: Session,
                  metrics: dict[str, list[float]], load: MachineLoad, summary: dict, seeds: tuple[int, ...] = (),
                  device: str | None = None) -> Record:
    """Result record of a timing benchmark of `pair`'s training by `recipe` ("engine": the engine against a
    plain loop; "loader": the data path against a per-sample DataLoader), both sides timed in the same run."""
    return Record(
        kind=kind, id=bench_id, tier=tier, dataset=pair.dataset, device=device or session.opts.device.type,
        dataset_fingerprint=session.dataset(pair.dataset).fingerprint, switches=session.switches,
        student=str(pair.student), recipe=recipe.as_dict(), recipe_hash=timing_recipe_hash(pair, recipe, _TIMED[kind]),
        code_version=CODE_VERSION, seeds=list(seeds), metrics=metrics, load=load.as_dict(), summary=summary,
        provenance=session.provenance(),
    )
