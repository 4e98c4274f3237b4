"""A paired A/B run from what the user named (refs, interpreters, blocks) to one "ab" record per block."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from zoo.catalog.pairs import get_pair
from zoo.paired.names import DEFAULT_BLOCKS, BlockName
from zoo.paired.session import BlockTiming, PairedRunError, Schedule, Side, run_pairs, worktree
from zoo.records.record import Record
from zoo.records.results import provenance
from zoo.verdicts.paired import judge_pairs
from zoo.verdicts.thresholds import ThresholdConfig

WORKING_TREE = "working tree"


@dataclass(frozen=True)
class ABRequest:
    """What to time: the two sides, the blocks and the tier."""

    project: Path  # the repository the refs belong to (the candidate's working tree by default)
    base_ref: str | None  # None: the candidate's tree (then base_python must differ)
    candidate_ref: str | None = None  # None: the working tree at `project`
    base_python: str | None = None
    candidate_python: str | None = None
    blocks: tuple[str, ...] = DEFAULT_BLOCKS
    tier: str = "quick"
    worktrees: Path | None = None  # where refs are checked out (default <cache>/worktrees)


def record_id(block: str) -> str:
    """The record id of a block: ab-KIND-ROW[-hint] (a row pattern of [[tool.kdbench.rows]] can match it)."""
    name = BlockName.parse(block)
    return f"ab-{name.kind}-{name.row}" + ("-hint" if name.stage == "hint" else "")


def sides(request: ABRequest, default_python: str, worktrees: Path) -> tuple[Side, Side]:
    """The base and candidate sides the request names."""
    if request.base_ref is None and request.base_python is None:
        raise PairedRunError("name a base: --base REF (a commit, branch or tag), or --base-python PYTHON for the "
                             "same tree under another interpreter")
    candidate_tree = (worktree(request.project, request.candidate_ref, worktrees) if request.candidate_ref
                      else request.project)
    base_tree = worktree(request.project, request.base_ref, worktrees) if request.base_ref else candidate_tree
    base = Side("base", base_tree, request.base_python or default_python,
                request.base_ref or request.candidate_ref or WORKING_TREE)
    candidate = Side("candidate", candidate_tree, request.candidate_python or default_python,
                     request.candidate_ref or WORKING_TREE)
    return base, candidate


def run_ab(request: ABRequest, config: ThresholdConfig, default_python: str, cache_dir: Path,
           env: dict[str, str] | None = None, log: Callable[[str], None] = print) -> list[Record]:
    """Time every block of `request` on both sides in one window; one record per block."""
    for block in request.blocks:  # a bad name is an error before any process starts
        get_pair(BlockName.parse(block).row)
    base, candidate = sides(request, default_python, request.worktrees or cache_dir / "worktrees")
    settings = config.project_wide()
    schedule = Schedule(int(settings["speed.pairs"].value), int(settings["speed.max_pairs"].value),
                        settings["speed.block_seconds"].value, int(settings["speed.slices"].value))

    def judge(block: str, timing: BlockTiming):
        limits = config.for_row(record_id(block))
        return judge_pairs(timing.ratios, limits["speed.margin"].value, limits["speed.alpha"].value)

    env = {"KDBENCH_CACHE": str(Path(cache_dir).resolve()), **(env or {})}
    if os.environ.get("KDBENCH_DATA"):  # the workers run in their own trees: a relative root would move
        env.setdefault("KDBENCH_DATA", str(Path(os.environ["KDBENCH_DATA"]).resolve()))
    base_identity, candidate_identity, timings = run_pairs(base, candidate, list(request.blocks), request.tier,
                                                           schedule, judge, env, log)
    origin = provenance(torch.device("cpu"))
    return [ab_record(t, request.tier, base_identity, candidate_identity, base, candidate, schedule, origin)
            for t in timings]


def ab_record(timing: BlockTiming, tier: str, base_identity: dict, candidate_identity: dict, base: Side,
              candidate: Side, schedule: Schedule, origin: dict) -> Record:
    pair = get_pair(BlockName.parse(timing.name).row)
    metrics = {"ab_time_ratio": timing.ratios} if not timing.problem else {}
    summary = {
        "block": timing.name,
        "base": base_identity | {"ref": base.ref}, "candidate": candidate_identity | {"ref": candidate.ref},
        "base_seconds": timing.base_seconds, "candidate_seconds": timing.candidate_seconds,
        "base_turns": timing.base_turns, "candidate_turns": timing.candidate_turns,
        "cpu_time_ratios": timing.cpu_ratios, "orders": timing.orders,
    }
    if timing.problem:
        summary["problem"] = timing.problem
        summary["missing_in_base"] = timing.missing_in_base
    return Record(
        kind="ab", id=record_id(timing.name), tier=tier, dataset=pair.dataset, device="cpu", metrics=metrics,
        provenance=origin, student=str(pair.student),
        recipe={"block": timing.name, "steps": timing.steps, "block_seconds": schedule.block_seconds,
                "pairs": schedule.pairs, "max_pairs": schedule.max_pairs, "slices": schedule.slices},
        summary=summary,
    )
