"""kdbench's training engine against a plain PyTorch loop, timed in one run (zoo.suite.engine_speed)."""
from zoo.suite.engine_speed import test_engine_speed as test_engine_speed
