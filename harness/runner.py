"""`rubric-arm eval`: one judge on one benchmark, into a resumable run folder.

runs/NAME/
  config.json    the resolved run config (judge, benchmark, data, order, seed, policies, and
                 the judge's decoding and verdict rule, defaults filled in from its preset)
  records.jsonl  one record per judged pair, appended chunk by chunk (fsync'd)
  metadata.json  versions, git commit, fingerprints, templates, tokens, wall time
  scores.json    every metric with its CI and n (rewritten at the end of every run)
Rerunning the same command after a kill skips the finished chunks; chunk boundaries are fixed
by the config, so the resumed run judges exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rubric_arm.data.jsonl import ResumableWriter, changed_settings
from rubric_arm.data.runfiles import RunLock, refuse_foreign
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.harness.benchmarks import TIE_POLICIES, Metric, expand, get_benchmark, score
from rubric_arm.harness.judges import (
    PER_RESPONSE_JUDGES,
    SWITCHES,
    WIN_PROBABILITY_JUDGES,
    Judge,
    check_switch,
    judge_switches,
    make_judge,
    package_versions,
)
from rubric_arm.pipeline import mark_rubric_reuse
from rubric_arm.records import JudgeRecord, read_records

RUN_FORMAT = 1


@dataclass
class EvalConfig:
    """What decides a run's results; a run folder refuses to resume under a different one.

    `decoding` and `verdict` are the judge's switches (None: the judge's default, its preset's
    for the pipeline judges); `resolved()` makes them explicit so the run folder records what
    was used, whether it came from the preset, a flag or `-J`.
    """

    judge: str
    benchmark: str
    judge_args: dict[str, Any] = field(default_factory=dict)
    votes: int = 1
    data: str | None = None
    split: str | None = None
    limit: int | None = None
    order: str = "random"
    seed: int = 0
    tie_policy: str = "half"
    protocol: str = "all_pairs"
    chunk_size: int = 32
    decoding: str | None = None
    verdict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": RUN_FORMAT, **self.__dict__}

    def resolved(self, judge: Judge | None = None) -> EvalConfig:
        """This config with `decoding` and `verdict` explicit and no longer in `judge_args`.

        The values come from a ready `judge` when one is given (what it really uses), else from
        the flags, `-J` and the judge's defaults; a flag and a `-J` value that disagree, or a
        switch the judge does not have, are an InputError.
        """
        args = dict(self.judge_args)
        for key in SWITCHES:
            flag = getattr(self, key)
            if flag is None:
                continue
            check_switch(key, flag)
            if key in args and args[key] != flag:
                raise InputError(f"--{key} {flag} and -J {key}={args[key]} disagree: give one")
            args[key] = flag
        if judge is None:
            switches = judge_switches(self.judge, args)
        else:
            switches = {"decoding": judge.decoding, "verdict": judge.verdict}
            for key, value in switches.items():
                if key in args and args[key] != value:
                    raise InputError(
                        f"{key}={args[key]} was asked for, but the given judge uses {value}"
                    )
        rest = {k: v for k, v in args.items() if k not in SWITCHES}
        return replace(self, judge_args=rest, **switches)

    def judge_kwargs(self) -> dict[str, Any]:
        """The arguments that build the judge: `judge_args` plus the switches it has."""
        switches = {k: getattr(self, k) for k in SWITCHES if getattr(self, k) is not None}
        return {**self.judge_args, **switches}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config.json") -> EvalConfig:
        """A run folder's config.json (its `format` and data fingerprint are not settings)."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k not in ("format", "data_sha256")}
        unknown = sorted(set(kw) - known)
        if unknown:
            raise RubricArmError(f"{where}: unknown setting(s) {', '.join(unknown)}")
        return cls(**kw)


@dataclass
class RunScores:
    """scores.json: every metric of a finished run and the rules that scored it."""

    benchmark: str
    judge: str
    tie_policy: str
    tie_credit: float
    order: str
    seed: int
    metrics: list[Metric]
    decoding: str | None = None
    verdict: str | None = None
    protocol: str | None = None
    """The pairwise protocol for multi-response items (None where it does not apply)."""

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "metrics": [m.to_dict() for m in self.metrics]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunScores:
        return cls(**{**d, "metrics": [Metric.from_dict(m) for m in d["metrics"]]})


@dataclass
class RunMetadata:
    """metadata.json: what ran (versions, commit, judge config), on what, and at what cost."""

    benchmark: str
    n_items: int
    n_pairs: int
    wall_seconds: float
    description: str = ""
    order_used: str = "random"
    judge_config: dict[str, Any] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    python: str = ""
    machine: str = ""
    git_commit: str | None = None
    tokens: dict[str, int] = field(default_factory=dict)
    resumed_from_pairs: int = 0
    rubric_arm_run: int = RUN_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunMetadata:
        return cls(**d)


@dataclass
class EvalRun:
    """A finished run folder read back: its config, metadata, scores and records."""

    path: Path
    config: EvalConfig
    metadata: RunMetadata
    scores: RunScores
    records: list[JudgeRecord]


def _read_summary(file: Path, cls: Any) -> Any:
    """One of a run folder's JSON files as its typed record; a malformed one names the file."""
    try:
        return cls.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (TypeError, KeyError, ValueError) as exc:
        raise RubricArmError(f"{file}: not a {cls.__name__} ({exc})") from exc


def read_run(path: str | Path) -> EvalRun:
    """Read a finished run folder; a missing or malformed file is an error naming it."""
    path = Path(path)
    parts: dict[str, Any] = {}
    for name, cls in (("config", EvalConfig), ("metadata", RunMetadata), ("scores", RunScores)):
        file = path / f"{name}.json"
        if not file.is_file():
            raise RubricArmError(f"{path} is not a finished run: {file.name} is missing")
        parts[name] = _read_summary(file, cls)
    records_file = path / "records.jsonl"
    records = read_records(records_file) if records_file.is_file() else []
    return EvalRun(path, parts["config"], parts["metadata"], parts["scores"], records)


def git_commit() -> str | None:
    """HEAD of the checkout this package runs from, or None outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def data_fingerprint(bench: Any, data: str | None, split: str | None) -> str | None:
    """The content hash of the data a run reads (a local file or folder; the packaged mini
    suite), so an edited file is a change of settings; None for hub data (not on disk here)."""
    from rubric_arm.data.runfiles import file_sha256

    if data and "://" not in str(data) and Path(data).exists():
        return file_sha256(data)
    if bench.name == "mini" and not data:
        from rubric_arm.data.mini import MINI_DIR

        return file_sha256(MINI_DIR / f"{split or bench.split}.jsonl")
    return None


def _check_config(path: Path, config: dict[str, Any], *, has_records: bool) -> None:
    """Refuse to resume under other settings; a folder with no record yet takes the new ones."""
    if path.is_file() and has_records:
        diff = changed_settings(path, config)
        if diff:
            raise RubricArmError(
                f"{path.parent} holds a run with a different config (differs in: {', '.join(diff)}); "
                "use another --out, or --force to start it over"
            )
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _token_totals(records: list[JudgeRecord]) -> dict[str, int]:
    totals = {"judge_prompt": 0, "judge_completion": 0, "rubric_prompt": 0, "rubric_completion": 0}
    seen_rubrics = set()
    for r in records:
        for j in r.judgments:
            totals["judge_prompt"] += j.prompt_tokens
            totals["judge_completion"] += j.completion_tokens
        rub = r.rubric
        if rub and not rub.cached and rub.text not in seen_rubrics:
            seen_rubrics.add(rub.text)
            totals["rubric_prompt"] += rub.prompt_tokens
            totals["rubric_completion"] += rub.completion_tokens
    return totals


def run_eval(
    config: EvalConfig,
    out: str | Path,
    *,
    force: bool = False,
    judge: Judge | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[Metric]:
    """Run (or resume) one evaluation into `out` and return its metrics."""
    out = Path(out)
    if config.tie_policy not in TIE_POLICIES:
        raise InputError(f"tie policy must be one of {', '.join(TIE_POLICIES)}")
    if config.order not in ("random", "both", "as_given"):
        raise InputError(f"order must be random, both or as_given, got {config.order!r}")
    bench = get_benchmark(config.benchmark)
    order = bench.orders or config.order
    records_path = out / "records.jsonl"
    config = config.resolved(judge)
    lock = RunLock(records_path).acquire()
    try:
        return _run_locked(
            config, out, bench, order, force=force, judge=judge, progress=progress, log=log
        )
    finally:
        lock.release()


def _run_locked(
    config: EvalConfig,
    out: Path,
    bench: Any,
    order: str,
    *,
    force: bool,
    judge: Judge | None,
    progress: bool,
    log: Callable[[str], None],
) -> list[Metric]:
    records_path = out / "records.jsonl"
    if force:
        for name in ("config.json", "records.jsonl", "metadata.json", "scores.json"):
            (out / name).unlink(missing_ok=True)
    refuse_foreign(records_path, out / "config.json")
    items = bench.load_items(config.data, config.split)
    if config.limit:
        items = items[: config.limit]
    pairs = expand(
        bench,
        items,
        per_response=config.judge in PER_RESPONSE_JUDGES,
        win_probabilities=config.judge in WIN_PROBABILITY_JUDGES,
    )
    if not pairs:
        raise InputError(f"{config.benchmark}: no pairs to judge")
    ids = [p.id for p in pairs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"{config.benchmark}: pair id {dup!r} occurs more than once")
    settings = {
        **config.to_dict(),
        "data_sha256": data_fingerprint(bench, config.data, config.split),
    }
    writer = ResumableWriter(records_path, chunk_size=config.chunk_size, expected_ids=ids)
    resumable = writer.scan()
    _check_config(out / "config.json", settings, has_records=resumable > 0)

    meta_path = out / "metadata.json"
    before = _read_summary(meta_path, RunMetadata) if meta_path.is_file() else None
    wall_before = before.wall_seconds if before else 0.0
    start = time.perf_counter()
    seen_rubrics: set[str] = set()
    if resumable:
        prompts = [p.prompt for p in pairs[:resumable]]
        mark_rubric_reuse(read_records(records_path)[:resumable], prompts, seen_rubrics)
    with writer.open():
        done = resumed_from = writer.done
        if done:
            log(f"resuming {out}: {done}/{len(pairs)} pairs already judged")
        todo = pairs[done:]
        if todo and judge is None:
            judge = make_judge(config.judge, config.judge_kwargs(), votes=config.votes)
        bar = tqdm(
            total=len(pairs),
            initial=done,
            desc=f"{config.judge} on {config.benchmark}",
            unit="pair",
            disable=not progress,
        )
        for k in range(0, len(todo), config.chunk_size):
            chunk = todo[k : k + config.chunk_size]
            assert judge is not None
            recs = judge.judge_pairs(chunk, order=order, seed=config.seed, desc="chunk")
            mark_rubric_reuse(recs, [p.prompt for p in chunk], seen_rubrics)
            writer.write_chunk([r.to_dict(timings=False) for r in recs])
            bar.update(len(chunk))
        bar.close()
    wall = wall_before + time.perf_counter() - start

    records = read_records(records_path)
    if [r.id for r in records] != ids:
        raise RubricArmError(
            f"{records_path} does not match the benchmark's pairs: start over with --force"
        )
    metrics = score(
        bench, records, tie_policy=config.tie_policy, protocol=config.protocol, seed=config.seed
    )
    judge_config = judge.config() if judge is not None else before and before.judge_config
    metadata = RunMetadata(
        benchmark=bench.name,
        description=bench.description,
        order_used=order,
        n_items=len(items),
        n_pairs=len(pairs),
        judge_config=judge_config,
        versions=package_versions(),
        python=platform.python_version(),
        machine=platform.machine(),
        git_commit=git_commit(),
        tokens=_token_totals(records),
        wall_seconds=round(wall, 3),
        resumed_from_pairs=resumed_from,
    )
    meta_path.write_text(
        json.dumps(metadata.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    scores = RunScores(
        benchmark=bench.name,
        judge=config.judge,
        decoding=config.decoding,
        verdict=config.verdict,
        tie_policy=config.tie_policy,
        tie_credit=TIE_POLICIES[config.tie_policy],
        protocol=config.protocol if bench.protocol else None,
        order=order,
        seed=config.seed,
        metrics=metrics,
    )
    (out / "scores.json").write_text(
        json.dumps(scores.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    return metrics
