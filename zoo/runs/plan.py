"""The plan of a launch: which (row, seed) jobs run, in which waves, after which teachers, and at what cost.

Seeds come from power, not habit: in the full tier a row runs the seeds its gate needs to detect its target drop in test
accuracy (TARGET_DROPS) at the fail level with 80% power, given the seed spread measured for it (its
baseline's pooled spread, or its own if larger); a row with no measured spread runs its recipe's seeds.
`--seeds` sets the seeds outright, `--max-seeds` caps the power-planned count (the plan then says which drop
the capped row still detects).

Waves: a job runs after its teacher's job (the teacher row at the seed its recipe distills from), so every
job sits one wave after its teacher's; jobs without a teacher form the first wave. Timing benchmarks are
jobs of their own, each run alone on its machine and one after another, after the training waves.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from zoo.catalog.pairs import Pair, get_pair
from zoo.records.io import read_json, write_json
from zoo.records.record import Record
from zoo.records.results import load_record, record_path
from zoo.runs.jobs import Job
from zoo.verdicts.baselines import BaselineStore
from zoo.verdicts.gates import pool_key
from zoo.verdicts.stats import ALPHA_FAIL, POWER, detectable_drop, mean_std

TARGET_DROPS = {"mnist": 0.1, "resnet": 0.3, "cnn": 1.0}
"""The drop in test accuracy (points) each row family's seeds must detect: MNIST rows, the ResNet-18 section's
deep rows, the CIFAR-10 CNN rows."""

TIMING_BENCHES = ("bench/test_speed.py", "bench/test_engine_speed.py", "bench/test_loader_speedup.py")
"""The timing benchmark files: each is one exclusive job."""

PLAN_FILE = "plan.json"


class PlanError(ValueError):
    """A launch that cannot be planned; the message names the option or file."""


def target_family(pair: Pair) -> str:
    if pair.dataset == "mnist":
        return "mnist"
    return "resnet" if "deep" in pair.markers else "cnn"


@dataclass
class RowPlan:
    """One selected row: its seeds and why that many."""

    row: str
    seeds: list[int]
    why: str
    sigma: float | None = None  # the seed spread planned with (test accuracy, points)
    detects: float | None = None  # the drop these seeds detect at the fail level with 80% power
    seconds_per_seed: float | None = None  # the baseline's training time per seed on this device


@dataclass
class Plan:
    """What a launch runs (rows x seeds, their teachers, timing jobs) into one results folder."""

    tier: str
    device: str
    rows: list[RowPlan]
    waves: list[list[Job]]
    after: dict[str, str] = field(default_factory=dict)  # job name -> the job it waits for (its teacher's)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def jobs(self) -> list[Job]:
        return [job for wave in self.waves for job in wave]

    def row_jobs(self, row: str) -> list[Job]:
        seeds = next(r.seeds for r in self.rows if r.row == row)
        return [Job(self.tier, row, seed) for seed in seeds]

    def device_hours(self) -> float | None:
        """The selected rows' training time on this device, from their baselines (None if any is unknown)."""
        if not self.rows or any(r.seconds_per_seed is None for r in self.rows):
            return None
        return sum(r.seconds_per_seed * len(r.seeds) for r in self.rows) / 3600

    def describe(self) -> str:
        lines = [f"{len(self.rows)} rows, {len(self.jobs)} jobs in {len(self.waves)} waves, tier {self.tier}, "
                 f"device {self.device}"]
        for r in self.rows:
            cost = "" if r.seconds_per_seed is None else f", ~{r.seconds_per_seed * len(r.seeds) / 3600:.2f} h"
            lines.append(f"  {r.row}: {len(r.seeds)} seeds ({r.why}){cost}")
        hours = self.device_hours()
        lines.append(f"  total: {'unknown (a row has no baseline on ' + self.device + ')' if hours is None else f'{hours:.2f}'}"
                     f" {self.device}-hours of training")
        for number, wave in enumerate(self.waves):
            counts: dict[str, int] = {}
            for job in wave:
                counts[job.row or job.name] = counts.get(job.row or job.name, 0) + 1
            lines.append(f"  wave {number}: " + ", ".join(f"{row} x{n}" if n > 1 else row for row, n in counts.items()))
        return "\n".join(lines)

    def save(self, out: Path) -> None:
        write_json(Path(out) / PLAN_FILE, {
            "tier": self.tier, "device": self.device, "created": self.created, "after": self.after,
            "rows": [asdict(r) for r in self.rows], "waves": [[job.as_dict() for job in wave] for wave in self.waves]})

    @classmethod
    def load(cls, out: Path) -> Plan:
        path = Path(out) / PLAN_FILE
        if not path.exists():
            raise PlanError(f"{path} does not exist: {out} is not a folder that `kdbench launch` planned into")
        state = read_json(path)
        return cls(state["tier"], state["device"], [RowPlan(**r) for r in state["rows"]],
                   [[Job(**job) for job in wave] for wave in state["waves"]], state["after"], state["created"])


def seeds_for(pair: Pair, tier: str, device: str, store: BaselineStore, max_seeds: int | None) -> RowPlan:
    """The seeds `pair` needs for its target drop, from its measured spread (see the module docstring)."""
    recipe = pair.recipes[tier]
    base_path = record_path(store.root, (tier, pair.dataset, device, pair.id))
    base = load_record(base_path) if base_path.exists() else None
    seconds = base.summary["train_seconds"] / len(base.seeds) if base and base.seeds and base.summary.get(
        "train_seconds") else None
    target = TARGET_DROPS[target_family(pair)]
    if tier != "full":
        return RowPlan(pair.id, list(range(recipe.seeds)), f"recipe's {recipe.seeds}: power planning is for the full tier",
                       seconds_per_seed=seconds)
    if base is None or not recipe.gate_accuracy or "test_accuracy" not in base.metrics:
        why = f"recipe's {recipe.seeds}: no {device} baseline with a measured spread" if recipe.gate_accuracy else \
            f"recipe's {recipe.seeds}: a smoke row, its accuracy is not gated"
        return RowPlan(pair.id, list(range(recipe.seeds)), why, seconds_per_seed=seconds)
    sigma, df = spread(base, store)
    needed = max(recipe.baseline_seeds, next(n for n in range(2, 10_000) if detects(sigma, df, n) <= target))
    count = min(needed, max_seeds) if max_seeds else needed
    why = f"sd {sigma:.3g} pt: {needed} seeds detect a {target:g}-pt drop"
    if count < needed:
        why += f"; capped at {count} by --max-seeds, which detect {detects(sigma, df, count):.3g} pt"
    return RowPlan(pair.id, list(range(count)), why, sigma, detects(sigma, df, count), seconds)


def spread(base: Record, store: BaselineStore) -> tuple[float, float]:
    """The test-accuracy seed spread the gate will judge the row by (the pooled one, or the row's own if larger),
    and its degrees of freedom."""
    values = base.values("test_accuracy")
    own = mean_std(values)[1] or 0.0
    pool = store.spreads(base).get(pool_key("test_accuracy", base))
    if pool is None or pool.sigma is None:
        return own, max(len(values) - 1, 1)
    return max(own, pool.sigma), pool.df


def detects(sigma: float, df: float, n: int) -> float:
    """The drop n run seeds against n baseline seeds detect at the fail level with 80% power."""
    return detectable_drop(sigma * math.sqrt(2 / n), df, ALPHA_FAIL, POWER)


def make_plan(rows: list[Pair], tier: str, device: str, store: BaselineStore, seeds: list[int] | None = None,
              max_seeds: int | None = None, timing: bool = False) -> Plan:
    """The plan for `rows` (`seeds` given: every row runs exactly those)."""
    if not rows:
        raise PlanError("no row selected: check -k / the row ids (kdbench launch --list shows them)")
    if seeds is not None and not seeds:
        raise PlanError("--seeds selects no seed")
    plans = []
    for pair in rows:
        if tier not in pair.recipes:
            raise PlanError(f"row {pair.id!r} has no {tier!r} recipe")
        plans.append(RowPlan(pair.id, list(seeds), "--seeds") if seeds is not None
                     else seeds_for(pair, tier, device, store, max_seeds))
    wanted: dict[str, Job] = {}
    after: dict[str, str] = {}

    def add(pair: Pair, seed: int) -> Job:
        job = Job(tier, pair.id, seed)
        if job.name in wanted:
            return job
        recipe = pair.recipes[tier]
        if recipe.distill:
            teacher = get_pair(pair.teacher[tier])
            after[job.name] = add(teacher, seed if recipe.teacher_seed is None else recipe.teacher_seed).name
        wanted[job.name] = job
        return job

    for plan in plans:
        for seed in plan.seeds:
            add(get_pair(plan.row), seed)
    depth: dict[str, int] = {}

    def wave_of(name: str) -> int:
        if name not in depth:
            depth[name] = wave_of(after[name]) + 1 if name in after else 0
        return depth[name]

    waves: list[list[Job]] = []
    for name, job in wanted.items():
        number = wave_of(name)
        waves.extend([] for _ in range(number + 1 - len(waves)))
        waves[number].append(job)
    if timing:
        waves += [[Job(tier, bench=bench)] for bench in TIMING_BENCHES]
    return Plan(tier, device, plans, waves, after)
