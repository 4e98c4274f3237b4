"""The one training loop, for teachers and students alike: setup, teacher targets, train, evaluate."""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.catalog.recipes import Recipe
from zoo.measure.fidelity import feature_metric
from zoo.measure.fidelity import teacher_kl as measured_teacher_kl
from zoo.training.checkpoint import Checkpointer, resume_stage
from zoo.training.data import CROP_VIEWS, TensorData, crop_flip, normalize, random_views, stratified_subset
from zoo.training.distill.base import Distiller, FeatureTaps
from zoo.training.distill.registry import create_distiller
from zoo.training.transfer_sets import SUBSET_SEED, bias_shift, split_training_set


@dataclass
class TrainOptions:
    """How to run (not what): device and speed switches; none of them changes the recipe's hash."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    amp: bool = False  # bf16 autocast (CUDA)
    channels_last: bool = False
    compile: bool = False
    log: Callable[[str], None] = print
    between_epochs: Callable[[], None] = lambda: None  # called after every epoch, outside its timing (the probe)
    checkpoint: Checkpointer | None = None  # written after every epoch and resumed from (zoo.training.checkpoint)


@dataclass
class TrainReport:
    """What one training run measured."""

    test_accuracy: float  # exact: correct / total over the (recipe's) test set, in percent
    test_correct: int
    test_total: int
    train_loss_first_epoch: float
    train_loss_last_epoch: float
    train_images_per_s: float
    train_images_per_cpu_s: float  # the median epoch's images per CPU-second of this process (a CPU quota cannot move it)
    train_seconds: float
    teacher_seconds: float  # computing cached teacher outputs before training
    eval_seconds: float
    epochs: list[dict]
    teacher_agreement: float | None = None  # % of test images where student and teacher top-1 agree
    teacher_kl: float | None = None  # mean KL(teacher_T || student_T) on the test set, nats
    val_accuracy: float | None = None  # exact, on the recipe's validation split of the training set
    omission: dict | None = None  # omitted class: its accuracy before and after the bias correction
    fidelity: dict[str, float] = field(default_factory=dict)  # a feature distiller's own fidelity metric (test set)
    transfer_seconds: float = 0.0  # reconstructing a data-free transfer set (part of the timed run)
    test_logits: torch.Tensor | None = field(default=None, repr=False)  # (test images, classes), float32

    def as_record(self) -> dict:
        """The JSON-able fields (everything but the test logits, which are stored beside the record)."""
        return {k: v for k, v in dataclasses.asdict(dataclasses.replace(self, test_logits=None)).items()
                if k != "test_logits"}


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


@torch.inference_mode()
def predict(model: nn.Module, images: torch.Tensor, mean, std, opts: TrainOptions, batch_size: int = 1000,
            views: int | None = None) -> torch.Tensor:
    """Eval-mode logits (float32) for uint8 `images`; with `views`, logits of every augmentation view."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        if views is None:
            out.append(_forward(model, normalize(x, mean, std), opts).float())
            continue
        per_view = []
        for v in range(views):
            ids = torch.full((len(x),), v, device=x.device)
            per_view.append(_forward(model, normalize(crop_flip(x, ids), mean, std), opts).to(torch.bfloat16))
        out.append(torch.stack(per_view, dim=1))
    return torch.cat(out)


def normalization(data: TensorData, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's per-channel mean and std, shaped (1, C, 1, 1) on `device`."""
    return (torch.tensor(data.mean, device=device).view(1, -1, 1, 1),
            torch.tensor(data.std, device=device).view(1, -1, 1, 1))


def test_indices(data: TensorData, recipe: Recipe) -> torch.Tensor:
    """The recipe's test images, as indices into the dataset's test split."""
    return stratified_subset(data.test_y, recipe.test_subset, SUBSET_SEED)


def evaluate(model: nn.Module, data: TensorData, recipe: Recipe, opts: TrainOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode logits of `model` on the recipe's test set, and that set's labels."""
    test_idx = test_indices(data, recipe)
    test_x, test_y = data.test_x[test_idx].to(opts.device), data.test_y[test_idx].to(opts.device)
    return predict(model, test_x, *normalization(data, opts.device), opts), test_y


def _forward(model: nn.Module, x: torch.Tensor, opts: TrainOptions) -> torch.Tensor:
    if opts.channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(opts.device.type, dtype=torch.bfloat16) if opts.amp else nullcontext()
    with autocast:
        return model(x)


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
    logits = _forward(run.step_model, x, run.opts)
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
        return _forward(run.teacher, x, run.opts).float()


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


def evaluate_run(run: TrainingRun) -> TrainReport:
    """The trained model on the test set (and the validation split, and the teacher fidelity), as a report."""
    model, teacher, recipe, opts, data, kd = run.model, run.teacher, run.recipe, run.opts, run.data, run.recipe.distill
    start = time.perf_counter()
    logits, test_y = evaluate(model, data, recipe, opts)
    test_correct = int((logits.argmax(1) == test_y).sum())
    agreement = teacher_kl = None
    fidelity = {}
    if kd:
        t_logits, _ = evaluate(teacher, data, recipe, opts)
        agreement = 100.0 * float((t_logits.argmax(1) == logits.argmax(1)).float().mean())
        teacher_kl = measured_teacher_kl(logits, t_logits, kd.temperature)
        if run.distiller.fidelity_metric != "teacher_kl":
            fidelity[run.distiller.fidelity_metric] = feature_fidelity(run.distiller, model, teacher, data, recipe, opts)
    val_accuracy = None
    if len(run.val_idx):
        val_logits = predict(model, data.train_x[run.val_idx].to(opts.device), run.mean, run.std, opts)
        val_labels = data.train_y[run.val_idx].to(opts.device)
        val_accuracy = 100.0 * int((val_logits.argmax(1) == val_labels).sum()) / len(run.val_idx)
    omission = None
    if recipe.omit_class is not None:
        table = run.teacher_table
        transfer = table[:, 0].float() if table is not None and not recipe.augment else None
        omission = omitted_class_report(model, teacher, run.train_x, logits, test_y, recipe.omit_class,
                                        kd.temperature, (run.mean, run.std), opts, transfer)
    eval_seconds = time.perf_counter() - start
    n, epochs = len(run.train_x), run.epochs
    final = [e for e in epochs if e["stage"] == "train"]
    return TrainReport(
        test_accuracy=100.0 * test_correct / len(test_y), test_correct=test_correct, test_total=len(test_y),
        train_loss_first_epoch=final[0]["loss"], train_loss_last_epoch=final[-1]["loss"],
        train_images_per_s=n * len(epochs) / run.train_seconds,
        train_images_per_cpu_s=statistics.median(e["images_per_cpu_s"] for e in epochs),
        train_seconds=run.train_seconds, teacher_seconds=run.teacher_seconds, eval_seconds=eval_seconds,
        epochs=epochs, teacher_agreement=agreement, teacher_kl=teacher_kl, val_accuracy=val_accuracy,
        omission=omission, fidelity=fidelity, transfer_seconds=run.transfer_seconds, test_logits=logits,
    )


@torch.no_grad()
def feature_fidelity(distiller, model: nn.Module, teacher: nn.Module, data: TensorData, recipe: Recipe,
                     opts: TrainOptions, batch_size: int = 1000) -> float:
    """The distiller's fidelity metric (its transfer measured on features) over the recipe's test set, in eval mode:
    the batch means weighted by batch size."""
    test_x = data.test_x[test_indices(data, recipe)].to(opts.device)
    mean, std = normalization(data, opts.device)
    model.eval()
    teacher.eval()
    total = 0.0
    with FeatureTaps(model, distiller.student_features) as mine, FeatureTaps(teacher, distiller.teacher_features) as theirs:
        for start in range(0, len(test_x), batch_size):
            x = normalize(test_x[start:start + batch_size], mean, std)
            _forward(model, x, opts), _forward(teacher, x, opts)
            total += feature_metric(distiller.fidelity_metric, distiller.fidelity_inputs(mine.outputs, theirs.outputs)) \
                * len(x)
    return total / len(test_x)


def omitted_class_report(model: nn.Module, teacher: nn.Module, transfer_x: torch.Tensor, test_logits: torch.Tensor,
                         test_y: torch.Tensor, cls: int, temperature: float, norm, opts: TrainOptions,
                         teacher_transfer: torch.Tensor | None = None) -> dict:
    """Accuracy on the omitted class `cls` (and overall) before and after the bias correction of zoo.training.transfer_sets,
    matched at the distillation's `temperature` and at T = 1 (keys with the suffix _t1).

    The shift is fitted on the transfer set alone (which holds no image of `cls`), never on the test set.
    """
    student_transfer = predict(model, transfer_x, *norm, opts)
    if teacher_transfer is None:
        teacher_transfer = predict(teacher, transfer_x, *norm, opts)
    members = test_y == cls

    def accuracy(logits: torch.Tensor, mask: torch.Tensor) -> float:
        return 100.0 * int((logits.argmax(1)[mask] == test_y[mask]).sum()) / int(mask.sum())

    report = {"omitted_class": cls, "class_test_images": int(members.sum()),
              "class_accuracy": accuracy(test_logits, members)}
    for suffix, t in (("", temperature), ("_t1", 1.0)):
        shift = bias_shift(student_transfer.cpu(), teacher_transfer.cpu(), cls, t)
        corrected = test_logits.clone()
        corrected[:, cls] += shift
        report |= {f"bias_shift{suffix}": shift, f"class_accuracy_corrected{suffix}": accuracy(corrected, members),
                   f"test_accuracy_corrected{suffix}": accuracy(corrected, torch.ones_like(members))}
    return report
