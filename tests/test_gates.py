"""Baseline comparison logic: tolerances from seed spread, exact counts, speed ratios, verdicts."""
import copy
import math

import pytest

from zoo.baselines import BaselineStore
from zoo.gates import K_SIGMA, MIN_SPEED_RATIO, compare, seed_spreads
from zoo.results import IncompatibleBaselineError, SCHEMA
from zoo.stats import minimum_detectable_effect, pooled_std, seeds_needed, welch


def record(bench_id="mnist-kd", acc=(98.0, 98.2, 98.1), kl=(0.010, 0.011, 0.012), speed=(100.0, 101.0, 99.0),
           params=1000, gmacs=0.5, **extra):
    return {
        "schema": SCHEMA, "kind": "pair", "id": bench_id, "tier": "quick", "dataset": "mnist", "device": "cpu",
        "recipe_hash": "r1", "dataset_fingerprint": "f1", "seeds": list(range(len(acc))),
        "metrics": {"params": params, "gmacs": gmacs, "test_accuracy": list(acc), "teacher_kl": list(kl),
                    "train_throughput_norm": list(speed)},
        "provenance": {"date": "2026-11-25T00:00:00+00:00", "commit": "abc", "device_name": "cpu", "torch": "2.14.1"},
        **extra,
    }


def statuses(run, base, spreads=None):
    spreads = seed_spreads([base]) if spreads is None else spreads
    return {f.metric: f.status for f in compare(run, base, spreads)}


def test_identical_run_passes_every_check():
    assert set(statuses(record(), record()).values()) == {"ok"}


def test_accuracy_tolerance_is_k_sigma_of_the_difference_of_means():
    base = record()
    sigma = 0.1  # sd of (98.0, 98.2, 98.1)
    tol = K_SIGMA * sigma * math.sqrt(1 / 1 + 1 / 3)  # one run seed against three baseline seeds
    just_inside = record(acc=(98.1 - tol + 0.01,))
    just_outside = record(acc=(98.1 - tol - 0.01,))
    assert statuses(just_inside, base)["test_accuracy"] == "ok"
    assert statuses(just_outside, base)["test_accuracy"] == "regressed"
    assert statuses(record(acc=(98.1 + tol + 0.01,)), base)["test_accuracy"] == "improved"


def test_accuracy_floor_applies_when_seeds_agree_exactly():
    base = record(acc=(98.0, 98.0, 98.0))
    assert statuses(record(acc=(97.95,)), base)["test_accuracy"] == "ok"  # within the 0.1 pt floor
    assert statuses(record(acc=(97.85,)), base)["test_accuracy"] == "regressed"


def test_teacher_kl_regresses_upwards():
    base = record()
    assert statuses(record(kl=(0.5, 0.5, 0.5)), base)["teacher_kl"] == "regressed"
    assert statuses(record(kl=(0.001, 0.001, 0.001)), base)["teacher_kl"] == "improved"


def test_params_and_gmacs_must_match_exactly():
    result = statuses(record(params=1001, gmacs=0.5000001), record())
    assert result["params"] == "regressed" and result["gmacs"] == "regressed"


def test_throughput_ratio():
    base = record()
    assert statuses(record(speed=(100 * (MIN_SPEED_RATIO + 0.02),) * 3), base)["train_throughput_norm"] == "ok"
    assert statuses(record(speed=(100 * (MIN_SPEED_RATIO - 0.02),) * 3), base)["train_throughput_norm"] == "regressed"


def test_spread_is_pooled_over_rows():
    a, b = [1.0, 2.0, 3.0], [10.0, 10.0, 13.0]  # sample variances 1 and 3, df 2 each
    sigma, df = pooled_std([a, b])
    assert df == 4 and sigma == pytest.approx(math.sqrt((2 * 1 + 2 * 3) / 4))
    assert pooled_std([[5.0]]) == (None, 0)


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
    assert store.judge(record(), update=True).status == "updated"
    assert store.path(record()).exists()
    assert store.judge(record()).status == "pass"
    failing = store.judge(record(acc=(90.0,)))
    assert failing.status == "fail"
    message = failing.summary()
    for text in ("mnist-kd", "test_accuracy", "measured 90", "baseline 98.1", "tolerance", "commit abc"):
        assert text in message


def test_incompatible_baseline_is_refused_with_the_fix(store):
    store.judge(record(), update=True)
    changed = record()
    changed["recipe_hash"] = "r2"
    with pytest.raises(IncompatibleBaselineError, match="recipe_hash.*--update-baselines"):
        store.judge(changed)


def test_schema_mismatch_is_refused(store):
    old = record()
    old["schema"] = SCHEMA + 1
    store.judge(copy.deepcopy(old), update=True)
    with pytest.raises(IncompatibleBaselineError, match="schema"):
        store.judge(record())


def test_smoke_rows_gate_on_a_falling_loss(store):
    smoke = record()
    smoke["metrics"]["train_loss_drop"] = [-0.2]
    assert store.judge(smoke).status == "fail"  # even without a baseline
    smoke["metrics"]["train_loss_drop"] = [0.3]
    assert store.judge(smoke).status == "new"
