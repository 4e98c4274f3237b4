"""tools/cpu-quota: bad arguments are a usage error before any cgroup is touched."""
import subprocess
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / "tools" / "cpu-quota"


@pytest.mark.parametrize("args", [[], ["1.3"], ["1.3", "echo", "hi"], ["fast", "--", "echo"], ["-1", "--", "echo"]])
def test_cpu_quota_rejects_bad_arguments(args):
    result = subprocess.run(["bash", str(TOOL), *args], capture_output=True, text=True)
    assert result.returncode == 2 and "usage: tools/cpu-quota CORES -- COMMAND" in result.stderr
