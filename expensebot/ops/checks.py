"""What `serve` needs from the machine, checked before anything is created: each problem one line naming its path.

`expensebot check` runs all of these and reports every problem at once; `serve` and the operator
commands run the ones they need, so a mistake is a sentence, not a traceback.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import socket
import sqlite3
from pathlib import Path

from expensebot import db


def database_problems(path: Path, *, must_exist: bool, write: bool) -> list[str]:
    """Whether this user can open the SQLite file at path as needed; [] when it can."""
    folder = path.parent
    if not folder.is_dir():
        return [f"EXPENSEBOT_DB: the folder {folder} does not exist (create it, owned by {_user()})"]
    if path.is_dir():
        return [f"EXPENSEBOT_DB: {path} is a directory, not a SQLite file"]
    if not path.exists():
        if must_exist:
            return [f"EXPENSEBOT_DB: {path} does not exist (this command never creates a database; "
                    f"check the path, or start the bot once to create it)"]
        if write and not os.access(folder, os.W_OK | os.X_OK):
            return [f"EXPENSEBOT_DB: {_user()} cannot create files in {folder} (owner {_owner(folder)})"]
        return []
    try:
        with open(path, "rb") as file:
            header = file.read(100)
    except OSError:
        return [f"EXPENSEBOT_DB: {_user()} cannot read {path} (owner {_owner(path)}, mode {_mode(path)})"]
    if header and not header.startswith(b"SQLite format 3\x00"):
        return [f"EXPENSEBOT_DB: {path} is not a SQLite database"]
    problems = []
    version = int.from_bytes(header[60:64], "big") if len(header) >= 64 else 0
    if version > db.SCHEMA_VERSION:
        problems.append(f"EXPENSEBOT_DB: {path} has schema version {version}, newer than this code's "
                        f"{db.SCHEMA_VERSION}; run the release that wrote it")
    if write:
        problems.extend(_write_problems(path) or _integrity_problems(path))
    return problems


def spool_problems(path: Path) -> list[str]:
    """Whether the spool folder exists and is ours, or can be created; [] when it can."""
    if path.exists() and not path.is_dir():
        return [f"EXPENSEBOT_SPOOL: {path} is a file; the spool must be a folder"]
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            return [f"EXPENSEBOT_SPOOL: {_user()} cannot write in {path} (owner {_owner(path)})"]
        return []
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return [f"EXPENSEBOT_SPOOL: {ancestor} is a file; the spool's folder cannot be created under it"]
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return [f"EXPENSEBOT_SPOOL: {_user()} cannot create {path} (owner of {ancestor}: {_owner(ancestor)})"]
    return []


def port_problems(host: str, port: int) -> list[str]:
    """Whether host:port can be listened on right now; [] when it can (port 0 always can)."""
    if port == 0:
        return []
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
            sock.bind((host, port))
    except OSError as exc:
        return [listen_problem(host, port, exc)]
    return []


def running_version(host: str, port: int) -> str | None:
    """The version of an expensebot answering /healthz on host:port (the bot running), else None.

    0.1.0 said no version: its answer is known by its fields.
    """
    if port == 0:
        return None
    conn = http.client.HTTPConnection({"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host), port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        body = conn.getresponse().read(4096)  # 200, or 503 when it has a problem of its own to say
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    try:
        answer = json.loads(body)
        version = answer.get("version", "before 0.2.0" if {"status", "spool_depth"} <= answer.keys() else None)
    except (ValueError, AttributeError):
        return None
    return version if isinstance(version, str) else None


def listen_problem(host: str, port: int, exc: OSError) -> str:
    """One line for a failed bind, naming the variables to change."""
    hint = " (is expensebot already running?)" if exc.errno == 98 else ""
    return f"EXPENSEBOT_HOST/EXPENSEBOT_PORT: cannot listen on {host}:{port}: {exc.strerror or exc}{hint}"


def owner_problems(path: Path) -> list[str]:
    """As root, refuse to open another user's database (or create one in their folder): files SQLite
    creates beside it would be root's, and the bot could no longer write."""
    path = path if path.exists() else path.parent
    if os.geteuid() != 0 or not path.exists() or path.stat().st_uid == 0:
        return []
    name = _owner(path)
    return [f"EXPENSEBOT_DB: {path} belongs to {name}; run this as {name} (sudo -u {name} ...), "
            f"or SQLite's -wal and -shm files would become root's and the bot could not write"]


def _write_problems(path: Path) -> list[str]:
    problems = []
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if candidate.exists() and not os.access(candidate, os.W_OK):
            fix = (f"chmod u+w {candidate}" if candidate.stat().st_uid == os.geteuid()
                   else f"chown {_user()}: {candidate}")
            problems.append(f"EXPENSEBOT_DB: {candidate} is not writable by {_user()} (owner "
                            f"{_owner(candidate)}, mode {_mode(candidate)}); {fix}")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        problems.append(f"EXPENSEBOT_DB: {_user()} cannot create SQLite's -wal and -shm files in "
                        f"{path.parent} (owner {_owner(path.parent)})")
    return problems


def _integrity_problems(path: Path) -> list[str]:
    """SQLite's quick_check of an existing file: a malformed one is refused before anything writes to it."""
    try:
        problem = db.quick_check(path)
    except sqlite3.Error as exc:
        return [f"EXPENSEBOT_DB: {path} cannot be checked: {exc}"]
    if problem is None:
        return []
    return [f"EXPENSEBOT_DB: {path} is damaged (SQLite's quick_check: {problem}); restore it from a backup "
            f"(docs/OPERATIONS.md), and if a -wal file lies beside it that came from another file, move that away"]


def _user() -> str:
    return _name(os.geteuid())


def _owner(path: Path) -> str:
    return _name(path.stat().st_uid)


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _mode(path: Path) -> str:
    return oct(path.stat().st_mode & 0o777)
