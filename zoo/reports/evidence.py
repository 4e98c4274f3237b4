"""Evidence that the gate tells regressions from noise: A/A reruns and injected regressions.

    kdbench evidence aa SESSION...               unchanged reruns: spread per metric, false alarms
    kdbench evidence sensitivity NAME=RUNSET...  injected faults: each row's change, caught or not
    kdbench evidence paired ROOT                 paired A/B runs under ROOT/CANDIDATE/CONDITION/RUN: alarms, spread

Both judge run sets against the baselines exactly as the benchmark session does (zoo.verdicts.baselines).
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict

from tabulate import tabulate

from zoo.records.record import Record
from zoo.records.results import project_root
from zoo.verdicts.baselines import compare_sets, judge_self_contained
from zoo.verdicts.status import Status
from zoo.verdicts.thresholds import load_thresholds


def _failing(counts: dict[str, int]) -> int:
    """How many of the counted findings fail (REGRESSED, CHANGED, INVALID)."""
    return sum(n for status, n in counts.items() if status in set(Status) and Status(status).fails)

def table(rows: list[dict], fmt: str = "github") -> str:
    """Rows of dicts as a table (tabulate's `fmt`: github markdown, or simple for a terminal)."""
    return tabulate(rows, headers="keys", tablefmt=fmt, disable_numparse=True) if rows else "(nothing)"


def aa_report(runs: dict[str, list[Record]], baselines: list[Record], loads: dict[str, str]) -> str:
    """Unchanged reruns (session -> records) against the baselines: spread and alarms per metric."""
    means: dict[tuple, list[float]] = defaultdict(list)
    ratios: dict[str, list[float]] = defaultdict(list)
    alarms: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_session = []
    for name, records in runs.items():
        counts: dict[str, int] = defaultdict(int)
        for comparison in compare_sets(records, baselines, "baselines", load_thresholds(project_root())):
            for f in comparison.findings:
                counts[f.status] += 1
                alarms[(f.bench_id, f.metric)][f.status] += 1
                if f.measured is not None:
                    means[(f.bench_id, f.metric)].append(f.measured)
                if f.ratio is not None and f.status != Status.NOT_GATED:
                    ratios[f.metric].append(f.ratio)
            counts["rows"] += 1
            if comparison.problem:
                counts[comparison.status] += 1
        per_session.append({"session": name, "machine load": loads.get(name, "?"), "rows": counts["rows"],
                            "ok": counts["ok"], "warn": counts["warn"], "fail": _failing(counts),
                            "not gated": counts["not gated"], "improved": counts["improved"]})
    by_metric: dict[str, dict] = {}
    for (bench_id, metric), values in means.items():
        entry = by_metric.setdefault(metric, {"metric": metric, "rows": 0, "max spread": 0.0, "max rel. spread": 0.0,
                                              "gated ratio (min-max)": _range(ratios.get(metric)),
                                              "warn": 0, "fail": 0, "not gated": 0})
        entry["rows"] += 1
        spread = max(values) - min(values)
        entry["max spread"] = max(entry["max spread"], spread)
        mean = statistics.fmean(values)
        entry["max rel. spread"] = max(entry["max rel. spread"], spread / abs(mean) if mean else 0.0)
        status = alarms[(bench_id, metric)]
        entry["warn"] += status["warn"]
        entry["fail"] += _failing(status)
        entry["not gated"] += status["not gated"]
    metric_rows = [e | {"max spread": f"{e['max spread']:.4g}", "max rel. spread": f"{e['max rel. spread']:.1%}"}
                   for e in sorted(by_metric.values(), key=lambda e: e["metric"])]
    return "\n".join([
        f"## A/A: {len(runs)} unchanged reruns against the committed baselines", "",
        table(per_session), "",
        "Per metric over all reruns: the largest max-min spread of a row's value (seed metrics: its mean) "
        "across the reruns, the lowest and highest ratio to the baseline that a speed check judged (training and "
        "inference throughput: with the host's speed divided out by the machine probe), and the alarms raised.", "",
        table(metric_rows), ""])


def _range(values: list[float] | None) -> str:
    return f"{min(values):.2f}-{max(values):.2f}" if values else ""


def sensitivity_report(injections: dict[str, list[Record]], baselines: list[Record]) -> str:
    """Runs with an injected fault (name -> records) against the baselines: caught = the row fails."""
    rows = []
    for name, records in injections.items():
        for comparison in compare_sets(records, baselines, "baselines", load_thresholds(project_root())):
            for f in comparison.findings:
                if f.status in ("ok", "not gated") and f.effect is None and not f.timing:
                    continue  # exact metrics that did not change: not what this injection is about
                change = (f"{f.effect + 0.0:+.3g}" if f.effect is not None else f"x{f.ratio:.3f}" if f.ratio is not None
                          else f"x{f.measured / f.baseline:.3f}" if f.measured is not None and f.baseline else "")
                rows.append({"injection": name, "row": f.bench_id, "metric": f.metric, "change": change,
                             "p": "" if f.p_value is None else f"{f.p_value:.2g}",
                             "detectable": "" if f.detectable is None else f"{f.detectable:.3g}",
                             "verdict": f.status.upper(), "caught": "yes" if f.failing else "no"})
    return "\n".join([f"## Sensitivity: {len(injections)} injected regressions against the committed baselines", "",
                      table(rows), ""])


TARGETS = {"cifar10": 1.0, "mnist": 0.3}
"""Accuracy drop (pt) every gated quick row should detect with 80% power (regression-tracking issue)."""


def detectable_report(baselines: list[dict], tier: str = "quick") -> str:
    """Per gated row of `tier`: the accuracy drop its default seeds detect against its baseline, the
    target, and the seeds per arm (and CPU time per run) the target would take."""
    from zoo.catalog.pairs import get_pair
    from zoo.verdicts.gates import row_pool, seed_spreads
    from zoo.verdicts.stats import detectable_drop

    rows = []
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for b in baselines:
        if b.tier == tier and b.kind == "pair":
            groups[(b.dataset, b.device)].append(b)
    for (dataset, _device), records in sorted(groups.items()):
        pools = seed_spreads(records)
        for b in records:
            pool = row_pool(pools, "test_accuracy", b)
            if not b.metrics.get("test_accuracy") or pool is None or pool.sigma is None:
                continue
            n_run, n_base = get_pair(b.id).recipes[tier].seeds, len(b.metrics["test_accuracy"])
            found = max(0.1, detectable_drop(pool.sigma * (1 / n_run + 1 / n_base) ** 0.5, pool.df))
            target = TARGETS.get(dataset)
            needed = next((n for n in range(2, 1000)
                           if detectable_drop(pool.sigma * (2 / n) ** 0.5, pool.df) <= target), None) if target else None
            per_seed = b.summary["train_seconds"] / max(1, len(b.seeds))
            rows.append({"row": b.id, "dataset": dataset, "seeds run/baseline": f"{n_run}/{n_base}",
                         "pooled sd (pt)": f"{pool.sigma:.3f} [df {pool.df}]", "detectable drop (pt)": f"{found:.2f}",
                         "target": "" if target is None else f"{target:g}",
                         "met": "" if target is None else ("yes" if found <= target else "no"),
                         "seeds per arm for the target": "" if needed is None else str(needed),
                         "training s/seed": f"{per_seed:.0f}"})
    return "\n".join([f"## Detectable accuracy drop per gated {tier} row (80% power, fail at p < 0.001)", "",
                      table(rows), ""])


def paired_report(runs: dict[tuple[str, str], list[list[Record]]]) -> str:
    """Paired A/B runs (zoo.paired) grouped by (candidate, condition), each run its "ab" records: per cell and
    block, how many runs failed or improved, the range of the estimated ratio, and the spread of the pair ratios
    (the sd of their logs, pooled over the cell's runs). Every run must hold the same blocks, each with pairs."""
    blocks = sorted({r.summary["block"] for cell in runs.values() for run in cell for r in run})
    rows, spreads = [], []
    for (candidate, condition), cell in sorted(runs.items()):
        logs = []
        for block in blocks:
            found = [next((r for r in run if r.summary["block"] == block), None) for run in cell]
            if any(r is None or "ab_time_ratio" not in r.metrics for r in found):
                raise ValueError(f"{candidate} {condition}: a run without pairs of {block}; evidence takes complete "
                                 f"runs only")
            findings = [next(f for f in judge_self_contained(r, load_thresholds(project_root())).findings
                             if f.metric == "ab_time_ratio") for r in found]
            estimates = [f.ratio for f in findings]
            rows.append({"candidate": candidate, "condition": condition, "block": block, "runs": len(cell),
                         "FAIL": sum(f.status == Status.REGRESSED for f in findings),
                         "IMPROVED": sum(f.status == Status.IMPROVED for f in findings),
                         "ratio": f"{min(estimates):.3f}-{max(estimates):.3f}",
                         "pairs": f"{min(len(r.metrics['ab_time_ratio']) for r in found)}-"
                                  f"{max(len(r.metrics['ab_time_ratio']) for r in found)}"})
            logs += [statistics.stdev(math.log(x) for x in r.metrics["ab_time_ratio"]) for r in found]
        spreads.append({"candidate": candidate, "condition": condition, "runs": len(cell),
                        "pair-ratio sd (median over runs and blocks)": f"{statistics.median(logs):.3f}",
                        "largest": f"{max(logs):.3f}"})
    commits = sorted({(r.summary["base"].get("commit") or "?")[:10] for cell in runs.values() for run in cell
                      for r in run})
    total = sum(len(cell) for cell in runs.values())
    head = (f"# Paired speed A/B evidence\n\nGenerated by `kdbench evidence paired` from {total} complete runs of "
            f"`kdbench speed` (zoo.paired), grouped by candidate and condition; each run judged anew by the current "
            f"[tool.kdbench.speed] settings. FAIL counts runs whose block regressed.\n\n")
    return (head + "## Verdicts per block\n\n" + table(rows) + "\n\n## Spread of the pair ratios (sd of log ratio)\n\n"
            + table(spreads) + f"\n\nBase commit(s): {', '.join(commits)}.\n")
