"""Benchmark expansion and scoring from per-pair records, the judges, the runner and reports."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rubric_arm.data.rows import MultiResponseItem
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.harness.benchmarks import expand, get_benchmark, score
from rubric_arm.harness.judges import (
    Judge,
    RandomJudge,
    VotingJudge,
    make_judge,
    parse_judge_args,
)
from rubric_arm.harness.report import write_report
from rubric_arm.harness.runner import EvalConfig, run_eval
from rubric_arm.records import JudgeRecord, Judgment
from rubric_arm.types import PreferencePair


def rec(
    rid: str, subset: str | None, winner: str | None, label: str = "A", status: str = "ok"
) -> JudgeRecord:
    return JudgeRecord(rid, subset, label, status, winner=winner)  # type: ignore[arg-type]


def judgment(order: str, winner: str | None) -> Judgment:
    return Judgment(order, 0, winner, winner is not None, None, [], "", 0, 0, "stop")  # type: ignore[arg-type]


def by_name(metrics: Sequence[Any]) -> dict[str, Any]:
    return {m.name: m for m in metrics}


def test_pairwise_accuracy_and_tie_policy() -> None:
    records = [
        rec("1", "x", "A"),
        rec("2", "x", None),
        rec("3", "y", "B"),
        rec("4", "y", "A", status="prompt_too_long"),
    ]
    half = by_name(score(get_benchmark("pairs"), records, tie_policy="half"))
    assert half["x"].estimate.value == pytest.approx(0.75)
    assert half["y"].estimate.value == pytest.approx(0.25)
    assert half["overall"].estimate.value == pytest.approx(0.5)
    assert (half["overall"].parse_failures, half["overall"].not_judged) == (1, 1)
    wrong = by_name(score(get_benchmark("pairs"), records, tie_policy="wrong"))
    assert wrong["overall"].estimate.value == pytest.approx(0.25)
    with pytest.raises(InputError, match="tie policy"):
        score(get_benchmark("pairs"), records, tie_policy="coin")


def test_rewardbench_sections_use_official_weights() -> None:
    # Reasoning: math-prm (weight 984) all right, hep-python (164) all wrong, hep-go (164) all right.
    # Section = (984 * 1 + 164 * 0 + 164 * 1) / (984 + 328) = 1148 / 1312.
    records = [rec(f"m{i}", "math-prm", "A") for i in range(3)]
    records += [rec(f"p{i}", "hep-python", "B") for i in range(2)]
    records += [rec(f"g{i}", "hep-go", "A") for i in range(2)]
    # Chat: alpacaeval-easy (100) 1/2, mt-bench-easy (28) 1/1 -> (50 + 28) / 128.
    records += [
        rec("a1", "alpacaeval-easy", "A"),
        rec("a2", "alpacaeval-easy", "B"),
        rec("e1", "mt-bench-easy", "A"),
    ]
    m = by_name(score(get_benchmark("rewardbench"), records, tie_policy="wrong"))
    assert m["section: Reasoning"].estimate.value == pytest.approx(1148 / 1312)
    assert m["section: Chat"].estimate.value == pytest.approx(78 / 128)
    assert m["overall"].estimate.value == pytest.approx((1148 / 1312 + 78 / 128) / 2)
    low, high = m["section: Chat"].estimate.low, m["section: Chat"].estimate.high
    assert low <= 78 / 128 <= high and low < high


def rb2_item(iid: str, subset: str) -> MultiResponseItem:
    return MultiResponseItem(iid, "q", ["right"], ["w0", "w1", "w2"], subset)


def test_rb2_expansion_and_best_of_4_credit() -> None:
    bench = get_benchmark("rewardbench2")
    items = [
        rb2_item("Focus/1", "Focus"),
        rb2_item("Focus/2", "Focus"),
        rb2_item("Ties/ref:1", "Ties"),
    ]
    pairs = expand(bench, items)
    assert [p.id for p in pairs][:3] == ["Focus/1|c0r0", "Focus/1|c0r1", "Focus/1|c0r2"]
    assert len(pairs) == 6  # Ties rows need per-response scores and are not expanded
    # Item 1: correct wins all three -> 1. Item 2: correct loses to w1, wins the rest:
    # correct share 2/3, w1 share 1 -> w1 on top alone -> 0.
    winners = ["A", "A", "A", "A", "B", "A"]
    records = [rec(p.id, p.subset, w) for p, w in zip(pairs, winners, strict=True)]
    (focus,) = score(bench, records)
    assert focus.name == "Focus" and focus.estimate.value == pytest.approx(0.5)
    # One unparsed verdict in item 1: correct share (2 + 0.5) / 3, w0 share 0.5 -> still top alone.
    records[0].winner = None
    assert score(bench, records)[0].estimate.value == pytest.approx(0.5)
    beats_all = score(bench, records, protocol="beats_all")[0]
    assert beats_all.estimate.value == 0.0


def test_rmbench_matrix_from_records() -> None:
    bench = get_benchmark("rm-bench")
    item = MultiResponseItem("7", "q", ["c0", "c1", "c2"], ["r0", "r1", "r2"], "chat")
    pairs = expand(bench, [item])
    assert len(pairs) == 9
    # Chosen wins only where i >= j (diagonal + lower triangle): hard 0, normal 1, easy 1.
    records = []
    for p in pairs:
        i, j = int(p.id[-3]), int(p.id[-1])
        records.append(rec(p.id, "chat", "A" if i >= j else "B"))
    m = by_name(score(bench, records))
    assert m["chat"].estimate.value == pytest.approx(6 / 9)
    assert m["chat (hard)"].estimate.value == 0.0
    assert m["chat (normal)"].estimate.value == 1.0
    assert m["chat (easy)"].estimate.value == 1.0
    assert m["overall"].estimate.value == pytest.approx(6 / 9)


def test_judgebench_both_order_rule() -> None:
    def jb(rid: str, ab: str | None, ba: str | None) -> JudgeRecord:
        r = rec(rid, "math", None)
        r.judgments = [judgment("AB", ab), judgment("BA", ba)]
        return r

    # Winners are in the pair's own labels (label A = the better response):
    # consistent right -> 1; one right one wrong -> 0; one right one unparsed -> 1.
    records = [jb("1", "A", "A"), jb("2", "A", "B"), jb("3", None, "A"), jb("4", "B", "B")]
    (math_m, overall) = score(get_benchmark("judgebench"), records)
    assert overall.estimate.value == pytest.approx(0.5) and math_m.name == "math"


def test_parse_judge_args() -> None:
    assert parse_judge_args(["preset=mini", "votes=3", "top-p=0.9", "cache=false"]) == {
        "preset": "mini",
        "votes": 3,
        "top_p": 0.9,
        "cache": False,
    }
    with pytest.raises(InputError, match="not key=value"):
        parse_judge_args(["preset"])
    with pytest.raises(InputError, match="unknown judge"):
        make_judge("oracle")
    with pytest.raises(InputError, match="needs a model"):
        make_judge("scalar")


PAIRS = [
    PreferencePair(f"p{i}", f"question {i}", f"good {i}", f"bad {i}", "A" if i % 2 else "B", "s")
    for i in range(10)
]


def test_random_and_voting_judges() -> None:
    a = RandomJudge().judge_pairs(PAIRS, order="random", seed=3)
    b = RandomJudge().judge_pairs(PAIRS, order="random", seed=3)
    assert a == b and {r.winner for r in a} == {"A", "B"}
    assert RandomJudge().judge_pairs(PAIRS, order="random", seed=4) != a
    voted = VotingJudge(RandomJudge(), 3).judge_pairs(PAIRS, order="random", seed=3)
    for r in voted:
        assert r.votes == 3 and r.vote_winners is not None and len(r.vote_winners) == 3
        assert r.winner == max(set(r.vote_winners), key=r.vote_winners.count)


def write_pairs(path: Path, n: int = 10) -> Path:
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in PAIRS[:n]), encoding="utf-8")
    return path


class Killer(Judge):
    """Delegates to a judge and raises after `chunks` chunks, as a kill mid-run would."""

    def __init__(self, inner: Judge, chunks: int) -> None:
        self.inner, self.left, self.name = inner, chunks, inner.name

    def config(self) -> dict[str, Any]:
        return self.inner.config()

    def judge_pairs(self, pairs, *, order, seed, desc="judge"):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.inner.judge_pairs(pairs, order=order, seed=seed, desc=desc)


def test_runner_resumes_to_identical_scores(tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")
    config = EvalConfig(judge="random", benchmark="pairs", data=str(data), chunk_size=3, seed=5)
    full = run_eval(config, tmp_path / "full", progress=False)
    with pytest.raises(KeyboardInterrupt):
        run_eval(config, tmp_path / "cut", judge=Killer(RandomJudge(), 2), progress=False)
    assert len((tmp_path / "cut" / "records.jsonl").read_text().splitlines()) == 6
    logs: list[str] = []
    resumed = run_eval(config, tmp_path / "cut", progress=False, log=logs.append)
    assert logs == [f"resuming {tmp_path / 'cut'}: 6/10 pairs already judged"]
    assert [m.to_dict() for m in resumed] == [m.to_dict() for m in full]
    full_scores = json.loads((tmp_path / "full" / "scores.json").read_text())
    assert json.loads((tmp_path / "cut" / "scores.json").read_text()) == full_scores
    meta = json.loads((tmp_path / "cut" / "metadata.json").read_text())
    assert meta["resumed_from_pairs"] == 6 and meta["n_pairs"] == 10


def test_a_run_folder_reads_back_as_typed_records(tmp_path: Path) -> None:
    from rubric_arm.harness.runner import read_run

    data = write_pairs(tmp_path / "pairs.jsonl")
    config = EvalConfig(judge="random", benchmark="pairs", data=str(data), chunk_size=3, seed=5)
    metrics = run_eval(config, tmp_path / "r", progress=False)
    run = read_run(tmp_path / "r")
    assert run.config == config.resolved()
    assert run.scores.metrics == metrics and run.scores.metric("overall") == metrics[-1]
    assert (run.scores.benchmark, run.scores.tie_credit, run.scores.protocol) == (
        "pairs",
        0.5,
        None,
    )
    assert run.metadata.n_pairs == len(run.records) == 10 and run.metadata.wall_seconds >= 0
    assert json.loads((tmp_path / "r" / "scores.json").read_text()) == run.scores.to_dict()
    scores = json.loads((tmp_path / "r" / "scores.json").read_text())
    del scores["order"]
    (tmp_path / "r" / "scores.json").write_text(json.dumps(scores))
    with pytest.raises(RubricArmError, match=r"scores.json: not a RunScores .*order"):
        read_run(tmp_path / "r")
    (tmp_path / "r" / "metadata.json").unlink()
    with pytest.raises(RubricArmError, match="metadata.json is missing"):
        read_run(tmp_path / "r")


def test_rerunning_a_finished_eval_judges_nothing(tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")  # 10 pairs in chunks of 4: the last is short
    config = EvalConfig(judge="random", benchmark="pairs", data=str(data), chunk_size=4, seed=5)
    first = run_eval(config, tmp_path / "r", progress=False)
    again = run_eval(config, tmp_path / "r", judge=Killer(RandomJudge(), 0), progress=False)
    assert [m.to_dict() for m in again] == [m.to_dict() for m in first]


def test_runner_refuses_a_different_config(tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")
    run_eval(
        EvalConfig(judge="random", benchmark="pairs", data=str(data)),
        tmp_path / "r",
        progress=False,
    )
    other = EvalConfig(judge="random", benchmark="pairs", data=str(data), seed=9)
    with pytest.raises(RubricArmError, match="differs in: seed"):
        run_eval(other, tmp_path / "r", progress=False)
    run_eval(other, tmp_path / "r", progress=False, force=True)
    assert json.loads((tmp_path / "r" / "config.json").read_text())["seed"] == 9


def test_report_holds_every_number(tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")
    for seed in (1, 2):
        config = EvalConfig(judge="random", benchmark="pairs", data=str(data), seed=seed)
        run_eval(config, tmp_path / f"r{seed}", progress=False)
    out = write_report(
        [tmp_path / "r1", tmp_path / "r2"], tmp_path / "rep" / "x.md", profile="mini"
    )
    text = (tmp_path / "rep" / "x.md").read_text()
    assert (tmp_path / "rep" / "x.png").stat().st_size > 1000
    assert json.loads((tmp_path / "rep" / "x.json").read_text()) == out
    assert "Profile: **mini**" in text and "![accuracy" in text
    for run in out["benchmarks"]["pairs"]["runs"]:
        for m in run["metrics"]:
            assert (
                f"{100 * m['value']:.1f} [{100 * m['low']:.1f}, {100 * m['high']:.1f}] (n={m['n']})"
                in text
            )
    with pytest.raises(RubricArmError, match="not a finished run"):
        write_report([tmp_path / "nothing"], tmp_path / "y.md")


@pytest.mark.slow
def test_rubric_arm_and_direct_judges_on_tiny_model(tiny_model_path: Path, tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl", 4)
    for name, args in (
        ("rubric-arm", {"preset": "tiny"}),
        ("direct", {"model": "tiny-random", "judge_max_tokens": 16}),
    ):
        config = EvalConfig(
            judge=name, benchmark="pairs", data=str(data), judge_args=args, chunk_size=2
        )
        metrics = run_eval(config, tmp_path / name, progress=False)
        records = [
            json.loads(line)
            for line in (tmp_path / name / "records.jsonl").read_text().splitlines()
        ]
        assert len(records) == 4 and metrics[-1].estimate.n == 4
        assert all(r["judgments"] for r in records)
        assert (records[0]["rubric"] is None) == (name == "direct")
        meta = json.loads((tmp_path / name / "metadata.json").read_text())
        assert meta["judge_config"]["judge_model"].startswith("tiny-random")
        assert meta["tokens"]["judge_completion"] > 0


def test_killed_cli_eval_resumes_with_identical_scores(
    tiny_model_path: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    data = write_pairs(tmp_path / "pairs.jsonl", 8)
    base = [
        sys.executable,
        "-m",
        "rubric_arm.cli",
        "eval",
        "--judge",
        "rubric-arm",
        "-J",
        "preset=tiny",
    ]
    base += ["--benchmark", "pairs", "--data", str(data), "--chunk-size", "2", "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    subprocess.run(
        [*base, "--out", str(tmp_path / "full")], check=True, env=env, capture_output=True
    )

    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [*base, "--out", str(cut)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    records = cut / "records.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if records.is_file() and len(records.read_bytes().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(records.read_bytes().splitlines())
    assert 2 <= done < 8, "the run was not cut mid-way"
    out = subprocess.run(
        [*base, "--out", str(cut)], check=True, env=env, capture_output=True, text=True
    )
    assert "resuming" in out.stdout
    assert json.loads((cut / "scores.json").read_text()) == json.loads(
        (tmp_path / "full" / "scores.json").read_text()
    )

    def strip(r: dict[str, Any]) -> dict[str, Any]:
        # Wall time differs, and the full run's rubrics are cache hits for the cut one.
        r = {k: v for k, v in r.items() if k != "seconds"}
        r["rubric"] = {k: v for k, v in r["rubric"].items() if k != "cached"}
        return r

    full_recs = [
        strip(json.loads(x)) for x in (tmp_path / "full" / "records.jsonl").read_text().splitlines()
    ]
    assert [strip(json.loads(x)) for x in records.read_text().splitlines()] == full_recs


def test_scalar_judge_on_tiny_reward_model(tiny_model_path: Path, tmp_path: Path) -> None:
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    folder = tmp_path / "tiny-rm"
    shutil.copytree(tiny_model_path, folder)
    for f in folder.glob("*.safetensors"):
        f.unlink()
    config = AutoConfig.from_pretrained(folder)
    config.num_labels = 1
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    judge = make_judge("scalar", {"model": str(folder)})
    records = judge.judge_pairs(PAIRS[:4], order="random", seed=0)
    again = judge.judge_pairs(PAIRS[:4], order="random", seed=1)
    assert [r.scores for r in records] == [r.scores for r in again]
    for r in records:
        assert r.scores is not None
        a, b = r.scores["A"], r.scores["B"]
        assert r.winner == ("A" if a > b else "B" if b > a else None)
    assert judge.config()["judge"] == "scalar"


def test_position_bias_from_both_order_records() -> None:
    from rubric_arm.pipeline import stable_hash

    def both(rid: str, label: str, ab: str | None, ba: str | None) -> JudgeRecord:
        r = rec(rid, "s", None, label)
        r.seed = 0
        r.judgments = [judgment("AB", ab), judgment("BA", ba)]
        return r

    # A judge that always says "Response A": winner in pair labels is A for order AB, B for BA.
    records = [both(f"p{i}", "A" if i % 2 else "B", "A", "B") for i in range(8)]
    m = by_name(score(get_benchmark("pairs"), records, tie_policy="wrong"))
    assert m["position: better first"].estimate.value == 1.0
    assert m["position: better second"].estimate.value == 0.0
    expected_mixed = (
        sum(
            (
                ("BA" if stable_hash(0, "order", r.id) % 2 else "AB")
                == ("AB" if r.label == "A" else "BA")
            )
            for r in records
        )
        / 8
    )
    assert m["position: mixed"].estimate.value == pytest.approx(expected_mixed)
    mean = (1 + 0 + expected_mixed) / 3
    variation = (abs(1 - mean) + abs(0 - mean) + abs(expected_mixed - mean)) / 3
    est = m["position: variation"].estimate
    assert est.value == pytest.approx(variation)
    # The CI resamples pairs with their three credits together, so it brackets the value.
    assert est.low <= est.value <= est.high and est.high > est.low and est.n == 8
    # Without both orders there are no position metrics.
    assert not any(
        k.startswith("position")
        for k in by_name(score(get_benchmark("pairs"), [rec("1", "s", "A")]))
    )


def test_report_paired_differences(tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")
    for seed in (1, 2):
        run_eval(
            EvalConfig(judge="random", benchmark="pairs", data=str(data), seed=seed),
            tmp_path / f"r{seed}",
            progress=False,
        )
    out = write_report([tmp_path / "r1", tmp_path / "r2"], tmp_path / "x.md")
    (d,) = out["benchmarks"]["pairs"]["paired_differences"]
    m1 = out["benchmarks"]["pairs"]["runs"][0]["metrics"][-1]["value"]
    m2 = out["benchmarks"]["pairs"]["runs"][1]["metrics"][-1]["value"]
    assert d["difference"] == pytest.approx(m1 - m2) and d["n"] == 10
    assert "Paired differences" in (tmp_path / "x.md").read_text()


def test_cli_build_pairs_with_tiny_policy(
    tiny_model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rubric_arm.cli import main

    rows = [
        {
            "key": str(i),
            "prompt": f"Write about topic {i}.",
            "instruction_id_list": ["punctuation:no_comma"],
            "kwargs": [{}],
        }
        for i in range(6)
    ]
    src = tmp_path / "ifeval.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "pairs.jsonl"
    argv = [
        "data",
        "build-pairs",
        "--source",
        "ifeval-prompts",
        "--data",
        str(src),
        "--policy",
        "tiny-random",
    ]
    argv += ["--samples", "3", "--max-new-tokens", "12", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    pairs = [json.loads(x) for x in out.read_text().splitlines()]
    assert f"{len(pairs)} pairs" in printed
    import ast

    outcomes = ast.literal_eval(printed.split("outcomes: ", 1)[1].strip())
    assert sum(outcomes.values()) == 6 and outcomes.get("paired", 0) == len(pairs)
    for p in pairs:
        good = p["response_a"] if p["label"] == "A" else p["response_b"]
        bad = p["response_b"] if p["label"] == "A" else p["response_a"]
        assert "," not in good and "," in bad
    assert (
        main(
            ["data", "build-pairs", "--source", "infobench", "--data", str(src), "--out", str(out)]
        )
        == 2
    )


def scored(rid: str, subset: str, a: float, b: float) -> JudgeRecord:
    r = rec(rid, subset, "A" if a > b else "B" if b > a else None)
    r.scores = {"A": a, "B": b}
    return r


def test_rb2_per_response_scores_use_official_rules() -> None:
    from rubric_arm.harness.scoring import rb2_best_of_n_item, rb2_ties_score

    bench = get_benchmark("rewardbench2")
    # Focus/1: correct 0.9 vs incorrect [0.9, 0.1, 0.2] -> tied top of 2 -> 1/2.
    records = [scored(f"Focus/1|c0r{j}", "Focus", 0.9, s) for j, s in enumerate([0.9, 0.1, 0.2])]
    # Ties: ref:1 with one correct, tied:1 with two correct answers.
    records += [scored(f"Ties/ref:1|c0r{j}", "Ties", 0.8, s) for j, s in enumerate([0.1, 0.3])]
    tied = {(i, j): (c, s) for i, c in enumerate([0.7, 0.9]) for j, s in enumerate([0.2, 0.4])}
    records += [scored(f"Ties/tied:1|c{i}r{j}", "Ties", c, s) for (i, j), (c, s) in tied.items()]
    m = by_name(score(bench, records))
    assert (
        m["Focus"].estimate.value
        == pytest.approx(rb2_best_of_n_item([0.9], [0.9, 0.1, 0.2]))
        == 0.5
    )
    expected = rb2_ties_score(
        [
            {"id": "ref:1", "correct": [0.8], "incorrect": [0.1, 0.3]},
            {"id": "tied:1", "correct": [0.7, 0.9], "incorrect": [0.2, 0.4]},
        ]
    )
    assert m["Ties"].estimate.value == pytest.approx(expected)
    assert "overall" not in m  # four subsets are missing


def test_scalar_exact_tie_is_wrong_and_rb2_notes_count_the_edge_cases() -> None:
    """A scalar judge's exact score tie scores 0 under every tie policy (and is not a parse
    failure); a NaN best-of-4 item gets 0 and is counted; a single-correct tied row is dropped
    and counted; ref:07 pairs with tied:7."""
    pairwise = get_benchmark("mini")
    records = [scored("p1", "s", 0.5, 0.5), scored("p2", "s", 0.9, 0.1)]
    for policy in ("half", "wrong"):
        overall = by_name(score(pairwise, records, tie_policy=policy))["overall"]
        assert overall.estimate.value == pytest.approx(0.5)
        assert overall.parse_failures == 0
    bench = get_benchmark("rewardbench2")
    nan = float("nan")
    recs = [scored(f"Focus/1|c0r{j}", "Focus", 0.9, s) for j, s in enumerate([nan, 0.1, 0.2])]
    recs += [scored(f"Focus/2|c0r{j}", "Focus", 0.9, s) for j, s in enumerate([0.3, 0.1, 0.2])]
    recs += [scored(f"Ties/ref:07|c0r{j}", "Ties", 0.8, s) for j, s in enumerate([0.1, 0.3])]
    recs += [scored(f"Ties/tied:7|c{i}r0", "Ties", c, 0.2) for i, c in enumerate([0.7, 0.9])]
    recs += [scored("Ties/tied:8|c0r0", "Ties", 0.7, 0.2)]
    m = by_name(score(bench, recs))
    assert m["Focus"].estimate.value == pytest.approx(0.5)
    assert "1 items with a NaN score got 0" in m["Focus"].note
    assert "1 tied rows with one correct answer dropped" in m["Ties"].note
    # ref:07 margin 0.5; tied:7 margin 0.5, spread 0.2: every term holds, tanh(0.5 / 0.2 - 1)
    assert m["Ties"].estimate.value == pytest.approx(1.0 + 0.01 * math.tanh(1.5))


def test_rb2_end_to_end_with_random_judge(tmp_path: Path) -> None:
    rows = []
    for subset in ("Factuality", "Precise IF", "Math", "Safety", "Focus"):
        for k in range(3):
            rows.append(
                {
                    "id": str(k),
                    "prompt": f"{subset} {k}",
                    "chosen": ["right"],
                    "rejected": ["w0", "w1", "w2"],
                    "num_correct": 1,
                    "num_incorrect": 3,
                    "total_completions": 4,
                    "models": [],
                    "subset": subset,
                    "additional_metadata": {},
                }
            )
    for k in range(3):
        for kind, n_c in (("ref", 1), ("tied", 2)):
            rows.append(
                {
                    "id": f"{kind}:{k}",
                    "prompt": f"ties {k}",
                    "chosen": [f"c{i}" for i in range(n_c)],
                    "rejected": ["w0", "w1"],
                    "num_correct": n_c,
                    "num_incorrect": 2,
                    "total_completions": n_c + 2,
                    "models": [],
                    "subset": "Ties",
                    "additional_metadata": {},
                }
            )
    data = tmp_path / "rb2.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    metrics = by_name(
        run_eval(
            EvalConfig(judge="random", benchmark="rewardbench2", data=str(data)),
            tmp_path / "r",
            progress=False,
        )
    )
    assert set(metrics) == {
        "Factuality",
        "Precise IF",
        "Math",
        "Safety",
        "Focus",
        "Ties",
        "overall",
    }
    six = [
        metrics[s].estimate.value
        for s in ("Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties")
    ]
    assert metrics["overall"].estimate.value == pytest.approx(sum(six) / 6)
    assert (
        metrics["overall"].estimate.low
        <= metrics["overall"].estimate.value
        <= metrics["overall"].estimate.high
    )
    # A pairwise judge skips Ties (no per-response scores), so there is no overall.
    from rubric_arm.harness.benchmarks.rewardbench2 import load_rewardbench2

    items = load_rewardbench2(data)
    assert not any(p.subset == "Ties" for p in expand(get_benchmark("rewardbench2"), items))
    assert (
        sum(
            p.subset == "Ties"
            for p in expand(get_benchmark("rewardbench2"), items, per_response=True)
        )
        == 18
    )


def test_logprob_judge_maps_orders_back(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rubric_arm.harness.judges import LogprobJudge

    judge = make_judge("direct-logprob", {"model": "tiny-random"})
    assert isinstance(judge, LogprobJudge) and judge.config()["judge_model"].startswith(
        "tiny-random"
    )
    real = judge.judge_pairs(PAIRS[:3], order="both", seed=0)
    for r in real:
        assert [j.order for j in r.judgments] == ["AB", "BA"] and r.status == "ok"
    # Always preferring whatever is shown first: AB -> A, BA -> the pair's B.
    monkeypatch.setattr(judge, "_margins", lambda texts: [(1.0, 10)] * len(texts))
    (r,) = judge.judge_pairs(PAIRS[:1], order="both", seed=0)
    assert [j.winner for j in r.judgments] == ["A", "B"] and r.winner is None
    monkeypatch.setattr(judge, "_margins", lambda texts: [(-2.0, 10)] * len(texts))
    (r,) = judge.judge_pairs(PAIRS[:1], order="as_given", seed=0)
    assert r.winner == "B" and r.correct == (PAIRS[0].label == "B")


def test_logprob_judge_passes_engine_options(tiny_model_path: Path) -> None:
    """-J engine.KEY=VALUE reaches direct-logprob's engine and its recorded config; a bare
    -J engine (another backend) is refused with the reason."""
    import torch

    judge = make_judge("direct-logprob", {"model": "tiny-random", "engine.dtype": "bfloat16"})
    assert judge.config()["engine.dtype"] == "bfloat16"
    assert next(judge.engine.model.parameters()).dtype == torch.bfloat16
    (r,) = judge.judge_pairs(PAIRS[:1], order="as_given", seed=0)
    assert r.status == "ok" and r.judgments[0].p_a is not None
    with pytest.raises(InputError, match="transformers engine"):
        make_judge("direct-logprob", {"model": "tiny-random", "engine": "vllm"})


def test_stats_bench_writes_json_and_markdown(tmp_path: Path) -> None:
    from rubric_arm.reproduce.bench_stats import run_stats_bench

    result = run_stats_bench(tmp_path / "b.json", n=50, resamples=200)
    assert set(result["seconds"]) == {
        "percentile",
        "bca",
        "grouped (RewardBench section, 5 subsets)",
        "paired difference",
    }
    assert all(v >= 0 for v in result["seconds"].values())
    assert "| bca |" in (tmp_path / "b.md").read_text()


def test_pairs_sharing_a_source_prompt_are_resampled_as_clusters(tmp_path: Path) -> None:
    pairs = [
        PreferencePair(
            f"p{i}", f"prompt {i // 4}", "good", "bad", "A", "s", {"group": f"q{i // 4}"}
        )
        for i in range(24)
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in pairs), encoding="utf-8")
    for seed in (1, 2):
        config = EvalConfig(judge="random", benchmark="pairs", data=str(data), seed=seed)
        run_eval(config, tmp_path / f"r{seed}", progress=False)
    records = [json.loads(line) for line in (tmp_path / "r1" / "records.jsonl").open()]
    assert {r["cluster"] for r in records} == {f"q{k}" for k in range(6)}
    out = write_report([tmp_path / "r1", tmp_path / "r2"], tmp_path / "x.md")
    overall = out["benchmarks"]["pairs"]["runs"][0]["metrics"][-1]
    assert (overall["name"], overall["n"], overall["clusters"]) == ("overall", 24, 6)
    (d,) = out["benchmarks"]["pairs"]["paired_differences"]
    assert d["clusters"] == 6 and d["n"] == 24
    text = (tmp_path / "x.md").read_text()
    assert "(n=24, 6 prompts)" in text and "resamples prompts, not pairs" in text


def test_report_appends_a_training_run(tmp_path: Path) -> None:
    data = write_pairs(tmp_path / "pairs.jsonl")
    run_eval(EvalConfig(judge="random", benchmark="pairs", data=str(data)), tmp_path / "r")
    train = tmp_path / "train"
    train.mkdir()
    step = {"phase": "cycle1-judge", "role": "judge", "step": 1, "reward": 1.0}
    (train / "metrics.jsonl").write_text(json.dumps(step) + "\n")
    (train / "state.json").write_text(json.dumps({"phases": {"cycle1-judge": {"seconds": 5}}}))
    write_report([tmp_path / "r"], tmp_path / "x.md", training=[train])
    text = (tmp_path / "x.md").read_text()
    assert f"## Training run `{train}`" in text and "![GRPO reward per step](x-rewards.png)" in text
    assert (tmp_path / "x-rewards.png").is_file()
