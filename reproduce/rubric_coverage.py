"""Does the rubric generator name the prompt's verifiable constraints? A coverage audit.

Explicit aggregation checks each response against the rubric's hard rules, so a rubric whose hard
rules are generic ("addresses the request directly") gives the judge nothing to check, however good
its check is. This audit compares each held-out instruction-following prompt's generated hard rules
with the constraints its verifier tests (worded as in the warm-up rubrics,
`warmup_mini.instruction_requirement`):

- covered: share of verifiable constraints that some generated hard rule names (at least
  `--recall` of the constraint's content words, numbers included, appear in one hard rule);
- distinct: distinct hard-rule texts over all prompts (a collapsed generator writes one);
- generic: share of generated hard rules that name no constraint of their prompt.

With `--runs`, a second table asks how good the judge's check is where the rubric gives it
something to check: over constraints that split a pair (one response passes the verifier, the
other fails) and that a checked hard rule names, the share where that rule's P(Meets) favours the
passing response (read from the records' explicit-aggregation summaries).

    python -m rubric_arm.reproduce.rubric_coverage --runs runs/eval/mini/trained   # eval records
    python -m rubric_arm.reproduce.rubric_coverage --generator runs/.../sft-generator [--limit 40]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rubric_arm.checklist import checked_criteria, parse_summary
from rubric_arm.data.mini import load_mini
from rubric_arm.harness.report import wilson_interval
from rubric_arm.pipeline import RubricARM, prompt_key
from rubric_arm.rubric import parse_rubric
from rubric_arm.trainer.warmup_mini import (
    NAME_RECALL,
    names_constraint,
    rubric_items,
    rule_outcomes,
)
from rubric_arm.types import PreferencePair


@dataclass(frozen=True)
class PromptCoverage:
    """One prompt: its verifiable constraints and the generator's hard rules for it."""

    pair_id: str
    subset: str
    requirements: tuple[str, ...]
    hard_rules: tuple[str, ...]
    covered: int
    generic: int


def prompt_coverage(pair: PreferencePair, rubric_text: str, recall: float) -> PromptCoverage:
    """Which of the pair's constraints the rubric's hard rules name, and which rules name none."""
    reqs = tuple(t for t, kind in rubric_items(pair) if kind == "hard_rule")
    rules = tuple(c.text for c in parse_rubric(rubric_text).criteria if c.kind == "hard_rule")
    covered = sum(any(names_constraint(r, q, recall) for r in rules) for q in reqs)
    generic = sum(not any(names_constraint(r, q, recall) for q in reqs) for r in rules)
    return PromptCoverage(pair.id, pair.subset, reqs, rules, covered, generic)


def summarize(rows: Sequence[PromptCoverage]) -> dict[str, object]:
    """Covered constraints, generic rules and distinct rule texts, with Wilson 95% intervals."""
    n_req = sum(len(r.requirements) for r in rows)
    n_rules = sum(len(r.hard_rules) for r in rows)
    covered = sum(r.covered for r in rows)
    generic = sum(r.generic for r in rows)
    return {
        "prompts": len(rows),
        "constraints": n_req,
        "covered": covered,
        "covered_ci": wilson_interval(covered, n_req) if n_req else None,
        "hard_rules": n_rules,
        "generic": generic,
        "generic_ci": wilson_interval(generic, n_rules) if n_rules else None,
        "distinct_rules": len({t for r in rows for t in r.hard_rules}),
        "no_hard_rule": sum(not r.hard_rules for r in rows),
    }


@dataclass(frozen=True)
class NamedCheck:
    """One held-out constraint that splits its pair (one response passes the verifier, the other
    fails) and that a checked hard rule names: did the check favour the passing response?"""

    pair_id: str
    family: str
    credit: float  # 1 the passing response got the higher P(Meets), 0.5 a tie, 0 the other


def named_checks(run: Path, recall: float) -> list[NamedCheck]:
    """The judge's explicit checks (`checklist.ChecklistScore.summary` in each record) on the
    hard rules that name a splitting constraint: the check quality behind the covered pairs."""
    pairs = {p.id: p for p in load_mini("heldout") if p.metadata.get("instruction_id_list")}
    out = []
    with (run / "records.jsonl").open() as f:
        for line in f:
            rec = json.loads(line)
            pair = pairs.get(rec["id"])
            score = parse_summary(rec["judgments"][0]["text"]) if rec.get("judgments") else None
            if pair is None or score is None or not rec.get("rubric"):
                continue
            checked = checked_criteria(parse_rubric(rec["rubric"]["text"]))
            if len(checked) != len(score.meets_a):
                continue  # the record's rubric was cut differently: nothing to align
            ids = [str(i) for i in pair.metadata["instruction_id_list"]]
            for k, (requirement, a_ok, b_ok) in enumerate(rule_outcomes(pair)):
                if a_ok is None or b_ok is None or a_ok == b_ok:
                    continue
                named = [
                    j
                    for j, c in enumerate(checked)
                    if c.kind == "hard_rule" and names_constraint(c.text, requirement, recall)
                ]
                if named:
                    a, b = score.meets_a[named[0]], score.meets_b[named[0]]
                    credit = 0.5 if a == b else float((a > b) == a_ok)
                    out.append(NamedCheck(pair.id, ids[k].split(":")[0], credit))
    return out


def render_checks(label: str, checks: Sequence[NamedCheck]) -> str:
    """One Markdown row: the share of named, splitting constraints the check got right."""
    if not checks:
        return f"| {label} | 0 | - |"
    right = sum(c.credit for c in checks)
    low, high = wilson_interval(right, len(checks))
    return (
        f"| {label} | {len(checks)} | {100 * right / len(checks):.1f} "
        f"[{100 * low:.1f}, {100 * high:.1f}] |"
    )


CHECK_HEADER = (
    "| judge checks | named splitting constraints | passing response favoured [95% CI] |\n"
    "|---|---:|---|"
)


def _if_prompts(limit: int | None) -> list[PreferencePair]:
    """One held-out pair per distinct instruction-following prompt, in suite order."""
    seen: dict[str, PreferencePair] = {}
    for pair in load_mini("heldout"):
        if pair.metadata.get("instruction_id_list"):
            seen.setdefault(prompt_key(pair.prompt), pair)
    return list(seen.values())[:limit]


def from_records(run: Path, recall: float) -> list[PromptCoverage]:
    """Coverage of the rubrics an evaluation run recorded (one row per distinct IF prompt)."""
    by_id = {p.id: p for p in _if_prompts(None)}
    rows = []
    with (run / "records.jsonl").open() as f:
        for line in f:
            rec = json.loads(line)
            pair = by_id.get(rec["id"])
            if pair is not None and rec.get("rubric"):
                rows.append(prompt_coverage(pair, rec["rubric"]["text"], recall))
    return rows


def from_generator(generator: str | None, limit: int | None, recall: float) -> list[PromptCoverage]:
    """Coverage of fresh rubrics from the mini preset, with `generator` in place of its own."""
    overrides = {"generator": generator} if generator else {}
    arm = RubricARM.from_preset("mini", **overrides)
    pairs = _if_prompts(limit)
    results = arm.rubrics([p.prompt for p in pairs])
    return [prompt_coverage(p, r.text, recall) for p, r in zip(pairs, results, strict=True)]


def render(label: str, s: dict[str, object]) -> str:
    """One Markdown table row."""

    def pct(k: str, n: str) -> str:
        ci = s[f"{k}_ci"]
        if not ci:
            return "-"
        return f"{100 * s[k] / s[n]:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}] ({s[k]}/{s[n]})"

    return (
        f"| {label} | {s['prompts']} | {pct('covered', 'constraints')} | "
        f"{pct('generic', 'hard_rules')} | {s['distinct_rules']} | {s['no_hard_rule']} |"
    )


HEADER = (
    "| rubrics | prompts | constraints named [95% CI] | generic hard rules [95% CI] | "
    "distinct hard rules | prompts without a hard rule |\n|---|---:|---|---|---:|---:|"
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="*", default=[], help="evaluation run folders to audit")
    parser.add_argument(
        "--generator", action="append", default=[], help="generator model folder ('preset': none)"
    )
    parser.add_argument("--limit", type=int, default=None, help="at most this many prompts")
    parser.add_argument(
        "--recall", type=float, default=NAME_RECALL, help="content-word share to match"
    )
    args = parser.parse_args(argv)
    lines = [HEADER]
    audits = [(run, from_records(Path(run), args.recall)) for run in args.runs]
    audits += [
        (gen, from_generator(None if gen == "preset" else gen, args.limit, args.recall))
        for gen in args.generator
    ]
    for label, rows in audits:
        lines.append(render(label, summarize(rows)))
        for subset in sorted({r.subset for r in rows}):
            part = [r for r in rows if r.subset == subset]
            lines.append(render(f"{label}: {subset}", summarize(part)))
    if args.runs:
        lines += ["", CHECK_HEADER]
        for run in args.runs:
            checks = named_checks(Path(run), args.recall)
            lines.append(render_checks(run, checks))
            for family in sorted({c.family for c in checks}):
                part = [c for c in checks if c.family == family]
                lines.append(render_checks(f"{run}: {family}", part))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
