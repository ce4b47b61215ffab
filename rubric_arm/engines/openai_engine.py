"""An Engine that talks to any OpenAI-compatible chat-completions server: `rubric-arm serve`, a
`vllm serve` endpoint, or an API model. Requests of a batch run concurrently (bounded); failures
are retried with back-off, then raised naming the request.

Constrained decoding sends vLLM's structured-outputs request field, `structured_outputs:
{"grammar": <EBNF>}` (vLLM >= 0.12; `rubric-arm serve` reads the same field), with the grammar
in its `Constraint.bounded()` form since a server cannot count tokens per free-text span. A
server that refuses the field (400/422 naming it) makes the engine say to use decoding=free; a
server that silently ignores unknown fields returns unconstrained text, which the verdict
parser then judges like any free output.

A VerdictProbe asks for `logprobs: true, top_logprobs: 20` and reads the label probabilities
from `choices[i].logprobs.content` (see `label_probs_from_openai`). `rubric-arm serve` returns
no per-token log-probabilities but its own `choices[i].label_probs`, read with the default
probe; those are used when the engine's probe is the default one.

Several replicas of one model (`vllm serve` or `rubric-arm serve` processes) are one engine:
`base_url` takes a list (or a comma-separated string). Request k goes to replica k mod n; a
replica that fails to answer (connection error, 429, 5xx) is set aside for `cooldown` seconds
and the request goes to the next one at once, so a dead replica costs no retry of the budget.
The engine's fingerprint is the served model's (the `fingerprint` of rubric-arm serve's model
card) when every replica reports the same one, so a run's records do not depend on which or how
many replicas served it; replicas that report different models are refused."""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rubric_arm.engines.base import Engine
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.types import Chat, Completion, Constraint, SamplingParams, VerdictProbe

STRUCTURED_OUTPUTS_FIELD = "structured_outputs"
PROBE_TOP_LOGPROBS = 20  # the most the OpenAI API allows
_CUE_TOKENS = 12  # tokens before a label token joined to match the cue (as the reference engine)
_CHARS_PER_TOKEN = 3.0  # conservative estimate when neither a tokenizer nor /tokenize is there


class OpenAIEngine(Engine):
    """Chat completions over HTTP. Token counts come from a local HF `tokenizer` when given, else
    from the server's `/tokenize` (rubric-arm serve and vLLM have one), else an estimate of one
    token per 3 characters (then prompt budgets are approximate; stated in `token_counting`)."""

    name = "openai"
    supports_constraints = True

    def __init__(
        self,
        model: str,
        base_url: str | Sequence[str] = "http://127.0.0.1:8321/v1",
        *,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        context_length: int = 8192,
        tokenizer: str | None = None,
        max_concurrency: int = 8,
        timeout: float = 600.0,
        retries: int = 2,
        cooldown: float = 30.0,
        progress: bool = False,
    ) -> None:
        import httpx

        if not model:
            raise InputError("the openai engine needs a model name")
        self.model = model
        self.base_urls = endpoint_list(base_url)
        self.base_url = self.base_urls[0]
        self.cooldown = float(cooldown)
        self._down: dict[str, float] = {}
        self._down_lock = threading.Lock()
        self.context_length = int(context_length)
        self.max_concurrency = max(1, int(max_concurrency))
        self.retries = max(0, int(retries))
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout)
        self.fingerprint = self._served_fingerprint()
        self.tokenizer: Any = None
        self.token_counting = "estimate"
        if tokenizer:
            from rubric_arm.models import load_tokenizer, resolve_model

            self.tokenizer = load_tokenizer(resolve_model(tokenizer))
            self.token_counting = "tokenizer"
        elif self._server_tokenize("probe") is not None:
            self.token_counting = "server"

    # ---- tokens ----------------------------------------------------------------------------
    def _served_fingerprint(self) -> str:
        """`openai:<the served model's fingerprint>` when every replica's model card has the same
        one; otherwise a name built from the addresses (API models, vLLM)."""
        found: dict[str, str] = {}
        for url in self.base_urls:
            try:
                r = self.client.get(f"{url}/models/{self.model}")
                value = r.json().get("fingerprint") if r.status_code == 200 else None
            except Exception:
                value = None
            if isinstance(value, str) and value:
                found[url] = value
        if len(set(found.values())) > 1:
            listing = ", ".join(f"{u}: {f}" for u, f in found.items())
            raise InputError(f"the replicas serve different models as {self.model!r} ({listing})")
        if found and len(found) == len(self.base_urls):
            return f"openai:{next(iter(found.values()))}"
        return f"openai:{','.join(self.base_urls)}:{self.model}"

    def _server_tokenize(self, text: str) -> int | None:
        root = self._order(0)[0].removesuffix("/v1")
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
    def request_body(
        self,
        chat: Chat,
        params: SamplingParams,
        constraint: Constraint | None = None,
        probe: VerdictProbe | None = None,
    ) -> dict[str, Any]:
        """The chat-completions body for one chat (see the module doc for the extra fields)."""
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
        if constraint is not None:
            body[STRUCTURED_OUTPUTS_FIELD] = {"grammar": constraint.bounded()}
        if probe is not None:
            body["logprobs"] = True
            body["top_logprobs"] = PROBE_TOP_LOGPROBS
        return body

    def _request(
        self,
        k: int,
        chat: Chat,
        params: SamplingParams,
        constraint: Constraint | None = None,
        probe: VerdictProbe | None = None,
    ) -> list[Completion]:
        body = self.request_body(chat, params, constraint, probe)
        last, attempt = "", 0
        while attempt <= self.retries:
            for url in self._order(k):
                where = f"openai engine ({url}, model {self.model})"
                try:
                    r = self.client.post(f"{url}/chat/completions", json=body)
                except Exception as exc:
                    last = f"{where}: {type(exc).__name__}: {exc}"
                    self._set_aside(url)
                    continue
                if r.status_code == 200:
                    return _completions(r.json(), params.n, k, probe)
                if constraint is not None and r.status_code in (400, 422):
                    reason = _server_message(r)
                    if re.search(r"structured[_ ]outputs?", reason, re.IGNORECASE):
                        raise RubricArmError(
                            f"{where}: the server cannot constrain decoding (HTTP "
                            f"{r.status_code} on the {STRUCTURED_OUTPUTS_FIELD} field: "
                            f"{reason[:200]}); use decoding=free"
                        )
                last = f"{where}: HTTP {r.status_code}: {r.text[:300]}"
                if 400 <= r.status_code < 500 and r.status_code != 429:
                    raise RubricArmError(f"{last} (chat {k}; the request itself was refused)")
                self._set_aside(url)
            time.sleep(min(8.0, 0.5 * 2**attempt))
            attempt += 1
        raise RubricArmError(f"chat {k}: every replica failed; last: {last}")

    def _order(self, k: int) -> list[str]:
        """The replicas to try for request k: k mod n first, the ones set aside last."""
        n = len(self.base_urls)
        rotated = [self.base_urls[(k + i) % n] for i in range(n)]
        now = time.monotonic()
        with self._down_lock:
            up = [u for u in rotated if self._down.get(u, 0.0) <= now]
        return up + [u for u in rotated if u not in up]

    def _set_aside(self, url: str) -> None:
        with self._down_lock:
            self._down[url] = time.monotonic() + self.cooldown

    def generate(
        self,
        chats: Sequence[Chat],
        params: SamplingParams,
        *,
        desc: str | None = None,
        constraints: Sequence[Constraint | None] | None = None,
        probe: VerdictProbe | None = None,
    ) -> list[list[Completion]]:
        """One request per chat, run concurrently; grammar and probe as in the module doc."""
        if not chats:
            return []
        if constraints is not None and len(constraints) != len(chats):
            raise InputError(f"got {len(constraints)} constraints for {len(chats)} chats")
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(chats))) as pool:
            futures = [
                pool.submit(
                    self._request,
                    k,
                    c,
                    params,
                    None if constraints is None else constraints[k],
                    probe,
                )
                for k, c in enumerate(chats)
            ]
            return [f.result() for f in futures]

    def close(self) -> None:
        self.client.close()


def endpoint_list(base_url: str | Sequence[str]) -> list[str]:
    """Replica base URLs from one URL, a comma-separated string or a list (order kept)."""
    parts = [base_url] if isinstance(base_url, str) else list(base_url)
    urls = [u.strip().rstrip("/") for part in parts for u in str(part).split(",") if u.strip()]
    if not urls:
        raise InputError("the openai engine needs at least one base_url")
    if len(set(urls)) != len(urls):
        raise InputError(f"a base_url is listed twice: {', '.join(urls)}")
    return urls


def _server_message(response: Any) -> str:
    """The error message of a failed response on one line (JSON `error.message` when there)."""
    try:
        data = response.json()
    except ValueError:
        data = None
    message: Any = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            message = err.get("message")
        elif isinstance(err, str):
            message = err
        message = message or data.get("message") or data.get("detail")
    text = message if isinstance(message, str) else response.text
    return " ".join(str(text).split())


def label_probs_from_top(
    spelled: Sequence[tuple[str, Any]], labels: Sequence[str]
) -> dict[str, float] | None:
    """Renormalised label probabilities from (space-stripped token text, logprob) candidates.

    Each label's mass is the sum of exp(logprob) over the candidates spelling it; a label with
    no candidate gets 0; None when no candidate spells any label. Used by the vllm engine too.
    """
    mass = {label: 0.0 for label in labels}
    for text, logprob in spelled:
        if text in mass and isinstance(logprob, (int, float)) and math.isfinite(logprob):
            mass[text] += math.exp(logprob)
    total = sum(mass.values())
    if total <= 0.0:
        return None
    return {label: m / total for label, m in mass.items()}


def label_probs_from_openai(
    content: Sequence[dict[str, Any]], probe: VerdictProbe
) -> dict[str, float] | None:
    """The probe's label probabilities from OpenAI `logprobs.content` (None if never applies).

    The position read is the last one whose token spells a label (space-stripped) and whose
    preceding tokens (the last 12, joined) match `probe.cue`; its candidates are the
    `top_logprobs` plus the sampled token itself.
    """
    cue = re.compile(probe.cue)
    tokens = [str(e.get("token", "")) if isinstance(e, dict) else "" for e in content]
    found: dict[str, float] | None = None
    for i, entry in enumerate(content):
        if tokens[i].strip() not in probe.labels:
            continue
        if not cue.search("".join(tokens[max(0, i - _CUE_TOKENS) : i])):
            continue
        top = [t for t in entry.get("top_logprobs") or [] if isinstance(t, dict)]
        spelled = [(str(t.get("token", "")).strip(), t.get("logprob")) for t in top]
        if not any(t.get("token") == entry.get("token") for t in top):
            spelled.append((tokens[i].strip(), entry.get("logprob")))
        read = label_probs_from_top(spelled, probe.labels)
        if read is not None:
            found = read
    return found


def _choice_label_probs(
    choice: dict[str, Any], probe: VerdictProbe | None
) -> dict[str, float] | None:
    if probe is None:
        return None
    content = (choice.get("logprobs") or {}).get("content")
    if content:
        return label_probs_from_openai(content, probe)
    served = choice.get("label_probs")
    if probe == VerdictProbe() and isinstance(served, dict) and set(served) == set(probe.labels):
        return {label: float(served[label]) for label in probe.labels}
    return None


def _completions(
    data: dict[str, Any], n: int, k: int, probe: VerdictProbe | None = None
) -> list[Completion]:
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
        out.append(
            Completion(
                text,
                prompt_tokens,
                completion_tokens // max(1, n),
                reason,
                label_probs=_choice_label_probs(c, probe),
            )
        )
    return out
