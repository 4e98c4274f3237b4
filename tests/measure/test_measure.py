"""The machine probe's window: its wall and CPU rates from given samples (no clock is read)."""
import pytest

from zoo.measure.costs import ProbeWindow


class ScriptedProbe:
    """A probe whose samples are given: (wall seconds, CPU seconds over its threads)."""

    threads = 2

    def __init__(self, samples):
        self.samples = iter(samples)

    def sample(self):
        return next(self.samples)


def test_wall_rate_counts_every_sample_and_cpu_rate_takes_the_median_sample():
    # two idle samples, one throttled by a quota (wall doubles, CPU time does not), one on a slower host
    window = ProbeWindow(ScriptedProbe([(0.05, 0.1), (0.05, 0.1), (0.10, 0.1), (0.08, 0.16)]))
    for _ in range(3):
        window.sample()
    assert window.rate == pytest.approx(4 / 0.28)
    assert window.cpu_rate == pytest.approx(2 / 0.1)  # per thread: the quota's sample counts as an idle one


def test_cpu_rate_follows_a_slower_host():
    window = ProbeWindow(ScriptedProbe([(0.1, 0.2)] * 3))
    window.sample()
    window.sample()
    assert window.cpu_rate == pytest.approx(10.0) and window.rate == pytest.approx(10.0)
