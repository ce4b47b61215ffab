"""Constrained decoding in the transformers engine: grammar masks, forced runs, budgets, P(A)."""

from __future__ import annotations

import pytest

from rubric_arm.formats import judge_format, rubric_format
from rubric_arm.pipeline import RubricARM
from rubric_arm.records import decide
from rubric_arm.types import Criterion, Rubric, SamplingParams, VerdictProbe
from rubric_arm.verdict import parse_verdict

xgr = pytest.importorskip("xgrammar")

RUBRICS = [
    Rubric([Criterion("The response names a colour.", "hard_rule")]),
    Rubric(
        [
            Criterion("The response is short.", "hard_rule"),
            Criterion("The response is polite.", "principle"),
        ]
    ),
    Rubric(
        [
            Criterion("The response answers.", "hard_rule"),
            Criterion("The response is clear.", "principle"),
            Criterion("An untagged item", None, valid=False),
        ]
    ),
]


def _chats(n: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"Judge pair {i}: red or blue?"}] for i in range(n)]


def _grammar_accepts(engine, grammar: str, text: str) -> bool:
    runtime = engine.grammar_runtime()
    matcher = xgr.GrammarMatcher(runtime.compiler.compile_grammar(grammar))
    return bool(matcher.accept_string(text)) and matcher.is_completed()


def test_constrained_outputs_follow_the_grammar(tiny_engine):
    rubrics = [RUBRICS[i % 3] for i in range(6)]
    constraints = [judge_format(r).constraint(200, tiny_engine.count_tokens) for r in rubrics]
    outs = tiny_engine.generate(
        _chats(6), SamplingParams(max_new_tokens=200), constraints=constraints, probe=VerdictProbe()
    )
    for out, rubric, c in zip(outs, rubrics, constraints, strict=True):
        comp = out[0]
        assert comp.finish_reason == "stop"
        assert _grammar_accepts(tiny_engine, c.grammar, comp.text)
        verdict = parse_verdict(comp.text, len(rubric.criteria))
        assert verdict.winner in ("A", "B") and verdict.format_ok, verdict.format_problems
        assert 0 < comp.forced_tokens < comp.completion_tokens
        assert comp.label_probs is not None
        assert comp.label_probs["A"] + comp.label_probs["B"] == pytest.approx(1.0)
        # the verdict letter is the likelier of the two under greedy decoding
        assert verdict.winner == max(comp.label_probs, key=comp.label_probs.get)


def test_free_text_spans_stay_within_their_token_budget(tiny_engine):
    rubric = RUBRICS[1]
    c = judge_format(rubric).constraint(200, tiny_engine.count_tokens)
    tight = type(c)(c.grammar, c.name, line_tokens=3, end_chars=c.end_chars)
    out = tiny_engine.generate(
        _chats(3), SamplingParams(max_new_tokens=200), constraints=[tight] * 3
    )
    for o in out:
        text = o[0].text
        assert parse_verdict(text, 2).format_ok
        lines = [
            ln.split("Justification: ", 1)[-1] for ln in text.splitlines() if ln.startswith("- ")
        ]
        assert len(lines) == 4
        for body in lines:
            assert tiny_engine.count_tokens(" " + body) <= 3 + 2


@pytest.mark.parametrize("overhead", [6.0, 1e9])
def test_jump_forward_gives_the_same_outputs_as_one_token_a_step(
    tiny_model_path, tiny_engine, overhead
):
    """Wide steps (a huge overhead: always the longest queue, many masked holes) change nothing."""
    from rubric_arm.engines.transformers_engine import TransformersEngine

    lockstep = TransformersEngine(tiny_model_path, progress=False, jump_tokens=1)
    tiny_engine.jump_overhead = overhead
    constraints = [judge_format(r).constraint(200, tiny_engine.count_tokens) for r in RUBRICS]
    params = SamplingParams(max_new_tokens=200)
    try:
        fast = tiny_engine.generate(_chats(3), params, constraints=constraints)
    finally:
        tiny_engine.jump_overhead = 6.0
    slow = lockstep.generate(_chats(3), params, constraints=constraints)
    assert [o[0].text for o in fast] == [o[0].text for o in slow]
    assert [o[0].forced_tokens for o in fast] == [o[0].forced_tokens for o in slow]


def test_jump_width_weighs_holes_against_step_overhead(tiny_engine):
    width = tiny_engine._jump_width
    assert width([1]) == 1 and width([9]) == 9 and width([200]) == tiny_engine.jump_tokens
    assert width([1] * 7 + [10]) == 1  # one forced run among eight rows: holes cost more
    assert width([1] * 6 + [10, 10]) == 10  # two runs pay for the holes
    assert width([3, 3, 3, 3]) == 3
    tiny_engine.jump_overhead = 0.0
    try:
        assert width([2, 5, 9]) == 2  # no step overhead: the shortest queue, no holes
    finally:
        tiny_engine.jump_overhead = 6.0


def test_mixed_batches_and_sampled_decoding(tiny_engine):
    c = rubric_format(None, {"max_items": 3}).constraint(96, tiny_engine.count_tokens)
    params = SamplingParams(temperature=1.0, max_new_tokens=96, n=3, seed=7)
    outs = tiny_engine.generate(_chats(4), params, constraints=[c, None, c, None])
    again = tiny_engine.generate(_chats(4), params, constraints=[c, None, c, None])
    assert [[s.text for s in o] for o in outs] == [[s.text for s in o] for o in again]
    for i in (0, 2):
        for s in outs[i]:
            assert _grammar_accepts(tiny_engine, c.grammar, s.text) or s.finish_reason == "length"
            assert s.text.startswith("1. The response ")
    assert all(s.forced_tokens == 0 for i in (1, 3) for s in outs[i])


def test_two_hundred_tiny_judgments_all_decide(tiny_model_path):
    """The tiny random model, constrained, writes a well-formed judgment every time."""
    arm = RubricARM.from_preset("tiny", cache=False)
    pairs = [
        {
            "id": str(i),
            "prompt": f"Question {i}: name a fruit.",
            "response_a": "Apple." if i % 2 else "Pear, I think.",
            "response_b": "Banana!" if i % 3 else "No idea.",
            "label": "A" if i % 2 else "B",
        }
        for i in range(100)
    ]
    rubrics = [RUBRICS[i % 3] for i in range(100)]
    records = arm.judge(pairs, order="both", rubrics=rubrics)
    judgments = [j for r in records for j in r.judgments]
    assert len(judgments) == 200
    assert all(j.winner is not None and j.format_ok for j in judgments)
    assert all(j.p_a is not None for j in judgments)
    assert all(r.decoding == "constrained" for r in records)
    # two orders that disagree tie under the vote; the mean P(A) still decides them
    assert all(decide(r.judgments, "prob") is not None for r in records if r.p_a != 0.5)
    # the pair-level P(A) is the mean over both orders, mapped to the pair's own labels
    r = records[0]
    assert r.p_a == pytest.approx(sum(j.p_a for j in r.judgments) / 2, abs=1e-6)


def test_constrained_rubrics_always_parse(tiny_model_path):
    arm = RubricARM.from_preset("tiny", cache=False)
    results = arm.rubrics([f"Write {i} words about tea." for i in range(8)])
    assert all(r.rubric.is_valid for r in results)
    assert all(len(r.rubric.criteria) <= arm.max_rubric_items for r in results)


def test_free_decoding_records_probabilities_when_a_winner_line_appears(tiny_engine):
    chat = [{"role": "user", "content": "Say: Winner: Response"}]
    # force a Winner line through a tiny grammar, then read P(A) under the probe
    from rubric_arm.types import Constraint

    c = Constraint('root ::= "Winner: Response " ("A" | "B")', name="w")
    out = tiny_engine.generate(
        [chat], SamplingParams(max_new_tokens=16), constraints=[c], probe=VerdictProbe()
    )
    comp = out[0][0]
    assert comp.text in ("Winner: Response A", "Winner: Response B")
    assert comp.label_probs is not None
    free = tiny_engine.generate([chat], SamplingParams(max_new_tokens=8), probe=VerdictProbe())
    assert free[0][0].label_probs is None or set(free[0][0].label_probs) == {"A", "B"}


def test_an_engine_without_constraints_says_so():
    from tests.scripted_engine import ScriptedEngine

    engine = ScriptedEngine("judge")
    with pytest.raises(Exception, match="cannot constrain decoding"):
        RubricARM(engine, engine, decoding="constrained")
    assert RubricARM(engine, engine, decoding="free").decoding == "free"


def test_forced_tokens_have_no_logprob(tiny_engine):
    c = judge_format(RUBRICS[1]).constraint(200, tiny_engine.count_tokens)
    params = SamplingParams(temperature=1.0, max_new_tokens=200, n=2, seed=1, logprobs=True)
    for o in tiny_engine.generate(_chats(1), params, constraints=[c])[0]:
        assert len(o.token_logprobs) == len(o.token_ids) == o.completion_tokens
        assert sum(lp is None for lp in o.token_logprobs) >= o.forced_tokens > 0
        assert all(lp <= 0 for lp in o.token_logprobs if lp is not None)
