"""Why a judge on the mini suite is right or wrong, read from a finished eval run: its verdicts
against the winner its own final justification names, and its per-rule "Meets it" / "Fails it"
claims against the official verifiers' results for the same responses.

    python -m rubric_arm.reproduce.judge_audit runs/eval/mini64-sft runs/eval/mini64-verdict

A claim is checked only where the judged rubric has as many hard rules as the pair has
verified instructions (the warm-up rubrics list them in order), so claim k is about
instruction k. P(Meets | passes) = P(Meets | fails) means the claims carry no information.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from rubric_arm.data.mini import load_mini
from rubric_arm.harness.report import wilson_interval
from rubric_arm.records import JudgeRecord, read_records
from rubric_arm.types import PreferencePair, as_shown

STATED = re.compile(
    r"Response ([AB]) (?:meets more|passes more|is the reference)|in favour of\s+Response ([AB])"
)
RULE = re.compile(r"Criterion \d+ \[Hard Rule\]: Justification: (Meets it|Fails it)")


@dataclass
class Audit:
    """Counts over the first judgment of every judged pair of one run."""

    judged: int = 0
    correct: int = 0
    first_shown: int = 0
    stated: int = 0
    stated_correct: int = 0
    agree: int = 0
    claims: int = 0
    claims_correct: int = 0
    meets_when_passes: int = 0
    passes: int = 0
    meets_when_fails: int = 0
    fails: int = 0

    def add(self, other: Audit) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def stated_winner(text: str) -> str | None:
    """The winner the final justification names (shown order), or None."""
    final = text.split("--- Final Judgment ---", 1)[-1]
    m = STATED.search(final)
    return None if m is None else (m.group(1) or m.group(2))


def rule_claims(text: str) -> dict[str, list[bool]]:
    """Per shown response, the hard-rule claims in order (True: "Meets it")."""
    body = text.split("--- Final Judgment ---", 1)[0]
    parts = re.split(r"\*\*Response ([AB]):\*\*", body)
    out: dict[str, list[bool]] = {}
    for label, section in zip(parts[1::2], parts[2::2], strict=False):
        out.setdefault(label, [m.group(1) == "Meets it" for m in RULE.finditer(section)])
    return out


def _truth(pair: PreferencePair, original: str) -> list[bool] | None:
    key = "chosen_verification" if original == pair.label else "rejected_verification"
    loose = (pair.metadata.get(key) or {}).get("loose")
    return [bool(x) for x in loose] if isinstance(loose, list) else None


def audit_record(rec: JudgeRecord, pair: PreferencePair) -> Audit:
    """The audit counts of one record (its first judgment)."""
    a = Audit()
    judgments = rec.judgments
    if rec.status != "ok" or not judgments or pair.label is None:
        return a
    j = judgments[0]
    order, text, winner = j.order, j.text, j.winner
    a.judged = 1
    a.correct = int(winner == pair.label)
    a.first_shown = int(winner is not None and as_shown(winner, order) == "A")
    said = stated_winner(text)
    if said is not None:
        a.stated = 1
        a.stated_correct = int(as_shown(said, order) == pair.label)
        a.agree = int(winner is not None and as_shown(winner, order) == said)
    for shown, claims in rule_claims(text).items():
        truth = _truth(pair, as_shown(shown, order) or shown)
        if truth is None or len(truth) != len(claims):
            continue
        for claim, passed in zip(claims, truth, strict=True):
            a.claims += 1
            a.claims_correct += int(claim == passed)
            if passed:
                a.passes += 1
                a.meets_when_passes += int(claim)
            else:
                a.fails += 1
                a.meets_when_fails += int(claim)
    return a


def audit_run(run: Path) -> Audit:
    """Audit every record of a mini-suite eval run folder."""
    pairs = {p.id: p for p in load_mini("heldout")}
    total = Audit()
    for rec in read_records(run / "records.jsonl"):
        if rec.id in pairs:
            total.add(audit_record(rec, pairs[rec.id]))
    return total


def _rate(k: int, n: int) -> str:
    if n == 0:
        return "n/a (n=0)"
    low, high = wilson_interval(k, n)
    return f"{100 * k / n:.1f} [{100 * low:.1f}, {100 * high:.1f}] (n={n})"


def audit_table(runs: Sequence[tuple[str, Audit]]) -> str:
    """Markdown: one row per run, rates in % with 95% Wilson intervals."""
    head = (
        "| run | verdict correct | verdict = response shown first | stated reason correct | "
        "verdict agrees with stated reason | rule claims correct | P(Meets \\| passes) | "
        "P(Meets \\| fails) |\n|---|---|---|---|---|---|---|---|"
    )
    rows = [
        f"| {name} | {_rate(a.correct, a.judged)} | {_rate(a.first_shown, a.judged)} | "
        f"{_rate(a.stated_correct, a.stated)} | {_rate(a.agree, a.stated)} | "
        f"{_rate(a.claims_correct, a.claims)} | {_rate(a.meets_when_passes, a.passes)} | "
        f"{_rate(a.meets_when_fails, a.fails)} |"
        for name, a in runs
    ]
    return "\n".join([head, *rows])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="eval run folders on the mini suite")
    args = parser.parse_args(argv)
    print(audit_table([(str(r), audit_run(r)) for r in args.runs]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
