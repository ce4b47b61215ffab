"""The discipline every command that writes results follows (`judge`, `eval`, `train`, `policy`):
one writer at a time (an exclusive lock naming its holder), never the input as the output, never
a file that is not ours, and every check done before a byte is changed."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from types import TracebackType
from typing import IO

from rubric_arm.errors import InputError, RubricArmError


class RunLock:
    """An exclusive, non-blocking lock on `<path>.lock`: a second writer of the same output fails
    at once with the holder's pid. The lock file stays (removing it would open a race)."""

    def __init__(self, path: str | Path) -> None:
        self.target = Path(path)
        self.path = self.target.with_name(self.target.name + ".lock")
        self._fh: IO[str] | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise RubricArmError(
                f"{self.target} is being written by another process (pid {holder}, lock "
                f"{self.path}); wait for it to finish or use another output"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def refuse_same_file(
    source: str | Path, output: str | Path, *, source_flag: str, output_flag: str
) -> None:
    """An output that is the input (the same path, or a link to it) would destroy the input."""
    src, out = Path(source), Path(output)
    same = src.resolve() == out.resolve()
    if not same and src.exists() and out.exists():
        same = os.path.samefile(src, out)
    if same:
        raise InputError(
            f"{output_flag} {out} is the same file as {source_flag}: it would be overwritten"
        )


def refuse_foreign(results: Path, manifest: Path) -> None:
    """A non-empty results file without our manifest beside it was not written by rubric-arm:
    it is never truncated, appended to or read as results."""
    if results.is_file() and results.stat().st_size > 0 and not manifest.is_file():
        raise InputError(
            f"{results} exists but has no {manifest.name} beside it, so it is not a rubric-arm "
            "results file: move it away or choose another output (nothing was changed)"
        )


def file_sha256(path: str | Path) -> str:
    """Content hash of a file, or of a folder's files (names and contents, sorted)."""
    p = Path(path)
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(f.relative_to(p).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
