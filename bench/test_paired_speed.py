"""This tree timed against --speed-base REF, block by block, in pairs (zoo.suite.paired_speed)."""
from zoo.suite.paired_speed import test_paired_speed as test_paired_speed
