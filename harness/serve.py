"""`rubric-arm serve`: the judge as an HTTP service that any RL framework can call.

Endpoints: POST /rubric, /compare (pairs, both orders by default), /reward (completions vs
references, the paper's {0, 0.5, 1}), /tokenize, GET /health, and OpenAI-compatible
/v1/chat/completions, /v1/models and /v1/models/{id} for the two underlying models ("generator"
and "judge"), usable from the official `openai` client (see `build_app`'s chat handler for
what is and is not supported). Requests that arrive together are merged into one engine call
by a single worker thread (the models are not thread-safe, and batching is where the
throughput is). Bad requests get a 4xx naming the field (non-finite numbers included); request
size (counted on the bytes read, whatever the transfer encoding), items per request and queue
length are bounded (413 / 422 / 503); an engine failure answers 500 and the server goes on.
Errors have OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

/compare and /reward take an optional `decoding` ("constrained" | "free"; default: the served
pipeline's own). Requests merge only with requests of the same decoding; the other decoding is
served by a second pipeline on the same engines, templates, sampling and rubric cache (built on
first use; a server whose engines cannot constrain decoding answers 422). /compare records carry
each pair's `decoding`, `verdict_rule` and `p_a` (mean P(A) at the verdict, when the judge
engine reads one); /reward answers with the `decoding` it used.

(No `from __future__ import annotations` here: FastAPI reads the request models from the
handlers' annotations at runtime, and those models are local to `build_app`.)
"""

import json
import math
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.harness.batching import RequestBatcher
from rubric_arm.pipeline import RubricARM
from rubric_arm.policy_reward import RubricARMReward
from rubric_arm.types import DECODINGS, Constraint, SamplingParams, VerdictProbe, validate_prompt

STRUCTURED_OUTPUTS_FIELD = "structured_outputs"
MAX_TOP_LOGPROBS = 20


@dataclass
class ServeLimits:
    max_body_bytes: int = 4_000_000
    max_items: int = 256  # pairs / prompts / completions per request
    max_queue: int = 64  # requests waiting for the worker
    max_batch_items: int = 512  # items merged into one engine call
    max_new_tokens: int = 8192
    batch_window_s: float = 0.01  # how long the worker waits for more requests to merge


def check_grammar(grammar: Any) -> str:
    """The EBNF of a request's `structured_outputs.grammar` if xgrammar parses it (root rule
    `root`), else an InputError naming the field."""
    where = f"{STRUCTURED_OUTPUTS_FIELD}.grammar"
    if not isinstance(grammar, str) or not grammar.strip():
        raise InputError(f"{where} must be a non-empty string")
    try:
        import xgrammar
    except ImportError:
        raise InputError(
            f"{STRUCTURED_OUTPUTS_FIELD}: this server cannot constrain decoding "
            f"(xgrammar is not installed)"
        ) from None
    try:
        xgrammar.Grammar.from_ebnf(grammar)
    except Exception as exc:
        raise InputError(f"{where} does not compile: {_parser_message(exc)}") from None
    return grammar


def _parser_message(exc: Exception) -> str:
    """xgrammar's error on one line, without its `[time] file:line:` prefix."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return re.sub(r"^\[[^\]]*\]\s*\S+:\d+:\s*", "", first)


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape; `code` stays the HTTP status (this server's earlier contract)."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


class BodyLimit:
    """ASGI middleware: a request body is read here, at most `max_bytes` of it, before the app
    sees it; past the limit the answer is 413 and the connection is closed, so the rest of the
    body is never read, whatever the transfer encoding (Content-Length or chunked). A declared
    Content-Length over the limit is refused before any byte of the body is read.

    (Our own rather than FastAPI's `max_body_size`: that exists only in recent releases, while
    the `serve` extra allows fastapi >= 0.110, and it keeps reading the connection after its
    413.)
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before the end of its body: nobody to answer
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()  # http.disconnect, watched by streaming responses
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Any) -> None:
        payload = json.dumps(
            error_body(413, f"request body over {self.max_bytes} bytes", "body")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),  # uvicorn closes: the rest is never read
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


# Chat roles a request may use; OpenAI's "developer" is the system role of newer models.
CHAT_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


def message_text(content: Any, where: str) -> str:
    """A message's text: a string as is, a list of text content parts joined with newlines
    (vLLM's rule); anything else (images, audio, files, a null content) is an InputError
    naming the part."""
    if isinstance(content, str):
        return content
    if content is None:
        raise InputError(f"{where} is null; messages without text (tool calls) are not supported")
    if not content:
        raise InputError(f"{where} is an empty list of content parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind != "text":
            raise InputError(
                f"{where}[{j}]: content parts of type {kind!r} are not supported; only 'text'"
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InputError(f"{where}[{j}].text must be a string")
        others = sorted(set(part) - {"type", "text"})
        if others:
            raise InputError(f"{where}[{j}]: {', '.join(others)} not supported in a content part")
        texts.append(text)
    return "\n".join(texts)


_PARAM = re.compile(r"[A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*")


def param_of(message: str) -> str | None:
    """The request field an InputError message starts with (OpenAI's `error.param`)."""
    found = _PARAM.match(message)
    return found.group(0) if found else None


def _is_zero(v: Any) -> bool:
    return v is None or (not isinstance(v, bool) and isinstance(v, int | float) and v == 0)


# Chat-completions parameters this server accepts only at a value that changes nothing (what a
# client may send by default); any other value, and any parameter not named here or in the
# request model, answers 422 saying it is not supported.
NO_OP_PARAMS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "frequency_penalty": (_is_zero, "only 0"),
    "presence_penalty": (_is_zero, "only 0"),
    "logit_bias": (lambda v: not v, "only empty"),
    "stop": (lambda v: not v, "no stop sequences"),
    "response_format": (
        lambda v: v is None or v == {"type": "text"},
        'only {"type": "text"}; constrain the output with structured_outputs.grammar',
    ),
    "tools": (lambda v: not v, "no tools"),
    "functions": (lambda v: not v, "no functions"),
    "tool_choice": (lambda v: v in (None, "none", "auto"), "no tools"),
    "function_call": (lambda v: v in (None, "none", "auto"), "no functions"),
    "parallel_tool_calls": (lambda v: True, ""),
    "user": (lambda v: v is None or isinstance(v, str), "a string"),
    "safety_identifier": (lambda v: v is None or isinstance(v, str), "a string"),
    "prompt_cache_key": (lambda v: v is None or isinstance(v, str), "a string"),
    "metadata": (lambda v: v is None or isinstance(v, dict), "an object"),
    "store": (lambda v: v in (None, False), "only false"),
    "service_tier": (lambda v: v in (None, "auto", "default"), "only auto or default"),
    "modalities": (lambda v: v in (None, ["text"]), 'only ["text"]'),
}
CHAT_PARAMS = (
    "model, messages, temperature, top_p, max_tokens, max_completion_tokens, n, seed, stream, "
    "stream_options, logprobs, top_logprobs, structured_outputs"
)


def check_no_op_params(extra: dict[str, Any]) -> None:
    """InputError for the first request parameter that this server would have to ignore."""
    unknown = sorted(k for k in extra if k not in NO_OP_PARAMS)
    if unknown:
        raise InputError(
            f"{', '.join(unknown)}: not supported by this server (it implements {CHAT_PARAMS})"
        )
    for name, value in extra.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{name} must be a finite number, got {value}")
        accepts, what = NO_OP_PARAMS[name]
        if not accepts(value):
            raise InputError(f"{name}={value!r} is not supported by this server ({what})")


def build_app(arm: RubricARM, *, limits: ServeLimits | None = None, seed: int = 0) -> Any:
    """The FastAPI app serving `arm` (its generator and judge engines)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.exceptions import HTTPException as StarletteHTTPException

    limits = limits or ServeLimits()
    default_seed = seed
    started = int(time.time())
    models = {"generator": arm.generator_engine, "judge": arm.judge_engine}
    pipelines: dict[str, tuple[RubricARM, RubricARMReward]] = {
        arm.decoding: (arm, RubricARMReward(arm, seed=seed))
    }
    pipelines_lock = threading.Lock()

    def pipeline_for(decoding: str | None) -> str:
        """The decoding a request asked for (None: the served pipeline's), its pipeline built."""
        chosen = arm.decoding if decoding is None else decoding
        if chosen not in DECODINGS:
            raise InputError(f"decoding must be one of {', '.join(DECODINGS)}, got {decoding!r}")
        with pipelines_lock:
            if chosen not in pipelines:
                try:
                    variant = arm.with_decoding(chosen)
                except InputError as exc:
                    raise InputError(f"decoding={chosen}: {exc}") from None
                pipelines[chosen] = (variant, RubricARMReward(variant, seed=seed))
        return chosen

    def handle_rubrics(_key: Any, prompts: list[Any]) -> list[Any]:
        return [r.to_dict() for r in arm.rubrics(prompts, desc="serve: rubrics")]

    def handle_compare(key: Any, pairs: list[dict]) -> list[Any]:
        order, s, decoding = key
        judge = pipelines[decoding][0]
        return [
            r.to_dict(timings=False) for r in judge.judge(pairs, order=order, seed=s, desc="serve")
        ]

    def handle_reward(decoding: Any, items: list[tuple]) -> list[Any]:
        reward_fn = pipelines[decoding][1]
        prompts = [i[0] for i in items]
        return reward_fn(prompts, [i[1] for i in items], reference=[i[2] for i in items])

    def handle_chat(key: Any, items: list[tuple[Any, Constraint | None]]) -> list[Any]:
        model, params, wants_probe = key
        constraints = [constraint for _, constraint in items]
        return models[model].generate(
            [chat for chat, _ in items],
            params,
            desc="serve: chat",
            constraints=constraints if any(c is not None for c in constraints) else None,
            probe=VerdictProbe() if wants_probe else None,
        )

    batcher = RequestBatcher(
        {
            "rubric": handle_rubrics,
            "compare": handle_compare,
            "reward": handle_reward,
            "chat": handle_chat,
        },
        max_queue=limits.max_queue,
        max_batch_items=limits.max_batch_items,
        window_s=limits.batch_window_s,
        name="rubric-arm-serve",
    )
    app = FastAPI(title="rubric-arm", description="Rubric-ARM judge service")
    app.state.batcher = batcher
    app.state.arm = arm
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    class RequestModel(BaseModel):
        # JSON parsers accept NaN and Infinity literals: no float field takes them
        model_config = ConfigDict(allow_inf_nan=False)

    class Message(RequestModel):
        model_config = ConfigDict(allow_inf_nan=False, extra="allow")
        role: str
        content: str | list[dict[str, Any]] | None

    class RubricRequest(RequestModel):
        prompts: list[str | list[Message]] = Field(min_length=1)

    class Pair(RequestModel):
        id: str | None = None
        prompt: str | list[Message]
        response_a: str
        response_b: str
        label: str | None = None

    class CompareRequest(RequestModel):
        pairs: list[Pair] = Field(min_length=1)
        order: str = "both"
        seed: int = default_seed
        decoding: str | None = None

    class RewardRequest(RequestModel):
        prompts: list[str | list[Message]] = Field(min_length=1)
        completions: list[str]
        references: list[str]
        decoding: str | None = None

    class ChatRequest(RequestModel):
        # extra fields are kept to be refused by name (check_no_op_params), not ignored
        model_config = ConfigDict(allow_inf_nan=False, extra="allow")
        model: str = "judge"
        messages: list[Message] = Field(min_length=1)
        temperature: float | None = None
        top_p: float | None = None
        max_tokens: int | None = None
        max_completion_tokens: int | None = None
        n: int | None = None
        seed: int | None = None
        stream: bool | None = False
        stream_options: dict[str, Any] | None = None
        structured_outputs: dict[str, Any] | None = None
        logprobs: bool | None = False
        top_logprobs: int | None = None

    class TokenizeRequest(RequestModel):
        model: str = "judge"
        prompt: str

    def error(status: int, message: str, param: str | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content=error_body(status, message, param))

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts, params = [], []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where or 'body'}: {e.get('msg')}")
            params.append(where)
        return error(422, "; ".join(parts) or "invalid request", params[0] if params else None)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = str(exc.detail)
        if exc.status_code in (404, 405):
            message = (
                f"{request.method} {request.url.path}: {exc.detail}; this server serves POST "
                f"/rubric, /compare, /reward, /tokenize, /v1/chat/completions and GET /health, "
                f"/v1/models, /v1/models/{{id}}"
            )
        return error(exc.status_code, message)

    @app.exception_handler(InputError)
    async def input_error(_request: Request, exc: InputError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"{type(exc).__name__}: {exc}")

    def check_items(n: int, what: str) -> None:
        if n > limits.max_items:
            raise InputError(f"{n} {what} in one request; the limit is {limits.max_items}")

    async def run(kind: str, key: Any, items: list[Any]) -> Any:
        try:
            return await batcher.run(kind, key, items)
        except queue.Full:
            return error(503, "the server queue is full; retry later")
        except InputError as exc:
            return error(400, str(exc))
        except Exception as exc:
            return error(500, f"{type(exc).__name__}: {exc}")

    def turns(messages: list[Message], where: str, *, strict: bool) -> list[dict[str, str]]:
        """{role, content} turns: content parts joined, "developer" read as "system"; with
        `strict` (the OpenAI endpoint) unknown roles and message fields are refused."""
        out = []
        for i, m in enumerate(messages):
            if strict and m.role not in CHAT_ROLES:
                raise InputError(
                    f"{where}[{i}].role {m.role!r} is not supported; one of {', '.join(CHAT_ROLES)}"
                )
            if strict and m.model_extra:
                names = ", ".join(sorted(m.model_extra))
                raise InputError(f"{where}[{i}]: {names} not supported in a message")
            content = message_text(m.content, f"{where}[{i}].content")
            out.append({"role": CHAT_ROLES.get(m.role, m.role), "content": content})
        return out

    def as_prompt(p: Any, where: str) -> Any:
        raw = p if isinstance(p, str) else turns(p, where, strict=False)
        return validate_prompt(raw, where)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "generator": arm.generator_engine.fingerprint,
            "judge": arm.judge_engine.fingerprint,
            "decoding": arm.decoding,
            "queue": batcher.queue.qsize(),
            "engine_calls": batcher.calls,
            "merged_requests": batcher.merged,
        }

    @app.post("/rubric")
    async def rubric(req: RubricRequest) -> Any:
        try:
            check_items(len(req.prompts), "prompts")
            prompts = [as_prompt(p, f"prompts[{k}]") for k, p in enumerate(req.prompts)]
        except InputError as exc:
            return error(422, str(exc))
        out = await run("rubric", None, prompts)
        return out if isinstance(out, JSONResponse) else {"rubrics": out}

    @app.post("/compare")
    async def compare(req: CompareRequest) -> Any:
        if req.order not in ("both", "random", "as_given"):
            return error(422, f"order must be both, random or as_given, got {req.order!r}", "order")
        try:
            check_items(len(req.pairs), "pairs")
            pairs = []
            for k, p in enumerate(req.pairs):
                row = p.model_dump()
                row["prompt"] = as_prompt(p.prompt, f"pairs[{k}].prompt")
                row["id"] = p.id or f"{k}-{uuid.uuid4().hex[:8]}"
                if row["label"] is None:
                    row.pop("label")
                pairs.append(row)
            decoding = pipeline_for(req.decoding)
        except InputError as exc:
            return error(422, str(exc))
        out = await run("compare", (req.order, req.seed, decoding), pairs)
        return out if isinstance(out, JSONResponse) else {"records": out}

    @app.post("/reward")
    async def reward(req: RewardRequest) -> Any:
        n = len(req.prompts)
        if len(req.completions) != n or len(req.references) != n:
            return error(
                422,
                f"prompts, completions and references must have the same length "
                f"({n}, {len(req.completions)}, {len(req.references)})",
            )
        try:
            check_items(n, "completions")
            prompts = [as_prompt(p, f"prompts[{k}]") for k, p in enumerate(req.prompts)]
            decoding = pipeline_for(req.decoding)
        except InputError as exc:
            return error(422, str(exc))
        items = list(zip(prompts, req.completions, req.references, strict=True))
        out = await run("reward", decoding, items)
        return out if isinstance(out, JSONResponse) else {"rewards": out, "decoding": decoding}

    def model_card(name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": started,
            "owned_by": "rubric-arm",
            "fingerprint": models[name].fingerprint,
        }

    def unknown_model(name: str) -> JSONResponse:
        return error(404, f"unknown model {name!r}; known: generator, judge", "model")

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card(name) for name in models]}

    @app.get("/v1/models/{model_id:path}")
    def get_model(model_id: str) -> Any:
        return model_card(model_id) if model_id in models else unknown_model(model_id)

    @app.post("/tokenize")
    def tokenize(req: TokenizeRequest) -> Any:
        if req.model not in models:
            return unknown_model(req.model)
        return {"count": models[req.model].count_tokens(req.prompt)}

    def request_constraint(req: ChatRequest) -> Constraint | None:
        """The request's grammar as a Constraint (None without `structured_outputs`)."""
        if req.structured_outputs is None:
            return None
        engine = models[req.model]
        if not getattr(engine, "supports_constraints", False):
            raise InputError(
                f"{STRUCTURED_OUTPUTS_FIELD}: the {engine.name} engine serving {req.model!r} "
                f"cannot constrain decoding"
            )
        others = sorted(
            k
            for k, v in req.structured_outputs.items()
            if k != "grammar" and v not in (None, False)
        )
        if others:
            raise InputError(
                f"{STRUCTURED_OUTPUTS_FIELD}: only 'grammar' is supported, got {', '.join(others)}"
            )
        grammar = check_grammar(req.structured_outputs.get("grammar"))
        return Constraint(grammar=grammar, name="request")

    def chat_settings(req: ChatRequest) -> tuple[SamplingParams, bool]:
        """The request's sampling settings and whether usage goes into the stream; InputError
        naming the field for anything out of range or not supported."""
        check_no_op_params(req.model_extra or {})
        n = 1 if req.n is None else req.n
        if not 1 <= n <= 16:
            raise InputError(f"n must be in [1, 16], got {n}")
        budgets = {"max_tokens": req.max_tokens, "max_completion_tokens": req.max_completion_tokens}
        for name, value in budgets.items():
            if value is not None and not 1 <= value <= limits.max_new_tokens:
                raise InputError(f"{name} must be in [1, {limits.max_new_tokens}], got {value}")
        given = [v for v in budgets.values() if v is not None]
        temperature = 1.0 if req.temperature is None else req.temperature
        top_p = 1.0 if req.top_p is None else req.top_p
        if temperature < 0:
            raise InputError(f"temperature must be >= 0, got {temperature}")
        if not 0 < top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {top_p}")
        if req.top_logprobs is not None:
            if not 0 <= req.top_logprobs <= MAX_TOP_LOGPROBS:
                raise InputError(
                    f"top_logprobs must be in [0, {MAX_TOP_LOGPROBS}], got {req.top_logprobs}"
                )
            if req.top_logprobs > 0 and not req.logprobs:
                raise InputError("top_logprobs needs logprobs: true")
        include_usage = False
        if req.stream_options is not None:
            if not req.stream:
                raise InputError("stream_options needs stream: true")
            others = sorted(set(req.stream_options) - {"include_usage"})
            if others:
                raise InputError(f"stream_options: {', '.join(others)} not supported")
            include_usage = bool(req.stream_options.get("include_usage"))
        params = SamplingParams(
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=min(given) if given else 512,
            n=n,
            seed=req.seed,
        )
        return params, include_usage

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest) -> Any:
        """OpenAI chat completions on the generator or judge model.

        Supported: `messages` with string content or lists of text content parts (joined with
        newlines; other part types answer 422), roles system / developer (read as system) /
        user / assistant; `temperature`, `top_p`, `n` (1..16), `seed`; `max_completion_tokens`
        and `max_tokens` (both given: the smaller); `stream` (server-sent events: the text of
        each choice arrives in one chunk once generated, then `data: [DONE]`;
        `stream_options.include_usage` adds the usage chunk); `usage` in every answer.
        Parameters that would change the output but are not implemented (stop, penalties,
        logit_bias, tools, response formats, ...) answer 422 naming them; at their neutral
        value they are accepted.

        `structured_outputs: {"grammar": <EBNF, root rule root>}` (vLLM's field) constrains the
        output to the grammar; a grammar that does not parse answers 422 naming the field. The
        grammar runs as given: its free-text rules get no per-span token budget, so bound them
        in characters (`Constraint.bounded()`) or with `max_tokens`. No per-token
        log-probabilities are returned (`choices[i].logprobs` is null): with `logprobs: true`
        the judge's verdict probabilities, read with the default VerdictProbe (the token after
        `Winner: Response`), come back as the non-standard `choices[i].label_probs`
        ({"A": p, "B": 1 - p}, or null when no verdict was reached or the engine reads none);
        `top_logprobs` (0..20) is accepted for that and otherwise ignored.
        """
        if req.model not in models:
            return unknown_model(req.model)
        try:
            params, include_usage = chat_settings(req)
            chat_msgs = turns(req.messages, "messages", strict=True)
            constraint = request_constraint(req)
        except InputError as exc:
            return error(422, str(exc), param_of(str(exc)))
        out = await run("chat", (req.model, params, bool(req.logprobs)), [(chat_msgs, constraint)])
        if isinstance(out, JSONResponse):
            return out
        completions = out[0]
        prompt_tokens = completions[0].prompt_tokens
        generated = sum(c.completion_tokens for c in completions)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": prompt_tokens + generated,
        }
        head = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "created": int(time.time()),
            "model": req.model,
            "system_fingerprint": models[req.model].fingerprint,
        }

        def probs(c: Any) -> dict[str, Any]:
            return {"label_probs": c.label_probs} if req.logprobs else {}

        if not req.stream:
            return {
                **head,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": k,
                        "message": {"role": "assistant", "content": c.text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": c.finish_reason,
                        **probs(c),
                    }
                    for k, c in enumerate(completions)
                ],
                "usage": usage,
            }

        def event(choices: list[dict[str, Any]], **extra: Any) -> str:
            chunk = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
            if include_usage:
                chunk.setdefault("usage", None)
            return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

        def delta(k: int, d: dict[str, Any], finish: str | None = None, **extra: Any) -> dict:
            return {"index": k, "delta": d, "logprobs": None, "finish_reason": finish, **extra}

        async def events() -> Any:
            for k, c in enumerate(completions):
                yield event([delta(k, {"role": "assistant", "content": ""})])
                if c.text:
                    yield event([delta(k, {"content": c.text})])
                yield event([delta(k, {}, c.finish_reason, **probs(c))])
            if include_usage:
                yield event([], usage=usage)
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    return app


def serve(arm: RubricARM, host: str = "127.0.0.1", port: int = 8321, **kwargs: Any) -> None:
    """Run the service in the foreground (uvicorn, one process)."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}: the service has no authentication", flush=True)
    uvicorn.run(build_app(arm, **kwargs), host=host, port=port, log_level="info")
