"""Launches: the planner (waves, teacher dependencies, exclusive timing jobs, seeds from power), the gather's
INCOMPLETE rows, and the local executor's scheduling, without a cluster and without training."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from zoo.catalog.pairs import get_pair
from zoo.records.io import write_json
from zoo.runs.executors import LocalExecutor
from zoo.runs.jobs import JobSettings
from zoo.runs.plan import TARGET_DROPS, TIMING_BENCHES, CostModel, Plan, PlanError, fitting_max_seeds, make_plan, seeds_for
from zoo.verdicts.baselines import BaselineStore
from zoo.verdicts.stats import gate_detectable_drop, shortfall

BASELINES = Path(__file__).resolve().parents[2] / "baselines"


def rows(*ids):
    return [get_pair(i) for i in ids]


def test_students_wait_one_wave_for_their_teachers_job():
    plan = make_plan(rows("mnist-mlp800-lr0.01", "mnist-mlp800-kd-lr0.01"), "full", "cpu", BaselineStore(BASELINES),
                     seeds=[0, 1])
    names = [[job.name for job in wave] for wave in plan.waves]
    assert names == [["mnist-mlp800-lr0.01-seed0", "mnist-mlp800-lr0.01-seed1",
                      "mnist-mlp1200-teacher-seed0", "mnist-mlp1200-teacher-seed1"],
                     ["mnist-mlp800-kd-lr0.01-seed0", "mnist-mlp800-kd-lr0.01-seed1"]]
    # the full tier distills each seed from the teacher of the same seed
    assert plan.after == {"mnist-mlp800-kd-lr0.01-seed0": "mnist-mlp1200-teacher-seed0",
                          "mnist-mlp800-kd-lr0.01-seed1": "mnist-mlp1200-teacher-seed1"}
    assert [r.row for r in plan.rows] == ["mnist-mlp800-lr0.01", "mnist-mlp800-kd-lr0.01"]  # the teacher is not gated


def test_quick_students_share_teacher_seed_zero_and_timing_jobs_come_last_one_per_wave():
    plan = make_plan(rows("cifar10-cnn5-d0.5-kd"), "quick", "cpu", BaselineStore(BASELINES), seeds=[0, 1, 2], timing=True)
    assert [job.name for job in plan.waves[0]] == ["cifar10-cnn5-teacher-seed0"]
    assert set(plan.after.values()) == {"cifar10-cnn5-teacher-seed0"}
    timing = plan.waves[2:]
    assert [wave[0].bench for wave in timing] == list(TIMING_BENCHES) and all(len(wave) == 1 for wave in timing)


def test_teachers_of_teachers_add_waves():
    """A deep KD row's teacher trains first; a row distilled from that student would wait one more wave."""
    plan = make_plan(rows("cifar10-resnet18-kd-wrn28_10"), "full", "cuda", BaselineStore(BASELINES), seeds=[0])
    assert [[j.name for j in wave] for wave in plan.waves] == [["cifar10-wrn28_10-seed0"], ["cifar10-resnet18-kd-wrn28_10-seed0"]]


def test_seeds_from_power_follow_the_gate_and_the_cap(monkeypatch):
    store = BaselineStore(BASELINES)
    pair = get_pair("mnist-mlp800-kd-lr0.01")
    # against today's 3-seed baseline no seed count reaches 0.1 pt: the recipe's seeds, and what would
    limited = seeds_for(pair, "full", "cpu", store, None)
    assert limited.seeds == list(range(pair.recipes["full"].seeds)) and "no seed count detects" in limited.why
    assert "seeds in the baseline and the run would" in limited.why
    monkeypatch.setitem(TARGET_DROPS, "mnist", 0.3)
    planned = seeds_for(pair, "full", "cpu", store, None)
    assert planned.detects <= 0.3 and len(planned.seeds) >= pair.recipes["full"].baseline_seeds
    fewer = seeds_for(pair, "full", "cpu", store, len(planned.seeds) - 1)
    assert "capped at" in fewer.why and fewer.detects > 0.3
    unmeasured = seeds_for(pair, "full", "cuda", store, None)  # no cuda baseline: the recipe's seeds, said so
    assert unmeasured.seeds == list(range(pair.recipes["full"].seeds)) and "no cuda baseline" in unmeasured.why
    quick = seeds_for(pair, "quick", "cpu", store, None)
    assert quick.seeds == list(range(pair.recipes["quick"].seeds))


@pytest.mark.parametrize(("n_run", "n_base"), [(3, 3), (8, 3), (12, 12), (20, 10)])
def test_the_plan_counts_seeds_as_the_gate_judges_them(n_run, n_base):
    """The drop a plan promises is the drop the accuracy gate (shortfall) then detects: pooled below 10 seeds an
    arm, Welch's on the arms' own spreads from there."""
    sigma, pool_df = 0.5, 18

    def seeds(n):  # n values whose sample sd is exactly sigma
        values = [(-1) ** i for i in range(n)] if n % 2 == 0 else [*((-1) ** i for i in range(n - 1)), 0.0]
        scale = sigma / statistics.stdev(values)
        return [v * scale for v in values]

    gate = shortfall(seeds(n_run), seeds(n_base), sigma, pool_df).detectable
    assert gate_detectable_drop(sigma, pool_df, n_run, n_base) == pytest.approx(gate, rel=1e-9)


def test_a_plan_costs_every_job_and_refuses_what_exceeds_the_budget():
    store = BaselineStore(BASELINES)
    mnist = rows("mnist-mlp800-lr0.01", "mnist-mlp800-kd-lr0.01")
    plan = make_plan(mnist, "full", "cpu", store)
    hours = plan.row_hours()
    assert set(hours) == {"mnist-mlp800-lr0.01", "mnist-mlp800-kd-lr0.01", "mnist-mlp1200-teacher"}  # the teacher too
    assert plan.device_hours() == pytest.approx(sum(hours.values())) and plan.over_budget(24) == ""
    refusal = plan.over_budget(plan.device_hours() / 2)
    assert "over the budget" in refusal and "mnist-mlp1200-teacher" in refusal  # the costliest, by name
    assert fitting_max_seeds(mnist, "full", "cpu", store, plan.device_hours() / 2) == 1
    assert fitting_max_seeds(mnist, "full", "cpu", store, plan.device_hours() / 10) is None
    unknown = make_plan(mnist, "full", "cuda", store)  # no cuda baseline and nothing measured
    assert unknown.device_hours() is None and "unknown" in unknown.over_budget(1e6)


def test_a_row_without_a_baseline_is_costed_from_its_gmacs_at_the_devices_rate():
    """The CNN with dropout has no full-tier cpu baseline; its twin without dropout (same GMACs and epochs) has one.
    The estimate from GMACs at the device's median rate lands within a factor 2 of the twin's measured time."""
    model = CostModel(BaselineStore(BASELINES), "cpu")
    estimate = model.cost(get_pair("cifar10-cnn5-d0.5"), "full")
    measured = model.cost(get_pair("cifar10-cnn5-d0"), "full")
    assert estimate.source.startswith("estimated") and measured.source == "its cpu baseline"
    assert 0.5 < estimate.seconds_per_seed / measured.seconds_per_seed < 2
    assert CostModel(BaselineStore(BASELINES), "cuda", measure=lambda: ("cifar10-resnet18", 1000.0)).cost(
        get_pair("cifar10-resnet18"), "full").source.startswith("estimated")  # a device timed now


def test_launch_over_budget_is_refused_naming_the_cap_that_fits(tmp_path, capsys):
    from zoo.cli import main

    code = main(["launch", "mnist-mlp800-lr0.01", "--tier", "full", "--device", "cpu", "--dry-run", "--budget",
                 "0.001", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "refused" in err and "--over-budget" in err
    assert main(["launch", "mnist-mlp800-lr0.01", "--tier", "full", "--device", "cpu", "--dry-run", "--budget",
                 "0.001", "--over-budget", "--out", str(tmp_path)]) == 0


def test_bad_selections_are_plan_errors():
    with pytest.raises(PlanError, match="no row selected"):
        make_plan([], "full", "cpu", BaselineStore(BASELINES))
    with pytest.raises(PlanError, match="selects no seed"):
        make_plan(rows("mnist-mlp800-lr0.01"), "full", "cpu", BaselineStore(BASELINES), seeds=[])


def test_plan_round_trips_and_a_missing_plan_is_named(tmp_path):
    plan = make_plan(rows("mnist-mlp800-kd-lr0.1"), "quick", "cpu", BaselineStore(BASELINES), seeds=[0, 3])
    plan.save(tmp_path)
    again = Plan.load(tmp_path)
    assert again.waves == plan.waves and again.after == plan.after and again.rows == plan.rows
    with pytest.raises(PlanError, match=r"plan.json does not exist"):
        Plan.load(tmp_path / "elsewhere")


def test_gather_reports_a_row_with_a_missing_seed_incomplete_and_fails(tmp_path):
    from zoo.runs.gather import gather

    plan = make_plan(rows("mnist-mlp800-lr0.01"), "quick", "cpu", BaselineStore(BASELINES), seeds=[0, 1])
    plan.save(tmp_path)
    write_json(tmp_path / "checkpoints" / "quick" / "cpu" / "placeholder.json", {})  # a folder, not seed 1's
    gathered = gather(JobSettings(tmp_path), BaselineStore(BASELINES), log=lambda line: None)
    [outcome] = gathered.outcomes
    assert outcome.status == "incomplete" and gathered.failed
    assert [m.split(" ")[0] for m in outcome.missing] == ["mnist-mlp800-lr0.01-seed0", "mnist-mlp800-lr0.01-seed1"]
    assert "never ran an epoch" in outcome.missing[0]
    assert "INCOMPLETE mnist-mlp800-lr0.01: 2 job(s) did not finish" in outcome.line()


def test_gather_names_a_damaged_seed_result(tmp_path):
    from zoo.runs.gather import gather
    from zoo.runs.jobs import seed_result_path

    plan = make_plan(rows("mnist-mlp800-lr0.01"), "quick", "cpu", BaselineStore(BASELINES), seeds=[0])
    plan.save(tmp_path)
    damaged = seed_result_path(tmp_path, "quick", "mnist", "cpu", "mnist-mlp800-lr0.01", 0)
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"not a seed result")
    [outcome] = gather(JobSettings(tmp_path), BaselineStore(BASELINES), log=lambda line: None).outcomes
    assert outcome.status == "incomplete" and str(damaged) in outcome.missing[0]


def test_gather_of_an_empty_plan_fails():
    from zoo.runs.gather import Gathered

    assert Gathered([], Path("records"), bootstrap=False).failed  # nothing passes for lack of data


def test_local_executor_keeps_dependencies_and_runs_timing_alone(tmp_path, monkeypatch):
    """Slots run in the launch's own process here (a thread pool stands in for the worker processes): a failed
    teacher's students are skipped, every other job runs, the timing jobs last and alone."""
    from concurrent.futures import ThreadPoolExecutor

    plan = make_plan(rows("mnist-mlp800-kd-lr0.01", "mnist-mlp800-lr0.1"), "quick", "cpu", BaselineStore(BASELINES),
                     seeds=[0, 1], timing=True)
    started, alongside = [], []
    running: set[str] = set()

    def fake_job(job, settings, log_file):
        alongside.append((job.name, set(running)))
        running.add(job.name)
        started.append(job.name)
        time.sleep(0.05)
        running.discard(job.name)
        if job.name == "mnist-mlp1200-teacher-seed0":
            raise RuntimeError("the teacher diverged")
        return "ok"

    monkeypatch.setattr("zoo.runs.executors._run_in_slot", fake_job)
    monkeypatch.setattr(LocalExecutor, "_worker", lambda self, slot, settings: ThreadPoolExecutor(1))
    statuses = LocalExecutor(JobSettings(tmp_path), slots=2, log=lambda line: None).run(plan)
    assert statuses["mnist-mlp1200-teacher-seed0"] == "failed: RuntimeError: the teacher diverged"
    assert statuses["mnist-mlp800-kd-lr0.01-seed0"].startswith("skipped: its teacher's job mnist-mlp1200-teacher-seed0")
    assert "mnist-mlp800-kd-lr0.01-seed0" not in started
    assert started[-3:] == ["timing-test_speed", "timing-test_engine_speed", "timing-test_loader_speedup"]
    assert all(not others for name, others in alongside if name.startswith("timing-"))  # alone
    assert any(others for name, others in alongside if not name.startswith("timing-"))  # training jobs share
    assert statuses["mnist-mlp800-lr0.1-seed1"] == "ok"


def test_kdbench_run_refuses_a_row_without_the_tier(tmp_path, capsys):
    from zoo.cli import main

    assert main(["run", "no-such-row", "--out", str(tmp_path), "--device", "cpu"]) == 2
    assert "no-such-row" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
