"""`rubric-arm serve` on loopback: concurrent clients batched together, bad requests answered with
4xx, engine failures with 500 (the server goes on), and the openai engine talking to it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from scripted_engine import ScriptedEngine, judge_output

from rubric_arm.engines.openai_engine import OpenAIEngine
from rubric_arm.errors import RubricArmError
from rubric_arm.harness.serve import ServeLimits, build_app
from rubric_arm.pipeline import RubricARM
from rubric_arm.types import SamplingParams

uvicorn = pytest.importorskip("uvicorn")


def judge_fn(text: str, vote: int) -> str:
    if "EXPLODE" in text:
        raise RuntimeError("the engine broke")
    if "SLOW" in text:
        time.sleep(0.3)
    return judge_output("A" if text.find("GOOD") < text.find("BAD") else "B")


class Server:
    def __init__(self, limits: ServeLimits | None = None) -> None:
        self.gen = ScriptedEngine("generator")
        self.judge = ScriptedEngine("judge", judge_fn=judge_fn)
        arm = RubricARM(
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
    assert rec.status == "ok" and rec.winner == "B" and rec.rubric["n_criteria"] == 2
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
