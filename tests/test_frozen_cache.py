"""The frozen-layer cache: later passes read the lower layers' output instead of computing it,
with the same logits and gradients, and the model is left as it was."""

from __future__ import annotations

from pathlib import Path

import torch

from rubric_arm.trainer.frozen_cache import FrozenLayerCache, frozen_prefix_length
from rubric_arm.trainer.loop import freeze_lower_layers


def _model(path: Path, trainable: int | None) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    freeze_lower_layers(model, trainable)
    return model.train()


def _batch(rows: list[list[int]], pad: int, *, left: bool = False) -> dict[str, torch.Tensor]:
    """Rows padded to one width, on the right (as TRL's SFT collator does) or on the left."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[r, span], mask[r, span] = torch.tensor(row), 1
    return {"input_ids": ids, "attention_mask": mask}


ROWS = [[5, 9, 23, 41, 7, 8], [11, 12, 13], [30, 31, 32, 33, 34, 35, 36, 37], [40, 41]]


def _loss_and_grads(model: torch.nn.Module, batch: dict[str, torch.Tensor]):
    model.zero_grad()
    out = model(**batch)
    loss = (out.logits.float() * batch["attention_mask"][..., None]).square().mean()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach(), grads


def test_cached_passes_match_fresh_ones_in_logits_and_gradients(tiny_model_path: Path) -> None:
    model = _model(tiny_model_path, trainable=1)
    layers = model.get_decoder().layers
    assert frozen_prefix_length(model) == len(layers) - 1 >= 1
    pad = int(model.config.pad_token_id)
    first, later = _batch(ROWS[:2], pad), _batch([ROWS[1], ROWS[3], ROWS[0]], pad)
    want = [_loss_and_grads(model, b) for b in (first, later, _batch(ROWS[2:], pad))]
    names = set(want[0][1])
    assert names and all(".layers." + str(len(layers) - 1) in n or "norm" in n for n in names)

    keys_before = list(model.state_dict())
    cache = FrozenLayerCache()
    with cache.attach(model):
        got_first = _loss_and_grads(model, first)  # computed and stored
        assert (cache.misses, cache.hits) == (2, 0) and len(cache.rows) == 2
        other = _batch([ROWS[1], ROWS[3], ROWS[0]], pad)  # row 3 is new: the batch is computed
        _loss_and_grads(model, other)
        assert cache.misses == 5 and len(cache.rows) == 3
        got_later = _loss_and_grads(model, later)  # every row cached, another width and order
        assert cache.hits == 3
        got_new = _loss_and_grads(model, _batch(ROWS[2:], pad))
    batches = [first, later, _batch(ROWS[2:], pad)]
    for (logits, grads), (ref_logits, ref_grads), b in zip(
        [got_first, got_later, got_new], want, batches, strict=True
    ):
        real = b["attention_mask"].bool()
        assert torch.allclose(logits[real], ref_logits[real], atol=1e-5)
        assert set(grads) == names
        for n in names:
            assert torch.allclose(grads[n], ref_grads[n], atol=1e-5, rtol=1e-4), n
    assert list(model.state_dict()) == keys_before
    assert all("forward" not in layer.__dict__ for layer in layers)


def test_the_cache_keys_rows_by_offset_and_ignores_models_without_frozen_layers(
    tiny_model_path: Path,
) -> None:
    model = _model(tiny_model_path, trainable=1)
    pad = int(model.config.pad_token_id)
    cache = FrozenLayerCache()
    with cache.attach(model), torch.no_grad():
        model(**_batch(ROWS[:2], pad))
        model(**_batch(ROWS[:2], pad, left=True))  # row 1 starts later: not a hit
        assert cache.hits == 0 and len(cache.rows) == 3
        holes = torch.tensor([[1, 1, 1], [1, 0, 1]])
        model(input_ids=torch.tensor([[7, 7, 7], [8, 0, 8]]), attention_mask=holes)
        assert len(cache.rows) == 3  # a hole in the mask: computed, not stored
        model.get_decoder()(**_batch(ROWS[:2], pad))  # past the hook: computed, nothing counted
        assert (cache.hits, cache.misses) == (0, 4)

    whole = _model(tiny_model_path, trainable=None)
    assert frozen_prefix_length(whole) == 0
    cache = FrozenLayerCache()
    with cache.attach(whole), torch.no_grad():
        whole(**_batch(ROWS[:2], pad))
    assert cache.rows == {} and cache.misses == 0


def test_sft_phase_reuses_the_first_epoch(tiny_model_path: Path, tmp_path: Path) -> None:
    """A 2-epoch warm-up with `cache_frozen_layers` serves every second-epoch row from the
    cache and records the counts in metrics.jsonl."""
    import json

    from datasets import Dataset
    from transformers import AutoTokenizer

    from rubric_arm.trainer.config import HardwareConfig, SFTPhaseConfig
    from rubric_arm.trainer.phases import Phase, run_sft

    model = _model(tiny_model_path, trainable=1)
    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    rows = [
        {
            "prompt": [{"role": "user", "content": f"say {w}"}],
            "completion": [{"role": "assistant", "content": w}],
        }
        for w in ("red", "green", "blue", "black", "white", "grey")
    ]
    cfg = SFTPhaseConfig(
        num_train_epochs=2, per_device_train_batch_size=2, cache_frozen_layers=True
    )
    phase = Phase(name="sft-judge", role="judge", run_dir=tmp_path, seed=0)
    run_sft(model, tok, Dataset.from_list(rows), cfg, HardwareConfig(use_cpu=True), phase)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    (line,) = [json.loads(x) for x in lines if "frozen_cache_rows" in x]
    assert line["frozen_cache_rows"] == 6 and line["frozen_cache_misses"] == 6
    assert line["frozen_cache_hits"] >= 4 and line["frozen_cache_mb"] >= 0
    assert (phase.export_dir / "config.json").is_file()
