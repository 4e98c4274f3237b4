"""Every row of the pair table: train under fixed seeds, measure, and gate against its baseline."""
from zoo.runner import run_pair


def test_pair(pair, bench):
    seeds = bench.seeds(pair)
    record = run_pair(pair, bench.tier, seeds, bench.session)
    bench.finish(record, remeasure=lambda: run_pair(pair, bench.tier, seeds, bench.session),
                 min_seeds=pair.recipes[bench.tier].baseline_seeds)
