"""Trend plots from the history store (matplotlib, PNG).

  accuracy-<tier>-<dataset>-<device>.png   each row's accuracy over sessions: the seeds as dots, their
                                           mean with a mean +- sd band, the baseline's mean dashed,
                                           change points found by zoo.verdicts.drift as vertical lines
  throughput-<tier>-<device>.png           training images/s over sessions, one colour per machine
                                           fingerprint; hollow markers ran on a busy machine
  kd-gain-<tier>-<device>.png              the latest session's KD gain over each row's no-KD control,
                                           with 95% confidence intervals (Welch)
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from zoo.catalog.pairs import control_of
from zoo.records.history import History  # noqa: E402
from zoo.records.io import write_bytes  # noqa: E402
from zoo.verdicts.drift import seed_noise, steps  # noqa: E402
from zoo.verdicts.stats import difference_ci  # noqa: E402


def save_png(fig, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_bytes(path, buffer.getvalue())
    return path


def _rows(history: History, kind: str = "pair") -> dict[tuple, list[str]]:
    """(tier, dataset, device) -> row ids with a gated accuracy, in first-seen order."""
    from zoo.catalog.pairs import PAIRS

    current = {p.id for p in PAIRS}  # rows since renamed or removed have no trend to show
    groups: dict[tuple, list[str]] = defaultdict(list)
    for r in history.rows_with_metric(kind, "test_accuracy"):
        if r["bench_id"] in current:
            groups[(r["tier"], r["dataset"], r["device"])].append(r["bench_id"])
    return groups


def accuracy_plot(history: History, key: tuple, ids: list[str], sigma: float | None,
                  baselines: dict[str, float], out: Path) -> Path:
    cols = min(4, len(ids))
    rows = math.ceil(len(ids) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 2.9 * rows), squeeze=False, layout="constrained")
    for ax, bench_id in zip(axes.flat, ids):
        points = history.series(*key, bench_id, "test_accuracy")
        x = range(len(points))
        means = [statistics.fmean(p["values"]) for p in points]
        sds = [statistics.stdev(p["values"]) if len(p["values"]) > 1 else 0.0 for p in points]
        ax.fill_between(x, [m - s for m, s in zip(means, sds)], [m + s for m, s in zip(means, sds)], alpha=0.25,
                        color="tab:blue", label="mean ± sd")
        ax.plot(x, means, "o-", color="tab:blue", ms=3, lw=1)
        for i, p in enumerate(points):
            ax.scatter([i] * len(p["values"]), p["values"], s=6, color="tab:gray", zorder=3)
        if bench_id in baselines:
            ax.axhline(baselines[bench_id], ls="--", color="tab:green", lw=1, label="baseline mean")
        sessions = [p["session"] for p in points]
        for step in steps(points, seed_noise(sigma, points)):
            ax.axvline(sessions.index(step.session) - 0.5, color="tab:red", lw=1.2)
        ax.set_title(bench_id, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("session", fontsize=7)
    for ax in list(axes.flat)[len(ids):]:
        ax.axis("off")
    axes.flat[0].set_ylabel("test accuracy %", fontsize=7)
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"accuracy over sessions: {' / '.join(key)} (red: change point)", fontsize=10)
    return save_png(fig, out / f"accuracy-{'-'.join(key)}.png")


def throughput_plot(history: History, tier: str, device: str, groups: dict[tuple, list[str]], out: Path) -> Path | None:
    """Training images/s of every row of `tier` over sessions, coloured by machine fingerprint."""
    series = {(dataset, bench_id): history.series(tier, dataset, device, bench_id, "train_images_per_s")
              for (t, dataset, d), ids in groups.items() if (t, d) == (tier, device) for bench_id in ids}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    sessions = sorted({p["session"] for points in series.values() for p in points})
    machines = sorted({p["machine"] for points in series.values() for p in points})
    colours = dict(zip(machines, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 3))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for points in series.values():
        for machine in machines:
            mine = [(sessions.index(p["session"]), statistics.median(p["values"]), p["busy"])
                    for p in points if p["machine"] == machine]
            ax.plot([m[0] for m in mine], [m[1] for m in mine], "-", color=colours[machine], lw=0.6, alpha=0.6)
            for i, value, busy in mine:
                ax.scatter(i, value, s=14, color="none" if busy else colours[machine], edgecolors=colours[machine])
    for machine in machines:
        ax.plot([], [], "o", color=colours[machine], label=machine)
    ax.scatter([], [], s=14, color="none", edgecolors="k", label="busy machine")
    ax.set_yscale("log")
    ax.set_xlabel("session")
    ax.set_ylabel("training images/s (median over seeds)")
    ax.set_title(f"training throughput of every row over sessions: {tier} tier, {device} (one line per row)")
    ax.legend(fontsize=7)
    return save_png(fig, out / f"throughput-{tier}-{device}.png")


def kd_gain_plot(records: list[dict], tier: str, device: str, out: Path) -> Path | None:
    by_id = {r.id: r for r in records}
    gains = []
    for r in records:
        control = by_id.get(control_of(r) or "")
        acc, c_acc = r.metrics.get("test_accuracy"), control.metrics.get("test_accuracy") if control else None
        if r.teacher and acc and c_acc and (ci := difference_ci(acc, c_acc)):
            gains.append((r.id, *ci))
    if not gains:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(gains) + 1.2))
    y = range(len(gains))
    ax.errorbar([g[1] for g in gains], y, xerr=[g[2] for g in gains], fmt="o", capsize=3)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(list(y), [g[0] for g in gains], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy gain over the no-KD control (pt), 95% CI")
    ax.set_title(f"KD gain, latest session per row: {tier} tier, {device}")
    return save_png(fig, out / f"kd-gain-{tier}-{device}.png")


def write_trends(history: History, out: Path, baselines_root: Path | None = None) -> list[Path]:
    """Every trend PNG the history supports, written under `out`."""
    from zoo.records.store import RecordStore
    from zoo.verdicts.gates import seed_spreads

    written, groups = [], _rows(history)
    store = RecordStore(baselines_root) if baselines_root else None
    for key, ids in sorted(groups.items()):
        pairs = store.group(*key).complete().of_kind("pair") if store else []
        sigma = seed_spreads(pairs)["test_accuracy"].sigma if pairs else None
        means = {b.id: statistics.fmean(b.metrics["test_accuracy"]) for b in pairs
                 if b.metrics.get("test_accuracy")}
        written.append(accuracy_plot(history, key, ids, sigma, means, out))
    current = {i for ids in groups.values() for i in ids}
    latest = [r for r in history.latest_records() if r.id in current]
    for tier, device in sorted({(k[0], k[2]) for k in groups}):
        written.append(throughput_plot(history, tier, device, groups, out))
        written.append(kd_gain_plot([r for r in latest if r.tier == tier and r.device == device
                                     and r.kind == "pair"], tier, device, out))
    return [p for p in written if p is not None]
