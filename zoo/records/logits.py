"""The test-logits file stored beside a result record: every seed's logits on the recipe's test set.

A record refers to it (Record.test_logits) by its file name, SHA-256, dtype and shape; the analysis reads it
back (zoo.reports.analysis.runs) and checks it against that SHA-256.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from zoo.records.io import sha256_file, write_bytes

TEST_LOGITS = "test_logits"  # a seed report's key for its test-set logits (a tensor): stored beside the record


def logits_path(record_file: Path) -> Path:
    """The test-logits file stored beside a result record."""
    return record_file.with_name(record_file.stem + ".logits.npz")


def write_logits(record_file: Path, seeds: list[int], logits: list[torch.Tensor], labels: torch.Tensor) -> dict:
    """Write every seed's test logits (compressed; float16 unless a logit exceeds its range) beside
    `record_file`; return the record's reference to them (Record.test_logits)."""
    path = logits_path(record_file)
    values = torch.stack([x.float().cpu() for x in logits]).numpy()
    dtype = np.float16 if np.abs(values).max() < np.finfo(np.float16).max else np.float32
    buffer = io.BytesIO()
    np.savez_compressed(buffer, seeds=np.array(seeds), labels=labels.cpu().numpy().astype(np.int16),
                        logits=values.astype(dtype))
    write_bytes(path, buffer.getvalue())
    return {"file": path.name, "sha256": sha256_file(path), "dtype": np.dtype(dtype).name, "shape": list(values.shape)}
