"""The dark-knowledge analysis: its measures against hand-computed values, and `kdbench analyze` end to end
on runs of a synthetic dataset (their test logits stored beside their records, checked by SHA-256)."""
import math
import textwrap
from pathlib import Path

import pytest
import torch

from zoo.cli import main
from zoo.reports.analysis import metrics
from zoo.reports.analysis.runs import AnalysisInputError, latest_runs

REPO = Path(__file__).resolve().parents[2]


def test_confusion_and_per_class_accuracy():
    labels = torch.tensor([0, 0, 1, 1, 2])
    logits = torch.tensor([[9.0, 0, 0], [0, 9, 0], [0, 9, 0], [0, 9, 0], [9, 0, 0]])
    assert metrics.confusion(logits, labels, 3).tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert metrics.per_class_accuracy(logits, labels, 3).tolist() == [50.0, 100.0, 0.0]


def test_class_similarity_entropy_agreement_and_kl():
    labels = torch.tensor([0, 0, 1])
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0], [math.log(3), 0.0]])  # softmax: (.5,.5), (.5,.5), (.75,.25)
    similarity = metrics.class_similarity(logits, labels, 1.0, 2)
    assert torch.allclose(similarity, torch.tensor([[0.5, 0.5], [0.75, 0.25]], dtype=torch.float64))
    assert metrics.mean_entropy(torch.zeros(4, 10), 3.0) == pytest.approx(math.log(10))
    assert metrics.mean_entropy(torch.tensor([[100.0, 0.0]]), 1.0) == pytest.approx(0.0, abs=1e-9)
    assert metrics.agreement(logits, torch.tensor([[1.0, 0], [0, 1.0], [1.0, 0]])) == pytest.approx(200 / 3)
    assert metrics.kl_to(logits, logits, 4.0) == pytest.approx(0.0, abs=1e-7)
    p, q = torch.tensor([0.75, 0.25]), torch.tensor([0.5, 0.5])
    kl = float((p * (p / q).log()).sum())
    assert metrics.kl_to(p.log().unsqueeze(0), q.log().unsqueeze(0), 1.0) == pytest.approx(kl, rel=1e-5)


def test_calibration_error_by_hand():
    """Two bins used: confidence 0.9 (2 images, 1 right) and 0.65 (2 images, both right).
    ECE = 2/4 * |0.5 - 0.9| + 2/4 * |1.0 - 0.65| = 0.375."""
    high, low = math.log(9), math.log(0.65 / 0.35)
    logits = torch.tensor([[high, 0.0], [high, 0.0], [low, 0.0], [low, 0.0]])
    labels = torch.tensor([0, 1, 0, 0])
    result = metrics.calibration(logits, labels, bins=10)
    assert result["ece"] == pytest.approx(37.5)
    assert result["counts"][9] == 2 and result["counts"][6] == 2 and sum(result["counts"]) == 4


PLUGIN = textwrap.dedent('''
    """Registers the synthetic dataset `synth` with a teacher, a student and the student distilled."""
    from zoo.training.data import idx_folder, register_dataset
    from zoo.catalog.pairs import PAIRS, Pair
    from zoo.catalog.recipes import Distill, ModelSpec, Recipe

    @register_dataset("synth", mean=(0.5,), std=(0.25,), files="Synth/raw/ (four idx files)")
    def synth(root, download, cache_dir):
        return idx_folder("synth", root, "Synth")

    STUDENT = Recipe(epochs=2, batch_size=32, optimizer="sgd", lr=0.05, seeds=2)
    PAIRS.append(Pair("synth-teacher", "synth", ModelSpec.of("mlp1200"), {"quick": STUDENT.replace(epochs=3)}))
    PAIRS.append(Pair("synth-student", "synth", ModelSpec.of("mlp800"), {"quick": STUDENT}))
    PAIRS.append(Pair("synth-student-kd", "synth", ModelSpec.of("mlp800"),
                      {"quick": STUDENT.replace(distill=Distill(alpha=0.7, temperature=4), teacher_seed=0)},
                      teacher={"quick": "synth-teacher"}, control="synth-student"))
''')


@pytest.fixture(scope="module")
def synth_results(tmp_path_factory, bench_with_plugin):
    """A results root from one `pytest bench/` session over the synthetic rows (no baselines: all NEW)."""
    tmp = tmp_path_factory.mktemp("analysis")
    run = bench_with_plugin(tmp, PLUGIN)
    assert run.returncode == 0, run.stdout[-3000:]
    return tmp


def test_analyze_reports_a_pair_from_stored_logits(synth_results):
    out = synth_results / "report"
    assert main(["analyze", "--results", str(synth_results / "results"), "--out", str(out)]) == 0
    text = (out / "analysis-quick-cpu.md").read_text()
    assert "### synth-student-kd" in text and "top-1 agreement with the teacher" in text
    assert (out / "synth-student-kd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs, _ = latest_runs(synth_results / "results", "quick")
    assert runs["synth-student-kd"].logits.shape == (2, 100, 10) and runs["synth-teacher"].seeds == [0, 1]


def test_damaged_or_missing_logits_are_named(synth_results, tmp_path):
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(synth_results / "results", copy)
    logits = next(copy.rglob("synth-student-kd.logits.npz"))
    logits.write_bytes(logits.read_bytes()[:-10])
    from zoo.reports.analysis.report import write_analysis

    with pytest.raises(AnalysisInputError, match="synth-student-kd.logits.npz does not match the SHA-256"):
        write_analysis(copy, tmp_path / "out", pair_ids=["synth-student-kd"])
    logits.unlink()
    assert main(["analyze", "--results", str(copy), "--out", str(tmp_path / "out"), "--pair", "synth-student-kd"]) == 2
