"""The one training loop, for teachers and students alike: setup, teacher targets, train, evaluate."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.catalog.recipes import Recipe
from zoo.training.checkpoint import resume_stage
from zoo.training.data import CROP_VIEWS, TensorData, crop_flip, normalize, random_views
from zoo.training.distill.base import Distiller, FeatureTaps
from zoo.training.distill.registry import create_distiller
from zoo.training.evaluation import TrainReport, evaluate_run
from zoo.training.forward import TrainOptions, forward, normalization, predict
from zoo.training.transfer_sets import split_training_set


def seed_everything(seed: int, device: torch.device) -> None:
    """Seed torch and switch deterministic algorithms on (warn-only on CUDA, where a few ops have none)."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    torch.backends.cudnn.benchmark = False


def make_optimizer(params, recipe: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimiser over `params` (the student's, and a distiller's own trainable parts)."""
    params = list(params)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum,
                               nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}; choose sgd or adam")


def lr_factor(recipe: Recipe, epoch_progress: float) -> float:
    """Multiplier of the base lr at fractional epoch `epoch_progress` (0 at the start)."""
    if recipe.schedule == "constant":
        return 1.0
    if recipe.schedule == "step":
        return recipe.gamma ** sum(epoch_progress >= m for m in recipe.milestones)
    if recipe.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch_progress / recipe.epochs))
    if recipe.schedule == "onecycle":
        if epoch_progress < recipe.warmup_epochs:
            return epoch_progress / recipe.warmup_epochs
        return max(0.0, (recipe.epochs - epoch_progress) / (recipe.epochs - recipe.warmup_epochs))
    raise ValueError(f"unknown schedule {recipe.schedule!r}; choose constant, step, cosine or onecycle")


def train(model: nn.Module, recipe: Recipe, data: TensorData, seed: int, opts: TrainOptions,
          teacher: nn.Module | None = None) -> TrainReport:
    """Train `model` by `recipe` on `data` (distilling from `teacher` if the recipe says so) and evaluate it.

    Reports the last epoch, never a best epoch: no choice is ever made on the test set. Call
    `seed_everything(seed, device)` before building `model`, so that its initialisation is seeded too.
    """
    run = setup(model, recipe, data, seed, opts, teacher)
    if opts.checkpoint:
        run.resume_from = opts.checkpoint.load(opts.log)
    if run.distiller:
        prepare_teacher_targets(run)
    # One loop per stage: a distiller with a hint stage (FitNets) first trains the student up to its
    # guided layer on its own loss, then every row trains the whole student on the recipe's loss.
    kd = run.distiller
    run.student_taps = FeatureTaps(model, kd.student_features if kd else ())
    run.teacher_taps = FeatureTaps(teacher, kd.teacher_features if kd else ())
    try:
        if kd and kd.hint_epochs:
            run_stage(run, "hint", recipe.replace(epochs=kd.hint_epochs), hint_loss)
        run_stage(run, "train", recipe, recipe_loss)
    finally:  # the model leaves training without hooks
        run.student_taps.close()
        run.teacher_taps.close()
    return evaluate_run(run)


@dataclass
class TrainingRun:
    """The state one training run's steps share: its inputs, its training set on the device, the teacher's
    targets, and what the epochs measured."""

    model: nn.Module
    recipe: Recipe
    data: TensorData
    opts: TrainOptions
    teacher: nn.Module | None
    distiller: Distiller | None
    generator: torch.Generator
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_idx: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    step_model: nn.Module  # the model the training steps call (torch.compile'd under --compile)
    teacher_table: torch.Tensor | None = None  # teacher logits per training image (and augmentation view)
    teacher_seconds: float = 0.0  # computing teacher_table
    transfer_seconds: float = 0.0  # synthesising a data-free transfer set
    train_seconds: float = 0.0
    epochs: list[dict] = field(default_factory=list)
    student_taps: FeatureTaps | None = None
    teacher_taps: FeatureTaps | None = None
    resume_from: dict | None = None  # a checkpoint's state, until the stage it belongs to restores it

    @property
    def params(self) -> list[nn.Parameter]:
        """What the optimiser trains: the student's parameters and a distiller's own trainable parts."""
        return [*self.model.parameters(), *(self.distiller.parameters() if self.distiller else [])]


def setup(model: nn.Module, recipe: Recipe, data: TensorData, seed: int, opts: TrainOptions,
          teacher: nn.Module | None) -> TrainingRun:
    """Check the inputs, put the training set and the model on the device, and build the distiller."""
    device, kd = opts.device, recipe.distill
    if kd and teacher is None:
        raise ValueError("the recipe distills but no teacher was given")
    if recipe.augment and data.augmentation != "crop_flip":
        raise ValueError(f"the recipe augments, but dataset {data.variant!r} registers no augmentation policy")
    generator = torch.Generator(device=device).manual_seed(seed)
    train_idx, val_idx = split_training_set(data.train_y, recipe.train_subset, recipe.val_fraction, recipe.omit_class)
    train_idx = train_idx.to(device)
    train_x, train_y = data.train_x.to(device)[train_idx], data.train_y.to(device)[train_idx]
    mean, std = normalization(data, device)
    model.to(device)
    if opts.channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if opts.compile else model
    return TrainingRun(model, recipe, data, opts, teacher, create_distiller(kd) if kd else None, generator,
                       train_x, train_y, val_idx, mean, std, step_model)


def prepare_teacher_targets(run: TrainingRun) -> None:
    """The teacher on the device, a data-free transfer set if the distiller makes one, and the teacher's outputs.

    Teacher outputs are looked up per sample (and per augmentation view), so they can never be misaligned
    with a shuffled, augmented batch. Without augmentation they are computed once. A distiller that needs
    the teacher's intermediate features runs the teacher on every batch instead.
    """
    teacher, distiller, opts, recipe = run.teacher, run.distiller, run.opts, run.recipe
    device, norm = opts.device, (run.mean, run.std)
    teacher.to(device).eval()
    if opts.channels_last:
        teacher.to(memory_format=torch.channels_last)
    if distiller.synthesizes_transfer_set:  # from the teacher's metadata: no training image after that
        start = time.perf_counter()
        run.train_x, run.train_y = distiller.transfer_set(teacher, run.data.train_x.to(device),
                                                          run.data.train_y.to(device), norm, run.generator)
        run.transfer_seconds = time.perf_counter() - start
    distiller.prepare(run.model, teacher, normalize(run.train_x[:2], *norm))  # sizes its own trainable parts
    distiller.to(device)
    start = time.perf_counter()
    table = not distiller.teacher_features  # else the features come from a teacher pass per batch
    if table and not recipe.augment:
        run.teacher_table = predict(teacher, run.train_x, *norm, opts).unsqueeze(1)
    elif table and recipe.teacher_view_cache:
        run.teacher_table = predict(teacher, run.train_x, *norm, opts, views=CROP_VIEWS)
    if run.teacher_table is not None:
        run.teacher_seconds = time.perf_counter() - start


BatchLoss = Callable[[TrainingRun, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None],
                     torch.Tensor]


class TrainingDiverged(FloatingPointError):
    """The training loss became non-finite: a result (the row fails, naming where), not a crash. The runner adds
    the row and seed."""

    def __init__(self, loss: float, epoch: int, stage: str):
        self.loss, self.epoch, self.stage, self.row, self.seed = loss, epoch, stage, "?", None
        super().__init__()

    def __str__(self) -> str:
        return self.verdict()

    def verdict(self) -> str:
        return (f"DIVERGED {self.row}: seed {self.seed}, epoch {self.epoch} ({self.stage}): the training loss became "
                f"{self.loss}")


def run_stage(run: TrainingRun, stage: str, stage_recipe: Recipe, batch_loss: BatchLoss) -> None:
    """Train for `stage_recipe.epochs` epochs on `batch_loss`, with a fresh optimiser; logs a row per epoch."""
    optimizer = make_optimizer(run.params, stage_recipe)
    first = resume_stage(run, stage, optimizer, stage_recipe.epochs)
    if first == stage_recipe.epochs:
        return
    run.opts.log(f"{'epoch':>5} {'lr':>9} {'loss':>8} {'train_acc':>9} {'img/s':>8} {'elapsed':>8} {'eta':>8}  ({stage})")
    for epoch in range(first, stage_recipe.epochs):
        record = train_epoch(run, optimizer, stage_recipe, epoch, batch_loss) | {"stage": stage}
        if not math.isfinite(record["loss"]):
            raise TrainingDiverged(record["loss"], epoch + 1, stage)
        run.train_seconds += record["seconds"]
        run.epochs.append(record)
        eta = run.train_seconds / len(run.epochs) * (stage_recipe.epochs - epoch - 1)
        run.opts.log(f"{epoch + 1:>5} {record['lr']:>9.2e} {record['loss']:>8.4f} {record['train_accuracy']:>9.2f} "
                     f"{record['images_per_s']:>8.0f} {run.train_seconds:>7.1f}s {eta:>7.1f}s")
        if run.opts.checkpoint:
            run.opts.checkpoint.save(run, stage, epoch + 1, optimizer)
        run.opts.between_epochs()


def batch_inputs(run: TrainingRun, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The data path of one step: the batch `idx` of the resident training set, augmented (drawing its views
    from the run's generator) and normalised; returns the inputs, the labels and the augmentation views."""
    x, y = run.train_x[idx], run.train_y[idx]
    views = None
    if run.recipe.augment:
        views = random_views(len(idx), run.generator, run.opts.device)
        x = crop_flip(x, views)
    return normalize(x, run.mean, run.std), y, views


def train_step(run: TrainingRun, optimizer: torch.optim.Optimizer, batch_loss: BatchLoss, idx: torch.Tensor,
               lr: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimisation step on the batch `idx` at learning rate `lr`: the loss, the logits and the labels
    (left on the device: nothing here waits for it)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    x, y, views = batch_inputs(run, idx)
    logits = forward(run.step_model, x, run.opts)
    loss = batch_loss(run, logits, x, y, idx, views)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss, logits, y


def train_epoch(run: TrainingRun, optimizer: torch.optim.Optimizer, stage_recipe: Recipe, epoch: int,
                batch_loss: BatchLoss) -> dict:
    """One epoch over the training set in a seeded order: what it measured (loss and accuracy synced once)."""
    device, n, bs = run.opts.device, len(run.train_x), run.recipe.batch_size
    steps_per_epoch = math.ceil(n / bs)
    run.model.train()
    start, cpu_start = time.perf_counter(), time.process_time()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    order = torch.randperm(n, generator=run.generator, device=device)
    for step in range(steps_per_epoch):
        lr = stage_recipe.lr * lr_factor(stage_recipe, epoch + step / steps_per_epoch)
        idx = order[step * bs:(step + 1) * bs]
        loss, logits, y = train_step(run, optimizer, batch_loss, idx, lr)
        loss_sum += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == y).sum()
    epoch_loss, epoch_acc = (loss_sum / n).item(), 100.0 * correct.item() / n  # one sync per epoch
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    return {"epoch": epoch + 1, "lr": lr, "loss": epoch_loss, "train_accuracy": epoch_acc,
            "images_per_s": n / seconds, "seconds": seconds, "images_per_cpu_s": n / max(cpu_seconds, 1e-9),
            "cpu_seconds": cpu_seconds}


def teacher_outputs(run: TrainingRun, x: torch.Tensor, idx: torch.Tensor, views: torch.Tensor | None) -> torch.Tensor:
    """The teacher's logits for a batch: looked up in the table, else computed (filling the teacher's taps)."""
    if run.teacher_table is not None:
        return run.teacher_table[idx, 0 if views is None else views].float()
    with torch.no_grad():
        return forward(run.teacher, x, run.opts).float()


def recipe_loss(run: TrainingRun, logits, x, y, idx, views) -> torch.Tensor:
    """The recipe's loss: cross-entropy, or the distiller's loss (labels withheld from unlabeled transfer)."""
    kd = run.recipe.distill
    if not kd:
        return F.cross_entropy(logits.float(), y, label_smoothing=run.recipe.label_smoothing)
    return run.distiller(logits, teacher_outputs(run, x, idx, views), None if kd.unlabeled else y,
                         run.student_taps.outputs, run.teacher_taps.outputs)


def hint_loss(run: TrainingRun, logits, x, y, idx, views) -> torch.Tensor:
    """The hint stage's loss: the distiller's regression of the student's guided layer on the teacher's hint."""
    teacher_outputs(run, x, idx, views)  # fills the teacher's taps
    return run.distiller.hint_loss(run.student_taps.outputs, run.teacher_taps.outputs)
