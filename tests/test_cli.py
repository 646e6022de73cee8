"""The command line as an operator meets it: one JSON line per problem, never a traceback, the right exit status."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import HASH_KEY, ROOT, Client, make_config

from expensebot import db
from expensebot.config import VARIABLES
from expensebot.ops import cli

HASH = "a" * 64
SECRETS = {"FB_APP_SECRET": "0123456789abcdef0123456789abcdef", "FB_VERIFY_TOKEN": "verify-token-0123",
           "PSID_HASH_KEY": "k" * 32}


def expensebot(*args, env=None, cwd=None, stdout=None, timeout=60, user=None) -> subprocess.CompletedProcess:
    """Run `python run.py ARGS` with only the given environment."""
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *map(str, args)], text=True, timeout=timeout,
                          stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                          env={"PATH": "/usr/bin:/bin", **(env or {})}, cwd=cwd or ROOT, user=user)


def json_lines(text: str) -> list[dict]:
    """Every line must be a JSON object: jq must never stop on one."""
    return [json.loads(line) for line in text.splitlines()]


def problems_of(result: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in result.stdout + result.stderr
    lines = json_lines(result.stdout) + json_lines(result.stderr)
    return [line["problem"] for line in lines if line["level"] == "error"]


def seeded_db(path: Path) -> Path:
    db.init(path)
    return path


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# (name, files to make, command, env, exit status, the one problem's text)
CASES = [
    ("db folder missing", {}, ["serve"], {"EXPENSEBOT_DB": "{tmp}/missing/x.db"}, 2,
     "EXPENSEBOT_DB: the folder {tmp}/missing does not exist"),
    ("db not sqlite", {"x.db": "hello"}, ["serve"], {"EXPENSEBOT_DB": "{tmp}/x.db"}, 2,
     "EXPENSEBOT_DB: {tmp}/x.db is not a SQLite database"),
    ("db not sqlite, summary", {"x.db": "hello"}, ["summary", "--psid-hash", HASH],
     {"EXPENSEBOT_DB": "{tmp}/x.db"}, 2, "EXPENSEBOT_DB: {tmp}/x.db is not a SQLite database"),
    ("db a directory", {"x.db/": ""}, ["serve"], {"EXPENSEBOT_DB": "{tmp}/x.db"}, 2,
     "EXPENSEBOT_DB: {tmp}/x.db is a directory, not a SQLite file"),
    ("db a directory, backup", {"x.db/": ""}, ["backup", "{tmp}/b.db"], {"EXPENSEBOT_DB": "{tmp}/x.db"}, 2,
     "EXPENSEBOT_DB: {tmp}/x.db is a directory, not a SQLite file"),
    ("spool a file", {"spool": "x"}, ["serve"], {"EXPENSEBOT_DB": "{tmp}/x.db", "EXPENSEBOT_SPOOL": "{tmp}/spool"},
     2, "EXPENSEBOT_SPOOL: {tmp}/spool is a file; the spool must be a folder"),
    ("summary, no db", {}, ["summary", "--psid-hash", HASH], {"EXPENSEBOT_DB": "{tmp}/typo.db"}, 2,
     "EXPENSEBOT_DB: {tmp}/typo.db does not exist"),
    ("export, no db", {}, ["export", "--psid-hash", HASH], {"EXPENSEBOT_DB": "{tmp}/typo.db"}, 2,
     "EXPENSEBOT_DB: {tmp}/typo.db does not exist"),
    ("jobs, no db", {}, ["jobs"], {"EXPENSEBOT_DB": "{tmp}/typo.db"}, 2, "EXPENSEBOT_DB: {tmp}/typo.db does not exist"),
    ("rates, no db", {}, ["rates"], {"EXPENSEBOT_DB": "{tmp}/typo.db"}, 2,
     "EXPENSEBOT_DB: {tmp}/typo.db does not exist"),
    ("replay, no db", {}, ["replay-spool"], {"EXPENSEBOT_DB": "{tmp}/typo.db"}, 2,
     "EXPENSEBOT_DB: {tmp}/typo.db does not exist"),
    ("backup, no db", {}, ["backup", "{tmp}/b.db"], {"EXPENSEBOT_DB": "{tmp}/typo.db"}, 2,
     "EXPENSEBOT_DB: {tmp}/typo.db does not exist"),
    ("export over an existing file", {"x.db": None}, ["export", "--psid-hash", HASH, "--output", "/dev/full"],
     {"EXPENSEBOT_DB": "{tmp}/x.db"}, 2, "--output: /dev/full exists"),
    ("no hash key", {}, ["hash-psid", "123"], {"PSID_HASH_KEY": None}, 2, "PSID_HASH_KEY: required to hash a PSID"),
    ("short hash key", {}, ["hash-psid", "123"], {"PSID_HASH_KEY": "abc"}, 2,
     "PSID_HASH_KEY: 3 characters is too short"),
    ("empty psid", {}, ["hash-psid", ""], {"PSID_HASH_KEY": HASH_KEY}, 2, "argument psid: a PSID is the digits"),
    ("comment in a value", {}, ["hash-psid", "123"], {"PSID_HASH_KEY": "k" * 20 + " # openssl rand"}, 2,
     "PSID_HASH_KEY: the value contains ' #'"),
    ("env file missing", {}, ["jobs", "--env-file", "{tmp}/nope.env"], {}, 2,
     "--env-file: {tmp}/nope.env: cannot read the environment file (No such file or directory)"),
]


@pytest.mark.parametrize("name, files, command, env, status, problem", CASES, ids=[c[0] for c in CASES])
def test_each_operator_mistake_is_one_line_without_a_traceback(tmp_path, name, files, command, env, status, problem):
    for relative, content in files.items():
        target = tmp_path / relative
        if relative.endswith("/"):
            target.mkdir()
        elif content is None:
            seeded_db(target)
        else:
            target.write_text(content)
    fill = lambda text: text.replace("{tmp}", str(tmp_path))  # noqa: E731
    env = {**SECRETS, **env}  # None: the variable is not set
    result = expensebot(*map(fill, command), env={k: fill(v) for k, v in env.items() if v is not None})
    assert result.returncode == status
    assert len(problems_of(result)) == 1
    assert problems_of(result)[0].startswith(fill(problem))
    assert not (tmp_path / "typo.db").exists()  # operator commands never create a database


def test_serve_with_the_port_in_use_is_one_line(tmp_path, busy_port):
    result = expensebot("serve", env={**SECRETS, "EXPENSEBOT_DB": str(tmp_path / "x.db"),
                                      "EXPENSEBOT_PORT": str(busy_port)})
    assert result.returncode == 2
    assert problems_of(result) == [f"EXPENSEBOT_HOST/EXPENSEBOT_PORT: cannot listen on 127.0.0.1:{busy_port}: "
                                   "Address already in use (is expensebot already running?)"]


def test_serve_reports_every_missing_variable_at_once(tmp_path):
    result = expensebot("serve", env={"EXPENSEBOT_DB": str(tmp_path / "x.db"), "EXPENSEBOT_TZ": "Mars/Base"})
    assert result.returncode == 2
    assert [p.split(":")[0] for p in problems_of(result)] == [
        "EXPENSEBOT_TZ", "FB_APP_SECRET", "FB_VERIFY_TOKEN", "PSID_HASH_KEY"]
    assert not (tmp_path / "x.db").exists()


def test_check_finds_every_problem_in_one_run(tmp_path, busy_port):
    (tmp_path / "x.db").write_text("not a database")
    (tmp_path / "spool").write_text("a file")
    env = {"EXPENSEBOT_DB": str(tmp_path / "x.db"), "EXPENSEBOT_SPOOL": str(tmp_path / "spool"),
           "EXPENSEBOT_PORT": str(busy_port), "FB_APP_SECRET": "0123456789abcdef # App dashboard",
           "PSID_HASH_KEY": "abc", "EXPENSEBOT_PUBLIC_URL": "http://bot.example", "AI_TIMEOUT": "9"}
    result = expensebot("check", env=env)
    assert result.returncode == 2
    named = sorted(problem.split(":")[0] for problem in problems_of(result))
    assert named == sorted(["FB_APP_SECRET", "EXPENSEBOT_PUBLIC_URL", "AI_TIMEOUT", "FB_VERIFY_TOKEN",
                            "PSID_HASH_KEY", "EXPENSEBOT_DB", "EXPENSEBOT_SPOOL", "EXPENSEBOT_HOST/EXPENSEBOT_PORT"])


def test_check_passes_on_a_good_setup_and_creates_nothing(tmp_path):
    env = {**SECRETS, "EXPENSEBOT_DB": str(tmp_path / "x.db"), "EXPENSEBOT_PORT": "0"}
    result = expensebot("check", env=env)
    assert result.returncode == 0, result.stdout
    warning, ok = json_lines(result.stdout)
    assert ok["event"] == "check_ok" and ok["running"] is None
    assert warning["problem"] == (f"EXPENSEBOT_DB: {tmp_path / 'x.db'} does not exist; serve will create it there "
                                  "(is that the path you meant?)")
    assert list(tmp_path.iterdir()) == []


def test_check_flags_a_database_newer_than_the_code(tmp_path):
    path = seeded_db(tmp_path / "x.db")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {db.SCHEMA_VERSION + 1}")
    conn.close()
    result = expensebot("check", env={**SECRETS, "EXPENSEBOT_DB": str(path), "EXPENSEBOT_PORT": "0"})
    assert result.returncode == 2
    assert problems_of(result) == [f"EXPENSEBOT_DB: {path} has schema version {db.SCHEMA_VERSION + 1}, newer "
                                   f"than this code's {db.SCHEMA_VERSION}; run the release that wrote it"]


def test_export_to_a_full_disk_is_one_line(tmp_path):
    path = seeded_db(tmp_path / "x.db")
    with open("/dev/full", "w") as full:
        result = expensebot("export", "--psid-hash", HASH, env={"EXPENSEBOT_DB": str(path)}, stdout=full)
    assert result.returncode == 1
    assert problems_of(subprocess.CompletedProcess([], 1, "", result.stderr)) == ["export: writing stdout failed: No space left on device"]


def small_file_limit():
    """In the child: files may not grow past 40 kB, as on a disk that is full (EFBIG instead of ENOSPC).

    Above SQLite's 32 KiB -shm file, so the database still opens.
    """
    import resource
    import signal
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))


@pytest.mark.parametrize("command, target", [
    (["export", "--psid-hash", HASH, "--output"], "out.csv"),
    (["backup"], "backups/copy.db"),
])
def test_a_write_that_runs_out_of_room_is_one_line_and_leaves_no_file(tmp_path, open_service, command, target):
    path = seeded_db(tmp_path / "x.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE filler (x)")
    conn.execute("INSERT INTO filler VALUES (randomblob(100000))")  # a database well past the limit
    conn.close()
    if command[0] == "export":
        seeded = make_config(tmp_path, db_path=path)
        from conftest import delivery, message_event, psid_hash
        service = open_service(seeded)
        Client(service).post_webhook(delivery(*(message_event("111", f"m_{n}", "lunch " + "x" * 300 + f" {n + 1}")
                                                    for n in range(200))))  # a CSV of ~70 kB
        service.close()  # stopped before the command reads its files
        command = [*command[:2], psid_hash("111"), command[3]]
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), *command, str(tmp_path / target)],
                            capture_output=True, text=True, timeout=60, preexec_fn=small_file_limit,
                            # no .pyc writes: the limit would cut them short
                            env={"PATH": "/usr/bin:/bin", "EXPENSEBOT_DB": str(path), "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 1, result.stdout + result.stderr
    (problem,) = problems_of(result)
    assert problem.startswith(f"{command[0]}: writing {tmp_path / target} failed: ")
    assert [p.name for p in (tmp_path / target).parent.iterdir() if p.name.startswith(Path(target).name)] == []


def test_a_bug_logs_its_traceback_inside_one_json_line(tmp_path):
    path = seeded_db(tmp_path / "x.db")
    with sqlite3.connect(path) as conn:  # a row changed by hand into something the code never writes
        conn.execute("INSERT INTO expenses (message_id, psid_hash, mid, line, amount_minor, currency, description,"
                     " occurred_at, created_at) VALUES (1, ?, 'm_1', 0, 1.5, 'USD', 'x', 'a', 'b')", ("a" * 64,))
    result = expensebot("export", "--psid-hash", "a" * 64, env={"EXPENSEBOT_DB": str(path)})
    assert result.returncode == 1
    (line,) = json_lines(result.stderr)
    assert line["event"] == "command_crashed" and "Traceback" in line["exception"] and "TypeError" in line["exception"]


def test_a_file_that_is_not_our_database_is_one_line(tmp_path):
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as conn:  # some other program's SQLite file
        conn.execute("CREATE TABLE other (x)")
    result = expensebot("jobs", env={"EXPENSEBOT_DB": str(path)})
    assert result.returncode == 1
    (line,) = json_lines(result.stdout)
    assert line["event"] == "command_failed" and line["problem"].startswith(f"EXPENSEBOT_DB: {path}: no such table")


def test_backup_creates_its_folder_and_keeps_the_newest(tmp_path):
    path = seeded_db(tmp_path / "x.db")
    folder = tmp_path / "backups" / "daily"
    for n in range(4):
        (tmp_path / "backups").mkdir(exist_ok=True)
        if n:
            folder.joinpath(f"expensebot-2020010{n}T000000Z.db").write_bytes(b"old")
        result = expensebot("backup", f"{folder}/", "--keep", "2", env={"EXPENSEBOT_DB": str(path)})
        assert result.returncode == 0, result.stdout + result.stderr
    kept = sorted(p.name for p in folder.iterdir())
    assert len(kept) == 2 and not any(name.startswith("expensebot-2020") for name in kept)
    newest = sqlite3.connect(folder / kept[-1])
    assert newest.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    newest.close()
    events = [line["event"] for line in json_lines(result.stdout)]
    assert events[0] == "backed_up" and "backup_removed" in events


def test_every_subcommand_help_lists_its_arguments_and_variables():
    for name, (_, _, variables, arguments) in cli.COMMANDS.items():
        result = expensebot(name, "--help")
        assert result.returncode == 0
        text = " ".join(result.stdout.split())
        assert "--env-file PATH" in text
        for flags, _ in arguments:
            assert flags[0] in text, (name, flags)
        for variable in variables:
            assert variable in text, (name, variable)
    assert set(cli.COMMANDS["serve"][2]) == set(VARIABLES)


def test_env_file_gives_the_command_what_the_service_sees(tmp_path):
    key = "x" * 24
    (tmp_path / "bot.env").write_text(f"# the key\nPSID_HASH_KEY={key}\n; done\n")
    result = expensebot("hash-psid", "1234567890", "--env-file", tmp_path / "bot.env")
    assert result.returncode == 0, result.stdout
    from expensebot.identity import PsidHasher
    assert result.stdout.strip() == PsidHasher(key)("1234567890")


def test_replay_spool_starts_no_server_and_no_replier(tmp_path, monkeypatch):
    config = make_config(tmp_path)
    db.init(config.db_path)
    started = []
    monkeypatch.setattr(cli.Service, "open", lambda *a, **k: started.append("service"))
    monkeypatch.setattr(cli, "make_server", lambda *a, **k: started.append("server"))
    env = {"EXPENSEBOT_DB": str(config.db_path)}
    monkeypatch.setattr(os, "environ", env)
    assert cli.main(["replay-spool"]) == 0
    assert started == []


def test_replay_spool_by_hand_with_ai_off_writes_jobs_skipped(tmp_path, monkeypatch):
    from expensebot.events import Message
    from expensebot.ingest.spool import Spool
    config = make_config(tmp_path)
    db.init(config.db_path)
    Spool(config.spool_dir).open().append([Message("a" * 64, "m_1", "message", "coffee 1", 1764000000000,
                                                   1764000000000, "{}")])
    monkeypatch.setattr(os, "environ", {"EXPENSEBOT_DB": str(config.db_path)})
    assert cli.main(["replay-spool"]) == 0
    conn = sqlite3.connect(config.db_path)
    try:
        assert conn.execute("SELECT status FROM jobs").fetchall() == [("skipped",)]
    finally:
        conn.close()


def test_privacy_page_is_served_and_escaped(tmp_path, open_service):
    config = make_config(tmp_path, operator="Ann <script>alert(1)</script>", contact="ann@example.org & co",
                         ai_enabled=True, ai_url="https://ai.example.org/v1", ai_model="m")
    response = Client(open_service(config).app).get("/privacy")
    assert response.status == 200 and response.headers["content-type"].startswith("text/html")
    assert "<script>" not in response.text
    assert "Ann &lt;script&gt;alert(1)&lt;/script&gt;" in response.text and "ann@example.org &amp; co" in response.text
    for words in ("keyed hash", "delete my data", "ai.example.org", "An erasure is final", "Until you erase it"):
        assert words in response.text


@pytest.mark.skipif(not os.environ.get("TEST_PIP_INSTALL"),
                    reason="slow (a fresh venv and pip install .): set TEST_PIP_INSTALL=1, as CI does")
def test_a_regular_install_works_from_another_folder(tmp_path):
    import shutil
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                                 "*.db*", "results"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    subprocess.run([str(tmp_path / "venv/bin/pip"), "install", "-q", str(source)], check=True, cwd=tmp_path)
    shutil.rmtree(source)  # nothing may run from the checkout afterwards
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([str(tmp_path / "venv/bin/expensebot"), "demo", "--say", "coffee 100"], cwd=elsewhere,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bot> coffee — 100.00 USD, today" in result.stdout


# ---- the operator's second week ----------------------------------------------------------------

def test_version_is_printed_and_served(tmp_path, server_process):
    from expensebot import __version__

    result = expensebot("--version")
    assert (result.returncode, result.stdout) == (0, f"expensebot {__version__}\n")
    server = server_process()
    assert [line["version"] for line in server.log_lines() if line["event"] == "serving"] == [__version__]


def test_check_runs_beside_the_running_bot_and_says_so(tmp_path, server_process):
    from expensebot import __version__

    server = server_process()
    port = server.url.rsplit(":", 1)[1]
    result = expensebot("check", env={**{k: v for k, v in server.env.items() if k != "PATH"}, "EXPENSEBOT_PORT": port})
    assert result.returncode == 0, result.stdout
    assert json_lines(result.stdout)[-1]["running"] == __version__
    with socket.socket() as sock:  # a port taken by something else is still a problem
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = expensebot("check", env={**SECRETS, "EXPENSEBOT_DB": str(tmp_path / "y.db"),
                                         "EXPENSEBOT_PORT": str(sock.getsockname()[1])})
    assert taken.returncode == 2 and "is expensebot already running?" in problems_of(taken)[0]


@pytest.mark.parametrize("name, hint", [("EXPENSEBOT_DATABASE", "did you mean EXPENSEBOT_DB?"),
                                        ("FB_APP_SECRETS", "did you mean FB_APP_SECRET?"),
                                        ("AI_ENABLE", "did you mean AI_ENABLED?")])
def test_check_names_a_misspelled_variable_with_the_closest_one(tmp_path, name, hint):
    result = expensebot("check", env={**SECRETS, "EXPENSEBOT_DB": str(tmp_path / "x.db"), "EXPENSEBOT_PORT": "0",
                                      name: "1"})
    assert result.returncode == 2
    assert problems_of(result) == [f"{name}: not a variable expensebot reads; {hint}"]


def test_a_read_only_file_of_the_bot_user_is_told_to_chmod_not_chown(tmp_path):
    from test_cli_docs import USER, as_user, service_user

    service_user()
    folder = Path(tempfile.mkdtemp(prefix="expensebot-ro-"))  # outside pytest's root-only folder
    path = seeded_db(folder / "x.db")
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(folder)], check=True)
    path.chmod(0o444)
    env = {**SECRETS, "EXPENSEBOT_DB": str(path), "EXPENSEBOT_PORT": "0", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(as_user([sys.executable, str(ROOT / "run.py"), "check"]), env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert problems_of(result) == [f"EXPENSEBOT_DB: {path} is not writable by {USER} (owner {USER}, mode 0o444); "
                                   f"chmod u+w {path}"]
    os.chown(path, 0, 0)  # a copy put in place as root: then it is the owner that is wrong
    path.chmod(0o644)
    result = subprocess.run(as_user([sys.executable, str(ROOT / "run.py"), "check"]), env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert problems_of(result) == [f"EXPENSEBOT_DB: {path} is not writable by {USER} (owner root, mode 0o644); "
                                   f"chown {USER}: {path}"]
    subprocess.run(["chown", f"{USER}:{USER}", str(path)], check=True)
    path.chmod(0o444)

    # and the read-only commands still read it, from a folder nobody may write in
    folder.chmod(0o555)
    for command in (["summary", "--psid-hash", HASH], ["export", "--psid-hash", HASH], ["jobs"], ["rejected"],
                    ["rates"]):
        read = subprocess.run(as_user([sys.executable, str(ROOT / "run.py"), *command]), env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert read.returncode == 0, read.stdout + read.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["x.db"]
    folder.chmod(0o755)
    shutil.rmtree(folder)


def test_export_to_a_file_is_readable_by_its_owner_only(tmp_path):
    path = seeded_db(tmp_path / "x.db")
    out = tmp_path / "person.csv"
    result = expensebot("export", "--psid-hash", HASH, "--output", out, env={"EXPENSEBOT_DB": str(path)})
    assert result.returncode == 0, result.stderr
    assert out.stat().st_mode & 0o777 == 0o600


def test_a_file_the_new_release_has_not_upgraded_yet_is_backed_up_but_not_read(tmp_path):
    """Between `pip install` of a new release and its first start: read commands say what to do."""
    from test_database_file import first_schema_file
    path = first_schema_file(tmp_path / "old.db")
    env = {"EXPENSEBOT_DB": str(path), "PSID_HASH_KEY": HASH_KEY}
    for command in (["summary", "--psid-hash", "a" * 64], ["rates"], ["export", "--psid-hash", "a" * 64]):
        result = expensebot(*command, env=env)
        assert result.returncode == 2
        assert problems_of(result) == [f"EXPENSEBOT_DB: {path} has schema version 1, older than this release's "
                                       f"{db.SCHEMA_VERSION}; start the bot once (it upgrades the file), then run "
                                       "this again"]
    backed_up = expensebot("backup", tmp_path / "backups/", env=env)
    assert backed_up.returncode == 0, backed_up.stdout + backed_up.stderr
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # nothing upgraded it
    conn.close()
