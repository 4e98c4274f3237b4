"""This tree timed against --speed-base REF, block by block, in pairs (zoo.paired): judged on any machine."""
import pytest

from zoo.harness.plugin import skip_under_xdist

pytestmark = pytest.mark.paired


def test_paired_speed(paired_block, paired_ab, bench):
    skip_under_xdist()
    bench.finish(paired_ab[paired_block])
