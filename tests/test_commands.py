"""run.py demo and the operator commands, as real processes."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import (
    HASH_KEY,
    ROOT,
    Client,
    delivery,
    make_config,
    message_event,
    psid_hash,
    query,
    wait_for,
)


def run_py(*args, env=None, cwd=ROOT, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **(env or {})}, timeout=timeout, cwd=cwd)


def test_scripted_demo_conversation_end_to_end(tmp_path):
    db = tmp_path / "demo.db"
    result = run_py("demo", "--db", str(db), "--say", "coffee 100", "--say", "lunch 12,50 #food",
                    "--say", "summary", "--say", "undo", "--say", "help")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "you> coffee 100\nbot> coffee — 100.00 USD, today\n     Today: 100.00 USD" in out
    assert "bot> lunch — 12.50 USD, today #food\n     Today: 112.50 USD" in out
    assert "bot> This month: 112.50 USD in 2 expenses\n     Top: food 112.50 USD" in out
    assert "bot> Removed: lunch — 12.50 USD." in out
    assert "coffee 4.50" in out.split("you> help")[1]
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT description, amount_minor FROM expenses").fetchall() == [("coffee", 10000)]
        assert conn.execute("SELECT count(*) FROM messages_raw").fetchone()[0] == 5
    finally:
        conn.close()
    log = (tmp_path / "demo.db.log").read_text()
    assert '"event": "event_logged"' in log and '"event": "reply_sent"' in log
    assert "1000000000000001" not in log  # the demo person's PSID


def test_demo_remembers_the_person_between_runs(tmp_path):
    db = tmp_path / "demo.db"
    assert run_py("demo", "--db", str(db), "--say", "coffee 100").returncode == 0
    second = run_py("demo", "--db", str(db), "--say", "summary all")
    assert "bot> All time: 100.00 USD in 1 expense" in second.stdout


def test_interactive_demo_reads_the_terminal_until_eof(tmp_path):
    process = subprocess.run([sys.executable, str(ROOT / "run.py"), "demo", "--db", str(tmp_path / "d.db")],
                             input="tea 3\ndelete my data\n1\nquit\n", capture_output=True, text=True, timeout=60,
                             cwd=ROOT)
    assert process.returncode == 0, process.stderr
    assert "bot> tea — 3.00 USD, today" in process.stdout
    assert "[1] Yes, delete" in process.stdout
    assert "Done: I erased your 3 messages and 1 expenses." in process.stdout


def test_demo_clock_refuses_what_is_not_a_time_and_a_message_is_still_answered(tmp_path):
    result = run_py("demo", "--db", str(tmp_path / "demo.db"), "--say", "/clock next week", "--say", "tea 3")
    assert result.returncode == 0, result.stderr
    assert "(not a time: 'next week'; /clock 2026-12-01T09:00:00Z sets the bot's clock)" in result.stdout
    assert "bot> tea — 3.00 USD, today" in result.stdout


def test_without_the_receipts_extra_a_photo_is_answered_plainly(tmp_path):
    """The extra's absence, in a real process: its package made unimportable before the demo starts."""
    (tmp_path / "receipt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not read anyway")
    without = ("import runpy, sys; sys.modules['rapidocr_onnxruntime'] = None; "
               "sys.argv = ['run.py', 'demo', '--db', 'demo.db', '--photo', 'receipt.jpg', '--say', 'tea 3']; "
               f"runpy.run_path({str(ROOT / 'run.py')!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", without], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert ('bot> Receipt photos are not set up here. Type it instead, like "groceries 23.45".\n'
            "you> tea 3\nbot> tea — 3.00 USD, today") in result.stdout
    assert sqlite3.connect(tmp_path / "demo.db").execute("SELECT count(*) FROM receipt_drafts").fetchone() == (0,)


@pytest.fixture
def seeded(tmp_path, open_service):
    """A database with six expenses of one person and one of another, the bot stopped; (config, env)."""
    config = make_config(tmp_path)
    service = open_service(config, enrich_interval=3600)  # AI off: jobs written skipped
    client = Client(service)
    texts = ["coffee 100", "lunch 12,50 #food", 'pizza, "large" 20', "€12 museum", "taxi 1,200.50", "tea 3"]
    for n, text in enumerate(texts):
        client.post_webhook(delivery(message_event("111", f"m_{n}", text)))
    client.post_webhook(delivery(message_event("222", "m_x", "other 99")))
    service.close()  # stopped before the command reads its files
    return config, {"EXPENSEBOT_DB": str(config.db_path), "PSID_HASH_KEY": HASH_KEY}


def test_export_is_rfc4180_csv_that_sums_to_the_summary(seeded):
    config, env = seeded
    h = psid_hash("111")
    exported = subprocess.run([sys.executable, str(ROOT / "run.py"), "export", "--psid-hash", h],
                              capture_output=True, env={"PATH": "/usr/bin:/bin", **env}, timeout=60)
    assert exported.returncode == 0, exported.stderr
    text = exported.stdout.decode("utf-8")
    assert text.count("\r\n") == 7 and "\n" not in text.replace("\r\n", "")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 6
    assert {row["description"] for row in rows} >= {'pizza, "large"', "museum"}
    sums = {}
    for row in rows:
        sums[row["currency"]] = sums.get(row["currency"], 0) + int(row["amount_minor"])
    summary = json.loads(run_py("summary", "--psid-hash", h, "--period", "all", env=env).stdout)
    assert sums == {c: t["total_minor"] for c, t in summary["currencies"].items()}
    assert sums == {"USD": 10000 + 1250 + 2000 + 120050 + 300, "EUR": 1200}
    assert next(r for r in rows if r["description"] == "taxi")["amount"] == "1200.50"


def test_operator_commands_refuse_a_bad_psid_hash(seeded):
    _, env = seeded
    result = run_py("summary", "--psid-hash", "not-a-hash", env=env)
    assert result.returncode == 2 and "64 lowercase hex" in result.stderr


def test_backup_is_a_consistent_copy(tmp_path, seeded):
    config, env = seeded
    target = tmp_path / "backup.db"
    result = run_py("backup", str(target), env=env)
    assert result.returncode == 0, result.stderr
    copy, original = sqlite3.connect(target), sqlite3.connect(config.db_path)
    try:
        query = "SELECT psid_hash, mid, amount_minor, currency FROM expenses ORDER BY id"
        assert copy.execute(query).fetchall() == original.execute(query).fetchall()
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        copy.close()
        original.close()
    assert run_py("backup", str(target), env=env).returncode == 2  # never overwrites


def test_replay_spool_command_writes_spooled_events(tmp_path, open_service):
    config = make_config(tmp_path)
    service = open_service(config)
    service.ingest.replayer.stop()
    service.ingest.spooling = True
    Client(service).post_webhook(delivery(message_event("111", "m_1", "coffee 5")))
    service.close()  # stopped before the command reads its files
    result = run_py("replay-spool", env={"EXPENSEBOT_DB": str(config.db_path), "PSID_HASH_KEY": HASH_KEY})
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    done = [line for line in lines if line["event"] == "spool_replayed_by_hand"]
    assert [(line["messages"], line["still_spooled"]) for line in done] == [(1, 0)]


def test_views_answer_the_common_questions(seeded):
    config, _ = seeded
    conn = sqlite3.connect(config.db_path)
    try:
        daily = conn.execute("SELECT day, currency, total_minor, expenses FROM daily_totals"
                             " WHERE psid_hash = ? ORDER BY currency", (psid_hash("111"),)).fetchall()
        assert daily == [("2025-11-24", "EUR", 1200, 1), ("2025-11-24", "USD", 133600, 5)]
        assert conn.execute("SELECT status, jobs FROM enrichment_status").fetchall() == [("skipped", 7)]
        assert conn.execute("SELECT mid, text, status FROM job_details WHERE mid = 'm_0'").fetchall() == [
            ("m_0", "coffee 100", "skipped")]
    finally:
        conn.close()


def test_schema_is_idempotent(tmp_path):
    from expensebot import db
    path = tmp_path / "x.db"
    db.init(path)
    db.init(path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
    finally:
        conn.close()


def test_example_demo_shows_a_currency_a_budget_and_a_question(tmp_path):
    from expensebot.ops.demo import EXAMPLE
    result = run_py("demo", "--example", "--db", str(tmp_path / "demo.db"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert [line[5:] for line in out.splitlines() if line.startswith("you> ")] == list(EXAMPLE)
    assert "bot> Your currency is now EUR" in out
    assert "     Food: 18.50 of 15.00 EUR — over budget by 3.50 EUR." in out
    assert "bot> This month, food: 18.50 EUR in 2 expenses" in out
    assert "bot> sushi — 500 JPY" in out


def test_the_readme_transcript_is_what_the_example_prints_every_time(tmp_path):
    readme = (ROOT / "README.md").read_text()
    transcript = readme.split("```text\n", 1)[1].split("```", 1)[0]
    runs = [run_py("demo", "--example", "--at", "2026-10-30T08:00:00Z", cwd=tmp_path) for _ in range(2)]
    assert [run.stdout for run in runs] == [transcript, transcript]  # a second run does not double the totals
    assert sorted(path.name for path in tmp_path.iterdir()) == ["expensebot-demo.db.log"]


def test_run_py_under_a_python_without_the_requirements_says_which_python_to_use(tmp_path):
    bare = subprocess.run([sys.executable, "-S", str(ROOT / "run.py"), "--version"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)  # -S: no site-packages, as a bare system Python
    assert bare.returncode == 2 and "Traceback" not in bare.stderr
    [line] = [json.loads(text) for text in bare.stderr.splitlines()]
    assert "is not installed for" in line["problem"] and ".venv/bin/python run.py" in line["problem"]


def test_cli_summary_counts_days_in_the_persons_zone(tmp_path, open_service):
    import datetime as dt
    from zoneinfo import ZoneInfo
    config = make_config(tmp_path)
    service = open_service(config)
    Client(service).post_webhook(delivery(message_event("111", "m_1", "timezone Pacific/Kiritimati")))
    service.close()  # stopped before the command reads its files
    env = {"EXPENSEBOT_DB": str(config.db_path), "PSID_HASH_KEY": HASH_KEY}

    def local_midnight():
        today = dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
        start = dt.datetime.combine(today, dt.time(0), ZoneInfo("Pacific/Kiritimati")).astimezone(dt.timezone.utc)
        return start.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    before = local_midnight()
    result = run_py("summary", "--psid-hash", psid_hash("111"), "--period", "today", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["from"] in (before, local_midnight())  # 10:00 UTC the day before


def rates_of(env: dict) -> dict:
    result = run_py("rates", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)  # stdout is the one JSON object, nothing else


def test_rates_command_shows_what_is_held_the_last_fetch_and_what_waits(tmp_path, ecb, open_service):
    import datetime as dt
    monday = dt.datetime(2026, 11, 2, 20, 0, tzinfo=dt.timezone.utc)  # Monday's ECB rate not in yet
    sent = int(dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.timezone.utc).timestamp() * 1000)
    config = make_config(tmp_path, currency="EUR", rates_url=ecb.url)
    service = open_service(config, replay_interval=0.05, now=lambda: monday)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rate_refreshes") == [(1,)], 30)
    Client(service).post_webhook(delivery(
        message_event("111", "m_1", "sushi 500 JPY", timestamp=sent),             # today: Friday's rate, provisionally
        message_event("111", "m_2", "ramen 800 JPY 2026-11-04", timestamp=sent),  # a day still to come: waits
        message_event("111", "m_3", "pho 100000 VND", timestamp=sent),            # no ECB rate, ever
        message_event("111", "m_4", "coffee 3", timestamp=sent)))                 # EUR already
    service.close()
    ecb.behave("down")  # the next start's fetch fails: the last refresh is not the last success
    service = open_service(config, replay_interval=0.05, now=lambda: monday)
    assert wait_for(lambda: query(service, "SELECT count(*) FROM rate_refreshes") == [(2,)], 30)
    env = {"EXPENSEBOT_DB": str(config.db_path), "RATES_URL": ecb.url}
    while_running = rates_of(env)  # beside the bot, read-only
    service.close()  # stopped before the command reads its files
    shown = rates_of(env)
    assert shown == while_running

    [(newest, held)] = query(service, "SELECT max(day), count(*) FROM rates")
    [(on_newest,)] = query(service, "SELECT count(*) FROM rates WHERE day = ?", newest)
    refreshes = query(service, "SELECT at, url, outcome, newest_day, changed FROM rate_refreshes ORDER BY id")
    assert refreshes[0][2] == "ok" and refreshes[1][2].startswith("failed: ")
    assert shown == {
        "newest_day": newest, "rates": held, "currencies": on_newest,
        "last_refresh": dict(zip(["at", "url", "outcome", "newest_day", "changed"], refreshes[1])),
        "last_success_at": refreshes[0][0],
        "pending": 1, "provisional": 1, "not_convertible": 1,
        "rates_url": ecb.url.rstrip("/")}
    assert newest == "2026-10-30" and on_newest > 25 and held > 100_000  # the ECB's own history, served
    assert query(service, "SELECT description, rate_source FROM expenses ORDER BY id") == [
        ("sushi", "ecb-provisional"), ("ramen", None), ("pho", "none"), ("coffee", "same")]
    assert shown["last_refresh"]["url"].startswith(ecb.url) and shown["last_refresh"]["newest_day"] is None


def test_rates_command_with_rates_off_and_nothing_fetched(tmp_path, open_service):
    config = make_config(tmp_path)  # rates_url="off": never fetched
    service = open_service(config)
    Client(service).post_webhook(delivery(message_event("111", "m_1", "sushi 500 JPY")))
    service.close()
    shown = rates_of({"EXPENSEBOT_DB": str(config.db_path), "RATES_URL": "off"})
    assert shown == {"newest_day": None, "rates": 0, "currencies": 0, "last_refresh": None, "last_success_at": None,
                     "pending": 1, "provisional": 0, "not_convertible": 0, "rates_url": "off"}
