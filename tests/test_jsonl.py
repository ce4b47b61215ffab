"""Reading input rows (bad lines reported, never dropped) and the resumable results writer."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from rubric_arm.data import ResumableWriter, read_jsonl, read_results
from rubric_arm.errors import InputError, RubricArmError

CHUNK = 4
RECORDS = [
    {"id": f"r{i}", "winner": "AB"[i % 2], "note": "naïve ✓" if i % 3 == 0 else None, "i": i}
    for i in range(19)
]


def _finish(path: Path, records: list[dict], chunk: int = CHUNK) -> int:
    """Run (or resume) a job: skip what is done, then write the rest chunk by chunk."""
    with ResumableWriter(path, chunk_size=chunk) as writer:
        start = writer.done
        for i in range(start, len(records), chunk):
            writer.write_chunk(records[i : i + chunk])
        assert writer.done == len(records)
    return start


@pytest.fixture()
def clean(tmp_path: Path) -> bytes:
    path = tmp_path / "clean.jsonl"
    assert _finish(path, RECORDS) == 0
    return path.read_bytes()


def test_read_jsonl_reports_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": 1}\n'
        b"\n"
        b'{"id": 2\n'
        b"   \n"
        b"[1, 2]\n"
        b'{"id": "\xff"}\n'
        b'{"id": 3, "text": "caf\xc3\xa9"}'
    )
    rows = list(read_jsonl(path))
    assert [i for i, _ in rows] == [1, 3, 5, 6, 7]  # line numbers, as every message counts
    assert rows[0][1] == {"id": 1}
    assert rows[4][1] == {"id": 3, "text": "café"}
    bad = {i: str(obj) for i, obj in rows if isinstance(obj, InputError)}
    assert set(bad) == {3, 5, 6}
    assert f"{path}, line 3" in bad[3] and "not valid JSON" in bad[3]
    assert f"{path}, line 5" in bad[5] and "expected a JSON object, got an array" in bad[5]
    assert f"{path}, line 6" in bad[6] and "UTF-8" in bad[6]


def test_read_jsonl_missing_file_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(RubricArmError, match="does not exist"):
        read_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(RubricArmError, match="not a file"):
        read_jsonl(tmp_path)


def test_writer_writes_one_line_per_record_in_order(tmp_path: Path, clean: bytes) -> None:
    lines = clean.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == RECORDS
    assert "naïve ✓" in lines[0]
    assert read_results(tmp_path / "clean.jsonl") == RECORDS


def test_resume_after_a_kill_mid_chunk_and_mid_line(tmp_path: Path, clean: bytes) -> None:
    path = tmp_path / "out.jsonl"
    lines = clean.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[: 2 * CHUNK + 1]) + lines[2 * CHUNK + 1][:7])
    with ResumableWriter(path, chunk_size=CHUNK) as writer:
        assert writer.done == 2 * CHUNK
    assert path.read_bytes() == b"".join(lines[: 2 * CHUNK])
    assert _finish(path, RECORDS) == 2 * CHUNK
    assert path.read_bytes() == clean


@pytest.mark.parametrize("keep_lines", [0, 1, CHUNK, CHUNK + 3, 3 * CHUNK, 4 * CHUNK])
def test_resume_from_any_number_of_whole_lines(
    tmp_path: Path, clean: bytes, keep_lines: int
) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"".join(clean.splitlines(keepends=True)[:keep_lines]))
    assert _finish(path, RECORDS) == keep_lines // CHUNK * CHUNK
    assert path.read_bytes() == clean


def test_resume_of_a_finished_run_redoes_only_the_short_last_chunk(
    tmp_path: Path, clean: bytes
) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(clean)
    assert _finish(path, RECORDS) == len(RECORDS) // CHUNK * CHUNK
    assert path.read_bytes() == clean


def _write_slowly(path: Path, records: list[dict], started: mp.Event) -> None:
    with ResumableWriter(path, chunk_size=CHUNK) as writer:
        for i in range(0, len(records), CHUNK):
            writer.write_chunk(records[i : i + CHUNK])
            started.set()
            time.sleep(0.005)


def test_resume_after_a_real_sigkill(tmp_path: Path) -> None:
    records = [{"i": i, "pad": "x" * (i % 97)} for i in range(4000)]
    clean = tmp_path / "clean.jsonl"
    _finish(clean, records)
    path = tmp_path / "out.jsonl"
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    started = ctx.Event()
    proc = ctx.Process(target=_write_slowly, args=(path, records, started))
    proc.start()
    assert started.wait(20)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    resumed_from = _finish(path, records)
    assert 0 < resumed_from < len(records)
    assert path.read_bytes() == clean.read_bytes()


def test_resume_refuses_a_file_that_is_not_results(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"i": 0}\nnot json\n{"i": 2}\n{"i": 3}\n{"i": 4}\n')
    with pytest.raises(RubricArmError, match="line 2"):
        ResumableWriter(path, chunk_size=CHUNK).open()
    assert path.read_text().count("\n") == 5


def test_writer_checks_chunks_and_records(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        ResumableWriter(tmp_path / "x.jsonl", chunk_size=0)
    writer = ResumableWriter(tmp_path / "sub" / "x.jsonl", chunk_size=2)
    with pytest.raises(RuntimeError):
        _ = writer.done
    with pytest.raises(RuntimeError):
        writer.write_chunk([{"a": 1}])
    with writer:
        with pytest.raises(InputError, match="at most 2"):
            writer.write_chunk([{}, {}, {}])
        with pytest.raises(InputError, match="dicts"):
            writer.write_chunk([{"a": 1}, ["no"]])  # type: ignore[list-item]
        with pytest.raises(InputError, match="not valid JSON"):
            writer.write_chunk([{"a": float("nan")}])
        writer.write_chunk([])
        writer.write_chunk([{"a": 1}, {"a": "\ud800"}])
        writer.write_chunk([{"a": 3}])
        with pytest.raises(InputError, match="last chunk"):
            writer.write_chunk([{"a": 4}])
    assert writer.done == 3
    assert read_results(tmp_path / "sub" / "x.jsonl") == [{"a": 1}, {"a": "\ud800"}, {"a": 3}]


def test_read_results_skips_a_line_being_written(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a"')
    assert read_results(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n[2]\n')
    with pytest.raises(RubricArmError, match="line 2"):
        read_results(path)
    with pytest.raises(RubricArmError, match="does not exist"):
        read_results(tmp_path / "missing.jsonl")


def test_a_finished_file_with_a_short_last_chunk_is_not_redone(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    records = [{"i": i} for i in range(7)]  # chunks of 3: 3 + 3 + 1
    with ResumableWriter(path, chunk_size=3, total=7) as writer:
        for k in range(0, 7, 3):
            writer.write_chunk(records[k : k + 3])
    before = path.read_bytes()
    with ResumableWriter(path, chunk_size=3, total=7) as writer:
        assert writer.done == 7
    assert path.read_bytes() == before
    # without the total, the short last chunk cannot be told from a cut-off one
    with ResumableWriter(path, chunk_size=3) as writer:
        assert writer.done == 6
