"""Launches: the planner (waves, teacher dependencies, exclusive timing jobs, seeds from power), the gather's
INCOMPLETE rows, and the local executor's scheduling, without a cluster and without training."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from zoo.catalog.pairs import get_pair
from zoo.records.io import write_json
from zoo.runs.executors import LocalExecutor
from zoo.runs.jobs import JobSettings
from zoo.runs.plan import TARGET_DROPS, TIMING_BENCHES, Plan, PlanError, detects, make_plan, seeds_for
from zoo.verdicts.baselines import BaselineStore

BASELINES = Path(__file__).resolve().parents[1] / "baselines"


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


def test_seeds_from_power_follow_the_spread_and_the_cap(tmp_path):
    store = BaselineStore(BASELINES)
    pair = get_pair("mnist-mlp800-kd-lr0.01")
    planned = seeds_for(pair, "full", "cpu", store, None)
    assert planned.detects <= TARGET_DROPS["mnist"] < detects(planned.sigma, 1e9, len(planned.seeds) - 1) * 1.2
    assert len(planned.seeds) >= pair.recipes["full"].baseline_seeds
    capped = seeds_for(pair, "full", "cpu", store, 5)
    assert len(capped.seeds) == 5 and "capped at 5" in capped.why and capped.detects > TARGET_DROPS["mnist"]
    assert detects(1.0, 50, 40) < detects(1.0, 50, 10) < detects(2.0, 50, 10)  # more seeds detect less; noise more
    unmeasured = seeds_for(pair, "full", "cuda", store, None)  # no cuda baseline: the recipe's seeds, said so
    assert unmeasured.seeds == list(range(pair.recipes["full"].seeds)) and "no cuda baseline" in unmeasured.why
    quick = seeds_for(pair, "quick", "cpu", store, None)
    assert quick.seeds == list(range(pair.recipes["quick"].seeds))


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
