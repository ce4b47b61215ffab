"""Policy runs: DPO / IterDPO on Rubric-ARM-labelled pairs and online GRPO with RubricARMReward on
the tiny synthetic policy, the agreement and probability-margin filters, the probability reward
through registry records, verifier scoring and the study report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scripted_engine import ScriptedEngine, judge_output

pytest.importorskip("trl")

from rubric_arm.cache import RubricCache  # noqa: E402
from rubric_arm.data.verifiers import VerifiableItem  # noqa: E402
from rubric_arm.errors import InputError, RubricArmError  # noqa: E402
from rubric_arm.harness.judges import RubricARMJudge  # noqa: E402
from rubric_arm.pipeline import RubricARM  # noqa: E402
from rubric_arm.records import JudgeRecord, Judgment  # noqa: E402
from rubric_arm.trainer.policy.config import load_policy_config  # noqa: E402
from rubric_arm.trainer.policy.evaluate import score_items  # noqa: E402
from rubric_arm.trainer.policy.judging import label_pairs, order_verdicts  # noqa: E402
from rubric_arm.trainer.policy.runs import PolicyRun  # noqa: E402
from rubric_arm.types import SamplingParams  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def shorter_wins(text: str, vote: int) -> str:
    """A position-free preference read from the judge prompt: the shorter response wins."""
    a = text.split("Response A:\n", 1)[1].split("\n\nResponse B:\n", 1)[0]
    b = text.split("\n\nResponse B:\n", 1)[1]
    return judge_output("A" if (len(a), a) <= (len(b), b) else "B")


def first_shown_wins(text: str, vote: int) -> str:
    return judge_output("A")


STRENGTH = re.compile(r"strength=(\d+)")


def strength_probs(bias: float):
    """P(shown A) = s_A / (s_A + s_B) + `bias` from the `strength=N` markers of the responses in
    the order shown: a position-free preference plus a constant pull toward the first position,
    which the mean over both orders cancels. None when a marker is missing."""

    def probs(text: str, vote: int) -> float | None:
        found = [int(n) for n in STRENGTH.findall(text)]
        return found[0] / (found[0] + found[1]) + bias if len(found) == 2 else None

    return probs


def scripted_judge(
    judge_fn=shorter_wins, cache_dir: Path | None = None, probs_fn=None
) -> tuple[RubricARMJudge, ScriptedEngine, ScriptedEngine]:
    """A Rubric-ARM judge on scripted engines (`probs_fn`: its verdict probabilities); with
    `cache_dir`, a rubric cache of its own there (the default cache lives in the test home and
    outlives a test run)."""
    gen = ScriptedEngine("generator")
    judge = ScriptedEngine("judge", judge_fn=judge_fn, probs_fn=probs_fn)
    cache = RubricCache(cache_dir / "rubrics.sqlite") if cache_dir else False
    arm = RubricARM(
        gen, judge, judge_sampling=SamplingParams(temperature=0.0, max_new_tokens=64), cache=cache
    )
    return RubricARMJudge("rubric-arm", arm, {"preset": "scripted"}), gen, judge


def tiny_cfg(tmp_path: Path, **extra):
    overrides = {"output_dir": str(tmp_path), **extra}
    return load_policy_config(ROOT / "configs" / "policy-tiny.yaml", overrides)


def test_agreement_filter_keeps_only_pairs_both_orders_agree_on() -> None:
    fair, _, _ = scripted_judge()
    rows, stats = label_pairs(
        fair, ["p", "q", "r"], ["short", "same", "a long answer"], ["longer one", "same", "tiny"], 0
    )
    assert stats.identical == 1 and stats.judged == 2 and stats.kept == 2
    assert [(r["chosen"], r["rejected"]) for r in rows] == [
        ("short", "longer one"),
        ("tiny", "a long answer"),
    ]
    biased, _, _ = scripted_judge(first_shown_wins)
    rows, stats = label_pairs(biased, ["p"], ["x"], ["yy"], 0)
    assert rows == [] and stats.disagreed == 1 and stats.kept_fraction == 0.0


def test_margin_filter_keeps_exactly_the_pairs_far_enough_from_even() -> None:
    # Strengths (y1, y2) and a pull of 1/16 toward the first position. Per order P(y1 better):
    #   q0 (7, 1): forward 7/8 + 1/16 = 0.9375; swapped, y2 first: 1/8 + 1/16 -> 1 - 0.1875
    #     = 0.8125; mean 0.875, 0.375 from 0.5: kept, y1 chosen.
    #   q1 (9, 7): 0.625 and 1 - 0.5 = 0.5; mean 0.5625, 0.0625 from 0.5: below the margin.
    #   q2 (1, 3): 0.3125 and 1 - 0.8125 = 0.1875; mean 0.25, on the margin: kept, y2 chosen.
    #   q3 (2, 2): 0.5625 and 0.4375; mean 0.5: no side.
    #   q4 identical samples; q5 has no strength marker, so no probability.
    # Taking the swapped order's P(A) without flipping it would keep q1 and q3 and drop q0, q2.
    fair, _, _ = scripted_judge(probs_fn=strength_probs(0.0625))
    first = ["s strength=7", "s strength=9", "s strength=1", "s strength=2", "same", "plain"]
    second = ["t strength=1", "t strength=7", "t strength=3", "t strength=2", "same", "other"]
    prompts = [f"prompt {k}" for k in range(6)]
    rows, stats = label_pairs(fair, prompts, first, second, 0, margin=0.25)
    assert [(r["id"], r["chosen"], r["rejected"], r["p_a"]) for r in rows] == [
        ("q0", "s strength=7", "t strength=1", 0.875),
        ("q2", "t strength=3", "s strength=1", 0.25),
    ]
    assert (stats.identical, stats.judged, stats.kept) == (1, 5, 2)
    assert (stats.below_margin, stats.no_probability) == (2, 1)
    assert (stats.disagreed, stats.unparsed) == (0, 0)
    info = stats.to_dict()
    assert info["kept_fraction"] == 0.4 and info["margin"] == 0.25
    assert info["rule"] == "|mean P(A) - 0.5| >= 0.25"
    # A smaller margin also keeps q1; margin 0 keeps everything with a side (not q3).
    rows, _ = label_pairs(fair, prompts, first, second, 0, margin=0.0625)
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"]
    rows, stats = label_pairs(fair, prompts, first, second, 0, margin=0.0)
    assert [r["id"] for r in rows] == ["q0", "q1", "q2"] and stats.below_margin == 1
    # The agreement rule on the same judge reads the verdict texts (here: shorter wins) instead.
    rows, stats = label_pairs(fair, prompts, first, second, 0)
    assert stats.margin is None and stats.rule == "both orders agree" and stats.kept == 5
    with pytest.raises(InputError, match=r"\[0, 0.5\]"):
        label_pairs(fair, prompts, first, second, 0, margin=0.75)


def test_margin_setting_is_checked_and_reaches_the_labels(tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path, dpo={"label_margin": 0.25})
    assert cfg.dpo.label_margin == 0.25
    assert tiny_cfg(tmp_path).dpo.label_margin is None
    with pytest.raises(InputError, match="dpo.label_margin must be in"):
        tiny_cfg(tmp_path, dpo={"label_margin": 0.6})
    from rubric_arm.trainer.policy.runs import label_summary

    _, stats = label_pairs(
        scripted_judge(probs_fn=strength_probs(0.0))[0],
        ["p", "q"],
        ["a strength=3", "a strength=1"],
        ["b strength=1", "b strength=1"],
        0,
        margin=0.25,
    )
    line = label_summary(1, stats.to_dict())
    assert "kept 1 of 2 judged pairs (50%; |mean P(A) - 0.5| >= 0.25)" in line
    assert "below the margin 1" in line
    old = {"kept": 2, "judged": 2, "kept_fraction": 1.0, "identical": 0, "disagreed": 0}
    assert "both orders agree" in label_summary(1, {**old, "unparsed": 0})


def test_report_names_the_label_rule_and_the_reward_form() -> None:
    from rubric_arm.trainer.policy.study import training_lines

    old_stats = {"prompts": 4, "identical": 0, "judged": 4, "kept": 2, "kept_fraction": 0.5}
    old_stats |= {"disagreed": 1, "unparsed": 1}  # written before the margin rule existed
    margin_stats = {**old_stats, "kept": 1, "kept_fraction": 0.25, "margin": 0.1}
    margin_stats |= {"rule": "|mean P(A) - 0.5| >= 0.1", "below_margin": 2, "no_probability": 1}
    counters = {"calls": 2, "completions": 16, "rubrics_generated": 4, "references_generated": 4}
    counters |= {"unparsed_verdicts": 3, "invalid": 0, "prob_fallbacks": 5}
    state = {
        "dpo-iter1": {"label_stats": old_stats, "trained": True, "seconds": 1.0},
        "dpo-iter2": {"label_stats": margin_stats, "trained": True, "seconds": 1.0},
        "grpo": {"reward_stats": counters, "score": "prob", "seconds": 2.0},
    }
    first, second, grpo = training_lines(state)
    assert "(50.0% of judged: both orders agree), disagreed 1, unparsed 1;" in first
    assert "(25.0% of judged: |mean P(A) - 0.5| >= 0.1), below the margin 2" in second
    assert "without a verdict probability 1;" in second
    assert grpo.startswith("- grpo (prob reward):")
    assert "3 unparsed verdicts, 5 orders without a verdict probability (scored 0.5)" in grpo
    del state["grpo"]["score"]  # a state written before the prob reward existed
    assert training_lines(state)[2].startswith("- grpo (binary reward):")
    assert "without a verdict probability" not in training_lines(state)[2]


def test_prob_reward_through_registry_records_matches_the_pipeline_reward(tmp_path: Path) -> None:
    from rubric_arm.harness.judges import make_judge
    from rubric_arm.policy_reward import RubricARMReward
    from rubric_arm.trainer.policy.judging import HarnessJudgeReward, make_reward

    judge, _, _ = scripted_judge(first_shown_wins, probs_fn=strength_probs(0.125))
    candidates = ["c strength=3", "c strength=1", "c strength=7"]
    refs = ["r strength=1"] * 3
    direct = make_reward(judge, None, 16, seed=0, score="prob")
    assert isinstance(direct, RubricARMReward) and direct.score == "prob"
    # the records' path (dicts, as from judge_pairs or a reward server) gives the same rewards
    via_records = HarnessJudgeReward(judge, None, score="prob")
    expected = [0.75, 0.5, 0.875]  # see test_policy_reward: strengths vs 1, pull 1/8
    assert direct(["p"] * 3, candidates, reference=refs) == expected
    assert via_records(["p"] * 3, candidates, reference=refs) == expected
    assert via_records.stats.prob_fallbacks == 0
    # a judge whose records hold no probabilities: every order falls back to 0.5, counted
    coin = make_reward(make_judge("random"), None, 16, seed=3, score="prob")
    assert coin(["p"] * 6, [f"answer {k}" for k in range(6)], reference=["ref"] * 6) == [0.5] * 6
    assert coin.stats.prob_fallbacks == 12
    # the recipe setting reaches the run's reward
    run = PolicyRun(tiny_cfg(tmp_path, grpo={"score": "prob"}), progress=False)
    run._judge = judge
    assert run.grpo_reward(None).score == "prob"
    assert load_policy_config(ROOT / "configs" / "policy-mini.yaml").grpo.score == "prob"
    assert tiny_cfg(tmp_path / "other").grpo.score == "binary"


def test_remote_reward_reads_probabilities_from_the_servers_records() -> None:
    from rubric_arm.trainer.policy.remote import RemoteReward

    judge, _, _ = scripted_judge(first_shown_wins, probs_fn=strength_probs(0.125))

    class Served:
        """What /compare answers: the pipeline's records as JSON."""

        status_code = 200

        def __init__(self, body: dict) -> None:
            recs = judge.arm.judge(body["pairs"], order=body["order"], seed=body["seed"])
            self.records = json.loads(json.dumps([r.to_dict(timings=False) for r in recs]))

        def json(self) -> dict:
            return {"records": self.records}

    reward = RemoteReward("http://judge:8321", None, 16, score="prob")
    reward.client = type("Client", (), {"post": lambda self, url, json: Served(json)})()
    out = reward(["p", "p"], ["c strength=3", "c strength=1"], reference=["r strength=1"] * 2)
    assert out == [0.75, 0.5] and reward.stats.prob_fallbacks == 0


def test_order_verdicts_of_a_judge_without_per_order_judgments() -> None:
    def rec(winner: str | None, *orders: tuple[str, str]) -> JudgeRecord:
        judgments = [Judgment(o, 0, w, True, None, [], "", 0, 0, "stop") for o, w in orders]
        return JudgeRecord("p", None, "A", "ok", winner=winner, judgments=judgments)  # type: ignore[arg-type]

    assert order_verdicts(rec("A")) == ("A", "B")
    assert order_verdicts(rec(None)) == (None, None)
    assert order_verdicts(rec(None, ("AB", "A"), ("BA", "A"))) == ("A", "B")


def test_verifier_scores_the_four_ifeval_numbers() -> None:
    items = [
        VerifiableItem(
            "k1", "mention green", ("keywords:existence",), ({"keywords": ["green"]},), "ifeval"
        ),
        VerifiableItem(
            "k2", "mention blue", ("keywords:existence",), ({"keywords": ["blue"]},), "ifeval"
        ),
    ]
    res = score_items(items, ["the grass is green", "the sky is grey"])
    m = res.metrics["all"]
    assert m["prompt_strict"]["value"] == 0.5 and m["prompt_strict"]["n"] == 2
    assert m["instruction_loose"]["value"] == 0.5
    assert [r.strict for r in res.rows] == [[True], [False]]


def test_iterdpo_on_rubric_arm_labels_trains_saves_and_resumes(tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path, dpo={"iterations": 2})
    run = PolicyRun(cfg, progress=False)
    run._judge, gen, _ = scripted_judge(cache_dir=tmp_path)
    models = run.dpo()
    assert len(models) == 2 and all((m / "config.json").is_file() for m in models)
    state = run.state()
    for it in (1, 2):
        info = state[f"dpo-iter{it}"]
        assert info["trained"] and info["label_stats"]["kept"] > 0
        rows = (
            (tmp_path / "policy-tiny" / "dpo" / f"iter{it}" / "pairs.jsonl")
            .read_text()
            .splitlines()
        )
        assert len(rows) == info["label_stats"]["kept"]
        assert all(len(json.loads(r)["chosen"]) <= len(json.loads(r)["rejected"]) for r in rows)
    # one rubric per prompt: the second iteration's labels reuse the first iteration's rubrics
    asked = [str(chat) for call in gen.calls for chat in call[0]]
    assert asked and len(asked) == len(set(asked))
    with pytest.raises(RubricArmError, match="another process"):
        PolicyRun(cfg, progress=False)  # one writer per run folder
    run.close()
    again = PolicyRun(cfg, progress=False)
    again._judge = None
    assert again.dpo() == models  # finished iterations are read back, nothing re-judged


def test_grpo_with_rubric_arm_reward_generates_one_rubric_per_prompt(tmp_path: Path) -> None:
    cfg = tiny_cfg(tmp_path)
    run = PolicyRun(cfg, progress=False)
    run._judge, gen, judge = scripted_judge()
    out = run.grpo()
    assert (out / "config.json").is_file()
    stats = run.state()["grpo"]["reward_stats"]
    g = cfg.grpo
    steps = g.max_steps
    assert stats["calls"] == steps and stats["completions"] == steps * g.per_device_train_batch_size
    prompts_seen = steps * g.per_device_train_batch_size // g.num_generations
    # a whole group of num_generations completions shares one rubric and one reference
    assert (
        stats["rubrics_generated"] <= prompts_seen
        and sum(len(c[0]) for c in gen.calls) == stats["rubrics_generated"]
    )
    assert stats["references_generated"] == prompts_seen
    assert [len(c[0]) for c in judge.calls] == [2 * g.per_device_train_batch_size] * steps


def test_study_writes_the_report_with_four_policies(tmp_path: Path) -> None:
    from rubric_arm.trainer.policy.study import run_study

    cfg = tiny_cfg(tmp_path, dpo={"iterations": 2})
    import rubric_arm.trainer.policy.runs as runs

    judge, _, _ = scripted_judge()
    original = runs.build_judge
    runs.build_judge = lambda _cfg: judge
    try:
        study = run_study(cfg, tmp_path / "report.md")
    finally:
        runs.build_judge = original
    assert set(study["results"]) == {"base", "dpo", "iterdpo-2", "grpo"}
    text = (tmp_path / "report.md").read_text()
    for name in ("| base |", "| dpo |", "| iterdpo-2 |", "| grpo |", "Difference from the base"):
        assert name in text
    assert study["results"]["base"]["n_prompts"] == cfg.data.eval_size
    assert "## The paper (Qwen2.5-7B-Instruct policy" in text and "| IFBench | 28.2 |" in text
    assert (tmp_path / "report.png").stat().st_size > 1000
    saved = json.loads((tmp_path / "report.json").read_text())
    assert set(saved["results"]) == set(study["results"])


def test_any_registry_judge_is_a_grpo_reward() -> None:
    from rubric_arm.harness.judges import make_judge
    from rubric_arm.trainer.policy.judging import HarnessJudgeReward, make_reward

    reward = make_reward(make_judge("random"), None, 16, seed=3)
    assert isinstance(reward, HarnessJudgeReward)
    out = reward(["p"] * 6, [f"answer {k}" for k in range(6)], reference=["ref"] * 6)
    assert set(out) <= {0.0, 1.0} and len(out) == 6  # one winner for both orders
    assert reward(["p"] * 6, [f"answer {k}" for k in range(6)], reference=["ref"] * 6) == out
    fair, _, _ = scripted_judge()
    assert not isinstance(make_reward(fair, None, 16, seed=0), HarnessJudgeReward)


def test_evaluation_prompts_the_policy_trains_on_are_removed() -> None:
    from rubric_arm.trainer.policy.data import load_policy_data

    cfg = load_policy_config(
        ROOT / "configs" / "policy-mini.yaml",
        {"data": {"eval_source": "ifbench", "train_size": None}},
    )
    data = load_policy_data(cfg)
    train = {str(p) for p in data.train}
    assert data.overlap_removed > 0 and not any(i.prompt in train for i in data.heldout)


def test_policy_cli_eval_and_bad_settings(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "rubric_arm.cli", "policy"]
    cfg = ["--config", str(ROOT / "configs" / "policy-tiny.yaml"), "--output_dir", str(tmp_path)]
    out = subprocess.run(
        base + ["eval", *cfg], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    assert '"prompt_strict"' in out.stdout
    assert (tmp_path / "policy-tiny" / "eval" / "base" / "responses.jsonl").is_file()
    bad = subprocess.run(
        base + ["dpo", *cfg, "--dpo.iterations", "0"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "dpo.iterations must be >= 1" in bad.stderr
    bad = subprocess.run(
        base + ["grpo", *cfg, "--grpo.num_generationz", "4"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "grpo.num_generationz" in bad.stderr
