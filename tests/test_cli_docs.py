"""docs/OPERATIONS.md, followed literally: its environment file, backup service and restore recipe, run."""

from __future__ import annotations

import configparser
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import ROOT, Client, delivery, free_port, make_config, message_event
from test_cli import expensebot, json_lines, problems_of

from expensebot import db
from expensebot.config import PLACEHOLDER, VARIABLES
from expensebot.ops import envfile

OPERATIONS = ROOT / "docs" / "OPERATIONS.md"
USER = "expensebot"
# Secrets of the kinds the comments in the example ask for.
REAL_VALUES = {"FB_APP_SECRET": secrets.token_hex(16), "FB_VERIFY_TOKEN": secrets.token_hex(16),
               "FB_PAGE_ACCESS_TOKEN": "EAAG" + secrets.token_hex(40), "PSID_HASH_KEY": secrets.token_hex(32),
               "OPS_TOKEN": secrets.token_hex(24)}
# The example's other values, which people would see: check refuses them too.
OWN_VALUES = {"EXPENSEBOT_PUBLIC_URL": "https://expenses.ann-smith.net", "EXPENSEBOT_OPERATOR": '"Ann Smith"',
              "EXPENSEBOT_CONTACT": "ann@ann-smith.net"}


def documented(marker: str) -> str:
    """The fenced block that follows `<!-- test: marker -->` in docs/OPERATIONS.md."""
    text = OPERATIONS.read_text(encoding="utf-8")
    after = text.split(f"<!-- test: {marker} -->\n", 1)[1]
    assert after.startswith("```")
    return after.split("\n", 1)[1].split("\n```", 1)[0] + "\n"


def filled(text: str) -> str:
    """The environment file with each placeholder and example line given a real value, the rest as written."""
    lines = []
    for line in text.splitlines():
        name = line.partition("=")[0]
        real = {**REAL_VALUES, **OWN_VALUES}.get(name)
        lines.append(f"{name}={real}" if real else line)
    return "\n".join(lines) + "\n"


def test_the_documented_environment_file_reads_as_written():
    values = envfile.parse(documented("env"))
    assert set(values) <= set(VARIABLES)
    assert not any("#" in value for value in values.values())
    assert values["EXPENSEBOT_OPERATOR"] == "Jane Doe"
    assert values["EXPENSEBOT_DB"] == "/var/lib/expensebot/expensebot.db"
    assert {name for name, value in values.items() if value.startswith(PLACEHOLDER)} == set(REAL_VALUES)


def test_check_passes_the_documented_file_once_the_placeholders_are_filled(tmp_path):
    text = documented("env").replace("/var/lib/expensebot", str(tmp_path)).replace("PORT=8080", "PORT=0")
    (tmp_path / "as-documented.env").write_text(text)
    left = expensebot("check", "--env-file", tmp_path / "as-documented.env")
    assert left.returncode == 2
    assert sorted(p.split(":")[0] for p in problems_of(left)) == sorted([*REAL_VALUES, *OWN_VALUES])
    (tmp_path / "filled.env").write_text(filled(text))
    done = expensebot("check", "--env-file", tmp_path / "filled.env")
    assert done.returncode == 0, done.stdout
    assert [line["event"] for line in json_lines(done.stdout)] == ["check_warning", "check_ok"]  # no file yet


def test_a_comment_after_a_value_is_caught(tmp_path):
    text = documented("env").replace("/var/lib/expensebot", str(tmp_path)).replace("PORT=8080", "PORT=0")
    text = "\n".join(f"{line.partition('=')[0]}={OWN_VALUES[line.partition('=')[0]]}"
                     if line.partition("=")[0] in OWN_VALUES else line for line in text.splitlines())
    for name, value in REAL_VALUES.items():
        text = text.replace(f"{name}={PLACEHOLDER}", f"{name}={value} # {PLACEHOLDER}", 1)
    (tmp_path / "commented.env").write_text(text)
    result = expensebot("check", "--env-file", tmp_path / "commented.env")
    assert result.returncode == 2
    assert all("contains ' #'" in problem for problem in problems_of(result))
    assert sorted(p.split(":")[0] for p in problems_of(result)) == sorted(REAL_VALUES)


# ---- backup and restore, as the service user -----------------------------------------------------

def service_user() -> pwd.struct_passwd:
    """The `expensebot` user the docs create; created here (a system user, no home) when root may."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs root, useradd and setpriv to run the recipe as a second user")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
    return pwd.getpwnam(USER)


def as_user(command: list[str]) -> list[str]:
    """Run command as the service user. CAP_DAC_READ_SEARCH only lets it reach this test's Python
    (which may live under a private /root); reads only, so every write still follows file modes."""
    return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups",
            "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search", *command]


@pytest.fixture
def machine():
    """A scratch stand-in for /var/lib/expensebot, /var/backups/expensebot and /etc/expensebot.env."""
    service_user()
    base = Path(tempfile.mkdtemp(prefix="expensebot-docs-"))
    base.chmod(0o755)
    paths = {"/var/lib/expensebot": base / "lib", "/var/backups/expensebot": base / "backups",
             "/etc/expensebot.env": base / "expensebot.env",
             "/opt/expensebot/.venv/bin/expensebot": f"{sys.executable} {ROOT / 'run.py'}"}
    yield base, paths
    pidfile = base / "serve.pid"
    if pidfile.exists() and pidfile.read_text().strip():  # a bot a failed test left running
        subprocess.run(["kill", pidfile.read_text().strip()], check=False)
    shutil.rmtree(base)


def local(text: str, paths: dict) -> str:
    for documented_path, here in paths.items():
        text = text.replace(documented_path, str(here))
    return text


def play(block: str, base: Path, paths: dict, bot: str, port: int, stop: bool = True) -> subprocess.CompletedProcess:
    """Run a documented block of commands as written, in `sh -e`, on this scratch machine.

    What only a real machine has is played here: `sudo -u expensebot CMD` runs CMD as the service
    user; `systemctl stop|start|restart expensebot` stops and starts a real `serve` (as the service
    user, with the environment file, like the unit); apt-get, git and other units are skipped.
    Documented paths and the port are the only words changed.
    """
    prelude = f"""
PIDFILE={base}/serve.pid; LOG={base}/serve.log; PORT={port}
as_user() {{ {shlex.join(as_user([]))} "$@"; }}
systemctl() {{
  case "$1 $2" in
    "stop expensebot") if [ -s "$PIDFILE" ]; then kill "$(cat "$PIDFILE")"
        while kill -0 "$(cat "$PIDFILE")" 2>/dev/null; do sleep 0.1; done; : > "$PIDFILE"; fi ;;
    "start expensebot"|"restart expensebot") systemctl stop expensebot
        (exec {shlex.join(as_user([]))} {bot} serve --env-file {base}/expensebot.env) >> "$LOG" 2>&1 &
        echo $! > "$PIDFILE"; n=0
        until curl -s "localhost:$PORT/healthz" > /dev/null; do
          n=$((n + 1)); [ $n -lt 600 ] || {{ cat "$LOG"; return 1; }}; sleep 0.1; done ;;
    *) echo "skipped: systemctl $*" ;;
  esac
}}
sudo() {{
  case "$1" in
    -u) shift 2; as_user "$@" ;;
    systemctl) shift; systemctl "$@" ;;
    apt-get|git) echo "skipped: $*" ;;
    *) "$@" ;;
  esac
}}
"""
    script = local(block, paths).replace("8080", str(port))
    # Output to files, not pipes: a bot left running holds the shell's descriptors, and a pipe would
    # not reach its end until the bot stops.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        returncode = subprocess.run(["sh", "-e", "-c", prelude + script + ("\nsystemctl stop expensebot\n" if stop else "")],
                                    stdout=out, stderr=err, text=True, timeout=300).returncode
        out.seek(0), err.seek(0)
        return subprocess.CompletedProcess("sh", returncode, out.read(), err.read())


def scratch_machine(base: Path, paths: dict, port: int) -> dict:
    """The documented folders and environment file (placeholders filled), as section 1 and 2 say."""
    install = [line for line in OPERATIONS.read_text().splitlines() if line.startswith("sudo install -d")]
    subprocess.run(shlex.split(local(install[0], paths))[1:], check=True)
    (base / "env.tmp").write_text(filled(local(documented("env"), paths).replace("PORT=8080", f"PORT={port}")))
    subprocess.run(["install", "-m", "640", "-o", "root", "-g", USER, str(base / "env.tmp"),
                    str(base / "expensebot.env")], check=True)
    return envfile.read(base / "expensebot.env")


def hand_over(folder: Path) -> None:
    """The in-process bot of a test runs as root: its files go to the service user, as if it had run them."""
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(folder)], check=True)


def test_backup_service_and_restore_keep_the_owner_and_every_erasure(machine, open_service):
    base, paths = machine
    port = free_port()
    env = scratch_machine(base, paths, port)
    db_path = Path(env["EXPENSEBOT_DB"])
    config = make_config(db_path.parent, db_path=db_path, psid_hash_key=env["PSID_HASH_KEY"])
    service = open_service(config)
    Client(service).post_webhook(delivery(message_event("111", "m_1", "coffee 100"),
                                          message_event("222", "m_2", "tea 3")))
    service.close()  # stopped before its files are handed to the service user
    hand_over(db_path.parent)

    # The backup service: ExecStart as User=, with EnvironmentFile= read by systemd's rules.
    unit = configparser.ConfigParser(interpolation=None)
    unit.read_string(local(documented("backup"), paths))
    command = shlex.split(unit["Service"]["ExecStart"])
    assert unit["Service"]["User"] == USER
    backup = subprocess.run(as_user(command), env=envfile.read(Path(unit["Service"]["EnvironmentFile"])),
                            capture_output=True, text=True, timeout=60)
    assert backup.returncode == 0, backup.stdout + backup.stderr
    (copy,) = (base / "backups").glob("expensebot-*.db")
    assert copy.stat().st_uid == pwd.getpwnam(USER).pw_uid

    # After the backup, 111 has their data erased.
    service = open_service(config)
    Client(service).post_webhook(delivery(message_event("111", "m_3", "Yes, delete",
                                                        quick_reply={"payload": "DELETE_MY_DATA_CONFIRM"})))
    service.close()
    hand_over(db_path.parent)

    # The documented restore, as written.
    restore = play(documented("restore"), base, paths, paths["/opt/expensebot/.venv/bin/expensebot"], port)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert "Traceback" not in restore.stdout + restore.stderr
    [restored] = [line for line in json_lines(restore.stdout) if line.get("event") == "restored"]
    assert restored["erasures_applied"] == 1 and restored["backup"] == str(copy)
    stat = db_path.stat()
    assert (stat.st_uid, stat.st_mode & 0o777) == (pwd.getpwnam(USER).pw_uid, 0o600)
    conn = sqlite3.connect(db_path)
    try:  # 222's tea is back; 111 erased after the backup stays erased
        assert conn.execute("SELECT description FROM expenses").fetchall() == [("tea",)]
    finally:
        conn.close()


PREVIOUS_RELEASE = "9106942"  # 0.1.0, the first release: schema version 1


@pytest.mark.skipif(not os.environ.get("TEST_PIP_INSTALL"),
                    reason="slow (two releases pip-installed into a fresh venv): set TEST_PIP_INSTALL=1, as CI does")
def test_the_documented_upgrade_from_the_previous_release(machine):
    import requests

    from expensebot import __version__
    from expensebot.ingest import webhook

    base, paths = machine
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_RELEASE], capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"the previous release ({PREVIOUS_RELEASE}) is not in this clone's history")
    (base / "old").mkdir()
    subprocess.run(["tar", "-x", "-C", str(base / "old")], input=archive.stdout, check=True)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "-q", str(base / "old")], check=True)
    # /opt/expensebot/src as `git pull` leaves it: this release.
    shutil.copytree(ROOT, base / "src", ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info",
                                                                       "__pycache__", "*.db*", "results"))
    paths = {**paths, "/opt/expensebot/.venv/bin/expensebot": venv / "bin/expensebot",
             "/opt/expensebot/.venv": venv, "/opt/expensebot/src": base / "src"}
    port = free_port()
    env = scratch_machine(base, paths, port)
    bot = str(venv / "bin/expensebot")

    started = play("sudo systemctl start expensebot", base, paths, bot, port, stop=False)  # the old one runs
    assert started.returncode == 0, started.stdout + started.stderr
    event = message_event("111", "m_before_upgrade", "coffee 100")
    body = json.dumps(delivery(event)).encode()
    answer = requests.post(f"http://127.0.0.1:{port}/webhook", data=body, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": webhook.sign(env["FB_APP_SECRET"], body)})
    assert answer.status_code == 200

    upgrade = play(documented("upgrade"), base, paths, bot, port)
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    assert "Traceback" not in upgrade.stdout + upgrade.stderr
    assert f"expensebot {__version__}\n" in upgrade.stdout and "No broken requirements found." in upgrade.stdout
    [check] = [line for line in json_lines_in(upgrade.stdout) if line.get("event") == "check_ok"]
    assert check["running"] == "before 0.2.0"  # the old one, still serving while the new one was checked
    assert json_lines_in(upgrade.stdout)[-1] == {"status": "ok", "spool_depth": 0, "version": __version__}
    assert list((base / "backups").glob("expensebot-*.db"))
    conn = sqlite3.connect(env["EXPENSEBOT_DB"])
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == db.SCHEMA_VERSION
        assert conn.execute("SELECT description, amount_minor FROM expenses").fetchall() == [("coffee", 10000)]
    finally:
        conn.close()


def json_lines_in(text: str) -> list[dict]:
    """The JSON objects among a block's output lines (pip and the shell print plain ones too)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_the_documented_nginx_steps_run_in_their_order_and_pass_nginx_t(tmp_path):
    """The block as written, against the real /etc/nginx paths: a private mount of a copy of them.

    certbot (which needs Let's Encrypt) is played by a stand-in that writes a certificate where
    certbot would; apt-get and systemctl are skipped. nginx -t is the real one, on the real paths.
    """
    if not shutil.which("nginx") or not shutil.which("openssl") or not Path("/etc/nginx/nginx.conf").exists():
        pytest.skip("nginx (with its Debian configuration) and openssl are needed")
    shutil.copytree("/etc/nginx", tmp_path / "nginx", symlinks=True)
    (tmp_path / "letsencrypt").mkdir()
    made_letsencrypt = not Path("/etc/letsencrypt").exists()
    Path("/etc/letsencrypt").mkdir(exist_ok=True)  # a mount point; removed again below if made here
    stand_in = f"""
mount --bind {tmp_path}/nginx /etc/nginx && mount --bind {tmp_path}/letsencrypt /etc/letsencrypt
certbot() {{  # a stand-in: the files certbot certonly would write, for the domain after -d
  while [ "$1" != "-d" ]; do shift; done; mkdir -p "/etc/letsencrypt/live/$2"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$2" -keyout "/etc/letsencrypt/live/$2/privkey.pem" \\
    -out "/etc/letsencrypt/live/$2/fullchain.pem" 2>/dev/null
}}
sudo() {{ case "$1" in apt-get|systemctl) echo "skipped: $*";; *) "$@";; esac; }}
"""
    block = documented("nginx")
    try:
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-e", "-c",
                                 stand_in + block], capture_output=True, text=True, timeout=60)
    finally:
        if made_letsencrypt:
            Path("/etc/letsencrypt").rmdir()
    if "unshare failed" in result.stderr or "mount:" in result.stderr and "permission denied" in result.stderr:
        pytest.skip(f"no private mounts here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test is successful" in result.stderr  # nginx -t
    assert "skipped: systemctl reload nginx" in result.stdout
    site = (tmp_path / "nginx" / "sites-available" / "expensebot").read_text()
    assert (tmp_path / "nginx" / "sites-enabled" / "expensebot").resolve() == Path("/etc/nginx/sites-available/expensebot")
    assert "/etc/letsencrypt/live/bot.example.org/fullchain.pem" in site and "$remote_addr" in site


def test_the_nginx_steps_fail_at_nginx_t_without_the_certificate_first(tmp_path):
    """Why the order matters: the site alone, before the certificate exists, does not load."""
    if not shutil.which("nginx"):
        pytest.skip("nginx is needed")
    site = documented("nginx").split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
                                         f"events {{}}\nhttp {{\naccess_log off;\n{site}\n}}\n")
    result = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "letsencrypt/live/bot.example.org" in result.stderr


def test_the_documented_health_check_is_silent_when_well_and_says_what_is_wrong(tmp_path, server_process):
    if not shutil.which("curl") or not shutil.which("jq"):
        pytest.skip("curl and jq are needed")
    script = tmp_path / "expensebot-health"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    journal = tmp_path / "journal.log"
    journal.write_text("")
    (bin_dir / "journalctl").write_text(f"#!/bin/sh\ncat {journal}\n")  # the journal: the bot's log lines
    (bin_dir / "journalctl").chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}

    def health(port):
        script.write_text(documented("health").replace("8080", str(port)))
        script.chmod(0o755)
        return subprocess.run([str(script)], capture_output=True, text=True, timeout=30, env=env)

    server = server_process()
    port = int(server.url.rsplit(":", 1)[1])
    assert (health(port).returncode, health(port).stdout) == (0, "")
    journal.write_text('{"level": "error", "event": "spool_failed", "reason": "No space left on device"}\n')
    failed = health(port)
    assert failed.returncode == 1 and "errors in the last 5 minutes: 1 spool_failed" in failed.stdout
    journal.write_text("")
    other = tmp_path / "other.db"
    from expensebot import db
    db.init(other)
    os.replace(other, Path(server.env["EXPENSEBOT_DB"]))  # the database file replaced under the bot
    unhealthy = health(port)
    assert unhealthy.returncode == 1 and "was replaced by another file" in unhealthy.stdout
    server.stop()
    down = health(port)
    assert (down.returncode, down.stdout) == (1, f"expensebot does not answer on 127.0.0.1:{port}\n")


def test_the_documented_systemd_units_verify_cleanly(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is needed to verify the unit files")
    text = OPERATIONS.read_text(encoding="utf-8")
    units = re.findall(r"`/etc/systemd/system/([\w.-]+)`:\n\n(?:<!-- test: \w+ -->\n)?```ini\n(.*?)```", text, re.S)
    assert sorted(name for name, _ in units) == ["expensebot-backup.service", "expensebot-backup.timer",
                                                 "expensebot-health.service", "expensebot-health.timer",
                                                 "expensebot.service"]
    for name, body in units:
        # The programs need not be installed here; systemd checks that the path is absolute.
        body = body.replace("/opt/expensebot/.venv/bin/expensebot", "/usr/bin/true")
        (tmp_path / name).write_text(body.replace("/usr/local/bin/expensebot-health", "/usr/bin/true"))
    # RestartPreventExitStatus= covers the main process only: a check that can fail with 2 runs there.
    assert not re.search(r"^ExecStartPre=", dict(units)["expensebot.service"], re.M)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / name) for name, _ in units)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    assert (result.returncode, result.stderr) == (0, "")
