"""Nothing lost, nothing stale: one test per finding of the run-file audit (issue 17, findings 1-6
and 10-13), each failing on the code before the fix. The serve findings (7-9) are in
test_serve*.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rubric_arm.cli import main
from rubric_arm.data.runfiles import RunLock
from rubric_arm.errors import InputError, RubricArmError
from rubric_arm.harness.judges import RandomJudge, make_judge
from rubric_arm.harness.runner import EvalConfig, run_eval

ROWS = [
    {
        "id": f"r{i}",
        "prompt": f"Say {i}.",
        "response_a": f"{i}",
        "response_b": f"not {i}",
        "label": "AB"[i % 2],
    }
    for i in range(6)
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _judge(src: Path, out: Path, *extra: str) -> list[str]:
    return ["judge", "--preset", "tiny", "--no-cache", "--quiet", "--input", str(src),
            "--output", str(out), "--chunk-size", "2", *extra]  # fmt: skip


def _pairs_config(data: Path, **kw) -> EvalConfig:
    return EvalConfig(judge="random", benchmark="pairs", data=str(data), chunk_size=2, **kw)


# 1: a second writer of the same output fails at once, naming the holder
def test_a_second_judge_writer_is_refused_naming_the_holder(tiny_model_path, tmp_path, capsys):
    src, out = _write(tmp_path / "in.jsonl", ROWS), tmp_path / "out.jsonl"
    with RunLock(out):
        assert main(_judge(src, out)) != 0
    err = capsys.readouterr().err
    assert "another process" in err and "pid" in err
    assert not out.exists()
    assert main(_judge(src, out)) == 0
    assert len(out.read_text().splitlines()) == len(ROWS)


def test_a_second_eval_writer_is_refused(tmp_path):
    data = _write(tmp_path / "pairs.jsonl", ROWS)
    folder = tmp_path / "run"
    with RunLock(folder / "records.jsonl"), pytest.raises(RubricArmError, match="another process"):
        run_eval(_pairs_config(data), folder, progress=False)
    assert not (folder / "records.jsonl").exists()


# 2: --input equal to --output
def test_input_as_output_is_refused_and_the_input_kept(tmp_path, capsys):
    src = _write(tmp_path / "in.jsonl", ROWS)
    before = src.read_bytes()
    assert main(_judge(src, src)) == 2
    assert "same file" in capsys.readouterr().err
    assert src.read_bytes() == before
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    assert main(_judge(src, link)) == 2
    assert src.read_bytes() == before


# 3: a JSONL that is not ours is never cut, appended to or read as results
def test_a_foreign_output_file_is_left_untouched(tmp_path, capsys):
    src = _write(tmp_path / "in.jsonl", ROWS)
    foreign = _write(tmp_path / "notes.jsonl", [{"note": k} for k in range(5)])
    before = foreign.read_bytes()
    assert main(_judge(src, foreign)) == 2
    assert "not a rubric-arm results file" in capsys.readouterr().err
    assert foreign.read_bytes() == before


# 4: a refused resume has changed nothing
def test_a_refused_resume_keeps_the_finished_output(tiny_model_path, tmp_path, capsys):
    src, out = _write(tmp_path / "in.jsonl", ROWS[:5]), tmp_path / "out.jsonl"
    assert main(_judge(src, out)) == 0
    finished = out.read_bytes()
    _write(src, [{**r, "response_b": "changed"} for r in ROWS[:5]])
    assert main(_judge(src, out)) == 2
    assert "input_sha256" in capsys.readouterr().err
    assert out.read_bytes() == finished


# 5: an edited data file is a change of settings, not a finished run
def test_eval_notices_an_edited_data_file(tmp_path):
    data = _write(tmp_path / "pairs.jsonl", ROWS)
    folder = tmp_path / "run"
    run_eval(_pairs_config(data), folder, progress=False)
    _write(data, [{**r, "label": "B" if r["label"] == "A" else "A"} for r in ROWS])
    with pytest.raises(RubricArmError, match="data_sha256"):
        run_eval(_pairs_config(data), folder, progress=False)


# 6: a damaged record is a refusal naming the line, and nothing is lost
def test_a_damaged_record_is_refused_naming_its_line(tmp_path):
    data = _write(tmp_path / "pairs.jsonl", ROWS)
    folder = tmp_path / "run"
    run_eval(_pairs_config(data), folder, progress=False)
    records = folder / "records.jsonl"
    damaged = records.read_bytes() + b"{}\n"
    records.write_bytes(damaged)
    with pytest.raises(RubricArmError, match="line 7"):
        run_eval(_pairs_config(data), folder, progress=False)
    assert records.read_bytes() == damaged
    lines = records.read_bytes().splitlines(keepends=True)
    records.write_bytes(b"".join(lines[:2]) + b"{}\n" + b"".join(lines[3:6]))
    with pytest.raises(RubricArmError, match="line 3.*no id"):
        run_eval(_pairs_config(data), folder, progress=False)


# 10: impossible settings fail up front; a run that failed before its first record leaves a
# folder the corrected command may reuse
def test_a_negative_learning_rate_fails_before_anything_is_made(tmp_path):
    from rubric_arm.trainer.config import load_config

    with pytest.raises(InputError, match=r"sft.judge.learning_rate must be > 0"):
        load_config("tiny", {"sft": {"judge": {"learning_rate": -1e-4}}})
    with pytest.raises(InputError, match=r"grpo.generator.per_device_train_batch_size"):
        load_config("tiny", {"grpo": {"generator": {"per_device_train_batch_size": 0}}})
    out = subprocess.run(
        [sys.executable, "-m", "rubric_arm.cli", "train", "--config", "tiny", "--dry-run",
         "--output_dir", str(tmp_path), "--grpo.judge.learning_rate", "-1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode != 0 and "learning_rate must be > 0" in out.stderr
    assert "Traceback" not in out.stderr and not any(tmp_path.iterdir())


def test_a_failed_eval_folder_takes_the_corrected_command(tmp_path):
    data = _write(tmp_path / "pairs.jsonl", ROWS)
    folder = tmp_path / "run"

    class Broken(RandomJudge):
        def judge_pairs(self, pairs, **_):
            raise RuntimeError("the judge died before its first record")

    with pytest.raises(RuntimeError):
        run_eval(_pairs_config(data, seed=1), folder, judge=Broken(), progress=False)
    run_eval(_pairs_config(data, seed=2), folder, progress=False)
    assert json.loads((folder / "config.json").read_text())["seed"] == 2


def test_a_trainer_folder_with_no_finished_phase_takes_new_settings(tmp_path):
    from rubric_arm.trainer.config import load_config
    from rubric_arm.trainer.loop import RubricARMTrainer

    first = load_config("tiny", {"output_dir": str(tmp_path), "name": "t", "seed": 1})
    RubricARMTrainer(first)._check_config()
    second = load_config("tiny", {"output_dir": str(tmp_path), "name": "t", "seed": 2})
    RubricARMTrainer(second)._check_config()
    assert json.loads((tmp_path / "t" / "config.json").read_text())["seed"] == 2


# 11 (byte-identical resume with the cache on) is test_cli.py's SIGKILL test, "cache" case.


# 12: smaller validation gaps
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-J", "temperature=abc"], "temperature must be a finite number"),
        (["-J", "temperature=nan"], "temperature must be a finite number"),
        (["-J", "colour=blue"], "takes no option colour"),
        (["--limit", "-3"], "must be >= 1"),
        (["--votes", "0"], "must be >= 1"),
    ],
)
def test_bad_eval_settings_are_refused_without_a_traceback(tmp_path, args, message):
    data = _write(tmp_path / "pairs.jsonl", ROWS)
    out = subprocess.run(
        [sys.executable, "-m", "rubric_arm.cli", "eval", "--judge", "rubric-arm", "-J",
         "preset=tiny", "--benchmark", "pairs", "--data", str(data), "--out",
         str(tmp_path / "run"), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode != 0 and message in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_every_judge_refuses_unknown_options():
    for name in ("rubric-arm", "prompted-rubric", "direct", "direct-logprob", "scalar", "random"):
        with pytest.raises(InputError, match="takes no option"):
            make_judge(name, {"model": "x", "colour": "blue"})


def test_ids_null_and_missing_are_the_same_and_duplicates_are_refused(
    tiny_model_path, tmp_path, capsys
):
    rows = [{k: v for k, v in r.items() if k != "id"} for r in ROWS[:2]]
    rows[1]["id"] = None
    src, out = _write(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"
    assert main(_judge(src, out)) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["1", "2"]
    dup = _write(tmp_path / "dup.jsonl", [ROWS[0], ROWS[1], ROWS[0]])
    assert main(_judge(dup, tmp_path / "dup-out.jsonl")) == 2
    assert "line 1 and on line 3" in capsys.readouterr().err


def test_quiet_draws_no_progress_bar(tiny_model_path, tmp_path):
    src = _write(tmp_path / "in.jsonl", ROWS[:2])
    out = subprocess.run(
        [sys.executable, "-m", "rubric_arm.cli", *_judge(src, tmp_path / "out.jsonl")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "it/s]" not in out.stderr and "%|" not in out.stderr


# 13: weights load from safetensors only
def test_weights_without_safetensors_are_refused(tiny_model_path, tmp_path):
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from rubric_arm.harness.judges import ScalarJudge

    config = AutoConfig.from_pretrained(tiny_model_path)
    config.num_labels = 1
    unsafe = tmp_path / "pickled"
    unsafe.mkdir()
    config.save_pretrained(unsafe)
    model = AutoModelForSequenceClassification.from_config(config)
    torch.save(model.state_dict(), unsafe / "pytorch_model.bin")  # a pickle, as old checkpoints
    for f in tiny_model_path.iterdir():
        if f.name.startswith("tokenizer") or f.name.endswith(".jinja"):
            (unsafe / f.name).write_bytes(f.read_bytes())
    assert list(unsafe.glob("*.bin")) and not list(unsafe.glob("*.safetensors"))
    with pytest.raises(OSError, match="safetensors"):
        ScalarJudge(str(unsafe))
