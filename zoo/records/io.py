"""Atomic file writes and checked reads: an interrupted run never leaves a half-written file."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import KdbenchInputError


class CorruptFileError(KdbenchInputError, ValueError):
    """A stored file exists but cannot be parsed; the message names the file and what to do."""


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same folder, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results and baselines are meant to be shared
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_orphans(path: Path) -> None:
    """Delete temporary files of `path` left by writers that were killed (their process is gone)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if not pid.isdigit() or not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text(path: Path, text: str) -> None:
    """Atomically write `text` to `path`."""
    _atomic_write(path, lambda tmp: tmp.write_text(text))


def write_bytes(path: Path, data: bytes) -> None:
    """Atomically write `data` to `path`."""
    _atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: Path, data: Any) -> None:
    """Atomically write `data` as indented, key-sorted JSON (stable diffs for reviewed files)."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> Any:
    """Read JSON from `path`; a file that does not parse raises CorruptFileError naming it."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"{path} is not valid JSON ({err}); restore it from git or delete it and re-record") from err


def save_tensors(path: Path, obj: Any) -> None:
    """Atomically `torch.save` `obj` to `path`."""
    import torch  # here, not at the top: reading JSON records (and `kdbench --help`) needs no torch

    _atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_tensors(path: Path) -> Any:
    """`torch.load` a file written by `save_tensors`; an unreadable file raises CorruptFileError."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CorruptFileError(f"{path} is unreadable ({type(err).__name__}: {first_line}); delete it to rebuild") from err


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
