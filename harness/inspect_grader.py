"""Rubric-ARM as the grader of any Inspect task: `rubric_arm_grader()` judges each sample's output
pairwise against a comparison answer (the sample's target, or a baseline model's answer to the same
input) with the model bound to the `grader` role.

The grader is taken through Inspect's model roles, as `model_graded_qa(model_role="grader")` takes
its own, so the same task grades with Rubric-ARM or with any other model:

    inspect eval my_task.py --model openai/gpt-4o-mini --model-role grader=rubric-arm/mini

A `rubric-arm/<preset>` grader receives the pair itself (`GenerateConfig.extra_body`, the
provider's PAIR_KEY) and runs the full pipeline: one rubric for the prompt, then the judge. Any other
model gets the direct pairwise prompt (`prompts/direct.yaml`) and its `Winner: Response A/B` line is
read with the project's verdict parser.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from inspect_ai.model import (
    ChatMessage,
    ChatMessageSystem,
    ChatMessageUser,
    GenerateConfig,
    Model,
    get_model,
    model_roles,
)
from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState
from inspect_ai.util import collect

from rubric_arm.errors import InputError
from rubric_arm.harness.inspect_provider import PAIR_KEY, RubricARMAPI
from rubric_arm.pipeline import ORDERS, shown_orders
from rubric_arm.rewards import prob_reward_vs_reference, reward_vs_reference
from rubric_arm.templates import load_template
from rubric_arm.types import PreferencePair, Prompt, Winner, prompt_text, validate_prompt
from rubric_arm.verdict import parse_winner

AGAINST: tuple[str, ...] = ("target", "model")
_SHOWN = {"AB": "A", "BA": "B"}  # the label the candidate is shown under in each order


class _Judged(NamedTuple):
    """One order's judgment, in the candidate's terms."""

    order: Literal["AB", "BA"]
    winner: Winner | None  # the shown label the grader picked (None: no verdict)
    p_candidate: float | None  # P(candidate better) at the verdict, when the grader records one
    text: str
    status: str | None
    rubric: str | None

    @property
    def candidate_won(self) -> bool:
        return self.winner == _SHOWN[self.order]

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate_as": _SHOWN[self.order],
            "winner": self.winner,
            "candidate_won": self.candidate_won,
            "p_candidate": self.p_candidate,
            "status": self.status,
        }


@scorer(metrics=[mean(), stderr()])
def rubric_arm_grader(
    against: Literal["target", "model"] = "target",
    *,
    model: str | Model | None = None,
    model_role: str = "grader",
    baseline: str | Model | None = None,
    baseline_role: str = "baseline",
    order: Literal["both", "random", "as_given"] = "both",
    seed: int = 0,
) -> Scorer:
    """Grade a sample's output pairwise against a comparison answer with Rubric-ARM (or any judge).

    Value: the candidate's win credit over the judged orders. By default (`order="both"`) the pair is
    judged twice, the candidate shown first as Response A and then as Response B, to cancel the
    judge's position bias: 1 if the candidate wins both orders, 0.5 if the orders split, 0 if it
    loses both (the project's `rewards.reward_vs_reference`). `order="random"` judges one order, a
    coin seeded by (seed, sample id, epoch), and `"as_given"` always shows the candidate as
    Response A; the value is then 1 or 0. An order without a verdict counts as a loss for the
    candidate, as in the policy reward; such scores carry `reason="grader_failed"` and the count
    in `metadata["unparsed"]`. The metric is the mean (the win rate against the comparison, ties
    at half) with its standard error.

    Args:
        against: The comparison answer. `"target"`: the sample's target (`Target.text`; the first
            target when a sample has several). `"model"`: the answer of a baseline model to the same
            input (the conversation up to the candidate's first reply), generated at scoring time.
        model: The grader model (a name or a Model). Takes precedence over `model_role`.
        model_role: The model role the grader is bound to (default `grader`, set with
            `--model-role grader=rubric-arm/mini` or `eval(..., model_roles={"grader": ...})`).
            Without a grader the sample fails with a message saying how to bind one: the model
            under evaluation never grades itself.
        baseline: With `against="model"`: the baseline model (a name or a Model), used when no model
            is bound to `baseline_role`.
        baseline_role: With `against="model"`: the role the baseline is bound to (default
            `baseline`).
        order: `"both"` (default), `"random"` or `"as_given"`, as above.
        seed: Seeds the `"random"` order, and a rubric-arm grader's generation (passed as
            `GenerateConfig.seed`; other graders keep their own generation settings).

    Returns:
        A scorer whose Score has the win credit as `value`, the candidate's text as `answer`, the
        grader's judgment text per order (and Rubric-ARM's rubric) as `explanation`, and in
        `metadata`: `against`, `grader`, the per-order `verdicts` (`candidate_as`, `winner`,
        `candidate_won`, `p_candidate`, `status`), `wins`, `unparsed`, `p_candidate` (mean over the
        orders of P(candidate better), when the grader records verdict probabilities, else None),
        `rubric`, and with `against="model"` the `baseline` name and its answer (`comparison`).

    Example:
        ```python
        from inspect_ai import Task, eval
        from inspect_ai.dataset import Sample
        from inspect_ai.solver import generate

        from rubric_arm.harness.inspect_grader import rubric_arm_grader

        task = Task(
            dataset=[Sample(input="Name a prime number.", target="2 is prime.")],
            solver=generate(),
            scorer=rubric_arm_grader(),
        )
        eval(task, model="openai/gpt-4o-mini", model_roles={"grader": "rubric-arm/mini"})
        ```
    """
    if against not in AGAINST:
        raise InputError(f"against must be one of {AGAINST}, got {against!r}")
    if order not in ORDERS:
        raise InputError(f"order must be one of {ORDERS}, got {order!r}")
    template = load_template("direct")

    async def judge(
        grader: Model,
        prompt: Prompt,
        candidate: str,
        comparison: str,
        o: Literal["AB", "BA"],
        key: str,
    ) -> _Judged:
        first, second = (candidate, comparison) if o == "AB" else (comparison, candidate)
        chat = template.render(prompt=prompt_text(prompt), response_a=first, response_b=second)
        messages: list[ChatMessage] = [
            ChatMessageSystem(content=m["content"])
            if m["role"] == "system"
            else ChatMessageUser(content=m["content"])
            for m in chat
        ]
        if isinstance(grader.api, RubricARMAPI):
            # The provider's winner and p_a refer to the pair it is given, built here in the shown
            # order, so they are in the shown labels whatever order the provider judges in.
            pair = PreferencePair(
                id=f"{key}|{o}", prompt=prompt, response_a=first, response_b=second
            )
            config = GenerateConfig(seed=seed, extra_body={PAIR_KEY: pair.to_dict()})
            output = await grader.generate(messages, config=config)
            meta = output.metadata or {}
            winner = meta.get("winner")
            p_a = meta.get("p_a")
            status, rubric = meta.get("status"), meta.get("rubric")
        else:
            output = await grader.generate(messages)
            winner, failure = parse_winner(output.completion)
            p_a, status, rubric = None, failure or "ok", None
        p_candidate = None
        if p_a is not None:
            p_candidate = float(p_a) if o == "AB" else round(1.0 - float(p_a), 6)
        return _Judged(o, winner, p_candidate, output.completion, status, rubric)

    async def score(state: TaskState, target: Target) -> Score:
        grader = _resolve(model, model_role, "grader")
        conversation = _conversation(state)
        prompt = _judge_prompt(conversation, state)
        candidate = state.output.completion
        meta: dict[str, Any] = {"against": against, "grader": str(grader)}
        if against == "target":
            comparison = target.text if len(target) <= 1 else target[0]
            if not comparison.strip():
                raise InputError(
                    f"sample {state.sample_id} has no target to grade against: give the samples "
                    "targets, or grade against a baseline model (against='model')"
                )
        else:
            base = _resolve(baseline, baseline_role, "baseline")
            comparison = (await base.generate(conversation)).completion
            meta.update(baseline=str(base), comparison=comparison)
        if not candidate.strip() or not comparison.strip():
            # An empty answer loses without a judge call (an empty candidate also against an
            # empty baseline answer).
            won = bool(candidate.strip())
            side = "the baseline's answer" if won else "the output"
            return Score(
                value=1.0 if won else 0.0,
                answer=candidate,
                explanation=f"{side} is empty: it loses without a judgment",
                reason=None if won else "no_response",
                metadata={**meta, "verdicts": [], "wins": None, "unparsed": 0, "p_candidate": None},
            )
        key = f"{state.sample_id}|{state.epoch}"
        orders = shown_orders(key, order, seed)
        judged = await collect(
            *(judge(grader, prompt, candidate, comparison, o, key) for o in orders)
        )
        if len(judged) == 2:
            value = reward_vs_reference(judged[0].winner, judged[1].winner)
        else:
            value = float(judged[0].candidate_won)
        probs = [j.p_candidate for j in judged]
        if all(p is None for p in probs):
            p_candidate = None
        elif len(probs) == 2:
            p_candidate = prob_reward_vs_reference(probs[0], probs[1])
        else:
            p_candidate = probs[0]
        unparsed = sum(j.winner is None for j in judged)
        rubric = next((j.rubric for j in judged if j.rubric), None)
        meta.update(
            verdicts=[j.to_dict() for j in judged],
            wins=sum(j.candidate_won for j in judged),
            unparsed=unparsed,
            p_candidate=p_candidate,
            rubric=rubric,
        )
        return Score(
            value=value,
            answer=candidate,
            explanation=_explanation(judged, against, rubric),
            reason="grader_failed" if unparsed else None,
            metadata=meta,
        )

    return score


def _resolve(given: str | Model | None, role: str, what: str) -> Model:
    """The model passed in, else the one bound to `role`; never the model under evaluation."""
    if given is not None:
        return get_model(given)
    if model_roles().get(role) is None:
        if what == "grader":
            hint = (
                f"bind one with --model-role {role}=rubric-arm/mini (or any model), "
                f"eval(..., model_roles={{'{role}': ...}}), or rubric_arm_grader(model=...)"
            )
        else:
            hint = (
                f"bind one with --model-role {role}=<provider/model>, "
                f"eval(..., model_roles={{'{role}': ...}}), or rubric_arm_grader(baseline=...)"
            )
        raise InputError(
            f"rubric_arm_grader: no {what} model is bound to the '{role}' role: {hint}"
        )
    return get_model(role=role)


def _conversation(state: TaskState) -> list[ChatMessage]:
    """What the candidate answered: the conversation up to its first reply (system messages and
    prompt templates of the solvers included), else the sample's input."""
    lead: list[ChatMessage] = []
    for message in state.messages:
        if message.role == "assistant":
            break
        lead.append(message)
    if lead and lead[-1].role == "user":
        return lead
    return (
        list(state.input)
        if isinstance(state.input, list)
        else [ChatMessageUser(content=state.input)]
    )


def _judge_prompt(conversation: list[ChatMessage], state: TaskState) -> Prompt:
    """The instruction the judge sees: the conversation's text turns as a chat (one user turn: its
    text), or the sample's input text when they do not form a valid prompt."""
    turns = [
        {"role": m.role, "content": m.text}
        for m in conversation
        if m.role in ("system", "user", "assistant")
    ]
    if len(turns) == 1 and turns[0]["role"] == "user":
        turns_or_text: Any = turns[0]["content"]
    else:
        turns_or_text = turns
    try:
        return validate_prompt(turns_or_text)
    except InputError:
        return validate_prompt(state.input_text, f"sample {state.sample_id} input")


def _explanation(judged: list[_Judged], against: str, rubric: str | None) -> str:
    wins = sum(j.candidate_won for j in judged)
    comparison = "the target" if against == "target" else "the baseline's answer"
    lines = [f"Candidate vs {comparison}: won {wins} of {len(judged)} order(s)."]
    if rubric:
        lines += ["", "Rubric:", rubric]
    for j in judged:
        verdict = f"Response {j.winner}" if j.winner else "none"
        outcome = "won" if j.candidate_won else "lost"
        lines += [
            "",
            f"[candidate shown as Response {_SHOWN[j.order]}] winner: {verdict} ({outcome})",
            j.text,
        ]
    return "\n".join(lines)
