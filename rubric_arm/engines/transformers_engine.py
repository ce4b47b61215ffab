"""The default engine: batched generation with transformers, tuned for small models on CPU.

It runs its own decode loop instead of `model.generate` so that it can (1) keep the KV cache
in preallocated buffers written in place (no per-step concatenation), (2) drop finished
sequences from the batch as they end, (3) prefill long prompts in micro-batches under a
token budget, (4) sample every sequence from its own seeded generator, so a seeded
sample does not depend on which other prompts share its batch, and (5) under an output
grammar, feed the text the grammar forces without sampling it, several tokens a step.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
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
from rubric_arm.types import Chat, Completion, Constraint, SamplingParams, VerdictProbe

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
    grammar: Any = None
    prompt_tokens: int = 0
    forced: int = 0
    stop_token: bool = False
    label_probs: dict[str, float] | None = None
    logprobs: list[float | None] | None = None

    def force(self, tokens: list[int]) -> None:
        """Append tokens the grammar forced (not sampled: no log-probability)."""
        self.out += tokens
        self.forced += len(tokens)
        if self.logprobs is not None:
            self.logprobs += [None] * len(tokens)


GQA_SDPA = "rubric_arm_gqa_sdpa"


@functools.cache
def register_gqa_sdpa() -> str:
    """Register transformers' SDPA attention with grouped-query heads attended in place.

    transformers passes `enable_gqa` only without a mask; with a mask and more than one query
    token it copies every key and value head (`repeat_kv`). On CPU that copy cost 37-53 ms per
    layer at batch 8 over 2,500 cached tokens, against 2.5-6.5 ms with `enable_gqa=True`
    (same output), so a multi-token decode step (a jump-forward) paid ~1 s in copies.
    """
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    def forward(
        module: Any,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, None]:
        groups = getattr(module, "num_key_value_groups", 1)
        if groups == 1 or query.shape[2] == 1 or key.shape[-1] != value.shape[-1]:
            return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
        out = torch.nn.functional.scaled_dot_product_attention(
            query,
            key,
            value,
            attn_mask=attention_mask,
            dropout_p=kwargs.get("dropout", 0.0),
            scale=kwargs.get("scaling"),
            is_causal=query.shape[2] > 1 and attention_mask is None,
            enable_gqa=True,
        )
        return out.transpose(1, 2).contiguous(), None

    AttentionInterface.register(GQA_SDPA, forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(GQA_SDPA, sdpa_mask)
    return GQA_SDPA


def prefer_gqa_attention(model: Any) -> None:
    """Switch a CPU model on transformers' SDPA to the same attention without key/value head
    copies (`register_gqa_sdpa`); identical outputs and gradients. Other models are left as is."""
    device = next(model.parameters()).device
    if device.type == "cpu" and getattr(model.config, "_attn_implementation", None) == "sdpa":
        model.set_attn_implementation(register_gqa_sdpa())


def float32_output_layer(model: Any) -> None:
    """Give a bf16/fp16 model an untied float32 output layer fed float32 hidden states: a 16-bit
    head rounds logits to about 3 digits, so close P(Meets) / P(A) values tie or swap (in bf16,
    57 of 267 held-out mini pairs scored exactly 0.5). The body keeps its 16-bit speed."""
    head = model.get_output_embeddings()
    if head is None or head.weight.dtype == torch.float32:
        return
    exact = torch.nn.Linear(head.in_features, head.out_features, bias=head.bias is not None)
    exact = exact.to(device=head.weight.device, dtype=torch.float32)
    with torch.no_grad():
        exact.weight.copy_(head.weight)
        if head.bias is not None:
            exact.bias.copy_(head.bias)
    exact.register_forward_pre_hook(lambda _, args: tuple(a.float() for a in args))
    model.set_output_embeddings(exact)


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

        def reserve(self, columns: int) -> None:
            """Make room for at least `columns` positions (reallocates when short)."""
            have = self.buf_k.shape[2]
            if columns <= have:
                return
            grow = max(columns - have, have // 2)
            pad = (0, 0, 0, grow)
            self.buf_k = torch.nn.functional.pad(self.buf_k, pad)
            self.buf_v = torch.nn.functional.pad(self.buf_v, pad)
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
    prompts get smaller batches); `prefill_tokens` caps the tokens of one prefill forward pass;
    `jump_tokens` caps the tokens one row feeds in a decode step (grammar-forced runs go in one
    forward: jump-forward); `jump_overhead` is a decode step's fixed cost in units of one token
    column across the batch, which decides how wide a step is worth making (see `_jump_width`).
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
        jump_tokens: int = 64,
        jump_overhead: float = 6.0,
        progress: bool = True,
        model: Any = None,
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
        self.jump_tokens = jump_tokens
        self.jump_overhead = jump_overhead
        self._lock = threading.Lock()
        self._grammars: Any = None

        self.tokenizer = load_tokenizer(self.path)
        if model is not None:  # a live model (e.g. a trainer's policy): served as it is
            self.model = model
            self.device = next(model.parameters()).device
        else:
            self.model = AutoModelForCausalLM.from_pretrained(
                self.path,
                dtype=_DTYPES[dtype],
                attn_implementation=attn_implementation,
                use_safetensors=True,
            ).to(self.device)
            self.model.eval()
            prefer_gqa_attention(self.model)
            float32_output_layer(self.model)

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
        itemsize = next(self.model.parameters()).element_size()
        self._kv_bytes_per_token = (
            2 * text_config.num_hidden_layers * kv_heads * head_dim * itemsize
        )

    def _cache_arg(self, cache: Any) -> dict[str, Any]:
        """The KV cache as the model's forward names it (`cache` from transformers 5.2x on,
        `past_key_values` before; the old name warns on every call where both exist)."""
        name = self.__dict__.get("_cache_name")
        if name is None:
            params = inspect.signature(type(self.model).forward).parameters
            name = self._cache_name = "cache" if "cache" in params else "past_key_values"
        return {name: cache}

    def use_weights(self, model: Any, fingerprint: str | None = None) -> None:
        """Serve an in-memory model of the same architecture and tokenizer (e.g. a trainer's
        frozen judge) instead of reloading a folder; `fingerprint` names the new weights."""
        self.model = model
        self.__dict__.pop("_cache_name", None)
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

    supports_constraints = True

    def grammar_runtime(self) -> Any:
        """The xgrammar state of this engine's tokenizer (built on first use)."""
        if self._grammars is None:
            from rubric_arm.engines.constrained import GrammarRuntime

            vocab = int(self.model.get_output_embeddings().weight.shape[0])
            self._grammars = GrammarRuntime(
                self.tokenizer, vocab, self.stop_token_ids, threads=torch.get_num_threads()
            )
        return self._grammars

    def constraint_stats(self) -> dict[str, Any]:
        """Counters of constrained decoding so far (compile and mask time, forced tokens)."""
        return {} if self._grammars is None else self._grammars.stats.to_dict()

    def generate(
        self,
        chats: Sequence[Chat],
        params: SamplingParams,
        *,
        desc: str | None = None,
        constraints: Sequence[Constraint | None] | None = None,
        probe: VerdictProbe | None = None,
    ) -> list[list[Completion]]:
        if not chats:
            return []
        return self.generate_ids(
            self.encode_chats(chats), params, desc=desc, constraints=constraints, probe=probe
        )

    @torch.inference_mode()
    def last_token_logits(
        self,
        prompts: Sequence[Sequence[int]],
        token_ids: Sequence[int],
        *,
        batch_size: int = 8,
        desc: str | None = None,
    ) -> list[list[float]]:
        """The logits of `token_ids` for the token after each prompt (one forward pass each,
        nothing generated); rows run length-sorted in left-padded batches of `batch_size`. Only
        the last position goes through the output layer (`logits_to_keep=1`)."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        pad = self.tokenizer.pad_token_id
        pad = self.tokenizer.eos_token_id if pad is None else pad
        out: list[list[float]] = [[] for _ in prompts]
        with tqdm(total=len(prompts), desc=desc or "score", disable=len(prompts) < 32) as bar:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                width = max(len(prompts[i]) for i in rows)
                ids = torch.full((len(rows), width), pad, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, i in enumerate(rows):
                    ids[r, width - len(prompts[i]) :] = torch.tensor(list(prompts[i]))
                    mask[r, width - len(prompts[i]) :] = 1
                logits = self.model(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=(mask.cumsum(-1) - 1).clamp(min=0).to(self.device),
                    logits_to_keep=1,
                ).logits[:, -1, list(token_ids)]
                for i, row in zip(rows, logits.float().tolist(), strict=True):
                    out[i] = row
                bar.update(len(rows))
        return out

    def next_label_probs(
        self,
        chats: Sequence[Chat],
        labels: Sequence[str],
        *,
        desc: str | None = None,
        batch_size: int = 8,
    ) -> list[dict[str, float]]:
        """P(label) at the reply's first token, over the first token of each label's spelling."""
        firsts = [
            self.tokenizer(label, add_special_tokens=False)["input_ids"][0] for label in labels
        ]
        if len(set(firsts)) != len(firsts):
            raise InputError(f"labels {list(labels)} share their first token; pick other labels")
        logits = self.last_token_logits(
            self.encode_chats(chats), firsts, batch_size=batch_size, desc=desc
        )
        return [
            dict(zip(labels, torch.tensor(row).softmax(-1).tolist(), strict=True)) for row in logits
        ]

    def generate_ids(
        self,
        prompts: Sequence[Sequence[int]],
        params: SamplingParams,
        *,
        desc: str | None = None,
        constraints: Sequence[Constraint | None] | None = None,
        probe: VerdictProbe | None = None,
    ) -> list[list[Completion]]:
        """`generate` from prompts already tokenized (e.g. chat-templated by a trainer)."""
        if not prompts:
            return []
        if constraints is not None and len(constraints) != len(prompts):
            raise InputError(f"got {len(constraints)} constraints for {len(prompts)} prompts")
        for i, ids in enumerate(prompts):
            if len(ids) >= self.context_length:
                raise InputError(
                    f"prompt {i} has {len(ids)} tokens, the model's context is "
                    f"{self.context_length}: truncate it"
                )
        base_seed = (
            params.seed if params.seed is not None else int.from_bytes(os.urandom(8), "little")
        )
        copies = 1 if params.greedy else params.n
        runtime = self.grammar_runtime() if constraints is not None and any(constraints) else None
        requests = []
        for i, prompt in enumerate(prompts):
            ids = list(prompt)
            for j in range(copies):
                r = _Request(
                    index=i * copies + j,
                    ids=list(ids),
                    seed=_derive_seed(base_seed, j, ids),
                    limit=min(params.max_new_tokens, self.context_length - len(ids)),
                    prompt_tokens=len(ids),
                    logprobs=[] if params.logprobs else None,
                )
                constraint = constraints[i] if constraints is not None else None
                if constraint is not None and runtime is not None:
                    r.grammar = runtime.row(constraint)
                    lead = r.grammar.forced()[: r.limit]
                    # text forced before the first sampled token joins the prompt's prefill
                    r.ids += lead
                    r.force(lead)
                requests.append(r)
        with self._lock, torch.inference_mode():
            self._run(requests, params, desc, probe)
        done = sorted(requests, key=lambda r: r.index)
        results = []
        for i in range(len(prompts)):
            mine = done[i * copies : (i + 1) * copies]
            completions = [self._completion(r) for r in mine]
            if copies == 1:
                completions = [replace(completions[0]) for _ in range(params.n)]
            results.append(completions)
        return results

    def _completion(self, request: _Request) -> Completion:
        body = request.out[:-1] if request.stop_token else request.out
        text = self.tokenizer.decode(body, skip_special_tokens=True)
        return Completion(
            text,
            request.prompt_tokens,
            len(request.out),
            request.finish,  # type: ignore[arg-type]
            forced_tokens=request.forced,
            label_probs=request.label_probs,
            token_ids=tuple(request.out),
            token_logprobs=None if request.logprobs is None else tuple(request.logprobs),
        )

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

    def _run(
        self,
        requests: list[_Request],
        params: SamplingParams,
        desc: str | None,
        probe: VerdictProbe | None = None,
    ) -> None:
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
                produced += self._run_batch(batch, params, bar, probe)
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
            **self._cache_arg(cache),
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
                    **self._cache_arg(cache),
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

    def _run_batch(
        self, batch: list[_Request], params: SamplingParams, bar: tqdm, probe: VerdictProbe | None
    ) -> int:
        """Decode one batch to the end; finished rows leave the batch. Returns tokens generated.

        Each row keeps a queue of tokens to feed: the token it just sampled, then any text its
        grammar forces. A step is `_jump_width` columns wide; each live row feeds up to that many
        tokens from its queue (a shorter queue leaves masked hole columns), and only rows whose
        queue is then empty sample; rows whose queue runs on skip sampling.
        """
        capacity = max(r.limit - len(r.out) for r in batch)
        cache, mask, logits = self._prefill(batch, capacity)
        col = cache.layers[0].length
        positions = torch.tensor([len(r.ids) for r in batch], device=self.device)
        generators = None
        if not params.greedy:
            generators = [torch.Generator(device=self.device).manual_seed(r.seed) for r in batch]
        rows: list[int | None] = list(range(len(batch)))
        queues: list[list[int]] = [[] for _ in batch]
        runtime = self._grammars if any(r.grammar is not None for r in batch) else None
        reader = None
        if probe is not None:
            from rubric_arm.engines.constrained import LabelReader

            ids = runtime.label_ids(probe) if runtime is not None else self._label_ids(probe)
            reader = LabelReader(probe, ids, self.tokenizer)
        bitmask = runtime.allocate(len(batch)) if runtime is not None else None
        dead, before = 0, sum(len(r.out) for r in batch)
        while True:
            need = [p for p, row in enumerate(rows) if row is not None and not queues[p]]
            closing: dict[int, int] = {}
            if need:
                sub = logits[need] if len(need) < len(rows) else logits
                grammared = [
                    (k, batch[rows[p]].grammar)  # type: ignore[index]
                    for k, p in enumerate(need)
                    if batch[rows[p]].grammar is not None  # type: ignore[index]
                ]
                if grammared and runtime is not None and bitmask is not None:
                    started = time.perf_counter()
                    words = bitmask[: len(grammared)]
                    top = sub.argmax(dim=-1).tolist()
                    rows_g = [g for _, g in grammared]
                    ends = runtime.fill(rows_g, words, [top[k] for k, _ in grammared])
                    for j, tok in runtime.closing(rows_g, words, ends).items():
                        closing[grammared[j][0]] = tok
                    if len(grammared) == len(need):
                        runtime.apply(sub, words)
                    else:
                        picked = sub[[k for k, _ in grammared]]
                        runtime.apply(picked, words)
                        sub[[k for k, _ in grammared]] = picked
                    runtime.stats.mask_seconds += time.perf_counter() - started
                    runtime.stats.masked_tokens += len(grammared)
                # read after the mask: under a grammar P(A) is over the spellings it allows there
                label_logits = reader.logits(sub) if reader is not None else None
                gens = None if generators is None else [generators[p] for p in need]
                chosen = _choose(sub, params, gens)
                tokens = chosen.tolist()
                for k, tok in closing.items():
                    tokens[k] = tok
                logps: list[float | None] = [None] * len(tokens)
                if params.logprobs:
                    scaled = sub if params.greedy else sub / params.temperature
                    picked = torch.log_softmax(scaled.float(), dim=-1).gather(1, chosen[:, None])
                    logps = picked.squeeze(1).tolist()
                    for k in closing:  # the budget rule chose it, not the sampler
                        logps[k] = None
                for k, (p, tok) in enumerate(zip(need, tokens, strict=True)):
                    r = batch[rows[p]]  # type: ignore[index]
                    if reader is not None and label_logits is not None:
                        read = reader.read(tok, r.out, label_logits[k])
                        if read is not None:
                            r.label_probs = read
                    if self._take(r, tok, queues[p], runtime, logps[k]):
                        rows[p] = None
                        dead += 1
                        bar.update(1)
            if dead == len(rows):
                break
            if dead * 8 >= len(rows):
                alive = [p for p, row in enumerate(rows) if row is not None]
                if generators is not None:
                    generators = [generators[p] for p in alive]
                keep = torch.tensor(alive, device=self.device)
                cache.batch_select_indices(keep)
                mask, positions = mask[keep], positions[keep]
                queues = [queues[p] for p in alive]
                rows, dead = [rows[p] for p in alive], 0
            live = [p for p, row in enumerate(rows) if row is not None]
            width = self._jump_width([len(queues[p]) for p in live])
            feed = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
            real = torch.ones(len(rows), dtype=torch.long)
            for p in live:
                take = queues[p][:width]
                del queues[p][:width]
                feed[p, : len(take)] = torch.tensor(take)
                real[p] = len(take)
            for layer in cache.layers:
                layer.reserve(col + width)
            if mask.shape[1] < col + width:
                grow = max(col + width - mask.shape[1], mask.shape[1] // 2)
                mask = torch.nn.functional.pad(mask, (0, grow))
            offsets = torch.arange(width, device=self.device)
            real = real.to(self.device)
            mask[:, col : col + width] = (offsets[None, :] < real[:, None]).long()
            out = self.model(
                input_ids=feed.to(self.device),
                attention_mask=mask[:, : col + width],
                position_ids=positions[:, None] + offsets[None, :],
                **self._cache_arg(cache),
                use_cache=True,
                logits_to_keep=width,
            )
            col += width
            positions = positions + real
            last = out.logits[torch.arange(len(rows), device=self.device), real - 1]
            logits = last.float()
        return sum(len(r.out) for r in batch) - before

    def _jump_width(self, queued: list[int]) -> int:
        """Columns of the next decode step: the width that feeds the most queued tokens per unit
        of step cost, cost = `jump_overhead` + width (both in token columns across the batch).

        A row with fewer queued tokens than the width leaves masked holes that later steps
        attend over, so a wide step pays only when enough rows have forced runs queued. Measured
        here (SmolLM2-135M, 2 cores, 1,500 cached tokens, batch 8 and 24): a step of width w cost
        about (6.7 + w) times the per-column cost, so the default overhead is 6.
        """
        best, best_rate = 1, 0.0
        for width in sorted({min(max(q, 1), self.jump_tokens) for q in queued}):
            rate = sum(min(q, width) for q in queued) / (self.jump_overhead + width)
            if rate > best_rate:
                best, best_rate = width, rate
        return best

    def _label_ids(self, probe: VerdictProbe) -> dict[str, list[int]]:
        """Token ids of each probe label for free decoding (no grammar runtime needed)."""
        from rubric_arm.engines.constrained import label_token_ids

        key = ("labels", probe.labels)
        cached = self.__dict__.setdefault("_label_cache", {})
        if key not in cached:
            texts = self.tokenizer.convert_ids_to_tokens(list(range(len(self.tokenizer))))
            texts = [self.tokenizer.convert_tokens_to_string([t]) if t else "" for t in texts]
            special = set(self.tokenizer.all_special_ids)
            texts = ["" if i in special else t for i, t in enumerate(texts)]
            cached[key] = label_token_ids(texts, probe.labels)
        return cached[key]

    def _take(
        self, r: _Request, tok: int, queue: list[int], runtime: Any, logp: float | None = None
    ) -> bool:
        """Record a sampled token (and the text its grammar then forces); True if the row ends."""
        r.out.append(tok)
        if r.logprobs is not None:
            r.logprobs.append(logp)
        if runtime is not None:
            runtime.stats.sampled_tokens += 1
        if tok in self.stop_token_ids:
            r.finish, r.stop_token = "stop", True
            return True
        queue.append(tok)
        grammar = r.grammar
        if grammar is not None:
            if not grammar.accept(tok):
                raise RubricArmError(f"the grammar refused token {tok} that its own mask allowed")
            forced = grammar.forced()[: max(0, r.limit - len(r.out))]
            r.force(forced)
            queue += forced
            runtime.stats.forced_tokens += len(forced)
            if grammar.finished():
                r.finish = "stop"
                return True
        return len(r.out) >= r.limit


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
