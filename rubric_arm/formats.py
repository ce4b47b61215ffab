"""Output grammars of the published formats: what a template's output must look like, as EBNF.

A template names its output format (or declares its own grammar); `decoding: constrained`
makes the engine follow it, so a rubric always parses and a judgment always ends in a verdict.
Free-text fields are one line each; their first character is one the parsers keep (the
verdict parser strips leading `*`, `-`, `:` and spaces, so `Justification: **` would read as
empty), and they exclude every character `str.splitlines` breaks on.

Formats live in a registry: `register_format(name, builder)` adds one, where `builder(rubric,
settings)` returns an `OutputFormat` (the rubric is None for formats that do not depend on it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.types import Constraint, Rubric

# Characters `str.splitlines` treats as line ends, and "<" (so no `<think>` block can open and
# hide what precedes it from the parsers): free text excludes them all.
_NEVER_IN_TEXT = r"\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029<"
# First characters the verdict parser strips from a justification (see verdict.py).
_STRIPPED = r" \t*_`:\-\u2013\u2014=>+#"


def _text_rule(name: str, exclude: str = "", first_exclude: str = _STRIPPED) -> str:
    """`name ::= first tail`: one line of free text, `exclude` kept out of it."""
    return (
        f"{name} ::= [^{_NEVER_IN_TEXT}{first_exclude}{exclude}] {name}_tail\n"
        f"{name}_tail ::= [^{_NEVER_IN_TEXT}{exclude}]*"
    )


def ebnf_string(text: str) -> str:
    """`text` as an EBNF string literal."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@dataclass(frozen=True)
class OutputFormat:
    """A grammar with what budgeting it needs: the text it forces (`skeleton`, for the token
    estimate) and how many free-text spans it has at most."""

    name: str
    grammar: str
    skeleton: str = ""
    free_fields: int = 0
    end_chars: str = "\n"
    field_end: str = "\n"

    def constraint(
        self, max_new_tokens: int | None = None, count_tokens: Callable[[str], int] | None = None
    ) -> Constraint:
        """The engine-level constraint: free-text spans budgeted so the whole output fits
        `max_new_tokens` (forced text counted with `count_tokens`, else ~3 chars a token)."""
        line_tokens = None
        if max_new_tokens is not None and self.free_fields:
            count = count_tokens or (lambda s: len(s) // 3 + 1)
            forced = count(self.skeleton) if self.skeleton else 0
            room = int(0.9 * max_new_tokens) - forced - self.free_fields
            line_tokens = max(4, min(256, room // self.free_fields))
        return Constraint(
            grammar=self.grammar,
            name=self.name,
            line_tokens=line_tokens,
            end_chars=self.end_chars,
            bounded_chars=None if line_tokens is None else 4 * line_tokens,
            field_end=self.field_end,
        )


FormatBuilder = Callable[[Rubric | None, dict[str, Any]], OutputFormat]
_FORMATS: dict[str, FormatBuilder] = {}


def register_format(name: str, builder: FormatBuilder) -> None:
    """Add an output format templates can name in their `grammar:` key."""
    if not name or "::=" in name:
        raise InputError(f"format name {name!r} is not a plain name")
    _FORMATS[name] = builder


def format_names() -> list[str]:
    """Names of the registered output formats."""
    return sorted(_FORMATS)


def build_format(
    name: str, rubric: Rubric | None = None, settings: dict[str, Any] | None = None
) -> OutputFormat:
    """The output format `name` (built for `rubric` when the format depends on one)."""
    if name not in _FORMATS:
        raise InputError(f"unknown output format {name!r}; known: {', '.join(format_names())}")
    return _FORMATS[name](rubric, dict(settings or {}))


# ---------------------------------------------------------------------------- built-in formats

TAGS = {"hard_rule": "Hard Rule", "principle": "Principle"}
MAX_RUBRIC_ITEMS = 8


def rubric_format(
    rubric: Rubric | None = None, settings: dict[str, Any] | None = None
) -> OutputFormat:
    """1..N numbered items `k. The response ... [Hard Rule|Principle]` (N = `max_items`, 8)."""
    n = int((settings or {}).get("max_items", MAX_RUBRIC_ITEMS))
    if n < 1:
        raise InputError(f"max_items must be >= 1, got {n}")
    tail = ""
    for k in range(n, 1, -1):
        tail = f'("\\n{k}. " item{tail})?' if not tail else f'("\\n{k}. " item {tail})?'
    root = f'root ::= "1. " item {tail}'.rstrip()
    grammar = "\n".join(
        [
            root,
            'item ::= "The response " body " [" ("Hard Rule" | "Principle") "]"',
            # no "[" inside an item: only its own tag may open one
            _text_rule("body", exclude=r"\["),
        ]
    )
    skeleton = "".join(f"{k}. The response  [Principle]\n" for k in range(1, n + 1))
    return OutputFormat("rubric", grammar, skeleton, free_fields=n, end_chars="\n[", field_end=" [")


def _criterion_tag(kind: str | None) -> str:
    if kind in TAGS:
        return ebnf_string(f" [{TAGS[kind]}]: Justification: ")
    return '" [" ("Hard Rule" | "Principle") "]: Justification: "'


def _judge(rubric: Rubric | None, general: bool) -> OutputFormat:
    criteria = list(rubric.criteria) if rubric is not None else []
    parts: list[str] = []
    skeleton: list[str] = []
    free = 0

    def fixed(text: str) -> None:
        parts.append(ebnf_string(text))
        skeleton.append(text)

    def free_line() -> None:
        nonlocal free
        parts.append("text")
        free += 1

    fixed("--- Compliance Check ---\nIdentified Gatekeeper Criterion: ")
    free_line()
    if general:
        fixed("\nGatekeeper Reasoning: ")
        free_line()
    fixed("\n\n--- Analysis ---\n")
    for who in ("A", "B"):
        fixed(f"**Response {who}:**\n")
        for k, c in enumerate(criteria, 1):
            fixed(f"- Criterion {k}")
            parts.append(_criterion_tag(c.kind))
            skeleton.append(" [Principle]: Justification: ")
            free_line()
            fixed("\n")
    fixed("\n--- Final Judgment ---\n")
    if general:
        fixed("Aggregation Summary: ")
        free_line()
        fixed("\n")
    fixed("Justification: ")
    free_line()
    fixed("\nWinner: Response ")
    parts.append('("A" | "B")')
    skeleton.append("A")
    grammar = "root ::= " + " ".join(parts) + "\n" + _text_rule("text")
    name = "judge-general" if general else "judge"
    return OutputFormat(name, grammar, "".join(skeleton), free_fields=free)


def judge_format(rubric: Rubric | None, settings: dict[str, Any] | None = None) -> OutputFormat:
    """The Rubric-ARM judgment for `rubric`: compliance check, exactly one line per criterion
    (with the rubric's tag) for Response A then B, final justification, `Winner: Response A|B`."""
    return _judge(rubric, general=False)


def judge_general_format(
    rubric: Rubric | None, settings: dict[str, Any] | None = None
) -> OutputFormat:
    """The general-domain judgment: judge_format plus gatekeeper reasoning and an aggregation
    summary."""
    return _judge(rubric, general=True)


def direct_format(
    rubric: Rubric | None = None, settings: dict[str, Any] | None = None
) -> OutputFormat:
    """The direct judge: one justification line, then `Winner: Response A|B`."""
    grammar = 'root ::= "Justification: " text "\\nWinner: Response " ("A" | "B")\n' + _text_rule(
        "text"
    )
    return OutputFormat("direct", grammar, "Justification: \nWinner: Response A", free_fields=1)


register_format("rubric", rubric_format)
register_format("judge", judge_format)
register_format("judge-general", judge_general_format)
register_format("direct", direct_format)
