"""lm-eval model `rubric-arm`: the Rubric-ARM pipeline behind lm-eval's `generate_until`.

lm-eval 0.4.13 has no plugin discovery, so `rubric-arm lm-eval ...` imports this module (which
registers the model) and then runs lm-eval's own CLI. The rubric-arm tasks (package data: harness/lm_eval_tasks/)
carry each pair in the document (`pair_json`); every request of a run is judged in one batched
pipeline call. `decoding=constrained|free` and `verdict=vote|prob` in `--model_args` set the
pipeline's switches (default: the preset's).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from rubric_arm.errors import InputError
from rubric_arm.types import PreferencePair

TASKS_DIR = Path(__file__).resolve().parent / "lm_eval_tasks"


@register_model("rubric-arm")
class RubricARMLM(LM):
    """`--model rubric-arm --model_args preset=mini,votes=1,decoding=free,verdict=prob,...`."""

    def __init__(
        self, preset: str = "mini", votes: int | None = None, seed: int = 0, **overrides: Any
    ) -> None:
        super().__init__()
        from rubric_arm.harness.judges import SWITCHES, check_switch
        from rubric_arm.pipeline import RubricARM

        known = {"generator", "judge", "engine", "generator_template", "judge_template", *SWITCHES}
        unknown = set(overrides) - known - {"batch_size", "max_batch_size", "device"}
        if unknown:
            raise InputError(f"unknown rubric-arm model_args: {', '.join(sorted(unknown))}")
        for key in SWITCHES:
            if key in overrides:
                check_switch(key, overrides[key])
        self.arm = RubricARM.from_preset(
            preset, **{k: v for k, v in overrides.items() if k in known}
        )
        self.votes = None if votes is None else int(votes)
        self.seed = int(seed)

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        pairs = []
        for req in requests:
            doc = req.doc or {}
            if "pair_json" not in doc:
                raise InputError(
                    "the rubric-arm model judges pairs: use the rubric_arm_* tasks (rubric-arm lm-eval --tasks rubric_arm_mini)"
                )
            pairs.append(PreferencePair.from_dict(json.loads(doc["pair_json"])))
        records = self.arm.judge(pairs, order="as_given", seed=self.seed, votes=self.votes)
        out = []
        for rec in records:
            texts = "\n\n".join(j.text for j in rec.judgments)
            # The pipeline's verdict rule (majority, or mean P(A)) decides; no verdict, no line.
            out.append(f"{texts}\n\nWinner: Response {rec.winner}" if rec.winner else "No verdict.")
        return out

    def loglikelihood(
        self, requests: list[Any], disable_tqdm: bool = False
    ) -> list[tuple[float, bool]]:
        raise InputError(
            "rubric-arm is a generative pairwise judge: loglikelihood tasks do not apply"
        )

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        raise InputError(
            "rubric-arm is a generative pairwise judge: loglikelihood tasks do not apply"
        )


def main(argv: list[str] | None = None) -> None:
    """lm-eval's CLI with the rubric-arm model registered and its packaged tasks on the include path."""
    from lm_eval.__main__ import cli_evaluate

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] not in ("run", "ls", "validate", "-h", "--help"):
        args = ["run", *args]
    if "--include_path" not in args and TASKS_DIR.is_dir():
        args += ["--include_path", str(TASKS_DIR)]
    sys.argv = ["lm-eval", *args]
    cli_evaluate()
