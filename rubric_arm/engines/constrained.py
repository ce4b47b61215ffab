"""Grammar-constrained decoding for engines that run their own decode loop (xgrammar underneath).

`GrammarRuntime` holds what one tokenizer needs: xgrammar's TokenizerInfo (with the special
and added tokens blanked, so `<|im_start|>` can never appear inside a free-text field),
compiled grammars cached by their text, the bitmask of tokens that end a free-text span, and
the token ids that spell each verdict label. `RowGrammar` follows one sequence: its matcher,
the tokens of a free-text span spent so far, and the text the grammar forces next.

Counters (`stats`) feed the benchmarks: compile time per grammar, mask time per sampled token,
sampled and forced tokens.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rubric_arm.errors import RubricArmError
from rubric_arm.types import Constraint, VerdictProbe


def _import_xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError:
        raise RubricArmError(
            "constrained decoding needs xgrammar: pip install xgrammar (or use decoding=free)"
        ) from None
    return xgrammar


@dataclass
class ConstraintStats:
    """What constrained decoding cost in one engine (cumulative; `reset()` between measurements)."""

    compiles: int = 0
    compile_seconds: float = 0.0
    compile_seconds_by_grammar: dict[str, float] = field(default_factory=dict)
    mask_seconds: float = 0.0
    masked_tokens: int = 0
    sampled_tokens: int = 0
    forced_tokens: int = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        per_token = self.mask_seconds / self.masked_tokens if self.masked_tokens else None
        return {
            "compiles": self.compiles,
            "compile_seconds": round(self.compile_seconds, 4),
            "compile_seconds_per_grammar": round(self.compile_seconds / self.compiles, 4)
            if self.compiles
            else None,
            "mask_seconds": round(self.mask_seconds, 4),
            "masked_tokens": self.masked_tokens,
            "mask_ms_per_token": None if per_token is None else round(1000 * per_token, 4),
            "sampled_tokens": self.sampled_tokens,
            "forced_tokens": self.forced_tokens,
        }


class GrammarRuntime:
    """xgrammar state shared by every sequence of one tokenizer (see the module doc)."""

    def __init__(
        self, tokenizer: Any, vocab_size: int, stop_token_ids: Sequence[int], threads: int = 2
    ) -> None:
        xgr = _import_xgrammar()
        self.xgr = xgr
        self.tokenizer = tokenizer
        self.vocab_size = int(vocab_size)
        self.stop_token_ids = sorted(set(int(i) for i in stop_token_ids))
        base = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=self.vocab_size)
        vocab = list(base.decoded_vocab)
        vocab += [b""] * (self.vocab_size - len(vocab))
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        special |= set(getattr(tokenizer, "added_tokens_decoder", {}) or {})
        for i in special:
            if 0 <= i < len(vocab):
                vocab[i] = b""  # an empty string is never allowed by any grammar
        self.info = xgr.TokenizerInfo(
            vocab,
            base.vocab_type,
            vocab_size=self.vocab_size,
            stop_token_ids=self.stop_token_ids,
            add_prefix_space=base.add_prefix_space,
        )
        self._texts = [
            b.decode("utf-8", errors="replace") if isinstance(b, bytes) else str(b)
            for b in self.info.decoded_vocab
        ]
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=threads)
        self._batch = xgr.BatchGrammarMatcher(max_threads=threads)
        self._compiled: dict[str, Any] = {}
        self._end_vectors: dict[str, torch.Tensor] = {}
        self._labels: dict[tuple[str, ...], dict[str, list[int]]] = {}
        self.stats = ConstraintStats()

    # ---- grammars -----------------------------------------------------------------------
    def clear_cache(self) -> None:
        """Forget every compiled grammar (benchmarks time compilation from a cold cache)."""
        self._compiled.clear()
        self._end_vectors.clear()

    def compiled(self, constraint: Constraint) -> Any:
        """The compiled grammar of `constraint`, compiled once per grammar text."""
        hit = self._compiled.get(constraint.grammar)
        if hit is None:
            start = time.perf_counter()
            try:
                hit = self.compiler.compile_grammar(constraint.grammar)
            except RuntimeError as exc:
                raise RubricArmError(
                    f"grammar {constraint.name!r} does not compile: {exc}"
                ) from exc
            seconds = time.perf_counter() - start
            self.stats.compiles += 1
            self.stats.compile_seconds += seconds
            self.stats.compile_seconds_by_grammar[constraint.key] = seconds
            self._compiled[constraint.grammar] = hit
        return hit

    def row(self, constraint: Constraint) -> RowGrammar:
        """A fresh matcher state for one sequence under `constraint`."""
        matcher = self.xgr.GrammarMatcher(self.compiled(constraint))
        return RowGrammar(self, constraint, matcher)

    def allocate(self, rows: int) -> torch.Tensor:
        return self.xgr.allocate_token_bitmask(rows, self.vocab_size)

    def end_vector(self, end_chars: str) -> torch.Tensor:
        """Bool per token: its text contains one of `end_chars`."""
        if end_chars not in self._end_vectors:
            self._end_vectors[end_chars] = torch.tensor(
                [any(c in t for c in end_chars) for t in self._texts], dtype=torch.bool
            )
        return self._end_vectors[end_chars]

    def fill(
        self,
        rows: Sequence[RowGrammar],
        bitmask: torch.Tensor,
        top_tokens: Sequence[int] | None = None,
    ) -> list[bool]:
        """Fill `bitmask[i]` with the tokens row i may take next; True for the rows whose
        free-text span must end now (they take their `field_end` instead of a sample).

        A span ends when its token budget is spent, or when the model's own first choice
        (`top_tokens[i]`, unmasked) starts a new line the grammar does not allow there: a rubric
        item the model wants to end gets its tag now instead of a second sentence.
        """
        matchers = [r.matcher for r in rows]
        if len(matchers) == 1:
            matchers[0].fill_next_token_bitmask(bitmask, 0)
        else:
            self._batch.batch_fill_next_token_bitmask(matchers, bitmask)
        newline = self.end_vector("\n")
        ends = []
        for i, r in enumerate(rows):
            budget = r.constraint.line_tokens
            end = budget is not None and r.span >= budget
            if not end and budget is not None and top_tokens is not None and r.span > 0:
                top = int(top_tokens[i])
                end = bool(newline[top]) and not _allowed(bitmask[i], top)
            ends.append(end)
        return ends

    def closing(
        self, rows: Sequence[RowGrammar], bitmask: torch.Tensor, ends: Sequence[bool]
    ) -> dict[int, int]:
        """For the rows that must end their span: row index -> the first token of its
        `field_end`, where the grammar allows it (elsewhere the row samples as usual)."""
        out: dict[int, int] = {}
        for i, (r, end) in enumerate(zip(rows, ends, strict=True)):
            if end:
                first = r.end_field()
                if _allowed(bitmask[i], first):
                    out[i] = first
                else:
                    r.pending = []
        return out

    def apply(self, logits: torch.Tensor, bitmask: torch.Tensor) -> None:
        """Set the logits of disallowed tokens to -inf, in place."""
        self.xgr.apply_token_bitmask_inplace(logits, bitmask.to(logits.device))

    # ---- verdict probe --------------------------------------------------------------------
    def label_ids(self, probe: VerdictProbe) -> dict[str, list[int]]:
        """Token ids spelling each label (with or without a leading space)."""
        if probe.labels not in self._labels:
            self._labels[probe.labels] = label_token_ids(self._texts, probe.labels)
        return self._labels[probe.labels]


def label_token_ids(texts: Sequence[str], labels: Sequence[str]) -> dict[str, list[int]]:
    """For each label, the ids of the tokens whose text is the label, space-stripped."""
    out: dict[str, list[int]] = {label: [] for label in labels}
    for i, t in enumerate(texts):
        s = t.strip()
        if s in out and t:
            out[s].append(i)
    return out


class LabelReader:
    """Reads P(label) at the verdict position: the token after text that matches the probe's cue."""

    def __init__(self, probe: VerdictProbe, ids: dict[str, list[int]], tokenizer: Any) -> None:
        self.probe = probe
        self.cue = re.compile(probe.cue)
        self.ids = ids
        self.all_ids = [i for label in probe.labels for i in ids[label]]
        self.token_label = {i: label for label in probe.labels for i in ids[label]}
        self.tokenizer = tokenizer

    def logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The label tokens' logits of each row (taken before any mask)."""
        return logits[:, self.all_ids].float().clone()

    def read(
        self, token: int, previous: Sequence[int], label_logits: torch.Tensor
    ) -> dict[str, float] | None:
        """Label probabilities when `token` spells a label right after the cue, else None."""
        if token not in self.token_label:
            return None
        tail = self.tokenizer.decode(list(previous[-12:]), skip_special_tokens=True)
        if not self.cue.search(tail):
            return None
        sizes = [len(self.ids[label]) for label in self.probe.labels]
        scores = torch.stack([chunk.logsumexp(0) for chunk in torch.split(label_logits, sizes)])
        probs = scores.softmax(0).tolist()
        return {label: float(p) for label, p in zip(self.probe.labels, probs, strict=True)}


class RowGrammar:
    """One sequence's grammar state: the matcher, the current free-text span, forced text."""

    def __init__(self, runtime: GrammarRuntime, constraint: Constraint, matcher: Any) -> None:
        self.runtime = runtime
        self.constraint = constraint
        self.matcher = matcher
        self.span = 0
        self.pending: list[int] = []
        self._ends = runtime.end_vector(constraint.end_chars)

    def end_field(self) -> int:
        """Start closing the current free-text span: returns the first token of `field_end`
        (to take in place of a sample) and keeps the rest for `forced()`."""
        ids = self.runtime.tokenizer(self.constraint.field_end, add_special_tokens=False)
        ids = [int(t) for t in ids["input_ids"]]
        self.pending = ids[1:]
        return ids[0]

    def accept(self, token: int) -> bool:
        """Advance by one sampled token; False if the grammar refuses it."""
        ok = bool(self.matcher.accept_token(int(token)))
        if ok:
            self.span = 0 if bool(self._ends[token]) else self.span + 1
        return ok

    def forced(self) -> list[int]:
        """Accept and return the rest of a `field_end` being taken, then the tokens of the text
        the grammar now forces.

        A forced run that ends in a space leaves that space to the model, so the next word is
        sampled with its usual leading-space token (" A", " The") instead of after a lone " ".
        """
        taken: list[int] = []
        for t in self.pending:
            if not self.matcher.accept_token(t):
                break
            taken.append(t)
        self.pending = []
        text = self.matcher.find_jump_forward_string()
        if text.endswith(" ") and len(text) > 1:
            text = text[:-1]
        elif text == " ":
            text = ""
        if text:
            for t in self.runtime.tokenizer(text, add_special_tokens=False)["input_ids"]:
                if not self.matcher.accept_token(int(t)):
                    break
                taken.append(int(t))
        if taken:
            self.span = 0
        return taken

    def finished(self) -> bool:
        """True when the output is complete and only a stop token may follow."""
        if self.matcher.is_terminated():
            return True
        if not self.matcher.is_completed():
            return False
        mask = self.runtime.allocate(1)
        self.matcher.fill_next_token_bitmask(mask, 0)
        allowed = _allowed_ids(mask[0], self.runtime.vocab_size)
        return set(allowed) <= set(self.runtime.stop_token_ids)


def _allowed(words: torch.Tensor, token: int) -> bool:
    return bool((int(words[token // 32]) >> (token % 32)) & 1)


def _allowed_ids(words: torch.Tensor, vocab_size: int) -> list[int]:
    bits = (words.to(torch.int64)[:, None] >> torch.arange(32, dtype=torch.int64)) & 1
    return torch.nonzero(bits.flatten()[:vocab_size]).flatten().tolist()
