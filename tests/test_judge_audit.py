"""The judge audit reads verdicts, stated reasons and rule claims back in the pair's own labels."""

from __future__ import annotations

from rubric_arm.data.mini import load_mini
from rubric_arm.records import JudgeRecord, Judgment
from rubric_arm.reproduce.judge_audit import audit_record, audit_table, rule_claims, stated_winner
from rubric_arm.trainer.warmup_mini import mini_warmup_rows


def _teacher_record(pair, order):
    shown = pair if order == "AB" else pair.swapped()
    (row,) = mini_warmup_rows([shown])[1]
    text = row["judgment"]
    winner = shown.label if order == "AB" else ("B" if shown.label == "A" else "A")
    judgment = Judgment(order, 0, winner, True, None, [], text, 0, 0, "stop")
    return JudgeRecord(pair.id, pair.subset, pair.label, "ok", judgments=[judgment])


def test_a_teacher_trajectory_audits_as_fully_right_in_both_orders():
    pair = next(p for p in load_mini("train") if p.subset == "ifbench")
    for order in ("AB", "BA"):
        a = audit_record(_teacher_record(pair, order), pair)
        assert (a.judged, a.correct, a.stated, a.stated_correct, a.agree) == (1, 1, 1, 1, 1)
        assert a.claims > 0 and a.claims_correct == a.claims
        assert a.first_shown == int((pair.label == "A") == (order == "AB"))


def test_a_verdict_against_its_reason_and_wrong_claims_are_counted():
    pair = next(p for p in load_mini("train") if p.subset == "ifbench")
    rec = _teacher_record(pair, "AB")
    j = rec.judgments[0]
    j.winner = "B" if pair.label == "A" else "A"
    j.text = j.text.replace("Meets it", "X").replace("Fails it", "Meets it")
    j.text = j.text.replace("X", "Fails it")
    a = audit_record(rec, pair)
    assert (a.correct, a.stated_correct, a.agree) == (0, 1, 0)
    assert a.claims_correct == 0 and a.meets_when_passes == 0 and a.meets_when_fails == a.fails
    assert "| x | 0.0 [" in audit_table([("x", a)])


def test_parsers_read_the_published_layout():
    text = (
        "--- Analysis ---\n**Response A:**\n- Criterion 1 [Hard Rule]: Justification: Meets it.\n"
        "**Response B:**\n- Criterion 1 [Hard Rule]: Justification: Fails it.\n"
        "--- Final Judgment ---\nJustification: Response A meets more of the hard rules.\n"
        "Winner: Response A"
    )
    assert rule_claims(text) == {"A": [True], "B": [False]}
    assert stated_winner(text) == "A"
    assert stated_winner("--- Final Judgment ---\nno reason") is None
