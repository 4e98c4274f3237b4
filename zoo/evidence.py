"""Evidence that the gate tells regressions from noise: A/A reruns and injected regressions.

    kdbench evidence aa SESSION...               unchanged reruns: spread per metric, false alarms
    kdbench evidence sensitivity NAME=RUNSET...  injected faults: each row's change, caught or not

Both judge run sets against the baselines exactly as the benchmark session does (zoo.baselines).
"""
from __future__ import annotations

import statistics
from collections import defaultdict

from tabulate import tabulate

from zoo.baselines import compare_sets


def _markdown(rows: list[dict]) -> str:
    return tabulate(rows, headers="keys", tablefmt="github", disable_numparse=True) if rows else "(nothing)"


def aa_report(runs: dict[str, list[dict]], baselines: list[dict], loads: dict[str, str]) -> str:
    """Unchanged reruns (session -> records) against the baselines: spread and alarms per metric."""
    means: dict[tuple, list[float]] = defaultdict(list)
    alarms: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_session = []
    for name, records in runs.items():
        counts: dict[str, int] = defaultdict(int)
        for comparison in compare_sets(records, baselines, "baselines"):
            for f in comparison.findings:
                counts[f.status] += 1
                alarms[(f.bench_id, f.metric)][f.status] += 1
                if f.measured is not None:
                    means[(f.bench_id, f.metric)].append(f.measured)
            counts["rows"] += 1
            if comparison.problem:
                counts[comparison.status] += 1
        per_session.append({"session": name, "machine load": loads.get(name, "?"), "rows": counts["rows"],
                            "ok": counts["ok"], "warn": counts["warn"], "fail": counts["regressed"] + counts["invalid"],
                            "not gated": counts["not gated"], "improved": counts["improved"]})
    by_metric: dict[str, dict] = {}
    for (bench_id, metric), values in means.items():
        entry = by_metric.setdefault(metric, {"metric": metric, "rows": 0, "max spread": 0.0, "max rel. spread": 0.0,
                                              "warn": 0, "fail": 0, "not gated": 0})
        entry["rows"] += 1
        spread = max(values) - min(values)
        entry["max spread"] = max(entry["max spread"], spread)
        mean = statistics.fmean(values)
        entry["max rel. spread"] = max(entry["max rel. spread"], spread / abs(mean) if mean else 0.0)
        status = alarms[(bench_id, metric)]
        entry["warn"] += status["warn"]
        entry["fail"] += status["regressed"] + status["invalid"]
        entry["not gated"] += status["not gated"]
    metric_rows = [e | {"max spread": f"{e['max spread']:.4g}", "max rel. spread": f"{e['max rel. spread']:.1%}"}
                   for e in sorted(by_metric.values(), key=lambda e: e["metric"])]
    return "\n".join([
        f"## A/A: {len(runs)} unchanged reruns against the committed baselines", "",
        _markdown(per_session), "",
        "Per metric over all reruns: the largest max-min spread of a row's value (seed metrics: its mean) "
        "across the reruns, and the alarms raised.", "",
        _markdown(metric_rows), ""])


def sensitivity_report(injections: dict[str, list[dict]], baselines: list[dict]) -> str:
    """Runs with an injected fault (name -> records) against the baselines: caught = the row fails."""
    rows = []
    for name, records in injections.items():
        for comparison in compare_sets(records, baselines, "baselines"):
            for f in comparison.findings:
                if f.status in ("ok", "not gated") and f.effect is None and not f.timing:
                    continue  # exact metrics that did not change: not what this injection is about
                change = (f"{f.effect:+.3g}" if f.effect is not None
                          else f"x{f.measured / f.baseline:.3f}" if f.measured is not None and f.baseline else "")
                rows.append({"injection": name, "row": f.bench_id, "metric": f.metric, "change": change,
                             "p": "" if f.p_value is None else f"{f.p_value:.2g}",
                             "detectable": "" if f.detectable is None else f"{f.detectable:.3g}",
                             "verdict": f.status.upper(), "caught": "yes" if f.failing else "no"})
    return "\n".join([f"## Sensitivity: {len(injections)} injected regressions against the committed baselines", "",
                      _markdown(rows), ""])
