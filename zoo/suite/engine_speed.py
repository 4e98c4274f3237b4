"""kdbench's training engine against a plain PyTorch loop, timed in one run: gated on any machine."""
import pytest

from zoo.catalog.pairs import get_pair
from zoo.measure.costs import LoadMonitor
from zoo.records.record import Record
from zoo.runs.row_records import timing_record
from zoo.timing.engine_speed import engine_speed

CASES = ["mnist-mlp800-lr0.01", "mnist-mlp800-kd-lr0.01", "cifar10-cnn5-d0.5"]  # rows whose recipe is timed


@pytest.mark.speed
@pytest.mark.parametrize("row", CASES)
def test_engine_speed(row, bench):
    pair = get_pair(row)
    data = bench.session.dataset(pair.dataset)

    def measure() -> Record:
        with LoadMonitor() as load:
            speed = engine_speed(pair, bench.tier, data, bench.session.opts)
        bench.session.opts.log(f"{row}: engine {speed.engine_images_per_s:.0f} img/s, plain loop "
                               f"{speed.plain_images_per_s:.0f} img/s, ratio {speed.ratio:.3f} "
                               f"(rounds {', '.join(f'{r:.3f}' for r in speed.ratios)})")
        return timing_record(
            "engine", f"engine-speed-{row}", pair, pair.recipes[bench.tier], bench.tier, bench.session,
            {"engine_speed_ratio": [speed.ratio]}, load.result,
            {"ratios": speed.ratios, "engine_images_per_s": speed.engine_images_per_s,
             "plain_images_per_s": speed.plain_images_per_s, "images": speed.images})

    bench.finish(measure(), remeasure=measure)
