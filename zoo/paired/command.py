"""`kdbench speed --base REF [BLOCK ...]`: the candidate tree timed against its base, paired, in one window."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.paired.names import DEFAULT_BLOCKS

if TYPE_CHECKING:  # the command's work imports torch; its parser (kdbench --help) does not
    from zoo.records.record import Record
    from zoo.verdicts.baselines import Verdict
    from zoo.verdicts.thresholds import ThresholdConfig


def add_parser(sub, common) -> None:
    s = sub.add_parser("speed", parents=[common],
                       help="time the working tree (or --candidate REF) against --base REF, paired, and judge each block")
    s.add_argument("blocks", nargs="*", metavar="BLOCK",
                   help=f"blocks to time (default: all {len(DEFAULT_BLOCKS)}: {', '.join(DEFAULT_BLOCKS)})")
    s.add_argument("--base", default=None, help="the base: a git ref (HEAD~1, main, a merge-base commit)")
    s.add_argument("--candidate", default=None, help="a git ref to time instead of the working tree")
    s.add_argument("--base-python", default=None,
                   help="the base's interpreter (e.g. a venv with another torch); without --base: the same tree")
    s.add_argument("--candidate-python", default=None, help="the candidate's interpreter (default: this one)")
    s.add_argument("--tier", default="quick", choices=("quick",), help="the tier whose recipes the blocks run")
    s.add_argument("--results", default=None, help="results root (default: results/ of the project)")
    s.add_argument("--check", action="store_true", help="exit 1 when a block fails")
    s.set_defaults(handler=cmd_speed)


def cmd_speed(args, history) -> int:
    from zoo.paired.ab import ABRequest, run_ab

    project, config = args.settings.project, args.settings.thresholds
    request = ABRequest(project=project, base_ref=args.base, candidate_ref=args.candidate,
                        base_python=args.base_python, candidate_python=args.candidate_python,
                        blocks=tuple(args.blocks) or DEFAULT_BLOCKS, tier=args.tier)
    records = run_ab(request, config, sys.executable, args.settings.cache_dir, log=lambda line: print(line, flush=True))
    verdicts = judge_and_store(records, Path(args.results or project / "results"), config)
    print(speed_table(verdicts))
    history.ingest(Path(args.results or project / "results"))
    failed = [v for v in verdicts if v.status == "fail"]
    return 1 if failed and args.check else 0


def judge_and_store(records: list[Record], results_root: Path, config: ThresholdConfig) -> list[Verdict]:
    """Write each record into a fresh session folder under `results_root` and judge it on its own pairs."""
    from zoo.records.results import record_path, session_results_dir, write_record
    from zoo.verdicts.baselines import judge_self_contained

    folder = session_results_dir(results_root, records[0].tier if records else "quick")
    verdicts = []
    for record in records:
        path = record_path(folder, record.key)
        write_record(path, record)
        verdicts.append(judge_self_contained(record, config, {"run": str(path)}))
    return verdicts


def speed_table(verdicts: list[Verdict]) -> str:
    """One line per block: verdict, ratio candidate / base with its bounds, pairs, and the block's size."""
    lines = [f"{'verdict':9} {'block':42} {'ratio':>7} {'bounds':>15} {'p slower':>9} {'pairs':>5} {'block s':>7}"]
    for verdict in verdicts:
        record = verdict.record
        finding = next((f for f in verdict.findings if f.metric == "ab_time_ratio"), None)
        status = (finding.status if finding else verdict.status).upper()
        block = record.summary.get("block", record.id)
        if finding is None or finding.ratio is None:
            lines.append(f"{status:9} {block:42} {finding.tolerance if finding else ''}")
            continue
        seconds = sorted(record.summary["base_seconds"])[len(record.summary["base_seconds"]) // 2]
        low, high = finding.interval
        lines.append(f"{status:9} {block:42} {finding.ratio:>7.3f} {f'{low:.3f}..{high:.3f}':>15} "
                     f"{finding.p_value:>9.2g} {len(record.metrics['ab_time_ratio']):>5} {seconds:>7.2f}")
    return "\n".join(lines)
