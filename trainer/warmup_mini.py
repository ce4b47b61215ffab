"""Stage-I SFT warm-up data for the mini profile, built from instruction-following verifiers.

No strong teacher model is available offline, so the rubric generator and the judge are warmed
up on trajectories written from the mini suite's own labels, mirroring the paper's
"Synthetic-IF" SFT source:

- ifbench / verifiable-if pairs: each verifiable instruction becomes a [Hard Rule] whose
  per-response justification is the recorded verifier outcome; two general [Principle] items
  follow, which no verifier checks and which the trajectories say do not decide the verdict.
- easy-chat pairs: four [Principle] items; the only signal is that the chosen response is a
  strong model's reference answer, which is what the trajectories say.

Every rubric is checked with `parse_rubric` and every trajectory with `parse_verdict` before it
is returned, so a drift in either format raises instead of producing bad SFT rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rubric_arm.rubric import parse_rubric
from rubric_arm.types import (
    Criterion,
    CriterionKind,
    PreferencePair,
    Rubric,
    Winner,
    flip,
    prompt_text,
)
from rubric_arm.verdict import parse_verdict

IF_PRINCIPLES: tuple[str, ...] = (
    "The response addresses the user's request directly and helpfully.",
    "The response is clear, well organised and easy to follow.",
)
CHAT_PRINCIPLES: tuple[str, ...] = (
    "The response gives a correct answer, with accurate reasoning, calculations or code.",
    "The response addresses exactly what the user asked in the latest turn.",
    "The response covers every part of the question.",
    "The response is clear and well organised.",
)
REGISTRY_NAMES: dict[str, str] = {"ifbench": "IFBench", "ifeval": "IFEval"}
_MAX_VALUE_CHARS = 200


def _num(value: Any) -> str:
    """A kwarg number as text: 2.0 -> '2', 0.5 -> '0.5'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _count(value: Any, noun: str) -> str:
    """'1 number' / '3 numbers' for a kwarg count."""
    text = _num(value)
    return f"{text} {noun if text == '1' else noun + 's'}"


def _ordinal(value: Any) -> str:
    """8 -> '8th', 22 -> '22nd' (IFBench writes '8-th')."""
    text = _num(value)
    if not text.isdigit():
        return f"{text}-th"
    n = int(text)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _quote(value: Any) -> str:
    """A kwarg value on one line, double-quoted and cut to a readable length."""
    text = " ".join(str(value).split())
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3].rstrip() + "..."
    return f'"{text}"'


def _join(values: Sequence[Any], conjunction: str) -> str:
    """'"a"', '"a" and "b"', '"a", "b" and "c"'."""
    quoted = [_quote(v) for v in values]
    if len(quoted) <= 1:
        return "".join(quoted)
    return f"{', '.join(quoted[:-1])} {conjunction} {quoted[-1]}"


def _relation(value: Any) -> str:
    """IFEval's relation words as English: 'less than' reads 'fewer than' for counts."""
    return {"less than": "fewer than"}.get(str(value), str(value))


def _words_named(kw: Mapping[str, Any], key: str, conjunction: str) -> str:
    values = list(kw[key])
    if not values:
        raise ValueError(f"empty {key}")
    noun = "keyword" if key == "keywords" else "word"
    return f"the {noun}{'' if len(values) == 1 else 's'} {_join(values, conjunction)}"


_Renderer = Callable[[Mapping[str, Any]], str]

_RENDERERS: dict[str, _Renderer] = {
    # IFBench registry.
    "count:conjunctions": lambda kw: (
        f"The response uses at least {_count(kw['small_n'], 'different coordinating conjunction')}."
    ),
    "count:numbers": lambda kw: f"The response includes exactly {_count(kw['N'], 'number')}.",
    "count:person_names": lambda kw: (
        f"The response mentions at least {_count(kw['N'], 'different person name')} "
        "from the list given in the instruction."
    ),
    "count:pronouns": lambda kw: f"The response includes at least {_count(kw['N'], 'pronoun')}.",
    "count:punctuation": lambda kw: (
        "The response uses every standard punctuation mark at least once, including semicolons, "
        "colons and the interrobang (?!)."
    ),
    "count:unique_word_count": lambda kw: (
        f"The response uses at least {_count(kw['N'], 'unique word')}."
    ),
    "count:word_count_range": lambda kw: (
        f"The response contains between {_num(kw['min_words'])} and {_num(kw['max_words'])} words."
    ),
    "count:words_japanese": lambda kw: (
        f"The response has every {_ordinal(kw['N'])} word written in Japanese."
    ),
    "custom:csv_city": lambda kw: (
        'The response is comma-delimited CSV data with the header "ID", "Country", "City", '
        '"Year", "Count" and exactly 7 data rows.'
    ),
    "custom:date_format_list": lambda kw: (
        "The response lists the requested dates separated by commas in YYYY-MM-DD format, "
        "without any explanation."
    ),
    "format:emoji": lambda kw: "The response ends every sentence with an emoji.",
    "format:line_indent": lambda kw: (
        "The response forms stairs by indenting each new line further than the one before."
    ),
    "format:list": lambda kw: (
        f"The response is a list of items marked with {_quote(kw['sep'])} instead of bullet points."
    ),
    "format:newline": lambda kw: "The response puts each word on a new line.",
    "format:no_bullets_bullets": lambda kw: (
        "The response has at least two sentences ending in a period followed by at least two "
        "bullet points marked with *."
    ),
    "format:no_whitespace": lambda kw: "The response contains no whitespace.",
    "format:options": lambda kw: (
        f"The response consists of exactly one of the options {_quote(kw['options'])}, "
        "with no explanation."
    ),
    "format:output_template": lambda kw: (
        'The response follows the exact template "My Answer: [answer] My Conclusion: '
        '[conclusion] Future Outlook: [outlook]".'
    ),
    "format:parentheses": lambda kw: (
        "The response nests parentheses, brackets and braces at least 5 levels deep."
    ),
    "format:quote_unquote": lambda kw: (
        "The response follows every quoted phrase with an unquoted explanation."
    ),
    "format:quotes": lambda kw: (
        "The response nests quotes within quotes at least 3 levels deep, alternating between "
        "double and single quotes."
    ),
    "format:sub-bullets": lambda kw: (
        "The response uses bullet points marked with * and gives each at least one sub-bullet "
        "marked with -."
    ),
    "format:thesis": lambda kw: (
        "The response begins each section with a thesis statement in italics marked up with HTML."
    ),
    "ratio:overlap": lambda kw: (
        f"The response keeps a trigram overlap of {_num(kw['percentage'])}% (±2%) with the "
        f"reference text {_quote(kw['reference_text'])}."
    ),
    "ratio:sentence_balance": lambda kw: (
        "The response balances its declarative, interrogative and exclamatory sentences."
    ),
    "ratio:sentence_type": lambda kw: (
        "The response keeps a 2:1 ratio of declarative to interrogative sentences."
    ),
    "ratio:sentence_words": lambda kw: (
        "The response consists of three sentences with the same number of characters that all "
        "use different words."
    ),
    "sentence:alliteration_increment": lambda kw: (
        "The response gives each sentence a longer run of consecutive alliterative words than "
        "the sentence before."
    ),
    "sentence:increment": lambda kw: (
        f"The response makes each sentence exactly {_count(kw['small_n'], 'word')} longer than "
        "the one before."
    ),
    "sentence:keyword": lambda kw: (
        f"The response includes the keyword {_quote(kw['word'])} in its {_ordinal(kw['N'])} "
        "sentence."
    ),
    "words:alphabet": lambda kw: (
        "The response starts each word with the next letter of the alphabet, looping back to A "
        "after Z."
    ),
    "words:consonants": lambda kw: (
        "The response has a consonant cluster (two or more consonants together) in every word."
    ),
    "words:last_first": lambda kw: (
        "The response starts each sentence with the last word of the sentence before."
    ),
    "words:no_consecutive": lambda kw: (
        "The response never has two consecutive words starting with the same letter."
    ),
    "words:palindrome": lambda kw: (
        "The response includes at least 10 single-word palindromes of at least 5 characters each."
    ),
    "words:prime_lengths": lambda kw: (
        "The response uses only words whose lengths are prime numbers."
    ),
    "words:repeats": lambda kw: (
        f"The response repeats no word more than {_count(kw['small_n'], 'time')}."
    ),
    # IFEval registry.
    "change_case:english_capital": lambda kw: (
        "The response is written in English and entirely in capital letters."
    ),
    "change_case:english_lowercase": lambda kw: (
        "The response is written in English and entirely in lowercase letters."
    ),
    "detectable_content:number_placeholders": lambda kw: (
        f"The response contains at least {_count(kw['num_placeholders'], 'placeholder')} in "
        "square brackets, such as [address]."
    ),
    "detectable_content:postscript": lambda kw: (
        f"The response ends with a postscript starting with {_quote(kw['postscript_marker'])}."
    ),
    "detectable_format:constrained_response": lambda kw: (
        'The response answers with one of "My answer is yes.", "My answer is no." or '
        '"My answer is maybe."'
    ),
    "detectable_format:json_format": lambda kw: "The response is wrapped entirely in JSON format.",
    "detectable_format:multiple_sections": lambda kw: (
        f"The response has at least {_count(kw['num_sections'], 'section')}, each starting with "
        f"{_quote(str(kw['section_spliter']) + ' X')}."
    ),
    "detectable_format:number_bullet_lists": lambda kw: (
        f"The response contains exactly {_count(kw['num_bullets'], 'markdown bullet point')}."
    ),
    "detectable_format:number_highlighted_sections": lambda kw: (
        f"The response highlights at least {_count(kw['num_highlights'], 'section')} with "
        "markdown, such as *highlighted section*."
    ),
    "detectable_format:title": lambda kw: (
        "The response contains a title wrapped in double angular brackets, such as <<poem of joy>>."
    ),
    "keywords:existence": lambda kw: (
        f"The response includes {_words_named(kw, 'keywords', 'and')}."
    ),
    "keywords:forbidden_words": lambda kw: (
        f"The response does not use {_words_named(kw, 'forbidden_words', 'or')}."
    ),
    "keywords:frequency": lambda kw: (
        f"The response uses the word {_quote(kw['keyword'])} {_relation(kw['relation'])} "
        f"{_count(kw['frequency'], 'time')}."
    ),
    "keywords:letter_frequency": lambda kw: (
        f"The response uses the letter {_quote(kw['letter'])} {_relation(kw['let_relation'])} "
        f"{_count(kw['let_frequency'], 'time')}."
    ),
    "length_constraints:number_paragraphs": lambda kw: (
        f"The response has exactly {_count(kw['num_paragraphs'], 'paragraph')}, separated by "
        "the markdown divider ***."
    ),
    "length_constraints:number_words": lambda kw: (
        f"The response has {_relation(kw['relation'])} {_count(kw['num_words'], 'word')}."
    ),
    "punctuation:no_comma": lambda kw: "The response contains no commas.",
    "startend:end_checker": lambda kw: (
        f"The response ends with the exact phrase {_quote(kw['end_phrase'])}, "
        "with nothing after it."
    ),
    "startend:quotation": lambda kw: "The response is wrapped entirely in double quotation marks.",
}
KNOWN_INSTRUCTIONS: frozenset[str] = frozenset(_RENDERERS)


def registry_name(registry: Any) -> str:
    """The checker family's display name ('IFBench', 'IFEval'), or the raw registry value."""
    text = " ".join(str(registry or "").split())
    return REGISTRY_NAMES.get(text.lower(), text or "instruction")


def fallback_requirement(instruction_id: str, kwargs: Mapping[str, Any], registry: Any) -> str:
    """A grammatical requirement for an instruction without a dedicated renderer."""
    args = [
        f"{k} = {_num(v) if isinstance(v, int | float) else _quote(v)}" for k, v in kwargs.items()
    ]
    joined = ", ".join(args[:-1]) + f" and {args[-1]}" if len(args) > 1 else "".join(args)
    with_args = f" with {joined}" if joined else ""
    return (
        f"The response follows the {registry_name(registry)} instruction "
        f"{_quote(instruction_id)}{with_args}."
    )


def instruction_requirement(
    instruction_id: str, kwargs: Mapping[str, Any] | None, registry: Any = None
) -> str:
    """One sentence starting 'The response' that states what the instruction's checker tests."""
    kw = {k: v for k, v in (kwargs or {}).items() if v is not None}
    renderer = _RENDERERS.get(instruction_id)
    if renderer is not None:
        try:
            return renderer(kw)
        except (KeyError, TypeError, ValueError):
            pass
    return fallback_requirement(instruction_id, kw, registry)


@dataclass(frozen=True)
class _Outcome:
    """One response's verifier result for one instruction (None: not recorded)."""

    loose: bool | None
    strict: bool | None

    @property
    def main(self) -> bool | None:
        return self.loose if self.loose is not None else self.strict

    def justification(self, checker: str) -> str:
        if self.loose is None and self.strict is None:
            return f"Not verified: no result is recorded for the {checker}."
        main = self.main
        verdict = "Meets it" if main else "Fails it"
        if self.loose is None or self.strict is None or self.loose == self.strict:
            mode = "" if self.loose is not None else " in strict mode"
            return f"{verdict}: the {checker} {'passes' if main else 'fails'}{mode}."
        loose = "passes" if self.loose else "fails"
        strict = "passes" if self.strict else "fails"
        return f"{verdict}: the {checker} {loose} in loose mode but {strict} in strict mode."


@dataclass(frozen=True)
class _HardRule:
    requirement: str
    checker: str
    a: _Outcome
    b: _Outcome


def _results(verification: Any, key: str, n: int) -> list[bool | None]:
    values = verification.get(key) if isinstance(verification, Mapping) else None
    if not isinstance(values, list) or len(values) != n:
        return [None] * n
    return [v if isinstance(v, bool) else None for v in values]


def _outcomes(verification: Any, n: int) -> list[_Outcome]:
    loose, strict = _results(verification, "loose", n), _results(verification, "strict", n)
    return [_Outcome(lo, st) for lo, st in zip(loose, strict, strict=True)]


def _hard_rules(pair: PreferencePair) -> list[_HardRule]:
    """The pair's verifiable instructions with both responses' outcomes, in rubric order."""
    meta = pair.metadata
    ids = [str(i) for i in meta.get("instruction_id_list") or []]
    kwargs = list(meta.get("kwargs") or [])
    kwargs += [{}] * (len(ids) - len(kwargs))
    registry = meta.get("registry")
    chosen = _outcomes(meta.get("chosen_verification"), len(ids))
    rejected = _outcomes(meta.get("rejected_verification"), len(ids))
    rules = []
    for k, iid in enumerate(ids):
        kw = kwargs[k] if isinstance(kwargs[k], Mapping) else {}
        a, b = (chosen[k], rejected[k]) if pair.label == "A" else (rejected[k], chosen[k])
        checker = f"{registry_name(registry)} checker for {iid}"
        rules.append(_HardRule(instruction_requirement(iid, kw, registry), checker, a, b))
    return rules


_STOP = frozenset({
    "the", "a", "an", "response", "responses", "is", "are", "be", "of", "in", "on", "to", "and",
    "or", "with", "its", "it", "that", "this", "as", "by", "for", "your", "any", "all", "each",
    "no", "not", "than", "at", "least", "most", "exactly",
})  # fmt: skip

NAME_RECALL = 0.6
"""Share of a requirement's content words a rule must contain to name it (the coverage audit's
default, `reproduce/rubric_coverage.py`)."""


def content_words(text: str) -> set[str]:
    """Lower-case words and numbers of a requirement, without function words."""
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


def names_constraint(rule: str, requirement: str, recall: float = NAME_RECALL) -> bool:
    """Whether `rule` contains at least `recall` of the requirement's content words."""
    want = content_words(requirement)
    return bool(want) and len(want & content_words(rule)) / len(want) >= recall


def verifier_outcome(
    rule: str,
    outcomes: Sequence[tuple[str, bool | None, bool | None]],
    side: str,
    recall: float = NAME_RECALL,
) -> bool | None:
    """The official checker's recorded result, on the response shown as `side` ("A" / "B"), for
    the first of a pair's verifiable constraints (`rule_outcomes(pair)`) that `rule` names; None
    when the rule names none of them or no result is recorded (chat pairs have no constraints)."""
    for requirement, a_ok, b_ok in outcomes:
        if names_constraint(rule, requirement, recall):
            return a_ok if side == "A" else b_ok
    return None


def rule_outcomes(pair: PreferencePair) -> list[tuple[str, bool | None, bool | None]]:
    """(requirement, A's outcome, B's outcome) per verifiable instruction, in shown order; an
    outcome is the verifier's loose result, else its strict one, as the trajectories state it."""
    return [(r.requirement, r.a.main, r.b.main) for r in _hard_rules(pair)]


def _require_label(pair: PreferencePair) -> Winner:
    if pair.label not in ("A", "B"):
        raise ValueError(
            f"pair {pair.id}: warm-up rows need a label 'A' or 'B', got {pair.label!r}"
        )
    return pair.label


def _is_chat(pair: PreferencePair) -> bool:
    """easy-chat pairs (no verifier); anything else must carry instructions."""
    if pair.metadata.get("instruction_id_list"):
        return False
    if pair.subset == "easy-chat":
        return True
    raise ValueError(
        f"pair {pair.id}: subset {pair.subset!r} has no instruction_id_list and is not easy-chat"
    )


def rubric_items(pair: PreferencePair) -> list[tuple[str, CriterionKind]]:
    """The pair's rubric as (criterion text, kind) in order."""
    if _is_chat(pair):
        return [(text, "principle") for text in CHAT_PRINCIPLES]
    hard: list[tuple[str, CriterionKind]] = [
        (r.requirement, "hard_rule") for r in _hard_rules(pair)
    ]
    return hard + [(text, "principle") for text in IF_PRINCIPLES]


def render_rubric(items: Sequence[tuple[str, CriterionKind]]) -> str:
    """Numbered list in the published format: '1. The response ... [Hard Rule]'."""
    return Rubric([Criterion(text, kind) for text, kind in items], "").render()


def pair_rubric(pair: PreferencePair) -> str:
    """The rubric text for one pair."""
    return render_rubric(rubric_items(pair))


def _passes(outcomes: Sequence[_Outcome], mode: str) -> int:
    return sum(1 for o in outcomes if getattr(o, mode) is True)


def _if_decision(rules: Sequence[_HardRule], winner: Winner) -> str:
    """The final justification for a verifier-labelled pair: counts, then what decided it."""
    n = len(rules)
    loose = {
        "A": _passes([r.a for r in rules], "loose"),
        "B": _passes([r.b for r in rules], "loose"),
    }
    strict = {
        "A": _passes([r.a for r in rules], "strict"),
        "B": _passes([r.b for r in rules], "strict"),
    }
    loser: Winner = flip(winner)
    parts = [
        f"Response A passes {loose['A']} of {n} hard rules, Response B passes {loose['B']} of {n}."
    ]
    if strict != loose:
        parts.append(
            f"Under strict checking, Response A passes {strict['A']} of {n} and Response B "
            f"passes {strict['B']} of {n}."
        )
    w_loose, l_loose = loose[winner], loose[loser]
    w_strict, l_strict = strict[winner], strict[loser]
    if w_loose > l_loose and w_strict >= l_strict:
        parts.append(f"Response {winner} meets more of the hard rules, so it is better.")
    elif w_loose == l_loose and w_strict > l_strict:
        parts.append(
            f"The loose counts tie, and strict checking separates them in favour of "
            f"Response {winner}."
        )
    elif w_strict > l_strict:
        parts.append(
            f"Response {winner} passes more hard rules under strict checking, which counts first."
        )
    else:
        parts.append(
            f"The verifier results do not favour Response {winner}; the decision follows the "
            "dataset label."
        )
    parts.append("The principles carry no verifier signal and do not change this.")
    return " ".join(parts)


def _gatekeeper(rules: Sequence[_HardRule], winner: Winner) -> str:
    """The first hard rule that the winner meets and the loser fails, else the first hard rule."""
    for rule in rules:
        w, lo = (rule.a, rule.b) if winner == "A" else (rule.b, rule.a)
        better = [
            w.loose is True and lo.loose is not True,
            w.strict is True and lo.strict is not True,
        ]
        worse = [
            lo.loose is True and w.loose is not True,
            lo.strict is True and w.strict is not True,
        ]
        if any(better) and not any(worse):
            return rule.requirement
    return rules[0].requirement


def _chat_line(pair: PreferencePair, response: Winner) -> str:
    if response == pair.label:
        return (
            "This is the reference answer written by a strong model, assumed to meet this "
            "criterion better than the other answer."
        )
    return (
        "This is not the reference answer but a small model's answer, assumed to meet this "
        "criterion less well than the reference."
    )


def judge_trajectory(pair: PreferencePair) -> str:
    """The judge's output for the pair in the exact format of prompts/judge.yaml."""
    winner = _require_label(pair)
    loser: Winner = flip(winner)
    lines: dict[Winner, list[str]] = {"A": [], "B": []}
    if _is_chat(pair):
        gatekeeper = CHAT_PRINCIPLES[0]
        for response in ("A", "B"):
            line = _chat_line(pair, response)
            for k in range(1, len(CHAT_PRINCIPLES) + 1):
                lines[response].append(f"- Criterion {k} [Principle]: Justification: {line}")
        decision = (
            f"No verifier checks these responses. Response {winner} is the reference answer "
            f"written by a strong model and Response {loser} is not; the label assumes "
            f"the reference is the better answer on correctness and the other principles."
        )
    else:
        rules = _hard_rules(pair)
        gatekeeper = _gatekeeper(rules, winner)
        principle = "No verifier checks this principle; the verdict rests on the hard rules."
        for response in ("A", "B"):
            for k, rule in enumerate(rules, 1):
                outcome = rule.a if response == "A" else rule.b
                reason = outcome.justification(rule.checker)
                lines[response].append(f"- Criterion {k} [Hard Rule]: Justification: {reason}")
            for k in range(len(rules) + 1, len(rules) + len(IF_PRINCIPLES) + 1):
                lines[response].append(f"- Criterion {k} [Principle]: Justification: {principle}")
        decision = _if_decision(rules, winner)
    return "\n".join(
        [
            "--- Compliance Check ---",
            f"Identified Gatekeeper Criterion: {gatekeeper}",
            "",
            "--- Analysis ---",
            "**Response A:**",
            *lines["A"],
            "**Response B:**",
            *lines["B"],
            "",
            "--- Final Judgment ---",
            f"Justification: {decision}",
            f"Winner: Response {winner}",
        ]
    )


def _checked_rubric(pair: PreferencePair) -> tuple[str, list[CriterionKind]]:
    items = rubric_items(pair)
    text = render_rubric(items)
    kinds = [kind for _, kind in items]
    parsed = parse_rubric(text).criteria
    if [c.kind for c in parsed] != kinds or not all(c.valid for c in parsed):
        raise ValueError(f"pair {pair.id}: rubric does not parse back into {len(kinds)} criteria")
    return text, kinds


def drawn_rubric_rows(
    train_pairs: Sequence[PreferencePair], draws: int, seed: int
) -> list[dict[str, str]]:
    """Extra generator warm-up rows: each train-split MT-Bench question with `draws` fresh sets
    of 1-3 constraint sentences, written by the IFEval and IFBench checkers themselves
    (`build_description`, seeded) and placed after or before the question; the rubric's hard
    rules state the drawn parameters, as the warm-up rubrics do. Only questions and instruction
    types of the train split are used, so nothing of a held-out prompt is seen."""
    import random

    from rubric_arm.data.if_sources import load_mtbench_questions
    from rubric_arm.data.mini import VERIFIABLE_IF_POOL, draw_ifeval_constraint
    from rubric_arm.pipeline import stable_hash

    groups = {str(p.metadata.get("group", "")) for p in train_pairs}
    questions = [q for q in load_mtbench_questions() if f"mtbench:{q['question_id']}" in groups]
    ifbench = sorted(
        {
            str(i)
            for p in train_pairs
            if p.metadata.get("registry") == "ifbench"
            for i in p.metadata.get("instruction_id_list") or []
        }
    )
    pool = [("ifeval", i) for i in VERIFIABLE_IF_POOL] + [("ifbench", i) for i in ifbench]
    rows = []
    for q in questions:
        for d in range(draws):
            rng = random.Random(stable_hash(seed, "drawn-rubric", q["question_id"], d))
            picked = rng.sample(pool, rng.choice((1, 1, 2, 3)))
            sentences, items = [], []
            for k, (registry, iid) in enumerate(picked):
                try:
                    text, kwargs = draw_ifeval_constraint(
                        iid, seed, "drawn", q["question_id"], d, k, registry=registry
                    )
                except Exception:  # an IFBench checker that needs inputs this draw lacks
                    continue
                sentences.append(text)
                items.append((instruction_requirement(iid, kwargs, registry), "hard_rule"))
            if not items:
                continue
            question = q["turns"][0].strip()
            joined = " ".join(sentences)
            prompt = f"{joined} {question}" if rng.random() < 0.3 else f"{question} {joined}"
            rubric = render_rubric([*items, *((t, "principle") for t in IF_PRINCIPLES)])
            if len(parse_rubric(rubric).criteria) != len(items) + len(IF_PRINCIPLES):
                raise ValueError(f"drawn rubric for question {q['question_id']} does not parse")
            rows.append({"id": f"drawn/{q['question_id']}/{d}", "prompt": prompt, "rubric": rubric})
    return rows


def mini_warmup_rows(
    pairs: list[PreferencePair],
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(rubric_rows, judge_rows).

    One rubric row per unique prompt text (the first pair wins), one judge row per pair with
    the responses in the pair's order. Raises ValueError naming the pair when a pair lacks a
    label, or when its rubric or trajectory would not parse as the trainer expects.
    """
    rubric_rows: list[dict[str, str]] = []
    judge_rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for pair in pairs:
        label = _require_label(pair)
        prompt = prompt_text(pair.prompt)
        rubric, kinds = _checked_rubric(pair)
        trajectory = judge_trajectory(pair)
        verdict = parse_verdict(trajectory, len(kinds))
        judged = {(j.response, j.index): j.kind for j in verdict.criterion_justifications}
        expected = {(r, k): kind for r in ("A", "B") for k, kind in enumerate(kinds, 1)}
        problems = list(verdict.format_problems)
        if verdict.winner != label:
            problems.append(f"winner {verdict.winner!r} but label {label!r}")
        if judged != expected:
            problems.append("criterion tags differ from the rubric")
        if problems:
            raise ValueError(
                f"pair {pair.id}: judge trajectory fails the check ({'; '.join(problems)})"
            )
        if prompt not in seen:
            seen.add(prompt)
            rubric_rows.append({"id": pair.id, "prompt": prompt, "rubric": rubric})
        judge_rows.append(
            {
                "id": pair.id,
                "prompt": prompt,
                "rubric": rubric,
                "response_a": pair.response_a,
                "response_b": pair.response_b,
                "judgment": trajectory,
            }
        )
    return rubric_rows, judge_rows
