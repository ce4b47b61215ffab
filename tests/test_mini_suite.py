"""The mini-suite builder on the shipped data with a scripted policy engine (no model needed)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from rubric_arm.data.mini import (
    SUBSETS,
    MiniConfig,
    build_mini_suite,
    is_heldout,
    load_mini,
    verifiable_if_items,
)
from rubric_arm.data.verifiers import RuleVerifier
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.types import Chat, Completion, SamplingParams

TEXTS = [
    "hello world this is my answer",
    "Hello, World! This is my ANSWER.\n\nP.P.S. Thanks",
    '"<<Title>> a quoted answer with *one* highlight"',
    "SECTION 1\n* point one\n* point two\nIs there anything else I can help with?",
]


class PolicyEngine:
    """Cycles through fixed answers, so verifiers see passes and fails."""

    fingerprint = "policy-1"

    def __init__(self) -> None:
        self.calls = 0

    def generate(
        self, chats: Sequence[Chat], params: SamplingParams, *, desc: str | None = None, **kwargs
    ):
        self.calls += 1
        return [
            [
                Completion(TEXTS[(len(chat) + k + len(chat[-1]["content"])) % 4], 5, 5)
                for k in range(params.n)
            ]
            for chat in chats
        ]


def test_verifiable_if_items_are_seeded_and_verifiable() -> None:
    questions = [
        {"question_id": 81, "category": "writing", "turns": ["Write a blog post.", "Again."]}
    ]
    a = verifiable_if_items(MiniConfig(seed=0), questions)
    b = verifiable_if_items(MiniConfig(seed=0), questions)
    assert a == b and len(a) == MiniConfig().vif_constraints
    assert len({it.instruction_id_list for it in a}) == len(a)
    assert a[0].prompt.startswith("Write a blog post. ")
    checks = RuleVerifier().verify(a[0], ["some answer"])
    assert checks[0].status == "ok"


def test_split_is_by_source_question() -> None:
    config = MiniConfig(seed=0)
    share = sum(is_heldout(f"mtbench:{q}", config) for q in range(1000)) / 1000
    assert abs(share - config.heldout_fraction) < 0.05


def test_build_is_reproducible_balanced_and_leak_free(tmp_path: Path) -> None:
    config = MiniConfig(limit=12)
    logs: list[str] = []
    m1 = build_mini_suite(
        config,
        out_dir=tmp_path / "a",
        cache_dir=tmp_path / "cache",
        engine=PolicyEngine(),
        log=logs.append,
    )
    engine = PolicyEngine()
    m2 = build_mini_suite(
        config,
        out_dir=tmp_path / "b",
        cache_dir=tmp_path / "cache2",
        engine=engine,
        log=logs.append,
    )
    for name in ("train.jsonl", "heldout.jsonl", "manifest.json", "CARD.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert m1["files"] == m2["files"]
    # A second build with the same config reuses the files; the cache spares the engine.
    calls = engine.calls
    build_mini_suite(
        config,
        out_dir=tmp_path / "b",
        cache_dir=tmp_path / "cache2",
        engine=engine,
        log=logs.append,
    )
    assert engine.calls == calls and "already built" in logs[-1]
    build_mini_suite(
        config,
        out_dir=tmp_path / "b",
        cache_dir=tmp_path / "cache2",
        engine=engine,
        force=True,
        log=logs.append,
    )
    assert engine.calls == calls

    train = load_mini("train", path=tmp_path / "a")
    heldout = load_mini("heldout", path=tmp_path / "a")
    assert train and heldout
    assert {p.metadata["group"] for p in train}.isdisjoint({p.metadata["group"] for p in heldout})
    for split in ("train", "heldout"):
        sizes = m1["sizes"].get(split, {})
        for subset, e in sizes.items():
            if subset == "all":
                assert e["n"] == sum(sizes[s]["n"] for s in SUBSETS if s in sizes)
                continue
            assert subset in SUBSETS and abs(e["A"] - e["B"]) <= 1
            assert e["clusters"] <= e["prompts"] <= e["n"]
    # Pairs of one prompt never share a response.
    by_prompt: dict[str, list[str]] = {}
    for p in train + heldout:
        by_prompt[json.dumps(p.prompt)] = by_prompt.get(json.dumps(p.prompt), []) + [
            p.response_a,
            p.response_b,
        ]
    assert all(len(set(texts)) == len(texts) for texts in by_prompt.values() if len(texts) > 2)
    for p in train + heldout:
        chosen = p.response_a if p.label == "A" else p.response_b
        if p.subset == "easy-chat":
            assert p.metadata["chosen_source"].startswith("mt-bench reference")
        else:
            assert (
                p.metadata["chosen_verification"]["partial_strict"]
                >= p.metadata["rejected_verification"]["partial_strict"]
            )
            assert chosen != (p.response_b if p.label == "A" else p.response_a)
    card = (tmp_path / "a" / "CARD.md").read_text()
    assert "| heldout | easy-chat |" in card and "How labels were made" in card
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["config"]["limit"] == 12
    assert load_mini("heldout", ["easy-chat"], path=tmp_path / "a") == [
        p for p in heldout if p.subset == "easy-chat"
    ]


def test_load_mini_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="split"):
        load_mini("test")
    with pytest.raises(InputError, match="unknown mini subset"):
        load_mini("train", ["chat"])
    with pytest.raises(RubricArmError, match="build-mini"):
        load_mini("train", path=tmp_path)
