"""The distiller registry: built-in methods against hand-computed values, forward hooks that leave models
unchanged, and a toy distiller added by a plugin (one class, one row) running end to end through `pytest bench/`."""
import math
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from zoo.catalog.recipes import Distill, Recipe
from zoo.measure.fidelity import feature_metric, teacher_kl
from zoo.training.distill.attention import attention_loss, attention_map
from zoo.training.distill.base import Distiller, FeatureTaps
from zoo.training.distill.registry import create_distiller, list_distillers, register_distiller
from zoo.training.engine import seed_everything, train
from zoo.training.forward import TrainOptions
from zoo.training.losses import kd_loss, softened_kl
from zoo.training.registry import create_model

REPO = Path(__file__).resolve().parents[2]
CNN5_STAGES = (("features.3", "features.3"), ("features.7", "features.7"), ("features.11", "features.11"))


def test_registry_builds_by_name_and_names_the_choices():
    assert {"hinton", "attention"} <= set(list_distillers())
    with pytest.raises(ValueError, match="unknown distiller 'fitnet'; registered distillers: .*hinton"):
        create_distiller(Distill(alpha=0.5, temperature=2, method="fitnet"))

    class Twin(Distiller):
        name = "hinton"

    with pytest.raises(ValueError, match="registered twice"):
        register_distiller(Twin)


def test_hinton_is_the_studys_loss_exactly():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(8, 10, generator=g), torch.randn(8, 10, generator=g)
    labels = torch.arange(8) % 10
    settings = Distill(alpha=0.9, temperature=20, kl_reduction="elementwise", kl_scale=2.0)
    got = create_distiller(settings)(student, teacher, labels, {}, {})
    assert torch.equal(got, kd_loss(student, teacher, labels, 0.9, 20, "elementwise", 2.0))


def test_attention_by_hand():
    """Student map: channel means of squares (1, 2) -> (1, 2)/sqrt(5); teacher: (4, 0) -> (1, 0).
    Loss = mean((1/sqrt5 - 1)^2, (2/sqrt5)^2)."""
    student = torch.tensor([[[[1.0, 0.0]], [[1.0, 2.0]]]])  # (1, 2 channels, 1, 2)
    teacher = torch.tensor([[[[2.0, 0.0]]]])  # (1, 1 channel, 1, 2)
    assert torch.allclose(attention_map(student), torch.tensor([[1.0, 2.0]]) / math.sqrt(5))
    expected = ((1 - 1 / math.sqrt(5)) ** 2 + 4 / 5) / 2
    assert float(attention_loss(student, teacher)) == pytest.approx(expected)
    big = torch.ones(1, 3, 4, 4)  # a teacher map of another size is pooled to the student's
    assert float(attention_loss(torch.ones(1, 5, 2, 2), big)) == pytest.approx(0.0, abs=1e-12)
    settings = Distill(alpha=0.0, temperature=1, method="attention", options=(("beta", 1000.0), ("layers", CNN5_STAGES)))
    at = create_distiller(settings)
    assert at.student_features == ("features.3", "features.7", "features.11")
    logits, labels = torch.zeros(1, 2), torch.tensor([0])
    total = at(logits, logits, labels, {"features.3": student, "features.7": student, "features.11": student},
               {"features.3": teacher, "features.7": teacher, "features.11": teacher})
    assert float(total) == pytest.approx(math.log(2) + 500 * 3 * expected)


def test_feature_taps_take_named_outputs_and_leave_no_hook():
    model = create_model("cnn5")
    with FeatureTaps(model, ("features.3", "features.11")) as taps:
        model.eval()(torch.zeros(2, 3, 32, 32))
        assert taps.outputs["features.3"].shape == (2, 32, 16, 16) and taps.outputs["features.11"].shape == (2, 128, 4, 4)
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="no submodule \\['layer9'\\]; it has: features, features.0"):
        FeatureTaps(model, ("layer9",))


def test_attention_transfer_trains_and_unhooks(synthetic_cifar):
    data = synthetic_cifar(n_train=64, n_test=20)
    opts = TrainOptions(log=lambda line: None)
    seed_everything(0, opts.device)
    teacher, student = create_model("cnn5", dropout=0.0), create_model("cnn5", dropout=0.0)
    recipe = Recipe(epochs=1, batch_size=32, optimizer="adam", lr=1e-3, augment=True,
                    distill=Distill(alpha=0.5, temperature=4, method="attention",
                                    options=(("beta", 1000.0), ("layers", CNN5_STAGES))))
    report = train(student, recipe, data, 0, opts, teacher=teacher)
    assert math.isfinite(report.train_loss_last_epoch) and report.teacher_kl is not None
    assert all(not m._forward_hooks for m in [*student.modules(), *teacher.modules()])


PLUGIN = textwrap.dedent('''
    """A toy distiller (squared distance of the probabilities, plus cross-entropy) and one row using it, on `synth`."""
    import torch.nn.functional as F

    from zoo.training.data import idx_folder, register_dataset
    from zoo.training.distill.base import Distiller
    from zoo.training.distill.registry import register_distiller
    from zoo.catalog.pairs import PAIRS, Pair
    from zoo.catalog.recipes import Distill, ModelSpec, Recipe

    @register_dataset("synth", mean=(0.5,), std=(0.25,), files="Synth/raw/ (four idx files)")
    def synth(root, download, cache_dir):
        return idx_folder("synth", root, "Synth")

    @register_distiller
    class ProbabilityL2(Distiller):
        name = "toy-probability-l2"

        def label_loss(self, student_logits, labels):
            return F.cross_entropy(student_logits, labels)

        def transfer_loss(self, student_logits, teacher_logits, student_features, teacher_features):
            return F.mse_loss(student_logits.softmax(1), teacher_logits.softmax(1))

    RECIPE = Recipe(epochs=2, batch_size=32, optimizer="sgd", lr=0.05)
    PAIRS.append(Pair("synth-teacher", "synth", ModelSpec.of("mlp1200"), {"quick": RECIPE}))
    PAIRS.append(Pair("synth-student", "synth", ModelSpec.of("mlp800"), {"quick": RECIPE}))
    PAIRS.append(Pair("synth-student-toy", "synth", ModelSpec.of("mlp800"),
                      {"quick": RECIPE.replace(distill=Distill(alpha=1.0, temperature=1.0, method="toy-probability-l2"))},
                      teacher={"quick": "synth-teacher"}, control="synth-student"))
''')


def test_a_toy_distiller_is_one_class_and_one_row(tmp_path, bench_with_plugin):
    record = bench_with_plugin(tmp_path, PLUGIN, "--update-baselines")
    assert record.returncode == 0, record.stdout[-3000:]
    gate = bench_with_plugin(tmp_path, PLUGIN)
    assert gate.returncode == 0 and "PASS       3" in gate.stdout, gate.stdout[-3000:]
    from zoo.records.results import load_record

    stored = load_record(tmp_path / "baselines" / "quick" / "synth" / "cpu" / "synth-student-toy.json")
    assert stored.recipe["distill"]["method"] == "toy-probability-l2" and stored.metrics["teacher_kl"]


def fitnets_settings(hint_epochs: int = 1) -> Distill:
    return Distill(alpha=0.9, temperature=4, method="fitnets",
                   options=(("guided", "features.7"), ("hint", "features.7"), ("hint_epochs", hint_epochs)))


def test_fitnets_hint_loss_by_hand_and_only_below_the_guided_layer():
    fit = create_distiller(fitnets_settings())
    student, teacher = create_model("cnn5"), create_model("cnn5", dropout=0.0)
    fit.prepare(student, teacher, torch.zeros(2, 3, 32, 32))
    assert fit.regressor.in_channels == 64 and fit.regressor.out_channels == 64
    with torch.no_grad():  # an identity regressor: the loss is half the mean squared difference
        fit.regressor.weight.copy_(torch.eye(64).view(64, 64, 1, 1))
        fit.regressor.bias.zero_()
    a, b = torch.ones(1, 64, 8, 8), torch.zeros(1, 64, 8, 8)
    with torch.no_grad():
        assert float(fit.hint_loss({"features.7": a}, {"features.7": b})) == pytest.approx(0.5)
        assert float(fit.hint_loss({"features.7": a}, {"features.7": torch.ones(1, 64, 16, 16)})) == pytest.approx(0.0)
    with FeatureTaps(student, ("features.7",)) as mine, FeatureTaps(teacher, ("features.7",)) as theirs:
        x = torch.randn(4, 3, 32, 32)
        student.train()(x)
        with torch.no_grad():
            teacher.eval()(x)
        fit.hint_loss(mine.outputs, theirs.outputs).backward()
    assert student.features[0].weight.grad is not None and fit.regressor.weight.grad is not None
    assert all(p.grad is None for p in [*student.features[8].parameters(), *student.classifier.parameters()])


def test_fitnets_trains_in_two_stages_both_in_the_report(synthetic_cifar):
    data = synthetic_cifar(n_train=64, n_test=20)
    opts = TrainOptions(log=lambda line: None)
    seed_everything(0, opts.device)
    teacher, student = create_model("cnn5", dropout=0.0), create_model("cnn5", dropout=0.0)
    recipe = Recipe(epochs=2, batch_size=32, optimizer="adam", lr=1e-3, distill=fitnets_settings(hint_epochs=1))
    report = train(student, recipe, data, 0, opts, teacher=teacher)
    assert [e["stage"] for e in report.epochs] == ["hint", "train", "train"]
    assert report.train_loss_first_epoch == report.epochs[1]["loss"]
    assert all(not m._forward_hooks for m in [*student.modules(), *teacher.modules()])


def test_activation_metadata_by_hand():
    from zoo.training.distill.datafree import activation_metadata

    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2, bias=False), torch.nn.ReLU())
    with torch.no_grad():
        teacher[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    images = torch.tensor([[[[0, 255]]], [[[255, 255]]], [[[0, 0]]]], dtype=torch.uint8)  # (3, 1, 1, 2)
    labels = torch.tensor([0, 0, 1])
    norm = (torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))  # x = pixel / 255
    stats = activation_metadata(teacher, images, labels, ("1",), norm)
    # layer "1" (pre-ReLU): class 0 sees (0, -1) and (1, -1): mean (0.5, -1), sd (0.5, 0); class 1 sees (0, 0)
    assert torch.allclose(stats["1"][0], torch.tensor([[0.5, -1.0], [0.0, 0.0]]))
    assert torch.allclose(stats["1"][1], torch.tensor([[0.5, 0.0], [0.0, 0.0]]))
    assert torch.allclose(stats["logits"][0], torch.tensor([[0.5, 0.0], [0.0, 0.0]]))  # after the ReLU


def test_reconstruction_reaches_each_class_without_images():
    from zoo.training.distill.datafree import reconstruct

    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():  # logit c reads pixel c: every class's target lies inside the pixel range
        teacher[1].weight.copy_(torch.eye(3, 4))
        teacher[1].bias.zero_()
    metadata = {"logits": torch.stack([2 * torch.eye(3), torch.full((3, 3), 0.1)])}  # class c: logit c high
    norm = (torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.25))
    images, labels = reconstruct(teacher, metadata, (), per_class=5, steps=200, input_shape=(1, 2, 2), norm=norm,
                                 generator=torch.Generator().manual_seed(0))
    assert images.dtype == torch.uint8 and images.shape == (15, 1, 2, 2) and labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    x = (images.float() / 255 - 0.5) / 0.25
    assert (teacher(x).argmax(1) == labels).float().mean() >= 0.9
    assert all(p.requires_grad for p in teacher.parameters())  # the teacher is left as it was


def test_every_distiller_declares_a_gated_fidelity_metric_measured_from_what_it_transfers():
    from zoo.verdicts.gates import CHECKS, Spread

    gated = {c.metric for c in CHECKS if isinstance(c, Spread) and c.log and not c.higher_is_better}
    settings = {"hinton": Distill(alpha=0.9, temperature=4), "data-free": Distill(
        alpha=1.0, temperature=10, unlabeled=True, method="data-free", options=(("images_per_class", 1), ("steps", 1))),
        "attention": Distill(alpha=0.0, temperature=1, method="attention", options=(("layers", CNN5_STAGES),)),
        "fitnets": Distill(alpha=0.9, temperature=20, method="fitnets",
                           options=(("guided", "features.7"), ("hint", "features.7"), ("hint_epochs", 1)))}
    metrics = {name: create_distiller(s).fidelity_metric for name, s in settings.items()}
    assert metrics == {"hinton": "teacher_kl", "data-free": "teacher_kl", "attention": "attention_distance",
                       "fitnets": "hint_error"}
    assert set(metrics.values()) <= gated
    g = torch.Generator().manual_seed(0)
    student = {n: torch.randn(2, 4, 4, 4, generator=g) for n, _ in CNN5_STAGES}
    teacher = {n: torch.randn(2, 8, 8, 8, generator=g) for n, _ in CNN5_STAGES}
    # the measuring package's own formulas agree with the training losses when those are right
    at = create_distiller(settings["attention"])
    assert feature_metric("attention_distance", at.fidelity_inputs(student, teacher)) == pytest.approx(
        sum(float(attention_loss(student[s], teacher[t])) for s, t in CNN5_STAGES), rel=1e-5)
    fitnets = create_distiller(settings["fitnets"])
    fitnets.regressor = torch.nn.Conv2d(4, 8, 1)
    assert feature_metric("hint_error", fitnets.fidelity_inputs(student, teacher)) == pytest.approx(
        float(fitnets.hint_loss(student, teacher)), rel=1e-5)


def test_teacher_kl_is_measured_by_its_own_formula_not_by_the_training_loss():
    """On fixed logits the float64 textbook KL agrees with the training loss's softened KL; a training loss whose
    KL is reversed, or whose teacher is not softened, disagrees with it: the metric catches the loss's bug."""
    g = torch.Generator().manual_seed(1)
    student, teacher = torch.randn(64, 10, generator=g) * 8, torch.randn(64, 10, generator=g)  # peaked, flat
    measured = teacher_kl(student, teacher, 4.0)
    assert measured == pytest.approx(float(softened_kl(student, teacher, 4.0)), rel=1e-5)
    assert abs(float(softened_kl(teacher, student, 4.0)) - measured) > 0.05 * measured  # reversed direction
    unsoftened = float(F.kl_div(F.log_softmax(student / 4.0, 1), F.log_softmax(teacher, 1), reduction="batchmean",
                                log_target=True))
    assert abs(unsoftened - measured) > 0.05 * measured


def test_a_diverging_distiller_is_a_failed_row_naming_seed_and_epoch_not_a_traceback(tmp_path, bench_with_plugin):
    """A transfer term that turns the loss non-finite fails its row with one line (row, seed, epoch); the other
    rows of the session still run and pass."""
    diverging = PLUGIN.replace("return F.mse_loss(student_logits.softmax(1), teacher_logits.softmax(1))",
                               "return F.mse_loss(student_logits.softmax(1), teacher_logits.softmax(1)) * float('nan')")
    run = bench_with_plugin(tmp_path, diverging, "--update-baselines")
    assert run.returncode == 1, run.stdout[-3000:]
    assert "DIVERGED synth-student-toy: seed 0, epoch 1 (train): the training loss became nan" in run.stdout
    assert "1 failed, 2 passed" in run.stdout, run.stdout[-3000:]
    assert "TrainingDiverged" not in run.stdout and "FloatingPointError" not in run.stdout  # no traceback of it
