"""The rule probe's measurements: pairwise discrimination, AUC, the frozen-feature probe."""

from __future__ import annotations

import random

import pytest

from rubric_arm.reproduce.rule_probe import auc, linear_probe, render_linear, summarise
from rubric_arm.trainer.rule_rows import RuleRow


def rows(n_pairs: int, seed: int) -> list[RuleRow]:
    rng = random.Random(seed)
    out = []
    for k in range(n_pairs):
        a_meets = rng.random() < 0.5
        for side, meets in (("A", a_meets), ("B", not a_meets)):
            out.append(RuleRow(f"p{k}", 0, "fam", "req", f"text {k}{side}", side, meets))
    return out


def test_pairwise_counts_only_comparisons_that_differ_and_scores_ties_half() -> None:
    rs = rows(4, 0) + [
        RuleRow("same", 0, "fam", "req", "x", "A", True),
        RuleRow("same", 0, "fam", "req", "y", "B", True),
    ]
    perfect = [1.0 if r.meets else 0.0 for r in rs]
    s = summarise(rs, perfect)
    assert s["pairwise"] == 1.0 and s["pairwise_n"] == 4
    flat = summarise(rs, [0.5] * len(rs))
    assert flat["pairwise"] == 0.5 and flat["auc"] == 0.5
    assert auc([0.9, 0.1], [True, False]) == 1.0


def test_linear_probe_finds_a_feature_that_carries_the_answer_and_not_noise() -> None:
    train, held = rows(60, 1), rows(40, 2)
    rng = random.Random(3)

    def feats(rs: list[RuleRow], signal: bool) -> list[list[float]]:
        return [
            [(1.0 if r.meets else -1.0) * signal + rng.gauss(0, 0.3), rng.gauss(0, 1)] for r in rs
        ]

    layers = linear_probe(
        train,
        [feats(train, False), feats(train, True)],
        held,
        [feats(held, False), feats(held, True)],
    )
    assert [r["layer"] for r in layers] == [0, 1]
    assert layers[1]["pairwise"] == 1.0
    assert layers[0]["pairwise"] < 0.75
    text = render_linear({"train_rows": len(train), "layers": layers})
    assert "| 1 | 100.0" in text and "Best layer: 1" in text


def test_layer_features_give_one_vector_per_row_and_layer(tiny_model_path) -> None:
    from transformers import AutoModelForCausalLM

    from rubric_arm.models import load_tokenizer
    from rubric_arm.reproduce.rule_probe import layer_features

    tok = load_tokenizer(tiny_model_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    rs = rows(3, 4)
    feats = layer_features(model, tok, rs, batch=4)
    assert len(feats) == model.config.num_hidden_layers + 1
    assert all(len(layer) == len(rs) for layer in feats)
    assert len(feats[-1][0]) == model.config.hidden_size
    # a row's features do not depend on the rows batched with it
    alone = layer_features(model, tok, rs[:1], batch=1)
    assert alone[-1][0] == pytest.approx(feats[-1][0], abs=1e-4)
