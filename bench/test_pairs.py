"""Every row of the pair table: train under fixed seeds, measure, and gate against its baseline."""
from zoo.runner import run_pair


def test_pair(pair, bench):
    record = run_pair(pair, bench.tier, bench.seeds(pair), bench.session)
    bench.finish(record)
