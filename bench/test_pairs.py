"""Every row of the catalogue trained under fixed seeds, measured and gated against its baseline (zoo.suite.rows)."""
from zoo.suite.rows import test_pair as test_pair
