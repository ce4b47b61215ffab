"""`rubric-arm train --config X.yaml [--dry-run] [--eval] [--smoke] [--key value ...]`."""

from __future__ import annotations

import argparse
import json
from typing import Any

USAGE = """rubric-arm train --config configs/X.yaml [--dry-run] [--eval] [--smoke] [--dotted.key value ...]

  --config   a YAML recipe (configs/paper.yaml, mini.yaml, tiny.yaml)
  --dry-run  print the plan (slices, steps per phase, batch sizes, memory per GPU) and stop
  --eval     after training, held-out judge accuracy of the trained models and of the starting
             ones under eval.decoding / eval.verdict (named in eval.json and the summary); the
             last line is `heldout_accuracy=<value> baseline=<value>`
  --smoke    apply the recipe's `smoke:` section (a minutes-long version of the same run)
  --stop-after PHASE  exit (code 3) once that phase is saved, e.g. cycle1-judge; rerun to go on
  any other --a.b value overrides that setting, e.g. --order generator_first --cycles 1
Rerunning the same command resumes: finished phases are skipped, an unfinished one restarts from
its last checkpoint. Under several processes: accelerate launch -m rubric_arm.cli train ...
"""


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="rubric-arm train", usage=USAGE, add_help=True)
    parser.add_argument("--config", default=None)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--eval", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the dry-run plan as JSON")
    parser.add_argument("--stop-after", default=None, metavar="PHASE")
    return parser.parse_known_args(argv)


def load(args: argparse.Namespace, rest: list[str]) -> Any:
    from rubric_arm.trainer.config import load_config, parse_overrides

    return load_config(args.config, parse_overrides(rest), smoke=args.smoke)


def main(argv: list[str]) -> int:
    args, rest = parse_args(argv)
    cfg = load(args, rest)
    from rubric_arm.trainer.plan import build_plan, format_plan

    if args.dry_run:
        plan = build_plan(cfg)
        print(json.dumps(plan, indent=2) if args.json else format_plan(plan))
        return 0
    from accelerate import PartialState

    from rubric_arm.trainer.loop import RubricARMTrainer, StopRequested

    trainer = RubricARMTrainer(cfg, stop_after=args.stop_after)
    try:
        final = trainer.run()
    except StopRequested as stop:
        print(f"stopped after phase {stop}; rerun the same command to continue")
        return 3
    state = PartialState()
    if state.is_main_process:
        print(f"final models: generator {final['generator']}, judge {final['judge']}")
    if args.eval and state.is_main_process:
        from rubric_arm.trainer.evaluate import evaluate_run, summary_lines

        result = evaluate_run(cfg, final, trainer.base_models())
        for line in summary_lines(result):
            print(line)
    return 0
