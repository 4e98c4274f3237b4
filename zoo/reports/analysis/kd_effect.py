"""One teacher -> student pair: the student with KD against the same student without it, and the teacher.

`analyze_pair` turns three runs (the KD row, its no-KD control, the teacher row) into numbers per seed;
`pair_figure` draws them (confusions, per-class gain, the teacher's soft-target similarity at T, entropy
and KL over T, reliability diagrams); `pair_section` writes the markdown table with seeds and p-values.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import torch  # noqa: E402

from zoo.reports.analysis import metrics  # noqa: E402
from zoo.reports.analysis.runs import AnalysisInputError, Run  # noqa: E402
from zoo.reports.evidence import table  # noqa: E402
from zoo.reports.trend import save_png  # noqa: E402
from zoo.training.data import CIFAR_CLASSES  # noqa: E402
from zoo.verdicts.stats import mean_std, welch  # noqa: E402

TEMPERATURES = tuple(float(t) for t in np.geomspace(1, 40, 16))
ARMS = ("teacher", "no KD", "KD")
COLOURS = {"teacher": "tab:blue", "no KD": "tab:orange", "KD": "tab:green"}


def class_names(dataset: str, classes: int) -> list[str]:
    """Display names of a dataset's classes."""
    return list(CIFAR_CLASSES) if dataset.startswith("cifar10") and classes == 10 else [str(c) for c in range(classes)]


@dataclass
class PairAnalysis:
    """Per-seed numbers of one KD row, its no-KD control and its teacher (seed 0's teacher, or each seed's own)."""

    kd: Run
    control: Run
    teacher: Run
    temperature: float
    seeds: list[int]
    per_seed: dict[str, dict[str, list[float]]]  # arm -> measure -> one value per seed
    per_class: dict[str, torch.Tensor]  # arm -> (seeds, classes) accuracy %
    confusion: dict[str, torch.Tensor]  # arm -> row-normalised % (seeds pooled)
    reliability: dict[str, dict]  # arm -> metrics.calibration of the seeds pooled
    similarity: torch.Tensor  # the teacher's mean softened output per true class at T
    entropy: dict[str, list[float]]  # arm -> mean entropy at each of TEMPERATURES
    kl_curve: dict[str, list[float]]  # student arm -> KL(teacher || student) at each of TEMPERATURES

    @property
    def names(self) -> list[str]:
        return class_names(self.kd.record.dataset, self.kd.classes)


def _teacher_seed(kd: Run, seed: int) -> int:
    fixed = kd.record.recipe.get("teacher_seed")
    return seed if fixed is None else fixed


def analyze_pair(kd: Run, control: Run, teacher: Run) -> PairAnalysis:
    """Compare the KD student with its control and teacher on the seeds both students ran."""
    if not kd.record.recipe.get("distill"):
        raise AnalysisInputError(f"{kd.id} does not distil: nothing to analyse")
    for other in (control, teacher):
        if not torch.equal(other.labels, kd.labels):
            raise AnalysisInputError(f"{other.id} was evaluated on other test images than {kd.id}; rerun both")
    seeds = [s for s in kd.seeds if s in control.seeds]
    if not seeds:
        raise AnalysisInputError(f"{kd.id} (seeds {kd.seeds}) and {control.id} (seeds {control.seeds}) share no seed")
    temperature = float(kd.record.recipe["distill"]["temperature"])
    labels, classes = kd.labels, kd.classes
    logits = {arm: [] for arm in ARMS}
    for seed in seeds:
        logits["teacher"].append(teacher.of_seed(_teacher_seed(kd, seed)))
        logits["no KD"].append(control.of_seed(seed))
        logits["KD"].append(kd.of_seed(seed))
    per_seed = {arm: {"accuracy": [], "agreement": [], "kl": [], "ece": []} for arm in ARMS}
    for arm in ARMS:
        for t_logits, z in zip(logits["teacher"], logits[arm]):
            per_seed[arm]["accuracy"].append(100.0 * float((z.argmax(1) == labels).double().mean()))
            per_seed[arm]["agreement"].append(metrics.agreement(z, t_logits))
            per_seed[arm]["kl"].append(metrics.kl_to(t_logits, z, temperature))
            per_seed[arm]["ece"].append(metrics.calibration(z, labels)["ece"])
    pooled = {arm: torch.cat(logits[arm]) for arm in ARMS}
    pooled_labels = labels.repeat(len(seeds))
    confusion = {}
    for arm in ARMS:
        counts = metrics.confusion(pooled[arm], pooled_labels, classes).double()
        confusion[arm] = 100.0 * counts / counts.sum(1, keepdim=True).clamp(min=1)
    return PairAnalysis(
        kd=kd, control=control, teacher=teacher, temperature=temperature, seeds=seeds, per_seed=per_seed,
        per_class={arm: torch.stack([metrics.per_class_accuracy(z, labels, classes) for z in logits[arm]])
                   for arm in ARMS},
        confusion=confusion,
        reliability={arm: metrics.calibration(pooled[arm], pooled_labels) for arm in ARMS},
        similarity=metrics.class_similarity(logits["teacher"][0], labels, temperature, classes),
        entropy={arm: [metrics.mean_entropy(pooled[arm], t) for t in TEMPERATURES] for arm in ARMS},
        kl_curve={arm: [float(np.mean([metrics.kl_to(t_logits, z, t) for t_logits, z in
                                       zip(logits["teacher"], logits[arm])])) for t in TEMPERATURES]
                  for arm in ("no KD", "KD")},
    )


def pair_figure(analysis: PairAnalysis, path: Path) -> Path:
    """The pair's eight panels in one PNG."""
    names, n = analysis.names, len(analysis.seeds)
    fig, axes = plt.subplots(2, 4, figsize=(19, 10))
    errors = {arm: analysis.confusion[arm].clone().fill_diagonal_(float("nan")) for arm in ARMS}
    top = max(float(np.nanmax(e.numpy())) for e in errors.values())  # one colour scale for the three
    for ax, arm in zip(axes[0, :3], ARMS):
        # the errors carry the structure; the diagonal would drown them
        image = ax.imshow(errors[arm].numpy(), cmap="magma_r", vmin=0, vmax=top)
        accuracy = mean_std(analysis.per_seed[arm]["accuracy"])[0]
        who = analysis.teacher.id if arm == "teacher" else (analysis.kd.id if arm == "KD" else analysis.control.id)
        ax.set_title(f"{arm}: {who}\naccuracy {accuracy:.2f}%; errors, % of each true class", fontsize=9)
        _class_ticks(ax, names)
        ax.set_ylabel("true class")
        ax.set_xlabel("predicted class")
        fig.colorbar(image, ax=ax, fraction=0.046)
    ax = axes[0, 3]
    gain = analysis.per_class["KD"] - analysis.per_class["no KD"]
    mean = gain.mean(0).numpy()
    sd = gain.std(0).numpy() if n > 1 else np.zeros_like(mean)
    ax.barh(range(len(names)), mean, xerr=sd, color=["tab:green" if m >= 0 else "tab:red" for m in mean], capsize=2)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"per-class accuracy gain, KD - no KD (pt), mean +- sd over {n} seeds")
    ax.set_title("per-class gain from KD", fontsize=9)

    ax = axes[1, 0]
    shown = analysis.similarity.clone()
    shown.fill_diagonal_(float("nan"))
    image = ax.imshow(shown.numpy(), cmap="viridis")
    ax.set_title(f"teacher's mean softened output at T={analysis.temperature:g}\n(off-diagonal: the dark knowledge)",
                 fontsize=9)
    _class_ticks(ax, names)
    ax.set_ylabel("true class")
    ax.set_xlabel("softened probability of class")
    fig.colorbar(image, ax=ax, fraction=0.046)

    ax = axes[1, 1]
    for arm in ARMS:
        ax.plot(TEMPERATURES, analysis.entropy[arm], marker=".", label=arm, color=COLOURS[arm])
    ax.axhline(np.log(len(names)), color="grey", ls=":", label="uniform")
    ax.axvline(analysis.temperature, color="k", lw=0.8, ls="--", label=f"T of the KD row ({analysis.temperature:g})")
    ax.set_xscale("log")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("mean entropy of softmax(z/T), nats")
    ax.set_title("how much the softened outputs say", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[1, 2]
    for arm in ("no KD", "KD"):
        ax.plot(TEMPERATURES, analysis.kl_curve[arm], marker=".", label=arm, color=COLOURS[arm])
    ax.axvline(analysis.temperature, color="k", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("KL(teacher_T || student_T), nats")
    ax.set_title(f"student-teacher KL over T (mean of {n} seeds)", fontsize=9)
    ax.legend(fontsize=8)

    ax = axes[1, 3]
    ax.plot([0, 1], [0, 1], color="grey", ls=":")
    for arm in ARMS:
        rel = analysis.reliability[arm]
        ax.plot(rel["confidence"], rel["accuracy"], marker="o", ms=3, label=f"{arm}: ECE {rel['ece']:.2f}%",
                color=COLOURS[arm])
    ax.set_xlabel("confidence (max softmax at T=1)")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability (15 bins, seeds pooled)", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle(f"{analysis.kd.id}: {analysis.kd.record.tier} tier, seeds {analysis.seeds}", fontsize=11)
    fig.tight_layout(h_pad=3)
    return save_png(fig, path)


def _class_ticks(ax, names: list[str]) -> None:
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)


MEASURES = {"accuracy": "test accuracy %", "agreement": "top-1 agreement with the teacher %",
            "kl": "KL(teacher_T || student_T), nats", "ece": "expected calibration error %"}


def pair_rows(analysis: PairAnalysis) -> list[dict]:
    """One row per measure: teacher, no KD, KD (mean +- sd over seeds), their difference and Welch's p."""
    rows = []
    for key, label in MEASURES.items():
        cells = {}
        for arm in ARMS:
            values = analysis.per_seed[arm][key]
            mean, sd = mean_std(values)
            cells[arm] = "n/a" if arm == "teacher" and key in ("agreement", "kl") else (
                f"{mean:.3f}" if sd is None else f"{mean:.3f} ± {sd:.3f}")
        kd, no_kd = analysis.per_seed["KD"][key], analysis.per_seed["no KD"][key]
        p = welch(kd, no_kd)
        rows.append({"measure": label, **cells, "KD − no KD": f"{mean_std(kd)[0] - mean_std(no_kd)[0]:+.3f}",
                     "p (Welch)": "n/a" if p is None else f"{p:.2g}"})
    return rows


def pair_section(analysis: PairAnalysis, png: str) -> str:
    """Markdown for one pair: what was compared, the measures table, the largest per-class changes, the PNG."""
    gain = (analysis.per_class["KD"] - analysis.per_class["no KD"]).mean(0)
    order = torch.argsort(gain, descending=True).tolist()
    names = analysis.names
    top = ", ".join(f"{names[c]} {gain[c]:+.2f}" for c in order[:3])
    bottom = ", ".join(f"{names[c]} {gain[c]:+.2f}" for c in order[-3:][::-1])
    similar = analysis.similarity.clone()
    similar.fill_diagonal_(-1)
    flat = int(similar.argmax())
    pairs = f"{names[flat // len(names)]} → {names[flat % len(names)]} ({float(similar.max()):.3f})"
    return "\n".join([
        f"### {analysis.kd.id}",
        "",
        f"Student with KD `{analysis.kd.id}` against its no-KD control `{analysis.control.id}` and teacher "
        f"`{analysis.teacher.id}`, at the KD row's T = {analysis.temperature:g}; seeds {analysis.seeds}, each "
        f"distilled from teacher seed {_teacher_seed(analysis.kd, analysis.seeds[0])}"
        f"{'' if analysis.kd.record.recipe.get('teacher_seed') is not None else ' (its own seed)'}.",
        "",
        table(pair_rows(analysis)),
        "",
        f"Per-class gain from KD (pt, mean over seeds): largest {top}; smallest {bottom}. The teacher's "
        f"strongest off-diagonal soft target at T: {pairs}.",
        "",
        f"![{analysis.kd.id}]({png})",
        "",
    ])
