"""Typed records: one serialiser each, read back exactly, bad lines refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rubric_arm import JudgeRecord, Judgment, RubricRecord, read_records
from rubric_arm.errors import RubricArmError
from rubric_arm.records import records_from_dicts


def judged() -> JudgeRecord:
    judgments = [
        Judgment("AB", 0, "A", True, None, [], "Winner: Response A", 90, 12, "stop", 0.8, 3),
        Judgment("BA", 0, "B", False, "no verdict", ["x"], "...", 91, 40, "length", 0.4, 0),
    ]
    rec = JudgeRecord(
        "p1",
        "chat",
        "A",
        "ok",
        order="both",
        seed=7,
        rubric=RubricRecord("1. Be kind. [Principle]", n_criteria=1, n_valid=1, valid=True),
        judgments=judgments,
        truncated={"response_a": 5},
        judge_seconds=1.25,
        decoding="constrained",
        verdict_rule="prob",
        cluster="q1",
    )
    rec.decide()
    return rec


def test_a_record_survives_its_json_unchanged() -> None:
    rec = judged()
    assert rec.p_a == pytest.approx(0.6) and rec.winner == "A" and rec.correct is True
    text = json.dumps(rec.to_dict())
    assert JudgeRecord.from_dict(json.loads(text)) == rec
    assert isinstance(JudgeRecord.from_dict(json.loads(text)).judgments[1], Judgment)


def test_timings_and_unset_optional_fields_are_left_out() -> None:
    d = judged().to_dict(timings=False)
    assert "judge_seconds" not in d and "seconds" not in d["rubric"]
    assert not {"scores", "vote_winners", "seconds"} & set(d)
    back = JudgeRecord.from_dict(d)
    assert back.judge_seconds == 0.0 and back.rubric is not None and back.rubric.seconds == 0.0
    scored = JudgeRecord("p2", None, "B", "ok", scores={"A": 0.1, "B": 0.2}, decoding=None)
    assert JudgeRecord.from_dict(json.loads(json.dumps(scored.to_dict()))) == scored


def test_the_winner_and_its_correctness_are_set_together() -> None:
    rec = JudgeRecord("p", None, "B", "ok")
    rec.set_winner("B")
    assert rec.correct is True
    rec.set_winner(None)
    assert rec.correct is False
    unlabelled = JudgeRecord("q", None, None, "ok")
    unlabelled.set_winner("A")
    assert unlabelled.correct is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "a", "status": "ok", "verdict": "A"}, r"unknown field\(s\) verdict"),
        ({"status": "ok"}, "needs 'id'"),
        ({"id": "a"}, "needs 'status'"),
        ({"id": "a", "status": "ok", "judgments": {}}, "judgments must be a list"),
        ({"id": "a", "status": "ok", "judgments": [{"order": "AB", "vot": 0}]}, "judgment 0"),
        ({"id": "a", "status": "ok", "rubric": "text"}, "rubric: expected an object"),
        ({"id": "a", "status": "ok", "judgments": [{"order": "AB"}]}, "Judgment is missing"),
        ([1, 2], "expected an object, got list"),
    ],
)
def test_a_malformed_record_is_refused_naming_where(row: object, message: str) -> None:
    with pytest.raises(RubricArmError, match=message):
        records_from_dicts([{"id": "ok", "status": "ok"}, row], "run.jsonl")
    with pytest.raises(RubricArmError, match="record 2"):
        records_from_dicts([{"id": "ok", "status": "ok"}, row], "run.jsonl")


def test_read_records_reads_a_results_file(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    recs = [judged(), JudgeRecord("p3", None, None, "invalid_input", error="no prompt")]
    path.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in recs), encoding="utf-8")
    assert read_records(path) == recs
    path.write_text(path.read_text() + '{"id": "p4", "status": "ok", "colour": 1}\n')
    with pytest.raises(RubricArmError, match=r"records.jsonl, record 3: unknown field\(s\) colour"):
        read_records(path)
