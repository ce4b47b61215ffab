"""Inspect integration: the provider, the mini task, and equality with `rubric-arm eval`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

inspect_ai = pytest.importorskip("inspect_ai")

from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import get_model  # noqa: E402
from scripted_engine import ScriptedEngine, judge_output  # noqa: E402

from rubric_arm.harness.judges import RubricARMJudge  # noqa: E402
from rubric_arm.harness.runner import EvalConfig, run_eval  # noqa: E402
from rubric_arm.pipeline import RubricARM  # noqa: E402
from rubric_arm.records import JudgeRecord  # noqa: E402
from rubric_arm.types import SamplingParams  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def hashed_verdict(text: str, vote: int) -> str:
    """A deterministic judge: A, B or no verdict, from a hash of everything it was shown."""
    k = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 3
    return "I cannot decide." if k == 2 else judge_output("AB"[k])


def scripted_arm() -> RubricARM:
    return RubricARM(
        ScriptedEngine("generator"),
        ScriptedEngine("judge", judge_fn=hashed_verdict, fingerprint="scripted-judge"),
        rubric_sampling=SamplingParams(max_new_tokens=64),
        judge_sampling=SamplingParams(max_new_tokens=64),
        cache=False,
    )


def test_inspect_and_runner_agree(tmp_path: Path) -> None:
    from tasks.mini import mini  # noqa: PLC0415

    model = get_model("rubric-arm/tiny")
    model.api._arm = scripted_arm()
    (log,) = inspect_eval(
        mini(seed=3), model=model, limit=24, log_dir=str(tmp_path / "logs"), display="none"
    )
    log = read_eval_log(log.location)
    assert log.status == "success"
    metrics = log.results.scores[0].metrics
    inspect_acc = metrics["overall"].value

    config = EvalConfig(judge="rubric-arm", benchmark="mini", limit=24, seed=3)
    judge = RubricARMJudge("rubric-arm", scripted_arm(), {})
    runner_metrics = {
        m.name: m for m in run_eval(config, tmp_path / "run", judge=judge, progress=False)
    }
    assert inspect_acc == pytest.approx(runner_metrics["overall"].estimate.value)
    for name, m in runner_metrics.items():
        assert metrics[name].value == pytest.approx(m.estimate.value)
        assert metrics[f"{name} ci_low"].value == pytest.approx(m.estimate.low)
        assert metrics[f"{name} ci_high"].value == pytest.approx(m.estimate.high)
    # Not every verdict is the same: the comparison is not between two constant columns.
    answers = {s.scores["pairwise_scorer"].answer for s in log.samples}
    assert {"A", "B", "none"} <= answers
    sample = log.samples[0]
    assert sample.output.metadata["rubric"].startswith("1. The response")


def test_provider_rejects_unknown_options_and_plain_prompts() -> None:
    from rubric_arm.errors import InputError

    with pytest.raises(InputError, match="unknown -M option"):
        get_model("rubric-arm/tiny", colour="red")


def rb_rows() -> list[dict]:
    subsets = [
        "alpacaeval-easy",
        "mt-bench-easy",
        "math-prm",
        "hep-go",
        "llmbar-natural",
        "donotanswer",
    ]
    return [
        {
            "prompt": f"question {i} about {s}",
            "chosen": f"a careful answer {i}",
            "chosen_model": "m1",
            "rejected": f"a sloppy answer {i} {s}",
            "rejected_model": "m2",
            "subset": s,
            "id": i,
        }
        for i, s in enumerate(subsets * 4)
    ]


def test_rewardbench_task_matches_runner_sections(tmp_path: Path) -> None:
    import json

    from tasks.rewardbench import rewardbench

    data = tmp_path / "rb.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rb_rows()), encoding="utf-8")
    model = get_model("rubric-arm/tiny")
    model.api._arm = scripted_arm()
    (log,) = inspect_eval(
        rewardbench(data=str(data), seed=1),
        model=model,
        log_dir=str(tmp_path / "l"),
        display="none",
    )
    assert log.status == "success" and log.results is not None
    metrics = log.results.scores[0].metrics
    config = EvalConfig(judge="rubric-arm", benchmark="rewardbench", data=str(data), seed=1)
    judge = RubricARMJudge("rubric-arm", scripted_arm(), {})
    runner = {m.name: m for m in run_eval(config, tmp_path / "run", judge=judge, progress=False)}
    for name in (
        "section: Chat",
        "section: Reasoning",
        "section: Chat Hard",
        "section: Safety",
        "overall",
    ):
        assert metrics[name].value == pytest.approx(runner[name].estimate.value)
        assert metrics[f"{name} ci_low"].value == pytest.approx(runner[name].estimate.low)
    assert len({runner[n].estimate.value for n in runner}) > 1


def rmbench_rows() -> list[dict]:
    return [
        {
            "id": i,
            "prompt": f"explain thing {i}",
            "chosen": [f"good {i} short", f"good {i} plain", f"good {i} **md**"],
            "rejected": [f"bad {i} short", f"bad {i} plain", f"bad {i} **md**"],
            "domain": d,
        }
        for i, d in enumerate(["chat", "code", "math", "safety-refuse"] * 2)
    ]


def jb_rows() -> list[dict]:
    return [
        {
            "pair_id": f"p{i}",
            "original_id": str(i),
            "source": "mmlu-pro" if i % 2 else "livebench-math",
            "question": f"q {i}",
            "response_model": "m",
            "response_A": f"answer one {i}",
            "response_B": f"answer two {i}",
            "label": "A>B" if i % 3 else "B>A",
        }
        for i in range(8)
    ]


@pytest.mark.parametrize(
    ("benchmark", "module", "rows"),
    [("rm-bench", "rmbench", rmbench_rows), ("judgebench", "judgebench", jb_rows)],
)
def test_multi_response_and_both_order_tasks_match_runner(
    tmp_path: Path, benchmark: str, module: str, rows
) -> None:
    import importlib
    import json

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows()), encoding="utf-8")
    task_fn = getattr(importlib.import_module(f"tasks.{module}"), module)
    model = get_model("rubric-arm/tiny")
    model.api._arm = scripted_arm()
    (log,) = inspect_eval(
        task_fn(data=str(data), seed=2), model=model, log_dir=str(tmp_path / "l"), display="none"
    )
    assert log.status == "success" and log.results is not None, (
        log.error and log.error.traceback[-3000:]
    )
    metrics = log.results.scores[0].metrics
    config = EvalConfig(judge="rubric-arm", benchmark=benchmark, data=str(data), seed=2)
    judge = RubricARMJudge("rubric-arm", scripted_arm(), {})
    runner = {m.name: m for m in run_eval(config, tmp_path / "run", judge=judge, progress=False)}
    assert runner
    for name, m in runner.items():
        if m.estimate.value == m.estimate.value:  # skip NaN
            assert metrics[name].value == pytest.approx(m.estimate.value), name


def test_partial_items_are_left_out_of_interim_metrics() -> None:
    from inspect_ai.scorer import SampleScore, Score

    from rubric_arm.harness.inspect_tasks import records_from_scores

    def sample(pid: str, n: int) -> SampleScore:
        meta = {
            "pair_id": pid,
            "item_samples": n,
            "order": "AB",
            "winner": "A",
            "label": "A",
            "subset": "chat",
            "index": 0,
        }
        return SampleScore(score=Score(value=1.0, metadata=meta), sample_id=pid)

    partial = [sample(f"7|c0r{j}", 9) for j in range(3)] + [sample("8|c0r0", 1)]
    assert [r.id for r in records_from_scores(partial)] == ["8|c0r0"]


def test_sample_arriving_while_a_batch_runs_is_not_left_waiting() -> None:
    """Regression: a sample queued during a running batch used to wait forever (CI hang)."""
    import asyncio
    import threading

    from inspect_ai.model import ChatMessageUser, GenerateConfig

    from rubric_arm.types import PreferencePair

    api = get_model("rubric-arm/tiny", batch_wait=0.0).api
    running = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def slow_run(pairs, settings):  # noqa: ANN001, ANN202
        calls.append(len(pairs))
        running.set()
        release.wait(10)
        return [JudgeRecord(p.id, None, None, "ok", winner="A") for p in pairs]

    api._run = slow_run

    def config(i: int) -> GenerateConfig:
        pair = PreferencePair(id=f"p{i}", prompt="q", response_a="a", response_b="b")
        return GenerateConfig(extra_body={"rubric_arm_pair": pair.to_dict()})

    async def scenario() -> list[str]:
        msg = [ChatMessageUser(content="x")]
        first = asyncio.create_task(api.generate(msg, [], "none", config(0)))
        await asyncio.to_thread(running.wait, 10)
        second = asyncio.create_task(api.generate(msg, [], "none", config(1)))
        await asyncio.sleep(0.05)
        release.set()
        outs = await asyncio.wait_for(asyncio.gather(first, second), timeout=10)
        return [o.metadata["winner"] for o in outs]

    assert asyncio.run(scenario()) == ["A", "A"]
    assert calls == [1, 1]


def test_relative_data_path_is_taken_from_the_launch_directory(tmp_path: Path, monkeypatch) -> None:
    """Inspect runs a task from its file's folder; `-T data=x.jsonl` still means $PWD/x.jsonl."""
    from rubric_arm.harness.inspect_tasks import launch_relative

    launch, task_dir = tmp_path / "launch", tmp_path / "tasks"
    launch.mkdir()
    task_dir.mkdir()
    (launch / "rb.jsonl").write_text("{}\n")
    monkeypatch.setenv("PWD", str(launch))
    monkeypatch.chdir(task_dir)
    assert launch_relative("rb.jsonl") == str(launch / "rb.jsonl")
    assert launch_relative(None) is None
    assert launch_relative("missing.jsonl") == "missing.jsonl"  # the loader names it
    (task_dir / "rb.jsonl").write_text("{}\n")
    assert launch_relative("rb.jsonl") == "rb.jsonl"  # a file beside the task wins
