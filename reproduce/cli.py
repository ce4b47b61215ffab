"""`rubric-arm reproduce table2|efficiency|position-bias` and `rubric-arm regress check|update|freeze`."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rubric_arm.errors import InputError

TARGETS = {
    "table2": "the paper's Table 1 + Table 2 rows beside the published figures",
    "efficiency": "Table 7: seconds per 100 prompts, tokens per judgment, cache hits, tok/s",
    "position-bias": "Table 13: accuracy by response order and its variation",
}


def reproduce_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rubric-arm reproduce",
        description="Reproduction targets; any other --dotted.key value overrides the recipe.",
    )
    parser.add_argument("target", choices=list(TARGETS))
    parser.add_argument("--config", required=True, help="configs/reproduce/<target>-<profile>.yaml")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--smoke", action="store_true", help="apply the recipe's smoke: section")
    parser.add_argument("--force", action="store_true", help="start the target's runs over")
    args, rest = parser.parse_known_args(argv)
    from rubric_arm.trainer.config import load_config, parse_overrides

    overrides = parse_overrides(rest)
    if args.target == "table2":
        from rubric_arm.reproduce.table2 import Table2Config, reproduce_table2

        cfg = load_config(args.config, overrides, smoke=args.smoke, cls=Table2Config)
        return reproduce_table2(cfg, force=args.force, dry_run=args.dry_run)
    from rubric_arm.reproduce.evalset import EvalSetConfig, eval_steps
    from rubric_arm.reproduce.preflight import preflight
    from rubric_arm.reproduce.steps import format_plan, run_steps

    cfg = load_config(args.config, overrides, smoke=args.smoke, cls=EvalSetConfig)
    root = Path(cfg.out)
    if args.force and root.exists():
        shutil.rmtree(root)
    steps = eval_steps(cfg)
    print(format_plan(steps, f"reproduce-{args.target} ({cfg.profile} profile) into {root}:"))
    if args.dry_run:
        return 0
    models = [
        str(v)
        for j in cfg.judges
        for k, v in (j.get("args") or {}).items()
        if k in ("generator", "judge", "model")
    ]
    problems = preflight(
        needs_gpu=cfg.needs_gpu, benchmarks=[(cfg.benchmark, cfg.data)], models=models
    )
    if problems:
        print(f"cannot run the {cfg.profile} profile here:")
        for p in problems:
            print(f"  - {p}")
        return 2
    run_steps(steps, root)
    if args.target == "efficiency":
        from rubric_arm.reproduce.efficiency import write_efficiency_report as write
    else:
        from rubric_arm.reproduce.position_bias import write_position_report as write
    report = write(cfg)
    print(f"wrote {report} (+ .png, .json)")
    return 0


def regress_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rubric-arm regress", description="CI's accuracy regression check"
    )
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("check", help="compare today's figures with reports/baselines/ci.json")
    p.add_argument("--frozen-only", action="store_true", help="skip the tiny training run")
    p.add_argument("--baselines", type=Path, default=None)
    sub.add_parser("update", help="rewrite reports/baselines/ci.json from today's figures")
    p = sub.add_parser("freeze", help="rewrite the frozen judge outputs from finished runs")
    p.add_argument("--tiny-run", type=Path, required=True, help="a finished tiny training run")
    p.add_argument(
        "--eval-run",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="an eval run folder whose judge texts join the set under NAME",
    )
    args = parser.parse_args(argv)
    from rubric_arm.reproduce import regression as rg

    if args.action == "check":
        ok, text = rg.check(live=not args.frozen_only, baseline_path=args.baselines or rg.BASELINES)
        print(text)
        return 0 if ok else 1
    if args.action == "update":
        figures = rg.current_figures(live=True, progress=True)
        rg.write_baselines(figures)
        print(f"wrote {rg.BASELINES} ({len(figures)} figures)")
        return 0
    rows = rg.freeze_tiny(args.tiny_run)
    for item in args.eval_run:
        name, sep, folder = item.partition("=")
        if not sep:
            raise InputError(f"--eval-run {item!r} is not NAME=DIR")
        rows += rg.freeze_run(Path(folder), name)
    rg.write_frozen(rows)
    print(f"wrote {rg.FROZEN} ({len(rows)} pairs)")
    return 0


def main(argv: list[str]) -> int:
    """Entry for `rubric-arm reproduce ...` and `rubric-arm regress ...` (argv[0] picks)."""
    if argv[:1] == ["reproduce"]:
        return reproduce_main(argv[1:])
    if argv[:1] == ["regress"]:
        return regress_main(argv[1:])
    print("usage: rubric-arm reproduce|regress ...", file=sys.stderr)
    return 2
