"""Baseline comparison logic: tolerances from seed spread, exact counts, speed ratios, verdicts, bad input."""
import math
import re

import pytest
from scipy import stats as scipy_stats

from zoo.records.metrics import MIN_IN_RUN_RATIO, MIN_TRAIN_CPU_RATIO, MIN_TRAIN_RATIO
from zoo.records.record import SCHEMA, IncompatibleBaselineError, Record
from zoo.verdicts.baselines import BaselineRefusedError, BaselineStore
from zoo.verdicts.gates import (
    ABSOLUTE,
    CHECKS,
    UNGATED,
    LossFalls,
    PairedRatio,
    compare,
    ensure_compatible,
    seed_spreads,
)
from zoo.verdicts.stats import (
    ALPHA_FAIL,
    ALPHA_WARN,
    detectable_drop,
    minimum_detectable_effect,
    pooled_std,
    robust_pool,
    seeds_needed,
    shortfall,
    welch,
)
from zoo.verdicts.status import RowStatus, Status
from zoo.verdicts.thresholds import (
    DEFAULT_CONFIG,
    ThresholdConfigError,
    load_thresholds,
)

MACHINE = {"device_name": "AMD EPYC", "cpu_id": "AuthenticAMD family 25 model 1 stepping 1 avx2", "cpu_count": 2,
           "torch_threads": 2, "torch": "2.14.1"}


PROBE = {"workload": "probe-v1", "threads": 2, "blas": "openblas 0.3 Haswell"}


def record(bench_id="mnist-kd", acc=(98.0, 98.2, 98.1), kl=(0.010, 0.011, 0.012), speed=(100.0, 101.0, 99.0),
           params=1000, gmacs=0.5, machine=None, busy=False, probe=None, **extra) -> Record:
    return Record.from_json({
        "schema": SCHEMA, "kind": "pair", "id": bench_id, "tier": "quick", "dataset": "mnist", "device": "cpu",
        "recipe_hash": "r1", "dataset_fingerprint": "f1", "switches": {"amp": False}, "seeds": list(range(len(acc))),
        "metrics": {"params": params, "gmacs": gmacs, "test_accuracy": list(acc), "teacher_kl": list(kl),
                    "train_images_per_s": list(speed)},
        "load": {"others_cores": 1.0 if busy else 0.0, "busy": busy},
        "machine_probe": PROBE | {"per_s": {"train_images_per_s": list(probe or (10.0,) * len(speed))}},
        "provenance": {"date": "2026-11-25T00:00:00+00:00", "commit": "abc", **(machine or MACHINE)},
        **extra,
    }, "a test record")


def statuses(run, base, pools=None):
    pools = seed_spreads([base]) if pools is None else pools
    return {f.metric: f.status for f in compare(run, base, pools)}


def test_identical_run_passes_every_check():
    assert set(statuses(record(), record()).values()) == {"ok"}


def _critical_drop(alpha, sigma, n_run, n_base, df):
    """The drop at which the one-sided pooled t-test reaches p = alpha."""
    return scipy_stats.t.ppf(1 - alpha, df) * sigma * math.sqrt(1 / n_run + 1 / n_base)


def test_accuracy_fails_on_a_significant_drop_warns_on_a_weaker_one_and_reports_what_it_detects():
    base = record()  # sd 0.1 over 3 seeds: df 2
    fail = _critical_drop(ALPHA_FAIL, 0.1, 1, 3, 2)
    warn = _critical_drop(ALPHA_WARN, 0.1, 1, 3, 2)
    assert statuses(record(acc=(98.1 - warn + 0.01,)), base)["test_accuracy"] == "ok"
    assert statuses(record(acc=(98.1 - warn - 0.01,)), base)["test_accuracy"] == "warn"
    assert statuses(record(acc=(98.1 - fail + 0.01,)), base)["test_accuracy"] == "warn"
    assert statuses(record(acc=(98.1 - fail - 0.01,)), base)["test_accuracy"] == "regressed"
    assert statuses(record(acc=(98.1 + fail + 0.01,)), base)["test_accuracy"] == "changed"  # 25 seed sds better
    (finding,) = [f for f in compare(record(acc=(97.9,)), base, seed_spreads([base])) if f.metric == "test_accuracy"]
    assert finding.effect == pytest.approx(-0.2)
    assert finding.p_value == pytest.approx(scipy_stats.t.sf(0.2 / (0.1 * math.sqrt(4 / 3)), 2))
    assert finding.detectable == pytest.approx(detectable_drop(0.1 * math.sqrt(4 / 3), 2))
    assert "[df 2]" in finding.tolerance and f"p {finding.p_value:.2g}" in finding.tolerance


def test_a_drop_within_the_practical_margin_never_fails_however_significant():
    base = record(acc=(98.0, 98.0, 98.0))  # no spread at all: any drop is "significant"
    assert statuses(record(acc=(97.95,)), base)["test_accuracy"] == "ok"  # within the 0.1 pt margin
    assert statuses(record(acc=(97.85,)), base)["test_accuracy"] == "regressed"


def test_more_seeds_detect_smaller_drops_and_ten_per_arm_use_welch():
    few = shortfall([1.0, 1.2, 1.1], [1.1, 1.3, 1.2], pool_sigma=0.1, pool_df=20)
    many = shortfall([1.0, 1.2, 1.1] * 4, [1.1, 1.3, 1.2] * 4, pool_sigma=0.1, pool_df=20)
    assert few.method.startswith("t-test with the pooled sd") and many.method.startswith("Welch")
    assert many.detectable < few.detectable
    assert few.drop == pytest.approx(0.1) and few.p_worse < 0.5 < few.p_better


def test_teacher_kl_regresses_upwards():
    base = record()
    assert statuses(record(kl=(0.5, 0.5, 0.5)), base)["teacher_kl"] == "regressed"
    assert statuses(record(kl=(0.001, 0.001, 0.001)), base)["teacher_kl"] == "changed"  # 10x closer: not luck


def _ten_rows() -> tuple[Record, dict]:
    """A baseline whose seed sd (0.1 pt) is pooled over ten rows: df 20, so a modest gain is significant."""
    rows = [record(f"row{i}", acc=(98.0, 98.2, 98.1)) for i in range(10)]
    return rows[0], seed_spreads(rows)


def test_a_better_metric_is_improved_and_one_far_beyond_its_seeds_is_changed_which_fails():
    base, pools = _ten_rows()
    improved = compare(record("row0", acc=(98.45, 98.45, 98.45)), base, pools)  # +0.35: 3.5 seed sds
    changed = compare(record("row0", acc=(98.7, 98.7, 98.7)), base, pools)  # +0.6: 6 seed sds
    assert {f.metric: f.status for f in improved}["test_accuracy"] == Status.IMPROVED
    finding = next(f for f in changed if f.metric == "test_accuracy")
    assert finding.status == Status.CHANGED and finding.failing
    assert "6.0 pooled seed sds" in finding.tolerance and "kdbench promote RUN" in finding.tolerance
    assert {s.key for s in finding.settings} >= {"change.seed_sds", "change.warn"}


def test_a_row_pattern_can_make_a_change_a_warning(tmp_path):
    config = write_config(tmp_path, """
[[tool.kdbench.rows]]
match = "row*"
change = { warn = true, seed_sds = 5 }
""")
    base, pools = _ten_rows()
    finding = next(f for f in compare(record("row0", acc=(98.7, 98.7, 98.7)), base, pools, config=config)
                   if f.metric == "test_accuracy")
    assert finding.status == Status.WARN and not finding.failing
    assert f"change.warn = true, {tmp_path / 'pyproject.toml'} rows 'row*'" in finding.tolerance
    with pytest.raises(ThresholdConfigError, match="change.warn must be true or false"):
        write_config(tmp_path, "[tool.kdbench.change]\nwarn = 1\n")


def test_statuses_carry_their_order_and_rules():
    assert [s for s in Status if s.fails] == [Status.REGRESSED, Status.CHANGED, Status.INVALID]
    assert sorted(Status, key=lambda s: s.rank)[0] is Status.REGRESSED and Status.OK.rank == len(Status) - 1
    assert Status("not gated") is Status.NOT_GATED and Status.NOT_GATED == "not gated"  # stored as its value
    assert RowStatus.NEW.fails(strict=True) and not RowStatus.NEW.fails() and RowStatus.INCOMPLETE.fails()
    assert RowStatus.of([]) is RowStatus.PASS


def test_params_and_gmacs_must_match_exactly():
    result = statuses(record(params=1001, gmacs=0.5000001), record())
    assert result["params"] == "regressed" and result["gmacs"] == "regressed"


# ----------------------------------------------------------------------------- 1: missing, empty, NaN metrics
@pytest.mark.parametrize("side", ["run", "baseline"])
@pytest.mark.parametrize(("metric", "bad"), [
    ("test_accuracy", []), ("test_accuracy", [float("nan")]), ("test_accuracy", None),
    ("teacher_kl", [float("nan")] * 3), ("train_images_per_s", [float("nan")] * 3), ("params", None),
    ("gmacs", float("inf")), ("test_accuracy", ["98"]),
])
def test_missing_empty_or_non_finite_metric_fails_naming_file_and_metric(tmp_path, side, metric, bad):
    store = BaselineStore(tmp_path)
    good = record()
    store.update(good, min_seeds=3)
    broken = record()
    if bad is None:
        del broken.metrics[metric]
    else:
        broken.metrics[metric] = bad
    if side == "baseline":
        from zoo.records.io import write_json
        write_json(store.path(good), broken.to_json())
        run = record()
    else:
        run = broken
    verdict = store.judge(run, "results/x.json")
    assert verdict.status == "fail"
    (finding,) = [f for f in verdict.regressions if f.metric == metric]
    assert finding.status == "invalid"
    where = str(store.path(good)) if side == "baseline" else "results/x.json"
    assert where in finding.message() and metric in finding.message()


def test_zero_throughput_in_a_baseline_is_invalid_not_a_crash():
    base = record(speed=(0.0, 0.0, 0.0))
    assert statuses(record(), base)["train_images_per_s"] == "invalid"


def test_every_metric_a_record_carries_is_gated_or_explained():
    gated = {c.metric for c in CHECKS}
    assert "teacher_agreement" in UNGATED and "teacher_agreement" not in gated
    assert all(reason for reason in UNGATED.values())
    unknown = record()
    unknown.metrics["mystery"] = [1.0]
    with pytest.raises(ValueError, match="mystery.*not in the metric table"):
        compare(unknown, record(), {})


# ----------------------------------------------------------------------------- 3: robust pooling
def test_spread_is_pooled_over_rows():
    a, b = [1.0, 2.0, 3.0], [10.0, 10.0, 13.0]  # sample variances 1 and 3, df 2 each
    sigma, df = pooled_std([a, b])
    assert df == 4 and sigma == pytest.approx(math.sqrt((2 * 1 + 2 * 3) / 4))
    assert pooled_std([[5.0]]) == (None, 0)


def test_one_noisy_sibling_does_not_disable_the_accuracy_gate():
    rows = [record(f"row{i}", acc=(98.0 + 0.1 * i, 98.2 + 0.1 * i, 98.1 + 0.1 * i)) for i in range(4)]
    noisy = record("noisy", acc=(60.0, 94.0, 99.0))
    pools = seed_spreads(rows + [noisy])
    assert "noisy" in pools["test_accuracy"].excluded and pools["test_accuracy"].sigma == pytest.approx(0.1)
    findings = {f.metric: f for f in compare(record("row0", acc=(93.1,)), rows[0], pools)}
    assert findings["test_accuracy"].status == "regressed"  # the 5-pt drop is caught
    assert "left out as outliers: noisy" in findings["test_accuracy"].tolerance


def test_rows_of_their_own_spread_family_pool_apart():
    """Data-free rows redraw their transfer set every seed: their spread is their own, neither an outlier
    of the trained rows nor a reason to widen those rows' pool."""
    free = {"recipe": {"distill": {"method": "data-free", "alpha": 1.0, "temperature": 10}}, "spread_family": "data-free"}
    rows = [record(f"row{i}") for i in range(4)]
    datafree = [record(f"free{i}", acc=(85.0 + i, 87.0, 84.0 - i), **free) for i in range(2)]
    pools = seed_spreads(rows + datafree)
    assert pools["test_accuracy"].sigma == pytest.approx(0.1) and not pools["test_accuracy"].excluded
    assert pools["test_accuracy@data-free"].rows == ["free0", "free1"]
    findings = {f.metric: f for f in compare(record("free0", acc=(85.5, 86.5, 84.5), **free), datafree[0], pools)}
    assert findings["test_accuracy"].status == "ok"


def test_a_diverged_seed_in_the_rows_own_baseline_is_invalid():
    rows = [record(f"row{i}") for i in range(4)] + [record("diverged", acc=(98.0, 98.1, 10.0))]
    pools = seed_spreads(rows)
    findings = {f.metric: f for f in compare(record("diverged", acc=(60.0,)), rows[-1], pools)}
    assert findings["test_accuracy"].status == "invalid" and "re-record" in findings["test_accuracy"].tolerance


def test_robust_pool_keeps_rows_of_similar_spread():
    pool = robust_pool({"a": [1.0, 2.0, 3.0], "b": [5.0, 7.0, 9.0], "c": [0.0, 0.5, 1.0]})
    assert pool.excluded == {} and pool.rows == ["a", "b", "c"]


# ----------------------------------------------------------------------------- 6: throughput
def test_throughput_ratio_on_the_same_machine():
    base = record()
    assert statuses(record(speed=(100 * (MIN_TRAIN_RATIO + 0.02),) * 3), base)["train_images_per_s"] == "ok"
    assert statuses(record(speed=(100 / 1.8,) * 3), base)["train_images_per_s"] == "regressed"  # torch 1.8x slower


def test_a_slower_host_is_divided_out_and_a_slower_training_on_it_still_fails():
    base = record()
    slow_host = record(speed=(65.0, 66.0, 64.0), probe=(6.5, 6.5, 6.5))  # a CPU quota of 1.3 of 2 cores
    (finding,) = [f for f in compare(slow_host, base, seed_spreads([base])) if f.metric == "train_images_per_s"]
    assert finding.status == "ok" and "probe ratio 0.65" in finding.tolerance and "raw ratio 0.65" in finding.tolerance
    hidden = record(speed=(65.0 / 1.8, 66.0 / 1.8, 64.0 / 1.8), probe=(6.5, 6.5, 6.5))
    assert statuses(hidden, base)["train_images_per_s"] == "regressed"
    faster_host = record(speed=(100.0, 101.0, 99.0), probe=(18.0, 18.0, 18.0))  # the code slowed as the host sped up
    assert statuses(faster_host, base)["train_images_per_s"] == "regressed"


def test_throughput_divides_each_seed_by_its_own_probe_rate_before_the_median():
    base = record(speed=(100.0, 100.0, 100.0), probe=(10.0, 10.0, 10.0))
    phase = record(speed=(100.0, 60.0, 100.0), probe=(10.0, 6.0, 10.0))  # the host slowed during seed 1 only
    assert statuses(phase, base)["train_images_per_s"] == "ok"


def cpu_timed(rec: dict, images_per_cpu_s: tuple, probe_per_cpu_s: tuple) -> dict:
    """`rec` with training also timed in CPU-seconds, the probe too."""
    rec.metrics["train_images_per_cpu_s"] = list(images_per_cpu_s)
    rec.machine_probe["per_s"]["train_images_per_cpu_s"] = list(probe_per_cpu_s)
    return rec


def test_cpu_time_throughput_sees_a_slowdown_through_a_cpu_quota():
    base = cpu_timed(record(), (50.0, 51.0, 49.0), (10.0, 10.0, 10.0))
    # a quota of 1.3 of 2 cores: wall time stretches, CPU time per image and per probe workload does not
    quota = cpu_timed(record(speed=(65.0, 66.0, 64.0), probe=(6.5, 6.5, 6.5)), (50.0, 50.5, 49.5), (10.0, 10.1, 9.9))
    assert statuses(quota, base)["train_images_per_cpu_s"] == "ok"
    slowed = cpu_timed(record(speed=(40.6, 41.2, 40.0), probe=(6.5, 6.5, 6.5)), (31.2, 31.8, 30.6), (10.0,) * 3)
    findings = {f.metric: f for f in compare(slowed, base, seed_spreads([base]))}  # torch 1.6x slower, same quota
    assert findings["train_images_per_s"].status == "ok"  # the wall-time gate cannot tell it from the quota
    assert findings["train_images_per_cpu_s"].status == "regressed"
    assert findings["train_images_per_cpu_s"].ratio == pytest.approx(0.624) and MIN_TRAIN_CPU_RATIO > 0.624
    slow_host = cpu_timed(record(speed=(65.0, 66.0, 64.0), probe=(6.5, 6.5, 6.5)), (33.0, 33.3, 32.7), (6.6,) * 3)
    assert statuses(slow_host, base)["train_images_per_cpu_s"] == "ok"  # a slow VM phase stretches CPU time too


def test_cpu_time_throughput_against_a_baseline_that_predates_it_is_not_gated():
    (finding,) = [f for f in compare(cpu_timed(record(), (50.0,) * 3, (10.0,) * 3), record(), seed_spreads([record()]))
                  if f.metric == "train_images_per_cpu_s"]
    assert finding.status == "not gated" and "predates" in finding.tolerance


def test_throughput_needs_a_probe_on_both_sides():
    old = record()
    old = old.replace(machine_probe={})
    (finding,) = [f for f in compare(record(), old, seed_spreads([old])) if f.metric == "train_images_per_s"]
    assert finding.status == "not gated" and "re-record" in finding.tolerance
    assert statuses(old, record())["train_images_per_s"] == "invalid"
    short = record()
    short.machine_probe["per_s"]["train_images_per_s"] = [10.0]
    assert statuses(short, record())["train_images_per_s"] == "invalid"
    broken = record(probe=(10.0, float("nan"), 10.0))
    assert statuses(broken, record())["train_images_per_s"] == "invalid"
    other = record()
    other.machine_probe["workload"] = "probe-v2"
    assert statuses(other, record())["train_images_per_s"] == "not gated"


def test_throughput_is_new_for_another_machine_not_failed():
    xeon = dict(MACHINE, device_name="Intel Xeon")
    findings = {f.metric: f for f in compare(record(speed=(20.0,) * 3, machine=xeon), record(), seed_spreads([record()]))}
    assert findings["train_images_per_s"].status == "not gated"
    assert "NEW for this machine" in findings["train_images_per_s"].tolerance
    other_generation = dict(MACHINE, cpu_id="AuthenticAMD family 25 model 17 stepping 1 avx512f")  # same name
    assert statuses(record(speed=(20.0,) * 3, machine=other_generation), record())["train_images_per_s"] == "not gated"
    unknown = {k: v for k, v in MACHINE.items() if k != "cpu_id"}  # recorded before the identity was kept
    assert statuses(record(), record(machine=unknown))["train_images_per_s"] == "not gated"
    torch_upgrade = dict(MACHINE, torch="2.15.0")
    assert statuses(record(speed=(20.0,) * 3, machine=torch_upgrade), record())["train_images_per_s"] == "not gated"


def test_throughput_under_a_busy_neighbour_is_not_gated():
    findings = {f.metric: f for f in compare(record(speed=(30.0,) * 3, busy=True), record(), seed_spreads([record()]))}
    assert findings["train_images_per_s"].status == "not gated" and "busy" in findings["train_images_per_s"].tolerance


def test_throughput_carried_from_the_cache_is_not_gated_on_either_side():
    warm = record()
    del warm.metrics["train_images_per_s"]
    warm = warm.replace(carried_from_cache={"train_images_per_s": "seed 0 trained 2026-11-25"})
    assert statuses(warm, record())["train_images_per_s"] == "not gated"  # the run loaded its model
    assert statuses(record(), warm)["train_images_per_s"] == "not gated"  # the baseline did
    warm = warm.replace(carried_from_cache={})
    assert statuses(warm, record())["train_images_per_s"] == "invalid"  # missing without a reason


def test_in_run_ratio_is_gated_on_any_machine():
    def engine(ratio, machine=None):
        r = record(acc=(), kl=(), speed=())
        r.provenance.update(machine or {})
        return r.replace(metrics={"engine_speed_ratio": [ratio]})

    base = engine(0.92)
    assert statuses(engine(0.92 * (MIN_IN_RUN_RATIO + 0.05), {"device_name": "Intel Xeon"}), base, {}) == {
        "engine_speed_ratio": "ok"}
    assert statuses(engine(0.92 / 1.5, {"device_name": "Intel Xeon"}), base, {}) == {"engine_speed_ratio": "regressed"}


def test_loader_speedup_is_not_gated_on_a_busy_machine():
    def loader(ratio, busy):
        r = record(acc=(), kl=(), speed=(), busy=busy)
        return r.replace(metrics={"loader_speedup": [ratio]})

    assert statuses(loader(0.90, busy=True), loader(2.75, busy=False), {}) == {"loader_speedup": "not gated"}
    rationed = loader(1.60, busy=False)
    rationed.load.update({"throttled": 0.35, "rationed": True})  # a CPU quota of 1.3 of 2 cores
    (finding,) = compare(rationed, loader(2.75, busy=False), {})
    assert finding.status == "not gated" and "CPU quota held the process back 35%" in finding.tolerance
    assert statuses(loader(0.90, busy=False), loader(2.75, busy=False), {}) == {"loader_speedup": "regressed"}


def test_timing_regression_is_confirmed_by_a_rerun(tmp_path):
    store = BaselineStore(tmp_path)
    store.update(record(), min_seeds=3)
    reruns = []

    def rerun_fast():
        reruns.append(1)
        return record()

    verdict = store.judge(record(speed=(50.0,) * 3), remeasure=rerun_fast)
    assert verdict.status == "pass" and reruns == [1] and "confirmed by a rerun" in verdict.notes[0]
    assert verdict.record.first_attempt["metrics"]["train_images_per_s"] == [50.0] * 3
    assert store.judge(record(speed=(50.0,) * 3), remeasure=lambda: record(speed=(51.0,) * 3)).status == "fail"
    # an accuracy regression is never "confirmed away"
    assert store.judge(record(acc=(90.0,)), remeasure=lambda: pytest.fail("no rerun expected")).status == "fail"


def test_smoke_rows_gate_neither_accuracy_nor_kl():
    def smoke(kl):
        r = record(acc=(), kl=(), speed=(100.0,))
        return r.replace(metrics={"params": 1000, "gmacs": 0.5, "train_images_per_s": [100.0], "train_loss_drop": [0.3],
                                  "test_accuracy_ungated": [10.0], "teacher_kl_ungated": [kl], "teacher_agreement": [12.0]})

    findings = statuses(smoke(0.136), smoke(0.037), {})  # the Xeon-vs-EPYC case of the issue
    assert "teacher_kl_ungated" not in findings and set(findings.values()) == {"ok"}


def test_what_n_seeds_can_detect():
    # the brief's example: ResNet-18 sd 0.14 pt; the WRN teacher's +0.16 pt needs ~13 seeds per arm
    assert seeds_needed(0.14, 0.16) == 13
    assert minimum_detectable_effect(0.14, 13) == pytest.approx(0.154, abs=0.002)
    assert minimum_detectable_effect(0.14, 3) > 0.3  # 3 seeds cannot see it
    assert welch([1.0, 1.1, 0.9], [2.0, 2.1, 1.9]) < 0.01
    assert welch([1.0], [2.0, 2.1]) is None


@pytest.fixture
def store(tmp_path):
    return BaselineStore(tmp_path)


def test_missing_baseline_is_new_not_a_pass(store):
    verdict = store.judge(record())
    assert verdict.status == "new" and "--update-baselines" in verdict.summary()


def test_update_then_judge(store):
    assert store.update(record(), min_seeds=3).status == "updated"
    assert store.path(record()).exists()
    assert store.judge(record()).status == "pass"
    failing = store.judge(record(acc=(90.0,)))
    assert failing.status == "fail"
    message = failing.summary()
    for text in ("mnist-kd", "test_accuracy", "measured 90", "baseline 98.1", "drop 8.1 pt", "commit abc"):
        assert text in message


# ----------------------------------------------------------------------------- 4: --update-baselines
def test_update_refuses_fewer_seeds_than_the_recipe_needs(store):
    with pytest.raises(BaselineRefusedError, match="1 seed.*needs 3.*--seeds 3"):
        store.update(record(acc=(98.0,), kl=(0.01,), speed=(100.0,)), min_seeds=3)
    assert not store.path(record()).exists()


def test_update_refuses_to_replace_a_3_seed_baseline_with_1_seed(store):
    store.update(record(), min_seeds=1)
    with pytest.raises(BaselineRefusedError, match="replace"):
        store.update(record(acc=(98.0,), kl=(0.01,), speed=(100.0,)), min_seeds=1)
    assert len(store.load(record()).seeds) == 3


def test_update_with_a_reason_stores_it(store):
    one = record(acc=(98.0,), kl=(0.01,), speed=(100.0,))
    store.update(one, min_seeds=3, reason="30 CPU minutes per seed")
    assert store.load(one).baseline_reason == "30 CPU minutes per seed"


def test_update_never_stores_a_failing_run(store):
    smoke = record()
    smoke.metrics["train_loss_drop"] = [-0.2, 0.1, 0.3]
    with pytest.raises(BaselineRefusedError, match="train_loss_drop"):
        store.update(smoke, min_seeds=3)
    with pytest.raises(BaselineRefusedError, match="not finite"):
        store.update(record(acc=(98.0, float("nan"), 98.1)), min_seeds=3)
    assert not store.path(smoke).exists()


def test_one_seed_baselines_leave_accuracy_not_gated_instead_of_failing(store):
    one = record(acc=(98.0,), kl=(0.01,), speed=(100.0,))
    store.update(one, min_seeds=3, reason="test")
    rerun = record(acc=(97.95,), kl=(0.01,), speed=(100.0,))  # another CPU: not bit-identical
    verdict = store.judge(rerun)
    assert verdict.status == "pass"
    assert {f.metric for f in verdict.not_gated} >= {"test_accuracy"}


# ----------------------------------------------------------------------------- compatibility
def test_incompatible_baseline_is_refused_with_the_fix(store):
    store.update(record(), min_seeds=3)
    changed = record()
    changed = changed.replace(recipe_hash="r2")
    with pytest.raises(IncompatibleBaselineError, match="recipe_hash.*--update-baselines"):
        store.judge(changed)


def test_run_switches_are_part_of_compatibility(store):
    store.update(record(), min_seeds=3)
    amp = record()
    amp = amp.replace(switches={"amp": True})
    with pytest.raises(IncompatibleBaselineError, match="switches"):
        store.judge(amp)


def test_fingerprint_mismatch_points_at_the_data_first():
    other = record()
    other = other.replace(dataset_fingerprint="f2")
    with pytest.raises(IncompatibleBaselineError) as err:
        ensure_compatible(other, record(), "b.json")
    assert "sha256sum -c SHA256SUMS" in str(err.value) and "--update-baselines" not in str(err.value)


def test_schema_mismatch_is_refused(store):
    old = record().to_json() | {"schema": SCHEMA - 1}
    from zoo.records.io import write_json
    write_json(store.path(record()), old)
    with pytest.raises(IncompatibleBaselineError, match="schema"):
        store.judge(record())


def test_smoke_rows_gate_on_a_falling_loss(store):
    smoke = record()
    smoke.metrics["train_loss_drop"] = [-0.2]
    assert store.judge(smoke).status == "fail"  # even without a baseline
    smoke.metrics["train_loss_drop"] = [0.3]
    assert store.judge(smoke).status == "new"
    smoke.metrics["train_loss_drop"] = [float("nan")]
    assert store.judge(smoke).status == "fail"


def test_a_metric_is_declared_once_and_its_check_and_default_follow():
    """One metric table (zoo.records.metrics): each gated metric gets exactly one check of the kind it declares and
    its default threshold as a setting; every ungated one says why; a declaration missing either is refused."""
    from zoo.records.metrics import METRICS, SEEDS, Metric
    from zoo.verdicts.thresholds import DEFAULTS

    checked = [c.metric for c in CHECKS] + [c.metric for c in ABSOLUTE]
    assert len(checked) == len(set(checked))
    assert set(checked) == {m.name for m in METRICS.values() if m.gated}
    assert isinstance(next(c for c in ABSOLUTE if c.metric == "train_loss_drop"), LossFalls)
    assert isinstance(next(c for c in ABSOLUTE if c.metric == "ab_time_ratio"), PairedRatio)
    assert set(UNGATED) == {m.name for m in METRICS.values() if not m.gated} and all(UNGATED.values())
    for metric in METRICS.values():
        assert (metric.setting in DEFAULTS) == (metric.threshold is not None), metric.name
        assert metric.setting is None or DEFAULTS[metric.setting] == metric.threshold
    with pytest.raises(ValueError, match="needs a default threshold"):
        Metric("mine", "pt", True, check=SEEDS)
    with pytest.raises(ValueError, match="either a check or the reason"):
        Metric("mine", "pt", True)


# ----------------------------------------------------------------------------- thresholds as configuration
def write_config(folder, text: str):
    (folder / "pyproject.toml").write_text(text)
    return load_thresholds(folder)


def test_default_thresholds_say_they_are_defaults():
    limits = DEFAULT_CONFIG.for_row("mnist-kd")
    assert limits["min_ratio.train_images_per_s"].value == MIN_TRAIN_RATIO
    assert str(limits["alpha_fail"]) == "alpha_fail = 0.001, default"
    (finding,) = [f for f in compare(record(), record(), seed_spreads([record()])) if f.metric == "test_accuracy"]
    assert "margin.test_accuracy = 0.1, default" in finding.tolerance


def test_project_thresholds_judge_globally_and_per_row_pattern_and_each_finding_names_its_setting(tmp_path):
    config = write_config(tmp_path, """
[tool.kdbench]
alpha_warn = 0.01
[tool.kdbench.min_ratio]
train_images_per_s = 0.9
[[tool.kdbench.rows]]
match = "cifar10-*"
min_ratio = { train_images_per_s = 0.5 }
""")
    base, slower = record(), record(speed=(80.0, 81.0, 79.0))  # 0.8 of the baseline
    judged = {f.metric: f for f in compare(slower, base, seed_spreads([base]), config=config)}
    assert judged["train_images_per_s"].status == "regressed"
    assert f"min_ratio.train_images_per_s = 0.9, {tmp_path / 'pyproject.toml'}" in judged["train_images_per_s"].tolerance
    cifar_base, cifar_slower = record("cifar10-cnn5"), record("cifar10-cnn5", speed=(80.0, 81.0, 79.0))
    judged = {f.metric: f for f in compare(cifar_slower, cifar_base, seed_spreads([cifar_base]), config=config)}
    assert judged["train_images_per_s"].status == "ok" and "rows 'cifar10-*'" in judged["train_images_per_s"].tolerance
    assert config.for_row("mnist-kd")["alpha_warn"].value == 0.01
    assert load_thresholds(tmp_path / "elsewhere") == DEFAULT_CONFIG  # no file: the defaults


@pytest.mark.parametrize(("text", "message"), [
    ("[tool.kdbench]\nalpha_fial = 0.01\n", "unknown setting 'alpha_fial'; known: alpha_fail"),
    ("[tool.kdbench.margin]\ntest_acuracy = 0.2\n", "'test_acuracy' is not a metric"),
    ("[tool.kdbench.min_ratio]\ntrain_images_per_s = \"0.7\"\n", "min_ratio.train_images_per_s must be a finite number"),
    ("[tool.kdbench.min_ratio]\ntrain_images_per_s = -1\n", "min_ratio.train_images_per_s = -1 is out of range"),
    ("[tool.kdbench]\nalpha_fail = 0.1\nalpha_warn = 0.05\n", "alpha_fail (0.1) must not exceed alpha_warn (0.05)"),
    ("[[tool.kdbench.rows]]\nmin_ratio = { loader_speedup = 0.5 }\n", "rows[0] needs `match`"),
    ("[tool.kdbench\n", "not valid TOML"),
])
def test_a_bad_threshold_setting_names_the_file_and_the_key(tmp_path, text, message):
    with pytest.raises(ThresholdConfigError, match=re.escape(message)) as err:
        write_config(tmp_path, text)
    assert str(tmp_path / "pyproject.toml") in str(err.value)
