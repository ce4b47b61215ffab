"""`rubric-arm bench serve`: what request merging buys. The same N /compare requests are sent to
a loopback `rubric-arm serve` one after another, then all at once from N client threads; the
report gives both wall times, their ratio and the engine calls each needed (same run, same
machine, so the ratio is the figure to read)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rubric_arm.harness.serve import ServeLimits, build_app
from rubric_arm.pipeline import RubricARM
from rubric_arm.types import SamplingParams


def _start(app: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def run_serve_bench(
    output: Path,
    *,
    model: str = "smollm2-135m-instruct",
    clients: int = 16,
    rubric_tokens: int = 32,
    judge_tokens: int = 48,
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
        server.should_exit = True
        thread.join(timeout=10)
        batcher.stop()
    result = {
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
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    return result
