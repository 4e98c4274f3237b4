"""This tree timed against --speed-base REF, block by block, in pairs (zoo.paired): judged on any machine."""
import pytest


@pytest.mark.paired
def test_paired_speed(paired_block, paired_ab, bench):
    bench.finish(paired_ab[paired_block])
