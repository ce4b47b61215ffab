"""The transformers engine on the tiny model (and one real SmolLM2 run), the engine registry, vLLM."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

from rubric_arm.engines import available_engines, load_engine
from rubric_arm.engines.transformers_engine import TransformersEngine
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.models import model_fingerprint
from rubric_arm.types import SamplingParams

WORDS = [
    "the",
    "rubric",
    "says",
    "Response",
    "A",
    "follows",
    "every",
    "rule",
    "and",
    "Response",
    "B",
    "misses",
    "one",
]


def chat(k: int) -> list[dict[str, str]]:
    """A chat whose length grows with k."""
    return [{"role": "user", "content": " ".join(WORDS[: 2 + k % len(WORDS)]) + f" ({k})"}]


CHATS = [chat(k) for k in (7, 0, 11, 3, 9, 1)]
GREEDY = SamplingParams(max_new_tokens=8)
SAMPLED = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=24, seed=123)


def texts(results):
    return [[c.text for c in row] for row in results]


def test_engine_basics(tiny_engine, tiny_model_path):
    assert tiny_engine.name == "transformers"
    assert tiny_engine.context_length == 2048
    assert tiny_engine.fingerprint == model_fingerprint(tiny_model_path)
    assert tiny_engine.generate([], GREEDY) == []
    assert "transformers" in available_engines() and "vllm" in available_engines()


def test_prompt_token_counts_match_the_tokenizer(tiny_engine):
    tok = tiny_engine.tokenizer
    results = tiny_engine.generate(CHATS, GREEDY)
    for c, row in zip(CHATS, results, strict=True):
        rendered = tok.apply_chat_template(
            c, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        expected = len(tok(rendered, add_special_tokens=False)["input_ids"])
        assert row[0].prompt_tokens == expected == tiny_engine.chat_tokens(c)


def test_greedy_is_deterministic_and_independent_of_batching(tiny_engine):
    batched = tiny_engine.generate(CHATS, GREEDY)
    assert texts(tiny_engine.generate(CHATS, GREEDY)) == texts(batched)
    alone = [tiny_engine.generate([c], GREEDY)[0] for c in CHATS]
    assert texts(alone) == texts(batched)
    assert len({row[0].text for row in batched}) > 1


def test_order_is_preserved_across_small_batches(tiny_engine, tiny_model_path):
    small = TransformersEngine(tiny_model_path, batch_size=2, progress=False)
    assert texts(small.generate(CHATS, GREEDY)) == texts(tiny_engine.generate(CHATS, GREEDY))


def test_n_samples(tiny_engine):
    results = tiny_engine.generate(CHATS[:3], SamplingParams(**{**SAMPLED.__dict__, "n": 3}))
    assert [len(row) for row in results] == [3, 3, 3]
    assert any(len({c.text for c in row}) > 1 for row in results)
    greedy = tiny_engine.generate(CHATS[:2], SamplingParams(max_new_tokens=6, n=2))
    assert all(len(row) == 2 and row[0] == row[1] for row in greedy)


def test_seeded_sampling_is_reproducible_and_independent_of_batching(tiny_engine):
    first = tiny_engine.generate(CHATS, SAMPLED)
    assert texts(tiny_engine.generate(CHATS, SAMPLED)) == texts(first)
    alone = [tiny_engine.generate([c], SAMPLED)[0] for c in CHATS]
    assert texts(alone) == texts(first)
    other = tiny_engine.generate(CHATS, SamplingParams(**{**SAMPLED.__dict__, "seed": 124}))
    assert texts(other) != texts(first)


def test_finish_reasons_and_completion_counts(tiny_engine):
    """A sequence that stops after t tokens (end-of-turn included) is cut at t-1 with 'length'."""
    params = SamplingParams(temperature=1.0, max_new_tokens=40, n=8, seed=7)
    rows = tiny_engine.generate(CHATS, params)
    done = [c for row in rows for c in row]
    assert all(c.completion_tokens == 40 for c in done if c.finish_reason == "length")
    stopped = [
        (i, j, c)
        for i, row in enumerate(rows)
        for j, c in enumerate(row)
        if c.finish_reason == "stop"
    ]
    assert stopped, "the tiny model should end some samples early"
    i, j, c = min(stopped, key=lambda s: s[2].completion_tokens)
    assert 1 <= c.completion_tokens < 40
    if c.completion_tokens > 1:
        cut = tiny_engine.generate(
            [CHATS[i]],
            SamplingParams(**{**params.__dict__, "max_new_tokens": c.completion_tokens - 1}),
        )
        assert cut[0][j].finish_reason == "length"
        assert cut[0][j].completion_tokens == c.completion_tokens - 1
        assert c.text.startswith(cut[0][j].text[:-2]) or cut[0][j].text == ""


def test_count_tokens_and_truncate(tiny_engine):
    text = "Response A follows the rubric. Response B ignores the [Hard Rule] twice."
    n = tiny_engine.count_tokens(text)
    assert n == len(tiny_engine.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert tiny_engine.truncate(text, n) == text
    assert tiny_engine.truncate(text, 0) == ""
    cut = tiny_engine.truncate(text, n // 2)
    assert text.startswith(cut) and 0 < tiny_engine.count_tokens(cut) <= n // 2


def test_too_long_prompt_is_an_input_error(tiny_engine):
    long = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(InputError, match="context"):
        tiny_engine.generate([long], GREEDY)


def test_load_engine_returns_the_same_instance(tiny_model_path):
    a = load_engine("tiny-random", progress=False)
    assert load_engine(str(tiny_model_path), progress=False) is a
    assert load_engine("tiny-random", progress=False, batch_size=4) is not a
    with pytest.raises(InputError, match="unknown engine"):
        load_engine("tiny-random", engine="nope")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_missing_is_a_clear_error(tiny_model_path):
    from rubric_arm.engines.vllm_engine import VLLMEngine

    with pytest.raises(RubricArmError, match=r"pip install 'rubric-arm\[vllm\]'"):
        VLLMEngine(tiny_model_path)


@pytest.mark.skipif(
    importlib.util.find_spec("vllm") is None, reason="vllm is not installed (GPU only)"
)
def test_vllm_generates(tiny_model_path):
    engine = load_engine(str(tiny_model_path), engine="vllm", gpu_memory_utilization=0.3)
    rows = engine.generate(CHATS[:2], SamplingParams(max_new_tokens=8, n=2))
    assert [len(r) for r in rows] == [2, 2]
    assert all(
        c.prompt_tokens == engine.chat_tokens(ch)
        for ch, r in zip(CHATS[:2], rows, strict=True)
        for c in r
    )


@pytest.mark.slow
def test_smollm2_answers_sensibly(smollm2_path):
    engine = TransformersEngine(smollm2_path, progress=False)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    [[answer]] = engine.generate([question], SamplingParams(max_new_tokens=16))
    assert "Paris" in answer.text
    assert answer.prompt_tokens == engine.chat_tokens(question)
    if answer.finish_reason == "stop":
        assert answer.completion_tokens == engine.count_tokens(answer.text) + 1


def test_shared_prefix_is_run_once_and_changes_nothing(tiny_engine, monkeypatch):
    preamble = " ".join(WORDS * 6)
    chats = [
        [{"role": "user", "content": f"{preamble} question {k} " + "x " * k}] for k in range(5)
    ]
    ids = tiny_engine.encode_chats(chats)
    shared = len(os.path.commonprefix(ids))
    assert shared >= 32, "the test needs a long shared prefix"
    calls = []
    forward = tiny_engine.model.forward

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        return forward(*args, **kwargs)

    monkeypatch.setattr(tiny_engine.model, "forward", counting)
    batched = tiny_engine.generate(chats, GREEDY)
    assert calls[0] == (1, shared), "the shared prefix runs once, alone"
    assert calls[1][1] == max(len(x) for x in ids) - shared, "rows then run their own tokens"
    alone = [tiny_engine.generate([c], GREEDY)[0] for c in chats]
    assert texts(alone) == texts(batched)
    sampled = tiny_engine.generate(chats, SAMPLED)
    assert texts([tiny_engine.generate([c], SAMPLED)[0] for c in chats]) == texts(sampled)


def test_prompts_of_one_group_share_their_longer_prefix(tiny_engine, monkeypatch):
    preamble = " ".join(WORDS * 6)
    topics = [" ".join(WORDS[k:] + WORDS[:k]) * 3 for k in (1, 4)]
    chats = [
        [{"role": "user", "content": f"{preamble} topic {t} {topic} variant {v} " + "y " * v}]
        for t, topic in enumerate(topics)
        for v in range(3)
    ]
    chats.append([{"role": "user", "content": f"{preamble} a lone prompt"}])
    calls = []
    forward = tiny_engine.model.forward

    def counting(*args, **kwargs):
        calls.append(tuple(kwargs["input_ids"].shape))
        return forward(*args, **kwargs)

    monkeypatch.setattr(tiny_engine.model, "forward", counting)
    batched = tiny_engine.generate(chats, GREEDY)
    single_prefix_runs = [c for c in calls if c[0] == 1 and c[1] >= 32]
    assert len(single_prefix_runs) == 3, f"batch prefix + one per topic group: {calls}"
    alone = [tiny_engine.generate([c], GREEDY)[0] for c in chats]
    assert texts(alone) == texts(batched)


def test_grouped_query_attention_matches_stock_sdpa_on_wide_masked_steps(tiny_model_path):
    """The engine's attention (no key/value head copies) gives stock SDPA's logits."""
    from transformers import AutoModelForCausalLM

    from rubric_arm.engines.transformers_engine import register_gqa_sdpa

    stock = AutoModelForCausalLM.from_pretrained(tiny_model_path, attn_implementation="sdpa")
    ours = AutoModelForCausalLM.from_pretrained(
        tiny_model_path, attn_implementation=register_gqa_sdpa()
    )
    cfg = stock.config
    assert cfg.num_key_value_heads < cfg.num_attention_heads, "the test needs grouped queries"
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (3, 24), generator=gen)
    mask = torch.ones_like(ids)
    mask[0, :5] = 0
    mask[1, 10:13] = 0  # a hole in the middle, as a wide jump-forward step leaves
    with torch.no_grad():
        a = stock(input_ids=ids, attention_mask=mask).logits
        b = ours(input_ids=ids, attention_mask=mask).logits
    keep = mask.bool()
    assert torch.allclose(a[keep], b[keep], atol=1e-5)


def test_engine_emits_no_future_warning(tiny_engine):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        out = tiny_engine.generate([[{"role": "user", "content": "hello"}]], GREEDY)
    assert out[0][0].completion_tokens > 0


def test_token_ids_and_logprobs_of_sampled_tokens(tiny_engine):
    """Completions carry their tokens; with logprobs=True each sampled token's log-probability
    under the (temperature-scaled) distribution it was drawn from, None where forced."""
    chat = [{"role": "user", "content": "say something"}]
    params = SamplingParams(temperature=0.7, max_new_tokens=12, n=2, seed=3, logprobs=True)
    outs = tiny_engine.generate([chat], params)[0]
    ids = tiny_engine.encode_chats([chat])
    again = tiny_engine.generate_ids(ids, params)[0]
    assert [o.token_ids for o in outs] == [o.token_ids for o in again]
    model = tiny_engine.model
    for o in outs:
        assert len(o.token_ids) == o.completion_tokens == len(o.token_logprobs)
        full = torch.tensor([ids[0] + list(o.token_ids)])
        with torch.no_grad():
            logits = model(input_ids=full).logits[0, len(ids[0]) - 1 : -1].float() / 0.7
        want = torch.log_softmax(logits, -1).gather(1, torch.tensor(o.token_ids)[:, None])
        assert torch.allclose(torch.tensor(o.token_logprobs), want.squeeze(1), atol=1e-4)
    plain = tiny_engine.generate([chat], SamplingParams(max_new_tokens=4))[0][0]
    assert plain.token_logprobs is None and len(plain.token_ids) == plain.completion_tokens
