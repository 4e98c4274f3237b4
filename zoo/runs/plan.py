"""The plan of a launch: which (row, seed) jobs run, in which waves, after which teachers, at what cost, and
whether that fits the budget.

Seeds come from power, not habit: in the full tier a row runs the seeds the accuracy gate needs to detect its
target drop in test accuracy (TARGET_DROPS) at the gate's fail level with 80% power, computed as the gate will
judge it (zoo.verdicts.stats.gate_detectable_drop: the same pooled seed spread and degrees of freedom, against the
baseline's own seed count). When no seed count reaches the target (a baseline of few seeds, a pool of few degrees
of freedom) the row runs its recipe's seeds and the plan says what limits it. A row with no measured spread runs
its recipe's seeds. `--seeds` sets the seeds outright, `--max-seeds` caps the count.

Cost: a row's seconds per seed on the device come from its baseline there; without one, from its work (GMACs per
image, from any baseline of the same model, times images per seed) at the device's measured rate (the median over
the device's baselines of the same product per second). A plan over the budget (`launch.budget_hours`, --budget)
or of unknown cost is refused, naming the rows that cost most and the --max-seeds that fits.

Waves: a job runs after its teacher's job (the teacher row at the seed its recipe distills from), so every
job sits one wave after its teacher's; jobs without a teacher form the first wave. Timing benchmarks are
jobs of their own, each run alone on its machine and one after another, after the training waves.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from zoo.catalog.pairs import Pair, get_pair
from zoo.errors import KdbenchInputError
from zoo.records.io import read_json, write_json
from zoo.records.record import Record
from zoo.records.results import load_record, record_path
from zoo.runs.jobs import Job
from zoo.training.data import CROP_VIEWS
from zoo.verdicts.baselines import BaselineStore
from zoo.verdicts.gates import pool_key
from zoo.verdicts.stats import gate_detectable_drop, mean_std

TARGET_DROPS = {"mnist": 0.1, "resnet": 0.3, "cnn": 1.0}
"""The drop in test accuracy (points) each row family's seeds must detect: MNIST rows, the ResNet-18 section's
deep rows, the CIFAR-10 CNN rows."""

SEED_CEILING = 64
"""The most seeds power planning gives a row (beyond it the target is out of reach in practice)."""

TIMING_BENCHES = ("bench/test_speed.py", "bench/test_engine_speed.py", "bench/test_loader_speedup.py")
"""The timing benchmark files: each is one exclusive job."""

PLAN_FILE = "plan.json"


class PlanError(KdbenchInputError, ValueError):
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
    seconds_per_seed: float | None = None  # training time per seed on this device (Plan.costs says whence)


@dataclass
class Plan:
    """What a launch runs (rows x seeds, their teachers, timing jobs) into one results folder."""

    tier: str
    device: str
    rows: list[RowPlan]
    waves: list[list[Job]]
    after: dict[str, str] = field(default_factory=dict)  # job name -> the job it waits for (its teacher's)
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    costs: dict[str, RowCost] = field(default_factory=dict)  # every row with a job (teachers too)

    @property
    def jobs(self) -> list[Job]:
        return [job for wave in self.waves for job in wave]

    def row_jobs(self, row: str) -> list[Job]:
        seeds = next(r.seeds for r in self.rows if r.row == row)
        return [Job(self.tier, row, seed) for seed in seeds]

    def row_hours(self) -> dict[str, float | None]:
        """Each row's training time in this plan (its jobs, teachers' included), in device-hours."""
        hours: dict[str, float | None] = {}
        for job in self.jobs:
            if job.row:  # one row costs the same per seed: unknown once, unknown for every job
                seconds = self.costs[job.row].seconds_per_seed if job.row in self.costs else None
                hours[job.row] = None if seconds is None else (hours.get(job.row) or 0.0) + seconds / 3600
        return hours

    def device_hours(self) -> float | None:
        """The plan's training time on its device (None if a row's is unknown); timing jobs are minutes."""
        hours = self.row_hours().values()
        return None if not hours or any(h is None for h in hours) else sum(hours)

    def over_budget(self, budget: float) -> str:
        """Why the plan exceeds `budget` device-hours ('' when it fits): its cost, the rows that cost most."""
        total = self.device_hours()
        by_cost = sorted(((h, row) for row, h in self.row_hours().items() if h is not None), reverse=True)
        costly = ", ".join(f"{row} {h:,.1f} h" for h, row in by_cost[:3])
        if total is None:
            unknown = [row for row, h in self.row_hours().items() if h is None]
            return (f"the cost of {len(unknown)} row(s) is unknown ({', '.join(unknown[:3])}"
                    f"{', ...' if len(unknown) > 3 else ''}: {self.costs[unknown[0]].source})")
        if total <= budget:
            return ""
        return f"{total:,.1f} {self.device}-hours is over the budget of {budget:g} h; costliest: {costly}"

    def describe(self) -> str:
        lines = [f"{len(self.rows)} rows, {len(self.jobs)} jobs in {len(self.waves)} waves, tier {self.tier}, "
                 f"device {self.device}"]
        hours = self.row_hours()
        for r in self.rows:
            cost = "cost unknown" if hours.get(r.row) is None else f"~{hours[r.row]:,.2f} h"
            lines.append(f"  {r.row}: {len(r.seeds)} seeds ({r.why}); {cost} ({self.costs[r.row].source})")
        for row in hours.keys() - {r.row for r in self.rows}:
            cost = "cost unknown" if hours[row] is None else f"~{hours[row]:,.2f} h"
            lines.append(f"  {row} (a teacher): {cost} ({self.costs[row].source})")
        total = self.device_hours()
        lines.append(f"  total: {'unknown' if total is None else f'{total:,.2f}'} {self.device}-hours of training")
        for number, wave in enumerate(self.waves):
            counts: dict[str, int] = {}
            for job in wave:
                counts[job.row or job.name] = counts.get(job.row or job.name, 0) + 1
            lines.append(f"  wave {number}: " + ", ".join(f"{row} x{n}" if n > 1 else row for row, n in counts.items()))
        return "\n".join(lines)

    def save(self, out: Path) -> None:
        write_json(Path(out) / PLAN_FILE, {
            "tier": self.tier, "device": self.device, "created": self.created, "after": self.after,
            "rows": [asdict(r) for r in self.rows], "waves": [[job.as_dict() for job in wave] for wave in self.waves],
            "costs": {row: asdict(cost) for row, cost in self.costs.items()}})

    @classmethod
    def load(cls, out: Path) -> Plan:
        path = Path(out) / PLAN_FILE
        if not path.exists():
            raise PlanError(f"{path} does not exist: {out} is not a folder that `kdbench launch` planned into")
        state = read_json(path)
        return cls(state["tier"], state["device"], [RowPlan(**r) for r in state["rows"]],
                   [[Job(**job) for job in wave] for wave in state["waves"]], state["after"], state["created"],
                   {row: RowCost(**cost) for row, cost in state.get("costs", {}).items()})


def seeds_for(pair: Pair, tier: str, device: str, store: BaselineStore, max_seeds: int | None) -> RowPlan:
    """The seeds `pair` needs for its target drop, as its gate will judge them (see the module docstring)."""
    recipe = pair.recipes[tier]
    base = stored_baseline(store, pair, tier, device)
    target = TARGET_DROPS[target_family(pair)]
    default = min(recipe.seeds, max_seeds) if max_seeds else recipe.seeds
    if tier != "full":
        return RowPlan(pair.id, list(range(default)), f"recipe's {recipe.seeds}: power planning is for the full tier")
    if base is None or not recipe.gate_accuracy or "test_accuracy" not in base.metrics or not base.seeds:
        why = f"recipe's {recipe.seeds}: no {device} baseline with a measured spread" if recipe.gate_accuracy else \
            f"recipe's {recipe.seeds}: a smoke row, its accuracy is not gated"
        return RowPlan(pair.id, list(range(default)), why)
    sigma, df = spread(base, store)
    limits = store.thresholds.for_row(pair.id)
    alpha, margin = limits["alpha_fail"].value, limits["margin.test_accuracy"].value
    n_base = len(base.seeds)

    def detects(n: int) -> float:
        return max(margin, gate_detectable_drop(sigma, df, n, n_base, alpha))

    reaching = next((n for n in range(2, SEED_CEILING + 1) if detects(n) <= target), None)
    if reaching is None:
        floor = max(margin, gate_detectable_drop(sigma, df, 10**6, n_base, alpha))
        needed = max(recipe.seeds, min(n_base, SEED_CEILING))
        both = next((n for n in range(2, SEED_CEILING + 1)
                     if max(margin, gate_detectable_drop(sigma, df, n, n, alpha)) <= target), None)
        rerecord = (f"{both} seeds in the baseline and the run would" if both else
                    f"not even {SEED_CEILING} seeds in both would")
        why = (f"sd {sigma:.3g} pt [df {df:g}] against a baseline of {n_base} seeds: no seed count detects a "
               f"{target:g}-pt drop (the limit is {floor:.3g} pt; {rerecord}); the recipe's {needed}")
    else:
        needed = max(recipe.baseline_seeds, reaching)
        why = f"sd {sigma:.3g} pt [df {df:g}], baseline of {n_base} seeds: {needed} seeds detect a {target:g}-pt drop"
    count = min(needed, max_seeds) if max_seeds else needed
    if count < needed:
        why += f"; capped at {count} by --max-seeds, which detect {detects(count):.3g} pt"
    return RowPlan(pair.id, list(range(count)), why, sigma, detects(count))


def stored_baseline(store: BaselineStore, pair: Pair, tier: str, device: str) -> Record | None:
    """The row's baseline on `device`, or None."""
    path = record_path(store.root, (tier, pair.dataset, device, pair.id))
    return load_record(path) if path.exists() else None


def spread(base: Record, store: BaselineStore) -> tuple[float, float]:
    """The test-accuracy seed spread the gate will judge the row by (the pooled one, or the row's own if larger),
    and its degrees of freedom."""
    values = base.values("test_accuracy")
    own = mean_std(values)[1] or 0.0
    pool = store.spreads(base).get(pool_key("test_accuracy", base))
    if pool is None or pool.sigma is None:
        return own, max(len(values) - 1, 1)
    return max(own, pool.sigma), pool.df


@dataclass(frozen=True)
class RowCost:
    seconds_per_seed: float | None
    source: str  # where it comes from, or why it is unknown


class CostModel:
    """Training seconds per seed of any row on one device: its baseline's, else its work at the device's rate.

    Work per image is in student-pass GMACs: the student's forward GMACs (a training pass is about three forward
    passes) plus a third of the teacher's (one forward pass), the GMACs measured by kdbench for that model in any
    baseline. The rate is the median over the device's baselines of work per image x training images per second.
    """

    def __init__(self, store: BaselineStore, device: str, measure: Callable[[], tuple[str, float]] | None = None):
        self.store, self.device = store, device
        trained = [r for r in store.records.listing.records
                   if r.summary.get("train_seconds") and r.summary.get("train_images_per_s") and r.seeds]
        self.gmacs = {r.student: float(r.values("gmacs")[0]) for r in store.records.listing.records
                      if r.student and r.values("gmacs")}
        rates, sizes = [], {}
        for record in trained:
            try:
                pair = get_pair(record.id)
            except KeyError:
                continue
            recipe = pair.recipes.get(record.tier)
            work = self.work_per_image(pair, record.tier)
            if recipe is None or work is None:
                continue
            if record.device == device:
                rates.append(work * record.summary["train_images_per_s"])
            per_epoch = record.summary["train_images_per_s"] * record.summary["train_seconds"] / len(record.seeds)
            sizes.setdefault(pair.dataset, []).append(
                per_epoch / recipe.epochs / (recipe.train_subset * (1 - recipe.val_fraction)))
        self.rate = statistics.median(rates) if rates else None
        self.rate_source = f"median of {len(rates)} {device} baselines"
        if self.rate is None and measure is not None:  # a device no baseline was recorded on: time it now
            row, images_per_s = measure()
            work = self.work_per_image(get_pair(row), "full")
            if work is not None:
                self.rate = work * images_per_s
                self.rate_source = f"measured now: {row}'s training steps on this {device}"
        self.train_sizes = {dataset: statistics.median(values) for dataset, values in sizes.items()}

    def work_per_image(self, pair: Pair, tier: str) -> float | None:
        """Student-pass GMACs per training image and epoch, the teacher's passes spread over the epochs as the
        engine makes them: one pass over the training set without augmentation, one per crop view when the
        recipe caches views (zoo.training.engine.prepare_teacher_targets), else one per step."""
        student = self.gmacs.get(str(pair.student))
        recipe = pair.recipes[tier]
        if student is None:
            return None
        if not recipe.distill:
            return student
        teacher = self.gmacs.get(str(get_pair(pair.teacher[tier]).student))
        if teacher is None:
            return None
        passes = (1 if not recipe.augment else CROP_VIEWS if recipe.teacher_view_cache else recipe.epochs)
        return student + teacher / 3 * passes / recipe.epochs

    def cost(self, pair: Pair, tier: str) -> RowCost:
        base = stored_baseline(self.store, pair, tier, self.device)
        if base and base.seeds and base.summary.get("train_seconds"):
            return RowCost(base.summary["train_seconds"] / len(base.seeds), f"its {self.device} baseline")
        recipe = pair.recipes[tier]
        work = self.work_per_image(pair, tier)
        size = self.train_sizes.get(pair.dataset)
        if self.rate is None:
            return RowCost(None, f"unknown: no {self.device} baseline records a training time to measure the rate by")
        if work is None or size is None:
            return RowCost(None, f"unknown: no baseline measured the GMACs of {pair.student} or the size of "
                                 f"{pair.dataset} (run the row's quick tier once)")
        images = size * recipe.train_subset * (1 - recipe.val_fraction) * recipe.epochs
        return RowCost(images * work / self.rate, f"estimated: {work:.3g} GMAC x {images:,.0f} images at "
                                                  f"{self.rate:,.0f} GMAC/s ({self.rate_source})")


RATE_ROW = "cifar10-resnet18"
"""The row whose training steps measure a device's rate when no baseline was recorded on it."""


def measure_rate(device: str, data_root: Path | None, cache_dir: Path | None, seconds: float = 5.0) -> tuple[str, float]:
    """RATE_ROW's full-recipe training steps on `device` for about `seconds`: (the row, images per second)."""
    import time

    import torch

    from zoo.paired.blocks import build_block
    from zoo.records.results import default_cache_dir
    from zoo.training.data import load_dataset
    from zoo.training.forward import TrainOptions

    opts = TrainOptions(device=torch.device(device), log=lambda line: None)
    block = build_block(f"train:{RATE_ROW}", "full",
                        lambda name: load_dataset(name, data_root, cache_dir or default_cache_dir()), opts)
    block.time(3)  # warm-up
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        block.time(5)
        steps += 5
    return RATE_ROW, steps * get_pair(RATE_ROW).recipes["full"].batch_size / (time.perf_counter() - started)


def make_plan(rows: list[Pair], tier: str, device: str, store: BaselineStore, seeds: list[int] | None = None,
              max_seeds: int | None = None, timing: bool = False,
              measure: Callable[[], tuple[str, float]] | None = None) -> Plan:
    """The plan for `rows` (`seeds` given: every row runs exactly those); `measure` times the device when no
    baseline was recorded on it (measure_rate)."""
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
    model = CostModel(store, device, measure)
    costs = {row: model.cost(get_pair(row), tier) for row in {job.row for job in wanted.values()}}
    for plan in plans:
        plan.seconds_per_seed = costs[plan.row].seconds_per_seed
    return Plan(tier, device, plans, waves, after, costs=costs)


def fitting_max_seeds(rows: list[Pair], tier: str, device: str, store: BaselineStore, budget: float,
                      measure: Callable[[], tuple[str, float]] | None = None) -> int | None:
    """The largest --max-seeds whose plan fits `budget` device-hours (None: not even one seed a row fits). A plan's
    cost grows with the cap, so the cap is found by bisection."""
    def fits(cap: int) -> bool:
        hours = make_plan(rows, tier, device, store, max_seeds=cap, measure=measure).device_hours()
        return hours is not None and hours <= budget

    if not fits(1):
        return None
    low, high = 1, SEED_CEILING  # fits(low) holds
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low
