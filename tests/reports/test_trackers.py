"""Export to the trackers labs run, read back through their own readers: MLflow (a real sqlite:/// tracking store,
its client API, and `mlflow ui` answering over HTTP) and TensorBoard (its event reader)."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.records.test_history import MNIST, session
from zoo.cli import main

BASELINES = MNIST.parents[2]
ROW = "mnist-mlp800-kd-lr0.01"


@pytest.fixture
def history_db(tmp_path) -> str:
    session(tmp_path / "results", "s1", 1)
    db = str(tmp_path / "h.sqlite")
    assert main(["history", "--rebuild", "--results", str(tmp_path / "results"), "--db", db]) == 0
    return db


def expected_runs() -> int:
    return sum(len(json.loads(p.read_text())["seeds"]) for p in MNIST.glob("mnist-*.json"))


def test_mlflow_runs_read_back_and_mlflow_ui_serves_them(history_db, tmp_path, capsys):
    pytest.importorskip("mlflow", reason="the `mlflow` extra is not installed")
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = ["--db", history_db, "--baselines", str(BASELINES), "--to", "mlflow", "--tracking-uri", uri]
    assert main(["export", "s1", *common]) == 0
    assert main(["export", "s1", *common]) == 0  # again: nothing is added twice
    assert f"0 MLflow runs of session s1 written to {uri}" in capsys.readouterr().out

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("kdbench")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert len(runs) == expected_runs()
    run = next(r for r in runs if r.info.run_name == f"{ROW}-seed0")
    recipe = json.loads((MNIST / f"{ROW}.json").read_text())["recipe"]
    assert run.data.params["recipe.lr"] == str(recipe["lr"]) == "0.01"
    assert run.data.params["recipe.distill.temperature"] == str(recipe["distill"]["temperature"])
    assert run.data.tags["kdbench.verdict"] == "pass" and run.data.tags["kdbench.tier"] == "quick"
    assert len(run.data.tags["kdbench.commit"]) == 40
    loss = client.get_metric_history(run.info.run_id, "train/loss")
    record = json.loads((MNIST / f"{ROW}.json").read_text())
    assert [m.step for m in loss] == list(range(1, len(record["runs"][0]["epochs"]) + 1))
    assert [m.value for m in loss] == [e["loss"] for e in record["runs"][0]["epochs"]]
    assert run.data.metrics["final/test_accuracy"] == record["metrics"]["test_accuracy"][0]

    if not shutil.which("mlflow"):
        pytest.skip("the mlflow command is not on PATH")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        found = _search_over_http(port, experiment.experiment_id)
        assert len(found) == expected_runs()
    finally:
        server.terminate()
        server.wait(30)


def _search_over_http(port: int, experiment_id: str, limit_s: float = 90) -> list:
    """The runs `mlflow ui` serves, through its REST API, once it answers."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/2.0/mlflow/runs/search", method="POST",
                                     data=json.dumps({"experiment_ids": [experiment_id], "max_results": 1000}).encode(),
                                     headers={"Content-Type": "application/json"})
    start = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())["runs"]
        except OSError:
            assert time.monotonic() - start < limit_s, "mlflow ui did not answer"
            time.sleep(1)


def test_tensorboard_scalars_read_back(history_db, tmp_path):
    pytest.importorskip("tensorboard", reason="the `tensorboard` extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    assert main(["export", "s1", "--db", history_db, "--baselines", str(BASELINES), "--to", "tensorboard",
                 "--out", str(out)]) == 0
    folders = sorted(p.parent for p in out.rglob("events.out.tfevents.*"))
    assert len(folders) == expected_runs()
    events = EventAccumulator(str(out / "quick" / f"{ROW}-seed0")).Reload()
    record = json.loads((MNIST / f"{ROW}.json").read_text())
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == list(range(1, len(record["runs"][0]["epochs"]) + 1))
    assert [e.value for e in loss] == pytest.approx([e["loss"] for e in record["runs"][0]["epochs"]], rel=1e-6)
    assert events.Scalars("final/test_accuracy")[0].value == pytest.approx(record["metrics"]["test_accuracy"][0])
    assert Path(out / "quick" / f"{ROW}-seed0").is_dir()
