"""The spool: where acknowledged events wait, fsynced, while the database cannot take them.

One file per spooled request, written to a temporary name (every byte, checked), fsynced, then
renamed, and the folder fsynced, so a file either holds whole events or does not exist: any
failure on the way removes the temporary file and raises SpoolError. A name is a counter and the
event count (`00000000000000000042-3.jsonl`): files replay in the order they were written whatever
the wall clock does, and the depth is known without reading them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from pathlib import Path

from expensebot.errors import Unavailable
from expensebot.events import Message

SUFFIX = ".jsonl"


class SpoolError(Unavailable):
    """The spool could not durably take the events."""


class Spool:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._next = 0
        self._lock = threading.Lock()

    def open(self) -> Spool:
        """Create the directory, drop files a crash left half-written (never acknowledged), find the next number."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):
            with contextlib.suppress(OSError):  # an immutable folder must not stop the bot starting
                leftover.unlink(missing_ok=True)
        # After every file there is, set aside ones included, so a number is never used twice.
        self._next = max((_number(name) for name in os.listdir(self.directory)), default=-1) + 1
        return self

    def append(self, messages: list[Message]) -> Path:
        """Write messages to a new spool file and fsync it; raise SpoolError on failure."""
        with self._lock:
            number, self._next = self._next, self._next + 1
        name = f"{number:020d}-{len(messages)}"
        final = self.directory / f"{name}{SUFFIX}"
        if final.exists():  # put there by hand: take the next number
            return self.append(messages)
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
            names = [name for name in os.listdir(self.directory) if name.endswith(SUFFIX)]
        except OSError as exc:
            raise SpoolError(f"{self.directory}: cannot list: {exc.strerror or exc}") from exc
        return [self.directory / name for name in sorted(names, key=lambda name: (_number(name), name))]

    def oldest_age(self) -> float | None:
        """Seconds since the oldest waiting file was written; None if none."""
        files = self.files()
        if not files:
            return None
        try:
            written = os.stat(files[0]).st_mtime_ns
        except OSError:  # replayed and removed just now
            return 0.0
        return max(0.0, (time.time_ns() - written) / 1e9)

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
        bad = path.with_suffix(".bad")
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


def _number(name: str) -> int:
    """The counter a spool file's name starts with (-1 for a name that has none)."""
    first = name.split("-", 1)[0].split(".", 1)[0]
    return int(first) if first.isascii() and first.isdigit() else -1
