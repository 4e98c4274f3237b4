"""`kdbench compare` as markdown, for a pull-request comment and a job summary: the verdict table first (FAIL,
WARN, NEW, INCOMPATIBLE, then PASS collapsed), each finding with its effect, p and the drop its seeds detect,
and links to the run's artifacts."""
from __future__ import annotations

import re

from zoo.verdicts.baselines import RowComparison
from zoo.verdicts.gates import LOUD

MARKER = "<!-- kdbench-verdicts -->"
"""The first line of the comment: a sticky-comment action finds the comment to update by it."""

ORDER = ("fail", "warn", "new", "incompatible", "pass")


def markdown_report(results: list[RowComparison], a_label: str, b_label: str, links: dict[str, str] | None = None) -> str:
    counts = {s: sum(c.status == s for c in results) for s in ORDER}
    head = "FAILED" if counts["fail"] else "passed"
    lines = [MARKER, f"### kdbench: {head}", "",
             f"{a_label} against {b_label}: " + ", ".join(f"**{n} {s.upper()}**" if s != "pass" else f"{n} PASS"
                                                          for s, n in counts.items() if n), ""]
    loud = [c for c in results if c.status != "pass"]
    if loud:
        lines += ["| verdict | row | metric | run | baseline | change | p | detects | finding |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in sorted(loud, key=lambda c: (ORDER.index(c.status), c.record.id)):
            lines += _rows(c)
        lines.append("")
    passed = [c for c in results if c.status == "pass"]
    if passed:
        lines += [f"<details><summary>{len(passed)} rows passed</summary>", "",
                  "| row | metric | run | baseline | change | p | detects | note |", "|---|---|---|---|---|---|---|---|"]
        for c in sorted(passed, key=lambda c: c.record.id):
            lines += [_row_without_verdict(line) for line in _rows(c)]
        lines += ["", "</details>", ""]
    if links:
        lines.append(" | ".join(f"[{name}]({url})" for name, url in links.items()))
    return "\n".join(lines) + "\n"


def _rows(c: RowComparison) -> list[str]:
    """One line per finding worth showing: every one that is not ok (failing first), and the test accuracy."""
    verdict = c.status.upper()
    if c.problem:
        return [f"| **{verdict}** | {c.record.id} | | | | | | | {_cell(c.problem)} |"]
    shown = sorted((f for f in c.findings if f.status != "ok" or f.metric == "test_accuracy"),
                   key=lambda f: (not f.failing, f.status not in LOUD))
    lines = []
    for f in shown or c.findings[:1]:
        lines.append(f"| **{verdict}** | {c.record.id} | {f.metric} | {number(f.measured)} | {number(f.baseline)} | "
                     f"{change(f)} | {'' if f.p_value is None else f'{f.p_value:.2g}'} | "
                     f"{'' if f.detectable is None else f'{f.detectable:.3g}'} | {_finding(f)} |")
    return lines


def _finding(finding) -> str:
    """Its status and the settings that judged it (the numbers are in the columns), or why it was not judged."""
    settings = re.findall(r"\[([^\]]*=[^\]]*)\]", finding.tolerance)
    if settings:
        return f"{finding.status.upper()} [{_cell(settings[-1])}]"
    return finding.status.upper() + ("" if finding.status == "ok" else f": {_cell(finding.tolerance)[:160]}")


def _row_without_verdict(line: str) -> str:
    return "|" + line.split("|", 2)[2]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def number(value) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def change(finding) -> str:
    if finding.effect is not None:
        return f"{finding.effect + 0.0:+.3g}"
    if finding.ratio is not None:
        return f"x{finding.ratio:.3f}"
    if finding.measured is not None and finding.baseline:
        return f"x{finding.measured / finding.baseline:.3f}"
    return ""
