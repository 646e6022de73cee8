"""Restoring a backup never brings an erased person back (the erasure journal, `expensebot restore`)."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
from conftest import HASH_KEY, Client, delivery, make_config, message_event, psid_hash, query
from test_cli import expensebot, json_lines, problems_of

from expensebot import db
from expensebot.journal import Journal

T0 = 1764075600000
ALICE, BOB = "24000000000000001", "24000000000000002"
CONFIRM = {"payload": "DELETE_MY_DATA_CONFIRM"}


def say(client: Client, psid: str, mid: str, text: str, at: int, **fields) -> None:
    assert client.post_webhook(delivery(message_event(psid, mid, text, timestamp=at, **fields))).status == 200


def erase(client: Client, psid: str, at: int) -> None:
    say(client, psid, f"m_erase_{at}", "Yes, delete", at, quick_reply=CONFIRM)


def env_of(config) -> dict:
    return {"EXPENSEBOT_DB": str(config.db_path), "PSID_HASH_KEY": HASH_KEY}


def rows_of(path, psid: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT description FROM expenses WHERE psid_hash = ? ORDER BY id",
                                               (psid_hash(psid),))]
    finally:
        conn.close()


def test_an_erasure_is_journaled_as_a_hash_and_a_time_only(tmp_path, open_service):
    config = make_config(tmp_path)
    client = Client(open_service(config))
    say(client, ALICE, "m_1", "coffee 5", T0)
    erase(client, ALICE, T0 + 1000)
    journal = tmp_path / "expensebot.db.erasures"
    assert journal.read_text() == f"{psid_hash(ALICE)} 2025-11-25T13:00:01.000Z\n"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert ALICE not in journal.read_text()


def test_restore_keeps_an_erasure_made_after_the_backup(tmp_path, open_service):
    config = make_config(tmp_path)
    service = open_service(config)
    client = Client(service)
    say(client, ALICE, "m_a1", "coffee 5", T0)
    say(client, BOB, "m_b1", "tea 3", T0)
    backed_up = expensebot("backup", tmp_path / "backups/", env=env_of(config))
    assert backed_up.returncode == 0, backed_up.stderr
    erase(client, ALICE, T0 + 60_000)
    say(client, BOB, "m_b2", "cake 4", T0 + 120_000)
    refused = expensebot("restore", tmp_path / "backups/", env=env_of(config))
    assert refused.returncode == 2
    assert "the bot is running" in problems_of(refused)[0]
    service.close()

    result = expensebot("restore", tmp_path / "backups/", env=env_of(config))
    assert result.returncode == 0, result.stderr
    [line] = [line for line in json_lines(result.stdout) if line["event"] == "restored"]
    assert line["erasures_applied"] == 1
    assert rows_of(config.db_path, ALICE) == []  # erased after the backup: still erased
    assert rows_of(config.db_path, BOB) == ["tea"]  # what the backup holds; cake came after it
    aside = tmp_path / line["kept_aside"]
    assert rows_of(aside, BOB) == ["tea", "cake"]  # the file it replaced, kept whole
    assert stat.S_IMODE(config.db_path.stat().st_mode) == 0o600

    restarted = open_service(config)  # an old redelivery of Alice's coffee is not stored again
    say(Client(restarted), ALICE, "m_a1", "coffee 5", T0)
    assert query(restarted, "SELECT count(*) FROM expenses WHERE psid_hash = ?", psid_hash(ALICE)) == [(0,)]


def test_the_journal_alone_keeps_the_erasure_when_the_live_file_is_lost(tmp_path, open_service):
    config = make_config(tmp_path)
    service = open_service(config)
    client = Client(service)
    say(client, ALICE, "m_a1", "coffee 5", T0)
    assert expensebot("backup", tmp_path / "copy.db", env=env_of(config)).returncode == 0
    erase(client, ALICE, T0 + 60_000)
    service.close()
    for suffix in ("", "-wal", "-shm"):  # the disk under the database died; the journal was elsewhere... beside it
        if os.path.exists(f"{config.db_path}{suffix}"):
            os.remove(f"{config.db_path}{suffix}")

    result = expensebot("restore", tmp_path / "copy.db", env=env_of(config))
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["erasures_applied"] == 1
    assert rows_of(config.db_path, ALICE) == []


def test_a_copy_put_in_place_by_hand_is_given_the_journaled_erasures_at_start(tmp_path, open_service):
    config = make_config(tmp_path)
    service = open_service(config)
    client = Client(service)
    say(client, ALICE, "m_a1", "coffee 5", T0)
    assert expensebot("backup", tmp_path / "copy.db", env=env_of(config)).returncode == 0
    erase(client, ALICE, T0 + 60_000)
    service.close()
    os.replace(tmp_path / "copy.db", config.db_path)  # the old recipe: cp, by hand

    restarted = open_service(config)
    assert query(restarted, "SELECT count(*) FROM expenses") == [(0,)]
    assert query(restarted, "SELECT count(*) FROM erasures") == [(1,)]


@pytest.mark.parametrize("name, make, problem", [
    ("missing", None, "no such file"),
    ("not sqlite", b"hello", "not a sound SQLite database"),
    ("someone else's sqlite", "CREATE TABLE t (x)", "not an expensebot database"),
    ("newer schema", "PRAGMA user_version = 99", "schema version 99 is newer"),
])
def test_restore_refuses_a_bad_backup_with_one_line_and_changes_nothing(tmp_path, name, make, problem):
    path = tmp_path / "expensebot.db"
    db.init(path)
    before = path.read_bytes()
    backup = tmp_path / "backup.db"
    if isinstance(make, bytes):
        backup.write_bytes(make)
    elif make == "PRAGMA user_version = 99":
        db.init(backup)
        sqlite3.connect(backup).execute(make).connection.close()
    elif make:
        sqlite3.connect(backup).execute(make).connection.close()
    result = expensebot("restore", backup, env={"EXPENSEBOT_DB": str(path)})
    assert result.returncode == 2
    [line] = problems_of(result)
    assert line.startswith(f"restore: {backup}: {problem}")
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.before-restore-*"))


def test_a_backup_of_the_first_schema_is_restored_and_upgraded(tmp_path):
    from test_database_file import first_schema_file

    backup = first_schema_file(tmp_path / "old.db")
    path = tmp_path / "expensebot.db"
    result = expensebot("restore", backup, env={"EXPENSEBOT_DB": str(path)})
    assert result.returncode == 0, result.stderr
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM expenses").fetchone()[0] > 0
    finally:
        conn.close()
    assert Journal(path).erasures() == {}
