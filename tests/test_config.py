"""Configuration from the environment: every variable, every invalid value, all problems at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from expensebot.config import Config, ConfigError
from expensebot.ops import envfile

SERVE_ENV = {"FB_APP_SECRET": "s" * 32, "FB_VERIFY_TOKEN": "v" * 16, "PSID_HASH_KEY": "k" * 32}


def test_defaults_are_the_documented_ones():
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
        "AI_RATE_PER_MINUTE": "10", "OPS_TOKEN": "f", "EXPENSEBOT_TRUSTED_PROXIES": "127.0.0.1,::1"})
    assert config.db_path == Path("/data/x.db") and config.spool_dir == Path("/spool")
    assert (config.host, config.port, config.tz, config.currency) == ("0.0.0.0", 9000, "Asia/Manila", "PHP")
    assert config.fb_graph_url == "http://127.0.0.1:9/v1"
    assert (config.ai_enabled, config.ai_timeout, config.ai_rate_per_minute) == (True, 3.0, 10)
    assert config.trusted_proxies == ("127.0.0.1", "::1")


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
    ({"EXPENSEBOT_TRUSTED_PROXIES": "nginx"}, "EXPENSEBOT_TRUSTED_PROXIES"),
    ({"EXPENSEBOT_TRUSTED_PROXIES": "127.0.0.1/8"}, "EXPENSEBOT_TRUSTED_PROXIES"),
])
def test_invalid_values_are_refused_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        Config.from_env(env)


def assert_serving_refused(config: Config) -> None:
    """Raise ConfigError with every problem `serve` would refuse to start with."""
    problems = config.serving_problems()
    assert problems
    raise ConfigError(*problems)


@pytest.mark.parametrize("missing", ["FB_APP_SECRET", "FB_VERIFY_TOKEN", "PSID_HASH_KEY"])
def test_serving_requires_the_secrets(missing):
    env = {k: v for k, v in SERVE_ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        assert_serving_refused(Config.from_env(env))


def test_repr_hides_secrets():
    text = repr(Config.from_env({**SERVE_ENV, "FB_APP_SECRET": "topsecret", "OPS_TOKEN": "tok"}))
    assert "topsecret" not in text and "tok'" not in text and "***" in text


@pytest.mark.parametrize("env, named", [
    ({"PSID_HASH_KEY": "abc"}, "PSID_HASH_KEY: 3 characters is too short"),
    ({"FB_APP_SECRET": "short"}, "FB_APP_SECRET: 5 characters is too short"),
    ({"OPS_TOKEN": "tok"}, "OPS_TOKEN: 3 characters is too short"),
    ({"EXPENSEBOT_HOST": "example.org"}, "EXPENSEBOT_HOST: 'example.org' is not an IP address"),
])
def test_serving_refuses_short_secrets_and_names_them(env, named):
    with pytest.raises(ConfigError, match=named):
        assert_serving_refused(Config.from_env({**SERVE_ENV, **env}))


def test_every_problem_is_reported_at_once():
    env = {"EXPENSEBOT_PORT": "http", "EXPENSEBOT_TZ": "Mars/Olympus", "AI_TIMEOUT": "9",
           "FB_APP_SECRET": "abc123abc123 # App dashboard", "EXPENSEBOT_PUBLIC_URL": "http://bot.example.org"}
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env)
    named = [problem.split(":")[0] for problem in caught.value.problems]
    assert sorted(named) == sorted(["FB_APP_SECRET", "EXPENSEBOT_PORT", "EXPENSEBOT_TZ", "AI_TIMEOUT"])
    assert "comment must be on a line of its own" in caught.value.problems[0]
    config = Config.from_env({})
    assert [p.split(":")[0] for p in config.serving_problems()] == [
        "FB_APP_SECRET", "FB_VERIFY_TOKEN", "PSID_HASH_KEY"]


def test_public_url_must_be_https():
    assert Config.from_env({"EXPENSEBOT_PUBLIC_URL": "https://bot.example.org/"}).public_url == "https://bot.example.org"
    with pytest.raises(ConfigError, match="EXPENSEBOT_PUBLIC_URL: must start with https://"):
        assert_serving_refused(Config.from_env({**SERVE_ENV, "EXPENSEBOT_PUBLIC_URL": "http://bot.example.org"}))


# The environment file, read as systemd reads it: (file text, the values it gives).
ENV_FILES = [
    ("A=abc # not a comment\n", {"A": "abc # not a comment"}),
    ("# comment\n; comment too\n   # indented comment\nA=1\n", {"A": "1"}),
    ("A = spaced value   \n", {"A": "spaced value"}),
    ("A='  single # quoted  '\n", {"A": "  single # quoted  "}),
    ('A="double \\"quoted\\" \\$HOME \\\\ \\n"\n', {"A": 'double "quoted" $HOME \\ \\n'}),
    ("A='first\nsecond'\n", {"A": "first\nsecond"}),
    ('A="joined \\\nline"\n', {"A": "joined line"}),
    ("A=joined\\\n  line\n", {"A": "joined  line"}),
    ("A=keep\\ \n", {"A": "keep "}),
    ("A=mid\"quote\"s\n", {"A": 'mid"quote"s'}),
    ('A="a b"   c  \n', {"A": "a bc"}),
    ("A=\nB\nC=3\n", {"A": "", "C": "3"}),
    ("# a comment ending in two backslashes \\\\\nA=1\n", {"A": "1"}),
    ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
    ("A=1\nA=2\n", {"A": "2"}),
    ("BAD KEY=1\n9X=2\nGOOD_1=3", {"GOOD_1": "3"}),
    ('A="unterminated\n', {"A": "unterminated\n"}),
]


@pytest.mark.parametrize("text, expected", ENV_FILES)
def test_environment_files_are_read_with_systemds_rules(text, expected):
    assert envfile.parse(text) == expected


def test_a_comment_ending_in_a_backslash_is_refused_naming_the_line(tmp_path):
    # systemd 252 (Debian 12) would read "A=1" as part of the comment; 254 and later would not.
    (tmp_path / "x.env").write_text("B=2\n# a comment ending in a backslash \\\nA=1\n")
    with pytest.raises(envfile.EnvFileError, match="x.env: line 2: a comment ends in a backslash"):
        envfile.read(tmp_path / "x.env")


def test_an_unreadable_environment_file_is_named(tmp_path):
    (tmp_path / "latin1.env").write_bytes(b"A=caf\xe9\n")
    with pytest.raises(envfile.EnvFileError, match="latin1.env: cannot read the environment file \\(not UTF-8 text\\)"):
        envfile.read(tmp_path / "latin1.env")
    with pytest.raises(envfile.EnvFileError, match="missing.env: cannot read the environment file \\(No such file"):
        envfile.read(tmp_path / "missing.env")


def test_check_names_a_trusted_proxy_that_is_no_ip_address_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "check"], text=True, timeout=60,
                            capture_output=True, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", **SERVE_ENV, "EXPENSEBOT_PORT": "0",
                                 "EXPENSEBOT_TRUSTED_PROXIES": "127.0.0.1, nginx"})
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    problems = [json.loads(line)["problem"] for line in (result.stdout + result.stderr).splitlines()
                if json.loads(line)["level"] == "error"]
    assert problems == ["EXPENSEBOT_TRUSTED_PROXIES: 'nginx' is not an IP address (comma-separated addresses"
                        " of the reverse proxies in front, e.g. 127.0.0.1)"]

