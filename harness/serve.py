"""`rubric-arm serve`: the judge as an HTTP service that any RL framework can call.

Endpoints: POST /rubric, /compare (pairs, both orders by default), /reward (completions vs
references, the paper's {0, 0.5, 1}), /tokenize, an OpenAI-compatible /v1/chat/completions and
/v1/models for the two underlying models, GET /health. Requests that arrive together are merged
into one engine call by a single worker thread (the models are not thread-safe, and batching is
where the throughput is). Bad requests get a 4xx naming the field; request size, items per
request and queue length are bounded (413 / 422 / 503); an engine failure answers 500 and the
server goes on.

/compare and /reward take an optional `decoding` ("constrained" | "free"; default: the served
pipeline's own). Requests merge only with requests of the same decoding; the other decoding is
served by a second pipeline on the same engines, templates, sampling and rubric cache (built on
first use; a server whose engines cannot constrain decoding answers 422). /compare records carry
each pair's `decoding`, `verdict_rule` and `p_a` (mean P(A) at the verdict, when the judge
engine reads one); /reward answers with the `decoding` it used.

(No `from __future__ import annotations` here: FastAPI reads the request models from the
handlers' annotations at runtime, and those models are local to `build_app`.)
"""

import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from rubric_arm.errors import InputError
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


@dataclass
class _Job:
    kind: str
    key: Any  # jobs with equal (kind, key) can be merged into one call
    items: list[Any]
    future: Future = field(default_factory=Future)


class Batcher:
    """One worker thread; jobs of the same kind and key queued together run as one call."""

    def __init__(
        self, handlers: dict[str, Callable[[Any, list[Any]], list[Any]]], limits: ServeLimits
    ):
        self.handlers = handlers
        self.limits = limits
        self.queue: queue.Queue[_Job] = queue.Queue(maxsize=limits.max_queue)
        self.calls = 0
        self.merged = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="rubric-arm-serve", daemon=True)
        self.thread.start()

    def submit(self, kind: str, key: Any, items: list[Any]) -> Future:
        job = _Job(kind, key, items)
        self.queue.put_nowait(job)  # queue.Full -> 503
        return job.future

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        held: list[_Job] = []
        while not self._stop.is_set():
            if held:
                first = held.pop(0)
            else:
                try:
                    first = self.queue.get(timeout=0.2)
                except queue.Empty:
                    continue
            time.sleep(self.limits.batch_window_s)
            batch, size = [first], len(first.items)
            while True:
                try:
                    job = self.queue.get_nowait()
                except queue.Empty:
                    break
                fits = size + len(job.items) <= self.limits.max_batch_items
                if (job.kind, job.key) == (first.kind, first.key) and fits:
                    batch.append(job)
                    size += len(job.items)
                else:
                    held.append(job)
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        items = [item for job in batch for item in job.items]
        self.calls += 1
        self.merged += len(batch) - 1
        try:
            results = self.handlers[batch[0].kind](batch[0].key, items)
        except Exception as exc:  # the error goes to every waiting request; the worker goes on
            for job in batch:
                job.future.set_exception(exc)
            return
        start = 0
        for job in batch:
            job.future.set_result(results[start : start + len(job.items)])
            start += len(job.items)


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


def build_app(arm: RubricARM, *, limits: ServeLimits | None = None, seed: int = 0) -> Any:
    """The FastAPI app serving `arm` (its generator and judge engines)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field

    limits = limits or ServeLimits()
    default_seed = seed
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

    batcher = Batcher(
        {
            "rubric": handle_rubrics,
            "compare": handle_compare,
            "reward": handle_reward,
            "chat": handle_chat,
        },
        limits,
    )
    app = FastAPI(title="rubric-arm", description="Rubric-ARM judge service")
    app.state.batcher = batcher
    app.state.arm = arm

    class Message(BaseModel):
        role: str
        content: str

    class RubricRequest(BaseModel):
        prompts: list[str | list[Message]] = Field(min_length=1)

    class Pair(BaseModel):
        id: str | None = None
        prompt: str | list[Message]
        response_a: str
        response_b: str
        label: str | None = None

    class CompareRequest(BaseModel):
        pairs: list[Pair] = Field(min_length=1)
        order: str = "both"
        seed: int = default_seed
        decoding: str | None = None

    class RewardRequest(BaseModel):
        prompts: list[str | list[Message]] = Field(min_length=1)
        completions: list[str]
        references: list[str]
        decoding: str | None = None

    class ChatRequest(BaseModel):
        model: str = "judge"
        messages: list[Message] = Field(min_length=1)
        temperature: float = 1.0
        top_p: float = 1.0
        max_tokens: int = 512
        n: int = 1
        seed: int | None = None
        structured_outputs: dict[str, Any] | None = None
        logprobs: bool = False
        top_logprobs: int | None = None

    class TokenizeRequest(BaseModel):
        model: str = "judge"
        prompt: str

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse(
            status_code=status, content={"error": {"message": message, "code": status}}
        )

    @app.middleware("http")
    async def bound_body(request: Request, call_next: Any) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            return error(413, f"request body over {limits.max_body_bytes} bytes")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
            parts.append(f"{where or 'body'}: {e.get('msg')}")
        return error(422, "; ".join(parts) or "invalid request")

    def check_items(n: int, what: str) -> None:
        if n > limits.max_items:
            raise InputError(f"{n} {what} in one request; the limit is {limits.max_items}")

    async def run(kind: str, key: Any, items: list[Any]) -> Any:
        import asyncio

        try:
            fut = batcher.submit(kind, key, items)
        except queue.Full:
            return error(503, "the server queue is full; retry later")
        try:
            return await asyncio.wrap_future(fut)
        except InputError as exc:
            return error(400, str(exc))
        except Exception as exc:
            return error(500, f"{type(exc).__name__}: {exc}")

    def as_prompt(p: Any, where: str) -> Any:
        raw = p if isinstance(p, str) else [m.model_dump() for m in p]
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
            return error(422, f"order must be both, random or as_given, got {req.order!r}")
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

    @app.get("/v1/models")
    def list_models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {
                    "id": name,
                    "object": "model",
                    "owned_by": "rubric-arm",
                    "fingerprint": e.fingerprint,
                }
                for name, e in models.items()
            ],
        }

    @app.post("/tokenize")
    def tokenize(req: TokenizeRequest) -> Any:
        if req.model not in models:
            return error(404, f"unknown model {req.model!r}; known: generator, judge")
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

    @app.post("/v1/chat/completions")
    async def chat(req: ChatRequest) -> Any:
        """OpenAI chat completions on the generator or judge model.

        `structured_outputs: {"grammar": <EBNF, root rule root>}` (vLLM's field) constrains the
        output to the grammar; a grammar that does not parse answers 422 naming the field. The
        grammar runs as given: its free-text rules get no per-span token budget, so bound them
        in characters (`Constraint.bounded()`) or with `max_tokens`. No per-token
        log-probabilities are returned (`choices[i].logprobs` is null): with `logprobs: true`
        the judge's verdict probabilities, read with the default VerdictProbe (the token after
        `Winner: Response`), come back as the non-standard `choices[i].label_probs`
        ({"A": p, "B": 1 - p}, or null when no verdict was reached or the engine reads none);
        `top_logprobs` (0..20) is accepted and otherwise ignored.
        """
        if req.model not in models:
            return error(404, f"unknown model {req.model!r}; known: generator, judge")
        if not 1 <= req.n <= 16:
            return error(422, f"n must be in [1, 16], got {req.n}")
        if not 1 <= req.max_tokens <= limits.max_new_tokens:
            return error(
                422, f"max_tokens must be in [1, {limits.max_new_tokens}], got {req.max_tokens}"
            )
        if req.temperature < 0 or not 0 < req.top_p <= 1:
            return error(422, "temperature must be >= 0 and top_p in (0, 1]")
        if req.top_logprobs is not None:
            if not 0 <= req.top_logprobs <= MAX_TOP_LOGPROBS:
                return error(
                    422, f"top_logprobs must be in [0, {MAX_TOP_LOGPROBS}], got {req.top_logprobs}"
                )
            if req.top_logprobs > 0 and not req.logprobs:
                return error(422, "top_logprobs needs logprobs: true")
        try:
            constraint = request_constraint(req)
        except InputError as exc:
            return error(422, str(exc))
        params = SamplingParams(
            temperature=req.temperature,
            top_p=req.top_p,
            max_new_tokens=req.max_tokens,
            n=req.n,
            seed=req.seed,
        )
        chat_msgs = [m.model_dump() for m in req.messages]
        out = await run("chat", (req.model, params, req.logprobs), [(chat_msgs, constraint)])
        if isinstance(out, JSONResponse):
            return out
        completions = out[0]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": req.model,
            "choices": [
                {
                    "index": k,
                    "message": {"role": "assistant", "content": c.text},
                    "logprobs": None,
                    "finish_reason": c.finish_reason,
                    **({"label_probs": c.label_probs} if req.logprobs else {}),
                }
                for k, c in enumerate(completions)
            ],
            "usage": {
                "prompt_tokens": completions[0].prompt_tokens,
                "completion_tokens": sum(c.completion_tokens for c in completions),
                "total_tokens": completions[0].prompt_tokens
                + sum(c.completion_tokens for c in completions),
            },
        }

    return app


def serve(arm: RubricARM, host: str = "127.0.0.1", port: int = 8321, **kwargs: Any) -> None:
    """Run the service in the foreground (uvicorn, one process)."""
    import uvicorn

    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}: the service has no authentication", flush=True)
    uvicorn.run(build_app(arm, **kwargs), host=host, port=port, log_level="info")
