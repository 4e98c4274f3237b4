"""kdbench's data path against the naive per-sample DataLoader (zoo.suite.loader_speedup)."""
from zoo.suite.loader_speedup import test_loader_speedup as test_loader_speedup
