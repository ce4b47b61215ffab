"""Plain data types shared by every layer: preference pairs, rubrics, verdicts, sampling."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from rubric_arm.errors import InputError

Message = dict[str, str]
Chat = list[Message]
Prompt = str | Chat
Winner = Literal["A", "B"]
Order = Literal["AB", "BA"]
"""How a pair is shown to a judge: as stored (AB) or with the two responses exchanged (BA)."""


def flip(label: Winner | None) -> Winner | None:
    """The other response's label: A <-> B (None stays None). The one place the flip is written."""
    if label is None:
        return None
    return "B" if label == "A" else "A"


def as_shown(label: Winner | None, order: str) -> Winner | None:
    """A label of the pair as it reads in the shown order, and back: the map is its own inverse."""
    return label if order == "AB" else flip(label)


CriterionKind = Literal["hard_rule", "principle"]
Decoding = Literal["constrained", "free"]
DECODINGS: tuple[str, ...] = ("constrained", "free")
VerdictRule = Literal["vote", "prob"]
VERDICT_RULES: tuple[str, ...] = ("vote", "prob")

ROLES = ("system", "user", "assistant")


def validate_prompt(prompt: Any, where: str = "prompt") -> Prompt:
    """Return the prompt if it is a non-empty string or a well-formed chat ending with a user turn."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError(f"{where} is empty")
        return prompt
    if isinstance(prompt, list):
        if not prompt:
            raise InputError(f"{where} is an empty list of turns")
        for i, turn in enumerate(prompt):
            if not isinstance(turn, dict):
                raise InputError(
                    f"{where}[{i}] must be a {{role, content}} object, got {type(turn).__name__}"
                )
            role, content = turn.get("role"), turn.get("content")
            if role not in ROLES:
                raise InputError(f"{where}[{i}].role must be one of {ROLES}, got {role!r}")
            if not isinstance(content, str):
                raise InputError(
                    f"{where}[{i}].content must be a string, got {type(content).__name__}"
                )
        if prompt[-1]["role"] != "user":
            raise InputError(f"{where} must end with a user turn, ends with {prompt[-1]['role']!r}")
        if not prompt[-1]["content"].strip():
            raise InputError(f"{where}: the last user turn is empty")
        return [{"role": t["role"], "content": t["content"]} for t in prompt]
    raise InputError(
        f"{where} must be a string or a list of chat turns, got {type(prompt).__name__}"
    )


def prompt_text(prompt: Prompt) -> str:
    """The prompt as one block of text: the string itself, or a labelled transcript of the turns."""
    if isinstance(prompt, str):
        return prompt
    if len(prompt) == 1:
        return prompt[0]["content"]
    return "\n\n".join(f"[{t['role'].capitalize()}]\n{t['content']}" for t in prompt)


def text_field(row: dict[str, Any], name: str, where: str) -> str:
    """The non-empty string in `row[name]`, or an InputError naming `where` and the field."""
    if name not in row:
        raise InputError(f"{where}: missing field {name!r}")
    value = row[name]
    if not isinstance(value, str):
        raise InputError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InputError(f"{where}: field {name!r} is empty")
    return value


def normalize_label(value: Any, where: str = "label") -> Winner | None:
    """Map the usual spellings of a pairwise label ('A', 'b', 'Response A', '1'/'2') to A/B."""
    if value is None:
        return None
    if isinstance(value, str):
        v = value.strip().lower().replace("response", "").replace("_", "").strip()
        if v in ("a", "1"):
            return "A"
        if v in ("b", "2"):
            return "B"
    raise InputError(f"{where} must be 'A', 'B' or null, got {value!r}")


@dataclass
class PreferencePair:
    """One pairwise comparison: a prompt, two responses and (optionally) which one is better."""

    id: str
    prompt: Prompt
    response_a: str
    response_b: str
    label: Winner | None = None
    subset: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def cluster(self) -> str | None:
        """The source prompt several pairs may share (metadata `group`); None: the pair stands alone.

        Bootstrap CIs resample clusters, not pairs, when a run's pairs carry one.
        """
        group = self.metadata.get("group")
        return None if group is None else str(group)

    @classmethod
    def from_dict(cls, row: Any, line: int | None = None, *, unit: str = "line") -> PreferencePair:
        """Validate one input row; errors name its line of the file (1-based) and the field. A
        row without an id (missing or null) takes that number as id. `unit="row"` says the
        number is a list index instead (rows given in memory)."""
        where = f"{unit} {line}" if line is not None else "row"
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(row).__name__}")
        rid = row.get("id")
        if rid is None:
            rid = line
        if rid is None:
            raise InputError(f"{where}: missing field 'id'")
        if not isinstance(rid, (str, int)) or isinstance(rid, bool):
            raise InputError(
                f"{where}: field 'id' must be a string or an integer, got {type(rid).__name__}"
            )
        where = f"{unit} {line} (id {rid})" if line is not None else f"row id {rid}"
        if "prompt" not in row:
            raise InputError(f"{where}: missing field 'prompt'")
        prompt = validate_prompt(row["prompt"], f"{where}: field 'prompt'")
        subset = row.get("subset")
        if subset is not None and not isinstance(subset, str):
            raise InputError(
                f"{where}: field 'subset' must be a string, got {type(subset).__name__}"
            )
        metadata = row.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InputError(
                f"{where}: field 'metadata' must be an object, got {type(metadata).__name__}"
            )
        return cls(
            id=str(rid),
            prompt=prompt,
            response_a=text_field(row, "response_a", where),
            response_b=text_field(row, "response_b", where),
            label=normalize_label(row.get("label"), f"{where}: field 'label'"),
            subset=subset,
            metadata=metadata,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def swapped(self) -> PreferencePair:
        """The same comparison with the two responses exchanged (and the label with them)."""
        label = flip(self.label)
        return PreferencePair(
            self.id,
            self.prompt,
            self.response_b,
            self.response_a,
            label,
            self.subset,
            self.metadata,
        )


@dataclass
class Criterion:
    """One rubric item. `valid` is False when the item lacks a recognised [Hard Rule]/[Principle] tag."""

    text: str
    kind: CriterionKind | None
    valid: bool = True


@dataclass
class Rubric:
    """A parsed rubric: its criteria in order plus the raw text it came from."""

    criteria: list[Criterion]
    raw: str = ""

    @property
    def valid_criteria(self) -> list[Criterion]:
        return [c for c in self.criteria if c.valid]

    @property
    def is_valid(self) -> bool:
        """True when at least one criterion carries a recognised tag."""
        return bool(self.valid_criteria)

    def render(self) -> str:
        """The rubric as the judge sees it: a numbered list with the published tags."""
        tag = {"hard_rule": " [Hard Rule]", "principle": " [Principle]", None: ""}
        return "\n".join(f"{i}. {c.text}{tag[c.kind]}" for i, c in enumerate(self.criteria, 1))

    def to_dict(self) -> dict[str, Any]:
        return {"raw": self.raw, "criteria": [asdict(c) for c in self.criteria]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rubric:
        return cls([Criterion(**c) for c in d.get("criteria", [])], d.get("raw", ""))


@dataclass
class CriterionJustification:
    """One line of the judge's analysis: a criterion, for one response, with its justification."""

    response: Winner
    index: int
    kind: CriterionKind | None
    justification: str


@dataclass
class Verdict:
    """A parsed judge output. `winner` is None when no single, unambiguous winner was found."""

    winner: Winner | None
    criterion_justifications: list[CriterionJustification] = field(default_factory=list)
    final_justification: str | None = None
    format_ok: bool = False
    raw: str = ""
    failure: str | None = None
    format_problems: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SamplingParams:
    """Decoding settings for one engine call. temperature 0 means greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    n: int = 1
    seed: int | None = None
    logprobs: bool = False  # return each sampled token's log-probability (RL rollouts)

    def __post_init__(self) -> None:
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise InputError(f"temperature must be >= 0, got {self.temperature}")
        if not (0 < self.top_p <= 1):
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.n < 1:
            raise InputError(f"n must be >= 1, got {self.n}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def key(self) -> dict[str, Any]:
        """What identifies the decoding for cache keys (the seed only matters when sampling)."""
        d = asdict(self)
        d.pop("logprobs")
        if self.greedy:
            d.pop("seed")
            d.pop("top_p")
        return d


@dataclass(frozen=True)
class Constraint:
    """The grammar one generation must follow (EBNF as xgrammar and vLLM read it, root `root`).

    `line_tokens` caps each free-text span in tokens (engines that run their own decode loop
    then force `field_end`, the text that closes a span, so an output cannot loop);
    `end_chars` are the characters whose appearance ends a free-text span. Engines that cannot count tokens per span use
    `bounded()`, the same grammar with every free-text rule bounded in characters.
    """

    grammar: str
    name: str = "custom"
    line_tokens: int | None = None
    end_chars: str = "\n"
    bounded_chars: int | None = None
    field_end: str = "\n"

    @property
    def key(self) -> str:
        """A short stable id of the grammar text (what compiled grammars are cached by)."""
        return hashlib.sha256(self.grammar.encode()).hexdigest()[:16]

    def bounded(self) -> str:
        """The grammar with each free-text tail `NAME_tail ::= [...]*` bounded to `bounded_chars`."""
        if self.bounded_chars is None:
            return self.grammar
        bound = "{0," + str(int(self.bounded_chars)) + "}"
        lines = []
        for line in self.grammar.splitlines():
            head, sep, body = line.partition("::=")
            if sep and head.strip().endswith("_tail") and body.rstrip().endswith("]*"):
                line = head + sep + body.rstrip()[:-1] + bound
            lines.append(line)
        return "\n".join(lines)


@dataclass(frozen=True)
class VerdictProbe:
    """Where to read a verdict's probability: the token right after text matching `cue`.

    At that position the engine records the probability of each label (summed over the token
    spellings of it, e.g. "A" and " A"), renormalised over the labels.
    """

    cue: str = r"Winner[ \t*_`]{0,4}[:\uff1a][ \t*_`]{0,4}(?:Response[ \t]{0,2})?$"
    labels: tuple[str, ...] = ("A", "B")


@dataclass
class Completion:
    """One generated text with its token counts.

    `forced_tokens` of `completion_tokens` were appended because a grammar allowed nothing
    else (not sampled); `label_probs` holds the verdict probabilities a VerdictProbe read
    (None when the cue never appeared before a label token). Engines that expose tokens fill
    `token_ids` (the completion's tokens, a final stop token included); with
    `SamplingParams.logprobs`, `token_logprobs` holds each token's log-probability under the
    distribution it was drawn from (temperature-scaled and grammar-masked; top-p truncation
    ignored), None for a token the engine forced instead of sampling.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"] = "stop"
    forced_tokens: int = 0
    label_probs: dict[str, float] | None = None
    token_ids: tuple[int, ...] = ()
    token_logprobs: tuple[float | None, ...] | None = None
