"""RubricARM pipeline logic on a scripted engine: caching, orders, votes, truncation, bad input."""

from __future__ import annotations

import pytest
from scripted_engine import RUBRIC, ScriptedEngine, judge_output

from rubric_arm.cache import RubricCache
from rubric_arm.errors import InputError
from rubric_arm.pipeline import RubricARM, stable_hash
from rubric_arm.types import SamplingParams


def make_arm(tmp_path, *, gen=None, judge=None, cache=True, **kw):
    gen = gen or ScriptedEngine("generator")
    judge = judge or ScriptedEngine("judge")
    if cache is True:
        cache = RubricCache(tmp_path / "cache.sqlite")
    arm = RubricARM(
        gen,
        judge,
        cache=cache,
        rubric_sampling=SamplingParams(max_new_tokens=64),
        judge_sampling=kw.pop("judge_sampling", SamplingParams(max_new_tokens=64)),
        **kw,
    )
    return arm, gen, judge


def pairs(n_prompts=2, per_prompt=2, good_first=True):
    rows = []
    for p in range(n_prompts):
        for k in range(per_prompt):
            a_good = good_first if k % 2 == 0 else not good_first
            rows.append(
                {
                    "id": f"p{p}-{k}",
                    "prompt": f"Question number {p}?",
                    "response_a": "GOOD answer" if a_good else "BAD answer",
                    "response_b": "BAD answer" if a_good else "GOOD answer",
                    "label": "A" if a_good else "B",
                    "subset": "s",
                }
            )
    return rows


def test_one_rubric_per_unique_prompt_and_cached_across_calls(tmp_path):
    arm, gen, _ = make_arm(tmp_path)
    recs = arm.judge(pairs(2, 3), order="as_given")
    assert [len(c[0]) for c in gen.calls] == [2]
    assert all(r.rubric is not None and r.rubric.cached is False for r in recs)
    again = arm.judge(pairs(2, 3), order="as_given")
    assert len(gen.calls) == 1, "second run must reuse cached rubrics"
    assert all(r.rubric is not None and r.rubric.cached for r in again)
    assert arm.cache.stats()["hits"] == 2


def test_records_carry_the_pairs_source_prompt_as_cluster(tmp_path):
    arm, _, _ = make_arm(tmp_path)
    rows = pairs(2, 2)
    for row in rows[:2]:
        row["metadata"] = {"group": "mtbench:81"}
    recs = arm.judge(rows, order="as_given")
    assert [r.cluster for r in recs] == ["mtbench:81", "mtbench:81", None, None]
    assert recs[0].to_dict()["cluster"] == "mtbench:81"


def test_cache_survives_a_new_instance_and_is_keyed_by_template_and_model(tmp_path):
    arm, gen, _ = make_arm(tmp_path)
    arm.rubrics(["Same prompt"])
    arm2, gen2, _ = make_arm(tmp_path)
    arm2.rubrics(["Same prompt"])
    assert gen2.calls == []
    arm3, gen3, _ = make_arm(tmp_path, gen=ScriptedEngine("generator", fingerprint="other"))
    arm3.rubrics(["Same prompt"])
    assert len(gen3.calls) == 1


def test_generator_template_role_is_checked(tmp_path):
    with pytest.raises(InputError, match="judge template"):
        make_arm(tmp_path, generator_template="judge")


def test_no_cache_regenerates(tmp_path):
    arm, gen, _ = make_arm(tmp_path, cache=False)
    arm.rubrics(["P"])
    arm.rubrics(["P"])
    assert len(gen.calls) == 2
    assert not (tmp_path / "cache.sqlite").exists()


def test_all_judge_calls_of_a_stage_in_one_engine_call(tmp_path):
    arm, _, judge = make_arm(tmp_path)
    arm.judge(pairs(3, 2), order="both")
    assert len(judge.calls) == 1
    assert len(judge.calls[0][0]) == 12


@pytest.mark.parametrize("order", ["as_given", "random", "both"])
def test_winner_maps_back_to_the_pairs_labels(tmp_path, order):
    arm, _, _ = make_arm(tmp_path)
    recs = arm.judge(pairs(4, 4), order=order, seed=3)
    assert all(r.status == "ok" for r in recs)
    assert all(r.correct for r in recs), [(r.id, r.winner, r.label) for r in recs]
    per = {"as_given": 1, "random": 1, "both": 2}[order]
    assert all(len(r.judgments) == per for r in recs)


def test_random_order_is_seeded_per_pair(tmp_path):
    arm, _, _ = make_arm(tmp_path)
    data = pairs(8, 4)
    a = [r.judgments[0].order for r in arm.judge(data, order="random", seed=1)]
    b = [r.judgments[0].order for r in arm.judge(list(reversed(data)), order="random", seed=1)]
    c = [r.judgments[0].order for r in arm.judge(data, order="random", seed=2)]
    assert a == list(reversed(b)), "a pair's order must not depend on its position"
    assert a != c
    assert 8 <= a.count("BA") <= 24
    assert stable_hash(1, "order", "x") == stable_hash(1, "order", "x")


def test_votes_majority_and_sampling_params(tmp_path):
    script = {0: "A", 1: "B", 2: "A"}
    judge = ScriptedEngine("judge", judge_fn=lambda text, v: judge_output(script[v]))
    arm, _, judge = make_arm(
        tmp_path, judge=judge, judge_sampling=SamplingParams(temperature=1.0, max_new_tokens=64)
    )
    rec = arm.judge(pairs(1, 1), order="as_given", votes=3, seed=5)[0]
    assert judge.calls[0][1].n == 3
    assert judge.calls[0][1].seed is not None
    assert [j.winner for j in rec.judgments] == ["A", "B", "A"]
    assert rec.winner == "A"


def test_votes_need_sampling(tmp_path):
    arm, _, _ = make_arm(tmp_path)
    with pytest.raises(InputError, match="temperature"):
        arm.judge(pairs(1, 1), votes=3)


def test_both_orders_disagreeing_gives_no_winner(tmp_path):
    judge = ScriptedEngine("judge", judge_fn=lambda text, v: judge_output("A"))
    arm, _, _ = make_arm(tmp_path, judge=judge)
    rec = arm.judge(pairs(1, 1), order="both")[0]
    assert [j.winner for j in rec.judgments] == ["A", "B"]
    assert rec.winner is None and rec.correct is False


def test_unparseable_judge_output_is_a_recorded_failure(tmp_path):
    judge = ScriptedEngine("judge", judge_fn=lambda text, v: "I cannot decide between them.")
    arm, _, _ = make_arm(tmp_path, judge=judge)
    rec = arm.judge(pairs(1, 1), order="as_given")[0]
    assert rec.status == "ok"
    assert rec.winner is None
    assert rec.judgments[0].failure == "no_winner"
    assert rec.judgments[0].format_ok is False
    assert rec.parse_failures == 1


def test_rubric_without_tagged_items_is_flagged(tmp_path):
    gen = ScriptedEngine("generator", rubric="Be good.\nBe nice.")
    arm, _, _ = make_arm(tmp_path, gen=gen)
    rec = arm.judge(pairs(1, 1), order="as_given")[0]
    assert rec.rubric is not None and rec.rubric.valid is False
    assert rec.status == "ok"


def test_bad_rows_become_counted_records_naming_row_and_field(tmp_path):
    rows = pairs(1, 2)
    rows.insert(1, {"id": "x", "prompt": "Q", "response_a": "fine"})
    rows.insert(2, {"id": "y", "prompt": "", "response_a": "a", "response_b": "b"})
    rows.insert(3, {"id": "z", "prompt": "Q", "response_a": 3, "response_b": "b"})
    rows.insert(4, "not an object")
    recs = arm_judge(tmp_path, rows)
    status = [r.status for r in recs]
    assert status == [
        "ok",
        "invalid_input",
        "invalid_input",
        "invalid_input",
        "invalid_input",
        "ok",
    ]
    assert "row 1" in recs[1].error and "response_b" in recs[1].error
    assert "prompt" in recs[2].error and "empty" in recs[2].error
    assert "response_a" in recs[3].error and "int" in recs[3].error
    assert "row 4" in recs[4].error


def arm_judge(tmp_path, rows, **kw):
    arm, _, _ = make_arm(tmp_path)
    return arm.judge(rows, order="as_given", **kw)


def test_long_responses_are_truncated_never_the_instruction(tmp_path):
    judge = ScriptedEngine("judge", context_length=700)
    arm, _, judge = make_arm(tmp_path, judge=judge)
    long_a = "GOOD " + "word " * 2000
    rows = [
        {
            "id": "1",
            "prompt": "KEEP THIS INSTRUCTION",
            "response_a": long_a,
            "response_b": "BAD short",
            "label": "A",
        }
    ]
    rec = arm.judge(rows, order="as_given")[0]
    assert rec.status == "ok"
    assert set(rec.truncated) == {"response_a"} and rec.truncated["response_a"] > 1000
    chat = judge.calls[0][0][0]
    assert "KEEP THIS INSTRUCTION" in chat[-1]["content"]
    assert judge.chat_tokens(chat) + 64 <= 700
    assert rec.correct


def test_instruction_too_long_is_an_explicit_outcome(tmp_path):
    judge = ScriptedEngine("judge", context_length=600)
    arm, _, _ = make_arm(tmp_path, judge=judge)
    rows = [{"id": "1", "prompt": "word " * 500, "response_a": "GOOD", "response_b": "BAD"}]
    rec = arm.judge(rows)[0]
    assert rec.status == "prompt_too_long"
    assert "tokens for the responses" in rec.error
    assert rec.judgments == []


def test_compare_and_record_fields(tmp_path):
    arm, _, _ = make_arm(tmp_path)
    rec = arm.compare("Q?", "BAD", "GOOD")
    d = rec.to_dict()
    assert d["winner"] == "B" and d["order"] == "as_given"
    assert d["generator"] == "scripted-1" and d["judge_template"].startswith("judge@")
    assert d["generator_template"].startswith("generator@")
    assert d["rubric"]["text"] == RUBRIC and d["rubric"]["n_valid"] == 2
    assert d["judgments"][0]["format_ok"] is True


def test_chat_prompts_are_accepted(tmp_path):
    arm, _, _ = make_arm(tmp_path)
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Pick one"},
    ]
    rec = arm.compare(chat, "GOOD", "BAD")
    assert rec.winner == "A"
    bad = arm.compare(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}], "GOOD", "BAD"
    )
    assert bad.status == "invalid_input" and "user turn" in bad.error


def test_sampled_judgments_do_not_depend_on_chunking(tiny_engine, tmp_path):
    arm = RubricARM(
        tiny_engine,
        cache=RubricCache(tmp_path / "c.sqlite"),
        rubric_sampling=SamplingParams(max_new_tokens=16),
        judge_sampling=SamplingParams(temperature=1.0, max_new_tokens=16),
    )
    data = pairs(3, 2)
    whole = arm.judge(data, order="random", votes=2, seed=11)
    split = arm.judge(data[:2], order="random", votes=2, seed=11)
    split += arm.judge(data[2:], order="random", votes=2, seed=11)
    assert [[j.text for j in r.judgments] for r in whole] == [
        [j.text for j in r.judgments] for r in split
    ]
    other = arm.judge(data, order="random", votes=2, seed=12)
    assert [r.judgments[0].text for r in other] != [r.judgments[0].text for r in whole]


def test_pair_objects_are_validated_too(tmp_path):
    from rubric_arm.types import PreferencePair

    arm, _, _ = make_arm(tmp_path)
    good = PreferencePair("g", "Q?", "GOOD", "BAD", "A")
    bad = PreferencePair("b", "Q?", "GOOD", "   ", "A")
    recs = arm.judge([good, bad], order="as_given")
    assert [r.status for r in recs] == ["ok", "invalid_input"]
    assert "response_b" in recs[1].error and "empty" in recs[1].error


def test_package_exposes_the_pipeline():
    import rubric_arm

    assert rubric_arm.RubricARM is RubricARM
    with pytest.raises(AttributeError):
        rubric_arm.NoSuchThing  # noqa: B018


def test_explicit_aggregation_scores_each_hard_rule_and_response_without_generating(tmp_path):
    arm, _, judge = make_arm(tmp_path, aggregation="explicit")
    rows = pairs(2, 2)
    recs = arm.judge(rows, order="both", seed=0)
    assert [r.winner for r in recs] == [r["label"] for r in rows]
    assert all(r.correct and len(r.judgments) == 1 for r in recs)
    assert not judge.calls  # no judgment is written
    (chats,) = judge.label_calls
    # one check per (hard rule, response): RUBRIC has one hard rule and one principle
    assert len(chats) == 2 * len(rows)
    assert "follows every explicit instruction" in chats[0][0]["content"]
    rec = recs[0]
    assert rec.p_a == pytest.approx(0.973, abs=0.001)  # sigmoid(logit 0.9 - logit 0.2)
    assert rec.judgments[0].finish_reason == "logprob"
    assert "A 0.90 / B 0.20" in rec.judgments[0].text


def test_explicit_aggregation_checks_every_criterion_of_a_principles_only_rubric(tmp_path):
    gen = ScriptedEngine("generator", rubric="1. Clear. [Principle]\n2. Correct. [Principle]")
    arm, _, judge = make_arm(tmp_path, gen=gen, aggregation="explicit")
    arm.judge(pairs(1, 1), order="as_given")
    assert len(judge.label_calls[0]) == 4


def test_explicit_aggregation_needs_an_engine_that_scores_labels(tmp_path):
    class NoScores(ScriptedEngine):
        next_label_probs = ScriptedEngine.__mro__[1].next_label_probs

    arm, _, _ = make_arm(tmp_path, judge=NoScores("judge"), aggregation="explicit")
    with pytest.raises(InputError, match="cannot score next-token labels"):
        arm.judge(pairs(1, 1))
    with pytest.raises(InputError, match="aggregation must be one of"):
        make_arm(tmp_path, aggregation="sum")


def test_next_label_probs_on_a_real_model_do_not_depend_on_the_batch(tiny_engine):
    chats = [
        [{"role": "user", "content": "Is this short? " + "word " * n}] for n in (1, 7, 30, 3, 12)
    ]
    together = tiny_engine.next_label_probs(chats, ("Meets", "Fails"), batch_size=8)
    alone = [tiny_engine.next_label_probs([c], ("Meets", "Fails"))[0] for c in chats]
    for a, b in zip(together, alone, strict=True):
        assert sum(a.values()) == pytest.approx(1.0)
        assert a["Meets"] == pytest.approx(b["Meets"], abs=1e-4)


def test_last_token_logits_match_a_full_forward_pass(tiny_engine):
    """Scoring runs the output layer on the last position only; the logits are those of the
    whole-sequence forward pass at that position."""
    import torch

    prompts = [tiny_engine.tokenizer("word " * n)["input_ids"] for n in (3, 11)]
    ids = [5, 17, 42]
    got = tiny_engine.last_token_logits(prompts, ids, batch_size=2)
    for prompt, row in zip(prompts, got, strict=True):
        with torch.no_grad():
            full = tiny_engine.model(input_ids=torch.tensor([prompt])).logits[0, -1, ids]
        assert row == pytest.approx(full.float().tolist(), abs=1e-4)


def test_a_bf16_engine_keeps_a_float32_output_layer(tiny_model_path, tiny_engine):
    """The body runs in bf16, the output layer in float32 on float32 hidden states: logits are
    not rounded to bf16's few digits and stay near the float32 engine's; generation still runs."""
    import torch

    from rubric_arm.engines.transformers_engine import TransformersEngine
    from rubric_arm.types import SamplingParams

    engine = TransformersEngine(tiny_model_path, dtype="bfloat16", progress=False)
    assert engine.model.get_input_embeddings().weight.dtype == torch.bfloat16
    assert engine.model.get_output_embeddings().weight.dtype == torch.float32
    prompts = [tiny_engine.tokenizer("word " * n)["input_ids"] for n in (3, 11, 7)]
    ids = [5, 17, 42]
    got = engine.last_token_logits(prompts, ids, batch_size=2)
    want = tiny_engine.last_token_logits(prompts, ids, batch_size=2)
    flat = torch.tensor(got).flatten()
    assert not torch.equal(flat, flat.to(torch.bfloat16).float())
    for row, ref in zip(got, want, strict=True):
        assert row == pytest.approx(ref, abs=0.05, rel=0.05)
    (out,) = engine.generate_ids([prompts[0]], SamplingParams(temperature=0.0, max_new_tokens=4))
    assert out[0].completion_tokens >= 1
