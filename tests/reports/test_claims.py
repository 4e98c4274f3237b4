"""The claims table: each verdict from records built to show it."""
from pathlib import Path

from zoo.records.results import load_record
from zoo.reports.claims import claims, render_claims

BASE = load_record(Path(__file__).resolve().parents[2] / "baselines" / "quick" / "mnist" / "cpu" / "mnist-mlp800-lr0.01.json")


def row(row_id, acc, teacher=None, control=None, unlabeled=False, train_acc=None, study_best=None, dataset="mnist"):
    runs = [{"test_accuracy": a, "epochs": [{"train_accuracy": train_acc if train_acc is not None else a + 1}]}
            for a in acc]
    recipe = BASE.recipe | {"distill": {"unlabeled": unlabeled} if teacher else None}
    return BASE.replace(id=row_id, dataset=dataset, teacher=teacher, control=control, recipe=recipe,
                        metrics={"test_accuracy": list(acc)}, runs=runs,
                        study={"best": study_best} if study_best is not None else None)


def verdicts(records):
    return {(c.claim.split(":")[0].split(" (")[0], c.rows.split(" vs ")[0]): c for c in claims(records)}


def test_kd_claim_verdicts():
    control = row("base", (90.0, 90.1, 89.9), study_best=90.0)
    records = [control,
               row("kd-better", (91.0, 91.1, 90.9), teacher="t", control="base", study_best=90.5),
               row("kd-worse", (89.0, 89.1, 88.9), teacher="t", control="base"),
               row("kd-same", (90.05, 89.9, 90.1), teacher="t", control="base", study_best=90.2)]
    v = verdicts(records)
    assert v[("KD beats no-KD", "kd-better")].verdict == "reproduced"
    assert v[("KD beats no-KD", "kd-worse")].verdict == "contradicted"
    same = v[("KD beats no-KD", "kd-same")]
    assert same.verdict == "not detectable at this n" and "detecting 0.20 pt needs" in same.detail  # the study's own gain


def test_unlabeled_claim_uses_a_margin():
    control = row("base", (90.0, 90.1, 89.9))
    close = row("unl", (89.8, 89.9, 89.7), teacher="t", control="base", unlabeled=True)
    far = row("unl-far", (87.0, 87.1, 86.9), teacher="t", control="base", unlabeled=True)
    v = verdicts([control, close, far])
    assert v[("unlabeled KD approaches labeled", "unl")].verdict == "reproduced"
    assert v[("unlabeled KD approaches labeled", "unl-far")].verdict == "contradicted"


def test_teacher_ranking_needs_its_rows_and_gap_claim_reads_the_train_accuracy():
    control = row("base", (90.0, 90.1, 89.9), train_acc=99.0)
    kd = row("kd", (90.0, 90.1, 89.9), teacher="t", control="base", train_acc=95.0)
    v = verdicts([control, kd])
    assert v[("teacher ranking for ResNet-18", "cifar10-resnet18-kd-wrn28_10, cifar10-resnet18-kd-preresnet110, "
              "cifar10-resnet18-kd-densenet100, cifar10-resnet18-kd-resnext29_8x64d")].verdict == "needs rows not recorded"
    gap = v[("dark knowledge regularises", "kd")]
    assert gap.verdict == "reproduced" and abs(gap.effect - 4.0) < 1e-9
    assert "needs rows not recorded" in render_claims("full", "cpu", [control, kd])
