"""Prompts a policy trains on, and held-out prompts whose instructions a verifier can check."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from rubric_arm.data.verifiers import VerifiableItem
from rubric_arm.errors import InputError
from rubric_arm.pipeline import prompt_key
from rubric_arm.trainer.policy.config import PolicyConfig
from rubric_arm.types import PreferencePair, Prompt, validate_prompt


@dataclass
class PolicyData:
    train: list[Prompt]
    heldout: list[VerifiableItem]
    overlap_removed: int = 0  # evaluation prompts dropped because the policy trains on them


def _distinct(prompts: list[Prompt]) -> list[Prompt]:
    seen: dict[str, Prompt] = {}
    for p in prompts:
        seen.setdefault(prompt_key(p), p)
    return list(seen.values())


def _cap(items: list, n: int | None, seed: int, tag: str) -> list:
    if n is None or n >= len(items):
        return list(items)
    keep = sorted(random.Random(f"{tag}-{seed}").sample(range(len(items)), n))
    return [items[k] for k in keep]


def verifiable_items(pairs: list[PreferencePair]) -> list[VerifiableItem]:
    """One item per distinct prompt of the pairs that carry verifier instructions."""
    items: dict[str, VerifiableItem] = {}
    for p in pairs:
        ids = p.metadata.get("instruction_id_list")
        if not ids or not isinstance(p.prompt, str):
            continue
        items.setdefault(
            p.prompt,
            VerifiableItem(
                key=str(p.metadata.get("key", p.id)),
                prompt=p.prompt,
                instruction_id_list=tuple(ids),
                kwargs=tuple(dict(k or {}) for k in p.metadata.get("kwargs", [{}] * len(ids))),
                registry=p.metadata.get("registry", "ifbench"),
                metadata={"subset": p.subset, "pair_id": p.id},
            ),
        )
    return list(items.values())


def synthetic_items(pairs: list[PreferencePair]) -> list[VerifiableItem]:
    """The synthetic keyword task as IFEval `keywords:existence` checks."""
    items: dict[str, VerifiableItem] = {}
    for p in pairs:
        items.setdefault(
            str(p.prompt),
            VerifiableItem(
                key=p.id,
                prompt=str(p.prompt),
                instruction_id_list=("keywords:existence",),
                kwargs=({"keywords": [p.metadata["keyword"]]},),
                registry="ifeval",
                metadata={"subset": "synthetic"},
            ),
        )
    return list(items.values())


def _file_prompts(path: str) -> list[Prompt]:
    from rubric_arm.data.jsonl import read_jsonl

    file = Path(path)
    if not file.is_file():
        raise InputError(f"data.path {file} not found")
    prompts = []
    for i, row in read_jsonl(file):
        if isinstance(row, InputError):
            raise row
        if "prompt" not in row:
            raise InputError(f"{file}, line {i}: no `prompt` field")
        prompts.append(validate_prompt(row["prompt"], f"{file}, line {i}: prompt"))
    return prompts


def load_policy_data(cfg: PolicyConfig) -> PolicyData:
    """Training prompts and held-out verifiable items of `cfg.data`."""
    d, seed = cfg.data, cfg.seed
    if d.source == "synthetic":
        from rubric_arm.trainer import synthetic

        # one prompt per riddle at most: draw plenty of pairs, keep the distinct prompts
        train = _distinct([p.prompt for p in synthetic.make_pairs(64, seed)])
        held = synthetic_items(synthetic.make_pairs(64, seed, split="heldout"))
        return PolicyData(
            _cap(train, d.train_size, seed, "train"), _cap(held, d.eval_size, seed, "eval")
        )
    from rubric_arm.data.mini import load_mini

    if d.source == "file":
        train = _distinct(_file_prompts(d.path or ""))
    else:
        train = _distinct([p.prompt for p in load_mini("train")])
    train = _cap(train, d.train_size, seed, "train")
    if d.eval_source == "mini":
        heldout = verifiable_items(load_mini("heldout"))
    else:
        from rubric_arm.data.if_sources import load_ifbench_prompts, load_ifeval_prompts

        load = load_ifbench_prompts if d.eval_source == "ifbench" else load_ifeval_prompts
        heldout = load(d.eval_path)
    train_keys = {prompt_key(p) for p in train}
    kept = [i for i in heldout if prompt_key(i.prompt) not in train_keys]
    return PolicyData(train, _cap(kept, d.eval_size, seed, "eval"), len(heldout) - len(kept))
