"""The paired speed verdict on synthetic timings (no clock is read), its settings, its gate and its sides."""
from __future__ import annotations

import math
import random
import re
import subprocess

import pytest
from scipy import stats

from zoo.paired.ab import record_id
from zoo.paired.names import DEFAULT_BLOCKS, BlockError, BlockName
from zoo.paired.session import BlockTiming, PairedRunError, _check_sides, worktree
from zoo.records.record import Record
from zoo.verdicts.baselines import BaselineStore
from zoo.verdicts.gates import compare
from zoo.verdicts.paired import judge_pairs, p_greater, signed_rank_cdf, walsh_bounds
from zoo.verdicts.thresholds import ThresholdConfigError, _parse

MARGIN, ALPHA = 1.05, 0.01


def timings(n: int, slowdown: float, noise: float, seed: int, host=lambda i: 1.0) -> tuple[list[float], list[float]]:
    """Base and candidate seconds of n pairs: a host speed factor shared by both halves of pair i (a slow phase),
    independent lognormal noise on each half, and the candidate's true slowdown."""
    rng = random.Random(seed)
    base = [host(i) * math.exp(rng.gauss(0, noise)) for i in range(n)]
    cand = [host(i) * slowdown * math.exp(rng.gauss(0, noise)) for i in range(n)]
    return base, cand


def ratios(base, cand):
    return [c / b for b, c in zip(base, cand)]


@pytest.mark.parametrize("n", [1, 5, 12, 25])
def test_exact_p_matches_scipy(n):
    rng = random.Random(n)
    diffs = [rng.gauss(0.2, 1) for _ in range(n)]
    expected = stats.wilcoxon(diffs, alternative="greater", method="exact").pvalue
    assert p_greater(diffs) == pytest.approx(expected, rel=1e-9)


def test_null_distribution_is_symmetric_and_complete():
    cdf = signed_rank_cdf(10)
    assert len(cdf) == 10 * 11 // 2 + 1 and cdf[-1] == pytest.approx(1.0)
    assert cdf[0] == pytest.approx(2 ** -10)
    assert all(cdf[w] == pytest.approx(1 - cdf[55 - w - 1]) for w in range(55))


def test_bounds_cover_the_true_ratio_at_their_level():
    misses = 0
    for seed in range(400):
        base, cand = timings(12, 1.1, 0.05, seed)
        low, high = walsh_bounds([math.log(r) for r in ratios(base, cand)], ALPHA)
        misses += not low <= math.log(1.1) <= high
    assert misses <= 400 * 2 * ALPHA * 2  # two one-sided levels, with room for sampling


def test_too_few_pairs_give_no_interval():
    verdict = judge_pairs([1.3] * 5, MARGIN, ALPHA)  # 2^-5 > 0.01: no bound exists at that level
    assert (verdict.low, verdict.high) == (0.0, math.inf)
    assert verdict.status == "ok" and not verdict.conclusive


def test_unchanged_code_passes_conclusively():
    for seed in range(50):
        verdict = judge_pairs(ratios(*timings(30, 1.0, 0.03, seed)), MARGIN, ALPHA)
        assert verdict.status == "ok", verdict.describe()
        assert verdict.conclusive


@pytest.mark.parametrize(("slowdown", "pairs"), [(1.25, 10), (1.10, 30)])
def test_slowdowns_fail(slowdown, pairs):
    caught = sum(judge_pairs(ratios(*timings(pairs, slowdown, 0.03, seed)), MARGIN, ALPHA).status == "regressed"
                 for seed in range(50))
    assert caught == 50


def test_a_slow_phase_in_the_middle_moves_both_sides_and_no_verdict():
    """A 1.35x slower host for the middle third: pairs keep the ratio; unpaired medians would not."""
    phase = lambda i: 1.35 if 10 <= i < 20 else 1.0  # noqa: E731
    base, cand = timings(30, 1.0, 0.03, 7, host=phase)
    assert judge_pairs(ratios(base, cand), MARGIN, ALPHA).status == "ok"
    # the same candidate against base timings taken before the phase (a stored baseline) reads 1.35x slower
    unpaired = sorted(cand[10:20])[5] / sorted(base[:10])[5]
    assert unpaired > 1.25
    base, cand = timings(30, 1.10, 0.03, 7, host=phase)
    assert judge_pairs(ratios(base, cand), MARGIN, ALPHA).status == "regressed"


def test_a_phase_step_inside_one_pair_is_an_outlier_not_a_verdict():
    base, cand = timings(20, 1.0, 0.03, 3)
    cand[9] *= 1.35  # the cap switched on between the two halves of pair 9
    cand[14] *= 1.35
    verdict = judge_pairs(ratios(base, cand), MARGIN, ALPHA)
    assert verdict.status == "ok" and verdict.median < 1.03


def test_a_faster_candidate_is_improved():
    assert judge_pairs(ratios(*timings(12, 0.8, 0.03, 1)), MARGIN, ALPHA).status == "improved"


@pytest.mark.parametrize("bad", [[], [1.0, math.nan], [1.0, 0.0], [1.0, -1.0], [True, 1.0]])
def test_bad_ratios_are_refused(bad):
    with pytest.raises(ValueError, match="pair"):
        judge_pairs(bad, MARGIN, ALPHA)


def test_settings_are_checked(tmp_path):
    path = tmp_path / "kdbench.toml"
    with pytest.raises(ThresholdConfigError, match=r"speed.pairs = 5 pairs cannot reach speed.alpha"):
        _parse({"speed": {"pairs": 5}}, path).for_row("ab-x")
    with pytest.raises(ThresholdConfigError, match="speed.max_pairs"):
        _parse({"speed": {"pairs": 12, "max_pairs": 10}}, path)
    with pytest.raises(ThresholdConfigError, match="speed.margin"):
        _parse({"speed": {"margin": 0.9}}, path)
    config = _parse({"speed": {"margin": 1.1}, "rows": [{"match": "ab-infer-*", "speed": {"margin": 1.2}}]}, path)
    assert config.for_row("ab-train-x")["speed.margin"].value == 1.1
    assert config.for_row("ab-infer-x")["speed.margin"].value == 1.2


def ab_record(metrics: dict, **summary) -> Record:
    return Record(kind="ab", id="ab-train-mnist-mlp800-lr0.01", tier="quick", dataset="mnist", device="cpu",
                  metrics=metrics, provenance={}, summary={"block": "train:mnist-mlp800-lr0.01", **summary})


def test_the_gate_judges_an_ab_record_on_its_own_pairs(tmp_path):
    store = BaselineStore(tmp_path / "empty")
    slow = store.judge(ab_record({"ab_time_ratio": ratios(*timings(12, 1.25, 0.03, 2))}))
    assert slow.status == "fail"
    (finding,) = slow.regressions
    assert finding.metric == "ab_time_ratio" and finding.interval[0] > MARGIN and "speed.margin" in finding.tolerance
    assert store.judge(ab_record({"ab_time_ratio": ratios(*timings(12, 1.0, 0.03, 2))})).status == "pass"
    assert store.refusal(ab_record({"ab_time_ratio": [1.0] * 10}), 0)  # never a baseline


def test_an_ab_record_without_pairs_never_passes_silently():
    (invalid,) = [f for f in compare(ab_record({}, problem="the candidate cannot build it"), None, {})
                  if f.metric == "ab_time_ratio"]
    assert invalid.status == "invalid"
    (new,) = [f for f in compare(ab_record({}, problem="the base cannot build it", missing_in_base=True), None, {})
              if f.metric == "ab_time_ratio"]
    assert new.status == "not gated" and new.tolerance.startswith("NEW")


def test_block_names():
    assert [str(BlockName.parse(b)) for b in DEFAULT_BLOCKS] == list(DEFAULT_BLOCKS)
    assert record_id("train:cifar10-cnn5-d0-fitnets/hint") == "ab-train-cifar10-cnn5-d0-fitnets-hint"
    for bad in ["mnist-mlp800-lr0.01", "train:", "fly:x", "infer:x/hint", "train:x/other"]:
        with pytest.raises(BlockError, match="not a block name"):
            BlockName.parse(bad)


def test_two_sides_loading_the_same_files_are_refused():
    class Side:
        def __init__(self, **identity):
            self.identity = identity

    same = {"zoo": "/t/zoo/__init__.py", "torch_file": "/v/torch/__init__.py", "python": "/v/bin/python"}
    with pytest.raises(PairedRunError, match="same files"):
        _check_sides(Side(**same), Side(**same))
    _check_sides(Side(**same), Side(**same | {"zoo": "/other/zoo/__init__.py"}))
    _check_sides(Side(**same), Side(**same | {"torch_file": "/w/torch/__init__.py", "python": "/w/bin/python"}))


def test_worktree_of_a_ref_is_made_once_and_reused(tmp_path):
    repo = tmp_path / "repo"
    run = lambda *args: subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)  # noqa: E731
    repo.mkdir()
    run("init", "-q")
    (repo / "f.txt").write_text("one")
    run("add", "f.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    path = worktree(repo, "HEAD", tmp_path / "trees")
    assert (path / "f.txt").read_text() == "one"
    assert worktree(repo, "HEAD", tmp_path / "trees") == path
    with pytest.raises(PairedRunError, match="not a commit"):
        worktree(repo, "no-such-ref", tmp_path / "trees")


def process_offsets(n: int, sd: float, seed: int) -> list[float]:
    """The speed each fresh process pair of n runs at by itself: one lognormal draw per process, per side."""
    rng = random.Random(seed)
    return [math.exp(rng.gauss(0, sd) - rng.gauss(0, sd)) for _ in range(n)]


def test_a_fresh_process_pair_per_pair_keeps_a_process_own_speed_out_of_the_verdict():
    """Processes of one tree run one computation up to 10% apart for their whole life (the CNN KD block). With a
    fresh process pair per pair that is noise drawn per pair: 200 unchanged runs of 12 pairs give no FAIL, and a
    1.10x slowdown under the same noise fails in at least 9 of 10."""
    unchanged = [judge_pairs([r * o for r, o in zip(ratios(*timings(12, 1.0, 0.02, seed)), process_offsets(12, 0.035, seed))],
                             MARGIN, ALPHA) for seed in range(200)]
    assert all(v.status != "regressed" for v in unchanged)
    slower = [judge_pairs([r * o for r, o in zip(ratios(*timings(24, 1.10, 0.02, seed)), process_offsets(24, 0.035, seed))],
                          MARGIN, ALPHA) for seed in range(200)]
    assert sum(v.status == "regressed" for v in slower) >= 180


def test_a_pair_takes_each_sides_fastest_turn():
    """A burst of the host on three of one side's four turns does not move the pair; a slowdown of every turn does."""
    timing = BlockTiming("train:x", base_turns=[[0.10, 0.61, 0.58, 0.70]], candidate_turns=[[0.101, 0.10, 0.102, 0.1]])
    assert timing.ratios == [pytest.approx(1.0)]
    timing = BlockTiming("train:x", base_turns=[[0.10, 0.11, 0.10, 0.105]], candidate_turns=[[0.125, 0.13, 0.126, 0.125]])
    assert timing.ratios == [pytest.approx(1.25)]


def test_paired_evidence_takes_complete_runs_only():
    from zoo.reports.evidence import paired_report

    good = ab_record({"ab_time_ratio": ratios(*timings(12, 1.25, 0.03, 4))}, base={"commit": "abc"})
    report = paired_report({("busywait-25", "idle"): [[good], [good]]})
    assert re.search(r"\| busywait-25 +\| idle +\| train:mnist-mlp800-lr0.01 +\| 2 +\| 2 +\|", report), report
    with pytest.raises(ValueError, match="complete runs only"):
        paired_report({("aa", "idle"): [[good], [ab_record({}, problem="cut off")]]})


def test_forked_workers_serve_their_own_sides_tree(tmp_path):
    """Both sides' workers fork from one zygote; each child loads kdbench from its own side's tree, in a process of
    its own, and a fresh child per pair is a new process."""
    import sys
    from pathlib import Path

    from zoo.paired.session import Forked, Side

    here = Path(__file__).resolve().parents[2]
    other = tmp_path / "tree"
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(here), str(other)], check=True)
    workers = Forked(here, sys.executable, {})
    try:
        seen = []
        for _ in range(2):
            base = workers.start(Side("base", other, sys.executable, "HEAD"))
            candidate = workers.start(Side("candidate", here, sys.executable, "working tree"))
            seen.append((base.hello(), candidate.hello()))
            workers.stop(base)
            workers.stop(candidate)
    finally:
        workers.close()
    for base, candidate in seen:
        assert Path(base["zoo"]).parent.parent == other.resolve() and Path(candidate["zoo"]).parent.parent == here
    assert len({hello["pid"] for pair in seen for hello in pair}) == 4
