"""Minimal-edit rule rows: labels from the official checker, balanced, nothing held out read."""

from __future__ import annotations

from collections import Counter

import pytest

from rubric_arm.data.mini import VERIFIABLE_IF_POOL, draw_ifeval_constraint, load_mini
from rubric_arm.data.verifiers import RuleVerifier, VerifiableItem
from rubric_arm.trainer.rule_edits import EDITS, edit_rule_rows
from rubric_arm.trainer.warmup_mini import instruction_requirement

TEXT = (
    "Paris is the capital of France, and it is known for art. The Louvre holds the Mona Lisa. "
    "Many visitors come in spring. The food is good, and the wine is better."
)


@pytest.fixture(scope="module")
def train():
    return load_mini("train")


def test_every_pool_instruction_has_edits_on_both_sides_of_the_checker() -> None:
    # some parameter draws cannot fail loosely (one *** paragraph: the loose reading drops "*"),
    # so each instruction must flip under at least one of a few draws
    verifier = RuleVerifier()
    for iid in VERIFIABLE_IF_POOL:
        flipped = False
        for seed in range(4):
            _, kwargs = draw_ifeval_constraint(iid, seed, "test", iid)
            variants = [TEXT, *EDITS[iid](TEXT, kwargs)]
            item = VerifiableItem("t", "", (iid,), (kwargs,), "ifeval")
            flipped |= {v.loose[0] for v in verifier.verify(item, variants)} == {True, False}
        assert flipped, iid


def test_rows_are_balanced_per_instruction_and_labelled_by_the_checker(train) -> None:
    rows = edit_rule_rows(train[:40], per_instruction=10, seed=3)
    counts = Counter((r.pair_id.split(":", 2)[2], r.meets) for r in rows)
    ids = {iid for iid, _ in counts}
    assert len(ids) >= 10
    for iid in ids:
        assert counts[(iid, True)] == counts[(iid, False)] <= 5
    verifier = RuleVerifier()
    for r in rows[:25]:
        iid = r.pair_id.split(":", 2)[2]
        j = int(r.pair_id.split(":")[1])
        _, kwargs = draw_ifeval_constraint(iid, 3, "edit-args", j, iid)
        assert r.requirement == instruction_requirement(iid, kwargs, "ifeval")
        (check,) = verifier.verify(
            VerifiableItem("t", "", (iid,), (kwargs,), "ifeval"), [r.response]
        )
        assert check.loose[0] == r.meets


def test_rows_are_deterministic_and_come_from_the_given_pairs_only(train) -> None:
    a = edit_rule_rows(train[:20], per_instruction=6, seed=1)
    assert a == edit_rule_rows(train[:20], per_instruction=6, seed=1)
    held_out = {t for p in load_mini("heldout") for t in (p.response_a, p.response_b)}
    assert not any(r.response in held_out for r in a)
    # the unedited rows (side v0) are the given responses themselves
    sources = {t for p in train[:20] for t in (p.response_a, p.response_b)}
    unedited = [r for r in a if r.side == "v0"]
    assert unedited and all(r.response in sources for r in unedited)
    assert len(unedited) < len(a)


def test_edit_rows_join_the_judge_warm_up_after_the_pairs_rule_rows() -> None:
    from pathlib import Path

    from rubric_arm.errors import InputError
    from rubric_arm.trainer.config import load_config, parse_overrides
    from rubric_arm.trainer.data import load_train_data

    mini = Path(__file__).resolve().parent.parent / "configs" / "mini.yaml"
    base = ["--data.sft_size", "12"]
    pairs_only = load_train_data(
        load_config(mini, parse_overrides([*base, "--data.sft_rule_rows", "pairs"]))
    )
    edits = load_train_data(
        load_config(
            mini,
            parse_overrides([*base, "--data.sft_rule_rows", "edits", "--data.sft_edit_rows", "4"]),
        )
    )
    plain = {r["id"] for r in pairs_only.sft_judgments}
    added = [r for r in edits.sft_judgments if r["id"] not in plain]
    assert added and all(r["id"].startswith("rule/edit:") for r in added)
    assert {r["judgment"] for r in added} == {"Meets", "Fails"}
    assert sum(r["judgment"] == "Meets" for r in added) * 2 == len(added)
    with pytest.raises(InputError, match="sft_edit_rows"):
        load_config(mini, parse_overrides(["--data.sft_edit_rows", "1"]))


def test_ifbench_transfer_rows_are_balanced_checker_labelled_and_train_only(train) -> None:
    from rubric_arm.trainer.rule_edits import transfer_rule_rows

    pairs = train[:60]
    rows = transfer_rule_rows(pairs, per_instruction=6, draws=2, seed=5)
    assert rows == transfer_rule_rows(pairs, per_instruction=6, draws=2, seed=5)
    asked = {
        str(i)
        for p in pairs
        if p.metadata.get("registry") == "ifbench"
        for i in p.metadata.get("instruction_id_list") or []
    }
    counts = Counter((r.pair_id.split(":", 2)[2], r.meets) for r in rows)
    ids = {iid for iid, _ in counts}
    assert len(ids) >= 3 and ids <= asked
    for iid in ids:
        assert counts[(iid, True)] == counts[(iid, False)] <= 3
    sources = {t for p in pairs for t in (p.response_a, p.response_b)}
    assert all(r.response in sources for r in rows)
    verifier = RuleVerifier()
    for r in rows[:20]:
        _, d, iid = r.pair_id.split(":", 2)
        _, kwargs = draw_ifeval_constraint(iid, 5, "transfer", int(d), registry="ifbench")
        assert r.requirement == instruction_requirement(iid, kwargs, "ifbench")
        item = VerifiableItem("t", "", (iid,), (kwargs,), "ifbench")
        (check,) = verifier.verify(item, [r.response])
        assert check.loose[0] == r.meets


def test_ifbench_rows_need_check_rows_and_join_the_judge_warm_up() -> None:
    from pathlib import Path

    from rubric_arm.errors import InputError
    from rubric_arm.trainer.config import load_config, parse_overrides
    from rubric_arm.trainer.data import load_train_data

    mini = Path(__file__).resolve().parent.parent / "configs" / "mini.yaml"
    base = ["--data.sft_size", "24", "--data.sft_rule_rows", "pairs"]
    plain = load_train_data(load_config(mini, parse_overrides(base)))
    more = load_train_data(
        load_config(mini, parse_overrides([*base, "--data.sft_ifbench_rows", "4"]))
    )
    ids = {r["id"] for r in plain.sft_judgments}
    added = [r for r in more.sft_judgments if r["id"] not in ids]
    assert added and all(r["id"].startswith("rule/transfer:") for r in added)
    assert sum(r["judgment"] == "Meets" for r in added) * 2 == len(added)
    with pytest.raises(InputError, match="sft_ifbench_rows"):
        load_config(
            mini, parse_overrides(["--data.sft_rule_rows", "none", "--data.sft_ifbench_rows", "4"])
        )
    with pytest.raises(InputError, match="sft_ifbench_rows"):
        load_config(mini, parse_overrides(["--data.sft_ifbench_rows", "-1"]))
