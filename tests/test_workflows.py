"""The GitHub Actions workflows pass both linters, run what the README runs, and the linters can fail."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
INSTALL = 'python -m pip install -q -e ".[dev]"'
BROKEN = """\
on:
  nightly:
jobs:
  full:
    steps:
      - run: echo never
"""


def lint(tool: str, path: Path) -> subprocess.CompletedProcess:
    """Run `tool` on one workflow; a missing linter fails the test, it never skips it.

    actionlint reads the repository's .github/actionlint.yaml whatever the file's folder, and runs
    without its shellcheck and pyflakes integrations, so the verdict does not depend on what else
    the machine has installed.
    """
    executable = Path(sys.executable).with_name(tool)
    found = str(executable) if executable.exists() else shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is not installed: install the project with its linters, {INSTALL}", pytrace=False)
    args = {"check-jsonschema": ["--builtin-schema", "vendor.github-workflows"],
            "actionlint": ["-config-file", str(REPO / ".github" / "actionlint.yaml"),
                           "-shellcheck=", "-pyflakes=", "-no-color", "-oneline"]}[tool]
    return subprocess.run([found, *args, str(path)], cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False)


def load(name: str) -> tuple[dict, list[dict]]:
    """A workflow's triggers (YAML 1.1 reads the key `on` as True) and all its jobs' steps."""
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    return workflow[True], [step for job in workflow["jobs"].values() for step in job["steps"]]


def step_using(steps: list[dict], action: str) -> dict:
    (step,) = [s for s in steps if s.get("uses", "").startswith(f"{action}@")]
    return step


def scripts(steps: list[dict]) -> str:
    return "\n".join(s.get("run", "") for s in steps)


@pytest.mark.parametrize("tool", ["check-jsonschema", "actionlint"])
@pytest.mark.parametrize("name", ["nightly.yml", "ci.yml"])
def test_workflow_passes_the_linter(name, tool):
    result = lint(tool, WORKFLOWS / name)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("tool", ["check-jsonschema", "actionlint"])
def test_linter_fails_a_broken_workflow(tool, tmp_path):
    """An unknown trigger and a job without runs-on: proof that the lint test above can fail."""
    (tmp_path / "broken.yml").write_text(BROKEN)
    assert lint(tool, tmp_path / "broken.yml").returncode != 0


@pytest.mark.parametrize(("label", "returncode"), [("kdbench-gpu", 0), ("kdbench-gpux", 1)])
def test_actionlint_knows_only_the_declared_runner_labels(label, returncode, tmp_path):
    workflow = f"on: push\njobs:\n  a:\n    runs-on: {label}\n    steps:\n      - run: echo\n"
    (tmp_path / "label.yml").write_text(workflow)
    result = lint("actionlint", tmp_path / "label.yml")
    assert result.returncode == returncode, result.stdout + result.stderr


def test_nightly_runs_the_full_tier_into_the_history_and_reports_it():
    triggers, steps = load("nightly.yml")
    assert {"schedule", "workflow_dispatch"} <= set(triggers)
    assert INSTALL in scripts(steps) and "kdbench launch --tier full" in scripts(steps)
    assert "--timing" in scripts(steps) and "--bootstrap" in scripts(steps)  # speed gated; the first night records
    assert "GITHUB_STEP_SUMMARY" in scripts(steps)
    restore, save = step_using(steps, "actions/cache/restore"), step_using(steps, "actions/cache/save")
    assert restore["with"]["path"] == save["with"]["path"] == "results/history.sqlite"
    assert restore["with"]["key"] == save["with"]["key"]
    assert restore["with"]["key"].startswith(restore["with"]["restore-keys"])
    assert step_using(steps, "actions/upload-artifact")["if"] == "always()"
    full = yaml.safe_load((WORKFLOWS / "nightly.yml").read_text())["jobs"]["full"]["steps"]
    assert "steps.bench.outputs.rc" in str(full[-1])  # the verdict is the last word, after every report
    assert "kdbench site --out results/site" in scripts(steps) and step_using(steps, "actions/deploy-pages")


def test_ci_runs_the_unit_tests_and_the_quick_tier():
    triggers, steps = load("ci.yml")
    assert {"pull_request", "push"} <= set(triggers)
    assert INSTALL in scripts(steps)
    assert "pytest tests/" in scripts(steps) and "pytest bench/" in scripts(steps)
    assert step_using(steps, "actions/upload-artifact")["if"] == "always()"
    caches = {step["with"]["path"]: step["with"]["key"] for step in steps if step.get("uses", "").startswith("actions/cache@")}
    assert caches[".kdbench-cache/downloads"] == "${{ steps.data.outputs.key }}"  # keyed by the data's checksums
    assert "hashFiles('zoo/training/**')" in caches[".kdbench-cache/models"]
    comment = step_using(steps, "marocchino/sticky-pull-request-comment")
    assert comment["with"] == {"header": "kdbench", "path": "verdicts.md"}  # one comment, updated per push
    assert "kdbench compare latest baselines --format markdown" in scripts(steps) and "GITHUB_STEP_SUMMARY" in scripts(steps)


@pytest.mark.parametrize("tool", ["check-jsonschema", "actionlint"])
def test_the_workflow_kdbench_init_writes_passes_the_linter(tmp_path, tool):
    from zoo.project.scaffold import init_project

    init_project(tmp_path / "theirs")
    result = lint(tool, tmp_path / "theirs" / ".github" / "workflows" / "kdbench.yml")
    assert result.returncode == 0, result.stdout + result.stderr
