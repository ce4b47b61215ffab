"""RubricARM: prompt -> rubric (cached) -> judge (orders, votes) -> per-item result records."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from rubric_arm.cache import RubricCache, cache_key
from rubric_arm.checklist import (
    AGGREGATIONS,
    CHECK_ANSWERS,
    check_chat,
    checked_criteria,
    score_pairs,
)
from rubric_arm.engines import load_engine
from rubric_arm.engines.base import Engine
from rubric_arm.errors import InputError
from rubric_arm.presets import Preset, get_preset
from rubric_arm.records import JudgeRecord, Judgment, RubricResult, decide, mean_p_a
from rubric_arm.rubric import parse_rubric
from rubric_arm.templates import Template, load_template
from rubric_arm.types import (
    DECODINGS,
    VERDICT_RULES,
    Chat,
    Constraint,
    Decoding,
    PreferencePair,
    Prompt,
    Rubric,
    SamplingParams,
    VerdictProbe,
    VerdictRule,
    Winner,
    prompt_text,
    validate_prompt,
)

Order = Literal["random", "both", "as_given"]
ORDERS: tuple[str, ...] = ("random", "both", "as_given")

# Tokens kept free between the budgeted prompt and the context end: token counts of a response
# measured alone can differ by a few tokens from its count inside the rendered chat.
_TOKEN_MARGIN = 8
_MIN_RESPONSE_TOKENS = 16


def stable_hash(*parts: Any) -> int:
    """A 63-bit integer from the JSON of `parts`, identical across processes and runs."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big") >> 1


def random_order(pair_id: str, seed: int) -> Literal["AB", "BA"]:
    """The order a pair is shown in under order="random": a coin seeded by (seed, pair id)."""
    return "BA" if stable_hash(seed, "order", pair_id) % 2 else "AB"


def shown_orders(pair_id: str, order: str, seed: int) -> list[Literal["AB", "BA"]]:
    """The orders a pair is judged in: both, the seeded random one, or as given."""
    if order not in ORDERS:
        raise InputError(f"order must be one of {ORDERS}, got {order!r}")
    if order == "both":
        return ["AB", "BA"]
    return [random_order(pair_id, seed)] if order == "random" else ["AB"]


def prompt_key(prompt: Prompt) -> str:
    return json.dumps(prompt, ensure_ascii=False, sort_keys=True)


def mark_rubric_reuse(
    records: Sequence[JudgeRecord], prompts: Sequence[Prompt | None], seen: set[str]
) -> None:
    """Set each written record's `rubric.cached` from the run itself: True where an earlier
    record of the same run had a rubric for the same prompt (`prompts` aligns with `records`).
    The process's cache would say True for rubrics a killed run generated before its last
    chunk reached disk, so a resumed file would differ from an uninterrupted one."""
    for rec, prompt in zip(records, prompts, strict=True):
        if rec.rubric is not None and prompt is not None:
            key = prompt_key(prompt)
            rec.rubric.cached = key in seen
            seen.add(key)


class RubricARM:
    """A rubric generator and a judge used together as a pairwise reward model.

    `generator` and `judge` are model names (see `rubric_arm.models`) or ready Engines; when
    they name the same weights the model is loaded once and serves both roles.
    """

    def __init__(
        self,
        generator: str | Engine = "smollm2-135m-instruct",
        judge: str | Engine | None = None,
        *,
        engine: str = "transformers",
        generator_template: str | Template = "generator",
        judge_template: str | Template = "judge",
        rubric_sampling: SamplingParams | None = None,
        judge_sampling: SamplingParams | None = None,
        cache: RubricCache | bool | None = True,
        max_context: int | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        decoding: Decoding = "free",
        verdict: VerdictRule = "vote",
        max_rubric_items: int = 8,
        aggregation: str = "implicit",
    ) -> None:
        if decoding not in DECODINGS:
            raise InputError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        if verdict not in VERDICT_RULES:
            raise InputError(f"verdict must be one of {VERDICT_RULES}, got {verdict!r}")
        if aggregation not in AGGREGATIONS:
            raise InputError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
        if int(max_rubric_items) < 1:
            raise InputError(f"max_rubric_items must be >= 1, got {max_rubric_items}")
        kwargs = engine_kwargs or {}
        self.generator_engine = (
            generator if isinstance(generator, Engine) else load_engine(generator, engine, **kwargs)
        )
        judge = generator if judge is None else judge
        self.judge_engine = (
            judge if isinstance(judge, Engine) else load_engine(judge, engine, **kwargs)
        )
        self.generator_template = _as_template(generator_template, "generator")
        self.judge_template = _as_template(judge_template, "judge", "direct")
        self.rubric_sampling = rubric_sampling or SamplingParams(
            temperature=0.0, max_new_tokens=1024
        )
        self.judge_sampling = judge_sampling or SamplingParams(
            temperature=1.0, top_p=1.0, max_new_tokens=4096
        )
        if isinstance(cache, RubricCache):
            self.cache = cache
        else:
            self.cache = RubricCache(None, enabled=cache is not False and cache is not None)
        self.max_context = max_context
        self.default_votes = 1
        self.decoding: Decoding = decoding
        self.verdict: VerdictRule = verdict
        self.max_rubric_items = int(max_rubric_items)
        self.aggregation = aggregation
        if decoding == "constrained":
            for role, engine, template in (
                ("generator", self.generator_engine, self.generator_template),
                ("judge", self.judge_engine, self.judge_template),
            ):
                if role == "generator" and not self.uses_rubrics:
                    continue
                if not getattr(engine, "supports_constraints", False):
                    raise InputError(
                        f"the {engine.name} engine cannot constrain decoding: use decoding=free"
                    )
                if template.grammar is None:
                    raise InputError(
                        f"template {template.name!r} declares no grammar: decoding=constrained "
                        f"needs one (a format name or EBNF under 'grammar:'), or use decoding=free"
                    )

    @classmethod
    def from_preset(cls, name: str | Preset, **overrides: Any) -> RubricARM:
        """Build from a named preset; `cache`, `max_context` and `engine_kwargs` pass through."""
        passthrough = {
            k: overrides.pop(k) for k in ("cache", "max_context", "engine_kwargs") if k in overrides
        }
        preset = name if isinstance(name, Preset) else get_preset(name)
        preset = preset.with_overrides(**overrides)
        arm = cls(
            preset.generator,
            preset.judge,
            engine=preset.engine,
            generator_template=preset.generator_template,
            judge_template=preset.judge_template,
            rubric_sampling=preset.rubric_sampling,
            judge_sampling=preset.judge_sampling,
            decoding=preset.decoding,
            verdict=preset.verdict,
            max_rubric_items=preset.max_rubric_items,
            aggregation=preset.aggregation,
            **passthrough,
        )
        arm.default_votes = preset.votes
        return arm

    def with_decoding(self, decoding: Decoding) -> RubricARM:
        """A pipeline like this one that decodes with `decoding` (this one when it already does):
        the same engines, templates, sampling, rubric cache, verdict rule and votes, built
        through the constructor so its checks apply."""
        if decoding == self.decoding:
            return self
        other = RubricARM(
            self.generator_engine,
            self.judge_engine,
            generator_template=self.generator_template,
            judge_template=self.judge_template,
            rubric_sampling=self.rubric_sampling,
            judge_sampling=self.judge_sampling,
            cache=self.cache,
            max_context=self.max_context,
            decoding=decoding,
            verdict=self.verdict,
            max_rubric_items=self.max_rubric_items,
            aggregation=self.aggregation,
        )
        other.default_votes = self.default_votes
        return other

    @property
    def uses_rubrics(self) -> bool:
        """False for a direct judge template (no {rubric}): the rubric stage is skipped."""
        return self.judge_template.role == "judge"

    # ---- rubrics -------------------------------------------------------------------------
    def _context(self, engine: Engine) -> int:
        return min(engine.context_length, self.max_context or engine.context_length)

    def rubrics(self, prompts: Sequence[Prompt], *, desc: str = "rubrics") -> list[RubricResult]:
        """One rubric per prompt; each unique prompt is generated once and cached across runs."""
        prompts = [validate_prompt(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
        unique: dict[str, Prompt] = {}
        for p in prompts:
            unique.setdefault(prompt_key(p), p)
        fingerprint = self.generator_engine.fingerprint
        sampling = self.rubric_sampling
        constraint = self.rubric_constraint()
        sampling_key = sampling.key()
        if constraint is not None:
            sampling_key = {**sampling_key, "decoding": "constrained", "grammar": constraint.key}
        keys = {
            pk: cache_key(
                model_fingerprint=fingerprint,
                template_version=self.generator_template.version,
                prompt=p,
                sampling=sampling_key,
            )
            for pk, p in unique.items()
        }
        found = self.cache.get_many(list(keys.values()))
        results: dict[str, RubricResult] = {}
        todo: list[str] = []
        budget = self._context(self.generator_engine) - sampling.max_new_tokens
        for pk, p in unique.items():
            hit = found.get(keys[pk])
            if hit is not None:
                results[pk] = _rubric_result(hit["text"], cached=True, meta=hit)
            elif self.generator_engine.chat_tokens(self.generator_chat(p)) > budget:
                results[pk] = RubricResult(
                    Rubric([], ""), "", cached=False, status="prompt_too_long"
                )
            else:
                todo.append(pk)
        if todo:
            chats = [self.generator_chat(unique[pk]) for pk in todo]
            params = replace(sampling, n=1)
            if not sampling.greedy and sampling.seed is None:
                params = replace(params, seed=stable_hash("rubric"))
            start = time.perf_counter()
            outs = self.generator_engine.generate(
                chats,
                params,
                desc=desc,
                constraints=None if constraint is None else [constraint] * len(chats),
            )
            per_item = (time.perf_counter() - start) / len(todo)
            entries = []
            for pk, out in zip(todo, outs, strict=False):
                c = out[0]
                meta = {
                    "text": c.text,
                    "prompt_tokens": c.prompt_tokens,
                    "completion_tokens": c.completion_tokens,
                    "finish_reason": c.finish_reason,
                    "forced_tokens": c.forced_tokens,
                    "decoding": self.decoding,
                    "seconds": per_item,
                }
                results[pk] = _rubric_result(c.text, cached=False, meta=meta)
                entries.append((keys[pk], meta))
            self.cache.put_many(
                entries, model=fingerprint, template=self.generator_template.version
            )
        return [results[prompt_key(p)] for p in prompts]

    def rubric_constraint(self) -> Constraint | None:
        """The rubric grammar under constrained decoding (None when decoding is free)."""
        if self.decoding != "constrained":
            return None
        fmt = self.generator_template.output_format(None, {"max_items": self.max_rubric_items})
        if fmt is None:
            return None
        engine = self.generator_engine
        return fmt.constraint(self.rubric_sampling.max_new_tokens, engine.count_tokens)

    def judge_constraint(self, rubric: Rubric) -> Constraint | None:
        """The judgment grammar for `rubric` under constrained decoding (None when free)."""
        if self.decoding != "constrained":
            return None
        fmt = self.judge_template.output_format(rubric if self.uses_rubrics else None)
        if fmt is None:
            return None
        engine = self.judge_engine
        return fmt.constraint(self.judge_sampling.max_new_tokens, engine.count_tokens)

    def generator_chat(self, prompt: Prompt) -> Chat:
        """The rubric generator's chat for one prompt."""
        return self.generator_template.render(prompt=prompt_text(prompt))

    # ---- judging -------------------------------------------------------------------------
    def judge(
        self,
        pairs: Sequence[PreferencePair | dict[str, Any]],
        *,
        order: Order = "random",
        votes: int | None = None,
        seed: int = 0,
        rubrics: Sequence[RubricResult | Rubric | str] | None = None,
        desc: str = "judge",
        verdict: VerdictRule | None = None,
    ) -> list[JudgeRecord]:
        """Judge every pair (one batched engine call for the whole stage) and return records.

        order: "as_given" keeps response_a as Response A; "random" swaps each pair with a
        probability of 1/2, seeded per pair id; "both" judges each pair in both orders.
        votes: judge samples per order; the winner is the strict majority of all samples, or
        with verdict="prob" (default: the instance's `verdict`) the side of the mean P(A).
        Rows that fail validation come back as records with status "invalid_input".
        """
        if order not in ORDERS:
            raise InputError(f"order must be one of {ORDERS}, got {order!r}")
        votes = self.default_votes if votes is None else votes
        if votes < 1:
            raise InputError(f"votes must be >= 1, got {votes}")
        if votes > 1 and self.judge_sampling.greedy:
            raise InputError("votes > 1 needs a sampled judge (temperature > 0)")
        if rubrics is not None and len(rubrics) != len(pairs):
            raise InputError(f"got {len(rubrics)} rubrics for {len(pairs)} pairs")

        records: list[JudgeRecord] = []
        valid: list[tuple[int, PreferencePair]] = []
        for i, raw in enumerate(pairs):
            try:
                row = raw.to_dict() if isinstance(raw, PreferencePair) else raw
                pair = PreferencePair.from_dict(row, i, unit="row")
            except InputError as exc:
                rid = raw.get("id", i) if isinstance(raw, dict) else i
                records.append(self._record(str(rid), None, None, "invalid_input", error=str(exc)))
                continue
            records.append(
                self._record(pair.id, pair.subset, pair.label, "ok", cluster=pair.cluster)
            )
            valid.append((i, pair))

        if self.uses_rubrics is False:
            rubric_results = [RubricResult(Rubric([], ""), "", cached=False) for _ in valid]
        elif rubrics is None:
            rubric_results = self.rubrics([p.prompt for _, p in valid], desc=f"{desc}: rubrics")
        else:
            rubric_results = [_coerce_rubric(rubrics[i]) for i, _ in valid]

        if self.aggregation == "explicit":
            self._judge_explicit(records, valid, rubric_results, order, seed, desc)
            valid, rubric_results = [], []

        jobs: list[tuple[int, str]] = []
        chats: list[Chat] = []
        constraints: list[Constraint | None] = []
        for (i, pair), rr in zip(valid, rubric_results, strict=False):
            rec = records[i]
            if not self._start_record(rec, rr, order, votes, seed):
                continue
            item_chats = []
            for o in self._orders(pair, order, seed):
                chat = self.judge_chat(pair, rr.rubric, o, rec)
                if chat is None:
                    break
                item_chats.append((o, chat))
            else:
                jobs.extend((i, o) for o, _ in item_chats)
                chats.extend(chat for _, chat in item_chats)
                constraint = self.judge_constraint(rr.rubric)
                constraints.extend(constraint for _ in item_chats)

        if chats:
            params = replace(
                self.judge_sampling,
                n=votes,
                seed=None if self.judge_sampling.greedy else stable_hash(seed, "judge"),
            )
            start = time.perf_counter()
            outs = self.judge_engine.generate(
                chats,
                params,
                desc=desc,
                constraints=constraints if self.decoding == "constrained" else None,
                probe=VerdictProbe(),
            )
            per_item = (time.perf_counter() - start) / len(chats)
            for (i, o), samples in zip(jobs, outs, strict=False):
                rec = records[i]
                rec.judge_seconds += per_item
                n_criteria = rec.rubric.n_criteria if rec.rubric else 0
                direct = not self.uses_rubrics
                rec.judgments.extend(
                    Judgment.from_text(
                        c.text,
                        order=o,
                        vote=v,
                        n_criteria=n_criteria,
                        direct=direct,
                        prompt_tokens=c.prompt_tokens,
                        completion_tokens=c.completion_tokens,
                        finish_reason=c.finish_reason,
                        label_probs=c.label_probs,
                        forced_tokens=c.forced_tokens,
                    )
                    for v, c in enumerate(samples)
                )
        rule = self.verdict if verdict is None else verdict
        if rule not in VERDICT_RULES:
            raise InputError(f"verdict must be one of {VERDICT_RULES}, got {rule!r}")
        for rec in records:
            rec.decoding = self.decoding
            rec.verdict_rule = rule
            if rec.status == "ok":
                rec.p_a = mean_p_a(rec.judgments)
                rec.winner = decide(rec.judgments, rule)
                if rec.label is not None:
                    rec.correct = rec.winner == rec.label
        return records

    def _start_record(
        self, rec: JudgeRecord, rr: RubricResult, order: str, votes: int, seed: int
    ) -> bool:
        """Record a pair's rubric and judging settings; False (the pair then counts as
        prompt_too_long) when its rubric could not be generated."""
        rec.rubric = rr.to_record() if self.uses_rubrics else None
        rec.order, rec.votes, rec.seed = order, votes, seed
        if rr.status != "ok":
            rec.status = "prompt_too_long"
            rec.error = "the prompt does not fit the generator's context"
            return False
        return True

    def _judge_explicit(
        self,
        records: list[JudgeRecord],
        valid: list[tuple[int, PreferencePair]],
        rubric_results: list[RubricResult],
        order: str,
        seed: int,
        desc: str,
    ) -> None:
        """Explicit aggregation (`rubric_arm.checklist`): P(Meets) of every checked criterion for
        each response, one batched scoring call; one judgment per pair, position-free."""
        budget = max(64, (self.max_context or self.judge_engine.context_length) - 256)
        chats: list[Chat] = []
        counts: list[int] = []
        todo: list[int] = []
        for (i, pair), rr in zip(valid, rubric_results, strict=True):
            if not self._start_record(records[i], rr, order, 1, seed):
                continue
            criteria = checked_criteria(rr.rubric)
            for response in (pair.response_a, pair.response_b):
                text = self.judge_engine.truncate(response, budget)
                chats += [check_chat(c.text, text) for c in criteria]
            counts.append(len(criteria))
            todo.append(i)
        start = time.perf_counter()
        probs = self.judge_engine.next_label_probs(chats, CHECK_ANSWERS, desc=desc) if chats else []
        per_pair = (time.perf_counter() - start) / max(1, len(todo))
        for i, n, score in zip(todo, counts, score_pairs(probs, counts), strict=True):
            rec = records[i]
            rec.judge_seconds += per_pair
            p_a = score.p_a
            winner: Winner | None = "A" if p_a > 0.5 else "B" if p_a < 0.5 else None
            rec.judgments.append(
                Judgment(
                    order="AB",
                    vote=0,
                    winner=winner,
                    format_ok=n > 0,
                    failure=None if n else "the rubric has no criterion to check",
                    format_problems=[],
                    text=score.summary(),
                    prompt_tokens=0,
                    completion_tokens=0,
                    finish_reason="logprob",
                    p_a=round(p_a, 6),
                )
            )

    def compare(
        self, prompt: Prompt, response_a: str, response_b: str, **kwargs: Any
    ) -> JudgeRecord:
        """Judge one pair (default order: as given)."""
        kwargs.setdefault("order", "as_given")
        pair = {"id": "0", "prompt": prompt, "response_a": response_a, "response_b": response_b}
        return self.judge([pair], **kwargs)[0]

    def _record(
        self, rid: str, subset: str | None, label: Winner | None, status: str, **kw: Any
    ) -> JudgeRecord:
        return JudgeRecord(
            id=rid,
            subset=subset,
            label=label,
            status=status,  # type: ignore[arg-type]
            generator=self.generator_engine.fingerprint,
            judge=self.judge_engine.fingerprint,
            generator_template=self.generator_template.version,
            judge_template=self.judge_template.version,
            **kw,
        )

    @staticmethod
    def _orders(pair: PreferencePair, order: Order, seed: int) -> list[Literal["AB", "BA"]]:
        return shown_orders(pair.id, order, seed)

    def judge_chat(
        self, pair: PreferencePair, rubric: Rubric, o: str, rec: JudgeRecord
    ) -> Chat | None:
        """The judge chat for order `o` ("AB" or "BA"), responses truncated to fit the context.

        Truncations are recorded on `rec`; None (and `rec.status` "prompt_too_long") when the
        instruction and rubric leave no room for the responses.
        """
        engine = self.judge_engine
        first, second = (
            (pair.response_a, pair.response_b) if o == "AB" else (pair.response_b, pair.response_a)
        )
        fields = {"prompt": prompt_text(pair.prompt)}
        if self.uses_rubrics:
            fields["rubric"] = rubric.render() if rubric.criteria else rubric.raw

        def render(a: str, b: str) -> Chat:
            return self.judge_template.render(**fields, response_a=a, response_b=b)

        budget = self._context(engine) - self.judge_sampling.max_new_tokens - _TOKEN_MARGIN
        available = budget - engine.chat_tokens(render("", ""))
        lengths = [engine.count_tokens(first), engine.count_tokens(second)]
        if sum(lengths) <= available:
            return render(first, second)
        if available < 2 * _MIN_RESPONSE_TOKENS:
            rec.status = "prompt_too_long"
            rec.error = (
                f"instruction and rubric leave {max(available, 0)} tokens for the responses "
                f"(context {self._context(engine)}, max_new_tokens {self.judge_sampling.max_new_tokens})"
            )
            return None
        shares = _split_budget(lengths, available)
        texts = [first, second]
        names = ("response_a", "response_b") if o == "AB" else ("response_b", "response_a")
        for k in range(2):
            if lengths[k] > shares[k]:
                texts[k] = engine.truncate(texts[k], shares[k])
                rec.truncated[names[k]] = max(
                    rec.truncated.get(names[k], 0), lengths[k] - shares[k]
                )
        return render(texts[0], texts[1])


def _split_budget(lengths: list[int], available: int) -> list[int]:
    """Share `available` tokens between two texts: equal halves, a short text's slack to the other."""
    half = available // 2
    if lengths[0] <= half:
        return [lengths[0], available - lengths[0]]
    if lengths[1] <= half:
        return [available - lengths[1], lengths[1]]
    return [half, available - half]


def _as_template(t: str | Template, *roles: str) -> Template:
    template = t if isinstance(t, Template) else load_template(t)
    if template.role not in roles:
        raise InputError(
            f"template {template.name!r} is a {template.role} template, not a "
            f"{' or '.join(roles)} one"
        )
    return template


def _rubric_result(text: str, *, cached: bool, meta: dict[str, Any]) -> RubricResult:
    return RubricResult(
        rubric=parse_rubric(text),
        text=text,
        cached=cached,
        prompt_tokens=int(meta.get("prompt_tokens", 0)),
        completion_tokens=int(meta.get("completion_tokens", 0)),
        finish_reason=str(meta.get("finish_reason", "stop")),
        seconds=0.0 if cached else float(meta.get("seconds", 0.0)),
    )


def _coerce_rubric(r: RubricResult | Rubric | str) -> RubricResult:
    if isinstance(r, RubricResult):
        return r
    if isinstance(r, Rubric):
        return RubricResult(r, r.raw or r.render(), cached=False)
    return _rubric_result(r, cached=False, meta={})
