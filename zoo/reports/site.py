"""A static dashboard of the history store (`kdbench site --out DIR`), in the spirit of `asv publish`.

    index.html          every row (tier, dataset, device) with its latest verdict, mean +- sd against the
                        baseline, and a small trend of its session means
    rows/<key>.html     one row: accuracy, teacher KL and training throughput over runs (each seed a point,
                        the baseline's mean +- sd as a band, the drift detector's change points as lines,
                        runs on a busy machine hollow; hover shows seed, session, commit, date and machine),
                        the recipe, and the provenance of every run
    regressions.html    every FAIL and WARN finding and every change point, newest first

Verdicts are the gate's own (zoo.verdicts.baselines.BaselineStore.judge) of each stored record against the
baselines as they are now. The charts are Plotly's (the `site` extra): its JavaScript is written into DIR
with the pages, so the site needs no server and no network; open index.html or publish DIR as it is.
"""
from __future__ import annotations

import html
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from zoo.records.history import History
from zoo.records.io import write_text
from zoo.records.metrics import METRICS
from zoo.records.record import IncompatibleBaselineError, Record
from zoo.records.results import machine_fingerprint
from zoo.records.store import RecordStore
from zoo.verdicts.baselines import BaselineStore, Verdict
from zoo.verdicts.drift import history_drift
from zoo.verdicts.status import RowStatus, Status

CHARTED = {"pair": ("test_accuracy", "teacher_kl", "train_images_per_s")}
"""The metrics a row page charts, by record kind; other kinds chart every metric they record."""



@dataclass
class Run:
    """One record of a row in the history, with the gate's verdict on it."""

    record: Record
    session: str
    status: str
    findings: list = field(default_factory=list)
    problem: str = ""


@dataclass
class Row:
    tier: str
    dataset: str
    device: str
    bench_id: str
    kind: str
    runs: list[Run]
    baseline: Record | None

    @property
    def key(self) -> str:
        return f"{self.tier}-{self.dataset}-{self.device}-{self.bench_id}"

    @property
    def latest(self) -> Run:
        return self.runs[-1]

    def metrics(self) -> list[str]:
        recorded = [m for m in self.latest.record.metrics if self.latest.record.values(m)]
        wanted = CHARTED.get(self.kind)
        return [m for m in wanted if m in recorded] if wanted else recorded


def judge(record: Record, store: BaselineStore) -> tuple[str, list, str]:
    """The gate's verdict on a stored record: status, findings, and a problem that kept it from being judged."""
    try:
        verdict: Verdict = store.judge(record)
    except IncompatibleBaselineError as err:
        return RowStatus.INCOMPATIBLE, [], str(err)
    return verdict.status, verdict.findings, ""


def collect(history: History, baselines: Path) -> list[Row]:
    """Every row of the history with its runs (oldest first), each judged against the baselines."""
    store = BaselineStore(baselines)
    rows = []
    for key in history.row_keys():
        found = history.row_runs(key["tier"], key["dataset"], key["device"], key["bench_id"], key["kind"])
        runs = [Run(record, session, *judge(record, store)) for session, record in found]
        baseline = store.load(runs[-1].record) if runs and runs[-1].status != RowStatus.INCOMPATIBLE else None
        rows.append(Row(key["tier"], key["dataset"], key["device"], key["bench_id"], key["kind"], runs, baseline))
    return rows


def build_site(history: History, baselines: Path, out: Path) -> list[Path]:
    """Write the dashboard into `out`; returns the pages written."""
    try:
        import plotly.graph_objects as go  # noqa: F401
        from plotly.offline import get_plotlyjs
    except ImportError as err:
        raise ModuleNotFoundError("kdbench site draws its charts with Plotly: pip install -e '.[site]'") from err
    out = Path(out)
    rows = collect(history, baselines)
    if not rows:
        raise ValueError(f"the history store {history.path} holds no record: nothing to publish")
    steps = history_drift(history, RecordStore(baselines))
    write_text(out / "plotly.min.js", get_plotlyjs())
    write_text(out / "style.css", STYLE)
    write_text(out / "site.js", (Path(__file__).parent / "static" / "site.js").read_text())
    pages = [_write(out / "index.html", "kdbench", index_body(rows, history), "")]
    for row in rows:
        row_steps = [(metric, machine, step) for bench_id, metric, machine, step in steps if bench_id == row.bench_id]
        pages.append(_write(out / "rows" / f"{row.key}.html", row.bench_id, row_body(row, row_steps), "../"))
    pages.append(_write(out / "regressions.html", "Regressions", regressions_body(rows, steps), ""))
    return pages


def _write(path: Path, title: str, body: str, up: str) -> Path:
    write_text(path, f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} - kdbench</title>
<link rel="stylesheet" href="{up}style.css"><script src="{up}plotly.min.js"></script></head>
<body><nav><a href="{up}index.html">All rows</a> <a href="{up}regressions.html">Regressions</a></nav>
{body}</body></html>
""")
    return path


# ------------------------------------------------------------------------------------------ pages
FILTERS = ("dataset", "tier", "device", "machine", "verdict")
"""The index's filters: each a column of the table and a <select> above it."""


def index_body(rows: list[Row], history: History) -> str:
    """Every row, most urgent first: searchable by id, filterable by FILTERS, sortable by any column (site.js)."""
    sessions = history.sessions()
    ordered = sorted(rows, key=lambda r: (_urgency(r.latest.status), r.tier, r.dataset, r.bench_id))
    cells = [_index_cells(row) for row in ordered]
    selects = "".join(
        f"<label>{name} <select id='filter-{name}' data-filter='{name}'><option value=''>all</option>"
        + "".join(f"<option>{html.escape(value)}</option>" for value in sorted({c[name] for c in cells}))
        + "</select></label>" for name in FILTERS)
    lines = [f"<h1>kdbench</h1><p>{len(rows)} rows over {len(sessions)} sessions in the history store; verdicts "
             f"by the gate against the baselines as they are now. Click a column's heading to sort by it.</p>",
             f"<form id='filters' onsubmit='return false'><label>search <input id='search' type='search' "
             f"placeholder='row id, e.g. kd-lr0.01' autofocus></label>{selects}"
             f"<span id='shown'>{len(rows)} of {len(rows)} rows</span></form>",
             "<table id='rows' class='filterable'><thead><tr>"
             + "".join(f"<th data-type='{kind}'>{name}</th>" for name, kind in INDEX_COLUMNS)
             + "</tr></thead><tbody>"]
    for row, cell in zip(ordered, cells):
        data = " ".join(f"data-{name}='{html.escape(cell[name], quote=True)}'" for name in FILTERS)
        lines.append(
            f"<tr class='{row.latest.status}' data-id='{html.escape(row.bench_id, quote=True)}' data-key='{row.key}' "
            f"{data}>"
            f"<td><a href='rows/{row.key}.html'>{html.escape(row.bench_id)}</a></td>"
            f"<td>{row.tier}</td><td>{row.dataset}</td><td>{row.device}</td><td>{html.escape(cell['machine'])}</td>"
            f"<td class='verdict' data-value='{_urgency(row.latest.status)}'>"
            f"{row.latest.status.upper()}</td><td data-value='{cell['latest_value']}'>{cell['latest']}</td>"
            f"<td>{cell['baseline']}</td><td data-value='{cell['change_value']}'>{cell['trend']}</td>"
            f"<td data-value='{len(row.runs)}'>{len(row.runs)}</td></tr>")
    return "\n".join(lines) + "</tbody></table><script src='site.js'></script>"


def _urgency(status: str) -> int:
    """A row status's rank (failures first)."""
    return RowStatus(status).rank


INDEX_COLUMNS = (("row", "text"), ("tier", "text"), ("dataset", "text"), ("device", "text"), ("machine", "text"),
                 ("latest verdict", "number"), ("latest", "number"), ("baseline", "text"), ("trend", "number"),
                 ("runs", "number"))


def headline_metric(row: Row) -> str | None:
    """The metric the index shows of a row: the one its latest verdict is about (its first failing or warning
    finding, e.g. a regressed teacher KL), else the row's main metric."""
    alarming = [f.metric for f in row.latest.findings if Status(f.status).alarming and row.latest.record.values(f.metric)]
    return alarming[0] if alarming else next(iter(row.metrics()), None)


def _index_cells(row: Row) -> dict[str, str]:
    """What the index shows of a row, and the values its filters and sorting read."""
    metric = headline_metric(row)
    latest_values = row.latest.record.values(metric) if metric else None
    base_values = row.baseline.values(metric) if metric and row.baseline else None
    means = [statistics.fmean(v) for r in row.runs if metric and (v := r.record.values(metric))]
    reference = means[-2] if len(means) > 1 else (statistics.fmean(base_values) if base_values else None)
    change = means[-1] - reference if means and reference is not None else None
    return {
        "dataset": row.dataset, "tier": row.tier, "device": row.device,
        "machine": row.latest.record.provenance.get("device_name", "?"), "verdict": row.latest.status.upper(),
        "latest": f"{metric} {_mean_sd(latest_values)}" if latest_values else "",
        "latest_value": f"{means[-1]:.6g}" if means else "",
        "baseline": _mean_sd(base_values) if base_values else "none",
        "trend": trend_mark(means, change, "previous run" if len(means) > 1 else "baseline"),
        "change_value": "" if change is None else f"{change:.6g}",
    }


def trend_mark(means: list[float], change: float | None, against: str) -> str:
    """The session means as a sparkline (a dot for one session) and an arrow with the latest change against the
    previous run, or against the baseline when there is one run only."""
    if change is None:
        arrow = "<span class='mark' title='no earlier run and no baseline'>new</span>"
    else:
        symbol = "=" if abs(change) < 1e-12 else ("&#9650;" if change > 0 else "&#9660;")
        arrow = f"<span class='mark' title='against the {against}'>{symbol} {change:+.3g} vs {against}</span>"
    return sparkline(means) + arrow


def row_body(row: Row, steps: list) -> str:
    import plotly.graph_objects as go

    flagged = sum(Status(f.status).alarming for run in row.runs for f in run.findings) + len(steps)
    parts = [f"<h1>{html.escape(row.bench_id)}</h1><p>{row.tier} tier, {row.dataset}, {row.device}: latest verdict "
             f"<span class='verdict {row.latest.status}'>{row.latest.status.upper()}</span>; "
             f"<a id='row-regressions' href='../regressions.html#row={row.key}'>{flagged} FAIL, WARN and change-point "
             f"entries of this row on the regressions page</a></p>"]
    for metric in row.metrics():
        fig = go.Figure()
        for busy in (False, True):
            xs, ys, text = [], [], []
            for run in row.runs:
                if bool(run.record.load.get("busy")) != busy:
                    continue
                p = run.record.provenance
                for seed, value in zip(run.record.seeds or [None] * 99, run.record.values(metric)):
                    xs.append(p.get("date"))
                    ys.append(value)
                    text.append(f"seed {seed}<br>session {run.session}<br>commit {(p.get('commit') or '?')[:10]}"
                                f"<br>{p.get('date')}<br>{machine_fingerprint(run.record)}")
            if xs:
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="busy machine" if busy else "seeds",
                                         text=text, hovertemplate="%{y:.5g}<br>%{text}<extra></extra>",
                                         marker={"symbol": "circle-open" if busy else "circle", "size": 8}))
        if row.baseline and row.baseline.values(metric):
            values = row.baseline.values(metric)
            mean = statistics.fmean(values)
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            elsewhere = _is_timing(metric) and machine_fingerprint(row.baseline) != machine_fingerprint(row.latest.record)
            fig.add_hrect(y0=mean - sd, y1=mean + sd, fillcolor="green", opacity=0.15, line_width=0)
            fig.add_hline(y=mean, line_dash="dash", line_color="green",
                          annotation_text="baseline (another machine: not gated)" if elsewhere else "baseline")
        dates = {run.session: run.record.provenance.get("date") for run in row.runs}
        for step_metric, machine, step in steps:
            if step_metric == metric and step.session in dates:
                fig.add_vline(x=dates[step.session], line_color="red",
                              annotation_text=f"change {step.change:+.3g}" + (f" ({machine[:20]})" if machine else ""))
        fig.update_layout(title=metric, height=360, margin={"t": 40, "b": 40}, xaxis_title="run date",
                          yaxis_title=metric)
        parts.append(f"<section class='chart' data-metric='{metric}'>"
                     + fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"chart-{metric}") + "</section>")
    recipe = row.latest.record.recipe or {}
    parts.append("<h2>Recipe</h2><table class='recipe'>" + "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in recipe.items()) + "</table>")
    parts.append("<h2>Runs</h2><table class='runs'><tr><th>session</th><th>date</th><th>commit</th><th>machine</th>"
                 "<th>seeds</th><th>busy</th><th>verdict</th></tr>")
    for run in reversed(row.runs):
        p = run.record.provenance
        parts.append(f"<tr class='{run.status}'><td>{html.escape(run.session)}</td><td>{p.get('date')}</td>"
                     f"<td>{(p.get('commit') or '?')[:10]}{'+dirty' if p.get('dirty') else ''}</td>"
                     f"<td>{html.escape(machine_fingerprint(run.record))}</td><td>{run.record.seeds}</td>"
                     f"<td>{'yes' if run.record.load.get('busy') else ''}</td><td>{run.status.upper()}</td></tr>")
    return "\n".join(parts) + "</table>"


def regressions_body(rows: list[Row], steps: list) -> str:
    entries = []
    for row in rows:
        for run in row.runs:
            date = run.record.provenance.get("date") or ""
            for finding in run.findings:
                if Status(finding.status).alarming:
                    status = "warn" if finding.status == Status.WARN else "fail"
                    entries.append((date, status, row, finding.metric, finding.message()))
        dates = {run.session: run.record.provenance.get("date") or "" for run in row.runs}
        for bench_id, metric, machine, step in steps:
            if bench_id == row.bench_id and step.session in dates:
                entries.append((dates[step.session], "change", row, metric,
                                f"change point: {step.before:.4g} ({step.nights_before} sessions) -> {step.after:.4g} "
                                f"({step.nights_after} sessions){' on ' + machine if machine else ''}"))
    kinds = "".join(f"<option>{kind}</option>" for kind in ("FAIL", "WARN", "CHANGE"))
    lines = [f"<h1>Regressions</h1><p>{len(entries)} FAIL and WARN findings and change points, newest first.</p>",
             "<form id='filters' onsubmit='return false'><label>search <input id='search' type='search' "
             "placeholder='row id'></label><label>kind <select id='filter-kind' data-filter='kind'><option value=''>"
             f"all</option>{kinds}</select></label><span id='shown' data-noun='entries'></span></form>",
             "<table id='regressions' class='filterable'><thead><tr><th>date</th><th>kind</th><th>row</th>"
             "<th>metric</th><th>finding</th></tr></thead><tbody>"]
    for date, status, row, metric, message in sorted(entries, key=lambda e: e[0], reverse=True):
        lines.append(f"<tr class='{status}' data-id='{html.escape(row.bench_id, quote=True)}' data-key='{row.key}' "
                     f"data-kind='{status.upper()}'><td>{date}</td><td class='verdict'>{status.upper()}</td>"
                     f"<td><a href='rows/{row.key}.html'>{html.escape(row.bench_id)}</a></td><td>{metric}</td>"
                     f"<td>{html.escape(message)}</td></tr>")
    return "\n".join(lines) + "</tbody></table><script src='site.js'></script>"


def _is_timing(metric: str) -> bool:
    """A throughput: judged only against a baseline of the same machine."""
    return metric in METRICS and METRICS[metric].unit.startswith("images/")


def _mean_sd(values: list[float]) -> str:
    if not values:
        return ""
    sd = f" ± {statistics.stdev(values):.3g}" if len(values) > 1 else ""
    return f"{statistics.fmean(values):.4g}{sd}"


def sparkline(values: list[float], width: int = 120, height: int = 24) -> str:
    """A small inline SVG of a row's session means (no script needed); one session is a dot."""
    if not values:
        return ""
    if len(values) == 1:
        return (f"<svg class='spark' width='{width}' height='{height}'><circle cx='{width / 2:.1f}' "
                f"cy='{height / 2:.1f}' r='3' fill='#345'/></svg>")
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    points = " ".join(f"{i * width / (len(values) - 1):.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
                      for i, v in enumerate(values))
    return (f"<svg class='spark' width='{width}' height='{height}'><polyline fill='none' stroke='#345' "
            f"stroke-width='1.5' points='{points}'/></svg>")


STYLE = """body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
nav a { margin-right: 1em; }
td a { white-space: nowrap; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
tr.fail td.verdict, span.fail { background: #f4b6b6; font-weight: bold; }
tr.warn td.verdict, span.warn { background: #f7e3a1; }
tr.new td.verdict, span.new { background: #cfe2f7; }
tr.pass td.verdict, span.pass { background: #d3f0d3; }
tr.change td.verdict { background: #e3d3f0; }
section.chart { max-width: 1000px; }
form#filters label { margin-right: 1em; }
form#filters input { width: 16em; }
#shown { color: #555; }
th { cursor: pointer; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
span.mark { margin-left: 0.4em; color: #555; white-space: nowrap; }
"""
