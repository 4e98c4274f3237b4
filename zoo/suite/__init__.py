"""kdbench's benchmark tests, shipped in the package so that a project needs no copy of them.

A project's bench/ imports the tests it runs (`kdbench init` writes that file), and the pytest plugin
(zoo.harness.plugin) parametrizes them over the catalogue's rows, the project's own included:

    # bench/test_kdbench.py
    from zoo.suite.inference import test_inference as test_inference
    from zoo.suite.rows import test_pair as test_pair

rows: every row trained under its seeds, measured and gated against its baseline.
inference: inference throughput and latency of every model of the tier.
engine_speed, loader_speedup, paired_speed: kdbench's own training loop and data path against plain PyTorch
and against another commit; this repository's bench/ runs them.
"""
