"""The default engine: batched generation with transformers, tuned for small models on CPU.

It runs its own decode loop instead of `model.generate` so that it can (1) keep the KV cache
in preallocated buffers written in place (no per-step concatenation), (2) drop finished
sequences from the batch as they end, (3) prefill long prompts in micro-batches under a
token budget, and (4) sample every sequence from its own seeded generator, so a seeded
sample does not depend on which other prompts share its batch.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from rubric_arm.engines.hf_tokens import HFTokenizerEngine
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.models import load_tokenizer, model_fingerprint
from rubric_arm.types import Chat, Completion, SamplingParams

# Below this many shared leading tokens, running them once is not worth a separate forward pass.
_MIN_SHARED_PREFIX = 32

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass
class _Request:
    """One sequence to generate: a prompt (token ids), the seed of its sampler, where its result goes."""

    index: int
    ids: list[int]
    seed: int
    limit: int
    out: list[int] = field(default_factory=list)
    finish: str = "length"


@functools.cache
def _slab_layer_class() -> type:
    """A KV-cache layer over a preallocated buffer (built lazily: it subclasses a transformers class)."""
    from transformers.cache_utils import DynamicLayer

    class SlabLayer(DynamicLayer):
        """One layer's KV cache in a preallocated buffer: appends write in place, rows can be dropped."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
            super().__init__()
            self.buf_k, self.buf_v, self.length = keys, values, length
            self.dtype, self.device = keys.dtype, keys.device
            self.is_initialized = True
            self._view()

        def _view(self) -> None:
            self.keys = self.buf_k[:, :, : self.length]
            self.values = self.buf_v[:, :, : self.length]

        def update(self, key_states, value_states, *args, **kwargs):
            new = self.length + key_states.shape[-2]
            self.buf_k[:, :, self.length : new] = key_states
            self.buf_v[:, :, self.length : new] = value_states
            self.length = new
            self._view()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            self.buf_k = self.buf_k.index_select(0, indices)
            self.buf_v = self.buf_v.index_select(0, indices)
            self._view()

    return SlabLayer


def _slab_cache(slabs: list[tuple[torch.Tensor, torch.Tensor]], length: int) -> Any:
    """A transformers Cache over preallocated per-layer buffers holding `length` positions."""
    from transformers.cache_utils import Cache

    layer = _slab_layer_class()
    return Cache(layers=[layer(k, v, length) for k, v in slabs])


class TransformersEngine(HFTokenizerEngine):
    """Generation with a local transformers model folder (see the module doc for what it adds).

    `batch_size` caps the sequences decoded together; `kv_cache_gb` caps their KV cache (long
    prompts get smaller batches); `prefill_tokens` caps the tokens of one prefill forward pass.
    """

    name = "transformers"

    def __init__(
        self,
        path: str | Path,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        batch_size: int = 256,
        threads: int | None = None,
        attn_implementation: str = "sdpa",
        kv_cache_gb: float = 6.0,
        prefill_tokens: int = 8192,
        progress: bool = True,
    ) -> None:
        from transformers import AutoModelForCausalLM

        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise RubricArmError(f"{self.path} is not a model folder (no config.json)")
        if dtype not in _DTYPES:
            raise InputError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        if threads:
            torch.set_num_threads(int(threads))
        self.batch_size = batch_size
        self.kv_cache_bytes = int(kv_cache_gb * 2**30)
        self.prefill_tokens = prefill_tokens
        self.progress = progress
        self.device = torch.device(device)
        self._lock = threading.Lock()

        self.tokenizer = load_tokenizer(self.path)
        self.model = AutoModelForCausalLM.from_pretrained(
            self.path,
            dtype=_DTYPES[dtype],
            attn_implementation=attn_implementation,
            use_safetensors=True,
        ).to(self.device)
        self.model.eval()

        text_config = self.model.config.get_text_config(decoder=True)
        self.context_length = int(getattr(text_config, "max_position_embeddings", 0) or 2048)
        self.stop_token_ids = self._find_stop_ids()
        self._pad_id = int(self.tokenizer.pad_token_id)
        self.fingerprint = model_fingerprint(self.path)
        head_dim = getattr(text_config, "head_dim", None) or (
            text_config.hidden_size // text_config.num_attention_heads
        )
        kv_heads = (
            getattr(text_config, "num_key_value_heads", None) or text_config.num_attention_heads
        )
        itemsize = torch.empty((), dtype=_DTYPES[dtype]).element_size()
        self._kv_bytes_per_token = (
            2 * text_config.num_hidden_layers * kv_heads * head_dim * itemsize
        )

    def use_weights(self, model: Any, fingerprint: str | None = None) -> None:
        """Serve an in-memory model of the same architecture and tokenizer (e.g. a trainer's
        frozen judge) instead of reloading a folder; `fingerprint` names the new weights."""
        self.model = model
        if fingerprint is not None:
            self.fingerprint = fingerprint

    def _find_stop_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.tokenizer.eos_token_id, self.model.generation_config.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(int(i) for i in source)
        im_end = self.tokenizer.convert_tokens_to_ids("<|im_end|>")
        if isinstance(im_end, int) and im_end != self.tokenizer.unk_token_id:
            ids.add(im_end)
        return ids

    # ------------------------------------------------------------------ tokens

    def encode_chats(self, chats: Sequence[Chat]) -> list[list[int]]:
        """Token ids of every rendered chat (one batched tokenizer call)."""
        texts = [self.render(c) for c in chats]
        return [list(x) for x in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    # ------------------------------------------------------------------ generation

    def generate(
        self, chats: Sequence[Chat], params: SamplingParams, *, desc: str | None = None
    ) -> list[list[Completion]]:
        if not chats:
            return []
        prompts = self.encode_chats(chats)
        for i, ids in enumerate(prompts):
            if len(ids) >= self.context_length:
                raise InputError(
                    f"chat {i} has {len(ids)} tokens, the model's context is {self.context_length}: truncate it"
                )
        base_seed = (
            params.seed if params.seed is not None else int.from_bytes(os.urandom(8), "little")
        )
        copies = 1 if params.greedy else params.n
        requests = [
            _Request(
                index=i * copies + j,
                ids=ids,
                seed=_derive_seed(base_seed, j, ids),
                limit=min(params.max_new_tokens, self.context_length - len(ids)),
            )
            for i, ids in enumerate(prompts)
            for j in range(copies)
        ]
        with self._lock, torch.inference_mode():
            self._run(requests, params, desc)
        done = sorted(requests, key=lambda r: r.index)
        results = []
        for i, ids in enumerate(prompts):
            mine = done[i * copies : (i + 1) * copies]
            completions = [self._completion(r, len(ids)) for r in mine]
            if copies == 1:
                completions = [replace(completions[0]) for _ in range(params.n)]
            results.append(completions)
        return results

    def _completion(self, request: _Request, prompt_tokens: int) -> Completion:
        body = request.out[:-1] if request.finish == "stop" else request.out
        text = self.tokenizer.decode(body, skip_special_tokens=True)
        return Completion(text, prompt_tokens, len(request.out), request.finish)  # type: ignore[arg-type]

    def _batches(self, requests: list[_Request]) -> list[list[_Request]]:
        """Longest prompts first; each batch within batch_size rows and the KV budget."""
        order = sorted(requests, key=lambda r: (-len(r.ids), r.index))
        batches: list[list[_Request]] = []
        current: list[_Request] = []
        for r in order:
            tokens = len(current[0].ids if current else r.ids) + max(x.limit for x in [*current, r])
            fits = (len(current) + 1) * tokens * self._kv_bytes_per_token <= self.kv_cache_bytes
            if current and (len(current) >= self.batch_size or not fits):
                batches.append(current)
                current = []
            current.append(r)
        if current:
            batches.append(current)
        return batches

    def _run(self, requests: list[_Request], params: SamplingParams, desc: str | None) -> None:
        batches = self._batches(requests)
        bar = tqdm(
            total=len(requests),
            desc=desc or "generate",
            unit="seq",
            disable=not self.progress,
            delay=2.0,
            leave=False,
        )
        started, produced = time.perf_counter(), 0
        try:
            for batch in batches:
                produced += self._run_batch(batch, params, bar)
                rate = produced / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix_str(f"{rate:.0f} tok/s", refresh=False)
        finally:
            bar.close()

    def _shared_prefix(self, batch: list[_Request]) -> int:
        """Tokens every prompt of the batch starts with (each keeps at least one of its own)."""
        if len(batch) < 2:
            return 0
        shared = len(os.path.commonprefix([r.ids for r in batch]))
        shared = min(shared, min(len(r.ids) for r in batch) - 1)
        return shared if shared >= _MIN_SHARED_PREFIX else 0

    def _prefix_units(self, batch: list[_Request], shared: int) -> list[tuple[int, list[int]]]:
        """Rows grouped by a further prefix they share: (prefix length, row indices) per unit.

        Rows whose prompts continue alike past the batch-wide prefix (the judge's instruction
        and rubric, shared by every pair of one prompt) form a unit whose common part is run
        once; the remaining rows form one unit at the batch-wide prefix. Rows of a unit come
        longest first.
        """
        order = sorted(range(len(batch)), key=lambda i: batch[i].ids)
        groups: list[list[int]] = [[order[0]]]
        for i in order[1:]:
            head = batch[groups[-1][0]].ids
            if len(os.path.commonprefix([head, batch[i].ids])) - shared >= _MIN_SHARED_PREFIX:
                groups[-1].append(i)
            else:
                groups.append([i])
        units: list[tuple[int, list[int]]] = []
        singles: list[int] = []
        for rows in groups:
            common = len(os.path.commonprefix([batch[r].ids for r in rows]))
            common = min(common, min(len(batch[r].ids) for r in rows) - 1)
            if len(rows) > 1 and common - shared >= _MIN_SHARED_PREFIX:
                units.append((common, rows))
            else:
                singles.extend(rows)
        if singles:
            units.append((shared, singles))
        return [
            (start, sorted(rows, key=lambda r: (-len(batch[r].ids), r))) for start, rows in units
        ]

    def _run_prefix(self, tokens: list[int], base: Any, offset: int) -> Any:
        """The KV cache of `tokens` (one sequence) continuing the cache `base` of `offset` tokens."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        if base is not None:
            for index, layer in enumerate(base.layers):
                cache.update(layer.keys, layer.values, index)
        self.model(
            input_ids=torch.tensor([tokens], device=self.device),
            position_ids=torch.arange(offset, offset + len(tokens), device=self.device)[None],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        return cache

    def _prefill(
        self, batch: list[_Request], capacity: int
    ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """Lay out the prompts, run them in micro-batches, return (cache, mask, last logits).

        Tokens shared by every prompt (the judge template's fixed text, mostly) are run once and
        their KV copied to every row at columns [0, shared); the rest of each prompt is
        right-aligned after it, pads in between. Rows that share a further prefix run it once
        too (see `_prefix_units`). Each micro-batch is padded only to its own longest remainder.
        """
        from transformers import DynamicCache

        shared = self._shared_prefix(batch)
        width = len(batch[0].ids)
        mask = torch.zeros((len(batch), width + capacity), dtype=torch.long, device=self.device)
        mask[:, :shared] = 1
        for row, r in enumerate(batch):
            mask[row, width - (len(r.ids) - shared) : width] = 1
        base = self._run_prefix(batch[0].ids[:shared], None, 0) if shared else None
        logits: list[torch.Tensor | None] = [None] * len(batch)
        slabs: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        for start, rows in self._prefix_units(batch, shared):
            prefix = base
            if start > shared:
                prefix = self._run_prefix(batch[rows[0]].ids[shared:start], base, shared)
            done = 0
            while done < len(rows):
                part_width = len(batch[rows[done]].ids) - start
                part = rows[done : done + max(1, self.prefill_tokens // part_width)]
                ids = torch.full((len(part), part_width), self._pad_id, dtype=torch.long)
                own = torch.zeros((len(part), part_width), dtype=torch.long)
                for j, row in enumerate(part):
                    tail = batch[row].ids[start:]
                    ids[j, part_width - len(tail) :] = torch.tensor(tail)
                    own[j, part_width - len(tail) :] = 1
                ids, own = ids.to(self.device), own.to(self.device)
                cache = DynamicCache(config=self.model.config)
                if prefix is not None:
                    for index, layer in enumerate(prefix.layers):
                        cache.update(
                            layer.keys.expand(len(part), -1, -1, -1),
                            layer.values.expand(len(part), -1, -1, -1),
                            index,
                        )
                out = self.model(
                    input_ids=ids,
                    attention_mask=torch.cat([own.new_ones((len(part), start)), own], dim=1),
                    position_ids=start + (own.cumsum(-1) - 1).clamp(min=0),
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                if slabs is None:
                    slabs = [
                        _empty_like_rows(layer, len(batch), width + capacity)
                        for layer in cache.layers
                    ]
                for j, row in enumerate(part):
                    logits[row] = out.logits[j, -1, :].float()
                    tail = len(batch[row].ids) - start
                    first = width - (len(batch[row].ids) - shared)
                    for (keys, values), layer in zip(slabs, cache.layers, strict=True):
                        for buf, src in ((keys, layer.keys), (values, layer.values)):
                            buf[row, :, :shared] = src[j, :, :shared]
                            buf[row, :, shared:first] = 0
                            buf[row, :, first : width - tail] = src[j, :, shared:start]
                            buf[row, :, width - tail : width] = src[
                                j, :, start + part_width - tail :
                            ]
                done += len(part)
        assert slabs is not None
        return _slab_cache(slabs, width), mask, torch.stack(logits)  # type: ignore[arg-type]

    def _run_batch(self, batch: list[_Request], params: SamplingParams, bar: tqdm) -> int:
        """Decode one batch to the end; finished rows leave the batch. Returns tokens generated."""
        capacity = max(r.limit for r in batch)
        cache, mask, logits = self._prefill(batch, capacity)
        width = cache.layers[0].length
        positions = torch.tensor([len(r.ids) for r in batch], device=self.device)
        generators = None
        if not params.greedy:
            generators = [torch.Generator(device=self.device).manual_seed(r.seed) for r in batch]
        rows: list[int | None] = list(range(len(batch)))
        dead, produced = 0, 0
        for step in range(capacity):
            tokens = _choose(logits, params, generators)
            for pos, tok in enumerate(tokens.tolist()):
                row = rows[pos]
                if row is None:
                    continue
                r = batch[row]
                r.out.append(tok)
                produced += 1
                if tok in self.stop_token_ids:
                    r.finish = "stop"
                elif len(r.out) < r.limit:
                    continue
                rows[pos] = None
                dead += 1
                bar.update(1)
            if dead == len(rows) or step == capacity - 1:
                break
            if dead * 8 >= len(rows):
                alive = [p for p, row in enumerate(rows) if row is not None]
                if generators is not None:
                    generators = [generators[p] for p in alive]
                keep = torch.tensor(alive, device=self.device)
                cache.batch_select_indices(keep)
                mask, positions, tokens = mask[keep], positions[keep], tokens[keep]
                rows, dead = [row for row in rows if row is not None], 0
            mask[:, width + step] = 1
            out = self.model(
                input_ids=tokens[:, None],
                attention_mask=mask[:, : width + step + 1],
                position_ids=positions[:, None],
                past_key_values=cache,
                use_cache=True,
            )
            positions = positions + 1
            logits = out.logits[:, -1, :].float()
        return produced


def _empty_like_rows(layer: Any, rows: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    k, v = layer.keys, layer.values
    return (
        k.new_empty((rows, k.shape[1], length, k.shape[3])),
        v.new_empty((rows, v.shape[1], length, v.shape[3])),
    )


def _derive_seed(base: int, sample: int, ids: list[int]) -> int:
    """A sequence's own seed: from the call's seed, the sample number and the prompt itself."""
    digest = hashlib.sha256(f"{base}:{sample}:".encode() + repr(ids).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _choose(logits: torch.Tensor, params: SamplingParams, generators: list | None) -> torch.Tensor:
    """Next token per row: argmax when greedy, else temperature + top-p sampling per row."""
    if params.greedy or generators is None:
        return logits.argmax(dim=-1)
    logits = logits / params.temperature
    if params.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = (cum - sorted_logits.softmax(dim=-1)) >= params.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    picks = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)]
    return torch.cat(picks)
