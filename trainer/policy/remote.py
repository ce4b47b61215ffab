"""The GRPO reward with the judge behind `rubric-arm serve`: references are made in-process by
the live policy, verdicts (and verdict probabilities, for `score="prob"`) come from the service's
/compare (both orders, its rubric cache)."""

from __future__ import annotations

from collections.abc import Sequence

from rubric_arm.engines.base import Engine
from rubric_arm.errors import RubricArmError
from rubric_arm.policy_reward import Comparison, RubricARMReward, Score
from rubric_arm.records import records_from_dicts
from rubric_arm.trainer.policy.judging import record_comparison
from rubric_arm.types import Prompt, SamplingParams


class RemoteReward(RubricARMReward):
    """RubricARMReward whose judge is a `rubric-arm serve` process at `url`; `score` as in
    RubricARMReward (the records of /compare carry each judgment's p_a)."""

    __name__ = "rubric_arm_remote"

    def __init__(
        self,
        url: str,
        policy: Engine | None,
        reference_max_tokens: int,
        *,
        timeout: float = 3600,
        score: Score = "binary",
    ) -> None:
        import httpx

        ref = SamplingParams(temperature=0.0, max_new_tokens=reference_max_tokens)
        super().__init__(None, policy, reference_sampling=ref, score=score)  # type: ignore[arg-type]
        self.url = url.rstrip("/")
        self.client = httpx.Client(timeout=timeout)

    def judge_against(
        self, prompts: Sequence[Prompt], candidates: Sequence[str], references: Sequence[str]
    ) -> list[Comparison | None]:
        pairs = [
            {"id": f"c{k}", "prompt": p, "response_a": c, "response_b": r}
            for k, (p, c, r) in enumerate(zip(prompts, candidates, references, strict=True))
        ]
        r = self.client.post(
            f"{self.url}/compare", json={"pairs": pairs, "order": "both", "seed": self.seed}
        )
        if r.status_code != 200:
            raise RubricArmError(f"reward server {self.url}: HTTP {r.status_code}: {r.text[:300]}")
        records = records_from_dicts(r.json()["records"], f"reward server {self.url}")
        return [record_comparison(rec) if rec.status == "ok" else None for rec in records]
