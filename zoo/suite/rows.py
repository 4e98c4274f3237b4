"""Every row of the pair table: train under fixed seeds, measure, and gate against its baseline.

The training also reports through pytest-benchmark (pedantic, one round: the wall time of training
and evaluating every seed), with the row's metrics in `extra_info`, so `--benchmark-json`,
`--benchmark-autosave` and `pytest-benchmark compare` show training rows beside the inference ones.
"""
import statistics

from zoo.runs.runner import run_pair


def test_pair(pair, bench, benchmark):
    seeds = bench.seeds(pair)
    benchmark.group = f"train-{bench.tier}-{pair.dataset}"
    record = benchmark.pedantic(run_pair, args=(pair, bench.tier, seeds, bench.session), rounds=1, iterations=1)
    benchmark.extra_info.update(
        {"kdbench_id": record.id, "tier": record.tier, "seeds": record.seeds,
         "recipe_hash": record.recipe_hash}
        | {f"{metric}_mean": statistics.fmean(values)
           for metric in record.metrics if (values := record.values(metric))})
    bench.finish(record, remeasure=lambda: run_pair(pair, bench.tier, seeds, bench.session),
                 min_seeds=pair.recipes[bench.tier].baseline_seeds)
