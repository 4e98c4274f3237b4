"""Result records: one JSON file per benchmark run, with the provenance that makes it evidence.

A baseline is a result record that `--update-baselines` copied into `baselines/`; both share one schema.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import KdbenchInputError
from zoo.records.io import read_json, write_json
from zoo.records.record import Record

if TYPE_CHECKING:  # torch is imported where a device is described: `kdbench --help` needs none of it
    import torch


def project_root(start: Path | None = None) -> Path:
    """The benchmark project a command runs in: the nearest folder at or above `start` (default: the
    current directory) that holds `baselines/`, else `start` itself. Never the installed package's folder."""
    start = (start or Path.cwd()).resolve()
    return next((folder for folder in (start, *start.parents) if (folder / "baselines").is_dir()), start)


def default_cache_dir() -> Path:
    """KDBENCH_CACHE, else the user cache dir (teachers and decoded datasets live here)."""
    if env := os.environ.get("KDBENCH_CACHE"):
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("kdbench"))


class ProjectSettingsError(KdbenchInputError, ValueError):
    """A bad kdbench setting in the project's kdbench.toml or pyproject.toml; the message names the file and key."""


def project_table(project: Path) -> tuple[dict, Path | None]:
    """The project's kdbench settings as written: kdbench.toml's top level, else pyproject.toml's [tool.kdbench]
    ({} and None without either), and the file they came from."""
    for name, section in (("kdbench.toml", ()), ("pyproject.toml", ("tool", "kdbench"))):
        path = Path(project) / name
        if not path.is_file():
            continue
        try:
            table = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ProjectSettingsError(f"{path}: not valid TOML: {err}") from err
        for part in section:
            table = table.get(part, {})
        return dict(table), path
    return {}, None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=project_root(), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_id() -> str:
    """The processor's identity beyond its marketing name (VMs of different generations report "AMD EPYC"
    alike, with different speeds and kernels): vendor, family, model, stepping, the widest vector ISA."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines()
                      if ":" in line)
    except OSError:
        return platform.machine()
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    isa = next((name for name in ("avx512f", "avx2", "avx", "sse4_2") if name in flags), "base")
    return (f"{fields.get('vendor_id', '?')} family {fields.get('cpu family', '?')} model {fields.get('model', '?')} "
            f"stepping {fields.get('stepping', '?')} {isa}")


def device_name(device: torch.device) -> str:
    import torch

    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def provenance(device: torch.device, command: str | None = None) -> dict:
    """Where a result came from: code, machine, software, time.

    `dirty` is set by uncommitted changes to the code; baselines and reports (which a recording
    session itself rewrites) do not count.
    """
    import torch
    import torchvision

    return {
        "command": command or " ".join(sys.argv),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!baselines", ":!reports")),
        "machine": platform.node(),
        "cpu": cpu_name(),
        "cpu_id": cpu_id(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device.type,
        "device_name": device_name(device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "fvcore": _version("fvcore"),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_fingerprint(record: Record) -> str:
    """What absolute timings depend on: processor (or GPU) model and the CPU's identity, cores, threads, torch
    version. A record without the CPU's identity (recorded before it was kept) matches no machine."""
    p = record.provenance
    return (f"{p.get('device_name', '?')} ({p.get('cpu_id', 'CPU identity not recorded')}), {p.get('cpu_count', '?')} "
            f"cores, {p.get('torch_threads', '?')} threads, torch {p.get('torch', '?')}")


def provenance_line(record: Record) -> str:
    """One line naming a record's origin, for failure messages and reports."""
    p = record.provenance
    commit = (p.get("commit") or "?")[:10] + ("+dirty" if p.get("dirty") else "")
    return (f"{p.get('date', '?')} commit {commit} on {p.get('device_name', '?')} "
            f"(torch {p.get('torch', '?')}, seeds {record.seeds}, {record.dataset})")


def record_path(root: Path, key: tuple[str, str, str, str]) -> Path:
    """Where a record of `key` (tier, dataset, device, id; Record.key) lives under a results or baselines root."""
    tier, dataset, device, bench_id = key
    return Path(root) / tier / dataset / device / f"{bench_id}.json"


def load_record(path: Path) -> Record:
    """Read a result or baseline record (Record.from_json: the schema and the fields are checked)."""
    return Record.from_json(read_json(path), path)


def write_record(path: Path, record: Record) -> None:
    write_json(path, record.to_json())


def session_results_dir(root: Path, tier: str) -> Path:
    """A fresh folder per session under the results root: earlier sessions' files are never touched."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(root) / f"{stamp}-{tier}-{os.getpid()}"
