"""Configuration from the environment (SPEC §3) and the command line of run.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from expensebot.config import Config, ConfigError
from expensebot.identity import PsidHasher

SERVE_ENV = {"FB_APP_SECRET": "s", "FB_VERIFY_TOKEN": "v", "PSID_HASH_KEY": "k"}


def test_defaults_follow_the_spec():
    config = Config.from_env({})
    assert (config.db_path, config.host, config.port, config.tz, config.currency) == (
        Path("expensebot.db"), "127.0.0.1", 8080, "UTC", "USD")
    assert config.spool_dir == Path("expensebot.db.spool")
    assert config.fb_graph_url == "https://graph.facebook.com/v25.0"
    assert (config.ai_enabled, config.ai_timeout, config.ai_rate_per_minute, config.ops_token) == (False, 2.5, 6, "")


def test_every_variable_is_read():
    config = Config.from_env({
        "EXPENSEBOT_DB": "/data/x.db", "EXPENSEBOT_HOST": "0.0.0.0", "EXPENSEBOT_PORT": "9000",
        "EXPENSEBOT_SPOOL": "/spool", "EXPENSEBOT_TZ": "Asia/Manila", "EXPENSEBOT_CURRENCY": "php",
        "FB_APP_SECRET": "a", "FB_VERIFY_TOKEN": "b", "FB_PAGE_ACCESS_TOKEN": "c",
        "FB_GRAPH_URL": "http://127.0.0.1:9/v1/", "PSID_HASH_KEY": "d", "AI_ENABLED": "true",
        "AI_URL": "http://127.0.0.1:11434/v1", "AI_API_KEY": "e", "AI_MODEL": "llama3", "AI_TIMEOUT": "3",
        "AI_RATE_PER_MINUTE": "10", "OPS_TOKEN": "f"})
    assert config.db_path == Path("/data/x.db") and config.spool_dir == Path("/spool")
    assert (config.host, config.port, config.tz, config.currency) == ("0.0.0.0", 9000, "Asia/Manila", "PHP")
    assert config.fb_graph_url == "http://127.0.0.1:9/v1"
    assert (config.ai_enabled, config.ai_timeout, config.ai_rate_per_minute) == (True, 3.0, 10)


@pytest.mark.parametrize("env, named", [
    ({"EXPENSEBOT_PORT": "http"}, "EXPENSEBOT_PORT"),
    ({"EXPENSEBOT_PORT": "70000"}, "EXPENSEBOT_PORT"),
    ({"EXPENSEBOT_TZ": "Mars/Olympus"}, "EXPENSEBOT_TZ"),
    ({"EXPENSEBOT_TZ": "../../etc/passwd"}, "EXPENSEBOT_TZ"),
    ({"EXPENSEBOT_CURRENCY": "XYZ"}, "EXPENSEBOT_CURRENCY"),
    ({"AI_TIMEOUT": "5"}, "AI_TIMEOUT"),
    ({"AI_TIMEOUT": "0"}, "AI_TIMEOUT"),
    ({"AI_TIMEOUT": "nan"}, "AI_TIMEOUT"),
    ({"AI_TIMEOUT": "soon"}, "AI_TIMEOUT"),
    ({"AI_RATE_PER_MINUTE": "0"}, "AI_RATE_PER_MINUTE"),
    ({"AI_ENABLED": "maybe"}, "AI_ENABLED"),
    ({"AI_ENABLED": "true"}, "AI_URL"),
    ({"FB_GRAPH_URL": "ftp://graph"}, "FB_GRAPH_URL"),
])
def test_invalid_values_are_refused_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        Config.from_env(env)


@pytest.mark.parametrize("missing", ["FB_APP_SECRET", "FB_VERIFY_TOKEN", "PSID_HASH_KEY"])
def test_serving_requires_the_secrets(missing):
    env = {k: v for k, v in SERVE_ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Config.from_env(env).require_serving()


def test_repr_hides_secrets():
    text = repr(Config.from_env({**SERVE_ENV, "FB_APP_SECRET": "topsecret", "OPS_TOKEN": "tok"}))
    assert "topsecret" not in text and "tok'" not in text and "***" in text


def run_py(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **(env or {})}, timeout=30, cwd=ROOT)


def test_serve_without_a_required_variable_stops_with_one_clear_line(tmp_path):
    result = run_py("serve", env={"EXPENSEBOT_DB": str(tmp_path / "x.db"), "FB_VERIFY_TOKEN": "v", "PSID_HASH_KEY": "k"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "expensebot: configuration error: FB_APP_SECRET: required to serve (see README, Configuration)"]
    assert not (tmp_path / "x.db").exists()


def test_hash_psid_prints_the_psid_hash():
    result = run_py("hash-psid", "1234567890", env={"PSID_HASH_KEY": "k"})
    assert result.returncode == 0
    assert result.stdout.strip() == PsidHasher("k")("1234567890")


def test_hash_psid_without_a_key_is_refused():
    result = run_py("hash-psid", "1234567890")
    assert result.returncode == 2 and "PSID_HASH_KEY" in result.stderr
