"""The study's rows as one declarative table: adding a pair is adding one entry.

A row trains one `student` on `dataset`, optionally distilling from the model trained by another row
(`teacher`, a row id per tier). Recipes exist per tier; a row without a recipe for a tier is not part
of it. `control` names the same student's row without distillation, for the leaderboard's delta.

Two kinds of rows, never mixed:
  faithful   `study` names the record (zoo.catalog.study) whose recipe the row's full tier runs exactly: loss
             scaling, dropout, augmentation, epochs, subset, alpha and T. Its figures (best and last
             epoch, and how the study selected them) are shown beside the full tier, never gated on.
  corrected  `correction` says what kdbench changes against the study (per-sample KL, an
             augmentation-controlled baseline); such a row has no study figure beside it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from zoo.catalog.recipes import Distill, ModelSpec, Recipe
from zoo.catalog.study import StudyRef
from zoo.errors import KdbenchInputError


@dataclass(frozen=True)
class Pair:
    id: str
    dataset: str
    student: ModelSpec
    recipes: dict[str, Recipe]
    teacher: dict[str, str] = field(default_factory=dict)  # tier -> teacher row id
    study: StudyRef | None = None
    correction: str = ""
    control: str | None = None
    note: str = ""
    markers: tuple[str, ...] = ()
    scheme: str = ""  # the dark-knowledge scheme the row belongs to (SCHEMES), read by zoo.reports.analysis
    plain_kd: str | None = None  # a distiller row's Hinton-KD row (same student, recipe and seeds): its reference

    @property
    def is_teacher_row(self) -> bool:
        return any(self.id in p.teacher.values() for p in PAIRS)


# ---------------------------------------------------------------------------------------------- MNIST
# Study scripts: teacher SGD 0.01, momentum 0.9, wd 5e-4, 50 epochs, batch 128; students (student,
# distill and unlabeled scripts) `optim.SGD(params, lr, momentum=0.9)`, no weight decay, 10 epochs at
# lr 0.01 or 0.1; KD T=20, alpha=0.7; unlabeled KD T=10, soft term only. Both KD scripts use
# nn.KLDivLoss()'s element-wise mean (the per-sample KL / 10) times T^2; distill_mnist.py doubles it,
# distill_mnist_unlabeled.py does not: the faithful rows do the same.
# Quick tier: teacher 3 epochs on all data; students see a 10% stratified subset for 5 epochs, the
# last at lr x 0.1, so that the last epoch is stable (seed sd 0.35 pt at a constant lr, 0.03-0.11 so;
# measured, 6-8 seeds); 5 seeds, every one distilled from teacher seed 0 (one teacher to train).
_MNIST_TEACHER = Recipe(epochs=50, batch_size=128, optimizer="sgd", lr=0.01, weight_decay=5e-4, schedule_name="study")
_MNIST_STUDENT = _MNIST_TEACHER.replace(epochs=10, weight_decay=0.0)
_MNIST_QUICK_TEACHER = _MNIST_TEACHER.replace(epochs=3, schedule_name="quick")
_MNIST_QUICK_STUDENT = _MNIST_STUDENT.replace(epochs=5, train_subset=0.1, schedule="step", milestones=(4,), seeds=5,
                                              baseline_seeds=5, teacher_seed=0, schedule_name="quick")
_MNIST_KD = Distill(alpha=0.7, temperature=20, kl_reduction="elementwise", kl_scale=2.0)
_MNIST_UNLABELED = Distill(alpha=1.0, temperature=10, kl_reduction="elementwise", unlabeled=True)
_PER_SAMPLE = "per-sample KL (batchmean) instead of the study's element-wise mean (the KL / 10)"


def _mnist_student(lr: float, distill: Distill | None) -> dict[str, Recipe]:
    return {
        "quick": _MNIST_QUICK_STUDENT.replace(lr=lr, distill=distill),
        "full": _MNIST_STUDENT.replace(lr=lr, distill=distill),
    }


def _poster(script: str, figure: float) -> StudyRef:
    return StudyRef(f"mnist/{script}", poster=figure)


_MNIST_T = {"quick": "mnist-mlp1200-teacher", "full": "mnist-mlp1200-teacher"}
_MLP800 = ModelSpec.of("mlp800")

MNIST_PAIRS = [
    Pair("mnist-mlp1200-teacher", "mnist", ModelSpec.of("mlp1200"),
         {"quick": _MNIST_QUICK_TEACHER, "full": _MNIST_TEACHER}, study=_poster("teacher_mnist.py", 98.30),
         note="teacher; dropout 0.8 after each hidden layer"),
    Pair("mnist-mlp800-lr0.01", "mnist", _MLP800, _mnist_student(0.01, None),
         study=_poster("student_mnist.py lr 0.01", 98.10)),
    Pair("mnist-mlp800-lr0.1", "mnist", _MLP800, _mnist_student(0.1, None),
         study=_poster("student_mnist.py lr 0.1", 97.75)),
    Pair("mnist-mlp800-kd-lr0.01", "mnist", _MLP800, _mnist_student(0.01, _MNIST_KD), teacher=_MNIST_T,
         study=_poster("distill_mnist.py lr 0.01", 98.18), control="mnist-mlp800-lr0.01"),
    Pair("mnist-mlp800-kd-lr0.1", "mnist", _MLP800, _mnist_student(0.1, _MNIST_KD), teacher=_MNIST_T,
         study=_poster("distill_mnist.py lr 0.1", 98.50), control="mnist-mlp800-lr0.1"),
    Pair("mnist-mlp800-kd-unlabeled-lr0.01", "mnist", _MLP800, _mnist_student(0.01, _MNIST_UNLABELED),
         teacher=_MNIST_T, study=_poster("distill_mnist_unlabeled.py lr 0.01", 97.69), control="mnist-mlp800-lr0.01",
         note="transfer set is the training images without their labels (alpha=1)"),
    Pair("mnist-mlp800-kd-unlabeled-lr0.1", "mnist", _MLP800, _mnist_student(0.1, _MNIST_UNLABELED),
         teacher=_MNIST_T, study=_poster("distill_mnist_unlabeled.py lr 0.1", 98.16), control="mnist-mlp800-lr0.1",
         note="transfer set is the training images without their labels (alpha=1)"),
    Pair("mnist-mlp800-kd-lr0.01-batchmean", "mnist", _MLP800,
         _mnist_student(0.01, Distill(alpha=0.7, temperature=20)), teacher=_MNIST_T, correction=_PER_SAMPLE,
         control="mnist-mlp800-lr0.01", note="at lr 0.1 the per-sample KL diverges in the first epoch (measured)"),
    Pair("mnist-mlp800-kd-unlabeled-lr0.01-batchmean", "mnist", _MLP800,
         _mnist_student(0.01, Distill(alpha=1.0, temperature=10, unlabeled=True)), teacher=_MNIST_T,
         correction=_PER_SAMPLE, control="mnist-mlp800-lr0.01"),
]

# -------------------------------------------------------------------------------------- CIFAR-10 CNN
# Study recipes (records.csv): Adam 1e-3, batch 128, 30 epochs, no lr schedule; the KD loss is
# nn.KLDivLoss()'s element-wise mean (KL / 10) x alpha T^2. Default KD: alpha 0.9, T 20 from ResNet-18.
# Its dropout-0.5 baseline (base_cnn) trained without augmentation, all else with it. The 5% rows
# (base_cnn_subset, cnn_distill_subset) train 50 epochs with dropout 0.0; default KD alpha 0.95, T 2.
# Grid-cell rows run the cell the poster printed (the best of its grid, picked on the test set).
# Quick tier: students see 10% of the training set (5% rows: 5%, twice the epochs) with the lr
# decayed to 0 by a cosine (seed sd 0.93 pt against 1.8-2.8 at a constant lr; measured, 6 seeds),
# 3 seeds, every one distilled from teacher seed 0: the same CNN trained on all 50k images (CPU
# minutes), stronger because it sees 10x more data. Full tier: the study's recipes, the teacher is
# ResNet-18 trained by its own row (a GPU job).
_CNN = Recipe(epochs=30, batch_size=128, optimizer="adam", lr=1e-3, augment=True, schedule_name="study")
_CNN_QUICK = _CNN.replace(epochs=4, train_subset=0.1, schedule="cosine", teacher_seed=0, schedule_name="quick")
_CNN_5PCT = _CNN.replace(epochs=50, train_subset=0.05)
_CNN_5PCT_QUICK = _CNN_5PCT.replace(epochs=8, schedule="cosine", teacher_seed=0, schedule_name="quick")
_CNN_T = {"quick": "cifar10-cnn5-teacher", "full": "cifar10-resnet18"}


def _kd(alpha: float, temperature: float, kl_reduction: str = "elementwise") -> Distill:
    return Distill(alpha=alpha, temperature=temperature, kl_reduction=kl_reduction)


def _cnn(recipe: Recipe, quick: Recipe | None, **changes) -> dict[str, Recipe]:
    recipes = {"full": recipe.replace(**changes)}
    if quick is not None:
        recipes["quick"] = quick.replace(**changes)
    return recipes


def _cnn_row(row_id: str, dropout: float, recipes: dict[str, Recipe], markers: tuple[str, ...] = (), **kwargs) -> Pair:
    kd = any(r.distill for r in recipes.values())
    return Pair(row_id, "cifar10", ModelSpec.of("cnn5", dropout=dropout), recipes,
                teacher={t: _CNN_T[t] for t in recipes} if kd else {},
                markers=(("resnet",) if kd else ()) + markers, **kwargs)


def _grid_cell(base: str, dropout: float, recipe: Recipe, alpha: float, temperature: float, grid: str,
               control: str) -> Pair:
    cell = f"{grid}/alpha_{alpha:g}_Temp_{temperature:g}"
    return _cnn_row(f"{base}-a{alpha:g}-t{temperature:g}", dropout, _cnn(recipe, None, distill=_kd(alpha, temperature)),
                    study=StudyRef(f"experiments/{cell}", grid_cell=True), control=control)


CNN_PAIRS = [
    Pair("cifar10-cnn5-teacher", "cifar10", ModelSpec.of("cnn5", dropout=0.0),
         {"quick": _CNN.replace(epochs=4, seeds=1, schedule_name="quick")},
         note="quick-tier CNN teacher: the student architecture trained on all 50k images"),
    _cnn_row("cifar10-cnn5-d0.5-noaug", 0.5, _cnn(_CNN, _CNN_QUICK, augment=False),
             study=StudyRef("experiments/base_cnn"), note="the study's dropout baseline had no augmentation"),
    _cnn_row("cifar10-cnn5-d0.5", 0.5, _cnn(_CNN, _CNN_QUICK),
             correction="augmentation-controlled baseline: augmented like the KD rows"),
    _cnn_row("cifar10-cnn5-d0", 0.0, _cnn(_CNN, _CNN_QUICK), study=StudyRef("experiments/base_cnn/nodropout")),
    _cnn_row("cifar10-cnn5-d0.5-kd", 0.5, _cnn(_CNN, _CNN_QUICK, distill=_kd(0.9, 20)),
             study=StudyRef("experiments/cnn_distill"), control="cifar10-cnn5-d0.5",
             note="the study compared it with its unaugmented baseline (cifar10-cnn5-d0.5-noaug); "
                  "its Δ here is against the control augmented like it"),
    _cnn_row("cifar10-cnn5-d0-kd", 0.0, _cnn(_CNN, _CNN_QUICK, distill=_kd(0.9, 20)),
             study=StudyRef("experiments/cnn_distill/nodropout"), control="cifar10-cnn5-d0"),
    _cnn_row("cifar10-cnn5-d0.5-kd-batchmean", 0.5, _cnn(_CNN, _CNN_QUICK, distill=_kd(0.9, 20, "batchmean")),
             correction=f"{_PER_SAMPLE}, against the augmentation-controlled baseline",
             control="cifar10-cnn5-d0.5"),
    _grid_cell("cifar10-cnn5-d0.5-kd", 0.5, _CNN, 0.95, 2, "cnn_distill_alpha_temp", "cifar10-cnn5-d0.5"),
    _grid_cell("cifar10-cnn5-d0-kd", 0.0, _CNN, 0.5, 1.5, "cnn_distill_nodropout_alpha_temp", "cifar10-cnn5-d0"),
    _cnn_row("cifar10-cnn5-5pct", 0.0, _cnn(_CNN_5PCT, _CNN_5PCT_QUICK), scheme="partial-data",
             study=StudyRef("experiments/base_cnn_subset"), note="5% of the training set"),
    _cnn_row("cifar10-cnn5-5pct-kd", 0.0, _cnn(_CNN_5PCT, _CNN_5PCT_QUICK, distill=_kd(0.95, 2)), scheme="partial-data",
             study=StudyRef("experiments/cnn_distill_subset/alpha_0.95_Temp_2"), control="cifar10-cnn5-5pct",
             note="5% of the training set; the default recipe of cnn_distill_subset, whose metrics its grid cell holds"),
    _grid_cell("cifar10-cnn5-5pct-kd", 0.0, _CNN_5PCT, 0.01, 20, "cnn_distill_subset", "cifar10-cnn5-5pct"),
]

# ---------------------------------------------------------------------------- CIFAR-10 ResNet-18 section
# Study recipe: ResNet-18 SGD 0.1, momentum 0.9, wd 5e-4, batch 128, 200 epochs, lr x0.1 at epoch 150;
# KD alpha=0.95, T=6 for 170-200 epochs depending on the teacher. The study downloaded its teachers
# pre-trained (bearpaw/pytorch-classification); here each teacher is a row trained from that recipe.
# fast: one-cycle SGD (nesterov), batch 256, 40 epochs: a GPU schedule meant to land within about half
# a point of the study's. quick: CPU smoke runs that fit 50 training images (Adam, 4 epochs, no augmentation,
# the only setting whose loss fell reliably for all five nets at this size); they gate exact
# params/GMACs, a falling training loss and normalised throughput, not accuracy.
_DEEP = Recipe(epochs=200, batch_size=128, optimizer="sgd", lr=0.1, weight_decay=5e-4, schedule="step",
               milestones=(150,), augment=True, schedule_name="study")
_DEEP_FAST = _DEEP.replace(epochs=40, batch_size=256, lr=0.2, nesterov=True, schedule="onecycle",
                           milestones=(), warmup_epochs=2, schedule_name="one-cycle 40 ep")
_DEEP_QUICK = _DEEP.replace(epochs=4, batch_size=10, optimizer="adam", lr=1e-3, weight_decay=0.0,
                            schedule="constant", milestones=(), augment=False,
                            train_subset=0.001, test_subset=0.005, seeds=1, baseline_seeds=1, gate_accuracy=False,
                            schedule_name="smoke")
# The study tuned alpha/T/lr under nn.KLDivLoss()'s element-wise mean (KL / 10); the per-sample KL would
# weigh the soft term 10x more at SGD lr 0.1, the setting where the MNIST lr-0.1 row diverged.
_DEEP_KD = Distill(alpha=0.95, temperature=6, kl_reduction="elementwise")


def _deep(study: Recipe, distill: Distill | None = None) -> dict[str, Recipe]:
    cache = distill is not None  # 170-200 epochs x seeds of teacher passes cost more than its 162 views
    return {"quick": _DEEP_QUICK.replace(distill=distill), "fast": _DEEP_FAST.replace(distill=distill),
            "full": study.replace(distill=distill, teacher_view_cache=cache)}


def _teacher_row(name: str, study: Recipe, **kwargs) -> Pair:
    return Pair(f"cifar10-{name}", "cifar10", ModelSpec.of(name, **kwargs), _deep(study), markers=("resnet", "deep"),
                note="ResNet-18 teacher (bearpaw recipe)")


def _kd_row(teacher: str, epochs: int, record: str) -> Pair:
    return Pair(f"cifar10-resnet18-kd-{teacher}", "cifar10", ModelSpec.of("resnet18"),
                _deep(_DEEP.replace(epochs=epochs), _DEEP_KD), study=StudyRef(f"experiments/resnet18_distill/{record}"),
                control="cifar10-resnet18",
                teacher=dict.fromkeys(("quick", "fast", "full"), f"cifar10-{teacher}"), markers=("resnet", "deep"))


DEEP_PAIRS = [
    Pair("cifar10-resnet18", "cifar10", ModelSpec.of("resnet18"), _deep(_DEEP), study=StudyRef("experiments/base_resnet18"),
         markers=("resnet", "deep"), note="student of the ResNet-18 section; full-tier teacher of the CNN"),
    _teacher_row("wrn28_10", _DEEP.replace(milestones=(60, 120, 160), gamma=0.2)),
    _teacher_row("preresnet110", _DEEP.replace(epochs=164, milestones=(81, 122), weight_decay=1e-4)),
    _teacher_row("densenet100", _DEEP.replace(epochs=300, batch_size=64, milestones=(150, 225), weight_decay=1e-4)),
    _teacher_row("resnext29_8x64d", _DEEP.replace(epochs=300, milestones=(150, 225))),
    _kd_row("wrn28_10", 170, "wrn_teacher"),
    _kd_row("preresnet110", 170, "preresnet_teacher"),
    _kd_row("densenet100", 200, "densenet_teacher"),
    _kd_row("resnext29_8x64d", 175, "resnext_teacher"),
]

# ------------------------------------------------------------------------------- dark-knowledge schemes
# Rows that exist for zoo.reports.analysis's schemes. Those marked `sweep` run only with --sweeps (about 25 CPU
# minutes for the quick tier), so the default quick tier keeps its budget; they are gated like any row.
#   omit-class    Hinton et al. (2015): the MNIST transfer set lacks the digit 3. The student's bias for
#                 3 is then corrected from the teacher's mean softened output on the transfer set (zoo.training.transfer_sets).
#   partial-data  the 5% rows (alpha 0.95, T 2) at 1, 5, 10, 25 and 100% of the training set, +- KD. quick:
#                 the lr decays by a cosine over about 20k images at every fraction (at least one epoch), as
#                 the 5% and 10% quick rows do; full: the study's 5% recipe (50 epochs) at every fraction.
#   alpha-temp    the study's 5 x 9 alpha x T grid of the 5% rows (cnn_distill_subset), with 10% of the
#                 training set held out for validation, so a cell can be picked without the test set; the
#                 quick tier runs a 3 x 3 subgrid. The no-KD control holds out the same split.
SCHEMES = ("omit-class", "partial-data", "alpha-temp")
OMITTED_DIGIT = 3
PARTIAL_DATA_FRACTIONS = (0.01, 0.05, 0.1, 0.25, 1.0)
STUDY_SUBSET_GRID = ((0.01, 0.1, 0.5, 0.95, 0.999), (1, 2, 3, 4.5, 6, 8, 10, 20, 40))
"""The alpha and T values of the study's cnn_distill_subset grid (tests/catalog/test_pairs_table.py checks records.csv)."""
QUICK_GRID = ((0.01, 0.5, 0.95), (2, 6, 20))
VAL_FRACTION = 0.1
_SWEEP = ("sweep",)


def _omit_row(row_id: str, distill: Distill, note: str, correction: str = "") -> Pair:
    return Pair(row_id, "mnist", _MLP800, {t: r.replace(omit_class=OMITTED_DIGIT) for t, r in
                                           _mnist_student(0.01, distill).items()},
                teacher=_MNIST_T, control="mnist-mlp800-lr0.01", markers=_SWEEP, scheme="omit-class", note=note,
                correction=correction)


def _partial_rows(fraction: float) -> list[Pair]:
    quick = _CNN_QUICK.replace(train_subset=fraction, epochs=max(1, round(0.4 / fraction)))
    recipes = _cnn(_CNN_5PCT.replace(train_subset=fraction), quick)
    base = f"cifar10-cnn5-data{fraction * 100:g}pct"
    return [_cnn_row(base, 0.0, recipes, markers=_SWEEP, scheme="partial-data"),
            _cnn_row(f"{base}-kd", 0.0, {t: r.replace(distill=_kd(0.95, 2)) for t, r in recipes.items()},
                     markers=_SWEEP, scheme="partial-data", control=base)]


def _alpha_temp_rows() -> list[Pair]:
    full, quick = (r.replace(val_fraction=VAL_FRACTION) for r in (_CNN_5PCT, _CNN_5PCT_QUICK))
    control = "cifar10-cnn5-5pct-val"
    rows = [_cnn_row(control, 0.0, {"full": full, "quick": quick}, markers=_SWEEP, scheme="alpha-temp")]
    for alpha in STUDY_SUBSET_GRID[0]:
        for temperature in STUDY_SUBSET_GRID[1]:
            recipes = {"full": full.replace(distill=_kd(alpha, temperature))}
            if alpha in QUICK_GRID[0] and temperature in QUICK_GRID[1]:
                recipes["quick"] = quick.replace(distill=_kd(alpha, temperature))
            rows.append(_cnn_row(f"{control}-kd-a{alpha:g}-t{temperature:g}", 0.0, recipes, markers=_SWEEP,
                                 scheme="alpha-temp", control=control))
    return rows


SCHEME_PAIRS = [
    _omit_row("mnist-mlp800-kd-omit3-lr0.01", _MNIST_KD, "transfer set without the digit 3; the study's KD loss"),
    _omit_row("mnist-mlp800-kd-omit3-lr0.01-batchmean", Distill(alpha=0.7, temperature=20),
              "transfer set without the digit 3; Hinton et al.'s scaling", correction=_PER_SAMPLE),
    *[row for f in PARTIAL_DATA_FRACTIONS if f != 0.05 for row in _partial_rows(f)],
    *_alpha_temp_rows(),
]

# ------------------------------------------------------------------------------------ other distillers
# Methods other than Hinton KD (zoo.training.distill), each a row beside plain KD on the same student, recipe and
# seeds. Marker `distillers`: they run only with --distillers, so the default quick tier keeps its budget.
# Attention transfer maps the CNN's three stages (16x16, 8x8, 4x4) to the teacher's stages of the same
# resolution: the quick CNN teacher's own, ResNet-18's last three.
_CNN5_STAGES = ("features.3", "features.7", "features.11")


def _attention(teacher_stages: tuple[str, ...]) -> Distill:
    return Distill(alpha=0.0, temperature=1.0, method="attention",
                   options=(("beta", 1000.0), ("layers", tuple(zip(_CNN5_STAGES, teacher_stages)))))


def _fitnets(hint: str, hint_epochs: int) -> Distill:
    """Hints from the teacher's `hint` layer to the CNN's second stage, then the CNN KD rows' KD (alpha 0.9, T 20)."""
    return replace(_kd(0.9, 20), method="fitnets",
                   options=(("guided", "features.7"), ("hint", hint), ("hint_epochs", hint_epochs)))


def _datafree(layers: tuple[str, ...]) -> Distill:
    """Lopes et al.'s data-free KD: 300 reconstructions per class, soft targets only (per-sample KL, T 10)."""
    return Distill(alpha=1.0, temperature=10, unlabeled=True, method="data-free",
                   options=(("images_per_class", 300), ("layers", layers), ("steps", 60)))


def _datafree_row(variant: str, layers: tuple[str, ...]) -> Pair:
    recipes = {t: r.replace(distill=_datafree(layers), seeds=3, baseline_seeds=3)
               for t, r in _mnist_student(0.01, None).items()}
    return Pair(f"mnist-mlp800-datafree-{variant}-lr0.01", "mnist", _MLP800, recipes, teacher=_MNIST_T,
                control="mnist-mlp800-lr0.01", plain_kd="mnist-mlp800-kd-unlabeled-lr0.01-batchmean",
                markers=("distillers",), correction="not in the study: data-free KD with the per-sample KL",
                note=f"transfer set reconstructed from the teacher's {variant} activation statistics (Lopes et al. 2017)")


def _deep_distiller_row(method: str, distill: Distill, note: str) -> Pair:
    """ResNet-18 from ResNeXt-29 (the poster's analysed pair) by another method: full tier, a GPU job."""
    return Pair(f"cifar10-resnet18-{method}-resnext29_8x64d", "cifar10", ModelSpec.of("resnet18"),
                {"full": _DEEP.replace(epochs=175, distill=distill)}, teacher={"full": "cifar10-resnext29_8x64d"},
                control="cifar10-resnet18", plain_kd="cifar10-resnet18-kd-resnext29_8x64d",
                markers=("resnet", "deep", "distillers"), note=note)


_RESNET18_STAGES = ("stages.0", "stages.1", "stages.2")  # 32x32, 16x16, 8x8, as ResNeXt-29's three stages
_FIVE = {"seeds": 5, "baseline_seeds": 5}
"""The quick feature-distiller rows: their fidelity metric (attention distance, hint error) is theirs alone, so
its seed spread pools over one row; 5 seeds give that t-test 4 degrees of freedom instead of 2."""

DISTILLER_PAIRS = [
    _datafree_row("top", ()),
    _datafree_row("all", ("net.2", "net.5")),  # the teacher's two hidden ReLU layers
    _cnn_row("cifar10-cnn5-d0-at", 0.0, {"quick": _CNN_QUICK.replace(distill=_attention(_CNN5_STAGES), **_FIVE),
                                         "full": _CNN.replace(distill=_attention(("stages.1", "stages.2", "stages.3")))},
             markers=("distillers",), control="cifar10-cnn5-d0", plain_kd="cifar10-cnn5-d0-kd",
             note="attention transfer (beta 1000) with cross-entropy and no soft targets; plain KD: cifar10-cnn5-d0-kd"),
    _cnn_row("cifar10-cnn5-d0-fitnets", 0.0, {"quick": _CNN_QUICK.replace(distill=_fitnets("features.7", 2), **_FIVE),
                                              "full": _CNN.replace(distill=_fitnets("stages.2", 10))},
             markers=("distillers",), control="cifar10-cnn5-d0", plain_kd="cifar10-cnn5-d0-kd",
             note="FitNets: hint stage (2 / 10 epochs) on the CNN's 8x8 stage, then cifar10-cnn5-d0-kd's KD"),
    _deep_distiller_row("at", Distill(alpha=0.0, temperature=1.0, method="attention", options=(
        ("beta", 1000.0), ("layers", tuple(zip(_RESNET18_STAGES, ("stages.0", "stages.1", "stages.2")))))),
        "attention transfer (beta 1000) on the three stages of equal resolution, with cross-entropy"),
    _deep_distiller_row("fitnets", replace(_DEEP_KD, method="fitnets", options=(
        ("guided", "stages.1"), ("hint", "stages.1"), ("hint_epochs", 20))),
        "FitNets: 20 hint epochs on the 16x16 stage, then the KD row's KD (alpha 0.95, T 6)"),
]

PAIRS: list[Pair] = MNIST_PAIRS + CNN_PAIRS + DEEP_PAIRS + SCHEME_PAIRS + DISTILLER_PAIRS
OPT_IN_MARKERS = {"sweep": "--sweeps", "distillers": "--distillers"}
"""Markers of rows that run only when their option is given (each too long for the default budget)."""


class UnknownPairError(KdbenchInputError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_pair(pair_id: str) -> Pair:
    """The row `pair_id`; an unknown id raises an error listing every valid one."""
    for pair in PAIRS:
        if pair.id == pair_id:
            return pair
    raise UnknownPairError(f"unknown pair {pair_id!r}; known pairs: {', '.join(p.id for p in PAIRS)}")


def register_rows(*pairs: Pair) -> None:
    """Add rows to the catalogue (from a project's or a package's row module: zoo.catalog.row_sources). The whole
    table is checked again, so a duplicate id, a missing teacher or control is an error naming the row."""
    PAIRS.extend(pairs)
    try:
        _check_table()
    except (ValueError, UnknownPairError):
        del PAIRS[-len(pairs):]
        raise


def control_of(record) -> str | None:
    """The no-KD control a record is compared with: the catalogue's, for a row it holds (so that a corrected
    control applies to records made before the correction), else the one the record names."""
    try:
        return get_pair(record.id).control
    except UnknownPairError:
        return record.control


def pairs_for(tier: str) -> list[Pair]:
    """Rows that have a recipe for `tier`, in table order."""
    return [p for p in PAIRS if tier in p.recipes]


def _check_table() -> None:
    """The table's own consistency; that its datasets and models are registered is tests/catalog/test_pairs_table.py's."""
    ids = [p.id for p in PAIRS]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"duplicate pair ids: {sorted(duplicates)}")
    for pair in PAIRS:
        for tier, recipe in pair.recipes.items():
            if recipe.distill and tier not in pair.teacher:
                raise ValueError(f"{pair.id}: tier {tier!r} distills but names no teacher row")
            if tier in pair.teacher and tier not in get_pair(pair.teacher[tier]).recipes:
                raise ValueError(f"{pair.id}: teacher row {pair.teacher[tier]!r} has no {tier!r} recipe")
        if pair.scheme and pair.scheme not in SCHEMES:
            raise ValueError(f"{pair.id}: unknown scheme {pair.scheme!r}; choose from {SCHEMES}")
        for tier, recipe in pair.recipes.items():
            control = get_pair(pair.control).recipes.get(tier) if pair.control else None
            if recipe.distill and control and (control.augment, control.train_subset) != (recipe.augment,
                                                                                           recipe.train_subset):
                raise ValueError(f"{pair.id}: control {pair.control!r} differs in augmentation or data in tier "
                                 f"{tier!r}: a KD delta is measured against the student trained alike")
        if pair.study and pair.correction:
            raise ValueError(f"{pair.id}: a corrected row stands beside no study figure; drop `study` or `correction`")


_check_table()
