"""`rubric-arm serve` as the official `openai` client (a dev dependency) expects it, on the tiny
random model over loopback: model listing and retrieval, n=2, streaming, max_completion_tokens,
content-part messages, usage, 20 concurrent async calls, and a 4xx naming anything that is not
supported (never a silent ignore)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_serve import Server

from rubric_arm.harness.serve import ServeLimits
from rubric_arm.pipeline import RubricARM
from rubric_arm.types import SamplingParams

openai = pytest.importorskip("openai")

USER = [{"role": "user", "content": "Response A: GOOD. Response B: BAD. Which is better?"}]


@pytest.fixture(scope="module")
def live(tiny_engine) -> Iterator[Server]:
    """The service on the tiny random model for both roles (what `rubric-arm serve --preset
    tiny` builds, with short budgets)."""
    arm = RubricARM(
        tiny_engine,
        tiny_engine,
        rubric_sampling=SamplingParams(temperature=0.0, max_new_tokens=16),
        judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=24),
        cache=False,
        max_rubric_items=2,
    )
    s = Server(ServeLimits(batch_window_s=0.05), arm=arm)
    yield s
    s.stop()


@pytest.fixture
def client(live: Server) -> Any:
    c = openai.OpenAI(base_url=f"{live.url}/v1", api_key="x", max_retries=0, timeout=120)
    yield c
    c.close()


def test_models_list_and_retrieve(client: Any) -> None:
    listed = client.models.list()
    assert sorted(m.id for m in listed.data) == ["generator", "judge"]
    model = client.models.retrieve("judge")
    assert model.id == "judge" and model.object == "model" and model.owned_by == "rubric-arm"
    assert isinstance(model.created, int)
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-nope")
    error = caught.value.body
    assert "gpt-nope" in error["message"] and error["param"] == "model"
    assert error["type"] == "invalid_request_error"


def test_stream_true_sends_server_sent_events_ending_with_done(live: Server, client: Any) -> None:
    settings = {"model": "judge", "messages": USER, "temperature": 0.0, "max_tokens": 12}
    plain = client.chat.completions.create(**settings)
    chunks = list(
        client.chat.completions.create(
            **settings, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks and all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content  # greedy: the same completion
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == plain.choices[0].finish_reason and set(finishes[:-1]) == {None}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    # on the wire: `data: {json}` events, the last one `data: [DONE]`
    with httpx.stream(
        "POST", f"{live.url}/v1/chat/completions", json={**settings, "stream": True, "n": 2}
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events) and events[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in events[:-1]]
    assert {p["choices"][0]["index"] for p in payloads} == {0, 1}
    assert all("usage" not in p for p in payloads)  # only with stream_options.include_usage


def test_max_completion_tokens_and_max_tokens_are_honoured(client: Any) -> None:
    for limits in (
        {"max_completion_tokens": 4},
        {"max_tokens": 3},
        {"max_tokens": 9, "max_completion_tokens": 2},
    ):
        out = client.chat.completions.create(model="judge", messages=USER, **limits)
        assert out.usage.completion_tokens <= min(limits.values()), (limits, out.usage)
        assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    out = client.chat.completions.create(
        model="generator", messages=USER, n=2, max_completion_tokens=5, temperature=1.0, seed=3
    )
    assert len(out.choices) == 2 and out.usage.completion_tokens <= 2 * 5
    with pytest.raises(openai.UnprocessableEntityError, match="max_completion_tokens"):
        client.chat.completions.create(model="judge", messages=USER, max_completion_tokens=0)


def test_content_part_lists_of_text_are_accepted(client: Any) -> None:
    parts = [{"type": "text", "text": "Response A: GOOD."}, {"type": "text", "text": "Which?"}]
    settings = {"model": "judge", "temperature": 0.0, "max_tokens": 8}
    from_parts = client.chat.completions.create(
        messages=[
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": parts},
        ],
        **settings,
    )
    joined = client.chat.completions.create(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Response A: GOOD.\nWhich?"},
        ],
        **settings,
    )
    assert from_parts.choices[0].message.content == joined.choices[0].message.content
    assert from_parts.usage == joined.usage
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(
            messages=[{"role": "user", "content": [parts[0], image]}], **settings
        )
    message = caught.value.body["message"]
    assert "messages[0].content[1]" in message and "'image_url' are not supported" in message


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"stop": ["\n"]}, "stop"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"logit_bias": {"50": 10}}, "logit_bias"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ({"extra_body": {"best_of": 2}}, "best_of"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"messages": [{"role": "user", "content": "hi", "name": "bob"}]}, "name"),
        ({"messages": [{"role": "tool", "content": "1", "tool_call_id": "t"}]}, "role"),
    ],
)
def test_unsupported_parameters_answer_422_naming_them(
    client: Any, extra: dict[str, Any], named: str
) -> None:
    settings = {"model": "judge", "messages": USER, "max_tokens": 4, **extra}
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(**settings)
    message = caught.value.body["message"]
    assert named in message and ("not supported" in message or "needs" in message), message


def test_neutral_values_of_unimplemented_parameters_are_accepted(client: Any) -> None:
    out = client.chat.completions.create(
        model="judge",
        messages=USER,
        max_tokens=3,
        frequency_penalty=0,
        presence_penalty=0.0,
        response_format={"type": "text"},
        user="someone",
        store=False,
        tool_choice="none",
    )
    assert out.choices[0].message.role == "assistant"


def test_the_official_client_end_to_end(live: Server, client: Any) -> None:
    """list, retrieve, create with n=2, streaming, max_completion_tokens, content parts, and 20
    concurrent async calls (merged by the server into few engine calls)."""
    assert {m.id for m in client.models.list()} == {"generator", "judge"}
    assert client.models.retrieve("generator").id == "generator"
    two = client.chat.completions.create(
        model="judge",
        messages=[{"role": "user", "content": [{"type": "text", "text": USER[0]["content"]}]}],
        n=2,
        max_completion_tokens=6,
        temperature=1.0,
        seed=7,
    )
    assert [c.index for c in two.choices] == [0, 1]
    assert all(c.finish_reason in ("stop", "length") for c in two.choices)
    assert 0 < two.usage.completion_tokens <= 12 and two.usage.prompt_tokens > 0
    streamed = client.chat.completions.create(
        model="judge", messages=USER, n=2, max_completion_tokens=5, stream=True
    )
    finished = {c.choices[0].index for c in streamed if c.choices and c.choices[0].finish_reason}
    assert finished == {0, 1}

    async def many() -> list[Any]:
        async with openai.AsyncOpenAI(
            base_url=f"{live.url}/v1", api_key="x", max_retries=0, timeout=120
        ) as aclient:
            calls = [
                aclient.chat.completions.create(
                    model="judge",
                    messages=[{"role": "user", "content": f"question {k}"}],
                    max_completion_tokens=4,
                    temperature=0.0,
                )
                for k in range(20)
            ]
            return await asyncio.gather(*calls)

    calls_before = httpx.get(f"{live.url}/health").json()["engine_calls"]
    outs = asyncio.run(many())
    assert len(outs) == 20 and all(o.usage.completion_tokens <= 4 for o in outs)
    assert len({o.id for o in outs}) == 20
    calls = httpx.get(f"{live.url}/health").json()["engine_calls"] - calls_before
    assert calls < 20  # requests that arrived together were merged
