"""The poster's claims, tested on kdbench's records at the n they hold.

Each claim gets an effect, a one-sided Welch p-value and a verdict:
  reproduced                 the effect goes the claimed way and p < ALPHA;
  contradicted               it goes the other way and p < ALPHA;
  not detectable at this n   neither; the n per arm that would detect the claimed effect (80% power)
                             is given, from the tier's seed sd pooled as the gate pools it;
  needs rows not recorded    the rows are not in this tier's records (e.g. GPU rows on a CPU machine).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from zoo.catalog.pairs import control_of
from zoo.records.record import Record
from zoo.verdicts.gates import seed_spreads
from zoo.verdicts.stats import mean_std, pooled_std, seeds_needed, welch_one_sided

ALPHA = 0.05
UNLABELED_MARGIN = 0.5  # pt: "approaches" = unlabeled KD falls short of the labeled student by less than this
TEACHER_RANKING = ("wrn28_10", "preresnet110", "densenet100", "resnext29_8x64d")  # poster: weakest to strongest


@dataclass
class Claim:
    claim: str
    rows: str
    effect: float | None
    p: float | None
    n: str
    verdict: str
    detail: str = ""


def _acc(record: Record) -> list[float]:
    return record.metrics.get("test_accuracy") or []


def _gap(record: Record) -> list[float]:
    """Per seed: last-epoch training accuracy minus test accuracy (the generalisation gap)."""
    return [r["epochs"][-1]["train_accuracy"] - r["test_accuracy"] for r in record.runs]


def _verdict(a: list[float], b: list[float], claimed: float | None, sigma: float | None, margin: float = 0.0
             ) -> tuple[float, float | None, str, str]:
    """Effect mean(a) - mean(b), one-sided p that it exceeds -margin, the verdict and its detail."""
    effect = mean_std(a)[0] - mean_std(b)[0]
    p_for = welch_one_sided(a, b, margin)
    p_against = welch_one_sided(b, a, -margin)
    if p_for is not None and p_for < ALPHA and effect > -margin:
        return effect, p_for, "reproduced", ""
    if p_against is not None and p_against < ALPHA:
        return effect, p_against, "contradicted", ""
    target = claimed if claimed and claimed > 0 else abs(effect) + margin
    detail = (f"detecting {target:.2f} pt needs {seeds_needed(sigma, target)} seeds per arm (sd {sigma:.3g})"
              if sigma and target > 0 else "no seed spread to size n")
    return effect, p_for, "not detectable at this n", detail


def _n(a: list, b: list) -> str:
    return f"{len(a)} vs {len(b)}"


def _study_effect(row: Record, control: Record) -> float | None:
    s, c = row.study, control.study
    if s and c and s.get("best") is not None and c.get("best") is not None:
        return s["best"] - c["best"]
    return None


def claims(records: list[dict]) -> list[Claim]:
    """Every claim of the poster, tested on one tier's records (all datasets)."""
    pairs = [r for r in records if r.kind == "pair"]
    by_id = {r.id: r for r in pairs}
    sigma = {d: seed_spreads([r for r in pairs if r.dataset == d])["test_accuracy"].sigma
             for d in {r.dataset for r in pairs}}  # pooled as the gate pools it
    out: list[Claim] = []
    kd_rows = [(r, by_id[control_of(r)]) for r in pairs if r.teacher and control_of(r) in by_id
               and _acc(r) and _acc(by_id[control_of(r)])]
    for row, control in kd_rows:
        if row.recipe["distill"].get("unlabeled"):
            continue
        effect, p, verdict, detail = _verdict(_acc(row), _acc(control), _study_effect(row, control), sigma[row.dataset])
        out.append(Claim("KD beats no-KD", f"{row.id} vs {control.id}", effect, p,
                         _n(_acc(row), _acc(control)), verdict, detail))
    for row, control in kd_rows:
        if not row.recipe["distill"].get("unlabeled"):
            continue
        effect, p, verdict, detail = _verdict(_acc(row), _acc(control), None, sigma[row.dataset], UNLABELED_MARGIN)
        out.append(Claim(f"unlabeled KD approaches labeled (within {UNLABELED_MARGIN} pt)",
                         f"{row.id} vs {control.id}", effect, p, _n(_acc(row), _acc(control)), verdict, detail))
    out.append(_teacher_ranking(by_id, sigma.get("cifar10")))
    for row, control in kd_rows:
        if row.recipe["augment"] != control.recipe["augment"] or not _gap(row) or not _gap(control):
            continue
        effect, p, verdict, detail = _verdict(_gap(control), _gap(row), None,
                                              pooled_std([_gap(control), _gap(row)])[0])
        out.append(Claim("dark knowledge regularises: KD narrows the train-test gap (pt)",
                         f"{row.id} vs {control.id}", effect, p, _n(_gap(row), _gap(control)), verdict, detail))
    return out


def _teacher_ranking(by_id: dict, sigma: float | None) -> Claim:
    ids = [f"cifar10-resnet18-kd-{t}" for t in TEACHER_RANKING]
    claim = "teacher ranking for ResNet-18: " + " < ".join(TEACHER_RANKING)
    missing = [i for i in ids if i not in by_id or len(_acc(by_id[i])) < 2]
    if missing:
        return Claim(claim, ", ".join(ids), None, None, "", "needs rows not recorded",
                     f"no accuracy of >= 2 seeds for {', '.join(missing)} in this tier: full-tier GPU baselines")
    steps = [_verdict(_acc(by_id[hi]), _acc(by_id[lo]), _study_effect(by_id[hi], by_id[lo]), sigma)
             for lo, hi in zip(ids, ids[1:])]
    verdicts = {s[2] for s in steps}
    verdict = ("contradicted" if "contradicted" in verdicts else
               "reproduced" if verdicts == {"reproduced"} else "not detectable at this n")
    return Claim(claim, ", ".join(ids), min(s[0] for s in steps), max(s[1] or 1.0 for s in steps),
                 ", ".join(str(len(_acc(by_id[i]))) for i in ids), verdict,
                 "effect: smallest adjacent difference; p: largest adjacent p; " + "; ".join(s[3] for s in steps if s[3]))


def render_claims(tier: str, device: str, records: list[dict]) -> str:
    """A section per claim: its rows' effect, p, n and verdict in a table, and what a verdict rests on as notes."""
    found = claims(records)
    study = tier == "full"
    lines = [
        f"# The poster's claims tested on kdbench's {tier} tier ({device})", "",
        "Generated by `zoo.reports.claims` from result records; do not edit. One-sided Welch t-tests at α = "
        f"{ALPHA}; Δ in points; 'not detectable' (at the n the records hold) gives the seeds per arm that would "
        "detect the claimed effect (the study's "
        "own KD gain where it printed both figures) with 80% power.",
        "" if study else "This tier does not run the study's recipes: its verdicts are about kdbench's shrunk "
        "recipes, not the study's.", ""]
    for claim in dict.fromkeys(c.claim for c in found):
        tested = [c for c in found if c.claim == claim]
        table = pd.DataFrame([{
            **_row_and_reference(c), "Δ pt": _signed(c.effect), "p": "" if c.p is None else f"{c.p:.2g}",
            "n": c.n, "verdict": c.verdict.removesuffix(" at this n")} for c in tested])
        notes = [f"- {_row_and_reference(c)['row']}: {c.detail or c.rows}" for c in tested
                 if c.detail or " vs " not in c.rows]
        lines += [f"## {claim}", "", table.to_markdown(index=False, disable_numparse=True), ""]
        if notes:
            lines += ["Notes:", "", *notes, ""]
    return "\n".join(lines)


def _row_and_reference(claim: Claim) -> dict[str, str]:
    """The row a claim tests and the row it is tested against ('KD vs control'); a claim over many rows counts them."""
    row, _, reference = claim.rows.partition(" vs ")
    if not reference:
        return {"row": f"{len(claim.rows.split(', '))} rows", "vs": ""}
    return {"row": row, "vs": reference}


def _signed(effect: float | None) -> str:
    return "" if effect is None else f"{effect:+.2f}"
