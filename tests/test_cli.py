"""The `kdbench` command line: what answering `--help` costs, and how it reports a bad request."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "scipy", "pandas", "matplotlib", "fvcore")


@pytest.mark.parametrize("argv", [[], ["launch"], ["speed"], ["compare"], ["run"]])
def test_help_imports_no_heavy_module(argv):
    """`kdbench [COMMAND] --help` builds every parser without torch, scipy or pandas (they cost seconds to import):
    the commands import them when they run."""
    probe = ("import sys\nfrom zoo import cli\ntry:\n    cli.parser().parse_args(sys.argv[1:] + ['--help'])\n"
             "except SystemExit:\n    pass\nprint('imported:', *(m for m in %r if m in sys.modules))" % (HEAVY,))
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "imported:", f"kdbench {' '.join(argv)} --help {done.stdout.splitlines()[-1]}"
