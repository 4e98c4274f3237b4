"""The pair table is consistent, and the documented selections pick exactly the intended rows."""
import subprocess
import sys
from pathlib import Path

from zoo.pairs import PAIRS, get_pair, pairs_for
from zoo.registry import list_models

REPO = Path(__file__).resolve().parents[1]


def test_rows_are_consistent():
    models = set(list_models())
    for pair in PAIRS:
        assert pair.student.name in models, pair.id
        for tier, recipe in pair.recipes.items():
            if recipe.distill:
                teacher = get_pair(pair.teacher[tier])
                assert tier in teacher.recipes and teacher.dataset == pair.dataset, pair.id
                assert pair.control and get_pair(pair.control).recipes.get(tier), pair.id
    assert len(pairs_for("quick")) == len(PAIRS)  # every row is covered on the CPU


def test_study_references_are_the_published_figures():
    refs = {p.id: p.reference for p in PAIRS if p.reference is not None}
    assert refs["mnist-mlp1200-teacher"] == 98.30 and refs["cifar10-resnet18-kd-resnext29_8x64d"] == 94.788
    assert refs["cifar10-cnn5-5pct-kd"] == 66.71


def collect(*args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--collect-only", "-q", "-p", "no:cacheprovider",
                          *args], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return {line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if line.startswith("bench/test_pairs.py")}


def test_full_k_resnet_selects_exactly_the_resnet18_section():
    deep = {p.id for p in pairs_for("full") if "resnet" in p.markers}
    assert collect("--full", "-k", "resnet") == deep
    assert deep == {"cifar10-resnet18", "cifar10-wrn28_10", "cifar10-preresnet110", "cifar10-densenet100",
                    "cifar10-resnext29_8x64d", "cifar10-resnet18-kd-wrn28_10", "cifar10-resnet18-kd-preresnet110",
                    "cifar10-resnet18-kd-densenet100", "cifar10-resnet18-kd-resnext29_8x64d",
                    "cifar10-cnn5-d0.5-kd", "cifar10-cnn5-d0-kd", "cifar10-cnn5-5pct-kd"}


def test_default_tier_is_quick_and_covers_every_row():
    assert collect() == {p.id for p in PAIRS}
