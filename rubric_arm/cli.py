"""The `rubric-arm` command: prepare models, write rubrics, judge pairs, run benchmarks."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rubric_arm.checklist import AGGREGATIONS
from rubric_arm.data.jsonl import changed_settings
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.presets import PRESETS
from rubric_arm.records import JudgeRecord
from rubric_arm.types import DECODINGS, VERDICT_RULES

EXAMPLES = Path(__file__).parent / "data" / "examples.jsonl"

_DEFAULT_DECODING = ", ".join(f"{name} {p.decoding}" for name, p in PRESETS.items())


def _add_switches(g: Any, *, verdict: bool = True) -> None:
    """--decoding and (for commands that pick a winner) --verdict; None keeps the preset's."""
    g.add_argument(
        "--decoding",
        choices=DECODINGS,
        help="constrained: outputs follow the template's grammar; free: plain sampling "
        f"(default: the preset's: {_DEFAULT_DECODING})",
    )
    if verdict:
        g.add_argument(
            "--verdict",
            choices=VERDICT_RULES,
            help="vote: majority of the parsed winners; prob: the side of the mean P(A) at the "
            "verdict over samples and orders (default: the preset's, vote)",
        )


def _add_model_options(p: argparse.ArgumentParser, *, verdict: bool = True) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--preset", default="mini", help=f"one of: {', '.join(PRESETS)} (default: mini)")
    g.add_argument("--generator", help="rubric generator: model name, hub id or local folder")
    g.add_argument("--judge", help="judge: model name, hub id or local folder")
    g.add_argument(
        "--engine", choices=["transformers", "vllm", "openai"], help="generation backend"
    )
    g.add_argument(
        "-E",
        "--engine-arg",
        action="append",
        metavar="KEY=VALUE",
        help="engine option, repeatable (vllm: tensor_parallel_size=2, "
        "gpu_memory_utilization=0.9; openai: base_url=URL1,URL2, tokenizer=FOLDER)",
    )
    g.add_argument("--generator-template", help="built-in template name or a template file")
    g.add_argument("--judge-template", help="built-in template name or a template file")
    g.add_argument("--rubric-max-tokens", type=at_least_one, help="max new tokens for a rubric")
    g.add_argument("--judge-max-tokens", type=at_least_one, help="max new tokens for a judgment")
    g.add_argument(
        "--temperature", type=finite_nonnegative, help="judge sampling temperature (0 = greedy)"
    )
    g.add_argument("--top-p", type=finite_nonnegative, help="judge nucleus sampling")
    g.add_argument("--max-context", type=at_least_one, help="cap on prompt + generation tokens")
    g.add_argument("--no-cache", action="store_true", help="bypass the persistent rubric cache")
    g.add_argument(
        "--aggregation",
        choices=AGGREGATIONS,
        help="implicit: the judge writes the verdict (the paper); explicit: the judge answers "
        "one Meets/Fails check per hard rule and response, the verdict is computed from them "
        "(default: the preset's)",
    )
    _add_switches(g, verdict=verdict)


def at_least_one(text: str) -> int:
    """argparse type: an integer >= 1 (limits, votes, chunk sizes, token budgets)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def finite_nonnegative(text: str) -> float:
    """argparse type: a finite number >= 0 (temperatures, top-p)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _build(args: argparse.Namespace):
    from dataclasses import replace

    from rubric_arm.harness.judges import parse_judge_args
    from rubric_arm.pipeline import RubricARM
    from rubric_arm.presets import get_preset

    preset = get_preset(args.preset)
    rubric_sampling = preset.rubric_sampling
    if args.rubric_max_tokens:
        rubric_sampling = replace(rubric_sampling, max_new_tokens=args.rubric_max_tokens)
    judge_sampling = preset.judge_sampling
    for flag, name in (
        ("judge_max_tokens", "max_new_tokens"),
        ("temperature", "temperature"),
        ("top_p", "top_p"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            judge_sampling = replace(judge_sampling, **{name: value})
    return RubricARM.from_preset(
        preset,
        generator=args.generator,
        judge=args.judge,
        engine=args.engine,
        generator_template=args.generator_template,
        judge_template=args.judge_template,
        rubric_sampling=rubric_sampling,
        judge_sampling=judge_sampling,
        cache=not args.no_cache,
        max_context=args.max_context,
        decoding=args.decoding,
        verdict=getattr(args, "verdict", None),
        aggregation=getattr(args, "aggregation", None),
        engine_kwargs=parse_judge_args(args.engine_arg or []),
    )


def cmd_models(args: argparse.Namespace) -> int:
    from rubric_arm.models import list_models, prepare_model

    if args.action == "prepare":
        path = prepare_model(args.name)
        print(f"{args.name}: ready at {path}")
        return 0
    for m in list_models():
        print(json.dumps(m, default=str))
    return 0


def cmd_rubric(args: argparse.Namespace) -> int:
    arm = _build(args)
    result = arm.rubrics([args.prompt])[0]
    if args.json:
        # Cache keys hold the decoding, so a cached rubric was also made with this one.
        print(json.dumps({**result.to_dict(), "decoding": arm.decoding}, ensure_ascii=False))
        return 0
    if result.status != "ok":
        print("error: the prompt does not fit the generator's context", file=sys.stderr)
        return 1
    print(result.text.strip())
    n, valid = len(result.rubric.criteria), len(result.rubric.valid_criteria)
    print(
        f"\n[{n} criteria, {valid} tagged; cached: {result.cached}; decoding: {arm.decoding}]",
        file=sys.stderr,
    )
    return 0


def _print_record(rec: JudgeRecord) -> None:
    rubric = rec.rubric
    print("=== Rubric ===")
    print((rubric.text if rubric else "").strip() or "(none)")
    for j in rec.judgments:
        print(f"\n=== Judge output (order {j.order}, vote {j.vote}) ===")
        print(j.text.strip())
    print("\n=== Verdict ===")
    if rec.status != "ok":
        print(f"not judged: {rec.status}: {rec.error}")
        return
    failures = sorted({j.failure for j in rec.judgments if j.failure})
    if rec.winner is None and failures:
        print(f"winner: none (parse failure: {', '.join(failures)})")
    elif rec.winner is None:
        print("winner: none (the orders / votes are tied)")
    else:
        print(f"winner: Response {rec.winner}")
    fmt = all(j.format_ok for j in rec.judgments)
    criteria = f"{rubric.n_criteria} ({rubric.n_valid} tagged)" if rubric else "None (None tagged)"
    print(f"format ok: {fmt}; rubric criteria: {criteria}")
    p_a = rec.p_a
    print(
        f"decoding: {rec.decoding}; verdict rule: {rec.verdict_rule}; "
        f"P(A better): {'not read' if p_a is None else f'{p_a:.3f}'}"
    )
    if rec.truncated:
        print(f"truncated (tokens removed): {rec.truncated}")


def cmd_judge(args: argparse.Namespace) -> int:
    single = args.prompt is not None
    if single == (args.input is not None):
        raise InputError("give either --prompt with --response-a/--response-b, or --input FILE")
    if single:
        if args.response_a is None or args.response_b is None:
            raise InputError("--prompt needs both --response-a and --response-b")
        for flag, value in (
            ("--prompt", args.prompt),
            ("--response-a", args.response_a),
            ("--response-b", args.response_b),
        ):
            if not value.strip():
                raise InputError(f"{flag} is empty")
        pair = {
            "id": "cli",
            "prompt": args.prompt,
            "response_a": args.response_a,
            "response_b": args.response_b,
        }
        arm = _build(args)
        order = args.order or "as_given"
        rec = arm.judge([pair], order=order, votes=args.votes, seed=args.seed)[0]
        if args.json:
            print(json.dumps(rec.to_dict(), ensure_ascii=False))
        else:
            _print_record(rec)
        return 0 if rec.status == "ok" else 1
    if args.output is None:
        raise InputError("--input needs --output FILE (results are appended and resumable)")
    return _judge_file(args)


def _row_ids(rows: list[tuple[int, Any]]) -> list[str]:
    """The id of every input row (its line number when it has none); duplicates are refused."""
    ids, first = [], {}
    for line, row in rows:
        rid = row.get("id") if isinstance(row, dict) else None
        rid = str(line if rid is None else rid)
        if rid in first:
            raise InputError(
                f"id {rid!r} occurs on line {first[rid]} and on line {line}: every row needs its "
                "own id"
            )
        first[rid] = line
        ids.append(rid)
    return ids


def _quiet(arm: Any) -> None:
    """--quiet: no progress bars from the engines or from transformers' weight loading."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    for engine in (arm.generator_engine, arm.judge_engine):
        if hasattr(engine, "progress"):
            engine.progress = False


def _judge_file(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rubric_arm.data.jsonl import ResumableWriter, read_jsonl
    from rubric_arm.data.runfiles import RunLock, refuse_foreign, refuse_same_file
    from rubric_arm.pipeline import mark_rubric_reuse
    from rubric_arm.records import read_records
    from rubric_arm.types import PreferencePair

    output, manifest_path = Path(args.output), Path(f"{args.output}.run.json")
    refuse_same_file(args.input, output, source_flag="--input", output_flag="--output")
    rows = list(read_jsonl(args.input))
    if not rows:
        raise InputError(f"{args.input}: no rows")
    ids = _row_ids(rows)
    prompts = [row.get("prompt") if isinstance(row, dict) else None for _, row in rows]
    with RunLock(output):
        refuse_foreign(output, manifest_path)
        writer = ResumableWriter(output, chunk_size=args.chunk_size, expected_ids=ids)
        start = writer.scan()
        arm = _build(args)
        if args.quiet:
            _quiet(arm)
        order = args.order or "random"
        manifest = _run_manifest(args, arm, order)
        _check_manifest(manifest_path, manifest, resuming=start > 0)
        seen_rubrics: set[str] = set()
        if start:
            mark_rubric_reuse(read_records(output)[:start], prompts[:start], seen_rubrics)
        with writer.open():
            if start:
                print(f"resuming: {start}/{len(rows)} rows already in {output}", file=sys.stderr)
            bar = tqdm(
                total=len(rows), initial=start, desc="pairs", unit="pair", disable=args.quiet
            )
            started, generated = time.perf_counter(), 0
            for lo in range(start, len(rows), args.chunk_size):
                chunk = rows[lo : lo + args.chunk_size]
                records: list[JudgeRecord | None] = [None] * len(chunk)
                todo, positions = [], []
                for k, (line, row) in enumerate(chunk):
                    try:
                        if isinstance(row, InputError):
                            raise row
                        if isinstance(row, dict):
                            row = {**row, "id": ids[lo + k]}
                        todo.append(PreferencePair.from_dict(row, line))
                        positions.append(k)
                    except InputError as exc:
                        if args.strict:
                            raise
                        records[k] = JudgeRecord(
                            ids[lo + k], None, None, "invalid_input", error=str(exc)
                        )
                if todo:
                    out = arm.judge(
                        todo,
                        order=order,
                        votes=args.votes,
                        seed=args.seed,
                        desc=f"judge rows {lo}+",
                    )
                    for k, rec in zip(positions, out, strict=False):
                        records[k] = rec
                        generated += sum(j.completion_tokens for j in rec.judgments)
                        if rec.rubric and not rec.rubric.cached:
                            generated += rec.rubric.completion_tokens
                    with open(f"{output}.timings.jsonl", "a", encoding="utf-8") as log:
                        for rec in out:
                            log.write(json.dumps(rec.timings()) + "\n")
                done = [r for r in records if r is not None]
                mark_rubric_reuse(done, prompts[lo : lo + len(done)], seen_rubrics)
                writer.write_chunk([r.to_dict(timings=False) for r in done])
                bar.update(len(chunk))
            bar.close()
    seconds = time.perf_counter() - started
    print(
        f"this run: {len(rows) - start} rows in {seconds:.1f} s; {generated} tokens generated "
        f"({generated / max(seconds, 1e-9):.1f} tok/s)",
        file=sys.stderr,
    )
    _print_summary(args.output, arm.cache.stats())
    return 0


def _run_manifest(args: argparse.Namespace, arm: Any, order: str) -> dict[str, Any]:
    """Everything that decides the records of a file run; a resume must match it exactly."""
    import hashlib
    from dataclasses import asdict

    from rubric_arm import __version__

    return {
        "input": str(Path(args.input).resolve()),
        "input_sha256": hashlib.sha256(Path(args.input).read_bytes()).hexdigest(),
        "generator": arm.generator_engine.fingerprint,
        "judge": arm.judge_engine.fingerprint,
        "engine": [arm.generator_engine.name, arm.judge_engine.name],
        "generator_template": arm.generator_template.version,
        "judge_template": arm.judge_template.version,
        "rubric_sampling": asdict(arm.rubric_sampling),
        "judge_sampling": asdict(arm.judge_sampling),
        "order": order,
        "decoding": arm.decoding,
        "verdict": arm.verdict,
        "max_rubric_items": arm.max_rubric_items,
        "aggregation": arm.aggregation,
        "votes": args.votes or arm.default_votes,
        "seed": args.seed,
        "chunk_size": args.chunk_size,
        "max_context": args.max_context,
        "rubric_arm": __version__,
    }


def _check_manifest(path: Path, manifest: dict[str, Any], *, resuming: bool) -> None:
    """Refuse to resume a file that was started with other settings; record them otherwise."""
    if resuming and path.is_file():
        changed = changed_settings(path, manifest)
        if changed:
            raise InputError(
                f"the output was started with other settings ({', '.join(changed)} differ; see {path}): "
                "use another --output, or delete the output to start over"
            )
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def _print_summary(path: str, cache_stats: dict[str, Any]) -> None:
    from rubric_arm.records import read_records

    results = read_records(path)
    status = Counter(r.status for r in results)
    ok = [r for r in results if r.status == "ok"]
    labelled = [r for r in ok if r.label is not None]
    correct = sum(bool(r.correct) for r in labelled)
    no_winner = sum(r.winner is None for r in ok)
    judgments = [j for r in ok for j in r.judgments]
    parse_fail = sum(j.winner is None for j in judgments)
    fmt_ok = sum(j.format_ok for j in judgments)
    truncated = sum(bool(r.truncated) for r in results)
    bad_rubric = sum(1 for r in ok if r.rubric and not r.rubric.valid)
    lines = [
        f"rows: {len(results)} ({', '.join(f'{k} {v}' for k, v in sorted(status.items()))})",
        f"judgments: {len(judgments)}; parse failures: {parse_fail}; format ok: {fmt_ok}",
        f"pairs without a winner: {no_winner}; with truncated responses: {truncated}; "
        f"rubrics without a tagged item: {bad_rubric}",
    ]
    if ok:
        decodings = ", ".join(sorted({str(r.decoding) for r in ok}))
        rules = ", ".join(sorted({str(r.verdict_rule) for r in ok}))
        with_p = sum(r.p_a is not None for r in ok)
        lines.append(
            f"decoding: {decodings}; verdict rule: {rules}; pairs with P(A) read: {with_p}"
        )
    if labelled:
        lines.append(
            f"accuracy (winner == label, no winner counts as wrong): {correct}/{len(labelled)} "
            f"= {correct / len(labelled):.3f} (point estimate; the harness adds CIs)"
        )
    lines.append(
        f"rubric cache: {cache_stats.get('hits', 0)} hits, {cache_stats.get('misses', 0)} misses"
    )
    for line in lines:
        print(line, file=sys.stderr)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what in ("harness", "train", "summary", "decoding", "rollouts"):
        out = Path(args.output or f"reports/bench_{args.what}.json")
        if args.what == "decoding":
            from rubric_arm.reproduce.bench_decoding import render_markdown, run_decoding_bench

            print(render_markdown(run_decoding_bench(out, model=args.model)))
        elif args.what == "harness":
            from rubric_arm.reproduce.bench_harness import render_markdown, run_harness_bench

            print(render_markdown(run_harness_bench(out, model=args.model)))
        elif args.what == "rollouts":
            from rubric_arm.reproduce.bench_rollouts import render_markdown, run_rollout_bench

            print(render_markdown(run_rollout_bench(out)))
        elif args.what == "train":
            from rubric_arm.reproduce.bench_train import render_markdown, run_train_bench

            print(render_markdown(run_train_bench(out)))
        else:
            from rubric_arm.reproduce.bench_summary import write_summary

            reports = Path(args.output).parent if args.output else Path("reports")
            merged = write_summary(reports)
            print(f"wrote {reports}/bench.json and bench.md (missing parts: {merged['missing']})")
        return 0
    if args.what == "stats":
        from rubric_arm.reproduce.bench_stats import run_stats_bench

        result = run_stats_bench(Path(args.output or "reports/bench_stats.json"))
        for name, seconds in result["seconds"].items():
            print(f"{name}: {seconds:.3f} s")
        return 0
    if args.what == "serve":
        from rubric_arm.reproduce.bench_serve import run_serve_bench

        out = Path(args.output or "reports/bench_serve.json")
        res = run_serve_bench(out, model=args.model, clients=args.prompts)
        print(
            f"{res['clients']} /compare requests: one at a time {res['sequential_seconds']} s "
            f"({res['sequential_engine_calls']} engine calls), concurrent {res['concurrent_seconds']} s "
            f"({res['concurrent_engine_calls']} calls): {res['speedup']}x"
        )
        return 0
    from rubric_arm.reproduce.bench_engine import run_engine_bench

    run_engine_bench(
        model=args.model,
        n_prompts=args.prompts,
        pairs_per_prompt=args.pairs_per_prompt,
        output=Path(args.output or "reports/bench_engine.json"),
        judge_max_tokens=args.judge_max_tokens,
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rubric_arm.harness.judges import parse_judge_args
    from rubric_arm.harness.runner import EvalConfig, run_eval

    config = EvalConfig(
        judge=args.judge,
        benchmark=args.benchmark,
        judge_args=parse_judge_args(args.judge_arg or []),
        votes=args.votes,
        data=args.data,
        split=args.split,
        limit=args.limit,
        order=args.order,
        seed=args.seed,
        tie_policy=args.tie_policy,
        protocol=args.protocol,
        chunk_size=args.chunk_size,
        decoding=args.decoding,
        verdict=args.verdict,
    )
    metrics = run_eval(config, args.out, force=args.force, progress=not args.quiet)
    for m in metrics:
        extra = f", {m.parse_failures} unparsed" if m.parse_failures else ""
        extra += f", {m.not_judged} not judged" if m.not_judged else ""
        print(f"{m.name}: {m.estimate}{extra}")
    print(f"run folder: {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rubric_arm.harness.report import write_report

    write_report(
        args.runs, args.output, title=args.title, profile=args.profile, training=args.training
    )
    print(f"wrote {args.output} (+ .png, .json)")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    if args.action == "build-pairs":
        return _build_pairs(args)
    from rubric_arm.data.mini import MINI_DIR, MiniConfig, build_mini_suite

    config = MiniConfig(seed=args.seed, limit=args.limit)
    manifest = build_mini_suite(
        config, out_dir=Path(args.out) if args.out else MINI_DIR, force=args.force
    )
    for split, subsets in manifest["sizes"].items():
        sizes = ", ".join(f"{s} {e['n']} (A {e['A']} / B {e['B']})" for s, e in subsets.items())
        print(f"{split}: {sizes}")
    return 0


def _build_pairs(args: argparse.Namespace) -> int:
    """Sample responses from a policy for verifiable prompts and keep verifier-labelled pairs."""
    import json

    from rubric_arm.data.pair_builder import balance_labels, build_verified_pairs, sample_candidates
    from rubric_arm.data.sources import SOURCES
    from rubric_arm.data.verifiers import QuestionVerifier, RuleVerifier
    from rubric_arm.engines import load_engine
    from rubric_arm.errors import InputError
    from rubric_arm.types import SamplingParams

    if not args.out:
        raise InputError("build-pairs needs --out <pairs.jsonl>")
    items = SOURCES[args.source].loader(args.data)[: args.limit or None]
    rules = args.source in ("ifbench-prompts", "ifeval-prompts")
    if not rules and not args.verifier_model:
        raise InputError(f"{args.source} is verified by an LLM: pass --verifier-model")
    policy = load_engine(args.policy, args.engine)
    sampling = SamplingParams(
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
    )
    cands = sample_candidates(
        policy, items, n=args.samples, sampling=sampling, source=policy.fingerprint
    )
    verifier = (
        RuleVerifier() if rules else QuestionVerifier(load_engine(args.verifier_model, args.engine))
    )
    built = build_verified_pairs(items, cands, verifier, subset=args.source)
    pairs = balance_labels(built.pairs, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "".join(json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8"
    )
    print(f"{len(pairs)} pairs -> {out}; outcomes: {dict(built.outcomes)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from rubric_arm.harness.judges import RubricARMJudge, make_judge, parse_judge_args
    from rubric_arm.harness.serve import ServeLimits, serve

    judge_args = parse_judge_args(args.judge_arg or [])
    if args.preset is not None:
        given = judge_args.get("preset")
        if given is not None and given != args.preset:
            raise InputError(f"--preset {args.preset} and -J preset={given} disagree: give one")
        judge_args["preset"] = args.preset
    for key in ("decoding", "verdict"):
        if getattr(args, key, None) is not None:
            judge_args[key] = getattr(args, key)
    judge = make_judge(args.judge, judge_args)
    if not isinstance(judge, RubricARMJudge):
        raise InputError(f"serve needs a generator + judge pipeline, not the {args.judge!r} judge")
    limits = ServeLimits(max_items=args.max_items, max_queue=args.max_queue)
    serve(judge.arm, host=args.host, port=args.port, limits=limits, seed=args.seed)
    return 0


def cmd_judges(args: argparse.Namespace) -> int:
    from rubric_arm.harness.benchmarks import EVAL_BENCHMARKS
    from rubric_arm.harness.judges import JUDGES

    print("judges:")
    for name, (_, help_text) in JUDGES.items():
        print(f"  {name:16s} {help_text}")
    print("benchmarks:")
    for name, bench in EVAL_BENCHMARKS.items():
        print(f"  {name:20s} {bench.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rubric-arm",
        description="Rubric-ARM: rubric generator + judge as a pairwise reward model.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list or prepare models")
    p.add_argument("action", choices=["list", "prepare"])
    p.add_argument("name", nargs="?", default="smollm2-135m-instruct")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("rubric", help="write a rubric for one prompt")
    p.add_argument("--prompt", required=True)
    p.add_argument("--json", action="store_true", help="print the result record as JSON")
    _add_model_options(p, verdict=False)
    p.set_defaults(func=cmd_rubric)

    p = sub.add_parser("judge", help="judge one pair, or a JSONL file of pairs (resumable)")
    p.add_argument("--prompt")
    p.add_argument("--response-a")
    p.add_argument("--response-b")
    p.add_argument("--input", help="JSONL of {id, prompt, response_a, response_b, label?, subset?}")
    p.add_argument("--output", help="JSONL of per-pair records; rerun to resume after a kill")
    p.add_argument("--order", choices=["random", "both", "as_given"])
    p.add_argument("--votes", type=at_least_one, help="judge samples per order (voting@k)")
    p.add_argument("--seed", type=int, default=0, help="seed for order randomisation and sampling")
    p.add_argument(
        "--chunk-size", type=at_least_one, default=32, help="pairs per batched engine call"
    )
    p.add_argument("--strict", action="store_true", help="stop at the first bad row")
    p.add_argument("--json", action="store_true", help="single pair: print the record as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_model_options(p)
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("bench", help="performance benchmarks")
    p.add_argument(
        "what",
        choices=["engine", "decoding", "stats", "serve", "harness", "train", "rollouts", "summary"],
    )
    p.add_argument("--model", default="smollm2-135m-instruct")
    p.add_argument("--prompts", type=at_least_one, default=16)
    p.add_argument("--pairs-per-prompt", type=at_least_one, default=4)
    p.add_argument("--judge-max-tokens", type=at_least_one, default=None)
    p.add_argument("--output", default=None, help="default reports/bench_<what>.json")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("eval", help="evaluate a judge on a benchmark into a resumable run folder")
    p.add_argument(
        "--judge", required=True, help="rubric-arm, prompted-rubric, direct, scalar, random"
    )
    p.add_argument(
        "-J",
        "--judge-arg",
        action="append",
        metavar="KEY=VALUE",
        help="judge option, e.g. preset=mini, model=..., decoding=free, verdict=prob",
    )
    p.add_argument(
        "--benchmark", required=True, help="mini, rewardbench, rewardbench2, rm-bench, ..."
    )
    p.add_argument(
        "--data", help="local .jsonl/.parquet in the benchmark's schema (default: hub / built-in)"
    )
    p.add_argument("--split", help="dataset split (default: the benchmark's standard one)")
    p.add_argument("--limit", type=at_least_one, help="first N items only")
    p.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")
    p.add_argument("--order", default="random", choices=["random", "both", "as_given"])
    p.add_argument("--votes", type=at_least_one, default=1, help="voting@k")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--tie-policy",
        default="half",
        choices=["half", "wrong"],
        help="credit for an unparsed verdict (default half, as RewardBench)",
    )
    p.add_argument(
        "--protocol",
        default="all_pairs",
        choices=["all_pairs", "beats_all"],
        help="pairwise protocol for best-of-n items",
    )
    p.add_argument(
        "--chunk-size", type=at_least_one, default=32, help="pairs per batched call (fixed per run)"
    )
    _add_switches(p.add_argument_group("judge switches (rubric-arm, prompted-rubric, direct)"))
    p.add_argument("--force", action="store_true", help="start the run folder over")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("report", help="Markdown + PNG + JSON report from run folders")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("-o", "--output", required=True, help="reports/NAME.md")
    p.add_argument("--title", default="rubric-arm evaluation")
    p.add_argument("--profile", help="profile named in the report (mini, paper, ...)")
    p.add_argument(
        "--training",
        action="append",
        default=[],
        metavar="RUN_DIR",
        help="a training run folder: adds its phases, reward curves and per-stage accuracy",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "data", help="build the mini suite, or verifier-labelled pairs from a policy"
    )
    p.add_argument("action", choices=["build-mini", "build-pairs"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=at_least_one, help="first N source prompts (quick builds)")
    p.add_argument(
        "--out", help="build-mini: output folder (default: the package's suite); build-pairs: JSONL"
    )
    g = p.add_argument_group("build-pairs")
    g.add_argument(
        "--source",
        default="ifbench-prompts",
        choices=["ifbench-prompts", "ifeval-prompts", "infobench", "followbench"],
    )
    g.add_argument(
        "--data", help="local file in the source's schema (default: shipped copy or hub)"
    )
    g.add_argument(
        "--policy", default="smollm2-135m-instruct", help="model that writes the responses"
    )
    g.add_argument(
        "--engine", default="transformers", help="engine for the policy and verifier (vllm on GPU)"
    )
    g.add_argument("--samples", type=at_least_one, default=2, help="responses per prompt")
    g.add_argument("--temperature", type=finite_nonnegative, default=1.0)
    g.add_argument("--top-p", type=finite_nonnegative, default=0.95)
    g.add_argument("--max-new-tokens", type=at_least_one, default=1024)
    g.add_argument(
        "--verifier-model", help="LLM that answers InfoBench / FollowBench yes/no questions"
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the manifest matches")
    p.set_defaults(func=cmd_data)

    sub.add_parser(
        "train",
        help="train a Rubric-ARM: SFT + alternating GRPO (rubric-arm train --help)",
        add_help=False,
    )

    sub.add_parser(
        "policy",
        help="align a policy with the reward: DPO, IterDPO, GRPO, eval (rubric-arm policy --help)",
        add_help=False,
    )

    sub.add_parser(
        "reproduce",
        help="the paper's tables on this hardware: table2, efficiency, position-bias",
        add_help=False,
    )
    sub.add_parser(
        "regress", help="CI's accuracy regression check: check, update, freeze", add_help=False
    )

    p = sub.add_parser(
        "serve", help="HTTP judge service: /rubric, /compare, /reward, /v1/chat/completions"
    )
    p.add_argument("--judge", default="rubric-arm", help="rubric-arm, prompted-rubric or direct")
    p.add_argument(
        "--preset",
        help=f"one of: {', '.join(PRESETS)} (default: mini); the same as -J preset=NAME",
    )
    p.add_argument(
        "-J", "--judge-arg", action="append", metavar="KEY=VALUE", help="e.g. preset=mini"
    )
    p.add_argument("--host", default="127.0.0.1", help="default loopback only")
    p.add_argument("--port", type=int, default=8321)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-items", type=at_least_one, default=256, help="pairs or prompts per request"
    )
    p.add_argument(
        "--max-queue", type=at_least_one, default=64, help="requests waiting; more get 503"
    )
    _add_switches(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("list", help="list judges and benchmarks")
    p.set_defaults(func=cmd_judges)
    return parser


HEAP_MALLOC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


def heap_malloc_active() -> bool:
    """Whether this process runs with `HEAP_MALLOC` (see `_rerun_with_heap_malloc`)."""
    return "glibc.malloc.mmap_max=0" in os.environ.get("GLIBC_TUNABLES", "")


def _rerun_with_heap_malloc() -> None:
    """Re-run this command once with glibc's malloc kept on its heap (no mmap, no trimming).

    Training on CPU allocates and frees tensors of hundreds of MB every step (logits, attention);
    glibc serves each from a fresh mmap, and the kernel zeroes every page again. Measured on a
    SmolLM2 SFT step (2 x 1,300 tokens x 2 accumulation steps): 17 s -> 12 s, system time 40% -> 2%
    of CPU, peak memory lower. Tunables are read only at process start, hence the exec.
    RUBRIC_ARM_MALLOC=default turns this off."""
    if (
        os.environ.get("RUBRIC_ARM_MALLOC", "heap") != "heap"
        or heap_malloc_active()
        or not sys.platform.startswith("linux")
        or platform.libc_ver()[0] != "glibc"
    ):
        return
    tunables = ":".join(t for t in (os.environ.get("GLIBC_TUNABLES"), HEAP_MALLOC) if t)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, {**os.environ, "GLIBC_TUNABLES": tunables})


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    if argv is None and raw[:1] in (["train"], ["policy"]):
        _rerun_with_heap_malloc()
    if raw[:1] == ["lm-eval"]:
        # lm-eval's own CLI, with the rubric-arm model registered (0.4.13 has no plugins).
        from rubric_arm.harness.lm_eval_model import main as lm_eval_main

        lm_eval_main(raw[1:])
        return 0
    if raw[:1] in (["train"], ["policy"], ["reproduce"], ["regress"]):
        if raw[0] == "train":
            from rubric_arm.trainer.cli import main as sub_main
        elif raw[0] == "policy":
            from rubric_arm.trainer.policy.cli import main as sub_main
        else:
            from rubric_arm.reproduce.cli import main as reproduce_main

            def sub_main(argv: list[str]) -> int:
                return reproduce_main([raw[0], *argv])

        try:
            return sub_main(raw[1:])
        except RubricArmError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("\ninterrupted; rerun the same command to resume", file=sys.stderr)
            return 130
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    if getattr(args, "chunk_size", 1) < 1:
        print("error: --chunk-size must be >= 1", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except RubricArmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(
            f"error: {exc.strerror or exc}: {exc.filename}" if exc.filename else f"error: {exc}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
