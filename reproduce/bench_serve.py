"""`rubric-arm bench serve`: what request merging buys, and how the server holds under load.

1. Merging: the same N /compare requests are sent to a loopback `rubric-arm serve` one after
   another, then all at once from N client threads; the report gives both wall times, their ratio
   and the engine calls each needed (same run, same machine, so the ratio is the figure to read).
2. Load (`run_load`, bounded, loopback only): C clients send requests back to back for a fixed
   time to a server on the tiny random model: /compare (plain and chunked bodies), /reward,
   /v1/chat/completions with n=2, and bad requests (bodies over the limit, with a Content-Length
   and chunked, and a NaN temperature), while one more client times GET /health every 0.1 s.
   The report gives requests served, the 4xx / 503 / 5xx counts, p50 / p99 latency of the
   served requests and the slowest /health answer (the figure to watch: it must stay under 1 s).

Both parts go into reports/bench_serve.json and bench_serve.md.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rubric_arm.harness.serve import ServeLimits, build_app
from rubric_arm.pipeline import RubricARM
from rubric_arm.types import SamplingParams

# What each client sends, in turn (client i starts at position i): 6 of 10 requests are work,
# 4 are refused at the door (413 by Content-Length, 413 on the bytes of a chunked body, 422).
LOAD_SCHEDULE = (
    "compare",
    "chat",
    "reward",
    "oversize",
    "compare_chunked",
    "chat",
    "oversize_chunked",
    "compare",
    "non_finite",
    "reward",
)
EXPECTED = {  # the status each kind should get (503 is also fine for work: the queue is bounded)
    "compare": 200,
    "compare_chunked": 200,
    "chat": 200,
    "reward": 200,
    "oversize": 413,
    "oversize_chunked": 413,
    "non_finite": 422,
}
OVERSIZE_CHUNKED_BYTES = 32_000_000  # what a chunked client offers; the server reads the limit
HEALTH_LIMIT_S = 1.0


def _start(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def _stop(server: Any, thread: threading.Thread, app: Any) -> None:
    server.should_exit = True
    thread.join(timeout=10)
    app.state.batcher.stop()


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank q-th percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def run_load(
    url: str,
    pairs: list[dict[str, Any]],
    *,
    max_body_bytes: int,
    clients: int = 8,
    seconds: float = 20.0,
    chat_tokens: int = 8,
    health_every_s: float = 0.1,
) -> dict[str, Any]:
    """`clients` threads send LOAD_SCHEDULE's requests back to back to `url` for `seconds`
    (requests in flight at the end are waited for); one more thread times GET /health."""
    import httpx

    stop = threading.Event()
    chunked_sent: list[int] = []

    def chunks(body: bytes, size: int) -> Iterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    def endless(total: int) -> Iterator[bytes]:
        block, sent = b" " * 65_536, 0
        try:
            while sent < total:
                yield block
                sent += len(block)
        finally:
            chunked_sent.append(sent)

    def request(client: httpx.Client, kind: str, k: int) -> httpx.Response:
        p = pairs[k % len(pairs)]
        if kind in ("compare", "compare_chunked"):
            body = {"pairs": [p], "order": "as_given"}  # one seed: all merge
            if kind == "compare":
                return client.post(f"{url}/compare", json=body)
            raw = json.dumps(body).encode()
            return client.post(  # a generator body goes out with Transfer-Encoding: chunked
                f"{url}/compare",
                content=chunks(raw, 512),
                headers={"content-type": "application/json"},
            )
        if kind == "reward":
            body = {
                "prompts": [p["prompt"]],
                "completions": [p["response_a"]],
                "references": [p["response_b"]],
            }
            return client.post(f"{url}/reward", json=body)
        if kind == "chat":
            body = {
                "model": "judge",
                "messages": [{"role": "user", "content": p["prompt"]}],
                "max_tokens": chat_tokens,
                "n": 2,
            }
            return client.post(f"{url}/v1/chat/completions", json=body)
        if kind == "oversize":
            raw = b'{"pairs": [' + b" " * max_body_bytes + b"]}"
            return client.post(
                f"{url}/compare", content=raw, headers={"content-type": "application/json"}
            )
        if kind == "oversize_chunked":
            return client.post(
                f"{url}/compare",
                content=endless(OVERSIZE_CHUNKED_BYTES),
                headers={"content-type": "application/json"},
            )
        assert kind == "non_finite"
        raw = b'{"model": "judge", "messages": [{"role": "user", "content": "hi"}], '
        raw += b'"temperature": NaN}'
        return client.post(
            f"{url}/v1/chat/completions",
            content=raw,
            headers={"content-type": "application/json"},
        )

    def worker(i: int) -> list[tuple[str, str, float]]:
        out = []
        k = i
        with httpx.Client(timeout=120) as client:
            while not stop.is_set():
                kind = LOAD_SCHEDULE[k % len(LOAD_SCHEDULE)]
                start = time.perf_counter()
                try:
                    status = str(request(client, kind, k).status_code)
                except httpx.HTTPError as exc:
                    status = f"error:{type(exc).__name__}"
                out.append((kind, status, time.perf_counter() - start))
                k += clients
        return out

    health: list[float] = []
    health_failures = Counter()

    def probe() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    ok = client.get(f"{url}/health").status_code == 200
                except httpx.HTTPError as exc:
                    ok = False
                    health_failures[type(exc).__name__] += 1
                health.append(time.perf_counter() - start)
                if not ok:
                    health_failures["status"] += 1
                stop.wait(health_every_s)

    prober = threading.Thread(target=probe, daemon=True)
    start = time.perf_counter()
    prober.start()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(worker, i) for i in range(clients)]
        time.sleep(seconds)
        stop.set()
        results = [r for f in futures for r in f.result()]
    elapsed = time.perf_counter() - start
    prober.join(timeout=30)

    statuses = Counter(status for _, status, _ in results)
    by_kind: dict[str, dict[str, int]] = {}
    for kind, status, _ in results:
        by_kind.setdefault(kind, Counter())[status] += 1  # type: ignore[index]
    unexpected = sum(
        1
        for kind, status, _ in results
        if status != str(EXPECTED[kind]) and not (EXPECTED[kind] == 200 and status == "503")
    )
    served = [t for _, status, t in results if status == "200"]

    def count(pred: Any) -> int:
        return sum(n for s, n in statuses.items() if s.isdigit() and pred(int(s)))

    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    return {
        "clients": clients,
        "send_seconds": seconds,  # clients start requests for this long
        "seconds": round(elapsed, 2),  # until the last answer
        "max_body_bytes": max_body_bytes,
        "requests": len(results),
        "served": len(served),
        "served_per_second": round(len(served) / elapsed, 2),
        "status_4xx": count(lambda s: 400 <= s < 500),
        "status_413": statuses.get("413", 0),
        "status_422": statuses.get("422", 0),
        "status_503": statuses.get("503", 0),
        "status_5xx_other": count(lambda s: s >= 500 and s != 503),
        "transport_errors": sum(n for s, n in statuses.items() if s.startswith("error")),
        "unexpected": unexpected,
        "statuses": dict(sorted(statuses.items())),
        "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
        "latency_p50_s": rounded(percentile(served, 50)),
        "latency_p99_s": rounded(percentile(served, 99)),
        "latency_max_s": rounded(max(served, default=None)),
        "oversize_chunked_offered_bytes": OVERSIZE_CHUNKED_BYTES,
        "oversize_chunked_sent_max_bytes": max(chunked_sent, default=0),
        "health_checks": len(health),
        "health_failures": sum(health_failures.values()),
        "health_p50_s": rounded(percentile(health, 50)),
        "health_max_s": rounded(max(health, default=None)),
        "health_under_1s": bool(health) and max(health) < HEALTH_LIMIT_S,
    }


def load_bench(
    *, clients: int = 8, seconds: float = 20.0, max_body_bytes: int = 1_000_000
) -> dict[str, Any]:
    """`run_load` against a loopback server on the tiny random model (built locally if
    missing), free decoding, 16-token rubrics and 24-token judgments (the model's output is
    noise: this measures the server, not the judge)."""
    from rubric_arm.data.mini import load_mini
    from rubric_arm.models import TINY

    pairs = [p.to_dict() for p in load_mini("heldout")[:16]]
    for p in pairs:  # keep the prompts short: the tiny model's context is small
        p["prompt"] = (p["prompt"] if isinstance(p["prompt"], str) else "question")[:400]
        p["response_a"], p["response_b"] = p["response_a"][:300], p["response_b"][:300]
    arm = RubricARM(
        TINY,
        TINY,
        rubric_sampling=SamplingParams(temperature=0.0, max_new_tokens=16),
        judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=24),
        cache=False,
        max_rubric_items=2,
        engine_kwargs={"progress": False},
    )
    app = build_app(arm, limits=ServeLimits(max_body_bytes=max_body_bytes, batch_window_s=0.01))
    server, thread, url = _start(app)
    try:
        import httpx

        warm = {"pairs": [pairs[0]], "order": "as_given"}
        httpx.post(f"{url}/compare", json=warm, timeout=600).raise_for_status()
        result = run_load(
            url, pairs, max_body_bytes=max_body_bytes, clients=clients, seconds=seconds
        )
        result["engine_calls"] = app.state.batcher.calls
        result["merged_requests"] = app.state.batcher.merged
    finally:
        _stop(server, thread, app)
    return {"model": TINY, **result}


def _two(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def render_markdown(result: dict[str, Any]) -> str:
    lines = ["## Serving (`rubric-arm bench serve`)", ""]
    if "speedup" in result:
        lines += [
            f"Request merging, {result['clients']} /compare requests on {result['model']} "
            f"(rubrics {result['rubric_tokens']} tokens, judgments {result['judge_tokens']}): "
            f"one at a time {result['sequential_seconds']} s "
            f"({result['sequential_engine_calls']} engine calls), all at once "
            f"{result['concurrent_seconds']} s ({result['concurrent_engine_calls']} calls): "
            f"**{result['speedup']}x**.",
            "",
        ]
    load = result.get("load")
    if load:
        lines += [
            f"Load, {load['clients']} clients sending for {load['send_seconds']} s "
            f"({load['seconds']} s until the last answer) on {load['model']} (body limit "
            f"{load['max_body_bytes']:,} bytes; 4 of every 10 requests are refused by design: "
            f"oversize with a Content-Length, oversize chunked, a NaN):",
            "",
            "| requests | served | served/s | p50 s | p99 s | 4xx | 503 | other 5xx | "
            "transport errors | unexpected | /health max s |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {load['requests']} | {load['served']} | {load['served_per_second']} | "
            f"{_two(load['latency_p50_s'])} | {_two(load['latency_p99_s'])} | {load['status_4xx']} | "
            f"{load['status_503']} | {load['status_5xx_other']} | {load['transport_errors']} | "
            f"{load['unexpected']} | {load['health_max_s']} |",
            "",
            f"A chunked client offering {load['oversize_chunked_offered_bytes']:,} bytes got "
            f"its 413 after sending at most {load['oversize_chunked_sent_max_bytes']:,}; "
            f"/health answered {load['health_checks']} times, never slower than "
            f"{load['health_max_s']} s (under 1 s: {load['health_under_1s']}).",
            "",
        ]
    return "\n".join(lines)


def run_serve_bench(
    output: Path,
    *,
    model: str = "smollm2-135m-instruct",
    clients: int = 16,
    rubric_tokens: int = 32,
    judge_tokens: int = 48,
    load_clients: int = 8,
    load_seconds: float = 20.0,
) -> dict[str, Any]:
    import httpx

    from rubric_arm.data.mini import load_mini

    pairs = [p.to_dict() for p in load_mini("heldout")[:clients]]
    arm = RubricARM(
        model,
        model,
        rubric_sampling=SamplingParams(temperature=0.0, max_new_tokens=rubric_tokens),
        judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=judge_tokens),
        cache=False,
        engine_kwargs={"batch_size": 64, "progress": False},
    )
    app = build_app(arm, limits=ServeLimits(batch_window_s=0.05))
    server, thread, url = _start(app)
    batcher = app.state.batcher

    def call(p: dict[str, Any]) -> int:
        body = {"pairs": [p], "order": "both"}
        return httpx.post(f"{url}/compare", json=body, timeout=3600).status_code

    try:
        call(pairs[0])  # warm-up (weights loaded, first kernels compiled)
        calls0 = batcher.calls
        start = time.perf_counter()
        sequential_codes = [call(p) for p in pairs]
        sequential = time.perf_counter() - start
        sequential_calls = batcher.calls - calls0
        calls0 = batcher.calls
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            concurrent_codes = list(pool.map(call, pairs))
        concurrent = time.perf_counter() - start
        concurrent_calls = batcher.calls - calls0
    finally:
        _stop(server, thread, app)
    result: dict[str, Any] = {
        "model": model,
        "clients": clients,
        "rubric_tokens": rubric_tokens,
        "judge_tokens": judge_tokens,
        "sequential_seconds": round(sequential, 2),
        "concurrent_seconds": round(concurrent, 2),
        "speedup": round(sequential / concurrent, 2),
        "sequential_engine_calls": sequential_calls,
        "concurrent_engine_calls": concurrent_calls,
        "all_ok": all(c == 200 for c in sequential_codes + concurrent_codes),
    }
    if load_seconds > 0:
        result["load"] = load_bench(clients=load_clients, seconds=load_seconds)
        load = result["load"]
        print(
            f"load: {load['clients']} clients x {load['seconds']} s: {load['served']} served "
            f"(p50 {load['latency_p50_s']} s, p99 {load['latency_p99_s']} s), "
            f"{load['status_4xx']} 4xx, {load['status_503']} 503, "
            f"{load['status_5xx_other']} other 5xx, {load['unexpected']} unexpected; "
            f"/health max {load['health_max_s']} s",
            flush=True,
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    output.with_suffix(".md").write_text(render_markdown(result), encoding="utf-8")
    return result
