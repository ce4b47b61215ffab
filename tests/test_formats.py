"""Output grammars of the published formats: what they accept is what the parsers read.

Property tests (hypothesis) render random well-formed outputs of every built-in format, check
that xgrammar accepts them as complete, and that the parsers read back the same winner and
criteria; malformed variants must be rejected.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rubric_arm.formats import (
    build_format,
    direct_format,
    format_names,
    judge_format,
    judge_general_format,
    register_format,
    rubric_format,
)
from rubric_arm.rubric import parse_rubric
from rubric_arm.templates import Template, load_template
from rubric_arm.types import Criterion, Rubric
from rubric_arm.verdict import parse_verdict, parse_winner

xgr = pytest.importorskip("xgrammar")

# A byte-level vocabulary of single characters is enough for the matcher to read whole strings.
_VOCAB = [bytes([b]) for b in range(256)] + [b"<eos>"]


@pytest.fixture(scope="module")
def compiler():
    info = xgr.TokenizerInfo(_VOCAB, xgr.VocabType.RAW, stop_token_ids=[256])
    return xgr.GrammarCompiler(info, max_threads=1)


_compiled: dict[str, object] = {}


def accepts(compiler, grammar: str, text: str) -> bool:
    """True when `text` is a complete output of `grammar`."""
    if grammar not in _compiled:
        _compiled[grammar] = compiler.compile_grammar(grammar)
    matcher = xgr.GrammarMatcher(_compiled[grammar])
    return bool(matcher.accept_string(text)) and matcher.is_completed()


_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029<"
_STRIPPED = " \t*_`:-\u2013\u2014=>+#"
_chars = st.characters(
    blacklist_categories=("Cs",), blacklist_characters=_BREAKS, max_codepoint=0x2FFF
)
free_text = st.tuples(
    _chars.filter(lambda c: c not in _STRIPPED), st.text(_chars, max_size=40)
).map("".join)
body_text = st.tuples(
    _chars.filter(lambda c: c not in _STRIPPED + "["),
    st.text(_chars.filter(lambda c: c != "["), max_size=40),
).map("".join)
kinds = st.sampled_from(["hard_rule", "principle", None])
_TAG = {"hard_rule": "Hard Rule", "principle": "Principle"}


def render_judgment(rubric, gate, lines, final, winner, *, general=False, reasoning="", summary=""):
    """A judgment in the published layout; untagged criteria get `[Principle]`."""
    out = ["--- Compliance Check ---", f"Identified Gatekeeper Criterion: {gate}"]
    if general:
        out.append(f"Gatekeeper Reasoning: {reasoning}")
    out += ["", "--- Analysis ---"]
    for who, texts in zip("AB", lines, strict=True):
        out.append(f"**Response {who}:**")
        for k, (c, t) in enumerate(zip(rubric.criteria, texts, strict=True), 1):
            out.append(f"- Criterion {k} [{_TAG.get(c.kind, 'Principle')}]: Justification: {t}")
    out += ["", "--- Final Judgment ---"]
    if general:
        out.append(f"Aggregation Summary: {summary}")
    out += [f"Justification: {final}", f"Winner: Response {winner}"]
    return "\n".join(out)


@st.composite
def judgments(draw):
    n = draw(st.integers(1, 6))
    rubric = Rubric([Criterion(f"c{k}", draw(kinds)) for k in range(n)])
    lines = [[draw(free_text) for _ in range(n)] for _ in "AB"]
    return (
        rubric,
        draw(free_text),
        lines,
        draw(free_text),
        draw(st.sampled_from("AB")),
        draw(free_text),
        draw(free_text),
    )


_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@_SETTINGS
@given(case=judgments(), general=st.booleans())
def test_well_formed_judgments_are_accepted_and_read_back(compiler, case, general):
    rubric, gate, lines, final, winner, reasoning, summary = case
    text = render_judgment(
        rubric, gate, lines, final, winner, general=general, reasoning=reasoning, summary=summary
    )
    fmt = (judge_general_format if general else judge_format)(rubric)
    assert accepts(compiler, fmt.grammar, text)
    verdict = parse_verdict(text, len(rubric.criteria))
    assert verdict.winner == winner
    assert verdict.format_ok, verdict.format_problems
    got = [(c.response, c.index, c.justification) for c in verdict.criterion_justifications]
    want = [
        (who, k, t.strip())
        for who, texts in zip("AB", lines, strict=True)
        for k, t in enumerate(texts, 1)
    ]
    assert got == want
    kinds_read = [c.kind for c in verdict.criterion_justifications[: len(rubric.criteria)]]
    assert kinds_read == [c.kind or "principle" for c in rubric.criteria]
    assert verdict.final_justification == final.strip()


@_SETTINGS
@given(case=judgments(), broken=st.sampled_from(range(7)))
def test_malformed_judgments_are_rejected(compiler, case, broken):
    rubric, gate, lines, final, winner, *_ = case
    good = render_judgment(rubric, gate, lines, final, winner)
    n = len(rubric.criteria)
    bad = {
        0: good.rsplit("\n", 1)[0],  # no Winner line
        1: good.replace(f"Winner: Response {winner}", "Winner: Response C"),
        2: good.replace("Justification: " + lines[0][0], "Justification: **", 1),
        3: good.replace(f"- Criterion {n} ", f"- Criterion {n + 1} ", 1),
        4: good.replace("**Response B:**\n", "**Response B:**\n- Criterion 0 [Principle]: x\n"),
        5: good.replace("--- Final Judgment ---", "--- Final Decision ---"),
        6: good + "\nWinner: Response A",
    }[broken]
    assert bad != good
    assert not accepts(compiler, judge_format(rubric).grammar, bad)


@_SETTINGS
@given(
    items=st.lists(
        st.tuples(body_text, st.sampled_from(["hard_rule", "principle"])), min_size=1, max_size=8
    )
)
def test_well_formed_rubrics_are_accepted_and_read_back(compiler, items):
    text = "\n".join(
        f"{k}. The response {body} [{_TAG[kind]}]" for k, (body, kind) in enumerate(items, 1)
    )
    assert accepts(compiler, rubric_format().grammar, text)
    rubric = parse_rubric(text)
    assert [c.kind for c in rubric.criteria] == [kind for _, kind in items]
    assert all(c.valid for c in rubric.criteria)
    for c, (body, _) in zip(rubric.criteria, items, strict=True):
        clean = " ".join(f"The response {body}".replace("**", "").replace("__", "").split())
        assert c.text == clean.strip("*_` \t")


@_SETTINGS
@given(body=body_text, n=st.integers(1, 4))
def test_malformed_rubrics_are_rejected(compiler, body, n):
    grammar = rubric_format(None, {"max_items": n}).grammar
    item = f"The response {body} [Principle]"
    too_many = "\n".join(f"{k}. {item}" for k in range(1, n + 2))
    assert not accepts(compiler, grammar, too_many)
    assert not accepts(compiler, grammar, f"1. The response {body}")  # untagged
    assert not accepts(compiler, grammar, f"2. {item}")  # numbering starts at 1
    assert not accepts(compiler, grammar, f"1. The response {body} [Principle]\n")


@_SETTINGS
@given(reason=free_text, winner=st.sampled_from("AB"))
def test_direct_format(compiler, reason, winner):
    text = f"Justification: {reason}\nWinner: Response {winner}"
    assert accepts(compiler, direct_format().grammar, text)
    assert parse_winner(text) == (winner, None)
    assert not accepts(compiler, direct_format().grammar, f"Winner: Response {winner}")
    assert not accepts(compiler, direct_format().grammar, text + " and B")


def test_line_breaks_and_think_tags_cannot_enter_free_text(compiler):
    rubric = Rubric([Criterion("c", "principle")])
    grammar = judge_format(rubric).grammar
    base = render_judgment(rubric, "g", [["x"], ["y"]], "f", "A")
    for intruder in ["\u2028", "\r", "\x85", "</think>", "<think>"]:
        assert not accepts(compiler, grammar, base.replace(": x", ": x" + intruder + "z"))


def test_budgeted_constraint_fits_the_token_limit():
    rubric = Rubric([Criterion("c", "principle") for _ in range(5)])
    fmt = judge_format(rubric)
    c = fmt.constraint(448, lambda s: len(s) // 3)
    forced = len(fmt.skeleton) // 3
    assert fmt.free_fields == 12
    assert forced + fmt.free_fields * (c.line_tokens + 1) <= 448
    assert "{0," + str(c.bounded_chars) + "}" in c.bounded()
    assert "{0," not in c.grammar
    assert fmt.constraint().line_tokens is None


def test_registry_and_templates_declare_grammars(compiler):
    assert {"rubric", "judge", "judge-general", "direct"} <= set(format_names())
    for name, fmt in [
        ("generator", "rubric"),
        ("judge", "judge"),
        ("judge-general", "judge-general"),
        ("direct", "direct"),
    ]:
        assert load_template(name).grammar == fmt
    assert load_template("judge").output_format(Rubric([])).name == "judge"
    with pytest.raises(Exception, match="unknown output format"):
        build_format("nope")
    register_format("yes-no", lambda rubric, settings: direct_format())
    assert build_format("yes-no").name == "direct"
    own = Template(
        "own", "direct", "{prompt} {response_a} {response_b}", grammar='root ::= "A" | "B"'
    )
    assert own.output_format().grammar == 'root ::= "A" | "B"'
    assert accepts(compiler, own.output_format().grammar, "B")
    assert Template("none", "direct", "{prompt} {response_a} {response_b}").output_format() is None
    with pytest.raises(Exception, match="neither a known format"):
        Template("bad", "direct", "{prompt} {response_a} {response_b}", grammar="judgee")
    v1 = Template("t", "direct", "{prompt} {response_a} {response_b}", grammar="direct").version
    v2 = Template("t", "direct", "{prompt} {response_a} {response_b}").version
    assert v1 != v2
