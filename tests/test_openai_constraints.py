"""The openai engine's constrained and probed requests against an httpx MockTransport (no
server): the request body (vLLM's `structured_outputs` field with the bounded grammar, logprobs
only with a probe), label probabilities read from OpenAI-format logprobs or from rubric-arm
serve's `label_probs`, and the one-line error when a server refuses the grammar field."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from rubric_arm.engines.openai_engine import OpenAIEngine, label_probs_from_openai
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.formats import direct_format, judge_format
from rubric_arm.rubric import parse_rubric
from rubric_arm.types import SamplingParams, VerdictProbe

Handler = Callable[[dict[str, Any]], httpx.Response]
RUBRIC = parse_rubric(
    "1. The response answers the question. [Hard Rule]\n2. The response is clear. [Principle]"
)


class Mock:
    """Routes the engine's requests to `chat` (chat completions); /tokenize answers 404."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.chat: Handler = lambda body: completion(body, ["ok"] * body["n"])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tokenize"):
            return httpx.Response(404, json={"detail": "Not Found"})
        body = json.loads(request.content)
        self.bodies.append(body)
        return self.chat(body)


@pytest.fixture
def mock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mock]:
    """Every httpx.Client the engine builds goes through the mock transport."""
    handler = Mock()
    real = httpx.Client
    monkeypatch.setattr(
        httpx, "Client", functools.partial(real, transport=httpx.MockTransport(handler))
    )
    yield handler


def engine(**kwargs: Any) -> OpenAIEngine:
    return OpenAIEngine("judge", "http://mock.test/v1", retries=1, **kwargs)


def completion(body: dict[str, Any], texts: list[str], **choice_extra: Any) -> httpx.Response:
    choices = [
        {
            "index": k,
            "message": {"role": "assistant", "content": t},
            "finish_reason": "stop",
            **choice_extra,
        }
        for k, t in enumerate(texts)
    ]
    usage = {"prompt_tokens": 7, "completion_tokens": 3 * len(texts)}
    return httpx.Response(200, json={"choices": choices, "usage": usage})


def content(pieces: list[Any]) -> list[dict[str, Any]]:
    """OpenAI `logprobs.content` from pieces: a token text (certain) or (token, probability,
    {candidate token: probability}) for a sampled token with its top_logprobs."""
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append({"token": piece, "logprob": 0.0, "top_logprobs": []})
        else:
            token, p, top = piece
            out.append(
                {
                    "token": token,
                    "logprob": math.log(p),
                    "top_logprobs": [{"token": t, "logprob": math.log(q)} for t, q in top.items()],
                }
            )
    return out


CHAT = [{"role": "user", "content": "Which is better?"}]


def test_request_body_carries_the_bounded_grammar_and_logprobs_only_when_asked(mock) -> None:
    judge = judge_format(RUBRIC).constraint(448)
    direct = direct_format().constraint(64)
    e = engine()
    assert e.supports_constraints is True
    params = SamplingParams(temperature=0.5, max_new_tokens=40, n=2, seed=9)
    chats = [CHAT, [{"role": "user", "content": "second"}], [{"role": "user", "content": "3"}]]
    rows = e.generate(chats, params, constraints=[judge, None, direct], probe=VerdictProbe())
    assert [len(r) for r in rows] == [2, 2, 2]
    by_chat = {b["messages"][0]["content"]: b for b in mock.bodies}
    first, second, third = (by_chat[c[0]["content"]] for c in chats)
    assert first["structured_outputs"] == {"grammar": judge.bounded()}
    assert judge.bounded() != judge.grammar
    assert "structured_outputs" not in second
    assert third["structured_outputs"] == {"grammar": direct.bounded()}
    for body in (first, second, third):
        assert body["logprobs"] is True and body["top_logprobs"] == 20
        assert (body["n"], body["seed"], body["max_tokens"]) == (2, 9, 40)
        assert (body["temperature"], body["top_p"]) == (0.5, 1.0)
    mock.bodies.clear()
    e.generate([CHAT], SamplingParams(max_new_tokens=8))
    (plain,) = mock.bodies
    assert not {"structured_outputs", "logprobs", "top_logprobs", "seed"} & set(plain)
    with pytest.raises(InputError, match="1 constraints for 2 chats"):
        e.generate([CHAT, CHAT], SamplingParams(), constraints=[judge])


def test_label_probs_from_openai_logprobs(mock) -> None:
    cases = {
        # the last label after the cue is read: A = 0.5 + 0.1, B = 0.2 -> 0.75 / 0.25
        "two verdicts": [
            "A",
            " good",
            "\n",
            "Winner",
            ":",
            " Response",
            (" B", 0.7, {" B": 0.7, " A": 0.2}),
            "\n",
            "Winner",
            ":",
            " Response",
            (" A", 0.5, {" A": 0.5, "A": 0.1, " B": 0.2, ":": 0.1}),
            "\n",
            ("B", 0.6, {"B": 0.6}),
        ],
        # the sampled token is not among its top_logprobs: it counts as a candidate too
        "sampled outside the top": ["Winner", ":", " Response", (" A", 0.2, {" B": 0.6})],
        "no cue": ["Response", (" A", 0.9, {" A": 0.9, " B": 0.1})],
    }

    def chat(body: dict[str, Any]) -> httpx.Response:
        key = body["messages"][0]["content"]
        if key == "no logprobs":
            return completion(body, ["Winner: Response A"])
        pieces = cases[key]
        text = "".join(p if isinstance(p, str) else p[0] for p in pieces)
        return completion(body, [text], logprobs={"content": content(pieces)})

    mock.chat = chat
    keys = [*cases, "no logprobs"]
    rows = engine().generate(
        [[{"role": "user", "content": k}] for k in keys],
        SamplingParams(max_new_tokens=32),
        probe=VerdictProbe(),
    )
    got = {k: r[0].label_probs for k, r in zip(keys, rows, strict=True)}
    assert got["two verdicts"] == pytest.approx({"A": 0.75, "B": 0.25})
    assert got["sampled outside the top"] == pytest.approx({"A": 0.25, "B": 0.75})
    assert got["no cue"] is None
    assert got["no logprobs"] is None
    assert rows[0][0].text.endswith("Winner: Response A\nB")
    custom = VerdictProbe(cue=r"Verdict: $")
    assert label_probs_from_openai(content(cases["two verdicts"]), custom) is None


def test_rubric_arm_serve_label_probs_are_used_for_the_default_probe_only(mock) -> None:
    mock.chat = lambda body: completion(
        body, ["Winner: Response B"], logprobs=None, label_probs={"A": 0.3, "B": 0.7}
    )
    e = engine()
    (row,) = e.generate([CHAT], SamplingParams(), probe=VerdictProbe())
    assert row[0].label_probs == pytest.approx({"A": 0.3, "B": 0.7})
    (row,) = e.generate([CHAT], SamplingParams(), probe=VerdictProbe(cue=r"Verdict: $"))
    assert row[0].label_probs is None
    (row,) = e.generate([CHAT], SamplingParams())
    assert row[0].label_probs is None


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (400, {"error": {"message": "Unrecognized request argument supplied: structured_outputs"}}),
        (422, {"detail": [{"loc": ["body", "structured_outputs"], "msg": "extra fields"}]}),
    ],
)
def test_a_server_refusing_the_grammar_field_says_use_decoding_free(
    mock, status: int, payload: dict
) -> None:
    mock.chat = lambda body: httpx.Response(status, json=payload)
    e = engine()
    with pytest.raises(RubricArmError) as info:
        e.generate([CHAT], SamplingParams(), constraints=[direct_format().constraint(32)])
    message = str(info.value)
    assert "cannot constrain decoding" in message and "use decoding=free" in message
    assert "\n" not in message
    assert len(mock.bodies) == 1  # refused, not retried


def test_other_client_errors_are_not_blamed_on_the_grammar(mock) -> None:
    mock.chat = lambda body: httpx.Response(400, json={"error": {"message": "n is too large"}})
    e = engine()
    with pytest.raises(RubricArmError, match="HTTP 400") as info:
        e.generate([CHAT], SamplingParams(), constraints=[direct_format().constraint(32)])
    assert "cannot constrain" not in str(info.value)
    mock.bodies.clear()
    mock.chat = lambda body: httpx.Response(
        400, json={"error": {"message": "structured_outputs: bad"}}
    )
    with pytest.raises(RubricArmError, match="HTTP 400") as info:
        e.generate([CHAT], SamplingParams())  # unconstrained: the field was never sent
    assert "cannot constrain" not in str(info.value)
