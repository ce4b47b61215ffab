"""The GRPO reward with the judge behind `rubric-arm serve`: references are made in-process by
the live policy, verdicts come from the service's /compare (both orders, its rubric cache)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rubric_arm.engines.base import Engine
from rubric_arm.errors import RubricArmError
from rubric_arm.policy_reward import RubricARMReward
from rubric_arm.trainer.policy.judging import order_verdicts
from rubric_arm.types import Prompt, SamplingParams, Winner


class RemoteReward(RubricARMReward):
    __name__ = "rubric_arm_remote"

    def __init__(
        self, url: str, policy: Engine | None, reference_max_tokens: int, *, timeout: float = 3600
    ) -> None:
        import httpx

        ref = SamplingParams(temperature=0.0, max_new_tokens=reference_max_tokens)
        super().__init__(None, policy, reference_sampling=ref)  # type: ignore[arg-type]
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout)

    def judge_against(
        self, prompts: Sequence[Prompt], candidates: Sequence[str], references: Sequence[str]
    ) -> list[tuple[Winner | None, Winner | None] | None]:
        pairs = [
            {"id": f"c{k}", "prompt": p, "response_a": c, "response_b": r}
            for k, (p, c, r) in enumerate(zip(prompts, candidates, references, strict=True))
        ]
        r = self.client.post(
            f"{self.url}/compare", json={"pairs": pairs, "order": "both", "seed": self.seed}
        )
        if r.status_code != 200:
            raise RubricArmError(f"reward server {self.url}: HTTP {r.status_code}: {r.text[:300]}")
        records: list[dict[str, Any]] = r.json()["records"]
        return [order_verdicts(rec) if rec.get("status") == "ok" else None for rec in records]
