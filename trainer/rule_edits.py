"""Minimal-edit rule rows: train-split responses edited toward meeting or failing one IFEval
instruction, each labelled by the official checker (never by what the edit meant to do).

The rule probe (`reproduce/rule_probe.py`) found that SmolLM2-135M learns the per-rule check
only weakly from the responses the mini suite samples: in those, a response that meets an
instruction and one that fails it differ in everything at once. An edit changes one thing (a
postscript added, the commas taken out, the text split into `***` paragraphs), so a row and its
edited twin differ only in what the requirement is about. Any train-split response is a base
text for any of the suite's 19 IFEval instructions; nothing of the held-out split is read.

IFBench's instructions get transfer rows instead (`transfer_rule_rows`): the train responses as
they are, checked against IFBench instructions other prompts asked for.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from rubric_arm.trainer.rule_rows import RuleRow
from rubric_arm.types import PreferencePair

Edit = Callable[[str, dict[str, Any]], list[str]]
"""(text, the instruction's kwargs) -> edited texts (toward and away from meeting it)."""


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _chunks(text: str, n: int) -> list[str]:
    """The text in `n` consecutive groups of sentences (of words when it has fewer sentences)."""
    parts = _sentences(text)
    if len(parts) < n:
        parts = text.split()
    n = max(1, min(n, len(parts)))
    size, extra = divmod(len(parts), n)
    out, start = [], 0
    for k in range(n):
        end = start + size + (1 if k < extra else 0)
        out.append(" ".join(parts[start:end]))
        start = end
    return out


def _words_out(text: str, words: Sequence[str]) -> str:
    for w in words:
        text = re.sub(rf"\b{re.escape(w)}\b", "", text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", text)


def _mentions(words: Sequence[str], times: int = 1) -> str:
    return " ".join(f"This also concerns {w}." for w in words for _ in range(times))


def _insert(text: str, addition: str) -> str:
    """`addition` after the text's first sentence: inside the text, where the checker's loose
    reading (which drops the first and last lines) still sees it."""
    sents = _sentences(text)
    return " ".join([*sents[:1], addition, *sents[1:]])


def _near(n: int) -> list[int]:
    """Counts around `n`; n + 2, because the loose reading may drop a line and with it one."""
    return sorted({max(1, n - 1), max(1, n), n + 2})


def _prefix_with(text: str, letter: str, count: int) -> str:
    """The longest word-boundary prefix holding fewer than `count` of `letter`."""
    seen = 0
    for m in re.finditer(r"\S+\s*", text):
        seen += m.group().lower().count(letter.lower())
        if seen >= count:
            return text[: m.start()].rstrip()
    return text


def _repeated_past(text: str, letter: str, count: int) -> str:
    """The text repeated (at most 12 times) until it holds more than `count` of `letter`, even
    without its first or last paragraph (the loose reading drops those)."""
    per = max(1, text.lower().count(letter.lower()))
    return "\n\n".join([text] * min(12, count // per + 3))


def _first_words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def _highlight(text: str, k: int) -> str:
    """The first `k` words of the text's second sentence on (or of the text) as *highlights*."""
    words = text.split(" ")
    start = min(len(_sentences(text)[0].split(" ")), max(0, len(words) - k))
    marked = [f"*{w}*" if start <= i < start + k and w.strip() else w for i, w in enumerate(words)]
    return " ".join(marked)


def _bullets(text: str, k: int) -> str:
    return "\n".join(f"* {c}" for c in _chunks(text, k))


def _sections(text: str, splitter: str, n: int) -> str:
    return "\n\n".join(f"{splitter} {i + 1}\n{c}" for i, c in enumerate(_chunks(text, n)))


EDITS: dict[str, Edit] = {
    "keywords:existence": lambda t, kw: [
        _insert(t, _mentions(kw["keywords"])),
        _words_out(t, kw["keywords"]),
    ],
    "keywords:frequency": lambda t, kw: [
        _words_out(t, [kw["keyword"]]),
        *(_insert(t, _mentions([kw["keyword"]], f)) for f in _near(kw["frequency"])),
    ],
    "keywords:forbidden_words": lambda t, kw: [
        _words_out(t, kw["forbidden_words"]),
        _insert(t, _mentions(kw["forbidden_words"][:1])),
    ],
    "keywords:letter_frequency": lambda t, kw: [
        _prefix_with(t, kw["letter"], kw["let_frequency"]),
        _repeated_past(t, kw["letter"], kw["let_frequency"]),
    ],
    "length_constraints:number_paragraphs": lambda t, kw: [
        *("\n\n***\n\n".join(_chunks(t, n)) for n in _near(kw["num_paragraphs"])),
        t.replace("***", ""),
    ],
    "length_constraints:number_words": lambda t, kw: [
        _first_words(t, max(1, kw["num_words"] - 5)),
        _first_words(" ".join([t] * 8), kw["num_words"] + 60),
    ],
    "detectable_content:number_placeholders": lambda t, kw: [
        re.sub(r"\[[^\]]*\]", "", t),
        *(
            f"{t}\n\n" + " ".join(f"See [source {i + 1}]." for i in range(k))
            for k in (kw["num_placeholders"] - 1, kw["num_placeholders"])
            if k > 0
        ),
    ],
    "detectable_content:postscript": lambda t, kw: [
        f"{t}\n\n{kw['postscript_marker']} I hope this helps.",
        "\n".join(
            line
            for line in t.splitlines()
            if not line.strip().startswith(kw["postscript_marker"].rstrip("."))
        ),
    ],
    "detectable_format:number_bullet_lists": lambda t, kw: [
        *(_bullets(t, k) for k in _near(kw["num_bullets"])),
        re.sub(r"(?m)^\s*[*-]\s+", "", t),
    ],
    "detectable_format:constrained_response": lambda t, kw: [
        f"My answer is yes.\n\n{t}",
        re.sub(r"My answer is (yes|no|maybe)\.", "", t),
    ],
    "detectable_format:number_highlighted_sections": lambda t, kw: [
        *(_highlight(t, k) for k in (kw["num_highlights"] - 1, kw["num_highlights"]) if k >= 0),
        t.replace("*", ""),
    ],
    "detectable_format:multiple_sections": lambda t, kw: [
        *(
            _sections(t, kw["section_spliter"], n)
            for n in (kw["num_sections"] - 1, kw["num_sections"])
            if n > 0
        ),
        re.sub(rf"(?mi)^\s*{re.escape(kw['section_spliter'])}\s*\d+\s*$", "", t),
    ],
    "detectable_format:json_format": lambda t, kw: [
        "```json\n" + json.dumps({"answer": t}) + "\n```",
        "{" + t + "}",
    ],
    "detectable_format:title": lambda t, kw: [
        f"<<{_first_words(t, 4).strip('.,:;!?')}>>\n\n{t}",
        re.sub(r"<<[^>]*>>", "", t),
    ],
    "startend:end_checker": lambda t, kw: [
        f"{t.rstrip()} {kw['end_phrase']}",
        f"{t.rstrip()} {kw['end_phrase']} Thank you.",
    ],
    "startend:quotation": lambda t, kw: [f'"{t.strip()}"', t.strip().strip('"')],
    "change_case:english_capital": lambda t, kw: [t.upper(), t.lower()],
    "change_case:english_lowercase": lambda t, kw: [t.lower(), t.upper()],
    "punctuation:no_comma": lambda t, kw: [
        t.replace(",", ""),
        re.sub(r"^(\S+)", r"\1,", t.replace(",", ""), count=1),
    ],
}


def edit_rule_rows(
    pairs: Sequence[PreferencePair],
    *,
    per_instruction: int = 60,
    instructions_per_text: int = 3,
    seed: int = 0,
) -> list[RuleRow]:
    """Rows from every distinct response of `pairs` (pass the train split only) and its edits.

    Each text gets `instructions_per_text` of the 19 IFEval instructions (seeded draw, parameters
    drawn as the mini build draws them); the text and its edits are checked by the official
    IFEval checker (its loose result, as the warm-up trajectories read it). Per instruction,
    as many rows meet as fail (at most `per_instruction` in all), so no answer prior is learned.
    """
    from rubric_arm.data.mini import VERIFIABLE_IF_POOL, draw_ifeval_constraint

    texts = list(dict.fromkeys(t for p in pairs for t in (p.response_a, p.response_b) if t.strip()))
    rng = random.Random(seed)
    rows = _CheckedRows()
    for j, text in enumerate(texts):
        for iid in rng.sample(VERIFIABLE_IF_POOL, instructions_per_text):
            _, kwargs = draw_ifeval_constraint(iid, seed, "edit-args", j, iid)
            variants = [v for v in dict.fromkeys([text, *EDITS[iid](text, kwargs)]) if v.strip()]
            rows.add("ifeval", iid, kwargs, variants, f"edit:{j}:{iid}", "v")
    return _balanced(rows.by_id, per_instruction, rng)


class _CheckedRows:
    """Rule rows labelled by the official checker's loose result, grouped by instruction and by
    that result; a (requirement, text) seen before is not added again."""

    def __init__(self) -> None:
        from rubric_arm.data.verifiers import RuleVerifier

        self.verifier = RuleVerifier()
        self.by_id: dict[str, dict[bool, list[RuleRow]]] = defaultdict(
            lambda: {True: [], False: []}
        )
        self.seen: set[tuple[str, str]] = set()

    def add(
        self,
        registry: str,
        iid: str,
        kwargs: dict[str, Any],
        texts: Sequence[str],
        pair_id: str,
        side: str,
    ) -> None:
        """`texts` checked against one instruction; row k of them is side f"{side}{k}"."""
        from rubric_arm.data.verifiers import VerifiableItem
        from rubric_arm.trainer.warmup_mini import instruction_requirement

        requirement = instruction_requirement(iid, kwargs, registry)
        item = VerifiableItem(pair_id, "", (iid,), (kwargs,), registry)
        for k, (text, check) in enumerate(
            zip(texts, self.verifier.verify(item, texts), strict=True)
        ):
            if check.status != "ok" or (requirement, text) in self.seen:
                continue
            self.seen.add((requirement, text))
            meets = check.loose[0]
            row = RuleRow(pair_id, 0, iid.split(":")[0], requirement, text, f"{side}{k}", meets)
            self.by_id[iid][meets].append(row)


def _balanced(
    by_id: dict[str, dict[bool, list[RuleRow]]], per_instruction: int, rng: random.Random
) -> list[RuleRow]:
    """Per instruction as many meeting rows as failing ones (at most `per_instruction`), shuffled."""
    rows: list[RuleRow] = []
    for iid in sorted(by_id):
        pos, neg = by_id[iid][True], by_id[iid][False]
        k = min(len(pos), len(neg), per_instruction // 2)
        rows += rng.sample(pos, k) + rng.sample(neg, k)
    rng.shuffle(rows)
    return rows


def transfer_rule_rows(
    pairs: Sequence[PreferencePair],
    *,
    per_instruction: int = 30,
    draws: int = 3,
    seed: int = 0,
) -> list[RuleRow]:
    """IFBench check rows without edits: each IFBench instruction of `pairs` (pass the train split
    only), its parameters drawn `draws` times as the mini build draws them, checked by the official
    IFBench checker against every distinct response of `pairs`, most written for other prompts.

    IFBench's instructions have no edit functions here; a checker run on unrelated text still
    labels it exactly, and for most instructions some texts pass and some fail. Per instruction,
    as many rows meet as fail (at most `per_instruction`); an instruction every text passes (or
    fails), or whose checker needs inputs a draw lacks, gives none.
    """
    from rubric_arm.data.mini import draw_ifeval_constraint

    texts = list(dict.fromkeys(t for p in pairs for t in (p.response_a, p.response_b) if t.strip()))
    ids = sorted(
        {
            str(i)
            for p in pairs
            if p.metadata.get("registry") == "ifbench"
            for i in p.metadata.get("instruction_id_list") or []
        }
    )
    rng = random.Random(f"transfer-{seed}")
    rows = _CheckedRows()
    for iid in ids:
        for d in range(draws):
            try:
                _, kwargs = draw_ifeval_constraint(iid, seed, "transfer", d, registry="ifbench")
            except Exception:  # a checker whose description needs inputs this draw lacks
                continue
            rows.add("ifbench", iid, kwargs, texts, f"transfer:{d}:{iid}", "t")
    return _balanced(rows.by_id, per_instruction, rng)
