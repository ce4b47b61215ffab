"""Engine options from the command line: -J engine.KEY for pipeline judges, -E for `judge`."""

from __future__ import annotations

from typing import Any

import pytest

from rubric_arm.errors import InputError
from rubric_arm.harness import judges
from rubric_arm.pipeline import RubricARM


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """RubricARM.from_preset records its keyword arguments instead of loading models."""
    calls: list[dict[str, Any]] = []

    def fake(name: Any, **overrides: Any) -> Any:
        calls.append({"preset": name, **overrides})
        raise RuntimeError("captured")

    monkeypatch.setattr(RubricARM, "from_preset", staticmethod(fake))
    return calls


def test_engine_options_reach_the_engine_of_pipeline_judges(captured) -> None:
    args = judges.parse_judge_args(
        ["engine=openai", "engine.base-url=http://a/v1,http://b/v1", "engine.retries=3"]
    )
    for name in ("rubric-arm", "prompted-rubric", "direct"):
        with pytest.raises(RuntimeError, match="captured"):
            judges.make_judge(name, args)
        call = captured.pop()
        assert call["engine"] == "openai"
        assert call["engine_kwargs"] == {"base_url": "http://a/v1,http://b/v1", "retries": 3}
        assert not any(k.startswith("engine.") for k in call)


def test_engine_options_are_refused_where_there_is_no_engine() -> None:
    with pytest.raises(InputError, match=r"takes no option engine\.batch_size"):
        judges.make_judge("scalar", {"model": "x", "engine.batch_size": 2})


def test_the_judge_command_passes_dash_e_to_the_engine(captured) -> None:
    from rubric_arm.cli import main

    cmd = ["judge", "--preset", "tiny", "--prompt", "p", "--response-a", "a", "--response-b", "b"]
    with pytest.raises(RuntimeError, match="captured"):
        main([*cmd, "-E", "tensor_parallel_size=2", "--engine-arg", "dtype=bfloat16"])
    assert captured[-1]["engine_kwargs"] == {"tensor_parallel_size": 2, "dtype": "bfloat16"}
