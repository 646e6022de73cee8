"""The spool: where acknowledged events wait, fsynced, while the database cannot take them.

One file per spooled request, written to a temporary name, fsynced, then renamed, so a file
either holds whole events or does not exist. Names sort in arrival order and carry the event
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

from expensebot.webhook import Message

SUFFIX = ".jsonl"
BAD_SUFFIX = ".bad"


class SpoolError(Exception):
    """The spool could not durably take the events."""


class Spool:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._counter = itertools.count()

    def open(self) -> Spool:
        """Create the directory and drop files a crash left half-written (never acknowledged)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):
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
                os.write(fd, lines.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(temporary, final)
            self._sync_directory()
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise SpoolError(f"{type(exc).__name__}: {exc.strerror or exc}") from exc
        return final

    def files(self) -> list[Path]:
        """Return the spooled files, oldest first."""
        try:
            return sorted(self.directory.glob(f"*{SUFFIX}"))
        except OSError:
            return []

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
        return sum(int(path.stem.rsplit("-", 1)[-1]) for path in self.files())

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
