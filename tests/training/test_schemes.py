"""Transfer-set schemes: the validation split, the omitted class and its bias correction, in the training loop."""
import math

import pytest
import torch

from zoo.catalog.recipes import Distill, Recipe
from zoo.training.data import stratified_subset
from zoo.training.engine import seed_everything, train
from zoo.training.forward import TrainOptions
from zoo.training.transfer_sets import SUBSET_SEED, bias_shift, split_training_set

LABELS = torch.arange(2000) % 10


def test_without_options_the_split_is_the_recipes_subset():
    train_idx, val_idx = split_training_set(LABELS, 0.05)
    assert torch.equal(train_idx, stratified_subset(LABELS, 0.05, SUBSET_SEED)) and len(val_idx) == 0


def test_the_validation_split_is_carved_from_training_data_and_disjoint():
    train_idx, val_idx = split_training_set(LABELS, 0.05, val_fraction=0.1)
    assert len(val_idx) == 200 and len(train_idx) == 100  # 5% of the whole set, drawn from what is left
    assert not set(train_idx.tolist()) & set(val_idx.tolist())
    assert torch.bincount(LABELS[val_idx]).tolist() == [20] * 10  # stratified
    assert torch.equal(split_training_set(LABELS, 0.05, val_fraction=0.1)[1], val_idx)  # fixed
    assert len(split_training_set(LABELS, 1.0, val_fraction=0.1)[0]) == 1800  # capped at what is left


def test_an_omitted_class_never_reaches_the_transfer_set():
    train_idx, _ = split_training_set(LABELS, 0.5, omit_class=3)
    assert 3 not in LABELS[train_idx].tolist() and len(train_idx) == 900
    with pytest.raises(ValueError, match="omit_class 11"):
        split_training_set(LABELS, 0.5, omit_class=11)
    with pytest.raises(ValueError, match="val_fraction"):
        split_training_set(LABELS, 0.5, val_fraction=1.0)
    with pytest.raises(ValueError, match="needs distill"):
        Recipe(epochs=1, batch_size=8, optimizer="sgd", lr=0.1, omit_class=3)


def test_bias_shift_matches_the_teachers_mean_softened_output():
    """Two classes, a student with zero logits: softmax(b/T)_1 = 1/(1+exp(-b/T)) = 0.25 gives b = -T ln 3."""
    student = torch.zeros(5, 2)
    teacher = torch.tensor([[0.0, math.log(1 / 3) * 2]] * 5)  # softmax(z/2)_1 = 0.25 on every image
    assert bias_shift(student, teacher, cls=1, temperature=2.0) == pytest.approx(-2 * math.log(3), abs=1e-7)
    far = torch.tensor([[0.0, -40.0]] * 5)  # the student says "never class 1": the shift must be large and positive
    assert bias_shift(far, torch.zeros(5, 2), cls=1, temperature=1.0) == pytest.approx(40.0, abs=1e-6)


def test_training_reports_validation_accuracy_and_the_corrected_omitted_class(synthetic_cifar):
    from zoo.training.registry import create_model

    data = synthetic_cifar(n_train=200, n_test=60)
    opts = TrainOptions(log=lambda line: None)
    seed_everything(0, opts.device)
    teacher = create_model("cnn5", dropout=0.0)
    student = create_model("cnn5", dropout=0.0)
    recipe = Recipe(epochs=1, batch_size=32, optimizer="adam", lr=1e-3, val_fraction=0.2, omit_class=3,
                    distill=Distill(alpha=0.9, temperature=4))
    report = train(student, recipe, data, 0, opts, teacher=teacher)
    assert report.val_accuracy is not None and 0 <= report.val_accuracy <= 100
    omission = report.omission
    assert omission["omitted_class"] == 3 and omission["class_test_images"] == 6
    corrected = report.test_logits.clone()
    corrected[:, 3] += omission["bias_shift"]
    test_y = data.test_y
    assert omission["test_accuracy_corrected"] == pytest.approx(100 * float((corrected.argmax(1) == test_y).double().mean()))
    assert report.test_logits.shape == (60, 10) and "test_logits" not in report.as_record()
