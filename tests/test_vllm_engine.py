"""The vllm engine against a stand-in `vllm` package (no GPU, no vLLM): what it sends to
`LLM.chat` (one SamplingParams per chat, its own grammar, logprobs only with a probe, seeds and
n) and how it reads vLLM's outputs (texts, finish reasons, label probabilities from the top
log-probabilities).

The stand-in mirrors the vLLM >= 0.12 API this engine is written against: `vllm.LLM` and
`vllm.SamplingParams` at the top level, `StructuredOutputsParams` (and SamplingParams) in
`vllm.sampling_params`, `Logprob(logprob, rank, decoded_token)` in `vllm.logprobs`, and request
outputs whose `outputs[i].logprobs` is a list, per generated position, of dicts token id ->
Logprob. Its SamplingParams and StructuredOutputsParams refuse keyword arguments the real ones
do not have.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rubric_arm.errors import InputError
from rubric_arm.formats import direct_format, judge_format
from rubric_arm.rubric import parse_rubric
from rubric_arm.types import SamplingParams, VerdictProbe

# ---------------------------------------------------------------------------- the stand-in


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass(kw_only=True)
class StructuredOutputsParams:
    json: str | dict | None = None
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None
    json_object: bool | None = None
    disable_any_whitespace: bool = False
    disable_additional_properties: bool = False
    whitespace_pattern: str | None = None
    structural_tag: str | None = None

    def __post_init__(self) -> None:
        kinds = (self.json, self.regex, self.choice, self.grammar, self.json_object)
        if sum(k is not None for k in (*kinds, self.structural_tag)) != 1:
            raise ValueError("exactly one kind of structured outputs constraint")


@dataclass(kw_only=True)
class VLLMSamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    max_tokens: int | None = 16
    logprobs: int | None = None
    structured_outputs: StructuredOutputsParams | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]


Script = Callable[[list[dict[str, str]], VLLMSamplingParams, Any], list[CompletionOutput]]


class FakeLLM:
    """`vllm.LLM`: loads the folder's tokenizer, answers `chat` from `script`, records calls."""

    def __init__(self, model: str, script: Script, **options: Any) -> None:
        from transformers import AutoTokenizer

        self.model = model
        self.options = options
        self.script = script
        self.calls: list[dict[str, Any]] = []
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.llm_engine = types.SimpleNamespace(
            model_config=types.SimpleNamespace(max_model_len=2048)
        )

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def chat(
        self,
        messages: list[list[dict[str, str]]],
        sampling_params: VLLMSamplingParams | list[VLLMSamplingParams] | None = None,
        use_tqdm: bool = True,
        lora_request: Any = None,
        chat_template: str | None = None,
        chat_template_content_format: str = "auto",
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: list[dict[str, Any]] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        tokenization_kwargs: dict[str, Any] | None = None,
        mm_processor_kwargs: dict[str, Any] | None = None,
    ) -> list[RequestOutput]:
        if isinstance(sampling_params, list):
            assert len(sampling_params) == len(messages), "one SamplingParams per prompt"
            per_chat = sampling_params
        else:
            per_chat = [sampling_params or VLLMSamplingParams()] * len(messages)
        self.calls.append(
            {
                "messages": messages,
                "sampling_params": sampling_params,
                "chat_template_kwargs": chat_template_kwargs,
            }
        )
        outs = []
        for chat, sp in zip(messages, per_chat, strict=True):
            prompt = self.tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, tokenize=False, **(chat_template_kwargs or {})
            )
            prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            outs.append(RequestOutput(prompt_ids, self.script(chat, sp, self.tokenizer)))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.SimpleNamespace]:
    """Install the stand-in as `vllm`, `vllm.sampling_params` and `vllm.logprobs`."""
    built: list[FakeLLM] = []
    state = types.SimpleNamespace(built=built, script=None)

    def make_llm(model: str, **options: Any) -> FakeLLM:
        llm = FakeLLM(model, lambda chat, sp, tok: state.script(chat, sp, tok), **options)
        built.append(llm)
        return llm

    package = types.ModuleType("vllm")
    package.__path__ = []  # a package, so its submodules import as they do from real vLLM
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.SamplingParams = VLLMSamplingParams
    sampling.StructuredOutputsParams = StructuredOutputsParams
    logprobs = types.ModuleType("vllm.logprobs")
    logprobs.Logprob = Logprob
    package.LLM = make_llm
    package.SamplingParams = VLLMSamplingParams
    package.sampling_params = sampling
    package.logprobs = logprobs
    monkeypatch.setitem(sys.modules, "vllm", package)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling)
    monkeypatch.setitem(sys.modules, "vllm.logprobs", logprobs)
    yield state


def output(tokenizer: Any, pieces: list[Any], finish: str = "stop") -> CompletionOutput:
    """One vLLM output from pieces: text (tokenized here, each token certain) or (token id,
    {token id: probability}) for a sampled token with its top candidates."""
    ids: list[int] = []
    logprobs: list[dict[int, Logprob]] = []
    for piece in pieces:
        if isinstance(piece, str):
            for t in tokenizer(piece, add_special_tokens=False)["input_ids"]:
                ids.append(t)
                logprobs.append({t: Logprob(0.0, 1, tokenizer.decode([t]))})
        else:
            token, top = piece
            ids.append(token)
            logprobs.append(
                {
                    t: Logprob(math.log(p), rank, tokenizer.decode([t]))
                    for rank, (t, p) in enumerate(top.items(), 1)
                }
            )
    return CompletionOutput(0, tokenizer.decode(ids), ids, None, logprobs, finish)


CHATS = [
    [{"role": "user", "content": "Which response is better? Response A: GOOD"}],
    [{"role": "user", "content": "Say hello."}],
    [{"role": "user", "content": "Which response is better? Response B: GOOD"}],
]
RUBRIC = parse_rubric(
    "1. The response answers the question. [Hard Rule]\n2. The response is clear. [Principle]"
)


@pytest.fixture
def engine(fake_vllm: types.SimpleNamespace, tiny_model_path: Path) -> Any:
    from rubric_arm.engines.vllm_engine import VLLMEngine

    def plain(chat: list[dict[str, str]], sp: VLLMSamplingParams, tok: Any) -> list:
        return [
            output(tok, [f"reply {k} to {chat[-1]['content'][:10]}"], "length" if k else "stop")
            for k in range(sp.n)
        ]

    fake_vllm.script = plain
    return VLLMEngine(tiny_model_path, seed=5, progress=False, gpu_memory_utilization=0.3)


# ---------------------------------------------------------------------------- requests


def test_the_engine_is_built_through_vllm_llm(engine: Any, fake_vllm, tiny_model_path) -> None:
    assert engine.supports_constraints is True
    (llm,) = fake_vllm.built
    assert llm.model == str(tiny_model_path)
    assert llm.options["seed"] == 5 and llm.options["gpu_memory_utilization"] == 0.3
    assert engine.context_length == 2048


def test_one_sampling_params_per_chat_each_with_its_own_bounded_grammar(
    engine: Any, fake_vllm
) -> None:
    import xgrammar

    judge = judge_format(RUBRIC).constraint(448, engine.count_tokens)
    direct = direct_format().constraint(64, engine.count_tokens)
    assert judge.bounded() != judge.grammar  # the free-text tails are bounded in characters
    params = SamplingParams(temperature=0.0, max_new_tokens=48)
    rows = engine.generate(CHATS, params, constraints=[judge, None, direct])
    sent = fake_vllm.built[0].calls[-1]["sampling_params"]
    assert isinstance(sent, list) and len(sent) == 3
    assert len({id(sp) for sp in sent}) == 3
    assert sent[0].structured_outputs.grammar == judge.bounded()
    assert sent[1].structured_outputs is None
    assert sent[2].structured_outputs.grammar == direct.bounded()
    for sp in sent:
        assert sp.max_tokens == 48 and sp.temperature == 0.0 and sp.logprobs is None
    xgrammar.Grammar.from_ebnf(sent[0].structured_outputs.grammar)  # what vLLM gets parses
    assert fake_vllm.built[0].calls[-1]["chat_template_kwargs"] == {"enable_thinking": False}
    assert [len(r) for r in rows] == [1, 1, 1]
    assert all(r[0].forced_tokens == 0 and r[0].label_probs is None for r in rows)


def test_no_grammar_and_no_logprobs_without_constraints_or_probe(engine: Any, fake_vllm) -> None:
    engine.generate(CHATS[:2], SamplingParams(max_new_tokens=8))
    sent = fake_vllm.built[0].calls[-1]["sampling_params"]
    assert [sp.structured_outputs for sp in sent] == [None, None]
    assert [sp.logprobs for sp in sent] == [None, None]
    engine.generate(CHATS[:2], SamplingParams(max_new_tokens=8), probe=VerdictProbe())
    sent = fake_vllm.built[0].calls[-1]["sampling_params"]
    assert [sp.logprobs for sp in sent] == [20, 20]
    assert [sp.structured_outputs for sp in sent] == [None, None]


def test_token_ids_and_sampled_logprobs_for_rollouts(engine: Any, fake_vllm) -> None:
    tok = fake_vllm.built[0].tokenizer
    hi = tok("hi", add_special_tokens=False)["input_ids"][0]
    fake_vllm.script = lambda chat, sp, t: [output(t, [(hi, {hi: 0.25})]) for _ in range(sp.n)]
    params = SamplingParams(temperature=1.0, max_new_tokens=4, n=2, seed=1, logprobs=True)
    (row,) = engine.generate(CHATS[:1], params)
    assert fake_vllm.built[0].calls[-1]["sampling_params"][0].logprobs == 0
    assert [c.token_ids for c in row] == [(hi,), (hi,)]
    assert row[0].token_logprobs == pytest.approx((math.log(0.25),))
    (plain,) = engine.generate(CHATS[:1], SamplingParams(max_new_tokens=4))
    assert plain[0].token_logprobs is None


def test_seed_n_and_finish_reasons(engine: Any, fake_vllm) -> None:
    sampled = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=16, n=3, seed=11)
    rows = engine.generate(CHATS[:2], sampled)
    sent = fake_vllm.built[0].calls[-1]["sampling_params"]
    assert [(sp.n, sp.seed, sp.temperature, sp.top_p) for sp in sent] == [(3, 11, 0.7, 0.9)] * 2
    assert [[c.finish_reason for c in r] for r in rows] == [["stop", "length", "length"]] * 2
    assert rows[0][1].text == "reply 1 to Which resp"
    assert rows[0][0].prompt_tokens == engine.chat_tokens(CHATS[0])
    assert rows[0][0].completion_tokens == engine.count_tokens(rows[0][0].text)
    greedy = engine.generate(CHATS[:1], SamplingParams(temperature=0.0, n=2, seed=3))
    sent = fake_vllm.built[0].calls[-1]["sampling_params"]
    assert sent[0].n == 1 and sent[0].top_p == 1.0  # greedy: one sample, repeated
    assert [c.text for c in greedy[0]] == ["reply 0 to Which resp"] * 2


def test_constraints_must_match_the_chats(engine: Any) -> None:
    with pytest.raises(InputError, match="2 constraints for 3 chats"):
        engine.generate(CHATS, SamplingParams(), constraints=[None, None])


# ---------------------------------------------------------------------------- label probabilities


def test_label_probs_come_from_the_last_label_token_after_the_cue(engine: Any, fake_vllm) -> None:
    tok = engine.tokenizer
    ids = {s: tok(s, add_special_tokens=False)["input_ids"] for s in ("A", " A", "B", " B", ":")}
    assert all(len(v) == 1 for v in ids.values())  # the tiny vocabulary has each as one token
    a, sp_a, b, sp_b, other = (ids[s][0] for s in ("A", " A", "B", " B", ":"))

    def judged(chat: list[dict[str, str]], sp: VLLMSamplingParams, t: Any) -> list:
        content = chat[-1]["content"]
        if content.startswith("two verdicts"):
            pieces = [
                (a, {a: 0.9, b: 0.1}),  # a label token at the start: no cue before it
                " is fine.\nWinner: Response",
                (sp_b, {sp_b: 0.6, sp_a: 0.3}),
                "\nOn reflection.\nWinner: Response",
                # the one read: A = 0.5 + 0.1, B = 0.2 (" B" only; "B" is not among the candidates)
                (sp_a, {sp_a: 0.5, a: 0.1, sp_b: 0.2, other: 0.1}),
                "\n",
                (b, {b: 0.7, a: 0.2}),  # after "Response A\n": not the cue
            ]
        elif content.startswith("no cue"):
            pieces = ["Response", (sp_a, {sp_a: 0.8, sp_b: 0.2})]
        else:
            pieces = ["Winner: Response", (sp_b, {sp_b: 0.25, other: 0.75})]
        return [output(t, pieces)]

    fake_vllm.script = judged
    chats = [
        [{"role": "user", "content": "two verdicts"}],
        [{"role": "user", "content": "no cue"}],
        [{"role": "user", "content": "only B"}],
    ]
    rows = engine.generate(chats, SamplingParams(max_new_tokens=64), probe=VerdictProbe())
    first = rows[0][0].label_probs
    assert first is not None and set(first) == {"A", "B"}
    assert first["A"] == pytest.approx(0.6 / 0.8) and first["B"] == pytest.approx(0.2 / 0.8)
    assert rows[0][0].text.endswith("Winner: Response A\nB")
    assert rows[1][0].label_probs is None
    assert rows[2][0].label_probs == pytest.approx({"A": 0.0, "B": 1.0})
    plain = engine.generate(chats[:1], SamplingParams(max_new_tokens=64))
    assert plain[0][0].label_probs is None  # no probe, nothing read


def test_label_probs_decode_tokens_when_vllm_gives_no_text(engine: Any) -> None:
    tok = engine.tokenizer
    sp_a, sp_b = (tok(s, add_special_tokens=False)["input_ids"][0] for s in (" A", " B"))
    cue = tok("Winner: Response", add_special_tokens=False)["input_ids"]
    ids = [*cue, sp_b]
    logprobs = [{t: Logprob(0.0)} for t in cue]
    logprobs.append({sp_b: Logprob(math.log(0.4)), sp_a: Logprob(math.log(0.1))})
    read = engine.label_probs(ids, logprobs, VerdictProbe())
    assert read == pytest.approx({"A": 0.2, "B": 0.8})
    assert engine.label_probs(ids, None, VerdictProbe()) is None
    custom = VerdictProbe(cue=r"Verdict: $", labels=("A", "B"))
    assert engine.label_probs(ids, logprobs, custom) is None
