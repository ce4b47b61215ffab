"""`rubric-arm policy {dpo,grpo,eval,study} --config X.yaml [--smoke] [--dotted.key value ...]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

USAGE = """rubric-arm policy COMMAND --config configs/policy-X.yaml [--smoke] [--dotted.key value ...]

commands:
  dpo     sample 2 responses per prompt, label them with the reward judge in both orders, keep
          agreeing pairs (dpo.label_margin M: pairs whose mean P(A) is at least M from 0.5),
          DPO (TRL DPOTrainer); dpo.iterations > 1 is IterDPO
  grpo    online GRPO (TRL GRPOTrainer) with the reward against the policy's greedy reference
          (grpo.score: binary verdicts or prob, the verdict probabilities)
  eval    held-out IFBench / IFEval-style prompts, official verifiers (--model PATH, default base)
  study   base + DPO + IterDPO + GRPO, all evaluated, report with paired CIs (--report FILE.md)
Rerunning a command resumes: finished iterations and evaluations are read back, not redone.
"""

COMMANDS = ("dpo", "grpo", "eval", "study")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rubric-arm policy", usage=USAGE)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--config", default=None)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--model", default=None, help="eval: the policy folder (default: base)")
    parser.add_argument("--report", default=None, help="study: where to write the Markdown")
    args, rest = parser.parse_known_args(argv)

    from rubric_arm.trainer.config import parse_overrides
    from rubric_arm.trainer.policy.config import load_policy_config

    cfg = load_policy_config(args.config, parse_overrides(rest), smoke=args.smoke)
    if args.command == "study":
        from rubric_arm.trainer.policy.study import run_study

        study = run_study(cfg, Path(args.report) if args.report else None)
        for name, res in study["results"].items():
            m = res["all"]["prompt_strict"]
            print(
                f"{name}: prompt-level strict {m['value']:.3f} [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}] n={m['n']}"
            )
        if args.report:
            print(f"report: {args.report}")
        return 0

    from rubric_arm.trainer.policy.runs import PolicyRun

    run = PolicyRun(cfg)
    if args.command == "dpo":
        for k, path in enumerate(run.dpo(), 1):
            print(f"iteration {k}: {path}")
    elif args.command == "grpo":
        print(f"model: {run.grpo()}")
    else:
        from rubric_arm.trainer.policy.data import load_policy_data
        from rubric_arm.trainer.policy.evaluate import evaluate_policy

        model = Path(args.model) if args.model else run.base_model()
        name = model.name if args.model else "base"
        res = evaluate_policy(
            model,
            load_policy_data(cfg).heldout,
            run.run_dir / "eval" / name,
            max_new_tokens=cfg.eval.max_new_tokens,
            batch_size=cfg.eval.batch_size,
            seed=cfg.eval.seed,
        )
        print(json.dumps(res["all"], indent=2))
    return 0
