"""A deterministic Engine for pipeline tests: canned rubrics and judgments, countable calls."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rubric_arm.engines.base import Engine
from rubric_arm.types import Chat, Completion, SamplingParams

RUBRIC = (
    "1. The response follows every explicit instruction of the request. [Hard Rule]\n"
    "2. The response is clear and easy to follow. [Principle]"
)


def judge_output(winner: str, n_criteria: int = 2) -> str:
    """A well-formed judge trajectory for `n_criteria` criteria that picks `winner`."""
    lines = ["--- Compliance Check ---", "Identified Gatekeeper Criterion: Criterion 1", ""]
    lines.append("--- Analysis ---")
    for resp in ("A", "B"):
        lines.append(f"**Response {resp}:**")
        for k in range(1, n_criteria + 1):
            lines.append(f"- Criterion {k} [Principle]: Justification: checked for {resp}.")
    lines += [
        "",
        "--- Final Judgment ---",
        "Justification: one response is better.",
        f"Winner: Response {winner}",
    ]
    return "\n".join(lines)


def words(text: str) -> list[str]:
    return text.split()


class ScriptedEngine(Engine):
    """Generator mode returns `rubric`; judge mode names the response holding the word GOOD.

    `probs_fn(text, vote)` gives P("A") of the shown labels for a judge output (None: no
    probability), returned as `Completion.label_probs` {"A": p, "B": 1 - p}; without it no
    completion carries probabilities. `constrained=True` declares grammar support (the outputs
    stay the scripted ones), so a pipeline can run under decoding="constrained"; the
    constraints each call received are kept in `constraints`.
    """

    name = "scripted"

    def __init__(
        self,
        role: str,
        *,
        rubric: str = RUBRIC,
        fingerprint: str = "scripted-1",
        context_length: int = 4096,
        judge_fn: Callable[[str, int], str] | None = None,
        probs_fn: Callable[[str, int], float | None] | None = None,
        constrained: bool = False,
    ) -> None:
        self.role = role
        self.rubric = rubric
        self.fingerprint = fingerprint
        self.context_length = context_length
        self.judge_fn = judge_fn
        self.probs_fn = probs_fn
        self.supports_constraints = constrained
        self.calls: list[tuple[list[Chat], SamplingParams]] = []
        self.constraints: list[list[Any] | None] = []
        self.label_calls: list[list[Chat]] = []

    def generate(
        self,
        chats: Sequence[Chat],
        params: SamplingParams,
        *,
        desc: str | None = None,
        constraints: Sequence[Any] | None = None,
        probe: Any = None,
    ) -> list[list[Completion]]:
        self.calls.append((list(chats), params))
        self.constraints.append(None if constraints is None else list(constraints))
        out = []
        for chat in chats:
            text = "\n".join(m["content"] for m in chat)
            samples = []
            for v in range(params.n):
                if self.role == "generator":
                    reply = self.rubric
                elif self.judge_fn is not None:
                    reply = self.judge_fn(text, v)
                else:
                    good, bad = text.find("GOOD"), text.find("BAD")
                    reply = judge_output("A" if good < bad else "B")
                judged = self.probs_fn is not None and self.role != "generator"
                p_a = self.probs_fn(text, v) if judged else None
                samples.append(
                    Completion(
                        reply,
                        self.chat_tokens(chat),
                        len(words(reply)),
                        label_probs=None if p_a is None else {"A": p_a, "B": 1.0 - p_a},
                    )
                )
            out.append(samples)
        return out

    def next_label_probs(
        self, chats: Sequence[Chat], labels: Sequence[str], *, desc: str | None = None
    ) -> list[dict[str, float]]:
        """Explicit checks: P(first label) 0.9 when the checked response holds GOOD, else 0.2."""
        self.label_calls.append(list(chats))
        out = []
        for chat in chats:
            response = chat[-1]["content"].split("Response:")[-1]
            p = 0.9 if "GOOD" in response else 0.2
            out.append({labels[0]: p, labels[1]: 1.0 - p})
        return out

    def count_tokens(self, text: str) -> int:
        return len(words(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        return " ".join(words(text)[:max_tokens])

    def chat_tokens(self, chat: Chat) -> int:
        return sum(len(words(m["content"])) + 4 for m in chat)
