"""Verifiers that decide whether a response follows a prompt's instructions.

`RuleVerifier` runs the official IFBench / IFEval rule checkers shipped by `if-verifiable`
(offline). `QuestionVerifier` asks an LLM the decomposed yes/no questions of InfoBench-style
items; it is used only when a model is configured. Both return a `Verification` per response.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.types import SamplingParams

Registry = Literal["ifbench", "ifeval"]
REGISTRIES: tuple[str, ...] = ("ifbench", "ifeval")


@dataclass(frozen=True)
class VerifiableItem:
    """A prompt with machine-checkable instructions (IFBench / IFEval style) or yes/no questions."""

    key: str
    prompt: str
    instruction_id_list: tuple[str, ...] = ()
    kwargs: tuple[dict[str, Any], ...] = ()
    registry: Registry = "ifbench"
    questions: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Verification:
    """The verifier's outcome for one response: per-instruction strict and loose passes.

    `status` is "unavailable" when a checker cannot run here (e.g. it needs NLTK data that is
    not installed); such outcomes are counted by the callers, never treated as a fail.
    """

    status: Literal["ok", "unavailable"]
    strict: list[bool] = field(default_factory=list)
    loose: list[bool] = field(default_factory=list)
    error: str | None = None

    @property
    def partial_strict(self) -> float:
        return sum(self.strict) / len(self.strict) if self.strict else 0.0

    @property
    def partial_loose(self) -> float:
        return sum(self.loose) / len(self.loose) if self.loose else 0.0

    @property
    def all_strict(self) -> bool:
        return bool(self.strict) and all(self.strict)

    @property
    def all_loose(self) -> bool:
        return bool(self.loose) and all(self.loose)

    def score(self) -> tuple[float, float]:
        """The ranking key of pair builders: instruction-level strict, then loose, accuracy."""
        return (self.partial_strict, self.partial_loose)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "strict": self.strict,
            "loose": self.loose,
            "partial_strict": round(self.partial_strict, 6),
            "partial_loose": round(self.partial_loose, 6),
            "error": self.error,
        }


class Verifier(Protocol):
    name: str

    def verify(self, item: VerifiableItem, responses: Sequence[str]) -> list[Verification]: ...


@contextlib.contextmanager
def _no_nltk_downloads() -> Iterator[list[str]]:
    """Stop NLTK from reaching the network while if-verifiable imports (it downloads on import)."""
    import nltk

    asked: list[str] = []
    original = nltk.download

    def refuse(info_or_id: Any = None, *args: Any, **kwargs: Any) -> bool:
        asked.append(str(info_or_id))
        return False

    nltk.download = refuse
    try:
        yield asked
    finally:
        nltk.download = original


_REGISTRY_CACHE: dict[str, dict[str, Any]] = {}


def rule_registry(registry: Registry) -> dict[str, Any]:
    """The instruction-id -> checker-class table of IFBench or IFEval (from if-verifiable)."""
    if registry not in REGISTRIES:
        raise InputError(f"unknown verifier registry {registry!r}; known: {', '.join(REGISTRIES)}")
    if registry not in _REGISTRY_CACHE:
        try:
            with _no_nltk_downloads():
                if registry == "ifbench":
                    from if_verifiable.ifbench.instructions_registry import INSTRUCTION_DICT
                else:
                    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT
        except ImportError as exc:
            raise RubricArmError(
                "the rule verifiers need if-verifiable: pip install --no-deps if-verifiable==0.1.2 "
                "emoji immutabledict langdetect nltk syllapy (make setup installs them)"
            ) from exc
        # Language checks (english_capital / english_lowercase, response_language) call
        # langdetect, which samples unless seeded: seed it so a verdict never changes.
        from langdetect import DetectorFactory

        DetectorFactory.seed = 0
        _REGISTRY_CACHE[registry] = dict(INSTRUCTION_DICT)
    return _REGISTRY_CACHE[registry]


class RuleVerifier:
    """The official IFBench / IFEval checkers: strict on the response, loose on its variants."""

    name = "rules"

    def verify(self, item: VerifiableItem, responses: Sequence[str]) -> list[Verification]:
        registry = rule_registry(item.registry)
        unknown = [i for i in item.instruction_id_list if i not in registry]
        if unknown:
            raise InputError(
                f"item {item.key}: unknown {item.registry} instruction id(s) {', '.join(unknown)}"
            )
        if len(item.kwargs) != len(item.instruction_id_list):
            raise InputError(
                f"item {item.key}: {len(item.instruction_id_list)} instruction ids but "
                f"{len(item.kwargs)} kwargs entries"
            )
        if not item.instruction_id_list:
            raise InputError(f"item {item.key}: no instruction ids to verify")
        from if_verifiable.common import evaluate_instructions

        out = []
        for response in responses:
            try:
                results, _ = evaluate_instructions(
                    response=response,
                    instruction_id_list=list(item.instruction_id_list),
                    kwargs_list=[dict(k) for k in item.kwargs],
                    prompt=item.prompt,
                    instruction_registry=registry,
                )
            except LookupError as exc:
                needed = re.search(r"Resource \x1b\[93m(\S+)|Resource (\S+)", str(exc))
                what = next((g for g in needed.groups() if g), "data") if needed else "data"
                out.append(Verification("unavailable", error=f"needs NLTK {what} (not installed)"))
                continue
            except Exception as exc:  # a checker crash is the checker's bug: count it, go on
                out.append(Verification("unavailable", error=f"{type(exc).__name__}: {exc}"))
                continue
            if not results:  # if-verifiable returns nothing for an empty response
                n = len(item.instruction_id_list)
                out.append(Verification("ok", [False] * n, [False] * n))
                continue
            out.append(
                Verification(
                    "ok", [r.strict_pass for r in results], [r.loose_pass for r in results]
                )
            )
        return out


_QUESTION_PROMPT = (
    "Read the instruction and the response, then answer the question about the response with "
    "a single word, YES or NO.\n\nInstruction:\n{instruction}\n\nResponse:\n{response}\n\n"
    "Question: {question}\nAnswer (YES or NO):"
)
_YES_NO = re.compile(r"\b(YES|NO)\b", re.IGNORECASE)


class QuestionVerifier:
    """InfoBench-style verification: an LLM answers each decomposed yes/no question.

    strict = the answer is YES; an answer with neither word counts as NO in `strict` and is
    reported in `error` (loose mirrors strict: the questions have no loose variant).
    """

    name = "llm-questions"

    def __init__(self, engine: Any, sampling: SamplingParams | None = None) -> None:
        self.engine = engine
        self.sampling = sampling or SamplingParams(temperature=0.0, max_new_tokens=8)

    def verify(self, item: VerifiableItem, responses: Sequence[str]) -> list[Verification]:
        if not item.questions:
            raise InputError(f"item {item.key}: no decomposed questions to ask")
        chats = [
            [
                {
                    "role": "user",
                    "content": _QUESTION_PROMPT.format(
                        instruction=item.prompt, response=r, question=q
                    ),
                }
            ]
            for r in responses
            for q in item.questions
        ]
        outs = self.engine.generate(chats, self.sampling, desc="verify") if chats else []
        n = len(item.questions)
        result = []
        for k in range(len(responses)):
            answers, unparsed = [], 0
            for out in outs[k * n : (k + 1) * n]:
                m = _YES_NO.search(out[0].text)
                unparsed += m is None
                answers.append(bool(m) and m.group(1).upper() == "YES")
            err = f"{unparsed} answer(s) had neither YES nor NO" if unparsed else None
            result.append(Verification("ok", answers, list(answers), err))
        return result
