"""The schemes' results: omit-a-class, the partial-data gain curve, and the alpha x T grid with its selection bias.

Each section reads the newest runs of the rows whose `scheme` (zoo.catalog.pairs) names it and returns markdown
(and writes its PNG); a scheme none of whose rows ran returns None.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from zoo.catalog.pairs import PAIRS, control_of, get_pair  # noqa: E402
from zoo.reports.analysis import metrics  # noqa: E402
from zoo.reports.analysis.kd_effect import COLOURS  # noqa: E402
from zoo.reports.analysis.runs import Run  # noqa: E402
from zoo.reports.evidence import table  # noqa: E402
from zoo.reports.trend import save_png  # noqa: E402
from zoo.verdicts.stats import POWER, difference_ci, mean_sd_text, mean_std, minimum_detectable_effect, pooled_std, welch  # noqa: E402


def _in_scheme(runs: dict[str, Run], scheme: str) -> list[Run]:
    return [run for run in runs.values() if run.record.scheme == scheme]


def _seed_values(run: Run, metric: str) -> dict[int, float]:
    return dict(zip(run.record.seeds, run.metric(metric)))


# ------------------------------------------------------------------------------------------ omit a class
def _full_transfer_twin(run: Run) -> str | None:
    """The row that runs the same recipe with the whole transfer set."""
    pair, tier = get_pair(run.id), run.record.tier
    whole = pair.recipes[tier].replace(omit_class=None)
    for other in PAIRS:
        recipe = other.recipes.get(tier)
        same_pair = (other.student, other.dataset, other.teacher.get(tier)) == (pair.student, pair.dataset,
                                                                                pair.teacher.get(tier))
        if recipe and same_pair and recipe.replace(seeds=whole.seeds, baseline_seeds=whole.baseline_seeds) == whole:
            return other.id
    return None


def _class_accuracy(run: Run, cls: int) -> list[float]:
    return [float(metrics.per_class_accuracy(run.of_seed(s), run.labels, run.classes)[cls]) for s in run.seeds]


def omit_class_section(runs: dict[str, Run]) -> str | None:
    """Accuracy on the omitted class: whole transfer set, omitted, omitted and bias-corrected; with seeds."""
    rows, shown = [], set()
    for run in _in_scheme(runs, "omit-class"):
        cls = run.record.recipe["omit_class"]
        m = run.record.metrics
        temperature = run.record.recipe["distill"]["temperature"]
        for other_id, what in ((control_of(run.record), "no KD, all labels"),
                               (_full_transfer_twin(run), "KD, whole transfer set")):
            if other_id in runs and other_id not in shown:
                shown.add(other_id)
                other = runs[other_id]
                rows.append({"row": other_id, "transfer set": what, "n": len(other.seeds),
                             "test accuracy %": mean_sd_text(other.metric("test_accuracy")),
                             "class accuracy %": mean_sd_text(_class_accuracy(other, cls))})
        for suffix, t in (("", temperature), ("_t1", 1)):
            rows.append({"row": run.id, "transfer set": f"KD, no image of class {cls}", "n": len(run.seeds),
                         "test accuracy %": mean_sd_text(m["test_accuracy"]),
                         "class accuracy %": mean_sd_text(m["omitted_class_accuracy"]),
                         "bias matched at": f"T = {t:g}",
                         "class after correction %": mean_sd_text(m[f"omitted_class_accuracy_corrected{suffix}"]),
                         "overall after correction %": mean_sd_text(m[f"test_accuracy_corrected{suffix}"]),
                         "bias shift": mean_sd_text(m[f"omitted_class_bias_shift{suffix}"])})
    if not rows:
        return None
    return "\n".join([
        "## Omit a class (Hinton et al. 2015)",
        "",
        "The transfer set holds no image of one digit; the student learns of it only through the teacher's soft "
        "targets on the other digits. The bias correction shifts that digit's logit so that the student's mean "
        "softened output on the transfer set matches the teacher's (zoo.training.transfer_sets.bias_shift): no test image and no "
        "image of the digit is used; it is matched at the row's T and at T = 1. Mean ± sd over seeds; the class has "
        "about 1,000 test images, so 0.1 pt is one image.",
        "",
        table(rows),
        "",
    ])


# ------------------------------------------------------------------------------------------ partial data
def partial_data_points(runs: dict[str, Run]) -> list[dict]:
    """Per training fraction: the no-KD and KD accuracies of the partial-data rows that ran."""
    arms: dict[float, dict[str, Run]] = {}
    for run in _in_scheme(runs, "partial-data"):
        recipe = run.record.recipe
        arms.setdefault(recipe["train_subset"], {})["kd" if recipe["distill"] else "plain"] = run
    points = []
    for fraction in sorted(arms):
        pair = arms[fraction]
        if {"kd", "plain"} <= set(pair):
            points.append({"fraction": fraction, "epochs": pair["plain"].record.recipe["epochs"],
                           "plain": pair["plain"].metric("test_accuracy"), "kd": pair["kd"].metric("test_accuracy"),
                           "ids": (pair["plain"].id, pair["kd"].id)})
    return points


def partial_data_section(runs: dict[str, Run], out: Path, suffix: str) -> str | None:
    """The KD gain over the no-KD student at each training fraction: table and curve with error bars."""
    points = partial_data_points(runs)
    if not points:
        return None
    rows = []
    for p in points:
        gain, half = difference_ci(p["kd"], p["plain"]) or (mean_std(p["kd"])[0] - mean_std(p["plain"])[0], None)
        p["gain"], p["half"] = gain, half
        sigma, _ = pooled_std([p["kd"], p["plain"]])
        p_value = welch(p["kd"], p["plain"])
        n = min(len(p["kd"]), len(p["plain"]))
        rows.append({"train fraction": f"{p['fraction']:.0%}", "epochs": p["epochs"],
                     "no KD %": mean_sd_text(p["plain"]), "KD %": mean_sd_text(p["kd"]),
                     "gain pt (95% CI)": f"{gain:+.2f}" + ("" if half is None else f" ± {half:.2f}"),
                     "p (Welch)": "n/a" if p_value is None else f"{p_value:.2g}",
                     f"detectable at n={n} ({POWER:.0%} power)":
                         "n/a" if sigma is None else f"{minimum_detectable_effect(sigma, n):.2f} pt",
                     "rows": f"{p['ids'][0]}, {p['ids'][1]}"})
    png = _partial_data_figure(points, out / f"partial-data-{suffix}.png")
    return "\n".join([
        "## Partial data: the KD gain against the size of the training set",
        "",
        "The 5% rows (dropout 0, alpha 0.95, T 2, teacher seed 0) at other fractions of the training set, each a "
        "class-stratified subset; the quick tier sees about 20k images at every fraction (at least one epoch).",
        "Mean ± sd over seeds; the gain's interval is Welch's 95% CI.",
        "",
        table(rows),
        "",
        f"![partial data]({png.name})",
        "",
    ])


def _partial_data_figure(points: list[dict], path: Path) -> Path:
    fractions = [100 * p["fraction"] for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for arm, label in (("plain", "no KD"), ("kd", "KD")):
        means = [mean_std(p[arm])[0] for p in points]
        sds = [mean_std(p[arm])[1] or 0.0 for p in points]
        left.errorbar(fractions, means, yerr=sds, marker="o", capsize=3, label=label, color=COLOURS[label])
    left.set_xscale("log")
    left.set_xlabel("training images used, % of the training set")
    left.set_ylabel("test accuracy %, mean ± sd over seeds")
    left.set_title("accuracy against training fraction")
    left.legend()
    right.errorbar(fractions, [p["gain"] for p in points], yerr=[p["half"] or 0.0 for p in points], marker="o",
                   capsize=3, color="tab:green")
    right.axhline(0, color="k", lw=0.8)
    right.set_xscale("log")
    right.set_xlabel("training images used, % of the training set")
    right.set_ylabel("KD - no KD, pt (Welch 95% CI)")
    right.set_title("gain from KD")
    for ax in (left, right):
        ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
    fig.tight_layout()
    return save_png(fig, path)


# ------------------------------------------------------------------------------------------ alpha x T
def alpha_temp_grid(runs: dict[str, Run]) -> tuple[Run | None, dict[tuple[float, float], Run]]:
    """The grid's no-KD control and its cells that ran, keyed by (alpha, T)."""
    control, cells = None, {}
    for run in _in_scheme(runs, "alpha-temp"):
        distill = run.record.recipe["distill"]
        if distill is None:
            control = run
        else:
            cells[(distill["alpha"], distill["temperature"])] = run
    return control, cells


def selection_bias(cells: dict[tuple, Run], control: Run | None) -> list[dict]:
    """Per seed: the cell picked on validation and on test, each one's test accuracy, and the gap between them."""
    seeds = sorted(set.intersection(*(set(r.record.seeds) for r in cells.values())))
    rows = []
    for seed in seeds:
        val = {cell: _seed_values(run, "val_accuracy")[seed] for cell, run in cells.items()}
        test = {cell: _seed_values(run, "test_accuracy")[seed] for cell, run in cells.items()}
        by_val, by_test = max(val, key=val.get), max(test, key=test.get)
        row = {"seed": seed, "picked on validation": by_val, "its test %": test[by_val],
               "picked on test": by_test, "its test % (the study's way)": test[by_test],
               "gap pt": test[by_test] - test[by_val]}
        if control is not None and seed in control.record.seeds:
            base = _seed_values(control, "test_accuracy")[seed]
            row |= {"gain, picked on validation": test[by_val] - base, "gain, picked on test": test[by_test] - base}
        rows.append(row)
    return rows


def alpha_temp_section(runs: dict[str, Run], out: Path, suffix: str) -> str | None:
    """Heat map and ranked table of the grid; the selection bias of picking a cell on the test set."""
    control, cells = alpha_temp_grid(runs)
    if len(cells) < 2:
        return None
    base = control.metric("test_accuracy") if control else []
    ranked = sorted(cells.items(), key=lambda item: -mean_std(item[1].metric("val_accuracy"))[0])
    rank_rows = [{"rank (by validation)": i + 1, "alpha": a, "T": t, "n": len(run.seeds),
                  "validation %": mean_sd_text(run.metric("val_accuracy")), "test %": mean_sd_text(run.metric("test_accuracy")),
                  "test − no KD pt": f"{mean_std(run.metric('test_accuracy'))[0] - mean_std(base)[0]:+.2f}" if base else ""}
                 for i, ((a, t), run) in enumerate(ranked)]
    bias = selection_bias(cells, control)
    gaps = [r["gap pt"] for r in bias]
    bias_rows = [{k: (f"a{v[0]:g} T{v[1]:g}" if isinstance(v, tuple) else f"{v:+.2f}" if "gap" in k or "gain" in k
                      else f"{v:.2f}" if isinstance(v, float) else v) for k, v in r.items()} for r in bias]
    summary = [f"Gap between picking on test and on validation: {mean_sd_text(gaps)} pt over {len(gaps)} seeds "
               f"(each seed picks among {len(cells)} cells)."]
    if bias and "gain, picked on test" in bias[0]:
        summary.append(f"KD gain over the no-KD control as a paper would report it (best cell on test): "
                       f"{mean_sd_text([r['gain, picked on test'] for r in bias])} pt; picked on validation: "
                       f"{mean_sd_text([r['gain, picked on validation'] for r in bias])} pt.")
    png = _alpha_temp_figure(cells, control, out / f"alpha-temp-{suffix}.png")
    return "\n".join([
        "## Alpha x T grid and the selection bias of picking on the test set",
        "",
        f"The 5% rows' grid with {control.record.recipe['val_fraction']:.0%} of the training set held out for "
        f"validation (the control holds out the same split). `{control.id}` is the no-KD control: "
        f"{mean_sd_text(base)} % test." if control else "The grid's no-KD control did not run.",
        "",
        table(rank_rows),
        "",
        "Per seed, the cell a study picks on the test set (as this study did) against the cell picked on the "
        "validation split; both scored on test:",
        "",
        table(bias_rows),
        "",
        *summary,
        "",
        f"![alpha x T]({png.name})",
        "",
    ])


def _alpha_temp_figure(cells: dict[tuple, Run], control: Run | None, path: Path) -> Path:
    alphas = sorted({a for a, _ in cells})
    temps = sorted({t for _, t in cells})
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.9 * len(alphas) + 2.5))
    for ax, metric, label in zip(axes, ("val_accuracy", "test_accuracy"), ("validation", "test")):
        grid = np.full((len(alphas), len(temps)), np.nan)
        for (a, t), run in cells.items():
            grid[alphas.index(a), temps.index(t)] = mean_std(run.metric(metric))[0]
        image = ax.imshow(grid, cmap="viridis", aspect="auto")
        middle = (np.nanmin(grid) + np.nanmax(grid)) / 2
        for i in range(len(alphas)):
            for j in range(len(temps)):
                if not np.isnan(grid[i, j]):  # dark text on viridis' bright end
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=9,
                            color="k" if grid[i, j] > middle else "w")
        ax.set_xticks(range(len(temps)), [f"{t:g}" for t in temps])
        ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
        ax.set_xlabel("temperature T")
        ax.set_ylabel("alpha (weight of the soft term)")
        extra = f"; no KD {mean_std(control.metric(metric))[0]:.2f}" if control else ""
        ax.set_title(f"{label} accuracy %, mean over seeds{extra}", fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_png(fig, path)
