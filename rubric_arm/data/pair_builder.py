"""Turn verifiable prompts into preference pairs: sample responses, verify, keep a clear winner.

This is how the paper made FollowBench, InfoBench and IFBench pairwise: two (or more) responses
per prompt, the benchmark's verifier picks the winner. Pairs whose candidates all score the same
are dropped and counted, never guessed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any

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
) -> BuiltPairs:
    """One pair per item whose candidates the verifier separates; the better one is response_a."""
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
        chosen = choose_pair(checks)
        if chosen is None:
            built.outcomes["all_tied"] += 1
            continue
        win, lose = chosen
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
        built.pairs.append(
            PreferencePair(
                id=f"{subset}/{item.key}",
                prompt=item.prompt,
                response_a=cands[win].text,
                response_b=cands[lose].text,
                label="A",
                subset=subset,
                metadata=meta,
            )
        )
        built.outcomes["paired"] += 1
    return built


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


def sample_candidates(
    engine: Any,
    items: Sequence[VerifiableItem],
    *,
    n: int,
    sampling: SamplingParams,
    source: str,
    desc: str = "sample responses",
) -> dict[str, list[Candidate]]:
    """`n` responses per item from a policy engine in one batched call (seeded sampling)."""
    chats: list[Chat] = [[{"role": "user", "content": it.prompt}] for it in items]
    outs = engine.generate(chats, replace(sampling, n=n), desc=desc) if chats else []
    return {
        it.key: [Candidate(f"{source}#{k}", c.text) for k, c in enumerate(samples)]
        for it, samples in zip(items, outs, strict=True)
    }
