"""Short compliance-check rows: one verifiable instruction of the mini suite, one response, and
whether the official verifier says the response meets it ("Meets" / "Fails").

The mini judge audit found that a warmed-up judge's verdicts follow its own per-rule claims, and
that the claims barely track the verifiers; in a full warm-up trajectory the claim tokens carry a
tiny share of the loss. These rows teach that one step on its own: `reproduce/rule_probe.py`
measures how well the model learns it, and `data.sft_rule_rows` adds them to the judge's
warm-up (from the train pairs, or from every cached candidate of the train-split prompts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rubric_arm.checklist import CHECK_ANSWERS, CHECK_QUESTION, check_chat
from rubric_arm.trainer.warmup_mini import rule_outcomes
from rubric_arm.types import Chat, PreferencePair

QUESTION = CHECK_QUESTION
ANSWERS = CHECK_ANSWERS


@dataclass(frozen=True)
class RuleRow:
    """One compliance question: a response of pair `pair_id` against its instruction `rule`."""

    pair_id: str
    rule: int
    family: str
    requirement: str
    response: str
    side: str
    meets: bool


def rule_rows(pairs: Sequence[PreferencePair]) -> list[RuleRow]:
    """Both responses of every verifier-labelled pair against each instruction with a recorded
    outcome (the warm-up trajectories' own reading of the verifier: loose, else strict)."""
    rows = []
    for p in pairs:
        ids = [str(i) for i in p.metadata.get("instruction_id_list") or []]
        for k, (requirement, a, b) in enumerate(rule_outcomes(p)):
            for side, text, outcome in (("A", p.response_a, a), ("B", p.response_b, b)):
                if outcome is not None:
                    family = ids[k].split(":")[0]
                    rows.append(RuleRow(p.id, k, family, requirement, text, side, outcome))
    return rows


def candidate_rule_rows(
    cache_dir: Path | None = None, mini_dir: Path | None = None
) -> list[RuleRow]:
    """Rule rows from every cached candidate of the mini build's train-split prompts.

    The mini build samples several responses per prompt and keeps at most a few verifier-split
    pairs; the rest (and prompts whose candidates all agree) never reach train.jsonl. Each
    distinct candidate, verified here by the official checker, gives one row per instruction,
    several times the rows of the pairs alone. Only prompts of train-split source questions
    are read and any response that is also in a held-out pair is left out, so nothing held out
    leaks; a prompt missing from the cache is an error.
    """
    from rubric_arm.data.if_sources import load_ifbench_sample_outputs, load_mtbench_questions
    from rubric_arm.data.mini import (
        MINI_DIR,
        MiniConfig,
        ifbench_items,
        ifbench_sampling,
        is_heldout,
        load_mini,
        verifiable_if_items,
        vif_sampling,
    )
    from rubric_arm.data.pair_builder import ResponseCache
    from rubric_arm.data.verifiers import RuleVerifier
    from rubric_arm.models import home
    from rubric_arm.trainer.warmup_mini import instruction_requirement

    suite = Path(mini_dir or MINI_DIR)
    manifest = json.loads((suite / "manifest.json").read_text(encoding="utf-8"))
    config = MiniConfig(**manifest["config"])
    fingerprint = manifest["model_fingerprint"]
    cache_file = Path(cache_dir or home() / "mini-build") / f"responses-{config.seed}.jsonl"
    if not cache_file.is_file():
        raise FileNotFoundError(
            f"{cache_file}: no mini build cache (run rubric-arm data build-mini)"
        )
    cache = ResponseCache(cache_file)
    held_out = {t for p in load_mini("heldout", path=suite) for t in (p.response_a, p.response_b)}
    samples = load_ifbench_sample_outputs()
    sources = [
        (ifbench_items(config), ifbench_sampling(config)),
        (verifiable_if_items(config, load_mtbench_questions()), vif_sampling(config)),
    ]
    verifier = RuleVerifier()
    rows: list[RuleRow] = []
    for items, sampling in sources:
        for item in items:
            if is_heldout(str(item.metadata["group"]), config):
                continue
            chat = [{"role": "user", "content": item.prompt}]
            key = ResponseCache.key(fingerprint, chat, sampling)
            if key not in cache.entries:
                raise KeyError(f"{cache_file}: no cached candidates for prompt {item.key}")
            texts = list(dict.fromkeys([samples.get(item.prompt, ""), *cache.entries[key]]))
            texts = [t for t in texts if t.strip() and t not in held_out]
            checks = verifier.verify(item, texts)
            for c, (text, check) in enumerate(zip(texts, checks, strict=True)):
                if check.status != "ok":
                    continue
                outcomes = check.loose or check.strict
                for k, iid in enumerate(item.instruction_id_list):
                    requirement = instruction_requirement(iid, item.kwargs[k], item.registry)
                    family = iid.split(":")[0]
                    row = RuleRow(f"{item.key}#{c}", k, family, requirement, text, "A", outcomes[k])
                    rows.append(row)
    return rows


def rule_chat(row: RuleRow) -> Chat:
    """The one-turn question a rule row asks; its answer is ANSWERS[0] or ANSWERS[1]."""
    return check_chat(row.requirement, row.response)


def rule_answer(row: RuleRow) -> str:
    return ANSWERS[0] if row.meets else ANSWERS[1]
