"""The judges registry: anything that maps (prompt, two responses) to a preference.

Every judge returns one `rubric_arm.records.JudgeRecord` per pair (id, subset, label, status,
winner, correct, order, judgments, ...), so every judge goes through the same scorers.
Judges that score each response on its own (`scalar`, `random`) also fill `scores` and can
serve benchmarks that need per-response scores (RewardBench 2 Ties).

The pipeline judges (`rubric-arm`, `prompted-rubric`, `direct`) take the two switches of the
core, `-J decoding=constrained|free` and `-J verdict=vote|prob` (default: the preset's); their
records carry `decoding`, `verdict_rule` and `p_a` (P(response_a better) at the verdict), and
`-J engine.KEY=VALUE` options go to their engine.
"""

from __future__ import annotations

import importlib.metadata
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.pipeline import RubricARM, shown_orders, stable_hash
from rubric_arm.records import JudgeRecord, Judgment, mean_p_a
from rubric_arm.types import (
    DECODINGS,
    VERDICT_RULES,
    PreferencePair,
    SamplingParams,
    Winner,
    as_shown,
    prompt_text,
)
from rubric_arm.verdict import majority_vote

PIPELINE_JUDGES = frozenset({"rubric-arm", "prompted-rubric", "direct"})
"""Judges built on RubricARM: they take both switches, `decoding` and `verdict`."""

SWITCHES: dict[str, tuple[str, ...]] = {"decoding": DECODINGS, "verdict": VERDICT_RULES}
"""The judge switches shared by every front end (CLI, -J, Inspect -M, lm-eval model_args)."""


def check_switch(key: str, value: Any) -> str:
    """`value` when it is one of the choices of switch `key`, else an InputError naming them."""
    choices = SWITCHES[key]
    if value not in choices:
        raise InputError(f"{key} must be one of: {', '.join(choices)} (got {value!r})")
    return str(value)


def judge_switches(name: str, args: dict[str, Any]) -> dict[str, str | None]:
    """The decoding and verdict rule that judge `name` built from `args` uses, without loading it.

    Pipeline judges default to their preset's settings; `direct-logprob` has a verdict rule but
    generates nothing (no decoding); other judges have neither (None), and giving them one is
    an InputError rather than a setting that would be silently ignored.
    """
    if name in PIPELINE_JUDGES:
        from rubric_arm.presets import get_preset

        preset = get_preset(str(args.get("preset", "mini")))
        return {
            "decoding": check_switch("decoding", args.get("decoding", preset.decoding)),
            "verdict": check_switch("verdict", args.get("verdict", preset.verdict)),
        }
    takes = {"verdict"} if name == "direct-logprob" else set()
    for key in SWITCHES:
        if key in args and key not in takes:
            raise InputError(
                f"the {name} judge has no {key} setting (only the "
                f"{', '.join(sorted(PIPELINE_JUDGES))} judges have both)"
            )
    verdict = check_switch("verdict", args.get("verdict", "vote")) if takes else None
    return {"decoding": None, "verdict": verdict}


class Judge(ABC):
    """A pairwise judge; `config()` is what a run folder records to reproduce it.

    `decoding` and `verdict` are the judge's switches as a run folder records them: None for a
    judge that generates no text (decoding) or turns no judgments into a winner (verdict).
    """

    name: str = "judge"
    per_response_scores: bool = False
    decoding: str | None = None
    verdict: str | None = None

    @abstractmethod
    def config(self) -> dict[str, Any]: ...

    @abstractmethod
    def judge_pairs(
        self, pairs: Sequence[PreferencePair], *, order: str, seed: int, desc: str = "judge"
    ) -> list[JudgeRecord]:
        """One record per pair, in input order."""


def _base_record(pair: PreferencePair, order: str, seed: int, **kw: Any) -> JudgeRecord:
    return JudgeRecord(
        id=pair.id,
        subset=pair.subset,
        label=pair.label,
        status="ok",
        order=order,
        seed=seed,
        cluster=pair.cluster,
        **kw,
    )


def _scored(
    pair: PreferencePair, seed: int, a: float, b: float, winner: Winner | None
) -> JudgeRecord:
    """The record of a judge that scores each response alone (no text, no verdict rule)."""
    rec = _base_record(
        pair, "independent", seed, decoding=None, verdict_rule=None, scores={"A": a, "B": b}
    )
    rec.set_winner(winner)
    return rec


class RubricARMJudge(Judge):
    """The core pipeline: a rubric generator and a judge (`rubric-arm`, `prompted-rubric`, `direct`)."""

    def __init__(
        self, name: str, arm: RubricARM, settings: dict[str, Any], votes: int | None = None
    ):
        self.name = name
        self.arm = arm
        self.settings = settings
        self.votes = votes

    @property  # type: ignore[override]
    def decoding(self) -> str:
        return self.arm.decoding

    @property  # type: ignore[override]
    def verdict(self) -> str:
        return self.arm.verdict

    def config(self) -> dict[str, Any]:
        arm = self.arm
        uses = arm.uses_rubrics
        constrained_rubrics = uses and arm.decoding == "constrained"
        return {
            "judge": self.name,
            **self.settings,
            "generator_model": arm.generator_engine.fingerprint if uses else None,
            "judge_model": arm.judge_engine.fingerprint,
            "generator_template": arm.generator_template.version if uses else None,
            "judge_template": arm.judge_template.version,
            "rubric_sampling": arm.rubric_sampling.key() if uses else None,
            "judge_sampling": arm.judge_sampling.key(),
            "votes": self.votes or arm.default_votes,
            "decoding": arm.decoding,
            "verdict": arm.verdict,
            "max_rubric_items": arm.max_rubric_items if constrained_rubrics else None,
            "aggregation": arm.aggregation,
        }

    def judge_pairs(
        self, pairs: Sequence[PreferencePair], *, order: str, seed: int, desc: str = "judge"
    ) -> list[JudgeRecord]:
        records = self.arm.judge(pairs, order=order, seed=seed, votes=self.votes, desc=desc)  # type: ignore[arg-type]
        for rec in records:
            rubric_seconds = rec.rubric.seconds if rec.rubric else 0.0
            rec.seconds = round(rec.judge_seconds + rubric_seconds, 4)
        return records


class ScalarJudge(Judge):
    """A sequence-classification reward model (Skywork-Reward style): higher score wins.

    Each (prompt, response) is rendered through the model's chat template and scored alone;
    equal scores give no winner (RewardBench counts a tie as wrong for classifiers).
    """

    per_response_scores = True

    def __init__(self, model: str, *, batch_size: int = 8, max_length: int = 4096) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from rubric_arm.models import model_fingerprint, resolve_model

        self.name = "scalar"
        path = resolve_model(model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=torch.float32, use_safetensors=True
        )
        self.model.eval()
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = (
                self.tokenizer.pad_token_id or self.tokenizer.eos_token_id
            )
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model_name = model
        self.fingerprint = model_fingerprint(path)
        self.batch_size = batch_size
        self.max_length = max_length

    def config(self) -> dict[str, Any]:
        return {
            "judge": "scalar",
            "model": self.model_name,
            "judge_model": self.fingerprint,
            "max_length": self.max_length,
        }

    def _text(self, prompt: Any, response: str) -> str:
        chat = (
            list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        ) + [{"role": "assistant", "content": response}]
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(chat, tokenize=False)
        return prompt_text(prompt) + "\n\n" + response

    def score(self, items: Sequence[tuple[Any, str]]) -> list[float]:
        """The reward of every (prompt, response), in batches."""
        import torch

        scores: list[float] = []
        for start in range(0, len(items), self.batch_size):
            part = [self._text(p, r) for p, r in items[start : start + self.batch_size]]
            enc = self.tokenizer(
                part,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
                add_special_tokens=False,
            )
            with torch.inference_mode():
                logits = self.model(**enc).logits
            scores += [float(x) for x in logits[:, 0]]
        return scores

    def judge_pairs(
        self, pairs: Sequence[PreferencePair], *, order: str, seed: int, desc: str = "judge"
    ) -> list[JudgeRecord]:
        flat = [(p.prompt, r) for p in pairs for r in (p.response_a, p.response_b)]
        scores = self.score(flat)
        out = []
        for k, pair in enumerate(pairs):
            a, b = scores[2 * k], scores[2 * k + 1]
            out.append(_scored(pair, seed, a, b, "A" if a > b else "B" if b > a else None))
        return out


class RandomJudge(Judge):
    """The sanity baseline: a seeded coin per pair (and a seeded uniform score per response)."""

    name = "random"
    per_response_scores = True

    def config(self) -> dict[str, Any]:
        return {"judge": "random"}

    def judge_pairs(
        self, pairs: Sequence[PreferencePair], *, order: str, seed: int, desc: str = "judge"
    ) -> list[JudgeRecord]:
        out = []
        for pair in pairs:
            a, b = (stable_hash(seed, "random-judge", pair.id, side) / 2**63 for side in ("A", "B"))
            out.append(_scored(pair, seed, a, b, "A" if a > b else "B"))
        return out


class LogprobJudge(Judge):
    """A direct judge read from next-token probabilities instead of generated text.

    The direct template is rendered, the assistant turn is started with "Winner: Response",
    and the judge picks whichever of " A" / " B" the model finds more likely. Every pair gets
    a verdict (no parsing), which makes even a small model's preference measurable; orders
    follow the pipeline's rules (seeded random, both, as given). Each judgment records p_a,
    p(" A") renormalised over the two labels, so `verdict="prob"` decides a both-order pair
    by the mean probability where `vote` leaves a split as no winner.
    """

    def __init__(
        self,
        model: str = "smollm2-135m-instruct",
        *,
        template: str = "direct",
        batch_size: int = 8,
        max_response_tokens: int = 1536,
        verdict: str = "vote",
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from rubric_arm.engines import load_engine
        from rubric_arm.templates import load_template

        self.name = "direct-logprob"
        self.verdict = check_switch("verdict", verdict)
        self.model_name = model
        self.engine_kwargs = dict(engine_kwargs or {})
        self.engine = load_engine(model, **self.engine_kwargs)
        self.template = load_template(template)
        if self.template.role != "direct":
            raise InputError(f"template {template!r} is not a direct (rubric-free) judge template")
        self.batch_size = batch_size
        self.max_response_tokens = max_response_tokens
        tok = self.engine.tokenizer
        self.choice_ids = {
            side: tok(f" {side}", add_special_tokens=False)["input_ids"][0] for side in ("A", "B")
        }

    def config(self) -> dict[str, Any]:
        return {
            "judge": self.name,
            "model": self.model_name,
            "judge_model": self.engine.fingerprint,
            "judge_template": self.template.version,
            "answer_prefix": _ANSWER_PREFIX,
            "max_response_tokens": self.max_response_tokens,
            "verdict": self.verdict,
            **{ENGINE_PREFIX + k: v for k, v in self.engine_kwargs.items()},
        }

    def _text(self, pair: PreferencePair, o: str) -> str:
        first, second = (
            (pair.response_a, pair.response_b) if o == "AB" else (pair.response_b, pair.response_a)
        )
        trunc = self.engine.truncate
        chat = self.template.render(
            prompt=prompt_text(pair.prompt),
            response_a=trunc(first, self.max_response_tokens),
            response_b=trunc(second, self.max_response_tokens),
        )
        return self.engine.render(chat) + _ANSWER_PREFIX

    def _margins(self, texts: list[str]) -> list[tuple[float, int]]:
        """log p(" A") - log p(" B") at the end of each text, and its token count."""
        ids = self.engine.tokenizer(texts, add_special_tokens=False)["input_ids"]
        choices = [self.choice_ids["A"], self.choice_ids["B"]]
        logits = self.engine.last_token_logits(ids, choices, batch_size=self.batch_size)
        return [(a - b, len(p)) for (a, b), p in zip(logits, ids, strict=True)]

    def judge_pairs(
        self, pairs: Sequence[PreferencePair], *, order: str, seed: int, desc: str = "judge"
    ) -> list[JudgeRecord]:
        jobs = [(k, o) for k, p in enumerate(pairs) for o in shown_orders(p.id, order, seed)]
        margins = self._margins([self._text(pairs[k], o) for k, o in jobs])
        out = [_base_record(p, order, seed, decoding=None) for p in pairs]
        for (k, o), (margin, n_tokens) in zip(jobs, margins, strict=True):
            shown = "A" if margin > 0 else "B" if margin < 0 else None
            winner = as_shown(shown, o)
            shown_p_a = _sigmoid(margin)
            out[k].judgments.append(
                Judgment(
                    order=o,  # type: ignore[arg-type]
                    vote=0,
                    winner=winner,
                    format_ok=winner is not None,
                    failure=None if winner else "equal probabilities",
                    format_problems=[],
                    text=f"log p(A) - log p(B) = {margin:.4f}",
                    prompt_tokens=n_tokens,
                    completion_tokens=0,
                    finish_reason="logprob",
                    p_a=round(shown_p_a if o == "AB" else 1.0 - shown_p_a, 6),
                )
            )
        for r in out:
            r.decide(self.verdict)
        return out


_ANSWER_PREFIX = "Winner: Response"


def _sigmoid(x: float) -> float:
    """1 / (1 + e^-x), which is p(" A") over the two labels for a margin x; no overflow."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class VotingJudge(Judge):
    """voting@k for any judge: k runs with seeds seed, seed+1, ..., majority of the winners.

    Under the inner judge's verdict rule "prob" the winner is instead the side of the mean p_a
    over every judgment of the k runs (samples and orders), as the pipeline decides in-call.
    LLM judges with a sampled decoder get their votes from one engine call instead (`votes`).
    """

    def __init__(self, inner: Judge, k: int) -> None:
        if k < 2:
            raise InputError(f"voting needs k >= 2, got {k}")
        self.inner, self.k = inner, k
        self.name = f"{inner.name}@voting{k}"

    @property  # type: ignore[override]
    def decoding(self) -> str | None:
        return self.inner.decoding

    @property  # type: ignore[override]
    def verdict(self) -> str | None:
        return self.inner.verdict

    def config(self) -> dict[str, Any]:
        return {
            "judge": "voting",
            "k": self.k,
            "decoding": self.decoding,
            "verdict": self.verdict,
            "inner": self.inner.config(),
        }

    def judge_pairs(
        self, pairs: Sequence[PreferencePair], *, order: str, seed: int, desc: str = "judge"
    ) -> list[JudgeRecord]:
        runs = [
            self.inner.judge_pairs(pairs, order=order, seed=seed + v, desc=f"{desc} vote {v + 1}")
            for v in range(self.k)
        ]
        out = []
        for k, pair in enumerate(pairs):
            votes = [run[k] for run in runs]
            rec = _base_record(
                pair,
                order,
                seed,
                votes=self.k,
                judgments=[j for v in votes for j in v.judgments],
                vote_winners=[v.winner for v in votes],
                decoding=self.decoding,
                verdict_rule=self.verdict or "vote",
            )
            rec.p_a = mean_p_a(rec.judgments)
            bad = [v for v in votes if v.status != "ok"]
            if bad:
                rec.status, rec.error = bad[0].status, bad[0].error
            elif rec.verdict_rule == "prob":
                rec.decide()
            else:
                rec.set_winner(majority_vote(rec.vote_winners or []))
            out.append(rec)
        return out


# ---- registry -----------------------------------------------------------------------------


def _sampling_overrides(args: dict[str, Any], preset: str) -> dict[str, Any]:
    """Pop judge_max_tokens / temperature / top_p from `args` into a judge SamplingParams."""
    keys = {"judge_max_tokens", "temperature", "top_p"}
    if not keys & set(args):
        return {}
    from rubric_arm.presets import get_preset

    base = get_preset(preset).judge_sampling
    return {
        "judge_sampling": SamplingParams(
            temperature=float(args.pop("temperature", base.temperature)),
            top_p=float(args.pop("top_p", base.top_p)),
            max_new_tokens=int(args.pop("judge_max_tokens", base.max_new_tokens)),
        )
    }


def _make_rubric_arm(args: dict[str, Any]) -> Judge:
    args = dict(args)
    preset = args.pop("preset", "mini")
    votes = args.pop("votes", None)
    passthrough = {k: args.pop(k) for k in ("cache", "max_context") if k in args}
    given = engine_kwargs(args)
    if given:
        passthrough["engine_kwargs"] = given
    if isinstance(passthrough.get("cache"), str):
        from rubric_arm.cache import RubricCache

        passthrough["cache"] = RubricCache(passthrough["cache"])
    sampling = _sampling_overrides(args, preset)
    arm = RubricARM.from_preset(preset, **args, **sampling, **passthrough)
    settings = {"preset": preset, **args, **{ENGINE_PREFIX + k: v for k, v in given.items()}}
    return RubricARMJudge("rubric-arm", arm, settings, None if votes is None else int(votes))


def _make_prompted(args: dict[str, Any]) -> Judge:
    args = dict(args)
    model = args.pop("model", "smollm2-135m-instruct")
    judge = _make_rubric_arm({**args, "generator": model, "judge": model})
    judge.name = "prompted-rubric"
    judge.settings = {"model": model, **judge.settings}
    return judge


def _make_direct(args: dict[str, Any]) -> Judge:
    args = dict(args)
    model = args.pop("model", "smollm2-135m-instruct")
    template = args.pop("template", "direct")
    judge = _make_rubric_arm(
        {**args, "generator": model, "judge": model, "judge_template": template}
    )
    judge.name = "direct"
    judge.settings = {"model": model, "template": template, "preset": judge.settings["preset"]}
    return judge


def _make_logprob(args: dict[str, Any]) -> Judge:
    args = dict(args)
    if "engine" in args:
        raise InputError(
            "direct-logprob reads next-token logits from the transformers engine; -J engine "
            "is not an option (-J engine.KEY=VALUE options, e.g. engine.dtype=bfloat16, are)"
        )
    return LogprobJudge(engine_kwargs=engine_kwargs(args), **args)


def _make_scalar(args: dict[str, Any]) -> Judge:
    args = dict(args)
    if "model" not in args:
        raise InputError("the scalar judge needs a model: -J model=<hub id or local folder>")
    return ScalarJudge(args.pop("model"), **{k: int(v) for k, v in args.items()})


JUDGES: dict[str, tuple[Callable[[dict[str, Any]], Judge], str]] = {
    "rubric-arm": (
        _make_rubric_arm,
        "rubric generator + judge from a preset (args: preset, generator, judge, decoding, "
        "verdict, ...)",
    ),
    "prompted-rubric": (
        _make_prompted,
        "one model prompted for both roles (args: model, preset, decoding, verdict)",
    ),
    "direct": (
        _make_direct,
        "pairwise LLM judge without a rubric (args: model, template, preset, decoding, verdict)",
    ),
    "direct-logprob": (
        _make_logprob,
        "direct judge read from p(' A') vs p(' B') after 'Winner: Response' (args: model, verdict, "
        "engine.dtype, ...)",
    ),
    "scalar": (_make_scalar, "AutoModelForSequenceClassification reward model (args: model)"),
    "random": (lambda args: RandomJudge(), "seeded coin flip (sanity baseline)"),
}


PER_RESPONSE_JUDGES = frozenset({"scalar", "random"})
"""Judges that score each response on its own (they can serve RewardBench 2 Ties)."""

WIN_PROBABILITY_JUDGES = frozenset({"rubric-arm", "prompted-rubric", "direct", "direct-logprob"})
"""Pairwise judges that record P(A) per pair: RewardBench 2 scores their responses by mean win
probability (Ties included)."""


def parse_judge_args(items: Sequence[str]) -> dict[str, Any]:
    """["key=value", ...] -> dict, with ints, floats and true/false converted."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"judge argument {item!r} is not key=value")
        out[key.strip().replace("-", "_")] = _coerce(value.strip())
    return out


def _coerce(value: str) -> Any:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


_ARM_OPTIONS = frozenset(
    {
        "preset", "votes", "cache", "max_context", "judge_max_tokens", "temperature", "top_p",
        "generator", "judge", "engine", "generator_template", "judge_template", "decoding",
        "verdict", "max_rubric_items", "aggregation",
    }
)  # fmt: skip
JUDGE_OPTIONS: dict[str, frozenset[str]] = {
    "rubric-arm": _ARM_OPTIONS,
    "prompted-rubric": (_ARM_OPTIONS - {"generator", "judge"}) | {"model"},
    "direct": (_ARM_OPTIONS - {"generator", "judge", "judge_template"}) | {"model", "template"},
    "direct-logprob": frozenset(
        {"model", "template", "batch_size", "max_response_tokens", "verdict", "engine"}
    ),
    "scalar": frozenset({"model", "batch_size", "max_length"}),
    "random": frozenset(),
}
"""The -J options each judge takes; any other key is refused, not ignored."""

_COUNTS = frozenset(
    {"votes", "max_context", "judge_max_tokens", "max_rubric_items", "batch_size", "max_length",
     "max_response_tokens"}
)  # fmt: skip
_FRACTIONS = frozenset({"temperature", "top_p"})


ENGINE_PREFIX = "engine."
"""-J engine.KEY=VALUE goes to the engine of a pipeline judge (vLLM's tensor_parallel_size,
the openai engine's base_url, ...)."""


def engine_kwargs(args: dict[str, Any]) -> dict[str, Any]:
    """Pop the -J engine.KEY options out of `args` as the engine's keyword arguments."""
    return {k[len(ENGINE_PREFIX) :]: args.pop(k) for k in list(args) if k.startswith(ENGINE_PREFIX)}


def check_judge_args(name: str, args: dict[str, Any]) -> None:
    """Unknown keys, and numbers out of range or of the wrong type, fail naming the key."""
    known = JUDGE_OPTIONS.get(name)
    if known is not None:
        takes_engine = "engine" in known
        unknown = sorted(
            k for k in set(args) - known if not (takes_engine and k.startswith(ENGINE_PREFIX))
        )
        if unknown:
            raise InputError(
                f"judge {name!r} takes no option {', '.join(unknown)}; it takes: "
                f"{', '.join(sorted(known)) or 'none'}"
            )
    for key, value in args.items():
        if key in _COUNTS and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"-J {key} must be an integer >= 1, got {value!r}")
        if key in _FRACTIONS and (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise InputError(f"-J {key} must be a finite number >= 0, got {value!r}")


def make_judge(name: str, args: dict[str, Any] | None = None, *, votes: int = 1) -> Judge:
    """Build a registered judge; votes > 1 wraps it in voting@k (sampled LLM judges vote in-call)."""
    if name not in JUDGES:
        raise InputError(f"unknown judge {name!r}; known: {', '.join(JUDGES)}")
    if isinstance(votes, bool) or not isinstance(votes, int) or votes < 1:
        raise InputError(f"votes must be an integer >= 1, got {votes!r}")
    args = dict(args or {})
    check_judge_args(name, args)
    judge_switches(name, args)
    if votes > 1 and name in ("rubric-arm", "prompted-rubric", "direct"):
        judge = JUDGES[name][0](args)
        assert isinstance(judge, RubricARMJudge)
        if not judge.arm.judge_sampling.greedy:
            judge.votes = votes
            return judge
        return VotingJudge(judge, votes)
    judge = JUDGES[name][0](args)
    return VotingJudge(judge, votes) if votes > 1 else judge


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on."""
    out = {}
    for dist in ("rubric-arm", "torch", "transformers", "numpy", "if-verifiable"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out
