"""Reuse the frozen lower layers' output of a warm-up row in later epochs.

With `trainable_layers: N` the lower decoder layers never change during a phase, so a row's
hidden state at the first trained layer is the same in every epoch. `FrozenLayerCache` keeps it
from the row's first forward pass and feeds it to the trained layers afterwards: on SmolLM2 with
10 of 30 layers trained, the frozen forward is about 40% of an SFT step's compute. The values are
those of the first pass, computed in another batch, so they can differ from a fresh pass in the
last bits (batch shape changes the kernels' summation order), as between two runs of one batch.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any

import torch


def frozen_prefix_length(model: Any) -> int:
    """How many lower decoder layers have no trainable parameter (0 when the first one trains)."""
    count = 0
    for layer in model.get_decoder().layers:
        if any(p.requires_grad for p in layer.parameters()):
            break
        count += 1
    return count


class FrozenLayerCache:
    """Per-row output of the frozen lower layers, keyed by the row's real tokens, their offset
    and their position ids when the batch has them.

    Active inside `attach(model)`: a pre-hook reads each forward's `input_ids` and
    `attention_mask`, the lowest layer runs the whole frozen stack (or copies the cached rows
    when every row of the batch is cached) and the other frozen layers pass their input through.
    Layer modules and weights are untouched, so saving the model is unaffected.
    """

    def __init__(self) -> None:
        self.rows: dict[bytes, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0
        self._batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    @property
    def cached_bytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.rows.values())

    @contextlib.contextmanager
    def attach(self, model: Any) -> Iterator[FrozenLayerCache]:
        """Serve `model`'s frozen layers from the cache until the block ends (no-op without any)."""
        layers = model.get_decoder().layers
        frozen = frozen_prefix_length(model)
        if frozen == 0 or frozen == len(layers):
            yield self
            return
        stack = list(layers[:frozen])
        hook = model.register_forward_pre_hook(self._capture, with_kwargs=True)
        stack[0].forward = self._stack_forward(stack)
        for layer in stack[1:]:
            layer.forward = _pass_through
        try:
            yield self
        finally:
            hook.remove()
            for layer in stack:
                del layer.forward
            self._batch = None

    def _capture(self, _module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        if ids is None or kwargs.get("inputs_embeds") is not None:
            self._batch = None
            return
        mask = torch.ones_like(ids) if mask is None else mask
        self._batch = (ids, mask, kwargs.get("position_ids"))

    def _keys(self, shape: torch.Size) -> list[tuple[bytes, slice]] | None:
        """Each row's cache key and its span of real tokens; None when the captured batch does not
        fit this forward or a row's real tokens are not one contiguous span."""
        if self._batch is None or tuple(self._batch[0].shape) != tuple(shape):
            return None
        all_ids, masks, positions = self._batch
        keys = []
        for row, (ids, mask) in enumerate(zip(all_ids, masks, strict=True)):
            real = mask.nonzero().flatten()
            if real.numel() == 0 or real[-1] - real[0] + 1 != real.numel():
                return None
            span = slice(int(real[0]), int(real[-1]) + 1)
            digest = hashlib.blake2b(ids[span].cpu().numpy().tobytes(), digest_size=16)
            digest.update(span.start.to_bytes(4, "big"))
            if positions is not None:
                digest.update(positions[row][span].cpu().numpy().tobytes())
            keys.append((digest.digest(), span))
        return keys

    def _stack_forward(self, stack: list[Any]) -> Any:
        originals = [type(layer).forward.__get__(layer) for layer in stack]

        def forward(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            keys = self._keys(hidden_states.shape[:2])
            self._batch = None  # one forward per capture: a call that bypassed the hook computes
            if keys is not None and all(key in self.rows for key, _ in keys):
                self.hits += len(keys)
                out = torch.zeros_like(hidden_states)
                for row, (key, span) in enumerate(keys):
                    out[row, span] = self.rows[key].to(out.dtype)
                return out
            for original in originals:
                hidden_states = original(hidden_states, *args, **kwargs)
            if keys is not None:
                self.misses += len(keys)
                for row, (key, span) in enumerate(keys):
                    self.rows[key] = hidden_states[row, span].detach().clone()
            return hidden_states

        return forward


def _pass_through(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return hidden_states
