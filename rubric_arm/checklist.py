"""Explicit rubric aggregation: the judge model answers one short question per (criterion,
response), "does the response meet this criterion?", and the verdict is computed from the
answers' probabilities instead of being written by the judge.

Rubric-ARM's judge aggregates implicitly: it reads the whole rubric and both responses and writes
the winner. Rubrics-as-Rewards (Gunjal et al., 2025) also scores rubrics explicitly, item by item.
At the mini scale the implicit judge's per-criterion claims are at chance while the same model's
short-form check can be trained (reports/rule-probe.md), so the mini profile can aggregate
explicitly; the check is position-free, and costs one forward pass per (criterion, response).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from rubric_arm.types import Chat, Constraint, Criterion, Rubric

CHECK_QUESTION = (
    "Requirement: {requirement}\n\nResponse:\n{response}\n\n"
    "Does the response meet the requirement? Answer Meets or Fails."
)
CHECK_ANSWERS = ("Meets", "Fails")
AGGREGATIONS: tuple[str, ...] = ("implicit", "explicit")
# The output grammar of one sampled check (GRPO rollouts of an explicitly aggregating judge).
CHECK_CONSTRAINT = Constraint(grammar='root ::= "Meets" | "Fails"', name="check")


def check_chat(requirement: str, response: str) -> Chat:
    """The one-turn question of one check; its answer is CHECK_ANSWERS[0] or [1]."""
    content = CHECK_QUESTION.format(requirement=requirement, response=response)
    return [{"role": "user", "content": content}]


def check_target(side: str, label: str) -> str:
    """The answer a check of the response on `side` ("A" / "B") should give when `label` is the
    preferred response: "Meets" for the preferred one, "Fails" for the other. Each such answer
    moves the explicit margin toward the labelled winner, so it is the check's share of R_acc."""
    return CHECK_ANSWERS[0] if side == label else CHECK_ANSWERS[1]


def check_reward(answer: str, target: str) -> float:
    """R_acc of one sampled check: 1.0 when its answer is `target` (see `check_target`), else 0.0.

    Example:
        >>> check_reward("Meets", check_target("A", "A")), check_reward("Meets", "Fails")
        (1.0, 0.0)
    """
    return 1.0 if answer.strip().startswith(target) else 0.0


def checked_criteria(rubric: Rubric) -> list[Criterion]:
    """The criteria explicit aggregation asks about: the hard rules when the rubric has any (the
    verifiable part), else every tagged criterion (a principles-only rubric)."""
    valid = rubric.valid_criteria
    hard = [c for c in valid if c.kind == "hard_rule"]
    return hard or valid


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@dataclass(frozen=True)
class ChecklistScore:
    """P(Meets) of each checked criterion for Response A and Response B, and the verdict."""

    meets_a: tuple[float, ...]
    meets_b: tuple[float, ...]

    @property
    def margin(self) -> float:
        """Mean over criteria of logit P(Meets | A) - logit P(Meets | B)."""
        if not self.meets_a:
            return 0.0
        diffs = [_logit(a) - _logit(b) for a, b in zip(self.meets_a, self.meets_b, strict=True)]
        return sum(diffs) / len(diffs)

    @property
    def p_a(self) -> float:
        """P(A wins) = sigmoid(margin): 0.5 when the checks cannot tell the responses apart."""
        m = self.margin
        return 1 / (1 + math.exp(-m)) if m >= 0 else math.exp(m) / (1 + math.exp(m))

    def summary(self) -> str:
        """A line for the judgment record: each criterion's P(Meets) for A and B."""
        cells = ", ".join(
            f"{k + 1}: A {a:.2f} / B {b:.2f}"
            for k, (a, b) in enumerate(zip(self.meets_a, self.meets_b, strict=True))
        )
        return f"explicit checklist P(Meets): {cells}; margin {self.margin:+.4f}"


_SUMMARY_CELL = re.compile(r"(\d+): A ([0-9.]+) / B ([0-9.]+)")


def parse_summary(text: str) -> ChecklistScore | None:
    """The P(Meets) values back from a `ChecklistScore.summary` line (rounded to 2 decimals);
    None when `text` is not one."""
    if not text.startswith("explicit checklist P(Meets):"):
        return None
    cells = _SUMMARY_CELL.findall(text)
    return ChecklistScore(tuple(float(a) for _, a, _ in cells), tuple(float(b) for *_, b in cells))


def score_pairs(probs: Sequence[dict[str, float]], counts: Sequence[int]) -> list[ChecklistScore]:
    """Regroup flat check probabilities (per pair: its A checks, then its B checks) into scores."""
    out, i = [], 0
    for n in counts:
        meets = [p[CHECK_ANSWERS[0]] for p in probs[i : i + 2 * n]]
        out.append(ChecklistScore(tuple(meets[:n]), tuple(meets[n:])))
        i += 2 * n
    return out
