"""An Engine that talks to any OpenAI-compatible chat-completions server: `rubric-arm serve`, a
`vllm serve` endpoint, or an API model. Requests of a batch run concurrently (bounded); failures
are retried with back-off, then raised naming the request."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rubric_arm.engines.base import Engine
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.types import Chat, Completion, SamplingParams

_CHARS_PER_TOKEN = 3.0  # conservative estimate when neither a tokenizer nor /tokenize is there


class OpenAIEngine(Engine):
    """Chat completions over HTTP. Token counts come from a local HF `tokenizer` when given, else
    from the server's `/tokenize` (rubric-arm serve and vLLM have one), else an estimate of one
    token per 3 characters (then prompt budgets are approximate; stated in `token_counting`)."""

    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8321/v1",
        *,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        context_length: int = 8192,
        tokenizer: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 600.0,
        retries: int = 2,
        progress: bool = False,
    ) -> None:
        import httpx

        if not model:
            raise InputError("the openai engine needs a model name")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.context_length = int(context_length)
        self.max_concurrency = max(1, int(max_concurrency))
        self.retries = max(0, int(retries))
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout)
        self.fingerprint = f"openai:{self.base_url}:{model}"
        self.tokenizer: Any = None
        self.token_counting = "estimate"
        if tokenizer:
            from rubric_arm.models import load_tokenizer, resolve_model

            self.tokenizer = load_tokenizer(resolve_model(tokenizer))
            self.token_counting = "tokenizer"
        elif self._server_tokenize("probe") is not None:
            self.token_counting = "server"

    # ---- tokens ----------------------------------------------------------------------------
    def _server_tokenize(self, text: str) -> int | None:
        root = self.base_url.removesuffix("/v1")
        try:
            r = self.client.post(f"{root}/tokenize", json={"model": self.model, "prompt": text})
        except Exception:
            return None
        if r.status_code != 200:
            return None
        data = r.json()
        if "count" in data:
            return int(data["count"])
        return len(data["tokens"]) if "tokens" in data else None

    def count_tokens(self, text: str) -> int:
        if self.token_counting == "tokenizer":
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if self.token_counting == "server":
            n = self._server_tokenize(text)
            if n is not None:
                return n
        return math.ceil(len(text) / _CHARS_PER_TOKEN)

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        if self.token_counting == "tokenizer":
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            if len(enc["input_ids"]) <= max_tokens:
                return text
            return text[: enc["offset_mapping"][max_tokens - 1][1]]
        if self.count_tokens(text) <= max_tokens:
            return text
        lo, hi = 0, len(text)  # longest prefix that fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.count_tokens(text[:mid]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        return text[:lo]

    def chat_tokens(self, chat: Chat) -> int:
        # role markers and the generation prompt: a few tokens per message
        return sum(self.count_tokens(m["content"]) + 4 for m in chat) + 3

    # ---- generation ------------------------------------------------------------------------
    def _request(self, k: int, chat: Chat, params: SamplingParams) -> list[Completion]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(chat),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "n": params.n,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        last = ""
        for attempt in range(self.retries + 1):
            try:
                r = self.client.post(f"{self.base_url}/chat/completions", json=body)
            except Exception as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if r.status_code == 200:
                    return _completions(r.json(), params.n, k)
                last = f"HTTP {r.status_code}: {r.text[:300]}"
                if 400 <= r.status_code < 500 and r.status_code != 429:
                    break  # the request itself is wrong: retrying cannot help
            time.sleep(min(8.0, 0.5 * 2**attempt))
        raise RubricArmError(
            f"openai engine ({self.base_url}, model {self.model}): chat {k}: {last}"
        )

    def generate(
        self, chats: Sequence[Chat], params: SamplingParams, *, desc: str | None = None
    ) -> list[list[Completion]]:
        if not chats:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(chats))) as pool:
            futures = [pool.submit(self._request, k, c, params) for k, c in enumerate(chats)]
            return [f.result() for f in futures]

    def close(self) -> None:
        self.client.close()


def _completions(data: dict[str, Any], n: int, k: int) -> list[Completion]:
    choices = sorted(data.get("choices") or [], key=lambda c: c.get("index", 0))
    if len(choices) != n:
        raise RubricArmError(
            f"chat {k}: asked for {n} completions, the server returned {len(choices)}"
        )
    usage = data.get("usage") or {}
    prompt_tokens = int(usage.get("prompt_tokens", 0))
    completion_tokens = int(usage.get("completion_tokens", 0))
    out = []
    for c in choices:
        text = (c.get("message") or {}).get("content") or ""
        reason = "length" if c.get("finish_reason") == "length" else "stop"
        out.append(Completion(text, prompt_tokens, completion_tokens // max(1, n), reason))
    return out
