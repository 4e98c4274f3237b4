"""The training loop's pieces: schedules, and teacher outputs aligned with each augmented sample."""
import pytest
import torch

from zoo.catalog.recipes import Recipe
from zoo.training.data import CROP_VIEWS, crop_flip, normalize
from zoo.training.engine import lr_factor
from zoo.training.forward import TrainOptions, predict

BASE = Recipe(epochs=10, batch_size=8, optimizer="sgd", lr=0.1)


def test_schedules():
    step = BASE.replace(schedule="step", milestones=(5, 8), gamma=0.1)
    assert [lr_factor(step, e) for e in (0, 4.9, 5, 8.5)] == pytest.approx([1, 1, 0.1, 0.01])
    cosine = BASE.replace(schedule="cosine")
    assert lr_factor(cosine, 0) == 1 and lr_factor(cosine, 5) == pytest.approx(0.5) and lr_factor(cosine, 10) == pytest.approx(0)
    one = BASE.replace(schedule="onecycle", warmup_epochs=2)
    assert [lr_factor(one, e) for e in (0, 1, 2, 6, 10)] == pytest.approx([0, 0.5, 1, 0.5, 0])
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(BASE.replace(schedule="linear"), 1)


def test_teacher_view_table_is_aligned_with_augmented_batches():
    """Looking up (sample, view) in the cached table equals running the teacher on that augmented image."""
    torch.manual_seed(0)
    teacher = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    mean, std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.25)
    teacher(normalize(images[:1], mean, std))  # materialise the lazy layer
    table = predict(teacher, images, mean, std, TrainOptions(), views=CROP_VIEWS)
    assert table.shape == (6, CROP_VIEWS, 10)
    idx, views = torch.tensor([4, 0, 2]), torch.tensor([161, 7, 80])
    direct = teacher.eval()(normalize(crop_flip(images[idx], views), mean, std))
    assert torch.allclose(table[idx, views].float(), direct, atol=0.05, rtol=0.01)  # stored as bf16


@pytest.mark.parametrize("view_cache", [False, True])
def test_gpu_paths_run_on_cpu_with_distillation(view_cache, synthetic_cifar):
    """bf16 autocast, channels_last, augmentation and both teacher-output paths, end to end."""
    from zoo.catalog.recipes import Distill
    from zoo.training.engine import seed_everything, train
    from zoo.training.registry import create_model

    data = synthetic_cifar()
    seed_everything(0, torch.device("cpu"))
    teacher = create_model("cnn5", dropout=0.0)
    student = create_model("cnn5")
    recipe = BASE.replace(epochs=2, batch_size=32, optimizer="adam", lr=1e-3, augment=True,
                          distill=Distill(alpha=0.9, temperature=4), teacher_view_cache=view_cache)
    opts = TrainOptions(amp=True, channels_last=True, log=lambda line: None)
    report = train(student, recipe, data, 0, opts, teacher=teacher)
    assert report.test_total == 40 and len(report.epochs) == 2
    assert report.teacher_kl is not None and report.teacher_kl >= 0
    assert (report.teacher_seconds > 0) == view_cache  # the table is computed up front only when cached
