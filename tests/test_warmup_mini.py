"""Mini-profile SFT warm-up rows: built from the committed train split, checked by the parsers."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from rubric_arm.data.mini import load_mini
from rubric_arm.rubric import parse_rubric
from rubric_arm.trainer import warmup_mini
from rubric_arm.trainer.warmup_mini import (
    CHAT_PRINCIPLES,
    IF_PRINCIPLES,
    KNOWN_INSTRUCTIONS,
    instruction_requirement,
    mini_warmup_rows,
)
from rubric_arm.types import PreferencePair, prompt_text
from rubric_arm.verdict import parse_verdict


@pytest.fixture(scope="module")
def train() -> list[PreferencePair]:
    return load_mini("train")


@pytest.fixture(scope="module")
def rows(train: list[PreferencePair]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    return mini_warmup_rows(train)


def expected_kinds(pair: PreferencePair) -> list[str]:
    if pair.subset == "easy-chat":
        return ["principle"] * len(CHAT_PRINCIPLES)
    n = len(pair.metadata["instruction_id_list"])
    return ["hard_rule"] * n + ["principle"] * len(IF_PRINCIPLES)


def if_pair(
    ids: list[str],
    kwargs: list[dict[str, Any]],
    chosen: dict[str, list[bool]],
    rejected: dict[str, list[bool]],
    label: str = "A",
    registry: str = "ifbench",
    pid: str = "hand/1",
) -> PreferencePair:
    return PreferencePair(
        id=pid,
        prompt="Write about rivers.",
        response_a="first answer",
        response_b="second answer",
        label=label,  # type: ignore[arg-type]
        subset="ifbench",
        metadata={
            "instruction_id_list": ids,
            "kwargs": kwargs,
            "registry": registry,
            "chosen_verification": {"status": "ok", **chosen},
            "rejected_verification": {"status": "ok", **rejected},
        },
    )


def analysis(judgment: str, response: str) -> dict[int, str]:
    verdict = parse_verdict(judgment, 0)
    return {
        j.index: j.justification for j in verdict.criterion_justifications if j.response == response
    }


def test_every_judge_row_parses_with_the_labelled_winner(train, rows) -> None:
    _, judge_rows = rows
    by_id = {p.id: p for p in train}
    for row in judge_rows:
        pair = by_id[row["id"]]
        kinds = expected_kinds(pair)
        verdict = parse_verdict(row["judgment"], len(kinds))
        assert verdict.format_ok, (row["id"], verdict.format_problems)
        assert verdict.winner == pair.label
        tags = {(j.response, j.index): j.kind for j in verdict.criterion_justifications}
        assert tags == {(r, k): kind for r in "AB" for k, kind in enumerate(kinds, 1)}
        assert row["judgment"].startswith("--- Compliance Check ---\nIdentified Gatekeeper")
        assert row["judgment"].endswith(f"\nWinner: Response {pair.label}")
        assert (row["response_a"], row["response_b"]) == (pair.response_a, pair.response_b)
        assert row["prompt"] == prompt_text(pair.prompt)


def test_rubric_rows_parse_into_the_expected_kinds(train, rows) -> None:
    rubric_rows, judge_rows = rows
    first = {}
    for p in train:
        first.setdefault(prompt_text(p.prompt), p)
    for row in rubric_rows:
        pair = first[row["prompt"]]
        assert row["id"] == pair.id
        criteria = parse_rubric(row["rubric"]).criteria
        assert [c.kind for c in criteria] == expected_kinds(pair)
        assert all(c.valid and c.text.startswith("The response") for c in criteria)
    for row in judge_rows:
        assert parse_rubric(row["rubric"]).is_valid


def test_row_counts_and_keys(train, rows) -> None:
    rubric_rows, judge_rows = rows
    assert len(judge_rows) == len(train) > 0
    assert [r["id"] for r in judge_rows] == [p.id for p in train]
    assert len(rubric_rows) == len({prompt_text(p.prompt) for p in train})
    assert len({r["prompt"] for r in rubric_rows}) == len(rubric_rows)
    assert all(set(r) == {"id", "prompt", "rubric"} for r in rubric_rows)
    keys = {"id", "prompt", "rubric", "response_a", "response_b", "judgment"}
    assert all(set(r) == keys for r in judge_rows)


def test_duplicate_prompts_give_one_rubric_row(train) -> None:
    pairs = [train[0], copy.deepcopy(train[0]), train[1]]
    pairs[1].id = "copy"
    rubric_rows, judge_rows = mini_warmup_rows(pairs)
    assert [r["id"] for r in rubric_rows] == [train[0].id, train[1].id]
    assert [r["id"] for r in judge_rows] == [train[0].id, "copy", train[1].id]


def test_every_train_instruction_has_a_dedicated_renderer(train, rows) -> None:
    ids = {i for p in train for i in p.metadata.get("instruction_id_list", [])}
    assert ids and ids <= KNOWN_INSTRUCTIONS
    assert not any('instruction "' in r["rubric"] for r in rows[0])


def test_hard_rule_justifications_follow_the_verifier(train, rows) -> None:
    by_id = {r["id"]: r for r in rows[1]}
    for pair in train:
        if pair.subset == "easy-chat":
            continue
        meta = pair.metadata
        chosen, rejected = meta["chosen_verification"], meta["rejected_verification"]
        loser = "B" if pair.label == "A" else "A"
        for response, result in ((pair.label, chosen), (loser, rejected)):
            lines = analysis(by_id[pair.id]["judgment"], response)
            checks = zip(meta["instruction_id_list"], result["loose"], strict=True)
            for k, (iid, passed) in enumerate(checks, 1):
                assert lines[k].startswith("Meets it" if passed else "Fails it")
                assert iid in lines[k]
                assert ("strict mode" in lines[k]) == (passed != result["strict"][k - 1])


def test_renderer_examples() -> None:
    assert instruction_requirement("count:numbers", {"N": 2.0}) == (
        "The response includes exactly 2 numbers."
    )
    assert instruction_requirement("count:numbers", {"N": 1.0}) == (
        "The response includes exactly 1 number."
    )
    assert instruction_requirement(
        "keywords:frequency", {"keyword": "west", "frequency": 2, "relation": "less than"}
    ) == ('The response uses the word "west" fewer than 2 times.')
    assert instruction_requirement("sentence:keyword", {"N": 8.0, "word": "fleetness"}) == (
        'The response includes the keyword "fleetness" in its 8th sentence.'
    )
    assert "22nd" in instruction_requirement("count:words_japanese", {"N": 22})
    assert "11th" in instruction_requirement("count:words_japanese", {"N": 11})


def test_unknown_instruction_uses_the_fallback() -> None:
    text = instruction_requirement("format:mystery", {"N": 3.0, "word": "x\ny"}, "ifbench")
    assert text == (
        'The response follows the IFBench instruction "format:mystery" with N = 3 and word = "x y".'
    )
    assert instruction_requirement("format:mystery", {}, "custom") == (
        'The response follows the custom instruction "format:mystery".'
    )
    missing = instruction_requirement("count:numbers", {}, "ifbench")
    assert missing == 'The response follows the IFBench instruction "count:numbers".'

    pair = if_pair(
        ["format:mystery"],
        [{"N": 3.0}],
        {"loose": [True], "strict": [True]},
        {"loose": [False], "strict": [False]},
    )
    rubric_rows, judge_rows = mini_warmup_rows([pair])
    criteria = parse_rubric(rubric_rows[0]["rubric"]).criteria
    assert (
        criteria[0].text
        == 'The response follows the IFBench instruction "format:mystery" with N = 3.'
    )
    assert [c.kind for c in criteria] == ["hard_rule", "principle", "principle"]
    verdict = parse_verdict(judge_rows[0]["judgment"], 3)
    assert verdict.format_ok and verdict.winner == "A"


def test_chosen_failing_a_rule_still_gives_a_consistent_trajectory() -> None:
    pair = if_pair(
        ["count:numbers", "format:emoji"],
        [{"N": 2.0}, {}],
        chosen={"loose": [False, True], "strict": [False, True]},
        rejected={"loose": [False, False], "strict": [False, False]},
        label="B",
    )
    _, judge_rows = mini_warmup_rows([pair])
    judgment = judge_rows[0]["judgment"]
    verdict = parse_verdict(judgment, 4)
    assert verdict.format_ok and verdict.winner == "B"
    b, a = analysis(judgment, "B"), analysis(judgment, "A")
    assert b[1] == "Fails it: the IFBench checker for count:numbers fails."
    assert b[2] == "Meets it: the IFBench checker for format:emoji passes."
    assert a[1].startswith("Fails it") and a[2].startswith("Fails it")
    assert all("No verifier checks this principle" in x[k] for x in (a, b) for k in (3, 4))
    assert (
        "Identified Gatekeeper Criterion: The response ends every sentence with an emoji."
        in judgment
    )
    assert (
        "Response A passes 0 of 2 hard rules, Response B passes 1 of 2."
        in verdict.final_justification
    )
    assert "Under strict checking" not in verdict.final_justification


def test_strict_tie_break_is_explained() -> None:
    pair = if_pair(
        ["punctuation:no_comma"],
        [{}],
        chosen={"loose": [True], "strict": [True]},
        rejected={"loose": [True], "strict": [False]},
        label="A",
        registry="ifeval",
    )
    _, judge_rows = mini_warmup_rows([pair])
    verdict = parse_verdict(judge_rows[0]["judgment"], 3)
    assert verdict.format_ok and verdict.winner == "A"
    assert analysis(verdict.raw, "B")[1] == (
        "Meets it: the IFEval checker for punctuation:no_comma passes in loose mode but fails in "
        "strict mode."
    )
    final = verdict.final_justification or ""
    assert "Response A passes 1 of 1 hard rules, Response B passes 1 of 1." in final
    assert "Under strict checking, Response A passes 1 of 1 and Response B passes 0 of 1." in final
    assert "strict checking separates them in favour of Response A" in final


def test_label_against_the_verifier_is_said_plainly() -> None:
    pair = if_pair(
        ["punctuation:no_comma", "format:emoji"],
        [{}, {}],
        chosen={"loose": [False, False], "strict": [False, False]},
        rejected={"loose": [True, False], "strict": [True, False]},
        registry="ifeval",
    )
    _, judge_rows = mini_warmup_rows([pair])
    verdict = parse_verdict(judge_rows[0]["judgment"], 4)
    assert verdict.format_ok and verdict.winner == "A"
    assert "do not favour Response A" in (verdict.final_justification or "")
    gatekeeper = "Identified Gatekeeper Criterion: The response contains no commas.\n"
    assert gatekeeper in verdict.raw


def test_easy_chat_names_the_reference_answer(train, rows) -> None:
    by_id = {r["id"]: r for r in rows[1]}
    chats = [p for p in train if p.subset == "easy-chat"]
    assert chats
    for pair in chats:
        judgment = by_id[pair.id]["judgment"]
        loser = "B" if pair.label == "A" else "A"
        assert all(
            x.startswith("This is the reference") for x in analysis(judgment, pair.label).values()
        )
        assert all(
            x.startswith("This is not the reference") for x in analysis(judgment, loser).values()
        )
        assert f"Identified Gatekeeper Criterion: {CHAT_PRINCIPLES[0]}" in judgment


def test_swapped_pairs_keep_the_winner_with_the_chosen_response(train) -> None:
    original = {r["id"]: r for r in mini_warmup_rows(train)[1]}
    swapped = mini_warmup_rows([p.swapped() for p in train])[1]
    for row, pair in zip(swapped, train, strict=True):
        verdict = parse_verdict(row["judgment"], len(expected_kinds(pair)))
        assert verdict.format_ok and verdict.winner != pair.label
        assert row["rubric"] == original[pair.id]["rubric"]


def test_deterministic_and_input_left_alone(train) -> None:
    before = copy.deepcopy(train)
    assert mini_warmup_rows(train) == mini_warmup_rows(train)
    assert train == before


def test_unlabelled_or_unknown_pairs_are_refused(train) -> None:
    unlabelled = copy.deepcopy(train[0])
    unlabelled.label = None
    with pytest.raises(ValueError, match=re.escape(unlabelled.id)):
        mini_warmup_rows([unlabelled])
    bare = PreferencePair("bare/1", "hi", "a", "b", "A", subset="other")
    with pytest.raises(ValueError, match="bare/1"):
        mini_warmup_rows([bare])


def flip_winner(text: str) -> str:
    head, last = text.rsplit("\n", 1)
    return f"{head}\nWinner: Response {'B' if last.endswith('A') else 'A'}"


@pytest.mark.parametrize(
    "drift",
    [
        lambda text: text.replace("Winner: Response", "Choice: Response"),
        lambda text: text.replace("- Criterion 2 [Principle]", "- Criterion 9 [Principle]"),
        lambda text: text.replace("[Hard Rule]: Justification", "[Principle]: Justification"),
        flip_winner,
    ],
    ids=["no-winner", "missing-criterion", "wrong-tag", "wrong-winner"],
)
def test_format_drift_raises_naming_the_pair(train, monkeypatch, drift) -> None:
    pair = next(p for p in train if p.subset == "ifbench")
    real = warmup_mini.judge_trajectory
    monkeypatch.setattr(warmup_mini, "judge_trajectory", lambda p: drift(real(p)))
    with pytest.raises(ValueError, match=re.escape(f"pair {pair.id}:")):
        mini_warmup_rows([pair])


def test_both_orders_setting_doubles_the_judge_rows_with_each_verdict_once() -> None:
    from rubric_arm.errors import InputError
    from rubric_arm.trainer.config import load_config, parse_overrides
    from rubric_arm.trainer.data import load_train_data

    configs = Path(__file__).resolve().parent.parent / "configs"
    mini = configs / "mini.yaml"
    switch = ["--data.sft_size", "20", "--data.sft_judge_trajectories", "true"]
    switch += ["--data.sft_rule_rows", "none", "--data.sft_both_orders"]
    once = load_train_data(load_config(mini, parse_overrides([*switch, "false"])))
    both = load_train_data(load_config(mini, parse_overrides([*switch, "true"])))
    assert len(both.sft_judgments) == 2 * len(once.sft_judgments) == 40
    assert both.sft_rubrics == once.sft_rubrics
    for row in once.sft_judgments:
        twins = [r for r in both.sft_judgments if r["id"] == row["id"]]
        assert {r["response_a"] for r in twins} == {row["response_a"], row["response_b"]}
        assert {r["judgment"].rstrip()[-1] for r in twins} == {"A", "B"}
    with pytest.raises(InputError, match="sft_both_orders is for data.source mini"):
        load_config(configs / "tiny.yaml", parse_overrides(["--data.sft_both_orders", "true"]))


def test_verdict_rows_hold_the_letter_alone_after_the_rest_of_the_trajectory() -> None:
    from rubric_arm.trainer.config import load_config, parse_overrides
    from rubric_arm.trainer.data import load_train_data
    from rubric_arm.trainer.loop import phase_names

    mini = Path(__file__).resolve().parent.parent / "configs" / "mini.yaml"
    base = ["--data.sft_size", "12", "--data.sft_both_orders", "false"]
    base += ["--data.sft_rule_rows", "none", "--data.sft_judge_trajectories", "true"]
    plain = load_train_data(load_config(mini, parse_overrides(base))).sft_judgments
    add = load_train_data(
        load_config(mini, parse_overrides([*base, "--data.sft_verdict_rows", "add"]))
    ).sft_judgments
    only = load_train_data(
        load_config(mini, parse_overrides([*base, "--data.sft_verdict_rows", "only"]))
    ).sft_judgments
    assert add[: len(plain)] == plain and add[len(plain) :] == only and len(only) == 12
    for full, verdict in zip(plain, only, strict=True):
        assert verdict["judgment"] in (" A", " B")
        assert verdict["prefix"] + verdict["judgment"] == full["judgment"].rstrip()
        assert verdict["prefix"].endswith("Winner: Response")
    from rubric_arm.templates import load_template
    from rubric_arm.trainer.phases import sft_dataset

    ds = sft_dataset(only[:1], load_template("judge"), "judge", lambda chat: "<prompt>")
    assert ds[0]["prompt"] == "<prompt>" + only[0]["prefix"]
    assert ds[0]["completion"] == only[0]["judgment"]
    cfg = load_config(mini, parse_overrides(["--sft.generator.enabled", "false"]))
    assert [n for n, _ in phase_names(cfg)][:2] == ["sft-judge", "cycle1-judge"]


def test_rule_rows_add_one_check_per_instruction_and_response_with_the_verifiers_answer() -> None:
    from rubric_arm.templates import load_template
    from rubric_arm.trainer.config import load_config, parse_overrides
    from rubric_arm.trainer.data import load_train_data
    from rubric_arm.trainer.phases import sft_dataset
    from rubric_arm.trainer.rule_rows import QUESTION
    from rubric_arm.trainer.warmup_mini import rule_outcomes

    mini = Path(__file__).resolve().parent.parent / "configs" / "mini.yaml"
    base = ["--data.sft_size", "12", "--data.sft_judge_trajectories", "true"]
    plain = load_train_data(
        load_config(mini, parse_overrides([*base, "--data.sft_rule_rows", "none"]))
    )
    data = load_train_data(
        load_config(mini, parse_overrides([*base, "--data.sft_rule_rows", "pairs"]))
    )
    assert data.sft_judgments[: len(plain.sft_judgments)] == plain.sft_judgments
    rules = data.sft_judgments[len(plain.sft_judgments) :]
    checks_only = ["--data.sft_rule_rows", "pairs", "--data.sft_judge_trajectories", "false"]
    only = load_train_data(
        load_config(mini, parse_overrides(["--data.sft_size", "12", *checks_only]))
    )
    assert only.sft_judgments == rules and only.sft_rubrics == data.sft_rubrics
    pairs = [p for p in load_mini("train") if p.id in {r["id"] for r in plain.sft_judgments}]
    expected = {
        (req, text): ("Meets" if ok else "Fails")
        for p in pairs
        for req, a, b in rule_outcomes(p)
        for text, ok in ((p.response_a, a), (p.response_b, b))
        if ok is not None
    }
    asked = {}
    for r in rules:
        (turn,) = r["chat"]
        req, text = re.fullmatch(
            re.escape(QUESTION)
            .replace(r"\{requirement\}", "(.*)")
            .replace(r"\{response\}", "(.*)"),
            turn["content"],
            flags=re.DOTALL,
        ).groups()
        asked[(req, text)] = r["judgment"]
    # one row per (requirement, response), although the pairs are warmed up in both orders
    assert asked == expected and len(rules) == len(expected) > 12
    ds = sft_dataset(rules[:1], load_template("judge"), "judge", lambda chat: chat[0]["content"])
    assert ds[0]["prompt"] == rules[0]["chat"][0]["content"]
    assert ds[0]["completion"] in ("Meets", "Fails")


def test_drawn_generator_rows_use_train_questions_only_and_parse(train) -> None:
    """data.sft_generator_draws: every drawn row is a train-split MT-Bench question with 1-3
    checker-written constraints; its rubric parses into that many hard rules and the two IF
    principles, and the same seed draws the same rows."""
    rows = warmup_mini.drawn_rubric_rows(train, 3, seed=0)
    held = {str(p.metadata.get("group")) for p in load_mini("heldout")}
    trained = {str(p.metadata.get("group")) for p in train}
    questions = {f"mtbench:{r['id'].split('/')[1]}" for r in rows}
    assert questions and questions <= trained and not questions & held
    assert len(rows) == 3 * len(questions)
    hard_counts = set()
    for r in rows:
        kinds = [c.kind for c in parse_rubric(r["rubric"]).criteria]
        hard = kinds.count("hard_rule")
        hard_counts.add(hard)
        assert 1 <= hard <= 3 and kinds == ["hard_rule"] * hard + ["principle"] * 2
    assert hard_counts == {1, 2, 3}
    assert rows == warmup_mini.drawn_rubric_rows(train, 3, seed=0)
    assert rows != warmup_mini.drawn_rubric_rows(train, 3, seed=1)
