"""JSON Lines in and out: input rows that report bad lines, and a crash-safe resumable writer.

Results go out one line per input row, in input order, chunk by chunk (each chunk fsynced).
A killed run leaves at most a partial chunk and a partial line; reopening drops both, so
the resumed run restarts at a chunk boundary and ends with the same bytes as a clean run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from rubric_arm.errors import InputError, RubricArmError

_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _existing_file(path: str | Path, what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise RubricArmError(f"{what} {p} does not exist")
    if not p.is_file():
        raise RubricArmError(f"{what} {p} is not a file")
    return p


def _parse_line(raw: bytes, where: str) -> dict[str, Any] | InputError:
    """One JSON object from one line, or an InputError saying what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return InputError(f"{where}: not valid UTF-8 (byte {exc.start + 1})")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return InputError(f"{where}: not valid JSON ({exc.msg}, column {exc.colno})")
    except RecursionError:
        return InputError(f"{where}: JSON nested too deeply")
    if not isinstance(obj, dict):
        return InputError(f"{where}: expected a JSON object, got {_JSON_TYPES[type(obj)]}")
    return obj


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """Yield (line number from 1, object) per non-blank line; a bad line yields an InputError.

    Bad lines are returned rather than raised so that the caller can record them and go on.
    A missing file raises RubricArmError at once, before iteration starts.
    """
    return _iter_jsonl(_existing_file(path, "input file"))


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    with open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            yield line_no, _parse_line(raw, f"{path}, line {line_no}")


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The records of a results file; a trailing partial line (a write in progress) is left out."""
    p = _existing_file(path, "results file")
    records = []
    with open(p, "rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                break
            obj = _parse_line(raw, f"{p}, line {line_no}")
            if isinstance(obj, InputError):
                raise RubricArmError(f"{obj}; this is not a results file written by rubric-arm")
            records.append(obj)
    return records


def _encode(record: Any) -> bytes:
    if not isinstance(record, dict):
        raise InputError(f"result records must be dicts, got {type(record).__name__}")
    try:
        text = json.dumps(record, ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise InputError(f"result record is not valid JSON ({exc}): {record!r:.200}") from exc
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(record, allow_nan=False).encode("ascii") + b"\n"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ResumableWriter:
    """Appends result records (one line per input row) in chunks of `chunk_size` rows.

    Every chunk but the last must hold exactly `chunk_size` records, so that the lines
    on disk always split into whole chunks; `done` says how many rows to skip on resume.
    With `total` (the number of input rows), a file holding all `total` records is complete
    even when its last chunk is short, so a finished run is read back, not redone. With
    `expected_ids` (the id of every input row, in order), each record on disk must be the
    record of its row: anything else is refused, naming the line, before a byte is changed.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_size: int,
        total: int | None = None,
        expected_ids: Sequence[str] | None = None,
    ) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InputError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.total = total if total is not None or expected_ids is None else len(expected_ids)
        self.expected_ids = None if expected_ids is None else [str(i) for i in expected_ids]
        self._fh: IO[bytes] | None = None
        self._done: int | None = None
        self._prefix: tuple[int, int] | None = None
        self._short_written = False

    @property
    def done(self) -> int:
        """Input rows whose records are on disk (known once the writer is open)."""
        if self._done is None:
            raise RuntimeError("ResumableWriter.done is known only after open()")
        return self._done

    def _refuse(self, line_no: int, why: str) -> RubricArmError:
        return RubricArmError(
            f"cannot resume: {self.path}, line {line_no}: {why}; nothing was changed (delete or "
            "move the file to start the run over)"
        )

    def _check_record(self, obj: dict[str, Any] | InputError, line_no: int) -> None:
        if isinstance(obj, InputError):
            raise self._refuse(line_no, str(obj).split(": ", 1)[-1])
        if self.expected_ids is None:
            return
        if line_no > len(self.expected_ids):
            raise self._refuse(
                line_no, f"more records than the {len(self.expected_ids)} input rows"
            )
        want = self.expected_ids[line_no - 1]
        if "id" not in obj:
            raise self._refuse(line_no, f"not a result record (no id; expected {want!r})")
        if str(obj["id"]) != want:
            raise self._refuse(line_no, f"the record of {obj['id']!r}, expected {want!r}")

    def scan(self) -> int:
        """Rows whose records are on disk in whole chunks, read without changing the file; a
        damaged or foreign line is refused here, naming it."""
        if self._prefix is None:
            self._prefix = (0, 0)
            if self.path.exists():
                if not self.path.is_file():
                    raise RubricArmError(f"results path {self.path} is not a file")
                self._prefix = self._complete_prefix()
        return self._prefix[0]

    def _complete_prefix(self) -> tuple[int, int]:
        """(rows, bytes) of the whole chunks at the start of the existing file."""
        rows = size = lines = pos = 0
        with open(self.path, "rb") as fh:
            for line_no, raw in enumerate(fh, 1):
                if not raw.endswith(b"\n"):
                    break
                pos += len(raw)
                lines += 1
                self._check_record(_parse_line(raw, f"{self.path}, line {line_no}"), line_no)
                if lines % self.chunk_size == 0:
                    rows, size = lines, pos
        if self.total is not None and lines == self.total:
            rows, size = lines, pos
        return rows, size

    def open(self) -> ResumableWriter:
        """Open for appending, first cutting an existing file back to its last whole chunk."""
        if self._fh is not None:
            return self
        created = not self.path.exists()
        rows = self.scan()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            size = self._prefix[1] if self._prefix else 0
            if size < self.path.stat().st_size:
                with open(self.path, "r+b") as fh:
                    fh.truncate(size)
                    fh.flush()
                    os.fsync(fh.fileno())
        self._fh = open(self.path, "ab")  # noqa: SIM115 - held open across write_chunk calls
        if created:
            _fsync_dir(self.path.parent)
        self._done = rows
        self._short_written = False
        return self

    def write_chunk(self, records: list[dict[str, Any]]) -> None:
        """Append one chunk (at most `chunk_size` records) and make it durable (flush + fsync)."""
        if self._fh is None or self._done is None:
            raise RuntimeError("ResumableWriter.write_chunk called before open()")
        if not records:
            return
        if len(records) > self.chunk_size:
            raise InputError(f"a chunk holds at most {self.chunk_size} records, got {len(records)}")
        if self._short_written:
            raise InputError("only the last chunk may hold fewer than chunk_size records")
        data = b"".join(_encode(r) for r in records)
        self._fh.write(data)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._done += len(records)
        self._short_written = len(records) < self.chunk_size

    def close(self) -> None:
        """Close the file; everything written is already on disk."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ResumableWriter:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def changed_settings(path: str | Path, settings: dict[str, Any]) -> list[str]:
    """Keys whose value in the JSON settings file `path` differs from `settings` (sorted).

    Used to refuse resuming a run under other settings; an unreadable file is an InputError.
    """
    try:
        before = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InputError(f"{path} is not valid JSON: delete the run to start over") from None
    if not isinstance(before, dict):
        raise InputError(f"{path} does not hold a JSON object: delete the run to start over")
    return sorted(k for k in settings.keys() | before.keys() if settings.get(k) != before.get(k))
