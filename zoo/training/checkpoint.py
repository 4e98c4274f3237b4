"""Per-epoch checkpoints of one training run, so that a killed, preempted or requeued run resumes where it stopped.

A checkpoint holds everything the rest of the run depends on: the model's and the distiller's weights and
buffers, the optimiser's state, the stage and the epochs done, the data-order generator's state, torch's
global RNG (dropout) and CUDA's, and what the finished epochs measured. It is written atomically after every
epoch, so a run killed while writing keeps the previous one. A run resumed from it is bit-identical to an
uninterrupted run on the same machine (tests/training/test_checkpoint.py); only wall-clock timings differ.

A checkpoint belongs to one run (its `key`: the recipe, seed, data, code and switches); a file with another
key is foreign and ignored, never resumed from.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn as nn

from zoo.records.io import CorruptFileError, load_tensors, save_tensors


class ResumableRun(Protocol):
    """What a checkpoint saves of a training run and restores into it (zoo.training.engine.TrainingRun is one): the
    loop module imports this one, never the other way round."""

    model: nn.Module
    distiller: nn.Module | None
    generator: torch.Generator
    opts: Any
    epochs: list[dict]
    train_seconds: float
    resume_from: dict | None

STAGES = ("hint", "train")
"""The stages of a training run, in order (zoo.training.engine.train)."""


@dataclass
class Checkpointer:
    """Where one run's checkpoint lives, and the key it must carry to be resumed from."""

    path: Path
    key: str

    def save(self, run: ResumableRun, stage: str, epochs_done: int, optimizer: torch.optim.Optimizer) -> None:
        state = {
            "key": self.key, "stage": stage, "epochs_done": epochs_done,
            "model": run.model.state_dict(), "distiller": run.distiller.state_dict() if run.distiller else {},
            "optimizer": optimizer.state_dict(), "generator": run.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if run.opts.device.type == "cuda" else [],
            "epochs": run.epochs, "train_seconds": run.train_seconds,
        }
        save_tensors(self.path, state)

    def load(self, log) -> dict | None:
        """The run's checkpoint, or None (none yet, unreadable or another run's: said in the log)."""
        if not self.path.exists():
            return None
        try:
            state = load_tensors(self.path)
        except CorruptFileError as err:
            log(f"checkpoint ignored, training from the start: {err}")
            return None
        if not isinstance(state, dict) or state.get("key") != self.key:
            log(f"checkpoint {self.path} belongs to another run (key {state.get('key') if isinstance(state, dict) else '?'}, "
                f"this run {self.key}): ignored, training from the start")
            return None
        return state

    def clear(self) -> None:
        """Delete the checkpoint (the run finished and its result is stored)."""
        self.path.unlink(missing_ok=True)


def resume_stage(run: ResumableRun, stage: str, optimizer: torch.optim.Optimizer, total_epochs: int) -> int:
    """The epochs of `stage` already done by the checkpoint being resumed (0 without one).

    A checkpoint of a later stage skips this stage entirely; one of this stage restores every state it holds
    into `run` and `optimizer` and is then used up.
    """
    state = run.resume_from
    if state is None:
        return 0
    if STAGES.index(state["stage"]) > STAGES.index(stage):
        return total_epochs
    run.model.load_state_dict(state["model"])
    if run.distiller:
        run.distiller.load_state_dict(state["distiller"])
    optimizer.load_state_dict(state["optimizer"])
    run.generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"]:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    run.epochs = list(state["epochs"])
    run.train_seconds = state["train_seconds"]
    run.resume_from = None
    run.opts.log(f"resumed from checkpoint: stage {stage}, {state['epochs_done']} of {total_epochs} epochs done")
    return state["epochs_done"]
