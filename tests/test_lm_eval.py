"""lm-eval: the registered rubric-arm model and the packaged lm-eval tasks give the runner's accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from test_inspect import scripted_arm  # noqa: E402

from rubric_arm.harness.judges import RubricARMJudge  # noqa: E402
from rubric_arm.harness.runner import EvalConfig, run_eval  # noqa: E402


def test_lm_eval_mini_matches_runner(tmp_path: Path, tiny_model_path: Path) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    from rubric_arm.harness.lm_eval_model import TASKS_DIR, RubricARMLM

    lm = RubricARMLM(preset="tiny")
    lm.arm = scripted_arm()
    out = lm_eval.simple_evaluate(
        model=lm,
        tasks=["rubric_arm_mini"],
        task_manager=TaskManager(include_path=str(TASKS_DIR)),
        limit=24,
    )
    result = out["results"]["rubric_arm_mini"]
    runner = run_eval(
        EvalConfig(judge="rubric-arm", benchmark="mini", limit=24, seed=0),
        tmp_path / "run",
        judge=RubricARMJudge("rubric-arm", scripted_arm(), {}),
        progress=False,
    )
    overall = {m.name: m for m in runner}["overall"]
    assert result["acc,none"] == pytest.approx(overall.estimate.value)
    assert result["acc_stderr,none"] > 0  # lm-eval's own stderr: the verdicts are not constant


def test_lm_eval_cli_wrapper_registers_the_model(tiny_model_path: Path, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ}
    cmd = [sys.executable, "-m", "rubric_arm.cli", "lm-eval", "--model", "rubric-arm"]
    cmd += ["--model_args", "preset=tiny", "--tasks", "rubric_arm_mini", "--limit", "4"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rubric_arm_mini" in done.stdout and "acc" in done.stdout


def test_loglikelihood_requests_are_refused_clearly(tiny_model_path: Path) -> None:
    from rubric_arm.errors import InputError
    from rubric_arm.harness.lm_eval_model import RubricARMLM

    lm = RubricARMLM(preset="tiny")
    with pytest.raises(InputError, match="loglikelihood tasks do not apply"):
        lm.loglikelihood([])
    with pytest.raises(InputError, match="unknown rubric-arm model_args"):
        RubricARMLM(preset="tiny", colour="red")
