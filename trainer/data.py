"""The trainer's data: RL pairs split into one disjoint slice per cycle, held-out pairs, and the
Stage I warm-up rows (rubrics for the generator, trajectories for the judge) of each profile."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rubric_arm.errors import InputError
from rubric_arm.trainer.config import TrainConfig
from rubric_arm.types import PreferencePair, prompt_text


@dataclass
class TrainData:
    train: list[PreferencePair]
    heldout: list[PreferencePair]
    sft_rubrics: list[dict[str, str]]  # {"id", "prompt", "rubric"}
    sft_judgments: list[dict[str, Any]]  # + "response_a", "response_b", "judgment"; or "chat"


def cycle_slices(pairs: list[PreferencePair], cycles: int, seed: int) -> list[list[PreferencePair]]:
    """`cycles` disjoint slices of equal size (a seeded shuffle; the remainder is dropped)."""
    order = list(pairs)
    random.Random(f"slices-{seed}").shuffle(order)
    size = len(order) // cycles
    if size == 0:
        raise InputError(f"{len(pairs)} training pairs cannot fill {cycles} cycles")
    return [order[k * size : (k + 1) * size] for k in range(cycles)]


def load_train_data(cfg: TrainConfig) -> TrainData:
    """Everything the run trains and checks on, built from `cfg.data`."""
    d = cfg.data
    if d.source == "synthetic":
        from rubric_arm.trainer import synthetic

        kw = {"keywords": d.keywords, "words": d.words}
        train = synthetic.make_pairs(d.train_size or 192, cfg.seed, **kw)
        heldout = synthetic.make_pairs(d.heldout_size, cfg.seed, split="heldout", **kw)
        sft_pairs = synthetic.make_pairs(d.sft_size or 512, cfg.seed, split="sft", **kw)
        rubrics, judgments = synthetic.warmup_rows(sft_pairs)
        return TrainData(train, heldout, rubrics, judgments)
    if d.source == "mini":
        from rubric_arm.data.mini import load_mini
        from rubric_arm.trainer.warmup_mini import mini_warmup_rows

        full = load_mini("train", path=Path(d.path) if d.path else None)
        heldout = _cap(
            load_mini("heldout", path=Path(d.path) if d.path else None), d.heldout_size, cfg.seed
        )
        sft_pairs = _cap(full, d.sft_size, cfg.seed)
        # With a capped warm-up set, the RL pairs come from the train pairs SFT did not use.
        used = {p.id for p in sft_pairs} if d.sft_size is not None else set()
        train = _cap([p for p in full if p.id not in used], d.train_size, cfg.seed)
        if d.sft_both_orders:
            sft_pairs = [q for p in sft_pairs for q in (p, p.swapped())]
        rubrics, judgments = mini_warmup_rows(sft_pairs)
        if d.sft_generator_draws:
            from rubric_arm.trainer.warmup_mini import drawn_rubric_rows

            drawn = drawn_rubric_rows(full, d.sft_generator_draws, cfg.seed)
            rubrics = rubrics + drawn
            random.Random(f"generator-rows-{cfg.seed}").shuffle(rubrics)
        if d.sft_verdict_rows != "none":
            verdicts = [verdict_row(r) for r in judgments]
            judgments = verdicts if d.sft_verdict_rows == "only" else judgments + verdicts
        if not d.sft_judge_trajectories:
            judgments = []
        if d.sft_rule_rows != "none":
            judgments = judgments + _rule_check_rows(
                d.sft_rule_rows, sft_pairs, d.path, cfg.seed, d.sft_edit_rows, d.sft_ifbench_rows
            )
        return TrainData(train, heldout, rubrics, judgments)
    return _openrubric_data(cfg)


VERDICT_CUE = "Winner: Response"


def verdict_row(row: dict[str, str]) -> dict[str, str]:
    """A warm-up judge row whose completion is only the verdict letter (" A" / " B"); the
    trajectory before it goes into `prefix`, which follows the rendered prompt."""
    judgment = row["judgment"].rstrip()
    cut = judgment.rindex(VERDICT_CUE) + len(VERDICT_CUE)
    return {
        **row,
        "id": f"{row['id']}#verdict",
        "prefix": judgment[:cut],
        "judgment": judgment[cut:],
    }


def _rule_check_rows(
    kind: str,
    sft_pairs: list[PreferencePair],
    path: str | None,
    seed: int,
    edit_rows: int = 30,
    ifbench_rows: int = 0,
) -> list[dict[str, Any]]:
    """Judge warm-up rows of the short compliance check (data.sft_rule_rows), shuffled into a
    seeded order; each row holds its own one-turn chat and the verifier's answer."""
    from rubric_arm.trainer.rule_rows import (
        candidate_rule_rows,
        rule_answer,
        rule_chat,
        rule_rows,
    )

    if kind in ("pairs", "edits"):
        # one row per (requirement, response): a pair warmed up in both orders gives each twice
        unique = {(r.requirement, r.response): r for r in rule_rows(sft_pairs)}
        rows = list(unique.values())
        if kind == "edits":
            from rubric_arm.trainer.rule_edits import edit_rule_rows

            rows += edit_rule_rows(sft_pairs, per_instruction=edit_rows, seed=seed)
    else:
        rows = candidate_rule_rows(mini_dir=Path(path) if path else None)
    if ifbench_rows:
        from rubric_arm.trainer.rule_edits import transfer_rule_rows

        rows += transfer_rule_rows(sft_pairs, per_instruction=ifbench_rows, seed=seed)
    random.Random(f"rule-rows-{seed}").shuffle(rows)
    return [
        {
            "id": f"rule/{r.pair_id}/{r.rule}/{r.side}",
            "chat": rule_chat(r),
            "judgment": rule_answer(r),
        }
        for r in rows
    ]


def _cap(pairs: list[PreferencePair], n: int | None, seed: int) -> list[PreferencePair]:
    if n is None or n >= len(pairs):
        return list(pairs)
    picked = list(pairs)
    random.Random(f"cap-{seed}").shuffle(picked)
    return sorted(picked[:n], key=lambda p: p.id)


def _openrubric_data(cfg: TrainConfig) -> TrainData:
    """OpenRubric-v2 (hub or local file): its `rubric` column for the generator's warm-up and the
    judge-trajectory column named by `data.judge_column` for the judge's."""
    from rubric_arm.data.sources import load_openrubric

    d = cfg.data
    pairs = [p for p in load_openrubric(d.path) if p.label is not None]
    if not pairs:
        raise InputError("the training data has no labelled pairs")
    rng = random.Random(f"heldout-{cfg.seed}")
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    heldout, rest = shuffled[: d.heldout_size], shuffled[d.heldout_size :]
    sft_pairs = _cap(rest, d.sft_size, cfg.seed)
    train = _cap(rest, d.train_size, cfg.seed + 1)
    rubrics: dict[str, dict[str, str]] = {}
    judgments = []
    for p in sft_pairs:
        rubric = p.metadata.get("rubric")
        if not rubric:
            continue
        text = prompt_text(p.prompt)
        rubrics.setdefault(text, {"id": p.id, "prompt": text, "rubric": rubric})
        if d.judge_column:
            extra = p.metadata.get("extra") or {}
            if d.judge_column not in extra:
                raise InputError(
                    f"pair {p.id}: no judge-trajectory column {d.judge_column!r}; columns: "
                    f"{', '.join(sorted(extra)) or '(none)'}"
                )
            judgments.append(
                {
                    "id": p.id,
                    "prompt": text,
                    "rubric": rubric,
                    "response_a": p.response_a,
                    "response_b": p.response_b,
                    "judgment": str(extra[d.judge_column]),
                }
            )
    if cfg.sft.enabled and not judgments:
        raise InputError(
            "judge SFT needs trajectories: set data.judge_column to the judge-trajectory column "
            "of your OpenRubric-v2 copy, or sft.enabled false"
        )
    return TrainData(train, heldout, list(rubrics.values()), judgments)
