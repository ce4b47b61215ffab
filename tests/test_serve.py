"""`rubric-arm serve` on loopback: concurrent clients batched together, bad requests answered with
4xx, engine failures with 500 (the server goes on), and the openai engine talking to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx
import pytest
from scripted_engine import ScriptedEngine, judge_output

from rubric_arm.engines.openai_engine import OpenAIEngine, endpoint_list
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.formats import judge_format
from rubric_arm.harness.serve import ServeLimits, build_app
from rubric_arm.pipeline import RubricARM
from rubric_arm.rubric import parse_rubric
from rubric_arm.types import Constraint, SamplingParams, VerdictProbe
from rubric_arm.verdict import parse_verdict

uvicorn = pytest.importorskip("uvicorn")


def judge_fn(text: str, vote: int) -> str:
    if "EXPLODE" in text:
        raise RuntimeError("the engine broke")
    if "SLOW" in text:
        time.sleep(0.3)
    return judge_output("A" if text.find("GOOD") < text.find("BAD") else "B")


class Server:
    """The service on a free loopback port: scripted engines, or the given pipeline."""

    def __init__(self, limits: ServeLimits | None = None, arm: RubricARM | None = None) -> None:
        self.gen = ScriptedEngine("generator")
        self.judge = ScriptedEngine("judge", judge_fn=judge_fn)
        arm = arm or RubricARM(
            self.gen,
            self.judge,
            judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=64),
            cache=True,
        )
        self.app = build_app(arm, limits=limits or ServeLimits(batch_window_s=0.05))
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.app.state.batcher.stop()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


def pair(k: int, good_first: bool) -> dict:
    a, b = ("GOOD", "BAD") if good_first else ("BAD", "GOOD")
    return {
        "id": f"p{k}",
        "prompt": f"question {k}",
        "response_a": f"{a} {k}",
        "response_b": f"{b} {k}",
    }


def test_concurrent_compare_and_reward_clients_are_batched(server: Server) -> None:
    def compare(k: int) -> dict:
        body = {"pairs": [pair(k, k % 2 == 0)], "order": "both"}
        if k == 0:
            body["pairs"][0]["prompt"] = "SLOW question"  # holds the worker so others queue up
        return httpx.post(f"{server.url}/compare", json=body, timeout=60).json()

    def reward(k: int) -> dict:
        body = {
            "prompts": [f"q{k}", f"q{k}"],
            "completions": ["GOOD x", "BAD x"],
            "references": ["BAD r", "GOOD r"],
        }
        return httpx.post(f"{server.url}/reward", json=body, timeout=60).json()

    with ThreadPoolExecutor(8) as pool:
        compares = list(pool.map(compare, range(8)))
        rewards = list(pool.map(reward, range(6)))
    for k, res in enumerate(compares):
        rec = res["records"][0]
        assert rec["status"] == "ok" and len(rec["judgments"]) == 2
        assert rec["winner"] == ("A" if k % 2 == 0 else "B")
    assert all(r["rewards"] == [1.0, 0.0] for r in rewards)
    health = httpx.get(f"{server.url}/health").json()
    assert health["merged_requests"] >= 1 and health["engine_calls"] < 14
    rub = httpx.post(f"{server.url}/rubric", json={"prompts": ["question 3"]}).json()
    assert rub["rubrics"][0]["cached"] is True  # generated once by /compare, then reused


def test_bad_requests_get_4xx_and_the_server_survives(server: Server) -> None:
    url = server.url
    r = httpx.post(
        f"{url}/compare", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    r = httpx.post(f"{url}/compare", json={"pairs": [{"prompt": "p", "response_a": "x"}]})
    assert r.status_code == 422 and "response_b" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/compare", json={"pairs": [pair(0, True)], "order": "sideways"})
    assert r.status_code == 422
    r = httpx.post(f"{url}/compare", json={"pairs": [{**pair(0, True), "prompt": ""}]})
    assert r.status_code == 422 and "pairs[0].prompt" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/reward", json={"prompts": ["p"], "completions": [], "references": ["r"]})
    assert r.status_code == 422 and "same length" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/compare", json={"pairs": [pair(k, True) for k in range(300)]})
    assert r.status_code == 422 and "limit" in r.json()["error"]["message"]
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 404
    r = httpx.post(
        f"{url}/compare", content=b"x" * 5_000_000, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413
    r = httpx.post(f"{url}/compare", json={"pairs": [{**pair(1, True), "prompt": "EXPLODE"}]})
    assert r.status_code == 500 and "engine broke" in r.json()["error"]["message"]
    ok = httpx.post(f"{url}/compare", json={"pairs": [pair(2, True)]})
    assert ok.status_code == 200 and ok.json()["records"][0]["winner"] == "A"


def test_a_full_queue_answers_503() -> None:
    s = Server(ServeLimits(max_queue=1, batch_window_s=0.0))
    try:

        def call(k: int) -> int:
            body = {
                "pairs": [{**pair(k, True), "prompt": f"SLOW {k}"}],
                "order": "as_given",
                "seed": k,
            }
            return httpx.post(f"{s.url}/compare", json=body, timeout=60).status_code

        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(call, range(6)))
        assert 503 in codes and 200 in codes
        assert httpx.get(f"{s.url}/health").json()["status"] == "ok"
    finally:
        s.stop()


def test_openai_engine_against_the_server(server: Server) -> None:
    engine = OpenAIEngine("judge", f"{server.url}/v1")
    assert engine.token_counting == "server" and engine.count_tokens("a b c") == 3
    chats = [
        [{"role": "user", "content": f"Response A: GOOD {k} Response B: BAD"}] for k in range(3)
    ]
    outs = engine.generate(chats, SamplingParams(temperature=0.0, max_new_tokens=32, n=2))
    assert [len(o) for o in outs] == [2, 2, 2]
    assert all("Winner: Response A" in c.text for o in outs for c in o)
    gen = OpenAIEngine("generator", f"{server.url}/v1")
    arm = RubricARM(
        gen, engine, judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=64), cache=False
    )
    rec = arm.judge([pair(0, False)], order="both")[0]
    assert (
        rec.status == "ok"
        and rec.winner == "B"
        and rec.rubric is not None
        and rec.rubric.n_criteria == 2
    )
    with pytest.raises(RubricArmError, match="HTTP 404"):
        OpenAIEngine("nope", f"{server.url}/v1", retries=0).generate(chats[:1], SamplingParams())


def test_remote_reward_for_grpo_uses_the_service(server: Server) -> None:
    pytest.importorskip("trl")
    from rubric_arm.trainer.policy.remote import RemoteReward

    reward = RemoteReward(server.url, None, 16)
    out = reward(
        ["p", "p", "q"], ["GOOD a", "BAD b", "GOOD c"], reference=["BAD r", "GOOD r", "BAD r"]
    )
    assert out == [1.0, 0.0, 1.0]


def test_grpo_run_with_the_judge_served_remotely(server: Server, tmp_path) -> None:
    pytest.importorskip("trl")
    from pathlib import Path

    from rubric_arm.trainer.policy.config import load_policy_config
    from rubric_arm.trainer.policy.runs import PolicyRun

    root = Path(__file__).resolve().parent.parent
    cfg = load_policy_config(
        root / "configs" / "policy-tiny.yaml",
        {"output_dir": str(tmp_path), "grpo": {"reward_url": server.url}},
    )
    run = PolicyRun(cfg, progress=False)
    out = run.grpo()
    assert (out / "config.json").is_file()
    stats = run.state()["grpo"]["reward_stats"]
    assert stats["calls"] == cfg.grpo.max_steps and stats["invalid"] == 0
    # the service judged every completion in both orders
    assert httpx.get(f"{server.url}/health").json()["engine_calls"] >= cfg.grpo.max_steps


# ---- decoding through the service: structured_outputs, label probabilities, `decoding` --------

TWO_CRITERIA = parse_rubric(
    "1. The response answers the question. [Hard Rule]\n2. The response is clear. [Principle]"
)
JUDGE_CHAT = [{"role": "user", "content": "Response A: GOOD. Response B: BAD. Which is better?"}]


@pytest.fixture
def tiny_server(tiny_engine) -> Iterator[Server]:
    """The service on the tiny random model (both roles), free decoding by default."""
    arm = RubricARM(
        tiny_engine,
        tiny_engine,
        rubric_sampling=SamplingParams(temperature=0.0, max_new_tokens=24),
        judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=160),
        cache=False,
        max_rubric_items=2,
    )
    s = Server(arm=arm)
    yield s
    s.stop()


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "judge", "messages": JUDGE_CHAT, "max_tokens": 32, **extra}


def test_constrained_chat_through_the_openai_engine_follows_the_grammar(
    tiny_server: Server, tiny_engine
) -> None:
    import xgrammar

    engine = OpenAIEngine("judge", f"{tiny_server.url}/v1")
    # free-text spans bounded to 12 characters, so the whole judgment fits max_new_tokens
    constraint = replace(judge_format(TWO_CRITERIA).constraint(), bounded_chars=12)
    params = SamplingParams(temperature=0.0, max_new_tokens=300)
    (row,) = engine.generate([JUDGE_CHAT], params, constraints=[constraint], probe=VerdictProbe())
    out = row[0]
    assert out.finish_reason == "stop"
    verdict = parse_verdict(out.text, 2)
    assert verdict.winner in ("A", "B") and verdict.format_ok, verdict.format_problems
    compiled = tiny_engine.grammar_runtime().compiled(Constraint(constraint.bounded()))
    matcher = xgrammar.GrammarMatcher(compiled)
    assert matcher.accept_string(out.text) and matcher.is_completed()
    assert out.label_probs is not None and set(out.label_probs) == {"A", "B"}
    assert sum(out.label_probs.values()) == pytest.approx(1.0)
    assert out.label_probs[verdict.winner] >= 0.5  # greedy took the likelier label
    (free,) = engine.generate([JUDGE_CHAT], SamplingParams(temperature=0.0, max_new_tokens=40))
    assert parse_verdict(free[0].text, 2).winner is None  # unconstrained, the random model rambles


def test_bad_structured_outputs_get_422_naming_the_field(tiny_server: Server) -> None:
    url = f"{tiny_server.url}/v1/chat/completions"
    cases = [
        ({"grammar": 'root ::= "a" missing_rule'}, "structured_outputs.grammar does not compile"),
        ({"grammar": "root ::= (("}, "structured_outputs.grammar does not compile"),
        ({"grammar": "   "}, "structured_outputs.grammar must be a non-empty string"),
        ({"grammar": 5}, "structured_outputs.grammar must be a non-empty string"),
        ({"regex": "a+"}, "only 'grammar' is supported, got regex"),
    ]
    for field_value, message in cases:
        r = httpx.post(url, json=chat_body(structured_outputs=field_value))
        assert r.status_code == 422, (field_value, r.text)
        assert message in r.json()["error"]["message"]
    assert (
        "missing_rule"
        in httpx.post(url, json=chat_body(structured_outputs=cases[0][0])).json()["error"][
            "message"
        ]
    )
    r = httpx.post(url, json=chat_body(logprobs=True, top_logprobs=50))
    assert r.status_code == 422 and "top_logprobs" in r.json()["error"]["message"]
    r = httpx.post(url, json=chat_body(top_logprobs=5))
    assert r.status_code == 422 and "logprobs: true" in r.json()["error"]["message"]
    engine = OpenAIEngine("judge", f"{tiny_server.url}/v1", retries=0)
    with pytest.raises(RubricArmError, match="cannot constrain decoding.*does not compile"):
        engine.generate([JUDGE_CHAT], SamplingParams(), constraints=[Constraint("root ::= ((")])
    ok = httpx.post(url, json=chat_body(logprobs=True, top_logprobs=5))
    assert ok.status_code == 200
    choice = ok.json()["choices"][0]
    assert choice["logprobs"] is None and "label_probs" in choice


def test_compare_with_constrained_decoding_on_the_tiny_model(tiny_server: Server) -> None:
    body = {"pairs": [pair(0, True)], "order": "as_given", "decoding": "constrained"}
    r = httpx.post(f"{tiny_server.url}/compare", json=body, timeout=300)
    assert r.status_code == 200, r.text
    rec = r.json()["records"][0]
    assert rec["status"] == "ok" and rec["decoding"] == "constrained"
    assert rec["verdict_rule"] == "vote" and len(rec["judgments"]) == 1
    assert rec["judgments"][0]["winner"] in ("A", "B") and rec["winner"] in ("A", "B")
    assert rec["p_a"] is not None and 0.0 <= rec["p_a"] <= 1.0
    assert tiny_server.app.state.arm.decoding == "free"  # the served pipeline is unchanged


def test_each_request_decodes_as_it_asks_and_is_merged_only_with_its_kind() -> None:
    gen = ScriptedEngine("generator", constrained=True)
    judge = ScriptedEngine(
        "judge", judge_fn=judge_fn, probs_fn=lambda text, v: 0.8, constrained=True
    )
    arm = RubricARM(
        gen, judge, judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=64), cache=False
    )
    s = Server(ServeLimits(batch_window_s=0.2), arm=arm)
    try:

        def compare(decoding: str | None) -> dict:
            body: dict[str, Any] = {"pairs": [pair(0, True)], "order": "as_given"}
            if decoding is not None:
                body["decoding"] = decoding
            return httpx.post(f"{s.url}/compare", json=body, timeout=60).json()["records"][0]

        with ThreadPoolExecutor(4) as pool:
            recs = list(pool.map(compare, ["constrained", None, "constrained", "free"]))
        assert [r["decoding"] for r in recs] == ["constrained", "free", "constrained", "free"]
        assert all(r["winner"] == "A" and r["status"] == "ok" for r in recs)
        assert all(r["p_a"] == pytest.approx(0.8) for r in recs)
        # every judge call is all constrained or all free: the two kinds are never merged
        kinds = [None if c is None else all(x is not None for x in c) for c in judge.constraints]
        assert set(kinds) == {None, True} and len(kinds) <= 4
        # rubrics too are generated under the decoding each request asked for
        assert {c is not None for c in gen.constraints} == {False, True}
        judge.constraints.clear()
        body = {"prompts": ["q"], "completions": ["GOOD"], "references": ["BAD"]}
        r = httpx.post(f"{s.url}/reward", json={**body, "decoding": "constrained"}).json()
        assert r == {"rewards": [1.0], "decoding": "constrained"}
        assert len(judge.constraints) == 1 and all(c is not None for c in judge.constraints[0])
        assert httpx.get(f"{s.url}/health").json()["decoding"] == "free"
    finally:
        s.stop()


def test_a_server_that_cannot_constrain_says_so(server: Server) -> None:
    url = server.url
    r = httpx.post(f"{url}/compare", json={"pairs": [pair(0, True)], "decoding": "constrained"})
    assert r.status_code == 422
    assert "decoding=constrained" in r.json()["error"]["message"]
    assert "cannot constrain decoding" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/compare", json={"pairs": [pair(0, True)], "decoding": "sideways"})
    assert r.status_code == 422 and "decoding must be one of" in r.json()["error"]["message"]
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json=chat_body(structured_outputs={"grammar": 'root ::= "A"'}),
    )
    assert r.status_code == 422 and "scripted engine" in r.json()["error"]["message"]
    engine = OpenAIEngine("judge", f"{url}/v1", retries=0)
    with pytest.raises(RubricArmError, match="cannot constrain decoding.*use decoding=free"):
        engine.generate([JUDGE_CHAT], SamplingParams(), constraints=[Constraint('root ::= "A"')])
    ok = httpx.post(f"{url}/compare", json={"pairs": [pair(1, True)]}).json()["records"][0]
    assert ok["decoding"] == "free" and ok["winner"] == "A" and ok["p_a"] is None
    rewards = httpx.post(
        f"{url}/reward", json={"prompts": ["q"], "completions": ["GOOD"], "references": ["BAD"]}
    ).json()
    assert rewards == {"rewards": [1.0], "decoding": "free"}


# ---- issue 17: the body limit on the bytes read, finite numbers, --preset, a bounded load -------


def chunked_post(url: str, path: str, offered: int, block: int = 65_536) -> tuple[int, bytes]:
    """POST `offered` bytes to `path` with Transfer-Encoding: chunked (no Content-Length) on a
    raw socket, stopping when the server stops reading; (bytes sent, raw response)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    frame = f"{block:x}\r\n".encode() + b" " * block + b"\r\n"
    sent = 0
    try:
        sock.sendall(head.encode())
        while sent < offered:
            sock.sendall(frame)
            sent += block
        sock.sendall(b"0\r\n\r\n")
    except OSError:  # broken pipe / reset: the server closed the connection
        pass
    response = b""
    try:
        while data := sock.recv(65_536):
            response += data
    except OSError:
        pass
    sock.close()
    return sent, response


def test_a_chunked_body_over_the_limit_is_cut_off_with_413_and_health_stays_fast() -> None:
    limit, offered = 64_000, 30_000_000
    s = Server(ServeLimits(max_body_bytes=limit, batch_window_s=0.01))
    try:
        result: dict[str, Any] = {}

        def upload() -> None:
            result["sent"], result["response"] = chunked_post(s.url, "/compare", offered)

        uploader = threading.Thread(target=upload)
        uploader.start()
        slowest = 0.0
        while uploader.is_alive() or slowest == 0.0:
            start = time.perf_counter()
            assert httpx.get(f"{s.url}/health", timeout=30).status_code == 200
            slowest = max(slowest, time.perf_counter() - start)
            time.sleep(0.01)
        uploader.join()
        status_line = result["response"].split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 413"), result["response"][:300]
        assert f"over {limit} bytes".encode() in result["response"]
        # the server stopped reading at the limit: the client could not send the rest
        assert result["sent"] < offered // 2, result["sent"]
        assert slowest < 1.0
        # through httpx too (a generator body goes out chunked), and the server goes on
        big = (b"x" * 8192 for _ in range(1000))
        r = httpx.post(
            f"{s.url}/compare", content=big, headers={"content-type": "application/json"}
        )
        assert r.status_code == 413 and r.json()["error"]["param"] == "body"
        body = json.dumps({"pairs": [pair(3, True)]}).encode()
        small = (body[k : k + 16] for k in range(0, len(body), 16))
        r = httpx.post(
            f"{s.url}/compare", content=small, headers={"content-type": "application/json"}
        )
        assert r.status_code == 200 and r.json()["records"][0]["winner"] == "A"
        r = httpx.post(f"{s.url}/compare", content=b"x" * (limit + 1))  # Content-Length path
        assert r.status_code == 413
    finally:
        s.stop()


CHAT_JSON = '{"model": "judge", "messages": [{"role": "user", "content": "hi"}]'


@pytest.mark.parametrize(
    ("url_path", "body", "field_name"),
    [
        ("/v1/chat/completions", CHAT_JSON + ', "temperature": NaN}', "temperature"),
        ("/v1/chat/completions", CHAT_JSON + ', "temperature": Infinity}', "temperature"),
        ("/v1/chat/completions", CHAT_JSON + ', "top_p": -Infinity}', "top_p"),
        ("/v1/chat/completions", CHAT_JSON + ', "top_p": NaN}', "top_p"),
        ("/v1/chat/completions", CHAT_JSON + ', "max_tokens": Infinity}', "max_tokens"),
        ("/v1/chat/completions", CHAT_JSON + ', "seed": NaN}', "seed"),
        ("/v1/chat/completions", CHAT_JSON + ', "frequency_penalty": NaN}', "frequency_penalty"),
        (
            "/compare",
            '{"pairs": [{"prompt": "p", "response_a": "a", "response_b": "b"}], "seed": NaN}',
            "seed",
        ),
    ],
)
def test_non_finite_numbers_get_422_naming_the_field(
    server: Server, url_path: str, body: str, field_name: str
) -> None:
    r = httpx.post(
        f"{server.url}{url_path}", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    message = r.json()["error"]["message"]
    assert message.startswith(field_name) and "finite" in message, message
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def test_serve_takes_preset_like_the_other_commands(monkeypatch, tiny_model_path) -> None:
    import rubric_arm.harness.serve as serve_module
    from rubric_arm.cli import build_parser
    from rubric_arm.errors import InputError

    served: dict[str, Any] = {}
    monkeypatch.setattr(serve_module, "serve", lambda arm, **kw: served.update(arm=arm, **kw))
    args = build_parser().parse_args(["serve", "--preset", "tiny", "--port", "8399"])
    assert args.func(args) == 0
    arm = served["arm"]
    assert arm.generator_engine.fingerprint.startswith("tiny-random")
    assert arm.decoding == "constrained" and served["port"] == 8399  # the tiny preset's
    args = build_parser().parse_args(["serve", "--preset", "tiny", "-J", "preset=tiny"])
    assert args.func(args) == 0
    args = build_parser().parse_args(["serve", "--preset", "tiny", "-J", "preset=mini"])
    with pytest.raises(InputError, match="disagree"):
        args.func(args)


def test_the_bench_load_run_counts_every_answer_and_times_health() -> None:
    from rubric_arm.reproduce.bench_serve import EXPECTED, run_load

    limit = 50_000
    s = Server(ServeLimits(max_body_bytes=limit, batch_window_s=0.01))
    try:
        pairs = [pair(k, k % 2 == 0) for k in range(4)]
        res = run_load(s.url, pairs, max_body_bytes=limit, clients=4, seconds=1.5)
    finally:
        s.stop()
    assert res["requests"] >= 10 and res["served"] >= 4
    assert res["unexpected"] == 0 and res["transport_errors"] == 0, res["by_kind"]
    for kind, statuses in res["by_kind"].items():
        assert set(statuses) <= {str(EXPECTED[kind]), "503"}, (kind, statuses)
    assert res["status_413"] >= 2 and res["status_422"] >= 1 and res["status_5xx_other"] == 0
    assert res["latency_p50_s"] <= res["latency_p99_s"]
    assert res["health_checks"] >= 5 and res["health_under_1s"]
    assert 0 < res["oversize_chunked_sent_max_bytes"] < res["oversize_chunked_offered_bytes"]


def test_two_replicas_one_dying_mid_run_give_the_records_of_one(server: Server) -> None:
    """The openai engine spreads requests over replicas and moves a dead one's work to the other;
    the records equal one replica's, fingerprints included."""
    doomed = Server()
    served: list[int] = []

    def dying_judge(text: str, vote: int) -> str:
        served.append(vote)
        if len(served) == 2:  # answer this request, then go away
            doomed.server.should_exit = True
        return judge_fn(text, vote)

    doomed.judge.judge_fn = dying_judge
    pairs = [pair(k, k % 3 != 0) for k in range(10)]

    def records(urls: list[str]) -> list[dict[str, Any]]:
        kw = {"retries": 1, "cooldown": 60.0, "max_concurrency": 2}
        arm = RubricARM(
            OpenAIEngine("generator", urls, **kw),
            OpenAIEngine("judge", urls, **kw),
            judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=64),
            cache=False,
        )
        return [r.to_dict(timings=False) for r in arm.judge(pairs, order="both", seed=0)]

    try:
        one = records([f"{server.url}/v1"])
        both = records([f"{server.url}/v1", f"{doomed.url}/v1"])
    finally:
        doomed.stop()
    assert len(served) >= 2 and doomed.server.should_exit
    assert both == one
    assert {r["judge"] for r in one} == {"openai:scripted-1"}
    assert all(r["status"] == "ok" for r in one)


def test_replicas_serving_different_models_are_refused(server: Server) -> None:
    other = Server()
    other.judge.fingerprint = "another-model"
    try:
        with pytest.raises(InputError, match="serve different models"):
            OpenAIEngine("judge", [f"{server.url}/v1", f"{other.url}/v1"])
    finally:
        other.stop()
    assert endpoint_list("http://a/v1 , http://b/v1/") == ["http://a/v1", "http://b/v1"]
    with pytest.raises(InputError, match="listed twice"):
        endpoint_list(["http://a/v1", "http://a/v1/"])
    with pytest.raises(InputError, match="at least one"):
        endpoint_list(" , ")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_process(port: int, home: str) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "rubric_arm.cli", "serve", "--preset", "tiny", "--port", str(port),
        "-J", "cache=false",
    ]  # fmt: skip
    env = {**os.environ, "RUBRIC_ARM_HOME": home}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not start")


@pytest.mark.slow
def test_two_serve_processes_one_killed_mid_run_give_the_records_of_one(
    tiny_model_path, rubric_arm_home
) -> None:
    """Two `rubric-arm serve` processes on the tiny model; one gets SIGKILL after its second
    answer. One request at a time, so every engine call holds one chat and greedy outputs
    cannot depend on which replica computed them."""
    ports = [_free_port(), _free_port()]
    procs = [_serve_process(p, str(rubric_arm_home)) for p in ports]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    try:
        for url, proc in zip(urls, procs, strict=True):
            _wait_healthy(url, proc)
        pairs = [pair(k, k % 2 == 0) for k in range(6)]

        def records(bases: list[str], kill_after: int | None = None) -> list[dict[str, Any]]:
            kw = {"retries": 1, "cooldown": 600.0, "max_concurrency": 1}
            gen, judge = OpenAIEngine("generator", bases, **kw), OpenAIEngine("judge", bases, **kw)
            answered = {"n": 0}
            post = judge.client.post

            def counting_post(url: str, **kwargs: Any) -> Any:
                r = post(url, **kwargs)
                if kill_after is not None and url.startswith(bases[-1]):
                    answered["n"] += 1
                    if answered["n"] == kill_after:
                        procs[1].kill()
                        procs[1].wait(30)
                return r

            judge.client.post = counting_post  # type: ignore[method-assign]
            arm = RubricARM(
                gen,
                judge,
                judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=48),
                rubric_sampling=SamplingParams(temperature=0.0, max_new_tokens=32),
                cache=False,
            )
            out = [r.to_dict(timings=False) for r in arm.judge(pairs, order="both", seed=0)]
            assert kill_after is None or answered["n"] >= kill_after
            return out

        one = records([f"{urls[0]}/v1"])
        both = records([f"{urls[0]}/v1", f"{urls[1]}/v1"], kill_after=2)
        assert procs[1].returncode is not None, "the second replica was killed mid-run"
        assert both == one
        assert all(r["status"] == "ok" for r in one)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
