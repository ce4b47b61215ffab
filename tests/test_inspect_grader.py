"""rubric_arm_grader: Rubric-ARM (or any model) as the pairwise grader of a plain Inspect task."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

inspect_ai = pytest.importorskip("inspect_ai")

from inspect_ai import Task, score  # noqa: E402
from inspect_ai import eval as inspect_eval  # noqa: E402
from inspect_ai.dataset import Sample  # noqa: E402
from inspect_ai.log import EvalLog  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402
from inspect_ai.solver import generate  # noqa: E402
from scripted_engine import ScriptedEngine  # noqa: E402

from rubric_arm.errors import InputError  # noqa: E402
from rubric_arm.harness.inspect_grader import rubric_arm_grader  # noqa: E402
from rubric_arm.pipeline import RubricARM  # noqa: E402
from rubric_arm.types import SamplingParams  # noqa: E402

NAME = "rubric_arm_grader"


def _output(text: str) -> ModelOutput:
    # usage set, so that Inspect does not fetch a tokenizer to count tokens (offline)
    out = ModelOutput.from_content(model="mockllm", content=text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


def policy(answers: dict[str, str]):
    """A mock policy: the answer keyed by a word of the last user message."""

    def answer(messages, tools, tool_choice, config) -> ModelOutput:
        text = messages[-1].text
        return _output(next(a for k, a in answers.items() if k in text))

    return get_model("mockllm/model", custom_outputs=answer, memoize=False)


def plain_grader(decide, seen: list[str] | None = None):
    """A non-rubric-arm grader: `decide(prompt text)` gives its whole reply."""

    def reply(messages, tools, tool_choice, config) -> ModelOutput:
        text = "\n".join(m.text for m in messages)
        if seen is not None:
            seen.append(text)
        return _output(decide(text))

    return get_model("mockllm/model", custom_outputs=reply, memoize=False)


def good_first(text: str) -> str:
    """Picks whichever of the two responses holds the word GOOD."""
    a = text.index("Response A:\n")
    b = text.index("Response B:\n")
    good_in_a = "GOOD" in text[a:b]
    return f"The better one is clear.\nWinner: Response {'A' if good_in_a else 'B'}"


def two_sample_task(**grader_args) -> Task:
    """Sample `win`: the policy says GOOD, the target BAD; sample `lose`: the other way round."""
    return Task(
        dataset=[
            Sample(id="win", input="Question win: what is two plus two?", target="BAD: five."),
            Sample(id="lose", input="Question lose: what is two plus three?", target="GOOD: 5."),
        ],
        solver=generate(),
        scorer=rubric_arm_grader(**grader_args),
    )


POLICY = {"win": "GOOD: four.", "lose": "BAD: six."}


def run(task: Task, tmp_path: Path, **kwargs) -> EvalLog:
    (log,) = inspect_eval(
        task,
        model=kwargs.pop("model", None) or policy(POLICY),
        log_dir=str(tmp_path / "logs"),
        display="none",
        **kwargs,
    )
    return log


def scores(log: EvalLog) -> dict[str, object]:
    assert log.status == "success", log.error and log.error.traceback[-3000:]
    return {s.id: s.scores[NAME] for s in log.samples}


def scripted_grader(probs=None):
    """`rubric-arm/tiny` with a scripted pipeline: the judge names the response holding GOOD."""
    model = get_model("rubric-arm/tiny", memoize=False)
    model.api._arm = RubricARM(
        ScriptedEngine("generator"),
        ScriptedEngine("judge", fingerprint="scripted-judge", probs_fn=probs),
        rubric_sampling=SamplingParams(max_new_tokens=64),
        judge_sampling=SamplingParams(max_new_tokens=64),
        cache=False,
    )
    return model


# ---- a rubric-arm grader ---------------------------------------------------------------------


def test_tiny_rubric_arm_grader_judges_both_orders_offline(tiny_model_path, tmp_path) -> None:
    """The real provider through a role name: the tiny random model (constrained decoding, so
    every judgment reaches a verdict) grades both samples in both orders."""
    log = run(two_sample_task(), tmp_path, model_roles={"grader": "rubric-arm/tiny"})
    for s in scores(log).values():
        assert s.value in (0.0, 0.5, 1.0)
        assert s.explanation and "[candidate shown as Response A]" in s.explanation
        assert "[candidate shown as Response B]" in s.explanation
        meta = s.metadata
        assert meta["grader"] == "rubric-arm/tiny" and meta["against"] == "target"
        assert [v["candidate_as"] for v in meta["verdicts"]] == ["A", "B"]
        assert s.value == 0.5 * meta["wins"]
        assert meta["rubric"]  # the pipeline's rubric came back through the output metadata
    assert log.results.scores[0].name == NAME
    assert {"mean", "stderr"} <= set(log.results.scores[0].metrics)


def test_rubric_arm_grader_maps_verdicts_and_probabilities_back(tmp_path) -> None:
    # P(shown A) = 0.8 when GOOD is shown first, else 0.2: P(candidate better) follows GOOD.
    def probs(text: str, vote: int) -> float:
        return 0.8 if text.index("GOOD") < text.index("BAD") else 0.2

    log = run(two_sample_task(), tmp_path, model_roles={"grader": scripted_grader(probs)})
    by_id = scores(log)
    win, lose = by_id["win"], by_id["lose"]
    assert (win.value, lose.value) == (1.0, 0.0)
    assert [v["winner"] for v in win.metadata["verdicts"]] == ["A", "B"]
    assert [v["winner"] for v in lose.metadata["verdicts"]] == ["B", "A"]
    assert [v["p_candidate"] for v in win.metadata["verdicts"]] == pytest.approx([0.8, 0.8])
    assert win.metadata["p_candidate"] == pytest.approx(0.8)
    assert lose.metadata["p_candidate"] == pytest.approx(0.2)
    assert (win.metadata["wins"], lose.metadata["wins"]) == (2, 0)
    assert win.answer == "GOOD: four." and win.reason is None
    assert win.metadata["rubric"].startswith("1. The response")
    assert log.results.scores[0].metrics["mean"].value == pytest.approx(0.5)


def test_random_order_judges_one_seeded_order(tmp_path) -> None:
    log = run(
        two_sample_task(order="random", seed=3), tmp_path, model_roles={"grader": scripted_grader()}
    )
    by_id = scores(log)
    assert (by_id["win"].value, by_id["lose"].value) == (1.0, 0.0)
    assert all(len(s.metadata["verdicts"]) == 1 for s in by_id.values())


# ---- a plain model as the grader (the direct prompt) --------------------------------------------


def test_plain_grader_always_a_splits_the_orders(tmp_path) -> None:
    seen: list[str] = []
    grader = plain_grader(lambda text: "Winner: Response A", seen)
    log = run(two_sample_task(), tmp_path, model_roles={"grader": grader})
    for s in scores(log).values():
        # A in both orders: the candidate wins when shown as A, loses when shown as B.
        assert s.value == 0.5
        assert [
            (v["candidate_as"], v["winner"], v["candidate_won"]) for v in s.metadata["verdicts"]
        ] == [
            ("A", "A", True),
            ("B", "A", False),
        ]
        assert s.metadata["p_candidate"] is None and s.metadata["unparsed"] == 0
    assert len(seen) == 4 and all("Winner: <Response A or Response B>" in t for t in seen)
    # the candidate is shown first in one order and second in the other
    assert any(t.index("GOOD: four.") < t.index("BAD: five.") for t in seen)
    assert any(t.index("BAD: five.") < t.index("GOOD: four.") for t in seen)


def test_plain_grader_verdicts_map_back_to_the_candidate(tmp_path) -> None:
    log = run(two_sample_task(), tmp_path, model_roles={"grader": plain_grader(good_first)})
    by_id = scores(log)
    assert (by_id["win"].value, by_id["lose"].value) == (1.0, 0.0)
    assert [v["winner"] for v in by_id["win"].metadata["verdicts"]] == ["A", "B"]
    assert "Winner: Response" in by_id["win"].explanation


def test_unparsed_verdicts_lose_and_are_flagged(tmp_path) -> None:
    log = run(two_sample_task(), tmp_path, model_roles={"grader": plain_grader(lambda t: "Hmm.")})
    for s in scores(log).values():
        assert s.value == 0.0 and s.metadata["unparsed"] == 2 and s.reason == "grader_failed"


def test_an_empty_output_loses_without_a_judgment(tmp_path) -> None:
    calls: list[str] = []
    log = run(
        two_sample_task(),
        tmp_path,
        model=policy({"win": "", "lose": "BAD: six."}),
        model_roles={"grader": plain_grader(good_first, calls)},
    )
    by_id = scores(log)
    assert by_id["win"].value == 0.0 and by_id["win"].reason == "no_response"
    assert len(calls) == 2  # only the non-empty sample was judged, once per order


# ---- against a baseline model, configuration errors, re-scoring a log ----------------------


def test_against_a_baseline_model(tmp_path) -> None:
    baseline = policy({"win": "BAD: baseline five.", "lose": "GOOD: baseline 5."})
    log = run(
        two_sample_task(against="model"),
        tmp_path,
        model_roles={"grader": plain_grader(good_first), "baseline": baseline},
    )
    by_id = scores(log)
    assert (by_id["win"].value, by_id["lose"].value) == (1.0, 0.0)
    assert by_id["win"].metadata["comparison"] == "BAD: baseline five."
    assert by_id["win"].metadata["baseline"] == "mockllm/model"


def test_missing_roles_and_bad_options_fail_clearly(tmp_path) -> None:
    log = run(two_sample_task(), tmp_path)
    assert log.status == "error" and "no grader model is bound" in log.error.message
    grader = plain_grader(good_first)
    log = run(two_sample_task(against="model"), tmp_path, model_roles={"grader": grader})
    assert log.status == "error" and "no baseline model is bound" in log.error.message
    with pytest.raises(InputError, match="against must be one of"):
        rubric_arm_grader(against="reference")
    with pytest.raises(InputError, match="order must be one of"):
        rubric_arm_grader(order="twice")


def test_rescore_an_existing_log(tmp_path) -> None:
    """Any task's log can be graded afterwards with inspect_ai.score (what `inspect score` runs)."""
    plain = Task(
        dataset=[Sample(id="win", input="Question win: two plus two?", target="BAD: five.")],
        solver=generate(),
    )
    log = run(plain, tmp_path)
    assert log.status == "success"
    graded = score(
        log, rubric_arm_grader(), model_roles={"grader": plain_grader(good_first)}, display="none"
    )
    assert graded.samples[0].scores[NAME].value == 1.0


def test_harness_package_stays_importable_without_inspect() -> None:
    code = (
        "import sys, rubric_arm.harness as h; assert 'inspect_ai' not in sys.modules; "
        "h.rubric_arm_grader; assert 'inspect_ai' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
