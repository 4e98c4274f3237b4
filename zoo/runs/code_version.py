"""CODE_VERSION: the hash of the training code that determines a trained model, in every record and in the keys of
the teacher cache and of checkpoints (a change retrains cached teachers)."""
from __future__ import annotations

import hashlib
from pathlib import Path

from zoo import training

RESULT_NEUTRAL = ("checkpoint.py",)
"""Files of the training package that cannot change a trained model: how a run is saved and resumed (a resumed run
is bit-identical to an uninterrupted one, tests/training/test_checkpoint.py). Editing them retrains no cached teacher."""


def training_code_version() -> str:
    """Hash of the training package's files (path and bytes) but RESULT_NEUTRAL ones: a change retrains teachers."""
    root = Path(training.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*.py") if p.relative_to(root).as_posix() not in RESULT_NEUTRAL):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


CODE_VERSION = training_code_version()
"""Hash of the code that determines a trained model: a change retrains cached teachers."""
