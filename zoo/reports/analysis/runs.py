"""The runs an analysis reads: each row's newest result record under a results root, with its test logits."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from zoo.errors import KdbenchInputError
from zoo.records.io import sha256_file
from zoo.records.logits import logits_path
from zoo.records.record import Record
from zoo.records.store import Listing, RecordStore


class AnalysisInputError(KdbenchInputError, ValueError):
    """A record or its logits file cannot be analysed; the message names the file and what to do."""


@dataclass
class Run:
    """One row's run: its record and every seed's test-set logits."""

    record: Record
    path: Path
    seeds: list[int]
    logits: torch.Tensor  # (seeds, images, classes), float32 (stored as float16 where it fits)
    labels: torch.Tensor  # (images,)

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def classes(self) -> int:
        return self.logits.shape[2]

    def of_seed(self, seed: int) -> torch.Tensor:
        if seed not in self.seeds:
            raise AnalysisInputError(f"{self.path}: no logits of seed {seed} (it holds seeds {self.seeds})")
        return self.logits[self.seeds.index(seed)]

    def metric(self, name: str) -> list[float]:
        return self.record.values(name) or []


def load_run(record: Record, path: Path) -> Run:
    """The run of `record` (read from `path`), its logits checked against the SHA-256 in the record."""
    ref = record.test_logits
    if not ref:
        raise AnalysisInputError(f"{path}: the record stores no test logits (recorded before kdbench kept them, "
                                 f"or a timing benchmark); rerun the row to analyse it")
    file = logits_path(path)
    if not file.exists():
        raise AnalysisInputError(f"{file}: missing; the record {path} refers to it. Rerun the row")
    if sha256_file(file) != ref["sha256"]:
        raise AnalysisInputError(f"{file} does not match the SHA-256 in {path}: damaged or from another run")
    with np.load(io.BytesIO(file.read_bytes())) as stored:
        seeds, labels, logits = stored["seeds"], stored["labels"], stored["logits"]
    return Run(record, path, [int(s) for s in seeds], torch.from_numpy(logits.astype(np.float32)),
               torch.from_numpy(labels.astype(np.int64)))


def latest_runs(root: Path, tier: str, device: str = "cpu") -> tuple[dict[str, Run], dict[str, str]]:
    """Row id -> its newest run of `tier` on `device` under `root` that stored test logits; and why a run
    cannot be analysed (keyed by row id, or by file for an unreadable record)."""
    listing = RecordStore(root).listing
    problems = {str(path): line for (path, _), line in zip(listing.problems, listing.problem_lines(), strict=True)}
    with_logits = Listing([(r, p) for r, p in listing.entries
                           if (r.tier, r.device, r.kind) == (tier, device, "pair") and r.test_logits])
    runs = {}
    for (_, _, _, bench_id), (record, path) in with_logits.newest().items():
        try:
            runs[bench_id] = load_run(record, path)
        except AnalysisInputError as err:
            problems[bench_id] = str(err)
    return runs, problems
