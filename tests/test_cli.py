"""The `rubric-arm` command on the tiny model: output, user errors, bad rows, resume after a kill."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rubric_arm.cli import EXAMPLES, main

ROWS = [
    {
        "id": f"r{i}",
        "prompt": f"Write a sentence about the number {i % 4}.",
        "response_a": f"The number {i} is small.",
        "response_b": f"Number {i}!",
        "label": "AB"[i % 2],
    }
    for i in range(10)
]


def write_rows(path: Path, rows, extra_lines=()):
    with path.open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


def run_cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rubric_arm.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def test_single_pair_prints_rubric_judge_output_and_verdict(tiny_model_path, capsys):
    rc = main(
        [
            "judge",
            "--preset",
            "tiny",
            "--no-cache",
            "--prompt",
            "Say hi.",
            "--response-a",
            "Hi!",
            "--response-b",
            "Goodbye.",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    for header in ("=== Rubric ===", "=== Judge output (order AB, vote 0) ===", "=== Verdict ==="):
        assert header in out
    assert "winner: Response" in out or "winner: none (parse failure" in out


def test_rubric_command_json(tiny_model_path, capsys):
    assert main(["rubric", "--preset", "tiny", "--no-cache", "--prompt", "Say hi.", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["status"] == "ok" and rec["completion_tokens"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["judge", "--preset", "tiny", "--input", "/nonexistent.jsonl", "--output", "o.jsonl"],
            "nonexistent",
        ),
        (["judge", "--preset", "tiny", "--prompt", "x"], "--response-a"),
        (
            [
                "judge",
                "--preset",
                "tiny",
                "--prompt",
                "x",
                "--response-a",
                " ",
                "--response-b",
                "b",
            ],
            "--response-a is empty",
        ),
        (
            [
                "judge",
                "--preset",
                "nope",
                "--prompt",
                "x",
                "--response-a",
                "a",
                "--response-b",
                "b",
            ],
            "unknown preset",
        ),
        (["judge", "--preset", "tiny", "--input", "x.jsonl"], "--output"),
        (
            [
                "judge",
                "--preset",
                "paper",
                "--prompt",
                "x",
                "--response-a",
                "a",
                "--response-b",
                "b",
            ],
            "HF_HUB_OFFLINE=1",
        ),
        (
            ["rubric", "--preset", "tiny", "--engine", "vllm", "--prompt", "x"],
            "vLLM is not installed",
        ),
        (
            [
                "judge",
                "--preset",
                "tiny",
                "--input",
                str(EXAMPLES),
                "--output",
                "/proc/no/such/dir/o.jsonl",
            ],
            "/proc/no",
        ),
        (
            [
                "rubric",
                "--preset",
                "tiny",
                "--generator",
                "no-such-model-anywhere",
                "--prompt",
                "x",
            ],
            "no-such-model",
        ),
    ],
)
def test_user_errors_are_one_line_without_traceback(tiny_model_path, args, message):
    if "vLLM" in message and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here, so its absence cannot be shown")
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], proc.stderr


def test_file_mode_keeps_one_record_per_row_and_counts_bad_rows(tiny_model_path, tmp_path):
    rows = [
        ROWS[0],
        {"id": "missing-b", "prompt": "p", "response_a": "a"},
        ROWS[1],
        {"id": "empty", "prompt": " ", "response_a": "a", "response_b": "b"},
    ]
    src = write_rows(tmp_path / "in.jsonl", rows, extra_lines=["{not json"])
    out = tmp_path / "out.jsonl"
    proc = run_cli(
        "judge",
        "--preset",
        "tiny",
        "--no-cache",
        "--quiet",
        "--input",
        str(src),
        "--output",
        str(out),
        "--chunk-size",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["status"] for r in recs] == [
        "ok",
        "invalid_input",
        "ok",
        "invalid_input",
        "invalid_input",
    ]
    assert "line 2" in recs[1]["error"] and "response_b" in recs[1]["error"]
    assert "empty" in recs[3]["error"]
    assert "line 5" in recs[4]["error"]
    assert "invalid_input 3" in proc.stderr and "ok 2" in proc.stderr


def test_strict_stops_at_the_first_bad_row(tiny_model_path, tmp_path):
    src = write_rows(tmp_path / "in.jsonl", [ROWS[0], {"id": "bad", "prompt": "p"}])
    proc = run_cli(
        "judge",
        "--preset",
        "tiny",
        "--quiet",
        "--strict",
        "--input",
        str(src),
        "--output",
        str(tmp_path / "o.jsonl"),
    )
    assert proc.returncode == 2 and "line 2" in proc.stderr and "Traceback" not in proc.stderr


def judge_file(src: Path, out: Path, chunk: int) -> list[str]:
    return [
        "judge",
        "--preset",
        "tiny",
        "--no-cache",
        "--quiet",
        "--order",
        "random",
        "--seed",
        "7",
        "--input",
        str(src),
        "--output",
        str(out),
        "--chunk-size",
        str(chunk),
    ]


def test_resume_after_partial_write_ends_with_the_same_file(tiny_model_path, tmp_path):
    src = write_rows(tmp_path / "in.jsonl", ROWS)
    clean = tmp_path / "clean.jsonl"
    assert main(judge_file(src, clean, 3)) == 0
    lines = clean.read_text().splitlines(keepends=True)
    assert len(lines) == len(ROWS)
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join(lines[:4]) + lines[4][: len(lines[4]) // 2])
    # what a killed run leaves beside its output
    Path(f"{broken}.run.json").write_bytes(Path(f"{clean}.run.json").read_bytes())
    assert main(judge_file(src, broken, 3)) == 0
    assert broken.read_bytes() == clean.read_bytes()


def _fresh_home(tmp_path: Path, name: str, models: Path) -> dict[str, str]:
    """A RUBRIC_ARM_HOME with the test models but an empty rubric cache."""
    home = tmp_path / name
    home.mkdir()
    (home / "models").symlink_to(models)
    return {**os.environ, "RUBRIC_ARM_HOME": str(home)}


@pytest.mark.parametrize("cache", [False, True], ids=["no-cache", "cache"])
def test_resume_after_sigkill_ends_with_the_same_file(tiny_model_path, tmp_path, cache):
    rows = [{**r, "id": f"{r['id']}-{k}"} for k in range(3) for r in ROWS]
    src = write_rows(tmp_path / "in.jsonl", rows)
    models = tiny_model_path.parent

    def command(out: Path) -> list[str]:
        args = [sys.executable, "-m", "rubric_arm.cli", *judge_file(src, out, 1)]
        return args if not cache else [a for a in args if a != "--no-cache"]

    clean = tmp_path / "clean.jsonl"
    env = _fresh_home(tmp_path, "home-clean", models)
    done = subprocess.run(command(clean), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    killed = tmp_path / "killed.jsonl"
    env = _fresh_home(tmp_path, "home-killed", models)
    proc = subprocess.Popen(
        command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if killed.exists() and killed.read_text().count("\n") >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = killed.read_text().count("\n")
    assert 3 <= partial < len(rows), "the kill should land mid-run"
    second = subprocess.run(command(killed), env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert "resuming" in second.stderr
    assert killed.read_bytes() == clean.read_bytes()


def test_resume_with_other_settings_is_refused(tiny_model_path, tmp_path):
    src = write_rows(tmp_path / "in.jsonl", ROWS[:4])
    out = tmp_path / "out.jsonl"
    assert main(judge_file(src, out, 2)) == 0
    manifest = json.loads((tmp_path / "out.jsonl.run.json").read_text())
    assert manifest["seed"] == 7 and manifest["judge_template"].startswith("judge@")
    before = out.read_bytes()
    other_seed = judge_file(src, out, 2)
    other_seed[other_seed.index("--seed") + 1] = "8"
    proc = run_cli(*other_seed)
    assert proc.returncode == 2 and "seed differ" in proc.stderr, proc.stderr
    write_rows(src, ROWS[:5])
    proc = run_cli(*judge_file(src, out, 2))
    assert proc.returncode == 2 and "input_sha256" in proc.stderr, proc.stderr
    assert out.read_bytes() == before
