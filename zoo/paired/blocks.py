"""The timed blocks of the paired A/B: real pieces of kdbench's work, built from the tree that runs them.

A block is named `KIND:ROW[/STAGE]`:
  train:ROW         optimisation steps of ROW's quick recipe: its model, distiller, teacher outputs, augmentation,
                    batch size and threads, through the engine's own train_step (zoo.training.engine)
  train:ROW/hint    FitNets' first stage: the hint regression steps
  infer:ROW         the inference benchmark's forward passes (zoo.timing.inference) of ROW's student, full batch
  data:ROW          the data path alone: ROW's batches gathered, augmented and normalised (engine.batch_inputs)

The teacher of a distilling row is built with seeded weights, not trained: what a step costs does not depend on
the values of the weights, and neither side has to train or load a teacher. A block of `steps` runs that many
steps (forward passes, batches) and waits for the device once at the end.

This module runs inside each side's worker (zoo.paired.worker), from that side's own tree.
"""
from __future__ import annotations

import dataclasses
import time

import torch

from zoo.catalog.pairs import Pair, get_pair
from zoo.measure.costs import synchronize
from zoo.paired.names import BlockError, BlockName
from zoo.timing.inference import THROUGHPUT, InferenceCase
from zoo.training.distill.base import FeatureTaps
from zoo.training.distill.registry import create_distiller
from zoo.training.engine import (
    batch_inputs,
    hint_loss,
    make_optimizer,
    prepare_teacher_targets,
    recipe_loss,
    seed_everything,
    setup,
    train_step,
)
from zoo.training.forward import TrainOptions
from zoo.training.registry import build_model


def _time(fn, steps: int, device: torch.device) -> tuple[float, float]:
    """Wall and CPU seconds of `steps` calls of `fn`, waiting for the device once at the end."""
    synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        fn()
    synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu


class Batches:
    """Endless seeded batches of indices into a training set of `n` images: a new permutation per pass."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device):
        self.n, self.batch_size, self.generator, self.device = n, batch_size, generator, device
        self.order, self.at = torch.empty(0, dtype=torch.long), 0

    def next(self) -> torch.Tensor:
        if self.at + self.batch_size > len(self.order):
            self.order, self.at = torch.randperm(self.n, generator=self.generator, device=self.device), 0
        self.at += self.batch_size
        return self.order[self.at - self.batch_size:self.at]


class TrainingBlock:
    """Steps of a row's training (or FitNets' hint stage), from the engine's own setup and train_step."""

    def __init__(self, pair: Pair, tier: str, stage: str, dataset, opts: TrainOptions):
        recipe = one_step_synthesis(pair.recipes[tier])
        data = dataset(pair.dataset)
        seed_everything(0, opts.device)
        teacher = None
        if recipe.distill:
            teacher = build_model(get_pair(pair.teacher[tier]).student, data.num_classes)
        model = build_model(pair.student, data.num_classes)
        self.run = run = setup(model, recipe, data, 0, opts, teacher)
        kd = run.distiller
        if stage == "hint" and not (kd and kd.hint_epochs):
            raise BlockError(f"train:{pair.id}/hint: the row's distiller has no hint stage")
        if kd:
            prepare_teacher_targets(run)
        run.student_taps = FeatureTaps(model, kd.student_features if kd else ())
        run.teacher_taps = FeatureTaps(teacher, kd.teacher_features if kd else ())
        stage_recipe = recipe.replace(epochs=kd.hint_epochs) if stage == "hint" else recipe
        self.loss = hint_loss if stage == "hint" else recipe_loss
        self.optimizer = make_optimizer(run.params, stage_recipe)
        self.lr = stage_recipe.lr
        self.batches = Batches(len(run.train_x), recipe.batch_size, run.generator, opts.device)
        model.train()

    def step(self) -> None:
        train_step(self.run, self.optimizer, self.loss, self.batches.next(), self.lr)

    def time(self, steps: int) -> tuple[float, float]:
        return _time(self.step, steps, self.run.opts.device)


def one_step_synthesis(recipe):
    """The recipe with a synthesised transfer set (data-free KD) reconstructed in one step instead of its dozens: a
    training step costs the same on any pixels of the same count, and the full reconstruction took 19 s of every
    block's build on this VM. Other recipes are returned as they are."""
    distill = recipe.distill
    if not distill or not create_distiller(distill).synthesizes_transfer_set or "steps" not in dict(distill.options):
        return recipe
    return recipe.replace(distill=dataclasses.replace(
        distill, options=tuple((key, 1 if key == "steps" else value) for key, value in distill.options)))


class DataBlock(TrainingBlock):
    """The data path of a row's training steps alone: gather, augment, normalise."""

    def step(self) -> None:
        batch_inputs(self.run, self.batches.next())


class InferenceBlock:
    def __init__(self, pair: Pair, dataset, opts: TrainOptions):
        self.case = InferenceCase.build(pair.student, dataset(pair.dataset), THROUGHPUT, opts)

    def time(self, steps: int) -> tuple[float, float]:
        return _time(self.case.infer, steps, self.case.opts.device)


def build_block(name: str, tier: str, dataset, opts: TrainOptions):
    """The block `name` of `tier` built from this tree, ready to be timed (`block.time(steps)`);
    `dataset(variant)` returns the loaded TensorData."""
    block = BlockName.parse(name)
    pair = get_pair(block.row)
    if tier not in pair.recipes:
        raise BlockError(f"{name}: row {block.row} has no {tier!r} recipe")
    if block.kind == "infer":
        return InferenceBlock(pair, dataset, opts)
    if block.kind == "data":
        return DataBlock(pair, tier, "train", dataset, opts)
    return TrainingBlock(pair, tier, block.stage, dataset, opts)
