"""kdbench's training engine timed against a plain PyTorch loop in the same process.

The plain loop is the textbook one: pre-normalised tensors sliced into batches, forward,
cross-entropy, backward, step. The engine adds what kdbench needs (seeded shuffling, batched
augmentation, on-the-fly normalisation, teacher lookups, the lr schedule, one host sync per epoch).
Rounds alternate which side runs first, and the median of the per-round ratios is kept, so a change
of machine or a busy neighbour moves both sides together; a slow-down inside the engine does not.
"""
from __future__ import annotations

import dataclasses
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from zoo.catalog.pairs import Pair, get_pair
from zoo.catalog.recipes import Recipe
from zoo.training.data import TensorData, normalize, stratified_subset
from zoo.training.engine import make_optimizer, seed_everything, train
from zoo.training.forward import TrainOptions, normalization
from zoo.training.registry import build_model
from zoo.training.transfer_sets import SUBSET_SEED


def plain_epoch_images_per_s(model: nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe,
                             optimizer: torch.optim.Optimizer) -> float:
    """Images/s of one epoch of the textbook training loop over ready, normalised tensors."""
    model.train()
    start = time.perf_counter()
    for i in range(0, len(x), recipe.batch_size):
        loss = F.cross_entropy(model(x[i:i + recipe.batch_size]), y[i:i + recipe.batch_size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(x) / (time.perf_counter() - start)


MAX_IMAGES = 6000  # per round and side: a second or a few on a CPU, so rounds interleave finely


@dataclasses.dataclass
class EngineSpeed:
    ratios: list[float]  # engine / plain images/s, one per round
    engine_images_per_s: float  # medians over rounds
    plain_images_per_s: float
    images: int

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def engine_speed(pair: Pair, tier: str, data: TensorData, opts: TrainOptions, rounds: int = 5) -> EngineSpeed:
    """One epoch of `pair`'s recipe through the engine against the plain loop, `rounds` times each."""
    recipe = pair.recipes[tier]
    fraction = min(recipe.train_subset, MAX_IMAGES / len(data.train_y))  # full tiers: a slice of an epoch
    recipe = recipe.replace(epochs=1, train_subset=fraction, test_subset=0.01)
    device = opts.device
    quiet = dataclasses.replace(opts, log=lambda line: None)
    seed_everything(0, device)
    teacher = build_model(get_pair(pair.teacher[tier]).student, data.num_classes) if recipe.distill else None
    engine_model = build_model(pair.student, data.num_classes)
    plain_model = build_model(pair.student, data.num_classes).to(device)
    idx = stratified_subset(data.train_y, fraction, SUBSET_SEED)
    x = normalize(data.train_x[idx].to(device), *normalization(data, device))
    y = data.train_y[idx].to(device)
    optimizer = make_optimizer(plain_model.parameters(), recipe)

    def run_engine(seed: int) -> float:
        return train(engine_model, recipe, data, seed, quiet, teacher=teacher).epochs[0]["images_per_s"]

    def run_plain(seed: int) -> float:
        return plain_epoch_images_per_s(plain_model, x, y, recipe, optimizer)

    run_engine(0), run_plain(0)  # warm-up: allocator, kernels, caches
    engine, plain = [], []
    for r in range(rounds):
        first, second = (run_engine, run_plain) if r % 2 == 0 else (run_plain, run_engine)
        a, b = first(r + 1), second(r + 1)
        engine.append(a if first is run_engine else b)
        plain.append(b if first is run_engine else a)
    return EngineSpeed([e / p for e, p in zip(engine, plain)], statistics.median(engine), statistics.median(plain),
                       len(idx))
