"""Inspect AI model provider `rubric-arm/<preset>`: the full Rubric-ARM pipeline as a judge model.

Registered through the `inspect_ai` entry point of the package, so `--model rubric-arm/mini`
works without an import. The pairwise tasks (tasks/*.py) hand the pair to the provider in
`GenerateConfig.extra_body["rubric_arm_pair"]`; a plain model sees the same sample as a
direct-judge prompt. Concurrent samples are gathered into one batched pipeline call by the same
request batcher as `rubric-arm serve` (harness/batching.py).

`-M decoding=constrained|free` and `-M verdict=vote|prob` set the pipeline's switches (default:
the preset's); each sample's output metadata records the decoding, the verdict rule and p_a.
"""

from __future__ import annotations

from typing import Any

from inspect_ai.model import (
    ChatMessage,
    GenerateConfig,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

from rubric_arm.errors import InputError
from rubric_arm.harness.batching import RequestBatcher
from rubric_arm.records import JudgeRecord
from rubric_arm.types import PreferencePair, SamplingParams

PAIR_KEY = "rubric_arm_pair"
_SWITCHES = ("decoding", "verdict")
_ARM_OPTIONS = ("generator", "judge", "engine", "generator_template", "judge_template", *_SWITCHES)


class RubricARMAPI(ModelAPI):
    """One RubricARM per Inspect model; its judge() runs once per batch of concurrent samples."""

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),  # noqa: B008 - Inspect's own default
        **model_args: Any,
    ) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        unknown = set(model_args) - {*_ARM_OPTIONS, "votes", "order", "batch_size", "batch_wait"}
        if unknown:
            raise InputError(
                f"unknown -M option(s) for rubric-arm: {', '.join(sorted(unknown))}; known: "
                f"{', '.join((*_ARM_OPTIONS, 'votes', 'order', 'batch_size', 'batch_wait'))}"
            )
        from rubric_arm.harness.judges import check_switch

        for key in _SWITCHES:
            if key in model_args:
                check_switch(key, model_args[key])
        self.preset = model_name
        self.arm_options = {k: model_args[k] for k in _ARM_OPTIONS if k in model_args}
        self.votes = int(model_args["votes"]) if "votes" in model_args else None
        self.order = str(model_args.get("order", "as_given"))
        self.batch_size = int(model_args.get("batch_size", 64))
        self.batch_wait = float(model_args.get("batch_wait", 0.05))
        self._arm: Any = None
        self._batcher: RequestBatcher | None = None

    def arm(self) -> Any:
        if self._arm is None:
            from rubric_arm.pipeline import RubricARM

            self._arm = RubricARM.from_preset(self.preset, **self.arm_options)
        return self._arm

    def max_connections(self) -> int:
        return self.batch_size

    def _judge_sampling(self, config: GenerateConfig) -> SamplingParams:
        base = self.arm().judge_sampling
        return SamplingParams(
            temperature=base.temperature if config.temperature is None else config.temperature,
            top_p=base.top_p if config.top_p is None else config.top_p,
            max_new_tokens=base.max_new_tokens if config.max_tokens is None else config.max_tokens,
        )

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        raw = (config.extra_body or {}).get(PAIR_KEY)
        if not isinstance(raw, dict):
            raise InputError(
                "the rubric-arm model judges pairs: use one of the pairwise tasks in tasks/ "
                "(they pass the pair in extra_body['rubric_arm_pair'])"
            )
        pair = PreferencePair.from_dict(raw)
        key = (0 if config.seed is None else int(config.seed), self._judge_sampling(config))
        [record] = await self.batcher().run("judge", key, [pair])
        return _output(self.model_name, record)

    def batcher(self) -> RequestBatcher:
        """Concurrent samples with the same seed and sampling become one pipeline call."""
        if self._batcher is None:
            self._batcher = RequestBatcher(
                {
                    "judge": lambda key, pairs: self._run(
                        pairs, {"seed": key[0], "sampling": key[1]}
                    )
                },
                max_batch_items=self.batch_size,
                window_s=self.batch_wait,
                name="rubric-arm-inspect",
            )
        return self._batcher

    def _run(self, pairs: list[PreferencePair], settings: dict[str, Any]) -> list[JudgeRecord]:
        arm = self.arm()
        saved = arm.judge_sampling
        arm.judge_sampling = settings["sampling"]
        try:
            return arm.judge(pairs, order=self.order, seed=settings["seed"], votes=self.votes)
        finally:
            arm.judge_sampling = saved


def _output(model: str, record: JudgeRecord) -> ModelOutput:
    """The judge's text as the completion; rubric, verdict and tokens in metadata."""
    text = "\n\n".join(j.text for j in record.judgments) or (record.error or "")
    output = ModelOutput.from_content(model=model, content=text)
    prompt_tokens = sum(j.prompt_tokens for j in record.judgments)
    completion_tokens = sum(j.completion_tokens for j in record.judgments)
    output.usage = ModelUsage(
        input_tokens=prompt_tokens,
        output_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
    )
    output.metadata = {
        "winner": record.winner,
        "status": record.status,
        "rubric": record.rubric.text if record.rubric else None,
        "decoding": record.decoding,
        "verdict_rule": record.verdict_rule,
        "p_a": record.p_a,
        "record": record.to_dict(timings=False),
    }
    return output


@modelapi(name="rubric-arm")
def rubric_arm() -> type[ModelAPI]:
    return RubricARMAPI
