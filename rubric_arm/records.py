"""The typed records a judge produces, one class per concept, each with one serialiser.

`RubricResult` is a generated rubric as the pipeline holds it; `RubricRecord` is what a judged
pair keeps of it; `Judgment` is one judge sample; `JudgeRecord` is one judged pair, whatever the
judge (the Rubric-ARM pipeline, a scalar reward model, a log-probability judge, voting). Records
are plain dicts only at the file boundary: `to_dict` writes them, `from_dict` / `read_records`
read them back and refuse a line that is not a record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from rubric_arm.errors import RubricArmError
from rubric_arm.types import Rubric, VerdictRule, Winner, as_shown
from rubric_arm.verdict import majority_vote, parse_verdict

RecordStatus = Literal["ok", "invalid_input", "prompt_too_long"]
Shown = Literal["AB", "BA"]


def _checked(cls: type, d: Any, where: str) -> dict[str, Any]:
    """`d` as keyword arguments of `cls`, refusing a non-object or an unknown key by name."""
    if not isinstance(d, Mapping):
        raise RubricArmError(f"{where}: expected an object, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise RubricArmError(f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}")
    return dict(d)


def _build(cls: type, kw: dict[str, Any], where: str) -> Any:
    try:
        return cls(**kw)
    except TypeError as exc:  # a required field is missing
        missing = str(exc).split("missing", 1)[-1].strip()
        raise RubricArmError(f"{where}: {cls.__name__} is missing {missing}") from None


@dataclass
class RubricRecord:
    """What a judged pair records about its rubric."""

    text: str
    status: Literal["ok", "prompt_too_long"] = "ok"
    n_criteria: int = 0
    n_valid: int = 0
    valid: bool = False
    cached: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    seconds: float = 0.0

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not timings:
            d.pop("seconds")
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "rubric") -> RubricRecord:
        return _build(cls, _checked(cls, d, where), where)


@dataclass
class RubricResult:
    """One rubric for one prompt, with where it came from."""

    rubric: Rubric
    text: str
    cached: bool
    status: Literal["ok", "prompt_too_long"] = "ok"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    seconds: float = 0.0

    def to_record(self) -> RubricRecord:
        return RubricRecord(
            text=self.text,
            status=self.status,
            n_criteria=len(self.rubric.criteria),
            n_valid=len(self.rubric.valid_criteria),
            valid=self.rubric.is_valid,
            cached=self.cached,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            finish_reason=self.finish_reason,
            seconds=round(self.seconds, 4),
        )

    def to_dict(self) -> dict[str, Any]:
        return self.to_record().to_dict()


@dataclass
class Judgment:
    """One judge sample: the order it saw, its text and its parsed verdict (in the pair's labels)."""

    order: Shown
    vote: int
    winner: Winner | None
    format_ok: bool
    failure: str | None
    format_problems: list[str]
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    p_a: float | None = None
    forced_tokens: int = 0

    @classmethod
    def from_text(
        cls,
        text: str,
        *,
        order: Shown,
        vote: int,
        n_criteria: int,
        direct: bool = False,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        finish_reason: str = "stop",
        label_probs: dict[str, float] | None = None,
        forced_tokens: int = 0,
    ) -> Judgment:
        """Parse one judge output and map its winner (and P(A) at the verdict, from
        `label_probs` of the shown order) back to the pair's own labels. `direct` judges have no
        rubric, so only a parsed winner counts as well-formed."""
        verdict = parse_verdict(text, n_criteria)
        winner = as_shown(verdict.winner, order)
        p_a = None
        if label_probs and "A" in label_probs:
            shown = float(label_probs["A"])
            p_a = round(shown if order == "AB" else 1.0 - shown, 6)
        return cls(
            order=order,
            vote=vote,
            winner=winner,
            format_ok=verdict.winner is not None if direct else verdict.format_ok,
            failure=verdict.failure,
            format_problems=[] if direct else verdict.format_problems,
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish_reason,
            p_a=p_a,
            forced_tokens=forced_tokens,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: str = "judgment") -> Judgment:
        return _build(cls, _checked(cls, d, where), where)


def mean_p_a(judgments: Sequence[Judgment]) -> float | None:
    """P(response_a better) averaged over the samples and orders that recorded one."""
    probs = [j.p_a for j in judgments if j.p_a is not None]
    return round(sum(probs) / len(probs), 6) if probs else None


def decide(judgments: Sequence[Judgment], rule: VerdictRule | str = "vote") -> Winner | None:
    """The pair's winner: strict majority of parsed votes, or (`prob`) the side of the mean
    P(A) over samples and orders (None at exactly 0.5 or without probabilities)."""
    if rule == "prob":
        p = mean_p_a(judgments)
        if p is None or p == 0.5:
            return None
        return "A" if p > 0.5 else "B"
    return majority_vote([j.winner for j in judgments])


# Fields written only when set: per-response scores (scalar and random judges), the winners of
# the k runs of a voting judge, and a harness judge's wall time for the pair.
_OPTIONAL = ("scores", "vote_winners", "seconds")


@dataclass
class JudgeRecord:
    """Everything about one judged pair; `winner` refers to the pair's own response_a / response_b."""

    id: str
    subset: str | None
    label: Winner | None
    status: RecordStatus
    winner: Winner | None = None
    correct: bool | None = None
    error: str | None = None
    order: str | None = None
    votes: int = 1
    seed: int | None = None
    rubric: RubricRecord | None = None
    judgments: list[Judgment] = field(default_factory=list)
    truncated: dict[str, int] = field(default_factory=dict)
    generator: str | None = None
    judge: str | None = None
    generator_template: str | None = None
    judge_template: str | None = None
    judge_seconds: float = 0.0
    decoding: str | None = "free"  # None: a judge that generates no text (scalar, random)
    verdict_rule: str | None = "vote"  # None: a judge whose winner is not a verdict rule's
    p_a: float | None = None
    cluster: str | None = None  # the pair's source prompt (PreferencePair.cluster), for the CIs
    scores: dict[str, float] | None = None
    vote_winners: list[Winner | None] | None = None
    seconds: float | None = None

    @property
    def parse_failures(self) -> int:
        return sum(j.winner is None for j in self.judgments)

    @property
    def judged(self) -> bool:
        """The judge ran on the pair (status ok), whether or not it reached a verdict."""
        return self.status == "ok"

    def set_winner(self, winner: Winner | None) -> None:
        """Record the pair's winner and whether it matches the label (None without a label)."""
        self.winner = winner
        self.correct = None if self.label is None else winner == self.label

    def decide(self, rule: VerdictRule | str | None = None) -> None:
        """Set p_a and the winner from the judgments under `rule` (default: the record's own)."""
        if rule is not None:
            self.verdict_rule = rule
        self.p_a = mean_p_a(self.judgments)
        self.set_winner(decide(self.judgments, self.verdict_rule or "vote"))

    def to_dict(self, *, timings: bool = True) -> dict[str, Any]:
        """The record as plain data; `timings=False` leaves out wall-clock fields (not reproducible)."""
        d = asdict(self)
        for name in _OPTIONAL:
            if d[name] is None:
                del d[name]
        if self.rubric is not None:
            d["rubric"] = self.rubric.to_dict(timings=timings)
        if not timings:
            d.pop("judge_seconds")
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "record") -> JudgeRecord:
        """A record read back from its dict; an unknown or malformed field fails naming it."""
        kw = _checked(cls, d, where)
        for required in ("id", "status"):
            if required not in kw:
                raise RubricArmError(f"{where}: a judge record needs {required!r}")
        kw.setdefault("subset", None)
        kw.setdefault("label", None)
        if kw.get("rubric") is not None:
            kw["rubric"] = RubricRecord.from_dict(kw["rubric"], f"{where}, rubric")
        raw = kw.get("judgments")
        raw = [] if raw is None else raw
        if not isinstance(raw, list):
            raise RubricArmError(f"{where}: judgments must be a list")
        kw["judgments"] = [
            Judgment.from_dict(j, f"{where}, judgment {k}") for k, j in enumerate(raw)
        ]
        kw["truncated"] = dict(kw.get("truncated") or {})
        return _build(cls, kw, where)

    def timings(self) -> dict[str, Any]:
        """The wall-clock fields alone (amortised shares of the batched engine calls)."""
        return {
            "id": self.id,
            "rubric_seconds": self.rubric.seconds if self.rubric else 0.0,
            "judge_seconds": round(self.judge_seconds, 4),
        }


def records_from_dicts(rows: Sequence[Any], where: str = "records") -> list[JudgeRecord]:
    """Typed records from parsed JSON objects, each error naming its 1-based position."""
    return [JudgeRecord.from_dict(r, f"{where}, record {k}") for k, r in enumerate(rows, 1)]


def read_records(path: str | Path) -> list[JudgeRecord]:
    """The judge records of a results file (records.jsonl or a `judge` output file)."""
    from rubric_arm.data.jsonl import read_results

    return records_from_dicts(read_results(path), str(path))


__all__ = [
    "JudgeRecord",
    "Judgment",
    "RubricRecord",
    "RubricResult",
    "decide",
    "mean_p_a",
    "read_records",
    "records_from_dicts",
]
