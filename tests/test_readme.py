"""Every command in the README's (and the reference's) code blocks is one that exists: each `kdbench` line is
parsed by kdbench's own argument parser (a documented flag, subcommand or choice that does not exist fails
here), `kdbench launch ... --dry-run` is run, and each `pytest` line collects at least one test with its
options (`--collect-only`, nothing trains)."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.cli import parser

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", "docs/reference.md")
COMMAND = re.compile(r"(?:[A-Z_]+=\S*\s+)*(?:kdbench|pytest|python -m pytest)\s")


def code_lines(text: str) -> list[str]:
    """The lines of a markdown text's code blocks: fenced, or indented by four spaces after a blank line."""
    lines, fenced, indented, previous_blank = [], False, False, True
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        indented = line.startswith("    ") and (indented or previous_blank) and not line.lstrip().startswith("- ")
        if fenced or indented:
            lines.append(line.strip())
        previous_blank = not line.strip()
    return lines


def commands(text: str) -> list[list[str]]:
    """Each command of the code blocks that runs kdbench or pytest, as argv; `A && B` is two commands and
    leading VAR=value assignments are dropped."""
    found = []
    for line in code_lines(text):
        for part in line.split("&&"):
            if not COMMAND.match(part.strip()):
                continue
            argv = shlex.split(part, comments=True)
            while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
                argv = argv[1:]
            if argv[:3] == ["python", "-m", "pytest"]:
                argv = ["pytest", *argv[3:]]
            if argv and argv[0] in ("kdbench", "pytest"):
                found.append(argv)
    return found


def documented() -> list[tuple[str, list[str]]]:
    return [(name, argv) for name in DOCUMENTS for argv in commands((REPO / name).read_text())]


def test_the_documents_show_commands():
    kinds = {argv[0] for _, argv in documented()}
    assert kinds == {"kdbench", "pytest"}, kinds


@pytest.mark.parametrize(("where", "argv"), [pytest.param(where, argv, id=f"{where}: {shlex.join(argv)}")
                                              for where, argv in documented()])
def test_a_documented_command_exists(where, argv, tmp_path):
    env = os.environ | {"KDBENCH_DATA": os.environ.get("KDBENCH_DATA", str(REPO.parent / "shared" / "data")),
                        "KDBENCH_HISTORY": str(tmp_path / "history.sqlite")}
    if argv[0] == "kdbench":
        try:
            parser().parse_args(argv[1:])
        except SystemExit as exit:
            pytest.fail(f"{where}: `{shlex.join(argv)}` is not a valid kdbench command (exit {exit.code})")
        if "--dry-run" in argv:
            run = subprocess.run([sys.executable, "-m", "zoo.cli", *argv[1:]], cwd=REPO, env=env,
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, f"{where}: `{shlex.join(argv)}`:\n{run.stderr[-2000:]}"
        return
    run = subprocess.run([sys.executable, "-m", "pytest", *argv[1:], "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{where}: `{shlex.join(argv)}` collects nothing or fails:\n{run.stdout[-2000:]}" \
                                f"{run.stderr[-2000:]}"
