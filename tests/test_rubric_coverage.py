"""The rubric-coverage audit: which verifiable constraints a generated rubric names."""

from __future__ import annotations

import json
from pathlib import Path

from hand_pairs import bullets_and_postscript

from rubric_arm.reproduce import rubric_coverage as rc
from rubric_arm.trainer.warmup_mini import content_words, instruction_requirement, pair_rubric
from rubric_arm.types import PreferencePair


def _pair() -> PreferencePair:
    return bullets_and_postscript()


def test_content_words_keep_numbers_and_drop_function_words() -> None:
    assert content_words("The response has exactly 3 bullet points.") == {
        "has",
        "3",
        "bullet",
        "points",
    }


def test_prompt_coverage_counts_named_and_generic_rules() -> None:
    pair = _pair()
    bullets = instruction_requirement("detectable_format:number_bullet_lists", {"num_bullets": 3})
    rubric = (
        f"1. {bullets} [Hard Rule]\n"
        "2. The response addresses the user's request directly and helpfully. [Hard Rule]\n"
        "3. The response is clear. [Principle]"
    )
    row = rc.prompt_coverage(pair, rubric, recall=0.6)
    assert len(row.requirements) == 2
    assert row.hard_rules[0] == bullets
    assert (row.covered, row.generic) == (1, 1)
    s = rc.summarize([row])
    assert (s["covered"], s["constraints"], s["generic"], s["hard_rules"]) == (1, 2, 1, 2)
    assert s["distinct_rules"] == 2 and s["no_hard_rule"] == 0
    assert "50.0" in rc.render("x", s)


def test_a_generic_rubric_names_nothing() -> None:
    rubric = "1. The response addresses the user's request directly and helpfully. [Hard Rule]"
    row = rc.prompt_coverage(_pair(), rubric, recall=0.6)
    assert (row.covered, row.generic) == (0, 1)
    empty = rc.prompt_coverage(_pair(), "no rubric here", recall=0.6)
    assert empty.hard_rules == () and rc.summarize([empty])["no_hard_rule"] == 1


def test_from_records_reads_an_eval_run(tmp_path: Path) -> None:
    pair = rc._if_prompts(1)[0]
    oracle = pair_rubric(pair)
    recs = [
        {"id": pair.id, "rubric": {"text": oracle}},
        {"id": "not-in-suite", "rubric": {"text": oracle}},
    ]
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows = rc.from_records(tmp_path, recall=0.6)
    assert len(rows) == 1 and rows[0].covered == len(rows[0].requirements) > 0
    assert rows[0].generic == 0


def test_checklist_summaries_parse_back() -> None:
    from rubric_arm.checklist import ChecklistScore, parse_summary

    score = ChecklistScore((0.25, 0.9), (0.5, 0.125))
    back = parse_summary(score.summary())
    assert back is not None and back.meets_a == (0.25, 0.9) and back.meets_b == (0.5, 0.12)
    assert parse_summary("Winner: Response A") is None


def test_named_checks_score_the_rule_that_names_a_splitting_constraint(tmp_path: Path) -> None:
    from rubric_arm.checklist import ChecklistScore
    from rubric_arm.trainer.warmup_mini import rule_outcomes

    pair = next(
        p
        for p in rc._if_prompts(None)
        if any(a is not None and b is not None and a != b for _, a, b in rule_outcomes(p))
    )
    requirement, a_ok, _ = next(
        (q, a, b) for q, a, b in rule_outcomes(pair) if a is not None and b is not None and a != b
    )
    rubric = (
        "1. The response is helpful. [Hard Rule]\n"
        f"2. {requirement} [Hard Rule]\n3. The response is clear. [Principle]"
    )
    favour_pass = (0.9, 0.1) if a_ok else (0.1, 0.9)
    records = []
    for meets in (favour_pass, favour_pass[::-1], (0.5, 0.5)):
        score = ChecklistScore((0.5, meets[0]), (0.5, meets[1]))
        records.append(
            {"id": pair.id, "rubric": {"text": rubric}, "judgments": [{"text": score.summary()}]}
        )
    for k, rec in enumerate(records):
        (tmp_path / str(k)).mkdir()
        (tmp_path / str(k) / "records.jsonl").write_text(json.dumps(rec) + "\n")
    credits = [[c.credit for c in rc.named_checks(tmp_path / str(k), 0.6)] for k in range(3)]
    assert credits[0][0] == 1.0 and credits[1][0] == 0.0 and credits[2][0] == 0.5
    assert "100.0" in rc.render_checks("x", rc.named_checks(tmp_path / "0", 0.6))
