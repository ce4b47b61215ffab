"""Rule verifiers (if-verifiable, offline), the LLM question verifier and the pair builder."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from rubric_arm.data.pair_builder import (
    Candidate,
    balance_labels,
    build_verified_pairs,
    choose_pair,
    sample_candidates,
)
from rubric_arm.data.verifiers import (
    QuestionVerifier,
    RuleVerifier,
    VerifiableItem,
    Verification,
)
from rubric_arm.errors import InputError
from rubric_arm.types import Chat, Completion, PreferencePair, SamplingParams

NO_COMMA = VerifiableItem(
    "k1", "Describe tea. Do not use commas.", ("punctuation:no_comma",), ({},), "ifeval"
)


def test_rule_verifier_strict_and_loose() -> None:
    two = VerifiableItem(
        "k2",
        "Describe tea.",
        ("punctuation:no_comma", "change_case:english_lowercase"),
        ({}, {}),
        "ifeval",
    )
    ok, bad, half = RuleVerifier().verify(two, ["tea is nice", "Tea, hot", "Tea is nice"])
    assert ok.strict == [True, True] and ok.all_strict
    assert bad.strict == [False, False] and bad.partial_strict == 0.0
    assert half.strict == [True, False] and half.partial_strict == 0.5
    # Loose: dropping the first line lets the second instruction pass.
    (first_line,) = RuleVerifier().verify(two, ["Sure, here:\ntea is nice"])
    assert first_line.strict == [False, False] and first_line.loose == [True, True]
    (empty,) = RuleVerifier().verify(NO_COMMA, [""])
    assert empty.status == "ok" and empty.strict == [False]


def test_rule_verifier_bad_items() -> None:
    with pytest.raises(InputError, match="k3: unknown ifeval instruction id"):
        RuleVerifier().verify(VerifiableItem("k3", "p", ("nope:x",), ({},), "ifeval"), ["x"])
    with pytest.raises(InputError, match="1 instruction ids but 0 kwargs"):
        RuleVerifier().verify(
            VerifiableItem("k4", "p", ("punctuation:no_comma",), (), "ifeval"), ["x"]
        )


def test_checker_needing_missing_nltk_data_is_unavailable() -> None:
    import nltk

    try:
        nltk.data.find("tokenizers/punkt")
        pytest.skip("NLTK punkt is installed here")
    except LookupError:
        pass
    item = VerifiableItem(
        "k5",
        "Write.",
        ("length_constraints:number_sentences",),
        ({"relation": "less than", "num_sentences": 3},),
        "ifeval",
    )
    (v,) = RuleVerifier().verify(item, ["One. Two."])
    assert v.status == "unavailable" and "NLTK" in v.error


class YesNoEngine:
    """Answers YES when the response text contains the question's last word."""

    fingerprint = "yes-no"

    def generate(
        self, chats: Sequence[Chat], params: SamplingParams, *, desc: str | None = None, **kwargs
    ):
        out = []
        for chat in chats:
            text = chat[0]["content"]
            response = text.split("Response:\n", 1)[1].split("\n\nQuestion:", 1)[0]
            word = text.split("Question: ", 1)[1].split("?", 1)[0].split()[-1]
            reply = "maybe" if word == "unsure" else ("YES." if word in response else "No")
            out.append([Completion(reply, 1, 1)])
        return out


def test_question_verifier() -> None:
    item = VerifiableItem(
        "q", "Write.", questions=("Mentions cats?", "Mentions dogs?", "Is it unsure?")
    )
    a, b = QuestionVerifier(YesNoEngine()).verify(item, ["cats and dogs", "only cats"])
    assert a.strict == [True, True, False] and b.strict == [True, False, False]
    assert a.error == "1 answer(s) had neither YES nor NO"
    with pytest.raises(InputError, match="no decomposed questions"):
        QuestionVerifier(YesNoEngine()).verify(NO_COMMA, ["x"])


def v(strict: list[bool], loose: list[bool] | None = None, status: str = "ok") -> Verification:
    return Verification(status, strict, loose if loose is not None else strict)  # type: ignore[arg-type]


def test_choose_pair_largest_gap_then_loose() -> None:
    assert choose_pair([v([False, False]), v([True, False]), v([True, True])]) == (2, 0)
    assert choose_pair([v([True]), v([True])]) is None
    # Equal strict: the loose score decides.
    assert choose_pair([v([False], [False]), v([False], [True])]) == (1, 0)
    # Unavailable verifications take no part.
    assert choose_pair([v([], status="unavailable"), v([True]), v([False])]) == (1, 2)


def test_build_verified_pairs_counts_outcomes() -> None:
    items = [
        NO_COMMA,
        VerifiableItem(
            "k9", "Say hi. Do not use commas.", ("punctuation:no_comma",), ({},), "ifeval"
        ),
        VerifiableItem("k10", "x", ("punctuation:no_comma",), ({},), "ifeval"),
    ]
    cands = {
        "k1": [Candidate("m#0", "tea, tea"), Candidate("m#1", "tea tea")],
        "k9": [Candidate("m#0", "hi"), Candidate("m#1", "hello")],
        "k10": [Candidate("m#0", "only one")],
    }
    built = build_verified_pairs(items, cands, RuleVerifier(), subset="vif")
    assert dict(built.outcomes) == {"paired": 1, "all_tied": 1, "too_few_responses": 1}
    (pair,) = built.pairs
    assert pair.id == "vif/k1" and pair.response_a == "tea tea" and pair.label == "A"
    assert pair.metadata["chosen_source"] == "m#1"
    assert pair.metadata["rejected_verification"]["strict"] == [False]


def test_build_verified_pairs_several_disjoint_pairs_per_prompt() -> None:
    texts = ["a, b", "a b", "c, d", "c d", "e, f"]
    cands = {"k1": [Candidate(f"m#{i}", t) for i, t in enumerate(texts)]}
    built = build_verified_pairs([NO_COMMA], cands, RuleVerifier(), subset="vif", max_pairs=3)
    # Two comma-free answers and three with commas: two pairs, no answer used twice.
    assert [p.id for p in built.pairs] == ["vif/k1", "vif/k1#2"]
    used = [p.metadata[k] for p in built.pairs for k in ("chosen_source", "rejected_source")]
    assert len(set(used)) == 4
    assert all(p.response_a in ("a b", "c d") for p in built.pairs)
    assert dict(built.outcomes) == {"paired": 1, "extra_pairs": 1}
    with pytest.raises(ValueError, match="max_pairs"):
        build_verified_pairs([NO_COMMA], cands, RuleVerifier(), subset="vif", max_pairs=0)


def test_balance_labels_is_exact_and_order_free() -> None:
    pairs = [PreferencePair(f"p{i}", "q", "good", "bad", "A") for i in range(9)]
    out = balance_labels(pairs, seed=1)
    assert sorted(p.label for p in out).count("A") in (4, 5)
    for p in out:
        assert (p.response_a == "good") == (p.label == "A")
    again = {p.id: p.label for p in balance_labels(list(reversed(pairs)), seed=1)}
    assert again == {p.id: p.label for p in out}


class CountingEngine:
    fingerprint = "count"

    def generate(self, chats, params, *, desc=None, **kwargs):
        return [[Completion(f"answer {k}", 1, 1) for k in range(params.n)] for _ in chats]


def test_sample_candidates() -> None:
    cands = sample_candidates(
        CountingEngine(), [NO_COMMA], n=2, sampling=SamplingParams(), source="pol"
    )
    assert cands == {"k1": [Candidate("pol#0", "answer 0"), Candidate("pol#1", "answer 1")]}


def test_language_checks_are_deterministic() -> None:
    item = VerifiableItem("k6", "Reply.", ("change_case:english_lowercase",), ({},), "ifeval")
    texts = ["good morning amigo", "hola ok yes"]  # unseeded langdetect flips on the first
    first = [v.strict for v in RuleVerifier().verify(item, texts)]
    for _ in range(10):
        assert [v.strict for v in RuleVerifier().verify(item, texts)] == first
