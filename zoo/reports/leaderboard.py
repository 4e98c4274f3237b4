"""Markdown leaderboards generated from result records (never edited by hand).

    kdbench leaderboard --out reports                      # from the history store, with trends
    kdbench leaderboard --from baselines --out reports     # the stored baselines
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd

from zoo.catalog.pairs import PAIRS, control_of
from zoo.errors import KdbenchInputError
from zoo.records.history import History
from zoo.records.io import write_text
from zoo.records.record import Record
from zoo.records.results import provenance_line
from zoo.records.store import RecordStore
from zoo.reports.claims import render_claims
from zoo.reports.verdict_table import human
from zoo.verdicts.gates import row_pool, seed_spreads
from zoo.verdicts.stats import mean_std, minimum_detectable_effect, pooled_std, welch


class LeaderboardSourceError(KdbenchInputError, ValueError):
    """The source folder is missing or holds no readable record: there is nothing to rank."""


def latest_record_files(root: Path) -> tuple[dict[tuple, tuple[dict, Path]], list[str]]:
    """(tier, dataset, device, id) -> the newest record found anywhere under `root` and its file; and every
    file that was skipped, with the reason (a damaged record or one of another schema)."""
    listing = RecordStore(root).listing
    return listing.newest(), listing.problem_lines()


def latest_records(root: Path) -> tuple[list[dict], list[str]]:
    """The newest record of each (tier, dataset, device, id) under `root`, and the skipped files (see above)."""
    newest, skipped = latest_record_files(root)
    return [record for record, _ in newest.values()], skipped


def _accuracy(record: Record) -> list[float]:
    metrics = record.metrics
    return metrics.get("test_accuracy") or metrics.get("test_accuracy_ungated") or []


def runs_study_recipe(record: Record) -> bool:
    """Whether the row ran the study's own recipe (its full tier): only then is the study's figure shown."""
    return record.recipe.get("schedule_name") == "study"


def _study_row(record: Record) -> dict:
    study, mean = record.study, mean_std(_accuracy(record))[0]
    return {"pair": record.id, "kdbench mean": f"{mean:.2f}",
            "study best": "n/a" if study["best"] is None else f"{study['best']:.2f}",
            "study last": "n/a" if study["last"] is None else f"{study['last']:.2f}",
            "kdbench − study last": "" if study["last"] is None else f"{mean - study['last']:+.2f}"}


def is_smoke(record: Record) -> bool:
    """A smoke row: a few epochs on a few images, which shows that the loss falls, not an accuracy."""
    return "train_loss_drop" in record.metrics


def _delta(acc: list[float], other: list[float]) -> str:
    """mean(acc) − mean(other) in points, with Welch's p."""
    p = welch(acc, other)
    return f"{mean_std(acc)[0] - mean_std(other)[0]:+.2f} " + (f"(p={p:.2g})" if p is not None else "(n<2)")


def accuracy_table(records: list[Record], pool: dict[str, Record],
                   baselines: dict[str, Record] | None) -> pd.DataFrame:
    """Each row's accuracy, its KD delta against the control trained alike (`control_of`) and, when the
    records are not the baselines themselves, its change against its stored baseline."""
    rows = []
    for r in records:
        acc = _accuracy(r)
        mean, sd = mean_std(acc)
        control = pool.get(control_of(r) or "")
        row = {"pair": r.id, "accuracy %": f"{mean:.2f} ± {sd:.2f}" if sd is not None else f"{mean:.2f}",
               "n": len(acc),
               "Δ vs control": _delta(acc, _accuracy(control)) if r.teacher and control else ""}
        if baselines is not None:
            base = baselines.get(r.id)
            row["vs baseline"] = _delta(acc, _accuracy(base)) if base and _accuracy(base) else "no baseline"
        rows.append(row)
    return pd.DataFrame(rows)


def distiller_table(records: list[Record], pool: dict[str, Record]) -> pd.DataFrame:
    """Distiller rows against their Hinton-KD row."""
    return pd.DataFrame([{"pair": r.id, "plain KD row": r.plain_kd,
                          "Δ vs plain KD": _versus_plain_kd(_accuracy(r), pool.get(r.plain_kd or ""))}
                         for r in records if r.plain_kd])


def study_lines(records: list[Record]) -> list[str]:
    """The study's figures beside the rows that run its record's recipe, a table per way the study selected its
    figure; the corrected rows, which stand beside none, named after them."""
    shown = [r for r in records if r.study and runs_study_recipe(r) and not r.correction]
    lines = []
    for selection in sorted({r.study["selection"] for r in shown}):
        lines += [f"Selected by the study as: *{selection}*", "",
                  *_markdown(pd.DataFrame([_study_row(r) for r in shown if r.study["selection"] == selection]))]
    corrected = [r.id for r in records if r.correction]
    if corrected:
        lines += [f"Corrected rows, beside no study figure: {', '.join(corrected)}.", ""]
    return lines


def cost_table(records: list[Record]) -> pd.DataFrame:
    """What a row costs: the student's parameters and compute, and its training speed."""
    return pd.DataFrame([{
        "pair": r.id, "params": human(r.metrics["params"], "params"), "GMACs": f"{r.metrics['gmacs']:.4f}",
        "train img/s": f"{r.summary['train_images_per_s']:,.0f}",
        "train time": f"{r.summary['train_seconds'] / 60:.1f} min",
    } for r in records])


def smoke_table(records: list[Record]) -> pd.DataFrame:
    """Smoke rows: what fell, over how many seeds; their accuracy after a few images is noise and not shown."""
    return pd.DataFrame([{"pair": r.id, "training loss fell by (nats, least over seeds)":
                          f"{min(r.metrics['train_loss_drop']):.2f}", "n": len(r.metrics["train_loss_drop"])}
                         for r in records])


def _versus_plain_kd(acc: list[float], plain: Record | None) -> str:
    """A distiller row's gain over its Hinton-KD row: delta, Welch's p and the smallest gain this n detects."""
    if plain is None or not acc:
        return ""
    other = _accuracy(plain)
    sigma, _ = pooled_std([acc, other])
    p = welch(acc, other)
    detects = "" if sigma is None else f", detects ≥ {minimum_detectable_effect(sigma, min(len(acc), len(other))):.2f}"
    return f"{mean_std(acc)[0] - mean_std(other)[0]:+.2f} (p={'n/a' if p is None else f'{p:.2g}'}{detects})"


def speed_table(records: list[Record]) -> pd.DataFrame:
    """Inference: the median round's images/s, the interquartile range over rounds, and the latency of a batch."""
    def spread(r: Record) -> str:
        low_high = r.summary.get("images_per_s_iqr")
        return f"{low_high[0]:,.0f} – {low_high[1]:,.0f}" if low_high else "not recorded (older record)"
    return pd.DataFrame([{
        "model": r.student, "batch": r.recipe["batch"], "images/s (median)": f"{r.summary['images_per_s']:,.0f}",
        "images/s (IQR over rounds)": spread(r), "rounds": r.summary.get("rounds", ""),
        "latency (ms/batch)": f"{r.summary['latency_ms']:.2f}",
    } for r in records])


def loader_table(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "model": r.student, "train images": f"{r.summary['images']:g} of the training set, 1 epoch",
        "kdbench img/s": f"{r.summary['kdbench_images_per_s']:.0f}",
        "naive DataLoader img/s": f"{r.summary['naive_images_per_s']:.0f}",
        "speed-up": f"x{r.metrics['loader_speedup'][0]:.2f}",
    } for r in records])


def engine_table(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{
        "row timed": r.id.removeprefix("engine-speed-"), "images": r.summary["images"],
        "engine img/s": f"{r.summary['engine_images_per_s']:.0f}",
        "plain loop img/s": f"{r.summary['plain_images_per_s']:.0f}",
        "ratio (median of rounds)": f"{r.metrics['engine_speed_ratio'][0]:.3f}",
    } for r in records])


def roles_table(records: list[Record]) -> pd.DataFrame:
    """Who teaches each row and which row without distillation it is compared with."""
    return pd.DataFrame([{"pair": r.id, "student": r.student, "teacher": r.teacher or "",
                          "control": control_of(r) or ""} for r in records if r.teacher])


def _markdown(table: pd.DataFrame) -> list[str]:
    return [table.to_markdown(index=False, disable_numparse=True), ""]


def render(tier: str, dataset: str, device: str, records: list[Record],
           baselines: dict[str, Record] | None = None) -> str:
    """One leaderboard. `baselines` (id -> record), when given, adds each row's change against its baseline."""
    pairs = [r for r in records if r.kind == "pair"]
    smoke = [r for r in pairs if is_smoke(r)]
    ranked = [r for r in pairs if not is_smoke(r)]
    speed = [r for r in records if r.kind == "speed"]
    loader = [r for r in records if r.kind == "loader"]
    engine = [r for r in records if r.kind == "engine"]
    pool = {r.id: r for r in pairs}
    lines = [f"# kdbench leaderboard: {tier} tier, {dataset}, {device}", "",
             "Generated by `zoo.reports.leaderboard` from result records; do not edit. Accuracy is exact test accuracy "
             "of the last epoch (no selection on the test set), mean ± sample sd over seeds. *Δ vs control* is "
             "against the same student without distillation, trained with the same augmentation and data "
             "(Welch's t-test p)" + ("; *vs baseline* against the row's stored baseline." if baselines is not None
                                      else "."), ""]
    if ranked:
        lines += ["## Accuracy", "", *_markdown(accuracy_table(ranked, pool, baselines))]
        lines += accuracy_pool_lines(ranked)
        if any(r.plain_kd for r in ranked):
            lines += ["## Distillers against plain KD", "", *_markdown(distiller_table(ranked, pool))]
        if any(runs_study_recipe(r) for r in ranked):
            lines += ["## The study's figures", "",
                      "The study's figures stand beside rows that run the recipe of the record they trace to "
                      "(`../shared/study/records.csv`, read by `zoo.catalog.study`): *best* is one seed's best test "
                      "epoch (what the poster printed), *last* its last epoch, which is what kdbench's mean compares "
                      "with. Corrected rows change the study's recipe on purpose and stand beside no study figure. "
                      "Never gated on.", "", *study_lines(ranked)]
        elif any(r.study for r in ranked):
            lines += ["This tier does not run the study's recipes, so no study figure is shown beside it.", ""]
        if any(r.teacher for r in ranked):
            lines += ["## Teachers and controls", "", *_markdown(roles_table(ranked))]
        lines += ["## Cost", "", *_markdown(cost_table(ranked))]
    if smoke:
        lines += ["## Smoke rows", "", "A few epochs on a few images: they show that training runs and the loss "
                  "falls; their accuracy is noise and is not ranked.", "", *_markdown(smoke_table(smoke))]
    if pairs:
        lines += ["Sources:", *[f"- {r.id}: {provenance_line(r)}" for r in pairs], ""]
        records_used = [f"- {r.id}: `{r.study['record']}`" for r in pairs
                        if r.study and runs_study_recipe(r) and not r.correction]
        if records_used:
            lines += ["Study records:", *records_used, ""]
        notes = [f"- {r.id}: " + "; ".join(t for t in (f"corrected: {r.correction}" if r.correction else "",
                                                            r.note) if t)
                 for r in pairs if r.note or r.correction]
        if notes:
            lines += ["Notes:", *notes, ""]
    if speed:
        lines += ["## Inference speed", "", speed_table(speed).to_markdown(index=False, disable_numparse=True), "",
                  f"Measured on {speed[0].provenance['device_name']} by pytest-benchmark: the median round, and the "
                  "interquartile range of images/s over the rounds.", ""]
    if engine:
        lines += ["## Training engine against a plain PyTorch loop (same run, interleaved rounds)", "",
                  engine_table(engine).to_markdown(index=False, disable_numparse=True), ""]
    if loader:
        lines += ["## Training data path against a naive per-sample DataLoader (same run)", "",
                  loader_table(loader).to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines)


def accuracy_pool_lines(pairs: list[dict]) -> list[str]:
    """The accuracy seed spread of the rows, pooled exactly as the gate pools it (`zoo.verdicts.gates.seed_spreads`:
    one pool per spread family, outlier rows left out), and the difference each pool lets seeds detect."""
    lines = []
    for key, pool in sorted(seed_spreads(pairs).items()):
        metric, _, family = key.partition("@")
        if metric != "test_accuracy" or pool.sigma is None:
            continue
        n = max(len(r.metrics["test_accuracy"]) for r in pairs if r.id in pool.rows)
        which = f"the {family} rows, which the gate pools apart" if family else "the rows the gate pools together"
        lines += [f"Pooled seed sd of {which}: {pool.sigma:.3f} pt (df {pool.df}; {pool.describe()}). With {n} "
                  f"seeds per arm a difference of {minimum_detectable_effect(pool.sigma, n):.2f} pt is detected "
                  f"with 80% power at α=0.05; smaller Δ are within the noise at this n.", ""]
    return lines


_TABLE_ORDER = {p.id: i for i, p in enumerate(PAIRS)}


def trend_section(history: History, key: tuple, records: list[dict]) -> str:
    """Each pair row's accuracy over the sessions in the history, and the change points found in it."""
    from zoo.verdicts.drift import seed_noise, steps

    pools = seed_spreads([r for r in records if r.kind == "pair"])
    rows = []
    for r in records:
        if r.kind != "pair" or not r.metrics.get("test_accuracy"):
            continue
        points = history.series(*key, r.id, "test_accuracy")
        means = [mean_std(p["values"])[0] for p in points]
        pool = row_pool(pools, "test_accuracy", r)
        found = steps(points, seed_noise(pool.sigma if pool else None, points))
        rows.append({"pair": r.id, "sessions": len(points), "first": f"{means[0]:.2f}",
                     "latest": f"{means[-1]:.2f}", "range": f"{min(means):.2f} – {max(means):.2f}",
                     "change points": "; ".join(f"{s.change:+.2f} pt from {s.session}" for s in found) or "none"})
    if not rows:
        return ""
    return "\n".join(["## Trend over sessions", "",
                      "Session means of accuracy from the history store; change points by zoo.verdicts.drift (PELT, "
                      "penalty in units of a session mean's seed noise, >= 2 sessions on each side). PNGs: "
                      "`kdbench trend`.", "", pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True), ""])


def write_leaderboards(source: Path, out: Path, tier: str | None = None,
                       baselines: Path | None = None) -> tuple[list[Path], list[str]]:
    """Write one markdown leaderboard per (tier, dataset, device) found in `source` (the history store,
    or a folder of records), and the poster's claims tested per (tier, device) (zoo.reports.claims). From the
    history store, each leaderboard ends with a trend section. With `baselines` (a folder other than `source`),
    each row's accuracy is also compared with its stored baseline.

    Returns the files written and the input files skipped (with why). A missing source, or one with
    no readable record of `tier`, raises LeaderboardSourceError: an empty leaderboard is never written.
    """
    if Path(source).is_file():  # the history store: the newest record of each row, and its trends
        history = History(source)
        current = {p.id for p in PAIRS}  # rows since renamed or removed stay in the history, not on the board
        records, skipped = [r for r in history.latest_records() if r.kind != "pair" or r.id in current], []
    elif Path(source).is_dir():
        history = None
        records, skipped = latest_records(source)
    else:
        raise LeaderboardSourceError(f"{source} is neither a history store nor a folder of result records")
    groups: dict[tuple, list] = defaultdict(list)
    for record in records:
        if tier is None or record.tier == tier:
            groups[(record.tier, record.dataset, record.device)].append(record)
    if not groups:
        raise LeaderboardSourceError(f"{source} holds no readable record{f' of the {tier!r} tier' if tier else ''}"
                                     f"{f' ({len(skipped)} skipped)' if skipped else ''}")
    compare = baselines is not None and Path(baselines).is_dir() and Path(baselines).resolve() != Path(source).resolve()
    against = latest_records(baselines)[0] if compare else None
    written = []
    for (t, dataset, device), records in sorted(groups.items()):
        records.sort(key=lambda r: (r.kind, _TABLE_ORDER.get(r.id, len(_TABLE_ORDER)), r.id))
        path = Path(out) / f"{t}-{dataset}-{device}.md"
        stored = None if against is None else {r.id: r for r in against if r.key[:3] == (t, dataset, device)}
        text = render(t, dataset, device, records, stored)
        if history is not None:
            text += trend_section(history, (t, dataset, device), records)
        write_text(path, text)
        written.append(path)
    for t, device in sorted({(t, device) for t, _, device in groups}):
        path = Path(out) / f"claims-{t}-{device}.md"
        write_text(path, render_claims(t, device, [r for (gt, _, gd), rs in groups.items()
                                                   if (gt, gd) == (t, device) for r in rs]))
        written.append(path)
    return written, skipped

