"""A row's result record built from its seeds' typed results (`SeedResult`), run here or gathered from jobs, and
the records of the timing benchmarks. The data fingerprint, switches and device of a record are those its seeds
ran with (carried in each SeedResult), never those of the process that builds it.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from zoo.catalog.pairs import Pair, get_pair
from zoo.catalog.recipes import Recipe, stable_hash
from zoo.measure.costs import MachineLoad, combine_loads, peak_memory_mib
from zoo.records.logits import write_logits
from zoo.records.record import Record
from zoo.records.results import record_path
from zoo.runs.code_version import CODE_VERSION
from zoo.training.distill.registry import spread_family
from zoo.verdicts.stats import mean_std


class RunContext(Protocol):
    """What building a record reads of the session it ran in (zoo.runs.session.Session is one)."""

    opts: Any
    outputs_dir: Path | None
    switches: dict
    probe: Any

    def dataset(self, variant: str) -> Any: ...

    def provenance(self) -> dict: ...

def recipe_hash(pair: Pair, tier: str) -> str:
    """Hash of what a row trains in `tier`: student, dataset, recipe, and its teacher's recipe hash."""
    teacher = recipe_hash(get_pair(pair.teacher[tier]), tier) if tier in pair.teacher else None
    return stable_hash(pair.student, pair.dataset, pair.recipes[tier].training_dict(), teacher)


def timing_recipe_hash(pair: Pair, recipe, kind: str) -> str:
    """Hash of what a timing benchmark of `kind` ('engine-speed', 'loader') measures on `pair`'s `recipe`."""
    return stable_hash(pair.student, recipe.training_dict(), kind)


@dataclass
class SeedResult:
    """One seed of a row, as run: its training report (a Record.runs entry), its test logits, what the
    trained model costs, the session it ran in, and what it ran on (device, data, switches). A row's record is the
    gather of its seeds (`pair_record`), which must agree on what they ran on."""

    report: dict
    test_logits: torch.Tensor
    costs: dict  # params, gmacs, unsupported_ops, peak_memory_mib
    origin: dict  # the provenance of the session that ran it
    probe: dict  # the machine probe's description (MachineProbe.describe)
    key: str  # run_key: what determined the trained model (recipe, seed, data, code, switches)
    device: str  # the device type it trained on (cpu, cuda)
    dataset_fingerprint: str
    dataset_source: str
    switches: dict  # amp, channels_last, compile, as the run had them

    @property
    def ran_on(self) -> tuple:
        return self.device, self.dataset_fingerprint, self.dataset_source, tuple(sorted(self.switches.items()))

    def to_file(self) -> dict:
        """Plain JSON-able values and one tensor (torch.load(weights_only=True) reads it back)."""
        plain = json.loads(json.dumps({"report": self.report, "costs": self.costs, "origin": self.origin,
                                       "probe": self.probe, "key": self.key, "device": self.device,
                                       "dataset_fingerprint": self.dataset_fingerprint,
                                       "dataset_source": self.dataset_source, "switches": self.switches}))
        return plain | {"test_logits": self.test_logits}

    @classmethod
    def from_file(cls, state: dict) -> SeedResult:
        return cls(**state)


def pair_record(pair: Pair, tier: str, results: list[SeedResult], test_labels: torch.Tensor, origin: dict,
                outputs_dir: Path | None) -> Record:
    """A row's result record from its seeds' results (run here, or gathered from jobs), with provenance `origin`;
    the seeds' test logits are stored under `outputs_dir` (none without one) with the recipe's `test_labels`."""
    if not results:
        raise ValueError(f"{pair.id}: no seed results to make a record of")
    ran_on = {r.ran_on for r in results}
    if len(ran_on) > 1:
        raise ValueError(f"{pair.id}: its seeds ran on different devices, data or switches: {sorted(ran_on)}")
    first = results[0]
    device = torch.device(first.device)
    runs = [r.report for r in results]
    seeds = [r["seed"] for r in runs]
    costs = results[-1].costs
    recipe = pair.recipes[tier]
    fresh = [r for r in runs if not r["from_cache"]]
    speeds = speed_metrics(device)
    metrics = {"params": costs["params"], "gmacs": costs["gmacs"]} | seed_metrics(runs, recipe, speeds)
    carried = {metric: "; ".join(f"seed {r['seed']} trained {r.get('trained_at', '?')}, {metric} {r[metric]:.0f}"
                                 for r in runs if r["from_cache"]) for metric in speeds} if len(fresh) < len(runs) else {}
    acc_mean, acc_std = mean_std([r["test_accuracy"] for r in runs])
    load = combine_loads([MachineLoad(r["load"]["others_cores"], r["load"]["seconds"], r["load"].get("throttled"))
                          for r in fresh])
    return Record(
        kind="pair", id=pair.id, tier=tier, dataset=pair.dataset, device=device.type,
        dataset_fingerprint=first.dataset_fingerprint, dataset_source=first.dataset_source, switches=first.switches,
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
        test_logits=_store_logits(pair, tier, seeds, [r.test_logits for r in results], test_labels, first.device,
                                  outputs_dir),
    )


OMISSION_METRICS = {"omitted_class_accuracy": "class_accuracy", "omitted_class_accuracy_corrected":
                    "class_accuracy_corrected", "test_accuracy_corrected": "test_accuracy_corrected",
                    "omitted_class_bias_shift": "bias_shift", "omitted_class_accuracy_corrected_t1":
                    "class_accuracy_corrected_t1", "test_accuracy_corrected_t1": "test_accuracy_corrected_t1",
                    "omitted_class_bias_shift_t1": "bias_shift_t1"}
"""Record metric -> key of the engine's omission report."""


def _store_logits(pair: Pair, tier: str, seeds: list[int], logits: list[torch.Tensor], labels: torch.Tensor,
                  device: str, outputs_dir: Path | None) -> dict | None:
    """Every seed's test logits written beside the row's record (zoo.records.logits); the record's reference to
    them (None without an outputs folder)."""
    if outputs_dir is None:
        return None
    return write_logits(record_path(outputs_dir, (tier, pair.dataset, device, pair.id)), seeds, logits, labels)


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
                 probe_per_s: float, tier: str, session: RunContext) -> Record:
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


def timing_record(kind: str, bench_id: str, pair: Pair, recipe: Recipe, tier: str, session: RunContext,
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
