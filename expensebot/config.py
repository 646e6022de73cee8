"""Configuration: one frozen Config, read from the environment once and validated."""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from pathlib import Path

from expensebot import money

DEFAULT_GRAPH_URL = "https://graph.facebook.com/v25.0"
MAX_AI_TIMEOUT = 3.0
REQUIRED_TO_SERVE = ("FB_APP_SECRET", "FB_VERIFY_TOKEN", "PSID_HASH_KEY")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Config:
    db_path: Path = Path("expensebot.db")
    host: str = "127.0.0.1"
    port: int = 8080
    spool_dir: Path | None = None  # None: "<db file>.spool/"
    tz: str = "UTC"
    currency: str = "USD"
    fb_app_secret: str = ""
    fb_verify_token: str = ""
    fb_page_access_token: str = ""
    fb_graph_url: str = DEFAULT_GRAPH_URL
    psid_hash_key: str = ""
    ai_enabled: bool = False
    ai_url: str = ""
    ai_api_key: str = ""
    ai_model: str = ""
    ai_timeout: float = 2.5
    ai_rate_per_minute: int = 6
    ops_token: str = ""
    public_url: str = ""   # the public https:// base report links start with; "" = not set up
    operator: str = ""     # who runs the bot, shown on /privacy
    contact: str = ""      # how to reach them, shown on /privacy

    def __post_init__(self):
        object.__setattr__(self, "db_path", Path(self.db_path))
        if self.spool_dir is None:
            object.__setattr__(self, "spool_dir", Path(f"{self.db_path}.spool"))
        object.__setattr__(self, "spool_dir", Path(self.spool_dir))

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.tz)

    def __repr__(self) -> str:
        # Secrets must never reach a log line or a traceback through repr().
        secret = {"fb_app_secret", "fb_verify_token", "fb_page_access_token",
                  "psid_hash_key", "ai_api_key", "ops_token"}
        shown = (f"{f.name}={'***' if f.name in secret and getattr(self, f.name) else repr(getattr(self, f.name))}"
                 for f in dataclasses.fields(self))
        return f"Config({', '.join(shown)})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Build a Config from environment variables (SPEC §3), validating each value."""
        get = env.get
        spool = get("EXPENSEBOT_SPOOL")
        config = cls(
            db_path=Path(get("EXPENSEBOT_DB") or "expensebot.db"),
            host=get("EXPENSEBOT_HOST") or "127.0.0.1",
            port=_port(get("EXPENSEBOT_PORT") or "8080"),
            spool_dir=Path(spool) if spool else None,
            tz=get("EXPENSEBOT_TZ") or "UTC",
            currency=(get("EXPENSEBOT_CURRENCY") or "USD").upper(),
            fb_app_secret=get("FB_APP_SECRET", ""),
            fb_verify_token=get("FB_VERIFY_TOKEN", ""),
            fb_page_access_token=get("FB_PAGE_ACCESS_TOKEN", ""),
            fb_graph_url=(get("FB_GRAPH_URL") or DEFAULT_GRAPH_URL).rstrip("/"),
            psid_hash_key=get("PSID_HASH_KEY", ""),
            ai_enabled=_boolean("AI_ENABLED", get("AI_ENABLED") or "false"),
            ai_url=(get("AI_URL") or "").rstrip("/"),
            ai_api_key=get("AI_API_KEY", ""),
            ai_model=get("AI_MODEL", ""),
            ai_timeout=_number("AI_TIMEOUT", get("AI_TIMEOUT") or "2.5", float),
            ai_rate_per_minute=_number("AI_RATE_PER_MINUTE", get("AI_RATE_PER_MINUTE") or "6", int),
            ops_token=get("OPS_TOKEN", ""),
            public_url=(get("EXPENSEBOT_PUBLIC_URL") or "").rstrip("/"),
            operator=get("EXPENSEBOT_OPERATOR", ""),
            contact=get("EXPENSEBOT_CONTACT", ""),
        )
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid value."""
        try:
            self.zone
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"EXPENSEBOT_TZ: unknown time zone {self.tz!r} (IANA name like Europe/Berlin)")
        if not money.is_currency(self.currency):
            raise ConfigError(f"EXPENSEBOT_CURRENCY: {self.currency!r} is not an ISO 4217 code")
        if not 0 < self.ai_timeout <= MAX_AI_TIMEOUT:
            raise ConfigError(f"AI_TIMEOUT: must be more than 0 and at most {MAX_AI_TIMEOUT:g} seconds")
        if self.ai_rate_per_minute < 1:
            raise ConfigError("AI_RATE_PER_MINUTE: must be at least 1")
        if self.ai_enabled and not (self.ai_url and self.ai_model):
            raise ConfigError("AI_URL and AI_MODEL: required when AI_ENABLED=true")
        for name, url in (("FB_GRAPH_URL", self.fb_graph_url), ("AI_URL", self.ai_url),
                          ("EXPENSEBOT_PUBLIC_URL", self.public_url)):
            if url and not url.startswith(("http://", "https://")):
                raise ConfigError(f"{name}: must start with http:// or https://")
        if self.public_url and (problem := _public_url_problem(self.public_url)):
            raise ConfigError(f"EXPENSEBOT_PUBLIC_URL: {problem}")

    def require_serving(self) -> None:
        """Raise ConfigError naming the first secret `serve` cannot run without."""
        for name in REQUIRED_TO_SERVE:
            if not getattr(self, name.lower()):
                raise ConfigError(f"{name}: required to serve (see README, Configuration)")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            if self.host != "localhost":
                raise ConfigError(f"EXPENSEBOT_HOST: {self.host!r} is not an IP address")


def _port(value: str) -> int:
    port = _number("EXPENSEBOT_PORT", value, int)
    if not 0 <= port <= 65535:
        raise ConfigError("EXPENSEBOT_PORT: must be between 0 and 65535")
    return port


def _number(name: str, value: str, kind: type):
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not a {'whole ' if kind is int else ''}number") from None


def _boolean(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name}: {value!r} is not true or false")


def _public_url_problem(url: str) -> str | None:
    """Why a report-link base would leak or break links, or None. A link is a bearer token."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname:
        return "needs a host"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "must not have a query or fragment (links are appended to it)"
    if parts.username is not None or parts.password is not None:
        return "must not hold a user name or password"
    if parts.scheme != "https" and not _on_this_machine(parts.hostname):
        return "must be https:// (a report link is a bearer token); http:// only for 127.0.0.1, ::1, localhost"
    return None


def _on_this_machine(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
