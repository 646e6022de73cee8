"""docs/OPERATIONS.md, followed literally: its environment file, backup service and restore recipe, run."""

from __future__ import annotations

import configparser
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
from conftest import ROOT, Client, delivery, make_config, message_event
from test_cli import expensebot, json_lines, problems_of

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
    shutil.rmtree(base)


def local(text: str, paths: dict) -> str:
    for documented_path, here in paths.items():
        text = text.replace(documented_path, str(here))
    return text


def test_backup_service_and_restore_recipe_keep_the_owner(machine, open_service):
    base, paths = machine
    install = [line for line in OPERATIONS.read_text().splitlines() if line.startswith("sudo install -d")]
    subprocess.run(shlex.split(local(install[0], paths))[1:], check=True)
    (base / "env.tmp").write_text(filled(local(documented("env"), paths).replace("PORT=8080", "PORT=0")))
    subprocess.run(["install", "-m", "640", "-o", "root", "-g", USER, str(base / "env.tmp"),
                    str(base / "expensebot.env")], check=True)
    env = envfile.read(base / "expensebot.env")
    db_path = Path(env["EXPENSEBOT_DB"])
    config = make_config(db_path.parent, db_path=db_path, psid_hash_key=env["PSID_HASH_KEY"])
    service = open_service(config)
    Client(service).post_webhook(delivery(message_event("111", "m_1", "coffee 100")))
    service.close()  # stopped before its files are handed to the service user
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(db_path.parent)], check=True)

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

    # What the issue saw: a backup copied into place as root locks the service user out; check says so.
    shutil.copy(copy, db_path)
    os.chown(db_path, 0, 0)
    db_path.chmod(0o644)
    check = subprocess.run(as_user([sys.executable, str(ROOT / "run.py"), "check", "--env-file",
                                    str(base / "expensebot.env")]), capture_output=True, text=True, timeout=60)
    assert check.returncode == 2
    assert problems_of(check) == [f"EXPENSEBOT_DB: {db_path} is not writable by {USER} (owner root, mode 0o644); "
                                  f"chown {USER}: {db_path}"]

    # The documented restore, line by line: systemctl is skipped (no systemd here).
    shell_sudo = ('sudo() { case "$1" in systemctl) echo "skipped: $*";; '
                  f'-u) shift 2; {shlex.join(as_user([]))} "$@";; *) "$@";; esac; }}\n')
    restore = subprocess.run(["sh", "-e", "-c", shell_sudo + local(documented("restore"), paths)],
                             capture_output=True, text=True, timeout=120)
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert "check_ok" in restore.stdout and "Traceback" not in restore.stdout + restore.stderr
    stat = db_path.stat()
    assert (stat.st_uid, stat.st_mode & 0o777) == (pwd.getpwnam(USER).pw_uid, 0o600)
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("SELECT description, amount_minor FROM expenses").fetchall() == [("coffee", 10000)]
    finally:
        conn.close()


def test_the_documented_nginx_site_is_valid_nginx(tmp_path):
    if not shutil.which("nginx") or not shutil.which("openssl"):
        pytest.skip("nginx and openssl are needed to check the site's syntax")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=bot.example.org", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
                   check=True, capture_output=True)
    site = documented("nginx").replace("/etc/letsencrypt/live/bot.example.org/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/letsencrypt/live/bot.example.org/privkey.pem", str(tmp_path / "key.pem"))
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
                                         f"events {{}}\nhttp {{\naccess_log off;\n{site}}}\n")
    result = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_the_documented_systemd_units_verify_cleanly(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is needed to verify the unit files")
    text = OPERATIONS.read_text(encoding="utf-8")
    units = re.findall(r"`/etc/systemd/system/([\w.-]+)`:\n\n(?:<!-- test: \w+ -->\n)?```ini\n(.*?)```", text, re.S)
    assert sorted(name for name, _ in units) == ["expensebot-backup.service", "expensebot-backup.timer",
                                                 "expensebot.service"]
    for name, body in units:
        # The program need not be installed here; systemd checks that the path is absolute.
        (tmp_path / name).write_text(body.replace("/opt/expensebot/.venv/bin/expensebot", "/usr/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / name) for name, _ in units)],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    assert (result.returncode, result.stderr) == (0, "")
