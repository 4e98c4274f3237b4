"""The pair table is consistent, and the documented selections pick exactly the intended rows."""
import subprocess
import sys
from pathlib import Path

from zoo.catalog.pairs import PAIRS, get_pair, pairs_for
from zoo.catalog.study import records
from zoo.records.results import load_record
from zoo.training.registry import list_models

REPO = Path(__file__).resolve().parents[2]


def test_rows_are_consistent():
    models = set(list_models())
    for pair in PAIRS:
        assert pair.student.name in models, pair.id
        for tier, recipe in pair.recipes.items():
            if recipe.distill:
                teacher = get_pair(pair.teacher[tier])
                assert tier in teacher.recipes and teacher.dataset == pair.dataset, pair.id
                assert pair.control and get_pair(pair.control).recipes.get(tier), pair.id
    grid_cells = {p.id for p in PAIRS if p.study and p.study.grid_cell}
    full_grid_only = {p.id for p in PAIRS if p.scheme == "alpha-temp" and "quick" not in p.recipes}
    assert len(full_grid_only) == 45 - 9
    deep_distillers = {"cifar10-resnet18-at-resnext29_8x64d", "cifar10-resnet18-fitnets-resnext29_8x64d"}
    assert {p.id for p in pairs_for("quick")} == {p.id for p in PAIRS} - grid_cells - full_grid_only - deep_distillers


def test_poster_figures_trace_to_their_records():
    figures = {p.id: (p.study.best, p.study.last, p.study.selection) for p in PAIRS if p.study}
    assert figures["cifar10-cnn5-d0.5-kd-a0.95-t2"] == (84.494, 84.454, "best of 29 grid cells on test (each at its best epoch)")
    assert figures["cifar10-cnn5-d0-kd-a0.5-t1.5"][:2] == (85.690, 85.690)
    assert figures["cifar10-cnn5-5pct-kd-a0.01-t20"][:2] == (66.713, 66.050)
    assert figures["cifar10-cnn5-d0.5-kd"][:2] == (83.910, 83.772)  # the default recipe's own record
    assert figures["cifar10-resnet18-kd-resnext29_8x64d"][:2] == (94.788, 94.541)
    assert figures["mnist-mlp800-kd-unlabeled-lr0.1"] == (98.16, None, "poster figure (the script kept no record)")
    assert all(not p.study for p in PAIRS if p.correction) and any(p.correction for p in PAIRS)


def test_faithful_rows_run_their_records_recipe():
    """Every row with a study record runs, in its full tier, the recipe that record's params.json states."""
    checked = 0
    for pair in PAIRS:
        if not pair.study or pair.study.poster is not None:
            continue
        row, recipe = records()[pair.study.record], pair.recipes["full"]
        kd = recipe.distill
        assert float(row["lr"]) == recipe.lr and int(row["batch_size"]) == recipe.batch_size, pair.id
        assert int(row["epochs"]) == recipe.epochs, pair.id
        if row["model"].startswith("cnn"):
            assert float(row["dropout"]) == dict(pair.student.kwargs)["dropout"], pair.id
            assert float(row["subset"] or 1.0) == recipe.train_subset, pair.id
            augmentation = row["augmentation"] or "yes"  # grid cells omit it; their parent folders say yes
            assert (augmentation == "yes") == recipe.augment, pair.id
        if kd:
            assert (float(row["alpha"]), float(row["temperature"])) == (kd.alpha, kd.temperature), pair.id
            assert kd.kl_reduction == "elementwise" and kd.kl_scale == 1, pair.id  # nn.KLDivLoss() mean
        else:
            assert float(row["alpha"] or 0) == 0, pair.id
        checked += 1
    assert checked == 14


def test_mnist_students_train_without_weight_decay():
    for pair in PAIRS:
        if pair.dataset == "mnist" and pair.student.name == "mlp800":
            assert all(r.weight_decay == 0 for r in pair.recipes.values()), pair.id
            kd = pair.recipes["full"].distill
            if kd and not pair.correction:  # distill_mnist.py doubles the soft term, distill_mnist_unlabeled.py not
                assert (kd.kl_reduction, kd.kl_scale) == ("elementwise", 1.0 if kd.unlabeled else 2.0), pair.id


def collect(*args: str) -> set[str]:
    run = subprocess.run([sys.executable, "-m", "pytest", "bench/", "--collect-only", "-q", "-p", "no:cacheprovider",
                          *args], cwd=REPO, capture_output=True, text=True)
    assert run.returncode in (0, 5), run.stdout[-2000:] + run.stderr[-2000:]  # 5: nothing collected
    out = run.stdout
    return {line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if line.startswith("bench/test_pairs.py")}


def test_full_k_resnet_selects_exactly_the_resnet18_section():
    deep = {p.id for p in pairs_for("full") if "resnet" in p.markers and not {"sweep", "distillers"} & set(p.markers)}
    assert collect("--full", "-k", "resnet") == deep
    assert deep == {"cifar10-resnet18", "cifar10-wrn28_10", "cifar10-preresnet110", "cifar10-densenet100",
                    "cifar10-resnext29_8x64d", "cifar10-resnet18-kd-wrn28_10", "cifar10-resnet18-kd-preresnet110",
                    "cifar10-resnet18-kd-densenet100", "cifar10-resnet18-kd-resnext29_8x64d",
                    "cifar10-cnn5-d0.5-kd", "cifar10-cnn5-d0-kd", "cifar10-cnn5-5pct-kd",
                    "cifar10-cnn5-d0.5-kd-batchmean", "cifar10-cnn5-d0.5-kd-a0.95-t2", "cifar10-cnn5-d0-kd-a0.5-t1.5",
                    "cifar10-cnn5-5pct-kd-a0.01-t20"}


def test_default_tier_is_quick():
    assert collect() == {p.id for p in pairs_for("quick") if not {"sweep", "distillers"} & set(p.markers)}
    assert collect("--distillers", "-m", "distillers") == {"cifar10-cnn5-d0-at", "cifar10-cnn5-d0-fitnets",
                                                           "mnist-mlp800-datafree-top-lr0.01",
                                                           "mnist-mlp800-datafree-all-lr0.01"}


def test_sweep_rows_run_only_with_sweeps():
    sweeps = {p.id for p in pairs_for("quick") if "sweep" in p.markers}
    assert len(sweeps) == 20 and all(get_pair(i).scheme for i in sweeps)
    assert collect("--sweeps", "-m", "sweep") == sweeps
    assert collect("--sweeps", "--distillers") == {p.id for p in pairs_for("quick")}
    assert collect("-m", "sweep") == set()  # without --sweeps they stay deselected


def test_the_alpha_temp_grid_is_the_studys():
    from zoo.catalog.pairs import QUICK_GRID, STUDY_SUBSET_GRID

    cells = {(float(r["alpha"]), float(r["temperature"])) for f, r in records().items()
             if f.startswith("experiments/cnn_distill_subset/")}
    assert cells == {(a, t) for a in STUDY_SUBSET_GRID[0] for t in STUDY_SUBSET_GRID[1]}
    assert set(QUICK_GRID[0]) <= set(STUDY_SUBSET_GRID[0]) and set(QUICK_GRID[1]) <= set(STUDY_SUBSET_GRID[1])


def test_partial_data_rows_reuse_the_5pct_rows_and_see_20k_images():
    from zoo.catalog.pairs import PARTIAL_DATA_FRACTIONS

    quick = {p.recipes["quick"].train_subset: p for p in PAIRS if p.scheme == "partial-data" and not p.recipes["quick"].distill}
    assert sorted(quick) == sorted(PARTIAL_DATA_FRACTIONS) and quick[0.05].id == "cifar10-cnn5-5pct"
    for fraction, pair in quick.items():
        seen = 50_000 * fraction * pair.recipes["quick"].epochs
        assert 20_000 <= seen <= 50_000, pair.id


def test_every_committed_baseline_belongs_to_a_benchmark():
    """A row renamed or removed must take its baseline along: an orphan would stand on the leaderboard."""
    pair_ids = {p.id for p in PAIRS}
    for path in (REPO / "baselines").rglob("*.json"):
        record = load_record(path)
        if record.kind == "pair":
            assert record.id in pair_ids, f"{path}: no row {record.id!r} in zoo/catalog/pairs.py"
        assert path.stem == record.id and path.parts[-4:-1] == (record.tier, record.dataset, record.device)


def test_every_committed_baseline_matches_the_current_recipe():
    """A recipe change must re-record its baselines in the same commit: CI would refuse them as incompatible."""
    from zoo.runs.row_records import recipe_hash, timing_recipe_hash
    from zoo.suite.engine_speed import CASES as ENGINE_ROWS
    from zoo.suite.loader_speedup import CASES as LOADER_ROWS

    for path in (REPO / "baselines").rglob("*.json"):
        record = load_record(path)
        tier, kind = record.tier, record.kind
        if kind == "pair":
            expected = recipe_hash(get_pair(record.id), tier)
        elif kind == "engine":
            row = record.id.removeprefix("engine-speed-")
            assert row in ENGINE_ROWS, path
            expected = timing_recipe_hash(get_pair(row), get_pair(row).recipes[tier], "engine-speed")
        elif kind == "loader":
            pair = get_pair(LOADER_ROWS[record.id.removeprefix("loader-speedup-")])
            expected = timing_recipe_hash(pair, pair.recipes[tier].replace(epochs=1), "loader")
        else:
            continue  # inference speed: hashed on the model and batch alone
        assert record.recipe_hash == expected, f"{path} was recorded for another recipe: re-record it"


def test_every_row_names_a_registered_dataset_and_model():
    from zoo.training.data import dataset_spec

    for pair in PAIRS:
        dataset_spec(pair.dataset)  # a registered dataset, or an error listing them
        assert pair.student.name in list_models(), f"{pair.id}: model {pair.student.name!r} is not registered"


def test_every_pair_baseline_carries_its_rows_spread_family():
    """The verdicts pool seeds by the record's `spread_family` (no distiller lookup): every committed
    baseline holds the family its row's distiller declares (records before it were migrated)."""
    from zoo.training.distill.registry import spread_family

    baselines = [load_record(p) for p in sorted((Path(__file__).resolve().parents[2] / "baselines").rglob("*.json"))]
    pairs = [b for b in baselines if b.kind == "pair"]
    assert pairs, "no pair baselines found"
    for b in pairs:
        assert b.spread_family == spread_family(get_pair(b.id).recipes[b.tier].distill), b.id
    assert {b.id for b in pairs if b.spread_family == "data-free"} >= {"mnist-mlp800-datafree-top-lr0.01"}
