"""Turn verifiable prompts into preference pairs: sample responses, verify, keep a clear winner.

This is how the paper made FollowBench, InfoBench and IFBench pairwise: two (or more) responses
per prompt, the benchmark's verifier picks the winner. Pairs whose candidates all score the same
are dropped and counted, never guessed.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path
from typing import Any

from rubric_arm.data.jsonl import read_jsonl
from rubric_arm.data.verifiers import VerifiableItem, Verification, Verifier
from rubric_arm.pipeline import stable_hash
from rubric_arm.types import Chat, PreferencePair, SamplingParams


@dataclass(frozen=True)
class Candidate:
    """One response to a prompt and where it came from (a model name, "reference", ...)."""

    source: str
    text: str


@dataclass
class BuiltPairs:
    """Pairs built from verified candidates, and how many prompts ended in each outcome."""

    pairs: list[PreferencePair] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


def choose_pair(
    verifications: Sequence[Verification],
) -> tuple[int, int] | None:
    """(winner, loser) indices with the largest verifier-score gap, or None if all tie.

    Scores compare instruction-level strict accuracy first, then loose; unavailable
    verifications take no part. The earliest pair wins a tie between equal gaps.
    """
    best: tuple[tuple[float, float], int, int] | None = None
    ok = [i for i, v in enumerate(verifications) if v.status == "ok"]
    for i, j in combinations(ok, 2):
        si, sj = verifications[i].score(), verifications[j].score()
        if si == sj:
            continue
        hi, lo = (i, j) if si > sj else (j, i)
        gap = (abs(si[0] - sj[0]), abs(si[1] - sj[1]))
        if best is None or gap > best[0]:
            best = (gap, hi, lo)
    return None if best is None else (best[1], best[2])


def build_verified_pairs(
    items: Sequence[VerifiableItem],
    candidates: Mapping[str, Sequence[Candidate]],
    verifier: Verifier,
    *,
    subset: str,
    max_pairs: int = 1,
) -> BuiltPairs:
    """Pairs from items whose candidates the verifier separates; the better one is response_a.

    Up to `max_pairs` pairs per item, each from candidates no earlier pair of that item used
    (largest gap first), so pairs of one prompt never share a response. The first keeps the id
    `<subset>/<key>`, the k-th (k >= 2) is `<subset>/<key>#k`.
    """
    if max_pairs < 1:
        raise ValueError(f"max_pairs must be >= 1, got {max_pairs}")
    built = BuiltPairs()
    for item in items:
        cands = list(candidates.get(item.key, ()))
        if len(cands) < 2:
            built.outcomes["too_few_responses"] += 1
            continue
        checks = verifier.verify(item, [c.text for c in cands])
        if sum(v.status == "ok" for v in checks) < 2:
            built.outcomes["verifier_unavailable"] += 1
            continue
        chosen = _disjoint_pairs(checks, max_pairs)
        if not chosen:
            built.outcomes["all_tied"] += 1
            continue
        for k, (win, lose) in enumerate(chosen, start=1):
            built.pairs.append(_verified_pair(item, cands, checks, win, lose, verifier, subset, k))
        built.outcomes["paired"] += 1
        if len(chosen) > 1:
            built.outcomes["extra_pairs"] += len(chosen) - 1
    return built


def _disjoint_pairs(checks: Sequence[Verification], max_pairs: int) -> list[tuple[int, int]]:
    """Greedy (winner, loser) pairs by largest gap, no candidate used twice."""
    free = list(range(len(checks)))
    out: list[tuple[int, int]] = []
    while len(out) < max_pairs:
        chosen = choose_pair([checks[i] for i in free])
        if chosen is None:
            break
        win, lose = free[chosen[0]], free[chosen[1]]
        out.append((win, lose))
        free = [i for i in free if i not in (win, lose)]
    return out


def _verified_pair(
    item: VerifiableItem,
    cands: Sequence[Candidate],
    checks: Sequence[Verification],
    win: int,
    lose: int,
    verifier: Verifier,
    subset: str,
    k: int,
) -> PreferencePair:
    meta: dict[str, Any] = {
        "key": item.key,
        "verifier": verifier.name,
        "instruction_id_list": list(item.instruction_id_list),
        "kwargs": [dict(k) for k in item.kwargs],
        "registry": item.registry,
        "chosen_source": cands[win].source,
        "rejected_source": cands[lose].source,
        "chosen_verification": checks[win].to_dict(),
        "rejected_verification": checks[lose].to_dict(),
        **item.metadata,
    }
    return PreferencePair(
        id=f"{subset}/{item.key}" + (f"#{k}" if k > 1 else ""),
        prompt=item.prompt,
        response_a=cands[win].text,
        response_b=cands[lose].text,
        label="A",
        subset=subset,
        metadata=meta,
    )


def balance_labels(pairs: Sequence[PreferencePair], seed: int = 0) -> list[PreferencePair]:
    """Put the preferred response in position A for half the pairs and B for the other half.

    The half is chosen by a seeded hash of each id, so the result does not depend on row order.
    """
    ranked = sorted(range(len(pairs)), key=lambda i: stable_hash(seed, "balance", pairs[i].id))
    flip = {i for rank, i in enumerate(ranked) if rank % 2}
    out = []
    for i, p in enumerate(pairs):
        if (p.label == "B") != (i in flip):
            p = p.swapped()
        out.append(p)
    return out


class ResponseCache:
    """Generated responses on disk, keyed by model, prompt and decoding: a rebuild reuses them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, list[str]] = {}
        if path.is_file():
            for _, row in read_jsonl(path):
                if isinstance(row, dict) and "key" in row and "texts" in row:
                    self.entries[row["key"]] = row["texts"]

    @staticmethod
    def key(fingerprint: str, chat: Any, sampling: SamplingParams) -> str:
        return hashlib.sha256(
            json.dumps([fingerprint, chat, sampling.key()], sort_keys=True).encode()
        ).hexdigest()

    def generate(
        self, engine: Any, chats: list[Any], sampling: SamplingParams, desc: str, chunk: int = 128
    ) -> list[list[str]]:
        """Responses for every chat, generating only the missing ones, saved chunk by chunk."""
        keys = [self.key(engine.fingerprint, c, sampling) for c in chats]
        todo = [i for i, k in enumerate(keys) if k not in self.entries]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            label = f"{desc} [{start + len(part)}/{len(todo)}]"
            outs = engine.generate([chats[i] for i in part], sampling, desc=label)
            with self.path.open("a", encoding="utf-8") as f:
                for i, samples in zip(part, outs, strict=True):
                    texts = [c.text for c in samples]
                    self.entries[keys[i]] = texts
                    f.write(json.dumps({"key": keys[i], "texts": texts}, ensure_ascii=False) + "\n")
        return [self.entries[k] for k in keys]


def sample_candidates(
    engine: Any,
    items: Sequence[VerifiableItem],
    *,
    sampling: SamplingParams,
    n: int | None = None,
    source: str | None = None,
    cache: ResponseCache | None = None,
    desc: str = "sample responses",
) -> dict[str, list[Candidate]]:
    """`n` (default `sampling.n`) responses per item from a policy engine, batched (seeded).

    With a `cache`, only responses not generated before are generated. Candidates are named
    `<source>#<k>` (source defaults to the engine's fingerprint).
    """
    chats: list[Chat] = [[{"role": "user", "content": it.prompt}] for it in items]
    if n is not None:
        sampling = replace(sampling, n=n)
    if cache is not None:
        texts = cache.generate(engine, chats, sampling, desc)
    else:
        outs = engine.generate(chats, sampling, desc=desc) if chats else []
        texts = [[c.text for c in samples] for samples in outs]
    name = source or engine.fingerprint
    return {
        it.key: [Candidate(f"{name}#{k}", t) for k, t in enumerate(ts)]
        for it, ts in zip(items, texts, strict=True)
    }
