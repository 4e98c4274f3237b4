"""`kdbench compare` as markdown, for a pull-request comment and a job summary.

The comment a reviewer reads at a glance: a headline with the two commits and the rows regressed / improved /
unchanged / not gated; then a table per kind of change, each row listing only the metrics that changed (with
units, human numbers, p and the drop its seeds detect) and linking to its dashboard page; the unchanged rows
collapsed; the settings that judged, once, as a legend; links to the run's artifacts. No local path appears.
"""
from __future__ import annotations

import math
from pathlib import Path

from zoo.records.metrics import METRICS
from zoo.verdicts.baselines import RowComparison
from zoo.verdicts.gates import CHECKS, Finding, Spread
from zoo.verdicts.status import RowStatus, Status

MARKER = "<!-- kdbench-verdicts -->"
"""The first line of the comment: a sticky-comment action finds the comment to update by it."""

SECTIONS = (("regressed", "Regressed"), ("warned", "Warnings (not failing)"), ("improved", "Improved"),
            ("not gated", "Not gated: new, incompatible or unjudged rows"))
MINUS = "\u2212"
FOLD_NOT_GATED = 5
"""More rows not gated than this are folded away (their reasons stay one click away)."""
LOG_SCALE = {check.metric for check in CHECKS if isinstance(check, Spread) and check.log}
"""Metrics judged on a log scale: their effects and detectable drops are log-ratios, shown as factors."""


def row_kind(c: RowComparison) -> str:
    """Which section a row belongs to: regressed (fails), warned, improved, not gated, or unchanged."""
    if c.problem or (c.findings and all(f.status == Status.NOT_GATED for f in c.findings)):
        return "not gated"
    if c.status == RowStatus.FAIL:
        return "regressed"
    if c.status == RowStatus.WARN:
        return "warned"
    if any(f.status == Status.IMPROVED for f in c.findings):
        return "improved"
    return "unchanged"


def markdown_report(results: list[RowComparison], a_label: str, b_label: str, links: dict[str, str] | None = None,
                    site_url: str | None = None) -> str:
    kinds = {c.record.key: row_kind(c) for c in results}
    counts = {kind: sum(k == kind for k in kinds.values())
              for kind in ("regressed", "warned", "improved", "unchanged", "not gated")}
    head = "FAILED" if counts["regressed"] else "passed"
    lines = [MARKER, f"### kdbench: {head}", "",
             f"**{_commits([c.record for c in results])}** ({public(a_label)}) against "
             f"**{_commits([c.base for c in results if c.base])}** ({public(b_label)}): "
             + " · ".join(f"**{n} {kind}**" if kind in ("regressed", "warned") and n else f"{n} {kind}"
                          for kind, n in counts.items() if n or kind in ("regressed", "improved", "unchanged")), ""]
    for kind, title in SECTIONS:
        rows = sorted((c for c in results if kinds[c.record.key] == kind), key=lambda c: c.record.id)
        if not rows:
            continue
        lines += [f"#### {title}", ""]
        if kind == "not gated":
            folded = len(rows) > FOLD_NOT_GATED
            lines += [f"<details><summary>{len(rows)} rows not gated</summary>", ""] if folded else []
            lines += ["| row | why |", "|---|---|"]
            lines += [f"| {_row(c, site_url)} | {_cell(_why_not_gated(c))} |" for c in rows]
            lines += ["", "</details>"] if folded else []
        else:
            lines += ["| row | metric | run | baseline | change | p | detects |", "|---|---|---|---|---|---|---|"]
            for c in rows:
                lines += [_finding_line(c, f, site_url) for f in _changed(c)]
        lines.append("")
    unchanged = sorted((c for c in results if kinds[c.record.key] == "unchanged"), key=lambda c: c.record.id)
    if unchanged:
        lines += [f"<details><summary>{len(unchanged)} rows unchanged</summary>", "",
                  "| row | test accuracy | baseline | change |", "|---|---|---|---|"]
        for c in unchanged:
            accuracy = next((f for f in c.findings if f.metric == "test_accuracy"), None)
            lines.append(f"| {_row(c, site_url)} | " + (" | ".join(
                (human(accuracy.measured, "test_accuracy"), human(accuracy.baseline, "test_accuracy"),
                 change(accuracy))) if accuracy else "no accuracy gated | | ") + " |")
        lines += ["", "</details>", ""]
    legend = _legend(results)
    if legend:
        lines += [f"<sub>Judged by {legend}.</sub>", ""]
    if links:
        lines.append(" | ".join(f"[{name}]({url})" for name, url in links.items()))
    return "\n".join(lines) + "\n"


def public(label: str) -> str:
    """A run set's label without local paths: a folder becomes its name, `baselines (/x/y)` becomes `baselines`."""
    name = label.split(" (", 1)[0]
    return Path(name).name if "/" in name else name


def _commits(records: list) -> str:
    """The commit(s) records were made at, short: one, or the newest of several with their count."""
    commits = {}
    for record in records:
        commit = (record.provenance or {}).get("commit")
        if commit:
            commits[commit[:7]] = max(commits.get(commit[:7], ""), (record.provenance or {}).get("date") or "")
    if not commits:
        return "unknown commit"
    newest = max(commits, key=commits.get)
    return f"`{newest}`" if len(commits) == 1 else f"`{newest}` (newest of {len(commits)} commits)"


def _changed(c: RowComparison) -> list[Finding]:
    """The findings worth a line: those not ok, failing first; the test accuracy if nothing else moved."""
    moved = sorted((f for f in c.findings if f.status not in (Status.OK, Status.NOT_GATED)),
                   key=lambda f: (Status(f.status).rank, f.metric))
    return moved or [f for f in c.findings if f.metric == "test_accuracy"][:1] or c.findings[:1]


def _row(c: RowComparison, site_url: str | None) -> str:
    if not site_url:
        return c.record.id
    key = f"{c.record.tier}-{c.record.dataset}-{c.record.device}-{c.record.id}"
    return f"[{c.record.id}]({site_url.rstrip('/')}/rows/{key}.html)"


def _finding_line(c: RowComparison, f: Finding, site_url: str | None) -> str:
    status = f.status.upper() if Status(f.status).alarming else ""
    metric = f.metric.replace("_", " ") + (f" **{status}**" if status else "")
    p = "" if f.p_value is None else f"{f.p_value:.2g}"
    return (f"| {_row(c, site_url)} | {metric} | {human(f.measured, f.metric)} | {human(f.baseline, f.metric)} | "
            f"{change(f)} | {p} | {detects(f)} |")


def _why_not_gated(c: RowComparison) -> str:
    """Why a row was not judged: its problem, or each distinct reason of its findings once."""
    if c.problem:
        return f"{c.status.upper()}: {c.problem}"
    reasons = dict.fromkeys(f.tolerance for f in c.findings)
    return "; ".join(reasons)[:300]


def _legend(results: list[RowComparison]) -> str:
    """Every setting that judged a finding shown above, once: `name = value (source)`."""
    seen: dict[str, str] = {}
    for c in results:
        for f in c.findings:
            for setting in f.settings:
                source = "default" if setting.source == "default" else public(setting.source)
                value = (f"x{math.exp(setting.value):.3g}" if setting.key.removeprefix("margin.") in LOG_SCALE
                         else f"{setting.value:g}")
                seen.setdefault(setting.key, f"`{setting.key}` = {value} ({source})")
    return " · ".join(seen[key] for key in sorted(seen))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def human(value, metric: str) -> str:
    """A value in its metric's unit, for a person: 98.15 pt, 12,050 img/s, 1.28 M params, 0.0107 GMACs."""
    if value is None:
        return ""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return str(value)
    unit = METRICS[metric].unit if metric in METRICS else ""
    if unit == "pt":
        return f"{value:.2f} pt"
    if unit == "count":
        return f"{value / 1e6:.2f} M" if abs(value) >= 1e6 else f"{value:,.0f}"
    if unit in ("images/s", "images/CPU-s"):
        return f"{value:,.0f} img/s" if unit == "images/s" else f"{value:,.0f} img/CPU-s"
    if unit in ("x", "ratio"):
        return f"x{value:.3f}"
    return f"{value:.3g} {unit}".strip()


def number(value) -> str:
    """A bare number for the terminal table."""
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _signed(value: float, digits: str) -> str:
    return format(value + 0.0, f"+{digits}").replace("-", MINUS)


def change(finding: Finding) -> str:
    """The change the check judged, in the metric's unit: -0.58 pt; x1.12 (+12%) for log-scale and speed metrics."""
    unit = METRICS[finding.metric].unit if finding.metric in METRICS else ""
    if finding.effect is not None:
        if finding.metric not in LOG_SCALE:
            return f"{_signed(finding.effect, '.2f' if unit == 'pt' else '.3g')} {unit}".strip()
        factor = math.exp(finding.effect if METRICS[finding.metric].higher_is_better else -finding.effect)
        return f"x{factor:.3f} ({_signed((factor - 1) * 100, '.1f')}%)"
    ratio = finding.ratio
    if ratio is None and finding.measured is not None and finding.baseline:
        ratio = finding.measured / finding.baseline
    return "" if ratio is None else f"x{ratio:.3f} ({_signed((ratio - 1) * 100, '.1f')}%)"


def detects(finding: Finding) -> str:
    """The smallest change the finding's seeds detect, in the metric's unit."""
    if finding.detectable is None:
        return ""
    if finding.metric in LOG_SCALE:
        return f"x{math.exp(finding.detectable):.3f}"
    unit = METRICS[finding.metric].unit if finding.metric in METRICS else ""
    return f"{finding.detectable:.2f} pt" if unit == "pt" else f"{finding.detectable:.3g} {unit}".strip()
