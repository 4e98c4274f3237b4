"""kdbench's training engine against a plain PyTorch loop, timed in one run: gated on any machine."""
import os

import pytest

from zoo.catalog.pairs import get_pair
from zoo.measure.costs import LoadMonitor
from zoo.measure.speed import engine_speed
from zoo.records.results import SCHEMA
from zoo.runs.runner import CODE_VERSION, timing_recipe_hash

pytestmark = pytest.mark.speed
CASES = ["mnist-mlp800-lr0.01", "mnist-mlp800-kd-lr0.01", "cifar10-cnn5-d0.5"]  # rows whose recipe is timed


@pytest.mark.parametrize("row", CASES)
def test_engine_speed(row, bench):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("timing comparisons run serially, never under xdist")
    pair = get_pair(row)
    data = bench.session.dataset(pair.dataset)

    def measure() -> dict:
        with LoadMonitor() as load:
            speed = engine_speed(pair, bench.tier, data, bench.session.opts)
        bench.session.opts.log(f"{row}: engine {speed.engine_images_per_s:.0f} img/s, plain loop "
                               f"{speed.plain_images_per_s:.0f} img/s, ratio {speed.ratio:.3f} "
                               f"(rounds {', '.join(f'{r:.3f}' for r in speed.ratios)})")
        recipe = pair.recipes[bench.tier]
        return {
            "schema": SCHEMA, "kind": "engine", "id": f"engine-speed-{row}", "tier": bench.tier,
            "dataset": pair.dataset, "dataset_fingerprint": data.fingerprint, "device": bench.session.opts.device.type,
            "switches": bench.session.switches, "student": str(pair.student), "recipe": recipe.as_dict(),
            "recipe_hash": timing_recipe_hash(pair, recipe, "engine-speed"),
            "code_version": CODE_VERSION, "seeds": [],
            "metrics": {"engine_speed_ratio": [speed.ratio]}, "load": load.result.as_dict(),
            "summary": {"ratios": speed.ratios, "engine_images_per_s": speed.engine_images_per_s,
                        "plain_images_per_s": speed.plain_images_per_s, "images": speed.images},
            "provenance": bench.session.provenance(),
        }

    bench.finish(measure(), remeasure=measure)
