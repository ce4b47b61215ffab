"""Text-generation engines behind one interface, loaded once per process.

`load_engine` caches instances by (engine, resolved model folder, options): asking twice for
the same model returns the same object, so a generator and a judge that share a model share
its weights too.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rubric_arm.engines.base import Engine
from rubric_arm.errors import InputError

_ENGINES = ("transformers", "vllm", "openai")
_cache: dict[tuple[str, str, str], Engine] = {}
_lock = threading.Lock()


def available_engines() -> list[str]:
    """Engine names `load_engine` accepts (vllm also needs the vllm package and a GPU; openai an
    OpenAI-compatible server, its `base_url` passed as an engine option)."""
    return list(_ENGINES)


def _construct(engine: str, path: Path | str, kwargs: dict[str, Any]) -> Engine:
    if engine == "openai":
        from rubric_arm.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(str(path), **kwargs)
    if engine == "transformers":
        from rubric_arm.engines.transformers_engine import TransformersEngine

        return TransformersEngine(path, **kwargs)
    from rubric_arm.engines.vllm_engine import VLLMEngine

    return VLLMEngine(Path(path), **kwargs)


def load_engine(model: str, engine: str = "transformers", **kwargs: Any) -> Engine:
    """The engine for `model` (a name, hub id or folder; see rubric_arm.models), loaded once."""
    from rubric_arm.models import resolve_model

    if engine not in _ENGINES:
        raise InputError(f"unknown engine {engine!r}: choose one of {', '.join(_ENGINES)}")
    # an openai model is a name on the server, not a local folder
    path = str(model) if engine == "openai" else resolve_model(str(model))
    key = (engine, str(path), repr(sorted(kwargs.items())))
    with _lock:
        if key not in _cache:
            _cache[key] = _construct(engine, path, kwargs)
        return _cache[key]


def clear_engine_cache() -> None:
    """Forget every loaded engine (closing it), e.g. between experiments that need the memory."""
    with _lock:
        for engine in _cache.values():
            engine.close()
        _cache.clear()


__all__ = ["Engine", "available_engines", "clear_engine_cache", "load_engine"]
