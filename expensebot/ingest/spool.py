"""The spool: where acknowledged events wait, fsynced, while the database cannot take them.

One file per spooled request, written to a temporary name (every byte, checked), fsynced, then
renamed, and the folder fsynced, so a file either holds whole events or does not exist: any
failure on the way removes the temporary file and raises SpoolError. Names sort in arrival order and carry the event
count, so the depth is known without reading the files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import time
from pathlib import Path

from expensebot.errors import Unavailable
from expensebot.ingest.webhook import Message

SUFFIX = ".jsonl"
BAD_SUFFIX = ".bad"


class SpoolError(Unavailable):
    """The spool could not durably take the events."""


class Spool:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._counter = itertools.count()

    def open(self) -> Spool:
        """Create the directory and drop files a crash left half-written (never acknowledged)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):
            with contextlib.suppress(OSError):  # an immutable folder must not stop the bot starting
                leftover.unlink(missing_ok=True)
        return self

    def append(self, messages: list[Message]) -> Path:
        """Write messages to a new spool file and fsync it; raise SpoolError on failure."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._counter):06d}-{len(messages)}"
        final = self.directory / f"{name}{SUFFIX}"
        temporary = self.directory / f"{name}.tmp"
        lines = "".join(json.dumps(dataclasses.asdict(m)) + "\n" for m in messages)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                _write_all(fd, lines.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, final)
            self._sync_directory()
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise SpoolError(f"{self.directory}: {type(exc).__name__}: {exc.strerror or exc}") from exc
        return final

    def files(self) -> list[Path]:
        """Return the spooled files, oldest first; raise SpoolError when the folder can't be listed."""
        try:
            # os.listdir, not Path.glob: glob reads a folder it cannot list as an empty one.
            return sorted(self.directory / name for name in os.listdir(self.directory) if name.endswith(SUFFIX))
        except OSError as exc:
            raise SpoolError(f"{self.directory}: cannot list: {exc.strerror or exc}") from exc

    def oldest_age(self, now_ns: int | None = None) -> float | None:
        """Seconds since the oldest waiting file was written (its name starts with the time); None if none."""
        files = self.files()
        if not files:
            return None
        written = files[0].name.split("-", 1)[0]
        # A file named otherwise (put there by hand) counts from its modification time.
        written_ns = int(written) if written.isdigit() else _mtime_ns(files[0])
        return max(0.0, ((now_ns or time.time_ns()) - written_ns) / 1e9)

    def load(self, path: Path) -> list[Message]:
        """Read the messages of one spool file."""
        with open(path, encoding="utf-8") as file:
            return [Message(**json.loads(line)) for line in file if line.strip()]

    def remove(self, path: Path) -> None:
        """Forget a file whose messages are committed."""
        path.unlink(missing_ok=True)
        self._sync_directory()

    def quarantine(self, path: Path) -> Path:
        """Set aside a file that cannot be replayed, for a person to look at."""
        bad = path.with_suffix(BAD_SUFFIX)
        os.rename(path, bad)
        return bad

    def depth(self) -> int:
        """Count the events waiting in the spool."""
        counts = (path.stem.rsplit("-", 1)[-1] for path in self.files())
        return sum(int(count) if count.isdigit() else 1 for count in counts)

    def _sync_directory(self) -> None:
        # A folder fsync makes the rename (or the unlink) itself durable.
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """Write every byte: os.write may write part of them (a nearly full disk) without raising."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(28, "no byte written (disk full?)")
        view = view[written:]


def _mtime_ns(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return time.time_ns()
